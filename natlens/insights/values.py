"""What the Logs Insights compiler (compile.py) works with: compiled values, literals, the
query's constants, and its patterns made regular expressions for DuckDB, Spark and Athena alike."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from natlens.errors import UsageError
from natlens.insights.fields import Discovery
from natlens.insights.parse import Node, Number, String

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
    integer: bool = False  # a whole number for sure (a field of the logs, a count ...)

    @property
    def whole(self) -> bool:
        return (
            self.integer
            or self.kind == "time"
            or (self.kind == "num" and self.discovered is not None)
        )

    def number(self, discovery: Discovery) -> exp.Expr | None:
        """An address field's IPv4 integer column (NULL for IPv6), when it has one."""
        if self.v4 is None and self.discovered is not None:
            self.v4 = discovery.v4(self.discovered)
        return self.v4


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


_NAMED_GROUP = re.compile(r"\(\?P?<([A-Za-z_@][A-Za-z0-9_@.]*)>")


def _pieces(pattern: str) -> Iterator[tuple[str, str]]:
    """A regular expression cut where its capturing groups open: ``("group", "(")``,
    ``("named", "(?<name>")`` and ``("text", ...)`` for the rest, escapes and character classes
    (whose ``(`` are characters) kept whole."""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            yield "text", pattern[i : i + 2]
            i += 2
        elif char == "[":
            end = i + 2 if pattern.startswith("[]", i) else i + 1
            while end < len(pattern) and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            yield "text", pattern[i : end + 1]
            i = end + 1
        elif char == "(" and (named := _NAMED_GROUP.match(pattern, i)):
            yield "named", named[0]
            i = named.end()
        elif char == "(" and not pattern.startswith("(?", i):
            yield "group", "("
            i += 1
        else:
            yield "text", char
            i += 1


def _named_groups(
    pattern: str, pos: int, error: Callable[..., UsageError]
) -> tuple[str, dict[str, int]]:
    """``(?<name>...)`` groups made plain groups (RE2 and Java read those alike), with the
    number of each: the fields parse creates."""
    out, names, number = [], {}, 0
    for kind, text in _pieces(pattern):
        if kind != "text":
            number += 1
            if kind == "named":
                names[text[text.index("<") + 1 : -1]] = number
            text = "("
        out.append(text)
    if not names:
        raise error("a parse regular expression names its fields: (?<name>...)", pos)
    return "".join(out), names


def _only_group(regex: str, keep: int) -> str:
    """``regex`` with every capturing group but the ``keep``-th made non-capturing."""
    out, number = [], 0
    for kind, text in _pieces(regex):
        if kind != "text":
            number += 1
            text = "(" if number == keep else "(?:"
        out.append(text)
    return "".join(out)


def _plain_groups(pattern: str) -> str:
    """Named groups made plain ones (``(?<name>`` -> ``(``), for engines that name them
    otherwise."""
    return re.sub(r"(?<!\\)\(\?P?<[A-Za-z_@][A-Za-z0-9_@.]*>", "(", pattern)


def regex_problem(pattern: str, dialect: str) -> str | None:
    """What is wrong with a query's regular expression, checked before any engine sees it:
    CloudWatch's (Hyperscan) and DuckDB's (RE2) have no lookaround and no back-references; the
    rest must compile (in Python, and in DuckDB's RE2 for DuckDB)."""
    if re.search(r"\(\?<?[=!]|\\[1-9]|\\k<", pattern):
        return "lookaround and back-references are not in CloudWatch's regular expressions"
    try:
        re.compile(re.sub(r"\(\?<(?=[A-Za-z_@])", "(?P<", pattern).replace("@", "_"))
    except re.error as exc:
        return f"the regular expression cannot be read: {exc}"
    if dialect == "duckdb":
        import duckdb

        probe = exp.RegexpLike(this=_lit(""), expression=_lit(_plain_groups(pattern)))
        try:
            duckdb.connect().execute(f"SELECT {probe.sql('duckdb')}")
        except duckdb.Error as exc:
            return f"the regular expression cannot be read: {str(exc).splitlines()[0]}"
    return None


def athena_window(since: int | None, until: int | None) -> list[exp.Expr]:
    """--since/--until on AWS's Athena table: its ``date`` partition (so Athena reads only
    those days) and the records' times."""
    from datetime import UTC, datetime

    def day(seconds: int) -> exp.Expr:
        text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")
        return exp.Cast(this=_lit(text), to=exp.DataType.build("DATE"))

    def column(name: str) -> exp.Column:
        return exp.column(exp.to_identifier(name, quoted=True))

    conditions: list[exp.Expr] = []
    if since is not None:
        conditions += [exp.GTE(this=column("date"), expression=day(since)),
                       exp.GTE(this=column("end"), expression=_lit(int(since)))]  # fmt: skip
    if until is not None:
        conditions += [exp.LTE(this=column("date"), expression=day(until)),
                       exp.LTE(this=column("start"), expression=_lit(int(until)))]  # fmt: skip
    return conditions
