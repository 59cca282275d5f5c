"""Read sources into a case: sources -> containers -> record parser -> Parquet.

Three stages run at once, joined by small bounded queues so memory stays flat however large the
input: a reader thread (listing, downloading, decompressing), a parser thread (Arrow), and the
Parquet writer in the calling thread. All accounting happens in the parser thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from natlens import progress
from natlens.accounting import Accounting, Problem
from natlens.case import ROW_GROUP_ROWS, TABLES, Case, Recovery
from natlens.engine import DuckDBEngine
from natlens.errors import StrictError
from natlens.formats.containers import (
    LinesDropped,
    LinesPassedOver,
    SourceProblem,
    TablePiece,
    TextPiece,
)
from natlens.formats.firewall_columns import read_block
from natlens.formats.network_firewall import looks_like_event
from natlens.formats.vpc_flow import NOT_SPACE, FlowParser, blank_block
from natlens.schema import FLOWS_SCHEMA
from natlens.sources.timerange import TimeRange, merge
from natlens.sources.units import SourceOptions, Unit, expand

T = TypeVar("T")
# Columns whose values repeat a lot: dictionary encoding makes them small and fast to read.
_DICTIONARY_COLUMNS = [
    "account_id", "interface_id", "action", "log_status", "vpc_id", "subnet_id", "instance_id",
    "type", "region", "az_id", "flow_direction", "pkt_src_aws_service", "pkt_dst_aws_service",
    "source",
]  # fmt: skip


_STATISTICS_COLUMNS = [
    "start", "end", "srcport", "dstport", "protocol", "srcaddr_v4", "dstaddr_v4",
    "pkt_srcaddr_v4", "pkt_dstaddr_v4", "line",
]  # fmt: skip


_DELTA_COLUMNS = ["start", "end", "line"]


@dataclass
class IngestOptions:
    log_format: tuple[str, ...] | None = None
    strict: bool = False
    sources: SourceOptions = field(default_factory=SourceOptions)
    # What reads the sources instead of this process (spark_ingest.SparkReader: Spark's
    # executors, for --engine spark); None: read here.
    reader: Reader | None = None
    # The units to read, when the caller expanded the sources itself (--in-place reads the
    # rest where they lie); None: the sources' units.
    units: list[Unit] | None = None


class Reader(Protocol):
    def __call__(
        self,
        case: Case,
        units: Iterator[Unit],
        known: dict[str, dict[str, Any]],
        acct: Accounting,
        options: IngestOptions,
    ) -> tuple[list[UnitDone], list[tuple[str, Path, int]]]:
        """Read ``units`` into parts the case adopted: what ``read_units`` did, and the parts
        (table, path, rows)."""


@dataclass
class IngestReport:
    case: Path
    accounting: Accounting
    records_written: int
    parts: list[str]
    seconds: float
    coverage_gaps: list[dict[str, Any]] = field(default_factory=list)  # of the whole case
    tables: dict[str, int] = field(default_factory=dict)  # rows written per table
    recovery: Recovery = field(default_factory=Recovery)  # an interrupted run put right first

    def to_json(self) -> dict[str, Any]:
        return {
            "recovered": self.recovery.lines(),
            "case": str(self.case),
            "records_written": self.records_written,
            "tables_written": self.tables,
            "parts": self.parts,
            "seconds": round(self.seconds, 3),
            **self.accounting.to_json(),
            "coverage_gaps": self.coverage_gaps,
        }


@dataclass
class _UnitStart:
    unit: Unit


@dataclass
class _UnitEnd:
    unit: Unit


@dataclass
class UnitUnchanged:
    unit: Unit


@dataclass
class UnitDone:
    unit: Unit
    records: int
    failed: bool  # could not be opened or read
    incomplete: bool  # lines or the whole source skipped for a reason a re-run may cure
    # (failed is one of them: RETRY_REASONS holds "unreadable")


def ingest(sources: list[str], case_dir: str | Path, options: IngestOptions) -> IngestReport:
    """Read ``sources`` into the case at ``case_dir``: all of it or, on any failure (a
    ``--strict`` stop, an interruption), nothing; a case this call created is removed again."""
    started = time.monotonic()
    case = Case.for_ingest(case_dir)
    try:
        report = _ingest(case, sources, options, started)
    except BaseException:
        case.discard()
        raise
    finally:
        case.close()
    return report


def _ingest(case: Case, sources: list[str], options: IngestOptions, started: float) -> IngestReport:
    acct = Accounting(strict=options.strict)
    known: dict[str, dict[str, Any]] = case.manifest["sources"]
    coverage: dict[str, list[list[int]]] = case.manifest["cloudwatch_coverage"]

    units = (
        iter(options.units)
        if options.units is not None
        else expand(sources, options.sources, coverage)
    )
    parts = Parts(case.new_part_path)
    try:
        if options.reader is not None:
            done, written = options.reader(case, units, known, acct, options)
        else:
            done = read_units(units, known, acct, options, parts)
            written = parts.close()
    except BaseException:
        parts.abort()
        raise

    for entry in done:
        if entry.incomplete and entry.records == 0:
            acct.failed_sources.append(entry.unit.id)
    replaced = {d.unit.id for d in done if d.unit.coverage is None and d.unit.id in known}
    if replaced:
        for name in TABLES:
            case.remove_sources(replaced, name)
        acct.sources_replaced = len(replaced)
    names = []
    for name, path, rows in written:
        case.add_part(path, rows, name)
        names.append(case.committed_name(path))
    _record(case, done, acct, names, sources)
    _summarize(case)
    case.save()
    total = sum(rows for _name, _path, rows in written)
    per_table = {name: 0 for name in TABLES}
    for name, _path, rows in written:
        per_table[name] += rows
    return IngestReport(
        case.path, acct, total, names, time.monotonic() - started,
        case.manifest["coverage_gaps"], per_table, case.recovery,
    )  # fmt: skip


def read_units(
    units: Iterator[Unit],
    known: dict[str, dict[str, Any]],
    acct: Accounting,
    options: IngestOptions,
    parts: Parts,
) -> list[UnitDone]:
    """Read, parse and write ``units`` into ``parts``, every line accounted in ``acct``: the
    whole of a local ingest, and what each Spark task does with its share of the sources."""
    read_items = _firewall_ahead(_prefetch(_read_stage(units, known), depth=4))
    done: list[UnitDone] = []
    for table in _prefetch(_parse_stage(read_items, acct, options, done), depth=4):
        parts.write(table)
    return done


class Parts:
    """The part files of one ingest: one per set of columns (in practice, one per format).

    Like AWS's own Parquet files, a part holds only the columns its records have; engines read
    the parts by column name, so every canonical column is there, NULL where a part lacks it.
    ``new_path`` names each new part's (temporary) file.
    """

    def __init__(self, new_path: Callable[[str], Path]) -> None:
        self.new_path = new_path
        self.open: dict[tuple[str, ...], _Part] = {}

    def write(self, table: pa.Table) -> None:
        key = tuple(table.column_names)
        part = self.open.get(key)
        if part is None:
            name = "firewall_events" if "firewall_name" in key else "flows"
            part = self.open[key] = _Part(self.new_path(name), table.schema, name)
        part.write(table)

    def close(self) -> list[tuple[str, Path, int]]:
        return [(part.table, part.path, part.close()) for part in self.open.values()]

    def abort(self) -> None:
        for part in self.open.values():
            part.abort()


class _Part:
    def __init__(self, path: Path, schema: pa.Schema, table: str = "flows") -> None:
        self.path = path
        self.table = table
        self.writer = pq.ParquetWriter(
            path,
            schema,
            compression="zstd",
            compression_level=1,
            use_dictionary=[c for c in _DICTIONARY_COLUMNS if c in schema.names],
            # Min/max statistics where they let engines skip row groups: times, ports, addresses.
            write_statistics=[c for c in _STATISTICS_COLUMNS if c in schema.names],
            # Near-monotonic integers shrink to a few bits each before compression.
            column_encoding={c: "DELTA_BINARY_PACKED" for c in _DELTA_COLUMNS if c in schema.names},
        )
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=ROW_GROUP_ROWS)
            self.rows += self.pending_rows
            self.pending, self.pending_rows = [], 0

    def close(self) -> int:
        self._flush()
        self.writer.close()
        return self.rows

    def abort(self) -> None:
        self.writer.close()
        self.path.unlink(missing_ok=True)


def planned(
    units: Iterator[Unit], known: dict[str, dict[str, Any]]
) -> Iterator[Unit | UnitUnchanged]:
    """The units to read, once each (a file named twice, or a directory and a file in it, is
    read once), and those read before and unchanged since, as ``UnitUnchanged``."""
    this_run: set[tuple[str, str]] = set()
    for unit in units:
        if (unit.id, unit.fingerprint) in this_run:
            continue
        this_run.add((unit.id, unit.fingerprint))
        seen = known.get(unit.id)
        if (
            unit.coverage is None
            and seen
            and seen.get("fingerprint") == unit.fingerprint
            and not seen.get("incomplete")
        ):
            yield UnitUnchanged(unit)
        else:
            yield unit


def _read_stage(units: Iterator[Unit], known: dict[str, dict[str, Any]]) -> Iterator[object]:
    for unit in planned(units, known):
        if isinstance(unit, UnitUnchanged):
            yield unit
            continue
        yield _UnitStart(unit)
        try:
            yield from unit.read()
        except Exception as exc:  # one source's failure never stops the others
            yield SourceProblem(_broken(unit.id, exc))
        yield _UnitEnd(unit)


# Network Firewall blocks are read two at a time: a block of a few thousand lines keeps one of
# DuckDB's threads busy, and the line parser one core.
_FIREWALL_POOL = ThreadPoolExecutor(2, thread_name_prefix="natlens-firewall")
_FIREWALL_AHEAD = 2


@dataclass
class _Ahead:
    """A Network Firewall block being read in the pool, and the piece it came from."""

    piece: TextPiece
    result: Future[tuple[pa.Table, list[Problem], int]]


def _firewall_ahead(items: Iterator[object]) -> Iterator[object]:
    """The items in order, each text piece that looks like Network Firewall events replaced by
    an ``_Ahead`` that started reading it; ``_FIREWALL_AHEAD`` are in flight at a time."""
    pending: deque[object] = deque()
    in_flight = 0
    for item in items:
        if isinstance(item, TextPiece) and looks_like_event(_first_line(item.block)):
            future = _FIREWALL_POOL.submit(read_block, item.block, item.first_line, item.source)
            item = _Ahead(item, future)
            in_flight += 1
        pending.append(item)
        # Items wait behind a block being read only a few at a time: a file of a block of
        # events and a gigabyte of newlines must stream, not pile up here.
        while pending and (
            in_flight > _FIREWALL_AHEAD
            or len(pending) > 2 * _FIREWALL_AHEAD
            or not isinstance(pending[0], _Ahead)
        ):
            if isinstance(pending[0], _Ahead):
                in_flight -= 1
            yield pending.popleft()
    yield from pending


def _parse_stage(
    items: Iterator[object], acct: Accounting, options: IngestOptions, done: list[UnitDone]
) -> Iterator[pa.Table]:
    parsers: dict[str, FlowParser] = {}
    firewall: dict[str, int] = {}  # Network Firewall sources of this unit: records read
    unit: Unit | None = None
    lines_at_start = curable_at_start = 0
    failed = False
    broken: set[str] = set()
    for item in items:
        if isinstance(item, UnitUnchanged):
            acct.sources_skipped_unchanged += 1
        elif isinstance(item, _UnitStart):
            unit, parsers, firewall, failed = item.unit, {}, {}, False
            lines_at_start, curable_at_start = acct.counts.lines, acct.curable()
        elif isinstance(item, _UnitEnd):
            assert unit is not None
            acct.sources_read += 1
            records = sum(p.records for p in parsers.values()) + sum(firewall.values())
            incomplete = acct.curable() > curable_at_start
            if acct.counts.lines == lines_at_start and not failed and not incomplete:
                acct.empty_sources.append(unit.id)
            done.append(UnitDone(unit, records, failed, incomplete))
            progress.source_done(unit.id, unit.fingerprint, records)
            unit = None
        elif isinstance(item, SourceProblem):
            acct.counts.lines += item.problem.count
            failed = failed or item.problem.reason == "unreadable"
            acct.problem(item.problem)
        elif isinstance(item, LinesDropped):
            acct.counts.lines -= item.count
            acct.counts.blank -= item.count
        elif isinstance(item, LinesPassedOver):
            acct.counts.blank -= item.count
            acct.counts.metadata += item.count
        elif isinstance(item, TextPiece | TablePiece | _Ahead):
            assert unit is not None
            if unit.id in broken:
                continue  # the rest of a source whose parsing failed
            try:
                tables = list(_parse_piece(item, unit, parsers, firewall, acct, options))
            except StrictError:
                raise
            except Exception as exc:  # one source's failure never stops the others
                broken.add(unit.id)
                acct.problem(_broken(unit.id, exc))  # bad-container: read again next time
                continue
            yield from tables
        else:  # pragma: no cover - every item type is handled above
            raise TypeError(f"unexpected item {item!r}")


def _parse_piece(
    item: TextPiece | TablePiece | _Ahead,
    unit: Unit,
    parsers: dict[str, FlowParser],
    firewall: dict[str, int],
    acct: Accounting,
    options: IngestOptions,
) -> Iterator[pa.Table]:
    window = options.sources.time_range
    ahead: Future[tuple[pa.Table, list[Problem], int]] | None = None
    if isinstance(item, _Ahead):
        ahead = item.result
        item = item.piece
    if isinstance(item, TextPiece) and (
        item.source in firewall
        or (item.source not in parsers and looks_like_event(_first_line(item.block)))
    ):
        table = _firewall_piece(item, acct, window, ahead)
        firewall[item.source] = firewall.get(item.source, 0) + table.num_rows
        if table.num_rows:
            yield table
        return
    parser = parsers.get(item.source)
    if parser is None:
        given = options.log_format or unit.given_format
        origin = "--log-format" if options.log_format else unit.given_origin
        parser = FlowParser(item.source, acct, given, origin, window.since, window.until)
        parsers[item.source] = parser
    if isinstance(item, TextPiece):
        produced = parser.feed(item.block, item.first_line)
    else:
        produced = parser.feed_table(item.table, item.first_line)
    for table in produced:
        yield conform(table, item.source)


def _broken(source: str, exc: BaseException) -> Problem:
    """A source that failed in a way no reader foresaw: reported, and read again next time."""
    detail = (str(exc).strip().splitlines() or [""])[0][:200]
    return Problem(
        "bad-container", source, None,
        f"stopped reading it: {type(exc).__name__}: {detail} (what came before was kept)",
        count=0,
    )  # fmt: skip


def _first_line(block: bytes) -> str:
    """The first line with text in the block's first 64 KiB (found without splitting them:
    a block of newlines is asked this twice)."""
    match = NOT_SPACE.search(block, 0, 65536)
    if match is None:
        return ""
    start = block.rfind(b"\n", 0, match.start()) + 1
    end = block.find(b"\n", match.start(), 65536)
    end = min(len(block), 65536) if end < 0 else end
    return block[start:end].decode("utf-8", "replace")


def _firewall_piece(
    piece: TextPiece,
    acct: Accounting,
    window: TimeRange,
    ahead: Future[tuple[pa.Table, list[Problem], int]] | None = None,
) -> pa.Table:
    """Network Firewall events: every line a row, a blank, filtered out or a problem. Blank
    lines are counted, never materialised (a file of a billion newlines stays cheap)."""
    block = piece.block
    total = block.count(b"\n") + (0 if block.endswith(b"\n") or not block else 1)
    acct.counts.lines += total
    # A block of white space only (a file padded with a gigabyte of newlines) is counted at C
    # speed, without a table of its lines.
    if blank_block(block):
        acct.counts.blank += total
        return read_block(b"", piece.first_line, piece.source)[0]
    if ahead is not None:
        table, problems, blank = ahead.result()
    else:
        table, problems, blank = read_block(block, piece.first_line, piece.source)
    acct.counts.blank += blank
    for problem in problems:
        acct.problem(problem)
    if window.since is not None or window.until is not None:
        kept = table.filter(_in_window(table, window))
        acct.counts.filtered += table.num_rows - kept.num_rows
        table = kept
    acct.counts.records += table.num_rows
    return table


def _in_window(table: pa.Table, window: TimeRange) -> pa.Array:
    """Events that overlap --since/--until: the flow's span (or the event's time) meets the
    window. A time of 0 counts as none (as Python's ``or`` has it); an event without a time is
    kept."""

    def either(first: Any, second: Any) -> Any:  # Python's ``first or second``
        return pc.if_else(pc.fill_null(pc.not_equal(first, 0), False), first, second)

    time = table.column("event_time")
    start = either(table.column("flow_start"), time)
    end = either(either(table.column("flow_end"), time), start)
    keep = pa.scalar(True)
    if window.since is not None:
        keep = pc.and_(keep, pc.invert(pc.fill_null(pc.less(end, window.since), False)))
    if window.until is not None:
        keep = pc.and_(keep, pc.invert(pc.fill_null(pc.greater(start, window.until), False)))
    return pc.or_(pc.is_null(start), keep)


def conform(table: pa.Table, source: str) -> pa.Table:
    """A parsed table's canonical columns, typed and in schema order, with its source."""
    n = table.num_rows
    columns, fields = [], []
    for column in FLOWS_SCHEMA:
        if column.name == "source":
            # One value per table: a dictionary column, written dictionary-encoded as is.
            indices = pa.array(np.zeros(n, dtype=np.int32))
            columns.append(pa.DictionaryArray.from_arrays(indices, pa.array([source])))
            fields.append(pa.field("source", pa.dictionary(pa.int32(), pa.string())))
            continue
        if column.name not in table.column_names:
            continue
        columns.append(table.column(column.name).cast(column.type))
        fields.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _record(
    case: Case, done: list[UnitDone], acct: Accounting, parts: list[str], requested: list[str]
) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for entry in done:
        unit = entry.unit
        if unit.coverage is not None:
            key, lo, hi = unit.coverage
            if not entry.failed and not (entry.incomplete and entry.records == 0) and hi > lo:
                coverage = case.manifest["cloudwatch_coverage"]
                coverage[key] = merge(coverage.get(key, []), (lo, hi))
            continue
        seen = {"fingerprint": unit.fingerprint, "records": entry.records, "ingested": now}
        read_in = {f for (f, _), found in acct.formats.items() if unit.id in found["sources"]}
        if len(read_in) == 1:
            # the format its records were read in: what rebuilds their lines (natlens insights)
            seen["fields"] = list(read_in.pop())
        if entry.incomplete:
            # Read again next time, its rows (if any) replaced: see RETRY_REASONS.
            seen["incomplete"] = True
        case.manifest["sources"][unit.id] = seen
    formats = {(tuple(f["fields"]), f["origin"]): f for f in case.manifest["formats"]}
    for (fields, origin), seen in acct.formats.items():
        entry_json = formats.setdefault(
            (fields, origin), {"fields": list(fields), "origin": origin, "records": 0}
        )
        entry_json["records"] += seen["records"]
    case.manifest["formats"] = list(formats.values())
    summary = acct.to_json()
    case.manifest["ingests"].append(
        {
            "at": now,
            "sources": requested,
            "parts": parts,
            "lines": summary["lines"],
            "skipped": {k: v["lines"] for k, v in summary["skipped"].items()},
        }
    )


def _summarize(case: Case) -> None:
    """Time range and coverage gaps (NODATA/SKIPDATA per interface) of the whole case."""
    with DuckDBEngine() as engine:
        engine.register_case(case)
        span = engine.query('SELECT min(start) AS low, max("end") AS high FROM flows')
        gaps = engine.query(
            """
            SELECT interface_id, log_status, count(*) AS records,
                   min(start) AS first_start, max("end") AS last_end
            FROM flows
            WHERE log_status IN ('NODATA', 'SKIPDATA')
            GROUP BY interface_id, log_status
            ORDER BY log_status DESC, interface_id
            """
        )
    low, high = span["low"][0].as_py(), span["high"][0].as_py()
    case.manifest["time_range"] = None if low is None else {"start": low, "end": high}
    case.manifest["coverage_gaps"] = gaps.to_pylist()


_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _prefetch(items: Iterator[T], depth: int) -> Iterator[T]:
    """Run ``items`` in a thread, ``depth`` items ahead; exceptions surface in the consumer."""
    channel: queue.Queue[object] = queue.Queue(depth)
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                channel.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:
            put(_Failure(exc))

    thread = threading.Thread(target=run, name="natlens-stage", daemon=True)
    thread.start()
    try:
        while True:
            item = channel.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)
