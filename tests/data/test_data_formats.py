"""Every format loads the same pairs; format choice, field mapping and HF splits."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rewardhedge.data import load_pairs
from rewardhedge.errors import ConfigError, DataError
from rewardhedge.types import PreferencePair


def expected(name: str, lines: list[int]) -> list[PreferencePair]:
    return [
        PreferencePair("What is 2+2?", "4", "5", 1.5, "math", name, f"{name}:{lines[0]}"),
        PreferencePair("", "Hello, friend.", "Go away.", None, None, name, "row-2"),
        PreferencePair(
            "Café ☕?", "Oui, «bien sûr».", "Non", None, None, "manual", f"{name}:{lines[2]}"
        ),
    ]


COLS = ["prompt", "chosen", "rejected", "margin", "subset", "source", "id"]


def columnar(rows: list[dict]) -> list[dict]:
    """Rows with every column (None where absent): columnar writers take keys from row 1."""
    return [{c: r.get(c) for c in COLS} for r in rows]


def test_jsonl(jsonl_file, rows):
    path = jsonl_file(rows)
    pairs, report = load_pairs(path)
    assert pairs == expected("pairs.jsonl", [1, 2, 3])
    assert (report.n_read, report.n_kept, report.n_rejected) == (3, 3, 0)
    assert report.path == str(path)


def test_jsonl_blank_lines_keep_physical_line_numbers(jsonl_file, rows):
    path = jsonl_file(["", rows[0], "   ", rows[1], rows[2]])
    pairs, report = load_pairs(path)
    assert pairs == expected("pairs.jsonl", [2, 4, 5])
    assert report.n_read == 3


def test_json_array_line_numbers(tmp_path, rows):
    path = tmp_path / "pairs.json"
    text = "[\n  " + json.dumps(rows[0]) + ",\n\n  " + json.dumps(rows[1], indent=2)
    text += ",\n  " + json.dumps(rows[2], ensure_ascii=False) + "\n]\n"
    path.write_text(text, encoding="utf-8")
    pairs, _ = load_pairs(path)
    # row 2 spans several lines (indent=2), so row 3 starts further down.
    third = 4 + json.dumps(rows[1], indent=2).count("\n") + 1
    assert pairs == expected("pairs.json", [2, 4, third])


def test_csv_multiline_quoted_field(tmp_path, rows):
    path = tmp_path / "pairs.csv"
    rows[0]["prompt"] = "What is\n2+2?"  # a quoted cell spanning two lines
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLS)
        writer.writeheader()
        writer.writerows(rows)
    pairs, _ = load_pairs(path)
    want = expected("pairs.csv", [2, 4, 5])
    want[0] = PreferencePair("What is\n2+2?", *list(want[0].__dict__.values())[1:])
    assert pairs == want


def test_csv_bad_row_after_multiline_field_reports_its_line(tmp_path, exact_re):
    path = tmp_path / "p.csv"
    path.write_text('prompt,chosen,rejected\n"a\nb\nc",x,y\nq,,z\n', encoding="utf-8")
    with pytest.raises(
        DataError,
        match=exact_re(
            f"{path}:5: field 'chosen' is empty (keys present: prompt, chosen, rejected)"
        ),
    ) as info:
        load_pairs(path)
    assert (info.value.line, info.value.field) == (5, "chosen")


def test_parquet(tmp_path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(columnar(rows)), path)
    pairs, _ = load_pairs(path)
    assert pairs == expected("pairs.parquet", [1, 2, 3])


def test_hf_dataset_folder(tmp_path, rows):
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "hfpairs"
    datasets.Dataset.from_list(columnar(rows)).save_to_disk(str(path))
    pairs, _ = load_pairs(path)
    assert pairs == expected("hfpairs", [1, 2, 3])
    with pytest.raises(ConfigError, match="single Dataset without splits"):
        load_pairs(path, split="train")


def test_hf_dataset_dict_split(tmp_path, rows):
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "hfdict"
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(columnar(rows)),
            "test": datasets.Dataset.from_list(columnar(rows[:1])),
        }
    )
    dd.save_to_disk(str(path))
    assert load_pairs(path)[0] == expected("hfdict", [1, 2, 3])
    assert load_pairs(path, split="test")[0] == expected("hfdict", [1, 2, 3])[:1]
    with pytest.raises(ConfigError, match=r"^split == 'tset', must be one of: train, test\."):
        load_pairs(path, split="tset")


def test_hf_dataset_dict_without_train_needs_split(tmp_path, rows):
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "hfdict2"
    d = datasets.Dataset.from_list(columnar(rows))
    datasets.DatasetDict({"a": d, "b": d}).save_to_disk(str(path))
    with pytest.raises(ConfigError, match="holds splits a, b and none is 'train'"):
        load_pairs(path)
    only = tmp_path / "hfdict3"
    datasets.DatasetDict({"validation": d}).save_to_disk(str(only))
    assert len(load_pairs(only)[0]) == 3


def test_field_mapping(jsonl_file):
    path = jsonl_file([{"question": "q", "good": "a", "bad": "b", "cat": "s", "uid": 7}])
    pairs, _ = load_pairs(
        path,
        fields={
            "prompt": "question",
            "chosen": "good",
            "rejected": "bad",
            "subset": "cat",
            "id": "uid",
        },
    )
    assert pairs == [PreferencePair("q", "a", "b", None, "s", "pairs.jsonl", "7")]


def test_field_mapping_missing_column_names_it(jsonl_file, exact_re):
    path = jsonl_file([{"prompt": "q", "chosen": "a", "rejected": "b"}])
    with pytest.raises(
        DataError,
        match=exact_re(
            f"{path}:1: field 'good' (mapped to 'chosen') is missing "
            "(keys present: prompt, chosen, rejected)"
        ),
    ) as info:
        load_pairs(path, fields={"chosen": "good"})
    assert info.value.field == "chosen"


def test_unknown_field_name_is_config_error(jsonl_file, rows):
    with pytest.raises(
        ConfigError,
        match=r"^fields key == 'promt', must be one of: prompt, "
        r"chosen, rejected, margin, chosen_score, rejected_score, soft_label, subset, source, id\. Did you mean 'prompt'\?$",
    ):
        load_pairs(jsonl_file(rows), fields={"promt": "q"})


def test_explicit_format_overrides_extension(tmp_path, rows):
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    with pytest.raises(ConfigError, match="Cannot tell the format"):
        load_pairs(path)
    assert len(load_pairs(path, format="jsonl")[0]) == 3


def test_unknown_format_and_dialogue(jsonl_file, rows):
    path = jsonl_file(rows)
    with pytest.raises(ConfigError, match=r"^format == 'jsnol', must be one of: .*jsonl"):
        load_pairs(path, format="jsnol")
    with pytest.raises(ConfigError, match=r"^dialogue == 'HH', must be one of: auto, hh, none"):
        load_pairs(path, dialogue="HH")


def test_missing_file(tmp_path, exact_re):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match=exact_re(f"{path}: file not found")):
        load_pairs(path)


def test_format_kind_mismatch(tmp_path, jsonl_file, rows):
    with pytest.raises(DataError, match="expects a datasets folder"):
        load_pairs(jsonl_file(rows), format="hf")
    with pytest.raises(DataError, match="is a folder, but format 'jsonl' expects a file"):
        load_pairs(tmp_path, format="jsonl")
    with pytest.raises(ConfigError, match="only Hugging Face DatasetDict folders have splits"):
        load_pairs(jsonl_file(rows), split="train")


def test_not_a_parquet_file(tmp_path: Path):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_pairs(path)
