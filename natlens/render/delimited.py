"""JSON lines and CSV: one row per line, keys are canonical column names."""

from __future__ import annotations

import csv
import json
from typing import TextIO

import pyarrow as pa

from natlens.render import Rows, batches, plain, register


@register("jsonl")
def jsonl(table: Rows, out: TextIO) -> None:
    names = table.schema.names
    types = [f.type for f in table.schema]
    for batch in batches(table):
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for row in zip(*columns, strict=True):
            record = {
                name: plain(value, dtype)
                for name, value, dtype in zip(names, row, types, strict=True)
            }
            out.write(json.dumps(record, separators=(",", ":")) + "\n")


@register("csv")
def csv_(table: Rows, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.schema.names)
    types = [f.type for f in table.schema]
    for batch in batches(table):
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for row in zip(*columns, strict=True):
            writer.writerow(
                ["" if v is None else _cell(v, t) for v, t in zip(row, types, strict=True)]
            )


def _cell(value: object, dtype: pa.DataType) -> object:
    value = plain(value, dtype)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, list):
        return " ".join(map(str, value))  # evidence codes, interfaces: one cell, space separated
    return value
