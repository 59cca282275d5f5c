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

from natlens.analyses.queries import load_sql
from natlens.case import Case
from natlens.engine import Engine, sql_string
from natlens.errors import UsageError
from natlens.formats.describe_json import SG_PROTOCOLS, Context

# aws-facts section 4: a NAT gateway times out a connection idle for 350 s; the same 5-tuple after
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


def private_sql(address: str, v4: str, cidrs: list[str]) -> str:
    """1 when the address is private or inside one of ``cidrs`` (the VPC's, IPv4 or IPv6;
    pass IPv4 ones only where IPv6 cannot matter: the IPv6 test is long)."""
    ranges = []
    v6_ranges = []
    for cidr in [*PRIVATE_V4, *cidrs]:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if network.version == 4:
            low, high = int(network.network_address), int(network.broadcast_address)
            ranges.append(f"{v4} BETWEEN {low} AND {high}")
        else:
            v6_ranges.append(v6_range(network))
    v6 = " OR ".join(f"lower({address}) LIKE '{p}%'" for p in PRIVATE_V6_PREFIXES)
    if v6_ranges:
        hexed = v6_hex_sql(address)
        v6 += "".join(f" OR {hexed} BETWEEN '{low}' AND '{high}'" for low, high in v6_ranges)
    return (
        f"CASE WHEN ({v4} IS NOT NULL AND ({' OR '.join(ranges)})) "
        f"OR ({v4} IS NULL AND ({v6})) THEN 1 ELSE 0 END"
    )


def v6_range(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[str, str]:
    """An IPv6 network's first and last address as 32 hex digits (``v6_hex_sql``'s form)."""
    return f"{int(network.network_address):032x}", f"{int(network.broadcast_address):032x}"


def v6_hex_sql(column: str) -> str:
    """An IPv6 address's text as its 32 hex digits, in SQL every engine runs, so that CIDR
    tests are comparisons of equal-length text: ``::`` expanded to the zero groups it stands
    for, each group zero-padded. Meaningless (never NULL) for other text: callers test IPv4
    first. Kept small: Spark plans every copy of it."""
    colons = f"(length({column}) - length(replace({column}, ':', '')))"
    # "::1" expands to ":0:...:1": its first group is the empty text before the first colon
    offset = f"(CASE WHEN substr({column}, 1, 1) = ':' THEN 1 ELSE 0 END)"
    trailing = f"(CASE WHEN substr({column}, length({column}), 1) = ':' THEN 1 ELSE 0 END)"
    # with :: inside, the colons count the groups written; at either end, one fewer
    missing = f"8 - {colons} + {offset} + {trailing}"
    full = f"replace({column}, '::', concat(':', repeat('0:', {missing})))"
    groups = ", ".join(
        f"lpad(lower(split_part({full}, ':', {k} + {offset})), 4, '0')" for k in range(1, 9)
    )
    return f"concat({groups})"


def _rank(side: str, peer: str) -> str:
    ports = service_ports()
    tcp = ", ".join(map(str, ports["tcp"]))
    udp = ", ".join(map(str, ports["udp"]))
    port = f"{side}_port"
    return (
        "CASE"
        " WHEN protocol NOT IN (6, 17) THEN CAST(NULL AS INTEGER)"
        # AWS: NAT gateways, load balancers and Lambda use source ports 1024-65535.
        f" WHEN {port} >= 1024 AND ({side}_wide_ports = 'any'"
        f" OR ({side}_wide_ports = 'internet' AND {peer}_private = 0)"
        f" OR ({side}_wide_ports = 'private' AND {peer}_private = 1)) THEN 0"
        f" WHEN {port} < 1024 THEN 3"
        f" WHEN (protocol = 6 AND {port} IN ({tcp})) OR (protocol = 17 AND {port} IN ({udp}))"
        " THEN 2"
        f" WHEN {port} >= 32768 THEN 0"
        " ELSE 1 END"
    )


# Interfaces named per conversation (interface_count says how many logged it).
INTERFACE_SLOTS = 6
# Record kinds on one interface: as addressed, relayed out (srcaddr is the interface's own),
# relayed in (dstaddr is).
_KINDS = ("relayed = 0", "relayed = 1", "relayed >= 2")


def _kind_sums() -> str:
    parts = []
    for direction, flag in (("fwd", 1), ("rev", 0)):
        for measure in ("packets", "bytes"):
            for k, test in enumerate(_KINDS):
                parts.append(
                    f"sum(CASE WHEN fwd = {flag} AND {test} THEN {measure} ELSE 0 END)"
                    f" AS {direction}_{measure}_{k}"
                )
    return ",\n        ".join(parts)


def _kind_max() -> str:
    parts = []
    for direction in ("fwd", "rev"):
        for measure in ("packets", "bytes"):
            kinds = ", ".join(f"{direction}_{measure}_{k}" for k in range(len(_KINDS)))
            parts.append(f"CAST(max(greatest({kinds})) AS BIGINT) AS {direction}_{measure}")
    return ",\n        ".join(parts)


def values_sql(
    rows: list[tuple[object, ...]], columns: tuple[str, ...], types: tuple[str, ...]
) -> str:
    """Rows (the context's addresses, ids and rules) as a SELECT with these typed columns; an
    empty SELECT of the same columns when there are none. Text enters as quoted literals."""
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in zip(columns, types, strict=True))
        return f"    SELECT {nulls}\n    WHERE 1 = 0"

    def literal(value: object, kind: str) -> str:
        if value is None:
            return f"CAST(NULL AS {kind})" if kind != "VARCHAR" else "NULL"
        if isinstance(value, int):
            return f"CAST({int(value)} AS {kind})"
        return sql_string(str(value))

    values = ",\n        ".join(
        "(" + ", ".join(literal(v, t) for v, t in zip(row, types, strict=True)) + ")"
        for row in rows
    )
    return f"    SELECT * FROM (VALUES\n        {values}\n    ) AS v({', '.join(columns)})"


def text_rows_sql(rows: Sequence[Mapping[str, object]], columns: tuple[str, ...]) -> str:
    """Rows of text (the context's addresses and ids) as a SELECT with these columns."""
    return values_sql(
        [tuple(row[c] for c in columns) for row in rows], columns, ("VARCHAR",) * len(columns)
    )


def _known_hosts(context: Context | None) -> str:
    rows = context.address_roles() if context else []
    return text_rows_sql(rows, ("address", "role", "resource_id", "interface_id"))


def v4_sql(column: str) -> str:
    """An IPv4 address's text as an integer, in SQL every engine runs; NULL for IPv6."""
    octets = " + ".join(
        f"CAST(split_part({column}, '.', {k + 1}) AS BIGINT) * {256 ** (3 - k)}" for k in range(4)
    )
    pattern = r"'^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$'"
    return f"CASE WHEN regexp_matches({column}, {pattern}) THEN {octets} END"


def external_table_prelude() -> str:
    """For a flow-log table with AWS's Athena columns only (no natlens derived columns): the
    columns the analysis reads, computed from AWS's, as a CTE named ``flow_records``."""
    derived = ",\n        ".join(
        f"{v4_sql(name)} AS {name}_v4"
        for name in ("srcaddr", "dstaddr", "pkt_srcaddr", "pkt_dstaddr")
    )
    return (
        "flow_records AS (\n    SELECT\n        interface_id, srcaddr, dstaddr, srcport, dstport, "
        'protocol, packets, bytes, start, "end", action, log_status, tcp_flags,\n'
        "        pkt_srcaddr, pkt_dstaddr,\n"
        f"        {derived},\n"
        "        CAST(NULL AS VARCHAR) AS source, CAST(NULL AS BIGINT) AS line\n"
        "    FROM flows\n),\n"
    )


def _rule_in(peer: str, ipv6: bool) -> str:
    """Whether ``peer`` lies in the rule's source CIDR (``sg_rules``'s columns)."""
    v4 = v4_sql(peer)
    test = f"({v4} IS NOT NULL AND {v4} BETWEEN r.v4_low AND r.v4_high)"
    if ipv6:
        test += f" OR ({v4} IS NULL AND {v6_hex_sql(peer)} BETWEEN r.v6_low AND r.v6_high)"
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


def _time_filter(options: ConversationOptions, table: str = "") -> str:
    """The records that overlap --since/--until: end at or after since, start at or before
    until (``table``: a prefix such as ``f.``)."""
    text = ""
    if options.since is not None:
        text += f' AND {table}"end" >= {int(options.since)}'
    if options.until is not None:
        text += f" AND {table}start <= {int(options.until)}"
    return text


def conversation_ctes(
    options: ConversationOptions, in_case: bool = True, provenance: bool = False
) -> str:
    """The CTEs every conversation-based analysis starts from, ending with ``explained``.
    ``in_case=False``: read an existing flow-log table with AWS's columns only (Athena's).
    ``provenance``: carry each record's source and line (only to map records to conversations:
    the long paths weigh on the sort that splits sessions)."""
    context = options.context
    cidrs = [*(context.inside_cidrs() if context else []), *options.inside_cidrs]
    v4_cidrs = context.vpc_cidrs() if context else []
    sg_rows = sg_rule_rows(context)
    ipv6_rules = any(row[6] is not None for row in sg_rows)
    sql = load_sql("conversations").format(
        known_hosts=_known_hosts(context),
        sg_rules=values_sql(sg_rows, SG_COLUMNS, SG_TYPES),
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
        f_time_filter=_time_filter(options, "f."),
        idle=IDLE_TIMEOUT,
        fan_in=FAN_IN,
        kind_sums=_kind_sums(),
        kind_max=_kind_max(),
        interface_slots=",\n        ".join(
            f"max(CASE WHEN interface_number = {k} THEN interface_id END) AS interface_{k}"
            for k in range(1, INTERFACE_SLOTS + 1)
        ),
        lo_rank=_rank("lo", "hi"),
        hi_rank=_rank("hi", "lo"),
        provenance=",\n        source,\n        line" if provenance else "",
    )
    if not in_case:
        sql = sql.replace(
            "WITH known_hosts AS (", f"WITH {external_table_prelude()}known_hosts AS ("
        )
        sql = sql.replace("    FROM flows\n    WHERE", "    FROM flow_records\n    WHERE")
        sql = sql.replace("    FROM flows AS f\n", "    FROM flow_records AS f\n")
    return sql


def client_sql(lo: str, hi: str) -> str:
    return f"CASE WHEN lo_is_client = 1 THEN {lo} ELSE {hi} END"


# An empty list of strings: engines differ on aggregates over nothing (NULL in DuckDB, an empty
# list in Spark), so results always carry the empty list.
EMPTY_LIST = "CAST([] AS VARCHAR[])"


def codes(column: str) -> str:
    """Comma-joined codes (what portable SQL can build from conditions) as a list."""
    return (
        f"CASE WHEN coalesce({column}, '') = '' THEN {EMPTY_LIST} "
        f"ELSE string_split({column}, ',') END"
    )


def conversation_id_sql(table: str = "") -> str:
    """A conversation's id: a hash of its endpoints, protocol and first record's start."""
    t = f"{table}." if table else ""
    texts = (f"{t}lo_addr", f"{t}hi_addr")
    numbers = (f"{t}lo_port", f"{t}hi_port", f"{t}protocol", f"{t}first_seen")
    casts = [f"CAST({n} AS VARCHAR)" for n in numbers]
    parts = ", ".join([texts[0], casts[0], texts[1], *casts[1:]])
    return f"substr(md5(concat_ws('|', {parts})), 1, 16)"


SELECT_COLUMNS = {
    "conversation": conversation_id_sql(),
    "client_addr": client_sql("lo_addr", "hi_addr"),
    "client_port": client_sql("lo_port", "hi_port"),
    "server_addr": client_sql("hi_addr", "lo_addr"),
    "server_port": client_sql("hi_port", "lo_port"),
    # Unknown is shown as unknown (NULL, '-' in a table), never as the number that stood in
    # for it while pairing (protocol -1, time 0).
    "protocol": "nullif(protocol, -1)",
    "first_seen": "nullif(first_seen, 0)",
    "last_seen": "nullif(last_seen, 0)",
    "packets_to_server": client_sql("fwd_packets", "rev_packets"),
    "bytes_to_server": client_sql("fwd_bytes", "rev_bytes"),
    "packets_to_client": client_sql("rev_packets", "fwd_packets"),
    "bytes_to_client": client_sql("rev_bytes", "fwd_bytes"),
    "records": "records",
    "interfaces": "list_filter(["
    + ", ".join(f"interface_{k}" for k in range(1, INTERFACE_SLOTS + 1))
    + "], x -> x IS NOT NULL)",
    "interface_count": "interface_count",
    "actions": "nullif(concat_ws(',', CASE WHEN fwd_accept + rev_accept > 0 THEN 'ACCEPT' END, "
    "CASE WHEN fwd_reject + rev_reject > 0 THEN 'REJECT' END), '')",
    "confidence": "confidence",
    "evidence": codes("evidence_text"),
    "against": codes("against_text"),
    "client_role": client_sql("lo_role", "hi_role"),
    "server_role": client_sql("hi_role", "lo_role"),
    "client_resource": client_sql("lo_resource", "hi_resource"),
    "server_resource": client_sql("hi_resource", "lo_resource"),
    # where the roles came from: the describe-* JSON, or inferred from the logs
    "roles_from": "CASE WHEN lo_origin = 'inferred' OR hi_origin = 'inferred' THEN 'inferred' "
    "WHEN lo_origin = 'context' OR hi_origin = 'context' THEN 'context' ELSE 'none' END",
}
ORDER = "first_seen, client_addr, client_port, server_addr, server_port, protocol"


# Per interface, the one IPv6 address in every IPv6 record it logged: its own (a record holds
# the interface's address as source or destination unless the interface forwards packets).
OWN_IPV6_SQL = """
WITH v6 AS (
    SELECT interface_id, srcaddr, dstaddr FROM flows
    WHERE srcaddr LIKE '%:%' AND dstaddr LIKE '%:%' AND interface_id IS NOT NULL
        AND srcaddr <> dstaddr
),
sides AS (
    SELECT interface_id, srcaddr AS address FROM v6
    UNION ALL
    SELECT interface_id, dstaddr AS address FROM v6
),
seen AS (SELECT interface_id, address, count(*) AS n FROM sides GROUP BY interface_id, address),
totals AS (SELECT interface_id, count(*) AS n FROM v6 GROUP BY interface_id)
SELECT s.interface_id, min(s.address) AS address
FROM seen AS s JOIN totals AS t ON s.interface_id = t.interface_id AND s.n = t.n
GROUP BY s.interface_id
HAVING count(*) = 1
"""
VPC_IPV6_PREFIX = 56  # AWS gives a VPC a /56 of IPv6 (its own, or one from an IPAM pool)


def infer_inside(engine: Engine, options: ConversationOptions) -> ConversationOptions:
    """Without the VPC's IPv6 CIDRs from the context, the /56 blocks of the interfaces' own
    IPv6 addresses (OWN_IPV6_SQL) count as inside: an IPv6 address is global, so nothing else
    tells the VPC's side from the internet's. An interface that talked to one peer only is
    left out (both addresses are in all its records)."""
    if options.inside_cidrs or (options.context and options.context.vpc_ipv6_cidrs()):
        return options
    blocks: set[str] = set()
    for row in engine.query(OWN_IPV6_SQL).to_pylist():
        try:
            address = ipaddress.IPv6Address(str(row["address"]))
        except ValueError:
            continue
        if address.is_global:
            blocks.add(str(ipaddress.IPv6Network((address, VPC_IPV6_PREFIX), strict=False)))
    return replace(options, inside_cidrs=tuple(sorted(blocks))) if blocks else options


def explained_from(engine: Engine, case: Case, options: ConversationOptions) -> str:
    """The head of a query that provides ``explained``: the case's derived copy, made once per
    case and options (``cache.py``), or the whole computation when the case cannot keep it."""
    from natlens.analyses.cache import derived_table
    from natlens.analyses.context_check import prepare

    options = infer_inside(engine, prepare(engine, case, options))
    ctes = conversation_ctes(options)
    if derived_table(engine, case, FACTS, ctes + "SELECT * FROM explained\n"):
        return f"WITH explained AS (SELECT * FROM {FACTS})\n"
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
    head: str | None = None,
    missing: frozenset[str] = frozenset(),
) -> str:
    """``head``: what provides ``explained`` (default: the whole computation). ``missing``:
    fields no record had (``missing_fields``): their columns are NULL."""
    options = options or ConversationOptions()
    where = []
    if options.ip:
        ip = sql_string(check_ip(options.ip))
        where.append(f"(lo_addr = {ip} OR hi_addr = {ip})")
    if options.port is not None:
        if not 0 <= options.port <= 65535:
            raise UsageError("--port must be 0-65535")
        where.append(f"(lo_port = {options.port} OR hi_port = {options.port})")
    columns = ",\n    ".join(
        f"{'NULL' if any(f in missing for f in _FROM_FIELD.get(name, ())) else expr} AS {name}"
        for name, expr in SELECT_COLUMNS.items()
    )
    if head is None:
        head = conversation_ctes(options, in_case)
    sql = head + f"SELECT\n    {columns}\nFROM explained\n"
    if where:
        sql += "WHERE " + " AND ".join(where) + "\n"
    return sql + f"ORDER BY {ORDER}\n"


def record_initiators_sql(options: ConversationOptions | None = None) -> str:
    """Per flow record (source, line): whether natlens says its sender started the connection
    (``src``) or answered (``dst``), with the conversation's confidence. For accuracy checks."""
    options = options or ConversationOptions()
    return conversation_ctes(options, provenance=True) + (
        "SELECT s.source, s.line,\n"
        "    CASE WHEN s.fwd = e.lo_is_client THEN 'src' ELSE 'dst' END AS initiator,\n"
        "    e.confidence, e.evidence_text AS evidence, e.protocol,\n"
        f"    {conversation_id_sql('e')} AS conversation\n"
        "FROM sessioned AS s\n"
        "JOIN explained AS e ON s.lo_addr = e.lo_addr AND s.lo_port = e.lo_port\n"
        "    AND s.hi_addr = e.hi_addr AND s.hi_port = e.hi_port AND s.protocol = e.protocol\n"
        "    AND s.session = e.session\n"
    )


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


def _query(engine: Engine, case: Case, options: ConversationOptions | None) -> str:
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


def conversation_batches(
    engine: Engine, case: Case, options: ConversationOptions | None = None
) -> pa.RecordBatchReader:
    """The conversations as a stream: a big case has millions. Read it before the engine
    closes."""
    return engine.query_batches(_query(engine, case, options))
