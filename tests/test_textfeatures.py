"""cxlab._textfeatures: the corpus-at-once features and the factored logistic fit, each
against an independent computation (scikit-learn, plain Python)."""
import json
import math
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp

from cxlab import _textfeatures as tf
from cxlab.datasets import simulate_journeys
from cxlab.privacy import _mask_one, mask_pii
from cxlab.sentiment import FittedSentiment, SentimentModel, _features, _negation_hashes, _prepare, normalise_text

EXTRA = ["Non mi è piaciuto, ma il resto sì!!!", "I don't like it. Great staff", "rock'n'roll l'albergo",
         "bellissimooo 😍 #PessimoServizio", "non", "bello", "ok ok ok", "mai più... davvero"]


@pytest.fixture(scope="module")
def texts():
    _, feedback, _ = simulate_journeys(3_000, seed=11)
    return feedback.text.dropna().tolist()[:600] + EXTRA


def test_hashes_are_the_hash_of_the_text():
    words = ["", "a", "NEG_mi", "è", "😍", "l'albergo " * 5]
    assert tf.hash_strings(words).tolist() == [tf.string_hash(w) for w in words]
    tok = tf.tokenize(["non mi è piaciuto , ma ok", "bello"], tf.hash_strings(["non"]))
    assert tok.strings() == ["non", "NEG_mi", "NEG_è", "NEG_piaciuto", ",", "ma", "ok", "bello"]
    assert tok.hash.tolist() == [tf.string_hash(s) for s in tok.strings()]


def test_tokens_and_negation_scope():
    assert normalise_text("rock'n'roll, l'albergo") == "rock'n'roll , l'albergo"
    assert normalise_text("it's 'quoted'") == "it's ' quoted '"
    # a negation's scope ends at the end of its text: it never reaches the next one
    tok = tf.tokenize(_prepare(["non", "bello"]), tf.hash_strings(["non"]))
    assert tok.strings() == ["non", "bello"]
    assert normalise_text("non bello", negation=False) == "non bello"


def test_word_block_equals_scikit_learn(texts):
    from sklearn.feature_extraction.text import TfidfVectorizer

    prepared = _prepare(texts)
    feats, X = _features(SentimentModel(min_df=2), prepared)
    ref = TfidfVectorizer(token_pattern=r"\S+", ngram_range=(1, 2), sublinear_tf=True, min_df=2, lowercase=False,
                          dtype=np.float64)
    R = ref.fit_transform([normalise_text(t) for t in texts])
    assert sorted(feats.word_vocab.tolist()) == sorted(ref.vocabulary_)
    order = [ref.vocabulary_[t] for t in feats.word_vocab]
    assert np.allclose(feats.word_idf, ref.idf_[order])
    assert abs(X.Xw - R[:, order]).max() < 1e-6
    # the fit hands its term hashes to the vocabulary; rebuilt from the strings they are the same
    rebuilt = tf.TextFeatures(feats.word_ngrams, feats.char_ngrams, feats.word_vocab, feats.word_idf,
                              feats.char_vocab, feats.char_idf, feats.char_scale)
    assert rebuilt._word_index.equals(feats._word_index) and rebuilt._char_index.equals(feats._char_index)
    again = feats.transform(prepared, _negation_hashes())
    assert abs(again.Xw - X.Xw).max() == 0 and abs(again.C @ again.Wc - X.C @ X.Wc).max() < 1e-6


def test_char_block_equals_a_plain_python_count(texts):
    prepared = _prepare(texts)
    feats, X = _features(SentimentModel(min_df=2, char_ngrams=(2, 4)), prepared)
    docs = [[t[4:] if t.startswith("NEG_") else t for t in normalise_text(x).split()] for x in texts]

    def grams(word):
        w = " " + word + " "
        return [w[i:i + n] for n in range(2, 5) for i in range(len(w) - n + 1)]

    counts = [Counter(g for w in d for g in grams(w)) for d in docs]
    df = Counter(g for c in counts for g in c)
    vocab = sorted(g for g, k in df.items() if k >= 2)
    assert sorted(feats.char_vocab.tolist()) == vocab
    n = len(texts)
    idf = {g: math.log((1 + n) / (1 + df[g])) + 1 for g in vocab}
    col = {g: j for j, g in enumerate(feats.char_vocab.tolist())}
    raw = np.zeros((n, len(col)))
    for i, c in enumerate(counts):
        for g, k in c.items():
            if g in col:
                raw[i, col[g]] = k * idf[g]
    ntok = np.array([max(len(d), 1) for d in docs])
    ratio = np.linalg.norm(raw, axis=1) / np.sqrt(ntok)
    g_expected = np.median(ratio[np.array([len(d) for d in docs]) > 0])
    assert feats.char_scale == pytest.approx(g_expected, rel=1e-5)
    expected = raw / (g_expected * np.sqrt(ntok))[:, None]
    got = (X.C @ X.Wc).toarray()
    assert np.abs(got - expected).max() < 1e-5
    # the factored products equal the materialised matrix
    w = np.random.default_rng(0).normal(size=sum(X.widths)).astype(np.float32)
    M = X.materialise()
    assert np.allclose(X.matvec(w), M @ w, atol=1e-4)
    r = np.random.default_rng(1).normal(size=n).astype(np.float32)
    assert np.allclose(X.rmatvec(r), M.T @ r, atol=1e-4)
    # scoring new texts with the fitted vocabulary gives the same rows
    again = feats.transform(prepared[:50], _negation_hashes())
    assert abs(again.materialise() - M[:50]).max() < 1e-6


def test_logistic_fit_equals_scikit_learn(texts):
    from sklearn.linear_model import LogisticRegression

    _, feedback, _ = simulate_journeys(3_000, seed=11)
    feedback = feedback.dropna(subset=["text"])
    y = (feedback.score.to_numpy() <= feedback.score.median())
    feats, X = _features(SentimentModel(), _prepare(feedback.text.tolist()))
    M = X.materialise().astype(np.float64)
    ref = LogisticRegression(C=0.7, class_weight="balanced", tol=1e-10, max_iter=10_000).fit(M, y)
    w, b, _ = tf.fit_logistic(X, y, C=0.7, tol=1e-7)
    z_ref = ref.decision_function(M)
    z = M @ w + b
    assert np.abs(z - z_ref).max() < 0.02
    assert (np.sign(z) == np.sign(z_ref)).mean() > 0.995
    with pytest.raises(ValueError, match="both outcomes"):
        tf.fit_logistic(X, np.zeros(len(y), dtype=bool))


def test_masking_many_texts_equals_one_at_a_time():
    rng = np.random.default_rng(3)
    pieces = ["scrivetemi a mario.rossi@example.it", "@user ciao", "IT60 X054 2811 1010 0000 0123 456",
              "GB82 WEST 1234 5698 7654 32", "carta 4111 1111 1111 1111", "4111-1111-1111-1112",
              "+39 347 123 4567", "(02) 1234 5678", "ordine 12345678", "taglia 42, 3 pezzi", "0039 06 1234567",
              "nessun numero", "mail: a@b", "٣٤٧١٢٣٤٥٦٧٨", "codice AB12",
              "RSSMRA85T10A562S", "rssmra85t10a562s", "P.IVA 00743110157", "IT00743110157",
              "it60x0542811101000000123456", "IT60-X054-2811-1010-0000-0123-456", "4111.1111.1111.1111",
              "02/1234567", "andrè.rossi@università.it", "il 02/12/2026", "12.03.2026 10.30", "€ 1.234,56",
              "ORD-30012345", "be71 0961 2345 6769 ciao", "RSSMRA8RTLMAQSNZ"]
    texts = [" ".join(rng.choice(pieces, size=rng.integers(1, 4))) for _ in range(400)] + ["", "a\x1fb 347 123 4567"]
    assert mask_pii(texts) == [_mask_one(t) for t in texts]
    assert sum(m != t for m, t in zip(mask_pii(texts), texts)) > 100


def test_models_saved_by_an_earlier_cxlab_are_refused(tmp_path):
    old = tmp_path / "old.npz"
    np.savez(old, meta=np.array(json.dumps({"format": "cxlab-sentiment", "version": 1})))
    with pytest.raises(ValueError, match="earlier cxlab.*fit the model again"):
        FittedSentiment.load(old)


def test_design_without_character_features(texts):
    feats, X = _features(SentimentModel(char_ngrams=None), _prepare(texts))
    assert X.C is None and X.widths[1] == 0 and len(feats.char_vocab) == 0
    assert sp.issparse(X.materialise())
