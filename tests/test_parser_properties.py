"""Property-based tests of the record parser: any format, any values, any whitespace."""

from __future__ import annotations

import ipaddress

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from natlens.accounting import Accounting
from natlens.formats.flow_columns import RANGES, VOCABULARY
from natlens.formats.vpc_flow import FlowParser
from natlens.schema import FLOW_FIELDS, FlowField, Kind, column_name

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFXYZ0123456789:/._=-"),
    min_size=1,
    max_size=24,
).filter(lambda t: t != "-")
IPV4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
IPV6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))


def value_for(field: FlowField) -> st.SearchStrategy[str]:
    """Any value a flow log may hold in the field (its range, AWS's vocabulary)."""
    if field.name in RANGES:
        low, high = RANGES[field.name]
        plain = st.integers(low, high).map(str)
    elif field.name in VOCABULARY:
        plain = st.sampled_from(VOCABULARY[field.name])
    elif field.name in ("start", "end") or field.kind is Kind.INT32:
        plain = st.integers(0, 2**31 - 1).map(str)
    elif field.kind is Kind.INT64:
        plain = st.integers(0, 2**62).map(str)
    elif field.kind is Kind.ADDRESS:
        plain = st.one_of(IPV4, IPV6)
    else:
        plain = TOKEN
    return st.one_of(st.just("-"), plain)


@st.composite
def formats_and_records(draw: st.DrawFn) -> tuple[list[FlowField], list[list[str]]]:
    fields = draw(st.lists(st.sampled_from(FLOW_FIELDS), min_size=1, max_size=20, unique=True))
    if not any(f.kind in (Kind.INT32, Kind.INT64) for f in fields) and draw(st.booleans()):
        fields.append(FLOW_FIELDS[0])  # sometimes a numeric field, sometimes none
    rows = draw(
        st.lists(st.tuples(*(value_for(f) for f in fields)).map(list), min_size=1, max_size=30)
    )
    names = [f.name for f in fields]
    if "start" in names and "end" in names:  # a capture window ends after it starts
        s, e = names.index("start"), names.index("end")
        for row in rows:
            if row[s] != "-" and row[e] != "-" and int(row[s]) > int(row[e]):
                row[s], row[e] = row[e], row[s]
    return fields, rows


def expected_value(field: FlowField, text: str) -> object:
    if text == "-":
        return None
    if field.kind in (Kind.INT32, Kind.INT64):
        return int(text)
    return text


def parse(data: bytes) -> tuple[list[dict[str, object]], Accounting]:
    acct = Accounting()
    parser = FlowParser("prop.log", acct)
    tables = list(parser.feed(data, 1))
    rows = pa.concat_tables(tables, promote_options="default").to_pylist() if tables else []
    return rows, acct


@SETTINGS
@given(formats_and_records(), st.data())
def test_any_format_round_trips(case: tuple[list[FlowField], list[list[str]]], data) -> None:
    fields, rows = case
    gap = st.sampled_from([" ", "  ", "\t", " \t "])
    lines = [" ".join(f.name for f in fields)]
    for row in rows:
        separators = data.draw(st.lists(gap, min_size=len(row) - 1, max_size=len(row) - 1))
        line = row[0] + "".join(s + v for s, v in zip(separators, row[1:], strict=True))
        lines.append(
            data.draw(st.sampled_from(["", " "]))
            + line
            + data.draw(st.sampled_from(["", " ", "\r"]))
        )
    parsed, acct = parse(("\n".join(lines) + "\n").encode())
    assert acct.counts.skipped == 0, acct.to_json()
    assert acct.counts.balanced()
    assert len(parsed) == len(rows)
    for number, (got, row) in enumerate(zip(parsed, rows, strict=True), start=2):
        for field, text in zip(fields, row, strict=True):
            assert got[column_name(field.name)] == expected_value(field, text), field.name
        assert got["line"] == number


@SETTINGS
@given(st.lists(st.binary(max_size=80), max_size=40))
def test_any_bytes_are_accounted_for(chunks: list[bytes]) -> None:
    header = b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    data = header + b"\n" + b"\n".join(chunks) + b"\n"
    _rows, acct = parse(data)
    assert acct.counts.balanced(), acct.to_json()
    assert acct.counts.lines == data.count(b"\n")


@SETTINGS
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=50))
def test_ipv4_integers(values: list[int]) -> None:
    addresses = [str(ipaddress.IPv4Address(v)) for v in values]
    header = b"srcaddr dstport"
    body = "\n".join(f"{a} 443" for a in addresses).encode()
    rows, _acct = parse(header + b"\n" + body + b"\n")
    assert [r["srcaddr_v4"] for r in rows] == values
