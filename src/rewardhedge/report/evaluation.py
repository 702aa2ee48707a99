"""The report section for the evaluation JSON (``rewardhedge eval --json``, ``docs/eval-json.md``).

The core pairwise parts (metrics, calibration, uncertainty, per subset) are
here; the optional blocks are drawn by :mod:`rewardhedge.report.benchmarks`
and :mod:`rewardhedge.report.diagnostics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from rewardhedge.report import plots
from rewardhedge.report.benchmarks import (
    Block,
    one_to_many_block,
    pools_block,
    rewardbench_block,
    steps_block,
)
from rewardhedge.report.diagnostics import (
    comparison_block,
    controls_block,
    members_block,
    perturbation_block,
    timing_block,
)
from rewardhedge.report.html import esc, fmt, fmt_ci, fmt_int, fmt_value, plot_figure, table
from rewardhedge.report.validate import number

__all__ = ["eval_section"]


def _metric_rows(m: Mapping[str, Any]) -> list[list[str]]:
    """Rows (metric, value, CI or range, n), skipping keys that are absent."""
    n = fmt_int(m.get("n_pairs"))
    rows: list[list[str]] = []
    if "pairwise_accuracy" in m:
        ties = " (ties count half)" if m.get("ties") == "half" else ""
        ci = fmt_ci(m.get("accuracy_ci_low"), m.get("accuracy_ci_high"), 4)
        rows.append([f"pairwise accuracy{ties}", fmt(m["pairwise_accuracy"], 4), ci, n])
    for key, label in (("log_loss", "log loss"), ("brier", "Brier score")):
        if key in m:
            rows.append([label, fmt(m[key], 4), "", n])
    if "mean_margin" in m:
        rows.append(["mean margin r(chosen) − r(rejected)", fmt(m["mean_margin"], 4), "", n])
    if "n_ties" in m:
        rows.append(["tied pairs", fmt_int(m["n_ties"]), "", n])
    if "member_accuracy_mean" in m:
        rng = fmt_ci(m.get("member_accuracy_min"), m.get("member_accuracy_max"), 4)
        rows.append(
            [
                f"member accuracy, mean of {fmt_int(m.get('n_members'))} members",
                fmt(m["member_accuracy_mean"], 4),
                "range " + rng,
                n,
            ]
        )
    if "mean_epistemic_std" in m:
        rows.append(["mean epistemic std", fmt(m["mean_epistemic_std"], 4), "", n])
    baselines = m.get("length_baseline")
    if isinstance(baselines, Mapping):
        for prefer, base in baselines.items():
            if isinstance(base, Mapping):
                ci = fmt_ci(base.get("ci_low"), base.get("ci_high"), 4)
                rows.append(
                    [f"baseline: prefer the {prefer} response", fmt(base.get("accuracy"), 4), ci, n]
                )
    if "length_reward_corr" in m:
        rows.append(["Spearman ρ, length vs reward", fmt(m["length_reward_corr"], 4), "", ""])
    matched = m.get("length_matched")
    if isinstance(matched, Mapping):
        tol = number(matched.get("tolerance"))
        tol_text = f"±{100 * tol:.0f}%, " if math.isfinite(tol) else ""
        n_matched = fmt_int(matched.get("n_pairs"))
        rows.append(
            [
                f"accuracy, length-matched ({tol_text}n={n_matched})",
                fmt(matched.get("accuracy"), 4),
                fmt_ci(matched.get("ci_low"), matched.get("ci_high"), 4),
                n_matched,
            ]
        )
    return rows


def _calibration_rows(cal: Mapping[str, Any]) -> list[list[str]]:
    """(metric, with temperature, before it, a calibrated model's floor)."""
    before = cal.get("before_temperature") or {}
    floor = cal.get("noise_floor") or {}
    rows = [["temperature T", fmt(cal.get("temperature"), 3), "1", ""]]
    for key, label in (
        ("ece_equal_mass", "ECE, equal-mass bins"),
        ("ece_equal_width", "ECE, equal-width bins"),
    ):
        if key in cal:
            rows.append(
                [label, fmt(cal[key], 4), fmt(before.get(key, cal[key]), 4), fmt(floor.get(key), 4)]
            )
    return rows


def _uncertainty_rows(metrics: Mapping[str, Any]) -> list[list[str]]:
    """(uncertainty, misorder AUROC, AURC, OOD AUROC) for every per-pair uncertainty."""
    unc = metrics.get("uncertainty") or {}
    ood = (metrics.get("ood") or {}).get("pair_auroc") or {}
    return [
        [str(name), fmt(q.get("misorder_auroc"), 3), fmt(q.get("aurc"), 4), fmt(ood.get(name), 3)]
        for name, q in unc.items()
        if isinstance(q, Mapping)
    ]


def _calibration_parts(
    metrics: Mapping[str, Any], anchor: str
) -> tuple[list[str], list[tuple[str, str]]]:
    parts: list[str] = []
    toc: list[tuple[str, str]] = []
    cal = metrics.get("calibration")
    if isinstance(cal, Mapping) and "temperature" in cal:
        toc.append((f"{anchor}-calibration", "Calibration"))
        parts.append(f'<h2 id="{esc(anchor)}-calibration">Calibration</h2>')
        parts.append(
            table(
                ["metric", "with T", "before T", "calibrated-model floor"],
                _calibration_rows(cal),
                numeric=(1, 2, 3),
                cls="calibration",
                caption="Symmetrised ECE of P(chosen ≻ rejected). The floor is the mean ECE a "
                "perfectly calibrated model with these probabilities shows on this many pairs.",
            )
        )
        rel = cal.get("reliability_equal_width")
        svg = (
            plots.reliability_svg([{"name": "this model", **rel}], salt=f"{anchor}-rel")
            if isinstance(rel, Mapping)
            else None
        )
        if svg:
            parts.append(
                plot_figure(
                    svg,
                    "reliability",
                    "Reliability of P(chosen ≻ rejected), equal-width bins, both orders of every "
                    "pair (symmetrised); point size and bars: pairs per bin.",
                    wide=False,
                )
            )
    rows = _uncertainty_rows(metrics)
    if rows:
        toc.append((f"{anchor}-uncertainty", "Uncertainty quality"))
        ood = metrics.get("ood") or {}
        caption = "AUROC for finding misordered pairs (0.5 = chance) and AURC (lower is better)"
        if ood:
            caption += (
                f"; OOD AUROC for telling {fmt_int(ood.get('n_out'))} out-of-distribution pairs "
                f"from these (response epistemic variance: "
                f"{fmt(ood.get('response_epistemic_auroc'), 3)})"
            )
        parts.append(f'<h2 id="{esc(anchor)}-uncertainty">Uncertainty quality</h2>')
        parts.append(
            table(
                ["uncertainty", "misorder AUROC", "AURC", "OOD AUROC"],
                rows,
                numeric=(1, 2, 3),
                cls="uncertainty",
                caption=caption + ".",
            )
        )
    return parts, toc


def _facts(metrics: Mapping[str, Any]) -> str:
    """Task, model and data of a ``rewardhedge.eval`` result, as a facts box (empty if none)."""
    facts = [
        (label, fmt_value(metrics[key], 160))
        for key, label in (("task", "task"), ("model", "model"), ("data", "data"))
        if metrics.get(key) is not None
    ]
    if not facts:
        return ""
    items = "".join(f"<div><b>{esc(k)}</b>{esc(v)}</div>" for k, v in facts)
    return f'<div class="facts">{items}</div>'


def _metrics_part(metrics: Mapping[str, Any], anchor: str, level_txt: str) -> Block:
    rows = _metric_rows(metrics)
    if not rows:
        return [], []
    classes = ["baseline" if r[0].startswith("baseline") else None for r in rows]
    expanded = (
        "One-to-many rows evaluated as their expanded (chosen, rejected) pairs. "
        if metrics.get("task") == "one_to_many"
        else ""
    )
    table_html = table(
        ["metric", "value", f"{level_txt} CI / range", "pairs"],
        rows,
        numeric=(1, 2, 3),
        row_classes=classes,
        cls="metrics",
        caption=expanded + "Accuracy from the ensemble-mean rewards, bootstrap CI over pairs. "
        "The length baselines always prefer the longer (or shorter) response.",
    )
    return [f'<h2 id="{esc(anchor)}-metrics">Metrics</h2>', table_html], [
        (f"{anchor}-metrics", "Metrics")
    ]


def _subsets_part(metrics: Mapping[str, Any], anchor: str, level_txt: str) -> Block:
    subsets = metrics.get("subsets")
    if not isinstance(subsets, Mapping) or not subsets:
        return [], []
    subsets = {str(k): v for k, v in subsets.items() if isinstance(v, Mapping)}
    sub_rows = [
        [
            name,
            fmt(s.get("accuracy"), 4),
            fmt_ci(s.get("ci_low"), s.get("ci_high"), 4),
            fmt_int(s.get("n")),
        ]
        for name, s in subsets.items()
    ]
    svg = plots.subset_accuracy_svg(
        subsets, metrics.get("pairwise_accuracy"), salt=f"{anchor}-subsets"
    )
    title = (
        "Pairwise accuracy per subset"
        if metrics.get("task") == "one_to_many"
        else ("Accuracy per subset")
    )
    parts = [f'<h2 id="{esc(anchor)}-subsets">{title}</h2>']
    if svg:
        parts.append(
            plot_figure(
                svg,
                "subset-accuracy",
                f"Pairwise accuracy per subset with {level_txt} bootstrap CI; dotted: "
                "chance, dashed: overall.",
                wide=False,
            )
        )
    parts.append(
        table(
            ["subset", "accuracy", f"{level_txt} CI", "pairs"],
            sub_rows,
            numeric=(1, 2, 3),
            cls="subsets",
        )
    )
    return parts, [(f"{anchor}-subsets", "Per subset")]


def eval_section(
    metrics: Mapping[str, Any], *, anchor: str, heading: str
) -> tuple[str, list[tuple[str, str]]]:
    """The HTML of one evaluation result, and its ``(anchor, label)`` table of contents.

    Shows the metrics table, calibration, uncertainty and per-subset accuracy
    of pair and one-to-many results, and each optional block of the eval JSON
    (``docs/eval-json.md``) that is present: RewardBench sections, one chosen
    vs many rejected, best-of-n pools, ensemble members, a comparison with
    another model, prompt perturbations, controls and timing; or the step task's
    metrics. A pools or steps result has no pairwise metrics, so those parts are skipped.

    Args:
        metrics: the eval JSON, or an older ``evaluate_pairwise`` dict without ``"kind"``.
        anchor: a page-unique id prefix (also salts the SVG ids).
        heading: the section heading (plain text); empty for none.
    """
    level = number(metrics.get("ci_level"))
    level_txt = f"{level:.0%}" if level == level else "95%"
    no_pairs = metrics.get("task") in ("pools", "steps")
    parts = [f'<section id="{esc(anchor)}">']
    if heading:
        parts.append(f'<h2 class="result">{esc(heading)}</h2>')
    facts = _facts(metrics)
    if facts:
        parts.append(facts)
    toc: list[tuple[str, str]] = []
    builders: list[Callable[[Mapping[str, Any], str, str], Block]] = []
    if not no_pairs:
        builders.append(_metrics_part)
    builders += [rewardbench_block, one_to_many_block, pools_block, steps_block]
    if not no_pairs:
        builders.append(_calibration_block)
        builders.append(_subsets_part)
    builders += [
        members_block,
        comparison_block,
        perturbation_block,
        controls_block,
        timing_block,
    ]
    for build in builders:
        html, entries = build(metrics, anchor, level_txt)
        parts += html
        toc += entries
    parts.append("</section>")
    return "\n".join(parts), toc


def _calibration_block(metrics: Mapping[str, Any], anchor: str, level_txt: str) -> Block:
    return _calibration_parts(metrics, anchor)
