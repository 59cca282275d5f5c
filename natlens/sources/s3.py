"""``s3://bucket/prefix``: flow log objects in AWS's key layouts, pruned by --since/--until.

AWS writes (docs/aws.md §2.2)::

    prefix/AWSLogs/ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/[HH/]FILE
    prefix/AWSLogs/aws-account-id=ACCOUNT/aws-service=vpcflowlogs/aws-region=REGION/
        year=YYYY/month=MM/day=DD/[hour=HH/]FILE

and names each file ``ACCOUNT_vpcflowlogs_REGION_FLOWLOGID_YYYYMMDDTHHmmZ_HASH.log.gz`` for the
five minutes of record end times it holds. The walk lists one folder level at a time, so date
folders outside the time range are never listed, and files whose name time is outside it are
never read.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from natlens.accounting import Problem
from natlens.errors import SourceError
from natlens.formats.containers import Piece, SourceProblem, read_container
from natlens.sources.aws import describe_error
from natlens.sources.timerange import TimeRange
from natlens.sources.units import SourceOptions, Unit

_LEVELS = ("year", "month", "day", "hour")
_LEVEL_RE = {
    "year": re.compile(r"(?:year=)?(\d{4})"),
    "month": re.compile(r"(?:month=)?(\d{1,2})"),
    "day": re.compile(r"(?:day=)?(\d{1,2})"),
    "hour": re.compile(r"(?:hour=)?(\d{1,2})"),
}
# A record's start can precede its file's folder and name time by up to one 10-minute capture
# window, and the name time stands for five minutes of end times (docs/aws.md §1.1, §2.2).
_SLACK = timedelta(minutes=15)
_FILE_TIME = re.compile(r"_(\d{8})T?(\d{4})Z?_")
PREFETCH = 4


def parse_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise SourceError(f"{uri}: no bucket name", hint="write s3://bucket/prefix")
    return bucket, prefix


def units(uri: str, options: SourceOptions) -> Iterator[Unit]:
    client = options.client("s3")
    bucket, prefix = parse_uri(uri)
    outside: list[str] = []
    objects = list(walk(client, bucket, prefix, (), options.time_range, outside))
    if not objects:
        window = options.time_range
        if outside:
            raise SourceError(
                f"{uri}: no object falls in the time window ({window.describe()}); "
                f"{len(outside):,} object(s) and date folder(s) outside it were passed over, "
                f"such as {outside[0]}",
                hint="widen --since/--until (key dates are when AWS wrote the file, in UTC)",
            )
        raise SourceError(
            f"{uri}: no object under this prefix",
            hint="check the prefix: AWS writes under AWSLogs/ACCOUNT/vpcflowlogs/REGION/...",
        )
    yield from object_units(client, bucket, objects)


def object_units(client: Any, bucket: str, objects: list[dict[str, Any]]) -> Iterator[Unit]:
    """The units of listed objects, each read while the one before it is parsed."""
    fetcher = _Prefetcher(client, bucket, [obj["Key"] for obj in objects])
    for index, obj in enumerate(objects):
        key = obj["Key"]
        fingerprint = f"etag={obj.get('ETag', '').strip(chr(34))};size={obj.get('Size')}"
        yield Unit(f"s3://{bucket}/{key}", fingerprint, _reader(fetcher, index, bucket, key))


def _reader(
    fetcher: _Prefetcher, index: int, bucket: str, key: str
) -> Callable[[], Iterator[Piece]]:
    def read() -> Iterator[Piece]:
        uri = f"s3://{bucket}/{key}"
        try:
            body = fetcher.get(index)
        except Exception as exc:  # any botocore failure is reported, and the next object read
            yield SourceProblem(Problem("unreadable", uri, None, describe_error(exc), count=0))
            return
        yield from read_container(uri, io.BytesIO(body))

    return read


class _Prefetcher:
    """Downloads the next few objects while the current one is parsed."""

    def __init__(self, client: Any, bucket: str, keys: list[str]) -> None:
        self.client, self.bucket, self.keys = client, bucket, keys
        self.pool: ThreadPoolExecutor | None = None
        self.futures: dict[int, Future[bytes]] = {}

    def _fetch(self, key: str) -> bytes:
        response = self.client.get_object(Bucket=self.bucket, Key=key)
        return bytes(response["Body"].read())

    def get(self, index: int) -> bytes:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(PREFETCH, thread_name_prefix="natlens-s3")
        for ahead in range(index, min(index + PREFETCH, len(self.keys))):
            if ahead not in self.futures:
                self.futures[ahead] = self.pool.submit(self._fetch, self.keys[ahead])
        try:
            return self.futures.pop(index).result()
        finally:
            if index == len(self.keys) - 1:
                self.pool.shutdown(wait=False, cancel_futures=True)


def walk(
    client: Any,
    bucket: str,
    prefix: str,
    date: tuple[int, ...],
    window: TimeRange,
    outside: list[str],
) -> Iterator[dict[str, Any]]:
    """Objects under ``prefix``, one folder level at a time, skipping folders out of range
    (their keys, and those of the files out of range, go to ``outside``)."""
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        )
        folders: list[str] = []
        for page in pages:
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/"):
                    continue
                if _file_in_range(obj["Key"], window):
                    yield obj
                else:
                    outside.append(f"s3://{bucket}/{obj['Key']}")
            folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
    except Exception as exc:
        raise SourceError(
            f"s3://{bucket}/{prefix}: cannot list objects ({describe_error(exc)})",
            hint="check the bucket name, --endpoint-url, --profile/--region and s3:ListBucket",
        ) from None
    for folder in folders:
        name = folder[len(prefix) :].rstrip("/") if folder.startswith(prefix) else folder
        name = name.rsplit("/", 1)[-1]
        child = _date_level(name, date)
        if child is not None and not _folder_in_range(child, window):
            outside.append(f"s3://{bucket}/{folder}")
            continue
        yield from walk(
            client, bucket, folder, child if child is not None else date, window, outside
        )


def _date_level(name: str, date: tuple[int, ...]) -> tuple[int, ...] | None:
    """The date so far, if ``name`` is the next date level (year, then month, day, hour)."""
    if len(date) >= len(_LEVELS):
        return None
    match = _LEVEL_RE[_LEVELS[len(date)]].fullmatch(name)
    if not match:
        return None
    value = int(match.group(1))
    limits = {1: (1, 12), 2: (1, 31), 3: (0, 23)}
    low, high = limits.get(len(date), (1970, 9999))
    return (*date, value) if low <= value <= high else None


def _folder_in_range(date: tuple[int, ...], window: TimeRange) -> bool:
    if not window.bounded:
        return True
    year, month, day, hour = [*date, *[1, 1, 0][len(date) - 1 :]]
    try:
        start = datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return False
    if len(date) == 1:
        end = datetime(year + 1, 1, 1, tzinfo=UTC)
    elif len(date) == 2:
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    elif len(date) == 3:
        end = start + timedelta(days=1)
    else:
        end = start + timedelta(hours=1)
    return window.overlaps(int((start - _SLACK).timestamp()), int((end + _SLACK).timestamp()))


def path_in_range(path: str, window: TimeRange) -> bool:
    """Whether a local file may hold records of ``window`` by the dates in its path: its
    folders as AWS names them (YYYY/MM/DD/HH or year=/month=/day=/hour=) and its name's time."""
    if not window.bounded:
        return True
    folders = path.replace(os.sep, "/").split("/")[:-1]
    for first in range(len(folders)):
        date: tuple[int, ...] = ()
        for name in folders[first:]:
            child = _date_level(name, date)
            if child is None:
                break
            date = child
        if len(date) >= 3 and not _folder_in_range(date, window):
            return False
    return _file_in_range(path, window)


def _file_in_range(key: str, window: TimeRange) -> bool:
    if not window.bounded:
        return True
    match = _FILE_TIME.search(key.rsplit("/", 1)[-1])
    if not match:
        return True  # no time in the name: read it and filter its records
    try:
        stamp = datetime.strptime(match.group(1) + match.group(2), "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return True
    start = stamp - _SLACK
    end = stamp + timedelta(minutes=5) + _SLACK
    return window.overlaps(int(start.timestamp()), int(end.timestamp()))
