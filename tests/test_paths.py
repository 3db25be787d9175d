"""cxlab.paths: hand-computed tiny journeys, independent pandas / DuckDB SQL references on
simulated data, the planted escape routes, DuckDB vs PySpark, and the plots."""
from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.stats import norm  # noqa: E402

import cxlab  # noqa: E402
from cxlab import paths  # noqa: E402
from cxlab.datasets import simulate_journeys, write_simulation  # noqa: E402
from cxlab.stats import wilson_ci  # noqa: E402

D0 = pd.Timestamp("2026-03-01", tz="UTC")
M = pd.Timedelta(minutes=1)


def _tiny() -> pd.DataFrame:
    """Four hand-made journeys (every expected value below is worked out from these)."""
    rows = [
        # c1: registration form, checkout, leaves; comes back to the home page 9 days later
        ("c1", D0 + pd.Timedelta("10h"), "home_page", "S1"),
        ("c1", D0 + pd.Timedelta("10h") + 2 * M, "product_page", "S1"),
        ("c1", D0 + pd.Timedelta("10h") + 5 * M, "add_to_cart", "S1"),
        ("c1", D0 + pd.Timedelta("10h") + 10 * M, "registration_form", "S1"),
        ("c1", D0 + pd.Timedelta("10h") + 20 * M, "checkout", "S1"),
        ("c1", D0 + pd.Timedelta("9D") + pd.Timedelta("10h"), "home_page", "S2"),
        # c2: straight through
        ("c2", D0 + pd.Timedelta("10h"), "home_page", "S1"),
        ("c2", D0 + pd.Timedelta("10h") + 4 * M, "product_page", "S1"),
        ("c2", D0 + pd.Timedelta("10h") + 6 * M, "add_to_cart", "S1"),
        ("c2", D0 + pd.Timedelta("10h") + 16 * M, "checkout", "S1"),
        ("c2", D0 + pd.Timedelta("10h") + 20 * M, "purchase", "S1"),
        # c3: pop-up on the home page, leaves
        ("c3", D0 + pd.Timedelta("10h"), "home_page", "S1"),
        ("c3", D0 + pd.Timedelta("10h") + pd.Timedelta("10s"), "popup_shown", "S1"),
        # c4: research, product page twice, registration, buys two days after checkout
        ("c4", D0 + pd.Timedelta("9h"), "search", "S1"),
        ("c4", D0 + pd.Timedelta("10h"), "home_page", "S2"),
        ("c4", D0 + pd.Timedelta("10h") + 1 * M, "product_page", "S2"),
        ("c4", D0 + pd.Timedelta("10h") + 2 * M, "product_page", "S2"),
        ("c4", D0 + pd.Timedelta("10h") + 3 * M, "add_to_cart", "S2"),
        ("c4", D0 + pd.Timedelta("10h") + 5 * M, "registration_form", "S2"),
        ("c4", D0 + pd.Timedelta("10h") + 8 * M, "checkout", "S2"),
        ("c4", D0 + pd.Timedelta("2D") + pd.Timedelta("10h"), "purchase", "S3"),
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "ts", "touchpoint", "session_id"])
    df["channel"] = "web"
    return df.sample(frac=1, random_state=3).reset_index(drop=True)  # order must not matter


@pytest.fixture(scope="module")
def tiny() -> pd.DataFrame:
    return _tiny()


@pytest.fixture(scope="module")
def sim3k() -> pd.DataFrame:
    return simulate_journeys(3_000, seed=11).events


@pytest.fixture(scope="module")
def sim20k() -> pd.DataFrame:
    return simulate_journeys(20_000, seed=5).events


# --------------------------------------------------------------------------- transitions
def test_transitions_hand_computed(tiny):
    before = tiny.copy()
    tr = paths.transitions(tiny)
    pd.testing.assert_frame_equal(tiny, before)  # input untouched
    got = {(r.touchpoint, r.next_touchpoint): (r.n, r.customers, round(r.probability, 9), r.median_time)
           for r in tr.itertuples()}
    nat = pd.NaT
    expected = {
        ("home_page", "product_page"): (3, 3, 0.6, 2 * M),          # 2, 4, 1 min
        ("home_page", "popup_shown"): (1, 1, 0.2, pd.Timedelta("10s")),
        ("home_page", "(end)"): (1, 1, 0.2, nat),                    # c1's return visit
        ("product_page", "add_to_cart"): (3, 3, 0.75, 2 * M),       # 3, 2, 1 min
        ("product_page", "product_page"): (1, 1, 0.25, M),
        ("add_to_cart", "registration_form"): (2, 2, round(2 / 3, 9), 3.5 * M),  # 5, 2 min
        ("add_to_cart", "checkout"): (1, 1, round(1 / 3, 9), 10 * M),
        ("registration_form", "checkout"): (2, 2, 1.0, 6.5 * M),    # 10, 3 min
        ("checkout", "purchase"): (2, 2, round(2 / 3, 9), pd.Timedelta("1D") - 2 * M),  # 4 min, 2D-8min
        ("checkout", "home_page"): (1, 1, round(1 / 3, 9), pd.Timedelta("9D") - 20 * M),
        ("purchase", "(end)"): (2, 2, 1.0, nat),
        ("popup_shown", "(end)"): (1, 1, 1.0, nat),
        ("search", "home_page"): (1, 1, 1.0, pd.Timedelta("1h")),
    }
    assert set(got) == set(expected)
    for key, (n, c, p, med) in expected.items():
        gn, gc, gp, gmed = got[key]
        assert (gn, gc, gp) == (n, c, p), key
        assert (pd.isna(gmed) and pd.isna(med)) or gmed == med, (key, gmed, med)
    assert tr["n"].sum() == len(tiny)  # one transition per event, (end) included
    assert list(tr.columns) == ["touchpoint", "next_touchpoint", "n", "customers", "probability",
                                "median_time"]


def test_transitions_options(tiny):
    # min_count keeps the probabilities computed on all transitions
    tr = paths.transitions(tiny, min_count=2)
    assert tr["n"].min() == 2
    assert tr.set_index(["touchpoint", "next_touchpoint"]).loc[("home_page", "product_page"),
                                                                 "probability"] == pytest.approx(0.6)
    # sessions: c1's checkout ends session S1, c4's search ends S1 and checkout ends S2
    ts = paths.transitions(tiny, session=True).set_index(["touchpoint", "next_touchpoint"])
    assert ("checkout", "home_page") not in ts.index
    assert ts.loc[("checkout", "(end)"), "n"] == 2
    assert ts.loc[("search", "(end)"), "n"] == 1
    # by: the level of the source event
    df = tiny.copy()
    df["channel"] = np.where(df["customer_id"] == "c2", "app", "web")
    tb = paths.transitions(df, by="channel")
    assert tb.groupby(["channel", "touchpoint"])["probability"].sum().round(9).eq(1).all()
    app_home = tb[(tb.channel == "app") & (tb.touchpoint == "home_page")]
    assert app_home["next_touchpoint"].tolist() == ["product_page"]


def test_transitions_ties_ordered_by_touchpoint():
    df = pd.DataFrame({"customer_id": ["c9", "c9"], "ts": [D0, D0],
                       "touchpoint": ["product_page", "home_page"]})
    tr = paths.transitions(df)
    assert tr[["touchpoint", "next_touchpoint", "n"]].values.tolist() == [
        ["home_page", "product_page", 1], ["product_page", "(end)", 1]]
    assert tr["median_time"].iloc[0] == pd.Timedelta(0)


def _pandas_transitions(ev: pd.DataFrame) -> pd.DataFrame:
    s = ev.sort_values(["customer_id", "ts", "touchpoint", "channel"], kind="stable")
    g = s.groupby("customer_id", sort=False)
    s = s.assign(next_touchpoint=g["touchpoint"].shift(-1).fillna("(end)"),
                 gap=g["ts"].shift(-1) - s["ts"])
    out = (s.groupby(["touchpoint", "next_touchpoint"])
            .agg(n=("customer_id", "size"), customers=("customer_id", "nunique"),
                 median_time=("gap", "median")).reset_index())
    out["probability"] = out["n"] / out.groupby("touchpoint")["n"].transform("sum")
    return out


def test_transitions_match_pandas_and_sql(sim3k):
    import duckdb

    tr = paths.transitions(sim3k).set_index(["touchpoint", "next_touchpoint"]).sort_index()
    ref = _pandas_transitions(sim3k).set_index(["touchpoint", "next_touchpoint"]).sort_index()
    assert tr.index.equals(ref.index)
    np.testing.assert_array_equal(tr["n"].to_numpy(), ref["n"].to_numpy())
    np.testing.assert_array_equal(tr["customers"].to_numpy(), ref["customers"].to_numpy())
    np.testing.assert_allclose(tr["probability"].to_numpy(), ref["probability"].to_numpy(), rtol=1e-12)
    pd.testing.assert_series_equal(tr["median_time"], ref["median_time"].astype(tr["median_time"].dtype),
                                   check_names=False)

    con = duckdb.connect()
    con.register("ev", sim3k)
    sql = con.execute("""
        SELECT touchpoint, coalesce(nxt, '(end)') AS next_touchpoint, count(*) AS n
        FROM (SELECT touchpoint,
                     lead(touchpoint) OVER (PARTITION BY customer_id
                                            ORDER BY ts, touchpoint, channel) AS nxt
              FROM ev)
        GROUP BY 1, 2 ORDER BY 1, 2""").df().set_index(["touchpoint", "next_touchpoint"])
    con.close()
    assert tr.index.equals(sql.index)
    np.testing.assert_array_equal(tr["n"].to_numpy(), sql["n"].to_numpy())


# --------------------------------------------------------------------------- step matrix
def test_step_matrix_hand_computed(tiny):
    m = paths.step_matrix(tiny, max_steps=4)
    assert list(m.index) == ["search", "home_page", "popup_shown", "product_page", "add_to_cart",
                             "registration_form", "checkout", "(end)"]  # map order, then (end)
    assert list(m.columns) == [1, 2, 3, 4]
    assert m.attrs["customers"] == 4
    exp = {1: {"home_page": 3, "search": 1},
           2: {"product_page": 2, "popup_shown": 1, "home_page": 1},
           3: {"add_to_cart": 2, "(end)": 1, "product_page": 1},
           4: {"registration_form": 1, "checkout": 1, "(end)": 1, "product_page": 1}}
    for k, col in exp.items():
        want = pd.Series(col, dtype="float64").reindex(m.index, fill_value=0) / 4
        pd.testing.assert_series_equal(m[k], want, check_names=False)
    assert m.sum().round(12).eq(1).all()

    ms = paths.step_matrix(tiny, max_steps=3, start="add_to_cart")
    assert ms.attrs["customers"] == 3  # c3 never added to cart
    assert ms.loc["add_to_cart", 1] == 1
    assert ms.loc["registration_form", 2] == pytest.approx(2 / 3)
    assert ms.loc["checkout", 2] == pytest.approx(1 / 3)
    assert ms.loc["checkout", 3] == pytest.approx(2 / 3)
    assert ms.loc["purchase", 3] == pytest.approx(1 / 3)
    assert "(end)" not in ms.index  # nobody ran out of contacts within 3 steps


def test_step_matrix_simulated_sums_to_one(sim3k):
    m = paths.step_matrix(sim3k, max_steps=6, start="home_page")
    np.testing.assert_allclose(m.sum().to_numpy(), 1.0)
    first = sim3k.sort_values(["customer_id", "ts", "touchpoint", "channel"]).groupby("customer_id").head(1)
    m0 = paths.step_matrix(sim3k, max_steps=1)
    ref = first["touchpoint"].value_counts(normalize=True)
    pd.testing.assert_series_equal(m0[1][m0[1] > 0].sort_index(), ref.sort_index(),
                                   check_names=False, check_index_type=False)


# --------------------------------------------------------------------------- Sankey
def test_sankey_data(tiny, sim3k):
    links = paths.sankey_data(tiny, max_steps=3)
    got = {(r.step, r.source, r.target): r.n for r in links.itertuples()}
    assert got == {(1, "home_page", "product_page"): 2, (1, "home_page", "popup_shown"): 1,
                   (1, "search", "home_page"): 1, (2, "product_page", "add_to_cart"): 2,
                   (2, "popup_shown", "(end)"): 1, (2, "home_page", "product_page"): 1}
    sim = paths.sankey_data(sim3k, max_steps=5, top=6)
    assert sim.groupby("step")["n"].sum().tolist()[0] == sim3k["customer_id"].nunique()
    assert set(sim["source"]) | set(sim["target"]) <= set(sim3k["touchpoint"]) | {"(other)", "(end)"}
    assert len((set(sim["source"]) | set(sim["target"])) - {"(other)", "(end)"}) <= 6
    # flow is conserved: what enters step k+1 (not ending) leaves it
    into = sim[sim.target != "(end)"].groupby(["step", "target"])["n"].sum()
    out = sim.groupby(["step", "source"])["n"].sum()
    for (k, tp), n in into.items():
        if k + 1 < 5:
            assert out.loc[(k + 1, tp)] == n


def test_plot_sankey_needs_plotly(monkeypatch, sim3k):
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ImportError, match="pip install plotly"):
        paths.plot_sankey(paths.sankey_data(sim3k))


# --------------------------------------------------------------------------- escape routes
def test_escape_routes_hand_computed(tiny):
    er = paths.escape_routes(tiny, step="checkout")
    s = er.summary.iloc[0]
    assert (s["reached"], s["left"], s["continued"]) == (3, 1, 2)  # c1 left; c2, c4 bought
    lo, hi = wilson_ci(1, 3)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((float(lo), float(hi)))
    assert s["median_time_to_next"] == pd.Timedelta("1D") - 2 * M  # 4 min and 2D - 8 min
    assert er.last_touchpoints[["touchpoint", "channel", "n", "share"]].values.tolist() == [
        ["checkout", "web", 1, 1.0]]
    ni = er.next_instead.iloc[0]
    assert (ni["touchpoint"], ni["n"], ni["median_gap"]) == ("home_page", 1, pd.Timedelta("9D") - 20 * M)
    # exposure since the last add_to_cart: c1 and c4 saw the form, c2 did not
    lift = er.lift.set_index("touchpoint")
    assert list(lift.index) == ["registration_form"]
    r = lift.loc["registration_form"]
    assert (r["n_leavers"], r["n_continuers"]) == (1, 1)
    assert (r["share_leavers"], r["share_continuers"], r["lift"], r["difference"]) == (1.0, 0.5, 2.0, 0.5)
    p = 2 * norm.sf(0.5 / np.sqrt(2 / 3 * 1 / 3 * (1 + 1 / 2)))
    assert r["p_value"] == pytest.approx(p) and r["q_value"] == pytest.approx(p)
    assert paths.escape_routes(tiny, step="checkout", since="step").lift.empty

    # a one-day window makes c4 (bought two days later) a leaver who buys after the window
    er1 = paths.escape_routes(tiny, step="checkout", window="1D")
    assert tuple(er1.summary.loc[0, ["left", "continued"]]) == (2, 1)
    assert set(er1.next_instead["touchpoint"]) == {"home_page", "purchase"}
    assert er1.summary.loc[0, "window"] == "1D"

    er0 = paths.escape_routes(tiny, step="home_page")
    assert tuple(er0.summary.loc[0, ["reached", "left", "continued"]]) == (4, 1, 3)
    assert er0.last_touchpoints["touchpoint"].tolist() == ["popup_shown"]
    assert er0.next_instead["touchpoint"].tolist() == ["(nothing)"]
    # continuers' exposure stops at the next step: c1's later cart and form do not count
    assert er0.lift["touchpoint"].tolist() == ["popup_shown"]
    pop = er0.lift.set_index("touchpoint").loc["popup_shown"]
    assert (pop["share_leavers"], pop["share_continuers"], pop["lift"]) == (1.0, 0.0, np.inf)
    # renders
    assert "popup_shown" in er0._repr_html_() and "home_page -> product_page" in repr(er0)
    assert er0.to_dict()["left"] == 1


def test_escape_routes_errors(tiny):
    with pytest.raises(ValueError, match="did you mean 'checkout'"):
        paths.escape_routes(tiny, step="chekout")
    with pytest.raises(ValueError, match="last funnel step"):
        paths.escape_routes(tiny, step="purchase")
    for bad in (7, "7", 7.0):
        with pytest.raises(ValueError, match="unit"):
            paths.escape_routes(tiny, step="checkout", window=bad)
    with pytest.raises(ValueError, match="since"):
        paths.escape_routes(tiny, step="checkout", since="before")
    with pytest.raises(ValueError, match="did you mean 'channel'"):
        paths.transitions(tiny, by="chanel")
    with pytest.raises(ValueError, match="did you mean 'checkout'"):
        paths.step_matrix(tiny, start="checkuot")
    with pytest.raises(ValueError, match="max_steps"):
        paths.sankey_data(tiny, max_steps=1)


def _pandas_escape(ev: pd.DataFrame, step: str, nxt: str, prev: str | None, window="7D"):
    """Independent reference: outcome per customer and who saw each touchpoint."""
    w = pd.Timedelta(window)
    first = ev[ev.touchpoint == step].groupby("customer_id")["ts"].min().rename("t_step")
    e = ev.join(first, on="customer_id", how="inner")
    inw = e[(e.ts >= e.t_step) & (e.ts <= e.t_step + w)]
    t_next = inw[inw.touchpoint == nxt].groupby("customer_id")["ts"].min().rename("t_next")
    t_last = inw.groupby("customer_id")["ts"].max().rename("t_last")
    c = pd.concat([first, t_next, t_last], axis=1)
    c["left"] = c["t_next"].isna()
    c["t_start"] = c["t_step"]
    if prev:
        pe = e[(e.touchpoint == prev) & (e.ts <= e.t_step) & (e.ts >= e.t_step - w)]
        c["t_start"] = pe.groupby("customer_id")["ts"].max().reindex(c.index).fillna(c["t_step"])
    c["t_end"] = c["t_next"].fillna(c["t_last"])
    x = ev.join(c[["t_start", "t_end", "left"]], on="customer_id", how="inner")
    x = x[(x.ts >= x.t_start) & (x.ts <= x.t_end) & ~x.touchpoint.isin([step, nxt, prev])]
    seen = x.drop_duplicates(["customer_id", "touchpoint"]).groupby(["touchpoint", "left"]).size()
    return c, seen


@pytest.mark.slow
def test_escape_routes_recover_planted_pain_points(sim20k):
    ev = sim20k
    # the registration form sits between add_to_cart and checkout and raises leaving *at
    # checkout*: it is judged at step="checkout" with the previous-step lookback
    er = paths.escape_routes(ev, step="checkout")
    reg = er.lift.set_index("touchpoint").loc["registration_form"]
    assert reg["lift"] > 1.3 and reg["q_value"] < 0.01
    c, seen = _pandas_escape(ev, "checkout", "purchase", "add_to_cart")
    s = er.summary.iloc[0]
    assert s["left"] + s["continued"] == s["reached"] == len(c)
    assert s["left"] == int(c["left"].sum())
    assert (reg["n_leavers"], reg["n_continuers"]) == (seen[("registration_form", True)],
                                                       seen[("registration_form", False)])
    # at add_to_cart the leavers never got to the form: no contrast there (lift 0)
    at_cart = paths.escape_routes(ev, step="add_to_cart").lift.set_index("touchpoint")
    assert at_cart.loc["registration_form", "lift"] < 1
    # the home-page pop-up raises leaving the home page
    er0 = paths.escape_routes(ev, step="home_page")
    pop = er0.lift.set_index("touchpoint").loc["popup_shown"]
    assert pop["lift"] > 1.5 and pop["q_value"] < 0.01
    c0, seen0 = _pandas_escape(ev, "home_page", "product_page", None)
    s0 = er0.summary.iloc[0]
    assert s0["left"] + s0["continued"] == s0["reached"] == len(c0) == ev.customer_id.nunique()
    assert s0["left"] == int(c0["left"].sum())
    assert pop["n_leavers"] == seen0[("popup_shown", True)]
    last = er0.last_touchpoints.groupby("touchpoint")["n"].sum()
    assert last.sum() == s0["left"] and set(last.index) <= {"home_page", "popup_shown", "(other)"}


# --------------------------------------------------------------------------- engines
@pytest.mark.spark
@pytest.mark.slow
def test_same_paths_on_duckdb_and_pyspark(spark, ws, tmp_path):
    files = write_simulation(simulate_journeys(400, seed=21), tmp_path / "raw", format="parquet")
    ws.pull(files["events"])
    ws.export_parquet(tmp_path / "canonical")
    sw = cxlab.connect(spark, path=tmp_path / "canonical")

    def norm_(df):
        return df.reset_index(drop=True)

    on_duck = paths.transitions(ws, by="channel")
    on_spark = paths.transitions(sw, by="channel")
    assert len(on_duck) > 50
    pd.testing.assert_frame_equal(norm_(on_duck), norm_(on_spark), check_dtype=False)
    pd.testing.assert_frame_equal(paths.step_matrix(ws, max_steps=5), paths.step_matrix(sw, max_steps=5),
                                  check_dtype=False)
    er_d, er_s = paths.escape_routes(ws, step="checkout"), paths.escape_routes(sw, step="checkout")
    for name in ("summary", "last_touchpoints", "lift"):
        pd.testing.assert_frame_equal(getattr(er_d, name), getattr(er_s, name), check_dtype=False)


# --------------------------------------------------------------------------- plots
def test_plots_return_axes(sim3k):
    ax = paths.plot_transitions(paths.transitions(sim3k), top=10)
    assert isinstance(ax, plt.Axes)
    ylabels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(ylabels) == 10 and ylabels.index("home_page") < ylabels.index("checkout")
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "(end)"
    plt.close("all")
    fig, ax2 = plt.subplots()
    out = paths.plot_step_matrix(paths.step_matrix(sim3k, max_steps=6), ax=ax2)
    assert out is ax2 and [t.get_text() for t in ax2.get_yticklabels()][-1] == "(end)"
    plt.close("all")
