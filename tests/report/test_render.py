"""render_report on a synthetic lab JSON and eval JSON: structure, escaping, atomic writes."""

from __future__ import annotations

import gc
import os
import re
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from rewardhedge.errors import RewardHedgeError
from rewardhedge.report import ReportError, detect_kind, render_report, report_html

VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "col", "area", "base"}
LAB_PLOTS = ["gold-vs-kl", "proxy-vs-kl", "rank-corr", "reliability"]


class Page(HTMLParser):
    """Parses a whole page; records structure errors, svgs per figure, tables, ids, text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.figures: list[dict[str, Any]] = []
        self.tables: dict[str, list[tuple[str | None, list[str]]]] = {}
        self.text: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._row_class: str | None = None
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed at end: {self.stack}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "figure":
            self.figures.append({"plot": a.get("data-plot"), "svgs": 0})
        if tag == "svg" and "figure" in self.stack:
            self.figures[-1]["svgs"] += 1
        if tag == "table":
            self._table = a.get("class") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row, self._row_class = [], a.get("class")
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append((self._row_class, self._row))
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)

    def body_rows(self, table: str) -> list[tuple[str | None, list[str]]]:
        return self.tables[table][1:]  # row 0 is the header


@pytest.fixture(scope="module")
def page(lab_report) -> Page:
    return Page(lab_report[1])


def test_file_exists_and_is_well_formed_html(lab_report, page):
    path, text = lab_report
    assert path.is_file() and path.name == "report.html"
    assert text.startswith("<!DOCTYPE html>")
    assert page.errors == []
    assert page.count("html") == page.count("head") == page.count("body") == 1
    assert page.count("title") == 1
    assert "rewardhedge · overoptimisation report" in "".join(page.text)
    assert any(t == "meta" and a.get("charset") == "utf-8" for t, a in page.tags)


def test_one_svg_per_plot(page):
    assert [f["plot"] for f in page.figures] == LAB_PLOTS
    assert [f["svgs"] for f in page.figures] == [1, 1, 1, 1]
    assert page.count("svg") == len(LAB_PLOTS)


def test_gold_axis_label_and_n_ticks(lab_report):
    text = lab_report[1]
    assert text.count("KL(n) = log n − (n−1)/n (upper bound), nats") >= 2  # gold and proxy
    # Text stays text (svg.fonttype='none'), so the n tick row can be read back.
    for n in ("1", "2", "4", "8"):
        assert re.search(rf"<text[^>]*>{n}</text>", text)


def test_page_is_self_contained(lab_report, page):
    text = lab_report[1]
    for tag, attrs in page.tags:
        for name in ("src", "href", "xlink:href", "srcset", "action", "data"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)
    assert not re.search(r"""(src|href)\s*=\s*["']?https?://""", text, re.IGNORECASE)
    for tag in ("script", "link", "img", "iframe", "object", "embed"):
        assert page.count(tag) == 0, tag
    assert "@import" not in text
    assert re.findall(r"url\((?!#)", text) == []  # only in-page references: url(#clip)
    assert "<?xml" not in text and "<!DOCTYPE svg" not in text and "<metadata>" not in text


def test_generated_text_is_escaped(lab_report, page, factory):
    SCRIPT = factory.SCRIPT
    text = lab_report[1]
    assert SCRIPT not in text
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in text
    assert "</div><b>bold</b>" not in text
    assert "&lt;/div&gt;&lt;b&gt;bold&lt;/b&gt;" in text
    # The parser sees the original strings as text, not as markup.
    body = "".join(page.text)
    assert SCRIPT in body and "</div><b>bold</b>" in body
    assert 'List 3 colours & explain "why".' in body


def test_accuracy_table_rows_and_numbers(page):
    rows = page.body_rows("accuracy")
    assert [cells for _, cells in rows] == [
        ["single (K=1)", "0.712", "[0.681, 0.743]", "", "0.599", "600"],
        ["ensemble (K=5)", "0.746", "[0.710, 0.779]", "", "0.551", "600"],
        ["length baseline (longer)", "0.623", "[0.590, 0.661]", "", "—", "600"],
        ["length baseline (shorter)", "0.377", "[0.339, 0.410]", "", "—", "600"],
    ]
    assert [cls for cls, _ in rows] == [None, None, "baseline", "baseline"]


def test_curves_table(page, factory):
    lab = factory.make_lab()
    rows = [cells for _, cells in page.body_rows("table0")]
    assert [r[0] for r in rows] == [c[3] for c in factory.DEFAULT_CURVES]
    for row, curve in zip(rows, lab["curves"], strict=True):
        g = curve["gold_at_max_n"]
        assert row[1] == f"{g['iqm']:.3f}"
        assert row[3] == str(curve["peak_n_observed"])
        if curve["fit"] is None:
            assert row[4:6] == ["no fit", "—"]
        else:
            assert row[4] == f"{curve['fit']['peak_n']:.1f}"
            assert row[5] == f"{curve['fit']['r2']:.3f}"


def test_fit_null_has_no_peak_marker(lab_report):
    text = lab_report[1]
    ids = re.findall(r'id="r0-gold-(fit-(?:peak|curve)-\d+)"', text)
    # Curves 0-2 have fits (0's peak is in range: a star; 1 and 2 peak beyond n=8: a
    # note); curve 3 (UWO) has "fit": null. Markers only on the gold plot.
    assert sorted(set(ids)) == [
        "fit-curve-0",
        "fit-curve-1",
        "fit-curve-2",
        "fit-peak-0",
        "fit-peak-1",
        "fit-peak-2",
    ]
    assert all(ids.count(i) == 1 for i in set(ids))
    assert len(re.findall(r'id="[^"]*fit-(?:peak|curve)', text)) == len(ids)  # none on proxy
    assert "fit peak n≈11.9 →" in text and "fit peak n≈47.9 →" in text


def test_header_shows_config_machine_and_timing(page):
    body = " ".join(page.text)
    assert "2-core CPU (x86_64), torch 2.13.0+cpu" in body
    assert "n_prompts" in body and "150" in body
    assert "1 min 20 s" in body and "1 min 02 s" in body


def test_ids_are_unique(lab_report, page):
    ids = [a["id"] for _, a in page.tags if a.get("id")]
    assert len(ids) == len(set(ids))
    # Every in-page reference (clip paths, markers, the table of contents) resolves.
    refs = set(re.findall(r'(?:url\(|href=")#([^")]+)', lab_report[1]))
    assert refs and refs <= set(ids)
    assert {"r0-gold", "r0-accuracy", "r0-examples"} <= set(ids)


def test_plots_do_not_leak_figures(factory):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from rewardhedge.report import plots

    def live() -> int:
        gc.collect()
        with warnings.catch_warnings():  # isinstance on every object pokes deprecated torch aliases
            warnings.simplefilter("ignore")
            return sum(isinstance(o, Figure) for o in gc.get_objects())

    before, nums = live(), plt.get_fignums()
    lab = factory.make_lab()
    svgs = [plots.rank_corr_svg(lab), plots.reliability_svg(lab["reliability"])]
    assert all(s is not None and s.startswith("<svg") and s.endswith("</svg>") for s in svgs)
    assert live() == before and plt.get_fignums() == nums


def test_null_numbers_and_missing_sections(tmp_path, factory):
    lab = factory.make_lab(curves=factory.DEFAULT_CURVES[:1])
    curve = lab["curves"][0]
    curve["rank_corr"][0] = None
    curve["gold"]["ci_low"][1] = None
    del curve["gold_at_max_n"], curve["peak_n_observed"]
    lab["accuracy"][0]["log_loss"] = None
    for key in ("reliability", "examples", "timing", "config"):
        del lab[key]
    page = Page(render_report(lab, tmp_path / "r.html").read_text(encoding="utf-8"))
    assert page.errors == []
    assert [f["plot"] for f in page.figures] == ["gold-vs-kl", "proxy-vs-kl", "rank-corr"]
    assert page.body_rows("accuracy")[0][1][4] == "—"
    row = page.body_rows("table0")[0][1]
    assert row[1] == f"{curve['gold']['iqm'][-1]:.3f}"
    assert row[6].startswith("— →")
    assert "Examples" not in "".join(page.text)


def test_eval_json(tmp_path, factory):
    metrics = factory.make_eval()
    page = Page(render_report(metrics, tmp_path / "eval.html").read_text(encoding="utf-8"))
    assert page.errors == []
    rows = {cells[0]: cells[1:] for _, cells in page.body_rows("metrics")}
    assert rows["pairwise accuracy (ties count half)"] == ["0.6875", "[0.6612, 0.7141]", "1,200"]
    assert rows["baseline: prefer the longer response"][:2] == ["0.5511", "[0.5233, 0.5799]"]
    assert rows["member accuracy, mean of 5 members"][1] == "range [0.6533, 0.6842]"
    subsets = [cells for _, cells in page.body_rows("subsets")]
    assert subsets == [
        ["harmless <b>", "0.7011", "[0.6654, 0.7352]", "700"],
        ["helpful", "0.6684", "[0.6262, 0.7091]", "500"],
    ]
    assert [f["plot"] for f in page.figures] == ["subset-accuracy"]
    text = report_html(metrics)
    assert "harmless <b>" not in text and "harmless &lt;b&gt;" in text

    del metrics["subsets"]
    text = report_html(metrics)
    assert "<svg" not in text and "Per subset" not in text


def test_several_results_in_one_page(factory):
    a, b = factory.make_eval(), factory.make_eval()
    b["subsets"] = {}
    page = Page(report_html([a, b], title="Two <evals>"))
    assert page.errors == []
    assert "Two <evals>" in "".join(page.text)
    headings = [t for t in page.text if t.startswith("Evaluation")]
    assert headings[:2] == ["Evaluation 1", "Evaluation 2"]
    hrefs = [a["href"] for t, a in page.tags if t == "a"]
    assert hrefs == ["#r0", "#r1"]


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (
            {"foo": 1, "bar": [2]},
            "result is not a result the report can show: expected the overoptimisation lab's "
            "JSON (key 'kind' == 'rewardhedge.overopt', written by `rewardhedge overopt` / "
            "`rewardhedge demo`) or the evaluation JSON of `rewardhedge eval --json` (key "
            "'kind' == 'rewardhedge.eval', or, from older versions, keys 'pairwise_accuracy' "
            "and 'n_pairs'); got a dict with no 'kind' key and keys: bar, foo.",
        ),
        (
            {"kind": "rewardhedge.bon", "ns": [1]},
            "result is not a result the report can show: expected the overoptimisation lab's "
            "JSON (key 'kind' == 'rewardhedge.overopt', written by `rewardhedge overopt` / "
            "`rewardhedge demo`) or the evaluation JSON of `rewardhedge eval --json` (key "
            "'kind' == 'rewardhedge.eval', or, from older versions, keys 'pairwise_accuracy' "
            "and 'n_pairs'); got a dict with 'kind' == 'rewardhedge.bon' "
            "and keys: kind, ns.",
        ),
        (
            {"kind": "rewardhedge.overopt", "version": 3},
            "result is overoptimisation-lab JSON of version 3, but this rewardhedge reads "
            "versions 1 and 2; re-run `rewardhedge overopt` or upgrade rewardhedge.",
        ),
        ([], "results is an empty list; pass at least one result dict."),
    ],
)
def test_unknown_results_raise_a_clear_error(tmp_path, result, message):
    out = tmp_path / "r.html"
    with pytest.raises(ReportError, match="^" + re.escape(message) + "$") as info:
        render_report(result, out)
    assert isinstance(info.value, ValueError) and isinstance(info.value, RewardHedgeError)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_error_names_the_item_in_a_list(factory):
    with pytest.raises(ReportError, match=r"^results\[1\] is a str, not a dict; expected "):
        report_html([factory.make_eval(), "overopt.json"])


def test_malformed_lab_names_the_field(factory):
    lab = factory.make_lab()
    lab["curves"][2]["gold"]["iqm"] = [0.1, 0.2, 0.3]
    with pytest.raises(ReportError) as info:
        report_html(lab)
    assert str(info.value) == (
        "result.curves[2].gold.iqm has 3 values, but 'ns' has 4; every array along n must "
        "have one value per n."
    )


def test_detect_kind(factory):
    assert detect_kind(factory.make_lab()) == "lab"
    assert detect_kind(factory.make_eval()) == "eval"


def test_write_is_atomic_and_replaces(tmp_path, factory):
    out = tmp_path / "sub" / "report.html"
    out.parent.mkdir()
    out.write_text("OLD CONTENT " * 50_000, encoding="utf-8")  # longer than the new page
    (tmp_path / "sub" / "other.txt").write_text("keep", encoding="utf-8")
    os.chmod(out, 0o640)
    assert render_report(factory.make_eval(), out) == out
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "OLD CONTENT" not in text
    assert sorted(p.name for p in out.parent.iterdir()) == ["other.txt", "report.html"]
    assert (out.stat().st_mode & 0o777) == 0o640  # an existing file keeps its mode

    # A failure leaves the existing report untouched and no temporary file behind.
    with pytest.raises(ReportError):
        render_report({"nope": True}, out)
    assert out.read_text(encoding="utf-8") == text
    assert sorted(p.name for p in out.parent.iterdir()) == ["other.txt", "report.html"]


def test_new_file_gets_umask_permissions(tmp_path, factory):
    old = os.umask(0o022)
    try:
        out = render_report(factory.make_eval(), tmp_path / "new" / "report.html")
    finally:
        os.umask(old)
    assert (out.stat().st_mode & 0o777) == 0o644
    assert isinstance(out, Path)


def test_missing_matplotlib_gives_an_install_hint(monkeypatch, factory):
    for name in ("lab", "evaluation", "plots", "style"):
        monkeypatch.delitem(sys.modules, f"rewardhedge.report.{name}", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install matplotlib"):
        report_html(factory.make_eval())


def test_eval_json_calibration_and_uncertainty_tables(tmp_path, factory):
    metrics = factory.make_eval()
    metrics["calibration"] = {
        "ece_equal_width": 0.0312,
        "ece_equal_mass": 0.0301,
        "temperature": 0.8123,
        "noise_floor": {"ece_equal_width": 0.041, "ece_equal_mass": 0.0399},
        "before_temperature": {
            "ece_equal_width": 0.0456,
            "ece_equal_mass": 0.0421,
            "log_loss": 0.7,
        },
    }
    metrics["uncertainty"] = {
        "prob_entropy": {"misorder_auroc": 0.6123, "aurc": 0.2345},
        "member_std": {"misorder_auroc": None, "aurc": 0.3},
    }
    metrics["ood"] = {
        "n_in": 1200,
        "n_out": 351,
        "pair_auroc": {"prob_entropy": 0.5512},
        "response_epistemic_auroc": 0.6461,
    }
    page = Page(render_report(metrics, tmp_path / "eval.html").read_text(encoding="utf-8"))
    assert page.errors == []
    cal = {cells[0]: cells[1:] for _, cells in page.body_rows("calibration")}
    assert cal["temperature T"] == ["0.812", "1", ""]
    assert cal["ECE, equal-mass bins"] == ["0.0301", "0.0421", "0.0399"]
    unc = [cells for _, cells in page.body_rows("uncertainty")]
    assert unc == [["prob_entropy", "0.612", "0.2345", "0.551"], ["member_std", "—", "0.3000", "—"]]
    assert "0.646" in report_html(metrics)
    del metrics["calibration"], metrics["uncertainty"], metrics["ood"]
    assert "Uncertainty quality" not in report_html(metrics)
