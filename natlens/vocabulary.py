"""Every vocabulary natlens prints or reads, as enums (DESIGN.md names the values).

They are ``StrEnum``s: a member is its string (``Role.NAT_GATEWAY == "nat-gateway"``), so JSON,
CSV, Arrow and SQL see the documented values, and a typo in the code is a name mypy rejects
instead of a string that silently never matches.
"""

from __future__ import annotations

from enum import StrEnum


class Confidence(StrEnum):
    """How sure natlens is of a conversation's initiator; strongest first."""

    CERTAIN = "certain"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    UNKNOWN = "unknown"


class Verdict(StrEnum):
    """What an internet address's inbound packets were (problem 1)."""

    UNSOLICITED = "unsolicited"
    RESPONSE = "response"
    MIXED = "mixed"
    EXPOSED = "exposed"
    UNDETERMINED = "undetermined"


class Role(StrEnum):
    """What an address is in a conversation. The context gives the first six; logs alone give
    ``gateway`` (a NAT gateway or a middlebox such as a firewall endpoint) and ``instance``."""

    NAT_GATEWAY = "nat-gateway"
    FIREWALL_ENDPOINT = "firewall-endpoint"
    LOAD_BALANCER = "load-balancer"
    LAMBDA = "lambda"
    INSTANCE = "instance"
    PUBLIC_INSTANCE = "public-instance"
    GATEWAY = "gateway"
    PRIVATE = "private"
    INTERNET = "internet"


class Severity(StrEnum):
    """A topology finding's severity; weakest first."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Target(StrEnum):
    """What a route sends to (docs/aws.md §7.1), and the other hops of a traced path."""

    LOCAL = "local"
    INTERNET_GATEWAY = "internet-gateway"
    EGRESS_ONLY_INTERNET_GATEWAY = "egress-only-internet-gateway"
    NAT_GATEWAY = "nat-gateway"
    VPC_ENDPOINT = "vpc-endpoint"
    FIREWALL_ENDPOINT = "firewall-endpoint"  # a vpc-endpoint that is a Network Firewall's
    TRANSIT_GATEWAY = "transit-gateway"
    NETWORK_INTERFACE = "network-interface"
    PEERING_CONNECTION = "peering-connection"
    INSTANCE = "instance"
    LOCAL_GATEWAY = "local-gateway"
    CARRIER_GATEWAY = "carrier-gateway"
    CORE_NETWORK = "core-network"
    VPN_GATEWAY = "vpn-gateway"
    GATEWAY = "gateway"  # a GatewayId of a kind natlens does not know
    UNKNOWN = "unknown"  # a route that names no target natlens knows
    # Hops that are not route targets: where a path starts, and how it can end short.
    SUBNET = "subnet"
    BLACKHOLE = "blackhole"
    NO_ROUTE = "no-route"
    LOOP = "loop"


class Layout(StrEnum):
    """How an AZ's workload subnets reach the internet (topology), besides a path's outcome
    when it never gets there."""

    FIREWALL_AFTER_NAT = "firewall-after-nat"
    FIREWALL_BEFORE_NAT = "firewall-before-nat"
    NAT_ONLY = "nat-only"
    FIREWALL_ONLY = "firewall-only"
    DIRECT = "direct"


class SourceKind(StrEnum):
    """Who a firewall event's source address is (alert attribution)."""

    NAT_GATEWAY = "nat-gateway"
    PRIVATE = "private"
    INTERNET = "internet"


class LogType(StrEnum):
    """Network Firewall's log types."""

    ALERT = "alert"
    FLOW = "flow"
    TLS = "tls"


class Method(StrEnum):
    """How an alert behind a NAT gateway was tied to its instance, most direct first."""

    PKT_DSTADDR = "pkt-dstaddr"
    INSTANCE_ENI = "instance-eni"
    NAT_LEGS = "nat-legs"
    SOURCE_ADDRESS = "source-address"
