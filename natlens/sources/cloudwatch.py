"""``cwl://LOG_GROUP``: flow log events read through the CloudWatch Logs API.

One log stream per network interface, one event per record, no header line (docs/aws.md §2.1). The
field order comes from --log-format, else from ``describe-flow-logs`` for the log group, else the
default format when the records fit it. The case remembers which time ranges of a log group it
holds, so a second ingest reads only what is new.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from natlens.accounting import Problem
from natlens.errors import SourceError
from natlens.formats.containers import Piece, SourceProblem, TextPiece
from natlens.formats.logformat import parse_log_format
from natlens.sources.aws import describe_error
from natlens.sources.timerange import subtract
from natlens.sources.units import SourceOptions, Unit

# Flow log events reach CloudWatch Logs about 5 minutes after their capture window closes, and a
# window is up to 10 minutes long (docs/aws.md §1.1): the newest 20 minutes are read again next
# time.
LATE_ARRIVAL_MS = 20 * 60 * 1000


def parse_uri(uri: str, log_stream: str | None) -> tuple[str, str | None]:
    """``cwl://GROUP[?stream=NAME_OR_PREFIX*]``; a group name may itself start with ``/``."""
    rest = uri[len("cwl://") :]
    parts = urlsplit("x://h/" + rest)
    group = rest.split("?", 1)[0]
    if not group:
        raise SourceError(f"{uri}: no log group name", hint="write cwl://LOG_GROUP_NAME")
    stream = parse_qs(parts.query).get("stream", [None])[0] or log_stream
    return group, stream


def coverage_key(group: str, stream: str | None) -> str:
    return f"cwl://{group}" + (f"?stream={stream}" if stream else "")


def units(uri: str, options: SourceOptions, coverage: dict[str, list[list[int]]]) -> Iterator[Unit]:
    group, stream = parse_uri(uri, options.log_stream)
    key = coverage_key(group, stream)
    now_ms = int(time.time() * 1000)
    window = options.time_range
    start_ms = window.since * 1000 if window.since is not None else 0
    end_ms = (window.until + 1) * 1000 if window.until is not None else now_ms
    gaps = subtract((start_ms, end_ms), coverage.get(key, []))
    if not gaps:
        return
    given = _flow_log_format(options, group)
    for lo, hi in gaps:
        yield Unit(
            id=key,
            fingerprint=f"{lo}-{hi}",
            read=_reader(options, group, stream, lo, hi),
            given_format=given,
            given_origin="describe-flow-logs",
            coverage=(key, lo, min(hi, now_ms - LATE_ARRIVAL_MS)),
        )


def _flow_log_format(options: SourceOptions, group: str) -> tuple[str, ...] | None:
    """The LogFormat of the flow log that writes to ``group``, when exactly one does."""
    try:
        response = options.client("ec2").describe_flow_logs(
            Filters=[{"Name": "log-group-name", "Values": [group]}]
        )
    except Exception:
        return None  # no ec2:DescribeFlowLogs permission: fall back to --log-format / default
    formats = {fl["LogFormat"] for fl in response.get("FlowLogs", []) if fl.get("LogFormat")}
    if len(formats) != 1:
        return None
    try:
        return parse_log_format(formats.pop())
    except Exception:
        return None


def _reader(
    options: SourceOptions, group: str, stream: str | None, lo: int, hi: int
) -> Callable[[], Iterator[Piece]]:
    def read() -> Iterator[Piece]:
        client = options.client("logs")
        request: dict[str, Any] = {"logGroupName": group, "startTime": lo, "endTime": hi - 1}
        if stream:
            if stream.endswith("*"):
                request["logStreamNamePrefix"] = stream[:-1]
            else:
                request["logStreamNames"] = stream.split(",")
        numbers: dict[str, int] = {}
        try:
            for page in client.get_paginator("filter_log_events").paginate(**request):
                by_stream: dict[str, list[str]] = {}
                for event in page.get("events", []):
                    name = event.get("logStreamName", "")
                    message = event.get("message", "").replace("\n", " ")
                    by_stream.setdefault(name, []).append(message)
                for name, messages in by_stream.items():
                    source = f"cwl://{group}/{name}"
                    first = numbers.get(source, 0) + 1
                    numbers[source] = first + len(messages) - 1
                    yield TextPiece(source, "\n".join(messages).encode() + b"\n", first)
        except Exception as exc:
            yield SourceProblem(
                Problem(
                    "unreadable",
                    f"cwl://{group}",
                    None,
                    f"CloudWatch Logs: {describe_error(exc)}",
                    count=0,
                )
            )

    return read
