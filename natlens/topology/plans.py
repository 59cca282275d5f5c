"""Route changes as plans: each step is emitted against a scratch copy of the VPC model and
applied to it at once, so every later step sees the routing as it will be by then, and a plan
never asks for a change that is already in place."""

from __future__ import annotations

import copy

from natlens.topology import commands as aws
from natlens.topology.commands import Command
from natlens.topology.network import FirewallEndpoint, NatGateway, RouteTable, Vpc
from natlens.vocabulary import Target


class Planner:
    def __init__(self, vpc: Vpc) -> None:
        self.vpc = copy.deepcopy(vpc)
        self.commands: list[Command] = []
        self.notes: list[str] = []
        self.variables: dict[str, str] = {}  # shell variable -> the model's id for the new table

    def emit(self, command: Command) -> None:
        self.commands.append(command)
        command.apply(self.vpc, self.variables)

    def ref(self, table: RouteTable) -> str:
        """How a command names a table: its id, or $VARIABLE for one the plan creates."""
        for variable, identity in self.variables.items():
            if identity == table.id:
                return aws.ShellVar(variable)
        return table.id

    # -- the building blocks ----------------------------------------------------------------

    def ensure_route(
        self, table: RouteTable, destination: str, kind: Target, target: str, why: str
    ) -> None:
        current = next((r for r in table.routes if r.destination == destination), None)
        if current and current.target == target and current.state != "blackhole":
            return
        verb = "replace-route" if current else "create-route"
        self.emit(aws.route_command(verb, self.ref(table), destination, kind, target, why))

    def drop_route(self, table: RouteTable, destination: str, why: str) -> None:
        if any(r.destination == destination for r in table.routes):
            self.emit(aws.delete_route(self.ref(table), destination, why))

    def own_table(self, subnets: list[str], label: str) -> RouteTable:
        """A route table only ``subnets`` use: theirs if they are its only users, else a new
        table with the same routes, associated with them (changing a shared table or the main
        one would move other subnets too)."""
        uses = [self.vpc.table_of(s) for s in subnets]
        tables = {t.id: t for t, _ in uses if t}
        implicit = any(by_default for _, by_default in uses)
        if len(tables) == 1 and not implicit:
            table = next(iter(tables.values()))
            if set(table.subnets) <= set(subnets) and not table.main and not table.gateways:
                return table
        source = next(iter(tables.values()), None)
        variable = (
            "RTB_" + "".join(c if c.isascii() and c.isalnum() else "_" for c in label.upper())[:40]
        )
        while variable in self.variables:
            variable += "_2"
        self.emit(
            aws.create_route_table(
                self.vpc.id,
                variable,
                f"a route table of its own for {label} ({', '.join(subnets)})",
            )
        )
        table = self.vpc.route_tables[self.variables[variable]]
        copied, origin = (source.routes, source.id) if source else ([], "")
        for route in copied:
            if route.target_kind in aws.TARGET_OPTIONS and route.state == "active":
                self.emit(
                    aws.route_command(
                        "create-route",
                        aws.ShellVar(variable),
                        route.destination,
                        route.target_kind,
                        route.target,
                        f"copy {route.destination} from {origin}",
                    )
                )
        for subnet in subnets:
            self.emit(
                aws.set_subnet_table(
                    self.vpc, subnet, aws.ShellVar(variable), f"{subnet} uses the new table"
                )
            )
        return table

    def edge_table(self, gateway: str) -> RouteTable:
        table = self.vpc.edge_table(gateway)
        if table:
            return table
        variable = "RTB_IGW_EDGE"
        self.emit(
            aws.create_route_table(
                self.vpc.id, variable, "an edge route table for the internet gateway"
            )
        )
        self.emit(
            aws.AssociateRouteTable(
                table=aws.ShellVar(variable),
                gateway=gateway,
                why="route what the internet gateway receives by this table",
            )
        )
        return self.vpc.route_tables[self.variables[variable]]


def nat_in(vpc: Vpc, az: str | None) -> NatGateway | None:
    return next(
        (
            n
            for n in sorted(vpc.nat_gateways.values(), key=lambda n: n.id)
            if vpc.subnet_az(n.subnet_id) == az
            and n.state in (None, "available")
            and n.connectivity == "public"
        ),
        None,
    )


def endpoint_in(vpc: Vpc, az: str | None) -> FirewallEndpoint | None:
    return next(
        (
            e
            for e in sorted(vpc.endpoints.values(), key=lambda e: e.id)
            if (e.az or vpc.subnet_az(e.subnet_id)) == az and e.subnet_id
        ),
        None,
    )


def firewall_before_nat(
    planner: Planner,
    az: str,
    subnets: list[str],
    nat: NatGateway,
    endpoint: FirewallEndpoint,
    gateway: str,
) -> None:
    """Make ``subnets`` (all in ``az``) reach the internet through ``endpoint`` then ``nat``,
    and the replies come back the same way (docs/aws.md §7 (b)). The order keeps traffic flowing:
    the NAT gateway's subnet goes straight to the internet gateway and the edge route to the
    firewall goes, before the firewall subnet is pointed at the NAT gateway; the return route
    comes just before the private subnets' default route, so the two are asymmetric for
    seconds only."""
    vpc = planner.vpc
    nat_table = vpc.table_of(nat.subnet_id or "")[0]
    firewall_table = vpc.table_of(endpoint.subnet_id or "")[0]
    nat_subnet = vpc.subnets.get(nat.subnet_id or "")
    if nat_table is None or firewall_table is None or nat_subnet is None:
        planner.notes.append(
            f"{az}: the route tables of {nat.id} or {endpoint.id} are not in "
            "the context; natlens cannot write the commands"
        )
        return
    planner.ensure_route(
        nat_table,
        "0.0.0.0/0",
        Target.INTERNET_GATEWAY,
        gateway,
        f"{nat.id}'s subnet sends to the internet gateway directly",
    )
    edge = vpc.edge_table(gateway)
    if edge and nat_subnet.cidr:
        for route in list(edge.routes):
            if route.destination == nat_subnet.cidr and route.target_kind == Target.VPC_ENDPOINT:
                planner.drop_route(
                    edge,
                    route.destination,
                    "replies to the NAT gateway no longer "
                    "pass the firewall after it (the firewall now sees them "
                    "before the NAT gateway, on the way to the instance)",
                )
    others = [s for s in firewall_table.subnets if vpc.subnet_az(s) != az]
    if others or firewall_table.main:
        firewall_table = planner.own_table([endpoint.subnet_id or ""], f"firewall {az}")
    planner.ensure_route(
        firewall_table,
        "0.0.0.0/0",
        Target.NAT_GATEWAY,
        nat.id,
        f"the firewall endpoint {endpoint.id} forwards to {nat.id}",
    )
    for subnet in subnets:
        cidr = vpc.subnets[subnet].cidr
        if cidr:
            planner.ensure_route(
                nat_table,
                cidr,
                Target.VPC_ENDPOINT,
                endpoint.id,
                f"replies from {nat.id} to {subnet} pass {endpoint.id} (a route more specific "
                "than local: without it the firewall sees one direction only)",
            )
    private = planner.own_table(subnets, f"private {az}")
    planner.ensure_route(
        private,
        "0.0.0.0/0",
        Target.VPC_ENDPOINT,
        endpoint.id,
        f"{', '.join(subnets)} send to the firewall endpoint in {az} first",
    )


def inspect_direct(planner: Planner, subnet: str, endpoint: FirewallEndpoint, gateway: str) -> None:
    """A subnet whose instances have public addresses: through the endpoint both ways, with an
    edge route for the replies (the firewall subnet must route to the internet gateway)."""
    vpc = planner.vpc
    firewall_table = vpc.table_of(endpoint.subnet_id or "")[0]
    default = (
        next((r for r in firewall_table.routes if r.destination == "0.0.0.0/0"), None)
        if firewall_table
        else None
    )
    if default is None or default.target != gateway:
        planner.notes.append(
            f"{subnet}: {endpoint.id}'s subnet does not route to the internet gateway, so it "
            "cannot inspect a subnet with public addresses; give that traffic a firewall subnet "
            "of its own that does"
        )
        return
    cidr = vpc.subnets[subnet].cidr
    if not cidr:
        return
    table = planner.own_table([subnet], f"public {subnet}")
    edge = planner.edge_table(gateway)
    planner.ensure_route(
        edge,
        cidr,
        Target.VPC_ENDPOINT,
        endpoint.id,
        f"what the internet sends to {subnet} passes {endpoint.id}",
    )
    planner.ensure_route(
        table,
        "0.0.0.0/0",
        Target.VPC_ENDPOINT,
        endpoint.id,
        f"{subnet} sends to the internet through {endpoint.id}",
    )
