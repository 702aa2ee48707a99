"""Exceptions raised by rewardhedge.

Every user-facing error says what was wrong, where, and how to fix it. The
HTTP layer returns the same text in JSON.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RewardHedgeError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigError(RewardHedgeError, ValueError):
    """A configuration value or option is invalid.

    Example message: ``"ensemble.n_members == 0, must be >= 1."``
    """


class DataError(RewardHedgeError, ValueError):
    """A data row is invalid. Carries the file, 1-based line (or row) and field.

    The message reads ``"prefs/train.jsonl:17: field 'chosen' is empty (keys
    present: prompt, chosen, rejected)"``; ``reason`` holds the part after the
    location so rejects files can store it on its own.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.field = field
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{reason}")


class NotFittedError(RewardHedgeError, ValueError, AttributeError):
    """A model was used before ``fit``."""

    @classmethod
    def for_method(cls, obj: object, method: str) -> NotFittedError:
        name = type(obj).__name__
        return cls(f"This {name} instance is not fitted yet. Call 'fit' before '{method}'.")


class ModelFormatError(RewardHedgeError, ValueError):
    """A model folder is missing, corrupt, truncated or not a rewardhedge model."""


def unknown_option(name: str, value: object, valid: Iterable[str]) -> ConfigError:
    """Build the error for an option value outside its allowed set, with a hint."""
    valid = list(valid)
    msg = f"{name} == {value!r}, must be one of: {', '.join(valid)}."
    close = difflib.get_close_matches(str(value), valid, n=1)
    if close:
        msg += f" Did you mean {close[0]!r}?"
    return ConfigError(msg)
