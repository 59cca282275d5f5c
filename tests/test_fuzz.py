"""A short run of every fuzz target (benchmarks/fuzz.py) on inputs hypothesis draws, and every
input a long fuzzing run ever crashed on, replayed (tests/fixtures/fuzz/TARGET/)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fuzz import TARGETS
from tests.conftest import FIXTURES

CRASHERS = sorted((FIXTURES / "fuzz").glob("*/*"))
HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
)
QUICK = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

token = st.one_of(
    st.sampled_from(["-", "2", "0", "6", "17", "ACCEPT", "REJECT", "OK", "NODATA", "eni-1",
                     "10.0.0.1", "2001:db8::1", "::::", "010.0.0.1", "65536", "4294967296",
                     "99999999999999999999", "1700000000", "\x00", "\x1b[2J", "${srcaddr}"]),
    st.text(max_size=12),
)  # fmt: skip
line = st.lists(token, min_size=0, max_size=16).map(" ".join)
flow_text = st.lists(line, max_size=12).map(lambda ls: "\n".join([HEADER, *ls]) + "\n")


@pytest.mark.parametrize("path", CRASHERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_crashers_stay_fixed(path: Path) -> None:
    TARGETS[path.parent.name](path.read_bytes())


@QUICK
@given(st.one_of(flow_text.map(str.encode), st.binary(max_size=512)))
def test_flowlog(data: bytes) -> None:
    TARGETS["flowlog"](data)


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
event = st.fixed_dictionaries(
    {"firewall_name": json_value, "event": st.dictionaries(
        st.sampled_from(["timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip",
                         "dest_port", "proto", "alert", "netflow", "tcp", "tls", "http"]),
        json_value, max_size=8)},
)  # fmt: skip


@QUICK
@given(st.lists(st.one_of(event.map(json.dumps), st.text(max_size=40)), max_size=6))
def test_firewall(lines: list[str]) -> None:
    TARGETS["firewall"]("\n".join(lines).encode("utf-8", "surrogatepass"))


@QUICK
@given(
    st.one_of(
        flow_text.map(lambda t: gzip.compress(t.encode())),
        st.builds(
            lambda msgs: json.dumps({"events": [{"message": m} for m in msgs]}).encode(),
            st.lists(line, max_size=5),
        ),
        st.binary(max_size=256).map(lambda b: b"\x1f\x8b" + b),
        st.binary(max_size=256).map(lambda b: b"PAR1" + b),
        st.binary(max_size=256),
    )
)
def test_container(data: bytes) -> None:
    TARGETS["container"](data)


@QUICK
@given(st.one_of(line.map(str.encode), st.binary(max_size=128)))
def test_logformat(data: bytes) -> None:
    TARGETS["logformat"](data)


@QUICK
@given(st.tuples(st.integers(0, 255), json_value.map(json.dumps)))
def test_context(drawn: tuple[int, str]) -> None:
    TARGETS["context"](bytes([drawn[0]]) + drawn[1].encode("utf-8", "surrogatepass"))
