"""Turn a file or folder into a stream of raw rows, whatever its format.

Every reader yields :class:`RawRow` with the position a user can find in an
editor: the physical line for JSONL, JSON and CSV (a CSV row that spans lines
because of quoted newlines is reported at the line where it starts), and the
1-based row number for Parquet and Hugging Face ``datasets`` folders, which
have no lines. Problems that make the whole file unusable (malformed JSON
array, unreadable Parquet, ...) raise :class:`DataError` at once.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewardhedge.config import Option
from rewardhedge.data.jsonl import RawRow, iter_jsonl, json_error_reason, type_name
from rewardhedge.errors import ConfigError, DataError, unknown_option

_WS = re.compile(r"[ \t\n\r]*")
_BATCH = 1024


class DataFormat(Option):
    AUTO = "auto"
    """Pick by path: folder → ``hf``, else by extension."""
    JSONL = "jsonl"
    JSON = "json"
    """A JSON array of objects."""
    CSV = "csv"
    """Comma-separated values with a header row."""
    PARQUET = "parquet"
    HF = "hf"
    """A folder written by ``datasets``' ``save_to_disk`` (Dataset or DatasetDict)."""


_BY_SUFFIX = {
    ".jsonl": DataFormat.JSONL,
    ".ndjson": DataFormat.JSONL,
    ".json": DataFormat.JSON,
    ".csv": DataFormat.CSV,
    ".parquet": DataFormat.PARQUET,
    ".pq": DataFormat.PARQUET,
}


def resolve_format(path: Path, fmt: DataFormat) -> DataFormat:
    """The concrete format of ``path``; checks that it exists and has the right kind."""
    shown = str(path)
    if not path.exists():
        raise DataError("file not found", path=shown)
    if fmt is DataFormat.AUTO:
        if path.is_dir():
            return DataFormat.HF
        found = _BY_SUFFIX.get(path.suffix.lower())
        if found is None:
            concrete = [f.value for f in DataFormat if f is not DataFormat.AUTO]
            raise ConfigError(
                f"Cannot tell the format of {shown!r} from its extension "
                f"{path.suffix or '(none)'!r}; pass format= one of: {', '.join(concrete)}."
            )
        return found
    if fmt is DataFormat.HF and not path.is_dir():
        raise DataError("is a file, but format 'hf' expects a datasets folder", path=shown)
    if fmt is not DataFormat.HF and path.is_dir():
        raise DataError(f"is a folder, but format {fmt.value!r} expects a file", path=shown)
    return fmt


def iter_rows(path: Path, fmt: DataFormat, split: str | None) -> Iterator[RawRow]:
    """Raw rows of ``path`` in file order (``fmt`` already resolved)."""
    if split is not None and fmt is not DataFormat.HF:
        raise ConfigError(
            f"split == {split!r}, but only Hugging Face DatasetDict folders have splits; "
            f"{str(path)!r} is read as {fmt.value!r}. Leave split unset."
        )
    if fmt is DataFormat.JSONL:
        return iter_jsonl(path)
    if fmt is DataFormat.JSON:
        return _iter_json_array(path)
    if fmt is DataFormat.CSV:
        return _iter_csv(path)
    if fmt is DataFormat.PARQUET:
        return _iter_parquet(path)
    return _iter_hf(path, split)


def _malformed(text: str, path: Path) -> DataError:
    """The error for a JSON file that cannot be walked; json.loads finds the first fault."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return DataError(json_error_reason(e), path=str(path), line=e.lineno)
    return DataError(
        f"expected a JSON array of objects, got {type_name(value)}", path=str(path), line=1
    )


def _iter_json_array(path: Path) -> Iterator[RawRow]:
    """Walk a JSON array element by element to learn the line each one starts on."""
    text = path.read_bytes().decode("utf-8-sig", "surrogateescape")
    decoder = json.JSONDecoder()
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if pos >= len(text) or text[pos] != "[":
        raise _malformed(text, path)
    pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
    line, counted = 1, 0
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            start = pos
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                raise _malformed(text, path) from None
            line += text.count("\n", counted, start)
            counted = start
            if isinstance(obj, dict):
                yield RawRow(line, obj, obj)
            else:
                yield RawRow(line, None, obj, f"expected a JSON object, got {type_name(obj)}")
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            if text.startswith(",", pos):
                pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
                continue
            if text.startswith("]", pos):
                pos += 1
                break
            raise _malformed(text, path)
    if _WS.match(text, pos).end() != len(text):  # type: ignore[union-attr]
        raise _malformed(text, path)


def _iter_csv(path: Path) -> Iterator[RawRow]:
    """CSV with a header; rows are reported at the physical line where they start.

    The csv field size limit is raised (process-wide) so long dialogues fit.
    """
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    shown = str(path)
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                return
            _check_looks_like_csv(header, shown)
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes:
                reason = f"duplicate column name {dupes[0]!r} in the header"
                raise DataError(reason, path=shown, line=1)
            while True:
                start = reader.line_num + 1
                cells = next(reader, None)
                if cells is None:
                    return
                if not cells:  # blank line
                    continue
                if len(cells) != len(header):
                    reason = f"row has {len(cells)} cells, the header has {len(header)}"
                    yield RawRow(start, None, cells, reason)
                    continue
                row = dict(zip(header, cells, strict=True))
                yield RawRow(start, row, row)
        except csv.Error as e:
            raise DataError(f"malformed CSV: {e}", path=shown, line=reader.line_num) from None


def _check_looks_like_csv(header: list[str], shown: str) -> None:
    """A header that starts like JSON (``{`` or ``[``) means a JSON file read as CSV."""
    first = header[0].lstrip() if header else ""
    if first[:1] in ("{", "["):
        kind, fmt = ("JSON lines", "jsonl") if first[:1] == "{" else ("a JSON array", "json")
        raise DataError(
            f"does not look like CSV: its first line starts with {first[:1]!r}, like "
            f"{kind}; use format='{fmt}'",
            path=shown,
            line=1,
        )


def _iter_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    try:
        pfile = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise DataError(f"not a readable Parquet file: {e}", path=str(path)) from None
    n = 0
    for batch in pfile.iter_batches(batch_size=_BATCH):
        for row in batch.to_pylist():
            n += 1
            yield RawRow(n, row, row)


def _iter_hf(path: Path, split: str | None) -> Iterator[RawRow]:
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dev dependency
        raise ConfigError(
            "Reading a Hugging Face datasets folder needs the 'datasets' package: "
            "pip install 'rewardhedge[datasets]'."
        ) from None
    try:
        ds: Any = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises FileNotFoundError and others
        raise DataError(f"not a Hugging Face datasets folder: {e}", path=str(path)) from None
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds.keys())
        if split is None:
            if "train" in ds:
                split = "train"
            elif len(names) == 1:
                split = names[0]
            else:
                raise ConfigError(
                    f"{str(path)!r} holds splits {', '.join(names)} and none is 'train'; "
                    "pass split= one of them."
                )
        if split not in ds:
            raise unknown_option("split", split, names)
        ds = ds[split]
    elif split is not None:
        raise ConfigError(
            f"split == {split!r}, but {str(path)!r} holds a single Dataset without splits. "
            "Leave split unset."
        )
    n = 0
    for batch in ds.iter(batch_size=_BATCH):
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys), strict=True):
            n += 1
            row = dict(zip(keys, values, strict=True))
            yield RawRow(n, row, row)
