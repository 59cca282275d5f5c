"""``natlens context collect``: save the VPC's describe-* JSON with read-only calls.

Each call's pages are merged into one file shaped as the AWS CLI prints it (``describe-subnets
--output json`` gives the same top-level key), so the directory can be mixed with files a user
saved by hand. A call that fails (no permission, a service not in the region) is reported and
the others are still saved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from natlens.sources.aws import describe_error

# file name -> (EC2 operation, result key, filter name for the VPC or None)
EC2_CALLS = (
    ("describe-vpcs.json", "describe_vpcs", "Vpcs", "vpc-id"),
    ("describe-subnets.json", "describe_subnets", "Subnets", "vpc-id"),
    ("describe-route-tables.json", "describe_route_tables", "RouteTables", "vpc-id"),
    ("describe-nat-gateways.json", "describe_nat_gateways", "NatGateways", "vpc-id"),
    ("describe-network-interfaces.json", "describe_network_interfaces", "NetworkInterfaces",
     "vpc-id"),
    ("describe-network-acls.json", "describe_network_acls", "NetworkAcls", "vpc-id"),
    ("describe-internet-gateways.json", "describe_internet_gateways", "InternetGateways",
     "attachment.vpc-id"),
    ("describe-instances.json", "describe_instances", "Reservations", "vpc-id"),
    ("describe-vpc-endpoints.json", "describe_vpc_endpoints", "VpcEndpoints", "vpc-id"),
    # security groups are stateful: what they admit decides who could have opened a connection
    ("describe-security-groups.json", "describe_security_groups", "SecurityGroups", "vpc-id"),
    ("describe-flow-logs.json", "describe_flow_logs", "FlowLogs", None),
)  # fmt: skip


@dataclass
class Collected:
    directory: str
    files: dict[str, int] = field(default_factory=dict)  # file -> items saved
    failures: dict[str, str] = field(default_factory=dict)  # call -> why it failed

    def to_json(self) -> dict[str, Any]:
        return {"directory": self.directory, "files": self.files, "failures": self.failures}


def _pages(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    if client.can_paginate(operation):
        for page in client.get_paginator(operation).paginate(**params):
            items += page.get(key, [])
    else:
        items = getattr(client, operation)(**params).get(key, [])
    return items


def _save(directory: Path, name: str, document: dict[str, Any]) -> None:
    # default=str: CreateTime and other timestamps come back from boto3 as datetimes.
    text = json.dumps(document, indent=2, default=str)
    (directory / name).write_text(text + "\n", encoding="utf-8")


def collect(
    out: str | Path, ec2: Any, firewall: Any | None, vpc_id: str | None = None
) -> Collected:
    """Save every describe-* the topology needs, for one VPC or every VPC the credentials see."""
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    done = Collected(str(directory))
    vpc_ids: set[str] = {vpc_id} if vpc_id else set()
    route_prefix_lists: set[str] = set()
    for name, operation, key, filter_name in EC2_CALLS:
        params: dict[str, Any] = {}
        # These two take "Filter", the others "Filters" (the EC2 API's own spelling).
        option = (
            "Filter" if operation in ("describe_nat_gateways", "describe_flow_logs") else "Filters"
        )
        if vpc_id:
            params[option] = [{"Name": filter_name or "resource-id", "Values": [vpc_id]}]
        try:
            items = _pages(ec2, operation, key, **params)
        except Exception as exc:  # botocore errors: no permission, throttled, unknown region
            done.failures[operation.replace("_", "-")] = describe_error(exc)
            continue
        if operation == "describe_vpcs":
            vpc_ids |= {v["VpcId"] for v in items if "VpcId" in v}
        if operation == "describe_route_tables":
            route_prefix_lists = {
                r["DestinationPrefixListId"]
                for t in items
                for r in t.get("Routes", [])
                if r.get("DestinationPrefixListId")
            }
        _save(directory, name, {key: items})
        done.files[name] = len(items)
    for prefix_list in sorted(route_prefix_lists):
        name = f"get-managed-prefix-list-entries-{prefix_list}.json"
        try:
            entries = _pages(ec2, "get_managed_prefix_list_entries", "Entries",
                             PrefixListId=prefix_list)  # fmt: skip
        except Exception as exc:
            done.failures[f"get-managed-prefix-list-entries {prefix_list}"] = describe_error(exc)
            continue
        # The CLI prints Entries only; natlens adds the id so the file speaks for itself.
        _save(directory, name, {"PrefixListId": prefix_list, "Entries": entries})
        done.files[name] = len(entries)
    if firewall is not None:
        _collect_firewalls(directory, firewall, sorted(vpc_ids), done)
    return done


def _collect_firewalls(directory: Path, client: Any, vpc_ids: list[str], done: Collected) -> None:
    try:
        params = {"VpcIds": vpc_ids} if vpc_ids else {}
        listed = _pages(client, "list_firewalls", "Firewalls", **params)
    except Exception as exc:
        done.failures["network-firewall list-firewalls"] = describe_error(exc)
        return
    for item in listed:
        arn = item.get("FirewallArn")
        try:
            described = client.describe_firewall(FirewallArn=arn)
        except Exception as exc:
            done.failures[f"network-firewall describe-firewall {arn}"] = describe_error(exc)
            continue
        described.pop("ResponseMetadata", None)
        if vpc_ids and (described.get("Firewall") or {}).get("VpcId") not in vpc_ids:
            continue
        name = str(item.get("FirewallName") or arn).replace("/", "_")
        _save(directory, f"describe-firewall-{name}.json", described)
        done.files[f"describe-firewall-{name}.json"] = 1
