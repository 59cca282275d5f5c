"""Topology checks: each a pure function of one VPC's routing model and its traced paths,
registered by id with its severity and title. A finding carries the resources, the traced paths
that show it and, where natlens can write it, the remediation as AWS CLI commands."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from natlens.topology.catalog import CATALOG
from natlens.topology.commands import Command
from natlens.topology.nacl import (
    EPHEMERAL,
    acl_of,
    admitted,
    internet_sources,
    nacl_plan,
)
from natlens.topology.network import NetworkAcl, Vpc
from natlens.topology.plans import Planner, endpoint_in, firewall_before_nat, inspect_direct, nat_in
from natlens.topology.trace import Trace
from natlens.vocabulary import Layout, Role, Severity, Target


@dataclass
class Finding:
    id: str
    severity: Severity
    title: str
    vpc_id: str
    message: str
    resources: list[str]
    availability_zone: str | None = None
    paths: list[Trace] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    after: str | None = None  # what the logs will show once the commands have run


@dataclass
class View:
    vpc: Vpc
    traces: list[Trace]

    def internet(self, role: str | None = "workload") -> list[Trace]:
        """The traces to the default IPv4 route (the internet), of subnets with this role."""
        return [
            t
            for t in self.traces
            if t.destination == "0.0.0.0/0" and (role is None or t.role == role)
        ]

    def gateway(self) -> str | None:
        return self.vpc.internet_gateways[0] if self.vpc.internet_gateways else None


@dataclass(frozen=True)
class Check:
    id: str
    severity: Severity  # the highest severity its findings can have
    title: str
    run: Callable[[View], list[Finding]]


CHECKS: dict[str, Check] = {}
_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def check(
    identity: str,
) -> Callable[[Callable[[View], list[Finding]]], Callable[[View], list[Finding]]]:
    """Register a check under its id in ``catalog.CATALOG`` (which gives its severity and
    title); ids are checked when the module loads, so a typo cannot ship."""

    def register(run: Callable[[View], list[Finding]]) -> Callable[[View], list[Finding]]:
        if not _ID.match(identity) or identity in CHECKS or identity not in CATALOG:
            raise ValueError(f"bad topology check registration: {identity}")
        severity, title = CATALOG[identity]
        CHECKS[identity] = Check(identity, severity, title, run)
        return run

    return register


def _finding(
    view: View,
    identity: str,
    message: str,
    resources: list[str],
    availability_zone: str | None = None,
    paths: list[Trace] | None = None,
    planner: Planner | None = None,
    after: str | None = None,
    severity: Severity | None = None,
    notes: list[str] | None = None,
) -> Finding:
    """A finding of a registered check, with the commands and notes its planner wrote."""
    meta = CHECKS[identity]
    return Finding(
        identity,
        severity or meta.severity,
        meta.title,
        view.vpc.id,
        message,
        sorted(dict.fromkeys(r for r in resources if r)),
        availability_zone,
        paths or [],
        planner.commands if planner else [],
        (planner.notes if planner else []) + (notes or []),
        after,
    )


def _by_az(traces: list[Trace]) -> dict[str | None, list[Trace]]:
    groups: dict[str | None, list[Trace]] = {}
    for t in traces:
        groups.setdefault(t.az, []).append(t)
    return groups


def _hop(t: Trace, kind: str) -> str | None:
    return next((h.id for h in t.egress.hops if h.kind == kind), None)


AFTER_MOVE = (
    "Network Firewall alert and flow logs name the instances' private addresses instead of the "
    "NAT gateway's, so rules and alerts match instances (natlens attribute reports method "
    "source-address). The firewall endpoint's subnet now logs flows to the NAT gateway; the NAT "
    "gateway's flow logs are unchanged. Connections open during the change are reset: run the "
    "commands together, in a maintenance window."
)


@check("firewall-after-nat")
def firewall_after_nat(view: View) -> list[Finding]:
    findings = []
    for az, traces in sorted(_by_az(view.internet()).items(), key=lambda i: str(i[0])):
        after = [t for t in traces if t.layout == Layout.FIREWALL_AFTER_NAT]
        if not after:
            continue
        nat_id, endpoint_id = (
            _hop(after[0], Target.NAT_GATEWAY),
            _hop(after[0], Target.FIREWALL_ENDPOINT),
        )
        subnets = [t.subnet for t in after]
        planner = Planner(view.vpc)
        nat = nat_in(view.vpc, az) or view.vpc.nat_gateways.get(nat_id or "")
        endpoint = endpoint_in(view.vpc, az) or view.vpc.endpoints.get(endpoint_id or "")
        if nat and endpoint and view.gateway() and az:
            firewall_before_nat(planner, az, subnets, nat, endpoint, str(view.gateway()))
        message = (
            f"{', '.join(subnets)} {'reach' if len(subnets) > 1 else 'reaches'} the internet "
            f"through {nat_id} and then {endpoint_id}: "
            "the firewall sees traffic after address translation, so its alerts and flow logs "
            "name the NAT gateway's address, not the instance. Rules that match instance "
            "addresses never fire. Move the firewall endpoint in front of the NAT gateway."
        )
        findings.append(
            _finding(
                view,
                "firewall-after-nat",
                message,
                [*subnets, str(nat_id), str(endpoint_id)],
                availability_zone=az,
                paths=after,
                planner=planner,
                after=AFTER_MOVE,
            )
        )
    return findings


@check("asymmetric-return-path")
def asymmetric_return_path(view: View) -> list[Finding]:
    findings = []
    broken = [t for t in view.traces if t.back is not None and not t.symmetric]
    groups: dict[tuple[object, ...], list[Trace]] = {}
    for t in broken:
        key = (
            t.az,
            t.destination,
            tuple(sorted(map(str, t.egress_endpoints))),
            tuple(sorted(map(str, t.return_endpoints))),
            _hop(t, Target.NAT_GATEWAY),
        )
        groups.setdefault(key, []).append(t)
    for traces in groups.values():
        first = traces[0]
        az, destination, nat_id = first.az, first.destination, _hop(first, Target.NAT_GATEWAY)
        only_out = sorted({e for e, _ in first.egress_endpoints - first.return_endpoints})
        only_back = sorted({e for e, _ in first.return_endpoints - first.egress_endpoints})
        subnets = [t.subnet for t in traces]
        parts = []
        if only_out:
            parts.append(f"traffic out passes {', '.join(only_out)} but the replies do not")
        if only_back:
            parts.append(f"replies pass {', '.join(only_back)} but the traffic out does not")
        message = (
            f"{', '.join(subnets)} → {destination}: {'; '.join(parts)}. Network Firewall does not "
            "support asymmetric routing (AWS): its stateful engine sees half of each connection, "
            "so stateful rules drop or misjudge it."
        )
        planner = Planner(view.vpc)
        _symmetric_plan(view, planner, first.az, subnets, first, nat_id)
        findings.append(
            _finding(
                view,
                "asymmetric-return-path",
                message,
                [*subnets, *only_out, *only_back, str(nat_id or "")],
                availability_zone=az,
                paths=traces,
                planner=planner,
                after="Both directions of each connection pass the same "
                "firewall endpoint: its flow log shows both, and stateful "
                "rules see whole connections.",
            )
        )
    return findings


def _symmetric_plan(
    view: View,
    planner: Planner,
    az: str | None,
    subnets: list[str],
    first: Trace,
    nat_id: str | None,
) -> None:
    vpc, gateway = view.vpc, view.gateway()
    nat = vpc.nat_gateways.get(nat_id or "")
    sides = {side for _, side in first.egress_endpoints | first.return_endpoints}
    if gateway is None or az is None:
        planner.notes.append("the internet gateway or the AZ is unknown: no commands")
        return
    if nat and "outside" not in sides:
        endpoint = endpoint_in(vpc, az) or next(
            (vpc.endpoints[e] for e, _ in first.egress_endpoints | first.return_endpoints), None
        )
        if endpoint:
            firewall_before_nat(planner, az, subnets, nat, endpoint, gateway)
        return
    if nat:
        # The firewall sits after the NAT gateway: the replies to the NAT gateway's subnet need
        # the edge route to the same endpoint (firewall-after-nat says how to move it).
        nat_subnet = vpc.subnets.get(nat.subnet_id or "")
        endpoint_id = next((e for e, s in first.egress_endpoints if s == "outside"), None)
        if nat_subnet and nat_subnet.cidr and endpoint_id:
            planner.ensure_route(
                planner.edge_table(gateway),
                nat_subnet.cidr,
                Target.VPC_ENDPOINT,
                endpoint_id,
                f"replies to {nat.id} pass {endpoint_id}",
            )
        else:
            planner.notes.append(
                "route the replies through the endpoint the traffic out "
                "passes, or the traffic out through the one the replies pass"
            )
        return
    endpoint = next((vpc.endpoints[e] for e, _ in first.egress_endpoints), None) or endpoint_in(
        vpc, az
    )
    for subnet in subnets:
        if endpoint:
            inspect_direct(planner, subnet, endpoint, gateway)


@check("egress-bypasses-firewall")
def egress_bypasses_firewall(view: View) -> list[Finding]:
    if not view.vpc.endpoints:
        return []
    findings = []
    residents = view.vpc.residents
    for t in view.internet(None):
        if t.role == "firewall" or t.egress.outcome != "internet" or t.egress_endpoints:
            continue
        living = [role for _, role in residents.get(t.subnet, [])]
        if t.role == "nat" and all(r == Role.NAT_GATEWAY for r in living):
            continue  # only NAT gateways live here: what they forward was inspected before
        if t.back and t.return_endpoints:
            continue  # asymmetric-return-path covers it
        planner = Planner(view.vpc)
        nat_id = _hop(t, Target.NAT_GATEWAY)
        endpoint = endpoint_in(view.vpc, t.az)
        nat = view.vpc.nat_gateways.get(nat_id or "")
        gateway = view.gateway()
        if endpoint and gateway and t.az:
            if nat:
                firewall_before_nat(
                    planner, t.az, [t.subnet], nat_in(view.vpc, t.az) or nat, endpoint, gateway
                )
            else:
                inspect_direct(planner, t.subnet, endpoint, gateway)
        else:
            planner.notes.append(
                f"no firewall endpoint in {t.az}: add a firewall subnet there "
                "(aws network-firewall associate-subnets) first"
            )
        who = f" ({len(living)} interfaces live there)" if living else ""
        via = f" through {nat_id}" if nat_id else " directly"
        message = (
            f"{t.subnet}{who} reaches the internet{via} without passing a firewall endpoint, "
            "although this VPC has a firewall: nothing inspects or logs its traffic."
        )
        findings.append(
            _finding(
                view,
                "egress-bypasses-firewall",
                message,
                [t.subnet, nat_id or ""],
                availability_zone=t.az,
                paths=[t],
                planner=planner,
                after="The firewall's flow log shows this subnet's connections, "
                "and its rules apply to them.",
            )
        )
    return findings


@check("cross-az-hop")
def cross_az_hop(view: View) -> list[Finding]:
    findings = []
    for t in view.internet(None):
        hops = [
            h
            for h in t.egress.hops + (t.back.hops if t.back else [])
            if h.kind in (Target.NAT_GATEWAY, Target.FIREWALL_ENDPOINT)
            and h.az
            and t.az
            and h.az != t.az
        ]
        if not hops or t.role == "firewall":
            continue
        others = sorted({f"{h.id} ({h.az})" for h in hops})
        planner = Planner(view.vpc)
        nat, endpoint, gateway = nat_in(view.vpc, t.az), endpoint_in(view.vpc, t.az), view.gateway()
        if t.layout == Layout.NAT_ONLY and nat:
            table = planner.own_table([t.subnet], f"private {t.az}")
            planner.ensure_route(
                table,
                "0.0.0.0/0",
                Target.NAT_GATEWAY,
                nat.id,
                f"{t.subnet} uses the NAT gateway in its own AZ",
            )
        elif t.layout == Layout.FIREWALL_BEFORE_NAT and nat and endpoint and gateway and t.az:
            firewall_before_nat(planner, t.az, [t.subnet], nat, endpoint, gateway)
        else:
            planner.notes.append(
                f"create a NAT gateway or firewall endpoint in {t.az}, then route the subnet to it"
            )
        message = (
            f"{t.subnet} in {t.az} reaches the internet through {', '.join(others)}: traffic "
            "crosses AZs (charged per GB, and lost when that AZ fails); AWS routes each AZ to its "
            "own NAT gateway and firewall endpoint."
        )
        findings.append(
            _finding(
                view,
                "cross-az-hop",
                message,
                [t.subnet, *[h.id for h in hops]],
                availability_zone=t.az,
                paths=[t],
                planner=planner,
                after="Flow logs of the NAT gateway and firewall endpoint in "
                "the subnet's own AZ show its traffic.",
            )
        )
    return findings


@check("blackhole-route")
def blackhole_route(view: View) -> list[Finding]:
    findings = []
    traced = {
        (h.route_table, h.route)
        for t in view.traces
        for h in t.egress.hops
        if h.kind == Target.BLACKHOLE
    }
    for table in sorted(view.vpc.route_tables.values(), key=lambda t: t.id):
        for route in table.routes:
            if route.state != "blackhole":
                continue
            azs = {view.vpc.subnet_az(s) for s in table.subnets}
            az = next(iter(azs)) if len(azs) == 1 else None
            planner = Planner(view.vpc)
            table_now = planner.vpc.route_tables[table.id]
            nat, endpoint = nat_in(view.vpc, az), endpoint_in(view.vpc, az)
            if route.target_kind == Target.NAT_GATEWAY and nat:
                planner.ensure_route(
                    table_now,
                    route.destination,
                    Target.NAT_GATEWAY,
                    nat.id,
                    f"the NAT gateway in {az} instead of {route.target}",
                )
            elif route.target_kind == Target.VPC_ENDPOINT and endpoint:
                planner.ensure_route(
                    table_now,
                    route.destination,
                    Target.VPC_ENDPOINT,
                    endpoint.id,
                    f"the firewall endpoint in {az} instead of {route.target}",
                )
            else:
                planner.drop_route(
                    table_now,
                    route.destination,
                    "the traffic then follows the next longest matching route",
                )
            used = (table.id, route.destination) in traced
            users = ", ".join(table.subnets) or (
                "the subnets without an association" if table.main else "no subnet"
            )
            message = (
                f"{table.id} sends {route.destination} to {route.target}, which is gone "
                f"(State blackhole): traffic from {users} to it is dropped."
            )
            findings.append(
                _finding(
                    view,
                    "blackhole-route",
                    message,
                    [table.id, route.target, *table.subnets],
                    severity=Severity.HIGH if used else Severity.MEDIUM,
                    availability_zone=az,
                    paths=[
                        t
                        for t in view.traces
                        if any(
                            h.kind == Target.BLACKHOLE and h.route_table == table.id
                            for h in t.egress.hops
                        )
                    ],
                    planner=planner,
                    after="Flow logs show the traffic leaving again.",
                )
            )
    return findings


@check("nacl-admits-unsolicited")
def nacl_admits_unsolicited(view: View) -> list[Finding]:
    findings = []
    vpc = view.vpc
    by_acl: dict[str, tuple[NetworkAcl, list[str]]] = {}
    for subnet in sorted(vpc.subnets_of("nat")):
        acl = acl_of(vpc, subnet)
        if acl is not None and any(
            n.subnet_id == subnet and n.connectivity == "public" for n in vpc.nat_gateways.values()
        ):
            by_acl.setdefault(acl.id, (acl, []))[1].append(subnet)
    for acl, subnets in by_acl.values():
        public = [n for n in vpc.nat_gateways.values() if n.subnet_id in subnets]
        opened: dict[str, list[tuple[int, int, int]]] = {}
        for source in internet_sources(acl, vpc):
            for protocol, name in (("6", "tcp"), ("17", "udp")):
                ranges = admitted(acl, source, protocol)
                if ranges:
                    opened.setdefault(name, ranges)
        if not opened:
            continue
        shown = "; ".join(
            f"{name} {', '.join(f'{a}-{b} (rule {n})' for a, b, n in r[:4])}"
            for name, r in opened.items()
        )
        planner = Planner(vpc)
        nacl_plan(planner, acl, vpc, opened)
        residents = [
            eni
            for s in subnets
            for eni, role in vpc.residents.get(s, [])
            if role != Role.NAT_GATEWAY
        ]
        if residents:
            planner.notes.append(
                f"{', '.join(subnets)} also hold {', '.join(residents)}: allow "
                "their listening ports before the deny rules, or move them"
            )
        azs = {vpc.subnet_az(s) for s in subnets}
        message = (
            f"{acl.id} on {', '.join(subnets)} (NAT gateway "
            f"{', '.join(n.id for n in public)}) admits "
            f"internet packets to ports below {EPHEMERAL[0]}: {shown}. A NAT gateway never "
            "accepts connections from the internet: it drops them, but flow logs record them as "
            "ACCEPT because the network ACL let them in. Replies need only "
            f"ports {EPHEMERAL[0]}-{EPHEMERAL[1]}."
        )
        findings.append(
            _finding(
                view,
                "nacl-admits-unsolicited",
                message,
                [acl.id, *subnets, *(n.id for n in public)],
                availability_zone=next(iter(azs)) if len(azs) == 1 else None,
                planner=planner,
                after="Unsolicited packets to the NAT gateway's low ports are "
                "logged REJECT instead of ACCEPT; natlens inbound still calls "
                "their senders unsolicited. Packets to ports 1024-65535 are "
                "still ACCEPT in the logs and dropped by the NAT gateway.",
            )
        )
    return findings


@check("firewall-endpoint-not-ready")
def firewall_endpoint_not_ready(view: View) -> list[Finding]:
    findings = []
    for endpoint in sorted(view.vpc.endpoints.values(), key=lambda e: e.id):
        states = {endpoint.status, endpoint.firewall_status} - {None, "READY"}
        if not states:
            continue
        message = (
            f"{endpoint.id} of firewall {endpoint.firewall} in {endpoint.az} is "
            f"{', '.join(sorted(map(str, states)))}: traffic routed to it may be dropped."
        )
        findings.append(
            _finding(
                view,
                "firewall-endpoint-not-ready",
                message,
                [endpoint.id],
                availability_zone=endpoint.az,
                notes=[
                    "aws network-firewall describe-firewall --firewall-name "
                    f"{endpoint.firewall} shows the status message"
                ],
            )
        )
    return findings


@check("egress-dead-end")
def egress_dead_end(view: View) -> list[Finding]:
    findings = []
    for t in view.internet(None):
        started = len(t.egress.hops) > 1 and t.egress.hops[1].kind in (
            Target.NAT_GATEWAY,
            Target.FIREWALL_ENDPOINT,
        )
        if not started or t.egress.outcome in ("internet", Target.BLACKHOLE):
            continue
        last = t.egress.hops[-1]
        message = (
            f"{t.subnet} sends internet traffic to {t.egress.hops[1].id}, but from there "
            f"it ends in {t.egress.outcome} ({last.route_table or 'no table'}"
            f"{': ' + last.note if last.note else ''})."
        )
        findings.append(
            _finding(
                view,
                "egress-dead-end",
                message,
                [t.subnet, *(h.id for h in t.egress.hops[1:] if h.id)],
                availability_zone=t.az,
                paths=[t],
                notes=[
                    "give the last table on the path a 0.0.0.0/0 route to the "
                    "next hop (NAT gateway subnet → internet gateway)"
                ],
            )
        )
    return findings
