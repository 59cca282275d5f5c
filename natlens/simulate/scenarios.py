"""Scenarios: small declarative descriptions of a world and its traffic. Adding one is adding an
entry to SCENARIOS."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class App:
    """A kind of outbound connection an instance opens."""

    name: str
    protocol: int  # 6 TCP, 17 UDP, 1 ICMP
    port: int  # the server's port (0 for ICMP)
    weight: float
    request_packets: int  # mean per connection
    response_packets: int
    request_size: int  # mean bytes per packet
    response_size: int
    seconds: float  # mean duration
    app_proto: str = ""  # what Network Firewall's EVE names it: tls, http, dns


APPS = (
    App("https", 6, 443, 0.55, 14, 22, 160, 1100, 6.0, "tls"),
    App("http", 6, 80, 0.10, 8, 12, 220, 900, 3.0, "http"),
    App("dns", 17, 53, 0.20, 1, 1, 70, 140, 0.5, "dns"),
    App("ntp", 17, 123, 0.05, 1, 1, 76, 76, 0.2, ""),
    App("ping", 1, 0, 0.05, 4, 4, 84, 84, 3.0, ""),
    App("git-ssh", 6, 22, 0.05, 30, 40, 200, 900, 20.0, ""),
)


@dataclass(frozen=True)
class FlowLogSpec:
    """One flow log: which interfaces it covers, its format and where it is delivered."""

    name: str
    log_format: str  # "default", "v3", "v5" or an AWS format string
    delivery: str  # "s3-text", "parquet", "cloudwatch-export", "cloudwatch-json"
    interfaces: str = "all"  # "all", "instances", "nat", "az1", "az2"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    azs: int = 2
    instances_per_az: int = 4
    firewall: str | None = None  # "after-nat" or "before-nat"
    exposed_instances: int = 0
    # Connections per minute: per private instance (outbound), and in total (the others).
    egress_per_instance: float = 3.0
    scans: float = 4.0
    exposed_inbound: float = 0.0
    exposed_egress: float = 0.0
    # Shares of outbound TCP connections.
    long_lived: float = 0.02
    idle_timeout: float = 0.02
    short: float = 0.25
    blocked: float = 0.0  # dropped by a firewall rule (alert logged, no reply)
    alerted: float = 0.0  # allowed, but a rule alerts on them
    hard_cases: int = 0  # groups of instances alerting on one destination in the same second
    mixed_servers: int = 3  # remote servers that also send unsolicited packets to the NAT
    # The shape families of kinds.FAMILIES beyond the four basic ones, each at this many
    # connections per minute (0: none). They bring their own world: an instance with a public
    # IP that only goes out, a network and an application load balancer, IPv6.
    families: float = 0.0
    flow_logs: tuple[FlowLogSpec, ...] = field(
        default_factory=lambda: (FlowLogSpec("vpc", "default", "s3-text"),)
    )


_BASE = Scenario("nat-basic", "")

# How the logs reach natlens (simulate --delivery): S3 text, S3 Parquet, a CloudWatch Logs
# export, CloudWatch Logs JSON events.
DELIVERIES = ("s3-text", "parquet", "cloudwatch-export", "cloudwatch-json")

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        replace(
            _BASE,
            name="nat-basic",
            description="Private instances in two AZs reach the internet through a public NAT "
            "gateway per AZ; internet scanners send unsolicited packets to the NAT gateways.",
        ),
        replace(
            _BASE,
            name="fw-after-nat",
            description="nat-basic with an AWS Network Firewall endpoint between each NAT "
            "gateway and the internet gateway: the firewall logs the NAT gateway's address.",
            firewall="after-nat",
            blocked=0.03,
            alerted=0.05,
            hard_cases=3,
        ),
        replace(
            _BASE,
            name="fw-before-nat",
            description="nat-basic with the firewall endpoint between the private subnets and "
            "the NAT gateway: the firewall logs the instances' addresses.",
            firewall="before-nat",
            blocked=0.03,
            alerted=0.05,
        ),
        replace(
            _BASE,
            name="exposed-instance",
            description="nat-basic plus an instance with a public IP in a public subnet, "
            "receiving SSH and HTTPS connections from the internet: a real exposure.",
            exposed_instances=1,
            exposed_inbound=3.0,
            exposed_egress=0.5,
        ),
        replace(
            _BASE,
            name="aws-shapes",
            description="exposed-instance plus every shape family written from AWS's rules: "
            "connections begun before the capture, clients from low ports to high service "
            "ports, UDP and ICMP both ways, NAT port reuse, SYN-ACK backscatter, probes a "
            "security group or network ACL rejects, load balancers with and without client IP "
            "preservation, IPv6 through an egress-only gateway and to an exposed instance, and "
            "an instance with a public IP that only goes out.",
            exposed_instances=1,
            exposed_inbound=3.0,
            exposed_egress=0.5,
            families=1.5,
        ),
        replace(
            _BASE,
            name="mixed-formats",
            description="nat-basic written by four flow logs at once, each with its own format "
            "and delivery: default text on S3, version 5 Parquet, a custom format exported from "
            "CloudWatch Logs, and version 3 as filter-log-events JSON.",
            flow_logs=(
                FlowLogSpec("az1-instances", "default", "s3-text", "az1"),
                FlowLogSpec("nat-gateways", "v5", "parquet", "nat"),
                FlowLogSpec(
                    "az2-instances",
                    "${interface-id} ${action} ${srcaddr} ${srcport} ${dstaddr} ${dstport} "
                    "${protocol} ${bytes} ${packets} ${start} ${end} ${tcp-flags} "
                    "${instance-id} ${log-status}",
                    "cloudwatch-export",
                    "az2",
                ),
                FlowLogSpec("everything-v3", "v3", "cloudwatch-json", "instances"),
            ),
        ),
    )
}
