"""The case directory: append, read nothing twice, replace what changed, a manifest to trust."""

from __future__ import annotations

import json
import os
import shutil

import pyarrow.parquet as pq

from natlens.case import Case
from tests.conftest import AWS_EXAMPLES


def test_sources_append_and_are_not_read_twice(tmp_path, natlens) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(AWS_EXAMPLES / "accepted-rejected.log", logs)
    case = tmp_path / "case"
    first = natlens("ingest", logs, "--case", case, "--json").json()
    assert first["lines"]["records"] == 2

    shutil.copy(AWS_EXAMPLES / "tcp-flags.log", logs)
    second = natlens("ingest", logs, "--case", case, "--json").json()
    assert second["sources"] == {
        "read": 1,
        "unchanged": 1,
        "replaced": 0,
        "empty": [],
        "failed": [],
    }
    assert second["lines"]["records"] == 8

    rows = natlens("records", case, "--format", "jsonl").jsonl()
    assert len(rows) == 10

    manifest = json.loads((case / "manifest.json").read_text())
    assert manifest["tables"]["flows"]["records"] == 10
    assert len(manifest["sources"]) == 2
    assert {tuple(f["fields"])[:3] for f in manifest["formats"]} == {
        ("version", "account-id", "interface-id"),
        ("version", "vpc-id", "subnet-id"),
    }
    assert manifest["time_range"] == {"start": 1418530010, "end": 1566933193}
    assert len(manifest["ingests"]) == 2


def test_changed_file_replaces_its_rows(tmp_path, natlens) -> None:
    source = tmp_path / "flow.log"
    shutil.copy(AWS_EXAMPLES / "accepted-rejected.log", source)
    case = tmp_path / "case"
    natlens("ingest", source, "--case", case)
    lines = source.read_text().splitlines()
    source.write_text("\n".join(lines[:2]) + "\n")  # one record left
    os.utime(source, ns=(1, 1))
    report = natlens("ingest", source, "--case", case, "--json").json()
    assert report["sources"]["replaced"] == 1
    rows = natlens("records", case, "--format", "jsonl").jsonl()
    assert [r["dstport"] for r in rows] == [22]


def test_coverage_gaps_are_counted_per_interface(tmp_path, natlens) -> None:
    run = natlens(
        "ingest", AWS_EXAMPLES / "nodata-skipdata.log", "--case", tmp_path / "c", "--json"
    )
    gaps = run.json()["coverage_gaps"]
    assert gaps == [
        {"interface_id": "eni-11111111aaaaaaaaa", "log_status": "SKIPDATA", "records": 1,
         "first_start": 1431280876, "last_end": 1431280934},
        {"interface_id": "eni-1235b8ca123456789", "log_status": "NODATA", "records": 1,
         "first_start": 1431280876, "last_end": 1431280934},
    ]  # fmt: skip


def test_parts_hold_aws_names_and_types(tmp_path, natlens) -> None:
    natlens("ingest", AWS_EXAMPLES / "service-path-direction.log", "--case", tmp_path / "c")
    case = Case.open(tmp_path / "c")
    schema = pq.read_schema(case.parts()[0])
    types = {name: str(schema.field(name).type) for name in schema.names}
    assert types["version"] == "int32" and types["srcport"] == "int32"
    assert types["protocol"] == "int32" and types["traffic_path"] == "int32"
    assert types["packets"] == "int64" and types["start"] == "int64"
    assert types["pkt_src_aws_service"] == "string" and types["flow_direction"] == "string"
    assert types["srcaddr_v4"] == "int64" and types["line"] == "int64"


def test_not_a_case(tmp_path, natlens) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hello")
    run = natlens("ingest", AWS_EXAMPLES / "ipv6.log", "--case", tmp_path / "stuff")
    assert run.code == 2 and "exists and is not a natlens case" in run.err
    manifest = tmp_path / "newer" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"natlens_case": 99}))
    run = natlens("records", tmp_path / "newer")
    assert run.code == 2 and "newer natlens" in run.err


def test_time_filter_on_local_files(tmp_path, natlens) -> None:
    run = natlens(
        "ingest", AWS_EXAMPLES / "tcp-flags.log", "--case", tmp_path / "c", "--json",
        "--since", "2019-08-26T19:48:53Z", "--until", "2019-08-26T20:00:00Z",
    )  # fmt: skip
    lines = run.json()["lines"]
    # Windows ending 1566848933 (19:48:53) and 1566849113 overlap; the next day's does not.
    assert (lines["records"], lines["filtered"]) == (6, 2)


def test_a_source_named_twice_is_read_once(tmp_path, natlens) -> None:
    source = AWS_EXAMPLES / "tcp-flags.log"
    report = natlens(
        "ingest", source, source, AWS_EXAMPLES, "--case", tmp_path / "c", "--json"
    ).json()
    assert report["sources"]["read"] == len(list(AWS_EXAMPLES.glob("*.log")))
    assert report["lines"]["records"] == 27


def test_a_case_inside_the_source_directory_is_not_read(tmp_path, natlens) -> None:
    shutil.copy(AWS_EXAMPLES / "ipv6.log", tmp_path)
    first = natlens("ingest", tmp_path, "--case", tmp_path / "case", "--json").json()
    again = natlens("ingest", tmp_path, "--case", tmp_path / "case", "--json").json()
    assert first["lines"]["records"] == 1
    assert (again["sources"]["read"], again["sources"]["unchanged"]) == (0, 1)


def test_parquet_that_is_not_a_flow_log(tmp_path, natlens) -> None:
    import pyarrow as pa

    pq.write_table(pa.table({"name": ["a", "b"], "interface_id": ["eni-1", "eni-2"], "x": [1, 2]}),
                   tmp_path / "other.parquet")  # fmt: skip
    report = natlens(
        "ingest", tmp_path / "other.parquet", "--case", tmp_path / "c", "--json"
    ).json()
    assert report["lines"]["records"] == 0 and report["skipped"]["no-format"]["lines"] == 2
