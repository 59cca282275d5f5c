"""The VPC model from what ``aws ec2 describe-*`` and ``aws network-firewall describe-firewall``
print (aws-facts §4, §7, §9): the context every analysis can use.

Files are recognised by their content (the top-level key: ``Vpcs``, ``Subnets``, ``RouteTables``,
``NatGateways``, ``NetworkInterfaces``, ``NetworkAcls``, ``InternetGateways``, ``Reservations``,
``FlowLogs``, ``VpcEndpoints``, ``PrefixLists``, ``Firewall``, and ``Entries`` of
``get-managed-prefix-list-entries`` with the list's id in the file name), not their names,
so a directory filled by hand with the AWS CLI's own output works; several pages of one call
are merged. A missing file narrows what can be said; a
damaged one is reported and the rest is still read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from natlens.accounting import Problem

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
}
PREFIX_LIST_ID = re.compile(r"pl-[0-9a-f]+")


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
    # get-managed-prefix-list-entries: prefix list id -> its CIDRs
    prefix_list_entries: dict[str, list[str]] = field(default_factory=dict)
    firewalls: list[dict[str, Any]] = field(default_factory=list)  # describe-firewall outputs
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    # -- what the analyses ask -----------------------------------------------------------------

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
            for cidr in [vpc.get("CidrBlock"), *blocks]:
                if cidr and cidr not in cidrs:
                    cidrs.append(cidr)
        return cidrs

    def nat_gateway_addresses(self) -> list[dict[str, Any]]:
        """One row per NAT gateway address: id, ENI, private and public IP, subnet, AZ, state."""
        azs = {s["SubnetId"]: s.get("AvailabilityZone") for s in self.subnets if "SubnetId" in s}
        rows = []
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
        # (aws-facts §4: InterfaceType nat_gateway, Description "Interface for NAT Gateway nat-…").
        known = {r["interface_id"] for r in rows}
        for eni in self.interfaces:
            if eni.get("NetworkInterfaceId") in known or not _is_nat_interface(eni):
                continue
            description = eni.get("Description", "")
            nat_id = (
                description.rsplit(" ", 1)[-1]
                if description.startswith("Interface for NAT")
                else None
            )
            for private in _private_addresses(eni):
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

    def instance_interfaces(self) -> list[dict[str, Any]]:
        """One row per private IP of an instance's interface: ENI, instance, subnet, public IP."""
        rows = []
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

    def firewall_endpoints(self) -> list[dict[str, Any]]:
        """Per firewall and AZ: the endpoint id, its subnet and status, and the firewall's VPC
        and status (FirewallStatus.SyncStates)."""
        rows = []
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

    def address_roles(self) -> list[dict[str, Any]]:
        """What each private address in the context is, for the analyses: ``nat-gateway``,
        ``firewall-endpoint`` (a Gateway Load Balancer endpoint's interface, which Network
        Firewall uses), ``load-balancer``, ``lambda``, ``instance`` (no public IP: the internet
        cannot open connections to it directly) or ``public-instance``, with the resource and
        the interface holding the address. One row per address, the first role found wins."""
        rows: dict[str, dict[str, Any]] = {}

        def add(address: str | None, role: str, resource: str | None, eni: str | None) -> None:
            if address and address not in rows:
                rows[address] = {
                    "address": address, "role": role, "resource_id": resource,
                    "interface_id": eni,
                }  # fmt: skip

        for nat in self.nat_gateway_addresses():
            add(nat["private_ip"], "nat-gateway", nat["nat_gateway_id"], nat["interface_id"])
        for eni in self.interfaces:
            found = service_role(eni)
            if found:
                for private in _private_addresses(eni):
                    add(private.get("PrivateIpAddress"), *found, eni.get("NetworkInterfaceId"))
        for item in self.instance_interfaces():
            role = "public-instance" if item["public_ip"] else "instance"
            add(item["private_ip"], role, item["instance_id"], item["interface_id"])
        return list(rows.values())


def service_role(eni: dict[str, Any]) -> tuple[str, str | None] | None:
    """The role and resource of an AWS-managed interface that matters to the analyses."""
    kind, description = eni.get("InterfaceType"), str(eni.get("Description", ""))
    if kind == "gateway_load_balancer_endpoint":
        return "firewall-endpoint", (
            description.rsplit(" ", 1)[-1] if "vpce-" in description else None
        )
    if kind in ("network_load_balancer", "gateway_load_balancer") or description.startswith("ELB "):
        return "load-balancer", description.removeprefix("ELB ") or None
    if kind == "lambda" or description.startswith("AWS Lambda VPC ENI"):
        return "lambda", description.removeprefix("AWS Lambda VPC ENI-") or None
    return None


def _private_addresses(eni: dict[str, Any]) -> list[dict[str, Any]]:
    """An interface's private addresses (``PrivateIpAddresses``; older shapes give one only)."""
    addresses: list[dict[str, Any]] = eni.get("PrivateIpAddresses") or [
        {"PrivateIpAddress": eni.get("PrivateIpAddress")}
    ]
    return addresses


def _is_nat_interface(eni: dict[str, Any]) -> bool:
    # aws-facts §4: responses say "nat_gateway"; botocore's enum says "natGateway".
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
