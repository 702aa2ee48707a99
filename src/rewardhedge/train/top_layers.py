"""Train only the top layers of an encoder, on cached outputs of the frozen layers below.

On a CPU a fine-tuning step is forward + backward through every layer. With
the lower layers frozen, their output for a text never changes, so it is
computed once (first epoch, eval-mode: no dropout) and kept in memory keyed
by the token ids; every later pass runs only the top layers. With ``n_top``
of ``L`` layers trained, an epoch after the first costs about ``n_top / L``
of a full one, and members of an ``independent`` ensemble share one cache.

Works by replacing the ``forward`` of each backbone instance while training
(parameter names, checkpoints and the saved model are unchanged) and only
for BERT-style encoders (``embeddings`` + ``encoder.layer``); a probe checks
before training that the split forward gives the backbone's own outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MethodType, SimpleNamespace
from typing import Any

import torch
from torch import nn

from rewardhedge.errors import ConfigError

PROBE_TOLERANCE = 1e-4
"""Largest relative gap allowed between the split forward and the backbone's own."""


@dataclass
class LowerCache:
    """Lower-layer outputs per distinct token sequence (``bytes`` of its ids)."""

    states: dict[bytes, torch.Tensor] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    @property
    def n_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.states.values())


def encoder_layers(backbone: Any) -> nn.ModuleList:
    """The transformer layers of a BERT-style encoder, or a clear error."""
    layers = getattr(getattr(backbone, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(backbone, "embeddings"):
        kind = getattr(getattr(backbone, "config", None), "model_type", type(backbone).__name__)
        raise ConfigError(
            f"train_top_layers: a {kind} backbone has no BERT-style `embeddings` + "
            "`encoder.layer`; train it without --train-top-layers."
        )
    return layers


def _backbones(network: nn.Module) -> list[Any]:
    members = getattr(network, "members", None)
    if members is not None:
        return [m.backbone for m in members]
    backbone = getattr(network, "backbone", None)
    if backbone is None:
        raise ConfigError(
            "train_top_layers trains whole top layers; a LoRA ensemble adapts every "
            "layer instead. Use --full (single, multihead, mc_dropout or independent)."
        )
    return [backbone]


def _mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """`(B, 1, 1, T)` additive mask: 0 on real tokens, the dtype's minimum on padding."""
    keep = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - keep) * torch.finfo(dtype).min


def _run(layers: Any, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def _lower(backbone: Any, n_lower: int, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`(B, T, H)` the output of the embeddings and the first ``n_lower`` layers (no grad,
    eval mode: the same states on every epoch)."""
    was = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            hidden = backbone.embeddings(input_ids=ids)
            return _run(encoder_layers(backbone)[:n_lower], hidden, _mask(mask, hidden.dtype))
    finally:
        backbone.train(was)


def _cached_lower(
    backbone: Any, n_lower: int, cache: LowerCache, ids: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """`(B, T, H)` lower-layer states, from the cache where each row's ids were seen."""
    lengths = mask.sum(dim=1).tolist()
    host = ids.cpu().numpy()
    keys = [host[i, : lengths[i]].tobytes() for i in range(len(lengths))]
    missing = [i for i, k in enumerate(keys) if k not in cache.states]
    cache.hits += len(keys) - len(missing)
    cache.misses += len(missing)
    if missing:
        rows = torch.as_tensor(missing, device=ids.device)
        width = max(lengths[i] for i in missing)
        states = _lower(backbone, n_lower, ids[rows, :width], mask[rows, :width])
        for j, i in enumerate(missing):
            cache.states[keys[i]] = states[j, : lengths[i]].detach().clone()
    width = ids.shape[1]
    first = cache.states[keys[0]]
    out = first.new_zeros((len(keys), width, first.shape[-1]))
    for i, k in enumerate(keys):
        out[i, : lengths[i]] = cache.states[k]
    return out


def _split_forward(n_lower: int, cache: LowerCache) -> Any:
    """A ``forward`` for a backbone instance: cached lower layers + trained top layers in
    training mode, the backbone's own forward otherwise (scoring, evaluation)."""

    def forward(self: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any):
        if not self.training or kwargs.get("position_ids") is not None:
            return type(self).forward(
                self, input_ids=input_ids, attention_mask=attention_mask, **kwargs
            )
        lower = _cached_lower(self, n_lower, cache, input_ids, attention_mask)
        mask = _mask(attention_mask, lower.dtype)
        top = _run(encoder_layers(self)[n_lower:], lower, mask)
        return SimpleNamespace(last_hidden_state=top)

    return forward


@torch.no_grad()
def split_error(backbone: Any, n_lower: int) -> float:
    """Relative gap between the split forward and the backbone's own, on a probe batch."""
    was = backbone.training
    backbone.eval()
    try:
        lengths = (9, 4, 13)
        width = max(lengths)
        device = next(backbone.parameters()).device
        ids = torch.zeros((len(lengths), width), dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for j, m in enumerate(lengths):
            ids[j, :m] = torch.tensor([5 + (7 * j + 3 * k) % 40 for k in range(m)])
            mask[j, :m] = 1
        own = type(backbone).forward(backbone, input_ids=ids, attention_mask=mask).last_hidden_state
        lower = _lower(backbone, n_lower, ids, mask)
        split = _run(encoder_layers(backbone)[n_lower:], lower, _mask(mask, lower.dtype))
    finally:
        backbone.train(was)
    real = mask.bool()
    scale = max(float(own[real].abs().max()), 1e-6)
    return float((own[real] - split[real]).abs().max()) / scale


def check_layer_count(folder: str, n_top: int) -> None:
    """Refuse ``n_top`` outside 1..L from the backbone folder's config alone (cheap, so the
    command line can say so before it reads any data)."""
    from pathlib import Path

    from transformers import AutoConfig

    if not Path(folder).is_dir():
        return  # loading the backbone reports the missing folder
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    n_layers = getattr(config, "num_hidden_layers", None)
    if isinstance(n_layers, int) and not 1 <= n_top <= n_layers:
        raise ConfigError(
            f"finetune.train_top_layers == {n_top}, must be between 1 and the backbone's "
            f"{n_layers} layers."
        )


@contextmanager
def top_layers_only(network: nn.Module, n_top: int) -> Iterator[LowerCache]:
    """Within the block, only the top ``n_top`` layers of each backbone (and the heads)
    train, on cached lower-layer outputs; afterwards the backbones are plain again
    (the lower layers stay frozen: they were never trained)."""
    backbones = _backbones(network)
    n_layers = len(encoder_layers(backbones[0]))
    if not 1 <= n_top <= n_layers:
        raise ConfigError(
            f"finetune.train_top_layers == {n_top}, must be between 1 and the backbone's "
            f"{n_layers} layers."
        )
    n_lower = n_layers - n_top
    error = split_error(backbones[0], n_lower)
    if error > PROBE_TOLERANCE:
        kind = getattr(backbones[0].config, "model_type", "?")
        raise ConfigError(
            f"train_top_layers: a {kind} backbone's layers run one by one give other outputs "
            f"than its own forward (relative gap {error:.1e}); train it without "
            "--train-top-layers."
        )
    cache = LowerCache()
    for backbone in backbones:
        backbone.embeddings.requires_grad_(False)
        encoder_layers(backbone)[:n_lower].requires_grad_(False)
        backbone.forward = MethodType(_split_forward(n_lower, cache), backbone)
    try:
        yield cache
    finally:
        for backbone in backbones:
            del backbone.forward
