"""Distinctive terms (cxlab._terms): planted vocabulary recovered from the simulator, the
Monroe et al. statistic against a hand computation, PII never leaking, bad inputs, plots,
and stable facts of the airline tweets."""
from __future__ import annotations

import math
import re
from itertools import pairwise

import matplotlib
import pandas as pd
import pytest

from cxlab._terms import (STOP_WORDS_EN, STOP_WORDS_IT, TERM_COLUMNS, _tokens, distinctive_terms,
                          plot_distinctive_terms)
from cxlab.datasets import TEXT_TEMPLATES, simulate_journeys

matplotlib.use("Agg")
PAIN_POINT = "registration_form"


@pytest.fixture(scope="module")
def sim():
    return simulate_journeys(20_000, seed=1)


def _phrase_vocab(touchpoint: str, classes=("negative", "neutral", "positive")) -> set[str]:
    """Unigrams and bigrams of a touchpoint's topic phrases (both languages), tokenised
    independently of the module: lower case, runs of letters, bigrams within a phrase."""
    vocab = set()
    for lang in TEXT_TEMPLATES.values():
        for cls in classes:
            for phrase in lang["topics"][touchpoint][cls]:
                toks = re.findall(r"[^\W\d_]+", phrase.lower())
                vocab.update(toks)
                vocab.update(f"{a} {b}" for a, b in pairwise(toks))
    return vocab


def _top(table, group, n, by="touchpoint"):
    return table.loc[table[by] == group, "term"].head(n).tolist()


# --------------------------------------------------------------------------- planted truth
def test_pain_point_terms_come_from_its_own_phrases(sim):
    _, feedback, truth = sim
    assert truth.pain_points["touchpoint"].tolist() == [PAIN_POINT]
    table = distinctive_terms(feedback)
    top10 = _top(table, PAIN_POINT, 10)
    assert len(top10) == 10
    assert set(top10) <= _phrase_vocab(PAIN_POINT), set(top10) - _phrase_vocab(PAIN_POINT)
    assert "registrazione" in top10[:5]
    rows = table[table.touchpoint == PAIN_POINT].head(10)
    assert (rows["q_value"] < 1e-6).all() and (rows["z"] > 5).all()


def test_negative_only_terms_come_from_negative_phrases(sim):
    _, feedback, _ = sim
    for stop in (None, "auto"):
        table = distinctive_terms(feedback, sentiment="negative", stop_words=stop)
        neg = _phrase_vocab(PAIN_POINT, classes=("negative",))
        top10 = _top(table, PAIN_POINT, 10)
        assert set(top10) <= neg, (stop, set(top10) - neg)
        assert top10[0] == "registrazione"
        # every touchpoint's complaints are explained by its own negative phrases
        for tp in table.touchpoint.unique():
            top5 = _top(table, tp, 5)
            assert set(top5) <= _phrase_vocab(tp, classes=("negative",)), (stop, tp, top5)
    assert table.attrs["sentiment"] == "negative"


def test_stop_words_auto_drops_function_words(sim):
    _, feedback, _ = sim
    table = distinctive_terms(feedback, stop_words="auto", top=30)
    terms = set(table.term)
    assert not terms & (STOP_WORDS_IT | STOP_WORDS_EN)
    # n-grams neither start nor end with a stop word
    stop = STOP_WORDS_IT | STOP_WORDS_EN
    for t in terms:
        words = t.split()
        assert words[0] not in stop and words[-1] not in stop


# --------------------------------------------------------------------------- numbers by hand
def _hand(y_i, y_j, n_i, n_j, a_w, a_0):
    d = math.log((y_i + a_w) / (n_i + a_0 - y_i - a_w)) - math.log((y_j + a_w) / (n_j + a_0 - y_j - a_w))
    z = d / math.sqrt(1 / (y_i + a_w) + 1 / (y_j + a_w))
    return d, z, math.erfc(abs(z) / math.sqrt(2))


def _bh(ps):
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    q, running = [0.0] * m, 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, ps[i] * m / rank)
        q[i] = running
    return q


TINY = pd.DataFrame({"g": ["a", "a", "a", "b", "b", "b"],
                     "text": ["late delivery", "Late late parcel", "parcel ok",
                              "great service", "service ok", "late service"]})
# group a: late 3, delivery 1, parcel 2, ok 1 (n=7); group b: great 1, service 3, ok 1, late 1 (n=6)
A = {"late": 3, "delivery": 1, "parcel": 2, "ok": 1}
B = {"great": 1, "service": 3, "ok": 1, "late": 1}


@pytest.mark.parametrize("prior,scale", [("uniform", 0.5), ("informative", 0.5), ("informative", 0.05)])
def test_log_odds_and_z_match_a_hand_computation(prior, scale):
    before = TINY.copy()
    out = distinctive_terms(TINY, by="g", ngram_range=(1, 1), min_count=1, prior=prior,
                            prior_scale=scale, top=100)
    pd.testing.assert_frame_equal(TINY, before)
    vocab = set(A) | set(B)
    total = {w: A.get(w, 0) + B.get(w, 0) for w in vocab}
    n_a, n_b = sum(A.values()), sum(B.values())
    for group, mine, other, n_i, n_j in (("a", A, B, n_a, n_b), ("b", B, A, n_b, n_a)):
        hand = {}
        for w in mine:
            a_w = scale if prior == "uniform" else scale * total[w]
            a_0 = scale * len(vocab) if prior == "uniform" else scale * (n_a + n_b)
            hand[w] = _hand(mine[w], other.get(w, 0), n_i, n_j, a_w, a_0)
        words = sorted(hand)
        q = dict(zip(words, _bh([hand[w][2] for w in words])))
        got = out[out.g == group].set_index("term")
        expected_terms = sorted((w for w in words if hand[w][1] > 0), key=lambda w: (-hand[w][1], w))
        assert got.index.tolist() == expected_terms
        for w in expected_terms:
            d, z, p = hand[w]
            assert got.loc[w, "log_odds"] == pytest.approx(d, rel=1e-12)
            assert got.loc[w, "z"] == pytest.approx(z, rel=1e-12)
            assert got.loc[w, "p_value"] == pytest.approx(p, rel=1e-9)
            assert got.loc[w, "q_value"] == pytest.approx(q[w], rel=1e-9)
            assert got.loc[w, "count_in_group"] == mine[w]
    a = out[out.g == "a"].set_index("term")
    assert a.loc["late", "share_in_group"] == pytest.approx(2 / 3)      # 2 of 3 texts
    assert a.loc["late", "share_elsewhere"] == pytest.approx(1 / 3)
    assert a.loc["late", "example"] == "late delivery | Late late parcel"   # shortest first


def test_bigrams_are_compared_with_bigrams():
    out = distinctive_terms(TINY, by="g", ngram_range=(1, 2), min_count=1, prior_scale=0.5, top=100)
    # bigrams: a has late delivery, late late, late parcel, parcel ok (4); b has 3; corpus 7
    d, z, _ = _hand(1, 0, 4, 3, 0.5 * 1, 0.5 * 7)
    row = out[(out.g == "a") & (out.term == "late late")].iloc[0]
    assert row["log_odds"] == pytest.approx(d) and row["z"] == pytest.approx(z)


def test_output_shape_and_order(sim):
    _, feedback, _ = sim
    t1 = distinctive_terms(feedback, top=7, examples=1)
    t2 = distinctive_terms(feedback, top=7, examples=1)
    pd.testing.assert_frame_equal(t1, t2)
    assert t1.columns.tolist() == ["touchpoint", *TERM_COLUMNS]
    assert t1.touchpoint.tolist() == sorted(t1.touchpoint)
    assert t1.groupby("touchpoint").size().eq(7).all()
    assert t1.groupby("touchpoint")["z"].apply(lambda z: z.is_monotonic_decreasing).all()
    assert (t1.z > 0).all() and (t1.count_in_group >= 5).all()
    assert t1.share_in_group.between(0, 1).all() and t1.share_elsewhere.between(0, 1).all()
    assert (t1.example.str.len() <= 125).all() and not t1.example.str.contains(" | ", regex=False).any()
    one = distinctive_terms(feedback, groups=["delivery", PAIN_POINT], examples=0)
    assert one.touchpoint.unique().tolist() == ["delivery", PAIN_POINT]
    assert one.example.eq("").all()


def test_ibis_table_gives_the_same_table(sim):
    ibis = pytest.importorskip("ibis")
    _, feedback, _ = sim
    expected = distinctive_terms(feedback, sentiment="negative", stop_words="auto", top=5)
    got = distinctive_terms(ibis.memtable(feedback), sentiment="negative", stop_words="auto", top=5)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


# --------------------------------------------------------------------------- tokens and PII
def test_tokens():
    assert _tokens("L'assistenza è lenta, perché? Dell'ordine nulla") == [
        "assistenza", "è", "lenta", "perché", "ordine", "nulla"]
    assert _tokens("I don't like the sign-up form &amp; @united http://t.co/x1") == [
        "i", "don't", "like", "the", "sign", "up", "form"]
    assert _tokens("scrivete a [EMAIL] o al [PHONE], ordine 12345") == ["scrivete", "a", "o", "al", "ordine"]


def test_no_pii_in_terms_or_examples():
    from cxlab.datasets import _FIRST, _LAST

    _, feedback, _ = simulate_journeys(3_000, seed=3, pii_share=1.0)
    assert feedback.text.str.contains("@").all()
    table = distinctive_terms(feedback, min_count=1, top=500, examples=5)
    names = {n for d in (_FIRST, _LAST) for ns in d.values() for n in ns}
    words = {w for t in table.term for w in t.split()}
    assert not words & (names | {"email", "phone", "example"})
    assert not table.term.str.contains(r"[@\d\[\]]").any()
    assert not table.example.str.contains("@").any()
    assert not table.example.str.contains(r"\d(?:[ .\-()]?\d){6,}").any()   # no long digit runs
    assert table.example.str.contains(r"\[(?:EMAIL|PHONE|IBAN|CARD)\]").any()    # masked, still shown
    # a hand-made corpus: each kind of PII, in both groups
    tiny = pd.DataFrame({"g": ["a", "a", "b", "b"], "text": [
        "rimborso su IT60 X054 2811 1010 0000 0123 456 per favore",
        "scrivete a mario.rossi@example.it o al +39 347 123 4567",
        "paid with 4111 1111 1111 1111 twice", "call me on (555) 372-1576 please"]})
    out = distinctive_terms(tiny, by="g", min_count=1, top=50)
    assert not {w for t in out.term for w in t.split()} & {"mario", "rossi", "example", "it", "x"}
    assert not out.example.str.contains(r"@|\d{3}").any()


# --------------------------------------------------------------------------- bad inputs
def test_bad_inputs(sim):
    _, feedback, _ = sim
    with pytest.raises(ValueError, match=r"by='touchpont'.*did you mean 'touchpoint'"):
        distinctive_terms(feedback, by="touchpont")
    with pytest.raises(ValueError, match=r"text='txt'.*did you mean 'text'"):
        distinctive_terms(feedback, text="txt")
    with pytest.raises(ValueError, match="empty"):
        distinctive_terms(feedback.iloc[:0])
    with pytest.raises(ValueError, match="at least two groups"):
        distinctive_terms(feedback[feedback.touchpoint == "delivery"])
    with pytest.raises(ValueError, match=r"registraton_form.*did you mean 'registration_form'"):
        distinctive_terms(feedback, groups=["registraton_form"])
    with pytest.raises(ValueError, match=r"prior='informativ'.*did you mean 'informative'"):
        distinctive_terms(feedback, prior="informativ")
    with pytest.raises(ValueError, match=r"sentiment='negativ'.*did you mean 'negative'"):
        distinctive_terms(feedback, sentiment="negativ")
    with pytest.raises(ValueError, match="ngram_range"):
        distinctive_terms(feedback, ngram_range=(2, 1))
    with pytest.raises(ValueError, match="stop_words='fr'"):
        distinctive_terms(feedback, stop_words="fr")
    for kw in ({"top": 0}, {"min_count": 0}, {"examples": -1}, {"prior_scale": 0}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            distinctive_terms(feedback, **kw)
    with pytest.raises(ValueError, match="needs the columns 'score' and 'scale'"):
        distinctive_terms(TINY, by="g", sentiment="negative")
    with pytest.raises(ValueError, match="must hold strings"):
        distinctive_terms(feedback, text="score")
    with pytest.raises(TypeError):
        distinctive_terms([("a", "text")])


def test_groups_without_text_get_a_note(sim):
    _, feedback, _ = sim
    fb = feedback.copy()
    fb.loc[fb.touchpoint == "checkout", "text"] = pd.NA
    fb.loc[fb.touchpoint == "delivery", "text"] = "   "
    with pytest.warns(UserWarning, match="'checkout' has no text"):
        out = distinctive_terms(fb, groups=["checkout", PAIN_POINT])
    assert out.touchpoint.unique().tolist() == [PAIN_POINT]
    with pytest.warns(UserWarning) as record:
        out = distinctive_terms(fb)
    messages = " ".join(str(w.message) for w in record)
    assert "'delivery' has no text" in messages and "'checkout' has no text" in messages
    assert not {"checkout", "delivery"} & set(out.touchpoint)
    assert any("checkout" in n for n in out.attrs["notes"])


@pytest.mark.filterwarnings("ignore:.*no term is over-used:UserWarning")
def test_sentiment_rules_per_scale():
    rows = [("nps", 6, "neg"), ("nps", 7, "mid"), ("nps", 9, "pos"), ("stars", 2, "neg"),
            ("csat", 3, "mid"), ("csat", 4, "pos"), ("ces", 2, "neg"), ("ces", 4, "mid"), ("ces", 6, "pos")]
    fb = pd.DataFrame({"scale": [r[0] for r in rows] * 2, "score": [float(r[1]) for r in rows] * 2,
                       "touchpoint": ["x"] * len(rows) + ["y"] * len(rows),
                       "text": [f"word {r[2]}" for r in rows] * 2})
    for sentiment, n in (("negative", 3), ("neutral", 3), ("positive", 3)):
        out = distinctive_terms(fb, sentiment=sentiment, min_count=1)
        assert out.attrs["n_texts"] == {"x": n, "y": n}
    fb.loc[0, "scale"] = "stelle"
    with pytest.raises(ValueError, match="stelle"):
        distinctive_terms(fb, sentiment="negative")


# --------------------------------------------------------------------------- plots
def test_plots(sim):
    import matplotlib.pyplot as plt

    _, feedback, _ = sim
    table = distinctive_terms(feedback, sentiment="negative")
    ax = plot_distinctive_terms(table, group=PAIN_POINT, top=8)
    assert len(ax.patches) == 8
    assert [t.get_text() for t in ax.get_yticklabels()] == _top(table, PAIN_POINT, 8)   # largest z on top
    assert ax.get_yticks()[0] == 7
    fig = plot_distinctive_terms(table)
    assert len([a for a in fig.axes if a.get_visible()]) == table.touchpoint.nunique()
    with pytest.raises(ValueError, match="ax= draws one group"):
        plot_distinctive_terms(table, ax=ax)
    with pytest.raises(ValueError, match="did you mean 'registration_form'"):
        plot_distinctive_terms(table, group="registraton_form")
    plt.close("all")


# --------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_airline_tweets_negative_reasons():
    from conftest import shared_file

    tweets = pd.read_csv(shared_file("airline_tweets", "Tweets.csv"))
    negative = tweets[tweets.airline_sentiment == "negative"]
    table = distinctive_terms(negative, by="negativereason", stop_words="en", top=10)
    assert set(table.negativereason) == set(negative.negativereason.dropna())

    def top(reason, n):
        return _top(table, reason, n, by="negativereason")

    assert {"bag", "luggage"} <= set(top("Lost Luggage", 5)) and "baggage" in top("Lost Luggage", 10)
    assert {"delayed", "delay"} <= set(top("Late Flight", 5))
    assert top("Cancelled Flight", 1) == ["cancelled"]
    assert {"hold", "customer service"} <= set(top("Customer Service Issue", 5))
    assert "rude" in top("Flight Attendant Complaints", 3)
    assert "damaged" in top("Damaged Luggage", 3)
    best = table.groupby("negativereason").head(1)
    assert (best.q_value < 1e-6).all()
    assert not table.term.str.contains(r"[@/]|http").any()     # handles and URLs are not terms
