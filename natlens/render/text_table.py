"""An aligned text table for a terminal. NULL shows as '-', as AWS writes it."""

from __future__ import annotations

import json

import pyarrow as pa

from natlens.render.registry import Rows, plain, register, whole
from natlens.render.terminal import Writer, visible

MAX_CELL = 48


@register("table")
def table(rows: Rows, out: Writer) -> None:
    data = whole(rows)
    names = data.column_names
    types = [f.type for f in data.schema]
    rows = [
        [_cell(v, t) for v, t in zip(row, types, strict=True)]
        for row in zip(*data.to_pydict().values(), strict=True)
    ]
    widths = [len(n) for n in names]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [pa.types.is_integer(f.type) or pa.types.is_floating(f.type) for f in data.schema]
    out.write(_line(names, widths, [False] * len(names)) + "\n")
    for row in rows:
        out.write(_line(row, widths, numeric) + "\n")
    if not rows:
        out.write("(no rows)\n")


def _cell(value: object, dtype: pa.DataType) -> str:
    if value is None:
        return "-"
    value = plain(value, dtype)
    if isinstance(value, dict):
        text = json.dumps(value, separators=(",", ":"))
    elif isinstance(value, list):
        text = ",".join(map(str, value)) or "-"  # evidence codes, interfaces, ports
    else:
        text = str(value)
    # ids, hostnames and rules come from logs and context files: never drive the terminal
    text = visible(text)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _line(cells: list[str], widths: list[int], right: list[bool]) -> str:
    parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
    return "  ".join(parts).rstrip()
