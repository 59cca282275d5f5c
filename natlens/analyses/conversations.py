"""Conversations and who started them (DESIGN.md, problem 1).

The SQL (``conversations.sql``) does the work on any engine; this module fills in what the SQL
needs to know (the context's addresses, private ranges, the service port list, a time range).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path

import pyarrow as pa
from sqlglot import exp

from natlens.case import Case
from natlens.engine import Engine
from natlens.errors import UsageError
from natlens.formats.describe_json import SG_PROTOCOLS, Context
from natlens.sqltree import (
    chain,
    column,
    cte,
    ctes_of,
    fragment,
    rename_tables,
    select_all,
    template,
    values_table,
    with_ctes,
)

# docs/aws.md §4: a NAT gateway times out a connection idle for 350 s; the same 5-tuple after
# that is a new connection.
IDLE_TIMEOUT = 350
# fan-in: this many distinct peers on one side's address and port, against one on the other.
FAN_IN = 4

# Private and special-purpose IPv4 ranges: RFC 1918, shared address space (RFC 6598, which a VPC
# may use), link-local, loopback.
PRIVATE_V4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
              "169.254.0.0/16", "127.0.0.0/8")  # fmt: skip
# IPv6: unique local fc00::/7 and link-local fe80::/10, by their text.
PRIVATE_V6_PREFIXES = ("fc", "fd", "fe8", "fe9", "fea", "feb")


@dataclass
class ConversationOptions:
    context: Context | None = None
    since: int | None = None  # epoch seconds: records that end at or after it
    until: int | None = None  # records that start at or before it
    ip: str | None = None  # only conversations with this address on either side
    port: int | None = None  # ... or this port
    # IPv6 blocks inside the VPC found in the logs when the context gives none (infer_inside)
    inside_cidrs: tuple[str, ...] = ()
    # What checking the context against the logs left out of it (context_check.prepare);
    # None until checked. Every analysis checks it before use.
    context_warnings: list[str] | None = None


@cache
def service_ports() -> dict[str, tuple[int, ...]]:
    """The bundled service list (``scripts/gen_services.py``), ports 1024 and above, per
    protocol: below 1024 every port counts as well-known."""
    text = resources.files("natlens").joinpath("data/services.tsv").read_text()
    ports: dict[str, set[int]] = {"tcp": set(), "udp": set()}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        port, protocol, _name = line.split("\t")
        if int(port) >= 1024 and protocol in ports:
            ports[protocol].add(int(port))
    return {k: tuple(sorted(v)) for k, v in ports.items()}


def _expr(value: exp.Expr | str) -> exp.Expr:
    return column(value) if isinstance(value, str) else value


def _or(conditions: list[exp.Expr]) -> exp.Expr:
    return exp.or_(*conditions) if conditions else exp.false()


def private_sql(address: exp.Expr | str, v4: exp.Expr | str, cidrs: list[str]) -> exp.Expr:
    """1 when the address is private or inside one of ``cidrs`` (the VPC's, IPv4 or IPv6;
    pass IPv4 ones only where IPv6 cannot matter: the IPv6 test is long)."""
    address, v4 = _expr(address), _expr(v4)
    ranges: list[exp.Expr] = []
    v6_ranges = []
    for cidr in [*PRIVATE_V4, *cidrs]:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if network.version == 4:
            low, high = int(network.network_address), int(network.broadcast_address)
            ranges.append(fragment("$v4 BETWEEN $low AND $high", v4=v4, low=low, high=high))
        else:
            v6_ranges.append(v6_range(network))
    v6 = [fragment("lower($a) LIKE $p", a=address, p=f"{p}%") for p in PRIVATE_V6_PREFIXES]
    if v6_ranges:
        hexed = v6_hex_sql(address)
        v6 += [
            fragment("$hex BETWEEN $low AND $high", hex=hexed, low=low, high=high)
            for low, high in v6_ranges
        ]
    return fragment(
        "CASE WHEN ($v4 IS NOT NULL AND ($v4_ranges)) OR ($v4 IS NULL AND ($v6_ranges)) "
        "THEN 1 ELSE 0 END",
        v4=v4,
        v4_ranges=_or(ranges),
        v6_ranges=_or(v6),
    )


def v6_range(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[str, str]:
    """An IPv6 network's first and last address as 32 hex digits (``v6_hex_sql``'s form)."""
    return f"{int(network.network_address):032x}", f"{int(network.broadcast_address):032x}"


def v6_hex_sql(address: exp.Expr | str) -> exp.Expr:
    """An IPv6 address's text as its 32 hex digits, in SQL every engine runs, so that CIDR
    tests are comparisons of equal-length text: ``::`` expanded to the zero groups it stands
    for, each group zero-padded. Meaningless (never NULL) for other text: callers test IPv4
    first. Kept small: Spark plans every copy of it."""
    a = _expr(address)
    # "::1" expands to ":0:...:1": its first group is the empty text before the first colon
    offset = fragment("(CASE WHEN substr($a, 1, 1) = ':' THEN 1 ELSE 0 END)", a=a)
    # with :: inside, the colons count the groups written; at either end, one fewer
    full = fragment(
        "replace($a, '::', concat(':', repeat('0:', 8 - (length($a) - length(replace($a, ':', "
        "''))) + $offset + (CASE WHEN substr($a, length($a), 1) = ':' THEN 1 ELSE 0 END))))",
        a=a,
        offset=offset,
    )
    groups = [
        fragment(
            "lpad(lower(split_part($full, ':', $k + $offset)), 4, '0')",
            full=full,
            k=k,
            offset=offset,
        )
        for k in range(1, 9)
    ]
    return exp.Concat(expressions=groups, safe=True, coalesce=True)


def _rank(side: str, peer: str) -> exp.Expr:
    ports = service_ports()
    port = exp.column(f"{side}_port")
    return fragment(
        "CASE"
        " WHEN protocol NOT IN (6, 17) THEN CAST(NULL AS INTEGER)"
        # AWS: NAT gateways, load balancers and Lambda use source ports 1024-65535.
        " WHEN $port >= 1024 AND ($wide = 'any' OR ($wide = 'internet' AND $peer_private = 0)"
        " OR ($wide = 'private' AND $peer_private = 1)) THEN 0"
        " WHEN $port < 1024 THEN 3"
        " WHEN (protocol = 6 AND $tcp) OR (protocol = 17 AND $udp) THEN 2"
        " WHEN $port >= 32768 THEN 0"
        " ELSE 1 END",
        port=port,
        wide=exp.column(f"{side}_wide_ports"),
        peer_private=exp.column(f"{peer}_private"),
        tcp=port.isin(*ports["tcp"]),
        udp=port.isin(*ports["udp"]),
    )


# Interfaces named per conversation (interface_count says how many logged it).
INTERFACE_SLOTS = 6
# Record kinds on one interface: as addressed, relayed out (srcaddr is the interface's own),
# relayed in (dstaddr is).
_KINDS = ("relayed = 0", "relayed = 1", "relayed >= 2")


def _kind_sums() -> list[exp.Expr]:
    parts = []
    for direction, flag in (("fwd", 1), ("rev", 0)):
        for measure in ("packets", "bytes"):
            for k, test in enumerate(_KINDS):
                parts.append(
                    exp.alias_(
                        fragment(
                            "sum(CASE WHEN fwd = $flag AND $test THEN $measure ELSE 0 END)",
                            flag=flag,
                            test=fragment(test),
                            measure=exp.column(measure),
                        ),
                        f"{direction}_{measure}_{k}",
                    )
                )
    return parts


def _kind_max() -> list[exp.Expr]:
    parts = []
    for direction in ("fwd", "rev"):
        for measure in ("packets", "bytes"):
            kinds = [exp.column(f"{direction}_{measure}_{k}") for k in range(len(_KINDS))]
            parts.append(
                exp.alias_(
                    fragment(
                        "CAST(max($greatest) AS BIGINT)",
                        greatest=exp.Greatest(this=kinds[0], expressions=kinds[1:]),
                    ),
                    f"{direction}_{measure}",
                )
            )
    return parts


def _interface_slots() -> list[exp.Expr]:
    return [
        exp.alias_(
            fragment("max(CASE WHEN interface_number = $k THEN interface_id END)", k=k),
            f"interface_{k}",
        )
        for k in range(1, INTERFACE_SLOTS + 1)
    ]


def text_rows_sql(rows: Sequence[Mapping[str, object]], columns: tuple[str, ...]) -> exp.Select:
    """Rows of text (the context's addresses and ids) as a SELECT with these columns."""
    return values_table(
        [tuple(row[c] for c in columns) for row in rows], columns, ("VARCHAR",) * len(columns)
    )


def _known_hosts(context: Context | None) -> exp.Select:
    rows = context.address_roles() if context else []
    return text_rows_sql(rows, ("address", "role", "resource_id", "interface_id"))


def v4_sql(address: exp.Expr | str) -> exp.Expr:
    """An IPv4 address's text as an integer, in SQL every engine runs; NULL for IPv6."""
    return fragment(
        r"CASE WHEN regexp_matches($a, '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$') THEN"
        " CAST(split_part($a, '.', 1) AS BIGINT) * 16777216"
        " + CAST(split_part($a, '.', 2) AS BIGINT) * 65536"
        " + CAST(split_part($a, '.', 3) AS BIGINT) * 256"
        " + CAST(split_part($a, '.', 4) AS BIGINT) * 1 END",
        a=_expr(address),
    )


# An existing table with AWS's Athena columns only: the columns natlens reads.
_AWS_COLUMNS = ("interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets",
                "bytes", "start", "end", "action", "log_status", "tcp_flags", "pkt_srcaddr",
                "pkt_dstaddr")  # fmt: skip


def external_table_prelude() -> exp.CTE:
    """For a flow-log table with AWS's Athena columns only (no natlens derived columns): the
    columns the analysis reads, computed from AWS's, as a CTE named ``flow_records``."""
    columns: list[exp.Expr] = [exp.column(c, quoted=c == "end") for c in _AWS_COLUMNS]
    columns += [
        exp.alias_(v4_sql(name), f"{name}_v4")
        for name in ("srcaddr", "dstaddr", "pkt_srcaddr", "pkt_dstaddr")
    ]
    columns += [fragment("CAST(NULL AS VARCHAR) AS source"),
                fragment("CAST(NULL AS BIGINT) AS line")]  # fmt: skip
    return cte("flow_records", exp.select(*columns).from_("flows"))


def _rule_in(peer: str, ipv6: bool) -> exp.Expr:
    """Whether ``peer`` lies in the rule's source CIDR (``sg_rules``'s columns)."""
    v4 = v4_sql(peer)
    test = fragment("($v4 IS NOT NULL AND $v4 BETWEEN r.v4_low AND r.v4_high)", v4=v4)
    if ipv6:
        hexed = v6_hex_sql(peer)
        test = fragment(
            "$test OR ($v4 IS NULL AND $hex BETWEEN r.v6_low AND r.v6_high)",
            test=test, v4=v4, hex=hexed,
        )  # fmt: skip
    return test


# describe-security-groups' protocol names, by number ("all" for -1)
SG_PROTOCOL_NAMES = {number: "all" if number == -1 else name
                     for name, number in SG_PROTOCOLS.items()}  # fmt: skip
SG_COLUMNS = ("address", "protocol", "from_port", "to_port", "v4_low", "v4_high", "v6_low",
              "v6_high", "rule")  # fmt: skip


def sg_rule_rows(context: Context | None) -> list[tuple[object, ...]]:
    """The context's security group rules that admit internet addresses, one row per address
    and source CIDR (``sg_rules``), and a marker row (protocol -2) per address whose groups are
    all known."""
    rows: list[tuple[object, ...]] = []
    if context is None:
        return rows
    for address, rules in sorted(context.security_group_rules().items()):
        rows.append((address, -2, 0, -1, None, None, None, None, None))
        for rule in rules:
            try:
                network = ipaddress.ip_network(rule["source"], strict=False)
            except ValueError:
                continue
            ports = f"{rule['from_port']}-{rule['to_port']}"
            if rule["from_port"] == rule["to_port"]:
                ports = str(rule["from_port"])
            protocol = SG_PROTOCOL_NAMES.get(rule["protocol"], str(rule["protocol"]))
            text = f"{rule['group_id']} {protocol} {ports} from {network}"
            if network.version == 4:
                bounds: tuple[object, ...] = (
                    int(network.network_address),
                    int(network.broadcast_address),
                    None,
                    None,
                )
            else:
                bounds = (None, None, *v6_range(network))
            rows.append((address, rule["protocol"], rule["from_port"], rule["to_port"],
                         *bounds, text))  # fmt: skip
    return rows


SG_TYPES = ("VARCHAR", "INTEGER", "INTEGER", "INTEGER", "BIGINT", "BIGINT", "VARCHAR",
            "VARCHAR", "VARCHAR")  # fmt: skip


def _time_filter(options: ConversationOptions, table: str = "") -> exp.Expr | None:
    """The records that overlap --since/--until: end at or after since, start at or before
    until (``table``: a table alias such as ``f``); None for all."""
    conditions: list[exp.Expr] = []
    if options.since is not None:
        end = exp.column("end", table=table or None, quoted=True)
        conditions.append(end >= exp.Literal.number(int(options.since)))
    if options.until is not None:
        conditions.append(exp.column("start", table=table or None) <= int(options.until))
    return exp.and_(*conditions) if conditions else None


def conversation_ctes(
    options: ConversationOptions, in_case: bool = True, provenance: bool = False
) -> exp.Query:
    """The CTEs every conversation-based analysis starts from, ending with ``explained``, as
    ``WITH ... SELECT * FROM explained``.
    ``in_case=False``: read an existing flow-log table with AWS's columns only (Athena's).
    ``provenance``: carry each record's source and line (only to map records to conversations:
    the long paths weigh on the sort that splits sessions)."""
    context = options.context
    cidrs = [*(context.inside_cidrs() if context else []), *options.inside_cidrs]
    v4_cidrs = context.vpc_cidrs() if context else []
    sg_rows = sg_rule_rows(context)
    ipv6_rules = any(row[6] is not None for row in sg_rows)
    query = template(
        "conversations",
        peer_in_rule=_rule_in("c.peer", ipv6_rules),
        instance_weight=0 if context and context.has_network_load_balancer() else 2,
        src_private=private_sql("srcaddr", "srcaddr_v4", cidrs),
        dst_private=private_sql("dstaddr", "dstaddr_v4", cidrs),
        # NAT gateways translate IPv4 only (and NAT64 toward IPv4): their legs are IPv4
        f_src_private=private_sql("f.srcaddr", "f.srcaddr_v4", v4_cidrs),
        f_dst_private=private_sql("f.dstaddr", "f.dstaddr_v4", v4_cidrs),
        pkt_dst_private=private_sql("pkt_dstaddr", "pkt_dstaddr_v4", v4_cidrs),
        lo_private=private_sql("lo_addr", v4_sql("lo_addr"), cidrs),
        hi_private=private_sql("hi_addr", v4_sql("hi_addr"), cidrs),
        time_filter=_time_filter(options),
        f_time_filter=_time_filter(options, "f"),
        idle=IDLE_TIMEOUT,
        fan_in=FAN_IN,
        kind_sums=_kind_sums(),
        kind_max=_kind_max(),
        interface_slots=_interface_slots(),
        lo_rank=_rank("lo", "hi"),
        hi_rank=_rank("hi", "lo"),
        provenance=[exp.column("source"), exp.column("line")] if provenance else [],
    )
    ctes = [
        cte("known_hosts", _known_hosts(context)),
        # per private address, the inbound security group rules that admit internet addresses;
        # protocol -2 marks an address whose groups are known (and may admit nothing)
        cte("sg_rules", values_table(sg_rows, SG_COLUMNS, SG_TYPES)),
    ]
    if not in_case:
        rename_tables(query, {"flows": "flow_records"})
        ctes.insert(0, external_table_prelude())
    return with_ctes([*ctes, *ctes_of(query)], query)


def client_sql(lo: str, hi: str) -> exp.Expr:
    return fragment(
        "CASE WHEN lo_is_client = 1 THEN $lo ELSE $hi END", lo=column(lo), hi=column(hi)
    )


# An empty list of strings: engines differ on aggregates over nothing (NULL in DuckDB, an empty
# list in Spark), so results always carry the empty list.
EMPTY_LIST = "CAST([] AS VARCHAR[])"


def codes(list_text: exp.Expr | str) -> exp.Expr:
    """Comma-joined codes (what portable SQL can build from conditions) as a list."""
    return fragment(
        f"CASE WHEN coalesce($text, '') = '' THEN {EMPTY_LIST} ELSE string_split($text, ',') END",
        text=_expr(list_text),
    )


_ID_COLUMNS = ("lo_addr", "lo_port", "hi_addr", "hi_port", "protocol", "first_seen")


def conversation_id_sql(table: str = "") -> exp.Expr:
    """A conversation's id: a hash of its endpoints, protocol and first record's start."""
    t = table or None
    return fragment(
        "substr(md5(concat_ws('|', $lo_addr, CAST($lo_port AS VARCHAR), $hi_addr, "
        "CAST($hi_port AS VARCHAR), CAST($protocol AS VARCHAR), CAST($first_seen AS VARCHAR))),"
        " 1, 16)",
        **{n: exp.column(n, table=t) for n in _ID_COLUMNS},
    )


SELECT_COLUMNS: dict[str, exp.Expr] = {
    "conversation": conversation_id_sql(),
    "client_addr": client_sql("lo_addr", "hi_addr"),
    "client_port": client_sql("lo_port", "hi_port"),
    "server_addr": client_sql("hi_addr", "lo_addr"),
    "server_port": client_sql("hi_port", "lo_port"),
    # Unknown is shown as unknown (NULL, '-' in a table), never as the number that stood in
    # for it while pairing (protocol -1, time 0).
    "protocol": fragment("nullif(protocol, -1)"),
    "first_seen": fragment("nullif(first_seen, 0)"),
    "last_seen": fragment("nullif(last_seen, 0)"),
    "packets_to_server": client_sql("fwd_packets", "rev_packets"),
    "bytes_to_server": client_sql("fwd_bytes", "rev_bytes"),
    "packets_to_client": client_sql("rev_packets", "fwd_packets"),
    "bytes_to_client": client_sql("rev_bytes", "fwd_bytes"),
    "records": exp.column("records"),
    "interfaces": fragment(
        "list_filter($slots, x -> x IS NOT NULL)",
        slots=exp.Array(
            expressions=[exp.column(f"interface_{k}") for k in range(1, INTERFACE_SLOTS + 1)]
        ),
    ),
    "interface_count": exp.column("interface_count"),
    "actions": fragment(
        "nullif(concat_ws(',', CASE WHEN fwd_accept + rev_accept > 0 THEN 'ACCEPT' END, "
        "CASE WHEN fwd_reject + rev_reject > 0 THEN 'REJECT' END), '')"
    ),
    "confidence": exp.column("confidence"),
    "evidence": codes("evidence_text"),
    "against": codes("against_text"),
    "client_role": client_sql("lo_role", "hi_role"),
    "server_role": client_sql("hi_role", "lo_role"),
    "client_resource": client_sql("lo_resource", "hi_resource"),
    "server_resource": client_sql("hi_resource", "lo_resource"),
    # where the roles came from: the describe-* JSON, or inferred from the logs
    "roles_from": fragment(
        "CASE WHEN lo_origin = 'inferred' OR hi_origin = 'inferred' THEN 'inferred' "
        "WHEN lo_origin = 'context' OR hi_origin = 'context' THEN 'context' ELSE 'none' END"
    ),
}
ORDER = ("first_seen", "client_addr", "client_port", "server_addr", "server_port", "protocol")


VPC_IPV6_PREFIX = 56  # AWS gives a VPC a /56 of IPv6 (its own, or one from an IPAM pool)


def infer_inside(engine: Engine, options: ConversationOptions) -> ConversationOptions:
    """Without the VPC's IPv6 CIDRs from the context, the /56 blocks of the interfaces' own
    IPv6 addresses (own_ipv6.sql) count as inside: an IPv6 address is global, so nothing else
    tells the VPC's side from the internet's. An interface that talked to one peer only is
    left out (both addresses are in all its records)."""
    if options.inside_cidrs or (options.context and options.context.vpc_ipv6_cidrs()):
        return options
    blocks: set[str] = set()
    for row in engine.query(template("own_ipv6")).to_pylist():
        try:
            address = ipaddress.IPv6Address(str(row["address"]))
        except ValueError:
            continue
        if address.is_global:
            blocks.add(str(ipaddress.IPv6Network((address, VPC_IPV6_PREFIX), strict=False)))
    return replace(options, inside_cidrs=tuple(sorted(blocks))) if blocks else options


def explained_from(engine: Engine, case: Case, options: ConversationOptions) -> exp.Query:
    """A query whose CTEs provide ``explained``: the case's derived copy, made once per case
    and options (``cache.py``), or the whole computation when the case cannot keep it."""
    from natlens.analyses.cache import derived_table
    from natlens.analyses.context_check import prepare

    options = infer_inside(engine, prepare(engine, case, options))
    ctes = conversation_ctes(options)
    if derived_table(engine, case, FACTS, ctes):
        return with_ctes([cte("explained", select_all(FACTS))], select_all("explained"))
    return ctes


FACTS = "conversation_facts"


# Output columns that stand for a flow log field: NULL (shown '-') when no record of the case
# had that field, rather than the 0 that stood in for it while pairing.
_FROM_FIELD = {
    "client_port": ("srcport", "dstport"),
    "server_port": ("srcport", "dstport"),
    "packets_to_server": ("packets",),
    "packets_to_client": ("packets",),
    "bytes_to_server": ("bytes",),
    "bytes_to_client": ("bytes",),
}


def missing_fields(case: Case) -> frozenset[str]:
    """The fields behind conversation columns that no format of the case carries."""
    seen = {name for fmt in case.manifest.get("formats", []) for name in fmt["fields"]}
    seen |= {name.replace("_", "-") for name in seen}
    if not seen:
        return frozenset()
    return frozenset(name for fields in _FROM_FIELD.values() for name in fields if name not in seen)


def conversations_sql(
    options: ConversationOptions | None = None,
    in_case: bool = True,
    head: exp.Query | None = None,
    missing: frozenset[str] = frozenset(),
) -> exp.Query:
    """``head``: what provides ``explained`` (default: the whole computation). ``missing``:
    fields no record had (``missing_fields``): their columns are NULL."""
    options = options or ConversationOptions()
    where: list[exp.Expr] = []
    if options.ip:
        ip = check_ip(options.ip)
        where.append(fragment("lo_addr = $ip OR hi_addr = $ip", ip=ip))
    if options.port is not None:
        if not 0 <= options.port <= 65535:
            raise UsageError("--port must be 0-65535")
        where.append(fragment("lo_port = $port OR hi_port = $port", port=options.port))
    columns = [
        exp.alias_(
            exp.null() if any(f in missing for f in _FROM_FIELD.get(name, ())) else expr, name
        )
        for name, expr in SELECT_COLUMNS.items()
    ]
    query = exp.select(*columns).from_("explained").order_by(*ORDER)
    if where:
        query = query.where(*(exp.paren(w) for w in where))
    if head is None:
        return chain(conversation_ctes(options, in_case), query, copy=False)
    return chain(head, query)


def record_initiators_sql(options: ConversationOptions | None = None) -> exp.Query:
    """Per flow record (source, line): whether natlens says its sender started the connection
    (``src``) or answered (``dst``), with the conversation's confidence. For accuracy checks."""
    options = options or ConversationOptions()
    query = fragment(
        "SELECT s.source, s.line,"
        " CASE WHEN s.fwd = e.lo_is_client THEN 'src' ELSE 'dst' END AS initiator,"
        " e.confidence, e.evidence_text AS evidence, e.protocol, $id AS conversation"
        " FROM sessioned AS s"
        " JOIN explained AS e ON s.lo_addr = e.lo_addr AND s.lo_port = e.lo_port"
        " AND s.hi_addr = e.hi_addr AND s.hi_port = e.hi_port AND s.protocol = e.protocol"
        " AND s.session = e.session",
        id=conversation_id_sql("e"),
    )
    assert isinstance(query, exp.Query)
    return chain(conversation_ctes(options, provenance=True), query, copy=False)


def check_ip(value: str) -> str:
    """An IP address as the user gave it, strictly checked, in its standard text (the form
    AWS writes): no IPv6 zone (``%eth0``), no leading zeros in IPv4."""
    try:
        if "%" in value:
            raise ValueError(value)
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise UsageError(
            f"not an IP address: {value!r}", hint="e.g. 203.0.113.7 or 2001:db8::7"
        ) from None


def conversations(
    engine: Engine, case: Case, options: ConversationOptions | None = None
) -> pa.Table:
    return conversation_batches(engine, case, options).read_all()


def _query(engine: Engine, case: Case, options: ConversationOptions | None) -> exp.Query:
    options = options or ConversationOptions()
    engine.register_case(case)
    return conversations_sql(
        options, head=explained_from(engine, case, options), missing=missing_fields(case)
    )


def export_conversations(
    engine: Engine, case: Case, path: Path, options: ConversationOptions | None = None
) -> bool:
    """Write the conversations to a Parquet file by the engine itself, when it can."""
    return engine.export_parquet(_query(engine, case, options), path)


def conversation_summary(
    engine: Engine, case: Case, options: ConversationOptions | None = None
) -> pa.Table:
    """The conversations counted by confidence and by who opened them (client_role): what a
    table's answer says, without reading millions of rows."""
    query = _query(engine, case, options)
    ctes = ctes_of(query)
    query.set("with_", None)
    counted = (
        exp.select(
            "confidence", "client_role", exp.alias_(exp.Count(this=exp.Star()), "conversations")
        )
        .from_(query.subquery("c"))
        .group_by("confidence", "client_role")
    )
    return engine.query(with_ctes(ctes, counted))


def conversation_batches(
    engine: Engine, case: Case, options: ConversationOptions | None = None
) -> pa.RecordBatchReader:
    """The conversations as a stream: a big case has millions. Read it before the engine
    closes."""
    return engine.query_batches(_query(engine, case, options))
