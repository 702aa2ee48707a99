"""No reported metric of a fine-tuned model uses a pair its temperature saw.

``FinetunedRewardModel.fit(pairs, eval_pairs=...)`` splits the eval pairs by prompt into a
calibration part (fits the ``compare`` temperature) and a report part (the only pairs
``rewardhedge finetune`` reports metrics on). Before this split, the temperature was fitted
on every eval pair and ``eval.json`` reported ECE/NLL on those same pairs; the tests below
fail on that behaviour (``CalibratesOnEveryEvalPair`` reproduces it).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rewardhedge.config_finetune import FinetuneConfig
from rewardhedge.data.fingerprint import hash_pairs
from rewardhedge.errors import ConfigError
from rewardhedge.estimators.checks import ConformanceCase, check_temperature
from rewardhedge.estimators.finetuned import FinetunedRewardModel, split_calibration
from rewardhedge.types import PreferencePair, member_logits
from rewardhedge.uncertainty.calibration import TEMPERATURE_BOUNDS, TemperatureScaling

pytestmark = pytest.mark.usefixtures("single_thread")

Pairs = Callable[..., list[PreferencePair]]

BASE = {
    "ensemble": "multihead",
    "n_members": 2,
    "batch_size": 8,
    "lr": 1e-2,
    "max_length": 48,
    "max_steps": 16,
    "warmup_ratio": 0.1,
}
"""As in test_conformance_finetuned.py: rewards far enough apart after ~0.5 s of training
that the temperatures below lie inside their bounds."""


def eval_set(synthetic_pairs: Pairs) -> list[PreferencePair]:
    """24 held-out pairs on 11 prompts (two or more pairs each, so a split by pair would
    put most prompts on both sides), every 4th with chosen and rejected swapped (label noise, so
    the fitted temperature lies inside its bounds)."""
    base = synthetic_pairs(12, seed=2)
    other = synthetic_pairs(12, seed=4)
    pairs = base + [
        PreferencePair(p.prompt, o.chosen, o.rejected) for p, o in zip(base, other, strict=True)
    ]
    return [
        PreferencePair(p.prompt, p.rejected, p.chosen) if i % 4 == 0 else p
        for i, p in enumerate(pairs)
    ]


def temperature_on(model: FinetunedRewardModel, pairs: list[PreferencePair]) -> float:
    """The temperature ``fit`` would fit on ``pairs`` (same members, same bounds)."""
    est = model.compare(pairs)
    logits = member_logits(est.chosen, est.rejected)
    fitted = TemperatureScaling.fit(logits, np.ones(logits.shape[1]), bounds=TEMPERATURE_BOUNDS)
    return fitted.temperature


def make_model(backbone: Path, cls=FinetunedRewardModel, **kw) -> FinetunedRewardModel:
    return cls(FinetuneConfig(backbone=str(backbone), **{**BASE, **kw}), device="cpu")


class CalibratesOnEveryEvalPair(FinetunedRewardModel):
    """The old behaviour: the temperature fitted on every eval pair, so the report part's
    metrics use pairs the temperature saw."""

    def fit(self, pairs, *, eval_pairs=None, **kwargs):
        super().fit(pairs, eval_pairs=eval_pairs, **kwargs)
        if eval_pairs is not None:
            est = self.compare(eval_pairs)
            logits = member_logits(est.chosen, est.rejected)
            self.temperature_ = TemperatureScaling.fit(
                logits, np.ones(logits.shape[1]), bounds=TEMPERATURE_BOUNDS
            )
        return self


@pytest.fixture(scope="module")
def fitted(tiny_bert: Path, synthetic_pairs: Pairs) -> FinetunedRewardModel:
    return make_model(tiny_bert).fit(
        synthetic_pairs(32, seed=1), eval_pairs=eval_set(synthetic_pairs)
    )


# -- the split ---------------------------------------------------------------------------


def test_the_split_is_by_prompt_seeded_and_covers_the_pairs(synthetic_pairs: Pairs) -> None:
    pairs = eval_set(synthetic_pairs)
    cal, held = split_calibration(pairs, 0.5, seed=0)
    assert {p.prompt for p in cal}.isdisjoint({p.prompt for p in held})
    assert Counter(cal) + Counter(held) == Counter(pairs)
    assert cal == [p for p in pairs if p in cal] and held == [p for p in pairs if p in held]
    n_prompts = len({p.prompt for p in pairs})
    assert len({p.prompt for p in cal}) == round(0.5 * n_prompts + 0.01)  # 11 prompts: 6
    assert split_calibration(pairs, 0.5, seed=0) == (cal, held)
    assert split_calibration(pairs, 0.5, seed=1) != (cal, held)
    assert split_calibration(pairs, 0.0, seed=0) == ([], pairs)
    assert split_calibration(pairs, 1.0, seed=0) == (pairs, [])
    tiny, _ = split_calibration(pairs, 0.01, seed=0)
    assert len({p.prompt for p in tiny}) == 1  # each side keeps at least one prompt
    with pytest.raises(ConfigError, match="1 distinct prompt"):
        split_calibration(pairs[:1] * 3, 0.5, seed=0)
    with pytest.raises(ConfigError, match="calibration_fraction"):
        FinetuneConfig(calibration_fraction=1.5)


def test_calibration_pairs_sharing_a_prompt_with_eval_pairs_fail_before_training(
    synthetic_pairs: Pairs, tmp_path: Path
) -> None:
    pairs = eval_set(synthetic_pairs)
    model = make_model(tmp_path / "never-loaded")
    with pytest.raises(ConfigError, match="share 1 prompt"):
        model.fit(synthetic_pairs(4), eval_pairs=pairs[:3], calibration_pairs=pairs[12:13])


# -- the model ---------------------------------------------------------------------------


def test_no_reported_metric_uses_pairs_the_temperature_saw(
    fitted: FinetunedRewardModel, synthetic_pairs: Pairs, tmp_path: Path
) -> None:
    pairs = eval_set(synthetic_pairs)
    cal, held = fitted.calibration_pairs_, fitted.report_pairs_
    assert cal and held
    assert not set(cal) & set(held)
    assert {p.prompt for p in cal}.isdisjoint({p.prompt for p in held})
    assert Counter(cal) + Counter(held) == Counter(pairs)  # together: every eval pair
    assert fitted.temperature == temperature_on(fitted, cal)
    # Discriminating: on these pairs the old rule (every eval pair) gives another temperature.
    assert fitted.temperature != temperature_on(fitted, pairs)
    low, high = TEMPERATURE_BOUNDS
    assert 1.01 * low < fitted.temperature < 0.99 * high
    # The saved manifest names the pairs that calibrated it.
    manifest = json.loads((fitted.save(tmp_path / "rm") / "manifest.json").read_text())
    assert manifest["calibration_pairs_hash"] == fitted.calibration_pairs_hash_ == hash_pairs(cal)
    assert manifest["calibration_pairs_hash"] != hash_pairs(pairs)


def test_the_explicit_calibration_pairs_calibrate_and_every_eval_pair_is_reported(
    tiny_bert: Path, synthetic_pairs: Pairs
) -> None:
    pairs = eval_set(synthetic_pairs)
    cal, held = split_calibration(pairs, 0.5, seed=0)
    model = make_model(tiny_bert, max_steps=4).fit(
        synthetic_pairs(16, seed=1), eval_pairs=held, calibration_pairs=cal
    )
    assert model.calibration_pairs_ == cal and model.report_pairs_ == held
    assert model.temperature == temperature_on(model, cal)
    assert model.calibration_pairs_hash_ == hash_pairs(cal)


def test_calibrating_on_every_eval_pair_fails_the_temperature_check(
    tiny_bert: Path, synthetic_pairs: Pairs, tmp_path: Path
) -> None:
    case = ConformanceCase(
        lambda seed: make_model(tiny_bert, CalibratesOnEveryEvalPair, seed=seed),
        synthetic_pairs(32, seed=1),
        tmp_path,
        test_pairs=synthetic_pairs(8, seed=3),
        calibration_pairs=eval_set(synthetic_pairs),
    )
    with pytest.raises(AssertionError, match=r"check_temperature .*calibration pairs alone"):
        check_temperature(case)


# -- the CLI -----------------------------------------------------------------------------


def _write_pairs(path: Path, pairs: list[PreferencePair]) -> Path:
    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow
def test_finetune_reports_metrics_on_the_pairs_not_used_to_calibrate(
    tiny_bert: Path, synthetic_pairs: Pairs, tmp_path: Path, capsys
) -> None:
    from rewardhedge.cli import main

    pairs = eval_set(synthetic_pairs)
    cal, held = split_calibration(pairs, 0.5, seed=0)
    train = _write_pairs(tmp_path / "train.jsonl", synthetic_pairs(32, seed=1))
    test = _write_pairs(tmp_path / "test.jsonl", pairs)
    out = tmp_path / "rm"
    args = ["finetune", "--backbone", str(tiny_bert), "--data", str(train), "--out", str(out)]
    args += ["--eval-data", str(test), "--ensemble", "multihead", "--members", "2"]
    args += ["--lr", "1e-2", "--max-steps", "16", "--batch-size", "8", "--max-length", "48"]
    assert main(args) == 0
    assert json.loads((out / "eval.json").read_text())["n_pairs"] == len(held) < len(pairs)
    printed = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert f"(the {len(held)} pairs not used to calibrate)" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["calibration_pairs_hash"] == hash_pairs(cal)
