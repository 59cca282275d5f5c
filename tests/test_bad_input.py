"""Bad input never crashes natlens and never loses data silently: every line is accounted for,
every problem names its file, line and field, and everything readable is still read."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from natlens.accounting import REASONS
from tests import containers as c
from tests.conftest import AWS_EXAMPLES

HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
GOOD = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"


def ingest(natlens, tmp_path: Path, *sources: Path, args: tuple[str, ...] = ()) -> dict:
    run = natlens("ingest", *sources, "--case", tmp_path / "case", "--json", *args)
    assert run.code in (0, 2), run.err
    report = run.json()
    assert report["balanced"], report["lines"]
    return report


def test_problems_are_named_and_the_rest_is_read(tmp_path, natlens) -> None:
    source = tmp_path / "mixed.log"
    source.write_text(
        "\n".join(
            [
                HEADER,
                GOOD,
                GOOD.replace(" 20641 ", " twenty "),  # text in a numeric field
                GOOD.rsplit(" ", 2)[0],  # two fields missing
                GOOD + " extra",  # one field too many
                "",  # blank
                GOOD.replace("172.31.16.139", "172.31.16.999"),  # not an address
                GOOD.replace(" 22 ", " 99999999999 "),  # port beyond int32
                GOOD,
            ]
        )
        + "\n"
    )
    report = ingest(natlens, tmp_path, source)
    lines = report["lines"]
    assert lines["records"] == 2
    assert lines["headers"] == 1 and lines["blank"] == 1
    assert lines["skipped"] == 5
    skipped = report["skipped"]
    assert skipped["bad-value"]["lines"] == 3
    assert skipped["field-count"]["lines"] == 2
    examples = skipped["bad-value"]["examples"]
    assert f"{source}:3: bad-value: field srcport: 'twenty' is not a whole number" in examples[0]
    assert f"{source}:7: bad-value: field srcaddr: '172.31.16.999'" in examples[1]
    assert f"{source}:8: bad-value: field dstport" in examples[2]
    assert f"{source}:4: field-count: 12 fields" in skipped["field-count"]["examples"][0]
    assert f"{source}:5: field-count: 15 fields" in skipped["field-count"]["examples"][1]


def test_strict_stops_at_the_first_problem(tmp_path, natlens) -> None:
    source = tmp_path / "bad.log"
    source.write_text(f"{HEADER}\n{GOOD}\n{GOOD.replace(' 6 ', ' tcp ')}\n{GOOD}\n")
    run = natlens("ingest", source, "--case", tmp_path / "case", "--strict")
    assert run.code == 2
    assert f"{source}:3: bad-value: field protocol: 'tcp'" in run.err
    assert not list((tmp_path / "case").glob("flows/*.parquet")), "nothing written on failure"


def test_truncated_gzip_keeps_every_whole_line(tmp_path, natlens) -> None:
    lines = [HEADER] + [GOOD.replace(" 20641 ", f" {20000 + i} ") for i in range(20000)]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    source = tmp_path / "cut.log.gz"
    source.write_bytes(data[: len(data) // 2])
    report = ingest(natlens, tmp_path, source)
    assert 0 < report["lines"]["records"] < 20000
    assert "truncated" in report["skipped"]
    example = report["skipped"]["truncated"]["examples"][0]
    assert str(source) in example and "every line before" in example


def test_binary_garbage_and_empty_files(tmp_path, natlens) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    (tmp_path / "logs" / "empty.log").write_bytes(b"")
    (tmp_path / "logs" / "good.log").write_text(f"{HEADER}\n{GOOD}\n")
    report = ingest(natlens, tmp_path, tmp_path / "logs")
    assert report["lines"]["records"] == 1
    assert report["sources"]["read"] == 3
    assert report["sources"]["empty"] == [str((tmp_path / "logs" / "empty.log").resolve())]
    assert "not-text" in report["skipped"]
    assert "image.png" in report["skipped"]["not-text"]["examples"][0]


def test_a_link_to_nothing_is_reported(tmp_path, natlens) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "good.log").write_text(f"{HEADER}\n{GOOD}\n")
    (tmp_path / "logs" / "gone.log").symlink_to(tmp_path / "nowhere.log")
    report = ingest(natlens, tmp_path, tmp_path / "logs")
    assert report["lines"]["records"] == 1
    example = report["skipped"]["unreadable"]["examples"][0]
    assert example.endswith("gone.log: unreadable: No such file or directory")


def test_a_directory_named_like_a_pattern_is_that_directory(tmp_path, natlens) -> None:
    """'logs [1]' exists: it is read as the directory it is, not as a glob pattern that
    matches nothing; a pattern that names no existing path is still a pattern."""
    (tmp_path / "logs [1]").mkdir()
    (tmp_path / "logs [1]" / "good.log").write_text(f"{HEADER}\n{GOOD}\n")
    report = ingest(natlens, tmp_path, tmp_path / "logs [1]")
    assert report["lines"]["records"] == 1
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "good.log").write_text(f"{HEADER}\n{GOOD}\n")
    report = ingest(natlens, tmp_path, tmp_path / "more" / "*.log")
    assert report["lines"]["records"] == 1


def test_invalid_utf8_line_in_text(tmp_path, natlens) -> None:
    source = tmp_path / "latin.log"
    source.write_bytes(
        f"{HEADER}\n{GOOD}\n".encode()
        + b"2 caf\xe9 eni-1 - - - - - - - 1 2 - NODATA\n"
        + f"{GOOD}\n".encode()
    )
    report = ingest(natlens, tmp_path, source)
    assert report["lines"]["records"] == 2
    assert report["skipped"]["not-text"]["examples"][0].startswith(f"{source}:3: not-text")


def test_unknown_format_asks_for_log_format(tmp_path, natlens) -> None:
    source = tmp_path / "custom.log"
    source.write_text("eni-1 10.0.0.1 10.0.0.2 ACCEPT\neni-1 10.0.0.2 10.0.0.1 ACCEPT\n")
    run = natlens("ingest", source, "--case", tmp_path / "case", "--json")
    assert run.code == 2
    report = run.json()
    assert report["lines"]["skipped"] == 2
    message = report["skipped"]["no-format"]["examples"][0]
    assert f"{source}:1: no-format" in message and "--log-format" in message
    run = natlens(
        "records", source, "--format", "jsonl",
        "--log-format", "${interface-id} ${srcaddr} ${dstaddr} ${action}",
    )  # fmt: skip
    assert run.code == 0 and len(run.jsonl()) == 2


def test_unknown_fields_are_kept(tmp_path, natlens) -> None:
    source = tmp_path / "future.log"
    source.write_text("version srcaddr shiny-new-field\n9 10.0.0.1 sparkles\n9 10.0.0.2 -\n")
    run = natlens("records", source, "--format", "jsonl")
    assert run.code == 0, run.err
    rows = run.jsonl()
    assert rows[0]["extra"] == {"shiny-new-field": "sparkles"}
    assert rows[1]["extra"] == {}


def test_files_joined_with_cat_switch_format_at_each_header(tmp_path, natlens) -> None:
    parts = [AWS_EXAMPLES / n for n in ("accepted-rejected.log", "tcp-flags.log", "ipv6.log")]
    joined = tmp_path / "joined.log"
    joined.write_text("".join(p.read_text() for p in parts))
    report = ingest(natlens, tmp_path, joined)
    assert report["lines"] == {
        "lines": 14, "records": 11, "headers": 3, "blank": 0, "metadata": 0, "filtered": 0,
        "skipped": 0,
    }  # fmt: skip


def test_milliseconds_are_normalised_to_seconds(tmp_path, natlens) -> None:
    source = tmp_path / "ms.log"
    source.write_text(
        f"{HEADER}\n" + GOOD.replace("1418530010 1418530070", "1418530010123 1418530070999") + "\n"
    )
    run = natlens("records", source, "--format", "jsonl")
    row = run.jsonl()[0]
    assert (row["start"], row["end"]) == (1418530010, 1418530070)


def test_broken_json_and_base64(tmp_path, natlens) -> None:
    (tmp_path / "in").mkdir()
    _fields, records = c.split_fixture(AWS_EXAMPLES / "accepted-rejected.log")
    (tmp_path / "in" / "events.json").write_bytes(c.filter_log_events_json(records)[:-40])
    (tmp_path / "in" / "payload.b64").write_bytes(
        b"H4sIAAAA!!!notbase64\n" + c.subscription_payloads(records)
    )
    report = ingest(natlens, tmp_path, tmp_path / "in")
    assert report["lines"]["records"] == 2  # the payloads that were whole
    assert "bad-json" in report["skipped"]
    assert "bad-container" in report["skipped"]


def test_every_reason_is_documented() -> None:
    """docs/ingest.md's table has one row per reason natlens can report, and no other: a
    meaning and what to do for each."""
    import re

    doc = (Path(__file__).parents[1] / "docs" / "ingest.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| (.+?) \| .+ \|$", doc, re.M))
    assert set(rows) == set(REASONS)
    assert all(len(meaning) > 10 for meaning in REASONS.values())


@pytest.mark.parametrize("line", ["", " ", "\t\t", "-", "- - -", "2 " * 40, "\x00\x01\x02"])
def test_odd_lines_are_accounted(tmp_path, natlens, line: str) -> None:
    source = tmp_path / "odd.log"
    source.write_bytes(
        f"{HEADER}\n{GOOD}\n".encode() + line.encode() + b"\n" + f"{GOOD}\n".encode()
    )
    report = ingest(natlens, tmp_path, source)
    assert report["lines"]["records"] == 2
    assert report["lines"]["lines"] == 4
