"""The registry of renderers (result tables to text), looked up by name; they never query."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeAlias

import pyarrow as pa

from natlens.errors import UsageError
from natlens.render.terminal import Writer

# A renderer takes a whole table or a stream of record batches (results too big to hold at once).
Rows: TypeAlias = "pa.Table | pa.RecordBatchReader"


@dataclass(frozen=True)
class Layout:
    """How a table for a person is laid out: ``width`` characters (None: as wide as its rows),
    every column and every character with ``wide``, the columns to keep first when the width is
    short (``priority``; the others keep their order after them)."""

    width: int | None = None
    wide: bool = False
    priority: tuple[str, ...] = ()


Renderer = Callable[[Rows, Writer, "Layout | None"], None]
RENDERERS: dict[str, Renderer] = {}


def register(name: str) -> Callable[[Renderer], Renderer]:
    def add(fn: Renderer) -> Renderer:
        RENDERERS[name] = fn
        return fn

    return add


def batches(data: Rows) -> Iterator[pa.RecordBatch]:
    if isinstance(data, pa.Table):
        yield from data.to_batches(max_chunksize=65536)
    else:
        yield from data


def whole(data: Rows) -> pa.Table:
    return data if isinstance(data, pa.Table) else data.read_all()


def render(table: Rows, fmt: str, out: Writer, layout: Layout | None = None) -> None:
    # The built-in renderers register themselves on import, the same way an extension would.
    from natlens.render import delimited, parquet_file, text_table  # noqa: F401

    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise UsageError(
            f"unknown output format {fmt!r}", hint=f"use one of {sorted(RENDERERS)}"
        ) from None
    renderer(table, out, layout)


def plain(value: object, dtype: pa.DataType | None = None) -> object:
    """A cell as JSON would hold it: maps (lists of pairs in Arrow's Python form) become
    objects; lists stay lists."""
    if dtype is not None and not pa.types.is_map(dtype):
        return value
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        return dict(value)
    if isinstance(value, list) and not value:
        return {}
    return value
