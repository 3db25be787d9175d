"""cxlab.painpoints: planted pain point recovered, numbers equal independent computations."""
import dataclasses

import matplotlib
import numpy as np
import pandas as pd
import pytest

from cxlab.datasets import simulate_journeys
from cxlab.journey import JourneyMap
from cxlab.painpoints import (circular_journey, emotion_curve, normalised_score, pain_points, plot_emotion_curve,
                              plot_priority_matrix)

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def sim():
    return simulate_journeys(20_000, seed=2)


@pytest.fixture(scope="module")
def table(sim):
    events, feedback, _ = sim
    return pain_points((events, feedback))


def test_planted_pain_point_is_the_first_pain_point_and_is_significant(sim, table):
    _, _, truth = sim
    planted = truth.pain_points.touchpoint.iloc[0]
    ranked = table.sort_values("rank")
    top = ranked[ranked.pain_point].iloc[0]
    assert top.touchpoint == planted and top.pain_point and top.flag == "voice and behaviour"
    assert top.moment == truth.pain_points.moment.iloc[0]
    # the planted odds ratio (2.5 at checkout) is inside the interval, at the right step
    assert top.dropoff_step == "checkout" and top.dropoff_ci_low < 2.5 < top.dropoff_ci_high
    assert top.score_q < 1e-6 and top.dropoff_q < 1e-6


def test_one_priority_scale_for_voice_and_behaviour_issues(table):
    """Every flagged touchpoint whose customers lost is measured ranks by money at risk,
    whatever its evidence: the planted pop-up (no feedback, about 3x the form's money at
    risk) is first, the planted form (voice and behaviour) second; voice-only issues, whose
    effect on leaving is not measured, follow; the priority matrix plots the pop-up too."""
    ranked = table.sort_values("rank")
    measured = ranked[(ranked.flag != "") & (ranked.value_at_risk > 0)]
    assert list(measured.touchpoint[:2]) == ["popup_shown", "registration_form"]
    assert measured.value_at_risk.is_monotonic_decreasing
    assert list(ranked["rank"][: len(measured)]) == list(range(1, len(measured) + 1))
    voice_only = ranked[(ranked.flag == "voice") & ranked.dropoff_or.isna()]
    assert len(voice_only) and (voice_only["rank"] > measured["rank"].max()).all()
    assert voice_only.score_diff.is_monotonic_increasing
    ax = plot_priority_matrix(table)
    xy = np.vstack([c.get_offsets() for c in ax.collections if len(c.get_offsets())])
    popup = table.set_index("touchpoint").loc["popup_shown"]
    assert any(np.isclose(x, popup.value_at_risk) for x, _ in xy)      # behaviour-only, plotted
    assert "1. popup_shown" in [t.get_text() for t in ax.texts]


def test_no_unplanted_behaviour_flags(sim, table):
    _, _, truth = sim
    planted = set(truth.dropoff_effects.term) | {"popup_shown"}
    flagged = set(table.loc[table.flag.str.contains("behaviour"), "touchpoint"])
    assert flagged <= planted and "registration_form" in flagged
    # planted voice effects (return requests -0.8) show up; a planted positive one never does
    assert table.set_index("touchpoint").loc["return_request", "pain_point"]
    assert not table.set_index("touchpoint").loc[["delivery", "product_use", "checkout"], "pain_point"].any()


def test_voice_numbers_equal_a_pandas_computation(sim, table):
    from scipy import stats

    _, feedback, _ = sim
    f = feedback.assign(norm=normalised_score(feedback.score, feedback.scale))
    inside = f[f.touchpoint == "registration_form"].norm
    outside = f[f.touchpoint != "registration_form"].norm
    row = table.set_index("touchpoint").loc["registration_form"]
    assert row.feedback == len(inside)
    assert row.score_mean == pytest.approx(inside.mean())
    assert row.score_diff == pytest.approx(inside.mean() - outside.mean())
    assert row.score_p == pytest.approx(stats.ttest_ind(inside, outside, equal_var=False).pvalue, rel=1e-6)
    neg = f[(f.touchpoint == "registration_form")]
    expected_neg = (((neg.scale == "nps") & (neg.score <= 6)) | ((neg.scale == "stars") & (neg.score <= 2))).mean()
    assert row.share_negative == pytest.approx(expected_neg)
    assert row.share_negative_ci_low < row.share_negative < row.share_negative_ci_high


def test_reach_and_left_after_equal_a_pandas_computation(sim, table):
    events, _, _ = sim
    row = table.set_index("touchpoint").loc["popup_shown"]
    seen = events[events.touchpoint == "popup_shown"].groupby("customer_id").ts.min()
    conv = events[events.touchpoint == "purchase"].groupby("customer_id").ts.min()
    j = seen.to_frame("seen").join(conv.rename("conv"))
    in_play = j[j.conv.isna() | (j.conv >= j.seen)]
    assert row.reached == len(seen)
    assert row.at_risk == len(in_play) and row.left == in_play.conv.isna().sum()


def test_emotion_curve_and_plots(table, tmp_path):
    curve = emotion_curve(table)
    assert list(curve.touchpoint) == [t for t in table.touchpoint if t in set(curve.touchpoint)]   # map order
    assert (curve.ci_low <= curve["mean"]).all() and (curve["mean"] <= curve.ci_high).all()
    assert curve.set_index("touchpoint").loc["registration_form", "pain_point"]
    ax = plot_emotion_curve(table)
    ax.figure.savefig(tmp_path / "curve.png")
    assert "registration_form" in [t.get_text() for t in ax.texts]
    ax = plot_priority_matrix(table)
    labels = [t.get_text() for t in ax.texts if t.get_text()[:1].isdigit()]
    ranked = table.sort_values("rank")
    flagged = ranked[(ranked.flag != "") | (ranked.customers_lost > 0)]
    assert labels == [f"{r}. {x}" for r, x in zip(flagged["rank"], flagged.touchpoint)][:12]
    with pytest.raises(ValueError, match="measure"):
        emotion_curve(table, measure="mood")


def test_segments_and_periods(sim, monkeypatch):
    from cxlab.sentiment import SentimentModel

    events, feedback, _ = sim
    fits = []
    fit = SentimentModel.fit
    monkeypatch.setattr(SentimentModel, "fit", lambda self, data: fits.append(len(data)) or fit(self, data))
    seg = pain_points((events, feedback), segment="device")
    assert fits == [len(feedback)]              # every device's verbatims scored by one model
    monkeypatch.undo()
    assert set(seg.device) == set(events.device.dropna())
    per_level = seg.groupby("device").reached.sum()
    for dev, n in per_level.items():
        sub = events[events.device == dev]
        assert n == sub[sub.touchpoint.isin(seg.touchpoint)].groupby("touchpoint").customer_id.nunique().sum()
    first_half = pain_points((events, feedback), period=("2026-01-01", "2026-04-01"), sentiment_model=None)
    fb = feedback[(feedback.ts >= pd.Timestamp("2026-01-01", tz="UTC")) & (feedback.ts < pd.Timestamp("2026-04-01", tz="UTC"))]
    assert first_half.feedback.sum() == fb.touchpoint.isin(first_half.touchpoint).sum()
    with pytest.raises(ValueError, match="did you mean 'device'"):
        pain_points((events, feedback), segment="devices")
    with pytest.raises(ValueError, match="alpha"):
        pain_points((events, feedback), alpha=5)


def test_segments_are_scored_by_one_model(sim, monkeypatch):
    from cxlab.painpoints import fit_voice_model
    from cxlab.sentiment import SentimentModel

    _, feedback, _ = sim
    # a planted market: most complaints come from the south
    rng = np.random.default_rng(0)
    neg = ((feedback.scale == "nps") & (feedback.score <= 6)) | ((feedback.scale == "stars") & (feedback.score <= 2))
    south = rng.random(len(feedback)) < np.where(neg, 0.8, 0.3)
    fb = feedback.assign(market=np.where(south, "south", "north"))
    fits = []
    fit = SentimentModel.fit
    monkeypatch.setattr(SentimentModel, "fit", lambda self, data: fits.append(len(data)) or fit(self, data))
    seg = pain_points((None, fb), segment="market")
    assert fits == [fb.text.notna().sum()]                       # one model, on all rated feedback
    monkeypatch.undo()
    model = fit_voice_model(fb)
    score = pd.Series(model.predict(fb.text.tolist())["score"].to_numpy(), index=fb.index)
    expected = score.groupby([fb.market, fb.touchpoint]).mean()
    got = seg.dropna(subset=["sentiment_mean"]).set_index(["market", "touchpoint"]).sentiment_mean
    assert len(got) == len(expected) == 18
    assert np.allclose(got.sort_index(), expected.sort_index(), atol=1e-9)
    # on one scale, the south's texts read worse at every touchpoint
    assert (expected["south"] < expected["north"]).all()
    same = pain_points((None, fb), segment="market", sentiment_model=model)
    assert np.allclose(same.sentiment_mean, seg.sentiment_mean, equal_nan=True)

def test_circular_journey_equals_pandas(sim):
    events, feedback, _ = sim
    out = circular_journey((events, feedback), window="90D").set_index("measure")
    umot = ["review_written", "social_share", "survey_response"]
    first = events[events.touchpoint.isin(umot)].groupby("customer_id").ts.min().rename("u")
    later = events.join(first, on="customer_id", how="inner")
    within = later[(later.ts > later.u) & (later.ts <= later.u + pd.Timedelta("90D"))]
    early = ["search", "ad_click", "social_post_view", "review_read", "newsletter_open", "home_page",
             "popup_shown", "product_page", "add_to_cart", "registration_form", "checkout", "purchase",
             "store_visit", "sales_call"]
    assert out.loc["reach_umot", "n"] == len(first)
    assert out.loc["reach_umot", "base"] == events.customer_id.nunique()
    assert out.loc["return_to_zmot_fmot", "n"] == within[within.touchpoint.isin(early)].customer_id.nunique()
    assert out.loc["repurchase_after_umot", "n"] == within[within.touchpoint == "purchase"].customer_id.nunique()
    assert np.all(out.ci_low.dropna() <= out.rate.dropna())


def test_voice_only_feedback_without_scores_uses_text_sentiment():
    from cxlab.journey import JourneyMap

    reasons = ["late", "lost bag", "booking"]
    jm = JourneyMap.from_dict({"name": "complaints", "moments": [
        {"id": "FMOT", "label": "booking", "phase": "before", "touchpoints": ["booking"]},
        {"id": "SMOT", "label": "trip", "phase": "during", "touchpoints": ["late", "lost bag"]}],
        "funnel": ["booking", "late"], "conversion": "late"})

    class Fixed:                       # a scorer: the text is its own score
        def predict(self, texts):
            return pd.DataFrame({"score": [float(t) for t in texts]})

    rng = np.random.default_rng(0)
    fb = pd.DataFrame({"touchpoint": np.repeat(reasons, 200),
                       "text": np.concatenate([rng.normal(-0.6, 0.3, 200), rng.normal(0, 0.3, 200),
                                               rng.normal(0.1, 0.3, 200)]).astype(str)})
    tab = pain_points(None, feedback=fb, journey=jm, sentiment_model=Fixed()).set_index("touchpoint")
    assert tab.loc["late", "pain_point"] and tab.loc["late", "rank"] == 1
    assert not tab.loc[["lost bag", "booking"], "pain_point"].any()
    late = fb[fb.touchpoint == "late"].text.astype(float)
    assert tab.loc["late", "sentiment_mean"] == pytest.approx(late.mean())
    assert tab.loc["late", "reached"] == 200 and np.isnan(tab.loc["late", "dropoff_or"])
    with pytest.raises(ValueError, match="needs events, feedback or both"):
        pain_points(None)


@pytest.mark.realdata
def test_airline_complaint_reasons_by_text_sentiment():
    from conftest import shared_file

    from cxlab.journey import JourneyMap
    from cxlab.sentiment import LexiconSentiment

    tweets = pd.read_csv(shared_file("airline_tweets", "Tweets.csv"))
    neg = tweets[tweets.negativereason.notna()].rename(columns={"negativereason": "touchpoint", "name": "customer_id"})
    reasons = sorted(neg.touchpoint.unique())
    jm = JourneyMap.from_dict({"name": "airline complaints", "moments": [
        {"id": "SMOT", "label": "trip and care", "phase": "during", "touchpoints": reasons}],
        "funnel": reasons[:2], "conversion": reasons[1]})
    tab = pain_points(None, feedback=neg[["customer_id", "touchpoint", "text"]], journey=jm,
                      sentiment_model=LexiconSentiment())
    top = tab.sort_values("rank").iloc[0]
    # measured: cancelled flights carry the most negative wording (VADER -0.13 vs -0.01 elsewhere)
    assert top.touchpoint == "Cancelled Flight" and top.pain_point and top.sentiment_q < 1e-6
    assert tab.feedback.sum() == len(neg)


@pytest.mark.slow
def test_unplanted_touchpoints_are_rarely_flagged_across_seeds():
    """Over several simulations, behaviour flags land on the planted exposures only (the
    others have no effect, so a flag there would be a false discovery). The map's curated
    ``exposures:`` are dropped so that every candidate before conversion is tested."""
    planted = {"popup_shown", "registration_form"}
    every_candidate = dataclasses.replace(JourneyMap.default(), exposures=())
    false_flags = tested = 0
    for seed in (11, 12, 13, 14):
        events, feedback, _ = simulate_journeys(8_000, seed=seed)
        tab = pain_points((events, feedback), journey=every_candidate, sentiment_model=None)
        others = tab[tab.dropoff_q.notna() & ~tab.touchpoint.isin(planted)]
        tested += len(others)
        false_flags += int(others.flag.str.contains("behaviour").sum())
        ranked = tab.sort_values("rank")
        assert ranked[ranked.pain_point].iloc[0].touchpoint == "registration_form"
    assert tested >= 4 and false_flags <= 1


def test_pain_points_examine_the_maps_exposures_when_it_lists_them(sim):
    """The map's ``exposures:`` choose the drop-off terms, as in the behaviour report; without
    the key, every touchpoint before conversion outside the funnel is a candidate."""
    events, feedback, _ = sim
    jm = JourneyMap.default()
    assert set(jm.exposures) == {"popup_shown", "registration_form"}
    tab = pain_points((events, feedback), journey=jm, sentiment_model=None)
    assert set(tab.loc[tab.dropoff_or.notna(), "touchpoint"]) == set(jm.exposures)
    wide = pain_points((events, feedback), journey=dataclasses.replace(jm, exposures=()), sentiment_model=None)
    assert set(wide.loc[wide.dropoff_or.notna(), "touchpoint"]) > set(jm.exposures)


def test_normalised_score_takes_one_scale_for_all_scores():
    np.testing.assert_allclose(normalised_score([1, 3, 5], "stars"), [0, 50, 100])
    np.testing.assert_allclose(normalised_score([0, 9], ["nps", "nps"]), [0, 90])
    assert np.isnan(normalised_score([4], "thumbs")[0])


def test_behaviour_is_measured_on_a_map_with_its_own_moment_ids(own_journey):
    """The drop-off candidates come from the moments' phases (before / during the purchase),
    not from the default map's moment ids: on a journey whose moments are RICERCA, OFFERTA...
    the pop-up (here a cookie banner) still gets its odds of leaving."""
    import cxlab

    jm = cxlab.JourneyMap.from_yaml(own_journey["journey"])
    events = pd.read_csv(own_journey["events"])
    events["ts"] = pd.to_datetime(events["ts"], utc=True)
    table = pain_points((events, None), journey=jm).set_index("touchpoint")
    before_purchase = [x for x in jm.touchpoints if jm.phase_of(x) in ("before", "during")
                       and x not in jm.funnel]
    assert table.loc["banner_cookie", "dropoff_or"] > 1
    assert table.loc["banner_cookie", "flag"] == "behaviour"
    assert table.loc[[x for x in jm.touchpoints if x not in before_purchase], "dropoff_or"].isna().all()

