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
        answer += (
            f" {_n(counts['undetermined'], 'address', 'addresses')} could not be decided: "
            "they may be connections the internet opened, so this is not the all-clear for "
            "them (natlens explain ADDRESS says what would decide it)."
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
