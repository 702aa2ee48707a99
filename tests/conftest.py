"""Shared fixtures: tiny deterministic data, seeded generators, real temp files."""

from __future__ import annotations

import numpy as np
import pytest

from rewardhedge.types import PreferencePair

GOOD_WORDS = ["correct", "accurate", "helpful", "precise", "clear"]
BAD_WORDS = ["wrong", "rude", "vague", "sloppy", "false"]


def make_tiny_pairs(n: int = 20, seed: int = 0) -> list[PreferencePair]:
    """Pairs where a known feature decides the preference: the chosen response
    uses a 'good' word and the rejected one a 'bad' word."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        topic = f"question {i} about item {int(rng.integers(1000))}"
        good = GOOD_WORDS[int(rng.integers(len(GOOD_WORDS)))]
        bad = BAD_WORDS[int(rng.integers(len(BAD_WORDS)))]
        pairs.append(
            PreferencePair(
                prompt=topic,
                chosen=f"the answer is {good} for {topic}",
                rejected=f"the answer is {bad} for {topic}",
                subset="even" if i % 2 == 0 else "odd",
                id=f"tiny-{i}",
            )
        )
    return pairs


@pytest.fixture
def tiny_pairs() -> list[PreferencePair]:
    return make_tiny_pairs()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def pair_factory():
    """``make_tiny_pairs`` as a fixture, for tests that need more or other pairs."""
    return make_tiny_pairs


def _module_imports(path) -> list[str]:
    """Every module a source file imports (``import a.b`` and ``from a.b import c`` give ``a.b``)."""
    import ast
    from pathlib import Path

    names: list[str] = []
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


@pytest.fixture
def module_imports():
    """``module_imports(path)``: the modules a file imports, for import-rule tests."""
    return _module_imports


@pytest.fixture
def hand_ensemble():
    """A hand-built 2-member ensemble on four pairs, whose metrics are known by hand:
    ``(estimate, pairs)``.

    Members (rows) x pairs (columns):
    chosen mean [1, 1, 1, 0], epistemic var [1, 0, 1, 0];
    rejected mean [0, 1, 2, 1], epistemic var [0, 0, 1, 0];
    ensemble: pair 0 right, pair 1 tie, pairs 2 and 3 wrong -> 1.5 / 4;
    member 0 diffs [2, 0, -3, -1] -> 1.5 / 4; member 1 diffs [0, 0, 1, -1] -> 2 / 4;
    chosen lengths [4, 2, 1, 2], rejected lengths [1, 2, 3, 1].
    """
    import numpy as np

    from rewardhedge.types import PreferencePair, RewardEstimate, pairwise_from_estimates

    chosen = np.array([[2.0, 1.0, 0.0, 0.0], [0.0, 1.0, 2.0, 0.0]])
    rejected = np.array([[0.0, 1.0, 3.0, 1.0], [0.0, 1.0, 1.0, 1.0]])
    pairs = [
        PreferencePair("p0", "aaaa", "a", subset="a"),
        PreferencePair("p1", "bb", "xx", subset="b"),
        PreferencePair("p2", "c", "ccc"),
        PreferencePair("p3", "dd", "d", subset="a"),
    ]
    estimate = pairwise_from_estimates(
        RewardEstimate.from_members(chosen), RewardEstimate.from_members(rejected)
    )
    return estimate, pairs


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, pair_factory):
    """A saved 2-member ensemble on the hashing encoder (no calibration): a model folder
    for command-line tests, fitted once per session."""
    from rewardhedge.config import EncoderConfig, EnsembleConfig, UncertaintyConfig
    from rewardhedge.estimators.ensemble import EnsembleRewardModel

    folder = tmp_path_factory.mktemp("model") / "rm"
    cfg = EnsembleConfig(
        n_members=2,
        encoder=EncoderConfig(kind="hashing", dim=64),
        uncertainty=UncertaintyConfig(calibration_folds=0),
    )
    EnsembleRewardModel(cfg, use_cache=False).fit(pair_factory(20)).save(folder)
    return folder
