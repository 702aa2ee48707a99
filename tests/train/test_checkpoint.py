"""Checkpoints: exact resume, optimizer/scheduler/RNG round trips, atomic writes, pruning."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from rewardhedge.train.checkpoint import (
    CheckpointManager,
    load_optimizer_state,
    optimizer_state_tensors,
    rng_state,
    set_rng_state,
)

OptFactory = Callable[[nn.Module], torch.optim.Optimizer]
OPTIMIZERS: dict[str, OptFactory] = {
    "adamw": lambda m: torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1),
    "sgd_momentum": lambda m: torch.optim.SGD(m.parameters(), lr=1e-2, momentum=0.9),
}


def cosine(opt: torch.optim.Optimizer, warmup: int, total: int) -> LRScheduler:
    """transformers' cosine schedule. Imported lazily: ``transformers.optimization`` pulls in
    peft and torch.distributed and costs several seconds, which only these tests should pay."""
    from transformers import get_scheduler

    return get_scheduler("cosine", opt, num_warmup_steps=warmup, num_training_steps=total)


def tiny_model(seed: int, dropout: float = 0.0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1))


def batches(n: int, seed: int = 123) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 4, generator=gen), torch.randn(8, 1, generator=gen)) for _ in range(n)]


def train_step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    sched: LRScheduler | None = None,
) -> None:
    model.train()
    loss = ((model(x) - y) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if sched is not None:
        sched.step()


def params_equal(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


# --------------------------------------------------------------------------- optimizer


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_state_round_trips_through_safetensors_and_json(
    name: str, tmp_path: Path
) -> None:
    make_opt = OPTIMIZERS[name]
    data = batches(6)
    model = tiny_model(0)
    opt = make_opt(model)
    for x, y in data[:3]:
        train_step(model, opt, x, y)

    tensors, meta = optimizer_state_tensors(opt)
    expected_key = "state.0.exp_avg" if name == "adamw" else "state.0.momentum_buffer"
    assert expected_key in tensors
    if name == "adamw":
        assert tensors["state.0.step"].dim() == 0
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp_path / "opt.safetensors"))
    meta_back = json.loads(json.dumps(meta))

    twin = copy.deepcopy(model)
    twin_opt = make_opt(twin)
    load_optimizer_state(twin_opt, load_file(str(tmp_path / "opt.safetensors")), meta_back)
    control = copy.deepcopy(model)
    control_opt = make_opt(control)  # fresh state: must diverge, or the test proves nothing

    for x, y in data[3:]:
        train_step(model, opt, x, y)
        train_step(twin, twin_opt, x, y)
        train_step(control, control_opt, x, y)
    assert params_equal(model, twin)
    assert not params_equal(model, control)
    if name == "adamw":
        assert twin_opt.param_groups[0]["betas"] == opt.param_groups[0]["betas"]
        assert isinstance(twin_opt.param_groups[0]["betas"], tuple)


def test_transformers_cosine_scheduler_round_trips(tmp_path: Path) -> None:
    model = tiny_model(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = cosine(opt, 3, 20)
    for x, y in batches(7):
        train_step(model, opt, x, y, sched)
    path = CheckpointManager(tmp_path).save(
        7, model=model, optimizer=opt, scheduler=sched, progress={}
    )
    assert json.loads((path / "scheduler.json").read_text())["last_epoch"] == 7

    model2 = tiny_model(1)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    sched2 = cosine(opt2, 3, 20)
    CheckpointManager(tmp_path).load(path, model=model2, optimizer=opt2, scheduler=sched2)

    assert sched2.get_last_lr() == sched.get_last_lr()
    lrs, lrs2 = [], []
    for _ in range(5):
        opt.step()
        sched.step()
        opt2.step()
        sched2.step()
        lrs.append(sched.get_last_lr()[0])
        lrs2.append(sched2.get_last_lr()[0])
    assert lrs == lrs2
    assert len(set(lrs)) == 5  # the schedule actually moves
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


# --------------------------------------------------------------------------- RNG


def test_rng_state_restores_torch_python_and_numpy() -> None:
    torch.rand(3)
    random.random()
    np.random.rand()
    np.random.randn()  # leaves a cached gaussian in numpy's state
    tensors, meta = rng_state()
    meta = json.loads(json.dumps(meta))
    first = (
        torch.rand(5),
        random.random(),
        random.gauss(0, 1),
        np.random.rand(5),
        np.random.randn(),
    )
    set_rng_state(tensors, meta)
    second = (
        torch.rand(5),
        random.random(),
        random.gauss(0, 1),
        np.random.rand(5),
        np.random.randn(),
    )
    assert torch.equal(first[0], second[0])
    assert first[1:3] == second[1:3]
    assert np.array_equal(first[3], second[3])
    assert first[4] == second[4]


# --------------------------------------------------------------------------- manager


def test_manager_keeps_last_k_and_latest_ignores_incomplete(tmp_path: Path) -> None:
    model = tiny_model(0)
    opt = torch.optim.AdamW(model.parameters())
    manager = CheckpointManager(tmp_path / "ckpt", keep_last=2)
    assert manager.latest() is None
    for step in range(1, 5):
        train_step(model, opt, *batches(1)[0])
        path = manager.save(step, model=model, optimizer=opt, scheduler=None, progress={"s": step})
        assert path == tmp_path / "ckpt" / f"step-{step:08d}"
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "step-00000003",
        "step-00000004",
    ]
    assert manager.latest() == tmp_path / "ckpt" / "step-00000004"

    (tmp_path / "ckpt" / ".tmp-step-xyz").mkdir()
    half = tmp_path / "ckpt" / "step-00000009"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"partial")
    assert manager.latest() == tmp_path / "ckpt" / "step-00000004"
    with pytest.raises(RuntimeError, match="DONE"):
        manager.load(half, model=model)

    files = sorted(p.name for p in manager.latest().iterdir())
    assert files == [
        "DONE",
        "model.safetensors",
        "optimizer.json",
        "optimizer.safetensors",
        "progress.json",
        "rng.json",
        "rng.safetensors",
    ]
    assert not [f for f in files if f.endswith((".pt", ".pkl", ".bin"))]
    assert json.loads((manager.latest() / "progress.json").read_text()) == {"s": 4, "step": 4}


def test_keep_last_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep_last"):
        CheckpointManager(tmp_path, keep_last=0)


def test_failed_save_leaves_previous_checkpoint_and_no_temp_folder(tmp_path: Path) -> None:
    model = tiny_model(0)
    manager = CheckpointManager(tmp_path, keep_last=1)
    good = manager.save(1, model=model, optimizer=None, scheduler=None, progress={})
    with pytest.raises(TypeError, match="progress"):
        manager.save(2, model=model, optimizer=None, scheduler=None, progress={"bad": object()})
    assert [p.name for p in tmp_path.iterdir()] == [good.name]
    assert manager.latest() == good


def test_missing_file_raises_naming_it(tmp_path: Path) -> None:
    model = tiny_model(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_step(model, opt, *batches(1)[0])
    manager = CheckpointManager(tmp_path)
    path = manager.save(1, model=model, optimizer=opt, scheduler=None, progress={})
    (path / "optimizer.safetensors").unlink()
    with pytest.raises(RuntimeError, match=r"optimizer\.safetensors"):
        manager.load(path, model=tiny_model(1), optimizer=torch.optim.SGD(model.parameters()))
    (path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(RuntimeError, match=r"model\.safetensors"):
        manager.load(path, model=tiny_model(1))


# --------------------------------------------------------------------------- full resume


def _resume_run(tmp_path: Path, restore_rng: bool) -> nn.Module:
    """4 steps, save, rebuild everything differently, load, 6 more steps."""

    def fresh(seed: int) -> tuple[nn.Module, torch.optim.Optimizer, LRScheduler, torch.Generator]:
        model = tiny_model(seed, dropout=0.5)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        sched = cosine(opt, 3, 10)
        return model, opt, sched, torch.Generator().manual_seed(seed + 100)

    model, opt, sched, gen = fresh(0)
    for _ in range(4):
        train_step(
            model, opt, torch.randn(8, 4, generator=gen), torch.randn(8, 1, generator=gen), sched
        )
    manager = CheckpointManager(tmp_path / ("rng" if restore_rng else "norng"))
    manager.save(
        4,
        model=model,
        optimizer=opt,
        scheduler=sched,
        progress={"epoch": 0},
        extra_tensors={"data_generator": gen.get_state()},
    )
    del model, opt, sched, gen

    model, opt, sched, gen = fresh(7)  # different init, data stream and global RNG
    latest = manager.latest()
    assert latest is not None
    progress, extra = manager.load(
        latest, model=model, optimizer=opt, scheduler=sched, restore_rng=restore_rng
    )
    assert progress == {"epoch": 0, "step": 4}
    gen.set_state(extra["data_generator"])
    for _ in range(progress["step"], 10):
        train_step(
            model, opt, torch.randn(8, 4, generator=gen), torch.randn(8, 1, generator=gen), sched
        )
    return model


def test_resume_after_kill_matches_uninterrupted_run(tmp_path: Path) -> None:
    model = tiny_model(0, dropout=0.5)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = cosine(opt, 3, 10)
    gen = torch.Generator().manual_seed(100)
    for _ in range(10):
        train_step(
            model, opt, torch.randn(8, 4, generator=gen), torch.randn(8, 1, generator=gen), sched
        )

    assert params_equal(model, _resume_run(tmp_path, restore_rng=True))
    # Control: without the RNG restore the dropout masks differ, so the runs must diverge.
    assert not params_equal(model, _resume_run(tmp_path, restore_rng=False))


# --------------------------------------------------------------------------- special models


def test_trainable_only_saves_and_loads_just_trainable_params(tmp_path: Path) -> None:
    model = tiny_model(0)
    model[0].requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for x, y in batches(3):
        train_step(model, opt, x, y)
    manager = CheckpointManager(tmp_path)
    path = manager.save(
        3, model=model, optimizer=opt, scheduler=None, progress={}, trainable_only=True
    )
    assert sorted(load_file(str(path / "model.safetensors"))) == ["3.bias", "3.weight"]

    fresh = tiny_model(1)
    fresh[0].requires_grad_(False)
    frozen_before = {k: v.clone() for k, v in fresh[0].state_dict().items()}
    fresh_opt = torch.optim.AdamW([p for p in fresh.parameters() if p.requires_grad], lr=1e-2)
    manager.load(path, model=fresh, optimizer=fresh_opt, trainable_only=True)
    assert torch.equal(fresh[3].weight, model[3].weight)
    assert torch.equal(fresh[3].bias, model[3].bias)
    for k, v in fresh[0].state_dict().items():
        assert torch.equal(v, frozen_before[k])
        assert not torch.equal(v, model[0].state_dict()[k])

    # A model whose first layer is trainable expects 0.weight/0.bias: the checkpoint lacks them.
    unfrozen = tiny_model(2)
    with pytest.raises(RuntimeError, match=r"0\.weight"):
        manager.load(path, model=unfrozen, trainable_only=True)


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(4, 4)
        self.dec = nn.Linear(4, 4)
        self.dec.weight = self.enc.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))


def test_tied_weights_save_and_load(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Tied()
    manager = CheckpointManager(tmp_path)
    path = manager.save(1, model=model, optimizer=None, scheduler=None, progress={})
    saved = load_file(str(path / "model.safetensors"))
    assert torch.equal(saved["enc.weight"], saved["dec.weight"])

    torch.manual_seed(1)
    fresh = Tied()
    manager.load(path, model=fresh)
    assert fresh.dec.weight is fresh.enc.weight
    assert torch.equal(fresh.enc.weight, model.enc.weight)
