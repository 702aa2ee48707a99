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
    fmt_p,
    fmt_seconds,
    fmt_value,
    plot_figure,
    table,
)
from rewardhedge.report.style import (
    AGG_NAMES,
    agg_title,
    curve_colors,
    curve_label,
    ensemble_models,
    model_colors,
)
from rewardhedge.report.validate import VERDICTS, as_array, check_lab, number

__all__ = ["lab_section"]

MAX_EXAMPLES = 12


def _named_list(key: str, value: Any) -> str | None:
    """Lab v2's ``config.options`` (a dict per diversity option) as its names, and
    ``config.aggregations`` as ``uwo lam=0.5, …``: dumped as JSON they are cut off
    mid-way, and the tables below say the rest."""
    if key not in ("options", "aggregations") or not isinstance(value, list):
        return None
    if not all(isinstance(o, Mapping) and o.get("name") is not None for o in value):
        return None
    parts = []
    for o in value:
        params = [] if key == "options" else [f"{k}={fmt_value(v)}" for k, v in o.items()]
        parts.append(" ".join([str(o["name"]), *(p for p in params if not p.startswith("name="))]))
    return ", ".join(parts)


def _header(lab: Mapping[str, Any]) -> str:
    facts: list[tuple[str, str]] = []
    if lab.get("created"):
        facts.append(("created", fmt_value(lab["created"])))
    if lab.get("machine"):
        facts.append(("machine", fmt_value(lab["machine"], 120)))
    config = lab.get("config")
    if isinstance(config, Mapping):
        for k, v in config.items():
            names = _named_list(str(k), v)
            facts.append((str(k), names if names is not None else fmt_value(v)))
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


def compared_n(lab: Mapping[str, Any]) -> Any:
    """The n where curves are compared: ``paired_n`` (the largest n at least half the
    pools support), else the largest n (lab files before user pools)."""
    return lab.get("paired_n", lab["ns"][-1])


def _glance(lab: Mapping[str, Any]) -> str:
    """One or two sentences: the best curve at the largest n, and who overoptimises."""
    curves, ns = lab["curves"], lab["ns"]
    at_max = [(_gold_at_max(c)[0], i) for i, c in enumerate(curves)]
    at_max = [(g, i) for g, i in at_max if math.isfinite(g)]
    if not at_max:
        return ""
    g, best = max(at_max)
    lo, hi = _gold_at_max(curves[best])[1:]
    n_cmp = compared_n(lab)
    kl_max = number(lab["kl"][list(ns).index(n_cmp)] if n_cmp in ns else lab["kl"][-1])
    text = (
        f"At n = {esc(fmt_n(n_cmp))} (KL ≈ {esc(fmt(kl_max, 2))} nats) the highest gold IQM "
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
        f"gold IQM at n = {fmt_n(compared_n(lab))}",
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
        "made or failed). Rank corr.: proxy–gold Spearman ρ within pools." + _support(lab),
    )


def _support(lab: Mapping[str, Any]) -> str:
    """How many prompts each n rests on, when pools differ in size (user pools)."""
    counts = lab.get("n_prompts")
    if not counts or len(set(counts)) == 1:
        return ""
    pairs = ", ".join(f"n = {fmt_n(n)}: {c}" for n, c in zip(lab["ns"], counts, strict=False))
    return (
        f" Pools differ in size, so each n rests on the prompts whose pools have at least n "
        f"candidates of known gold ({pairs})."
    )


def _swatch(color: str | None) -> str:
    return f'<span class="swatch" style="background:{esc(color or "#999999")}"></span>'


def _signed(x: Any) -> str:
    v = number(x)
    return f"{v:+.3f}" if math.isfinite(v) else "—"


def _verdict(row: Mapping[str, Any]) -> str | None:
    """The row's ``verdict``, else read off its CI; ``None`` if neither is known."""
    if row.get("verdict") in VERDICTS:
        return str(row["verdict"])
    lo, hi = number(row.get("ci_low")), number(row.get("ci_high"))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return "helps" if lo > 0 else "hurts" if hi < 0 else "no difference"


def _level(rows: Sequence[Mapping[str, Any]]) -> str:
    level = next(
        (number(r.get("level")) for r in rows if math.isfinite(number(r.get("level")))), 0.95
    )
    return f"{100 * level:g}%"


def _paired_rows(lab: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``paired``'s rows grouped by option, in the curves' order of the options."""
    rows = [r for r in lab.get("paired") or [] if isinstance(r, Mapping)]
    models = ensemble_models(lab["curves"])
    models += [m for m in ensemble_models(rows) if m not in models]
    order = {m: k for k, m in enumerate(models)}
    return sorted(rows, key=lambda r: order.get(str(r.get("model")), len(order)))


def _paired_summary(rows: Sequence[Mapping[str, Any]], n_max: Any) -> str:
    """One plain sentence or two: which option × aggregation rows keep more (or less)
    gold than the single model, or that none differs."""
    n, level = esc(fmt_n(n_max)), esc(_level(rows))
    helps = [r for r in rows if _verdict(r) == "helps"]
    hurts = [r for r in rows if _verdict(r) == "hurts"]

    def names(rs: Sequence[Mapping[str, Any]]) -> str:
        return "; ".join(
            f"<b>{esc(curve_label(r))}</b> ({esc(_signed(r.get('diff')))})" for r in rs
        )

    if helps:
        text = (
            f"At n = {n}, {len(helps)} of {len(rows)} ensemble curves "
            f"{'keeps' if len(helps) == 1 else 'keep'} more gold than the "
            f"single model (the {level} CI of the paired difference lies above 0): "
            f"{names(helps)}."
        )
    else:
        text = (
            f"No ensemble keeps more gold than the single model at n = {n}, whatever its "
            f"diversity option or aggregation: none of the {len(rows)} paired {level} CIs "
            "lies above 0."
        )
    if hurts:
        text += (
            f" {len(hurts)} {'keeps' if len(hurts) == 1 else 'keep'} less (CI below 0): "
            f"{names(hurts)}."
        )
    elif not helps:
        text += " None keeps less either: the differences are within noise."
    single = number(rows[0].get("single_gold")) if rows else math.nan
    if math.isfinite(single):
        text += f" The single model's mean gold at n = {n} is {esc(fmt(single))}."
    return f'<p class="callout">{text}</p>'


def _paired_table(lab: Mapping[str, Any]) -> str:
    """Each ensemble curve against the single model at the largest n, with its verdict."""
    rows = _paired_rows(lab)
    if not rows:
        return ""
    colors = model_colors(lab["curves"])
    n_max, level = compared_n(lab), _level(rows)
    cells, classes = [], []
    for r in rows:
        model = str(r.get("model", "?"))
        verdict = _verdict(r)
        css = {"helps": "good", "hurts": "bad"}.get(verdict or "")
        cells.append(
            [
                Raw(_swatch(colors.get(model)) + esc(model)),
                agg_title(r),
                fmt(r.get("gold")),
                _signed(r.get("diff")),
                fmt_ci(r.get("ci_low"), r.get("ci_high")),
                fmt_p(r.get("p_value")),
                Raw(f'<span class="{css}">{esc(verdict)}</span>') if css else verdict or "—",
            ]
        )
        classes.append(verdict if verdict in ("helps", "hurts") else None)
    reps = next((r.get("reps") for r in rows if r.get("reps") is not None), None)
    pairs = next((r.get("n") for r in rows if r.get("n") is not None), None)
    return _paired_summary(rows, n_max) + table(
        [
            "option",
            "aggregation",
            f"mean gold at n = {fmt_n(n_max)}",
            "Δ vs single",
            f"{level} CI",
            "p",
            "verdict",
        ],
        cells,
        numeric=range(2, 6),
        row_classes=classes,
        cls="paired",
        caption=f"Gold of the best-of-n pick at the largest n, each ensemble curve minus the "
        f"single model, paired over the same {fmt_int(pairs)} seed × prompt cells; the CI "
        f"resamples seeds and prompts together ({fmt_int(reps)} bootstrap resamples), p is "
        "two-sided. helps: CI above 0; hurts: CI below 0; otherwise no difference.",
    )


def _length_table(lab: Mapping[str, Any]) -> str:
    """Does a proxy beat length or only ride it: each curve's best-of-N picks beside the
    longest and shortest candidate, and at equal length (±10% characters)."""
    block = lab.get("length_controls")
    if not isinstance(block, Mapping) or not block.get("rows"):
        return ""
    base = block.get("baselines") or {}
    cells = [
        [f"baseline: {k} candidate", fmt(base.get(k)), "", ""]
        for k in ("longest", "shortest", "random")
        if k in base
    ]
    for r in block["rows"]:
        diff = r.get("matched_diff")
        matched = (
            "—"
            if diff is None
            else f"{fmt(diff)} {fmt_ci(r.get('matched_ci_low'), r.get('matched_ci_high'))} "
            f"({fmt_int(r.get('n_matched'))} pools)"
        )
        cells.append(
            [
                str(r.get("label", "?")),
                fmt(r.get("gold")),
                f"{100 * number(r.get('longest_fraction')):.0f}%",
                matched,
            ]
        )
    return table(
        [
            "pick by",
            "gold of the best-of-N pick",
            "picks that are the longest",
            "Δ gold vs ±10% length",
        ],
        cells,
        numeric=range(1, 4),
        caption="Best of the whole pool, per seed, averaged per pool. A proxy that only rides "
        "length picks the longest candidate often and gains nothing over candidates of "
        "similar length (Δ near 0); one that sees quality keeps Δ above 0.",
    )


def _diversity_table(lab: Mapping[str, Any]) -> str:
    """Per option, how different its members are: an ensemble can only hedge where they
    disagree, so this tells a null result from a herd apart."""
    rows = [r for r in lab.get("diversity") or [] if isinstance(r, Mapping)]
    if not rows:
        return ""
    colors = model_colors(lab["curves"])
    cells = []
    for r in rows:
        model = str(r.get("model", "?"))
        cells.append(
            [
                Raw(_swatch(colors.get(model)) + esc(model)),
                fmt_int(r.get("n_members")),
                fmt(r.get("starc_pairwise_mean")),
                fmt(r.get("disagreement_in")),
                fmt(r.get("disagreement_shift")),
                fmt(r.get("shift_ratio"), 2),
            ]
        )
    return table(
        [
            "option",
            "members",
            "mean pairwise STARC distance",
            "disagreement in distribution",
            "under shift",
            "ratio shift / in",
        ],
        cells,
        numeric=range(1, 6),
        cls="diversity",
        caption="Whether the options make the members differ, mean over seeds. STARC distance: "
        "how differently two members rank responses on held-out in-distribution items (0 = "
        "the same preferences, 1 = every one reversed), averaged over member pairs. "
        "Disagreement: the std over members of an item's reward (members standardised), "
        "averaged over held-out items (in distribution) and over pool candidates padded "
        "beyond anything in training (under shift). The bootstrap-only ensemble is the "
        "herding baseline: members that differ only by seed and resample. Useful diversity "
        "shows as a larger STARC distance than that baseline and disagreement that grows "
        "under shift (ratio above 1), where hedging needs it.",
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


def _reliability_colors(lab: Mapping[str, Any]) -> dict[str, str]:
    """Reliability entries named after a model (``"views ensemble (K=5)"``) in its colour."""
    colors = model_colors(lab["curves"])
    out = {}
    for e in lab.get("reliability") or []:
        name = str(e.get("name", "")) if isinstance(e, Mapping) else ""
        for model, color in colors.items():
            if name == model or name.startswith(f"{model} "):
                out[name] = color
                break
    return out


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
        model = ex.get("model")
        who = f"{model} ensemble" if model and model != "ensemble" else "ensemble"
        picks = []
        for key, title in (
            ("single", "single model's pick"),
            ("ensemble", f"{who}'s pick ({agg_name})"),
            ("best", "best candidate in the pool (by gold)"),
        ):
            if isinstance(ex.get(key), Mapping):
                picks.append(_pick(title, ex[key], best_gold))
        # v1 names no model ("ensemble aggregation UWO"); v2 the option ("views ensemble, …").
        what = f"{who}, aggregation" if who != "ensemble" else "ensemble aggregation"
        out.append(
            f'<div class="example"><h3>Example {k + 1}: best of n = {esc(fmt_n(ex.get("n")))}, '
            f"{esc(what)} {esc(agg_name)}</h3>"
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
        multi = plots.by_aggregation(lab["curves"])
        refs = (
            "One panel per aggregation, one colour per ensemble (diversity option); the dashed "
            "grey line repeats the single model's mean curve in every panel."
            if multi
            else "Dashed lines repeat the single model's and the ensemble's mean curves for "
            "reference."
        )
        sub(
            "gold",
            "Gold reward vs KL",
            _glance(lab)
            + plot_figure(
                gold_svg or "",
                "gold-vs-kl",
                "Expected gold reward of best-of-n (order-statistics estimate from one pool): "
                f"solid line = IQM over seeds, band = bootstrap CI. {refs} Star and thin "
                "vertical line: peak of the fitted Gao et al. curve (the fit itself is dotted). "
                "Top ticks: n.",
            ),
        )
        paired = _paired_table(lab)
        if paired:
            sub("paired", "Does hedging keep more gold than the single model?", paired)
        diversity = _diversity_table(lab)
        if diversity:
            sub("diversity", "Member diversity", diversity)
        lengths = _length_table(lab)
        if lengths:
            sub("length", "Does the proxy beat length, or ride it?", lengths)
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
        rel_colors = _reliability_colors(lab) if multi else None
        rel_svg = (
            plots.reliability_svg(rel, salt=f"{anchor}-rel", colors=rel_colors) if rel else None
        )
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
