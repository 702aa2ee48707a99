"""`rewardhedge finetune` end to end on a tiny random Qwen2, then score/eval on its folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("accelerate")
pytest.importorskip("peft")

from rewardhedge.cli import main
from rewardhedge.estimators.finetuned import FinetunedRewardModel


def _write_pairs(path: Path, pairs) -> Path:
    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow
def test_finetune_then_score_and_eval(
    tiny_qwen2: Path, synthetic_pairs, single_thread, tmp_path: Path, capsys
) -> None:
    backbone = tiny_qwen2
    train = _write_pairs(tmp_path / "train.jsonl", synthetic_pairs(96, seed=0))
    test = _write_pairs(tmp_path / "test.jsonl", synthetic_pairs(32, seed=1))
    out = tmp_path / "rm"
    args = ["finetune", "--backbone", str(backbone), "--data", str(train), "--out", str(out)]
    args += ["--eval-data", str(test), "--ensemble", "multihead", "--members", "2"]
    args += ["--lr", "3e-3", "--epochs", "3", "--batch-size", "16", "--max-length", "64"]
    args += ["--checkpoint-every", "6", "--eval-every", "6"]
    assert main(args) == 0
    assert (out / "manifest.json").is_file()
    assert (out / "tokenizer").is_dir()
    assert sorted(p.name for p in (tmp_path / "rm.checkpoints").iterdir()) == [
        "step-00000012",
        "step-00000018",
    ]
    metrics = json.loads((out / "eval.json").read_text())
    assert metrics["pairwise_accuracy"] >= 0.8

    scored = tmp_path / "scores.jsonl"
    assert main(["score", "--model", str(out), "--data", str(test), "--out", str(scored),
                 "--field", "response=chosen"]) == 0  # fmt: skip
    rows = [json.loads(line) for line in scored.read_text().splitlines()]
    assert len(rows) == 32 and all(len(r["members"]) == 2 for r in rows)
    model = FinetunedRewardModel.load(out)
    direct = model.score([r["prompt"] for r in map(json.loads, test.read_text().splitlines())],
                         [r["chosen"] for r in map(json.loads, test.read_text().splitlines())])  # fmt: skip
    assert [r["mean"] for r in rows] == pytest.approx(direct.mean.tolist(), abs=1e-5)

    report = tmp_path / "eval_suite.json"
    assert main(["eval", "--model", str(out), "--data", str(test), "--json", str(report)]) == 0
    suite = json.loads(report.read_text())
    assert suite["kind"] == "rewardhedge.eval" and suite["task"] == "pairs"

    # A second run with another learning rate must not resume the first run's checkpoints.
    capsys.readouterr()
    args2 = [a if a != "3e-3" else "1e-3" for a in args]
    assert main([*args2[:-4], "--checkpoint-dir", str(tmp_path / "rm.checkpoints")]) == 2
    assert "different lr" in capsys.readouterr().err


def test_missing_backbone_is_one_clear_line(synthetic_pairs, tmp_path: Path, capsys) -> None:
    train = _write_pairs(tmp_path / "train.jsonl", synthetic_pairs(8))
    code = main(["finetune", "--backbone", str(tmp_path / "nope"), "--data", str(train),
                 "--out", str(tmp_path / "rm")])  # fmt: skip
    assert code == 2
    assert "is not a local folder" in capsys.readouterr().err


@pytest.mark.slow
def test_backbone_minilm_is_the_shipped_model(synthetic_pairs, single_thread, tmp_path: Path):
    """`--backbone minilm` fine-tunes the all-MiniLM-L6-v2 that ships with the package."""
    from rewardhedge.encoders.transformer import minilm_path

    train = _write_pairs(tmp_path / "train.jsonl", synthetic_pairs(8))
    out = tmp_path / "rm"
    args = ["finetune", "--backbone", "minilm", "--data", str(train), "--out", str(out)]
    assert main([*args, "--max-steps", "1", "--batch-size", "4", "--max-length", "32"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert str(minilm_path()) in json.dumps(config)
    assert FinetunedRewardModel.load(out).score(["p"], ["r"]).mean.shape == (1,)


def test_bad_member_norm_is_one_clear_line(synthetic_pairs, tmp_path: Path, capsys) -> None:
    train = _write_pairs(tmp_path / "train.jsonl", synthetic_pairs(8))
    code = main(["finetune", "--backbone", "minilm", "--data", str(train),
                 "--out", str(tmp_path / "rm"), "--member-norm", "zscore"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "member_norm" in err and "zscore" in err and "Traceback" not in err
    assert not (tmp_path / "rm").exists()
