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

The scores (``links.sql``), per candidate instance connection:

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

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from natlens.analyses.conversations import (
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
from natlens.case import Case
from natlens.engine import Engine
from natlens.errors import UsageError
from natlens.formats.describe_json import Context
from natlens.sqltree import (
    chain,
    cte,
    ctes_of,
    fragment,
    rename_tables,
    select_all,
    template,
    with_ctes,
)
from natlens.vocabulary import LogType, Method, SourceKind

# Capture windows, and AWS's note that a record's start may lag the packet by up to 60 s.
SLACK = 60
# Flow records read either side of --since/--until for attribute: a leg compared with an event's
# flow starts within SLACK of it, or was open at its start (AWS's longest capture window, 600 s).
WINDOW_MARGIN = SLACK + 600
CANDIDATE_SLOTS = 5
# Legs compared per bucket (started in the same 2 s, or the same bytes out in the same minute):
# the bound on pairs per row. The densest 2 s bucket holds 11 legs at 1M records, 26 at 4M and
# 48 at 10M (an hour each).
CANDIDATE_CAP = 128
# Legs open at the start of an outside row, per 4-second bucket: past this many, the row skips
# them (each scores at most 7 without the same bytes, which the bytes join finds anyway). The
# fullest bucket holds 37 at 1M records, 145 at 4M, 252 at 10M (an hour each); at 10M the open
# join paired 13.0M rows before the cap.
OPEN_CAP = 64
METHODS = tuple(Method)
SOURCE_KINDS = tuple(SourceKind)
LOG_TYPES = tuple(LogType)


@dataclass
class NatOptions:
    conversations: ConversationOptions
    top: int = 10
    by: str = "bytes"  # or "connections"
    log_types: tuple[str, ...] = LOG_TYPES


def _by_address(items: Sequence[Mapping[str, Any]], **columns: str) -> exp.Select:
    """The context's rows that have a private address, as SQL rows: ``address`` and the
    ``columns`` (SQL name = key in the rows)."""
    rows = [
        {"address": r["private_ip"], **{name: r[key] for name, key in columns.items()}}
        for r in items
        if r.get("private_ip")
    ]
    return text_rows_sql(rows, ("address", *columns))


def _context_nats(context: Context | None) -> exp.Select:
    return _by_address(
        context.nat_gateway_addresses() if context else [],
        nat_gateway="nat_gateway_id",
        nat_interface="interface_id",
    )


def _context_instances(context: Context | None) -> exp.Select:
    return _by_address(
        context.instance_interfaces() if context else [],
        instance_id="instance_id",
        interface_id="interface_id",
    )


def _named_columns() -> list[exp.Expr]:
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
    columns.update({name: exp.column(name) for name in plain})
    return [
        expr if isinstance(expr, exp.Column) and expr.name == name else exp.alias_(expr, name)
        for name, expr in columns.items()
    ]


# CTEs kept as derived tables in the case (cache.py): each is read several times, and an engine
# that inlines CTEs (Spark) would otherwise plan them over and over.
STAGES = ("nat_addresses", "owners", "instance_buckets", "public_legs", "nat_links")


def _stored(ctes: list[exp.CTE], stored: frozenset[str]) -> list[exp.CTE]:
    """``ctes``, the ``stored`` ones reading from their derived tables instead."""
    for item in ctes:
        if item.alias in stored:
            item.set("this", select_all(f"nat_{item.alias}"))
    return ctes


def nat_ctes(
    options: ConversationOptions,
    head: exp.Query | None = None,
    stored: frozenset[str] = frozenset(),
) -> exp.Query:
    """The conversation CTEs (or ``head``'s, which provide ``explained``) and the NAT legs of
    ``nat.sql``, the ``stored`` ones read from their derived tables."""
    tail = template("nat", named_columns=_named_columns(), slack=SLACK)
    ctes = [cte("context_nats", _context_nats(options.context)), *ctes_of(tail)]
    with_ctes(_stored(ctes, stored), tail)
    if head is None:
        return chain(conversation_ctes(options), tail, copy=False)
    return chain(head, tail)


def _link_ctes(outside: str, prefix: str) -> list[exp.CTE]:
    """``links.sql``'s CTEs for the rows of ``outside``, named ``{prefix}_outside`` ...
    ``{prefix}_links``."""
    candidate = fragment(
        "concat_ws(' ', concat(instance_addr, ':', CAST(instance_port AS VARCHAR)), "
        "instance_id, concat('score ', CAST(score AS VARCHAR)))"
    )
    slots = [
        exp.alias_(
            fragment("max(CASE WHEN k = $n THEN $candidate END)", n=n, candidate=candidate),
            f"candidate_{n}",
        )
        for n in range(1, CANDIDATE_SLOTS + 1)
    ]
    tree = template(
        "links",
        slack=SLACK,
        candidate_slots=CANDIDATE_SLOTS,
        slots=slots,
        cap=CANDIDATE_CAP,
        open_cap=OPEN_CAP,
    )
    ctes = ctes_of(tree)
    names = {c.alias: prefix + c.alias.removeprefix("link") for c in ctes}
    rename_tables(tree, {"outside_rows": outside, **names})
    return ctes_of(tree)


def _nat_links(stored: frozenset[str], outside: str = "public_legs") -> list[exp.CTE]:
    """``nat_links``: the kept NAT links of every public leg, or the links of ``outside``'s."""
    if "nat_links" in stored:
        return [cte("nat_links", select_all("nat_nat_links"))]
    return _link_ctes(outside, "nat")


def _with_links(
    options: ConversationOptions, head: exp.Query | None, stored: frozenset[str]
) -> exp.Query:
    """``nat_ctes`` and the links of the NAT gateways' public legs (``nat_links``)."""
    query = nat_ctes(options, head, stored)
    return with_ctes([*ctes_of(query), *_nat_links(stored)], query)


def nat_links_sql(
    options: NatOptions, head: exp.Query | None = None, stored: frozenset[str] = frozenset()
) -> exp.Query:
    return chain(_with_links(options.conversations, head, stored), template("nat_links"), False)


def top_talkers_sql(
    options: NatOptions, head: exp.Query | None = None, stored: frozenset[str] = frozenset()
) -> exp.Query:
    if options.by not in ("bytes", "connections"):
        raise UsageError("--by must be bytes or connections")
    if options.top < 1:
        raise UsageError("--top must be 1 or more")
    order = fragment("bytes_out + bytes_in" if options.by == "bytes" else "connections")
    tail = template("top_talkers", order=order, top=int(options.top))
    return chain(nat_ctes(options.conversations, head, stored), tail, copy=False)


def attribute_sql(
    options: NatOptions, head: exp.Query | None = None, stored: frozenset[str] = frozenset()
) -> exp.Query:
    unknown = set(options.log_types) - set(LOG_TYPES)
    if unknown or not options.log_types:
        raise UsageError(f"--log-type must be among {', '.join(LOG_TYPES)}")
    log_types = None
    if len(options.log_types) < len(LOG_TYPES):
        log_types = exp.column("log_type").isin(*map(str, options.log_types))
    context = options.conversations.context
    cidrs = context.inside_cidrs() if context else []
    tail = template(
        "attribute",
        slack=SLACK,
        log_types=log_types,
        private=private_sql("opener_addr", v4_sql("opener_addr"), cidrs),
    )
    ctes = [
        *ctes_of(nat_ctes(options.conversations, head, stored)),
        cte("context_instances", _context_instances(context)),
        *ctes_of(tail),
        # unless kept, only the public legs a firewall flow was matched to
        *_nat_links(stored, "fw_public_legs"),
        *_link_ctes("fw_own", "fw"),
    ]
    return with_ctes(ctes, tail)


def _head(
    engine: Engine, case: Case, options: NatOptions, all_links: bool = True
) -> tuple[exp.Query, frozenset[str]]:
    """What provides ``explained``, and the NAT stages kept in the case (made when needed).
    ``all_links=False``: the NAT links of every public leg only when an earlier run made them
    (attribution links only the legs its events were matched to)."""
    from natlens.analyses.cache import derived_table

    engine.register_case(case)
    head = explained_from(engine, case, options.conversations)
    stored: set[str] = set()
    for name in STAGES:
        frozen = frozenset(stored)
        if name == "nat_links":
            base = _with_links(options.conversations, head, frozen)
        else:
            base = nat_ctes(options.conversations, head, frozen)
        sql = chain(base, select_all(name), copy=False)
        make = all_links or name != "nat_links"
        if derived_table(engine, case, f"nat_{name}", sql, make=make):
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
    if not case.has("firewall_events"):
        raise UsageError(
            "the case has no Network Firewall events",
            hint="ingest the firewall's alert and flow logs beside the flow logs: natlens ingest "
            "s3://BUCKET/AWSLogs/ACCOUNT/network-firewall/ --case CASE",
        )
    if not case.has("flows") and options.conversations.context is None:
        # The firewall's source could be a NAT gateway's address as well as an instance's:
        # only flow logs (or the context) tell them apart.
        raise UsageError(
            "the case has firewall events but no flow logs: natlens cannot tell which instance "
            "is behind an address, nor whether it is a NAT gateway's",
            hint="ingest the flow logs of the NAT gateways' and instances' interfaces into the "
            "same case, and give --context DIR",
        )
    # With --since/--until, the instance legs just outside the window are evidence too: a leg
    # that competes with the one inside, unseen, would make an answer look surer than it is.
    wide = options.conversations
    if wide.since is not None or wide.until is not None:
        wide = dataclasses.replace(
            wide,
            since=None if wide.since is None else wide.since - WINDOW_MARGIN,
            until=None if wide.until is None else wide.until + WINDOW_MARGIN,
        )
        options = dataclasses.replace(options, conversations=wide)
    before = engine.flows_margin
    engine.flows_margin = WINDOW_MARGIN
    try:
        head = _head(engine, case, options, all_links=False)
        return engine.query_batches(attribute_sql(options, *head))
    finally:
        engine.flows_margin = before  # the next analysis registers the case again


class AlertSources:
    """Counts the alerts' source kinds in a stream of attributions, passing it through."""

    def __init__(self) -> None:
        self.alerts = 0
        self.from_nat = 0
        self.unattributed = 0  # alerts from a NAT gateway's address with no instance named

    def watch(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        def batches() -> Any:
            for batch in reader:
                alert = pc.equal(batch.column("log_type"), "alert")
                from_nat = pc.and_(
                    alert, pc.equal(batch.column("source_kind"), str(SourceKind.NAT_GATEWAY))
                )
                unnamed = pc.and_(
                    from_nat,
                    pc.and_(
                        pc.is_null(batch.column("instance_id")),
                        pc.is_null(batch.column("instance_address")),
                    ),
                )
                self.alerts += pc.sum(alert).as_py() or 0
                self.from_nat += pc.sum(from_nat).as_py() or 0
                self.unattributed += pc.sum(unnamed).as_py() or 0
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
