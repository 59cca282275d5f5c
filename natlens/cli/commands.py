"""One function per command: read the arguments, call the library, render."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import tempfile
from typing import Any

from natlens import progress
from natlens.cli.inputs import (
    case_and_engine,
    case_from_inputs,
    collect_context,
    conversation_options,
    ingest_exit,
    ingest_options,
    layout,
    load_context,
    nat_options,
    open_output,
    output_format,
    render_analysis,
    safe,
    time_window,
    write_answer,
)
from natlens.errors import (
    EXIT_INPUT,
    EXIT_OK,
    InputError,
    UsageError,
)


def cmd_ingest(args: argparse.Namespace) -> int:
    from natlens.ingest import ingest
    from natlens.render.ingest_report import write_text

    options = ingest_options(args)
    if args.engine == "spark":  # the executors read the sources
        from natlens.engine import SparkEngine
        from natlens.spark_ingest import SparkReader

        options.reader = SparkReader(SparkEngine(args.spark_master or "local[2]", args.spark_conf))
    report = ingest(args.sources, args.case, options)
    data = report.to_json()
    with open_output(args) as out:
        if args.json:
            json.dump(versioned(data), out, indent=2)
            out.write("\n")
        else:
            write_text(data, safe(out))
    return ingest_exit(data)


def versioned(data: dict[str, Any]) -> dict[str, Any]:
    """A JSON document natlens prints: its schema version first."""
    from natlens.schema import JSON_SCHEMA_VERSION

    return {"schema_version": JSON_SCHEMA_VERSION, **data}


def cmd_case_check(args: argparse.Namespace) -> int:
    from natlens.case import Case, is_case
    from natlens.errors import CaseError

    if not is_case(args.case):
        raise CaseError(f"{args.case}: not a natlens case (no readable manifest.json)")
    found = Case.check(args.case, repair=args.repair)
    progress.output_starts()
    if args.json:
        with open_output(args) as handle:
            document = {"case": str(args.case), "repaired": args.repair, **found.to_json()}
            json.dump(versioned(document), handle, indent=2)
            handle.write("\n")
    else:
        out = safe(sys.stdout)
        lines = found.lines(done=args.repair)
        if not lines:
            out.write(f"{args.case}: consistent\n")
        for line in lines:
            out.write(f"{line}\n")
        for source in found.forgotten_sources:
            out.write(f"  {source}\n")
        if lines and not args.repair:
            out.write(f"run: natlens case check {shlex.quote(args.case)} --repair\n")
    return EXIT_OK if args.repair or not found.problems() else EXIT_INPUT


def cmd_records(args: argparse.Namespace) -> int:
    from natlens.analyses.records import default_columns, record_batches
    from natlens.render.registry import render
    from natlens.schema import FLOWS_SCHEMA

    with case_and_engine(args) as (case, engine):
        if args.all_columns:
            columns = list(FLOWS_SCHEMA.names)
        elif args.columns:
            columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        else:
            columns = default_columns(case)
        table = record_batches(engine, case, columns, args.limit)
        with open_output(args) as out:
            render(table, output_format(args), out, layout(args))
    return EXIT_OK


def cmd_context_collect(args: argparse.Namespace) -> int:
    done = collect_context(args, args.out)
    progress.output_starts()
    for name, count in done.files.items():
        sys.stdout.write(f"{count:>6}  {os.path.join(args.out, name)}\n")
    if done.failures:
        sys.stdout.write(f"{len(done.failures)} call(s) failed (see above): what they would have "
                         "told natlens is missing\n")  # fmt: skip
    return EXIT_OK


def cmd_topology(args: argparse.Namespace) -> int:
    import ipaddress

    from natlens.errors import EXIT_FINDINGS
    from natlens.render.topology import render
    from natlens.topology.report import analyse, to_json

    for destination in args.destination:
        try:
            ipaddress.ip_network(destination, strict=False)
        except ValueError:
            raise UsageError(f"--destination {destination}: not an IP address or CIDR") from None
    with contextlib.ExitStack() as stack:
        directory = args.context
        if not directory:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="natlens-ctx-"))
            collect_context(args, directory)
        context = load_context(directory)
        report = analyse(context, tuple(args.destination), args.vpc_id)
    if not report.vpcs:
        raise InputError(
            f"{directory}: no VPC with subnets or route tables"
            + (f" for {args.vpc_id}" if args.vpc_id else ""),
            hint="save describe-subnets and describe-route-tables there",
        )
    with open_output(args) as out:
        render(to_json(report), args.format, out)
    if args.fail_on and report.at_or_above(args.fail_on):
        return EXIT_FINDINGS
    return EXIT_OK


# The columns a table keeps first when the terminal is narrow (the others follow, then are left
# out from the last): what answers the question, then its evidence.
PRIORITY = {
    "conversations": ("client_addr", "client_port", "server_addr", "server_port", "protocol",
                      "first_seen", "confidence", "evidence", "client_resource",
                      "server_resource", "packets_to_server", "packets_to_client"),
    "inbound": ("address", "verdict", "conversations", "packets_in", "exposed_on", "gateways",
                "instances", "probed_ports", "first_seen", "last_seen", "recommendation"),
    "nat": ("first_seen", "nat_gateway", "destination", "destination_port", "instance_id",
            "instance_address", "instance_port", "confidence", "method", "candidate_count"),
    "talkers": ("nat_gateway", "side", "rank", "address", "instance_id", "bytes", "connections"),
    "attribute": ("event_time", "log_type", "signature", "dest_ip", "dest_port", "hostname",
                  "instance_id", "instance_address", "confidence", "method", "candidate_count",
                  "nat_gateway"),
    "reachable": ("resource", "address", "public_address", "protocol", "ports", "state",
                  "clients", "probes", "security_group"),
}  # fmt: skip


def cmd_conversations(args: argparse.Namespace) -> int:
    from pathlib import Path

    from natlens.analyses.conversations import (
        conversation_batches,
        conversation_summary,
        export_conversations,
    )
    from natlens.report.answers import conversations_answer

    options = conversation_options(args)
    parquet_file = args.format == "parquet" and args.output
    if parquet_file:
        with case_and_engine(args, options) as (case, engine):
            if export_conversations(engine, case, Path(args.output), options):
                return EXIT_OK
    # Millions of rows: streamed from the engine to the output, a table's answer counted first
    # by a query of its own.
    render_analysis(
        args,
        lambda engine, case: conversation_batches(engine, case, options),
        options,
        PRIORITY["conversations"],
        answer_first=lambda engine, case: conversations_answer(
            conversation_summary(engine, case, options).to_pylist()
        ),
    )
    return EXIT_OK


def cmd_inbound(args: argparse.Namespace) -> int:
    import pyarrow.compute as pc

    from natlens.analyses.inbound import SEVERITY, inbound
    from natlens.errors import EXIT_FINDINGS
    from natlens.report.answers import inbound_answer

    options = conversation_options(args)
    verdicts = _choices(args.verdict, SEVERITY, "--verdict")

    def shown(rows: Any) -> Any:
        return rows.filter(pc.is_in(rows["verdict"], pa_strings(verdicts))) if verdicts else rows

    rows = render_analysis(
        args,
        lambda engine, case: inbound(engine, case, options),
        options,
        PRIORITY["inbound"],
        lambda rows: inbound_answer(rows.select(["verdict", "exposed_on"]).to_pylist()),
        shown,
    )
    found = set(rows.column("verdict").to_pylist()) if rows is not None else set()
    fail = {"exposed": {"exposed"}, "unsolicited": {"exposed", "mixed", "unsolicited"}}
    if args.fail_on and found & fail[args.fail_on]:
        return EXIT_FINDINGS
    return EXIT_OK


def _choices(values: list[str] | None, allowed: tuple[str, ...], option: str) -> list[str]:
    """Values of a repeatable, comma-separated option, each one checked."""
    chosen = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    wrong = [v for v in chosen if v not in allowed]
    if wrong:
        raise UsageError(f"{option} {wrong[0]}: not one of {', '.join(allowed)}")
    return chosen


def pa_strings(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(values, pa.string())


def cmd_reachable(args: argparse.Namespace) -> int:
    from natlens.analyses.reachable import reachable
    from natlens.report.answers import reachable_answer

    options = conversation_options(args)
    render_analysis(
        args,
        lambda engine, case: reachable(engine, case, options),
        options,
        PRIORITY["reachable"],
        lambda rows: reachable_answer(rows.select(["state"]).to_pylist()),
    )
    return EXIT_OK


def cmd_nat(args: argparse.Namespace) -> int:
    from natlens.analyses.nat import nat_links, top_talkers
    from natlens.report.answers import nat_links_answer, talkers_answer

    if not args.top_talkers:
        given = [o for o, v in (("--top", args.top), ("--by", args.by)) if v is not None]
        if given:
            raise UsageError(
                f"{' and '.join(given)} only {'rank' if len(given) > 1 else 'ranks'} top talkers",
                hint="add --top-talkers, or leave them out to list every NAT link",
            )
    args.top = 10 if args.top is None else args.top
    args.by = args.by or "bytes"
    options = nat_options(args)
    if args.top_talkers:
        render_analysis(
            args,
            lambda engine, case: top_talkers(engine, case, options),
            options.conversations,
            PRIORITY["talkers"],
            lambda rows: talkers_answer(rows.to_pylist()),
        )
        return EXIT_OK
    columns = ["nat_gateway", "nat_address", "instance_address", "confidence", "ambiguous"]
    render_analysis(
        args,
        lambda engine, case: nat_links(engine, case, options),
        options.conversations,
        PRIORITY["nat"],
        lambda rows: nat_links_answer(rows.select(columns).to_pylist()),
    )
    return EXIT_OK


def cmd_attribute(args: argparse.Namespace) -> int:
    from natlens.analyses.nat import AlertSources, attribute_batches
    from natlens.errors import EXIT_FINDINGS
    from natlens.report.answers import attribute_answer

    options = nat_options(args)
    sources = AlertSources()
    columns = ["log_type", "source_kind", "instance_id", "instance_address", "confidence",
               "ambiguous"]  # fmt: skip
    render_analysis(
        args,
        lambda engine, case: sources.watch(attribute_batches(engine, case, options)),
        options.conversations,
        PRIORITY["attribute"],
        lambda rows: attribute_answer(rows.select(columns).to_pylist()),
    )
    note = sources.note()
    if note and args.format != "table":
        sys.stderr.write(f"natlens: {note}\n")
    if args.fail_on == "unattributed" and sources.unattributed:
        sys.stderr.write(
            f"natlens: {sources.unattributed:,} alert(s) from a NAT gateway's address with no "
            "instance named\n"
        )
        return EXIT_FINDINGS
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from natlens.analyses.explain import explain
    from natlens.render.explanation import write_text

    options = conversation_options(args)
    with case_and_engine(args, options) as (case, engine):
        report = explain(engine, case, args.address, options)
    with open_output(args) as out:
        if args.format == "json":
            json.dump(versioned(report.to_json()), out, indent=2, default=str)
            out.write("\n")
        else:
            write_text(report, safe(out))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from natlens.report import build_report

    options = conversation_options(args)
    target = Path(args.output)
    if target.is_dir():
        raise UsageError(f"--output {args.output}: a directory", hint="name the HTML file")
    with case_and_engine(args, options) as (case, engine):
        data, page = build_report(engine, case, options, " ".join(args.inputs), args.context)
    # Written whole under another name first: an interrupted run leaves no half page.
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, target)
    progress.output_starts()
    write_answer(sys.stdout, data.inbound["answer"], args)
    if data.alerts and not data.alerts.get("blocked"):
        write_answer(sys.stdout, data.alerts["answer"], args)
    out = safe(sys.stdout)
    out.write(f"report: {target} ({len(page.encode()) / 1e6:.1f} MB); open it in a browser, "
              "it needs no network\n")  # fmt: skip
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from natlens.export.ocsf import export_ocsf
    from natlens.topology.report import analyse, to_json

    options = nat_options(args)
    context = options.conversations.context
    topology = to_json(analyse(context, (), None)) if context is not None else None
    with case_and_engine(args, options.conversations) as (case, engine):
        report = export_ocsf(
            engine, case, options, Path(args.output), args.format,
            args.partition_region, args.partition_account, topology,
        )  # fmt: skip
    progress.output_starts()
    data = report.to_json()
    if args.json:
        json.dump(versioned(data), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    out = safe(sys.stdout)
    out.write(f"OCSF {data['ocsf_version']} ({args.format}) in {report.output}:\n")
    for source, count in data["events"].items():
        out.write(f"  {source}: {count:,} events\n")
    for reason, count in data["flow_records_not_exported"].items():
        out.write(f"  flow records not exported ({reason}): {count:,}\n")
    partition = data["default_partition"]
    out.write(
        f"  {data['files']} files under region=/accountId=/eventDay= (region {partition['region']},"
        f" account {partition['accountId']} where the logs do not say); each directory is one"
        " Security Lake custom source\n"
    )
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from natlens.simulate.run import SimulateOptions, simulate

    summary = simulate(
        args.outdir,
        SimulateOptions(
            scenario=args.scenario,
            minutes=args.minutes,
            records=args.records,
            seed=args.seed,
            log_format=args.log_format,
            interval=args.interval,
            delivery=args.delivery,
        ),
    )
    if args.json:
        with open_output(args) as handle:
            json.dump(versioned(summary), handle, indent=2)
            handle.write("\n")
        return EXIT_OK
    progress.output_starts()
    out = sys.stdout
    out.write(f"{summary['scenario']}: {summary['description']}\n")
    out.write(
        f"{summary['minutes']} minutes, seed {summary['seed']}: {summary['connections']:,} "
        f"connections, {summary['records']:,} flow log records, {summary['firewall_events']:,} "
        f"firewall events, {summary['public_addresses']} internet addresses "
        f"({summary['seconds']:.1f} s)\n"
    )
    out.write(f"context (describe-* JSON): {os.path.join(args.outdir, 'context')}\n")
    out.write(f"truth: {os.path.join(args.outdir, 'truth')}\n")
    out.write("read the flow logs with:\n")
    for flow_log in summary["flow_logs"]:
        source = os.path.join(args.outdir, "flowlogs", flow_log["name"])
        command = f"  natlens ingest {source} --case {os.path.join(args.outdir, 'case')}"
        if flow_log["needs_log_format"]:
            command += f" --log-format '{flow_log['log_format']}'"  # no header line to read
        out.write(command + "\n")
    firewall = os.path.join(args.outdir, "firewall")
    if summary["firewall_events"] and os.path.isdir(firewall):
        out.write("read the Network Firewall logs (alert, flow, TLS) into the same case with:\n")
        case = shlex.quote(os.path.join(args.outdir, "case"))
        out.write(f"  natlens ingest {shlex.quote(firewall)} --case {case}\n")
    return EXIT_OK


def cmd_sql(args: argparse.Namespace) -> int:
    from natlens.analyses.queries import QUERIES
    from natlens.engine import translate

    query = QUERIES.get(args.analysis)
    if query is None:
        raise UsageError(
            f"unknown analysis {args.analysis!r}", hint=f"one of: {', '.join(sorted(QUERIES))}"
        )
    in_case = args.table == "flows"
    text = translate(
        query(in_case), args.dialect, tables={"flows": args.table}, where=_sql_window(args, in_case)
    )
    with open_output(args) as out:
        out.write(text.rstrip() + ";\n")
    return EXIT_OK


def _sql_window(args: argparse.Namespace, in_case: bool) -> dict[str, list[Any]]:
    """--since/--until as conditions on the tables natlens sql reads: the times a case's engine
    view applies, and on AWS's Athena table also its date partition."""
    from types import SimpleNamespace

    import sqlglot

    from natlens.analyses.nat import WINDOW_MARGIN
    from natlens.engine import Engine
    from natlens.insights.values import athena_window
    from natlens.sources.timerange import TimeRange

    since, until = time_window(args)
    if since is None and until is None:
        return {}
    # attribute reads the flow records either side of the window as evidence (nat.py)
    margin = WINDOW_MARGIN if args.analysis == "attribute" else 0
    filters = Engine.window_filters(
        SimpleNamespace(window=(since, until), flows_margin=margin)  # type: ignore[arg-type]
    )
    where = {name: [sqlglot.parse_one(text, read="duckdb")] for name, text in filters.items()}
    if args.dialect == "athena" and not in_case:
        wide = TimeRange(since, until).widened(margin)
        days = [c for c in athena_window(wide.since, wide.until) if "date" in c.this.name]
        where["flows"] = days + where["flows"]
    return where


def cmd_insights(args: argparse.Namespace) -> int:
    from natlens.insights import compile_query, run, sql_text
    from natlens.render.registry import render

    inputs = list(args.inputs)
    if args.query_file:
        try:
            with open(args.query_file, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"--query-file {args.query_file}: cannot be read ({exc.__class__.__name__})"
            ) from None
    else:
        if len(inputs) < 2:
            raise UsageError(
                "give a case (or sources) and then the query",
                hint="natlens insights CASE 'stats count(*) by action', or --query-file FILE",
            )
        text = inputs.pop()
    args.inputs = inputs
    if args.print_sql:
        with case_from_inputs(args) as case:
            compiled = compile_query(
                text, case, args.dialect, args.logs, time_window(args), table=args.table,
                printing=True, log_type=args.log_type,
            )  # fmt: skip
        with open_output(args) as out:
            out.write(sql_text(compiled, args.dialect).rstrip() + ";\n")
        return EXIT_OK
    if args.table:
        raise UsageError("--table goes with --print-sql", hint="a case's tables are its own")
    with case_and_engine(args) as (case, engine):
        result = run(engine, case, text, args.logs, args.log_type)
    for note in result.compiled.notes:
        safe(sys.stderr).write(f"natlens: {note}\n")
    if result.capped:
        sys.stderr.write(
            f"natlens: the query has no limit: like CloudWatch, natlens shows the first "
            f"{result.table.num_rows:,} rows; add '| limit N' for more\n"
        )
    with open_output(args) as out:
        if args.format == "json":
            document = {
                "query": text,
                "logs": result.compiled.logs,
                "columns": result.compiled.names,
                "rows": result.table.to_pylist(),
                "capped": result.capped,
            }
            json.dump(versioned(document), out, indent=2, default=str)
            out.write("\n")
        else:
            render(result.table, output_format(args), out, layout(args))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from natlens.demo import run_demo
    from natlens.render.registry import render

    with contextlib.ExitStack() as stack:
        shown = None
        if args.directory:
            directory = Path(args.directory)
            directory.mkdir(parents=True, exist_ok=True)
            for name in ("world", "case"):
                if (directory / name).exists():
                    import shutil

                    shutil.rmtree(directory / name)
        else:
            directory = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="natlens-demo-"))
            )
            shown = Path("natlens-demo")  # what the printed commands name: it is gone after
        sections = run_demo(directory, shown=shown)
        progress.output_starts()
        for section in sections:
            sys.stdout.write(f"\n{section.title}\n{'-' * len(section.title)}\n")
            if section.text:
                # the alert's signature and host come from the firewall's logs: shown, not obeyed
                safe(sys.stdout).write(section.text + "\n")
            if section.table is not None:
                sys.stdout.write("\n")
                render(section.table, "table", sys.stdout)
    return EXIT_OK
