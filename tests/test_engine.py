"""One suite on every engine: DuckDB and Spark must return the same rows."""

from __future__ import annotations

import sys

import pytest

from natlens.analyses.records import records, records_sql
from natlens.case import Case
from natlens.engine import check_portable, spark_session, translate
from natlens.errors import EnvironmentProblem
from natlens.schema import FLOWS_SCHEMA
from tests.conftest import AWS_EXAMPLES


@pytest.fixture(scope="module")
def examples_case(tmp_path_factory):  # type: ignore[no-untyped-def]
    from natlens.ingest import IngestOptions, ingest

    path = tmp_path_factory.mktemp("examples") / "case"
    ingest([str(AWS_EXAMPLES)], path, IngestOptions())
    return Case.open(path)


def test_records_read_the_same_on_every_engine(engine, examples_case) -> None:
    table = records(engine, examples_case, list(FLOWS_SCHEMA.names))
    assert table.num_rows == 27  # every record line of docs/aws.md §3
    assert table.schema.names == list(FLOWS_SCHEMA.names)
    rows = {(r["source"].rsplit("/", 1)[-1], r["line"]): r for r in table.to_pylist()}
    # Hand-checked against the files: the first record of AWS's accepted/rejected example ...
    first = rows[("accepted-rejected.log", 2)]
    assert (first["srcaddr"], first["dstaddr"], first["dstport"], first["action"]) == (
        "172.31.16.139",
        "172.31.16.21",
        22,
        "ACCEPT",
    )
    assert (first["packets"], first["bytes"], first["start"], first["end"]) == (
        20,
        4249,
        1418530010,
        1418530070,
    )
    # ... a NODATA record (no addresses, no counts) and an IPv6 one.
    nodata = [r for r in rows.values() if r["log_status"] == "NODATA"]
    assert len(nodata) == 1 and nodata[0]["srcaddr"] is None and nodata[0]["packets"] is None
    assert any(r["srcaddr"] and ":" in r["srcaddr"] for r in rows.values())


@pytest.mark.spark
def test_spark_reads_records_as_duckdb_does(spark_engine, examples_case) -> None:
    from natlens.engine import DuckDBEngine

    table = records(spark_engine, examples_case, list(FLOWS_SCHEMA.names))
    with DuckDBEngine() as duck:
        reference = records(duck, examples_case, list(FLOWS_SCHEMA.names))
    assert table.schema == reference.schema
    assert table.to_pylist() == reference.to_pylist()


def test_limit_and_columns(engine, examples_case) -> None:
    table = records(engine, examples_case, ["srcaddr", "dstport", "extra", "line"], limit=3)
    assert table.num_rows == 3
    assert table.column_names == ["srcaddr", "dstport", "extra", "line"]


def test_empty_case_has_every_column(engine, tmp_path) -> None:
    with Case.for_ingest(tmp_path / "empty") as new:
        new.save()  # a case with no rows at all
    case = Case.open(tmp_path / "empty")
    table = records(engine, case, list(FLOWS_SCHEMA.names))
    assert table.num_rows == 0
    assert table.schema.names == FLOWS_SCHEMA.names


def test_records_stay_in_the_portable_subset() -> None:
    assert check_portable(records_sql(["srcaddr", "line"], 10)) == []
    assert check_portable(records_sql(["srcaddr", "start"], None, in_case=False)) == []


def test_records_query_is_built_as_asked() -> None:
    """The query is a tree: columns quoted, the order of a case or of a bare table, the limit."""
    import sqlglot

    tree = sqlglot.parse_one(records_sql(["srcaddr", "end"], 5), read="duckdb")
    assert [c.sql() for c in tree.expressions] == ['"srcaddr"', '"end"']
    assert [o.this.name for o in tree.args["order"].expressions] == ["source", "line"]
    assert tree.args["limit"].expression.sql() == "5"
    bare = sqlglot.parse_one(records_sql(["srcaddr"], None, in_case=False), read="duckdb")
    assert [o.this.name for o in bare.args["order"].expressions] == ["start", "interface_id",
                                                                      "srcaddr"]  # fmt: skip
    assert bare.args.get("limit") is None


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SELECT srcaddr, count(*) AS n FROM flows GROUP BY ALL", "GROUP BY ALL"),
        ("SELECT srcaddr AS a, count(*) FROM flows GROUP BY a", "GROUP BY a"),
        ("SELECT srcaddr, count(*) FROM flows GROUP BY 1", "GROUP BY position"),
        ("SELECT * FROM flows QUALIFY row_number() OVER (ORDER BY line) = 1", "QUALIFY"),
        ("SELECT [1, 2, 3][1:2] AS x", "slicing"),
        ("SELECT * FROM (SELECT * FROM flows ORDER BY line) AS t", "ORDER BY inside"),
    ],
)
def test_non_portable_sql_is_caught(sql: str, problem: str) -> None:
    found = check_portable(sql)
    assert any(problem in p for p in found), found


def test_grouping_by_a_column_is_fine() -> None:
    sql = "SELECT srcaddr, count(*) AS n FROM flows GROUP BY srcaddr ORDER BY n DESC"
    assert check_portable(sql) == []


@pytest.mark.parametrize("dialect", ["spark", "athena", "duckdb"])
def test_translation(dialect: str) -> None:
    text = translate(records_sql(["srcaddr", "end"], 5), dialect)
    assert "LIMIT 5" in text
    assert ("`end`" if dialect == "spark" else '"end"') in text


def test_missing_pyspark_gives_a_one_line_hint(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(EnvironmentProblem) as caught:
        spark_session("local[1]")
    assert "pip install 'natlens[spark]'" in str(caught.value)


@pytest.mark.spark
def test_cli_records_on_spark(natlens, examples_case, spark_engine) -> None:
    duck = natlens("records", examples_case.path, "--format", "jsonl")
    spark = natlens("records", examples_case.path, "--format", "jsonl", "--engine", "spark")
    assert spark.code == 0, spark.err
    assert spark.out == duck.out


@pytest.mark.parametrize("dialect", ["duckdb", "spark", "athena"])
def test_cli_sql_prints_the_query(natlens, dialect: str) -> None:
    run = natlens("sql", "--dialect", dialect, "records")
    assert run.code == 0, run.err
    assert run.out.rstrip().endswith(";") and "FROM flows" in run.out
    own = natlens("sql", "--dialect", dialect, "--table", "vpc_flow_logs", "records")
    assert "FROM vpc_flow_logs" in own.out
    assert "source" not in own.out.split("*/", 1)[1] and "line" not in own.out.split("*/", 1)[1]


def test_printed_sql_runs_on_an_existing_table(natlens, examples_case) -> None:
    """What a user runs: the printed query, on a table of AWS's columns with their own name."""
    import duckdb

    text = natlens("sql", "--table", "vpc_flow_logs", "records").out
    con = duckdb.connect()
    parts = ", ".join(f"'{p}'" for p in examples_case.parts())
    con.execute(
        f"CREATE VIEW vpc_flow_logs AS SELECT * FROM read_parquet([{parts}], union_by_name = true)"
    )
    rows = con.execute(text.rstrip().rstrip(";")).fetchall()
    assert len(rows) == 27


PRINTABLE = ("records", "conversations", "inbound", "nat", "top-talkers", "attribute")


@pytest.mark.parametrize("table", ["flows", "vpc_flow_logs"])
@pytest.mark.parametrize("dialect", ["duckdb", "spark", "athena"])
@pytest.mark.parametrize("analysis", PRINTABLE)
def test_printed_sql_parses_in_its_dialect(
    natlens, analysis: str, dialect: str, table: str
) -> None:
    """`natlens sql` prints one query that the dialect's own parser reads, on the table asked."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel

    run = natlens("sql", analysis, "--dialect", dialect, "--table", table)
    assert run.code == 0, run.err
    statements = sqlglot.parse(run.out, read=dialect, error_level=ErrorLevel.RAISE)
    assert len(statements) == 1 and isinstance(statements[0], exp.Query)
    query = statements[0]
    read = {t.name for t in query.find_all(exp.Table)}
    names = [c.alias for c in query.find_all(exp.CTE)]
    assert len(names) == len(set(names)), "a CTE name twice: no engine runs that"
    ctes = set(names)
    # nothing from outside but the flow-log table (and attribute's firewall events)
    events = {"firewall_events"} if analysis == "attribute" else set()
    assert read - ctes == {table} | events, read - ctes


@pytest.mark.spark
# Only records: the printed conversations and inbound queries are one statement of ~30 stages,
# which Spark inlines into a plan that needs a 4 GiB driver and minutes to analyse for 27 rows
# (natlens's own Spark engine computes those stages one at a time instead).
@pytest.mark.parametrize("analysis", ["records"])
def test_printed_spark_sql_runs_on_spark(
    natlens, spark_engine, examples_case, analysis, tmp_path
) -> None:
    """The Spark text a user would paste, run on Spark over a table of AWS's columns, gives the
    rows the DuckDB text gives on DuckDB."""
    import duckdb
    import pyarrow.parquet as pq

    from natlens.engine import DuckDBEngine, sql_string

    # One Parquet file holding AWS's columns only, as a table in a user's catalog would.
    aws = [f for f in FLOWS_SCHEMA.names if f not in ("source", "line") and not f.endswith("_v4")]
    table = tmp_path / "vpc_flow_logs.parquet"
    with DuckDBEngine() as duck:
        duck.register_case(examples_case)
        pq.write_table(duck.query(f"SELECT {', '.join(map(_quoted, aws))} FROM flows"), table)
    spark = spark_engine.spark
    spark.read.parquet(str(table)).createOrReplaceTempView("vpc_flow_logs")
    text = natlens("sql", analysis, "--dialect", "spark", "--table", "vpc_flow_logs").out
    got = spark.sql(text.rstrip().rstrip(";")).toArrow()
    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW vpc_flow_logs AS SELECT * FROM read_parquet({sql_string(str(table))})"
    )
    text = natlens("sql", analysis, "--dialect", "duckdb", "--table", "vpc_flow_logs").out
    want = con.execute(text.rstrip().rstrip(";")).to_arrow_table()
    assert got.num_rows == want.num_rows > 0
    assert _rows(got) == _rows(want)


def _quoted(name: str) -> str:
    return f'"{name}"'


def _rows(table) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    """Rows as comparable tuples: Spark's large strings and timestamps as DuckDB's Python values."""
    return sorted(tuple(str(v) for v in row.values()) for row in table.to_pylist())


def test_unknown_analysis(natlens) -> None:
    run = natlens("sql", "conversation")
    assert (
        run.code == 64
        and "one of: attribute, conversations, inbound, nat, records, top-talkers" in run.err
    )


@pytest.mark.parametrize("analysis", ["records", "nat"])
def test_printed_sql_takes_the_time_window(natlens, v5_worlds, tmp_path, analysis) -> None:
    """`natlens sql --since/--until` on AWS's columns gives the rows the analysis gives on the
    case with the same window; for Athena it also prunes the table's date partition."""
    import json

    import duckdb

    from natlens.case import Case
    from natlens.engine import sql_string
    from tests.conftest import fresh_copy

    case = Case.open(fresh_copy(v5_worlds["fw-after-nat"] / "case", tmp_path))
    window = ("--since", "2024-06-01T00:02:00Z", "--until", "2024-06-01T00:04:00Z")
    parts = ", ".join(sql_string(str(p)) for p in case.parts())
    con = duckdb.connect()
    con.execute(
        "CREATE VIEW vpc_flow_logs AS SELECT COLUMNS(c -> c NOT IN ('source', 'line', 'extra') "
        f"AND NOT c LIKE '%\\_v4' ESCAPE '\\') FROM read_parquet([{parts}], union_by_name = true)"
    )
    printed = natlens("sql", analysis, "--table", "vpc_flow_logs", *window)
    assert printed.code == 0, printed.err
    got = con.execute(printed.out.rstrip().rstrip(";")).to_arrow_table().to_pylist()
    whole = con.execute(
        natlens("sql", analysis, "--table", "vpc_flow_logs").out.rstrip().rstrip(";")
    ).fetchall()
    ran = natlens(analysis, case.path, "--format", "jsonl", *window)
    assert ran.code == 0, ran.err
    want = json.loads(json.dumps(ran.jsonl()))
    if analysis == "records":  # the case's rows have provenance the AWS table has not
        want = [{k: v for k, v in r.items() if k in got[0]} for r in want]
    assert 0 < len(got) == len(want) < len(whole)

    def canonical(rows: list[dict[str, object]]) -> list[str]:
        return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)

    assert canonical(got) == canonical(want)
    athena = natlens("sql", analysis, "--dialect", "athena", "--table", "vpc_flow_logs", *window)
    assert "\"date\" >= CAST('2024-06-01' AS DATE)" in athena.out
    assert "\"date\" <= CAST('2024-06-01' AS DATE)" in athena.out


def test_duckdb_spills_into_the_temporary_directory_not_the_working_one(tmp_path) -> None:
    """DuckDB's default is '.tmp' in the working directory: the user's folder, left behind."""
    import tempfile
    from pathlib import Path

    from natlens.engine import DuckDBEngine

    with DuckDBEngine() as engine:
        (spill,) = engine.con.execute("SELECT current_setting('temp_directory')").fetchone()
        assert Path(spill).parent == Path(tempfile.gettempdir())
        assert Path(spill).is_dir()
    assert not Path(spill).exists()


def test_a_full_disk_is_said_to_be_one() -> None:
    """What DuckDB said when its spill filled the disk in the 100M benchmark (a file of the
    case was not the problem, as natlens once said)."""
    import duckdb

    from natlens.engine import engine_error

    said = duckdb.IOException(
        'IO Error: Could not write file ".tmp/duckdb_temp_storage_DEFAULT-5.tmp": '
        "No space left on device"
    )
    error = engine_error(said)
    assert isinstance(error, EnvironmentProblem)
    assert "disk filled up" in str(error) and "--memory-limit" in (error.hint or "")
    damaged = engine_error(duckdb.IOException("IO Error: No magic bytes found at end of file"))
    assert not isinstance(damaged, EnvironmentProblem)
