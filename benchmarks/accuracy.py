"""Accuracy of natlens's answers against the simulator's truth.

For every scenario, in the default format and in version 5 (tcp-flags and pkt-* fields), with
and without the VPC context: who started each conversation (by evidence class and confidence) and
the inbound verdict of every internet address.

Targets (issue 4): with tcp-flags, >= 99.9% of TCP conversations right; default format, >= 98% of
all conversations right; 100% of inbound verdicts right; no `exposed` verdict in a scenario without
an exposed instance; certain/high answers wrong < 0.1% of the time. A conversation is right when
natlens names the side that opened it on every one of its records; `unknown` counts as not right.
An inbound verdict is right when it is the truth's; `undetermined` where the truth knows better is
counted apart (natlens abstained: e.g. only ICMP with an instance that has a public IP, which the
issue itself wants undetermined); any other difference is wrong and misses the target.

Alert attribution (issue 5), on fw-after-nat with four times its default traffic, in both
formats, with and without context: with pkt-* fields >= 99.5% of the alerts from a NAT gateway
address attributed to the right instance; certain/high attributions >= 99.5% precise; every
attribution that is not certain shows its candidates; the hard case (instances running the same
job against one destination in the same second) reported ambiguous with the right instance among
the candidates, never guessed. Its alerts are counted apart from the others.

    python benchmarks/accuracy.py [--minutes 60] [--seed 1] [--attribution-only] [--record-results]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from natlens.analyses.conversations import (
    ConversationOptions,
    infer_inside,
    record_initiators_sql,
)
from natlens.analyses.inbound import inbound
from natlens.case import Case
from natlens.engine import DuckDBEngine
from natlens.formats.describe_json import load_context
from natlens.formats.logformat import parse_log_format
from natlens.ingest import IngestOptions, ingest
from natlens.simulate.run import SimulateOptions, simulate
from natlens.simulate.scenarios import SCENARIOS

FORMATS = ("default", "v5")


@dataclass
class Result:
    scenario: str
    log_format: str
    context: bool
    conversations: int = 0
    right: int = 0
    tcp: int = 0
    tcp_right: int = 0
    unknown: int = 0
    sure: int = 0  # certain or high
    sure_wrong: int = 0
    unmatched_records: int = 0
    by_class: dict[str, list[int]] = field(default_factory=dict)  # class -> [n, wrong]
    by_confidence: dict[str, list[int]] = field(default_factory=dict)
    # Calibration: "family / confidence" -> [conversations, wrong]; family -> verdict tallies
    # [addresses, right, undetermined, wrong].
    by_family_confidence: dict[str, list[int]] = field(default_factory=dict)
    verdicts_by_family: dict[str, list[int]] = field(default_factory=dict)
    undetermined: list[str] = field(default_factory=list)
    addresses: int = 0
    verdicts_right: int = 0
    verdicts_undetermined: int = 0  # natlens abstained: nothing in the logs decides
    false_exposed: int = 0
    verdict_errors: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.right / self.conversations if self.conversations else 1.0

    @property
    def tcp_accuracy(self) -> float:
        return self.tcp_right / self.tcp if self.tcp else 1.0

    @property
    def sure_error(self) -> float:
        return self.sure_wrong / self.sure if self.sure else 0.0


def build_world(
    root: Path, scenario: str, log_format: str, minutes: int, seed: int, records: int | None = None
) -> Path:
    """Simulate and ingest (flow logs, and the firewall's logs when there are some); returns the
    world directory (with ``case`` inside)."""
    world = root / f"{scenario}-{log_format}"
    fmt = None if scenario == "mixed-formats" else log_format
    summary = simulate(
        world,
        SimulateOptions(
            scenario=scenario, minutes=minutes, seed=seed, log_format=fmt, records=records
        ),
    )
    if (world / "firewall").exists():
        ingest([str(world / "firewall")], str(world / "case"), IngestOptions())
    for flow_log in summary["flow_logs"]:
        source = world / "flowlogs" / flow_log["name"]
        options = IngestOptions(
            log_format=parse_log_format(flow_log["log_format"])
            if flow_log["needs_log_format"]
            else None
        )
        ingest([str(source)], str(world / "case"), options)
    return world


def evaluate(world: Path, scenario: str, log_format: str, with_context: bool) -> Result:
    result = Result(scenario, log_format, with_context)
    context = load_context(world / "context") if with_context else None
    options = ConversationOptions(context=context)
    case = Case.open(world / "case")
    prefix = str(world.resolve()) + "/"
    with DuckDBEngine() as engine:
        engine.register_case(case)
        predicted = engine.query(record_initiators_sql(infer_inside(engine, options)))
        verdicts = inbound(engine, case, options)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("predicted", predicted)
    con.register("verdicts", verdicts)
    truth = str(world / "truth").replace("'", "''")
    rows = con.execute(
        f"""
        WITH joined AS (
            SELECT p.*, t.initiator AS truth, t.family
            FROM predicted AS p
            LEFT JOIN read_parquet('{truth}/records.parquet') AS t
                ON t.file = replace(p.source, '{prefix}', '') AND t.line = p.line
        )
        SELECT conversation, any_value(confidence) AS confidence,
               any_value(split_part(evidence, ',', 1)) AS class,
               any_value(protocol) AS protocol,
               bool_and(initiator = truth OR truth = 'both') AS right,
               count(*) FILTER (WHERE truth IS NULL) AS unmatched,
               -- the family most of its records have; a tie goes to the first by name (mode()
               -- would pick by row order, which the engine does not promise)
               arg_max(family, family_records * 1000000 - family_rank) AS family
        FROM (
            SELECT *, count(*) OVER (PARTITION BY conversation, family) AS family_records,
                   dense_rank() OVER (PARTITION BY conversation ORDER BY family) AS family_rank
            FROM joined
        ) GROUP BY conversation
        """
    ).fetchall()
    for _conv, confidence, klass, protocol, right, unmatched, family in rows:
        right = bool(right) and confidence != "unknown"
        result.conversations += 1
        result.right += right
        result.unmatched_records += unmatched
        if protocol == 6:
            result.tcp += 1
            result.tcp_right += right
        result.unknown += confidence == "unknown"
        if confidence in ("certain", "high"):
            result.sure += 1
            result.sure_wrong += not right
        for key, table in (
            (klass, result.by_class),
            (confidence, result.by_confidence),
            (f"{family} / {confidence}", result.by_family_confidence),
        ):
            entry = table.setdefault(key, [0, 0])
            entry[0] += 1
            entry[1] += not right
    pairs = con.execute(
        f"""
        SELECT coalesce(t.address, v.address), t.verdict, v.verdict,
               coalesce(t.families, ['(not in the truth)'])
        FROM read_parquet('{truth}/inbound.parquet') AS t
        FULL JOIN verdicts AS v ON v.address = t.address
        """
    ).fetchall()
    for address, true, said, families in pairs:
        result.addresses += 1
        outcome = 1 if true == said else 2 if said == "undetermined" and true is not None else 3
        for family in families:
            tally = result.verdicts_by_family.setdefault(family, [0, 0, 0, 0])
            tally[0] += 1
            tally[outcome] += 1
        where = ", ".join(families)
        if outcome == 1:
            result.verdicts_right += 1
        elif outcome == 2:
            result.verdicts_undetermined += 1
            result.undetermined.append(f"{address} ({where}): truth {true}")
        else:
            result.verdict_errors.append(f"{address} ({where}): truth {true}, natlens {said}")
        if said == "exposed" and true != "exposed":
            result.false_exposed += 1
    con.close()
    return result


@dataclass
class Attribution:
    """Network Firewall events attributed to instances (issue 5), against the truth."""

    log_format: str
    context: bool
    alerts: int = 0  # alerts from a NAT gateway address, hard cases apart
    alerts_right: int = 0
    hard_alerts: int = 0
    hard_ambiguous: int = 0  # reported ambiguous, the right instance among the candidates
    events: int = 0  # alerts, netflow and TLS events from a NAT gateway address
    events_right: int = 0
    sure: int = 0  # certain or high
    sure_wrong: int = 0
    unsure_without_candidates: int = 0  # not certain, candidates found but not shown
    nothing_found: int = 0  # no instance fits at all (said, not guessed)
    by_confidence: dict[str, list[int]] = field(default_factory=dict)

    @property
    def alert_accuracy(self) -> float:
        return self.alerts_right / self.alerts if self.alerts else 1.0

    @property
    def sure_precision(self) -> float:
        return 1 - self.sure_wrong / self.sure if self.sure else 1.0


def evaluate_attribution(world: Path, log_format: str, with_context: bool) -> Attribution:
    from natlens.analyses.nat import NatOptions, attribute

    result = Attribution(log_format, with_context)
    context = load_context(world / "context") if with_context else None
    case = Case.open(world / "case")
    with DuckDBEngine() as engine:
        said = attribute(engine, case, NatOptions(ConversationOptions(context=context)))
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("said", said)
    prefix = str(world.resolve()) + "/"
    rows = con.execute(
        f"""
        SELECT s.log_type, s.confidence, s.instance_address, s.ambiguous, s.candidate_count,
            s.candidates, t.source_ip, t.hard_case_group
        FROM said AS s
        JOIN read_parquet('{world}/truth/firewall_events.parquet') AS t
            ON t.file = replace(s.source, '{prefix}', '') AND t.line = s.line
        WHERE s.source_kind = 'nat-gateway'
        """
    ).fetchall()
    for log_type, confidence, address, ambiguous, count, candidates, truth, hard in rows:
        right = address == truth
        result.events += 1
        result.events_right += right
        entry = result.by_confidence.setdefault(confidence, [0, 0])
        entry[0] += 1
        entry[1] += not right
        if confidence in ("certain", "high"):
            result.sure += 1
            result.sure_wrong += not right
        elif count and not candidates:
            result.unsure_without_candidates += 1
        if not count:
            result.nothing_found += 1
        if log_type != "alert":
            continue
        if hard >= 0:
            result.hard_alerts += 1
            result.hard_ambiguous += bool(ambiguous) and any(
                c.startswith(f"{truth}:") for c in candidates
            )
        else:
            result.alerts += 1
            result.alerts_right += right
    con.close()
    return result


def run_attribution(root: Path, minutes: int, seed: int) -> list[Attribution]:
    """fw-after-nat with four times the default traffic: more alerts, more overlap."""
    results = []
    for log_format in FORMATS:
        records = ATTRIBUTION_RECORDS * minutes // 60
        world = build_world(root, "fw-after-nat", log_format, minutes, seed, records)
        for with_context in (False, True):
            results.append(evaluate_attribution(world, log_format, with_context))
        shutil.rmtree(world)
    return results


ATTRIBUTION_RECORDS = 100_000  # per hour of simulated time


def attribution_table(results: list[Attribution]) -> str:
    lines = [
        "| format | context | alerts right | certain/high precision | hard-case alerts "
        "ambiguous | events right | not certain without candidates | nothing fits |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.log_format} | {'yes' if r.context else 'no'} "
            f"| {r.alerts_right}/{r.alerts} ({r.alert_accuracy:.2%}) "
            f"| {r.sure - r.sure_wrong:,}/{r.sure:,} ({r.sure_precision:.3%}) "
            f"| {r.hard_ambiguous}/{r.hard_alerts} | {r.events_right:,}/{r.events:,} "
            f"| {r.unsure_without_candidates} | {r.nothing_found} |"
        )
    lines += ["", *_count_table("attribution confidence", "events", "not the right instance",
                                [r.by_confidence for r in results])]  # fmt: skip
    return "\n".join(lines)


def attribution_failures(results: list[Attribution]) -> list[str]:
    """Issue 5's targets: with pkt-* >= 99.5% of alerts right; in the default format certain/
    high >= 99.5% precise; every attribution that is not certain shows its candidates; the hard
    case ambiguous."""
    out = []
    for r in results:
        name = f"attribution/{r.log_format}/{'context' if r.context else 'no context'}"
        if r.log_format != "default" and r.alert_accuracy < 0.995:
            out.append(f"{name}: alerts right {r.alert_accuracy:.3%} < 99.5%")
        if r.sure_precision < 0.995:
            out.append(f"{name}: certain/high precision {r.sure_precision:.3%} < 99.5%")
        if r.unsure_without_candidates:
            out.append(f"{name}: {r.unsure_without_candidates} without their candidates")
        if r.hard_ambiguous != r.hard_alerts or not r.hard_alerts:
            out.append(f"{name}: hard case ambiguous {r.hard_ambiguous}/{r.hard_alerts}")
    return out


def run_all(root: Path, minutes: int, seed: int, scenarios: list[str]) -> list[Result]:
    results = []
    for scenario in scenarios:
        formats = ("mixed",) if scenario == "mixed-formats" else FORMATS
        for log_format in formats:
            world = build_world(root, scenario, log_format, minutes, seed)
            for with_context in (False, True):
                results.append(evaluate(world, scenario, log_format, with_context))
            shutil.rmtree(world)
    return results


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | format | context | conversations | right | TCP right | unknown "
        "| certain/high wrong | inbound verdicts right | undetermined | false exposed |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.scenario} | {r.log_format} | {'yes' if r.context else 'no'} "
            f"| {r.conversations:,} | {r.accuracy:.3%} | {r.tcp_accuracy:.3%} | {r.unknown:,} "
            f"| {r.sure_wrong:,} of {r.sure:,} ({r.sure_error:.3%}) "
            f"| {r.verdicts_right}/{r.addresses} | {r.verdicts_undetermined} | {r.false_exposed} |"
        )
    return "\n".join(lines)


def _count_table(
    name: str, counted: str, wrong: str, tallies: list[dict[str, list[int]]]
) -> list[str]:
    """Tallies (key -> [n, wrong]) of several runs summed, as a Markdown table."""
    total: dict[str, list[int]] = {}
    for tally in tallies:
        for key, (n, bad) in tally.items():
            entry = total.setdefault(key, [0, 0])
            entry[0] += n
            entry[1] += bad
    rows = [f"| {k} | {n:,} | {w:,} |" for k, (n, w) in sorted(total.items())]
    return [f"| {name} | {counted} | {wrong} |", "| --- | ---: | ---: |", *rows]


def by_evidence(results: list[Result]) -> str:
    lines = _count_table("deciding evidence (strongest code)", "conversations", "wrong",
                         [r.by_class for r in results])  # fmt: skip
    lines += ["", *_count_table("confidence", "conversations", "wrong (unknown: not answered)",
                                [r.by_confidence for r in results])]  # fmt: skip
    return "\n".join(lines)


def calibration(results: list[Result]) -> str:
    """Per shape family and confidence, without and with context (both formats summed):
    conversations answered and the share whose initiator was right; then per family the
    inbound verdicts."""
    sides = (False, True)
    answers: dict[str, dict[bool, list[int]]] = {}
    verdicts: dict[str, dict[bool, list[int]]] = {}
    for r in results:
        for key, (n, bad) in r.by_family_confidence.items():
            entry = answers.setdefault(key, {c: [0, 0] for c in sides})[r.context]
            entry[0] += n
            entry[1] += bad
        for family, tally in r.verdicts_by_family.items():
            entry = verdicts.setdefault(family, {c: [0, 0, 0, 0] for c in sides})[r.context]
            for k in range(4):
                entry[k] += tally[k]

    def share(n: int, bad: int) -> str:
        return f"{n:,} ({(n - bad) / n:.2%})" if n else "-"

    lines = [
        "| family | confidence | no context: answers (right) | context: answers (right) |",
        "| --- | --- | ---: | ---: |",
    ]
    order = {c: k for k, c in enumerate(("certain", "high", "medium", "low", "unknown"))}
    for key in sorted(answers, key=lambda k: (k.split(" / ")[0], order.get(k.split(" / ")[1], 9))):
        family, confidence = key.split(" / ")
        cells = " | ".join(share(*answers[key][c]) for c in sides)
        lines.append(f"| {family} | {confidence} | {cells} |")
    lines += [
        "",
        "| family | no context: addresses, right, undetermined, wrong "
        "| context: addresses, right, undetermined, wrong |",
        "| --- | ---: | ---: |",
    ]
    for family in sorted(verdicts):
        cells = " | ".join("{:,}, {:,}, {:,}, {:,}".format(*verdicts[family][c]) for c in sides)
        lines.append(f"| {family} | {cells} |")
    return "\n".join(lines)


def failures(results: list[Result]) -> list[str]:
    """The targets of issue 4 that do not hold."""
    out = []
    for r in results:
        name = f"{r.scenario}/{r.log_format}/{'context' if r.context else 'no context'}"
        # aws-shapes holds shapes no flow log decides (a ping answered, UDP between two
        # service ports): there the calibration targets below apply, not issue 4's shares.
        shares = r.scenario != "aws-shapes"
        if shares and r.log_format != "default" and r.tcp_accuracy < 0.999:
            out.append(f"{name}: TCP conversations right {r.tcp_accuracy:.4%} < 99.9%")
        if shares and r.accuracy < 0.98:
            out.append(f"{name}: conversations right {r.accuracy:.4%} < 98%")
        if r.verdict_errors:
            out.append(f"{name}: inbound verdicts {r.verdict_errors[:3]}")
        if r.false_exposed:
            out.append(f"{name}: {r.false_exposed} false exposed verdicts")
        if r.sure_error >= 0.001:
            out.append(f"{name}: certain/high wrong {r.sure_error:.4%}")
        if r.unmatched_records:
            out.append(f"{name}: {r.unmatched_records} records not found in the truth")
        for key, (n, bad) in sorted(r.by_family_confidence.items()):
            confidence = key.split(" / ")[1]
            if confidence in ("certain", "high") and bad / n >= 0.001:
                out.append(f"{name}: {key} wrong {bad}/{n}")
            if confidence == "medium" and n >= 20 and bad / n > 0.05:
                out.append(f"{name}: {key} right {(n - bad) / n:.1%} < 95%")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--record-results", action="store_true")
    parser.add_argument("--attribution-only", action="store_true",
                        help="only the firewall alert attribution (issue 5)")  # fmt: skip
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="natlens-accuracy-"))
    try:
        results = (
            []
            if args.attribution_only
            else run_all(root, args.minutes, args.seed, args.scenario or list(SCENARIOS))
        )
        attributions = run_attribution(root, args.minutes, args.seed)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report = (
        table(results) + "\n\n" + by_evidence(results) + "\n\n" + calibration(results) + "\n\n"
        if results
        else ""
    )
    report += (
        f"Alert attribution, fw-after-nat at {ATTRIBUTION_RECORDS:,} records per hour:\n\n"
        + attribution_table(attributions)
    )
    print(report)
    problems = failures(results) + attribution_failures(attributions)
    for problem in problems:
        print("TARGET MISSED:", problem)
    if args.record_results:
        _record(report, args.minutes, args.seed, args.attribution_only)
    sys.exit(1 if problems else 0)


def _record(report: str, minutes: int, seed: int, attribution_only: bool) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from ingest_benchmark import append_results

    append_results(
        "Accuracy: initiators, inbound verdicts, alert attribution",
        f"python benchmarks/accuracy.py --minutes {minutes} --seed {seed}"
        + (" --attribution-only" if attribution_only else ""),
        "\n\n" + report,
    )


if __name__ == "__main__":
    main()
