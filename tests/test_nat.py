"""NAT links, top talkers and alert attribution, against the simulator's truth."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import duckdb
import pytest

from natlens.analyses.conversations import ConversationOptions
from natlens.analyses.nat import (
    METHODS,
    SOURCE_KINDS,
    NatOptions,
    attribute,
    attribute_sql,
    nat_links,
    nat_links_sql,
    top_talkers,
    top_talkers_sql,
)
from natlens.case import Case
from natlens.engine import DuckDBEngine, check_portable
from natlens.errors import UsageError
from natlens.formats.describe_json import load_context
from natlens.ingest import IngestOptions, ingest
from natlens.simulate.run import SimulateOptions, simulate
from tests.conftest import FIXTURES, Run, fresh_copy, run_cli

DOCS = Path(__file__).parents[1] / "docs"


def build(root: Path, scenario: str, log_format: str, minutes: int = 15) -> Path:
    """Four times the default traffic: more alerts, and more connections at the same time."""
    world = root / f"{scenario}-{log_format}"
    simulate(world, SimulateOptions(scenario=scenario, minutes=minutes, seed=5, records=25000,
                                    log_format=log_format))  # fmt: skip
    ingest([str(world / "flowlogs"), str(world / "firewall")], str(world / "case"), IngestOptions())
    return world


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("nat")
    return {
        (scenario, fmt): build(root, scenario, fmt)
        for scenario, fmt in (
            ("fw-after-nat", "default"),
            ("fw-after-nat", "v5"),
            ("fw-before-nat", "default"),
        )
    }


def judged(world: Path, rows: list[dict[str, object]]) -> duckdb.DuckDBPyRelation:
    """natlens's attribution of each event beside the truth's."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    import pyarrow as pa

    con.register("said", pa.Table.from_pylist(rows))
    prefix = str(world) + "/"
    return con.sql(
        f"""
        SELECT s.*, t.source_ip AS truth, t.hard_case_group AS hard
        FROM said AS s
        JOIN read_parquet('{world}/truth/firewall_events.parquet') AS t
            ON t.file = replace(s.source, '{prefix}', '') AND t.line = s.line
        """
    )


def egress_truth(world: Path) -> dict[tuple[object, ...], object]:
    """The simulator's instance behind each (NAT address, translated port, destination)."""
    rows = duckdb.sql(
        f"SELECT nat_ip, nat_port, server_ip, instance_ip FROM '{world}/truth/connections.parquet'"
        " WHERE kind = 'egress'"
    ).fetchall()
    return {(r[0], r[1], r[2]): r[3] for r in rows}


def attributed(world: Path, with_context: bool) -> list[dict[str, object]]:
    context = load_context(world / "context") if with_context else None
    with DuckDBEngine() as engine:
        table = attribute(
            engine, Case.open(world / "case"), NatOptions(ConversationOptions(context))
        )
    return table.to_pylist()


@pytest.mark.parametrize("fmt", ["default", "v5"])
@pytest.mark.parametrize("with_context", [False, True], ids=["logs-only", "context"])
def test_alerts_name_the_instance_behind_the_nat_gateway(worlds, fmt: str, with_context) -> None:
    world = worlds[("fw-after-nat", fmt)]
    rows = attributed(world, with_context)
    j = judged(world, rows)
    # every event is accounted for: one row each
    assert (
        len(rows)
        == duckdb.sql(f"SELECT count(*) FROM '{world}/truth/firewall_events.parquet'").fetchone()[0]
    )
    alerts = j.filter("log_type = 'alert'")
    assert alerts.filter("source_kind <> 'nat-gateway'").count("*").fetchone()[0] == 0
    easy = alerts.filter("hard < 0").fetchall()
    columns = alerts.columns
    right = sum(
        1 for r in easy if r[columns.index("instance_address")] == r[columns.index("truth")]
    )
    assert len(easy) > 20 and right == len(easy)
    # Sure answers are right, on netflow events too; what is not certain shows its candidates.
    wrong_sure = j.filter(
        "confidence IN ('certain', 'high') AND instance_address IS DISTINCT FROM truth"
    ).count("*")
    assert wrong_sure.fetchone()[0] == 0
    unsure = j.filter("source_kind = 'nat-gateway' AND confidence <> 'certain'")
    assert unsure.filter("(len(candidates) = 0) <> (candidate_count = 0)").fetchall() == []
    # Nothing found is said, not guessed: only ICMP (no ports, pings merged into one
    # conversation per peer) is ever left without a candidate.
    assert set(unsure.filter("candidate_count = 0").project("proto").fetchall()) <= {("ICMP",)}
    # The hard case: several instances, same destination, same second, same volumes: ambiguous,
    # never guessed, with the right instance among the candidates.
    hard = j.filter("hard >= 0 AND log_type = 'alert'").fetchall()
    assert len(hard) >= 2
    for row in hard:
        record = dict(zip(columns, row, strict=True))
        assert record["ambiguous"] and record["instance_address"] is None
        assert record["confidence"] == "unknown" and record["candidate_count"] >= 2
        assert any(c.startswith(f"{record['truth']}:") for c in record["candidates"])
    methods = {r["method"] for r in rows if r["source_kind"] == "nat-gateway"}
    assert methods <= set(METHODS)
    assert ("pkt-dstaddr" if fmt == "v5" else "instance-eni") in methods
    if with_context:
        named = [r for r in rows if r["instance_address"] and r["source_kind"] == "nat-gateway"]
        assert all(r["instance_id"] and r["instance_id"].startswith("i-") for r in named)
        assert all(r["nat_gateway"].startswith("nat-") for r in named)


def test_alerts_from_private_addresses_pass_through(worlds) -> None:
    world = worlds[("fw-before-nat", "default")]
    rows = attributed(world, with_context=True)
    alerts = [r for r in rows if r["log_type"] == "alert"]
    assert alerts and all(r["source_kind"] == "private" for r in alerts)
    assert all(r["method"] == "source-address" and r["confidence"] == "certain" for r in alerts)
    assert all(r["instance_address"] == r["src_ip"] for r in alerts)
    assert all(r["instance_id"].startswith("i-") for r in alerts)


def test_nat_links_and_top_talkers(worlds) -> None:
    world = worlds[("fw-after-nat", "default")]
    case = Case.open(world / "case")
    options = NatOptions(ConversationOptions(load_context(world / "context")), top=3)
    with DuckDBEngine() as engine:
        links = nat_links(engine, case, options).read_all().to_pylist()
        talkers = top_talkers(engine, case, options).to_pylist()
    truth = egress_truth(world)
    sure = [link for link in links if link["confidence"] in ("certain", "high")]
    assert len(sure) > 0.9 * len(links) > 100
    for link in sure:
        key = (link["nat_address"], link["nat_port"], link["destination"])
        assert truth[key] == link["instance_address"], link
        # default format: the instance's record names the destination, its private leg the
        # NAT gateway; SKIPDATA windows hide one or the other now and then
        assert link["legs"][0] == "public" and len(link["legs"]) >= 2
        assert ("instance" in link["legs"]) == (link["method"] == "instance-eni")
        assert link["instance_interface"].startswith("eni-")
    # Top talkers: per NAT gateway, instances and destinations ranked by bytes, three each.
    nats = {t["nat_address"] for t in talkers}
    assert len(nats) == 2
    for nat in nats:
        for side in ("instance", "destination"):
            ranked = [t for t in talkers if t["nat_address"] == nat and t["side"] == side]
            assert [t["rank"] for t in ranked] == [1, 2, 3]
            assert [t["bytes"] for t in ranked] == sorted(
                (t["bytes"] for t in ranked), reverse=True
            )
    connections = duckdb.sql(
        f"SELECT nat_ip, instance_ip, count(*) FROM '{world}/truth/connections.parquet' "
        "WHERE kind = 'egress' GROUP BY ALL"
    ).fetchall()
    counted = {(n, i): c for n, i, c in connections}
    for t in talkers:
        if t["side"] == "instance":
            # a few connections' records fall in SKIPDATA windows: never more than the truth
            assert 0.9 * counted[(t["nat_address"], t["address"])] <= t["connections"]
            assert t["connections"] <= counted[(t["nat_address"], t["address"])]


def test_aws_example_events_without_flow_logs(tmp_path: Path) -> None:
    """AWS's own examples without flow logs: a private source could be a NAT gateway's address
    as well as an instance's, so natlens says it cannot attribute rather than name it. With a
    context, the instance it names passes as certain, the NAT gateway's address names none."""
    ingest([str(FIXTURES / "network-firewall" / "aws-examples.log")], str(tmp_path / "case"),
           IngestOptions())  # fmt: skip
    case = Case.open(tmp_path / "case")
    with DuckDBEngine() as engine, pytest.raises(UsageError, match="no flow logs"):
        attribute(engine, case, NatOptions(ConversationOptions()))
    context = tmp_path / "context"
    context.mkdir()
    (context / "enis.json").write_text(json.dumps({"NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-i", "PrivateIpAddress": "10.0.2.53",
         "Attachment": {"InstanceId": "i-0123456789abcdef0"}},
        {"NetworkInterfaceId": "eni-nat", "InterfaceType": "nat_gateway",
         "Description": "Interface for NAT Gateway nat-0aaa", "PrivateIpAddress": "10.0.100.55"},
    ]}))  # fmt: skip
    options = NatOptions(ConversationOptions(load_context(context)))
    with DuckDBEngine() as engine:
        rows = attribute(engine, case, options).to_pylist()
    kinds = [(r["log_type"], r["source_kind"], r["instance_address"], r["confidence"])
             for r in rows]  # fmt: skip
    assert kinds == [
        ("flow", "internet", None, None),
        ("alert", "internet", None, None),
        ("tls", "private", "10.0.2.53", "certain"),
        ("alert", "nat-gateway", None, "unknown"),
    ]


def test_attribution_links_only_the_legs_it_needs(worlds, tmp_path: Path) -> None:
    """On a case without NAT links, attribute links only the public legs its events were
    matched to, and keeps no NAT links; after `nat` kept every link, it reads them. Same rows."""
    world = worlds[("fw-after-nat", "default")]
    options = NatOptions(ConversationOptions(load_context(world / "context")))
    case = Case.open(fresh_copy(world / "case", tmp_path))
    with DuckDBEngine() as engine:
        alone = attribute(engine, case, options)
    derived = case.path / "derived"
    assert not list(derived.glob("nat_nat_links-*"))
    assert list(derived.glob("nat_public_legs-*"))
    with DuckDBEngine() as engine:
        links = nat_links(engine, case, options).read_all()
    assert len(list(derived.glob("nat_nat_links-*"))) == 1
    with DuckDBEngine() as engine:
        after = attribute(engine, case, options)
    assert alone.num_rows == after.num_rows > 1000 and links.num_rows > 1000
    assert alone.to_pylist() == after.to_pylist()
    named = [r for r in alone.to_pylist() if r["source_kind"] == "nat-gateway"]
    assert sum(1 for r in named if r["instance_address"]) > 0.8 * len(named)


CONFIDENCE_ORDER = ("unknown", "low", "medium", "high", "certain")


def test_crowded_buckets_never_raise_confidence(worlds, tmp_path: Path, monkeypatch) -> None:
    """With room for only two legs per bucket, most rows meet a crowded bucket: they are
    compared with fewer legs than could be behind them. Their answer is then never surer than
    with every leg compared, and whatever they still name is the same instance."""
    from natlens.analyses import nat

    world = worlds[("fw-after-nat", "default")]
    options = NatOptions(ConversationOptions(load_context(world / "context")))
    with DuckDBEngine() as engine:
        full = nat_links(engine, Case.open(fresh_copy(world / "case", tmp_path / "a")), options)
        full_rows = full.read_all().to_pylist()
    monkeypatch.setattr(nat, "CANDIDATE_CAP", 2)
    monkeypatch.setattr(nat, "OPEN_CAP", 2)
    with DuckDBEngine() as engine:
        capped = nat_links(engine, Case.open(fresh_copy(world / "case", tmp_path / "b")), options)
        capped_rows = capped.read_all().to_pylist()
    assert len(capped_rows) == len(full_rows) > 1000
    lowered = 0
    for want, have in zip(full_rows, capped_rows, strict=True):
        assert have["public_conversation"] == want["public_conversation"]
        rank = CONFIDENCE_ORDER.index(have["confidence"])
        assert rank <= CONFIDENCE_ORDER.index(want["confidence"]), (want, have)
        lowered += rank < CONFIDENCE_ORDER.index(want["confidence"])
        if have["confidence"] != "unknown":
            assert have["instance_address"] == want["instance_address"], (want, have)
        if have["ambiguous"]:
            assert have["instance_address"] is None
        assert have["candidate_count"] <= want["candidate_count"]
    # the cap bit: answers past a crowded bucket are less sure
    assert lowered > 20, lowered
    # ... and the instances still named are those of the simulator's truth
    truth = egress_truth(world)
    sure = [r for r in capped_rows if r["confidence"] in ("certain", "high")]
    assert sure
    for link in sure:
        assert (
            truth[(link["nat_address"], link["nat_port"], link["destination"])]
            == (link["instance_address"])
        )


@pytest.mark.spark
def test_engines_agree(spark_engine, worlds, tmp_path: Path) -> None:
    """Spark and DuckDB, each on its own fresh copy of the case, give the same rows."""
    world = worlds[("fw-after-nat", "default")]
    options = NatOptions(ConversationOptions(load_context(world / "context")))
    duck_case = Case.open(fresh_copy(world / "case", tmp_path / "duckdb"))
    spark_case = Case.open(fresh_copy(world / "case", tmp_path / "spark"))
    with DuckDBEngine() as duck:
        expected = (
            nat_links(duck, duck_case, options).read_all(),
            top_talkers(duck, duck_case, options),
            attribute(duck, duck_case, options),
        )
    got = (
        nat_links(spark_engine, spark_case, options).read_all(),
        top_talkers(spark_engine, spark_case, options),
        attribute(spark_engine, spark_case, options),
    )
    for want, have in zip(expected, got, strict=True):
        assert have.num_rows == want.num_rows > 10
        assert have.to_pylist() == want.to_pylist()


def test_queries_are_portable() -> None:
    options = NatOptions(ConversationOptions())
    for sql in (nat_links_sql(options), top_talkers_sql(options), attribute_sql(options)):
        assert check_portable(sql) == []


def test_vocabularies_are_documented() -> None:
    doc = (DOCS / "nat.md").read_text()
    for word in [*METHODS, *SOURCE_KINDS]:
        assert f"`{word}`" in doc, word


@pytest.mark.s3
def test_cli_attribute_from_s3_delivered_logs(tmp_path: Path, natlens, s3_server) -> None:
    """The issue's 'done when': both log types as gzip files in AWS's S3 layout."""
    world = tmp_path / "world"
    simulate(world, SimulateOptions(scenario="fw-after-nat", minutes=10, seed=8))
    client = s3_server.client()
    bucket = f"natlens-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    for folder in ("flowlogs/vpc", "firewall"):
        for path in sorted((world / folder).rglob("*.gz")):
            key = "logs/" + str(path.relative_to(world / folder))
            client.upload_file(str(path), bucket, key)
    endpoint = ("--endpoint-url", s3_server.endpoint)
    run = natlens("ingest", f"s3://{bucket}/logs/", "--case", tmp_path / "case", *endpoint)
    assert run.code == 0, run.err
    run = natlens("attribute", tmp_path / "case", "--log-type", "alert", "--format", "jsonl",
                  "--context", world / "context")  # fmt: skip
    assert run.code == 0, run.err
    assert "the firewall sits after the NAT gateway" in run.err
    assert "natlens topology" in run.err
    rows = run.jsonl()
    assert rows and all(r["log_type"] == "alert" for r in rows)
    said = {(r["source"].split(f"s3://{bucket}/logs/")[-1], r["line"]): r for r in rows}
    truth = duckdb.sql(
        f"SELECT file, line, source_ip, hard_case_group FROM '{world}/truth/firewall_events.parquet'"
        " WHERE log_type = 'alert'"
    ).fetchall()
    assert len(truth) == len(rows)
    for file, line, source_ip, hard in truth:
        row = said[(file.removeprefix("firewall/"), line)]
        if hard < 0:
            assert row["instance_address"] == source_ip and row["confidence"] == "certain"
        else:
            assert row["ambiguous"] and row["instance_address"] is None
    run = natlens("nat", tmp_path / "case", "--top-talkers", "--top", "2", "--format", "jsonl")
    assert run.code == 0, run.err
    talkers = run.jsonl()
    nats = {t["nat_address"] for t in talkers}
    assert len(nats) == 2
    assert sorted((t["nat_address"], t["side"], t["rank"]) for t in talkers) == sorted(
        (nat, side, rank) for nat in nats for side in ("instance", "destination") for rank in (1, 2)
    )


@pytest.mark.parametrize(
    ("analysis", "command"), [("nat", ["nat"]), ("top-talkers", ["nat", "--top-talkers"])]
)
def test_printed_sql_on_aws_columns_gives_the_same_rows(
    natlens, v5_worlds, tmp_path, analysis: str, command: list[str]
) -> None:
    """`natlens sql nat --table vpc_flow_logs` (what a user runs on Athena's flow-log table,
    AWS's columns only), run on DuckDB over such a table, gives the rows `natlens nat` gives on
    the case."""
    from natlens.engine import sql_string
    from natlens.schema import FLOWS_SCHEMA

    case = fresh_copy(v5_worlds["fw-after-nat"] / "case", tmp_path)
    parts = ", ".join(sql_string(str(p)) for p in Case.open(case).parts())
    con = duckdb.connect()
    # AWS's columns only: the parts' own, without natlens's provenance and address numbers
    con.execute(
        "CREATE VIEW vpc_flow_logs AS SELECT COLUMNS(c -> c NOT IN ('source', 'line', 'extra') "
        f"AND NOT c LIKE '%\\_v4' ESCAPE '\\') FROM read_parquet([{parts}], union_by_name = true)"
    )
    names = [r[0] for r in con.execute("DESCRIBE vpc_flow_logs").fetchall()]
    assert "srcaddr" in names and not [n for n in names if n.endswith("_v4") or n == "source"]
    assert set(names) <= set(FLOWS_SCHEMA.names)
    printed = natlens("sql", analysis, "--table", "vpc_flow_logs")
    assert printed.code == 0, printed.err
    got = con.execute(printed.out.rstrip().rstrip(";")).to_arrow_table().to_pylist()
    ran = natlens(*command, case, "--format", "jsonl")
    assert ran.code == 0, ran.err
    want = ran.jsonl()
    assert len(got) == len(want) > 0
    assert sorted(got[0]) == sorted(want[0])

    def canonical(rows: list[dict[str, object]]) -> list[str]:
        return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)

    g, w = canonical(got), canonical(json.loads(json.dumps(want)))
    print("ONLY_GOT", [x for x in g if x not in w][:2])
    print("ONLY_WANT", [x for x in w if x not in g][:2])
    assert g == w


@pytest.mark.parametrize(
    "window", [(), ("--since", "2024-06-01T00:05:00Z", "--until", "2024-06-01T00:08:00Z")]
)
def test_printed_attribute_on_aws_flow_columns_gives_the_same_rows(
    natlens, v5_worlds, tmp_path, window
) -> None:
    """`natlens sql attribute --table vpc_flow_logs`, run on DuckDB over AWS's flow-log columns
    and the case's own firewall_events table, gives the rows `natlens attribute` gives (with a
    window: the flow records either side of it read as evidence by both)."""
    from natlens.engine import sql_string

    world = v5_worlds["fw-after-nat"]
    case = Case.open(fresh_copy(world / "case", tmp_path))
    con = duckdb.connect()
    flows = ", ".join(sql_string(str(p)) for p in case.parts())
    events = ", ".join(sql_string(str(p)) for p in case.parts("firewall_events"))
    con.execute(
        "CREATE VIEW vpc_flow_logs AS SELECT COLUMNS(c -> c NOT IN ('source', 'line', 'extra') "
        f"AND NOT c LIKE '%\\_v4' ESCAPE '\\') FROM read_parquet([{flows}], union_by_name = true)"
    )
    con.execute(
        "CREATE VIEW firewall_events AS SELECT * FROM "
        f"read_parquet([{events}], union_by_name = true)"
    )
    printed = natlens(
        "sql", "attribute", "--table", "vpc_flow_logs", "--dialect", "duckdb", *window
    )
    assert printed.code == 0, printed.err
    got = con.execute(printed.out.rstrip().rstrip(";")).to_arrow_table().to_pylist()
    ran = natlens("attribute", case.path, "--format", "jsonl", *window)
    assert ran.code == 0, ran.err
    want = json.loads(json.dumps(ran.jsonl()))
    assert len(got) == len(want) > 10
    assert {r["log_type"] for r in want} == (
        {"alert", "flow", "tls"} if not window else {"alert", "flow"}
    )

    def canonical(rows: list[dict[str, object]]) -> list[str]:
        return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)

    assert canonical(got) == canonical(want)


def test_a_window_does_not_hide_competing_legs(tmp_path: Path) -> None:
    """attribute --since/--until answers for the events in the window; the flow records just
    outside it are still evidence. Cut away, a leg that competes with the one inside is unseen
    and the answer looks surer than it is (before the margin: 'unknown' became 'certain' for
    another instance). Every event in the window gets the answer it gets with the whole hour."""
    world = tmp_path / "world"
    simulate(world, SimulateOptions(scenario="fw-after-nat", minutes=15, records=300_000, seed=3))
    case = tmp_path / "case"
    ingest([str(world / "flowlogs"), str(world / "firewall")], str(case), IngestOptions())
    shown = ["--context", world / "context", "--format", "jsonl"]
    whole = run_cli("attribute", case, *shown)
    window = ["--since", "2024-06-01T00:05:00Z", "--until", "2024-06-01T00:10:00Z"]
    part = run_cli("attribute", case, *shown, *window)
    assert whole.code == 0 and part.code == 0, whole.err + part.err
    answer = ("confidence", "instance_address", "instance_port", "instance_id", "ambiguous")

    def keyed(run: Run) -> dict[tuple[str, int], tuple[object, ...]]:
        rows = (json.loads(line) for line in run.out.splitlines())
        return {(r["source"], r["line"]): tuple(r[k] for k in answer) for r in rows
                if 1717200300 <= r["event_time"] <= 1717200600}  # fmt: skip

    inside, everything = keyed(part), keyed(whole)
    assert len(inside) > 10_000
    sure = sum(v[0] in ("certain", "high") for v in inside.values())
    assert sure > len(inside) // 2
    assert {k: everything[k] for k in inside} == inside
