"""OCSF for a security data lake (``natlens export CASE --to ocsf``): Amazon Security Lake's
custom-source layout, in OCSF 1.1.0 (the version Security Lake takes from custom sources).

Three sources, each a directory that is one Security Lake custom source (one OCSF class per
source and per file, as Security Lake asks), partitioned ``region=/accountId=/eventDay=``:

- ``flow-records``: every flow record as Network Activity (4001), its src_endpoint the
  connection's initiator when natlens decided it, ``connection_info.direction`` from the
  conversation's roles;
- ``conversations``: every conversation as Network Activity (4001);
- ``findings``: inbound exposures, unsolicited packets at NAT gateways, Network Firewall alerts
  with the instance behind them, and topology findings, as Detection Findings (2004).

The analyses run on the case's engine; the events are shaped and written by a local DuckDB from
their rows (``analyses/ocsf_*.sql``). docs/export.md gives every field's source.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from natlens import __version__
from natlens.analyses.conversations import conversations, record_initiators_sql
from natlens.analyses.inbound import inbound
from natlens.analyses.nat import NatOptions, attribute
from natlens.analyses.records import record_batches
from natlens.case import Case
from natlens.engine import Engine, sql_string
from natlens.errors import UsageError
from natlens.sqltree import template, to_sql

OCSF_VERSION = "1.1.0"
FORMATS = ("parquet", "jsonl")
SOURCES = ("flow-records", "conversations", "findings")
RECORD_COLUMNS = [
    "source", "line", "version", "account_id", "interface_id", "srcaddr", "dstaddr", "srcport",
    "dstport", "protocol", "packets", "bytes", "start", "end", "action", "log_status", "vpc_id",
    "subnet_id", "instance_id", "tcp_flags", "type", "pkt_srcaddr", "pkt_dstaddr", "region",
    "az_id", "flow_direction", "pkt_src_aws_service", "pkt_dst_aws_service", "traffic_path",
]  # fmt: skip
_SEVERITY = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_CONFIDENCE = {"certain": 3, "high": 3, "medium": 2, "low": 1}


@dataclass
class ExportReport:
    output: Path
    format: str
    events: dict[str, int] = field(default_factory=dict)  # per source
    files: int = 0
    not_exported: dict[str, int] = field(default_factory=dict)  # flow records, per reason
    partition: dict[str, str] = field(default_factory=dict)  # the defaults used

    def to_json(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "format": self.format,
            "ocsf_version": OCSF_VERSION,
            "events": self.events,
            "files": self.files,
            "flow_records_not_exported": self.not_exported,
            "default_partition": self.partition,
        }


def export_ocsf(
    engine: Engine,
    case: Case,
    options: NatOptions,
    output: Path,
    fmt: str = "parquet",
    region: str | None = None,
    account: str | None = None,
    topology: dict[str, Any] | None = None,
) -> ExportReport:
    """Write the case's flow records, conversations and findings as OCSF under ``output`` (a
    new or empty directory: written beside it, then moved into place)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}")
    output = Path(os.path.abspath(output))
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UsageError(
            f"{output}: exists and is not an empty directory",
            hint="give a new directory to --output (an export never mixes with another)",
        )
    report = ExportReport(output, fmt)
    engine.register_case(case)
    # A region from a zone name (us-east-1b). Flow logs' az-id is a zone id (use1-az1): no use.
    zones: list[str | None] = []
    if case.has("firewall_events"):
        zones.append(_most_common(engine, "availability_zone", "firewall_events"))
    if topology is not None:
        zones += [
            endpoint.get("availability_zone")
            for vpc in topology.get("vpcs", [])
            for endpoint in vpc.get("firewall_endpoints", [])
        ]
    region = region or _most_common(engine, "region", "flows") or _zone_region(zones) or ""
    account = account or _most_common(engine, "account_id", "flows") or ""
    report.partition = {"region": _region_value(region), "accountId": _account_value(account)}
    conv_options = options.conversations
    convs = conversations(engine, case, conv_options)
    initiators = engine.query(record_initiators_sql(conv_options))
    findings = list(_inbound_findings(inbound(engine, case, conv_options).to_pylist()))
    if case.has("firewall_events"):
        alerts = attribute(engine, case, options).to_pylist()
        findings += _alert_findings(a for a in alerts if a.get("event_type") == "alert")
    if topology is not None:
        # (the configuration natlens read has no time of its own: the logs' latest)
        span = case.manifest.get("time_range") or {}
        findings += _topology_findings(topology, span.get("end"))
    records = record_batches(engine, case, RECORD_COLUMNS)

    staging = output.parent / f".natlens-export-{uuid.uuid4().hex[:12]}"
    staging.mkdir(parents=True)
    try:
        with duckdb.connect() as local:
            local.execute("SET TimeZone = 'UTC'")
            local.execute("SET enable_progress_bar = false")
            local.register("records", records)
            local.register("initiators", initiators)
            local.register("convs", convs)
            values = {
                "ocsf_version": OCSF_VERSION,
                "natlens_version": __version__,
                "region": region,
                "account": account,
            }
            report.events["flow-records"] = _write(
                local, template("ocsf_flow_records", **values), staging / "flow-records", fmt
            )
            report.events["conversations"] = _write(
                local, template("ocsf_conversations", **values), staging / "conversations", fmt
            )
            report.events["findings"] = 0
            if findings:
                local.register("findings", _findings_table(findings, region, account))
                report.events["findings"] = _copy(
                    local, "SELECT * FROM findings", staging / "findings", fmt
                )
        report.not_exported = _not_exported(engine)
        report.files = sum(1 for p in staging.rglob("*") if p.is_file())
        if output.exists():
            output.rmdir()
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _most_common(engine: Engine, column: str, table: str) -> str | None:
    """The commonest value of one of natlens's own columns (names from this module only)."""
    rows = engine.query(
        f"SELECT {column} AS value, count(*) AS n FROM {table} WHERE {column} IS NOT NULL"
        f" GROUP BY {column} ORDER BY n DESC, value LIMIT 1"
    ).to_pylist()
    return str(rows[0]["value"]) if rows else None


def _region_value(region: str) -> str:
    """A partition's region: the value when it is one (us-east-1), else ``unknown`` (the same
    rule as the SQL's: a value from the logs never names a directory of its own)."""
    return region if re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]+", region) else "unknown"


def _account_value(account: str) -> str:
    return account if re.fullmatch(r"[0-9]{12}", account) else "unknown"


def _zone_region(zones: Iterable[str | None]) -> str | None:
    """The region of the first availability zone name among ``zones`` (us-east-1b: us-east-1)."""
    for zone in zones:
        if zone and re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]", zone):
            return zone[:-1]
    return None


def _not_exported(engine: Engine) -> dict[str, int]:
    row = engine.query(
        "SELECT count(*) FILTER (WHERE coalesce(log_status, 'OK') <> 'OK') AS no_traffic,"
        " count(*) FILTER (WHERE coalesce(log_status, 'OK') = 'OK'"
        ' AND start IS NULL AND "end" IS NULL) AS no_time FROM flows'
    ).to_pylist()[0]
    reasons = {
        "nodata-or-skipdata": int(row["no_traffic"] or 0),
        "no-time": int(row["no_time"] or 0),
    }
    return {k: v for k, v in reasons.items() if v}


def _write(local: duckdb.DuckDBPyConnection, query: Any, target: Path, fmt: str) -> int:
    return _copy(local, to_sql(query, "duckdb"), target, fmt)


def _copy(local: duckdb.DuckDBPyConnection, query: str, target: Path, fmt: str) -> int:
    """The events of ``query`` under ``target``, one directory per region, account and day
    (the partition columns are the directories, not columns of the files), sorted by time."""
    partitioned = (
        "SELECT * EXCLUDE (region_partition, account_partition, day_partition),"
        ' region_partition AS region, account_partition AS "accountId",'
        f' day_partition AS "eventDay" FROM ({query}) ORDER BY "time"'
    )
    if fmt == "jsonl":
        return _write_jsonl(local.execute(partitioned).to_arrow_reader(65536), target)
    # (the records are a stream, read once: COPY's own count says how many it wrote)
    written = local.execute(
        f"COPY ({partitioned}) TO {sql_string(str(target))} (FORMAT parquet,"
        ' COMPRESSION zstd, PARTITION_BY (region, "accountId", "eventDay"),'
        " FILENAME_PATTERN 'part-{i}')"
    ).fetchone()
    return int(written[0]) if written else 0


def _write_jsonl(batches: pa.RecordBatchReader, target: Path) -> int:
    """One JSON object per line, in the same partition directories as Parquet's."""
    files: dict[tuple[str, str, str], Any] = {}
    written = 0
    try:
        for batch in batches:
            for row in batch.to_pylist():
                key = (row.pop("region"), row.pop("accountId"), row.pop("eventDay"))
                handle = files.get(key)
                if handle is None:
                    folder = target / f"region={key[0]}" / f"accountId={key[1]}"
                    folder = folder / f"eventDay={key[2]}"
                    folder.mkdir(parents=True, exist_ok=True)
                    handle = files[key] = open(folder / "part-0.jsonl", "w", encoding="utf-8")  # noqa: SIM115
                handle.write(json.dumps(_json_value(row), ensure_ascii=False) + "\n")
                written += 1
    finally:
        for handle in files.values():
            handle.close()
    return written


def _json_value(value: Any) -> Any:
    """A row as OCSF JSON: no nulls (an absent attribute), maps as objects, and the one JSON
    attribute natlens fills (``evidences[].data``, text in Parquet) as the JSON it holds."""
    if isinstance(value, dict):
        return {
            k: json.loads(v) if k == "data" and isinstance(v, str) else _json_value(v)
            for k, v in value.items()
            if v is not None
        }
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return {str(k): _json_value(v) for k, v in value}
        return [_json_value(v) for v in value]
    return value


def _finding(
    kind: str,
    uid: str,
    title: str,
    desc: str,
    severity: str,
    seen: tuple[int | None, int | None],
    evidence: dict[str, Any],
    resources: Iterable[tuple[str, str]] = (),
    remediation: str | None = None,
    confidence: str | None = None,
) -> dict[str, Any]:
    """One Detection Finding (2004) as a plain record; the partition columns last."""
    first, last = seen
    when = (last or first or int(time.time())) * 1000
    severity_id = _SEVERITY.get(severity, 0)
    confidence_id = _CONFIDENCE.get(confidence or "", 0)
    return {
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": severity.capitalize() if severity_id else "Unknown",
        "confidence_id": confidence_id,
        "confidence": {3: "High", 2: "Medium", 1: "Low"}.get(confidence_id, "Unknown"),
        "status_id": 1,
        "status": "New",
        "time": when,
        "start_time": first * 1000 if first else None,
        "end_time": last * 1000 if last else None,
        "message": title,
        "finding_info": {
            "uid": uid,
            "title": title,
            "desc": desc,
            "types": [f"natlens/{kind}"],
            "first_seen_time": first * 1000 if first else None,
            "last_seen_time": last * 1000 if last else None,
            "analytic": {"name": f"natlens {kind}", "type_id": 1, "type": "Rule", "uid": kind},
        },
        "evidences": [
            {
                "src_endpoint": evidence.get("src_endpoint"),
                "dst_endpoint": evidence.get("dst_endpoint"),
                "data": json.dumps(evidence.get("data", {}), sort_keys=True),
            }
        ],
        "resources": [{"uid": uid_, "type": type_} for uid_, type_ in resources] or None,
        "remediation": {"desc": remediation} if remediation else None,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": uid,
            "product": {
                "name": "natlens",
                "vendor_name": "natlens",
                "version": __version__,
                "feature": {"name": kind},
            },
            "profiles": ["cloud"],
        },
    }


def _endpoint(ip: object = None, port: object = None, **more: object) -> dict[str, Any]:
    return {
        "ip": ip,
        "port": port,
        "instance_uid": more.get("instance_uid"),
        "interface_uid": more.get("interface_uid"),
        "hostname": more.get("hostname"),
    }


def _instances(ids: Iterable[str] | None) -> list[tuple[str, str]]:
    return [(i, "AWS::EC2::Instance") for i in ids or [] if i]


def _inbound_findings(rows: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Exposures (instances that accepted connections from the address) and unsolicited
    packets at NAT gateways or firewall endpoints (dropped there; logged ACCEPT). Addresses
    natlens could not decide give no finding."""
    for row in rows:
        address = row["address"]
        seen = (row["first_seen"], row["last_seen"])
        data = {
            k: row.get(k)
            for k in ("verdict", "conversations", "unsolicited", "response", "exposed",
                      "undetermined", "evidence", "probed_ports", "gateways", "roles_from")
        }  # fmt: skip
        if row["exposed"]:
            yield _finding(
                "inbound-exposed",
                f"natlens:inbound-exposed:{address}",
                f"Instances accepted connections opened from {address}",
                f"{row['exposed']} conversation(s) opened from {address} reached "
                f"{', '.join(row.get('exposed_on') or []) or 'an instance'}.",
                "high",
                seen,
                {"src_endpoint": _endpoint(address), "data": data},
                _instances(row.get("exposed_on")),
                row.get("recommendation"),
            )
        if row["unsolicited"]:
            yield _finding(
                "inbound-unsolicited",
                f"natlens:inbound-unsolicited:{address}",
                f"Unsolicited packets from {address} reached a NAT gateway and were dropped",
                f"{row['unsolicited']} conversation(s) from {address} were never answered: "
                "a NAT gateway does not accept connections from the internet. They are logged "
                "ACCEPT because the network ACL admits them.",
                "informational",
                seen,
                {"src_endpoint": _endpoint(address), "data": data},
                [(g, "AWS::EC2::NatGateway") for g in row.get("gateways") or [] if g],
                row.get("recommendation"),
            )


def _alert_findings(rows: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Network Firewall alerts with the instance behind each (attribute)."""
    for row in rows:
        instance = row.get("instance_id")
        who = instance or row.get("instance_address") or row.get("src_ip")
        seen = (row.get("event_time"), row.get("event_time"))
        uid = (
            f"natlens:firewall-alert:{row.get('firewall_name')}:{row.get('flow_id')}:"
            f"{row.get('signature_id')}:{row.get('event_time')}"
        )
        data = {
            k: row.get(k)
            for k in ("firewall_name", "alert_action", "signature_id", "signature", "src_ip",
                      "src_port", "source_kind", "nat_gateway", "method", "confidence",
                      "candidate_count", "candidates", "source", "line")
        }  # fmt: skip
        yield _finding(
            "firewall-alert",
            uid,
            f"Network Firewall alert {row.get('signature')!s} from {who}",
            f"Network Firewall {row.get('firewall_name')} raised '{row.get('signature')}' "
            f"({row.get('alert_action')}) for traffic to {row.get('dest_ip')}:"
            f"{row.get('dest_port')}; natlens names {who} as its source "
            f"(method {row.get('method')}, confidence {row.get('confidence')}).",
            "unknown",
            seen,
            {
                "src_endpoint": _endpoint(
                    row.get("instance_address") or row.get("src_ip"),
                    row.get("instance_port") or row.get("src_port"),
                    instance_uid=instance,
                    interface_uid=row.get("instance_interface"),
                ),
                "dst_endpoint": _endpoint(
                    row.get("dest_ip"), row.get("dest_port"), hostname=row.get("hostname")
                ),
                "data": data,
            },
            _instances([instance] if instance else []),
            confidence=row.get("confidence"),
        )


def _topology_findings(document: dict[str, Any], when: int | None) -> list[dict[str, Any]]:
    found = []
    for vpc in document.get("vpcs", []):
        for item in vpc.get("findings", []):
            commands = [c.get("command") for c in item.get("commands") or [] if c.get("command")]
            fix = "\n".join([*commands, item.get("after") or ""]).strip() or None
            found.append(
                _finding(
                    "topology",
                    f"natlens:topology:{item['id']}:{item['vpc_id']}:"
                    f"{item.get('availability_zone') or '-'}",
                    item["title"],
                    item["message"],
                    item.get("severity", "unknown"),
                    (None, when),
                    {"data": {"id": item["id"], "vpc_id": item["vpc_id"]}},
                    [(r, "AWS::EC2::Resource") for r in item.get("resources") or []],
                    fix,
                )
            )
    return found


def _findings_table(findings: list[dict[str, Any]], region: str, account: str) -> pa.Table:
    """The findings as one table, each with the case's cloud (region and account) and its
    partition values (checked: a value from the logs never becomes a path of its own)."""
    region_ok, account_ok = _region_value(region), _account_value(account)
    rows = []
    for finding in findings:
        finding["cloud"] = {
            "provider": "AWS",
            "region": region or None,
            "account": {"uid": account, "type_id": 10, "type": "AWS Account"} if account else None,
        }
        day = time.strftime("%Y%m%d", time.gmtime(finding["time"] / 1000))
        rows.append(
            {
                **finding,
                "region_partition": region_ok,
                "account_partition": account_ok,
                "day_partition": day,
            }
        )
    return pa.Table.from_pylist(rows)
