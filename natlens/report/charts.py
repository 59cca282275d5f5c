"""The report's charts: Vega-Lite specifications built with altair, rendered to SVG offline by
vl-convert (no script in the page draws them). Their text comes from logs and context files: the
SVG is checked to hold nothing a browser would run before it goes into the page."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import altair as alt

from natlens.errors import InternalError

# One colour per verdict and cause, everywhere in the page (and in its CSS).
COLOURS = {
    "exposed": "#c62828",
    "mixed": "#ef6c00",
    "unsolicited": "#f9a825",
    "undetermined": "#6a1b9a",
    "response": "#2e7d32",
    "NODATA": "#90a4ae",
    "SKIPDATA": "#c62828",
}
KIND_COLOURS = {
    "subnet": "#546e7a",
    "nat-gateway": "#1565c0",
    "firewall-endpoint": "#c62828",
    "internet-gateway": "#2e7d32",
    "transit-gateway": "#6a1b9a",
}
WIDTH = 560
COUNT_AXIS = alt.Axis(format="~s", tickMinStep=1, tickCount=5)
FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"


def _count_axis(values: list[dict[str, Any]], amount: str) -> alt.Axis:
    """Whole numbers only: small counts get one tick per unit, not 0.5 steps."""
    top = max((int(v[amount] or 0) for v in values), default=0)
    if top <= 10:
        return alt.Axis(values=list(range(top + 1)), format="d")
    return COUNT_AXIS


def _data(values: list[dict[str, Any]]) -> Any:
    return alt.Data(values=values)  # type: ignore[no-untyped-call]


def _scale(domain: list[str]) -> alt.Scale:
    return alt.Scale(domain=domain, range=[COLOURS.get(d, "#607d8b") for d in domain])


def _config(chart: Any) -> Any:
    return chart.configure(font=FONT, background="white").configure_view(stroke=None)


def verdict_counts(counts: list[dict[str, Any]]) -> str:
    values = [c for c in counts if c["addresses"]]
    domain = [c["verdict"] for c in values]
    chart = (
        alt.Chart(_data(values), width=300, height=30 * max(len(values), 1))
        .mark_bar()
        .encode(
            y=alt.Y("verdict:N", sort=domain, title=None),
            x=alt.X(
                "addresses:Q", title="internet addresses", axis=_count_axis(values, "addresses")
            ),
            color=alt.Color("verdict:N", scale=_scale(domain), legend=None),
        )
    )
    text = chart.mark_text(align="left", dx=3).encode(text="addresses:Q", color=alt.value("#000"))
    return svg(_config(chart + text))


def timeline(rows: list[dict[str, Any]], bucket_seconds: int) -> str:
    """Inbound packets per time bucket, one panel per NAT gateway (and one for instances),
    stacked by cause."""
    domain = [c for c in ("exposed", "unsolicited", "undetermined", "response")
              if any(r["cause"] == c for r in rows)]  # fmt: skip
    values = [{"target": r["target"], "from": r["time"], "to": r["end"], "cause": r["cause"],
               "packets": r["packets"]} for r in rows]  # fmt: skip
    days = (max(r["bucket"] for r in rows) - min(r["bucket"] for r in rows)) / 86400
    axis = alt.Axis(format="%H:%M" if days < 1 else "%m-%d %H:%M", labelOverlap=True)
    chart = (
        alt.Chart(_data(values), width=WIDTH, height=110)
        .mark_bar()
        .encode(
            x=alt.X("from:T", title=f"UTC, per {_duration(bucket_seconds)}",
                    scale=alt.Scale(type="utc"), axis=axis),
            x2="to:T",
            y=alt.Y("sum(packets):Q", title="packets in"),
            color=alt.Color(
                "cause:N", scale=_scale(domain), sort=domain,
                legend=alt.Legend(title="verdict", orient="top"),
            ),
            order=alt.Order("cause:N"),
        )
        .facet(row=alt.Row("target:N", title=None,
                           header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=200)))
        .resolve_scale(y="independent")
    )  # fmt: skip
    return svg(_config(chart))


def horizontal_bars(
    values: list[dict[str, Any]],
    label: str,
    amount: str,
    title: str,
    colour: str,
    width: int = 240,
) -> str:
    order = [v[label] for v in values]
    chart = (
        alt.Chart(_data(values), width=width, height=20 * max(len(values), 1))
        .mark_bar(color=colour)
        .encode(
            y=alt.Y(f"{_field(label)}:N", sort=order, title=None, axis=alt.Axis(labelLimit=220)),
            x=alt.X(f"{_field(amount)}:Q", title=title, axis=_count_axis(values, amount)),
        )
    )
    text = chart.mark_text(align="left", dx=3, color="#000").encode(text=f"{_field(amount)}:Q")
    return svg(_config(chart + text))


def nat_flows(talkers: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Per NAT gateway: the instances sending through it (left) and the destinations it sent
    their traffic to (right), in bytes: instance → NAT gateway → destination."""
    out = []
    gateways = list(dict.fromkeys(r["nat_address"] for r in talkers))
    for nat_address in gateways:
        rows = [r for r in talkers if r["nat_address"] == nat_address]
        name = rows[0]["nat_gateway"] or nat_address
        instances = [
            {"who": r["instance_id"] or r["address"], "bytes": r["bytes"]}
            for r in rows
            if r["side"] == "instance"
        ]
        destinations = [
            {"who": r["address"], "bytes": r["bytes"]} for r in rows if r["side"] == "destination"
        ]
        left = _bars(instances, f"instances → {name}", "#1565c0")
        right = _bars(destinations, f"{name} → destinations", "#2e7d32")
        out.append(
            {"nat_gateway": name, "nat_address": nat_address,
             "svg": svg(_config(alt.hconcat(left, right, spacing=40)))}
        )  # fmt: skip
    return out


def _bars(values: list[dict[str, Any]], title: str, colour: str) -> Any:
    order = [v["who"] for v in values]
    return (
        alt.Chart(
            _data(values),
            width=220,
            height=20 * max(len(values), 1),
            title=alt.Title(title, anchor="start", fontSize=12),
        )
        .mark_bar(color=colour)
        .encode(
            y=alt.Y("who:N", sort=order, title=None, axis=alt.Axis(labelLimit=180)),
            x=alt.X("bytes:Q", title="bytes", axis=alt.Axis(format="~s")),
        )
    )


def path_diagram(before: list[dict[str, Any]], after: list[dict[str, Any]] | None) -> str:
    """A traced path before and after the plan: one row each, a mark per hop, coloured by its
    kind, joined by a line."""
    values = []
    for row, hops in (("before", before), ("after the plan", after or [])):
        for step, hop in enumerate(hops):
            values.append(
                {"row": row, "step": step, "kind": hop["kind"],
                 "label": hop.get("id") or hop["kind"]}
            )  # fmt: skip
    kinds = list(dict.fromkeys(v["kind"] for v in values))
    scale = alt.Scale(domain=kinds, range=[KIND_COLOURS.get(k, "#607d8b") for k in kinds])
    steps = max((v["step"] for v in values), default=0) + 1
    base = alt.Chart(_data(values), width=max(180 * steps, 300), height=110)
    y = alt.Y("row:N", sort=["before", "after the plan"], title=None,
              axis=alt.Axis(labelFontWeight="bold", domain=False, ticks=False))  # fmt: skip
    x = alt.X("step:O", axis=None, scale=alt.Scale(paddingOuter=0.3))
    line = base.mark_line(color="#9e9e9e", strokeWidth=2).encode(x=x, y=y, detail="row:N")
    marks = base.mark_square(size=260, opacity=1).encode(
        x=x, y=y, color=alt.Color("kind:N", scale=scale, legend=alt.Legend(orient="bottom",
                                                                              title=None))
    )  # fmt: skip
    labels = base.mark_text(dy=-16, fontSize=10, limit=175).encode(x=x, y=y, text="label:N")
    return svg(_config(alt.layer(line, marks, labels)))


def gaps(rows: list[dict[str, Any]], first: str, last: str) -> str:
    """NODATA/SKIPDATA windows per interface, over the logs' whole time range."""
    values = [{"interface": r["interface_id"] or "-", "status": r["log_status"],
               "from": r["from"], "to": r["to"]} for r in rows]  # fmt: skip
    interfaces = len({v["interface"] for v in values})
    domain = [s for s in ("SKIPDATA", "NODATA") if any(v["status"] == s for v in values)]
    chart = (
        alt.Chart(_data(values), width=WIDTH - 120, height=18 * max(interfaces, 1))
        .mark_bar()
        .encode(
            y=alt.Y("interface:N", title=None),
            x=alt.X("from:T", title="UTC", scale=alt.Scale(type="utc", domain=[first, last]),
                    axis=alt.Axis(format="%m-%d %H:%M", labelOverlap=True)),
            x2="to:T",
            color=alt.Color("status:N", scale=_scale(domain),
                            legend=alt.Legend(orient="top", title=None)),
        )
    )  # fmt: skip
    return svg(_config(chart))


def _field(name: str) -> str:
    return name.replace(".", "\\.")


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day(s)"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hour(s)"
    return f"{seconds // 60} minute(s)"


# SVG that may go into the page: drawing elements only.
_FORBIDDEN = {"script", "foreignobject", "iframe", "object", "embed", "use", "image", "a"}


def svg(chart: Any) -> str:
    import vl_convert

    text: str = vl_convert.vegalite_to_svg(chart.to_dict())
    check_svg(text)
    return text


def check_svg(text: str) -> None:
    """Raise unless ``text`` is SVG with no element or attribute that could run or load
    anything: the page's Content-Security-Policy would block it, but it must not be there."""
    root = ET.fromstring(text)
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1].lower()
        if tag in _FORBIDDEN:
            raise InternalError(f"chart SVG holds a <{tag}> element")
        for name, value in element.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on") or local in ("href", "style"):
                raise InternalError(f"chart SVG holds a {local} attribute")
            if "javascript:" in value.lower().replace(" ", "") and local != "aria-label":
                raise InternalError("chart SVG holds a javascript: URL")
