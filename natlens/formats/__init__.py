"""Readers: containers (gzip, Parquet, CloudWatch Logs JSON) to pieces, and pieces to Arrow
tables (vpc_flow, network_firewall), log format strings (logformat), describe-* JSON
(describe_json)."""
