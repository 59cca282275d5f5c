"""AWS Network Firewall logs from connections, as AWS writes them (docs/aws.md §6).

- Flow logs are Suricata ``netflow`` events, one per direction: the to-server event first, then
  the to-client event with addresses and ports swapped, both with the same ``flow_id``.
- ``tcp.tcp_flags`` is a hex string of the flags seen in that direction.
- Top level: ``firewall_name``, ``availability_zone`` (the endpoint's AZ), ``event_timestamp``: a
  string of epoch seconds in alert and flow logs, a number in TLS logs. TLS logs also give ports as
  strings and have no ``event_type``.
- Alert events of TLS connections repeat the ``subject`` key inside ``tls`` (a quirk seen in
  public samples of these logs): readers must cope with duplicate keys.

The source address is what the firewall sees: the NAT gateway's private address and translated
port when the firewall sits after the NAT gateway, the instance's when it sits before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

import natlens.simulate.kinds as kinds
from natlens.simulate.addresses import AddressTable
from natlens.simulate.kinds import SIGNATURES
from natlens.simulate.traffic import Batch
from natlens.simulate.world import World

PROTOCOLS = {6: "TCP", 17: "UDP", 1: "ICMP"}
# Suricata's flag bits: FIN 01, SYN 02, RST 04, PSH 08, ACK 10.
CLIENT_FLAGS = {
    kinds.NORMAL: 0x1B,
    kinds.LONG: 0x1B,
    kinds.SHORT: 0x1B,
    kinds.IDLE_RST: 0x1A,
    kinds.BLOCKED: 0x02,
}
SERVER_FLAGS = {
    kinds.NORMAL: 0x1B,
    kinds.LONG: 0x1B,
    kinds.SHORT: 0x1B,
    kinds.IDLE_RST: 0x1E,
    kinds.BLOCKED: 0x00,
}
TLS_ERRORS = (
    "Server name does not match the certificate's subject alternative names",
    "Certificate has expired",
)


@dataclass
class Event:
    log_type: str  # "alert", "flow", "tls"
    epoch: int  # event_timestamp
    text: str  # the JSON line
    connection_id: int
    event_type: str  # "alert", "netflow", "tls_error"
    flow_id: int
    instance: int  # index into world.instances: who really sent it


@dataclass
class _Flow:
    """What both netflow events of one flow share."""

    az: str
    flow_id: int
    connection: int
    instance: int
    protocol: int
    start: int
    end: int
    logged: int  # when the flow's events are written: after it ends


def iso(epoch: float, tls_engine: bool = False) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    if tls_engine:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


class FirewallRenderer:
    def __init__(
        self, world: World, table: AddressTable, hostnames: list[str], seed: int, sim_end: int
    ) -> None:
        self.world, self.table, self.hostnames = world, table, hostnames
        self.seed, self.sim_end = seed, sim_end
        self.after_nat = world.firewall_placement == "after-nat"
        self.first_server = int(table.server[0])

    def flow_id(self, connection: int) -> int:
        return 10**15 + (connection * 2654435761 + self.seed * 97) % (9 * 10**15)

    def events(self, b: Batch) -> Iterator[Event]:
        values = self.table.values
        for i in range(len(b)):
            kind = int(b.kind[i])
            if kind == kinds.EGRESS:
                yield from self._egress(b, i, values)
            elif kind == kinds.SCAN and self.after_nat:
                yield from self._scan(b, i, values)

    def _common(
        self,
        az: str,
        epoch: int,
        event: dict[str, object],
        string_time: bool = True,
        tls_engine: bool = False,
    ) -> dict[str, object]:
        return {
            "firewall_name": self.world.firewall_name,
            "availability_zone": az,
            "event_timestamp": str(epoch) if string_time else epoch,
            "event": event,
        }

    def _egress(self, b: Batch, i: int, values: list[str]) -> Iterator[Event]:
        inst = int(b.instance[i])
        nat = self.world.nats[int(b.nat[i])]
        az = nat.eni.subnet.az
        if self.after_nat:
            src_ip, src_port = nat.eni.private_ip, int(b.nat_port[i])
        else:
            src_ip, src_port = values[self.table.instance[inst]], int(b.client_port[i])
        dest_ip, dest_port = values[int(b.remote[i])], int(b.server_port[i])
        protocol = int(b.protocol[i])
        start, end = int(b.start[i]), min(int(b.end[i]), self.sim_end - 1)
        variant = int(b.variant[i])
        flow = self.flow_id(int(b.id[i]))
        conn = int(b.id[i])
        host = (
            self.hostnames[int(b.remote[i]) - self.first_server]
            if int(b.remote[i]) >= self.first_server
            else ""
        )
        signature = int(b.signature[i])
        if signature >= 0:
            sid, name, category, severity, blocked_host = SIGNATURES[signature]
            host = blocked_host
            blocked = variant == kinds.BLOCKED
            alert_time = start + 1
            event: dict[str, object] = {
                "timestamp": iso(alert_time + 0.000123),
                "flow_id": flow,
                "event_type": "alert",
                "src_ip": src_ip,
                "src_port": src_port,
                "dest_ip": dest_ip,
                "dest_port": dest_port,
                "proto": PROTOCOLS[protocol],
                "app_proto": "tls" if dest_port == 443 else "http",
                "direction": "to_server",
                "alert": {
                    "action": "blocked" if blocked else "allowed",
                    "signature_id": sid,
                    "rev": 1,
                    "signature": name,
                    "category": category,
                    "severity": severity,
                },
            }
            if blocked:
                event["verdict"] = {"action": "drop"}
            if dest_port == 80:
                event["http"] = {
                    "hostname": host,
                    "url": "/",
                    "http_user_agent": "curl/8.5.0",
                    "http_method": "GET",
                    "version": "1.1",
                }
                text = json.dumps(self._common(az, alert_time, event), separators=(",", ":"))
            else:
                event["tls"] = {"sni": host, "version": "TLS 1.3"}
                text = json.dumps(self._common(az, alert_time, event), separators=(",", ":"))
                # The duplicate key quirk: "subject" twice inside "tls".
                subject = json.dumps(f"CN={host}")
                text = text.replace(
                    '"tls":{', f'"tls":{{"subject":{subject},"issuerdn":"CN=Example CA",', 1
                ).replace('"version":"TLS 1.3"}', f'"version":"TLS 1.3","subject":{subject}}}', 1)
            yield Event("alert", alert_time, text, conn, "alert", flow, inst)
        if protocol == 6 and dest_port == 443 and signature < 0 and (conn % 97 == 0):
            tls_time = start + 1
            tls_event: dict[str, object] = {
                "src_ip": src_ip,
                "src_port": str(src_port),
                "dest_ip": dest_ip,
                "dest_port": str(dest_port),
                "timestamp": iso(tls_time + 0.000441, tls_engine=True),
                "sni": host or "-",
                "tls_error": {"error_message": TLS_ERRORS[conn % len(TLS_ERRORS)]},
            }
            text = json.dumps(
                self._common(az, tls_time, tls_event, string_time=False), separators=(",", ":")
            )
            yield Event("tls", tls_time, text, conn, "tls_error", flow, inst)
        # netflow: one event per direction once the flow ends, to-server first.
        shared = _Flow(az, flow, conn, inst, protocol, start, end, min(end + 30, self.sim_end - 1))
        yield self._netflow(
            shared,
            (src_ip, src_port),
            (dest_ip, dest_port),
            int(b.request_packets[i]),
            int(b.request_size[i]),
            CLIENT_FLAGS[variant],
        )
        if int(b.response_packets[i]) > 0 and variant != kinds.BLOCKED:
            yield self._netflow(
                shared,
                (dest_ip, dest_port),
                (src_ip, src_port),
                int(b.response_packets[i]),
                int(b.response_size[i]),
                SERVER_FLAGS[variant],
            )

    def _scan(self, b: Batch, i: int, values: list[str]) -> Iterator[Event]:
        """Unsolicited packets on their way to a NAT gateway: a to-server event, nothing back."""
        nat = self.world.nats[int(b.nat[i])]
        start, end, conn = int(b.start[i]), int(b.end[i]), int(b.id[i])
        shared = _Flow(
            nat.eni.subnet.az,
            self.flow_id(conn),
            conn,
            -1,
            int(b.protocol[i]),
            start,
            end,
            min(end + 30, self.sim_end - 1),
        )
        yield self._netflow(
            shared,
            (values[int(b.remote[i])], int(b.client_port[i])),
            (nat.eni.private_ip, int(b.server_port[i])),
            int(b.request_packets[i]),
            int(b.request_size[i]),
            0x02,
        )

    def _netflow(
        self,
        flow: _Flow,
        src: tuple[str, int],
        dest: tuple[str, int],
        packets: int,
        size: int,
        flags: int,
    ) -> Event:
        icmp = flow.protocol == 1
        event: dict[str, object] = {
            "timestamp": iso(flow.logged + 0.000512),
            "flow_id": flow.flow_id,
            "event_type": "netflow",
            "src_ip": src[0],
            "src_port": 0 if icmp else src[1],
            "dest_ip": dest[0],
            "dest_port": 0 if icmp else dest[1],
            "proto": PROTOCOLS[flow.protocol],
            "netflow": {
                "pkts": packets,
                "bytes": packets * size,
                "start": iso(flow.start + 0.000101),
                "end": iso(flow.end + 0.000909),
                "age": flow.end - flow.start,
                "min_ttl": 63,
                "max_ttl": 64,
            },
        }
        if flow.protocol == 6:
            tcp: dict[str, object] = {"tcp_flags": f"{flags:02x}"}
            for bit, name in (
                (0x02, "syn"),
                (0x01, "fin"),
                (0x04, "rst"),
                (0x08, "psh"),
                (0x10, "ack"),
            ):
                if flags & bit:
                    tcp[name] = True
            event["tcp"] = tcp
        text = json.dumps(self._common(flow.az, flow.logged, event), separators=(",", ":"))
        return Event(
            "flow", flow.logged, text, flow.connection, "netflow", flow.flow_id, flow.instance
        )


def hostnames_for(servers: int, rng: np.random.Generator) -> list[str]:
    words = ("api", "cdn", "auth", "telemetry", "updates", "pkg", "assets", "login", "static")
    sites = ("example-saas.com", "cloudstore.example.net", "metrics.example.io", "repo.example.org")
    return [
        f"{words[k % len(words)]}{k}.{sites[int(rng.integers(0, len(sites)))]}"
        for k in range(servers)
    ]
