"""Coverage-guided fuzzing of every parser natlens has, with atheris (libFuzzer for Python).

Targets (each takes bytes, and fails on a crash, a hang or a line not accounted for):

  flowlog     flow log text: header lines, records, any bytes (FlowParser, one block at a time)
  firewall    Network Firewall log lines (JSON per line, parse_lines and the ingest piece)
  firewall_columns  the column-wise firewall reader against the strict line parser: same rows,
              same problems, same blank count
  container   whole files as ingest reads them: gzip, CloudWatch Logs JSON (exports, subscription
              payloads, Lambda events, Firehose), CLI text dumps, Parquet, plain text
  logformat   --log-format strings and header lines
  context     describe-* JSON files (load_context)

    python benchmarks/fuzz.py TARGET [-runs=1000000] [-max_len=4096] [corpus dirs...]

A crash leaves its input as crash-* in the working directory; keep it under
tests/fixtures/fuzz/TARGET/ and tests/test_fuzz.py replays it forever after. tests/test_fuzz.py
also runs each target briefly on inputs hypothesis draws, in make test.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from natlens.accounting import Accounting
from natlens.errors import NatlensError


def _drain(items: object) -> None:
    for _ in items:  # type: ignore[attr-defined]
        pass


def _check(acct: Accounting, what: str) -> None:
    if not acct.counts.balanced():
        raise AssertionError(f"{what}: lines not accounted for: {acct.counts}")


def flowlog(data: bytes) -> None:
    from natlens.formats.vpc_flow import FlowParser

    acct = Accounting()
    parser = FlowParser("fuzz", acct)
    # Whole lines, as the container reader hands them over, in up to two blocks.
    cut = data.rfind(b"\n", 0, len(data) // 2) + 1
    for block, first in ((data[:cut], 1), (data[cut:], 1 + data[:cut].count(b"\n"))):
        if block:
            _drain(parser.feed(block, first))
    _check(acct, "flowlog")


def firewall(data: bytes) -> None:
    from natlens.formats.containers import TextPiece
    from natlens.ingest import _firewall_piece
    from natlens.sources.timerange import TimeRange

    acct = Accounting()
    block = data if data.endswith(b"\n") or not data else data + b"\n"
    table = _firewall_piece(TextPiece("fuzz", block, 1), acct, TimeRange(1_600_000_000, None))
    _check(acct, "firewall")
    if table.num_rows != acct.counts.records:
        raise AssertionError("firewall: rows and records differ")


def firewall_columns(data: bytes) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' reference
    from natlens.formats import firewall_columns as columns
    from tests.test_firewall_columns import ALERT, FLOW, _lines, strict

    columns.MIN_LINES, columns.RAISE = 1, True
    block = _lines(ALERT) + data + b"\n" + _lines(FLOW)
    got = columns.read_block(block, 1, "fuzz")
    want = strict(block, 1, "fuzz")
    if got[1:] != want[1:] or not got[0].equals(want[0]):
        raise AssertionError("firewall_columns: the column-wise reader and the parser differ")


def container(data: bytes) -> None:
    """A file as ingest reads it: the container reader, then the parse stage."""
    from natlens.formats.containers import read_container
    from natlens.ingest import IngestOptions, _parse_stage, _UnitEnd, _UnitStart
    from natlens.sources.units import Unit

    acct = Accounting()

    def read() -> object:
        return read_container("fuzz", io.BytesIO(data))

    unit = Unit("fuzz", "f", read)  # type: ignore[arg-type]
    items = [_UnitStart(unit), *read_container("fuzz", io.BytesIO(data)), _UnitEnd(unit)]
    _drain(_parse_stage(iter(items), acct, IngestOptions(), []))
    _check(acct, "container")


def logformat(data: bytes) -> None:
    from natlens.formats.logformat import header_fields, parse_log_format

    text = data.decode("utf-8", "replace")
    header_fields(text)
    with contextlib.suppress(NatlensError):
        parse_log_format(text)


CONTEXT_FILES = (
    "describe-route-tables.json", "describe-network-interfaces.json",
    "describe-nat-gateways.json", "describe-security-groups.json",
    "describe-network-acls.json", "describe-subnets.json", "describe-vpcs.json",
)  # fmt: skip


def context(data: bytes) -> None:
    from natlens.formats.describe_json import load_context

    names = CONTEXT_FILES
    name = names[data[0] % len(names)] if data else names[0]
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / name).write_bytes(data[1:])
        loaded = load_context(directory)
        # What the analyses and the topology read from it must not fail either.
        loaded.address_roles()
        loaded.inside_cidrs()
        loaded.security_group_rules()
        json.dumps([str(p) for p in loaded.problems])


TARGETS: dict[str, Callable[[bytes], None]] = {
    "flowlog": flowlog,
    "firewall": firewall,
    "firewall_columns": firewall_columns,
    "container": container,
    "logformat": logformat,
    "context": context,
}


def main() -> None:
    import atheris

    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: fuzz.py {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv[1]]
    with atheris.instrument_imports(include=["natlens"]):
        import natlens.formats.containers
        import natlens.formats.describe_json
        import natlens.formats.firewall_columns
        import natlens.formats.logformat
        import natlens.formats.network_firewall
        import natlens.formats.vpc_flow
        import natlens.ingest  # noqa: F401
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
