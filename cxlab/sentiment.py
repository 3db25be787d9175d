"""Sentiment of customer voice: a lexicon baseline, and models fitted on the team's own
rated feedback, in any language.

>>> from cxlab.sentiment import SentimentModel
>>> fitted = SentimentModel().fit(feedback)                 # doctest: +SKIP
>>> fitted.evaluate(cv=5).macro_f1                          # doctest: +SKIP
>>> fitted.predict(["la consegna è arrivata in ritardo"])   # doctest: +SKIP

Definitions
-----------
labels from scores
    When the feedback has no label column, each row's class comes from its ``score`` and
    ``scale`` (:data:`cxlab.io.SCORE_CLASSES`): NPS 0-6 negative, 7-8 neutral, 9-10 positive;
    stars and CSAT 1-2 / 3 / 4-5; CES (the 1-7 agreement scale, 7 = easiest) 1-3 / 4 / 5-7.
    ``mapping=`` replaces the rule (see :func:`labels_from_scores`).
text preparation
    Every text is masked first (:func:`cxlab.privacy.mask_pii`: no e-mail, phone, card or
    IBAN number becomes a feature or is displayed), then normalised: HTML entities decoded,
    URLs -> ``URL``, ``@handles`` -> ``USER``, ``#CamelCase`` hashtags split into words after a
    ``HASHTAG`` marker, emoji -> ``EMOJI_<name>`` tokens, letters repeated three or more times
    shortened to two plus an ``ELONG`` marker (``bellissimooo`` -> ``bellissimoo ELONG``),
    repeated ``!``/``?``/``.`` marked, lower case, and every word after a negation (``not``,
    ``never``, ``n't``, ``non``, ``mai``, ``nessun``, ``não``, ``nunca``, ``sin``...) up to the
    next punctuation mark prefixed ``NEG_`` (``non mi è piaciuto`` -> ``non NEG_mi NEG_è
    NEG_piaciuto``).
    The texts are prepared all at once: each substitution runs only on the texts that
    contain what it looks for, joined into one string.
tokens
    Runs of letters and digits joined by inner apostrophes (``l'albergo``), and every other
    non-space character on its own.
features
    Word unigrams and bigrams, TF-IDF weighted with sublinear term frequency and
    L2-normalised (scikit-learn's ``TfidfVectorizer`` definitions, tested equal); and the
    character 1-5-grams of each token padded with spaces (``" ok "``), summed over the
    text's tokens, IDF-weighted and divided by ``g * sqrt(tokens)``. Terms in fewer than
    ``min_df`` texts are dropped. Both are computed with numpy on the whole corpus
    (:mod:`cxlab._textfeatures`); the character block is kept as token counts times each
    token's n-grams, so neither fitting nor scoring builds the texts x n-grams matrix.
classifier
    One-vs-rest logistic regressions (one binary fit per class, balanced class weights,
    L2 penalty ``C``, L-BFGS until no gradient component exceeds 2e-4; the class
    probabilities are the sigmoids renormalised to sum to 1), averaged
    (``nb_weighting=True``) with the same on naive-Bayes-weighted features: each feature
    scaled by its log-count ratio between the class and the rest
    (Wang & Manning 2012, "Baselines and bigrams", ACL; penalty ``3 C``; document counts
    for words, occurrence counts for character n-grams). ``nb_weighting=False`` keeps the
    first alone. The binary fits run in parallel threads.
score
    ``P(positive) - P(negative)``, in [-1, 1] (0 when the classes are something else).

Choices, and what they bought (measured; see tests/test_sentiment.py and
benchmarks/README.md). The settings were chosen by 5-fold cross-validation on the
SENTIPOLC 2016 train+val tweets only, then scored once on its test split. Against a plain
word + character-within-word TF-IDF logistic regression, normalisation and negation
marking and the NB-weighted average each added a point or two of macro-F1: on the Italian
test split 0.544 -> 0.560, and 5-fold cross-validated on the English airline tweets
0.768 -> 0.781. Character n-grams across word boundaries (scikit-learn's ``char``
analyser) scored 0.574 and 0.785 but fitted 5x and scored 15x slower on 100k texts.
"""
from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import unicodedata
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._drivers import KeyDriversResult, key_drivers, plot_key_drivers, relative_weights
from ._terms import distinctive_terms, plot_distinctive_terms
from .exceptions import CxlabError, ModelFileError, did_you_mean
from .io import SCALES, SCORE_CLASSES
from . import _textfeatures as _tf
from .privacy import mask_pii

__all__ = [
    "LexiconSentiment", "SentimentModel", "FittedSentiment", "SentimentEvaluation",
    "labels_from_scores", "normalise_text", "evaluate_predictions", "plot_confusion_matrix",
    "key_drivers", "KeyDriversResult", "relative_weights", "plot_key_drivers",
    "distinctive_terms", "plot_distinctive_terms", "LABELS", "LanguageNotSupportedError", "MIN_CLASS_TEXTS",
]

_CHUNK_MIN = 2000      # texts per scoring thread, at least
# L-BFGS stops when no gradient component exceeds this (scikit-learn's default is 1e-4).
# Measured 2026-11-23: 1e-4 -> 2e-4 fits 100k texts in 24.7 s instead of 28.6 s; SENTIPOLC
# test macro-F1 0.5598 -> 0.5592, its 5-fold CV 0.6025 -> 0.6024, airline 5-fold 0.7809 -> 0.7819.
_TOL = 2e-4

#: the three classes, in order
LABELS = ("negative", "neutral", "positive")
_FORMAT = "cxlab-sentiment"
_FORMAT_VERSION = 2     # 2: features of cxlab._textfeatures (1: scikit-learn vectorisers)


class LanguageNotSupportedError(CxlabError, ValueError):
    """The lexicon baseline only knows English."""


# --------------------------------------------------------------------------- labels
def labels_from_scores(scores, scales, *, mapping=None) -> pd.Series:
    """Sentiment classes from scores: ``negative`` / ``neutral`` / ``positive`` per row.

    Parameters
    ----------
    scores : list-like of numbers
    scales : str or list-like of str
        The scale of each score (``nps``, ``csat``, ``ces``, ``stars``) or one scale for all.
    mapping : dict, optional
        ``{scale: {label: (low, high), ...}, ...}`` with inclusive ranges, replacing the
        default rule (:data:`cxlab.io.SCORE_CLASSES`) for the scales it names. Any label
        names may be used (e.g. two classes: ``{"nps": {"detractor": (0, 6),
        "other": (7, 10)}}``).

    Returns a Series of labels (missing where the score is missing). A score outside its
    scale, or outside every range of the mapping, raises ``ValueError`` naming the row.
    """
    scores = pd.Series(np.asarray(scores, dtype="float64"))
    if isinstance(scales, str):
        scales = pd.Series([scales] * len(scores))
    scales = pd.Series(np.asarray(scales, dtype=object)).str.lower()
    if len(scales) != len(scores):
        raise ValueError(f"scales has {len(scales)} values for {len(scores)} scores")
    rules = {k: dict(zip(LABELS, v)) for k, v in SCORE_CLASSES.items()}
    for scale, ranges in (mapping or {}).items():
        if not isinstance(ranges, dict) or not ranges:
            raise ValueError(f"mapping[{scale!r}] must be a dict {{label: (low, high)}}, not {ranges!r}")
        rules[str(scale).lower()] = {str(k): tuple(v) for k, v in ranges.items()}
    out = pd.Series([None] * len(scores), dtype=object)
    for scale in scales.dropna().unique():
        if scale not in rules:
            raise ValueError(f"scale {scale!r} has no sentiment rule; known scales {tuple(rules)}"
                             + did_you_mean(scale, rules) + "; pass mapping= to add one")
        rows = (scales == scale).to_numpy() & scores.notna().to_numpy()
        s = scores[rows]
        lo, hi = SCALES.get(scale, (-np.inf, np.inf))
        bad = (s < lo) | (s > hi)
        if bad.any():
            i = int(bad.idxmax())
            raise ValueError(f"row {i}: score {s[i]:g} is outside the {scale} scale ({lo:g}-{hi:g})")
        assigned = pd.Series(False, index=s.index)
        for label, (a, b) in rules[scale].items():
            hit = (s >= a) & (s <= b) & ~assigned
            out[hit[hit].index] = label
            assigned |= hit
        if not assigned.all():
            i = int((~assigned).idxmax())
            raise ValueError(f"row {i}: score {s[i]:g} ({scale}) falls in no range of {rules[scale]}")
    return out


# --------------------------------------------------------------------------- text
_NEGATIONS = frozenset({
    # English
    "not", "no", "never", "nor", "cannot", "nothing", "nobody", "none", "nowhere", "neither", "without",
    # Italian
    "non", "né", "mai", "nessun", "nessuno", "nessuna", "niente", "nulla", "senza", "neanche", "nemmeno",
    "neppure",
    # Portuguese / Spanish
    "não", "nao", "nunca", "nem", "nada", "ninguém", "sem", "ni", "nadie", "ningún", "ninguna", "sin",
    # French / German
    "ne", "pas", "jamais", "rien", "sans", "nicht", "kein", "keine", "nie", "ohne",
})
_URL = re.compile(r"https?://\S+|www\.\S+")
_USER = re.compile(r"@\w+")
_HASHTAG = re.compile(r"#(\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_ELONG = re.compile(r"([^\W\d_])\1{2,}")
_PUNCT_RUN = re.compile(r"([!?.])\1+")
_NT = re.compile(r"(\w)n't\b")
_RUN_NAMES = {"!": "EXCL", "?": "QUEST", ".": "DOTS"}


_HIGH = re.compile("[\u2001-\U0010FFFF]")
_NEGATION_HASHES = None


def _emoji(m) -> str:
    ch = m.group()
    if unicodedata.category(ch) in ("So", "Sk"):
        return " EMOJI_" + re.sub(r"\W+", "_", unicodedata.name(ch, "symbol").lower()) + " "
    return ch


def _negation_hashes():
    global _NEGATION_HASHES
    if _NEGATION_HASHES is None:
        _NEGATION_HASHES = _tf.hash_strings(sorted(_NEGATIONS))
    return _NEGATION_HASHES


def _hits(starts: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """The texts that hold at least one flagged position."""
    return _tf.texts_at(starts, np.flatnonzero(hit))


def _at(cp: np.ndarray, s: str) -> np.ndarray:
    """Positions where the literal ``s`` starts."""
    hit = np.ones(max(len(cp) - len(s) + 1, 0), dtype=bool)
    for k, ch in enumerate(s):
        hit &= cp[k:len(cp) - len(s) + 1 + k] == ord(ch)
    return np.concatenate([hit, np.zeros(len(cp) - len(hit), dtype=bool)])


def _runs(cp: np.ndarray, k: int, among=None) -> np.ndarray:
    """Positions where the same code point starts a run of ``k`` (optionally only those in ``among``)."""
    hit = np.ones(max(len(cp) - k + 1, 0), dtype=bool)
    for j in range(1, k):
        hit &= cp[j:len(cp) - k + 1 + j] == cp[:len(cp) - k + 1]
    if among is not None:
        hit &= np.isin(cp[:len(hit)], [ord(c) for c in among])
    return np.concatenate([hit, np.zeros(len(cp) - len(hit), dtype=bool)])


def _prepare(texts) -> list[str]:
    """Mask personal data and apply the text preparation up to tokenising (the module
    docstring), on a whole list at once: each substitution runs only on the texts that
    contain what it looks for, joined into one string."""
    texts = [t.replace(_tf.SEP, " ") if _tf.SEP in t else t
             for t in pd.Series(texts, dtype=object).fillna("").astype(str)]
    if not texts:
        return []
    texts = mask_pii(texts)
    cp, starts = _tf.code_points(texts)
    _tf.apply_to(texts, _hits(starts, cp == ord("&")), html.unescape)
    cp, starts = _tf.code_points(texts)
    _tf.apply_to(texts, _hits(starts, _at(cp, "://") | _at(cp, "www.")), lambda t: _URL.sub(" URL ", t))
    _tf.apply_to(texts, _hits(starts, cp == ord("@")), lambda t: _USER.sub(" USER ", t))
    _tf.apply_to(texts, _hits(starts, cp == ord("#")),
                 lambda t: _HASHTAG.sub(lambda m: " HASHTAG " + _CAMEL.sub(" ", m.group(1)) + " ", t))
    _tf.apply_to(texts, _hits(starts, cp > 0x2000), lambda t: _HIGH.sub(_emoji, t).replace("’", "'"))
    cp, starts = _tf.code_points(texts)
    letter = _tf._classes(cp) == _tf._WORD
    _tf.apply_to(texts, _hits(starts, _runs(cp, 3) & letter),
                 lambda t: _ELONG.sub(lambda m: m.group(1) * 2 + " ELONG ", t))
    _tf.apply_to(texts, _hits(starts, _runs(cp, 2, "!?.")),
                 lambda t: _PUNCT_RUN.sub(lambda m: m.group(1) + " REPEATED_" + _RUN_NAMES[m.group(1)] + " ", t))
    cp, starts = _tf.code_points(texts)
    _tf.apply_to(texts, _hits(starts, _at(cp, "n't")), lambda t: _NT.sub(r"\1 not", t))
    return _tf.SEP.join(texts).lower().split(_tf.SEP)


def normalise_text(text: str, *, negation: bool = True) -> str:
    """The text preparation applied before features (see the module docstring), as the
    tokens it gives joined by spaces.

    >>> normalise_text("Non mi è piaciuto!!! #PessimoServizio http://x.it")
    'non NEG_mi NEG_è NEG_piaciuto ! repeated_excl hashtag pessimo servizio url'
    """
    return _normalised(_prepare([text]), negation=negation)[0]


def _normalised(prepared: list[str], *, negation: bool = True) -> list[str]:
    """:func:`normalise_text` of many texts at once, from their :func:`_prepare` output."""
    tok = _tf.tokenize(prepared, _negation_hashes(), negation=negation)
    words = np.array(tok.strings() + [""], dtype=object)[:-1]
    cut = np.searchsorted(tok.doc, np.arange(len(prepared) + 1))
    return [" ".join(words[a:b]) for a, b in zip(cut[:-1].tolist(), cut[1:].tolist())]


# --------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class SentimentEvaluation:
    """How good a classifier is: macro-F1, accuracy, per-class report, confusion matrix.

    ``macro_f1`` is the unweighted mean of the per-class F1 scores (each class counts the
    same however rare); ``accuracy`` the share of texts labelled right. ``report`` has one
    row per class: precision (of the texts predicted as the class, the share that are),
    recall (of the texts of the class, the share found), f1, support (texts of the class).
    ``confusion``: rows are true classes, columns predicted classes, cells counts.
    ``folds``: macro-F1 of each cross-validation fold (empty for a held-out evaluation).
    ``n_duplicates``: texts whose normalised form (:func:`normalise_text`) repeats an earlier
    one; cross-validation keeps each such set in one fold, so no text is scored by a model
    that was trained on it. ``note``: why the figures cannot be believed (too few texts of a
    class, one class nearly everywhere, mostly repeated texts), None when they can.
    """

    macro_f1: float
    accuracy: float
    report: pd.DataFrame
    confusion: pd.DataFrame
    n: int
    method: str
    folds: tuple = ()
    n_duplicates: int = 0
    note: str | None = None

    def to_dict(self) -> dict:
        d = {"macro_f1": float(self.macro_f1), "accuracy": float(self.accuracy), "n": int(self.n),
             "method": self.method,
             "per_class_f1": {str(k): float(v) for k, v in self.report["f1"].items()}}
        if self.folds:
            d["fold_macro_f1"] = [float(f) for f in self.folds]
            d["n_duplicates"] = int(self.n_duplicates)
            d["note"] = self.note
        return d

    def __repr__(self) -> str:
        spread = f" (folds {min(self.folds):.3f}-{max(self.folds):.3f})" if self.folds else ""
        dup = f", {self.n_duplicates:,} repeated texts kept in one fold" if self.n_duplicates else ""
        note = f"; not to be believed: {self.note}" if self.note else ""
        return (f"SentimentEvaluation({self.method}, n={self.n:,}: macro-F1 {self.macro_f1:.3f}{spread}, "
                f"accuracy {self.accuracy:.3f}{dup}{note})")

    def _repr_html_(self) -> str:
        note = f"<p><i>Not to be believed: {html.escape(self.note)}</i></p>" if self.note else ""
        return (note + f"<p><b>{self.method}</b>, n={self.n:,}: macro-F1 <b>{self.macro_f1:.3f}</b>, "
                f"accuracy {self.accuracy:.3f}</p>" + self.report.round(3).to_html()
                + "<p>Confusion matrix (rows: true, columns: predicted)</p>" + self.confusion.to_html())


def evaluate_predictions(y_true, y_pred, *, method: str = "held-out", labels=None,
                         folds=()) -> SentimentEvaluation:
    """Score predicted labels against true ones (see :class:`SentimentEvaluation`)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(pd.Series(y_true, dtype=object).astype(str))
    y_pred = np.asarray(pd.Series(y_pred, dtype=object).astype(str))
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if len(y_true) == 0:
        raise ValueError("nothing to evaluate: no labelled texts")
    if labels is None:
        present = set(y_true) | set(y_pred)
        labels = [c for c in LABELS if c in present] + sorted(present - set(LABELS))
    labels = list(labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    report = pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": s}, index=pd.Index(labels, name="class"))
    cm = pd.DataFrame(confusion_matrix(y_true, y_pred, labels=labels), index=pd.Index(labels, name="true"),
                      columns=pd.Index(labels, name="predicted"))
    present_true = [c for c in labels if (y_true == c).any()]
    macro = float(report.loc[present_true, "f1"].mean())
    return SentimentEvaluation(macro_f1=macro, accuracy=float(accuracy_score(y_true, y_pred)), report=report,
                               confusion=cm, n=len(y_true), method=method, folds=tuple(folds))


def plot_confusion_matrix(evaluation: SentimentEvaluation, *, normalize: bool = True, ax=None):
    """Heatmap of the confusion matrix (rows: true class; by default each row as shares,
    so the diagonal is each class's recall), annotated with shares and counts."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    cm = evaluation.confusion
    shares = cm.div(cm.sum(axis=1).replace(0, np.nan), axis=0)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.3 * len(cm) + 2.6, 1.1 * len(cm) + 1.6))
    values = shares if normalize else cm
    annot = np.array([[f"{shares.iat[i, j]:.0%}\n({cm.iat[i, j]:,})" for j in range(cm.shape[1])]
                      for i in range(cm.shape[0])])
    sns.heatmap(values, annot=annot, fmt="", cmap="Blues", vmin=0, vmax=1 if normalize else None,
                cbar=False, linewidths=0.5, ax=ax, annot_kws={"fontsize": 9})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{evaluation.method}: macro-F1 {evaluation.macro_f1:.2f}, accuracy {evaluation.accuracy:.2f}",
                 fontsize=10)
    ax.tick_params(axis="y", rotation=0)
    return ax


# --------------------------------------------------------------------------- lexicon
class LexiconSentiment:
    """Cold-start baseline for English text: VADER (Hutto & Gilbert 2014), no training.

    ``predict`` gives the VADER compound score in [-1, 1] as ``score`` and the label by
    VADER's own thresholds: compound >= 0.05 positive, <= -0.05 negative, else neutral.
    Other languages are refused: a lexicon written for English social media is no model of
    Italian or Portuguese customers; fit :class:`SentimentModel` on rated feedback instead.
    """

    def __init__(self, *, language: str = "en"):
        if str(language).lower() not in ("en", "eng", "english"):
            raise LanguageNotSupportedError(
                f"LexiconSentiment knows English only, not language={language!r}. Fit a model on your "
                "own rated feedback instead: SentimentModel().fit(feedback) takes labels from the scores "
                "(NPS, CSAT, stars) and works in any language.")
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as err:  # pragma: no cover - a dependency
            raise ImportError("LexiconSentiment needs vaderSentiment: pip install vaderSentiment") from err
        self._analyzer = SentimentIntensityAnalyzer()
        self.language = "en"

    def __repr__(self) -> str:
        return "LexiconSentiment(VADER, English)"

    def predict(self, texts) -> pd.DataFrame:
        """One row per text: ``text`` (PII masked), ``label``, ``score`` (compound)."""
        if isinstance(texts, pd.DataFrame):
            if "language" in texts.columns:
                lang = texts["language"].dropna().astype(str).str.lower()
                other = lang[~lang.isin(["en", "eng", "english"])]
                if len(other):
                    raise LanguageNotSupportedError(
                        f"{len(other):,} of {len(texts):,} texts are not English (e.g. language "
                        f"{other.iloc[0]!r}); LexiconSentiment knows English only. Fit SentimentModel on "
                        "rated feedback instead, or filter to language == 'en'.")
            if "text" not in texts.columns:
                raise ValueError("the table has no 'text' column" + did_you_mean("text", texts.columns))
            texts = texts["text"]
        masked = mask_pii(pd.Series(texts, dtype=object).fillna("").astype(str))
        compound = np.array([self._analyzer.polarity_scores(html.unescape(t))["compound"] for t in masked])
        label = np.where(compound >= 0.05, "positive", np.where(compound <= -0.05, "negative", "neutral"))
        return pd.DataFrame({"text": masked.to_numpy(), "label": label, "score": compound})

    def evaluate(self, texts, labels) -> SentimentEvaluation:
        """Score the lexicon's labels against known ``labels`` (same metrics as a model)."""
        return evaluate_predictions(labels, self.predict(texts)["label"], method="VADER lexicon")


# --------------------------------------------------------------------------- model
@dataclass(frozen=True)
class SentimentModel:
    """Settings of a sentiment model fitted on rated feedback (see the module docstring).

    Parameters
    ----------
    text : column with the verbatims (default ``text``).
    label : column with known classes; when None the classes come from ``score`` and
        ``scale`` (:func:`labels_from_scores`, with ``mapping``).
    mapping : replaces the score-to-class rule for the scales it names.
    word_ngrams, char_ngrams : n-gram ranges of the word and character features
        (``char_ngrams=None`` leaves characters out).
    min_df : a term must appear in at least this many texts.
    C : inverse L2 penalty of the logistic regressions.
    nb_weighting : average with the naive-Bayes-weighted one-vs-rest model (default True).
    negation : mark words after a negation (default True).
    max_features : keep at most this many features per vectoriser (most frequent first);
        None keeps all.
    """

    text: str = "text"
    label: str | None = None
    mapping: dict | None = None
    word_ngrams: tuple = (1, 2)
    char_ngrams: tuple | None = (1, 5)
    min_df: int = 2
    C: float = 1.0
    nb_weighting: bool = True
    negation: bool = True
    max_features: int | None = None

    def __post_init__(self):
        for name in ("word_ngrams", "char_ngrams"):
            v = getattr(self, name)
            if v is None and name == "char_ngrams":
                continue
            if not (isinstance(v, (tuple, list)) and len(v) == 2 and 1 <= int(v[0]) <= int(v[1]) <= 8):
                raise ValueError(f"{name}={v!r} must be a (low, high) n-gram range with 1 <= low <= high <= 8")
        if not (isinstance(self.min_df, int) and self.min_df >= 1):
            raise ValueError(f"min_df={self.min_df!r} must be a positive integer")
        if not (float(self.C) > 0):
            raise ValueError(f"C={self.C!r} must be positive")

    # ------------------------------------------------------------------ data
    def _frame(self, feedback) -> tuple[pd.Series, pd.Series, int]:
        """Texts and labels from a DataFrame, an Ibis table or a Workspace."""
        if hasattr(feedback, "feedback") and callable(feedback.feedback):
            feedback = feedback.feedback()
        if not isinstance(feedback, pd.DataFrame):
            if hasattr(feedback, "to_pandas"):
                cols = [c for c in (self.text, self.label, "score", "scale") if c and c in feedback.columns]
                feedback = feedback.select(cols).to_pandas()
            else:
                raise TypeError(f"fit takes a feedback DataFrame, an Ibis table or a Workspace, "
                                f"not {type(feedback).__name__}")
        cols = list(feedback.columns)
        if self.text not in cols:
            raise ValueError(f"text={self.text!r} is not a column of the feedback" + did_you_mean(self.text, cols)
                             + f"; columns: {cols}")
        if self.label is not None:
            if self.label not in cols:
                raise ValueError(f"label={self.label!r} is not a column of the feedback"
                                 + did_you_mean(self.label, cols) + f"; columns: {cols}")
            labels = feedback[self.label].astype(object).where(feedback[self.label].notna(), None)
        else:
            missing = [c for c in ("score", "scale") if c not in cols]
            if missing:
                raise ValueError(f"no label= column was given and the feedback has no {missing[0]!r} column to "
                                 f"take labels from" + did_you_mean(missing[0], cols))
            labels = labels_from_scores(feedback["score"].to_numpy(), feedback["scale"].to_numpy(),
                                        mapping=self.mapping)
            labels.index = feedback.index
        texts = feedback[self.text].astype(object)
        ok = texts.notna().to_numpy() & (texts.astype(str).str.strip() != "").to_numpy() & labels.notna().to_numpy()
        n_dropped = int((~ok).sum())
        texts, labels = texts[ok].astype(str), labels[ok].astype(str)
        if len(texts) == 0:
            raise ValueError("no feedback row has both a text and a label (or score) to learn from")
        counts = labels.value_counts()
        if len(counts) < 2:
            raise ValueError(f"every labelled text is {counts.index[0]!r}: a model needs at least two classes")
        return texts.reset_index(drop=True), labels.reset_index(drop=True), n_dropped

    # ------------------------------------------------------------------ fit
    def fit(self, feedback) -> FittedSentiment:
        """Fit on rated feedback; returns a :class:`FittedSentiment` (this object is unchanged).

        Rows without text or without a label (score) are left out and counted in
        ``n_dropped``.
        """
        texts, labels, n_dropped = self._frame(feedback)
        prepared = _prepare(texts)
        state, feats = _fit_arrays(self, prepared, labels.to_numpy())
        return FittedSentiment(settings=self, state=state, train_texts=texts, train_labels=labels, _vecs=feats,
                               n_dropped=n_dropped)


def _features(settings: SentimentModel, prepared: list[str]):
    """Fit the vocabulary on prepared texts: (TextFeatures, their design matrix)."""
    return _tf.TextFeatures.fit(prepared, word_ngrams=settings.word_ngrams, char_ngrams=settings.char_ngrams,
                                min_df=settings.min_df, max_features=settings.max_features,
                                negation=settings.negation, negations_hashes=_negation_hashes())


def _fit_arrays(settings: SentimentModel, prepared: list[str], y: np.ndarray) -> tuple[dict, _tf.TextFeatures]:
    """Fit the features and both linear models; return the plain arrays that define them
    (and the fitted vocabulary, ready to transform new texts)."""
    feats, X = _features(settings, prepared)
    classes = np.array(sorted(set(y)), dtype=str)
    state = {"classes": classes, "vocab": {"word": feats.word_vocab, "char": feats.char_vocab},
             "idf": {"word": feats.word_idf, "char": feats.char_idf}, "char_scale": feats.char_scale}
    jobs = []                                  # one-vs-rest: binary fits per class
    for c in classes:
        pos = y == c
        jobs.append((pos, settings.C, None))
        if settings.nb_weighting:
            p = 1.0 + X.column_sums(np.flatnonzero(pos), binary=True)
            q = 1.0 + X.column_sums(np.flatnonzero(~pos), binary=True)
            jobs.append((pos, 3 * settings.C, np.log((p / p.sum()) / (q / q.sum()))))

    def fit(job):
        pos, C, r = job
        w, b, _ = _tf.fit_logistic(X, pos, C=C, scale=r, tol=_TOL)
        return (w if r is None else w * r), b   # fold the NB scaling into the weights

    # the sparse products and numpy release the GIL: the fits share the cores, BLAS stays
    # on one thread (see _tf.one_blas_thread)
    with _tf.one_blas_thread(), \
            ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        fitted = list(pool.map(fit, jobs))
    step = 2 if settings.nb_weighting else 1
    W1, b1 = [w for w, _ in fitted[::step]], [b for _, b in fitted[::step]]
    W2, b2 = [w for w, _ in fitted[1::step]], [b for _, b in fitted[1::step]]
    state["W1"], state["b1"] = np.vstack(W1).astype(np.float32), np.array(b1)
    if settings.nb_weighting:
        state["W2"], state["b2"] = np.vstack(W2).astype(np.float32), np.array(b2)
    return state, feats


def _ovr_proba(z: np.ndarray) -> np.ndarray:
    """One-vs-rest decision values -> class probabilities (sigmoids, renormalised)."""
    p = 1.0 / (1.0 + np.exp(-z))
    return p / p.sum(axis=1, keepdims=True)


def _modal_labels(groups: np.ndarray, y: np.ndarray) -> pd.Series:
    """The most frequent label of each group (ties: the first in sort order), indexed by
    group code 0..k-1."""
    counts = pd.DataFrame({"g": groups, "y": y}).value_counts().rename("n").reset_index()
    counts = counts.sort_values(["g", "n", "y"], ascending=[True, False, True], kind="stable")
    return counts.drop_duplicates("g").set_index("g")["y"].sort_index()


def _grouped_folds(groups: np.ndarray, modal: pd.Series, cv: int, random_state):
    """(train, test) row positions of ``cv`` stratified folds of whole groups: the groups,
    each with its most frequent label, are dealt to folds by scikit-learn's
    ``StratifiedKFold`` and every row follows its group. (``StratifiedGroupKFold`` does the
    same with closer class shares when groups mix labels, but took 6.3 s instead of
    milliseconds to split 18,400 simulated texts.)"""
    from sklearn.model_selection import StratifiedKFold

    fold_of = np.empty(len(modal), dtype=np.int64)
    split = StratifiedKFold(cv, shuffle=True, random_state=random_state).split(np.zeros(len(modal)), modal)
    for k, (_, te) in enumerate(split):
        fold_of[te] = k
    row_fold = fold_of[groups]
    for k in range(cv):
        yield np.flatnonzero(row_fold != k), np.flatnonzero(row_fold == k)


#: a cross-validated quality needs at least this many distinct texts of each class
MIN_CLASS_TEXTS = 20


def _quality_note(labels: pd.Series, distinct: pd.Series, n_duplicates: int) -> str | None:
    """Why a cross-validated quality on these labels cannot be believed, or None."""
    n = len(labels)
    share = labels.value_counts(normalize=True)
    if distinct.min() < MIN_CLASS_TEXTS:
        return (f"too few texts to judge: the {distinct.idxmin()} class has {distinct.min()} distinct "
                f"texts (at least {MIN_CLASS_TEXTS} are needed)")
    if share.max() > 0.95:
        return (f"too uniform to judge: {share.max():.0%} of the {n:,} texts are {share.idxmax()}, "
                "so any model scores well by saying so")
    if n_duplicates > n / 2:
        return (f"too uniform to judge: {n_duplicates:,} of the {n:,} texts repeat another one "
                f"(only {n - n_duplicates:,} distinct)")
    return None


@dataclass(frozen=True, repr=False)
class FittedSentiment:
    """A fitted sentiment model: ``predict``, ``evaluate``, ``explain``, ``save``/``load``."""

    settings: SentimentModel
    state: dict
    train_texts: pd.Series | None = None
    train_labels: pd.Series | None = None
    n_dropped: int = 0
    _vecs: _tf.TextFeatures | None = field(default=None, compare=False)

    @property
    def classes(self) -> tuple:
        return tuple(str(c) for c in self.state["classes"])

    @property
    def n_features(self) -> int:
        return int(sum(len(v) for v in self.state["vocab"].values()))

    def __repr__(self) -> str:
        n = f"{len(self.train_texts):,} texts" if self.train_texts is not None else "loaded"
        return (f"FittedSentiment({n}, classes {list(self.classes)}, {self.n_features:,} features, "
                f"{'LR + NB-LR' if 'W2' in self.state else 'LR'}, C={self.settings.C})")

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(repr(self))}</p>"

    # ------------------------------------------------------------------ scoring
    def _features(self) -> _tf.TextFeatures:
        if self._vecs is None:
            st = self.state
            feats = _tf.TextFeatures(tuple(self.settings.word_ngrams),
                                     None if self.settings.char_ngrams is None else tuple(self.settings.char_ngrams),
                                     st["vocab"]["word"], st["idf"]["word"],
                                     st["vocab"].get("char", np.array([], dtype=str)),
                                     st["idf"].get("char", np.zeros(0)), float(st.get("char_scale", 1.0)),
                                     self.settings.negation)
            object.__setattr__(self, "_vecs", feats)
        return self._vecs

    def _proba_prepared(self, prepared: list[str]) -> np.ndarray:
        X = self._features().transform(prepared, _negation_hashes())
        P = _ovr_proba(X.matmat(self.state["W1"]) + self.state["b1"])
        if "W2" in self.state:
            P = (P + _ovr_proba(X.matmat(self.state["W2"]) + self.state["b2"])) / 2
        return P

    def predict_proba(self, texts) -> np.ndarray:
        """Class probabilities, one row per text, columns in ``classes`` order.

        Many texts are scored in contiguous chunks on parallel threads (a text's features do
        not depend on the other texts, so the result is the same)."""
        texts = _as_texts(texts)
        self._features()                    # the vocabulary's lookup tables, once, before any thread
        k = min(os.cpu_count() or 1, 4, len(texts) // _CHUNK_MIN)
        if k < 2:
            return self._proba_prepared(_prepare(texts))
        bounds = np.linspace(0, len(texts), k + 1).astype(int)
        with ThreadPoolExecutor(max_workers=k) as pool:
            parts = pool.map(lambda ab: self._proba_prepared(_prepare(texts[ab[0]:ab[1]])),
                             zip(bounds[:-1], bounds[1:]))
            return np.vstack(list(parts))

    def predict(self, texts) -> pd.DataFrame:
        """One row per text: ``text`` (PII masked), ``label``, ``p_<class>`` for each class,
        and ``score`` = P(positive) - P(negative) in [-1, 1]."""
        texts = _as_texts(texts)
        P = self.predict_proba(texts)
        classes = self.classes
        out = pd.DataFrame({"text": mask_pii(pd.Series(texts, dtype=object).fillna("").astype(str)).to_numpy(),
                            "label": np.asarray(classes)[P.argmax(axis=1)]})
        for j, c in enumerate(classes):
            out[f"p_{c}"] = P[:, j]
        pos = P[:, classes.index("positive")] if "positive" in classes else 0.0
        neg = P[:, classes.index("negative")] if "negative" in classes else 0.0
        out["score"] = pos - neg
        return out

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, cv: int = 5, *, on=None, random_state: int = 0) -> SentimentEvaluation:
        """Macro-F1, accuracy, per-class report and confusion matrix.

        ``cv=k`` (default 5): stratified k-fold cross-validation on the training feedback,
        refitting the same settings on each training part and scoring the held-out part.
        Texts that are the same once normalised (:func:`normalise_text`: "OK!" and "ok !")
        fall in the same fold (the folds are stratified over distinct texts), so a repeated text
        is never scored by a model trained on its twin; ``n_duplicates`` counts them. When
        the figures cannot be believed, ``note`` says why: a class with fewer than
        ``MIN_CLASS_TEXTS`` (20) distinct texts, one class above 95% of the texts, or more
        than half of the texts repeats of others.
        ``on=feedback``: score this fitted model on other rated feedback (a test set) instead.
        """
        if on is not None:
            texts, labels, _ = self.settings._frame(on)
            pred = self.predict(texts)["label"]
            return evaluate_predictions(labels, pred, method="held-out", labels=self.classes)
        if self.train_texts is None:
            raise ValueError("a loaded model has no training data to cross-validate; pass on=feedback")
        if not (isinstance(cv, int) and cv >= 2):
            raise ValueError(f"cv={cv!r} must be an integer >= 2")
        y = self.train_labels.to_numpy()
        prepared = np.array(_prepare(self.train_texts), dtype=object)
        groups = pd.factorize(pd.Series(_normalised(list(prepared), negation=self.settings.negation)))[0]
        modal = _modal_labels(groups, y)
        distinct = modal.value_counts().reindex(self.classes, fill_value=0)
        if distinct.min() < cv:
            raise ValueError(f"class {distinct.idxmin()!r} has {distinct.min()} distinct texts, fewer than "
                             f"cv={cv} folds")
        n_duplicates = len(y) - len(modal)
        pred = np.empty(len(y), dtype=object)
        folds = []
        for tr, te in _grouped_folds(groups, modal, cv, random_state):
            state, feats = _fit_arrays(self.settings, list(prepared[tr]), y[tr])
            fold = FittedSentiment(settings=self.settings, state=state, _vecs=feats)
            P = fold._proba_prepared(list(prepared[te]))
            pred[te] = np.asarray(fold.classes)[P.argmax(axis=1)]
            folds.append(evaluate_predictions(y[te], pred[te], labels=self.classes).macro_f1)
        ev = evaluate_predictions(y, pred, method=f"{cv}-fold cross-validation", labels=self.classes, folds=folds)
        return dataclasses.replace(ev, n_duplicates=n_duplicates,
                                   note=_quality_note(self.train_labels, distinct, n_duplicates))

    # ------------------------------------------------------------------ explanation
    def explain(self, text: str, *, top: int = 10) -> pd.DataFrame:
        """The words that moved this text's prediction, by leaving each out in turn.

        For each word of the (PII-masked) text, the text is scored again without it;
        ``effect`` is how much the word raises the probability of the predicted class
        (P with the word - P without it), so positive words pushed towards the prediction
        and negative ones against it. Also ``score_effect``: the word's effect on the score
        (P(positive) - P(negative)). Rows sorted by the size of ``effect``; ``attrs`` hold
        the prediction.
        """
        if not isinstance(text, str):
            raise TypeError(f"explain takes one text (a string), not {type(text).__name__}")
        masked = mask_pii(text)
        words = masked.split()
        if not words:
            raise ValueError("explain: the text is empty")
        variants = [masked] + [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
        P = self._proba_prepared(_prepare(variants))
        classes = self.classes
        k = int(P[0].argmax())

        def score(p):
            pos = p[..., classes.index("positive")] if "positive" in classes else 0.0
            neg = p[..., classes.index("negative")] if "negative" in classes else 0.0
            return pos - neg

        s = score(P)
        out = pd.DataFrame({"word": words, "position": np.arange(len(words)),
                            "effect": P[0, k] - P[1:, k], "score_effect": s[0] - s[1:]})
        out = out.reindex(out["effect"].abs().sort_values(ascending=False, kind="stable").index)
        out = out.head(top).reset_index(drop=True)
        out.attrs.update(text=masked, label=classes[k], probability=float(P[0, k]), score=float(s[0]))
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Write the model as plain arrays and JSON in one ``.npz`` file (no pickle, so
        loading it never executes code). Training texts are not stored."""
        path = Path(path)
        meta = {"format": _FORMAT, "version": _FORMAT_VERSION,
                "settings": {k: (list(v) if isinstance(v, tuple) else v)
                             for k, v in self.settings.__dict__.items()},
                "n_train": None if self.train_texts is None else len(self.train_texts)}
        arrays = {"meta": np.array(json.dumps(meta)), "classes": self.state["classes"],
                  "W1": self.state["W1"], "b1": self.state["b1"],
                  "char_scale": np.array(float(self.state.get("char_scale", 1.0)))}
        if "W2" in self.state:
            arrays.update(W2=self.state["W2"], b2=self.state["b2"])
        for k in self.state["vocab"]:
            arrays[f"vocab_{k}"] = self.state["vocab"][k]
            arrays[f"idf_{k}"] = self.state["idf"][k]
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path) -> FittedSentiment:
        """Read a model written by :meth:`save` (``allow_pickle=False``).

        The whole file is checked here, not at first use: a file that is empty, truncated,
        not a cxlab model or of another format version, a header with missing or unknown
        settings, an array missing or of the wrong type or shape (vocabulary and IDF
        lengths, weights of ``classes x features``) raises
        :class:`~cxlab.exceptions.ModelFileError` naming the file and what is wrong.
        """
        path = Path(path)
        data = _read_npz(path)
        settings = _model_settings(path, data)
        return cls(settings=settings, state=_model_state(path, data, settings))

    # ------------------------------------------------------------------ report
    def to_dict(self) -> dict:
        """Key facts for ``metrics.json``."""
        counts = self.train_labels.value_counts() if self.train_labels is not None else pd.Series(dtype=int)
        return {"classes": list(self.classes), "n_train": int(counts.sum()), "n_dropped": int(self.n_dropped),
                "class_counts": {str(k): int(v) for k, v in counts.items()}, "n_features": self.n_features,
                "nb_weighting": "W2" in self.state, "C": float(self.settings.C)}


def _read_npz(path: Path) -> dict:
    """Every array of the ``.npz`` at ``path``, read now (so a damaged member fails here)."""
    not_model = "not a cxlab sentiment model"
    try:
        if path.stat().st_size == 0:
            raise ModelFileError(path, f"{not_model}: the file is empty")
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ModelFileError(path, f"{not_model}: a single .npy array, not an .npz archive")
        with archive as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        if isinstance(err, ModelFileError):
            raise
        raise ModelFileError(path, f"{not_model}: it cannot be read as an .npz archive (truncated, "
                                   f"or another kind of file): {type(err).__name__}: {err}") from None


def _model_settings(path: Path, data: dict) -> SentimentModel:
    """The settings in the file's JSON header, after checking its format and version."""
    meta = data.get("meta")
    try:
        is_text = meta is not None and meta.ndim == 0 and meta.dtype.kind == "U"
        meta = json.loads(str(meta)) if is_text else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ModelFileError(path, f"not a cxlab sentiment model (no {_FORMAT!r} header)")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(path, f"the header's format version is {version!r}, not an integer")
    if version > _FORMAT_VERSION:
        raise ModelFileError(path, f"written by a newer cxlab (format version {version}; this one reads "
                                   f"{_FORMAT_VERSION})")
    if version < _FORMAT_VERSION:
        raise ModelFileError(path, f"written by an earlier cxlab (format version {version}) whose text "
                                   "features differ from this one's; fit the model again")
    raw = meta.get("settings")
    if not isinstance(raw, dict):
        raise ModelFileError(path, "the header has no 'settings' mapping")
    fields = list(SentimentModel.__dataclass_fields__)
    unknown, missing = [k for k in raw if k not in fields], [k for k in fields if k not in raw]
    if unknown or missing:
        hint = did_you_mean(str(unknown[0]), missing) if unknown and missing else ""
        raise ModelFileError(path, f"the header's settings do not match this cxlab's: unknown {unknown}, "
                                   f"missing {missing}{hint}")
    for k in ("nb_weighting", "negation"):
        if not isinstance(raw[k], bool):
            raise ModelFileError(path, f"the header's setting {k}={raw[k]!r} is not true/false")
    try:
        return SentimentModel(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items()})
    except (TypeError, ValueError) as err:
        raise ModelFileError(path, f"the header's settings are invalid: {err}") from None


def _model_array(path: Path, data: dict, name: str, kind: str, shape: tuple) -> np.ndarray:
    """``data[name]``, checked: present, of dtype kind ``kind`` ("U" strings, "f" floats),
    of ``shape`` (None = any length), finite when floats."""
    if name not in data:
        raise ModelFileError(path, f"array {name!r} is missing")
    a = data[name]
    what = {"U": "strings", "f": "floats"}[kind]
    expected = str(tuple("n" if n is None else n for n in shape)).replace("'", "")
    fits = a.ndim == len(shape) and all(n is None or n == m for n, m in zip(shape, a.shape))
    if a.dtype.kind != kind or not fits:
        raise ModelFileError(path, f"array {name!r} is {a.dtype} of shape {a.shape}; expected {what} "
                                   f"of shape {expected}")
    if kind == "f" and not np.isfinite(a).all():
        raise ModelFileError(path, f"array {name!r} holds NaN or infinite values")
    return a


def _model_vocab(path: Path, data: dict, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``kind`` ("word" or "char") vocabulary and its IDF weights, of equal length, unique."""
    vocab = _model_array(path, data, f"vocab_{kind}", "U", (None,))
    if not pd.Index(vocab).is_unique:
        raise ModelFileError(path, f"array 'vocab_{kind}' lists a term twice")
    return vocab, _model_array(path, data, f"idf_{kind}", "f", (len(vocab),))


def _model_state(path: Path, data: dict, settings: SentimentModel) -> dict:
    """The arrays of a saved model, checked against each other and the settings."""
    classes = _model_array(path, data, "classes", "U", (None,))
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ModelFileError(path, f"'classes' must name at least two distinct classes, not {list(classes)}")
    vocab, idf = {}, {}
    vocab["word"], idf["word"] = _model_vocab(path, data, "word")
    if "vocab_char" in data or "idf_char" in data:
        vocab["char"], idf["char"] = _model_vocab(path, data, "char")
        if settings.char_ngrams is None and len(vocab["char"]):
            raise ModelFileError(path, "the file holds character n-grams but its settings say "
                                       "char_ngrams=None")
    n_features = sum(len(v) for v in vocab.values())
    state = {"classes": classes, "vocab": vocab, "idf": idf, "char_scale": 1.0}
    if "char_scale" in data:
        state["char_scale"] = float(_model_array(path, data, "char_scale", "f", ()))
    if ("W2" in data) != settings.nb_weighting or ("b2" in data) != settings.nb_weighting:
        raise ModelFileError(path, f"arrays 'W2'/'b2' must be present exactly when nb_weighting is true; "
                                   f"nb_weighting={settings.nb_weighting}, present: "
                                   f"{[k for k in ('W2', 'b2') if k in data]}")
    for w, b in (("W1", "b1"), ("W2", "b2"))[:1 + settings.nb_weighting]:
        state[w] = _model_array(path, data, w, "f", (len(classes), n_features))
        state[b] = _model_array(path, data, b, "f", (len(classes),))
    return state


def _as_texts(texts) -> list:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, pd.DataFrame):
        if "text" not in texts.columns:
            raise ValueError("the table has no 'text' column" + did_you_mean("text", texts.columns))
        texts = texts["text"]
    return list(texts)
