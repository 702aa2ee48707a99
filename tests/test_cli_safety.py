"""The command line refuses, before any work and in one line, what would lose data or
be silently ignored: outputs over inputs, unwritable outputs, conflicting flags, bad
config values, heads that cannot fit in memory, too few pairs to calibrate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rewardhedge import cli
from rewardhedge.config import EncoderConfig, EnsembleConfig
from rewardhedge.estimators.ensemble import EnsembleRewardModel

HASHING = ["--encoder", "hashing"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def pair_rows(pairs):
    return [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]


def snapshot(root):
    """Every path under ``root`` with its content (files) or None (folders, links)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            out[os.path.join(dirpath, name)] = None
        for name in filenames:
            path = os.path.join(dirpath, name)
            out[path] = None if os.path.islink(path) else Path(path).read_bytes()
    return out


def refused(capsys, argv, *needles):
    """Run the CLI; it must exit 2 with exactly one stderr line, naming ``needles``."""
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert "Traceback" not in captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def files(tmp_path, pair_factory):
    """Pairs, items and pools files in ``tmp_path``."""
    pairs = write_jsonl(tmp_path / "pairs.jsonl", pair_rows(pair_factory(30)))
    items = write_jsonl(tmp_path / "items.jsonl", [{"prompt": "q", "response": "a"}] * 3)
    pools = write_jsonl(
        tmp_path / "pools.jsonl",
        [{"prompt": "q", "candidates": ["a b", "c d"], "gold": [1.0, 0.0]}] * 3,
    )
    return {"pairs": pairs, "items": items, "pools": pools}


# -- 1. no output over an input --------------------------------------------------------------
def test_train_rejects_over_data_is_refused_and_data_unchanged(tmp_path, files, capsys):
    before = snapshot(tmp_path)
    data = files["pairs"]
    argv = ["train", "--data", data, "--out", tmp_path / "rm", *HASHING]
    refused(capsys, [*argv, "--skip-invalid", "--rejects", data], "--rejects", "--data")
    assert snapshot(tmp_path) == before


def test_default_rejects_file_over_data_is_refused(tmp_path, files, capsys):
    data = write_jsonl(
        tmp_path / "rm.rejects.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}]
    )
    before = snapshot(tmp_path)
    argv = ["train", "--data", data, "--out", tmp_path / "rm", "--skip-invalid", *HASHING]
    refused(capsys, argv, "the rejects file", "--data")
    assert snapshot(tmp_path) == before


def test_score_out_over_data_is_refused_also_through_links_and_relative_paths(
    tmp_path, files, model_dir, capsys, monkeypatch
):
    data = files["items"]
    (tmp_path / "link.jsonl").symlink_to(data)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    before = snapshot(tmp_path)
    for out in (data, tmp_path / "link.jsonl", "../items.jsonl", "../sub/../items.jsonl"):
        argv = ["score", "--model", model_dir, "--data", data, "--out", out]
        refused(capsys, argv, "--out", "--data", "overwrite the input")
        assert snapshot(tmp_path) == before


def test_score_out_into_the_model_folder_is_refused(tmp_path, files, model_dir, capsys):
    manifest = (model_dir / "manifest.json").read_bytes()
    argv = ["score", "--model", model_dir, "--data", files["items"]]
    refused(capsys, [*argv, "--out", model_dir / "manifest.json"], "--out", "--model")
    assert (model_dir / "manifest.json").read_bytes() == manifest


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["eval", "--model", "{model}", "--data", "{pairs}", "--json", "{pairs}"], ["--json"]),
        (
            ["eval", "--model", "{model}", "--data", "{pairs}", "--ood", "{ood}", "--json",
             "{ood}"],
            ["--json", "--ood"],
        ),
        (["bon", "--model", "{model}", "--pools", "{pools}", "--out", "{pools}"], ["--out"]),
        (
            ["bon", "--model", "{model}", "--pools", "{pools}", "--out", "{tmp}/p.jsonl",
             "--summary", "{pools}"],
            ["--summary", "--pools"],
        ),
        (
            ["bon", "--model", "{model}", "--pools", "{pools}", "--out", "{tmp}/p.jsonl",
             "--summary", "{tmp}/p.jsonl"],
            ["--summary", "--out", "same file"],
        ),
        (["report", "{tmp}/lab.json", "--out", "{tmp}/lab.json"], ["--out", "the input"]),
        (
            ["overopt", "--pools", "{pools}", "--out", "{tmp}/lab", "--skip-invalid",
             "--rejects", "{pools}"],
            ["--rejects", "--pools"],
        ),
        (
            ["finetune", "--backbone", "minilm", "--data", "{pairs}", "--out", "{tmp}/ft",
             "--skip-invalid", "--rejects", "{pairs}"],
            ["--rejects", "--data"],
        ),
        (
            ["finetune", "--backbone", "minilm", "--data", "{pairs}", "--out", "{tmp}/ft",
             "--config", "{tmp}/ft.json", "--checkpoint-dir", "{tmp}/ft.json"],
            ["--checkpoint-dir", "is a file"],
        ),
    ],
)  # fmt: skip
def test_every_command_refuses_an_output_over_an_input(
    tmp_path, files, model_dir, capsys, argv, needles
):
    write_jsonl(tmp_path / "ood.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    (tmp_path / "lab.json").write_text("{}")
    (tmp_path / "ft.json").write_text("{}")
    names = {"model": model_dir, "tmp": tmp_path, "ood": tmp_path / "ood.jsonl"} | files
    before = snapshot(tmp_path)
    refused(capsys, [a.format(**names) for a in argv], *needles)
    assert snapshot(tmp_path) == before


def test_train_into_a_model_folder_holding_the_data_is_refused(tmp_path, model_dir, files, capsys):
    import shutil

    rm = tmp_path / "rm"
    shutil.copytree(model_dir, rm)
    data = rm / "pairs.jsonl"
    shutil.copy(files["pairs"], data)
    before = snapshot(tmp_path)
    refused(capsys, ["train", "--data", data, "--out", rm, *HASHING], "--data", "inside", "--out")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flag", ["--rejects", "--cache-dir"])
def test_an_output_inside_the_model_folder_being_written_is_refused(tmp_path, files, capsys, flag):
    """Saving a model replaces its folder, so no other output may live inside it."""
    rm = tmp_path / "rm"
    inside = rm / ("rejects.jsonl" if flag == "--rejects" else "cache")
    argv = ["train", "--data", files["pairs"], "--out", rm, *HASHING, flag, inside]
    if flag == "--rejects":
        argv.append("--skip-invalid")
    before = snapshot(tmp_path)
    refused(capsys, argv, flag, "inside", "--out")
    assert snapshot(tmp_path) == before


# -- 2. outputs checked before the work ------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["eval", "--model", "{model}", "--data", "{pairs}", "--json", "{tmp}/dir"],
         ["--json", "is a folder"]),
        (["score", "--model", "{model}", "--data", "{items}", "--out", "{tmp}/dir"],
         ["--out", "is a folder"]),
        (["score", "--model", "{model}", "--data", "{items}", "--out", "{tmp}/file.txt/s.jsonl"],
         ["--out", "is a file, so the file cannot be made"]),
        (["score", "--model", "{model}", "--data", "{items}", "--out", ""],
         ["--out is empty"]),
        (["train", "--data", "{pairs}", "--out", "{tmp}/file.txt", *HASHING],
         ["--out", "is a file"]),
        (["train", "--data", "{pairs}", "--out", "", *HASHING], ["--out is empty"]),
        (["train", "--data", "{pairs}", "--out", "{tmp}/dir", *HASHING],
         ["--out", "not a rewardhedge model folder"]),
        (["train", "--data", "{pairs}", "--out", "{tmp}/rm", "--cache-dir", "{tmp}/file.txt",
          *HASHING], ["--cache-dir", "is a file"]),
        (["sandbox", "--out", "{tmp}/file.txt"], ["--out", "is a file"]),
        (["sandbox", "--out", "{tmp}/file.txt/sb"], ["--out", "is a file, so the folder"]),
        (["demo", "--out", "{tmp}/file.txt"], ["--out", "is a file"]),
        (["overopt", "--out", "{tmp}/file.txt"], ["--out", "is a file"]),
        (["overopt", "--out", "{tmp}/lab", "--pools", "{pools}", "--skip-invalid",
          "--rejects", "{tmp}/dir"], ["--rejects", "is a folder"]),
        (["bon", "--model", "{model}", "--pools", "{pools}", "--out", "{tmp}/dir"],
         ["--out", "is a folder"]),
        (["report", "{tmp}/lab.json", "--out", "{tmp}/dir"], ["--out", "is a folder"]),
        (["finetune", "--backbone", "minilm", "--data", "{pairs}", "--out", "{tmp}/file.txt"],
         ["--out", "is a file"]),
    ],
)  # fmt: skip
def test_bad_output_paths_are_refused_before_any_work(
    tmp_path, files, model_dir, capsys, monkeypatch, argv, needles
):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "keep.txt").write_text("mine")
    (tmp_path / "file.txt").write_text("mine")
    (tmp_path / "lab.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    names = {"model": model_dir, "tmp": tmp_path} | files
    before = snapshot(tmp_path)
    refused(capsys, [a.format(**names) for a in argv], *needles)
    assert snapshot(tmp_path) == before


# -- 3. conflicting or ignored flags ---------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--rejects", "{tmp}/bad.jsonl"], ["--rejects", "--skip-invalid"]),
        (["--no-cache", "--cache-dir", "{tmp}/cache"], ["--no-cache", "--cache-dir"]),
        (["--encoder-path", "{tmp}", *HASHING], ["--encoder-path", "--encoder hashing"]),
        (["--encoder-path", "{tmp}"], ["--encoder-path", "--encoder minilm"]),
    ],
)
def test_conflicting_or_ignored_flags_are_refused(tmp_path, files, capsys, extra, needles):
    before = snapshot(tmp_path)
    argv = ["train", "--data", files["pairs"], "--out", tmp_path / "rm"]
    refused(capsys, argv + [a.format(tmp=tmp_path) for a in extra], *needles)
    assert snapshot(tmp_path) == before


def test_score_and_eval_refuse_rejects_without_skip_invalid(tmp_path, files, model_dir, capsys):
    for argv in (
        ["score", "--model", model_dir, "--data", files["items"], "--out", tmp_path / "s.jsonl"],
        ["eval", "--model", model_dir, "--data", files["pairs"]],
        ["bon", "--model", model_dir, "--pools", files["pools"], "--out", tmp_path / "p.jsonl"],
    ):
        refused(capsys, [*argv, "--rejects", tmp_path / "r.jsonl"], "--rejects", "--skip-invalid")
    assert not (tmp_path / "r.jsonl").exists() and not (tmp_path / "s.jsonl").exists()


# -- 4. common mistakes give one line --------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "needles"),
    [
        ({"n_members": "three"}, ["n_members == 'three' is not an integer"]),
        ({"train": {"lr": "fast"}}, ["train.lr == 'fast' is not a number or null"]),
        ({"train": {"bootstrap": "yes"}}, ["train.bootstrap == 'yes' is not a boolean"]),
        ({"encoder": {"views": 3}}, ["encoder.views == 3 is not a list"]),
    ],
)
def test_config_file_values_of_the_wrong_type_name_file_and_key(
    tmp_path, files, capsys, config, needles
):
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    argv = ["train", "--data", files["pairs"], "--out", tmp_path / "rm", "--config"]
    refused(capsys, [*argv, tmp_path / "cfg.json"], "cfg.json: ", *needles)
    assert not (tmp_path / "rm").exists()


def test_huge_ensembles_are_refused_before_allocating(tmp_path, files, capsys):
    argv = ["train", "--data", files["pairs"], "--out", tmp_path / "rm", "--members", "100000000"]
    line = refused(capsys, argv, "--members 100000000", "GB", "fewer members")
    assert not (tmp_path / "rm").exists()
    assert "members × 768 features" in line  # MiniLM's dual pooling


def test_too_few_pairs_to_calibrate_names_the_flag_before_training(tmp_path, pair_factory, capsys):
    data = write_jsonl(tmp_path / "few.jsonl", pair_rows(pair_factory(7)))
    code = cli.main(["train", "--data", str(data), "--out", str(tmp_path / "rm"), *HASHING])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: calibration needs at least 10 pairs for 5 cross-fitting folds, got 7; "
        "pass --calibration-folds 0 to skip calibration."
    ]
    assert "Encoding" not in err and not (tmp_path / "rm").exists()
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "rm"), *HASHING]
    assert cli.main([*argv, "--members", "2", "--calibration-folds", "0"]) == 0


def test_library_users_get_the_config_name_before_fitting(pair_factory):
    from rewardhedge.errors import ConfigError

    cfg = EnsembleConfig(n_members=2, encoder=EncoderConfig(kind="hashing", dim=32))
    model = EnsembleRewardModel(cfg, use_cache=False)
    with pytest.raises(ConfigError, match=r"set uncertainty\.calibration_folds=0 to skip"):
        model.fit(pair_factory(7))
    assert not hasattr(model, "heads_")


# -- 5. duplicates are counted -----------------------------------------------------------------
def test_duplicate_pairs_are_reported_in_the_load_line(tmp_path, pair_factory, capsys):
    rows = pair_rows(pair_factory(20))
    spaced = dict(rows[1], chosen="  " + rows[1]["chosen"].replace(" ", "  ") + "\n")
    data = write_jsonl(tmp_path / "pairs.jsonl", [*rows, rows[0], rows[0], spaced])
    argv = ["train", "--data", data, "--out", tmp_path / "rm", "--members", "2", *HASHING]
    assert cli.main([str(a) for a in argv]) == 0
    err = capsys.readouterr().err
    assert "23 rows kept of 23 read, 3 duplicate pairs (kept)" in err


# -- 6. wording --------------------------------------------------------------------------------
def test_unknown_extension_names_the_format_flag(tmp_path, files, capsys):
    data = tmp_path / "pairs.txt"
    data.write_bytes(files["pairs"].read_bytes())
    line = refused(capsys, ["train", "--data", data, "--out", tmp_path / "rm"], "pass --format")
    assert "format=" not in line


def test_csv_format_on_json_lines_says_it_is_not_csv(tmp_path, files, capsys):
    argv = ["train", "--data", files["pairs"], "--out", tmp_path / "rm", "--format", "csv"]
    line = refused(capsys, argv, "pairs.jsonl:1: does not look like CSV", "--format jsonl")
    assert "keys present" not in line and "format=" not in line


def test_malformed_json_does_not_say_at_at(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b}\n')
    line = refused(capsys, ["train", "--data", data, "--out", tmp_path / "rm"], "bad.jsonl:1")
    assert "starting at column" in line and "at at" not in line
