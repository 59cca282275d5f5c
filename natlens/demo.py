"""natlens demo: a small simulated world with a firewall after its NAT gateways, read into a case,
and what natlens can already say about it. Returns sections; the command line renders them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from natlens.case import Case
from natlens.engine import DuckDBEngine
from natlens.formats.describe_json import load_context
from natlens.ingest import IngestOptions, IngestReport, ingest
from natlens.simulate.run import SimulateOptions, simulate
from natlens.sqltree import fragment

SCENARIO = "fw-after-nat"


@dataclass
class Section:
    title: str
    text: str = ""
    table: pa.Table | None = None


def run_demo(
    directory: Path, minutes: int = 20, seed: int = 7, shown: Path | None = None
) -> list[Section]:
    """``shown``: the directory the printed commands name (the demo's own when it is kept;
    otherwise one the first printed command makes)."""
    world_dir = directory / "world"
    summary = simulate(
        world_dir, SimulateOptions(SCENARIO, minutes=minutes, seed=seed, log_format="v5")
    )
    case_dir = directory / "case"
    report = ingest(
        [str(world_dir / "flowlogs"), str(world_dir / "firewall")], case_dir, IngestOptions()
    )
    case = Case.open(case_dir)
    page = directory / "report.html"
    verdicts, example = _verdicts(case, world_dir)
    return [
        Section("The simulated world", _world(world_dir, summary)),
        Section("Read into a case", _ingest(report, case_dir)),
        *_one_address(case, world_dir),
        *verdicts,
        *_one_alert(case, world_dir),
        _topology(world_dir),
        Section("The report", _report(case, world_dir, page, shown)),
        Section("Next", _next(shown or directory, example, kept=shown is None)),
    ]


def _world(world_dir: Path, summary: dict[str, Any]) -> str:
    context = load_context(world_dir / "context")
    lines = [summary["description"], ""]
    for nat in context.nat_gateway_addresses():
        lines.append(f"NAT gateway {nat['nat_gateway_id']}: private {nat['private_ip']}, "
                     f"public {nat['public_ip']}")  # fmt: skip
    for endpoint in context.firewall_endpoints():
        lines.append(
            f"firewall endpoint {endpoint['endpoint_id']} in {endpoint['availability_zone']}"
        )
    lines.append(
        f"{summary['minutes']} minutes: {summary['connections']:,} connections, "
        f"{summary['records']:,} flow log records (version 5 fields), "
        f"{summary['firewall_events']:,} firewall events, with the truth about each"
    )
    return "\n".join(lines)


def _ingest(report: IngestReport, case_dir: Path) -> str:
    data = report.to_json()
    lines = data["lines"]
    firewall = data["tables_written"].get("firewall_events", 0)
    return (
        f"{lines['records'] - firewall:,} flow log records and {firewall:,} Network Firewall "
        f"events from {data['sources']['read']} files into {case_dir}; "
        f"{lines['skipped']} lines skipped"
    )


def _one_address(case: Case, world_dir: Path) -> list[Section]:
    """Every record that names one internet address: the same connection, seen four times."""
    truth = world_dir / "truth" / "connections.parquet"
    with DuckDBEngine() as engine:
        engine.register_case(case)
        engine.con.register("truth", pq.read_table(truth))
        row = engine.query(
            """
            SELECT server_ip FROM truth
            GROUP BY server_ip
            HAVING count(*) = 1 AND min(kind) = 'egress' AND min(variant) = 'short'
               AND min(protocol) = 6 AND min(server_port) = 443
            ORDER BY min(connection_id) LIMIT 1
            """
        ).to_pylist()
        if not row:
            return []
        address = row[0]["server_ip"]
        table = engine.query(
            fragment(
                """
                SELECT interface_id, srcaddr, srcport, dstaddr, dstport, pkt_srcaddr,
                       pkt_dstaddr, tcp_flags, packets, flow_direction
                FROM flows
                WHERE (srcaddr = $a OR dstaddr = $a OR pkt_srcaddr = $a OR pkt_dstaddr = $a)
                    AND dstport IS NOT NULL
                ORDER BY start, tcp_flags, interface_id, srcaddr, dstaddr
                LIMIT 12
                """,
                a=str(address),
            )
        )
    text = (
        f"Every record that names {address}: one short HTTPS connection, seen on the instance's "
        "interface, the NAT gateway's private and public legs, and the firewall endpoint. Only "
        "pkt-srcaddr/pkt-dstaddr tie the NAT gateway's legs to the internet host; the firewall "
        "sees the NAT gateway's address, not the instance's."
    )
    return [Section("One connection, four interfaces", text, table)]


def _verdicts(case: Case, world_dir: Path) -> tuple[list[Section], str]:
    """Problem 1: is the NAT gateway accepting traffic from the internet?"""
    from natlens.analyses.conversations import ConversationOptions
    from natlens.analyses.explain import explain
    from natlens.analyses.inbound import inbound

    options = ConversationOptions(context=load_context(world_dir / "context"))
    with DuckDBEngine() as engine:
        table = inbound(engine, case, options)
        rows = table.to_pylist()
        grouped = table.group_by("verdict").aggregate(
            [("address", "count"), ("conversations", "sum")]
        )
        summary = pa.table(
            {
                "verdict": grouped["verdict"],
                "internet addresses": grouped["address_count"],
                "conversations": grouped["conversations_sum"],
            }
        ).sort_by([("internet addresses", "descending")])
        examples = []
        for verdict in ("unsolicited", "response"):
            first = next((r["address"] for r in rows if r["verdict"] == verdict), None)
            if first:
                examples.append(explain(engine, case, first, options).sentence)
    text = (
        f"{len(rows)} internet addresses sent ACCEPT records into the VPC. Is the NAT gateway "
        "accepting traffic from the internet? No:\n\n" + "\n\n".join(examples)
    )
    example = next(
        (r["address"] for r in rows if r["verdict"] == "unsolicited"), rows[0]["address"]
    )
    return [Section("Inbound verdicts", text, summary)], str(example)


def _one_alert(case: Case, world_dir: Path) -> list[Section]:
    """Problem 2: a firewall alert names the NAT gateway; natlens names the instance, and the
    simulator's truth says whether it is right."""
    from natlens.analyses.conversations import ConversationOptions
    from natlens.analyses.nat import NatOptions, attribute

    options = NatOptions(
        ConversationOptions(context=load_context(world_dir / "context")), log_types=("alert",)
    )
    truth = {
        (Path(row["file"]).name, row["line"]): row["source_instance_id"]
        for row in pq.read_table(world_dir / "truth" / "firewall_events.parquet").to_pylist()
    }
    with DuckDBEngine() as engine:
        rows = attribute(engine, case, options).to_pylist()
    named = [r for r in rows if r["instance_id"] and r["confidence"] == "certain"]
    if not named:
        return []
    alert = named[0]
    real = truth.get((Path(str(alert["source"])).name, alert["line"]))
    text = (
        f"The firewall logged {len(rows)} alerts. This one names {alert['src_ip']}, the NAT "
        f"gateway's address, as its source:\n\n"
        f"  {alert['signature']} ({alert['alert_action']}), to {alert['hostname'] or '-'} "
        f"{alert['dest_ip']}:{alert['dest_port']}\n\n"
        f"natlens found the instance behind it in the flow logs: {alert['instance_id']} "
        f"({alert['instance_address']}:{alert['instance_port']}) through {alert['nat_gateway']}, "
        f"method {alert['method']}, confidence {alert['confidence']}. The simulator's truth: "
        f"{real or 'not recorded'}."
    )
    return [Section("Which instance is behind a firewall alert?", text)]


def _report(case: Case, world_dir: Path, page: Path, shown: Path | None) -> str:
    from natlens.analyses.conversations import ConversationOptions
    from natlens.report import build_report

    context = world_dir / "context"
    options = ConversationOptions(context=load_context(context))
    with DuckDBEngine() as engine:
        _data, html = build_report(engine, case, options, str(case.path), str(context))
    page.write_text(html, encoding="utf-8")
    if shown is None:
        return f"Both answers in one page, offline: open {page} in a browser."
    return (
        "Both answers in one page, offline: `natlens demo DIR` keeps it as DIR/report.html "
        "(this run's directory is removed when it ends)."
    )


def _topology(world_dir: Path) -> Section:
    """Problem 2's other half: where the firewall sits, and the route changes that move it."""
    from natlens.topology.report import analyse, layouts

    report = analyse(load_context(world_dir / "context"))
    vpc = report.vpcs[0]
    lines = [f"{row['availability_zone']}: {row['layout']}" for row in layouts(vpc.traces)]
    found = ", ".join(
        f"{f.id} ({f.severity}, {f.availability_zone or 'VPC'})" for f in vpc.findings
    )
    fixed = sorted({f.id for f in vpc.findings} - {f.id for f in vpc.after_findings})
    lines += [
        "",
        f"findings: {found or 'none'}",
        f"plan: {len(vpc.plan)} aws ec2 commands, checked on natlens's model of the VPC: "
        f"fixes {', '.join(fixed) or 'nothing'}; afterwards every AZ is "
        + ", ".join(sorted({row["layout"] for row in layouts(vpc.after_traces)})),
    ]
    return Section("Where the firewall sits", "\n".join(lines))


def _next(directory: Path, address: str, kept: bool) -> str:
    first = (
        [] if kept else [f"natlens demo {directory}   # keeps the world, the case and the report"]
    )
    return "\n".join(
        [
            *first,
            f"natlens report {directory / 'case'} --context {directory / 'world' / 'context'} "
            f"--output {directory / 'report.html'}",
            f"natlens attribute {directory / 'case'} --context {directory / 'world' / 'context'} "
            "--log-type alert",
            f"natlens inbound {directory / 'case'} --context {directory / 'world' / 'context'}",
            f"natlens topology --context {directory / 'world' / 'context'}   # the commands",
            f"natlens explain {directory / 'case'} {address} --context "
            f"{directory / 'world' / 'context'}",
            f"natlens insights {directory / 'case'} 'filter isIpv4InSubnet(srcAddr, "
            '"10.0.0.0/16") | stats sum(bytes) as bytesOut by srcAddr | sort bytesOut desc | '
            "limit 5'   # a CloudWatch Logs Insights query, offline",
            f"natlens export {directory / 'case'} --to ocsf --output {directory / 'ocsf'} "
            f"--context {directory / 'world' / 'context'}   # OCSF for Amazon Security Lake",
            f"natlens conversations {directory / 'case'} --port 443 --format jsonl",
            f"natlens records {directory / 'case'} --limit 20",
            f"ls {directory / 'world' / 'truth'}   # what really happened",
            "natlens simulate OUTDIR --scenario nat-basic|fw-after-nat|fw-before-nat|"
            "exposed-instance|mixed-formats",
        ]
    )
