"""natlens report: the page answers both questions as the analyses and the simulator's truth do,
holds everything it needs (no network), escapes every string from logs and context, and works in
a real browser (Debian's chromium through playwright): charts drawn, tables filtered and sorted,
addresses linked to their explanations, hostile payloads inert."""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from natlens.report.charts import check_svg
from natlens.report.html import csp

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "build" / "test-artifacts"
SCREENSHOT = ROOT / "docs" / "images" / "report.png"
CHROMIUM = "/usr/bin/chromium"

# Each one would run script if the page put it in as markup or as a URL.
PAYLOADS = (
    "<script>window.__xss = 1</script>",
    '"><img src=x onerror="window.__xss = 2">',
    "javascript:window.__xss = 3",
    "'><svg onload=window.__xss=4>",
)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


@pytest.fixture(scope="module")
def worlds(v5_worlds, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The shared worlds, each report written beside its own copy of the case."""
    import shutil

    root = tmp_path_factory.mktemp("report")
    out = {}
    for scenario, world in v5_worlds.items():
        out[scenario] = root / scenario
        out[scenario].mkdir()
        for name in ("context", "truth", "firewall", "flowlogs"):
            (out[scenario] / name).symlink_to(world / name)
        shutil.copytree(world / "case", out[scenario] / "case")
    return out


@pytest.fixture(scope="module")
def reports(worlds):  # type: ignore[no-untyped-def]
    from tests.conftest import run_cli

    out = {}
    for scenario, world in worlds.items():
        page = world / "report.html"
        run = run_cli("report", world / "case", "--context", world / "context", "--output", page)
        assert run.code == 0, run.err
        out[scenario] = (page.read_text(), run)
    return out


def _hostile(world: Path, target: Path) -> None:
    """``world``'s logs and context with a payload in every string a person reads: alert
    signatures, TLS SNI, the firewall's name, subnet ids, instances' Name tags."""
    import shutil

    shutil.copytree(world / "flowlogs", target / "flowlogs")
    for path in (world / "firewall").rglob("*.log.gz"):
        lines = []
        for n, line in enumerate(gzip.decompress(path.read_bytes()).decode().splitlines()):
            event = json.loads(line)
            payload = PAYLOADS[n % len(PAYLOADS)]
            event["firewall_name"] = f"fw {payload}"
            inner = event["event"]
            if "alert" in inner:
                inner["alert"]["signature"] = f"sig {payload}"
            if "tls" in inner:
                inner["tls"]["sni"] = f"{payload}.example"
            if "sni" in inner:
                inner["sni"] = f"{payload}.example"
            lines.append(json.dumps(event))
        out = target / "firewall" / path.relative_to(world / "firewall")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    (target / "context").mkdir()
    for path in (world / "context").glob("*.json"):
        text = path.read_text()
        for n, found in enumerate(sorted(set(re.findall(r'"(subnet-[0-9a-f]+)"', text)))):
            text = text.replace(f'"{found}"', json.dumps(f"{found}{PAYLOADS[n % len(PAYLOADS)]}"))
        document = json.loads(text)
        for n, reservation in enumerate(document.get("Reservations", [])):
            for instance in reservation["Instances"]:  # their Name tags
                instance["Tags"] = [{"Key": "Name", "Value": f"web {PAYLOADS[n % len(PAYLOADS)]}"}]
        (target / "context" / path.name).write_text(json.dumps(document))


@pytest.fixture(scope="module")
def hostile_report(worlds, tmp_path_factory):  # type: ignore[no-untyped-def]
    from tests.conftest import run_cli

    target = tmp_path_factory.mktemp("hostile")
    _hostile(worlds["fw-after-nat"], target)
    run = run_cli("ingest", target / "flowlogs", target / "firewall", "--case", target / "case")
    assert run.code == 0, run.err
    page = target / "report.html"
    run = run_cli("report", target / "case", "--context", target / "context", "--output", page)
    assert run.code == 0, run.err
    return page


# -- what the page says, against the analyses and the truth --------------------------------------


def test_exposures_lead_the_page_and_match_the_truth(worlds, reports) -> None:
    page, run = reports["exposed-instance"]
    truth = pq.read_table(worlds["exposed-instance"] / "truth" / "inbound.parquet").to_pylist()
    exposed = {r["address"] for r in truth if r["verdict"] == "exposed"}
    assert exposed, "the scenario exposes an instance"
    box = page[page.index('id="exposed"') : page.index('id="inbound"')]
    shown = set(re.findall(r'class="addr" href="#addr-[^"]+">([^<]+)</a>', box))
    # Nothing shown as exposed that is not; every real exposure shown.
    assert shown == exposed
    instances = {i for r in truth if r["verdict"] == "exposed" for i in r["instance_ids"]}
    assert all(i in box for i in instances)
    # The answer comes before any table, in the page and on the terminal.
    assert page.index('id="answer-inbound"') < page.index("<table")
    said = " ".join(run.out.split())  # wrapped to the terminal
    assert "opened connections to" in said and "an exposure to close" in said


def test_counts_match_the_inbound_command(worlds, reports, natlens) -> None:
    """The page's verdict table holds what `natlens inbound` says (another engine, another
    process, the case's derived tables removed first)."""
    from tests.conftest import fresh_copy

    world = worlds["fw-after-nat"]
    copy = fresh_copy(world / "case", world / "copy")
    rows = natlens("inbound", copy, "--context", world / "context", "--format", "jsonl").jsonl()
    page, _ = reports["fw-after-nat"]
    for verdict in ("exposed", "mixed", "unsolicited", "undetermined", "response"):
        count = sum(1 for r in rows if r["verdict"] == verdict)
        cell = re.search(
            rf'<span class="tag v-{verdict}">{verdict}</span></td><td class="num">([\d,]+)</td>',
            page,
        )
        assert cell and int(cell.group(1).replace(",", "")) == count, verdict
    # every address is in the table, most urgent first
    table = page[page.index('id="table-inbound"') :]
    order = re.findall(r'<span class="tag v-(\w+)">', table[: table.index("</table>")])
    assert len(order) == len(rows)
    ranks = [
        ("exposed", "mixed", "unsolicited", "undetermined", "response").index(v) for v in order
    ]
    assert ranks == sorted(ranks)


def test_alerts_name_the_instances_the_truth_names(worlds, reports) -> None:
    world = worlds["fw-after-nat"]
    truth = [
        r
        for r in pq.read_table(world / "truth" / "firewall_events.parquet").to_pylist()
        if r["log_type"] == "alert"
    ]
    page, run = reports["fw-after-nat"]
    table = page[page.index('id="table-alerts"') :]
    table = table[: table.index("</table>")]
    rows = table.count("<tr>") - 1  # the header's
    assert rows == len(truth) > 0
    assert f"{len(truth)} alerts:" in run.out
    assert re.search(r"<td>i-[0-9a-f]+ \(app-[0-9a-f]+\)</td>", table)  # with its Name tag
    # each instance the page names for a certain alert is one the truth has behind an alert
    named = set(
        re.findall(r"<td>(i-[0-9a-f]+)(?: \([^<]*\))?</td>(?:(?!</tr>).)*c-certain", table, re.S)
    )
    assert named and named <= {r["source_instance_id"] for r in truth}


def test_topology_diagrams_and_commands(reports) -> None:
    page, _ = reports["fw-after-nat"]
    section = page[page.index('id="topology"') : page.index('id="coverage"')]
    assert "firewall-after-nat" in section and "mermaid" not in section.lower()
    assert section.count('class="chart path-diagram"') >= 2
    plan = re.search(r'<pre id="plan-1">(.*?)</pre>', section, re.S)
    assert plan and "aws ec2 replace-route" in plan.group(1)


def test_page_is_self_contained(reports) -> None:
    for page, _ in reports.values():
        found = tags(page)
        for tag, attrs in found:
            assert "src" not in attrs, (tag, attrs)
            href = attrs.get("href")
            assert href is None or href.startswith("#"), (tag, attrs)
        metas = [a for t, a in found if t == "meta" and a.get("http-equiv")]
        policy = metas[0]["content"] or ""
        assert policy.startswith("default-src 'none'")
        style = re.search(r"<style>(.*?)</style>", page, re.S)
        script = re.search(r"<script>(.*?)</script>", page, re.S)
        assert style and script and policy == csp(style.group(1), script.group(1))
        assert page.count("<script") == 1
        for svg in re.findall(r"<svg .*?</svg>", page, re.S):
            check_svg(svg)


def test_hostile_strings_are_text(hostile_report: Path) -> None:
    page = hostile_report.read_text()
    assert page.count("<script") == 1  # the page's own
    assert "<img" not in page and "<svg onload" not in page
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page
    assert "(web &lt;script&gt;" in page or "(web &#34;&gt;&lt;img" in page  # a Name tag
    assert not [a for t, a in tags(page) if any(k.startswith("on") for k in a)]


# -- in a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: make test installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Visit:
    """A page opened in the browser, with what it logged and asked for."""

    def __init__(self, browser, path: Path, width: int = 1280) -> None:  # type: ignore[no-untyped-def]
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.url = path.as_uri()
        self.page.goto(self.url)
        self.page.wait_for_load_state("load")

    def close(self) -> None:
        self.context.close()


def test_page_loads_clean_and_offline(browser, reports, worlds) -> None:
    for scenario in reports:
        visit = Visit(browser, worlds[scenario] / "report.html")
        try:
            assert visit.console == []
            assert visit.requests == [visit.url]
            charts = visit.page.locator(".chart svg")
            assert charts.count() >= 6
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box and box["width"] > 50 and box["height"] > 30
                assert charts.nth(i).locator("path, rect").count() > 3
        finally:
            visit.close()


def test_tables_filter_and_sort(browser, worlds, reports) -> None:
    visit = Visit(browser, worlds["fw-after-nat"] / "report.html")
    page = visit.page
    try:
        rows = page.locator("#table-alerts tbody tr")
        total = rows.count()
        assert total > 2
        first_signature = rows.nth(0).locator("td").nth(1).inner_text()
        page.fill("input[data-filter=table-alerts]", first_signature)
        visible = page.locator("#table-alerts tbody tr:not([hidden])")
        expected = sum(
            1
            for i in range(total)
            if first_signature in rows.nth(i).locator("td").nth(1).inner_text()
        )
        assert visible.count() == expected < total
        assert page.inner_text("#table-alerts-count") == f"{expected} of {total} rows"
        page.fill("input[data-filter=table-alerts]", "")
        assert visible.count() == total
        # sort the inbound table by packets in, both ways
        header = page.locator("#table-inbound thead th", has_text="packets in")
        header.click()
        cells = page.locator("#table-inbound tbody tr td:nth-child(4)")

        def packets() -> list[int]:
            return [int(c.replace(",", "")) for c in cells.all_inner_texts()]

        assert packets() == sorted(packets()) and len(set(packets())) > 1
        header.click()
        assert packets() == sorted(packets(), reverse=True)
        assert header.get_attribute("aria-sort") == "descending"
        # an address opens its explanation
        link = page.locator("#table-inbound a.addr").first
        target = (link.get_attribute("href") or "#")[1:]
        link.click()
        # (the page opens it on the hashchange event, which fires after the click returns)
        page.wait_for_selector(f"details#{target}[open]", timeout=5000)
        assert page.locator(f"details#{target}").get_attribute("open") is not None
        assert page.locator(f"details#{target} pre").count() >= 2  # its Logs Insights queries
        assert visit.console == []
    finally:
        visit.close()


def test_hostile_payloads_are_inert_in_the_browser(browser, hostile_report: Path) -> None:
    visit = Visit(browser, hostile_report)
    page = visit.page
    try:
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert visit.dialogs == [] and visit.console == []
        assert visit.requests == [visit.url]
        text = page.inner_text("body")
        for payload in PAYLOADS:
            assert payload in text or payload.replace(" ", "") in text.replace(" ", ""), payload
        # click everything a person would: sort headers, copy buttons, address links
        for header in page.locator("th.sort").all()[:12]:
            header.click()
        for link in page.locator("a.addr").all()[:5]:
            link.click()
        assert page.evaluate("typeof window.__xss") == "undefined" and visit.dialogs == []
        assert visit.console == []
    finally:
        visit.close()


def _png_width(path: Path) -> int:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int(struct.unpack(">I", head[16:20])[0])


def test_screenshots(browser, worlds, reports) -> None:
    """At 1280 and 390 px wide, kept as test artifacts; the README's is made from the same page
    when NATLENS_UPDATE_SCREENSHOTS=1."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        visit = Visit(browser, worlds["fw-after-nat"] / "report.html", width)
        try:
            # nothing wider than the window but what scrolls inside its own box
            overflow = visit.page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, overflow
            path = ARTIFACTS / f"report-{width}.png"
            visit.page.screenshot(path=str(path), full_page=True)
            assert _png_width(path) == width
            if width == 1280 and os.environ.get("NATLENS_UPDATE_SCREENSHOTS"):
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                visit.page.screenshot(path=str(SCREENSHOT))
        finally:
            visit.close()
    readme = (ROOT / "README.md").read_text()
    assert "docs/images/report.png" in readme
    assert _png_width(SCREENSHOT) == 1280


def test_report_of_sources_without_context_or_firewall_logs(natlens, tmp_path) -> None:
    """Sources instead of a case, no context, no firewall logs: the page still answers what the
    logs can, says what is missing and how to add it, and names what the user typed."""
    examples = ROOT / "examples" / "aws-docs"
    page = tmp_path / "r.html"
    run = natlens("report", examples, "--output", page)
    assert run.code == 0, run.err
    text = page.read_text()
    assert f"case <code>{examples}</code>" in text
    assert "The case has no Network Firewall logs" in text
    assert "natlens context collect --out DIR" in text
    assert 'id="exposed"' in text and "10.0.0.62:5001" in text
    assert natlens("report", examples, "--output", tmp_path).code == 64
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.spark
def test_engines_write_the_same_page(v5_worlds, spark_engine, tmp_path) -> None:
    """The page from DuckDB and from Spark, each on a fresh copy of the case: the same, bar the
    time it was written."""
    from natlens.analyses.conversations import ConversationOptions
    from natlens.case import Case
    from natlens.engine import DuckDBEngine
    from natlens.formats.describe_json import load_context
    from natlens.report import build_report
    from tests.conftest import fresh_copy

    world = v5_worlds["fw-after-nat"]
    options = ConversationOptions(context=load_context(world / "context"))
    pages = []
    for name, engine in (("duckdb", DuckDBEngine()), ("spark", spark_engine)):
        (tmp_path / name).mkdir()
        with Case.open(fresh_copy(world / "case", tmp_path / name)) as case:
            _data, page = build_report(engine, case, options, "CASE", "CONTEXT")
        if name == "duckdb":
            engine.close()
        pages.append(re.sub(r"natlens [\d.]+, [\dTZ:-]+", "", page))
    assert pages[0] == pages[1]
    assert 'id="table-alerts"' in pages[0] and "c-certain" in pages[0]
