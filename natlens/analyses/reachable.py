"""What the internet can reach, per interface and port, joined with what the logs show.

From the context: the interfaces the internet can open connections to (an instance's public
IPv4 address, a load balancer's, or an IPv6 address, in a subnet whose route table sends the
default route of that family to an internet gateway), the inbound security group rules that
admit internet sources (AWS: security groups are stateful and allow-only, so a port no rule
admits cannot be opened from the internet), and the first network ACL rule that decides each
port range (network ACLs are stateless, evaluated by rule number). NAT gateways are left out:
they drop every connection the internet opens (the ``nacl-admits-unsolicited`` check covers
them). Then, from the logs, who opened conversations to each reachable port:

- ``reachable, used``: internet clients exchanged data with it;
- ``probed by scanners``: only probes reached it (a few packets, or nothing answered);
- ``reachable, unused``: nothing from the internet in the logs: close it unless it is needed.

AWS Network Access Analyzer answers the first half with its own engine; this table is built
from the same rules, from the describe-* JSON alone, and adds the second half.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlglot import exp

from natlens.analyses.conversations import (
    PRIVATE_V4,
    ConversationOptions,
    conversations_sql,
    explained_from,
)
from natlens.case import Case
from natlens.engine import Engine
from natlens.errors import UsageError
from natlens.formats.describe_json import Context, ecs_task, is_nat_interface, service_role
from natlens.sqltree import fragment
from natlens.topology.nacl import acl_of
from natlens.topology.network import NetworkAcl, network, vpcs
from natlens.vocabulary import Target

STATES = ("reachable, used", "probed by scanners", "reachable, unused", "blocked by network ACL")
# A conversation with at most this many packets from the client is a probe (SYN, maybe an ACK
# and RST; a UDP or ICMP probe), not a use of the service.
PROBE_PACKETS = 3
# Addresses standing for "anyone on the internet" when a rule's source is a default route.
ANYONE = {4: "192.0.2.1", 6: "2001:db8::1"}
PROTOCOL_NAMES = {-1: "all", 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
# Sources that are not the internet (the analyses' private ranges).
PRIVATE = [ipaddress.ip_network(c) for c in (*PRIVATE_V4, "fc00::/7", "fe80::/10")]

COLUMNS = {
    "resource": pa.string(),
    "interface_id": pa.string(),
    "address": pa.string(),
    "public_address": pa.string(),
    "protocol": pa.string(),
    "ports": pa.string(),
    "source": pa.string(),
    "security_group": pa.string(),
    "network_acl": pa.string(),
    "route": pa.string(),
    "state": pa.string(),
    "clients": pa.int64(),
    "probes": pa.int64(),
    "packets_in": pa.int64(),
    "first_seen": pa.int64(),
    "last_seen": pa.int64(),
    "recommendation": pa.string(),
}


@dataclass(frozen=True)
class Door:
    """One port range of one address that a security group rule opens to internet sources."""

    resource: str
    interface_id: str
    address: str  # as the flow logs name the interface: its private IPv4 or its IPv6 address
    public_address: str | None
    protocol: int  # -1 all
    low: int
    high: int
    source: str
    group: str
    acl: str  # "acl-… rule N" that allows it, or the deny that blocks it
    allowed: bool
    route: str


def doors(context: Context) -> list[Door]:
    """Every (interface, protocol, port range, source) the internet can open, by the context."""
    rules_by_address = context.security_group_rules()
    out: list[Door] = []
    for vpc in vpcs(context):
        inside = [n for n in map(network, vpc.cidrs) if n]
        for eni in context.interfaces:
            if eni.get("VpcId") not in (None, vpc.id) or is_nat_interface(eni):
                continue
            subnet = str(eni.get("SubnetId") or "")
            table, _main = vpc.table_of(subnet)
            routes = table.routes if table else []
            resource = _resource(eni)
            for address, public, family in _addresses(eni):
                route = next(
                    (
                        r.target
                        for r in routes
                        if r.target_kind == Target.INTERNET_GATEWAY
                        and r.state == "active"
                        and r.destination == ("0.0.0.0/0" if family == 4 else "::/0")
                    ),
                    None,
                )
                if route is None:
                    continue
                acl = acl_of(vpc, subnet)
                for rule in rules_by_address.get(address, []):
                    source = network(str(rule["source"]))
                    if source is None or source.version != family:
                        continue
                    if any(source.subnet_of(n) for n in inside if n.version == family):  # type: ignore[arg-type]
                        continue  # the VPC itself
                    if source.prefixlen and any(
                        source.subnet_of(n)  # type: ignore[arg-type]
                        for n in PRIVATE
                        if n.version == source.version
                    ):
                        continue  # private ranges: not the internet
                    for low, high, allowed, why in _acl_segments(
                        acl, source, rule["protocol"], rule["from_port"], rule["to_port"]
                    ):
                        out.append(Door(
                            resource, str(eni.get("NetworkInterfaceId")), address, public,
                            rule["protocol"], low, high, str(source), str(rule["group_id"]),
                            why, allowed, route,
                        ))  # fmt: skip
    return out


def _resource(eni: dict[str, Any]) -> str:
    instance = (eni.get("Attachment") or {}).get("InstanceId") or ecs_task(eni)
    if instance:
        return str(instance)
    role = service_role(eni)
    if role and role[1]:
        return str(role[1])
    return str(eni.get("NetworkInterfaceId"))


def _addresses(eni: dict[str, Any]) -> list[tuple[str, str | None, int]]:
    """(address in the logs, public address, IP version) the internet could reach: private
    IPv4 addresses with a public one associated, and IPv6 addresses."""
    out: list[tuple[str, str | None, int]] = []
    primary = [{"PrivateIpAddress": eni.get("PrivateIpAddress")}]
    for private in eni.get("PrivateIpAddresses") or primary:
        public = (private.get("Association") or {}).get("PublicIp")
        if public and private.get("PrivateIpAddress"):
            out.append((str(private["PrivateIpAddress"]), str(public), 4))
    for item in eni.get("Ipv6Addresses") or []:
        if isinstance(item, dict) and item.get("Ipv6Address"):
            out.append((str(item["Ipv6Address"]), None, 6))
    return out


def _acl_segments(
    acl: NetworkAcl | None, source: Any, protocol: int, low: int, high: int
) -> list[tuple[int, int, bool, str]]:
    """The port range cut where the network ACL's inbound rules change their answer for this
    source: (from, to, allowed, "acl-… rule N"). Without the ACL in the context: allowed, as
    far as natlens can tell."""
    if acl is None:
        return [(low, high, True, "not in the context")]
    probe = ipaddress.ip_address(
        ANYONE[source.version] if source.prefixlen == 0 else source.network_address
    )
    entries = [e for e in acl.entries if not e.egress]
    cuts = {low, high + 1}
    for e in entries:
        if e.ports:
            cuts.update(p for p in (e.ports[0], e.ports[1] + 1) if low < p <= high)
    edges = sorted(cuts)
    segments: list[tuple[int, int, bool, str]] = []
    for start, end in itertools.pairwise(edges):
        allowed, why = False, f"{acl.id} default deny"
        for e in entries:
            net = network(e.cidr or "")
            if net is None or net.version != probe.version or probe not in net:
                continue
            if e.protocol != "-1" and protocol != -1 and e.protocol != str(protocol):
                continue
            if e.ports and protocol in (6, 17) and not e.ports[0] <= start <= e.ports[1]:
                continue
            allowed, why = e.action == "allow", f"{acl.id} rule {e.number}"
            break
        if segments and segments[-1][2:] == (allowed, why) and segments[-1][1] == start - 1:
            segments[-1] = (segments[-1][0], end - 1, allowed, why)
        else:
            segments.append((start, end - 1, allowed, why))
    return segments


def reachable(engine: Engine, case: Case, options: ConversationOptions) -> pa.Table:
    """The reachable ports of the context's interfaces, with what the logs show of each."""
    from natlens.analyses.context_check import prepare

    if options.context is not None:
        prepare(engine, case, options)
    if options.context is None:
        raise UsageError(
            "natlens reachable needs --context: what is reachable comes from the security "
            "groups, network ACLs and route tables",
            hint="natlens context collect DIR, then --context DIR",
        )
    if not options.context.security_groups:
        raise UsageError(
            "the context has no security groups: natlens cannot say which ports they admit",
            hint="natlens context collect saves describe-security-groups",
        )
    found = doors(options.context)
    seen = _observed(engine, case, options, sorted({d.address for d in found}))
    rows = [_row(door, seen.get(door.address, [])) for door in found]
    rows.sort(key=lambda r: (STATES.index(r["state"]), r["resource"], r["protocol"], r["ports"]))
    return pa.Table.from_pylist(rows, schema=pa.schema(COLUMNS))


def _observed(
    engine: Engine, case: Case, options: ConversationOptions, addresses: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Conversations whose server is one of ``addresses`` and whose client is on the
    internet, by server address."""
    if not addresses:
        return {}
    engine.register_case(case)
    listed = [str(ipaddress.ip_address(a)) for a in addresses]
    inner = conversations_sql(options, head=explained_from(engine, case, options))
    columns = ("server_addr", "server_port", "protocol", "client_addr", "packets_to_server",
               "packets_to_client", "first_seen", "last_seen")  # fmt: skip
    query = (
        exp.select(*columns)
        .from_(inner.subquery("c"))
        .where(exp.column("server_addr").isin(*listed))
        .where(fragment("coalesce(client_role, 'internet') = 'internet'"))
    )
    table = engine.query(query)
    out: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        try:
            ipaddress.ip_address(str(row["client_addr"]))
        except ValueError:
            continue
        out.setdefault(str(row["server_addr"]), []).append(row)
    return out


def _row(door: Door, conversations: list[dict[str, Any]]) -> dict[str, Any]:
    source = network(door.source)
    mine = []
    for c in conversations:
        if door.protocol != -1 and c["protocol"] != door.protocol:
            continue
        if door.protocol in (6, 17) and not door.low <= (c["server_port"] or 0) <= door.high:
            continue
        if source is not None and ipaddress.ip_address(c["client_addr"]) not in source:
            continue
        mine.append(c)
    used = [
        c
        for c in mine
        if (c["packets_to_server"] or 0) > PROBE_PACKETS and (c["packets_to_client"] or 0) > 0
    ]
    if not door.allowed:
        state = "blocked by network ACL"
    elif used:
        state = "reachable, used"
    elif mine:
        state = "probed by scanners"
    else:
        state = "reachable, unused"
    name = PROTOCOL_NAMES.get(door.protocol, str(door.protocol))
    ported = door.protocol in (6, 17)
    ports = (
        "" if not ported else str(door.low) if door.low == door.high else f"{door.low}-{door.high}"
    )
    opening = f"{door.group} {name}{' ' + ports if ports else ''} from {door.source}"
    advice = {
        "reachable, used": f"in use from the internet: keep {opening} only if it is meant to be "
        "public; narrow the source if the clients are known",
        "probed by scanners": f"only scanners reached it: remove {opening} unless it must stay "
        "open",
        "reachable, unused": f"nothing from the internet used it in these logs: remove "
        f"{opening} unless it is needed",
        "blocked by network ACL": f"{door.acl} denies it: {opening} is open in the security "
        "group only",
    }[state]
    return {
        "resource": door.resource,
        "interface_id": door.interface_id,
        "address": door.address,
        "public_address": door.public_address,
        "protocol": name,
        "ports": ports or "all",
        "source": door.source,
        "security_group": door.group,
        "network_acl": door.acl,
        "route": door.route,
        "state": state,
        "clients": len({c["client_addr"] for c in used}),
        "probes": len({c["client_addr"] for c in mine}) - len({c["client_addr"] for c in used}),
        "packets_in": sum(int(c["packets_to_server"] or 0) for c in mine),
        "first_seen": min((int(c["first_seen"]) for c in mine), default=None),
        "last_seen": max((int(c["last_seen"]) for c in mine), default=None),
        "recommendation": advice,
    }
