"""Path tracing: from a subnet to a destination hop by hop, and the internet's way back.

Each hop is chosen by longest-prefix match in the route table the traffic is in: the subnet's own
table (or the main table when it has no association), then the table of the subnet holding the
NAT gateway or firewall endpoint it passed. The return path starts at the internet gateway: its
edge route table (a gateway association) if there is one, else straight to the address, then
the NAT gateway's subnet table once the NAT gateway has translated the address back
(docs/aws.md §7: the return route "more specific than local").
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from natlens.topology.network import Network, Route, RouteTable, Subnet, Vpc, network, within
from natlens.vocabulary import Layout, Role, Target

MAX_HOPS = 12

# The destinations every subnet is traced to.
DEFAULT_DESTINATIONS = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class Hop:
    kind: Target  # subnet, nat-gateway, firewall-endpoint, internet-gateway, …, no-route
    id: str
    az: str | None = None
    route_table: str | None = None  # the table whose route led here
    route: str | None = None  # that route's destination
    main: bool = False  # that table is the main one, used by default
    side: str | None = None  # firewall endpoints: inside (before the NAT gateway) or outside
    note: str | None = None

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, False)}


@dataclass
class Path:
    hops: list[Hop] = field(default_factory=list)
    outcome: str = "unknown"  # internet, delivered, blackhole, no-route, loop, unknown, …

    def endpoints(self) -> list[tuple[str, str | None]]:
        return [(h.id, h.side) for h in self.hops if h.kind == Target.FIREWALL_ENDPOINT]

    def kinds(self) -> list[str]:
        return [h.kind for h in self.hops]


@dataclass
class Trace:
    """One subnet to one destination: both directions, and what they mean together."""

    subnet: str
    az: str | None
    role: str  # workload, nat, firewall
    destination: str
    egress: Path
    back: Path | None  # the return path, when the egress reaches the internet

    @property
    def egress_endpoints(self) -> set[tuple[str, str | None]]:
        return set(self.egress.endpoints())

    @property
    def return_endpoints(self) -> set[tuple[str, str | None]]:
        return set(self.back.endpoints()) if self.back else set()

    @property
    def symmetric(self) -> bool:
        return self.back is None or self.egress_endpoints == self.return_endpoints

    @property
    def layout(self) -> str:
        """How the egress path is built: firewall-after-nat, firewall-before-nat, nat-only,
        firewall-only, direct, or the outcome when it never reaches the internet."""
        if self.egress.outcome != "internet":
            return self.egress.outcome
        middle = tuple(self.egress.kinds()[1:-1])
        names: dict[tuple[str, ...], Layout] = {
            (Target.NAT_GATEWAY, Target.FIREWALL_ENDPOINT): Layout.FIREWALL_AFTER_NAT,
            (Target.FIREWALL_ENDPOINT, Target.NAT_GATEWAY): Layout.FIREWALL_BEFORE_NAT,
            (Target.NAT_GATEWAY,): Layout.NAT_ONLY,
            (Target.FIREWALL_ENDPOINT,): Layout.FIREWALL_ONLY,
            (): Layout.DIRECT,
        }
        return names.get(middle, "-".join(middle))

    @property
    def firewall_sees(self) -> str:
        """Whose address the firewall logs for this traffic: instance, nat-gateway or none."""
        sides = {side for _, side in self.egress.endpoints()}
        if not sides:
            return "none"
        return Role.NAT_GATEWAY if sides == {"outside"} else Role.INSTANCE

    def to_json(self) -> dict[str, object]:
        return {
            "subnet_id": self.subnet,
            "availability_zone": self.az,
            "role": self.role,
            "destination": self.destination,
            "layout": self.layout,
            "outcome": self.egress.outcome,
            "symmetric": self.symmetric,
            "firewall_sees": self.firewall_sees,
            "egress": [h.to_json() for h in self.egress.hops],
            "return": [h.to_json() for h in self.back.hops] if self.back else None,
            "return_outcome": self.back.outcome if self.back else None,
        }


def lookup(vpc: Vpc, table: RouteTable, destination: Network) -> tuple[Route | None, str | None]:
    """The route for ``destination`` in ``table`` by longest-prefix match (a route matches when
    its prefix holds the whole destination), and a note when a prefix list could not be read."""
    best: Route | None = None
    best_length, note = -1, None
    for route in table.routes:
        prefixes = [route.destination]
        if route.prefix_list:
            prefixes = vpc.prefix_lists.get(route.destination, [])
            if not prefixes:
                note = f"{route.destination}: entries unknown (not in the context), not matched"
        for prefix in prefixes:
            net = network(prefix)
            if net is None:
                continue
            if within(destination, net) and net.prefixlen > best_length:
                best, best_length = route, net.prefixlen
    return best, note


def _subnet_holding(vpc: Vpc, destination: Network) -> str | None:
    for subnet in vpc.subnets.values():
        for cidr in (subnet.cidr, *subnet.ipv6_cidrs):
            net = network(cidr) if cidr else None
            if net and within(destination, net):
                return subnet.id
    return None


def walk(
    vpc: Vpc,
    table: RouteTable | None,
    main: bool,
    destination: Network,
    path: Path,
    translated: bool,
    back: bool,
) -> None:
    """Follow routes from ``table`` until the traffic leaves the VPC, is delivered inside it, or
    stops. ``translated``: a NAT gateway has already been passed (decides a firewall hop's side);
    ``back``: this is the return direction."""
    seen: set[tuple[str, str]] = set()
    for _ in range(MAX_HOPS):
        if table is None:
            path.hops.append(Hop(Target.NO_ROUTE, "", note="no route table in the context"))
            path.outcome = Target.NO_ROUTE
            return
        route, note = lookup(vpc, table, destination)
        if route is None:
            path.hops.append(Hop(Target.NO_ROUTE, "", route_table=table.id, main=main, note=note))
            path.outcome = Target.NO_ROUTE
            return
        kind, target = route.target_kind, route.target

        at = (table.id, route.destination, main)

        def hop(
            kind: Target,
            target: str,
            az: str | None = None,
            side: str | None = None,
            note: str | None = None,
            at: tuple[str, str, bool] = at,
        ) -> Hop:
            return Hop(kind, target, az, *at, side, note)

        if route.state == "blackhole":
            path.hops.append(hop(Target.BLACKHOLE, target, note=f"{kind} {target} is gone"))
            path.outcome = Target.BLACKHOLE
            return
        if (kind, target) in seen:
            path.hops.append(hop(Target.LOOP, target))
            path.outcome = Target.LOOP
            return
        seen.add((kind, target))
        if kind == Target.LOCAL:
            holder = _subnet_holding(vpc, destination)
            path.hops.append(hop(Target.SUBNET, holder or str(destination), vpc.subnet_az(holder)))
            path.outcome = "delivered"
            return
        if kind in (Target.INTERNET_GATEWAY, Target.EGRESS_ONLY_INTERNET_GATEWAY):
            path.hops.append(hop(kind, target))
            path.outcome = "internet"
            return
        if kind == Target.NAT_GATEWAY:
            nat = vpc.nat_gateways.get(target)
            subnet = nat.subnet_id if nat else None
            missing = None if nat else "not in describe-nat-gateways"
            path.hops.append(hop(kind, target, vpc.subnet_az(subnet), note=missing))
            if subnet is None:
                path.outcome = "unknown"
                return
            translated = True
            table, main = vpc.table_of(subnet)
            continue
        if kind == Target.VPC_ENDPOINT and target in vpc.endpoints:
            endpoint = vpc.endpoints[target]
            # inside: the firewall sees the instance's address; outside: the NAT gateway's.
            side = "outside" if translated != back else "inside"
            missing = (
                None
                if endpoint.subnet_id
                else ("its subnet is unknown: add describe-firewall or describe-vpc-endpoints")
            )
            az = endpoint.az or vpc.subnet_az(endpoint.subnet_id)
            path.hops.append(hop(Target.FIREWALL_ENDPOINT, target, az, side, missing))
            if endpoint.subnet_id is None:
                path.outcome = "unknown"
                return
            table, main = vpc.table_of(endpoint.subnet_id)
            continue
        path.hops.append(hop(kind, target))
        path.outcome = kind
        return
    path.outcome = Target.LOOP


def trace(vpc: Vpc, subnet_id: str, destination: str) -> Trace:
    subnet = vpc.subnets[subnet_id]
    role = vpc.role(subnet_id)
    dest = ipaddress.ip_network(destination, strict=False)
    egress = Path([Hop(Target.SUBNET, subnet_id, subnet.az)])
    table, main = vpc.table_of(subnet_id)
    if dest.version == 6 and not subnet.ipv6_cidrs:
        egress.hops.append(Hop(Target.NO_ROUTE, "", note="the subnet has no IPv6 CIDR"))
        egress.outcome = "no-ipv6"
        return Trace(subnet_id, subnet.az, role, destination, egress, None)
    walk(vpc, table, main, dest, egress, False, False)
    back = _return_path(vpc, subnet_id, egress, dest) if egress.outcome == "internet" else None
    return Trace(subnet_id, subnet.az, role, destination, egress, back)


def _cidr(subnet: Subnet, v6: bool) -> Network | None:
    """The subnet's CIDR of the traced IP version."""
    if v6:
        return network(subnet.ipv6_cidrs[0]) if subnet.ipv6_cidrs else None
    return network(subnet.cidr) if subnet.cidr else None


def _return_path(vpc: Vpc, subnet_id: str, egress: Path, dest: Network) -> Path:
    """From the internet gateway back to the subnet: the replies to what the egress sent."""
    gateway = egress.hops[-1]
    path = Path([Hop(gateway.kind, gateway.id)])
    nat_hop = next((h for h in egress.hops if h.kind == Target.NAT_GATEWAY), None)
    nat = vpc.nat_gateways.get(nat_hop.id) if nat_hop else None
    source = vpc.subnets[subnet_id]
    v6 = dest.version == 6
    # The address the internet saw: the NAT gateway's subnet, or the subnet itself.
    facing = vpc.subnets.get(nat.subnet_id or "") if nat else source
    address = _cidr(facing, v6) if facing else None
    if facing is None or address is None:
        path.hops.append(
            Hop(Target.NO_ROUTE, "", note="the replying subnet or its CIDR is unknown")
        )
        path.outcome = "unknown"
        return path
    edge = vpc.edge_table(gateway.id)
    if edge is None:
        note = "no edge route table: straight to the address"
        path.hops.append(Hop(Target.SUBNET, facing.id, facing.az, note=note))
        path.outcome = "delivered"
    else:
        walk(vpc, edge, False, address, path, nat is None, True)
    if path.outcome != "delivered" or nat is None:
        return path
    # The NAT gateway translates the reply back to the instance's address, then its subnet's
    # route table decides the way in.
    delivered = path.hops.pop()
    path.hops.append(
        Hop(
            Target.NAT_GATEWAY,
            nat.id,
            facing.az,
            delivered.route_table,
            delivered.route,
            delivered.main,
            note=delivered.note,
        )
    )
    inside = _cidr(source, v6)
    if inside is None:
        path.outcome = "unknown"
        return path
    table, main = vpc.table_of(facing.id)
    walk(vpc, table, main, inside, path, True, True)
    return path


def trace_all(vpc: Vpc, destinations: tuple[str, ...] = DEFAULT_DESTINATIONS) -> list[Trace]:
    """Every subnet of the VPC (by AZ, then CIDR) to every destination."""
    order = sorted(vpc.subnets.values(), key=lambda s: (s.az or "", s.cidr or "", s.id))
    return [trace(vpc, s.id, d) for s in order for d in destinations]
