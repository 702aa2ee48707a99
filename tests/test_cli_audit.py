"""``rewardhedge audit`` end to end on the hashing encoder, and one line (exit 2, nothing
written) for every bad value of its flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardhedge import cli
from rewardhedge.data import load_pairs
from rewardhedge.estimators.ensemble import EnsembleRewardModel

FAST = ["--encoder", "hashing", "--members", "3", "--epochs", "60", "--lr", "0.01"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture
def pairs_file(tmp_path, pair_factory) -> Path:
    rows = [
        {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "id": p.id}
        for p in pair_factory(40)
    ]
    rows[3]["chosen"], rows[3]["rejected"] = rows[3]["rejected"], rows[3]["chosen"]
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


def test_audit_flip_writes_rows_clean_pairs_and_a_retrained_model(
    tmp_path, pairs_file, capsys
) -> None:
    out, clean, rm = tmp_path / "audit.jsonl", tmp_path / "clean.jsonl", tmp_path / "rm2"
    argv = ["audit", "--data", pairs_file, "--out", out, *FAST, "--folds", "4",
            "--action", "flip", "--clean-out", clean, "--retrain", rm,
            "--calibration-folds", "0"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    captured = capsys.readouterr()
    assert "flagged" in captured.out and "cross-fit folds" in captured.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    original, _ = load_pairs(pairs_file)
    assert [r["id"] for r in rows] == [p.id for p in original]
    assert {r["fold"] for r in rows} == {0, 1, 2, 3}
    assert all(0.0 <= r["suspicion"] <= 1.0 and "in_sample" not in r for r in rows)
    assert rows[3]["flagged"], rows[3]  # the one label written the wrong way round
    cleaned, _ = load_pairs(clean)
    assert len(cleaned) == len(original)
    for row, before, after in zip(rows, original, cleaned, strict=True):
        assert row["action"] == ("flipped" if row["flagged"] else "kept")
        swapped = (after.chosen, after.rejected) == (before.rejected, before.chosen)
        assert swapped == row["flagged"] and after.id == before.id
    model = EnsembleRewardModel.load(rm, use_cache=False)
    assert model.n_pairs_ == len(cleaned) and model.config.n_members == 3


def test_audit_soft_labels_the_suspects_with_their_held_out_probability(
    tmp_path, pairs_file, capsys
) -> None:
    out, clean, rm = tmp_path / "audit.jsonl", tmp_path / "clean.jsonl", tmp_path / "rm2"
    argv = ["audit", "--data", pairs_file, "--out", out, *FAST, "--folds", "4",
            "--action", "soft", "--clean-out", clean, "--retrain", rm,
            "--calibration-folds", "0"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    original, _ = load_pairs(pairs_file)
    cleaned, _ = load_pairs(clean)
    assert [(p.chosen, p.rejected) for p in cleaned] == [(p.chosen, p.rejected) for p in original]
    for row, after in zip(rows, cleaned, strict=True):
        assert row["action"] == ("soft-labelled" if row["flagged"] else "kept")
        if row["flagged"]:  # the held-out probability of the label: 1 − suspicion
            assert after.soft_label == pytest.approx(1.0 - row["suspicion"])
            assert after.soft_label < 0.5
        else:
            assert after.soft_label is None
    assert rows[3]["flagged"]
    model = EnsembleRewardModel.load(rm, use_cache=False)
    assert model.n_pairs_ == len(cleaned)


def test_audit_with_a_model_trains_its_config_and_reports_its_votes(
    tmp_path, pairs_file, model_dir, capsys
) -> None:
    out, clean = tmp_path / "audit.jsonl", tmp_path / "clean.jsonl"
    argv = ["audit", "--data", pairs_file, "--out", out, "--model", model_dir, "--folds", "3",
            "--action", "drop", "--threshold", "0.6", "--clean-out", clean]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    assert "(2 members, 3 folds)" in capsys.readouterr().out  # the model's K = 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(set(r["in_sample"]) == {"vote_share", "margin_mean", "margin_std", "p_label"}
               for r in rows)  # fmt: skip
    assert [r["flagged"] for r in rows] == [r["suspicion"] > 0.6 for r in rows]
    kept, _ = load_pairs(clean)
    assert [p.id for p in kept] == [r["id"] for r in rows if not r["flagged"]]


BAD = [
    (["--folds", "1"], ["--folds", "must be an integer >= 2"]),
    (["--folds", "41"], ["--folds 41", "only 40 distinct prompts"]),
    (["--fold-seed", "-1"], ["--fold-seed", "must be an integer >= 0"]),
    (["--threshold", "1.5"], ["--threshold", "in [0, 1)"]),
    (["--threshold", "-0.1"], ["--threshold", "in [0, 1)"]),
    (["--action", "smooth"], ["--action", "must be one of: flag, drop, flip, soft"]),
    (["--clean-out", "{tmp}/c.jsonl"], ["--clean-out need --action drop, flip or soft"]),
    (["--retrain", "{tmp}/rm"], ["--retrain need --action drop, flip or soft"]),
    (["--action", "drop", "--clean-out", "{data}"], ["--clean-out", "--data", "overwrite"]),
    (["--action", "drop", "--clean-out", "{tmp}"], ["--clean-out", "is a folder"]),
    (["--action", "drop", "--clean-out", "{tmp}/a.jsonl"], ["--clean-out", "--out", "same file"]),
    (["--action", "drop", "--retrain", "{tmp}/full"], ["--retrain", "not a rewardhedge model"]),
    (["--action", "drop", "--retrain", "{tmp}/a.jsonl"], ["--out", "is inside --retrain"]),
    (
        ["--action", "flip", "--retrain", "{tmp}/rm", "--clean-out", "{tmp}/rm/c.jsonl"],
        ["--clean-out", "is inside --retrain"],
    ),
    (
        ["--action", "drop", "--retrain", "{tmp}/rm", "--calibration-folds", "30"],
        ["calibration needs at least 60 pairs", "got 40", "--calibration-folds 0"],
    ),
    (["--model", "{tmp}/none"], ["{tmp}/none"]),
    (["--model", "{model}", "--config", "{tmp}/cfg.json"], ["--model and --config"]),
]


@pytest.mark.parametrize(("extra", "needles"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_values_are_refused_in_one_line_before_anything_is_written(
    tmp_path, pairs_file, model_dir, capsys, extra, needles
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    (tmp_path / "cfg.json").write_text("{}")
    names = {"tmp": tmp_path, "data": pairs_file, "model": model_dir}
    before = snapshot(tmp_path)
    argv = ["audit", "--data", pairs_file, "--out", tmp_path / "a.jsonl", *FAST]
    code = cli.main([str(a) for a in argv] + [e.format(**names) for e in extra])
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in captured.err, captured.err
    assert "Auditing" not in captured.err  # refused before any work
    for needle in needles:
        assert needle.format(**names) in errors[0], errors[0]
    assert snapshot(tmp_path) == before
