"""HTML building blocks: escaping, number formats, tables, figures and the page shell.

Everything that is not produced here as markup goes through :func:`esc`
(``html.escape``); the :class:`Raw` marker is how a builder says "this string
is already HTML". The page has no scripts and no external references: one
inline ``<style>``, system fonts, plots as inline SVG.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "Raw",
    "esc",
    "fmt",
    "fmt_ci",
    "fmt_int",
    "fmt_n",
    "fmt_p",
    "fmt_seconds",
    "fmt_value",
    "page",
    "plot_figure",
    "table",
]


class Raw(str):
    """A string that is already HTML and must not be escaped again."""


def esc(value: Any) -> str:
    """``value`` as text that is safe anywhere in HTML (quotes included).

    Example:
        >>> esc('<script>alert("x")</script>')
        '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'
    """
    if isinstance(value, Raw):
        return str(value)
    return html.escape(str(value), quote=True)


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(float(x))


def fmt(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals; ``None``/NaN/non-numbers -> an em dash.

    Example:
        >>> fmt(0.71234), fmt(None), fmt(-0.0004)
        ('0.712', '—', '-0.000')
    """
    if not _finite(x):
        return "—"
    return f"{float(x):.{digits}f}"


def fmt_p(x: Any, digits: int = 3) -> str:
    """A p-value with ``digits`` decimals, ``< 0.001`` (for 3) below the smallest shown.

    Example:
        >>> fmt_p(0.04213), fmt_p(0.00002), fmt_p(0.00002, 4), fmt_p(None)
        ('0.042', '< 0.001', '< 0.0001', '—')
    """
    if not _finite(x):
        return "—"
    v = float(x)
    return f"< {10.0**-digits:.{digits}f}" if v < 10.0**-digits else f"{v:.{digits}f}"


def fmt_ci(low: Any, high: Any, digits: int = 3) -> str:
    """``[low, high]``, each with :func:`fmt`; a dash if both are missing.

    Example:
        >>> fmt_ci(0.68, 0.74)
        '[0.680, 0.740]'
    """
    if not _finite(low) and not _finite(high):
        return "—"
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"


def fmt_int(x: Any) -> str:
    """An integer with thin thousands separators; a dash if missing.

    Example:
        >>> fmt_int(12000)
        '12,000'
    """
    if not _finite(x):
        return "—"
    return f"{round(float(x)):,}"


def fmt_n(x: Any) -> str:
    """A best-of-n ``n``: whole numbers as integers, fractional ones with one decimal.

    A fitted peak far beyond any pool (a nearly straight fit) can be ``1e118``:
    from a million on, two significant digits keep the cell and note short.

    Example:
        >>> fmt_n(8), fmt_n(9.46), fmt_n(1234.5), fmt_n(1.29e118)
        ('8', '9.5', '1,234', '1.3e+118')
    """
    if not _finite(x):
        return "—"
    x = float(x)
    if x >= 1e6:
        return f"{x:.2g}"
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.0f}" if x == round(x) else f"{x:.1f}"


def fmt_seconds(x: Any) -> str:
    """A duration: ``0.42 s``, ``12.3 s``, ``2 min 05 s``, ``1 h 02 min``.

    Example:
        >>> fmt_seconds(0.42), fmt_seconds(80.0), fmt_seconds(3720)
        ('0.42 s', '1 min 20 s', '1 h 02 min')
    """
    if not _finite(x):
        return "—"
    s = float(x)
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        m, sec = divmod(round(s), 60)
        return f"{m} min {sec:02d} s"
    h, rem = divmod(round(s), 3600)
    return f"{h} h {rem // 60:02d} min"


def fmt_value(value: Any, limit: int = 80) -> str:
    """Any JSON value as short text (compact JSON for containers), cut at ``limit`` chars.

    Example:
        >>> fmt_value([0, 1, 2]), fmt_value(True), fmt_value(0.25)
        ('[0, 1, 2]', 'true', '0.25')
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, float) and _finite(value):
        text = f"{value:.4g}"
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: Iterable[int] = (),
    row_classes: Sequence[str | None] | None = None,
    cls: str = "",
    caption: str | None = None,
) -> str:
    """An HTML table. Cells are escaped unless they are :class:`Raw`.

    Args:
        headers: column titles (plain text).
        rows: one sequence of cells per row.
        numeric: indices of right-aligned, tabular-figure columns.
        row_classes: a CSS class per row (or ``None``).
        cls: CSS class of the table.
        caption: plain-text caption.

    Example:
        >>> "<td>&lt;b&gt;</td>" in table(["x"], [["<b>"]])
        True
    """
    num = set(numeric)
    num_attr = ' class="num"'

    def cell(tag: str, i: int, value: Any) -> str:
        return f"<{tag}{num_attr if i in num else ''}>{esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        rc = row_classes[r] if row_classes is not None and r < len(row_classes) else None
        rc_attr = f' class="{esc(rc)}"' if rc else ""
        cells = "".join(cell("td", i, c) for i, c in enumerate(row))
        body.append(f"<tr{rc_attr}>{cells}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    cls_attr = f' class="{esc(cls)}"' if cls else ""
    return (
        f'<div class="table-wrap"><table{cls_attr}>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def plot_figure(svg: str, plot_id: str, caption: str, *, wide: bool = True) -> str:
    """An inline-SVG plot in a ``<figure>`` with a caption (plain text, escaped)."""
    return (
        f'<figure class="plot{" wide" if wide else ""}" data-plot="{esc(plot_id)}">'
        f"{svg}<figcaption>{esc(caption)}</figcaption></figure>"
    )


_CSS = """
:root { color-scheme: light; --fg: #1d2125; --muted: #5f6b76; --line: #dde2e7;
  --bg-alt: #f5f7f9; --accent: #0b63a6; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", "Liberation Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 28px 60px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 36px 0 10px; padding-bottom: 4px;
  border-bottom: 2px solid var(--line); }
h2.result { font-size: 1.5rem; border: 0; margin-top: 44px; color: var(--accent); }
h3 { font-size: 1.05rem; margin: 22px 0 8px; }
p { margin: 6px 0 10px; }
.muted, figcaption, caption { color: var(--muted); }
.subtitle { color: var(--muted); margin: 0 0 18px; }
nav.toc { margin: 8px 0 16px; font-size: .95rem; }
nav.toc a { margin-right: 14px; color: var(--accent); text-decoration: none; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr));
  gap: 6px 18px; margin: 8px 0 14px; padding: 12px 14px; background: var(--bg-alt);
  border-radius: 6px; font-size: .9rem; }
.facts div { overflow-wrap: anywhere; }
.facts b { font-weight: 600; color: var(--muted); margin-right: 4px; }
.callout { border-left: 4px solid var(--accent); background: #eef5fb; padding: 8px 12px;
  margin: 10px 0 14px; border-radius: 0 6px 6px 0; }
.table-wrap { overflow-x: auto; margin: 8px 0 16px; }
table { border-collapse: collapse; font-size: .9rem; min-width: 50%; }
caption { caption-side: bottom; text-align: left; font-size: .85rem; padding-top: 4px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.baseline td { color: var(--muted); font-style: italic; }
tr.helps td { background: #eef7f1; }
tr.hurts td { background: #fbefee; }
.swatch { display: inline-block; width: 18px; height: 4px; margin: 0 8px 3px 0;
  border-radius: 2px; vertical-align: middle; }
.bar { display: inline-block; height: 9px; background: #8fb8db; border-radius: 2px;
  vertical-align: middle; }
figure.plot { margin: 10px 0 18px; }
figure.plot svg { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { font-size: .85rem; margin-top: 4px; }
.row { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr));
  gap: 18px; align-items: start; }
.example { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px;
  margin: 14px 0; }
.example h3 { margin-top: 0; }
.prompt { background: var(--bg-alt); border-radius: 6px; padding: 8px 10px; }
.picks { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr));
  gap: 12px; margin-top: 10px; }
.pick { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; min-width: 0; }
.pick h4 { margin: 0 0 4px; font-size: .95rem; }
.pick .scores { font-size: .9rem; margin-bottom: 6px; font-variant-numeric: tabular-nums; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; font-size: .88rem; margin: 6px 0 0;
  max-height: 22em; overflow-y: auto; font-family: ui-monospace, SFMono-Regular, Menlo,
    Consolas, "Liberation Mono", monospace; }
.props { font-size: .8rem; color: var(--muted); margin: 0; }
.props span { display: inline-block; margin-right: 10px; }
.good { color: #17733a; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
footer { margin-top: 40px; color: var(--muted); font-size: .8rem; }
"""


def page(title: str, body: str, *, nav: Sequence[tuple[str, str]] = ()) -> str:
    """The whole HTML document: ``title`` (plain text) and ``body`` (HTML).

    Args:
        title: the page title and heading.
        body: the sections, as HTML.
        nav: ``(anchor id, label)`` pairs for a table of contents.
    """
    toc = ""
    if nav:
        links = "".join(f'<a href="#{esc(a)}">{esc(label)}</a>' for a, label in nav)
        toc = f'<nav class="toc">{links}</nav>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="rewardhedge report">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{esc(title)}</h1>\n{toc}\n{body}\n"
        "<footer>Generated by rewardhedge. This page is self-contained: no scripts, no "
        "external files.</footer>\n</main>\n</body>\n</html>\n"
    )
