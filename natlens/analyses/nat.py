"""Seeing through the NAT gateway (DESIGN.md, problem 2): NAT links, top talkers per NAT gateway
and the attribution of Network Firewall events to the instances behind a NAT gateway.

A connection through a NAT gateway leaves up to three traces in the flow logs: the private leg
(instance -> the NAT gateway's private address, on the NAT gateway's interface), the public leg
(the NAT gateway's address and translated port -> the internet) and the instance interface's own
record. Nothing in the logs carries the translated port back to the instance, so the two sides
are joined on what they share: the destination (named by the instance's own record, or by
pkt-dstaddr on the private leg), the destination port, the time, and the packets and bytes,
which a NAT gateway does not change. Each link says how it was made (``method``), how sure it is
(``confidence``) and, when more than one instance fits, which (``candidates``).

The scores (``_link_ctes``), per candidate instance connection:

- start: 3 for the same second, 2 within 2 s, 1 within 10 s or when the outside side started
  while the instance's was open (candidates start within 60 s);
- end: 1 within 2 s;
- packets: 2 when both directions agree; bytes: 3 when both agree, 1 when only the request does;
- 2 when the instance's side names the destination, 1 when it names the NAT gateway.

A candidate fits when it started within 2 s, was open when the outside side started, or its
volumes agree. ``certain``: the only instance
that fits, with destination, NAT gateway, bytes and start agreeing. Otherwise the margin over the
next instance: ``high`` 4 or more (and a score of 7), ``medium`` 2 (and 5), ``low`` 1. A tie is
ambiguous: no instance is named, the candidates are. ICMP (no ports: one leg can hold the pings
of several instances) is never more than ``medium``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from natlens.analyses.conversations import (
    EMPTY_LIST,
    INTERFACE_SLOTS,
    SELECT_COLUMNS,
    ConversationOptions,
    client_sql,
    conversation_ctes,
    explained_from,
    private_sql,
    text_rows_sql,
    v4_sql,
)
from natlens.analyses.queries import load_sql
from natlens.case import Case
from natlens.engine import Engine
from natlens.errors import UsageError
from natlens.formats.describe_json import Context
from natlens.vocabulary import LogType, Method, SourceKind

# Capture windows, and AWS's note that a record's start may lag the packet by up to 60 s.
SLACK = 60
CANDIDATE_SLOTS = 5
METHODS = tuple(Method)
SOURCE_KINDS = tuple(SourceKind)
LOG_TYPES = tuple(LogType)


@dataclass
class NatOptions:
    conversations: ConversationOptions
    top: int = 10
    by: str = "bytes"  # or "connections"
    log_types: tuple[str, ...] = LOG_TYPES


def _by_address(items: Sequence[Mapping[str, Any]], **columns: str) -> str:
    """The context's rows that have a private address, as SQL rows: ``address`` and the
    ``columns`` (SQL name = key in the rows)."""
    rows = [
        {"address": r["private_ip"], **{name: r[key] for name, key in columns.items()}}
        for r in items
        if r.get("private_ip")
    ]
    return text_rows_sql(rows, ("address", *columns))


def _context_nats(context: Context | None) -> str:
    return _by_address(
        context.nat_gateway_addresses() if context else [],
        nat_gateway="nat_gateway_id",
        nat_interface="interface_id",
    )


def _context_instances(context: Context | None) -> str:
    return _by_address(
        context.instance_interfaces() if context else [],
        instance_id="instance_id",
        interface_id="interface_id",
    )


def _named_columns() -> str:
    """The conversation facts seen from the client: the columns ``natlens conversations``
    gives, and the sides' gateway, privacy and interface."""
    kept = ("conversation", "client_addr", "client_port", "server_addr", "server_port",
            "protocol", "first_seen", "last_seen", "client_role", "client_resource",
            "server_resource")  # fmt: skip
    columns = {name: SELECT_COLUMNS[name] for name in kept}
    for mine, theirs in (
        ("packets_out", "packets_to_server"),
        ("bytes_out", "bytes_to_server"),
        ("packets_in", "packets_to_client"),
        ("bytes_in", "bytes_to_client"),
    ):
        columns[mine] = SELECT_COLUMNS[theirs]  # fmt: skip
    for field in ("gateway", "private", "interface"):
        columns[f"client_{field}"] = client_sql(f"lo_{field}", f"hi_{field}")
        columns[f"server_{field}"] = client_sql(f"hi_{field}", f"lo_{field}")
    plain = ["relay_min", "relay_max", "interface_count"]
    plain += [f"interface_{k}" for k in range(1, INTERFACE_SLOTS + 1)]
    columns.update({name: name for name in plain})
    return ",\n        ".join(
        expr if expr == name else f"{expr} AS {name}" for name, expr in columns.items()
    )


def _nat_cte_texts(options: ConversationOptions) -> list[tuple[str, str]]:
    """The CTEs of ``nat.sql``, filled in, as (name, text) in order."""
    text = load_sql("nat").format(
        named_columns=_named_columns(),
        slack=SLACK,
        context_nats=_context_nats(options.context),
    )
    starts = list(re.finditer(r"^(\w+) AS \($", text, flags=re.MULTILINE))
    out = []
    for n, match in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(text)
        out.append((match.group(1), text[match.start() : end].rstrip().rstrip(",")))
    return out


# CTEs kept as derived tables in the case (cache.py): each is read several times, and an engine
# that inlines CTEs (Spark) would otherwise plan them over and over.
STAGES = ("nat_addresses", "owners", "instance_buckets", "public_legs", "nat_links")


def nat_ctes(
    options: ConversationOptions, head: str | None = None, stored: frozenset[str] = frozenset()
) -> str:
    """The conversation CTEs (or ``head``, which provides ``explained``) and the NAT legs;
    the ``stored`` ones read from their derived tables."""
    if head is None:
        head = conversation_ctes(options)
    parts = [
        f"{name} AS (SELECT * FROM nat_{name})" if name in stored else text
        for name, text in _nat_cte_texts(options)
    ]
    return head.rstrip() + ",\n" + ",\n".join(parts) + "\n"


def _with_links(options: ConversationOptions, head: str | None, stored: frozenset[str]) -> str:
    ctes = nat_ctes(options, head, stored).rstrip()
    if "nat_links" in stored:
        return ctes + ",\nnat_links AS (SELECT * FROM nat_nat_links)\n"
    return ctes + _link_ctes("public_legs", "nat")


def _link_ctes(outside: str, prefix: str) -> str:
    """Score the instance legs that could be behind each row of ``outside`` (columns:
    outside_id, nat_addr, destination, destination_port, protocol, first_seen, last_seen,
    packets/bytes out and in) and decide: ``{prefix}_links``, one row per outside row."""
    p = prefix
    pair_columns = """
            o.outside_id,
            i.conversation AS instance_conversation,
            i.instance_addr,
            i.instance_port,
            i.instance_id,
            i.instance_interface,
            i.nat_addr AS instance_nat,
            i.destination AS instance_destination,
            i.method,
            i.private_seen,
            i.instance_seen,
            abs(i.first_seen - o.first_seen) AS start_gap,
            CASE WHEN o.first_seen BETWEEN i.first_seen - 2 AND i.last_seen + 2 THEN 1 ELSE 0 END
                AS within,
            abs(i.last_seen - o.last_seen) AS end_gap,
            CASE WHEN o.packets_out IS NULL THEN 0
                WHEN i.packets_out = o.packets_out AND i.packets_in = o.packets_in THEN 2
                ELSE 0 END AS s_packets,
            CASE WHEN o.bytes_out IS NULL THEN 0
                WHEN i.bytes_out = o.bytes_out AND i.bytes_in = o.bytes_in THEN 3
                WHEN i.bytes_out = o.bytes_out THEN 1
                ELSE 0 END AS s_bytes"""
    candidate = (
        "concat_ws(' ', concat(instance_addr, ':', CAST(instance_port AS VARCHAR)), "
        "instance_id, concat('score ', CAST(score AS VARCHAR)))"
    )
    slots = ",\n        ".join(
        f"max(CASE WHEN k = {n} THEN {candidate} END) AS candidate_{n}"
        for n in range(1, CANDIDATE_SLOTS + 1)
    )
    return f""",
{p}_outside AS (
    SELECT o.*, CAST(floor(o.first_seen / {SLACK}) AS BIGINT) + f.d AS bucket
    FROM {outside} AS o
    CROSS JOIN (SELECT -1 AS d UNION ALL SELECT 0 AS d UNION ALL SELECT 1 AS d) AS f
),
{p}_pairs AS (
    SELECT {pair_columns}
    FROM {p}_outside AS o
    JOIN instance_buckets AS i
        ON i.destination = o.destination AND i.destination_port = o.destination_port
        AND i.protocol = o.protocol AND i.bucket = o.bucket
    WHERE (i.nat_addr IS NULL OR i.nat_addr = o.nat_addr)
        AND abs(i.first_seen - o.first_seen) <= {SLACK}
    UNION ALL
    SELECT {pair_columns}
    FROM {p}_outside AS o
    JOIN instance_buckets AS i
        ON i.nat_addr = o.nat_addr AND i.destination_port = o.destination_port
        AND i.protocol = o.protocol AND i.bucket = o.bucket
    WHERE i.destination IS NULL AND abs(i.first_seen - o.first_seen) <= {SLACK}
),
{p}_scored AS (
    SELECT
        *,
        s_start + s_end + s_packets + s_bytes + s_destination + s_nat AS score
    FROM (
        SELECT
            *,
            CASE WHEN start_gap = 0 THEN 3 WHEN start_gap <= 2 THEN 2
                WHEN start_gap <= 10 OR within = 1 THEN 1 ELSE 0 END AS s_start,
            CASE WHEN end_gap <= 2 THEN 1 ELSE 0 END AS s_end,
            CASE WHEN instance_destination IS NOT NULL THEN 2 ELSE 0 END AS s_destination,
            CASE WHEN instance_nat IS NOT NULL THEN 1 ELSE 0 END AS s_nat
        FROM {p}_pairs
    ) AS s
    WHERE start_gap <= 2 OR within = 1 OR s_packets + s_bytes >= 3
),
{p}_by_instance AS (
    SELECT
        outside_id,
        instance_addr,
        max(score) AS score
    FROM {p}_scored
    GROUP BY outside_id, instance_addr
),
{p}_instance_ranks AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY outside_id ORDER BY score DESC, instance_addr) AS r
    FROM {p}_by_instance
),
{p}_margins AS (
    SELECT
        outside_id,
        max(CASE WHEN r = 1 THEN score END) AS best,
        max(CASE WHEN r = 2 THEN score END) AS second,
        count(*) AS candidate_count
    FROM {p}_instance_ranks
    GROUP BY outside_id
),
{p}_top AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY outside_id
            ORDER BY score DESC, instance_addr, instance_port, instance_conversation
        ) AS k
    FROM {p}_scored
),
{p}_candidates AS (
    SELECT
        outside_id,
        {slots}
    FROM {p}_top
    WHERE k <= {CANDIDATE_SLOTS}
    GROUP BY outside_id
),
{p}_links AS (
    SELECT
        o.*,
        coalesce(m.candidate_count, 0) AS candidate_count,
        m.best AS score,
        CASE WHEN m.second IS NOT NULL AND m.second >= m.best THEN 1 ELSE 0 END AS ambiguous,
        CASE
            WHEN m.best IS NULL THEN 'unknown'
            WHEN m.second IS NOT NULL AND m.second >= m.best THEN 'unknown'
            -- ICMP has no ports: one leg can hold the pings of several instances
            WHEN o.protocol NOT IN (6, 17) THEN 'medium'
            WHEN m.second IS NULL AND t.instance_destination IS NOT NULL
                AND t.instance_nat IS NOT NULL AND t.s_bytes = 3 AND t.s_start >= 2
                THEN 'certain'
            WHEN m.best - coalesce(m.second, 0) >= 4 AND m.best >= 7 THEN 'high'
            WHEN m.best - coalesce(m.second, 0) >= 2 AND m.best >= 5 THEN 'medium'
            ELSE 'low'
        END AS confidence,
        t.instance_addr AS top_addr,
        t.instance_port AS top_port,
        t.instance_id AS top_instance_id,
        t.instance_interface AS top_interface,
        t.instance_conversation AS top_conversation,
        t.method AS top_method,
        t.private_seen AS top_private_seen,
        t.instance_seen AS top_instance_seen,
        c.candidate_1, c.candidate_2, c.candidate_3, c.candidate_4, c.candidate_5
    FROM {outside} AS o
    LEFT JOIN {p}_margins AS m ON m.outside_id = o.outside_id
    LEFT JOIN {p}_top AS t ON t.outside_id = o.outside_id AND t.k = 1
    LEFT JOIN {p}_candidates AS c ON c.outside_id = o.outside_id
)
"""


def _named(prefix: str, column: str) -> str:
    """A top candidate's field, NULL when the link is ambiguous: never a guess."""
    return f"CASE WHEN {prefix}.ambiguous = 0 THEN {prefix}.top_{column} END"


def _candidates(prefix: str) -> str:
    slots = ", ".join(f"{prefix}.candidate_{n}" for n in range(1, CANDIDATE_SLOTS + 1))
    return (
        f"CASE WHEN {prefix}.candidate_1 IS NULL THEN {EMPTY_LIST} "
        f"ELSE list_filter([{slots}], x -> x IS NOT NULL) END"
    )


def _legs(prefix: str) -> str:
    return (
        f"list_filter(['public', CASE WHEN {prefix}.top_private_seen = 1 THEN 'private' END, "
        f"CASE WHEN {prefix}.top_instance_seen = 1 THEN 'instance' END], x -> x IS NOT NULL)"
    )


def _link_columns(p: str) -> str:
    return f""",
    {_named(p, "addr")} AS instance_address,
    {_named(p, "port")} AS instance_port,
    {_named(p, "instance_id")} AS instance_id,
    {_named(p, "interface")} AS instance_interface,
    CASE WHEN {p}.top_method IS NOT NULL THEN {p}.top_method END AS method,
    {p}.confidence,
    {p}.score,
    {p}.candidate_count,
    CASE WHEN {p}.ambiguous = 1 THEN true ELSE false END AS ambiguous,
    {_candidates(p)} AS candidates"""


def nat_links_sql(
    options: NatOptions, head: str | None = None, stored: frozenset[str] = frozenset()
) -> str:
    return (
        _with_links(options.conversations, head, stored)
        + f"""SELECT
    l.nat_gateway,
    l.nat_addr AS nat_address,
    l.nat_interface,
    l.nat_port,
    l.destination,
    l.destination_port,
    l.protocol,
    l.first_seen,
    l.last_seen,
    l.packets_out,
    l.bytes_out,
    l.packets_in,
    l.bytes_in{_link_columns("l")},
    CASE WHEN l.top_addr IS NULL THEN {EMPTY_LIST} ELSE {_legs("l")} END AS legs,
    l.outside_id AS public_conversation,
    {_named("l", "conversation")} AS instance_conversation
FROM nat_links AS l
ORDER BY first_seen, nat_address, nat_port, destination, destination_port
"""
    )


def top_talkers_sql(
    options: NatOptions, head: str | None = None, stored: frozenset[str] = frozenset()
) -> str:
    if options.by not in ("bytes", "connections"):
        raise UsageError("--by must be bytes or connections")
    if options.top < 1:
        raise UsageError("--top must be 1 or more")
    order = "bytes_out + bytes_in" if options.by == "bytes" else "connections"
    return (
        nat_ctes(options.conversations, head, stored).rstrip()
        + f""",
talkers AS (
    -- the instances behind each NAT gateway (what the private legs say), and where the NAT
    -- gateway sent their traffic (the public legs): AWS's "top contributors" questions
    SELECT nat_addr, 'instance' AS side, instance_addr AS address,
        max(instance_id) AS resource, count(*) AS connections,
        CAST(sum(bytes_out) AS BIGINT) AS bytes_out, CAST(sum(bytes_in) AS BIGINT) AS bytes_in
    FROM instance_legs
    WHERE nat_addr IS NOT NULL
    GROUP BY nat_addr, instance_addr
    UNION ALL
    SELECT nat_addr, 'destination', destination, CAST(NULL AS VARCHAR), count(*),
        CAST(sum(bytes_out) AS BIGINT), CAST(sum(bytes_in) AS BIGINT)
    FROM public_legs
    GROUP BY nat_addr, destination
),
ranked AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY nat_addr, side ORDER BY {order} DESC, address
        ) AS talker_rank
    FROM talkers
)
SELECT
    n.nat_gateway,
    r.nat_addr AS nat_address,
    r.side,
    r.talker_rank AS rank,
    r.address,
    r.resource AS instance_id,
    r.connections,
    r.bytes_out,
    r.bytes_in,
    r.bytes_out + r.bytes_in AS bytes
FROM ranked AS r
LEFT JOIN nat_addresses AS n ON n.address = r.nat_addr
WHERE r.talker_rank <= {int(options.top)}
ORDER BY nat_address, CASE WHEN r.side = 'instance' THEN 0 ELSE 1 END, rank
"""
    )


def attribute_sql(
    options: NatOptions, head: str | None = None, stored: frozenset[str] = frozenset()
) -> str:
    unknown = set(options.log_types) - set(LOG_TYPES)
    if unknown or not options.log_types:
        raise UsageError(f"--log-type must be among {', '.join(LOG_TYPES)}")
    types = ", ".join(f"'{t}'" for t in options.log_types)
    fw_filter = f" AND log_type IN ({types})" if len(options.log_types) < len(LOG_TYPES) else ""
    cidrs = options.conversations.context.inside_cidrs() if options.conversations.context else []
    private = private_sql("o.opener_addr", v4_sql("o.opener_addr"), cidrs)
    nat_sure = "coalesce(fl.confidence, pl.confidence, 'unknown') NOT IN ('low', 'unknown')"
    source_known = "(h.instance_id IS NOT NULL OR h.interface_id IS NOT NULL)"
    return (
        _with_links(options.conversations, head, stored).rstrip()
        + load_sql("attribute")
        .format(
            slack=SLACK,
            fw_filter=fw_filter,
            context_instances=_context_instances(options.conversations.context),
        )
        .rstrip()
        + _link_ctes("fw_own", "fw")
        + f"""SELECT
    e.event_time,
    e.log_type,
    e.event_type,
    e.firewall_name,
    e.availability_zone,
    e.flow_id,
    e.src_ip,
    e.src_port,
    e.dest_ip,
    e.dest_port,
    e.proto,
    e.alert_action,
    e.signature_id,
    e.signature,
    coalesce(e.sni, e.http_hostname) AS hostname,
    CASE
        WHEN n.address IS NOT NULL THEN 'nat-gateway'
        WHEN {private} = 1 THEN 'private'
        ELSE 'internet'
    END AS source_kind,
    -- A low answer is shown as a candidate, never as the instance.
    CASE
        WHEN n.address IS NOT NULL AND {nat_sure}
            THEN coalesce({_named("fl", "addr")}, {_named("pl", "addr")})
        WHEN n.address IS NULL AND {private} = 1 AND {source_known} THEN o.opener_addr
    END AS instance_address,
    CASE
        WHEN n.address IS NOT NULL AND {nat_sure}
            THEN coalesce({_named("fl", "port")}, {_named("pl", "port")})
        WHEN n.address IS NULL AND {private} = 1 AND {source_known} THEN o.opener_port
    END AS instance_port,
    CASE
        WHEN n.address IS NOT NULL AND {nat_sure}
            THEN coalesce({_named("fl", "instance_id")}, {_named("pl", "instance_id")})
        WHEN n.address IS NULL AND {private} = 1 THEN h.instance_id
    END AS instance_id,
    CASE
        WHEN n.address IS NOT NULL AND {nat_sure}
            THEN coalesce({_named("fl", "interface")}, {_named("pl", "interface")})
        WHEN n.address IS NULL AND {private} = 1 THEN h.interface_id
    END AS instance_interface,
    CASE WHEN n.address IS NOT NULL THEN n.nat_gateway END AS nat_gateway,
    CASE
        WHEN n.address IS NOT NULL THEN coalesce(fl.top_method, pl.top_method)
        WHEN {private} = 1 THEN 'source-address'
    END AS method,
    CASE
        WHEN n.address IS NOT NULL THEN coalesce(fl.confidence, pl.confidence, 'unknown')
        -- the context names the instance; the logs show an interface of its own (and no NAT
        -- gateway was seen at it); or nothing says it is not a NAT gateway's address
        WHEN {private} = 1 AND h.instance_id IS NOT NULL THEN 'certain'
        WHEN {private} = 1 AND h.interface_id IS NOT NULL THEN 'medium'
        WHEN {private} = 1 THEN 'low'
    END AS confidence,
    CASE WHEN n.address IS NOT NULL THEN coalesce(fl.candidate_count, pl.candidate_count, 0)
        WHEN {private} = 1 THEN 1 ELSE 0 END AS candidate_count,
    CASE WHEN coalesce(fl.ambiguous, pl.ambiguous, 0) = 1 THEN true ELSE false END AS ambiguous,
    CASE
        WHEN fl.outside_id IS NOT NULL THEN {_candidates("fl")}
        WHEN pl.outside_id IS NOT NULL THEN {_candidates("pl")}
        WHEN n.address IS NULL AND {private} = 1 AND NOT {source_known}
            THEN [concat(o.opener_addr, ':', CAST(o.opener_port AS VARCHAR))]
        ELSE {EMPTY_LIST}
    END AS candidates,
    CASE WHEN pl.outside_id IS NOT NULL THEN true ELSE false END AS public_leg_logged,
    e.source,
    e.line
FROM fw_events AS e
JOIN fw_openers AS o ON o.fw_flow = e.fw_flow
LEFT JOIN nat_addresses AS n ON n.address = o.opener_addr
LEFT JOIN fw_public AS fp ON fp.fw_flow = e.fw_flow
LEFT JOIN nat_links AS pl ON pl.outside_id = fp.public_leg
LEFT JOIN fw_links AS fl ON fl.outside_id = e.fw_flow
LEFT JOIN instance_hosts AS h ON h.address = o.opener_addr
ORDER BY event_time, source, line
"""
    )


def _head(engine: Engine, case: Case, options: NatOptions) -> tuple[str, frozenset[str]]:
    """What provides ``explained``, and the NAT stages kept in the case (made when needed)."""
    from natlens.analyses.cache import derived_table

    engine.register_case(case)
    head = explained_from(engine, case, options.conversations)
    stored: set[str] = set()
    for name in STAGES:
        frozen = frozenset(stored)
        if name == "nat_links":
            sql = _with_links(options.conversations, head, frozen) + "SELECT * FROM nat_links\n"
        else:
            sql = nat_ctes(options.conversations, head, frozen) + f"SELECT * FROM {name}\n"
        if derived_table(engine, case, f"nat_{name}", sql):
            stored.add(name)
    return head, frozenset(stored)


def nat_links(engine: Engine, case: Case, options: NatOptions) -> pa.RecordBatchReader:
    """One row per public leg of a NAT gateway: the instance behind it, how and how surely."""
    return engine.query_batches(nat_links_sql(options, *_head(engine, case, options)))


def top_talkers(engine: Engine, case: Case, options: NatOptions) -> pa.Table:
    """Per NAT gateway, the instances behind it and the destinations it reached, ranked."""
    return engine.query(top_talkers_sql(options, *_head(engine, case, options)))


def attribute(engine: Engine, case: Case, options: NatOptions) -> pa.Table:
    """Every Network Firewall event with the instance that sent it."""
    return attribute_batches(engine, case, options).read_all()


def attribute_batches(engine: Engine, case: Case, options: NatOptions) -> pa.RecordBatchReader:
    """``attribute`` as a stream (a firewall logs millions of events). Read it before the
    engine closes."""
    if not case.parts("firewall_events"):
        raise UsageError(
            "the case has no Network Firewall events",
            hint="ingest the firewall's alert and flow logs beside the flow logs: natlens ingest "
            "s3://BUCKET/AWSLogs/ACCOUNT/network-firewall/ --case CASE",
        )
    if not case.parts("flows") and options.conversations.context is None:
        # The firewall's source could be a NAT gateway's address as well as an instance's:
        # only flow logs (or the context) tell them apart.
        raise UsageError(
            "the case has firewall events but no flow logs: natlens cannot tell which instance "
            "is behind an address, nor whether it is a NAT gateway's",
            hint="ingest the flow logs of the NAT gateways' and instances' interfaces into the "
            "same case, and give --context DIR",
        )
    return engine.query_batches(attribute_sql(options, *_head(engine, case, options)))


class AlertSources:
    """Counts the alerts' source kinds in a stream of attributions, passing it through."""

    def __init__(self) -> None:
        self.alerts = 0
        self.from_nat = 0

    def watch(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        def batches() -> Any:
            for batch in reader:
                alert = pc.equal(batch.column("log_type"), "alert")
                from_nat = pc.and_(
                    alert, pc.equal(batch.column("source_kind"), str(SourceKind.NAT_GATEWAY))
                )
                self.alerts += pc.sum(alert).as_py() or 0
                self.from_nat += pc.sum(from_nat).as_py() or 0
                yield batch

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def note(self) -> str | None:
        """What the alerts' sources say about where the firewall sits."""
        if self.alerts and self.from_nat == self.alerts:
            return (
                f"every one of the {self.alerts:,} alerts has a NAT gateway's address as its "
                "source: the firewall sits after the NAT gateway (between it and the internet "
                "gateway) and never sees the instances' addresses. natlens named the instances "
                "from the flow logs; `natlens topology` shows which routes put the firewall there."
            )
        return None
