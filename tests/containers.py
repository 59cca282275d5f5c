"""Build the containers AWS and the AWS CLI deliver flow log records in, from record lines.

Written from AWS's descriptions of each container (docs/aws.md §2), independently of natlens's
readers, so that the readers are tested against the shapes and not against themselves.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# AWS's Parquet delivery types (docs/aws.md §1.2); every other field is a string.
PARQUET_INT32 = {"version", "srcport", "dstport", "protocol", "tcp-flags", "traffic-path"}
PARQUET_INT64 = {"packets", "bytes", "start", "end"}


def split_fixture(path: Path) -> tuple[list[str], list[str]]:
    """(header fields, record lines) of a fixture file with a header line."""
    lines = path.read_text().splitlines()
    return lines[0].split(), lines[1:]


def format_string(fields: list[str]) -> str:
    return " ".join("${" + f + "}" for f in fields)


def plain(fields: list[str], records: list[str]) -> bytes:
    return ("\n".join([" ".join(fields), *records]) + "\n").encode()


def gzip_text(fields: list[str], records: list[str]) -> bytes:
    return gzip.compress(plain(fields, records))


def gzip_members(fields: list[str], records: list[str]) -> bytes:
    """One gzip member per line, back to back: still one valid gzip file."""
    return b"".join(gzip.compress((line + "\n").encode()) for line in [" ".join(fields), *records])


def parquet(fields: list[str], records: list[str]) -> bytes:
    """A Parquet file as S3 delivery writes it: columns named with '_', typed, NULL for '-'."""
    rows = [line.split() for line in records]
    columns = {}
    for i, name in enumerate(fields):
        values = [None if row[i] == "-" else row[i] for row in rows]
        if name in PARQUET_INT32:
            columns[name.replace("-", "_")] = pa.array(
                [None if v is None else int(v) for v in values], pa.int32()
            )
        elif name in PARQUET_INT64:
            columns[name.replace("-", "_")] = pa.array(
                [None if v is None else int(v) for v in values], pa.int64()
            )
        else:
            columns[name.replace("-", "_")] = pa.array(values, pa.string())
    out = io.BytesIO()
    pq.write_table(pa.table(columns), out)
    return out.getvalue()


def _events(records: list[str], start: int = 1_700_000_000_000) -> list[dict[str, object]]:
    # AWS: one event per record, event timestamp = the record's start (docs/aws.md §2.1).
    return [
        {
            "logStreamName": "eni-1235b8ca123456789-all",
            "timestamp": start + i,
            "message": line,
            "ingestionTime": start + 300_000 + i,
            "eventId": f"{36_000_000_000 + i}",
        }
        for i, line in enumerate(records)
    ]


def cloudwatch_export(records: list[str]) -> bytes:
    """A CloudWatch Logs export task object: the event time, a space, the message."""
    return gzip.compress(
        "".join(
            f"2023-11-14T22:13:{20 + i % 30:02d}.000Z {line}\n" for i, line in enumerate(records)
        ).encode()
    )


def logs_tail(records: list[str]) -> bytes:
    """``aws logs tail`` output: time, stream name, message."""
    return "".join(
        f"2023-11-14T22:13:20.000000+00:00 eni-1235b8ca123456789-all {line}\n" for line in records
    ).encode()


def filter_log_events_json(records: list[str]) -> bytes:
    return json.dumps(
        {
            "events": _events(records),
            "searchedLogStreams": [
                {"logStreamName": "eni-1235b8ca123456789-all", "searchedCompletely": True}
            ],
        },
        indent=4,
    ).encode()


def get_log_events_json(records: list[str]) -> bytes:
    events = [
        {k: e[k] for k in ("timestamp", "message", "ingestionTime")} for e in _events(records)
    ]
    return json.dumps(
        {"events": events, "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}, indent=4
    ).encode()


def filter_log_events_text(records: list[str]) -> bytes:
    """``--output text``: EVENTS and the event's keys in sorted order, tab separated."""
    # Top-level scalars first (the page token), then the lists in key order: events, then
    # searchedLogStreams (awscli/text.py).
    lines = ["f/37051846286335/s"]
    for e in _events(records):
        lines.append(
            "\t".join(
                [
                    "EVENTS",
                    str(e["eventId"]),
                    str(e["ingestionTime"]),
                    str(e["logStreamName"]),
                    str(e["message"]),
                    str(e["timestamp"]),
                ]
            )
        )
    lines.append("SEARCHEDLOGSTREAMS\teni-1235b8ca123456789-all\tTrue")
    return ("\n".join(lines) + "\n").encode()


def subscription_message(records: list[str]) -> dict[str, object]:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789010",
        "logGroup": "vpc-flow-logs",
        "logStream": "eni-1235b8ca123456789-all",
        "subscriptionFilters": ["natlens"],
        "logEvents": [
            {"id": e["eventId"], "timestamp": e["timestamp"], "message": e["message"]}
            for e in _events(records)
        ],
    }


def subscription_payloads(records: list[str]) -> bytes:
    """Base64 of gzip of the JSON, one payload per line (as a Kinesis consumer would save it)."""
    control = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logEvents": []}
    payloads = [control, subscription_message(records)]
    return (
        b"\n".join(base64.b64encode(gzip.compress(json.dumps(p).encode())) for p in payloads)
        + b"\n"
    )


def lambda_event(records: list[str]) -> bytes:
    data = base64.b64encode(gzip.compress(json.dumps(subscription_message(records)).encode()))
    return json.dumps({"awslogs": {"data": data.decode()}}).encode()


def firehose_concatenated(records: list[str]) -> bytes:
    """Firehose writes subscription JSON documents back to back, gzip-compressed."""
    half = len(records) // 2
    docs = [subscription_message(records[:half]), subscription_message(records[half:])]
    return gzip.compress("".join(json.dumps(d) for d in docs).encode())
