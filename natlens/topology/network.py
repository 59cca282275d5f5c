"""The routing model of one VPC, built from the describe-* JSON of its context (docs/aws.md §7, §9).

Only what routing needs: subnets and their AZs, route tables with their routes and associations
(subnet, main, internet gateway edge), NAT gateways, firewall endpoints, internet gateways,
network ACLs and the interfaces living in each subnet. What the context lacks stays unknown
(``None``), and the tracer says so rather than guessing.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from natlens.formats.describe_json import Context, service_role
from natlens.vocabulary import Role, Target

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Route keys (docs/aws.md §7.1) -> the kind of target. A VPC endpoint (gateway endpoint, or a
# Gateway Load Balancer endpoint such as Network Firewall's) comes back in GatewayId as vpce-…
TARGET_KEYS: tuple[tuple[str, Target | None], ...] = (
    ("NatGatewayId", Target.NAT_GATEWAY),
    ("TransitGatewayId", Target.TRANSIT_GATEWAY),
    ("VpcPeeringConnectionId", Target.PEERING_CONNECTION),
    ("EgressOnlyInternetGatewayId", Target.EGRESS_ONLY_INTERNET_GATEWAY),
    ("NetworkInterfaceId", Target.NETWORK_INTERFACE),
    ("InstanceId", Target.INSTANCE),
    ("LocalGatewayId", Target.LOCAL_GATEWAY),
    ("CarrierGatewayId", Target.CARRIER_GATEWAY),
    ("CoreNetworkArn", Target.CORE_NETWORK),
    ("VpcEndpointId", Target.VPC_ENDPOINT),
    ("GatewayId", None),  # local, igw-, vgw-, vpce-: decided by the id's prefix
)


@dataclass(frozen=True)
class Route:
    destination: str  # a CIDR or a prefix list id
    target_kind: Target  # local, internet-gateway, nat-gateway, vpc-endpoint, ...
    target: str
    state: str  # active, blackhole, filtered

    @property
    def prefix_list(self) -> bool:
        return self.destination.startswith("pl-")


@dataclass
class RouteTable:
    id: str
    routes: list[Route]
    main: bool = False
    subnets: list[str] = field(default_factory=list)
    # subnet id -> its association id (for replace-route-table-association)
    associations: dict[str, str] = field(default_factory=dict)
    gateways: list[str] = field(default_factory=list)  # edge associations (igw-, vgw-)


@dataclass(frozen=True)
class Subnet:
    id: str
    cidr: str | None
    ipv6_cidrs: tuple[str, ...]
    az: str | None


@dataclass(frozen=True)
class NatGateway:
    id: str
    subnet_id: str | None
    state: str | None
    connectivity: str  # public or private


@dataclass(frozen=True)
class FirewallEndpoint:
    id: str  # vpce-…
    firewall: str | None  # the firewall's name, when describe-firewall says
    subnet_id: str | None
    az: str | None
    status: str | None  # the attachment's status (READY, CREATING, …)
    firewall_status: str | None
    source: str  # describe-firewall, describe-vpc-endpoints, describe-network-interfaces, route


@dataclass(frozen=True)
class AclEntry:
    number: int
    egress: bool
    protocol: str  # "-1", "6", "17", "1", …
    action: str
    cidr: str | None
    ports: tuple[int, int] | None


@dataclass(frozen=True)
class NetworkAcl:
    id: str
    default: bool
    subnets: tuple[str, ...]
    entries: tuple[AclEntry, ...]


@dataclass
class Vpc:
    """What routing needs to know about one VPC."""

    id: str
    cidrs: list[str]
    subnets: dict[str, Subnet]
    route_tables: dict[str, RouteTable]
    nat_gateways: dict[str, NatGateway]
    endpoints: dict[str, FirewallEndpoint]
    internet_gateways: list[str]
    network_acls: list[NetworkAcl]
    # subnet id -> what lives there: (interface id, role) with role instance, nat-gateway, …
    residents: dict[str, list[tuple[str, str]]]
    gateway_endpoints: set[str]  # vpce ids of gateway endpoints (S3, DynamoDB)
    prefix_lists: dict[str, list[str]]
    known: set[str]  # which describe-* kinds the context held

    def table_of(self, subnet_id: str) -> tuple[RouteTable | None, bool]:
        """The route table a subnet uses and whether it is the main one by default."""
        for table in self.route_tables.values():
            if subnet_id in table.subnets:
                return table, False
        return self.main_table(), True

    def main_table(self) -> RouteTable | None:
        return next((t for t in self.route_tables.values() if t.main), None)

    def edge_table(self, gateway: str) -> RouteTable | None:
        return next((t for t in self.route_tables.values() if gateway in t.gateways), None)

    def subnet_az(self, subnet_id: str | None) -> str | None:
        subnet = self.subnets.get(subnet_id or "")
        return subnet.az if subnet else None

    def subnets_of(self, kind: str) -> set[str]:
        """The subnets holding NAT gateways (``nat``) or firewall endpoints (``firewall``)."""
        if kind == "nat":
            return {n.subnet_id for n in self.nat_gateways.values() if n.subnet_id}
        return {e.subnet_id for e in self.endpoints.values() if e.subnet_id}

    def role(self, subnet_id: str) -> str:
        """``firewall`` (holds a firewall endpoint), ``nat`` (a NAT gateway) or ``workload``."""
        if subnet_id in self.subnets_of("firewall"):
            return "firewall"
        return "nat" if subnet_id in self.subnets_of("nat") else "workload"


def vpcs(context: Context, vpc_id: str | None = None) -> list[Vpc]:
    """One routing model per VPC the context names (sorted by id), or for ``vpc_id`` only."""
    ids = sorted(
        {v["VpcId"] for v in context.vpcs if v.get("VpcId")}
        | {s["VpcId"] for s in context.subnets if s.get("VpcId")}
        | {t["VpcId"] for t in context.route_tables if t.get("VpcId")}
    )
    return [_vpc(context, i) for i in ids if vpc_id is None or i == vpc_id]


def target_of(route: dict[str, Any]) -> tuple[Target, str]:
    """The kind and id of a route's target (docs/aws.md §7.1)."""
    for key, kind in TARGET_KEYS:
        value = route.get(key)
        if not value:
            continue
        if kind:
            return kind, str(value)
        value = str(value)
        if value == Target.LOCAL:
            return Target.LOCAL, value
        for prefix, what in (
            ("igw-", Target.INTERNET_GATEWAY),
            ("vgw-", Target.VPN_GATEWAY),
            ("vpce-", Target.VPC_ENDPOINT),
        ):
            if value.startswith(prefix):
                return what, value
        return Target.GATEWAY, value
    return Target.UNKNOWN, ""


def _route(item: dict[str, Any]) -> Route | None:
    destination = (
        item.get("DestinationCidrBlock")
        or item.get("DestinationIpv6CidrBlock")
        or item.get("DestinationPrefixListId")
    )
    if not destination:
        return None
    kind, target = target_of(item)
    return Route(str(destination), kind, target, str(item.get("State", "active")))


def _vpc(context: Context, vpc_id: str) -> Vpc:
    def mine(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [i for i in items if i.get("VpcId") == vpc_id]

    subnets = {}
    for item in mine(context.subnets):
        v6 = tuple(
            a["Ipv6CidrBlock"]
            for a in item.get("Ipv6CidrBlockAssociationSet") or []
            if a.get("Ipv6CidrBlock")
        )
        subnets[item["SubnetId"]] = Subnet(
            item["SubnetId"], item.get("CidrBlock"), v6, item.get("AvailabilityZone")
        )
    tables = {}
    for item in mine(context.route_tables):
        table = RouteTable(
            item["RouteTableId"], [r for r in map(_route, item.get("Routes") or []) if r]
        )
        for association in item.get("Associations") or []:
            state = (association.get("AssociationState") or {}).get("State", "associated")
            if state not in ("associated", "associating"):
                continue
            if association.get("Main"):
                table.main = True
            if association.get("SubnetId"):
                table.subnets.append(association["SubnetId"])
                table.associations[association["SubnetId"]] = association.get(
                    "RouteTableAssociationId", ""
                )
            if association.get("GatewayId"):
                table.gateways.append(association["GatewayId"])
        tables[table.id] = table
    nats = {}
    for item in mine(context.nat_gateways):
        nats[item["NatGatewayId"]] = NatGateway(
            item["NatGatewayId"],
            item.get("SubnetId"),
            item.get("State"),
            item.get("ConnectivityType", "public"),
        )
    igws = [
        g["InternetGatewayId"]
        for g in context.internet_gateways
        if any(a.get("VpcId") == vpc_id for a in g.get("Attachments") or [])
    ]
    residents: dict[str, list[tuple[str, str]]] = {}
    nat_enis = {n["interface_id"] for n in context.nat_gateway_addresses()}
    for eni in mine(context.interfaces):
        role: str
        if eni.get("NetworkInterfaceId") in nat_enis:
            role = Role.NAT_GATEWAY
        elif (eni.get("Attachment") or {}).get("InstanceId"):
            role = Role.INSTANCE
        else:
            role = str(eni.get("InterfaceType") or "interface")
        residents.setdefault(eni.get("SubnetId", ""), []).append((eni["NetworkInterfaceId"], role))
    endpoints = [e for e in context.firewall_endpoints() if e["vpc_id"] == vpc_id]
    kinds = ("vpcs", "subnets", "route_tables", "nat_gateways", "interfaces", "network_acls",
             "vpc_endpoints")  # fmt: skip
    known = {kind for kind in kinds if mine(getattr(context, kind))}
    known |= {"internet_gateways"} if igws else set()
    if any((f.get("Firewall") or {}).get("VpcId") == vpc_id for f in context.firewalls):
        known.add("firewalls")
    vpc = Vpc(
        vpc_id,
        context.vpc_cidrs(vpc_id),
        subnets,
        tables,
        nats,
        {},
        igws,
        [_acl(a) for a in mine(context.network_acls)],
        residents,
        {
            e["VpcEndpointId"]
            for e in mine(context.vpc_endpoints)
            if e.get("VpcEndpointType") == "Gateway"
        },
        dict(context.prefix_list_entries),
        known,
    )
    vpc.endpoints = _endpoints(context, vpc, endpoints)
    return vpc


def _endpoints(
    context: Context, vpc: Vpc, synced: Sequence[Mapping[str, Any]]
) -> dict[str, FirewallEndpoint]:
    """Firewall endpoints, from the best source available: describe-firewall's SyncStates, then
    describe-vpc-endpoints (Gateway Load Balancer endpoints), then the endpoint's interface
    (``VPC Endpoint Interface vpce-…``), then only the routes that name a vpce- target."""
    found: dict[str, FirewallEndpoint] = {}
    for row in synced:
        if row["endpoint_id"]:
            found[row["endpoint_id"]] = FirewallEndpoint(
                row["endpoint_id"],
                row["firewall_name"],
                row["subnet_id"],
                row["availability_zone"],
                row["status"],
                row["firewall_status"],
                "describe-firewall",
            )
    for item in context.vpc_endpoints:
        if item.get("VpcId") != vpc.id or item.get("VpcEndpointType") != "GatewayLoadBalancer":
            continue
        identity = item["VpcEndpointId"]
        subnet = next(iter(item.get("SubnetIds") or []), None)
        if identity not in found:
            found[identity] = FirewallEndpoint(
                identity, None, subnet, vpc.subnet_az(subnet), None, None, "describe-vpc-endpoints"
            )
    for eni in context.interfaces:
        role = service_role(eni) if eni.get("VpcId") == vpc.id else None
        identity = role[1] if role and role[0] == Role.FIREWALL_ENDPOINT else None
        if identity and identity.startswith("vpce-") and identity not in found:
            found[identity] = FirewallEndpoint(
                identity,
                None,
                eni.get("SubnetId"),
                eni.get("AvailabilityZone"),
                None,
                None,
                "describe-network-interfaces",
            )
    # A vpce- target of a CIDR route is a Gateway Load Balancer endpoint: gateway endpoints
    # (S3, DynamoDB) are only ever the target of prefix-list routes (docs/aws.md §7.1).
    for table in vpc.route_tables.values():
        for route in table.routes:
            if (
                route.target_kind == Target.VPC_ENDPOINT
                and not route.prefix_list
                and route.target not in found
                and route.target not in vpc.gateway_endpoints
            ):
                found[route.target] = FirewallEndpoint(
                    route.target, None, None, None, None, None, "route"
                )
    return found


# AWS prints protocol numbers ("6"); a hand-written or test file may say "tcp".
PROTOCOL_NUMBERS = {"tcp": "6", "udp": "17", "icmp": "1", "all": "-1"}


def protocol_number(protocol: str) -> str:
    return PROTOCOL_NUMBERS.get(protocol.lower(), protocol)


def _acl(item: dict[str, Any]) -> NetworkAcl:
    entries = []
    for entry in item.get("Entries") or []:
        ports = entry.get("PortRange")
        entries.append(
            AclEntry(
                int(entry.get("RuleNumber", 32767)),
                bool(entry.get("Egress")),
                protocol_number(str(entry.get("Protocol", "-1"))),
                str(entry.get("RuleAction", "deny")),
                entry.get("CidrBlock") or entry.get("Ipv6CidrBlock"),
                (int(ports.get("From", 0)), int(ports.get("To", 65535))) if ports else None,
            )
        )
    return NetworkAcl(
        item["NetworkAclId"],
        bool(item.get("IsDefault")),
        tuple(a["SubnetId"] for a in item.get("Associations") or [] if a.get("SubnetId")),
        tuple(sorted(entries, key=lambda e: e.number)),
    )


@functools.cache
def network(cidr: str) -> Network | None:
    """A CIDR parsed once: tracing looks up the same route prefixes again and again."""
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def within(inner: Network, outer: Network) -> bool:
    """``inner`` lies wholly in ``outer`` (False across IP versions)."""
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]
