"""Connections: who talks to whom, when, how much. This is the ground truth everything else is
rendered from.

Connections are generated a time slice at a time as numpy arrays (one row per connection), so any
number of them streams through in constant memory.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

from natlens.simulate.scenarios import APPS, Scenario
from natlens.simulate.world import World

# Kinds of connection.
EGRESS = 0  # a private instance to the internet, through its AZ's NAT gateway
SCAN = 1  # an internet host to a NAT gateway's public address, unsolicited: dropped there
EXPOSED_IN = 2  # an internet host to an instance with a public IP
EXPOSED_OUT = 3  # an instance with a public IP to the internet, through the internet gateway
KIND_NAMES = ("egress", "scan", "exposed-inbound", "exposed-outbound")

# Variants of a TCP connection's life.
NORMAL, LONG, SHORT, IDLE_RST, BLOCKED = range(5)
VARIANT_NAMES = ("normal", "long-lived", "short", "idle-timeout", "blocked")

# aws-facts §4: a NAT gateway times a connection out after 350 s idle and answers the next
# packet from inside with RST.
NAT_IDLE_TIMEOUT = 350
SCAN_PORTS = np.array([22, 23, 80, 443, 445, 3389, 5900, 8080, 8443, 6379], dtype=np.int64)
# Ports a network ACL on the NAT gateways' subnets denies (world._nacls): logged REJECT.
DENIED_PORTS = (23,)

SIGNATURES = (
    # (signature_id, signature, category, severity, sni/host)
    (1000101, "blocked domain: paste site", "policy", 2, "paste.example-share.net"),
    (1000102, "blocked domain: crypto miner pool", "coin-mining", 1, "pool.mine-fast.io"),
    (1000103, "alert: unapproved file sharing", "policy", 3, "files.quickdrop.app"),
)


@dataclass
class Addresses:
    """Public addresses of the internet side, by role."""

    servers: list[str]
    server_weights: np.ndarray
    scanners: list[str]
    clients: list[str]


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
    return Addresses(servers, weights / weights.sum(), scanners, clients)


@dataclass
class Batch:
    """Connections as columns. Addresses are indices into the simulation's address table."""

    id: np.ndarray
    kind: np.ndarray
    variant: np.ndarray
    app: np.ndarray  # index into APPS, -1 for scans
    protocol: np.ndarray
    instance: np.ndarray  # index into world.instances, -1 if none
    nat: np.ndarray  # index into world.nats, -1 if none
    remote: np.ndarray  # address table index of the internet host
    client_port: np.ndarray
    server_port: np.ndarray
    nat_port: np.ndarray  # the NAT gateway's translated source port (1024-65535), 0 if none
    start: np.ndarray
    end: np.ndarray  # last packet of the main exchange
    tail: np.ndarray  # idle-timeout: when the instance tries again and gets RST (0 if none)
    request_packets: np.ndarray
    response_packets: np.ndarray
    request_size: np.ndarray
    response_size: np.ndarray
    rejected: np.ndarray  # a network ACL denied it (REJECT at the first interface)
    signature: np.ndarray  # index into SIGNATURES, -1 if no alert
    hard_group: np.ndarray  # hard-case group number, -1 if none

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def concat(cls, parts: list[Batch]) -> Batch:
        return cls(
            **{
                name: np.concatenate([getattr(p, name) for p in parts])
                for name in cls.__dataclass_fields__
            }
        )

    def take(self, rows: np.ndarray) -> Batch:
        return Batch(**{name: getattr(self, name)[rows] for name in self.__dataclass_fields__})


class TrafficGenerator:
    def __init__(
        self,
        rng: np.random.Generator,
        scenario: Scenario,
        world: World,
        table: AddressTable,
        addresses: Addresses,
        interval: int,
        scale: float = 1.0,
    ) -> None:
        self.rng, self.scenario, self.world = rng, scenario, world
        self.table, self.addresses, self.interval, self.scale = table, addresses, interval, scale
        self.next_id = 1
        self.nat_ports = {i: 1024 for i in range(len(world.nats))}
        self.private = [i for i, inst in enumerate(world.instances) if not inst.exposed]
        self.exposed = [i for i, inst in enumerate(world.instances) if inst.exposed]
        self.nat_of_instance = np.array(
            [
                next(k for k, n in enumerate(world.nats) if n.eni.subnet.az == inst.eni.subnet.az)
                for inst in world.instances
            ]
        )
        weights = np.array([a.weight for a in APPS])
        self.app_weights = weights / weights.sum()
        self.hard_groups_left = scenario.hard_cases
        self.hard_group_number = 0

    # -- generation ----------------------------------------------------------------------------

    def slice(self, begin: int, seconds: int) -> Batch:
        """Every connection that starts in [begin, begin + seconds)."""
        s = self.scenario
        minutes = seconds / 60
        parts = [
            self._egress(
                begin, seconds, self._count(s.egress_per_instance * len(self.private) * minutes)
            ),
            self._scans(begin, seconds, self._count(s.scans * minutes)),
        ]
        if self.exposed:
            parts.append(self._exposed_in(begin, seconds, self._count(s.exposed_inbound * minutes)))
            parts.append(self._exposed_out(begin, seconds, self._count(s.exposed_egress * minutes)))
        if self.hard_groups_left and self.scenario.firewall:
            parts.append(self._hard_case(begin, seconds))
        batch = Batch.concat([p for p in parts if p is not None])
        order = np.argsort(batch.start, kind="stable")
        batch = batch.take(order)
        batch.id = np.arange(self.next_id, self.next_id + len(batch), dtype=np.int64)
        self.next_id += len(batch)
        return batch

    def _count(self, mean: float) -> int:
        return int(self.rng.poisson(mean * self.scale))

    def _base(self, n: int, kind: int, begin: int, seconds: int) -> dict[str, np.ndarray]:
        rng = self.rng
        minus_one = np.full(n, -1, dtype=np.int64)
        zero = np.zeros(n, dtype=np.int64)
        return {
            "id": zero.copy(),
            "kind": np.full(n, kind, dtype=np.int64),
            "variant": np.full(n, NORMAL, dtype=np.int64),
            "app": minus_one.copy(),
            "protocol": np.full(n, 6, dtype=np.int64),
            "instance": minus_one.copy(),
            "nat": minus_one.copy(),
            "remote": zero.copy(),
            # Linux picks client ports from 32768-60999 (peers.md B10).
            "client_port": rng.integers(32768, 61000, n),
            "server_port": zero.copy(),
            "nat_port": zero.copy(),
            "start": begin + rng.integers(0, seconds, n),
            "end": zero.copy(),
            "tail": zero.copy(),
            "request_packets": zero.copy(),
            "response_packets": zero.copy(),
            "request_size": zero.copy(),
            "response_size": zero.copy(),
            "rejected": np.zeros(n, dtype=bool),
            "signature": minus_one.copy(),
            "hard_group": minus_one.copy(),
        }

    def _exchange(self, c: dict[str, np.ndarray], apps: np.ndarray) -> None:
        """Sizes and durations from each connection's app, and the life of TCP connections."""
        rng, s, n = self.rng, self.scenario, len(apps)
        table = np.array(
            [
                [
                    a.protocol,
                    a.port,
                    a.request_packets,
                    a.response_packets,
                    a.request_size,
                    a.response_size,
                    a.seconds,
                ]
                for a in APPS
            ]
        )
        row = table[apps]
        c["app"] = apps.astype(np.int64)
        c["protocol"] = row[:, 0].astype(np.int64)
        c["server_port"] = row[:, 1].astype(np.int64)
        c["request_packets"] = np.maximum(1, rng.poisson(row[:, 2])).astype(np.int64)
        c["response_packets"] = np.maximum(1, rng.poisson(row[:, 3])).astype(np.int64)
        c["request_size"] = np.maximum(40, rng.normal(row[:, 4], row[:, 4] * 0.2)).astype(np.int64)
        c["response_size"] = np.maximum(40, rng.normal(row[:, 5], row[:, 5] * 0.2)).astype(np.int64)
        duration = rng.exponential(row[:, 6]).astype(np.int64)
        icmp = c["protocol"] == 1
        c["client_port"][icmp] = 0  # aws-facts §11.6: ICMP records carry ports 0
        # An echo reply answers each echo request, the same size: never more replies than
        # requests.
        c["response_packets"][icmp] = c["request_packets"][icmp]
        c["response_size"][icmp] = c["request_size"][icmp]
        tcp = c["protocol"] == 6
        u = rng.random(n)
        variant = np.full(n, NORMAL)
        variant[tcp & (u < s.long_lived)] = LONG
        variant[tcp & (u >= s.long_lived) & (u < s.long_lived + s.idle_timeout)] = IDLE_RST
        cut = s.long_lived + s.idle_timeout
        variant[tcp & (u >= cut) & (u < cut + s.short)] = SHORT
        long = variant == LONG
        duration[long] = rng.integers(20 * 60, 90 * 60, long.sum())
        c["request_packets"][long] *= 30
        c["response_packets"][long] *= 40
        short = variant == SHORT
        duration[short] = rng.integers(0, 3, short.sum())
        # Keep a short connection inside one capture window: SYN and FIN share its record.
        window_end = (c["start"] // self.interval + 1) * self.interval - 1
        c["start"] = np.where(short, np.minimum(c["start"], window_end - duration), c["start"])
        c["end"] = c["start"] + duration
        idle = variant == IDLE_RST
        c["tail"][idle] = c["end"][idle] + NAT_IDLE_TIMEOUT + rng.integers(5, 240, idle.sum())
        c["variant"] = variant

    def _egress(self, begin: int, seconds: int, n: int) -> Batch | None:
        if n == 0 or not self.private:
            return None
        rng, s = self.rng, self.scenario
        c = self._base(n, EGRESS, begin, seconds)
        c["instance"] = rng.choice(self.private, n)
        c["nat"] = self.nat_of_instance[c["instance"]]
        server = rng.choice(len(self.addresses.servers), n, p=self.addresses.server_weights)
        c["remote"] = self.table.server[server]
        self._exchange(c, rng.choice(len(APPS), n, p=self.app_weights))
        c["nat_port"] = self._nat_ports(c["nat"], c["protocol"])
        if s.firewall:
            tls_or_http = (c["protocol"] == 6) & np.isin(c["server_port"], (80, 443))
            u = rng.random(n)
            blocked = tls_or_http & (u < s.blocked)
            alerted = tls_or_http & (u >= s.blocked) & (u < s.blocked + s.alerted)
            c["signature"][blocked] = rng.integers(0, 2, blocked.sum())
            c["signature"][alerted] = 2
            c["variant"][blocked] = BLOCKED
            # A dropped SYN is sent again a few times, and nothing comes back.
            c["request_packets"][blocked] = rng.integers(2, 5, blocked.sum())
            c["response_packets"][blocked] = 0
            c["end"][blocked] = c["start"][blocked] + rng.integers(1, 8, blocked.sum())
            c["tail"][blocked] = 0
        return Batch(**c)

    def _nat_ports(self, nats: np.ndarray, protocol: np.ndarray) -> np.ndarray:
        """A NAT gateway's source port for each connection: 1024-65535 (aws-facts §4)."""
        ports = np.zeros(len(nats), dtype=np.int64)
        for nat in np.unique(nats):
            rows = np.flatnonzero(nats == nat)
            first = self.nat_ports[int(nat)]
            ports[rows] = 1024 + (first - 1024 + np.arange(len(rows)) * 7919) % 64512
            self.nat_ports[int(nat)] = int(1024 + (first - 1024 + len(rows) * 7919) % 64512)
        ports[protocol == 1] = 0
        return ports

    def _scans(self, begin: int, seconds: int, n: int) -> Batch | None:
        if n == 0:
            return None
        rng, s = self.rng, self.scenario
        c = self._base(n, SCAN, begin, seconds)
        c["nat"] = rng.integers(0, len(self.world.nats), n)
        scanner = rng.integers(0, len(self.addresses.scanners), n)
        c["remote"] = self.table.scanner[scanner]
        # A few of the popular servers also probe the NAT gateways: their verdict is mixed.
        mixed = rng.random(n) < 0.05
        c["remote"][mixed] = self.table.server[
            rng.integers(0, max(1, s.mixed_servers), mixed.sum())
        ]
        kind = rng.random(n)
        c["protocol"] = np.where(kind < 0.8, 6, np.where(kind < 0.93, 17, 1))
        c["server_port"] = np.where(
            c["protocol"] == 17, 161, SCAN_PORTS[rng.integers(0, len(SCAN_PORTS), n)]
        )
        icmp = c["protocol"] == 1
        c["server_port"][icmp] = 0
        c["client_port"] = np.where(icmp, 0, rng.integers(1024, 65536, n))
        c["request_packets"] = rng.integers(1, 3, n)
        c["request_size"] = np.where(icmp, 84, np.where(c["protocol"] == 6, 44, 60))
        c["end"] = c["start"] + (c["request_packets"] - 1)
        c["rejected"] = (c["protocol"] == 6) & np.isin(c["server_port"], DENIED_PORTS)
        return Batch(**c)

    def _exposed_in(self, begin: int, seconds: int, n: int) -> Batch | None:
        if n == 0:
            return None
        rng = self.rng
        c = self._base(n, EXPOSED_IN, begin, seconds)
        c["instance"] = rng.choice(self.exposed, n)
        c["remote"] = self.table.client[rng.integers(0, len(self.addresses.clients), n)]
        ssh = rng.random(n) < 0.4
        apps = np.where(ssh, 5, 0)  # git-ssh-like sizes for SSH, https otherwise
        self._exchange(c, apps)
        c["client_port"] = rng.integers(49152, 65536, n)  # clients of all kinds
        return Batch(**c)

    def _exposed_out(self, begin: int, seconds: int, n: int) -> Batch | None:
        if n == 0:
            return None
        rng = self.rng
        c = self._base(n, EXPOSED_OUT, begin, seconds)
        c["instance"] = rng.choice(self.exposed, n)
        c["remote"] = self.table.server[
            rng.choice(len(self.addresses.servers), n, p=self.addresses.server_weights)
        ]
        self._exchange(c, rng.choice(len(APPS), n, p=self.app_weights))
        return Batch(**c)

    def _hard_case(self, begin: int, seconds: int) -> Batch | None:
        """Several instances behind one NAT gateway hit an alerting destination in the same
        second: without pkt-* fields the alert cannot be pinned on one of them."""
        candidates = [i for i in self.private if self.nat_of_instance[i] == 0]
        if len(candidates) < 2:
            return None
        rng = self.rng
        k = min(len(candidates), 3)
        c = self._base(k, EGRESS, begin, seconds)
        c["instance"] = np.array(rng.choice(candidates, k, replace=False))
        c["nat"] = self.nat_of_instance[c["instance"]]
        c["remote"] = np.full(
            k, self.table.server[len(self.addresses.servers) - 1 - self.hard_group_number]
        )
        self._exchange(c, np.zeros(k, dtype=np.int64))  # https
        # One job run by a fleet: the same request and the same answer, so that nothing in the
        # records (times, packets, bytes) tells the connections apart.
        for name in ("request_packets", "response_packets", "request_size", "response_size"):
            c[name][:] = c[name][0]
        c["variant"][:] = NORMAL
        c["start"][:] = begin + seconds // 2
        c["end"] = c["start"] + int(rng.integers(2, 6))
        c["tail"][:] = 0
        c["nat_port"] = self._nat_ports(c["nat"], c["protocol"])
        c["signature"][:] = 2
        c["hard_group"][:] = self.hard_group_number
        self.hard_group_number += 1
        self.hard_groups_left -= 1
        return Batch(**c)


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
        return cls(
            values,
            add(addresses.servers),
            add(addresses.scanners),
            add(addresses.clients),
            instance,
            nat,
            endpoint_of_az,
        )
