"""The explain report as text for a terminal."""

from __future__ import annotations

import io

from natlens.analyses.explain import Explanation
from natlens.render.registry import render
from natlens.render.terminal import Writer


def write_text(report: Explanation, out: Writer) -> None:
    title = f"{report.address}: {report.verdict or 'no inbound verdict'}"
    out.write(f"{title}\n{'=' * len(title)}\n\n{report.sentence}\n")
    if report.recommendation:
        out.write(f"\nWhat to do: {report.recommendation}\n")
    shown = report.conversations.num_rows
    out.write(f"\nConversations ({shown} of {report.conversation_count})\n{'-' * 13}\n")
    render(report.conversations, "table", out)
    out.write(f"\nKey records (first {report.records.num_rows})\n{'-' * 11}\n")
    render(report.records, "table", out)
    out.write("\nConfirm it with CloudWatch Logs Insights\n" + "-" * 40 + "\n")
    for purpose, query in report.queries:
        out.write(f"\n# {purpose}\n{query}\n")
    for note in report.notes:
        out.write(f"\nnote: {note}\n")


def as_text(report: Explanation) -> str:
    buffer = io.StringIO()
    write_text(report, buffer)
    return buffer.getvalue()
