"""Key drivers: planted effects are recovered, Johnson's weights sum to R² and match a
brute-force dominance analysis, the models equal statsmodels fitted directly, group
rollups add up, bad input fails early; the airline survey shows its known drivers."""
from __future__ import annotations

import itertools
import json
import math
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from conftest import shared_file
from matplotlib import pyplot as plt
from statsmodels.miscmodels.ordinal_model import OrderedModel
from statsmodels.tools.numdiff import approx_fprime

from cxlab import JourneyMap
from cxlab._drivers import (
    KeyDriversResult,
    _ordered_model_class,
    key_drivers,
    plot_key_drivers,
    relative_weights,
)

BETA = (1.2, 0.8, 0.5, 0.25, 0.0)          # d5 has no effect
DRIVERS = [f"d{i + 1}" for i in range(len(BETA))]


def simulate(n=3000, seed=7, rho=0.3) -> pd.DataFrame:
    """1-5 ratings from equicorrelated normals; a 1-5 score from an ordered logit on them."""
    rng = np.random.default_rng(seed)
    p = len(BETA)
    cov = np.full((p, p), rho) + np.eye(p) * (1 - rho)
    z = rng.multivariate_normal(np.zeros(p), cov, size=n)
    x = np.clip(np.round(3 + 1.1 * z), 1, 5).astype(int)
    latent = x @ np.array(BETA) + rng.logistic(size=n)
    y = 1 + np.searchsorted(np.quantile(latent, [0.1, 0.3, 0.6, 0.85]), latent)
    df = pd.DataFrame(x, columns=DRIVERS)
    df["score"] = y
    return df


@pytest.fixture(scope="module")
def sim():
    return simulate()


@pytest.fixture(scope="module")
def fitted(sim):
    return key_drivers(sim, outcome="score", drivers=DRIVERS, n_boot=200, random_state=1)


def dominance(df, outcome, drivers) -> np.ndarray:
    """General dominance weights (the Shapley value of R²): every subset regressed with OLS."""
    p = len(drivers)
    r2 = {}
    for k in range(p + 1):
        for sub in itertools.combinations(range(p), k):
            r2[sub] = (0.0 if not sub else
                       sm.OLS(df[outcome], sm.add_constant(df[[drivers[i] for i in sub]])).fit().rsquared)
    out = np.zeros(p)
    for j in range(p):
        for sub, v in r2.items():
            if j not in sub:
                w = math.factorial(len(sub)) * math.factorial(p - len(sub) - 1) / math.factorial(p)
                out[j] += w * (r2[tuple(sorted(sub + (j,)))] - v)
    return out


# =========================================================================== planted truth
def test_planted_effects_are_recovered(fitted):
    s = fitted.summary().set_index("driver").loc[DRIVERS]
    assert fitted.method == "ordered logit" and fitted.levels == (1, 2, 3, 4, 5)
    # every coefficient's interval covers its true value, the zero effect included
    assert ((s["ci_low"] <= np.array(BETA)) & (np.array(BETA) <= s["ci_high"])).all(), s
    assert s.loc["d5", "ci_low"] < 0 < s.loc["d5", "ci_high"]
    assert s.loc["d5", "p_value"] > 0.05 and (s.loc[DRIVERS[:4], "q_value"] < 0.001).all()
    np.testing.assert_allclose(s["odds_ratio"], np.exp(s["estimate"]))
    np.testing.assert_allclose(s["odds_ratio_ci_low"], np.exp(s["ci_low"]))
    # importance follows the planted effects; the null driver gets a small share only
    assert s["rank"].tolist() == [1, 2, 3, 4, 5]
    assert s.loc["d5", "importance_share"] < 0.05
    assert s.loc["d5", "importance_share_ci_high"] < s.loc["d4", "importance_share_ci_low"]
    for lo, est, hi in zip(s["importance_ci_low"], s["importance"], s["importance_ci_high"]):
        assert 0 <= lo < est < hi


def test_weights_sum_to_r2_of_ols(fitted, sim):
    s = fitted.summary()
    ols = sm.OLS(sim["score"], sm.add_constant(sim[DRIVERS])).fit()
    assert s["importance"].sum() == pytest.approx(ols.rsquared, rel=1e-12)
    assert fitted.r2 == pytest.approx(ols.rsquared, rel=1e-12)
    assert s["importance_share"].sum() == pytest.approx(1.0, rel=1e-12)
    assert (s["importance"] > 0).all()


def test_johnson_weights_approximate_brute_force_dominance():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(6, 6)) * 0.6
    cov = a @ a.T + np.eye(6)
    sd = np.sqrt(np.diag(cov))
    x = rng.multivariate_normal(np.zeros(6), cov / np.outer(sd, sd), size=2000)
    df = pd.DataFrame(x, columns=list("abcdef"))
    df["y"] = x @ np.array([0.5, 0.4, 0.3, 0.2, 0.1, 0.0]) + rng.normal(size=2000)
    r = key_drivers(df, outcome="y", drivers=list("abcdef"), kind="ols", n_boot=0)
    dom = dominance(df, "y", list("abcdef"))
    assert dom.sum() == pytest.approx(r.r2, rel=1e-10)       # both decompose the same R²
    s = r.summary().set_index("driver").loc[list("abcdef")]
    np.testing.assert_allclose(s["importance"], dom, atol=0.01 * r.r2)
    assert s["rank"].tolist()[:4] == list(pd.Series(-dom).rank(method="min").astype(int))[:4]


def test_dominance_on_ordinal_simulation(fitted, sim):
    dom = dominance(sim, "score", DRIVERS)
    s = fitted.summary().set_index("driver").loc[DRIVERS]
    np.testing.assert_allclose(s["importance"], dom, atol=0.005)


def test_relative_weights_closed_forms():
    # uncorrelated drivers: the weights are the squared correlations with the outcome
    r = np.array([[1.0, 0.0, 0.6], [0.0, 1.0, 0.3], [0.6, 0.3, 1.0]])
    np.testing.assert_allclose(relative_weights(r), [0.36, 0.09])
    # batched equals one by one; a singular driver block gives NaN, not garbage
    singular = np.array([[1.0, 1.0, 0.5], [1.0, 1.0, 0.5], [0.5, 0.5, 1.0]])
    out = relative_weights(np.stack([r, singular, r]))
    np.testing.assert_allclose(out[0], [0.36, 0.09])
    assert np.isnan(out[1]).all() and np.allclose(out[2], out[0])


# =========================================================================== the models
def test_ols_equals_statsmodels_hc3(sim):
    r = key_drivers(sim, outcome="score", drivers=DRIVERS, kind="ols", n_boot=0, alpha=0.1)
    ref = sm.OLS(sim["score"].astype(float), sm.add_constant(sim[DRIVERS].astype(float))).fit(cov_type="HC3")
    s = r.summary().set_index("driver").loc[DRIVERS]
    np.testing.assert_allclose(s["estimate"], ref.params[DRIVERS], rtol=1e-10)
    np.testing.assert_allclose(s["std_error"], ref.bse[DRIVERS], rtol=1e-10)
    np.testing.assert_allclose(s["p_value"], ref.pvalues[DRIVERS], rtol=1e-8)
    ci = ref.conf_int(alpha=0.1).loc[DRIVERS]
    np.testing.assert_allclose(s["ci_low"], ci[0], rtol=1e-8)
    np.testing.assert_allclose(s["ci_high"], ci[1], rtol=1e-8)
    assert r.method == "ols (HC3)" and s["odds_ratio"].isna().all() and math.isnan(r.pseudo_r2)
    assert r.r2 == pytest.approx(ref.rsquared, rel=1e-12)


def test_ordinal_equals_statsmodels_ordered_model(sim):
    small = sim.iloc[:800]
    r = key_drivers(small, outcome="score", drivers=DRIVERS[:3], n_boot=0)
    ref = OrderedModel(small["score"].to_numpy(), small[DRIVERS[:3]].astype(float),
                       distr="logit").fit(method="bfgs", disp=False, maxiter=2000)
    s = r.summary().set_index("driver").loc[DRIVERS[:3]]
    np.testing.assert_allclose(s["estimate"], ref.params[DRIVERS[:3]], rtol=1e-5)
    np.testing.assert_allclose(s["std_error"], ref.bse[DRIVERS[:3]], rtol=1e-4)
    assert r.pseudo_r2 == pytest.approx(ref.prsquared, rel=1e-6)


def test_analytic_score_equals_numerical_gradient(sim):
    X, y = sim[DRIVERS].astype(float), sim["score"].to_numpy() - 1
    model = _ordered_model_class()(y, X, distr="logit")
    params = np.array([0.3, 0.2, 0.1, 0.0, -0.1, -1.0, 0.2, -0.3, 0.5])
    num = approx_fprime(params, OrderedModel(y, X, distr="logit").loglike, centered=True)
    np.testing.assert_allclose(model.score(params), num, rtol=1e-5, atol=1e-4)


def test_binary_outcome_with_order_is_the_two_level_ordered_logit(sim):
    df = sim.assign(verdict=np.where(sim["score"] >= 4, "satisfied", "neutral or dissatisfied"))
    order = ["neutral or dissatisfied", "satisfied"]
    r = key_drivers(df, outcome="verdict", drivers=DRIVERS, outcome_order=order, n_boot=0)
    assert r.method == "binary logit" and r.levels == tuple(order)
    ref = OrderedModel((df["verdict"] == "satisfied").astype(int).to_numpy(), df[DRIVERS].astype(float),
                       distr="logit").fit(method="bfgs", disp=False, maxiter=2000)
    s = r.summary().set_index("driver").loc[DRIVERS]
    np.testing.assert_allclose(s["estimate"], ref.params[DRIVERS], rtol=1e-4, atol=1e-6)
    # reversing the order flips the signs; an ordered Categorical gives the same fit
    flipped = key_drivers(df, outcome="verdict", drivers=DRIVERS, outcome_order=order[::-1], n_boot=0)
    np.testing.assert_allclose(flipped.estimate, -r.estimate, rtol=1e-6)
    cat = df.assign(verdict=pd.Categorical(df["verdict"], categories=order, ordered=True))
    np.testing.assert_allclose(key_drivers(cat, outcome="verdict", drivers=DRIVERS, n_boot=0).estimate,
                               r.estimate)


# =========================================================================== groups, missing, result
def test_group_rollups_are_sums_from_the_same_resamples(sim):
    groups = {"d1": "during", "d2": "before", "d3": "during", "d4": "before", "d5": "after"}
    r = key_drivers(sim, outcome="score", drivers=DRIVERS, groups=groups, n_boot=100)
    s, g = r.summary().set_index("driver"), r.groups().set_index("group")
    assert list(g.index) == ["before", "during", "after"]            # phase order, not dict order
    assert g.loc["during", "importance"] == pytest.approx(s.loc[["d1", "d3"], "importance"].sum())
    assert g.loc["before", "n_drivers"] == 2 and g.loc["before", "drivers"] == "d2, d4"
    assert g["importance"].sum() == pytest.approx(r.r2) and g["importance_share"].sum() == pytest.approx(1)
    # a one-driver group's interval is that driver's: the same resamples
    for col in ("importance_ci_low", "importance_ci_high", "importance_share_ci_low",
                "importance_share_ci_high"):
        assert g.loc["after", col] == pytest.approx(s.loc["d5", col], rel=1e-12)
    assert (g["importance_ci_low"] < g["importance"]).all() and (g["importance"] < g["importance_ci_high"]).all()
    assert s.loc["d2", "group"] == "before"


def test_journey_groups_by_moment_of_truth(sim):
    tps = {"d1": "checkout", "d2": "search", "d3": "delivery", "d4": "review_written", "d5": "product_page"}
    df = sim.rename(columns=tps)
    r = key_drivers(df, outcome="score", drivers=list(tps.values()), journey=JourneyMap.default(), n_boot=20)
    g = r.groups()
    assert g["group"].tolist() == ["ZMOT", "FMOT", "SMOT", "UMOT"]
    assert g.set_index("group").loc["FMOT", "drivers"] == "checkout, product_page"
    with pytest.raises(ValueError, match="not touchpoints of the journey map.*did you mean 'checkout'"):
        key_drivers(df.rename(columns={"checkout": "chekout"}), outcome="score",
                    drivers=["chekout", "search"], journey=JourneyMap.default(), n_boot=0)


def test_missing_values_are_dropped_and_counted_and_input_is_untouched(sim):
    df = sim.copy()
    df.loc[:9, "d1"] = 0              # ten "not rated"
    df.loc[5:14, "d2"] = np.nan       # ten missing, five of them overlap
    df.loc[20, "score"] = np.nan
    before = df.copy()
    r = key_drivers(df, outcome="score", drivers=DRIVERS, missing_values=(0,), n_boot=10)
    pd.testing.assert_frame_equal(df, before)
    assert (r.n_used, r.n_dropped) == (len(df) - 16, 16)
    s = r.summary().set_index("driver")
    assert (s.loc["d1", "n_missing"], s.loc["d2", "n_missing"], s.loc["d3", "n_missing"]) == (10, 10, 0)
    ref = key_drivers(df.dropna().query("d1 != 0"), outcome="score", drivers=DRIVERS, n_boot=10)
    np.testing.assert_allclose(r.estimate, ref.estimate)


def test_bootstrap_is_seeded(sim):
    a = key_drivers(sim, outcome="score", drivers=DRIVERS, kind="ols", n_boot=30, random_state=5)
    b = key_drivers(sim, outcome="score", drivers=DRIVERS, kind="ols", n_boot=30, random_state=5)
    c = key_drivers(sim, outcome="score", drivers=DRIVERS, kind="ols", n_boot=30, random_state=6)
    col = "importance_ci_high"
    assert a.summary()[col].tolist() == b.summary()[col].tolist() != c.summary()[col].tolist()
    none = key_drivers(sim, outcome="score", drivers=DRIVERS, kind="ols", n_boot=0).summary()
    assert none["importance_ci_low"].isna().all() and none["importance"].notna().all()


def test_result_exports_and_displays(fitted):
    assert isinstance(fitted, KeyDriversResult)
    d = fitted.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["top_driver"] == "d1" and d["n_used"] == 3000 and d["kind"] == "ordinal"
    assert d["drivers"]["d5"]["group"] is None and d["groups"] == {}
    assert set(d["drivers"]) == set(DRIVERS)
    text = repr(fitted)
    assert "ordered logit of 'score' on 5 drivers" in text and "n=3,000" in text and "R² 0.5" in text
    assert "<table" in fitted._repr_html_()
    s = fitted.summary()
    assert list(s.columns[:6]) == ["driver", "group", "estimate", "std_error", "ci_low", "ci_high"]
    assert s.attrs["n_used"] == 3000 and fitted.groups().empty
    with pytest.raises(AttributeError):
        fitted.r2 = 1.0


def test_plot_key_drivers(sim):
    groups = {"d1": "during", "d2": "before", "d3": "during", "d4": "before", "d5": "after"}
    r = key_drivers(sim, outcome="score", drivers=DRIVERS, groups=groups, n_boot=20)
    _, ax = plt.subplots()
    try:
        assert plot_key_drivers(r, ax=ax) is ax
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == ["d5", "d4", "d3", "d2", "d1"]            # largest on top
        assert len(ax.patches) == 5
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["before", "during", "after"]
        ax2 = plot_key_drivers(key_drivers(sim, outcome="score", drivers=DRIVERS, n_boot=0))
        assert ax2.get_legend() is None
    finally:
        plt.close("all")


# =========================================================================== bad input
@pytest.mark.parametrize("kwargs, match", [
    ({"outcome": "scroe"}, r"outcome='scroe' is not a column.*did you mean 'score'"),
    ({"drivers": ["d1", "d22"]}, r"drivers: 'd22' is not a column.*did you mean"),
    ({"drivers": ["d1", "name"]}, r"'name' is not numeric"),
    ({"drivers": ["d1", "flat"]}, r"drivers \['flat'\] are constant"),
    ({"drivers": ["d1", "d1_copy", "d2"]}, r"collinear"),
    ({"kind": "logit"}, r"kind='logit' is not one of \('ordinal', 'ols'\)"),
    ({"kind": "olss"}, r"did you mean 'ols'"),
    ({"drivers": []}, r"at least one driver"),
    ({"drivers": ["d1", "score"]}, r"is the outcome"),
    ({"drivers": ["d1", "d1"]}, r"more than once"),
    ({"outcome": "label"}, r"not numeric.*outcome_order"),
    ({"outcome": "label", "outcome_order": ["bad", "good"]}, r"not in outcome_order"),
    ({"outcome": "label", "outcome_order": ["bad"]}, r"at least two"),
    ({"outcome": "flat"}, r"outcome 'flat' is constant"),
    ({"outcome": "cont"}, r"at most 20 levels, use kind='ols'"),
    ({"groups": {"d1": "a"}}, r"no group for drivers \['d2'\]"),
    ({"groups": {"d1": "a", "d2": "b", "d9": "c"}}, r"groups: 'd9' is not one of the drivers"),
    ({"alpha": 1.5}, r"alpha=1.5"),
    ({"n_boot": -1}, r"n_boot=-1"),
])
def test_bad_input_fails_early(sim, kwargs, match):
    df = sim.iloc[:200].assign(name="x", flat=3, cont=np.linspace(0, 1, 200),
                               label=np.where(sim["score"].iloc[:200] > 3, "good", "fine"))
    df = df.assign(d1_copy=2 * df["d1"] + 1)
    args = {"outcome": "score", "drivers": ["d1", "d2"], "n_boot": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        key_drivers(df, **args)


def test_too_few_rows_and_wrong_types(sim):
    with pytest.raises(ValueError, match=r"only 5 complete rows for 5 drivers; need at least 7"):
        key_drivers(sim.iloc[:5], outcome="score", drivers=DRIVERS, n_boot=0)
    few = sim.iloc[:10].assign(d1=[0] * 7 + [1, 2, 3])
    with pytest.raises(ValueError, match=r"only 3 complete rows for 2 drivers.*7 of 10 rows dropped"):
        key_drivers(few, outcome="score", drivers=["d1", "d2"], missing_values=0, n_boot=0)
    with pytest.raises(TypeError, match="DataFrame"):
        key_drivers(sim.to_numpy(), outcome="score", drivers=DRIVERS)
    with pytest.raises(TypeError, match="KeyDriversResult"):
        plot_key_drivers(sim)


# =========================================================================== real data
PHASE = {
    "Departure/Arrival time convenient": "before", "Ease of Online booking": "before",
    "Gate location": "before", "Online boarding": "before", "Checkin service": "before",
    "Inflight wifi service": "during", "Food and drink": "during", "Seat comfort": "during",
    "Inflight entertainment": "during", "On-board service": "during", "Leg room service": "during",
    "Inflight service": "during", "Cleanliness": "during", "Baggage handling": "after",
}


@pytest.mark.realdata
def test_airline_satisfaction_key_drivers():
    df = pd.read_csv(shared_file("airline_satisfaction", "train.csv.gz"), index_col=0)
    assert len(df) == 103_904
    t0 = time.perf_counter()
    r = key_drivers(df, outcome="satisfaction", drivers=list(PHASE), groups=PHASE,
                    outcome_order=["neutral or dissatisfied", "satisfied"], missing_values=(0,),
                    n_boot=200)
    elapsed = time.perf_counter() - t0
    print(f"key_drivers on {len(df):,} rows, 14 drivers, n_boot=200: {elapsed:.1f}s")
    not_rated = (df[list(PHASE)] == 0).any(axis=1).sum()
    assert (r.n_used, r.n_dropped) == (len(df) - not_rated, not_rated) == (95_704, 8_200)
    assert r.method == "binary logit" and r.converged and 0.45 < r.r2 < 0.52

    s = r.summary().set_index("driver")
    # online boarding leads by far (about 31% of R²); wi-fi is second (about 11%)
    assert s.index[:2].tolist() == ["Online boarding", "Inflight wifi service"]
    assert s.loc["Online boarding", "importance_share_ci_low"] > 0.28
    assert s.loc["Online boarding", "importance_share_ci_low"] > 2 * s.loc["Inflight wifi service",
                                                                             "importance_share_ci_high"]
    assert s.loc["Online boarding", "odds_ratio_ci_low"] > 2.5       # per rating point
    # gate location matters least; departure/arrival time convenience has a negative
    # coefficient given the other ratings (a suppressor), though a positive weight
    assert s.index[-1] == "Gate location" and s.loc["Gate location", "importance_share"] < 0.015
    assert s.loc["Departure/Arrival time convenient", "ci_high"] < 0
    # intervals are real intervals: positive width, containing the estimate
    width = s["importance_share_ci_high"] - s["importance_share_ci_low"]
    assert (width > 0).all() and (width < 0.02).all()
    assert ((s["importance_ci_low"] < s["importance"]) & (s["importance"] < s["importance_ci_high"])).all()

    g = r.groups().set_index("group")
    assert g.index.tolist() == ["before", "during", "after"]
    assert g.loc["during", "importance_share_ci_low"] > g.loc["before", "importance_share_ci_high"]
    assert g.loc["before", "importance_share_ci_low"] > 0.4          # 5 before drivers, ~45%
    assert g.loc["after", "importance_share"] < 0.05                # baggage handling alone
    json.dumps(r.to_dict(), allow_nan=False)
