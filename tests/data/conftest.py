"""Fixtures for the data-layer tests: three reference pairs and file writers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROWS: list[dict[str, Any]] = [
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5", "margin": 1.5, "subset": "math"},
    {"prompt": "", "chosen": "Hello, friend.", "rejected": "Go away.", "id": "row-2"},
    {"prompt": "Café ☕?", "chosen": "Oui, «bien sûr».", "rejected": "Non", "source": "manual"},
]


def exact(message: str) -> str:
    """A regex that matches exactly ``message`` (for ``pytest.raises(match=...)``)."""
    return "^" + re.escape(message) + "$"


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    return [dict(r) for r in ROWS]


@pytest.fixture
def jsonl_file(tmp_path: Path):
    """Write rows (dicts, or raw strings written verbatim) as a JSONL file."""

    def make(rows: list[Any], name: str = "pairs.jsonl") -> Path:
        path = tmp_path / name
        lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return path

    return make


@pytest.fixture
def exact_re():
    return exact
