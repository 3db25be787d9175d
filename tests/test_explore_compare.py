"""A versus B in the explorer: a planted difference is called with the right sign, numbers
equal an independent pandas computation, two random halves of the same customers show no
called difference, and the panel works on a journey map of other names."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxlab.datasets import simulate_journeys
from cxlab.explore import ExplorerData
from cxlab.explore_compare import compare, months, selections_for
from cxlab.journey import JourneyMap
from cxlab.stats import two_proportion_test


@pytest.fixture(scope="module")
def planted():
    """Customers get a random group A/B; B loses 40% of its conversions (their purchase and
    everything after it removed), so B converts clearly less."""
    sim = simulate_journeys(6_000, seed=11)
    ev, fb = sim.events.copy(), sim.feedback.copy()
    rng = np.random.default_rng(3)
    ids = ev["customer_id"].unique()
    group = pd.Series(rng.choice(["grp_a", "grp_b"], size=len(ids)), index=ids)
    ev["segment"] = ev["customer_id"].map(group).astype("str")
    conv = "purchase"
    buyers = ev.loc[(ev.touchpoint == conv) & (ev.segment == "grp_b"), "customer_id"].unique()
    lose = set(rng.choice(buyers, size=int(0.4 * len(buyers)), replace=False))
    first_buy = ev[ev.touchpoint == conv].groupby("customer_id")["ts"].min()
    cut = ev["customer_id"].isin(lose) & (ev["ts"] >= ev["customer_id"].map(first_buy))
    ev = ev[~cut].reset_index(drop=True)
    fb = fb[~(fb["customer_id"].isin(lose) & (fb["ts"] >= fb["customer_id"].map(first_buy)))]
    return ev, fb.reset_index(drop=True), group


@pytest.fixture(scope="module")
def data(planted):
    ev, fb, _ = planted
    return ExplorerData((ev, fb), sentiment_model=None)


def _conversion(ev, who, jm):
    """Of the customers in ``who`` who reached the funnel's first step, the share who reached its last."""
    e = ev[ev.customer_id.isin(who)]
    entered = set(e.loc[e.touchpoint == jm.funnel[0], "customer_id"])
    first = e[e.touchpoint == jm.funnel[0]].groupby("customer_id")["ts"].min()
    last = e[e.touchpoint == jm.funnel[-1]].groupby("customer_id")["ts"].max()
    both = first.index.intersection(last.index)
    return len(entered), int((last[both] >= first[both]).sum())


def test_the_planted_conversion_drop_is_called_for_b(planted, data):
    ev, _, group = planted
    a, b = selections_for(data, "segment", "grp_a", "grp_b")
    c = compare(data, a, b, a_label="grp_a", b_label="grp_b")
    t = c.to_frame().set_index("kind")
    row = t.loc["conversion"]
    assert row["significant"] and row["verdict"] == "B worse" and row["diff"] < -0.05
    # the values equal the explorer's own KPI and the test is the package's two-proportion test
    ka, kb = data.kpis(a)["Conversion"], data.kpis(b)["Conversion"]
    assert row["a_value"] == pytest.approx(ka["value"]) and row["b_value"] == pytest.approx(kb["value"])
    _, p = two_proportion_test(round(kb["value"] * kb["n"]), kb["n"], round(ka["value"] * ka["n"]), ka["n"])
    assert row["p_value"] == pytest.approx(float(p))
    # and the planted effect is there in the raw events (funnel entry to conversion)
    na, ca = _conversion(ev, set(group.index[group == "grp_a"]), data.journey)
    nb, cb = _conversion(ev, set(group.index[group == "grp_b"]), data.journey)
    assert cb / nb < ca / na - 0.05
    assert "grp_b vs grp_a" in c.summary()
    # NPS and CSAT equal the explorer's tiles; negative shares equal pandas on the raw feedback
    for key, kind in (("NPS", "nps"), ("CSAT", "csat")):
        if data.kpis(a)[key] and data.kpis(b)[key]:
            assert t.loc[kind, "a_value"] == pytest.approx(data.kpis(a)[key]["value"])
            assert t.loc[kind, "b_n"] == data.kpis(b)[key]["n"]
    from cxlab.io import in_score_class

    _, fb, _ = planted
    neg = c.table[c.table.kind == "negative"].iloc[0]
    tp = next(x for x in data.journey.touchpoints if neg.measure.endswith(data.journey.label(x)))
    mine = fb[fb.customer_id.isin(group.index[group == "grp_b"]) & (fb.touchpoint == tp) & fb.score.notna()]
    assert neg["b_n"] == len(mine)
    assert neg["b_value"] == pytest.approx(np.mean(in_score_class(mine.score, mine.scale, "negative")))
    # Benjamini-Hochberg over the rows tested, as statsmodels computes it; called rows are below alpha
    from statsmodels.stats.multitest import multipletests

    tested = c.table[c.table.p_value.notna()]
    np.testing.assert_allclose(tested.p_adjusted, multipletests(tested.p_value, method="fdr_bh")[1])
    assert (c.called().p_adjusted < c.alpha).all()


def test_two_random_halves_of_the_same_people_show_no_called_difference():
    sim = simulate_journeys(6_000, seed=12)
    ev = sim.events.copy()
    rng = np.random.default_rng(9)
    ids = ev["customer_id"].unique()
    ev["segment"] = ev["customer_id"].map(pd.Series(rng.choice(["h1", "h2"], size=len(ids)), index=ids))
    d = ExplorerData((ev, sim.feedback), sentiment_model=None)
    c = compare(d, *selections_for(d, "segment", "h1", "h2"))
    assert len(c.table) > 10
    assert c.called().empty, c.called()[["measure", "a_value", "b_value", "p_adjusted"]]


def test_too_few_answers_are_not_judged(data):
    a, b = selections_for(data, "segment", "grp_a", "grp_b")
    c = compare(data, a, b, min_n=10**6)
    assert not c.table["significant"].any()
    assert c.table.loc[c.table.kind == "conversion", "verdict"].iloc[0].startswith("too few to judge")


def test_periods_are_calendar_months_and_their_numbers_match_the_date_filter(data):
    ms = months(data)
    assert len(ms) >= 2 and ms[0][1] == pd.Timestamp(data.first_day)
    (la, a0, a1), (lb, b0, b1) = ms[-2], ms[-1]
    a, b = selections_for(data, "period", (a0, a1), (b0, b1))
    c = compare(data, a, b, a_label=la, b_label=lb)
    got = c.table.set_index("kind").loc["customers"]
    assert got["a_value"] == data.customer_count(data.selection(start=a0, end=a1))
    assert got["b_value"] == data.customer_count(data.selection(start=b0, end=b1))


def test_an_own_journey_with_other_names_compares_channels():
    jm = JourneyMap.from_dict({
        "name": "abbonamento", "conversion": "attivazione",
        "funnel": ["visita_sito", "prova_gratuita", "attivazione"],
        "moments": [{"id": "scoperta", "phase": "before", "touchpoints": ["visita_sito", "prova_gratuita"]},
                    {"id": "uso", "phase": "after", "touchpoints": ["attivazione", "assistenza"]}],
        "labels": {"visita_sito": "Visita al sito", "prova_gratuita": "Prova gratuita",
                   "attivazione": "Attivazione", "assistenza": "Assistenza"}})
    rng = np.random.default_rng(1)
    rows = []
    t0 = pd.Timestamp("2026-03-01", tz="UTC")
    for i in range(1_200):
        ch = "app" if i % 2 else "web"
        ts = t0 + pd.Timedelta(hours=int(rng.integers(0, 24 * 50)))
        rows.append((f"c{i}", ts, "visita_sito", ch))
        if rng.random() < 0.6:
            rows.append((f"c{i}", ts + pd.Timedelta(minutes=5), "prova_gratuita", ch))
            if rng.random() < (0.7 if ch == "app" else 0.35):
                rows.append((f"c{i}", ts + pd.Timedelta(days=3), "attivazione", ch))
    ev = pd.DataFrame(rows, columns=["customer_id", "ts", "touchpoint", "channel"])
    d = ExplorerData(ev, journey=jm, sentiment_model=None)
    c = compare(d, *selections_for(d, "channel", "web", "app"), a_label="web", b_label="app")
    t = c.to_frame()
    step = t[t.measure == "Prova gratuita → Attivazione"].iloc[0]
    assert step["significant"] and step["verdict"] == "B better"
    # the step rate equals pandas on the raw rows
    tried = ev[(ev.touchpoint == "prova_gratuita") & (ev.channel == "app")].customer_id
    act = ev[(ev.touchpoint == "attivazione") & ev.customer_id.isin(tried)].customer_id.nunique()
    assert step["b_value"] == pytest.approx(act / tried.nunique())
    assert not any("purchase" in m for m in t.measure)


def test_the_explorer_panel_opens_follows_the_moment_and_escapes(planted):
    from cxlab.widgets import PainPointExplorer

    ev, fb, _ = planted
    x = PainPointExplorer((ev, fb), sentiment_model=None)
    assert x.compare.comparison is None and x.compare_box.selected_index is None   # folded: not computed
    x.compare_box.selected_index = 0
    view = x.compare
    assert view.dimension.value == "segment" and {view.a.value, view.b.value} == {"grp_a", "grp_b"}
    assert "Conversion" in view.html.value and "B worse" in view.html.value
    moment = next(m for m in x.data.journey.moment_ids if m != x.data.journey.moment_of(x.data.journey.funnel[0]))
    x.moment.value = moment
    tps = {x.data.journey.label(t) for t in x.data.selected_touchpoints(x.selection())}
    rows = view.comparison.table
    per_tp = rows[rows.kind.isin(["left_after", "negative"])].measure
    assert all(any(m.endswith(label) for label in tps) for m in per_tp)
    view.dimension.value = "period"
    assert view.a.value != view.b.value and "customers" in view.comparison.table.kind.tolist()
