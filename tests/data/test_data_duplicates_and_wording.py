"""Duplicate pairs are counted (and kept); messages read well: no "at at", a JSON file read
as CSV is told so."""

from __future__ import annotations

import json

import pytest

from rewardhedge.data import load_items, load_pairs
from rewardhedge.errors import DataError

GOOD = {"prompt": "p", "chosen": "c", "rejected": "r"}


def test_duplicates_are_counted_and_kept(jsonl_file):
    spaced = {"prompt": " p\n", "chosen": "c  ", "rejected": "\tr"}
    other = {"prompt": "p", "chosen": "r", "rejected": "c"}  # the reverse is not a duplicate
    path = jsonl_file([GOOD, GOOD, spaced, other, {**GOOD, "chosen": "c c"}, GOOD])
    pairs, report = load_pairs(path)
    assert len(pairs) == report.n_kept == 6
    assert report.n_duplicates == 3


def test_whitespace_inside_texts_is_collapsed_for_the_count(jsonl_file):
    a = {"prompt": "what is  up", "chosen": "fine,\nthanks", "rejected": "no"}
    b = {"prompt": "what is up", "chosen": "fine, thanks", "rejected": "no "}
    _, report = load_pairs(jsonl_file([a, b]))
    assert report.n_duplicates == 1


def test_no_duplicates_and_rejected_rows_are_not_counted(jsonl_file, tmp_path):
    path = jsonl_file([GOOD, {**GOOD, "chosen": ""}, {**GOOD, "chosen": ""}])
    _, report = load_pairs(path, skip_invalid=True)
    assert (report.n_kept, report.n_rejected, report.n_duplicates) == (1, 2, 0)


def test_items_have_no_duplicate_count(jsonl_file):
    row = {"prompt": "p", "response": "r"}
    _, report = load_items(jsonl_file([row, row], name="items.jsonl"))
    assert report.n_duplicates == 0


@pytest.mark.parametrize("name", ["bad.jsonl", "bad.json"])
def test_unterminated_string_says_starting_at_column_once(tmp_path, name):
    text = '{"prompt": "p", "chosen": "c", "rejected": "r}'
    path = tmp_path / name
    path.write_text(text + "\n" if name.endswith("l") else f"[{text}]")
    with pytest.raises(DataError) as info:
        load_pairs(path)
    assert "Unterminated string starting at column" in info.value.reason
    assert "at at" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("".join(json.dumps(GOOD) + "\n" for _ in range(2)), "like JSON lines; use format='jsonl'"),
        (json.dumps([GOOD, GOOD]), "like a JSON array; use format='json'"),
    ],
)
def test_json_read_as_csv_says_it_does_not_look_like_csv(tmp_path, text, hint):
    path = tmp_path / "pairs.jsonl"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        load_pairs(path, format="csv")
    err = info.value
    assert (err.path, err.line) == (str(path), 1)
    assert err.reason.startswith("does not look like CSV: its first line starts with ")
    assert err.reason.endswith(hint) and "keys present" not in err.reason


def test_unknown_extension_keeps_the_library_wording(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text(json.dumps(GOOD) + "\n")
    with pytest.raises(Exception, match="pass format= one of"):
        load_pairs(path)
