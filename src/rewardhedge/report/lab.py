"""The report section for the overoptimisation lab's JSON (``docs/lab-json.md``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardhedge.report import plots
from rewardhedge.report.html import (
    Raw,
    esc,
    fmt,
    fmt_ci,
    fmt_int,
    fmt_n,
    fmt_seconds,
    fmt_value,
    plot_figure,
    table,
)
from rewardhedge.report.style import AGG_NAMES, curve_colors, curve_label
from rewardhedge.report.validate import as_array, check_lab, number

__all__ = ["lab_section"]

MAX_EXAMPLES = 12


def _header(lab: Mapping[str, Any]) -> str:
    facts: list[tuple[str, str]] = []
    if lab.get("created"):
        facts.append(("created", fmt_value(lab["created"])))
    if lab.get("machine"):
        facts.append(("machine", fmt_value(lab["machine"], 120)))
    config = lab.get("config")
    if isinstance(config, Mapping):
        facts += [(str(k), fmt_value(v)) for k, v in config.items()]
    ns = lab["ns"]
    facts.append(("n", ", ".join(fmt_n(n) for n in ns)))
    items = "".join(f"<div><b>{esc(k)}</b>{esc(v)}</div>" for k, v in facts)
    out = f'<div class="facts">{items}</div>'
    timing = lab.get("timing")
    if isinstance(timing, Mapping) and timing:
        parts = [
            f"{esc(str(k).removesuffix('_s'))} <b>{esc(fmt_seconds(v))}</b>"
            for k, v in timing.items()
        ]
        out += f'<p class="muted">Timing: {" · ".join(parts)}</p>'
    return out


def _gold_at_max(curve: Mapping[str, Any]) -> tuple[float, float, float]:
    g = curve.get("gold_at_max_n")
    if isinstance(g, Mapping):
        return number(g.get("iqm")), number(g.get("ci_low")), number(g.get("ci_high"))
    gold = curve["gold"]
    return tuple(number(gold[k][-1]) for k in ("iqm", "ci_low", "ci_high"))


def _observed_peak(curve: Mapping[str, Any], ns: Sequence[Any]) -> float:
    if curve.get("peak_n_observed") is not None:
        return number(curve["peak_n_observed"])
    iqm = as_array(curve["gold"]["iqm"], "iqm")
    return number(ns[int(np.nanargmax(iqm))]) if np.isfinite(iqm).any() else math.nan


def _glance(lab: Mapping[str, Any]) -> str:
    """One or two sentences: the best curve at the largest n, and who overoptimises."""
    curves, ns = lab["curves"], lab["ns"]
    at_max = [(_gold_at_max(c)[0], i) for i, c in enumerate(curves)]
    at_max = [(g, i) for g, i in at_max if math.isfinite(g)]
    if not at_max:
        return ""
    g, best = max(at_max)
    lo, hi = _gold_at_max(curves[best])[1:]
    kl_max = number(lab["kl"][-1])
    text = (
        f"At n = {esc(fmt_n(ns[-1]))} (KL ≈ {esc(fmt(kl_max, 2))} nats) the highest gold IQM "
        f"is <b>{esc(curve_label(curves[best]))}</b>: {esc(fmt(g))} "
        f"{esc(fmt_ci(lo, hi))}."
    )
    falling, flat = [], []
    for c in curves:
        iqm = as_array(c["gold"]["iqm"], "iqm")
        peak_n = _observed_peak(c, ns)
        if not np.isfinite(iqm).any() or not math.isfinite(peak_n) or peak_n >= number(ns[-1]):
            continue
        name = f"{esc(curve_label(c))} (peak at n = {esc(fmt_n(peak_n))})"
        high_at_max = _gold_at_max(c)[2]
        # "Clearly falls": the peak IQM lies above the whole CI at the largest n.
        (falling if high_at_max < float(np.nanmax(iqm)) else flat).append(name)
    if falling:
        text += (
            " Gold reward peaks and then falls clearly (the peak lies above the CI at the "
            "largest n), the signature of overoptimisation, for: " + "; ".join(falling) + "."
        )
    if flat:
        text += (
            " Peaked, but within the CI at the largest n (flat rather than falling): "
            + "; ".join(flat)
            + "."
        )
    if not falling and not flat:
        text += " No curve's gold reward peaks before the largest n."
    return f'<p class="callout">{text}</p>'


def _curves_table(lab: Mapping[str, Any]) -> str:
    curves, ns = lab["curves"], lab["ns"]
    colors = curve_colors(curves)
    rows = []
    for i, c in enumerate(curves):
        g, lo, hi = _gold_at_max(c)
        fit = c.get("fit") if isinstance(c.get("fit"), Mapping) else None
        rho = c.get("rank_corr")
        rho_txt = f"{fmt(rho[0], 2)} → {fmt(rho[-1], 2)}" if rho else "—"
        swatch = f'<span class="swatch" style="background:{esc(colors[i])}"></span>'
        rows.append(
            [
                Raw(swatch + esc(curve_label(c))),
                fmt(g),
                fmt_ci(lo, hi),
                fmt_n(_observed_peak(c, ns)),
                fmt_n(fit.get("peak_n")) if fit else "no fit",
                fmt(fit.get("r2")) if fit else "—",
                rho_txt,
            ]
        )
    headers = [
        "curve",
        f"gold IQM at n = {fmt_n(ns[-1])}",
        "CI",
        "observed peak n",
        "fitted peak n",
        "fit R²",
        f"rank corr. n = {fmt_n(ns[0])} → {fmt_n(ns[-1])}",
    ]
    return table(
        headers,
        rows,
        numeric=range(1, 7),
        caption="Observed peak: the n with the largest gold IQM. Fitted peak: the maximum of "
        "Gao et al.'s best-of-n form d(α − βd), d = √KL ('no fit' where the fit was not "
        "made or failed). Rank corr.: proxy–gold Spearman ρ within pools.",
    )


def _accuracy_table(accuracy: Sequence[Mapping[str, Any]]) -> str:
    rows, classes = [], []
    for a in accuracy:
        name = str(a.get("name", "?"))
        acc = number(a.get("accuracy"))
        width = round(140 * acc) if math.isfinite(acc) else 0
        bar = Raw(f'<span class="bar" style="width:{max(0, min(width, 140))}px"></span>')
        rows.append(
            [
                name,
                fmt(acc),
                fmt_ci(a.get("ci_low"), a.get("ci_high")),
                bar,
                fmt(a.get("log_loss")),
                fmt_int(a.get("n")),
            ]
        )
        classes.append("baseline" if "baseline" in name.lower() else None)
    return table(
        ["model", "pairwise accuracy", "95% CI", "", "log loss", "pairs"],
        rows,
        numeric=(1, 2, 4, 5),
        row_classes=classes,
        cls="accuracy",
        caption="Held-out sandbox pairs, ordered by the true gold reward. The length baselines "
        "always prefer the longer (or the shorter) response: a reward model close to them has "
        "learned length rather than quality.",
    )


def _pick(title: str, pick: Mapping[str, Any], best_gold: float) -> str:
    gold, proxy = number(pick.get("gold")), number(pick.get("proxy"))
    cls = ""
    if math.isfinite(gold) and math.isfinite(best_gold):
        cls = "good" if gold >= best_gold - 1e-9 else "bad" if gold < best_gold - 0.5 else ""
    scores = f'gold <span class="{cls}">{esc(fmt(gold))}</span>'
    if "proxy" in pick:
        scores += f" · proxy {esc(fmt(proxy))}"
    props = pick.get("properties")
    props_html = ""
    if isinstance(props, Mapping) and props:
        spans = "".join(
            f"<span><b>{esc(k)}</b>: {esc(fmt_value(v, 60))}</span>" for k, v in props.items()
        )
        props_html = f'<p class="props">{spans}</p>'
    return (
        f'<div class="pick"><h4>{esc(title)}</h4><div class="scores">{scores}</div>'
        f'{props_html}<div class="text">{esc(pick.get("response", ""))}</div></div>'
    )


def _examples(examples: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for k, ex in enumerate(examples[:MAX_EXAMPLES]):
        if not isinstance(ex, Mapping):
            continue
        agg = str(ex.get("aggregation", "?"))
        agg_name = AGG_NAMES.get(agg, agg)
        best = ex.get("best") if isinstance(ex.get("best"), Mapping) else {}
        best_gold = number(best.get("gold"))
        picks = []
        for key, title in (
            ("single", "single model's pick"),
            ("ensemble", f"ensemble's pick ({agg_name})"),
            ("best", "best candidate in the pool (by gold)"),
        ):
            if isinstance(ex.get(key), Mapping):
                picks.append(_pick(title, ex[key], best_gold))
        out.append(
            f'<div class="example"><h3>Example {k + 1}: best of n = {esc(fmt_n(ex.get("n")))}, '
            f"ensemble aggregation {esc(agg_name)}</h3>"
            f'<div class="prompt"><b>Prompt</b><div class="text">{esc(ex.get("prompt", ""))}'
            f'</div></div><div class="picks">{"".join(picks)}</div></div>'
        )
    if len(examples) > MAX_EXAMPLES:
        out.append(f'<p class="muted">Showing {MAX_EXAMPLES} of {len(examples)} examples.</p>')
    return "".join(out)


def lab_section(
    lab: Mapping[str, Any], *, anchor: str, heading: str, where: str = "result"
) -> tuple[str, list[tuple[str, str]]]:
    """The HTML of one lab result, and its ``(anchor, label)`` table of contents.

    Args:
        lab: the lab JSON dict.
        anchor: a page-unique id prefix (also salts the SVG ids).
        heading: the section heading (plain text); empty for none.
        where: how to name ``lab`` in error messages.

    Raises:
        ReportError: if a field the plots need is missing or malformed.
    """
    check_lab(lab, where)
    toc: list[tuple[str, str]] = []
    parts = [f'<section id="{esc(anchor)}">']
    if heading:
        parts.append(f'<h2 class="result">{esc(heading)}</h2>')
    parts.append(_header(lab))

    def sub(key: str, title: str, body: str) -> None:
        toc.append((f"{anchor}-{key}", title))
        parts.append(f'<h2 id="{esc(anchor)}-{key}">{esc(title)}</h2>{body}')

    if not lab["curves"]:
        parts.append('<p class="muted">This lab result has no curves.</p>')
    else:
        gold_svg = plots.kl_curves_svg(lab, "gold", salt=f"{anchor}-gold")
        sub(
            "gold",
            "Gold reward vs KL",
            _glance(lab)
            + plot_figure(
                gold_svg or "",
                "gold-vs-kl",
                "Expected gold reward of best-of-n (order-statistics estimate from one pool): "
                "solid line = IQM over seeds, band = bootstrap CI. Dashed lines repeat the single "
                "model's and the ensemble's mean curves for reference. Star and thin vertical "
                "line: peak of the fitted Gao et al. curve (the fit itself is dotted). Top "
                "ticks: n.",
            ),
        )
        sub("curves", "Curves at a glance", _curves_table(lab))
        proxy_svg = plots.kl_curves_svg(lab, "proxy", salt=f"{anchor}-proxy")
        sub(
            "proxy",
            "Proxy reward vs KL",
            plot_figure(
                proxy_svg or "",
                "proxy-vs-kl",
                "What the optimiser sees: the proxy reward (the aggregated reward-model score) "
                "of the best-of-n pick, IQM over seeds with CI band. Its scale differs from the "
                "gold reward's. A proxy that keeps rising while gold falls is being hacked.",
            ),
        )
        rank_svg = plots.rank_corr_svg(lab, salt=f"{anchor}-rank")
        cells = []
        if rank_svg:
            cells.append(
                plot_figure(
                    rank_svg,
                    "rank-corr",
                    "Spearman rank correlation of proxy and gold within the pools, along n "
                    "(dashed: single model). Where it drops, proxy and gold stop agreeing.",
                    wide=False,
                )
            )
        rel = lab.get("reliability")
        rel_svg = plots.reliability_svg(rel, salt=f"{anchor}-rel") if rel else None
        if rel_svg:
            cells.append(
                plot_figure(
                    rel_svg,
                    "reliability",
                    "Calibration of P(chosen ≻ rejected) on held-out pairs, equal-width bins, "
                    "symmetrised; ECE in the legend. Points on the diagonal are calibrated.",
                    wide=False,
                )
            )
        if cells:
            sub(
                "agreement",
                "Proxy–gold agreement and calibration",
                f'<div class="row">{"".join(cells)}</div>',
            )
    if lab.get("accuracy"):
        sub("accuracy", "Pairwise accuracy", _accuracy_table(lab["accuracy"]))
    if lab.get("examples"):
        sub(
            "examples",
            "Examples: where the single model and the ensemble disagree",
            '<p class="muted">Picks at the largest n where the single model and the ensemble '
            "chose different responses. Gold in green: the pick is the best candidate; red: "
            "it is more than 0.5 below it.</p>" + _examples(lab["examples"]),
        )
    parts.append("</section>")
    return "\n".join(parts), toc
