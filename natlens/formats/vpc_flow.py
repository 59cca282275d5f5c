"""VPC flow log records: text lines to typed Arrow columns, every line accounted for.

A block of whole lines is parsed column-wise with Arrow. Clean blocks (single spaces, no blank
lines, every value valid) take a fast path through Arrow's CSV reader; any other block takes the
general path, which splits on runs of whitespace (docs/aws.md §3.5: AWS's own example has a double
space), finds each bad line and says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from natlens.accounting import Accounting, Problem
from natlens.formats.flow_columns import (
    _CONTROL,
    _INT32_MAX,
    RANGES,
    VOCABULARY,
    _address,
    _as_text,
    _convert,
    _expected,
    _flat,
    filter_time,
    finish_columns,
)
from natlens.formats.logformat import LineFormat, format_string, header_fields, resolve_format
from natlens.schema import (
    FIELDS_BY_NAME,
    FlowField,
    Kind,
)

_SPACE_BYTES = b" \t\r\n\x0b\x0c"  # ASCII white space, as Arrow's splitter has it
NOT_SPACE = re.compile(rb"[^ \t\r\n\x0b\x0c]")


def blank_block(block: bytes) -> bool:
    """Whether a block of lines holds only white space. A record or an event in its first 4 KiB
    answers at once; only a block that starts blank is checked whole (at C speed)."""
    return NOT_SPACE.search(block, 0, 4096) is None and not block.translate(None, _SPACE_BYTES)


EXAMPLES_PER_BLOCK = 5
# Address columns are converted side by side: Arrow's regex kernels use one core each.
_POOL = ThreadPoolExecutor(2, thread_name_prefix="natlens-parse")
_PARALLEL_ROWS = 16384
# Whitespace Arrow's CSV reader would not treat as a field separator: such blocks take the general
# path. Double spaces, blank lines and leading or trailing spaces need no scan: they change a
# line's field count, which the CSV reader refuses.
_IRREGULAR = (b"\t", b"\r", b"\x0b", b"\x0c")


def _parquet_field(column: str) -> str:
    """A Parquet column's field name: AWS writes ``log_status`` for ``log-status``."""
    lowered = column.strip().lower()
    for candidate in (lowered, lowered.replace("_", "-")):
        if candidate in FIELDS_BY_NAME:
            return candidate
    return column


def _field(name: str) -> FlowField:
    """A known field, or an unknown one kept as text (its values go to the ``extra`` column)."""
    return FIELDS_BY_NAME.get(name) or FlowField(name, None, Kind.STRING)


@dataclass
class _Rows:
    """Typed columns of the good rows of a block, with their line numbers."""

    columns: dict[str, pa.Array]
    lines: np.ndarray
    # IPv4 integers already computed while checking addresses, by field name.
    ipv4: dict[str, pa.Array] = field(default_factory=dict)


class _BadValues:
    """The first bad field of each row, and the text of the first few bad values per field."""

    def __init__(self, nrows: int, fields: tuple[str, ...]) -> None:
        self.fields = fields
        self.field = np.full(nrows, -1, dtype=np.int64)
        self.text: dict[int, str] = {}

    def add(self, index: int, invalid: np.ndarray | None, text: pa.Array, rows: np.ndarray) -> None:
        """``invalid[j]`` is true when ``text[j]``, the value of row ``rows[j]``, is bad."""
        if invalid is None or not invalid.any():
            return
        found = np.flatnonzero(invalid)
        for j in found[: 2 * EXAMPLES_PER_BLOCK]:
            self.text.setdefault(int(rows[j]), text[int(j)].as_py())
        target = rows[found]
        self.field[target[self.field[target] < 0]] = index

    @property
    def rows(self) -> np.ndarray:
        return self.field >= 0

    def describe(self, row: int) -> tuple[str, str | None]:
        name = self.fields[self.field[row]]
        return f"{self.text.get(row)!r} is not {_expected(_field(name).kind, name)}", name


class FlowParser:
    """Parses the record lines of one source, block by block.

    The field order is fixed by the first line: a header, the given format, or the default
    format when the line fits it. A header later in the stream (files joined with ``cat``) switches
    the format from that line on.
    """

    def __init__(
        self,
        source: str,
        acct: Accounting,
        given: tuple[str, ...] | None = None,
        given_origin: str = "--log-format",
        since: int | None = None,
        until: int | None = None,
    ) -> None:
        self.source = source
        self.acct = acct
        self.given = given
        self.given_origin = given_origin
        self.since = since
        self.until = until
        self.fmt: LineFormat | None = None
        self.unreadable = False  # no format fits: every line is reported as no-format
        self.records = 0

    # -- public --------------------------------------------------------------------------------

    def feed(self, block: bytes, first_line: int) -> Iterator[pa.Table]:
        """Parse ``block`` (whole lines, each ending in a newline) whose first line is numbered
        ``first_line``. Yields tables of typed columns named as canonical columns, plus ``line``.
        """
        if not block:
            return
        if not block.endswith(b"\n"):
            block += b"\n"
        if blank_block(block):
            # Whitespace only (a file padded with a gigabyte of newlines): counted at C speed.
            lines = block.count(b"\n")
            self.acct.counts.lines += lines
            self.acct.counts.blank += lines
            return
        if self.fmt is None and not self.unreadable:
            block, first_line = self._start(block, first_line)
        if not block:
            return
        if self.unreadable:
            self._skip_all(block, first_line)
            return
        yield from self._parse(block, first_line)

    def feed_table(self, table: pa.Table, first_row: int) -> Iterator[pa.Table]:
        """Parse columns read from Parquet (docs/aws.md §2.2): typed by AWS, named with ``_``."""
        n = table.num_rows
        self.acct.counts.lines += n
        names = tuple(_parquet_field(raw) for raw in table.column_names)
        known = sum(name in FIELDS_BY_NAME for name in names)
        if known * 2 < len(names) or known < 2:
            # Not AWS's flow log Parquet: most columns are not flow log fields.
            self.acct.problem(
                Problem(
                    "no-format",
                    self.source,
                    first_row,
                    f"{n} row(s) not read: a Parquet file whose columns are mostly not flow log "
                    f"fields ({', '.join(table.column_names[:6])}...)",
                    count=n,
                )
            )
            return
        # Two columns for one field (srcaddr and SRCADDR): the first is read, the others named.
        seen: dict[str, str] = {}
        keep_columns = []
        for name, raw_name in zip(names, table.column_names, strict=True):
            if name in seen:
                self._column_not_read(
                    raw_name, name, first_row, f"repeats field {name!r} (column {seen[name]!r})"
                )
                continue
            seen[name] = raw_name
            keep_columns.append((name, raw_name))
        names = tuple(name for name, _raw in keep_columns)
        bad = _BadValues(n, names)
        every_row = np.arange(n)
        columns: dict[str, pa.Array] = {}
        ipv4: dict[str, pa.Array] = {}
        for i, (name, raw_name) in enumerate(keep_columns):
            col = table.column(raw_name).combine_chunks()
            kind = _field(name).kind
            if not _flat(col.type) and name not in FIELDS_BY_NAME:
                # A list, struct or map column of no flow log field: named, not read.
                self._column_not_read(
                    raw_name, name, first_row, f"holds {col.type} values, which no field has"
                )
                continue
            if not _flat(col.type):
                # A flow log field as a list, struct or map: every row with a value in it is
                # reported.
                present = pc.is_valid(col).to_numpy(zero_copy_only=False)
                bad.add(i, present, pa.array([f"a {col.type} value"] * n), every_row)
                continue
            if pa.types.is_integer(col.type) and kind in (Kind.INT32, Kind.INT64):
                # uint64 values past 2^63 do not fit int64: they become 2^63 - 1, which the
                # default limit below (2^63 - 2) leaves out of range as well.
                if col.type == pa.uint64():
                    col = pc.if_else(
                        pc.greater(col, pa.scalar(2**63 - 1, pa.uint64())),
                        pa.scalar(2**63 - 1, pa.uint64()), col,
                    )  # fmt: skip
                col = col.cast(pa.int64())
                low, limit = RANGES.get(name, (0, _INT32_MAX if kind is Kind.INT32 else 2**63 - 2))
                in_range = pc.and_(pc.greater_equal(col, low), pc.less_equal(col, limit))
                invalid = ~pc.fill_null(in_range, True).to_numpy(zero_copy_only=False)
                bad.add(i, invalid, col.cast(pa.string()), every_row)
            else:
                text, not_utf8 = _as_text(col)
                # "-" is AWS's NULL; pandas writes "None" and "nan" for missing numbers.
                free_text = kind is Kind.STRING and name not in VOCABULARY
                missing = ["-"] if free_text else ["-", "None", "nan", "NaN", ""]
                text = pc.if_else(
                    pc.fill_null(pc.is_in(text, value_set=pa.array(missing)), False),
                    pa.scalar(None, pa.string()), text,
                )  # fmt: skip
                col, invalid_text, value = _convert(text, kind, name)
                if not_utf8 is not None:
                    invalid_text = not_utf8 if invalid_text is None else invalid_text | not_utf8
                bad.add(i, invalid_text, text, every_row)
                if value is not None:
                    ipv4[name] = value
            columns[name] = col
        self._report("bad-value", np.flatnonzero(bad.rows), first_row, bad.describe)
        keep = ~bad.rows
        if not keep.all():
            mask = pa.array(keep)
            columns = {name: col.filter(mask) for name, col in columns.items()}
            ipv4 = {name: col.filter(mask) for name, col in ipv4.items()}
        good = _Rows(columns, first_row + np.flatnonzero(keep).astype(np.int64), ipv4)
        self.acct.counts.records += len(good.lines)
        yield from self._emit(good, LineFormat(names, "parquet"))

    def _column_not_read(self, raw_name: str, name: str, first_row: int, why: str) -> None:
        """A Parquet column natlens leaves out, named (it stands for no lines: count 0)."""
        message = f"column {raw_name!r} {why}: it was not read"
        self.acct.problem(
            Problem("bad-value", self.source, first_row, message, field=name, count=0)
        )

    # -- format --------------------------------------------------------------------------------

    def _start(self, block: bytes, first_line: int) -> tuple[bytes, int]:
        """Fix the format from the first text line; returns the block from the first record on."""
        pos, line_no = 0, first_line
        found = NOT_SPACE.search(block)
        if found is not None:  # blank lines before it: counted at once, not one by one
            pos = block.rfind(b"\n", 0, found.start()) + 1
            line_no += block.count(b"\n", 0, pos)
            self.acct.counts.lines += line_no - first_line
            self.acct.counts.blank += line_no - first_line
        while pos < len(block):
            end = block.index(b"\n", pos)
            try:
                text = block[pos:end].decode("utf-8")
            except UnicodeDecodeError:
                self.acct.counts.lines += 1
                self.acct.problem(
                    Problem("not-text", self.source, line_no, "the line is not UTF-8 text")
                )
                pos, line_no = end + 1, line_no + 1
                continue
            if not text.strip():
                self.acct.counts.lines += 1
                self.acct.counts.blank += 1
                pos, line_no = end + 1, line_no + 1
                continue
            fields = header_fields(text)
            if fields is not None:
                self.fmt = LineFormat(fields, "header")
                self.acct.counts.lines += 1
                self.acct.counts.headers += 1
                return block[end + 1 :], line_no + 1
            self.fmt = resolve_format(text, self.given, self.given_origin)
            if self.fmt is None:
                self.unreadable = True
                self.acct.counts.lines += 1
                self.acct.problem(
                    Problem(
                        "no-format",
                        self.source,
                        line_no,
                        f"no header line and no --log-format, and the first record "
                        f"({len(text.split())} fields) does not read as the default format "
                        "(14 fields, version 2). Pass --log-format with the flow log's format "
                        "string: aws ec2 describe-flow-logs --query 'FlowLogs[].LogFormat'",
                    )
                )
                self._skip_all(block[end + 1 :], line_no + 1)
                return b"", line_no
            return block[pos:], line_no
        return b"", line_no

    def _skip_all(self, block: bytes, first_line: int) -> None:
        """Account for the lines of a source whose format is unknown."""
        lines = block.split(b"\n")[:-1]
        blank = sum(1 for line in lines if not line.strip())
        self.acct.counts.lines += len(lines)
        self.acct.counts.blank += blank
        if len(lines) > blank:
            self.acct.problem(
                Problem(
                    "no-format",
                    self.source,
                    first_line,
                    f"{len(lines) - blank} line(s) not read: no format fits this source "
                    "(see its first no-format problem)",
                    count=len(lines) - blank,
                )
            )

    # -- parsing -------------------------------------------------------------------------------

    def _parse(self, block: bytes, first_line: int) -> Iterator[pa.Table]:
        assert self.fmt is not None
        rows = self._fast(block, first_line) if self._clean(block) else None
        if rows is None:
            yield from self._general(block, first_line)
            return
        self.acct.counts.lines += len(rows.lines)
        self.acct.counts.records += len(rows.lines)
        yield from self._emit(rows, self.fmt)

    def _clean(self, block: bytes) -> bool:
        assert self.fmt is not None
        has_number = any(_field(f).kind in (Kind.INT32, Kind.INT64) for f in self.fmt.fields)
        return (
            has_number  # a header line inside a text-only format would read as a record
            and not block.startswith((b" ", b"\n"))
            and not any(marker in block for marker in _IRREGULAR)
        )

    def _fast(self, block: bytes, first_line: int) -> _Rows | None:
        """Arrow's CSV reader on a clean block; None sends the block to the general path."""
        assert self.fmt is not None
        names = [f"_prefix{i}" for i in range(self.fmt.prefix)] + list(self.fmt.fields)
        types = {}
        for name in names:
            f = _field(name)
            types[name] = pa.int64() if f.kind in (Kind.INT32, Kind.INT64) else pa.string()
        try:
            table = pacsv.read_csv(
                pa.BufferReader(pa.py_buffer(block)),  # no copy of the block
                read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 22),
                parse_options=pacsv.ParseOptions(
                    delimiter=" ",
                    quote_char=False,
                    escape_char=False,
                    double_quote=False,
                    ignore_empty_lines=False,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=types,
                    null_values=["-"],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        columns: dict[str, pa.Array] = {}
        addresses: list[str] = []
        for name in self.fmt.fields:
            col = table.column(name).combine_chunks()
            kind = _field(name).kind
            if kind in (Kind.INT32, Kind.INT64):
                low, high = pc.min_max(col).values()
                floor, limit = RANGES.get(name, (0, _INT32_MAX if kind is Kind.INT32 else None))
                if low.as_py() is not None and low.as_py() < floor:
                    return None
                if limit is not None and (high.as_py() or 0) > limit:
                    return None
            elif (
                name in VOCABULARY
                and not pc.all(
                    # is_in is false, not null, for a null value: '-' is allowed
                    pc.or_(pc.is_null(col), pc.is_in(col, value_set=pa.array(VOCABULARY[name])))
                ).as_py()
            ):
                return None
            elif kind is Kind.ADDRESS:
                addresses.append(name)
            elif (
                kind is Kind.STRING
                and pc.any(pc.match_substring_regex(pc.unique(col), _CONTROL)).as_py()
            ):
                return None  # a control character in text: the general path names the line
            columns[name] = col
        ipv4: dict[str, pa.Array] = {}
        # Two address columns of a big block convert in parallel (the work releases the GIL);
        # for a small one handing over to a thread costs more than it saves.
        convert = _POOL.map if table.num_rows >= _PARALLEL_ROWS else map
        for name, (value, ok) in zip(
            addresses, convert(_address, [columns[a] for a in addresses]), strict=True
        ):
            if ok is not None and not pc.all(ok).as_py():
                return None
            ipv4[name] = value
        lines = np.arange(first_line, first_line + table.num_rows, dtype=np.int64)
        return _Rows(columns, lines, ipv4)

    def _general(self, block: bytes, first_line: int) -> Iterator[pa.Table]:
        """Any block: find each line that is blank, a header, or cannot be read, and why."""
        assert self.fmt is not None
        fmt = self.fmt
        block, not_text = self._repair_utf8(block, first_line)
        ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
        offsets = np.empty(len(ends) + 1, np.int32)
        offsets[0] = 0
        offsets[1:] = ends + 1
        nrows = len(ends)
        lines = pa.Array.from_buffers(
            pa.string(), nrows, [None, pa.py_buffer(offsets), pa.py_buffer(block)]
        )
        # Empty lines (a long run of newlines) are not split at all: only the others are.
        nonempty = np.flatnonzero(ends - offsets[:-1] > 0)
        some = lines.take(pa.array(nonempty)) if len(nonempty) < nrows else lines
        # Arrow's split keeps empty strings at the ends (unlike str.split): trim first.
        trimmed = pc.ascii_trim_whitespace(some)
        parts = pc.ascii_split_whitespace(trimmed)
        ntok_some = pc.list_value_length(parts).to_numpy(zero_copy_only=False).copy()
        ntok_some[pc.binary_length(trimmed).to_numpy(zero_copy_only=False) == 0] = 0
        ntok = np.zeros(nrows, dtype=ntok_some.dtype)
        ntok[nonempty] = ntok_some
        text = np.ones(nrows, dtype=bool)
        text[not_text] = False
        blank = (ntok == 0) & text
        good = (ntok == fmt.prefix + len(fmt.fields)) & text

        # Values of the rows with the right number of fields, checked field by field; the
        # first bad field of each row is the one reported.
        good_idx = np.flatnonzero(good)
        good_parts = parts.take(pa.array(np.searchsorted(nonempty, good_idx)))
        bad = _BadValues(nrows, fmt.fields)
        columns: dict[str, pa.Array] = {}
        ipv4: dict[str, pa.Array] = {}
        for i, name in enumerate(fmt.fields):
            col = pc.list_element(good_parts, fmt.prefix + i)
            col = pc.if_else(pc.equal(col, "-"), pa.scalar(None, pa.string()), col)
            typed, invalid, value = _convert(col, _field(name).kind, name)
            bad.add(i, invalid, col, good_idx)
            columns[name] = typed
            if value is not None:
                ipv4[name] = value

        # A failing line may be a header: files joined with cat, each with its own header.
        failing = (text & ~blank & ~good) | bad.rows
        first_char: np.ndarray = np.frombuffer(block, np.uint8)[offsets[:-1]]
        may_be_header = failing & (first_char >= 97) & (first_char <= 122)
        switch_at: int | None = None
        header = np.zeros(nrows, dtype=bool)
        for row in np.flatnonzero(may_be_header):
            fields = header_fields(lines[int(row)].as_py())
            if fields is None:
                continue
            header[row] = True
            if fields != fmt.fields:
                switch_at = int(row)
                self.fmt = LineFormat(fields, "header")
                break
        stop = nrows if switch_at is None else switch_at
        within = np.arange(nrows) < stop

        count_rows = np.flatnonzero(failing & ~good & ~header & within)
        value_rows = np.flatnonzero(bad.rows & ~header & within)
        self._report(
            "field-count",
            count_rows,
            first_line,
            lambda row: (
                f"{int(ntok[row]) - fmt.prefix} fields, but the format ({fmt.describe()}: "
                f"{format_string(fmt.fields)[:100]}) has {len(fmt.fields)}",
                None,
            ),
        )
        self._report("bad-value", value_rows, first_line, bad.describe)
        # The header that switches the format is counted here; its lines after it, later.
        switching = int(switch_at is not None)
        self.acct.counts.lines += stop + switching
        self.acct.counts.headers += int((header & within).sum()) + switching
        self.acct.counts.blank += int((blank & within).sum())

        keep = ~bad.rows[good_idx] & (good_idx < stop)
        if not keep.all():
            mask = pa.array(keep)
            columns = {name: col.filter(mask) for name, col in columns.items()}
            ipv4 = {name: col.filter(mask) for name, col in ipv4.items()}
        rows = _Rows(columns, first_line + good_idx[keep].astype(np.int64), ipv4)
        self.acct.counts.records += len(rows.lines)
        yield from self._emit(rows, fmt)

        if switch_at is not None:
            rest = block[int(offsets[switch_at + 1]) :]
            # Lines after the switch that were not text are reported already; the rest of the
            # block holds them empty, so their second reading must not count them as blank.
            self.acct.counts.blank -= sum(1 for row in not_text if row > switch_at)
            if rest:
                yield from self._parse(rest, first_line + switch_at + 1)

    def _report(
        self,
        reason: str,
        rows: np.ndarray,
        first_line: int,
        describe: Callable[[int], tuple[str, str | None]],
        line_of: Callable[[int], int] | None = None,
    ) -> None:
        """Report the first lines one by one, and the rest of the block as one count."""
        where = line_of or (lambda row: first_line + row)
        for row in rows[:EXAMPLES_PER_BLOCK]:
            message, field = describe(int(row))
            self.acct.problem(Problem(reason, self.source, where(int(row)), message, field=field))
        rest = rows[EXAMPLES_PER_BLOCK:]
        if len(rest):
            self.acct.problem(
                Problem(
                    reason,
                    self.source,
                    where(int(rest[0])),
                    f"{len(rest)} more line(s) in this block from here, like the ones before",
                    count=len(rest),
                )
            )

    def _repair_utf8(self, block: bytes, first_line: int) -> tuple[bytes, list[int]]:
        """Blank out lines that are not UTF-8 text, reporting each; returns their rows."""
        try:
            block.decode("utf-8")
            return block, []
        except UnicodeDecodeError:
            pass
        out, bad = [], []
        for row, line in enumerate(block.split(b"\n")[:-1]):
            try:
                line.decode("utf-8")
                out.append(line)
            except UnicodeDecodeError:
                bad.append(row)
                out.append(b"")
                self.acct.problem(
                    Problem("not-text", self.source, first_line + row, "the line is not UTF-8")
                )
        return b"\n".join(out) + b"\n", bad

    # -- output --------------------------------------------------------------------------------

    def _emit(self, rows: _Rows, fmt: LineFormat) -> Iterator[pa.Table]:
        if len(rows.lines) == 0:
            return
        table = finish_columns(rows.columns, rows.lines, rows.ipv4)
        table = self._ordered_times(table)
        table, dropped = filter_time(table, self.since, self.until)
        if dropped:
            self.acct.counts.records -= dropped
            self.acct.counts.filtered += dropped
        self.records += table.num_rows
        self.acct.format_seen(fmt.fields, fmt.origin, self.source, table.num_rows)
        if table.num_rows:
            yield table

    def _ordered_times(self, table: pa.Table) -> pa.Table:
        """Records whose capture window ends before it starts are skipped (bad-value, end)."""
        if "start" not in table.column_names or "end" not in table.column_names:
            return table
        backwards = pc.fill_null(pc.greater(table["start"], table["end"]), False)
        if not pc.any(backwards).as_py():
            return table
        rows = np.flatnonzero(backwards.to_numpy(zero_copy_only=False))
        lines = table["line"].to_numpy()
        starts, ends = table["start"].to_numpy(), table["end"].to_numpy()
        self._report(
            "bad-value",
            rows,
            0,
            lambda row: (f"end {ends[row]} is before start {starts[row]}", "end"),
            line_of=lambda row: int(lines[row]),
        )
        self.acct.counts.records -= len(rows)
        return table.filter(pc.invert(backwards))
