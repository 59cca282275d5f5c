"""A parsed Logs Insights query compiled to one SQL query (a sqlglot tree) for DuckDB, Spark or
Athena.

Each command is a layer over the one before (a subquery): ``filter`` a WHERE, ``fields`` and
``parse`` new columns beside every column below, ``stats`` a GROUP BY after which only its
fields exist, ``limit`` and ``dedup`` a cut in the order ``sort`` set. The fields a query names
are taken from the logs' table once, in the innermost layer (fields.Discovery). Values from the
query (strings, numbers, patterns) enter the tree as literals, never as SQL text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlglot
from sqlglot import exp

from natlens.errors import UsageError
from natlens.insights import functions
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
    field_names,
    where,
)
from natlens.insights.values import (
    ATHENA_TABLE,
    DEFAULT_LIMIT,
    TABLES,
    Compiled,
    _bigint,
    _double,
    _glob,
    _lit,
    _named_groups,
    _number_text,
    _numeric_literal,
    _only_group,
    _text,
    _Value,
    athena_window,
    regex_problem,
)  # fmt: skip


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
        distinct: Callable[[exp.Expr, exp.Expr], list[str]] | None = None,
        printing: bool = False,
        log_type: str | None = None,
    ) -> None:
        self.printing = printing
        self.log_type = log_type  # alert, flow or tls: one Network Firewall log group's events
        self.text = text
        self.commands = commands
        self.dialect = dialect
        self.target = "athena" if dialect == "athena" else "case"
        self.logs = logs or ("firewall" if log_type else self._guess_logs())
        if log_type and self.logs != "firewall":
            raise UsageError("--log-type chooses Network Firewall logs", hint="drop --logs vpc")
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
        self._after_dedup = False  # only limit may follow dedup
        self.counter = 0
        self.notes: list[str] = []
        self._before_stats: tuple[exp.Select, dict[str, _Value], bool] | None = None
        self._cut_after_stats = False

    # -- plumbing
    def _where(self, pos: int) -> str:
        return where(self.text, pos)

    def _error(self, message: str, pos: int, hint: str | None = None) -> UsageError:
        return UsageError(f"{message} ({self._where(pos)})", hint=hint)

    def _guess_logs(self) -> str:
        """Network Firewall's logs when the query names one of their fields, else flow logs."""
        names: list[str] = []
        for command in self.commands:
            for part in [*command.items, *command.by]:
                names += field_names(part.expr)
            names += field_names(command.condition)
            for node, _desc, _written in command.orders:
                names += field_names(node)
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

    def _column(self, value: _Value, columns: list[tuple[str, exp.Expr]]) -> _Value:
        """``value`` as a column of the next layer (added to ``columns``), referred to by name."""
        alias = self._name("c")
        columns.append((alias, value.sql))
        return _Value(exp.column(alias), value.kind)

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
            return _Value(_lit(node.value), "num", node, integer=isinstance(node.value, int))
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
                sql = exp.Neg(this=exp.Paren(this=_bigint(sql) if operand.whole else sql))
            return _Value(sql, "num", aggregate=operand.aggregate, integer=operand.whole)
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
                pattern = self._regex(node.right.pattern, node.right.pos)
                test: exp.Expr = exp.RegexpLike(this=subject, expression=_lit(pattern))
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
        # arithmetic: whole numbers as 64-bit integers where they stay whole (+ - %), else
        # doubles, as CloudWatch's numbers are (a product of two ports overflows 32 bits)
        whole = left.whole and right.whole and op in ("+", "-", "%")
        a, b = self.num(left), self.num(right)
        a, b = (_bigint(a), _bigint(b)) if whole else (_double(a), _double(b))
        if op == "+":
            sql = exp.Add(this=a, expression=b)
        elif op == "-":
            sql = exp.Sub(this=a, expression=b)
        elif op == "*":
            sql = exp.Mul(this=a, expression=b)
        elif op == "/":  # by zero: no value, on every engine (Spark would stop)
            sql = exp.Div(this=a, expression=exp.Nullif(this=b, expression=_lit(0)))
        elif op == "%":
            sql = exp.Mod(this=a, expression=exp.Nullif(this=b, expression=_lit(0)))
        else:
            sql = exp.Pow(this=a, expression=b)
        kind = "time" if left.kind == "time" and op in "+-" and right.kind == "num" else "num"
        return _Value(exp.Paren(this=sql), kind, aggregate=aggregate, integer=whole)

    def _regex(self, pattern: str, pos: int) -> str:
        problem = regex_problem(pattern, self.dialect)
        if problem:
            raise self._error(problem, pos)
        return pattern

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
        return functions.call(self, node, stats_from, aliases)

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
        out: list[tuple[str, _Value]] = []
        columns: list[tuple[str, exp.Expr]] = []
        for item in items:
            name, value = self._item(item)
            if isinstance(item.expr, Field) and item.alias is None:
                out.append((name, value))
                continue
            out.append((name, self._column(value, columns)))
        if columns:
            self._wrap(columns)
        for name, value in out:
            self.fields[name] = value
        return out

    def run(self) -> Compiled:
        for command in self.commands:
            if self._after_dedup and command.kind != "limit":
                raise self._error("only limit may follow dedup", command.pos)
            getattr(self, "_" + command.kind)(command)
        return self._finish()

    def _source(self, command: Command) -> None:
        self.notes.append("SOURCE chooses CloudWatch log groups; natlens reads the case given")

    def _fields(self, command: Command) -> None:
        self.fields_listed.extend(self._define(command.items))

    def _display(self, command: Command) -> None:
        self.shown = self._define(command.items)

    def _filter(self, command: Command) -> None:
        condition = command.condition
        assert condition is not None
        if self.grouped and self._before_stats is not None:
            names = field_names(condition)
            known = [n for n in names if n in self.fields]
            if names and not known:
                self._filter_before_stats(condition, names)
                return
        value = self.expr(condition)
        self._wrap(where_=self.truth(value, condition.pos))

    def _filter_before_stats(self, condition: Node, names: list[str]) -> None:
        """A filter after stats on the events' own fields (not the stats' results): applied to
        the events the stats counted, as AWS's Network Firewall dashboard queries expect
        (``stats count() by event.src_ip as src_ip | filter event.alert.action = 'blocked'``).
        Not past a limit or dedup, which would change which events those are."""
        assert self._before_stats is not None
        select, fields, grouped = self._before_stats
        if self._cut_after_stats:
            raise self._error(
                "this filter names fields the stats did not produce, after a limit or dedup: "
                "what CloudWatch does then is not documented", condition.pos,
                hint="filter before the stats",
            )  # fmt: skip
        after = (self.fields, self.grouped)
        self.fields, self.grouped = fields, grouped
        try:
            value = self.expr(condition)
        finally:
            self.fields, self.grouped = after
        select.where(self.truth(value, condition.pos), copy=False)
        shown = ", ".join(dict.fromkeys(names))
        self.notes.append(
            f"the filter on {shown} after stats applies to the events the stats counted "
            "(the stats did not produce those fields)"
        )

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
            self._regex(pattern.pattern, pattern.pos)
            regex, named = _named_groups(pattern.pattern, pattern.pos, self._error)
            names, groups = list(named), list(named.values())
        if not names:
            raise self._error("parse names no field", pattern.pos if pattern else command.pos)
        matched = exp.RegexpLike(this=text, expression=_lit(regex))
        columns: list[tuple[str, exp.Expr]] = []
        for name, group in zip(names, groups, strict=True):
            # Each field from a pattern where its group is the only one that captures (group 1):
            # DuckDB reads no group past the ninth.
            alone = _only_group(regex, group)
            extracted = exp.RegexpExtract(this=text, expression=_lit(alone), group=_lit(1))
            found = _Value(exp.Case().when(matched, extracted), "any")
            self.fields[name] = self._column(found, columns)
        self._wrap(columns)

    def _stats(self, command: Command) -> None:
        by: list[tuple[str, _Value]] = []
        for item in command.by:
            name, value = self._item(item)
            if value.aggregate:
                raise self._error("stats ... by takes fields, not aggregates", item.expr.pos)
            by.append((name, value))
        aggregates: list[tuple[str, _Value]] = []
        aliases: dict[str, _Value] = {}
        for item in command.items:
            value = self.expr(item.expr, stats_from=self, aliases=aliases)
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
        # What a filter after the stats that names only the events' fields applies to.
        self._before_stats = (select, dict(self.fields), self.grouped)
        self.rel = select
        self.fields = fields
        self.grouped = True
        self.shown = shown
        self.fields_listed = []
        self.order = None

    def _sort(self, command: Command) -> None:
        order: list[tuple[_Value, bool]] = []
        columns: list[tuple[str, exp.Expr]] = []
        for node, desc, text in command.orders:
            value = self.lookup(text, node.pos) if text in self.fields else self.expr(node)
            if not isinstance(value.sql, exp.Column):
                value = self._column(value, columns)
            order.append((value, desc))
        if columns:
            self._wrap(columns)
        self.order = order

    def _limit(self, command: Command) -> None:
        if command.count < 1:
            raise self._error("limit takes a number of at least 1", command.pos)
        self._cut_after_stats = self.grouped
        self._wrap(order=True, limit=command.count)

    def _dedup(self, command: Command) -> None:
        self._cut_after_stats = self.grouped
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
        if self.log_type:
            kind = exp.column(exp.to_identifier("log_type", quoted=True))
            self.base = self.base.where(
                exp.EQ(this=kind, expression=_lit(self.log_type)), copy=False
            )
        if since is None and until is None:
            return
        if self.target != "athena":
            if self.printing:
                from types import SimpleNamespace

                from natlens.engine import Engine

                filters = Engine.window_filters(
                    SimpleNamespace(window=self.window, flows_margin=0)  # type: ignore[arg-type]
                )
                where_ = filters[TABLES[self.logs]]
                self.base = self.base.where(sqlglot.parse_one(where_, read="duckdb"), copy=False)
            return
        self.base = self.base.where(*athena_window(since, until), copy=False)
