"""Which flow log files ``--in-place`` reads where they lie (``plan``): the sources listed (with
``--since``/``--until`` pruning dates in folder and file names), each file classified by a peek
at its first bytes or its Parquet footer, and grouped by kind and columns for the engine
(formats/inplace.py has the SQL that reads them).

Sources that are not flow log files AWS delivered (Network Firewall logs, CloudWatch Logs, text
without a header, a file whose compression its name does not say) are read by ingest into the
temporary case beside the view, as without ``--in-place``.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from natlens.formats.inplace import PARQUET, TEXT, Column, Group, InPlace
from natlens.formats.logformat import header_fields
from natlens.schema import FIELDS_BY_NAME
from natlens.sources.units import SourceOptions, Unit

_PEEK = 65536
_THREADS = 10  # botocore keeps 10 connections per client

# -- what the sources hold ---------------------------------------------------------------------


@dataclass
class _File:
    source: str  # the unit id: what ingest records as the source
    unit: Unit | None  # local files: read by ingest when not in place
    bucket: str = ""
    key: str = ""
    obj: dict[str, Any] = field(default_factory=dict)


def plan(sources: list[str], options: SourceOptions) -> InPlace:
    """Which files of ``sources`` are read in place, in groups, and which units ingest reads."""
    from natlens.sources import cloudwatch, local, s3

    files: list[_File] = []
    others: list[Unit] = []
    passed_over = 0
    window = options.time_range
    uses_s3 = False
    for source in sources:
        if source.startswith("cwl://"):
            others.extend(cloudwatch.units(source, options, {}))
        elif source.startswith("s3://"):
            uses_s3 = True
            bucket, prefix = s3.parse_uri(source)
            outside: list[str] = []
            objects = list(s3.walk(options.client("s3"), bucket, prefix, (), window, outside))
            passed_over += len(outside)
            if not objects:
                list(s3.units(source, options))  # the same message as ingest gives
            files.extend(
                _File(f"s3://{bucket}/{o['Key']}", None, bucket, o["Key"], o) for o in objects
            )
        else:
            for unit in local.units(source):
                if window.bounded and not s3.path_in_range(unit.id, window):
                    passed_over += 1
                    continue
                files.append(_File(unit.id, unit))
    client = options.client("s3") if uses_s3 else None
    with ThreadPoolExecutor(_THREADS, thread_name_prefix="natlens-peek") as pool:
        kinds = list(pool.map(lambda f: _classify(f, client), files))
    groups: dict[tuple[Any, ...], Group] = {}
    not_flow_logs: list[str] = []
    seen: set[str] = set()
    for file, kind in zip(files, kinds, strict=True):
        if file.source in seen:
            continue  # a file named twice, or a directory and a file in it: read once
        seen.add(file.source)
        if kind is None:
            others.append(file.unit or _s3_unit(file, client, options))
            continue
        if isinstance(kind, str):  # Parquet of other columns
            not_flow_logs.append(file.source)
            continue
        kind_name, columns, compressed = kind
        group = groups.setdefault(kind, Group(kind_name, columns, compressed=compressed))
        group.files.append(file.source)
    return InPlace(
        list(groups.values()), others, options if uses_s3 else None, passed_over, not_flow_logs
    )


def _s3_unit(file: _File, client: Any, options: SourceOptions) -> Unit:
    from natlens.sources import s3

    return next(s3.object_units(client, file.bucket, [file.obj]))


def _classify(file: _File, client: Any) -> tuple[str, tuple[Column, ...], bool] | str | None:
    """(kind, columns, gzip) of a file read in place, "not-flow-logs" for Parquet of other
    columns, or None: ingest reads it."""
    if file.unit is None and any(c in file.key for c in "*?[]{}\\"):
        return None  # the engines read such a key as a pattern
    try:
        head = _head(file, client)
        if head[:4] == b"PAR1":
            columns = _parquet_columns(_parquet_schema(file, client))
            return (PARQUET, columns, False) if columns else "not-flow-logs"
        compressed = head[:2] == b"\x1f\x8b"
        if compressed != file.source.endswith(".gz"):
            return None  # the engines' text readers go by the name
        text = zlib.decompressobj(31).decompress(head) if compressed else head
    except Exception:  # unreadable here: ingest reads it and says why
        return None
    line, newline, _rest = text.partition(b"\n")
    if not newline:
        return None
    try:
        fields = header_fields(line.decode("utf-8").rstrip("\r"))
    except UnicodeDecodeError:
        return None
    if fields is None:
        return None
    return TEXT, tuple(Column(f, f, "text") for f in fields), compressed


def _head(file: _File, client: Any) -> bytes:
    if file.unit is not None:
        with open(file.source, "rb") as handle:
            return handle.read(_PEEK)
    response = client.get_object(Bucket=file.bucket, Key=file.key, Range=f"bytes=0-{_PEEK - 1}")
    return bytes(response["Body"].read())


def _parquet_schema(file: _File, client: Any) -> pa.Schema:
    if file.unit is not None:
        return pq.read_schema(file.source)
    size = int(file.obj["Size"])
    tail = _range(client, file, max(size - 8, 0), size - 1)
    (length,) = struct.unpack("<I", tail[:4])
    footer = _range(client, file, max(size - 8 - length, 0), size - 1)
    return pq.read_schema(pa.BufferReader(b"PAR1" + footer))


def _range(client: Any, file: _File, first: int, last: int) -> bytes:
    response = client.get_object(Bucket=file.bucket, Key=file.key, Range=f"bytes={first}-{last}")
    return bytes(response["Body"].read())


def _parquet_columns(schema: pa.Schema) -> tuple[Column, ...]:
    """The columns as ingest reads them (formats/vpc_flow.py ``feed_table``): names matched
    with ``_`` for ``-`` and any case, the first of two for one field; none when most columns
    are not flow log fields."""
    from natlens.formats.vpc_flow import _parquet_field

    columns: list[Column] = []
    taken: set[str] = set()
    names = [_parquet_field(f.name) for f in schema]
    known = sum(name in FIELDS_BY_NAME for name in names)
    if known * 2 < len(names) or known < 2:
        return ()
    for name, arrow in zip(names, schema, strict=True):
        if name in taken:
            continue
        taken.add(name)
        dtype = arrow.type
        if pa.types.is_dictionary(dtype):
            dtype = dtype.value_type
        if pa.types.is_nested(dtype):
            stored = "nested"
        elif pa.types.is_integer(dtype):
            stored = "int"
        else:
            stored = "text"
        columns.append(Column(arrow.name, name, stored))
    return tuple(columns)
