"""Inbound verdicts on traffic shaped by AWS's documented rules rather than by natlens's
simulator: each test is one shape that broke an earlier rule (issue 12), written by hand from
docs/aws.md (flow log fields, NAT gateway and security group behaviour), with the answer a network
engineer would give. A verdict must never be stronger than its evidence: `response` ("nothing to
do") needs as much evidence as `exposed`, and what the logs cannot decide is `undetermined`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from natlens.analyses.conversations import ConversationOptions, conversations
from natlens.analyses.inbound import inbound
from natlens.case import Case
from natlens.engine import DuckDBEngine
from natlens.formats.describe_json import load_context
from natlens.ingest import IngestOptions, ingest

DEFAULT = "version interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"  # fmt: skip
FLAGS = DEFAULT.rstrip("\n") + " tcp-flags\n"
PKT = FLAGS.rstrip("\n") + " pkt-srcaddr pkt-dstaddr\n"


def case_of(tmp_path: Path, header: str, lines: list[str]) -> Case:
    source = tmp_path / "flows.log"
    source.write_text(header + "\n".join(lines) + "\n")
    report = ingest([str(source)], str(tmp_path / "case"), IngestOptions())
    return Case.open(report.case)


def context_dir(directory: Path, **files: Any) -> Path:
    """A directory of describe-* JSON files, one per keyword (file name = keyword)."""
    directory.mkdir(exist_ok=True)
    for name, document in files.items():
        (directory / f"{name}.json").write_text(json.dumps(document))
    return directory


def context_of(tmp_path: Path, **files: Any) -> ConversationOptions:
    return ConversationOptions(context=load_context(context_dir(tmp_path / "context", **files)))


def verdicts(case: Case, options: ConversationOptions | None = None) -> dict[str, dict]:
    with DuckDBEngine() as engine:
        return {r["address"]: r for r in inbound(engine, case, options).to_pylist()}


def rows(case: Case, options: ConversationOptions | None = None) -> list[dict]:
    with DuckDBEngine() as engine:
        return conversations(engine, case, options).to_pylist()


def eni(
    eni_id: str,
    address: str,
    instance: str | None = None,
    public_ip: str | None = None,
    groups: tuple[str, ...] = (),
    ipv6: tuple[str, ...] = (),
    subnet: str = "subnet-a",
    **extra: Any,
) -> dict[str, Any]:
    """A network interface as describe-network-interfaces prints it (docs/aws.md §9)."""
    private: dict[str, Any] = {"Primary": True, "PrivateIpAddress": address}
    item: dict[str, Any] = {
        "NetworkInterfaceId": eni_id, "InterfaceType": "interface", "SubnetId": subnet,
        "VpcId": "vpc-1", "PrivateIpAddress": address, "PrivateIpAddresses": [private],
        "Groups": [{"GroupId": g, "GroupName": g} for g in groups],
        "Ipv6Addresses": [{"Ipv6Address": a} for a in ipv6],
    }  # fmt: skip
    if instance:
        item["Attachment"] = {"InstanceId": instance, "DeviceIndex": 0, "Status": "attached"}
    if public_ip:
        private["Association"] = item["Association"] = {"PublicIp": public_ip}
    return item | extra


def group(group_id: str, *rules: tuple[str, int, int, str]) -> dict[str, Any]:
    """A security group as describe-security-groups prints it."""
    permissions = []
    for protocol, low, high, cidr in rules:
        ranges = (
            {"Ipv6Ranges": [{"CidrIpv6": cidr}]}
            if ":" in cidr
            else {"IpRanges": [{"CidrIp": cidr}]}
        )
        permissions.append({"IpProtocol": protocol, "FromPort": low, "ToPort": high} | ranges)
    return {"GroupId": group_id, "VpcId": "vpc-1", "IpPermissions": permissions}


# -- a public instance serving on a high port, reached from low source ports ---------------------

WEB = [
    # 198.51.100.10 connects from port 443 (a NAT'd client or a scanner can) to 8443 on an
    # instance with a public IP; the default format has no tcp-flags.
    "2 eni-web 198.51.100.10 10.0.5.20 443 8443 6 10 1200 1000 1059 ACCEPT OK",
    "2 eni-web 10.0.5.20 198.51.100.10 8443 443 6 12 9000 1000 1059 ACCEPT OK",
]


def test_ports_alone_never_say_nothing_to_do(tmp_path: Path) -> None:
    """By ports, 443 looks like the server and the instance like its client: a guess that
    would hide an exposure. Without flags or context the verdict is undetermined, and says
    what would decide it."""
    case = case_of(tmp_path, DEFAULT, WEB)
    (conversation,) = rows(case)
    assert conversation["confidence"] in ("low", "unknown")
    verdict = verdicts(case)["198.51.100.10"]
    assert verdict["verdict"] == "undetermined"
    advice = verdict["recommendation"]
    assert "tcp-flags" in advice and "--context" in advice


def test_a_syn_from_the_internet_to_an_admitted_port_is_an_exposure(tmp_path: Path) -> None:
    lines = [WEB[0] + " 2", WEB[1] + " 18"]
    case = case_of(tmp_path, FLAGS, lines)
    options = context_of(
        tmp_path,
        enis={
            "NetworkInterfaces": [eni("eni-web", "10.0.5.20", "i-web", "54.0.0.20", ("sg-web",))]
        },
        groups={"SecurityGroups": [group("sg-web", ("tcp", 8443, 8443, "0.0.0.0/0"))]},
    )
    verdict = verdicts(case, options)["198.51.100.10"]
    assert verdict["verdict"] == "exposed"
    assert verdict["exposed_on"] == ["i-web:8443"]
    assert verdict["exposed_rules"] == ["sg-web tcp 8443 from 0.0.0.0/0"]
    assert "sg-web tcp 8443 from 0.0.0.0/0" in verdict["recommendation"]


def test_security_groups_that_admit_nothing_make_it_a_reply(tmp_path: Path) -> None:
    """AWS: security groups are stateful. The instance's groups admit only SSH from the VPC, so
    the accepted packets from port 443 are replies to a connection the instance opened (no
    tcp-flags needed). A conversation the internet tried on a closed port is REJECTed."""
    lines = [
        "2 eni-web 10.0.5.20 203.0.113.9 41000 443 6 10 1200 1000 1059 ACCEPT OK",
        "2 eni-web 203.0.113.9 10.0.5.20 443 41000 6 12 9000 1000 1059 ACCEPT OK",
        "2 eni-web 192.0.2.77 10.0.5.20 50000 3389 6 1 60 1000 1001 REJECT OK",
    ]
    case = case_of(tmp_path, DEFAULT, lines)
    options = context_of(
        tmp_path,
        enis={
            "NetworkInterfaces": [eni("eni-web", "10.0.5.20", "i-web", "54.0.0.20", ("sg-ssh",))]
        },
        groups={"SecurityGroups": [group("sg-ssh", ("tcp", 22, 22, "10.0.0.0/16"))]},
    )
    found = {r["server_port"]: r for r in rows(case, options)}
    assert found[443]["client_addr"] == "10.0.5.20"
    assert "sg-not-admitted" in found[443]["evidence"]
    assert found[443]["confidence"] == "high"  # the groups are as collected: never certain
    said = verdicts(case, options)
    assert said["203.0.113.9"]["verdict"] == "response"
    assert "192.0.2.77" not in said  # REJECT records only: nothing reached the instance


# -- IPv6 ---------------------------------------------------------------------------------------

VPC6 = {"Vpcs": [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16", "Ipv6CidrBlockAssociationSet": [
    {"Ipv6CidrBlock": "2600:1f18:abcd:ef00::/56", "Ipv6CidrBlockState": {"State": "associated"}}
]}]}  # fmt: skip
ROUTES6 = {"RouteTables": [
    {"RouteTableId": "rtb-pub", "VpcId": "vpc-1",
     "Associations": [{"SubnetId": "subnet-pub", "Main": False}],
     "Routes": [{"DestinationIpv6CidrBlock": "::/0", "GatewayId": "igw-1"}]},
    {"RouteTableId": "rtb-eigw", "VpcId": "vpc-1", "Associations": [{"Main": True}],
     "Routes": [{"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": "eigw-1"}]},
]}  # fmt: skip


A6 = eni("eni-a", "10.0.1.10", "i-a", ipv6=("2600:1f18:abcd:ef01::10",), subnet="subnet-pub")
B6 = eni("eni-b", "10.0.2.20", "i-b", ipv6=("2600:1f18:abcd:ef02::20",), subnet="subnet-priv")


def test_ipv6_exposure_and_egress_only_replies(tmp_path: Path) -> None:
    """The VPC's IPv6 CIDR is its own, not the internet. An instance whose subnet routes ::/0 to
    an internet gateway is reachable (a SYN from the internet: exposed); one behind an
    egress-only internet gateway receives only replies, even without flags."""
    lines = [
        "3 eni-a 2001:db8:1::5 2600:1f18:abcd:ef01::10 50000 22 6 5 500 1000 1059 ACCEPT OK 2",
        "3 eni-a 2600:1f18:abcd:ef01::10 2001:db8:1::5 22 50000 6 5 900 1000 1059 ACCEPT OK 18",
        "3 eni-b 2600:1f18:abcd:ef02::20 2001:db8:2::7 40000 443 6 5 500 1000 1059 ACCEPT OK 0",
        "3 eni-b 2001:db8:2::7 2600:1f18:abcd:ef02::20 443 40000 6 5 900 1000 1059 ACCEPT OK 0",
        "3 eni-b 2001:db8:3::9 2600:1f18:abcd:ef02::20 0 0 58 1 64 1000 1000 ACCEPT OK 0",
    ]
    case = case_of(tmp_path, FLAGS, lines)
    options = context_of(
        tmp_path,
        vpcs=VPC6,
        routes=ROUTES6,
        subnets={
            "Subnets": [
                {"SubnetId": "subnet-pub", "VpcId": "vpc-1"},
                {"SubnetId": "subnet-priv", "VpcId": "vpc-1"},
            ]
        },
        enis={"NetworkInterfaces": [A6, B6]},
    )
    said = verdicts(case, options)
    assert set(said) == {"2001:db8:1::5", "2001:db8:2::7", "2001:db8:3::9"}
    assert said["2001:db8:1::5"]["verdict"] == "exposed"
    assert said["2001:db8:1::5"]["exposed_on"] == ["i-a:22"]
    assert said["2001:db8:2::7"]["verdict"] == "response"
    assert said["2001:db8:2::7"]["instances"] == ["i-b"]
    # ICMPv6 into an egress-only subnet: a reply (to the instance's own ICMPv6), never exposed
    assert said["2001:db8:3::9"]["verdict"] in ("response", "undetermined")
    found = {r["client_port"]: r for r in rows(case, options)}
    assert found[40000]["client_role"] == "instance"
    assert "nat-return-only" in found[40000]["evidence"]


# -- roles inferred from the logs ---------------------------------------------------------------


def test_an_ordinary_instance_is_not_inferred_to_be_a_nat_gateway(tmp_path: Path) -> None:
    """A Kubernetes node with a public IP: a bastion SSHes into it, it calls APIs on the
    internet, and internet clients reach its NodePort. Being served on a well-known port by a
    private host and sending to the internet from high ports made it a "gateway", and its
    clients "unsolicited", with a network ACL deny recommended."""
    lines = [
        "2 eni-node 10.0.0.5 10.0.1.10 52000 22 6 20 4000 1000 1059 ACCEPT OK",
        "2 eni-node 10.0.1.10 10.0.0.5 22 52000 6 20 9000 1000 1059 ACCEPT OK",
        "2 eni-node 10.0.1.10 93.184.216.34 41000 443 6 10 1200 1000 1059 ACCEPT OK",
        "2 eni-node 93.184.216.34 10.0.1.10 443 41000 6 12 9000 1000 1059 ACCEPT OK",
        "2 eni-node 203.0.113.77 10.0.1.10 51000 30080 6 8 800 1000 1059 ACCEPT OK",
        "2 eni-node 10.0.1.10 203.0.113.77 30080 51000 6 8 4000 1000 1059 ACCEPT OK",
        "2 eni-node 198.51.100.99 10.0.1.10 443 30081 6 1 44 1000 1000 ACCEPT OK",
    ]
    case = case_of(tmp_path, DEFAULT, lines)
    assert all(r["roles_from"] != "inferred" for r in rows(case))
    said = verdicts(case)
    for address in ("203.0.113.77", "198.51.100.99"):
        assert said[address]["verdict"] not in ("unsolicited", "response", "mixed"), address


# AWS's NAT gateway example: an instance's connection on the NAT gateway's interface, private
# leg (the internet host in pkt-*) and public leg.
NAT_LEGS = [
    "3 eni-nat 10.0.1.5 10.0.0.220 40000 443 6 5 500 1000 1059 ACCEPT OK 0 10.0.1.5 203.0.113.5",
    "3 eni-nat 10.0.0.220 203.0.113.5 20000 443 6 5 500 1000 1059 ACCEPT OK 0 10.0.0.220 "
    "203.0.113.5",
    "3 eni-nat 203.0.113.5 10.0.0.220 443 20000 6 5 900 1000 1059 ACCEPT OK 0 203.0.113.5 "
    "10.0.0.220",
    "3 eni-nat 10.0.0.220 10.0.1.5 443 40000 6 5 900 1000 1059 ACCEPT OK 0 203.0.113.5 10.0.1.5",
]


def test_inferred_nat_gateway_gives_medium_at_most(tmp_path: Path) -> None:
    """AWS's NAT gateway example (pkt-* fields): the NAT gateway is recognised from its private
    leg, but a role inferred from the logs never gives certain or high."""
    case = case_of(tmp_path, PKT, NAT_LEGS)
    found = rows(case)
    assert found and all(r["roles_from"] == "inferred" for r in found)
    assert all(r["confidence"] in ("medium", "low", "unknown") for r in found)
    assert verdicts(case)["203.0.113.5"]["verdict"] == "response"


def test_an_inferred_instance_with_internet_clients_is_not_replies_only(tmp_path: Path) -> None:
    """Without context, an instance that goes out through a NAT gateway (inferred from its
    private leg) can still have internet clients: a network load balancer with client IP
    preservation hands them over with their own addresses. Only a peer also seen at the
    gateway makes "replies only" evidence; a client that never met the gateway is not
    called a reply (an exposure reported as nothing to do)."""
    lines = [
        # the instance's own connection through the NAT gateway (its legs, and its own record)
        *NAT_LEGS,
        "3 eni-app 10.0.1.5 203.0.113.5 40000 443 6 5 500 1000 1059 ACCEPT OK 0 10.0.1.5 "
        "203.0.113.5",
        "3 eni-app 203.0.113.5 10.0.1.5 443 40000 6 5 900 1000 1059 ACCEPT OK 0 203.0.113.5 "
        "10.0.1.5",
        # a network load balancer's client, its address preserved, mid-connection (no flags)
        "3 eni-app 198.51.100.8 10.0.1.5 2608 8080 6 14 2590 1000 1059 ACCEPT OK 0 198.51.100.8 "
        "10.0.1.5",
        "3 eni-app 10.0.1.5 198.51.100.8 8080 2608 6 15 10815 1000 1059 ACCEPT OK 0 10.0.1.5 "
        "198.51.100.8",
    ]
    case = case_of(tmp_path, PKT, lines)
    said = verdicts(case)
    assert said["203.0.113.5"]["verdict"] == "response"
    assert said["198.51.100.8"]["verdict"] in ("undetermined", "exposed")
    client = next(r for r in rows(case) if r["client_port"] == 2608 or r["server_port"] == 2608)
    assert "nat-return-only" not in (client["evidence"] or [])


# -- NAT gateways with several addresses, and ICMP ----------------------------------------------

NAT_PRIMARY_ONLY = {"NatGateways": [{
    "NatGatewayId": "nat-0123456789abcdef0", "SubnetId": "subnet-nat", "VpcId": "vpc-1",
    "NatGatewayAddresses": [{"NetworkInterfaceId": "eni-nat", "PrivateIp": "10.0.0.220",
                             "PublicIp": "54.1.2.3", "IsPrimary": True}],
}]}  # fmt: skip
NAT_ENI = {"NetworkInterfaces": [{
    "NetworkInterfaceId": "eni-nat", "InterfaceType": "nat_gateway", "SubnetId": "subnet-nat",
    "VpcId": "vpc-1", "Description": "Interface for NAT Gateway nat-0123456789abcdef0",
    "PrivateIpAddress": "10.0.0.220",
    "PrivateIpAddresses": [{"Primary": True, "PrivateIpAddress": "10.0.0.220"},
                           {"Primary": False, "PrivateIpAddress": "10.0.0.74"}],
}]}  # fmt: skip


def test_a_scan_of_a_secondary_nat_address_is_unsolicited(tmp_path: Path) -> None:
    """A NAT gateway has up to 8 addresses. A packet to a secondary private address is logged
    with the primary in dstaddr and the real one in pkt-dstaddr (docs/aws.md §1.6)."""
    lines = [
        "3 eni-nat 203.0.113.50 10.0.0.220 51515 22 6 1 44 1000 1001 ACCEPT OK 2 203.0.113.50 "
        "10.0.0.74",
    ]
    case = case_of(tmp_path, PKT, lines)
    options = context_of(tmp_path, nat=NAT_PRIMARY_ONLY, enis=NAT_ENI)
    verdict = verdicts(case, options)["203.0.113.50"]
    assert verdict["verdict"] == "unsolicited"
    assert verdict["gateways"] == ["nat-0123456789abcdef0"]


def test_an_unsolicited_ping_merged_with_an_instance_ping_is_mixed(tmp_path: Path) -> None:
    """ICMP records carry no ports: the host's own echo requests to the NAT gateway's address
    share a conversation with the replies to the instance's ping. Seven packets in, four out
    and four on to the instance: three were unsolicited."""
    lines = [
        "3 eni-nat 10.0.1.5 10.0.0.220 0 0 1 4 336 1000 1003 ACCEPT OK 0 10.0.1.5 203.0.113.5",
        "3 eni-nat 10.0.0.220 203.0.113.5 0 0 1 4 336 1000 1003 ACCEPT OK 0 10.0.0.220 203.0.113.5",
        "3 eni-nat 203.0.113.5 10.0.0.220 0 0 1 7 588 1000 1010 ACCEPT OK 0 203.0.113.5 10.0.0.220",
        "3 eni-nat 10.0.0.220 10.0.1.5 0 0 1 4 336 1000 1003 ACCEPT OK 0 203.0.113.5 10.0.1.5",
    ]
    case = case_of(tmp_path, PKT, lines)
    options = context_of(tmp_path, nat=NAT_PRIMARY_ONLY, enis=NAT_ENI)
    verdict = verdicts(case, options)["203.0.113.5"]
    assert verdict["verdict"] == "mixed"


# -- load balancers -----------------------------------------------------------------------------


def test_a_load_balancer_listener_is_exposed_by_design(tmp_path: Path) -> None:
    lines = [
        "2 eni-lb 198.51.100.20 10.0.4.10 50000 443 6 10 1200 1000 1059 ACCEPT OK",
        "2 eni-lb 10.0.4.10 198.51.100.20 443 50000 6 12 9000 1000 1059 ACCEPT OK",
    ]
    case = case_of(tmp_path, DEFAULT, lines)
    lb = eni("eni-lb", "10.0.4.10", InterfaceType="network_load_balancer",
             Description="ELB net/web/0123456789abcdef")  # fmt: skip
    options = context_of(tmp_path, enis={"NetworkInterfaces": [lb]})
    verdict = verdicts(case, options)["198.51.100.20"]
    assert verdict["verdict"] == "exposed"
    assert verdict["via"] == ["net/web/0123456789abcdef"]
    assert "by design" in verdict["recommendation"]


@pytest.mark.parametrize(
    "ip",
    [
        "2600:1f18:abcd:ef01::10",
        "2600:1f18:abcd:ef00::",
        "::1",
        "::",
        "2001:db8:0:0:1:0:0:1",
        "fe80::1:2",
        "2600:1f18:abcd:0::ab",
    ],
)
def test_ipv6_text_is_compared_as_numbers(ip: str) -> None:
    """The VPC's IPv6 CIDR test works on every spelling of an address (:: anywhere)."""
    import ipaddress

    from sqlglot import exp

    from natlens.analyses.conversations import v6_hex_sql

    with DuckDBEngine() as engine:
        query = exp.select(exp.alias_(v6_hex_sql(exp.Literal.string(ip)), "h"))
        got = engine.query(query).to_pylist()[0]["h"]
    assert got == f"{int(ipaddress.ip_address(ip)):032x}"


def test_engines_agree_on_ipv6_and_security_groups(engine, tmp_path: Path) -> None:
    """The IPv6 CIDR test (text split at ::) and the security group join, on DuckDB and Spark,
    against the hand-checked answer."""
    lines = [
        "3 eni-a 2001:db8:1::5 2600:1f18:abcd:ef01::10 50000 22 6 5 500 1000 1059 ACCEPT OK 2",
        "3 eni-a 2600:1f18:abcd:ef01::10 2001:db8:1::5 22 50000 6 5 900 1000 1059 ACCEPT OK 18",
        "3 eni-web 10.0.5.20 203.0.113.9 41000 443 6 10 1200 1000 1059 ACCEPT OK 0",
        "3 eni-web 203.0.113.9 10.0.5.20 443 41000 6 12 9000 1000 1059 ACCEPT OK 0",
    ]
    case = case_of(tmp_path, FLAGS, lines)
    options = context_of(
        tmp_path,
        vpcs=VPC6,
        routes=ROUTES6,
        subnets={"Subnets": [{"SubnetId": "subnet-pub", "VpcId": "vpc-1"}]},
        enis={
            "NetworkInterfaces": [
                A6,
                eni("eni-web", "10.0.5.20", "i-web", "54.0.0.20", ("sg-ssh",)),
            ]
        },
        groups={"SecurityGroups": [group("sg-ssh", ("tcp", 22, 22, "::/0"))]},
    )
    said = {r["address"]: r["verdict"] for r in inbound(engine, case, options).to_pylist()}
    assert said == {"2001:db8:1::5": "exposed", "203.0.113.9": "response"}
    with DuckDBEngine() as duck:
        expected = conversations(duck, case, options).to_pylist()
    assert conversations(engine, case, options).to_pylist() == expected
    # Without context: with a single peer both addresses are in all of eni-a's records, so
    # neither is known to be its own; a second peer shows which one is.
    (tmp_path / "more").mkdir()
    more = case_of(tmp_path / "more", FLAGS, [*lines, *(
        "3 eni-a 2001:db8:7::9 2600:1f18:abcd:ef01::10 50001 22 6 5 500 1000 1059 ACCEPT OK 2",
        "3 eni-a 2600:1f18:abcd:ef01::10 2001:db8:7::9 22 50001 6 5 900 1000 1059 ACCEPT OK 18",
    )])  # fmt: skip
    said = {r["address"]: r["verdict"] for r in inbound(engine, more).to_pylist()}
    assert said["2001:db8:1::5"] == said["2001:db8:7::9"] == "exposed"
    assert "2600:1f18:abcd:ef01::10" not in said


# -- context that is not about these logs -------------------------------------------------------

WITH_INSTANCE = "version interface-id instance-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"  # fmt: skip


def test_context_from_another_vpc_or_contradicting_the_logs_is_not_used(
    natlens, tmp_path: Path
) -> None:
    """The flow logs name their interfaces and instances: a context that knows none of them
    (another VPC's: 10.0.0.0/16 is everyone's) or names another instance is not used, and
    natlens says so on stderr."""
    source = tmp_path / "flows.log"
    source.write_text(WITH_INSTANCE + "\n".join([
        "3 eni-web i-web 10.0.5.20 203.0.113.9 41000 443 6 10 1200 1000 1059 ACCEPT OK",
        "3 eni-web i-web 203.0.113.9 10.0.5.20 443 41000 6 12 9000 1000 1059 ACCEPT OK",
    ]) + "\n")  # fmt: skip
    # another VPC's instance without a public IP at the same address
    other = context_dir(tmp_path / "other", enis={
        "NetworkInterfaces": [eni("eni-elsewhere", "10.0.5.20", "i-elsewhere")]
    })  # fmt: skip
    run = natlens("conversations", source, "--context", other, "--format", "jsonl")
    assert run.code == 0, run.err
    assert "none of the 1 interfaces in the logs is in the context" in run.err
    assert all(r["roles_from"] != "context" for r in run.jsonl())
    stale = context_dir(tmp_path / "stale", enis={
        "NetworkInterfaces": [eni("eni-web", "10.0.5.20", "i-\x1b[31mold")]
    })  # fmt: skip
    run = natlens("inbound", source, "--context", stale, "--format", "jsonl")
    assert run.code == 0, run.err
    assert "eni-web: the flow logs say instance i-web, the context i-\\x1b[31mold" in run.err
    assert "\x1b" not in run.err  # an id from a file never drives the terminal
    (verdict,) = run.jsonl()
    assert verdict["instances"] != ["i-\x1b[31mold"] and verdict["roles_from"] != "context"


def test_the_terminal_table_shows_control_characters_never_obeys_them() -> None:
    """A security group id or load balancer name from a context file reaches the table
    (exposed_rules, via, recommendation): escape sequences are shown as text."""
    import io

    import pyarrow as pa

    from natlens.render.registry import render

    out = io.StringIO()
    hostile = "sg-1\x1b[2J\x07 tcp 22 from 0.0.0.0/0"
    render(pa.table({"exposed_rules": [[hostile]], "note": ["a\u202eb\r"]}), "table", out)
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    assert "sg-1\\x1b[2J\\x07 tcp 22" in out.getvalue() and "a\\u202eb\\x0d" in out.getvalue()
