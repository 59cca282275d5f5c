"""natlens records: every output format, and sources read into a temporary case."""

from __future__ import annotations

import csv
import io

from tests.conftest import AWS_EXAMPLES

COLUMNS = "srcaddr,dstaddr,srcport,dstport,action,log_status,line"


def test_csv_has_canonical_names_and_empty_nulls(natlens) -> None:
    run = natlens("records", AWS_EXAMPLES / "nodata-skipdata.log", AWS_EXAMPLES / "ipv6.log",
                  "--format", "csv", "--columns", COLUMNS)  # fmt: skip
    assert run.code == 0, run.err
    rows = list(csv.DictReader(io.StringIO(run.out)))
    assert [r["log_status"] for r in rows] == ["OK", "NODATA", "SKIPDATA"]  # ipv6.log sorts first
    assert rows[1]["srcaddr"] == "" and rows[1]["srcport"] == ""
    assert rows[0]["srcaddr"] == "2001:db8:1234:a100:8d6e:3477:df66:f105"


def test_table_shows_null_as_dash(natlens) -> None:
    run = natlens("records", AWS_EXAMPLES / "nodata-skipdata.log", "--columns", COLUMNS)
    lines = run.out.splitlines()
    assert lines[0].split() == COLUMNS.split(",")
    assert lines[1].split() == ["-", "-", "-", "-", "-", "NODATA", "2"]


def test_limit_zero_and_empty_results(natlens, tmp_path) -> None:
    run = natlens("records", AWS_EXAMPLES / "ipv6.log", "--limit", "0")
    assert run.code == 0 and "(no rows)" in run.out
    assert natlens("records", AWS_EXAMPLES / "ipv6.log", "--limit", "-1").code == 64


def test_unknown_column_is_a_usage_error(natlens) -> None:
    run = natlens("records", AWS_EXAMPLES / "ipv6.log", "--columns", "srcaddr,pkt-srcaddr")
    assert run.code == 64
    assert "unknown column 'pkt-srcaddr'" in run.err and "pkt_srcaddr" in run.err


def test_all_columns_lists_the_canonical_schema(natlens) -> None:
    from natlens.schema import FLOWS_SCHEMA

    rows = natlens(
        "records", AWS_EXAMPLES / "ipv6.log", "--format", "jsonl", "--all-columns"
    ).jsonl()
    assert list(rows[0]) == FLOWS_SCHEMA.names
