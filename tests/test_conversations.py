"""Conversations, initiator inference, inbound verdicts and explain: on AWS's own examples, on
hand-written records for each rule, and on simulated worlds against their truth, on DuckDB and
Spark."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from benchmarks import accuracy
from natlens.analyses.conversations import (
    ConversationOptions,
    conversations,
    conversations_sql,
    service_ports,
)
from natlens.analyses.inbound import inbound, inbound_sql
from natlens.case import Case
from natlens.engine import DuckDBEngine, check_portable, translate
from natlens.formats.describe_json import load_context
from natlens.ingest import IngestOptions, ingest
from natlens.schema import CONFIDENCES, EVIDENCE, ROLES, VERDICTS
from tests.conftest import AWS_EXAMPLES, fresh_copy

HEADER = "version interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status tcp-flags\n"


def case_of(tmp_path: Path, text: str, name: str = "flows.log") -> Case:
    source = tmp_path / name
    source.write_text(text)
    report = ingest([str(source)], str(tmp_path / "case"), IngestOptions())
    return Case.open(report.case)


def rows(case: Case, options: ConversationOptions | None = None) -> list[dict]:
    with DuckDBEngine() as engine:
        return conversations(engine, case, options).to_pylist()


def verdicts(case: Case, options: ConversationOptions | None = None) -> dict[str, dict]:
    with DuckDBEngine() as engine:
        return {r["address"]: r for r in inbound(engine, case, options).to_pylist()}


# -- AWS's examples (docs/aws.md §3) --------------------------------------------------------


def test_tcp_flag_example_is_certain(aws_case) -> None:
    case = aws_case("tcp-flags")
    found = rows(case)
    assert {(r["client_port"], r["server_addr"], r["server_port"]) for r in found} == {
        (43416, "10.0.0.62", 5001), (43418, "10.0.0.62", 5001), (43638, "10.0.0.62", 5001)
    }  # fmt: skip
    for r in found:
        assert r["confidence"] == "certain"
        assert r["evidence"][:2] == ["tcp-syn", "tcp-synack"]


def test_icmp_example_is_unknown_and_undetermined(aws_case) -> None:
    """No ports, no flags, no NAT gateway: natlens says it cannot know, and why."""
    case = aws_case("icmp-sg-nacl")
    (conversation,) = rows(case)
    assert conversation["confidence"] == "unknown"
    assert conversation["evidence"] == ["no-evidence"]
    assert conversation["roles_from"] == "none"
    assert conversation["actions"] == "ACCEPT,REJECT"
    verdict = verdicts(case)["203.0.113.12"]
    assert verdict["verdict"] == "undetermined"
    assert "--context" in verdict["recommendation"]


def test_icmp_example_decided_by_the_nat_rule_when_context_says_so(
    tmp_path: Path, aws_case
) -> None:
    """The same records, with context naming 172.31.16.139 an instance without a public IP:
    the internet cannot open connections to it, so the ping came from it."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "enis.json").write_text(json.dumps({"NetworkInterfaces": [{
        "NetworkInterfaceId": "eni-1235b8ca123456789", "InterfaceType": "interface",
        "PrivateIpAddress": "172.31.16.139",
        "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": "172.31.16.139"}],
        "Attachment": {"InstanceId": "i-0aaaabbbbccccdddd"},
    }]}))  # fmt: skip
    options = ConversationOptions(context=load_context(context))
    (conversation,) = rows(aws_case("icmp-sg-nacl"), options)
    assert conversation["client_addr"] == "172.31.16.139"
    assert conversation["evidence"] == ["nat-return-only"]
    assert conversation["server_role"] == "internet"
    assert conversation["client_resource"] == "i-0aaaabbbbccccdddd"
    assert conversation["roles_from"] == "context"  # the output says what decided it


def test_nat_example_counts_the_connection_once_and_names_the_instance(aws_case) -> None:
    """AWS's NAT gateway example: the private leg and the instance's own records are one
    conversation seen on two interfaces; the host's replies are a response to 10.0.1.5."""
    case = aws_case("nat-gateway")
    found = {(r["client_addr"], r["server_addr"]): r for r in rows(case)}
    assert set(found) == {("10.0.1.5", "203.0.113.5"), ("10.0.0.220", "203.0.113.5")}
    private = found[("10.0.1.5", "203.0.113.5")]
    assert private["interfaces"] == ["eni-1111aaaa2222bbbb3", "eni-1235b8ca123456789"]
    assert private["records"] == 4 and "nat-return-only" in private["evidence"]
    assert private["client_role"] == "instance" and private["server_role"] == "internet"
    verdict = verdicts(case)["203.0.113.5"]
    assert verdict["verdict"] == "response"
    assert verdict["instances"] == ["10.0.1.5"] and verdict["gateways"] == ["10.0.0.220"]
    assert verdict["roles_from"] == "inferred"


def test_reject_without_reply_points_at_the_sender(aws_case) -> None:
    found = {r["server_port"]: r for r in rows(aws_case("accepted-rejected"))}
    assert found[3389]["client_addr"] == "172.31.9.69"
    assert found[3389]["evidence"][:1] == ["reject-side"]
    assert found[22]["client_addr"] == "172.31.16.139"


@pytest.fixture
def aws_case(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Case]:
    """A fresh case of one of AWS's example files, under pytest's temporary directory."""

    def make(name: str) -> Case:
        directory = tmp_path_factory.mktemp(name)
        report = ingest([str(AWS_EXAMPLES / f"{name}.log")], str(directory / "case"),
                        IngestOptions())  # fmt: skip
        return Case.open(report.case)

    return make


# -- one rule at a time, on hand-written records -------------------------------------------------


def test_long_connection_is_one_conversation_and_reuse_after_idle_timeout_is_another(
    tmp_path: Path,
) -> None:
    lines = [
        # one connection over three capture windows
        "3 eni-a 10.0.1.5 198.51.100.7 40000 443 6 5 500 1000 1059 ACCEPT OK 2",
        "3 eni-a 198.51.100.7 10.0.1.5 443 40000 6 5 900 1000 1059 ACCEPT OK 18",
        "3 eni-a 10.0.1.5 198.51.100.7 40000 443 6 5 500 1060 1119 ACCEPT OK 0",
        "3 eni-a 198.51.100.7 10.0.1.5 443 40000 6 5 900 1060 1119 ACCEPT OK 0",
        "3 eni-a 10.0.1.5 198.51.100.7 40000 443 6 5 500 1300 1359 ACCEPT OK 1",
        # the same 5-tuple after more than 350 s of silence: a new connection
        "3 eni-a 10.0.1.5 198.51.100.7 40000 443 6 3 300 1800 1810 ACCEPT OK 3",
        "3 eni-a 198.51.100.7 10.0.1.5 443 40000 6 3 300 1800 1810 ACCEPT OK 19",
    ]
    found = rows(case_of(tmp_path, HEADER + "\n".join(lines) + "\n"))
    assert [(r["first_seen"], r["last_seen"], r["records"]) for r in found] == [
        (1000, 1359, 5), (1800, 1810, 2)
    ]  # fmt: skip
    assert [r["packets_to_server"] for r in found] == [15, 3]
    assert all(r["confidence"] == "certain" for r in found)


def test_disagreeing_evidence_lowers_the_confidence_and_is_shown(tmp_path: Path) -> None:
    """A SYN from port 443 to an ephemeral port: the flags win, the ports are shown against."""
    lines = [
        "3 eni-a 10.0.1.5 10.0.2.9 443 50000 6 1 60 1000 1001 ACCEPT OK 2",
        "3 eni-a 10.0.2.9 10.0.1.5 50000 443 6 1 60 1000 1001 ACCEPT OK 18",
    ]
    (found,) = rows(case_of(tmp_path, HEADER + "\n".join(lines) + "\n"))
    assert (found["client_addr"], found["client_port"]) == ("10.0.1.5", 443)
    assert found["confidence"] == "high"  # certain without the disagreement
    assert found["against"] == ["service-port"]


def test_unsolicited_packets_to_a_nat_gateway_from_context(tmp_path: Path) -> None:
    """Knowledge-center situation: internet packets logged ACCEPT on the NAT gateway's
    interface, nothing sent back: unsolicited, with the network ACL advice."""
    lines = [
        "3 eni-nat 203.0.113.50 10.0.0.220 51515 22 6 1 44 1000 1001 ACCEPT OK 2",
        "3 eni-nat 203.0.113.50 10.0.0.220 51516 8080 6 1 44 1000 1001 ACCEPT OK 2",
    ]
    context = tmp_path / "context"
    context.mkdir()
    (context / "nat.json").write_text(json.dumps({"NatGateways": [{
        "NatGatewayId": "nat-0123456789abcdef0", "SubnetId": "subnet-0aaa", "VpcId": "vpc-1",
        "NatGatewayAddresses": [{"NetworkInterfaceId": "eni-nat", "PrivateIp": "10.0.0.220",
                                 "PublicIp": "54.1.2.3", "IsPrimary": True}],
    }]}))  # fmt: skip
    case = case_of(tmp_path, HEADER + "\n".join(lines) + "\n")
    options = ConversationOptions(context=load_context(context))
    for r in rows(case, options):
        assert (
            r["client_addr"] == "203.0.113.50" and r["server_resource"] == "nat-0123456789abcdef0"
        )
        assert r["evidence"][:2] == ["tcp-syn", "nat-unsolicited"]
    verdict = verdicts(case, options)["203.0.113.50"]
    assert verdict["verdict"] == "unsolicited" and verdict["roles_from"] == "context"
    assert verdict["gateways"] == ["nat-0123456789abcdef0"] and verdict["probed_ports"] == [
        22,
        8080,
    ]
    advice = verdict["recommendation"]
    assert "subnet-0aaa" in advice and "0-1023" in advice and "203.0.113.50/32" in advice


def test_service_list_is_the_bundled_one() -> None:
    ports = service_ports()
    assert 3306 in ports["tcp"] and 8080 in ports["tcp"] and len(ports["tcp"]) > 100
    assert all(p >= 1024 for p in ports["tcp"])


def test_vocabularies_are_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "conversations.md").read_text()
    for word in [*EVIDENCE, *VERDICTS, *CONFIDENCES, *ROLES]:
        assert f"`{word}`" in doc, word


# -- simulated worlds against their truth --------------------------------------------------------


@pytest.fixture(scope="module")
def small_worlds(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("accuracy")
    return {
        (scenario, fmt): accuracy.build_world(root, scenario, fmt, minutes=12, seed=3)
        for scenario in ("fw-after-nat", "exposed-instance")
        for fmt in ("default", "v5")
    }


@pytest.mark.parametrize("with_context", [False, True], ids=["logs-only", "context"])
def test_accuracy_targets_hold(small_worlds, with_context: bool) -> None:
    results = [
        accuracy.evaluate(world, scenario, fmt, with_context)
        for (scenario, fmt), world in small_worlds.items()
    ]
    assert accuracy.failures(results) == []
    assert all(r.conversations > 500 and r.addresses > 100 for r in results)


def test_knowledge_center_situations_on_a_simulated_vpc(small_worlds) -> None:
    """Scanner traffic logged ACCEPT on the NAT gateway is unsolicited; reply traffic is a
    response with the instance named (by instance id, from the context)."""
    world = small_worlds[("fw-after-nat", "default")]
    truth = duckdb.sql(
        f"SELECT address, verdict, instance_ids FROM '{world}/truth/inbound.parquet'"
    ).fetchall()
    options = ConversationOptions(context=load_context(world / "context"))
    said = verdicts(Case.open(world / "case"), options)
    named = responses = 0
    for address, verdict, instance_ids in truth:
        assert said[address]["verdict"] == verdict
        if verdict == "response":
            # SKIPDATA windows can hide an instance's own records (the simulator drops them):
            # natlens names the instances whose records it has, never another.
            assert set(said[address]["instances"]) <= set(instance_ids)
            named += said[address]["instances"] == sorted(instance_ids)
            responses += 1
        if verdict == "unsolicited":
            assert said[address]["instances"] == []
            # the firewall endpoint in front of the NAT gateway logged them ACCEPT too (alone,
            # when the NAT gateway's network ACL rejected telnet)
            gateways = said[address]["gateways"]
            assert gateways and all(g.startswith(("nat-", "vpce-")) for g in gateways), gateways
    assert named >= 0.95 * responses


@pytest.mark.spark
def test_engines_agree(spark_engine, small_worlds, tmp_path: Path) -> None:
    """Spark and DuckDB, each on its own fresh copy of the case (no derived table of the
    other's or of an earlier test), give the same rows."""
    world = small_worlds[("fw-after-nat", "v5")]
    options = ConversationOptions(context=load_context(world / "context"))
    duck_case = Case.open(fresh_copy(world / "case", tmp_path / "duckdb"))
    spark_case = Case.open(fresh_copy(world / "case", tmp_path / "spark"))
    with DuckDBEngine() as duck:
        expected = (conversations(duck, duck_case, options), inbound(duck, duck_case, options))
    got = (conversations(spark_engine, spark_case, options),
           inbound(spark_engine, spark_case, options))  # fmt: skip
    for want, have in zip(expected, got, strict=True):
        assert have.num_rows == want.num_rows > 100
        assert have.to_pylist() == want.to_pylist()


def test_athena_query_on_aws_columns_gives_the_same_answers(small_worlds) -> None:
    """`natlens sql --table vpc_flow_logs` reads a table with AWS's columns only."""
    world = small_worlds[("exposed-instance", "v5")]
    case = Case.open(world / "case")
    aws_columns = "version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport, " \
        'protocol, packets, bytes, start, "end", action, log_status, tcp_flags, pkt_srcaddr, ' \
        "pkt_dstaddr"  # fmt: skip
    with DuckDBEngine() as engine:
        engine.register_case(case)
        engine.con.execute(f"CREATE VIEW vpc_flow_logs AS SELECT {aws_columns} FROM flows")
        for make in (conversations_sql, inbound_sql):
            ours = engine.query(make(ConversationOptions()))
            theirs = engine.query(
                translate(make(ConversationOptions(), in_case=False), "duckdb",
                          tables={"flows": "vpc_flow_logs"})
            )  # fmt: skip
            assert theirs.to_pylist() == ours.to_pylist()


def test_queries_are_portable() -> None:
    for sql in (
        conversations_sql(),
        inbound_sql(),
        conversations_sql(in_case=False),
        inbound_sql(in_case=False),
    ):
        assert check_portable(sql) == []
        for dialect in ("spark", "athena"):
            assert "known_hosts" in translate(sql, dialect)


# -- the command line ----------------------------------------------------------------------------


def test_cli_conversations_formats_and_filters(natlens, small_worlds, tmp_path: Path) -> None:
    world = small_worlds[("exposed-instance", "default")]
    case = world / "case"
    every = natlens("conversations", case, "--format", "jsonl").jsonl()
    assert every and set(every[0]) >= {"client_addr", "confidence", "evidence", "interfaces"}
    ssh = natlens("conversations", case, "--port", "22", "--format", "jsonl").jsonl()
    assert ssh and all(22 in (r["client_port"], r["server_port"]) for r in ssh)
    one = every[0]["server_addr"]
    mine = natlens("conversations", case, "--ip", one, "--format", "jsonl").jsonl()
    # Exactly the conversations with that address on either side, whole.
    assert mine == [r for r in every if one in (r["client_addr"], r["server_addr"])]
    assert 0 < len(mine) < len(every)
    out = tmp_path / "c.parquet"
    run = natlens("conversations", case, "--format", "parquet", "--output", out)
    assert run.code == 0 and pq.read_table(out).num_rows == len(every)
    refused = natlens("conversations", case, "--format", "parquet")
    assert refused.code == 64 and "--output" in refused.err
    assert natlens("conversations", case, "--ip", "not-an-ip").code == 64


def test_cli_inbound_flags_the_exposed_instance(natlens, small_worlds) -> None:
    world = small_worlds[("exposed-instance", "default")]
    found = natlens("inbound", world / "case", "--context", world / "context",
                    "--format", "jsonl").jsonl()  # fmt: skip
    exposed = [r for r in found if r["verdict"] == "exposed"]
    assert exposed
    instance = duckdb.sql(
        f"SELECT DISTINCT instance_id FROM '{world}/truth/connections.parquet' "
        "WHERE kind = 'exposed-inbound'"
    ).fetchall()[0][0]
    assert all(any(e.startswith(instance + ":") for e in r["exposed_on"]) for r in exposed)
    assert "reachable from the internet" in exposed[0]["recommendation"]
    only = natlens("inbound", world / "case", "--ip", exposed[0]["address"], "--format", "jsonl")
    assert [r["address"] for r in only.jsonl()] == [exposed[0]["address"]]


def test_cli_explain(natlens, small_worlds) -> None:
    world = small_worlds[("fw-after-nat", "v5")]
    address = duckdb.sql(
        f"SELECT address FROM '{world}/truth/inbound.parquet' WHERE verdict = 'unsolicited' "
        "ORDER BY address LIMIT 1"
    ).fetchall()[0][0]
    run = natlens("explain", world / "case", address, "--context", world / "context")
    assert run.code == 0, run.err
    assert run.out.startswith(f"{address}: unsolicited")
    assert "isIpv4InSubnet(dstAddr, '10.0.0.0/16')" in run.out
    assert " like " not in run.out
    report = natlens("explain", world / "case", address, "--format", "json").json()
    assert report["verdict"] == "unsolicited" and report["records"] and report["conversations"]
    assert any("CIDR" in note for note in report["notes"])  # no context: says what it assumed


def test_cli_sql_prints_the_analyses(natlens) -> None:
    for name in ("conversations", "inbound"):
        run = natlens("sql", name, "--dialect", "athena", "--table", "vpc_flow_logs")
        assert run.code == 0 and "vpc_flow_logs" in run.out and "REGEXP_LIKE" in run.out
        spark = natlens("sql", name, "--dialect", "spark")
        assert spark.code == 0 and "FROM flows" in spark.out


def test_cli_bad_context_is_reported(natlens, tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    run = natlens("inbound", AWS_EXAMPLES / "tcp-flags.log", "--context", empty)
    assert run.code == 2 and "no describe-* JSON" in run.err


def test_case_keeps_one_derived_copy_per_state(tmp_path: Path, aws_case) -> None:
    """conversations, inbound and explain pair the records once per case state and options."""
    import shutil

    case = aws_case("tcp-flags")
    first = rows(case)
    derived = sorted((case.path / "derived").iterdir())
    assert len(derived) == 1 and (derived[0] / "_complete").exists()
    written = sorted(p.stat().st_mtime_ns for p in derived[0].iterdir())
    assert verdicts(case) == verdicts(case)
    # inbound read the copy conversations made: nothing was written again
    assert sorted((case.path / "derived").iterdir()) == derived
    assert sorted(p.stat().st_mtime_ns for p in derived[0].iterdir()) == written
    window = ConversationOptions(since=1566848875, until=1566849000)
    assert len(rows(case, window)) == 2  # other options: another copy, the old one removed
    assert sorted((case.path / "derived").iterdir()) != derived
    ingest([str(AWS_EXAMPLES / "accepted-rejected.log")], str(case.path), IngestOptions())
    grown = Case.open(case.path)
    assert len(rows(grown)) == len(first) + 2
    # a case that cannot hold a derived copy is analysed all the same
    shutil.rmtree(case.path / "derived")
    (case.path / "derived").write_text("not a directory")
    assert len(rows(Case.open(case.path))) == len(first) + 2


def test_load_balancer_ports_are_ephemeral_toward_its_targets(tmp_path: Path) -> None:
    """AWS: a load balancer connects to its targets from ports 1024-65535, even from one that
    is a listed service (3306): only the context can say the address is a load balancer."""
    lines = [
        "3 eni-t 10.0.1.40 10.0.2.9 3306 8443 6 3 300 1000 1001 ACCEPT OK 0",
        "3 eni-t 10.0.2.9 10.0.1.40 8443 3306 6 3 900 1000 1001 ACCEPT OK 0",
    ]
    case = case_of(tmp_path, HEADER + "\n".join(lines) + "\n")
    (guess,) = rows(case)
    assert guess["server_port"] == 3306  # by ports alone, 3306 looks like the server
    context = tmp_path / "context"
    context.mkdir()
    # the context holds the logs' own interface too (a context naming none of them is
    # another VPC's, and is not used)
    (context / "enis.json").write_text(json.dumps({"NetworkInterfaces": [{
        "NetworkInterfaceId": "eni-lb", "InterfaceType": "interface",
        "Description": "ELB app/web/0123456789abcdef", "PrivateIpAddress": "10.0.1.40",
    }, {
        "NetworkInterfaceId": "eni-t", "InterfaceType": "interface", "PrivateIpAddress": "10.0.2.9",
        "Attachment": {"InstanceId": "i-target"},
    }]}))  # fmt: skip
    (known,) = rows(case, ConversationOptions(context=load_context(context)))
    assert (known["client_addr"], known["client_port"]) == ("10.0.1.40", 3306)
    assert known["client_role"] == "load-balancer" and "ephemeral-port" in known["evidence"]
    assert known["client_resource"] == "app/web/0123456789abcdef"


def test_running_out_of_memory_is_an_environment_problem(natlens, small_worlds) -> None:
    case = small_worlds[("fw-after-nat", "v5")] / "case"
    run = natlens("conversations", case, "--memory-limit", "1MB", "--format", "csv")
    assert run.code == 3 and "DuckDB ran out of memory" in run.err and "Traceback" not in run.err
    assert "--memory-limit" in run.err
    run = natlens("conversations", case, "--memory-limit", "lots")
    assert run.code == 64 and "--memory-limit 'lots'" in run.err
