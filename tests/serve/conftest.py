"""A real tiny reward model and real servers on loopback for the server tests."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from rewardhedge.config import EncoderConfig, EnsembleConfig  # noqa: E402
from rewardhedge.estimators.ensemble import EnsembleRewardModel  # noqa: E402
from rewardhedge.types import RewardEstimate  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(pair_factory) -> EnsembleRewardModel:
    cfg = EnsembleConfig(n_members=3, encoder=EncoderConfig(kind="hashing", dim=64))
    return EnsembleRewardModel(cfg, use_cache=False).fit(pair_factory(40))


@pytest.fixture(scope="session")
def saved_model(tiny_model, tmp_path_factory):
    return tiny_model.save(tmp_path_factory.mktemp("rm") / "rm")


class GatedModel:
    """The real model behind a gate: ``score`` blocks until ``open()``, so a test can
    hold requests in flight (overload, timeouts, shutdown) deterministically."""

    def __init__(self, model: EnsembleRewardModel) -> None:
        self.model = model
        self.rule = model.rule
        self.temperature = model.temperature
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls: list[int] = []

    def score(self, prompts, responses) -> RewardEstimate:
        self.entered.set()
        assert self.gate.wait(30), "test never opened the gate"
        self.calls.append(len(prompts))
        return self.model.score(prompts, responses)

    def open(self) -> None:
        self.gate.set()


@pytest.fixture
def gated(tiny_model) -> GatedModel:
    g = GatedModel(tiny_model)
    yield g
    g.open()


ITEMS = [
    {"prompt": "question 1 about item 7", "response": "the answer is correct for it"},
    {"prompt": "question 1 about item 7", "response": "the answer is wrong for it"},
    {"prompt": "question 2", "response": "a clear and precise reply"},
    {"prompt": "question 3", "response": "sloppy"},
]


@pytest.fixture
def items() -> list[dict[str, str]]:
    return [dict(it) for it in ITEMS]
