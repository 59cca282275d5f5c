"""Time as users write it (``--since 2024-06-01``, ``--since 6h``) and as AWS names objects."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from natlens.errors import UsageError

_RELATIVE = re.compile(r"(\d+)\s*(s|m|h|d|w)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: float | None = None) -> int:
    """Epoch seconds from ISO 8601 (UTC unless it says otherwise), epoch seconds or milliseconds,
    or a duration back from now (``90m``, ``6h``, ``7d``)."""
    value = text.strip()
    if re.fullmatch(r"\d{9,13}", value):
        number = int(value)
        return number // 1000 if number > 2**31 else number
    rel = _RELATIVE.fullmatch(value)
    if rel:
        now = time.time() if now is None else now
        return int(now) - int(rel.group(1)) * _UNIT_SECONDS[rel.group(2)]
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{text!r} is not a time",
            hint="use ISO 8601 (2024-06-01 or 2024-06-01T12:00:00Z), epoch seconds, "
            "or a duration back from now such as 90m, 6h, 7d",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


@dataclass(frozen=True)
class TimeRange:
    since: int | None = None  # epoch seconds, inclusive
    until: int | None = None

    def overlaps(self, start: int, end: int) -> bool:
        return (self.since is None or end >= self.since) and (
            self.until is None or start <= self.until
        )

    def widened(self, seconds: int) -> TimeRange:
        """The window with ``seconds`` more either side (open ends stay open)."""
        return TimeRange(
            None if self.since is None else self.since - seconds,
            None if self.until is None else self.until + seconds,
        )

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None

    def describe(self) -> str:
        """The window as a person reads it: ISO 8601 UTC, open ends said so."""

        def when(epoch: int | None, open_end: str) -> str:
            if epoch is None:
                return open_end
            return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        return f"--since {when(self.since, 'any time')} --until {when(self.until, 'now')}"


def subtract(interval: tuple[int, int], covered: list[list[int]]) -> list[tuple[int, int]]:
    """The parts of [start, end) that no covered interval holds."""
    start, end = interval
    gaps = []
    for lo, hi in sorted(covered):
        if hi <= start or lo >= end:
            continue
        if lo > start:
            gaps.append((start, lo))
        start = max(start, hi)
        if start >= end:
            break
    if start < end:
        gaps.append((start, end))
    return gaps


def merge(covered: list[list[int]], new: tuple[int, int]) -> list[list[int]]:
    """Add [start, end) to a list of intervals, joining those that touch."""
    out: list[list[int]] = []
    for lo, hi in sorted([*map(tuple, covered), new]):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out
