"""JSON lines and CSV (one row per line, keys are canonical column names), and JSON: one
document with a schema version and the rows."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

import pyarrow as pa

from natlens.render.registry import Layout, Rows, batches, plain, register
from natlens.render.terminal import Writer, visible
from natlens.schema import JSON_SCHEMA_VERSION


def _records(table: Rows) -> Iterator[dict[str, object]]:
    names = table.schema.names
    types = [f.type for f in table.schema]
    for batch in batches(table):
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        for row in zip(*columns, strict=True):
            yield {
                name: plain(value, dtype)
                for name, value, dtype in zip(names, row, types, strict=True)
            }


@register("jsonl")
def jsonl(table: Rows, out: Writer, layout: Layout | None = None) -> None:
    for record in _records(table):
        out.write(json.dumps(record, separators=(",", ":")) + "\n")


@register("json")
def json_document(table: Rows, out: Writer, layout: Layout | None = None) -> None:
    """One JSON document: ``schema_version``, ``columns`` and ``rows`` (streamed, row by row)."""
    head = {"schema_version": JSON_SCHEMA_VERSION, "columns": table.schema.names}
    out.write(json.dumps(head, separators=(",", ":"))[:-1] + ',"rows":[')
    for k, record in enumerate(_records(table)):
        out.write(("," if k else "") + "\n" + json.dumps(record, separators=(",", ":")))
    out.write("\n]}\n")


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@register("csv")
def csv_(table: Rows, out: Writer, layout: Layout | None = None) -> None:
    """CSV for people and spreadsheets: text cells that a spreadsheet would run as a formula
    get a leading apostrophe, and control characters are shown as escapes."""
    _write_csv(table, out, guard=True)


@register("csv-raw")
def csv_raw(table: Rows, out: Writer, layout: Layout | None = None) -> None:
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
