"""The overoptimisation lab on a user's pools (``overopt --pools``): the prompt split, labels
from gold, best-of-n with missing gold and unequal pools, and the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardhedge import cli
from rewardhedge.config import EncoderConfig
from rewardhedge.data import load_pools
from rewardhedge.data.sandbox import SandboxConfig, generate_sandbox
from rewardhedge.errors import ConfigError
from rewardhedge.lab.data import (
    LabelModel,
    PoolSplit,
    from_pools,
    split_prompts,
)
from rewardhedge.lab.overopt import LabConfig, pool_gold, run_lab
from rewardhedge.optimize import expected_best_of_n
from rewardhedge.optimize.order_stats import expected_best_of_n_padded
from rewardhedge.types import CandidatePool
from rewardhedge.uncertainty import Aggregation


def synthetic_pools(n_prompts: int, size: int, seed: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    return [
        CandidatePool(
            prompt=f"prompt {i}",
            candidates=tuple(
                f"answer {i}.{j} " + "x" * int(rng.integers(1, 30)) for j in range(size)
            ),
            gold=tuple(float(g) for g in scale * rng.normal(size=size)),
            id=f"p{i}",
        )
        for i in range(n_prompts)
    ]


# --------------------------------------------------------------------------- split


@settings(max_examples=60, deadline=None)
@given(
    prompts=st.lists(st.sampled_from([f"q{i}" for i in range(12)]), min_size=2, max_size=40),
    fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 10_000),
)
def test_split_never_puts_one_prompt_on_both_sides(prompts, fraction, seed):
    if len(set(prompts)) < 2:
        return
    train = split_prompts(prompts, fraction, seed)
    assert not {p for p, t in zip(prompts, train, strict=True) if t} & {
        p for p, t in zip(prompts, train, strict=True) if not t
    }
    assert train.any() and not train.all()  # both sides get at least one prompt


def test_comparisons_and_pools_come_from_their_own_side_and_skip_missing_gold():
    pools = synthetic_pools(40, 6)
    holes = [
        CandidatePool(p.prompt, p.candidates, (None, *p.gold[1:]), p.id) if i % 3 == 0 else p
        for i, p in enumerate(pools)
    ]
    data = from_pools(holes, PoolSplit(pairs_per_prompt=0, seed=3))
    train_prompts = {c.prompt for c in data.train}
    test_prompts = {c.prompt for c in data.test} | {p.prompt for p in data.pools}
    assert train_prompts and test_prompts and not train_prompts & test_prompts
    missing = {p.candidates[0] for i, p in enumerate(pools) if i % 3 == 0}
    used = {c.a for c in (*data.train, *data.test)} | {c.b for c in (*data.train, *data.test)}
    used |= {c for p in data.pools for c in p.candidates}
    assert not used & missing
    assert data.summary["n_candidates_missing_gold"] == len(missing)
    # All pairs: C(5, 2) = 10 for pools with a hole, C(6, 2) = 15 otherwise.
    n_train = sum(
        10 if i % 3 == 0 else 15 for i, p in enumerate(pools) if p.prompt in train_prompts
    )
    assert len(data.train) == n_train
    sizes = sorted({p.size for p in data.pools})
    assert sizes == [5, 6]


def test_pairs_per_prompt_caps_the_sample():
    data = from_pools(synthetic_pools(20, 8), PoolSplit(pairs_per_prompt=4))
    per_prompt = {}
    for c in data.train:
        per_prompt[c.prompt] = per_prompt.get(c.prompt, 0) + 1
    assert set(per_prompt.values()) == {4}


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize("flip", [0.0, 0.1, 0.25])
def test_labels_follow_the_stated_flip_rate(flip):
    """Temperature 0: the better candidate wins before flips, so the share of labels
    against the gold order is the flip rate (20,000 labels: SD 0.003; the bound is 5 SD)."""
    pools = synthetic_pools(1000, 8)
    split = PoolSplit(pairs_per_prompt=0, labels=LabelModel(temperature=0.0, flip_rate=flip))
    data = from_pools(pools, split)
    gaps = np.array([c.gold_a - c.gold_b for c in data.train])
    wins = data.label_wins("train", 0)
    against = np.mean(wins != (gaps > 0))
    assert len(gaps) == 500 * 28
    assert against == pytest.approx(flip, abs=0.015)
    if flip == 0:
        assert against == 0.0


def test_rank_and_standardize_are_scale_free_and_raw_is_not():
    base = synthetic_pools(200, 6, seed=1)

    def rescaled(f):
        return [
            CandidatePool(p.prompt, p.candidates, tuple(f(g) for g in p.gold), p.id) for p in base
        ]

    def wins(pools, scale):
        split = PoolSplit(labels=LabelModel(temperature=0.3, flip_rate=0.1, scale=scale))
        return from_pools(pools, split).label_wins("train", 5)

    assert np.array_equal(wins(base, "rank"), wins(rescaled(math.exp), "rank"))
    assert np.array_equal(
        wins(base, "standardize"), wins(rescaled(lambda g: 10 * g), "standardize")
    )
    assert not np.array_equal(wins(base, "raw"), wins(rescaled(lambda g: 10 * g), "raw"))


def test_too_few_usable_pools_is_a_clear_error():
    pools = synthetic_pools(3, 4)
    only_one = [pools[0]] + [CandidatePool(p.prompt, p.candidates, None, p.id) for p in pools[1:]]
    with pytest.raises(ConfigError, match="1 pool"):
        from_pools(only_one, PoolSplit())


# --------------------------------------------------------------------------- best-of-n


def test_padded_best_of_n_is_each_pools_own_estimate_and_nan_past_its_size():
    a_proxy, a_gold = np.array([0.1, 0.9, 0.5]), np.array([1.0, 0.0, 2.0])
    b_proxy, b_gold = np.array([0.3, 0.2]), np.array([5.0, 7.0])
    proxy = np.array([a_proxy, [*b_proxy, np.nan]])
    gold = np.array([a_gold, [*b_gold, np.nan]])
    out = expected_best_of_n_padded(proxy, gold, [1, 2, 3])
    assert out[:, 0] == pytest.approx([1.0, 2 / 3, 0.0])  # the documented known answer
    assert out[:2, 1] == pytest.approx(
        expected_best_of_n(b_proxy[None], b_gold[None], [1, 2])[:, 0]
    )
    assert out[:2, 1] == pytest.approx([6.0, 5.0])
    assert math.isnan(out[2, 1])
    with pytest.raises(ValueError, match="left-aligned"):
        expected_best_of_n_padded(np.array([[np.nan, 1.0]]), np.array([[np.nan, 1.0]]), [1])


HASH = EncoderConfig(kind="hashing", dim=64, views=("hash", "hash_bigram", "hash_char"))


@pytest.fixture(scope="module")
def pools_lab():
    sandbox = generate_sandbox(SandboxConfig(train_prompts=5, test_prompts=5, pool_prompts=40,
                                             pool_size=8))  # fmt: skip
    pools = [p.to_pool() for p in sandbox.pools]
    # Unequal pools: drop gold of some candidates, cut one pool to 3.
    pools[1] = CandidatePool(pools[1].prompt, pools[1].candidates, (None, *pools[1].gold[1:]))
    pools[2] = CandidatePool(pools[2].prompt, pools[2].candidates[:3], pools[2].gold[:3])
    split = PoolSplit(train_fraction=0.5, pairs_per_prompt=12, seed=1)
    data = from_pools(pools, split)
    config = LabConfig(
        seeds=(0, 1),
        members=3,
        options=("bootstrap",),
        aggregations=(Aggregation("mean"), Aggregation("wco")),
        encoder=HASH,
        bootstrap_reps=200,
        pools=split,
    )
    result, runs = run_lab(config, data=data)
    return data, result, runs


def test_lab_on_pools_counts_prompts_per_n_and_matches_the_estimator(pools_lab):
    data, result, runs = pools_lab
    sizes = np.array([p.size for p in data.pools])
    assert result["ns"] == [1, 2, 4, 8]
    assert result["n_prompts"] == [int((sizes >= n).sum()) for n in result["ns"]]
    assert result["data"]["kind"] == "pools" and "pools" in result["config"]
    gold = pool_gold(data)
    single = next(c for c in result["curves"] if c["model"] == "single")
    for s, run in enumerate(runs):
        expected = expected_best_of_n_padded(run.pool_mean["single"], gold, result["ns"])
        assert single["per_seed_gold"][s] == pytest.approx(np.nanmean(expected, axis=1).tolist())
    # n = 1 is a random candidate: the mean over supporting pools of each pool's mean gold.
    assert single["gold"]["mean"][0] == pytest.approx(np.nanmean(gold, axis=1).mean())
    lc = result["length_controls"]
    assert [r["label"] for r in lc["rows"]] == [c["label"] for c in result["curves"]]
    picked = [
        [p.gold[int(np.argmax(run.pool_mean["single"][i, : p.size]))] for run in runs]
        for i, p in enumerate(data.pools)
    ]
    assert lc["rows"][0]["gold"] == pytest.approx(np.mean(picked))
    for r in lc["rows"]:
        assert 0.0 <= r["longest_fraction"] <= 1.0 and r["n_pools"] == len(data.pools)
    json.dumps(result, allow_nan=False)


def test_sandbox_pools_file_runs_through_the_command_line(tmp_path, capsys):
    assert cli.main(["sandbox", "--out", str(tmp_path / "s"), "--train-prompts", "5",
                     "--test-prompts", "5", "--pool-prompts", "30", "--pool-size", "4"]) == 0  # fmt: skip
    rows = [json.loads(x) for x in (tmp_path / "s" / "pools.jsonl").read_text().splitlines()]
    rows[0]["gold"][0] = None
    (tmp_path / "holes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["overopt", "--pools", str(tmp_path / "holes.jsonl"), "--out", str(tmp_path / "lab"),
            "--seeds", "2", "--members", "2", "--options", "bootstrap", "--encoder", "hashing",
            "--label-scale", "rank", "--no-report"]  # fmt: skip
    assert cli.main(args) == 0
    result = json.loads((tmp_path / "lab" / "overopt.json").read_text())
    assert result["data"]["n_candidates_missing_gold"] == 1
    assert result["config"]["pools"]["labels"]["scale"] == "rank"
    assert "training prompts" in capsys.readouterr().err
    # bon and eval keep refusing a null gold value (only the lab skips them).
    with pytest.raises(Exception, match="finite number"):
        load_pools(tmp_path / "holes.jsonl")


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--label-scale", "zscore"),
        ("--train-fraction", "1.0"),
        ("--pairs-per-prompt", "-1"),
        ("--label-temperature", "-1"),
        ("--flip-rate", "0.7"),
    ],
)
def test_bad_pool_flags_are_one_line_and_write_nothing(tmp_path, capsys, flag, value):
    pools = tmp_path / "p.jsonl"
    pools.write_text(json.dumps({"prompt": "q", "candidates": ["a", "b"], "gold": [1, 2]}) + "\n")
    code = cli.main(["overopt", "--pools", str(pools), "--out", str(tmp_path / "lab"), flag, value])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert flag in err and value in err and len(err.splitlines()) == 1
    assert not (tmp_path / "lab").exists()


def test_a_split_column_fixes_the_sides(tmp_path):
    pools = synthetic_pools(10, 4)
    fixed = [CandidatePool(p.prompt, p.candidates, p.gold, p.id, split="train" if i < 3 else "test")
             for i, p in enumerate(pools)]  # fmt: skip
    data = from_pools(fixed, PoolSplit(train_fraction=0.9, pairs_per_prompt=0))
    assert {c.prompt for c in data.train} == {p.prompt for p in pools[:3]}
    assert [p.prompt for p in data.pools] == [p.prompt for p in pools[3:]]
    assert data.summary["split_from"] == "file"
    mixed = [*fixed[:5], *pools[5:]]
    with pytest.raises(ConfigError, match="no 'split'"):
        from_pools(mixed, PoolSplit())
    path = tmp_path / "p.jsonl"
    row = {"prompt": "q", "candidates": ["a", "b"], "gold": [1, 2]}
    path.write_text(
        json.dumps(row | {"split": "train"}) + "\n" + json.dumps(row | {"split": "dev"}) + "\n"
    )
    with pytest.raises(Exception, match=r"p.jsonl:2: field 'split' must be 'train' or 'test'"):
        load_pools(path)


def test_the_sandbox_written_as_pools_gives_the_built_in_labs_curves():
    """One code path, two entry points: the sandbox's training comparisons as
    two-candidate 'train' pools and its best-of-n pools as 'test' pools give the same
    labels, proxies and curves as the built-in lab."""
    config = LabConfig(
        sandbox=SandboxConfig(train_prompts=120, test_prompts=20, pool_prompts=8, pool_size=8),
        seeds=(0, 1),
        members=3,
        options=("bootstrap", "views"),
        aggregations=(Aggregation("mean"), Aggregation("wco")),
        encoder=HASH,
        bootstrap_reps=200,
    )
    sandbox = generate_sandbox(config.sandbox)
    pools = [
        CandidatePool(c.task.prompt, (c.a.text, c.b.text), (c.a.gold, c.b.gold), c.id, split="train")
        for c in sandbox.train
    ] + [CandidatePool(p.task.prompt, tuple(r.text for r in p.responses), tuple(p.gold), p.id,
                       split="test") for p in sandbox.pools]  # fmt: skip
    builtin, _ = run_lab(config)
    data = from_pools(pools, PoolSplit(pairs_per_prompt=0, seed=config.sandbox.seed))
    as_pools, _ = run_lab(config, data=data)
    assert [c["label"] for c in as_pools["curves"]] == [c["label"] for c in builtin["curves"]]
    for a, b in zip(as_pools["curves"], builtin["curves"], strict=True):
        assert np.allclose(a["per_seed_gold"], b["per_seed_gold"], atol=1e-12)
        assert a["gold"] == b["gold"]
