"""Best-of-n picks with aggregations, and the gold summary (computed exactly)."""

from __future__ import annotations

import numpy as np
import pytest

from rewardhedge.optimize.bon import best_of_n, pick, summarise_picks
from rewardhedge.types import CandidatePool, RewardEstimate
from rewardhedge.uncertainty import Aggregation


class TableModel:
    """A reward model that looks rewards up in a table: members × texts."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def score(self, prompts, responses):
        return RewardEstimate.from_members(np.array([self.table[r] for r in responses]).T)


# "risky" has the best mean but members disagree; "safe" is slightly lower and agreed on.
TABLE = {"risky": [4.0, -1.0, 3.0], "safe": [1.9, 2.0, 2.1], "bad": [0.0, 0.1, -0.1]}
POOL = CandidatePool("q", ("bad", "risky", "safe"), gold=(0.0, -2.0, 1.0), id="p0")


def test_mean_picks_the_risky_candidate_and_wco_the_safe_one():
    model = TableModel(TABLE)
    (mean_pick,) = best_of_n(model, [POOL], Aggregation("mean"))
    (wco_pick,) = best_of_n(model, [POOL], Aggregation("wco"))
    assert mean_pick.response == "risky" and mean_pick.index == 1
    assert wco_pick.response == "safe" and wco_pick.score == pytest.approx(1.9)
    assert mean_pick.std == pytest.approx(np.std(TABLE["risky"]))


def test_gold_regret_and_win_rate_against_random():
    est = TableModel(TABLE).score(["q"] * 3, list(POOL.candidates))
    p = pick(POOL, est, Aggregation("mean"))
    assert p.gold == -2.0 and p.best_gold == 1.0 and p.regret == 3.0
    assert p.random_gold == pytest.approx(-1 / 3)
    assert p.win_vs_random == pytest.approx(0.5 / 3)  # beats nobody, ties itself
    safe = pick(POOL, est, Aggregation("lcb", beta=1.0))
    assert (
        safe.response == "safe"
        and safe.win_vs_random == pytest.approx(2.5 / 3)
        and safe.regret == 0.0
    )


def test_summary_averages_over_pools_and_skips_pools_without_gold():
    model = TableModel(TABLE)
    pools = [
        POOL,
        CandidatePool("q", ("bad", "safe"), gold=(0.5, 0.0)),
        CandidatePool("q", ("bad", "safe")),
    ]
    picks = best_of_n(model, pools, Aggregation("mean"))
    s = summarise_picks(picks)
    assert s["n_pools"] == 3 and s["n_pools_with_gold"] == 2
    assert s["gold"]["mean"] == pytest.approx((-2.0 + 0.0) / 2)
    assert s["regret"]["mean"] == pytest.approx((3.0 + 0.5) / 2)
    assert s["gold"]["ci_low"] <= s["gold"]["mean"] <= s["gold"]["ci_high"]
    assert (
        picks[2].to_dict().keys() >= {"id", "index", "response", "score"}
        and "gold" not in picks[2].to_dict()
    )


def test_ties_go_to_the_first_candidate():
    model = TableModel({"a": [1.0], "b": [1.0]})
    (p,) = best_of_n(model, [CandidatePool("q", ("b", "a"))])
    assert p.index == 0 and p.response == "b"
