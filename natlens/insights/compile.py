"""A parsed Logs Insights query compiled to one SQL query (a sqlglot tree) for DuckDB, Spark or
Athena.

Each command is a layer over the one before (a subquery): ``filter`` a WHERE, ``fields`` and
``parse`` new columns beside every column below, ``stats`` a GROUP BY after which only its
fields exist, ``limit`` and ``dedup`` a cut in the order ``sort`` set. The fields a query names
are taken from the logs' table once, in the innermost layer (fields.Discovery). Values from the
query (strings, numbers, patterns) enter the tree as literals, never as SQL text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

from natlens.errors import UsageError
from natlens.insights.fields import Column, Discovery, Formats, is_firewall_name
from natlens.insights.parse import (
    Binary,
    Call,
    Command,
    Duration,
    Field,
    Glob,
    Item,
    ListOf,
    Node,
    Number,
    Regex,
    Star,
    String,
    Unary,
    where,
)

# CloudWatch returns at most this many rows of a query without ``limit`` (docs/insights.md).
DEFAULT_LIMIT = 10_000
UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
CALENDAR = {"mo": "month", "q": "quarter", "y": "year"}
AGGREGATES = {
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "pct",
    "stddev",
    "earliest",
    "latest",
    "sortsfirst",
    "sortslast",
}
_V4 = r"^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$"
_V6 = r"^[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}$|^[0-9A-Fa-f:]*:[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$"
TABLES = {"vpc": "flows", "firewall": "firewall_events"}
ATHENA_TABLE = "vpc_flow_logs"


@dataclass
class Compiled:
    sql: exp.Query
    names: list[str]  # the columns, in order, as CloudWatch would name them
    times: set[str]  # columns holding times (shown as CloudWatch shows @timestamp)
    logs: str  # vpc or firewall
    default_limit: bool  # no ``limit``: CloudWatch's cap applies
    notes: list[str] = field(default_factory=list)


def _lit(value: Any) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, float):  # a double everywhere (DuckDB would read 2.5 as a DECIMAL)
        return _double(exp.Literal.number(value))
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _double(value: exp.Expr) -> exp.Expr:
    return exp.Cast(this=value, to=exp.DataType.build("DOUBLE"))


def _bigint(value: exp.Expr) -> exp.Expr:
    return exp.Cast(this=value, to=exp.DataType.build("BIGINT"))


def _text(value: exp.Expr) -> exp.Expr:
    return exp.Cast(this=value, to=exp.DataType.build("VARCHAR"))


def _numeric_literal(node: Node | None) -> float | int | None:
    if isinstance(node, Number):
        return node.value
    if isinstance(node, String):
        try:
            number = float(node.value)
        except ValueError:
            return None
        return int(number) if number.is_integer() and "." not in node.value else number
    return None


@dataclass
class _Value:
    """A compiled expression: its SQL, kind (num, str, any, bool, time), the literal it came
    from (for coercions), and the IPv4 integer beside an address field."""

    sql: exp.Expr
    kind: str
    node: Node | None = None
    v4: exp.Expr | None = None
    aggregate: bool = False
    discovered: str | None = None  # the discovered field it is, as is

    def number(self, discovery: Discovery) -> exp.Expr | None:
        """An address field's IPv4 integer column (NULL for IPv6), when it has one."""
        if self.v4 is None and self.discovered is not None:
            self.v4 = discovery.v4(self.discovered)
        return self.v4


class Compiler:
    def __init__(
        self,
        text: str,
        commands: list[Command],
        logs: str | None,
        formats: Formats,
        dialect: str,
        window: tuple[int | None, int | None] = (None, None),
        table: str | None = None,
        distinct: Callable[[exp.Expr], list[str]] | None = None,
        printing: bool = False,
    ) -> None:
        self.printing = printing
        self.text = text
        self.commands = commands
        self.dialect = dialect
        self.target = "athena" if dialect == "athena" else "case"
        self.logs = logs or self._guess_logs()
        if self.logs == "firewall" and self.target == "athena":
            raise UsageError(
                "--dialect athena translates queries of VPC flow logs only (AWS's standard "
                "Athena table of flow logs)",
                hint="print it for duckdb or spark, or query a flow log case",
            )
        self.distinct = distinct
        name = table or (ATHENA_TABLE if self.target == "athena" else TABLES[self.logs])
        self.table = exp.to_table(name) if "." in name else exp.Table(this=exp.to_identifier(name))
        self.base = exp.select()
        self._base_columns: dict[str, exp.Expr] = {}
        self._base_sql: dict[str, exp.Expr] = {}
        self.discovery = Discovery(self.logs, formats, self.target, self._add_base)
        self.window = window
        self.rel: exp.Select | None = None  # None: the base select itself
        self.fields: dict[str, _Value] = {}  # what the query defined: fields, parse, stats
        self.grouped = False
        self.shown: list[tuple[str, _Value]] | None = None
        self.fields_listed: list[tuple[str, _Value]] = []
        self.order: list[tuple[_Value, bool]] | None = None
        self.limited = False
        self.counter = 0
        self.notes: list[str] = []

    # -- plumbing
    def _where(self, pos: int) -> str:
        return where(self.text, pos)

    def _error(self, message: str, pos: int, hint: str | None = None) -> UsageError:
        return UsageError(f"{message} ({self._where(pos)})", hint=hint)

    def _guess_logs(self) -> str:
        """Network Firewall's logs when the query names one of their fields, else flow logs."""
        names: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, Field):
                names.append(node.name)
            elif isinstance(node, Node | Item):
                for value in vars(node).values():
                    walk(value)
            elif isinstance(node, list | tuple):
                for value in node:
                    walk(value)

        for command in self.commands:
            walk([command.items, command.by, command.condition, command.orders])
            names.extend(command.names)
        return "firewall" if any(is_firewall_name(n) for n in names) else "vpc"

    def _name(self, prefix: str) -> str:
        self.counter += 1
        return f"_{prefix}{self.counter}"

    def _add_base(self, key: str, sql: exp.Expr) -> exp.Expr:
        if key not in self._base_columns:
            alias = self._name("f")
            self.base = self.base.select(exp.alias_(sql, alias, quoted=False), copy=False)
            self._base_columns[key] = exp.column(alias)
            self._base_sql[alias] = sql
        return self._base_columns[key].copy()

    def _from(self) -> exp.Select:
        return self.rel if self.rel is not None else self.base

    def _wrap(
        self,
        columns: Sequence[tuple[str, exp.Expr]] = (),
        where_: exp.Expr | None = None,
        order: bool = False,
        limit: int | None = None,
    ) -> None:
        inner = self._from().subquery(self._name("t"), copy=False)
        select = exp.select(exp.Star()).from_(inner, copy=False)
        for alias, sql in columns:
            select = select.select(exp.alias_(sql, alias, quoted=False), copy=False)
        if where_ is not None:
            select = select.where(where_, copy=False)
        if order:
            select = select.order_by(*self._ordering(), copy=False)
        if limit is not None:
            select = select.limit(limit, copy=False)
        self.rel = select

    def _column(self, sql: exp.Expr) -> tuple[str, exp.Expr]:
        alias = self._name("c")
        return alias, sql

    # -- fields
    def lookup(self, name: str, pos: int) -> _Value:
        if name in self.fields:
            value = self.fields[name]
            return _Value(value.sql.copy(), value.kind, None, value.v4, discovered=value.discovered)
        if self.grouped:
            known = ", ".join(self.fields) or "none"
            raise self._error(
                f"field {name!r} does not exist after stats",
                pos,
                hint=f"after stats, a query sees only its fields: {known}",
            )
        column: Column = self.discovery.use(name, pos, self._where)
        return _Value(column.sql, column.kind, None, None, discovered=name)

    # -- coercions
    def num(self, value: _Value) -> exp.Expr:
        if value.kind in ("num", "time"):
            return value.sql
        if value.kind == "bool":
            return exp.Cast(this=value.sql, to=exp.DataType.build("INT"))
        literal = _numeric_literal(value.node)
        if literal is not None:
            return _lit(literal)
        return exp.TryCast(this=value.sql, to=exp.DataType.build("DOUBLE"))

    def text_of(self, value: _Value) -> exp.Expr:
        return value.sql if value.kind in ("str", "any") else _text(value.sql)

    def truth(self, value: _Value, pos: int) -> exp.Expr:
        if value.kind == "bool":
            return value.sql
        if value.kind in ("num", "time"):
            return exp.NEQ(this=value.sql, expression=exp.Literal.number(0))
        raise self._error(
            "a condition must be true or false (a comparison, like, in, or a function such as "
            "ispresent)",
            pos,
        )

    # -- expressions
    def expr(
        self,
        node: Node,
        stats_from: Compiler | None = None,
        aliases: dict[str, _Value] | None = None,
    ) -> _Value:
        """``stats_from``: compiling a stats item, whose aggregates read that frame's fields;
        ``aliases``: the stats items named so far (an item may use them)."""
        if isinstance(node, Number):
            return _Value(_lit(node.value), "num", node)
        if isinstance(node, String):
            return _Value(_lit(node.value), "str", node)
        if isinstance(node, Field):
            if aliases is not None and node.name in aliases:
                value = aliases[node.name]
                return _Value(value.sql.copy(), value.kind, aggregate=True)
            if stats_from is not None:
                raise self._error(
                    f"field {node.name!r} is outside an aggregate function in stats",
                    node.pos,
                    hint="group by it (stats ... by " + node.name + ") or aggregate it",
                )
            return self.lookup(node.name, node.pos)
        if isinstance(node, Unary):
            operand = self.expr(node.operand, stats_from, aliases)
            if node.op == "not":
                return _Value(
                    exp.Not(this=exp.Paren(this=self.truth(operand, node.pos))),
                    "bool",
                    aggregate=operand.aggregate,
                )
            sql = self.num(operand)
            if node.op == "-":
                sql = exp.Neg(this=exp.Paren(this=sql))
            return _Value(sql, "num", aggregate=operand.aggregate)
        if isinstance(node, Binary):
            return self.binary(node, stats_from, aliases)
        if isinstance(node, Call):
            return self.call(node, stats_from, aliases)
        if isinstance(node, Regex):
            raise self._error("a /regular expression/ goes after like, =~ or parse", node.pos)
        if isinstance(node, Duration):
            raise self._error(
                "a period (5m, 1h) goes in bin(), datefloor() or dateceil()", node.pos
            )
        if isinstance(node, Star):
            raise self._error("* goes only in count(*)", node.pos)
        if isinstance(node, ListOf):
            raise self._error("a [list] goes only after in", node.pos)
        raise self._error("this cannot be read", node.pos)

    def binary(
        self, node: Binary, stats_from: Compiler | None, aliases: dict[str, _Value] | None
    ) -> _Value:
        op = node.op
        left = self.expr(node.left, stats_from, aliases)
        aggregate = left.aggregate
        if op in ("like", "notlike"):
            subject = self.text_of(left)
            if isinstance(node.right, Regex):
                test: exp.Expr = exp.RegexpLike(this=subject, expression=_lit(node.right.pattern))
            else:
                assert isinstance(node.right, String)
                test = exp.GT(
                    this=exp.StrPosition(this=subject, substr=_lit(node.right.value)),
                    expression=exp.Literal.number(0),
                )
            if op == "notlike":
                test = exp.Not(this=exp.Paren(this=test))
            return _Value(test, "bool", aggregate=aggregate)
        if op in ("in", "notin"):
            assert isinstance(node.right, ListOf)
            items = node.right.items
            for item in items:
                if not isinstance(item, Number | String):
                    raise self._error("in [...] takes numbers and strings", item.pos)
            numbers = [_numeric_literal(i) for i in items]
            numeric = (left.kind in ("num", "time") and all(n is not None for n in numbers)) or (
                left.kind in ("str", "any") and items and all(isinstance(i, Number) for i in items)
            )
            if numeric:
                subject, values = self.num(left), [_lit(n) for n in numbers]
            else:
                subject = self.text_of(left)
                values = [
                    _lit(i.value) if isinstance(i, String) else _lit(_number_text(i.value))
                    for i in items
                    if isinstance(i, String | Number)
                ]
            sql: exp.Expr = exp.In(this=subject, expressions=values) if values else exp.false()
            if op == "notin":
                sql = exp.Not(this=exp.Paren(this=sql))
            return _Value(sql, "bool", aggregate=aggregate)
        right = self.expr(node.right, stats_from, aliases)
        aggregate = aggregate or right.aggregate
        if op in ("and", "or"):
            cls = exp.And if op == "and" else exp.Or
            sql = cls(
                this=exp.Paren(this=self.truth(left, node.left.pos)),
                expression=exp.Paren(this=self.truth(right, node.right.pos)),
            )
            return _Value(sql, "bool", aggregate=aggregate)
        if op in ("=", "!=", "<", "<=", ">", ">="):
            a, b = self._comparable(left, right)
            compare: type[exp.Binary] = {
                "=": exp.EQ,
                "!=": exp.NEQ,
                "<": exp.LT,
                "<=": exp.LTE,
                ">": exp.GT,
                ">=": exp.GTE,
            }[op]
            return _Value(compare(this=a, expression=b), "bool", aggregate=aggregate)
        # arithmetic
        a, b = self.num(left), self.num(right)
        if op == "+":
            sql = exp.Add(this=a, expression=b)
        elif op == "-":
            sql = exp.Sub(this=a, expression=b)
        elif op == "*":
            sql = exp.Mul(this=a, expression=b)
        elif op == "/":
            sql = exp.Div(this=_double(a), expression=b)
        elif op == "%":
            sql = exp.Mod(this=a, expression=b)
        else:
            sql = exp.Pow(this=a, expression=b)
        kind = "time" if left.kind == "time" and op in "+-" and right.kind == "num" else "num"
        return _Value(exp.Paren(this=sql), kind, aggregate=aggregate)

    def _comparable(self, left: _Value, right: _Value) -> tuple[exp.Expr, exp.Expr]:
        kinds = {left.kind, right.kind}
        if kinds == {"bool"}:
            return left.sql, right.sql
        numeric_side = left.kind in ("num", "time", "bool") or right.kind in ("num", "time", "bool")
        if numeric_side:
            for value in (left, right):
                if isinstance(value.node, String) and _numeric_literal(value.node) is None:
                    return self.text_of(left), self.text_of(right)  # 'abc' against a number
            return self.num(left), self.num(right)
        for value, other in ((left, right), (right, left)):
            if isinstance(value.node, Number) and other.kind in ("str", "any"):
                return self.num(left), self.num(right)
        return self.text_of(left), self.text_of(right)

    # -- functions
    def call(
        self, node: Call, stats_from: Compiler | None, aliases: dict[str, _Value] | None
    ) -> _Value:
        name, args = node.name, node.args
        if name in AGGREGATES:
            if stats_from is None:
                raise self._error(f"{node.spelled}() is an aggregate: it goes in stats", node.pos)
            return stats_from.aggregate(node, self)
        if name in ("bin", "datefloor", "dateceil"):
            return self.period(node, stats_from, aliases)

        def arg(i: int) -> _Value:
            return self.expr(args[i], stats_from, aliases)

        def arity(low: int, high: int | None = None) -> None:
            high = low if high is None else high
            if not low <= len(args) <= high:
                count = str(low) if low == high else f"{low} to {high}"
                raise self._error(f"{node.spelled}() takes {count} argument(s)", node.pos)

        values = [arg(i) for i in range(len(args))] if name not in _SPECIAL else []
        aggregate = any(v.aggregate for v in values)
        if name == "ispresent":
            arity(1)
            return _Value(exp.Not(this=exp.Is(this=values[0].sql, expression=exp.Null())), "bool")
        if name in ("isempty", "isblank"):
            arity(1)
            text = self.text_of(values[0])
            if name == "isblank":
                text = exp.Trim(this=text)
            empty = exp.EQ(this=text, expression=_lit(""))
            null = exp.Is(this=values[0].sql, expression=exp.Null())
            return _Value(exp.Paren(this=exp.Or(this=null, expression=empty)), "bool")
        if name == "coalesce":
            arity(1, 100)
            kinds = {v.kind for v in values}
            if len(kinds) == 1:
                kind = kinds.pop()
                sqls = [v.sql for v in values]
            else:
                kind, sqls = "str", [self.text_of(v) for v in values]
            return _Value(
                exp.Coalesce(this=sqls[0], expressions=sqls[1:]), kind, aggregate=aggregate
            )
        if name == "concat":
            arity(1, 100)
            parts = [exp.Coalesce(this=self.text_of(v), expressions=[_lit("")]) for v in values]
            return _Value(exp.ConcatWs(expressions=[_lit(""), *parts]), "str", aggregate=aggregate)
        if name == "strlen":
            arity(1)
            return _Value(exp.Length(this=self.text_of(values[0])), "num", aggregate=aggregate)
        if name in ("toupper", "tolower"):
            arity(1)
            cls = exp.Upper if name == "toupper" else exp.Lower
            return _Value(cls(this=self.text_of(values[0])), "str", aggregate=aggregate)
        if name in ("trim", "ltrim", "rtrim"):
            arity(1, 2)
            position = {"trim": None, "ltrim": "LEADING", "rtrim": "TRAILING"}[name]
            chars = self.text_of(values[1]) if len(values) > 1 else None
            if chars is None and position:
                trimmed = exp.func("LTRIM" if name == "ltrim" else "RTRIM", self.text_of(values[0]))
                return _Value(trimmed, "str", aggregate=aggregate)
            return _Value(
                exp.Trim(this=self.text_of(values[0]), expression=chars, position=position),
                "str",
                aggregate=aggregate,
            )
        if name == "substr":
            arity(2, 3)
            start = exp.Add(this=self.num(values[1]), expression=exp.Literal.number(1))
            sql = exp.Substring(
                this=self.text_of(values[0]),
                start=_bigint(start),
                length=_bigint(self.num(values[2])) if len(values) > 2 else None,
            )
            return _Value(sql, "str", aggregate=aggregate)
        if name == "replace":
            arity(3)
            replaced = exp.Anonymous(this="REPLACE", expressions=[self.text_of(v) for v in values])
            return _Value(replaced, "str", aggregate=aggregate)
        if name == "strcontains":
            arity(2)
            found = exp.GT(
                this=exp.StrPosition(this=self.text_of(values[0]), substr=self.text_of(values[1])),
                expression=exp.Literal.number(0),
            )
            flag = exp.Case().when(found, _lit(1)).else_(_lit(0))
            return _Value(flag, "num", aggregate=aggregate)
        if name in ("abs", "ceil", "floor", "sqrt", "log"):
            arity(1)
            unary: type[exp.Func] = {
                "abs": exp.Abs,
                "ceil": exp.Ceil,
                "floor": exp.Floor,
                "sqrt": exp.Sqrt,
                "log": exp.Ln,
            }[name]
            return _Value(unary(this=self.num(values[0])), "num", aggregate=aggregate)
        if name == "round":
            arity(1, 2)
            digits = self.num(values[1]) if len(values) > 1 else None
            return _Value(
                exp.Round(this=self.num(values[0]), decimals=digits), "num", aggregate=aggregate
            )
        if name in ("greatest", "least"):
            arity(1, 100)
            extreme: type[exp.Func] = exp.Greatest if name == "greatest" else exp.Least
            nums = [self.num(v) for v in values]
            return _Value(extreme(this=nums[0], expressions=nums[1:]), "num", aggregate=aggregate)
        if name == "pow":
            arity(2)
            return _Value(
                exp.Pow(this=self.num(values[0]), expression=self.num(values[1])),
                "num",
                aggregate=aggregate,
            )
        if name == "frommillis":
            arity(1)
            return _Value(self.num(values[0]), "time", aggregate=aggregate)
        if name == "tomillis":
            arity(1)
            return _Value(self.num(values[0]), "num", aggregate=aggregate)
        if name in ("isipv4insubnet", "isipv6insubnet", "isipinsubnet"):
            arity(2)
            return self.in_subnet(node, arg(0))
        if name in ("isvalidip", "isvalidipv4", "isvalidipv6"):
            arity(1)
            text = self.text_of(values[0])
            tests = []
            if name in ("isvalidip", "isvalidipv4"):
                tests.append(self._valid_v4(text))
            if name in ("isvalidip", "isvalidipv6"):
                tests.append(exp.RegexpLike(this=text, expression=_lit(_V6)))
            valid = tests[0] if len(tests) == 1 else exp.Or(this=tests[0], expression=tests[1])
            return _Value(
                exp.Coalesce(this=exp.Paren(this=valid), expressions=[exp.false()]), "bool"
            )
        raise self._error(
            f"{node.spelled}() is not a function natlens runs",
            node.pos,
            hint="docs/insights.md lists the functions",
        )

    def _octets(self, text: exp.Expr) -> list[exp.Expr]:
        return [
            exp.TryCast(
                this=exp.RegexpExtract(this=text, expression=_lit(_V4), group=_lit(i)),
                to=exp.DataType.build("BIGINT"),
            )
            for i in range(1, 5)
        ]

    def _valid_v4(self, text: exp.Expr) -> exp.Expr:
        octets = self._octets(text)
        ok: exp.Expr = exp.RegexpLike(this=text, expression=_lit(_V4))
        for octet in octets:
            ok = exp.And(this=ok, expression=exp.LTE(this=octet, expression=_lit(255)))
        return ok

    def in_subnet(self, node: Call, value: _Value) -> _Value:
        cidr_node = node.args[1]
        if not isinstance(cidr_node, String):
            raise self._error(f"{node.spelled}() takes the block as a quoted string", cidr_node.pos)
        try:
            network = ipaddress.ip_network(cidr_node.value.strip(), strict=False)
        except ValueError:
            raise self._error(
                f"{cidr_node.value!r} is not a CIDR block", cidr_node.pos, hint="e.g. '10.0.0.0/16'"
            ) from None
        wanted = {"isipv4insubnet": 4, "isipv6insubnet": 6}.get(node.name, network.version)
        if wanted != network.version:
            return _Value(exp.false(), "bool")  # an IPv4 test of an IPv6 block holds for none
        text = self.text_of(value)
        if self.target == "athena":
            parsed = exp.TryCast(this=text, to=exp.DataType.build("IPADDRESS", dialect="trino"))
            inside = exp.Anonymous(this="CONTAINS", expressions=[_lit(str(network)), parsed])
            colon = exp.GT if network.version == 6 else exp.EQ
            family = colon(this=exp.StrPosition(this=text, substr=_lit(":")), expression=_lit(0))
            sql = exp.And(
                this=family, expression=exp.Coalesce(this=inside, expressions=[exp.false()])
            )
            return _Value(exp.Paren(this=sql), "bool")
        if network.version == 4:
            low, high = int(network.network_address), int(network.broadcast_address)
            if value.number(self.discovery) is not None:
                number = value.v4
            else:
                a, b, c, d = self._octets(text)
                number = exp.Case().when(
                    self._valid_v4(text),
                    exp.Add(
                        this=exp.Add(
                            this=exp.Mul(this=a, expression=_lit(16777216)),
                            expression=exp.Mul(this=b, expression=_lit(65536)),
                        ),
                        expression=exp.Add(
                            this=exp.Mul(this=c, expression=_lit(256)), expression=d
                        ),
                    ),
                )
            between = exp.Between(this=number, low=_lit(low), high=_lit(high))
            return _Value(
                exp.Coalesce(this=exp.Paren(this=between), expressions=[exp.false()]), "bool"
            )
        # IPv6: which of the logs' addresses are in the block is decided here, exactly.
        if (
            self.distinct is None
            or not isinstance(node.args[0], Field)
            or node.args[0].name in self.fields
        ):
            raise self._error(
                f"{node.spelled}() with an IPv6 block needs the logs' addresses",
                node.pos,
                hint="run the query (not --print-sql), on a discovered address field",
            )
        addresses: list[str] = []
        base = self._base_sql.get(value.sql.name) if isinstance(value.sql, exp.Column) else None
        if base is None:
            raise self._error(
                f"{node.spelled}() with an IPv6 block reads a discovered field", node.pos
            )
        for address in self.distinct(base.copy()):
            try:
                if ipaddress.ip_address(address) in network:
                    addresses.append(address)
            except ValueError:
                continue
        member: exp.Expr = (
            exp.In(this=text, expressions=[_lit(a) for a in addresses])
            if addresses
            else exp.false()
        )
        return _Value(exp.Coalesce(this=exp.Paren(this=member), expressions=[exp.false()]), "bool")

    def period(
        self, node: Call, stats_from: Compiler | None, aliases: dict[str, _Value] | None
    ) -> _Value:
        args = list(node.args)
        if node.name == "bin":
            if len(args) != 1:
                raise self._error("bin() takes one period: bin(5m)", node.pos)
            frame = stats_from or self
            time = frame.lookup("@timestamp", node.pos)
        else:
            if len(args) != 2:
                raise self._error(f"{node.spelled}() takes a time and a period", node.pos)
            time = self.expr(args[0], stats_from, aliases)
            if time.kind not in ("time", "num"):
                raise self._error(f"{node.spelled}() takes a time (@timestamp)", args[0].pos)
        duration = args[-1]
        if not isinstance(duration, Duration):
            raise self._error("a period is a number and a unit: 5m, 1h, 1d", duration.pos)
        ceil = node.name == "dateceil"
        if duration.unit in CALENDAR:
            if duration.amount != 1:
                raise self._error(
                    "natlens bins by months, quarters and years one at a time",
                    duration.pos,
                    hint=f"write 1{duration.unit}",
                )
            if ceil:
                raise self._error(
                    "dateceil() by months, quarters or years is not supported", duration.pos
                )
            return _Value(self._calendar(time.sql, CALENDAR[duration.unit]), "time")
        size = duration.amount * UNIT_MS[duration.unit]
        if size <= 0 or size != int(size):
            raise self._error("a period is at least 1 ms, in whole milliseconds", duration.pos)
        step = _lit(int(size))
        cls = exp.Ceil if ceil else exp.Floor
        bucket = exp.Mul(
            this=_bigint(cls(this=exp.Div(this=_double(time.sql), expression=step))),
            expression=step,
        )
        return _Value(bucket, "time")

    def _calendar(self, ms: exp.Expr, unit: str) -> exp.Expr:
        stamp = exp.UnixToTime(this=_bigint(ms), scale=exp.UnixToTime.MILLIS)
        truncated = exp.TimestampTrunc(this=stamp, unit=exp.var(unit.upper()))
        if self.dialect == "spark":
            return exp.Anonymous(this="UNIX_MILLIS", expressions=[truncated])
        if self.dialect == "athena":
            return _bigint(
                exp.Mul(
                    this=exp.Anonymous(this="TO_UNIXTIME", expressions=[truncated]),
                    expression=_lit(1000),
                )
            )
        return exp.Anonymous(this="EPOCH_MS", expressions=[truncated])

    # -- aggregates (self: the frame before stats; outer: the stats frame being built)
    def aggregate(self, node: Call, outer: Compiler) -> _Value:
        name, args = node.name, node.args
        if name == "count" and (not args or isinstance(args[0], Star)):
            return _Value(exp.Count(this=exp.Star()), "num", aggregate=True)
        if not args:
            raise self._error(f"{node.spelled}() takes a field", node.pos)
        value = self.expr(args[0])
        if value.aggregate:
            raise self._error("an aggregate cannot hold another", args[0].pos)
        if name == "count":
            return _Value(exp.Count(this=value.sql), "num", aggregate=True)
        if name == "count_distinct":
            return _Value(
                exp.Count(this=exp.Distinct(expressions=[value.sql])), "num", aggregate=True
            )
        if name in ("sum", "avg", "stddev"):
            cls = {"sum": exp.Sum, "avg": exp.Avg, "stddev": exp.StddevSamp}[name]
            return _Value(cls(this=self.num(value)), "num", aggregate=True)
        if name in ("min", "max", "sortsfirst", "sortslast"):
            cls = exp.Min if name in ("min", "sortsfirst") else exp.Max
            sql = value.sql if value.kind in ("num", "time", "str") else self.num(value)
            return _Value(
                cls(this=sql), value.kind if value.kind != "any" else "num", aggregate=True
            )
        if name == "pct":
            if len(args) != 2 or _numeric_literal(args[1]) is None:
                raise self._error("pct() takes a field and a percentile: pct(bytes, 95)", node.pos)
            share = float(_numeric_literal(args[1]) or 0) / 100
            if not 0 <= share <= 1:
                raise self._error("a percentile is between 0 and 100", args[1].pos)
            function = {
                "duckdb": "QUANTILE_CONT",
                "spark": "PERCENTILE",
                "athena": "APPROX_PERCENTILE",
            }[self.dialect]
            sql = exp.Anonymous(this=function, expressions=[_double(self.num(value)), _lit(share)])
            return _Value(sql, "num", aggregate=True)
        # earliest, latest: the value of the event with the first or last @timestamp
        time = self.lookup("@timestamp", node.pos)
        cls = exp.ArgMin if name == "earliest" else exp.ArgMax
        return _Value(cls(this=value.sql, expression=time.sql), value.kind, aggregate=True)

    # -- ordering
    def _ordering(self) -> list[exp.Ordered]:
        ordered = []
        for value, desc in self.order or self._default_order():
            number = value.number(self.discovery)
            keys = [number, value.sql] if number is not None else [value.sql]
            for key in keys:
                ordered.append(exp.Ordered(this=key.copy(), desc=desc, nulls_first=False))
        return ordered

    def _default_order(self) -> list[tuple[_Value, bool]]:
        if self.grouped:
            return [(v, False) for _, v in self.shown or []]
        return [(self.lookup("@timestamp", 0), True)]

    # -- commands
    def _item(self, item: Item) -> tuple[str, _Value]:
        name = item.alias or (item.expr.name if isinstance(item.expr, Field) else item.text)
        if item.alias is None and item.text in self.fields:
            return name, self.lookup(item.text, item.expr.pos)
        return name, self.expr(item.expr)

    def _define(self, items: list[Item]) -> list[tuple[str, _Value]]:
        """Items as columns of a new layer (a plain field stays what it is)."""
        out, columns = [], []
        for item in items:
            name, value = self._item(item)
            if isinstance(item.expr, Field) and item.alias is None:
                out.append((name, value))
                continue
            alias, sql = self._column(value.sql)
            columns.append((alias, sql))
            defined = _Value(exp.column(alias), value.kind, None, None)
            out.append((name, defined))
        if columns:
            self._wrap(columns)
        for name, value in out:
            self.fields[name] = value
        return out

    def run(self) -> Compiled:
        for command in self.commands:
            if self.limited and command.kind not in ("limit",) and self._after_dedup:
                raise self._error("only limit may follow dedup", command.pos)
            getattr(self, "_" + command.kind)(command)
        return self._finish()

    _after_dedup = False

    def _source(self, command: Command) -> None:
        self.notes.append("SOURCE chooses CloudWatch log groups; natlens reads the case given")

    def _fields(self, command: Command) -> None:
        self.fields_listed.extend(self._define(command.items))

    def _display(self, command: Command) -> None:
        self.shown = self._define(command.items)

    def _filter(self, command: Command) -> None:
        assert command.condition is not None
        value = self.expr(command.condition)
        self._wrap(where_=self.truth(value, command.condition.pos))

    def _parse(self, command: Command) -> None:
        source = self.lookup(command.source, command.pos)
        text = self.text_of(source)
        pattern = command.pattern
        if isinstance(pattern, Glob):
            regex, names = _glob(pattern.text), command.names
            if pattern.text.count("*") != len(names):
                raise self._error(
                    f"the pattern has {pattern.text.count('*')} '*' but {len(names)} name(s) "
                    "follow as",
                    pattern.pos,
                )
            groups = list(range(1, len(names) + 1))
        else:
            assert isinstance(pattern, Regex)
            if command.names:
                raise self._error(
                    "a regular expression names its fields itself: (?<name>...)", pattern.pos
                )
            regex, named = _named_groups(pattern.pattern, pattern.pos, self._error)
            names, groups = list(named), list(named.values())
        if not names:
            raise self._error("parse names no field", pattern.pos if pattern else command.pos)
        matched = exp.RegexpLike(this=text, expression=_lit(regex))
        columns = []
        for name, group in zip(names, groups, strict=True):
            # Each field from a pattern where its group is the only one that captures (group 1):
            # DuckDB reads no group past the ninth.
            alone = _only_group(regex, group)
            extracted = exp.RegexpExtract(this=text, expression=_lit(alone), group=_lit(1))
            alias, sql = self._column(exp.Case().when(matched, extracted))
            columns.append((alias, sql))
            self.fields[name] = _Value(exp.column(alias), "any")
        self._wrap(columns)

    def _stats(self, command: Command) -> None:
        by: list[tuple[str, _Value]] = []
        for item in command.by:
            name, value = self._item(item)
            if value.aggregate:
                raise self._error("stats ... by takes fields, not aggregates", item.expr.pos)
            by.append((name, value))
        stats_frame = _StatsFrame()
        aggregates: list[tuple[str, _Value]] = []
        aliases: dict[str, _Value] = {}
        for item in command.items:
            value = stats_frame.compile(self, item, aliases)
            if not value.aggregate:
                raise self._error(
                    "a stats item needs an aggregate function (count, sum ...)", item.expr.pos
                )
            name = item.alias or item.text
            aggregates.append((name, value))
            aliases[name] = value
        inner = self._from().subquery(self._name("t"), copy=False)
        select = exp.select().from_(inner, copy=False)
        fields: dict[str, _Value] = {}
        shown = []
        for name, value in [*by, *aggregates]:
            alias = self._name("s")
            select = select.select(exp.alias_(value.sql.copy(), alias, quoted=False), copy=False)
            fields[name] = _Value(exp.column(alias), value.kind)
            shown.append((name, fields[name]))
        if by:
            select = select.group_by(*[v.sql.copy() for _, v in by], copy=False)
        self.rel = select
        self.fields = fields
        self.grouped = True
        self.shown = shown
        self.fields_listed = []
        self.order = None

    def _sort(self, command: Command) -> None:
        order, columns = [], []
        for node, desc, text in command.orders:
            value = self.lookup(text, node.pos) if text in self.fields else self.expr(node)
            if not isinstance(value.sql, exp.Column):
                alias, sql = self._column(value.sql)
                columns.append((alias, sql))
                value = _Value(exp.column(alias), value.kind, None, None)
            order.append((value, desc))
        if columns:
            self._wrap(columns)
        self.order = order

    def _limit(self, command: Command) -> None:
        if command.count < 1:
            raise self._error("limit takes a number of at least 1", command.pos)
        self._wrap(order=True, limit=command.count)
        self.limited = True

    def _dedup(self, command: Command) -> None:
        values = [self.lookup(name, command.pos) for name in command.names]
        number = self._name("n")
        window = exp.Window(
            this=exp.RowNumber(),
            partition_by=[v.sql.copy() for v in values],
            order=exp.Order(expressions=self._ordering()),
        )
        self._wrap([(number, window)])
        keep: exp.Expr = exp.EQ(this=exp.column(number), expression=_lit(1))
        for value in values:
            keep = exp.Or(
                this=keep, expression=exp.Is(this=value.sql.copy(), expression=exp.Null())
            )
        self._wrap(where_=keep)
        self._after_dedup = True
        self.limited = True

    def _finish(self) -> Compiled:
        shown = self.shown
        if shown is None:
            shown = self.fields_listed or [
                (name, self.lookup(name, 0)) for name in self.discovery.shown_by_default()
            ]
        if not self._base_columns:
            self._add_base("#one", _lit(1))
        self._window()
        ordering = self._ordering()
        inner = self._from().subquery(self._name("t"), copy=False)
        select = exp.select().from_(inner, copy=False)
        names, times, seen = [], set(), set()
        for name, value in shown:
            unique, n = name, 2
            while unique in seen:
                unique, n = f"{name} ({n})", n + 1
            seen.add(unique)
            sql = value.sql.copy()
            if value.kind == "time":
                sql = exp.UnixToTime(this=_bigint(sql), scale=exp.UnixToTime.MILLIS)
                times.add(unique)
            select = select.select(
                exp.alias_(sql, exp.to_identifier(unique, quoted=True)), copy=False
            )
            names.append(unique)
        select = select.order_by(*ordering, copy=False)
        default_limit = not any(c.kind == "limit" for c in self.commands)
        if default_limit:
            select = select.limit(DEFAULT_LIMIT, copy=False)
        return Compiled(select, names, times, self.logs, default_limit, self.notes)

    def _window(self) -> None:
        """--since/--until: on a case the engine's view applies them; Athena's table is read
        here, by its date partition and the records' times."""
        since, until = self.window
        self.base = self.base.from_(self.table, copy=False)
        if since is None and until is None:
            return
        if self.target != "athena":
            if self.printing:
                from types import SimpleNamespace

                from natlens.engine import Engine

                filters = Engine.window_filters(SimpleNamespace(window=self.window))  # type: ignore[arg-type]
                where_ = filters[TABLES[self.logs]]
                self.base = self.base.where(sqlglot.parse_one(where_, read="duckdb"), copy=False)
            return
        conditions: list[exp.Expr] = []
        from datetime import UTC, datetime

        def day(seconds: int) -> exp.Expr:
            text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")
            return exp.Cast(this=_lit(text), to=exp.DataType.build("DATE"))

        date = exp.column(exp.to_identifier("date", quoted=True))
        end = exp.column(exp.to_identifier("end", quoted=True))
        start = exp.column(exp.to_identifier("start", quoted=True))
        if since is not None:
            conditions += [
                exp.GTE(this=date, expression=day(since)),
                exp.GTE(this=end, expression=_lit(int(since))),
            ]
        if until is not None:
            conditions += [
                exp.LTE(this=date.copy(), expression=day(until)),
                exp.LTE(this=start, expression=_lit(int(until))),
            ]
        self.base = self.base.where(*conditions, copy=False)


_SPECIAL = {"isipv4insubnet", "isipv6insubnet", "isipinsubnet"}


class _StatsFrame:
    def compile(self, frame: Compiler, item: Item, aliases: dict[str, _Value]) -> _Value:
        return frame.expr(item.expr, stats_from=frame, aliases=aliases)


def _number_text(value: float | int) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _glob(pattern: str) -> str:
    """A parse glob as a regular expression: each ``*`` takes as little as it can, the last as
    much as it can; the rest matches itself."""
    pieces = pattern.split("*")
    out = []
    for i, piece in enumerate(pieces):
        out.append(re.escape(piece))
        if i < len(pieces) - 1:
            out.append("(.*)" if i == len(pieces) - 2 and pieces[-1] == "" else "(.*?)")
    return "".join(out)


def _named_groups(
    pattern: str, pos: int, error: Callable[..., UsageError]
) -> tuple[str, dict[str, int]]:
    """``(?<name>...)`` groups made plain groups (RE2 and Java read those alike), with the
    number of each: the fields parse creates."""
    out, names, number, i = [], {}, 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[":  # a class: its ( are characters
            end = i + 1
            if end < len(pattern) and pattern[end] == "]":
                end += 1
            while end < len(pattern) and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            out.append(pattern[i : end + 1])
            i = end + 1
            continue
        if char == "(":
            named = re.match(r"\(\?P?<([A-Za-z_@][A-Za-z0-9_@.]*)>", pattern[i:])
            if named:
                number += 1
                names[named[1]] = number
                out.append("(")
                i += len(named[0])
                continue
            if not pattern.startswith("(?", i):
                number += 1
        out.append(char)
        i += 1
    if not names:
        raise error("a parse regular expression names its fields: (?<name>...)", pos)
    return "".join(out), names


def _only_group(regex: str, keep: int) -> str:
    """``regex`` with every capturing group but the ``keep``-th made non-capturing."""
    out, number, i = [], 0, 0
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        if char == "[":
            end = i + 1
            if end < len(regex) and regex[end] == "]":
                end += 1
            while end < len(regex) and regex[end] != "]":
                end += 2 if regex[end] == "\\" else 1
            out.append(regex[i : end + 1])
            i = end + 1
            continue
        if char == "(" and not regex.startswith("(?", i):
            number += 1
            out.append("(" if number == keep else "(?:")
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)
