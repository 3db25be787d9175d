"""The explorers' state: each selection shows the numbers of an independent computation
(pain_points, kpis, funnel, distinctive_terms on the filtered tables), empty selections say
so, and bad selections are refused."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cxlab
import cxlab.widgets
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


def picked_customers(events, *, channels=None, segments=None, rule="ever"):
    """The customers a channel or segment filter picks, independently of cxlab.explore: by the
    channel and segment of the first event (the smallest among ties), or by any event."""
    keep = set(events.customer_id)
    if rule == "entry":
        first = events[events.ts == events.groupby("customer_id")["ts"].transform("min")]
        first = first.groupby("customer_id")[["channel", "segment"]].min()
        for col, levels in (("channel", channels), ("segment", segments)):
            if levels is not None:
                keep &= set(first.index[first[col].isin(levels)])
    else:
        for col, levels in (("channel", channels), ("segment", segments)):
            if levels is not None:
                keep &= set(events.loc[events[col].isin(levels), "customer_id"])
    return keep


def filter_frames(sim, *, channels=None, segments=None, start=None, end=None, rule="ever"):
    """The selection applied to the raw frames, independently of cxlab.explore: the picked
    customers' whole journeys (every event and piece of feedback, every channel); feedback of
    no known customer by its own channel."""
    ev, fb = sim.events, sim.feedback
    if channels is not None or segments is not None:
        who = picked_customers(ev, channels=channels, segments=segments, rule=rule)
        ev = ev[ev.customer_id.isin(who)]
        mine = fb.customer_id.isin(who)
        if segments is None:
            mine |= ~fb.customer_id.isin(set(sim.events.customer_id)) & fb.channel.isin(channels)
        fb = fb[mine]
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
        assert all(f"data-tp='{x}'" in explorer.table_html.value for x in shown)
        others = set(jm.touchpoints) - shown
        assert not any(f"data-tp='{x}'" in explorer.table_html.value for x in others)
        # business labels, money in the map's currency without cents
        top = explorer.table.sort_values("rank").iloc[0]
        assert f"<b>{jm.label(top.touchpoint)}</b>" in explorer.table_html.value
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


def converted_by_hand(ev, jm):
    """Customers who reached the conversion touchpoint within the window of their first funnel entry."""
    entry = ev[ev.touchpoint == jm.funnel[0]].groupby("customer_id")["ts"].min()
    conv = ev[ev.touchpoint == jm.conversion].merge(entry.rename("t1"), on="customer_id")
    ok = (conv.ts >= conv.t1) & (conv.ts <= conv.t1 + pd.Timedelta(jm.conversion_window))
    return set(conv.loc[ok, "customer_id"]), set(entry.index)


@pytest.mark.parametrize("rule", ["ever", "entry"])
def test_a_channel_picks_customers_and_keeps_their_whole_journeys(sim, explorer, rule):
    jm = cxlab.JourneyMap.default()
    explorer.reset_button.click()
    explorer.rule.value = rule
    channel = "app" if rule == "ever" else "web"
    explorer.channels.value = [channel]
    ev, fb = filter_frames(sim, channels=[channel], rule=rule)
    assert ev.channel.nunique() > 1                     # whole journeys: every channel of those customers
    # reached, at risk and left of every touchpoint, funnel steps included, and the voice: pain_points
    # on the picked customers' whole journeys
    ref = pain_points((ev, fb), sentiment_model=explorer.data.sentiment_model)
    assert_same(explorer.table, ref, ["reached", *VOICE, "at_risk", "left", "left_after"])
    # the same by hand: reach and conversion over the picked customers' full event history
    reached = ev.groupby("touchpoint")["customer_id"].nunique()
    got = explorer.table.set_index("touchpoint")["reached"]
    assert (got[reached.index] == reached).all() and got.drop(reached.index).eq(0).all()
    converted, entered = converted_by_hand(ev, jm)
    assert explorer.kpis["Conversion"]["n"] == len(entered)
    assert explorer.kpis["Conversion"]["value"] == pytest.approx(len(converted) / len(entered))
    assert explorer.funnel["n"].tolist() == funnel(ev, window=jm.conversion_window)["n"].tolist()
    # converters who bought through another channel stay converted; a touchpoint after the purchase
    # is not "left" by them
    buys = ev[(ev.touchpoint == jm.conversion) & ev.customer_id.isin(converted)]
    switchers = set(buys.loc[buys.channel != channel, "customer_id"])
    assert len(switchers) > 20
    bought = set(ev.loc[ev.touchpoint == jm.conversion, "customer_id"])
    after = [x for x in jm.touchpoints if jm.moment_of(x) == "SMOT"]
    for tp in after:
        users = set(ev.loc[ev.touchpoint == tp, "customer_id"])
        assert explorer.table.set_index("touchpoint").loc[tp, "left"] == len(users - bought), tp
    # the page says who is selected, in plain words
    words = "ever used" if rule == "ever" else "first came through"
    assert f"Customers who {words}: {channel}" in explorer.kpi_html.value
    explorer.reset_button.click()
    explorer.rule.value = "ever"


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
    assert "Add to cart" in explorer.funnel_html.value and "data-tp='add_to_cart'" in explorer.funnel_html.value
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
    store = picked_customers(events, channels=["store"])        # no piece of feedback from them
    fb = sim.feedback[~sim.feedback.customer_id.isin(store)]
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


def test_explorer_data_needs_events_or_feedback():
    from cxlab.exceptions import NothingToExploreError

    with pytest.raises(NothingToExploreError, match="no journey events and no feedback"):
        ExplorerData((None, None))
    empty = simulate_journeys(300, seed=1).feedback.head(0)
    with pytest.raises(NothingToExploreError, match="--kind feedback"):
        ExplorerData((None, empty))


def test_emotion_curve_svg_marks_pain_points_and_the_moment(explorer):
    svg = emotion_curve_svg(explorer.data.base, highlight="FMOT")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "registration_form" in svg and "stroke='#c0392b'" in svg
    labelled = emotion_curve_svg(explorer.data.base, label=explorer.data.journey.label)
    assert "Registration form" in labelled and "registration_form" not in labelled
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


# --------------------------------------------------------------------------- the aggregates kept on disk
@pytest.fixture(scope="module")
def small_ws(tmp_path_factory, sim):
    """A workspace file of the module's simulation (events and feedback pulled)."""
    d = tmp_path_factory.mktemp("cache")
    sim.events.to_parquet(d / "events.parquet")
    sim.feedback.to_parquet(d / "feedback.parquet")
    with cxlab.connect(d / "ws.duckdb") as ws:
        ws.pull(d / "events.parquet")
        ws.pull(d / "feedback.parquet", kind="feedback")
    return d / "ws.duckdb"


def _copy_ws(small_ws, tmp_path):
    import shutil

    shutil.copy(small_ws, tmp_path / "ws.duckdb")
    return tmp_path / "ws.duckdb"


def test_the_aggregates_are_kept_next_to_the_workspace_and_read_back_without_fitting(small_ws, tmp_path,
                                                                                   monkeypatch):
    import cxlab.painpoints
    from cxlab._explore_cache import cache_root

    path = _copy_ws(small_ws, tmp_path)
    with cxlab.connect(path, read_only=True) as ws:
        first = ExplorerData(ws)
        assert first.cache_status == "built"
        assert first.cache_dir.parent == cache_root(path) == tmp_path / "ws.duckdb.cache" / "explorer"
        assert not [p for p in cache_root(path).iterdir() if p.name.startswith(".tmp")]

        def no_fit(*args, **kwargs):
            raise AssertionError("the second reader fitted a model")

        monkeypatch.setattr(cxlab.painpoints, "fit_voice_model", no_fit)
        monkeypatch.setattr(cxlab.painpoints, "pain_points", no_fit)
        stages = []
        second = ExplorerData(ws, on_stage=lambda done, total, name: stages.append(name))
    assert second.cache_status == "read" and second.cache_dir == first.cache_dir
    assert stages == ["reading the aggregates kept with the workspace", "ready"]
    pd.testing.assert_frame_equal(second.base, first.base)
    assert second.base.attrs["value_per_customer"] == first.base.attrs["value_per_customer"]
    sel = first.selection(moment="FMOT", channels=["app", "web"], segments=["new", "loyal"])
    for name in ("table", "funnel_table", "terms", "verbatims"):
        pd.testing.assert_frame_equal(getattr(second, name)(sel), getattr(first, name)(sel), obj=name)
    assert second.kpis(sel) == first.kpis(sel)
    texts = ["terrible, never again", "lovely, quick delivery"]
    np.testing.assert_allclose(second.sentiment_model.predict_proba(texts), first.sentiment_model.predict_proba(texts))


def test_a_changed_workspace_gets_new_aggregates(small_ws, tmp_path, sim):
    path = _copy_ws(small_ws, tmp_path)
    with cxlab.connect(path, read_only=True) as ws:
        before = ExplorerData(ws)
    extra = sim.feedback.head(40).assign(feedback_id=lambda f: f["feedback_id"] + "-again",
                                         score=0.0, scale="nps")
    extra.to_parquet(tmp_path / "more.parquet")
    with cxlab.connect(path) as ws:
        ws.pull(tmp_path / "more.parquet", kind="feedback")
    with cxlab.connect(path, read_only=True) as ws:
        after = ExplorerData(ws)
    assert after.cache_status == "built" and after.cache_dir != before.cache_dir
    assert len(after.feedback) == len(before.feedback) + 40
    assert after.base["feedback"].sum() == before.base["feedback"].sum() + 40


def test_a_damaged_file_is_rebuilt_with_a_warning(small_ws, tmp_path):
    path = _copy_ws(small_ws, tmp_path)
    with cxlab.connect(path, read_only=True) as ws:
        first = ExplorerData(ws)
        for name in ("reach.npz", "sentiment.npz", "base.parquet"):
            f = first.cache_dir / name
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])      # truncated
            with pytest.warns(RuntimeWarning, match=f"explorer cache .* is damaged .*{name}.*rebuilding"):
                again = ExplorerData(ws)
            assert again.cache_status == "rebuilt"
            pd.testing.assert_frame_equal(again.base, first.base)
            assert ExplorerData(ws).cache_status == "read"                # whole again
        (first.cache_dir / "meta.json").write_text("{not json")
        with pytest.warns(RuntimeWarning, match="damaged"):
            assert ExplorerData(ws).cache_status == "rebuilt"


def test_an_unwritable_cache_folder_keeps_the_aggregates_in_memory(small_ws, tmp_path, monkeypatch):
    import errno
    import tempfile

    path = _copy_ws(small_ws, tmp_path)
    (tmp_path / "ws.duckdb.cache").write_text("in the way")                   # cannot become a folder
    with cxlab.connect(path, read_only=True) as ws:
        d = ExplorerData(ws)
        assert d.cache_status == "memory" and "\n" not in d.cache_note
        assert "could not be kept next to the workspace" in d.cache_note and "in memory" in d.cache_note
        (tmp_path / "ws.duckdb.cache").unlink()

        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))

        monkeypatch.setattr(tempfile, "mkdtemp", read_only)
        d = ExplorerData(ws)
    assert d.cache_status == "memory" and "read-only file system" in d.cache_note
    assert d.table(d.selection(moment="SMOT")).shape[0] > 0


def test_the_kept_aggregates_hold_no_raw_text_id_or_pseudonym_key(small_ws, tmp_path, sim):
    import json
    import re

    path = _copy_ws(small_ws, tmp_path)
    with cxlab.connect(path, read_only=True) as ws:
        key = ws.pseudonym_key()
        d = ExplorerData(ws)
    files = sorted(p.name for p in d.cache_dir.iterdir())
    assert files == ["base.parquet", "customers.npz", "dropoff_model.parquet", "feedback.parquet",
                     "meta.json", "moments.npz", "reach.npz", "sentiment.npz", "terms.npz"]
    fb = pd.read_parquet(d.cache_dir / "feedback.parquet")
    assert not {"text", "customer_id", "feedback_id"} & set(fb.columns)
    email = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
    assert sim.feedback["text"].str.contains(email).any()                      # there was something to mask
    assert not fb["_masked"].dropna().str.contains(email).any()
    ids = set(sim.events["customer_id"].astype(str))
    for name in files:
        raw = (d.cache_dir / name).read_bytes()
        assert key not in raw and key.hex().encode() not in raw, name
        if name.endswith(".parquet"):
            frame = pd.read_parquet(d.cache_dir / name)
            text = frame.astype(str).to_numpy().ravel()
            assert not ids & set(text), name
        elif name.endswith(".npz"):
            with np.load(d.cache_dir / name, allow_pickle=False) as z:     # no object arrays anywhere
                for k in z.files:
                    if z[k].dtype.kind == "U":
                        assert not any(email.search(str(v)) for v in z[k].ravel()), (name, k)
    meta = (d.cache_dir / "meta.json").read_text()
    assert not any(i in meta for i in list(ids)[:200]) and json.loads(meta)["key"]
    assert key.hex() not in meta


def test_explorer_page_paints_a_progress_shell_then_the_explorer(small_ws, tmp_path):
    from cxlab.widgets import ExplorerPage

    path = _copy_ws(small_ws, tmp_path)
    with cxlab.connect(path, read_only=True) as ws:
        page = ExplorerPage(ws)
        assert page.widget.children[0] is page._shell or page.explorer is not None   # the shell first
        x = page.wait(timeout=300)
        assert page.widget.children[0] is x.widget
        assert page.stages[:2] == ["fitting the text-sentiment model on the team's rated feedback",
                                   "scoring the journey's pain points (drop-off model)"]
        assert page.stages[-2:] == ["keeping the aggregates with the workspace for the next page", "ready"]
        assert "data-cache='built'" in page.cache_line.value
        same_process = ExplorerPage(ws, background=False)        # the same ExplorerData, no reading at all
        assert same_process.explorer.data is x.data and same_process.stages == []
        cxlab.widgets._DATA_CACHE.clear()                        # as a new kernel
        second = ExplorerPage(ws, background=False)
    assert "data-cache='read'" in second.cache_line.value
    assert second.stages == ["reading the aggregates kept with the workspace", "ready"]


def test_an_own_journey_shows_its_labels_and_currency_and_no_default_touchpoint(own_journey):
    ev = pd.read_csv(own_journey["events"])
    ev["ts"] = pd.to_datetime(ev["ts"], utc=True)
    jm = cxlab.JourneyMap.from_yaml(own_journey["journey"])
    x = PainPointExplorer((ev, None), journey=jm)                           # behaviour only
    page = " ".join(h.value for h in (x.kpi_html, x.curve, x.table_html, x.funnel_html, x.terms_html,
                                      x.verbatims_html))
    lost = x.table[x.table["value_at_risk"] > 0].sort_values("rank")
    assert len(lost) and f"CHF {lost['value_at_risk'].iloc[0]:,.0f}" in x.table_html.value
    assert all(escape_label(jm.label(tp)) in page for tp in x.table.sort_values("rank").touchpoint.head(8))
    default = set(cxlab.JourneyMap.default().touchpoints) - set(jm.touchpoints)
    assert not [tp for tp in default if tp in page]
    assert "10 days" in x.funnel_html.value                                  # the map's window, for people
    # the map's own moments (RICERCA, OFFERTA...), not the default's four
    assert [v for _, v in x.moment.options] == ["ALL", *jm.moment_ids]
    x.moment.value = "OFFERTA"
    assert set(x.table.touchpoint) == set(jm.moment("OFFERTA").touchpoints)


def escape_label(text):
    from html import escape

    return escape(text)
