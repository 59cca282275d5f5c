"""Exports of a case for other tools: OCSF for security data lakes."""
