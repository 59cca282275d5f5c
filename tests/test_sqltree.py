"""The query builder (natlens/sqltree.py): placeholders, composition, and values that stay
values in every dialect."""

from __future__ import annotations

from importlib import resources

import pytest
import sqlglot
from sqlglot import exp

from natlens.analyses.conversations import ConversationOptions, conversations_sql
from natlens.analyses.nat import NatOptions, attribute_sql, nat_links_sql, top_talkers_sql
from natlens.engine import DIALECTS, DuckDBEngine, Engine, check_portable, translate
from natlens.sqltree import (
    chain,
    ctes_of,
    fill,
    fragment,
    rename_tables,
    select_all,
    template,
    to_sql,
    values_table,
)

# Text an attacker can put in a tag, an SNI, an id: quotes, comment starters, a statement end.
HOSTILE = "x' OR '1'='1'; DROP TABLE flows; -- \\' /* $name \u202e"


def test_a_placeholder_without_a_value_is_an_error() -> None:
    with pytest.raises(KeyError, match=r"\$b"):
        fragment("$a + $b", a=1)


def test_a_value_without_a_placeholder_is_an_error() -> None:
    with pytest.raises(KeyError, match="typo"):
        fragment("$a + 1", a=1, typo=2)


def test_an_absent_condition_is_left_out() -> None:
    query = fragment("SELECT a FROM t WHERE a > 1 AND $since AND b < 2", since=None)
    assert query.sql("duckdb") == "SELECT a FROM t WHERE a > 1 AND b < 2"
    query = fragment("SELECT a FROM t WHERE $where ORDER BY a", where=None)
    assert query.sql("duckdb") == "SELECT a FROM t ORDER BY a"
    with pytest.raises(TypeError):
        fragment("SELECT $x + 1", x=None)  # not a condition that can go


def test_select_items_are_spliced_in_order() -> None:
    items = [exp.column("c"), exp.alias_(fragment("d + 1"), "e")]
    query = fragment("SELECT a, $more, b FROM t", more=items)
    assert query.sql("duckdb") == "SELECT a, c, d + 1 AS e, b FROM t"
    assert fragment("SELECT a, $more FROM t", more=[]).sql("duckdb") == "SELECT a FROM t"
    with pytest.raises(TypeError):
        fragment("SELECT a FROM t WHERE a IN ($x)", x=[exp.column("b")])


def test_a_filled_template_leaves_the_parsed_one_alone() -> None:
    first = template("top_talkers", order=fragment("connections"), top=3)
    second = template("top_talkers", order=fragment("bytes_out + bytes_in"), top=10)
    assert "connections DESC" in first.sql("duckdb")
    assert "bytes_out + bytes_in DESC" in second.sql("duckdb")
    assert "<= 3" in first.sql("duckdb") and "<= 10" in second.sql("duckdb")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_hostile_text_stays_one_literal_in_every_dialect(dialect: str) -> None:
    rows = [(HOSTILE, 7), (None, None)]
    query = values_table(rows, ("name", "n"), ("VARCHAR", "INTEGER"))
    query = query.where(fragment("name = $name OR name IS NULL", name=HOSTILE))
    text = to_sql(query, dialect)
    tree = sqlglot.parse_one(text, read="presto" if dialect == "athena" else dialect)
    strings = [s.this for s in tree.find_all(exp.Literal) if s.is_string]
    assert strings.count(HOSTILE) == 2, text
    assert len(list(tree.find_all(exp.Drop))) == 0


def test_hostile_text_comes_back_unchanged_from_each_engine(engine: Engine) -> None:
    """Each engine's own parser reads the literal sqlglot wrote for it (Spark's treats a
    backslash as an escape, DuckDB's does not)."""
    query = values_table([(HOSTILE, 1), ("plain", 2)], ("name", "n"), ("VARCHAR", "INTEGER"))
    query = query.where(fragment("name = $name", name=HOSTILE))
    assert engine.query(query).to_pylist() == [{"name": HOSTILE, "n": 1}]


def test_no_rows_is_an_empty_table_of_the_same_columns() -> None:
    query = values_table([], ("name", "n"), ("VARCHAR", "BIGINT"))
    with DuckDBEngine() as engine:
        table = engine.query(query)
    assert table.num_rows == 0
    assert table.column_names == ["name", "n"]


def test_chain_copies_the_head_so_it_serves_again() -> None:
    head = fragment("WITH a AS (SELECT 1 AS x) SELECT * FROM a")
    assert isinstance(head, exp.Query)
    one = chain(head, fragment("WITH b AS (SELECT x + 1 AS y FROM a) SELECT * FROM b"))
    two = chain(head, select_all("a"))
    assert [c.alias for c in ctes_of(one)] == ["a", "b"]
    assert [c.alias for c in ctes_of(two)] == ["a"]
    with DuckDBEngine() as engine:
        assert engine.query(one).to_pylist() == [{"y": 2}]
        assert engine.query(two).to_pylist() == [{"x": 1}]


def test_renaming_reaches_ctes_and_references_only() -> None:
    tree = fragment(
        "WITH link_a AS (SELECT link_a FROM outside_rows) SELECT link_a.link_a FROM link_a"
    )
    rename_tables(tree, {"link_a": "fw_a", "outside_rows": "fw_own"})
    assert tree.sql("duckdb") == (
        "WITH fw_a AS (SELECT link_a FROM fw_own) SELECT link_a.link_a FROM fw_a"
    )


@pytest.mark.parametrize(
    "name",
    sorted(
        p.name.removesuffix(".sql")
        for p in resources.files("natlens.analyses").iterdir()
        if p.name.endswith(".sql")
    ),
)
def test_every_sql_file_is_one_portable_query(name: str) -> None:
    text = resources.files("natlens.analyses").joinpath(f"{name}.sql").read_text()
    trees = sqlglot.parse(text, read="duckdb")
    assert len(trees) == 1 and isinstance(trees[0], exp.Query)
    names = {p.name for p in trees[0].find_all(exp.Placeholder)}
    # The portability rules hold for the file as written (placeholders stand for expressions).
    filled = fill(trees[0].copy(), dict.fromkeys(names, exp.Literal.number(1)))
    assert check_portable(filled) == []


def test_every_analysis_query_is_portable_and_translates() -> None:
    options = NatOptions(ConversationOptions(since=100, until=200, ip="10.0.0.1", port=443))
    for query in (
        conversations_sql(options.conversations),
        nat_links_sql(options),
        top_talkers_sql(options),
        attribute_sql(NatOptions(ConversationOptions(), log_types=("alert",))),
    ):
        assert check_portable(query) == []
        for dialect in DIALECTS:
            assert translate(query, dialect)


def test_printed_queries_keep_each_files_opening_comment() -> None:
    """A person reading ``natlens sql inbound`` sees what each stage is, in order."""
    from natlens.analyses.inbound import inbound_sql

    text = translate(inbound_sql(), "athena")
    first = text.index("Conversations: both directions of a connection")
    second = text.index("Inbound verdicts: for every internet address")
    assert first < second < text.index("inbound_parts AS (")
