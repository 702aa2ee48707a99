"""Terminal (rich) tables of the evaluation JSON: the pairwise metrics table, the suite's
blocks (RewardBench sections, one-to-many, controls, members, comparison, perturbations),
the best-of-n pools table and the length-controls table, plus their plain-text renderings.

Every function reads the plain JSON dict, skipping what is absent, so a dict
read back from an older file prints too. The HTML counterpart is
:func:`rewardhedge.report.render_report`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from rich.console import Console
from rich.table import Table

from rewardhedge.evaluate.pairwise_summary import CI_LEVEL

__all__ = [
    "fmt_interval",
    "fmt_number",
    "format_metrics",
    "format_pools",
    "length_matched_row",
    "length_rows_table",
    "length_table",
    "metrics_table",
    "pools_table",
    "suite_rows",
]

Row = tuple[str, str, str, str]


def fmt_number(x: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals; ``"n/a"`` for None or NaN (terminal tables)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    return f"{x:.{digits}f}"


def fmt_interval(low: Any, high: Any) -> str:
    """``"[low, high]"`` with :func:`fmt_number`."""
    return f"[{fmt_number(low)}, {fmt_number(high)}]"


def _value_row(label: str, d: Any, n: Any = "") -> Row | None:
    """A row for a ``{"value", "ci_low", "ci_high"}`` dict."""
    if not isinstance(d, Mapping):
        return None
    return (
        label,
        fmt_number(d.get("value")),
        fmt_interval(d.get("ci_low"), d.get("ci_high")),
        str(n),
    )


def _rewardbench_rows(rb: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name, sec in (rb.get("sections") or {}).items():
        missing = sec.get("missing") or []
        note = f" ({len(missing)} subsets missing)" if missing else ""
        rows.append(
            (
                f"RewardBench section: {name}{note}",
                fmt_number(sec.get("accuracy")),
                fmt_interval(sec.get("ci_low"), sec.get("ci_high")),
                str(sec.get("n", "")),
            )
        )
    score = rb.get("score") or {}
    if score:
        done = "" if rb.get("complete") else ", incomplete"
        rows.append(
            (
                f"RewardBench score (mean of {score.get('n_sections', '?')} sections{done})",
                fmt_number(score.get("accuracy")),
                fmt_interval(score.get("ci_low"), score.get("ci_high")),
                "",
            )
        )
    return rows


def _one_to_many_rows(block: Mapping[str, Any]) -> list[Row]:
    n = block.get("n_rows", "")
    rows = [
        _value_row("one-to-many accuracy (chosen beats all)", block.get("accuracy"), n),
        _value_row("one-to-many MRR", block.get("mrr"), n),
    ]
    bon = block.get("best_of_n")
    if isinstance(bon, Mapping):
        rows.append(
            _value_row(
                f"best-of-n, ties penalised (chance {fmt_number(bon.get('chance'))})", bon, n
            )
        )
    bo4 = block.get("best_of_4")
    if isinstance(bo4, Mapping):
        rows.append(_value_row("best-of-4, ties penalised", bo4, bo4.get("n_rows", "")))
    for prefer, base in (block.get("length_baseline") or {}).items():
        if isinstance(base, Mapping):
            rows.append(_value_row(f"one-to-many baseline: {prefer}", base.get("accuracy"), n))
    return [r for r in rows if r is not None]


def _control_rows(controls: Mapping[str, Any]) -> list[Row]:
    bi = controls.get("batch_invariance")
    if not isinstance(bi, Mapping):
        return []
    sizes = bi.get("batch_sizes") or ["?", "?"]
    verdict = "PASS" if bi.get("passed") else "FAIL"
    same = "bit-identical" if bi.get("identical") else f"max |Δ| {bi.get('max_abs_diff', 0):.2e}"
    return [
        (
            f"batch {sizes[0]} vs {sizes[-1]}: {verdict}",
            same,
            f"{bi.get('n_order_flips', '?')} order flips",
            str(bi.get("n_items", "")),
        )
    ]


def _member_rows(members: Mapping[str, Any], starc: Mapping[str, Any] | None) -> list[Row]:
    rows: list[Row] = []
    k = members.get("n_members", "?")
    for key, label in (("mean", "mean"), ("iqm", "IQM")):
        est = members.get(key)
        if isinstance(est, Mapping):
            rows.append(
                (
                    f"members' {label} accuracy ({k} members, stratified bootstrap)",
                    fmt_number(est.get("point")),
                    fmt_interval(est.get("low"), est.get("high")),
                    "",
                )
            )
    if isinstance(starc, Mapping) and starc.get("mean") is not None:
        rows.append(
            (
                "STARC distance member → ensemble mean",
                fmt_number(starc.get("mean")),
                f"max {fmt_number(starc.get('max'))}",
                str(k),
            )
        )
    return rows


def _comparison_rows(c: Mapping[str, Any]) -> list[Row]:
    n = c.get("n_pairs", "")
    rows = [
        (
            f"Δ accuracy vs {c.get('other_model', 'other')} (p = {fmt_number(c.get('p_value'), 4)})",
            fmt_number(c.get("diff")),
            fmt_interval(c.get("ci_low"), c.get("ci_high")),
            str(n),
        )
    ]
    if c.get("starc_distance") is not None:
        rows.append(
            (
                "STARC distance to the other model",
                fmt_number(c.get("starc_distance")),
                fmt_interval(c.get("starc_ci_low"), c.get("starc_ci_high")),
                str(n),
            )
        )
    return rows


def _perturbation_rows(p: Mapping[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for kind, k in (p.get("kinds") or {}).items():
        row = _value_row(
            f"order kept under '{kind}' prompts", k.get("consistency"), k.get("n_pairs", "")
        )
        if row is not None:
            rows.append(row)
    return rows


def suite_rows(metrics: Mapping[str, Any]) -> list[Row]:
    """Rows (metric, value, CI, n) for every suite block present in ``metrics``.

    Example:
        >>> suite_rows({"one_to_many": {"n_rows": 2, "mrr": {"value": 0.75, "ci_low": 0.5,
        ...     "ci_high": 1.0}}})[0]
        ('one-to-many MRR', '0.7500', '[0.5000, 1.0000]', '2')
    """
    rows: list[Row] = []
    if isinstance(metrics.get("rewardbench"), Mapping):
        rows += _rewardbench_rows(metrics["rewardbench"])
    if isinstance(metrics.get("one_to_many"), Mapping):
        rows += _one_to_many_rows(metrics["one_to_many"])
    if isinstance(metrics.get("controls"), Mapping):
        rows += _control_rows(metrics["controls"])
    if isinstance(metrics.get("members"), Mapping):
        rows += _member_rows(metrics["members"], metrics.get("starc"))
    if isinstance(metrics.get("comparison"), Mapping):
        rows += _comparison_rows(metrics["comparison"])
    if isinstance(metrics.get("perturbation"), Mapping):
        rows += _perturbation_rows(metrics["perturbation"])
    timing = metrics.get("timing")
    if isinstance(timing, Mapping) and timing.get("total_s") is not None:
        rows.append(
            (
                "wall time: total / scoring alone",
                f"{timing['total_s']:.1f}s",
                f"ratio {fmt_number(timing.get('overhead_ratio'), 2)}",
                "",
            )
        )
    return rows


def _stat(d: Any) -> tuple[str, str]:
    if not isinstance(d, Mapping):
        return "n/a", ""
    return fmt_number(d.get("mean")), fmt_interval(d.get("ci_low"), d.get("ci_high"))


def pools_table(metrics: Mapping[str, Any], title: str = "Best-of-n") -> Table:
    """Gold of the pick, regret and win rate vs a random pick per aggregation, with the
    length-only picks as baselines.

    Example:
        >>> t = pools_table({"aggregations": {"mean": {"label": "mean", "gold": {"mean": 1.0}}}})
        >>> t.row_count
        1
    """
    n = metrics.get("n_pools_with_gold", "")
    table = Table(title=f"{title} ({n} pools with gold)" if n != "" else title)
    for col in ("pick by", "gold of pick", "95% CI", "regret", "win vs random"):
        table.add_column(col, justify="left" if col == "pick by" else "right")
    rows: list[tuple[str, Mapping[str, Any]]] = [
        (str(a.get("label", key)), a) for key, a in (metrics.get("aggregations") or {}).items()
    ]
    rows += [
        (f"baseline: {prefer} candidate", b)
        for prefer, b in (metrics.get("length_baseline") or {}).items()
    ]
    for label, d in rows:
        gold, ci = _stat(d.get("gold"))
        table.add_row(label, gold, ci, _stat(d.get("regret"))[0], _stat(d.get("win_vs_random"))[0])
    for row in suite_rows({k: metrics[k] for k in ("controls", "timing") if k in metrics}):
        table.add_row(row[0], row[1], row[2], "", "")
    if metrics.get("length_reward_corr") is not None:
        table.add_row(
            "length-reward Spearman", fmt_number(metrics["length_reward_corr"]), "", "", ""
        )
    return table


def length_table(metrics: Mapping[str, Any], title: str = "Length controls") -> Table | None:
    """Per aggregation of an ``evaluate_pools`` dict: :func:`length_rows_table`; ``None``
    when the result has no length controls."""
    rows = [
        (str(a.get("label", key)), a["length_controls"])
        for key, a in (metrics.get("aggregations") or {}).items()
        if a.get("length_controls")
    ]
    return length_rows_table(rows, metrics.get("length_baselines"), title) if rows else None


def length_rows_table(
    rows: Sequence[tuple[str, Mapping[str, Any]]],
    baselines: Mapping[str, Any] | None,
    title: str = "Length controls",
    *,
    show_gold: bool = False,
) -> Table:
    """``(label, length_controls dict)`` rows: the share of picks that are their pool's
    longest candidate and the pick's gold minus that of candidates within ±10% of its
    length (see ``evaluate.length_controls``), the baselines' gold in the title."""
    if baselines:
        title += (
            f" (gold of the longest candidate {fmt_number(baselines.get('longest'))}, shortest "
            f"{fmt_number(baselines.get('shortest'))}, random {fmt_number(baselines.get('random'))})"
        )
    table = Table(title=title)
    cols = ["pick by", *(["gold of pick"] if show_gold else []), "longest picked",
            "Δ gold vs ±10% length", "95% CI", "pools"]  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "pick by" else "right")
    for label, lc in rows:
        diff = lc.get("matched_diff")
        table.add_row(
            label,
            *([fmt_number(lc.get("gold"))] if show_gold else []),
            f"{100 * lc['longest_fraction']:.0f}%",
            "—" if diff is None else fmt_number(diff),
            ""
            if diff is None
            else fmt_interval(lc.get("matched_ci_low"), lc.get("matched_ci_high")),
            str(lc.get("n_matched", "")),
        )
    return table


def length_matched_row(d: Any) -> Row | None:
    """The row of an ``evaluate_pairwise`` ``length_matched`` dict (accuracy on the pairs
    whose two responses are within ±10% of each other's length); ``None`` if absent.

    Example:
        >>> length_matched_row({"n_pairs": 2, "accuracy": 0.5, "ci_low": 0.0, "ci_high": 1.0,
        ...                     "tolerance": 0.1})
        ('accuracy, length-matched (±10%, n=2)', '0.5000', '[0.0000, 1.0000]', '2')
        >>> length_matched_row(None) is None
        True
    """
    if not isinstance(d, Mapping):
        return None
    n = d.get("n_pairs", "")
    tol = d.get("tolerance")
    finite = isinstance(tol, int | float) and not isinstance(tol, bool) and math.isfinite(tol)
    tol_text = f"±{100 * tol:.0f}%, " if finite else ""
    ci = "" if d.get("ci_low") is None else fmt_interval(d.get("ci_low"), d.get("ci_high"))
    return (
        f"accuracy, length-matched ({tol_text}n={n})",
        fmt_number(d.get("accuracy")),
        ci,
        str(n),
    )


def metrics_table(metrics: dict[str, Any], title: str = "Evaluation") -> Table:
    """A readable table of the dict that :func:`~rewardhedge.evaluate.evaluate_pairwise` returns.

    Rows: accuracy with its CI, log loss, Brier, mean margin, ties, member
    accuracy range, epistemic spread, both length baselines, the
    length-reward correlation, the accuracy on length-matched pairs,
    calibration and uncertainty, then one row per subset. Keys that are
    missing are skipped, so a dict read back from JSON (also an older one)
    works too.

    Args:
        metrics: the report dict.
        title: the table title.

    Returns:
        A ``rich.table.Table`` with columns Metric, Value, CI (or, for members,
        the min-max range) and n.

    Example:
        >>> t = metrics_table({"n_pairs": 3, "pairwise_accuracy": 2 / 3})
        >>> t.row_count
        1
    """
    level = metrics.get("ci_level", CI_LEVEL)
    table = Table(title=title)
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    table.add_column(f"{level:.0%} CI / range", justify="right")
    table.add_column("n", justify="right")
    n = str(metrics.get("n_pairs", ""))

    if "pairwise_accuracy" in metrics:
        ci = (
            fmt_interval(metrics["accuracy_ci_low"], metrics["accuracy_ci_high"])
            if "accuracy_ci_low" in metrics
            else ""
        )
        ties = " (ties half)" if metrics.get("ties") == "half" else ""
        table.add_row(f"pairwise accuracy{ties}", fmt_number(metrics["pairwise_accuracy"]), ci, n)
    for key, label in (
        ("log_loss", "log loss"),
        ("brier", "Brier"),
        ("mean_margin", "mean margin"),
    ):
        if key in metrics:
            table.add_row(label, fmt_number(metrics[key]), "", n)
    if "n_ties" in metrics:
        table.add_row("tied pairs", str(metrics["n_ties"]), "", n)
    if "member_accuracy_mean" in metrics:
        table.add_row(
            f"member accuracy ({metrics.get('n_members', '?')} members)",
            fmt_number(metrics["member_accuracy_mean"]),
            "range "
            + fmt_interval(metrics.get("member_accuracy_min"), metrics.get("member_accuracy_max")),
            n,
        )
    if "mean_epistemic_std" in metrics:
        table.add_row("mean epistemic std", fmt_number(metrics["mean_epistemic_std"]), "", n)
    for prefer, base in metrics.get("length_baseline", {}).items():
        table.add_row(
            f"baseline: prefer {prefer}",
            fmt_number(base.get("accuracy")),
            fmt_interval(base.get("ci_low"), base.get("ci_high")),
            n,
        )
    if "length_reward_corr" in metrics:
        table.add_row("length-reward Spearman", fmt_number(metrics["length_reward_corr"]), "", "")
    matched = length_matched_row(metrics.get("length_matched"))
    if matched is not None:
        table.add_row(*matched)
    cal = metrics.get("calibration", {})
    for key, label in (
        ("ece_equal_width", "ECE (equal-width bins)"),
        ("ece_equal_mass", "ECE (equal-mass bins)"),
    ):
        if key in cal:
            table.add_row(label, fmt_number(cal[key]), "", n)
    for name, q in metrics.get("uncertainty", {}).items():
        table.add_row(
            f"misorder AUROC: {name}",
            fmt_number(q.get("misorder_auroc")),
            f"AURC {fmt_number(q.get('aurc'))}",
            n,
        )
    ab = metrics.get("abstention")
    if ab:
        test = ab.get("test", {})
        table.add_row(
            f"abstain on {ab.get('uncertainty')} (α={ab.get('alpha')}, δ={ab.get('delta')})",
            f"error {fmt_number(test.get('error'))}",
            f"coverage {fmt_number(test.get('coverage'))}",
            f"{test.get('n_kept', '')}/{test.get('n', '')}",
        )
    for name, sub in metrics.get("subsets", {}).items():
        table.add_row(
            f"subset: {name}",
            fmt_number(sub.get("accuracy")),
            fmt_interval(sub.get("ci_low"), sub.get("ci_high")),
            str(sub.get("n", "")),
        )
    for row in suite_rows(metrics):
        table.add_row(*row)
    return table


def _render(table: Table) -> str:
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=100,
        color_system=None,
        no_color=True,
        force_terminal=False,
        force_jupyter=False,
        highlight=False,
        emoji=False,
        markup=False,
    )
    console.print(table)
    return buf.getvalue()


def format_pools(metrics: dict[str, Any], title: str = "Best-of-n") -> str:
    """The :func:`pools_table` of an ``evaluate_pools`` dict, and its :func:`length_table`
    when it has one, as plain text (100 columns)."""
    text = _render(pools_table(metrics, title=title))
    lengths = length_table(metrics)
    return text if lengths is None else text + "\n" + _render(lengths)


def format_metrics(metrics: dict[str, Any], title: str = "Evaluation") -> str:
    """The :func:`metrics_table` rendered to plain text (100 columns, no colour).

    Args:
        metrics: the report dict.
        title: the table title.

    Returns:
        The table as a string, free of ANSI escape codes.

    Example:
        >>> text = format_metrics({"n_pairs": 3, "pairwise_accuracy": 2 / 3})
        >>> "0.6667" in text
        True
    """
    return _render(metrics_table(metrics, title=title))


def _ci_text(block: Mapping[str, Any]) -> str:
    if block.get("value") is None:
        return "-"
    if block.get("ci_low") is None:
        return f"{block['value']:.3f}"
    return f"{block['value']:.3f}  [{block['ci_low']:.3f}, {block['ci_high']:.3f}]"


class StepRow(NamedTuple):
    """One metric of the step task, as the terminal and the HTML report show it."""

    path: tuple[str, ...]
    """Where its CI dict is: ``("first_error", "f1")`` is ``m["first_error"]["f1"]``."""
    label: str
    """Its name in the terminal table."""
    html_label: str
    """Its name in the HTML report."""
    over: str = ""
    """The HTML report's "over" column."""


STEP_ROWS = (
    StepRow(("step_accuracy",), "step accuracy", "step accuracy", "labelled steps"),
    StepRow(("step_balanced_accuracy",), "step balanced accuracy", "step balanced accuracy"),
    StepRow(
        ("step_auroc",),
        "step AUROC (reward vs validity)",
        "step AUROC (reward vs validity)",
        "no threshold",
    ),
    StepRow(
        ("first_error", "accuracy_erroneous"),
        "first error found (erroneous)",
        "first error found",
        "erroneous solutions",
    ),
    StepRow(
        ("first_error", "accuracy_correct"),
        "'none' found (all-valid)",
        '"none" on all-valid solutions',
    ),
    StepRow(
        ("first_error", "f1"),
        "first-error F1 (ProcessBench)",
        "first-error F1 (ProcessBench)",
        "harmonic mean",
    ),
)
"""The step task's metrics, in the order :func:`format_steps` and the HTML report's
``steps_block`` list them."""


def format_steps(m: Mapping[str, Any], *, title: str) -> str:
    """The step task's metrics (``evaluate_steps``) as a plain-text table."""
    thr = m["threshold"]
    values = " / ".join(f"{v:.4g}" for v in thr["values"])
    rows = []
    for row in STEP_ROWS:
        block = m
        for key in row.path:
            block = block[key]
        rows.append((row.label, _ci_text(block)))
    width = max(len(name) for name, _ in rows)
    lines = [
        title,
        f"{m['n_solutions']} solutions ({m['n_erroneous']} with an error), {m['n_steps']} steps",
        f"labelled steps: {m['n_valid_steps']} valid, {m['n_invalid_steps']} wrong; "
        f"rule {m['rule_label']}",
        f"a step is called wrong when its reward < {values} ({thr['source']})",
        *(f"  {name:<{width}}  {value}" for name, value in rows),
        f"  ({int(100 * m['ci_level'])}% bootstrap CIs over solutions)",
    ]
    return "\n".join(lines)
