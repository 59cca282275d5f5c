"""Where bytes come from: local paths, S3 prefixes, CloudWatch Logs.

A source string expands into read units. Each unit has a stable id (its provenance in the case: a
path, an ``s3://`` URI, a ``cwl://`` log group) and a fingerprint, so that ingesting the same
unit twice reads it once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from natlens.formats.containers import Piece
from natlens.sources.timerange import TimeRange


@dataclass
class Unit:
    id: str
    fingerprint: str
    read: Callable[[], Iterator[Piece]]
    # A field order known from the source itself (describe-flow-logs for a log group).
    given_format: tuple[str, ...] | None = None
    given_origin: str = "--log-format"
    # CloudWatch Logs: the coverage key and [start, end) in ms this unit reads.
    coverage: tuple[str, int, int] | None = None


@dataclass
class SourceOptions:
    time_range: TimeRange = field(default_factory=TimeRange)
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    log_stream: str | None = None
    # Injected clients (tests, embedding); otherwise built from the standard boto3 chain.
    s3_client: Any = None
    logs_client: Any = None
    ec2_client: Any = None

    def client(self, service: str) -> Any:
        injected = getattr(self, f"{service}_client", None)
        if injected is not None:
            return injected
        from natlens.sources.aws import make_client

        client = make_client(service, self.profile, self.region, self.endpoint_url)
        setattr(self, f"{service}_client", client)
        return client


def expand(
    sources: list[str], options: SourceOptions, coverage: dict[str, list[list[int]]]
) -> Iterator[Unit]:
    """Read units for each source string, in order."""
    from natlens.sources import cloudwatch, local, s3

    for source in sources:
        if source.startswith("s3://"):
            yield from s3.units(source, options)
        elif source.startswith("cwl://"):
            yield from cloudwatch.units(source, options, coverage)
        else:
            yield from local.units(source)
