"""KPIs against hand-computed values on tiny hand-made frames, NPS interval coverage by
simulation, bad input, breakdown sums, and care responsiveness on the real ticket logs."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file
from scipy.stats import norm
from scipy.stats import t as tdist

from cxlab import kpis
from cxlab.journey import JourneyMap


def ts(s):
    return pd.Timestamp(s, tz="UTC")


def wilson(s, n, alpha=0.05):
    """Wilson score interval written out (independent of cxlab.stats)."""
    z = norm.ppf(1 - alpha / 2)
    p = s / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return mid - half, mid + half


def t_ci(xs, alpha=0.05):
    n = len(xs)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))
    h = tdist.ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
    return m, sd, m - h, m + h


# --------------------------------------------------------------------------- fixtures
NPS_ROWS = [  # score, channel, month
    (10, "web", 1), (9, "web", 1), (8, "web", 1), (6, "web", 1), (0, "app", 1),
    (10, "app", 2), (7, "app", 2), (3, "web", 2), (9, "web", 2), (9, "app", 2),
]


@pytest.fixture
def feedback():
    rows = [{"feedback_id": f"F{i}", "customer_id": f"c{i}", "ts": ts(f"2026-0{m}-1{i % 9}"),
             "channel": ch, "score": float(s), "scale": "nps"}
            for i, (s, ch, m) in enumerate(NPS_ROWS)]
    csat_scores = [5, 4, 4, 3, 1]
    rows += [{"feedback_id": f"S{i}", "customer_id": f"s{i}", "ts": ts("2026-01-05"),
              "channel": "web", "score": float(s), "scale": "csat"} for i, s in enumerate(csat_scores)]
    ces_scores = [7, 6, 5, 4, 2, 1]
    rows += [{"feedback_id": f"E{i}", "customer_id": f"e{i}", "ts": ts("2026-02-05"),
              "channel": "app", "score": float(s), "scale": "ces"} for i, s in enumerate(ces_scores)]
    rows.append({"feedback_id": "R1", "customer_id": "r1", "ts": ts("2026-01-07"),
                 "channel": "web", "score": 1.0, "scale": "stars"})
    return pd.DataFrame(rows)


@pytest.fixture
def events():
    """Purchases, an upgrade and a little browsing (conversion, retention, repurchase, upsell)."""
    rows = [
        # customer, ts, touchpoint, channel, value
        ("c1", "2026-01-05 10:00", "home_page", "web", None),
        ("c1", "2026-01-05 12:00", "purchase", "web", 50.0),
        ("c1", "2026-02-10 09:00", "purchase", "web", 80.0),
        ("c1", "2026-04-01 09:00", "purchase", "app", 20.0),
        ("c2", "2026-01-20 08:00", "home_page", "app", None),
        ("c2", "2026-01-20 09:00", "purchase", "app", 60.0),
        ("c2", "2026-02-02 10:00", "home_page", "app", None),
        ("c2", "2026-03-01 10:00", "upgrade_offer", "email", None),
        ("c3", "2026-02-03 10:00", "home_page", "web", None),
        ("c3", "2026-02-13 10:00", "purchase", "web", 40.0),   # 10 days: outside 7D
        ("c3", "2026-03-02 10:00", "purchase", "web", 30.0),
        ("c3", "2026-03-20 10:00", "purchase", "web", 20.0),
        ("c4", "2026-03-10 10:00", "home_page", "web", None),  # enters, never buys
        ("c5", "2026-03-11 10:00", "product_page", "web", None),
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "ts", "touchpoint", "channel", "value"])
    df["ts"] = pd.to_datetime(df["ts"]).dt.tz_localize("UTC")
    df["value"] = df["value"].astype("float64")
    return df


@pytest.fixture
def care():
    rows = [
        ("c1", "2026-01-01 10:00", "support_contact", "web"),
        ("c1", "2026-01-01 12:00", "support_reply", "web"),          # 2 h
        ("c1", "2026-01-03 09:00", "support_contact", "call_centre"),
        ("c1", "2026-01-03 09:30", "support_reply", "call_centre"),  # 30 min
        ("c1", "2026-01-04 09:00", "resolved", "call_centre"),
        ("c2", "2026-01-02 08:00", "support_contact", "email"),     # never answered
        ("c3", "2026-02-05 00:00", "support_contact", "app"),
        ("c3", "2026-02-05 04:00", "support_reply", "app"),          # 4 h
        ("c4", "2026-02-01 10:00", "support_contact", "email"),
        ("c4", "2026-02-02 10:00", "support_contact", "email"),     # same channel repeat
    ]
    df = pd.DataFrame(rows, columns=["customer_id", "ts", "touchpoint", "channel"])
    df["ts"] = pd.to_datetime(df["ts"]).dt.tz_localize("UTC")
    return df


# --------------------------------------------------------------------------- NPS
def test_nps_hand_computed(feedback):
    before = feedback.copy()
    r = kpis.nps(feedback)
    assert r.shape[0] == 1
    row = r.iloc[0]
    # promoters 10,9,10,9,9 = 5; detractors 6,0,3 = 3; passives 8,7 = 2 (csat/ces/stars ignored)
    assert (row.n, row.promoters, row.passives, row.detractors) == (10, 5, 2, 3)
    assert row.nps == pytest.approx(20.0)
    se = 100 * math.sqrt((0.5 + 0.3 - 0.2 ** 2) / 10)
    assert row.se == pytest.approx(se)
    assert row.ci_low == pytest.approx(20 - 1.959964 * se, abs=1e-4)
    assert row.ci_high == pytest.approx(20 + 1.959964 * se, abs=1e-4)
    pd.testing.assert_frame_equal(feedback, before)  # input untouched


def test_nps_by_and_period_sum(feedback):
    by = kpis.nps(feedback, by="channel").set_index("channel")
    assert by.loc["web", "nps"] == pytest.approx(100 * (3 - 2) / 6)   # 10,9,8,6,3,9
    assert by.loc["app", "nps"] == pytest.approx(100 * (2 - 1) / 4)   # 0,10,7,9
    per = kpis.nps(feedback, period="M")
    assert list(per["period"]) == [ts("2026-01-01"), ts("2026-02-01")]
    assert list(per["nps"]) == pytest.approx([0.0, 40.0])             # Jan 2-2 of 5, Feb 3-1 of 5
    both = kpis.nps(feedback, by="channel", period="M")
    for col in ("n", "promoters", "passives", "detractors"):
        assert both[col].sum() == per[col].sum() == by[col].sum()


def test_nps_period_change(feedback):
    per = kpis.nps(feedback, period="M")
    ch = kpis.nps(feedback, period="M", compare_periods=True)
    assert len(ch) == 1
    se = math.sqrt(per["se"].iloc[0] ** 2 + per["se"].iloc[1] ** 2)
    assert ch["diff"].iloc[0] == pytest.approx(40.0)
    assert ch["p_value"].iloc[0] == pytest.approx(2 * norm.sf(40 / se))
    assert ch["significant"].iloc[0] == (ch["p_value"].iloc[0] < 0.05)
    pd.testing.assert_frame_equal(kpis.period_change(per), ch)


def test_nps_merge(feedback):
    fb = feedback.assign(survey=np.where(feedback["ts"] < ts("2026-02-01"), "s1", "s2"))
    per = kpis.nps(fb, by="survey")
    pooled = kpis.nps_merge(per)
    assert pooled["nps"].iloc[0] == pytest.approx(kpis.nps(feedback)["nps"].iloc[0])
    w = per["n"] / per["n"].sum()
    assert pooled["se"].iloc[0] == pytest.approx(math.sqrt(((w * per["se"]) ** 2).sum()))
    iv = kpis.nps_merge(per, weights="inverse_variance")
    wi = 1 / per["se"] ** 2
    assert iv["nps"].iloc[0] == pytest.approx((wi * per["nps"]).sum() / wi.sum())
    with pytest.raises(ValueError, match="weights="):
        kpis.nps_merge(per, weights="size")


def test_nps_ci_coverage_by_simulation():
    rng = np.random.default_rng(7)
    p_pro, p_pas, p_det = 0.45, 0.30, 0.25
    true = 100 * (p_pro - p_det)
    reps, n = 2000, 200
    cls = rng.choice([10.0, 7.0, 3.0], p=[p_pro, p_pas, p_det], size=(reps, n))
    fb = pd.DataFrame({"sample": np.repeat(np.arange(reps), n), "score": cls.ravel(),
                       "scale": "nps", "ts": ts("2026-01-01")})
    r = kpis.nps(fb, by="sample")
    assert len(r) == reps and (r["n"] == n).all()
    cover = ((r["ci_low"] <= true) & (true <= r["ci_high"])).mean()
    assert 0.93 <= cover <= 0.97, cover


# --------------------------------------------------------------------------- CSAT, CES
def test_csat_hand_computed(feedback):
    r = kpis.csat(feedback).set_index("metric")
    top = r.loc["top2_box"]
    assert (top.n, top.successes, top.value) == (5, 3, pytest.approx(0.6))
    assert (top.ci_low, top.ci_high) == pytest.approx(wilson(3, 5))
    _, sd, lo, hi = t_ci([5, 4, 4, 3, 1])
    mean = r.loc["mean_score"]
    assert (mean.value, mean.sd, mean.ci_low, mean.ci_high) == pytest.approx((3.4, sd, lo, hi))
    stars = kpis.csat(feedback, scale="stars").set_index("metric")
    assert stars.loc["top2_box", "n"] == 1 and stars.loc["top2_box", "value"] == 0


def test_ces_hand_computed(feedback):
    r = kpis.ces(feedback).set_index("metric")
    easy = r.loc["easy_share"]
    assert (easy.n, easy.successes, easy.value) == (6, 3, pytest.approx(0.5))
    assert (easy.ci_low, easy.ci_high) == pytest.approx(wilson(3, 6))
    _, _, lo, hi = t_ci([7, 6, 5, 4, 2, 1])
    assert (r.loc["mean_score", "value"], r.loc["mean_score", "ci_low"],
            r.loc["mean_score", "ci_high"]) == pytest.approx((25 / 6, lo, hi))


def test_integer_scores_as_survey_exports_have_them(feedback):
    ints = feedback[feedback["score"].notna()].astype({"score": "int64"})
    for kpi in (kpis.nps, kpis.csat, kpis.ces):
        pd.testing.assert_frame_equal(kpi(ints), kpi(feedback), check_dtype=False)


def test_feedback_bad_input(feedback):
    bad = feedback.copy()
    bad.loc[0, "score"] = 11.0
    with pytest.raises(ValueError, match="outside 0-10"):
        kpis.nps(bad)
    bad = feedback.copy()
    bad.loc[bad["scale"] == "ces", "score"] = 0.0
    with pytest.raises(ValueError, match="outside 1-7"):
        kpis.ces(bad)
    with pytest.raises(ValueError, match="did you mean 'channel'"):
        kpis.nps(feedback, by="chanel")
    with pytest.raises(ValueError, match="period="):
        kpis.nps(feedback, period="fortnight")
    with pytest.raises(ValueError, match="empty"):
        kpis.nps(feedback.iloc[0:0])
    with pytest.raises(ValueError, match="no scored rows"):
        kpis.csat(feedback[feedback["scale"] == "nps"])
    with pytest.raises(ValueError, match="scale="):
        kpis.csat(feedback, scale="nps")
    with pytest.raises(ValueError, match="alpha"):
        kpis.nps(feedback, alpha=5)
    with pytest.raises(ValueError, match="compare_periods=True needs period"):
        kpis.nps(feedback, compare_periods=True)


def test_ibis_input_matches_dataframe(feedback):
    import ibis

    a = kpis.nps(feedback, by="channel")
    b = kpis.nps(ibis.memtable(feedback), by="channel")
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------- behaviour
def test_conversion_rate(events):
    r = kpis.conversion_rate(events, window="7D").iloc[0]
    # entered at home_page: c1, c2, c3, c4; c1 bought 2 h later, c2 1 h later, c3 after 10 days
    assert (r.n, r.successes) == (4, 2)
    assert r.rate == pytest.approx(0.5)
    assert (r.ci_low, r.ci_high) == pytest.approx(wilson(2, 4))
    assert kpis.conversion_rate(events, window=None)["successes"].iloc[0] == 3
    assert kpis.conversion_rate(events)["successes"].iloc[0] == 2      # the map's 7D
    per = kpis.conversion_rate(events, window="7D", period="M")
    assert list(per["n"]) == [2, 1, 1] and list(per["successes"]) == [2, 0, 0]
    by = kpis.conversion_rate(events, window="7D", by="channel")
    assert by["n"].sum() == 4 and by["successes"].sum() == 2
    with pytest.raises(ValueError, match="bare number"):
        kpis.conversion_rate(events, window=7)


def test_retention(events):
    r = kpis.retention(events, periods=6)
    got = {(c.month, k): (n, s) for c, k, n, s in
           r[["cohort", "period_index", "n", "successes"]].itertuples(index=False)}
    # Jan cohort: c1, c2 -> c1 buys in Feb and Apr; Feb cohort: c3 -> buys in Mar.
    # The data end in April, so the Jan cohort runs to k=3 and the Feb one to k=2.
    assert got == {(1, 0): (2, 2), (1, 1): (2, 1), (1, 2): (2, 0), (1, 3): (2, 1),
                   (2, 0): (1, 1), (2, 1): (1, 1), (2, 2): (1, 0)}
    row = r[(r["period_index"] == 1) & (r["cohort"] == ts("2026-01-01"))].iloc[0]
    assert row.rate == 0.5 and (row.ci_low, row.ci_high) == pytest.approx(wilson(1, 2))
    assert row.period == ts("2026-02-01")
    anyr = kpis.retention(events, periods=2, activity="any")
    jan = anyr[anyr["cohort"] == ts("2026-01-01")].set_index("period_index")
    assert list(jan["successes"]) == [2, 2, 1]   # c2 browses in Feb, upgrade in Mar
    seg = kpis.retention(events.assign(seg=events["customer_id"].map({"c3": "b"}).fillna("a")),
                         cohort="seg", periods=1)
    assert seg.set_index(["cohort", "period_index"])["successes"].to_dict() == {
        ("a", 0): 2, ("a", 1): 1, ("b", 0): 1, ("b", 1): 1}
    with pytest.raises(ValueError, match="periods="):
        kpis.retention(events, periods=0)
    with pytest.raises(ValueError, match="did you mean 'purchase'"):
        kpis.retention(events, purchase="purchse")


def test_repurchase_rate(events):
    r = kpis.repurchase_rate(events).iloc[0]
    # c1: 36 days to the 2nd purchase, c3: 17 days, c2 never
    assert (r.n, r.successes) == (3, 2)
    assert (r.ci_low, r.ci_high) == pytest.approx(wilson(2, 3))
    gaps = [pd.Timedelta("17D"), pd.Timedelta("36D") - pd.Timedelta("3h")]
    assert r.p50 == (gaps[0] + gaps[1]) / 2
    assert r.p25 == gaps[0] + (gaps[1] - gaps[0]) / 4
    w = kpis.repurchase_rate(events, window="30D").iloc[0]
    assert (w.n, w.successes) == (3, 1)          # only c3 within 30 days
    # censoring: with a 60-day window c3 (first purchase Feb 13, data end Apr 1) drops out
    w60 = kpis.repurchase_rate(events, window="60D").iloc[0]
    assert (w60.n, w60.successes) == (2, 1)
    assert kpis.repurchase_rate(events, window="60D", censor=False)["n"].iloc[0] == 3
    by = kpis.repurchase_rate(events, by="channel")
    assert by.set_index("channel")["n"].to_dict() == {"app": 1, "web": 2}


def test_upsell_rate(events):
    r = kpis.upsell_rate(events).iloc[0]
    # c1 80 > 50 (value), c2 upgrade after purchase, c3 30, 20 < 40
    assert (r.n, r.successes, r.by_value, r.by_upgrade) == (3, 2, 1, 1)
    assert (r.ci_low, r.ci_high) == pytest.approx(wilson(2, 3))
    assert kpis.upsell_rate(events, upgrade=[])["successes"].iloc[0] == 1
    with pytest.raises(ValueError, match="did you mean 'upgrade_offer'"):
        kpis.upsell_rate(events, upgrade="upgrade_ofer")


def test_care_responsiveness(care):
    r = kpis.care_responsiveness(care, resolution="resolved").set_index("metric")
    fr = r.loc["first_response"]
    assert (fr.n, fr.n_timed, fr.share_timed) == (6, 3, 0.5)
    hours = [2.0, 0.5, 4.0]
    assert fr.p50 == pd.Timedelta("2h")
    assert fr.p90 == pd.Timedelta(hours=3.6)                     # 2 + 0.8 * (4 - 2)
    _, _, lo, hi = t_ci(hours)
    assert fr["mean"] == pd.Timedelta("2h10min")                  # 6.5 h / 3
    assert fr.ci_low / pd.Timedelta("1h") == pytest.approx(lo)
    assert fr.ci_high / pd.Timedelta("1h") == pytest.approx(hi)
    res = r.loc["resolution"]
    # both c1 contacts are resolved by the Jan 4 event: 71 h and 24 h
    assert (res.n_timed, res.p50) == (2, pd.Timedelta(hours=47.5))
    case = kpis.care_responsiveness(care, per="case").iloc[0]
    assert (case.n, case.n_timed, case.p50) == (4, 2, pd.Timedelta("3h"))
    per = kpis.care_responsiveness(care, period="M")
    assert per["n"].sum() == 6 and per["n_timed"].sum() == 3
    by = kpis.care_responsiveness(care, by="channel").set_index("channel")
    assert by.loc["email", "n"] == 3 and by.loc["email", "n_timed"] == 0
    jm = JourneyMap.default()
    assert jm.roles["care_contact"] == ("support_contact",)
    with pytest.raises(ValueError, match="per="):
        kpis.care_responsiveness(care, per="ticket")
    with pytest.raises(ValueError, match="did you mean 'support_reply'"):
        kpis.care_responsiveness(care, reply="suport_reply")
    with pytest.raises(ValueError, match="customer='case'"):
        kpis.care_responsiveness(care, customer="case")


def test_care_period_change_keeps_units(care):
    ch = kpis.care_responsiveness(care, period="M", compare_periods=True)
    # Jan: 2 h and 30 min; Feb: 4 h -> diff 4 h - 1.25 h (no sd in Feb: p-value NaN)
    assert ch["diff"].iloc[0] == pd.Timedelta(hours=2.75)
    assert pd.isna(ch["p_value"].iloc[0]) and not ch["significant"].iloc[0]


def test_cost_to_serve(care):
    costs = {"support_contact": 5.0, "support_reply": 2.0}
    r = kpis.cost_to_serve(care, costs=costs).iloc[0]
    per_customer = [14.0, 5.0, 7.0, 10.0]        # c1, c2, c3, c4
    m, sd, lo, hi = t_ci(per_customer)
    assert (r.n, r.total_cost, r.value, r.sd, r.ci_low, r.ci_high) == pytest.approx(
        (4, 36.0, m, sd, lo, hi))
    bd = kpis.cost_to_serve(care, costs=costs, breakdown="channel").set_index("channel")
    assert bd["cost"].to_dict() == {"app": 7.0, "call_centre": 7.0, "email": 15.0, "web": 7.0}
    assert bd["share"].sum() == pytest.approx(1.0)
    by_ch = kpis.cost_to_serve(care, costs=pd.DataFrame(
        {"touchpoint": ["support_contact", "support_contact"], "channel": ["email", "web"],
         "cost": [1.0, 3.0]}))
    assert by_ch["total_cost"].iloc[0] == 3 * 1.0 + 3.0
    per = kpis.cost_to_serve(care, costs=costs, period="M")
    assert per["total_cost"].sum() == 36.0
    with pytest.raises(ValueError, match="did you mean 'support_reply'"):
        kpis.cost_to_serve(care, costs={"support_rply": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        kpis.cost_to_serve(care, costs={"support_reply": -1.0})


def test_channel_switching(care):
    r = kpis.channel_switching(care, window="7D").iloc[0]
    # c1 web -> call centre 2 days later (switch); c4 email -> email (repeat, no switch)
    assert (r.n, r.successes, r.repeats) == (6, 1, 2)
    assert (r.ci_low, r.ci_high) == pytest.approx(wilson(1, 6))
    assert kpis.channel_switching(care, window="1D")["successes"].iloc[0] == 0
    m = kpis.channel_switching(care, window="7D", matrix=True)
    assert m[["from_channel", "to_channel", "n"]].values.tolist() == [
        ["email", "email", 1], ["web", "call_centre", 1]]
    assert m["share"].tolist() == pytest.approx([1 / 3, 1.0])
    with pytest.raises(ValueError, match="window="):
        kpis.channel_switching(care, window=7)


def test_events_bad_input(events):
    with pytest.raises(ValueError, match="empty"):
        kpis.repurchase_rate(events.iloc[0:0])
    with pytest.raises(ValueError, match="did you mean 'channel'"):
        kpis.upsell_rate(events, by="chanel")
    naive = events.assign(ts=events["ts"].dt.tz_localize(None))
    with pytest.raises(ValueError, match="timezone-aware"):
        kpis.conversion_rate(naive)


def test_simulated_smoke():
    from cxlab.datasets import simulate_journeys

    ev, fb, _ = simulate_journeys(800, seed=3)
    assert kpis.nps(fb, period="M")["n"].sum() == (fb["scale"] == "nps").sum()
    care = kpis.care_responsiveness(ev)
    assert care["n"].iloc[0] == (ev["touchpoint"] == "support_contact").sum()


# --------------------------------------------------------------------------- real logs
def _first_after(df, case, contact_ts, tp):
    """Independent pandas: per case, first ``tp`` event strictly after the case's start."""
    start = df.groupby(case)["ts"].min().rename("t0")
    ev = df[df["touchpoint"] == tp].join(start, on=case)
    ev = ev[ev["ts"] > ev["t0"]]
    first = ev.groupby(case)["ts"].min()
    return (first - start.reindex(first.index)), start


@pytest.mark.realdata
def test_care_responsiveness_real_logs():
    h = pd.read_csv(shared_file("helpdesk_tickets", "helpdesk_events.csv.gz"))
    h["ts"] = pd.to_datetime(h["timestamp"], utc=True)
    h["touchpoint"] = h["activity"]
    r = kpis.care_responsiveness(h, customer="case_id", per="case",
                                 contact=sorted(h["touchpoint"].unique()),
                                 reply="Take in charge ticket",
                                 resolution="Resolve ticket").set_index("metric")
    for metric, tp in (("first_response", "Take in charge ticket"), ("resolution", "Resolve ticket")):
        gap, start = _first_after(h, "case_id", None, tp)
        assert r.loc[metric, "n"] == len(start) == 4580
        assert r.loc[metric, "n_timed"] == len(gap)
        assert r.loc[metric, "p50"] == gap.median()
        assert abs(r.loc[metric, "mean"] - gap.mean()) < pd.Timedelta("1ms")
    assert r.loc["first_response", "n_timed"] == 4221
    assert r.loc["first_response", "p50"] == pd.Timedelta("17:20:31")
    assert r.loc["resolution", "p50"] == pd.Timedelta("5 days 23:34:27")

    b = pd.read_csv(shared_file("bpic2013_incidents", "bpic2013_incidents_events.csv.gz"))
    b["ts"] = pd.to_datetime(b["timestamp"], utc=True)
    b["touchpoint"] = b["activity"] + " - " + b["lifecycle"]
    r = kpis.care_responsiveness(b, customer="case_id", per="case",
                                 contact=sorted(b["touchpoint"].unique()),
                                 reply="Accepted - In Progress",
                                 resolution="Completed - Resolved").set_index("metric")
    for metric, tp in (("first_response", "Accepted - In Progress"),
                       ("resolution", "Completed - Resolved")):
        gap, start = _first_after(b, "case_id", None, tp)
        assert r.loc[metric, "n"] == len(start) == 7554
        assert r.loc[metric, "n_timed"] == len(gap)
        assert r.loc[metric, "p50"] == gap.median()
        assert abs(r.loc[metric, "p90"] - gap.quantile(0.9)) < pd.Timedelta("1ms")
    assert r.loc["resolution", "n_timed"] == 5663


def test_period_change_needs_enough_answers_to_call_a_change():
    from cxlab.kpis import nps

    ts = pd.to_datetime(["2026-01-10"] * 200 + ["2026-02-10"] * 3, utc=True)
    score = [9.0] * 60 + [5.0] * 80 + [8.0] * 60 + [10.0] * 3         # January NPS -10, February +100 on 3 answers
    fb = pd.DataFrame({"feedback_id": [f"F{i}" for i in range(len(ts))], "ts": ts, "score": score, "scale": "nps"})
    ch = nps(fb, period="M", compare_periods=True).iloc[0]
    assert ch["diff"] == pytest.approx(110) and ch["n"] == 3 and ch["previous_n"] == 200
    assert ch["p_value"] < 1e-6 and not ch["significant"]            # se 0 in February: not a finding
