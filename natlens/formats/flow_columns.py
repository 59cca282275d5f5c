"""Flow log columns: text to typed Arrow columns, addresses to numbers, each value checked."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from natlens.schema import (
    ACTIONS,
    ADDRESS_INT_SUFFIX,
    FIELDS_BY_NAME,
    FLOW_DIRECTIONS,
    LOG_STATUSES,
    MAX_COUNT,
    TRAFFIC_TYPES,
    Kind,
)

# No leading zeros: 010.0.0.1 is octal to some readers and decimal to others.
_OCTET = r"(?:0|[1-9]\d{0,2})"

_IPV4_NAMED = rf"^(?P<a>{_OCTET})\.(?P<b>{_OCTET})\.(?P<c>{_OCTET})\.(?P<d>{_OCTET})$"

_IPV6 = r"^[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*$"

# Characters no flow log field holds; a line with one is damaged (NUL, ESC, DEL ...).
_CONTROL = "[\x00-\x1f\x7f]"

# The values AWS documents for fields with a fixed vocabulary (docs/aws.md §3).
VOCABULARY: dict[str, tuple[str, ...]] = {
    "action": ACTIONS,
    "log-status": LOG_STATUSES,
    "flow-direction": FLOW_DIRECTIONS,
    "type": TRAFFIC_TYPES,
}

# Numbers a field can hold. Ports and protocol numbers by their definition; versions AWS has
# published (2-8) with room for a few more; packets and bytes up to schema.MAX_COUNT.
RANGES: dict[str, tuple[int, int]] = {
    "version": (2, 15),
    "srcport": (0, 65535),
    "dstport": (0, 65535),
    "protocol": (0, 255),
    "packets": (0, MAX_COUNT),
    "bytes": (0, MAX_COUNT),
    "tcp-flags": (0, 65535),
    "traffic-path": (1, 255),
    "packets-lost-no-route": (0, MAX_COUNT),
    "packets-lost-blackhole": (0, MAX_COUNT),
    "packets-lost-mtu-exceeded": (0, MAX_COUNT),
    "packets-lost-ttl-expired": (0, MAX_COUNT),
}

_UNSIGNED = r"^[0-9]{1,19}$"

_INT64_MAX_TEXT = str(2**63 - 1)

_INT32_MAX = 2**31 - 1

# start and end sometimes arrive in milliseconds; values past 2^31
# cannot be seconds (year 2038), so they are divided by 1000.
_MS_THRESHOLD = 2**31


def finish_columns(
    columns: dict[str, pa.Array], lines: np.ndarray, ipv4: dict[str, pa.Array]
) -> pa.Table:
    """Typed field columns (by AWS name) to canonical columns, derived columns and ``line``.
    ``ipv4``: the integers of each address column, computed when the column was checked."""
    out: dict[str, pa.Array] = {}
    extra_names: list[str] = []
    for name, col in columns.items():
        field = FIELDS_BY_NAME.get(name)
        if field is None:
            extra_names.append(name)
            continue
        if name in ("start", "end"):
            col = pc.if_else(pc.greater(col, _MS_THRESHOLD), pc.divide(col, 1000), col)
        col = col.cast(field.arrow_type)
        out[field.column] = col
        if field.kind is Kind.ADDRESS:
            out[field.column + ADDRESS_INT_SUFFIX] = ipv4[name]
    if extra_names:
        out["extra"] = _extra_map({name: columns[name] for name in extra_names}, len(lines))
    out["line"] = pa.array(lines, pa.int64())
    return pa.table(out)


def filter_time(table: pa.Table, since: int | None, until: int | None) -> tuple[pa.Table, int]:
    """Keep records whose capture window overlaps [since, until]; returns the dropped count."""
    if since is None and until is None:
        return table, 0
    names = table.column_names
    keep = None
    if since is not None and "end" in names:
        keep = pc.fill_null(pc.greater_equal(table["end"], since), True)
    if until is not None and "start" in names:
        cond = pc.fill_null(pc.less_equal(table["start"], until), True)
        keep = cond if keep is None else pc.and_(keep, cond)
    if keep is None:
        return table, 0
    kept = table.filter(keep)
    return kept, table.num_rows - kept.num_rows


def ipv4_to_int(col: pa.Array) -> pa.Array:
    """Dotted-quad text to its 32-bit value as int64; NULL for IPv6, NULL and invalid text."""
    parts = pc.extract_regex(col, _IPV4_NAMED)
    octets = [pc.cast(pc.struct_field(parts, k), pa.int64()) for k in "abcd"]
    value = pc.add(
        pc.add(pc.multiply(octets[0], 1 << 24), pc.multiply(octets[1], 1 << 16)),
        pc.add(pc.multiply(octets[2], 1 << 8), octets[3]),
    )
    too_big = pc.fill_null(
        pc.or_(
            pc.or_(pc.greater(octets[0], 255), pc.greater(octets[1], 255)),
            pc.or_(pc.greater(octets[2], 255), pc.greater(octets[3], 255)),
        ),
        False,
    )
    return pc.if_else(too_big, pa.scalar(None, pa.int64()), value)


def _address(col: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """The IPv4 integers of an address column, and where any value is not an address (None
    when all are). Text that is not IPv4 must look like IPv6.

    A VPC's flow logs name the same few thousand addresses millions of times: each distinct text
    is converted once, and the results spread back by index.
    """
    encoded = pc.dictionary_encode(col)
    distinct, indices = encoded.dictionary, encoded.indices
    distinct_value = ipv4_to_int(distinct)
    distinct_ok = pc.is_valid(distinct_value)
    if not pc.all(distinct_ok).as_py():
        distinct_ok = pc.or_(distinct_ok, _valid_ipv6(distinct))
    value = distinct_value.take(indices)
    if pc.all(distinct_ok).as_py():
        return value, None
    return value, pc.fill_null(distinct_ok.take(indices), True)


def _convert(
    col: pa.Array, kind: Kind, name: str = ""
) -> tuple[pa.Array, np.ndarray | None, pa.Array | None]:
    """Check and type one text column: the typed column, the rows that failed, and for address
    columns the IPv4 integers (computed while checking, so not computed again)."""
    if kind is Kind.STRING:
        bad = pc.fill_null(pc.match_substring_regex(col, _CONTROL), False)
        if name in VOCABULARY:
            known = pc.is_in(col, value_set=pa.array(VOCABULARY[name]))
            bad = pc.or_(bad, pc.and_(pc.is_valid(col), pc.invert(pc.fill_null(known, False))))
        if not pc.any(bad).as_py():
            return col, None, None
        invalid = bad.to_numpy(zero_copy_only=False)
        return pc.if_else(bad, pa.scalar(None, pa.string()), col), invalid, None
    if kind is Kind.ADDRESS:
        value, ok = _address(col)
        if ok is None:
            return col, None, value
        invalid = ~ok.to_numpy(zero_copy_only=False)
        return pc.if_else(ok, col, pa.scalar(None, pa.string())), invalid, value
    ok = pc.fill_null(pc.match_substring_regex(col, _UNSIGNED), True)
    # 19 digits may still pass 2^63 - 1; same-length digit strings compare like numbers.
    too_big = pc.and_(
        pc.equal(pc.utf8_length(col), len(_INT64_MAX_TEXT)), pc.greater(col, _INT64_MAX_TEXT)
    )
    ok = pc.and_(ok, pc.invert(pc.fill_null(too_big, False)))
    safe = pc.if_else(ok, col, pa.scalar(None, pa.string()))
    typed = pc.cast(safe, pa.int64())
    low, high = RANGES.get(name, (0, _INT32_MAX if kind is Kind.INT32 else 2**63 - 1))
    in_range = pc.fill_null(pc.and_(pc.greater_equal(typed, low), pc.less_equal(typed, high)), True)
    ok = pc.and_(ok, in_range)
    typed = pc.if_else(in_range, typed, pa.scalar(None, pa.int64()))
    invalid = ~ok.to_numpy(zero_copy_only=False)
    return typed, invalid if invalid.any() else None, None


def _flat(dtype: pa.DataType) -> bool:
    if pa.types.is_dictionary(dtype):
        return _flat(dtype.value_type)
    return not pa.types.is_nested(dtype)


def _as_text(col: pa.Array) -> tuple[pa.Array, np.ndarray | None]:
    """A Parquet column as text, and the rows whose bytes are not UTF-8 (binary columns)."""
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col.cast(pa.string()), None
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        values = col.to_pylist()
        out: list[str | None] = []
        bad = np.zeros(len(values), dtype=bool)
        for j, raw in enumerate(values):
            if raw is None:
                out.append(None)
                continue
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(raw.decode("utf-8", "backslashreplace"))
                bad[j] = True
        return pa.array(out, pa.string()), bad if bad.any() else None
    return col.cast(pa.string()), None


def _valid_ipv6(distinct: pa.Array) -> pa.Array:
    """Whether each text is an IPv6 address (strictly: no zone, nothing the loose pattern lets
    through such as '::::'). Run on a column's distinct values: a few thousand at most."""
    shaped = pc.fill_null(pc.match_substring_regex(distinct, _IPV6), False)
    result = []
    for text, maybe in zip(distinct.to_pylist(), shaped.to_pylist(), strict=True):
        ok = False
        if maybe and "%" not in text:
            try:
                ipaddress.IPv6Address(text)
                ok = True
            except ValueError:
                pass
        result.append(ok)
    return pa.array(result, pa.bool_())


def _expected(kind: Kind, name: str = "") -> str:
    if name in VOCABULARY:
        return "one of " + ", ".join(VOCABULARY[name]) + " (or '-')"
    if name in RANGES:
        low, high = RANGES[name]
        return f"a whole number from {low} to {high} (or '-')"
    return {
        Kind.INT32: "a whole number from 0 to 2147483647 (or '-')",
        Kind.INT64: "a whole number (or '-')",
        Kind.ADDRESS: "an IPv4 or IPv6 address (or '-')",
        Kind.STRING: "text without control characters",
    }[kind]


def _extra_map(columns: dict[str, pa.Array], n: int) -> pa.Array:
    """Unknown fields as one map column: {field name: value}, NULL values left out."""
    names = list(columns)
    values = np.empty((n, len(names)), dtype=object)
    for j, name in enumerate(names):
        values[:, j] = columns[name].to_numpy(zero_copy_only=False)
    keys, items, offsets = [], [], [0]
    for row in values:
        for name, value in zip(names, row, strict=True):
            if value is not None:
                keys.append(name)
                items.append(value)
        offsets.append(len(keys))
    return pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()), pa.array(keys, pa.string()), pa.array(items, pa.string())
    )
