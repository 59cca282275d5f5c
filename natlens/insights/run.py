"""``compile_query`` parses a Logs Insights query (parse.py) and compiles it to one SQL query
(compile.py) over the fields CloudWatch would discover (fields.py); ``run`` runs it on an engine
and gives the rows as CloudWatch would show them."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from natlens.case import Case
from natlens.engine import Engine
from natlens.errors import UsageError
from natlens.insights.compile import Compiler
from natlens.insights.fields import Formats
from natlens.insights.parse import parse, pointed
from natlens.insights.values import DEFAULT_LIMIT, Compiled
from natlens.sqltree import to_sql


def compile_query(
    text: str,
    case: Case | None,
    dialect: str = "duckdb",
    logs: str | None = None,
    window: tuple[int | None, int | None] = (None, None),
    engine: Engine | None = None,
    table: str | None = None,
    printing: bool = False,
    log_type: str | None = None,
) -> Compiled:
    """``engine``: lets an IPv6 subnet test read which addresses the logs hold. ``printing``:
    the SQL is for a person to run, so it applies ``window`` itself (an engine's view of a case
    applies it otherwise)."""
    commands = parse(text)

    def distinct(column: exp.Expr, table: exp.Expr) -> list[str]:
        """The IPv6 addresses ``column`` (a discovered address field) holds in ``table``."""
        assert engine is not None
        query = (
            exp.select(exp.alias_(column, "a"))
            .distinct()
            .from_(table)
            .where(exp.GT(this=exp.StrPosition(this=column.copy(), substr=exp.Literal.string(":")),
                          expression=exp.Literal.number(0)))
        )  # fmt: skip
        return [a for a in engine.query(query).column("a").to_pylist() if a is not None]

    compiler = Compiler(
        text, commands, logs, Formats.of(case), dialect, window, table,
        distinct if engine is not None else None, printing, log_type,
    )  # fmt: skip
    try:
        return compiler.run()
    except UsageError as error:
        raise pointed(text, error) from None


def sql_text(compiled: Compiled, dialect: str) -> str:
    return to_sql(compiled.sql, dialect, pretty=True)


@dataclass
class Result:
    table: pa.Table
    compiled: Compiled

    @property
    def capped(self) -> bool:
        """No ``limit`` and as many rows as CloudWatch's cap: there may be more."""
        return self.compiled.default_limit and self.table.num_rows >= DEFAULT_LIMIT


def run(
    engine: Engine, case: Case, text: str, logs: str | None = None, log_type: str | None = None
) -> Result:
    engine.register_case(case)
    compiled = compile_query(text, case, engine.name, logs, engine=engine, log_type=log_type)
    table = engine.query(compiled.sql)
    return Result(_shown(table, compiled), compiled)


def _shown(table: pa.Table, compiled: Compiled) -> pa.Table:
    """Times as CloudWatch shows them (``2024-06-01 00:05:00.000``, UTC); names as the query
    gave them."""
    import pyarrow.compute as pc

    columns = []
    for name, column in zip(compiled.names, table.columns, strict=True):
        if name in compiled.times:
            stamp = pc.cast(column, pa.timestamp("ms"))
            text = pc.strftime(stamp, format="%Y-%m-%d %H:%M:%S.%f")
            column = pc.utf8_slice_codeunits(text, 0, 23)
        elif pa.types.is_decimal(column.type):  # DuckDB sums integers as 128-bit numbers
            whole = column.type.scale == 0
            column = pc.cast(column, pa.int64() if whole else pa.float64())
        columns.append(column)
    return pa.table(columns, names=compiled.names)
