"""S3 sources against a real S3-compatible server (SeaweedFS) on 127.0.0.1."""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests import containers as c
from tests.conftest import AWS_EXAMPLES

pytestmark = pytest.mark.s3

HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"


def record(ts: int, port: int) -> str:
    return (
        f"2 123456789010 eni-1235b8ca123456789 10.0.1.5 203.0.113.5 {port} 443 6 10 840 "
        f"{ts - 50} {ts} ACCEPT OK"
    )


def aws_key(layout: str, when: datetime, prefix: str = "logs") -> str:
    """The key AWS writes a flow log file under (docs/aws.md §2.2)."""
    account, region = "123456789010", "us-east-1"
    name = f"{account}_vpcflowlogs_{region}_fl-1234abcd_{when:%Y%m%dT%H%M}Z_{uuid.uuid4().hex[:8]}.log.gz"
    if layout.startswith("hive"):
        folder = (
            f"{prefix}/AWSLogs/aws-account-id={account}/aws-service=vpcflowlogs/"
            f"aws-region={region}/year={when:%Y}/month={when:%m}/day={when:%d}/"
        )
        if layout == "hive-hourly":
            folder += f"hour={when:%H}/"
    else:
        folder = f"{prefix}/AWSLogs/{account}/vpcflowlogs/{region}/{when:%Y/%m/%d}/"
        if layout == "hourly":
            folder += f"{when:%H}/"
    return folder + name


def put_file(client, bucket: str, key: str, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
    body = gzip.compress(("\n".join([HEADER, *lines]) + "\n").encode())
    client.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture
def bucket(s3_server):  # type: ignore[no-untyped-def]
    name = f"natlens-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.mark.parametrize("layout", ["plain", "hourly", "hive", "hive-hourly"])
def test_layouts_and_time_pruning(tmp_path, natlens, s3_server, bucket, layout) -> None:
    client = s3_server.client()
    day = datetime(2024, 6, 1, tzinfo=UTC)
    # Three days, one file every 8 hours, each with three records ending in its 5 minutes.
    files = {}
    for i in range(9):
        when = day + timedelta(hours=8 * i)
        ts = int(when.timestamp()) + 120
        key = aws_key(layout, when)
        put_file(client, bucket, key, [record(ts, 40000 + 3 * i + j) for j in range(3)])
        files[key] = when
    endpoint = ["--endpoint-url", s3_server.endpoint]

    run = natlens("ingest", f"s3://{bucket}/logs/", "--case", tmp_path / "all", "--json", *endpoint)
    assert run.code == 0, run.err
    report = run.json()
    assert report["sources"]["read"] == 9
    assert report["lines"]["records"] == 27

    since = day + timedelta(days=1)
    until = day + timedelta(days=1, hours=23, minutes=59)
    run = natlens(
        "ingest", f"s3://{bucket}/logs", "--case", tmp_path / "day2", "--json",
        "--since", since.isoformat(), "--until", until.isoformat(), *endpoint,
    )  # fmt: skip
    assert run.code == 0, run.err
    report = run.json()
    # A file named for 00:00 the next day may hold records that started before --until: it is
    # read (15 minutes of slack), and its records outside the range are filtered out.
    slack = timedelta(minutes=15)
    read = [k for k, when in files.items() if since - slack <= when <= until + slack]
    assert report["sources"]["read"] == len(read) == 4
    assert report["lines"]["records"] == 9
    assert report["lines"]["filtered"] == 3

    # a window that matches no object is said, not passed over
    run = natlens(
        "ingest", f"s3://{bucket}/logs", "--case", tmp_path / "none",
        "--since", "2025-01-01", "--until", "2025-01-02", *endpoint,
    )  # fmt: skip
    assert run.code == 2
    assert "no object falls in the time window (--since 2025-01-01T00:00:00Z" in run.err
    assert "passed over" in run.err


def test_reingest_reads_nothing_twice_and_replaces_changed_objects(
    tmp_path, natlens, s3_server, bucket
) -> None:
    client = s3_server.client()
    when = datetime(2024, 6, 1, 12, tzinfo=UTC)
    ts = int(when.timestamp())
    keys = [aws_key("plain", when + timedelta(minutes=5 * i)) for i in range(3)]
    for i, key in enumerate(keys):
        put_file(client, bucket, key, [record(ts, 50000 + i)])
    args = ("--case", tmp_path / "case", "--json", "--endpoint-url", s3_server.endpoint)

    first = natlens("ingest", f"s3://{bucket}/", *args).json()
    assert first["lines"]["records"] == 3

    again = natlens("ingest", f"s3://{bucket}/", *args).json()
    assert again["sources"]["unchanged"] == 3 and again["lines"]["records"] == 0

    put_file(client, bucket, keys[0], [record(ts, 60000), record(ts, 60001)])
    put_file(client, bucket, aws_key("plain", when + timedelta(minutes=30)), [record(ts, 60002)])
    third = natlens("ingest", f"s3://{bucket}/", *args).json()
    assert third["sources"] == {"read": 2, "unchanged": 2, "replaced": 1, "empty": [], "failed": []}

    rows = natlens("records", tmp_path / "case", "--format", "jsonl").jsonl()
    assert sorted(r["srcport"] for r in rows) == [50001, 50002, 60000, 60001, 60002]


def test_parquet_objects_and_damaged_objects(tmp_path, natlens, s3_server, bucket) -> None:
    client = s3_server.client()
    fields, records = c.split_fixture(AWS_EXAMPLES / "service-path-direction.log")
    client.put_object(Bucket=bucket, Key="pq/AWSLogs/a.parquet", Body=c.parquet(fields, records))
    good = gzip.compress(c.plain(*c.split_fixture(AWS_EXAMPLES / "accepted-rejected.log")))
    client.put_object(Bucket=bucket, Key="pq/AWSLogs/b.log.gz", Body=good[: len(good) - 30])
    run = natlens(
        "ingest", f"s3://{bucket}/pq/", "--case", tmp_path / "case", "--json",
        "--endpoint-url", s3_server.endpoint,
    )  # fmt: skip
    report = run.json()
    assert report["lines"]["records"] >= 2
    assert "truncated" in report["skipped"]
    assert f"s3://{bucket}/pq/AWSLogs/b.log.gz" in report["skipped"]["truncated"]["examples"][0]
    rows = natlens("records", tmp_path / "case", "--format", "jsonl").jsonl()
    assert {r.get("pkt_dst_aws_service") for r in rows} >= {"S3"}


def test_missing_bucket_is_a_clear_error(tmp_path, natlens, s3_server) -> None:
    run = natlens(
        "ingest", "s3://natlens-no-such-bucket/AWSLogs/", "--case", tmp_path / "case",
        "--endpoint-url", s3_server.endpoint,
    )  # fmt: skip
    assert run.code == 2
    assert "s3://natlens-no-such-bucket/AWSLogs/: cannot list objects" in run.err
    assert "hint:" in run.err


def test_every_aws_example_from_s3(tmp_path, natlens, s3_server, bucket) -> None:
    """docs/aws.md §3: every example record, delivered as S3 delivers it, read with its meaning."""
    from tests.test_aws_examples import EXAMPLES, assert_meaning

    client = s3_server.client()
    when = datetime(2024, 6, 1, 12, tzinfo=UTC)
    keys = {}
    for i, name in enumerate(EXAMPLES):
        key = aws_key("plain", when + timedelta(minutes=5 * i))
        fields, records = c.split_fixture(AWS_EXAMPLES / f"{name}.log")
        client.put_object(Bucket=bucket, Key=key, Body=c.gzip_text(fields, records))
        keys[f"s3://{bucket}/{key}"] = name
    run = natlens(
        "ingest", f"s3://{bucket}/logs/", "--case", tmp_path / "case",
        "--endpoint-url", s3_server.endpoint, "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert run.json()["lines"]["skipped"] == 0
    rows = natlens("records", tmp_path / "case", "--format", "jsonl", "--all-columns").jsonl()
    for uri, name in keys.items():
        assert_meaning([r for r in rows if r["source"] == uri], name)


def test_an_object_that_cannot_be_read_is_reported_and_the_rest_read(
    tmp_path, natlens, s3_server, bucket
) -> None:
    """A bucket policy denies GetObject under one prefix: listing works, reading does not."""
    import json

    client = s3_server.client()
    when = datetime(2024, 6, 1, 12, tzinfo=UTC)
    ts = int(when.timestamp())
    put_file(client, bucket, "logs/open/a.log.gz", [record(ts, 41000)])
    put_file(client, bucket, "logs/secret/b.log.gz", [record(ts, 41001)])
    put_file(client, bucket, "logs/zzz/c.log.gz", [record(ts, 41002)])
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/logs/secret/*",
            }
        ],
    }
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(deny))
    args = ("--case", tmp_path / "case", "--endpoint-url", s3_server.endpoint, "--json")
    report = natlens("ingest", f"s3://{bucket}/logs/", *args).json()
    assert report["lines"]["records"] == 2
    example = report["skipped"]["unreadable"]["examples"][0]
    assert (
        example == f"s3://{bucket}/logs/secret/b.log.gz: unreadable: AccessDenied: Access Denied."
    )

    # Not recorded as read: once readable, the next ingest reads it.
    client.delete_bucket_policy(Bucket=bucket)
    again = natlens("ingest", f"s3://{bucket}/logs/", *args).json()
    assert (again["sources"]["read"], again["sources"]["unchanged"]) == (1, 2)
    assert again["lines"]["records"] == 1
