"""The fine-tuning loop: one script for one CPU, one GPU or many GPUs (Accelerate).

Speed comes from doing little per step: chosen and rejected share one forward
pass, batches are grouped by length, the loss stays on the device (read back
only every ``log_every`` steps), token counts are known on the host before the
batch is moved, and ``torch.compile`` is optional. Distribution is
Accelerate's (``accelerate launch`` / ``torchrun``): each process takes every
``world``-th batch of the same epoch order, and DDP averages the gradients.

Checkpoints (``train/checkpoint.py``) hold weights, optimizer, scheduler, RNG
states and the data position, so a run killed at any point resumes to the
same weights as a run that was never stopped.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rewardhedge.config_finetune import FinetuneConfig, Objective, Precision
from rewardhedge.errors import ConfigError
from rewardhedge.models.losses import bradley_terry_loss, regression_loss
from rewardhedge.models.reward_transformer import (
    network_backbone,
    packing_error,
    packing_row_tokens,
)
from rewardhedge.train.checkpoint import CheckpointManager, rng_state, set_rng_state
from rewardhedge.train.pair_data import (
    EncodedPairs,
    PairBatch,
    collate,
    collate_packed,
    pair_batches,
)
from rewardhedge.train.top_layers import top_layers_only

StepCallback = Callable[[int, int, dict[str, Any]], None]
"""``on_step(step, total_steps, info)``: info has loss (when read), pairs/s, tokens/s, lr."""


@dataclass
class FinetuneReport:
    """What a fine-tuning run did and how fast."""

    steps: int = 0
    total_steps: int = 0
    resumed_from_step: int = 0
    pairs_seen: int = 0
    tokens_seen: int = 0
    padded_tokens: int = 0
    train_seconds: float = 0.0
    n_pairs: int = 0
    n_truncated: int = 0
    peak_memory_bytes: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    """Logged steps (``loss``, ``lr``) and evaluations (``eval`` dicts)."""
    step_seconds: list[float] = field(default_factory=list)
    """Wall time of each optimizer step after the first (for the step-time spread)."""
    lower_cache_bytes: int = 0
    """Memory of the cached lower-layer outputs (``train_top_layers``; 0 otherwise)."""

    @property
    def pairs_per_second(self) -> float:
        return self.pairs_seen / self.train_seconds if self.train_seconds else 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_seen / self.train_seconds if self.train_seconds else 0.0

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.tokens_seen / self.padded_tokens if self.padded_tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "total_steps": self.total_steps,
            "resumed_from_step": self.resumed_from_step,
            "pairs_seen": self.pairs_seen,
            "tokens_seen": self.tokens_seen,
            "train_seconds": round(self.train_seconds, 3),
            "pairs_per_second": round(self.pairs_per_second, 3),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "padding_fraction": round(self.padding_fraction, 4),
            "n_pairs": self.n_pairs,
            "n_truncated": self.n_truncated,
            "peak_memory_bytes": self.peak_memory_bytes,
            "lower_cache_bytes": self.lower_cache_bytes,
            "history": self.history,
        }


def mixed_precision(config: FinetuneConfig) -> str:
    """Accelerate's ``mixed_precision`` for the configured precision."""
    if config.precision is Precision.BF16:
        return "bf16"
    if config.precision is Precision.AUTO and torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "no"


def member_weights(n_members: int, n_pairs: int, seed: int, bootstrap: bool) -> np.ndarray | None:
    """`(K, n)` Poisson(1) bootstrap counts per member (``None`` for one member or no bootstrap).

    Poisson(1) is the online bootstrap: each member sees each pair a random
    number of times, with mean 1, without resampling the data set.
    """
    if n_members < 2 or not bootstrap:
        return None
    rng = np.random.default_rng([seed, 9157])
    return rng.poisson(1.0, size=(n_members, n_pairs)).astype(np.float32)


def pair_objective(
    rewards: torch.Tensor,
    batch: PairBatch,
    config: FinetuneConfig,
    weights: torch.Tensor | None,
) -> torch.Tensor:
    """The mean over members of the configured objective for a `(K, 2B)` reward tensor."""
    b = rewards.shape[1] // 2
    r_c, r_r = rewards[:, :b], rewards[:, b:]
    loss = rewards.new_zeros(rewards.shape[0])
    if config.objective in (Objective.BT, Objective.BT_REGRESSION):
        loss = loss + bradley_terry_loss(
            r_c, r_r, batch.margin, weights=weights, center_coef=config.center_coef
        )
    if config.objective in (Objective.REGRESSION, Objective.BT_REGRESSION):
        targets = torch.nan_to_num(batch.scores, nan=0.0)
        mask = ~torch.isnan(batch.scores)
        both = None if weights is None else torch.cat([weights, weights], dim=1)
        scale = config.regression_weight if config.objective is Objective.BT_REGRESSION else 1.0
        loss = loss + scale * regression_loss(rewards, targets, mask, both)
    return loss.mean()


def _param_groups(model: nn.Module, config: FinetuneConfig) -> list[dict[str, Any]]:
    """Heads at ``head_lr``; no weight decay on biases and norms."""
    lr = config.learning_rate
    head_lr = config.head_lr if config.head_lr is not None else lr
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_head = name.startswith("heads") or ".heads" in name
        decay = 0.0 if (p.ndim < 2 or "norm" in name.lower()) else config.weight_decay
        groups.setdefault((head_lr if is_head else lr, decay), []).append(p)
    return [{"params": ps, "lr": lr_, "weight_decay": wd} for (lr_, wd), ps in groups.items()]


def _scheduler(optimizer: torch.optim.Optimizer, config: FinetuneConfig, total: int) -> Any:
    from transformers import get_scheduler

    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}
    return get_scheduler(
        name[config.schedule.value],
        optimizer,
        num_warmup_steps=math.ceil(config.warmup_ratio * total),
        num_training_steps=total,
    )


def total_steps(n_batches_per_epoch: int, config: FinetuneConfig) -> int:
    """Optimizer steps of the run: ``max_steps``, or ``epochs`` worth of batches."""
    if config.max_steps is not None:
        return config.max_steps
    return max(1, math.ceil(config.epochs * n_batches_per_epoch / config.grad_accum))


def finetune(
    model: nn.Module,
    data: EncodedPairs,
    config: FinetuneConfig,
    *,
    pad_id: int,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    evaluate: Callable[[nn.Module], dict[str, Any]] | None = None,
    on_step: StepCallback | None = None,
    accelerator: Any | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> FinetuneReport:
    """Train ``model`` (which maps ids and mask to `(K, 2B)` rewards) on ``data``.

    Args:
        model: a network from ``models/reward_transformer.py``.
        data: the encoded training pairs.
        config: the fine-tuning settings.
        pad_id: the tokenizer's pad id.
        checkpoint_dir: where resumable checkpoints go (``checkpoint_every``
            steps); with ``resume``, training continues from the newest one.
        evaluate: called as ``evaluate(model)`` (in eval mode, on the main
            process) every ``eval_every`` steps and at the end.
        on_step: progress callback after each optimizer step.
        accelerator: an ``accelerate.Accelerator``; built from ``config`` if omitted.
        fingerprint: what identifies the run (data hash, settings); stored in each
            checkpoint, and resuming from a checkpoint with another one is refused.

    Returns:
        A :class:`FinetuneReport`; the model is left trained, in eval mode.
    """
    kwargs = {
        "pad_id": pad_id,
        "checkpoint_dir": checkpoint_dir,
        "resume": resume,
        "evaluate": evaluate,
        "on_step": on_step,
        "accelerator": accelerator,
        "fingerprint": fingerprint,
    }
    if config.train_top_layers is None:
        return _finetune(model, data, config, **kwargs)
    with top_layers_only(model, config.train_top_layers) as cache:
        report = _finetune(model, data, config, **kwargs)
        report.lower_cache_bytes = cache.n_bytes
    return report


@dataclass
class _Run:
    """What the training loop carries from step to step: the training objects, the
    hooks, and the position (``epoch`` and ``next_batch``: where the next step starts)."""

    config: FinetuneConfig
    data: EncodedPairs
    pad_id: int
    accelerator: Any
    model: nn.Module
    prepared: nn.Module
    """The model as ``accelerator.prepare`` returned it (DDP-wrapped with several processes)."""
    forward: Callable[..., torch.Tensor]
    """``prepared``, compiled with ``config.compile``."""
    optimizer: Any
    scheduler: Any
    manager: CheckpointManager | None
    report: FinetuneReport
    weights: torch.Tensor | None
    """`(K, n)` bootstrap weights on the device (``None`` without bootstrap)."""
    row_tokens: int
    pooling: str
    evaluate: Callable[[nn.Module], dict[str, Any]] | None
    on_step: StepCallback | None
    fingerprint: dict[str, Any] | None
    step: int = 0
    epoch: int = 0
    next_batch: int = 0
    running: torch.Tensor | None = None
    """The summed loss since it was last read, on the device."""
    n_running: int = 0
    started: float = 0.0
    last_step_end: float = 0.0

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def world(self) -> int:
        return int(self.accelerator.num_processes)

    @property
    def total(self) -> int:
        return self.report.total_steps

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        rank = self.accelerator.process_index
        return _epoch_batches(self.data, self.config, epoch, self.world, rank)

    def make_batch(self, index: np.ndarray) -> PairBatch:
        config = self.config
        multiple = config.pad_to_multiple_of
        if config.packing:
            return collate_packed(
                self.data,
                index,
                self.pad_id,
                multiple,
                row_tokens=self.row_tokens,
                pooling=self.pooling,
            )
        return collate(self.data, index, self.pad_id, multiple)


def _finetune(
    model: nn.Module, data: EncodedPairs, config: FinetuneConfig, **kwargs: Any
) -> FinetuneReport:
    """Set up (resuming from the newest checkpoint), train to the last step, report."""
    run = _setup(model, data, config, **kwargs)
    _loop(run)
    return _finish(run)


def _epoch_batches(
    data: EncodedPairs, config: FinetuneConfig, epoch: int, world: int, rank: int
) -> list[np.ndarray]:
    """This process's batches of ``epoch``: every ``world``-th, the same count on each."""
    batches = pair_batches(
        data.lengths,
        config.batch_size,
        seed=config.seed,
        epoch=epoch,
        group_by_length=config.grouped,
    )
    per_rank = len(batches) // world if world > 1 else len(batches)
    return batches[rank::world][:per_rank]


def _setup(
    model: nn.Module,
    data: EncodedPairs,
    config: FinetuneConfig,
    *,
    pad_id: int,
    checkpoint_dir: str | Path | None,
    resume: bool,
    evaluate: Callable[[nn.Module], dict[str, Any]] | None,
    on_step: StepCallback | None,
    accelerator: Any | None,
    fingerprint: dict[str, Any] | None,
) -> _Run:
    """Everything the loop needs, restored from the newest checkpoint when resuming."""
    if accelerator is None:
        accelerator = _accelerator(config)
    device = accelerator.device
    n_members = int(getattr(model, "n_members", 1))
    weights_all = member_weights(n_members, len(data), config.seed, config.bootstrap)
    total = _run_steps(data, config, accelerator.num_processes, accelerator.process_index)
    _place_model(model, config, pad_id, device)
    optimizer = torch.optim.AdamW(_param_groups(model, config), fused=device.type == "cuda")
    scheduler = _scheduler(optimizer, config, total)
    manager = (
        CheckpointManager(checkpoint_dir, keep_last=config.keep_checkpoints)
        if checkpoint_dir is not None
        else None
    )
    report = FinetuneReport(total_steps=total, n_pairs=len(data), n_truncated=data.n_truncated)
    position = (0, 0, 0)
    if manager is not None and resume:
        position = _resume(manager, (model, optimizer, scheduler), report, fingerprint, accelerator)
    prepared, optimizer = accelerator.prepare(model, optimizer)
    run = _Run(
        config=config,
        data=data,
        pad_id=pad_id,
        accelerator=accelerator,
        model=model,
        prepared=prepared,
        forward=torch.compile(prepared) if config.compile else prepared,
        optimizer=optimizer,
        scheduler=scheduler,
        manager=manager,
        report=report,
        weights=None if weights_all is None else torch.from_numpy(weights_all).to(device),
        row_tokens=packing_row_tokens(model, config.max_length),
        pooling=str(getattr(model, "pooling", "last")),
        evaluate=evaluate,
        on_step=on_step,
        fingerprint=fingerprint,
    )
    run.step, run.epoch, run.next_batch = position
    _start(run)
    return run


def _accelerator(config: FinetuneConfig) -> Any:
    from accelerate import Accelerator

    return Accelerator(
        mixed_precision=mixed_precision(config), gradient_accumulation_steps=config.grad_accum
    )


def _run_steps(data: EncodedPairs, config: FinetuneConfig, world: int, rank: int) -> int:
    """The run's optimizer steps; refuses data too small for one batch per process."""
    n_batches = len(_epoch_batches(data, config, 0, world, rank))
    if n_batches == 0:
        raise ValueError(
            f"{len(data)} training pairs make no batch for {world} processes; "
            f"lower batch_size ({config.batch_size}) or add pairs."
        )
    return total_steps(n_batches, config)


def _place_model(model: nn.Module, config: FinetuneConfig, pad_id: int, device: Any) -> None:
    """Gradient checkpointing as configured, the model on ``device``, packing checked."""
    if config.gradient_checkpointing:
        for module in model.modules():
            if hasattr(module, "gradient_checkpointing_enable") and hasattr(module, "config"):
                module.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs={"use_reentrant": False}
                )
    model.to(device)
    if config.packing:
        _check_packing(model, pad_id)


def _resume(
    manager: CheckpointManager,
    state: tuple[nn.Module, Any, Any],
    report: FinetuneReport,
    fingerprint: dict[str, Any] | None,
    accelerator: Any,
) -> tuple[int, int, int]:
    """Load the newest checkpoint (weights, optimizer, scheduler, RNG, history) if any.

    Returns:
        ``(step, epoch, next_batch)``: where training continues (zeros without one).
    """
    latest = manager.latest()
    if latest is None:
        return 0, 0, 0
    model, optimizer, scheduler = state
    _check_fingerprint(latest, _saved_fingerprint(latest), fingerprint)
    progress, extra = manager.load(
        latest, model=model, optimizer=optimizer, scheduler=scheduler, trainable_only=True
    )
    _restore_rank_rng(progress, extra, accelerator.process_index, accelerator.num_processes)
    report.resumed_from_step = progress["step"]
    report.history = list(progress.get("history", []))
    return progress["step"], progress["epoch"], progress["batch"]


def _start(run: _Run) -> None:
    """Reset the peak-memory counter, start the clocks and put the model in train mode."""
    if run.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(run.device)
    run.running = torch.zeros((), device=run.device)
    run.n_running = 0
    run.started = run.last_step_end = time.perf_counter()
    run.model.train()


def _positions(run: _Run) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(epoch, batch, index)`` of each micro-batch from the run's position on, epoch
    after epoch (an epoch's order is computed when training reaches it)."""
    epoch, start = run.epoch, run.next_batch
    while True:
        batches = run.epoch_batches(epoch)
        for bi in range(start, len(batches)):
            yield epoch, bi, batches[bi]
        epoch, start = epoch + 1, 0


def _loop(run: _Run) -> None:
    """Optimizer steps until ``total``, each followed by evaluation, a checkpoint
    (at their cadences) and ``on_step``."""
    config = run.config
    positions = _positions(run)
    while run.step < run.total:
        info = _train_step(run, positions)
        if run.evaluate is not None and _every(config.eval_every, run.step):
            info["eval"] = _run_eval(run.model, run.evaluate, run.accelerator, run.step, run.report)
        if run.manager is not None and _every(config.checkpoint_every, run.step):
            _save(
                run.manager,
                run.accelerator,
                (run.model, run.optimizer, run.scheduler),
                (run.step, run.epoch, run.next_batch),
                run.report,
                run.fingerprint,
            )
        if run.on_step is not None:
            run.on_step(run.step, run.total, info)


def _every(n: int, step: int) -> bool:
    """Whether a cadence of ``n`` steps (0: never) falls on ``step``."""
    return bool(n) and step % n == 0


def _train_step(run: _Run, positions: Iterator[tuple[int, int, np.ndarray]]) -> dict[str, Any]:
    """One optimizer step: micro-batches until Accelerate syncs the gradients, then the
    scheduler; the loss is read back every ``log_every`` steps and at the last.

    Returns:
        ``on_step``'s info: epoch, pairs/s, tokens/s, lr, and loss when it was read.
    """
    report = run.report
    while True:
        run.epoch, bi, index = next(positions)
        run.next_batch = bi + 1
        _micro_step(run, run.make_batch(index).to(run.device))
        if run.accelerator.sync_gradients:
            break
    run.scheduler.step()
    run.step += 1
    now = time.perf_counter()
    if run.step > report.resumed_from_step + 1:
        report.step_seconds.append(now - run.last_step_end)
    run.last_step_end = now
    info: dict[str, Any] = {
        "epoch": run.epoch,
        "pairs_per_second": report.pairs_seen / (now - run.started),
        "tokens_per_second": report.tokens_seen / (now - run.started),
        "lr": run.scheduler.get_last_lr()[0],
    }
    if run.step % run.config.log_every == 0 or run.step == run.total:
        assert run.running is not None
        info["loss"] = float(run.running) / max(run.n_running, 1)  # the one host sync
        run.running.zero_()
        run.n_running = 0
        report.history.append({"step": run.step, "loss": info["loss"], "lr": info["lr"]})
    return info


def _micro_step(run: _Run, batch: PairBatch) -> None:
    """Forward and backward of one micro-batch; the optimizer steps (inside
    ``accumulate``) only when the gradients sync, with clipping then."""
    accelerator, config = run.accelerator, run.config
    with accelerator.accumulate(run.prepared):
        rewards = run.forward(*batch.model_inputs)
        w = None
        if run.weights is not None:
            w = run.weights[:, torch.as_tensor(batch.index, device=run.device)]
        loss = pair_objective(rewards, batch, config, w)
        accelerator.backward(loss)
        if accelerator.sync_gradients and config.max_grad_norm is not None:
            accelerator.clip_grad_norm_(run.prepared.parameters(), config.max_grad_norm)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
    assert run.running is not None
    run.running += loss.detach()
    run.n_running += 1
    report, world = run.report, run.world
    report.pairs_seen += len(batch.index) * world
    report.tokens_seen += batch.n_tokens * world
    report.padded_tokens += batch.n_padded * world


def _finish(run: _Run) -> FinetuneReport:
    """The report's totals and timings, the last evaluation, the model in eval mode."""
    report, config, device = run.report, run.config, run.device
    report.steps = run.step
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        report.peak_memory_bytes = int(torch.cuda.max_memory_allocated(device))
    report.train_seconds = time.perf_counter() - run.started
    if run.evaluate is not None and (not config.eval_every or run.step % config.eval_every):
        _run_eval(run.model, run.evaluate, run.accelerator, run.step, run.report)
    run.model.eval()
    return report


def _run_eval(
    model: nn.Module,
    evaluate: Callable[[nn.Module], dict[str, Any]],
    accelerator: Any,
    step: int,
    report: FinetuneReport,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if accelerator.is_main_process:
        model.eval()
        with torch.no_grad():
            result = evaluate(model)
        model.train()
        report.history.append({"step": step, "eval": result})
    accelerator.wait_for_everyone()
    return result


PACKING_TOLERANCE = 1e-3
"""Largest relative gap between packed and padded rewards that packing may cause."""


def _check_packing(model: nn.Module, pad_id: int) -> None:
    """Refuse ``packing`` for a backbone whose rewards change when sequences share rows."""
    kind = getattr(network_backbone(model).config, "model_type", type(model).__name__)
    try:
        error = packing_error(model, pad_id)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"packing: a {kind} backbone failed on a packed probe batch ({exc}). "
            "Train it without --packing."
        ) from exc
    if error > PACKING_TOLERANCE:
        raise ConfigError(
            f"packing: a {kind} backbone gives packed sequences other rewards than padded "
            f"ones (relative gap {error:.1e} > {PACKING_TOLERANCE:g}); it does not honour "
            "restarting position ids. Train it without --packing."
        )


RANK_RNG = "rng.rank"
"""Prefix of each process's RNG tensors in a checkpoint's extra tensors."""


def _restore_rank_rng(
    progress: dict[str, Any], extra: dict[str, torch.Tensor], rank: int, world: int
) -> None:
    """Give this process the RNG state it had (``manager.load`` restored the main one's).

    A checkpoint from a run with another number of processes cannot say which
    state is whose: the main process's stays, and the resumed run's dropout
    draws differ from an uninterrupted run's."""
    saved = progress.get("rng_ranks") or []
    if world == 1 and len(saved) <= 1:
        return
    if len(saved) != world:
        warnings.warn(
            f"checkpoint written by {max(len(saved), 1)} process(es), resumed by {world}: "
            "every process continues from the main process's RNG state",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    prefix = f"{RANK_RNG}{rank}."
    mine = {k.removeprefix(prefix): v for k, v in extra.items() if k.startswith(prefix)}
    set_rng_state(mine, saved[rank])


def _saved_fingerprint(path: Path) -> Any:
    try:
        return json.loads((path / "progress.json").read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None  # the checkpoint manager's load reports an unreadable checkpoint


def _check_fingerprint(path: Path, saved: Any, current: dict[str, Any] | None) -> None:
    """Refuse to continue a checkpoint written for other data or settings."""
    if current is None or saved is None or saved == current:
        return
    diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    raise ConfigError(
        f"{path} was written by a run with different {', '.join(diff)}; resuming it would mix "
        "two runs. Pass --no-resume (resume=False) or another checkpoint folder."
    )


def _save(
    manager: CheckpointManager,
    accelerator: Any,
    state: tuple[nn.Module, Any, Any],
    position: tuple[int, int, int],
    report: FinetuneReport,
    fingerprint: dict[str, Any] | None,
) -> None:
    """Checkpoint on the main process; the data position is where the next step starts."""
    model, optimizer, scheduler = state
    step, epoch, next_batch = position
    from accelerate.utils import gather_object

    # Every process's RNG (each draws its own dropout masks), gathered to the main one.
    ranks = gather_object([rng_state()]) if accelerator.num_processes > 1 else []
    if accelerator.is_main_process:
        inner = getattr(optimizer, "optimizer", optimizer)  # AcceleratedOptimizer wraps it
        manager.save(
            step,
            model=model,
            optimizer=inner,
            scheduler=scheduler,
            progress={
                "step": step,
                "epoch": epoch,
                "batch": next_batch,
                "history": report.history,
                "fingerprint": fingerprint,
                "rng_ranks": [meta for _, meta in ranks],
            },
            trainable_only=True,
            extra_tensors={
                f"{RANK_RNG}{r}.{name}": t
                for r, (tensors, _) in enumerate(ranks)
                for name, t in tensors.items()
            },
        )
    accelerator.wait_for_everyone()
