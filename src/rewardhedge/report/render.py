"""Render one or several results into a single self-contained HTML page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rewardhedge.data.jsonl import atomic_text_writer
from rewardhedge.report.html import page
from rewardhedge.report.validate import ReportError, detect_kind

__all__ = ["render_report", "report_html"]

_HEADINGS = {"lab": "Overoptimisation lab", "eval": "Evaluation"}
_TITLES = {
    "lab": "rewardhedge · overoptimisation report",
    "eval": "rewardhedge · evaluation report",
}


def _as_list(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[Any]:
    if isinstance(results, Mapping):
        return [results]
    if isinstance(results, Sequence) and not isinstance(results, str | bytes):
        if not results:
            raise ReportError("results is an empty list; pass at least one result dict.")
        return list(results)
    raise ReportError(
        f"results is a {type(results).__name__}; pass a result dict or a list of them."
    )


def report_html(
    results: Mapping[str, Any] | Sequence[Mapping[str, Any]], *, title: str | None = None
) -> str:
    """The report page as an HTML string (see :func:`render_report`).

    Example:
        >>> page = report_html({"n_pairs": 2, "pairwise_accuracy": 0.5}, title="demo")
        >>> page.startswith("<!DOCTYPE html>"), "0.5000" in page
        (True, True)
    """
    items = _as_list(results)
    many = len(items) > 1
    kinds = [detect_kind(r, f"results[{i}]" if many else "result") for i, r in enumerate(items)]

    # Imported here so that `import rewardhedge.report` works without matplotlib.
    try:
        from rewardhedge.report.evaluation import eval_section
        from rewardhedge.report.lab import lab_section
    except ModuleNotFoundError as exc:
        if exc.name != "matplotlib":
            raise
        raise ModuleNotFoundError(
            "The HTML report draws its plots with matplotlib, a dependency of rewardhedge "
            "that is missing here. Install it with: pip install matplotlib",
            name="matplotlib",
        ) from exc

    sections, nav = [], []
    for i, (kind, result) in enumerate(zip(kinds, items, strict=True)):
        heading = ""
        if many:
            same = [k for k in kinds if k == kind]
            number = f" {kinds[: i + 1].count(kind)}" if len(same) > 1 else ""
            heading = f"{_HEADINGS[kind]}{number}"
        anchor = f"r{i}"
        if kind == "lab":
            html, toc = lab_section(
                result, anchor=anchor, heading=heading, where=f"results[{i}]" if many else "result"
            )
        else:
            html, toc = eval_section(result, anchor=anchor, heading=heading)
        sections.append(html)
        nav += [(anchor, heading)] if many else toc
    if title is None:
        title = _TITLES[kinds[0]] if len(set(kinds)) == 1 else "rewardhedge report"
    return page(title, "\n".join(sections), nav=nav)


def render_report(
    results: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    out_path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """Write a self-contained HTML report of lab and/or evaluation results.

    The page has no scripts and no external references (plots are inline SVG,
    styles inline, system fonts), so it can be mailed or archived as one file.
    Every text from the results is HTML-escaped. The file is written
    atomically: a temporary file in the same folder replaces ``out_path`` only
    once it is complete, so a failure leaves an existing report untouched.

    Args:
        results: one result dict or a list of them, each either the
            overoptimisation lab's JSON (``"kind": "rewardhedge.overopt"``) or
            the dict of :func:`rewardhedge.evaluate.evaluate_pairwise`
            (``rewardhedge eval --json``).
        out_path: the HTML file to write; missing folders are created.
        title: the page title; by default one that names the result kind.

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.

    Raises:
        ReportError: if a result is of neither kind (the message lists what was
            expected and the keys it got) or a lab result is malformed.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
        >>> render_report({"n_pairs": 2, "pairwise_accuracy": 0.5}, out).name
        'report.html'
    """
    text = report_html(results, title=title)
    out = Path(out_path)
    with atomic_text_writer(out) as fh:
        fh.write(text)
    return out
