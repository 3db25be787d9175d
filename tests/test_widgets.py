"""The explorers' state: each selection shows the numbers of an independent computation
(pain_points, kpis, funnel, distinctive_terms on the filtered tables), empty selections say
so, and bad selections are refused."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cxlab
from cxlab.datasets import simulate_journeys
from cxlab.explore import ExplorerData
from cxlab.funnel import funnel
from cxlab.kpis import conversion_rate, csat, nps
from cxlab.painpoints import pain_points
from cxlab.sentiment import distinctive_terms
from cxlab.widgets import FunnelExplorer, PainPointExplorer, emotion_curve_svg

VOICE = ["feedback", "score_mean", "score_ci_low", "score_ci_high", "score_diff", "score_p", "score_q",
         "share_negative", "share_negative_ci_low", "share_negative_ci_high", "sentiment_mean",
         "sentiment_ci_low", "sentiment_ci_high", "sentiment_diff", "sentiment_p", "sentiment_q"]
NUMERIC = ["reached", *VOICE, "at_risk", "left", "left_after", "left_after_ci_low", "left_after_ci_high",
           "dropoff_or", "dropoff_ci_low", "dropoff_ci_high", "dropoff_p", "dropoff_q", "customers_lost",
           "value_at_risk", "rank"]


@pytest.fixture(scope="module")
def sim():
    return simulate_journeys(6_000, seed=11)


@pytest.fixture(scope="module")
def explorer(sim):
    return PainPointExplorer((sim.events, sim.feedback))


def assert_same(got: pd.DataFrame, want: pd.DataFrame, columns):
    got = got.set_index("touchpoint").sort_index()
    want = want.set_index("touchpoint").sort_index()
    assert list(got.index) == list(want.index)
    for c in columns:
        a, b = got[c].to_numpy("float64"), want[c].to_numpy("float64")
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=c)


def filter_frames(sim, *, channels=None, segments=None, start=None, end=None):
    """The selection applied to the raw frames, independently of cxlab.explore."""
    ev, fb = sim.events, sim.feedback
    if channels is not None:
        ev, fb = ev[ev.channel.isin(channels)], fb[fb.channel.isin(channels)]
    if segments is not None:
        first_seg = sim.events.sort_values("ts").groupby("customer_id")["segment"].first()
        ev = ev[ev.segment.isin(segments)]
        fb = fb[fb.customer_id.map(first_seg).isin(segments)]
    if start is not None:
        lo = pd.Timestamp(start, tz="UTC")
        ev, fb = ev[ev.ts >= lo], fb[fb.ts >= lo]
    if end is not None:
        hi = pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
        ev, fb = ev[ev.ts < hi], fb[fb.ts < hi]
    return ev.reset_index(drop=True), fb.reset_index(drop=True)


def test_selecting_a_moment_shows_its_touchpoints_with_pain_points_numbers(sim, explorer):
    ref = pain_points((sim.events, sim.feedback), sentiment_model=explorer.data.sentiment_model)
    jm = cxlab.JourneyMap.default()
    for moment in ("ZMOT", "FMOT", "SMOT", "UMOT", "ALL"):
        explorer.moment.value = moment
        want = ref if moment == "ALL" else ref[ref.moment == moment]
        assert set(explorer.table.touchpoint) == {x for x in jm.touchpoints
                                                  if moment == "ALL" or jm.moment_of(x) == moment}
        assert_same(explorer.table, want, NUMERIC)
        assert (explorer.table.set_index("touchpoint")["flag"].sort_index()
                == want.set_index("touchpoint")["flag"].sort_index()).all()
        shown = set(explorer.table.touchpoint)
        assert all(f"<b>{x}</b>" in explorer.table_html.value for x in shown)
        others = set(jm.touchpoints) - shown
        assert not any(f"<b>{x}</b>" in explorer.table_html.value for x in others)
    # the planted pain point is the first pain point of its moment, after the pop-up that
    # puts more money at risk without a complaint (one priority scale)
    explorer.moment.value = "FMOT"
    ranked = explorer.table.sort_values("rank")
    assert ranked[ranked.pain_point].touchpoint.iloc[0] == "registration_form"
    assert ranked.touchpoint.iloc[0] == "popup_shown" and ranked.flag.iloc[0] == "behaviour"
    assert "voice + behaviour" in explorer.table_html.value


def test_a_touchpoint_subset_narrows_the_table_and_the_kpis(sim, explorer):
    explorer.moment.value = "SMOT"
    explorer.touchpoints.value = ["delivery", "return_request"]
    assert sorted(explorer.table.touchpoint) == ["delivery", "return_request"]
    fb = sim.feedback[sim.feedback.touchpoint.isin(["delivery", "return_request"])]
    want = nps(fb)
    assert explorer.kpis["NPS"]["value"] == pytest.approx(want["nps"].iloc[0], abs=1e-9)
    assert explorer.kpis["NPS"]["ci_low"] == pytest.approx(want["ci_low"].iloc[0], abs=1e-9)
    assert explorer.kpis["NPS"]["n"] == want["n"].iloc[0]
    explorer.moment.value = "ALL"


def test_channel_filter_equals_pain_points_on_the_filtered_tables_and_refit_makes_it_exact(sim, explorer):
    explorer.moment.value = "ALL"
    explorer.channels.value = ["app", "web"]
    ev, fb = filter_frames(sim, channels=["app", "web"])
    ref = pain_points((ev, fb), sentiment_model=explorer.data.sentiment_model)
    steps = set(cxlab.JourneyMap.default().funnel)
    off_funnel = ref[~ref.touchpoint.isin(steps)]
    got = explorer.table
    assert_same(got, ref, ["reached", *VOICE])
    assert_same(got[~got.touchpoint.isin(steps)], off_funnel, ["at_risk", "left", "left_after"])
    # before the refit the odds ratios are the whole journey's, and the panel says so
    assert_same(got, explorer.data.base, ["dropoff_or"])
    assert "whole journey" in explorer.status.value
    explorer.refit_button.click()
    assert explorer.table.attrs["behaviour"] == "selection"
    assert_same(explorer.table, ref, NUMERIC)
    assert "fitted on this selection" in explorer.status.value
    explorer.reset_button.click()
    assert explorer.data.selection(channels=list(explorer.channels.value)).channels is None


def test_segment_and_date_filters(sim, explorer):
    explorer.moment.value = "ALL"
    days = explorer._days
    explorer.segments.value = ["new"]
    explorer.dates.index = (30, 150)
    start, end = days[30], days[150]
    ev, fb = filter_frames(sim, segments=["new"], start=start.strftime("%Y-%m-%d"), end=end.strftime("%Y-%m-%d"))
    ref = pain_points((ev, fb), sentiment_model=explorer.data.sentiment_model)
    steps = set(cxlab.JourneyMap.default().funnel)
    assert_same(explorer.table, ref, ["reached", *VOICE])
    assert_same(explorer.table[~explorer.table.touchpoint.isin(steps)], ref[~ref.touchpoint.isin(steps)],
                ["at_risk", "left"])
    # KPI tiles: NPS and stars CSAT of the filtered feedback; conversion of customers who entered then
    want_nps = nps(fb)
    assert explorer.kpis["NPS"]["value"] == pytest.approx(want_nps["nps"].iloc[0], abs=1e-9)
    want_csat = csat(fb, scale="stars")
    top2 = want_csat[want_csat.metric == "top2_box"]
    assert explorer.kpis["CSAT"]["value"] == pytest.approx(top2["value"].iloc[0], abs=1e-12)
    conv = conversion_rate(sim.events, by="segment", period="D")
    conv = conv[(conv.segment == "new") & (conv.period >= start) & (conv.period <= end)]
    assert explorer.kpis["Conversion"]["n"] == conv["n"].sum()
    assert explorer.kpis["Conversion"]["value"] == pytest.approx(conv["successes"].sum() / conv["n"].sum())
    explorer.reset_button.click()


def test_funnel_panel_equals_the_funnel_and_follows_the_moment(sim, explorer):
    explorer.moment.value = "ALL"
    explorer.segments.value = ["loyal"]
    jm = cxlab.JourneyMap.default()
    by_segment = funnel(sim.events, window=jm.conversion_window, by="segment")
    want = by_segment[by_segment.segment == "loyal"]
    assert explorer.funnel["n"].tolist() == want["n"].tolist()
    np.testing.assert_allclose(explorer.funnel["step_ci_low"], want["step_ci_low"], rtol=1e-12)
    explorer.moment.value = "ZMOT"
    assert "No funnel step at ZMOT" in explorer.funnel_html.value
    explorer.moment.value = "FMOT"
    assert "add_to_cart" in explorer.funnel_html.value
    explorer.reset_button.click()


def test_complaint_terms_are_those_of_distinctive_terms_and_name_the_planted_form(sim, explorer):
    explorer.moment.value = "FMOT"
    explorer.touchpoints.value = ["registration_form"]
    want = distinctive_terms(sim.feedback, sentiment="negative", stop_words="auto",
                             groups=["registration_form"], examples=0).head(10)
    got = explorer.terms
    assert got["term"].tolist() == want["term"].tolist()
    np.testing.assert_allclose(got["z"], want["z"], rtol=1e-12)
    assert got["term"].iloc[0] in {"registrazione", "registration"}
    assert got["term"].iloc[0] in explorer.terms_html.value
    explorer.moment.value = "ALL"
    assert "Pick a moment or touchpoints" in explorer.terms_html.value


def test_verbatims_are_the_newest_of_the_selection_and_masked(sim, explorer):
    explorer.moment.value = "SMOT"
    explorer.touchpoints.value = ["return_request"]
    v = explorer.verbatims
    assert len(v) == 8 and set(v.touchpoint) == {"return_request"}
    fb = sim.feedback[(sim.feedback.touchpoint == "return_request") & sim.feedback.text.notna()]
    assert v["ts"].tolist() == fb.sort_values("ts", ascending=False)["ts"].head(8).tolist()
    assert not v["text"].str.contains(r"[\w.]+@[\w.]+\.\w+|IT\d{2}[A-Z]\d{10}", regex=True).any()
    html = explorer.verbatims_html.value
    assert html.count("cx-verb") >= 8
    explorer.moment.value = "ALL"


def test_empty_selections_say_so_instead_of_failing(explorer):
    explorer.moment.value = "FMOT"
    explorer.touchpoints.value = []
    assert explorer.table is None
    assert "No touchpoint selected" in explorer.table_html.value
    explorer.touchpoints.value = ["checkout"]
    explorer.channels.value = []
    assert "No channel selected" in explorer.table_html.value
    explorer.reset_button.click()
    explorer.moment.value = "ALL"
    assert explorer.table is not None and len(explorer.table) == len(cxlab.JourneyMap.default().touchpoints)


def test_a_filter_without_feedback_keeps_the_table_and_says_there_is_no_curve(sim):
    events = sim.events
    fb = sim.feedback[sim.feedback.channel != "store"]
    x = PainPointExplorer((events, fb))
    x.channels.value = ["store"]
    assert x.table is not None and x.table["feedback"].sum() == 0
    assert "No scored feedback" in x.curve.value
    assert x.kpis["NPS"] is None and "no answers" in x.kpi_html.value


def test_bad_selections_are_refused(explorer):
    d = explorer.data
    with pytest.raises(ValueError, match="moment='XMOT'"):
        d.selection(moment="XMOT")
    with pytest.raises(ValueError, match="'fax' is not in the data; known"):
        d.selection(channels=["fax"])
    with pytest.raises(ValueError, match="not in the journey map"):
        d.selection(touchpoints=["home_pag"])


def test_explorer_data_needs_events():
    with pytest.raises(ValueError, match="needs events"):
        ExplorerData((None, simulate_journeys(300, seed=1).feedback))


def test_emotion_curve_svg_marks_pain_points_and_the_moment(explorer):
    svg = emotion_curve_svg(explorer.data.base, highlight="FMOT")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "registration_form" in svg and "stroke='#c0392b'" in svg
    assert svg.count("<circle") >= len(explorer.data.base.dropna(subset=["score_mean"]))


def test_funnel_explorer_controls_give_funnel_and_escape_routes(sim):
    from cxlab.paths import escape_routes

    jm = cxlab.JourneyMap.default()
    x = FunnelExplorer(sim.events)
    assert x.table["n"].tolist() == funnel(sim.events, window=jm.conversion_window)["n"].tolist()
    x.order.value = "open"
    assert x.table["n"].tolist() == funnel(sim.events, window=jm.conversion_window, order="open")["n"].tolist()
    x.breakdown.value = "channel"
    want = funnel(sim.events, window=jm.conversion_window, order="open", by="channel")
    assert x.table["n"].tolist() == want["n"].tolist()
    assert all(f"<td>{level}</td>" in x.table_html.value for level in want["channel"].unique())
    x.breakdown.value = ""
    x.window.value = "1D"
    assert x.table["n"].tolist() == funnel(sim.events, window="1D", order="open")["n"].tolist()
    x.escape_step.value = "checkout"
    want = escape_routes(sim.events, step="checkout", window="1D")
    assert x.routes.summary["left"].iloc[0] == want.summary["left"].iloc[0]
    assert "Leavers&#x27; last touchpoint" in x.routes_html.value or "last touchpoint" in x.routes_html.value
    x.steps.value = ["home_page"]
    assert x.table is None and "at least two steps" in x.table_html.value
    x.steps.value = ["home_page", "checkout"]
    assert x.table["touchpoint"].tolist() == ["home_page", "checkout"]


def test_cxlab_explore_refuses_what_it_cannot_serve_safely(tmp_path, capsys):
    from cxlab.cli import main

    ws_path = tmp_path / "ws.duckdb"
    assert main(["explore", "--workspace", str(ws_path)]) == 2
    assert "does not exist: run `cxlab demo`" in capsys.readouterr().err
    cxlab.connect(ws_path).close()
    for token in ("", "short"):
        assert main(["explore", "--workspace", str(ws_path), "--token", token]) == 2
        assert "at least 16 characters" in capsys.readouterr().err
    assert main(["explore", "pain_point", "--workspace", str(ws_path)]) == 2
    assert "did you mean 'pain_points'" in capsys.readouterr().err


@pytest.mark.notebooks
@pytest.mark.slow
def test_explorer_notebooks_run_in_a_kernel_as_in_jupyterlab(tmp_path, sim):
    import nbformat
    import papermill

    from cxlab.reports import _repo_root

    sim.events.to_parquet(tmp_path / "events.parquet")
    sim.feedback.to_csv(tmp_path / "feedback.csv", index=False)
    ws_path = tmp_path / "ws.duckdb"
    with cxlab.connect(ws_path) as ws:
        ws.pull(tmp_path / "events.parquet")
        ws.pull(tmp_path / "feedback.csv", kind="feedback")
    for name in ("pain_points", "funnel"):
        out = tmp_path / f"{name}.ipynb"
        papermill.execute_notebook(str(_repo_root() / "notebooks" / "explore" / f"{name}.ipynb"), str(out),
                                   parameters={"workspace": str(ws_path)}, kernel_name="python3",
                                   progress_bar=False, cwd=str(tmp_path))
        outputs = [o for c in nbformat.read(out, 4).cells for o in c.get("outputs", [])]
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), name
        assert not any(o.get("output_type") == "error" for o in outputs), name


def test_the_aggregates_are_built_once_per_workspace_content(tmp_path, sim):
    from cxlab.widgets import explorer_data

    sim.events.to_parquet(tmp_path / "events.parquet")
    with cxlab.connect(tmp_path / "ws.duckdb") as ws:
        ws.pull(tmp_path / "events.parquet")
        first = explorer_data(ws)
        assert explorer_data(ws) is first                       # a second explorer reuses them
        assert PainPointExplorer(ws).data is first
        sim.feedback.to_csv(tmp_path / "feedback.csv", index=False)
        ws.pull(tmp_path / "feedback.csv", kind="feedback")     # new content: built again
        assert explorer_data(ws) is not first
