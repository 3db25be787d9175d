"""The explorers on workspaces that hold half a journey: voice-only (feedback pulled, no events),
behaviour-only (events, no feedback), and neither (empty), on the default map and on a map of
our own (other touchpoint names, labels, moments). The numbers shown equal a pandas computation
on the feedback or events; what the workspace cannot answer is said in one line; the kept
aggregates of a voice-only workspace read back; the notebooks `cxlab explore` serves build
their page without error."""
from __future__ import annotations

import ast
import json
from html import escape

import numpy as np
import pandas as pd
import pytest

import cxlab
import cxlab.widgets
from cxlab.datasets import simulate_journeys
from cxlab.exceptions import NothingToExploreError
from cxlab.explore import NO_EVENTS, NO_FEEDBACK, ExplorerData
from cxlab.funnel import funnel
from cxlab.widgets import NO_EVENTS_FUNNEL, ExplorerPage, FunnelExplorer, PainPointExplorer

from conftest import OWN_SURVEY_PULL

RANGES = {"nps": (0, 10), "stars": (1, 5), "csat": (1, 5)}   # the scales' ends, for a 0-100 score


def line(text: str) -> str:
    """A missing-half line as the page shows it (capitalised, HTML-escaped)."""
    return escape(text[:1].upper() + text[1:])


@pytest.fixture(scope="module")
def sim():
    return simulate_journeys(1_500, seed=7)


@pytest.fixture(scope="module")
def feedback(sim):
    """The simulation's feedback with a segment column of its own (a survey's panel field)."""
    fb = sim.feedback.copy()
    fb["segment"] = np.where(fb["customer_id"].str[-1].isin(list("01234")), "panel_a", "panel_b")
    return fb


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory, sim, feedback):
    """Workspace files: ``voice`` (feedback only), ``behaviour`` (events only), ``empty``."""
    d = tmp_path_factory.mktemp("partial")
    feedback.to_parquet(d / "feedback.parquet")
    sim.events.to_parquet(d / "events.parquet")
    with cxlab.connect(d / "voice.duckdb") as ws:
        ws.pull(d / "feedback.parquet", kind="feedback")
    with cxlab.connect(d / "behaviour.duckdb") as ws:
        ws.pull(d / "events.parquet")
    cxlab.connect(d / "empty.duckdb").close()
    return {name: d / f"{name}.duckdb" for name in ("voice", "behaviour", "empty")}


def page_of(path, journey=None) -> ExplorerPage:
    """The explorer page of a workspace file, as a new kernel opens it."""
    cxlab.widgets._DATA_CACHE.clear()
    with cxlab.connect(path, read_only=True) as ws:
        return ExplorerPage(ws, journey=journey, background=False)


def page_text(x: PainPointExplorer) -> str:
    """What the page says, customers' own words left out (they may name anything)."""
    import re

    meta = re.findall(r"<div class='meta'>(.*?)</div>", x.verbatims_html.value)
    return " ".join([h.value for h in (x.kpi_html, x.curve, x.table_html, x.funnel_html, x.terms_html)] + meta)


def by_hand(fb: pd.DataFrame) -> pd.DataFrame:
    """Per touchpoint: pieces of feedback and the mean 0-100 score, straight from the rows."""
    lo = fb["scale"].map(lambda s: RANGES[s][0])
    hi = fb["scale"].map(lambda s: RANGES[s][1])
    norm = (fb["score"] - lo) / (hi - lo) * 100
    return fb.assign(norm=norm).groupby("touchpoint").agg(n=("norm", "size"), mean=("norm", "mean"))


def nps_by_hand(fb: pd.DataFrame) -> float:
    s = fb.loc[fb["scale"] == "nps", "score"]
    return 100 * ((s >= 9).mean() - (s <= 6).mean())


# --------------------------------------------------------------------------- voice-only, default map
def test_voice_only_shows_the_voice_half_with_the_feedbacks_own_numbers(workspaces, feedback):
    page = page_of(workspaces["voice"])
    assert page.error is None
    x = page.explorer
    d = x.data
    assert (d.has_events, d.has_feedback) == (False, True)
    want = by_hand(feedback)
    got = x.table.set_index("touchpoint")
    np.testing.assert_array_equal(got.loc[want.index, "feedback"], want["n"])
    np.testing.assert_allclose(got.loc[want.index, "score_mean"], want["mean"], rtol=1e-12)
    assert got.drop(want.index)["feedback"].eq(0).all() and got["reached"].eq(0).all()
    # the voice table shows each touchpoint's volume and score, lowest score first
    rows = x.table_html.value.split("<tr")[2:]
    shown = [r.split("data-tp='")[1].split("'")[0] for r in rows]
    assert shown == list(want.sort_values(["mean"], kind="stable").index)
    worst = want["mean"].idxmin()
    assert f"{want.loc[worst, 'n']:,}</td><td class='n'>{want.loc[worst, 'mean']:.0f} (" in rows[0]
    # tiles the data can answer: NPS and CSAT, no conversion
    assert x.kpis["NPS"]["value"] == pytest.approx(nps_by_hand(feedback), abs=1e-9)
    assert ">NPS<" in x.kpi_html.value and ">CSAT<" in x.kpi_html.value and "Conversion" not in x.kpi_html.value
    # what needs events says so in one line; the curve, terms and verbatims are there
    assert line(NO_EVENTS) in x.table_html.value and line(NO_EVENTS) in x.funnel_html.value
    assert "Emotional curve" in x.curve.value and "cx-verb" in x.verbatims_html.value
    assert "@" not in x.verbatims_html.value.replace("&#x27;", "")          # masked
    assert x.refit_button.layout.display == "none" and x.rule not in _children(x.widget)
    # filters from the feedback: its days, channels and segment column
    assert d.first_day == feedback["ts"].min().floor("D") and d.last_day == feedback["ts"].max().floor("D")
    assert len(x.dates.options) == (d.last_day - d.first_day).days + 1
    assert list(x.channels.options) == sorted(feedback["channel"].unique())
    assert list(x.segments.options) == ["panel_a", "panel_b"]
    assert page.cache_line.value.count("data-cache='built'") == 1


def _children(widget):
    out = [widget]
    for c in getattr(widget, "children", ()):
        out += _children(c)
    return out


def test_voice_only_filters_pick_feedback_by_its_own_columns(workspaces, feedback):
    x = page_of(workspaces["voice"]).explorer
    d = x.data
    day = feedback["ts"].min().floor("D") + pd.Timedelta(days=40)
    x.channels.value = ["web"]
    x.segments.value = ["panel_a"]
    x.dates.value = (x.dates.options[0][1], day)
    sub = feedback[(feedback.channel == "web") & (feedback.segment == "panel_a") & (feedback.ts < day + pd.Timedelta(days=1))]
    want = by_hand(sub)
    got = x.table.set_index("touchpoint")
    np.testing.assert_array_equal(got.loc[want.index, "feedback"], want["n"])
    np.testing.assert_allclose(got.loc[want.index, "score_mean"], want["mean"], rtol=1e-12)
    assert got["feedback"].sum() == len(sub)
    assert x.kpis["NPS"]["n"] == int((sub.scale == "nps").sum())
    assert "Feedback through: web; in segment: panel_a" in x.kpi_html.value
    x.moment.value = "FMOT"
    assert set(x.table.touchpoint) == set(d.journey.moment("FMOT").touchpoints)
    assert set(x.verbatims.touchpoint) <= set(d.journey.moment("FMOT").touchpoints)
    with pytest.raises(ValueError, match="'fax' is not in the data"):
        d.selection(channels=["fax"])


def test_a_voice_only_state_is_kept_and_read_back(workspaces):
    first = page_of(workspaces["voice"]).explorer.data      # built (or read) by the tests above
    again = page_of(workspaces["voice"])
    d = again.explorer.data
    assert d is not first and d.cache_status == "read" and "data-cache='read'" in again.cache_line.value
    assert (d.has_events, d.has_feedback) == (False, True)
    assert (d.first_day, d.last_day, d.channels, d.segments) == (first.first_day, first.last_day,
                                                                 first.channels, first.segments)
    sel = d.selection(moment="SMOT", channels=["app", "web"], segments=["panel_b"])
    for name in ("table", "terms", "verbatims"):
        pd.testing.assert_frame_equal(getattr(d, name)(sel), getattr(first, name)(sel), obj=name)
    assert d.kpis(sel) == first.kpis(sel)
    meta = json.loads((d.cache_dir / "meta.json").read_text())
    assert meta["customers"] == {"channels": [], "segments": []} and meta["reach"]["first_day"] is None


def test_the_funnel_explorer_without_events_shows_one_line(workspaces):
    for name in ("voice", "empty"):
        with cxlab.connect(workspaces[name], read_only=True) as ws:
            f = FunnelExplorer(ws)
        assert f.table is None and f.routes is None
        assert line(NO_EVENTS_FUNNEL) in f.widget.children[-1].value


# --------------------------------------------------------------------------- behaviour-only, empty
def test_behaviour_only_says_the_voice_is_missing_and_shows_the_rest(workspaces, sim):
    page = page_of(workspaces["behaviour"])
    x = page.explorer
    assert page.error is None and (x.data.has_events, x.data.has_feedback) == (True, False)
    jm = cxlab.JourneyMap.default()
    reached = sim.events[sim.events.touchpoint.isin(jm.touchpoints)].groupby("touchpoint")["customer_id"].nunique()
    got = x.table.set_index("touchpoint")["reached"]
    np.testing.assert_array_equal(got.loc[reached.index], reached)
    assert x.funnel["n"].tolist() == funnel(sim.events, window=jm.conversion_window)["n"].tolist()
    for h in (x.curve, x.terms_html, x.verbatims_html):
        assert line(NO_FEEDBACK) in h.value
    assert "Conversion" in x.kpi_html.value and ">NPS<" not in x.kpi_html.value and ">CSAT<" not in x.kpi_html.value
    assert "pp-voice" not in x.table_html.value and line(NO_EVENTS) not in page_text(x)
    assert x.refit_button.layout.display != "none"


def test_an_empty_workspace_says_what_to_pull(workspaces):
    page = page_of(workspaces["empty"])
    assert isinstance(page.error, NothingToExploreError) and page.explorer is None
    assert "no journey events and no feedback yet" in page.stage.value and "--kind feedback" in page.stage.value
    assert "Traceback" not in page.stage.value and "could not open" not in page.stage.value
    with cxlab.connect(workspaces["empty"], read_only=True) as ws, pytest.raises(NothingToExploreError):
        ExplorerData(ws)


# --------------------------------------------------------------------------- a map of our own
@pytest.fixture(scope="module")
def own(tmp_path_factory, own_journey):
    d = tmp_path_factory.mktemp("own_partial")
    jm = cxlab.JourneyMap.from_yaml(own_journey["journey"])
    with cxlab.connect(d / "voice.duckdb") as ws:
        ws.pull(own_journey["survey"], **OWN_SURVEY_PULL)
    with cxlab.connect(d / "behaviour.duckdb") as ws:
        ws.pull(own_journey["events"])
    return {"voice": d / "voice.duckdb", "behaviour": d / "behaviour.duckdb", "jm": jm,
            "survey": pd.read_csv(own_journey["survey"])}


def test_voice_only_on_an_own_map_names_its_touchpoints_and_no_default_one(own):
    jm, survey = own["jm"], own["survey"]
    x = page_of(own["voice"], journey=jm).explorer
    want = by_hand(survey.rename(columns={"pagina": "touchpoint", "voto": "score"}).assign(scale="nps"))
    got = x.table.set_index("touchpoint")
    np.testing.assert_array_equal(got.loc[want.index, "feedback"], want["n"])
    np.testing.assert_allclose(got.loc[want.index, "score_mean"], want["mean"], rtol=1e-12)
    s = survey["voto"]
    assert x.kpis["NPS"]["value"] == pytest.approx(100 * ((s >= 9).mean() - (s <= 6).mean()), abs=1e-9)
    assert ">CSAT<" not in x.kpi_html.value            # an NPS-only survey: no CSAT tile to answer
    text = page_text(x)
    assert all(escape(jm.label(tp)) in x.table_html.value for tp in want.index)
    default = set(cxlab.JourneyMap.default().touchpoints) - set(jm.touchpoints)
    assert not [tp for tp in default if tp in text]
    assert [v for _, v in x.moment.options] == ["ALL", *jm.moment_ids]
    assert line(NO_EVENTS) in x.funnel_html.value
    assert " · nan" not in x.verbatims_html.value and x.channels.options == ()   # the survey has no channel
    assert x.channels not in _children(x.widget)


def test_behaviour_only_on_an_own_map(own):
    jm = own["jm"]
    x = page_of(own["behaviour"], journey=jm).explorer
    assert line(NO_FEEDBACK) in x.verbatims_html.value and x.table["reached"].sum() > 0
    default = set(cxlab.JourneyMap.default().touchpoints) - set(jm.touchpoints)
    assert not [tp for tp in default if tp in page_text(x)]
    assert "10 days" in x.funnel_html.value
    with cxlab.connect(own["behaviour"], read_only=True) as ws:    # the map's 10-day window, not a preset
        f = FunnelExplorer(ws, journey=jm)
        want = funnel(ws, journey=jm, window="10D")["n"].tolist()
    assert f.table is not None and f.table["n"].tolist() == want
    assert f.window.value == "10D" and ("10 days", "10D") in f.window.options


# --------------------------------------------------------------------------- what `cxlab explore` serves
def run_explorer_notebook(name: str, workspace, journey=None):
    """The notebook `cxlab explore NAME` serves, run in this process as Voilà runs it (its
    parameters set as the CLI sets them): the value of its last cell, and the workspace it opened."""
    import nbformat

    from cxlab.cli import _explore_notebook

    cells = [c.source for c in nbformat.read(_explore_notebook(name), 4).cells if c.cell_type == "code"]
    scope = {"__name__": "__explore__"}
    exec(cells[0], scope)                                  # the parameters cell, then the CLI's values
    scope.update(workspace=str(workspace), journey_path=str(journey or ""))
    body = ast.parse("\n".join(cells[1:]))
    last = ast.Expression(body.body.pop().value)
    exec(compile(body, name, "exec"), scope)
    return eval(compile(last, name, "eval"), scope), scope["ws"]


@pytest.mark.parametrize("kind", ["voice", "behaviour", "empty"])
def test_the_notebooks_cxlab_explore_serves_build_their_page(workspaces, kind):
    cxlab.widgets._DATA_CACHE.clear()
    page, ws = run_explorer_notebook("pain_points", workspaces[kind])
    try:
        assert page.ready.wait(120)
    finally:
        ws.close()
    if kind == "empty":
        assert isinstance(page.error, NothingToExploreError) and "cx-missing" in page.stage.value
    else:
        assert page.error is None and page.explorer is not None
        assert page.widget.children[0] is page.explorer.widget
    f, ws = run_explorer_notebook("funnel", workspaces[kind])
    ws.close()
    assert (f.table is None) == (kind != "behaviour")


# --------------------------------------------------------------------------- a real log with its own map
@pytest.mark.realdata
def test_the_bpic_2012_loan_log_opens_behaviour_only_with_its_own_map(tmp_path):
    """A real event log (no feedback, no channel) with its own map: reach per activity equals
    pandas on the export, the voice panels say they need feedback, no channel filter is offered,
    and the funnel explorer runs with the map's 90-day window."""
    from conftest import shared_file

    from cxlab.reports import notebook_path

    loans = shared_file("bpic2012_loans", "bpic2012_events.csv.gz")
    jm = cxlab.JourneyMap.from_yaml(notebook_path("dropoff_real_data").parent / "bpic2012_journey.yml")
    with cxlab.connect(tmp_path / "bpic.duckdb") as ws:
        ws.pull(loans, mapping={"customer_id": "case_id", "touchpoint": "activity", "ts": "timestamp"}, journey=jm)
    page = page_of(tmp_path / "bpic.duckdb", journey=jm)
    x = page.explorer
    assert page.error is None and (x.data.has_events, x.data.has_feedback) == (True, False)
    raw = pd.read_csv(loans, usecols=["case_id", "activity"])
    want = raw[raw.activity.isin(jm.touchpoints)].groupby("activity")["case_id"].nunique()
    got = x.table.set_index("touchpoint")["reached"]
    np.testing.assert_array_equal(got.loc[want.index], want)
    assert x.funnel["n"].iloc[0] == raw.loc[raw.activity == jm.funnel[0], "case_id"].nunique() == 13_087
    assert line(NO_FEEDBACK) in x.curve.value and line(NO_FEEDBACK) in x.verbatims_html.value
    assert x.data.channels == () and x.channels not in _children(x.widget)
    default = set(cxlab.JourneyMap.default().touchpoints) - set(jm.touchpoints)
    assert not [tp for tp in default if tp in page_text(x)]
    with cxlab.connect(tmp_path / "bpic.duckdb", read_only=True) as ws:
        f = FunnelExplorer(ws, journey=jm)
        assert f.window.value == "90D"
        assert f.table["n"].tolist() == funnel(ws, journey=jm, window="90D")["n"].tolist()
