"""HH-RLHF dialogue splitting, on hand-built dialogues and on the real test split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewardhedge.data import HH_ASSISTANT_MARKER, load_pairs, split_hh_dialogue
from rewardhedge.errors import DataError

HH_FILE = Path(__file__).resolve().parents[2].parent / "shared/data/hh_harmless_test.jsonl"
M = repr(HH_ASSISTANT_MARKER)  # the marker as error messages show it
CONTEXT = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how do I cook rice?\n\nAssistant:"


def test_marker_value():
    assert HH_ASSISTANT_MARKER == "\n\nAssistant:"


def test_multi_turn_split_at_last_marker():
    prompt, chosen, rejected = split_hh_dialogue(CONTEXT + " Rinse, boil.", CONTEXT + " No.")
    assert (prompt, chosen, rejected) == (CONTEXT, "Rinse, boil.", "No.")


def test_only_one_leading_space_is_removed():
    _, chosen, rejected = split_hh_dialogue(CONTEXT + "  two", CONTEXT + "none")
    assert (chosen, rejected) == (" two", "none")


def test_differing_prefixes():
    with pytest.raises(DataError, match=r"^chosen and rejected dialogues differ") as info:
        split_hh_dialogue(CONTEXT + " a", CONTEXT.replace("rice", "pasta") + " b")
    assert info.value.field == "rejected"
    # same prefix text, but the rejected reply hallucinates one more assistant turn
    with pytest.raises(DataError, match="differ"):
        split_hh_dialogue(CONTEXT + " a", CONTEXT + " b\n\nHuman: ok" + HH_ASSISTANT_MARKER + " c")


@pytest.mark.parametrize("side", ["chosen", "rejected"])
def test_missing_marker(side, exact_re):
    texts = {"chosen": CONTEXT + " a", "rejected": CONTEXT + " b", side: "\n\nHuman: only"}
    with pytest.raises(DataError, match=exact_re(f"field '{side}' has no {M} turn")) as info:
        split_hh_dialogue(texts["chosen"], texts["rejected"])
    assert info.value.field == side


def test_load_hh_ignores_prompt_column(jsonl_file):
    path = jsonl_file([{"prompt": "ignored", "chosen": CONTEXT + " a", "rejected": CONTEXT + " b"}])
    (pair,), _ = load_pairs(path, dialogue="hh")
    assert (pair.prompt, pair.chosen, pair.rejected) == (CONTEXT, "a", "b")


def test_auto_splits_only_without_prompt(jsonl_file, exact_re):
    row = {"chosen": CONTEXT + " a", "rejected": CONTEXT + " b"}
    (pair,), _ = load_pairs(jsonl_file([row]))
    assert (pair.prompt, pair.chosen) == (CONTEXT, "a")
    (pair,), _ = load_pairs(jsonl_file([{"prompt": "p", **row}]))
    assert (pair.prompt, pair.chosen) == ("p", CONTEXT + " a")
    path = jsonl_file([row])
    with pytest.raises(DataError, match="field 'prompt' is missing"):
        load_pairs(path, dialogue="none")
    path = jsonl_file([{"chosen": "a", "rejected": "b"}])
    with pytest.raises(
        DataError,
        match=exact_re(f"{path}:1: field 'prompt' is missing (keys present: chosen, rejected)"),
    ):
        load_pairs(path)


def test_hh_row_errors_are_located(jsonl_file, exact_re):
    path = jsonl_file(
        [
            {"chosen": CONTEXT + " a", "rejected": CONTEXT + " b"},
            {"chosen": CONTEXT + " ", "rejected": CONTEXT + " b"},
            {"chosen": CONTEXT + " a", "rejected": "no marker"},
            {"chosen": CONTEXT + " a", "rejected": CONTEXT + " a"},
            {"chosen": CONTEXT + " a", "rejected": "\n\nHuman: x" + HH_ASSISTANT_MARKER + " b"},
        ]
    )
    _, report = load_pairs(path, dialogue="hh", skip_invalid=True)
    assert [(r["line"], r["field"], r["reason"]) for r in report.rejects] == [
        (2, "chosen", f"field 'chosen' has an empty response after the last {M} turn"),
        (3, "rejected", f"field 'rejected' has no {M} turn"),
        (4, "rejected", "fields 'chosen' and 'rejected' are identical"),
        (5, "rejected", f"chosen and rejected dialogues differ before the last {M} turn"),
    ]
    with pytest.raises(
        DataError,
        match=exact_re(f"{path}:2: field 'chosen' has an empty response after the last {M} turn"),
    ):
        load_pairs(path, dialogue="hh")


@pytest.mark.skipif(not HH_FILE.is_file(), reason=f"{HH_FILE} is not present")
def test_real_hh_harmless_test_split(tmp_path):
    rejects = tmp_path / "rejects.jsonl"
    pairs, report = load_pairs(
        HH_FILE,
        fields={"chosen": "chosen_full", "rejected": "rejected_full"},
        dialogue="hh",
        skip_invalid=True,
        rejects_path=rejects,
    )
    assert (report.n_read, report.n_kept, report.n_rejected) == (2312, 2303, 9)
    with open(HH_FILE, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    clean = [r for r in rows if r["split"] == "clean"]
    assert [(p.id, p.prompt, p.chosen, p.rejected) for p in pairs] == [
        (r["id"], r["prompt"], r["chosen"], r["rejected"]) for r in clean
    ]
    by_line = {r["line"]: r for r in report.rejects}
    splits = sorted(rows[line - 1]["split"] for line in by_line)
    assert splits == ["empty_response"] * 4 + ["no_clean_split"] * 5
    assert len(rejects.read_text(encoding="utf-8").splitlines()) == 9
