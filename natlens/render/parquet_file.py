"""Parquet: the result table as is, for another engine or a notebook. Binary, so it goes to a
file (--output) or to a redirected standard output, never to a terminal."""

from __future__ import annotations

import io

import pyarrow.parquet as pq

from natlens.errors import UsageError
from natlens.render.registry import Layout, Rows, batches, register
from natlens.render.terminal import Writer


@register("parquet")
def parquet(table: Rows, out: Writer, layout: Layout | None = None) -> None:
    if not isinstance(out, io.TextIOWrapper) or out.isatty():
        raise UsageError(
            "Parquet is binary: write it to a file",
            hint="add --output FILE.parquet, or redirect: ... --format parquet > FILE.parquet",
        )
    out.flush()
    binary = out.buffer
    with pq.ParquetWriter(binary, table.schema, compression="zstd") as writer:
        for batch in batches(table):
            writer.write_batch(batch)
    binary.flush()
