"""load_items: the same formats and rules, for (prompt, response) items."""

from __future__ import annotations

import pytest

from rewardhedge.data import load_items
from rewardhedge.errors import ConfigError, DataError
from rewardhedge.types import ScoreItem


def test_items_jsonl(jsonl_file):
    path = jsonl_file([{"prompt": "p", "response": "a"}, {"prompt": "", "response": "b", "id": 4}])
    items, report = load_items(path)
    assert items == [ScoreItem("p", "a", "pairs.jsonl:1"), ScoreItem("", "b", "4")]
    assert (report.n_read, report.n_kept) == (2, 2)


def test_items_csv_with_mapping(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text('q,text\n"multi\nline",x\nq2,y\n', encoding="utf-8")
    items, _ = load_items(path, fields={"prompt": "q", "response": "text"})
    assert items == [
        ScoreItem("multi\nline", "x", "items.csv:2"),
        ScoreItem("q2", "y", "items.csv:4"),
    ]


def test_items_bad_rows(jsonl_file, exact_re, tmp_path):
    path = jsonl_file([{"prompt": "p", "response": "a"}, {"prompt": "p", "response": "  "}])
    with pytest.raises(
        DataError,
        match=exact_re(f"{path}:2: field 'response' is empty (keys present: prompt, response)"),
    ) as info:
        load_items(path)
    assert (info.value.line, info.value.field) == (2, "response")
    rejects = tmp_path / "rej.jsonl"
    items, report = load_items(path, skip_invalid=True, rejects_path=rejects)
    assert len(items) == 1 and report.n_rejected == 1
    assert rejects.read_text(encoding="utf-8").count("\n") == 1
    path = jsonl_file([{"prompt": "p"}], name="missing.jsonl")
    with pytest.raises(
        DataError, match=exact_re(f"{path}:1: field 'response' is missing (keys present: prompt)")
    ):
        load_items(path)


def test_items_reject_pair_field_names(jsonl_file):
    with pytest.raises(ConfigError, match="must be one of: prompt, response, id"):
        load_items(jsonl_file([{"prompt": "p", "response": "a"}]), fields={"chosen": "x"})
