"""Flow log files read where they lie (``--in-place``), as SQL: AWS-delivered Parquet files and
text files with a header line become the engine's ``flows`` table through a view, never copied
into a case. Which files are read so is decided in sources/inplace.py (``plan``).

The view does to each record what ingest does (vpc_flow.py, flow_columns.py), in SQL that runs
on DuckDB and on Spark: the same fields become the same typed columns (``-`` is NULL), every
value is checked as ingest checks it and a row with a value ingest would refuse is left out and
counted (``skipped``), ``start`` and ``end`` in milliseconds become seconds, IPv4 addresses also
become numbers, and each row names its file (the same path or ``s3://`` URI ingest records)
and, for Parquet, its row.

Two things ingest knows and a view cannot: a text file's line numbers (DuckDB's CSV reader
gives none, so ``line`` is NULL for text read in place), and a line split by runs of spaces
(AWS writes one space; a line with another count of fields is skipped and counted). A file the
engine cannot read (a damaged Parquet page or gzip stream) is left out whole and named
(``InPlace.unreadable``), where ``natlens ingest`` keeps what comes before the damage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from natlens.errors import InputError
from natlens.formats.flow_columns import _CONTROL, _INT32_MAX, RANGES, VOCABULARY
from natlens.schema import (
    ADDRESS_INT_SUFFIX,
    FIELDS_BY_NAME,
    FLOWS_SCHEMA,
    Kind,
)

if TYPE_CHECKING:
    from natlens.sources.units import SourceOptions, Unit

PARQUET, TEXT = "parquet", "text"
# Columns every raw relation gives besides the file's own: the source, the row (Parquet: from
# 0; text: NULL) and, on Spark, a line the CSV reader could not split into the header's fields.
SOURCE, ROW, CORRUPT = "natlens_source", "natlens_row", "natlens_corrupt"
# The first field whose value ingest would refuse, or "line": the view keeps rows without one.
BAD = "natlens_bad"


@dataclass(frozen=True)
class Column:
    """One column of a group's files: its name there, the field it holds, how it is stored."""

    raw: str
    field: str  # AWS's name ("log-status"); unknown fields keep the file's name
    stored: str  # "int", "text" or "nested"


@dataclass
class Group:
    """Files read by one statement: same kind and the same columns."""

    kind: str  # PARQUET or TEXT
    columns: tuple[Column, ...]
    files: list[str] = field(default_factory=list)  # local paths or s3:// URIs (the sources)
    compressed: bool = False  # text: gzip

    @property
    def fields(self) -> list[str]:
        return [c.field for c in self.columns if c.stored != "nested" or c.field in FIELDS_BY_NAME]


@dataclass
class InPlace:
    groups: list[Group]
    others: list[Unit]  # read by ingest into the temporary case
    s3: SourceOptions | None = None  # how to reach the s3:// files, when there are some
    passed_over: int = 0  # files and folders outside --since/--until by their names' dates
    not_flow_logs: list[str] = field(default_factory=list)  # Parquet of other columns
    # files the engine could not read, left out, and what it said (engine/*.py)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def files(self) -> int:
        return sum(len(g.files) for g in self.groups)

    def leave_out(self, bad: dict[str, str]) -> None:
        """Leave out the files (sources) in ``bad``, keeping why; a group left with no file
        goes. InputError when no file is left to read."""
        for group in self.groups:
            group.files = [f for f in group.files if f not in bad]
        self.groups = [g for g in self.groups if g.files]
        self.unreadable += sorted(bad.items())
        if not self.groups:
            first, why = self.unreadable[0]
            raise InputError(
                f"no file read in place could be read ({len(self.unreadable):,}; {first}: {why})",
                hint="natlens ingest SOURCE... --case DIR keeps the lines before the damage in "
                "a text file",
            )


def named_file(message: str, files: list[tuple[str, str]]) -> str | None:
    """The source whose path (``files``: the path the engine was given, the source) an
    engine's error message names, the longest if several do (a.log and a.log.1)."""
    from urllib.parse import quote

    named = [
        (len(read), source)
        for read, source in files
        for form in {read, source, quote(read), read.removeprefix("s3://")}
        if form and form in message
    ]
    return max(named)[1] if named else None


# -- the view ----------------------------------------------------------------------------------

_OCTET = "(0|[1-9][0-9]{0,2})"
_IPV4 = f"^{_OCTET}[.]{_OCTET}[.]{_OCTET}[.]{_OCTET}$"
_INT64_MAX_TEXT = str(2**63 - 1)


def ipv6_pattern() -> str:
    """A regular expression for IPv6 text as Python's ``ipaddress`` reads it (no zone), written
    with no backslash, so that it means the same to RE2 (DuckDB) and Java (Spark)."""
    h = "[0-9A-Fa-f]{1,4}"
    octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    v4 = f"{octet}[.]{octet}[.]{octet}[.]{octet}"

    def run(n: int) -> str:  # n groups joined by ':'
        return "" if n == 0 else h if n == 1 else f"{h}(:{h}){{{n - 1}}}"

    forms = [f"({h}:){{7}}{h}", f"({h}:){{6}}{v4}"]
    for left in range(8):
        for right in range(8 - left):
            forms.append(f"{run(left)}::{run(right)}")
            if left + right <= 5:
                forms.append(f"{run(left)}::{run(right)}{':' if right else ''}{v4}")
    return "^(" + "|".join(forms) + ")$"


_IPV6 = ipv6_pattern()


def _lit(value: object) -> exp.Expr:
    if isinstance(value, str):
        return exp.Literal.string(value)
    return exp.Literal.number(value)


def _f(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.func(name, *args, dialect="duckdb")


def _not(condition: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.paren(condition, copy=False))


def _is_null(value: exp.Expr) -> exp.Expr:
    return exp.Is(this=value, expression=exp.Null())


def _case(*whens: tuple[exp.Expr, exp.Expr], default: exp.Expr) -> exp.Expr:
    case = exp.Case()
    for condition, value in whens:
        case = case.when(condition, value)
    return case.else_(default)


def _kind(column: Column) -> Kind:
    spec = FIELDS_BY_NAME.get(column.field)
    return spec.kind if spec else Kind.STRING


def _cleaned(column: Column, kind_of_file: str) -> exp.Expr:
    """Layer 1: the file's value, AWS's NULL ('-') made NULL; text unless stored as a number
    that the field holds as one; nested values as whether there is one."""
    raw = exp.column(column.raw, quoted=True)
    kind = _kind(column)
    if column.stored == "nested":
        return _not(_is_null(raw))
    if column.stored == "int" and kind in (Kind.INT32, Kind.INT64):
        return exp.cast(raw, "BIGINT")
    text = exp.cast(raw, "VARCHAR")
    free_text = kind is Kind.STRING and column.field not in VOCABULARY
    # pandas writes "None" and "nan" for missing numbers in Parquet
    missing = ["-"] if free_text or kind_of_file == TEXT else ["-", "None", "nan", "NaN", ""]
    return _case(
        (
            exp.In(this=text, expressions=[_lit(m) for m in missing]),
            exp.cast(exp.Null(), "VARCHAR"),
        ),
        default=text.copy(),
    )


def _typed(column: Column, t: exp.Expr) -> tuple[exp.Expr, exp.Expr, exp.Expr | None]:
    """Layer 2, from layer 1's ``t``: the typed value (NULL when missing or bad), whether the
    value is bad (never NULL), and for addresses the IPv4 number."""
    kind, name = _kind(column), column.field
    if column.stored == "nested":  # a flow log field as a list, struct or map: refused
        return exp.Null(), t.copy(), None
    present = _not(_is_null(t.copy()))
    if column.stored == "int" and kind in (Kind.INT32, Kind.INT64):
        low, high = RANGES.get(name, (0, _INT32_MAX if kind is Kind.INT32 else 2**63 - 2))
        bad = exp.and_(present, _not(exp.Between(this=t.copy(), low=_lit(low), high=_lit(high))))
        return t.copy(), bad, None
    if kind is Kind.STRING:
        bad = exp.or_(
            _f("regexp_matches", t.copy(), _lit(_CONTROL.replace("\x00", "\x01"))),
            exp.GT(this=_f("strpos", t.copy(), _f("chr", _lit(0))), expression=_lit(0)),
        )
        if name in VOCABULARY:
            known = exp.In(this=t.copy(), expressions=[_lit(v) for v in VOCABULARY[name]])
            bad = exp.or_(bad, _not(known))
        return t.copy(), exp.and_(present, exp.paren(bad)), None
    if kind is Kind.ADDRESS:
        octets = [
            exp.TryCast(
                this=_f("split_part", t.copy(), _lit("."), _lit(i)),
                to=exp.DataType.build("BIGINT"),
            )
            for i in range(1, 5)
        ]
        is_v4 = exp.and_(
            _f("regexp_matches", t.copy(), _lit(_IPV4)),
            *[exp.LTE(this=o.copy(), expression=_lit(255)) for o in octets],
        )
        number = exp.Add(
            this=exp.Add(
                this=exp.Mul(this=octets[0].copy(), expression=_lit(1 << 24)),
                expression=exp.Mul(this=octets[1].copy(), expression=_lit(1 << 16)),
            ),
            expression=exp.Add(
                this=exp.Mul(this=octets[2].copy(), expression=_lit(1 << 8)),
                expression=octets[3].copy(),
            ),
        )
        v4 = _case((is_v4, number), default=exp.cast(exp.Null(), "BIGINT"))
        # the long IPv6 pattern only where the text is not IPv4
        ok = _case((is_v4.copy(), exp.true()), default=_f("regexp_matches", t.copy(), _lit(_IPV6)))
        return t.copy(), exp.and_(present, _not(ok)), v4
    # whole numbers written as text
    shaped = exp.and_(
        _f("regexp_matches", t.copy(), _lit("^[0-9]{1,19}$")),
        _not(
            exp.and_(
                exp.EQ(this=_f("length", t.copy()), expression=_lit(len(_INT64_MAX_TEXT))),
                exp.GT(this=t.copy(), expression=_lit(_INT64_MAX_TEXT)),
            )
        ),
    )
    typed = exp.TryCast(this=t.copy(), to=exp.DataType.build("BIGINT"))
    low, high = RANGES.get(name, (0, _INT32_MAX if kind is Kind.INT32 else 2**63 - 1))
    ok = exp.and_(shaped, exp.Between(this=typed, low=_lit(low), high=_lit(high)))
    value = _case((ok, typed.copy()), default=exp.cast(exp.Null(), "BIGINT"))
    return value, exp.and_(present, _not(ok)), None


def group_select(group: Group, raw: str, spark: bool = False) -> exp.Select:
    """The canonical flows columns of ``group``'s rows, read from relation ``raw`` (the files'
    columns, ``natlens_source``, ``natlens_row`` and on Spark's text ``natlens_corrupt``), and
    ``natlens_bad``: the first field, in the file's order, whose value ingest would refuse
    (``end`` for a capture window that ends before it starts; ``line`` for a line Spark could
    not split), or NULL for a record. Three layers keep each expression small: the values
    cleaned, then typed and checked, then the table's columns."""
    columns = list(group.columns)
    keep = [exp.column(SOURCE), exp.column(ROW)]
    if spark and group.kind == TEXT:
        keep.append(exp.column(CORRUPT))
    first = exp.select(
        *keep, *[exp.alias_(_cleaned(c, group.kind), f"c{i}") for i, c in enumerate(columns)]
    ).from_(raw)
    second_columns: list[exp.Expr] = [c.copy() for c in keep]
    by_field: dict[str, int] = {}
    for i, column in enumerate(columns):
        typed, bad, v4 = _typed(column, exp.column(f"c{i}"))
        if column.field in ("start", "end"):  # milliseconds (past 2^31 s) to seconds, as ingest
            typed = _case(
                (exp.GT(this=typed.copy(), expression=_lit(2**31)),
                 exp.IntDiv(this=typed.copy(), expression=_lit(1000))),
                default=typed,
            )  # fmt: skip
        second_columns += [exp.alias_(typed, f"v{i}"), exp.alias_(bad, f"b{i}")]
        if v4 is not None:
            second_columns.append(exp.alias_(v4, f"a{i}"))
        by_field.setdefault(column.field, i)
    second = exp.select(*second_columns).from_(first.subquery("cleaned"))

    out: list[exp.Expr] = []
    for schema_field in FLOWS_SCHEMA:
        name = schema_field.name
        value: exp.Expr = exp.Null()
        field_name = name.replace("_", "-")
        if name.endswith(ADDRESS_INT_SUFFIX):
            base = name[: -len(ADDRESS_INT_SUFFIX)].replace("_", "-")
            if base in by_field:
                value = exp.column(f"a{by_field[base]}")
        elif field_name in by_field and field_name in FIELDS_BY_NAME:
            value = exp.column(f"v{by_field[field_name]}")
        elif name == "extra":
            value = _extra([(c, i) for i, c in enumerate(columns)
                            if c.field not in FIELDS_BY_NAME and c.stored != "nested"])  # fmt: skip
        elif name == "source":
            value = exp.column(SOURCE)
        elif name == "line":
            value = (
                exp.Add(this=exp.column(ROW), expression=_lit(1))
                if group.kind == PARQUET
                else exp.column(ROW)
            )
        out.append(exp.alias_(exp.cast(value, _sql_type(schema_field.type)), name, quoted=True))
    whens: list[tuple[exp.Expr, exp.Expr]] = []
    if spark and group.kind == TEXT:
        whens.append((_not(_is_null(exp.column(CORRUPT))), _lit("line")))
    for i, column in enumerate(columns):
        if column.field in FIELDS_BY_NAME or column.stored != "nested":
            whens.append((_f("coalesce", exp.column(f"b{i}"), exp.false()), _lit(column.field)))
    if "start" in by_field and "end" in by_field:
        later = exp.GT(
            this=exp.column(f"v{by_field['start']}"), expression=exp.column(f"v{by_field['end']}")
        )
        whens.append((_f("coalesce", later, exp.false()), _lit("end")))
    out.append(exp.alias_(_case(*whens, default=exp.cast(exp.Null(), "VARCHAR")), BAD))
    return exp.select(*out).from_(second.subquery("checked"))


def _extra(unknown: list[tuple[Column, int]]) -> exp.Expr:
    """Unknown fields as ingest keeps them: {name: value}, NULL values left out."""
    if not unknown:
        return exp.Null()
    value = exp.to_identifier("value", quoted=True)
    entries = [
        exp.Struct(
            expressions=[
                exp.PropertyEQ(
                    this=exp.to_identifier("key", quoted=True), expression=_lit(c.field)
                ),
                exp.PropertyEQ(
                    this=value.copy(), expression=exp.cast(exp.column(f"v{i}"), "VARCHAR")
                ),
            ]
        )
        for c, i in unknown
    ]
    entry = exp.to_identifier("e")
    keep = exp.Lambda(
        this=_not(_is_null(exp.Dot(this=exp.column(entry), expression=value.copy()))),
        expressions=[entry],
    )
    return _f("map_from_entries", _f("list_filter", exp.Array(expressions=entries), keep))


def _sql_type(dtype: pa.DataType) -> str:
    if pa.types.is_int32(dtype):
        return "INT"
    if pa.types.is_int64(dtype):
        return "BIGINT"
    if pa.types.is_map(dtype):
        return "MAP(VARCHAR, VARCHAR)"
    return "VARCHAR"


def all_select(selects: list[exp.Select]) -> exp.Expr:
    """Every row of every group: the canonical columns and ``natlens_bad``. The engines keep
    it once per run (``natlens_in_place_all``): the checks are many expressions, and every
    analysis reads the flows many times."""
    query: exp.Expr = selects[0]
    for select in selects[1:]:
        query = exp.union(query, select, distinct=False)
    return query


_ALL = "natlens_in_place_all"
_IS_RECORD = exp.Is(this=exp.column(BAD), expression=exp.Null())

# The records (the rows every check passed), in the flows table's columns.
RECORDS = (
    exp.select(*[exp.column(f.name, quoted=True) for f in FLOWS_SCHEMA])
    .from_(_ALL)
    .where(_IS_RECORD)
)
# Every row some check refused: the field that failed and the row's source.
CHECKED = (
    exp.select(exp.column(BAD), exp.column("source", quoted=True))
    .from_(_ALL)
    .where(exp.Not(this=_IS_RECORD.copy()))
)
# Per field: how many rows were refused, and the first source with one.
SKIPPED = (
    exp.select(
        exp.alias_(exp.column(BAD), "field"),
        exp.alias_(exp.Count(this=exp.Star()), "rows"),
        exp.alias_(exp.Min(this=exp.column("source", quoted=True)), "example"),
    )
    .from_(_ALL)
    .where(exp.Not(this=_IS_RECORD.copy()))
    .group_by(exp.column(BAD))
    .order_by(exp.column(BAD))
)
