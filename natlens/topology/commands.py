"""Remediation steps: AWS CLI commands as data.

A step is printed as the exact ``aws ec2 …`` command a user runs, and the same step can be applied
to the routing model, so natlens traces the VPC as it will be after the change and checks that
the findings it fixes are gone before it prints the plan.
"""

from __future__ import annotations

import re
import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from natlens.render.terminal import visible
from natlens.topology.network import (
    AclEntry,
    NetworkAcl,
    Route,
    RouteTable,
    Vpc,
    protocol_number,
)
from natlens.vocabulary import Target

# create-route / replace-route: which option names which kind of target (docs/aws.md §7.1: a
# firewall endpoint is given with --vpc-endpoint-id although describe-route-tables prints it in
# GatewayId).
TARGET_OPTIONS = {
    Target.NAT_GATEWAY: "--nat-gateway-id",
    Target.VPC_ENDPOINT: "--vpc-endpoint-id",
    Target.INTERNET_GATEWAY: "--gateway-id",
    "transit-gateway": "--transit-gateway-id",
    "network-interface": "--network-interface-id",
    Target.EGRESS_ONLY_INTERNET_GATEWAY: "--egress-only-internet-gateway-id",
    "peering-connection": "--vpc-peering-connection-id",
    "instance": "--instance-id",
    "local-gateway": "--local-gateway-id",
    "carrier-gateway": "--carrier-gateway-id",
    "core-network": "--core-network-arn",
    "vpn-gateway": "--gateway-id",
}


class ShellVar(str):
    """A shell variable a plan sets and later commands use (``$RTB_APP``): the only word of a
    command left unquoted. Every other word, however it starts, is quoted with ``shlex``."""

    def __new__(cls, name: str) -> ShellVar:
        if not _VARIABLE.fullmatch(name):
            raise ValueError(f"not a shell variable name: {name!r}")
        return super().__new__(cls, "$" + name)


_VARIABLE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, kw_only=True)
class Command(ABC):
    """One remediation step: an action on a resource with its parameters. It renders to the
    ``aws ec2 …`` command a user runs (``text``) and applies itself to the routing model
    (``apply``); nothing parses the command's text back."""

    why: str

    action: ClassVar[str]  # the AWS CLI verb, e.g. create-route

    def __post_init__(self) -> None:
        # shown after '#': no character from the context (a newline) may end the comment
        object.__setattr__(self, "why", visible(self.why))

    @property
    @abstractmethod
    def resource(self) -> str:
        """The resource the step changes (an id, or $VARIABLE for one the plan creates)."""

    @abstractmethod
    def options(self) -> tuple[str, ...]:
        """The command's options and their values, in the order the AWS CLI documents them."""

    @abstractmethod
    def apply(self, vpc: Vpc, variables: dict[str, str]) -> None:
        """Change the model as the command changes the VPC; ``variables`` map the plan's shell
        variables to the ids the model gave the resources it created."""

    def capture(self) -> tuple[str, str] | None:
        """The shell variable that receives a new resource's id, and the --query picking it."""
        return None

    @property
    def args(self) -> tuple[str, ...]:
        return ("ec2", self.action, *self.options())

    def text(self) -> str:
        words = ["aws", *self.args]
        captured = self.capture()
        if captured:
            variable, query = captured
            words += ["--query", query, "--output", "text"]
            return f"{variable}=$({_join(words)})"
        return _join(words)

    def parameters(self) -> dict[str, str]:
        """The options as data: ``--route-table-id rtb-1`` is ``{"route-table-id": "rtb-1"}``;
        a flag without a value is ``"true"``."""
        found: dict[str, str] = {}
        words = list(self.options())
        for index, word in enumerate(words):
            if word.startswith("--"):
                following = words[index + 1] if index + 1 < len(words) else "--"
                found[word[2:]] = "true" if following.startswith("--") else str(following)
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.text(),
            "why": self.why,
            "action": self.action,
            "resource": str(self.resource),
            "parameters": self.parameters(),
        }


def _resolve(name: str, variables: dict[str, str]) -> str:
    """A table's id in the model: a $VARIABLE is the table the plan created under that name."""
    return variables.get(name[1:], name) if isinstance(name, ShellVar) else name


def _routes_of(vpc: Vpc, table: str, variables: dict[str, str]) -> RouteTable | None:
    return vpc.route_tables.get(_resolve(table, variables))


@dataclass(frozen=True, kw_only=True)
class _RouteTo(Command):
    """A route in ``table`` for ``destination`` to a target of a given kind."""

    table: str
    destination: str
    kind: Target  # the target's kind (network.TARGET_KEYS): nat-gateway, vpc-endpoint, ...
    target: str

    @property
    def resource(self) -> str:
        return self.table

    def options(self) -> tuple[str, ...]:
        return (
            "--route-table-id",
            self.table,
            *_destination_option(self.destination),
            TARGET_OPTIONS[self.kind],
            self.target,
        )

    def apply(self, vpc: Vpc, variables: dict[str, str]) -> None:
        table = _routes_of(vpc, self.table, variables)
        if table is not None:
            table.routes = [r for r in table.routes if r.destination != self.destination]
            table.routes.append(Route(self.destination, self.kind, self.target, "active"))


@dataclass(frozen=True, kw_only=True)
class CreateRoute(_RouteTo):
    action: ClassVar[str] = "create-route"


@dataclass(frozen=True, kw_only=True)
class ReplaceRoute(_RouteTo):
    action: ClassVar[str] = "replace-route"


@dataclass(frozen=True, kw_only=True)
class DeleteRoute(Command):
    action: ClassVar[str] = "delete-route"
    table: str
    destination: str

    @property
    def resource(self) -> str:
        return self.table

    def options(self) -> tuple[str, ...]:
        return ("--route-table-id", self.table, *_destination_option(self.destination))

    def apply(self, vpc: Vpc, variables: dict[str, str]) -> None:
        table = _routes_of(vpc, self.table, variables)
        if table is not None:
            table.routes = [r for r in table.routes if r.destination != self.destination]


@dataclass(frozen=True, kw_only=True)
class CreateRouteTable(Command):
    """A new route table; its id goes to the shell variable ``variable``."""

    action: ClassVar[str] = "create-route-table"
    vpc_id: str
    variable: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _VARIABLE.fullmatch(self.variable):
            raise ValueError(f"not a shell variable name: {self.variable!r}")

    def capture(self) -> tuple[str, str] | None:
        return self.variable, "RouteTable.RouteTableId"

    @property
    def resource(self) -> str:
        return self.vpc_id

    def options(self) -> tuple[str, ...]:
        return ("--vpc-id", self.vpc_id)

    def apply(self, vpc: Vpc, variables: dict[str, str]) -> None:
        identity = f"rtb-new{len(variables) + 1}"
        variables[self.variable] = identity
        vpc.route_tables[identity] = RouteTable(identity, [_local(vpc)])


@dataclass(frozen=True, kw_only=True)
class AssociateRouteTable(Command):
    """A subnet, or a gateway (an edge association), starts using a table."""

    action: ClassVar[str] = "associate-route-table"
    table: str
    subnet: str | None = None
    gateway: str | None = None

    @property
    def resource(self) -> str:
        return self.table

    def options(self) -> tuple[str, ...]:
        if self.subnet is not None:
            return ("--route-table-id", self.table, "--subnet-id", self.subnet)
        return ("--route-table-id", self.table, "--gateway-id", str(self.gateway))

    def apply(self, vpc: Vpc, variables: dict[str, str]) -> None:
        table = vpc.route_tables[_resolve(self.table, variables)]
        if self.subnet is not None:
            _associate(table, self.subnet)
        elif self.gateway is not None:
            table.gateways.append(self.gateway)


@dataclass(frozen=True, kw_only=True)
class ReplaceRouteTableAssociation(Command):
    """A subnet's explicit association moves to another table."""

    action: ClassVar[str] = "replace-route-table-association"
    association: str
    table: str

    @property
    def resource(self) -> str:
        return self.association

    def options(self) -> tuple[str, ...]:
        return ("--association-id", self.association, "--route-table-id", self.table)

    def apply(self, vpc: Vpc, variables: dict[str, str]) -> None:
        table = vpc.route_tables[_resolve(self.table, variables)]
        for old in vpc.route_tables.values():
            for subnet, association in list(old.associations.items()):
                if association == self.association:
                    old.subnets.remove(subnet)
                    del old.associations[subnet]
                    _associate(table, subnet)


@dataclass(frozen=True, kw_only=True)
class CreateAclEntry(Command):
    """A network ACL rule (inbound unless ``egress``)."""

    action: ClassVar[str] = "create-network-acl-entry"
    acl: str
    number: int
    protocol: str  # as the AWS CLI takes it: tcp, udp, icmp, -1 or a number
    rule_action: str  # allow or deny
    cidr: str
    ports: tuple[int, int] | None = None
    egress: bool = False

    @property
    def resource(self) -> str:
        return self.acl

    def options(self) -> tuple[str, ...]:
        words = ["--network-acl-id", self.acl, "--egress" if self.egress else "--ingress",
                 "--rule-number", str(self.number), "--protocol", self.protocol]  # fmt: skip
        if self.ports:
            words += ["--port-range", f"From={self.ports[0]},To={self.ports[1]}"]
        return (*words, "--cidr-block", self.cidr, "--rule-action", self.rule_action)

    def apply(self, vpc: Vpc, variables: dict[str, str]) -> None:
        entry = AclEntry(self.number, self.egress, protocol_number(self.protocol),
                         self.rule_action, self.cidr, self.ports)  # fmt: skip
        for index, acl in enumerate(vpc.network_acls):
            if acl.id == self.acl:
                entries = tuple(sorted((*acl.entries, entry), key=lambda e: e.number))
                vpc.network_acls[index] = NetworkAcl(acl.id, acl.default, acl.subnets, entries)


def _associate(table: RouteTable, subnet: str) -> None:
    table.subnets.append(subnet)
    table.associations[subnet] = f"rtbassoc-new-{subnet}"


def _join(words: list[str]) -> str:
    # The plan's own $VARIABLES stay unquoted so the shell expands them; nothing else does.
    return " ".join(w if isinstance(w, ShellVar) else _quote(w) for w in words)


def _quote(word: str) -> str:
    """One shell word. A word with a control character (a newline would end the command, and
    the line, inside a Markdown code block) is written with ANSI-C quoting, every such
    character an escape: ``$'a\\nb'`` (bash, zsh, ksh and POSIX sh since 2024)."""
    if not _CONTROL.search(word):
        return shlex.quote(word)
    body = []
    for char in word:
        if _CONTROL.fullmatch(char) or char in "\\'":
            body.append(f"\\x{ord(char):02x}" if _CONTROL.fullmatch(char) else "\\" + char)
        else:
            body.append(char)
    return "$'" + "".join(body) + "'"


def _destination_option(destination: str) -> tuple[str, str]:
    if destination.startswith("pl-"):
        return "--destination-prefix-list-id", destination
    if ":" in destination:
        return "--destination-ipv6-cidr-block", destination
    return "--destination-cidr-block", destination


def route_command(
    verb: str, table: str, destination: str, kind: Target, target: str, why: str
) -> Command:
    """``create-route`` or ``replace-route`` to a target of the given kind."""
    kinds = {"create-route": CreateRoute, "replace-route": ReplaceRoute}
    if verb not in kinds:
        raise ValueError(f"not a route verb: {verb}")
    return kinds[verb](table=table, destination=destination, kind=kind, target=target, why=why)


def delete_route(table: str, destination: str, why: str) -> Command:
    return DeleteRoute(table=table, destination=destination, why=why)


def create_route_table(vpc: str, variable: str, why: str) -> Command:
    return CreateRouteTable(vpc_id=vpc, variable=variable, why=why)


def set_subnet_table(vpc: Vpc, subnet: str, table: str, why: str) -> Command:
    """Point a subnet at a table: replace its association, or make one if it uses the main."""
    current, implicit = vpc.table_of(subnet)
    if current is not None and not implicit and current.associations.get(subnet):
        return ReplaceRouteTableAssociation(
            association=current.associations[subnet], table=table, why=why
        )
    return AssociateRouteTable(table=table, subnet=subnet, why=why)


def acl_entry(
    acl: str,
    number: int,
    protocol: str,
    action: str,
    cidr: str,
    ports: tuple[int, int] | None,
    why: str,
) -> Command:
    return CreateAclEntry(acl=acl, number=number, protocol=protocol, rule_action=action,
                          cidr=cidr, ports=ports, why=why)  # fmt: skip


def _local(vpc: Vpc) -> Route:
    return Route(vpc.cidrs[0] if vpc.cidrs else "0.0.0.0/32", Target.LOCAL, Target.LOCAL, "active")
