"""Network Firewall log lines read column-wise, by DuckDB's JSON functions (network_firewall.sql).

The line parser (network_firewall.parse_lines) is the definition of what a line means; this
reader gives the same table several times faster, and hands it every line it cannot vouch for.

1. DuckDB lists the keys of the objects natlens maps (the event, ``alert``, ``netflow`` ...).
   Lines fall into a few shapes (key lists): an alert with TLS, a flow with TCP flags ... The
   shapes are learnt from a sample of the block's lines.
2. A shape is read here only if nothing about its keys needs Python: no key twice, no two keys
   one column name apart (DuckDB's names ignore case), no unmapped key that ``extra`` would
   name like another, and its unmapped keys in an order every other shape agrees with.
3. For every line DuckDB reads as JSON the way Python does and whose shape was accepted, one
   json_transform gives every leaf as JSON text; Arrow's compute functions check that each
   value has the type and form AWS writes (else the line goes to the parser) and convert it.
4. ``extra`` (the unmapped keys, as JSON text) is assembled here from the same leaves, when
   every value is one json.dumps writes the same way (a whole number, true, false, null or
   printable ASCII text); otherwise the line goes to the parser.
"""

from __future__ import annotations

import json
import threading
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from natlens.accounting import Problem
from natlens.formats.network_firewall import (
    MAPPED_EVENT_KEYS,
    MAPPED_SUBKEYS,
    SCHEMA,
    TOP_KEYS,
    parse_lines,
)
from natlens.formats.vpc_flow import NOT_SPACE  # what the line splitter calls white space
from natlens.schema import MAX_COUNT

# Below this many lines, DuckDB's set-up costs more than reading column-wise saves.
MIN_LINES = 300
# More shapes than this in one piece: the rarest are left to the line parser.
MAX_SHAPES = 64
# The tests set this: an error in the column-wise path is a failure there, not a slower read.
RAISE = False
# The shapes are learnt from about this many lines of a block; lines of a shape the sample
# missed are left to the line parser.
SAMPLE_LINES = 512
# The order of the key lists the SQL gives (json_keys' paths) and of ``extra``'s groups.
_LEVELS = ("", "event", *(f"event.{name}" for name in MAPPED_SUBKEYS))
_SUBOBJECTS = tuple(name for name in MAPPED_SUBKEYS if name != "tls_error")
# A value json.dumps writes as DuckDB does: whole numbers, true, false, null, plain ASCII text.
_PLAIN = r'^(-?[0-9]+|true|false|null|"[\x20\x21\x23-\x5b\x5d-\x7e]*")$'

# A block with a newline every this many bytes or more often is read the sparse way (it cannot
# be mostly events, and a table of every line's bounds would take 8 bytes a byte).
SPARSE_BYTES = 32
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[b for b in range(256) if NOT_SPACE.fullmatch(bytes([b])) is None]] = True

_STATE: dict[str, Any] = {}
_LOCK = threading.Lock()


def read_block(block: bytes, first_line: int, source: str) -> tuple[pa.Table, list[Problem], int]:
    """A block of whole lines: the rows (in line order), the problems (in line order, a line
    that is not UTF-8 text among them) and the number of blank lines. Every line of the block
    is one of the three."""
    numbers, texts, not_text = _lines(block, first_line)
    problems = [Problem("not-text", source, n, "the line is not UTF-8 text") for n in not_text]
    blank = block.count(b"\n") + (0 if block.endswith(b"\n") or not block else 1)
    blank -= len(numbers) + len(not_text)
    if len(numbers) < MIN_LINES:
        parsed = parse_lines(_pairs(numbers, texts, range(len(numbers))), source)
        return parsed.table(), sorted(problems + parsed.problems, key=_line), blank
    statements = _statements()
    cursor = statements["connection"].cursor()
    try:
        fast = _read(cursor, statements, texts)
    except Exception:
        # Whatever went wrong (a DuckDB error on some input), the line parser reads every line.
        if RAISE:
            raise
        fast = None
    finally:
        cursor.close()
    slow = np.ones(len(numbers), dtype=bool)
    pieces = []
    if fast is not None and fast.num_rows:
        positions = fast.column("pos").to_numpy()
        slow[positions] = False
        columns = {name: fast.column(name) for name in fast.column_names}
        columns["source"] = pa.array([source] * fast.num_rows, pa.string())
        columns["line"] = pa.array(numbers[positions])
        columns["duplicate_keys"] = pa.array([[]] * fast.num_rows, pa.list_(pa.string()))
        pieces.append(
            pa.Table.from_arrays([columns[f.name].cast(f.type) for f in SCHEMA], schema=SCHEMA)
        )
    parsed = parse_lines(_pairs(numbers, texts, np.flatnonzero(slow)), source)
    problems = sorted(problems + parsed.problems, key=_line)
    if parsed.rows or not pieces:
        pieces.append(parsed.table())
    if len(pieces) == 1:
        return pieces[0], problems, blank
    table = pa.concat_tables(pieces)
    return table.take(pc.sort_indices(table.column("line"))), problems, blank


def _line(problem: Problem) -> int:
    return problem.line or 0


def _lines(block: bytes, first_line: int) -> tuple[np.ndarray, pa.Array, list[int]]:
    """The numbers and the text (each with its newline) of the block's lines that hold more
    than white space and are UTF-8, and the numbers of those that are not UTF-8."""
    if block.count(b"\n") > len(block) // SPARSE_BYTES:
        numbers, lines = _sparse(block, first_line)
    else:
        numbers, lines = _dense(block, first_line)
    try:
        return numbers, lines.cast(pa.large_string()), []
    except pa.ArrowInvalid:
        pass
    good = []
    for i, raw in enumerate(lines.to_pylist()):
        try:
            raw.decode("utf-8")
            good.append(i)
        except UnicodeDecodeError:
            pass
    bad = sorted(set(range(len(lines))) - set(good))
    return (
        numbers[good],
        lines.take(pa.array(good, pa.int64())).cast(pa.large_string()),
        [int(numbers[i]) for i in bad],
    )


def _dense(block: bytes, first_line: int) -> tuple[np.ndarray, pa.Array]:
    """Lines of a block of events: every line's bounds at once (8 bytes a line)."""
    data = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(data == 10) + 1
    if len(block) and (not len(ends) or ends[-1] != len(block)):
        ends = np.append(ends, len(block))  # the last line has no newline
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    if len(offsets) < 2:
        keep = np.zeros(0, np.int64)
    else:
        keep = np.flatnonzero(np.logical_or.reduceat(~_SPACE[data], offsets[:-1]))
    lines = pa.Array.from_buffers(
        pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(block)]
    ).take(pa.array(keep))
    return keep + first_line, lines


def _sparse(block: bytes, first_line: int) -> tuple[np.ndarray, pa.Array]:
    """Lines of a block that is mostly newlines (an event, then a gigabyte of them): only the
    lines with text are found, the runs of white space between them skipped at C speed."""
    numbers, pieces = [], []
    line, at, pos = first_line, 0, 0
    while (match := NOT_SPACE.search(block, pos)) is not None:
        start = block.rfind(b"\n", 0, match.start()) + 1
        end = block.find(b"\n", match.start())
        end = len(block) if end < 0 else end + 1
        line += block.count(b"\n", at, start)
        at, pos = start, end
        numbers.append(line)
        pieces.append(block[start:end])
    return np.array(numbers, np.int64), pa.array(pieces, pa.large_binary())


def _pairs(numbers: np.ndarray, texts: pa.Array, which: Any) -> list[tuple[int, str]]:
    """(line number, text without its newline) for the parser."""
    out = []
    for i in which:
        text = texts[int(i)].as_py()
        out.append((int(numbers[i]), text[:-1] if text.endswith("\n") else text))
    return out


def _statements() -> dict[str, Any]:
    """One in-memory DuckDB (a cursor of it per block), and the statements of
    network_firewall.sql."""
    with _LOCK:
        if not _STATE:
            import duckdb

            text = resources.files("natlens.formats").joinpath("network_firewall.sql").read_text()
            parts = text.split("-- statement: ")[1:]
            named = {part.split("\n", 1)[0].strip(): part.split("\n", 1)[1] for part in parts}
            connection = duckdb.connect(":memory:")
            connection.execute(named.pop("setup"))
            _STATE.update(named, connection=connection)
        return _STATE


def _read(cursor: Any, statements: dict[str, Any], texts: pa.Array) -> pa.Table | None:
    """The lines of safe shapes whose every value passed: ``pos`` and the schema's columns."""
    positions = pa.array(np.arange(len(texts), dtype=np.int64))
    cursor.register("fw_lines", pa.table({"pos": positions, "text": texts}))
    step = max(1, len(texts) // SAMPLE_LINES)
    cursor.register("fw_sample", pa.table({"text": texts[::step]}))
    shapes = cursor.execute(statements["shapes"]).fetchall()[:MAX_SHAPES]
    accepted, extras = _accept([keys for keys, _ in shapes])
    if not accepted:
        return None
    kept = [shapes[i][0] for i in accepted]
    cursor.register(
        "fw_shapes",
        pa.table({
            "shape": pa.array(np.arange(len(kept), dtype=np.int32)),
            "keys": pa.array(kept, pa.list_(pa.list_(pa.string()))),
        }),
    )  # fmt: skip
    leaves = cursor.execute(
        statements["leaves"], {"structure": json.dumps(_structure(extras))}
    ).to_arrow_table()
    d = leaves.column("d").combine_chunks()
    columns, ok = _convert(d, leaves.column("tls_keys").combine_chunks())
    extra, plain = _extra(d, extras, kept, leaves.column("shape").to_numpy())
    columns["extra"] = extra
    columns["pos"] = leaves.column("pos").combine_chunks()
    keep = pc.and_(ok, plain)
    return pa.table(columns).filter(keep)


def _accept(shapes: list[list[list[str] | None]]) -> tuple[list[int], dict[str, list[str]]]:
    """The shapes read here (their indices; the most common are offered first), and the
    unmapped keys of each level in an order all of them keep."""
    mapped = {"": TOP_KEYS, "event": MAPPED_EVENT_KEYS}
    mapped.update({f"event.{name}": keys for name, keys in MAPPED_SUBKEYS.items()})
    extras: dict[str, list[str]] = {level: [] for level in _LEVELS}
    # Every name each level's struct has, lower-cased: DuckDB's struct names ignore case.
    names = {level: {k.lower() for k in mapped[level]} for level in _LEVELS}
    names[""] |= {"event"}
    names["event"] |= set(MAPPED_SUBKEYS)
    accepted = []
    for index, shape in enumerate(shapes):
        if not shape or len(shape) != len(_LEVELS):
            continue
        levels = dict(zip(_LEVELS, shape, strict=True))
        if "event" not in (levels[""] or []) or not levels["event"]:
            continue  # not an object with an event object: the parser says what is wrong
        if any(keys is not None and len(set(keys)) != len(keys) for keys in shape):
            continue  # a key written twice
        if any(k not in mapped["event.tls_error"] for k in levels["event.tls_error"] or []):
            continue  # the tls_error object's other keys are not leaves here
        wanted = {
            level: [k for k in (levels[level] or []) if k not in mapped[level]] for level in _LEVELS
        }
        if any("." in k for level in ("", "event") for k in wanted[level]):
            continue  # extra's name for it could be another key's
        if any(not k for level in _LEVELS for k in wanted[level]):
            continue  # an empty key can be no struct field
        merged = _merge(extras, names, wanted)
        if merged is None:
            continue
        extras, names = merged
        accepted.append(index)
    return accepted, extras


def _merge(
    extras: dict[str, list[str]], names: dict[str, set[str]], wanted: dict[str, list[str]]
) -> tuple[dict[str, list[str]], dict[str, set[str]]] | None:
    """``extras`` with a shape's unmapped keys added in its order, or None if its order
    contradicts the order so far or a key is another's name in another case."""
    out, seen = {}, {}
    for level, keys in wanted.items():
        order = list(extras[level])
        known = [k for k in keys if k in order]
        if [k for k in order if k in set(known)] != known:
            return None
        lowered = set(names[level])
        previous = -1
        for key in keys:
            if key in order:
                previous = order.index(key)
                continue
            if key.lower() in lowered:
                return None
            lowered.add(key.lower())
            previous += 1
            order.insert(previous, key)
        out[level], seen[level] = order, lowered
    return out, seen


def _structure(extras: dict[str, list[str]]) -> dict[str, Any]:
    """json_transform's structure: every mapped key and every accepted unmapped key a leaf."""
    leaf = "JSON"
    top: dict[str, Any] = {k: leaf for k in sorted(TOP_KEYS - {"event"})}
    event: dict[str, Any] = {k: leaf for k in sorted(MAPPED_EVENT_KEYS)}
    for name in _SUBOBJECTS:
        keys = sorted(MAPPED_SUBKEYS[name]) + extras[f"event.{name}"]
        event[name] = {k: leaf for k in keys}
    event.update({k: leaf for k in extras["event"]})
    top.update({k: leaf for k in extras[""]})
    top["event"] = event
    return top


def _extra(
    d: pa.StructArray, extras: dict[str, list[str]], shapes: list[Any], shape: np.ndarray
) -> tuple[pa.Array, pa.Array]:
    """``extra`` as a map for each row (entries in Python's order), and whether every value
    in it is one json.dumps writes as DuckDB does. A key whose value is null reads as no value:
    the row's shape (``shapes[shape]``) says whether the key is there."""
    n = len(d)
    levels = [
        [set(keys or ()) for keys in shape_keys] for shape_keys in shapes
    ]  # per shape, per level
    event = d.field("event")
    columns, names, there = [], [], []
    for index, level in enumerate(_LEVELS):
        for key in extras[level]:
            has = np.array([key in shape_levels[index] for shape_levels in levels])
            there.append(has[shape])
            if level == "":
                array, name = d.field(key), key
            elif level == "event":
                array, name = event.field(key), f"event.{key}"
            else:
                inner = level.split(".", 1)[1]
                array, name = event.field(inner).field(key), f"{level}.{key}"
            array = array.cast(pa.string())
            columns.append(pc.fill_null(array, "null"))
            names.append(name)
    if not columns:
        empty = pa.MapArray.from_arrays(
            pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string()),
            pa.array([], pa.string()),
        )  # fmt: skip
        return empty, pa.array(np.ones(n, dtype=bool))
    present = np.stack(there, axis=1)
    plain = np.ones(n, dtype=bool)
    for i, column in enumerate(columns):
        ok = pc.fill_null(pc.match_substring_regex(column, _PLAIN), True)
        plain &= ok.to_numpy(zero_copy_only=False) | ~present[:, i]
    rows, cols = np.nonzero(present)  # row-major: each row's entries in column order
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(present.sum(axis=1), out=offsets[1:])
    values = pa.concat_arrays(columns).take(pa.array(cols * n + rows))
    keys = pa.array(np.array(names, dtype=object)[cols], pa.string())
    return pa.MapArray.from_arrays(pa.array(offsets), keys, values), pa.array(plain)


# What each leaf is, from its JSON text: a string ('"...'), a number, true, false or null.
_NULL_TEXT = pa.scalar(None, pa.string())
_NULL_INT = pa.scalar(None, pa.int64())
_TIME = r'^"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(\+0000|Z)"$'
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = rf"^({_OCTET}\.){{3}}{_OCTET}$"


def _is(condition: Any) -> Any:
    return pc.fill_null(condition, False)


def _none(j: pa.Array) -> Any:
    """Absent, or JSON null: what Python's dict.get gives None for."""
    return pc.fill_null(pc.equal(j, "null"), True)


def _absent(j: pa.Array) -> bool:
    return bool(j.null_count == len(j))


def _text(j: pa.Array) -> tuple[pa.Array, Any]:
    """A string leaf's text; ok where the leaf is a string without escapes, or none."""
    if _absent(j):
        return j, True
    quoted = _is(pc.starts_with(j, '"'))
    plain = pc.and_(quoted, pc.invert(_is(pc.match_substring(j, "\\"))))
    value = pc.if_else(quoted, pc.utf8_slice_codeunits(j, 1, -1), _NULL_TEXT)
    return value, pc.or_(_none(j), plain)


def _int(j: pa.Array, low: int | None = None, high: int | None = None) -> tuple[pa.Array, Any]:
    """A whole number, or digits in a string (TLS logs write ports as strings)."""
    if _absent(j):
        return pa.nulls(len(j), pa.int64()), True
    number = _is(pc.match_substring_regex(j, r"^-?[0-9]{1,18}$"))
    digits = _is(pc.match_substring_regex(j, r'^"(-?[0-9]{1,18})?"$'))
    text = pc.if_else(number, j, pc.if_else(digits, pc.utf8_slice_codeunits(j, 1, -1), _NULL_TEXT))
    value = pc.cast(pc.if_else(_is(pc.equal(text, "")), _NULL_TEXT, text), pa.int64())
    ok = pc.or_(_none(j), pc.or_(number, digits))
    if low is not None:
        inside = pc.and_(pc.greater_equal(value, low), pc.less_equal(value, high))
        ok = pc.and_(ok, pc.fill_null(inside, True))
    return value, ok


def _time(j: pa.Array) -> tuple[pa.Array, pa.Array, Any]:
    """The time's text, its whole epoch seconds, and ok where it has the form AWS writes and
    names a real moment. Arrow's strptime would roll February 30 over to March 1 and a 60th
    second over to the next minute (the day and the second read back must be those written),
    and takes year 0000."""
    if _absent(j):
        return j, pa.nulls(len(j), pa.int64()), True
    text, text_ok = _text(j)
    shaped = _is(pc.match_substring_regex(j, _TIME))
    head = pc.if_else(shaped, pc.utf8_slice_codeunits(j, 1, 20), _NULL_TEXT)
    moment = pc.strptime(head, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
    day = pc.cast(pc.utf8_slice_codeunits(head, 8, 10), pa.int64())
    second = pc.cast(pc.utf8_slice_codeunits(head, 17, 19), pa.int64())
    exact = _is(
        pc.and_(
            pc.and_(pc.equal(pc.day(moment), day), pc.equal(pc.second(moment), second)),
            pc.greater_equal(pc.year(moment), 1),  # Python's datetime has no year 0
        )
    )
    epoch = pc.if_else(exact, pc.cast(moment, pa.int64()), _NULL_INT)
    ok = pc.or_(pc.or_(_none(j), _is(pc.equal(j, '""'))), exact)
    return text, epoch, pc.and_(ok, text_ok)


def _flags(j: pa.Array) -> tuple[pa.Array, Any]:
    """TCP flags: one or two hexadecimal digits in a string."""
    if _absent(j):
        return pa.nulls(len(j), pa.int64()), True
    shaped = _is(pc.match_substring_regex(j, r'^"[0-9a-fA-F]{1,2}"$'))
    text = pc.if_else(shaped, pc.utf8_slice_codeunits(j, 1, -1), _NULL_TEXT)
    encoded = pc.dictionary_encode(text)
    numbers = pa.array([int(x, 16) for x in encoded.dictionary.to_pylist()], pa.int64())
    value = pc.take(numbers, encoded.indices)
    return value, pc.or_(pc.or_(_none(j), _is(pc.equal(j, '""'))), shaped)


def _bool(j: pa.Array) -> tuple[pa.Array, Any]:
    if _absent(j):
        return pa.nulls(len(j), pa.bool_()), True
    known = _is(pc.is_in(j, pa.array(["true", "false"])))
    value = pc.if_else(known, pc.equal(j, "true"), pa.scalar(None, pa.bool_()))
    return value, pc.or_(_none(j), known)


def _v4(text: pa.Array) -> pa.Array:
    """The address as a number where it is IPv4 as Python's ipaddress reads one."""
    match = _is(pc.match_substring_regex(text, _V4)).to_numpy(zero_copy_only=False)
    out = np.zeros(len(text), np.int64)
    if match.any():
        octets = pc.list_flatten(pc.split_pattern(text.filter(pa.array(match)), "."))
        parts = pc.cast(octets, pa.int64()).to_numpy().reshape(-1, 4)
        out[match] = parts @ np.array([1 << 24, 1 << 16, 1 << 8, 1], np.int64)
    return pa.array(out, mask=~match)


def _tls_error(j: pa.Array) -> tuple[pa.Array, Any]:
    """tls_error: text, or an object whose error_message is text (read by Python: few)."""
    text, ok = _text(j)
    objects = _is(pc.starts_with(j, "{")).to_numpy(zero_copy_only=False)
    if not objects.any():
        return text, ok
    values = text.to_pylist()
    fine = ok.to_numpy(zero_copy_only=False).copy()
    for i in np.flatnonzero(objects):
        message = json.loads(j[int(i)].as_py()).get("error_message")
        fine[i] = message is None or isinstance(message, str)
        values[i] = message if fine[i] else None
    return pa.array(values, pa.string()), pa.array(fine)


def _convert(d: pa.StructArray, tls_keys: pa.Array) -> tuple[dict[str, pa.Array], Any]:
    """The schema's columns from the leaves, and ok where every value passed."""

    def leaf(*path: str) -> pa.Array:
        node: Any = d
        for name in path:
            node = node.field(name)
        return node.cast(pa.string())

    out: dict[str, Any] = {}
    oks = []
    for column, path in (
        ("firewall_name", ("firewall_name",)), ("availability_zone", ("availability_zone",)),
        ("event_type", ("event", "event_type")), ("src_ip", ("event", "src_ip")),
        ("dest_ip", ("event", "dest_ip")), ("proto", ("event", "proto")),
        ("app_proto", ("event", "app_proto")), ("direction", ("event", "direction")),
        ("alert_action", ("event", "alert", "action")),
        ("signature", ("event", "alert", "signature")),
        ("category", ("event", "alert", "category")),
        ("verdict_action", ("event", "verdict", "action")),
        ("tls_sni", ("event", "tls", "sni")), ("event_sni", ("event", "sni")),
        ("http_hostname", ("event", "http", "hostname")), ("http_url", ("event", "http", "url")),
        ("revocation_status", ("event", "revocation_check", "status")),
        ("revocation_action", ("event", "revocation_check", "action")),
        ("aws_category", ("event", "aws_category")),
    ):  # fmt: skip
        out[column], ok = _text(leaf(*path))
        oks.append(ok)
    for column, path, low, high in (
        ("event_timestamp", ("event_timestamp",), None, None),
        ("flow_id", ("event", "flow_id"), None, None),
        ("src_port", ("event", "src_port"), 0, 65535),
        ("dest_port", ("event", "dest_port"), 0, 65535),
        ("signature_id", ("event", "alert", "signature_id"), None, None),
        ("severity", ("event", "alert", "severity"), -(2**31), 2**31 - 1),
        ("netflow_pkts", ("event", "netflow", "pkts"), 0, MAX_COUNT),
        ("netflow_bytes", ("event", "netflow", "bytes"), 0, MAX_COUNT),
        ("netflow_age", ("event", "netflow", "age"), None, None),
    ):
        out[column], ok = _int(leaf(*path), low, high)
        oks.append(ok)
    for column, epoch, path in (
        ("timestamp", "event_time", ("event", "timestamp")),
        ("netflow_start", "flow_start", ("event", "netflow", "start")),
        ("netflow_end", "flow_end", ("event", "netflow", "end")),
    ):
        out[column], out[epoch], ok = _time(leaf(*path))
        oks.append(ok)
    out["tcp_flags"], ok = _flags(leaf("event", "tcp", "tcp_flags"))
    oks.append(ok)
    out["tls_inspected"], ok = _bool(leaf("event", "tls_inspected"))
    oks.append(ok)
    out["tls_error"], ok = _tls_error(leaf("event", "tls_error"))
    oks.append(ok)
    out["event_time"] = pc.coalesce(out["event_time"], out["event_timestamp"])
    tls_sni, event_sni = out.pop("tls_sni"), out.pop("event_sni")
    out["sni"] = pc.if_else(_is(pc.not_equal(tls_sni, "")), tls_sni, event_sni)
    kind = out["event_type"]
    out["log_type"] = pc.case_when(
        pc.make_struct(
            _is(pc.equal(kind, "alert")),
            _is(pc.equal(kind, "netflow")),
            pc.and_(pc.is_null(kind), _is(tls_keys)),
        ),
        pa.scalar("alert"), pa.scalar("flow"), pa.scalar("tls"),
    )  # fmt: skip
    out["src_ip_v4"] = _v4(out["src_ip"])
    out["dest_ip_v4"] = _v4(out["dest_ip"])
    every: Any = pa.array(np.ones(len(d), dtype=bool))
    for more in oks:
        if more is not True:
            every = pc.and_(every, more)
    return out, every
