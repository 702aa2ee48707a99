"""The look shared by plots and tables, and the SVG export.

Palette and curve names/colours (so the table swatches match the plots),
matplotlib settings, and :func:`figure_svg`, which turns a figure into an
``<svg>`` element for the page. Figures are built with
:class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no
global figure registry, no GUI backend, nothing to leak.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from rewardhedge.report.html import esc
from rewardhedge.uncertainty.aggregation import AGGREGATION_LABELS

__all__ = [
    "AGG_NAMES",
    "PALETTE",
    "SINGLE_COLOR",
    "agg_title",
    "curve_colors",
    "curve_label",
    "ensemble_models",
    "figure_svg",
    "is_single",
    "model_colors",
    "plot_style",
    "txt",
]

SINGLE_COLOR = "#4a4a4a"
# Okabe-Ito (colour-blind safe), then a few tab10 colours for long lists.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#8c564b",
    "#7f7f7f",
    "#bcbd22",
)
AGG_NAMES = dict(AGGREGATION_LABELS)
"""Display name of each aggregation (the labels the aggregations give themselves)."""

_RC = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica", "Liberation Sans"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.0,
    "axes.edgecolor": "#8a8a8a",
    "axes.linewidth": 0.8,
    "axes.spines.right": False,
    "axes.spines.top": False,
    "axes.grid": True,
    "grid.color": "#e4e4e4",
    "grid.linewidth": 0.6,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "legend.fontsize": 7.5,
    "legend.framealpha": 0.85,
    "legend.edgecolor": "#dddddd",
    "figure.facecolor": "white",
}


@contextmanager
def plot_style() -> Iterator[None]:
    """The report's matplotlib settings, for building a figure."""
    with matplotlib.rc_context(_RC):
        yield


def txt(value: Any) -> str:
    """User text for matplotlib: ``$`` escaped (no mathtext), no legend-hiding ``_`` prefix."""
    s = str(value).replace("$", r"\$")
    return " " + s if s.startswith("_") else s


def figure_svg(fig: Figure, salt: str, label: str) -> str:
    """Write ``fig`` as an ``<svg>`` element (no XML prolog, no metadata) and clear it.

    Args:
        fig: the figure; it is cleared afterwards, so it holds no artists.
        salt: makes the SVG's internal ids unique on the page and deterministic.
        label: accessible name of the image (plain text).
    """
    buf = io.BytesIO()
    try:
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        fig.clear()
    svg = buf.getvalue().decode("utf-8")
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.DOTALL)
    # matplotlib names every group "figure_1", "axes_1", ...: the same in every plot, so
    # duplicate ids on the page. Nothing refers to them (references use salted hashes); drop.
    refs = set(re.findall(r"#([^\s\"')]+)", svg))
    svg = re.sub(r' id="([A-Za-z][\w.]*_\d+)"', lambda m: "" if m[1] not in refs else m[0], svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{esc(label)}" ', 1).strip()


def is_single(curve: Mapping[str, Any]) -> bool:
    return curve.get("model") == "single"


def agg_title(curve: Mapping[str, Any]) -> str:
    """The aggregation part of a curve's name (``"UWO λ=0.5"``), for a panel or table row
    whose model is already shown elsewhere.

    Example:
        >>> agg_title({"model": "views", "aggregation": "uwo", "label": "views · UWO λ=0.5"})
        'UWO λ=0.5'
        >>> agg_title({"model": "views", "aggregation": "softmin"})
        'soft-min'
    """
    label, prefix = curve_label(curve), f"{curve.get('model', '?')} · "
    if label.startswith(prefix) and len(label) > len(prefix):
        return label[len(prefix) :]
    agg = str(curve.get("aggregation", "?"))
    return AGG_NAMES.get(agg, agg)


def curve_label(curve: Mapping[str, Any]) -> str:
    """The curve's display name: its ``label``, else ``"model · aggregation"``."""
    label = curve.get("label")
    if label:
        return str(label)
    agg = str(curve.get("aggregation", "?"))
    return f"{curve.get('model', '?')} · {AGG_NAMES.get(agg, agg)}"


def ensemble_models(curves: Sequence[Mapping[str, Any]]) -> list[str]:
    """The non-single models (lab v2: diversity options), in order of first appearance.

    Example:
        >>> ensemble_models([{"model": "single"}, {"model": "views"}, {"model": "bootstrap"},
        ...                  {"model": "views"}])
        ['views', 'bootstrap']
    """
    out: list[str] = []
    for c in curves:
        name = str(c.get("model", "?"))
        if not is_single(c) and name not in out:
            out.append(name)
    return out


def model_colors(curves: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """One colour per model, so an option keeps its colour across panels, tables and plots.

    Example:
        >>> model_colors([{"model": "single"}, {"model": "bootstrap"}, {"model": "views"}])
        {'single': '#4a4a4a', 'bootstrap': '#0072B2', 'views': '#D55E00'}
    """
    out = {"single": SINGLE_COLOR}
    for k, name in enumerate(ensemble_models(curves)):
        out[name] = PALETTE[k % len(PALETTE)]
    return out


def curve_colors(curves: Sequence[Mapping[str, Any]]) -> list[str]:
    """One colour per curve, the same in every plot and table swatch.

    With one ensemble model (lab v1), the first single-model curve is dark
    grey and every other curve takes the next palette colour in order. With
    several (lab v2, one per diversity option), the aggregation is told by the
    panel, so colour tells the model: see :func:`model_colors`.

    Example:
        >>> curve_colors([{"model": "single"}, {"model": "ensemble"}])
        ['#4a4a4a', '#0072B2']
        >>> curve_colors([{"model": "single"}, {"model": "a"}, {"model": "b"}, {"model": "a"}])
        ['#4a4a4a', '#0072B2', '#D55E00', '#0072B2']
    """
    if len(ensemble_models(curves)) > 1:
        by_model = model_colors(curves)
        return [
            SINGLE_COLOR if is_single(c) else by_model[str(c.get("model", "?"))] for c in curves
        ]
    out, k, single_seen = [], 0, False
    for c in curves:
        if is_single(c) and not single_seen:
            out.append(SINGLE_COLOR)
            single_seen = True
        else:
            out.append(PALETTE[k % len(PALETTE)])
            k += 1
    return out
