"""Golden files: every renderer's exact output (text tables, JSON lines, CSV, the reports for
people as text, JSON and Markdown) on small fixed inputs, compared byte for byte.

A change to what natlens prints shows up here as a diff to review. When the change is meant:

    NATLENS_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py

rewrites the files under tests/golden/; review them with `git diff tests/golden` before
committing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("NATLENS_UPDATE_GOLDEN") == "1"

FLOWS = "examples/aws-docs"
BAIT = "fixtures/golden/spreadsheet-bait.log"  # text cells a spreadsheet would run
TOPOLOGY = "fixtures/topology/after-nat"
# Not `source`: it holds the absolute path of the checkout.
COLUMNS = "srcaddr,srcport,dstaddr,dstport,protocol,action,tcp_flags,instance_id,line"

# (golden file, command): paths relative to a scratch directory holding examples/ and fixtures/.
CASES = [
    ("records.txt", ["records", FLOWS, BAIT, "--columns", COLUMNS]),
    ("records.jsonl", ["records", FLOWS, BAIT, "--columns", COLUMNS, "--format", "jsonl"]),
    ("records.csv", ["records", FLOWS, BAIT, "--columns", COLUMNS, "--format", "csv"]),
    ("records-raw.csv", ["records", BAIT, "--columns", COLUMNS, "--format", "csv", "--raw-csv"]),
    ("inbound.txt", ["inbound", FLOWS]),
    ("inbound.jsonl", ["inbound", FLOWS, "--format", "jsonl"]),
    ("inbound.csv", ["inbound", FLOWS, "--format", "csv"]),
    ("conversations.txt", ["conversations", f"{FLOWS}/nat-gateway.log"]),
    ("explain.txt", ["explain", f"{FLOWS}/nat-gateway.log", "203.0.113.5"]),
    ("explain.json", ["explain", f"{FLOWS}/nat-gateway.log", "203.0.113.5", "--format", "json"]),
    ("topology.txt", ["topology", "--context", TOPOLOGY]),
    ("topology.json", ["topology", "--context", TOPOLOGY, "--format", "json"]),
    ("topology.md", ["topology", "--context", TOPOLOGY, "--format", "markdown"]),
    ("ingest.txt", ["ingest", FLOWS, BAIT, "--case", "case"]),
]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "fixtures").symlink_to(ROOT / "tests" / "fixtures")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("name", "command"), CASES, ids=[name for name, _ in CASES])
def test_output_matches_its_golden_file(name: str, command: list[str], scratch: Path) -> None:
    run = run_cli(*command)
    assert run.code == 0, run.err
    # Timings are the only thing that changes between runs.
    got = _without_timings(run.out)
    path = GOLDEN / name
    if UPDATE:
        path.write_text(got)
    assert path.exists(), f"no golden file {path}: run with NATLENS_UPDATE_GOLDEN=1 to write it"
    assert got == path.read_text(), f"{name} changed: NATLENS_UPDATE_GOLDEN=1 if it is meant"


def _without_timings(text: str) -> str:
    import re

    return re.sub(r"\b\d+(\.\d+)? s\b|[\d,]+ records/s", "<time>", text)
