"""Queries as sqlglot trees: the small builder layer every analysis composes its SQL with.

An analysis's SQL lives in ``analyses/NAME.sql``, readable as SQL, in the restricted DuckDB
dialect ``engine.check_portable`` describes. What it cannot know in advance is a placeholder,
``$name``. ``template`` parses a file once per process; ``fill`` puts sqlglot expressions,
literals or lists of select items where the placeholders are. Python builds the variable parts
from ``fragment`` (a short SQL expression with placeholders) and sqlglot's own builders. No
value ever enters as text: an address from a log or a tag from the context is a string
literal node, quoted for each dialect by sqlglot when ``to_sql`` writes the query out.

``to_sql`` is the one place a query becomes text, for any dialect.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources

import sqlglot
from sqlglot import exp

# What a placeholder can be filled with: an expression; a number or text (a literal); a list of
# select items (spliced into the SELECT list, none for an empty list); or None, which drops the
# condition the placeholder is one side of (``WHERE a AND $filter``), or the whole WHERE.
Fill = exp.Expr | int | float | str | Sequence[exp.Expr] | None


def _parse(text: str) -> exp.Expr:
    tree = sqlglot.parse_one(text, read="duckdb")
    # The parser's positions (for error messages) would be copied with every copy of the tree:
    # half the cost of a copy.
    for node in tree.walk():
        node._meta = None
    return tree


@cache
def _parsed_template(name: str) -> bytes:
    """The file's tree, pickled: unpickling a fresh copy takes half the time of copying one."""
    tree = _parse(resources.files("natlens.analyses").joinpath(f"{name}.sql").read_text())
    if not isinstance(tree, exp.Query):
        raise ValueError(f"{name}.sql is not a query")
    return pickle.dumps(tree)


def template(name: str, /, **values: Fill) -> exp.Query:
    """``analyses/NAME.sql`` as a fresh tree, its placeholders filled with ``values``."""
    tree = pickle.loads(_parsed_template(name))
    assert isinstance(tree, exp.Query)
    fill(tree, values)
    return tree


@cache
def _parsed_fragment(text: str) -> exp.Expr:
    return _parse(text)


def fragment(sql: str, /, **values: Fill) -> exp.Expr:
    """A short SQL expression (written in Python, with ``$name`` placeholders) as a tree."""
    return fill(_parsed_fragment(sql).copy(), values)


def _value(value: Fill) -> exp.Expr:
    if isinstance(value, exp.Expr):
        return value.copy()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise TypeError(f"cannot fill a placeholder with {value!r}")


def fill(tree: exp.Expr, values: Mapping[str, Fill]) -> exp.Expr:
    """Fill ``tree``'s placeholders in place. Every placeholder must have a value and every
    value a placeholder: a name mistyped on either side is an error, not a silent gap."""
    used: set[str] = set()
    for placeholder in list(tree.find_all(exp.Placeholder)):
        name = placeholder.name
        if name not in values:
            raise KeyError(f"no value for ${name}")
        used.add(name)
        value = values[name]
        parent = placeholder.parent
        if isinstance(parent, exp.Select) and placeholder.arg_key == "expressions":
            if isinstance(value, exp.Expr):
                value = [value]
            if not isinstance(value, list | tuple) or not all(
                isinstance(item, exp.Expr) for item in value
            ):
                raise TypeError(f"${name} is a list of select items")
            items: list[exp.Expr] = list(value)
            current = parent.expressions
            at = next(i for i, e in enumerate(current) if e is placeholder)
            parent.set(
                "expressions", [*current[:at], *(i.copy() for i in items), *current[at + 1 :]]
            )
        elif value is None:
            if isinstance(parent, exp.Where):
                parent.pop()
            elif isinstance(parent, exp.And | exp.Or):
                other = parent.expression if placeholder is parent.this else parent.this
                parent.replace(other)
            else:
                raise TypeError(f"${name} may be left out only beside AND, OR or as a WHERE")
        elif isinstance(value, list | tuple):
            raise TypeError(f"${name} takes a list only among select items")
        else:
            placeholder.replace(_value(value))
    unused = set(values) - used
    if unused:
        raise KeyError(f"no placeholder for {', '.join(sorted(unused))}")
    return tree


def column(name: str) -> exp.Column:
    """``table.column`` or ``column`` as a column reference."""
    table, _, field = name.rpartition(".")
    return exp.column(field, table=table or None)


def _with(query: exp.Query) -> exp.With | None:
    with_ = query.args.get("with_")
    return with_ if isinstance(with_, exp.With) else None


def ctes_of(query: exp.Query) -> list[exp.CTE]:
    with_ = _with(query)
    return list(with_.expressions) if with_ else []


def with_ctes(ctes: Iterable[exp.CTE], body: exp.Query, comments: Sequence[str] = ()) -> exp.Query:
    """``body`` (its own CTEs dropped) under ``WITH ctes``, in place: the CTEs move into it
    (copying a query of a few dozen stages costs more than building it). The comments at the
    head of the file (``comments`` first) stay at the head of the query."""
    ctes = list(ctes)
    old = _with(body)
    kept = [*comments, *(old.comments or [] if old else [])]
    body.set("with_", exp.With(expressions=ctes) if ctes else None)
    if ctes and kept:
        body.args["with_"].add_comments(kept)
    return body


def chain(head: exp.Query, tail: exp.Query, copy: bool = True) -> exp.Query:
    """``head``'s CTEs, then ``tail``'s, then ``tail``'s body: a later stage built on the CTEs
    an earlier one provides. ``tail`` changes in place; ``head``'s CTEs are copied unless
    ``copy`` is False (a head made for this query only)."""
    first = [c.copy() for c in ctes_of(head)] if copy else ctes_of(head)
    head_with = _with(head)
    comments = list(head_with.comments or []) if head_with else []
    return with_ctes([*first, *ctes_of(tail)], tail, comments)


def cte(name: str, query: exp.Query) -> exp.CTE:
    return exp.CTE(this=query.copy(), alias=exp.TableAlias(this=exp.to_identifier(name)))


def select_all(table: str) -> exp.Select:
    return exp.select("*").from_(table)


def rename_tables(tree: exp.Expr, names: Mapping[str, str]) -> exp.Expr:
    """Tables and CTEs named in ``names`` renamed, in place."""
    for table in tree.find_all(exp.Table):
        if table.name in names and not table.args.get("db"):
            table.set("this", exp.to_identifier(names[table.name]))
    for alias in tree.find_all(exp.CTE):
        if alias.alias in names:
            alias.set("alias", exp.TableAlias(this=exp.to_identifier(names[alias.alias])))
    return tree


def values_table(
    rows: Sequence[Sequence[object]], columns: Sequence[str], types: Sequence[str]
) -> exp.Select:
    """Rows as a SELECT with these typed columns (an empty SELECT of the same columns when there
    are none). Every value is a literal node: text from logs or context stays one string."""

    def literal(value: object, kind: str) -> exp.Expr:
        if value is None:
            return exp.Null() if kind == "VARCHAR" else exp.cast(exp.Null(), kind)
        if isinstance(value, int) and not isinstance(value, bool):
            return exp.cast(exp.Literal.number(value), kind)
        return exp.Literal.string(str(value))

    if not rows:
        nulls = [
            exp.alias_(exp.cast(exp.Null(), t), c) for c, t in zip(columns, types, strict=True)
        ]
        return exp.select(*nulls).where(fragment("1 = 0"))
    values = exp.Values(
        expressions=[
            exp.Tuple(expressions=[literal(v, t) for v, t in zip(row, types, strict=True)])
            for row in rows
        ],
        alias=exp.TableAlias(
            this=exp.to_identifier("v"), columns=[exp.to_identifier(c) for c in columns]
        ),
    )
    return exp.select("*").from_(values)


def to_sql(query: exp.Expr | str, dialect: str = "duckdb", pretty: bool = False) -> str:
    """The query as text for ``dialect``: the one place a tree becomes SQL. The tree is written
    out as it is, not copied first (a copy costs twice the writing): the generator takes its
    comments along, so a tree is written out once (``translate`` works on a copy)."""
    if isinstance(query, str):
        if dialect == "duckdb" and not pretty:
            return query
        query = sqlglot.parse_one(query, read="duckdb")
    if dialect != "duckdb":
        # A TRY_CAST built as a tree (not parsed from text) lacks sqlglot's "safe" mark, and
        # Spark's writer makes it a CAST, which stops the whole query at one bad value.
        for node in query.find_all(exp.TryCast):
            node.set("safe", True)
    return query.sql(dialect=dialect, pretty=pretty, copy=False)
