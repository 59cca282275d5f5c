"""The VPC model from what ``aws ec2 describe-*`` and ``aws network-firewall describe-firewall``
print (docs/aws.md §4, §7, §9): the context every analysis can use.

Files are recognised by their content (the top-level key: ``Vpcs``, ``Subnets``, ``RouteTables``,
``NatGateways``, ``NetworkInterfaces``, ``NetworkAcls``, ``InternetGateways``, ``Reservations``,
``FlowLogs``, ``VpcEndpoints``, ``PrefixLists``, ``Firewall``, and ``Entries`` of
``get-managed-prefix-list-entries`` with the list's id in the file name), not their names,
so a directory filled by hand with the AWS CLI's own output works; several pages of one call
are merged. A missing file narrows what can be said; a
damaged one is reported and the rest is still read.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from natlens.accounting import Problem
from natlens.vocabulary import Role

# Top-level key -> the context attribute it fills.
KINDS = {
    "Vpcs": "vpcs",
    "Subnets": "subnets",
    "RouteTables": "route_tables",
    "NatGateways": "nat_gateways",
    "NetworkInterfaces": "interfaces",
    "NetworkAcls": "network_acls",
    "InternetGateways": "internet_gateways",
    "Reservations": "reservations",
    "FlowLogs": "flow_logs",
    "VpcEndpoints": "vpc_endpoints",
    "PrefixLists": "prefix_lists",
    "SecurityGroups": "security_groups",
}
PREFIX_LIST_ID = re.compile(r"pl-[0-9a-f]+")


class NatAddress(TypedDict):
    """One address of a NAT gateway (or of a NAT gateway's interface seen only in
    describe-network-interfaces: then ``state`` and ``connectivity`` are unknown)."""

    nat_gateway_id: str | None
    interface_id: str | None
    private_ip: str | None
    public_ip: str | None
    is_primary: bool | None
    subnet_id: str | None
    availability_zone: str | None
    vpc_id: str | None
    state: str | None
    connectivity: str | None


class InstanceInterface(TypedDict):
    """One private address of an instance's interface."""

    interface_id: str | None
    instance_id: str | None
    private_ip: str | None
    public_ip: str | None
    subnet_id: str | None
    availability_zone: str | None
    vpc_id: str | None


class FirewallEndpoint(TypedDict):
    """One AZ's endpoint of a Network Firewall (describe-firewall)."""

    firewall_name: str | None
    vpc_id: str | None
    availability_zone: str | None
    endpoint_id: str | None
    subnet_id: str | None
    status: str | None
    firewall_status: str | None


class AddressRole(TypedDict):
    """What a private address is (vocabulary.Role, or an interface type the context names)."""

    address: str
    role: str
    resource_id: str | None
    interface_id: str | None


class SgRule(TypedDict):
    """An inbound security group rule that admits a source CIDR to a port range."""

    group_id: str | None
    protocol: int
    from_port: int
    to_port: int
    source: str


@dataclass
class Context:
    vpcs: list[dict[str, Any]] = field(default_factory=list)
    subnets: list[dict[str, Any]] = field(default_factory=list)
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    nat_gateways: list[dict[str, Any]] = field(default_factory=list)
    interfaces: list[dict[str, Any]] = field(default_factory=list)
    network_acls: list[dict[str, Any]] = field(default_factory=list)
    internet_gateways: list[dict[str, Any]] = field(default_factory=list)
    reservations: list[dict[str, Any]] = field(default_factory=list)
    flow_logs: list[dict[str, Any]] = field(default_factory=list)
    vpc_endpoints: list[dict[str, Any]] = field(default_factory=list)
    prefix_lists: list[dict[str, Any]] = field(default_factory=list)
    security_groups: list[dict[str, Any]] = field(default_factory=list)
    # get-managed-prefix-list-entries: prefix list id -> its CIDRs
    prefix_list_entries: dict[str, list[str]] = field(default_factory=dict)
    firewalls: list[dict[str, Any]] = field(default_factory=list)  # describe-firewall outputs
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    # -- what the analyses ask -----------------------------------------------------------------

    def resource_names(self) -> dict[str, str]:
        """The Name tag of each instance and NAT gateway that has one, by id: how people know
        them (a tag is anything its owner wrote: shown as text, never obeyed)."""
        names: dict[str, str] = {}
        resources = [i for r in self.reservations for i in r.get("Instances") or []]
        for resource in [*resources, *self.nat_gateways]:
            ident = resource.get("InstanceId") or resource.get("NatGatewayId")
            if not isinstance(ident, str):
                continue
            for tag in resource.get("Tags") or []:
                if isinstance(tag, dict) and tag.get("Key") == "Name" and tag.get("Value"):
                    names[ident] = str(tag["Value"])
        return names

    def vpc_cidrs(self, vpc_id: str | None = None) -> list[str]:
        """The associated IPv4 CIDRs of every VPC, or of ``vpc_id`` only."""
        cidrs: list[str] = []
        for vpc in self.vpcs:
            if vpc_id and vpc.get("VpcId") != vpc_id:
                continue
            blocks = [
                a.get("CidrBlock")
                for a in vpc.get("CidrBlockAssociationSet", [])
                if a.get("CidrBlockState", {}).get("State", "associated") == "associated"
            ]
            for cidr in map(_network, [vpc.get("CidrBlock"), *blocks]):
                if cidr and cidr not in cidrs:
                    cidrs.append(cidr)
        return cidrs

    def vpc_ipv6_cidrs(self, vpc_id: str | None = None) -> list[str]:
        """The associated IPv6 CIDRs of every VPC (``Ipv6CidrBlockAssociationSet``), or of
        ``vpc_id`` only: addresses in them are the VPC's own, not the internet's."""
        cidrs: list[str] = []
        for vpc in self.vpcs:
            if vpc_id and vpc.get("VpcId") != vpc_id:
                continue
            for block in vpc.get("Ipv6CidrBlockAssociationSet") or []:
                state = (block.get("Ipv6CidrBlockState") or {}).get("State", "associated")
                cidr = _network(block.get("Ipv6CidrBlock"))
                if cidr and state == "associated" and cidr not in cidrs:
                    cidrs.append(cidr)
        return cidrs

    def inside_cidrs(self) -> list[str]:
        """Every CIDR whose addresses belong to the VPC(s), IPv4 and IPv6."""
        return [*self.vpc_cidrs(), *self.vpc_ipv6_cidrs()]

    def vpc_ids(self) -> set[str]:
        """The VPCs the context describes."""
        found = {v["VpcId"] for v in self.vpcs if isinstance(v.get("VpcId"), str)}
        found |= {e["VpcId"] for e in self.interfaces if isinstance(e.get("VpcId"), str)}
        return found

    def nat_gateway_addresses(self) -> list[NatAddress]:
        """One row per NAT gateway address: id, ENI, private and public IP, subnet, AZ, state."""
        azs = {s["SubnetId"]: s.get("AvailabilityZone") for s in self.subnets if "SubnetId" in s}
        rows: list[NatAddress] = []
        for nat in self.nat_gateways:
            for address in nat.get("NatGatewayAddresses", []):
                rows.append({
                    "nat_gateway_id": nat.get("NatGatewayId"),
                    "interface_id": address.get("NetworkInterfaceId"),
                    "private_ip": address.get("PrivateIp"),
                    "public_ip": address.get("PublicIp"),
                    "is_primary": address.get("IsPrimary"),
                    "subnet_id": nat.get("SubnetId"),
                    "availability_zone": address.get("AvailabilityZone")
                    or azs.get(nat.get("SubnetId")),
                    "vpc_id": nat.get("VpcId"),
                    "state": nat.get("State"),
                    "connectivity": nat.get("ConnectivityType", "public"),
                })  # fmt: skip
        # Without describe-nat-gateways, describe-network-interfaces still names them
        # (docs/aws.md §4: InterfaceType nat_gateway, Description "Interface for NAT Gateway
        # nat-…");
        # and a NAT gateway's secondary addresses (up to 8 per NAT gateway) are all on its
        # interface even when describe-nat-gateways was saved before they were added.
        known = {r["private_ip"] for r in rows}
        by_eni = {r["interface_id"]: r for r in rows}
        for eni in self.interfaces:
            if not (is_nat_interface(eni) or eni.get("NetworkInterfaceId") in by_eni):
                continue
            description = eni.get("Description", "")
            nat_id = (
                description.rsplit(" ", 1)[-1]
                if description.startswith("Interface for NAT")
                else _nat_of(by_eni.get(eni.get("NetworkInterfaceId")))
            )
            for private in _private_addresses(eni):
                if private.get("PrivateIpAddress") in known:
                    continue
                rows.append({
                    "nat_gateway_id": nat_id,
                    "interface_id": eni.get("NetworkInterfaceId"),
                    "private_ip": private.get("PrivateIpAddress"),
                    "public_ip": (private.get("Association") or {}).get("PublicIp"),
                    "is_primary": private.get("Primary"),
                    "subnet_id": eni.get("SubnetId"),
                    "availability_zone": eni.get("AvailabilityZone"),
                    "vpc_id": eni.get("VpcId"),
                    "state": None,
                    "connectivity": None,
                })  # fmt: skip
        return rows

    def instance_interfaces(self) -> list[InstanceInterface]:
        """One row per private IP of an instance's interface: ENI, instance, subnet, public IP."""
        rows: list[InstanceInterface] = []
        for eni in self.interfaces:
            instance = (eni.get("Attachment") or {}).get("InstanceId")
            if not instance:
                continue
            for private in _private_addresses(eni):
                rows.append({
                    "interface_id": eni.get("NetworkInterfaceId"),
                    "instance_id": instance,
                    "private_ip": private.get("PrivateIpAddress"),
                    "public_ip": (private.get("Association") or {}).get("PublicIp"),
                    "subnet_id": eni.get("SubnetId"),
                    "availability_zone": eni.get("AvailabilityZone"),
                    "vpc_id": eni.get("VpcId"),
                })  # fmt: skip
        return rows

    def firewall_endpoints(self) -> list[FirewallEndpoint]:
        """Per firewall and AZ: the endpoint id, its subnet and status, and the firewall's VPC
        and status (FirewallStatus.SyncStates)."""
        rows: list[FirewallEndpoint] = []
        for item in self.firewalls:
            firewall = item.get("Firewall") or {}
            status = item.get("FirewallStatus") or {}
            for az, state in sorted((status.get("SyncStates") or {}).items()):
                attachment = state.get("Attachment") or {}
                rows.append({"firewall_name": firewall.get("FirewallName"),
                             "vpc_id": firewall.get("VpcId"), "availability_zone": az,
                             "endpoint_id": attachment.get("EndpointId"),
                             "subnet_id": attachment.get("SubnetId"),
                             "status": attachment.get("Status"),
                             "firewall_status": status.get("Status")})  # fmt: skip
        return rows

    def address_roles(self) -> list[AddressRole]:
        """What each private address in the context is, for the analyses: ``nat-gateway``,
        ``firewall-endpoint`` (a Gateway Load Balancer endpoint's interface, which Network
        Firewall uses), ``load-balancer``, ``lambda``, ``instance`` (no public IP: the internet
        cannot open connections to it directly) or ``public-instance``, with the resource and
        the interface holding the address; ``transit-gateway`` and ``vpc-endpoint`` interfaces;
        an ECS task's own interface counts as an instance. One row per address, the first role
        found wins."""
        rows: dict[str, AddressRole] = {}

        def add(address: str | None, role: str, resource: str | None, eni: str | None) -> None:
            if address and address not in rows:
                rows[address] = {
                    "address": address, "role": role, "resource_id": resource,
                    "interface_id": eni,
                }  # fmt: skip

        for nat in self.nat_gateway_addresses():
            add(nat["private_ip"], Role.NAT_GATEWAY, nat["nat_gateway_id"], nat["interface_id"])
        for eni in self.interfaces:
            found = service_role(eni)
            if found:
                for private in _private_addresses(eni):
                    add(private.get("PrivateIpAddress"), *found, eni.get("NetworkInterfaceId"))
        for item in self.instance_interfaces():
            role = "public-instance" if item["public_ip"] else "instance"
            add(item["private_ip"], role, item["instance_id"], item["interface_id"])
        # ECS tasks in awsvpc mode have interfaces of their own: an instance for the analyses,
        # reachable from the internet when a public address is associated (Fargate)
        for eni in self.interfaces:
            task = ecs_task(eni)
            for private in _private_addresses(eni) if task else []:
                public = (private.get("Association") or {}).get("PublicIp")
                role = "public-instance" if public else "instance"
                add(private.get("PrivateIpAddress"), role, task, eni.get("NetworkInterfaceId"))
        # IPv6 addresses are global: whether the internet can open connections to one depends on
        # its subnet's route for ::/0, an internet gateway (it can) or an egress-only internet
        # gateway (it cannot: the gateway passes only replies).
        for eni in self.interfaces:
            instance = (eni.get("Attachment") or {}).get("InstanceId")
            found = service_role(eni)
            for address in _ipv6_addresses(eni):
                if found:
                    add(address, *found, eni.get("NetworkInterfaceId"))
                elif instance:
                    reachable = self.ipv6_internet_route(eni.get("SubnetId")) == "igw"
                    role = "public-instance" if reachable else "instance"
                    add(address, role, instance, eni.get("NetworkInterfaceId"))
        return list(rows.values())

    def has_network_load_balancer(self) -> bool:
        """A network load balancer can keep its clients' addresses toward its targets (client
        IP preservation): then an instance without a public address does receive internet
        addresses that are not replies."""
        return any(
            eni.get("InterfaceType") == "network_load_balancer"
            or str(eni.get("Description", "")).startswith("ELB net/")
            for eni in self.interfaces
        )

    def ipv6_internet_route(self, subnet_id: str | None) -> str | None:
        """``igw``, ``eigw`` or None: where the subnet's route table sends ``::/0`` (its own
        table, else the VPC's main table)."""
        vpc = next((s.get("VpcId") for s in self.subnets if s.get("SubnetId") == subnet_id), None)

        def associated(test: Any) -> dict[str, Any] | None:
            return next(
                (
                    t
                    for t in self.route_tables
                    if any(test(t, a) for a in t.get("Associations") or [])
                ),
                None,
            )

        table = associated(lambda _t, a: a.get("SubnetId") == subnet_id) or associated(
            lambda t, a: a.get("Main") and t.get("VpcId") == vpc
        )
        for route in (table or {}).get("Routes") or []:
            if route.get("DestinationIpv6CidrBlock") != "::/0":
                continue
            if route.get("EgressOnlyInternetGatewayId"):
                return "eigw"
            if str(route.get("GatewayId", "")).startswith("igw-"):
                return "igw"
        return None

    def security_group_rules(self) -> dict[str, list[SgRule]]:
        """Per address of an interface whose security groups are all in the context: the
        inbound rules that admit internet addresses (IPv4 and IPv6 ranges, and prefix lists,
        by their entries when known). An address with no such rule maps to an empty list: its
        security groups admit no connection from the internet. Addresses whose groups are not
        all known are absent (nothing can be said)."""
        groups = {
            g["GroupId"]: g for g in self.security_groups if isinstance(g.get("GroupId"), str)
        }
        out: dict[str, list[SgRule]] = {}
        for eni in self.interfaces:
            ids = [g.get("GroupId") for g in eni.get("Groups") or []]
            if not ids or any(i not in groups for i in ids):
                continue
            rules = [r for i in ids for r in _inbound_rules(groups[i], self.prefix_list_entries)]
            for address in [
                *(p.get("PrivateIpAddress") for p in _private_addresses(eni)),
                *_ipv6_addresses(eni),
            ]:
                if address:
                    out.setdefault(address, []).extend(rules)
        return out


def service_role(eni: dict[str, Any]) -> tuple[str, str | None] | None:
    """The role and resource of an AWS-managed interface that matters to the analyses."""
    kind, description = eni.get("InterfaceType"), str(eni.get("Description", ""))
    if kind == "gateway_load_balancer_endpoint":
        return Role.FIREWALL_ENDPOINT, (
            description.rsplit(" ", 1)[-1] if "vpce-" in description else None
        )
    if kind in ("network_load_balancer", "gateway_load_balancer") or description.startswith("ELB "):
        return "load-balancer", description.removeprefix("ELB ") or None
    if kind == "lambda" or description.startswith("AWS Lambda VPC ENI"):
        return "lambda", description.removeprefix("AWS Lambda VPC ENI-") or None
    # A transit gateway attachment's interface forwards other hosts' packets (docs/aws.md §3.7);
    # an interface VPC endpoint answers only from inside the VPC.
    if kind == "transit_gateway" or description.startswith(
        "Network Interface for Transit Gateway Attachment"
    ):
        return "transit-gateway", description.rsplit(" ", 1)[-1] or None
    if kind == "vpc_endpoint":
        return "vpc-endpoint", description.rsplit(" ", 1)[-1] or None
    return None


def ecs_task(eni: dict[str, Any]) -> str | None:
    """The ECS task attachment of a task's own interface (awsvpc network mode, Fargate or not
    attached to an instance): its description is the attachment's ARN."""
    description = str(eni.get("Description", ""))
    if description.startswith("arn:aws:ecs:") and not (eni.get("Attachment") or {}).get(
        "InstanceId"
    ):
        return description.rsplit("/", 1)[-1] or description
    return None


# describe-security-groups IpProtocol: a name or a number; "-1" is every protocol.
SG_PROTOCOLS = {"-1": -1, "tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}


def _nat_of(row: NatAddress | None) -> str | None:
    return row["nat_gateway_id"] if row else None


def _inbound_rules(group: dict[str, Any], prefix_lists: dict[str, list[str]]) -> list[SgRule]:
    """A security group's inbound rules as (protocol, ports, source CIDR) rows. A prefix list
    whose entries are unknown admits anyone, as far as natlens can tell."""
    rows: list[SgRule] = []
    for permission in group.get("IpPermissions") or []:
        name = str(permission.get("IpProtocol", "-1")).lower()
        protocol = SG_PROTOCOLS.get(name, int(name) if name.isdigit() else -1)
        ported = protocol in (6, 17)
        low = permission.get("FromPort") if ported else None
        high = permission.get("ToPort") if ported else None
        if not isinstance(low, int) or low < 0:
            low = 0
        if not isinstance(high, int) or high < 0:
            high = 65535
        sources = [r.get("CidrIp") for r in permission.get("IpRanges") or []]
        sources += [r.get("CidrIpv6") for r in permission.get("Ipv6Ranges") or []]
        for entry in permission.get("PrefixListIds") or []:
            listed = prefix_lists.get(str(entry.get("PrefixListId")))
            sources += listed if listed is not None else ["0.0.0.0/0", "::/0"]
        for source in sources:
            if isinstance(source, str):
                rows.append({
                    "group_id": group.get("GroupId"), "protocol": protocol,
                    "from_port": low, "to_port": high, "source": source,
                })  # fmt: skip
    return rows


def _ipv6_addresses(eni: dict[str, Any]) -> list[str]:
    return [
        a["Ipv6Address"]
        for a in eni.get("Ipv6Addresses") or []
        if isinstance(a, dict) and isinstance(a.get("Ipv6Address"), str)
    ]


def _private_addresses(eni: dict[str, Any]) -> list[dict[str, Any]]:
    """An interface's private addresses (``PrivateIpAddresses``; older shapes give one only)."""
    addresses: list[dict[str, Any]] = eni.get("PrivateIpAddresses") or [
        {"PrivateIpAddress": eni.get("PrivateIpAddress")}
    ]
    return addresses


def is_nat_interface(eni: dict[str, Any]) -> bool:
    # docs/aws.md §4: responses say "nat_gateway"; botocore's enum says "natGateway".
    return eni.get("InterfaceType") in ("nat_gateway", "natGateway") or str(
        eni.get("Description", "")
    ).startswith("Interface for NAT Gateway")


def load_context(directory: str | Path) -> Context:
    """Read every JSON file in ``directory`` (not recursive) that AWS's CLI could have printed."""
    context = Context()
    root = Path(directory)
    if not root.is_dir():
        context.problems.append(
            Problem("unreadable", str(root), None, "not a directory of describe-* JSON", count=0)
        )
        return context
    for path in sorted(root.glob("*.json")):
        try:
            document = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            context.problems.append(Problem("unreadable", str(path), None, str(exc), count=0))
            continue
        except json.JSONDecodeError as exc:
            context.problems.append(Problem(
                "bad-json", str(path), exc.lineno, f"column {exc.colno}: {exc.msg}", count=0
            ))  # fmt: skip
            continue
        if not isinstance(document, dict):
            message = "expected a JSON object as the AWS CLI prints"
            context.problems.append(Problem("bad-json", str(path), None, message, count=0))
            continue
        odd: list[str] = []
        document = _shaped(document, odd)
        if odd:
            message = (
                f"{len(odd)} value(s) not of the shape the AWS CLI prints were left out "
                f"(first: {odd[0]})"
            )
            context.problems.append(Problem("bad-json", str(path), None, message, count=0))
        used = False
        for key, attribute in KINDS.items():
            items = document.get(key)
            if isinstance(items, list):
                getattr(context, attribute).extend(i for i in items if isinstance(i, dict))
                used = True
        if isinstance(document.get("Firewall"), dict):
            context.firewalls.append(document)
            used = True
        if isinstance(document.get("Entries"), list):
            used = _prefix_list_entries(context, path, document) or used
        if used:
            context.files.append(str(path))
    _dedupe(context)
    return context


def _network(value: object) -> str | None:
    """A CIDR from the context in its standard text, or None when it is not one: the VPC's
    CIDRs go into queries natlens runs and prints (Logs Insights), so they are checked here."""
    if not isinstance(value, str) or "%" in value:
        return None
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        return None


# The shapes of the AWS CLI's output that natlens reads. A file is hostile like the logs: a
# value of another shape is left out (and reported) rather than met later as a crash.
_LISTS_OF_OBJECTS = frozenset({
    "CidrBlockAssociationSet", "Ipv6CidrBlockAssociationSet", "NatGatewayAddresses",
    "Associations", "Routes", "Groups", "IpPermissions", "IpPermissionsEgress", "IpRanges",
    "Ipv6Ranges", "PrefixListIds", "Ipv6Addresses", "Entries", "PrivateIpAddresses",
    "Attachments", "Tags", "Instances", "SubnetMappings", "Reservations",
})  # fmt: skip
_OBJECTS = frozenset({
    "Attachment", "Association", "AssociationState", "Ipv6CidrBlockState", "CidrBlockState",
    "PortRange", "IcmpTypeCode", "SyncStates", "FirewallStatus", "Firewall",
})  # fmt: skip
_LISTS_OF_TEXT = frozenset({"SubnetIds", "RouteTableIds", "NetworkInterfaceIds"})
_INTEGERS = frozenset({"FromPort", "ToPort", "RuleNumber", "From", "To", "Code", "Type"})
_BOOLEANS = frozenset({"Main", "IsDefault", "Egress", "Primary", "IsPrimary"})
_TEXT_ENDINGS = ("Id", "Ip", "Cidr", "CidrIp", "CidrIpv6", "CidrBlock", "Address", "Zone",
                 "Arn", "InterfaceType", "VpcEndpointType", "FirewallName")  # fmt: skip


def _shaped(value: Any, odd: list[str], key: str = "") -> Any:
    """``value`` with every member of an unexpected shape left out; their keys go to ``odd``."""
    if isinstance(value, list):
        return [_shaped(item, odd, key) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, item in value.items():
        if name in _LISTS_OF_OBJECTS:
            if not isinstance(item, list):
                odd.append(name)
                continue
            kept = [i for i in item if isinstance(i, dict)]
            if len(kept) < len(item):
                odd.append(name)
            out[name] = [_shaped(i, odd, name) for i in kept]
        elif name in _OBJECTS:
            if isinstance(item, dict):
                out[name] = _shaped(item, odd, name)
            else:
                odd.append(name)
        elif name in _LISTS_OF_TEXT:
            if isinstance(item, list) and all(isinstance(i, str) for i in item):
                out[name] = item
            else:
                odd.append(name)
        elif name in _INTEGERS and key in ("PortRange", "IcmpTypeCode", "IpPermissions", "Entries"):
            if isinstance(item, int) and not isinstance(item, bool):
                out[name] = item
            else:
                odd.append(name)
        elif name in _BOOLEANS:
            if isinstance(item, bool):
                out[name] = item
            else:
                odd.append(name)
        elif name.endswith(_TEXT_ENDINGS) and not isinstance(item, str):
            odd.append(name)
        else:
            out[name] = _shaped(item, odd, name)
    return out


def _prefix_list_entries(context: Context, path: Path, document: dict[str, Any]) -> bool:
    """``get-managed-prefix-list-entries`` prints only ``Entries``: the list's id comes from a
    ``PrefixListId`` key natlens adds when it collects, or else from the file's name."""
    identity = document.get("PrefixListId")
    if not isinstance(identity, str):
        found = PREFIX_LIST_ID.search(path.name)
        if not found:
            message = "prefix list entries without a prefix list id: put pl-... in the file name"
            context.problems.append(Problem("bad-json", str(path), None, message, count=0))
            return False
        identity = found.group(0)
    entries = [e for e in document["Entries"] if isinstance(e, dict)]
    known = context.prefix_list_entries.setdefault(identity, [])
    known += [
        e["Cidr"] for e in entries if isinstance(e.get("Cidr"), str) and e["Cidr"] not in known
    ]
    return True


def _dedupe(context: Context) -> None:
    """Pages of one call, or the same file saved twice: keep each resource once."""
    ids = {
        "vpcs": "VpcId", "subnets": "SubnetId", "route_tables": "RouteTableId",
        "nat_gateways": "NatGatewayId", "interfaces": "NetworkInterfaceId",
        "network_acls": "NetworkAclId", "internet_gateways": "InternetGatewayId",
        "reservations": "ReservationId", "flow_logs": "FlowLogId",
        "vpc_endpoints": "VpcEndpointId", "prefix_lists": "PrefixListId",
        "security_groups": "GroupId",
    }  # fmt: skip
    for attribute, key in ids.items():
        seen: set[str] = set()
        unique = []
        for item in getattr(context, attribute):
            identity = item.get(key)
            if identity is not None and identity in seen:
                continue
            if identity is not None:
                seen.add(identity)
            unique.append(item)
        setattr(context, attribute, unique)
