"""What every engine shares: the query type, translation to a dialect and the portable
subset's check, the ``Engine`` interface, temporary links and error messages."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Self

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from natlens.case import TABLES, Case
from natlens.errors import CaseError, EnvironmentProblem, NatlensError, UsageError
from natlens.sqltree import to_sql

if TYPE_CHECKING:
    from natlens.formats.inplace import InPlace

# A query: a sqlglot tree (what analyses build) or DuckDB-dialect text (short fixed queries).
SQL = str | exp.Expr

ENGINES = ("duckdb", "spark")
DIALECTS = ("duckdb", "spark", "athena")


def translate(
    sql: SQL,
    dialect: str,
    tables: dict[str, str] | None = None,
    where: dict[str, list[exp.Expr]] | None = None,
) -> str:
    """The analysis SQL for ``dialect`` (duckdb, spark, athena), with tables renamed as asked
    (an Athena user's flow-log table is rarely called ``flows``) and, for the tables in
    ``where``, only their rows that meet its conditions (each read as a filtered subquery)."""
    if dialect not in DIALECTS:
        raise UsageError(f"unknown SQL dialect {dialect!r}", hint=f"use one of {DIALECTS}")
    tree = sqlglot.parse_one(sql, read="duckdb") if isinstance(sql, str) else sql.copy()
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        name = table.name
        if name in ctes or table.args.get("db"):
            continue
        replacement = (tables or {}).get(name, name)
        conditions = (where or {}).get(name)
        if conditions:
            alias = table.alias or name
            read = exp.select("*").from_(exp.to_table(replacement)).where(*conditions)
            table.replace(read.subquery(alias))
        elif replacement != name:
            table.set("this", exp.to_identifier(replacement))
    return to_sql(tree, dialect, pretty=True)


def check_portable(sql: SQL) -> list[str]:
    """Constructs that sqlglot would carry to another engine unchanged, or that mean something
    else there. An empty list means the query is in the portable subset."""
    problems = []
    for tree in sqlglot.parse(sql, read="duckdb") if isinstance(sql, str) else [sql]:
        if tree is None:
            continue
        if list(tree.find_all(exp.Qualify)):
            problems.append("QUALIFY: filter a window function in an outer query instead")
        for group in tree.find_all(exp.Group):
            if group.args.get("all"):
                problems.append("GROUP BY ALL: list the grouped expressions")
            select = group.parent
            aliases = (
                {e.alias for e in select.expressions if isinstance(e, exp.Alias)}
                if isinstance(select, exp.Select)
                else set()
            )
            columns = _source_columns(select) if isinstance(select, exp.Select) else set()
            for expression in group.expressions:
                if (
                    isinstance(expression, exp.Column)
                    and not expression.table
                    and expression.name in aliases
                    and expression.name not in columns
                ):
                    problems.append(f"GROUP BY {expression.name}: group by the expression")
                if isinstance(expression, exp.Literal):
                    problems.append("GROUP BY position: group by the expression")
        for bracket in tree.find_all(exp.Bracket):
            if any(isinstance(e, exp.Slice) for e in bracket.expressions):
                problems.append("list slicing [a:b]: not portable")
        for order in tree.find_all(exp.Order):
            if order.parent is not tree and not isinstance(order.parent, exp.Window):
                problems.append("ORDER BY inside a subquery: order only the final result")
    return problems


def _source_columns(select: exp.Select) -> set[str]:
    """Column names the FROM clause provides, when they can be known (canonical tables)."""
    names: set[str] = set()
    for table in select.find_all(exp.Table):
        schema = TABLES.get(table.name)
        if schema is not None:
            names.update(schema.names)
    return names


class Engine(ABC):
    name: str
    # --since/--until in epoch seconds: register_case shows only the flow records whose capture
    # window overlaps it, and the firewall events in it (NULL times are kept).
    window: tuple[int | None, int | None] = (None, None)
    # Seconds of flow records read either side of the window, the firewall events not: an
    # analysis whose answers are about events in the window sees the evidence just outside it.
    flows_margin: int = 0

    def window_filters(self) -> dict[str, str]:
        """The WHERE condition per table for ``window`` (numbers only), or none."""
        since, until = self.window
        margin = int(getattr(self, "flows_margin", 0))  # (also called on a namespace)
        flows, events = [], []
        if since is not None:
            flows.append(f'coalesce("end", start) >= {int(since) - margin}')
            events.append(f"coalesce(flow_end, event_time) >= {int(since)}")
        if until is not None:
            flows.append(f"start <= {int(until) + margin}")
            events.append(f"coalesce(flow_start, event_time) <= {int(until)}")
        out = {}
        if flows:
            out["flows"] = " AND ".join(f"coalesce({c}, true)" for c in flows)
            out["firewall_events"] = " AND ".join(f"coalesce({c}, true)" for c in events)
        return out

    @abstractmethod
    def register_case(self, case: Case) -> None: ...

    @abstractmethod
    def query(self, sql: SQL) -> pa.Table: ...

    def query_batches(self, sql: SQL) -> pa.RecordBatchReader:
        """The result as a stream of record batches, for results too big to hold at once."""
        return self.query(sql).to_reader()

    def export_parquet(self, sql: SQL, path: Path) -> bool:
        """Write the result of ``sql`` to one Parquet file, if this engine can do it natively
        (faster than streaming it through Python). False: the caller streams it."""
        return False

    @abstractmethod
    def write_parquet(self, sql: SQL, directory: Path) -> None:
        """Run ``sql`` and write its rows as Parquet files into ``directory``."""

    @abstractmethod
    def register_parquet(self, name: str, directory: Path) -> None:
        """Make the Parquet files in ``directory`` a table called ``name``."""

    def in_place_rejected(self, in_place: InPlace) -> tuple[int, str | None]:
        """Lines of text files read in place that the engine's reader set aside before natlens
        saw them, and the first one's file (Spark's CSV source keeps them as rows: none)."""
        return 0, None

    def hold(self, fd: int) -> None:
        """Keep a lock (an open file) until the engine closes: the files it guards are read
        lazily, by every query that names them."""
        self.__dict__.setdefault("_held", []).append(fd)

    def release(self) -> None:
        for fd in self.__dict__.pop("_held", []):
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        self.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SAFE_PATH = re.compile(r"[A-Za-z0-9_./+-]*")
# DuckDB's memory_limit: a number and a unit, or a share of the machine's memory.
_SIZE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)", re.IGNORECASE)


def check_size(value: str, option: str = "--memory-limit") -> str:
    """A memory size as DuckDB and natlens's users write it (2GB, 500MiB, 80%), or UsageError."""
    text = value.strip()
    if not _SIZE.fullmatch(text):
        raise UsageError(f"{option} {value!r} is not a size", hint="e.g. 2GB, 500MB or 80%")
    return text


# Plain links natlens made to the user's directories, to show the real paths in messages.
_LINKS: dict[str, str] = {}


class _Scratch:
    """A private temporary directory: an empty Parquet file per table with its whole canonical
    schema (read before the parts), and plain-named links to directories whose names an engine
    would read as a glob or could not quote ('[', '*', '{', quotes, newlines)."""

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._links: dict[Path, Path] = {}

    def _root(self) -> Path:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="natlens-empty-")
        return Path(self._dir.name)

    def path(self, name: str) -> Path:
        path = self._root() / f"{name}.parquet"
        if not path.exists():
            # (not Schema.empty_table(): it imports pandas, half a second)
            pq.write_table(pa.Table.from_batches([], schema=TABLES[name]), path)
        return path

    def plain(self, path: Path) -> Path:
        """``path`` itself when its name is plain; else the same file through a plain link to
        its directory. The file's own name must be plain (natlens names its files)."""
        path = Path(os.path.abspath(path))
        if _SAFE_PATH.fullmatch(str(path)):
            return path
        folder = path.parent
        link = self._links.get(folder)
        if link is None:
            link = self._root() / f"dir-{len(self._links)}"
            os.symlink(folder, link)
            self._links[folder] = link
            _LINKS[str(link)] = str(folder)
        return link / path.name

    def plain_file(self, path: Path) -> Path:
        """``path`` itself when it is plain; else a plain-named link to the file (a user's file
        named ``flows [1].log.gz`` would be a glob pattern to DuckDB)."""
        path = Path(os.path.abspath(path))
        if _SAFE_PATH.fullmatch(str(path)):
            return path
        if path in self._links:
            return self._links[path]
        link = self._root() / f"file-{len(self._links)}{''.join(path.suffixes[-2:])}"
        if not _SAFE_PATH.fullmatch(link.name):
            link = link.with_name(f"file-{len(self._links)}")
        os.symlink(path, link)
        self._links[path] = link
        _LINKS[str(link)] = str(path)
        return link

    def cleanup(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
            self._links.clear()


def sql_string(value: str) -> str:
    """A value as an SQL string literal, quoted by sqlglot (it reaches every engine through
    sqlglot's parser, so it stays one literal in each dialect)."""
    return exp.Literal.string(value).sql(dialect="duckdb")


def _quoted(path: Path) -> str:
    """A path natlens built (plain characters only) as an SQL string literal."""
    text = str(path)
    assert _SAFE_PATH.fullmatch(text), text
    return sql_string(text)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return real_path(text)[:300]


def _environment(exc: Exception) -> bool:
    """Whether DuckDB stopped for want of memory or disk (not for what it read)."""
    text = str(exc)
    return (
        isinstance(exc, duckdb.OutOfMemoryException)
        or "No space left on device" in text
        or "disk is full" in text.lower()
    )


def engine_error(exc: Exception) -> NatlensError:
    """A DuckDB error as a natlens error: what happened and what to do."""
    if isinstance(exc, duckdb.OutOfMemoryException):
        return EnvironmentProblem(
            f"DuckDB ran out of memory ({_first_line(exc)})",
            hint="give it more with --memory-limit (it spills to disk beyond the limit), or "
            "run on Spark: --engine spark",
        )
    if "No space left on device" in str(exc) or "disk is full" in str(exc).lower():
        # DuckDB spills what does not fit in memory to temporary files; the disk filled up.
        return EnvironmentProblem(
            f"the disk filled up while DuckDB wrote temporary files ({_first_line(exc)})",
            hint="free space where it spills (TMPDIR), give it more memory with "
            "--memory-limit so that it spills less, or run on Spark: --engine spark",
        )
    if isinstance(exc, duckdb.IOException | duckdb.InvalidInputException):
        # A part that cannot be read: damaged, truncated, removed or unreadable.
        return CaseError(
            f"a file of the case cannot be read ({_first_line(exc)})",
            hint="natlens case check CASE --repair removes what an interrupted run left; a "
            "damaged part is best replaced by ingesting its sources into a new case",
        )
    if isinstance(exc, duckdb.PermissionException):
        return CaseError(f"permission denied ({_first_line(exc)})")
    return EnvironmentProblem(
        f"the query engine stopped: {_first_line(exc)}",
        hint="natlens case check CASE tells whether the case is damaged",
    )


def real_path(text: str) -> str:
    """Paths in ``text`` as the user named them, not natlens's plain links to them."""
    for link, real in _LINKS.items():
        text = text.replace(link, real)
    return text
