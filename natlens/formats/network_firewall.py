"""AWS Network Firewall alert, flow and TLS log events (docs/aws.md §6) as canonical rows.

Each line is one JSON object: ``firewall_name``, ``availability_zone``, ``event_timestamp`` and a
Suricata EVE ``event``. AWS's quirks, handled here once:

- ``event_timestamp`` is a string in alert and flow logs and a number in TLS logs;
- ports are numbers in alert and flow logs and strings in TLS logs;
- ``tcp.tcp_flags`` is hexadecimal text ("12" is SYN-ACK, 18; a peer parses it as decimal);
- the log type is not written: ``event_type`` ``alert`` is an alert log, ``netflow`` a flow log,
  and TLS logs have no ``event_type`` but ``tls_error`` or ``revocation_check``;
- a key can appear twice in one object (AWS's TLS alert example has two ``subject`` keys): the
  last one wins, as in every JSON reader, and the duplicates are named in ``duplicate_keys``.

Fields natlens does not map are kept, as JSON text, in ``extra``.

Lines are read by orjson. A line in which a key could appear twice, or which orjson refuses, is
read again by the standard library with a hook that names the duplicates; ``strict=True`` reads
every line that way, and the tests hold the two readings equal.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from natlens.accounting import Problem
from natlens.schema import FIREWALL_EVENTS_SCHEMA, MAX_COUNT

SCHEMA = FIREWALL_EVENTS_SCHEMA


# EVE keys mapped to columns (the rest of ``event`` goes to ``extra``).
MAPPED_EVENT_KEYS = {
    "timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto",
    "app_proto", "direction", "alert", "verdict", "netflow", "tcp", "tls", "http", "sni",
    "tls_error", "revocation_check", "aws_category", "tls_inspected",
}  # fmt: skip
TOP_KEYS = {"firewall_name", "availability_zone", "event_timestamp", "event"}
# Keys of EVE's nested objects that have columns; the others go to ``extra``.
MAPPED_SUBKEYS = {
    "alert": {"action", "signature_id", "signature", "category", "severity"},
    "netflow": {"pkts", "bytes", "start", "end", "age"},
    "tcp": {"tcp_flags"},
    "tls": {"sni"},
    "http": {"hostname", "url"},
    "verdict": {"action"},
    "revocation_check": {"status", "action"},
    "tls_error": {"error_message"},
}
_INT64 = (-(2**63), 2**63 - 1)
_WHOLE = re.compile(r"-?[0-9]+")  # ASCII digits only: str.isdigit also takes '²' and '٣'
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = re.compile(r"\.".join([_OCTET] * 4))
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SPACED = re.compile(r'"[ \t\r\n]')
_KEY_END = re.compile(r'"[ \t\r\n]*:')
_PLAIN = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")  # printable ASCII but '"' and '\\'


class _BadValue(ValueError):
    def __init__(self, name: str, value: object, expected: str) -> None:
        super().__init__(f"{value!r} is not {expected}")
        self.field = name


@dataclass
class Parsed:
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def table(self) -> pa.Table:
        """The rows as one table, built a column at a time (pyarrow's from_pylist takes four
        times as long, walking every row's dict for every column)."""
        rows = self.rows
        return pa.Table.from_arrays(
            [pa.array([row[f.name] for row in rows], f.type) for f in SCHEMA], schema=SCHEMA
        )


def looks_like_event(text: str) -> bool:
    """Whether a line is a Network Firewall log event, by its content."""
    stripped = text.lstrip()
    return stripped.startswith("{") and '"firewall_name"' in text and '"event"' in text


def parse_lines(lines: Iterable[tuple[int, str]], source: str, *, strict: bool = False) -> Parsed:
    """(line number, text) pairs of one source into rows; every line is a row or a problem.

    ``strict`` reads every line with the standard library only: the definition the fast
    reading is tested against."""
    load: Callable[[str], tuple[Any, list[str]]] = _load if strict else _load_fast
    parsed = Parsed()
    for number, text in lines:
        if not text.strip(" \t\r\n\x0b\x0c"):  # ASCII white space, as the line splitter has it
            continue
        try:
            row = _values(*load(text))
        except _BadValue as exc:
            parsed.problems.append(Problem("bad-value", source, number, str(exc), exc.field))
            continue
        except ValueError as exc:
            parsed.problems.append(Problem("bad-json", source, number, str(exc)))
            continue
        row["source"], row["line"] = source, number
        parsed.rows.append(row)
    return parsed


def _load(text: str) -> tuple[dict[str, Any], list[str]]:
    """The line's object and the keys written twice in it, read the strict way."""
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    try:
        document = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise ValueError(f"column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply to be a Network Firewall log event") from None
    if _SURROGATE.search(text) and _lone_surrogate(document):
        # "\ud800" alone: Python reads it, but it is no character, and no file can hold it
        raise ValueError("an escaped UTF-16 surrogate (\\ud800-\\udfff) without its pair")
    return document, duplicates


def _lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(v) for v in value)
    return False


def _load_fast(text: str) -> tuple[Any, list[str]]:
    """orjson's reading of the line when no key in it can be written twice; otherwise ``_load``.

    Every key in the text ends with '"' and, after JSON white space, ':'. So when the text holds
    no more such endings than the parsed objects hold keys, no key was written twice (orjson,
    like every JSON reader, would have kept only the last). Text orjson refuses and Python
    accepts (NaN, integers past 64 bits) goes to ``_load`` too."""
    try:
        document = orjson.loads(text)
        keys = _count_keys(document)
    except (orjson.JSONDecodeError, RecursionError):
        return _load(text)
    if keys < 0:
        return _load(text)  # a number with a fraction or past 64 bits: orjson's float for it
    if keys == text.count('":') and _SPACED.search(text) is None:
        return document, []
    if keys == len(_KEY_END.findall(text)):
        return document, []
    return _load(text)


def _count_keys(value: object) -> int:
    """The keys of every object in the value; -1 if it holds a float anywhere (orjson reads an
    integer past 64 bits as a float, where Python keeps the integer)."""
    if isinstance(value, dict):
        values: Iterable[object] = value.values()
        count = len(value)
    elif isinstance(value, list):
        values, count = value, 0
    else:
        return -1 if isinstance(value, float) else 0
    for v in values:
        kind = type(v)
        if kind is dict or kind is list:
            inner = _count_keys(v)
            if inner < 0:
                return -1
            count += inner
        elif kind is float:
            return -1
    return count


def _values(document: Any, duplicates: list[str]) -> dict[str, Any]:
    if not isinstance(document, dict) or not isinstance(document.get("event"), dict):
        raise ValueError("expected a Network Firewall log event: an object with an 'event' object")
    event: dict[str, Any] = document["event"]
    alert = _object(event, "alert")
    netflow = _object(event, "netflow")
    tcp = _object(event, "tcp")
    tls = _object(event, "tls")
    http = _object(event, "http")
    revocation = _object(event, "revocation_check")
    tls_error = event.get("tls_error")
    event_type = _text(event.get("event_type"))
    src_ip, dest_ip = _text(event.get("src_ip")), _text(event.get("dest_ip"))
    extra = {k: _dump(v) for k, v in document.items() if k not in TOP_KEYS}
    extra.update({f"event.{k}": _dump(v) for k, v in event.items() if k not in MAPPED_EVENT_KEYS})
    # Inside the objects natlens maps, the keys it does not (http.http_user_agent,
    # netflow.min_ttl, tls.subject ...) are kept too.
    for name, mapped in MAPPED_SUBKEYS.items():
        inner = event.get(name)
        if isinstance(inner, dict):
            extra.update(
                {f"event.{name}.{k}": _dump(v) for k, v in inner.items() if k not in mapped}
            )
    row = {
        "firewall_name": _text(document.get("firewall_name")),
        "availability_zone": _text(document.get("availability_zone")),
        "event_timestamp": _integer("event_timestamp", document.get("event_timestamp")),
        "log_type": _log_type(event_type, event),
        "event_type": event_type,
        "timestamp": _text(event.get("timestamp")),
        "flow_id": _integer("flow_id", event.get("flow_id")),
        "src_ip": src_ip,
        "src_port": _port("src_port", event.get("src_port")),
        "dest_ip": dest_ip,
        "dest_port": _port("dest_port", event.get("dest_port")),
        "proto": _text(event.get("proto")),
        "app_proto": _text(event.get("app_proto")),
        "direction": _text(event.get("direction")),
        "alert_action": _text(alert.get("action")),
        "signature_id": _integer("alert.signature_id", alert.get("signature_id")),
        "signature": _text(alert.get("signature")),
        "category": _text(alert.get("category")),
        "severity": _int32("alert.severity", alert.get("severity")),
        "verdict_action": _text(_object(event, "verdict").get("action")),
        "netflow_pkts": _counter("netflow.pkts", netflow.get("pkts")),
        "netflow_bytes": _counter("netflow.bytes", netflow.get("bytes")),
        "netflow_start": _text(netflow.get("start")),
        "netflow_end": _text(netflow.get("end")),
        "netflow_age": _integer("netflow.age", netflow.get("age")),
        "event_time": _epoch("timestamp", event.get("timestamp")),
        "flow_start": _epoch("netflow.start", netflow.get("start")),
        "flow_end": _epoch("netflow.end", netflow.get("end")),
        "tcp_flags": _hex_flags(tcp.get("tcp_flags")),
        "sni": _text(tls.get("sni")) or _text(event.get("sni")),
        "http_hostname": _text(http.get("hostname")),
        "http_url": _text(http.get("url")),
        "tls_error": _text(tls_error.get("error_message"))
        if isinstance(tls_error, dict)
        else _text(tls_error),
        "revocation_status": _text(revocation.get("status")),
        "revocation_action": _text(revocation.get("action")),
        "aws_category": _text(event.get("aws_category")),
        "tls_inspected": _flag("tls_inspected", event.get("tls_inspected")),
        "duplicate_keys": sorted(set(duplicates)),
        "extra": extra,
        "src_ip_v4": _v4(src_ip),
        "dest_ip_v4": _v4(dest_ip),
    }
    if row["event_time"] is None:
        row["event_time"] = row["event_timestamp"]
    return row


def _log_type(event_type: str | None, event: dict[str, Any]) -> str | None:
    if event_type == "alert":
        return "alert"
    if event_type == "netflow":
        return "flow"
    if event_type is None and ("tls_error" in event or "revocation_check" in event):
        return "tls"
    return None


def _object(container: dict[str, Any], key: str) -> dict[str, Any]:
    value = container.get(key)
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _integer(name: str, value: object) -> int | None:
    """A number, or a number written as a string (AWS writes both)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _BadValue(name, value, "a number")
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not _INT64[0] <= number <= _INT64[1]:
        raise _BadValue(name, value, "a whole number (a 64-bit integer)")
    return number


def _int32(name: str, value: object) -> int | None:
    number = _integer(name, value)
    if number is not None and not -(2**31) <= number < 2**31:
        raise _BadValue(name, value, "a whole number (a 32-bit integer)")
    return number


def _flag(name: str, value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _BadValue(name, value, "true or false")


def _counter(name: str, value: object) -> int | None:
    """Packets or bytes: 0 to schema.MAX_COUNT, as for flow log records."""
    number = _integer(name, value)
    if number is not None and not 0 <= number <= MAX_COUNT:
        raise _BadValue(name, value, "a count from 0 to 2^44")
    return number


def _port(name: str, value: object) -> int | None:
    port = _integer(name, value)
    if port is not None and not 0 <= port <= 65535:
        raise _BadValue(name, value, "a port (0-65535)")
    return port


def _epoch(name: str, value: object) -> int | None:
    """Epoch seconds of an EVE time: "2020-10-13T22:10:01.006481+0000" (alert and flow logs) or
    "2024-02-19T16:46:29.441824Z" (the TLS engine)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return math.floor(moment.timestamp())
    raise _BadValue(name, value, "an ISO 8601 time such as 2020-10-13T22:10:01.006481+0000")


def _hex_flags(value: object) -> int | None:
    """Suricata writes TCP flags as hex text: "12" is 0x12 = 18, SYN-ACK."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            flags = int(value, 16)
        except ValueError:
            raise _BadValue("tcp.tcp_flags", value, "hexadecimal TCP flags") from None
        if 0 <= flags <= 0xFF:
            return flags
    raise _BadValue("tcp.tcp_flags", value, "hexadecimal TCP flags (00-ff)")


def _v4(address: str | None) -> int | None:
    """The address as a number if it is IPv4, as Python's ipaddress reads one (four decimal
    octets of ASCII digits, no leading zeros); otherwise None."""
    match = _V4.fullmatch(address) if address else None
    if match is None:
        return None
    a, b, c, d = match.groups()
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


def _dump(value: object) -> str:
    """json.dumps(value), without its cost for the values AWS writes: numbers, flags, plain text."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if type(value) is str and _PLAIN.fullmatch(value):
        return f'"{value}"'
    return json.dumps(value)
