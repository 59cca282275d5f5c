"""cwl:// sources: the CloudWatch Logs API (moto; it has no real local server).

moto does not filter by log stream name prefix, so for stream filters the tests check the request
natlens sends rather than what comes back.
"""

from __future__ import annotations

import contextlib
import time

import boto3
import pytest
from moto import mock_aws

from tests import containers as c
from tests.conftest import AWS_EXAMPLES

GROUP = "/aws/vpc/flow-logs"


def record(start: int, port: int) -> str:
    return (
        f"2 123456789010 eni-0a1b2c3d4e5f60718 10.0.1.5 203.0.113.5 {port} 443 6 10 840 "
        f"{start} {start + 55} ACCEPT OK"
    )


@pytest.fixture
def logs():  # type: ignore[no-untyped-def]
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName=GROUP)
        yield client


def put(logs, stream: str, messages: list[tuple[int, str]]) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName=stream,
        # AWS: the event timestamp is the record's start (docs/aws.md §2.1).
        logEvents=[{"timestamp": start * 1000, "message": m} for start, m in messages],
    )


def test_reads_every_stream_in_the_time_range(tmp_path, natlens, logs) -> None:
    now = int(time.time()) - 3600
    put(
        logs,
        "eni-0a1b2c3d4e5f60718-all",
        [(now + 60 * i, record(now + 60 * i, 40000 + i)) for i in range(10)],
    )
    put(
        logs,
        "eni-0ffff000011112222-all",
        [(now + 60 * i, record(now + 60 * i, 50000 + i)) for i in range(10)],
    )
    run = natlens(
        "ingest", f"cwl://{GROUP}", "--case", tmp_path / "case", "--json",
        "--since", str(now + 120), "--until", str(now + 420),
    )  # fmt: skip
    assert run.code == 0, run.err
    report = run.json()
    assert report["lines"]["records"] == 12  # minutes 2..7 of each stream
    rows = natlens("records", tmp_path / "case", "--format", "jsonl").jsonl()
    assert {r["source"] for r in rows} == {
        f"cwl://{GROUP}/eni-0a1b2c3d4e5f60718-all",
        f"cwl://{GROUP}/eni-0ffff000011112222-all",
    }
    first = [r for r in rows if r["source"].endswith("718-all")]
    assert [r["line"] for r in first] == [1, 2, 3, 4, 5, 6]
    assert [r["srcport"] for r in first] == [40002, 40003, 40004, 40005, 40006, 40007]


def test_second_ingest_reads_only_the_new_time_range(tmp_path, natlens, logs) -> None:
    now = int(time.time()) - 7200
    put(
        logs,
        "eni-0a1b2c3d4e5f60718-all",
        [(now + 60 * i, record(now + 60 * i, 40000 + i)) for i in range(60)],
    )
    args = ("--case", tmp_path / "case", "--json")
    first = natlens(
        "ingest", f"cwl://{GROUP}", *args, "--since", str(now), "--until", str(now + 1799)
    ).json()
    assert first["lines"]["records"] == 30
    again = natlens(
        "ingest", f"cwl://{GROUP}", *args, "--since", str(now), "--until", str(now + 1799)
    ).json()
    assert again["lines"]["records"] == 0 and again["sources"]["read"] == 0
    more = natlens(
        "ingest", f"cwl://{GROUP}", *args, "--since", str(now), "--until", str(now + 3599)
    ).json()
    assert more["lines"]["records"] == 30  # only the second half hour was fetched
    rows = natlens("records", tmp_path / "case", "--format", "jsonl").jsonl()
    assert sorted(r["srcport"] for r in rows) == list(range(40000, 40060))


def test_format_comes_from_describe_flow_logs(tmp_path, natlens, logs) -> None:
    fields, records = c.split_fixture(AWS_EXAMPLES / "tcp-flags.log")
    start = int(time.time()) - 600
    put(logs, "eni-1235b8ca123456789-all", [(start, line) for line in records])
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogGroupName=GROUP,
        DeliverLogsPermissionArn="arn:aws:iam::123456789010:role/flow-logs",
        LogFormat=c.format_string(fields),
    )
    run = natlens("ingest", f"cwl://{GROUP}", "--case", tmp_path / "case", "--json")
    assert run.code == 0, run.err
    report = run.json()
    assert report["lines"]["records"] == 8
    assert report["formats"][0]["origin"] == "describe-flow-logs"
    rows = natlens("records", tmp_path / "case", "--format", "jsonl").jsonl()
    assert [r["tcp_flags"] for r in rows] == [2, 18, 2, 18, 1, 1, 3, 19]


@pytest.mark.parametrize(
    ("stream", "sent"),
    [
        ("eni-0a1b*", {"logStreamNamePrefix": "eni-0a1b"}),
        ("eni-1-all,eni-2-all", {"logStreamNames": ["eni-1-all", "eni-2-all"]}),
    ],
)
def test_stream_filter_is_sent_to_cloudwatch(tmp_path, natlens, logs, stream, sent) -> None:
    seen: list[dict[str, object]] = []

    def capture(params, **_kwargs):  # type: ignore[no-untyped-def]
        seen.append(dict(params))

    from natlens.sources import aws

    original = aws.make_client

    def client_with_capture(service, *args):  # type: ignore[no-untyped-def]
        client = original(service, *args)
        client.meta.events.register("provide-client-params.logs.FilterLogEvents", capture)
        return client

    aws.make_client = client_with_capture
    try:
        natlens("ingest", f"cwl://{GROUP}", "--case", tmp_path / "case", "--log-stream", stream)
    finally:
        aws.make_client = original
    assert seen and all(params.items() >= sent.items() for params in seen)


def test_missing_log_group_is_reported(tmp_path, natlens, logs) -> None:
    run = natlens("ingest", "cwl://no-such-group", "--case", tmp_path / "case", "--json")
    report = run.json()
    assert run.code == 2
    assert "ResourceNotFoundException" in report["skipped"]["unreadable"]["examples"][0]


def test_a_log_group_with_no_format_is_read_again_with_log_format(tmp_path, natlens, logs) -> None:
    """Issue finding 4: a custom-format group whose format natlens cannot know (no
    describe-flow-logs) is not recorded as read; the suggested re-run with --log-format reads it."""
    fields, records = c.split_fixture(AWS_EXAMPLES / "tcp-flags.log")
    start = int(time.time()) - 600
    put(logs, "eni-1235b8ca123456789-all", [(start, line) for line in records])
    case = tmp_path / "case"
    first = natlens("ingest", f"cwl://{GROUP}", "--case", case, "--json")
    assert first.code == 2 and first.json()["lines"]["records"] == 0
    assert "no-format" in first.json()["skipped"]
    second = natlens(
        "ingest", f"cwl://{GROUP}", "--case", case, "--json",
        "--log-format", c.format_string(fields),
    )  # fmt: skip
    assert second.code == 0, second.err
    assert second.json()["lines"]["records"] == 8
    assert len(natlens("records", case, "--format", "jsonl").jsonl()) == 8


def test_logs_insights_names_the_streams(tmp_path, natlens, logs) -> None:
    """Records read from CloudWatch Logs keep their stream: @logStream, as Logs Insights has it."""
    now = int(time.time()) - 3600
    put(logs, "eni-0a1b2c3d4e5f60718-all", [(now + 60 * i, record(now + 60 * i, 40000 + i))
                                             for i in range(3)])  # fmt: skip
    put(logs, "eni-0ffff000011112222-all", [(now + 30, record(now + 30, 50000))])
    case = tmp_path / "case"
    assert natlens("ingest", f"cwl://{GROUP}", "--case", case).code == 0
    run = natlens("insights", case, "stats count(*) as n by @logStream | sort n desc",
                  "--format", "jsonl")  # fmt: skip
    assert run.code == 0, run.err
    assert run.jsonl() == [
        {"@logStream": "eni-0a1b2c3d4e5f60718-all", "n": 3},
        {"@logStream": "eni-0ffff000011112222-all", "n": 1},
    ]
    first = natlens("insights", case, "filter srcPort = 50000 | fields @message, @timestamp",
                    "--format", "jsonl").jsonl()  # fmt: skip
    assert first[0]["@message"] == record(now + 30, 50000)  # the event's message, as sent
    assert natlens("insights", case, "fields @log").code == 64
