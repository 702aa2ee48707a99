"""Diagnostic blocks of the evaluation JSON: controls, ensemble members, comparison,
prompt perturbations and timing.

Same contract as :mod:`rewardhedge.report.benchmarks`: each ``*_block``
returns ``(html parts, toc entries)``, empty when its block is absent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rewardhedge.report.benchmarks import Block, ci_cells, heading, pool_controls_rows
from rewardhedge.report.html import esc, fmt, fmt_ci, fmt_int, fmt_p, fmt_seconds, table
from rewardhedge.report.validate import number

__all__ = [
    "batch_invariance_verdict",
    "comparison_block",
    "controls_block",
    "members_block",
    "perturbation_block",
    "significance_sentence",
    "timing_block",
]


STARC_NOTE = (
    "STARC distance in [0, 1]: 0 = the same ranking of responses within every prompt, up to a "
    "per-prompt shift and a positive scale; 1 = every preference reversed."
)


def _sci(x: Any) -> str:
    """A small difference or tolerance: ``0``, ``3.05e-07``; a dash if missing."""
    v = number(x)
    if not math.isfinite(v):
        return "—"
    return "0" if v == 0 else f"{v:.2e}"


def _signed(x: Any, digits: int = 4) -> str:
    v = number(x)
    return f"{v:+.{digits}f}" if math.isfinite(v) else "—"


def _yes_no(x: Any) -> str:
    return "yes" if x is True else "no" if x is False else "—"


# -- controls --------------------------------------------------------------------------------
def batch_invariance_verdict(bi: Mapping[str, Any]) -> bool | None:
    """PASS (``True``) or FAIL (``False``) of a ``batch_invariance`` dict; ``None`` if unknown.

    Its ``passed`` when present; otherwise PASS when the rewards are
    bit-identical or within tolerance and no pair changes order.
    """
    if isinstance(bi.get("passed"), bool):
        return bi["passed"]
    identical, within = bi.get("identical"), bi.get("within_tolerance")
    if not isinstance(identical, bool) and not isinstance(within, bool):
        return None
    flips = number(bi.get("n_order_flips"))
    return (identical is True or within is True) and not (math.isfinite(flips) and flips > 0)


def _pairs_checked(bi: Mapping[str, Any]) -> bool:
    """Whether pairs were checked for order flips (pools check none)."""
    n = number(bi.get("n_pairs_checked"))
    return "n_order_flips" in bi and not (math.isfinite(n) and n == 0)


def _flips(bi: Mapping[str, Any]) -> str:
    if not _pairs_checked(bi):
        return "not checked"
    return f"{fmt_int(bi.get('n_order_flips'))} of {fmt_int(bi.get('n_pairs_checked'))}"


def _batch_sentence(bi: Mapping[str, Any]) -> str:
    sizes = bi.get("batch_sizes")
    sizes_txt = (
        " and ".join(fmt_int(b) for b in sizes) if isinstance(sizes, list) and sizes else "—"
    )
    head = f"scores of {fmt_int(bi.get('n_items'))} items at batch sizes {sizes_txt} "
    if bi.get("identical") is True:
        diff = "are bit-identical"
    else:
        where = "within" if bi.get("within_tolerance") is True else "beyond"
        diff = (
            f"differ by at most {_sci(bi.get('max_abs_diff'))} (relative "
            f"{_sci(bi.get('max_rel_diff'))}), {where} the tolerance {_sci(bi.get('tolerance'))}"
        )
    flips = f"; {_flips(bi)} pairs change order" if _pairs_checked(bi) else ""
    return head + diff + flips + "."


def controls_block(metrics: Mapping[str, Any], anchor: str, level: str) -> Block:
    """Batch invariance as a PASS/FAIL line and a table; for pools also the length controls."""
    controls = metrics.get("controls")
    bi = controls.get("batch_invariance") if isinstance(controls, Mapping) else None
    bi = bi if isinstance(bi, Mapping) else None
    length_rows = pool_controls_rows(metrics) if metrics.get("task") == "pools" else []
    if bi is None and not length_rows:
        return [], []
    h2, toc = heading(anchor, "controls", "Controls")
    parts = [h2]
    if bi is not None:
        verdict = batch_invariance_verdict(bi)
        badge = {
            True: '<span class="good">PASS</span>',
            False: '<span class="bad">FAIL</span>',
            None: '<span class="muted">no verdict</span>',
        }[verdict]
        parts.append(
            f'<p class="check batch-invariance">{badge} Batch invariance: '
            f"{esc(_batch_sentence(bi))}</p>"
        )
        sizes = bi.get("batch_sizes")
        sizes_txt = ", ".join(fmt_int(x) for x in sizes) if isinstance(sizes, list) else "—"
        row = [
            fmt_int(bi.get("n_items")),
            sizes_txt,
            _sci(bi.get("max_abs_diff")),
            _sci(bi.get("max_rel_diff")),
            _sci(bi.get("tolerance")),
            _yes_no(bi.get("identical")),
            _yes_no(bi.get("within_tolerance")),
            _flips(bi),
        ]
        parts.append(
            table(
                [
                    "items",
                    "batch sizes",
                    "max |Δ reward|",
                    "max relative Δ",
                    "tolerance",
                    "bit-identical",
                    "within tolerance",
                    "pairs that flip",
                ],
                [row],
                numeric=(0, 1, 2, 3, 4),
                cls="batch-invariance",
                caption="The same items scored one at a time and in large batches: padding and "
                "batched kernels must not change a reward enough to reorder a pair. PASS: "
                "identical or within tolerance (absolute, relative to the largest reward), and "
                "no pair flips.",
            )
        )
    if length_rows:
        parts.append(
            table(
                ["length control", "value", f"{level} CI"],
                length_rows,
                numeric=(1, 2),
                row_classes=[
                    "baseline" if r[0].startswith("baseline") else None for r in length_rows
                ],
                cls="length-controls",
                caption="Gold reward of the candidate a pure length rule picks, and the Spearman "
                "correlation of response length and the model's reward over all candidates.",
            )
        )
    return parts, [toc]


# -- ensemble members ------------------------------------------------------------------------
def _interval(d: Any, digits: int = 4) -> list[str]:
    if not isinstance(d, Mapping):
        return ["—", "—"]
    return [fmt(d.get("point"), digits), fmt_ci(d.get("low"), d.get("high"), digits)]


def _numbers(values: Any) -> list[Any]:
    return list(values) if isinstance(values, list | tuple) else []


def members_block(metrics: Mapping[str, Any], anchor: str, level: str) -> Block:
    """Mean and IQM of member accuracy with CIs, per-member accuracy and STARC distance."""
    members = metrics.get("members")
    starc = metrics.get("starc")
    members = members if isinstance(members, Mapping) else None
    starc = starc if isinstance(starc, Mapping) else None
    if members is None and starc is None:
        return [], []
    h2, toc = heading(anchor, "members", "Ensemble members")
    parts = [h2]
    rows: list[list[str]] = []
    if members is not None:
        rows.append(["mean member accuracy", *_interval(members.get("mean"))])
        rows.append(["IQM of member accuracy", *_interval(members.get("iqm"))])
    if starc is not None:
        rows.append(["STARC distance to the ensemble mean, mean", fmt(starc.get("mean"), 4), ""])
        rows.append(["STARC distance to the ensemble mean, max", fmt(starc.get("max"), 4), ""])
    caption = STARC_NOTE
    if members is not None:
        tasks = members.get("tasks")
        tasks_txt = ", ".join(str(t) for t in tasks) if isinstance(tasks, list) and tasks else "—"
        caption = (
            f"{level} CIs from a stratified bootstrap over the {fmt_int(members.get('n_members'))} "
            f"members within tasks ({tasks_txt}; {fmt_int(members.get('reps'))} resamples); IQM: "
            "the mean of the middle 50%. " + caption
        )
    parts.append(
        table(
            ["statistic", "value", f"{level} CI"],
            rows,
            numeric=(1, 2),
            cls="members-summary",
            caption=caption,
        )
    )
    acc = _numbers(members.get("accuracy")) if members else []
    dist = _numbers(starc.get("member_to_mean")) if starc else []
    columns = [(h, v) for h, v in (("accuracy", acc), ("STARC distance to mean", dist)) if v]
    if columns:
        n = max(len(v) for _, v in columns)
        per = [
            [str(k + 1), *(fmt(v[k], 4) if k < len(v) else "—" for _, v in columns)]
            for k in range(n)
        ]
        parts.append(
            table(
                ["member", *(h for h, _ in columns)],
                per,
                numeric=range(len(columns) + 1),
                cls="members",
            )
        )
    return parts, [toc]


# -- comparison with another model -----------------------------------------------------------
def significance_sentence(cmp: Mapping[str, Any], level: str = "95%") -> str:
    """One sentence: is the accuracy difference significant at 5%? (p-value, else the CI)."""
    p = number(cmp.get("p_value"))
    lo, hi = number(cmp.get("ci_low")), number(cmp.get("ci_high"))
    diff = (
        f"The difference in accuracy, {_signed(cmp.get('diff'))} ({level} CI {fmt_ci(lo, hi, 4)}),"
    )
    if math.isfinite(p):
        sig = p < 0.05
        why = f"p = {p:.4f}" if p >= 1e-4 else "p < 0.0001"
    elif math.isfinite(lo) and math.isfinite(hi):
        sig = lo > 0 or hi < 0
        why = "its CI " + ("excludes" if sig else "includes") + " 0; no p-value"
    else:
        return "No p-value or CI was computed for the difference."
    return f"{diff} {'is' if sig else 'is not'} significant at 5% ({why})."


def comparison_block(metrics: Mapping[str, Any], anchor: str, level: str) -> Block:
    """Accuracy of both models, their difference with CI and p-value, and STARC distance."""
    cmp = metrics.get("comparison")
    if not isinstance(cmp, Mapping):
        return [], []
    other = str(cmp.get("other_model") or "the other model")
    this = str(metrics.get("model") or "this model")
    h2, toc = heading(anchor, "comparison", f"Comparison with {other}")
    rows = [
        [this, fmt(cmp.get("accuracy"), 4), "", ""],
        [other, fmt(cmp.get("other_accuracy"), 4), "", ""],
        [
            "difference (this − other)",
            _signed(cmp.get("diff")),
            fmt_ci(cmp.get("ci_low"), cmp.get("ci_high"), 4),
            fmt_p(cmp.get("p_value"), 4),
        ],
    ]
    if "starc_distance" in cmp:
        rows.append(
            [
                "STARC distance between the two rewards",
                fmt(cmp.get("starc_distance"), 4),
                fmt_ci(cmp.get("starc_ci_low"), cmp.get("starc_ci_high"), 4),
                "",
            ]
        )
    parts = [
        h2,
        f'<p class="callout">{esc(significance_sentence(cmp, level))}</p>',
        table(
            ["model", "accuracy", f"{level} CI", "p-value"],
            rows,
            numeric=(1, 2, 3),
            cls="comparison",
            caption=f"Both models on the same {fmt_int(cmp.get('n_pairs'))} pairs; paired "
            f"bootstrap over pairs ({fmt_int(cmp.get('reps'))} resamples). " + STARC_NOTE,
        ),
    ]
    return parts, [toc]


# -- prompt perturbations --------------------------------------------------------------------
def perturbation_block(metrics: Mapping[str, Any], anchor: str, level: str) -> Block:
    """Per perturbation kind: order consistency with CI, accuracy before → after, margin shift."""
    pert = metrics.get("perturbation")
    if not isinstance(pert, Mapping):
        return [], []
    kinds = pert.get("kinds")
    kinds = kinds if isinstance(kinds, Mapping) else {}
    h2, toc = heading(anchor, "perturbation", "Prompt perturbations")
    rows = [
        [
            str(name),
            fmt_int(k.get("n_pairs")),
            *ci_cells(k.get("consistency")),
            f"{fmt(k.get('accuracy'), 4)} → {fmt(k.get('accuracy_perturbed'), 4)}",
            _signed(k.get("accuracy_delta")),
            fmt(k.get("mean_abs_margin_shift"), 4),
        ]
        for name, k in kinds.items()
        if isinstance(k, Mapping)
    ]
    source = {
        "generated": "perturbations generated from the evaluation pairs",
        "file": "perturbed prompts read from a file",
        "generated+file": "generated perturbations and perturbed prompts read from a file",
    }.get(str(pert.get("source")), f"source: {pert.get('source')}")
    parts = [
        h2,
        table(
            [
                "perturbation",
                "pairs",
                "consistency",
                f"{level} CI",
                "accuracy → perturbed",
                "Δ accuracy",
                "mean |margin shift|",
            ],
            rows,
            numeric=(1, 2, 3, 4, 5, 6),
            cls="perturbation",
            caption=f"{source[:1].upper()}{source[1:]} ({fmt_int(pert.get('n_pairs'))} pairs). Consistency: "
            "the share of pairs the model orders the same way before and after the prompt is "
            "perturbed (1 = unaffected). Margin: r(chosen) − r(rejected).",
        ),
    ]
    return parts, [toc]


# -- timing ----------------------------------------------------------------------------------
def timing_block(metrics: Mapping[str, Any], anchor: str, level: str) -> Block:
    """Scoring and total wall time and the overhead ratio, as one line of facts."""
    timing = metrics.get("timing")
    if not isinstance(timing, Mapping):
        return [], []
    h2, toc = heading(anchor, "timing", "Timing")
    facts = [
        ("scoring", fmt_seconds(timing.get("scoring_s"))),
        ("total", fmt_seconds(timing.get("total_s"))),
        ("overhead ratio", fmt(timing.get("overhead_ratio"), 2)),
    ]
    items = "".join(f"<div><b>{esc(k)}</b>{esc(v)}</div>" for k, v in facts)
    return [h2, f'<div class="facts timing">{items}</div>'], [toc]
