"""The moment panel's numbers (cxlab.explore_moments): research paths that precede conversion or
leaving, and the circle (do sharers come back?), on a journey of our own making with planted
truth, against an independent pandas computation on the simulator, on maps without such
moments, and through the explorer cache."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportions_ztest

import cxlab
from cxlab.datasets import simulate_journeys
from cxlab.explore import ExplorerData
from cxlab.explore_moments import NEVER, research_moments, sharing_moments
from cxlab.journey import JourneyMap

#: a map with none of the default map's names: research LOOK, sharing TELL
MAP = {"name": "planted", "moments": [
    {"id": "LOOK", "label": "Looking around", "phase": "before", "touchpoints": ["blog", "forum", "compare"]},
    {"id": "BUY", "label": "Buying", "phase": "during", "touchpoints": ["landing", "basket", "paid"]},
    {"id": "CARE", "label": "Care", "phase": "after", "touchpoints": ["helpdesk"]},
    {"id": "TELL", "label": "Telling others", "phase": "after", "touchpoints": ["post", "rating"]}],
    "funnel": ["landing", "basket", "paid"], "conversion": "paid", "conversion_window": "7D",
    "labels": {"blog": "Blog article", "forum": "Forum thread", "compare": "Comparison site", "post": "Post"}}
N = 900
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def planted():
    """Path blog -> forum converts 70%, compare alone 20%, no research 40%; every second
    converter posts 3 days later; sharers come back (a landing 30 days later) 60%, others 10%.
    No ``value`` column (the explorer must not need one)."""
    rng = np.random.default_rng(7)
    rows, fb, truth = [], [], []
    t_start = pd.Timestamp("2025-01-01", tz="UTC")
    for i in range(N):
        c = f"K{i:04d}"
        t0 = t_start + pd.Timedelta(hours=2 * i)
        group = i % 3
        if group == 0:
            rows += [(c, t0 - 2 * DAY, "blog", "web"), (c, t0 - DAY, "forum", "web")]
        elif group == 1:
            rows += [(c, t0 - DAY, "compare", "web")]
        conv = rng.random() < (0.7, 0.2, 0.4)[group]
        rows += [(c, t0, "landing", "web"), (c, t0 + pd.Timedelta(minutes=5), "basket", "web")]
        shared = back = False
        if conv:
            rows.append((c, t0 + pd.Timedelta(minutes=10), "paid", "web"))
            rows.append((c, t0 + 2 * DAY, "helpdesk", "email"))
            shared = i % 2 == 0
            anchor = t0 + (3 * DAY if shared else pd.Timedelta(minutes=10))
            if shared:
                rows.append((c, anchor, "post", "social"))
                fb.append((f"F{i}", c, anchor, "post", 9.0 if i % 4 == 0 else 3.0, "nps",
                           f"told everyone, write me at k{i}@example.com" if i % 4 == 0 else "never again"))
            else:
                fb.append((f"F{i}", c, anchor, "paid", 7.0, "nps", "fine"))
            back = rng.random() < (0.6 if shared else 0.1)
            if back:
                rows.append((c, anchor + 30 * DAY, "landing", "web"))
        truth.append({"customer_id": c, "group": group, "conv": conv, "shared": shared, "back": back})
    rows.append(("ZZLAST", t_start + 400 * DAY, "landing", "web"))       # the data runs past every horizon
    ev = pd.DataFrame(rows, columns=["customer_id", "ts", "touchpoint", "channel"])
    feedback = pd.DataFrame(fb, columns=["feedback_id", "customer_id", "ts", "touchpoint", "score", "scale", "text"])
    jm = JourneyMap.from_dict(MAP)
    d = ExplorerData((ev, feedback), journey=jm, sentiment_model=None)
    return {"data": d, "truth": pd.DataFrame(truth), "events": ev, "journey": jm}


def test_the_map_structure_finds_the_research_and_sharing_moments(planted):
    jm = planted["journey"]
    assert research_moments(jm) == ("LOOK",) and sharing_moments(jm) == ("TELL",)
    assert research_moments(JourneyMap.default()) == ("ZMOT",) and sharing_moments(JourneyMap.default()) == ("UMOT",)
    bpic = JourneyMap.from_yaml("notebooks/reports/bpic2012_journey.yml")
    assert sharing_moments(bpic) == ()           # its last moment holds the conversion


def test_planted_research_paths_are_recovered(planted):
    d, truth = planted["data"], planted["truth"]
    view = d.moment_view(d.selection(moment="LOOK"))
    t = view["paths"].set_index("path")
    a, b = ("blog", "forum"), ("compare",)
    assert set(t.index) == {a, b}
    for path, group in ((a, 0), (b, 1)):
        g = truth[truth.group == group]
        assert t.loc[[path], "customers"].item() == len(g)
        assert t.loc[[path], "converted"].item() == g.conv.sum()
    assert t.loc[[a], "verdict"].item() == "conversion" and t.loc[[b], "verdict"].item() == "leaving"
    assert 0.6 < t.loc[[a], "rate"].item() < 0.8 and 0.1 < t.loc[[b], "rate"].item() < 0.3
    # the test is statsmodels' pooled z-test of the path against every other researching customer
    ga, gb = truth[truth.group == 0], truth[truth.group == 1]
    _, p = proportions_ztest([ga.conv.sum(), gb.conv.sum()], [len(ga), len(gb)])
    np.testing.assert_allclose(t.loc[[a], "p_value"].item(), p, rtol=1e-9)
    assert view["paths"].attrs["no_research"] == (truth.group == 2).sum() + 1     # and ZZLAST


def test_planted_circle_sharers_come_back_more(planted):
    d, truth = planted["data"], planted["truth"]
    c = d.moment_view(d.selection(moment="TELL"))["circle"]
    conv = truth[truth.conv]
    s, o = conv[conv.shared], conv[~conv.shared]
    assert (c["sharers"], c["others"], c["censored"]) == (len(s), len(o), 0)
    assert (c["back"]["sharers"], c["back"]["others"]) == (s.back.sum(), o.back.sum())
    assert c["back"]["rate_sharers"] > 0.45 > 0.2 > c["back"]["rate_others"] and c["significant"]
    _, p = proportions_ztest([s.back.sum(), o.back.sum()], [len(s), len(o)])
    np.testing.assert_allclose(c["back"]["p_value"], p, rtol=1e-9)
    assert c["again"]["sharers"] == c["again"]["others"] == 0          # a return without buying
    voice = d.moment_view(d.selection(moment="TELL"))["voice"]
    assert voice["n"] == voice["customers"] == len(s)                    # sharers' feedback only
    assert voice["negative"] == pytest.approx(np.mean([int(x[1:]) % 4 != 0 for x in s.customer_id]))
    assert not voice["verbatims"]["text"].str.contains("@example.com").any()


def test_the_panel_speaks_the_maps_labels_and_says_where_the_moments_are(planted):
    from cxlab.widgets import PainPointExplorer

    x = PainPointExplorer(planted["data"])
    x.moment.value = "LOOK"
    html = x.moment_html.value
    assert "Blog article → Forum thread" in html and "Comparison site" in html and "precede leaving" in html
    assert "&lt; 0.001" in html and "< 0.001" not in html
    x.moment.value = "TELL"
    html = x.moment_html.value
    assert "Telling others" in html and "within 90 days" in html and "@example.com" not in html
    for m in ("BUY", "ALL"):
        x.moment.value = m
        assert x.moment_html.value.count("<div") == 1 and "LOOK" in x.moment_html.value
    assert "ZMOT" not in html and "UMOT" not in html


def test_a_map_without_research_or_sharing_moment_says_so_in_one_line(planted):
    from cxlab._moment_html import moment_panel_html

    # research inside the purchase phase, care and sharing in the moment that holds the conversion
    spec = dict(MAP, moments=[dict(MAP["moments"][0], phase="during"),
                              dict(MAP["moments"][1], phase="after",
                                   touchpoints=["landing", "basket", "paid", "helpdesk", "post", "rating"])])
    jm = JourneyMap.from_dict(spec)
    assert research_moments(jm) == sharing_moments(jm) == ()
    ev = planted["events"][planted["events"].touchpoint.isin(jm.touchpoints)]
    d = ExplorerData((ev, None), journey=jm, sentiment_model=None)
    sel = d.selection(moment="LOOK")
    assert d.moment_view(sel) == {"kind": None}
    html = moment_panel_html(jm, sel, d.moment_view(sel))
    assert html.count("<div") == 1 and "no research moment" in html and "no sharing moment" in html


@pytest.fixture(scope="module")
def sim():
    return simulate_journeys(2_000, seed=5)


@pytest.fixture(scope="module")
def sim_data(sim):
    return ExplorerData((sim.events, sim.feedback))


def pandas_paths(ev, jm):
    conv = ev[ev.touchpoint == jm.conversion].groupby("customer_id").ts.min()
    r = ev[ev.touchpoint.isin(jm.moment("ZMOT").touchpoints)].copy()
    r["conv"] = r.customer_id.map(conv)
    r = r[r.conv.isna() | (r.ts < r.conv)]
    first = r.groupby(["customer_id", "touchpoint"]).ts.min().reset_index()
    first["order"] = first.touchpoint.map({x: i for i, x in enumerate(jm.touchpoints)})   # ties: map order
    first = first.sort_values(["customer_id", "ts", "order"])
    paths = first.groupby("customer_id").touchpoint.agg(tuple)
    out = pd.DataFrame({"path": paths, "conv": paths.index.isin(conv.index)})
    return out.groupby("path").conv.agg(["size", "sum"])


def test_research_paths_equal_a_pandas_computation(sim, sim_data):
    d = sim_data
    t = d.moment_view(d.selection(moment="ZMOT"))["paths"]
    want = pandas_paths(sim.events, d.journey)
    got = t[t.path.map(len) > 0].set_index("path")
    big = want[want["size"] >= 20]
    assert sorted(got.index) == sorted(big.index)
    np.testing.assert_array_equal(got.loc[big.index, "customers"], big["size"])
    np.testing.assert_array_equal(got.loc[big.index, "converted"], big["sum"])
    pooled = t[t.path.map(len) == 0]
    assert pooled["customers"].item() == want.loc[want["size"] < 20, "size"].sum()
    # under a channel filter: the same computation on the picked customers' whole journeys
    who = set(sim.events.loc[sim.events.channel == "app", "customer_id"])
    t = d.moment_view(d.selection(moment="ZMOT", channels=["app"]))["paths"]
    want = pandas_paths(sim.events[sim.events.customer_id.isin(who)], d.journey)
    assert t["customers"].sum() == want["size"].sum() and t["converted"].sum() == want["sum"].sum()


def test_the_circle_equals_a_pandas_computation(sim, sim_data):
    d = sim_data
    jm, ev = d.journey, sim.events
    c = d.moment_view(d.selection(moment="UMOT"))["circle"]
    conv = ev[ev.touchpoint == jm.conversion].groupby("customer_id").ts.min()
    e = ev[ev.customer_id.isin(conv.index)].assign(conv=lambda x: x.customer_id.map(conv))
    share = e[e.touchpoint.isin(jm.moment("UMOT").touchpoints) & (e.ts >= e.conv)].groupby("customer_id").ts.min()
    anchor = pd.Series(conv).copy()
    anchor.loc[share.index] = share
    horizon, gap = pd.Timedelta(days=90), jm.session_gap
    observed = anchor[anchor + horizon <= ev.ts.max()]
    e = e[e.customer_id.isin(observed.index)].assign(anchor=lambda x: x.customer_id.map(observed))
    new = [x for m in jm.moments if m.phase in ("before", "during") for x in m.touchpoints]
    ret = e[e.touchpoint.isin(new) & (e.ts > e.anchor + gap) & (e.ts <= e.anchor + horizon)]
    came = set(ret.customer_id)
    sharers = set(share.index) & set(observed.index)
    others = set(observed.index) - sharers
    assert (c["sharers"], c["others"]) == (len(sharers), len(others))
    assert c["back"]["sharers"] == len(came & sharers) and c["back"]["others"] == len(came & others)
    assert c["censored"] == len(conv) - len(observed)
    # the simulator plants the circle: reviewers and sharers come back, nobody else does
    assert c["back"]["rate_sharers"] > 0.1 and c["back"]["others"] == 0 and c["significant"]


def test_the_moments_survive_the_cache_round_trip(sim, tmp_path):
    sim.events.to_parquet(tmp_path / "e.parquet")
    sim.feedback.to_parquet(tmp_path / "f.parquet")
    with cxlab.connect(tmp_path / "ws.duckdb") as ws:
        ws.pull(tmp_path / "e.parquet")
        ws.pull(tmp_path / "f.parquet", kind="feedback")
    with cxlab.connect(tmp_path / "ws.duckdb", read_only=True) as ws:
        built = ExplorerData(ws)
        read = ExplorerData(ws)
    assert (built.cache_status, read.cache_status) == ("built", "read")
    assert (built.cache_dir / "moments.npz").is_file()
    for k, v in built._moments.arrays().items():
        np.testing.assert_array_equal(read._moments.arrays()[k], v, err_msg=k)
    for m in ("ZMOT", "UMOT"):
        sel = read.selection(moment=m, segments=["new"])
        a, b = built.moment_view(sel), read.moment_view(sel)
        if m == "ZMOT":
            pd.testing.assert_frame_equal(a["paths"], b["paths"])
        else:
            assert a["circle"] == b["circle"] and a["voice"]["n"] == b["voice"]["n"]
    assert (read._moments.a["conv"] < NEVER).sum() == sim.events.loc[sim.events.touchpoint == "purchase",
                                                                       "customer_id"].nunique()
