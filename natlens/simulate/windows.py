"""Aggregation windows: how AWS cuts each simulated connection into flow log records, one per
capture window (docs/aws.md §2), and the TCP flags each record carries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import natlens.simulate.kinds as kinds
from natlens.simulate.traffic import Batch

REQUEST, RESPONSE = 0, 1
SYN, FIN, RST, SYN_ACK = 2, 1, 4, 18


@dataclass
class Windows:
    """One row per connection, direction and capture window."""

    conn: np.ndarray  # row in the batch
    direction: np.ndarray
    tail: np.ndarray  # the idle-timeout retry and its RST (instance and NAT private leg only)
    window: np.ndarray
    start: np.ndarray
    end: np.ndarray
    packets: np.ndarray
    bytes: np.ndarray
    flags: np.ndarray


def windows(batch: Batch, interval: int, sim_end: int, sim_start: int = 0) -> Windows:
    """Split each direction of each connection over the capture windows it has packets in;
    windows before the capture (connections begun earlier) are not logged."""
    n = len(batch)
    has_response = (batch.response_packets > 0) & (batch.kind != kinds.SCAN)
    spans = [
        # (rows, direction, start, end, packets, size, tail)
        (
            np.arange(n),
            REQUEST,
            batch.start,
            batch.end,
            batch.request_packets,
            batch.request_size,
            False,
        ),
        (
            np.flatnonzero(has_response),
            RESPONSE,
            batch.start,
            batch.end,
            batch.response_packets,
            batch.response_size,
            False,
        ),
    ]
    idle = np.flatnonzero(batch.tail > 0)
    if len(idle):
        spans.append(
            (idle, REQUEST, batch.tail, batch.tail, np.ones(n, np.int64), batch.request_size, True)
        )
        spans.append(
            (idle, RESPONSE, batch.tail, batch.tail, np.ones(n, np.int64), np.full(n, 40), True)
        )
    parts = [
        _split(batch, rows, d, s[rows], e[rows], p[rows], z[rows], tail, interval)
        for rows, d, s, e, p, z, tail in spans
    ]
    out = Windows(
        *(np.concatenate([getattr(w, f) for w in parts]) for f in Windows.__dataclass_fields__)
    )
    keep = (out.start < sim_end) & (out.window >= sim_start // interval)
    return Windows(*(getattr(out, f)[keep] for f in Windows.__dataclass_fields__))


def _split(
    batch: Batch,
    rows: np.ndarray,
    direction: int,
    start: np.ndarray,
    end: np.ndarray,
    packets: np.ndarray,
    size: np.ndarray,
    tail: bool,
    interval: int,
) -> Windows:
    first, last = start // interval, end // interval
    count = (last - first + 1).astype(np.int64)
    index = np.repeat(np.arange(len(rows)), count)
    offset = np.arange(len(index)) - np.repeat(np.cumsum(count) - count, count)
    window = first[index] + offset
    w_start = np.maximum(start[index], window * interval)
    w_end = np.minimum(end[index], window * interval + interval - 1)
    # Packets by time: the share of the span up to the end of each window, rounded down.
    span = (end - start + 1)[index]
    upto = np.floor(packets[index] * (w_end - start[index] + 1) / span).astype(np.int64)
    before = np.floor(packets[index] * (w_start - start[index]) / span).astype(np.int64)
    share = np.maximum(1, upto - before)
    is_first, is_last = offset == 0, offset == count[index] - 1
    protocol = batch.protocol[rows][index]
    variant = batch.variant[rows][index]
    flags = np.zeros(len(index), dtype=np.int64)
    tcp = protocol == 6
    backscatter = (variant == kinds.BACKSCATTER) | (variant == kinds.BACKSCATTER_RST)
    probe = variant == kinds.PROBE
    if tail:
        flags[tcp] = 0 if direction == REQUEST else RST
    elif direction == REQUEST:
        flags[tcp & is_first & ~backscatter] |= SYN
        ends_cleanly = (variant != kinds.BLOCKED) & (variant != kinds.IDLE_RST) & ~probe
        kind = batch.kind[rows][index]
        flags[tcp & is_last & ends_cleanly & (kind != kinds.SCAN)] |= FIN
        flags[tcp & is_last & probe] |= RST  # the scanner resets the answered probe
        flags[tcp & (variant == kinds.BACKSCATTER)] = SYN_ACK
        flags[tcp & (variant == kinds.BACKSCATTER_RST)] = RST
    else:
        flags[tcp & is_first] |= SYN_ACK
        flags[tcp & is_last & (variant != kinds.IDLE_RST) & ~probe] |= FIN
    return Windows(
        conn=rows[index],
        direction=np.full(len(index), direction),
        tail=np.full(len(index), tail),
        window=window,
        start=w_start,
        end=w_end,
        packets=share,
        bytes=share * size[index],
        flags=flags,
    )
