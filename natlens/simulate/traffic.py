"""Connections: who talks to whom, when, how much. This is the ground truth everything else is
rendered from.

Connections are generated a time slice at a time as numpy arrays (one row per connection), so any
number of them streams through in constant memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from natlens.simulate.addresses import (
    FAMILY_POOL,
    Addresses,
    AddressTable,
)
from natlens.simulate.kinds import (
    BACKSCATTER,
    BACKSCATTER_RST,
    BLOCKED,
    DENIED_PORTS,
    EGRESS,
    EXPOSED_IN,
    EXPOSED_OUT,
    FAMILY,
    ICMP_PROTOCOLS,
    IDLE_RST,
    KIND_FAMILY,
    LB_IN,
    LONG,
    NAT_IDLE_TIMEOUT,
    NORMAL,
    PROBE,
    SCAN,
    SCAN_PORTS,
    SHORT,
)
from natlens.simulate.scenarios import APPS, Scenario
from natlens.simulate.world import World

HTTPS, HTTP, DNS, NTP, PING, SSH = range(6)  # indices into APPS


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
    family: np.ndarray  # index into FAMILIES
    v6: np.ndarray  # the instance's IPv6 address is used (remote is an IPv6 host)
    lb: np.ndarray  # index into world.load_balancers, -1 if none

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
        self.exposed = [i for i, inst in enumerate(world.instances) if inst.exposed and inst.serves]
        self.outbound_only = [
            i for i, inst in enumerate(world.instances) if inst.exposed and not inst.serves
        ]
        self.with_v6 = [i for i, inst in enumerate(world.instances) if inst.eni.ipv6]
        self.started = False
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
        if s.families:
            parts += self._families(begin, seconds)
        self.started = True
        made = [p for p in parts if p is not None]
        if not made:
            # so little traffic (--records in the hundreds) that this slice has none
            made = [Batch(**self._base(0, EGRESS, begin, seconds))]
        batch = Batch.concat(made)
        order = np.argsort(batch.start, kind="stable")
        batch = batch.take(order)
        batch.id = np.arange(self.next_id, self.next_id + len(batch), dtype=np.int64)
        self.next_id += len(batch)
        return batch

    def _count(self, mean: float) -> int:
        return int(self.rng.poisson(mean * self.scale))

    def _base(
        self, n: int, kind: int, begin: int, seconds: int, family: str | None = None
    ) -> dict[str, np.ndarray]:
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
            # Linux picks client ports from 32768-60999.
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
            "family": np.full(n, FAMILY[family or KIND_FAMILY[kind]], dtype=np.int64),
            "v6": np.zeros(n, dtype=bool),
            "lb": minus_one.copy(),
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
        icmp = np.isin(c["protocol"], ICMP_PROTOCOLS)
        c["client_port"][icmp] = 0  # docs/aws.md §11.6: ICMP records carry ports 0
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
        """A NAT gateway's source port for each connection: 1024-65535 (docs/aws.md §4)."""
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

    # -- aws-shapes families (docs/simulate.md) -------------------------------------------------

    def _families(self, begin: int, seconds: int) -> list[Batch | None]:
        rate = self.scenario.families * seconds / 60
        out: list[Batch | None] = []
        if not self.started:
            out += self._pre_capture(begin, self._count(rate * 10))
        out += self._low_port_clients(begin, seconds, self._count(rate))
        out += self._udp_both_ways(begin, seconds, self._count(rate))
        out += self._icmp_both_ways(begin, seconds, self._count(rate))
        out += self._port_reuse(begin, seconds, self._count(rate / 3))
        out += self._backscatter(begin, seconds, self._count(rate))
        out += self._instance_probes(begin, seconds, self._count(rate * 2))
        out += self._load_balanced(begin, seconds, self._count(rate * 2))
        out += self._ipv6(begin, seconds, self._count(rate))
        out += self._outbound_only(begin, seconds, self._count(rate))
        return out

    def _pool(self, family: str, n: int, v6: bool = False) -> np.ndarray:
        """n internet hosts of this family's own pool (address table indices)."""
        if v6:
            return self.table.family_v6[self.rng.integers(0, len(self.table.family_v6), n)]
        first = FAMILY[family] * FAMILY_POOL
        return self.table.family[first + self.rng.integers(0, FAMILY_POOL, n)]

    def _split(self, n: int, shares: int) -> list[int]:
        return [int(k) for k in self.rng.multinomial(n, [1 / shares] * shares)]

    def _make(
        self,
        n: int,
        kind: int,
        begin: int,
        seconds: int,
        family: str,
        instances: list[int],
        app: int | np.ndarray,
        v6: bool = False,
    ) -> dict[str, np.ndarray] | None:
        """n connections of one kind from (or to) these instances, with this family's hosts."""
        if n == 0 or not instances:
            return None
        rng = self.rng
        c = self._base(n, kind, begin, seconds, family)
        c["instance"] = rng.choice(instances, n)
        c["remote"] = self._pool(family, n, v6)
        c["v6"][:] = v6
        self._exchange(c, np.broadcast_to(np.asarray(app), (n,)).copy())
        if kind == EGRESS:
            c["nat"] = self.nat_of_instance[c["instance"]]
            c["nat_port"] = self._nat_ports(c["nat"], c["protocol"])
        if kind == EXPOSED_IN:
            c["client_port"] = rng.integers(49152, 65536, n)
        return c

    @staticmethod
    def _udp(c: dict[str, np.ndarray], port: int | np.ndarray) -> None:
        """Turn connections into UDP exchanges on this server port."""
        c["protocol"][:] = 17
        c["server_port"][:] = port
        c["variant"][:] = NORMAL
        c["tail"][:] = 0

    @staticmethod
    def _batches(*parts: dict[str, np.ndarray] | None) -> list[Batch | None]:
        return [Batch(**p) if p is not None else None for p in parts]

    def _pre_capture(self, begin: int, n: int) -> list[Batch | None]:
        """Connections opened up to an hour before the capture and still open: only windows
        without SYN are logged (docs/aws.md §1.4)."""
        rng, parts = self.rng, []
        for kind, instances, k in zip(
            (EGRESS, EXPOSED_IN), (self.private, self.exposed), self._split(n, 2), strict=True
        ):
            c = self._make(
                k, kind, begin, 60, "pre-capture", instances, rng.choice([HTTPS, SSH], k)
            )
            if c is None:
                continue
            c["variant"][:] = LONG
            c["start"] = begin - rng.integers(120, 3600, k)
            c["end"] = begin + rng.integers(300, 5400, k)
            c["tail"][:] = 0
            c["request_packets"] = rng.poisson(400, k) + 1
            c["response_packets"] = rng.poisson(600, k) + 1
            parts.append(c)
        return self._batches(*parts)

    def _low_port_clients(self, begin: int, seconds: int, n: int) -> list[Batch | None]:
        """Clients behind NAT or scanners whose source port is a well-known one, to an exposed
        instance's high service ports: the port numbers point the wrong way."""
        c = self._make(n, EXPOSED_IN, begin, seconds, "low-port-clients", self.exposed, HTTPS)
        if c is None:
            return []
        rng = self.rng
        services = np.array([[8443, 6], [30080, 6], [31443, 6], [51820, 17], [1194, 17]])
        pick = services[rng.integers(0, len(services), n)]
        c["server_port"] = pick[:, 0].copy()
        c["client_port"] = rng.choice([443, 80, 53, 22, 123], n)
        udp = pick[:, 1] == 17
        c["protocol"][udp] = 17
        c["variant"][udp] = NORMAL
        c["tail"][udp] = 0
        return self._batches(c)

    def _udp_both_ways(self, begin: int, seconds: int, n: int) -> list[Batch | None]:
        ntp, quic, ntp_public, dns_served, vpn = self._split(n, 5)
        fam = "udp-both-ways"
        a = self._make(ntp, EGRESS, begin, seconds, fam, self.private, NTP)
        if a is not None:
            a["client_port"][:] = 123  # ntpd talks from port 123 (NAT translates it)
        b = self._make(quic, EGRESS, begin, seconds, fam, self.private, HTTPS)
        if b is not None:
            self._udp(b, 443)  # QUIC
            b["nat_port"] = self._nat_ports(b["nat"], b["protocol"])
        c = self._make(ntp_public, EXPOSED_OUT, begin, seconds, fam, self.outbound_only, NTP)
        if c is not None:
            c["client_port"][:] = 123  # 123 <-> 123: the ports say nothing
        d = self._make(dns_served, EXPOSED_IN, begin, seconds, fam, self.exposed, DNS)
        if d is not None:
            d["client_port"] = self.rng.integers(1024, 65536, dns_served)
        e = self._make(vpn, EXPOSED_IN, begin, seconds, fam, self.exposed, HTTPS)
        if e is not None:
            self._udp(e, 51820)  # WireGuard peers use the same port on both sides
            e["client_port"][:] = 51820
        return self._batches(a, b, c, d, e)

    def _icmp_both_ways(self, begin: int, seconds: int, n: int) -> list[Batch | None]:
        served, merged, out = self._split(n, 3)
        fam = "icmp-both-ways"
        a = self._make(served, EXPOSED_IN, begin, seconds, fam, self.exposed, PING)
        c = self._make(out, EXPOSED_OUT, begin, seconds, fam, self.outbound_only, PING)
        # A host pinging a NAT gateway (dropped there) that an instance behind that NAT
        # gateway also pings: the unsolicited echo requests and the replies share a record.
        ping = self._make(merged, EGRESS, begin, seconds, fam, self.private, PING)
        scan = None
        if ping is not None:
            scan = self._base(merged, SCAN, begin, seconds, fam)
            scan["nat"] = ping["nat"].copy()
            scan["remote"] = ping["remote"].copy()
            scan["protocol"][:] = 1
            scan["client_port"][:] = 0
            scan["start"] = ping["start"] + self.rng.integers(0, 20, merged)
            scan["request_packets"] = self.rng.integers(1, 4, merged)
            scan["request_size"][:] = 84
            scan["end"] = scan["start"] + scan["request_packets"] - 1
        return self._batches(a, c, ping, scan)

    def _port_reuse(self, begin: int, seconds: int, groups: int) -> list[Batch | None]:
        """A NAT gateway reuses a source port for the same destination once a connection is
        over: three instances in turn, one NAT port, one server."""
        candidates = [i for i in self.private if self.nat_of_instance[i] == 0]
        c = self._make(3 * groups, EGRESS, begin, seconds, "nat-port-reuse", candidates, HTTPS)
        if c is None:
            return []
        rng = self.rng
        group = np.repeat(np.arange(groups), 3)
        turn = np.tile(np.arange(3), groups)
        c["remote"] = c["remote"][group * 3]
        c["variant"][:] = NORMAL
        c["tail"][:] = 0
        duration = rng.integers(1, 20, 3 * groups)
        first = begin + rng.integers(0, max(1, seconds - 80), groups)
        c["start"] = first[group] + turn * 25
        c["end"] = c["start"] + duration
        port = self._nat_ports(np.zeros(groups, dtype=np.int64), np.full(groups, 6))
        c["nat_port"] = port[group]
        return self._batches(c)

    def _backscatter(self, begin: int, seconds: int, n: int) -> list[Batch | None]:
        """Answers to SYNs that carried a spoofed source: SYN-ACK or RST from a web server's
        port to a random high port. At a NAT gateway they are logged ACCEPT (the network ACL
        allows them) and dropped; at the exposed instance its security group rejects them."""
        rng = self.rng
        to_nat, to_instance = self._split(n, 2)
        parts = []
        for k, instance in ((to_nat, False), (to_instance, True)):
            if k == 0 or (instance and not self.exposed):
                continue
            c = self._base(k, SCAN, begin, seconds, "backscatter")
            c["remote"] = self._pool("backscatter", k)
            c["variant"] = np.where(rng.random(k) < 0.6, BACKSCATTER, BACKSCATTER_RST)
            c["client_port"] = rng.choice([80, 443], k)
            c["server_port"] = rng.integers(40000, 65536, k)
            c["request_packets"] = rng.integers(1, 3, k)
            c["request_size"][:] = 40
            c["end"] = c["start"] + c["request_packets"] - 1
            if instance:
                c["instance"] = rng.choice(self.exposed, k)
                c["rejected"][:] = True
            else:
                c["nat"] = rng.integers(0, len(self.world.nats), k)
            parts.append(c)
        return self._batches(*parts)

    def _instance_probes(self, begin: int, seconds: int, n: int) -> list[Batch | None]:
        """Scanners probing instances with public IPs: on a port the security groups admit the
        instance answers (SYN-ACK, then the scanner's RST); any other port, telnet (which the
        public subnets' network ACL denies) and the outbound-only instance are REJECT."""
        rng = self.rng
        answered, rejected = self._split(n, 2)
        fam = "instance-probes"
        a = self._make(answered, EXPOSED_IN, begin, seconds, fam, self.exposed, HTTPS)
        if a is not None:
            a["server_port"] = rng.choice([22, 443], answered)
            a["variant"][:] = PROBE
            a["tail"][:] = 0
            a["request_packets"] = rng.integers(2, 4, answered)
            a["response_packets"][:] = 1
            a["request_size"][:] = 44
            a["response_size"][:] = 44
            a["end"] = a["start"] + 1
        b = None
        targets = self.exposed + self.outbound_only
        if rejected and targets:
            b = self._base(rejected, SCAN, begin, seconds, fam)
            b["instance"] = rng.choice(targets, rejected)
            b["remote"] = self._pool(fam, rejected)
            out_only = np.isin(b["instance"], self.outbound_only)
            ports = np.array([23, 445, 3389, 5900, 6379, 8080])
            b["server_port"] = np.where(
                out_only, rng.choice([22, 443], rejected), ports[rng.integers(0, 6, rejected)]
            )
            b["protocol"] = np.where(rng.random(rejected) < 0.15, 17, 6)
            b["server_port"][b["protocol"] == 17] = 161
            b["client_port"] = rng.integers(1024, 65536, rejected)
            b["request_packets"] = rng.integers(1, 3, rejected)
            b["request_size"][:] = 44
            b["end"] = b["start"] + b["request_packets"] - 1
            b["rejected"][:] = True
        return self._batches(a, b)

    def _load_balanced(self, begin: int, seconds: int, n: int) -> list[Batch | None]:
        """Internet clients of a load balancer's listener (443), passed to a private target on
        8080: a network load balancer keeps the client's address (client IP preservation), an
        application load balancer opens its own connection from its address."""
        lbs = self.world.load_balancers
        if n == 0 or not lbs:
            return []
        rng = self.rng
        c = self._base(n, LB_IN, begin, seconds, "load-balancer")
        c["lb"] = rng.integers(0, len(lbs), n)
        c["instance"] = np.array([lbs[k].target for k in c["lb"]], dtype=np.int64)
        c["remote"] = self._pool("load-balancer", n)
        self._exchange(c, np.full(n, HTTPS))
        c["client_port"] = rng.integers(1024, 65536, n)
        c["nat_port"] = rng.integers(1024, 65536, n)  # the ALB's own source port
        return self._batches(c)

    def _ipv6(self, begin: int, seconds: int, n: int) -> list[Batch | None]:
        """IPv6: private instances out through the egress-only internet gateway (HTTPS, DNS and
        ICMPv6 pings), internet clients to the exposed instance's IPv6 address."""
        out, served, ping = self._split(n, 3)
        private6 = [i for i in self.with_v6 if i in self.private]
        exposed6 = [i for i in self.with_v6 if i in self.exposed]
        fam = "ipv6"
        apps = self.rng.choice([HTTPS, DNS], out)
        a = self._make(out, EXPOSED_OUT, begin, seconds, fam, private6, apps, v6=True)
        b = self._make(served, EXPOSED_IN, begin, seconds, fam, exposed6,
                       self.rng.choice([HTTPS, SSH], served), v6=True)  # fmt: skip
        c = self._make(ping, EXPOSED_OUT, begin, seconds, fam, private6, PING, v6=True)
        if c is not None:
            c["protocol"][:] = 58  # ICMPv6 echo
        return self._batches(a, b, c)

    def _outbound_only(self, begin: int, seconds: int, n: int) -> list[Batch | None]:
        apps = self.rng.choice(len(APPS), n, p=self.app_weights)
        return self._batches(
            self._make(n, EXPOSED_OUT, begin, seconds, "public-outbound-only",
                       self.outbound_only, apps)
        )  # fmt: skip

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
