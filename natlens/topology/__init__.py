"""The VPC as a route graph: the model (network), path tracing (trace), findings (checks, nacl),
remediation plans (plans, commands) and the report (report)."""
