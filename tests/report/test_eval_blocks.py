"""The eval JSON's optional blocks in the report: RewardBench sections, one-vs-many, pools,
members, comparison, perturbations, controls, timing (docs/eval-json.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from rewardhedge.report import ReportError, detect_kind, render_report, report_html
from rewardhedge.report.diagnostics import batch_invariance_verdict, significance_sentence

VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "col", "area", "base"}
CHROMIUM = "/usr/bin/chromium"
CHECK = Path(__file__).resolve().parents[2] / "bench" / "report_check.py"

# heading text -> toc label, per block key
BLOCKS = {
    "rewardbench": ("RewardBench sections", "RewardBench sections"),
    "members": ("Ensemble members", "Ensemble members"),
    "comparison": ("Comparison with baseline-single", "Comparison with baseline-single"),
    "perturbation": ("Prompt perturbations", "Prompt perturbations"),
    "controls": ("Controls", "Controls"),
    "timing": ("Timing", "Timing"),
}


class Page(HTMLParser):
    """Headings, the table of contents, tables by class, figures, ids, text and nesting errors."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.h2: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self.figures: list[dict[str, Any]] = []
        self.tables: dict[str, list[tuple[str | None, list[str]]]] = {}
        self.text: list[str] = []
        self._h2: list[str] | None = None
        self._a: tuple[str, list[str]] | None = None
        self._table: str | None = None
        self._row: list[str] | None = None
        self._row_class: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed at end: {self.stack}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "h2":
            self._h2 = []
        elif tag == "a" and "nav" in self.stack:
            self._a = (a.get("href") or "", [])
        elif tag == "figure":
            self.figures.append({"plot": a.get("data-plot"), "svgs": 0})
        elif tag == "svg" and "figure" in self.stack:
            self.figures[-1]["svgs"] += 1
        elif tag == "table":
            self._table = a.get("class") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row, self._row_class = [], a.get("class")
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()
        if tag == "h2" and self._h2 is not None:
            self.h2.append("".join(self._h2).strip())
            self._h2 = None
        elif tag == "a" and self._a is not None:
            self.toc.append((self._a[0], "".join(self._a[1])))
            self._a = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append((self._row_class, self._row))
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for buf in (self._h2, self._cell, self._a[1] if self._a else None):
            if buf is not None:
                buf.append(data)

    @property
    def body(self) -> str:
        return " ".join(" ".join(self.text).split())

    @property
    def ids(self) -> list[str]:
        return [a["id"] for _, a in self.tags if a.get("id")]

    def rows(self, table: str) -> list[list[str]]:
        return [cells for _, cells in self.tables[table][1:]]

    def row_classes(self, table: str) -> list[str | None]:
        return [cls for cls, _ in self.tables[table][1:]]


def parse(result: Any) -> Page:
    page = Page(report_html(result))
    assert page.errors == []
    ids = page.ids
    assert len(ids) == len(set(ids))
    return page


# -- detect_kind -------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["pairs", "one_to_many", "pools"])
def test_detect_kind_on_new_eval_json(eval_factory, task):
    builder = {
        "pairs": eval_factory.make_eval_full,
        "one_to_many": eval_factory.make_one_to_many,
        "pools": eval_factory.make_pools,
    }[task]
    result = builder()
    assert result["task"] == task
    assert detect_kind(result) == "eval"
    assert detect_kind({"kind": "rewardhedge.eval", "version": 1, "task": task}) == "eval"


def test_detect_kind_pools_has_no_pairwise_keys(eval_factory):
    pools = eval_factory.make_pools()
    assert "pairwise_accuracy" not in pools and "n_pairs" not in pools
    assert detect_kind(pools) == "eval"
    assert detect_kind(eval_factory.make_eval()) == "eval"  # older JSON, no "kind"


def test_detect_kind_rejects_another_eval_version(eval_factory, tmp_path):
    result = eval_factory.make_pools() | {"version": 2}
    message = (
        "results[1] is evaluation JSON of version 2, but this rewardhedge reads version 1; "
        "re-run `rewardhedge eval --json` or upgrade rewardhedge."
    )
    with pytest.raises(ReportError, match="^" + re.escape(message) + "$"):
        detect_kind(result, "results[1]")
    with pytest.raises(ReportError, match="version 2"):
        render_report([eval_factory.make_eval(), result], tmp_path / "r.html")
    assert list(tmp_path.iterdir()) == []


# -- the full pairs result ---------------------------------------------------------------------
def test_full_pairs_result_has_every_section_and_toc_entry(eval_factory):
    page = parse(eval_factory.make_eval_full())
    assert page.h2 == [
        "Metrics",
        "RewardBench sections",
        "Accuracy per subset",
        "Ensemble members",
        "Comparison with baseline-single",
        "Prompt perturbations",
        "Controls",
        "Timing",
    ]
    assert page.toc == [
        ("#r0-metrics", "Metrics"),
        ("#r0-rewardbench", "RewardBench sections"),
        ("#r0-subsets", "Per subset"),
        ("#r0-members", "Ensemble members"),
        ("#r0-comparison", "Comparison with baseline-single"),
        ("#r0-perturbation", "Prompt perturbations"),
        ("#r0-controls", "Controls"),
        ("#r0-timing", "Timing"),
    ]
    assert {href[1:] for href, _ in page.toc} <= set(page.ids)
    assert "task pairs" in page.body and "model ensemble-minilm" in page.body
    assert "data rewardbench_v1.jsonl" in page.body


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_each_block_is_shown_only_when_present(eval_factory, block):
    heading, label = BLOCKS[block]
    result = eval_factory.make_eval_full()
    assert heading in parse(result).h2
    del result[block]
    if block == "members":  # the per-member STARC distances alone also make the section
        assert heading in parse(result).h2
        del result["starc"]
    page = parse(result)
    assert heading not in page.h2
    assert label not in [lbl for _, lbl in page.toc]
    others = [h for k, (h, _) in BLOCKS.items() if k != block]
    assert all(h in page.h2 for h in others)


def test_older_eval_dict_renders_without_new_sections(eval_factory):
    page = parse(eval_factory.make_eval())
    assert page.h2 == ["Metrics", "Accuracy per subset"]
    assert [lbl for _, lbl in page.toc] == ["Metrics", "Per subset"]
    assert page.rows("metrics")[0] == [
        "pairwise accuracy (ties count half)",
        "0.6875",
        "[0.6612, 0.7141]",
        "1,200",
    ]
    assert 'class="facts"' not in report_html(eval_factory.make_eval())  # no task/model box


def test_length_matched_accuracy_row_only_when_present(eval_factory):
    label = "accuracy, length-matched (±10%, n=412)"
    result = eval_factory.make_eval()
    assert not any("length-matched" in r[0] for r in parse(result).rows("metrics"))
    result["length_matched"] = {
        "n_pairs": 412,
        "accuracy": 0.6214,
        "ci_low": 0.5752,
        "ci_high": 0.6675,
        "tolerance": 0.1,
    }
    rows = parse(result).rows("metrics")
    assert [label, "0.6214", "[0.5752, 0.6675]", "412"] in rows
    spearman = next(i for i, r in enumerate(rows) if r[0].startswith("Spearman"))
    assert rows[spearman + 1][0] == label
    result["length_matched"] = {
        "n_pairs": 0,
        "accuracy": None,
        "ci_low": None,
        "ci_high": None,
        "tolerance": 0.1,
    }
    assert ["accuracy, length-matched (±10%, n=0)", "—", "—", "0"] in parse(result).rows("metrics")


def test_rewardbench_table_plot_and_caption(eval_factory):
    page = parse(eval_factory.make_eval_full())
    assert page.rows("rewardbench") == [
        [
            "Chat",
            "0.9123",
            "[0.8873, 0.9373]",
            "358",
            "alpacaeval-easy, alpacaeval-hard, mt-bench-easy",
            "—",
        ],
        [
            "Chat Hard",
            "0.6012",
            "[0.5762, 0.6262]",
            "456",
            "llmbar-natural, llmbar-adver-neighbor",
            "mt-bench-hard",
        ],
        [
            "Safety",
            "0.7788",
            "[0.7538, 0.8038]",
            "740",
            "refusals-dangerous, xstest-should-refuse, donotanswer",
            "—",
        ],
        ["Reasoning", "0.6534", "[0.6284, 0.6784]", "1,431", "math-prm, hep-python", "hep-rust"],
        ["score (mean of 4 sections)", "0.7364", "[0.7211, 0.7502]", "", "", ""],
    ]
    body = page.body
    assert "weighted by RewardBench v1 example counts" in body
    assert "subsets missing from the data are skipped, as RewardBench does" in body
    assert "not comparable with the leaderboard" in body  # "complete": false
    assert "left out of the sections: my-extra-subset" in body
    plots = [f["plot"] for f in page.figures]
    assert plots == ["rewardbench-sections", "subset-accuracy"]
    assert all(f["svgs"] == 1 for f in page.figures)


def test_complete_rewardbench_has_no_warning(eval_factory):
    result = eval_factory.make_eval_full()
    result["rewardbench"] |= {"complete": True, "unmapped_subsets": []}
    body = parse(result).body
    assert "RewardBench sections" in body
    assert "not comparable" not in body and "left out of the sections" not in body


def test_members_and_starc(eval_factory):
    page = parse(eval_factory.make_eval_full())
    assert page.rows("members-summary") == [
        ["mean member accuracy", "0.6701", "[0.6589, 0.6803]"],
        ["IQM of member accuracy", "0.6710", "[0.6601, 0.6822]"],
        ["STARC distance to the ensemble mean, mean", "0.1248", ""],
        ["STARC distance to the ensemble mean, max", "0.1533", ""],
    ]
    assert page.rows("members") == [
        ["1", "0.6533", "0.1412"],
        ["2", "0.6612", "0.1203"],
        ["3", "0.6701", "0.0987"],
        ["4", "0.6817", "0.1533"],
        ["5", "0.6842", "0.1106"],
    ]
    assert (
        "stratified bootstrap over the 5 members within tasks (harmless <b>, helpful; 2,000 "
        "resamples)" in page.body
    )


def test_comparison_table_and_significance_sentence(eval_factory):
    result = eval_factory.make_eval_full()
    page = parse(result)
    assert page.rows("comparison") == [
        ["ensemble-minilm", "0.6875", "", ""],
        ["baseline-single", "0.6521", "", ""],
        ["difference (this − other)", "+0.0354", "[0.0112, 0.0597]", "0.0042"],
        ["STARC distance between the two rewards", "0.2871", "[0.2633, 0.3102]", ""],
    ]
    assert (
        "The difference in accuracy, +0.0354 (95% CI [0.0112, 0.0597]), is significant at 5% "
        "(p = 0.0042)." in page.body
    )
    result["comparison"] |= {"p_value": 0.3105, "ci_low": -0.0101}
    body = parse(result).body
    assert "is not significant at 5% (p = 0.3105)" in body
    assert "is significant at 5%" not in body


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"p_value": 0.049}, "is significant at 5% (p = 0.0490)"),
        ({"p_value": 0.05}, "is not significant at 5% (p = 0.0500)"),
        ({"p_value": 0.00002}, "is significant at 5% (p < 0.0001)"),
        ({"p_value": None}, "is significant at 5% (its CI excludes 0; no p-value)"),
        ({"p_value": None, "ci_low": -0.01}, "is not significant at 5% (its CI includes 0"),
        ({"p_value": None, "ci_low": None, "ci_high": None}, "No p-value or CI was computed"),
    ],
)
def test_significance_sentence(eval_factory, change, expected):
    cmp = eval_factory.make_eval_full()["comparison"] | change
    assert expected in significance_sentence(cmp)


def test_perturbation_table(eval_factory):
    page = parse(eval_factory.make_eval_full())
    assert page.rows("perturbation") == [
        [
            "lowercase",
            "1,200",
            "0.9412",
            "[0.9279, 0.9545]",
            "0.6875 → 0.6712",
            "-0.0163",
            "0.0871",
        ],
        ["typos", "1,200", "0.8833", "[0.8652, 0.9014]", "0.6875 → 0.6401", "-0.0474", "0.1934"],
    ]
    assert "Perturbations generated from the evaluation pairs (1,200 pairs)" in page.body
    result = eval_factory.make_eval_full()
    result["perturbation"]["source"] = "generated+file"
    assert "Generated perturbations and perturbed prompts read from a file (1,200" in (
        parse(result).body
    )


def test_batch_invariance_pass_and_fail(eval_factory):
    result = eval_factory.make_eval_full()
    text = report_html(result)
    page = parse(result)
    assert '<span class="good">PASS</span> Batch invariance' in text and ">FAIL<" not in text
    assert (
        "scores of 256 items at batch sizes 1 and 64 differ by at most 3.05e-07 (relative "
        "1.20e-07), within the tolerance 2.50e-05; 0 of 128 pairs change order." in page.body
    )
    assert page.rows("batch-invariance") == [
        ["256", "1, 64", "3.05e-07", "1.20e-07", "2.50e-05", "no", "yes", "0 of 128"]
    ]

    result["controls"] = eval_factory.make_controls(passed=False)
    text = report_html(result)
    assert '<span class="bad">FAIL</span> Batch invariance' in text and ">PASS<" not in text
    assert "beyond the tolerance 2.50e-05; 3 of 128 pairs change order." in parse(result).body


def test_batch_invariance_verdict_rules():
    base = {"identical": False, "within_tolerance": True, "n_order_flips": 0}
    assert batch_invariance_verdict(base) is True
    assert batch_invariance_verdict(base | {"identical": True, "within_tolerance": False}) is True
    assert batch_invariance_verdict(base | {"n_order_flips": 1}) is False  # a flip fails it
    assert batch_invariance_verdict(base | {"within_tolerance": False}) is False
    assert batch_invariance_verdict(base | {"passed": False}) is False  # the JSON's own verdict
    assert batch_invariance_verdict({"n_items": 3}) is None


def test_bit_identical_wording(eval_factory):
    result = eval_factory.make_eval_full()
    result["controls"]["batch_invariance"] |= {"identical": True, "max_abs_diff": 0.0}
    body = parse(result).body
    assert "PASS Batch invariance: scores of 256 items at batch sizes 1 and 64 are " in body
    assert "are bit-identical; 0 of 128 pairs change order." in body


def test_timing_line(eval_factory):
    body = parse(eval_factory.make_eval_full()).body
    assert "scoring 12.3 s total 15.0 s overhead ratio 1.22" in body


# -- one chosen vs many rejected ---------------------------------------------------------------
def test_one_to_many(eval_factory):
    page = parse(eval_factory.make_one_to_many())
    assert page.h2 == [
        "Metrics",
        "One chosen vs many rejected",
        "Pairwise accuracy per subset",
        "Controls",
        "Timing",
    ]
    assert ("#r0-one-to-many", "One chosen vs many rejected") in page.toc
    assert "500 rows, 3–5 candidates per row (mean 4.0)" in page.body
    assert page.rows("one-to-many") == [
        [
            "accuracy (chosen above every rejected)",
            "0.4123",
            "[0.3823, 0.4423]",
            "—",
            "0.2811",
            "0.1544",
            "500",
        ],
        ["MRR of the chosen", "0.6234", "[0.5934, 0.6534]", "—", "0.5102", "0.4233", "500"],
        [
            "best-of-n (ties: RewardBench 2 penalty)",
            "0.4567",
            "[0.4267, 0.4867]",
            "0.2512",
            "0.3124",
            "0.1987",
            "500",
        ],
        ["best-of-4", "0.4711", "[0.4311, 0.5111]", "0.2500", "—", "—", "480"],
    ]
    assert page.rows("one-to-many-subsets") == [
        [
            "math",
            "300",
            "0.4401",
            "[0.4101, 0.4701]",
            "0.6502",
            "[0.6202, 0.6802]",
            "0.4803",
            "[0.4503, 0.5103]",
        ],
        [
            "safety",
            "200",
            "0.3707",
            "[0.3407, 0.4007]",
            "0.5832",
            "[0.5532, 0.6132]",
            "0.4213",
            "[0.3913, 0.4513]",
        ],
    ]
    assert "expanded (chosen, rejected) pairs" in page.body


def test_one_to_many_without_best_of_4_or_subsets(eval_factory):
    result = eval_factory.make_one_to_many()
    result["one_to_many"] |= {"best_of_4": None, "subsets": {}}
    page = parse(result)
    assert [r[0] for r in page.rows("one-to-many")][-1] == "best-of-n (ties: RewardBench 2 penalty)"
    assert "one-to-many-subsets" not in page.tables


# -- pools -------------------------------------------------------------------------------------
def test_pools_page(eval_factory):
    page = parse(eval_factory.make_pools())
    assert page.h2 == ["Best-of-n pools", "Ensemble members", "Controls", "Timing"]
    assert [lbl for _, lbl in page.toc] == page.h2
    assert "Metrics" not in page.body and "Calibration" not in page.body
    assert "200 pools of candidate responses, 180 with gold rewards" in page.body
    assert page.rows("pools") == [
        [
            "mean",
            "0.412",
            "[0.362, 0.462]",
            "0.519",
            "[0.479, 0.559]",
            "0.6611",
            "[0.6411, 0.6811]",
            "180",
        ],
        [
            "WCO",
            "0.479",
            "[0.429, 0.529]",
            "0.452",
            "[0.412, 0.492]",
            "0.6902",
            "[0.6702, 0.7102]",
            "180",
        ],
        [
            "UWO λ=0.5",
            "0.523",
            "[0.473, 0.573]",
            "0.408",
            "[0.368, 0.448]",
            "0.7105",
            "[0.6905, 0.7305]",
            "180",
        ],
        [
            "baseline: longest response",
            "0.234",
            "[0.184, 0.284]",
            "0.697",
            "[0.657, 0.737]",
            "0.5812",
            "[0.5612, 0.6012]",
            "",
        ],
        [
            "baseline: shortest response",
            "-0.057",
            "[-0.107, -0.007]",
            "0.988",
            "[0.948, 1.028]",
            "0.4103",
            "[0.3903, 0.4303]",
            "",
        ],
        ["reference: a random pick", "0.102", "[0.072, 0.132]", "", "", "", "", ""],
        ["reference: best in pool", "0.931", "[0.901, 0.961]", "", "", "", "", ""],
    ]
    assert page.row_classes("pools") == [None, None, None] + ["baseline"] * 4
    assert page.rows("length-controls") == [
        ["baseline: longest response: gold of pick", "0.234", "[0.184, 0.284]"],
        ["baseline: shortest response: gold of pick", "-0.057", "[-0.107, -0.007]"],
        ["Spearman ρ, length vs reward", "0.3141", ""],
    ]
    # Pool candidates are not pairs: no order flips to count.
    assert (
        "PASS Batch invariance: scores of 256 items at batch sizes 1 and 64 differ by at most "
        "3.05e-07 (relative 1.20e-07), within the tolerance 2.50e-05." in page.body
    )
    assert page.rows("batch-invariance")[0][-1] == "not checked"
    # Pools have STARC distances but no member accuracies: only the STARC column.
    assert page.tables["members"][0][1] == ["member", "STARC distance to mean"]
    assert [f["plot"] for f in page.figures] == ["pool-gold"]
    assert page.figures[0]["svgs"] == 1


def test_pool_plot_has_references_and_labels(eval_factory):
    text = report_html(eval_factory.make_pools())
    svg = text[text.index('data-plot="pool-gold"') :]
    svg = svg[: svg.index("</svg>")]
    for label in (
        "random pick",
        "best in pool (oracle)",
        "UWO λ=0.5",
        "baseline: longest response",
        "gold reward of the pick (mean over pools, 95% CI)",
    ):
        assert label in svg, label


def test_pools_without_gold(eval_factory):
    page = parse(eval_factory.make_pools(with_gold=False))
    assert "No pool has gold rewards, so the picks cannot be scored." in page.body
    assert page.figures == []
    assert [r[1] for r in page.rows("pools")] == ["—", "—", "—"]
    assert page.rows("length-controls") == [["Spearman ρ, length vs reward", "0.3141", ""]]


# -- robustness --------------------------------------------------------------------------------
def test_strings_from_the_json_are_escaped(eval_factory):
    script = eval_factory.SCRIPT
    full = eval_factory.make_eval_full(model=script)
    full["data"] = script
    full["comparison"]["other_model"] = script
    full["rewardbench"]["sections"][script] = full["rewardbench"]["sections"].pop("Chat")
    full["rewardbench"]["unmapped_subsets"] = [script]
    full["perturbation"]["kinds"][script] = full["perturbation"]["kinds"].pop("typos")
    full["perturbation"]["source"] = script
    pools = eval_factory.make_pools()
    pools["aggregations"]["mean"]["label"] = script
    o2m = eval_factory.make_one_to_many()
    o2m["one_to_many"]["subsets"][script] = o2m["one_to_many"]["subsets"].pop("math")
    text = report_html([full, o2m, pools])
    assert script not in text
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in text
    page = Page(text)
    assert page.errors == []
    assert not any(t == "script" for t, _ in page.tags)
    assert f"Comparison with {script}" in page.h2
    assert script in page.body  # shown as text


def test_malformed_blocks_are_skipped_not_fatal(eval_factory):
    result = eval_factory.make_eval_full()
    result |= {
        "rewardbench": "oops",
        "members": [1, 2],
        "starc": None,
        "controls": {"batch_invariance": "x"},
        "comparison": 3,
        "perturbation": {"source": "file", "kinds": {"a": "b", "c": {"consistency": "high"}}},
        "timing": [],
        "one_to_many": {"accuracy": "high", "length_baseline": 1, "subsets": {"s": None}},
    }
    page = parse(result)
    assert page.h2 == [
        "Metrics",
        "One chosen vs many rejected",
        "Accuracy per subset",
        "Prompt perturbations",
    ]
    assert page.rows("perturbation") == [["c", "—", "—", "—", "— → —", "—", "—"]]
    assert page.rows("one-to-many")[0][1:3] == ["—", "—"]


# -- the whole page in a real browser ----------------------------------------------------------
@pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"{CHROMIUM} is not installed (apt-get install chromium) - the browser check "
    "needs a real Chromium",
)
def test_full_page_loads_cleanly_in_chromium(eval_factory, tmp_path):
    results = [
        eval_factory.make_eval_full(),
        eval_factory.make_one_to_many(),
        eval_factory.make_pools(),
    ]
    report = render_report(results, tmp_path / "eval.html")
    proc = subprocess.run(
        [sys.executable, str(CHECK), str(report), "--screenshot", str(tmp_path / "shot.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = json.loads(proc.stdout)
    assert proc.returncode == 0, summary
    assert summary["ok"] is True
    assert summary["console_errors"] == 0
    assert summary["page_errors"] == 0
    assert summary["external_requests"] == 0
    # RewardBench + subsets (pairs), subsets (one-to-many), pool gold (pools).
    assert summary["svg_count"] == 4
    assert (tmp_path / "shot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_calibration_draws_a_reliability_diagram_from_the_bins(factory):
    metrics = factory.make_eval() | {
        "calibration": {
            "temperature": 0.8,
            "ece_equal_width": 0.05,
            "ece_equal_mass": 0.04,
            "reliability_equal_width": {
                "bin_mid": [0.25, 0.75],
                "mean_pred": [0.3, 0.7],
                "frac_pos": [0.35, 0.65],
                "count": [40, 40],
                "ece": 0.05,
            },
        }
    }
    page = report_html(metrics)
    assert 'data-plot="reliability"' in page and "ECE 0.050" in page
    # Without bins there is the table but no diagram.
    del metrics["calibration"]["reliability_equal_width"]
    assert 'data-plot="reliability"' not in report_html(metrics)
