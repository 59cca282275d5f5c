"""--in-place: flow logs read where AWS delivered them, through the engine, give the answers an
ingest gives.

Every test compares two independent paths on fresh state: the analysis run on a case that
``natlens ingest`` wrote (Python's parser) and the same analysis run with ``--in-place`` (the
engine's own Parquet and CSV readers and natlens/formats/inplace.py's checks in SQL).
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from natlens.formats.inplace import ipv6_pattern
from tests.conftest import Run, run_cli

HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"


def both_ways(source: Path, columns: str, engine: str = "duckdb") -> tuple[Run, Run]:
    """``records`` of ``source`` after an ingest (DuckDB), and read in place on ``engine``."""
    shown = ("--format", "jsonl", "--columns", columns)
    ingested = run_cli("records", source, *shown)
    return ingested, run_cli("records", source, *shown, "--in-place", "--engine", engine)


def as_set(run: Run) -> list[str]:
    """The rows, in an order of their own (text read in place has no line to order by)."""
    return sorted(json.dumps(json.loads(line), sort_keys=True) for line in run.out.splitlines())


def jsonl(*args: object) -> list[dict[str, object]]:
    run = run_cli(*args)
    assert run.code == 0, run.err
    return [json.loads(line) for line in run.out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four flow logs at once: default text on S3, version 5 Parquet, a CloudWatch export and
    filter-log-events JSON (the last two are not AWS's S3 files: ingest reads them)."""
    from natlens.simulate.run import SimulateOptions, simulate

    root = tmp_path_factory.mktemp("mixed") / "world"
    simulate(root, SimulateOptions(scenario="mixed-formats", minutes=12, seed=4))
    return root


@pytest.fixture(scope="module")
def firewalled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from natlens.simulate.run import SimulateOptions, simulate

    root = tmp_path_factory.mktemp("fw") / "world"
    simulate(
        root,
        SimulateOptions(scenario="fw-after-nat", minutes=70, seed=5, delivery="parquet"),
    )
    return root


# -- the checks, on their own ------------------------------------------------------------------


IPV6_CASES = [
    "::", "::1", "1::", "2001:db8::1", "2001:DB8:0:0:8:800:200C:417A", "fe80::1:2:3:4",
    "::ffff:10.0.0.1", "64:ff9b::192.0.2.33", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "1::1.2.3.4", "::1.2.3.4",
    # not addresses
    "", ":", ":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7",
    "::1.2.3.04", "::1.2.3.256", "1:2:3:4:5:6:7:1.2.3.4", "fe80::1%eth0", "1.2.3.4",
    "::ffff:1.2.3", " ::1", "::1 ", "1:2:3:4:5::6:7:8",
]  # fmt: skip


def _python_ipv6(text: str) -> bool:
    if "%" in text:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def test_ipv6_pattern_matches_python_on_known_cases() -> None:
    pattern = ipv6_pattern()
    assert "\\" not in pattern  # means the same to RE2 and Java
    con = duckdb.connect()
    for text in IPV6_CASES:
        by_duckdb = con.execute("SELECT regexp_matches(?, ?)", [text, pattern]).fetchone()
        assert by_duckdb == (_python_ipv6(text),), text
        assert bool(re.fullmatch(pattern, text)) == _python_ipv6(text), text


_groups = st.lists(
    st.text("0123456789abcdefABCDEF", min_size=0, max_size=5), min_size=1, max_size=9
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_groups, st.booleans(), st.integers(0, 300))
def test_ipv6_pattern_matches_python(groups: list[str], dotted: bool, octet: int) -> None:
    """Random colon-joined groups (some with an IPv4 tail) read alike by the pattern in DuckDB
    and by Python's ipaddress, which ingest uses."""
    text = ":".join(groups) + (f":{octet}.2.3.{octet % 256}" if dotted else "")
    con = duckdb.connect()
    by_duckdb = con.execute("SELECT regexp_matches(?, ?)", [text, ipv6_pattern()]).fetchone()
    assert by_duckdb == (_python_ipv6(text),), text


# -- damaged values: refused as ingest refuses them --------------------------------------------

GOOD = (
    "2 123456789012 eni-0a1 10.0.0.1 203.0.113.9 44321 443 6 10 840 1717200000 1717200060 ACCEPT OK"
)
_VALUES = {
    3: ["10.0.0.256", "10.0.0.01", "::1", "2001:db8::7", "x", "1.2.3", "-"],  # srcaddr
    5: ["65535", "65536", "-1", "00080", "99999999999999999999", "1e3", "-"],  # srcport
    7: ["6", "17", "256", "-"],  # protocol
    8: ["0", "17592186044416", "17592186044417", "9223372036854775807", "-"],  # packets
    10: ["1717200000", "1717200000000", "3000000000", "-"],  # start
    12: ["ACCEPT", "REJECT", "accept", "-"],  # action
    2: ["eni-0a1", "eni\x01bad", "-"],  # interface-id
}


def _line(choices: dict[int, str]) -> str:
    tokens = GOOD.split(" ")
    for index, value in choices.items():
        tokens[index] = value
    return " ".join(tokens)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in _VALUES.items()}),
        min_size=1,
        max_size=12,
    )
)
def test_text_values_are_checked_as_ingest_checks_them(
    tmp_path_factory: pytest.TempPathFactory, lines: list[dict[int, str]]
) -> None:
    """Lines with good and bad values of every kind: the records read in place are the records
    ingest keeps, value for value (text read in place has no line numbers)."""
    where = tmp_path_factory.mktemp("values")
    path = where / "123456789012_vpcflowlogs_us-east-1_fl-1_20240601T0000Z_ab.log.gz"
    path.write_bytes(gzip.compress(("\n".join([HEADER, *map(_line, lines)]) + "\n").encode()))
    columns = "srcaddr,srcport,protocol,packets,start,end,action,interface_id,srcaddr_v4"
    ingested, in_place = both_ways(path, columns)
    assert in_place.code == ingested.code, in_place.err  # 2: no record at all
    assert as_set(in_place) == as_set(ingested)
    refused = len(lines) - len(as_set(in_place))
    if refused:
        assert f"{refused:,} row(s) of the files read in place skipped" in in_place.err


ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


@pytest.mark.spark
def test_ipv6_pattern_means_the_same_to_spark() -> None:
    from natlens.engine import spark_session

    spark = spark_session()
    frame = spark.createDataFrame([(t,) for t in IPV6_CASES], "t string")
    frame.createOrReplaceTempView("natlens_test_ipv6")
    pattern = ipv6_pattern()
    got = spark.sql("SELECT t, t RLIKE ? AS ok FROM natlens_test_ipv6", args=[pattern]).collect()
    assert {r["t"]: r["ok"] for r in got} == {t: _python_ipv6(t) for t in IPV6_CASES}


@pytest.mark.parametrize("engine", ENGINES)
def test_words_where_numbers_belong(tmp_path: Path, engine: str) -> None:
    """A line whose fields slid (one missing, one more at the end: the same count) puts words
    where numbers belong. Spark's ANSI casts would stop the whole query on the first such value
    if a check were a plain CAST; every one is a row refused, as ingest refuses it."""
    tokens = GOOD.split(" ")
    slid = " ".join([*tokens[:3], *tokens[4:], "OK"])  # srcaddr missing
    lines = [
        GOOD,
        slid,
        _line({8: "ACCEPT"}),
        _line({5: "1e3", 10: "now"}),
        _line({3: "a.b.c.d"}),
        _line({3: "10.0.0.x"}),
        _line({7: "tcp"}),
        _line({9: "99999999999999999999999"}),
        _line({0: "v2"}),
    ]
    path = tmp_path / "123456789012_vpcflowlogs_us-east-1_fl-1_20240601T0000Z_ab.log.gz"
    path.write_bytes(gzip.compress(("\n".join([HEADER, *lines]) + "\n").encode()))
    columns = "srcaddr,srcport,protocol,packets,bytes,start,end,action,srcaddr_v4"
    ingested, in_place = both_ways(path, columns, engine)
    assert in_place.code == 0, in_place.err
    assert as_set(in_place) == as_set(ingested)
    assert len(as_set(in_place)) == 1
    assert "8 row(s) of the files read in place skipped" in in_place.err


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_lines_are_counted_and_strict_stops(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "flows.log.gz"
    lines = [HEADER, GOOD, GOOD.replace("10.0.0.1", "10.0.0.300"), GOOD + " extra", GOOD]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    run = run_cli("records", path, "--in-place", "--format", "jsonl", "--engine", engine)
    assert run.code == 0, run.err
    assert len(run.out.splitlines()) == 2
    assert "2 row(s) of the files read in place skipped" in run.err
    assert "1 with a bad srcaddr value" in run.err
    assert "1 with a line with another number of fields than its header" in run.err
    strict = run_cli("records", path, "--in-place", "--strict", "--engine", engine)
    assert strict.code == 2
    assert "--strict" in strict.err


@pytest.mark.parametrize("engine", ENGINES)
def test_parquet_values_and_names_as_ingest(tmp_path: Path, engine: str) -> None:
    """AWS's Parquet column names (``log_status``), other spellings ingest accepts
    (``SRCADDR``), out-of-range numbers, pandas' "None", unknown columns kept in ``extra`` (one
    named to break out of SQL quoting), and a Parquet file of other columns that is not read."""
    table = pa.table(
        {
            "version": pa.array([2, 2, 2, 2], pa.int32()),
            "SRCADDR": ["10.0.0.1", "10.0.0.2", "bad", "::1"],
            "dstaddr": ["203.0.113.9"] * 4,
            "srcport": pa.array([443, 70000, 443, 443], pa.int64()),
            "dstport": pa.array([1, 2, 3, 4], pa.int32()),
            "protocol": ["6", "6", "6", "None"],
            "start": pa.array([1717200000, 1717200000, 1717200000, 1717200000000], pa.int64()),
            "end": pa.array([1717200060, 1717199000, 1717200060, 1717200060000], pa.int64()),
            "log_status": ["OK", "OK", "OK", "NODATA"],
            "future_field": ["a", None, "c", "d"],
            'odd`name"; DROP TABLE flows; --': ["x", "y", "z", "w"],
        }
    )
    pq.write_table(table, tmp_path / "flows.parquet")
    pq.write_table(pa.table({"name": ["x"], "other": [1], "more": [2]}), tmp_path / "x.parquet")
    columns = "srcaddr,srcport,protocol,start,end,log_status,extra,source,line"
    ingested, in_place = both_ways(tmp_path, columns, engine)
    assert in_place.code == 0, in_place.err
    assert in_place.out == ingested.out
    assert len(in_place.out.splitlines()) == 2  # port 70000, "bad" refused; end before start
    assert "Parquet file(s) not read" in in_place.err
    assert "with a bad srcport value" in in_place.err


def test_a_case_is_not_read_in_place(tmp_path: Path, mixed: Path) -> None:
    case = tmp_path / "case"
    assert run_cli("ingest", mixed / "flowlogs" / "nat-gateways", "--case", case).code == 0
    run = run_cli("conversations", case, "--in-place")
    assert run.code == 64
    assert "--in-place" in run.err


# -- analyses: in place equals ingested --------------------------------------------------------


@pytest.mark.parametrize("analysis", ["conversations", "inbound", "nat"])
def test_local_text_and_parquet_on_duckdb(analysis: str, mixed: Path) -> None:
    """The mixed world's S3 text and Parquet are read in place, its CloudWatch files by
    ingest beside them."""
    common = (analysis, mixed, "--context", mixed / "context", "--format", "jsonl")
    ingested = jsonl(*common)
    in_place = run_cli(*common, "--in-place")
    assert in_place.code == 0, in_place.err
    assert "reading 6 file(s) in place (3 Parquet, 3 text with a header)" in in_place.err
    assert [json.loads(x) for x in in_place.out.splitlines()] == ingested
    assert len(ingested) > 5


@pytest.mark.spark
@pytest.mark.parametrize("analysis", ["conversations", "inbound"])
def test_local_text_and_parquet_on_spark(analysis: str, mixed: Path, tmp_path: Path) -> None:
    """Spark reads the same files where they lie (names with characters Spark reads as a glob
    pattern included): the rows DuckDB gives after an ingest."""
    shutil.copytree(mixed / "flowlogs", tmp_path / "logs" / "odd [1]{a,b}*? %20")
    common = (analysis, tmp_path / "logs", "--context", mixed / "context", "--format", "jsonl")
    ingested = jsonl(*common)
    spark = jsonl(*common, "--in-place", "--engine", "spark")
    assert spark == ingested
    assert len(ingested) > 5


def _hive_key(path: Path) -> str:
    """The key AWS writes with Hive-compatible prefixes and hourly partitions."""
    stamp = re.search(r"_(\d{8}T\d{4})Z_", path.name)
    assert stamp
    when = datetime.strptime(stamp.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC)
    return (
        "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/"
        f"year={when:%Y}/month={when:%m}/day={when:%d}/hour={when:%H}/{path.name}"
    )


@pytest.mark.s3
def test_s3_parquet_in_hive_layout_on_duckdb(firewalled: Path, s3_server, tmp_path: Path) -> None:
    """AWS's Parquet under Hive-compatible prefixes and its firewall logs, on the S3 server:
    DuckDB reads the flow logs where they lie (httpfs), ingest the firewall's; every analysis
    equals the same analysis on an ingested case, with and without --since/--until, and the
    hours outside the window are never read."""
    client = s3_server.client()
    bucket = f"natlens-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    flows = sorted((firewalled / "flowlogs").rglob("*.parquet"))
    hours = set()
    for index, path in enumerate(flows):
        key = _hive_key(path)
        hours.add(key.split("/hour=")[1][:2])
        if index == 3:  # a key DuckDB would read as a pattern: left to ingest, still read
            key = key.replace(".log.parquet", " [1]{a}.log.parquet")
        client.upload_file(str(path), bucket, "vpc/" + key)
    assert hours == {"00", "01"}
    for path in sorted((firewalled / "firewall").rglob("*.gz")):
        client.upload_file(str(path), bucket, "fw/" + str(path.relative_to(firewalled)))
    # Not a Parquet file, in an hour the window leaves out: reading it would stop the run.
    client.put_object(
        Bucket=bucket,
        Key="vpc/AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/"
        "aws-region=us-east-1/year=2024/month=06/day=02/hour=05/"
        "123456789012_vpcflowlogs_us-east-1_fl-1_20240602T0500Z_ab.log.parquet",
        Body=b"PAR1 damaged",
    )
    sources = (f"s3://{bucket}/vpc/", f"s3://{bucket}/fw/")
    endpoint = ("--endpoint-url", s3_server.endpoint)
    window = ("--since", "2024-06-01T00:20:00Z", "--until", "2024-06-01T00:50:00Z")
    case = tmp_path / "case"
    # attribute reads the flow records of 11 minutes either side of the window as evidence:
    # the case holds them too
    wider = ("--since", "2024-06-01T00:09:00Z", "--until", "2024-06-01T01:01:00Z")
    run = run_cli("ingest", *sources, "--case", case, *endpoint, *wider)
    assert run.code == 0, run.err
    context = ("--context", firewalled / "context", "--format", "jsonl")
    for analysis in ("conversations", "inbound", "nat", "attribute"):
        ingested = jsonl(analysis, case, *context, *window)
        in_place = run_cli(analysis, *sources, *context, *endpoint, *window, "--in-place")
        assert in_place.code == 0, in_place.err
        assert [json.loads(x) for x in in_place.out.splitlines()] == ingested, analysis
        assert len(ingested) > 3, analysis
    assert "outside --since/--until" in in_place.err
    assert "20240602T0500Z" not in in_place.err
    # no window: every hour, and the damaged object (left to ingest, which names it)
    everything = run_cli("conversations", *sources, *endpoint, "--in-place", "--format", "csv")
    assert everything.code == 0, everything.err
    assert "damaged Parquet file" in everything.err
    assert "20240602T0500Z" in everything.err


def test_local_folders_outside_the_window_are_not_read(tmp_path: Path) -> None:
    """AWS's date folders (plain and Hive) and file-name times prune local files as they prune
    S3 keys: a damaged file in an hour outside --since/--until is never opened."""
    from natlens.sources.s3 import path_in_range
    from natlens.sources.timerange import TimeRange, parse_time

    window = TimeRange(parse_time("2024-06-01T00:20:00Z"), parse_time("2024-06-01T00:40:00Z"))
    base = "/logs/AWSLogs/123456789012/vpcflowlogs/us-east-1"
    hive = "/logs/AWSLogs/aws-account-id=1/aws-service=vpcflowlogs/aws-region=x"
    named = "1_vpcflowlogs_x_fl-1_20240601T0300Z_a.log.gz"
    assert path_in_range(f"{base}/2024/06/01/a.log.gz", window)
    assert not path_in_range(f"{base}/2024/06/02/a.log.gz", window)
    assert not path_in_range(f"{hive}/year=2024/month=06/day=01/hour=05/a.parquet", window)
    assert path_in_range(f"{hive}/year=2024/month=06/day=01/hour=00/a.parquet", window)
    assert not path_in_range(f"{base}/2024/06/01/{named}", window)
    assert path_in_range("/somewhere/else.log.gz", window)

    good = tmp_path / "year=2024" / "month=06" / "day=01" / "hour=00" / "flows.log.gz"
    bad = tmp_path / "year=2024" / "month=06" / "day=01" / "hour=07" / "flows.log.gz"
    for path in (good, bad):
        path.parent.mkdir(parents=True)
    start = parse_time("2024-06-01T00:30:00Z")
    line = GOOD.replace("1717200000 1717200060", f"{start} {start + 60}")
    good.write_bytes(gzip.compress(f"{HEADER}\n{line}\n".encode()))
    bad.write_bytes(b"\x1f\x8b damaged")
    window_args = ("--since", "2024-06-01T00:20:00Z", "--until", "2024-06-01T00:40:00Z")
    run = run_cli("records", tmp_path, "--in-place", *window_args, "--format", "jsonl")
    assert run.code == 0, run.err
    assert len(run.out.splitlines()) == 1
    assert "1 file(s) or folder(s) outside --since/--until" in run.err
    assert "damaged" not in run.err


@pytest.mark.parametrize("engine", ENGINES)
def test_file_names_that_read_as_patterns(tmp_path: Path, engine: str) -> None:
    """A user's files named with glob and quoting characters are read by their exact names,
    and named so in ``source``."""
    text = tmp_path / "flows [1]*?'.log.gz"
    text.write_bytes(gzip.compress(f"{HEADER}\n{GOOD}\n".encode()))
    pq.write_table(
        pa.table({"srcaddr": ["10.0.0.9"], "dstaddr": ["10.0.0.1"], "version": [2]}),
        tmp_path / "a{b},c.parquet",
    )
    columns = "srcaddr,dstaddr,source"
    ingested, in_place = both_ways(tmp_path, columns, engine)
    assert in_place.code == ingested.code == 0, in_place.err
    assert as_set(in_place) == as_set(ingested)
    sources = {json.loads(line)["source"] for line in in_place.out.splitlines()}
    assert sources == {str(text), str(tmp_path / "a{b},c.parquet")}


# -- files the engine cannot read ----------------------------------------------------------------


def _damaged_parquet(path: Path, rows: int = 20000) -> None:
    """A flow log Parquet file whose footer reads (planning reads it) but whose pages do not:
    the bytes in the middle of its second row group overwritten."""
    import random

    chance = random.Random(7)
    table = pa.table(
        {
            "version": pa.array([2] * rows, pa.int32()),
            "srcaddr": [f"10.0.{i % 200}.{i % 250}" for i in range(rows)],
            "dstaddr": ["203.0.113.9"] * rows,
            "srcport": pa.array([chance.randint(1024, 65000) for _ in range(rows)], pa.int32()),
            "dstport": pa.array([443] * rows, pa.int32()),
            "protocol": pa.array([6] * rows, pa.int32()),
            "packets": pa.array([chance.randint(1, 999) for _ in range(rows)], pa.int64()),
            "bytes": pa.array([chance.randint(40, 10**6) for _ in range(rows)], pa.int64()),
            "start": pa.array([1717200000 + i % 600 for i in range(rows)], pa.int64()),
            "end": pa.array([1717200060 + i % 600 for i in range(rows)], pa.int64()),
            "action": ["ACCEPT"] * rows,
            "log_status": ["OK"] * rows,
        }
    )
    pq.write_table(table, path, compression="snappy", row_group_size=rows // 4)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(chance.randrange(256) for _ in range(2000))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_file_that_cannot_be_read_is_left_out_and_named(tmp_path: Path, engine: str) -> None:
    """A Parquet file with damaged pages stops the engine's read: natlens leaves that file out,
    names it, and reads the others; --strict stops; no file left to read is an input error."""
    good = tmp_path / "logs" / "123456789012_vpcflowlogs_us-east-1_fl-1_20240601T0000Z_ab.log.gz"
    good.parent.mkdir()
    lines = [_line({5: str(1024 + i)}) for i in range(50)]
    good.write_bytes(gzip.compress(("\n".join([HEADER, *lines]) + "\n").encode()))
    _damaged_parquet(tmp_path / "logs" / "damaged.parquet")
    shown = ("--format", "jsonl", "--columns", "srcport,source")
    run = run_cli("records", tmp_path / "logs", *shown, "--in-place", "--engine", engine)
    assert run.code == 0, run.err
    assert sorted(json.loads(r)["srcport"] for r in run.out.splitlines()) == list(range(1024, 1074))
    assert "1 file(s) read in place could not be read and were left out" in run.err
    assert f"{tmp_path / 'logs' / 'damaged.parquet'}: " in run.err
    strict = run_cli("records", tmp_path / "logs", "--in-place", "--strict", "--engine", engine)
    assert strict.code == 2
    assert "could not be read (--strict)" in strict.err
    good.unlink()
    nothing = run_cli("records", tmp_path / "logs", "--in-place", "--engine", engine)
    assert nothing.code == 2
    assert "no file read in place could be read" in nothing.err


@pytest.mark.spark
def test_a_cut_gzip_file_on_spark(tmp_path: Path) -> None:
    """Spark stops at a gzip stream cut short; the file is left out and named (DuckDB reads
    the lines before the cut, as ingest does, and sets the cut line aside)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    good = logs / "123456789012_vpcflowlogs_us-east-1_fl-1_20240601T0000Z_ab.log.gz"
    good.write_bytes(gzip.compress(("\n".join([HEADER, GOOD]) + "\n").encode()))
    cut = logs / "123456789012_vpcflowlogs_us-east-1_fl-1_20240601T0005Z_ab.log.gz"
    body = "\n".join([HEADER, *[_line({5: str(2000 + i)}) for i in range(5000)]]) + "\n"
    whole = gzip.compress(body.encode())
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    run = run_cli("records", logs, "--in-place", "--format", "jsonl", "--engine", "spark")
    assert run.code == 0, run.err
    assert len(run.out.splitlines()) == 1
    assert f"{cut}: java.io.EOFException" in run.err
    duck = run_cli("records", logs, "--in-place", "--format", "jsonl")
    ingested = run_cli("records", logs, "--format", "jsonl")
    assert duck.code == 0 and ingested.code == 0, duck.err + ingested.err
    assert len(duck.out.splitlines()) == len(ingested.out.splitlines()) > 1
