"""The ingest accounting, for a person."""

from __future__ import annotations

from typing import Any

from natlens.render.terminal import Writer


def write_text(report: dict[str, Any], out: Writer) -> None:
    lines = report["lines"]
    sources = report["sources"]
    out.write(f"case      {report['case']}\n")
    for line in report.get("recovered", []):
        out.write(f"recovered {line}\n")
    read = f"{sources['read']} read"
    if sources["unchanged"]:
        read += f", {sources['unchanged']} unchanged since the last ingest (not read again)"
    if sources["replaced"]:
        read += f", {sources['replaced']} changed (earlier rows replaced)"
    if sources["empty"]:
        read += f", {len(sources['empty'])} empty"
    if sources.get("failed"):
        read += f", {len(sources['failed'])} could not be read (tried again by the next ingest)"
    out.write(f"sources   {read}\n")
    out.write(
        f"lines     {lines['lines']:,}: {lines['records']:,} records, {lines['headers']:,} "
        f"header(s), {lines['blank']:,} blank, {lines['metadata']:,} metadata, "
        f"{lines['filtered']:,} outside --since/--until, {lines['skipped']:,} skipped\n"
    )
    out.write(f"written   {report['records_written']:,} records in {report['seconds']:.1f} s\n")
    events = report.get("tables_written", {}).get("firewall_events", 0)
    if events:
        out.write(f"firewall  {events:,} of them Network Firewall log events (alert, flow, TLS)\n")
    for fmt in report["formats"]:
        fields = " ".join(fmt["fields"])
        if len(fields) > 90:
            fields = fields[:89] + "…"
        out.write(f"format    {fmt['records']:,} records from {fmt['origin']}: {fields}\n")
    for reason, entry in report["skipped"].items():
        out.write(f"skipped   {reason}: {entry['lines']:,} line(s) - {entry['meaning']}\n")
        for example in entry["examples"]:
            out.write(f"            {example}\n")
    gaps = report.get("coverage_gaps") or []
    if gaps:
        total = {
            s: sum(g["records"] for g in gaps if g["log_status"] == s)
            for s in ("NODATA", "SKIPDATA")
        }
        out.write(
            f"gaps      {total['SKIPDATA']:,} SKIPDATA and {total['NODATA']:,} NODATA record(s) "
            f"on {len({g['interface_id'] for g in gaps})} interface(s) in the case\n"
        )
