"""cxlab.sentiment: labels from scores, the lexicon baseline, the fitted model."""
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from cxlab.datasets import simulate_journeys
from cxlab.exceptions import ModelFileError
from cxlab.sentiment import (FittedSentiment, LanguageNotSupportedError, LexiconSentiment, SentimentModel,
                             evaluate_predictions, labels_from_scores, normalise_text, plot_confusion_matrix)


@pytest.fixture(scope="module")
def simulated():
    _, feedback, truth = simulate_journeys(12_000, seed=5)
    return feedback, truth


@pytest.fixture(scope="module")
def fitted(simulated):
    feedback, _ = simulated
    return SentimentModel().fit(feedback)


# --------------------------------------------------------------------------- labels
def test_labels_from_scores_follow_each_scale():
    got = labels_from_scores([0, 6, 7, 8, 9, 10], "nps")
    assert list(got) == ["negative", "negative", "neutral", "neutral", "positive", "positive"]
    got = labels_from_scores([1, 2, 3, 4, 5, 1, 3, 5, 1, 4, 7, np.nan],
                             ["stars"] * 5 + ["csat"] * 3 + ["ces"] * 3 + ["nps"])
    assert list(got[:11]) == ["negative", "negative", "neutral", "positive", "positive",
                              "negative", "neutral", "positive", "negative", "neutral", "positive"]
    assert got[11] is None


def test_labels_mapping_replaces_the_rule():
    got = labels_from_scores([3, 7, 10], "nps", mapping={"nps": {"detractor": (0, 6), "other": (7, 10)}})
    assert list(got) == ["detractor", "other", "other"]
    with pytest.raises(ValueError, match=r"row 1: score 7 \(nps\) falls in no range"):
        labels_from_scores([3, 7], "nps", mapping={"nps": {"detractor": (0, 6)}})


def test_labels_reject_bad_scores_and_scales():
    with pytest.raises(ValueError, match=r"row 2: score 11 is outside the nps scale \(0-10\)"):
        labels_from_scores([1, 5, 11], "nps")
    with pytest.raises(ValueError, match="did you mean 'stars'"):
        labels_from_scores([1], "star")


# --------------------------------------------------------------------------- text
@pytest.mark.parametrize("text, expected", [
    ("Non mi è piaciuto, ma il resto sì", "non NEG_mi NEG_è NEG_piaciuto , ma il resto sì"),
    ("I don't like it. Great staff", "i do not NEG_like NEG_it . great staff"),
    ("bellissimooo!!!", "bellissimoo elong ! repeated_excl"),
    ("#PessimoServizio @user http://x.it", "hashtag pessimo servizio user url"),
    ("top 😍", "top emoji_smiling_face_with_heart_shaped_eyes"),
    ("AT&amp;T", "at & t"),
])
def test_normalise_text(text, expected):
    assert normalise_text(text) == expected


# --------------------------------------------------------------------------- model on simulated voice
def test_model_learns_simulated_voice_from_scores(simulated, fitted):
    feedback, _ = simulated
    assert fitted.classes == ("negative", "neutral", "positive")
    assert fitted.to_dict()["n_train"] == feedback.text.notna().sum()
    ev = fitted.evaluate(cv=3)
    # the simulator's words say what the score says for ~85% of texts, with mixed texts and
    # short answers: learnable, but not exactly (templated text scored 1.00)
    assert 0.72 < ev.macro_f1 < 0.92 and len(ev.folds) == 3
    assert ev.confusion.to_numpy().sum() == ev.n == len(fitted.train_texts)
    assert set(ev.to_dict()) >= {"macro_f1", "accuracy", "per_class_f1", "fold_macro_f1"}


def test_predict_labels_scores_and_masks(fitted):
    texts = ["Esperienza da dimenticare: la registrazione obbligatoria è lunghissima, non lo consiglio a nessuno.",
             "Great experience! support solved everything in minutes, thank you so much!",
             "Scrivetemi a mario.rossi@example.it oppure al +39 347 123 4567"]
    out = fitted.predict(texts)
    assert list(out.columns) == ["text", "label", "p_negative", "p_neutral", "p_positive", "score"]
    assert list(out.label[:2]) == ["negative", "positive"]
    assert np.allclose(out[["p_negative", "p_neutral", "p_positive"]].sum(axis=1), 1)
    assert out.score.between(-1, 1).all() and out.score[0] < -0.5 < 0.5 < out.score[1]
    assert np.allclose(out.score, out.p_positive - out.p_negative)
    assert "@" not in out.text[2] and "4567" not in out.text[2] and "[EMAIL]" in out.text[2]


def test_many_texts_score_in_chunks_as_one_by_one(simulated, fitted, monkeypatch):
    import cxlab.sentiment as sentiment
    feedback, _ = simulated
    texts = feedback.text.dropna().head(900).tolist()
    texts[5] = None                                  # a missing text scores like the empty one
    one_by_one = np.vstack([fitted.predict_proba([t]) for t in texts])
    monkeypatch.setattr(sentiment, "_CHUNK_MIN", 100)
    monkeypatch.setattr(sentiment.os, "cpu_count", lambda: 4)
    chunked = fitted.predict_proba(texts)
    assert chunked.shape == (900, 3)
    assert np.abs(chunked - one_by_one).max() < 1e-5
    assert np.array_equal(chunked[5], fitted.predict_proba([""])[0])

def test_no_personal_data_becomes_a_feature(simulated, fitted):
    feedback, _ = simulated
    assert feedback.text.str.contains("@example", regex=False).sum() > 20
    vocab = np.concatenate(list(fitted.state["vocab"].values()))
    assert not any("example" in t or "@" in t for t in vocab)
    surnames = ("rossi", "bianchi", "ferrari", "esposito", "smith", "jones")
    words = {w for term in fitted.state["vocab"]["word"] for w in term.split()}
    assert words.isdisjoint(surnames) and "email" in words        # the [EMAIL] placeholder


def test_explain_names_the_words_behind_a_complaint(fitted):
    ex = fitted.explain("Very unhappy: the mandatory registration takes forever, please fix this.")
    assert ex.attrs["label"] == "negative"
    words = ex.word.str.strip(",.:").str.lower()
    # the planted pain point's words lead (registration is mostly complained about), then
    # the complaint's own ("fix this")
    assert {"registration", "mandatory", "fix"} <= set(words.head(4))
    unhappy = ex[words == "unhappy"].iloc[0]
    assert unhappy.effect > 0 > unhappy.score_effect
    assert unhappy.effect > ex[words == "the"].effect.iloc[0]
    assert (ex.effect.abs().diff().dropna() <= 1e-12).all()       # sorted by size
    with pytest.raises(ValueError, match="empty"):
        fitted.explain("   ")


def test_save_load_round_trip_without_pickle(fitted, tmp_path):
    path = fitted.save(tmp_path / "model.npz")
    loaded = FittedSentiment.load(path)
    texts = ["il reso è una procedura complicatissima", "checkout is really simple", ""]
    assert np.array_equal(loaded.predict_proba(texts), fitted.predict_proba(texts))
    assert loaded.classes == fitted.classes and loaded.settings == fitted.settings
    with np.load(path, allow_pickle=False) as z:              # plain arrays only
        assert all(z[k].dtype != object for k in z.files)
        assert json.loads(str(z["meta"]))["format"] == "cxlab-sentiment"
    with pytest.raises(ValueError, match="training data"):
        loaded.evaluate(cv=5)


def test_load_refuses_what_is_not_a_model(tmp_path):
    pickled = tmp_path / "evil.npz"
    np.savez(pickled, meta=np.array([{"format": "cxlab-sentiment"}], dtype=object))
    with pytest.raises(ValueError, match="not a cxlab sentiment model"):
        FittedSentiment.load(pickled)
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.array(json.dumps({"format": "something"})))
    with pytest.raises(ValueError, match="not a cxlab sentiment model"):
        FittedSentiment.load(other)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a cxlab sentiment model"):
        FittedSentiment.load(junk)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    """A saved model's bytes and arrays, to damage one way per test."""
    path = fitted.save(tmp_path_factory.mktemp("model") / "model.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return path.read_bytes(), arrays


def _meta(arrays, **changes):
    meta = json.loads(str(arrays["meta"]))
    for k, v in changes.items():
        if k.startswith("settings."):
            meta["settings"][k[len("settings."):]] = v
        elif v is None:
            del meta[k]
        else:
            meta[k] = v
    return np.array(json.dumps(meta))


def _damaged(arrays, kind):
    a = dict(arrays)
    n_classes, n_features = a["W1"].shape
    edits = {
        "missing W1": lambda: a.pop("W1"),
        "missing vocab_word": lambda: a.pop("vocab_word"),
        "missing b2": lambda: a.pop("b2"),
        "W1 too few columns": lambda: a.update(W1=a["W1"][:, :10]),
        "W1 as strings": lambda: a.update(W1=a["W1"].astype(str)),
        "W1 flattened": lambda: a.update(W1=a["W1"].ravel()),
        "W2 one class short": lambda: a.update(W2=a["W2"][:-1]),
        "b1 one class short": lambda: a.update(b1=a["b1"][:-1]),
        "idf shorter than vocab": lambda: a.update(idf_word=a["idf_word"][:5]),
        "classes as numbers": lambda: a.update(classes=np.arange(n_classes)),
        "classes 2-D": lambda: a.update(classes=a["classes"][None, :]),
        "vocab term twice": lambda: a.update(vocab_word=np.r_[a["vocab_word"][:1], a["vocab_word"][:-1]]),
        "NaN weights": lambda: a.update(W1=np.full_like(a["W1"], np.nan)),
        "char_scale a vector": lambda: a.update(char_scale=np.array([1.0, 2.0])),
        "meta without settings": lambda: a.update(meta=_meta(a, settings=None)),
        "meta with an unknown setting": lambda: a.update(meta=_meta(a, **{"settings.bogus": 1})),
        "meta with a bad C": lambda: a.update(meta=_meta(a, **{"settings.C": "x"})),
        "meta version a string": lambda: a.update(meta=_meta(a, version="2")),
        "meta a list": lambda: a.update(meta=np.array(json.dumps([1, 2]))),
        "future version": lambda: a.update(meta=_meta(a, version=99)),
    }
    edits[kind]()
    return a


_DAMAGE = {"missing W1": "'W1' is missing", "missing vocab_word": "'vocab_word' is missing",
           "missing b2": "'W2'/'b2' must be present", "W1 too few columns": "shape (3, 10)",
           "W1 as strings": "expected floats", "W1 flattened": "expected floats of shape (3, ",
           "W2 one class short": "'W2' is float32 of shape (2, ", "b1 one class short": "'b1'",
           "idf shorter than vocab": "'idf_word' is float64 of shape (5,)",
           "classes as numbers": "expected strings", "classes 2-D": "'classes'",
           "vocab term twice": "lists a term twice", "NaN weights": "NaN",
           "char_scale a vector": "'char_scale'", "meta without settings": "no 'settings'",
           "meta with an unknown setting": "unknown ['bogus']", "meta with a bad C": "settings are invalid",
           "meta version a string": "version is '2'", "meta a list": "no 'cxlab-sentiment' header",
           "future version": "newer cxlab (format version 99"}


@pytest.mark.parametrize("kind", list(_DAMAGE))
def test_load_refuses_a_damaged_model_at_load_time(saved, tmp_path, kind):
    path = tmp_path / "damaged.npz"
    np.savez(path, **_damaged(saved[1], kind))
    with pytest.raises(ModelFileError) as err:
        FittedSentiment.load(path)
    assert err.value.path == str(path) and _DAMAGE[kind] in str(err.value)


@pytest.mark.parametrize("kind", ["empty", "first half", "last byte cut", "a byte flipped", "a foreign zip",
                                  "a .npy array"])
def test_load_refuses_a_file_that_is_not_a_whole_model(saved, tmp_path, kind):
    good = saved[0]
    path = tmp_path / "model.npz"
    if kind == "a foreign zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("readme.txt", "hello")
    elif kind == "a .npy array":
        with open(path, "wb") as fh:
            np.save(fh, np.arange(3))
    else:
        i = len(good) // 2
        path.write_bytes({"empty": b"", "first half": good[:i], "last byte cut": good[:-1],
                          "a byte flipped": good[:i] + bytes([good[i] ^ 0xFF]) + good[i + 1:]}[kind])
    with pytest.raises(ModelFileError, match="not a cxlab sentiment model") as err:
        FittedSentiment.load(path)
    assert err.value.path == str(path)


def test_bad_input_is_refused_clearly(simulated):
    feedback, _ = simulated
    with pytest.raises(ValueError, match="did you mean 'text'"):
        SentimentModel(text="txt").fit(feedback)
    with pytest.raises(ValueError, match="no 'score' column"):
        SentimentModel().fit(feedback.drop(columns=["score"]))
    with pytest.raises(ValueError, match="at least two classes"):
        SentimentModel(label="channel").fit(feedback.assign(channel="web"))
    with pytest.raises(ValueError, match="outside the nps scale"):
        SentimentModel().fit(feedback.assign(score=feedback.score.where(feedback.scale != "nps", 12)))
    with pytest.raises(ValueError, match="char_ngrams"):
        SentimentModel(char_ngrams=(5, 2))
    small = pd.DataFrame({"text": ["good", "bad", "good one", "awful"], "label": ["pos", "neg", "pos", "neg"]})
    fitted = SentimentModel(label="label", min_df=1).fit(small)
    with pytest.raises(ValueError, match="fewer than cv=5"):
        fitted.evaluate(cv=5)


def test_rows_without_text_or_score_are_left_out_and_counted(simulated):
    feedback, _ = simulated
    fb = feedback.head(3000).copy()
    fb.loc[fb.index[:10], "text"] = None
    fb.loc[fb.index[10:15], "score"] = np.nan
    fitted = SentimentModel().fit(fb)
    assert fitted.n_dropped == fb.text.isna().sum() + 5 - (fb.text.isna() & fb.score.isna()).sum()
    assert len(fitted.train_texts) == len(fb) - fitted.n_dropped
    assert feedback.head(3000).text.notna().all()               # the input is untouched


def test_model_fits_from_a_workspace(ws, simulated, tmp_path):
    feedback, _ = simulated
    path = tmp_path / "voice.parquet"
    feedback.head(2000).to_parquet(path)
    ws.pull(path, kind="feedback")
    from_ws = SentimentModel().fit(ws)
    from_frame = SentimentModel().fit(feedback.head(2000))
    assert len(from_ws.train_texts) == len(from_frame.train_texts)
    texts = feedback.text.tail(50).tolist()
    assert np.allclose(from_ws.predict_proba(texts), from_frame.predict_proba(texts), atol=1e-6)


# --------------------------------------------------------------------------- cross-validation, repeated texts
def _signal_free(n_per_class=(80, 80, 80), repeated=0, copies=2, seed=0) -> pd.DataFrame:
    """Texts of random pseudo-words with random labels (nothing to learn), the first
    ``repeated`` of them written ``copies`` more times (shouted, "WORDS", or with stray
    spaces: the same text once normalised)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, 6)) for _ in range(4000)]
    labels = np.repeat(["negative", "neutral", "positive"], n_per_class)
    rng.shuffle(labels)
    texts = [" ".join(rng.choice(vocab, 5)) for _ in labels]
    rows = list(zip(texts, labels))
    for k, (t, c) in enumerate(rows[:repeated]):
        rows += [(t.upper() if j % 2 == 0 else f"  {t} ", c) for j in range(copies)]
    return pd.DataFrame(rows, columns=["text", "label"])


def test_cross_validation_keeps_repeated_texts_in_one_fold(monkeypatch):
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    import cxlab.sentiment as sentiment

    df = _signal_free(repeated=110)                   # 240 distinct texts, 220 repeats
    fitted = SentimentModel(label="label").fit(df)
    seen = []
    folds = sentiment._grouped_folds
    monkeypatch.setattr(sentiment, "_grouped_folds", lambda *a: (seen.append(s) or s for s in folds(*a)))
    ev = fitted.evaluate(cv=5)
    assert ev.n_duplicates == 220 and ev.note is None and ev.to_dict()["n_duplicates"] == 220
    # no text, once normalised, is in a training part and in its test part
    norm = np.array([normalise_text(t) for t in df.text])
    assert len(seen) == 5
    assert sorted(np.concatenate([te for _, te in seen]).tolist()) == list(range(len(df)))
    for tr, te in seen:
        assert not set(norm[tr]) & set(norm[te])
    # plain stratified folds score the repeats from their twins: inflated
    pred = np.empty(len(df), dtype=object)
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(df.text, df.label):
        pred[te] = SentimentModel(label="label").fit(df.iloc[tr]).predict(df.text.iloc[te].tolist())["label"]
    plain = f1_score(df.label, pred.astype(str), average="macro")
    assert plain > 0.6 and ev.macro_f1 < 0.45 and plain - ev.macro_f1 > 0.25


def test_quality_says_when_it_cannot_be_believed():
    def note(df):
        return SentimentModel(label="label").fit(df).evaluate(cv=5).note

    assert "too uniform to judge: 200 of the 300 texts repeat another one" in note(
        _signal_free((34, 33, 33), repeated=100))
    assert "too few texts to judge: the neutral class has 12 distinct texts (at least 20" in note(
        _signal_free((60, 12, 60)))
    assert "too uniform to judge: 95% of the 944 texts are positive" in note(_signal_free((22, 22, 900)))
    assert note(_signal_free((25, 25, 25))) is None
    with pytest.raises(ValueError, match="'neutral' has 3 distinct texts, fewer than cv=5"):
        note(_signal_free((30, 3, 30), repeated=0).pipe(lambda d: pd.concat([d, d[d.label == "neutral"]])))


def test_normalised_texts_equal_normalise_text():
    from cxlab.sentiment import _normalised, _prepare

    texts = ["Non mi è piaciuto, ma il resto sì", "OK!", "ok !", "", "   ", "bellissimooo!!! #Top @x",
             "I don't like it. Great staff", "top 😍"]
    assert _normalised(_prepare(texts)) == [normalise_text(t) for t in texts]
    assert _normalised(_prepare(texts), negation=False) == [normalise_text(t, negation=False) for t in texts]
    assert normalise_text("OK!") == normalise_text("ok !")


# --------------------------------------------------------------------------- evaluation, lexicon
def test_evaluation_numbers_equal_a_hand_computation():
    y = ["negative", "negative", "neutral", "positive", "positive", "positive"]
    p = ["negative", "neutral", "neutral", "positive", "negative", "positive"]
    ev = evaluate_predictions(y, p)
    # negative: precision 1/2 recall 1/2 -> f1 .5; neutral: p 1/2 r 1 -> 2/3; positive: p 1 r 2/3 -> .8
    assert ev.report.f1.tolist() == pytest.approx([0.5, 2 / 3, 0.8])
    assert ev.macro_f1 == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    assert ev.accuracy == pytest.approx(4 / 6)
    assert ev.confusion.loc["positive", "negative"] == 1 and ev.confusion.to_numpy().trace() == 4
    ax = plot_confusion_matrix(ev)
    assert ax.get_xlabel() == "predicted"


def test_lexicon_is_english_only():
    lex = LexiconSentiment()
    out = lex.predict(["I love this airline, great crew", "Worst service ever, never again", "The flight is at 5pm"])
    assert list(out.label) == ["positive", "negative", "neutral"]
    assert out.score.between(-1, 1).all()
    with pytest.raises(LanguageNotSupportedError, match=r"SentimentModel\(\)\.fit\(feedback\)"):
        LexiconSentiment(language="it")
    with pytest.raises(LanguageNotSupportedError, match="not English"):
        lex.predict(pd.DataFrame({"text": ["ottimo", "great"], "language": ["it", "en"]}))


# --------------------------------------------------------------------------- real data
@pytest.mark.realdata
@pytest.mark.slow
def test_airline_tweets_model_beats_the_lexicon():
    from conftest import shared_file

    tweets = pd.read_csv(shared_file("airline_tweets", "Tweets.csv"))
    fitted = SentimentModel(label="airline_sentiment").fit(tweets)
    model = fitted.evaluate(cv=5)
    lexicon = LexiconSentiment().evaluate(tweets.text, tweets.airline_sentiment)
    print(model, lexicon)
    assert model.macro_f1 > 0.78            # measured 0.784, 361 repeated tweets kept in one fold
    #                                         (0.781 with plain folds; plain TF-IDF + LR: 0.768)
    assert lexicon.macro_f1 < 0.50          # measured 0.457
    assert model.report.loc["negative", "recall"] > 0.85


@pytest.mark.realdata
def test_italian_tweets_on_the_sentipolc_test_split():
    from conftest import shared_file

    data = pd.read_csv(shared_file("italian_tweet_sentiment", "sentipolc16_umsab_italian.csv"))
    fitted = SentimentModel(label="sentiment").fit(data[data.split != "test"])
    test = fitted.evaluate(on=data[data.split == "test"])
    print(test)
    # measured 0.559 (0.574 with scikit-learn's character n-grams across words, about 15x
    # slower to score); a plain word + char_wb TF-IDF logistic regression gives 0.544.
    # 5-fold on train+val the same model scores 0.602: the test tweets are on other topics
    # (15 known word features a tweet against 22), and the model calls 55% of them neutral.
    assert test.macro_f1 > 0.55 and test.n == 870
    with pytest.raises(LanguageNotSupportedError):
        LexiconSentiment(language="it")


@pytest.mark.realdata
@pytest.mark.slow
def test_clothing_reviews_model_on_stars_predicts_recommendation():
    from sklearn.metrics import roc_auc_score

    from conftest import shared_file

    reviews = pd.read_csv(shared_file("womens_clothing_reviews", "Womens Clothing E-Commerce Reviews.csv.gz"),
                          index_col=0).dropna(subset=["Review Text"])
    reviews = reviews.assign(text=reviews["Title"].fillna("") + ". " + reviews["Review Text"],
                             score=reviews["Rating"].astype(float), scale="stars")
    test = np.random.default_rng(0).random(len(reviews)) < 0.3
    train = reviews[~test].sample(8000, random_state=0)      # keeps CI quick; all 16k give AUC 0.967
    fitted = SentimentModel().fit(train)
    scores = fitted.predict(reviews.text[test]).score.to_numpy()
    auc = roc_auc_score(reviews["Recommended IND"][test], scores)
    print(f"recommended-flag AUC {auc:.3f}")
    assert auc > 0.94
