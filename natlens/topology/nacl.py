"""Network ACLs: what an ACL admits from the internet, and the entries that close it again."""

from __future__ import annotations

import ipaddress

from natlens.topology.commands import acl_entry
from natlens.topology.network import NetworkAcl, Vpc, network
from natlens.topology.plans import Planner

# NAT gateways use source ports 1024-65535 (docs/aws.md §4): replies arrive on those only.
EPHEMERAL = (1024, 65535)
_PROBES = ("198.51.100.7", "203.0.113.9", "8.8.8.8", "1.1.1.1")


def internet_sources(acl: NetworkAcl, vpc: Vpc) -> list[str]:
    """Addresses standing for every part of the internet the ACL's rules tell apart."""
    inside = [n for n in map(network, vpc.cidrs) if n]
    addresses = list(_PROBES)
    for entry in acl.entries:
        net = network(entry.cidr or "")
        if net and net.version == 4 and net.prefixlen > 0:
            addresses.append(str(net.network_address))
    return [
        a
        for a in addresses
        if ipaddress.ip_address(a).is_global
        and not any(ipaddress.ip_address(a) in n for n in inside)
    ]


def admitted(acl: NetworkAcl, source: str, protocol: str) -> list[tuple[int, int, int]]:
    """The ports below the ephemeral range that the ACL's inbound rules admit from ``source``
    for ``protocol`` ("6" or "17"): (from, to, rule number) ranges, by first match."""
    address = ipaddress.ip_address(source)
    open_ports: list[tuple[int, int, int]] = []
    for port in range(0, EPHEMERAL[0]):
        for entry in acl.entries:
            net = network(entry.cidr or "")
            if entry.egress or net is None or net.version != 4 or address not in net:
                continue
            if entry.protocol not in ("-1", protocol):
                continue
            if entry.ports and not entry.ports[0] <= port <= entry.ports[1]:
                continue
            if entry.action == "allow":
                if (
                    open_ports
                    and open_ports[-1][1] == port - 1
                    and open_ports[-1][2] == entry.number
                ):
                    open_ports[-1] = (open_ports[-1][0], port, entry.number)
                else:
                    open_ports.append((port, port, entry.number))
            break
    return open_ports


def acl_of(vpc: Vpc, subnet: str) -> NetworkAcl | None:
    return next((a for a in vpc.network_acls if subnet in a.subnets), None) or next(
        (a for a in vpc.network_acls if a.default), None
    )


def nacl_plan(
    planner: Planner, acl: NetworkAcl, vpc: Vpc, opened: dict[str, list[tuple[int, int, int]]]
) -> None:
    first = min(n for ranges in opened.values() for _, _, n in ranges)
    used = {e.number for e in acl.entries if not e.egress}
    free = [n for n in range(first - 1, 0, -1) if n not in used]
    needed = len(vpc.cidrs) + 2
    if len(free) < needed or not vpc.cidrs:
        planner.notes.append(
            f"no free rule numbers below {first} in {acl.id}: renumber its "
            "inbound rules, then deny tcp and udp 0-1023 from 0.0.0.0/0 after "
            "allowing the VPC's CIDRs"
        )
        return
    numbers = sorted(free[:needed])
    for cidr, number in zip(vpc.cidrs, numbers, strict=False):
        planner.emit(
            acl_entry(
                acl.id,
                number,
                "-1",
                "allow",
                cidr,
                None,
                f"instances in {cidr} still reach the NAT gateway on any port",
            )
        )
    for protocol, number in zip(("tcp", "udp"), numbers[len(vpc.cidrs) :], strict=False):
        planner.emit(
            acl_entry(
                acl.id,
                number,
                protocol,
                "deny",
                "0.0.0.0/0",
                (0, EPHEMERAL[0] - 1),
                f"internet {protocol} packets to ports below {EPHEMERAL[0]} are "
                "rejected at the subnet",
            )
        )
