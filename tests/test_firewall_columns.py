"""The column-wise reader of Network Firewall logs (formats/firewall_columns.py) against the line
parser run the strict way (the standard library's json and nothing else): the same rows, the
same problems, the same line accounting, on AWS's examples, on simulated logs, on lines built to
break each of its rules, and on lines hypothesis draws."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from natlens.accounting import Problem
from natlens.formats import firewall_columns
from natlens.formats.firewall_columns import read_block
from natlens.formats.network_firewall import parse_lines
from natlens.simulate.run import SimulateOptions, simulate
from tests.conftest import FIXTURES

SPACE = b" \t\r\n\x0b\x0c"


def strict(block: bytes, first_line: int, source: str) -> tuple[pa.Table, list[Problem], int]:
    """What the ingest made of a block before the column-wise reader: a line at a time."""
    raw_lines = block.split(b"\n")
    if block.endswith(b"\n") or not block:
        raw_lines.pop()
    pairs, problems, blank = [], [], 0
    for number, raw in enumerate(raw_lines, start=first_line):
        if not raw.strip(SPACE):
            blank += 1
            continue
        try:
            pairs.append((number, raw.decode("utf-8")))
        except UnicodeDecodeError:
            problems.append(Problem("not-text", source, number, "the line is not UTF-8 text"))
    parsed = parse_lines(pairs, source, strict=True)
    problems = sorted(problems + parsed.problems, key=lambda p: p.line or 0)
    return parsed.table(), problems, blank


def assert_same(block: bytes, first_line: int = 1) -> pa.Table:
    table, problems, blank = read_block(block, first_line, "fw.log")
    want_table, want_problems, want_blank = strict(block, first_line, "fw.log")
    assert problems == want_problems
    assert blank == want_blank
    if not table.equals(want_table):
        for name in table.column_names:
            got, want = table.column(name).to_pylist(), want_table.column(name).to_pylist()
            assert got == want, name
        raise AssertionError("the tables differ in type")
    return table


@pytest.fixture
def columnar(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every block read column-wise, however few its lines; an error there fails the test."""
    monkeypatch.setattr(firewall_columns, "MIN_LINES", 1)
    monkeypatch.setattr(firewall_columns, "RAISE", True)


ALERT = {
    "firewall_name": "fw", "availability_zone": "us-east-1a", "event_timestamp": "1717200600",
    "event": {
        "timestamp": "2024-06-01T00:10:00.000512+0000", "flow_id": 1022491034203050,
        "event_type": "alert", "src_ip": "10.0.0.100", "src_port": 45138,
        "dest_ip": "68.163.228.39", "dest_port": 443, "proto": "TCP", "app_proto": "tls",
        "direction": "to_server",
        "alert": {"action": "blocked", "signature_id": 5, "rev": 1, "signature": "sig",
                  "category": "c", "severity": 2},
        "verdict": {"action": "drop"}, "tls": {"sni": "example.com", "version": "TLS 1.3"},
    },
}  # fmt: skip
FLOW = {
    "firewall_name": "fw", "availability_zone": "us-east-1a", "event_timestamp": "1717200600",
    "event": {
        "timestamp": "2024-06-01T00:10:00.000512+0000", "flow_id": 7, "event_type": "netflow",
        "src_ip": "10.0.0.100", "src_port": 1, "dest_ip": "1.2.3.4", "dest_port": 22,
        "proto": "TCP",
        "netflow": {"pkts": 3, "bytes": 180, "start": "2024-06-01T00:08:44.000101+0000",
                    "end": "2024-06-01T00:09:30Z", "age": 46, "min_ttl": 63},
        "tcp": {"tcp_flags": "1b", "syn": True, "ack": True},
    },
}  # fmt: skip
TLS = {
    "firewall_name": "fw", "availability_zone": "us-east-1d", "event_timestamp": 1708361189,
    "event": {
        "src_ip": "10.0.2.53", "src_port": "55930", "dest_ip": "54.84.1.2", "dest_port": "443",
        "sni": "revoked.example", "tls_error": {"error_message": "certificate revoked"},
        "revocation_check": {"leaf_cert_fpr": "12AB", "action": "DROP", "status": "REVOKED"},
        "timestamp": "2024-02-19T16:46:29.441824Z",
    },
}  # fmt: skip


def _lines(*events: object) -> bytes:
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode()


def _with(base: dict, path: str, value: object) -> dict:
    event = json.loads(json.dumps(base))
    *parents, last = path.split(".")
    node = event
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value
    return event


def test_aws_examples_and_a_simulated_world(tmp_path: Path, columnar: None) -> None:
    assert_same((FIXTURES / "network-firewall" / "aws-examples.log").read_bytes())
    world = tmp_path / "w"
    simulate(world, SimulateOptions("fw-after-nat", minutes=10, seed=3))
    import gzip

    files = sorted((world / "firewall").rglob("*.log.gz"))
    block = b"".join(gzip.decompress(f.read_bytes()) for f in files)
    table = assert_same(block)
    assert table.num_rows > 500
    assert set(table.column("log_type").to_pylist()) == {"alert", "flow", "tls"}


def test_most_lines_of_the_common_shapes_are_read_column_wise(columnar: None) -> None:
    """Not a speed test: it checks the column-wise path is taken (the line parser sees only the
    lines it must), so the equality tests above test what ingest runs."""
    block = _lines(*([ALERT] * 400 + [FLOW] * 400 + [TLS] * 400))
    seen: list[int] = []
    real = firewall_columns.parse_lines

    def counting(lines: list, source: str, **kwargs: object) -> object:
        seen.append(len(lines))
        return real(lines, source, **kwargs)

    firewall_columns.parse_lines = counting  # type: ignore[assignment]
    try:
        assert_same(block)
    finally:
        firewall_columns.parse_lines = real
    assert seen == [0]


WEIRD = [
    # times: February 30, a leap second, year 0000 and 0001, an offset, seven decimals, a number
    ("event.timestamp", "2024-02-30T00:00:00.000001+0000"),
    ("event.timestamp", "2024-06-01T23:59:60.000001+0000"),
    ("event.timestamp", "0000-01-01T00:00:00+0000"),
    ("event.timestamp", "0001-01-01T00:00:00+0000"),
    ("event.timestamp", "2024-06-01T00:00:00+01:00"),
    ("event.timestamp", "2024-06-01T00:00:00.1234567+0000"),
    ("event.timestamp", "1969-12-31T23:59:59.5+0000"),
    ("event.timestamp", 1717200600),
    ("event.timestamp", ""),
    # numbers as AWS does not write them
    ("event.src_port", 80.0), ("event.src_port", "80"), ("event.src_port", " 80"),
    ("event.src_port", 70000), ("event.src_port", -1), ("event.src_port", True),
    ("event.src_port", "٣"), ("event.src_port", ""), ("event.src_port", None),
    ("event.flow_id", 18446744073709551615), ("event.flow_id", 9223372036854775807),
    ("event.flow_id", 2**70), ("event.flow_id", 1e20), ("event.flow_id", "-0012"),
    ("event.alert.severity", 2**31), ("event.alert.severity", "2"),
    ("event.netflow.bytes", 2**44 + 1), ("event.netflow.bytes", -5),
    ("event_timestamp", "1717200600.5"), ("event_timestamp", 1717200600),
    # text that is not text
    ("event.proto", 6), ("event.proto", {"a": 1}), ("event.proto", ["TCP"]),
    ("event.proto", 1.5), ("event.proto", True), ("firewall_name", None),
    ("event.alert.signature", 'quote " and \\ backslash'), ("event.alert.signature", "é ☃ \u2028"),
    ("event.alert.signature", "tab\there"), ("event.event_type", None), ("event.event_type", ""),
    # flags
    ("event.tcp.tcp_flags", "0x12"), ("event.tcp.tcp_flags", "g1"), ("event.tcp.tcp_flags", "012"),
    ("event.tcp.tcp_flags", 12), ("event.tcp.tcp_flags", ""), ("event.tcp.tcp_flags", "FF"),
    # addresses
    ("event.src_ip", "010.0.0.1"), ("event.src_ip", "1.2.3.4 "), ("event.src_ip", "::1"),
    ("event.src_ip", "::ffff:1.2.3.4"), ("event.src_ip", "256.1.1.1"), ("event.src_ip", "1.2.3"),
    ("event.src_ip", "0.0.0.0"), ("event.src_ip", "255.255.255.255"),
    # objects where natlens expects them, and not
    ("event.alert", "blocked"), ("event.alert", None), ("event.alert", []), ("event", "x"),
    ("event.tls_error", "plain text"), ("event.tls_error", {"error_message": 5}),
    ("event.tls_error", {"error_message": None, "code": 7}), ("event.tls_inspected", "yes"),
    ("event.tls_inspected", False), ("event.tls.sni", ""), ("event.sni", "outer"),
    # kept in extra: plain values, and values json.dumps writes its own way
    ("event.tx_id", 2), ("event.pkt_src", "geneve encapsulation"), ("event.alert.rev", None),
    ("event.alert.metadata", {"k": [1, 2]}), ("event.alert.rev", 1.0), ("event.alert.rev", "é"),
    ("event.alert.rev", "a\\b"), ("event.alert.rev", 2**64), ("extra_top", True),
    ("event.a.b", 1), ("a.b", 1), ("event.alert.", 1), ("event.", 1), ("event.Alert", 1),
    ("event.alert.Action", "x"), ("event.tcp.SYN", True),
]  # fmt: skip


@pytest.mark.parametrize(("path", "value"), WEIRD, ids=[f"{p}={v!r}"[:40] for p, v in WEIRD])
def test_each_rule_agrees_with_the_line_parser(path: str, value: object, columnar: None) -> None:
    odd = _with(ALERT if "tcp" not in path else FLOW, path, value)
    # the odd line among ordinary ones, so that its shape is one of several
    assert_same(_lines(ALERT, odd, FLOW, TLS, odd, ALERT))


TEXT_CASES = [
    b'{"firewall_name":"fw","event":{"src_port":1,"src_port":2}}\n',  # a key twice
    b'{"firewall_name":"fw","firewall_name":"x","event":{}}\n',
    b'{"event":{"alert":{"action":"a","action":"b"}}}\n',
    b'{"event":{"tcp":{"syn":true,"syn":false,"tcp_flags":"02"}}}\n',
    b'{"event":{"alert":{"metadata":{"a":1,"a":2}}}}\n',
    b'{"event":{"src_port":1,},"firewall_name":"fw"}\n',  # a trailing comma
    b'{"event":{"src_port":NaN}}\n',
    b'{"event":{"src_port":Infinity}}\n',
    b'{"event" : {"src_port" : 1 , "proto":"TCP"}}\n',  # white space around colons
    b'{"event":{"proto":"a\\":b","src_port":1}}\n',  # '":' inside a value
    b'{"event":{"proto":"\\u0054CP"}}\n',  # an escape
    b'{"event":{"proto":"\\ud800"}}\n',  # a lone surrogate
    b'\xef\xbb\xbf{"event":{}}\n',  # a byte order mark
    b'{"event":{}}\n',
    b"[1, 2]\n",
    b"0\n",  # a top-level number, a fraction, null: JSON, but no event
    b"1.5\n",
    b"null\n",
    b'"text"\n',
    b"{}\n",
    b"\xff\xfe not text\n",
    b"   \n\t\n\x0b\n",
    b'{"event":{"proto":"TCP"}}',  # no newline at the end
    b'{"event":{"proto":"TCP"}}\r\n{"event":{"proto":"UDP"}}\r\n',
    b'{"firewall_name":"f","event":{"timestamp":"2024-06-01T00:10:00Z"}}\n' * 3 + b"\n\n",
]


@pytest.mark.parametrize("text", TEXT_CASES, ids=range(len(TEXT_CASES)))
def test_lines_only_python_may_refuse(text: bytes, columnar: None) -> None:
    assert_same(_lines(ALERT) + text + _lines(FLOW), first_line=41)


def test_large_block_with_rare_shapes(columnar: None) -> None:
    """More shapes than the reader takes and a shape its sample misses: those lines go to the
    line parser, and nothing is lost."""
    events = [ALERT] * 3000 + [FLOW] * 3000
    events += [_with(FLOW, f"event.tcp.k{i}", i) for i in range(80)]  # 80 more shapes
    block = _lines(*events)
    table = assert_same(block)
    assert table.num_rows == len(events)


scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.floats(allow_nan=False),
    st.text(max_size=6), st.sampled_from(["", "0", "12", "1b", "2024-06-01T00:00:00Z", "x.y"]),
)  # fmt: skip
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=2), max_leaves=3)
keys = st.sampled_from(
    ["timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_port", "proto",
     "tls_error", "tls_inspected", "sni", "extra", "Proto", "a.b", ""]
)  # fmt: skip


@st.composite
def odd_event(draw: st.DrawFn) -> bytes:
    base = draw(st.sampled_from([ALERT, FLOW, TLS]))
    event = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(["", "event", "event.alert", "event.netflow", "event.tcp"]))
        event = _with(event, f"{where}.{draw(keys)}".lstrip("."), draw(value))
    text = json.dumps(
        event,
        separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])),
        ensure_ascii=draw(st.booleans()),
    )
    if draw(st.booleans()):  # a key written twice
        text = text.replace('"event":{', '"event":{"proto":"x",', 1)
    return text.encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(odd_event(), min_size=1, max_size=8))
def test_drawn_lines(lines: list[bytes]) -> None:
    saved = firewall_columns.MIN_LINES, firewall_columns.RAISE
    firewall_columns.MIN_LINES, firewall_columns.RAISE = 1, True
    try:
        assert_same(_lines(ALERT) + b"\n".join(lines) + b"\n" + _lines(FLOW))
    finally:
        firewall_columns.MIN_LINES, firewall_columns.RAISE = saved


def test_ingest_reads_blocks_ahead_and_keeps_every_line(tmp_path: Path, columnar: None) -> None:
    """Through ``natlens ingest`` (blocks read two at a time, beside flow logs): the case holds
    what the strict parser makes of each file, in order, and the accounting adds up."""
    import gzip

    import duckdb

    from natlens.ingest import IngestOptions, ingest

    world = tmp_path / "w"
    simulate(world, SimulateOptions("fw-after-nat", minutes=10, seed=5))
    bad = world / "firewall" / "zz-bad.log"
    bad.write_bytes(_lines(ALERT) + b"not json\n\xff\xfe\n\n" + _lines(FLOW))
    sources = [str(world / "firewall"), str(world / "flowlogs")]
    report = ingest(sources, tmp_path / "case", IngestOptions()).to_json()
    got = duckdb.sql(
        f"SELECT * FROM '{tmp_path}/case/firewall_events/*.parquet' ORDER BY source, line"
    ).to_arrow_table()
    want, problems = [], []
    for path in sorted((world / "firewall").rglob("*.log*")):
        block = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        table, found, _blank = strict(block, 1, str(path))
        want.append(table)
        problems += found
    want_table = pa.concat_tables(want)
    want_table = want_table.take(pa.compute.sort_indices(
        want_table, [("source", "ascending"), ("line", "ascending")]
    ))  # fmt: skip
    assert got.num_rows == want_table.num_rows
    for name in ("line", "event_time", "src_ip", "extra", "log_type", "tcp_flags"):
        assert got.column(name).to_pylist() == want_table.column(name).to_pylist(), name
    assert [(p.reason, p.line) for p in problems] == [("bad-json", 2), ("not-text", 3)]
    assert report["balanced"] and report["tables_written"]["firewall_events"] == got.num_rows
    assert report["lines"]["skipped"] == 2 and report["tables_written"]["flows"] > 0


def test_an_error_in_the_column_wise_path_leaves_the_block_to_the_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("an engine error on some input")

    monkeypatch.setattr(firewall_columns, "MIN_LINES", 1)
    monkeypatch.setattr(firewall_columns, "_read", broken)
    table = assert_same(_lines(ALERT, FLOW, TLS) + b"not json\n")
    assert table.num_rows == 3


time_value = st.one_of(st.none(), st.just(0), st.integers(1_699_999_000, 1_700_001_000))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(time_value, time_value, time_value), min_size=1, max_size=20),
       st.one_of(st.none(), st.integers(1_699_999_500, 1_700_000_500)),
       st.one_of(st.none(), st.integers(1_699_999_500, 1_700_000_500)))  # fmt: skip
def test_the_time_window_keeps_what_the_rule_says(
    rows: list[tuple[int | None, int | None, int | None]], since: int | None, until: int | None
) -> None:
    """ingest's column-wise --since/--until filter against its rule, a row at a time: an event
    is kept when its flow's span (or its time) meets the window; a time of 0 counts as none
    (Python's ``or``); an event without any time is kept."""
    from natlens.ingest import _in_window
    from natlens.sources.timerange import TimeRange

    def kept(flow_start: int | None, flow_end: int | None, event_time: int | None) -> bool:
        start = flow_start or event_time
        end = flow_end or event_time
        if start is None:
            return True
        if since is not None and (end or start) < since:
            return False
        return not (until is not None and start > until)

    table = pa.table({
        "flow_start": pa.array([r[0] for r in rows], pa.int64()),
        "flow_end": pa.array([r[1] for r in rows], pa.int64()),
        "event_time": pa.array([r[2] for r in rows], pa.int64()),
    })  # fmt: skip
    got = _in_window(table, TimeRange(since, until)).to_pylist()
    assert got == [kept(*r) for r in rows]
