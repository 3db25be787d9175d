"""Sentiment model: fit time on 100k texts and scoring throughput (texts/s).

Two corpora:
* ``real``: every real text in ../shared/data with a label or a rating (airline tweets,
  clothing reviews with title, SENTIPOLC Italian tweets), repeated with a numbered suffix
  until there are ``--texts`` of them (so every text is distinct);
* ``simulated``: ``simulate_journeys`` feedback (template texts, labels from scores).

Reference in the same run: the plain model of the issue (scikit-learn word 1-2-gram +
character-within-word 2-5-gram TF-IDF, one multinomial logistic regression).

    python benchmarks/sentiment.py [--texts 100000] [--score 20000]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"


def real_corpus(n: int) -> pd.DataFrame:
    from cxlab.sentiment import labels_from_scores

    tw = pd.read_csv(SHARED / "airline_tweets" / "Tweets.csv")
    wc = pd.read_csv(SHARED / "womens_clothing_reviews" / "Womens Clothing E-Commerce Reviews.csv.gz",
                     index_col=0).dropna(subset=["Review Text"])
    it = pd.read_csv(SHARED / "italian_tweet_sentiment" / "sentipolc16_umsab_italian.csv")
    base = pd.concat([
        pd.DataFrame({"text": tw.text, "label": tw.airline_sentiment}),
        pd.DataFrame({"text": wc["Title"].fillna("") + ". " + wc["Review Text"],
                      "label": labels_from_scores(wc.Rating.to_numpy(), "stars").to_numpy()}),
        pd.DataFrame({"text": it.text, "label": it.sentiment}),
    ], ignore_index=True)
    reps = int(np.ceil(n / len(base)))
    out = pd.concat([base.assign(text=base.text + (f" #{r}" if r else "")) for r in range(reps)],
                    ignore_index=True)
    return out.sample(n, random_state=0).reset_index(drop=True)


def simulated_corpus(n: int) -> pd.DataFrame:
    from cxlab.datasets import simulate_journeys
    from cxlab.sentiment import labels_from_scores

    k = n
    while True:
        _, fb, _ = simulate_journeys(k * 7, seed=1)
        fb = fb.dropna(subset=["text"])
        if len(fb) >= n:
            break
        k *= 2
    fb = fb.head(n)
    return pd.DataFrame({"text": fb.text.to_numpy(),
                         "label": labels_from_scores(fb.score.to_numpy(), fb.scale.to_numpy()).to_numpy()})


def plain_model():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    return make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
        LogisticRegression(max_iter=3000, class_weight="balanced"))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=100_000)
    ap.add_argument("--score", type=int, default=20_000, help="texts scored for the throughput figure")
    ap.add_argument("--corpus", choices=("real", "simulated", "both"), default="real")
    args = ap.parse_args(argv)
    from cxlab.sentiment import SentimentModel

    rows = []
    corpora = ("real", "simulated") if args.corpus == "both" else (args.corpus,)
    for corpus in corpora:
        if corpus == "real" and not SHARED.exists():
            print(f"skipping the real corpus: {SHARED} is absent", file=sys.stderr)
            continue
        data = real_corpus(args.texts) if corpus == "real" else simulated_corpus(args.texts)
        score_texts = data.text.sample(min(args.score, len(data)), random_state=1).tolist()
        chars = int(data.text.str.len().mean())
        for name, settings in (("cxlab SentimentModel()", SentimentModel(label="label")),
                               ("cxlab SentimentModel(char_ngrams=None)",
                                SentimentModel(label="label", char_ngrams=None))):
            fitted, fit_s = timed(lambda: settings.fit(data))
            _, score_s = timed(lambda: fitted.predict_proba(score_texts))
            rows.append({"corpus": corpus, "texts": len(data), "mean chars": chars, "model": name,
                         "features": fitted.n_features, "fit s": round(fit_s, 1),
                         "score texts/s": round(len(score_texts) / score_s)})
            print(rows[-1], flush=True)
        plain, fit_s = timed(lambda: plain_model().fit(data.text, data.label))
        _, score_s = timed(lambda: plain.predict_proba(score_texts))
        n_feat = sum(len(v.vocabulary_) for _, v in plain.steps[0][1].transformer_list)
        rows.append({"corpus": corpus, "texts": len(data), "mean chars": chars, "model": "plain TF-IDF + LR",
                     "features": n_feat, "fit s": round(fit_s, 1), "score texts/s": round(len(score_texts) / score_s)})
        print(rows[-1], flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"peak RSS of the run: {peak:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
