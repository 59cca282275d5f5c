"""Parquet: the result table as is, for another engine or a notebook. Binary, so it goes to a
file (--output) or to a redirected standard output, never to a terminal."""

from __future__ import annotations

from typing import TextIO

import pyarrow.parquet as pq

from natlens.errors import UsageError
from natlens.render import Rows, batches, register


@register("parquet")
def parquet(table: Rows, out: TextIO) -> None:
    binary = getattr(out, "buffer", None)
    if binary is None or out.isatty():
        raise UsageError(
            "Parquet is binary: write it to a file",
            hint="add --output FILE.parquet, or redirect: ... --format parquet > FILE.parquet",
        )
    out.flush()
    with pq.ParquetWriter(binary, table.schema, compression="zstd") as writer:
        for batch in batches(table):
            writer.write_batch(batch)
    binary.flush()
