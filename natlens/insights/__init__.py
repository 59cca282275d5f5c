"""CloudWatch Logs Insights queries, run offline on a case (docs/insights.md): parse.py reads a
query (a lark grammar), fields.py says what CloudWatch would discover, compile.py (with
functions.py and values.py) makes it one SQL query, run.py runs it."""

from natlens.insights.run import Result, compile_query, run, sql_text
from natlens.insights.values import DEFAULT_LIMIT

__all__ = ["DEFAULT_LIMIT", "Result", "compile_query", "run", "sql_text"]
