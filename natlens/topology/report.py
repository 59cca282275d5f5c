"""The topology report: per VPC, the traced paths, the layout of each AZ, the findings, and one
remediation plan that natlens has checked by applying it to the model and tracing again."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from natlens.formats.describe_json import Context
from natlens.topology.catalog import SEVERITIES
from natlens.topology.checks import CHECKS, Finding, View
from natlens.topology.commands import Command
from natlens.topology.network import Vpc, vpcs
from natlens.topology.trace import DEFAULT_DESTINATIONS, Trace, trace_all

# Which finding's commands the plan takes first: a removed target before anything else, then
# the layout, then symmetry, then what is left.
PLAN_ORDER = (
    "blackhole-route",
    "firewall-after-nat",
    "asymmetric-return-path",
    "egress-bypasses-firewall",
    "cross-az-hop",
    "nacl-admits-unsolicited",
)
MAX_PLAN_ROUNDS = 24

# describe-* kind -> what natlens cannot say without it.
NEEDED = {
    "vpcs": ("describe-vpcs", "the VPC's CIDRs (local routes, network ACL fixes)"),
    "subnets": ("describe-subnets", "subnets and their AZs: nothing can be traced"),
    "route_tables": ("describe-route-tables", "routes: nothing can be traced"),
    "nat_gateways": ("describe-nat-gateways", "which subnet each NAT gateway is in"),
    "interfaces": ("describe-network-interfaces", "what lives in each subnet"),
    "network_acls": (
        "describe-network-acls",
        "whether the NAT subnet's ACL admits unsolicited packets",
    ),
    "internet_gateways": ("describe-internet-gateways", "the internet gateway's id for new routes"),
    "firewalls": ("describe-firewall", "firewall endpoints' AZs, subnets and status"),
}


@dataclass
class PlanStep:
    finding: str
    availability_zone: str | None
    command: Command


@dataclass
class VpcReport:
    vpc: Vpc
    traces: list[Trace]
    findings: list[Finding]
    plan: list[PlanStep] = field(default_factory=list)
    plan_notes: list[str] = field(default_factory=list)
    after_traces: list[Trace] = field(default_factory=list)
    after_findings: list[Finding] = field(default_factory=list)


@dataclass
class TopologyReport:
    vpcs: list[VpcReport]
    context_files: list[str]
    missing: list[tuple[str, str]]
    problems: list[str]

    @property
    def findings(self) -> list[Finding]:
        return [f for v in self.vpcs for f in v.findings]

    def at_or_above(self, severity: str) -> list[Finding]:
        floor = SEVERITIES.index(severity)
        return [f for f in self.findings if SEVERITIES.index(f.severity) >= floor]


def run_checks(vpc: Vpc, traces: list[Trace]) -> list[Finding]:
    view = View(vpc, traces)
    findings = [f for check in CHECKS.values() for f in check.run(view)]
    return sorted(
        findings,
        key=lambda f: (-SEVERITIES.index(f.severity), f.id, f.availability_zone or "", f.resources),
    )


def analyse(
    context: Context,
    destinations: tuple[str, ...] = (),
    vpc_id: str | None = None,
) -> TopologyReport:
    wanted = tuple(dict.fromkeys((*DEFAULT_DESTINATIONS, *destinations)))
    reports = []
    for vpc in vpcs(context, vpc_id):
        traces = trace_all(vpc, wanted)
        report = VpcReport(vpc, traces, run_checks(vpc, traces))
        _plan(report, wanted)
        reports.append(report)
    known = {k for r in reports for k in r.vpc.known}
    missing = [NEEDED[k] for k in NEEDED if k not in known]
    if not any(r.vpc.endpoints for r in reports):
        # No route names a firewall endpoint: describe-firewall would add nothing.
        missing = [m for m in missing if m[0] != "describe-firewall"]
    return TopologyReport(reports, list(context.files), missing, [str(p) for p in context.problems])


def _plan(report: VpcReport, destinations: tuple[str, ...]) -> None:
    """Take the commands of one finding at a time, in PLAN_ORDER, apply them to a copy of the
    model, and check again: the plan ends when no finding left has commands."""
    model = copy.deepcopy(report.vpc)
    variables: dict[str, str] = {}
    findings, taken = report.findings, set()
    traces = report.traces
    for _ in range(MAX_PLAN_ROUNDS):
        ready = [
            f
            for f in findings
            if f.commands and f.id in PLAN_ORDER and (f.id, tuple(f.resources)) not in taken
        ]
        if not ready:
            break
        chosen = min(ready, key=lambda f: (PLAN_ORDER.index(f.id), f.availability_zone or ""))
        taken.add((chosen.id, tuple(chosen.resources)))
        for command in chosen.commands:
            command.apply(model, variables)
            report.plan.append(PlanStep(chosen.id, chosen.availability_zone, command))
        report.plan_notes += [f"{chosen.id}: {n}" for n in chosen.notes]
        traces = trace_all(model, destinations)
        findings = run_checks(model, traces)
    report.after_traces = traces
    report.after_findings = findings


def layouts(traces: list[Trace]) -> list[dict[str, Any]]:
    """Per AZ: how its workload subnets reach the internet (docs/aws.md §7 (a) is
    firewall-after-nat, (b) firewall-before-nat)."""
    by_az: dict[str, dict[str, list[str]]] = {}
    for t in traces:
        if t.destination == "0.0.0.0/0" and t.role == "workload":
            by_az.setdefault(t.az or "", {}).setdefault(t.layout, []).append(t.subnet)
    return [
        {
            "availability_zone": az or None,
            "layout": next(iter(found)) if len(found) == 1 else "mixed",
            "subnets": {layout: subnets for layout, subnets in sorted(found.items())},
        }
        for az, found in sorted(by_az.items())
    ]


def representative(traces: list[Trace]) -> list[Trace]:
    """One workload subnet per AZ and layout, to the internet: what the diagrams draw."""
    seen, chosen = set(), []
    for t in traces:
        key = (t.az, t.layout, t.symmetric)
        if t.destination == "0.0.0.0/0" and t.role == "workload" and key not in seen:
            seen.add(key)
            chosen.append(t)
    return chosen


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "severity": f.severity,
        "title": f.title,
        "vpc_id": f.vpc_id,
        "availability_zone": f.availability_zone,
        "message": f.message,
        "resources": f.resources,
        "paths": [t.to_json() for t in f.paths],
        "remediation": {
            "commands": [c.to_json() for c in f.commands],
            "notes": f.notes,
            "after": f.after,
        },
    }


def to_json(report: TopologyReport) -> dict[str, Any]:
    """The whole report as plain data: what the renderers draw and ``--format json`` prints."""
    vpcs_out = []
    for v in report.vpcs:
        left = {f.id for f in v.after_findings}
        after_paths = [t.to_json() for t in representative(v.after_traces)]
        vpcs_out.append({
            "vpc_id": v.vpc.id,
            "cidrs": v.vpc.cidrs,
            "internet_gateways": v.vpc.internet_gateways,
            "firewalls": sorted({str(e.firewall) for e in v.vpc.endpoints.values() if e.firewall}),
            "firewall_endpoints": [
                {"endpoint_id": e.id, "firewall": e.firewall, "availability_zone": e.az,
                 "subnet_id": e.subnet_id, "status": e.status, "known_from": e.source}
                for e in sorted(v.vpc.endpoints.values(), key=lambda e: e.id)
            ],
            "layouts": layouts(v.traces),
            "paths": [t.to_json() for t in v.traces],
            "findings": [finding_json(f) for f in v.findings],
            "plan": [
                {"finding": s.finding, "availability_zone": s.availability_zone,
                 **s.command.to_json()}
                for s in v.plan
            ],
            "plan_notes": v.plan_notes,
            "after": {
                "layouts": layouts(v.after_traces),
                "paths": after_paths,
                "findings": sorted(left),
                "fixed": sorted({f.id for f in v.findings} - left),
            },
            "diagram": {
                "before": [t.to_json() for t in representative(v.traces)],
                "after": after_paths,
            },
        })  # fmt: skip
    findings = report.findings
    return {
        "summary": {
            "vpcs": len(report.vpcs),
            "findings": len(findings),
            "by_severity": {
                s: sum(f.severity == s for f in findings)
                for s in reversed(SEVERITIES)
                if any(f.severity == s for f in findings)
            },
        },
        "context": {
            "files": report.context_files,
            "missing": [{"file": f, "without_it": why} for f, why in report.missing],
            "problems": report.problems,
        },
        "vpcs": vpcs_out,
    }
