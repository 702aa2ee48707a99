"""The HTML report: one self-contained page of plots and tables.

Give :func:`render_report` the overoptimisation lab's JSON and/or the
evaluation JSON of ``rewardhedge eval --json``::

    from rewardhedge.report import render_report
    render_report(json.loads(Path("overopt.json").read_text()), "report.html")

The plots are drawn with matplotlib, imported only when a page is rendered.
"""

from __future__ import annotations

from rewardhedge.report.render import render_report, report_html
from rewardhedge.report.validate import ReportError, detect_kind

__all__ = ["ReportError", "detect_kind", "render_report", "report_html"]
