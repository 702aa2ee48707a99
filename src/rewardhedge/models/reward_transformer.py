"""Fine-tunable reward networks: a Hugging Face backbone with scalar heads.

Every network here maps ``(input_ids, attention_mask)`` to a `(K, B)` tensor
of rewards, one row per ensemble member, so one trainer and one scoring path
serve all four ensemble kinds:

* :class:`RewardTransformer` with K heads: ``single`` (K=1), ``multihead``
  (K heads share the backbone) and ``mc_dropout`` (dropout before the head);
* :class:`LoraEnsemble`: K LoRA adapters (peft) and K heads on one frozen base;
* :class:`IndependentEnsemble`: K whole ``RewardTransformer`` copies.

Backbones load from a local folder with safetensors weights only
(``use_safetensors=True``): a ``pytorch_model.bin`` is a pickle and is refused.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rewardhedge.encoders.packing import (
    PROBE_LENGTHS,
    packed_inputs,
    packing_gap,
    position_block_mask,
)
from rewardhedge.encoders.reward_tokenizer import pad_batch
from rewardhedge.errors import ConfigError, ModelFormatError


def hidden_size(config: Any) -> int:
    """The width of the backbone's last hidden state."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("hidden_size", "d_model", "n_embd", "dim"):
        value = getattr(text, name, None)
        if isinstance(value, int):
            return value
    raise ConfigError(f"Cannot tell the hidden size of a {type(config).__name__} backbone.")


def _model_kinds(config: Any) -> tuple[bool, bool]:
    """``(masked_lm, causal_lm)``: which auto-model families list the config's model type."""
    return _families(getattr(config, "model_type", ""))


@functools.cache
def _families(model_type: str) -> tuple[bool, bool]:
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    return (
        model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    )


def default_pooling(config: Any) -> str:
    """``first`` for masked-LM encoders (BERT, RoBERTa, DeBERTa), ``last`` otherwise."""
    masked, _ = _model_kinds(config)
    return "first" if masked and not getattr(config, "is_decoder", False) else "last"


def is_causal(config: Any) -> bool:
    """Whether the backbone is a causal decoder (BERT is listed as a causal LM too, for
    its ``is_decoder`` mode, so masked-LM types count only with ``is_decoder``)."""
    masked, causal = _model_kinds(config)
    return causal and (not masked or bool(getattr(config, "is_decoder", False)))


def load_backbone(path: str | Path, attn_implementation: str | None = None) -> Any:
    """``AutoModel`` (no LM head) from a local folder, fp32, safetensors only."""
    from transformers import AutoModel

    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(f"backbone {str(path)!r} is not a local folder; nothing is downloaded.")
    if not any(folder.glob("*.safetensors")):
        raise ModelFormatError(
            f"{folder}: no *.safetensors weights. rewardhedge reads safetensors only (a "
            "pytorch_model.bin is a pickle and could run code); convert it with "
            "`model.save_pretrained(folder, safe_serialization=True)` once, in a trusted place."
        )
    return AutoModel.from_pretrained(
        str(folder),
        dtype=torch.float32,
        local_files_only=True,
        use_safetensors=True,
        attn_implementation=attn_implementation,
    )


def backbone_from_config(config: Any, attn_implementation: str | None = None) -> Any:
    """A backbone with the architecture of ``config`` and random weights (for loading ours)."""
    from transformers import AutoModel

    return AutoModel.from_config(
        config, dtype=torch.float32, attn_implementation=attn_implementation
    )


def uses_varlen_attention(network: nn.Module) -> bool:
    """Whether a packed batch should be one long row: a causal decoder on FlashAttention
    takes the sequence boundaries from the position ids (variable-length kernels, no
    mask) when the batch has a single row."""
    config = network_backbone(network).config
    impl = str(getattr(config, "_attn_implementation", "") or "")
    return impl.startswith("flash_attention") and is_causal(config)


def network_backbone(network: nn.Module) -> Any:
    """The (first) transformers model inside one of the networks below."""
    if isinstance(network, IndependentEnsemble):
        return network.members[0].backbone
    backbone = getattr(network, "backbone", None)
    return backbone if backbone is not None else network.peft


def drop_pooler(backbone: Any) -> Any:
    """Remove a BERT-style pooler (a dense layer on [CLS]) that the reward heads never read.

    Its weights would get no gradient, which DistributedDataParallel refuses
    ("parameters that were not used in producing loss"), and LoRA would adapt
    it for nothing. Base models built with ``add_pooling_layer=False`` have
    ``pooler = None`` too, so transformers skips it in the forward pass.
    """
    if getattr(backbone, "pooler", None) is not None:
        backbone.pooler = None
    return backbone


def pool_hidden(
    backbone: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    pooling: str,
    position_ids: torch.Tensor | None = None,
    pool_at: torch.Tensor | None = None,
) -> torch.Tensor:
    """`(B, H)` the last hidden state at the first or the last real token.

    A causal decoder read at its last real token never attends to the right
    padding after it, so it runs without the mask: transformers then takes the
    plain causal attention path, with no mask to build and no host sync.

    With ``position_ids`` the batch is packed (see :func:`pool_packed`, and
    :func:`~rewardhedge.encoders.packing.packed_inputs`, which builds such a batch)
    and ``pool_at`` says where each sequence's pooled token is.
    """
    if position_ids is not None:
        if pool_at is None:
            raise ValueError("a packed batch (position_ids given) needs pool_at.")
        return pool_packed(backbone, input_ids, position_ids, pool_at)
    kwargs: dict[str, Any] = {"input_ids": input_ids}
    if pooling != "last" or not is_causal(backbone.config):
        kwargs["attention_mask"] = attention_mask
    if getattr(backbone.config, "use_cache", False):
        kwargs["use_cache"] = False
    hidden = backbone(**kwargs).last_hidden_state  # (B, T, H)
    if pooling == "first":
        return hidden[:, 0]
    last = attention_mask.sum(dim=1) - 1  # stays on the device: no host sync
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def pool_packed(
    backbone: Any, input_ids: torch.Tensor, position_ids: torch.Tensor, pool_at: torch.Tensor
) -> torch.Tensor:
    """`(N, H)` hidden states at ``pool_at`` (flat ``row * width + column``) of a packed batch.

    Several sequences share each row and ``position_ids`` restart at 0 for each
    (padding tokens are sequences of one). A causal decoder gets no mask:
    transformers reads the boundaries from the restarts, block-causal masks for
    SDPA and eager attention, variable-length kernels for flash attention, so no
    token is computed for padding. Other models get a block-diagonal mask.
    """
    kwargs: dict[str, Any] = {"input_ids": input_ids, "position_ids": position_ids}
    if not is_causal(backbone.config):
        eager = getattr(backbone.config, "_attn_implementation", "sdpa") == "eager"
        dtype = backbone.dtype if eager else None
        kwargs["attention_mask"] = position_block_mask(position_ids, dtype)
    if getattr(backbone.config, "use_cache", False):
        kwargs["use_cache"] = False
    hidden = backbone(**kwargs).last_hidden_state  # (rows, width, H)
    return hidden.reshape(-1, hidden.shape[-1])[pool_at]


def packing_row_tokens(network: nn.Module, max_length: int) -> int:
    """How long a packed row may grow: unbounded (one row) on FlashAttention's
    variable-length path, about ``max_length`` with masked attention, whose cost
    grows with the square of the row."""
    return 1 << 40 if uses_varlen_attention(network) else max_length


class RewardTransformer(nn.Module):
    """A backbone, a pooled token, dropout, and ``n_heads`` linear reward heads.

    Args:
        backbone: a ``transformers`` base model (``AutoModel``).
        n_heads: heads K; each row of the output is one head's rewards.
        pooling: ``"last"`` (last real token; right padding) or ``"first"``.
        dropout: dropout on the pooled vector (MC dropout samples it at scoring time).
    """

    def __init__(self, backbone: Any, n_heads: int, pooling: str, dropout: float = 0.0) -> None:
        super().__init__()
        if pooling not in ("last", "first"):
            raise ConfigError(f"pooling == {pooling!r}, must be 'last' or 'first'.")
        self.backbone = backbone
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.Linear(hidden_size(backbone.config), n_heads)
        nn.init.normal_(self.heads.weight, std=1.0 / (hidden_size(backbone.config) + 1) ** 0.5)
        nn.init.zeros_(self.heads.bias)

    @property
    def n_members(self) -> int:
        return self.heads.out_features

    def pooled(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        pool_at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`(B, H)` the hidden state the heads read (packed when ``position_ids`` is given)."""
        return pool_hidden(
            self.backbone, input_ids, attention_mask, self.pooling, position_ids, pool_at
        )

    def head_rewards(self, pooled: torch.Tensor) -> torch.Tensor:
        """`(K, B)` float32 rewards from pooled vectors (dropout applies in train mode)."""
        return self.heads(self.dropout(pooled)).float().T

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        pool_at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.head_rewards(self.pooled(input_ids, attention_mask, position_ids, pool_at))


class IndependentEnsemble(nn.Module):
    """K whole reward networks; the output stacks their rewards."""

    def __init__(self, members: list[RewardTransformer]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    @property
    def n_members(self) -> int:
        return sum(m.n_members for m in self.members)

    @property
    def pooling(self) -> str:
        return self.members[0].pooling

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        pool_at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return torch.cat(
            [m(input_ids, attention_mask, position_ids, pool_at) for m in self.members]
        )


class LoraEnsemble(nn.Module):
    """K LoRA adapters on one frozen backbone, each with its own head.

    The forward pass runs the backbone once per adapter (peft activates one at a
    time), so cost grows with K but the base weights are held once.
    """

    def __init__(
        self,
        backbone: Any,
        n_members: int,
        pooling: str,
        lora: Any,
        dropout: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        from peft import LoraConfig, get_peft_model

        cfg = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.targets(),
            init_lora_weights=True,
        )
        self.names = [f"m{k}" for k in range(n_members)]
        torch.manual_seed(seed)
        self.peft = get_peft_model(backbone, cfg, adapter_name=self.names[0])
        for k, name in enumerate(self.names[1:], start=1):
            torch.manual_seed(seed + k)
            self.peft.add_adapter(name, cfg)
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        width = hidden_size(backbone.config)
        self.heads = nn.ModuleList(nn.Linear(width, 1) for _ in self.names)
        for k, head in enumerate(self.heads):
            gen = torch.Generator().manual_seed(seed + 1000 + k)
            with torch.no_grad():
                head.weight.normal_(std=1.0 / (width + 1) ** 0.5, generator=gen)
                head.bias.zero_()
        self._randomise_lora_b(seed)
        self._trainable()

    def _randomise_lora_b(self, seed: int) -> None:
        """peft starts every ``lora_B`` at zero, so all members would start as the
        base model; a small random ``B`` per member makes them differ from step 0."""
        gen = torch.Generator().manual_seed(seed + 7)
        with torch.no_grad():
            for name, p in self.peft.named_parameters():
                if "lora_B" in name:
                    p.normal_(std=1e-3, generator=gen)

    def _trainable(self) -> None:
        for name, p in self.peft.named_parameters():
            p.requires_grad_("lora_" in name)

    @property
    def n_members(self) -> int:
        return len(self.names)

    def member_pooled(
        self,
        k: int,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        pool_at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.peft.base_model.set_adapter(self.names[k])
        return pool_hidden(
            self.peft, input_ids, attention_mask, self.pooling, position_ids, pool_at
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        pool_at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        rows = [
            self.heads[k](
                self.dropout(
                    self.member_pooled(k, input_ids, attention_mask, position_ids, pool_at)
                )
            )
            .float()
            .T
            for k in range(self.n_members)
        ]
        # peft's set_adapter froze every adapter but the last one; thaw them all again
        # (in eval mode too, so a forward pass before training leaves nothing frozen).
        self._trainable()
        return torch.cat(rows)


@torch.no_grad()
def packing_error(network: nn.Module, pad_id: int) -> float:
    """:func:`~rewardhedge.encoders.packing.packing_gap` of a reward network: the
    largest gap, relative to the rewards' scale, between packed and padded rewards
    (run in eval mode, before any training).

    The probe's rows of one sequence run as an ordinary padded batch, its packed
    row through :func:`~rewardhedge.encoders.packing.packed_inputs`.
    """
    seqs = [[5 + (7 * j + 3 * k) % 40 for k in range(m)] for j, m in enumerate(PROBE_LENGTHS)]
    device = next(network.parameters()).device

    def run(rows: list[list[int]]) -> np.ndarray:
        if all(len(row) == 1 for row in rows):
            ids, mask = pad_batch([seqs[row[0]] for row in rows], pad_id, 1)
            inputs = (torch.from_numpy(ids), torch.from_numpy(mask))
        else:
            inputs = packed_inputs(seqs, rows, pad_id, network.pooling)
        return network(*(t.to(device) for t in inputs)).float().cpu().numpy()

    was_training = network.training
    network.eval()
    try:
        return packing_gap(run)
    finally:
        network.train(was_training)
