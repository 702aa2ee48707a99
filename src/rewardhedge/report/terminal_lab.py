"""Terminal tables of the overoptimisation lab and of best-of-n (the HTML is in ``lab.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from rewardhedge.report.terminal import length_rows_table


def lab_tables(result: Mapping[str, Any]) -> list[Table | str]:
    """What ``overopt`` and ``demo`` print: the curves' gold at n = 1, the peak and the
    paired n; each ensemble's paired difference with a verdict; the length controls of
    the best-of-N picks; held-out accuracy (rich markup in the strings and verdicts)."""
    shown: list[Table | str] = []
    ns = result["ns"]
    table = Table(
        title=f"Gold reward of best-of-n (IQM over seeds of the mean over prompts, 95% CI); n = {ns[0]}…{ns[-1]}"
    )
    n_cmp = result.get("paired_n", ns[-1])
    for col in ("proxy", f"gold n={ns[0]}", "peak n", "fit peak n", f"gold n={n_cmp}", "95% CI"):
        table.add_column(col)
    for c in result["curves"]:
        fit = c.get("fit") or {}
        peak = fit.get("peak_n")
        g = c["gold_at_max_n"]
        table.add_row(
            c["label"],
            f"{c['gold']['iqm'][0]:.2f}",
            str(c["peak_n_observed"]),
            "—" if peak is None else f"{peak:.1f}",
            f"{g['iqm']:.2f}",
            f"[{g['ci_low']:.2f}, {g['ci_high']:.2f}]",
        )
    shown.append(table)
    paired = result.get("paired") or []
    if paired:
        diff = Table(
            title=f"Gold at n={n_cmp} minus the single model's, paired by seed and prompt "
            "(95% CI resamples both)"
        )
        for col in ("ensemble · aggregation", "gold", "Δ vs single", "95% CI", "verdict"):
            diff.add_column(col)
        style = {"helps": "green", "hurts": "red"}
        for r in paired:
            verdict = r["verdict"]
            diff.add_row(
                r["label"],
                f"{r['gold']:.2f}",
                f"{r['diff']:+.2f}",
                f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]",
                f"[{style[verdict]}]{verdict}[/]" if verdict in style else verdict,
            )
        shown.append(diff)
        helps = [r["label"] for r in paired if r["verdict"] == "helps"]
        shown.append(
            "Keeps more gold than the single model (CI above 0): " + ", ".join(helps)
            if helps
            else f"No ensemble keeps more gold than the single model at n={n_cmp} (every CI "
            "reaches 0 or below)."
        )
    lengths = result.get("length_controls")
    if lengths:
        rows = [(r["label"], r) for r in lengths["rows"]]
        shown.append(
            length_rows_table(
                rows, lengths["baselines"], "Length controls of the best-of-N picks", show_gold=True
            )
        )
    acc = ", ".join(f"{r['name']} {r['accuracy']:.3f}" for r in result["accuracy"])
    shown.append(f"Held-out accuracy (gold order): {acc}")
    return shown


def bon_table(stats: Mapping[str, Any], label: str) -> Table:
    """Best-of-n picks against gold: mean and 95% CI of the pick's gold, regret, win rate
    against a random pick, and the random and best candidates' gold."""
    table = Table(title=f"Best-of-n with {label} on {stats['n_pools_with_gold']} pools with gold")
    for col in ("metric", "mean", "95% CI"):
        table.add_column(col)
    for key in ("gold", "regret", "win_vs_random", "random_gold", "best_gold"):
        s = stats[key]
        table.add_row(key, f"{s['mean']:.3f}", f"[{s['ci_low']:.3f}, {s['ci_high']:.3f}]")
    return table


__all__ = ["bon_table", "lab_tables"]
