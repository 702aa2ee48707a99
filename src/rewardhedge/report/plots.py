"""The report's plots, each returned as an inline SVG string.

Each function builds one figure (see :mod:`rewardhedge.report.style` for the
look and the SVG export) and returns ``None`` when there is nothing to draw.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rewardhedge.report.html import fmt_n
from rewardhedge.report.style import (
    AGG_NAMES,
    PALETTE,
    SINGLE_COLOR,
    agg_title,
    curve_colors,
    curve_label,
    ensemble_models,
    figure_svg,
    is_single,
    model_colors,
    plot_style,
    txt,
)
from rewardhedge.report.validate import as_array, number

__all__ = [
    "KL_LABEL",
    "by_aggregation",
    "kl_curves_svg",
    "panel_groups",
    "pool_gold_svg",
    "rank_corr_svg",
    "reliability_svg",
    "subset_accuracy_svg",
]

KL_LABEL = "KL(n) = log n − (n−1)/n (upper bound), nats"


def by_aggregation(curves: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the curves hold several ensemble models (lab v2), and so are grouped by
    aggregation: one panel per aggregation, one colour per model."""
    return len(ensemble_models(curves)) > 1


def panel_groups(curves: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[int]]]:
    """Small-multiples panels, as ``(title, curve indices)``.

    With one ensemble model (lab v1): all single-model curves, then one panel
    per (model, aggregation). With several (lab v2, one per diversity option),
    18 such panels would be unreadable, so there is one panel per aggregation
    (and its parameters) holding every model's curve; the single model's mean
    curve is the reference drawn in each, so it gets no panel of its own
    (other single-model curves, if any, do).

    Example:
        >>> panel_groups([{"model": "single", "aggregation": "mean"},
        ...               {"model": "ensemble", "aggregation": "uwo"},
        ...               {"model": "ensemble", "aggregation": "uwo"}])
        [('single model', [0]), ('ensemble · UWO', [1, 2])]
        >>> panel_groups([{"model": "single", "aggregation": "mean"},
        ...               {"model": "a", "aggregation": "mean"},
        ...               {"model": "a", "aggregation": "uwo", "params": {"lam": 0.5}},
        ...               {"model": "b", "aggregation": "mean"},
        ...               {"model": "b", "aggregation": "uwo", "params": {"lam": 0.5}}])
        [('mean', [1, 3]), ('UWO', [2, 4])]
    """
    single = [i for i, c in enumerate(curves) if is_single(c)]
    if by_aggregation(curves):
        ref = _references(curves)[0]
        single = [i for i in single if i != ref]
    groups: dict[tuple[str, str], list[int]] = {}
    titles: dict[tuple[str, str], str] = {}
    for i, c in enumerate(curves):
        if is_single(c):
            continue
        agg = str(c.get("aggregation", "?"))
        if by_aggregation(curves):
            params = json.dumps(c.get("params") or {}, sort_keys=True, default=str)
            key, title = (agg, params), agg_title(c)
        else:
            model = str(c.get("model", "?"))
            key, title = (model, agg), f"{model} · {AGG_NAMES.get(agg, agg)}"
        groups.setdefault(key, []).append(i)
        titles.setdefault(key, title)
    out = [("single model", single)] if single else []
    out += [(titles[key], idx) for key, idx in groups.items()]
    return out


def _references(curves: Sequence[Mapping[str, Any]]) -> tuple[int | None, dict[str, int]]:
    """Index of the single-model reference curve, and each model's ``mean`` curve."""
    single = [i for i, c in enumerate(curves) if is_single(c)]
    single_ref = next((i for i in single if curves[i].get("aggregation") == "mean"), None)
    if single_ref is None and single:
        single_ref = single[0]
    means: dict[str, int] = {}
    for i, c in enumerate(curves):
        if c.get("aggregation") == "mean":
            means.setdefault(str(c.get("model")), i)
    return single_ref, means


def _n_axis(ax: Any, kl: np.ndarray, ns: np.ndarray, span: float) -> None:
    """A secondary tick row on top giving ``n`` at each KL(n); crowded labels are dropped."""
    sec = ax.secondary_xaxis("top")
    ticks, labels, last = [], [], -math.inf
    for x, n in zip(kl, ns, strict=True):
        if not math.isfinite(x):
            continue
        ticks.append(x)
        show = x - last >= 0.05 * span
        labels.append(fmt_n(n) if show else "")
        if show:
            last = x
    sec.set_xticks(ticks, labels=labels)
    sec.tick_params(length=2.5, labelsize=7, pad=1, colors="#666666")
    ax.annotate(
        "n",
        xy=(0, 1),
        xycoords="axes fraction",
        xytext=(-5, 3.5),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=7.5,
        style="italic",
        color="#666666",
    )
    sec.spines["top"].set_visible(True)
    sec.spines["top"].set_color("#bbbbbb")


def _x_limits(kl: np.ndarray) -> tuple[float, float, float]:
    lo, hi = float(np.nanmin(kl)), float(np.nanmax(kl))
    span = max(hi - lo, 1e-9)
    return lo - 0.04 * span, hi + 0.06 * span, span


def _fit_curve(fit: Mapping[str, Any], grid: np.ndarray) -> np.ndarray | None:
    """Gao et al.'s best-of-n form ``c + d (α − β d)``, ``d = sqrt(KL)``, if ``fit`` is coherent.

    The offset ``c`` comes from ``peak_gold``; the curve is drawn only if
    ``peak_kl`` agrees with ``(α / 2β)²`` (otherwise the fit uses another form).
    """
    a, b = number(fit.get("alpha")), number(fit.get("beta"))
    pk, pg = number(fit.get("peak_kl")), number(fit.get("peak_gold"))
    if not all(math.isfinite(v) for v in (a, b, pk, pg)) or b <= 0:
        return None
    if abs((a / (2 * b)) ** 2 - pk) > 0.02 * max(pk, 1.0):
        return None
    d = np.sqrt(np.clip(grid, 0.0, None))
    return pg - a * a / (4 * b) + d * (a - b * d)


def _mark_peak(
    ax: Any, fit: Mapping[str, Any], color: str, gid: str, xlim: tuple[float, float]
) -> tuple[list[float], str | None]:
    """Mark the fitted peak: a star at (peak_kl, peak_gold) and a thin vertical line.

    Returns the y values drawn (for the axis limits) and, for a peak beyond
    the plotted KL range, a note for the panel's corner instead of a star.
    """
    pk, pg, pn = number(fit.get("peak_kl")), number(fit.get("peak_gold")), fit.get("peak_n")
    if not math.isfinite(pk):
        return [], None
    if pk > xlim[1]:
        return [], f"fit peak n≈{fmt_n(pn)} →"
    ax.axvline(pk, color=color, lw=0.8, ls=(0, (2, 2)), alpha=0.75, zorder=1)
    if math.isfinite(pg):
        (star,) = ax.plot([pk], [pg], ls="none", marker="*", ms=11, color=color, mec="white")
        star.set_mew(0.7)
        star.set_zorder(6)
        star.set_gid(gid)
        return [pg], None
    return [], None


def kl_curves_svg(lab: Mapping[str, Any], which: str = "gold", *, salt: str = "kl") -> str | None:
    """Gold (or proxy) reward vs KL(n): one small-multiples panel per curve group.

    Panels (see :func:`panel_groups`): with one ensemble model, the single
    model's curves, then one per ensemble aggregation; each non-single panel
    repeats the single model's mean curve (dashed grey) and the ensemble's
    own mean curve (dashed, its colour) as references. With several ensemble
    models, one panel per aggregation with one line per model (one colour per
    model in every panel, named in one legend below), and only the single
    model's mean curve as reference. Each
    curve is its IQM over seeds with a shaded CI band. On ``which="gold"``,
    curves with a ``fit`` get their fitted peak marked (a star, or a note
    above the panel for a peak beyond the largest n, with id
    ``<salt>-fit-peak-<curve index>``) and the fitted curve drawn dotted
    (id ``<salt>-fit-curve-<curve index>``).

    Args:
        lab: the lab JSON (checked by :func:`~rewardhedge.report.validate.check_lab`).
        which: ``"gold"`` or ``"proxy"``.
        salt: a page-unique string for the SVG ids.

    Returns:
        The ``<svg>`` string, or ``None`` if the lab has no curves.
    """
    curves = lab["curves"]
    groups = panel_groups(curves)
    if not groups:
        return None
    ns = as_array(lab["ns"], "ns")
    kl = as_array(lab["kl"], "kl", ns.shape[0])
    xlim = _x_limits(kl)
    colors = curve_colors(curves)
    single_ref, means = _references(curves)
    multi = by_aggregation(curves)

    def stats(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        block = curves[i][which]
        return tuple(as_array(block[k], k, ns.shape[0]) for k in ("iqm", "ci_low", "ci_high"))

    n_pan = len(groups)
    ncols = 3 if n_pan in (5, 6, 9) else min(n_pan, 4)
    nrows = math.ceil(n_pan / ncols)
    with plot_style():
        panel_w = min(3.6, 11.0 / ncols)
        fig = Figure(figsize=(0.4 + panel_w * ncols, 0.7 + 2.7 * nrows), layout="constrained")
        # Gold is one scale everywhere; the proxy's differs between aggregations (a penalty
        # in reward units squared can dwarf the mean), so panels by aggregation get their own.
        share_y = not (multi and which == "proxy")
        axes = fig.subplots(nrows, ncols, sharex=True, sharey=share_y, squeeze=False)
        panel_ys: list[list[float]] = []
        for p, (title, idxs) in enumerate(groups):
            ax = axes.flat[p]
            ys: list[float] = []
            panel_ys.append(ys)
            model = str(curves[idxs[0]].get("model"))
            refs = []
            if single_ref is not None and single_ref not in idxs:
                refs.append((single_ref, SINGLE_COLOR))
            mean_ref = None if multi else means.get(model)
            if mean_ref is not None and mean_ref not in idxs:
                refs.append((mean_ref, colors[mean_ref]))
            for r, color in refs:
                iqm = stats(r)[0]
                ax.plot(
                    kl,
                    iqm,
                    ls="--",
                    lw=1.1,
                    color=color,
                    alpha=0.9,
                    zorder=2,
                    label=txt(f"{curve_label(curves[r])} (ref.)"),
                )
                ys += list(iqm)
            notes: list[tuple[str, str, str]] = []
            for i in idxs:
                iqm, low, high = stats(i)
                ax.fill_between(kl, low, high, color=colors[i], alpha=0.18, lw=0, zorder=3)
                ax.plot(
                    kl,
                    iqm,
                    color=colors[i],
                    lw=2.0,
                    marker="o",
                    ms=3.2,
                    zorder=4,
                    label=txt(str(curves[i].get("model")) if multi else curve_label(curves[i])),
                )
                ys += list(iqm) + list(low) + list(high)
                fit = curves[i].get("fit")
                if which == "gold" and isinstance(fit, Mapping):
                    grid = np.linspace(max(xlim[0], 0.0), xlim[1], 120)
                    fitted = _fit_curve(fit, grid)
                    if fitted is not None:
                        (line,) = ax.plot(
                            grid,
                            fitted,
                            color=colors[i],
                            lw=0.9,
                            ls=":",
                            zorder=3,
                            scalex=False,
                            scaley=False,
                        )
                        line.set_gid(f"{salt}-fit-curve-{i}")
                    gid = f"{salt}-fit-peak-{i}"
                    drawn, note = _mark_peak(ax, fit, colors[i], gid, xlim[:2])
                    ys += drawn
                    if note:
                        notes.append((note, colors[i], gid))
            ax.set_title(txt(title), loc="left", fontsize=9.5)
            for k, (note, color, gid) in enumerate(notes):
                # Beyond-range peaks go above the plot, stacked, where no legend can hide them.
                ax.annotate(
                    note,
                    xy=(1, 1),
                    xycoords="axes fraction",
                    ha="right",
                    va="bottom",
                    xytext=(0, 16 + 10 * k),
                    textcoords="offset points",
                    fontsize=7,
                    color=color,
                    gid=gid,
                )
            _n_axis(ax, kl, ns, xlim[2])
            if not multi or any(is_single(curves[i]) for i in idxs):
                ax.legend(loc="best", fontsize=7, handlelength=1.8, borderaxespad=0.4)
        for p in range(n_pan, nrows * ncols):
            axes.flat[p].remove()
            above = axes.flat[p - ncols]
            above.xaxis.set_tick_params(labelbottom=True)
        ax0 = axes.flat[0]
        ax0.set_xlim(xlim[0], xlim[1])
        spans = [[y for ys in panel_ys for y in ys]] if share_y else panel_ys
        for ax, ys in zip(axes.flat, spans, strict=False):
            finite = np.array([y for y in ys if math.isfinite(y)])
            if finite.size:
                lo, hi = float(finite.min()), float(finite.max())
                pad = 0.07 * max(hi - lo, 1e-6)
                ax.set_ylim(lo - pad, hi + pad)
        fig.supxlabel(KL_LABEL, fontsize=9)
        fig.supylabel(f"{which} reward (IQM over seeds)", fontsize=9)
        if multi:
            # Colours mean the same in every panel: name them once, not in each panel.
            handles = [
                Line2D([], [], color=c, lw=2.0, marker="o", ms=3.2, label=txt(m))
                for m, c in model_colors(curves).items()
                if m != "single"
            ]
            if single_ref is not None:
                handles.append(
                    Line2D(
                        [],
                        [],
                        color=SINGLE_COLOR,
                        ls="--",
                        lw=1.1,
                        label=txt(f"{curve_label(curves[single_ref])} (ref.)"),
                    )
                )
            fig.legend(
                handles=handles,
                loc="outside upper center",
                ncols=len(handles),
                fontsize=8,
                frameon=False,
            )
        return figure_svg(fig, f"{salt}-{which}", f"{which} reward against KL(n), per curve")


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def rank_corr_svg(lab: Mapping[str, Any], *, salt: str = "rank") -> str | None:
    """Spearman rank correlation of proxy and gold along KL(n), one line per curve.

    With several ensemble models, colour is the model (as in the curves
    plot) and the marker the aggregation, each named once in the legend.

    Returns:
        The ``<svg>`` string, or ``None`` if no curve has ``rank_corr``.
    """
    curves = lab["curves"]
    ns = as_array(lab["ns"], "ns")
    kl = as_array(lab["kl"], "kl", ns.shape[0])
    colors = curve_colors(curves)
    lines = [
        (i, as_array(c["rank_corr"], "rank_corr", ns.shape[0]))
        for i, c in enumerate(curves)
        if c.get("rank_corr") is not None
    ]
    if not lines:
        return None
    multi = by_aggregation(curves)
    markers: dict[str, str] = {}
    if multi:
        for i, _ in lines:
            if not is_single(curves[i]):
                title = agg_title(curves[i])
                markers.setdefault(title, MARKERS[len(markers) % len(MARKERS)])
    xlim = _x_limits(kl)
    with plot_style():
        fig = Figure(figsize=(5.6, 3.9), layout="constrained")
        ax = fig.subplots()
        ax.axhline(0.0, color="#999999", lw=0.8, zorder=1)
        for i, rho in lines:
            single = is_single(curves[i])
            thin = multi and not single  # many lines: thinner, the marker tells the aggregation
            ax.plot(
                kl,
                rho,
                color=colors[i],
                ls="--" if single else "-",
                lw=1.2 if thin else 1.6,
                marker=markers[agg_title(curves[i])] if thin else "o",
                ms=3,
                label=txt(curve_label(curves[i])),
            )
        ax.set_xlim(xlim[0], xlim[1])
        _n_axis(ax, kl, ns, xlim[2])
        ax.set_xlabel(KL_LABEL, fontsize=8.5)
        ax.set_ylabel("Spearman ρ (proxy vs gold)")
        if multi:
            handles = [
                Line2D([], [], color=c, lw=1.6, label=txt(m))
                for m, c in model_colors(curves).items()
                if m != "single" or any(is_single(curves[i]) for i, _ in lines)
            ]
            handles += [
                Line2D([], [], color="#777777", ls="none", marker=mk, ms=4, label=txt(t))
                for t, mk in markers.items()
            ]
            fig.legend(
                handles=handles, loc="outside lower center", ncols=3, fontsize=7, frameon=False
            )
        else:
            fig.legend(loc="outside lower center", ncols=2, fontsize=7, frameon=False)
        return figure_svg(fig, salt, "proxy–gold rank correlation against KL(n)")


def reliability_svg(
    reliability: Sequence[Mapping[str, Any]],
    *,
    salt: str = "rel",
    colors: Mapping[str, str] | None = None,
) -> str | None:
    """Reliability diagram: observed vs predicted P(chosen ≻ rejected), with bin counts.

    Points are sized by their bin's count (counts also drawn as bars below);
    the legend gives each model's ECE. ``colors`` maps an entry's ``name`` to
    its colour (so a model matches its curves); other entries get the single
    model's grey or the next palette colour.

    Returns:
        The ``<svg>`` string, or ``None`` if there is nothing to draw.
    """
    entries = [e for e in reliability if isinstance(e, Mapping) and e.get("bin_mid") is not None]
    if not entries:
        return None
    with plot_style():
        fig = Figure(figsize=(5.6, 5.2), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3.2, 1.0])
        top.plot([0, 1], [0, 1], color="#999999", lw=0.9, ls="--", label="perfect calibration")
        max_count = max(
            (float(np.nanmax(as_array(e.get("count", []), "count"), initial=0)) for e in entries),
            default=1.0,
        )
        width = 0.8 / max(len(as_array(entries[0]["bin_mid"], "bin_mid")), 1)
        k = 0
        for j, e in enumerate(entries):
            where = f"reliability[{j}]"
            mid = as_array(e["bin_mid"], f"{where}.bin_mid")
            m = mid.shape[0]
            pred = as_array(e.get("mean_pred", [None] * m), f"{where}.mean_pred", m)
            frac = as_array(e.get("frac_pos", [None] * m), f"{where}.frac_pos", m)
            count = as_array(e.get("count", [0] * m), f"{where}.count", m)
            name = str(e.get("name", f"model {j + 1}"))
            if colors and name in colors:
                color = colors[name]
            elif "single" in name.lower():
                color = SINGLE_COLOR
            else:
                color, k = PALETTE[k % len(PALETTE)], k + 1
            ok = np.isfinite(pred) & np.isfinite(frac) & (np.nan_to_num(count) > 0)
            ece = number(e.get("ece"))
            label = f"{name}  (ECE {ece:.3f})" if math.isfinite(ece) else name
            top.plot(pred[ok], frac[ok], color=color, lw=1.2, alpha=0.8, label=txt(label))
            sizes = 10 + 230 * np.nan_to_num(count[ok]) / max(max_count, 1.0)
            top.scatter(
                pred[ok],
                frac[ok],
                s=sizes,
                color=color,
                alpha=0.55,
                edgecolors="white",
                linewidths=0.6,
                zorder=3,
            )
            offset = (j - (len(entries) - 1) / 2) * width / len(entries)
            bottom.bar(
                mid + offset,
                np.nan_to_num(count),
                width=width / len(entries),
                color=color,
                alpha=0.75,
            )
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("observed frequency chosen ≻ rejected")
        top.legend(loc="upper left", fontsize=7.5)
        top.set_title("reliability (point area ∝ pairs in bin)", loc="left", fontsize=9.5)
        bottom.set_ylabel("pairs in bin")
        bottom.set_xlabel("predicted P(chosen ≻ rejected)")
        bottom.grid(axis="x", visible=False)
        return figure_svg(fig, salt, "reliability diagram")


def subset_accuracy_svg(
    subsets: Mapping[str, Mapping[str, Any]],
    overall: Any = None,
    *,
    salt: str = "subsets",
    xlabel: str = "pairwise accuracy (95% CI)",
    overall_label: str = "overall",
    label: str = "pairwise accuracy per subset",
) -> str | None:
    """Horizontal bars of per-group accuracy with CI whiskers, chance and overall lines.

    Used for the per-subset accuracies and for RewardBench's section scores.

    Args:
        subsets: ``{name: {"accuracy", "ci_low", "ci_high", ...}}``, drawn top to bottom.
        overall: the value of the dashed reference line (e.g. overall accuracy), or ``None``.
        salt: a page-unique string for the SVG ids.
        xlabel: the x-axis label.
        overall_label: the legend entry of the dashed line.
        label: accessible name of the image.

    Returns:
        The ``<svg>`` string, or ``None`` if ``subsets`` is empty.
    """
    names = list(subsets)
    if not names:
        return None
    acc = np.array([number(subsets[s].get("accuracy")) for s in names])
    low = np.array([number(subsets[s].get("ci_low")) for s in names])
    high = np.array([number(subsets[s].get("ci_high")) for s in names])
    y = np.arange(len(names))[::-1]
    err = np.vstack([np.nan_to_num(acc - low), np.nan_to_num(high - acc)])
    with plot_style():
        fig = Figure(figsize=(6.4, 1.1 + 0.34 * len(names)), layout="constrained")
        ax = fig.subplots()
        ax.barh(
            y,
            np.nan_to_num(acc),
            xerr=np.clip(err, 0.0, None),
            color="#8fb8db",
            height=0.62,
            error_kw={"ecolor": "#333333", "elinewidth": 0.9, "capsize": 2},
        )
        ax.axvline(0.5, color="#999999", ls=":", lw=1, label="chance (0.5)")
        if math.isfinite(number(overall)):
            ax.axvline(number(overall), color="#0b63a6", ls="--", lw=1, label=txt(overall_label))
        ax.set_yticks(y, labels=[txt(s) for s in names])
        ax.set_xlim(0, 1)
        ax.set_xlabel(txt(xlabel))
        ax.grid(axis="y", visible=False)
        # Below the axes, where it cannot hide a bar that reaches the right edge.
        fig.legend(loc="outside lower center", ncols=2, fontsize=7, frameon=False)
        return figure_svg(fig, salt, label)


def pool_gold_svg(
    rows: Sequence[Mapping[str, Any]],
    random_gold: Mapping[str, Any] | None = None,
    best_gold: Mapping[str, Any] | None = None,
    *,
    salt: str = "pools",
) -> str | None:
    """Gold reward of the best-of-n pick per aggregation: points with CI whiskers.

    Aggregations are coloured points; baselines (``"baseline": True``) grey
    squares. The mean gold of a random pick (dotted) and of the best
    candidate in each pool (dashed) are vertical reference lines, each with
    its CI as a light band.

    Args:
        rows: ``{"label", "mean", "ci_low", "ci_high", "baseline"}`` per row, top to bottom.
        random_gold: ``{"mean", "ci_low", "ci_high"}`` of a random pick, or ``None``.
        best_gold: the same for the best candidate in each pool, or ``None``.
        salt: a page-unique string for the SVG ids.

    Returns:
        The ``<svg>`` string, or ``None`` if no row has a finite mean.
    """
    rows = [r for r in rows if math.isfinite(number(r.get("mean")))]
    if not rows:
        return None
    y = np.arange(len(rows))[::-1]
    with plot_style():
        fig = Figure(figsize=(6.4, 1.3 + 0.36 * len(rows)), layout="constrained")
        ax = fig.subplots()
        xs: list[float] = []
        for ref, style, color, name in (
            (random_gold, ":", "#777777", "random pick"),
            (best_gold, "--", "#009E73", "best in pool (oracle)"),
        ):
            if not isinstance(ref, Mapping) or not math.isfinite(number(ref.get("mean"))):
                continue
            mean, lo, hi = (number(ref.get(k)) for k in ("mean", "ci_low", "ci_high"))
            if math.isfinite(lo) and math.isfinite(hi):
                ax.axvspan(lo, hi, color=color, alpha=0.10, lw=0, zorder=0)
                xs += [lo, hi]
            ax.axvline(mean, color=color, ls=style, lw=1.2, label=txt(name), zorder=1)
            xs.append(mean)
        k = 0
        for yy, r in zip(y, rows, strict=True):
            mean, lo, hi = (number(r.get(key)) for key in ("mean", "ci_low", "ci_high"))
            if r.get("baseline"):
                color, marker = SINGLE_COLOR, "s"
            else:
                color, marker, k = PALETTE[k % len(PALETTE)], "o", k + 1
            err = [
                [max(mean - lo, 0.0) if math.isfinite(lo) else 0.0],
                [max(hi - mean, 0.0) if math.isfinite(hi) else 0.0],
            ]
            ax.errorbar(
                [mean],
                [yy],
                xerr=err,
                fmt=marker,
                color=color,
                ms=6,
                elinewidth=1.2,
                capsize=3,
                zorder=3,
            )
            xs += [v for v in (mean, lo, hi) if math.isfinite(v)]
        lo, hi = min(xs), max(xs)
        pad = 0.08 * max(hi - lo, 1e-6)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_yticks(y, labels=[txt(r.get("label", "?")) for r in rows])
        ax.set_xlabel("gold reward of the pick (mean over pools, 95% CI)")
        ax.grid(axis="y", visible=False)
        if ax.get_legend_handles_labels()[0]:
            fig.legend(loc="outside lower center", ncols=2, fontsize=7.5, frameon=False)
        return figure_svg(fig, salt, "gold reward of the best-of-n pick per aggregation")
