"""The report section for the evaluation JSON of :func:`rewardhedge.evaluate.evaluate_pairwise`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rewardhedge.report import plots
from rewardhedge.report.html import esc, fmt, fmt_ci, fmt_int, plot_figure, table
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


def eval_section(
    metrics: Mapping[str, Any], *, anchor: str, heading: str
) -> tuple[str, list[tuple[str, str]]]:
    """The HTML of one evaluation result, and its ``(anchor, label)`` table of contents.

    Args:
        metrics: the ``evaluate_pairwise`` dict (or the same read back from JSON).
        anchor: a page-unique id prefix (also salts the SVG ids).
        heading: the section heading (plain text); empty for none.
    """
    level = number(metrics.get("ci_level"))
    level_txt = f"{level:.0%}" if level == level else "95%"
    toc = [(f"{anchor}-metrics", "Metrics")]
    rows = _metric_rows(metrics)
    classes = ["baseline" if r[0].startswith("baseline") else None for r in rows]
    parts = [f'<section id="{esc(anchor)}">']
    if heading:
        parts.append(f'<h2 class="result">{esc(heading)}</h2>')
    parts.append(f'<h2 id="{esc(anchor)}-metrics">Metrics</h2>')
    parts.append(
        table(
            ["metric", "value", f"{level_txt} CI / range", "pairs"],
            rows,
            numeric=(1, 2, 3),
            row_classes=classes,
            cls="metrics",
            caption="Accuracy from the ensemble-mean rewards, bootstrap CI over pairs. The "
            "length baselines always prefer the longer (or shorter) response.",
        )
    )
    cal_parts, cal_toc = _calibration_parts(metrics, anchor)
    parts += cal_parts
    toc += cal_toc
    subsets = metrics.get("subsets")
    if isinstance(subsets, Mapping) and subsets:
        subsets = {str(k): v for k, v in subsets.items() if isinstance(v, Mapping)}
        toc.append((f"{anchor}-subsets", "Per subset"))
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
        parts.append(f'<h2 id="{esc(anchor)}-subsets">Accuracy per subset</h2>')
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
    parts.append("</section>")
    return "\n".join(parts), toc
