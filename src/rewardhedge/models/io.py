"""The reward model folder: ``config.json`` + ``weights.safetensors`` + ``manifest.json``.

Nothing here unpickles: a model folder from a stranger cannot run code. The
manifest records the format version, the library version, the encoder id, a
hash of the training data and the SHA-256 and size of every file, so a
corrupt, truncated or foreign folder is refused with a message saying which.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rewardhedge import __version__
from rewardhedge.errors import ModelFormatError

FORMAT_NAME = "rewardhedge.estimators.ensemble"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
MANIFEST_FILE = "manifest.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_model_folder(
    path: str | Path,
    *,
    model_class: str,
    config: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    info: dict[str, Any],
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a model folder atomically (a temp folder renamed into place).

    Args:
        path: destination folder; an existing rewardhedge model there is replaced.
        model_class: the class that can load it, e.g. ``"EnsembleRewardModel"``.
        config: JSON-ready configuration.
        tensors: named tensors for ``weights.safetensors``.
        info: extra manifest fields (``encoder_id``, ``training_data_hash``, ...).
        extra_files: more files by relative path (a tokenizer's JSON and text
            files), hashed in the manifest like the others.
    """
    extra = dict(extra_files or {})
    for name in extra:
        _check_extra_name(name)
    dest = Path(path)
    if dest.exists() and not (dest / MANIFEST_FILE).exists() and any(dest.iterdir()):
        raise ModelFormatError(
            f"{dest} exists and is not a rewardhedge model folder; refusing to overwrite it. "
            "Choose an empty or new folder."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        save_file(contiguous, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
        for name, data in extra.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
        files = {
            name: {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
            for name in (CONFIG_FILE, WEIGHTS_FILE, *extra)
        }
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "model_class": model_class,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            **info,
            "files": files,
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        for name in (CONFIG_FILE, WEIGHTS_FILE, MANIFEST_FILE, *extra):
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def load_model_folder(
    path: str | Path, *, expected_class: str | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a model folder.

    Returns:
        ``(config, tensors, manifest)``.

    Raises:
        ModelFormatError: the folder is missing, foreign, from a newer format,
            or a file is missing, truncated or altered.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelFormatError(f"{folder}: model folder not found.")
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelFormatError(
            f"{folder} is not a rewardhedge model folder: {MANIFEST_FILE} is missing."
        )
    manifest = _read_json(manifest_path)
    if manifest.get("format") != FORMAT_NAME:
        raise ModelFormatError(
            f"{manifest_path}: format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}; "
            "this folder was not written by rewardhedge."
        )
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelFormatError(
            f"{manifest_path}: format_version {version!r} is not supported by rewardhedge "
            f"{__version__} (supports 1..{FORMAT_VERSION}); upgrade rewardhedge."
        )
    if expected_class is not None and manifest.get("model_class") != expected_class:
        raise ModelFormatError(
            f"{manifest_path}: holds a {manifest.get('model_class')!r}, not a {expected_class!r}."
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not {CONFIG_FILE, WEIGHTS_FILE} <= set(files):
        raise ModelFormatError(
            f"{manifest_path}: 'files' must list {CONFIG_FILE} and {WEIGHTS_FILE}."
        )
    for name in set(files) - {CONFIG_FILE, WEIGHTS_FILE}:
        try:
            _check_extra_name(name)
        except ValueError as exc:
            raise ModelFormatError(f"{manifest_path}: {exc}") from None
    for name, meta in files.items():
        _verify_file(folder / name, meta)
    config = _read_json(folder / CONFIG_FILE)
    try:
        tensors = load_file(str(folder / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(
            f"{folder / WEIGHTS_FILE}: unreadable safetensors file ({exc})."
        ) from exc
    return config, tensors, manifest


EXTRA_SUFFIXES = (".json", ".txt", ".jinja", ".model")
"""What extra files may be: a tokenizer's JSON, vocabulary text, chat template
and SentencePiece model (a protobuf). Never a pickle."""


def _check_extra_name(name: str) -> None:
    """An extra file stays inside the folder and is of a kind that cannot run code."""
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or not parts or name in (MANIFEST_FILE,):
        raise ValueError(f"extra file name {name!r} must be a relative path inside the folder.")
    if not name.endswith(EXTRA_SUFFIXES):
        raise ValueError(
            f"extra file {name!r} must end in one of {', '.join(EXTRA_SUFFIXES)} "
            "(no pickles, no code)."
        )


def _verify_file(path: Path, meta: Any) -> None:
    if not path.is_file():
        raise ModelFormatError(f"{path}: file listed in the manifest is missing.")
    if not isinstance(meta, dict) or "sha256" not in meta or "bytes" not in meta:
        raise ModelFormatError(
            f"{path.parent / MANIFEST_FILE}: entry for {path.name} lacks sha256/bytes."
        )
    size = path.stat().st_size
    if size != meta["bytes"]:
        raise ModelFormatError(
            f"{path}: size is {size} bytes, the manifest says {meta['bytes']}; "
            "the file is truncated or was altered."
        )
    if _sha256(path) != meta["sha256"]:
        raise ModelFormatError(
            f"{path}: SHA-256 does not match the manifest; the file is corrupt or was altered."
        )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: not valid JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path}: expected a JSON object, got {type(data).__name__}.")
    return data
