"""What the HTML report shows, gathered from the analyses as plain data (lists of dicts). It runs
the analyses once, on one engine, and adds only small queries of its own: the inbound packets per
time bucket, the NODATA/SKIPDATA windows. Nothing here is escaped: the page's template does it."""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from sqlglot import exp

from natlens import __version__
from natlens.analyses.conversations import ConversationOptions, explained_from
from natlens.analyses.explain import explain, insights_queries, sentence
from natlens.analyses.inbound import SEVERITY, inbound_sql, missing_evidence, verdicts_from
from natlens.analyses.nat import NatOptions, attribute_batches, top_talkers
from natlens.case import Case
from natlens.engine import Engine
from natlens.formats.describe_json import Context
from natlens.insights.fields import Formats
from natlens.render.text_table import iso as text_iso
from natlens.report.answers import attribute_answer, inbound_answer
from natlens.sqltree import ctes_of, fragment, with_ctes

# Per conversation (the timeline), the causes inbound.sql gives.
CAUSES = ("exposed", "unsolicited", "undetermined", "response")
# Time buckets the timeline may use: the smallest that keeps it under MAX_BUCKETS.
BUCKETS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 300


@dataclass
class Limits:
    """How much of each list the page holds; the rest is counted and named, never dropped
    silently (the command that lists it all is given)."""

    addresses: int = 1000
    alerts: int = 2000
    scanners: int = 15
    ports: int = 15
    instances: int = 20
    talkers: int = 10
    full_explanations: int = 12
    gap_windows: int = 5000


@dataclass
class ReportData:
    meta: dict[str, Any]
    inbound: dict[str, Any]
    alerts: dict[str, Any] | None
    talkers: list[dict[str, Any]]
    topology: dict[str, Any] | None
    coverage: dict[str, Any]
    explanations: list[dict[str, Any]] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)


def iso(epoch: int | None) -> str:
    return "-" if epoch is None else text_iso(int(epoch))


def anchor(address: str) -> str:
    """The page id of an address's explanation: only characters safe in an id and a URL
    fragment (the address went through ipaddress first)."""
    return "addr-" + "".join(c if c.isalnum() else "-" for c in address)


def gather(
    engine: Engine,
    case: Case,
    options: ConversationOptions,
    context: Context | None,
    limits: Limits | None = None,
) -> ReportData:
    limits = limits or Limits()
    engine.register_case(case)
    head = explained_from(engine, case, options)
    verdicts = verdicts_from(engine, head, options)
    inbound = _inbound(engine, head, options, verdicts, limits)
    nat = NatOptions(options, top=limits.talkers, by="bytes", log_types=("alert",))
    has_flows = bool(case.has("flows"))
    talkers = top_talkers(engine, case, nat).to_pylist() if has_flows else []
    alerts = _alerts(engine, case, nat, limits)
    topology = _topology(context)
    coverage = _coverage(engine, case, options, verdicts, limits)
    explanations = _explanations(engine, case, options, head, inbound, limits)
    return ReportData(
        meta=_meta(case, options),
        inbound=inbound,
        alerts=alerts,
        talkers=talkers,
        topology=topology,
        coverage=coverage,
        explanations=explanations,
        limits=limits,
    )


def _meta(case: Case, options: ConversationOptions) -> dict[str, Any]:
    manifest = case.manifest
    span = manifest.get("time_range") or {}
    tables = manifest.get("tables", {})
    return {
        "case": str(case.path),
        "natlens_version": __version__,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "first": iso(span.get("start")),
        "last": iso(span.get("end")),
        "since": iso(options.since) if options.since is not None else None,
        "until": iso(options.until) if options.until is not None else None,
        "records": tables.get("flows", {}).get("records", 0),
        "firewall_events": tables.get("firewall_events", {}).get("records", 0),
        "context": options.context is not None,
    }


def _severity_key(row: dict[str, Any]) -> tuple[int, int, str]:
    return (SEVERITY.index(row["verdict"]), -(row["packets_in"] or 0), row["address"])


def _inbound(
    engine: Engine,
    head: Any,
    options: ConversationOptions,
    verdicts: pa.Table,
    limits: Limits,
) -> dict[str, Any]:
    rows = sorted(verdicts.to_pylist(), key=_severity_key)
    counts = Counter(row["verdict"] for row in rows)
    conversations: Counter[str] = Counter()
    for row in rows:
        conversations[row["verdict"]] += row["conversations"] or 0
    unsolicited = [r for r in rows if r["unsolicited"]]
    scanners = sorted(unsolicited, key=lambda r: (-r["unsolicited"], r["address"]))
    ports: Counter[int] = Counter()
    for row in unsolicited:
        ports.update(row["probed_ports"] or [])
    for row in rows:
        row["anchor"] = anchor(row["address"])
        row["first"] = iso(row["first_seen"])
        row["last"] = iso(row["last_seen"])
    return {
        "total": len(rows),
        "answer": inbound_answer(rows),
        "counts": [
            {"verdict": v, "addresses": counts[v], "conversations": conversations[v]}
            for v in SEVERITY
        ],
        "exposed": [r for r in rows if r["verdict"] == "exposed"],
        "rows": rows[: limits.addresses],
        "left_out": max(0, len(rows) - limits.addresses),
        "scanners": scanners[: limits.scanners],
        "ports": [
            {"port": port, "addresses": n}
            for port, n in sorted(ports.items(), key=lambda kv: (-kv[1], kv[0]))[: limits.ports]
        ],
        "timeline": _timeline(engine, head, options),
    }


def _bucket(since: int | None, until: int | None) -> int:
    if since is None or until is None:
        return BUCKETS[0]
    span = max(until - since, 1)
    return next((b for b in BUCKETS if span / b <= MAX_BUCKETS), BUCKETS[-1])


def _timeline(engine: Engine, head: Any, options: ConversationOptions) -> dict[str, Any]:
    """Inbound packets per time bucket, per NAT gateway (instances together), per cause: the
    per-conversation causes inbound.sql decides, summed by when each conversation started."""
    query = inbound_sql(options, head=head)
    span = engine.query(
        with_ctes(
            ctes_of(query),
            _query("SELECT min(first_seen) AS lo, max(first_seen) AS hi FROM inbound_causes"),
        )
    ).to_pylist()[0]
    bucket = _bucket(span["lo"], span["hi"])
    body = _query(
        """
        SELECT
            CASE WHEN inside_gateway = 1 THEN coalesce(inside_resource, inside_addr)
                ELSE 'instances (not a NAT gateway)' END AS target,
            CAST(floor(first_seen / $bucket) AS BIGINT) * $bucket AS bucket,
            cause,
            CAST(sum(packets_in) AS BIGINT) AS packets,
            CAST(count(*) AS BIGINT) AS conversations
        FROM inbound_causes
        WHERE first_seen IS NOT NULL
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        """,
        bucket=bucket,
    )
    rows = engine.query(with_ctes(ctes_of(query), body)).to_pylist()
    for row in rows:
        row["time"] = iso(row["bucket"])
        row["end"] = iso(row["bucket"] + bucket)
    return {"bucket_seconds": bucket, "rows": rows}


def _query(sql: str, **values: int) -> exp.Query:
    tree = fragment(sql, **values)
    assert isinstance(tree, exp.Query)
    return tree


def _alerts(engine: Engine, case: Case, nat: NatOptions, limits: Limits) -> dict[str, Any] | None:
    if not case.has("firewall_events"):
        return None
    if not case.has("flows") and nat.conversations.context is None:
        return {"rows": [], "total": 0, "left_out": 0, "per_instance": [], "blocked": True}
    table = attribute_batches(engine, case, nat).read_all()
    rows = table.to_pylist()
    context = nat.conversations.context
    names = context.resource_names() if context else {}
    per: Counter[str] = Counter()
    for row in rows:
        row["time"] = iso(row["event_time"])
        row["who"] = _who(row)
        if row["instance_id"] in names:
            row["who"] += f" ({names[row['instance_id']]})"
        per[row["who"]] += 1
    named = sum(1 for r in rows if r["instance_id"] or r["instance_address"])
    from_nat = sum(1 for r in rows if r["source_kind"] == "nat-gateway")
    rows.sort(key=lambda r: (r["event_time"] or 0, r["flow_id"] or 0))
    return {
        "total": len(rows),
        "answer": attribute_answer(rows),
        "named": named,
        "from_nat": from_nat,
        "rows": rows[: limits.alerts],
        "left_out": max(0, len(rows) - limits.alerts),
        "per_instance": [
            {"instance": k, "alerts": n}
            for k, n in sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))[: limits.instances]
        ],
        "blocked": False,
    }


def _who(row: dict[str, Any]) -> str:
    if row["instance_id"]:
        return str(row["instance_id"])
    if row["instance_address"]:
        return str(row["instance_address"])
    if row["ambiguous"]:
        return "(ambiguous)"
    if row["source_kind"] == "internet":
        return "(from the internet)"
    return "(not found)"


def _topology(context: Context | None) -> dict[str, Any] | None:
    if context is None:
        return None
    from natlens.topology.report import analyse, to_json

    report = analyse(context)
    if not report.vpcs:
        return None
    data = to_json(report)
    for vpc in data["vpcs"]:
        after = {
            (p["subnet_id"], p["destination"]): p for p in (vpc.get("after") or {}).get("paths", [])
        }
        for finding in vpc["findings"]:
            finding["diagrams"] = [
                {"before": path, "after": after.get((path["subnet_id"], path["destination"]))}
                for path in finding.get("paths", [])[:2]
            ]
    return data


FIELDS_THAT_DECIDE = {
    "tcp-flags": "who opened each TCP connection (a SYN on the opener's records)",
    "pkt-srcaddr": "the instance behind each NAT gateway connection, exactly (with pkt-dstaddr)",
    "pkt-dstaddr": "the internet host of each NAT gateway leg, exactly (with pkt-srcaddr)",
    "flow-direction": "which way each record went at its interface",
    "packets": "conversations' sizes, to pair the NAT gateway's legs",
}


def _coverage(
    engine: Engine,
    case: Case,
    options: ConversationOptions,
    verdicts: pa.Table,
    limits: Limits,
) -> dict[str, Any]:
    manifest = case.manifest
    lines: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for run in manifest.get("ingests", []):
        lines.update(run.get("lines", {}))
        for reason, entry in (run.get("skipped") or {}).items():
            skipped[reason] += entry.get("lines", 0) if isinstance(entry, dict) else int(entry)
    fields: set[str] = set()
    formats = []
    for fmt in manifest.get("formats", []):
        fields.update(fmt["fields"])
        formats.append({"origin": fmt.get("origin"), "records": fmt.get("records"),
                        "fields": fmt["fields"]})  # fmt: skip
    gaps: list[dict[str, Any]] = []
    if case.has("flows"):
        gaps = engine.query(
            fragment(
                """
                SELECT interface_id, log_status, start, "end"
                FROM flows
                WHERE log_status IN ('NODATA', 'SKIPDATA') AND start IS NOT NULL
                ORDER BY start, interface_id
                LIMIT $limit
                """,
                limit=limits.gap_windows + 1,
            )
        ).to_pylist()
    for gap in gaps:
        gap["from"] = iso(gap["start"])
        gap["to"] = iso(gap["end"] if gap["end"] is not None else gap["start"])
    undetermined = any(v == "undetermined" for v in verdicts.column("verdict").to_pylist())
    return {
        "sources": len(manifest.get("sources", {})),
        "lines": dict(lines),
        "skipped": dict(skipped),
        "gap_summary": manifest.get("coverage_gaps", []),
        "gaps": gaps[: limits.gap_windows],
        "gaps_left_out": len(gaps) > limits.gap_windows,
        "formats": formats,
        "missing_fields": [
            {"field": name, "decides": why}
            for name, why in FIELDS_THAT_DECIDE.items()
            if name not in fields
        ],
        "undetermined_needs": (
            missing_evidence(options.context, "tcp-flags" in fields) if undetermined else []
        ),
    }


def _explanations(
    engine: Engine,
    case: Case,
    options: ConversationOptions,
    head: Any,
    inbound: dict[str, Any],
    limits: Limits,
) -> list[dict[str, Any]]:
    """What `natlens explain` says of each address on the page: the sentence, the advice and
    the Logs Insights queries for every one; the conversations and key records too for the
    ones that need acting on first (exposed, then one or two of each other verdict)."""
    cidrs = options.context.vpc_cidrs() if options.context else []
    formats = Formats.of(case)
    shown = {r["address"]: r for r in inbound["rows"]}
    for row in inbound["exposed"] + inbound["scanners"]:
        shown.setdefault(row["address"], row)
    full: list[str] = [r["address"] for r in inbound["exposed"]][: limits.full_explanations]
    for verdict in SEVERITY[1:]:
        full += [r["address"] for r in inbound["rows"] if r["verdict"] == verdict][:2]
    full = list(dict.fromkeys(full))[: limits.full_explanations]
    out = []
    for address, row in shown.items():
        entry: dict[str, Any] = {
            "address": address,
            "anchor": anchor(address),
            "verdict": row["verdict"],
            "sentence": sentence(address, row, row["conversations"] or 0),
            "recommendation": row.get("recommendation"),
            "evidence": row["evidence"] or [],
            "queries": insights_queries(address, _cidrs(cidrs, address), formats),
            "conversations": None,
            "conversation_count": row["conversations"],
            "records": None,
            "notes": [],
        }
        if address in full:
            one = explain(engine, case, address, replace(options, ip=None), head, row)
            entry["conversations"] = _table_rows(one.conversations)
            entry["conversation_count"] = one.conversation_count
            entry["records"] = _table_rows(one.records)
            entry["queries"] = one.queries
            entry["notes"] = one.notes
        out.append(entry)
    return out


def _cidrs(cidrs: list[str], address: str) -> list[str]:
    if cidrs:
        return cidrs
    version = ipaddress.ip_address(address).version
    return ["10.0.0.0/8"] if version == 4 else ["fc00::/7"]


def _table_rows(table: pa.Table) -> dict[str, Any]:
    rows = table.to_pylist()
    times = {"first_seen", "start", "end", "last_seen"}
    for row in rows:
        for key in times & row.keys():
            row[key] = iso(row[key])
    return {"columns": table.column_names, "rows": rows}
