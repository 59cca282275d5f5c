"""The functions of a Logs Insights query (strings, numbers, times, addresses, aggregates) as
sqlglot expressions, for the compiler (compile.py): ``c`` is the compiler, whose fields and
coercions they use."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from sqlglot import exp

from natlens.insights.parse import Call, Duration, Field, Star, String
from natlens.insights.values import (
    _V4,
    _V6,
    AGGREGATES,
    CALENDAR,
    UNIT_MS,
    _bigint,
    _double,
    _lit,
    _numeric_literal,
    _Value,
)  # fmt: skip

if TYPE_CHECKING:
    from natlens.insights.compile import Compiler

# The subnet tests compile their arguments themselves (a block must be a quoted string).
_SPECIAL = {"isipv4insubnet", "isipv6insubnet", "isipinsubnet"}


def call(
    c: Compiler, node: Call, stats_from: Compiler | None, aliases: dict[str, _Value] | None
) -> _Value:
    name, args = node.name, node.args
    if name in AGGREGATES:
        if stats_from is None:
            raise c._error(f"{node.spelled}() is an aggregate: it goes in stats", node.pos)
        return aggregate_of(stats_from, node, c)
    if name in ("bin", "datefloor", "dateceil"):
        return period(c, node, stats_from, aliases)

    def arg(i: int) -> _Value:
        return c.expr(args[i], stats_from, aliases)

    def arity(low: int, high: int | None = None) -> None:
        high = low if high is None else high
        if not low <= len(args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise c._error(f"{node.spelled}() takes {count} argument(s)", node.pos)

    values = [arg(i) for i in range(len(args))] if name not in _SPECIAL else []
    aggregate = any(v.aggregate for v in values)
    if name == "ispresent":
        arity(1)
        return _Value(exp.Not(this=exp.Is(this=values[0].sql, expression=exp.Null())), "bool")
    if name in ("isempty", "isblank"):
        arity(1)
        text = c.text_of(values[0])
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
            kind, sqls = "str", [c.text_of(v) for v in values]
        return _Value(exp.Coalesce(this=sqls[0], expressions=sqls[1:]), kind, aggregate=aggregate)
    if name == "concat":
        arity(1, 100)
        parts = [exp.Coalesce(this=c.text_of(v), expressions=[_lit("")]) for v in values]
        return _Value(exp.ConcatWs(expressions=[_lit(""), *parts]), "str", aggregate=aggregate)
    if name == "strlen":
        arity(1)
        return _Value(
            exp.Length(this=c.text_of(values[0])), "num", aggregate=aggregate, integer=True
        )
    if name in ("toupper", "tolower"):
        arity(1)
        cls = exp.Upper if name == "toupper" else exp.Lower
        return _Value(cls(this=c.text_of(values[0])), "str", aggregate=aggregate)
    if name in ("trim", "ltrim", "rtrim"):
        arity(1, 2)
        position = {"trim": None, "ltrim": "LEADING", "rtrim": "TRAILING"}[name]
        chars = c.text_of(values[1]) if len(values) > 1 else None
        if chars is None and position:
            trimmed = exp.func("LTRIM" if name == "ltrim" else "RTRIM", c.text_of(values[0]))
            return _Value(trimmed, "str", aggregate=aggregate)
        return _Value(
            exp.Trim(this=c.text_of(values[0]), expression=chars, position=position),
            "str",
            aggregate=aggregate,
        )
    if name == "substr":
        arity(2, 3)
        start = exp.Add(this=c.num(values[1]), expression=exp.Literal.number(1))
        sql = exp.Substring(
            this=c.text_of(values[0]),
            start=_bigint(start),
            length=_bigint(c.num(values[2])) if len(values) > 2 else None,
        )
        return _Value(sql, "str", aggregate=aggregate)
    if name == "replace":
        arity(3)
        replaced = exp.Anonymous(this="REPLACE", expressions=[c.text_of(v) for v in values])
        return _Value(replaced, "str", aggregate=aggregate)
    if name == "strcontains":
        arity(2)
        found = exp.GT(
            this=exp.StrPosition(this=c.text_of(values[0]), substr=c.text_of(values[1])),
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
        operand = c.num(values[0])
        result: exp.Expr = unary(this=operand)
        if name in ("sqrt", "log"):  # outside their domain: no value (not an engine error)
            low = exp.GTE if name == "sqrt" else exp.GT
            result = exp.Case().when(low(this=operand.copy(), expression=_lit(0)), result)
        return _Value(result, "num", aggregate=aggregate)
    if name == "round":
        arity(1, 2)
        digits = c.num(values[1]) if len(values) > 1 else None
        return _Value(exp.Round(this=c.num(values[0]), decimals=digits), "num", aggregate=aggregate)
    if name in ("greatest", "least"):
        arity(1, 100)
        extreme: type[exp.Func] = exp.Greatest if name == "greatest" else exp.Least
        nums = [c.num(v) for v in values]
        return _Value(extreme(this=nums[0], expressions=nums[1:]), "num", aggregate=aggregate)
    if name == "pow":
        arity(2)
        return _Value(
            exp.Pow(this=c.num(values[0]), expression=c.num(values[1])),
            "num",
            aggregate=aggregate,
        )
    if name == "frommillis":
        arity(1)
        return _Value(c.num(values[0]), "time", aggregate=aggregate)
    if name == "tomillis":
        arity(1)
        return _Value(c.num(values[0]), "num", aggregate=aggregate)
    if name in ("isipv4insubnet", "isipv6insubnet", "isipinsubnet"):
        arity(2)
        return in_subnet(c, node, arg(0))
    if name in ("isvalidip", "isvalidipv4", "isvalidipv6"):
        arity(1)
        text = c.text_of(values[0])
        tests = []
        if name in ("isvalidip", "isvalidipv4"):
            tests.append(_valid_v4(c, text))
        if name in ("isvalidip", "isvalidipv6"):
            tests.append(exp.RegexpLike(this=text, expression=_lit(_V6)))
        valid = tests[0] if len(tests) == 1 else exp.Or(this=tests[0], expression=tests[1])
        return _Value(exp.Coalesce(this=exp.Paren(this=valid), expressions=[exp.false()]), "bool")
    raise c._error(
        f"{node.spelled}() is not a function natlens runs",
        node.pos,
        hint="docs/insights.md lists the functions",
    )


def _octets(c: Compiler, text: exp.Expr) -> list[exp.Expr]:
    return [
        exp.TryCast(
            this=exp.RegexpExtract(this=text, expression=_lit(_V4), group=_lit(i)),
            to=exp.DataType.build("BIGINT"),
        )
        for i in range(1, 5)
    ]


def _valid_v4(c: Compiler, text: exp.Expr) -> exp.Expr:
    octets = _octets(c, text)
    ok: exp.Expr = exp.RegexpLike(this=text, expression=_lit(_V4))
    for octet in octets:
        ok = exp.And(this=ok, expression=exp.LTE(this=octet, expression=_lit(255)))
    return ok


def in_subnet(c: Compiler, node: Call, value: _Value) -> _Value:
    cidr_node = node.args[1]
    if not isinstance(cidr_node, String):
        raise c._error(f"{node.spelled}() takes the block as a quoted string", cidr_node.pos)
    try:
        network = ipaddress.ip_network(cidr_node.value.strip(), strict=False)
    except ValueError:
        raise c._error(
            f"{cidr_node.value!r} is not a CIDR block", cidr_node.pos, hint="e.g. '10.0.0.0/16'"
        ) from None
    wanted = {"isipv4insubnet": 4, "isipv6insubnet": 6}.get(node.name, network.version)
    if wanted != network.version:
        return _Value(exp.false(), "bool")  # an IPv4 test of an IPv6 block holds for none
    text = c.text_of(value)
    if c.target == "athena":
        parsed = exp.TryCast(this=text, to=exp.DataType.build("IPADDRESS", dialect="trino"))
        inside = exp.Anonymous(this="CONTAINS", expressions=[_lit(str(network)), parsed])
        colon = exp.GT if network.version == 6 else exp.EQ
        family = colon(this=exp.StrPosition(this=text, substr=_lit(":")), expression=_lit(0))
        sql = exp.And(this=family, expression=exp.Coalesce(this=inside, expressions=[exp.false()]))
        return _Value(exp.Paren(this=sql), "bool")
    if network.version == 4:
        low, high = int(network.network_address), int(network.broadcast_address)
        if value.number(c.discovery) is not None:
            number = value.v4
        else:
            o1, o2, o3, o4 = _octets(c, text)
            number = exp.Case().when(
                _valid_v4(c, text),
                exp.Add(
                    this=exp.Add(
                        this=exp.Mul(this=o1, expression=_lit(16777216)),
                        expression=exp.Mul(this=o2, expression=_lit(65536)),
                    ),
                    expression=exp.Add(this=exp.Mul(this=o3, expression=_lit(256)), expression=o4),
                ),
            )
        between = exp.Between(this=number, low=_lit(low), high=_lit(high))
        return _Value(exp.Coalesce(this=exp.Paren(this=between), expressions=[exp.false()]), "bool")
    # IPv6: which of the logs' addresses are in the block is decided here, exactly.
    if c.distinct is None or not isinstance(node.args[0], Field) or node.args[0].name in c.fields:
        raise c._error(
            f"{node.spelled}() with an IPv6 block needs the logs' addresses",
            node.pos,
            hint="run the query (not --print-sql), on a discovered address field",
        )
    addresses: list[str] = []
    base = c._base_sql.get(value.sql.name) if isinstance(value.sql, exp.Column) else None
    if base is None:
        raise c._error(f"{node.spelled}() with an IPv6 block reads a discovered field", node.pos)
    for address in c.distinct(base.copy(), c.table.copy()):
        try:
            if ipaddress.ip_address(address) in network:
                addresses.append(address)
        except ValueError:
            continue
    member: exp.Expr = (
        exp.In(this=text, expressions=[_lit(a) for a in addresses]) if addresses else exp.false()
    )
    return _Value(exp.Coalesce(this=exp.Paren(this=member), expressions=[exp.false()]), "bool")


def period(
    c: Compiler, node: Call, stats_from: Compiler | None, aliases: dict[str, _Value] | None
) -> _Value:
    args = list(node.args)
    if node.name == "bin":
        if len(args) != 1:
            raise c._error("bin() takes one period: bin(5m)", node.pos)
        frame = stats_from or c
        time = frame.lookup("@timestamp", node.pos)
    else:
        if len(args) != 2:
            raise c._error(f"{node.spelled}() takes a time and a period", node.pos)
        time = c.expr(args[0], stats_from, aliases)
        if time.kind not in ("time", "num"):
            raise c._error(f"{node.spelled}() takes a time (@timestamp)", args[0].pos)
    duration = args[-1]
    if not isinstance(duration, Duration):
        raise c._error("a period is a number and a unit: 5m, 1h, 1d", duration.pos)
    ceil = node.name == "dateceil"
    if duration.unit in CALENDAR:
        if duration.amount != 1:
            raise c._error(
                "natlens bins by months, quarters and years one at a time",
                duration.pos,
                hint=f"write 1{duration.unit}",
            )
        if ceil:
            raise c._error("dateceil() by months, quarters or years is not supported", duration.pos)
        return _Value(_calendar(c, time.sql, CALENDAR[duration.unit]), "time")
    size = duration.amount * UNIT_MS[duration.unit]
    if size <= 0 or size != int(size):
        raise c._error("a period is at least 1 ms, in whole milliseconds", duration.pos)
    step = _lit(int(size))
    cls = exp.Ceil if ceil else exp.Floor
    bucket = exp.Mul(
        this=_bigint(cls(this=exp.Div(this=_double(time.sql), expression=step))),
        expression=step,
    )
    return _Value(bucket, "time")


def _calendar(c: Compiler, ms: exp.Expr, unit: str) -> exp.Expr:
    stamp = exp.UnixToTime(this=_bigint(ms), scale=exp.UnixToTime.MILLIS)
    truncated = exp.TimestampTrunc(this=stamp, unit=exp.var(unit.upper()))
    if c.dialect == "spark":
        return exp.Anonymous(this="UNIX_MILLIS", expressions=[truncated])
    if c.dialect == "athena":
        return _bigint(
            exp.Mul(
                this=exp.Anonymous(this="TO_UNIXTIME", expressions=[truncated]),
                expression=_lit(1000),
            )
        )
    return exp.Anonymous(this="EPOCH_MS", expressions=[truncated])


# -- aggregates (c: the frame before stats; outer: the stats frame being built)
def aggregate_of(c: Compiler, node: Call, outer: Compiler) -> _Value:
    name, args = node.name, node.args
    if name == "count" and (not args or isinstance(args[0], Star)):
        return _Value(exp.Count(this=exp.Star()), "num", aggregate=True, integer=True)
    if not args:
        raise c._error(f"{node.spelled}() takes a field", node.pos)
    value = c.expr(args[0])
    if value.aggregate:
        raise c._error("an aggregate cannot hold another", args[0].pos)
    if name == "count":
        return _Value(exp.Count(this=value.sql), "num", aggregate=True)
    if name == "count_distinct":
        return _Value(exp.Count(this=exp.Distinct(expressions=[value.sql])), "num", aggregate=True)
    if name in ("sum", "avg", "stddev"):
        cls = {"sum": exp.Sum, "avg": exp.Avg, "stddev": exp.StddevSamp}[name]
        return _Value(cls(this=c.num(value)), "num", aggregate=True)
    if name in ("min", "max", "sortsfirst", "sortslast"):
        cls = exp.Min if name in ("min", "sortsfirst") else exp.Max
        sql = value.sql if value.kind in ("num", "time", "str") else c.num(value)
        return _Value(cls(this=sql), value.kind if value.kind != "any" else "num", aggregate=True)
    if name == "pct":
        if len(args) != 2 or _numeric_literal(args[1]) is None:
            raise c._error("pct() takes a field and a percentile: pct(bytes, 95)", node.pos)
        share = float(_numeric_literal(args[1]) or 0) / 100
        if not 0 <= share <= 1:
            raise c._error("a percentile is between 0 and 100", args[1].pos)
        function = {
            "duckdb": "QUANTILE_CONT",
            "spark": "PERCENTILE",
            "athena": "APPROX_PERCENTILE",
        }[c.dialect]
        sql = exp.Anonymous(this=function, expressions=[_double(c.num(value)), _lit(share)])
        return _Value(sql, "num", aggregate=True)
    # earliest, latest: the value of the event with the first or last @timestamp
    time = c.lookup("@timestamp", node.pos)
    cls = exp.ArgMin if name == "earliest" else exp.ArgMax
    return _Value(cls(this=value.sql, expression=time.sql), value.kind, aggregate=True)


# -- ordering
