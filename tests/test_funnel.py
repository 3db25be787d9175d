"""cxlab.funnel: hand-computed tiny cases, an independent DuckDB SQL funnel, the simulator's
truth, BPIC 2012, DuckDB vs PySpark, bad arguments and the group comparison."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

import cxlab
from cxlab.datasets import simulate_journeys, write_simulation
from cxlab.funnel import funnel, funnel_by_moment, plot_funnel
from cxlab.stats import two_proportion_test, wilson_ci

from conftest import shared_file

FUNNEL = ["home_page", "product_page", "add_to_cart", "checkout", "purchase"]
T0 = pd.Timestamp("2026-03-01 10:00", tz="UTC")
M, D = pd.Timedelta("1min"), pd.Timedelta("1D")

# customer -> (touchpoint, offset from T0, channel); expected step reached is noted
TINY = {
    "a": [("home_page", 0 * M), ("product_page", 5 * M), ("add_to_cart", 10 * M),
          ("checkout", 15 * M), ("purchase", 20 * M)],                          # all 5
    "b": [("home_page", 0 * M), ("product_page", 1 * M), ("add_to_cart", 8 * D)],  # window cuts cart
    "c": [("home_page", 0 * M), ("product_page", 0 * M), ("add_to_cart", 5 * M)],  # tie: step 2 at the same instant counts
    "d": [("home_page", 0 * M), ("home_page", 4 * D), ("product_page", 9 * D)],    # enters at FIRST home
    "e": [("home_page", 0 * M), ("popup_shown", 1 * M), ("product_page", 2 * M),
          ("add_to_cart", 3 * M)],                                            # excluded popup
    "f": [("home_page", 0 * M), ("popup_shown", 0 * M), ("product_page", 5 * M)],  # popup tied with step 1
    "g": [("product_page", -60 * M), ("home_page", 0 * M), ("add_to_cart", 30 * M)],  # wrong order
    "h": [("home_page", 0 * M), ("product_page", 20 * D)],
    "i": [("home_page", 0 * M), ("product_page", 7 * D)],                     # exactly the window
    "j": [("home_page", 0 * M), ("product_page", 7 * D + pd.Timedelta("1s"))],  # one second over
}
CHANNEL = {"a": "web", "b": "web", "c": "app", "d": "app", "e": "web", "f": "web", "g": "app",
           "h": "app", "i": "app", "j": "app"}


def tiny_events() -> pd.DataFrame:
    rows = [(c, T0 + off, tp, CHANNEL[c]) for c, evs in TINY.items() for tp, off in evs]
    df = pd.DataFrame(rows, columns=["customer_id", "ts", "touchpoint", "channel"])
    return df.sample(frac=1, random_state=0).reset_index(drop=True)   # row order must not matter


@pytest.mark.parametrize("kwargs, expected", [
    (dict(order="closed"), [10, 6, 3, 1, 1]),
    (dict(order="closed", exclude=["popup_shown"]), [10, 5, 2, 1, 1]),
    (dict(order="closed", window=None), [10, 9, 4, 1, 1]),
    (dict(order="any"), [10, 7, 4, 1, 1]),
    (dict(order="any", window=None), [10, 10, 5, 1, 1]),
    (dict(order="open"), [10, 10, 5, 1, 1]),
    (dict(order="open", exclude="popup_shown"), [10, 10, 5, 1, 1]),
])
def test_tiny_hand_computed_counts(kwargs, expected):
    f = funnel(tiny_events(), **kwargs)
    assert f["n"].tolist() == expected
    assert f["touchpoint"].tolist() == FUNNEL and f["step"].tolist() == [1, 2, 3, 4, 5]
    assert (f["moment"] == "FMOT").all()


def test_tiny_rates_ci_times_effort():
    f = funnel(tiny_events())
    n = np.array([10, 6, 3, 1, 1])
    assert np.allclose(f["rate"], n / 10)
    assert np.allclose(f["step_rate"], n / np.r_[10, n[:-1]])
    assert f["dropped"].tolist() == [0, 4, 3, 2, 0]
    lo, hi = wilson_ci(n, 10)
    assert np.allclose(f["ci_low"], lo) and np.allclose(f["ci_high"], hi)
    lo, hi = wilson_ci(n, np.r_[10, n[:-1]])
    assert np.allclose(f["step_ci_low"], lo) and np.allclose(f["step_ci_high"], hi)
    # step 2 reached by a (5min), b (1min), c (0, a tie), e (2min), f (5min), i (7D)
    times = pd.to_timedelta(["5min", "1min", "0min", "2min", "5min", "7D"]).total_seconds().to_numpy()
    for col, q in {"p25": 0.25, "p50": 0.5, "p75": 0.75, "p90": 0.9}.items():
        assert f.loc[1, col] == pd.Timedelta(seconds=float(np.quantile(times, q)))
    assert (f.loc[0, ["p25", "p50", "p75", "p90"]] == pd.Timedelta(0)).all()
    # effort: events from the step-1 occurrence to the step's, both included
    # step 2: a 2, b 2, c 2, e 3 (popup), f 3 (popup at the same instant as home), i 2 -> 2
    # step 3: a 3, c 3, e 4 -> 3
    assert f["effort"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_tiny_by_level_from_entry_event():
    f = funnel(tiny_events(), by="channel")
    got = {ch: g["n"].tolist() for ch, g in f.groupby("channel")}
    # web: a b e f ; app: c d g h i j (c reaches step 3, i step 2)
    assert got == {"web": [4, 4, 2, 1, 1], "app": [6, 2, 1, 0, 0]}
    assert f.columns[0] == "channel"


def test_compare_equals_hand_computation():
    c = funnel(tiny_events(), compare=("channel", "web", "app"))
    na, nb = np.array([4, 4, 2, 1, 1]), np.array([6, 2, 1, 0, 0])
    assert c["n_a"].tolist() == na.tolist() and c["n_b"].tolist() == nb.tolist()
    assert np.allclose(c["diff"], na / 4 - nb / 6)
    z, p = two_proportion_test(na, 4, nb, 6)
    assert np.allclose(c["z"], z, equal_nan=True) and np.allclose(c["p_value"], p, equal_nan=True)
    # step 2 by hand: 4/4 vs 2/6, pooled p = 6/10, se = sqrt(.24 * (1/4 + 1/6)) = sqrt(.1)
    assert c.loc[1, "z"] == pytest.approx((1 - 2 / 6) / np.sqrt(0.1))
    assert c.loc[1, "p_value"] == pytest.approx(0.0350, abs=1e-4)
    la, ha = wilson_ci(na, 4)
    lb, hb = wilson_ci(nb, 6)
    pa, pb = na / 4, nb / 6
    assert np.allclose(c["diff_ci_low"], pa - pb - np.sqrt((pa - la) ** 2 + (hb - pb) ** 2))
    assert np.allclose(c["diff_ci_high"], pa - pb + np.sqrt((ha - pa) ** 2 + (pb - lb) ** 2))
    c2 = funnel(tiny_events(), compare={"channel": ("web", "app")})
    pd.testing.assert_frame_equal(c, c2)


def test_funnel_by_moment_tiny():
    ev = pd.DataFrame({
        "customer_id": ["x", "x", "x", "x", "y", "y", "z"],
        "ts": [T0, T0 + M, T0 + 2 * D, T0 + 3 * D, T0, T0 + M, T0],
        "touchpoint": ["search", "home_page", "delivery", "review_written", "search", "delivery",
                       "home_page"]})
    f = funnel_by_moment(ev)
    assert f["moment"].tolist() == ["ZMOT", "FMOT", "SMOT", "UMOT"]
    assert f["n"].tolist() == [2, 1, 1, 1]     # z never has ZMOT; y skips FMOT


def test_bad_arguments():
    ev = tiny_events()
    with pytest.raises(ValueError, match="product_pag.*did you mean 'product_page'"):
        funnel(ev, steps=["home_page", "product_pag"])
    with pytest.raises(ValueError, match="listed twice"):
        funnel(ev, steps=["home_page", "product_page", "home_page"])
    with pytest.raises(ValueError, match="at least two"):
        funnel(ev, steps=["home_page"])
    with pytest.raises(ValueError, match="order='clsoed'.*did you mean 'closed'"):
        funnel(ev, order="clsoed")
    for bad in (7, 7.0, "7"):
        with pytest.raises(ValueError, match="unit"):
            funnel(ev, window=bad)
    with pytest.raises(ValueError, match="by='chanel'.*did you mean 'channel'"):
        funnel(ev, by="chanel")
    with pytest.raises(ValueError, match="order='any'"):
        funnel(ev, order="any", exclude=["popup_shown"])
    with pytest.raises(ValueError, match="also a funnel step"):
        funnel(ev, exclude=["checkout"])
    with pytest.raises(ValueError, match="'webb'"):
        funnel(ev, compare=("channel", "webb", "app"))
    with pytest.raises(ValueError, match="alpha"):
        funnel(ev, alpha=5)


def test_plot_funnel():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = plot_funnel(funnel(tiny_events()))
    assert len(ax.patches) == 5 and "60.0%" in ax.texts[1].get_text()
    plt.close("all")


# --------------------------------------------------------------------------- simulated data
SQL_CLOSED_7D = """
WITH e AS (
  SELECT customer_id, ts, touchpoint FROM read_parquet('{path}')
  WHERE touchpoint IN ('home_page', 'product_page', 'add_to_cart', 'checkout', 'purchase')),
s1 AS (SELECT customer_id, min(ts) AS t1 FROM e WHERE touchpoint = 'home_page' GROUP BY customer_id),
s2 AS (SELECT s.customer_id, s.t1, min(e.ts) AS t FROM s1 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'product_page' AND e.ts >= s.t1 AND e.ts <= s.t1 + INTERVAL 7 DAY
       GROUP BY s.customer_id, s.t1),
s3 AS (SELECT s.customer_id, s.t1, min(e.ts) AS t FROM s2 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'add_to_cart' AND e.ts >= s.t AND e.ts <= s.t1 + INTERVAL 7 DAY
       GROUP BY s.customer_id, s.t1),
s4 AS (SELECT s.customer_id, s.t1, min(e.ts) AS t FROM s3 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'checkout' AND e.ts >= s.t AND e.ts <= s.t1 + INTERVAL 7 DAY
       GROUP BY s.customer_id, s.t1),
s5 AS (SELECT s.customer_id, s.t1, min(e.ts) AS t FROM s4 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'purchase' AND e.ts >= s.t AND e.ts <= s.t1 + INTERVAL 7 DAY
       GROUP BY s.customer_id, s.t1)
SELECT (SELECT count(*) FROM s1), (SELECT count(*) FROM s2), (SELECT count(*) FROM s3),
       (SELECT count(*) FROM s4), (SELECT count(*) FROM s5)
"""


@pytest.fixture(scope="module")
def sim_ws(tmp_path_factory):
    base = tmp_path_factory.mktemp("sim")
    sim = simulate_journeys(5_000, seed=11)
    files = write_simulation(sim, base / "raw", format="parquet", duplicate_share=0.002, seed=1)
    w = cxlab.connect(base / "ws.duckdb")
    w.pull(files["events"])
    w.export_parquet(base / "parquet")
    yield w, sim, base / "parquet"
    w.close()


def test_simulated_closed_equals_sql_and_truth(sim_ws):
    w, sim, pq = sim_ws
    f = funnel(w, window="7D")
    con = duckdb.connect()
    sql = list(con.execute(SQL_CLOSED_7D.format(path=pq / "events.parquet")).fetchone())
    assert f["n"].tolist() == sql
    # the simulator's truth: every first journey starts at home_page and its funnel steps
    # follow in order within 3 days; later journeys start 20+ days later
    c = sim.truth.customers
    last = c.loc[c["journey"] == 1, "last_step"].map(FUNNEL.index)
    assert f["n"].tolist() == [int((last >= k).sum()) for k in range(5)]
    # the window from the map gives the same
    jm = cxlab.JourneyMap.default()
    assert funnel(w, window=jm.conversion_window)["n"].tolist() == sql


def test_simulated_percentiles_equal_pandas_reference(sim_ws):
    w, sim, _ = sim_ws
    ev = sim.events
    f = funnel(w, window="7D")
    # pandas reference of the closed funnel (per customer, greedy first occurrences)
    e = ev[ev["touchpoint"].isin(FUNNEL)].sort_values(["customer_id", "ts"])
    t1 = e[e["touchpoint"] == "home_page"].groupby("customer_id")["ts"].min().rename("t1")
    prev = t1.rename("t")
    times = []
    for tp in FUNNEL[1:]:
        x = e[e["touchpoint"] == tp].join(prev, on="customer_id", how="inner").join(t1, on="customer_id")
        x = x[(x["ts"] > x["t"]) & (x["ts"] <= x["t1"] + pd.Timedelta("7D"))]
        prev = x.groupby("customer_id")["ts"].min().rename("t")
        times.append((prev - t1.reindex(prev.index)).dt.total_seconds().to_numpy())
    for k, secs in enumerate(times, start=2):
        for col, q in {"p25": 0.25, "p50": 0.5, "p75": 0.75, "p90": 0.9}.items():
            want = pd.Timedelta(seconds=float(np.quantile(secs, q)))
            assert abs(f.loc[k - 1, col] - want) <= pd.Timedelta("1us"), (k, col)


def test_simulated_by_and_orders_consistent(sim_ws):
    w, _, _ = sim_ws
    total = funnel(w)
    by = funnel(w, by="channel")
    assert by.groupby("step")["n"].sum().tolist() == total["n"].tolist()
    op, an = funnel(w, order="open"), funnel(w, order="any")
    assert (op["n"] >= total["n"]).all() and (an["n"] >= total["n"]).all()


# --------------------------------------------------------------------------- BPIC 2012
BPIC_STEPS = ["A_SUBMITTED", "A_PREACCEPTED", "A_ACCEPTED", "O_SENT", "O_ACCEPTED", "A_APPROVED"]
SQL_BPIC_CLOSED = """
WITH e AS (SELECT customer_id, ts, touchpoint FROM events),
s1 AS (SELECT customer_id, min(ts) AS t FROM e WHERE touchpoint = 'A_SUBMITTED' GROUP BY customer_id),
s2 AS (SELECT s.customer_id, min(e.ts) AS t FROM s1 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'A_PREACCEPTED' AND e.ts >= s.t GROUP BY s.customer_id),
s3 AS (SELECT s.customer_id, min(e.ts) AS t FROM s2 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'A_ACCEPTED' AND e.ts >= s.t GROUP BY s.customer_id),
s4 AS (SELECT s.customer_id, min(e.ts) AS t FROM s3 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'O_SENT' AND e.ts >= s.t GROUP BY s.customer_id),
s5 AS (SELECT s.customer_id, min(e.ts) AS t FROM s4 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'O_ACCEPTED' AND e.ts >= s.t GROUP BY s.customer_id),
s6 AS (SELECT s.customer_id, min(e.ts) AS t FROM s5 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'A_APPROVED' AND e.ts >= s.t GROUP BY s.customer_id)
SELECT (SELECT count(*) FROM s1), (SELECT count(*) FROM s2), (SELECT count(*) FROM s3),
       (SELECT count(*) FROM s4), (SELECT count(*) FROM s5), (SELECT count(*) FROM s6)
"""


def test_bpic2012_closed_equals_sql_and_any_equals_published(ws):
    path = shared_file("bpic2012_loans", "bpic2012_events.csv.gz")
    ws.pull(path, mapping={"customer_id": "case_id", "touchpoint": "activity", "ts": "timestamp"})
    f = funnel(ws, steps=BPIC_STEPS, window=None)
    sql = list(ws._raw.execute(SQL_BPIC_CLOSED).fetchall()[0])
    assert f["n"].tolist() == sql
    # steps logged at the same instant count (O_ACCEPTED and A_APPROVED share timestamps):
    # every accepted offer is followed by the approval, as in the published counts
    assert f["n"].tolist() == [13_087, 7_367, 5_113, 5_015, 2_243, 2_243]
    assert f["moment"].isna().all()
    # published (SOURCE.md): cases containing each step. With order="any" n_k counts cases
    # containing steps 1..k; the steps are nested up to O_ACCEPTED (2,243), while
    # A_APPROVED (2,246 cases) also occurs in cases without O_ACCEPTED, so only n <= 2,246.
    published = [13_087, 7_367, 5_113, 5_015, 2_243, 2_246]
    a = funnel(ws, steps=BPIC_STEPS, window=None, order="any")
    assert a["n"].tolist()[:5] == published[:5]
    assert a["n"].iloc[5] <= min(published)
    # open order: n_k = cases containing step k, exactly the published per-step counts
    assert funnel(ws, steps=BPIC_STEPS, window=None, order="open")["n"].tolist() == published


# --------------------------------------------------------------------------- DuckDB vs Spark
@pytest.mark.spark
@pytest.mark.slow
def test_duckdb_and_pyspark_agree(sim_ws, spark):
    w, _, pq = sim_ws
    sws = cxlab.connect(spark, path=pq)
    cols = ["channel", "step", "n", "rate", "step_rate", "ci_low", "ci_high", "dropped",
            "p25", "p50", "p75", "p90", "effort"]
    d = funnel(w, window="7D", by="channel")[cols]
    s = funnel(sws, window="7D", by="channel")[cols]
    pd.testing.assert_frame_equal(d.reset_index(drop=True), s.reset_index(drop=True),
                                  check_dtype=False)


def test_tiny_effort_counts_events_tied_with_start_and_end():
    # events at the same instant as the entry or as the step occurrence are included
    ev = pd.DataFrame({
        "customer_id": ["p"] * 6,
        "ts": [T0, T0, T0 + M, T0 + M, T0 + 2 * M, T0 + 3 * M],
        "touchpoint": ["home_page", "review_read", "product_page", "search", "add_to_cart",
                       "search"]})
    f = funnel(ev)
    assert f["n"].tolist() == [1, 1, 1, 0, 0]
    assert f["effort"].iloc[:3].tolist() == [2.0, 4.0, 5.0] and f["effort"].iloc[3:].isna().all()
    assert f.loc[2, "p50"] == 2 * M and pd.isna(f.loc[3, "p50"])
