"""The command line: parse arguments, call the library, render. Nothing else lives here."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from natlens import __version__
from natlens.errors import (
    EXIT_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    InputError,
    InternalError,
    NatlensError,
    UsageError,
)

EXIT_CODES_HELP = """exit codes:
  0   done (lines that could not be read are reported, and do not fail the run)
  1   an analysis found what --fail-on asked about
  2   input problem: --strict stopped at a problem, a source or case cannot be read (the
      readable ones are still read; the others are tried again by the next ingest), or
      nothing at all could be read
  3   environment problem: something natlens needs is not installed or did not start
  64  usage error: a bad option or argument
  70  natlens failed in a way it did not foresee (a bug: please report it)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _source_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading sources")
    group.add_argument(
        "--log-format",
        metavar="FORMAT",
        help="the flow log's format string, as 'aws ec2 describe-flow-logs' prints it "
        "('${version} ${account-id} ...'), for records without a header line",
    )
    group.add_argument("--since", metavar="TIME", help="ISO 8601, epoch seconds, or 6h/7d ago")
    group.add_argument("--until", metavar="TIME", help="ISO 8601, epoch seconds, or 6h/7d ago")
    group.add_argument(
        "--strict", action="store_true", help="stop at the first problem (exit code 2)"
    )
    group.add_argument("--endpoint-url", metavar="URL", help="S3 or CloudWatch Logs endpoint")
    group.add_argument("--profile", help="AWS profile (standard boto3 credential chain)")
    group.add_argument("--region", help="AWS region")
    group.add_argument(
        "--log-stream",
        metavar="NAME",
        help="cwl:// sources: log stream names (comma separated) or a prefix ending in '*'",
    )


def _engine_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine")
    group.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    group.add_argument("--spark-master", metavar="URL", help="Spark master URL (default: local[2])")
    group.add_argument(
        "--memory-limit", metavar="SIZE", help="DuckDB: the most memory to use before spilling "
        "to disk, e.g. 2GB (default: DuckDB's, 80%% of RAM)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="natlens",
        description="Explain AWS VPC Flow Logs and Network Firewall logs.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"natlens {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    ingest = _command(
        commands,
        "ingest",
        "read flow logs into a case directory",
        "Read VPC flow logs from files, directories, globs, s3://bucket/prefix or "
        "cwl://LOG_GROUP into a case: Parquet tables and a manifest. Sources read before are "
        "not read again; new sources append.",
    )
    ingest.add_argument("sources", nargs="+", metavar="SOURCE")
    ingest.add_argument("--case", required=True, metavar="DIR", help="the case directory")
    ingest.add_argument("--json", action="store_true", help="print the accounting as JSON")
    _source_options(ingest)
    ingest.set_defaults(run=cmd_ingest)

    records = _command(
        commands,
        "records",
        "print canonical flow records",
        "Print the canonical records of a case, or of sources read into a "
        "temporary case. JSONL keys are the canonical column names.",
    )
    records.add_argument("inputs", nargs="+", metavar="CASE_OR_SOURCE")
    records.add_argument("--limit", type=int, default=None, help="at most N records")
    records.add_argument("--format", choices=("table", "jsonl", "csv"), default="table")
    _raw_csv_option(records)
    records.add_argument(
        "--columns", metavar="A,B", help="columns to print (default: the fields seen)"
    )
    records.add_argument(
        "--all-columns", action="store_true", help="every canonical column, NULL or not"
    )
    _source_options(records)
    _engine_options(records)
    records.set_defaults(run=cmd_records)

    case = _command(
        commands,
        "case",
        "check a case directory and repair it after an interrupted run",
        "Compare a case directory with its manifest: temporary parts of an interrupted ingest, "
        "parts no manifest names, parts of an interrupted commit, parts the manifest names that "
        "are missing. With --repair, put the case back to its last committed state (every "
        "ingest does this by itself first).",
    )
    case_commands = case.add_subparsers(dest="case_command", metavar="ACTION", required=True)
    check = case_commands.add_parser("check", help="check (and with --repair, repair) a case")
    check.add_argument("case", metavar="CASE")
    check.add_argument("--repair", action="store_true", help="make the case consistent again")
    check.add_argument("--json", action="store_true", help="print what was found as JSON")
    check.set_defaults(run=cmd_case_check)

    _analysis_commands(commands)
    _topology_commands(commands)

    from natlens.simulate import DELIVERIES, SCENARIOS

    simulate = commands.add_parser(
        "simulate",
        help="write labelled flow logs, firewall logs and VPC context for a scenario",
        description="Simulate AWS traffic and write the logs AWS would write for it (flow logs "
        "on every interface that sees the traffic, Network Firewall logs, describe-* JSON) and "
        "the truth about every connection. The same seed gives the same output.",
        epilog="scenarios:\n"
        + "\n".join(f"  {name:17} {s.description}" for name, s in SCENARIOS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("outdir", metavar="OUTDIR")
    simulate.add_argument("--scenario", choices=list(SCENARIOS), default="nat-basic")
    simulate.add_argument("--minutes", type=int, default=60, help="simulated time (default 60)")
    simulate.add_argument(
        "--records", type=int, help="about this many flow log records (scales the traffic)"
    )
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument(
        "--log-format",
        metavar="FORMAT",
        help="default, v3, v5, or an AWS format string ('${version} ${srcaddr} ...')",
    )
    simulate.add_argument("--interval", type=int, choices=(60, 600), default=60,
                          help="capture window in seconds (default 60)")  # fmt: skip
    simulate.add_argument("--delivery", choices=DELIVERIES, help="default: s3-text")
    simulate.add_argument("--json", action="store_true", help="print the summary as JSON")
    simulate.set_defaults(run=cmd_simulate)

    sql = commands.add_parser(
        "sql",
        help="print an analysis's SQL for DuckDB, Spark or Athena",
        description="Print the SQL natlens runs for an analysis, translated for another engine, "
        "to run it yourself: on Athena over an existing flow-log table, on Spark, or on DuckDB.",
    )
    sql.add_argument("analysis", metavar="ANALYSIS", help="one of: records, conversations, inbound")
    sql.add_argument("--dialect", choices=("duckdb", "spark", "athena"), default="duckdb")
    sql.add_argument(
        "--table", metavar="NAME", default="flows",
        help="the flow-log table to read (default: flows, a natlens case's). Another name means "
        "an existing table with AWS's columns only, such as Athena's vpc_flow_logs",
    )  # fmt: skip
    sql.set_defaults(run=cmd_sql)

    demo = commands.add_parser(
        "demo",
        help="simulate a small world, read it, and show what natlens sees",
        description="Simulate a VPC whose Network Firewall sits after its NAT gateways, read its "
        "flow logs into a case, and show the first things natlens can tell about it.",
    )
    demo.add_argument(
        "directory", nargs="?", metavar="DIR", help="keep the world and case here (default: a "
        "temporary directory, removed afterwards)",
    )  # fmt: skip
    demo.set_defaults(run=cmd_demo)
    return parser


def _command(commands: Any, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A command whose help ends with the exit codes."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _raw_csv_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw-csv", action="store_true", help="CSV cells exactly as the data holds them, for "
        "programs. By default a text cell that starts with = + - @ gets a leading ' (so a "
        "spreadsheet does not run it) and control characters are shown as escapes",
    )  # fmt: skip


def _format(args: argparse.Namespace) -> str:
    """The renderer for --format (and --raw-csv)."""
    fmt: str = args.format
    return "csv-raw" if fmt == "csv" and getattr(args, "raw_csv", False) else fmt


def _analysis_options(parser: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    parser.add_argument("inputs", nargs="+", metavar="CASE_OR_SOURCE")
    parser.add_argument(
        "--context", metavar="DIR", help="the VPC's describe-* JSON (aws ec2 describe-... "
        "output files): which addresses are NAT gateways, firewall endpoints, instances",
    )  # fmt: skip
    parser.add_argument("--format", choices=formats, default="table")
    if "csv" in formats:
        _raw_csv_option(parser)
    parser.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    _source_options(parser)
    _engine_options(parser)


def _analysis_commands(commands: Any) -> None:
    conversations = _command(
        commands,
        "conversations",
        "both directions of each connection, and who started it",
        "Join the records of both directions of each connection, across the "
        "interfaces that saw it and across capture windows, into conversations; say who "
        "started each one (client), how sure that is (confidence: certain, high, medium, low, "
        "unknown) and the evidence codes that decided it (docs/conversations.md).",
    )
    _analysis_options(conversations, ("table", "jsonl", "csv", "parquet"))
    conversations.add_argument("--ip", metavar="IP", help="only conversations with this address")
    conversations.add_argument("--port", type=int, metavar="P", help="only with this port")
    conversations.set_defaults(run=cmd_conversations)

    inbound = _command(
        commands,
        "inbound",
        "the verdict on each internet address that sent ACCEPT records into the VPC",
        "For every internet address that is the source of ACCEPT records into the "
        "VPC: unsolicited (reached only NAT gateway addresses, which dropped it), response "
        "(replies to connections instances opened), mixed, exposed (opened connections to an "
        "address that is not a NAT gateway) or undetermined; with the NAT gateways, instances, "
        "ports, counts, time range, evidence and what to do.",
    )
    _analysis_options(inbound, ("table", "jsonl", "csv", "parquet"))
    inbound.add_argument("--ip", metavar="PUBLIC_IP", help="only this address")
    inbound.set_defaults(run=cmd_inbound)

    nat = _command(
        commands,
        "nat",
        "the instance behind each connection a NAT gateway made, and its top talkers",
        "For every connection a NAT gateway made to the internet (its public leg: its "
        "address and translated port), the instance behind it: joined with the private leg "
        "(instance to the NAT gateway's private address) and the instance's own records. Exact "
        "when pkt-srcaddr/pkt-dstaddr are logged (method pkt-dstaddr), otherwise scored on the "
        "destination, the time and the packets and bytes of both sides (instance-eni, "
        "nat-legs). Each link has a confidence; when several instances fit, the candidates and "
        "their scores, and no instance is named on a tie. With --top-talkers: per NAT gateway, "
        "the instances sending through it and the destinations it reached, in bytes and "
        "connections (AWS's 'top contributors' questions).",
    )
    _analysis_options(nat, ("table", "jsonl", "csv", "parquet"))
    nat.add_argument(
        "--top-talkers", action="store_true", help="rank instances and destinations per NAT "
        "gateway instead of listing the links",
    )  # fmt: skip
    nat.add_argument("--top", type=int, default=10, metavar="N", help="with --top-talkers: "
                     "this many of each per NAT gateway (default 10)")  # fmt: skip
    nat.add_argument("--by", choices=("bytes", "connections"), default="bytes",
                     help="with --top-talkers: rank by (default bytes)")  # fmt: skip
    nat.set_defaults(run=cmd_nat)

    attribute = _command(
        commands,
        "attribute",
        "the instance behind each Network Firewall alert whose source is a NAT gateway",
        "Every Network Firewall alert, flow and TLS event with the instance that sent it. When "
        "the firewall sits after the NAT gateway, its events name the NAT gateway's address: "
        "natlens finds the instance, its interface and private address from the flow logs, "
        "says how (method: pkt-dstaddr, instance-eni, nat-legs) and how sure it is "
        "(confidence, candidate count, candidates). Events whose source is already a private "
        "address pass through (method source-address); the internet's own (unsolicited "
        "packets to the NAT gateway) name no instance. Netflow events of one flow are paired "
        "by flow_id.",
    )
    _analysis_options(attribute, ("table", "jsonl", "csv", "parquet"))
    attribute.add_argument(
        "--log-type", action="append", choices=("alert", "flow", "tls"), metavar="TYPE",
        help="only these events: alert, flow or tls (repeatable; default all)",
    )  # fmt: skip
    attribute.set_defaults(run=cmd_attribute)

    reachable = _command(
        commands,
        "reachable",
        "what the internet can reach, per interface and port, and whether the logs show it used",
        "From --context: every interface the internet can open connections to (a public IPv4 "
        "or an IPv6 address behind a route to an internet gateway), each port range a security "
        "group rule admits from internet sources, and the network ACL rule that decides it. "
        "Joined with the logs: reachable, used (internet clients exchanged data); probed by "
        "scanners (only probes reached it); reachable, unused (nothing did: close it unless it "
        "is needed); blocked by network ACL. NAT gateways are left out: they drop what the "
        "internet opens.",
    )
    _analysis_options(reachable, ("table", "jsonl", "csv", "parquet"))
    reachable.set_defaults(run=cmd_reachable)

    explain = _command(
        commands,
        "explain",
        "a short report on one address, with Logs Insights queries to confirm it",
        "Explain one address: the verdict in one sentence, its conversations with "
        "their evidence, the key records, and the CloudWatch Logs Insights queries that confirm "
        "the verdict in your own account.",
    )
    _analysis_options(explain, ("text", "json"))
    explain.set_defaults(format="text")
    explain.add_argument("address", metavar="ADDRESS")
    explain.set_defaults(run=cmd_explain)


def _aws_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading the VPC from AWS (read-only describe calls)")
    group.add_argument("--profile", help="AWS profile (standard boto3 credential chain)")
    group.add_argument("--region", help="AWS region")
    group.add_argument("--vpc-id", metavar="VPC", help="only this VPC (default: every VPC)")
    group.add_argument(
        "--endpoint-url", metavar="URL", help="EC2 and Network Firewall endpoint (a VPC "
        "interface endpoint, or a local test server)",
    )  # fmt: skip


def _topology_commands(commands: Any) -> None:
    from natlens.topology.checks import CHECKS, SEVERITIES

    context = commands.add_parser(
        "context",
        help="save the VPC's describe-* JSON for --context",
        description="The VPC model natlens reads with --context: a directory of describe-* "
        "JSON, saved by 'natlens context collect' or by hand with the AWS CLI.",
    )
    actions = context.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    collect = _command(
        actions,
        "collect",
        "save describe-* JSON with read-only calls",
        "Save, with read-only calls, the JSON of describe-vpcs, describe-subnets, "
        "describe-route-tables, describe-nat-gateways, describe-network-interfaces, "
        "describe-network-acls, describe-internet-gateways, describe-instances, "
        "describe-vpc-endpoints, describe-security-groups, describe-flow-logs, "
        "get-managed-prefix-list-entries for the "
        "prefix lists routes name, and network-firewall describe-firewall for every firewall in "
        "the VPC; pages merged, one file per call, as the AWS CLI prints them.",
    )
    collect.add_argument("--out", required=True, metavar="DIR", help="the directory to fill")
    _aws_options(collect)
    collect.set_defaults(run=cmd_context_collect)

    checks = "\n".join(f"  {c.id:<28} {c.severity:<7} {c.title}" for c in CHECKS.values())
    topology = commands.add_parser(
        "topology",
        help="where the firewall sits, what breaks, and the exact route changes that fix it",
        description="Trace every subnet's way to the internet (0.0.0.0/0, ::/0 and any "
        "--destination) and back, hop by hop through the route tables; say how each AZ is "
        "built (firewall-after-nat, firewall-before-nat, nat-only, ...); report findings with "
        "the resources, the traced paths and the remediation as ordered AWS CLI commands, "
        "checked by applying them to natlens's model of the VPC and tracing again.",
        epilog=f"checks (id, highest severity, title):\n{checks}\n\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    topology.add_argument(
        "--context", metavar="DIR", help="the VPC's describe-* JSON (natlens context collect, "
        "or the AWS CLI's own output files); without it, read live from AWS",
    )  # fmt: skip
    topology.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    topology.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    topology.add_argument(
        "--destination", action="append", metavar="CIDR", default=[],
        help="trace this address or CIDR too (repeatable)",
    )  # fmt: skip
    topology.add_argument(
        "--fail-on", choices=SEVERITIES, metavar="SEVERITY",
        help=f"exit 1 when a finding at or above this severity exists ({', '.join(SEVERITIES)})",
    )  # fmt: skip
    _aws_options(topology)
    topology.set_defaults(run=cmd_topology)


# -- commands ------------------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    from natlens.ingest import ingest
    from natlens.render.ingest_report import write_text

    report = ingest(args.sources, args.case, _ingest_options(args))
    data = report.to_json()
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_text(data, _safe(sys.stdout))
    return _ingest_exit(data)


def cmd_case_check(args: argparse.Namespace) -> int:
    from natlens.case import Case, is_case
    from natlens.errors import CaseError

    if not is_case(args.case):
        raise CaseError(f"{args.case}: not a natlens case (no readable manifest.json)")
    found = Case.check(args.case, repair=args.repair)
    if args.json:
        json.dump({"case": str(args.case), "repaired": args.repair, **found.to_json()},
                  sys.stdout, indent=2)  # fmt: skip
        sys.stdout.write("\n")
    else:
        out = _safe(sys.stdout)
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


def _safe(out: Any) -> Any:
    """Human text: control characters from the data shown, never sent to the terminal."""
    from natlens.render.terminal import SafeWriter

    return SafeWriter(out)


def cmd_records(args: argparse.Namespace) -> int:
    from natlens.analyses.records import default_columns, records
    from natlens.render import render
    from natlens.schema import FLOWS_SCHEMA

    with _case_and_engine(args) as (case, engine):
        if args.all_columns:
            columns = list(FLOWS_SCHEMA.names)
        elif args.columns:
            columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        else:
            columns = default_columns(case)
        table = records(engine, case, columns, args.limit)
        render(table, _format(args), sys.stdout)
    return EXIT_OK


def _load_context(directory: str) -> Any:
    """The describe-* JSON in ``directory``; its problems on stderr; none at all is an error."""
    from natlens.formats.describe_json import load_context

    context = load_context(directory)
    for problem in context.problems:
        _safe(sys.stderr).write(f"natlens: context: {problem}\n")
    if not context.files:
        raise InputError(
            f"{directory}: no describe-* JSON found",
            hint="natlens context collect --out DIR, or save the AWS CLI's describe-* output "
            "(aws ec2 describe-route-tables --output json, ...) as .json files there",
        )
    return context


def _conversation_options(args: argparse.Namespace) -> Any:
    from natlens.analyses.conversations import ConversationOptions
    from natlens.sources.timerange import parse_time

    return ConversationOptions(
        context=_load_context(args.context) if args.context else None,
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
        ip=getattr(args, "ip", None),
        port=getattr(args, "port", None),
    )


@contextlib.contextmanager
def _output(args: argparse.Namespace) -> Iterator[Any]:
    if not args.output:
        yield sys.stdout
        return
    with open(args.output, "w", encoding="utf-8") as handle:
        yield handle


@contextlib.contextmanager
def _case_and_engine(args: argparse.Namespace, options: Any = None) -> Iterator[tuple[Any, Any]]:
    """The inputs as a case (sources are read into a temporary one, gone afterwards) and the
    engine to query it; results must be read before the block ends. ``options``' context is
    checked against the logs first (another VPC's, or contradicting them, is not used)."""
    from natlens.analyses.context_check import prepare
    from natlens.engine import open_engine

    with (
        _case_from_inputs(args) as case,
        open_engine(args.engine, args.spark_master, args.memory_limit) as engine,
    ):
        engine.window = _window(args)
        if options is not None and options.context is not None:
            for warning in prepare(engine, case, options).context_warnings or []:
                _safe(sys.stderr).write(f"natlens: context: {warning}\n")
        yield case, engine


def _window(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """--since/--until as epoch seconds: every analysis of a case sees only that window."""
    window = _time_range(args)
    return window.since, window.until


def _time_range(args: argparse.Namespace) -> Any:
    from natlens.sources.timerange import TimeRange, parse_time

    since = parse_time(args.since) if getattr(args, "since", None) else None
    until = parse_time(args.until) if getattr(args, "until", None) else None
    if since is not None and until is not None and since > until:
        raise UsageError("--since is later than --until")
    return TimeRange(since, until)


def _collect(args: argparse.Namespace, out: str) -> Any:
    from natlens.sources.aws import make_client
    from natlens.sources.vpc_context import collect

    ec2 = make_client("ec2", args.profile, args.region, args.endpoint_url)
    firewall = make_client("network-firewall", args.profile, args.region, args.endpoint_url)
    done = collect(out, ec2, firewall, args.vpc_id)
    for call, why in done.failures.items():
        _safe(sys.stderr).write(f"natlens: context: {call}: {why}\n")
    if not done.files:
        raise InputError(
            "no describe-* call succeeded",
            hint="check the credentials (--profile), --region, and that they allow "
            "ec2:Describe* and network-firewall:DescribeFirewall",
        )
    return done


def cmd_context_collect(args: argparse.Namespace) -> int:
    done = _collect(args, args.out)
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
            _collect(args, directory)
        context = _load_context(directory)
        report = analyse(context, tuple(args.destination), args.vpc_id)
    if not report.vpcs:
        raise InputError(
            f"{directory}: no VPC with subnets or route tables"
            + (f" for {args.vpc_id}" if args.vpc_id else ""),
            hint="save describe-subnets and describe-route-tables there",
        )
    with _output(args) as out:
        render(to_json(report), args.format, out)
    if args.fail_on and report.at_or_above(args.fail_on):
        return EXIT_FINDINGS
    return EXIT_OK


def cmd_conversations(args: argparse.Namespace) -> int:
    from pathlib import Path

    from natlens.analyses.conversations import conversation_batches, export_conversations
    from natlens.render import render

    options = _conversation_options(args)
    with _case_and_engine(args, options) as (case, engine):
        parquet_file = args.format == "parquet" and args.output
        if parquet_file and export_conversations(engine, case, Path(args.output), options):
            return EXIT_OK
        # Millions of rows: streamed from the engine to the output.
        rows = conversation_batches(engine, case, options)
        with _output(args) as out:
            render(rows, _format(args), out)
    return EXIT_OK


def _render_analysis(args: argparse.Namespace, produce: Any, options: Any) -> None:
    """Run ``produce(engine, case)`` and render its rows (a table or a stream, read before the
    engine closes) in the chosen format; ``options`` hold the context to check."""
    from natlens.render import render

    with _case_and_engine(args, options) as (case, engine):
        rows = produce(engine, case)
        with _output(args) as out:
            render(rows, _format(args), out)


def cmd_inbound(args: argparse.Namespace) -> int:
    from natlens.analyses.inbound import inbound

    options = _conversation_options(args)
    _render_analysis(args, lambda engine, case: inbound(engine, case, options), options)
    return EXIT_OK


def cmd_reachable(args: argparse.Namespace) -> int:
    from natlens.analyses.reachable import reachable

    options = _conversation_options(args)
    _render_analysis(args, lambda engine, case: reachable(engine, case, options), options)
    return EXIT_OK


def _nat_options(args: argparse.Namespace) -> Any:
    from natlens.analyses.nat import LOG_TYPES, NatOptions

    return NatOptions(
        _conversation_options(args),
        top=getattr(args, "top", 10),
        by=getattr(args, "by", "bytes"),
        log_types=tuple(getattr(args, "log_type", None) or LOG_TYPES),
    )


def cmd_nat(args: argparse.Namespace) -> int:
    from natlens.analyses.nat import nat_links, top_talkers

    options = _nat_options(args)
    produce = top_talkers if args.top_talkers else nat_links
    _render_analysis(
        args, lambda engine, case: produce(engine, case, options), options.conversations
    )
    return EXIT_OK


def cmd_attribute(args: argparse.Namespace) -> int:
    from natlens.analyses.nat import AlertSources, attribute_batches

    options = _nat_options(args)
    sources = AlertSources()
    _render_analysis(
        args,
        lambda engine, case: sources.watch(attribute_batches(engine, case, options)),
        options.conversations,
    )
    note = sources.note()
    if note:
        sys.stderr.write(f"natlens: {note}\n")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from natlens.analyses.explain import explain
    from natlens.render.explanation import write_text

    options = _conversation_options(args)
    with _case_and_engine(args, options) as (case, engine):
        report = explain(engine, case, args.address, options)
    with _output(args) as out:
        if args.format == "json":
            json.dump(report.to_json(), out, indent=2, default=str)
            out.write("\n")
        else:
            write_text(report, _safe(out))
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from natlens.simulate import SimulateOptions, simulate

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
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
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
    return EXIT_OK


def cmd_sql(args: argparse.Namespace) -> int:
    from natlens.analyses import QUERIES
    from natlens.engine import translate

    query = QUERIES.get(args.analysis)
    if query is None:
        raise UsageError(
            f"unknown analysis {args.analysis!r}", hint=f"one of: {', '.join(sorted(QUERIES))}"
        )
    in_case = args.table == "flows"
    text = translate(query(in_case), args.dialect, tables={"flows": args.table})
    sys.stdout.write(text.rstrip() + ";\n")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from natlens.demo import run_demo
    from natlens.render import render

    with contextlib.ExitStack() as stack:
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
        for section in run_demo(directory):
            sys.stdout.write(f"\n{section.title}\n{'-' * len(section.title)}\n")
            if section.text:
                sys.stdout.write(section.text + "\n")
            if section.table is not None:
                sys.stdout.write("\n")
                render(section.table, "table", sys.stdout)
    return EXIT_OK


# -- helpers -------------------------------------------------------------------------------------


def _ingest_options(args: argparse.Namespace) -> Any:
    from natlens.formats.logformat import parse_log_format
    from natlens.ingest import IngestOptions
    from natlens.sources import SourceOptions

    return IngestOptions(
        log_format=parse_log_format(args.log_format) if args.log_format else None,
        strict=args.strict,
        sources=SourceOptions(
            time_range=_time_range(args),
            endpoint_url=args.endpoint_url,
            profile=args.profile,
            region=args.region,
            log_stream=args.log_stream,
        ),
    )


def _ingest_exit(data: dict[str, Any]) -> int:
    """Exit 2 when nothing at all could be read and lines were skipped or a source could not be
    read (an unreadable source skips no lines)."""
    lines = data["lines"]
    failed = lines["skipped"] > 0 or "unreadable" in data["skipped"]
    if data["sources"]["failed"]:
        return EXIT_INPUT  # a source gave nothing: it is retried by the next ingest
    return EXIT_INPUT if lines["records"] == 0 and failed else EXIT_OK


@contextlib.contextmanager
def _case_from_inputs(args: argparse.Namespace) -> Iterator[Any]:
    """A case directory as given, or the sources read into a temporary case."""
    from natlens.case import Case, is_case
    from natlens.ingest import ingest

    if len(args.inputs) == 1 and is_case(args.inputs[0]):
        with Case.open(args.inputs[0]) as case:
            yield case
        return
    cases = [i for i in args.inputs if is_case(i)]
    if cases:
        raise UsageError(
            f"{cases[0]} is a case: give one case, or sources only",
            hint="to add sources to a case: natlens ingest SOURCE... --case DIR",
        )
    with tempfile.TemporaryDirectory(prefix="natlens-case-") as tmp:
        report = ingest(args.inputs, os.path.join(tmp, "case"), _ingest_options(args))
        data = report.to_json()
        skipped = data["lines"]["skipped"]
        if report.records_written == 0 and report.accounting.examples:
            first = next(iter(report.accounting.examples.values()))[0]
            raise InputError(str(first))
        if skipped:
            sys.stderr.write(
                f"natlens: {skipped:,} line(s) skipped while reading; "
                "'natlens ingest ... --json' lists them\n"
            )
            for reason, entry in data["skipped"].items():
                for example in entry["examples"][:2]:
                    _safe(sys.stderr).write(f"  {reason}: {example}\n")
        with Case.open(report.case) as case:
            yield case


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except NatlensError as exc:
        _safe(sys.stderr).write(f"natlens: error: {exc}\n")
        return exc.exit_code
    except BrokenPipeError:
        # The reader of our output went away (natlens records ... | head): not an error.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        problem = _as_natlens_error(exc)
        _safe(sys.stderr).write(f"natlens: {problem.label}: {problem}\n")
        if os.environ.get("NATLENS_DEBUG"):
            import traceback

            traceback.print_exc()
        return problem.exit_code


def _as_natlens_error(exc: Exception) -> NatlensError:
    """What went wrong outside natlens's own checks, said as a natlens error."""
    if isinstance(exc, OSError):
        # A file natlens was asked to read or write: missing, not permitted, disk full.
        where = f"{exc.filename}: " if exc.filename else ""
        return InputError(f"{where}{exc.strerror or exc}")
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and isinstance(exc, duckdb.Error):
        # Raised while results stream out, after the query started.
        from natlens.engine import engine_error

        return engine_error(exc)
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    if "pyspark" in sys.modules and type(exc).__module__.startswith(("pyspark", "py4j")):
        return InputError(
            f"Spark stopped: {type(exc).__name__}: {first}",
            hint="natlens case check CASE tells whether the case is damaged; --engine duckdb "
            "runs the same analysis on this machine",
        )
    return InternalError(
        f"{type(exc).__name__}: {first}",
        hint="this is a bug in natlens; NATLENS_DEBUG=1 prints the traceback to report",
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
