"""Default-format flow log records at any scale, as an S3 text file (gzip, header line).

A realistic mix, deterministic for a seed: 50 interfaces (instances and NAT gateways) in a
10.0.0.0/16 VPC, egress to and replies from the internet, TCP/UDP/ICMP, service ports against
ephemeral ones, REJECTs, about 1% NODATA and 0.05% SKIPDATA records, 2% IPv6, one-minute capture
windows moving forward in time. Used by the benchmarks until the traffic simulator can write the
same at this scale.

    python benchmarks/generate_flows.py OUT.log.gz --records 10000000 [--seed 7]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb

HEADER_FIELDS = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
)


def generate(path: Path, records: int, seed: int = 7) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    # h(k): a deterministic pseudo-random number per row and purpose k.
    query = f"""
    WITH r AS (
      SELECT i,
        hash(i, {seed}, 1) % 1000 AS kind,      -- what the row is
        hash(i, {seed}, 2) AS a, hash(i, {seed}, 3) AS b, hash(i, {seed}, 4) AS c
      FROM range({records}) t(i)
    ),
    f AS (
      SELECT i, kind,
        'eni-0' || lpad(lower(to_hex(a % 50)), 16, '0') AS eni,
        '10.0.' || (a % 50 // 10) || '.' || (b % 250 + 4) AS private,
        CASE WHEN c % 50 = 0
             THEN '2600:1f18:' || lower(to_hex(a % 65535)) || '::' || lower(to_hex(b % 65535))
             ELSE ((b % 200) + 13) || '.' || (c % 256) || '.' || (a % 256) || '.' || (b % 254 + 1)
        END AS public,
        CASE WHEN c % 20 < 16 THEN 6 WHEN c % 20 < 19 THEN 17 ELSE 1 END AS proto,
        CASE WHEN c % 20 BETWEEN 16 AND 18 THEN [53, 53, 123][(a % 3)::BIGINT + 1]
             ELSE [443, 443, 443, 443, 80, 22, 5432][(a % 7)::BIGINT + 1] END AS service,
        CASE WHEN a % 3 = 0 THEN 1024 + b % 64511 ELSE 32768 + b % 28232 END AS ephemeral,
        1 + (c % 200) AS packets,
        1700000000 + i // 4000 * 60 AS win
      FROM r
    )
    SELECT
      '2' AS version, '123456789012' AS account, eni,
      CASE WHEN kind < 10 THEN '-' WHEN kind % 2 = 0 THEN private ELSE public END AS src,
      CASE WHEN kind < 10 THEN '-' WHEN kind % 2 = 0 THEN public ELSE private END AS dst,
      CASE WHEN kind < 10 THEN '-' WHEN proto = 1 THEN '0'
           WHEN kind % 2 = 0 THEN ephemeral::VARCHAR ELSE service::VARCHAR END AS srcport,
      CASE WHEN kind < 10 THEN '-' WHEN proto = 1 THEN '0'
           WHEN kind % 2 = 0 THEN service::VARCHAR ELSE ephemeral::VARCHAR END AS dstport,
      CASE WHEN kind < 10 THEN '-' ELSE proto::VARCHAR END AS protocol,
      CASE WHEN kind < 10 THEN '-' ELSE packets::VARCHAR END AS packets,
      CASE WHEN kind < 10 THEN '-' ELSE (packets * (40 + i % 1460))::VARCHAR END AS bytes,
      (win + i % 7)::VARCHAR AS start, (win + 59)::VARCHAR AS "end",
      CASE WHEN kind < 10 THEN '-' WHEN kind % 13 = 0 THEN 'REJECT' ELSE 'ACCEPT' END AS action,
      CASE WHEN kind = 0 AND i % 20 = 0 THEN 'SKIPDATA' WHEN kind < 10 THEN 'NODATA'
           ELSE 'OK' END AS status
    FROM f
    ORDER BY i
    """
    body = path.with_suffix(".body.gz")
    con.execute(
        f"COPY ({query}) TO '{body}' "
        "(FORMAT csv, DELIMITER ' ', HEADER false, QUOTE '', ESCAPE '', COMPRESSION gzip)"
    )
    # An S3 text file starts with a header line; a gzip member of its own keeps this cheap.
    import gzip

    with open(path, "wb") as out:
        out.write(gzip.compress((HEADER_FIELDS + "\n").encode()))
        with open(body, "rb") as data:
            while chunk := data.read(1 << 24):
                out.write(chunk)
    body.unlink()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    started = time.monotonic()
    generate(args.out, args.records, args.seed)
    print(f"{args.records:,} records in {time.monotonic() - started:.1f} s: {args.out}")


if __name__ == "__main__":
    main()
