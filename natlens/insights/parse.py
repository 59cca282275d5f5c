"""A Logs Insights query, parsed by lark (insights.lark) into commands and expressions.

Every node keeps where it starts in the query, so that an error can point there; an item of
``stats`` or ``fields`` without ``as`` keeps its text, which CloudWatch uses as its column name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import lark
from lark import Lark, Token, Transformer, v_args

from natlens.errors import UsageError

# Commands CloudWatch has that natlens does not run (docs/insights.md says why).
UNSUPPORTED = {
    "pattern": "it clusters events with CloudWatch's own model, which natlens does not have",
    "diff": "it compares with an earlier time range of the log group",
    "anomaly": "it needs CloudWatch's anomaly model",
    "unmask": "natlens never sees masked data",
    "filterindex": "it selects log groups by CloudWatch's field indexes",
    "unnest": "flow log and Network Firewall fields hold no lists to unnest",
    "lookup": "it reads a CloudWatch lookup table",
    "join": "it joins log groups of an account",
    "addtotals": "not yet",
}


@dataclass
class Node:
    pos: int = field(default=0, kw_only=True)  # offset in the query text


@dataclass
class Number(Node):
    value: float | int


@dataclass
class String(Node):
    value: str


@dataclass
class Regex(Node):
    pattern: str


@dataclass
class Duration(Node):
    amount: float
    unit: str  # ms, s, m, h, d, w, mo, q, y


@dataclass
class Field(Node):
    name: str


@dataclass
class Star(Node):
    pass


@dataclass
class ListOf(Node):
    items: list[Node]


@dataclass
class Call(Node):
    name: str  # lower case
    args: list[Node]
    spelled: str = ""


@dataclass
class Unary(Node):
    op: str  # not, -, +
    operand: Node


@dataclass
class Binary(Node):
    op: str  # or and = != < <= > >= like notlike in notin + - * / % ^
    left: Node
    right: Node


@dataclass
class Item:
    expr: Node
    alias: str | None
    text: str  # the item's own text, spaces as written

    @property
    def name(self) -> str:
        return self.alias or self.text


@dataclass
class Command:
    kind: str
    pos: int
    items: list[Item] = field(default_factory=list)
    by: list[Item] = field(default_factory=list)
    condition: Node | None = None
    orders: list[tuple[Node, bool, str]] = field(default_factory=list)  # expr, descending, text
    count: int = 0
    source: str = "@message"
    pattern: Glob | Regex | None = None
    names: list[str] = field(default_factory=list)


@dataclass
class Glob(Node):
    text: str


_UNITS = {
    "ms": ("ms", "msec", "msecs", "millisecond", "milliseconds"),
    "s": ("s", "sec", "secs", "second", "seconds"),
    "m": ("m", "min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "d": ("d", "day", "days"),
    "w": ("w", "week", "weeks"),
    "mo": ("mo", "month", "months"),
    "q": ("q", "quarter", "quarters"),
    "y": ("y", "yr", "yrs", "year", "years"),
}
UNIT_OF = {spelling: unit for unit, spellings in _UNITS.items() for spelling in spellings}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([a-z]+)", re.IGNORECASE)


@cache
def _parser() -> Lark:
    """The parser. Building its LALR tables takes a quarter of a second, so lark keeps them in
    the user's cache directory (checked against the grammar and lark's version each time)."""
    grammar = resources.files("natlens.insights").joinpath("insights.lark").read_text()
    options: dict[str, Any] = {"parser": "lalr", "lexer": "contextual", "propagate_positions": True}
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(root, "natlens")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        cached = os.path.join(directory, f"insights-lark-{lark.__version__}.cache")
        if os.access(directory, os.W_OK) and os.stat(directory).st_uid == os.getuid():
            options["cache"] = cached
    except OSError:
        pass  # no cache directory: the tables are built each time
    return Lark(grammar, **options)


def _unquote(token: str) -> str:
    """A string literal's value: its quotes gone, ``\\x`` read as ``x`` (``\\n`` and ``\\t`` as
    a newline and a tab)."""
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), body)


def _name(token: Token | str) -> str:
    text = str(token)
    return text[1:-1] if text.startswith("`") else text


@v_args(meta=True)
class _Build(Transformer[Token, Any]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def _span(self, meta: Any) -> str:
        return " ".join(self.text[meta.start_pos : meta.end_pos].split())

    # -- atoms
    def number(self, meta: Any, children: list[Token]) -> Number:
        text = str(children[0])
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return Number(value, pos=meta.start_pos)

    def string(self, meta: Any, children: list[Token]) -> String:
        return String(_unquote(str(children[0])), pos=meta.start_pos)

    def regex(self, meta: Any, children: list[Token]) -> Regex:
        return Regex(str(children[0])[1:-1].replace("\\/", "/"), pos=meta.start_pos)

    def glob(self, meta: Any, children: list[Token]) -> Glob:
        return Glob(_unquote(str(children[0])), pos=meta.start_pos)

    def duration(self, meta: Any, children: list[Token]) -> Duration:
        match = _DURATION.fullmatch(str(children[0]))
        assert match is not None
        return Duration(float(match[1]), UNIT_OF[match[2].lower()], pos=meta.start_pos)

    def name(self, meta: Any, children: list[Token]) -> str:
        return _name(children[0])

    def field(self, meta: Any, children: list[str]) -> Field:
        return Field(children[0], pos=meta.start_pos)

    def star(self, meta: Any, children: list[Token]) -> Star:
        return Star(pos=meta.start_pos)

    def listing(self, meta: Any, children: list[Node | None]) -> ListOf:
        return ListOf([c for c in children if c is not None], pos=meta.start_pos)

    def call(self, meta: Any, children: list[Any]) -> Call:
        name, *args = children
        return Call(
            str(name).lower(), [a for a in args if a is not None], str(name), pos=meta.start_pos
        )

    # -- operators
    def neg(self, meta: Any, children: list[Any]) -> Unary:
        return Unary(str(children[0]), children[1], pos=meta.start_pos)

    def not_(self, meta: Any, children: list[Any]) -> Unary:
        return Unary("not", children[1], pos=meta.start_pos)

    def _binary(self, meta: Any, op: str, left: Node, right: Node) -> Binary:
        return Binary(op, left, right, pos=meta.start_pos)

    def or_(self, meta: Any, children: list[Any]) -> Binary:
        return self._binary(meta, "or", children[0], children[2])

    def and_(self, meta: Any, children: list[Any]) -> Binary:
        return self._binary(meta, "and", children[0], children[2])

    def compare(self, meta: Any, children: list[Any]) -> Binary:
        return self._binary(meta, str(children[1]), children[0], children[2])

    def like(self, meta: Any, children: list[Any]) -> Binary:
        return self._binary(meta, "like", children[0], children[2])

    def not_like(self, meta: Any, children: list[Any]) -> Binary:
        return self._binary(meta, "notlike", children[0], children[3])

    def in_(self, meta: Any, children: list[Any]) -> Binary:
        return self._binary(meta, "in", children[0], children[2])

    def not_in(self, meta: Any, children: list[Any]) -> Binary:
        return self._binary(meta, "notin", children[0], children[3])

    def arith(self, meta: Any, children: list[Any]) -> Binary:
        return self._binary(meta, str(children[1]), children[0], children[2])

    # -- commands
    def item(self, meta: Any, children: list[Any]) -> Item:
        expr = children[0]
        alias = children[2] if len(children) > 2 else None
        end = meta.end_pos
        if alias is not None:  # the text is the expression's alone
            text = self.text[meta.start_pos : end]
            text = re.split(r"\s+as\s+", text, flags=re.IGNORECASE)[0]
            return Item(expr, alias, " ".join(text.split()))
        return Item(expr, None, self._span(meta))

    def order(self, meta: Any, children: list[Any]) -> tuple[Node, bool, str]:
        direction = children[1]
        text = self.text[meta.start_pos : meta.end_pos]
        if direction is not None:
            text = text[: text.lower().rfind(str(direction).lower())]
        return children[0], str(direction or "asc").lower() == "desc", " ".join(text.split())

    def fields(self, meta: Any, children: list[Any]) -> Command:
        return Command("fields", meta.start_pos, items=children[1:])

    def display(self, meta: Any, children: list[Any]) -> Command:
        return Command("display", meta.start_pos, items=children[1:])

    def filter(self, meta: Any, children: list[Any]) -> Command:
        return Command("filter", meta.start_pos, condition=children[1])

    def stats(self, meta: Any, children: list[Any]) -> Command:
        items: list[Item] = []
        by: list[Item] = []
        seen_by = False
        for child in children[1:]:
            if isinstance(child, Token):
                seen_by = True
            elif isinstance(child, Item):
                (by if seen_by else items).append(child)
        return Command("stats", meta.start_pos, items=items, by=by)

    def sort(self, meta: Any, children: list[Any]) -> Command:
        orders = [c for c in children[1:] if isinstance(c, tuple)]
        return Command("sort", meta.start_pos, orders=orders)

    def limit(self, meta: Any, children: list[Any]) -> Command:
        return Command("limit", meta.start_pos, count=int(str(children[-1])))

    def parse(self, meta: Any, children: list[Any]) -> Command:
        _, source, pattern, _as, *names = children
        return Command(
            "parse",
            meta.start_pos,
            source=source or "@message",
            pattern=pattern,
            names=[n for n in names if n is not None],
        )

    def dedup(self, meta: Any, children: list[Any]) -> Command:
        return Command("dedup", meta.start_pos, names=children[1:])

    def source(self, meta: Any, children: list[Any]) -> Command:
        return Command("source", meta.start_pos)

    def start(self, meta: Any, children: list[Command]) -> list[Command]:
        return children


def parse(text: str) -> list[Command]:
    """The query's commands, in order. A query natlens cannot read raises UsageError with the
    line and column, the text there and what was expected."""
    if not any(line.strip() and not line.strip().startswith("#") for line in text.splitlines()):
        raise UsageError("the query is empty", hint="e.g. 'stats count(*) by action'")
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        raise pointed(text, _syntax_error(text, exc)) from None
    commands: list[Command] = _Build(text).transform(tree)
    return commands


def where(text: str, pos: int) -> str:
    """``line L, column C`` of a position in the query."""
    line_no = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line_no}, column {column}"


def pointed(text: str, error: UsageError) -> UsageError:
    """The error with the query's line shown under it and a caret at the place it names
    (``(line L, column C)`` in its message)."""
    found = re.search(r"\(line (\d+), column (\d+)\)", error.message)
    if not found:
        return error
    lines = text.splitlines() or [""]
    number, column = int(found[1]), int(found[2])
    line = lines[min(number, len(lines)) - 1].expandtabs(1)
    error.message += f"\n  {line}\n  {' ' * (column - 1)}^"
    return error


def _expected(exc: lark.exceptions.UnexpectedInput) -> str:
    names = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or [])
    words = {
        "_PIPE": "|", "COMPARE": "a comparison", "ADD": "+ or -", "MUL": "/ or %",
        "QUOTED_NAME": "a `field name`", "STAR": "*", "POW": "^", "MATCHES": "=~",
        "STRING": "a quoted string",
        "REGEX": "a /regular expression/", "NAME": "a field name", "NUMBER": "a number",
        "INT": "a whole number", "LPAR": "(", "RPAR": ")", "COMMA": ",", "LSQB": "[",
        "RSQB": "]", "DURATION": "a period (5m, 1h)", "$END": "the end of the query",
    }  # fmt: skip
    shown = []
    for name in names:
        word = words.get(name, name.lower().rstrip("0123456789."))
        if word not in shown and not name.startswith("__"):
            shown.append(word)
    return ", ".join(shown[:8])


def _syntax_error(text: str, exc: lark.exceptions.UnexpectedInput) -> UsageError:
    pos = getattr(exc, "pos_in_stream", None) or 0
    token = getattr(exc, "token", None)
    if isinstance(token, Token) and token.type == "$END":
        pos = len(text.rstrip())
    found = str(token) if token is not None else text[pos : pos + 1]
    if isinstance(token, Token) and token.type == "$END":
        found = ""
    word = re.match(r"[A-Za-z]+", text[pos:])
    previous = text[:pos].rstrip()
    if word and (not previous or previous.endswith("|")) and word[0].lower() in UNSUPPORTED:
        return UsageError(
            f"the query's command {word[0]!r} ({where(text, pos)}) is not one natlens runs",
            hint=f"{UNSUPPORTED[word[0].lower()]}; docs/insights.md lists the commands natlens "
            "runs",
        )
    if word and (not previous or previous.endswith("|")):
        return UsageError(
            f"the query has no command {word[0]!r} ({where(text, pos)})",
            hint="a command is one of fields, display, filter, stats, sort, limit, parse, dedup",
        )
    what = f"{found!r}" if found else "the end of the query"
    expected = _expected(exc)
    return UsageError(
        f"the query cannot be read at {what} ({where(text, pos)})",
        hint=f"expected {expected}" if expected else "see docs/insights.md for the syntax",
    )


def field_names(node: Any) -> list[str]:
    """The fields an expression names, in order."""
    if isinstance(node, Field):
        return [node.name]
    names: list[str] = []
    if isinstance(node, Node):
        for value in vars(node).values():
            if isinstance(value, list):
                for item in value:
                    names += field_names(item)
            else:
                names += field_names(value)
    return names
