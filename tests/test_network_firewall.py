"""Network Firewall log events (docs/aws.md §6): AWS's examples, the quirks, bad lines, and
the simulator's firewall logs read back against their truth."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from natlens.formats.network_firewall import SCHEMA, looks_like_event, parse_lines
from natlens.simulate.run import SimulateOptions, simulate
from tests.conftest import FIXTURES

EXAMPLES = FIXTURES / "network-firewall" / "aws-examples.log"


def read(path: Path) -> list[tuple[int, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        return list(enumerate(handle.read().splitlines(), start=1))


def test_aws_examples() -> None:
    parsed = parse_lines(read(EXAMPLES), str(EXAMPLES))
    assert parsed.problems == []
    alert, blocked, flow, tls = parsed.rows
    assert alert["log_type"] == "alert" and alert["event_timestamp"] == 1602627001
    assert (alert["src_ip"], alert["src_port"], alert["dest_ip"], alert["dest_port"]) == (
        "203.0.113.4", 55555, "192.0.2.16", 111
    )  # fmt: skip
    assert (alert["alert_action"], alert["signature_id"], alert["signature"]) == (
        "allowed", 5, "test_tcp"
    )  # fmt: skip
    # keys natlens has no column for are kept (AWS example: alert.rev)
    assert alert["extra"] == {"event.alert.rev": "0"} and alert["duplicate_keys"] == []
    assert blocked["verdict_action"] == "drop" and blocked["app_proto"] == "http2"
    assert blocked["aws_category"] == '["Search Engines and Portals"]'
    assert blocked["http_url"] == "/" and blocked["src_ip_v4"] == (10 << 24) + (100 << 8) + 55
    assert "event.tx_id" in blocked["extra"]
    assert flow["log_type"] == "flow" and flow["tcp_flags"] == 2
    assert (flow["netflow_pkts"], flow["netflow_bytes"]) == (1, 60)
    # EVE times as epoch seconds: "+0000" in alert and flow logs, "Z" from the TLS engine.
    assert alert["event_time"] == 1602627001
    assert (flow["flow_start"], flow["flow_end"]) == (1601587504, 1601587504)
    assert tls["event_time"] == 1708361189
    # TLS logs: a numeric event_timestamp, ports as strings, no event_type.
    assert tls["log_type"] == "tls" and tls["event_timestamp"] == 1708361189
    assert (tls["src_port"], tls["dest_port"]) == (55930, 443)
    assert tls["sni"] == "revoked-rsa-dv.ssl.com" and tls["revocation_status"] == "REVOKED"
    assert parsed.table().schema == SCHEMA


@pytest.mark.parametrize(("flags", "value"), [("12", 18), ("1b", 27), ("02", 2), ("13", 19)])
def test_tcp_flags_are_hex(flags: str, value: int) -> None:
    """Suricata writes hex: "12" is SYN-ACK (18), not 12 as a decimal reader would have it."""
    line = (
        '{"firewall_name":"f","availability_zone":"a","event_timestamp":"1","event":'
        f'{{"event_type":"netflow","flow_id":1,"tcp":{{"tcp_flags":"{flags}"}}}}}}'
    )
    assert parse_lines([(1, line)], "x").rows[0]["tcp_flags"] == value


def test_duplicate_keys_are_named() -> None:
    line = (
        '{"firewall_name":"f","availability_zone":"a","event_timestamp":"1","event":'
        '{"event_type":"alert","tls":{"subject":"CN=a","issuerdn":"CN=b","subject":"CN=c",'
        '"sni":"a.example"}}}'
    )
    (row,) = parse_lines([(1, line)], "x").rows
    assert row["duplicate_keys"] == ["subject"] and row["sni"] == "a.example"


def test_bad_lines_are_reported_with_line_and_field() -> None:
    lines = [
        (1, '{"firewall_name":"f","event":{"event_type":"alert","src_port":"http"}}'),
        (2, '{"firewall_name":"f","event":'),
        (3, '{"firewall_name":"f","event":{"tcp":{"tcp_flags":"zz"}}}'),
        (4, '["not an event"]'),
        (5, '{"firewall_name":"f","event":{"event_type":"alert","src_port":70000}}'),
        (6, '{"firewall_name":"f","event":{"event_type":"alert","timestamp":"yesterday"}}'),
    ]
    parsed = parse_lines(lines, "fw.log")
    assert parsed.rows == []
    found = [(p.reason, p.line, p.field) for p in parsed.problems]
    assert found == [
        ("bad-value", 1, "src_port"),
        ("bad-json", 2, None),
        ("bad-value", 3, "tcp.tcp_flags"),
        ("bad-json", 4, None),
        ("bad-value", 5, "src_port"),
        ("bad-value", 6, "timestamp"),
    ]
    assert "fw.log:1" in str(parsed.problems[0]) and "'http'" in str(parsed.problems[0])


def test_content_tells_firewall_events_from_flow_logs() -> None:
    assert all(looks_like_event(text) for _, text in read(EXAMPLES))
    assert not looks_like_event("2 123456789010 eni-1 1.2.3.4 5.6.7.8 1 2 6 1 40 1 2 ACCEPT OK")


def test_simulated_firewall_logs_read_back(tmp_path: Path) -> None:
    world = tmp_path / "w"
    simulate(world, SimulateOptions("fw-after-nat", minutes=5, seed=2))
    files = sorted((world / "firewall").rglob("*.log.gz"))
    assert files
    rows = []
    for path in files:
        parsed = parse_lines(read(path), str(path.relative_to(world)))
        assert parsed.problems == []
        rows += parsed.rows
    truth = duckdb.sql(
        f"SELECT file, line, log_type, event_type FROM '{world}/truth/firewall_events.parquet'"
    ).fetchall()
    said = {(r["source"], r["line"]): (r["log_type"], r["event_type"]) for r in rows}
    assert len(said) == len(truth)
    for file, line, log_type, event_type in truth:
        got_type, got_event = said[(file, line)]
        assert got_event == event_type
        assert got_type == {"alert": "alert", "flow": "flow", "tls": "tls"}[log_type]


def test_ingest_reads_firewall_logs_beside_flow_logs(tmp_path: Path) -> None:
    """natlens ingest tells the two apart by content and keeps every line accounted for."""
    from natlens.case import Case
    from natlens.engine import DuckDBEngine
    from natlens.ingest import IngestOptions, ingest

    world = tmp_path / "w"
    simulate(world, SimulateOptions("fw-after-nat", minutes=5, seed=2))
    bad = tmp_path / "bad.log"
    bad.write_text(
        read(EXAMPLES)[0][1] + "\n\n" + '{"firewall_name":"f","event":{"src_port":"x"}}\n'
    )
    report = ingest([str(world / "firewall"), str(world / "flowlogs"), str(bad)],
                    str(tmp_path / "case"), IngestOptions())  # fmt: skip
    data = report.to_json()
    assert data["balanced"] and data["lines"]["skipped"] == 1 and data["lines"]["blank"] == 1
    assert data["skipped"]["bad-value"]["examples"][0].endswith(
        "'x' is not a whole number (a 64-bit integer)"
    )
    events = report.tables["firewall_events"]
    truth = duckdb.sql(f"SELECT count(*) FROM '{world}/truth/firewall_events.parquet'").fetchone()
    assert truth is not None and events == truth[0] + 1
    assert report.tables["flows"] > 1000
    with DuckDBEngine() as engine:
        engine.register_case(Case.open(report.case))
        rows = engine.query(
            "SELECT log_type, count(*) AS n FROM firewall_events GROUP BY log_type"
        ).to_pylist()
    kinds = {r["log_type"]: r["n"] for r in rows}
    assert {"alert", "flow"} <= set(kinds) and sum(kinds.values()) == events
    # a second ingest reads nothing again
    again = ingest([str(world / "firewall")], str(tmp_path / "case"), IngestOptions())
    assert again.to_json()["sources"]["unchanged"] > 0 and again.records_written == 0


def test_firewall_events_from_cloudwatch_logs_json(tmp_path: Path) -> None:
    """Network Firewall logs delivered to CloudWatch Logs: each event's message is one event."""
    import json

    from natlens.ingest import IngestOptions, ingest

    events = [
        {"logStreamName": "s", "timestamp": 1, "message": text, "eventId": str(n)}
        for n, text in read(EXAMPLES)
    ]
    source = tmp_path / "filter-log-events.json"
    source.write_text(json.dumps({"events": events}))
    report = ingest([str(source)], str(tmp_path / "case"), IngestOptions())
    assert report.tables == {"flows": 0, "firewall_events": 4}
    assert report.to_json()["lines"]["skipped"] == 0
