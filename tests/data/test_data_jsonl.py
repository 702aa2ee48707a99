"""Atomic JSONL writes, strict JSONL reads, field-map parsing and a round-trip property."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardhedge.data import (
    load_pairs,
    parse_field_map,
    read_jsonl_rows,
    write_jsonl_atomic,
)
from rewardhedge.errors import ConfigError, DataError


def test_write_jsonl_atomic(tmp_path: Path):
    path = tmp_path / "sub" / "out.jsonl"
    n = write_jsonl_atomic(path, ({"i": i, "t": "é☕"} for i in range(3)))
    assert n == 3
    assert path.read_text(encoding="utf-8").splitlines()[0] == '{"i": 0, "t": "é☕"}'
    assert list(read_jsonl_rows(path)) == [{"i": i, "t": "é☕"} for i in range(3)]
    assert [p.name for p in path.parent.iterdir()] == ["out.jsonl"]


def test_write_jsonl_atomic_keeps_old_file_when_rows_raise(tmp_path: Path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")

    def rows():
        yield {"a": 1}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_jsonl_atomic(path, rows())
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    with pytest.raises(ValueError):
        write_jsonl_atomic(path, [{"x": float("nan")}])
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_read_jsonl_rows_errors(tmp_path: Path, exact_re):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1}\n\n[1]\n')
    it = read_jsonl_rows(path)
    assert next(it) == {"a": 1}
    with pytest.raises(DataError, match=exact_re(f"{path}:3: expected a JSON object, got list")):
        next(it)
    path.write_bytes(b'{"a": "\xff"}\n')
    with pytest.raises(DataError, match=exact_re(f"{path}:1: line is not valid UTF-8")):
        list(read_jsonl_rows(path))
    with pytest.raises(DataError, match="file not found"):
        list(read_jsonl_rows(tmp_path / "missing.jsonl"))


def test_parse_field_map():
    assert parse_field_map(["prompt=question", " chosen = good "]) == {
        "prompt": "question",
        "chosen": "good",
    }
    assert parse_field_map([]) == {}
    for bad in ["prompt", "=x", "prompt=", ""]:
        with pytest.raises(ConfigError, match="must look like 'ours=column'"):
            parse_field_map([bad])
    with pytest.raises(ConfigError, match="names 'prompt' twice"):
        parse_field_map(["prompt=a", "prompt=b"])


non_blank = st.text().filter(lambda s: s.strip() != "")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(prompt=st.text(), chosen=non_blank, rejected=non_blank)
def test_round_trip_property(tmp_path: Path, prompt: str, chosen: str, rejected: str):
    if chosen == rejected:
        rejected += "!"
    path = tmp_path / "round-trip.jsonl"  # overwritten atomically by each example
    write_jsonl_atomic(path, [{"prompt": prompt, "chosen": chosen, "rejected": rejected}])
    for dialogue in ("none", "auto"):
        (pair,), report = load_pairs(path, dialogue=dialogue)
        assert (pair.prompt, pair.chosen, pair.rejected) == (prompt, chosen, rejected)
        assert report.n_kept == 1
    assert json.loads(path.read_text(encoding="utf-8"))["chosen"] == chosen
