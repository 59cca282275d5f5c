"""natlens report: both answers, their evidence and what the logs leave out, as one
self-contained HTML page (data.py gathers, charts.py draws, html.py lays out)."""

from natlens.report.data import Limits, ReportData
from natlens.report.html import build_report

__all__ = ["Limits", "ReportData", "build_report"]
