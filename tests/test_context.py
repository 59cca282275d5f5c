"""The VPC model from describe-* JSON: by content, merged, damaged files reported."""

from __future__ import annotations

import json
import shutil

from natlens.formats.describe_json import load_context
from natlens.simulate.run import SimulateOptions, simulate
from tests.conftest import FIXTURES


def test_simulated_context(tmp_path) -> None:
    simulate(tmp_path / "w", SimulateOptions("fw-after-nat", minutes=5))
    context = load_context(tmp_path / "w" / "context")
    assert context.problems == []
    assert context.vpc_cidrs() == ["10.0.0.0/16"]
    nats = context.nat_gateway_addresses()
    assert [(n["private_ip"], n["public_ip"], n["availability_zone"]) for n in nats] == [
        ("10.0.0.100", "54.210.10.10", "us-east-1a"),
        ("10.0.1.101", "54.210.10.11", "us-east-1b"),
    ]
    assert len(context.instance_interfaces()) == 8
    endpoints = context.firewall_endpoints()
    assert [e["availability_zone"] for e in endpoints] == ["us-east-1a", "us-east-1b"]
    assert all(e["endpoint_id"].startswith("vpce-") for e in endpoints)
    assert len(context.flow_logs) == 1


def test_aws_cli_example_with_two_addresses_on_one_interface() -> None:
    """docs/aws.md §4: a NAT gateway with a secondary address on the same ENI."""
    context = load_context(FIXTURES / "context")
    rows = context.nat_gateway_addresses()
    assert [(r["private_ip"], r["public_ip"], r["is_primary"]) for r in rows] == [
        ("10.0.0.211", "54.85.121.213", True),
        ("10.0.0.74", "3.211.231.218", False),
    ]
    assert {r["interface_id"] for r in rows} == {"eni-09cc4b2558794f7f9"}


def test_nat_gateways_from_interfaces_alone(tmp_path) -> None:
    simulate(tmp_path / "w", SimulateOptions("nat-basic", minutes=5))
    (tmp_path / "w" / "context" / "describe-nat-gateways.json").unlink()
    rows = load_context(tmp_path / "w" / "context").nat_gateway_addresses()
    assert [r["private_ip"] for r in rows] == ["10.0.0.100", "10.0.1.101"]
    assert all(r["nat_gateway_id"].startswith("nat-") for r in rows)


def test_damaged_and_paged_files(tmp_path) -> None:
    simulate(tmp_path / "w", SimulateOptions("nat-basic", minutes=5))
    folder = tmp_path / "mine"
    shutil.copytree(tmp_path / "w" / "context", folder)
    subnets = json.loads((folder / "describe-subnets.json").read_text())["Subnets"]
    # Saved as two pages (one overlapping), under names of the user's choosing.
    (folder / "describe-subnets.json").unlink()
    (folder / "page1.json").write_text(json.dumps({"Subnets": subnets[:3], "NextToken": "x"}))
    (folder / "page2.json").write_text(json.dumps({"Subnets": subnets[2:]}))
    (folder / "broken.json").write_text('{"Vpcs": [')
    context = load_context(folder)
    assert len(context.subnets) == len(subnets)
    assert [p.reason for p in context.problems] == ["bad-json"]
    assert "broken.json" in str(context.problems[0])
    assert context.vpc_cidrs() == ["10.0.0.0/16"]


def test_missing_directory_is_reported(tmp_path) -> None:
    context = load_context(tmp_path / "nowhere")
    assert context.problems and context.problems[0].reason == "unreadable"
    assert context.nat_gateway_addresses() == []
