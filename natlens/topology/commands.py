"""Remediation steps: AWS CLI commands as data.

A step is printed as the exact ``aws ec2 …`` command a user runs, and the same step can be applied
to the routing model, so natlens traces the VPC as it will be after the change and checks that
the findings it fixes are gone before it prints the plan.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from natlens.render.terminal import visible
from natlens.topology.network import (
    AclEntry,
    NetworkAcl,
    Route,
    RouteTable,
    Vpc,
    protocol_number,
)

# create-route / replace-route: which option names which kind of target (aws-facts §7.1: a
# firewall endpoint is given with --vpc-endpoint-id although describe-route-tables prints it in
# GatewayId).
TARGET_OPTIONS = {
    "nat-gateway": "--nat-gateway-id",
    "vpc-endpoint": "--vpc-endpoint-id",
    "internet-gateway": "--gateway-id",
    "transit-gateway": "--transit-gateway-id",
    "network-interface": "--network-interface-id",
    "egress-only-internet-gateway": "--egress-only-internet-gateway-id",
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


@dataclass(frozen=True)
class Command:
    """One AWS CLI call: ``aws <args>``; ``capture`` names a shell variable that receives the
    new resource's id (``--query … --output text``)."""

    args: tuple[str, ...]
    why: str
    capture: str | None = None
    query: str | None = None

    def __post_init__(self) -> None:
        # shown after '#': no character from the context (a newline) may end the comment
        object.__setattr__(self, "why", visible(self.why))
        if self.capture is not None and not _VARIABLE.fullmatch(self.capture):
            raise ValueError(f"not a shell variable name: {self.capture!r}")

    def text(self) -> str:
        words = ["aws", *self.args]
        if self.capture:
            words += ["--query", str(self.query), "--output", "text"]
            return f"{self.capture}=$({_join(words)})"
        return _join(words)

    def option(self, name: str) -> str | None:
        args = list(self.args)
        return args[args.index(name) + 1] if name in args else None

    def to_json(self) -> dict[str, str]:
        return {"command": self.text(), "why": self.why}


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
    verb: str, table: str, destination: str, kind: str, target: str, why: str
) -> Command:
    """``create-route`` or ``replace-route`` to a target of the given kind."""
    return Command(
        (
            "ec2",
            verb,
            "--route-table-id",
            table,
            *_destination_option(destination),
            TARGET_OPTIONS[kind],
            target,
        ),
        why,
    )


def delete_route(table: str, destination: str, why: str) -> Command:
    return Command(
        ("ec2", "delete-route", "--route-table-id", table, *_destination_option(destination)), why
    )


def create_route_table(vpc: str, variable: str, why: str) -> Command:
    return Command(
        ("ec2", "create-route-table", "--vpc-id", vpc), why, variable, "RouteTable.RouteTableId"
    )


def set_subnet_table(vpc: Vpc, subnet: str, table: str, why: str) -> Command:
    """Point a subnet at a table: replace its association, or make one if it uses the main."""
    current, implicit = vpc.table_of(subnet)
    if current is not None and not implicit and current.associations.get(subnet):
        return Command(
            (
                "ec2",
                "replace-route-table-association",
                "--association-id",
                current.associations[subnet],
                "--route-table-id",
                table,
            ),
            why,
        )
    return Command(
        ("ec2", "associate-route-table", "--route-table-id", table, "--subnet-id", subnet), why
    )


def acl_entry(
    acl: str,
    number: int,
    protocol: str,
    action: str,
    cidr: str,
    ports: tuple[int, int] | None,
    why: str,
) -> Command:
    args = [
        "ec2",
        "create-network-acl-entry",
        "--network-acl-id",
        acl,
        "--ingress",
        "--rule-number",
        str(number),
        "--protocol",
        protocol,
    ]
    if ports:
        args += ["--port-range", f"From={ports[0]},To={ports[1]}"]
    args += ["--cidr-block", cidr, "--rule-action", action]
    return Command(tuple(args), why)


# -- applying a step to the model ---------------------------------------------------------------

_KIND_OF_OPTION = {option: kind for kind, option in TARGET_OPTIONS.items() if kind != "vpn-gateway"}


def apply(vpc: Vpc, command: Command, variables: dict[str, str]) -> None:
    """Change the model as the command would change the VPC (the routing calls natlens prints)."""

    def value(name: str) -> str | None:
        found = command.option(name)
        return variables.get(found[1:], found) if isinstance(found, ShellVar) else found

    verb = command.args[1]
    destination = next(
        (
            value(o)
            for o in (
                "--destination-cidr-block",
                "--destination-ipv6-cidr-block",
                "--destination-prefix-list-id",
            )
            if value(o)
        ),
        None,
    )
    table = vpc.route_tables.get(value("--route-table-id") or "")
    if verb == "create-route-table":
        identity = f"rtb-new{len(variables) + 1}"
        variables[str(command.capture)] = identity
        vpc.route_tables[identity] = RouteTable(identity, [_local(vpc)])
    elif verb in ("create-route", "replace-route") and table and destination:
        option, target = next((o, value(o)) for o in _KIND_OF_OPTION if value(o))
        kind = "internet-gateway" if str(target).startswith("igw-") else _KIND_OF_OPTION[option]
        if option == "--gateway-id" and str(target).startswith("vgw-"):
            kind = "vpn-gateway"
        table.routes = [r for r in table.routes if r.destination != destination]
        table.routes.append(Route(destination, kind, str(target), "active"))
    elif verb == "delete-route" and table and destination:
        table.routes = [r for r in table.routes if r.destination != destination]
    elif verb in ("associate-route-table", "replace-route-table-association"):
        new = vpc.route_tables[str(value("--route-table-id"))]
        subnet = value("--subnet-id")
        if verb == "replace-route-table-association":
            association = value("--association-id")
            for old in vpc.route_tables.values():
                for sub, assoc in list(old.associations.items()):
                    if assoc == association:
                        subnet = sub
                        old.subnets.remove(sub)
                        del old.associations[sub]
        if subnet:
            new.subnets.append(subnet)
            new.associations[subnet] = f"rtbassoc-new-{subnet}"
        elif value("--gateway-id"):
            new.gateways.append(str(value("--gateway-id")))
    elif verb == "create-network-acl-entry":
        _add_acl_entry(vpc, command, value)


def _local(vpc: Vpc) -> Route:
    return Route(vpc.cidrs[0] if vpc.cidrs else "0.0.0.0/32", "local", "local", "active")


def _add_acl_entry(vpc: Vpc, command: Command, get: Callable[[str], str | None]) -> None:
    ports = None
    port_range = get("--port-range")
    if port_range:
        bounds = dict(p.split("=") for p in port_range.split(","))
        ports = (int(bounds["From"]), int(bounds["To"]))
    protocol = str(get("--protocol"))
    entry = AclEntry(
        int(str(get("--rule-number"))),
        "--egress" in command.args,
        protocol_number(protocol),
        str(get("--rule-action")),
        get("--cidr-block"),
        ports,
    )
    for index, acl in enumerate(vpc.network_acls):
        if acl.id == get("--network-acl-id"):
            entries = tuple(sorted((*acl.entries, entry), key=lambda e: e.number))
            vpc.network_acls[index] = NetworkAcl(acl.id, acl.default, acl.subnets, entries)
