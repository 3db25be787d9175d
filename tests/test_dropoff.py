"""Tests of cxlab.dropoff: the person-step table by hand, the collapsed fit against the
uncollapsed Logit, planted effects recovered, CI coverage, survival by hand, real data."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from matplotlib import pyplot as plt

from cxlab.datasets import simulate_journeys
from cxlab.dropoff import (DropoffModel, cox, kaplan_meier, person_steps, plot_kaplan_meier,
                           session_dropoff, survival_table)
from cxlab.journey import JourneyMap

from conftest import shared_file

FULL = dict(covariates=["channel"], exposures=["popup_shown", "registration_form"],
            interactions={"registration_form": ["checkout"]})


def _ev(rows, extra=("channel",)):
    df = pd.DataFrame(rows, columns=["customer_id", "ts", "touchpoint", *extra])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


# ----------------------------------------------------------------------------- hand-made
TINY = _ev([
    # c1: full path, pop-up seconds after the home page, form between cart and checkout
    ("c1", "2026-03-01 10:00:00", "home_page", "web"),
    ("c1", "2026-03-01 10:00:05", "popup_shown", "web"),
    ("c1", "2026-03-01 10:01:00", "product_page", "web"),
    ("c1", "2026-03-01 10:05:00", "add_to_cart", "web"),
    ("c1", "2026-03-01 10:06:00", "registration_form", "web"),
    ("c1", "2026-03-01 10:07:00", "checkout", "web"),
    ("c1", "2026-03-01 10:08:00", "purchase", "web"),
    # c2: leaves after the product page; comes back 18 days later (a new attempt), a
    # purchase without the product page is not a closed path -> leaves at home_page
    ("c2", "2026-03-02 08:00:00", "home_page", "app"),
    ("c2", "2026-03-02 08:01:00", "product_page", "app"),
    ("c2", "2026-03-20 09:00:00", "home_page", "web"),
    ("c2", "2026-03-20 09:30:00", "purchase", "web"),
    # c3: product page 9 days later is outside the 7D window
    ("c3", "2026-03-03 09:00:00", "home_page", "web"),
    ("c3", "2026-03-12 09:00:00", "product_page", "web"),
    # c4: never on the home page -> no rows
    ("c4", "2026-03-03 09:00:00", "product_page", "web"),
    # c5: cart before the product page does not count; a second home page inside the
    # window stays in the same attempt
    ("c5", "2026-03-04 12:00:00", "home_page", "store"),
    ("c5", "2026-03-04 12:01:00", "add_to_cart", "store"),
    ("c5", "2026-03-04 12:02:00", "product_page", "store"),
    ("c5", "2026-03-04 12:03:00", "add_to_cart", "store"),
    ("c5", "2026-03-06 12:00:00", "home_page", "web"),
    # c6: a pop-up the day before the attempt does not count
    ("c6", "2026-03-04 10:00:00", "popup_shown", "web"),
    ("c6", "2026-03-05 10:00:00", "home_page", "web"),
])

# customer, attempt start, step, left, channel, popup_shown, registration_form (by hand)
TINY_EXPECTED = [
    ("c1", "2026-03-01 10:00:00", "home_page", 0, "web", 1, 0),
    ("c1", "2026-03-01 10:00:00", "product_page", 0, "web", 1, 0),
    ("c1", "2026-03-01 10:00:00", "add_to_cart", 0, "web", 1, 1),
    ("c1", "2026-03-01 10:00:00", "checkout", 0, "web", 1, 1),
    ("c2", "2026-03-02 08:00:00", "home_page", 0, "app", 0, 0),
    ("c2", "2026-03-02 08:00:00", "product_page", 1, "app", 0, 0),
    ("c2", "2026-03-20 09:00:00", "home_page", 1, "web", 0, 0),
    ("c3", "2026-03-03 09:00:00", "home_page", 1, "web", 0, 0),
    ("c5", "2026-03-04 12:00:00", "home_page", 0, "store", 0, 0),
    ("c5", "2026-03-04 12:00:00", "product_page", 0, "store", 0, 0),
    ("c5", "2026-03-04 12:00:00", "add_to_cart", 1, "store", 0, 0),
    ("c6", "2026-03-05 10:00:00", "home_page", 1, "web", 0, 0),
]


def test_person_steps_by_hand():
    ps = person_steps(TINY, covariates=["channel"],
                      exposures=["popup_shown", "registration_form"]).execute()
    got = ps.sort_values(["customer_id", "start", "step_index"]).reset_index(drop=True)
    exp = pd.DataFrame(TINY_EXPECTED, columns=["customer_id", "start", "step", "left", "channel",
                                               "popup_shown", "registration_form"])
    exp["start"] = pd.to_datetime(exp["start"], utc=True)
    assert len(got) == len(exp)
    for c in exp.columns:
        if c == "start":
            assert (got[c].dt.tz_convert("UTC").to_numpy() == exp[c].to_numpy()).all()
        else:
            assert got[c].astype(exp[c].dtype).tolist() == exp[c].tolist(), c
    assert set(got["step_index"]) == {1, 2, 3, 4}


def test_person_steps_matches_simulator_truth():
    sim = simulate_journeys(3_000, seed=21)
    ps = person_steps(sim.events, covariates=["channel"],
                      exposures=["popup_shown", "registration_form"]).execute()
    c = sim.truth.customers
    assert (ps["step_index"] == 1).sum() == len(c)            # one attempt per journey
    order = {"home_page": 1, "product_page": 2, "add_to_cart": 3, "checkout": 4, "purchase": 5}
    assert len(ps) == int(np.minimum(c["last_step"].map(order), 4).sum())
    assert ps["left"].sum() == (~c["converted"]).sum()
    first = ps[ps["step_index"] == 1]
    # the FMOT channel of the hazard is the channel of the home page
    assert first["channel"].value_counts().sort_index().tolist() == \
        c["channel"].value_counts().sort_index().tolist()
    assert first["popup_shown"].sum() == c["popup_seen"].sum()
    assert ps.loc[ps["step"] == "checkout", "registration_form"].sum() == c["registration_seen"].sum()


# ----------------------------------------------------------------------------- collapsed fit
@pytest.fixture(scope="module")
def sim5k():
    return simulate_journeys(5_000, seed=11)


@pytest.fixture(scope="module")
def fit5k(sim5k):
    return DropoffModel(covariates=["channel", "device"], **{k: v for k, v in FULL.items()
                                                             if k != "covariates"}).fit(sim5k.events)


def test_collapsed_equals_uncollapsed_logit(sim5k, fit5k):
    ps = person_steps(sim5k.events, covariates=["channel", "device"],
                      exposures=["popup_shown", "registration_form"]).execute()
    X = fit5k.design_matrix(ps)
    ref = sm.Logit(ps["left"].to_numpy(float), X).fit(disp=0, tol=1e-12, maxiter=100)
    assert fit5k.n_rows == len(ps)
    assert fit5k.n_patterns < len(ps) / 50
    np.testing.assert_allclose(fit5k.params.to_numpy(), ref.params.to_numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(fit5k.bse.to_numpy(), ref.bse.to_numpy(), atol=1e-6, rtol=0)


def test_summary_predict_frame_plot_repr(fit5k):
    s = fit5k.summary()
    assert list(s.columns[:2]) == ["term", "kind"]
    assert {"odds_ratio", "ci_low", "ci_high", "p_value", "q_value"} <= set(s.columns)
    assert s.loc[s["kind"] == "baseline", "q_value"].isna().all()
    assert s.loc[s["kind"] != "baseline", "q_value"].notna().all()
    assert (s["q_value"].dropna() >= s.loc[s["kind"] != "baseline", "p_value"] - 1e-15).all()
    assert s.attrs["references"] == {"channel": "web", "device": "mobile"}
    assert "registration_form:checkout" in set(s["term"])
    assert "registration_form" not in set(s["term"])
    pr = fit5k.predict(pd.DataFrame({"channel": ["web", "app"], "popup_shown": [1, 0]}))
    assert len(pr) == 8 and pr["step"].tolist()[:4] == ["home_page", "product_page", "add_to_cart", "checkout"]
    # app without pop-up converts more; conversion = product of (1 - hazard)
    conv = pr.groupby("profile")["conversion"].first()
    assert conv[1] > conv[0]
    np.testing.assert_allclose(conv[0], np.prod(1 - pr.loc[pr["profile"] == 0, "hazard"]))
    with pytest.raises(ValueError, match="unknown level"):
        fit5k.predict(pd.DataFrame({"channel": ["fax"]}))
    f = fit5k.to_frame()
    assert f["step"].tolist() == ["home_page", "product_page", "add_to_cart", "checkout"]
    # with a dummy per step, the fitted hazard per step equals the observed one
    np.testing.assert_allclose(f["predicted"], f["observed"], atol=1e-6)
    d = fit5k.to_dict()
    assert d["n_rows"] == fit5k.n_rows and "popup_shown" in d["terms"]
    r = repr(fit5k)
    assert "person-step rows" in r and "patterns" in r and "customers" in r
    assert "<table" in fit5k._repr_html_()
    ax = fit5k.plot()
    assert ax.get_xscale() == "log"
    plt.close("all")


def test_validate(fit5k):
    v = fit5k.validate(test_size=0.3, random_state=0)
    assert v.auc > 0.55
    cal = v.calibration
    assert cal["n"].sum() == v.n_test_rows and v.n_test_rows + v.n_train_rows == fit5k.n_rows
    assert 0.2 < v.n_test_rows / fit5k.n_rows < 0.4
    # weighted means agree overall and bin by bin within a tolerance
    assert abs(np.average(cal["predicted"], weights=cal["n"])
               - np.average(cal["observed"], weights=cal["n"])) < 0.02
    assert (cal["predicted"] - cal["observed"]).abs().max() < 0.08
    assert fit5k.validate(random_state=1).n_test_rows != v.n_test_rows


# ----------------------------------------------------------------------------- planted truth
def _covers(s, term, truth):
    r = s.set_index("term").loc[term]
    return r["ci_low"] <= truth <= r["ci_high"]


def test_planted_effects_recovered():
    sim = simulate_journeys(40_000, seed=2024)
    s = DropoffModel(**FULL).fit(sim.events).summary()
    eff = sim.truth.dropoff_effects.set_index("term")["odds_ratio"]
    assert _covers(s, "popup_shown", eff["popup_shown"]), s
    assert _covers(s, "channel[app]", eff["channel_app"]), s
    assert _covers(s, "registration_form:checkout", eff["registration_form"]), s
    # and the non-effect (store vs web) is not significant after FDR control
    assert s.set_index("term").loc["channel[store]", "q_value"] > 0.01
    # baseline hazards at the reference profile are the planted ones
    alpha = sim.truth.step_alpha
    for step, a in alpha.items():
        r = s.set_index("term").loc[f"step[{step}]"]
        assert r["ci_low"] <= np.exp(a) <= r["ci_high"], step


@pytest.mark.slow
def test_ci_coverage_of_popup_effect():
    covered = []
    for seed in range(40):
        sim = simulate_journeys(6_000, seed=1000 + seed)
        s = DropoffModel(**FULL).fit(sim.events).summary()
        covered.append(_covers(s, "popup_shown", 2.0))
    share = float(np.mean(covered))
    print(f"popup_shown 95% CI coverage over 40 seeds: {share:.3f}")
    assert 0.85 <= share <= 1.0


# ----------------------------------------------------------------------------- errors
def test_errors():
    with pytest.raises(ValueError, match="did you mean 'channel'"):
        DropoffModel(covariates=["chanel"]).fit(TINY)
    with pytest.raises(ValueError, match="did you mean 'popup_shown'"):
        DropoffModel(exposures=["popup_show"]).fit(TINY)
    with pytest.raises(ValueError, match="single level"):
        DropoffModel(covariates=["channel"]).fit(TINY[TINY["channel"] == "web"])
    with pytest.raises(ValueError, match="empty"):
        DropoffModel().fit(TINY[TINY["touchpoint"] != "home_page"])
    with pytest.raises(ValueError, match="never occurs"):
        DropoffModel(exposures=["sales_call"]).fit(TINY)
    with pytest.raises(ValueError, match="interactions"):
        DropoffModel(exposures=["popup_shown"], interactions={"popup_shown": ["chekout"]}).fit(TINY)
    with pytest.raises(ValueError, match="funnel step"):
        person_steps(TINY, exposures=["checkout"])


# ----------------------------------------------------------------------------- survival
def test_survival_table_by_hand():
    st = survival_table(TINY, by="channel", unit="1min")
    st = st.set_index(["customer_id", st["start"].dt.strftime("%m-%d")])
    end = pd.Timestamp("2026-03-20 09:30:00", tz="UTC")                 # last event
    assert st.loc[("c1", "03-01"), ["duration", "dropped"]].tolist() == [8.0, 0]   # converted
    assert st.loc[("c2", "03-02"), ["duration", "dropped"]].tolist() == [1.0, 1]
    open_min = (end - pd.Timestamp("2026-03-20 09:00:00", tz="UTC")) / pd.Timedelta("1min")
    assert st.loc[("c2", "03-20"), ["duration", "dropped"]].tolist() == [open_min, 0]  # window open
    assert st.loc[("c3", "03-03"), ["duration", "dropped"]].tolist() == [0.0, 1]
    assert st.loc[("c5", "03-04"), ["duration", "dropped", "last_step"]].tolist() == [3.0, 1, "add_to_cart"]
    assert st.loc[("c2", "03-20"), "channel"] == "web"
    assert st.attrs["unit"] == "0 days 00:01:00"


def test_kaplan_meier_by_hand():
    st = pd.DataFrame({"duration": [1, 2, 2, 3, 4, 5], "dropped": [1, 1, 0, 1, 0, 1],
                       "g": ["a"] * 6})
    km = kaplan_meier(st, by="g")
    s = km.set_index("time")["survival"]
    # at risk 6,5,3,1 at t = 1,2,3,5 with one event each
    assert s[0] == 1.0
    np.testing.assert_allclose(s[1], 5 / 6)
    np.testing.assert_allclose(s[2], 5 / 6 * 4 / 5)
    np.testing.assert_allclose(s[3], 5 / 6 * 4 / 5 * 2 / 3)
    np.testing.assert_allclose(s[5], 0.0)
    assert (km["ci_low"] <= km["survival"] + 1e-12).all() and (km["survival"] <= km["ci_high"] + 1e-12).all()
    assert km.attrs["logrank"] is None
    ax = plot_kaplan_meier(km)
    assert len(ax.lines) == 1
    plt.close("all")


def test_logrank_and_cox_separate_app_from_web():
    sim = simulate_journeys(4_000, seed=5)
    ev = sim.events
    km = kaplan_meier(ev, by="channel")
    lr = km.attrs["logrank"]
    assert lr["df"] == 2 and lr["p_value"] < 1e-6 and lr["statistic"] > 0
    last = km.groupby("group")["survival"].last()
    assert last["app"] > last["web"]                    # app customers drop off less
    hr = cox(ev, covariates=["channel"]).set_index("term")
    assert hr.loc["channel[app]", "ci_high"] < 1 and hr.loc["channel[app]", "p_value"] < 1e-6
    # no planted effect at the same level: store vs web is similar
    assert hr.loc["channel[store]", "ci_low"] < 1.25


# ----------------------------------------------------------------------------- real data
def test_online_shoppers_session_dropoff():
    df = pd.read_csv(shared_file("online_shoppers", "online_shoppers_intention.csv"))
    res = session_dropoff(df, outcome="Revenue",
                          covariates=["PageValues", "ExitRates", "BounceRates", "ProductRelated",
                                      "ProductRelated_Duration", "Administrative", "Month",
                                      "VisitorType", "Weekend"])
    assert res.auc > 0.75
    pv = res.summary().set_index("term").loc["PageValues"]
    # odds ratios are of leaving; per SD of PageValues the odds of *converting* rise
    assert 1 / pv["odds_ratio"] > 1 and pv["ci_high"] < 1
    assert "cross-validated AUC" in repr(res)


def test_bpic2012_kaplan_meier_by_amount(ws):
    path = shared_file("bpic2012_loans", "bpic2012_events.csv.gz")
    ws.pull(path, mapping={"customer_id": "case_id", "touchpoint": "activity", "ts": "timestamp"})
    steps = ["A_SUBMITTED", "A_PREACCEPTED", "A_ACCEPTED", "A_FINALIZED", "A_APPROVED"]
    jm = JourneyMap.from_dict({
        "name": "BPIC 2012 loan applications",
        "moments": [{"id": "APPLY", "label": "application", "phase": "before", "touchpoints": steps}],
        "funnel": steps, "conversion": "A_APPROVED", "conversion_window": "60D"})
    km = kaplan_meier(ws, by="amount_req", bins=3, journey=jm, unit="1D")
    assert km["group"].nunique() == 3
    lr = km.attrs["logrank"]
    assert lr["df"] == 2 and 0 <= lr["p_value"] <= 1 and np.isfinite(lr["statistic"])
    assert km.groupby("group")["n_risk"].first().sum() == 13_087


def test_logrank_p_value_below_1e16_is_the_chi2_survival_function_not_zero():
    # statsmodels' survdiff returns 1 - chi2.cdf, exactly 0 once p < ~1e-16
    from scipy.stats import chi2

    rng = np.random.default_rng(3)
    st = pd.DataFrame({"duration": np.r_[rng.exponential(1.0, 300), rng.exponential(20.0, 300)],
                       "dropped": np.ones(600, dtype=bool),
                       "group": ["fast"] * 300 + ["slow"] * 300})
    lr = kaplan_meier(st, by="group").attrs["logrank"]
    assert lr["df"] == 1 and lr["statistic"] > 100
    assert 0 < lr["p_value"] < 1e-16
    assert lr["p_value"] == pytest.approx(chi2.sf(lr["statistic"], 1), rel=1e-9)
