"""The records of a case, as canonical rows."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from natlens.case import Case
from natlens.engine import Engine
from natlens.errors import UsageError
from natlens.schema import FIELDS_BY_NAME, FLOWS_SCHEMA, column_name


def default_columns(case: Case) -> list[str]:
    """The fields of the formats the case has seen, in canonical order, then provenance."""
    seen: set[str] = set()
    unknown = False
    for fmt in case.manifest.get("formats", []):
        for name in fmt["fields"]:
            if name in FIELDS_BY_NAME:
                seen.add(column_name(name))
            else:
                unknown = True
    columns = [f.name for f in FLOWS_SCHEMA if f.name in seen]
    if unknown:
        columns.append("extra")
    return [*columns, "source", "line"]


def records_sql(columns: list[str], limit: int | None, in_case: bool = True) -> str:
    """``in_case``: the table is a natlens case's (with ``source`` and ``line``); otherwise an
    existing flow-log table with AWS's columns only, read in time order."""
    unknown = [c for c in columns if c not in FLOWS_SCHEMA.names]
    if unknown:
        raise UsageError(
            f"unknown column {unknown[0]!r}",
            hint="columns are AWS field names with '-' as '_', e.g. pkt_srcaddr, log_status",
        )
    if limit is not None and limit < 0:
        raise UsageError("--limit must be 0 or more")
    order = ["source", "line"] if in_case else ["start", "interface_id", "srcaddr"]
    query = (
        exp.select(*(exp.column(c, quoted=True) for c in columns))
        .from_("flows")
        .order_by(*(exp.column(c, quoted=c == "start") for c in order))
    )
    if limit is not None:
        query = query.limit(limit)
    # Read as SQL by a person too (natlens sql records): say what it is.
    query.add_comments([" Canonical flow records, in input order in a case (source, then line) "
                        "or by time elsewhere. "])  # fmt: skip
    return query.sql("duckdb", pretty=True) + "\n"


def records(
    engine: Engine, case: Case, columns: list[str] | None = None, limit: int | None = None
) -> pa.Table:
    return record_batches(engine, case, columns, limit).read_all()


def record_batches(
    engine: Engine, case: Case, columns: list[str] | None = None, limit: int | None = None
) -> pa.RecordBatchReader:
    """The records as a stream (millions of them): read it before the engine closes."""
    engine.register_case(case)
    return engine.query_batches(records_sql(columns or default_columns(case), limit))
