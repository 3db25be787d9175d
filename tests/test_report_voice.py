"""The voice / pain points / KPI report runs on a simulated workspace and its metrics equal
the package's own results."""
from __future__ import annotations

import pytest

import cxlab
from cxlab import kpis
from cxlab.datasets import simulate_journeys
from cxlab.painpoints import pain_points
from cxlab.reports import run_notebook

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


def test_voice_painpoints_kpis_report(tmp_path):
    events, feedback, truth = simulate_journeys(4_000, seed=1)
    events.to_parquet(tmp_path / "events.parquet")
    feedback.to_parquet(tmp_path / "feedback.parquet")
    ws_path = tmp_path / "ws.duckdb"
    with cxlab.connect(ws_path) as ws:
        ws.pull(tmp_path / "events.parquet")
        ws.pull(tmp_path / "feedback.parquet", kind="feedback")
    run = run_notebook("voice_painpoints_kpis", {"workspace": str(ws_path), "folds": 3},
                       out=tmp_path / "reports", progress=False)
    m = run.read_metrics()
    html = open(run.html, encoding="utf-8").read()
    for title in ("sentiment model fitted on their own scores", "Pain points per moment of truth",
                  "The circular journey", "The omnichannel KPIs"):
        assert title in html
    assert html.count("<img") >= 4 and "{level}" not in html

    with cxlab.connect(ws_path, read_only=True) as ws:
        expected_nps = kpis.nps(ws.feedback()).iloc[0]
        expected_conv = kpis.conversion_rate(ws.events()).iloc[0]
        table = pain_points(ws, sentiment_model=None)
        upsell = kpis.upsell_rate(ws.events()).iloc[0]
        cost = kpis.cost_to_serve(ws.events(), costs={"support_contact": 6, "support_reply": 2, "sales_call": 5,
                                                      "store_visit": 8, "return_request": 7}).iloc[0]
    assert m["nps"]["value"] == pytest.approx(expected_nps["nps"])
    assert m["nps"]["n"] == expected_nps["n"]
    assert m["conversion"]["value"] == pytest.approx(expected_conv["rate"])
    assert m["top_pain_point"] == truth.pain_points.touchpoint.iloc[0]
    assert m["pain_points"] == list(table[table.pain_point].sort_values("rank").touchpoint)
    assert m["sentiment_macro_f1"] > 0.9
    assert m["upsell"]["value"] == pytest.approx(upsell["rate"]) and m["upsell"]["n"] == upsell["n"]
    assert m["cost_to_serve"]["value"] == pytest.approx(cost["value"])
    assert "retention" in html and "No CES answers" in html
