"""Run analysis SQL on DuckDB (the embedded default) or Apache Spark.

Analyses are written once in a restricted DuckDB dialect and translated by sqlglot. sqlglot
passes some DuckDB-only syntax through untouched, so ``check_portable`` rejects it before it can
reach another engine: GROUP BY must name expressions (no aliases, no ALL), no QUALIFY, no list or
struct slicing, ORDER BY only at the top level. Sessions run in UTC.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from natlens.case import TABLES, Case
from natlens.errors import CaseError, EnvironmentProblem, NatlensError, UsageError
from natlens.sqltree import to_sql

if TYPE_CHECKING:
    from natlens.inplace import InPlace
    from natlens.sources.units import SourceOptions

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

    def window_filters(self) -> dict[str, str]:
        """The WHERE condition per table for ``window`` (numbers only), or none."""
        since, until = self.window
        flows, events = [], []
        if since is not None:
            flows.append(f'coalesce("end", start) >= {int(since)}')
            events.append(f"coalesce(flow_end, event_time) >= {int(since)}")
        if until is not None:
            flows.append(f"start <= {int(until)}")
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


def engine_error(exc: Exception) -> NatlensError:
    """A DuckDB error as a natlens error: what happened and what to do."""
    if isinstance(exc, duckdb.OutOfMemoryException):
        return EnvironmentProblem(
            f"DuckDB ran out of memory ({_first_line(exc)})",
            hint="give it more with --memory-limit (it spills to disk beyond the limit), or "
            "run on Spark: --engine spark",
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


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(
        self,
        memory_limit: str | None = None,
        temp_directory: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")
        self._spill: tempfile.TemporaryDirectory[str] | None = None
        if memory_limit:
            size = sql_string(check_size(memory_limit))
            try:
                self.con.execute(f"SET memory_limit = {size}")
            except duckdb.Error:
                raise UsageError(
                    f"--memory-limit {memory_limit!r} is not a size", hint="e.g. 2GB or 500MB"
                ) from None
            # Past the limit, DuckDB spills sorts, joins and aggregates to disk.
            if not temp_directory:
                self._spill = tempfile.TemporaryDirectory(prefix="natlens-spill-")
                temp_directory = self._spill.name
            # Keeping input order costs memory the analyses do not need.
            self.con.execute("SET preserve_insertion_order = false")
        self._empty = _Scratch()
        self._in_place: InPlace | None = None  # the files read in place, once registered
        if temp_directory:
            self.con.execute(f"SET temp_directory = {sql_string(str(temp_directory))}")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")

    def register_case(self, case: Case) -> None:
        for name in TABLES:
            # The empty file carries the whole schema; parts hold the columns their records have.
            parts = [self._empty.path(name), *map(self._empty.plain, case.parts(name))]
            # The file list is a session variable, never text from elsewhere in the query:
            # plain paths (plain() makes the parts' so) as SQL strings by sqlglot, else a
            # parameter. (Binding any Python value makes DuckDB import pandas: half a second.)
            texts = [str(p) for p in parts]
            if all(_SAFE_PATH.fullmatch(t) for t in texts):
                listed = ", ".join(_quoted(Path(t)) for t in texts)
                self.con.execute(f"SET VARIABLE natlens_{name}_parts = [{listed}]")
            else:  # the temporary directory itself has other characters
                self.con.execute(f"SET VARIABLE natlens_{name}_parts = ?", [texts])
            where = self.window_filters().get(name)
            read = f"read_parquet(getvariable('natlens_{name}_parts'), union_by_name = true)"
            if name == "flows" and case.in_place is not None and case.in_place.groups:
                self._register_in_place(case.in_place)
                columns = ", ".join(f'"{f.name}"' for f in TABLES[name])
                read = f"(SELECT {columns} FROM {read} UNION ALL SELECT * FROM natlens_in_place)"
            self.con.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {read}"
                + (f" WHERE {where}" if where else "")
            )

    def _register_in_place(self, in_place: InPlace) -> None:
        """The files read in place (natlens/inplace.py): ``natlens_in_place_all`` holds every
        row with the field that failed its checks, if one did; ``natlens_in_place`` the
        records."""
        from natlens import inplace

        if self._in_place is in_place:
            return
        if in_place.s3 is not None:
            self._s3(in_place.s3)
        selects = []
        for index, group in enumerate(in_place.groups):
            reads = [f if f.startswith("s3://") else str(self._empty.plain_file(Path(f)))
                     for f in group.files]  # fmt: skip
            self.con.execute(f"SET VARIABLE natlens_in_place_{index} = ?", [reads])
            self.con.register(
                f"natlens_in_place_files_{index}",
                pa.table({"path": reads, "source": group.files}),
            )
            files = exp.func("getvariable", exp.Literal.string(f"natlens_in_place_{index}"))
            reader = (
                _read_parquet(files)
                if group.kind == inplace.PARQUET
                else _read_csv(files, group, index)
            )
            row = (
                exp.column("file_row_number", "r")
                if group.kind == inplace.PARQUET
                else exp.cast(exp.Null(), "BIGINT")
            )
            raw = (
                exp.select(
                    exp.alias_(exp.column("source", "m"), inplace.SOURCE),
                    exp.alias_(row, inplace.ROW),
                    exp.Column(this=exp.Star(), table=exp.to_identifier("r")),
                )
                .from_(exp.Table(this=reader, alias=exp.TableAlias(this=exp.to_identifier("r"))))
                .join(
                    exp.to_table(f"natlens_in_place_files_{index}").as_("m"),
                    on=exp.EQ(this=exp.column("filename", "r"), expression=exp.column("path", "m")),
                )
            )
            self._execute(exp.Create(
                this=exp.to_table(f"natlens_in_place_raw_{index}"), kind="VIEW",
                expression=raw, replace=True,
            ))  # fmt: skip
            selects.append(inplace.group_select(group, f"natlens_in_place_raw_{index}"))
        # Read once per run: the checks are many expressions, and analyses read flows often.
        self._execute(exp.Create(
            this=exp.to_table("natlens_in_place_all"), kind="TABLE", replace=True,
            expression=inplace.all_select(selects),
            properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
        ))  # fmt: skip
        self._execute(exp.Create(
            this=exp.to_table("natlens_in_place"), kind="VIEW", expression=inplace.RECORDS,
            replace=True,
        ))  # fmt: skip
        self._in_place = in_place

    def in_place_rejected(self, in_place: InPlace) -> tuple[int, str | None]:
        """Text lines DuckDB's CSV reader set aside (another number of fields than the header
        has), and the first one's file."""
        from natlens import inplace

        total, example = 0, None
        for index, group in enumerate(in_place.groups):
            if group.kind != inplace.TEXT:
                continue
            try:
                count, first = self.con.execute(
                    f"SELECT count(*), min(file_path) FROM (SELECT DISTINCT s.file_path, e.line "
                    f"FROM natlens_rejects_{index} e JOIN natlens_scans_{index} s "
                    "USING (scan_id, file_id))"
                ).fetchone() or (0, None)
            except duckdb.CatalogException:
                continue  # the files were not read yet
            total += int(count)
            example = example or first
        return total, real_path(example) if example else None

    def _s3(self, options: SourceOptions) -> None:
        """DuckDB's S3 reader (the httpfs extension from PyPI, built for this DuckDB), with the
        credentials, region and endpoint boto3 uses for the same sources."""
        load_httpfs(self.con)
        client = options.client("s3")
        # (botocore resolves the credential chain for its client; it has no public getter)
        credentials = client._request_signer._credentials
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
        settings: dict[str, str] = {"TYPE": "s3", "REGION": client.meta.region_name or "us-east-1"}
        if frozen is not None:
            settings["KEY_ID"] = frozen.access_key
            settings["SECRET"] = frozen.secret_key
            if frozen.token:
                settings["SESSION_TOKEN"] = frozen.token
        endpoint = options.endpoint_url
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            settings["ENDPOINT"] = host.rstrip("/") if host else scheme
            settings["URL_STYLE"] = "path"
            settings["USE_SSL"] = "true" if scheme == "https" else "false"
        body = ", ".join(
            f"{key} {value if key in ('TYPE', 'USE_SSL') else sql_string(value)}"
            for key, value in settings.items()
        )
        self.con.execute(f"CREATE OR REPLACE TEMPORARY SECRET natlens_s3 ({body})")

    def _execute(self, sql: SQL) -> duckdb.DuckDBPyConnection:
        try:
            return self.con.execute(to_sql(sql, "duckdb"))
        except duckdb.Error as exc:
            raise engine_error(exc) from None

    def query(self, sql: SQL) -> pa.Table:
        return self._execute(sql).to_arrow_table()

    def query_batches(self, sql: SQL) -> pa.RecordBatchReader:
        return self._execute(sql).to_arrow_reader(65536)

    def export_parquet(self, sql: SQL, path: Path) -> bool:
        # COPY takes no parameter for its target: write a file natlens names, then move it.
        path = Path(os.path.abspath(path))
        temporary = self._empty.plain(path.with_name(f".natlens-{uuid.uuid4().hex}.parquet"))
        try:
            self._execute(
                f"COPY ({to_sql(sql, 'duckdb')}) TO {_quoted(temporary)} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        return True

    def write_parquet(self, sql: SQL, directory: Path) -> None:
        target = self._empty.plain(directory / "part-0.parquet")
        text = to_sql(sql, "duckdb")
        self._execute(f"COPY ({text}) TO {_quoted(target)} (FORMAT parquet, COMPRESSION zstd)")

    def register_parquet(self, name: str, directory: Path) -> None:
        files = sorted(str(self._empty.plain(p)) for p in directory.glob("*.parquet"))
        self.con.execute(f"SET VARIABLE natlens_{name}_files = ?", [files])
        self.con.execute(
            f"CREATE OR REPLACE VIEW {name} AS "
            f"SELECT * FROM read_parquet(getvariable('natlens_{name}_files'))"
        )

    def close(self) -> None:
        self.con.close()
        self.release()
        self._empty.cleanup()
        if self._spill is not None:
            self._spill.cleanup()


def load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """Load the httpfs extension natlens installs from PyPI (never downloaded at run time)."""
    import importlib.resources

    try:
        package = importlib.resources.files("duckdb_extension_httpfs")
    except ModuleNotFoundError:
        raise EnvironmentProblem(
            "reading s3:// in place needs DuckDB's httpfs extension, which is not installed",
            hint=f"pip install duckdb-extension-httpfs=={duckdb.__version__}",
        ) from None
    path = package / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if not path.is_file():
        raise EnvironmentProblem(
            f"the httpfs extension installed is not built for DuckDB {duckdb.__version__}",
            hint=f"pip install duckdb-extension-httpfs=={duckdb.__version__}",
        )
    con.execute(f"LOAD {sql_string(str(path))}")


def real_path(text: str) -> str:
    """Paths in ``text`` as the user named them, not natlens's plain links to them."""
    for link, real in _LINKS.items():
        text = text.replace(link, real)
    return text


def _named(name: str, value: exp.Expr) -> exp.Expr:
    return exp.EQ(this=exp.column(name), expression=value)


def _read_parquet(files: exp.Expr) -> exp.Expr:
    return exp.Anonymous(
        this="read_parquet",
        expressions=[
            files,
            _named("filename", exp.true()),
            _named("file_row_number", exp.true()),
            # AWS's Hive folders (year=...) are not columns of the records
            _named("hive_partitioning", exp.false()),
        ],
    )


def _read_csv(files: exp.Expr, group: Any, index: int) -> exp.Expr:
    """AWS's text files: one space between fields, a header line, no quoting; a line with
    another number of fields is set aside in ``natlens_rejects_INDEX``, not read."""
    columns = exp.Struct(
        expressions=[
            exp.PropertyEQ(
                this=exp.to_identifier(c.raw, quoted=True),
                expression=exp.Literal.string("VARCHAR"),
            )
            for c in group.columns
        ]
    )
    text = exp.Literal.string
    return exp.Anonymous(
        this="read_csv",
        expressions=[
            files,
            _named("delim", text(" ")),
            _named("header", exp.true()),
            _named("auto_detect", exp.false()),
            _named("columns", columns),
            _named("quote", text("")),
            _named("escape", text("")),
            _named("filename", exp.true()),
            _named("compression", text("gzip" if group.compressed else "none")),
            _named("strict_mode", exp.true()),
            _named("store_rejects", exp.true()),
            _named("rejects_table", text(f"natlens_rejects_{index}")),
            _named("rejects_scan", text(f"natlens_scans_{index}")),
        ],
    )


_SPARK_SESSION: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}


def spark_session(master: str = "local[2]", conf: Sequence[tuple[str, str]] = ()) -> Any:
    """The process's Spark session for ``master``: it takes seconds to start, so it is kept.

    A process holds one Spark context: asking for another master (or other settings) stops the
    one it has first. ``conf`` are Spark settings (``--spark-conf``), applied last.
    """
    key = (master, tuple(conf))
    if key in _SPARK_SESSION:
        return _SPARK_SESSION[key]
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EnvironmentProblem(
            "--engine spark needs PySpark, which is not installed",
            hint="pip install 'natlens[spark]' (and a Java 17+ runtime)",
        ) from None
    for other in _SPARK_SESSION.values():
        other.stop()
    _SPARK_SESSION.clear()
    local = master.startswith("local")
    if local:
        # A local session serves this machine only (a cluster's driver must be reachable), and
        # its Python workers are this Python, where natlens is (a cluster's are configured:
        # spark.pyspark.python).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    builder = (
        SparkSession.builder.master(master)
        .appName("natlens")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Constraint propagation infers filters from every predicate of every stage: on
        # natlens's plans of many CASE expressions it is a large share of the optimiser's time
        # for no filter that helps (benchmarks/spark_planning_benchmark.py).
        .config("spark.sql.constraintPropagation.enabled", "false")
    )
    if local:
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    for name, value in conf:
        builder = builder.config(name, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        raise EnvironmentProblem(
            f"Spark did not start ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
            hint="Spark needs a Java 17+ runtime (apt-get install openjdk-17-jre-headless), "
            "and a cluster's master URL must be reachable",
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    _SPARK_SESSION[key] = session
    return session


class SparkEngine(Engine):
    name = "spark"

    def __init__(self, master: str = "local[2]", conf: Sequence[tuple[str, str]] = ()) -> None:
        self.master = master
        self.conf = tuple(conf)
        self._stages: list[str] = []
        self._in_place: InPlace | None = None  # the files read in place, once registered

    @property
    def spark(self) -> Any:
        """The session: the process's one, started again if another engine replaced it."""
        return spark_session(self.master, self.conf)

    def register_case(self, case: Case) -> None:
        # Everything read here is where the executors read it: the case's parts, by their own
        # paths. The parts are read with the table's whole schema, given: a column a part lacks
        # reads as NULL, and Spark need not open every part's footer to merge their schemas.
        from pyspark.sql.pandas.types import from_arrow_schema

        for name in TABLES:
            schema = from_arrow_schema(TABLES[name])
            parts = [_hadoop_path(p) for p in case.parts(name)]
            if parts:
                frame = self.spark.read.schema(schema).parquet(*parts)
            else:
                frame = self.spark.createDataFrame([], schema)
            if name == "flows" and case.in_place is not None and case.in_place.groups:
                self._register_in_place(case.in_place)
                frame = frame.unionByName(self.spark.table("natlens_in_place"))
            where = self.window_filters().get(name)
            if where:
                frame = frame.where(sqlglot.parse_one(where, read="duckdb").sql("spark"))
            frame.createOrReplaceTempView(name)

    def _register_in_place(self, in_place: InPlace) -> None:
        """The files read in place as Spark reads them, where the executors read them; the
        same tables as on DuckDB (``natlens_in_place_all``, ``natlens_in_place``)."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import StringType, StructField, StructType

        from natlens import inplace

        if self._in_place is in_place:
            return
        spark = self.spark
        hadoop = spark._jvm.org.apache.hadoop.fs.Path  # the URIs Spark gives _metadata.file_path
        selects = []
        for index, group in enumerate(in_place.groups):
            # (local paths escaped; an S3 key with pattern characters is left to ingest)
            reads = [f if f.startswith("s3://") else _hadoop_path(Path(f)) for f in group.files]
            if group.kind == inplace.PARQUET:
                frame = spark.read.parquet(*reads)
                row = F.col("_metadata.row_index")
            else:
                names = [c.raw for c in group.columns]
                schema = StructType(
                    [StructField(n, StringType()) for n in names]
                    + [StructField(inplace.CORRUPT, StringType())]
                )
                frame = (
                    spark.read.schema(schema)
                    .options(
                        sep=" ",
                        header=True,
                        mode="PERMISSIVE",
                        quote="\u0000",
                        columnNameOfCorruptRecord=inplace.CORRUPT,
                        enforceSchema=True,
                        ignoreLeadingWhiteSpace=False,
                        ignoreTrailingWhiteSpace=False,
                    )
                    .csv(reads)
                )
                row = F.lit(None).cast("bigint")
            frame = frame.select(
                "*",
                F.col("_metadata.file_path").alias("natlens_file"),
                row.alias(inplace.ROW),
            )
            files = spark.createDataFrame(
                [
                    (hadoop(_uri(r)).toUri().toString(), f)
                    for r, f in zip(reads, group.files, strict=True)
                ],
                "natlens_file string, natlens_source string",
            )
            frame.join(F.broadcast(files), "natlens_file").createOrReplaceTempView(
                f"natlens_in_place_raw_{index}"
            )
            selects.append(inplace.group_select(group, f"natlens_in_place_raw_{index}", spark=True))
        # Read once per run, kept by the executors (as the shared stages of a query are).
        spark.sql(translate(inplace.all_select(selects), "spark")).localCheckpoint(
            eager=True
        ).createOrReplaceTempView("natlens_in_place_all")
        spark.sql(translate(inplace.RECORDS, "spark")).createOrReplaceTempView("natlens_in_place")
        self._in_place = in_place

    def _frame(self, sql: SQL) -> Any:
        """The result of ``sql`` as a DataFrame, its shared stages computed first.

        Spark inlines a CTE wherever it is referenced, so a query of a few dozen stages that
        build on each other becomes a plan of thousands of nodes that takes minutes to analyse
        and optimise, however few rows it reads. A CTE that more than one later stage reads is
        computed on its own first, as DuckDB does, and checkpointed (the stages after it see its
        rows, not its plan); its view is dropped when the next query starts.
        """
        tree = sqlglot.parse_one(translate(sql, "spark"), read="spark")
        with_ = tree.args.get("with_")
        self._drop_stages()
        if not isinstance(with_, exp.With) or with_.recursive:
            return self.spark.sql(tree.sql("spark"))
        tree.set("with_", None)
        ctes = list(with_.expressions)
        uses = {c.alias_or_name.lower(): 0 for c in ctes}
        for node in [*(c.this for c in ctes), tree]:
            for table in node.find_all(exp.Table):
                if table.name.lower() in uses:
                    uses[table.name.lower()] += 1
        names: dict[str, str] = {}
        inline: list[exp.CTE] = []  # used once: stays a CTE of the next statement

        def statement(body: exp.Expr) -> str:
            query = _renamed(body, names)
            if inline:
                query.set("with_", exp.With(expressions=[_renamed(c, names) for c in inline]))
            return str(query.sql("spark"))

        for cte in ctes:
            name = cte.alias_or_name.lower()
            if uses[name] < 2:
                inline.append(cte)
                continue
            view = f"natlens_stage_{len(self._stages)}_{name}"
            frame = self.spark.sql(statement(cte.this)).localCheckpoint(eager=True)
            frame.createOrReplaceTempView(view)
            self._stages.append(view)
            names[name] = view
        return self.spark.sql(statement(tree))

    def _drop_stages(self) -> None:
        for view in self._stages:
            self.spark.catalog.dropTempView(view)
        self._stages.clear()

    def query(self, sql: SQL) -> pa.Table:
        table = self._frame(sql).toArrow()
        # Spark returns large_string; give callers DuckDB's types so results compare equal.
        return table.cast(
            pa.schema(
                [pa.field(f.name, _small(f.type)) for f in table.schema],
                metadata=table.schema.metadata,
            )
        )

    def write_parquet(self, sql: SQL, directory: Path) -> None:
        # (a path written to is not a glob pattern: no escapes)
        self._frame(sql).write.mode("overwrite").parquet(os.path.abspath(directory / "spark"))

    def register_parquet(self, name: str, directory: Path) -> None:
        self.spark.read.parquet(_hadoop_path(directory / "spark")).createOrReplaceTempView(name)

    def close(self) -> None:
        self._drop_stages()
        self.release()


def _uri(read: str) -> str:
    """The path Spark was given, unescaped, as a URI Hadoop's Path parses."""
    if read.startswith("s3://"):
        return read
    return "file:" + re.sub(r"\\(.)", r"\1", read)


def _hadoop_path(path: Path) -> str:
    """A local path as Spark reads it: absolute, its glob characters escaped (Spark reads every
    path it is given as a Hadoop glob pattern)."""
    return re.sub(r"([\\\[\]{}*?])", r"\\\1", os.path.abspath(path))


def _renamed(tree: exp.Expr, names: dict[str, str]) -> exp.Expr:
    """``tree`` with its references to the tables in ``names`` pointed at the new names."""
    if not names:
        return tree.copy()

    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and not node.args.get("db"):
            target = names.get(node.name.lower())
            if target is not None:
                return exp.Table(
                    this=exp.to_identifier(target),
                    alias=node.args.get("alias")
                    or exp.TableAlias(this=exp.to_identifier(node.name)),
                )
        return node

    return tree.transform(rename, copy=True)


def _small(dtype: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(dtype):
        return pa.string()
    if pa.types.is_map(dtype):
        return pa.map_(_small(dtype.key_type), _small(dtype.item_type))
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return pa.list_(_small(dtype.value_type))
    return dtype


def open_engine(
    name: str = "duckdb",
    spark_master: str | None = None,
    memory_limit: str | None = None,
    spark_conf: Sequence[tuple[str, str]] = (),
) -> Engine:
    if name == "duckdb":
        return DuckDBEngine(memory_limit=memory_limit)
    if name == "spark":
        return SparkEngine(spark_master or "local[2]", spark_conf)
    raise UsageError(f"unknown engine {name!r}", hint=f"use one of {ENGINES}")
