"""Lab JSON version 2: one ensemble per diversity option, the paired table, member diversity."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from rewardhedge.report import ReportError, detect_kind, plots, report_html
from rewardhedge.report.style import PALETTE, SINGLE_COLOR, curve_colors, model_colors

# Known answers for make_lab_v2: curve 0 is the single model, then options × aggregations.
PANELS = [("mean", [1, 4, 7]), ("WCO", [2, 5, 8]), ("UWO λ=0.5", [3, 6, 9])]
COLORS = {"bootstrap": PALETTE[0], "subspace": PALETTE[1], "views": PALETTE[2]}


VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "col", "area", "base"}


class Page(HTMLParser):
    """Nesting errors, tags, figures, tables (by class, else ``table<k>``) and text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.figures: list[str | None] = []
        self.tables: dict[str, list[tuple[str | None, list[str]]]] = {}
        self.text: list[str] = []
        self._table: str | None = None
        self._row: tuple[str | None, list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a: dict[str, Any] = dict(attrs)
        self.tags.append((tag, a))
        if tag == "figure":
            self.figures.append(a.get("data-plot"))
        elif tag == "table":
            self._table = a.get("class") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = (a.get("class"), [])
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
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row[1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def body_rows(self, table: str) -> list[tuple[str | None, list[str]]]:
        return self.tables[table][1:]  # row 0 is the header


@pytest.fixture(scope="module")
def lab(factory):
    return factory.make_lab_v2()


@pytest.fixture(scope="module")
def html(lab):
    return report_html(lab)


@pytest.fixture(scope="module")
def page(html):
    return Page(html)


def swatches(html: str, section: str) -> dict[str, str]:
    """``{row name: swatch colour}`` of the table in one section (``r0-<section>``)."""
    body = html[html.index(f'id="r0-{section}"') :]
    body = body[: body.index("</table>")]
    found = re.findall(r'class="swatch" style="background:(#\w+)"></span>([^<]+)<', body)
    return {name: color for color, name in found}


def test_panels_are_grouped_by_aggregation(lab, factory):
    assert plots.panel_groups(lab["curves"]) == PANELS
    # A second single-model curve is not the reference, so it keeps a panel of its own.
    extra = {**lab["curves"][0], "aggregation": "wco", "label": "single · WCO"}
    assert plots.panel_groups([*lab["curves"], extra]) == [("single model", [10]), *PANELS]
    # With one ensemble model (version 1) the panels stay one per (model, aggregation).
    v1 = factory.make_lab(curves=factory.DEFAULT_CURVES + factory.EXTRA_CURVES)
    assert plots.panel_groups(v1["curves"]) == [
        ("single model", [0]),
        ("ensemble · mean", [1]),
        ("ensemble · WCO", [2]),
        ("ensemble · UWO", [3, 4]),
        ("ensemble · LCB", [5]),
        ("ensemble · BRME", [6]),
    ]


def test_gold_plot_has_one_panel_per_aggregation_and_one_colour_per_model(lab):
    svg = plots.kl_curves_svg(lab, "gold", salt="t")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert [t for t in texts if t in {"mean", "WCO", "UWO λ=0.5"}] == ["mean", "WCO", "UWO λ=0.5"]
    assert not any(" · WCO" in t or " · UWO" in t for t in texts)
    # One legend for the figure: the models once each, and the single model as the only ref.
    assert texts[-4:] == ["bootstrap", "subspace", "views", "single · mean (ref.)"]
    # Reference lines ("--", lw 1.1): the single model's, once per panel and in the legend;
    # no model's own mean repeated as a reference.
    refs = re.findall(r"stroke-dasharray: 4\.07,1\.76;[^\"]*?stroke: (#[0-9a-f]{6})", svg)
    assert refs == [SINGLE_COLOR] * 4
    # Every curve's fitted line is drawn in its model's colour, whichever panel it is in.
    fit_colors = dict(
        (int(i), c)
        for i, c in re.findall(r'id="t-fit-curve-(\d+)">\s*<path[^>]*?stroke: (#[0-9a-f]{6})', svg)
    )
    assert sorted(fit_colors) == list(range(1, 10))
    for i, color in fit_colors.items():
        assert color == COLORS[lab["curves"][i]["model"]].lower()
    # Three models, three palette colours: none of the per-curve colours of version 1.
    used = set(re.findall(r"stroke: (#[0-9a-f]{6})", svg))
    assert not used & {c.lower() for c in PALETTE[3:]}


def test_colours_per_model_agree_between_plots_and_tables(lab, html):
    colors = curve_colors(lab["curves"])
    assert colors[0] == SINGLE_COLOR
    assert colors[1:] == [COLORS[c["model"]] for c in lab["curves"][1:]]
    assert model_colors(lab["curves"]) == {"single": SINGLE_COLOR, **COLORS}
    curves = swatches(html, "curves")
    assert curves == {c["label"]: COLORS.get(c["model"], SINGLE_COLOR) for c in lab["curves"]}
    assert swatches(html, "paired") == COLORS
    assert swatches(html, "diversity") == COLORS
    rank = plots.rank_corr_svg(lab, salt="rk")
    legend = re.findall(r"<text[^>]*>([^<]*)</text>", rank)
    # Colour names the model, the marker the aggregation, each once in the legend.
    assert legend[-7:] == ["single", "bootstrap", "subspace", "views", "mean", "WCO", "UWO λ=0.5"]
    for color in COLORS.values():
        assert f"stroke: {color.lower()}" in rank
    assert not {c.lower() for c in PALETTE[3:]} & set(re.findall(r"stroke: (#[0-9a-f]{6})", rank))


def test_paired_table_rows_are_grouped_by_option(page, factory):
    rows = page.body_rows("paired")
    expected = []
    for option in factory.V2_OPTIONS:
        for agg, (diff, low, high, p, verdict) in zip(
            ["mean", "WCO", "UWO λ=0.5"], factory.V2_PAIRED[option], strict=True
        ):
            p_txt = "< 0.001" if p < 0.001 else f"{p:.3f}"
            expected.append(
                [
                    option,
                    agg,
                    f"{1 + diff:.3f}",
                    f"{diff:+.3f}",
                    f"[{low:.3f}, {high:.3f}]",
                    p_txt,
                    verdict,
                ]
            )
    assert [cells for _, cells in rows] == expected
    assert [cls for cls, _ in rows] == [
        None, "hurts", None,
        None, None, "helps",
        None, None, "helps",
    ]  # fmt: skip
    assert page.tables["paired"][0][1][2] == "mean gold at n = 8"


def test_paired_verdicts_are_styled(html):
    body = html[html.index('<table class="paired">') :]
    body = body[: body.index("</table>")]
    assert body.count('<span class="good">helps</span>') == 2
    assert body.count('<span class="bad">hurts</span>') == 1
    assert "tr.helps td" in html and "tr.hurts td" in html  # the row colours exist in the CSS


def test_paired_summary_names_what_helps_and_hurts(page):
    text = "".join(page.text)
    assert (
        "At n = 8, 2 of 9 ensemble curves keep more gold than the single model (the 95% CI of "
        "the paired difference lies above 0): subspace · UWO λ=0.5 (+0.250); views · UWO λ=0.5 "
        "(+0.200)." in text
    )
    assert "1 keeps less (CI below 0): bootstrap · WCO (-0.300)." in text
    assert "The single model's mean gold at n = 8 is 1.000." in text


def test_paired_summary_says_plainly_when_nothing_helps(factory):
    lab = factory.make_lab_v2()
    for row in lab["paired"]:
        row["ci_low"], row["ci_high"], row["verdict"] = -0.1, 0.1, "no difference"
    text = "".join(Page(report_html(lab)).text)
    assert (
        "No ensemble keeps more gold than the single model at n = 8, whatever its diversity "
        "option or aggregation: none of the 9 paired 95% CIs lies above 0. None keeps less "
        "either" in text
    )
    assert "keep more gold than the single model (the" not in text


def test_verdict_is_read_off_the_ci_when_missing(factory):
    lab = factory.make_lab_v2()
    for row in lab["paired"]:
        del row["verdict"]
    rows = Page(report_html(lab)).body_rows("paired")
    assert [cls for cls, _ in rows] == [
        None,
        "hurts",
        None,
        None,
        None,
        "helps",
        None,
        None,
        "helps",
    ]
    assert [cells[-1] for _, cells in rows].count("no difference") == 6


def test_diversity_table(page):
    rows = [cells for _, cells in page.body_rows("diversity")]
    assert rows == [
        ["bootstrap", "5", "0.041", "0.105", "0.110", "1.05"],
        ["subspace", "5", "0.187", "0.251", "0.402", "1.60"],
        ["views", "5", "0.253", "0.310", "—", "—"],
    ]
    caption = " ".join(page.text)
    assert "herding baseline" in caption and "grows under shift" in caption


def test_sections_order_and_toc(page):
    ids = [a["id"] for t, a in page.tags if t == "h2" and a.get("id")]
    assert ids[:4] == ["r0-gold", "r0-paired", "r0-diversity", "r0-curves"]
    assert "Does hedging keep more gold than the single model?" in page.text
    assert "Member diversity" in page.text


def test_examples_name_the_option(page):
    text = " ".join(page.text)
    assert "views ensemble's pick (UWO)" in text
    assert "Example 1: best of n = 8, views ensemble, aggregation UWO" in text


def test_header_lists_option_names_not_their_dicts(page):
    facts = [cells for cells in page.text if "bootstrap, subspace, views" in cells]
    assert facts == ["bootstrap, subspace, views"]
    assert not any("all_views" in t or "described at length" in t for t in page.text)
    assert "standardize" in page.text
    assert "mean, wco, uwo lam=0.5" in page.text  # aggregations: names and parameters


def test_accuracy_and_reliability_per_model(page, html):
    names = [cells[0] for _, cells in page.body_rows("accuracy")]
    assert names[1:4] == [f"{o} ensemble (K=5)" for o in COLORS]
    assert page.figures == [
        "gold-vs-kl",
        "proxy-vs-kl",
        "rank-corr",
        "reliability",
    ]
    assert page.errors == []


def test_version_1_has_no_v2_sections(lab_report):
    text = lab_report[1]
    assert "Does hedging keep more gold" not in text and "Member diversity" not in text
    assert "ensemble&#x27;s pick (UWO)" in text and "ensemble aggregation UWO" in text


def test_versions_accepted_and_rejected(lab):
    assert detect_kind(lab) == "lab"
    with pytest.raises(
        ReportError, match=r"of version 3, but this rewardhedge reads versions 1 and 2;"
    ):
        detect_kind({**lab, "version": 3})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lab: lab.update(paired={"a": 1}), "result.paired is dict, must be a list."),
        (
            lambda lab: lab["paired"].__setitem__(2, "row"),
            "result.paired[2] is str, must be a dict.",
        ),
        (
            lambda lab: lab["paired"][1].__setitem__("ci_low", "low"),
            "result.paired[1].ci_low == 'low', must be a number or null.",
        ),
        (
            lambda lab: lab["paired"][0].__setitem__("verdict", "maybe"),
            "result.paired[0].verdict == 'maybe', must be one of 'helps', 'hurts', "
            "'no difference' or null.",
        ),
        (
            lambda lab: lab["diversity"][1].pop("model"),
            "result.diversity[1] has no string 'model' (the diversity option it is about; keys "
            "present: disagreement_in, disagreement_shift, n_members, shift_ratio, "
            "starc_pairwise_mean).",
        ),
        (
            lambda lab: lab["diversity"][0].__setitem__("shift_ratio", True),
            "result.diversity[0].shift_ratio == True, must be a number or null.",
        ),
    ],
)
def test_malformed_v2_fields_are_named(factory, edit, message):
    lab = factory.make_lab_v2()
    edit(lab)
    with pytest.raises(ReportError, match="^" + re.escape(message) + "$"):
        report_html(lab)
