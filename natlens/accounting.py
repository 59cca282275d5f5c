"""Every input line accounted for: read as a record, or passed over with a reason and a place.

The invariant, per ingest and per source::

    lines == records + headers + blank + metadata + filtered + skipped

``skipped`` is the sum over ``REASONS``; each reason keeps its count and its first few examples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from natlens.errors import StrictError

# Stable reason codes for lines, events and objects natlens could not read. Documented in
# docs/ingest.md; tests check that the two agree.
REASONS: dict[str, str] = {
    "field-count": "the line has a different number of fields than its format",
    "bad-value": "a field holds text that its type does not allow (a number, an IP address)",
    "no-format": "no header line, no --log-format, and the line does not fit the default format",
    "not-text": "the bytes are not UTF-8 text (binary data, or a line over 1 MiB)",
    "truncated": "a compressed stream ended early; the lines before the cut were read",
    "unreadable": "the file or object could not be opened or read",
    "bad-json": "a JSON document or JSON line could not be parsed",
    "bad-container": "a Parquet, gzip or base64 container is damaged",
}

EXAMPLES_PER_REASON = 5
# Problems a later run can cure (another --log-format, a source that can be reached again, a
# file fixed in place): a source that had one is read again by the next ingest.
RETRY_REASONS = frozenset({"unreadable", "no-format", "bad-container", "not-text"})


@dataclass(frozen=True)
class Problem:
    reason: str
    source: str
    line: int | None  # None for problems with a whole file or object
    message: str
    field: str | None = None
    # Input lines this problem stands for: 1 for a line, N for N like lines, 0 for a problem
    # with a whole file or object that had no readable lines (unreadable, binary, damaged).
    count: int = 1

    def where(self) -> str:
        source = _display(self.source)
        return source if self.line is None else f"{source}:{self.line}"

    def __str__(self) -> str:
        what = f"field {self.field}: " if self.field else ""
        return f"{self.where()}: {self.reason}: {what}{self.message}"


def _display(source: str) -> str:
    """A local path as the user would write it from here: relative when under this directory."""
    if not source.startswith("/"):
        return source
    try:
        return os.path.relpath(source) if source.startswith(os.getcwd() + os.sep) else source
    except ValueError:
        return source


@dataclass
class Counts:
    lines: int = 0
    records: int = 0
    headers: int = 0
    blank: int = 0
    metadata: int = 0  # container lines that carry no record (CLI tokens, control messages)
    filtered: int = 0  # records outside --since/--until
    skipped: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def balanced(self) -> bool:
        parts = self.records + self.headers + self.blank + self.metadata + self.filtered
        return self.lines == parts + self.skipped


@dataclass
class Accounting:
    """Counts for one ingest, with problems by reason. ``strict`` raises on the first problem."""

    strict: bool = False
    counts: Counts = field(default_factory=Counts)
    by_reason: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, list[Problem]] = field(default_factory=dict)
    sources_read: int = 0
    sources_skipped_unchanged: int = 0
    sources_replaced: int = 0
    empty_sources: list[str] = field(default_factory=list)
    failed_sources: list[str] = field(default_factory=list)  # nothing could be read: retried
    # per (field order, where it came from): a header and the default format with the same
    # fields are two entries
    formats: dict[tuple[tuple[str, ...], str], dict[str, Any]] = field(default_factory=dict)

    def problem(self, problem: Problem) -> None:
        if self.strict:
            raise StrictError(
                f"{problem} (--strict stops at the first problem)",
                hint="run without --strict to read everything readable and see all problems",
            )
        self.counts.skipped += problem.count
        entry = self.by_reason.setdefault(problem.reason, {"lines": 0, "occurrences": 0})
        entry["lines"] += problem.count
        entry["occurrences"] += max(problem.count, 1)
        examples = self.examples.setdefault(problem.reason, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(problem)

    def merge(self, other: Accounting) -> None:
        """Add ``other``'s counts, problems and formats (the accounting of sources read
        elsewhere: a Spark task's), as if its lines had been read here, after this one's."""
        self.counts.add(other.counts)
        for reason, entry in other.by_reason.items():
            mine = self.by_reason.setdefault(reason, {"lines": 0, "occurrences": 0})
            mine["lines"] += entry["lines"]
            mine["occurrences"] += entry["occurrences"]
        for reason, problems in other.examples.items():
            examples = self.examples.setdefault(reason, [])
            examples.extend(problems[: max(0, EXAMPLES_PER_REASON - len(examples))])
        self.sources_read += other.sources_read
        self.sources_skipped_unchanged += other.sources_skipped_unchanged
        self.sources_replaced += other.sources_replaced
        self.empty_sources.extend(other.empty_sources)
        self.failed_sources.extend(other.failed_sources)
        for key, seen in other.formats.items():
            entry = self.formats.setdefault(
                key,
                {
                    "fields": seen["fields"],
                    "origin": seen["origin"],
                    "sources": set(),
                    "records": 0,
                },
            )
            entry["sources"] |= seen["sources"]
            entry["records"] += seen["records"]

    def curable(self) -> int:
        """Problems so far that a later run may cure (RETRY_REASONS)."""
        return sum(self.by_reason.get(r, {}).get("occurrences", 0) for r in RETRY_REASONS)

    def format_seen(self, fields: tuple[str, ...], origin: str, source: str, records: int) -> None:
        entry = self.formats.setdefault(
            (fields, origin),
            {"fields": list(fields), "origin": origin, "sources": set(), "records": 0},
        )
        entry["sources"].add(source)
        entry["records"] += records

    def to_json(self) -> dict[str, Any]:
        return {
            "lines": self.counts.__dict__.copy(),
            "balanced": self.counts.balanced(),
            "sources": {
                "read": self.sources_read,
                "unchanged": self.sources_skipped_unchanged,
                "replaced": self.sources_replaced,
                "empty": self.empty_sources,
                "failed": self.failed_sources,
            },
            "skipped": {
                reason: {
                    "lines": entry["lines"],
                    "occurrences": entry["occurrences"],
                    "meaning": REASONS[reason],
                    "examples": [str(p) for p in self.examples.get(reason, [])],
                }
                for reason, entry in sorted(self.by_reason.items())
            },
            "formats": [
                {
                    "fields": entry["fields"],
                    "origin": entry["origin"],
                    "sources": len(entry["sources"]),
                    "records": entry["records"],
                }
                for entry in self.formats.values()
            ],
        }
