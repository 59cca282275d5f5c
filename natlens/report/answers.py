"""The answers to the two questions in one paragraph each, from an analysis's rows: the report
leads with them, and so does the terminal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def inbound_answer(rows: Iterable[Mapping[str, Any]]) -> str:
    """Is the NAT gateway accepting traffic from the internet? From inbound's rows."""
    counts: Counter[str] = Counter()
    exposed_on: list[str] = []
    for row in rows:
        counts[row["verdict"]] += 1
        for target in row.get("exposed_on") or []:
            if target not in exposed_on:
                exposed_on.append(target)
    total = sum(counts.values())
    if not total:
        return (
            "No internet address sent ACCEPT records into the VPC in these logs: there is no "
            "inbound traffic to explain."
        )
    parts = []
    if counts["response"]:
        parts.append(
            f"{_n(counts['response'], 'only answered', 'only answered')} connections that "
            "instances opened through it"
        )
    if counts["unsolicited"]:
        parts.append(
            f"{_n(counts['unsolicited'], 'sent', 'sent')} unsolicited packets that it dropped "
            "(logged ACCEPT because the network ACL of its subnet admits them)"
        )
    if counts["mixed"]:
        parts.append(f"{_n(counts['mixed'], 'did', 'did')} both")
    listed = "; ".join(parts)
    head = f"Of {_n(total, 'internet address', 'internet addresses')} that sent ACCEPT records "
    if counts["exposed"]:
        targets = ", ".join(exposed_on[:5]) + (" and more" if len(exposed_on) > 5 else "")
        answer = (
            f"The NAT gateway accepted nothing, but something else did: "
            f"{_n(counts['exposed'], 'internet address', 'internet addresses')} opened "
            f"connections to {targets}: an exposure to close. "
            + head
            + "into the VPC, "
            + (listed + "." if listed else "none went only to the NAT gateway.")
        )
    elif counts["undetermined"] and not (counts["response"] or counts["unsolicited"]):
        answer = (
            "natlens cannot tell: none of the "
            f"{_n(total, 'internet address', 'internet addresses')} that sent ACCEPT records "
            "into the VPC could be decided from these logs."
        )
    else:
        answer = (
            "No. A NAT gateway never accepts connections from the internet, and these logs show "
            "none reaching an instance either. " + head + "into the VPC, " + listed + "."
        )
    if counts["undetermined"]:
        one = counts["undetermined"] == 1
        answer += (
            f" {_n(counts['undetermined'], 'address', 'addresses')} could not be decided: "
            f"{'its' if one else 'their'} traffic may be connections the internet opened, so "
            f"this is not the all-clear for {'it' if one else 'them'} (natlens explain ADDRESS "
            "says what would decide it)."
        )
    return answer


def attribute_answer(rows: Iterable[Mapping[str, Any]]) -> str:
    """Which instance is behind each firewall alert? From attribute's alert rows."""
    alerts = named = sure = from_nat = ambiguous = internet = 0
    instances: set[str] = set()
    for row in rows:
        if row.get("log_type", "alert") != "alert":
            continue
        alerts += 1
        if row["source_kind"] == "nat-gateway":
            from_nat += 1
        if row["source_kind"] == "internet":
            internet += 1
        if row["instance_id"] or row["instance_address"]:
            named += 1
            instances.add(str(row["instance_id"] or row["instance_address"]))
            if row["confidence"] in ("certain", "high"):
                sure += 1
        elif row["ambiguous"]:
            ambiguous += 1
    if not alerts:
        return "The firewall logged no alert in this case."
    text = f"{_n(alerts, 'alert')}: "
    if from_nat:
        text += (
            f"{_n(from_nat, 'names', 'name')} a NAT gateway's address as the source, because "
            "the firewall sits after the NAT gateway and never sees the instances. "
        )
    text += (
        f"natlens named the instance behind {named:,} of them ({sure:,} certain or high), "
        f"{_n(len(instances), 'instance')} in all"
    )
    left = alerts - named
    if left:
        reasons = []
        if ambiguous:
            reasons.append(f"{ambiguous:,} ambiguous (several instances fit equally)")
        if internet:
            reasons.append(f"{internet:,} from the internet itself")
        rest = left - ambiguous - internet
        if rest:
            reasons.append(f"{rest:,} with no matching flow log record")
        text += "; not named: " + ", ".join(reasons)
    return text + "."


def conversations_answer(counts: Iterable[Mapping[str, Any]]) -> str:
    """Who started the connections, and how sure natlens is: from conversations counted by
    ``confidence`` and ``client_role`` (``conversations`` each)."""
    total = internet = 0
    sure: Counter[str] = Counter()
    for row in counts:
        n = int(row["conversations"])
        total += n
        sure[row["confidence"]] += n
        if row["client_role"] == "internet":
            internet += n
    if not total:
        return "No conversation in these records."
    decided = sure["certain"] + sure["high"]
    text = (
        f"{_n(total, 'conversation')} (both directions of a connection, across the interfaces "
        f"that logged it). Who started each: certain or high for {decided:,}, medium for "
        f"{sure['medium']:,}, low or unknown for {sure['low'] + sure['unknown']:,}"
    )
    if internet:
        text += f"; {_n(internet, 'was', 'were')} opened from the internet"
    return text + "."


def nat_links_answer(rows: Iterable[Mapping[str, Any]]) -> str:
    """The instance behind each connection a NAT gateway made."""
    total = named = sure = ambiguous = 0
    gateways: set[str] = set()
    for row in rows:
        total += 1
        gateways.add(str(row["nat_gateway"] or row["nat_address"]))
        if row["instance_address"]:
            named += 1
            sure += row["confidence"] in ("certain", "high")
        elif row["ambiguous"]:
            ambiguous += 1
    if not total:
        return "No NAT gateway made a connection to the internet in these records."
    return (
        f"{_n(total, 'connection')} through {_n(len(gateways), 'NAT gateway')}: the instance "
        f"behind {named:,} found ({sure:,} certain or high), {ambiguous:,} ambiguous "
        f"(several instances fit equally), {total - named - ambiguous:,} not found."
    )


def talkers_answer(rows: Iterable[Mapping[str, Any]]) -> str:
    """The biggest talker per NAT gateway."""
    firsts = []
    for row in rows:
        if row["rank"] == 1 and row["side"] == "instance":
            who = row["instance_id"] or row["address"]
            firsts.append(
                f"{who} through {row['nat_gateway'] or row['nat_address']} "
                f"({row['bytes']:,} bytes, {_n(row['connections'], 'connection')})"
            )
    if not firsts:
        return "No instance sent traffic through a NAT gateway in these records."
    return "The instance that sent the most through each NAT gateway: " + "; ".join(firsts) + "."


def reachable_answer(rows: Iterable[Mapping[str, Any]]) -> str:
    """What the internet can open, and whether it did."""
    states: Counter[str] = Counter(row["state"] for row in rows)
    total = sum(states.values())
    if not total:
        return (
            "The context opens no interface to the internet: no public address or IPv6 route "
            "with a security group rule that admits internet sources."
        )
    parts = ", ".join(f"{n:,} {state}" for state, n in states.most_common())
    return f"{_n(total, 'port range')} open to the internet: {parts}."
