"""The command line's arguments: every command, its options and its help."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Sequence
from typing import TypeAlias

from natlens import __version__
from natlens.cli.commands import (
    cmd_attribute,
    cmd_case_check,
    cmd_context_collect,
    cmd_conversations,
    cmd_demo,
    cmd_explain,
    cmd_export,
    cmd_inbound,
    cmd_ingest,
    cmd_insights,
    cmd_nat,
    cmd_reachable,
    cmd_records,
    cmd_report,
    cmd_simulate,
    cmd_sql,
    cmd_topology,
)
from natlens.errors import (
    EXIT_USAGE,
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


_Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


class _Parser(argparse.ArgumentParser):
    _argv: tuple[str, ...] = ()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._argv = tuple(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> None:  # type: ignore[override]
        from natlens.render.terminal import line_safe

        self.print_usage(sys.stderr)
        # the words quoted are the user's, pasted perhaps from logs: shown, never obeyed
        text = f"{self.prog}: error: {message}\n{self._suggestions(message)}"
        self.exit(EXIT_USAGE, line_safe(text))

    def _suggestions(self, message: str) -> str:
        """For an option natlens does not know, the one of the same command it is closest to."""
        choice = re.match(r"argument .*: invalid choice: '(.*?)' \(choose from (.*)\)", message)
        if choice:
            options = re.findall(r"'([^']*)'", choice.group(2))
            close = difflib.get_close_matches(choice.group(1), options, n=1, cutoff=0.6)
            return f"  did you mean {close[0]}?\n" if close else ""
        found = re.match(r"unrecognized arguments: (.*)", message)
        if not found:
            return ""
        command = self._command(self._argv)
        known = [o for a in command._actions for o in a.option_strings if o.startswith("--")]
        lines = []
        for word in found.group(1).split():
            if not word.startswith("--"):
                continue
            name = word.split("=", 1)[0]
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            if close:
                lines.append(f"  did you mean {close[0]} (not {name})?\n")
            else:
                lines.append(f"  {name}: '{command.prog} --help' lists its options\n")
        return "".join(lines)

    def _command(self, argv: Sequence[str]) -> argparse.ArgumentParser:
        """The (sub)command the words name."""
        parser: argparse.ArgumentParser = self
        for word in argv:
            subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            if subparsers and word in subparsers[0].choices:
                parser = subparsers[0].choices[word]
        return parser


def _source_options(parser: argparse.ArgumentParser, in_place: bool = True) -> None:
    group = parser.add_argument_group("reading sources")
    if in_place:
        group.add_argument(
            "--in-place", action="store_true",
            help="read AWS-delivered flow log files (Parquet, or text with a header line; "
            "local or s3://) where they lie, through the engine, instead of copying them into "
            "a temporary case first; other sources are read as without it",
        )  # fmt: skip
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


def _engine_options(parser: argparse.ArgumentParser, duckdb_memory: bool = True) -> None:
    group = parser.add_argument_group("engine")
    group.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    group.add_argument(
        "--spark-master", metavar="URL",
        help="Spark master URL: local[N], spark://HOST:PORT, yarn (default: local[2])",
    )  # fmt: skip
    group.add_argument(
        "--spark-conf", metavar="KEY=VALUE", action="append", default=[], type=_spark_setting,
        help="a Spark setting (repeatable), e.g. spark.executor.memory=8g",
    )  # fmt: skip
    if duckdb_memory:
        group.add_argument(
            "--memory-limit", metavar="SIZE", help="DuckDB: the most memory to use before "
            "spilling to disk, e.g. 2GB (default: DuckDB's, 80%% of RAM)",
        )  # fmt: skip


def _spark_setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return name.strip(), value


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
        "not read again; new sources append. With --engine spark, Spark's executors read the "
        "files and S3 objects (the case directory must be where every node sees it).",
    )
    ingest.add_argument("sources", nargs="+", metavar="SOURCE")
    ingest.add_argument("--case", required=True, metavar="DIR", help="the case directory")
    ingest.add_argument("--json", action="store_true", help="print the accounting as JSON")
    ingest.add_argument("--output", metavar="FILE", help="write the accounting here")
    _source_options(ingest, in_place=False)
    _engine_options(ingest, duckdb_memory=False)
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
    records.add_argument("--format", choices=ROW_FORMATS, default="table")
    records.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    _wide_option(records)
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
    case_commands = case.add_subparsers(
        dest="case_command", metavar="ACTION", required=True, parser_class=_Parser
    )
    check = _command(
        case_commands,
        "check",
        "check (and with --repair, repair) a case",
        "Check a case against its manifest and say what an interrupted run left; with --repair, "
        "put it back to its last committed state.",
    )
    check.add_argument("case", metavar="CASE")
    check.add_argument("--repair", action="store_true", help="make the case consistent again")
    check.add_argument("--json", action="store_true", help="print what was found as JSON")
    check.add_argument("--output", metavar="FILE", help="with --json: write it here")
    check.set_defaults(run=cmd_case_check)

    _analysis_commands(commands)
    _topology_commands(commands)

    from natlens.simulate.scenarios import DELIVERIES, SCENARIOS

    simulate = _command(
        commands,
        "simulate",
        "write labelled flow logs, firewall logs and VPC context for a scenario",
        "Simulate AWS traffic and write the logs AWS would write for it (flow logs "
        "on every interface that sees the traffic, Network Firewall logs, describe-* JSON) and "
        "the truth about every connection. The same seed gives the same output.",
        epilog="scenarios:\n"
        + "\n".join(f"  {name:17} {s.description}" for name, s in SCENARIOS.items()),
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
    simulate.add_argument("--output", metavar="FILE", help="with --json: write it here")
    simulate.set_defaults(run=cmd_simulate)

    sql = _command(
        commands,
        "sql",
        "print an analysis's SQL for DuckDB, Spark or Athena",
        "Print the SQL natlens runs for an analysis, translated for another engine, "
        "to run it yourself: on Athena over an existing flow-log table, on Spark, or on DuckDB.",
    )
    sql.add_argument(
        "analysis", metavar="ANALYSIS",
        help="one of: records, conversations, inbound, nat, top-talkers, attribute",
    )  # fmt: skip
    sql.add_argument("--dialect", choices=("duckdb", "spark", "athena"), default="duckdb")
    sql.add_argument(
        "--table", metavar="NAME", default="flows",
        help="the flow-log table to read (default: flows, a natlens case's). Another name means "
        "an existing table with AWS's columns only, such as Athena's vpc_flow_logs",
    )  # fmt: skip
    sql.add_argument(
        "--since", metavar="TIME", help="only records from then (ISO 8601, epoch seconds, or "
        "6h/7d ago); on Athena's table also its date partition, so Athena reads only those days",
    )  # fmt: skip
    sql.add_argument("--until", metavar="TIME", help="only records until then")
    sql.add_argument("--output", metavar="FILE", help="write the query here")
    sql.set_defaults(run=cmd_sql)

    insights = _command(
        commands,
        "insights",
        "run a CloudWatch Logs Insights query offline",
        "Run a CloudWatch Logs Insights query (as typed in CloudWatch) on a case, or on sources "
        "read into a temporary one, with the fields CloudWatch discovers: srcAddr, dstPort, "
        "@timestamp, @message ... for flow logs; event.src_ip, event.alert.signature ... for "
        "Network Firewall logs. Or print it as SQL for DuckDB, Spark or Athena "
        "(AWS's vpc_flow_logs table). docs/insights.md lists what is supported.",
        'example:\n  natlens insights CASE \'filter action = "REJECT" | stats count(*) as n '
        "by srcAddr | sort n desc | limit 20'",
    )
    insights.add_argument(
        "inputs", nargs="+", metavar="CASE_OR_SOURCE... QUERY",
        help="the case (or sources), then the query (unless --query-file)",
    )  # fmt: skip
    insights.add_argument("--query-file", metavar="FILE", help="read the query from FILE")
    insights.add_argument(
        "--logs", choices=("vpc", "firewall"), help="which logs the query reads (default: "
        "Network Firewall's when it names one of their fields, such as event.src_ip, else the "
        "flow logs)",
    )  # fmt: skip
    insights.add_argument(
        "--log-type", choices=("alert", "flow", "tls"), help="Network Firewall logs: only this "
        "log type's events (as a query on one of the firewall's log groups sees them)",
    )  # fmt: skip
    insights.add_argument(
        "--print-sql", action="store_true", help="print the query as SQL instead of running it"
    )
    insights.add_argument(
        "--dialect", choices=("duckdb", "spark", "athena"), default="duckdb",
        help="with --print-sql: for which engine (athena: AWS's standard vpc_flow_logs table)",
    )  # fmt: skip
    insights.add_argument(
        "--table", metavar="NAME", help="with --print-sql: the table to read (default: flows "
        "or firewall_events, a case's; vpc_flow_logs for athena)",
    )  # fmt: skip
    insights.add_argument("--format", choices=("table", "jsonl", "csv", "json"), default="table")
    insights.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    _wide_option(insights)
    _raw_csv_option(insights)
    _source_options(insights)
    _engine_options(insights)
    insights.set_defaults(run=cmd_insights)

    demo = _command(
        commands,
        "demo",
        "simulate a small world, read it, and show what natlens sees",
        "Simulate a VPC whose Network Firewall sits after its NAT gateways, read its "
        "flow logs into a case, and show the first things natlens can tell about it.",
    )
    demo.add_argument(
        "directory", nargs="?", metavar="DIR", help="keep the world and case here (default: a "
        "temporary directory, removed afterwards)",
    )  # fmt: skip
    demo.set_defaults(run=cmd_demo)
    return parser


def _command(
    commands: _Commands,
    name: str,
    help: str,
    description: str,
    epilog: str = "",
) -> argparse.ArgumentParser:
    """A command whose help ends with the exit codes (after ``epilog``)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=description,
        epilog=f"{epilog}\n\n{EXIT_CODES_HELP}" if epilog else EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


# Every command that lists rows: the same formats.
ROW_FORMATS = ("table", "jsonl", "csv", "parquet", "json")


def _wide_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wide", action="store_true", help="table: every column, every character (by default "
        "a table fits COLUMNS or the terminal, leaving out the columns that matter least, and "
        "cuts cells past 48 characters)",
    )  # fmt: skip


def _raw_csv_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw-csv", action="store_true", help="CSV cells exactly as the data holds them, for "
        "programs. By default a text cell that starts with = + - @ gets a leading ' (so a "
        "spreadsheet does not run it) and control characters are shown as escapes",
    )  # fmt: skip


def _analysis_options(parser: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    parser.add_argument("inputs", nargs="+", metavar="CASE_OR_SOURCE")
    parser.add_argument(
        "--context", metavar="DIR", help="the VPC's describe-* JSON (aws ec2 describe-... "
        "output files): which addresses are NAT gateways, firewall endpoints, instances",
    )  # fmt: skip
    parser.add_argument("--format", choices=formats, default=formats[0])
    if "csv" in formats:
        _raw_csv_option(parser)
    if "table" in formats:
        _wide_option(parser)
    parser.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    _source_options(parser)
    _engine_options(parser)


def _analysis_commands(commands: _Commands) -> None:
    conversations = _command(
        commands,
        "conversations",
        "both directions of each connection, and who started it",
        "Join the records of both directions of each connection, across the "
        "interfaces that saw it and across capture windows, into conversations; say who "
        "started each one (client), how sure that is (confidence: certain, high, medium, low, "
        "unknown) and the evidence codes that decided it (docs/conversations.md).",
    )
    _analysis_options(conversations, ROW_FORMATS)
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
    _analysis_options(inbound, ROW_FORMATS)
    inbound.add_argument("--ip", metavar="PUBLIC_IP", help="only this address")
    inbound.add_argument(
        "--verdict", action="append", metavar="VERDICT", help="list only these verdicts: "
        "exposed, mixed, unsolicited, undetermined, response (comma separated or repeated; the "
        "answer still counts every address)",
    )  # fmt: skip
    inbound.add_argument(
        "--fail-on", choices=("exposed", "unsolicited"), metavar="VERDICT",
        help="exit 1 when an address is exposed (exposed), or when any unsolicited traffic "
        "reached the VPC (unsolicited: an exposed, mixed or unsolicited address): for cron and CI",
    )  # fmt: skip
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
    _analysis_options(nat, ROW_FORMATS)
    nat.add_argument(
        "--top-talkers", action="store_true", help="rank instances and destinations per NAT "
        "gateway instead of listing the links",
    )  # fmt: skip
    nat.add_argument("--top", type=int, metavar="N", help="with --top-talkers: "
                     "this many of each per NAT gateway (default 10)")  # fmt: skip
    nat.add_argument("--by", choices=("bytes", "connections"),
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
    _analysis_options(attribute, ROW_FORMATS)
    attribute.add_argument(
        "--fail-on", choices=("unattributed",), metavar="WHAT",
        help="exit 1 when an alert from a NAT gateway's address has no instance named "
        "(unattributed): for cron and CI",
    )  # fmt: skip
    attribute.add_argument(
        "--log-type", action="append", choices=("alert", "flow", "tls"), metavar="TYPE",
        help="only these events: alert, flow or tls (repeatable; default all)",
    )  # fmt: skip
    attribute.set_defaults(run=cmd_attribute)

    report = _command(
        commands,
        "report",
        "both answers in one HTML page: verdicts, attributed alerts, NAT traffic, topology",
        "Write one self-contained HTML page (it opens offline and makes no network request) "
        "that answers both questions first: is the NAT gateway accepting traffic from the "
        "internet (verdicts, time chart per NAT gateway, scanners, probed ports, exposures in "
        "red), and which instance is behind each firewall alert (alerts per instance, a table to "
        "filter and sort); then the NAT gateways' top talkers, where the firewall sits with the "
        "route changes that move it (with --context), what the logs cover, and each address's "
        "explanation.",
    )
    report.add_argument("inputs", nargs="+", metavar="CASE_OR_SOURCE")
    report.add_argument(
        "--context", metavar="DIR", help="the VPC's describe-* JSON: which addresses are NAT "
        "gateways and instances, and where the firewall sits",
    )  # fmt: skip
    report.add_argument("--output", required=True, metavar="FILE", help="the HTML file to write")
    _source_options(report)
    _engine_options(report)
    report.set_defaults(run=cmd_report)

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
    _analysis_options(reachable, ROW_FORMATS)
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

    export = _command(
        commands,
        "export",
        "write a case as OCSF for a security data lake (Amazon Security Lake)",
        "Write the case's flow records and conversations as OCSF Network Activity (4001), with "
        "the initiator and direction natlens decided, and its inbound exposures, unsolicited "
        "packets at NAT gateways, attributed Network Firewall alerts and (with --context) "
        "topology findings as OCSF Detection Findings (2004). OCSF 1.1.0, laid out as Amazon "
        "Security Lake takes a custom source: one directory per source (flow-records, "
        "conversations, findings), partitioned region=/accountId=/eventDay=.",
    )
    export.add_argument("inputs", nargs="+", metavar="CASE_OR_SOURCE")
    export.add_argument("--to", choices=("ocsf",), required=True, help="the schema")
    export.add_argument("--output", required=True, metavar="DIR", help="a new or empty directory")
    export.add_argument("--format", choices=("parquet", "jsonl"), default="parquet")
    export.add_argument(
        "--context", metavar="DIR", help="the VPC's describe-* JSON: roles for the direction, "
        "and topology findings",
    )  # fmt: skip
    export.add_argument(
        "--partition-region", metavar="REGION", help="the region partition for events whose "
        "logs do not say (default: the case's most common region field)",
    )  # fmt: skip
    export.add_argument(
        "--partition-account", metavar="ID", help="the accountId partition for events whose "
        "logs do not say (default: the case's most common account-id)",
    )  # fmt: skip
    export.add_argument("--json", action="store_true", help="print the summary as JSON")
    _source_options(export, in_place=False)
    _engine_options(export)
    export.set_defaults(run=cmd_export)


def _aws_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading the VPC from AWS (read-only describe calls)")
    group.add_argument("--profile", help="AWS profile (standard boto3 credential chain)")
    group.add_argument("--region", help="AWS region")
    group.add_argument("--vpc-id", metavar="VPC", help="only this VPC (default: every VPC)")
    group.add_argument(
        "--endpoint-url", metavar="URL", help="EC2 and Network Firewall endpoint (a VPC "
        "interface endpoint, or a local test server)",
    )  # fmt: skip


def _topology_commands(commands: _Commands) -> None:
    from natlens.topology.catalog import CATALOG, SEVERITIES

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

    checks = "\n".join(f"  {i:<28} {s:<7} {title}" for i, (s, title) in CATALOG.items())
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
