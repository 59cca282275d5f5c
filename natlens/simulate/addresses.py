"""Internet addresses for the simulated traffic, and the table that turns indexes into text."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

from natlens.simulate.kinds import (
    FAMILIES,
)
from natlens.simulate.scenarios import Scenario
from natlens.simulate.world import World


@dataclass
class Addresses:
    """Public addresses of the internet side, by role."""

    servers: list[str]
    server_weights: np.ndarray
    scanners: list[str]
    clients: list[str]
    family: list[str]  # aws-shapes: each family's own internet hosts, FAMILY_POOL apiece
    family_v6: list[str]


FAMILY_POOL = 40


def internet_v6_addresses(rng: np.random.Generator, count: int) -> list[str]:
    """Distinct global unicast IPv6 addresses in 2000::/3, none of the VPC's."""
    out: list[str] = []
    while len(out) < count:
        high = (0x2A00 + int(rng.integers(0, 0x500))) << 112
        value = high | int(rng.integers(1, 1 << 62)) << 40 | int(rng.integers(1, 1 << 40))
        address = ipaddress.IPv6Address(value)
        if address.is_global and str(address) not in out:
            out.append(str(address))
    return out


def internet_addresses(rng: np.random.Generator, count: int) -> list[str]:
    """Distinct public IPv4 addresses: nothing private, shared, loopback, multicast or reserved."""
    out: list[str] = []
    seen: set[int] = set()
    while len(out) < count:
        value = int(rng.integers(1 << 24, 224 << 24))
        address = ipaddress.IPv4Address(value)
        if value in seen or not address.is_global or address.is_multicast:
            continue
        if str(address).startswith(("54.210.", "3.84.")):  # the world's own public addresses
            continue
        seen.add(value)
        out.append(str(address))
    return out


def make_addresses(rng: np.random.Generator, scenario: Scenario) -> Addresses:
    servers = internet_addresses(rng, 400)
    weights = 1.0 / np.arange(1, len(servers) + 1) ** 0.9  # a few popular destinations
    scanners = internet_addresses(rng, 150)
    clients = internet_addresses(rng, 60)
    family: list[str] = []
    family_v6: list[str] = []
    if scenario.families:
        taken = set(servers + scanners + clients)
        while len(family) < FAMILY_POOL * len(FAMILIES):
            family += [a for a in internet_addresses(rng, FAMILY_POOL) if a not in taken]
            taken.update(family)
        family = family[: FAMILY_POOL * len(FAMILIES)]
        family_v6 = internet_v6_addresses(rng, FAMILY_POOL)
    return Addresses(servers, weights / weights.sum(), scanners, clients, family, family_v6)


@dataclass
class AddressTable:
    """Every address the logs can name, once: world addresses first, then the internet's."""

    values: list[str]
    server: np.ndarray
    scanner: np.ndarray
    client: np.ndarray
    instance: np.ndarray  # per world.instances: private IP
    nat: np.ndarray  # per world.nats: private IP
    endpoint_of_az: dict[str, int]
    family: np.ndarray  # aws-shapes: FAMILY_POOL hosts per family
    family_v6: np.ndarray
    instance6: np.ndarray  # per world.instances: IPv6 address, -1 if none
    lb: np.ndarray  # per world.load_balancers: private IP

    @classmethod
    def build(cls, world: World, addresses: Addresses) -> AddressTable:
        values: list[str] = []

        def add(items: list[str]) -> np.ndarray:
            first = len(values)
            values.extend(items)
            return np.arange(first, len(values), dtype=np.int64)

        instance = add([i.eni.private_ip for i in world.instances])
        nat = add([n.eni.private_ip for n in world.nats])
        endpoints = add([e.eni.private_ip for e in world.endpoints])
        endpoint_of_az = {
            e.eni.subnet.az: int(k) for e, k in zip(world.endpoints, endpoints, strict=True)
        }
        server, scanner, client = (
            add(addresses.servers), add(addresses.scanners), add(addresses.clients)
        )  # fmt: skip
        family, family_v6 = add(addresses.family), add(addresses.family_v6)
        with_v6 = [i for i in world.instances if i.eni.ipv6]
        v6 = iter(add([str(i.eni.ipv6) for i in with_v6]))
        instance6 = np.array([next(v6) if i.eni.ipv6 else -1 for i in world.instances])
        lb = add([b.eni.private_ip for b in world.load_balancers])
        return cls(
            values, server, scanner, client, instance, nat, endpoint_of_az,
            family, family_v6, instance6.astype(np.int64), lb,
        )  # fmt: skip
