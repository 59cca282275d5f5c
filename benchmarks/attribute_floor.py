"""A direct DuckDB query for the alert attribution's answer: the floor attribute_benchmark.py
times `natlens attribute` against (issue 15), and whose answers it scores beside natlens's.

For each Network Firewall event whose source is a NAT gateway's private address (the firewall
sits after the NAT gateway): the NAT gateway's flow log record of the same 5-tuple nearest in
time, then the instance's record toward the same destination and port that started within 2 s
of it, the one with the same packets and bytes first, the nearest next. The NAT gateways and the
instances come from the context (describe-nat-gateways.json, describe-instances.json).

    python benchmarks/attribute_floor.py CASE CONTEXT_DIR OUT.parquet
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import pyarrow as pa

QUERY = """
WITH at_nat AS (
    SELECT f.*, n.nat_ip FROM flows AS f JOIN nat AS n ON f.interface_id = n.nat_eni
),
outside AS (
    -- the NAT gateway's translated records: from its address and port
    SELECT nat_ip, srcport AS nat_port, dstaddr AS dst, dstport AS dport, protocol, start,
        packets, bytes
    FROM at_nat
    WHERE srcaddr = nat_ip
),
inside AS (
    -- the instances' own records toward a destination
    SELECT srcaddr AS inst, srcport AS inst_port, dstaddr AS dst, dstport AS dport, protocol,
        start, packets, bytes
    FROM flows
    WHERE srcaddr IN (SELECT inst FROM instances)
),
ev AS (
    SELECT source, line, src_ip, src_port, dest_ip, dest_port, event_time,
        CASE proto WHEN 'TCP' THEN 6 WHEN 'UDP' THEN 17 WHEN 'ICMP' THEN 1 END AS protocol
    FROM events
    WHERE src_ip IN (SELECT nat_ip FROM nat)
),
ev_out AS (
    -- each event's translated record: the same 5-tuple, the nearest in time
    SELECT e.source, e.line, o.dst, o.dport, o.protocol, o.start, o.packets, o.bytes,
        row_number() OVER (
            PARTITION BY e.source, e.line ORDER BY abs(o.start - e.event_time), o.start
        ) AS rk
    FROM ev AS e
    JOIN outside AS o
        ON o.nat_ip = e.src_ip AND o.nat_port = e.src_port AND o.dst = e.dest_ip
        AND o.dport = e.dest_port AND o.protocol = e.protocol
),
matched AS (
    SELECT eo.source, eo.line, i.inst,
        row_number() OVER (
            PARTITION BY eo.source, eo.line
            ORDER BY (i.packets = eo.packets AND i.bytes = eo.bytes) DESC,
                abs(i.start - eo.start), i.inst, i.inst_port
        ) AS rk
    FROM ev_out AS eo
    JOIN inside AS i
        ON eo.rk = 1 AND i.dst = eo.dst AND i.dport = eo.dport AND i.protocol = eo.protocol
        AND i.start BETWEEN eo.start - 2 AND eo.start + 2
)
SELECT e.source, e.line, m.inst AS instance_address
FROM ev AS e
LEFT JOIN matched AS m ON m.source = e.source AND m.line = e.line AND m.rk = 1
"""


def main() -> None:
    case, context, out = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    nats = json.loads((context / "describe-nat-gateways.json").read_text())["NatGateways"]
    addresses = [a for n in nats for a in n["NatGatewayAddresses"]]
    reservations = json.loads((context / "describe-instances.json").read_text())["Reservations"]
    instances = sorted(
        {i["PrivateIpAddress"] for r in reservations for i in r["Instances"]} - {None}  # type: ignore[arg-type]
    )
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register(
        "nat",
        pa.table({
            "nat_ip": [a["PrivateIp"] for a in addresses],
            "nat_eni": [a["NetworkInterfaceId"] for a in addresses],
        }),
    )  # fmt: skip
    con.register("instances", pa.table({"inst": instances}))
    for table in ("flows", "firewall_events"):
        parts = [str(p) for p in sorted((case / table).glob("*.parquet"))]
        name = "events" if table == "firewall_events" else table
        con.register(name, con.read_parquet(parts, union_by_name=True))
    con.sql(QUERY).write_parquet(out)


if __name__ == "__main__":
    main()
