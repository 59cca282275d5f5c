"""The topology report as terminal text, Markdown (with Mermaid diagrams) or JSON. Renderers
draw the report's plain data (natlens.topology.report.to_json); they never look at the VPC."""

from __future__ import annotations

import itertools
import json
import re
import textwrap
from typing import Any

from natlens.render.terminal import Writer, visible
from natlens.schema import JSON_SCHEMA_VERSION
from natlens.vocabulary import Target

ARROW = "→"


def _hop(hop: dict[str, Any], first: bool) -> str:
    label: str = hop["id"] or hop["kind"]
    if hop["kind"] in (Target.BLACKHOLE, Target.NO_ROUTE, Target.LOOP):
        label = f"{hop['kind'].upper()}{' ' + hop['id'] if hop['id'] else ''}"
    if hop.get("az") and hop["kind"] in (Target.NAT_GATEWAY, Target.FIREWALL_ENDPOINT):
        label += f" ({hop['az']})"
    if first or not hop.get("route_table"):
        return label
    main = " main" if hop.get("main") else ""
    return f"─[{hop['route_table']}{main} {hop.get('route', '')}]{ARROW} {label}"


def path_text(hops: list[dict[str, Any]]) -> str:
    parts = [_hop(h, i == 0) for i, h in enumerate(hops)]
    return " ".join(
        p if p.startswith("─") or i == 0 else f"{ARROW} {p}" for i, p in enumerate(parts)
    )


def short_path(hops: list[dict[str, Any]]) -> str:
    return f" {ARROW} ".join(h["id"] or h["kind"] for h in hops)


def _counts(summary: dict[str, Any]) -> str:
    return ", ".join(f"{n} {s}" for s, n in summary["by_severity"].items()) or "none"


def _layout_subnets(layout: dict[str, Any]) -> str:
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in layout["subnets"].items())


def _plan_outcome(after: dict[str, Any]) -> str:
    return (f"fixed {', '.join(after['fixed']) or 'nothing'}; "
            f"left {', '.join(after['findings']) or 'nothing'}")  # fmt: skip


def _deep(value: Any, escape: Any, keep: frozenset[str] = frozenset()) -> Any:
    """Every string in the report's data through ``escape``, except under the keys in
    ``keep``."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, list):
        return [_deep(v, escape, keep) for v in value]
    if isinstance(value, dict):
        return {k: v if k in keep else _deep(v, escape, keep) for k, v in value.items()}
    return value


def answer(data: dict[str, Any]) -> str:
    """Where the firewall sits, in a paragraph: each VPC's layouts, what they mean for the
    firewall's alerts, and what the plan fixes."""
    parts = []
    for vpc in data["vpcs"]:
        layouts: dict[str, list[str]] = {}
        for row in vpc["layouts"]:
            layouts.setdefault(row["layout"], []).append(row["availability_zone"] or "?")
        where = "; ".join(f"{', '.join(azs)}: {layout}" for layout, azs in layouts.items())
        text = f"{vpc['vpc_id']}: {where or 'no subnet reaches the internet'}"
        if "firewall-after-nat" in layouts:
            text += (
                " (the firewall sits after the NAT gateway: its alerts name the NAT gateway's "
                "address, never the instance's)"
            )
        ids = sorted({f["id"] for f in vpc["findings"]})
        if ids:
            fixed = (vpc.get("after") or {}).get("fixed") or []
            text += f"; {len(ids)} kind(s) of finding: {', '.join(ids)}"
            if vpc["plan"]:
                text += (
                    f"; {len(vpc['plan'])} route change(s) below fix "
                    f"{', '.join(fixed) if fixed else 'none of them'}"
                )
        else:
            text += "; no finding"
        parts.append(text)
    return ". ".join(parts) + "." if parts else "No VPC in the context."


def write_text(data: dict[str, Any], out: Writer) -> None:
    # Ids, names and tags come from the context files: shown, never obeyed by the terminal.
    data = _deep(data, visible)
    summary = data["summary"]
    counts = _counts(summary)
    out.write(f"natlens topology: {summary['vpcs']} VPC(s), {summary['findings']} finding(s) "
              f"({counts})\n")  # fmt: skip
    out.write(_wrap(answer(data), "") + "\n")
    for missing in data["context"]["missing"]:
        out.write(f"  without {missing['file']}: natlens cannot tell {missing['without_it']}\n")
    for problem in data["context"]["problems"]:
        out.write(f"  context problem: {problem}\n")
    for vpc in data["vpcs"]:
        _vpc_text(vpc, out)


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(
        text, 100, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    )


def _vpc_text(vpc: dict[str, Any], out: Writer) -> None:
    firewalls = ", ".join(vpc["firewalls"]) or (
        "endpoints only" if vpc["firewall_endpoints"] else "none"
    )
    out.write(f"\nVPC {vpc['vpc_id']} ({', '.join(vpc['cidrs']) or 'CIDR unknown'}); internet "
              f"gateway {', '.join(vpc['internet_gateways']) or 'none'}; "
              f"firewall {firewalls}\n")  # fmt: skip
    out.write("\nLayout per AZ (how the workload subnets reach 0.0.0.0/0)\n")
    for layout in vpc["layouts"]:
        subnets = _layout_subnets(layout)
        out.write(f"  {layout['availability_zone'] or '-':<12} {layout['layout']:<20} {subnets}\n")
    out.write("\nPaths (out: the subnet's traffic; back: the replies)\n")
    for path in vpc["paths"]:
        if path["outcome"] in ("no-ipv6",):
            continue
        symmetric = "symmetric" if path["symmetric"] else "ASYMMETRIC"
        out.write(f"  {path['subnet_id']} ({path['role']}, {path['availability_zone']}) to "
                  f"{path['destination']}: {path['layout']}, {symmetric}, firewall sees "
                  f"{path['firewall_sees']}\n")  # fmt: skip
        out.write(f"    out   {path_text(path['egress'])}\n")
        if path["return"]:
            out.write(f"    back  {path_text(path['return'])}\n")
    out.write("\nFindings\n" if vpc["findings"] else "\nFindings: none\n")
    for finding in vpc["findings"]:
        az = f" [{finding['availability_zone']}]" if finding["availability_zone"] else ""
        out.write(f"  {finding['severity'].upper()} {finding['id']}{az}: {finding['title']}\n")
        out.write(_wrap(finding["message"], "    ") + "\n")
        remedy = finding["remediation"]
        for number, command in enumerate(remedy["commands"], 1):
            out.write(f"    {number}. {command['command']}\n       # {command['why']}\n")
        for note in remedy["notes"]:
            out.write(_wrap(f"note: {note}", "    ") + "\n")
        if remedy["after"] and remedy["commands"]:
            out.write(_wrap(f"afterwards: {remedy['after']}", "    ") + "\n")
    if vpc["plan"]:
        after = vpc["after"]
        out.write(f"\nPlan: all the changes, in order ({len(vpc['plan'])} commands). natlens "
                  "applied them to its model and traced again: ")  # fmt: skip
        out.write(_plan_outcome(after) + ".\n")
        for number, step in enumerate(vpc["plan"], 1):
            out.write(f"  {number:>2}. {step['command']}\n")
        out.write("\nBefore and after\n")
        for label in ("before", "after"):
            for path in vpc["diagram"][label]:
                out.write(
                    f"  {label:<6} {path['availability_zone']}: out  {short_path(path['egress'])}\n"
                )
                if path["return"]:
                    out.write(
                        f"  {'':<6} {path['availability_zone']}: back "
                        f"{short_path(path['return'])}\n"
                    )


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#!~])")
_PLAIN_ID = re.compile(r"[A-Za-z0-9._:/-]+")


def md(text: str) -> str:
    """Text from the context for Markdown: shown as written, never read as Markdown or HTML
    (emphasis, links, images, tables, inline HTML such as <script> or <img onerror>)."""
    text = visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def code(escaped: str) -> str:
    """An id (already through ``md``) in a code span when it is a plain id; as escaped text
    otherwise (a backtick in it would end the span). ``md`` leaves a plain id as it is and puts
    a backslash or an entity into any other, so the test holds on the escaped text."""
    return f"`{escaped}`" if _PLAIN_ID.fullmatch(escaped) else escaped


def write_markdown(data: dict[str, Any], out: Writer) -> None:
    # Every string but the shell commands and their '# why' lines (quoted word by word, one
    # line each, shown in code blocks) is escaped here once; the Mermaid diagram escapes its
    # labels itself, from the raw data.
    data = _deep(data, md, keep=frozenset({"command", "why", "diagram"}))
    summary = data["summary"]
    counts = _counts(summary)
    out.write(f"# natlens topology\n\n{summary['vpcs']} VPC(s), {summary['findings']} finding(s): "
              f"{counts}.\n")  # fmt: skip
    for missing in data["context"]["missing"]:
        out.write(f"\n> Without {missing['file']} natlens cannot tell {missing['without_it']}.\n")
    for vpc in data["vpcs"]:
        out.write(f"\n## VPC {code(vpc['vpc_id'])}\n\n| AZ | layout | subnets |\n"
                  "| --- | --- | --- |\n")  # fmt: skip
        for layout in vpc["layouts"]:
            subnets = _layout_subnets(layout)
            out.write(f"| {layout['availability_zone']} | {layout['layout']} | {subnets} |\n")
        out.write("\n### Findings\n\n" + ("" if vpc["findings"] else "None.\n"))
        for finding in vpc["findings"]:
            az = f" ({finding['availability_zone']})" if finding["availability_zone"] else ""
            out.write(
                f"#### {code(finding['id'])} — {finding['severity']}{az}\n\n"
                f"{finding['message']}\n\n"
            )
            resources = ", ".join(code(r) for r in finding["resources"])
            out.write(f"Resources: {resources}\n\n")
            remedy = finding["remediation"]
            if remedy["commands"]:
                out.write("```sh\n")
                for command in remedy["commands"]:
                    out.write(f"# {command['why']}\n{command['command']}\n")
                out.write("```\n\n")
            for note in remedy["notes"]:
                out.write(f"- {note}\n")
            if remedy["after"] and remedy["commands"]:
                out.write(f"\nAfterwards: {remedy['after']}\n\n")
        if vpc["plan"]:
            after = vpc["after"]
            out.write("### Plan\n\nnatlens applied these commands to its model and traced again: "
                      f"{_plan_outcome(after)}.\n\n```sh\n")  # fmt: skip
            out.write("".join(f"{s['command']}\n" for s in vpc["plan"]) + "```\n\n")
        out.write("### Paths, before and after\n\n")
        out.write(mermaid(vpc["diagram"]["before"], vpc["diagram"]["after"]))


def _node(hop: dict[str, Any]) -> str:
    identity = hop["id"] or hop["kind"]
    key = re.sub(r"[^A-Za-z0-9_]", "_", f"{hop['kind']}_{identity}")
    label = identity if hop["kind"] not in (Target.BLACKHOLE, Target.NO_ROUTE) else hop["kind"]
    return f'{key}["{mermaid_text(label)}"]'


def mermaid_text(text: str) -> str:
    """A Mermaid label: every character but letters, digits and ``._:/- `` as an entity code
    (``#34;``), so a label cannot end itself, start a new statement (``click``) or carry HTML."""
    return "".join(
        c if (c.isascii() and c.isalnum()) or c in "._:/- " else f"#{ord(c)};" for c in text
    )


def mermaid(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    """A Mermaid flowchart: traffic out as solid arrows, replies dashed, before and after side
    by side."""
    lines = ["```mermaid", "flowchart LR"]
    for label, paths in (("before", before), ("after", after)):
        if not paths:
            continue
        lines.append(f"  subgraph {label}")
        for path in paths:
            for arrow, hops in (("-->", path["egress"]), ("-.->", path["return"] or [])):
                for a, b in itertools.pairwise(hops):
                    left = _node(a).replace('["', f'_{label}["', 1)
                    right = _node(b).replace('["', f'_{label}["', 1)
                    lines.append(f"    {left} {arrow} {right}")
        lines.append("  end")
    lines.append("```\n")
    return "\n".join(lines)


def render(data: dict[str, Any], fmt: str, out: Writer) -> None:
    if fmt == "json":
        json.dump({"schema_version": JSON_SCHEMA_VERSION, **data}, out, indent=2)
        out.write("\n")
    elif fmt == "markdown":
        write_markdown(data, out)
    else:
        write_text(data, out)
