"""Training checkpoints that resume exactly after a kill, written atomically, without pickle.

Why this shape:

* **Exact resume.** A run killed at step N and resumed from its checkpoint must reach the same
  parameters as a run that never stopped. So besides the model we keep the optimizer state, the
  LR scheduler state, every RNG the training touches (torch CPU and CUDA, Python ``random``,
  NumPy's global generator) and a free-form ``progress`` dict (epoch, position in the data, ...).
* **Atomic.** Each checkpoint is built in a hidden ``.tmp-step-*`` folder, every file is fsynced,
  a ``DONE`` marker is written last, and only then is the folder renamed into place with
  ``os.replace``. A kill at any moment leaves either the previous checkpoints or a complete new
  one; :meth:`CheckpointManager.latest` never picks a half-written folder. Only the newest
  ``keep_last`` checkpoints are kept.
* **Pickle-free.** Checkpoint folders get copied between machines and people, and
  ``torch.load``/``pickle`` run arbitrary code from the file. Here tensors go to safetensors and
  everything else to JSON, so loading a stranger's checkpoint can at worst fail.

Layout of ``root/step-00001234/``::

    model.safetensors          model.state_dict() (or only trainable parameters)
    optimizer.safetensors      optimizer state tensors      (if an optimizer was given)
    optimizer.json             param groups + state layout  (if an optimizer was given)
    scheduler.json             scheduler.state_dict()       (if a scheduler was given)
    rng.safetensors, rng.json  torch / CUDA / random / numpy RNG states
    extra.safetensors          caller's extra tensors       (if any)
    progress.json              the caller's progress dict plus "step"
    DONE                       written last; marks the folder complete
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rewardhedge.data.jsonl import fsync_dir
from rewardhedge.errors import RewardHedgeError

__all__ = [
    "CheckpointError",
    "CheckpointManager",
    "load_optimizer_state",
    "optimizer_state_tensors",
    "rng_state",
    "set_rng_state",
]

FORMAT_NAME = "rewardhedge.train_checkpoint"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
OPTIMIZER_TENSORS_FILE = "optimizer.safetensors"
OPTIMIZER_META_FILE = "optimizer.json"
SCHEDULER_FILE = "scheduler.json"
RNG_TENSORS_FILE = "rng.safetensors"
RNG_META_FILE = "rng.json"
EXTRA_FILE = "extra.safetensors"
PROGRESS_FILE = "progress.json"
DONE_FILE = "DONE"
TMP_PREFIX = ".tmp-step-"
_STEP_DIR = re.compile(r"^step-(\d+)$")


class CheckpointError(RewardHedgeError, RuntimeError):
    """A checkpoint file is missing, unreadable or does not fit the model/optimizer."""


# --------------------------------------------------------------------------- JSON helpers


def _jsonify(value: Any, where: str) -> Any:
    """A JSON-ready copy of ``value``: tuples become lists, callables are dropped from dicts and
    become ``None`` in lists; anything else that JSON cannot hold raises ``TypeError``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not a string; cannot store it in JSON")
            if callable(item):
                continue
            out[key] = _jsonify(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [
            None if callable(item) else _jsonify(item, f"{where}[{i}]")
            for i, item in enumerate(value)
        ]
    raise TypeError(
        f"{where}: value of type {type(value).__name__} cannot be stored in JSON "
        "(checkpoints never pickle)"
    )


def _dump_json(path: Path, data: Any, what: str) -> None:
    try:
        text = json.dumps(data, indent=2)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from exc
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint file {path} is unreadable: {exc}") from exc


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing")
    try:
        return load_file(str(path), device="cpu")
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"checkpoint file {path} is unreadable: {exc}") from exc


def _cpu_copy(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Independent contiguous CPU copies, so tied/shared storage never reaches safetensors."""
    return {
        name: t.detach().to(device="cpu", memory_format=torch.contiguous_format, copy=True)
        for name, t in tensors.items()
    }


def _write_tensors(path: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    save_file(_cpu_copy(tensors), str(path), metadata={"format": FORMAT_NAME})


# --------------------------------------------------------------------------- optimizer


def optimizer_state_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into safetensors-ready tensors and a JSON-ready dict.

    Tensors are named ``state.<param id>.<key>`` (e.g. ``state.3.exp_avg``; AdamW's 0-dim
    ``step`` included) and ``param_groups.<i>.<key>`` for tensor hyperparameters. The JSON part
    holds the param groups (hyperparameters and param ids), which group keys were tuples or
    tensors, and for each state entry which keys are tensors and which are plain values.
    """
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    groups: list[dict[str, Any]] = []
    encodings: list[dict[str, list[str]]] = []
    for i, group in enumerate(sd["param_groups"]):
        plain: dict[str, Any] = {}
        enc: dict[str, list[str]] = {"tuples": [], "tensors": []}
        for key, value in group.items():
            if isinstance(value, torch.Tensor):
                tensors[f"param_groups.{i}.{key}"] = value
                enc["tensors"].append(key)
                continue
            if isinstance(value, tuple):
                enc["tuples"].append(key)
            plain[key] = _jsonify(value, f"optimizer.param_groups[{i}].{key}")
        groups.append(plain)
        encodings.append(enc)
    state: list[dict[str, Any]] = []
    for pid, entry in sd["state"].items():
        tensor_keys: list[str] = []
        values: dict[str, Any] = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = value
                tensor_keys.append(key)
            else:
                values[key] = _jsonify(value, f"optimizer.state[{pid}].{key}")
        state.append({"id": pid, "tensors": tensor_keys, "values": values})
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "optimizer_class": type(optimizer).__name__,
        "param_groups": groups,
        "param_group_encoding": encodings,
        "state": state,
    }
    return tensors, meta


def load_optimizer_state(
    optimizer: torch.optim.Optimizer,
    tensors: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
) -> None:
    """Inverse of :func:`optimizer_state_tensors`: rebuild the state dict and load it.

    ``optimizer.load_state_dict`` moves each tensor to its parameter's device and dtype.
    """
    try:
        groups: list[dict[str, Any]] = []
        for i, (group, enc) in enumerate(
            zip(meta["param_groups"], meta["param_group_encoding"], strict=True)
        ):
            rebuilt = dict(group)
            for key in enc["tuples"]:
                rebuilt[key] = tuple(rebuilt[key])
            for key in enc["tensors"]:
                rebuilt[key] = tensors[f"param_groups.{i}.{key}"]
            groups.append(rebuilt)
        state: dict[Any, dict[str, Any]] = {}
        for entry in meta["state"]:
            pid = entry["id"]
            values = dict(entry["values"])
            for key in entry["tensors"]:
                values[key] = tensors[f"state.{pid}.{key}"]
            state[pid] = values
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"optimizer checkpoint is inconsistent: {exc!r}") from exc
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# --------------------------------------------------------------------------- RNG


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every RNG training touches: torch CPU (``torch.cpu``), each CUDA device
    (``torch.cuda.<i>``), Python ``random`` and NumPy's global generator (both JSON)."""
    tensors = {"torch.cpu": torch.get_rng_state()}
    n_cuda = 0
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch.cuda.{i}"] = s
            n_cuda += 1
    version, internal, gauss_next = random.getstate()
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    meta = {
        "cuda_devices": n_cuda,
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
        "numpy": {
            "kind": kind,
            "keys": [int(k) for k in keys],
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
    }
    return tensors, meta


def set_rng_state(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` captured. CUDA states are set for the devices present."""
    try:
        torch.set_rng_state(tensors["torch.cpu"].to(device="cpu", dtype=torch.uint8))
        n_saved = int(meta.get("cuda_devices", 0))
        if n_saved:
            n_here = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if n_here != n_saved:
                warnings.warn(
                    f"checkpoint has RNG states for {n_saved} CUDA device(s), this machine has "
                    f"{n_here}; restoring the first {min(n_saved, n_here)}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            for i in range(min(n_saved, n_here)):
                torch.cuda.set_rng_state(tensors[f"torch.cuda.{i}"].cpu(), device=i)
        py = meta["python"]
        random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
        npy = meta["numpy"]
        np.random.set_state(
            (
                npy["kind"],
                np.asarray(npy["keys"], dtype=np.uint32),
                npy["pos"],
                npy["has_gauss"],
                npy["cached_gaussian"],
            )
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"RNG checkpoint is inconsistent: {exc!r}") from exc


# --------------------------------------------------------------------------- model


def _model_tensors(model: torch.nn.Module, trainable_only: bool) -> dict[str, torch.Tensor]:
    """The model's state dict, or only entries that are parameters with ``requires_grad``."""
    sd = model.state_dict(keep_vars=True)
    if not trainable_only:
        return dict(sd)
    return {k: v for k, v in sd.items() if isinstance(v, torch.nn.Parameter) and v.requires_grad}


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    fsync_dir(folder)


# --------------------------------------------------------------------------- manager


class CheckpointManager:
    """Saves ``root/step-XXXXXXXX`` checkpoints atomically and keeps the newest ``keep_last``."""

    def __init__(self, root: str | Path, keep_last: int = 2) -> None:
        if not isinstance(keep_last, int) or keep_last < 1:
            raise ValueError(
                f"keep_last == {keep_last!r}, must be an int >= 1 "
                "(the checkpoint just written is always kept)"
            )
        self.root: Path = Path(root)
        self.keep_last: int = keep_last

    def step_dir(self, step: int) -> Path:
        """The folder a checkpoint for ``step`` lives in."""
        return self.root / f"step-{step:08d}"

    def complete(self) -> list[tuple[int, Path]]:
        """All complete checkpoints as ``(step, path)``, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            m = _STEP_DIR.match(path.name)
            if m and path.is_dir() and (path / DONE_FILE).is_file():
                found.append((int(m.group(1)), path))
        return sorted(found)

    def latest(self) -> Path | None:
        """Newest complete checkpoint; ``.tmp-*`` leftovers and folders without DONE are ignored."""
        done = self.complete()
        return done[-1][1] if done else None

    def save(
        self,
        step: int,
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None,
        scheduler: Any | None,
        progress: dict[str, Any],
        trainable_only: bool = False,
        extra_tensors: dict[str, torch.Tensor] | None = None,
    ) -> Path:
        """Write ``root/step-{step:08d}`` atomically, prune old checkpoints, return the folder."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step == {step!r}, must be an int >= 0")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=TMP_PREFIX))
        try:
            self._write(tmp, step, model, optimizer, scheduler, progress, trainable_only)
            if extra_tensors:
                _write_tensors(tmp / EXTRA_FILE, extra_tensors)
            _fsync_tree(tmp)
            _dump_json(tmp / DONE_FILE, {"format": FORMAT_NAME, "step": step}, "DONE marker")
            _fsync_tree(tmp)
            final = self._publish(tmp, self.step_dir(step))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune(keep=final)
        return final

    def _write(
        self,
        folder: Path,
        step: int,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None,
        scheduler: Any | None,
        progress: dict[str, Any],
        trainable_only: bool,
    ) -> None:
        _write_tensors(folder / MODEL_FILE, _model_tensors(model, trainable_only))
        if optimizer is not None:
            opt_tensors, opt_meta = optimizer_state_tensors(optimizer)
            _write_tensors(folder / OPTIMIZER_TENSORS_FILE, opt_tensors)
            _dump_json(folder / OPTIMIZER_META_FILE, opt_meta, "optimizer state")
        if scheduler is not None:
            sched = _jsonify(scheduler.state_dict(), "scheduler.state_dict()")
            _dump_json(folder / SCHEDULER_FILE, sched, "scheduler state")
        rng_tensors, rng_meta = rng_state()
        _write_tensors(folder / RNG_TENSORS_FILE, rng_tensors)
        _dump_json(folder / RNG_META_FILE, rng_meta, "RNG state")
        _dump_json(folder / PROGRESS_FILE, {**progress, "step": step}, "progress")

    def _publish(self, tmp: Path, final: Path) -> Path:
        """Rename ``tmp`` to ``final``; an existing ``final`` is moved aside first, then deleted."""
        old: Path | None = None
        if final.exists():
            old = Path(tempfile.mkdtemp(dir=self.root, prefix=TMP_PREFIX))
            os.replace(final, old / final.name)
        os.replace(tmp, final)
        fsync_dir(self.root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def _prune(self, keep: Path) -> None:
        """Keep ``keep`` plus the newest others up to ``keep_last``; remove stale temp folders."""
        others = [path for _, path in self.complete() if path != keep]
        for path in others[: max(0, len(others) - (self.keep_last - 1))]:
            shutil.rmtree(path, ignore_errors=True)
        for path in self.root.glob(f"{TMP_PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)

    def load(
        self,
        path: str | Path,
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any | None = None,
        trainable_only: bool = False,
        restore_rng: bool = True,
    ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Restore model, optimizer, scheduler and RNG from ``path``; return
        ``(progress, extra_tensors)``."""
        folder = Path(path)
        if not (folder / DONE_FILE).is_file():
            raise CheckpointError(
                f"{folder} is not a complete checkpoint ({folder / DONE_FILE} is missing)"
            )
        self._load_model(folder / MODEL_FILE, model, trainable_only)
        if optimizer is not None:
            opt_tensors = _read_tensors(folder / OPTIMIZER_TENSORS_FILE)
            opt_meta = _read_json(folder / OPTIMIZER_META_FILE)
            try:
                load_optimizer_state(optimizer, opt_tensors, opt_meta)
            except (CheckpointError, ValueError, KeyError) as exc:
                raise CheckpointError(
                    f"{folder / OPTIMIZER_META_FILE} does not fit this optimizer: {exc}"
                ) from exc
        if scheduler is not None:
            scheduler.load_state_dict(_read_json(folder / SCHEDULER_FILE))
        if restore_rng:
            rng_tensors = _read_tensors(folder / RNG_TENSORS_FILE)
            try:
                set_rng_state(rng_tensors, _read_json(folder / RNG_META_FILE))
            except (CheckpointError, RuntimeError) as exc:
                raise CheckpointError(f"{folder / RNG_META_FILE}: {exc}") from exc
        progress = _read_json(folder / PROGRESS_FILE)
        if not isinstance(progress, dict):
            raise CheckpointError(f"checkpoint file {folder / PROGRESS_FILE} is not a JSON object")
        extra = _read_tensors(folder / EXTRA_FILE) if (folder / EXTRA_FILE).exists() else {}
        return progress, extra

    @staticmethod
    def _load_model(file: Path, model: torch.nn.Module, trainable_only: bool) -> None:
        saved = _read_tensors(file)
        if trainable_only:
            unexpected = sorted(set(saved) - set(model.state_dict()))
            missing = sorted(set(_model_tensors(model, trainable_only=True)) - set(saved))
            if unexpected or missing:
                raise CheckpointError(
                    f"{file} does not fit this model: unexpected keys {unexpected}, "
                    f"trainable parameters missing from the checkpoint {missing}"
                )
        try:
            model.load_state_dict(saved, strict=not trainable_only)
        except RuntimeError as exc:
            raise CheckpointError(f"{file} does not fit this model: {exc}") from exc
