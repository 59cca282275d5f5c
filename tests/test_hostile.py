"""Values from logs, context files and options are hostile: they never become SQL, shell,
Markdown, Mermaid or terminal control (issue findings 7-10)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from natlens.simulate.describe import describe
from natlens.simulate.world import build_world
from tests.conftest import AWS_EXAMPLES

HOSTILE_ID = 'rtb-0a1$(touch PWNED)`touch PWNED2`\n\x1b[2J# <script>alert(1)</script> [x](javascript:alert(1)) "] click A "javascript:alert(1)"'


@pytest.mark.parametrize(
    "address",
    ["::1%x') OR 1=1 OR ('", "fe80::1%eth0", "010.0.0.1", "10.0.0.1' OR '1'='1", "1.2.3.4:5:6"],
)
def test_addresses_are_parsed_strictly(tmp_path, natlens, address) -> None:
    """Finding 7: a scope id or anything else that is not an address is refused, before any SQL."""
    for command in (["conversations", "--ip", address], ["inbound", "--ip", address]):
        run = natlens(command[0], AWS_EXAMPLES / "nat-gateway.log", *command[1:])
        assert run.code == 64 and "not an IP address" in run.err, (command, run.err)
    run = natlens("explain", AWS_EXAMPLES / "nat-gateway.log", address)
    assert run.code == 64 and "not an IP address" in run.err


def test_an_address_finds_only_its_own_conversations(natlens) -> None:
    """--ip selects exactly the conversations with that address (AWS's NAT gateway example
    talks to 203.0.113.5 only; the accepted-rejected example does not name it)."""
    logs = [AWS_EXAMPLES / "nat-gateway.log", AWS_EXAMPLES / "accepted-rejected.log"]
    rows = natlens("conversations", *logs, "--format", "jsonl").jsonl()
    wanted = [r for r in rows if "203.0.113.5" in (r["client_addr"], r["server_addr"])]
    assert len(wanted) == 2 and len(rows) == 4
    one = natlens("conversations", *logs, "--ip", "203.0.113.5", "--format", "jsonl").jsonl()
    assert one == wanted
    none = natlens("conversations", *logs, "--ip", "203.0.113.99", "--format", "jsonl").jsonl()
    assert none == []


@pytest.mark.parametrize("limit", ["1GB'; SELECT 1; --", "lots", "2GB; PRAGMA x"])
def test_memory_limit_is_a_size(natlens, limit) -> None:
    run = natlens("records", AWS_EXAMPLES / "ipv6.log", "--memory-limit", limit)
    assert run.code == 64 and "is not a size" in run.err


def test_memory_limit_accepts_sizes(natlens) -> None:
    for limit in ("500MB", "2GiB", "1.5GB"):
        assert natlens("records", AWS_EXAMPLES / "ipv6.log", "--memory-limit", limit).code == 0


def _hostile_world(tmp_path: Path) -> Path:
    documents = describe(build_world(np.random.default_rng(7), 2, 2, "after-nat", 0))
    text = json.dumps(documents)
    tables = sorted(set(re.findall(r"(?:rtb|vpc)-[0-9a-f]+", text)))
    # Every route table id becomes hostile (kept distinct by its own suffix).
    for table in tables:
        text = text.replace(f'"{table}"', json.dumps(HOSTILE_ID + table[4:]))
    directory = tmp_path / "ctx"
    directory.mkdir()
    for name, document in json.loads(text).items():
        (directory / name).write_text(json.dumps(document))
    return directory


def test_printed_commands_are_safe_to_paste(tmp_path, natlens) -> None:
    """Finding 8: the remediation plan, run by a shell, passes every id as one word and runs
    nothing it holds; a newline in an id does not end a '# why' comment."""
    directory = _hostile_world(tmp_path)
    run = natlens("topology", "--context", directory, "--format", "json")
    assert run.code == 0, run.err
    plan = [step["command"] for vpc in run.json()["vpcs"] for step in vpc["plan"]]
    assert plan and any("touch PWNED" in step for step in plan)
    markdown = natlens("topology", "--context", directory, "--format", "markdown").out
    blocks = re.findall(r"```sh\n(.*?)```", markdown, flags=re.S)
    assert blocks
    work = tmp_path / "work"
    work.mkdir()
    script = "aws() { printf '%s\\n' \"$@\" >> args.txt; echo rtb-new; }\n" + "\n".join(blocks)
    shell = shutil.which("bash") or "sh"
    subprocess.run([shell, "-c", script], cwd=work, check=True, timeout=60)
    assert not (work / "PWNED").exists() and not (work / "PWNED2").exists()
    passed = (work / "args.txt").read_text()
    assert "rtb-0a1$(touch PWNED)`touch PWNED2`" in passed  # the id, intact, as one argument
    for block in blocks:
        for line in block.splitlines():
            assert line.startswith(("# ", "aws ", "RTB_")), line


def test_markdown_and_mermaid_escape_ids(tmp_path, natlens) -> None:
    """Finding 9."""
    directory = _hostile_world(tmp_path)
    markdown = natlens("topology", "--context", directory, "--format", "markdown").out
    # Inside a fenced code block text is shown as it is (renderers escape it); outside, no
    # HTML and no link may come from the ids.
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    assert "<script" not in prose and "&lt;script&gt;" in prose
    assert not re.search(r"(?<!\\)\]\(javascript:", prose)  # an escaped \] makes no link
    assert "\\](javascript:" in prose
    mermaid = re.findall(r"```mermaid\n(.*?)```", markdown, flags=re.S)
    assert mermaid
    for line in mermaid[0].splitlines():
        assert not line.strip().startswith("click"), line
        for label in re.findall(r'\["(.*?)"\]', line):
            assert '"' not in label and "<" not in label and "\n" not in label
    text = natlens("topology", "--context", directory).out
    assert "\x1b" not in text and "$(touch PWNED)" in text


def test_terminal_and_csv_show_control_characters(tmp_path, natlens) -> None:
    """Finding 10: ESC and BEL from logs are shown as escapes in table and CSV output; CSV
    cells that a spreadsheet would run get a leading apostrophe unless --raw-csv."""
    log = tmp_path / "flow.log"
    log.write_text(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
        "start end action log-status instance-tag\n"
        '2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 100 160 ACCEPT OK =HYPERLINK("http://x")\n'
        "2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 100 160 ACCEPT OK +cmd|'/c calc'!A0\n"
        "2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 100 160 ACCEPT OK @SUM(1)\n"
    )
    table = natlens("records", log, "--columns", "instance_tag")
    assert table.code == 0, table.err
    csv_out = natlens("records", log, "--columns", "instance_tag", "--format", "csv").out
    cells = csv_out.splitlines()[1:]
    assert all(c.lstrip('"').startswith("'") for c in cells), cells
    raw = natlens("records", log, "--columns", "instance_tag", "--format", "csv", "--raw-csv").out
    assert raw.splitlines()[1].lstrip('"').startswith("=HYPERLINK")


def test_firewall_fields_never_drive_the_terminal(tmp_path, natlens) -> None:
    event = {
        "firewall_name": "fw\x1b[2J", "availability_zone": "us-east-1a",
        "event_timestamp": "1700000000",
        "event": {"timestamp": "2023-11-14T22:13:20.000000+0000", "flow_id": 1,
                  "event_type": "alert", "src_ip": "10.0.0.1", "src_port": 1234,
                  "dest_ip": "203.0.113.9", "dest_port": 443, "proto": "TCP",
                  "app_proto": "tls", "tls": {"sni": "evil\x1b]0;owned\x07.example"},
                  "alert": {"action": "allowed", "signature_id": 1, "rev": 1,
                            "signature": "sig\x1b[31m", "category": "", "severity": 3}},
    }  # fmt: skip
    log = tmp_path / "alert.log"
    log.write_text(json.dumps(event) + "\n")
    out = natlens("attribute", log).out + natlens("attribute", log, "--format", "csv").out
    assert "\x1b" not in out and "\x07" not in out


def test_reports_show_control_characters_in_names_and_values(tmp_path, natlens) -> None:
    """Finding 10: file names (S3 keys and log stream names are the same) and values quoted in
    problems never reach the terminal raw: the ingest report, errors, explain."""
    name = tmp_path / "evil\x1b]0;owned\x07.log"
    name.write_text(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
        "start end action log-status\n"
        "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 100 160 ACCEPT\x1b[2J OK\n"
        "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 100 160 ACCEPT OK\n"
    )
    run = natlens("ingest", name, "--case", tmp_path / "case")
    assert run.code == 0, run.err
    assert "\x1b" not in run.out + run.err and "\\x1b" in run.out
    missing = natlens("records", tmp_path / "nope\x1b[2J.log")
    assert missing.code == 2 and "\x1b" not in missing.err and "\\x1b" in missing.err
    explained = natlens("explain", tmp_path / "case", "10.0.0.1")
    assert explained.code == 0 and "\x1b" not in explained.out
