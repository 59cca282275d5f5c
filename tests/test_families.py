"""The shape families of aws-shapes (issue 12): the simulator writes them as AWS's rules say, and
natlens is measured on each of them (calibration per family and confidence); what the internet
can reach (natlens reachable); the context checked when natlens is used as a library."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

import natlens.simulate.kinds as kinds
from natlens.analyses.conversations import ConversationOptions, infer_inside
from natlens.analyses.inbound import inbound
from natlens.analyses.reachable import reachable
from natlens.case import Case
from natlens.engine import DuckDBEngine
from natlens.errors import UsageError
from natlens.formats.describe_json import load_context

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import accuracy

from tests.test_inbound_rules import FLAGS, case_of, context_dir, eni


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {
        fmt: accuracy.build_world(root, "aws-shapes", fmt, minutes=12, seed=7)
        for fmt in ("default", "v5")
    }


def truth(world: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        return con.execute(sql.replace("TRUTH", str(world / "truth"))).fetchall()
    finally:
        con.close()


def test_every_family_is_simulated(worlds: dict[str, Path]) -> None:
    found = {
        row[0]
        for row in truth(worlds["v5"], "SELECT DISTINCT family FROM 'TRUTH/connections.parquet'")
    }
    assert found == set(kinds.FAMILIES)


def lines_of(world: Path, family: str, where: str = "true") -> list[tuple[list[str], Any, Any]]:
    """The flow log lines (split into fields) of one family's records, with their truth."""
    rows = truth(
        world,
        "SELECT file, line, leg, initiator FROM 'TRUTH/records.parquet' "
        f"WHERE family = '{family}' AND {where} ORDER BY file, line",
    )
    cache: dict[str, list[str]] = {}
    out = []
    for file, line, leg, initiator in rows:
        if file not in cache:
            with gzip.open(world / file, "rt") as text:
                cache[file] = text.read().splitlines()
        out.append((cache[file][line - 1].split(), leg, initiator))
    return out


def test_shapes_follow_aws_rules(worlds: dict[str, Path]) -> None:
    """v5 fields: 3 srcaddr, 4 dstaddr, 5 srcport, 6 dstport, 7 protocol, 12 action,
    17 tcp-flags, 18 type (1-based after version)."""
    world = worlds["v5"]
    with gzip.open(next((world / "flowlogs").rglob("*.log.gz")), "rt") as text:
        header = text.readline().split()
    at = {name: k for k, name in enumerate(header)}
    # Begun before the capture: no SYN is ever logged.
    pre = lines_of(world, "pre-capture", "leg = 'instance'")
    assert pre and all(int(f[at["tcp-flags"]]) & 2 == 0 for f, _l, _i in pre)
    # A host's pings merged with the replies to an instance's pings of it: one record per flow
    # and window, whose truth is both sides.
    merged = lines_of(world, "icmp-both-ways", "initiator = 'both'")
    assert merged and all(f[at["protocol"]] == "1" for f, _l, _i in merged)
    # IPv6 records say so; ICMPv6 has ports 0.
    v6 = lines_of(world, "ipv6")
    assert v6 and all(f[at["type"]] == "IPv6" and ":" in f[at["srcaddr"]] for f, _l, _i in v6)
    assert any(f[at["protocol"]] == "58" and f[at["srcport"]] == "0" for f, _l, _i in v6)
    # Backscatter to the exposed instance: REJECT (its security group admits no high port);
    # to a NAT gateway: ACCEPT with SYN-ACK or RST, nothing back.
    back = lines_of(world, "backscatter")
    assert {f[at["action"]] for f, leg, _i in back if leg == "instance"} == {"REJECT"}
    assert {f[at["tcp-flags"]] for f, leg, _i in back if leg == "nat-public"} <= {"18", "4"}
    # Load balancers: a network load balancer's target sees the client's address, an
    # application load balancer's target sees the load balancer's.
    lb = lines_of(world, "load-balancer", "leg = 'instance' AND direction = 'request'")
    sources = {f[at["srcaddr"]].startswith("10.") for f, _l, _i in lb}
    assert sources == {True, False}
    # Low source ports to high service ports.
    low = lines_of(world, "low-port-clients", "direction = 'request'")
    assert low and all(int(f[at["srcport"]]) < 1024 < int(f[at["dstport"]]) for f, _l, _i in low)


@pytest.mark.parametrize("fmt", ["default", "v5"])
@pytest.mark.parametrize("with_context", [False, True])
def test_calibration_on_every_family(worlds: dict[str, Path], fmt: str, with_context: bool) -> None:
    """Issue 12's targets, per family: no inbound verdict wrong (undetermined where the logs and
    context cannot decide), no certain/high answer wrong, medium at least 95% right; every
    IPv6 peer gets a verdict, with or without context."""
    result = accuracy.evaluate(worlds[fmt], "aws-shapes", fmt, with_context)
    assert result.verdict_errors == []
    assert result.sure_wrong == 0
    for key, (n, wrong) in result.by_family_confidence.items():
        if key.endswith(("/ certain", "/ high")):
            assert wrong == 0, key
        if key.endswith("/ medium") and n >= 20:
            assert wrong / n <= 0.05, key
    assert result.verdicts_by_family["ipv6"][0] > 0
    if with_context and fmt == "v5":
        # with flags and security groups, these families are decided for every address
        for family in ("nat-port-reuse", "nat-scan", "backscatter", "public-outbound-only",
                       "instance-probes", "load-balancer", "pre-capture"):  # fmt: skip
            n, right, _undetermined, _wrong = result.verdicts_by_family[family]
            assert right == n, family


def test_ipv6_inside_is_found_without_context(worlds: dict[str, Path]) -> None:
    """Without the VPC's IPv6 CIDR, the /56 of the interfaces' own addresses counts as inside."""
    case = Case.open(worlds["v5"] / "case")
    with DuckDBEngine() as engine:
        engine.register_case(case)
        options = infer_inside(engine, ConversationOptions())
    assert options.inside_cidrs == ("2600:1f18:4a3:6c00::/56",)


def test_reachable_ports_and_what_used_them(worlds: dict[str, Path]) -> None:
    """Hand-checked against the simulated VPC: the exposed instance's SSH and HTTPS are used
    (IPv4 and IPv6), Elasticsearch's 9200 is admitted but nothing used it, telnet is admitted
    by its security group and denied by the public subnets' network ACL (rule 90), the
    application load balancer's 443 is used. NAT gateways and the instance that only goes out
    are not reachable."""
    world = worlds["v5"]
    context = load_context(world / "context")
    with DuckDBEngine() as engine:
        table = reachable(engine, Case.open(world / "case"), ConversationOptions(context=context))
    rows = table.to_pylist()
    found = {(r["address"], r["protocol"], r["ports"], r["source"]): r for r in rows}
    exposed = next(i for i in context.instance_interfaces() if i["private_ip"] == "10.0.0.40")
    assert found[("10.0.0.40", "tcp", "22", "0.0.0.0/0")]["state"] == "reachable, used"
    assert found[("10.0.0.40", "tcp", "22", "0.0.0.0/0")]["clients"] > 0
    assert found[("10.0.0.40", "tcp", "9200", "0.0.0.0/0")]["state"] == "reachable, unused"
    telnet = found[("10.0.0.40", "tcp", "23", "0.0.0.0/0")]
    assert telnet["state"] == "blocked by network ACL"
    assert telnet["network_acl"].endswith("rule 90")
    v6 = [r for r in rows if r["source"] == "::/0" and r["ports"] == "443"]
    assert v6 and v6[0]["state"] == "reachable, used" and v6[0]["network_acl"].endswith("101")
    alb = [r for r in rows if r["resource"].startswith("app/")]
    assert [r["state"] for r in alb] == ["reachable, used"]
    assert {r["resource"] for r in rows} == {exposed["instance_id"], alb[0]["resource"]}
    assert "9200" in found[("10.0.0.40", "tcp", "9200", "0.0.0.0/0")]["recommendation"]


def test_reachable_needs_security_groups(tmp_path: Path) -> None:
    case = case_of(
        tmp_path, FLAGS, ["3 eni-a 10.0.0.5 203.0.113.9 40000 443 6 1 60 1 2 ACCEPT OK 2"]
    )
    public = eni("eni-a", "10.0.0.5", "i-a", public_ip="3.3.3.3")
    context = load_context(context_dir(tmp_path / "c", enis={"NetworkInterfaces": [public]}))
    options = ConversationOptions(context=context)
    with DuckDBEngine() as engine, pytest.raises(UsageError, match="no security groups"):
        reachable(engine, case, options)
    with DuckDBEngine() as engine, pytest.raises(UsageError, match="needs --context"):
        reachable(engine, case, ConversationOptions())


def test_the_library_checks_the_context_too(tmp_path: Path) -> None:
    """Calling natlens as a library goes through the same context check as the CLI: another
    VPC's context is not used, and the warning is kept on the options."""
    case = case_of(tmp_path, FLAGS, [
        "3 eni-web 10.0.5.20 203.0.113.9 41000 443 6 10 1200 1000 1059 ACCEPT OK 2",
        "3 eni-web 203.0.113.9 10.0.5.20 443 41000 6 12 9000 1000 1059 ACCEPT OK 18",
    ])  # fmt: skip
    other = load_context(context_dir(tmp_path / "other", enis={"NetworkInterfaces": [
        eni("eni-elsewhere", "10.0.5.20", "i-elsewhere", public_ip="3.3.3.3")]}))  # fmt: skip
    options = ConversationOptions(context=other)
    with DuckDBEngine() as engine:
        said = inbound(engine, case, options).to_pylist()
    assert options.context is None
    assert options.context_warnings and "none of the 1 interfaces" in options.context_warnings[0]
    assert [r["verdict"] for r in said] == ["response"]


def test_roles_of_transit_gateway_endpoint_and_ecs_interfaces(tmp_path: Path) -> None:
    """describe-network-interfaces as AWS prints them for a transit gateway attachment, an
    interface VPC endpoint and two ECS tasks (awsvpc, no instance): each gets its role, and a
    Fargate task with a public IP is reachable while a private one only receives replies."""
    tgw = eni(
        "eni-tgw",
        "10.0.9.5",
        InterfaceType="transit_gateway",
        Description="Network Interface for Transit Gateway Attachment tgw-attach-0a1b",
    )
    endpoint = eni(
        "eni-vpce",
        "10.0.9.6",
        InterfaceType="vpc_endpoint",
        Description="VPC Endpoint Interface vpce-0c2d",
    )
    arn = "arn:aws:ecs:us-east-1:123456789012:attachment/"
    private_task = eni("eni-task", "10.0.9.7", Description=arn + "a1b2c3")
    public_task = eni("eni-web-task", "10.0.9.8", public_ip="3.3.3.8",
                      Description=arn + "d4e5f6")  # fmt: skip
    context = load_context(context_dir(tmp_path / "c", enis={"NetworkInterfaces": [
        tgw, endpoint, private_task, public_task]}))  # fmt: skip
    roles = {r["address"]: (r["role"], r["resource_id"]) for r in context.address_roles()}
    assert roles == {
        "10.0.9.5": ("transit-gateway", "tgw-attach-0a1b"),
        "10.0.9.6": ("vpc-endpoint", "vpce-0c2d"),
        "10.0.9.7": ("instance", "a1b2c3"),
        "10.0.9.8": ("public-instance", "d4e5f6"),
    }
    case = case_of(tmp_path, FLAGS, [
        # no flags in these windows: the private task's replies, the public task's client
        "3 eni-task 203.0.113.7 10.0.9.7 443 41000 6 9 9000 1000 1059 ACCEPT OK 0",
        "3 eni-task 10.0.9.7 203.0.113.7 41000 443 6 9 900 1000 1059 ACCEPT OK 0",
        "3 eni-web-task 198.51.100.4 10.0.9.8 52000 8080 6 9 900 1000 1059 ACCEPT OK 2",
        "3 eni-web-task 10.0.9.8 198.51.100.4 8080 52000 6 9 9000 1000 1059 ACCEPT OK 18",
    ])  # fmt: skip
    with DuckDBEngine() as engine:
        said = inbound(engine, case, ConversationOptions(context=context)).to_pylist()
    verdicts = {r["address"]: r["verdict"] for r in said}
    assert verdicts == {"203.0.113.7": "response", "198.51.100.4": "exposed"}


def test_engines_agree_on_what_is_reachable(engine, tmp_path: Path) -> None:
    """Hand-checked on DuckDB and Spark: an instance with a public IP whose group admits SSH
    from anywhere and 8443 from one network; SSH used by a client, probed by a scanner (one
    packet); 8443 never reached; the subnet's network ACL denies 8443 from 198.51.100.0/24."""
    from tests.test_inbound_rules import group

    lines = [
        "3 eni-web 203.0.113.5 10.0.5.20 50000 22 6 20 3000 1000 1059 ACCEPT OK 2",
        "3 eni-web 10.0.5.20 203.0.113.5 22 50000 6 25 9000 1000 1059 ACCEPT OK 18",
        "3 eni-web 192.0.2.66 10.0.5.20 40000 22 6 1 44 1000 1000 ACCEPT OK 2",
        "3 eni-web 10.0.5.20 192.0.2.66 22 40000 6 1 44 1000 1000 ACCEPT OK 18",
    ]
    case = case_of(tmp_path, FLAGS, lines)
    acl = {"NetworkAcls": [{"NetworkAclId": "acl-1", "VpcId": "vpc-1", "IsDefault": True,
        "Associations": [{"SubnetId": "subnet-pub"}], "Entries": [
            {"RuleNumber": 50, "Egress": False, "Protocol": "6", "RuleAction": "deny",
             "CidrBlock": "198.51.100.0/24", "PortRange": {"From": 8443, "To": 8443}},
            {"RuleNumber": 100, "Egress": False, "Protocol": "-1", "RuleAction": "allow",
             "CidrBlock": "0.0.0.0/0"}]}]}  # fmt: skip
    context = load_context(context_dir(
        tmp_path / "c",
        vpcs={"Vpcs": [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/16"}]},
        subnets={"Subnets": [{"SubnetId": "subnet-pub", "VpcId": "vpc-1"}]},
        routes={"RouteTables": [{"RouteTableId": "rtb-1", "VpcId": "vpc-1",
            "Associations": [{"SubnetId": "subnet-pub"}],
            "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1",
                        "State": "active"}]}]},
        acls=acl,
        enis={"NetworkInterfaces": [
            eni("eni-web", "10.0.5.20", "i-web", "54.0.0.20", ("sg-web",), subnet="subnet-pub")]},
        groups={"SecurityGroups": [group("sg-web", ("tcp", 22, 22, "0.0.0.0/0"),
                                         ("tcp", 8443, 8443, "198.51.100.0/24"))]},
    ))  # fmt: skip
    rows = reachable(engine, case, ConversationOptions(context=context)).to_pylist()
    got = [(r["ports"], r["source"], r["state"], r["clients"], r["probes"], r["network_acl"])
           for r in rows]  # fmt: skip
    assert got == [
        ("22", "0.0.0.0/0", "reachable, used", 1, 1, "acl-1 rule 100"),
        ("8443", "198.51.100.0/24", "blocked by network ACL", 0, 0, "acl-1 rule 50"),
    ]
