"""cxlab.voice_report: the KPIs a workspace can answer, each computed by cxlab.kpis, and one
line for each it cannot; the sections that need data the workspace may lack."""
from __future__ import annotations

import pandas as pd
import pytest

import cxlab
from cxlab import kpis
from cxlab import voice_report as vr
from cxlab.datasets import simulate_journeys


@pytest.fixture(scope="module")
def sim_ws(tmp_path_factory):
    d = tmp_path_factory.mktemp("voice_report")
    events, feedback, _ = simulate_journeys(1_500, seed=3)
    events.to_parquet(d / "events.parquet")
    feedback.to_parquet(d / "feedback.parquet")
    paths = {}
    for name, kinds in (("both", ("events", "feedback")), ("events", ("events",)), ("feedback", ("feedback",))):
        paths[name] = d / f"{name}.duckdb"
        with cxlab.connect(paths[name]) as ws:
            for kind in kinds:
                ws.pull(d / f"{kind}.parquet", kind=kind)
    return paths


def _summary(path, **kw):
    with cxlab.connect(path, read_only=True) as ws:
        data = vr.load(ws)
        return data, vr.answerable_kpis(data, journey=cxlab.JourneyMap.default(), **kw)


def test_kpis_equal_cxlab_kpis_and_absent_ones_are_named(sim_ws):
    data, s = _summary(sim_ws["both"])
    m = s.metrics()
    jm = cxlab.JourneyMap.default()
    with cxlab.connect(sim_ws["both"], read_only=True) as ws:
        nps = kpis.nps(ws.feedback()).iloc[0]
        conv = kpis.conversion_rate(ws.events()).iloc[0]
        cost = kpis.cost_to_serve(ws.events(), costs=jm.costs).iloc[0]
    assert m["nps"]["value"] == pytest.approx(nps["nps"]) and m["nps"]["se"] == pytest.approx(nps["se"])
    assert m["conversion"]["successes"] == conv["successes"] and m["conversion"]["n"] == conv["n"]
    assert m["cost_to_serve"]["value"] == pytest.approx(cost["value"]) and m["cost_to_serve"]["currency"] == "EUR"
    assert s.absent == ["No CSAT answers in this workspace.", "No CES answers in this workspace."]
    assert data.note is None
    view = vr.kpi_view(s)
    assert view.loc[view["KPI"].str.startswith("Conversion"), "value"].item() == vr.format_pct(conv["rate"])


def test_touchpoint_costs_override_the_map(sim_ws):
    _, s = _summary(sim_ws["both"], touchpoint_costs=["support_contact:10"])
    with cxlab.connect(sim_ws["both"], read_only=True) as ws:
        cost = kpis.cost_to_serve(ws.events(), costs={"support_contact": 10}).iloc[0]
    assert s.metrics()["cost_to_serve"]["value"] == pytest.approx(cost["value"])


@pytest.mark.parametrize("item, needle", [("support_contact", "touchpoint:cost"), ("support_contact:-1", ">= 0"),
                                          ("support_contact:ten", "touchpoint:cost"),
                                          ("nowhere:3", "not a touchpoint of the journey map")])
def test_bad_touchpoint_costs_name_the_parameter(item, needle):
    with pytest.raises(ValueError, match="touchpoint_costs") as err:
        vr.parse_costs([item], cxlab.JourneyMap.default())
    assert needle in str(err.value)


def test_a_map_without_costs_roles_or_upgrade_names_what_is_missing(sim_ws, tmp_path):
    jm = cxlab.JourneyMap.default().to_dict()
    for key in ("costs", "currency", "roles"):
        jm.pop(key, None)
    bare = cxlab.JourneyMap.from_dict(jm)
    with cxlab.connect(sim_ws["both"], read_only=True) as ws:
        s = vr.answerable_kpis(vr.load(ws), journey=bare)
    keys = set(s.table["key"])
    assert not keys & {"cost_to_serve", "upsell", "channel_switching", "care_first_response_hours"}
    text = " ".join(s.absent)
    assert "No costs in the journey map" in text and "No care roles" in text and "no upsell rate" in text


def test_events_only_and_feedback_only(sim_ws):
    data, s = _summary(sim_ws["events"])
    assert data.feedback is None and "No customer feedback" in data.note
    assert s.absent[0].startswith("No customer feedback in this workspace")
    assert "nps" not in s.metrics() and "conversion" in s.metrics()
    assert vr.fit_sentiment(data.feedback_df).model is None
    data, s = _summary(sim_ws["feedback"])
    assert data.events is None and "No events" in data.note
    assert set(s.metrics()) == {"nps", "stars_top2_box"}
    assert any(line.startswith("No events in this workspace") for line in s.absent)
    assert vr.circle_note(data, cxlab.JourneyMap.default()).startswith("No events")


def test_sentiment_is_skipped_with_a_reason():
    fb = pd.DataFrame({"text": ["ottimo", "pessimo"] * 10, "score": [10, 2] * 10, "scale": "nps"})
    s = vr.fit_sentiment(fb, folds=3)
    assert s.model is None and "only 20 rated verbatims" in s.note
    one = pd.DataFrame({"text": [f"ottimo {i}" for i in range(60)], "score": 10, "scale": "nps"})
    assert "every rated verbatim is positive" in vr.fit_sentiment(one).note
    few = pd.DataFrame({"text": [f"ottimo {i}" for i in range(58)] + ["pessimo a", "pessimo b"],
                        "score": [10] * 58 + [1, 2], "scale": "nps"})
    s = vr.fit_sentiment(few, folds=5)
    assert s.model is not None and s.quality is None and "negative class has only 2" in s.note
    # the same few answers over and over: a model would score them from their twins
    same = pd.DataFrame({"text": ["ok", "OK", "ottimo", "bene", "pessimo", "male", "così così", "normale"] * 30,
                         "score": [8, 8, 10, 9, 1, 2, 7, 7] * 30, "scale": "nps"})
    s = vr.fit_sentiment(same, folds=3)
    assert s.model is not None and s.quality is None
    assert "distinct texts, fewer than cv=3 folds" in s.note
    varied = pd.DataFrame({"text": [f"{w} {i}" for i in range(30) for w in ("ottimo", "bene", "pessimo", "male",
                                                                            "così così", "normale")] * 3,
                           "score": [10, 9, 1, 2, 7, 8] * 90, "scale": "nps"})
    s = vr.fit_sentiment(varied, folds=3)
    assert s.quality is None and s.note == ("Model quality not judged: too uniform to judge: 360 of the 540 "
                                            "texts repeat another one (only 180 distinct).")


def test_formats():
    assert vr.format_pct(0.1653) == "16.5%" and vr.format_pct(None) == ""
    assert vr.format_money(1234.56, "CHF") == "CHF 1,235" and vr.format_money(float("nan"), "CHF") == ""
    changes = pd.DataFrame({"period": pd.to_datetime(["2026-02-01", "2026-03-01"], utc=True),
                            "value": [10.0, -30.0], "previous_value": [0.0, 10.0], "diff": [10.0, -40.0],
                            "n": [40, 3], "previous_n": [50, 40], "significant": [False, False]})
    view = vr.period_view(changes)
    assert view["period"].tolist() == ["2026-02", "2026-03"]
    assert view["verdict"].tolist() == ["within noise", "too few answers (< 30)"]


def test_headline_names_the_first_priority_whatever_its_evidence():
    jm = cxlab.JourneyMap.default()
    table = pd.DataFrame({"touchpoint": ["popup_shown", "registration_form", "delivery"],
                          "moment": ["FMOT", "FMOT", "SMOT"], "rank": [1, 2, 3],
                          "pain_point": [False, True, True], "flag": ["behaviour", "voice and behaviour", "voice"],
                          "score_mean": [float("nan"), 33.0, 60.0], "dropoff_or": [2.6, 2.5, float("nan")],
                          "value_at_risk": [32_967.4, 7_943.0, float("nan")],
                          "customers_lost": [460.0, 111.0, float("nan")]})
    table.attrs.update(baseline_score=68.0, value_per_customer=71.6)
    text = vr.pain_point_headline(table, jm)
    assert text.startswith("**First priority: Home-page pop-up (First moment of truth): 460 customers lost, "
                           "EUR 32,967 at risk; customers who meet it have 2.6 times the odds of leaving, "
                           "though nobody complains about it.**")
    assert "2 pain point(s) in the customers' voice and 1 touchpoint(s) where customers leave" in text
    assert vr.pain_point_metrics(table)["top_priority"] == "popup_shown"
    assert vr.pain_point_metrics(table)["top_pain_point"] == "registration_form"
    voice_first = table.iloc[[2]].assign(rank=1)
    voice_first.attrs.update(table.attrs)
    text = vr.pain_point_headline(voice_first, jm)
    assert text.startswith("**First priority: Delivery (Second moment of truth), rated 60 of 100 against 68")
    assert "effect on leaving is not measured" in text
    assert vr.pain_point_headline(table.assign(flag=""), jm).startswith("**No touchpoint is significantly worse")
