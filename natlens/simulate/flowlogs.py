"""Flow log records from connections, following AWS's rules (docs/aws.md §1, §3).

One record per direction, per network interface that sees the packets, per capture window:

- the instance's interface: its own addresses (§3.6, instance ENI);
- a NAT gateway's interface, private leg: instance -> NAT private IP, the real destination only in
  pkt-dstaddr; the reply NAT private IP -> instance with the real source in pkt-srcaddr (§3.6);
- the NAT gateway's public leg: NAT private IP and its translated port (1024-65535) <-> the
  internet host (§3.6, §4);
- a firewall endpoint's interface, where the route tables send traffic through one: an "in" and an
  "out" record per direction, the endpoint's own address in dstaddr/srcaddr and the packet's in
  pkt-*. AWS documents no example for firewall endpoints; this follows its transit gateway and NAT
  gateway examples (§3.6, §3.7) for a hop that forwards packets it did not originate.

tcp-flags are OR'ed over the window (§1.4): SYN 2 in the client's first window, SYN-ACK 18 in the
server's, FIN 1 in the last, 3 and 19 when a short connection fits in one window, 0 in between,
RST 4 from a NAT gateway answering a connection it timed out. Packets and bytes are spread over
the windows by time and are the same on every interface that sees that direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import natlens.simulate.kinds as kinds
from natlens.errors import UsageError
from natlens.formats.logformat import parse_log_format
from natlens.schema import DEFAULT_FORMAT, FIELDS_BY_NAME, FLOW_FIELDS
from natlens.simulate.addresses import AddressTable
from natlens.simulate.traffic import Batch
from natlens.simulate.windows import (
    REQUEST,
    Windows,
    windows,
)
from natlens.simulate.world import ACCOUNT, REGION, World

V3_FORMAT = (
    *DEFAULT_FORMAT,
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
)
V5_FORMAT = tuple(f.name for f in FLOW_FIELDS if f.version is not None and f.version <= 5)
NAMED_FORMATS = {"default": DEFAULT_FORMAT, "v3": V3_FORMAT, "v5": V5_FORMAT}


def resolve_format(text: str) -> tuple[str, ...]:
    """A named format, or a format string of fields the simulator can write."""
    named = NAMED_FORMATS.get(text.strip())
    if named:
        return named
    if "$" not in text and len(text.split()) == 1:
        raise UsageError(
            f"--log-format {text!r}: not a named format",
            hint=f"one of {', '.join(NAMED_FORMATS)}, or a format string: "
            "'${version} ${srcaddr} ${dstaddr} ...'",
        )
    fields = parse_log_format(text)
    unknown = [f for f in fields if f not in FIELDS_BY_NAME]
    if unknown:
        raise UsageError(
            f"--log-format names {unknown[0]!r}, which is not a flow log field the simulator knows",
            hint="the fields of versions 2 to 8, as AWS names them (docs/case.md lists them)",
        )
    return fields


def format_version(fields: tuple[str, ...]) -> int:
    """docs/aws.md §1.1: the highest version among the chosen fields (2 for the default)."""
    versions = [FIELDS_BY_NAME[f].version or 2 for f in fields if f in FIELDS_BY_NAME]
    return max([2, *versions])


@dataclass
class Interfaces:
    """Per-interface columns, indexed like World.interfaces()."""

    id: list[str]
    subnet: list[str]
    instance: list[str]
    az_id: list[str]
    az: list[str]

    @classmethod
    def of(cls, world: World) -> Interfaces:
        enis = world.interfaces()
        return cls(
            [e.id for e in enis],
            [e.subnet.id for e in enis],
            [e.instance_id or "-" for e in enis],
            [e.subnet.az_id for e in enis],
            [e.subnet.az for e in enis],
        )


# -- interfaces that see each direction ---------------------------------------------------------


@dataclass
class Records:
    """Flow log records as typed columns (NULL where AWS writes '-'), with their truth."""

    columns: dict[str, pa.Array]
    truth: dict[str, pa.Array]
    interface: np.ndarray  # index into World.interfaces()
    window: np.ndarray

    def take(self, rows: np.ndarray) -> Records:
        index = pa.array(rows)
        return Records(
            {k: v.take(index) for k, v in self.columns.items()},
            {k: v.take(index) for k, v in self.truth.items()},
            self.interface[rows],
            self.window[rows],
        )

    def __len__(self) -> int:
        return len(self.interface)


class Renderer:
    def __init__(
        self, world: World, table: AddressTable, interval: int, sim_end: int, sim_start: int = 0
    ) -> None:
        self.world, self.table, self.interval, self.sim_end = world, table, interval, sim_end
        self.sim_start = sim_start
        self.interfaces = Interfaces.of(world)
        enis = world.interfaces()
        position = {e.id: k for k, e in enumerate(enis)}
        self.instance_eni = np.array([position[i.eni.id] for i in world.instances])
        self.nat_eni = np.array([position[n.eni.id] for n in world.nats])
        endpoint_by_az = {e.eni.subnet.az: position[e.eni.id] for e in world.endpoints}
        self.endpoint_eni_of_nat = np.array(
            [endpoint_by_az.get(n.eni.subnet.az, -1) for n in world.nats]
        )
        self.endpoint_addr_of_nat = np.array(
            [table.endpoint_of_az.get(n.eni.subnet.az, -1) for n in world.nats]
        )
        self.addresses = pa.array(table.values)
        self.placement = world.firewall_placement
        # Per instance (and NAT gateway) truth values, NULL last for "none".
        self.instance_lookup = {
            "instance_id": pa.array([i.id for i in world.instances] + [None], pa.string()),
            "instance_eni": pa.array([i.eni.id for i in world.instances] + [None], pa.string()),
            "instance_ip": pa.array(
                [i.eni.private_ip for i in world.instances] + [None], pa.string()
            ),
        }
        self.nat_lookup = pa.array([n.id for n in world.nats] + [None], pa.string())
        self.lb_eni = np.array([position[b.eni.id] for b in world.load_balancers] + [-1])
        self.lb_preserves = np.array(
            [b.preserves_client_ip for b in world.load_balancers] + [False]
        )

    def render(self, batch: Batch) -> Records:
        return merge_same_flow(self.render_unmerged(batch))

    def render_unmerged(self, batch: Batch) -> Records:
        """Each connection's own records, before records of one flow are merged."""
        w = windows(batch, self.interval, self.sim_end, self.sim_start)
        return _concat([leg for leg in self._legs(batch, w) if leg is not None])

    def _legs(self, b: Batch, w: Windows) -> list[Records | None]:
        kind = b.kind[w.conn]
        variant = b.variant[w.conn]
        req = w.direction == REQUEST
        egress = kind == kinds.EGRESS
        blocked = variant == kinds.BLOCKED
        inst = np.where(
            b.v6,
            self.table.instance6[np.maximum(b.instance, 0)],
            self.table.instance[np.maximum(b.instance, 0)],
        )[w.conn]
        nat = self.table.nat[np.maximum(b.nat, 0)][w.conn]
        remote = b.remote[w.conn]
        cport, sport, nport = b.client_port[w.conn], b.server_port[w.conn], b.nat_port[w.conn]
        nat_idx = np.maximum(b.nat, 0)[w.conn]
        ep = self.endpoint_addr_of_nat[nat_idx]
        ep_eni = self.endpoint_eni_of_nat[nat_idx]
        inst_eni = self.instance_eni[np.maximum(b.instance, 0)][w.conn]
        nat_eni = self.nat_eni[nat_idx]
        legs: list[Records | None] = []

        def leg(
            name: str,
            mask: np.ndarray,
            eni: np.ndarray,
            src: np.ndarray,
            dst: np.ndarray,
            sport_: np.ndarray,
            dport_: np.ndarray,
            psrc: np.ndarray,
            pdst: np.ndarray,
            egress_: np.ndarray,
            path: np.ndarray | int,
            action: np.ndarray | None = None,
        ) -> None:
            rows = np.flatnonzero(mask)
            if len(rows):
                paths = np.broadcast_to(np.asarray(path), mask.shape)[rows]
                legs.append(
                    self._records(
                        name,
                        b,
                        w,
                        rows,
                        eni[rows],
                        src[rows],
                        dst[rows],
                        sport_[rows],
                        dport_[rows],
                        psrc[rows],
                        pdst[rows],
                        egress_[rows],
                        paths,
                        None if action is None else action[rows],
                    )
                )

        # The instance's own interface.
        client_side = (kind == kinds.EGRESS) | (kind == kinds.EXPOSED_OUT)
        on_instance = client_side | (kind == kinds.EXPOSED_IN)
        to_instance = b.instance[w.conn] >= 0
        inst_src = _pick(req == client_side, inst, remote)
        inst_dst = _pick(req == client_side, remote, inst)
        ports_from = _pick(req, cport, sport)
        ports_to = _pick(req, sport, cport)
        # traffic-path (§1.5): to a NAT gateway or endpoint in the VPC 1; through the internet
        # gateway 2, or 8 from a Nitro instance.
        leg(
            "instance",
            on_instance,
            inst_eni,
            inst_src,
            inst_dst,
            ports_from,
            ports_to,
            inst_src,
            inst_dst,
            req == client_side,
            np.where(kind == kinds.EGRESS, 1, 8),
        )

        # NAT gateway, private leg (instance <-> NAT private IP; real peer in pkt-*).
        reaches_nat = egress & ~((self.placement == "before-nat") & blocked)
        leg(
            "nat-private",
            reaches_nat,
            nat_eni,
            _pick(req, inst, nat),
            _pick(req, nat, inst),
            ports_from,
            ports_to,
            _pick(req, inst, remote),
            _pick(req, remote, inst),
            ~req,
            1,
        )

        # NAT gateway, public leg (NAT private IP and translated port <-> internet).
        public = reaches_nat & ~w.tail
        leg(
            "nat-public",
            public,
            nat_eni,
            _pick(req, nat, remote),
            _pick(req, remote, nat),
            _pick(req, nport, sport),
            _pick(req, sport, nport),
            _pick(req, nat, remote),
            _pick(req, remote, nat),
            req,
            2,
        )
        # Unsolicited packets, to an instance with a public IP (REJECT where its security
        # groups or its subnet's network ACL do not admit them) or to a NAT gateway.
        action = np.where(b.rejected[w.conn], "REJECT", "ACCEPT")
        ingress = np.zeros(len(req), bool)
        scans = (kind == kinds.SCAN) & ~to_instance
        for name, mask, eni, target, path in (
            ("instance", (kind == kinds.SCAN) & to_instance, inst_eni, inst, 8),
            ("nat-public", scans, nat_eni, nat, 2),
        ):
            leg(name, mask, eni, remote, target, cport, sport, remote, target, ingress, path,
                action)  # fmt: skip
        self._load_balancer_legs(b, w, leg, inst, inst_eni, remote, cport, sport, nport)

        def through_endpoint(
            mask: np.ndarray,
            packet_src: np.ndarray,
            packet_dst: np.ndarray,
            src_port: np.ndarray,
            dst_port: np.ndarray,
            forwarded: np.ndarray,
            out_path: np.ndarray | int,
        ) -> None:
            """A firewall endpoint forwards packets it did not originate: an "in" record with
            its own address as dstaddr, an "out" record with it as srcaddr (for packets it
            let through), the packet's addresses in pkt-*."""
            ingress, egress_ = np.zeros(len(req), bool), np.ones(len(req), bool)
            leg(
                "firewall-in",
                mask,
                ep_eni,
                packet_src,
                ep,
                src_port,
                dst_port,
                packet_src,
                packet_dst,
                ingress,
                1,
            )
            leg(
                "firewall-out",
                mask & forwarded,
                ep_eni,
                ep,
                packet_dst,
                src_port,
                dst_port,
                packet_src,
                packet_dst,
                egress_,
                out_path,
            )

        if self.placement == "after-nat":
            # Between the NAT gateway and the internet gateway: the translated packets, both
            # ways; and unsolicited packets on their way in to the NAT gateway.
            through_endpoint(
                egress & ~w.tail,
                _pick(req, nat, remote),
                _pick(req, remote, nat),
                _pick(req, nport, sport),
                _pick(req, sport, nport),
                ~blocked,
                _pick(req, 2, 1),
            )
            through_endpoint(scans, remote, nat, cport, sport, scans, 1)
        elif self.placement == "before-nat":
            # Between the instances and the NAT gateway: the untranslated packets.
            through_endpoint(
                egress,
                _pick(req, inst, remote),
                _pick(req, remote, inst),
                ports_from,
                ports_to,
                ~blocked,
                1,
            )
        return legs

    def _load_balancer_legs(
        self,
        b: Batch,
        w: Windows,
        leg: Any,
        inst: np.ndarray,
        inst_eni: np.ndarray,
        remote: np.ndarray,
        cport: np.ndarray,
        sport: np.ndarray,
        nport: np.ndarray,
    ) -> None:
        """A client of a load balancer's listener: on the load balancer's interface client <->
        its address; on the target's interface the client's address (network load balancer,
        client IP preservation) or the load balancer's own (application load balancer, its own
        connection, logged on its interface too). AWS documents no example for load balancer
        interfaces; this follows its rule that a record holds the addresses of the packets as
        the interface sees them (docs/aws.md §3)."""
        lb = np.where(b.lb >= 0, b.lb, len(self.lb_eni) - 1)[w.conn]
        mask = b.kind[w.conn] == kinds.LB_IN
        if not mask.any():
            return
        req = w.direction == REQUEST
        lb_eni = self.lb_eni[lb]
        lb_addr = self.table.lb[np.minimum(lb, len(self.table.lb) - 1)]
        preserves = self.lb_preserves[lb]
        ingress, egress = np.zeros(len(req), bool), np.ones(len(req), bool)
        leg("load-balancer", mask, lb_eni, _pick(req, remote, lb_addr), _pick(req, lb_addr, remote),
            _pick(req, cport, sport), _pick(req, sport, cport), _pick(req, remote, lb_addr),
            _pick(req, lb_addr, remote), ~req, 2)  # fmt: skip
        peer = np.where(preserves, remote, lb_addr)
        peer_port = np.where(preserves, cport, nport)
        target = np.full(len(req), kinds.LB_TARGET_PORT)
        leg("instance", mask, inst_eni, _pick(req, peer, inst), _pick(req, inst, peer),
            _pick(req, peer_port, target), _pick(req, target, peer_port), _pick(req, peer, inst),
            _pick(req, inst, peer), ~req, 1)  # fmt: skip
        leg("load-balancer", mask & ~preserves, lb_eni, _pick(req, lb_addr, inst),
            _pick(req, inst, lb_addr), _pick(req, nport, target), _pick(req, target, nport),
            _pick(req, lb_addr, inst), _pick(req, inst, lb_addr), _pick(req, egress, ingress),
            1)  # fmt: skip

    def _records(
        self,
        name: str,
        b: Batch,
        w: Windows,
        rows: np.ndarray,
        eni: np.ndarray,
        src: np.ndarray,
        dst: np.ndarray,
        sport: np.ndarray,
        dport: np.ndarray,
        psrc: np.ndarray,
        pdst: np.ndarray,
        egress: np.ndarray,
        path: np.ndarray,
        action: np.ndarray | None,
    ) -> Records:
        conn = w.conn[rows]
        addresses = self.addresses
        iface = self.interfaces
        n = len(rows)
        eni_arr = pa.array(eni)
        protocol = b.protocol[conn]
        icmp = np.isin(protocol, kinds.ICMP_PROTOCOLS)
        flow_direction = np.where(egress, "egress", "ingress")
        # traffic-path is '-' on ingress records (§1.5).
        traffic_path = pa.array(path.astype(np.int64), mask=~egress)
        columns = {
            "account-id": pa.array(np.full(n, ACCOUNT)),
            "interface-id": pa.array(iface.id).take(eni_arr),
            "srcaddr": addresses.take(pa.array(src)),
            "dstaddr": addresses.take(pa.array(dst)),
            "srcport": pa.array(np.where(icmp, 0, sport)),
            "dstport": pa.array(np.where(icmp, 0, dport)),
            "protocol": pa.array(protocol),
            "packets": pa.array(w.packets[rows]),
            "bytes": pa.array(w.bytes[rows]),
            "start": pa.array(w.start[rows]),
            "end": pa.array(w.end[rows]),
            "action": pa.array(np.full(n, "ACCEPT") if action is None else action),
            "log-status": pa.array(np.full(n, "OK")),
            "vpc-id": pa.array(np.full(n, self.world.vpc_id)),
            "subnet-id": pa.array(iface.subnet).take(eni_arr),
            "instance-id": pa.array(iface.instance).take(eni_arr),
            "tcp-flags": pa.array(w.flags[rows]),
            "type": pa.array(np.where(b.v6[conn], "IPv6", "IPv4")),
            "pkt-srcaddr": addresses.take(pa.array(psrc)),
            "pkt-dstaddr": addresses.take(pa.array(pdst)),
            "region": pa.array(np.full(n, REGION)),
            "az-id": pa.array(iface.az_id).take(eni_arr),
            "flow-direction": pa.array(flow_direction),
            "traffic-path": traffic_path,
        }
        kind = b.kind[conn]
        request = w.direction[rows] == REQUEST
        instance = b.instance[conn]
        truth = {
            "connection_id": pa.array(b.id[conn]),
            "kind": pa.array(np.array(kinds.KIND_NAMES)[kind]),
            "variant": pa.array(np.array(kinds.VARIANT_NAMES)[b.variant[conn]]),
            "leg": pa.array(np.full(n, name)),
            "family": pa.array(np.array(kinds.FAMILIES)[b.family[conn]]),
            "direction": pa.array(np.where(request, "request", "response")),
            # The side that opened the connection: the sender of every request record.
            "initiator": pa.array(np.where(request, "src", "dst")),
            **{
                name: lookup.take(pa.array(np.where(instance >= 0, instance, len(lookup) - 1)))
                for name, lookup in self.instance_lookup.items()
            },
            "nat_gateway_id": self.nat_lookup.take(
                pa.array(np.where(b.nat[conn] >= 0, b.nat[conn], len(self.nat_lookup) - 1))
            ),
        }
        return Records(columns, truth, eni, w.window[rows])


def merge_same_flow(r: Records) -> Records:
    """docs/aws.md §1: a record aggregates the packets of one flow (5-tuple) on one interface in
    one capture window. Connections that share a flow in a window (a host's unsolicited pings
    and the replies to an instance's pings of it, a NAT port reused for the same destination,
    NTP from 123 to 123) make one record: packets and bytes summed, tcp-flags OR'ed, the
    earliest start and latest end. Its truth is the first connection's, with ``initiator``
    ``both`` where the merged records disagree."""
    n = len(r)
    if n < 2:
        return r
    c = r.columns
    keys = {"interface": pa.array(r.interface), "window": pa.array(r.window)}
    for k in ("srcaddr", "dstaddr", "pkt-srcaddr", "pkt-dstaddr", "action"):
        keys[k] = c[k].fill_null("")  # a join matches no nulls
    for k in ("srcport", "dstport", "protocol"):
        keys[k] = c[k].fill_null(-1)
    names = list(keys)
    table = pa.table({**keys, "row": pa.array(np.arange(n))})
    # pyarrow's hash aggregate: the first row of each flow, and how many rows it has
    flows = table.group_by(names, use_threads=False).aggregate([("row", "min")])
    if flows.num_rows == n:
        return r
    first_of = table.join(flows, names, join_type="inner", use_threads=False)
    rows = first_of["row"].to_numpy()
    heads = first_of["row_min"].to_numpy()
    first = np.sort(flows["row_min"].to_numpy())
    inverse = np.empty(n, dtype=np.int64)
    inverse[rows] = np.searchsorted(first, heads)
    groups = len(first)

    def total(name: str) -> pa.Array:
        return pa.array(np.bincount(inverse, c[name].to_numpy(), groups).astype(np.int64))

    def reduce(name: str, ufunc: np.ufunc, start: int) -> pa.Array:
        out = np.full(groups, start, dtype=np.int64)
        ufunc.at(out, inverse, c[name].fill_null(0).to_numpy())
        return pa.array(out)

    merged = {
        "packets": total("packets"),
        "bytes": total("bytes"),
        "start": reduce("start", np.minimum, np.iinfo(np.int64).max),
        "end": reduce("end", np.maximum, 0),
        "tcp-flags": reduce("tcp-flags", np.bitwise_or, 0),
    }
    src = pc.equal(r.truth["initiator"], "src").to_numpy(zero_copy_only=False).astype(int)
    low, high = np.full(groups, 1), np.zeros(groups, dtype=int)
    np.minimum.at(low, inverse, src)
    np.maximum.at(high, inverse, src)
    initiator = np.where(low != high, "both", np.where(high == 1, "src", "dst"))
    keep = np.sort(first)  # each flow where it first appeared
    group_of_kept = inverse[keep]
    out = r.take(keep)
    index = pa.array(group_of_kept)
    for name, values in merged.items():
        out.columns[name] = values.take(index)
    out.truth["initiator"] = pa.array(initiator[group_of_kept])
    return out


def _pick(
    request: np.ndarray, when_request: np.ndarray | int, when_response: np.ndarray | int
) -> np.ndarray:
    """Per record: one value for request records, the other for response records."""
    return np.where(request, when_request, when_response)


def _concat(parts: list[Records]) -> Records:
    if not parts:
        return Records({}, {}, np.zeros(0, np.int64), np.zeros(0, np.int64))
    keys = parts[0].columns.keys()
    return Records(
        {k: pa.concat_arrays([p.columns[k] for p in parts]) for k in keys},
        {k: pa.concat_arrays([p.truth[k] for p in parts]) for k in parts[0].truth},
        np.concatenate([p.interface for p in parts]),
        np.concatenate([p.window for p in parts]),
    )


def coverage_record(
    world: World, interfaces: Interfaces, eni: int, window: int, interval: int, status: str
) -> dict[str, object]:
    """A NODATA or SKIPDATA record (§1.3, §3.2): addresses, ports, counts and action are '-'."""
    start = window * interval
    return {
        "account-id": ACCOUNT,
        "interface-id": interfaces.id[eni],
        "start": start,
        "end": start + interval - 1,
        "log-status": status,
        "vpc-id": world.vpc_id,
        "subnet-id": interfaces.subnet[eni],
        "instance-id": interfaces.instance[eni],
        "region": REGION,
        "az-id": interfaces.az_id[eni],
    }
