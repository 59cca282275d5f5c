"""The verdict on inbound internet traffic, per address (DESIGN.md, problem 1).

The verdicts come from the conversations: an internet address whose ACCEPT records only ever
went to NAT gateway addresses, unanswered, sent unsolicited packets the NAT gateway dropped; one
that only answered connections instances opened sent responses. The recommendation (a network
ACL rule, or which instance is reachable) is added here, from the verdict and the context.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from natlens.analyses.conversations import (
    ConversationOptions,
    check_ip,
    codes,
    conversation_ctes,
    explained_from,
)
from natlens.case import Case
from natlens.engine import Engine
from natlens.formats.describe_json import Context
from natlens.schema import EVIDENCE
from natlens.sqltree import chain, fragment, template

# The verdicts, most urgent first: the order inbound lists them in.
SEVERITY = ("exposed", "mixed", "unsolicited", "undetermined", "response")

# AWS: a NAT gateway uses ports 1024-65535, so the replies to instances' connections arrive on
# them; a network ACL on its subnet can deny everything below 1024 without breaking a reply.
NAT_PORTS_FIRST = 1024


def inbound_sql(
    options: ConversationOptions | None = None,
    in_case: bool = True,
    head: exp.Query | None = None,
) -> exp.Query:
    """``head``: what provides ``explained`` (default: the whole computation)."""
    options = options or ConversationOptions()
    kept = [c for c in EVIDENCE if c != "no-evidence"]
    flags = [
        exp.alias_(
            fragment(
                "max(CASE WHEN concat(',', evidence_text, ',') LIKE $code THEN 1 ELSE 0 END)",
                code=f"%,{code},%",
            ),
            f"ev_{k}",
        )
        for k, code in enumerate(kept)
    ]
    names = [
        fragment("CASE WHEN $flag = 1 THEN $code END", flag=exp.column(f"ev_{k}"), code=code)
        for k, code in enumerate(kept)
    ]
    where = None
    if options.ip:
        where = fragment("address = $ip", ip=check_ip(options.ip))
    tail = template(
        "inbound",
        evidence_flags=flags,
        evidence=codes(
            exp.ConcatWs(expressions=[exp.Literal.string(","), *names], safe=True, coalesce=True)
        ),
        where=where,
    )
    if head is None:
        return chain(conversation_ctes(options, in_case), tail, copy=False)
    return chain(head, tail)


def inbound(engine: Engine, case: Case, options: ConversationOptions | None = None) -> pa.Table:
    options = options or ConversationOptions()
    engine.register_case(case)
    return verdicts_from(engine, explained_from(engine, case, options), options)


def flags_logged(engine: Engine) -> bool:
    """Whether any record of the case carries tcp-flags (a version 3+ field)."""
    found = engine.query("SELECT 1 AS found FROM flows WHERE tcp_flags IS NOT NULL LIMIT 1")
    return bool(found.num_rows > 0)


def verdicts_from(engine: Engine, head: exp.Query, options: ConversationOptions) -> pa.Table:
    """The verdicts, with their recommendations, from ``head``, which provides ``explained``."""
    table = engine.query(inbound_sql(options, head=head))
    rows = table.to_pylist()
    # another scan of the records, only when an undetermined verdict must say what is missing
    undetermined = any(row["verdict"] == "undetermined" for row in rows)
    flags = flags_logged(engine) if undetermined else True
    advice = [recommendation(row, options.context, flags) for row in rows]
    table = table.append_column("recommendation", pa.array(advice, pa.string()))
    # what to act on first: by severity, then by the packets that came in
    rank = pc.index_in(table["verdict"], value_set=pa.array(SEVERITY, pa.string()))
    order = pc.sort_indices(
        table.append_column("_rank", rank),
        sort_keys=[("_rank", "ascending"), ("packets_in", "descending"), ("address", "ascending")],
    )
    return table.take(order)


def missing_evidence(context: Context | None, flags: bool) -> list[str]:
    """What would let natlens decide, among what the user has not given yet."""
    missing = []
    if not flags:
        missing.append("log tcp-flags (a version 3+ field: a SYN says who opened each connection)")
    if context is None:
        missing.append(
            "give --context DIR with the VPC's describe-* JSON, security groups included "
            "(natlens context collect)"
        )
    elif not context.security_groups:
        missing.append(
            "add describe-security-groups to the context (natlens context collect saves it): "
            "a port the security groups do not admit cannot have been opened from the internet"
        )
    if not missing:
        missing.append(
            "the logs and the context given do not decide it: look at the conversations with "
            "natlens explain"
        )
    return missing


def recommendation(row: dict[str, Any], context: Context | None, flags: bool = True) -> str:
    verdict = row["verdict"]
    address = row["address"]
    if verdict == "exposed":
        where = ", ".join(row["exposed_on"] or [])
        via = row.get("via") or []
        rules = row.get("exposed_rules") or []
        admitted = f" (admitted by {'; '.join(rules)})" if rules else ""
        if via and len(via) == len(row["exposed_on"] or []):
            return (
                f"{address} opened connections to {where}{admitted}: the load balancer(s) "
                f"{', '.join(via)} take connections from the internet by design. If this one "
                "should not be public, make it internal or narrow its listener's security group"
            )
        return (
            f"{address} opened connections to {where}{admitted}, which is reachable from the "
            "internet: if it should not be, remove the security group rule or the public IP "
            "that admits it"
        )
    if verdict in ("unsolicited", "mixed"):
        ports = row["probed_ports"] or []
        low = [p for p in ports if p < NAT_PORTS_FIRST]
        high = [p for p in ports if p >= NAT_PORTS_FIRST]
        subnets = _nat_subnets(row["gateways"] or [], context)
        on = (
            f"the NAT gateway subnet(s) {', '.join(subnets)}"
            if subnets
            else ("the NAT gateway's subnet")
        )
        parts = [
            "The NAT gateway dropped these packets; it never accepts connections from the "
            f"internet. They are logged ACCEPT because the network ACL of {on} admits them."
        ]
        if low:
            parts.append(
                "A network ACL rule there that denies inbound ports 0-1023 (here: "
                f"{_ports(low)}) stops them being logged ACCEPT without touching replies."
            )
        if high:
            parts.append(
                f"Ports {_ports(high)} are inside 1024-65535, where the NAT gateway receives the "
                f"replies to your instances' connections: deny only {address}/32 there"
                + (
                    ", which would also drop its replies (it is mixed)"
                    if verdict == "mixed"
                    else ""
                )
                + ", never the range for everyone."
            )
        return " ".join(parts)
    if verdict == "response":
        who = ", ".join(row["instances"] or []) or "instances behind " + ", ".join(
            row["gateways"] or ["a NAT gateway"]
        )
        return f"Replies to connections opened by {who}: nothing to do."
    return (
        "The evidence does not say who started "
        + ("some of these conversations" if row.get("conversations", 0) > 1 else "it")
        + ", and a guess would not do: it could be an exposure. To decide: "
        + "; ".join(missing_evidence(context, flags))
        + "."
    )


def _ports(ports: list[int]) -> str:
    shown = ", ".join(map(str, ports[:12]))
    return shown + (f" and {len(ports) - 12} more" if len(ports) > 12 else "")


def _nat_subnets(gateways: list[str], context: Context | None) -> list[str]:
    if context is None:
        return []
    subnets = []
    for nat in context.nat_gateway_addresses():
        if nat["nat_gateway_id"] in gateways or nat["private_ip"] in gateways:
            subnet = nat.get("subnet_id")
            if subnet and subnet not in subnets:
                subnets.append(subnet)
    return subnets
