"""Apache Spark: local mode or a cluster, the case read where the executors read it."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from natlens.case import TABLES, Case
from natlens.errors import EnvironmentProblem

if TYPE_CHECKING:
    from natlens.formats.inplace import Group, InPlace

from natlens.engine.base import SQL, Engine, translate

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
        from natlens.formats import inplace

        if self._in_place is in_place:
            return
        # A file Spark cannot read (a damaged gzip stream or Parquet page) stops the read, and
        # Spark's message names it: it is left out and named, and the rest read again.
        for _ in range(in_place.files):
            try:
                self._read_in_place(in_place)
                break
            except Exception as exc:
                files = [
                    (uri, source)
                    for group in in_place.groups
                    for uri, source in zip(self._uris(group), group.files, strict=True)
                ]
                source = inplace.named_file(str(exc), files)
                if source is None or "FAILED_READ_FILE" not in str(exc):
                    raise
                in_place.leave_out({source: _cause(exc)})
        spark = self.spark
        spark.sql(translate(inplace.RECORDS, "spark")).createOrReplaceTempView("natlens_in_place")
        self._in_place = in_place

    def _uris(self, group: Group) -> list[str]:
        """The URIs Spark gives ``_metadata.file_path`` for ``group``'s files."""
        hadoop = self.spark._jvm.org.apache.hadoop.fs.Path
        return [hadoop(_uri(r)).toUri().toString() for r in _spark_reads(group)]

    def _read_in_place(self, in_place: InPlace) -> None:
        """Each group's files as Spark reads them, every row read once into
        ``natlens_in_place_all`` (kept by the executors, as the shared stages of a query are)."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import StringType, StructField, StructType

        from natlens.formats import inplace

        spark = self.spark
        selects = []
        for index, group in enumerate(in_place.groups):
            reads = _spark_reads(group)
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
                list(zip(self._uris(group), group.files, strict=True)),
                "natlens_file string, natlens_source string",
            )
            frame.join(F.broadcast(files), "natlens_file").createOrReplaceTempView(
                f"natlens_in_place_raw_{index}"
            )
            selects.append(inplace.group_select(group, f"natlens_in_place_raw_{index}", spark=True))
        spark.sql(translate(inplace.all_select(selects), "spark")).localCheckpoint(
            eager=True
        ).createOrReplaceTempView("natlens_in_place_all")

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


def _spark_reads(group: Group) -> list[str]:
    """The paths Spark is given for ``group``'s files (local paths escaped; an S3 key with
    pattern characters is left to ingest)."""
    return [f if f.startswith("s3://") else _hadoop_path(Path(f)) for f in group.files]


def _cause(exc: Exception) -> str:
    """What Spark says stopped a file's read: its innermost Java cause, else its first line."""
    causes = re.findall(r"Caused by: ([^\n]+)", str(exc))
    text = causes[-1] if causes else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text.strip()[:300]


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
