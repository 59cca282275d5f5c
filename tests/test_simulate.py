"""The simulator: its logs read with nothing skipped, follow AWS's examples, and its truth agrees
with the connections it simulated. Nothing here uses a natlens analysis."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shlex
from pathlib import Path

import duckdb
import pytest

from natlens.ingest import IngestOptions, ingest
from natlens.simulate.flowlogs import resolve_format
from natlens.simulate.run import SimulateOptions, simulate
from natlens.simulate.scenarios import DELIVERIES, SCENARIOS


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Every scenario, 15 minutes, with version 3 fields (tcp-flags and pkt-*)."""
    root = tmp_path_factory.mktemp("worlds")
    out = {}
    for name in SCENARIOS:
        log_format = None if name == "mixed-formats" else "v3"
        out[name] = (
            root / name,
            simulate(root / name, SimulateOptions(name, minutes=15, seed=3, log_format=log_format)),
        )
    return out


def read_case(world: Path, summary: dict) -> Path:  # type: ignore[type-arg]
    """Ingest each flow log as `natlens simulate` says to; returns the case (read once)."""
    case = world / "case"
    if (case / "manifest.json").exists():
        return case
    for flow_log in summary["flow_logs"]:
        fmt = None
        if flow_log["needs_log_format"]:
            fmt = resolve_format(flow_log["log_format"])
        report = ingest(
            [str(world / "flowlogs" / flow_log["name"])], case, IngestOptions(log_format=fmt)
        )
        data = report.to_json()
        assert data["lines"]["skipped"] == 0, data["skipped"]
        assert data["lines"]["records"] == flow_log["records"]
    return case


def joined(world: Path, case: Path) -> duckdb.DuckDBPyConnection:
    """Records read back by natlens, each with its truth (joined on file and line)."""
    con = duckdb.connect()
    root = str(world).rstrip("/") + "/"
    con.execute(
        f"CREATE VIEW flows AS SELECT *, replace(source, '{root}', '') AS file "
        f"FROM read_parquet('{case}/flows/*.parquet', union_by_name = true)"
    )
    con.execute(f"CREATE VIEW truth AS SELECT * FROM '{world}/truth/records.parquet'")
    con.execute(f"CREATE VIEW conns AS SELECT * FROM '{world}/truth/connections.parquet'")
    con.execute(
        "CREATE VIEW r AS SELECT f.*, t.connection_id, t.leg, t.direction, t.kind, "
        "t.variant, t.instance_ip, t.initiator FROM flows f JOIN truth t USING (file, line)"
    )
    return con


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_reads_with_nothing_skipped(worlds, name: str) -> None:
    world, summary = worlds[name]
    case = read_case(world, summary)
    con = joined(world, case)
    total = con.execute("SELECT count(*) FROM truth").fetchone()[0]
    matched = con.execute("SELECT count(*) FROM r").fetchone()[0]
    assert matched == total == summary["records"]


def test_nat_legs_follow_aws_example(worlds) -> None:
    """docs/aws.md §3.6: every NAT connection shows the four NAT gateway records of AWS's example,
    with the same field pattern, and the instance's own two."""
    world, summary = worlds["nat-basic"]
    con = joined(world, read_case(world, summary))
    con.execute("CREATE VIEW c AS SELECT * FROM conns WHERE kind = 'egress'")
    bad = con.execute(
        """
        SELECT r.leg, r.direction, count(*) FROM r JOIN c USING (connection_id)
        WHERE NOT CASE
          WHEN leg = 'nat-private' AND direction = 'request' THEN srcaddr = c.instance_ip
               AND dstaddr = c.nat_ip AND pkt_srcaddr = c.instance_ip AND pkt_dstaddr = c.server_ip
          WHEN leg = 'nat-public' AND direction = 'request' THEN srcaddr = c.nat_ip
               AND dstaddr = c.server_ip AND pkt_srcaddr = c.nat_ip AND pkt_dstaddr = c.server_ip
               AND (srcport = c.nat_port)
          WHEN leg = 'nat-public' AND direction = 'response' THEN srcaddr = c.server_ip
               AND dstaddr = c.nat_ip AND pkt_srcaddr = c.server_ip AND pkt_dstaddr = c.nat_ip
          WHEN leg = 'nat-private' AND direction = 'response' THEN srcaddr = c.nat_ip
               AND dstaddr = c.instance_ip AND pkt_srcaddr = c.server_ip AND pkt_dstaddr = c.instance_ip
          WHEN leg = 'instance' AND direction = 'request' THEN srcaddr = c.instance_ip
               AND dstaddr = c.server_ip AND pkt_srcaddr = srcaddr AND pkt_dstaddr = dstaddr
          WHEN leg = 'instance' AND direction = 'response' THEN srcaddr = c.server_ip
               AND dstaddr = c.instance_ip AND pkt_srcaddr = srcaddr AND pkt_dstaddr = dstaddr
          ELSE false END
        GROUP BY ALL
        """
    ).fetchall()
    assert bad == []
    # NAT gateway interfaces are requester-managed: no instance id (docs/aws.md §1.2).
    assert (
        con.execute(
            "SELECT count(*) FROM r WHERE leg LIKE 'nat-%' AND instance_id IS NOT NULL"
        ).fetchone()[0]
        == 0
    )
    # Translated ports are NAT gateway ports, 1024-65535 (docs/aws.md §4).
    low, high = con.execute(
        "SELECT min(nat_port), max(nat_port) FROM c WHERE protocol != 1"
    ).fetchone()
    assert low >= 1024 and high <= 65535


def test_legs_agree_on_packets_and_bytes(worlds) -> None:
    world, summary = worlds["fw-after-nat"]
    con = joined(world, read_case(world, summary))
    spread = con.execute(
        """
        SELECT count(*) FROM (
          SELECT connection_id, direction, start, count(DISTINCT packets) AS p,
                 count(DISTINCT bytes) AS b
          FROM r WHERE leg != 'coverage' GROUP BY connection_id, direction, start
        ) WHERE p > 1 OR b > 1
        """
    ).fetchone()[0]
    assert spread == 0


def test_tcp_flags_as_aws_reports_them(worlds) -> None:
    """docs/aws.md §1.4: SYN in the client's first window, SYN-ACK in the server's, 3 and 19 when a
    connection fits one window, 0 in between; other protocols 0; ICMP ports 0 (§11.6)."""
    world, summary = worlds["nat-basic"]
    con = joined(world, read_case(world, summary))
    flags = dict(
        con.execute(
            "SELECT direction || '/' || variant, list(DISTINCT tcp_flags ORDER BY tcp_flags) FROM r "
            "WHERE protocol = 6 AND leg = 'instance' AND kind = 'egress' GROUP BY ALL"
        ).fetchall()
    )
    assert flags["request/short"] == [3]
    assert flags["response/short"] == [19]
    assert set(flags["request/long-lived"]) <= {0, 1, 2, 3} and 0 in flags["request/long-lived"]
    assert 2 in flags["request/normal"] and 18 in flags["response/normal"]
    assert set(flags["response/idle-timeout"]) >= {4}  # the NAT gateway's RST after 350 s idle
    others = con.execute("SELECT DISTINCT tcp_flags FROM r WHERE protocol IN (1, 17)").fetchall()
    assert others == [(0,)]
    assert (
        con.execute(
            "SELECT count(*) FROM r WHERE protocol = 1 AND (srcport != 0 OR dstport != 0)"
        ).fetchone()[0]
        == 0
    )
    scans = con.execute(
        "SELECT DISTINCT tcp_flags FROM r WHERE kind = 'scan' AND protocol = 6"
    ).fetchall()
    assert scans == [(2,)]


def test_unsolicited_traffic_is_logged_accept_on_the_nat_gateway(worlds) -> None:
    """docs/aws.md §5.1: the network ACL admits it, so the NAT gateway's interface logs ACCEPT;
    telnet is denied by the public subnets' ACL and logged REJECT."""
    world, summary = worlds["nat-basic"]
    con = joined(world, read_case(world, summary))
    rows = dict(
        con.execute("SELECT action, count(*) FROM r WHERE kind = 'scan' GROUP BY action").fetchall()
    )
    assert rows["ACCEPT"] > 0
    rejected = con.execute(
        "SELECT DISTINCT dstport FROM r WHERE kind = 'scan' AND action = 'REJECT'"
    ).fetchall()
    assert rejected == [(23,)]


def test_coverage_records(worlds) -> None:
    world, summary = worlds["nat-basic"]
    con = joined(world, read_case(world, summary))
    statuses = dict(con.execute("SELECT log_status, count(*) FROM r GROUP BY ALL").fetchall())
    assert statuses.get("SKIPDATA", 0) >= 1
    nulls = con.execute(
        "SELECT count(*) FROM r WHERE log_status != 'OK' AND (srcaddr IS NOT NULL OR "
        "packets IS NOT NULL OR action IS NOT NULL)"
    ).fetchone()[0]
    assert nulls == 0


def test_inbound_truth_comes_from_the_connections(worlds) -> None:
    for name, (world, _summary) in worlds.items():
        con = duckdb.connect()
        verdicts = dict(
            con.execute(
                f"SELECT verdict, count(*) FROM '{world}/truth/inbound.parquet' GROUP BY ALL"
            ).fetchall()
        )
        if SCENARIOS[name].exposed_instances:
            assert verdicts.get("exposed", 0) > 0
        else:
            assert "exposed" not in verdicts, name
        assert verdicts.get("unsolicited", 0) > 0 and verdicts.get("response", 0) > 0
        # Scanners' addresses only ever reached NAT gateways.
        scanners = con.execute(
            f"""SELECT count(*) FROM '{world}/truth/inbound.parquet' i
            WHERE verdict = 'unsolicited' AND EXISTS (
              SELECT 1 FROM '{world}/truth/connections.parquet' c
              WHERE c.server_ip = i.address AND c.kind = 'egress')"""
        ).fetchone()[0]
        assert scanners == 0


def firewall_events(world: Path) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    out = []
    for path in sorted((world / "firewall").rglob("*.log.gz")):
        with gzip.open(path, "rt") as lines:
            out.extend((str(path), json.loads(line)) for line in lines)
    return out


def test_firewall_logs_as_aws_writes_them(worlds) -> None:
    world, _summary = worlds["fw-after-nat"]
    events = firewall_events(world)
    assert events
    nat_ips = {
        n["NatGatewayAddresses"][0]["PrivateIp"]
        for n in json.loads((world / "context/describe-nat-gateways.json").read_text())[
            "NatGateways"
        ]
    }
    by_flow: dict[int, list[dict]] = {}  # type: ignore[type-arg]
    for path, event in events:
        assert event["firewall_name"] and event["availability_zone"].startswith("us-east-1")
        body = event["event"]
        if "/tls/" in path:
            assert isinstance(event["event_timestamp"], int)
            assert isinstance(body["src_port"], str) and isinstance(body["dest_port"], str)
            assert "event_type" not in body and body["timestamp"].endswith("Z")
            continue
        assert isinstance(event["event_timestamp"], str)
        assert body["timestamp"].endswith("+0000")
        if body["event_type"] == "netflow":
            by_flow.setdefault(body["flow_id"], []).append(body)
            if "tcp" in body:
                int(body["tcp"]["tcp_flags"], 16)  # hex
        if body["event_type"] == "alert" and body["src_ip"] not in nat_ips:
            pytest.fail("after the NAT gateway, the firewall sees only NAT gateway sources")
    pairs = [flows for flows in by_flow.values() if len(flows) == 2]
    assert pairs
    for to_server, to_client in pairs:
        assert (to_server["src_ip"], to_server["src_port"]) == (
            to_client["dest_ip"],
            to_client["dest_port"],
        )
    assert all(len(flows) <= 2 for flows in by_flow.values())


def test_firewall_before_nat_sees_instances(worlds) -> None:
    world, _summary = worlds["fw-before-nat"]
    instances = {
        i["PrivateIpAddress"]
        for r in json.loads((world / "context/describe-instances.json").read_text())["Reservations"]
        for i in r["Instances"]
    }
    alerts = [
        e["event"] for _p, e in firewall_events(world) if e["event"].get("event_type") == "alert"
    ]
    assert alerts and all(a["src_ip"] in instances for a in alerts)


def test_firewall_truth_names_the_instance_and_the_hard_case(worlds) -> None:
    world, _summary = worlds["fw-after-nat"]
    con = duckdb.connect()
    truth = f"'{world}/truth/firewall_events.parquet'"
    missing = con.execute(
        f"SELECT count(*) FROM {truth} WHERE event_type = 'alert' AND source_instance_id IS NULL"
    ).fetchone()[0]
    assert missing == 0
    groups = con.execute(
        f"SELECT hard_case_group, count(DISTINCT source_instance_id) FROM {truth} "
        "WHERE event_type = 'alert' AND hard_case_group >= 0 GROUP BY ALL"
    ).fetchall()
    assert groups and all(instances >= 2 for _g, instances in groups)
    # Each truth row names a file and line, and that line is the event it describes.
    rows = con.execute(f"SELECT file, line, flow_id, event_type FROM {truth}").fetchall()
    lines: dict[str, list[str]] = {}
    for file, line, flow_id, event_type in rows:
        if file not in lines:
            with gzip.open(world / file, "rt") as handle:
                lines[file] = handle.read().splitlines()
        text = lines[file][line - 1]
        body = json.loads(text)["event"]
        assert body.get("flow_id", flow_id) == flow_id
        assert body.get("event_type", "tls_error") == event_type


def test_route_tables_follow_the_layouts(worlds) -> None:
    """docs/aws.md §7: (a) firewall after the NAT gateway, (b) before it, with the return route."""

    def routes(world: Path) -> list[tuple[str, str, str]]:
        tables = json.loads((world / "context/describe-route-tables.json").read_text())[
            "RouteTables"
        ]
        return [
            (
                t["Tags"][0]["Value"],
                r["DestinationCidrBlock"],
                r.get("GatewayId") or r.get("NatGatewayId"),
            )
            for t in tables
            for r in t["Routes"]
        ]

    after = routes(worlds["fw-after-nat"][0])
    assert any(
        n.startswith("nat-") and d == "0.0.0.0/0" and g.startswith("vpce-") for n, d, g in after
    )
    assert any(n == "igw-edge" and g.startswith("vpce-") for n, d, g in after)
    assert any(n.startswith("private-") and g.startswith("nat-") for n, d, g in after)
    before = routes(worlds["fw-before-nat"][0])
    assert any(
        n.startswith("private-") and d == "0.0.0.0/0" and g.startswith("vpce-")
        for n, d, g in before
    )
    assert any(
        n.startswith("nat-")
        and d.startswith("10.0.")
        and d != "10.0.0.0/16"
        and g.startswith("vpce-")
        for n, d, g in before
    )
    plain = routes(worlds["nat-basic"][0])
    assert not any(g.startswith("vpce-") for _n, _d, g in plain)


def test_same_seed_same_world(tmp_path) -> None:
    def digest(root: Path) -> str:
        h = hashlib.sha256()
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name != "scenario.json" and "truth" not in path.parts:
                h.update(path.relative_to(root).as_posix().encode())
                h.update(
                    gzip.decompress(path.read_bytes())
                    if path.suffix == ".gz"
                    else path.read_bytes()
                )
        return h.hexdigest()

    a = simulate(tmp_path / "a", SimulateOptions("fw-after-nat", minutes=6, seed=11))
    b = simulate(tmp_path / "b", SimulateOptions("fw-after-nat", minutes=6, seed=11))
    c = simulate(tmp_path / "c", SimulateOptions("fw-after-nat", minutes=6, seed=12))
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")
    assert a["records"] == b["records"]
    del c


@pytest.mark.parametrize("delivery", DELIVERIES)
def test_every_delivery_reads(tmp_path, delivery: str) -> None:
    summary = simulate(
        tmp_path / "w",
        SimulateOptions("nat-basic", minutes=6, seed=5, log_format="v5", delivery=delivery),
    )
    read_case(tmp_path / "w", summary)


def test_records_target(tmp_path) -> None:
    summary = simulate(tmp_path / "w", SimulateOptions("nat-basic", minutes=30, records=200_000))
    assert 180_000 <= summary["records"] <= 220_000


@pytest.mark.parametrize("scenario", ["nat-basic", "fw-after-nat"])
@pytest.mark.parametrize("records", [1, 100])
def test_tiny_records_targets(tmp_path, scenario: str, records: int) -> None:
    """So few records that most slices have no connection, and the target is reached before
    the end: a small world all the same, which reads (these used to stop with an internal
    error)."""
    summary = simulate(tmp_path / "w", SimulateOptions(scenario, minutes=15, records=records))
    read_case(tmp_path / "w", summary)


def test_cli_simulate_prints_how_to_read_it(tmp_path, natlens) -> None:
    run = natlens("simulate", tmp_path / "w", "--scenario", "mixed-formats", "--minutes", "5")
    assert run.code == 0, run.err
    assert run.out.count("natlens ingest") == 4
    assert "--log-format '${interface-id} ${action}" in run.out
    assert natlens("simulate", tmp_path / "x", "--scenario", "nope").code == 64
    assert natlens("simulate", tmp_path / "x", "--log-format", "${nope nope}").code == 64


def test_simulate_prints_the_commands_that_read_its_logs(tmp_path, natlens) -> None:
    run = natlens("simulate", tmp_path / "w", "--scenario", "fw-after-nat", "--minutes", "3")
    assert run.code == 0, run.err
    commands = [shlex.split(line) for line in run.out.splitlines() if line.startswith("  natlens")]
    assert len(commands) == 2 and commands[1][2].endswith("firewall")
    for command in commands:
        assert natlens(*command[1:]).code == 0
    alerts = natlens("attribute", tmp_path / "w" / "case", "--log-type", "alert", "--format",
                     "jsonl").jsonl()  # fmt: skip
    assert alerts and any(a["instance_id"] or a["instance_address"] for a in alerts)


def test_demo_runs(tmp_path, natlens) -> None:
    run = natlens("demo", tmp_path / "demo")
    assert run.code == 0, run.err
    assert "One connection, four interfaces" in run.out
    assert "0 lines skipped" in run.out
    assert "us-east-1a: firewall-after-nat" in run.out
    assert "fixes firewall-after-nat" in run.out
    # problem 2: an alert with the NAT gateway's address, the instance named, checked
    alert = re.search(r"found the instance behind it in the flow logs: (i-[0-9a-f]+) .*"
                      r"The simulator's truth: (i-[0-9a-f]+)\.", run.out)  # fmt: skip
    assert alert and alert.group(1) == alert.group(2)
    assert "1,035 Network Firewall events" in run.out
    assert (tmp_path / "demo" / "report.html").stat().st_size > 100_000
    assert f"open {tmp_path / 'demo' / 'report.html'} in a browser" in run.out


def test_demo_without_a_directory_prints_commands_that_work(tmp_path, natlens, monkeypatch) -> None:
    """Its own directory is gone when it ends: the commands it prints make one first."""
    from natlens import demo as demo_module

    real = demo_module.run_demo  # five minutes are enough to check the commands
    monkeypatch.setattr(demo_module, "run_demo", lambda d, **kw: real(d, minutes=5, **kw))
    monkeypatch.chdir(tmp_path)
    run = natlens("demo")
    assert run.code == 0, run.err
    commands = run.out.split("Next\n----\n")[1].splitlines()
    assert commands[0].startswith("natlens demo natlens-demo")
    insights = [c for c in commands if c.startswith("natlens insights")]
    export = [c for c in commands if c.startswith("natlens export")]
    for line in commands[:3] + export + insights:
        command = shlex.split(line.split("#")[0])[1:]
        done = natlens(*command)
        assert done.code == 0, (line, done.err)
    assert "bytesOut" in done.out  # the Logs Insights query ran on the demo's case
    assert (tmp_path / "natlens-demo" / "report.html").exists()
    assert list((tmp_path / "natlens-demo" / "ocsf" / "findings").rglob("part-0.parquet"))


@pytest.mark.parametrize(
    ("name", "kind", "legs"),
    [
        # instance, NAT private leg, NAT public leg
        ("nat-basic", "egress", 3),
        # ... and the firewall endpoint's in and out records
        ("fw-after-nat", "egress", 5),
        ("fw-before-nat", "egress", 5),
        # unsolicited: the NAT gateway only; after the firewall, the endpoint first
        ("nat-basic", "scan", 1),
        ("fw-after-nat", "scan", 3),
        ("exposed-instance", "exposed-inbound", 1),
    ],
)
def test_each_direction_is_seen_by_every_interface_on_the_path(worlds, name, kind, legs) -> None:
    """Counted from the truth alone: the distinct interfaces and legs that logged each direction
    of a connection (SKIPDATA may remove some, so the most common count is the rule)."""
    world, _summary = worlds[name]
    rows = (
        duckdb.connect()
        .execute(
            f"""
        SELECT n, count(*) FROM (
          SELECT connection_id, direction, count(DISTINCT leg || interface_id) AS n
          FROM '{world}/truth/records.parquet'
          WHERE kind = '{kind}' AND variant IN ('normal', 'short', 'long-lived')
          GROUP BY connection_id, direction)
        GROUP BY n ORDER BY count(*) DESC
        """
        )
        .fetchall()
    )
    assert rows[0][0] == legs, rows
    assert sum(c for n, c in rows if n > legs) == 0


def test_ten_minute_windows(tmp_path) -> None:
    """--interval 600: records start and end inside their ten-minute capture window."""
    summary = simulate(tmp_path / "w", SimulateOptions("nat-basic", minutes=40, seed=2,
                                                       interval=600, log_format="v3"))  # fmt: skip
    case = read_case(tmp_path / "w", summary)
    con = joined(tmp_path / "w", case)
    outside = con.execute('SELECT count(*) FROM r WHERE start // 600 != "end" // 600').fetchone()[0]
    assert outside == 0
    assert con.execute('SELECT max("end" - start) FROM r').fetchone()[0] >= 60
