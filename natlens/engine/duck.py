"""DuckDB: the embedded default engine, reading the case's parts and files read in place."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from natlens.case import TABLES, Case
from natlens.errors import EnvironmentProblem, UsageError
from natlens.sqltree import to_sql

if TYPE_CHECKING:
    from natlens.formats.inplace import Group, InPlace
    from natlens.sources.units import SourceOptions

from natlens.engine.base import (
    _SAFE_PATH,
    SQL,
    Engine,
    _environment,
    _first_line,
    _quoted,
    _Scratch,
    check_size,
    engine_error,
    real_path,
    sql_string,
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
            # Keeping input order costs memory the analyses do not need.
            self.con.execute("SET preserve_insertion_order = false")
        # Past its memory, DuckDB spills sorts, joins and aggregates to disk: by default to
        # '.tmp' in the working directory, which natlens would leave behind in the user's
        # folder (and fill that disk). It spills into the system's temporary directory instead.
        if not temp_directory:
            self._spill = tempfile.TemporaryDirectory(prefix="natlens-spill-")
            temp_directory = self._spill.name
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
        """The files read in place (formats/inplace.py): ``natlens_in_place_all`` holds every
        row with the field that failed its checks, if one did; ``natlens_in_place`` the
        records. A file DuckDB cannot read is left out and named (``in_place.unreadable``)."""
        from natlens.formats import inplace

        if self._in_place is in_place:
            return
        if in_place.s3 is not None:
            self._s3(in_place.s3)
        try:
            self._read_in_place(in_place)
        except duckdb.Error as exc:
            if _environment(exc):
                raise engine_error(exc) from None
            # Which files? DuckDB's message does not always say: each is read alone.
            bad = {}
            for index, group in enumerate(in_place.groups):
                for read, source in zip(self._reads(group), group.files, strict=True):
                    self.con.execute(f"SET VARIABLE natlens_in_place_{index} = ?", [[read]])
                    try:
                        self.con.execute(
                            "CREATE OR REPLACE TEMPORARY TABLE natlens_in_place_probe AS "
                            f"SELECT * FROM natlens_in_place_raw_{index}"
                        )
                    except duckdb.Error as one:
                        if _environment(one):
                            raise engine_error(one) from None
                        bad[source] = _first_line(one)
            self.con.execute("DROP TABLE IF EXISTS natlens_in_place_probe")
            if not bad:
                raise engine_error(exc) from None
            in_place.leave_out(bad)
            try:
                self._read_in_place(in_place)
            except duckdb.Error as again:
                raise engine_error(again) from None
        self._execute(exp.Create(
            this=exp.to_table("natlens_in_place"), kind="VIEW", expression=inplace.RECORDS,
            replace=True,
        ))  # fmt: skip
        self._in_place = in_place

    def _reads(self, group: Group) -> list[str]:
        """The paths DuckDB is given for ``group``'s files (plain links to local ones)."""
        return [f if f.startswith("s3://") else str(self._empty.plain_file(Path(f)))
                for f in group.files]  # fmt: skip

    def _read_in_place(self, in_place: InPlace) -> None:
        """A view of each group's files as the reader gives them, and every row of every group
        read once into ``natlens_in_place_all`` (the checks are many expressions, and analyses
        read flows often). duckdb.Error when a file cannot be read."""
        from natlens.formats import inplace

        selects = []
        for index, group in enumerate(in_place.groups):
            reads = self._reads(group)
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
            self.con.execute(to_sql(exp.Create(
                this=exp.to_table(f"natlens_in_place_raw_{index}"), kind="VIEW",
                expression=raw, replace=True,
            ), "duckdb"))  # fmt: skip
            selects.append(inplace.group_select(group, f"natlens_in_place_raw_{index}"))
        self.con.execute(to_sql(exp.Create(
            this=exp.to_table("natlens_in_place_all"), kind="TABLE", replace=True,
            expression=inplace.all_select(selects),
            properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
        ), "duckdb"))  # fmt: skip

    def in_place_rejected(self, in_place: InPlace) -> tuple[int, str | None]:
        """Text lines DuckDB's CSV reader set aside (another number of fields than the header
        has), and the first one's file."""
        from natlens.formats import inplace

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
