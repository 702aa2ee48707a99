"""Model folders survive a crash at any step of a save, refuse NaN/Inf weights both ways,
and get the permissions of the process umask.

The crash tests instrument every file-system step ``save_model_folder`` takes (each
``os.replace``/``mkdir``/``chmod``/``fsync``, ``shutil.rmtree``, ``tempfile.mkdtemp``,
the file writes and ``safetensors.save_file``), record the sequence once, and crash at
each call in turn: a crashing write leaves a torn file; in "kill" mode every later step
fails too, as if the process had died there, so nothing is cleaned up. A new step in the
protocol becomes a new crash point without anyone listing it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import rewardhedge.data.jsonl as jsonl_mod
import rewardhedge.models.io as io_mod
from rewardhedge.data.jsonl import current_umask
from rewardhedge.errors import ModelFormatError
from rewardhedge.models.io import (
    load_model_folder,
    recover_model_folder,
    save_model_folder,
)

NAME = "rm"

OLD = {
    "config": {"version": "old"},
    "tensors": {"w": torch.arange(6.0).reshape(2, 3), "n": torch.tensor([1, 2])},
    "extra": {"tok/vocab.txt": b"old vocabulary\n", "tok/sub/t.json": b'{"v": 1}'},
}
NEW = {
    "config": {"version": "new"},
    "tensors": {"w": -torch.arange(6.0).reshape(2, 3), "n": torch.tensor([3, 4])},
    "extra": {"tok/vocab.txt": b"new vocabulary\n", "tok/sub/t.json": b'{"v": 2}'},
}


def write(folder: Path, model: dict) -> Path:
    return save_model_folder(
        folder,
        model_class="EnsembleRewardModel",
        config=model["config"],
        tensors=model["tensors"],
        info={"encoder_id": "enc", "training_data_hash": "sha256:x"},
        extra_files=model["extra"],
    )


def assert_holds(folder: Path, model: dict) -> None:
    config, tensors, _ = load_model_folder(folder, expected_class="EnsembleRewardModel")
    assert config == model["config"]
    assert tensors.keys() == model["tensors"].keys()
    for key, value in model["tensors"].items():
        assert torch.equal(tensors[key], value)
    for name, data in model["extra"].items():
        assert (folder / name).read_bytes() == data


def hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# -- instrumentation ---------------------------------------------------------------------


class Crash(OSError):
    """The simulated failure (an OSError: what a full disk or a dying process gives)."""


_TOKEN = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|new|old)-[A-Za-z0-9_]+$")


def _where(arg: object) -> str:
    """A stable label for a path argument: tmp/new/old/target, plus the path inside."""
    if not isinstance(arg, str | os.PathLike):
        return ""
    parts = Path(arg).parts
    for i, part in enumerate(parts):
        m = _TOKEN.match(part)
        if m and m.group("name") == NAME:
            return "/".join([m.group("kind"), *parts[i + 1 :]])
        if part == NAME and i == len(parts) - 1:
            return "target"
    return Path(arg).name


class Instrument:
    """Counts the io module's file-system steps; raises at call ``crash_at``."""

    def __init__(self, crash_at: int | None = None, kill: bool = False) -> None:
        self.crash_at, self.kill, self.dead = crash_at, kill, False
        self.calls: list[str] = []

    def hook(self, name, real, torn=None):
        def step(*args, **kwargs):
            if self.dead:
                raise Crash(f"the process died earlier; {name} never runs")
            label = f"{name}({','.join(filter(None, map(_where, args[:2])))})"
            self.calls.append(label)
            if len(self.calls) - 1 == self.crash_at:
                self.dead = self.kill
                if torn is not None:
                    torn(*args)
                raise Crash(f"simulated crash at step {self.crash_at}: {label}")
            return real(*args, **kwargs)

        return step


class _Module:
    """A module whose named functions are replaced; everything else passes through."""

    def __init__(self, real, **hooks) -> None:
        self._real, self._hooks = real, hooks

    def __getattr__(self, name):
        return self._hooks.get(name) or getattr(self._real, name)


def _torn_write(path, data, mode):
    with open(path, "xb") as f:
        f.write(data[: len(data) // 2])


def _torn_safetensors(tensors, filename, metadata=None):
    Path(filename).write_bytes(b'\x08\x00\x00\x00\x00\x00\x00\x00{"a')


@contextlib.contextmanager
def instrumented(crash_at: int | None = None, kill: bool = False):
    inst = Instrument(crash_at, kill)
    real = {name: getattr(io_mod, name) for name in ("os", "shutil", "tempfile")}
    real_write, real_save = io_mod._write_file, io_mod.save_file
    patches = {
        "os": _Module(
            os,
            **{
                f: inst.hook(f"os.{f}", getattr(os, f))
                for f in ("replace", "mkdir", "chmod", "fsync")
            },
        ),
        "shutil": _Module(shutil, rmtree=inst.hook("rmtree", shutil.rmtree)),
        "tempfile": _Module(tempfile, mkdtemp=inst.hook("mkdtemp", tempfile.mkdtemp)),
        "_write_file": inst.hook("write", real_write, _torn_write),
        "save_file": inst.hook("save_file", real_save, _torn_safetensors),
    }
    for name, value in patches.items():
        setattr(io_mod, name, value)
    jsonl_mod.os = patches["os"]  # fsync_dir (shared with the JSONL writer) syncs folders
    try:
        yield inst
    finally:
        for name, value in real.items():
            setattr(io_mod, name, value)
        io_mod._write_file, io_mod.save_file = real_write, real_save
        jsonl_mod.os = os


def _record(scenario: str) -> list[str]:
    """The steps of one save, in order."""
    with tempfile.TemporaryDirectory() as root, warnings.catch_warnings():
        warnings.simplefilter("error")
        if scenario == "replace":
            write(Path(root) / NAME, OLD)
        with instrumented() as inst:
            write(Path(root) / NAME, NEW)
        return inst.calls


STEPS = {scenario: _record(scenario) for scenario in ("fresh", "replace")}
COMMIT = {scenario: steps.index("os.replace(tmp,new)") for scenario, steps in STEPS.items()}
CRASH_POINTS = [
    pytest.param(scenario, k, id=f"{scenario}-{k:02d}-{label}")
    for scenario, steps in STEPS.items()
    for k, label in enumerate(steps)
]


def test_the_recorded_protocol_has_every_step():
    """The instrumentation sees the whole protocol (else crash points would be missing)."""
    for scenario, steps in STEPS.items():
        for step in (
            "mkdtemp()",
            "write(tmp/config.json)",
            "save_file(tmp/weights.safetensors)",
            "write(tmp/tok/sub/t.json)",
            "os.mkdir(tmp/tok/sub)",
            "write(tmp/manifest.json)",
            "os.replace(tmp,new)",
            "os.replace(new,target)",
        ):
            assert step in steps, (scenario, step, steps)
        assert steps.index("write(tmp/manifest.json)") < COMMIT[scenario]
        assert steps.count("os.fsync()") >= 6  # each file, each folder, the parent
    assert "os.replace(target,old)" in STEPS["replace"]
    assert STEPS["replace"][-1] == "rmtree(old)"
    assert "os.replace(target,old)" not in STEPS["fresh"]


@pytest.mark.parametrize("mode", ["error", "kill-then-load", "kill-then-save"])
@pytest.mark.parametrize(("scenario", "crash_at"), CRASH_POINTS)
def test_a_crash_at_any_step_leaves_the_old_or_the_new_model(tmp_path, scenario, crash_at, mode):
    dest = tmp_path / NAME
    if scenario == "replace":
        write(dest, OLD)
    committed = crash_at > COMMIT[scenario]
    with instrumented(crash_at, kill=mode != "error") as inst, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "saved, but the previous model could not be removed"
        try:
            write(dest, NEW)
            raised = False
        except Crash:
            raised = True
    assert len(inst.calls) > crash_at  # the crash point was reached
    if not committed:
        assert raised, "a save that did not publish the new model must not return normally"
    expected = NEW if committed or not raised else OLD if scenario == "replace" else None
    leftovers = hidden(tmp_path)
    if mode == "error" and inst.calls[crash_at] != "rmtree(old)":
        assert leftovers == [], "an ordinary error is cleaned up at once"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if mode != "kill-then-save":
            # Load repairs what the crash left, then reads the old or the new model.
            if expected is None:
                with pytest.raises(ModelFormatError, match="model folder not found"):
                    load_model_folder(dest)
            else:
                assert_holds(dest, expected)
            assert hidden(tmp_path) == []
        # A rerun of the save succeeds and leaves nothing behind.
        write(dest, NEW)
    assert_holds(dest, NEW)
    assert hidden(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]
    if mode != "error" and leftovers:
        messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        assert any("an earlier save was interrupted" in m for m in messages), (leftovers, messages)


@pytest.mark.parametrize(("scenario", "crash_at"), CRASH_POINTS)
def test_a_crash_during_the_repair_is_repaired_too(tmp_path, scenario, crash_at):
    """Kill the save at ``crash_at``, then kill the repair at each of its own steps: the
    next load still finds the old or the new model, and no leftovers."""
    expected = NEW if crash_at > COMMIT[scenario] else OLD if scenario == "replace" else None

    def crashed(root: Path) -> Path:
        dest = root / NAME
        if scenario == "replace":
            write(dest, OLD)
        with (
            instrumented(crash_at, kill=True),
            contextlib.suppress(Crash),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            write(dest, NEW)
        return dest

    dest = crashed(tmp_path / "record")
    leftovers = hidden(dest.parent)
    with instrumented() as inst, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recover_model_folder(dest)
    assert bool(inst.calls) == bool(leftovers)  # each repair has steps to crash at
    for j in range(len(inst.calls)):
        dest = crashed(tmp_path / f"repair-{j}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with instrumented(j, kill=True), pytest.raises(Crash):
                recover_model_folder(dest)
            if expected is None:
                with pytest.raises(ModelFormatError, match="model folder not found"):
                    load_model_folder(dest)
            else:
                assert_holds(dest, expected)
        assert hidden(dest.parent) == [], (j, inst.calls[j])


def test_a_linked_model_folder_is_replaced_by_a_folder_and_the_link_removed(tmp_path):
    target = write(tmp_path / "elsewhere", OLD)
    os.symlink(target, tmp_path / NAME)
    write(tmp_path / NAME, NEW)
    assert not (tmp_path / NAME).is_symlink()
    assert_holds(tmp_path / NAME, NEW)
    assert_holds(target, OLD)
    assert hidden(tmp_path) == []


@pytest.mark.parametrize("repair_by", ["load", "save"])
def test_leftovers_of_the_old_two_rename_save_are_repaired(tmp_path, repair_by):
    """The reported state: target gone, the old model in ``.rm.old-PID`` and the new one
    (complete, but not marked so) in ``.rm.tmp-*``. The old model comes back."""
    dest = write(tmp_path / NAME, OLD)
    new = write(tmp_path / "elsewhere", NEW)
    os.replace(dest, tmp_path / f".{NAME}.old-12345")
    os.replace(new, tmp_path / f".{NAME}.tmp-k2j4_x9q")
    with pytest.warns(RuntimeWarning, match=r"an earlier save was interrupted") as record:
        if repair_by == "load":
            assert_holds(dest, OLD)
        else:
            write(dest, NEW)
            assert_holds(dest, NEW)
    text = " ".join(str(w.message) for w in record)
    assert "removed the incomplete folder .rm.tmp-k2j4_x9q" in text
    assert "restored the previous model from .rm.old-12345" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]


def test_a_complete_folder_that_fails_its_hashes_is_not_published(tmp_path):
    dest = write(tmp_path / NAME, OLD)
    new = write(tmp_path / "elsewhere", NEW)
    (new / "config.json").write_text('{"version": "evil"}')
    os.replace(dest, tmp_path / f".{NAME}.old-abc")
    os.replace(new, tmp_path / f".{NAME}.new-abc")
    with pytest.warns(RuntimeWarning, match=r"removed \.rm\.new-abc, which fails verification"):
        actions = recover_model_folder(dest)
    assert any("restored the previous model from .rm.old-abc" in a for a in actions)
    assert_holds(dest, OLD)
    assert hidden(tmp_path) == []


def test_recovery_with_nothing_to_do_does_nothing(tmp_path):
    dest = write(tmp_path / NAME, OLD)
    (tmp_path / f".{NAME}x.tmp-abc").mkdir()  # another model's leftovers are not ours
    (tmp_path / f".{NAME}.tmp-abc.json").write_text("{}")  # nor is a file
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert recover_model_folder(dest) == []
        assert recover_model_folder(tmp_path / "missing") == []
    assert hidden(tmp_path) == [f".{NAME}.tmp-abc.json", f".{NAME}x.tmp-abc"]


def test_a_load_waits_for_a_save_in_progress_instead_of_removing_its_folder(tmp_path):
    dest = write(tmp_path / NAME, OLD)
    in_progress = tmp_path / f".{NAME}.tmp-inflight"
    in_progress.mkdir()
    loaded: list[dict] = []
    with pytest.warns(RuntimeWarning, match=r"removed the incomplete folder \.rm\.tmp-inflight"):
        with io_mod._locked(dest):  # as a save holds it
            reader = threading.Thread(target=lambda: loaded.append(load_model_folder(dest)[0]))
            reader.start()
            reader.join(0.5)
            assert reader.is_alive() and in_progress.is_dir()
        reader.join(30)
    assert loaded == [OLD["config"]]
    assert hidden(tmp_path) == []


def test_a_failed_final_cleanup_still_reports_success(tmp_path):
    dest = write(tmp_path / NAME, OLD)
    crash_at = STEPS["replace"].index("rmtree(old)")
    with (
        instrumented(crash_at),
        pytest.warns(RuntimeWarning, match=r"saved, but the previous model could not be"),
    ):
        write(dest, NEW)
    assert len(hidden(tmp_path)) == 1
    with pytest.warns(RuntimeWarning, match=r"removed the previous model left in \.rm\.old-"):
        assert_holds(dest, NEW)
    assert hidden(tmp_path) == []


# -- permissions -------------------------------------------------------------------------


@pytest.fixture
def umask():
    """Sets the process umask for one test, restoring it after."""
    before = os.umask(0o022)
    os.umask(before)

    def set_(mask: int) -> int:
        os.umask(mask)
        return mask

    yield set_
    os.umask(before)


def modes(folder: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(folder.stat().st_mode)}
    for p in folder.rglob("*"):
        out[p.relative_to(folder).as_posix()] = stat.S_IMODE(p.stat().st_mode)
    return out


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_files_and_folders_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    for model in (OLD, NEW):  # a new folder, then a replaced one
        folder = write(tmp_path / NAME, model)
        got = modes(folder)
        assert got == {
            ".": 0o777 & ~mask,
            "config.json": 0o666 & ~mask,
            "weights.safetensors": 0o666 & ~mask,
            "manifest.json": 0o666 & ~mask,
            "tok": 0o777 & ~mask,
            "tok/vocab.txt": 0o666 & ~mask,
            "tok/sub": 0o777 & ~mask,
            "tok/sub/t.json": 0o666 & ~mask,
        }


def test_the_umask_is_read_without_changing_it(umask):
    umask(0o027)
    assert current_umask() == 0o027
    assert io_mod._modes() == (0o640, 0o750)
    assert os.umask(0o027) == 0o027


# -- non-finite weights ------------------------------------------------------------------


def test_saving_nan_or_inf_is_refused_and_writes_nothing(tmp_path):
    w = torch.arange(6.0)
    w[1] = float("nan")
    w[2] = float("nan")
    w[4] = float("-inf")
    bad = {
        **NEW,
        "tensors": {"w": w, "b": torch.ones(3, dtype=torch.float16), "n": torch.tensor([1])},
    }
    with pytest.raises(
        ModelFormatError,
        match=r"refusing to save .*rm: non-finite weights in tensor 'w' \(3 of 6 values: 2 NaN, 1 Inf\)",
    ):
        write(tmp_path / NAME, bad)
    assert list(tmp_path.iterdir()) == []
    # over an existing model: it stays as it was
    write(tmp_path / NAME, OLD)
    bad["tensors"]["b"] = torch.tensor([float("inf")], dtype=torch.bfloat16)
    with pytest.raises(
        ModelFormatError, match=r"tensor 'w' \(3 of 6.*tensor 'b' \(1 of 1 values: 0 NaN, 1 Inf\)"
    ):
        write(tmp_path / NAME, bad)
    assert_holds(tmp_path / NAME, OLD)
    assert hidden(tmp_path) == []


def damage(folder: Path, tensor: str, value: float, count: int = 1) -> None:
    """Put ``value`` into ``tensor`` of a saved folder and re-hash it in the manifest, as a
    folder saved before non-finite weights were refused would be."""
    weights = folder / "weights.safetensors"
    tensors = load_file(str(weights))
    tensors[tensor].view(-1)[:count] = value
    save_file(tensors, str(weights), metadata={"format": io_mod.FORMAT_NAME})
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["weights.safetensors"] = {
        "sha256": io_mod._sha256(weights),
        "bytes": weights.stat().st_size,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_loading_nan_weights_is_refused_naming_file_and_tensor(tmp_path):
    folder = write(tmp_path / NAME, OLD)
    damage(folder, "w", float("nan"), count=2)
    with pytest.raises(ModelFormatError) as info:
        load_model_folder(folder)
    assert str(info.value).startswith(f"{folder / 'weights.safetensors'}: non-finite weights")
    assert "tensor 'w' (2 of 6 values: 2 NaN, 0 Inf)" in str(info.value)


def _poison(state: dict[str, torch.Tensor]) -> str:
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    with torch.no_grad():
        state[name].view(-1)[0] = float("nan")
    return name


def test_ensemble_model_refuses_to_save_or_load_nan(tmp_path, tiny_pairs):
    from rewardhedge.config import EncoderConfig, EnsembleConfig
    from rewardhedge.estimators.ensemble import EnsembleRewardModel
    from rewardhedge.estimators.loading import load_reward_model

    config = EnsembleConfig(n_members=2, encoder=EncoderConfig(kind="hashing", dim=64))
    model = EnsembleRewardModel(config).fit(tiny_pairs)
    folder = model.save(tmp_path / "good")
    name = next(
        k for k, v in load_file(str(folder / "weights.safetensors")).items() if v.numel() > 1
    )
    damage(folder, name, float("inf"))
    for load in (EnsembleRewardModel.load, load_reward_model):
        with pytest.raises(
            ModelFormatError,
            match=rf"weights\.safetensors: non-finite weights in tensor '{re.escape(name)}' \(1 of \d+ values: 0 NaN, 1 Inf\)",
        ):
            load(folder)

    poisoned = _poison(model.heads_.heads.state_dict())
    with pytest.raises(
        ModelFormatError,
        match=rf"refusing to save .*bad: non-finite weights in tensor '{re.escape(poisoned)}' \(1 of",
    ):
        model.save(tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def tiny_finetuned(tmp_path_factory):
    """A 1-layer, width-32 BERT fine-tuned for one step (about a second)."""
    pytest.importorskip("transformers")
    from transformers import AutoModel, AutoTokenizer, BertConfig

    from rewardhedge.config_finetune import FinetuneConfig
    from rewardhedge.encoders.transformer import minilm_path
    from rewardhedge.estimators.finetuned import FinetunedRewardModel
    from rewardhedge.types import PreferencePair

    tok = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    backbone = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    AutoModel.from_config(
        BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    ).save_pretrained(backbone)
    tok.save_pretrained(backbone)
    pairs = [PreferencePair(prompt=f"q{i}", chosen="good answer", rejected="bad") for i in range(8)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = FinetuneConfig(backbone=str(backbone), batch_size=8, max_steps=1, max_length=16)
        return FinetunedRewardModel(config).fit(pairs)
    finally:
        torch.set_num_threads(threads)


def test_finetuned_model_refuses_to_save_or_load_nan(tmp_path, tiny_finetuned):
    from rewardhedge.estimators.finetuned import FinetunedRewardModel

    folder = tiny_finetuned.save(tmp_path / "good")
    FinetunedRewardModel.load(folder)  # a sound folder loads
    name = "backbone.embeddings.word_embeddings.weight"
    damage(folder, name, float("nan"), count=3)
    with pytest.raises(
        ModelFormatError,
        match=rf"good/weights\.safetensors: non-finite weights in tensor '{re.escape(name)}' \(3 of \d+ values: 3 NaN, 0 Inf\)",
    ):
        FinetunedRewardModel.load(folder)

    poisoned = _poison(tiny_finetuned.network_.state_dict())
    with pytest.raises(
        ModelFormatError, match=rf"non-finite weights in tensor '{re.escape(poisoned)}' \(1 of"
    ):
        tiny_finetuned.save(tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and hidden(tmp_path) == []
