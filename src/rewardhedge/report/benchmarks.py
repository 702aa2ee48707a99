"""Benchmark blocks of the evaluation JSON: RewardBench sections, one-vs-many, best-of-n pools.

Each ``*_block`` function takes the whole eval dict, the section's anchor
and the CI level as text, and returns ``(html parts, toc entries)``; both are
empty when the block is absent or not a dict. Every string from the JSON goes
through :func:`~rewardhedge.report.html.esc` (directly or via
:func:`~rewardhedge.report.html.table`); numbers through the ``fmt`` helpers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rewardhedge.report import plots
from rewardhedge.report.html import esc, fmt, fmt_ci, fmt_int, plot_figure, table
from rewardhedge.report.style import AGG_NAMES
from rewardhedge.report.terminal import STEP_ROWS

__all__ = [
    "Block",
    "ci_cells",
    "heading",
    "one_to_many_block",
    "pools_block",
    "rewardbench_block",
]

Block = tuple[list[str], list[tuple[str, str]]]


def heading(anchor: str, slug: str, title: str) -> tuple[str, tuple[str, str]]:
    """An ``<h2>`` with id ``<anchor>-<slug>`` and its table-of-contents entry."""
    ident = f"{anchor}-{slug}"
    return f'<h2 id="{esc(ident)}">{esc(title)}</h2>', (ident, title)


def ci_cells(d: Any, digits: int = 4, value: str = "value") -> list[str]:
    """``[value, "[low, high]"]`` of a CI dict (``value``/``mean``/``accuracy`` + ``ci_low``/``ci_high``)."""
    if not isinstance(d, Mapping):
        return ["—", "—"]
    return [fmt(d.get(value), digits), fmt_ci(d.get("ci_low"), d.get("ci_high"), digits)]


def _names(values: Any) -> str:
    """A JSON list of names as ``"a, b, c"`` (plain text; escaped by the caller)."""
    if not isinstance(values, list | tuple) or not values:
        return "—"
    return ", ".join(str(v) for v in values)


# -- RewardBench v1 sections -----------------------------------------------------------------
def rewardbench_block(metrics: Mapping[str, Any], anchor: str, level: str) -> Block:
    """Section accuracies and the overall score of RewardBench v1, with a bar plot."""
    rb = metrics.get("rewardbench")
    if not isinstance(rb, Mapping):
        return [], []
    sections = rb.get("sections")
    sections = (
        {str(k): v for k, v in sections.items() if isinstance(v, Mapping)}
        if isinstance(sections, Mapping)
        else {}
    )
    score = rb.get("score") if isinstance(rb.get("score"), Mapping) else {}
    h2, toc = heading(anchor, "rewardbench", "RewardBench sections")
    parts = [h2]
    rows = [
        [
            name,
            *ci_cells(s, 4, "accuracy"),
            fmt_int(s.get("n")),
            _names(s.get("subsets")),
            _names(s.get("missing")),
        ]
        for name, s in sections.items()
    ]
    classes: list[str | None] = [None] * len(rows)
    if score:
        rows.append(
            [
                f"score (mean of {fmt_int(score.get('n_sections'))} sections)",
                *ci_cells(score, 4, "accuracy"),
                "",
                "",
                "",
            ]
        )
        classes.append("score")
    weighting = rb.get("weighting") or "RewardBench v1 example counts"
    caption = (
        f"Each section's accuracy is the mean of its subsets' accuracies weighted by "
        f"{weighting}; subsets missing from the data are skipped, as RewardBench does. The "
        f"score is the unweighted mean of the sections present. {level} bootstrap CIs."
    )
    svg = plots.subset_accuracy_svg(
        sections,
        score.get("accuracy"),
        salt=f"{anchor}-rewardbench",
        xlabel=f"accuracy ({level} CI)",
        overall_label="score",
        label="RewardBench section accuracy",
    )
    if rb.get("complete") is False:
        parts.append(
            '<p class="callout">Not every RewardBench v1 subset is in the data, so this score is '
            "not comparable with the leaderboard's.</p>"
        )
    unmapped = rb.get("unmapped_subsets")
    if isinstance(unmapped, list) and unmapped:
        parts.append(
            f'<p class="muted">Subsets that are not RewardBench v1 subsets, left out of the '
            f"sections: {esc(_names(unmapped))}.</p>"
        )
    if svg:
        parts.append(
            plot_figure(
                svg,
                "rewardbench-sections",
                f"Accuracy per RewardBench section with {level} bootstrap CI; dotted: chance, "
                "dashed: the score.",
                wide=False,
            )
        )
    parts.append(
        table(
            ["section", "accuracy", f"{level} CI", "pairs", "subsets present", "missing"],
            rows,
            numeric=(1, 2, 3),
            row_classes=classes,
            cls="rewardbench",
            caption=caption,
        )
    )
    return parts, [toc]


# -- one chosen vs many rejected -------------------------------------------------------------
def _o2m_row(label: str, d: Any, chance: Any, longer: Any, shorter: Any, n: Any) -> list[str]:
    return [label, *ci_cells(d), chance, fmt(longer, 4), fmt(shorter, 4), n]


def one_to_many_block(metrics: Mapping[str, Any], anchor: str, level: str) -> Block:
    """Strict accuracy, MRR and best-of-n of the chosen among all candidates, with baselines."""
    o2m = metrics.get("one_to_many")
    if not isinstance(o2m, Mapping):
        return [], []
    h2, toc = heading(anchor, "one-to-many", "One chosen vs many rejected")
    parts = [h2]
    cand = o2m.get("candidates_per_row")
    if isinstance(cand, Mapping):
        span = f"{fmt_int(cand.get('min'))}–{fmt_int(cand.get('max'))}"
        if cand.get("min") == cand.get("max"):
            span = fmt_int(cand.get("min"))
        cands = f", {span} candidates per row (mean {fmt(cand.get('mean'), 1)})"
    else:
        cands = ""
    parts.append(
        f"<p>{esc(fmt_int(o2m.get('n_rows')))} rows{esc(cands)}: each row has one chosen "
        "response and several rejected ones.</p>"
    )
    base = o2m.get("length_baseline") if isinstance(o2m.get("length_baseline"), Mapping) else {}
    longer = base.get("longer") if isinstance(base.get("longer"), Mapping) else {}
    shorter = base.get("shorter") if isinstance(base.get("shorter"), Mapping) else {}

    def base_value(side: Mapping[str, Any], key: str) -> Any:
        d = side.get(key)
        return d.get("value") if isinstance(d, Mapping) else None

    n_rows = fmt_int(o2m.get("n_rows"))
    rows = []
    for key, label in (
        ("accuracy", "accuracy (chosen above every rejected)"),
        ("mrr", "MRR of the chosen"),
        ("best_of_n", "best-of-n (ties: RewardBench 2 penalty)"),
    ):
        if key not in o2m:
            continue
        d = o2m.get(key)
        chance = fmt(d.get("chance"), 4) if isinstance(d, Mapping) and "chance" in d else "—"
        rows.append(
            _o2m_row(label, d, chance, base_value(longer, key), base_value(shorter, key), n_rows)
        )
    b4 = o2m.get("best_of_4")
    if isinstance(b4, Mapping):
        rows.append(
            _o2m_row(
                "best-of-4", b4, fmt(b4.get("chance"), 4), None, None, fmt_int(b4.get("n_rows"))
            )
        )
    parts.append(
        table(
            ["metric", "value", f"{level} CI", "chance", "prefer longer", "prefer shorter", "rows"],
            rows,
            numeric=(1, 2, 3, 4, 5, 6),
            cls="one-to-many",
            caption="Accuracy: the chosen response scores above every rejected one. MRR: mean "
            "of 1 / rank of the chosen. Best-of-n: the chosen is the top pick, a tie at the top "
            "counting 1 / (tied candidates), as RewardBench 2 scores it; chance is its value for "
            "random scores. Best-of-4: the same on rows with exactly 4 candidates. The length "
            "baselines score each candidate by its length (longer or shorter preferred).",
        )
    )
    subsets = o2m.get("subsets")
    if isinstance(subsets, Mapping) and subsets:
        sub_rows = [
            [
                str(name),
                fmt_int(s.get("n")),
                *ci_cells(s.get("accuracy")),
                *ci_cells(s.get("mrr")),
                *ci_cells(s.get("best_of_n")),
            ]
            for name, s in subsets.items()
            if isinstance(s, Mapping)
        ]
        parts.append("<h3>Per subset, one chosen vs many rejected</h3>")
        parts.append(
            table(
                [
                    "subset",
                    "rows",
                    "accuracy",
                    f"{level} CI",
                    "MRR",
                    f"{level} CI",
                    "best-of-n",
                    f"{level} CI",
                ],
                sub_rows,
                numeric=(1, 2, 3, 4, 5, 6, 7),
                cls="one-to-many-subsets",
            )
        )
    return parts, [toc]


# -- best-of-n pools -------------------------------------------------------------------------
def _mean_ci(d: Any, digits: int = 3) -> list[str]:
    return ci_cells(d, digits, "mean")


def _baseline_label(prefer: str) -> str:
    word = {"longer": "longest", "shorter": "shortest"}.get(prefer, prefer)
    return f"baseline: {word} response"


def pool_length_baselines(metrics: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The pools task's ``length_baseline`` entries that are dicts, by preference."""
    base = metrics.get("length_baseline")
    if not isinstance(base, Mapping):
        return {}
    return {str(k): v for k, v in base.items() if isinstance(v, Mapping)}


def pools_block(metrics: Mapping[str, Any], anchor: str, level: str) -> Block:
    """Gold reward of the best-of-n pick per aggregation, regret, win rate; baselines and plot."""
    if metrics.get("task") != "pools" and "aggregations" not in metrics:
        return [], []
    aggs = metrics.get("aggregations")
    aggs = (
        {str(k): v for k, v in aggs.items() if isinstance(v, Mapping)}
        if isinstance(aggs, Mapping)
        else {}
    )
    h2, toc = heading(anchor, "pools", "Best-of-n pools")
    parts = [
        h2,
        f"<p>{esc(fmt_int(metrics.get('n_pools')))} pools of candidate responses, "
        f"{esc(fmt_int(metrics.get('n_pools_with_gold')))} with gold rewards. Each aggregation "
        "of the ensemble's rewards picks one candidate per pool; the pick is scored by its "
        "gold reward.</p>",
    ]
    rows: list[list[str]] = []
    classes: list[str | None] = []
    plot_rows: list[dict[str, Any]] = []
    random_gold = best_gold = None
    for key, agg in aggs.items():
        label = str(agg.get("label") or AGG_NAMES.get(key, key))
        rows.append(
            [
                label,
                *_mean_ci(agg.get("gold")),
                *_mean_ci(agg.get("regret")),
                *_mean_ci(agg.get("win_vs_random"), 4),
                fmt_int(agg.get("n_pools_with_gold")),
            ]
        )
        classes.append(None)
        gold = agg.get("gold")
        if isinstance(gold, Mapping):
            plot_rows.append({"label": label, **gold, "baseline": False})
        if random_gold is None and isinstance(agg.get("random_gold"), Mapping):
            random_gold = agg["random_gold"]
        if best_gold is None and isinstance(agg.get("best_gold"), Mapping):
            best_gold = agg["best_gold"]
    for prefer, b in pool_length_baselines(metrics).items():
        label = _baseline_label(prefer)
        rows.append(
            [
                label,
                *_mean_ci(b.get("gold")),
                *_mean_ci(b.get("regret")),
                *_mean_ci(b.get("win_vs_random"), 4),
                "",
            ]
        )
        classes.append("baseline")
        if isinstance(b.get("gold"), Mapping):
            plot_rows.append({"label": label, **b["gold"], "baseline": True})
    for ref, label in (
        (random_gold, "reference: a random pick"),
        (best_gold, "reference: best in pool"),
    ):
        if ref is not None:
            rows.append([label, *_mean_ci(ref), "", "", "", "", ""])
            classes.append("baseline")
    if not aggs:
        parts.append('<p class="muted">This result has no aggregations.</p>')
    elif random_gold is None and not plot_rows:
        parts.append(
            '<p class="muted">No pool has gold rewards, so the picks cannot be scored.</p>'
        )
    svg = plots.pool_gold_svg(plot_rows, random_gold, best_gold, salt=f"{anchor}-pools")
    if svg:
        parts.append(
            plot_figure(
                svg,
                "pool-gold",
                f"Mean gold reward of the pick per aggregation with {level} bootstrap CI over "
                "pools (grey squares: length baselines). Dotted: a random pick; dashed: the best "
                "candidate in each pool; bands: their CIs.",
                wide=False,
            )
        )
    if aggs:
        parts.append(
            table(
                [
                    "aggregation",
                    "gold of pick",
                    f"{level} CI",
                    "regret",
                    f"{level} CI",
                    "win vs random",
                    f"{level} CI",
                    "pools with gold",
                ],
                rows,
                numeric=(1, 2, 3, 4, 5, 6, 7),
                row_classes=classes,
                cls="pools",
                caption="Regret: gold of the pool's best candidate minus gold of the pick (lower "
                "is better). Win vs random: how often the pick's gold beats a random candidate "
                "of the same pool, ties counting half (0.5 = no better than a random pick).",
            )
        )
    return parts, [toc]


def pool_controls_rows(metrics: Mapping[str, Any]) -> list[Sequence[str]]:
    """(control, value, CI) rows for the pools task: length baselines' gold, length–reward ρ."""
    rows: list[Sequence[str]] = [
        [f"{_baseline_label(prefer)}: gold of pick", *_mean_ci(b.get("gold"))]
        for prefer, b in pool_length_baselines(metrics).items()
    ]
    if "length_reward_corr" in metrics:
        rows.append(["Spearman ρ, length vs reward", fmt(metrics["length_reward_corr"], 4), ""])
    return rows


def steps_block(metrics: Mapping[str, Any], anchor: str, level: str) -> Block:
    """The step task (``"task": "steps"``): per-step accuracy and AUROC, and ProcessBench's
    first-error detection, each with its CI over solutions."""
    if metrics.get("task") != "steps":
        return [], []
    h2, toc = heading(anchor, "steps", "Process reward: steps and first errors")
    threshold = metrics.get("threshold") if isinstance(metrics.get("threshold"), Mapping) else {}
    values = threshold.get("values") or []
    cut = ", ".join(fmt(v, 3) for v in values) if isinstance(values, list) else "—"
    rows = []
    for row in STEP_ROWS:
        block: Any = metrics
        for key in row.path:
            block = block.get(key) if isinstance(block, Mapping) else None
        rows.append([row.html_label, *ci_cells(block), row.over])
    parts = [
        h2,
        f"<p>{esc(fmt_int(metrics.get('n_solutions')))} solutions "
        f"({esc(fmt_int(metrics.get('n_erroneous')))} with a first error, "
        f"{esc(fmt_int(metrics.get('n_correct')))} all valid), "
        f"{esc(fmt_int(metrics.get('n_steps_labelled')))} labelled steps. A step is called "
        f"wrong when its reward is below the threshold ({esc(cut)}; "
        f"{esc(str(threshold.get('source', '—')))}).</p>",
        table(["metric", "value", f"{level} CI", "over"], rows, numeric=(1, 2), cls="metrics"),
    ]
    return parts, [toc]
