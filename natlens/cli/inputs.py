"""What the commands share: their inputs as a case and an engine, their options as the
library's, and where their output goes."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import pyarrow as pa

    from natlens.analyses.conversations import ConversationOptions
    from natlens.analyses.nat import NatOptions
    from natlens.case import Case
    from natlens.engine import Engine
    from natlens.formats.describe_json import Context
    from natlens.formats.inplace import InPlace
    from natlens.ingest import IngestOptions
    from natlens.render.registry import Layout
    from natlens.render.terminal import SafeWriter, Writer
    from natlens.sources.timerange import TimeRange
    from natlens.sources.vpc_context import Collected

from natlens.errors import (
    EXIT_INPUT,
    EXIT_OK,
    InputError,
    UsageError,
)


def output_format(args: argparse.Namespace) -> str:
    """The renderer for --format (and --raw-csv)."""
    fmt: str = args.format
    return "csv-raw" if fmt == "csv" and getattr(args, "raw_csv", False) else fmt


def safe(out: Writer) -> SafeWriter:
    """Human text: control characters from the data shown, never sent to the terminal."""
    from natlens.render.terminal import SafeWriter

    return SafeWriter(out)


def load_context(directory: str) -> Context:
    """The describe-* JSON in ``directory``; its problems on stderr; none at all is an error."""
    from natlens.formats.describe_json import load_context

    context = load_context(directory)
    for problem in context.problems:
        safe(sys.stderr).write(f"natlens: context: {problem}\n")
    if not context.files:
        raise InputError(
            f"{directory}: no describe-* JSON found",
            hint="natlens context collect --out DIR, or save the AWS CLI's describe-* output "
            "(aws ec2 describe-route-tables --output json, ...) as .json files there",
        )
    return context


def conversation_options(args: argparse.Namespace) -> ConversationOptions:
    from natlens.analyses.conversations import ConversationOptions
    from natlens.sources.timerange import parse_time

    return ConversationOptions(
        context=load_context(args.context) if args.context else None,
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
        ip=getattr(args, "ip", None),
        port=getattr(args, "port", None),
    )


@contextlib.contextmanager
def open_output(args: argparse.Namespace) -> Iterator[TextIO]:
    from natlens import progress

    progress.output_starts()
    if not getattr(args, "output", None):
        yield sys.stdout
        return
    with open(args.output, "w", encoding="utf-8") as handle:
        yield handle


@contextlib.contextmanager
def case_and_engine(
    args: argparse.Namespace, options: ConversationOptions | None = None
) -> Iterator[tuple[Case, Engine]]:
    """The inputs as a case (sources are read into a temporary one, gone afterwards) and the
    engine to query it; results must be read before the block ends. ``options``' context is
    checked against the logs first (another VPC's, or contradicting them, is not used)."""
    from natlens.engine import open_engine

    with (
        case_from_inputs(args) as case,
        open_engine(args.engine, args.spark_master, args.memory_limit, args.spark_conf) as engine,
    ):
        engine.window = time_window(args)
        check_in_place(engine, case, bool(getattr(args, "strict", False)))
        if options is not None and options.context is not None:
            from natlens.analyses.context_check import prepare

            for warning in prepare(engine, case, options).context_warnings or []:
                safe(sys.stderr).write(f"natlens: context: {warning}\n")
        yield case, engine


def time_window(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """--since/--until as epoch seconds: every analysis of a case sees only that window."""
    window = time_range(args)
    return window.since, window.until


def time_range(args: argparse.Namespace) -> TimeRange:
    from natlens.sources.timerange import TimeRange, parse_time

    since = parse_time(args.since) if getattr(args, "since", None) else None
    until = parse_time(args.until) if getattr(args, "until", None) else None
    if since is not None and until is not None and since > until:
        raise UsageError("--since is later than --until")
    return TimeRange(since, until)


def collect_context(args: argparse.Namespace, out: str) -> Collected:
    from natlens.sources.aws import make_client
    from natlens.sources.vpc_context import collect

    ec2 = make_client("ec2", args.profile, args.region, args.endpoint_url)
    firewall = make_client("network-firewall", args.profile, args.region, args.endpoint_url)
    done = collect(out, ec2, firewall, args.vpc_id)
    for call, why in done.failures.items():
        safe(sys.stderr).write(f"natlens: context: {call}: {why}\n")
    if not done.files:
        raise InputError(
            "no describe-* call succeeded",
            hint="check the credentials (--profile), --region, and that they allow "
            "ec2:Describe* and network-firewall:DescribeFirewall",
        )
    return done


def terminal_width(args: argparse.Namespace) -> int | None:
    """The width a table must fit: COLUMNS when set, else the terminal's; none for a file or a
    pipe (every column, as --wide)."""
    import shutil

    if getattr(args, "output", None):
        return None
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def layout(args: argparse.Namespace, priority: tuple[str, ...] = ()) -> Layout:
    from natlens.render.registry import Layout

    wide = bool(getattr(args, "wide", False))
    return Layout(None if wide else terminal_width(args), wide, priority)


def write_answer(out: Writer, answer: str, args: argparse.Namespace) -> None:
    """The answer in one paragraph, before the table, wrapped to the table's width."""
    import textwrap

    width = min(terminal_width(args) or 100, 100)
    safe(out).write(textwrap.fill(answer, width=max(width, 40)) + "\n\n")


def render_analysis(
    args: argparse.Namespace,
    produce: Callable[[Engine, Case], Any],
    options: ConversationOptions,
    priority: tuple[str, ...] = (),
    answer: Callable[[pa.Table], str] | None = None,
    shown: Callable[[pa.Table], pa.Table] | None = None,
    answer_first: Callable[[Engine, Case], str] | None = None,
) -> pa.Table | None:
    """Run ``produce(engine, case)`` and render its rows (a table or a stream, read before the
    engine closes) in the chosen format; ``options`` hold the context to check. As a table,
    ``answer`` says what the rows mean first (the rows are read whole for it), or
    ``answer_first`` does from a query of its own (the rows stream); ``shown`` picks the rows to
    list. Returns the rows when they were read whole."""
    import pyarrow as pa

    from natlens.render.registry import render, whole

    with case_and_engine(args, options) as (case, engine):
        fmt = output_format(args)
        # first: another query would end the stream ``produce`` starts
        said = answer_first(engine, case) if fmt == "table" and answer_first else None
        rows = produce(engine, case)
        table = None
        if answer is not None and (fmt == "table" or isinstance(rows, pa.Table)):
            rows = table = whole(rows)
        with open_output(args) as out:
            if fmt == "table" and answer is not None and table is not None:
                write_answer(out, answer(table), args)
            if said is not None:
                write_answer(out, said, args)
            if shown is not None and table is not None:
                rows = shown(table)
            render(rows, fmt, out, layout(args, priority))
    return table


def nat_options(args: argparse.Namespace) -> NatOptions:
    from natlens.analyses.nat import LOG_TYPES, NatOptions

    return NatOptions(
        conversation_options(args),
        top=getattr(args, "top", 10),
        by=getattr(args, "by", "bytes"),
        log_types=tuple(getattr(args, "log_type", None) or LOG_TYPES),
    )


def ingest_options(args: argparse.Namespace) -> IngestOptions:
    from natlens.formats.logformat import parse_log_format
    from natlens.ingest import IngestOptions
    from natlens.sources.units import SourceOptions

    window = time_range(args)
    if getattr(args, "command", None) in ("attribute", "report"):
        # attribute reads the flow records either side of the window as evidence (nat.py):
        # sources are read that much wider (the engine shows each analysis its own window)
        from natlens.analyses.nat import WINDOW_MARGIN

        window = window.widened(WINDOW_MARGIN)
    return IngestOptions(
        log_format=parse_log_format(args.log_format) if args.log_format else None,
        strict=args.strict,
        sources=SourceOptions(
            time_range=window,
            endpoint_url=args.endpoint_url,
            profile=args.profile,
            region=args.region,
            log_stream=args.log_stream,
        ),
    )


def ingest_exit(data: dict[str, Any]) -> int:
    """Exit 2 when nothing at all could be read and lines were skipped or a source could not be
    read (an unreadable source skips no lines)."""
    lines = data["lines"]
    failed = lines["skipped"] > 0 or "unreadable" in data["skipped"]
    if data["sources"]["failed"]:
        return EXIT_INPUT  # a source gave nothing: it is retried by the next ingest
    return EXIT_INPUT if lines["records"] == 0 and failed else EXIT_OK


@contextlib.contextmanager
def case_from_inputs(args: argparse.Namespace) -> Iterator[Case]:
    """A case directory as given, or the sources read into a temporary case."""
    from natlens.case import Case, is_case

    if getattr(args, "in_place", False) and any(is_case(i) for i in args.inputs):
        raise UsageError(
            "--in-place reads sources where they lie; a case is read already",
            hint="give the flow log files or s3:// prefixes, or drop --in-place",
        )
    if len(args.inputs) == 1 and is_case(args.inputs[0]):
        with Case.open(args.inputs[0]) as case:
            yield case
        return
    from natlens.ingest import ingest  # (its import takes half a second: sources only)

    cases = [i for i in args.inputs if is_case(i)]
    if cases:
        raise UsageError(
            f"{cases[0]} is a case: give one case, or sources only",
            hint="to add sources to a case: natlens ingest SOURCE... --case DIR",
        )
    options = ingest_options(args)
    in_place = None
    if getattr(args, "in_place", False):
        from natlens.sources.inplace import plan

        in_place = plan(args.inputs, options.sources)
        options.units = in_place.others
        _say_in_place(in_place)
    with tempfile.TemporaryDirectory(prefix="natlens-case-") as tmp:
        report = ingest(args.inputs, os.path.join(tmp, "case"), options)
        data = report.to_json()
        skipped = data["lines"]["skipped"]
        read_in_place = in_place is not None and in_place.files > 0
        if report.records_written == 0 and report.accounting.examples and not read_in_place:
            first = next(iter(report.accounting.examples.values()))[0]
            raise InputError(str(first))
        if skipped or data["skipped"]:  # a damaged or unreadable file skips no line
            sys.stderr.write(
                (f"natlens: {skipped:,} line(s) skipped" if skipped else "natlens: problems")
                + " while reading; 'natlens ingest ... --json' lists them\n"
            )
            for reason, entry in data["skipped"].items():
                for example in entry["examples"][:2]:
                    safe(sys.stderr).write(f"  {reason}: {example}\n")
        with Case.open(report.case) as case:
            if in_place is not None:
                from natlens.formats.inplace import PARQUET

                case.in_place = in_place
                for group in in_place.groups:  # what the analyses ask of a case's formats
                    fields = group.fields
                    origin = "parquet" if group.kind == PARQUET else "header"
                    case.manifest["formats"].append({"fields": fields, "origin": origin})
                    for source in group.files:
                        case.manifest["sources"][source] = {"fields": fields, "in_place": True}
            yield case


def _say_in_place(in_place: InPlace) -> None:
    """What --in-place reads where it lies, and what it does not (on stderr)."""
    from natlens.formats.inplace import PARQUET

    out = safe(sys.stderr)
    parquet = sum(len(g.files) for g in in_place.groups if g.kind == PARQUET)
    text = in_place.files - parquet
    out.write(
        f"natlens: reading {in_place.files:,} file(s) in place ({parquet:,} Parquet, "
        f"{text:,} text with a header)"
        + (f"; {len(in_place.others):,} other source(s) read first" if in_place.others else "")
        + (
            f"; {in_place.passed_over:,} file(s) or folder(s) outside --since/--until by their "
            "names' dates not read"
            if in_place.passed_over
            else ""
        )
        + "\n"
    )
    if in_place.not_flow_logs:
        out.write(
            f"natlens: {len(in_place.not_flow_logs):,} Parquet file(s) not read: most of their "
            f"columns are not flow log fields, such as {in_place.not_flow_logs[0]}\n"
        )


def check_in_place(engine: Engine, case: Case, strict: bool) -> None:
    """Count the rows of the files read in place that ingest would have refused (the engine
    read them once, keeping each row's failed check), and say so on stderr; with --strict, any
    stops the run."""
    from natlens.formats.inplace import SKIPPED

    if case.in_place is None or not case.in_place.groups:
        return
    engine.register_case(case)
    unreadable = case.in_place.unreadable
    if unreadable:
        out = safe(sys.stderr)
        out.write(
            f"natlens: {len(unreadable):,} file(s) read in place could not be read and were "
            "left out; 'natlens ingest' keeps the lines before the damage in a text file\n"
        )
        for source, why in unreadable[:10]:
            out.write(f"  {source}: {why}\n")
        if len(unreadable) > 10:
            out.write(f"  ... and {len(unreadable) - 10:,} more\n")
        if strict:
            raise InputError(
                f"{len(unreadable):,} file(s) read in place could not be read (--strict)",
                hint="natlens ingest SOURCE... --case DIR --json names each problem",
            )
    rows = engine.query(SKIPPED).to_pylist()
    count, example = engine.in_place_rejected(case.in_place)
    if count:
        rows.append({"field": "line", "rows": count, "example": example})
    lines = [row for row in rows if row["rows"]]
    if not lines:
        return
    total = sum(row["rows"] for row in lines)
    out = safe(sys.stderr)
    out.write(
        f"natlens: {total:,} row(s) of the files read in place skipped (as ingest would "
        "skip them); 'natlens ingest ... --json' lists each\n"
    )
    for row in lines:
        what = (
            "a line with another number of fields than its header"
            if row["field"] == "line"
            else f"a bad {row['field']} value"
        )
        out.write(f"  {row['rows']:,} with {what}, such as in {row['example']}\n")
    # no record at all: an input problem, as when the sources are ingested first
    nothing = not strict and not case.parts("flows") and not _has_records(engine)
    if strict or nothing:
        raise InputError(
            f"{total:,} row(s) of the files read in place have bad values"
            + (" (--strict)" if strict else ", and no record was read"),
            hint="natlens ingest SOURCE... --case DIR --json names each line and value",
        )


def _has_records(engine: Engine) -> bool:
    first = engine.query("SELECT count(*) AS n FROM natlens_in_place").column("n")[0]
    return bool(first.as_py())
