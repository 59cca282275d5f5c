"""The terminal leads with the answer: a paragraph first, tables that fit COLUMNS and stream,
ISO times, inbound most urgent first, --verdict and --fail-on for cron and CI, one output
contract (--format json with a schema version), progress only on a terminal, and no option
that silently does nothing."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from natlens.render.registry import Layout, render

SEVERITY = ("exposed", "mixed", "unsolicited", "undetermined", "response")


@pytest.fixture(scope="module")
def exposed_world(v5_worlds):  # type: ignore[no-untyped-def]
    return v5_worlds["exposed-instance"]


def test_inbound_leads_with_the_answer_and_the_most_urgent(natlens, exposed_world, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    world = exposed_world
    run = natlens("inbound", world / "case", "--context", world / "context")
    assert run.code == 0, run.err
    paragraph, _, table = run.out.partition("\n\n")
    truth = pq.read_table(world / "truth" / "inbound.parquet").to_pylist()
    exposed = sum(1 for r in truth if r["verdict"] == "exposed")
    assert f"{exposed:,} internet address" in paragraph and "an exposure to close" in paragraph
    assert all(len(line) <= 120 for line in run.out.splitlines())
    rows = [line for line in table.splitlines() if re.match(r"^[0-9a-f:.]+\s", line)]
    verdicts = [next(v for v in SEVERITY if f" {v} " in f" {r} ") for r in rows]
    assert verdicts[0] == "exposed"
    assert [SEVERITY.index(v) for v in verdicts] == sorted(SEVERITY.index(v) for v in verdicts)
    # the same order in every format, times as epoch seconds there
    jsonl = natlens("inbound", world / "case", "--context", world / "context", "--format", "jsonl")
    got = jsonl.jsonl()
    assert [r["verdict"] for r in got] == verdicts
    assert isinstance(got[0]["first_seen"], int)
    wide = natlens("inbound", world / "case", "--context", world / "context", "--wide").out
    assert re.search(r"  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  ", wide)
    for k in range(len(got) - 1):  # within a verdict, most packets first
        a, b = got[k], got[k + 1]
        if a["verdict"] == b["verdict"]:
            assert (a["packets_in"] or 0) >= (b["packets_in"] or 0)


def test_verdict_filter_and_fail_on(natlens, exposed_world) -> None:
    world = exposed_world
    base = ["inbound", world / "case", "--context", world / "context"]
    only = natlens(*base, "--verdict", "unsolicited,mixed", "--format", "jsonl")
    assert only.code == 0 and only.jsonl()
    assert {r["verdict"] for r in only.jsonl()} <= {"unsolicited", "mixed"}
    assert natlens(*base, "--fail-on", "exposed", "--format", "jsonl").code == 1
    assert natlens(*base, "--fail-on", "unsolicited", "--format", "csv").code == 1
    assert natlens(*base, "--verdict", "exposd").code == 64
    # a VPC where nothing is exposed: exit 0 for --fail-on exposed
    examples = Path(__file__).resolve().parents[1] / "examples" / "aws-docs" / "nat-gateway.log"
    assert natlens("inbound", examples, "--fail-on", "exposed").code == 0


def test_attribute_fail_on_unattributed(natlens, v5_worlds) -> None:
    world = v5_worlds["fw-after-nat"]
    run = natlens("attribute", world / "case", "--context", world / "context", "--log-type",
                  "alert", "--fail-on", "unattributed", "--format", "jsonl")  # fmt: skip
    rows = run.jsonl()
    unnamed = [r for r in rows if r["source_kind"] == "nat-gateway" and not r["instance_address"]]
    assert run.code == (1 if unnamed else 0)
    if unnamed:
        assert f"{len(unnamed):,} alert(s) from a NAT gateway's address" in run.err
    table = natlens("attribute", world / "case", "--context", world / "context")
    assert table.out.split("\n")[0].split(":")[0].endswith("alerts")


def test_tables_fit_columns_and_wide_shows_everything(natlens, exposed_world, monkeypatch):
    case = exposed_world / "case"
    monkeypatch.setenv("COLUMNS", "80")
    narrow = natlens("records", case, "--limit", "50")
    assert narrow.code == 0 and all(len(line) <= 80 for line in narrow.out.splitlines())
    assert "left out to fit 80 characters" in narrow.out and "--wide" in narrow.out
    wide = natlens("records", case, "--limit", "50", "--wide")
    header = next(line for line in wide.out.splitlines() if line.startswith("version"))
    assert "pkt_dstaddr" in header and max(map(len, wide.out.splitlines())) > 80
    monkeypatch.delenv("COLUMNS")
    piped = natlens("records", case, "--limit", "5")  # not a terminal: every column
    assert "left out" not in piped.out and "pkt_dstaddr" in piped.out


def test_tables_stream(tmp_path) -> None:
    """Rows are written as they arrive: the first ones are out before the stream ends."""
    import io

    schema = pa.schema([("srcaddr", pa.string()), ("start", pa.int64())])
    written = io.StringIO()

    def batches():  # type: ignore[no-untyped-def]
        for k in range(3):
            yield pa.record_batch([[f"10.0.0.{k}"] * 1500, [1717200000 + k] * 1500], schema=schema)
        assert written.getvalue().count("\n") >= 2000  # the first rows are out already
        raise RuntimeError("the stream broke")

    with pytest.raises(RuntimeError):
        render(pa.RecordBatchReader.from_batches(schema, batches()), "table", written, Layout())
    lines = written.getvalue().splitlines()
    assert lines[0].split() == ["srcaddr", "start"]
    assert lines[1].split() == ["10.0.0.0", "2024-06-01T00:00:00Z"]


def test_one_output_contract(natlens, exposed_world, tmp_path) -> None:
    case = exposed_world / "case"
    for command in (["records", case, "--limit", "20"], ["inbound", case], ["conversations", case],
                    ["nat", case], ["reachable", case, "--context", exposed_world / "context"]):  # fmt: skip
        document = natlens(*command, "--format", "json")
        assert document.code == 0, (command, document.err)
        data = document.json()
        assert data["schema_version"] == 1 and isinstance(data["rows"], list)
        lines = natlens(*command, "--format", "jsonl").jsonl()
        assert data["rows"] == lines, command
        assert data["columns"] == (list(lines[0]) if lines else data["columns"])
        out = tmp_path / f"{command[0]}.parquet"
        assert natlens(*command, "--format", "parquet", "--output", out).code == 0
        assert pq.read_table(out).num_rows == len(lines)


def test_options_that_would_do_nothing_are_refused(natlens, tmp_path) -> None:
    examples = Path(__file__).resolve().parents[1] / "examples" / "aws-docs" / "nat-gateway.log"
    run = natlens("nat", examples, "--top", "3")
    assert run.code == 64 and "--top only ranks top talkers" in run.err
    assert natlens("nat", examples, "--top", "3", "--top-talkers").code == 0
    run = natlens("simulate", tmp_path / "w", "--log-format", "v9")
    assert run.code == 64 and "not a named format" in run.err and "v5" in run.err
    run = natlens("simulate", tmp_path / "w", "--log-format", "${version} ${nope-nope}")
    assert run.code == 64 and "'nope-nope'" in run.err
    run = natlens("inbound", examples, "--verdcit", "exposed")
    assert run.code == 64 and "did you mean --verdict" in run.err
    run = natlens("records", examples, "--colums", "srcaddr")
    assert run.code == 64 and "did you mean --columns" in run.err
    run = natlens("inbound", examples, "--verd\x1b[2Jict", "x")  # shown, never obeyed
    assert run.code == 64 and "\x1b" not in run.err and "--verd\\x1b[2Jict" in run.err
    run = natlens("inboud", examples)
    assert run.code == 64 and "did you mean inbound?" in run.err
    run = natlens("inbound", examples, "--format", "tabel")
    assert run.code == 64 and "did you mean table?" in run.err


def _with_terminal_stderr(*args: str | os.PathLike[str]) -> tuple[bytes, str]:
    """natlens with standard error on a pseudo-terminal: (stdout, what the terminal got)."""
    import tempfile

    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "100"}
    with tempfile.TemporaryFile() as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "natlens", *map(str, args)],
            stdout=stdout, stderr=follower, env=env,
        )  # fmt: skip
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        process.wait(timeout=300)
        os.close(leader)
        stdout.seek(0)
        return stdout.read(), seen.decode(errors="replace")


def test_progress_only_on_a_terminal(natlens, tmp_path) -> None:
    world = tmp_path / "w"
    out, terminal = _with_terminal_stderr("simulate", world, "--minutes", "30", "--seed", "4")
    assert "simulating: minute" in terminal
    assert b"simulating" not in out and b"read the flow logs with" in out
    out, terminal = _with_terminal_stderr("ingest", world / "flowlogs", "--case", tmp_path / "c")
    assert "reading: " in terminal and "records" in terminal
    assert b"\x1b" not in out
    # the result goes to standard output untouched while progress was shown: a Parquet file
    out, terminal = _with_terminal_stderr("conversations", tmp_path / "c", "--format", "parquet")
    assert out.startswith(b"PAR1") and "pairing records" in terminal
    assert pq.read_table(pa.BufferReader(out)).num_rows > 1000
    # in a pipe (and with --json) nothing but the result
    piped = natlens("inbound", tmp_path / "c", "--format", "json")
    assert piped.err == "" and json.loads(piped.out)["schema_version"] == 1


def test_conversations_answer_counts_every_row(natlens, exposed_world) -> None:
    """The table's answer comes from a query of its own (the rows stream): it says what the rows
    say."""
    case = exposed_world / "case"
    rows = natlens("conversations", case, "--format", "jsonl").jsonl()
    out = natlens("conversations", case, "--wide").out
    said = " ".join(out.split("\n\n")[0].split())
    listed = out.split("\n\n", 1)[1].splitlines()
    assert len(listed) == len(rows) + 1 and listed[0].startswith("conversation")  # and its rows
    sure = sum(1 for r in rows if r["confidence"] in ("certain", "high"))
    medium = sum(1 for r in rows if r["confidence"] == "medium")
    internet = sum(1 for r in rows if r["client_role"] == "internet")
    assert said.startswith(f"{len(rows):,} conversations")
    assert f"certain or high for {sure:,}, medium for {medium:,}" in said
    assert f"{internet:,} were opened from the internet" in said


def test_wide_characters_keep_columns_aligned() -> None:
    """A hostname in CJK takes two cells a character: the next column starts at the same
    place on every line; control characters are shown, long text is cut."""
    import io

    from rich.cells import cell_len

    table = pa.table(
        {
            "hostname": ["例え.jp", "plain.example", "tab\there", "x" * 80],
            "port": [443, 8443, 80, 22],
        }
    )
    out = io.StringIO()
    render(table, "table", out, Layout())
    lines = out.getvalue().splitlines()
    assert "\\x09" in lines[3] and "\t" not in out.getvalue()
    assert lines[4].split()[0].endswith("…") and cell_len(lines[4].split()[0]) == 48
    ends = {cell_len(line) for line in lines}  # ports are right-aligned to the same column
    assert len(ends) == 1, lines
