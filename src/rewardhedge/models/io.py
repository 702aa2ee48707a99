"""The reward model folder: ``config.json`` + ``weights.safetensors`` + ``manifest.json``.

Nothing here unpickles: a model folder from a stranger cannot run code. The
manifest records the format version, the library version, the encoder id, a
hash of the training data and the SHA-256 and size of every file, so a
corrupt, truncated or foreign folder is refused with a message saying which.

**Crash safety.** :func:`save_model_folder` publishes ``NAME`` in steps, each
of which leaves a state that the next save or load of ``NAME`` can finish or
undo:

1. write every file into a sibling folder ``.NAME.tmp-XXXX``, fsyncing each
   file and folder (a ``tmp`` folder is incomplete by definition);
2. rename it to ``.NAME.new-XXXX`` and fsync the parent folder: the name says
   the new model is complete (the commit point);
3. rename an existing ``NAME`` aside to ``.NAME.old-XXXX``;
4. rename ``.NAME.new-XXXX`` to ``NAME`` and fsync the parent folder;
5. remove ``.NAME.old-XXXX``.

:func:`recover_model_folder` (run by every save and load of ``NAME``) repairs
what a crash left: it removes ``tmp`` folders; moves a complete ``new`` folder
into place (rolling the interrupted save forward; one that fails its manifest
hashes is removed instead); moves an ``old`` folder back if ``NAME`` is missing
and there is no ``new`` one; and removes stale ``old`` folders. Each repair is
reported with a :class:`RuntimeWarning`. Saves and repairs of one path hold an
exclusive ``flock`` on ``.NAME.lock`` beside it (removed afterwards), so a
repair never touches a save in progress; a load that finds leftovers waits for
such a save to end.

**Permissions** follow the process umask, like any file the process creates:
files are ``0o666 & ~umask`` and folders ``0o777 & ~umask`` (0644/0755 under
the usual umask 022, 0600/0700 under 077), the model folder included.

**Non-finite weights** are refused both ways: saving a tensor that holds NaN or
Inf raises, and so does loading one, naming the tensor and the count.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rewardhedge import __version__
from rewardhedge.data.jsonl import current_umask, fsync_dir
from rewardhedge.errors import ModelFormatError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None  # type: ignore[assignment]

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
    """Write a model folder crash-safely (see the module docstring for the steps).

    Args:
        path: destination folder; an existing rewardhedge model there is replaced.
        model_class: the class that can load it, e.g. ``"EnsembleRewardModel"``.
        config: JSON-ready configuration.
        tensors: named tensors for ``weights.safetensors``; NaN or Inf in any
            floating-point tensor is refused.
        info: extra manifest fields (``encoder_id``, ``training_data_hash``, ...).
        extra_files: more files by relative path (a tokenizer's JSON and text
            files), hashed in the manifest like the others.

    Raises:
        ModelFormatError: a tensor holds NaN or Inf, or ``path`` holds something
            that is not a rewardhedge model folder.
        OSError: writing failed; ``path`` then still holds the previous model (or
            the new one, if the failure came after the commit point).
    """
    extra = dict(extra_files or {})
    for name in extra:
        _check_extra_name(name)
    dest = Path(path)
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    bad = _non_finite(contiguous)
    if bad:
        raise ModelFormatError(
            f"refusing to save {dest}: non-finite weights in {_join(bad)}. A model with "
            "NaN or Inf weights scores NaN; the training diverged (try a lower learning "
            "rate or fewer epochs)."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        _announce(dest, _repair(dest))
        if os.path.lexists(dest) and not dest.is_dir():
            raise ModelFormatError(f"{dest} exists and is not a folder; refusing to overwrite it.")
        if dest.exists() and not (dest / MANIFEST_FILE).exists() and any(dest.iterdir()):
            raise ModelFormatError(
                f"{dest} exists and is not a rewardhedge model folder; refusing to overwrite "
                "it. Choose an empty or new folder."
            )
        _publish(dest, model_class, config, contiguous, info, extra)
    return dest


def _publish(
    dest: Path,
    model_class: str,
    config: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    info: dict[str, Any],
    extra: dict[str, bytes],
) -> None:
    """Steps 1-5 of the module docstring; the caller holds the lock."""
    parent = dest.parent
    file_mode, dir_mode = _modes()
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=parent))
    token = tmp.name.rsplit("-", 1)[1]
    new = parent / f".{dest.name}.new-{token}"
    old = parent / f".{dest.name}.old-{token}"
    moved_aside = False
    try:
        os.chmod(tmp, dir_mode)
        _write_file(tmp / CONFIG_FILE, _json_bytes(config), file_mode)
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
        _sync_file(tmp / WEIGHTS_FILE, file_mode)
        folders = [tmp]
        for name, data in extra.items():
            for sub in reversed(Path(name).parents[:-1]):  # parents inside tmp, outermost first
                if not (tmp / sub).is_dir():
                    os.mkdir(tmp / sub)
                    os.chmod(tmp / sub, dir_mode)
                    folders.append(tmp / sub)
            _write_file(tmp / name, data, file_mode)
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
        _write_file(tmp / MANIFEST_FILE, _json_bytes(manifest), file_mode)
        for folder in reversed(folders):  # innermost first
            fsync_dir(folder)
        os.replace(tmp, new)  # the commit point: the new model is complete
        fsync_dir(parent)
        if os.path.lexists(dest):
            os.replace(dest, old)
            moved_aside = True
        os.replace(new, dest)
        fsync_dir(parent)
    except BaseException:
        # Undo an unfinished save, or finish a committed one; the first error is the news.
        with contextlib.suppress(Exception):
            _repair(dest)
        raise
    if moved_aside:
        try:
            _remove(old)
        except OSError as exc:
            warnings.warn(
                f"{dest}: saved, but the previous model could not be removed from {old} "
                f"({exc}); the next save or load of {dest} removes it.",
                RuntimeWarning,
                stacklevel=3,
            )


def recover_model_folder(path: str | Path) -> list[str]:
    """Finish or undo a save of ``path`` that a crash interrupted.

    Safe to call at any time (it waits for a save of ``path`` in progress);
    :func:`save_model_folder` and :func:`load_model_folder` call it themselves.

    Returns:
        What was done, one line per action (also issued as a ``RuntimeWarning``);
        empty when there was nothing to repair.
    """
    dest = Path(path)
    if not any(_leftovers(dest).values()):
        return []
    with _locked(dest):
        actions = _repair(dest)
    _announce(dest, actions)
    return actions


def _repair(dest: Path) -> list[str]:
    """Recovery as described in the module docstring; the caller holds the lock.
    Each step leaves a state this function repairs if it is itself interrupted."""
    found = _leftovers(dest)
    actions = []
    for tmp in found["tmp"]:
        _remove(tmp)
        actions.append(f"removed the incomplete folder {tmp.name}")
    complete = []
    for new in found["new"]:
        problem = _folder_problem(new)
        if problem is None:
            complete.append(new)
        else:
            _remove(new)
            actions.append(f"removed {new.name}, which fails verification ({problem})")
    complete.sort(key=_mtime)
    for stale in complete[:-1]:
        _remove(stale)
        actions.append(f"removed the older complete folder {stale.name}")
    olds = sorted(found["old"], key=_mtime)
    if complete:
        new = complete[-1]
        if os.path.lexists(dest):
            aside = dest.parent / f".{dest.name}.old-{secrets.token_hex(4)}"
            os.replace(dest, aside)
            olds.append(aside)
        os.replace(new, dest)
        fsync_dir(dest.parent)
        actions.append(f"finished the interrupted save: moved the complete {new.name} to {dest}")
    elif olds and not os.path.lexists(dest):
        back = olds.pop()
        os.replace(back, dest)
        fsync_dir(dest.parent)
        actions.append(
            f"the interrupted save had not completed: restored the previous model from {back.name}"
        )
    for old in olds:
        _remove(old)
        actions.append(f"removed the previous model left in {old.name}")
    return actions


def _leftovers(dest: Path) -> dict[str, list[Path]]:
    """``.NAME.tmp-*``, ``.NAME.new-*`` and ``.NAME.old-*`` folders beside ``dest``."""
    found: dict[str, list[Path]] = {"tmp": [], "new": [], "old": []}
    if not dest.name:
        return found
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.(tmp|new|old)-[A-Za-z0-9_]+")
    try:
        entries = list(os.scandir(dest.parent))
    except OSError:  # no parent, or one we may not list: nothing we could repair
        return found
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        # a symlink: a model folder that was a link, moved aside
        if match and (entry.is_dir(follow_symlinks=False) or entry.is_symlink()):
            found[match.group(1)].append(dest.parent / entry.name)
    for paths in found.values():
        paths.sort()
    return found


def _remove(path: Path) -> None:
    """Remove a leftover folder (or a link to one: the link, not its target)."""
    if path.is_symlink():
        os.unlink(path)
    else:
        shutil.rmtree(path)


def _announce(dest: Path, actions: list[str]) -> None:
    if actions:
        warnings.warn(
            f"{dest}: an earlier save was interrupted; " + "; ".join(actions) + ".",
            RuntimeWarning,
            stacklevel=4,
        )


def _folder_problem(folder: Path) -> str | None:
    """Why a complete-by-name folder cannot be published, or None: its manifest's
    files and hashes are checked (not its format version: a newer library's
    complete model is still complete)."""
    try:
        _verify_files(folder)
    except (ModelFormatError, OSError) as exc:
        return str(exc)
    return None


def _mtime(path: Path) -> tuple[int, str]:
    try:
        return path.stat().st_mtime_ns, path.name
    except OSError:
        return 0, path.name


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``.NAME.lock`` beside ``dest``, the file removed
    on release (a waiter that then holds an unlinked file retries)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    lock_path = dest.parent / f".{dest.name}.lock"
    file_mode, _ = _modes()
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, file_mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(lock_path)
                mine = os.fstat(fd)
                held = (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino)
            except FileNotFoundError:
                held = False
        except BaseException:
            os.close(fd)
            raise
        if held:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)


def _modes() -> tuple[int, int]:
    """(file mode, folder mode) for the current umask."""
    umask = current_umask()
    return 0o666 & ~umask, 0o777 & ~umask


def _json_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write a new file, give it ``mode`` and fsync it."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, mode)


def _sync_file(path: Path, mode: int) -> None:
    """Give a file written by someone else ``mode`` and fsync it."""
    os.chmod(path, mode)
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """``'name' (n of N values: a NaN, b Inf)`` for each tensor holding NaN or Inf."""
    out = []
    for name, tensor in tensors.items():
        if not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        t = tensor
        try:
            finite = bool(torch.isfinite(t).all())
        except (RuntimeError, TypeError):  # a dtype without isfinite (float8)
            t = tensor.float()
            finite = bool(torch.isfinite(t).all())
        if finite:
            continue
        nan = int(torch.isnan(t).sum())
        inf = int(torch.isinf(t).sum())
        out.append(f"tensor {name!r} ({nan + inf} of {t.numel()} values: {nan} NaN, {inf} Inf)")
    return out


def _join(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more tensors"


def folder_model_class(path: str | Path) -> str | None:
    """The ``model_class`` a model folder's manifest names (``None`` when there is no
    readable manifest): which class should load it. A cheap look, no verification."""
    try:
        manifest = json.loads((Path(path) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = manifest.get("model_class") if isinstance(manifest, dict) else None
    return name if isinstance(name, str) else None


def load_model_folder(
    path: str | Path, *, expected_class: str | None = None
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a model folder, first repairing an interrupted save of it.

    Returns:
        ``(config, tensors, manifest)``.

    Raises:
        ModelFormatError: the folder is missing, foreign, from a newer format,
            a file is missing, truncated or altered, or a tensor holds NaN or Inf.
    """
    folder = Path(path)
    try:
        recover_model_folder(folder)
    except OSError as exc:
        warnings.warn(
            f"{folder}: found leftovers of an interrupted save but could not repair them "
            f"({exc}); loading what is there.",
            RuntimeWarning,
            stacklevel=2,
        )
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
    _verify_files(folder, manifest)
    config = _read_json(folder / CONFIG_FILE)
    weights = folder / WEIGHTS_FILE
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(f"{weights}: unreadable safetensors file ({exc}).") from exc
    bad = _non_finite(tensors)
    if bad:
        raise ModelFormatError(
            f"{weights}: non-finite weights in {_join(bad)}; the model is damaged (saved "
            "from a diverged run, or altered). Retrain it or restore a good copy."
        )
    return config, tensors, manifest


def _verify_files(folder: Path, manifest: dict[str, Any] | None = None) -> None:
    """Every file the manifest lists is there with its size and SHA-256."""
    manifest_path = folder / MANIFEST_FILE
    if manifest is None:
        if not manifest_path.is_file():
            raise ModelFormatError(f"{manifest_path}: missing.")
        manifest = _read_json(manifest_path)
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
