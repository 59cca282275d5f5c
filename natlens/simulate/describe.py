"""The simulated world as the AWS CLI prints it: describe-* JSON for the context directory."""

from __future__ import annotations

from typing import Any

from natlens.simulate.world import (
    ACCOUNT,
    REGION,
    VPC_CIDR,
    VPC_IPV6_CIDR,
    Instance,
    Interface,
    NatGateway,
    Subnet,
    World,
    subnet_ipv6_cidr,
)


def describe(world: World) -> dict[str, Any]:
    """File name -> the JSON ``aws ec2 describe-*`` (and ``network-firewall describe-firewall``)
    print for this world."""
    files: dict[str, Any] = {
        "describe-vpcs.json": {"Vpcs": [_vpc(world)]},
        "describe-subnets.json": {"Subnets": [_subnet(world, s) for s in world.subnets]},
        "describe-route-tables.json": {"RouteTables": _route_tables(world)},
        "describe-nat-gateways.json": {"NatGateways": [_nat(world, n) for n in world.nats]},
        "describe-network-interfaces.json": {
            "NetworkInterfaces": [_eni(world, i) for i in world.interfaces()]
        },
        "describe-network-acls.json": {"NetworkAcls": _nacls(world)},
        "describe-internet-gateways.json": {
            "InternetGateways": [
                {
                    "Attachments": [{"State": "available", "VpcId": world.vpc_id}],
                    "InternetGatewayId": world.igw_id,
                    "OwnerId": ACCOUNT,
                    "Tags": [{"Key": "Name", "Value": "main-igw"}],
                }
            ]
        },
        "describe-instances.json": {
            "Reservations": [_reservation(world, i) for i in world.instances]
        },
        "describe-security-groups.json": {"SecurityGroups": _security_groups(world)},
    }
    if world.firewall_name:
        files["describe-firewall.json"] = _firewall(world)
    if world.eigw_id:
        files["describe-egress-only-internet-gateways.json"] = {
            "EgressOnlyInternetGateways": [
                {
                    "Attachments": [{"State": "attached", "VpcId": world.vpc_id}],
                    "EgressOnlyInternetGatewayId": world.eigw_id,
                    "Tags": _tags("ipv6-egress"),
                }
            ]
        }
    return files


def _tags(name: str) -> list[dict[str, str]]:
    return [{"Key": "Name", "Value": name}]


def _vpc(world: World) -> dict[str, Any]:
    return {
        "CidrBlock": VPC_CIDR,
        "DhcpOptionsId": world.ids["dopt"],
        "State": "available",
        "VpcId": world.vpc_id,
        "OwnerId": ACCOUNT,
        "InstanceTenancy": "default",
        "CidrBlockAssociationSet": [
            {
                "AssociationId": "vpc-cidr-assoc-" + world.vpc_id[4:],
                "CidrBlock": VPC_CIDR,
                "CidrBlockState": {"State": "associated"},
            }
        ],
        "IsDefault": False,
        "Tags": _tags("natlens-simulated"),
        **(
            {
                "Ipv6CidrBlockAssociationSet": [
                    {
                        "AssociationId": "vpc-cidr-assoc-6" + world.vpc_id[5:],
                        "Ipv6CidrBlock": VPC_IPV6_CIDR,
                        "Ipv6CidrBlockState": {"State": "associated"},
                        "NetworkBorderGroup": REGION,
                        "Ipv6Pool": "Amazon",
                    }
                ]
            }
            if world.ipv6
            else {}
        ),
    }


def _subnet(world: World, subnet: Subnet) -> dict[str, Any]:
    return {
        "AvailabilityZone": subnet.az,
        "AvailabilityZoneId": subnet.az_id,
        "AvailableIpAddressCount": 250,
        "CidrBlock": subnet.cidr,
        "DefaultForAz": False,
        "MapPublicIpOnLaunch": subnet.role == "public",
        "State": "available",
        "SubnetId": subnet.id,
        "VpcId": world.vpc_id,
        "OwnerId": ACCOUNT,
        "AssignIpv6AddressOnCreation": False,
        "Ipv6CidrBlockAssociationSet": [
            {
                "AssociationId": "subnet-cidr-assoc-" + subnet.id[7:],
                "Ipv6CidrBlock": cidr,
                "Ipv6CidrBlockState": {"State": "associated"},
            }
            for cidr in [subnet_ipv6_cidr(world, subnet)]
            if cidr
        ],
        "SubnetArn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{subnet.id}",
        "Tags": _tags(f"{subnet.role}-{subnet.az}"),
    }


def _route(destination: str, **target: str) -> dict[str, str]:
    return {
        "DestinationCidrBlock": destination,
        **target,
        "Origin": "CreateRoute",
        "State": "active",
    }


def _local() -> dict[str, str]:
    return {
        "DestinationCidrBlock": VPC_CIDR,
        "GatewayId": "local",
        "Origin": "CreateRouteTable",
        "State": "active",
    }


def _ipv6_routes(world: World, key: str) -> list[dict[str, str]]:
    """With IPv6 (aws-shapes): the local route for the VPC's block; ::/0 to the internet gateway
    from the public subnets, to the egress-only internet gateway from the private ones."""
    if not world.ipv6 or key == "rtb_main":
        return []
    local = {"DestinationIpv6CidrBlock": VPC_IPV6_CIDR, "GatewayId": "local",
             "Origin": "CreateRouteTable", "State": "active"}  # fmt: skip
    if key.startswith("rtb_private"):
        target = {"EgressOnlyInternetGatewayId": str(world.eigw_id)}
    else:
        target = {"GatewayId": world.igw_id}
    default = {"DestinationIpv6CidrBlock": "::/0", **target, "Origin": "CreateRoute",
               "State": "active"}  # fmt: skip
    return [local, default]


def _table(
    world: World,
    key: str,
    name: str,
    routes: list[dict[str, str]],
    subnets: tuple[Subnet, ...] | list[Subnet] = (),
    gateway: str | None = None,
    main: bool = False,
) -> dict[str, Any]:
    rtb = world.ids[key]
    associations: list[dict[str, Any]] = []
    if main:
        associations.append(
            {
                "Main": True,
                "RouteTableAssociationId": world.ids[key].replace("rtb", "rtbassoc"),
                "RouteTableId": rtb,
                "AssociationState": {"State": "associated"},
            }
        )
    for subnet in subnets:
        associations.append(
            {
                "Main": False,
                "RouteTableAssociationId": world.ids[f"assoc_{subnet.id}"],
                "RouteTableId": rtb,
                "SubnetId": subnet.id,
                "AssociationState": {"State": "associated"},
            }
        )
    if gateway:
        associations.append(
            {
                "Main": False,
                "RouteTableAssociationId": rtb.replace("rtb", "rtbassoc") + "e",
                "RouteTableId": rtb,
                "GatewayId": gateway,
                "AssociationState": {"State": "associated"},
            }
        )
    return {
        "Associations": associations,
        "PropagatingVgws": [],
        "RouteTableId": rtb,
        "Routes": [_local(), *_ipv6_routes(world, key), *routes],
        "Tags": _tags(name),
        "VpcId": world.vpc_id,
        "OwnerId": ACCOUNT,
    }


def _route_tables(world: World) -> list[dict[str, Any]]:
    """The layouts of docs/aws.md §7: no firewall, firewall after the NAT gateway (a), or before
    it (b). Each AZ routes to its own NAT gateway and firewall endpoint."""
    tables = [_table(world, "rtb_main", "main", [], main=True)]
    public = [s for s in world.subnets if s.role == "public"]
    placement = world.firewall_placement
    for az in world.azs:
        nat = world.nat_in(az)
        endpoint = world.endpoint_in(az)
        private = [s for s in world.subnets if s.role == "private" and s.az == az]
        nat_subnet = nat.eni.subnet
        if placement == "before-nat" and endpoint:
            tables.append(
                _table(
                    world,
                    f"rtb_private_{az}",
                    f"private-{az}",
                    [_route("0.0.0.0/0", GatewayId=endpoint.id)],
                    private,
                )
            )
            tables.append(
                _table(
                    world,
                    f"rtb_firewall_{az}",
                    f"firewall-{az}",
                    [_route("0.0.0.0/0", NatGatewayId=nat.id)],
                    [endpoint.eni.subnet],
                )
            )
            returns = [_route(s.cidr, GatewayId=endpoint.id) for s in private]
            exposed = [s for s in public if s.az == az and s != nat_subnet]
            tables.append(
                _table(
                    world,
                    f"rtb_nat_{az}",
                    f"nat-{az}",
                    [_route("0.0.0.0/0", GatewayId=world.igw_id), *returns],
                    [nat_subnet, *exposed],
                )
            )
            continue
        tables.append(
            _table(
                world,
                f"rtb_private_{az}",
                f"private-{az}",
                [_route("0.0.0.0/0", NatGatewayId=nat.id)],
                private,
            )
        )
        if placement == "after-nat" and endpoint:
            tables.append(
                _table(
                    world,
                    f"rtb_nat_{az}",
                    f"nat-{az}",
                    [_route("0.0.0.0/0", GatewayId=endpoint.id)],
                    [nat_subnet],
                )
            )
            tables.append(
                _table(
                    world,
                    f"rtb_firewall_{az}",
                    f"firewall-{az}",
                    [_route("0.0.0.0/0", GatewayId=world.igw_id)],
                    [endpoint.eni.subnet],
                )
            )
    if placement == "after-nat":
        edge = [
            _route(n.eni.subnet.cidr, GatewayId=world.endpoint_in(n.eni.subnet.az).id)  # type: ignore[union-attr]
            for n in world.nats
        ]
        tables.append(_table(world, "rtb_edge", "igw-edge", edge, gateway=world.igw_id))
    if placement != "before-nat":
        with_nat_route = {
            s.id
            for t in tables
            for s in world.subnets
            if any(a.get("SubnetId") == s.id for a in t["Associations"])
        }
        plain_public = [s for s in public if s.id not in with_nat_route]
        tables.append(
            _table(
                world,
                "rtb_public",
                "public",
                [_route("0.0.0.0/0", GatewayId=world.igw_id)],
                plain_public,
            )
        )
    return tables


def _nat(world: World, nat: NatGateway) -> dict[str, Any]:
    return {
        "CreateTime": "2024-05-01T09:00:00.000Z",
        "NatGatewayAddresses": [
            {
                "AllocationId": nat.allocation_id,
                "NetworkInterfaceId": nat.eni.id,
                "PrivateIp": nat.eni.private_ip,
                "PublicIp": nat.public_ip,
                "AssociationId": nat.association_id,
                "IsPrimary": True,
                "Status": "succeeded",
            }
        ],
        "NatGatewayId": nat.id,
        "State": "available",
        "SubnetId": nat.eni.subnet.id,
        "VpcId": world.vpc_id,
        "Tags": _tags(f"nat-{nat.eni.subnet.az}"),
        "ConnectivityType": "public",
    }


def _eni(world: World, eni: Interface) -> dict[str, Any]:
    # docs/aws.md §4, §9: NAT gateway ENIs are requester-managed, type nat_gateway.
    interface_type = {
        "instance": "interface",
        "nat_gateway": "nat_gateway",
        "firewall_endpoint": "gateway_load_balancer_endpoint",
        # docs/aws.md §9: a network load balancer's interfaces have their own type; an
        # application load balancer's are plain interfaces named "ELB app/...".
        "load_balancer": "network_load_balancer" if eni.owner.startswith("net/") else "interface",
    }[eni.kind]
    description = {
        "instance": "Primary network interface",
        "nat_gateway": f"Interface for NAT Gateway {eni.owner}",
        "firewall_endpoint": f"VPC Endpoint Interface {eni.owner}",
        "load_balancer": f"ELB {eni.owner}",
    }[eni.kind]
    item: dict[str, Any] = {
        "AvailabilityZone": eni.subnet.az,
        "AvailabilityZoneId": eni.subnet.az_id,
        "Description": description,
        "Groups": _groups(world, eni),
        "InterfaceType": interface_type,
        "Ipv6Addresses": [{"Ipv6Address": eni.ipv6, "IsPrimaryIpv6": False}] if eni.ipv6 else [],
        "MacAddress": "02:00:00:00:00:00",
        "NetworkInterfaceId": eni.id,
        "OwnerId": ACCOUNT,
        "PrivateIpAddress": eni.private_ip,
        "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": eni.private_ip}],
        "RequesterManaged": eni.kind != "instance",
        "SourceDestCheck": eni.kind == "instance",
        "Status": "in-use",
        "SubnetId": eni.subnet.id,
        "TagSet": [],
        "VpcId": world.vpc_id,
    }
    if eni.kind == "instance":
        item["Attachment"] = {
            "AttachmentId": "eni-attach-" + eni.id[4:],
            "DeviceIndex": 0,
            "InstanceId": eni.instance_id,
            "InstanceOwnerId": ACCOUNT,
            "Status": "attached",
        }
    elif eni.kind == "nat_gateway":
        item["RequesterId"] = "036872051663"
        item["Attachment"] = {
            "AttachmentId": "ela-attach-" + eni.id[4:],
            "DeviceIndex": 1,
            "InstanceOwnerId": "amazon-aws",
            "Status": "attached",
        }
    public_ip = eni.public_ip or next((n.public_ip for n in world.nats if n.eni.id == eni.id), None)
    if public_ip:
        item["Association"] = {
            "IpOwnerId": {"instance": "amazon", "load_balancer": "amazon-elb"}.get(
                eni.kind, ACCOUNT
            ),
            "PublicIp": public_ip,
        }
        item["PrivateIpAddresses"][0]["Association"] = item["Association"]
    return item


def _nacls(world: World) -> list[dict[str, Any]]:
    """The default network ACL allows everything, both ways: internet packets to the NAT
    gateway are logged ACCEPT (docs/aws.md §5.1). The public subnets' ACL denies telnet."""

    def entries(deny_telnet: bool) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        for egress in (False, True):
            if world.ipv6:
                # AWS: with IPv6 the ACL has the same rules for ::/0 (101, and the final deny)
                rules += [
                    {"Egress": egress, "Ipv6CidrBlock": "::/0", "Protocol": "-1",
                     "RuleAction": action, "RuleNumber": number}
                    for number, action in ((101, "allow"), (32768, "deny"))
                ]  # fmt: skip
            if deny_telnet and not egress:
                rules.append(
                    {
                        "CidrBlock": "0.0.0.0/0",
                        "Egress": False,
                        "PortRange": {"From": 23, "To": 23},
                        "Protocol": "6",
                        "RuleAction": "deny",
                        "RuleNumber": 90,
                    }
                )
            rules.append(
                {
                    "CidrBlock": "0.0.0.0/0",
                    "Egress": egress,
                    "Protocol": "-1",
                    "RuleAction": "allow",
                    "RuleNumber": 100,
                }
            )
            rules.append(
                {
                    "CidrBlock": "0.0.0.0/0",
                    "Egress": egress,
                    "Protocol": "-1",
                    "RuleAction": "deny",
                    "RuleNumber": 32767,
                }
            )
        return rules

    public = [s for s in world.subnets if s.role == "public"]
    others = [s for s in world.subnets if s.role != "public"]

    def acl(key: str, default: bool, subnets: list[Subnet], deny_telnet: bool) -> dict[str, Any]:
        return {
            "Associations": [
                {
                    "NetworkAclAssociationId": "aclassoc-" + s.id[7:],
                    "NetworkAclId": world.ids[key],
                    "SubnetId": s.id,
                }
                for s in subnets
            ],
            "Entries": entries(deny_telnet),
            "IsDefault": default,
            "NetworkAclId": world.ids[key],
            "Tags": _tags("default" if default else "public"),
            "VpcId": world.vpc_id,
            "OwnerId": ACCOUNT,
        }

    return [acl("nacl_default", True, others, False), acl("nacl_public", False, public, True)]


# Every instance is in "app", which admits only the VPC; an instance with a public IP is also in
# "public-web", which admits SSH and HTTPS from anywhere: what its clients reach.
APP_GROUP = "sg-0a1b2c3d4e5f60789"
WEB_GROUP = "sg-0f1e2d3c4b5a69780"
# aws-shapes: the exposed instance's extra services, the network load balancer's target (with
# client IP preservation its group must admit the clients themselves) and the application load
# balancer's listener.
SERVICES_GROUP = "sg-0c3d4e5f6a7b8c901"
NLB_TARGET_GROUP = "sg-0d4e5f6a7b8c9d012"
ALB_GROUP = "sg-0e5f6a7b8c9d0e123"


def _groups(world: World, eni: Interface) -> list[dict[str, str]]:
    if eni.kind == "load_balancer":
        return [] if eni.owner.startswith("net/") else [{"GroupName": "alb", "GroupId": ALB_GROUP}]
    if eni.kind != "instance":
        return []
    instance = next(i for i in world.instances if i.eni.id == eni.id)
    groups = [{"GroupName": "app", "GroupId": APP_GROUP}]
    if eni.public_ip and instance.serves:
        groups.append({"GroupName": "public-web", "GroupId": WEB_GROUP})
        if world.load_balancers:
            groups.append({"GroupName": "public-services", "GroupId": SERVICES_GROUP})
    if instance.nlb_target:
        groups.append({"GroupName": "nlb-targets", "GroupId": NLB_TARGET_GROUP})
    return groups


def _security_groups(world: World) -> list[dict[str, Any]]:
    def rule(protocol: str, low: int, high: int, cidr: str) -> dict[str, Any]:
        v6 = ":" in cidr
        item: dict[str, Any] = {
            "IpProtocol": protocol,
            "IpRanges": [] if v6 else [{"CidrIp": cidr}],
            "Ipv6Ranges": [{"CidrIpv6": cidr}] if v6 else [],
            "PrefixListIds": [],
            "UserIdGroupPairs": [],
        }
        if protocol != "-1":
            item |= {"FromPort": low, "ToPort": high}
        return item

    everywhere = [rule("-1", 0, 0, "0.0.0.0/0")]
    web = [rule("tcp", 22, 22, "0.0.0.0/0"), rule("tcp", 443, 443, "0.0.0.0/0")]
    if world.ipv6:
        web += [rule("tcp", 22, 22, "::/0"), rule("tcp", 443, 443, "::/0")]
    extra: list[dict[str, Any]] = []
    if world.load_balancers:

        def group(group_id: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
            return {"GroupId": group_id, "GroupName": name, "Description": name,
                    "VpcId": world.vpc_id, "OwnerId": ACCOUNT, "IpPermissions": rules,
                    "IpPermissionsEgress": everywhere}  # fmt: skip

        anyone = "0.0.0.0/0"
        extra = [
            group(SERVICES_GROUP, "public-services", [
                rule("tcp", 8443, 8443, anyone), rule("tcp", 30000, 32767, anyone),
                rule("udp", 51820, 51820, anyone), rule("udp", 1194, 1194, anyone),
                rule("udp", 53, 53, anyone), rule("icmp", -1, -1, anyone),
                # never used: reachable, unused; telnet: the subnet's network ACL denies it
                rule("tcp", 9200, 9200, anyone), rule("tcp", 23, 23, anyone),
            ]),
            group(NLB_TARGET_GROUP, "nlb-targets", [rule("tcp", 8080, 8080, anyone)]),
            group(ALB_GROUP, "alb", [rule("tcp", 443, 443, anyone)]),
        ]  # fmt: skip
    return [*extra,
        {"GroupId": APP_GROUP, "GroupName": "app", "Description": "app servers",
         "VpcId": world.vpc_id, "OwnerId": ACCOUNT,
         "IpPermissions": [rule("-1", 0, 0, VPC_CIDR)], "IpPermissionsEgress": everywhere},
        {"GroupId": WEB_GROUP, "GroupName": "public-web", "Description": "SSH and HTTPS",
         "VpcId": world.vpc_id, "OwnerId": ACCOUNT,
         "IpPermissions": web,
         "IpPermissionsEgress": everywhere},
    ]  # fmt: skip


def _reservation(world: World, instance: Instance) -> dict[str, Any]:
    eni = instance.eni
    item: dict[str, Any] = {
        "InstanceId": instance.id,
        "InstanceType": "m7g.large",
        "State": {"Code": 16, "Name": "running"},
        "PrivateIpAddress": eni.private_ip,
        "SubnetId": eni.subnet.id,
        "VpcId": world.vpc_id,
        "Placement": {"AvailabilityZone": eni.subnet.az},
        "SourceDestCheck": True,
        "NetworkInterfaces": [
            {
                "NetworkInterfaceId": eni.id,
                "PrivateIpAddress": eni.private_ip,
                "SubnetId": eni.subnet.id,
                "VpcId": world.vpc_id,
                "InterfaceType": "interface",
                "Status": "in-use",
                "Ipv6Addresses": [{"Ipv6Address": eni.ipv6}] if eni.ipv6 else [],
            }
        ],
        "Tags": _tags(("public-" if instance.exposed else "app-") + instance.id[-4:]),
    }
    if eni.public_ip:
        item["PublicIpAddress"] = eni.public_ip
    return {
        "ReservationId": "r-" + instance.id[2:],
        "OwnerId": ACCOUNT,
        "Groups": [],
        "Instances": [item],
    }


def _firewall(world: World) -> dict[str, Any]:
    arn = f"arn:aws:network-firewall:{REGION}:{ACCOUNT}:firewall/{world.firewall_name}"
    return {
        "UpdateToken": "a1b2c3d4-0000-4000-8000-000000000000",
        "Firewall": {
            "FirewallName": world.firewall_name,
            "FirewallArn": arn,
            "FirewallPolicyArn": arn.replace(":firewall/", ":firewall-policy/") + "-policy",
            "VpcId": world.vpc_id,
            "SubnetMappings": [
                {"SubnetId": e.eni.subnet.id, "IPAddressType": "IPV4"} for e in world.endpoints
            ],
            "DeleteProtection": False,
            "SubnetChangeProtection": False,
            "FirewallPolicyChangeProtection": False,
            "FirewallId": "a1b2c3d4-1111-4111-8111-111111111111",
        },
        "FirewallStatus": {
            "Status": "READY",
            "ConfigurationSyncStateSummary": "IN_SYNC",
            "SyncStates": {
                e.eni.subnet.az: {
                    "Attachment": {
                        "SubnetId": e.eni.subnet.id,
                        "EndpointId": e.id,
                        "Status": "READY",
                    },
                    "Config": {},
                }
                for e in world.endpoints
            },
        },
    }
