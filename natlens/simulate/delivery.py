"""Writing what AWS would deliver, where it would deliver it, and the truth beside it.

Flow logs (docs/aws.md §2): S3 text (gzip, a header line, one file per five minutes of record end
times, under ``AWSLogs/ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/``), S3 Parquet (typed columns named
with ``_``), a CloudWatch Logs export task (one folder per log stream, each line the event time
and the record), and ``aws logs filter-log-events`` JSON per log stream. Network Firewall logs
(docs/aws.md §6): JSON lines, gzip, under ``AWSLogs/ACCOUNT/network-firewall/TYPE/REGION/NAME/
YYYY/MM/DD/HH/``. Each writer says in which file and on which line every record landed, which is
how the truth refers to records.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from isal import igzip

from natlens.schema import FIELDS_BY_NAME, Kind
from natlens.simulate.flowlogs import Records, format_version
from natlens.simulate.world import ACCOUNT, REGION


def _gzip_writer(path: Path) -> IO[bytes]:
    """A fast (ISA-L, level 1) gzip file for writing; isal's open() carries no annotations."""
    handle: IO[bytes] = igzip.open(path, "wb", compresslevel=1)  # type: ignore[no-untyped-call]
    return handle


BUCKET_SECONDS = 300  # AWS publishes a file every five minutes (docs/aws.md §2.2, §6)
# Deliveries to S3 say which field is which (a header line, Parquet column names); records from
# CloudWatch Logs need the flow log's format string (--log-format) to be read.
SELF_DESCRIBING = ("s3-text", "parquet")


def _stamp(epoch: int, fmt: str) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(fmt)


def text_table(records: Records, fields: tuple[str, ...], version: int) -> pa.Table:
    """The fields of a format as text columns, '-' where AWS writes '-' (docs/aws.md §1.1)."""
    n = len(records)
    columns = []
    for name in fields:
        if name == "version":
            col = pa.repeat(pa.scalar(str(version)), n)
        elif name in records.columns:
            col = records.columns[name].cast(pa.string())
            col = pc.fill_null(col, "-")
        else:
            col = pa.repeat(pa.scalar("-"), n)
        columns.append(col)
    return pa.Table.from_arrays(columns, names=list(fields))


def _csv_lines(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pacsv.write_csv(
        table,
        out,
        write_options=pacsv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none"),
    )
    return out.getvalue()


class FlowLogWriter:
    """Writes one flow log's records; returns each record's (file, line)."""

    def __init__(
        self,
        root: Path,
        name: str,
        fields: tuple[str, ...],
        delivery: str,
        flow_log_id: str,
        tag: str,
    ) -> None:
        self.root, self.name, self.fields, self.delivery = root, name, fields, delivery
        self.flow_log_id, self.tag = flow_log_id, tag
        self.version = format_version(fields)
        self.files: dict[object, Any] = {}
        self.lines: dict[object, int] = {}
        self.paths: dict[object, str] = {}
        self.records = 0

    # -- where ---------------------------------------------------------------------------------

    def _key(self, records: Records) -> np.ndarray:
        if self.delivery in SELF_DESCRIBING:
            return np.asarray(
                records.columns["end"].to_numpy(zero_copy_only=False) // BUCKET_SECONDS
            )
        return np.asarray(records.columns["interface-id"].to_numpy(zero_copy_only=False))

    def _path(self, key: object) -> str:
        if self.delivery in SELF_DESCRIBING:
            start = int(key) * BUCKET_SECONDS  # type: ignore[call-overload]
            folder = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{_stamp(start, '%Y/%m/%d')}"
            suffix = ".log.gz" if self.delivery == "s3-text" else ".log.parquet"
            name = (
                f"{ACCOUNT}_vpcflowlogs_{REGION}_{self.flow_log_id}_"
                f"{_stamp(start, '%Y%m%dT%H%MZ')}_{self.tag}{suffix}"
            )
            return f"flowlogs/{self.name}/{folder}/{name}"
        if self.delivery == "cloudwatch-export":
            return f"flowlogs/{self.name}/exportedlogs/{self.tag}/{key}-all/000000.gz"
        return f"flowlogs/{self.name}/filter-log-events/{key}-all.json"

    def _open(self, key: object) -> Any:
        path = self.root / self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.paths[key] = self._path(key)
        self.lines[key] = 0
        if self.delivery == "s3-text":
            handle: Any = _gzip_writer(path)
            handle.write((" ".join(self.fields) + "\n").encode())  # the header line
            self.lines[key] = 1
        elif self.delivery == "parquet":
            handle = pq.ParquetWriter(path, _parquet_schema(self.fields), compression="snappy")
        elif self.delivery == "cloudwatch-export":
            handle = _gzip_writer(path)
        else:
            handle = open(path, "w")  # noqa: SIM115 - closed in close()
            handle.write('{\n    "events": [')
        self.files[key] = handle
        return handle

    # -- what ----------------------------------------------------------------------------------

    def write(self, records: Records) -> tuple[np.ndarray, np.ndarray]:
        n = len(records)
        files = np.empty(n, dtype=object)
        lines = np.zeros(n, dtype=np.int64)
        if n == 0:
            return files, lines
        keys = self._key(records)
        for key in sorted(set(keys.tolist())):
            rows = np.flatnonzero(keys == key)
            part = records.take(rows)
            handle = self.files.get(key) or self._open(key)
            first = self.lines[key] + 1
            self._append(handle, part)
            self.lines[key] += len(rows)
            files[rows] = self.paths[key]
            lines[rows] = np.arange(first, first + len(rows))
        self.records += n
        return files, lines

    def _append(self, handle: Any, part: Records) -> None:
        if self.delivery == "parquet":
            handle.write_table(_parquet_table(part, self.fields, self.version))
            return
        table = text_table(part, self.fields, self.version)
        if self.delivery == "s3-text":
            handle.write(_csv_lines(table))
        elif self.delivery == "cloudwatch-export":
            # An export task line: the event time (the record's start, docs/aws.md §2.1), a space,
            # the message.
            start = part.columns["start"].cast(pa.timestamp("s"))
            when = pc.strftime(start, format="%Y-%m-%dT%H:%M:%S.000Z")
            columns = [when, *(table.column(i) for i in range(table.num_columns))]
            handle.write(_csv_lines(pa.Table.from_arrays(columns, ["@time", *table.column_names])))
        else:
            messages = _joined(table).to_pylist()
            starts = part.columns["start"].to_pylist()
            ends = part.columns["end"].to_pylist()
            streams = part.columns["interface-id"].to_pylist()
            first = self.lines[streams[0]] if streams else 0
            chunks = []
            for k, (message, start, end, stream) in enumerate(
                zip(messages, starts, ends, streams, strict=True)
            ):
                event = {
                    "logStreamName": f"{stream}-all",
                    "timestamp": start * 1000,
                    "message": message,
                    "ingestionTime": (end + 300) * 1000,
                    "eventId": f"{start * 1000}{first + k:06d}",
                }
                separator = "," if first + k else ""
                chunks.append(f"{separator}\n        " + json.dumps(event))
            handle.write("".join(chunks))

    def close(self) -> None:
        for handle in self.files.values():
            if self.delivery == "cloudwatch-json":
                handle.write('\n    ],\n    "searchedLogStreams": []\n}\n')
            handle.close()

    def format_string(self) -> str:
        return " ".join("${" + f + "}" for f in self.fields)


def _joined(table: pa.Table) -> pa.Array:
    return pc.binary_join_element_wise(*[table.column(i) for i in range(table.num_columns)], " ")


def _parquet_type(name: str) -> pa.DataType:
    field = FIELDS_BY_NAME.get(name)
    if field is None:
        return pa.string()
    return {Kind.INT32: pa.int32(), Kind.INT64: pa.int64()}.get(field.kind, pa.string())


def _parquet_schema(fields: tuple[str, ...]) -> pa.Schema:
    return pa.schema([(f.replace("-", "_"), _parquet_type(f)) for f in fields])


def _parquet_table(records: Records, fields: tuple[str, ...], version: int) -> pa.Table:
    n = len(records)
    arrays = []
    for name in fields:
        dtype = _parquet_type(name)
        if name == "version":
            arrays.append(pa.repeat(pa.scalar(version, dtype), n))
        elif name in records.columns:
            arrays.append(records.columns[name].cast(dtype))
        else:
            arrays.append(pa.nulls(n, dtype))
    return pa.Table.from_arrays(arrays, schema=_parquet_schema(fields))


class FirewallWriter:
    """Network Firewall logs: one gzip JSON-lines file per log type and five minutes."""

    def __init__(self, root: Path, firewall: str, tag: str) -> None:
        self.root, self.firewall, self.tag = root, firewall, tag
        self.files: dict[tuple[str, int], IO[bytes]] = {}
        self.lines: dict[tuple[str, int], int] = {}
        self.paths: dict[tuple[str, int], str] = {}
        self.events = 0

    def write(self, log_type: str, epoch: int, text: str) -> tuple[str, int]:
        key = (log_type, epoch // BUCKET_SECONDS)
        handle = self.files.get(key)
        if handle is None:
            start = key[1] * BUCKET_SECONDS
            folder = (
                f"firewall/AWSLogs/{ACCOUNT}/network-firewall/{log_type}/{REGION}/"
                f"{self.firewall}/{_stamp(start, '%Y/%m/%d/%H')}"
            )
            name = (
                f"{ACCOUNT}_network-firewall_{log_type}_{REGION}_{self.firewall}_"
                f"{_stamp(start, '%Y%m%d%H%M')}_{self.tag}.log.gz"
            )
            path = self.root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.files[key] = _gzip_writer(path)
            self.paths[key] = f"{folder}/{name}"
            self.lines[key] = 0
        handle.write(text.encode() + b"\n")
        self.lines[key] += 1
        self.events += 1
        return self.paths[key], self.lines[key]

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()


class TruthWriter:
    """Truth tables, streamed to Parquet and turned into gzip JSON lines at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root / "truth"
        self.root.mkdir(parents=True, exist_ok=True)
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = {}

    def write(self, name: str, table: pa.Table) -> None:
        if table.num_rows == 0 and name in self.writers:
            return
        writer = self.writers.get(name)
        if writer is None:
            writer = self.writers[name] = pq.ParquetWriter(
                self.root / f"{name}.parquet", table.schema, compression="zstd"
            )
            self.rows[name] = 0
        writer.write_table(table)
        self.rows[name] += table.num_rows

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        con.execute("SET memory_limit = '1GB'")
        con.execute("SET preserve_insertion_order = true")
        for name in self.writers:
            source = str(self.root / f"{name}.parquet").replace("'", "''")
            target = str(self.root / f"{name}.jsonl.gz").replace("'", "''")
            con.execute(
                f"COPY (SELECT * FROM read_parquet('{source}')) TO '{target}' "
                "(FORMAT json, COMPRESSION gzip)"
            )
        con.close()
