"""The model folder: round trips, and refusal of corrupt, truncated or foreign folders."""

from __future__ import annotations

import json

import pytest
import torch

from rewardhedge.errors import ModelFormatError
from rewardhedge.models.io import load_model_folder, save_model_folder


def write(tmp_path, name="rm"):
    return save_model_folder(
        tmp_path / name,
        model_class="EnsembleRewardModel",
        config={"a": 1},
        tensors={"w": torch.arange(6.0).reshape(2, 3)},
        info={"encoder_id": "enc", "training_data_hash": "sha256:x"},
    )


def test_round_trip_and_manifest(tmp_path):
    folder = write(tmp_path)
    config, tensors, manifest = load_model_folder(folder, expected_class="EnsembleRewardModel")
    assert config == {"a": 1}
    assert torch.equal(tensors["w"], torch.arange(6.0).reshape(2, 3))
    assert manifest["format_version"] == 1 and manifest["encoder_id"] == "enc"
    assert set(manifest["files"]) == {"config.json", "weights.safetensors"}
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "manifest.json",
        "weights.safetensors",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_overwrite_replaces_model_but_not_foreign_folder(tmp_path):
    write(tmp_path)
    write(tmp_path)  # replacing our own model is fine
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "x.txt").write_text("mine")
    with pytest.raises(ModelFormatError, match="not a rewardhedge model folder; refusing"):
        write(tmp_path, "notes")
    assert (tmp_path / "notes" / "x.txt").read_text() == "mine"


def test_truncated_weights_are_refused(tmp_path):
    folder = write(tmp_path)
    weights = folder / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    with pytest.raises(ModelFormatError, match=r"truncated or was altered"):
        load_model_folder(folder)


def test_corrupt_weights_are_refused(tmp_path):
    folder = write(tmp_path)
    weights = folder / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match=r"SHA-256 does not match"):
        load_model_folder(folder)


def test_foreign_and_future_folders_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        ModelFormatError, match=r"is not a rewardhedge model folder: manifest.json is missing"
    ):
        load_model_folder(tmp_path / "empty")
    with pytest.raises(ModelFormatError, match="model folder not found"):
        load_model_folder(tmp_path / "nope")
    folder = write(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format_version"] = 99
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="format_version 99 is not supported"):
        load_model_folder(folder)
    manifest["format_version"], manifest["format"] = 1, "something-else"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="was not written by rewardhedge"):
        load_model_folder(folder)


def test_wrong_model_class_is_refused(tmp_path):
    folder = write(tmp_path)
    with pytest.raises(ModelFormatError, match="not a 'OtherModel'"):
        load_model_folder(folder, expected_class="OtherModel")


def test_pickle_file_is_never_loaded(tmp_path):
    """A folder carrying a pickle instead of safetensors fails the format checks, not at unpickling."""
    folder = write(tmp_path)
    (folder / "weights.safetensors").write_bytes(b"\x80\x04\x95" + b"\x00" * 40)
    with pytest.raises(ModelFormatError):
        load_model_folder(folder)
