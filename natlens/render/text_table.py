"""An aligned text table for a person, streamed: the column widths come from the first rows, then
every row is written as it arrives (millions of records start printing at once). It fits the
width it is given, leaving out the columns that matter least (a note says which), shows epoch
times as ISO 8601 UTC and NULL as '-', as AWS writes it. Display widths (wide characters in a
hostname) are rich's; rich's own Table lays out about 1,200 rows a second, too slow to stream.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from rich.cells import cell_len, set_cell_size

from natlens.render.registry import Layout, Rows, batches, plain, register
from natlens.render.terminal import Writer, visible

MAX_CELL = 48
NARROW = 18  # a column cut to fit the width keeps this many characters
FIRST_ROWS = 2000  # the rows that set the column widths
GAP = 2
# Epoch-second columns: ISO 8601 UTC in a table (JSON, CSV and Parquet keep the number).
TIME_COLUMNS = frozenset(
    {"start", "end", "first_seen", "last_seen", "event_time", "first_start", "last_end"}
)


@dataclass
class _Column:
    name: str
    index: int
    numeric: bool
    time: bool
    width: int = 0


def iso(epoch: int) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(epoch)


def cell(
    value: object, dtype: pa.DataType, time: bool = False, limit: int | None = MAX_CELL
) -> str:
    if value is None:
        return "-"
    if time and isinstance(value, int):
        return iso(value) if value else "-"  # 0 stands for a time the logs do not carry
    value = plain(value, dtype)
    if isinstance(value, dict):
        text = json.dumps(value, separators=(",", ":"))
    elif isinstance(value, list):
        text = ",".join(map(str, value)) or "-"  # evidence codes, interfaces, ports
    else:
        text = str(value)
    # ids, hostnames and rules come from logs and context files: never drive the terminal
    text = visible(text)
    if limit is not None and cell_len(text) > limit:
        text = set_cell_size(text, limit - 1) + "…"
    return text


def _texts(column: pa.Array, dtype: pa.DataType, time: bool, limit: int | None) -> list[str]:
    """One column's cells, the common kinds without a call per cell: plain text that needs
    neither escaping nor cutting, and whole numbers."""
    values = column.to_pylist()
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return [
            "-" if v is None else
            cell(v, dtype, False, limit) if not (v.isascii() and v.isprintable()) else
            v if limit is None or len(v) <= limit else v[: limit - 1] + "…"
            for v in values
        ]  # fmt: skip
    if pa.types.is_integer(dtype) and not time:
        return ["-" if v is None else str(v) for v in values]
    return [cell(v, dtype, time, limit) for v in values]


def _rows(batch: pa.RecordBatch, columns: list[_Column], limit: int | None) -> Iterator[list[str]]:
    texts = [
        _texts(batch.column(c.index), batch.schema.field(c.index).type, c.time, limit)
        for c in columns
    ]
    yield from (list(row) for row in zip(*texts, strict=True))


def _slices(stream: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The batches cut to at most ``rows`` rows: the first lines go out after ``rows`` rows are
    laid out, not after an engine's whole batch."""
    for batch in stream:
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)


def _fit(columns: list[_Column], width: int | None, priority: tuple[str, ...]) -> list[str]:
    """Make the columns fit ``width``: leave out the ones that matter least (least first) until
    the rest would fit with their text cut to NARROW characters, then cut the widest text of
    those that matter least first; the names of the columns left out."""
    if width is None:
        return []
    rank = {name: k for k, name in enumerate(priority)}
    order = sorted(columns, key=lambda c: (rank.get(c.name, len(rank)), c.index))
    dropped: list[str] = []

    def least(column: _Column) -> int:
        return column.width if column.numeric or column.time else min(column.width, NARROW)

    while len(order) > 1 and sum(map(least, order)) + GAP * (len(order) - 1) > width:
        dropped.append(order.pop().name)
    for column in reversed(order):
        excess = sum(c.width for c in order) + GAP * (len(order) - 1) - width
        if excess <= 0:
            break
        column.width = max(least(column), column.width - excess)
    kept = {c.name for c in order}
    columns[:] = [c for c in columns if c.name in kept]
    return dropped


def _width(text: str) -> int:
    """Display width: one per character for ASCII, rich's measure for the rest (wide
    characters in a hostname take two)."""
    return len(text) if text.isascii() else cell_len(text)


def _line(cells: list[str], columns: list[_Column]) -> str:
    parts = []
    for text, column in zip(cells, columns, strict=True):
        width = _width(text)
        if width > column.width:
            text = set_cell_size(text, column.width - 1) + "…"
            width = column.width
        pad = " " * (column.width - width)
        parts.append(pad + text if column.numeric else text + pad)
    return (" " * GAP).join(parts).rstrip()


@register("table")
def table(rows: Rows, out: Writer, layout: Layout | None = None) -> None:
    layout = layout or Layout()
    limit = None if layout.wide else MAX_CELL
    stream = _slices(batches(rows), FIRST_ROWS)
    schema = rows.schema
    columns = [
        _Column(
            f.name,
            k,
            (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
            and f.name not in TIME_COLUMNS,
            f.name in TIME_COLUMNS and pa.types.is_integer(f.type),
        )
        for k, f in enumerate(schema)
    ]
    first: list[list[str]] = []
    more = False  # rows left in the stream after the first ones
    for batch in stream:
        first.extend(_rows(batch, columns, limit))
        if len(first) >= FIRST_ROWS:
            more = True
            break
    for k, column in enumerate(columns):
        column.width = max([_width(column.name), *(_width(r[k]) for r in first)])
    every = list(columns)
    dropped = _fit(columns, None if layout.wide else layout.width, layout.priority)
    keep = [every.index(c) for c in columns]
    if dropped:
        note = (
            f"(left out to fit {layout.width} characters: {', '.join(dropped)}; --wide shows "
            "every column)"
        )
        out.write(textwrap.fill(note, width=max(layout.width or 100, 40)) + "\n")
    out.write(_line([c.name for c in columns], columns) + "\n")
    for row in first:
        out.write(_line([row[k] for k in keep], columns) + "\n")
    if not first:
        out.write("(no rows)\n")
    if more:
        # the rest as it arrives, cut to the widths of the first rows
        for batch in stream:
            for row in _rows(batch, every, limit):
                out.write(_line([row[k] for k in keep], columns) + "\n")
