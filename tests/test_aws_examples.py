"""Every record line of AWS's flow log examples page (docs/aws.md §3), from every container,
reads with the meaning AWS gives it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import containers as c
from tests.conftest import AWS_EXAMPLES, AWS_MEANINGS

EXAMPLES = sorted(p.stem for p in AWS_EXAMPLES.glob("*.log"))


def expected(name: str) -> list[dict[str, object]]:
    path = AWS_MEANINGS / f"{name}.expected.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_meaning(records: list[dict[str, object]], name: str) -> None:
    want = expected(name)
    assert len(records) == len(want), records
    for got, exp in zip(records, want, strict=True):
        assert {k: got.get(k, "<missing>") for k in exp} == exp


# name -> (file suffix, builder from header fields and records, needs --log-format)
CONTAINERS: dict[str, tuple[str, Callable[[list[str], list[str]], bytes], bool]] = {
    "plain": (".log", c.plain, False),
    "gzip": (".log.gz", c.gzip_text, False),
    "gzip-members": (".log.gz", c.gzip_members, False),
    "parquet": (".parquet", c.parquet, False),
    "cloudwatch-export": (".gz", lambda f, r: c.cloudwatch_export(r), True),
    "logs-tail": (".txt", lambda f, r: c.logs_tail(r), True),
    "filter-log-events-json": (".json", lambda f, r: c.filter_log_events_json(r), True),
    "get-log-events-json": (".json", lambda f, r: c.get_log_events_json(r), True),
    "filter-log-events-text": (".txt", lambda f, r: c.filter_log_events_text(r), True),
    "subscription-payloads": (".b64", lambda f, r: c.subscription_payloads(r), True),
    "lambda-event": (".json", lambda f, r: c.lambda_event(r), True),
    "firehose": (".gz", lambda f, r: c.firehose_concatenated(r), True),
}


@pytest.mark.parametrize("container", sorted(CONTAINERS))
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_in_container(tmp_path: Path, natlens, name: str, container: str) -> None:
    suffix, build, needs_format = CONTAINERS[container]
    fields, records = c.split_fixture(AWS_EXAMPLES / f"{name}.log")
    source = tmp_path / f"{name}{suffix}"
    source.write_bytes(build(fields, records))
    args = ["records", source, "--format", "jsonl", "--all-columns"]
    if needs_format:
        args += ["--log-format", c.format_string(fields)]
    run = natlens(*args)
    assert run.code == 0, run.err
    assert "skipped" not in run.err
    assert_meaning(run.jsonl(), name)


def test_default_format_needs_no_format_string_in_cloudwatch_exports(tmp_path, natlens) -> None:
    """Records without a header that fit the default format are read as the default format."""
    _fields, records = c.split_fixture(AWS_EXAMPLES / "accepted-rejected.log")
    source = tmp_path / "export.gz"
    source.write_bytes(c.cloudwatch_export(records))
    run = natlens("records", source, "--format", "jsonl")
    assert run.code == 0, run.err
    assert_meaning(run.jsonl(), "accepted-rejected")


def test_nat_example_without_header_needs_log_format(tmp_path, natlens) -> None:
    """AWS's NAT example has no version field: six fields, no header, nothing to guess from."""
    fields, records = c.split_fixture(AWS_EXAMPLES / "nat-gateway.log")
    source = tmp_path / "nat.log"
    source.write_text("\n".join(records) + "\n")
    run = natlens("ingest", source, "--case", tmp_path / "case", "--json")
    assert run.code == 2
    report = run.json()
    assert report["lines"]["skipped"] == len(records)
    assert "--log-format" in report["skipped"]["no-format"]["examples"][0]

    run = natlens(
        "records", source, "--format", "jsonl", "--all-columns", "--log-format",
        c.format_string(fields),
    )  # fmt: skip
    assert run.code == 0, run.err
    assert_meaning(run.jsonl(), "nat-gateway")


def test_double_space_line_reads_like_the_others(tmp_path, natlens) -> None:
    """docs/aws.md §3.5: AWS's own example has two spaces between two fields of one line."""
    run = natlens("ingest", AWS_EXAMPLES / "tcp-flags.log", "--case", tmp_path / "c", "--json")
    report = run.json()
    assert report["lines"] == {
        "lines": 9, "records": 8, "headers": 1, "blank": 0, "metadata": 0, "filtered": 0,
        "skipped": 0,
    }  # fmt: skip


def test_all_examples_from_one_directory(tmp_path, natlens) -> None:
    """A directory of files in different formats: each file keeps its own header."""
    run = natlens("ingest", AWS_EXAMPLES, "--case", tmp_path / "case", "--json")
    assert run.code == 0, run.err
    report = run.json()
    total = sum(len(expected(name)) for name in EXAMPLES)
    assert report["lines"]["records"] == total
    assert report["lines"]["skipped"] == 0
    assert len(report["formats"]) == len(EXAMPLES) - 3  # four files share the default format
    assert {f["origin"] for f in report["formats"]} == {"header"}
