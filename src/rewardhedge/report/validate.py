"""What the report accepts: telling the two result kinds apart, and checking them.

Two kinds of result dicts can be shown:

- ``"lab"``: the overoptimisation lab's JSON (``"kind": "rewardhedge.overopt"``,
  version 1 or 2, see ``docs/lab-json.md``);
- ``"eval"``: the evaluation JSON that ``rewardhedge eval --json`` writes
  (``"kind": "rewardhedge.eval"``, version 1, task ``"pairs"``,
  ``"one_to_many"`` or ``"pools"``, see ``docs/eval-json.md``), or an older
  dict of :func:`rewardhedge.evaluate.evaluate_pairwise` without ``"kind"``
  (recognised by ``pairwise_accuracy`` and ``n_pairs``).

JSON has no NaN, so every number may also be ``null``; the helpers here turn
``None`` into NaN for plots, and the tables print it as a dash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from rewardhedge.errors import RewardHedgeError

__all__ = [
    "EVAL_KIND",
    "EVAL_VERSION",
    "LAB_KIND",
    "LAB_VERSION",
    "LAB_VERSIONS",
    "VERDICTS",
    "ReportError",
    "as_array",
    "check_lab",
    "detect_kind",
    "number",
]

LAB_KIND = "rewardhedge.overopt"
LAB_VERSION = 2
LAB_VERSIONS = (1, 2)
"""Version 2 adds an ensemble per diversity option, ``paired`` and ``diversity``;
version 1 files (one ``"ensemble"`` model) still render as before."""
VERDICTS = ("helps", "hurts", "no difference")
"""The values of a lab v2 ``paired`` row's ``verdict``."""
_PAIRED_NUMBERS = ("gold", "single_gold", "diff", "ci_low", "ci_high", "p_value", "level")
_DIVERSITY_NUMBERS = (
    "n_members",
    "starc_pairwise_mean",
    "disagreement_in",
    "disagreement_shift",
    "shift_ratio",
)
EVAL_KIND = "rewardhedge.eval"
EVAL_VERSION = 1

ResultKind = Literal["lab", "eval"]

_EXPECTED = (
    "expected the overoptimisation lab's JSON (key 'kind' == 'rewardhedge.overopt', written by "
    "`rewardhedge overopt` / `rewardhedge demo`) or the evaluation JSON of "
    "`rewardhedge eval --json` (key 'kind' == 'rewardhedge.eval', or, from older versions, "
    "keys 'pairwise_accuracy' and 'n_pairs')"
)


class ReportError(RewardHedgeError, ValueError):
    """A result cannot be shown: unknown kind, unsupported version, or a malformed field.

    Example message: ``"results[0].curves[2].gold.iqm has 3 values, but 'ns' has 4; every
    array along n must have one value per n."``
    """


def _keys(d: Mapping[str, Any]) -> str:
    keys = sorted(str(k) for k in d)
    shown = ", ".join(keys[:12]) + (f", … ({len(keys) - 12} more)" if len(keys) > 12 else "")
    return shown or "none"


def detect_kind(result: Any, where: str = "result") -> ResultKind:
    """Which kind of result ``result`` is: ``"lab"`` or ``"eval"``.

    Args:
        result: a dict read from JSON.
        where: how to name it in an error message, e.g. ``"results[1]"``.

    Returns:
        ``"lab"`` for the overoptimisation lab's JSON, ``"eval"`` for the
        ``evaluate_pairwise`` dict.

    Raises:
        ReportError: if ``result`` is not a dict of either kind, or is a lab
            or eval JSON of another version.

    Example:
        >>> detect_kind({"n_pairs": 3, "pairwise_accuracy": 0.5})
        'eval'
        >>> detect_kind({"kind": "rewardhedge.eval", "version": 1, "task": "pools"})
        'eval'
    """
    if not isinstance(result, Mapping):
        raise ReportError(f"{where} is a {type(result).__name__}, not a dict; {_EXPECTED}.")
    kind = result.get("kind")
    if kind == LAB_KIND:
        version = result.get("version", LAB_VERSION)
        if version not in LAB_VERSIONS or isinstance(version, bool):
            readable = " and ".join(str(v) for v in LAB_VERSIONS)
            raise ReportError(
                f"{where} is overoptimisation-lab JSON of version {version!r}, but this "
                f"rewardhedge reads versions {readable}; re-run `rewardhedge overopt` or "
                "upgrade rewardhedge."
            )
        return "lab"
    if kind == EVAL_KIND:
        version = result.get("version", EVAL_VERSION)
        if version != EVAL_VERSION:
            raise ReportError(
                f"{where} is evaluation JSON of version {version!r}, but this rewardhedge "
                f"reads version {EVAL_VERSION}; re-run `rewardhedge eval --json` or upgrade "
                "rewardhedge."
            )
        return "eval"
    if "pairwise_accuracy" in result and "n_pairs" in result:
        return "eval"
    got = f"'kind' == {kind!r}" if kind is not None else "no 'kind' key"
    raise ReportError(
        f"{where} is not a result the report can show: {_EXPECTED}; got a dict with {got} "
        f"and keys: {_keys(result)}."
    )


def as_array(values: Any, where: str, length: int | None = None) -> np.ndarray:
    """A list of numbers (``None`` allowed) as a float array, ``None`` -> NaN.

    Raises:
        ReportError: if ``values`` is not a list of numbers, or its length is not ``length``.
    """
    if not isinstance(values, list | tuple):
        raise ReportError(f"{where} is {type(values).__name__}, must be a list of numbers.")
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ReportError(f"{where}[{i}] == {v!r}, must be a number or null.")
        out[i] = float(v)
    if length is not None and out.shape[0] != length:
        raise ReportError(
            f"{where} has {out.shape[0]} values, but 'ns' has {length}; every array along n "
            "must have one value per n."
        )
    return out


def number(value: Any) -> float:
    """A JSON number as float; ``None``, non-numbers and infinities -> NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


def check_lab(lab: Mapping[str, Any], where: str = "result") -> None:
    """Check the parts of a lab JSON the plots rely on: ``ns``, ``kl`` and every curve's arrays.

    Optional sections (``accuracy``, ``reliability``, ``examples``, ``timing``,
    ``config``, and version 2's ``paired`` and ``diversity``) are shown when
    present and skipped when absent; ``paired`` and ``diversity`` are checked
    lightly (lists of dicts with a ``model`` and numbers or nulls), since their
    tables read them.

    Raises:
        ReportError: naming the first missing or malformed field.

    Example:
        >>> check_lab({"ns": [1, 2], "kl": [0.0, 0.19], "curves": []})
    """
    for key in ("ns", "kl", "curves"):
        if key not in lab:
            raise ReportError(
                f"{where} has no key {key!r}; overoptimisation-lab JSON needs 'ns', 'kl' and "
                f"'curves' (keys present: {_keys(lab)})."
            )
    ns = as_array(lab["ns"], f"{where}.ns")
    if ns.shape[0] == 0 or np.isnan(ns).any():
        raise ReportError(f"{where}.ns must be a non-empty list of numbers, got {lab['ns']!r}.")
    n = ns.shape[0]
    as_array(lab["kl"], f"{where}.kl", n)
    if not isinstance(lab["curves"], list):
        raise ReportError(f"{where}.curves is {type(lab['curves']).__name__}, must be a list.")
    for i, curve in enumerate(lab["curves"]):
        at = f"{where}.curves[{i}]"
        if not isinstance(curve, Mapping):
            raise ReportError(f"{at} is {type(curve).__name__}, must be a dict.")
        for part in ("gold", "proxy"):
            block = curve.get(part)
            if not isinstance(block, Mapping):
                raise ReportError(
                    f"{at} has no dict {part!r}; each curve needs 'gold' and 'proxy' with "
                    f"'iqm', 'ci_low' and 'ci_high' (keys present: {_keys(curve)})."
                )
            for stat in ("iqm", "ci_low", "ci_high"):
                if stat not in block:
                    raise ReportError(f"{at}.{part} has no key {stat!r}.")
                as_array(block[stat], f"{at}.{part}.{stat}", n)
        if curve.get("rank_corr") is not None:
            as_array(curve["rank_corr"], f"{at}.rank_corr", n)
        fit = curve.get("fit")
        if fit is not None and not isinstance(fit, Mapping):
            raise ReportError(f"{at}.fit is {type(fit).__name__}, must be a dict or null.")
    _check_rows(lab, "paired", where, _PAIRED_NUMBERS)
    _check_rows(lab, "diversity", where, _DIVERSITY_NUMBERS)
    for i, row in enumerate(lab.get("paired") or []):
        verdict = row.get("verdict")
        if verdict is not None and verdict not in VERDICTS:
            raise ReportError(
                f"{where}.paired[{i}].verdict == {verdict!r}, must be one of "
                + ", ".join(repr(v) for v in VERDICTS)
                + " or null."
            )


def _check_rows(lab: Mapping[str, Any], key: str, where: str, numbers: tuple[str, ...]) -> None:
    """``lab[key]``, if present, is a list of dicts, each naming its ``model``, whose
    ``numbers`` are numbers or null: what the tables print."""
    rows = lab.get(key)
    if rows is None:
        return
    if not isinstance(rows, list):
        raise ReportError(f"{where}.{key} is {type(rows).__name__}, must be a list.")
    for i, row in enumerate(rows):
        at = f"{where}.{key}[{i}]"
        if not isinstance(row, Mapping):
            raise ReportError(f"{at} is {type(row).__name__}, must be a dict.")
        if not isinstance(row.get("model"), str):
            raise ReportError(
                f"{at} has no string 'model' (the diversity option it is about; keys present: "
                f"{_keys(row)})."
            )
        for name in numbers:
            v = row.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise ReportError(f"{at}.{name} == {v!r}, must be a number or null.")
