"""cxlab.brief: what the brief compares with, its change verdicts, escaping, and the index."""
from __future__ import annotations

import json

import pytest

import cxlab
from cxlab._report_index import render_index
from cxlab.brief import Brief, _kpi_rows, previous_metrics, render_brief


def _metrics(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_previous_metrics_prefers_the_runs_own_previous_period(tmp_path):
    m = {"conversion": {"value": 0.2, "n": 500},
         "period": {"start": "2026-11-24", "end": "2026-11-30", "previous_start": "2026-11-17",
                    "previous_end": "2026-11-23"},
         "previous_period": {"conversion": {"value": 0.3, "n": 480}}}
    _metrics(tmp_path / "2026-11-01" / "r.metrics.json", {"conversion": {"value": 0.9, "n": 9}})
    prev, said = previous_metrics(m, metrics_path=tmp_path / ".r-2026-12-01-x" / "r.metrics.json", name="r")
    assert prev == m["previous_period"]
    assert said == "the previous period (17 Nov 2026 to 23 Nov 2026)"


def test_previous_metrics_is_the_latest_earlier_run_not_the_one_replaced(tmp_path):
    _metrics(tmp_path / "2026-11-01" / "r.metrics.json", {"conversion": {"value": 0.1, "n": 100}})
    _metrics(tmp_path / "2026-11-20" / "r.metrics.json", {"conversion": {"value": 0.2, "n": 100}})
    _metrics(tmp_path / "2026-11-20" / "other.metrics.json", {"conversion": {"value": 0.5, "n": 100}})
    _metrics(tmp_path / "2026-12-01" / "r.metrics.json", {"conversion": {"value": 0.3, "n": 100}})  # replaced
    here = tmp_path / ".r-2026-12-01-abcd" / "r.metrics.json"
    prev, said = previous_metrics({}, metrics_path=here, name="r")
    assert prev["conversion"]["value"] == 0.2 and said == "the run of 20 Nov 2026"
    first, said = previous_metrics({}, metrics_path=tmp_path / ".r-2026-11-01-x" / "r.metrics.json", name="r")
    assert first is None and said == ""
    assert previous_metrics({}, metrics_path=None, name="r") == (None, "")


def test_kpi_changes_are_called_only_when_the_test_says_so():
    specs = [("conversion", "Conversion", "share"), ("nps", "NPS", "points")]
    now = {"conversion": {"value": 0.30, "n": 5000}, "nps": {"value": 20.0, "se": 3.0, "n": 400}}
    before = {"conversion": {"value": 0.27, "n": 5000}, "nps": {"value": 18.0, "se": 3.0, "n": 400}}
    rows = {r["key"]: r for r in _kpi_rows(now, before, specs, currency=None, alpha=0.05)}
    # 30% vs 27% on 5,000 each: z = 3.3, a change; NPS +2 with se 3 each: z = 0.47, noise
    assert rows["conversion"] | {} == {"key": "conversion", "label": "Conversion", "value": "30.0%",
                                       "previous": "27.0%", "change": "+3.0 pts, better (a real change)",
                                       "verdict": "changed", "tone": "better", "thin": False,
                                       "based_on": "5,000"}
    assert rows["nps"]["change"] == "+2, within noise" and rows["nps"]["verdict"] == "within noise"
    first = _kpi_rows(now, None, specs, currency=None, alpha=0.05)
    assert [r["change"] for r in first] == ["first run", "first run"]


def test_a_real_change_says_better_or_worse_and_thin_figures_are_not_judged():
    specs = [("leave_rate_worst_step", "Leaving after the form", "share"), ("cost_to_serve", "Cost", "money"),
             ("conversion", "Conversion", "share"), ("nps", "NPS", "points")]
    now = {"leave_rate_worst_step": {"value": 0.45, "n": 4000}, "cost_to_serve": {"value": 2.0, "se": 0.02, "n": 900},
           "conversion": {"value": 0.50, "n": 60}, "nps": {"value": 60.0, "se": 9.0, "n": 12}}
    before = {"leave_rate_worst_step": {"value": 0.40, "n": 4000}, "cost_to_serve": {"value": 2.5, "se": 0.02, "n": 900},
              "conversion": {"value": 0.20, "n": 60}, "nps": {"value": 10.0, "se": 9.0, "n": 12}}
    rows = {r["key"]: r for r in _kpi_rows(now, before, specs, currency="CHF", alpha=0.05)}
    # leaving up 5 pts on 4,000 each (z = 4.6): worse; cost down CHF 0.50 (z = 18): better
    assert rows["leave_rate_worst_step"]["tone"] == "worse"
    assert rows["leave_rate_worst_step"]["change"] == "+5.0 pts, worse (a real change)"
    assert rows["cost_to_serve"]["tone"] == "better" and rows["cost_to_serve"]["change"].startswith("-CHF 0.50")
    # 50% vs 20% on 60 each would test as a change (p < 0.001), but n < 100: not called
    assert rows["conversion"]["verdict"] == "within noise" and "too few to tell" in rows["conversion"]["change"]
    # 12 answers: greyed, not judged at all
    assert rows["nps"]["thin"] and rows["nps"]["tone"] == "" and rows["nps"]["verdict"] == ""
    assert rows["nps"]["change"] == "too few to judge (fewer than 30)"
    html = render_brief(Brief(title="T", period="P", kpis=list(rows.values())))
    assert html.count("color:#cf222e") == 1 and html.count("color:#1a7f37") == 1
    assert html.count('style="color:#8c959f"') == 1                          # the NPS row greyed


def test_the_brief_escapes_what_it_shows():
    b = Brief(title="T", period="P", findings=["<script>alert(1)</script>"],
              item_columns=["step", "<b>"], items=[["a & b", "1"]], recommendation="<img src=x>")
    html = render_brief(b)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<img src=x>" not in html
    assert "a &amp; b" in html
    assert render_brief(b.to_dict()) == html                     # what the index renders again


@pytest.mark.notebooks
def test_the_index_opens_with_the_briefs_and_folds_engineering_numbers(tmp_path):
    from cxlab.datasets import simulate_journeys
    from cxlab.reports import run_notebook

    sim = simulate_journeys(2500, seed=5)
    ws_path = tmp_path / "ws.duckdb"
    sim.events.to_parquet(tmp_path / "e.parquet")
    with cxlab.connect(ws_path) as ws:
        ws.pull(tmp_path / "e.parquet")
    out = tmp_path / "reports"
    for day in ("2026-11-01", "2026-11-02"):
        run_notebook("funnel_dropoff", {"workspace": str(ws_path)}, out=out, date=day, progress=False)
    m = json.loads((out / "2026-11-02" / "funnel_dropoff.metrics.json").read_text())
    assert m["brief"]["compared_with"] == "the run of 1 Nov 2026"
    assert [k["change"] for k in m["brief"]["kpis"]] == ["+0.0 pts, within noise"] * 2
    page = render_index(out)
    assert page.index("<h2>In brief</h2>") < page.index("<h2>Runs</h2>")
    main, details = page.split("<details>", 1)
    assert "Conversion (Home page to Purchase)" in main           # business label on the card
    assert "reached.home_page" not in main and "reached.home_page" in details
    conv = m["conversion"]["value"]
    assert f"{100 * conv:.1f}%" in main and f">{conv:.3g}<" not in main   # a rate as %


def test_the_pull_brief_says_what_was_pulled_and_what_to_fix(tmp_path, own_journey):
    from cxlab import quality
    from cxlab.brief import pull_brief

    with cxlab.connect(tmp_path / "ws.duckdb") as ws:
        pulls = [ws.pull(own_journey["events"]), ws.pull(own_journey["events"])]   # the second adds nothing
        jm = cxlab.JourneyMap.default()                                          # not the team's own map
        summary = quality.quality_summary(ws, journey=jm)
        touchpoints = quality.touchpoint_table(ws, journey=jm)
        b = pull_brief(pulls, summary, touchpoints)
        ev = ws.events().to_pandas()
        n = (len(ev), ev.customer_id.nunique())
    assert b.items[0] == ["eventi.csv", "events", f"{pulls[0].rows_read:,}", f"{pulls[0].rows_added:,}",
                          f"{pulls[0].duplicates_skipped:,}", ""]
    assert b.items[1][-1] == "already pulled: nothing read"
    assert b.findings[0].startswith(f"{n[0]:,} events from {n[1]:,} customers")
    unknown = touchpoints[~touchpoints.in_map]
    assert set(unknown.touchpoint) == set(ev.touchpoint)      # every Italian name is unknown to the default map
    assert f"{len(unknown)} touchpoint(s) in the data are not in the journey map" in " ".join(b.findings)
    assert b.recommendation.startswith("Before the analyses: add the touchpoints the map does not know")
