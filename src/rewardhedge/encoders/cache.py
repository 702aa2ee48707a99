"""An on-disk embedding cache that is safe with concurrent writers and crashes.

Layout::

    cache_dir/<sanitised encoder id>/shard-<uuid>.safetensors

Each shard holds ``keys`` `(k, 16)` uint8 (BLAKE2b-128 of the item's text,
see :func:`item_key`) and ``emb`` `(k, dim)` float32, plus metadata naming the
encoder id, the dimension and a BLAKE2b digest of both arrays.

* A writer serialises a shard to ``.tmp-<uuid>.part`` in the same folder,
  fsyncs it and renames it into place with :func:`os.replace` (atomic), so
  readers never see a partial shard and two writers never share a name.
* A reader loads every shard into an in-memory index (key → row). A shard that
  does not load — truncated, corrupt, wrong digest, wrong dimension, another
  encoder's — is skipped with a :func:`warnings.warn` naming it, and its rows
  are simply misses. Temp files are ignored.
* A long encode (:class:`CachedEncoder`) is stored chunk by chunk, a shard about
  every ``SHARD_SECONDS``, so a kill loses at most the chunk in progress.
* :meth:`EmbeddingCache.compact` merges the shards into one (written the same
  atomic way) and then removes the shards it merged.

Vectors come back bit-identical to what was stored (float32 in, float32 out).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rewardhedge.encoders.base import Encoder, check_texts
from rewardhedge.encoders.progress import progress_bar

FORMAT = "rewardhedge-embcache-v1"
KEY_BYTES = 16
SHARD_GLOB = "shard-*.safetensors"
SHARD_SECONDS = 20.0
"""Seconds of encoding per shard in a long ``CachedEncoder.encode`` call."""
FIRST_CHUNK = 256
"""Items in the first chunk of a long encode (the next chunks are sized from its rate)."""
MIN_CHUNK = 64
TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 3600.0


def default_cache_dir() -> Path:
    """The cache root.

    ``$REWARDHEDGE_CACHE``, else ``$XDG_CACHE_HOME/rewardhedge``, else
    ``~/.cache/rewardhedge``.
    """
    explicit = os.environ.get("REWARDHEDGE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "rewardhedge"
    return Path.home() / ".cache" / "rewardhedge"


def _utf8(text: str) -> bytes:
    # surrogatepass encodes lone surrogates too, so no str can make this fail.
    return text.encode("utf-8", "surrogatepass")


def item_key(prompt: str, response: str) -> bytes:
    """16-byte BLAKE2b of ``len(prompt) || prompt || "\\x00" || response`` (UTF-8).

    The prompt's byte length comes first so that a NUL inside a text cannot
    make two different (prompt, response) pairs share a key.
    """
    p = _utf8(prompt)
    h = hashlib.blake2b(digest_size=KEY_BYTES, person=b"rh-embcache")
    h.update(struct.pack("<Q", len(p)))
    h.update(p)
    h.update(b"\x00")
    h.update(_utf8(response))
    return h.digest()


def sanitise_id(encoder_id: str) -> str:
    """A folder name for an encoder id: safe characters plus a short hash of the full id.

    The hash keeps ids that differ only in unsafe characters apart.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_id).strip("._") or "encoder"
    tag = hashlib.blake2b(encoder_id.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
    return f"{safe[:96]}-{tag}"


def _digest(keys: np.ndarray, emb: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(keys).tobytes())
    h.update(np.ascontiguousarray(emb).tobytes())
    return h.hexdigest()


def _read_shard(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Keys, embeddings and metadata of one shard; raises on anything malformed."""
    from safetensors.numpy import load

    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"file is {len(data)} bytes, too short for a safetensors header")
    (n_header,) = struct.unpack("<Q", data[:8])
    if 8 + n_header > len(data):
        raise ValueError("header runs past the end of the file (truncated)")
    header = json.loads(data[8 : 8 + n_header])
    meta = header.get("__metadata__") or {}
    tensors = load(data)
    return tensors["keys"], tensors["emb"], meta


class EmbeddingCache:
    """The on-disk store behind :class:`CachedEncoder`, for one encoder id.

    Args:
        cache_dir: root folder; this encoder's shards live in
            ``cache_dir / sanitise_id(encoder_id)``.
        encoder_id: the encoder's ``id``; shards written for another id are
            refused.
        dim: vector length; shards with another dimension are refused.
    """

    def __init__(self, cache_dir: str | Path, encoder_id: str, dim: int) -> None:
        self.root = Path(cache_dir).expanduser()
        self.encoder_id = encoder_id
        self.dim = int(dim)
        self.dir = self.root / sanitise_id(encoder_id)
        self._index: dict[bytes, np.ndarray] = {}
        self._seen: set[str] = set()
        self._bad: set[tuple[str, int, int]] = set()
        self.n_shards = 0
        """Shard files in the folder at the last refresh, write or compaction."""
        self.refresh()

    # ----------------------------------------------------------------- read
    def _shard_paths(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(self.dir.glob(SHARD_GLOB))

    def refresh(self) -> int:
        """Load shards written since the last refresh; returns how many entries were added."""
        before = len(self._index)
        for _ in range(3):
            vanished = False
            paths = self._shard_paths()
            self.n_shards = len(paths)
            for path in paths:
                if path.name in self._seen:
                    continue
                status = self._load(path)
                if status == "vanished":
                    vanished = True
            if not vanished:  # a compaction removed a shard under us: list again
                break
        return len(self._index) - before

    def _load(self, path: Path) -> str:
        try:
            st = path.stat()
        except FileNotFoundError:
            return "vanished"
        stamp = (path.name, st.st_size, st.st_mtime_ns)
        if stamp in self._bad:
            return "bad"
        try:
            keys, emb, meta = _read_shard(path)
        except FileNotFoundError:
            return "vanished"
        except Exception as exc:  # any malformed file is skipped, never fatal
            return self._skip(path, stamp, f"it does not load ({type(exc).__name__}: {exc})")
        problem = self._check(keys, emb, meta)
        if problem:
            return self._skip(path, stamp, problem)
        for k, row in zip(keys, emb, strict=True):
            self._index.setdefault(k.tobytes(), row)
        self._seen.add(path.name)
        return "ok"

    def _check(self, keys: np.ndarray, emb: np.ndarray, meta: dict[str, str]) -> str | None:
        if meta.get("format") != FORMAT:
            return f"its format is {meta.get('format')!r}, expected {FORMAT!r}"
        if meta.get("encoder_id") != self.encoder_id:
            return f"it was written for encoder {meta.get('encoder_id')!r}, not {self.encoder_id!r}"
        if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
            return f"its keys are {keys.dtype} {keys.shape}, expected (k, 16) uint8"
        if emb.dtype != np.float32 or emb.ndim != 2 or emb.shape[0] != keys.shape[0]:
            return f"its emb is {emb.dtype} {emb.shape}, expected (k, dim) float32"
        if emb.shape[1] != self.dim:
            return f"its vectors have dim {emb.shape[1]}, this encoder has dim {self.dim}"
        if meta.get("digest") != _digest(keys, emb):
            return "its checksum does not match its contents (corrupt)"
        return None

    def _skip(self, path: Path, stamp: tuple[str, int, int], why: str) -> str:
        self._bad.add(stamp)
        warnings.warn(
            f"Skipping embedding-cache shard {str(path)!r}: {why}. Its rows will be "
            "re-encoded; delete the file to silence this warning.",
            RuntimeWarning,
            stacklevel=4,
        )
        return "bad"

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def get(self, key: bytes) -> np.ndarray | None:
        """The stored float32 vector for ``key`` (a copy), or None."""
        row = self._index.get(key)
        return None if row is None else row.copy()

    def lookup(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """``(found, rows)``: a bool mask and an `(n, dim)` float32 array (zeros where missing)."""
        found = np.zeros(len(keys), dtype=bool)
        rows = np.zeros((len(keys), self.dim), dtype=np.float32)
        for i, key in enumerate(keys):
            row = self._index.get(key)
            if row is not None:
                found[i] = True
                rows[i] = row
        return found, rows

    # ---------------------------------------------------------------- write
    def _write_shard(self, keys: np.ndarray, emb: np.ndarray) -> Path:
        from safetensors.numpy import save

        self.dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "encoder_id": self.encoder_id,
            "dim": str(self.dim),
            "digest": _digest(keys, emb),
        }
        blob = save({"keys": keys, "emb": emb}, metadata=meta)
        name = uuid.uuid4().hex
        tmp = self.dir / f"{TMP_PREFIX}{name}.part"
        final = self.dir / f"shard-{name}.safetensors"
        try:
            with open(tmp, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._seen.add(final.name)
        self.n_shards += 1
        return final

    def put(self, keys: Sequence[bytes], emb: np.ndarray) -> Path | None:
        """Store new rows as one new shard; keys already present are left alone.

        Returns the shard written, or None when every key was already stored.
        """
        emb = np.asarray(emb)
        if emb.dtype != np.float32:
            raise TypeError(f"emb has dtype {emb.dtype}, the cache stores float32 only.")
        if emb.ndim != 2 or emb.shape != (len(keys), self.dim):
            raise ValueError(f"emb has shape {emb.shape}, expected ({len(keys)}, {self.dim}).")
        new: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if len(key) != KEY_BYTES:
                raise ValueError(f"keys[{i}] has {len(key)} bytes, expected {KEY_BYTES}.")
            if key not in self._index and key not in new:
                new[key] = i
        if not new:
            return None
        rows = list(new.values())
        key_arr = np.frombuffer(b"".join(new), dtype=np.uint8).reshape(len(new), KEY_BYTES)
        emb_arr = np.ascontiguousarray(emb[rows])
        path = self._write_shard(key_arr, emb_arr)
        for j, key in enumerate(new):
            self._index[key] = emb_arr[j]
        return path

    def compact(self) -> Path | None:
        """Merge every loadable shard into one; then remove the shards merged.

        Safe while other processes read or write: the merged shard is in place
        before any old one is removed, and shards that appear meanwhile are not
        touched. Unloadable shards are left where they are (and warned about);
        temp files older than an hour (from crashed writers) are removed.
        Returns the merged shard, or None if there was nothing to merge.
        """
        self.refresh()
        paths = [p for p in self._shard_paths() if p.name in self._seen]
        self._remove_stale_tmp()
        if len(paths) <= 1:  # nothing to merge
            return paths[0] if paths else None
        keys = list(self._index)
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)
        emb_arr = np.stack([self._index[k] for k in keys]).astype(np.float32, copy=False)
        merged = self._write_shard(key_arr, emb_arr)
        for path in paths:
            path.unlink(missing_ok=True)
            self._seen.discard(path.name)
        self.n_shards = len(self._shard_paths())
        return merged

    def _remove_stale_tmp(self) -> None:
        if not self.dir.is_dir():
            return
        now = time.time()
        for tmp in self.dir.glob(f"{TMP_PREFIX}*"):
            try:
                if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                    tmp.unlink(missing_ok=True)
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.dir)!r}, entries={len(self)})"


class CachedEncoder:
    """Wraps an encoder with an :class:`EmbeddingCache`; same ``id`` and ``dim``.

    ``encode`` returns cached rows and encodes only the misses (deduplicated,
    in first-seen order, as one call to the inner encoder), then stores them as
    one new shard. ``hits`` and ``misses`` count rows over all calls.

    Args:
        encoder: the encoder to wrap.
        cache_dir: cache root; None means :func:`default_cache_dir`.
        max_shards: once this encoder's folder holds more shards than this, an
            ``encode`` call ends with :meth:`EmbeddingCache.compact` (0 disables).
        shard_seconds: a call with more than ``2 * FIRST_CHUNK`` misses encodes them in
            chunks of about this many seconds, each stored as a shard when done (a kill
            loses at most one chunk); 0 encodes them in one call.
    """

    def __init__(
        self,
        encoder: Encoder,
        cache_dir: str | Path | None = None,
        *,
        max_shards: int = 64,
        shard_seconds: float = SHARD_SECONDS,
    ) -> None:
        self.encoder = encoder
        self.id: str = encoder.id
        self.dim: int = int(encoder.dim)
        self.view_slices: dict[str, tuple[int, int]] = dict(getattr(encoder, "view_slices", {}))
        root = default_cache_dir() if cache_dir is None else Path(cache_dir)
        self.cache = EmbeddingCache(root, self.id, self.dim)
        self.max_shards = max_shards
        self.shard_seconds = shard_seconds
        self.hits = 0
        self.misses = 0
        self._write_warned = False

    def encode(
        self, prompts: Sequence[str], responses: Sequence[str], *, progress: bool = False
    ) -> np.ndarray:
        """`(n, dim)` float32: cached rows as stored, misses freshly encoded."""
        prompts, responses = check_texts(prompts, responses)
        keys = [item_key(p, r) for p, r in zip(prompts, responses, strict=True)]
        self.cache.refresh()
        found, out = self.cache.lookup(keys)
        miss_rows = np.flatnonzero(~found)
        self.hits += len(keys) - len(miss_rows)
        self.misses += len(miss_rows)
        if len(miss_rows) == 0:
            return out
        first: dict[bytes, int] = {}
        for i in miss_rows:
            first.setdefault(keys[i], int(i))
        to_encode = list(first.values())
        emb = self._encode_and_store(
            [prompts[i] for i in to_encode],
            [responses[i] for i in to_encode],
            [keys[i] for i in to_encode],
            progress,
        )
        pos = {keys[i]: j for j, i in enumerate(to_encode)}
        for i in miss_rows:
            out[i] = emb[pos[keys[i]]]
        return out

    def _encode_and_store(
        self, prompts: list[str], responses: list[str], keys: list[bytes], progress: bool
    ) -> np.ndarray:
        """Encode the misses; a long encode goes in chunks of about ``shard_seconds``, each
        stored as a shard as soon as it is done, so a kill loses at most the last chunk."""
        n = len(prompts)
        if n <= 2 * FIRST_CHUNK or not self.shard_seconds:
            emb = self._encode_chunk(prompts, responses, progress)
            self._store(keys, emb)
            self._maybe_compact()
            return emb
        out = np.empty((n, self.dim), dtype=np.float32)
        start, size = 0, FIRST_CHUNK
        with progress_bar(n, f"encoding ({self.id})", progress) as advance:
            while start < n:
                stop = min(n, start + size)
                t0 = time.perf_counter()
                emb = self._encode_chunk(prompts[start:stop], responses[start:stop], False)
                out[start:stop] = emb
                self._store(keys[start:stop], emb)
                advance(stop - start)
                rate = (stop - start) / max(time.perf_counter() - t0, 1e-6)
                size = max(MIN_CHUNK, int(rate * self.shard_seconds))
                start = stop
        self._maybe_compact()
        return out

    def _encode_chunk(self, prompts: list[str], responses: list[str], progress: bool) -> np.ndarray:
        emb = np.asarray(self.encoder.encode(prompts, responses, progress=progress))
        if emb.shape != (len(prompts), self.dim):
            raise ValueError(
                f"encoder {self.id!r} returned shape {emb.shape}, "
                f"expected ({len(prompts)}, {self.dim})."
            )
        return emb.astype(np.float32, copy=False)

    def _store(self, keys: list[bytes], emb: np.ndarray) -> None:
        try:
            self.cache.put(keys, emb)
        except OSError as exc:
            self._warn_write(exc)

    def _maybe_compact(self) -> None:
        try:
            if self.max_shards and self.cache.n_shards > self.max_shards:
                self.cache.compact()
        except OSError as exc:
            self._warn_write(exc)

    def _warn_write(self, exc: OSError) -> None:
        if not self._write_warned:
            self._write_warned = True
            warnings.warn(
                f"Could not write the embedding cache in {str(self.cache.dir)!r} ({exc}); "
                "going on without storing new vectors.",
                RuntimeWarning,
                stacklevel=4,
            )

    def __repr__(self) -> str:
        return f"CachedEncoder({self.encoder!r}, cache={self.cache!r})"
