"""natlens export --to ocsf: OCSF 1.1.0 for Amazon Security Lake.

Each event is checked against the OCSF schema with pydantic-ocsf (its 1.1.0 models, and its
copy of OCSF 1.1.0's attribute dictionary for what the models leave open); the mapping of one
record is compared with the public OCSF example of a VPC flow log record; the layout with what
Security Lake asks of a custom source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.conftest import FIXTURES, run_cli

OCSF_VERSION = "1.1.0"


def ocsf_dictionary() -> dict[str, Any]:
    import ocsf

    schema = json.loads((Path(ocsf.__file__).parent / "schemas" / "v1_1_0.json").read_text())
    return dict(schema["dictionary"]["attributes"])


DICTIONARY = ocsf_dictionary()
INTEGER_TYPES = {"integer_t", "long_t", "timestamp_t", "port_t"}
TEXT_TYPES = {"string_t", "ip_t", "hostname_t", "resource_uid_t", "uuid_t", "url_t"}
# OCSF 1.1.0: required of every event, of Network Activity, of Detection Finding.
REQUIRED = {
    4001: {"activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time",
           "type_uid", "src_endpoint", "dst_endpoint"},
    2004: {"activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time",
           "type_uid", "finding_info"},
}  # fmt: skip


def schema_problems(value: Any, path: str = "") -> list[str]:
    """Attributes OCSF 1.1.0 does not define, or of another type, anywhere in ``value``
    (``unmapped`` is free-form by definition)."""
    problems = []
    for name, item in value.items():
        where = f"{path}{name}"
        if item is None or name == "unmapped":
            continue
        entry = DICTIONARY.get(name)
        if entry is None:
            problems.append(f"{where}: not an OCSF 1.1.0 attribute")
            continue
        items = item if entry.get("is_array") else [item]
        if entry.get("is_array") and not isinstance(item, list):
            problems.append(f"{where}: should be an array")
            continue
        kind = entry["type"]
        for one in items:
            if kind == "json_t":
                continue  # any JSON value
            if kind in INTEGER_TYPES and not (isinstance(one, int) and not isinstance(one, bool)):
                problems.append(f"{where}: {one!r} is not an integer")
            elif kind in TEXT_TYPES and not isinstance(one, str):
                problems.append(f"{where}: {one!r} is not text")
            elif kind not in INTEGER_TYPES | TEXT_TYPES and not kind.endswith("_t"):
                if not isinstance(one, dict):
                    problems.append(f"{where}: {one!r} is not an object ({kind})")
                else:
                    problems += schema_problems(one, f"{where}.")
    return problems


def validate(event: dict[str, Any]) -> None:
    from ocsf.v1_1_0.events import DetectionFinding, NetworkActivity

    model = {4001: NetworkActivity, 2004: DetectionFinding}[event["class_uid"]]
    model.model_validate(event)
    assert schema_problems(event) == []
    missing = {name for name in REQUIRED[event["class_uid"]] if event.get(name) is None}
    assert not missing, missing
    assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
    assert event["category_uid"] == event["class_uid"] // 1000
    assert event["metadata"]["version"] == OCSF_VERSION
    assert event["metadata"]["product"]["vendor_name"]


def events(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Every JSON line under each source directory."""
    found: dict[str, list[dict[str, Any]]] = {}
    for source in sorted(p for p in directory.iterdir() if p.is_dir()):
        found[source.name] = [
            json.loads(line)
            for path in sorted(source.rglob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]
    return found


def without_nulls(value: Any) -> Any:
    """A Parquet row as the JSON line of the same event: no nulls, maps as objects, the JSON
    text of evidences' data as JSON."""
    if isinstance(value, dict):
        return {
            k: json.loads(v) if k == "data" else without_nulls(v)
            for k, v in value.items()
            if v is not None
        }
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return {k: without_nulls(v) for k, v in value}
        return [without_nulls(v) for v in value]
    return value


@pytest.fixture(scope="module")
def exported(v5_worlds: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = v5_worlds["fw-after-nat"]
    root = tmp_path_factory.mktemp("ocsf")
    for fmt in ("parquet", "jsonl"):
        run = run_cli(
            "export", world / "case", "--to", "ocsf", "--output", root / fmt,
            "--format", fmt, "--context", world / "context", "--json",
        )  # fmt: skip
        assert run.code == 0, run.err
        (root / f"{fmt}.json").write_text(run.out)
    return root


def test_every_event_is_ocsf_1_1(exported: Path) -> None:
    found = events(exported / "jsonl")
    assert set(found) == {"flow-records", "conversations", "findings"}
    for source, items in found.items():
        assert items, source
        for event in items:
            validate(event)
    kinds = {e["finding_info"]["types"][0] for e in found["findings"]}
    # the firewall after the NAT gateways: alerts named to instances, unsolicited packets at
    # the NAT gateways, and the topology finding itself
    assert {"natlens/firewall-alert", "natlens/inbound-unsolicited", "natlens/topology"} <= kinds


def test_parquet_and_jsonl_hold_the_same_events(exported: Path) -> None:
    as_json = events(exported / "jsonl")
    for source, items in as_json.items():
        files = sorted((exported / "parquet" / source).rglob("*.parquet"))
        rows = [without_nulls(r) for f in files for r in pq.read_table(f).to_pylist()]
        key = json.dumps
        assert sorted(map(key, rows)) == sorted(map(key, items)), source


def test_counts_match_the_analyses(exported: Path, v5_worlds: dict[str, Path]) -> None:
    world = v5_worlds["fw-after-nat"]
    summary = json.loads((exported / "jsonl.json").read_text())
    conversations = run_cli(
        "conversations", world / "case", "--context", world / "context", "--format", "jsonl"
    ).jsonl()
    records = run_cli("records", world / "case", "--format", "jsonl").jsonl()
    ok = [r for r in records if r.get("log_status") in (None, "OK")]
    assert summary["events"]["conversations"] == len(conversations)
    assert summary["events"]["flow-records"] == len(ok)
    assert summary["flow_records_not_exported"].get("nodata-or-skipdata", 0) == len(records) - len(
        ok
    )


def test_records_name_the_initiator_natlens_decided(
    exported: Path, v5_worlds: dict[str, Path]
) -> None:
    """A record of a decided conversation has the conversation's client as src_endpoint, even
    when the record was the server's reply (its bytes then flow in); the direction follows the
    roles; undecided records stay as logged, direction Unknown."""
    world = v5_worlds["fw-after-nat"]
    conversations = {
        c["conversation"]: c
        for c in run_cli(
            "conversations", world / "case", "--context", world / "context", "--format", "jsonl"
        ).jsonl()
    }
    found = events(exported / "jsonl")["flow-records"]
    swapped = decided = 0
    for event in found:
        unmapped = event["unmapped"]
        conversation = conversations.get(event["connection_info"].get("uid"))
        if unmapped["natlens.initiator"] == "undetermined":
            assert event["connection_info"]["direction_id"] == 0
            assert "bytes_in" not in event["traffic"]
            continue
        assert conversation is not None and conversation["confidence"] != "unknown"
        decided += 1
        src, dst = event["src_endpoint"], event["dst_endpoint"]
        assert {src["ip"], dst["ip"]} <= {conversation["client_addr"], conversation["server_addr"]}
        assert src["ip"] == conversation["client_addr"]
        if unmapped["natlens.initiator"] == "dst":
            swapped += 1
            assert event["traffic"]["bytes_in"] == event["traffic"]["bytes"]
        roles = (
            conversation["client_role"] == "internet",
            conversation["server_role"] == "internet",
        )
        want = {(True, False): 1, (False, True): 2, (False, False): 3}.get(roles, 99)
        assert event["connection_info"]["direction_id"] == want
    assert decided > 100 and swapped > 20


def test_a_record_maps_as_the_public_ocsf_example(tmp_path: Path) -> None:
    """The OCSF project's example of a VPC flow log record (tests/fixtures/ocsf), written back
    as the flow log line it came from: natlens's event carries the same values at the same
    attributes. Where natlens differs, by design: OCSF 1.1.0's cloud.account object (the
    example is 0.99's account_uid), no svc_name for AWS's '-', and the direction from the
    conversation (here the same: a SYN from the internet to an instance is Inbound)."""
    example = json.loads((FIXTURES / "ocsf" / "vpcflowlog.json").read_text())
    fields = (
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
        "start end action log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr "
        "pkt-dstaddr region az-id sublocation-type sublocation-id pkt-src-aws-service "
        "pkt-dst-aws-service flow-direction traffic-path"
    )
    line = (
        "5 123456789012 eni-000000000000000000 1.2.3.4 172.31.2.52 56858 39938 6 1 40 "
        "1649721732 1649721788 REJECT OK vpc-00000000 subnet-000000000000000000 "
        "i-000000000000000000 2 IPv4 1.2.3.4 172.31.2.52 us-east-1 use1-az1 - - - - ingress -"
    )
    log = tmp_path / "flows.log"
    log.write_text(f"{fields}\n{line}\n")
    assert run_cli("ingest", log, "--case", tmp_path / "case").code == 0
    run = run_cli(
        "export", tmp_path / "case", "--to", "ocsf", "--output", tmp_path / "out",
        "--format", "jsonl",
    )  # fmt: skip
    assert run.code == 0, run.err
    [event] = events(tmp_path / "out")["flow-records"]
    validate(event)
    same = [
        "activity_id", "activity_name", "category_uid", "category_name", "class_uid",
        "class_name", "type_uid", "type_name", "severity_id", "severity", "time", "start_time",
        "end_time", "status_code", "disposition", "disposition_id", "cloud.provider",
        "cloud.region", "cloud.zone", "connection_info.protocol_num",
        "connection_info.tcp_flags", "connection_info.direction_id",
        "connection_info.direction", "traffic.bytes", "traffic.packets", "src_endpoint.ip",
        "src_endpoint.port", "dst_endpoint.ip", "dst_endpoint.port",
        "dst_endpoint.instance_uid", "dst_endpoint.interface_uid", "dst_endpoint.subnet_uid",
        "dst_endpoint.vpc_uid",
    ]  # fmt: skip

    def at(document: dict[str, Any], path: str) -> Any:
        for part in path.split("."):
            document = document.get(part) if isinstance(document, dict) else None  # type: ignore[assignment]
        return document

    assert {p: at(event, p) for p in same} == {p: at(example, p) for p in same}
    assert event["cloud"]["account"]["uid"] == example["cloud"]["account_uid"]
    assert event["unmapped"]["flow_direction"] == "ingress"
    # The example leaves the interface's fields off the sending (internet) side; so does natlens.
    assert set(event["src_endpoint"]) == {"ip", "port"}
    # Security Lake's layout: the record's region, account and day.
    [path] = (tmp_path / "out" / "flow-records").rglob("*.jsonl")
    assert path.relative_to(tmp_path / "out" / "flow-records").parts[:3] == (
        "region=us-east-1", "accountId=123456789012", "eventDay=20220412",
    )  # fmt: skip


def test_layout_is_a_security_lake_custom_source(exported: Path) -> None:
    """Per source: region=/accountId=/eventDay= directories, Parquet files of one OCSF class,
    the partition values not repeated as columns, events sorted by time."""
    for source in ("flow-records", "conversations", "findings"):
        files = sorted((exported / "parquet" / source).rglob("*.parquet"))
        assert files
        for path in files:
            parts = path.relative_to(exported / "parquet" / source).parts
            assert [p.split("=")[0] for p in parts[:3]] == ["region", "accountId", "eventDay"]
            assert parts[0] == "region=us-east-1" and parts[1] == "accountId=123456789012"
            table = pq.read_table(path)
            assert not {"region", "accountId", "eventDay"} & set(table.column_names)
            assert len(set(table.column("class_uid").to_pylist())) == 1
            times = table.column("time").to_pylist()
            assert times == sorted(times)


def test_refuses_to_mix_with_an_earlier_export(exported: Path, v5_worlds: dict[str, Path]) -> None:
    world = v5_worlds["fw-after-nat"]
    run = run_cli("export", world / "case", "--to", "ocsf", "--output", exported / "parquet")
    assert run.code == 64
    assert "not an empty directory" in run.err


def test_hostile_partition_values_stay_inside(tmp_path: Path) -> None:
    """A region or account from the logs that is not one becomes 'unknown': it never names a
    directory of its own (and never one outside the export)."""
    log = tmp_path / "flows.log"
    log.write_text(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
        "bytes start end action log-status region\n"
        "5 ../../../evil eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1649721732 1649721788 ACCEPT OK "
        "../../x\n"
    )
    assert run_cli("ingest", log, "--case", tmp_path / "case").code == 0
    run = run_cli(
        "export", tmp_path / "case", "--to", "ocsf", "--output", tmp_path / "out", "--json"
    )
    assert run.code == 0, run.err
    assert json.loads(run.out)["default_partition"] == {"region": "unknown", "accountId": "unknown"}
    [path] = (tmp_path / "out" / "flow-records").rglob("*.parquet")
    assert path.relative_to(tmp_path / "out").parts[:3] == (
        "flow-records", "region=unknown", "accountId=unknown",
    )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case", "flows.log", "out"]


@pytest.mark.spark
def test_spark_exports_the_same_events(
    exported: Path, v5_worlds: dict[str, Path], tmp_path: Path
) -> None:
    from tests.conftest import fresh_copy

    world = v5_worlds["fw-after-nat"]
    run = run_cli(
        "export", fresh_copy(world / "case", tmp_path), "--to", "ocsf", "--output",
        tmp_path / "out", "--format", "jsonl", "--context", world / "context",
        "--engine", "spark",
    )  # fmt: skip
    assert run.code == 0, run.err
    spark, duck = events(tmp_path / "out"), events(exported / "jsonl")
    for source in duck:
        assert sorted(map(json.dumps, spark[source])) == sorted(map(json.dumps, duck[source]))
