"""Field mapping and per-field checks for one row.

Our names (``prompt``, ``chosen``, ...) are mapped to the file's column names
once; the checks then read a row through that map and raise a
:class:`DataError` carrying our field name, with a message that names the
file's column (so users can find it) and lists the keys the row does have.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

from rewardhedge.data.jsonl import is_valid_utf8, type_name
from rewardhedge.errors import ConfigError, DataError, unknown_option

PAIR_FIELDS = (
    "prompt",
    "chosen",
    "rejected",
    "margin",
    "chosen_score",
    "rejected_score",
    "soft_label",
    "subset",
    "source",
    "id",
)
NUMBER_FIELDS = ("margin", "chosen_score", "rejected_score", "soft_label")
ITEM_FIELDS = ("prompt", "response", "id")
RATED_ITEM_FIELDS = ("prompt", "response", "score", "id")
POOL_FIELDS = ("prompt", "candidates", "gold", "subset", "id", "split")
ONE_TO_MANY_FIELDS = ("prompt", "chosen", "rejected", "subset", "source", "id")
STEP_FIELDS = ("prompt", "steps", "labels", "label", "id")


def parse_field_map(specs: Sequence[str]) -> dict[str, str]:
    """Parse ``"ours=column"`` strings (as given on a command line) into a field map.

    Args:
        specs: e.g. ``["prompt=question", "chosen=response_a"]``.

    Returns:
        ``{"prompt": "question", "chosen": "response_a"}``. Names are not
        checked here; the loaders check them against their own field list.

    Raises:
        ConfigError: An entry without ``=``, with an empty side, or naming the
            same field twice.
    """
    out: dict[str, str] = {}
    for spec in specs:
        ours, sep, column = str(spec).partition("=")
        ours, column = ours.strip(), column.strip()
        if not sep or not ours or not column:
            raise ConfigError(
                f"Field map entry {spec!r} must look like 'ours=column', e.g. 'prompt=question'."
            )
        if ours in out:
            raise ConfigError(
                f"Field map names {ours!r} twice ({ours}={out[ours]} and {ours}={column}); "
                "give each field once."
            )
        out[ours] = column
    return out


def resolve_fields(fields: Mapping[str, str] | None, valid: Sequence[str]) -> dict[str, str]:
    """The full map our-name → column, defaulting each column to our name."""
    cols = {name: name for name in valid}
    for ours, column in (fields or {}).items():
        if ours not in cols:
            raise unknown_option("fields key", ours, valid)
        if not isinstance(column, str) or not column:
            raise ConfigError(f"fields[{ours!r}] == {column!r}, must be a non-empty column name.")
        cols[ours] = column
    return cols


class RowCheck:
    """Reads one row through the field map and checks each value."""

    def __init__(self, row: Mapping[str, Any], cols: Mapping[str, str], from_text: bool) -> None:
        self.row = row
        self.cols = cols
        self.from_text = from_text
        """True for CSV: every cell is a string, an empty cell means 'no value'."""

    def label(self, name: str) -> str:
        column = self.cols[name]
        return f"'{name}'" if column == name else f"'{column}' (mapped to '{name}')"

    def keys(self) -> str:
        """The row's keys for an error message: plain names as they are, any other key
        quoted and escaped (a newline or a lone surrogate must not break the one line)."""
        return ", ".join(k if k.isidentifier() else ascii(k) for k in map(str, self.row))

    def fail(self, name: str, what: str, *, keys: bool = False) -> DataError:
        reason = f"field {self.label(name)} {what}"
        if keys:
            reason += f" (keys present: {self.keys()})"
        return DataError(reason, field=name)

    def has(self, name: str) -> bool:
        """The row has a non-null value for ``name``."""
        return self.row.get(self.cols[name]) is not None

    def text(self, name: str, *, allow_empty: bool = False) -> str:
        """A required string field: present, a string, valid UTF-8, non-blank unless allowed."""
        if self.cols[name] not in self.row:
            raise self.fail(name, "is missing", keys=True)
        value = self.row[self.cols[name]]
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {type_name(value)}")
        if not is_valid_utf8(value):
            raise self.fail(name, "is not valid UTF-8")
        if not allow_empty and not value.strip():
            raise self.fail(name, "is empty", keys=True)
        return value

    def _optional(self, name: str) -> Any:
        value = self.row.get(self.cols[name])
        if value == "" and (self.from_text or name not in NUMBER_FIELDS):
            return None
        return value

    def optional_text(self, name: str) -> str | None:
        """An optional string field; empty or absent → ``None``."""
        value = self._optional(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {type_name(value)}")
        if not is_valid_utf8(value):
            raise self.fail(name, "is not valid UTF-8")
        return value

    def optional_id(self) -> str | None:
        """``id`` may be a string or an integer (converted to a string)."""
        value = self._optional("id")
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if value is not None and not isinstance(value, str):
            raise self.fail("id", f"must be a string or an integer, got {type_name(value)}")
        return self.optional_text("id")

    def optional_margin(self) -> float | None:
        """A finite number; CSV cells holding a number are converted."""
        return self.optional_number("margin")

    def optional_number(self, name: str) -> float | None:
        """An optional finite number (``margin``, ``chosen_score``, ...); CSV cells
        holding a number are converted."""
        value = self._optional(name)
        if value is None:
            return None
        if self.from_text and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self.fail(name, f"must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, Real):
            raise self.fail(name, f"must be a number, got {type_name(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(name, f"must be a finite number, got {number}")
        return number

    def optional_probability(self, name: str) -> float | None:
        """An optional number in [0, 1] (``soft_label``)."""
        number = self.optional_number(name)
        if number is not None and not 0.0 <= number <= 1.0:
            raise self.fail(name, f"must be a probability in [0, 1], got {number}")
        return number

    def list_value(self, name: str, value: Any) -> list[Any]:
        """A list value; CSV cells may hold the list as JSON text."""
        if self.from_text and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise self.fail(name, "must be a JSON list in this CSV cell") from None
        if hasattr(value, "tolist") and not isinstance(value, str):
            value = value.tolist()  # Parquet / Arrow arrays
        if not isinstance(value, list | tuple):
            raise self.fail(name, f"must be a list, got {type_name(value)}")
        return list(value)

    def text_list(self, name: str, *, min_len: int = 1) -> tuple[str, ...]:
        """A required list of non-blank, valid UTF-8 strings, at least ``min_len`` long."""
        if self.cols[name] not in self.row:
            raise self.fail(name, "is missing", keys=True)
        values = self.list_value(name, self.row[self.cols[name]])
        if len(values) < min_len:
            raise self.fail(name, f"must hold at least {min_len} entries, got {len(values)}")
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise self.fail(name, f"entry {i} must be a string, got {type_name(value)}")
            if not is_valid_utf8(value):
                raise self.fail(name, f"entry {i} is not valid UTF-8")
            if not value.strip():
                raise self.fail(name, f"entry {i} is empty")
        return tuple(values)

    def optional_number_list(
        self, name: str, length: int, allow_null: bool = False
    ) -> tuple[float, ...] | None:
        """An optional list of ``length`` finite numbers (e.g. gold scores per candidate);
        with ``allow_null``, null entries are allowed and read as NaN (unknown)."""
        value = self._optional(name)
        if value is None:
            return None
        values = self.list_value(name, value)
        if len(values) != length:
            raise self.fail(name, f"has {len(values)} entries for {length} candidates")
        out = []
        for i, v in enumerate(values):
            if v is None and allow_null:
                out.append(math.nan)
                continue
            if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)):
                raise self.fail(
                    name,
                    f"entry {i} must be a finite number{' or null' if allow_null else ''}, "
                    f"got {v!r}",
                )
            out.append(float(v))
        return tuple(out)
