"""The fields a Logs Insights query sees, as CloudWatch discovers them (docs/insights.md,
"Field discovery"), each an expression over a natlens case's tables.

VPC flow logs: the default format's fields in camelCase (``srcAddr``, ``startTime`` ...), plus
``@timestamp`` (the record's ``start``, docs/aws.md §2.1), ``@message`` (the record's line, in its
flow log's format) and ``@logStream`` (for records read from CloudWatch Logs). The
other fields of a custom format are not discovered: a query reaches them with ``parse @message``.

Network Firewall logs: every JSON key, its path joined with dots (``event.src_ip``,
``event.alert.signature``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp

from natlens.case import Case
from natlens.errors import UsageError
from natlens.schema import DEFAULT_FORMAT, FIELDS_BY_NAME, Kind, column_name

# CloudWatch's name of each default-format field (docs/aws.md §8).
FLOW_DISCOVERED: dict[str, str] = {
    "version": "version",
    "accountId": "account-id",
    "interfaceId": "interface-id",
    "srcAddr": "srcaddr",
    "dstAddr": "dstaddr",
    "srcPort": "srcport",
    "dstPort": "dstport",
    "protocol": "protocol",
    "packets": "packets",
    "bytes": "bytes",
    "startTime": "start",
    "endTime": "end",
    "action": "action",
    "logStatus": "log-status",
}
SYSTEM_FIELDS = ("@timestamp", "@message", "@logStream", "@log", "@ingestionTime")

# Network Firewall: the JSON path CloudWatch names a field by -> the case's column, its kind.
FIREWALL_FIELDS: dict[str, tuple[str, str]] = {
    "firewall_name": ("firewall_name", "str"),
    "availability_zone": ("availability_zone", "str"),
    "event_timestamp": ("event_timestamp", "num"),
    "event.aws_category": ("aws_category", "str"),
    "event.timestamp": ("timestamp", "str"),
    "event.flow_id": ("flow_id", "num"),
    "event.event_type": ("event_type", "str"),
    "event.src_ip": ("src_ip", "str"),
    "event.src_port": ("src_port", "num"),
    "event.dest_ip": ("dest_ip", "str"),
    "event.dest_port": ("dest_port", "num"),
    "event.proto": ("proto", "str"),
    "event.app_proto": ("app_proto", "str"),
    "event.direction": ("direction", "str"),
    "event.alert.action": ("alert_action", "str"),
    "event.alert.signature_id": ("signature_id", "num"),
    "event.alert.signature": ("signature", "str"),
    "event.alert.category": ("category", "str"),
    "event.alert.severity": ("severity", "num"),
    "event.verdict.action": ("verdict_action", "str"),
    "event.netflow.pkts": ("netflow_pkts", "num"),
    "event.netflow.bytes": ("netflow_bytes", "num"),
    "event.netflow.start": ("netflow_start", "str"),
    "event.netflow.end": ("netflow_end", "str"),
    "event.netflow.age": ("netflow_age", "num"),
    "event.http.hostname": ("http_hostname", "str"),
    "event.http.url": ("http_url", "str"),
    "event.tls_error.error_message": ("tls_error", "str"),
    "event.revocation_check.status": ("revocation_status", "str"),
    "event.revocation_check.action": ("revocation_action", "str"),
    "event.tls_inspected": ("tls_inspected", "bool"),
}
# Address fields with an integer column beside them (IPv4 as a number): subnet tests are ranges.
V4_COLUMNS = {
    "srcAddr": "srcaddr_v4",
    "dstAddr": "dstaddr_v4",
    "event.src_ip": "src_ip_v4",
    "event.dest_ip": "dest_ip_v4",
}
FIREWALL_TOP_KEYS = ("firewall_name", "availability_zone", "event_timestamp")
# What a query shows when it names no field (CloudWatch's console shows @timestamp, @message).
FIREWALL_SHOWN = (
    "@timestamp",
    "event.event_type",
    "event.src_ip",
    "event.src_port",
    "event.dest_ip",
    "event.dest_port",
    "event.proto",
    "event.alert.action",
    "event.alert.signature",
)


def camel(aws_name: str) -> str:
    """A custom-format field's name in camelCase, as people name it in ``parse ... as``:
    ``pkt-srcaddr`` -> ``pktSrcAddr``, ``tcp-flags`` -> ``tcpFlags``."""
    words = {"srcaddr": "SrcAddr", "dstaddr": "DstAddr", "srcport": "SrcPort", "dstport": "DstPort"}
    head, *rest = aws_name.split("-")
    return head + "".join(words.get(w, w[:1].upper() + w[1:]) for w in rest)


DISCOVERED_NAME = {aws: name for name, aws in FLOW_DISCOVERED.items()}


def insights_name(aws_name: str) -> str:
    """The name a query gives a field: CloudWatch's for a default one (srcAddr, startTime),
    camelCase for the others (tcpFlags)."""
    return DISCOVERED_NAME.get(aws_name) or camel(aws_name)


def is_firewall_name(name: str) -> bool:
    return name.startswith("event.") or name in FIREWALL_TOP_KEYS


@dataclass
class Column:
    """A field as the compiler sees it: an expression and its kind (num, str, bool, time,
    any)."""

    sql: exp.Expr
    kind: str


def _quoted(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


@dataclass
class Formats:
    """Which flow log format each source's records were read in (from the case's manifest)."""

    by_source: dict[str, tuple[str, ...]] = field(default_factory=dict)
    only: tuple[str, ...] | None = None  # the case's one format, when it has one
    all: list[tuple[str, ...]] = field(default_factory=list)

    @classmethod
    def of(cls, case: Case | None) -> Formats:
        if case is None:
            return cls(only=DEFAULT_FORMAT, all=[DEFAULT_FORMAT])
        formats = [tuple(f["fields"]) for f in case.manifest.get("formats", [])]
        unique = list(dict.fromkeys(formats))
        by_source = {
            source: tuple(entry["fields"])
            for source, entry in case.manifest.get("sources", {}).items()
            if entry.get("fields")
        }
        return cls(by_source, unique[0] if len(unique) == 1 else None, unique)

    def default_prefixed(self) -> bool:
        """Every format starts with the default format's fields, in order: CloudWatch reads
        them at the same places as in the default format."""
        return all(f[: len(DEFAULT_FORMAT)] == DEFAULT_FORMAT for f in self.all)

    def not_default(self) -> tuple[str, ...] | None:
        for fmt in self.all:
            if fmt[: len(DEFAULT_FORMAT)] != DEFAULT_FORMAT:
                return fmt
        return None


def parse_for(fmt: tuple[str, ...], names: list[str] | None = None) -> str:
    """The ``parse @message`` command that reads ``fmt``'s fields by place: a glob of one ``*``
    per field when every field is wanted, else a regular expression for the wanted ones."""
    if names is None:
        stars = " ".join("*" for _ in fmt)
        return f'parse @message "{stars}" as {", ".join(insights_name(n) for n in fmt)}'
    wanted = set(names)
    parts, skipped = [], 0
    last = max(i for i, n in enumerate(fmt) if n in wanted)
    for i, name in enumerate(fmt[: last + 1]):
        if name in wanted:
            if skipped:
                parts.append(f"(?:\\S+\\s+){{{skipped}}}")
                skipped = 0
            parts.append(f"(?<{camel(name)}>\\S+)" + ("" if i == last else "\\s+"))
        else:
            skipped += 1
    return f"parse @message /^{''.join(parts)}/"


class Discovery:
    """The fields of one log type (``vpc`` or ``firewall``) for one target (``case`` tables, or
    Athena's ``vpc_flow_logs``). ``use(name)`` gives the field's Column, or refuses a name
    CloudWatch would not discover, saying what would."""

    def __init__(
        self, logs: str, formats: Formats, target: str, add: Callable[[str, exp.Expr], exp.Expr]
    ) -> None:
        self.logs = logs
        self.formats = formats
        self.target = target  # case or athena
        self._add = add  # puts an expression in the base select, returns its column
        self._cache: dict[str, Column] = {}

    def names(self) -> list[str]:
        if self.logs == "firewall":
            return ["@timestamp", *FIREWALL_FIELDS]
        return [*SYSTEM_FIELDS, *FLOW_DISCOVERED]

    def shown_by_default(self) -> list[str]:
        return list(FIREWALL_SHOWN) if self.logs == "firewall" else ["@timestamp", "@message"]

    def use(self, name: str, pos: int, where: Callable[[int], str]) -> Column:
        if name not in self._cache:
            self._cache[name] = self._column(name, pos, where)
        return self._cache[name]

    def v4(self, name: str) -> exp.Expr | None:
        """The IPv4 integer column beside a discovered address field, if it has one."""
        column = V4_COLUMNS.get(name)
        if column is None or self.target != "case":
            return None
        return self._base(name + "#v4", _quoted(column))

    def _base(self, key: str, sql: exp.Expr) -> exp.Expr:
        return self._add(key, sql)

    def _column(self, name: str, pos: int, where: Callable[[int], str]) -> Column:
        if self.logs == "firewall":
            return self._firewall(name, pos, where)
        if name in FLOW_DISCOVERED:
            if not self.formats.default_prefixed():
                fmt = self.formats.not_default() or ()
                raise UsageError(
                    f"field {name!r} ({where(pos)}): some of these flow logs are in a custom "
                    "format that does not start with the default format's fields, and AWS does not "
                    "say which fields CloudWatch discovers then",
                    hint=f"read them from the message: {parse_for(fmt)}",
                )
            aws = FLOW_DISCOVERED[name]
            kind = "num" if FIELDS_BY_NAME[aws].kind in (Kind.INT32, Kind.INT64) else "str"
            column: exp.Expr = _quoted(column_name(aws))
            if kind == "str":  # a record without it (NODATA, SKIPDATA) writes -
                column = exp.Coalesce(this=column, expressions=[exp.Literal.string("-")])
            return Column(self._base(name, column), kind)
        if name == "@timestamp":
            ms = exp.Mul(this=_quoted("start"), expression=exp.Literal.number(1000))
            return Column(self._base(name, ms), "time")
        if name == "@message":
            return Column(self._base(name, self._message(pos, where)), "str")
        if name in ("@logStream", "@log"):
            return Column(self._base(name, self._stream(name, pos, where)), "str")
        if name == "@ingestionTime":
            raise UsageError(
                f"field '@ingestionTime' ({where(pos)}): natlens does not keep when CloudWatch "
                "received a record",
                hint="use @timestamp (the record's start)",
            )
        raise self._unknown(name, pos, where)

    def _unknown(self, name: str, pos: int, where: Callable[[int], str]) -> UsageError:
        custom = {camel(f): f for fmt in self.formats.all for f in fmt if f not in DEFAULT_FORMAT}
        if name in custom or name in ("start", "end"):
            aws = custom.get(name, name)
            if name in ("start", "end"):
                return UsageError(
                    f"field {name!r} ({where(pos)}): CloudWatch names it {name}Time for flow logs",
                    hint=f"write {name}Time",
                )
            fmt = next(f for f in self.formats.all if aws in f)
            return UsageError(
                f"field {name!r} ({where(pos)}): CloudWatch discovers only the default format's "
                f"fields; {aws} is in your flow logs' custom format, so a query reads it from "
                "the message",
                hint=f"start the query with: {parse_for(fmt, [aws])}",
            )
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.6)
        close += [n for n in self.names() if n.lower() == name.lower()]
        hint = f"did you mean {close[-1]}?" if close else "docs/insights.md lists the fields"
        return UsageError(
            f"field {name!r} ({where(pos)}): no such field in {self.logs} logs (CloudWatch "
            "would find it in no event)",
            hint=hint,
        )

    def _message(self, pos: int, where: Callable[[int], str]) -> exp.Expr:
        if self.target == "athena":
            fmt = self.formats.only or DEFAULT_FORMAT
            return _line(fmt, athena=True)
        groups: dict[tuple[str, ...], list[str]] = {}
        for source, fmt in self.formats.by_source.items():
            groups.setdefault(fmt, []).append(source)
        if self.formats.only is not None:
            return _line(self.formats.only)
        if not self.formats.all:  # no flow log records at all
            return exp.Null()
        if not groups:
            raise UsageError(
                f"field '@message' ({where(pos)}): the case holds records of "
                f"{len(self.formats.all)} formats and does not say which source had which "
                "(it was read by an older natlens)",
                hint="ingest the logs into a new case",
            )
        case = exp.Case()
        for fmt, sources in groups.items():
            case = case.when(
                exp.In(
                    this=_quoted("source"), expressions=[exp.Literal.string(s) for s in sources]
                ),
                _line(fmt),
            )
        return case

    def _stream(self, name: str, pos: int, where: Callable[[int], str]) -> exp.Expr:
        """``@logStream``: the stream of a record read from CloudWatch Logs (``cwl://GROUP/
        STREAM``), none for files and objects. ``@log`` is refused: its account is the log
        group's, which natlens does not know (a flow log may publish to another account's
        group)."""
        if self.target == "athena":
            raise UsageError(f"field {name!r} ({where(pos)}): an Athena table has no log stream")
        if name == "@log":
            raise UsageError(
                f"field '@log' ({where(pos)}): natlens does not know the account of the log "
                "group a record came from",
                hint="@logStream names the stream (the records' interface)",
            )
        source = _quoted("source")
        cwl = exp.func("starts_with", source, exp.Literal.string("cwl://"))
        stream = exp.RegexpExtract(
            this=source,
            expression=exp.Literal.string("^cwl://(.*)/([^/]*)$"),
            group=exp.Literal.number(2),
        )
        return exp.Case().when(cwl, stream)

    def _firewall(self, name: str, pos: int, where: Callable[[int], str]) -> Column:
        if name == "@timestamp":
            seconds = exp.Coalesce(
                this=_quoted("event_timestamp"), expressions=[_quoted("event_time")]
            )
            return Column(
                self._base(name, exp.Mul(this=seconds, expression=exp.Literal.number(1000))), "time"
            )
        if name in ("@message", "@logStream", "@log", "@ingestionTime"):
            raise UsageError(
                f"field {name!r} ({where(pos)}): natlens keeps a Network Firewall event's "
                "fields, not its line or where CloudWatch kept it",
                hint="name the fields instead (event.src_ip, event.alert.signature ...)",
            )
        if name == "event.tcp.tcp_flags":  # the hex text AWS writes ("02"), from the number
            hex_text = exp.Lower(this=exp.Hex(this=_quoted("tcp_flags")))
            padded = exp.Pad(
                this=hex_text,
                expression=exp.Literal.number(2),
                fill_pattern=exp.Literal.string("0"),
                is_left=True,
            )
            return Column(self._base(name, padded), "str")
        if name == "event.tls.sni" or name == "event.sni":
            tls_log = exp.EQ(this=_quoted("log_type"), expression=exp.Literal.string("tls"))
            test = (
                tls_log
                if name == "event.sni"
                else exp.Not(this=exp.Coalesce(this=tls_log, expressions=[exp.false()]))
            )
            return Column(self._base(name, exp.Case().when(test, _quoted("sni"))), "str")
        if name in FIREWALL_FIELDS:
            column, kind = FIREWALL_FIELDS[name]
            return Column(self._base(name, _quoted(column)), kind)
        if not is_firewall_name(name):
            close = difflib.get_close_matches(name, list(FIREWALL_FIELDS), n=1, cutoff=0.6)
            raise UsageError(
                f"field {name!r} ({where(pos)}): Network Firewall logs name their fields by "
                "their JSON path (event.src_ip, event.alert.signature, firewall_name ...)",
                hint=f"did you mean {close[0]}?" if close else "docs/insights.md lists them",
            )
        # Any other key the event has: kept by ingest as JSON text in ``extra``, under its own
        # path or inside the object above it (event.http.http2 holds stream_id).
        candidates: list[exp.Expr] = [json_text(_extra(name))]
        parts = name.split(".")
        for cut in range(len(parts) - 1, max(len(parts) - 4, 1), -1):
            rest = parts[cut:]
            if not all(re.fullmatch(r"[A-Za-z0-9_@]+", p) for p in rest):
                break
            path = exp.JSONPath(
                expressions=[exp.JSONPathRoot(), *(exp.JSONPathKey(this=p) for p in rest)]
            )
            inner = exp.JSONExtractScalar(this=_extra(".".join(parts[:cut])), expression=path)
            candidates.append(inner)
        value = exp.Coalesce(this=candidates[0], expressions=candidates[1:])
        return Column(self._base(name, value), "any")


def _extra(key: str) -> exp.Expr:
    return exp.Bracket(this=_quoted("extra"), expressions=[exp.Literal.string(key)])


def json_text(value: exp.Expr) -> exp.Expr:
    """A JSON value kept as text, as CloudWatch shows it: a string without its quotes."""
    quoted = exp.Like(this=value, expression=exp.Literal.string('"%'))
    unquoted = exp.JSONExtractScalar(
        this=value, expression=exp.JSONPath(expressions=[exp.JSONPathRoot()])
    )
    return exp.Case().when(quoted, unquoted).else_(value)


def _line(fmt: tuple[str, ...], athena: bool = False) -> exp.Expr:
    """The record's text in ``fmt``: each field's value, ``-`` where it has none."""
    parts: list[exp.Expr] = [exp.Literal.string(" ")]
    for name in fmt:
        if name in FIELDS_BY_NAME:
            value: exp.Expr = _quoted(column_name(name))
        elif athena:
            value = exp.Null()
        else:
            value = exp.Bracket(this=_quoted("extra"), expressions=[exp.Literal.string(name)])
        text = exp.Cast(this=value, to=exp.DataType.build("VARCHAR"))
        parts.append(exp.Coalesce(this=text, expressions=[exp.Literal.string("-")]))
    return exp.ConcatWs(expressions=parts)
