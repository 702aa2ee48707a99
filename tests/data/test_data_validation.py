"""Each bad input gives one exact, located error; skip_invalid records them instead."""

from __future__ import annotations

import json

import pytest

from rewardhedge.data import load_pairs
from rewardhedge.errors import DataError

KEYS = "(keys present: prompt, chosen, rejected)"


def check(path, line: int, field: str | None, reason: str, exact_re, **kw) -> None:
    with pytest.raises(DataError, match=exact_re(f"{path}:{line}: {reason}")) as info:
        load_pairs(path, **kw)
    err = info.value
    assert (err.path, err.line, err.field, err.reason) == (str(path), line, field, reason)


GOOD = {"prompt": "p", "chosen": "c", "rejected": "r"}


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        (
            {"prompt": "p", "chosen": "c"},
            "rejected",
            "field 'rejected' is missing (keys present: prompt, chosen)",
        ),
        (
            {"chosen": "c", "rejected": "r"},
            "prompt",
            "field 'prompt' is missing (keys present: chosen, rejected)",
        ),
        ({**GOOD, "chosen": ""}, "chosen", f"field 'chosen' is empty {KEYS}"),
        ({**GOOD, "rejected": " \n\t"}, "rejected", f"field 'rejected' is empty {KEYS}"),
        ({**GOOD, "rejected": "c"}, "rejected", "fields 'chosen' and 'rejected' are identical"),
        ({**GOOD, "chosen": 3}, "chosen", "field 'chosen' must be a string, got int"),
        ({**GOOD, "prompt": None}, "prompt", "field 'prompt' must be a string, got null"),
        ({**GOOD, "rejected": ["r"]}, "rejected", "field 'rejected' must be a string, got list"),
        ({**GOOD, "margin": "1.0"}, "margin", "field 'margin' must be a number, got str"),
        ({**GOOD, "margin": True}, "margin", "field 'margin' must be a number, got bool"),
        ({**GOOD, "subset": 3}, "subset", "field 'subset' must be a string, got int"),
        ({**GOOD, "source": False}, "source", "field 'source' must be a string, got bool"),
        ({**GOOD, "id": 1.5}, "id", "field 'id' must be a string or an integer, got float"),
        # a JSON escape of a lone surrogate is as unencodable as a raw invalid byte
        (
            '{"prompt": "p", "chosen": "bad \\ud800", "rejected": "r"}',
            "chosen",
            "field 'chosen' is not valid UTF-8",
        ),
    ],
)
def test_bad_jsonl_row(jsonl_file, exact_re, row, field, reason):
    path = jsonl_file([GOOD | {"rejected": "x"}, row])
    check(path, 2, field, reason, exact_re)


def test_prompt_may_be_empty_and_optional_values_convert(jsonl_file):
    path = jsonl_file([{**GOOD, "prompt": "", "id": 12, "margin": 2, "subset": ""}])
    (pair,), _ = load_pairs(path)
    assert (pair.prompt, pair.id, pair.margin, pair.subset) == ("", "12", 2.0, None)
    assert isinstance(pair.margin, float)


def test_malformed_jsonl_line(jsonl_file, exact_re):
    path = jsonl_file([GOOD, '{"prompt": "p", "chosen": }'])
    check(path, 2, None, "malformed JSON: Expecting value at column 27", exact_re)


def test_jsonl_line_not_an_object(jsonl_file, exact_re):
    path = jsonl_file([GOOD, "[1, 2]"])
    check(path, 2, None, "expected a JSON object, got list", exact_re)


def test_invalid_utf8_inside_a_jsonl_string(tmp_path, exact_re):
    path = tmp_path / "bad.jsonl"
    bad = b'{"prompt": "p", "chosen": "ok \xff\xfe", "rejected": "r"}\n'
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + bad)
    check(path, 2, "chosen", "field 'chosen' is not valid UTF-8", exact_re)


def test_invalid_utf8_that_breaks_the_jsonl_line(tmp_path, exact_re):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"prompt": \xff}\n' + json.dumps(GOOD).encode() + b"\n")
    reason = "malformed JSON: Expecting value at column 12 (the line is not valid UTF-8)"
    check(path, 1, None, reason, exact_re)
    pairs, report = load_pairs(path, skip_invalid=True)
    assert len(pairs) == 1
    assert report.rejects[0]["row"] == '{"prompt": \ufffd}'


def test_invalid_utf8_in_a_csv_cell(tmp_path, exact_re):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"prompt,chosen,rejected\np,c,r\np,ok\xfe,r\n")
    check(path, 3, "chosen", "field 'chosen' is not valid UTF-8", exact_re)


def test_csv_cells(tmp_path, exact_re):
    path = tmp_path / "m.csv"
    path.write_text("prompt,chosen,rejected,margin,id\np,c,r,0.25,\np,c,r,,7\n", encoding="utf-8")
    pairs, _ = load_pairs(path)
    assert [(p.margin, p.id) for p in pairs] == [(0.25, "m.csv:2"), (None, "7")]
    path.write_text("prompt,chosen,rejected,margin\np,c,r,abc\n", encoding="utf-8")
    check(path, 2, "margin", "field 'margin' must be a number, got 'abc'", exact_re)
    path.write_text("prompt,chosen,rejected,margin\np,c,r,nan\n", encoding="utf-8")
    check(path, 2, "margin", "field 'margin' must be a finite number, got nan", exact_re)
    path.write_text("prompt,chosen,rejected\np,c,r\np,c\n", encoding="utf-8")
    check(path, 3, None, "row has 2 cells, the header has 3", exact_re)


def test_json_array_malformed_is_fatal_even_when_skipping(tmp_path, exact_re):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"prompt": "p", "chosen": "c", "rejected": "r"},\n  {"prompt" "x"}\n]')
    reason = "malformed JSON: Expecting ':' delimiter at column 13"
    check(path, 3, None, reason, exact_re)
    check(path, 3, None, reason, exact_re, skip_invalid=True)
    path.write_text('[\n  {"prompt": "p", "chosen": "c", "rejected": "r"}\n  {"a": 1}\n]')
    check(path, 3, None, "malformed JSON: Expecting ',' delimiter at column 3", exact_re)


def test_json_not_an_array(tmp_path, exact_re):
    path = tmp_path / "obj.json"
    path.write_text('{"data": []}')
    check(path, 1, None, "expected a JSON array of objects, got dict", exact_re)


def test_json_array_element_not_an_object(tmp_path, exact_re):
    path = tmp_path / "a.json"
    path.write_text('[{"prompt": "p", "chosen": "c", "rejected": "r"},\n\n 7]')
    check(path, 3, None, "expected a JSON object, got int", exact_re)


def test_no_valid_rows(tmp_path, jsonl_file, exact_re):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match=exact_re(f"{empty}: no valid rows: the file has no rows")):
        load_pairs(empty, skip_invalid=True)
    path = jsonl_file([{"prompt": "p"}, "nope"])
    rejects = tmp_path / "rej.jsonl"
    message = f"{path}: no valid rows: all 2 rows were rejected"
    with pytest.raises(DataError, match=exact_re(message)):
        load_pairs(path, skip_invalid=True, rejects_path=rejects)
    assert len(rejects.read_text().splitlines()) == 2


def test_skip_invalid_writes_rejects_and_keeps_good_rows(tmp_path, jsonl_file):
    rows = [
        {**GOOD, "id": "a"},
        {**GOOD, "chosen": ""},
        "{not json",
        {**GOOD, "id": "b"},
        {**GOOD, "rejected": "c"},
        {**GOOD, "id": "c"},
    ]
    path = jsonl_file(rows)
    rejects = tmp_path / "out" / "rejects.jsonl"
    pairs, report = load_pairs(path, skip_invalid=True, rejects_path=rejects)
    assert [p.id for p in pairs] == ["a", "b", "c"]
    assert (report.n_read, report.n_kept, report.n_rejected) == (6, 3, 3)
    assert report.rejects_path == str(rejects)
    written = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert written == report.rejects
    assert [(r["line"], r["field"]) for r in written] == [(2, "chosen"), (3, None), (5, "rejected")]
    assert written[0] == {
        "line": 2,
        "field": "chosen",
        "reason": f"field 'chosen' is empty {KEYS}",
        "error": f"{path}:2: field 'chosen' is empty {KEYS}",
        "row": {**GOOD, "chosen": ""},
    }
    assert written[1]["row"] == "{not json"
    assert written[1]["reason"].startswith("malformed JSON: ")


def test_rejects_file_written_even_when_empty(tmp_path, jsonl_file):
    rejects = tmp_path / "rejects.jsonl"
    _, report = load_pairs(jsonl_file([GOOD]), skip_invalid=True, rejects_path=rejects)
    assert rejects.read_text() == ""
    assert report.rejects_path == str(rejects) and report.n_rejected == 0


def test_without_skip_first_bad_row_raises(jsonl_file):
    path = jsonl_file([GOOD, {**GOOD, "chosen": ""}, {**GOOD, "chosen": 1}])
    with pytest.raises(DataError) as info:
        load_pairs(path)
    assert info.value.line == 2
