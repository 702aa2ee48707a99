"""Fine-tuning throughput: our trainer against TRL's ``RewardTrainer``, in one process.

A randomly initialised Qwen2 backbone (``--shape qwen2.5-0.5b``: hidden 896, 24
layers, 14 heads, 2 KV heads, intermediate 4864, vocab 151936; or ``--shape
tiny``: 2 layers, hidden 64, the tokenizer's vocab, for CPU smoke runs) is
trained for ``--warmup-steps + --steps`` optimizer steps by

* our trainer, ``rewardhedge.train.finetune.finetune`` on an ``EncodedPairs``
  built directly from token-id lists (length-grouped batches, one forward pass
  for chosen and rejected), eager and with ``compile=True`` (``--ours-compile``),
  and on ``hh`` also with ``packing=True`` (``--ours-packing``: sequences end
  to end in rows of ``--max-length``, no padding to the batch's longest);
* TRL's ``RewardTrainer`` on a pre-tokenised ``datasets.Dataset`` holding the
  very same ids (``chosen_ids`` / ``rejected_ids``) and the same pairs per
  device batch, an ``AutoModelForSequenceClassification(num_labels=1)`` of the
  same config, gradient checkpointing off, dropout off, no reward centering,
  and with ``torch_compile=True`` too (``--trl-compile``). ``--trl-variants``
  adds ``grouped`` (its ``group_by_length`` sampler) and ``gc`` (its default
  gradient checkpointing, for reference only).

Both keep fp32 master weights and run bf16 autocast on CUDA (fp32 on CPU), use
fused AdamW and clip gradients at 1.0. Only the last ``--steps`` steps are
timed: CUDA events (or the wall clock on CPU) recorded at the end of every
optimizer step, read back once at the end, so timing adds no host sync. Pairs
and real tokens per timed step are counted exactly: ours by replaying
``pair_batches`` (checked against the trainer's own totals), TRL's by a
counting collator. ``--steps epoch`` times as many steps as one epoch has
batches, so on ``hh`` both trainers are timed on (nearly) every pair once and
the comparison does not hang on which 20 batches each happened to draw.

Data (``--datasets``):

* ``hh``: per-pair chosen and rejected lengths of the HH-RLHF harmless test
  pairs (``bench/hh_data.py``'s loader), tokenised with the MiniLM tokenizer in
  the ``pair`` layout ``[CLS] prompt [SEP] response [SEP]`` (the prompt is the
  whole dialogue before the last Assistant turn) and capped at 1024 tokens
  (``RewardTokenizer``'s budget rule). Token ids are drawn uniformly at random
  with those lengths (weights are random, so ids do not change throughput).
  The lengths can be written to / read from ``--lengths-file``, which is how
  the GPU machine (which has no ``../shared/data``) gets them;
* ``fixed512``: every chosen and rejected sequence is 512 tokens.

Both trainers always get the same batch size on the same data: ``--batch-size``
(``--hh-batch-size`` on ``hh``, where the widest batch is 2 × 960 tokens a pair and needs
about twice the activations of ``fixed512``; ``--ensemble-batch-size`` for the ensembles).

Figures: pairs/s, tokens/s (real tokens, padding excluded), padding fraction,
MFU = 6·N·tokens/s / peak (N: backbone parameters without the embedding
matrix, which does no matrix multiply in a reward model; ``mfu_all_params``
counts it too; peak 989 TFLOP/s bf16 on an H100/H200, null on CPU), peak
memory (``torch.cuda.max_memory_allocated``), median step time and
max/median (on ``hh``, where batch widths differ by design, also
``step_max_over_model``: the slowest step over what a fit of step time to its
batch's size predicts), and ``ratio_vs_trl`` (our pairs/s over the best TRL variant's that
ran on the same data: eager, compile or grouped; never the ``gc`` one).

``--ensembles`` times multihead K=4, LoRA K=4 and independent K=2 against the
single model (``time_vs_single``: seconds per step over the single model's on
the same data, ``--ensemble-data``, for ``--ensemble-steps`` steps).
``--scoring`` compares ``FinetunedRewardModel.score`` (texts in, the library's
tokenisation, sorted batches, bf16 autocast) with the raw ``network(ids,
mask)`` forward on the same sorted, padded batches already on the device (and
with the weights cast to bf16, for reference). Scoring texts are made of single-token vocabulary words so their
token counts follow the chosen lengths of the data set exactly.

Every configuration runs in a ``try``: an out-of-memory error or a failure of
one (TRL's compile, say) is recorded and the rest go on. The JSON is rewritten
after each configuration, so a run stopped by a time limit keeps what it did.

Usage:
    python bench/finetune_speed.py --shape tiny --steps 10 --ensembles --scoring
    python bench/finetune_speed.py --shape qwen2.5-0.5b --batch-size 32 --steps epoch \\
        --trl-variants grouped --trl-compile --ours-compile --ensembles --scoring \\
        --lengths-file bench/cache/device/hh_lengths.json \\
        --tokenizer bench/cache/device/tokenizer
    python bench/finetune_speed.py --prepare-device bench/cache/device   # lengths + tokenizer

On the GPU machine: ``bench/prepare_device_wheels.sh`` here, then
``bench/device_finetune.sh`` there. Writes
bench/results/finetune_speed_<device>[_tiny][_<tag>].json (``--out`` for
another file or folder) and prints one markdown table row per configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import gc
import json
import os
import platform
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardhedge import __version__
from rewardhedge.config_finetune import FinetuneConfig
from rewardhedge.encoders.reward_tokenizer import RewardTokenizer, pad_batch
from rewardhedge.estimators.finetuned import SCORE_CHUNK, FinetunedRewardModel, build_network
from rewardhedge.models.reward_transformer import packing_row_tokens
from rewardhedge.train.finetune import finetune
from rewardhedge.train.pair_data import (
    EncodedPairs,
    collate_packed,
    padding_fraction,
    pair_batches,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PEAK_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,
    "H200": 989.0,
    "H800": 989.0,
    "A100": 312.0,
}
"""Dense bf16 tensor-core peaks (TFLOP/s) by GPU name, the most specific first (SXM H100:
989, the figure the issue names)."""
SHAPES = {
    "qwen2.5-0.5b": {
        "vocab_size": 151936,
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1e6,
        "tie_word_embeddings": True,
    },
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
}
TRL_BEST = ("eager", "compile", "grouped")
"""TRL variants that count as 'its best settings' for ``ratio_vs_trl``."""
GIB = 2**30


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- machine ---------------------------------------------------------------------------------
def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def device_kind(name: str) -> str:
    """``h100`` for 'NVIDIA H100 80GB HBM3', ``cpu`` for the CPU, else a slug of the name."""
    m = re.search(r"\b([A-Z]\d{2,4}[A-Z]?)\b", name)
    if name != "cpu" and m:
        return m.group(1).lower()
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "unknown"


def peak_flops(name: str, override_tflops: float | None) -> float | None:
    if override_tflops is not None:
        return override_tflops * 1e12
    for key, tflops in PEAK_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


def version_of(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:
        return None


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": device_name(device),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "rewardhedge": __version__,
        **{m: version_of(m) for m in ("torch", "transformers", "accelerate", "peft")},
        "trl": version_of("trl") or "not installed",
        "datasets": version_of("datasets"),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            cuda=torch.version.cuda,
            gpu_memory_gib=round(props.total_memory / GIB, 1),
            multiprocessors=props.multi_processor_count,
        )
    return info


# -- lengths and token ids ----------------------------------------------------------------------
def load_tokenizer(path: str | None) -> Any:
    from transformers import AutoTokenizer

    if path is None:
        from rewardhedge.encoders.transformer import minilm_path

        path = str(minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tokenizer.model_max_length = 1 << 30  # lengths are capped by RewardTokenizer, not here
    return tokenizer


def hh_lengths_from_data(tokenizer: Any, max_length: int) -> dict[str, Any]:
    """Chosen/rejected token counts of the HH-RLHF harmless test pairs (``../shared/data``)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hh_data import load_hh

    pairs, report = load_hh()
    rt = RewardTokenizer(tokenizer, max_length)
    prompts = [p.prompt for p in pairs]
    chosen, trunc_c = rt.encode_many(prompts, [p.chosen for p in pairs])
    rejected, trunc_r = rt.encode_many(prompts, [p.rejected for p in pairs])
    return {
        "source": f"HH-RLHF harmless test ({report.n_kept} of {report.n_read} pairs kept)",
        "tokenizer": f"{type(tokenizer).__name__} ({tokenizer.name_or_path}), layout {rt.layout}",
        "max_length": max_length,
        "n_truncated": int((trunc_c | trunc_r).sum()),
        "chosen": [len(x) for x in chosen],
        "rejected": [len(x) for x in rejected],
    }


def hh_lengths(args: argparse.Namespace, tokenizer: Any) -> dict[str, Any]:
    """From ``--lengths-file`` if it exists, else tokenised from the data (and saved there)."""
    path = Path(args.lengths_file) if args.lengths_file else None
    if path is not None and path.exists():
        lengths = json.loads(path.read_text())
    else:
        lengths = hh_lengths_from_data(tokenizer, args.max_length)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(lengths))
    cap = args.max_length
    lengths["chosen"] = np.minimum(np.asarray(lengths["chosen"], dtype=np.int64), cap)
    lengths["rejected"] = np.minimum(np.asarray(lengths["rejected"], dtype=np.int64), cap)
    return lengths


def random_pairs(
    chosen_len: np.ndarray, rejected_len: np.ndarray, vocab: int, seed: int
) -> EncodedPairs:
    """Pairs of uniformly random token ids with the given lengths (ids below 1000, where
    the special tokens live, and so the pad id, are never drawn)."""
    rng = np.random.default_rng(seed)
    low = min(1000, vocab // 2)
    n = len(chosen_len)
    both = np.concatenate([chosen_len, rejected_len])
    flat = rng.integers(low, vocab, size=int(both.sum()), dtype=np.int64)
    seqs = [s.tolist() for s in np.split(flat, np.cumsum(both)[:-1])]
    return EncodedPairs(
        chosen=seqs[:n],
        rejected=seqs[n:],
        margin=np.zeros(n, dtype=np.float32),
        chosen_score=np.full(n, np.nan, dtype=np.float32),
        rejected_score=np.full(n, np.nan, dtype=np.float32),
        truncated=np.zeros(n, dtype=bool),
    )


def padding_stats(lengths: dict[str, Any], batch_size: int, epochs: int = 8) -> dict[str, Any]:
    """Padding share of our length-grouped batches vs random batches (TRL's sampler), HH data."""
    c, r = lengths["chosen"], lengths["rejected"]
    widest = np.maximum(c, r)

    def fraction(grouped: bool, multiple: int) -> float:
        real = padded = 0
        for epoch in range(epochs):
            for b in pair_batches(widest, batch_size, seed=0, epoch=epoch, group_by_length=grouped):
                real += int(c[b].sum() + r[b].sum())
                padded += -(-int(widest[b].max()) // multiple) * multiple * 2 * len(b)
        return round(1.0 - real / padded, 4)

    one = pair_batches(widest, batch_size, seed=0, epoch=0)
    check = padding_fraction(c, r, one)
    return {
        "data": "hh",
        "batch_size": batch_size,
        "epochs_averaged": epochs,
        "grouped": fraction(True, 1),
        "random": fraction(False, 1),
        "grouped_pad_to_8": fraction(True, 8),
        "random_pad_to_8": fraction(False, 8),
        "grouped_epoch0_via_pair_data": round(check, 4),
        "mean_tokens_per_sequence": round(float((c.sum() + r.sum()) / (2 * len(c))), 1),
        "median_pair_width": float(np.median(widest)),
        "max_pair_width": int(widest.max()),
    }


# -- models ------------------------------------------------------------------------------------
def model_config(shape: str, vocab: int, pad_id: int, max_length: int) -> Any:
    from transformers import Qwen2Config

    kw = dict(SHAPES[shape])
    kw.setdefault("vocab_size", vocab)
    return Qwen2Config(
        max_position_embeddings=max(2048, max_length), pad_token_id=pad_id, use_cache=False, **kw
    )


def on_device(device: torch.device, build: Callable[[], Any]) -> Any:
    """Build a model with its parameters created on ``device`` (random init on a GPU is
    much faster than on the host); falls back to the host and a copy."""
    if device.type == "cuda":
        try:
            with torch.device(device):
                model = build()
            return model.to(device)  # anything made on the host despite the context
        except Exception as exc:
            log(f"building on {device} failed ({exc!r}); building on the host")
    return build().to(device)


def new_backbone(hf_config: Any, device: torch.device) -> Any:
    from transformers import AutoModel

    torch.manual_seed(0)
    return on_device(device, lambda: AutoModel.from_config(hf_config, dtype=torch.float32))


def param_counts(hf_config: Any) -> tuple[int, int]:
    """(all, without the embedding matrix) parameters of the backbone, from the meta device."""
    from transformers import AutoModel

    with torch.device("meta"):
        model = AutoModel.from_config(hf_config, dtype=torch.float32)
    total = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight.numel()
    return total, total - emb


def free_memory() -> None:
    with contextlib.suppress(Exception):
        torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    with contextlib.suppress(Exception):
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(True)
        GradientState._reset_state()


# -- timing ------------------------------------------------------------------------------------
class StepClock:
    """Marks the end of each optimizer step: CUDA events (no host sync) or the wall clock."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list[Any] = []

    def mark(self) -> None:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.marks.append(ev)
        else:
            self.marks.append(time.perf_counter())

    def step_seconds(self) -> list[float]:
        """Seconds between consecutive marks (step i+1's time is marks[i] -> marks[i+1])."""
        if self.cuda:
            torch.cuda.synchronize()
            return [
                a.elapsed_time(b) / 1e3 for a, b in zip(self.marks, self.marks[1:], strict=False)
            ]
        return [b - a for a, b in zip(self.marks, self.marks[1:], strict=False)]


def step_max_over_model(times: np.ndarray, pairs: np.ndarray, padded: np.ndarray) -> float:
    """The slowest step over what its batch predicts: step time fitted (non-negative least
    squares) as ``a + b·padded tokens + c·padded tokens·width`` (the last term is attention),
    so a stall shows while a batch that is merely wide does not."""
    from scipy.optimize import nnls

    width = padded / (2 * pairs)
    features = np.stack([np.ones_like(times), padded, padded * width], axis=1).astype(float)
    scale = features.max(axis=0)
    coef, _ = nnls(features / scale, times)
    predicted = (features / scale) @ coef
    return float(np.max(times / np.maximum(predicted, 1e-12)))


def summarize(
    step_seconds: list[float],
    pairs: list[int],
    real: list[int],
    padded: list[int],
    args: argparse.Namespace,
    ctx: dict[str, Any],
) -> dict[str, Any]:
    """Figures over the timed steps (the last ``args.steps``). ``step_seconds`` holds the
    times of steps 2..total; ``pairs``/``real``/``padded`` are per step, 1..total."""
    n = args.steps
    times = np.asarray(step_seconds[-n:])
    p, t, q = (np.asarray(x[-n:]) for x in (pairs, real, padded))
    window = float(times.sum())
    tps = t.sum() / window
    median = float(np.median(times))
    peak = ctx["peak_flops"]
    return {
        "timed_steps": len(times),
        "pairs_per_second": round(float(p.sum() / window), 2),
        "tokens_per_second": round(float(tps), 1),
        "seconds_per_step": round(window / len(times), 4),
        "step_seconds_median": round(median, 4),
        "step_max_over_median": round(float(times.max() / median), 3),
        "step_max_over_model": round(step_max_over_model(times, p, q), 3),
        "padding_fraction": round(float(1.0 - t.sum() / q.sum()), 4),
        "mfu": round(6 * ctx["n_params_non_embedding"] * tps / peak, 4) if peak else None,
        "mfu_all_params": round(6 * ctx["n_params"] * tps / peak, 4) if peak else None,
        "step_seconds": [round(float(x), 4) for x in times],
        "step_padded_tokens": [int(x) for x in q],
    }


# -- our trainer -------------------------------------------------------------------------------
def ours_schedule(lengths: np.ndarray, config: FinetuneConfig, total: int) -> list[np.ndarray]:
    """The batches ``finetune`` trains on, in order (one process: every batch of each epoch)."""
    batches: list[np.ndarray] = []
    epoch = 0
    while len(batches) < total:
        batches.extend(
            pair_batches(
                lengths,
                config.batch_size,
                seed=config.seed,
                epoch=epoch,
                group_by_length=config.grouped,
            )
        )
        epoch += 1
    return batches[:total]


def run_ours(
    data: EncodedPairs,
    args: argparse.Namespace,
    ctx: dict[str, Any],
    *,
    compile: bool = False,
    ensemble: str = "single",
    n_members: int | None = None,
    packing: bool = False,
) -> dict[str, Any]:
    device = ctx["device"]
    total = args.warmup_steps + args.steps
    config = FinetuneConfig(
        ensemble=ensemble,
        n_members=n_members,
        batch_size=args.batch_size,
        max_steps=total,
        compile=compile,
        lr=1e-5,
        warmup_ratio=0.0,
        schedule="constant",
        max_length=args.max_length,
        seed=args.seed,
        packing=packing,
    )
    network = build_network(new_backbone(ctx["hf_config"], device), config, "last")
    clock = StepClock(device)
    report = finetune(network, data, config, pad_id=ctx["pad_id"], on_step=lambda *_: clock.mark())
    batches = ours_schedule(data.lengths, config, total)
    c = np.array([len(x) for x in data.chosen])
    r = np.array([len(x) for x in data.rejected])
    pairs = [len(b) for b in batches]
    real = [int(c[b].sum() + r[b].sum()) for b in batches]
    if packing:  # the slots of each packed batch, as the trainer lays it out
        rows = packing_row_tokens(network, config.max_length)
        padded = [
            collate_packed(data, b, ctx["pad_id"], 8, row_tokens=rows, pooling="last").n_padded
            for b in batches
        ]
    else:
        widths = [-(-int(data.lengths[b].max()) // 8) * 8 for b in batches]
        padded = [2 * w * len(b) for w, b in zip(widths, batches, strict=True)]
    if sum(real) != report.tokens_seen or sum(padded) != report.padded_tokens:
        raise RuntimeError(
            f"replayed batches disagree with the trainer: {sum(real)} vs {report.tokens_seen} "
            f"tokens, {sum(padded)} vs {report.padded_tokens} padded"
        )
    out = summarize(clock.step_seconds(), pairs, real, padded, args, ctx)
    out["peak_memory_gib"] = (
        round(report.peak_memory_bytes / GIB, 2) if report.peak_memory_bytes else None
    )
    out["trainer_pairs_per_second_all_steps"] = round(report.pairs_per_second, 2)
    del network, report
    return out


# -- TRL ---------------------------------------------------------------------------------------
def run_trl(
    data: EncodedPairs, args: argparse.Namespace, ctx: dict[str, Any], variant: str
) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, TrainerCallback
    from trl import RewardConfig, RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    device = ctx["device"]
    total = args.warmup_steps + args.steps
    columns: dict[str, Any] = {"chosen_ids": data.chosen, "rejected_ids": data.rejected}
    if variant == "grouped":
        columns["length"] = [int(x) for x in data.lengths]
    dataset = Dataset.from_dict(columns)
    counts: list[tuple[int, int, int]] = []

    @dataclasses.dataclass
    class CountingCollator(DataCollatorForPreference):
        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            out = super().torch_call(examples)
            mask = out["attention_mask"]
            counts.append((len(examples), int(mask.sum()), mask.numel()))
            return out

    clock = StepClock(device)

    class Clock(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            clock.mark()

    cfg = copy.deepcopy(ctx["hf_config"])
    cfg.num_labels = 1
    cfg.pad_token_id = ctx["pad_id"]
    torch.manual_seed(0)
    model = on_device(
        device, lambda: AutoModelForSequenceClassification.from_config(cfg, dtype=torch.float32)
    )
    cuda = device.type == "cuda"
    kwargs: dict[str, Any] = {
        "output_dir": ctx["tmp"] + f"/trl_{variant}",
        "per_device_train_batch_size": args.batch_size,
        "max_steps": total,
        "learning_rate": 1e-5,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "max_grad_norm": 1.0,
        "gradient_checkpointing": variant == "gc",
        "torch_compile": variant == "compile",
        "bf16": cuda,
        "use_cpu": not cuda,
        "report_to": "none",
        "logging_steps": 10,
        "save_strategy": "no",
        "disable_tqdm": True,
        "disable_dropout": True,
        "center_rewards_coefficient": None,
        "max_length": None,
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
        "seed": args.seed,
    }
    fields = {f.name for f in dataclasses.fields(RewardConfig)}
    if variant == "grouped":
        if "train_sampling_strategy" in fields:
            kwargs["train_sampling_strategy"] = "group_by_length"
        else:
            kwargs["group_by_length"] = True
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(**kwargs),
        train_dataset=dataset,
        processing_class=ctx["tokenizer"],
        data_collator=CountingCollator(pad_token_id=ctx["pad_id"]),
        callbacks=[Clock()],
    )
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    peak = torch.cuda.max_memory_allocated() if cuda else None
    if len(clock.marks) != total or len(counts) < total:
        raise RuntimeError(f"TRL ran {len(clock.marks)} steps / {len(counts)} batches of {total}")
    pairs, real, padded = (list(x) for x in zip(*counts[:total], strict=True))
    out = summarize(clock.step_seconds(), pairs, real, padded, args, ctx)
    out["peak_memory_gib"] = round(peak / GIB, 2) if peak else None
    out["trl_settings"] = {
        k: kwargs[k]
        for k in ("gradient_checkpointing", "torch_compile", "bf16", "max_grad_norm")
        if k in kwargs
    } | {"optim": str(trainer.args.optim), "group_by_length": variant == "grouped"}
    del trainer, model, dataset
    return out


# -- scoring -----------------------------------------------------------------------------------
def single_token_words(tokenizer: Any) -> list[str]:
    """Vocabulary words that the tokenizer maps to exactly one token each."""
    vocab = tokenizer.get_vocab()
    words = sorted(
        w for w in vocab if w.isascii() and w.isalpha() and w.islower() and 3 <= len(w) <= 10
    )
    words = words[:: max(1, len(words) // 4000)]
    ids = tokenizer(words, add_special_tokens=False)["input_ids"]
    return [w for w, i in zip(words, ids, strict=True) if len(i) == 1]


def synth_texts(
    words: list[str], totals: np.ndarray, fixed: int, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """Prompts and responses whose encodings have ``totals`` tokens (``fixed`` of them markup):
    a third of the text tokens go to the response."""
    prompts, responses = [], []
    for total in totals:
        text = max(2, int(total) - fixed)
        n_resp = max(1, text // 3)
        pick = rng.choice(len(words), size=text)
        prompts.append(" ".join(words[i] for i in pick[: text - n_resp]))
        responses.append(" ".join(words[i] for i in pick[text - n_resp :]))
    return prompts, responses


def run_scoring(lengths: dict[str, Any], args: argparse.Namespace, ctx: dict[str, Any]) -> dict:
    """``FinetunedRewardModel.score`` against the raw network forward on the same batches."""
    device = ctx["device"]
    config = FinetuneConfig(max_length=args.max_length, score_batch_size=args.score_batch_size)
    rm = FinetunedRewardModel(config, device=device)
    rm.network_ = build_network(new_backbone(ctx["hf_config"], device), config, "last")
    rm.network_.to(device).eval()
    rm.tokenizer_ = RewardTokenizer(
        ctx["tokenizer"], config.max_length, use_chat_template=config.use_chat_template
    )
    rm.pooling_ = "last"
    net = rm.network_
    fixed = len(rm.tokenizer_.encode("", "").ids)
    cap = config.max_length
    words = single_token_words(ctx["tokenizer"])
    rng = np.random.default_rng(args.seed)
    n = args.score_texts
    use_bf16 = device.type == "cuda"
    net_bf16 = copy.deepcopy(net).to(torch.bfloat16) if use_bf16 else None

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def raw(batches: list[tuple[torch.Tensor, torch.Tensor]], model: Any, autocast: bool) -> Any:
        outs = []
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast),
        ):
            for ids, mask in batches:
                outs.append(model(ids, mask).float())
        return torch.cat(outs, dim=1).cpu()

    result: dict[str, Any] = {
        "batch_size": config.score_batch_size,
        "layout": rm.tokenizer_.layout,
        "precision": "bf16 autocast, fp32 weights" if use_bf16 else "fp32",
    }
    sets = {
        "fixed512": np.full(n, 512),
        "hh": np.resize(np.asarray(lengths["chosen"]), n),
    }
    for name, totals in sets.items():
        prompts, responses = synth_texts(words, totals, fixed, rng)
        rm.score(prompts[: 2 * config.score_batch_size], responses[: 2 * config.score_batch_size])
        sync()
        t0 = time.perf_counter()
        est = rm.score(prompts, responses)
        score_s = time.perf_counter() - t0
        # The same sorted batches score() makes (sorted within each tokenised chunk).
        ids, _ = rm.tokenizer_.encode_many(prompts, responses)
        seq_lens = np.array([len(x) for x in ids])
        batches, order_all, padded = [], [], 0
        for lo in range(0, n, SCORE_CHUNK):
            chunk = seq_lens[lo : lo + SCORE_CHUNK]
            order = np.argsort(-chunk, kind="stable") + lo
            for b in range(0, len(order), config.score_batch_size):
                index = order[b : b + config.score_batch_size]
                x, m = pad_batch([ids[i] for i in index], rm.tokenizer_.pad_id, 8)
                padded += x.size
                batches.append((torch.from_numpy(x).to(device), torch.from_numpy(m).to(device)))
                order_all.append(index)
        raw(batches[:2], net, use_bf16)
        sync()
        t0 = time.perf_counter()
        out = raw(batches, net, use_bf16)
        raw_s = time.perf_counter() - t0
        members = np.empty_like(out.numpy())
        members[:, np.concatenate(order_all)] = out.numpy()
        entry = {
            "texts": n,
            "mean_tokens": round(float(seq_lens.mean()), 1),
            "share_at_target_length": round(float(np.mean(seq_lens == np.minimum(totals, cap))), 4),
            "padding_fraction": round(1.0 - float(seq_lens.sum()) / padded, 4),
            "score_texts_per_second": round(n / score_s, 1),
            "raw_forward_texts_per_second": round(n / raw_s, 1),
            "ratio_score_vs_raw": round(raw_s / score_s, 3),
            "score_tokens_per_second": round(float(seq_lens.sum()) / score_s, 1),
            "max_abs_diff_score_vs_raw": float(np.abs(est.members - members).max()),
        }
        if net_bf16 is not None:
            raw(batches[:2], net_bf16, False)
            sync()
            t0 = time.perf_counter()
            raw(batches, net_bf16, False)
            entry["raw_forward_bf16_weights_texts_per_second"] = round(
                n / (time.perf_counter() - t0), 1
            )
        result[name] = entry
        log(f"scoring {name}: {entry}")
    del rm, net, net_bf16
    return result


# -- driver ------------------------------------------------------------------------------------
def table_row(run: dict[str, Any]) -> str:
    def fmt(key: str, spec: str = "") -> str:
        v = run.get(key)
        return "–" if v is None else format(v, spec)

    status = run.get("status", "ok")
    if status != "ok":
        return f"| {run['name']} | {run['dataset']} | {run['batch_size']} | {status} |"
    return (
        f"| {run['name']} | {run['dataset']} | {run['batch_size']} | {fmt('pairs_per_second')} "
        f"| {fmt('tokens_per_second', '.0f')} | {fmt('padding_fraction', '.3f')} | {fmt('mfu')} "
        f"| {fmt('peak_memory_gib')} | {fmt('step_max_over_median')} | {fmt('ratio_vs_trl')} |"
    )


TABLE_HEAD = (
    "| configuration | data | batch | pairs/s | tokens/s | padding | MFU | peak GiB "
    "| step max/median | ratio vs TRL |\n|---|---|---|---|---|---|---|---|---|---|"
)


def add_ratios(result: dict[str, Any]) -> None:
    """``ratio_vs_trl`` of each of our runs: its pairs/s over the best TRL variant's on the
    same data and batch size; ensembles: seconds per step over the single model's."""
    runs = result["runs"]
    for run in runs:
        if run["trainer"] != "ours" or run.get("status") != "ok":
            continue
        trl = [
            r
            for r in runs
            if r["trainer"] == "trl"
            and r["dataset"] == run["dataset"]
            and r["batch_size"] == run["batch_size"]
            and r.get("variant") in TRL_BEST
            and r.get("status") == "ok"
        ]
        if trl:
            best = max(trl, key=lambda r: r["pairs_per_second"])
            run["ratio_vs_trl"] = round(run["pairs_per_second"] / best["pairs_per_second"], 3)
            run["trl_reference"] = best["name"]
        elif result["machine"]["trl"] == "not installed":
            run["ratio_vs_trl"] = None
            run["trl_reference"] = "not installed"
        single = [
            r
            for r in runs
            if r["name"] == "ours"
            and r["dataset"] == run["dataset"]
            and r["batch_size"] == run["batch_size"]
            and r.get("status") == "ok"
        ]
        if run.get("ensemble", "single") != "single" and single:
            run["time_vs_single"] = round(
                run["seconds_per_step"] / single[0]["seconds_per_step"], 3
            )


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, read off the runs (None where a figure is missing). Step spread:
    max/median on fixed512; on hh, where widths differ by design, max over the fitted model."""
    ours = [r for r in result["runs"] if r["trainer"] == "ours" and r.get("status") == "ok"]
    plain = [r for r in ours if "ensemble" not in r]
    mh = [r for r in ours if r.get("ensemble") == "multihead"]
    scoring = result.get("scoring") or {}
    ratios = [
        v["ratio_score_vs_raw"]
        for v in scoring.values()
        if isinstance(v, dict) and "ratio_score_vs_raw" in v
    ]

    def by_name(key: str, dataset: str | None = None) -> dict[str, Any]:
        return {
            f"{r['name']}/{r['dataset']}/b{r['batch_size']}": r.get(key)
            for r in plain
            if dataset is None or r["dataset"] == dataset
        }

    spread = [
        r["step_max_over_median" if r["dataset"] == "fixed512" else "step_max_over_model"]
        for r in plain
    ]
    return {
        "ratio_vs_trl_hh": by_name("ratio_vs_trl", "hh"),
        "ratio_vs_trl_hh_target": 1.5,
        "ratio_vs_trl_hh_stretch": 1.75,
        "ratio_vs_trl_fixed512": by_name("ratio_vs_trl", "fixed512"),
        "mfu": by_name("mfu"),
        "mfu_target": 0.45,
        "worst_step_spread": max(spread, default=None),
        "step_spread_target": 2.0,
        "multihead4_time_vs_single": mh[0].get("time_vs_single") if mh else None,
        "multihead4_target": 1.3,
        "scoring_ratio_vs_raw_min": min(ratios) if ratios else None,
        "scoring_target": 0.9,
    }


def prepare_device(folder: Path, args: argparse.Namespace) -> None:
    """Write what the GPU machine cannot make itself: the tokenizer files and the HH lengths."""
    tokenizer = load_tokenizer(args.tokenizer)
    (folder / "tokenizer").mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder / "tokenizer")
    lengths = hh_lengths_from_data(tokenizer, args.max_length)
    (folder / "hh_lengths.json").write_text(json.dumps(lengths))
    log(f"wrote {folder}/tokenizer and {folder}/hh_lengths.json ({len(lengths['chosen'])} pairs)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--datasets", default="hh,fixed512", help="comma list of hh, fixed512")
    ap.add_argument("--batch-size", type=int, default=32, help="pairs per device batch")
    ap.add_argument("--hh-batch-size", type=int, default=None, help="on hh (default: the same)")
    ap.add_argument(
        "--steps", default="20", help="timed optimizer steps, or 'epoch' (batches in one epoch)"
    )
    ap.add_argument("--warmup-steps", type=int, default=5, help="untimed steps before them")
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--trl-compile", action="store_true", help="also TRL with torch_compile")
    ap.add_argument(
        "--trl-variants", default="", help="extra TRL variants: grouped (group_by_length), gc"
    )
    ap.add_argument("--no-trl", action="store_true", help="skip TRL")
    ap.add_argument("--ours-compile", action="store_true", help="also our trainer with compile")
    ap.add_argument(
        "--ours-packing", action="store_true", help="also our trainer with packing (on hh)"
    )
    ap.add_argument("--ensembles", action="store_true", help="multihead 4, lora 4, independent 2")
    ap.add_argument("--ensemble-data", default="fixed512", help="data set of the ensemble runs")
    ap.add_argument("--ensemble-steps", type=int, default=20, help="timed steps of each ensemble")
    ap.add_argument("--ensemble-batch-size", type=int, default=None, help="default: --batch-size")
    ap.add_argument("--skip-eager", action="store_true", help="only the compiled variants")
    ap.add_argument("--scoring", action="store_true", help="score() vs raw forward")
    ap.add_argument("--score-texts", type=int, default=None, help="default 4096 GPU, 256 CPU")
    ap.add_argument("--score-batch-size", type=int, default=32)
    ap.add_argument("--peak-tflops", type=float, default=None, help="override the bf16 peak")
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder (default: MiniLM's)")
    ap.add_argument("--lengths-file", default=None, help="HH lengths JSON (read, or written)")
    ap.add_argument("--time-budget", type=float, default=None, help="seconds; skip configs after")
    ap.add_argument("--device", default=None, help="default: cuda when available")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--out", default=None, help="JSON file or folder (default bench/results)")
    ap.add_argument("--tag", default="", help="suffix of the default file name")
    ap.add_argument("--prepare-device", default=None, metavar="DIR", help="write DIR and exit")
    args = ap.parse_args()
    if args.warmup_steps < 1:
        ap.error("--warmup-steps must be >= 1 (the first step has no start mark)")
    if args.steps != "epoch" and not args.steps.isdigit():
        ap.error("--steps takes a number or 'epoch'")
    args.hh_batch_size = args.hh_batch_size or args.batch_size
    args.ensemble_batch_size = args.ensemble_batch_size or args.batch_size
    if min(args.batch_size, args.hh_batch_size, args.ensemble_batch_size) < 1:
        ap.error("batch sizes must be >= 1")
    if args.prepare_device:
        prepare_device(Path(args.prepare_device), args)
        return

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = device_name(device)
    if args.score_texts is None:
        args.score_texts = 4096 if device.type == "cuda" else 256
    suffix = ("_tiny" if args.shape == "tiny" else "") + (f"_{args.tag}" if args.tag else "")
    out_path = Path(args.out) if args.out else RESULTS
    if out_path.is_dir():
        out_path = out_path / f"finetune_speed_{device_kind(name)}{suffix}.json"
    tokenizer = load_tokenizer(args.tokenizer)
    pad_id = RewardTokenizer(tokenizer, args.max_length).pad_id
    lengths = hh_lengths(args, tokenizer)
    n_pairs = len(lengths["chosen"])
    hf_config = model_config(args.shape, len(tokenizer), pad_id, args.max_length)
    n_params, n_non_emb = param_counts(hf_config)

    def steps_for(batch_size: int) -> int:
        return -(-n_pairs // batch_size) if args.steps == "epoch" else int(args.steps)

    def batch_for(dataset: str) -> int:
        return args.hh_batch_size if dataset == "hh" else args.batch_size

    def run_args(batch_size: int, steps: int) -> argparse.Namespace:
        """``args`` with one run's batch size and timed steps."""
        out = copy.copy(args)
        out.batch_size, out.steps = batch_size, steps
        return out

    trl_ok = False
    if not args.no_trl:
        try:
            import trl  # noqa: F401

            trl_ok = True
        except Exception as exc:
            log(f"TRL unavailable: {exc!r}")
    tmp = tempfile.TemporaryDirectory(prefix="finetune_speed_")
    hf_config.save_pretrained(tmp.name)  # the random model's config and tokenizer (no weights)
    tokenizer.save_pretrained(tmp.name)
    ctx = {
        "device": device,
        "hf_config": hf_config,
        "pad_id": pad_id,
        "tokenizer": tokenizer,
        "tmp": tmp.name,
        "n_params": n_params,
        "n_params_non_embedding": n_non_emb,
        "peak_flops": peak_flops(name, args.peak_tflops),
    }
    data_sets = {
        "hh": (lengths["chosen"], lengths["rejected"]),
        "fixed512": (np.full(n_pairs, 512), np.full(n_pairs, 512)),
    }
    wanted = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for d in [*wanted, args.ensemble_data]:
        if d not in data_sets:
            ap.error(f"unknown data set {d!r}")
    padding = padding_stats(lengths, 32)  # the batch size the issue names
    keep = ("grouped", "random", "grouped_pad_to_8", "random_pad_to_8")
    padding["by_batch_size"] = {}
    for bs in sorted({8, 16, 64, args.hh_batch_size, args.batch_size} - {32}):
        stats = padding_stats(lengths, bs)
        padding["by_batch_size"][str(bs)] = {k: stats[k] for k in keep}
    result: dict[str, Any] = {
        "benchmark": "finetune_speed",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine_info(device),
        "settings": {
            "shape": args.shape,
            "model_config": {
                k: getattr(hf_config, k)
                for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers")
            }
            | {
                "num_attention_heads": hf_config.num_attention_heads,
                "num_key_value_heads": hf_config.num_key_value_heads,
            },
            "n_params": n_params,
            "n_params_non_embedding": n_non_emb,
            "batch_size_pairs": {"fixed512": args.batch_size, "hh": args.hh_batch_size},
            "steps_timed": args.steps,
            "warmup_steps": args.warmup_steps,
            "ensembles": (
                {
                    "data": args.ensemble_data,
                    "batch_size": args.ensemble_batch_size,
                    "steps_timed": args.ensemble_steps,
                }
                if args.ensembles
                else None
            ),
            "max_length": args.max_length,
            "precision": "fp32 weights, bf16 autocast" if device.type == "cuda" else "fp32",
            "peak_flops": ctx["peak_flops"],
            "mfu_definition": "6 * n_params_non_embedding * tokens_per_second / peak_flops",
            "hh_lengths": {k: v for k, v in lengths.items() if k not in ("chosen", "rejected")},
            "n_pairs": n_pairs,
            "token_ids": "uniform random ids in [1000, vocab) with the data set's lengths",
        },
        "padding": padding,
        "runs": [],
    }
    if not trl_ok:
        result["trl"] = "not installed" if not args.no_trl else "skipped (--no-trl)"
    log(f"padding (HH, batch 32): {padding}")

    def save() -> None:
        add_ratios(result)
        result["targets"] = targets(result)
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=1) + "\n")

    def out_of_time() -> bool:
        return args.time_budget is not None and time.perf_counter() - started > args.time_budget

    def attempt(entry: dict[str, Any], fn: Callable[[], dict[str, Any]]) -> None:
        if out_of_time():
            entry["status"] = "skipped: time budget"
        else:
            log(f"run {entry['name']} on {entry['dataset']}, batch {entry['batch_size']}")
            if torch.cuda.is_available():
                entry["allocated_before_gib"] = round(torch.cuda.memory_allocated() / GIB, 2)
            t0 = time.perf_counter()
            try:
                entry.update(fn())
                entry["status"] = "ok"
            except torch.cuda.OutOfMemoryError as exc:
                entry["status"] = "oom"
                entry["error"] = str(exc).splitlines()[0][:300]
            except Exception as exc:
                entry["status"] = f"error: {type(exc).__name__}"
                entry["error"] = "".join(traceback.format_exception(exc))[-2000:]
            entry["wall_seconds"] = round(time.perf_counter() - t0, 1)
            free_memory()
        log(f"  -> {entry.get('status')}: {entry.get('pairs_per_second')} pairs/s")
        result["runs"].append(entry)
        save()

    used = sorted(set(wanted) | ({args.ensemble_data} if args.ensembles else set()))
    pairs_of = {
        d: random_pairs(*data_sets[d], hf_config.vocab_size, args.seed + i)
        for i, d in enumerate(used)
    }
    extra = [v.strip() for v in args.trl_variants.split(",") if v.strip()]

    def trl_run(d: str, variant: str) -> None:
        label = "trl" if variant == "eager" else f"trl_{variant}"
        bs = batch_for(d)
        entry = {"name": label, "trainer": "trl", "variant": variant, "dataset": d}
        entry["batch_size"] = bs
        if not trl_ok:
            entry["status"] = result["trl"]
            result["runs"].append(entry)
            return
        attempt(entry, lambda: run_trl(pairs_of[d], run_args(bs, steps_for(bs)), ctx, variant))

    def ours_run(
        d: str,
        *,
        compile: bool = False,
        ensemble: str = "single",
        k: int | None = None,
        bs: int | None = None,
        steps: int | None = None,
        packing: bool = False,
    ) -> None:
        bs = bs or batch_for(d)
        steps = steps or steps_for(bs)
        label = "ours_compile" if compile else "ours_packed" if packing else "ours"
        if ensemble != "single":
            label = f"ours_{ensemble}{k}"
        entry: dict[str, Any] = {"name": label, "trainer": "ours", "dataset": d, "batch_size": bs}
        entry["variant"] = "compile" if compile else "packed" if packing else "eager"
        if ensemble != "single":
            entry.update(ensemble=ensemble, n_members=k)
        attempt(
            entry,
            lambda: run_ours(
                pairs_of[d],
                run_args(bs, steps),
                ctx,
                compile=compile,
                ensemble=ensemble,
                n_members=k,
                packing=packing,
            ),
        )

    # The essential comparison first; compiled variants last (they take longest to start).
    for d in wanted if not args.skip_eager else []:
        trl_run(d, "eager")
        ours_run(d)
        if args.ours_packing and d == "hh":  # equal lengths (fixed512) have nothing to pack
            ours_run(d, packing=True)
        for v in extra:
            if not (v == "grouped" and d == "fixed512"):  # equal lengths: nothing to group
                trl_run(d, v)
    if args.ensembles:
        d, ebs = args.ensemble_data, args.ensemble_batch_size
        if args.skip_eager or d not in wanted or batch_for(d) != ebs:
            ours_run(d, bs=ebs, steps=args.ensemble_steps)  # the single-model baseline
        for kind, k in (("multihead", 4), ("lora", 4), ("independent", 2)):
            ours_run(d, ensemble=kind, k=k, bs=ebs, steps=args.ensemble_steps)
    if args.scoring:
        if out_of_time():
            result["scoring"] = {"status": "skipped: time budget"}
        else:
            try:
                result["scoring"] = run_scoring(lengths, args, ctx)
            except Exception as exc:
                result["scoring"] = {"status": f"error: {exc!r}"[:2000]}
            free_memory()
        save()
    for d in wanted:
        if args.trl_compile:
            trl_run(d, "compile")
        if args.ours_compile:
            ours_run(d, compile=True)
    save()
    tmp.cleanup()
    print(f"\n{name}, {args.shape}, steps {args.steps} (+{args.warmup_steps} untimed)\n")
    print(TABLE_HEAD)
    for run in result["runs"]:
        print(table_row(run))
    if "scoring" in result:
        print(f"\nscoring: {json.dumps(result['scoring'])}")
    print(f"\ntargets: {json.dumps(result['targets'])}")
    print(f"wrote {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path}")


if __name__ == "__main__":
    main()
