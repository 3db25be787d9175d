"""Distinctive terms: the words and phrases that set each group's feedback apart.

"A pain point comes with its why": :func:`distinctive_terms` lists, for each touchpoint (or
any other ``by=`` column), the terms its customers use much more than everyone else, with
the statistic of Monroe, Colaresi & Quinn (2008) -- the log-odds ratio with an informative
Dirichlet prior and its z-score -- plus masked example verbatims. Restrict it to negative
feedback (``sentiment="negative"``) to get the terms behind each touchpoint's complaints.
:func:`plot_distinctive_terms` draws the result.

Definitions (shared by both functions)
--------------------------------------
text cleaning
    Every text goes through :func:`cxlab.privacy.mask_pii` first (terms and examples never
    carry an e-mail, phone, IBAN or card number). Then: lower case, HTML entities decoded
    (``&amp;`` -> ``&``, as tweets and web exports carry them), typographic apostrophes made
    plain. Masked placeholders (``[EMAIL]``...), URLs and ``@handles`` are removed and are
    never terms.
token
    A run of Unicode letters (accented letters included: ``perché``, ``è``, ``città``);
    digits, underscores and punctuation separate tokens, so numbers are never terms.
    An Italian elision is dropped (``l'assistenza`` -> ``assistenza``, ``dell'ordine`` ->
    ``ordine``); an English contraction stays one token (``don't``, ``it's``, ``i'm``).
    Hyphens separate tokens (``sign-up`` -> ``sign``, ``up`` and the bigram ``sign up``).
term
    An n-gram of tokens, n in ``ngram_range`` (unigrams and bigrams by default), joined by
    one space. N-grams never span punctuation (``. , ; : ! ? ( ) [ ] " / |`` and the like) or
    a removed placeholder/URL/handle, so a bigram is a phrase somebody wrote. With stop
    words, a unigram that is a stop word is dropped, and so is an n-gram that starts or ends
    with one (``modulo di registrazione`` survives as a trigram, ``modulo di`` does not).
stop words
    ``stop_words=None`` (default) keeps every term: the informative prior already damps
    function words that every group uses alike. ``"it"``/``"en"`` use the built-in lists
    :data:`STOP_WORDS_IT` (124 words) / :data:`STOP_WORDS_EN` (109 words): pronouns,
    articles, prepositions and their contractions, auxiliaries, conjunctions; negations
    (``non``, ``not``, ``no``, ``never``, ``don't``...) are deliberately *kept* as terms,
    since in customer voice they carry the complaint. ``"auto"`` picks the list by each row's
    ``language`` column (``it``/``en``; other or missing values, or no such column: both
    lists). A list of words is used as given (lower case).
counts
    ``y_wi``: occurrences of term ``w`` in group ``i``'s texts; ``y_wj``: in every other
    text of the table ("the rest", also the texts of groups not asked for in ``groups=``).
    ``n_i``, ``n_j``: total occurrences of all terms *of the same n-gram order* (unigrams
    are compared with unigrams, bigrams with bigrams), so mixing orders does not skew the
    rates.

The statistic (Monroe et al. 2008, eq. 22-24), for group ``i`` against the rest ``j``::

    delta_w = log((y_wi + a_w) / (n_i + a_0 - y_wi - a_w))
              - log((y_wj + a_w) / (n_j + a_0 - y_wj - a_w))
    var_w   ~ 1 / (y_wi + a_w) + 1 / (y_wj + a_w)
    z_w     = delta_w / sqrt(var_w)

Priors: ``prior="informative"`` (default) sets ``a_w = prior_scale * y_w``, where ``y_w``
is the term's count in the whole table, so ``a_0 = prior_scale * n`` (``n`` the total
count of that order): the prior is worth ``prior_scale`` times the corpus and pulls every
group's rates towards the corpus rates (Monroe et al. also build the informative prior
from corpus counts). The default ``prior_scale=0.05`` (a twentieth of the corpus) keeps
z-scores close to the uniform prior's for frequent terms while damping terms seen a few
times. Larger values shrink every z (small groups most) and rank terms exclusive to a
group above frequent terms it shares with others; on the airline tweets 0.05, 0.25 and 1
give nearly the same top terms per reason ("Lost Luggage": ``bag`` z = 26, 20, 13).
``prior="uniform"`` sets ``a_w = prior_scale`` for every term (default 0.01) and ``a_0 =
a_w * V`` (``V`` terms of that order).

Only terms used at least ``min_count`` times in a group are *tested* for that group: the
two-sided normal p-value of ``z`` and Benjamini-Hochberg q-values over all terms tested
for the group. The output keeps the ``top`` terms with ``z > 0`` (over-used in the group).
"""
from __future__ import annotations

import html
import re
import warnings
from collections.abc import Iterable
from itertools import pairwise

import numpy as np
import pandas as pd

from .exceptions import did_you_mean
from .io import SCORE_CLASSES, in_score_class
from .privacy import PLACEHOLDERS, mask_pii
from .stats import bh_qvalues

__all__ = ["distinctive_terms", "plot_distinctive_terms", "STOP_WORDS_IT", "STOP_WORDS_EN",
           "TERM_COLUMNS", "SENTIMENT_RULES"]

#: output columns after the group column
TERM_COLUMNS = ("term", "count_in_group", "share_in_group", "share_elsewhere", "log_odds", "z",
                "p_value", "q_value", "example")

#: Italian function words (articles, prepositions and their articulated forms, pronouns,
#: conjunctions, forms of essere/avere); negations ``non``, ``mai``, ``niente`` are kept.
STOP_WORDS_IT = frozenset("""
a ad al allo alla ai agli alle da dal dallo dalla dai dagli dalle di del dello della dei degli
delle in nel nello nella nei negli nelle con col su sul sullo sulla sui sugli sulle per tra fra
il lo la i gli le un uno una e ed o od ma però anche se che chi cui come dove quando perché
quindi poi già più molto così tanto io tu lui lei noi voi loro mi ti ci vi si ne me te mio mia
miei mie tuo tua suo sua suoi sue nostro nostra questo questa questi queste quello quella quelli
quelle quel è sono sei siamo siete era erano sia stato stata ho hai ha abbiamo avete hanno
""".split())

#: English function words (articles, prepositions, pronouns and their contractions,
#: auxiliaries, conjunctions); negations ``not``, ``no``, ``never``, ``don't``... are kept.
STOP_WORDS_EN = frozenset("""
a an the and or but if then than so as of to in on at by for with from about into over after
before between through during this that these those there here it its it's i i'm i've i'd i'll
me my mine we we're we've our ours us you you're you've your yours he him his she her hers they
they're their theirs them is am are was were be been being have has had having do does did will
would shall should can could may might must what which who whom when where how why just also
very all any some each such own same
""".split())

_STOP_LISTS = {"it": STOP_WORDS_IT, "en": STOP_WORDS_EN}
_NO_STOP: frozenset = frozenset()
_BOTH = STOP_WORDS_IT | STOP_WORDS_EN

PRIORS = ("informative", "uniform")
_DEFAULT_SCALE = {"informative": 0.05, "uniform": 0.01}
SENTIMENTS = ("negative", "neutral", "positive")

#: Score classes per scale, ``(negative, neutral, positive)`` inclusive score ranges (the
#: workspace's shared rule, :data:`cxlab.io.SCORE_CLASSES`; CES is the 1-7 agreement scale,
#: 7 = easiest).
SENTIMENT_RULES = SCORE_CLASSES

_PLACEHOLDER_RE = "|".join(re.escape(p.lower()) for p in PLACEHOLDERS)
# removed before tokenising, and n-grams do not span them
_DROP_RE = _PLACEHOLDER_RE + r"|(?:https?://|www\.)\S+|@\w+"
# an elided Italian article/preposition: letters + apostrophe + a letter, unless the
# apostrophe starts an English contraction suffix (n't 's 're 've 'll 'd 'm)
_ELISION_RE = re.compile(r"[^\W\d_]+'(?!(?:t|s|re|ve|ll|d|m)(?![^\W\d_]))(?=[^\W\d_])")
# a token (letters, an optional English contraction suffix) or a run of break characters
_TOKEN_OR_BREAK_RE = re.compile(r"[^\W\d_]+(?:'(?:t|s|re|ve|ll|d|m)(?![^\W\d_]))?"
                                r"|[.,;:!?()\[\]{}\"«»“”„…|/\\<>=+*~^\n\r\t]+|(?<!\S)['\-]+|['\-]+(?!\S)")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "‐": "-", "‑": "-", "–": " ", "—": " "})


def _clean(texts: pd.Series) -> list[str]:
    """Lower case, plain apostrophes, HTML entities decoded, placeholders/URLs/handles and
    Italian elisions removed (vectorised; Python only on the rows that need it)."""
    s = texts.astype("str").str.lower()
    s = s.str.replace(r"[’‘`´]", "'", regex=True).str.replace(r"[‐‑]", "-", regex=True)
    s = s.str.replace(r"[–—]", " ", regex=True)
    amp = s.str.contains("&", regex=False).to_numpy(dtype=bool)
    out = s.to_numpy(dtype=object)
    if amp.any():
        out[amp] = [html.unescape(t) for t in out[amp]]
        s = pd.Series(out, dtype="str")
    s = s.str.replace(_DROP_RE, " . ", regex=True)
    out = s.to_numpy(dtype=object)
    apo = s.str.contains("'", regex=False).to_numpy(dtype=bool)
    if apo.any():
        out[apo] = [_ELISION_RE.sub(" ", t) for t in out[apo]]
    return out.tolist()


def _make_analyzer(nmin: int, nmax: int):
    """A CountVectorizer analyzer for ``(cleaned text, stop words)`` pairs (see the module doc)."""
    findall = _TOKEN_OR_BREAK_RE.findall

    def analyze(doc) -> list[str]:
        text, stop = doc
        toks = findall(text)            # tokens start with a letter, breaks never do
        if nmin == 1:
            out = ([t for t in toks if t[0].isalpha() and t not in stop] if stop
                   else [t for t in toks if t[0].isalpha()])
        else:
            out = []
        if nmin <= 2 <= nmax:
            if stop:
                out += [a + " " + b for a, b in pairwise(toks)
                        if a[0].isalpha() and b[0].isalpha() and a not in stop and b not in stop]
            else:
                out += [a + " " + b for a, b in pairwise(toks) if a[0].isalpha() and b[0].isalpha()]
        for n in range(max(3, nmin), nmax + 1):
            out += [" ".join(toks[k:k + n]) for k in range(len(toks) - n + 1)
                    if all(t[0].isalpha() for t in toks[k:k + n])
                    and toks[k] not in stop and toks[k + n - 1] not in stop]
        return out

    return analyze


def _tokens(text: str) -> list[str]:
    """The tokens of one text, as the analyzer sees them (for tests and examples)."""
    return [t for t in _TOKEN_OR_BREAK_RE.findall(_clean(pd.Series([text]))[0]) if t[0].isalpha()]


# --------------------------------------------------------------------------- input checks
def _check_column(name, argument: str, columns) -> str:
    if not isinstance(name, str):
        raise ValueError(f"{argument}={name!r} must be a column name (a string)")
    if name not in columns:
        raise ValueError(f"{argument}={name!r} is not a column of feedback" + did_you_mean(name, columns)
                         + f"; columns: {list(columns)}")
    return name


def _resolve_stop_words(stop_words):
    """-> ("none" | "auto" | "fixed", frozenset)."""
    if stop_words is None:
        return "none", _NO_STOP
    if isinstance(stop_words, str):
        key = stop_words.lower()
        if key == "auto":
            return "auto", _BOTH
        if key in _STOP_LISTS:
            return "fixed", _STOP_LISTS[key]
        choices = ("auto", *_STOP_LISTS)
        raise ValueError(f"stop_words={stop_words!r} is not one of {(None, *choices)} or a list of words"
                         + did_you_mean(stop_words, choices))
    if isinstance(stop_words, Iterable):
        words = list(stop_words)
        if not all(isinstance(w, str) for w in words):
            raise ValueError("stop_words must be None, 'auto', 'it', 'en' or a list of strings")
        return "fixed", frozenset(w.lower().translate(_QUOTES) for w in words)
    raise ValueError(f"stop_words={stop_words!r} must be None, 'auto', 'it', 'en' or a list of words")


def _check_settings(ngram_range, min_count, prior, prior_scale, top, examples, sentiment):
    try:
        nmin, nmax = (int(v) for v in ngram_range)
        ok = 1 <= nmin <= nmax and (nmin, nmax) == tuple(ngram_range)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"ngram_range={ngram_range!r} must be a pair of integers (min_n, max_n) with "
                         "1 <= min_n <= max_n, e.g. (1, 2) for words and two-word phrases")
    if prior not in PRIORS:
        raise ValueError(f"prior={prior!r} is not one of {PRIORS}" + did_you_mean(str(prior), PRIORS))
    if prior_scale is None:
        prior_scale = _DEFAULT_SCALE[prior]
    if not (isinstance(prior_scale, (int, float, np.number)) and np.isfinite(prior_scale)
            and prior_scale > 0) or isinstance(prior_scale, bool):
        raise ValueError(f"prior_scale={prior_scale!r} must be a positive number "
                         f"(default {_DEFAULT_SCALE[prior]} for prior={prior!r})")
    for name, value, low in (("min_count", min_count, 1), ("top", top, 1), ("examples", examples, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name}={value!r} must be an integer >= {low}")
    if sentiment is not None and sentiment not in SENTIMENTS:
        raise ValueError(f"sentiment={sentiment!r} is not one of {(None, *SENTIMENTS)}"
                         + did_you_mean(str(sentiment), SENTIMENTS))
    return nmin, nmax, float(prior_scale)


def _to_frame(feedback, *, by, text, language, stop_mode, sentiment) -> pd.DataFrame:
    """The needed columns as a pandas DataFrame (Ibis tables: only those columns pulled)."""
    if hasattr(feedback, "feedback") and callable(feedback.feedback):  # a Workspace
        feedback = feedback.feedback()
    if not hasattr(feedback, "columns"):
        raise TypeError("feedback must be a pandas DataFrame or an Ibis table, "
                        f"not {type(feedback).__name__}")
    columns = list(feedback.columns)
    _check_column(by, "by", columns)
    _check_column(text, "text", columns)
    if by == text:
        raise ValueError(f"by={by!r} and text={text!r} must be different columns")
    if by in TERM_COLUMNS:
        raise ValueError(f"by={by!r} clashes with an output column {TERM_COLUMNS}; rename it first")
    need = [by, text]
    if stop_mode == "auto" and language is not None:
        if language in columns:
            need.append(language)
        elif language != "language":
            _check_column(language, "language", columns)
    if sentiment is not None:
        for col in ("score", "scale"):
            if col not in columns:
                raise ValueError(f"sentiment={sentiment!r} needs the columns 'score' and 'scale' of the "
                                 f"canonical feedback table; feedback has no column {col!r}"
                                 + did_you_mean(col, columns) + " (or filter the rows yourself and "
                                 "pass sentiment=None)")
        need += ["score", "scale"]
    need = list(dict.fromkeys(need))
    if isinstance(feedback, pd.DataFrame):
        return feedback[need]
    if hasattr(feedback, "select") and hasattr(feedback, "to_pandas"):
        return feedback.select(*need).to_pandas()
    raise TypeError(f"feedback must be a pandas DataFrame or an Ibis table, not {type(feedback).__name__}")


def _sentiment_mask(frame: pd.DataFrame, sentiment: str) -> np.ndarray:
    scale = frame["scale"].astype("str").str.lower()
    score = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype="float64")
    known = scale.isin(list(SENTIMENT_RULES)) | frame["scale"].isna()
    if not known.all():
        bad = sorted(set(scale[~known]))
        raise ValueError(f"sentiment={sentiment!r}: scale {bad[0]!r} has no sentiment rule; known scales "
                         f"{tuple(SENTIMENT_RULES)}" + did_you_mean(bad[0], SENTIMENT_RULES))
    return in_score_class(score, scale.to_numpy(dtype=object), sentiment)



def _term_matrix(frame: pd.DataFrame, texts: pd.Series, *, language, stop_mode, stop_set, nmin, nmax):
    """The document-term count matrix of ``texts`` (one row per row of ``frame``), computed
    once per distinct (text, stop-word list): ``(X, vocab, inverse, masked_u, len_u)``."""
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    if stop_mode == "auto" and language in frame.columns:
        lang = frame[language].astype("str").str.lower().str[:2]
        lang_code = np.select([lang.eq("it").to_numpy(bool), lang.eq("en").to_numpy(bool)], [0, 1], 2)
        lists = (STOP_WORDS_IT, STOP_WORDS_EN, _BOTH)
    else:
        lang_code = np.zeros(len(frame), dtype=np.int64)
        lists = (stop_set,)
    text_code, uniq_text = pd.factorize(texts)
    inverse, pairs = pd.factorize(pd.MultiIndex.from_arrays([text_code, lang_code]))
    u_text = pairs.get_level_values(0).to_numpy()
    u_lang = pairs.get_level_values(1).to_numpy()
    masked_u = np.asarray(mask_pii(pd.Series(np.asarray(uniq_text, dtype=object)[u_text], dtype="str")),
                          dtype=object)
    cleaned = _clean(pd.Series(masked_u, dtype="str"))
    vec = CountVectorizer(analyzer=_make_analyzer(nmin, nmax), dtype=np.int32)
    try:
        X = vec.fit_transform(list(zip(cleaned, (lists[k] for k in u_lang))))
        vocab = vec.get_feature_names_out()
    except ValueError:  # empty vocabulary
        X = sparse.csr_matrix((len(pairs), 0), dtype=np.int32)
        vocab = np.empty(0, dtype=object)
    X = X.tocsr()[inverse]
    len_u = pd.Series(masked_u, dtype="str").str.len().to_numpy(dtype=np.int64)
    return X, vocab, inverse, masked_u, len_u


def _group_terms(row, docs_row, n_docs_g, n_rest, tested, *, total, total_docs, n_order_g, n_order_all, order,
                 vocab, a_w, a_0) -> pd.DataFrame:
    """One group's terms against the rest: counts, shares, log-odds, z, p and BH q (``_w``:
    the term's column in the matrix). ``row``/``docs_row``: the group's 1 x terms counts."""
    from scipy.stats import norm

    tested = np.sort(tested)
    y_i = row[:, tested].toarray().ravel().astype("float64")
    d_i = docs_row[:, tested].toarray().ravel().astype("float64")
    k = order[tested]
    y_j = total[tested] - y_i
    n_i = n_order_g[k]
    n_j = n_order_all[k] - n_i
    delta, z = _log_odds_z(y_i, y_j, n_i, n_j, a_w[tested], a_0[k])
    p = 2 * norm.sf(np.abs(z))
    q = bh_qvalues(p)
    out = pd.DataFrame({
        "term": vocab[tested].astype(object), "count_in_group": y_i.astype("int64"),
        "share_in_group": d_i / n_docs_g,
        "share_elsewhere": (total_docs[tested] - d_i) / n_rest if n_rest else np.nan,
        "log_odds": delta, "z": z, "p_value": p, "q_value": q, "_w": tested})
    return out



def _prior(counts, total, order, *, nmin, nmax, prior, scale):
    """Tokens per group and n-gram order, overall, and the Dirichlet prior ``(a_w, a_0)``."""
    n_terms = len(total)
    n_order = np.zeros((counts.shape[0], nmax + 1))
    n_order_all = np.zeros(nmax + 1)
    for k in range(nmin, nmax + 1):
        sel = order == k
        n_order[:, k] = np.asarray(counts[:, sel].sum(axis=1)).ravel()
        n_order_all[k] = total[sel].sum()
    if prior == "informative":
        a_w = scale * total
        a_0 = scale * n_order_all
    else:
        a_w = np.full(n_terms, scale)
        a_0 = scale * np.bincount(order, minlength=nmax + 1).astype("float64")
    return n_order, n_order_all, a_w, a_0


def contrast_terms(X, vocab, in_group, *, ngram_range=(1, 2), min_count: int = 5, prior: str = "informative",
                   prior_scale: float | None = None, top: int = 15) -> pd.DataFrame:
    """The terms over-used by the rows ``in_group`` of a document-term matrix against the
    other rows, exactly as :func:`distinctive_terms` computes them for one group (no
    examples): for explorers that build the matrix once (:func:`_term_matrix`) and contrast
    many selections of its rows. ``X``: documents x terms counts (CSR); ``vocab``: the terms;
    ``in_group``: boolean per row. Rows outside the comparison must be dropped beforehand."""
    from scipy import sparse

    nmin, nmax, scale = _check_settings(ngram_range, min_count, prior, prior_scale, top, 0, None)
    in_group = np.asarray(in_group, dtype=bool)
    codes = in_group.astype(np.int64)
    G = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(2, len(codes)))
    Xb = X.copy()
    Xb.data[:] = 1
    counts, docs = (G @ X).tocsr(), (G @ Xb).tocsr()
    total = np.asarray(X.sum(axis=0)).ravel().astype("float64")
    total_docs = np.asarray(Xb.sum(axis=0)).ravel().astype("float64")
    order = pd.Series(vocab, dtype="str").str.count(" ").to_numpy(dtype=np.int64) + 1
    n_order, n_order_all, a_w, a_0 = _prior(counts, total, order, nmin=nmin, nmax=nmax, prior=prior,
                                            scale=scale)
    n_in = int(in_group.sum())
    row = counts.getrow(1)
    tested = row.indices[row.data >= min_count]
    if n_in == 0 or len(tested) == 0 or n_in == len(codes):
        return pd.DataFrame({c: pd.Series(dtype="str" if c == "term" else "float64") for c in TERM_COLUMNS
                             if c != "example"})
    out = _group_terms(row, docs[1], n_in, len(codes) - n_in, tested, total=total, total_docs=total_docs,
                       n_order_g=n_order[1], n_order_all=n_order_all, order=order, vocab=vocab, a_w=a_w,
                       a_0=a_0)
    out = out[out["z"] > 0].sort_values(["z", "term"], ascending=[False, True], kind="stable").head(top)
    out["term"] = out["term"].astype("str")
    return out.drop(columns="_w").reset_index(drop=True)


# --------------------------------------------------------------------------- statistic
def _log_odds_z(y_i, y_j, n_i, n_j, a_w, a_0):
    """Monroe et al. (2008) eq. 22-24: delta (log-odds ratio) and its z-score, elementwise."""
    yi, yj = y_i + a_w, y_j + a_w
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.log(yi / (n_i + a_0 - yi)) - np.log(yj / (n_j + a_0 - yj))
        z = delta / np.sqrt(1.0 / yi + 1.0 / yj)
    # a term that is the only one of its n-gram order has infinite odds: not testable
    bad = ~np.isfinite(z)
    return np.where(bad, np.nan, delta), np.where(bad, np.nan, z)


def _examples(rows: np.ndarray, *, inverse, masked_u, len_u, term: str, k: int, width: int = 120) -> str:
    """Up to k distinct masked texts among ``rows``, shortest first (then by row), cut around the term."""
    if k == 0 or len(rows) == 0:
        return ""
    codes, first = np.unique(inverse[rows], return_index=True)
    pick = codes[np.lexsort((first, len_u[codes]))[:k]]
    pattern = re.compile(r"(?<![^\W\d_])" + r"[\W_]+".join(re.escape(t) for t in term.split(" "))
                         + r"(?![^\W\d_])", re.IGNORECASE)
    return " | ".join(_snippet(" ".join(masked_u[c].split()), pattern, width) for c in pick)


def _snippet(text: str, pattern: re.Pattern, width: int) -> str:
    if len(text) <= width:
        return text
    m = pattern.search(text.translate(_QUOTES))
    if m is None or m.end() <= width - 1:
        start = 0                       # the term is within the first `width` characters
    else:                               # a window with the term about a third of the way in
        start = max(0, min(m.start() - width // 3, len(text) - width + 1))
    end = start + width - (1 if start == 0 else 2)
    return ("…" if start else "") + text[start:end].strip() + ("…" if end < len(text) else "")


# --------------------------------------------------------------------------- public
def distinctive_terms(feedback, *, by: str = "touchpoint", text: str = "text", groups=None,
                      ngram_range=(1, 2), min_count: int = 5, prior: str = "informative",
                      prior_scale: float | None = None, top: int = 15, stop_words=None,
                      language: str = "language", sentiment: str | None = None,
                      examples: int = 2) -> pd.DataFrame:
    """The words and phrases that set each group's feedback apart from the rest.

    For each group (touchpoint, channel, reason...) every term is compared between the
    group's texts and all other texts with the log-odds ratio under an informative
    Dirichlet prior and its z-score (Monroe, Colaresi & Quinn 2008); the terms the group
    over-uses most come out first, each with masked example verbatims. See the module
    docstring (:mod:`cxlab._terms`) for tokens, terms, stop words and the formula.

    Parameters
    ----------
    feedback : DataFrame or Ibis table
        One row per piece of feedback (the canonical ``feedback`` table, or any table with
        a group column and a text column). An Ibis table (or a Workspace) is pulled with
        only the columns needed. Never modified.
    by : str
        Column holding the groups to contrast (default ``"touchpoint"``). Rows with a
        missing group are left out.
    text : str
        Column holding the verbatims. Rows with a missing or blank text are left out.
    groups : list, optional
        Groups to report (default: every group). The other groups still form "the rest".
    ngram_range : (int, int)
        Smallest and largest n-gram (default ``(1, 2)``: words and two-word phrases).
    min_count : int
        A term is tested for a group only if it occurs at least this often in the group's
        texts (default 5).
    prior : {"informative", "uniform"}
        ``"informative"``: ``a_w = prior_scale * (count of w in the whole table)``;
        ``"uniform"``: ``a_w = prior_scale`` for every term.
    prior_scale : float, optional
        Strength of the prior; default 0.05 for ``"informative"`` (the prior is worth 5 %
        of the corpus), 0.01 for ``"uniform"``.
    top : int
        Terms kept per group (default 15), the ones with the largest positive z.
    stop_words : None, "auto", "it", "en" or list of str
        Stop words to drop (default None: keep all). ``"auto"`` uses each row's language.
    language : str
        Column with each row's language code, used by ``stop_words="auto"`` (default
        ``"language"``; if the table has no such column both lists apply).
    sentiment : {"negative", "neutral", "positive"}, optional
        Keep only feedback of that class *before* contrasting the groups, read from the
        ``score`` and ``scale`` columns (:data:`SENTIMENT_RULES`: NPS 0-6 / 7-8 / 9-10; stars
        and CSAT 1-2 / 3 / 4-5; CES 1-3 / 4 / 5-7 on the agreement scale, 7 = easiest). With
        ``"negative"`` each touchpoint's complaints are contrasted with the other
        touchpoints' complaints, so generic words of discontent cancel out and what is left
        is what the complaints are about. For a table with its own labels (e.g.
        ``airline_sentiment``), filter the rows first and leave this None.
    examples : int
        Example verbatims per term (default 2; 0 for none).

    Returns
    -------
    DataFrame
        One row per group and term, groups in the order of ``groups`` (default sorted),
        terms by decreasing ``z`` (ties by term):

        - ``<by>``: the group.
        - ``term``: the word or phrase (lower case, tokens joined by one space).
        - ``count_in_group``: occurrences of the term in the group's texts (``y_wi``).
        - ``share_in_group``: share of the group's texts containing it.
        - ``share_elsewhere``: share of the other texts containing it.
        - ``log_odds``: ``delta_w``, log-odds ratio group vs rest (natural log).
        - ``z``: ``delta_w / sd``; above ~3 is rarely chance.
        - ``p_value``: two-sided normal p-value of ``z``.
        - ``q_value``: Benjamini-Hochberg q-value over all terms tested for the group.
        - ``example``: up to ``examples`` distinct masked verbatims of the group containing
          the term, shortest first, each cut to about 120 characters around the term,
          separated by ``" | "``.

        ``attrs``: ``by``, ``n_texts`` (per group, after filters), ``n_rest``, ``prior``,
        ``prior_scale``, ``sentiment``, ``notes`` (groups left without any text or any
        over-used term).

    Raises
    ------
    ValueError
        Unknown ``by``/``text`` column (with a "did you mean" hint), unknown group in
        ``groups``, an empty table, fewer than two groups with text, or a bad setting.

    References
    ----------
    Monroe, B. L., Colaresi, M. P., & Quinn, K. M. (2008). Fightin' words: Lexical feature
    selection and evaluation for identifying the content of political conflict.
    Political Analysis 16(4), 372-403.

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> _, feedback, _ = simulate_journeys(20_000, seed=1)
    >>> t = distinctive_terms(feedback, sentiment="negative", stop_words="auto")
    >>> t.loc[t.touchpoint == "registration_form", "term"].head(3).tolist()
    ['registrazione', 'lunghissima', 'obbligatoria']
    """
    from scipy import sparse

    nmin, nmax, scale = _check_settings(ngram_range, min_count, prior, prior_scale, top, examples,
                                        sentiment)
    stop_mode, stop_set = _resolve_stop_words(stop_words)
    frame = _to_frame(feedback, by=by, text=text, language=language, stop_mode=stop_mode,
                      sentiment=sentiment)
    if len(frame) == 0:
        raise ValueError("feedback is empty: there is no text to compare")
    notes: list[str] = []

    all_groups = frame[by].dropna().unique()
    raw = frame[text]
    keep = raw.notna().to_numpy() & frame[by].notna().to_numpy()
    if sentiment is not None:
        keep &= _sentiment_mask(frame, sentiment)
    frame = frame[keep]
    dtype = frame[text].dtype
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        raise ValueError(f"text={text!r} must hold strings (verbatims), not {dtype}")
    texts = frame[text].astype("str")
    blank = texts.str.strip().eq("").to_numpy()
    frame, texts = frame[~blank], texts[~blank]
    if len(frame) == 0:
        why = f" with sentiment={sentiment!r}" if sentiment is not None else ""
        raise ValueError(f"feedback has no row with both a {by!r} and a non-blank {text!r}{why}")

    codes, levels = pd.factorize(frame[by], sort=True)
    present = list(levels)
    why = f" with sentiment={sentiment!r}" if sentiment is not None else ""
    if groups is None:
        report = present
        have = set(present)
        for g in all_groups:
            if g not in have:
                notes.append(f"{by}={g!r} has no text{why}: no terms")
    else:
        wanted = [groups] if isinstance(groups, str) or not isinstance(groups, Iterable) else list(groups)
        if not wanted:
            raise ValueError("groups=[] asks for no group; pass None for every group")
        universe = set(all_groups)
        report = []
        for g in wanted:
            if g in present:
                report.append(g)
            elif g in universe:
                notes.append(f"{by}={g!r} has no text{why}: no terms")
            else:
                values = sorted(map(str, universe))
                raise ValueError(f"groups: {g!r} is not a value of {by!r}" + did_you_mean(str(g), values)
                                 + f"; values: {values[:20]}")
    if len(present) < 2:
        raise ValueError(f"by={by!r}: distinctive terms need at least two groups with text to contrast, "
                         f"found {present}")

    X, vocab, inverse, masked_u, len_u = _term_matrix(frame, texts, language=language, stop_mode=stop_mode,
                                                     stop_set=stop_set, nmin=nmin, nmax=nmax)
    n_groups = len(present)
    G = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                          shape=(n_groups, len(codes)))
    Xb = X.copy()
    Xb.data[:] = 1
    counts = (G @ X).tocsr()                    # groups x terms, occurrences
    docs = (G @ Xb).tocsr()                     # groups x terms, texts containing
    total = np.asarray(X.sum(axis=0)).ravel().astype("float64")
    total_docs = np.asarray(Xb.sum(axis=0)).ravel().astype("float64")
    n_docs = np.bincount(codes, minlength=n_groups).astype("float64")
    order = pd.Series(vocab, dtype="str").str.count(" ").to_numpy(dtype=np.int64) + 1
    n_order, n_order_all, a_w, a_0 = _prior(counts, total, order, nmin=nmin, nmax=nmax, prior=prior,
                                            scale=scale)

    Xc = X.tocsc() if examples else None
    parts = []
    n_texts = {}
    for g in report:
        gi = present.index(g)
        n_texts[g] = int(n_docs[gi])
        row = counts.getrow(gi)
        tested = row.indices[row.data >= min_count]
        if len(tested) == 0:
            notes.append(f"{by}={g!r}: no term occurs {min_count}+ times in its {int(n_docs[gi])} texts")
            continue
        out = _group_terms(row, docs[gi], n_docs[gi], len(codes) - n_docs[gi], tested, total=total,
                           total_docs=total_docs, n_order_g=n_order[gi], n_order_all=n_order_all,
                           order=order, vocab=vocab, a_w=a_w, a_0=a_0)
        out = out[out["z"] > 0].sort_values(["z", "term"], ascending=[False, True], kind="stable").head(top)
        if out.empty:
            notes.append(f"{by}={g!r}: no term is over-used in its texts")
            continue
        in_group = codes == gi
        ex = []
        for w, term in zip(out["_w"], out["term"]):
            rows = Xc.indices[Xc.indptr[w]:Xc.indptr[w + 1]] if Xc is not None else np.empty(0, int)
            rows = np.sort(rows[in_group[rows]])
            ex.append(_examples(rows, inverse=inverse, masked_u=masked_u, len_u=len_u, term=term,
                                k=examples))
        out["example"] = ex
        out.insert(0, by, g)
        parts.append(out.drop(columns="_w"))

    columns = [by, *TERM_COLUMNS]
    if parts:
        result = pd.concat(parts, ignore_index=True)[columns]
    else:
        result = pd.DataFrame({c: pd.Series(dtype=frame[by].dtype if c == by else
                                            ("str" if c in ("term", "example") else
                                             "int64" if c == "count_in_group" else "float64"))
                               for c in columns})
    result["term"] = result["term"].astype("str")
    result["example"] = result["example"].astype("str")
    for msg in notes:
        warnings.warn(msg, UserWarning, stacklevel=2)
    result.attrs.update({"by": by, "n_texts": n_texts, "n_rest": {g: int(len(codes) - n_texts[g])
                                                                   for g in n_texts},
                         "prior": prior, "prior_scale": scale, "sentiment": sentiment,
                         "min_count": min_count, "notes": notes})
    return result


def plot_distinctive_terms(table: pd.DataFrame, *, group=None, ax=None, top: int = 10):
    """Horizontal bars of z for the top terms of one group, or small multiples of several.

    Parameters
    ----------
    table : DataFrame
        The output of :func:`distinctive_terms`.
    group : value or list, optional
        The group to draw; a list draws those groups as small multiples. Default: the
        only group, or every group (small multiples) when there are several.
    ax : Axes, optional
        Where to draw one group; not allowed with several groups.
    top : int
        Terms per group (default 10), the largest z at the top.

    Returns
    -------
    Axes (one group) or Figure (small multiples).

    Bars are dark where q < 0.05 and pale otherwise; the label after each bar gives the
    share of the group's texts that contain the term.
    """
    import matplotlib.pyplot as plt

    if not isinstance(table, pd.DataFrame) or not set(TERM_COLUMNS[:6]) <= set(table.columns):
        raise ValueError("table must be the output of distinctive_terms() (columns "
                         f"{TERM_COLUMNS[:6]}...)")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top={top!r} must be an integer >= 1")
    by = table.attrs.get("by") or next(c for c in table.columns if c not in TERM_COLUMNS)
    present = list(pd.unique(table[by]))
    if group is None:
        chosen = present
    else:
        chosen = list(group) if isinstance(group, (list, tuple)) else [group]
        for g in chosen:
            if g not in present:
                raise ValueError(f"group={g!r} is not in the table's {by!r} values"
                                 + did_you_mean(str(g), [str(v) for v in present]) + f"; values: {present}")
    if not chosen:
        raise ValueError("the table has no rows to draw")
    if len(chosen) == 1:
        if ax is None:
            n = min(top, int((table[by] == chosen[0]).sum()))
            _, ax = plt.subplots(figsize=(6.4, 1.2 + 0.34 * max(n, 3)), layout="constrained")
        _bars(ax, table[table[by] == chosen[0]], top=top, title=_title(table, by, chosen[0], prefix=True))
        ax.set_xlabel("z of the log-odds ratio, group vs the rest\n"
                      "(label: share of the group's texts with the term; pale bar: q >= 0.05)", fontsize=8.5)
        return ax
    if ax is not None:
        raise ValueError(f"ax= draws one group, but {len(chosen)} groups were asked for; pass group= one of "
                         f"{chosen[:5]}, or ax=None for small multiples")
    ncols = 2 if len(chosen) <= 4 else 3
    nrows = -(-len(chosen) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, (0.9 + 0.3 * top) * nrows),
                             squeeze=False, layout="constrained")
    for a, g in zip(axes.flat, chosen):
        _bars(a, table[table[by] == g], top=top, title=_title(table, by, g))
    for a in axes.flat[len(chosen):]:
        a.set_visible(False)
    title = "Distinctive terms by " + by
    if table.attrs.get("sentiment"):
        title += f" ({table.attrs['sentiment']} feedback only)"
    fig.suptitle(title, fontsize=12)
    fig.supxlabel("z of the log-odds ratio, group vs the rest   (label: share of the group's texts with the "
                  "term; pale bar: q >= 0.05)", fontsize=9)
    return fig


def _title(table: pd.DataFrame, by: str, g, *, prefix: bool = False) -> str:
    n = (table.attrs.get("n_texts") or {}).get(g)
    return (f"{by} = {g}" if prefix else str(g)) + (f"  ({n:,} texts)" if n is not None else "")


def _bars(ax, rows: pd.DataFrame, *, top: int, title: str) -> None:
    rows = rows.sort_values("z", ascending=False, kind="stable").head(top)
    y = np.arange(len(rows))[::-1]
    sig = rows["q_value"].to_numpy() < 0.05 if "q_value" in rows else np.ones(len(rows), bool)
    colors = np.where(sig, "#2b6a99", "#a9c4da")
    ax.barh(y, rows["z"], color=colors, height=0.7)
    ax.set_yticks(y, [_short(t) for t in rows["term"]], fontsize=9)
    zmax = float(rows["z"].max()) if len(rows) else 1.0
    for yi, z, s in zip(y, rows["z"], rows["share_in_group"]):
        ax.text(z + zmax * 0.015, yi, f"{s:.0%}", va="center", fontsize=7.5, color="#444444")
    ax.set_xlim(0, zmax * 1.15 if zmax > 0 else 1)
    ax.set_ylim(-0.6, max(len(rows), 1) - 0.4)
    ax.set_title(title, fontsize=10, loc="left")
    ax.tick_params(axis="x", labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)


def _short(term: str, width: int = 28) -> str:
    return term if len(term) <= width else term[:width - 1] + "…"
