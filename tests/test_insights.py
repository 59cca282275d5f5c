"""natlens insights: CloudWatch Logs Insights queries, run offline.

The queries are AWS's own, verbatim (placeholders filled): the sample queries for VPC flow logs
(the Logs Insights guide's and the console's), and the knowledge-center articles' (docs/aws.md
§5). They run on fixtures/insights/flows.log, a small VPC whose every expected row below was
counted by hand from that file (see fixtures/insights/README.md), and on AWS's Network Firewall
log examples.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from natlens.case import Case
from natlens.engine import DuckDBEngine, Engine
from natlens.errors import UsageError
from natlens.insights import compile_query, run, sql_text
from natlens.insights.parse import parse
from natlens.insights.run import _shown
from tests.conftest import AWS_EXAMPLES, FIXTURES, run_cli

FLOWS = FIXTURES / "insights" / "flows.log"
FIREWALL = FIXTURES / "network-firewall" / "aws-examples.log"
NAT, VPC = "10.0.0.5", "10.0.0.0/16"


def _ingest(sources: list[Path], case: Path, *options: str) -> Path:
    result = run_cli("ingest", *sources, "--case", case, *options)
    assert result.code == 0, result.err
    return case


@pytest.fixture(scope="module")
def flows_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _ingest([FLOWS], tmp_path_factory.mktemp("insights") / "case")


@pytest.fixture(scope="module")
def firewall_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _ingest([FIREWALL], tmp_path_factory.mktemp("insights-fw") / "case")


@pytest.fixture(scope="module")
def duck() -> Iterator[Engine]:
    with DuckDBEngine() as engine:
        yield engine


def rows(engine: Engine, case: Path, query: str) -> list[tuple[object, ...]]:
    with Case.open(case) as opened:
        table = run(engine, opened, query).table
    return [tuple(r.values()) for r in table.to_pylist()]


def columns(engine: Engine, case: Path, query: str) -> list[str]:
    with Case.open(case) as opened:
        return run(engine, opened, query).table.column_names


# -- AWS's sample queries for VPC flow logs (Logs Insights guide, "Sample queries")


def test_top_15_packet_transfers(duck: Engine, flows_case: Path) -> None:
    query = (
        "stats sum(packets) as packetsTransferred by srcAddr, dstAddr\n"
        "| sort packetsTransferred  desc\n"
        "| limit 15"
    )
    got = rows(duck, flows_case, query)
    assert columns(duck, flows_case, query) == ["srcAddr", "dstAddr", "packetsTransferred"]
    # 16 pairs; the NODATA and SKIPDATA records (- to -, no packets) sort last and are cut.
    assert got[:2] == [("198.51.100.7", NAT, 18), (NAT, "198.51.100.7", 15)]
    assert sorted(got, key=repr) == sorted(
        [
            ("198.51.100.7", NAT, 18), (NAT, "198.51.100.7", 15),
            ("198.51.100.7", "10.0.1.10", 12), (NAT, "10.0.1.10", 12),
            ("10.0.1.10", "198.51.100.7", 10), ("10.0.1.10", NAT, 10),
            ("198.51.100.7", "10.0.1.20", 6), (NAT, "10.0.1.20", 6),
            ("10.0.1.20", "198.51.100.7", 5), ("10.0.1.20", NAT, 5),
            ("2001:db8:1::10", "2600:1f18::1", 3),
            ("203.0.113.9", NAT, 2), ("110.0.3.4", NAT, 2),
            ("10.0.1.10", "10.0.1.20", 1), ("203.0.113.9", "10.0.1.20", 1),
        ],
        key=repr,
    )  # fmt: skip
    assert [r[2] for r in got] == sorted((r[2] for r in got), reverse=True)


def test_top_byte_transfers_for_a_subnet(duck: Engine, flows_case: Path) -> None:
    query = (
        'filter isIpv4InSubnet(srcAddr, "10.0.0.0/16")\n'
        "| stats sum(bytes) as bytesTransferred by dstAddr\n"
        "| sort bytesTransferred desc\n"
        "| limit 15"
    )
    assert rows(duck, flows_case, query) == [
        ("10.0.1.10", 9000), ("10.0.1.20", 3076), ("198.51.100.7", 3000), (NAT, 1500),
    ]  # fmt: skip


def test_addresses_using_udp(duck: Engine, flows_case: Path) -> None:
    got = rows(duck, flows_case, "filter protocol=17 | stats count(*) by srcAddr")
    assert sorted(got) == [("10.0.1.10", 1), ("110.0.3.4", 1)]
    assert columns(duck, flows_case, "filter protocol=17 | stats count(*) by srcAddr") == [
        "srcAddr",
        "count(*)",
    ]


def test_skipped_records_per_hour(duck: Engine, flows_case: Path) -> None:
    query = 'filter logStatus="SKIPDATA"\n| stats count(*) by bin(1h) as t\n| sort t'
    assert rows(duck, flows_case, query) == [("2024-06-01 00:00:00.000", 1)]


def test_console_sample_queries(duck: Engine, flows_case: Path) -> None:
    """The sample queries the CloudWatch console lists for VPC flow logs."""
    averages = {
        (r[0], r[1]): r[2:]
        for r in rows(
            duck, flows_case, "stats avg(bytes), min(bytes), max(bytes) by srcAddr, dstAddr"
        )
    }
    assert averages[("198.51.100.7", NAT)] == (6000.0, 3000, 9000)
    assert averages[("203.0.113.9", NAT)] == (40.0, 40, 40)
    top = rows(
        duck,
        flows_case,
        "stats sum(bytes) as bytesTransferred by srcAddr, dstAddr |\n"
        "sort bytesTransferred desc |\nlimit 10",
    )
    assert [r[2] for r in top] == [12000, 9000, 9000, 3000, 3000, 1500, 1000, 1000, 500, 500]
    assert top[0] == ("198.51.100.7", NAT, 12000)
    rejected = rows(
        duck,
        flows_case,
        'filter action="REJECT" |\nstats count(*) as numRejections by srcAddr |\n'
        "sort numRejections desc |\nlimit 20",
    )
    assert rejected == [("203.0.113.9", 2)]


# -- the knowledge-center articles (docs/aws.md §5)


def test_nat_gateway_inbound_article(duck: Engine, flows_case: Path) -> None:
    """§5.1: traffic from a public address to the NAT gateway's private address only was
    unsolicited; traffic that reaches instances too was replies."""
    query = (
        "filter (dstAddr like 'xxx.xxx' and srcAddr like 'public IP')\n"
        "| stats sum(bytes) as bytesTransferred by srcAddr, dstAddr\n"
        "| limit 10"
    )

    def ask(public: str) -> list[tuple[object, ...]]:
        filled = query.replace("xxx.xxx", "10.0").replace("public IP", public)
        return sorted(rows(duck, flows_case, filled), key=repr)

    # the scanner: the NAT gateway, and an instance whose security group rejected it
    assert ask("203.0.113.9") == [("203.0.113.9", NAT, 80), ("203.0.113.9", "10.0.1.20", 40)]
    # the server the instances called: its replies reach the instances
    assert ask("198.51.100.7") == sorted(
        [("198.51.100.7", NAT, 12000), ("198.51.100.7", "10.0.1.10", 9000),
         ("198.51.100.7", "10.0.1.20", 3000)], key=repr,
    )  # fmt: skip
    assert ask("110.0.3.4") == [("110.0.3.4", NAT, 120)]


def test_like_is_a_substring_match(duck: Engine, flows_case: Path) -> None:
    """Why natlens's own queries use isIpv4InSubnet: 'like 10.0' also matches 110.0.3.4."""
    like = rows(duck, flows_case, "filter srcAddr like '10.0' | stats count(*) by srcAddr")
    assert "110.0.3.4" in {r[0] for r in like}
    subnet = rows(
        duck, flows_case, "filter isIpv4InSubnet(srcAddr, '10.0.0.0/8') | stats count(*) by srcAddr"
    )
    assert "110.0.3.4" not in {r[0] for r in subnet}
    assert {r[0] for r in subnet} == {"10.0.1.10", "10.0.1.20", NAT}


TOP_CONTRIBUTORS = {
    # §5.2, each query as the article's CloudFormation dashboard has it, placeholders filled
    "instances": "filter (dstAddr like '{nat}' and isIpv4InSubnet(srcAddr, '{vpc}')) "
    "| stats sum(bytes) as bytesTransferred by srcAddr, dstAddr "
    "| sort bytesTransferred desc | limit 10",
    "to and from": "filter (dstAddr like '{nat}' and isIpv4InSubnet(srcAddr, '{vpc}')) or "
    "(srcAddr like '{nat}' and isIpv4InSubnet(dstAddr, '{vpc}')) "
    "| stats sum(bytes) as bytesTransferred by srcAddr, dstAddr "
    "| sort bytesTransferred desc | limit 10",
    "uploads": "filter (srcAddr like '{nat}' and not isIpv4InSubnet(dstAddr, '{vpc}')) "
    "| stats sum(bytes) as bytesTransferred by srcAddr, dstAddr "
    "| sort bytesTransferred desc | limit 10",
    "downloads": "filter (dstAddr like '{nat}' and not isIpv4InSubnet(srcAddr, '{vpc}')) "
    "| stats sum(bytes) as bytesTransferred by srcAddr, dstAddr "
    "| sort bytesTransferred desc | limit 10",
}


@pytest.mark.parametrize("dashboard", [False, True], ids=["article", "dashboard"])
def test_top_contributors_article(duck: Engine, flows_case: Path, dashboard: bool) -> None:
    expected = {
        "instances": [("10.0.1.10", NAT, 1000), ("10.0.1.20", NAT, 500)],
        "to and from": [
            (NAT, "10.0.1.10", 9000), (NAT, "10.0.1.20", 3000), ("10.0.1.10", NAT, 1000),
            ("10.0.1.20", NAT, 500),
        ],
        "uploads": [(NAT, "198.51.100.7", 1500)],
        "downloads": [("198.51.100.7", NAT, 12000), ("110.0.3.4", NAT, 120),
                      ("203.0.113.9", NAT, 80)],
    }  # fmt: skip
    for name, query in TOP_CONTRIBUTORS.items():
        filled = query.format(nat=NAT, vpc=VPC)
        if dashboard:  # the dashboard's widgets start their queries so
            filled = "SOURCE 'vpc-flow-logs' | fields @timestamp, @message | " + filled
        assert rows(duck, flows_case, filled) == expected[name], name


def test_the_older_top_contributors_query_counts_a_lookalike(
    duck: Engine, flows_case: Path
) -> None:
    """The article's older version matched the VPC by its first octets as text."""
    query = (
        "filter (dstAddr like '10.0.0.5' and srcAddr like '10.0.') "
        "| stats sum(bytes) as bytesTransferred by srcAddr, dstAddr "
        "| sort bytesTransferred desc | limit 10"
    )
    assert ("110.0.3.4", NAT, 120) in rows(duck, flows_case, query)


# -- Network Firewall logs (AWS's examples)


def test_firewall_fields_by_json_path(duck: Engine, firewall_case: Path) -> None:
    assert rows(
        duck,
        firewall_case,
        'filter event.event_type = "alert" | stats count(*) as alerts by event.alert.action '
        "| sort event.alert.action",
    ) == [("allowed", 1), ("blocked", 1)]
    assert rows(
        duck,
        firewall_case,
        "fields @timestamp, event.src_ip, event.dest_ip, event.alert.action, "
        'event.alert.signature | filter event.alert.action = "blocked" '
        "| sort @timestamp desc | limit 50",
    ) == [("2025-11-04 00:55:22.000", "10.0.100.55", "64.233.180.147", "blocked", "")]
    assert rows(
        duck,
        firewall_case,
        'filter event.event_type = "netflow" | stats sum(event.netflow.bytes) as bytes, '
        "sum(event.netflow.pkts) as packets by event.src_ip, event.dest_ip",
    ) == [("45.129.33.153", "172.31.16.139", 60, 1)]
    # the TCP flags as AWS writes them; keys natlens keeps aside (min_ttl, syn), one level down
    assert rows(
        duck,
        firewall_case,
        'filter event.tcp.tcp_flags = "02" | fields event.src_ip, event.netflow.min_ttl, '
        "event.tcp.syn",
    ) == [("45.129.33.153", "241", "true")]
    assert rows(
        duck,
        firewall_case,
        "fields event.http.http_user_agent, event.http.http2.stream_id, event.verdict.action "
        "| filter ispresent(event.http.http_user_agent)",
    ) == [("curl/8.11.1", "1", "drop")]
    assert rows(
        duck,
        firewall_case,
        "filter ispresent(event.revocation_check.status) "
        "| fields event.sni, event.src_port, event.revocation_check.status",
    ) == [("revoked-rsa-dv.ssl.com", 55930, "REVOKED")]
    assert rows(
        duck, firewall_case, 'filter isIpv4InSubnet(event.src_ip, "10.0.0.0/8") | stats count(*)'
    ) == [(2,)]


# AWS's Network Firewall CloudWatch dashboard (aws-samples/aws-networkfirewall-cfn-templates,
# cloudwatch_dashboard): its Logs Insights widgets' queries, verbatim, on the flow log group or the
# alert log group (--log-type). fixtures/insights/firewall.log: five netflow events, six alerts and
# a TLS event, described in fixtures/insights/README.md.
FIREWALL_DASHBOARD = {
    "Top Protocols": ("flow", "SOURCE '${FirewallFlowLogGroupName}' | stats count() as proto by "
                      "event.proto\n| sort proto desc\n| limit 10"),
    "Top Application Layer Protocols Detected": (
        "flow", "SOURCE '${FirewallFlowLogGroupName}' | stats count() as app_proto by "
        "event.app_proto\n| sort app_proto desc\n| limit 10"),
    "Top TCP Flags": ("flow", "SOURCE '${FirewallFlowLogGroupName}' | stats count() as tcp_flags "
                      "by event.tcp.tcp_flags\n| sort tcp_flags desc\n| limit 10"),
    "Top Drop/Reject Rules": (
        "alert", "SOURCE '${FirewallAlertLogGroupName}' | stats count (*) as Count by "
        "event.alert.signature_id as SID, event.alert.action as Action, event.alert.signature as "
        "Message, event.proto as Proto\n| display SID, Action, Message, Proto, Count\n"
        "| filter event.alert.action = 'blocked'\n| sort Count desc\n| limit 10"),
    "Top Alert Rules": (
        "alert", "SOURCE '${FirewallAlertLogGroupName}' | stats count (*) as Count by "
        "event.alert.signature_id as SID, event.alert.action as Action, event.alert.signature as "
        "Message, event.proto as Proto\n| display SID, Action, Message, Proto, Count\n"
        "| filter event.alert.action != 'blocked'\n| sort Count desc\n| limit 10"),
    "Recent Alert Log Events": (
        "alert", "SOURCE '${FirewallAlertLogGroupName}' | fields event.timestamp as Time, "
        "event.alert.signature_id as SID, event.alert.signature as Message, event.proto as Proto, "
        "event.src_ip as Src_IP, event.src_port as Src_Port, event.dest_ip as Dest_IP, "
        "event.dest_port as Dest_Port\n| sort event.timestamp desc\n| limit 10"),
    "Top Blocked Source IPs": (
        "alert", "SOURCE '${FirewallAlertLogGroupName}' | stats count() as blocked_src_ip by "
        "event.src_ip as src_ip\n| filter event.alert.action = 'blocked'\n"
        "| sort blocked_src_ip desc\n| limit 10"),
    "Top Blocked Destination IPs": (
        "alert", "SOURCE '${FirewallAlertLogGroupName}' | stats count() as blocked_dest_ip by "
        "event.dest_ip as dest_ip\n| filter event.alert.action = 'blocked'\n"
        "| sort blocked_dest_ip desc\n| limit 10"),
    "Top Blocked Destination Ports": (
        "alert", "SOURCE '${FirewallAlertLogGroupName}' | stats count() as blocked_dest_port by "
        "event.dest_port as dest_port\n| filter event.alert.action = 'blocked'\n"
        "| sort blocked_dest_port desc\n| limit 10"),
    "Top PrivateLink Endpoint Candidates (S3, DynamoDB, & Backup)": (
        "alert", "SOURCE '${FirewallAlertLogGroupName}' | stats count(*) as Count by event.src_ip "
        "as Source_IP, event.dest_ip as Dest_IP, event.app_proto as App_Proto, event.tls.sni as "
        "SNI, event.http.hostname as Hostname\n| filter event.tls.sni like \"s3\" or "
        "event.http.hostname like \"s3\" or event.tls.sni like \"dynamodb\" or "
        "event.http.hostname like \"dynamodb\" or event.tls.sni like \"backup\" or "
        "event.http.hostname like \"backup\"\n| display Source_IP, Dest_IP, App_Proto, SNI, "
        "Hostname, Count\n| sort Count desc\n| limit 10"),
}  # fmt: skip


@pytest.fixture(scope="module")
def dashboard_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = FIXTURES / "insights" / "firewall.log"
    return _ingest([source], tmp_path_factory.mktemp("insights-dash") / "case")


def test_network_firewall_dashboard_queries(duck: Engine, dashboard_case: Path) -> None:
    def ask(name: str) -> tuple[list[str], list[tuple[object, ...]]]:
        log_type, query = FIREWALL_DASHBOARD[name]
        with Case.open(dashboard_case) as case:
            table = run(duck, case, query, log_type=log_type).table
        return table.column_names, [tuple(r.values()) for r in table.to_pylist()]

    assert ask("Top Protocols") == (["event.proto", "proto"], [("TCP", 4), ("UDP", 1)])
    names, got = ask("Top Application Layer Protocols Detected")
    assert got[0] == ("tls", 3) and sorted(got[1:], key=repr) == [("dns", 1), (None, 1)]
    names, got = ask("Top TCP Flags")
    assert names == ["event.tcp.tcp_flags", "tcp_flags"]
    assert got[0] == ("1b", 3) and sorted(got[1:], key=repr) == [("02", 1), (None, 1)]
    assert ask("Top Drop/Reject Rules") == (
        ["SID", "Action", "Message", "Proto", "Count"],
        [(100, "blocked", "blocked domain: paste site", "TCP", 2),
         (200, "blocked", "SSH from the internet", "TCP", 1)],
    )  # fmt: skip
    assert ask("Top Alert Rules")[1] == [
        (300, "allowed", "S3 via the firewall", "TCP", 2),
        (400, "allowed", "HTTP to backup", "TCP", 1),
    ]
    names, got = ask("Recent Alert Log Events")
    assert names == ["Time", "SID", "Message", "Proto", "Src_IP", "Src_Port", "Dest_IP",
                     "Dest_Port"]  # fmt: skip
    assert [r[1] for r in got] == [400, 300, 300, 200, 100, 100]  # newest first
    assert got[0] == ("2024-06-01T00:01:10.000000+0000", 400, "HTTP to backup", "TCP",
                      "10.0.1.10", 49180, "198.51.100.20", 80)  # fmt: skip
    names, got = ask("Top Blocked Source IPs")
    assert sorted(got) == [("10.0.1.10", 1), ("10.0.1.20", 1), ("203.0.113.9", 1)]
    assert ask("Top Blocked Destination IPs")[1] == [("203.0.113.50", 2), ("10.0.0.5", 1)]
    assert ask("Top Blocked Destination Ports")[1] == [(443, 2), (22, 1)]
    names, got = ask("Top PrivateLink Endpoint Candidates (S3, DynamoDB, & Backup)")
    assert names == ["Source_IP", "Dest_IP", "App_Proto", "SNI", "Hostname", "Count"]
    assert sorted(got, key=repr) == sorted([
        ("10.0.1.10", "52.216.1.1", "tls", "mybucket.s3.amazonaws.com", None, 1),
        ("10.0.1.20", "52.216.1.1", "tls", "mybucket.s3.amazonaws.com", None, 1),
        ("10.0.1.10", "198.51.100.20", "http", None, "backup.example.com", 1),
    ], key=repr)  # fmt: skip


def test_a_filter_after_stats(duck: Engine, dashboard_case: Path) -> None:
    """On the stats' results, it filters them; on the events' fields, it filters the events
    counted (and says so); on both, or past a limit, natlens refuses."""
    with Case.open(dashboard_case) as case:
        result = run(duck, case, "stats count(*) as n by event.src_ip | filter n > 1",
                     log_type="alert")  # fmt: skip
        assert result.table.to_pylist() == [{"event.src_ip": "10.0.1.10", "n": 3},
                                            {"event.src_ip": "10.0.1.20", "n": 2}]  # fmt: skip
        assert not result.compiled.notes
        hoisted = run(duck, case, "stats count(*) as n by event.src_ip as ip "
                      "| filter event.alert.action = 'allowed'", log_type="alert")  # fmt: skip
        assert sorted(tuple(r.values()) for r in hoisted.table.to_pylist()) == [
            ("10.0.1.10", 2),
            ("10.0.1.20", 1),
        ]
        assert "applies to the events the stats counted" in hoisted.compiled.notes[0]
        with pytest.raises(UsageError, match="after stats"):
            run(duck, case, "stats count(*) as n by event.src_ip | filter n > 1 and "
                "event.proto = 'TCP'", log_type="alert")  # fmt: skip
        with pytest.raises(UsageError, match="after a limit"):
            run(duck, case, "stats count(*) as n by event.src_ip | limit 1 "
                "| filter event.proto = 'TCP'", log_type="alert")  # fmt: skip


def test_firewall_logs_have_no_message(duck: Engine, firewall_case: Path) -> None:
    with pytest.raises(UsageError, match="not its line"):
        rows(duck, firewall_case, "fields @message | filter event.src_ip = '10.0.2.53'")


# -- the language: functions and commands


def test_functions(duck: Engine, flows_case: Path) -> None:
    query = (
        "filter srcAddr = '198.51.100.7' and dstAddr = '10.0.1.10'\n"
        "| fields concat(srcAddr, ':', srcPort) as a, strlen(srcAddr) as b, "
        "substr(srcAddr, 4, 3) as c, toupper(action) as d, strcontains(srcAddr, '51') as e, "
        "abs(-3) as f, round(2.567, 1) as g, greatest(1, srcPort) as h, ceil(bytes / 7) as i, "
        "sqrt(16) as j, pow(2, 10) as k, isempty(srcAddr) as l, isblank(' ') as m, "
        "coalesce(srcAddr, 'x') as n, replace(srcAddr, '.', '-') as o, trim('  p ') as p, "
        "datefloor(@timestamp, 1h) as q, dateceil(@timestamp, 1h) as r, "
        "toMillis(@timestamp) as s, fromMillis(0) as t, isValidIpV4('300.1.1.1') as u, "
        "isValidIp(srcAddr) as v, ltrim('xxy', 'x') as w, floor(3.7) as x, least(4, 2) as y, "
        "strcontains(srcAddr, '9') as z\n"
        "| display a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w, x, y, z"
    )
    (row,) = rows(duck, flows_case, query)
    assert row == (
        "198.51.100.7:443", 12, "51.", "ACCEPT", 1, 3, 2.6, 443, 1286, 4.0, 1024.0, False, True,
        "198.51.100.7", "198-51-100-7", "p", "2024-06-01 00:00:00.000",
        "2024-06-01 00:00:00.000", 1717200000000, "1970-01-01 00:00:00.000", False, True, "y",
        3, 2, 1,
    )  # fmt: skip


def test_stats_functions(duck: Engine, flows_case: Path) -> None:
    query = (
        "filter srcAddr = '198.51.100.7'\n"
        "| stats count(*) as n, count_distinct(dstAddr) as peers, sum(bytes) as total, "
        "pct(bytes, 50) as median, earliest(dstAddr) as first, latest(dstAddr) as last, "
        "sortsFirst(dstAddr) as low, sortsLast(dstAddr) as high, "
        "sum(bytes) / count(*) as mean by action"
    )
    (row,) = rows(duck, flows_case, query)
    # four records: 9000 to 10.0.1.10 and to the NAT gateway (t0), 3000 to 10.0.1.20 and to
    # the NAT gateway (t0+300)
    assert row[:5] == ("ACCEPT", 4, 3, 24000, 6000.0)
    assert row[5] in ("10.0.1.10", NAT)  # three records share the first time
    assert row[6] in ("10.0.1.20", NAT)
    assert row[7:] == (NAT, "10.0.1.20", 6000.0)


def test_chained_stats_and_filters_on_their_fields(duck: Engine, flows_case: Path) -> None:
    query = (
        "stats sum(bytes) as total by srcAddr | filter total >= 1000 "
        "| stats count(*) as busy, max(total) as most"
    )
    # senders of 1000 bytes or more: 198.51.100.7 (24000), 10.0.0.5 (13500), 10.0.1.10 (2076),
    # 10.0.1.20 (1000)
    assert rows(duck, flows_case, query) == [(4, 24000)]


def test_parse_glob_and_regex(duck: Engine, flows_case: Path) -> None:
    glob = (
        'parse @message "* * * * *" as v, acct, eni, src, rest '
        "| filter src = '203.0.113.9' | stats count(*) as n by eni | sort eni"
    )
    assert rows(duck, flows_case, glob) == [
        ("eni-0b0b0b0b0b0b0b0b0", 1), ("eni-0c0c0c0c0c0c0c0c0", 2),
    ]  # fmt: skip
    regex = (
        r"parse @message /^\S+ \S+ (?<eni>\S+) \S+ \S+ \S+ (?<port>\S+)/ "
        "| filter port in [22, 3389] | stats count(*) as n by eni, port | sort n desc, port"
    )
    counted = {(r[0], r[1]): r[2] for r in rows(duck, flows_case, regex)}
    assert counted == {
        ("eni-0c0c0c0c0c0c0c0c0", "22"): 1,
        ("eni-0b0b0b0b0b0b0b0b0", "22"): 1,
        ("eni-0c0c0c0c0c0c0c0c0", "3389"): 1,
    }
    # a record that does not match keeps none of the fields, and is kept
    unmatched = "parse @message 'NODATA*' as tail | filter ispresent(tail) | stats count(*)"
    assert rows(duck, flows_case, unmatched) == [(1,)]


def test_message_is_the_record_line(duck: Engine, flows_case: Path) -> None:
    lines = FLOWS.read_text().splitlines()
    got = rows(duck, flows_case, "fields @message | sort @timestamp asc | limit 100")
    assert sorted(r[0] for r in got) == sorted(lines)


def test_default_order_is_newest_first_and_dedup(duck: Engine, flows_case: Path) -> None:
    got = rows(duck, flows_case, "fields @timestamp, srcAddr | limit 1")
    assert got == [("2024-06-01 00:15:00.000", "2001:db8:1::10")]
    deduped = rows(
        duck, flows_case, "filter protocol = 6 | fields srcAddr | sort srcAddr | dedup srcAddr"
    )
    # natural order: 10.0.0.5 before 10.0.1.10 before 110.0.3.4 ... (addresses by number)
    assert [r[0] for r in deduped] == [
        NAT, "10.0.1.10", "10.0.1.20", "198.51.100.7", "203.0.113.9", "2001:db8:1::10",
    ]  # fmt: skip


def test_ipv6_subnets(duck: Engine, flows_case: Path) -> None:
    query = "filter isIpv6InSubnet(srcAddr, '2001:db8::/32') | stats sum(bytes)"
    assert rows(duck, flows_case, query) == [(300,)]
    block = "filter isIpInSubnet(dstAddr, '2600:1f18::/32') | stats count(*)"
    assert rows(duck, flows_case, block) == [(1,)]
    v4_test = "filter isIpv4InSubnet(srcAddr, '2001:db8::/32') | stats count(*)"
    assert rows(duck, flows_case, v4_test) == [(0,)]


def test_what_cannot_be_computed_has_no_value(duck: Engine, flows_case: Path) -> None:
    query = "fields bytes / 0 as a, 5 % 0 as b, log(0) as c, sqrt(-1) as d | limit 1"
    assert rows(duck, flows_case, query) == [(None, None, None, None)]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("filter @message like /(?=x)/", "lookaround and back-references"),
        (r"parse @message /(?<a>\S+) \1/", "lookaround and back-references"),
        ("filter @message like /(/", "cannot be read"),
        ("filter @message =~ /a{2,1}/", "cannot be read"),
    ],
)
def test_regular_expressions_are_checked_first(
    duck: Engine, flows_case: Path, query: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        rows(duck, flows_case, query)


def test_no_data_records_write_dashes(duck: Engine, flows_case: Path) -> None:
    got = rows(duck, flows_case, "filter logStatus = 'NODATA' | fields srcAddr, action, bytes")
    assert got == [("-", "-", None)]


def test_values_from_the_query_are_literals(duck: Engine, flows_case: Path) -> None:
    hostile = "x'; DROP TABLE flows; --"
    assert rows(duck, flows_case, f'filter srcAddr = "{hostile}" | stats count(*)') == [(0,)]
    assert rows(duck, flows_case, f'filter srcAddr like "{hostile}" | stats count(*)') == [(0,)]
    # backquoted names become quoted identifiers, never SQL
    with pytest.raises(UsageError, match="no such field"):
        rows(duck, flows_case, 'fields `a" FROM flows; --`')
    assert rows(duck, flows_case, "stats count(*)") == [(20,)]


# -- field discovery: what CloudWatch would not know, natlens refuses


def test_discovered_names_and_their_mistakes(duck: Engine, flows_case: Path) -> None:
    with pytest.raises(UsageError, match="startTime") as excinfo:
        rows(duck, flows_case, "fields start")
    assert "line 1, column 8" in str(excinfo.value)
    with pytest.raises(UsageError, match="did you mean srcAddr"):
        rows(duck, flows_case, "filter srcaddr = '10.0.0.5'")
    with pytest.raises(UsageError, match="does not exist after stats"):
        rows(duck, flows_case, "stats count(*) by srcAddr | sort bytes")
    with pytest.raises(UsageError, match="ingestion"):
        rows(duck, flows_case, "fields @ingestionTime")
    assert rows(duck, flows_case, "filter startTime = 1717200900 | fields endTime") == [
        (1717200960,)
    ]


def test_custom_format_fields_are_read_from_the_message(duck: Engine, tmp_path: Path) -> None:
    """AWS's TCP flag example: a custom format (bytes before packets, tcp-flags). CloudWatch
    discovers none of its fields by that name; the hint's parse command reads them."""
    case = _ingest([AWS_EXAMPLES / "tcp-flags.log"], tmp_path / "case")
    with pytest.raises(UsageError) as excinfo:
        rows(duck, case, "stats count(*) by srcAddr")
    assert "custom format" in str(excinfo.value)
    hint = excinfo.value.hint or ""
    parse_command = hint.split("read them from the message: ")[1]
    assert parse_command.startswith('parse @message "* ')
    got = rows(duck, case, parse_command + " | stats count(*) as n by tcpFlags | sort tcpFlags")
    with Case.open(case) as opened:
        flags = run(duck, opened, "fields @message").table.num_rows
    assert sum(r[1] for r in got) == flags
    with pytest.raises(UsageError, match="from the message") as excinfo:
        rows(duck, case, "fields tcpFlags")
    assert "parse @message" in (excinfo.value.hint or "")


def test_a_default_prefixed_format_discovers_its_default_fields(
    duck: Engine, tmp_path: Path
) -> None:
    """A custom format that starts with the default format's fields (as most version 3-5
    formats do): those are discovered; the others come from the message."""
    fields = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
    fields += "bytes start end action log-status tcp-flags"
    lines = [f"{line} {2 + i % 2}" for i, line in enumerate(FLOWS.read_text().splitlines())]
    source = tmp_path / "v3.log"
    source.write_text("\n".join([fields, *lines]) + "\n")
    case = _ingest([source], tmp_path / "case")
    assert rows(duck, case, "filter action = 'REJECT' | stats count(*)") == [(2,)]
    with pytest.raises(UsageError) as excinfo:
        rows(duck, case, "stats count(*) by tcpFlags")
    hint = excinfo.value.hint or ""
    assert hint == r"start the query with: parse @message /^(?:\S+\s+){14}(?<tcpFlags>\S+)/"
    parse_command = hint.removeprefix("start the query with: ")
    assert rows(duck, case, parse_command + " | stats count(*) by tcpFlags | sort tcpFlags") == [
        ("2", 10), ("3", 10),
    ]  # fmt: skip


# -- parsing


def test_syntax_errors_point_at_the_query() -> None:
    with pytest.raises(UsageError) as excinfo:
        parse("filter srcAddr = \n| stats count(*)")
    assert "line 2, column 1" in str(excinfo.value)
    with pytest.raises(
        UsageError, match=r"'pattern' \(line 1, column 16\) is not one natlens runs"
    ):
        parse("filter a = 1 | pattern @message")
    with pytest.raises(UsageError, match="no command 'stat'"):
        parse("stat count(*)")
    with pytest.raises(UsageError, match="empty"):
        parse("  # only a comment\n")


def test_keywords_comments_and_quoting() -> None:
    commands = parse(
        "# top talkers\nFIELDS @timestamp | FILTER action IN ['ACCEPT'] # kept\n"
        "| STATS count(*) BY `interface-id`, end | SORT end DESC | LIMIT 5"
    )
    assert [c.kind for c in commands] == ["fields", "filter", "stats", "sort", "limit"]
    assert [b.expr.name for b in commands[2].by] == ["interface-id", "end"]  # type: ignore[attr-defined]


# -- SQL for other engines


def test_print_sql_for_athena_parses_back(flows_case: Path) -> None:
    with Case.open(flows_case) as case:
        for query in [*TOP_CONTRIBUTORS.values(), 'filter logStatus="SKIPDATA" '
                      "| stats count(*) by bin(1h) as t | sort t",
                      "fields @timestamp, @message | filter isIpv6InSubnet(srcAddr, '2001:db8::/32')"
                      " | limit 5"]:  # fmt: skip
            filled = query.format(nat=NAT, vpc=VPC)
            if "isIpv6" in filled:
                compiled = compile_query(filled, case, "athena", window=(1717200000, 1717203600))
            else:
                compiled = compile_query(filled, case, "athena")
            text = sql_text(compiled, "athena")
            assert "vpc_flow_logs" in text
            sqlglot.parse_one(text, read="athena")
        assert "\"date\" >= CAST('2024-06-01' AS DATE)" in text
        assert "CONTAINS('2001:db8::/32'" in text


def test_printed_duckdb_sql_gives_the_same_rows(duck: Engine, flows_case: Path) -> None:
    query = TOP_CONTRIBUTORS["downloads"].format(nat=NAT, vpc=VPC)
    with Case.open(flows_case) as case:
        duck.register_case(case)
        printed = sql_text(compile_query(query, case, "duckdb"), "duckdb")
    assert [tuple(r.values()) for r in duck.query(printed).to_pylist()] == rows(
        duck, flows_case, query
    )


def test_engines_agree(spark_engine: Engine, flows_case: Path, firewall_case: Path) -> None:
    """The same rows from Spark as from DuckDB, each on the case as it is: a few queries that
    together use every kind of SQL the compiler writes (each case registered once: Spark reads
    a case's files again at each registration)."""
    queries = {
        flows_case: [
            TOP_CONTRIBUTORS["to and from"].format(nat=NAT, vpc=VPC),
            "stats avg(bytes), pct(bytes, 50), count_distinct(srcAddr), sortsLast(dstAddr), "
            "count(*) by bin(1h), bin(1mo), datefloor(@timestamp, 1d), action | sort action",
            "filter protocol = 17 | stats earliest(srcAddr), latest(srcAddr)",
            "parse @message '* * * * *' as v, a, eni, src, rest | filter src like '203.' "
            "| fields eni, bytes / 0 as z, 5 % 0 as m, log(0) as l, sqrt(-1) as q, "
            "dstPort * dstPort as big, log(bytes) as e | sort eni, e, big | dedup eni",
            "filter isIpv6InSubnet(srcAddr, '2001:db8::/32') or srcAddr = '10.0.1.10' "
            "| fields srcAddr, @message | sort srcAddr",
        ],
        firewall_case: [
            "fields event.http.http2.stream_id, event.tcp.tcp_flags, @timestamp | sort @timestamp"
        ],
    }
    with DuckDBEngine() as duck:
        for case_dir, texts in queries.items():
            with Case.open(case_dir) as case:
                for engine in (duck, spark_engine):
                    engine.register_case(case)
                for query in texts:
                    got = []
                    for engine in (duck, spark_engine):
                        compiled = compile_query(query, case, engine.name, engine=engine)
                        table = engine.query(compiled.sql)
                        got.append([tuple(r.values()) for r in _shown(table, compiled).to_pylist()])
                    assert got[1] == got[0], query


# -- the command


def test_cli(flows_case: Path, tmp_path: Path) -> None:
    query = "filter action = 'REJECT' | stats count(*) as n by srcAddr | sort n desc"
    result = run_cli("insights", flows_case, query, "--format", "json")
    assert result.code == 0, result.err
    document = result.json()
    assert isinstance(document, dict)
    assert document["schema_version"] == 1
    assert document["rows"] == [{"srcAddr": "203.0.113.9", "n": 2}]
    query_file = tmp_path / "query.txt"
    query_file.write_text(query + "\n# saved from the console\n")
    table = run_cli("insights", flows_case, "--query-file", query_file)
    assert table.code == 0 and "203.0.113.9" in table.out
    sql = run_cli("insights", flows_case, query, "--print-sql", "--dialect", "athena")
    assert sql.code == 0 and "FROM vpc_flow_logs" in sql.out
    spark_sql = run_cli("insights", flows_case, query, "--print-sql", "--dialect", "spark")
    assert spark_sql.code == 0 and "FROM flows" in spark_sql.out
    sqlglot.parse_one(spark_sql.out.rstrip().rstrip(";"), read="spark")
    # --logs: this case holds no firewall events
    none = run_cli("insights", flows_case, "stats count(*) as n", "--logs", "firewall",
                   "--format", "jsonl")  # fmt: skip
    assert none.code == 0 and none.jsonl() == [{"n": 0}]
    assert run_cli("insights", flows_case, query, "--table", "x").code == 64
    # sources in place of a case, and --since/--until
    windowed = run_cli("insights", FLOWS, "stats count(*)", "--since", "2024-06-01T00:10:00Z",
                       "--format", "jsonl")  # fmt: skip
    assert windowed.code == 0, windowed.err
    assert windowed.jsonl() == [{"count(*)": 3}]  # the NODATA, SKIPDATA and IPv6 records
    bad = run_cli("insights", flows_case, "filter srcAddr = ")
    assert bad.code == 64 and "column 17" in bad.err
    missing = run_cli("insights", flows_case)
    assert missing.code == 64


def test_no_limit_is_capped_like_cloudwatch(flows_case: Path) -> None:
    result = run_cli("insights", flows_case, "fields @message", "--format", "jsonl")
    assert result.code == 0 and len(result.jsonl()) == 20
    assert "limit" not in result.err  # 20 rows: far from the cap
    assert json.loads(result.out.splitlines()[0])["@message"].endswith("ACCEPT OK")


# -- the queries `natlens explain` prints say what it says


def _explained(world: Path, address: str) -> dict[str, object]:
    result = run_cli(
        "explain", world / "case", address, "--context", world / "context", "--format", "json"
    )
    assert result.code == 0, result.err
    document = result.json()
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("scenario", ["exposed-instance", "fw-after-nat"])
def test_explain_queries_support_its_verdicts(
    duck: Engine, v5_worlds: dict[str, Path], scenario: str
) -> None:
    """Every query explain prints, run as the user would run it in CloudWatch (here, through
    natlens insights on the same case), gives rows that support the verdict explain states."""
    from natlens.formats.describe_json import load_context

    world = v5_worlds[scenario]
    gateways = {
        r["address"]
        for r in load_context(world / "context").address_roles()
        if r["role"] in ("nat-gateway", "firewall-endpoint")
    }
    listed = run_cli("inbound", world / "case", "--context", world / "context", "--format", "jsonl")
    assert listed.code == 0, listed.err
    by_verdict: dict[str, list[str]] = {}
    for row in listed.jsonl():
        by_verdict.setdefault(str(row["verdict"]), []).append(str(row["address"]))
    assert {"unsolicited", "response"} <= set(by_verdict)
    if scenario == "exposed-instance":
        assert "exposed" in by_verdict
    checked = 0
    for verdict, addresses in by_verdict.items():
        for address in addresses[:2]:
            document = _explained(world, address)
            assert document["verdict"] == verdict
            queries = document["queries"]
            assert isinstance(queries, list) and len(queries) == 3  # v5 logs carry tcp-flags
            reached, sent, flags = (rows(duck, world / "case", str(q["query"])) for q in queries)
            inside_addresses = {str(r[0]) for r in reached}
            if verdict == "unsolicited":
                assert reached and inside_addresses <= gateways, (address, reached)
                assert sent == [], (address, sent)  # nothing inside sent to it
            if verdict in ("response", "mixed", "exposed"):
                assert inside_addresses - gateways, (address, reached)  # instances reached
            if verdict == "response":
                assert sent, address  # instances sent to it first
                opened = [r for r in flags if r[0] == address and r[4] in ("2", "3")]
                assert not opened, (address, opened)  # it never opened a connection
            if verdict == "exposed":
                opened = [r for r in flags if r[0] == address and r[4] in ("2", "3")]
                assert {r[2] for r in opened} - gateways, (address, flags)
            checked += 1
    assert checked >= 5


def test_explain_parses_a_custom_format_in_full(duck: Engine, tmp_path: Path) -> None:
    """AWS's NAT gateway example: six fields, none where the default format has it. explain's
    queries read them all from @message, and run."""
    case = _ingest([AWS_EXAMPLES / "nat-gateway.log"], tmp_path / "case")
    with Case.open(case) as opened:
        from natlens.analyses.explain import insights_queries
        from natlens.insights.fields import Formats

        queries = insights_queries("203.0.113.5", ["10.0.0.0/16"], Formats.of(opened))
    assert len(queries) == 2  # no tcp-flags in this format
    for purpose, query in queries:
        assert query.startswith('parse @message "* * * * * *" as instanceId, interfaceId, srcAddr')
        assert "custom format" in purpose
    # AWS's example: the server's replies reach the NAT gateway and, translated, the instance
    reached = rows(duck, case, queries[0][1])
    assert {r[0] for r in reached} == {"10.0.0.220", "10.0.1.5"}
    assert {r[0] for r in rows(duck, case, queries[1][1])} == {"10.0.1.5", "10.0.0.220"}


def test_hostile_values_are_shown_not_obeyed(tmp_path: Path) -> None:
    """A firewall's name, a signature and an SNI with terminal escapes: shown escaped in a
    table and in CSV, kept as they are in JSON."""
    event = {
        "firewall_name": "fw\x1b[31mRED",
        "availability_zone": "us-east-1a",
        "event_timestamp": "1717200000",
        "event": {
            "timestamp": "2024-06-01T00:00:00.000000+0000", "flow_id": 1,
            "event_type": "alert", "src_ip": "10.0.0.5", "src_port": 40000,
            "dest_ip": "198.51.100.7", "dest_port": 443, "proto": "TCP",
            "alert": {"action": "blocked", "signature_id": 1, "rev": 0,
                      "signature": "<script>x</script>\x1b]0;pwned\x07", "category": "",
                      "severity": 1},
            "tls": {"sni": "evil\x1b[2Jhost"},
        },
    }  # fmt: skip
    source = tmp_path / "alert.log"
    source.write_text(json.dumps(event) + "\n")
    query = "fields firewall_name, event.alert.signature, event.tls.sni"
    for fmt in ("table", "csv"):
        shown = run_cli("insights", source, query, "--format", fmt)
        assert shown.code == 0, shown.err
        assert "\x1b" not in shown.out and "\x07" not in shown.out
        assert "\\x1b[2J" in shown.out
    kept = run_cli("insights", source, query, "--format", "json").json()
    assert isinstance(kept, dict)
    assert kept["rows"][0]["event.tls.sni"] == "evil\x1b[2Jhost"
    # a query may hold them too: its errors show them escaped
    error = run_cli("insights", source, "fields \x1b[31m")
    assert error.code == 64 and "\x1b" not in error.err


QUERY_WORDS = [
    "fields", "filter", "stats", "sort", "limit", "parse", "dedup", "display", "by", "as",
    "and", "or", "not", "like", "in", "desc", "|", ",", "(", ")", "[", "]", "=", "!=", "<",
    "+", "-", "*", "/", "^", "=~", "srcAddr", "dstPort", "@timestamp", "@message", "bytes",
    "count(*)", "sum(bytes)", "bin(5m)", "isIpv4InSubnet(srcAddr, '10.0.0.0/8')", "'x'",
    '"10.0"', "/a(?<n>b)/", '"* *"', "5", "1.5", "#c\n", "`a-b`", "pct(bytes, 50)", "1mo",
    "strlen", "concat(srcAddr, 'x')", "ispresent(x)", "event.src_ip", "\x00", "é",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(QUERY_WORDS), min_size=1, max_size=12))
def test_any_query_compiles_or_is_refused(words: list[str]) -> None:
    """Whatever the query, natlens compiles it to SQL sqlglot can write, or refuses it with a
    usage error; never another exception."""
    query = " ".join(words)
    for dialect in ("duckdb", "athena"):
        try:
            compiled = compile_query(query, None, dialect)
        except UsageError:
            continue
        sqlglot.parse_one(sql_text(compiled, dialect), read=dialect)


FIELDS = ["srcAddr", "dstAddr", "srcPort", "dstPort", "bytes", "packets", "action", "protocol",
          "@timestamp", "@message", "startTime", "logStatus", "interfaceId"]  # fmt: skip
LITERALS = ["0", "443", "17", "1.5", "'10.0.0.5'", '"REJECT"', "'x'", '"443"', "-3"]
_field = st.sampled_from(FIELDS)
_atom = st.one_of(_field, st.sampled_from(LITERALS))
_call = st.one_of(
    st.builds("strlen({})".format, _atom), st.builds("abs({})".format, _atom),
    st.builds("concat({}, {})".format, _atom, _atom), st.builds("ispresent({})".format, _field),
    st.builds("isIpv4InSubnet({}, '10.0.0.0/16')".format, _field),
    st.builds("coalesce({}, {})".format, _atom, _atom), st.just("bin(5m)"),
    st.builds("datefloor({}, 1h)".format, _field), st.builds("substr({}, 1, 2)".format, _atom),
)  # fmt: skip
_expr = st.recursive(
    st.one_of(_atom, _call),
    lambda inner: st.one_of(
        st.builds("{} {} {}".format, inner, st.sampled_from(["+", "-", "*", "/", "%"]), inner),
        st.builds("({})".format, inner),
    ),
    max_leaves=4,
)
_condition = st.recursive(
    st.one_of(
        st.builds("{} {} {}".format, _expr, st.sampled_from(["=", "!=", "<", ">="]), _expr),
        st.builds("{} like 'x'".format, _field), st.builds("{} like /1/".format, _field),
        st.builds("{} in [1, 'a', 443]".format, _expr), st.builds("ispresent({})".format, _field),
    ),
    lambda inner: st.one_of(
        st.builds("{} and {}".format, inner, inner), st.builds("{} or {}".format, inner, inner),
        st.builds("not ({})".format, inner),
    ),
    max_leaves=3,
)  # fmt: skip
_aggregate = st.builds(
    "{}({})".format,
    st.sampled_from(["sum", "avg", "min", "max", "count", "count_distinct", "stddev",
                     "earliest", "latest", "sortsFirst"]),
    _expr,
)  # fmt: skip
_command = st.one_of(
    st.builds("filter {}".format, _condition),
    st.builds("fields {} as f1, {}".format, _expr, _field),
    st.builds("stats {} as s1, count(*) as n by {}".format, _aggregate, _field),
    st.builds("sort {} desc".format, _field),
    st.builds("limit {}".format, st.integers(1, 30)),
    st.just("parse @message '* * *' as p1, p2, p3"),
    st.builds("display {}".format, _field),
    st.builds("dedup {}".format, _field),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(_command, min_size=1, max_size=5))
def test_compiled_queries_run(commands: list[str]) -> None:
    """Queries built from the language's parts: each is refused with a usage error, or its SQL
    runs on the fixture (no engine error: the types the compiler assumed hold)."""
    query = " | ".join(commands)
    with Case.open(_FUZZ_CASE[0]) as case:
        try:
            compiled = compile_query(query, case, "duckdb")
        except UsageError:
            return
        _FUZZ_ENGINE[0].register_case(case)
        _FUZZ_ENGINE[0].query(compiled.sql)


_FUZZ_CASE: list[Path] = []
_FUZZ_ENGINE: list[Engine] = []


@pytest.fixture(autouse=True, scope="module")
def _fuzz_inputs(flows_case: Path, duck: Engine) -> Iterator[None]:
    _FUZZ_CASE[:] = [flows_case]
    _FUZZ_ENGINE[:] = [duck]
    yield
