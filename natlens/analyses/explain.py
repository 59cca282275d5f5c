"""One address, explained for a person: the verdict in a sentence, its conversations and their
evidence, the records that show it, and the CloudWatch Logs Insights queries that confirm it in
the user's own account."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from sqlglot import exp

from natlens.analyses.conversations import (
    PRIVATE_V4,
    ConversationOptions,
    check_ip,
    conversations_sql,
    explained_from,
    missing_fields,
)
from natlens.analyses.inbound import verdicts_from
from natlens.analyses.records import default_columns
from natlens.case import Case
from natlens.engine import Engine
from natlens.insights.fields import FLOW_DISCOVERED, Formats, insights_name, parse_for
from natlens.schema import DEFAULT_FORMAT
from natlens.sqltree import fragment

CONVERSATION_COLUMNS = (
    "client_addr", "client_port", "server_addr", "server_port", "protocol", "first_seen",
    "packets_to_server", "packets_to_client", "actions", "confidence", "evidence", "against",
)  # fmt: skip
RECORD_COLUMNS = (
    "interface_id", "srcaddr", "srcport", "dstaddr", "dstport", "pkt_srcaddr", "pkt_dstaddr",
    "protocol", "tcp_flags", "packets", "start", "action",
)  # fmt: skip
LIMIT = 15


@dataclass
class Explanation:
    address: str
    verdict: str | None
    sentence: str
    recommendation: str | None
    conversations: pa.Table
    conversation_count: int
    records: pa.Table
    queries: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "verdict": self.verdict,
            "sentence": self.sentence,
            "recommendation": self.recommendation,
            "conversation_count": self.conversation_count,
            "conversations": self.conversations.to_pylist(),
            "records": self.records.to_pylist(),
            "queries": [{"purpose": p, "query": q} for p, q in self.queries],
            "notes": self.notes,
        }


def explain(
    engine: Engine,
    case: Case,
    address: str,
    options: ConversationOptions | None = None,
    head: exp.Query | None = None,
    verdict: dict[str, Any] | None = None,
) -> Explanation:
    """``head`` (what provides ``explained``) and ``verdict`` (the address's inbound row), when
    the caller has them already: explaining many addresses computes them once."""
    address = check_ip(address)
    base = options or ConversationOptions()
    options = ConversationOptions(
        context=base.context, since=base.since, until=base.until, ip=address
    )
    engine.register_case(case)
    if head is None:
        head = explained_from(engine, case, options)
    row = verdict
    if row is None:
        verdicts = verdicts_from(engine, head, options).to_pylist()
        row = verdicts[0] if verdicts else None
    convs = _telling_first(
        engine.query(conversations_sql(options, head=head, missing=missing_fields(case))), address
    )
    present = set(default_columns(case))
    records = _key_records(engine, convs, present)
    cidrs = base.context.vpc_cidrs() if base.context else []
    notes = []
    if not cidrs:
        cidrs = _private_blocks(convs, address)
        notes.append(
            "No VPC CIDR is known (no --context): the queries use the private block(s) "
            f"{', '.join(cidrs)}; put your VPC's CIDR there."
        )
    if row is not None and row["roles_from"] == "inferred":
        notes.append(
            "Which addresses are NAT gateways and instances was inferred from the logs; "
            "--context DIR with the VPC's describe-* JSON makes it certain."
        )
    return Explanation(
        address=address,
        verdict=row["verdict"] if row else None,
        sentence=sentence(address, row, convs.num_rows),
        recommendation=row["recommendation"] if row else None,
        conversations=convs.select(list(CONVERSATION_COLUMNS)).slice(0, LIMIT),
        conversation_count=convs.num_rows,
        records=records,
        queries=insights_queries(address, cidrs, Formats.of(case)),
        notes=notes,
    )


def _telling_first(convs: pa.Table, address: str) -> pa.Table:
    """The conversations the address opened first (the unsolicited or exposed ones tell more
    than the hundredth reply), then the others; each group in time order."""
    if convs.num_rows == 0:
        return convs
    opened = [0 if c == address else 1 for c in convs["client_addr"].to_pylist()]
    order = sorted(range(convs.num_rows), key=lambda i: (opened[i], i))
    return convs.take(pa.array(order, pa.int64()))


def _key_records(engine: Engine, convs: pa.Table, present: set[str]) -> pa.Table:
    """Every record of the first three conversations shown: one connection as each interface
    saw it."""
    columns = [c for c in RECORD_COLUMNS if c in present]
    if not columns or convs.num_rows == 0:  # an empty case, or an address in no conversation
        return pa.table({c: pa.array([], pa.string()) for c in columns or ["srcaddr"]})
    src = "coalesce(pkt_srcaddr, srcaddr)" if "pkt_srcaddr" in present else "srcaddr"
    dst = "coalesce(pkt_dstaddr, dstaddr)" if "pkt_dstaddr" in present else "dstaddr"
    end = f"{src} = $a AND coalesce(srcport, 0) = $pa AND {dst} = $b AND coalesce(dstport, 0) = $pb"
    conditions = []
    for row in convs.slice(0, 3).to_pylist():
        client = (row["client_addr"], _number(row["client_port"], 0))
        server = (row["server_addr"], _number(row["server_port"], 0))
        ends = [
            exp.paren(fragment(end, a=a, pa=pa_, b=b, pb=pb))
            for (a, pa_), (b, pb) in ((client, server), (server, client))
        ]
        conditions.append(
            fragment(
                "coalesce(protocol, -1) = $protocol AND coalesce(start, 0) <= $last AND "
                'coalesce("end", start, 0) >= $first AND ($ends)',
                protocol=_number(row["protocol"], -1),
                last=_number(row["last_seen"], 0),
                first=_number(row["first_seen"], 0),
                ends=exp.or_(*ends),
            )
        )
    order = ("start", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "source", "line")
    query = (
        exp.select(*(exp.column(c, quoted=c == "end") for c in columns))
        .from_("flows")
        .where(exp.or_(*(exp.paren(c) for c in conditions)) if conditions else exp.false())
        .order_by(*order)
        .limit(3 * LIMIT)
    )
    return engine.query(query)


def _number(value: object, unknown: int) -> int:
    """A number for SQL text: the value, or what stood for unknown while pairing."""
    return unknown if value is None else int(value)  # type: ignore[call-overload]


def _when(epoch: int | None) -> str:
    if epoch is None:
        return "?"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def sentence(address: str, row: dict[str, Any] | None, conversations: int) -> str:
    if row is None:
        if conversations == 0:
            return f"{address} appears in no conversation of this case."
        return (
            f"{address} sent no ACCEPT records into the VPC from the internet: "
            f"{conversations} conversation(s) name it."
        )
    span = (
        "time not logged"
        if not row["last_seen"]
        else f"at {_when(row['first_seen'])}"
        if row["first_seen"] == row["last_seen"]
        else f"between {_when(row['first_seen'])} and {_when(row['last_seen'])}"
    )
    gateways = ", ".join(row["gateways"] or []) or "a NAT gateway"
    instances = ", ".join(row["instances"] or [])
    verdict = row["verdict"]
    if verdict == "unsolicited":
        return (
            f"{address} sent unsolicited packets ({row['unsolicited']} conversation(s), {span}) "
            f"that reached only {gateways}: they are logged ACCEPT, but the NAT gateway dropped "
            "them and no instance answered or was reached."
        )
    if verdict == "response":
        who = instances or f"instances behind {gateways}"
        return (
            f"{address} only answered: its {row['response']} conversation(s) into the VPC "
            f"({span}) are replies to connections opened by {who}."
        )
    if verdict == "mixed":
        return (
            f"{address} both answered connections opened by {instances or 'instances'} "
            f"({row['response']} conversation(s)) and sent unsolicited packets to {gateways} "
            f"({row['unsolicited']}), {span}; the NAT gateway dropped the unsolicited ones."
        )
    if verdict == "exposed":
        return (
            f"{address} opened connections from the internet to "
            f"{', '.join(row['exposed_on'] or [])} ({row['exposed']} conversation(s), {span}): "
            "a real exposure, not a NAT gateway."
        )
    return (
        f"natlens cannot tell who started {address}'s {row['undetermined']} conversation(s) "
        f"into the VPC ({span}): the records carry no ports or flags that decide it."
    )


def _private_blocks(convs: pa.Table, address: str) -> list[str]:
    blocks: list[str] = []
    networks = [ipaddress.ip_network(c) for c in PRIVATE_V4[:4]]
    for name in ("client_addr", "server_addr"):
        for value in convs[name].to_pylist() if convs.num_rows else []:
            if value == address:
                continue
            try:
                ip = ipaddress.ip_address(value)
            except ValueError:
                continue
            for network in networks:
                if ip in network and str(network) not in blocks:
                    blocks.append(str(network))
    return blocks or ["10.0.0.0/8"]


def insights_queries(
    address: str, cidrs: list[str], formats: Formats | None = None
) -> list[tuple[str, str]]:
    """Logs Insights queries over the log group that holds the NAT gateway's and the instances'
    flow logs. ``isIpv4InSubnet`` on the VPC's CIDRs, never ``like '10.0'``: a substring also
    matches 110.0.x.x (docs/aws.md §5.1). ``address`` went through check_ip and the CIDRs
    through ipaddress (describe_json), so neither can hold a quote.

    CloudWatch discovers the default format's fields only (docs/aws.md §8): with ``formats``
    (the case's), a custom format's fields (tcp-flags) are read from ``@message`` with
    ``parse``, and logs whose format does not start with the default fields are parsed whole.
    The tests run every query here through ``natlens insights`` on the case explained."""
    formats = formats or Formats(only=DEFAULT_FORMAT, all=[DEFAULT_FORMAT])
    version = ipaddress.ip_address(address).version

    def inside(field_name: str) -> str:
        function = "isIpv4InSubnet" if version == 4 else "isIpv6InSubnet"
        blocks = [c for c in cidrs if (":" in c) == (version == 6)]
        if not blocks:
            blocks = ["10.0.0.0/8"] if version == 4 else ["fc00::/7"]
        tests = " or ".join(f"{function}({field_name}, '{c}')" for c in blocks)
        return f"({tests})" if " or " in tests else tests

    prefix, why = "", ""
    custom = formats.not_default()
    has = set(FLOW_DISCOVERED)
    if custom is not None:
        has = {insights_name(f) for f in custom}
        if not {"srcAddr", "dstAddr"} <= has:
            return []
        prefix = parse_for(custom) + "\n| "
        why = (
            " Your flow logs' custom format does not start with the default fields, and "
            "CloudWatch discovers only those: the query reads every field from @message."
        )
    stats_in = _having(
        has, "count(*) as records", "sum(packets) as packetsIn", "sum(bytes) as bytesIn"
    )
    stats_out = _having(
        has, "count(*) as records", "sum(bytes) as bytesOut", "earliest(@timestamp) as first"
    )
    queries = [
        (
            f"Where {address}'s packets went inside the VPC. Only NAT gateway private IPs means "
            "they were unsolicited; instance IPs mean replies reached them (or an exposure)." + why,
            f"{prefix}filter srcAddr = '{address}' and {inside('dstAddr')}\n"
            f"| stats {stats_in}"
            f" by {_having(has, 'dstAddr', 'dstPort', 'action')}\n"
            "| sort records desc\n"
            "| limit 50",
        ),
        (
            f"What inside the VPC sent to {address}. No rows: nothing went out to it, so what "
            "came in was unsolicited." + why,
            f"{prefix}filter dstAddr = '{address}' and {inside('srcAddr')}\n"
            f"| stats {stats_out}"
            f" by {_having(has, 'srcAddr', 'srcPort', 'dstPort')}\n"
            "| sort records desc\n"
            "| limit 50",
        ),
    ]
    positions = {fmt.index("tcp-flags") for fmt in formats.all if "tcp-flags" in fmt}
    with_flags = [fmt for fmt in formats.all if "tcp-flags" in fmt]
    if with_flags and (custom is not None or len(positions) == 1) and "protocol" in has:
        flags_prefix = prefix or parse_for(with_flags[0], ["tcp-flags"]) + "\n| "
        queries.append(
            (
                "Who opened the TCP connections: tcp-flags 2 or 3 (SYN) on the opener's records, "
                "18 or 19 (SYN-ACK) on the answerer's. tcp-flags is a custom format's field, "
                "which CloudWatch does not discover: the query reads it from @message.",
                f"{flags_prefix}filter srcAddr = '{address}' or dstAddr = '{address}'\n"
                "| filter protocol = 6 and tcpFlags in [2, 3, 18, 19]\n"
                "| stats count(*) as records by srcAddr, srcPort, dstAddr, dstPort, tcpFlags\n"
                "| sort records desc\n"
                "| limit 50",
            )
        )
    return queries


def _having(fields: set[str], *items: str) -> str:
    """The items whose fields the logs have (``sum(bytes) as x`` needs ``bytes``)."""
    kept = []
    for item in items:
        names = re.findall(r"[A-Za-z@][A-Za-z]*", item.split(" as ")[0])
        if all(n in fields or n in ("count", "sum", "earliest", "@timestamp") for n in names):
            kept.append(item)
    return ", ".join(kept)
