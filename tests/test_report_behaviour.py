"""The behaviour report (funnel_dropoff) on journeys other than the demo's, and on partial data:
its metrics equal the package's own results, and nothing of the demo's map reaches its page."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import OWN_SURVEY_PULL, shared_file

import cxlab
from cxlab.behaviour_report import behaviour_report, choose_covariates, independent_terms
from cxlab.dropoff import DropoffModel
from cxlab.funnel import funnel
from cxlab.painpoints import exposure_candidates
from cxlab.paths import escape_routes
from cxlab.reports import notebook_path, run_notebook

DEMO_NAMES = ("checkout", "popup_shown", "registration_form", "home_page", "add_to_cart")
REPRS = ("np.float64", "Timedelta(", "dtype:", "<cxlab.", "{'")
BPIC_MAP = notebook_path("funnel_dropoff").parent / "bpic2012_journey.yml"
LOG_MAPPING = {"customer_id": "case_id", "touchpoint": "activity", "ts": "timestamp"}


def _run(ws_path, tmp_path, journey=None, **params):
    params = {"workspace": str(ws_path), **({"journey_path": str(journey)} if journey else {}), **params}
    run = run_notebook("funnel_dropoff", params, out=tmp_path / "reports", progress=False)
    return run.read_metrics(), open(run.html, encoding="utf-8").read()


def _check_against_package(m, ws_path, journey):
    """The metrics equal funnel, escape_routes and DropoffModel computed here on the same data."""
    jm = cxlab.JourneyMap.coerce(journey)
    with cxlab.connect(ws_path, read_only=True) as ws:
        f = funnel(ws, journey=jm, window=jm.conversion_window)
        routes = {s: escape_routes(ws, step=s, journey=jm, window=jm.conversion_window).to_dict()
                  for s in jm.funnel[:-1]}
        chosen = {x: steps for x, steps in m["exposures"].items()}
        model = DropoffModel(covariates=m["covariates"], exposures=list(chosen), interactions=chosen).fit(
            ws, journey=jm, window=jm.conversion_window)
        odds = model.to_dict()["terms"]   # n_customers is read from the workspace
    assert [r["n"] for r in m["details"]["funnel"]] == f["n"].tolist()
    assert m["reached"] == dict(zip(f["touchpoint"], f["n"].tolist()))
    assert m["entrants"] == f["n"].iloc[0]
    assert m["conversion"]["value"] == pytest.approx(f["rate"].iloc[-1])
    worst = max(jm.funnel[:-1], key=lambda s: (routes[s]["left"], -jm.funnel.index(s)))
    assert m["worst_step"] == worst
    assert m["leave_rate_worst_step"]["value"] == pytest.approx(routes[worst]["leave_rate"])
    assert m["leave_rate_worst_step"]["successes"] == routes[worst]["left"]
    assert m["leave_rate_worst_step"]["n"] == routes[worst]["reached"]
    assert list(m["leave_rate"]) == list(jm.funnel[:-1])
    for s, r in routes.items():   # every step's summary equals escape_routes' own
        assert (m["leave_rate"][s]["successes"], m["leave_rate"][s]["n"]) == (r["left"], r["reached"])
        assert m["leave_rate"][s]["value"] == pytest.approx(r["leave_rate"])
    # exposures come from the map's `exposures:`, else the touchpoints before the conversion
    allowed = set(jm.exposures) or set(exposure_candidates(jm))
    assert m["exposures"] and set(m["exposures"]) <= allowed
    expected_terms = {f"{x}:{s}" for x, steps in chosen.items() for s in steps}
    assert expected_terms <= set(m["odds_ratio"])
    for term in expected_terms:
        assert m["odds_ratio"][term]["value"] == pytest.approx(odds[term]["odds_ratio"])
    return jm


def _readable(html, *, demo_names_absent):
    assert "Funnel and drop-off" in html and "import cxlab" not in html and "<img" in html
    assert "Traceback" not in html and "Warning" not in html
    for r in REPRS:
        assert r not in html, r
    if demo_names_absent:
        for name in DEMO_NAMES:
            assert name not in html, name


# --------------------------------------------------------------------------- notebook runs
@pytest.mark.notebooks
def test_on_the_demo(tmp_path):
    from cxlab.datasets import simulate_journeys, write_simulation

    paths = write_simulation(simulate_journeys(1500, seed=11), tmp_path / "raw", format="csv")
    ws_path = tmp_path / "ws.duckdb"
    with cxlab.connect(ws_path) as ws:
        ws.pull(paths["events"])
    m, html = _run(ws_path, tmp_path)
    jm = _check_against_package(m, ws_path, None)
    assert m["covariates"] == ["channel"]
    # the planted registration-form effect is examined where it acts and recovered (true OR 2.5)
    assert m["exposures"]["registration_form"] == ["checkout"]
    reg = m["odds_ratio"]["registration_form:checkout"]
    assert reg["ci_low"] < 2.5 < reg["ci_high"] and reg["ci_low"] > 1
    _readable(html, demo_names_absent=False)
    assert jm.label("registration_form") in html
    assert "Clearest link with leaving: <strong>Registration form, leaving at Checkout</strong>" in html


@pytest.mark.notebooks
@pytest.mark.realdata
def test_on_the_bpic2012_loan_log(tmp_path):
    log = pd.read_csv(shared_file("bpic2012_loans", "bpic2012_events.csv.gz"), dtype=str, keep_default_na=False)
    cases = sorted(log["case_id"].unique())[:3000]          # the full log runs too, ~10 s slower
    log[log["case_id"].isin(cases)].to_csv(tmp_path / "loans.csv", index=False)
    ws_path = tmp_path / "ws.duckdb"
    with cxlab.connect(ws_path) as ws:
        ws.pull(tmp_path / "loans.csv", mapping=LOG_MAPPING)
    m, html = _run(ws_path, tmp_path, BPIC_MAP)
    _check_against_package(m, ws_path, BPIC_MAP)
    assert m["entrants"] == 3000 and m["covariates"] == []  # one channel: not adjusted for it
    _readable(html, demo_names_absent=True)
    assert "A_SUBMITTED" in html and "Not adjusted for the channel" in html


@pytest.mark.notebooks
def test_on_a_journey_of_our_own(tmp_path, own_journey):
    jm = cxlab.JourneyMap.from_yaml(own_journey["journey"])
    ws_path = tmp_path / "ws.duckdb"
    with cxlab.connect(ws_path) as ws:
        ws.pull(own_journey["events"], journey=jm)
    m, html = _run(ws_path, tmp_path, own_journey["journey"])
    _check_against_package(m, ws_path, jm)
    assert m["window"] == "10D"  # the map's window, not the demo's 7D
    # the renamed registration form is examined where it acts, with the map's label on the page
    assert m["exposures"]["modulo_dati"] == ["pagamento"]
    _readable(html, demo_names_absent=True)
    assert "Modulo dei dati personali, leaving at Pagamento" in html and "pagina_offerta" not in html
    # the brief: the steps that lose most, in labels, worth the mean order value read here
    b = m["brief"]
    raw = pd.read_csv(own_journey["events"])
    order_value = raw.loc[(raw.touchpoint == jm.conversion) & raw.value.notna(), "value"].mean()
    steps = sorted(m["leave_rate"].items(), key=lambda kv: -kv[1]["successes"])[:3]
    assert [row[0] for row in b["items"]] == [jm.label(st) for st, _ in steps]
    assert [row[3] for row in b["items"]] == [f"{r['successes']:,}" for _, r in steps]
    assert [row[5] for row in b["items"]] == [f"{order_value * r['successes']:,.0f}" for _, r in steps]
    assert b["item_columns"][-1] == "worth (CHF)"
    assert b["kpis"][0]["value"] == f"{100 * m['conversion']['value']:.1f}%"
    assert html.index("in brief") < html.index("The funnel")


@pytest.mark.notebooks
def test_a_workspace_with_feedback_only(tmp_path, own_journey):
    ws_path = tmp_path / "ws.duckdb"
    with cxlab.connect(ws_path) as ws:
        ws.pull(own_journey["survey"], **OWN_SURVEY_PULL)
        assert ws.counts()["events"] == 0 and ws.counts()["feedback"] > 0
    m, html = _run(ws_path, tmp_path, own_journey["journey"])
    assert m["entrants"] == 0 and m["note"].startswith("No events in this period")
    assert html.count("No events in this period") == 1 and "Traceback" not in html  # said once
    for name in DEMO_NAMES:
        assert name not in html


# --------------------------------------------------------------------------- the choices
@pytest.fixture(scope="module")
def demo_events():
    from cxlab.datasets import simulate_journeys

    return simulate_journeys(1000, seed=3).events


def test_escape_step_is_checked_against_the_map(demo_events):
    with pytest.raises(ValueError, match=r"escape_step='chekout'.*did you mean 'checkout'"):
        behaviour_report(demo_events, escape_step="chekout")
    with pytest.raises(ValueError, match=r"escape_step='purchase' is the last funnel step"):
        behaviour_report(demo_events, escape_step="purchase")
    rep = behaviour_report(demo_events, escape_step="checkout")
    assert rep.focus == "checkout" and rep.worst == rep.escapes["step"].iloc[0]
    assert rep.escapes["left"].is_monotonic_decreasing  # led by the step that loses most
    assert set(rep.escapes["step"]) == set(rep.journey.funnel[:-1])


def test_a_funnel_nobody_enters_is_one_line(demo_events):
    rest = demo_events[~demo_events["touchpoint"].isin(["home_page"])]
    rep = behaviour_report(rest)
    assert rep.note.startswith("Nobody entered the funnel at Home page") and rep.model is None
    assert rep.metrics()["entrants"] == 0 and "conversion" not in rep.metrics()
    json.dumps(rep.metrics()["reached"], default=int)


def test_channel_only_when_there_is_more_than_one(demo_events):
    jm = cxlab.JourneyMap.default()
    assert choose_covariates(demo_events, journey=jm) == ["channel"]
    one = demo_events.assign(channel="web")
    assert choose_covariates(one, journey=jm) == []
    assert choose_covariates(demo_events.drop(columns=["channel"]), journey=jm) == []


def test_touchpoints_recorded_together_are_examined_once(demo_events):
    jm = cxlab.JourneyMap.default()
    twin = demo_events[demo_events["touchpoint"] == "registration_form"].assign(touchpoint="sales_call")
    events = pd.concat([demo_events[demo_events["touchpoint"] != "sales_call"], twin], ignore_index=True)
    kept, left_out = independent_terms(events, journey=jm, terms={"registration_form": ["checkout"],
                                                                  "sales_call": ["checkout"]})
    assert kept == {"registration_form": ["checkout"]} and list(left_out) == ["sales_call"]
