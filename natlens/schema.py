"""Canonical tables and vocabularies.

Every flow log field AWS documents is one row of ``FLOW_FIELDS``: its AWS name, the record version
that introduced it, and how it is typed. Column names follow AWS's Athena convention (the field
name with ``-`` replaced by ``_``) and column types follow AWS's Parquet delivery
(docs/aws.md §1.2).
A new field is one line here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import pyarrow as pa

from natlens.vocabulary import Confidence, Role, Verdict

# The most packets or bytes one record or event may count: 100 Gbit/s for ten minutes is
# 2^42.8 bytes, and sums over millions of records stay far from int64's end (no overflow).
MAX_COUNT = 2**44


class Kind(Enum):
    """How a field's text is checked and typed."""

    INT32 = "int32"
    INT64 = "int64"
    STRING = "string"
    ADDRESS = "address"  # IPv4 or IPv6 text, kept as text; IPv4 also as an integer column


ARROW_TYPES = {
    Kind.INT32: pa.int32(),
    Kind.INT64: pa.int64(),
    Kind.STRING: pa.string(),
    Kind.ADDRESS: pa.string(),
}


@dataclass(frozen=True)
class FlowField:
    name: str  # AWS spelling, as in a format string: "pkt-srcaddr"
    version: int | None  # None: AWS documents the field but its version number was not found
    kind: Kind

    @property
    def column(self) -> str:
        return column_name(self.name)

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.kind]


def column_name(field: str) -> str:
    """AWS field name to Athena column name: ``log-status`` -> ``log_status``."""
    return field.replace("-", "_")


def _fields(version: int | None, kind: Kind, names: str) -> list[FlowField]:
    return [FlowField(name, version, kind) for name in names.split()]


S, I32, I64, ADDR = Kind.STRING, Kind.INT32, Kind.INT64, Kind.ADDRESS

# docs/aws.md §1.2. Transit gateway fields (version 6) follow AWS's transit gateway flow log table.
FLOW_FIELDS: tuple[FlowField, ...] = tuple(
    _fields(2, I32, "version")
    + _fields(2, S, "account-id interface-id")
    + _fields(2, ADDR, "srcaddr dstaddr")
    + _fields(2, I32, "srcport dstport protocol")
    + _fields(2, I64, "packets bytes start end")
    + _fields(2, S, "action log-status")
    + _fields(3, S, "vpc-id subnet-id instance-id")
    + _fields(3, I32, "tcp-flags")
    + _fields(3, S, "type")
    + _fields(3, ADDR, "pkt-srcaddr pkt-dstaddr")
    + _fields(4, S, "region az-id sublocation-type sublocation-id")
    + _fields(5, S, "pkt-src-aws-service pkt-dst-aws-service flow-direction")
    + _fields(5, I32, "traffic-path")
    + _fields(
        6,
        S,
        "resource-type tgw-id tgw-attachment-id tgw-src-vpc-account-id tgw-dst-vpc-account-id "
        "tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id tgw-dst-subnet-id tgw-src-eni "
        "tgw-dst-eni tgw-src-az-id tgw-dst-az-id tgw-pair-attachment-id",
    )
    + _fields(
        6,
        I64,
        "packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded "
        "packets-lost-ttl-expired",
    )
    + _fields(
        7,
        S,
        "ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id "
        "ecs-container-id ecs-second-container-id ecs-service-name ecs-task-definition-arn "
        "ecs-task-arn ecs-task-id",
    )
    # docs/aws.md §1.2: reject-reason is version 8 in every third-party parser; AWS's cell not seen.
    + _fields(8, S, "reject-reason")
    # Newer fields AWS documents without a version number we could confirm (docs/aws.md §1.2, §10).
    + _fields(None, S, "resource-id")
    + _fields(None, I32, "encryption-status")
    + _fields(
        None,
        S,
        "instance-tag instance-tag-2 interface-tag interface-tag-2 asg-tag asg-tag-2 "
        "interface-type next-hop-interface-id next-hop-subnet-id next-hop-az-id next-hop-vpc-id "
        "next-hop-interface-type",
    )
)

FIELDS_BY_NAME: dict[str, FlowField] = {f.name: f for f in FLOW_FIELDS}

# The default format (docs/aws.md §1.1): every version 2 field, in table order. It cannot change.
DEFAULT_FORMAT: tuple[str, ...] = tuple(f.name for f in FLOW_FIELDS if f.version == 2)

# A field name as AWS spells them in format strings and header lines.
FIELD_NAME_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")

# Columns natlens adds to every flows row.
PROVENANCE_COLUMNS = (
    pa.field("source", pa.string()),  # file path, s3:// URI or cwl://group/stream
    pa.field("line", pa.int64()),  # 1-based line (text), row (Parquet) or event number (JSON/API)
)
# Unknown fields are kept, keyed by the name the header or format string gave them.
EXTRA_COLUMN = pa.field("extra", pa.map_(pa.string(), pa.string()))
# IPv4 addresses as integers, so that CIDR tests are arithmetic in every engine. NULL for IPv6.
ADDRESS_INT_SUFFIX = "_v4"
DERIVED_COLUMNS = tuple(
    pa.field(f.column + ADDRESS_INT_SUFFIX, pa.int64()) for f in FLOW_FIELDS if f.kind is ADDR
)

FLOWS_SCHEMA = pa.schema(
    [pa.field(f.column, f.arrow_type) for f in FLOW_FIELDS]
    + list(DERIVED_COLUMNS)
    + [EXTRA_COLUMN]
    + list(PROVENANCE_COLUMNS)
)

# Record-level values (docs/aws.md §1.3).
ACTIONS = ("ACCEPT", "REJECT")
LOG_STATUSES = ("OK", "NODATA", "SKIPDATA")
GAP_STATUSES = ("NODATA", "SKIPDATA")
FLOW_DIRECTIONS = ("ingress", "egress")
TRAFFIC_TYPES = ("IPv4", "IPv6", "EFA")  # the ``type`` field

# -- analysis vocabularies (DESIGN.md) ---------------------------------------------------------

# Who started a conversation, and how sure natlens is. Ordered from strongest to weakest.
CONFIDENCES = tuple(Confidence)

# Evidence codes: stable strings a conversation lists to say why its client is its client.
EVIDENCE: dict[str, str] = {
    "tcp-syn": "a record of one direction carries SYN without SYN-ACK (tcp-flags 2, 3, ...); "
    "its sender opened the connection",
    "tcp-synack": "the reverse direction carries SYN-ACK (tcp-flags 18, 19): its sender answered",
    "nat-return-only": "a NAT gateway forwards internet packets to an instance only as replies: "
    "the side behind the NAT gateway opened the connection",
    "nat-unsolicited": "internet packets reached only a NAT gateway's (or firewall endpoint's) own "
    "address, with no outbound flow to match: the internet side sent them, and the NAT gateway "
    "dropped them",
    "reject-side": "only REJECT records, in one direction: the initiator's packets were dropped",
    "sg-not-admitted": "the private side's security groups (from the context) admit no "
    "connection from the internet side's address to this port, yet its packets were accepted: "
    "security groups are stateful, so they were replies",
    "sg-admits": "a security group rule admits the internet side's address to this one service "
    "port (not a whole ephemeral range): a port meant to be reached from the internet",
    "lb-listener": "a load balancer (from the context) takes connections from its clients and "
    "never opens one to the internet",
    "one-way": "only one direction was logged: its sender is probably the initiator",
    "service-port": "one side uses a well-known (below 1024) or listed service port, the other "
    "does not",
    "ephemeral-port": "the client's port is in an ephemeral range: Linux 32768-60999, Windows "
    "49152-65535, or 1024-65535 on a NAT gateway's translated leg",
    "fan-in": "many distinct peers reach one side's address and port; the other side has one",
    "earlier-start": "one direction's first record starts earlier (TCP and UDP only)",
    "no-evidence": "nothing decides who started it (e.g. ICMP without NAT gateway knowledge): "
    "the client and server columns are an order, not a claim",
}

# Inbound verdicts per internet address (DESIGN.md, problem 1).
VERDICTS: dict[Verdict, str] = {
    Verdict.UNSOLICITED: "reached only NAT gateway (or firewall endpoint) addresses, with no "
    "outbound flow to match: the NAT gateway dropped it",
    Verdict.RESPONSE: "replies to connections that private instances opened",
    Verdict.MIXED: "both unsolicited packets and replies",
    Verdict.EXPOSED: "opened connections to a private address that is not a NAT gateway: a real "
    "exposure",
    Verdict.UNDETERMINED: "the logs do not say who started its conversations",
}

# Roles of an address in a conversation. Context (describe-* JSON) gives the first four; logs
# alone give "gateway" (a NAT gateway or a middlebox such as a firewall endpoint) and "instance".
ROLES = tuple(Role)


# Network Firewall log events (formats/network_firewall.py): one row per alert, netflow or TLS
# event, typed as AWS means them.
FIREWALL_EVENT_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("firewall_name", pa.string()),
    ("availability_zone", pa.string()),
    ("event_timestamp", pa.int64()),  # epoch seconds
    ("log_type", pa.string()),  # alert, flow or tls
    ("event_type", pa.string()),
    ("timestamp", pa.string()),  # the EVE timestamp as written
    ("flow_id", pa.int64()),
    ("src_ip", pa.string()),
    ("src_port", pa.int32()),
    ("dest_ip", pa.string()),
    ("dest_port", pa.int32()),
    ("proto", pa.string()),
    ("app_proto", pa.string()),
    ("direction", pa.string()),
    ("alert_action", pa.string()),  # allowed, blocked
    ("signature_id", pa.int64()),
    ("signature", pa.string()),
    ("category", pa.string()),
    ("severity", pa.int32()),
    ("verdict_action", pa.string()),  # drop, ...
    ("netflow_pkts", pa.int64()),
    ("netflow_bytes", pa.int64()),
    ("netflow_start", pa.string()),
    ("netflow_end", pa.string()),
    ("netflow_age", pa.int64()),
    # epoch seconds read from the EVE text times above: what the analyses compare with flow logs
    ("event_time", pa.int64()),  # timestamp, else event_timestamp
    ("flow_start", pa.int64()),  # netflow.start
    ("flow_end", pa.int64()),  # netflow.end
    ("tcp_flags", pa.int32()),  # decoded from hex
    ("sni", pa.string()),  # tls.sni, or the TLS log's own sni
    ("http_hostname", pa.string()),
    ("http_url", pa.string()),
    ("tls_error", pa.string()),
    ("revocation_status", pa.string()),
    ("revocation_action", pa.string()),
    ("aws_category", pa.string()),
    ("tls_inspected", pa.bool_()),
    ("duplicate_keys", pa.list_(pa.string())),
    ("extra", pa.map_(pa.string(), pa.string())),
    ("src_ip_v4", pa.int64()),
    ("dest_ip_v4", pa.int64()),
    ("source", pa.string()),
    ("line", pa.int64()),
)
FIREWALL_EVENTS_SCHEMA = pa.schema(
    [pa.field(name, dtype) for name, dtype in FIREWALL_EVENT_COLUMNS]
)


# The version of every JSON document natlens writes (--json, --format json): it changes when a
# key is removed or changes meaning, never when one is added (docs/cli.md, "Output").
JSON_SCHEMA_VERSION = 1
