"""The standard VPC layouts of docs/aws.md §7, built through boto3 (against moto in the tests), and
a way to run the AWS CLI commands natlens prints through boto3."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

AZS = ("us-east-1a", "us-east-1b", "us-east-1c")


@dataclass
class Built:
    vpc: str
    igw: str
    private: dict[str, str] = field(default_factory=dict)  # AZ -> subnet
    public: dict[str, str] = field(default_factory=dict)
    firewall: dict[str, str] = field(default_factory=dict)
    nat: dict[str, str] = field(default_factory=dict)
    endpoint: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)  # role-AZ -> route table


def build(ec2: Any, nfw: Any, azs: int, placement: str | None) -> Built:
    """A VPC with a private, a public (NAT) and a firewall subnet per AZ, routed as docs/aws.md §7
    (a) ``after-nat``, (b) ``before-nat``, or without a firewall (``None``)."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    built = Built(vpc, igw)

    def subnet(cidr: str, az: str) -> str:
        return str(
            ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        )

    def table(key: str, subnets: list[str], routes: list[dict[str, str]]) -> str:
        rtb = str(ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"])
        for s in subnets:
            ec2.associate_route_table(RouteTableId=rtb, SubnetId=s)
        for route in routes:
            ec2.create_route(RouteTableId=rtb, **route)
        built.tables[key] = rtb
        return rtb

    for index, az in enumerate(AZS[:azs]):
        built.public[az] = subnet(f"10.0.{index}.0/24", az)
        built.private[az] = subnet(f"10.0.{16 * (index + 1)}.0/20", az)
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        built.nat[az] = ec2.create_nat_gateway(SubnetId=built.public[az], AllocationId=allocation)[
            "NatGateway"
        ]["NatGatewayId"]
        if placement:
            built.firewall[az] = subnet(f"10.0.{200 + index}.0/28", az)
            built.endpoint[az] = ec2.create_vpc_endpoint(
                VpcId=vpc, ServiceName="com.amazonaws.vpce.us-east-1.vpce-svc-0a1b2c3d4e5f60789",
                VpcEndpointType="GatewayLoadBalancer", SubnetIds=[built.firewall[az]],
            )["VpcEndpoint"]["VpcEndpointId"]  # fmt: skip
    if placement:
        nfw.create_firewall(
            FirewallName="egress-firewall",
            FirewallPolicyArn="arn:aws:network-firewall:us-east-1:123456789012:firewall-policy/egress",
            VpcId=vpc, SubnetMappings=[{"SubnetId": s} for s in built.firewall.values()],
        )  # fmt: skip
    for az in AZS[:azs]:
        nat, endpoint = built.nat[az], built.endpoint.get(az)
        to = {"DestinationCidrBlock": "0.0.0.0/0"}
        if placement == "before-nat":
            table(f"private-{az}", [built.private[az]], [{**to, "VpcEndpointId": str(endpoint)}])
            table(f"firewall-{az}", [built.firewall[az]], [{**to, "NatGatewayId": nat}])
            cidr = ec2.describe_subnets(SubnetIds=[built.private[az]])["Subnets"][0]["CidrBlock"]
            table(f"nat-{az}", [built.public[az]], [
                {**to, "GatewayId": igw},
                {"DestinationCidrBlock": cidr, "VpcEndpointId": str(endpoint)},
            ])  # fmt: skip
            continue
        table(f"private-{az}", [built.private[az]], [{**to, "NatGatewayId": nat}])
        if placement == "after-nat":
            table(f"nat-{az}", [built.public[az]], [{**to, "VpcEndpointId": str(endpoint)}])
            table(f"firewall-{az}", [built.firewall[az]], [{**to, "GatewayId": igw}])
        else:
            table(f"nat-{az}", [built.public[az]], [{**to, "GatewayId": igw}])
    if placement == "after-nat":
        edge = table("edge", [], [
            {"DestinationCidrBlock": f"10.0.{i}.0/24", "VpcEndpointId": built.endpoint[az]}
            for i, az in enumerate(AZS[:azs])
        ])  # fmt: skip
        ec2.associate_route_table(RouteTableId=edge, GatewayId=igw)
    return built


def _param(option: str) -> str:
    special = {"ipv6": "Ipv6", "id": "Id", "arn": "Arn"}
    return "".join(special.get(w, w.capitalize()) for w in option.removeprefix("--").split("-"))


def run_commands(ec2: Any, lines: list[str]) -> None:
    """Run printed ``aws ec2 …`` lines (and ``VAR=$(aws … --query P --output text)``) with boto3,
    exactly as written: the option names become the API's parameter names."""
    variables: dict[str, str] = {}
    for line in lines:
        capture = re.match(r"^(\w+)=\$\((.*)\)$", line)
        text = capture.group(2) if capture else line
        for name, value in variables.items():
            text = text.replace(f"${name}", value)
        words = shlex.split(text)
        assert words[:2] == ["aws", "ec2"], line
        operation = words[2].replace("-", "_")
        params: dict[str, Any] = {}
        query = None
        i = 3
        while i < len(words):
            option = words[i]
            if option == "--ingress":
                params["Egress"] = False
                i += 1
                continue
            value = words[i + 1]
            i += 2
            if option == "--query":
                query = value
            elif option == "--output":
                continue
            elif option == "--rule-number":
                params["RuleNumber"] = int(value)
            elif option == "--port-range":
                bounds = dict(p.split("=") for p in value.split(","))
                params["PortRange"] = {k: int(v) for k, v in bounds.items()}
            else:
                params[_param(option)] = value
        if operation == "replace_route" and "VpcEndpointId" in params:
            # moto's replace_route drops VpcEndpointId (the route is left without a target);
            # AWS replaces it. Delete and create is the same change.
            where = {k: v for k, v in params.items() if k.startswith(("RouteTable", "Destination"))}
            ec2.delete_route(**where)
            operation = "create_route"
        result = getattr(ec2, operation)(**params)
        if capture:
            for key in str(query).split("."):
                result = result[key]
            variables[capture.group(1)] = str(result)
