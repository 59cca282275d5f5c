"""The report as one self-contained HTML page: jinja2 with autoescape for every value (they come
from logs and context files), the charts as SVG, the page's own style and script inline and
allowed by their hashes in a Content-Security-Policy that allows nothing else: no network
request, no other script, no plugin, no form."""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from natlens.analyses.conversations import ConversationOptions
from natlens.case import Case
from natlens.engine import Engine
from natlens.report import charts
from natlens.report.data import Limits, ReportData, gather

WIDE = 480  # a chart with the section to itself


def _asset(name: str) -> str:
    return resources.files("natlens.report").joinpath("assets", name).read_text("utf-8")


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def csp(css: str, js: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            f"style-src {_digest(css)}",
            f"script-src {_digest(js)}",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def cell(value: object) -> str:
    """A table cell's text: lists joined, maps as JSON, NULL as '-'."""
    if value is None:
        return "-"
    if isinstance(value, list):
        if value and isinstance(value[0], tuple):
            return json.dumps(dict(value), separators=(",", ":"))
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def few(values: list[Any] | None, shown: int = 3) -> str:
    """A list cut to its first few, with how many more: a table cell stays readable."""
    values = list(values or [])
    if not values:
        return "-"
    text = ", ".join(map(str, values[:shown]))
    return text + (f" (+{len(values) - shown} more)" if len(values) > shown else "")


def _charts(data: ReportData) -> dict[str, Markup | None]:
    inbound = data.inbound
    out: dict[str, Markup | None] = {
        "verdicts": None,
        "timeline": None,
        "scanners": None,
        "ports": None,
        "alerts": None,
        "gaps": None,
    }
    if inbound["total"]:
        out["verdicts"] = Markup(charts.verdict_counts(inbound["counts"]))
    if inbound["timeline"]["rows"]:
        out["timeline"] = Markup(
            charts.timeline(inbound["timeline"]["rows"], inbound["timeline"]["bucket_seconds"])
        )
    if inbound["scanners"]:
        values = [{"address": r["address"], "conversations": r["unsolicited"]}
                  for r in inbound["scanners"]]  # fmt: skip
        out["scanners"] = Markup(
            charts.horizontal_bars(
                values, "address", "conversations", "unsolicited conversations", "#f9a825"
            )
        )
    if inbound["ports"]:
        values = [
            {"port": str(p["port"]) if p["port"] else "no port (ICMP…)", "addresses": n}
            for p, n in ((p, p["addresses"]) for p in inbound["ports"])
        ]
        out["ports"] = Markup(
            charts.horizontal_bars(values, "port", "addresses", "internet addresses", "#ef6c00")
        )
    if data.alerts and data.alerts["per_instance"]:
        out["alerts"] = Markup(
            charts.horizontal_bars(
                data.alerts["per_instance"], "instance", "alerts", "alerts", "#c62828", WIDE
            )
        )
    if data.coverage["gaps"]:
        out["gaps"] = Markup(
            charts.gaps(data.coverage["gaps"], data.meta["first"], data.meta["last"])
        )
    return out


def _diagrams(topology: dict[str, Any] | None) -> dict[str, list[Markup]]:
    out: dict[str, list[Markup]] = {}
    for v, vpc in enumerate((topology or {}).get("vpcs", [])):
        for f, finding in enumerate(vpc["findings"]):
            key = f"{v}-{f}"
            finding["key"] = key
            out[key] = [
                Markup(charts.path_diagram(d["before"]["egress"], (d["after"] or {}).get("egress")))
                for d in finding.get("diagrams", [])
            ]
    return out


def _topology_answer(topology: dict[str, Any] | None) -> str | None:
    from natlens.render.topology import answer

    return answer(topology) if topology else None


def render(data: ReportData, case_arg: str, context_arg: str | None) -> str:
    css, js = _asset("report.css"), _asset("report.js")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(_asset("report.html.j2"))
    case_q = shlex.quote(case_arg)
    context = f" --context {shlex.quote(context_arg)}" if context_arg else ""
    commands = {
        "inbound": f"natlens inbound {case_q}{context} --format csv",
        "attribute": f"natlens attribute {case_q}{context} --log-type alert --format csv",
        "talkers": f"natlens nat {case_q}{context} --top-talkers --by connections",
        "ingest_firewall": f"natlens ingest s3://BUCKET/AWSLogs/ACCOUNT/network-firewall/ "
        f"--case {case_q}",
    }
    alerts = data.alerts
    return template.render(
        csp=csp(css, js),
        css=Markup(css),
        js=Markup(js),
        meta=data.meta,
        answers={
            "inbound": data.inbound["answer"],
            "alerts": _alerts_answer(alerts),
            "topology": _topology_answer(data.topology),
        },
        inbound=data.inbound,
        alerts=alerts,
        nat_flows=[{**f, "svg": Markup(f["svg"])} for f in charts.nat_flows(data.talkers)],
        topology=data.topology,
        diagrams=_diagrams(data.topology),
        coverage=data.coverage,
        explanations=data.explanations,
        explained={e["address"]: e["anchor"] for e in data.explanations},
        charts=_charts(data),
        commands=commands,
        limits=data.limits,
        cell=cell,
        few=few,
    )


def _alerts_answer(alerts: dict[str, Any] | None) -> str:
    if alerts is None:
        return "The case holds no Network Firewall logs: ingest them to name the instances."
    if alerts.get("blocked"):
        return "The case holds firewall events but no flow logs to name the instances from."
    return str(alerts["answer"])


def build_report(
    engine: Engine,
    case: Case,
    options: ConversationOptions,
    case_arg: str,
    context_arg: str | None = None,
    limits: Limits | None = None,
) -> tuple[ReportData, str]:
    """The report's data and its page. ``case_arg`` and ``context_arg`` are what the user typed:
    the page's commands repeat them."""
    data = gather(engine, case, options, options.context, limits)
    data.meta["case"] = case_arg  # what the user named (sources are read into a temporary case)
    return data, render(data, case_arg, context_arg)
