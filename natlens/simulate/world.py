"""The simulated VPC: subnets, instances, NAT gateways, a firewall, and the AWS CLI JSON for them.

Everything is derived from the scenario and the seed, so the same seed gives the same ids and
addresses. The describe-* output follows the shapes in docs/aws.md §4, §7 and §9.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

import numpy as np

ACCOUNT = "123456789012"
REGION = "us-east-1"
AZS = (("us-east-1a", "use1-az1"), ("us-east-1b", "use1-az2"), ("us-east-1c", "use1-az4"))
VPC_CIDR = "10.0.0.0/16"
# The VPC's Amazon-provided IPv6 block (aws-shapes), and its subnets' /64s.
VPC_IPV6_CIDR = "2600:1f18:4a3:6c00::/56"
# The NAT gateways' Elastic IPs and the exposed instances' public IPs (documentation ranges are
# not routable from the internet, so these are ordinary-looking public addresses).
NAT_PUBLIC_BASE = "54.210.10.0"
INSTANCE_PUBLIC_BASE = "3.84.20.0"


@dataclass(frozen=True)
class Subnet:
    id: str
    cidr: str
    az: str
    az_id: str
    role: str  # "private", "public", "firewall"


@dataclass(frozen=True)
class Interface:
    id: str
    subnet: Subnet
    private_ip: str
    kind: str  # "instance", "nat_gateway", "firewall_endpoint", "load_balancer"
    instance_id: str | None = None
    public_ip: str | None = None
    owner: str = ""  # the NAT gateway, endpoint or load balancer it belongs to
    ipv6: str | None = None


@dataclass(frozen=True)
class Instance:
    id: str
    eni: Interface
    exposed: bool = False  # in a public subnet with a public IP, reachable from the internet
    serves: bool = True  # an exposed instance whose security groups admit internet clients
    nlb_target: bool = False  # a private instance behind a network load balancer


@dataclass(frozen=True)
class LoadBalancer:
    """One interface of an internet-facing load balancer (aws-shapes)."""

    name: str  # what its interface's description names: net/NAME/ID or app/NAME/ID
    eni: Interface
    preserves_client_ip: bool  # network: targets see the client's address; application: its own
    target: int  # index into World.instances


@dataclass(frozen=True)
class NatGateway:
    id: str
    eni: Interface
    public_ip: str
    allocation_id: str
    association_id: str


@dataclass(frozen=True)
class FirewallEndpoint:
    id: str  # vpce-...
    eni: Interface


@dataclass
class World:
    vpc_id: str
    igw_id: str
    subnets: list[Subnet]
    instances: list[Instance]
    nats: list[NatGateway]
    firewall_placement: str | None  # "after-nat", "before-nat" or None
    firewall_name: str | None
    endpoints: list[FirewallEndpoint]
    ids: dict[str, str] = field(default_factory=dict)
    load_balancers: list[LoadBalancer] = field(default_factory=list)
    eigw_id: str | None = None  # an egress-only internet gateway: the VPC has IPv6

    @property
    def ipv6(self) -> bool:
        return self.eigw_id is not None

    @property
    def azs(self) -> list[str]:
        return sorted({s.az for s in self.subnets})

    def nat_in(self, az: str) -> NatGateway:
        return next(n for n in self.nats if n.eni.subnet.az == az)

    def endpoint_in(self, az: str) -> FirewallEndpoint | None:
        return next((e for e in self.endpoints if e.eni.subnet.az == az), None)

    def interfaces(self) -> list[Interface]:
        return (
            [i.eni for i in self.instances]
            + [n.eni for n in self.nats]
            + [e.eni for e in self.endpoints]
            + [b.eni for b in self.load_balancers]
        )


class _Ids:
    """AWS-looking ids: a prefix and 17 hex digits, drawn from the seed."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.seen: set[str] = set()

    def __call__(self, prefix: str, digits: int = 17) -> str:
        while True:
            value = f"{prefix}-" + "".join(self.rng.choice(list("0123456789abcdef"), digits))
            if value not in self.seen:
                self.seen.add(value)
                return value


def build_world(
    rng: np.random.Generator,
    azs: int,
    instances_per_az: int,
    firewall: str | None,
    exposed_instances: int,
    families: bool = False,
) -> World:
    ids = _Ids(rng)
    vpc_id, igw_id = ids("vpc"), ids("igw")
    subnets: list[Subnet] = []
    instances: list[Instance] = []
    nats: list[NatGateway] = []
    endpoints: list[FirewallEndpoint] = []
    nat_public = ipaddress.ip_address(NAT_PUBLIC_BASE)
    public_base = ipaddress.ip_address(INSTANCE_PUBLIC_BASE)
    for index, (az, az_id) in enumerate(AZS[:azs]):
        public = Subnet(ids("subnet"), f"10.0.{index}.0/24", az, az_id, "public")
        private = Subnet(ids("subnet"), f"10.0.{16 * (index + 1)}.0/20", az, az_id, "private")
        subnets += [public, private]
        nat_id = ids("nat")
        nat_eni = Interface(
            ids("eni"), public, f"10.0.{index}.{100 + index}", "nat_gateway", owner=nat_id
        )
        nats.append(
            NatGateway(
                nat_id, nat_eni, str(nat_public + 10 + index), ids("eipalloc"), ids("eipassoc")
            )
        )
        for k in range(instances_per_az):
            eni = Interface(
                ids("eni"),
                private,
                f"10.0.{16 * (index + 1)}.{10 + 7 * k}",
                "instance",
                instance_id=ids("i"),
            )
            instances.append(Instance(str(eni.instance_id), eni))
        if firewall:
            fw_subnet = Subnet(ids("subnet"), f"10.0.{200 + index}.0/28", az, az_id, "firewall")
            subnets.append(fw_subnet)
            endpoint_id = ids("vpce")
            eni = Interface(
                ids("eni"),
                fw_subnet,
                f"10.0.{200 + index}.{5 + index}",
                "firewall_endpoint",
                owner=endpoint_id,
            )
            endpoints.append(FirewallEndpoint(endpoint_id, eni))
    public_subnets = [s for s in subnets if s.role == "public"]
    for k in range(exposed_instances):
        subnet = public_subnets[k % len(public_subnets)]
        base = subnet.cidr.split(".")[2]
        eni = Interface(
            ids("eni"),
            subnet,
            f"10.0.{base}.{40 + k}",
            "instance",
            instance_id=ids("i"),
            public_ip=str(public_base + 15 + k),
        )
        instances.append(Instance(str(eni.instance_id), eni, exposed=True))
    world = World(
        vpc_id,
        igw_id,
        subnets,
        instances,
        nats,
        firewall,
        "egress-firewall" if firewall else None,
        endpoints,
    )
    world.ids = {
        "flow_log": ids("fl"),
        "nacl_default": ids("acl"),
        "nacl_public": ids("acl"),
        "dopt": ids("dopt"),
        "rtb_main": ids("rtb"),
        "rtb_public": ids("rtb"),
        "rtb_edge": ids("rtb"),
        **{f"rtb_private_{az}": ids("rtb") for az in world.azs},
        **{f"rtb_nat_{az}": ids("rtb") for az in world.azs},
        **{f"rtb_firewall_{az}": ids("rtb") for az in world.azs},
        **{f"assoc_{s.id}": ids("rtbassoc") for s in subnets},
    }
    if families:
        _add_families(world, ids)
    return world


def _add_families(world: World, ids: _Ids) -> None:
    """What the shape families need, drawn after everything else so that the other scenarios
    keep their ids: an instance with a public IP that only goes out; a network load balancer
    (client IP preservation) and an application load balancer in the first public subnet, each
    in front of a private instance; IPv6 for the VPC, an egress-only internet gateway for the
    private subnets, IPv6 addresses for the exposed instance and two private ones."""
    public = [s for s in world.subnets if s.role == "public"]
    base = public[0].cidr.split(".")[2]
    eni = Interface(
        ids("eni"),
        public[0],
        f"10.0.{base}.60",
        "instance",
        instance_id=ids("i"),
        public_ip=str(ipaddress.ip_address(INSTANCE_PUBLIC_BASE) + 60),
    )
    world.instances.append(Instance(str(eni.instance_id), eni, exposed=True, serves=False))
    private = [k for k, i in enumerate(world.instances) if not i.exposed]
    nlb_target, alb_target = private[0], private[1]
    world.instances[nlb_target] = replace(world.instances[nlb_target], nlb_target=True)
    for kind, address, target in (("net", 70, nlb_target), ("app", 71, alb_target)):
        name = f"{kind}/web-{kind}lb/" + ids("x", 16)[2:]
        lb_eni = Interface(
            ids("eni"),
            public[0],
            f"10.0.{base}.{address}",
            "load_balancer",
            public_ip=str(ipaddress.ip_address(INSTANCE_PUBLIC_BASE) + address),
            owner=name,
        )
        world.load_balancers.append(LoadBalancer(name, lb_eni, kind == "net", target))
    world.eigw_id = ids("eigw")
    prefix = VPC_IPV6_CIDR.split("::")[0][:-2]  # 2600:1f18:4a3:6c
    for k, instance in enumerate(world.instances):
        subnet_number = world.subnets.index(instance.eni.subnet)
        if (instance.exposed and instance.serves) or k in private[-2:]:
            v6 = f"{prefix}{subnet_number:02x}::{0x1000 + k:x}"
            world.instances[k] = replace(instance, eni=replace(instance.eni, ipv6=v6))


def subnet_ipv6_cidr(world: World, subnet: Subnet) -> str | None:
    if not world.ipv6:
        return None
    prefix = VPC_IPV6_CIDR.split("::")[0][:-2]
    return f"{prefix}{world.subnets.index(subnet):02x}::/64"
