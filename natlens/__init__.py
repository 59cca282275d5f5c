"""natlens: explains the traffic in AWS VPC Flow Logs and AWS Network Firewall logs."""

__version__ = "0.1.0"
