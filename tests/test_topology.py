"""natlens topology: the layouts of docs/aws.md §7 on VPCs built through boto3 (moto), every check
with a context that triggers it and one that does not, and the closed loop: the printed plan run
against the VPC, collected again, and the findings it fixes are gone."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from natlens.formats.describe_json import load_context
from natlens.simulate.describe import describe
from natlens.simulate.world import build_world
from natlens.sources.vpc_context import collect
from natlens.topology.checks import CHECKS
from natlens.topology.report import analyse, layouts, to_json
from tests.aws_vpcs import AZS, build, run_commands
from tests.conftest import FIXTURES

ROUTING = {"firewall-after-nat", "asymmetric-return-path", "egress-bypasses-firewall",
           "cross-az-hop", "blackhole-route", "egress-dead-end"}  # fmt: skip


def _write(directory: Path, files: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in files.items():
        (directory / name).write_text(json.dumps(document))
    return directory


def _ids(directory: Path) -> set[str]:
    return {f.id for f in analyse(load_context(directory)).findings}


def _layouts(directory: Path) -> dict[str, str]:
    report = analyse(load_context(directory))
    return {row["availability_zone"]: row["layout"] for row in layouts(report.vpcs[0].traces)}


@pytest.fixture
def aws():
    with mock_aws():
        yield (
            boto3.client("ec2", region_name="us-east-1"),
            boto3.client("network-firewall", region_name="us-east-1"),
        )


# -- the layouts of docs/aws.md §7 on moto, and the closed loop -------------------------------------


@pytest.mark.parametrize("azs", [1, 3])
def test_after_nat_is_recognised_and_the_plan_closes_the_loop(aws, tmp_path, natlens, azs) -> None:
    ec2, nfw = aws
    built = build(ec2, nfw, azs, "after-nat")
    done = collect(tmp_path / "before", ec2, nfw, built.vpc)
    assert done.failures == {}
    assert set(done.files) >= {
        "describe-route-tables.json",
        "describe-firewall-egress-firewall.json",
        "describe-vpc-endpoints.json",
        "describe-nat-gateways.json",
    }
    assert _layouts(tmp_path / "before") == {az: "firewall-after-nat" for az in AZS[:azs]}

    run = natlens("topology", "--context", tmp_path / "before", "--format", "json",
                  "--fail-on", "medium")  # fmt: skip
    assert run.code == 1, run.err
    data = run.json()
    vpc = data["vpcs"][0]
    after_nat = [f for f in vpc["findings"] if f["id"] == "firewall-after-nat"]
    assert sorted(f["availability_zone"] for f in after_nat) == list(AZS[:azs])
    for finding in after_nat:
        az = finding["availability_zone"]
        commands = [c["command"] for c in finding["remediation"]["commands"]]
        # The firewall endpoint of the same AZ, given as AWS's create-route wants it.
        assert any(f"--vpc-endpoint-id {built.endpoint[az]}" in c for c in commands)
        assert any(f"--nat-gateway-id {built.nat[az]}" in c for c in commands)
        assert f"{built.private[az]}" in finding["resources"]
    assert vpc["after"]["fixed"] and "firewall-after-nat" in vpc["after"]["fixed"]

    run_commands(ec2, [step["command"] for step in vpc["plan"]])
    collect(tmp_path / "after", ec2, nfw, built.vpc)
    assert _layouts(tmp_path / "after") == {az: "firewall-before-nat" for az in AZS[:azs]}
    left = _ids(tmp_path / "after")
    assert not left & {"firewall-after-nat", "asymmetric-return-path", "egress-bypasses-firewall",
                       "nacl-admits-unsolicited"}  # fmt: skip
    report = analyse(load_context(tmp_path / "after"))
    assert all(t.symmetric for t in report.vpcs[0].traces)
    assert natlens("topology", "--context", tmp_path / "after", "--fail-on", "low").code == 0


@pytest.mark.parametrize("azs", [1, 3])
def test_before_nat_is_recognised_as_clean(aws, tmp_path, azs) -> None:
    ec2, nfw = aws
    built = build(ec2, nfw, azs, "before-nat")
    collect(tmp_path / "ctx", ec2, nfw, built.vpc)
    assert _layouts(tmp_path / "ctx") == {az: "firewall-before-nat" for az in AZS[:azs]}
    assert not _ids(tmp_path / "ctx") & ROUTING


def test_missing_return_route_on_moto_is_asymmetric_and_fixed(aws, tmp_path) -> None:
    ec2, nfw = aws
    built = build(ec2, nfw, 2, "before-nat")
    ec2.delete_route(
        RouteTableId=built.tables["nat-us-east-1b"], DestinationCidrBlock="10.0.32.0/20"
    )
    collect(tmp_path / "ctx", ec2, nfw, built.vpc)
    report = analyse(load_context(tmp_path / "ctx"))
    found = [f for f in report.findings if f.id == "asymmetric-return-path"]
    assert [f.availability_zone for f in found] == ["us-east-1b"]
    assert [c.text() for c in found[0].commands] == [
        f"aws ec2 create-route --route-table-id {built.tables['nat-us-east-1b']} "
        f"--destination-cidr-block 10.0.32.0/20 --vpc-endpoint-id {built.endpoint['us-east-1b']}"
    ]
    run_commands(ec2, [s.command.text() for s in report.vpcs[0].plan])
    collect(tmp_path / "after", ec2, nfw, built.vpc)
    assert not _ids(tmp_path / "after") & ROUTING


def test_collect_saves_what_the_aws_cli_prints(aws, tmp_path) -> None:
    ec2, nfw = aws
    built = build(ec2, nfw, 1, "after-nat")
    build(ec2, nfw, 1, None)  # another VPC: --vpc-id keeps it out
    collect(tmp_path, ec2, nfw, built.vpc)
    subnets = json.loads((tmp_path / "describe-subnets.json").read_text())["Subnets"]
    assert {s["VpcId"] for s in subnets} == {built.vpc} and len(subnets) == 3
    tables = json.loads((tmp_path / "describe-route-tables.json").read_text())["RouteTables"]
    # docs/aws.md §7.1: a firewall endpoint comes back in GatewayId.
    assert any(r.get("GatewayId", "").startswith("vpce-") for t in tables for r in t["Routes"])
    firewall = json.loads((tmp_path / "describe-firewall-egress-firewall.json").read_text())
    assert firewall["Firewall"]["VpcId"] == built.vpc and "ResponseMetadata" not in firewall
    context = load_context(tmp_path)
    assert context.problems == [] and len(context.files) == len(list(tmp_path.glob("*.json")))


def test_collect_and_topology_through_the_cli_against_a_local_server(tmp_path, natlens) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=url)
        nfw = boto3.client("network-firewall", region_name="us-east-1", endpoint_url=url)
        built = build(ec2, nfw, 2, "after-nat")
        run = natlens("context", "collect", "--out", tmp_path / "ctx", "--vpc-id", built.vpc,
                      "--endpoint-url", url, "--region", "us-east-1")  # fmt: skip
        assert run.code == 0, run.err
        assert "describe-route-tables.json" in run.out
        live = natlens("topology", "--vpc-id", built.vpc, "--endpoint-url", url, "--format", "json")
        saved = natlens("topology", "--context", tmp_path / "ctx", "--format", "json")
        assert live.code == saved.code == 0
        assert live.json()["vpcs"] == saved.json()["vpcs"]
    finally:
        server.stop()


# -- the simulator's scenarios ------------------------------------------------------------------


def _world(placement: str | None, azs: int = 2, exposed: int = 0) -> dict[str, Any]:
    return describe(build_world(np.random.default_rng(7), azs, 2, placement, exposed))


def test_simulated_scenarios_come_out_as_their_scenario_says(tmp_path) -> None:
    after = _write(tmp_path / "after", _world("after-nat"))
    before = _write(tmp_path / "before", _world("before-nat"))
    assert "firewall-after-nat" in _ids(after)
    assert not _ids(before) & ROUTING
    # The simulator's NAT subnets keep AWS's allow-all ACL (it is why scans show ACCEPT).
    assert _ids(before) == {"nacl-admits-unsolicited"}


# -- every check: a context that triggers it, and one that does not -----------------------------


def _tables(files: dict[str, Any]) -> list[dict[str, Any]]:
    return files["describe-route-tables.json"]["RouteTables"]


def _table_with(files: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in _tables(files) if t["Tags"][0]["Value"] == name)


def _break_return_route(files: dict[str, Any]) -> None:
    nat = _table_with(files, "nat-us-east-1a")
    nat["Routes"] = [r for r in nat["Routes"] if r["DestinationCidrBlock"] != "10.0.16.0/20"]


def _bypass(files: dict[str, Any]) -> None:
    """Both directions skip the endpoint (with the return route left, it is asymmetric)."""
    _break_return_route(files)
    nat_id = files["describe-nat-gateways.json"]["NatGateways"][0]["NatGatewayId"]
    private = _table_with(files, "private-us-east-1a")
    private["Routes"][1] = {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": nat_id,
                            "Origin": "CreateRoute", "State": "active"}  # fmt: skip


def _cross_az(files: dict[str, Any]) -> None:
    nat_a = files["describe-nat-gateways.json"]["NatGateways"][0]["NatGatewayId"]
    _table_with(files, "private-us-east-1b")["Routes"][1]["NatGatewayId"] = nat_a


def _blackhole(files: dict[str, Any]) -> None:
    _table_with(files, "private-us-east-1a")["Routes"][1]["State"] = "blackhole"


def _no_ready(files: dict[str, Any]) -> None:
    states = files["describe-firewall.json"]["FirewallStatus"]["SyncStates"]
    states["us-east-1a"]["Attachment"]["Status"] = "CREATING"


def _dead_end(files: dict[str, Any]) -> None:
    """The NAT gateways' subnets lose their route to the internet gateway."""
    public = _table_with(files, "public")
    public["Routes"] = public["Routes"][:1]


def _closed_acl(files: dict[str, Any]) -> None:
    for acl in files["describe-network-acls.json"]["NetworkAcls"]:
        acl["Entries"] = [
            {
                "CidrBlock": "10.0.0.0/16",
                "Egress": False,
                "Protocol": "-1",
                "RuleAction": "allow",
                "RuleNumber": 90,
            },
            {
                "CidrBlock": "0.0.0.0/0",
                "Egress": False,
                "Protocol": "6",
                "PortRange": {"From": 1024, "To": 65535},
                "RuleAction": "allow",
                "RuleNumber": 100,
            },
            {
                "CidrBlock": "0.0.0.0/0",
                "Egress": False,
                "Protocol": "17",
                "PortRange": {"From": 1024, "To": 65535},
                "RuleAction": "allow",
                "RuleNumber": 110,
            },
            {
                "CidrBlock": "0.0.0.0/0",
                "Egress": False,
                "Protocol": "-1",
                "RuleAction": "deny",
                "RuleNumber": 32767,
            },
            {
                "CidrBlock": "0.0.0.0/0",
                "Egress": True,
                "Protocol": "-1",
                "RuleAction": "allow",
                "RuleNumber": 100,
            },
        ]


# check id -> (placement, change that triggers it) and (placement, change that does not)
CASES = {
    "firewall-after-nat": (("after-nat", None), ("before-nat", None)),
    "asymmetric-return-path": (("before-nat", _break_return_route), ("before-nat", None)),
    "egress-bypasses-firewall": (("before-nat", _bypass), ("before-nat", None)),
    "cross-az-hop": ((None, _cross_az), (None, None)),
    "blackhole-route": ((None, _blackhole), (None, None)),
    "nacl-admits-unsolicited": ((None, None), (None, _closed_acl)),
    "firewall-endpoint-not-ready": (("before-nat", _no_ready), ("before-nat", None)),
    "egress-dead-end": ((None, _dead_end), (None, None)),
}


def test_every_check_has_cases() -> None:
    assert set(CASES) == set(CHECKS)


@pytest.mark.parametrize("check", sorted(CASES))
def test_check_triggers_and_does_not(tmp_path, check) -> None:
    for name, (placement, change) in zip(("yes", "no"), CASES[check], strict=True):
        files = copy.deepcopy(_world(placement))
        if change:
            change(files)
        ids = _ids(_write(tmp_path / name, files))
        assert (check in ids) == (name == "yes"), (name, ids)


@pytest.mark.parametrize("check", ["asymmetric-return-path", "egress-bypasses-firewall",
                                   "cross-az-hop", "blackhole-route", "nacl-admits-unsolicited"])  # fmt: skip
def test_the_plan_fixes_what_it_says(tmp_path, check) -> None:
    placement, change = CASES[check][0]
    files = copy.deepcopy(_world(placement))
    if change:
        change(files)
    report = analyse(load_context(_write(tmp_path, files)))
    vpc = report.vpcs[0]
    assert vpc.plan, check
    assert check not in {f.id for f in vpc.after_findings}


def test_shared_private_table_is_split_per_az(tmp_path) -> None:
    """One private route table for both AZs (a common shortcut): the plan gives each AZ its own
    table before pointing it at its own endpoint."""
    files = _world("after-nat")
    private_b = _table_with(files, "private-us-east-1b")
    private_a = _table_with(files, "private-us-east-1a")
    private_a["Associations"] += [
        dict(a, RouteTableId=private_a["RouteTableId"]) for a in private_b["Associations"]
    ]
    _tables(files).remove(private_b)
    report = analyse(load_context(_write(tmp_path, files)))
    texts = [s.command.text() for s in report.vpcs[0].plan]
    assert any(t.startswith("RTB_PRIVATE_US_EAST_1A=$(aws ec2 create-route-table") for t in texts)
    assert any("replace-route-table-association" in t for t in texts)
    assert {row["layout"] for row in layouts(report.vpcs[0].after_traces)} == {
        "firewall-before-nat"
    }


# -- the AWS CLI's own files, and missing or damaged ones ---------------------------------------


def test_hand_written_aws_cli_files(tmp_path) -> None:
    """docs/aws.md §7 (a) written by hand as the AWS CLI prints it, with SyncStates (moto has none)
    and a prefix-list route to an S3 gateway endpoint."""
    directory = FIXTURES / "topology" / "after-nat"
    report = analyse(load_context(directory))
    vpc = report.vpcs[0]
    assert {e.az: e.source for e in vpc.vpc.endpoints.values()} == {
        "us-east-1a": "describe-firewall"
    }
    assert [r["layout"] for r in layouts(vpc.traces)] == ["firewall-after-nat"]
    s3 = analyse(load_context(directory), ("52.216.10.1",)).vpcs[0].traces
    to_s3 = next(t for t in s3 if t.destination == "52.216.10.1" and t.role == "workload")
    assert to_s3.egress.hops[-1].id == "vpce-0e5d2b1c4a3f69870"  # the gateway endpoint, not NAT


def test_missing_files_narrow_but_never_crash(tmp_path, natlens) -> None:
    files = _world("after-nat")
    only = {k: files[k] for k in ("describe-route-tables.json", "describe-subnets.json")}
    directory = _write(tmp_path / "few", only)
    run = natlens("topology", "--context", directory)
    assert run.code == 0, run.err
    assert "without describe-nat-gateways" in run.out
    assert "without describe-firewall" in run.out
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "describe-vpcs.json").write_text("{not json")
    bad = natlens("topology", "--context", tmp_path / "bad")
    assert bad.code == 2 and "describe-vpcs.json:1" in bad.err
    assert natlens("topology", "--context", directory, "--destination", "nope").code == 64


def test_formats(tmp_path, natlens) -> None:
    directory = _write(tmp_path / "ctx", _world("after-nat"))
    markdown = natlens("topology", "--context", directory, "--format", "markdown")
    assert "```mermaid" in markdown.out and "flowchart LR" in markdown.out
    assert "subgraph before" in markdown.out and "subgraph after" in markdown.out
    text = natlens("topology", "--context", directory)
    assert "firewall-after-nat" in text.out and "Before and after" in text.out
    assert "--vpc-endpoint-id vpce-" in text.out
    data = to_json(analyse(load_context(directory)))
    assert set(data) == {"summary", "context", "vpcs"}
    finding = data["vpcs"][0]["findings"][0]
    assert set(finding) == {"id", "severity", "title", "vpc_id", "availability_zone", "message",
                            "resources", "paths", "remediation"}  # fmt: skip
    assert natlens("topology", "--context", directory, "--fail-on", "high").code == 0
    assert natlens("topology", "--context", directory, "--fail-on", "medium").code == 1


def test_every_step_kind_prints_the_data_it_applies() -> None:
    """A step's command text is its action and parameters, word for word; nothing is parsed
    back from the text to apply it."""
    import shlex

    from natlens.topology import commands as aws

    steps = [
        aws.route_command("create-route", "rtb-1", "10.0.1.0/24", "vpc-endpoint", "vpce-1", "a"),
        aws.route_command(
            "replace-route",
            aws.ShellVar("RTB_A"),
            "::/0",
            "egress-only-internet-gateway",
            "eigw-1",
            "b",
        ),
        aws.delete_route("rtb-1", "pl-0123", "c"),
        aws.AssociateRouteTable(table="rtb-1", gateway="igw-1", why="d"),
        aws.ReplaceRouteTableAssociation(association="rtbassoc-1", table="rtb-2", why="e"),
        aws.acl_entry("acl-1", 90, "tcp", "deny", "0.0.0.0/0", (0, 1023), "f"),
    ]
    for step in steps:
        data = step.to_json()
        words = shlex.split(data["command"].replace("$RTB_A", "RTB_A"))
        assert words[:3] == ["aws", "ec2", data["action"]]
        options = words[3:]
        for name, value in data["parameters"].items():
            at = options.index(f"--{name}")
            assert value == "true" or options[at + 1] == value.replace("$RTB_A", "RTB_A")
        assert len([w for w in options if w.startswith("--")]) == len(data["parameters"])
    created = aws.create_route_table("vpc-1", "RTB_NEW", "g")
    assert created.text().startswith("RTB_NEW=$(aws ec2 create-route-table --vpc-id vpc-1")
    assert created.to_json()["resource"] == "vpc-1"
