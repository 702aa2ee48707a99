"""JSON lines in and out: atomic writes, line-numbered reads.

Writes go to a temporary file in the target folder, are fsynced and then
renamed over the target, so a crash or an exception mid-way never leaves a
half-written file (and never clobbers the previous one).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardhedge.errors import DataError

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RawRow:
    """One data row as read from a file, before any validation.

    ``line`` is the 1-based physical line (text formats) or row number
    (Parquet, HF folders). ``row`` is ``None`` when the row could not be
    parsed; then ``reason`` says why and ``raw`` holds the text.
    """

    line: int
    row: dict[str, Any] | None
    raw: Any
    reason: str | None = None


def iter_jsonl(path: str | Path) -> Iterator[RawRow]:
    """Stream a JSONL file line by line; blank lines are skipped.

    Bytes are decoded with ``errors="surrogateescape"`` so that invalid UTF-8
    survives as lone surrogates (the validators report it per field) and a
    line that cannot be parsed at all is still reported on its own line.
    """
    with open(path, "rb") as fh:
        for lineno, data in enumerate(fh, start=1):
            if lineno == 1 and data.startswith(_BOM):
                data = data[len(_BOM) :]
            if not data.strip():
                continue
            text = data.decode("utf-8", "surrogateescape").rstrip("\r\n")
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                reason = json_error_reason(e)
                if not _valid_utf8_bytes(data):
                    reason += " (the line is not valid UTF-8)"
                yield RawRow(lineno, None, text, reason)
                continue
            if not isinstance(obj, dict):
                yield RawRow(lineno, None, obj, f"expected a JSON object, got {type_name(obj)}")
                continue
            yield RawRow(lineno, obj, obj)


def read_jsonl_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSONL file, one per non-blank line.

    Args:
        path: The ``.jsonl`` file.

    Yields:
        Each line's object, in file order.

    Raises:
        DataError: On the first line that is not valid UTF-8, not valid JSON
            or not an object, with its 1-based line number.
    """
    shown = str(path)
    if not Path(path).is_file():
        raise DataError("file not found", path=shown)
    for raw in iter_jsonl(path):
        if raw.row is None:
            raise DataError(str(raw.reason), path=shown, line=raw.line)
        if has_surrogates(raw.row):
            raise DataError("line is not valid UTF-8", path=shown, line=raw.line)
        yield raw.row


@contextlib.contextmanager
def atomic_text_writer(path: str | Path) -> Iterator[Any]:
    """A text handle whose content replaces ``path`` only if the block succeeds.

    The text goes to a temporary file in the same folder (created if needed),
    which is flushed, fsynced and then ``os.replace``-d over ``path``. If the
    block raises, the temporary file is removed and an existing ``path`` is
    left untouched. The file gets the mode of the file it replaces, or the
    usual ``0o666 & ~umask`` for a new one (``mkstemp`` alone would make it
    private).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _target_mode(target))
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def _target_mode(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def write_jsonl_atomic(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows as JSON lines, atomically (see :func:`atomic_text_writer`).

    Args:
        path: Target file.
        rows: Mappings to write, one per line (UTF-8, ``ensure_ascii=False``,
            strict JSON: NaN and infinity are refused; a row with lone surrogates
            is written with ``\\uXXXX`` escapes). If ``rows`` raises, or a
            row cannot be encoded, an existing ``path`` is left untouched.

    Returns:
        The number of rows written.
    """
    n = 0
    with atomic_text_writer(path) as fh:
        for row in rows:
            fh.write(_json_line(dict(row)))
            fh.write("\n")
            n += 1
    return n


def _json_line(row: dict[str, Any]) -> str:
    """One JSON line, UTF-8 where it can be; a row holding lone surrogates (a rejected
    row's bad bytes, or an error message quoting them) is written with ``\\uXXXX``
    escapes instead, so writing it cannot fail and loses nothing."""
    line = json.dumps(row, ensure_ascii=False, allow_nan=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(row, ensure_ascii=True, allow_nan=False)
    return line


def write_json_atomic(path: str | Path, data: Mapping[str, Any]) -> None:
    """Write one JSON object (indented, strict JSON), atomically."""
    with atomic_text_writer(path) as fh:
        fh.write(json.dumps(dict(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def fsync_dir(folder: Path) -> None:
    """Make renames and new entries in ``folder`` durable where the OS allows (POSIX);
    a file system that cannot sync a folder is fine, any other I/O error is raised."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise  # pragma: no cover - an I/O error; unsupported is fine
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (changing it,
    even briefly, races with other threads creating files)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _valid_utf8_bytes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def json_error_reason(e: json.JSONDecodeError) -> str:
    """``malformed JSON: <what> at column N``; json's messages that already end in "at"
    ("Unterminated string starting at") are not given a second one."""
    where = "column" if e.msg.endswith(" at") else "at column"
    return f"malformed JSON: {e.msg} {where} {e.colno}"


def type_name(value: object) -> str:
    """The name used for a value's type in messages (``null`` for ``None``)."""
    return "null" if value is None else type(value).__name__


def is_valid_utf8(text: str) -> bool:
    """False when ``text`` holds lone surrogates (bytes that were not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def has_surrogates(value: Any) -> bool:
    """True when any string inside ``value`` (nested dicts/lists too) is not valid UTF-8."""
    if isinstance(value, str):
        return not is_valid_utf8(value)
    if isinstance(value, dict):
        return any(has_surrogates(k) or has_surrogates(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_surrogates(v) for v in value)
    return False
