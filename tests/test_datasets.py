"""Tests of cxlab.datasets: contracts, planted truth and the export writers."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from cxlab.datasets import (TEXT_TEMPLATES, SimulatedJourneys, SimulationTruth, simulate_journeys,
                            to_ga4, write_simulation)
from cxlab.journey import JourneyMap

EVENT_COLUMNS = ["customer_id", "ts", "touchpoint", "channel", "session_id", "value", "device",
                 "segment"]
FEEDBACK_COLUMNS = ["feedback_id", "customer_id", "ts", "touchpoint", "channel", "score", "scale",
                    "text", "language"]
FUNNEL = ["home_page", "product_page", "add_to_cart", "checkout", "purchase"]
EMAIL = re.compile(r"[\w.]+@[\w.]+\.\w+")
PHONE = re.compile(r"\+39 3\d{2} \d{3} \d{4}|\(555\) \d{3}-\d{4}")


@pytest.fixture(scope="module")
def sim():
    return simulate_journeys(30_000, seed=7)


@pytest.fixture(scope="module")
def small():
    return simulate_journeys(2_000, seed=3)


def _journey_numbers(events: pd.DataFrame) -> pd.Series:
    """Journey number of each event: count of home_page visits so far (0 = before any)."""
    return (events["touchpoint"] == "home_page").astype(int).groupby(events["customer_id"]).cumsum()


# ----------------------------------------------------------------------------- contracts
def test_returns_named_tuple(small):
    assert isinstance(small, SimulatedJourneys)
    events, feedback, truth = small
    assert isinstance(truth, SimulationTruth)
    assert small.events is events


def test_deterministic_for_a_seed():
    a = simulate_journeys(1_500, seed=11)
    b = simulate_journeys(1_500, seed=11)
    c = simulate_journeys(1_500, seed=12)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.feedback, b.feedback)
    pd.testing.assert_frame_equal(a.truth.customers, b.truth.customers)
    assert a.truth.to_dict() == b.truth.to_dict()
    assert not a.events.equals(c.events)
    assert not a.feedback.equals(c.feedback)


def test_event_columns_dtypes_and_order(sim):
    ev = sim.events
    assert list(ev.columns) == EVENT_COLUMNS
    assert str(ev["ts"].dtype) == "datetime64[us, UTC]"
    assert ev["value"].dtype == np.float64
    for col in ("customer_id", "touchpoint", "channel", "session_id", "device", "segment"):
        assert pd.api.types.is_string_dtype(ev[col]), col
        assert ev[col].notna().all(), col
    key = pd.DataFrame({"c": ev["customer_id"], "t": ev["ts"]})
    assert key.equals(key.sort_values(["c", "t"], kind="stable")), "not sorted by customer_id, ts"
    assert ev["customer_id"].str.fullmatch(r"C\d{7}").all()
    assert set(ev["channel"]) <= {"web", "app", "store", "call_centre", "email", "social"}
    assert set(ev["device"]) == {"desktop", "mobile", "tablet"}
    assert set(ev["segment"]) == {"new", "returning", "loyal"}
    purchase = ev["touchpoint"] == "purchase"
    assert (ev.loc[purchase, "value"] > 0).all()
    assert ev.loc[~purchase, "value"].isna().all()
    assert (ev.loc[ev["channel"] == "app", "device"] == "mobile").all()


def test_events_per_customer_and_time_bounds(sim):
    ev = sim.events
    per = len(ev) / ev["customer_id"].nunique()
    assert 8 <= per <= 12
    start = pd.Timestamp("2026-01-01", tz="UTC")
    assert ev["ts"].min() >= start
    assert ev["ts"].max() <= start + pd.Timedelta(days=180 + 120)


def test_touchpoints_in_default_map(sim):
    jm = JourneyMap.default()
    assert set(sim.events["touchpoint"]) <= set(jm.touchpoints)
    assert jm.check(sim.events).ok
    assert set(sim.feedback["touchpoint"]) <= set(jm.touchpoints)


def test_feedback_columns_scores_and_ids(sim):
    fb = sim.feedback
    assert list(fb.columns) == FEEDBACK_COLUMNS
    assert str(fb["ts"].dtype) == "datetime64[us, UTC]"
    assert fb["score"].dtype == np.float64
    assert fb["feedback_id"].is_unique
    assert set(fb["scale"]) == {"nps", "stars"}
    nps = fb[fb["scale"] == "nps"]["score"]
    stars = fb[fb["scale"] == "stars"]["score"]
    assert nps.between(0, 10).all() and (nps == nps.round()).all()
    assert stars.between(1, 5).all() and (stars == stars.round()).all()
    assert set(fb["customer_id"]) <= set(sim.events["customer_id"])
    # reviews are about delivery / product use / returns
    assert set(fb.loc[fb["scale"] == "stars", "touchpoint"]) <= {"delivery", "product_use",
                                                                  "return_request"}


def test_session_ids_follow_the_30_minute_rule(sim):
    ev = sim.events
    gap = ev["ts"].diff()
    new = (ev["customer_id"] != ev["customer_id"].shift()) | (gap > pd.Timedelta("30min"))
    k = new.astype(int).groupby(ev["customer_id"]).cumsum()
    expected = ev["customer_id"] + "-S" + k.astype(str)
    assert (expected == ev["session_id"]).all()


# ----------------------------------------------------------------------------- journeys
def test_loops_switches_repeats_and_returning_customers(sim):
    ev = sim.events
    jn = _journey_numbers(ev)
    # loop: a product_page view after an add_to_cart in the same journey
    atc = ev["touchpoint"].eq("add_to_cart").astype(int).groupby([ev["customer_id"], jn]).cumsum()
    assert ((ev["touchpoint"] == "product_page") & (atc > 0)).sum() > 100
    # product page viewed more than once
    pp = ev[ev["touchpoint"] == "product_page"].groupby(["customer_id", jn]).size()
    assert (pp >= 3).any()
    # channel switch: checkout on another channel than the journey's home_page
    home = ev[ev["touchpoint"] == "home_page"].assign(j=jn).set_index(["customer_id", "j"])["channel"]
    chk = ev[ev["touchpoint"] == "checkout"].assign(j=jn).set_index(["customer_id", "j"])["channel"]
    both = pd.concat({"home": home, "checkout": chk}, axis=1).dropna()
    assert (both["home"] != both["checkout"]).sum() > 50
    assert (ev["touchpoint"] == "sales_call").any()
    # support requests repeated on a second channel
    sup = ev[ev["touchpoint"] == "support_contact"].groupby("customer_id")["channel"].nunique()
    assert (sup >= 2).sum() > 20
    # repeat purchases and returning customers (journey 2)
    assert (ev[ev["touchpoint"] == "purchase"].groupby("customer_id").size() >= 2).sum() > 10
    assert (sim.truth.customers["journey"] >= 2).sum() > 100
    assert jn.max() >= 2


def test_deferred_checkouts_stay_in_the_conversion_window(sim):
    ev = sim.events.assign(j=_journey_numbers(sim.events))
    home = ev[ev["touchpoint"] == "home_page"].set_index(["customer_id", "j"])["ts"]
    buy = ev[ev["touchpoint"] == "purchase"].set_index(["customer_id", "j"])["ts"]
    delay = (buy - home.reindex(buy.index)).dropna()
    assert len(delay) == len(buy)
    assert (delay > pd.Timedelta(0)).all() and (delay <= pd.Timedelta("7D")).all()
    assert (delay > pd.Timedelta("1D")).mean() > 0.15     # later sessions happen


def test_truth_customers_table(sim):
    c = sim.truth.customers
    assert list(c.columns) == ["customer_id", "journey", "segment", "channel", "device", "language",
                               "popup_seen", "registration_seen", "last_step", "converted"]
    assert not c.duplicated(["customer_id", "journey"]).any()
    assert (c["journey"] == 1).sum() == 30_000
    assert set(c["last_step"]) == set(FUNNEL)
    assert (c["converted"] == (c["last_step"] == "purchase")).all()
    assert not c.loc[c["channel"] != "web", "popup_seen"].any()
    rate = c["converted"].mean()
    assert 0.10 <= rate <= 0.20
    n_buy = (sim.events["touchpoint"] == "purchase").sum()
    assert n_buy == c["converted"].sum()


def test_truth_to_dict_is_json(sim):
    d = sim.truth.to_dict()
    text = json.dumps(d)
    back = json.loads(text)
    eff = {r["term"]: r["odds_ratio"] for r in back["dropoff_effects"]}
    assert eff == {"popup_shown": 2.0, "channel_app": 0.5, "registration_form": 2.5}
    assert set(back["step_alpha"]) == {"home_page", "product_page", "add_to_cart", "checkout"}
    assert back["pain_points"][0]["touchpoint"] == "registration_form"
    assert back["params"]["seed"] == 7 and back["params"]["n_customers"] == 30_000
    assert "customers" not in back


# ----------------------------------------------------------------------------- feedback
def test_feedback_languages_and_pii(sim):
    fb = sim.feedback
    assert set(fb["language"]) == {"it", "en"}
    share_it = (fb["language"] == "it").mean()
    assert 0.5 < share_it < 0.7
    has_email = fb["text"].str.contains(EMAIL)
    has_phone = fb["text"].str.contains(PHONE)
    assert has_email.sum() > 10 and has_phone.sum() > 10
    assert 0.02 < has_email.mean() < 0.06
    assert fb["text"].str.contains(r"IT\d{2} X\d{3}").any()
    it = fb[fb["language"] == "it"]["text"]
    assert it.str.contains("è").any() and it.str.contains("più").any()
    assert it.str.contains("perché").any()
    assert fb["text"].nunique() > 500


def _score_class(score, scale):
    return np.where(scale == "nps", np.select([score <= 6, score <= 8], ["negative", "neutral"],
                                              "positive"),
                    np.select([score <= 2, score <= 3], ["negative", "neutral"], "positive"))


def _fold(s: str) -> str:
    """Lower case, accents and apostrophe-accents folded, as the simulator may type them."""
    s = s.lower()
    for a, b in (("è", "e"), ("é", "e"), ("à", "a"), ("ì", "i"), ("ò", "o"), ("ù", "u")):
        s = s.replace(a, b)
    return re.sub(r"(?<=[aeiou])'(?=\W|$)", "", s)


def _expressed(fb: pd.DataFrame) -> pd.Series:
    """The sentiment class each text's words express, read back with TEXT_TEMPLATES: the one
    class whose topic phrases of the row's touchpoint (or short answers) it holds; "mixed"
    for phrases of two classes, "?" for none (a typo in the phrase)."""
    out = []
    for text, lang, tp in zip(fb["text"], fb["language"], fb["touchpoint"]):
        tpl, t = TEXT_TEMPLATES[lang], _fold(text)
        bare = t.split(" please contact")[0].split(" contattatemi")[0].rstrip(".!? ")
        found = {c for c, phrases in tpl["topics"][tp].items() if any(_fold(p) in t for p in phrases)}
        if not found:
            found = {c for c, short in tpl["short"].items() if bare in map(_fold, short)}
        out.append(found.pop() if len(found) == 1 else "mixed" if found else "?")
    return pd.Series(out, index=fb.index)


def test_text_says_what_the_score_says_mostly(sim):
    fb = sim.feedback
    cls = pd.Series(_score_class(fb["score"].to_numpy(), fb["scale"].to_numpy()), index=fb.index)
    said = _expressed(fb)
    # every text is about its own touchpoint (or a short answer), bar a few typos
    assert (said == "?").mean() < 0.05
    plain = said.isin(["negative", "neutral", "positive"])
    agree = (said == cls)[plain]
    assert 0.75 < agree.mean() < 0.95
    # words and score part near the class boundaries only: a 9 with a mild complaint, never
    # a 0-3 with praise
    nps = fb["scale"] == "nps"
    assert ((said == "neutral") & nps & (fb["score"] == 9)).sum() > 20
    low = plain & nps & (fb["score"] <= 3)
    assert (said[low] == "negative").mean() > 0.97 and not (said[low] == "positive").any()
    top = plain & nps & (fb["score"] == 10)
    assert not (said[top] == "negative").any()
    # mixed texts and short answers, in both languages
    for lang in ("it", "en"):
        own = fb["language"] == lang
        assert 0.1 < (said[own] == "mixed").mean() < 0.4
        tpl = TEXT_TEMPLATES[lang]
        shorts = {_fold(s) for c in tpl["short"].values() for s in c}
        short = fb.loc[own, "text"].map(lambda t: _fold(t).rstrip(".!? ") in shorts)
        assert 0.04 < short.mean() < 0.12
    # typed as people do: accents left out in some Italian texts, lower-case starts
    it = fb.loc[fb["language"] == "it", "text"]
    assert it.str.contains(r"\b(?:e'|piu|perche)\b").mean() > 0.03
    assert 0.8 < fb["text"].nunique() / len(fb) < 0.97     # short answers repeat


def test_registration_form_is_the_pain_point(sim):
    nps = sim.feedback[sim.feedback["scale"] == "nps"]
    means = nps.groupby("touchpoint")["score"].mean().sort_values()
    assert means.index[0] == "registration_form"
    assert means.iloc[1] - means.iloc[0] >= 2.0
    assert nps["touchpoint"].value_counts()["registration_form"] > 100
    # leaving the funnel is remembered worse than a completed checkout
    assert means["home_page"] < means["delivery"]
    stars = sim.feedback[sim.feedback["scale"] == "stars"]
    st = stars.groupby("touchpoint")["score"].mean()
    assert st["return_request"] < st["delivery"]


# ----------------------------------------------------------------------------- planted truth
def _person_steps(c: pd.DataFrame) -> pd.DataFrame:
    last = c["last_step"].map({s: i for i, s in enumerate(FUNNEL)}).to_numpy()
    n_steps = np.minimum(last, 3) + 1
    rows = c.loc[c.index.repeat(n_steps)].reset_index(drop=True)
    step = np.concatenate([np.arange(k) for k in n_steps])
    rows["step"] = step
    rows["left"] = ((step == np.repeat(last, n_steps)) & ~rows["converted"].to_numpy()).astype(int)
    return rows


def test_planted_dropoff_effects_are_recovered(sim):
    ps = _person_steps(sim.truth.customers)
    X = pd.DataFrame({
        "popup": ps["popup_seen"].astype(float),
        "app": (ps["channel"] == "app").astype(float),
        "registration_checkout": (ps["registration_seen"] & (ps["step"] == 3)).astype(float),
    })
    for k, name in enumerate(FUNNEL[:4]):
        X[name] = (ps["step"] == k).astype(float)
    fit = sm.Logit(ps["left"].astype(float), X).fit(disp=0)
    ci = np.exp(fit.conf_int())
    truth = sim.truth.dropoff_effects.set_index("term")["odds_ratio"]
    for term, col in (("popup_shown", "popup"), ("channel_app", "app"),
                      ("registration_form", "registration_checkout")):
        lo, hi = ci.loc[col]
        assert lo <= truth[term] <= hi, (term, lo, hi)
    # the baseline logits are recovered too (within 4 standard errors)
    for name, alpha in sim.truth.step_alpha.items():
        assert abs(fit.params[name] - alpha) < 4 * fit.bse[name], name


def test_last_step_from_events_agrees_with_truth(sim):
    ev = sim.events
    jn = _journey_numbers(ev)
    order = {s: i for i, s in enumerate(FUNNEL)}
    f = ev.assign(j=jn, k=ev["touchpoint"].map(order))
    f = f[f["k"].notna() & (f["j"] >= 1)]
    last = f.groupby(["customer_id", "j"])["k"].max().astype(int)
    c = sim.truth.customers.set_index(["customer_id", "journey"])
    c.index = c.index.set_names(["customer_id", "j"])
    assert len(last) == len(c)
    got = last.map(dict(enumerate(FUNNEL))).reindex(c.index)
    assert (got == c["last_step"]).all()
    # popup and registration flags are visible in the events too
    seen = ev.assign(j=jn)
    pop = seen[seen["touchpoint"] == "popup_shown"].groupby(["customer_id", "j"]).size()
    assert set(pop.index) == set(c.index[c["popup_seen"]])
    reg = seen[seen["touchpoint"] == "registration_form"].groupby(["customer_id", "j"]).size()
    assert set(reg.index) == set(c.index[c["registration_seen"]])


# ----------------------------------------------------------------------------- GA4
def _channel_from_ga4(g: pd.DataFrame) -> pd.Series:
    medium = g["traffic_source"].map(lambda d: d["medium"])
    return pd.Series(np.where(g["platform"].isin(["IOS", "ANDROID"]), "app",
                              np.where(medium == "email", "email",
                                       np.where(medium == "social", "social", "web"))),
                     index=g.index)


def _param(g: pd.DataFrame, key: str, kind: str) -> pd.Series:
    return pd.Series([next(p["value"][kind] for p in ps if p["key"] == key)
                      for ps in g["event_params"].tolist()], index=g.index, dtype=object)


def test_to_ga4_round_trip(small):
    ev = small.events
    g = to_ga4(ev)
    digital = ev[ev["channel"].isin(["web", "app", "email", "social"])]
    assert len(g) == len(digital)
    assert list(g.columns) == ["event_date", "event_timestamp", "event_name", "user_pseudo_id",
                               "user_id", "event_params", "platform", "device", "traffic_source",
                               "ecommerce"]
    assert (_channel_from_ga4(g).to_numpy() == digital["channel"].to_numpy()).all()
    ts = pd.to_datetime(g["event_timestamp"] / 1e6, unit="s", utc=True).dt.round("s")
    assert (ts.to_numpy() == digital["ts"].to_numpy()).all()
    assert g["event_timestamp"].dtype == np.int64
    assert (g["event_date"].to_numpy() == digital["ts"].dt.strftime("%Y%m%d").to_numpy()).all()
    assert (g["event_name"].to_numpy() == digital["touchpoint"].to_numpy()).all()
    assert (g["user_id"].to_numpy() == digital["customer_id"].to_numpy()).all()
    sid = _param(g, "ga_session_id", "int_value")
    assert sid.map(lambda v: isinstance(v, int)).all()
    per_session = sid.groupby(digital["session_id"].to_numpy()).nunique()
    assert (per_session == 1).all()
    assert _param(g, "page_location", "string_value").map(len).gt(0).all()
    assert _param(g, "page_location", "int_value").isna().all()
    # one pseudo id per user, and deterministic
    assert (g.groupby("user_id")["user_pseudo_id"].nunique() == 1).all()
    assert g["user_pseudo_id"].str.fullmatch(r"\d{10}\.\d+").all()
    assert to_ga4(ev)["user_pseudo_id"].equals(g["user_pseudo_id"])
    rev = g["ecommerce"].map(lambda d: d["purchase_revenue"])
    buy = (g["event_name"] == "purchase").to_numpy()
    assert rev[buy].notna().all() and rev[~buy].isna().all()
    assert set(g["device"].map(lambda d: d["category"])) <= {"desktop", "mobile", "tablet"}


# ----------------------------------------------------------------------------- writers
def test_write_csv(small, tmp_path):
    paths = write_simulation(small, tmp_path / "out", format="csv")
    ev = pd.read_csv(paths["events"])
    fb = pd.read_csv(paths["feedback"])
    assert list(ev.columns) == EVENT_COLUMNS and len(ev) == len(small.events)
    assert list(fb.columns) == FEEDBACK_COLUMNS and len(fb) == len(small.feedback)
    assert ev["ts"].str.endswith("Z").all()
    ts = pd.to_datetime(ev["ts"], format="ISO8601", utc=True)
    assert (ts.to_numpy() == small.events["ts"].to_numpy()).all()
    assert (fb["text"] == small.feedback["text"]).all()        # UTF-8 accents survive
    truth = json.loads(paths["truth"].read_text(encoding="utf-8"))
    assert truth["n_duplicate_rows"] == 0


def test_write_parquet_with_duplicates(small, tmp_path):
    paths = write_simulation(small, tmp_path, format="parquet", duplicate_share=0.05, seed=4)
    ev = pd.read_parquet(paths["events"])
    fb = pd.read_parquet(paths["feedback"])
    n_dup = json.loads(paths["truth"].read_text())["n_duplicate_rows"]
    assert n_dup == paths["n_duplicate_rows"] == round(0.05 * len(small.events)) > 0
    assert len(ev) == len(small.events) + n_dup
    assert ev.duplicated().sum() == n_dup
    assert ev.drop_duplicates().reset_index(drop=True).equals(
        small.events.reset_index(drop=True)) or len(ev.drop_duplicates()) == len(small.events)
    assert len(fb) == len(small.feedback)
    again = write_simulation(small, tmp_path / "again", format="parquet", duplicate_share=0.05,
                             seed=4)
    pd.testing.assert_frame_equal(pd.read_parquet(again["events"]), ev)


def test_write_ga4_jsonl(small, tmp_path):
    paths = write_simulation(small, tmp_path, format="ga4", duplicate_share=0.02, seed=1)
    assert paths["events"].name == "events_ga4.jsonl"
    g = pd.read_json(paths["events"], lines=True, dtype={"event_date": str})
    n_dup = json.loads(paths["truth"].read_text())["n_duplicate_rows"]
    n_ga4 = small.events["channel"].isin(["web", "app", "email", "social"]).sum()
    assert len(g) == n_ga4 + n_dup and n_dup > 0
    first = json.loads(paths["events"].read_text(encoding="utf-8").splitlines()[0])
    assert isinstance(first["event_params"], list) and isinstance(first["device"], dict)
    assert first["ecommerce"]["purchase_revenue"] is None or first["event_name"] == "purchase"
    assert g["event_date"].str.fullmatch(r"\d{8}").all()
    assert (_channel_from_ga4(g).isin(["web", "app", "email", "social"])).all()
    fb = pd.read_csv(paths["feedback"])
    assert len(fb) == len(small.feedback)


def test_bad_arguments(small, tmp_path):
    with pytest.raises(ValueError):
        write_simulation(small, tmp_path, format="xlsx")
    with pytest.raises(ValueError):
        simulate_journeys(0, seed=1)
