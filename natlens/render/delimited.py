"""JSON lines and CSV: one row per line, keys are canonical column names."""

from __future__ import annotations

import csv
import json

import pyarrow as pa

from natlens.render.registry import Rows, batches, plain, register
from natlens.render.terminal import Writer, visible


@register("jsonl")
def jsonl(table: Rows, out: Writer) -> None:
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


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@register("csv")
def csv_(table: Rows, out: Writer) -> None:
    """CSV for people and spreadsheets: text cells that a spreadsheet would run as a formula
    get a leading apostrophe, and control characters are shown as escapes."""
    _write_csv(table, out, guard=True)


@register("csv-raw")
def csv_raw(table: Rows, out: Writer) -> None:
    """CSV for programs (``--raw-csv``): every cell exactly as the data holds it."""
    _write_csv(table, out, guard=False)


def _write_csv(table: Rows, out: Writer, guard: bool) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.schema.names)
    types = [f.type for f in table.schema]
    for batch in batches(table):
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for row in zip(*columns, strict=True):
            writer.writerow(
                ["" if v is None else _cell(v, t, guard) for v, t in zip(row, types, strict=True)]
            )


def _cell(value: object, dtype: pa.DataType, guard: bool) -> object:
    value = plain(value, dtype)
    if isinstance(value, dict):
        value = json.dumps(value, separators=(",", ":"))
    elif isinstance(value, list):
        value = " ".join(map(str, value))  # evidence codes, interfaces: one cell, space separated
    if guard and isinstance(value, str):
        if value.startswith(FORMULA_STARTS):
            value = "'" + value
        value = visible(value)
    return value
