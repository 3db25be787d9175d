"""Report periods (cxlab.periods): the resolver, the previous period of the same length, the
metrics of both periods against an independent computation, the index comparing like with
like, and thin cells greyed out."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import OWN_SURVEY_PULL

import cxlab
from cxlab import reports
from cxlab import voice_report as vr
from cxlab.behaviour_report import behaviour_report, headline_numbers
from cxlab.exceptions import PeriodError, ReportParameterError
from cxlab.periods import (comparison_view, format_day_range, last_data_day, period_metrics, period_section,
                           resolve_period)

D = dt.date


# --------------------------------------------------------------------------- the resolver
@pytest.mark.parametrize("args, span, previous", [
    # N days ending on the anchor (the data's last day), the N days before
    (dict(period="7D", last_day="2026-11-30"), ("2026-11-24", "2026-11-30"), ("2026-11-17", "2026-11-23")),
    (dict(period="28d", last_day="2026-03-05"), ("2026-02-06", "2026-03-05"), ("2026-01-09", "2026-02-05")),
    (dict(period="1D", last_day="2026-01-01"), ("2026-01-01", "2026-01-01"), ("2025-12-31", "2025-12-31")),
    # 28 days to 1 Mar of a leap year: 29 Feb is one of them
    (dict(period="28D", period_end="2024-03-01", last_day="2025-01-01"), ("2024-02-03", "2024-03-01"),
     ("2024-01-06", "2024-02-02")),
    # last full Mon-Sun week: a Sunday anchor is the end of a full week, a Monday is not
    (dict(period="last_week", last_day="2026-11-29"), ("2026-11-23", "2026-11-29"), ("2026-11-16", "2026-11-22")),
    (dict(period="last_week", last_day="2026-11-30"), ("2026-11-23", "2026-11-29"), ("2026-11-16", "2026-11-22")),
    (dict(period="last_week", last_day="2027-01-06"), ("2026-12-28", "2027-01-03"), ("2026-12-21", "2026-12-27")),
    # last full calendar month; the previous calendar month whatever its length
    (dict(period="last_month", last_day="2024-03-15"), ("2024-02-01", "2024-02-29"), ("2024-01-01", "2024-01-31")),
    (dict(period="last_month", last_day="2024-03-31"), ("2024-03-01", "2024-03-31"), ("2024-02-01", "2024-02-29")),
    (dict(period="last_month", last_day="2023-03-30"), ("2023-02-01", "2023-02-28"), ("2023-01-01", "2023-01-31")),
    (dict(period="last_month", last_day="2027-01-20"), ("2026-12-01", "2026-12-31"), ("2026-11-01", "2026-11-30")),
    (dict(period="LAST_MONTH", period_end="2026-04-15", last_day="2026-09-01"), ("2026-03-01", "2026-03-31"),
     ("2026-02-01", "2026-02-28")),
    # explicit days: the previous period has as many days, just before
    (dict(period_start="2024-02-01", period_end="2024-02-29"), ("2024-02-01", "2024-02-29"),
     ("2024-01-03", "2024-01-31")),
    (dict(period_start="2026-11-20", last_day="2026-11-30"), ("2026-11-20", "2026-11-30"),
     ("2026-11-09", "2026-11-19")),
])
def test_resolve_period(args, span, previous):
    p = resolve_period(**args)
    assert (p.start.isoformat(), p.end.isoformat()) == span
    assert (p.previous_start.isoformat(), p.previous_end.isoformat()) == previous
    if p.kind != "last_month":   # same length, touching
        assert (p.previous_end - p.previous_start) == (p.end - p.start)
    assert p.previous_end == p.start - dt.timedelta(days=1)
    d = p.to_dict()
    assert (d["start"], d["end"], d["previous_start"], d["previous_end"]) == (*span, *previous)
    again = p.previous()
    assert (again.start, again.end, again.has_previous) == (p.previous_start, p.previous_end, False)


def test_no_period_and_period_end_only_keep_todays_behaviour():
    assert resolve_period("", period_start="", period_end="", last_day="2026-11-30") is None
    until = resolve_period(period_end="2026-03-31", last_day="2026-11-30")
    assert until.start is None and not until.has_previous and until.label == "all data to 31 Mar 2026"
    assert "previous run" in until.note and period_metrics(until, {"x": 1}) == {"period": until.to_dict()}
    assert period_metrics(None, {"x": 1}) == {}
    line, table = period_section(None, {}, None, [])
    assert table is None and "previous run" in line


def test_relative_periods_without_data_count_back_from_today():
    p = resolve_period("7D", today=D(2026, 5, 10))
    assert (p.start, p.end) == (D(2026, 5, 4), D(2026, 5, 10))


def test_labels_are_dates_for_people():
    assert resolve_period("7D", last_day="2026-11-30").label == "7 days to 30 Nov 2026"
    assert resolve_period("last_week", last_day="2026-11-30").previous_label == "week 16–22 Nov 2026"
    month = resolve_period("last_month", last_day="2024-03-15")
    assert (month.label, month.previous_label) == ("February 2024", "January 2024")
    assert "29 days against 31" in month.note       # the months' lengths are said
    assert format_day_range(D(2026, 12, 28), D(2027, 1, 3)) == "28 Dec 2026 – 3 Jan 2027"
    assert format_day_range(D(2026, 11, 28), D(2026, 12, 4)) == "28 Nov – 4 Dec 2026"


@pytest.mark.parametrize("args, parameter, needle", [
    (dict(period="fortnight"), "period", "last_week"),
    (dict(period="last_wek"), "period", "did you mean 'last_week'"),
    (dict(period="0D"), "period", "7D"),
    (dict(period="-7D"), "period", "28D"),
    (dict(period="7W"), "period", "a number of days"),
    (dict(period_start="2026-1-5"), "period_start", "YYYY-MM-DD"),
    (dict(period_end="2026-02-30"), "period_end", "YYYY-MM-DD"),
    (dict(period_end="30/11/2026"), "period_end", "YYYY-MM-DD"),
    (dict(period_start="2026-12-01", period_end="2026-11-01"), "period_start", "after period_end"),
    (dict(period="7D", period_start="2026-11-01"), "period", "give one"),
    (dict(period_start="2026-12-01", last_day="2026-11-30"), "period_start", "after the last day with data"),
])
def test_bad_values_are_refused_naming_the_parameter(args, parameter, needle):
    with pytest.raises(PeriodError, match=needle) as err:
        resolve_period(**args)
    assert err.value.parameter == parameter and str(err.value).startswith(f"{parameter}=")
    assert isinstance(err.value, ReportParameterError) and isinstance(err.value, ValueError)


def test_a_bad_period_is_refused_before_the_report_runs(tmp_path, capsys):
    for name in ("funnel_dropoff", "voice_painpoints_kpis"):
        declared = reports.report_parameters(name)
        assert {"period", "period_start", "period_end"} <= set(declared)
        assert reports.parse_parameter("period=7D", declared) == ("period", "7D")
        assert reports.parse_parameter("period=last_week", declared) == ("period", "last_week")
        with pytest.raises(PeriodError, match="accepted"):
            reports.check_parameters(name, {"period": "last_fortnight"})
        with pytest.raises(PeriodError, match="after period_end"):
            reports.check_parameters(name, {"period_start": "2026-05-02", "period_end": "2026-05-01"})
    from cxlab.cli import main

    out = Path(tmp_path) / "reports"
    assert main(["report", "all", "-p", "period=fortnight", "--out", str(out), "--no-progress"]) == 2
    assert not out.exists() or not any(out.iterdir())       # refused before the pull ran
    assert "period='fortnight'" in capsys.readouterr().err
    voice = reports.report_parameters("voice_painpoints_kpis")
    assert voice["breakdown"].default == "M" and voice["period"].default == ""


# --------------------------------------------------------------------------- planted data
DAYS = pd.date_range("2026-11-17", "2026-11-30", tz="UTC")   # two weeks; the last one is worse
FUNNEL = list(cxlab.JourneyMap.default().funnel)


@pytest.fixture(scope="module")
def planted():
    """100 customers start each day; 40 of them buy in the first week, 20 in the last.
    Feedback: 20 NPS answers a day, 12 promoters and 2 detractors a day in the first week,
    6 and 8 in the last."""
    ev, fb = [], []
    for d, day in enumerate(DAYS):
        first_week = d < 7
        for i in range(100):
            steps = FUNNEL if i < (40 if first_week else 20) else FUNNEL[:-1]
            ev += [(f"c{d}_{i}", day + pd.Timedelta(hours=9, minutes=5 * k), tp, "web") for k, tp in enumerate(steps)]
        promoters, detractors = (12, 2) if first_week else (6, 8)
        for i in range(20):
            score = 10 if i < promoters else (3 if i < promoters + detractors else 8)
            fb.append((f"f{d}_{i}", f"c{d}_{i}", day + pd.Timedelta(hours=15), "nps", float(score)))
    events = pd.DataFrame(ev, columns=["customer_id", "ts", "touchpoint", "channel"])
    feedback = pd.DataFrame(fb, columns=["feedback_id", "customer_id", "ts", "scale", "score"])
    return events, feedback


def _in(df, start, end):
    return df[(df["ts"] >= pd.Timestamp(start, tz="UTC")) & (df["ts"] < pd.Timestamp(end, tz="UTC") + pd.Timedelta("1D"))]


def _conversion_by_hand(events):
    """Customers who reached the last funnel step / customers at the first (the planted
    journeys go through the steps in order, minutes apart)."""
    first = events.loc[events["touchpoint"] == FUNNEL[0], "customer_id"].nunique()
    return events.loc[events["touchpoint"] == FUNNEL[-1], "customer_id"].nunique() / first, first


def _nps_by_hand(feedback):
    s = feedback["score"]
    return 100 * ((s >= 9).mean() - (s <= 6).mean()), len(s)


def test_previous_period_metrics_equal_an_independent_computation(planted, tmp_path):
    events, _ = planted
    span = resolve_period("7D", last_day=events["ts"].max().date())
    assert (span.start, span.previous_start) == (D(2026, 11, 24), D(2026, 11, 17))
    report = behaviour_report(span.filter(events))
    previous = headline_numbers(span.previous().filter(events), worst=report.worst)
    rate, n = _conversion_by_hand(_in(events, "2026-11-17", "2026-11-23"))
    assert (previous["conversion"]["value"], previous["conversion"]["n"]) == (pytest.approx(rate), n)
    assert (rate, n) == (pytest.approx(0.4), 700)
    assert report.metrics()["conversion"]["value"] == pytest.approx(_conversion_by_hand(
        _in(events, "2026-11-24", "2026-11-30"))[0])
    # the previous period has the same keys and shapes as the period's own headline numbers
    now = report.metrics()
    assert set(reports.headline_metrics(previous)) <= set(reports.headline_metrics(now))
    assert previous["leave_rate_worst_step"] == previous["leave_rate"][report.worst]

    path = reports.write_metrics(tmp_path / "funnel_dropoff.metrics.json", {**now, **period_metrics(span, previous)})
    doc = json.loads(path.read_text())
    assert doc["period"]["start"] == "2026-11-24" and doc["period"]["previous_end"] == "2026-11-23"
    assert doc["period"]["label"] == "7 days to 30 Nov 2026"
    assert not any(k.startswith("previous_period") for k in reports.headline_metrics(doc))
    verdicts = reports.compare_with_previous(doc, doc["previous_period"]).set_index("metric")["verdict"]
    assert verdicts["conversion"] == "changed" and verdicts["leave_rate_worst_step"] == "changed"

    line, table = period_section(span, now, previous, report.period_rows())
    assert "7 days to 30 Nov 2026" in line and "17–23 Nov 2026" in line
    row = table.set_index("measure").loc["Reached Purchase within 7 days"]
    assert (row["this period"], row["previous period"], row["change"], row["verdict"]) == \
        ("20.0%", "40.0%", "-20.0 pts", "down")


def test_the_index_compares_a_run_with_its_own_previous_period(planted, tmp_path):
    events, _ = planted
    out = tmp_path / "reports"
    span = resolve_period("7D", last_day="2026-11-30")
    report = behaviour_report(span.filter(events))
    previous = headline_numbers(span.previous().filter(events), worst=report.worst)
    # run 1: all data, no period; run 2: the last 7 days with their previous period
    reports.write_metrics(out / "2026-11-29" / "funnel_dropoff.metrics.json", behaviour_report(events).metrics())
    reports.write_metrics(out / "2026-11-30" / "funnel_dropoff.metrics.json",
                          {**report.metrics(), **period_metrics(span, previous)})
    page = reports.write_index(out).read_text()
    card = page[page.index("<h4>conversion</h4>"):]
    card = card[:card.index("</div>")]
    assert "7 days to 30 Nov 2026" in card and "vs previous period" in card
    assert 'class="worse">changed: worse' in card and "-0.2" in card  # 0.2 against 0.4: the week's own drop
    assert "first run" in card                                   # the all-data run has nothing before it
    odds = page[page.index("<h4>entrants</h4>"):]
    assert "vs previous period" in odds[:odds.index("</div>")]


def test_without_periods_the_index_compares_with_the_previous_run(planted, tmp_path):
    events, _ = planted
    out = tmp_path / "reports"
    first = events[events["ts"] < pd.Timestamp("2026-11-24", tz="UTC")]
    reports.write_metrics(out / "2026-11-23" / "funnel_dropoff.metrics.json", behaviour_report(first).metrics())
    reports.write_metrics(out / "2026-11-30" / "funnel_dropoff.metrics.json", behaviour_report(events).metrics())
    page = reports.write_index(out).read_text()
    card = page[page.index("<h4>conversion</h4>"):]
    card = card[:card.index("</div>")]
    assert "vs previous period" not in card and ("changed" in card or "within noise" in card)
    cumulative = reports.compare_with_previous(behaviour_report(events).metrics(), behaviour_report(first).metrics())
    assert cumulative.set_index("metric").loc["conversion", "difference"] == pytest.approx(-0.1)  # diluted


def test_voice_kpis_of_the_previous_period(planted, tmp_path):
    events, feedback = planted
    events.to_parquet(tmp_path / "events.parquet")
    feedback.to_parquet(tmp_path / "feedback.parquet")
    with cxlab.connect(tmp_path / "ws.duckdb") as ws:
        ws.pull(tmp_path / "events.parquet")
        ws.pull(tmp_path / "feedback.parquet", kind="feedback")
        assert last_data_day(ws) == D(2026, 11, 30)
        span = resolve_period("last_week", last_day=last_data_day(ws))     # 23-29 Nov against 16-22 Nov
        jm = cxlab.JourneyMap.default()
        now = vr.answerable_kpis(vr.load(ws, period=span), journey=jm)
        before = vr.answerable_kpis(vr.load(ws, period=span.previous()), journey=jm)
    value, n = _nps_by_hand(_in(feedback, "2026-11-16", "2026-11-22"))
    prev = before.metrics()["nps"]
    assert (prev["value"], prev["n"]) == (pytest.approx(value), n) and n == 120   # 17-22 Nov: 6 days
    assert now.metrics()["nps"]["value"] == pytest.approx(_nps_by_hand(_in(feedback, "2026-11-23", "2026-11-29"))[0])
    table = comparison_view(now.metrics(), before.metrics(), now.period_rows(), currency=now.currency)
    nps = table.set_index("measure").loc["NPS"]
    assert nps["verdict"] == "down" and nps["this period"].startswith(("+", "-"))


# --------------------------------------------------------------------------- thin cells
def test_thin_periods_and_cohorts_are_greyed_out_with_the_threshold_said():
    changes = pd.DataFrame({"period": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01"], utc=True),
                            "value": [30.0, 10.0, 35.0], "previous_value": [float("nan"), 30.0, 10.0],
                            "diff": [float("nan"), -20.0, 25.0], "n": [400, 12, 380],
                            "previous_n": [float("nan"), 400, 12], "significant": [False, True, True]})
    html = vr.period_table(changes, caption="NPS by month").to_html()
    assert "fewer than 30 answers" in html and "NPS by month" in html
    css = html.split("</style>")[0]
    assert "row1_col0" in css and "row0_col0" not in css and "row2_col0" not in css  # only the thin month
    assert vr.period_view(changes)["verdict"].tolist()[1:] == ["too few answers (< 30)"] * 2

    retention = pd.DataFrame({"cohort": ["2026-01", "2026-01", "2026-02", "2026-02"],
                              "period_index": [0, 1, 0, 1], "n": [200, 200, 9, 9], "rate": [1, 0.25, 1, 0.1]})
    view = vr.retention_view(retention)
    assert view["customers"].tolist() == ["200", "9"]
    html = vr.retention_table(retention).to_html()
    css = html.split("</style>")[0]
    assert "fewer than 30 customers" in html and "row1_col0" in css and "row0_col0" not in css
    assert "fewer than" not in vr.period_table(changes.iloc[[0]]).to_html()   # nothing thin, nothing said


# --------------------------------------------------------------------------- the notebooks
@pytest.mark.notebooks
@pytest.mark.slow
def test_both_reports_run_with_a_period_on_a_journey_of_our_own(tmp_path, own_journey):
    """last_month anchored on period_end 2026-04-15: March 2026 against February 2026."""
    jm = cxlab.JourneyMap.from_yaml(own_journey["journey"])
    ws_path = tmp_path / "ws.duckdb"
    with cxlab.connect(ws_path) as ws:
        ws.pull(own_journey["events"], journey=jm)
        ws.pull(own_journey["survey"], **OWN_SURVEY_PULL)
    params = {"workspace": str(ws_path), "journey_path": str(own_journey["journey"]), "period": "last_month",
              "period_end": "2026-04-15"}
    out = tmp_path / "reports"
    behaviour = reports.run_notebook("funnel_dropoff", params, out=out, progress=False, index=False)
    voice = reports.run_notebook("voice_painpoints_kpis", {**params, "folds": 2}, out=out, progress=False)
    mb, mv = behaviour.read_metrics(), voice.read_metrics()
    for m in (mb, mv):
        assert m["period"] == {"start": "2026-03-01", "end": "2026-03-31", "previous_start": "2026-02-01",
                               "previous_end": "2026-02-28", "label": "March 2026",
                               "previous_label": "February 2026", "kind": "last_month"}
        assert m["parameters"]["period"] == "last_month"
    march, february = resolve_period("last_month", period_end="2026-04-15"), None
    february = march.previous()
    with cxlab.connect(ws_path, read_only=True) as ws:
        expected = headline_numbers(february.filter(ws.events()), journey=jm, worst=mb["worst_step"])
        now = behaviour_report(march.filter(ws.events()), journey=jm).metrics()
        fb = february.filter(ws.feedback()).to_pandas()
    assert mb["previous_period"]["conversion"] == pytest.approx(expected["conversion"])
    assert mb["conversion"] == pytest.approx(now["conversion"]) and mb["entrants"] == now["entrants"]
    assert mv["previous_period"]["nps"]["value"] == pytest.approx(_nps_by_hand(fb)[0])
    assert mv["previous_period"]["nps"]["n"] == len(fb)
    assert mv["previous_period"]["conversion"]["n"] == expected["conversion"]["n"]   # the same funnel
    assert "breakdown" in mv["parameters"] and mv["parameters"]["breakdown"] == "M"
    for run in (behaviour, voice):
        html = open(run.html, encoding="utf-8").read()
        assert "This period against the previous" in html and "March 2026" in html and "February 2026" in html
        assert "28 days against" not in html and "31 days against 28" in html
        assert "Traceback" not in html
    page = (out / "index.html").read_text()
    assert "vs previous period" in page and "March 2026" in page
