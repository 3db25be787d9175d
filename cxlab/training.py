"""Training curriculum support: the exercises' self-check, their answer key, the data the
six training notebooks use (``notebooks/training/``) and an Italian glossary of the CX terms.

>>> from cxlab import training
>>> events, feedback, truth = training.simulation()          # the lessons' shared data
>>> r = training.check("03-nps", -17.3)                       # doctest: +SKIP
✗ [03-nps] You counted the passives (7-8) as promoters ...

How a check works
-----------------
Every exercise recomputes its correct answer from the same deterministic data the notebook
uses (:func:`simulation`, a fixed seed), with plain pandas/numpy/scikit-learn code written
here, independently of the cxlab analysis a trainee is expected to call, so a notebook run
with the answer key (:func:`solution`, which *does* use the cxlab API) also cross-checks the
package. Numbers are compared with a tolerance suited to the rounding asked for. When an
answer is wrong, the exercise first tries the typical mistakes it knows (it computes what
each mistake would give and compares), and says which one was made; otherwise it gives a
generic hint. ``None`` or ``...`` means "not answered yet".

Exercise ids are ``"<notebook>-<topic>"`` (``"02-step-conversion"``); :func:`exercises`
lists them with their questions.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "COSTS",
    "DATASETS",
    "N_CUSTOMERS",
    "SEED",
    "STATUSES",
    "CheckResult",
    "Exercise",
    "check",
    "dataset_path",
    "exercises",
    "glossary",
    "glossary_markdown",
    "repo_root",
    "simulation",
    "solution",
    "write_glossary",
]

#: the three outcomes of a check
STATUSES = ("correct", "wrong", "not answered")
#: the simulation every lesson uses: small enough to run in a second, large enough to show the truth
SEED = 8
N_CUSTOMERS = 5_000
#: cost of serving each touchpoint (exercise 06-cost-to-serve)
COSTS = {"support_contact": 6.0, "support_reply": 2.0, "sales_call": 5.0, "store_visit": 8.0,
         "return_request": 7.0}
#: exercise 03: the month whose NPS margin of error is asked for
NPS_MONTH = "2026-03"
#: exercise 01: the return window of the circle
CIRCLE_WINDOW = pd.Timedelta("90D")
#: exercise 02: conversion window of the funnel
FUNNEL_WINDOW = pd.Timedelta("7D")
#: exercise 06: the window within which a repeated contact counts
SWITCH_WINDOW = pd.Timedelta("7D")

_MARKS = {"correct": "✓", "wrong": "✗", "not answered": "…"}


# =========================================================================== data
def repo_root() -> Path:
    """The checkout the package lives in (the folder holding ``cxlab/``)."""
    return Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def simulation():
    """``(events, feedback, truth)`` of the lessons: :func:`cxlab.datasets.simulate_journeys`
    with ``N_CUSTOMERS`` customers and seed ``SEED`` (cached; the frames are shared, so
    treat them as read-only: pandas copy-on-write protects them from edits through a filter)."""
    from .datasets import simulate_journeys

    return simulate_journeys(N_CUSTOMERS, seed=SEED)


#: public datasets the lessons read: name -> (shared folder, shared file, bundled file or None)
DATASETS = {
    "online_shoppers": ("online_shoppers", "online_shoppers_intention.csv",
                        "online_shoppers/online_shoppers_intention.csv.gz"),
    "womens_clothing_reviews": ("womens_clothing_reviews", "Womens Clothing E-Commerce Reviews.csv.gz",
                                "womens_clothing_reviews/womens_clothing_reviews_sample3000.csv.gz"),
    "bpic2012_loans": ("bpic2012_loans", "bpic2012_events.csv.gz", None),
    "airline_satisfaction": ("airline_satisfaction", "train.csv.gz", None),
    "helpdesk_tickets": ("helpdesk_tickets", "helpdesk_events.csv.gz", None),
    "italian_tweet_sentiment": ("italian_tweet_sentiment", "sentipolc16_umsab_italian.csv", None),
}


def _shared_dirs() -> list[Path]:
    env = os.environ.get("CXLAB_SHARED_DATA")
    dirs = [Path(env)] if env else []
    return dirs + [repo_root().parent / "shared" / "data"]


def dataset_path(name: str, data_dir: str = "", *, quiet: bool = False) -> Path | None:
    """Where a public dataset of the lessons is, or None (with a printed note) when absent.

    ``data_dir=""`` (default) looks in the development checkout's ``../shared/data`` (or
    ``$CXLAB_SHARED_DATA``), then in the small copies bundled under ``data/training/`` for the
    datasets whose license allows it (see their SOURCE.md). A ``data_dir`` given looks there
    only (``<data_dir>/<folder>/<file>``).
    """
    if name not in DATASETS:
        from .exceptions import did_you_mean

        raise ValueError(f"unknown dataset {name!r}" + did_you_mean(name, DATASETS)
                         + f"; known: {sorted(DATASETS)}")
    folder, file, bundled = DATASETS[name]
    candidates = ([Path(data_dir) / folder / file] if data_dir
                  else [d / folder / file for d in _shared_dirs()])
    if not data_dir and bundled:
        candidates.append(repo_root() / "data" / "training" / bundled)
    for p in candidates:
        if p.exists():
            return p
    if not quiet:
        where = data_dir or "../shared/data"
        extra = "" if bundled or data_dir else " (it is not bundled: its license does not clearly allow it)"
        print(f"Note: the real dataset {name!r} is not in {where}{extra}; this section is skipped. "
              "It comes with the cxlab development checkout.")
    return None


# =========================================================================== results
@dataclass
class CheckResult:
    """What :func:`check` found: ``exercise``, ``status`` (one of :data:`STATUSES`), ``message``."""

    exercise: str
    status: str
    message: str
    _shown: bool = field(default=False, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return self.status == "correct"

    def line(self) -> str:
        return f"{_MARKS[self.status]} [{self.exercise}] {self.message}"

    def __str__(self) -> str:
        return self.line()

    def _ipython_display_(self):          # check() already printed the line
        if not self._shown:
            print(self.line())
            self._shown = True


@dataclass(frozen=True)
class Exercise:
    """One exercise: ``id``, ``notebook`` (1-6), ``question``, the expected ``kind`` of answer."""

    id: str
    notebook: int
    question: str
    kind: str
    judge: object = field(repr=False)
    key: object = field(repr=False)


_REGISTRY: dict[str, Exercise] = {}


def _exercise(id, notebook, kind, question):
    def register(judge):
        _REGISTRY[id] = Exercise(id=id, notebook=notebook, question=question, kind=kind, judge=judge,
                                 key=None)
        return judge
    return register


def _answer_key(id):
    def register(fn):
        ex = _REGISTRY[id]
        _REGISTRY[id] = Exercise(id=ex.id, notebook=ex.notebook, question=ex.question, kind=ex.kind,
                                 judge=ex.judge, key=fn)
        return fn
    return register


def exercises(notebook: int | None = None) -> pd.DataFrame:
    """The exercises (of one notebook): ``id``, ``notebook``, ``kind``, ``question``."""
    rows = [{"id": e.id, "notebook": e.notebook, "kind": e.kind, "question": e.question}
            for e in _REGISTRY.values() if notebook is None or e.notebook == notebook]
    return pd.DataFrame(rows, columns=["id", "notebook", "kind", "question"])


def _get(exercise_id) -> Exercise:
    if exercise_id not in _REGISTRY:
        from .exceptions import did_you_mean

        raise KeyError(f"unknown exercise {exercise_id!r}" + did_you_mean(str(exercise_id), _REGISTRY)
                       + f"; known exercises: {', '.join(_REGISTRY)}")
    return _REGISTRY[exercise_id]


def check(exercise_id: str, answer, *, quiet: bool = False) -> CheckResult:
    """Check an answer: print one line (✓ / ✗ / … with what is wrong) and return a
    :class:`CheckResult`. ``None`` or ``...`` is "not answered yet". An unknown id raises
    ``KeyError`` listing the known ones."""
    ex = _get(exercise_id)
    if answer is None or answer is Ellipsis:
        res = CheckResult(ex.id, "not answered", "not answered yet: replace ... with your answer")
    else:
        try:
            ok, message = ex.judge(answer)
        except _AnswerError as err:
            ok, message = False, str(err)
        res = CheckResult(ex.id, "correct" if ok else "wrong", message)
    if not quiet:
        print(res.line())
        res._shown = True
    return res


def solution(exercise_id: str, *, quiet: bool = False):
    """The answer key of an exercise, computed with the cxlab API the lesson teaches (prints
    how, unless ``quiet``). Notebooks call it when run with ``solutions=True``."""
    ex = _get(exercise_id)
    value, how = ex.key()
    if not quiet:
        print(f"Answer key [{ex.id}]: {how}")
    return value


# =========================================================================== judging helpers
class _AnswerError(ValueError):
    """The answer has the wrong type or shape (reported as a wrong answer)."""


def _number(answer) -> float:
    """A number from a float, int, numpy scalar, one-element Series/array, or "63.7%"."""
    if isinstance(answer, (pd.Series, pd.Index, np.ndarray, list, tuple)):
        arr = np.asarray(answer).ravel()
        if arr.size != 1:
            raise _AnswerError(f"give one number, not {arr.size} values")
        answer = arr[0]
    if isinstance(answer, pd.DataFrame):
        raise _AnswerError("give one number, not a table: pick the cell (e.g. table['rate'].iloc[0])")
    if isinstance(answer, pd.Timedelta):
        raise _AnswerError("give a number of hours, not a Timedelta (divide by pd.Timedelta('1h'))")
    if isinstance(answer, str):
        s = answer.strip().replace(",", ".")
        try:
            return float(s[:-1]) / 100 if s.endswith("%") else float(s)
        except ValueError:
            raise _AnswerError(f"{answer!r} is not a number") from None
    if isinstance(answer, (bool, np.bool_)):
        raise _AnswerError("give a number, not True/False")
    try:
        x = float(answer)
    except (TypeError, ValueError):
        raise _AnswerError(f"give a number, not {type(answer).__name__}") from None
    if math.isnan(x):
        raise _AnswerError("your answer is NaN: something in the computation had no data")
    return x


def _text(answer) -> str:
    if isinstance(answer, (pd.Series, np.ndarray, list, tuple)):
        arr = np.asarray(answer, dtype=object).ravel()
        if arr.size != 1:
            raise _AnswerError(f"give one name, not {arr.size} values")
        answer = arr[0]
    if not isinstance(answer, str):
        raise _AnswerError(f"give a name as text (in quotes), not {type(answer).__name__}")
    return answer.strip()


def _bool(answer) -> bool:
    if isinstance(answer, (bool, np.bool_)):
        return bool(answer)
    if isinstance(answer, str) and answer.strip().lower() in ("yes", "true", "si", "sì", "no", "false"):
        return answer.strip().lower() in ("yes", "true", "si", "sì")
    raise _AnswerError("answer True (a real change) or False (within noise)")


def _close(x, y, tol) -> bool:
    return y is not None and np.isfinite(y) and abs(x - y) <= tol


def _numeric(answer, correct, tol, mistakes=(), *, fmt="{:.3f}", generic="", percent=True):
    """(ok, message) for a number: right within ``tol``; else the first known mistake whose
    value (within its own tolerance, default ``tol``) matches; else ``generic``."""
    x = _number(answer)
    if _close(x, correct, tol):
        return True, f"correct: {fmt.format(correct)}"
    for m in mistakes:
        value, message = m[0], m[1]
        mtol = m[2] if len(m) > 2 else tol
        if value is not None and not _close(value, correct, tol) and _close(x, value, mtol):
            return False, message
    if percent and _close(x, 100 * correct, 100 * tol):
        return False, ("you gave a percentage: the question asks for a fraction between 0 and 1 "
                       f"({fmt.format(x / 100)}, not {x:g})")
    return False, generic or f"not quite: {x:g} is not the expected value; check your steps"


# =========================================================================== independent computations
def _events():
    return simulation().events


def _feedback():
    return simulation().feedback


def _jm():
    from .journey import JourneyMap

    return JourneyMap.default()


def _customers_with(ev, tps) -> pd.Index:
    return pd.Index(ev.loc[ev["touchpoint"].isin(tps), "customer_id"].unique())


def _closed_funnel_counts(ev, steps, window) -> list[int]:
    """Customers reaching each step of a closed funnel (pandas, independent of cxlab.funnel)."""
    e = ev.loc[ev["touchpoint"].isin(steps), ["customer_id", "ts", "touchpoint"]]
    t1 = e[e["touchpoint"] == steps[0]].groupby("customer_id")["ts"].min()
    cur = t1.rename("t_prev")
    counts = [len(cur)]
    limit = (t1 + window).rename("t_lim")
    for s in steps[1:]:
        c = e[e["touchpoint"] == s].merge(cur.reset_index(), on="customer_id").merge(
            limit.reset_index(), on="customer_id")
        c = c[(c["ts"] >= c["t_prev"]) & (c["ts"] <= c["t_lim"])]
        cur = c.groupby("customer_id")["ts"].min().rename("t_prev")
        counts.append(len(cur))
    return counts


def _nps_answers():
    fb = _feedback()
    return fb[(fb["scale"] == "nps") & fb["score"].notna()]


def _nps_points(scores) -> float:
    s = np.asarray(scores, dtype=float)
    return 100 * (np.mean(s >= 9) - np.mean(s <= 6))


def _nps_se(scores) -> float:
    s = np.asarray(scores, dtype=float)
    pp, pd_ = np.mean(s >= 9), np.mean(s <= 6)
    return 100 * math.sqrt(max(pp + pd_ - (pp - pd_) ** 2, 0) / len(s))


def _month(ts: pd.Series) -> pd.Series:
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("M").astype(str)


@lru_cache(maxsize=1)
def _monthly_nps() -> pd.DataFrame:
    a = _nps_answers()
    g = a.groupby(_month(a["ts"]))["score"]
    out = pd.DataFrame({"n": g.size(), "nps": g.apply(_nps_points), "se": g.apply(_nps_se)})
    out.index.name = "month"
    return out.reset_index()


@lru_cache(maxsize=1)
def _largest_move() -> dict:
    """The largest NPS move between consecutive months with 30+ answers each, and its test."""
    from scipy.stats import norm

    m = _monthly_nps()
    rows = []
    for (_, a), (_, b) in zip(m.iloc[:-1].iterrows(), m.iloc[1:].iterrows()):
        if a["n"] >= 30 and b["n"] >= 30:
            diff = b["nps"] - a["nps"]
            se = math.sqrt(a["se"] ** 2 + b["se"] ** 2)
            rows.append({"from": a["month"], "to": b["month"], "diff": diff, "se": se,
                         "p_value": 2 * norm.sf(abs(diff / se)), "n_from": int(a["n"]), "n_to": int(b["n"])})
    best = max(rows, key=lambda r: abs(r["diff"]))
    best["significant"] = bool(best["p_value"] < 0.05)
    best["ci"] = (best["diff"] - 1.959964 * best["se"], best["diff"] + 1.959964 * best["se"])
    return best


def _stars():
    fb = _feedback()
    return fb.loc[(fb["scale"] == "stars") & fb["score"].notna(), "score"].astype(float)


@lru_cache(maxsize=1)
def _dropoff_fit():
    from .dropoff import DropoffModel

    return DropoffModel(covariates=["channel"], exposures=["popup_shown"]).fit(_events())


@lru_cache(maxsize=1)
def _escape_checkout():
    from .paths import escape_routes

    return escape_routes(_events(), step="checkout", window="7D")


@lru_cache(maxsize=1)
def _english_labelled():
    fb = _feedback()
    en = fb[(fb["language"] == "en") & fb["score"].notna() & fb["text"].notna()].copy()
    s = en["score"].astype(float)
    nps = en["scale"] == "nps"
    en["label"] = np.where(nps, np.where(s <= 6, "negative", np.where(s <= 8, "neutral", "positive")),
                           np.where(s <= 2, "negative", np.where(s <= 3, "neutral", "positive")))
    return en


@lru_cache(maxsize=1)
def _vader_labels():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia = SentimentIntensityAnalyzer()
    comp = np.array([sia.polarity_scores(t)["compound"] for t in _english_labelled()["text"]])
    return np.where(comp >= 0.05, "positive", np.where(comp <= -0.05, "negative", "neutral"))


@lru_cache(maxsize=1)
def _negative_terms():
    import warnings

    from .sentiment import distinctive_terms

    en = _english_labelled()
    neg = en[en["label"] == "negative"]
    with warnings.catch_warnings():        # touchpoints with a handful of complaints
        warnings.simplefilter("ignore", UserWarning)
        return distinctive_terms(neg, by="touchpoint", stop_words="en", ngram_range=(1, 1), top=10)


@lru_cache(maxsize=1)
def _pain_table():
    from .painpoints import pain_points

    ev, fb, _ = simulation()
    return pain_points((ev, fb), journey=_jm())


def _first_response_hours() -> pd.Series:
    ev = _events()
    c = (ev.loc[ev["touchpoint"] == "support_contact", ["customer_id", "ts"]]
         .drop_duplicates().sort_values("ts"))
    r = ev.loc[ev["touchpoint"] == "support_reply", ["customer_id", "ts"]].rename(columns={"ts": "rts"})
    j = pd.merge_asof(c, r.sort_values("rts"), left_on="ts", right_on="rts", by="customer_id",
                      direction="forward", allow_exact_matches=False)
    return ((j["rts"] - j["ts"]) / pd.Timedelta("1h")).dropna()


def _contacts_next() -> pd.DataFrame:
    ev = _events()
    c = ev.loc[ev["touchpoint"] == "support_contact", ["customer_id", "ts", "channel"]]
    c = c.sort_values(["customer_id", "ts", "channel"], kind="stable").reset_index(drop=True)
    g = c.groupby("customer_id")
    c["next_ts"], c["next_channel"] = g["ts"].shift(-1), g["channel"].shift(-1)
    c["repeat"] = (c["next_ts"] > c["ts"]) & (c["next_ts"] <= c["ts"] + SWITCH_WINDOW)
    c["switch"] = c["repeat"] & (c["next_channel"] != c["channel"])
    return c


# =========================================================================== notebook 1
_MOMENT_MSG = {
    "UMOT": ("reading someone else's review is research before buying: the reader's ZMOT. Writing "
             "one (review_written) is the writer's UMOT: one customer's UMOT is another's ZMOT"),
    "FMOT": ("the FMOT is the first contact with the offer itself (home page, product page, shelf, "
             "checkout); reading other people's reviews comes before it"),
    "SMOT": "the SMOT is living with the product after buying (delivery, use, support, returns)",
}


@_exercise("01-moment", 1, "text",
           "Which moment of truth does reading reviews (`review_read`) belong to: ZMOT, FMOT, SMOT or UMOT?")
def _j_moment(answer):
    a = _text(answer).upper()
    correct = _jm().moment_of("review_read")
    if a == correct:
        return True, f"correct: {correct}, research before buying"
    if a in _MOMENT_MSG:
        return False, _MOMENT_MSG[a]
    return False, f"answer one of {list(_jm().moment_ids)}"


@_answer_key("01-moment")
def _k_moment():
    return _jm().moment_of("review_read"), "JourneyMap.default().moment_of('review_read')"


def _umot_share_parts():
    ev, jm = _events(), _jm()
    umot = list(jm.moment("UMOT").touchpoints)
    everyone = ev["customer_id"].nunique()
    sharers = len(_customers_with(ev, umot))
    buyers = len(_customers_with(ev, [jm.conversion]))
    events_n = int(ev["touchpoint"].isin(umot).sum())
    return sharers, everyone, buyers, events_n


@_exercise("01-umot-share", 1, "fraction",
           "What share of all simulated customers reached the UMOT (any UMOT touchpoint)? "
           "A fraction between 0 and 1, 3 decimals.")
def _j_umot_share(answer):
    sharers, everyone, buyers, events_n = _umot_share_parts()
    return _numeric(answer, sharers / everyone, 0.0015, [
        (sharers / buyers, ("you divided by the buyers: the question asks for the share of *all* customers "
                           "(every customer in the events table)")),
        (events_n / everyone, ("you counted UMOT events, not customers: a customer who wrote a review and "
                              "answered a survey counts once")),
    ])


@_answer_key("01-umot-share")
def _k_umot_share():
    from .painpoints import circular_journey

    c = circular_journey(_events(), journey=_jm())
    return float(c.loc[c["measure"] == "reach_umot", "rate"].iloc[0]), \
        "circular_journey(events): the rate of 'reach_umot'"


def _circle_parts():
    ev, jm = _events(), _jm()
    umot = list(jm.moment("UMOT").touchpoints)
    early = list(jm.moment("ZMOT").touchpoints) + list(jm.moment("FMOT").touchpoints)
    first_u = ev[ev["touchpoint"].isin(umot)].groupby("customer_id")["ts"].min().rename("t_u")
    later = ev.merge(first_u.reset_index(), on="customer_id")
    later = later[later["ts"] > later["t_u"]]
    within = later[later["ts"] <= later["t_u"] + CIRCLE_WINDOW]
    back = within.loc[within["touchpoint"].isin(early), "customer_id"].nunique()
    back_any_time = later.loc[later["touchpoint"].isin(early), "customer_id"].nunique()
    any_event = within["customer_id"].nunique()
    return back, len(first_u), ev["customer_id"].nunique(), back_any_time, any_event


@_exercise("01-circle-return", 1, "fraction",
           "Of the customers with a UMOT event, what share came back to a ZMOT or FMOT touchpoint within "
           "90 days after their first UMOT event? A fraction, 3 decimals.")
def _j_circle(answer):
    back, n_u, everyone, back_any, any_event = _circle_parts()
    return _numeric(answer, back / n_u, 0.0015, [
        (back / everyone, "you divided by all customers: the base is the customers who reached the UMOT"),
        (back_any / n_u, "you counted returns at any time: only those within 90 days of the first UMOT event count"),
        (any_event / n_u, ("you counted any later event: only a new research (ZMOT) or offer (FMOT) contact "
                          "closes the circle; a delivery or another review does not")),
    ])


@_answer_key("01-circle-return")
def _k_circle():
    from .painpoints import circular_journey

    c = circular_journey(_events(), journey=_jm(), window="90D")
    return float(c.loc[c["measure"] == "return_to_zmot_fmot", "rate"].iloc[0]), \
        "circular_journey(events, window='90D'): the rate of 'return_to_zmot_fmot'"


def _as_map(answer):
    from .journey import JourneyMap

    if isinstance(answer, JourneyMap):
        return answer
    if isinstance(answer, dict):
        return JourneyMap.from_dict(answer)
    if isinstance(answer, (str, Path)):
        from .journey import load_yaml

        text = str(answer)
        if "\n" not in text and Path(text).exists():
            return JourneyMap.from_yaml(text)
        return JourneyMap.from_dict(load_yaml(text, source="the answer"))
    raise _AnswerError(f"give a JourneyMap (or its YAML text or dict), not {type(answer).__name__}")


@_exercise("01-journey-map", 1, "journey map",
           "Your brand adds a chatbot that answers customers' questions after the purchase. Add the "
           "touchpoint `chatbot` to the right moment of the default journey map and answer with the map.")
def _j_map(answer):
    try:
        jm = _as_map(answer)
    except _AnswerError:
        raise
    except Exception as err:  # noqa: BLE001 - a malformed map: say what the parser said
        raise _AnswerError(f"the map does not load: {err}") from None
    base = _jm()
    where = jm.moment_of("chatbot") if "chatbot" in jm.touchpoints else None
    right = base.moment_of("support_contact")
    if where is None:
        return False, "chatbot is not in any moment: add it to the touchpoints list of one moment"
    lost = sorted(set(base.touchpoints) - set(jm.touchpoints))
    if where == right and not lost and tuple(jm.funnel) == tuple(base.funnel):
        return True, (f"correct: chatbot is in {right} (phase {jm.moment(right).phase}), next to "
                      "support_contact; the rest of the map is unchanged")
    if where == right:
        return False, (f"chatbot is in the right moment ({right}), but you also changed the map: "
                       + (f"touchpoints missing: {lost}" if lost else "the funnel is different"))
    msgs = {"FMOT": "the FMOT is choosing and buying; a chatbot answering questions *after* the purchase "
                    "is support, living with the product",
            "ZMOT": "the ZMOT is research before buying; this chatbot serves customers who already bought",
            "UMOT": "the UMOT is sharing the experience (reviews, posts); a chatbot answering questions "
                    "is support"}
    return False, msgs.get(where, f"chatbot is in {where}") + f": it belongs with support_contact in {right}"


@_answer_key("01-journey-map")
def _k_map():
    from .journey import JourneyMap

    d = JourneyMap.default().to_dict()
    for m in d["moments"]:
        if m["id"] == "SMOT":
            m["touchpoints"] = list(m["touchpoints"]) + ["chatbot"]
    return JourneyMap.from_dict(d), "JourneyMap.default().to_dict(), 'chatbot' appended to the SMOT touchpoints"


# =========================================================================== notebook 2
@_exercise("02-step-conversion", 2, "fraction",
           "In the closed funnel with a 7-day window, what is the step conversion from add_to_cart to "
           "checkout? A fraction, 3 decimals.")
def _j_step(answer):
    ev, jm = _events(), _jm()
    counts = _closed_funnel_counts(ev, list(jm.funnel), FUNNEL_WINDOW)
    i = list(jm.funnel).index("checkout")
    correct = counts[i] / counts[i - 1]
    anyc = (ev.loc[ev["touchpoint"] == "checkout", "customer_id"].nunique()
            / ev.loc[ev["touchpoint"] == "add_to_cart", "customer_id"].nunique())
    return _numeric(answer, correct, 0.0015, [
        (counts[i] / counts[0], ("you divided by all visitors, not by those who reached the step "
                                "(add_to_cart): that is the overall rate at checkout")),
        (1 - correct, ("that is the share who dropped off at the step, the other side; the step conversion "
                      "is the share who continued")),
        (anyc, ("you counted every customer with a checkout event at any time: in a closed funnel a step "
               "counts only after the previous one and within 7 days of entering")),
    ])


@_answer_key("02-step-conversion")
def _k_step():
    from .funnel import funnel

    f = funnel(_events(), journey=_jm(), window="7D")
    return float(f.loc[f["touchpoint"] == "checkout", "step_rate"].iloc[0]), \
        "funnel(events, window='7D'): step_rate of checkout"


@_exercise("02-popup-odds-ratio", 2, "number",
           "In the drop-off model (covariate channel, exposure popup_shown), by how much does seeing the "
           "pop-up multiply the odds of leaving? The odds ratio, 2 decimals.")
def _j_popup(answer):
    s = _dropoff_fit().summary().set_index("term").loc["popup_shown"]
    orr, lo, hi = float(s["odds_ratio"]), float(s["ci_low"]), float(s["ci_high"])
    truth = simulation().truth.dropoff_effects.set_index("term").loc["popup_shown", "odds_ratio"]
    ok, msg = _numeric(answer, orr, 0.006, [
        (math.log(orr), "that is the model coefficient, on the log-odds scale: the odds ratio is exp(coefficient)"),
        (1 / orr, "you inverted it: that would be the odds of leaving *without* the pop-up relative to with it"),
        (100 * (orr - 1), "you gave the % increase of the odds: answer the multiplier (the odds ratio)", 1.0),
        (orr - 1, "you subtracted 1: an odds ratio of 2 means the odds are multiplied by 2, not increased by 2"),
    ], fmt="{:.2f}", percent=False)
    if ok:
        msg += f" (95% CI {lo:.2f}-{hi:.2f}; the simulation planted x{truth:g})"
    return ok, msg


@_answer_key("02-popup-odds-ratio")
def _k_popup():
    from .dropoff import DropoffModel

    res = DropoffModel(covariates=["channel"], exposures=["popup_shown"]).fit(_events())
    s = res.summary()
    return float(s.loc[s["term"] == "popup_shown", "odds_ratio"].iloc[0]), \
        "DropoffModel(covariates=['channel'], exposures=['popup_shown']).fit(events).summary()"


@_exercise("02-escape-route", 2, "text",
           "Escape routes from checkout: which touchpoint, seen on the way to checkout, do leavers see more "
           "often than continuers with the strongest evidence (lift above 1, smallest q-value)?")
def _j_escape(answer):
    a = _text(answer)
    er = _escape_checkout()
    lift = er.lift
    sig = lift[(lift["lift"] > 1) & (lift["q_value"] < 0.05)].sort_values(["q_value", "lift"],
                                                                         ascending=[True, False])
    if sig.empty:
        raise _AnswerError("no touchpoint has a significant lift in this data")
    correct = str(sig["touchpoint"].iloc[0])
    if a == correct:
        r = sig.iloc[0]
        return True, (f"correct: {correct}, seen by {r['share_leavers']:.0%} of leavers vs "
                      f"{r['share_continuers']:.0%} of continuers (lift {r['lift']:.2f})")
    if a in (er.step, er.next_step, "add_to_cart"):
        return False, (f"{a} is a funnel step itself (the step, the next or the previous one), left out of "
                       "the comparison: look at the other touchpoints seen on the way")
    row = lift[lift["touchpoint"] == a]
    if a == "popup_shown" and row.empty:
        return False, ("the pop-up raises leaving on the home page, but it is shown there, not on the way to "
                       "checkout, so it is not an escape route of this step")
    if a == "popup_shown":
        r = row.iloc[0]
        return False, (f"the pop-up raises leaving on the home page, but on the way to checkout leavers "
                       f"and continuers saw it alike (lift {r['lift']:.2f}, q={r['q_value']:.2g})")
    if not row.empty:
        r = row.iloc[0]
        return False, (f"{a} has lift {r['lift']:.2f} (q={r['q_value']:.2g}, seen by {r['share_leavers']:.0%} "
                       f"of leavers vs {r['share_continuers']:.0%} of continuers): the strongest evidence is "
                       "the smallest q-value among the touchpoints with a lift above 1")
    return False, f"{a!r} is not in the lift table: pick a touchpoint from escape_routes(...).lift"


@_answer_key("02-escape-route")
def _k_escape():
    from .paths import escape_routes

    er = escape_routes(_events(), step="checkout", window="7D")
    sig = er.lift[(er.lift["lift"] > 1) & (er.lift["q_value"] < 0.05)]
    return str(sig.sort_values("q_value")["touchpoint"].iloc[0]), \
        "escape_routes(events, step='checkout').lift: the smallest q_value among lift > 1"


# =========================================================================== notebook 3
@_exercise("03-nps", 3, "points",
           "What is the NPS of all simulated NPS answers? In points (-100..100), 1 decimal.")
def _j_nps(answer):
    s = _nps_answers()["score"].astype(float).to_numpy()
    correct = _nps_points(s)
    return _numeric(answer, correct, 0.06, [
        (100 * (np.mean(s >= 7) - np.mean(s <= 6)),
         "you counted the passives (7-8) as promoters: promoters score 9-10 only"),
        (correct / 100, "NPS is promoters% minus detractors%, on a -100..100 scale: you gave a fraction",
         0.0006),
        (float(s.mean()), ("that is the mean score (0-10): NPS is the % of promoters (9-10) minus the % of "
                          "detractors (0-6)"), 0.006),
        (100 * np.mean(s >= 9), "that is the % of promoters: subtract the % of detractors (0-6)"),
        (100 * (np.mean(s >= 9) - np.mean(s <= 5)), "detractors score 0-6: you left out the 6s"),
    ], fmt="{:.1f}", percent=False)


@_answer_key("03-nps")
def _k_nps():
    from . import kpis

    return float(kpis.nps(_feedback())["nps"].iloc[0]), "kpis.nps(feedback)['nps']"


@_exercise("03-nps-margin", 3, "points",
           f"The NPS of {NPS_MONTH} rests on about 80 answers. What is its 95% margin of error (half the "
           "width of the confidence interval), in points? 1 decimal.")
def _j_margin(answer):
    a = _nps_answers()
    s = a.loc[_month(a["ts"]) == NPS_MONTH, "score"].astype(float).to_numpy()
    se = _nps_se(s)
    z = 1.959964
    pp = np.mean(s >= 9)
    ok, msg = _numeric(answer, z * se, 0.06, [
        (2 * z * se, "that is the full width of the interval: the margin of error is half of it"),
        (se, "that is one standard error: the 95% margin is 1.96 standard errors"),
        (z * se / 100, "the margin is in NPS points (-100..100 scale): you gave a fraction", 0.0006),
        (z * 100 * math.sqrt(pp * (1 - pp) / len(s)),
         ("you used the promoters' share alone: the NPS error comes from promoters and detractors together, "
         "se = 100·sqrt((p_pro + p_det − (p_pro − p_det)²) / n)")),
    ], fmt="{:.1f}", percent=False)
    if ok:
        msg += f" points on n={len(s)}: a 4-point move is well inside the noise"
    return ok, msg


@_answer_key("03-nps-margin")
def _k_margin():
    from . import kpis

    t = kpis.nps(_feedback(), period="M")
    r = t[t["period"].dt.strftime("%Y-%m") == NPS_MONTH].iloc[0]
    return float((r["ci_high"] - r["ci_low"]) / 2), \
        f"kpis.nps(feedback, period='M'): (ci_high - ci_low) / 2 for {NPS_MONTH}"


@_exercise("03-nps-change", 3, "yes/no",
           "Take the largest NPS move between two consecutive months with at least 30 answers each. Is it a "
           "real change (significant at 5%)? True or False.")
def _j_change(answer):
    a = _bool(answer)
    m = _largest_move()
    lo, hi = m["ci"]
    detail = (f"{m['from']} -> {m['to']}: {m['diff']:+.1f} points, 95% CI of the change {lo:+.1f} to "
              f"{hi:+.1f}, p = {m['p_value']:.2f}, on {m['n_from']} and {m['n_to']} answers")
    if a == m["significant"]:
        return True, "correct: " + detail
    if a:
        return False, ("the interval of the change includes 0, so it is within noise: " + detail)
    return False, "the interval of the change excludes 0, so it is a real change: " + detail


@_answer_key("03-nps-change")
def _k_change():
    from . import kpis

    c = kpis.nps(_feedback(), period="M", compare_periods=True)
    c = c[(c["n"] >= 30) & (c["previous_n"] >= 30)]
    r = c.loc[c["diff"].abs().idxmax()]
    return bool(r["significant"]), "kpis.nps(feedback, period='M', compare_periods=True): the largest |diff|"


@_exercise("03-csat", 3, "fraction",
           "What is the CSAT (top-2-box: share of 4 and 5 stars) of the simulated star ratings? "
           "A fraction, 3 decimals.")
def _j_csat(answer):
    s = _stars().to_numpy()
    return _numeric(answer, float(np.mean(s >= 4)), 0.0015, [
        (float(s.mean()), "that is the mean star rating (1-5): the top-2-box is the share of 4 and 5", 0.006),
        (float(np.mean(s >= 5)), "you counted only the 5s (top-1-box): 4 stars are satisfied too"),
        (float(np.mean(s >= 3)), "you counted 3 stars as satisfied: 3 is the neutral middle"),
    ])


@_answer_key("03-csat")
def _k_csat():
    from . import kpis

    t = kpis.csat(_feedback(), scale="stars")
    return float(t.loc[t["metric"] == "top2_box", "value"].iloc[0]), \
        "kpis.csat(feedback, scale='stars'): value of metric 'top2_box'"


# =========================================================================== notebook 4
@_exercise("04-negative-share", 4, "fraction",
           "Reading each score as a sentiment class (NPS 0-6, stars 1-2: negative), what share of the "
           "simulated scored feedback is negative? A fraction, 3 decimals.")
def _j_negative(answer):
    fb = _feedback()
    f = fb[fb["score"].notna()]
    s = f["score"].astype(float)
    nps = f["scale"] == "nps"
    neg = np.where(nps, s <= 6, s <= 2)
    return _numeric(answer, float(neg.mean()), 0.0015, [
        (float(np.where(nps, s <= 6, s <= 3).mean()), "you counted 3 stars as negative: 3 stars is neutral"),
        (float(np.where(nps, s <= 8, s <= 2).mean()),
         "you counted the NPS passives (7-8) as negative: they are neutral"),
        (float((s[nps] <= 6).mean()), "you used the NPS answers only: the star ratings count too"),
    ])


@_answer_key("04-negative-share")
def _k_negative():
    from .sentiment import labels_from_scores

    fb = _feedback()
    f = fb[fb["score"].notna()]
    labels = labels_from_scores(f["score"], f["scale"])
    return float((labels == "negative").mean()), "labels_from_scores(score, scale) == 'negative', mean"


@_exercise("04-macro-f1", 4, "fraction",
           "How good is the lexicon (VADER) on the English simulated feedback, with the classes from the "
           "scores as truth? Its macro-F1, 3 decimals.")
def _j_f1(answer):
    from sklearn.metrics import accuracy_score, f1_score

    y, p = _english_labelled()["label"].to_numpy(), _vader_labels()
    return _numeric(answer, float(f1_score(y, p, average="macro")), 0.0015, [
        (float(accuracy_score(y, p)), ("that is the accuracy (share labelled right): macro-F1 averages the F1 "
                                      "of each class, so a rare class counts as much as a frequent one")),
        (float(f1_score(y, p, average="weighted")),
         "that is the F1 weighted by class size: macro-F1 gives every class the same weight"),
        (float(f1_score(y, p, labels=["negative", "positive"], average="macro")),
         "you left out the neutral class: macro-F1 averages all three"),
    ])


@_answer_key("04-macro-f1")
def _k_f1():
    from .sentiment import LexiconSentiment, labels_from_scores

    fb = _feedback()
    en = fb[(fb["language"] == "en") & fb["score"].notna() & fb["text"].notna()]
    ev = LexiconSentiment(language="en").evaluate(en["text"], labels_from_scores(en["score"], en["scale"]))
    return float(ev.macro_f1), "LexiconSentiment().evaluate(texts, labels_from_scores(...)).macro_f1"


@_exercise("04-distinctive-term", 4, "text",
           "In the negative English feedback, name one of the three words most distinctive of complaints "
           "about `registration_form` (against the complaints about other touchpoints).")
def _j_term(answer):
    a = _text(answer).lower()
    terms = _negative_terms()
    mine = terms[terms["touchpoint"] == "registration_form"].sort_values("z", ascending=False)
    top3 = list(mine["term"].head(3))
    if a in top3:
        r = mine[mine["term"] == a].iloc[0]
        return True, (f"correct: '{a}' is in {r['share_in_group']:.0%} of those complaints vs "
                      f"{r['share_elsewhere']:.0%} elsewhere (z = {r['z']:.1f}); the top three: {top3}")
    if a in set(mine["term"]):
        r = mine[mine["term"] == a].iloc[0]
        return False, (f"'{a}' is distinctive (z = {r['z']:.1f}) but not in the top three: {len(top3)} words "
                       "have a larger z")
    en = _english_labelled()
    neg = en[en["label"] == "negative"]
    has = neg["text"].str.lower().str.contains(rf"\b{re.escape(a)}\b", regex=True)
    if neg.loc[has, "touchpoint"].nunique() >= 3:
        return False, (f"'{a}' is common in complaints about {neg.loc[has, 'touchpoint'].nunique()} touchpoints "
                       "(an opener or closer), so it does not set registration apart: a distinctive word is "
                       "over-used *there* compared with elsewhere")
    other = terms[(terms["term"] == a) & (terms["touchpoint"] != "registration_form")]
    if len(other):
        return False, f"'{a}' is distinctive of the complaints about {other['touchpoint'].iloc[0]}, not registration"
    return False, f"'{a}' is not among the distinctive terms: look at distinctive_terms(...) for registration_form"


@_answer_key("04-distinctive-term")
def _k_term():
    import warnings

    from .sentiment import distinctive_terms, labels_from_scores

    fb = _feedback()
    en = fb[(fb["language"] == "en") & fb["score"].notna()]
    neg = en[labels_from_scores(en["score"], en["scale"]).to_numpy() == "negative"]
    with warnings.catch_warnings():        # touchpoints with a handful of complaints
        warnings.simplefilter("ignore", UserWarning)
        t = distinctive_terms(neg, by="touchpoint", stop_words="en", ngram_range=(1, 1), top=3)
    return str(t.loc[t["touchpoint"] == "registration_form", "term"].iloc[0]), \
        "distinctive_terms(negative English feedback, by='touchpoint', stop_words='en', ngram_range=(1, 1))"


# =========================================================================== notebook 5
@_exercise("05-normalised-score", 5, "points",
           "Pain points compare scores on one 0-100 scale. What is a 4-star rating on that scale?")
def _j_norm(answer):
    from .io import SCALES

    lo, hi = SCALES["stars"]
    correct = 100 * (4 - lo) / (hi - lo)
    return _numeric(answer, correct, 0.5, [
        (100 * 4 / hi, ("(4/5)·100 treats the scale as if it started at 0: stars start at 1, so "
                       "100·(4−1)/(5−1)")),
        (correct / 100, "on the 0-100 scale: you gave a fraction", 0.005),
    ], fmt="{:.0f}", percent=False)


@_answer_key("05-normalised-score")
def _k_norm():
    from .painpoints import normalised_score

    return float(normalised_score([4], ["stars"])[0]), "normalised_score([4], ['stars'])"


@_exercise("05-top-pain-point", 5, "text",
           "Which touchpoint is the top-ranked pain point of the simulated journey?")
def _j_top(answer):
    a = _text(answer)
    t = _pain_table().set_index("touchpoint")
    correct = t.loc[t["pain_point"], "rank"].idxmin()
    if a == correct:
        r = t.loc[a]
        return True, (f"correct: {a} ({r['moment']}), score {r['score_mean']:.0f} vs journey "
                      f"{_pain_table().attrs['baseline_score']:.0f}, odds of leaving x{r['dropoff_or']:.2f}")
    if a not in t.index:
        return False, f"{a!r} is not a touchpoint of the journey map"
    r = t.loc[a]
    if a == "popup_shown" or (pd.isna(r["score_mean"]) and pd.notna(r["dropoff_or"])):
        return False, (f"{a} costs conversions (odds of leaving x{r['dropoff_or']:.2f}), but customers do not "
                       "rate it: a pain point needs the voice too (a score significantly below the journey)")
    if bool(r["pain_point"]):
        return False, (f"{a} is a pain point, but it ranks {int(r['rank'])}: issues are ranked by value "
                       "at risk, and one that also makes customers leave comes first")
    if pd.isna(r["score_mean"]):
        return False, f"{a} has no feedback: nobody rated it, so its voice cannot be judged"
    return False, (f"{a} is not a pain point: its score {r['score_mean']:.0f} differs from the journey by "
                   f"{r['score_diff']:+.0f} (q = {r['score_q']:.2g})")


@_answer_key("05-top-pain-point")
def _k_top():
    from .painpoints import pain_points

    ev, fb, _ = simulation()
    t = pain_points((ev, fb), journey=_jm())
    t = t[t["pain_point"]]
    return str(t.sort_values("rank")["touchpoint"].iloc[0]), "pain_points((events, feedback)): the first pain point by rank"


@_exercise("05-value-at-risk", 5, "number",
           "What is the value at risk of `registration_form`: customers lost to it times the value per "
           "customer? In currency units, no decimals.")
def _j_var(answer):
    t = _pain_table()
    r = t.set_index("touchpoint").loc["registration_form"]
    v = float(t.attrs["value_per_customer"])
    orr, left = float(r["dropoff_or"]), float(r["left"])
    correct = left * (orr - 1) / orr * v
    return _numeric(answer, correct, max(1.0, 0.002 * correct), [
        (left * v, ("not everyone who left after the form left *because* of it: multiply by the attributable "
                   "fraction (OR − 1) / OR"), max(1.0, 0.002 * left * v)),
        (left * (orr - 1) * v, "the attributable fraction is (OR − 1) / OR, not OR − 1",
         max(1.0, 0.002 * left * (orr - 1) * v)),
        (left * (orr - 1) / orr, "that is the number of customers lost: multiply by the value per customer", 0.5),
    ], fmt="{:,.0f}", percent=False)


@_answer_key("05-value-at-risk")
def _k_var():
    from .painpoints import pain_points

    ev, fb, _ = simulation()
    t = pain_points((ev, fb), journey=_jm())
    return float(t.loc[t["touchpoint"] == "registration_form", "value_at_risk"].iloc[0]), \
        "pain_points((events, feedback)): value_at_risk of registration_form"


# =========================================================================== notebook 6
@_exercise("06-repurchase", 6, "fraction",
           "What share of the customers who bought bought again later (repurchase rate, no window)? "
           "A fraction, 3 decimals.")
def _j_repurchase(answer):
    ev = _events()
    b = ev.loc[ev["touchpoint"] == "purchase", ["customer_id", "ts"]]
    first = b.groupby("customer_id")["ts"].transform("min")
    again = b.loc[b["ts"] > first, "customer_id"].nunique()
    buyers = b["customer_id"].nunique()
    return _numeric(answer, again / buyers, 0.0015, [
        (again / ev["customer_id"].nunique(), "you divided by all customers: the base is the customers who bought"),
        (1 - again / buyers, "that is the share who did *not* buy again"),
    ])


@_answer_key("06-repurchase")
def _k_repurchase():
    from . import kpis

    return float(kpis.repurchase_rate(_events())["rate"].iloc[0]), "kpis.repurchase_rate(events)['rate']"


@_exercise("06-first-response", 6, "hours",
           "Care responsiveness: what is the median time from a support contact to the first reply, in "
           "hours? 1 decimal.")
def _j_response(answer):
    h = _first_response_hours()
    med = float(h.median())
    return _numeric(answer, med, 0.06, [
        (float(h.mean()), ("that is the mean: the question asks for the median (half the contacts are answered "
                          "faster), which long waits do not drag up")),
        (med * 60, "that is in minutes: give hours", 3.0),
        (med / 24, "that is in days: give hours", 0.003),
    ], fmt="{:.1f}", percent=False)


@_answer_key("06-first-response")
def _k_response():
    from . import kpis

    c = kpis.care_responsiveness(_events())
    p50 = c.loc[c["metric"] == "first_response", "p50"].iloc[0]
    return float(p50 / pd.Timedelta("1h")), "kpis.care_responsiveness(events): p50 of first_response, in hours"


@_exercise("06-cost-to-serve", 6, "number",
           "With the cost per touchpoint in `COSTS`, what is the cost to serve per customer (over every "
           "customer with an event)? 2 decimals.")
def _j_cost(answer):
    ev = _events()
    cost = ev["touchpoint"].map(COSTS).fillna(0.0).astype(float)
    per = cost.groupby(ev["customer_id"]).sum()
    total = float(per.sum())
    return _numeric(answer, float(per.mean()), 0.006, [
        (float(per[per > 0].mean()), ("you averaged over the customers who cost something: the cost to serve "
                                     "is spread over every customer served, including those who cost 0")),
        (total, "that is the total cost: divide by the number of customers", 0.5),
        (float(cost[cost > 0].mean()), "that is the mean cost per costed contact, not per customer"),
    ], fmt="{:.2f}", percent=False)


@_answer_key("06-cost-to-serve")
def _k_cost():
    from . import kpis

    return float(kpis.cost_to_serve(_events(), costs=COSTS)["value"].iloc[0]), \
        "kpis.cost_to_serve(events, costs=COSTS)['value']"


@_exercise("06-channel-switching", 6, "fraction",
           "Of all support contacts, what share is followed within 7 days by the same customer's next contact "
           "on a different channel (channel switching)? A fraction, 3 decimals.")
def _j_switch(answer):
    c = _contacts_next()
    return _numeric(answer, float(c["switch"].mean()), 0.0015, [
        (float(c["repeat"].mean()), ("you counted every repeat contact: switching means the next contact is on "
                                    "*another* channel")),
        (float(c["switch"].sum() / c["customer_id"].nunique()),
         "you divided by customers: the base is the contacts"),
        (float(c.loc[c["repeat"], "switch"].mean()),
         "you divided by the repeated contacts: the base is all contacts"),
    ])


@_answer_key("06-channel-switching")
def _k_switch():
    from . import kpis

    return float(kpis.channel_switching(_events(), window="7D")["rate"].iloc[0]), \
        "kpis.channel_switching(events, window='7D')['rate']"


# =========================================================================== glossary
#: (Italian term, Italian definition, English term)
_GLOSSARY = [
    ("customer journey (percorso del cliente)",
     ("L'insieme dei contatti di un cliente con il marchio, su tutti i canali, prima, durante e dopo "
     "l'acquisto. Non è una linea retta: si esce, si ritorna, si cambia canale."), "customer journey"),
    ("touchpoint (punto di contatto)",
     ("Un singolo contatto tra cliente e marchio: una pagina vista, una telefonata, una consegna, una "
     "recensione."), "touchpoint"),
    ("canale", "Il mezzo del contatto: sito web, app, negozio, call center, e-mail, social.", "channel"),
    ("fasi prima / durante / dopo l'acquisto",
     "Il momento del percorso in cui cade un touchpoint rispetto all'acquisto.",
     "before / during / after purchase"),
    ("momento della verità (MOT)",
     "Un momento in cui il cliente giudica il marchio; il percorso si raggruppa in quattro momenti.",
     "moment of truth (MOT)"),
    ("momento zero della verità (ZMOT)",
     "La ricerca prima dell'acquisto: ricerche online, recensioni lette, social, pubblicità.",
     "zero moment of truth (ZMOT)"),
    ("primo momento della verità (FMOT)",
     "Il primo contatto con il prodotto o l'offerta: pagina prodotto, scaffale, carrello, cassa.",
     "first moment of truth (FMOT)"),
    ("secondo momento della verità (SMOT)",
     "Vivere con il prodotto: consegna, uso, assistenza, resi.", "second moment of truth (SMOT)"),
    ("momento ultimo della verità (UMOT)",
     ("Il cliente condivide l'esperienza (recensione, post, valutazione). L'UMOT di un cliente è lo ZMOT "
     "di un altro: il percorso è un cerchio, non un imbuto."), "ultimate moment of truth (UMOT)"),
    ("mappa del percorso (journey.yml)",
     ("Il modello del percorso del team: momenti, fasi, touchpoint, passi del funnel, finestra di "
     "conversione."), "journey map"),
    ("funnel (imbuto di conversione)",
     ("La sequenza di passi verso l'acquisto (home page, pagina prodotto, carrello, cassa, acquisto) e "
     "quanti clienti arrivano a ciascuno."), "funnel"),
    ("funnel chiuso", "Conta un passo solo se il cliente ha fatto i precedenti, in ordine e entro la finestra.",
     "closed funnel"),
    ("finestra di conversione",
     "Il tempo concesso, dall'ingresso nel funnel, per arrivare all'acquisto (per esempio 7 giorni).",
     "conversion window"),
    ("tasso di conversione",
     "Quota di clienti entrati nel funnel che arrivano all'acquisto entro la finestra.", "conversion rate"),
    ("conversione di passo",
     ("Quota di chi ha raggiunto un passo che raggiunge anche il passo successivo: si divide per chi è "
     "arrivato al passo, non per tutti i visitatori."), "step conversion"),
    ("abbandono", ("Il cliente lascia il funnel a un passo senza arrivare al successivo; è l'altra faccia "
     "della conversione."), "drop-off"),
    ("via di fuga",
     "Come e dopo che cosa un cliente abbandona: l'ultimo touchpoint prima di uscire e dove va invece.",
     "escape route"),
    ("lift", ("Rapporto tra la quota di chi abbandona e la quota di chi prosegue che hanno visto un "
     "touchpoint: sopra 1, lo vedono di più quelli che se ne vanno."), "lift"),
    ("odds ratio (rapporto di quote)",
     ("Di quanto un fattore moltiplica le quote (odds) di abbandonare: 2 = il doppio, 1 = nessun effetto, "
     "0,5 = la metà."), "odds ratio"),
    ("intervallo di confidenza",
     ("L'intervallo di valori compatibili con i dati (di solito al 95%): più risposte, intervallo più "
     "stretto."), "confidence interval"),
    ("margine di errore", "Metà dell'ampiezza dell'intervallo di confidenza.", "margin of error"),
    ("significatività statistica",
     ("Una differenza è significativa quando è difficile spiegarla con il solo caso (p-value sotto "
     "0,05); altrimenti è rumore."), "statistical significance"),
    ("Net Promoter Score (NPS)",
     ("Percentuale di promotori (voto 9-10) meno percentuale di detrattori (0-6) alla domanda "
     "\"quanto ci consiglieresti?\" (0-10); va da -100 a +100. I passivi (7-8) contano solo nel totale."),
     "Net Promoter Score (NPS)"),
    ("promotori / passivi / detrattori", "Chi vota 9-10 / 7-8 / 0-6 nella domanda NPS.",
     "promoters / passives / detractors"),
    ("soddisfazione del cliente (CSAT)",
     "Voto di soddisfazione su scala 1-5; di solito la quota di 4 e 5 (top-2-box).",
     "customer satisfaction (CSAT)"),
    ("top-2-box", "Quota di risposte nelle due caselle migliori della scala (4-5 su 1-5).", "top-2-box"),
    ("Customer Effort Score (CES)",
     "Quanto è stato facile per il cliente (\"l'azienda me l'ha reso facile\", 1-7, 7 = facilissimo).",
     "customer effort score (CES)"),
    ("voce del cliente", "Tutto ciò che il cliente dice: sondaggi, recensioni, ticket, post.",
     "voice of the customer (VoC)"),
    ("sentiment", "Il tono di un testo: negativo, neutro o positivo.", "sentiment"),
    ("modello di sentiment", ("Un classificatore che legge il testo e ne stima il sentiment; qui è addestrato "
     "sui voti che i clienti stessi hanno dato."), "sentiment model"),
    ("lessico (VADER)", ("Metodo senza addestramento che somma il peso di parole positive e negative; utile "
     "per partire, solo in inglese."), "lexicon"),
    ("accuratezza", "Quota di testi classificati correttamente.", "accuracy"),
    ("macro-F1",
     "Media semplice dell'F1 di ogni classe: una classe rara pesa quanto una frequente.", "macro-F1"),
    ("precisione / richiamo",
     ("Precisione: dei testi assegnati a una classe, quota giusta. Richiamo: dei testi di una classe, quota "
     "trovata."), "precision / recall"),
    ("termini distintivi",
     "Le parole che un gruppo (per esempio i reclami su un touchpoint) usa molto più degli altri.",
     "distinctive terms"),
    ("pain point (punto critico)",
     ("Un touchpoint dove la voce del cliente è significativamente peggiore della media del percorso e, "
     "se misurabile, l'abbandono è più alto."), "pain point"),
    ("curva emotiva", "Il punteggio medio della voce del cliente lungo il percorso, touchpoint per touchpoint.",
     "emotional curve"),
    ("punteggio normalizzato 0-100",
     "Ogni voto riportato su 0-100 dentro la sua scala: 100·(voto − minimo)/(massimo − minimo).",
     "normalised score"),
    ("valore a rischio",
     ("Clienti persi a causa di un touchpoint (chi è uscito dopo × (OR − 1)/OR) per il valore medio di un "
     "cliente."), "value at risk"),
    ("frazione attribuibile",
     "Quota di chi è uscito che è uscito a causa del fattore: (OR − 1)/OR.", "attributable fraction"),
    ("matrice delle priorità",
     ("Importanza (clienti raggiunti) per prestazione (punteggio): in basso a destra ciò che va sistemato "
     "per primo."), "priority matrix (importance × performance)"),
    ("fidelizzazione (retention)",
     "Quota di clienti di una coorte che tornano attivi (per esempio ricomprano) nei periodi successivi.",
     "customer retention"),
    ("tasso di riacquisto", "Quota di chi ha comprato che compra di nuovo.", "repurchase rate"),
    ("reattività del servizio clienti",
     "Tempo dalla richiesta del cliente alla prima risposta e alla risoluzione.",
     "customer-care responsiveness"),
    ("costo di servizio", "Costo medio per cliente dei contatti serviti (chiamate, negozio, resi...).",
     "cost to serve"),
    ("upsell", "Quota di clienti che dopo il primo acquisto spendono di più o passano a un'offerta superiore.",
     "upsell rate"),
    ("cambio di canale",
     ("Il cliente ripete la stessa richiesta su un altro canale entro pochi giorni: segno che il primo "
     "canale non ha risolto."), "channel switching"),
    ("coorte", "Gruppo di clienti con lo stesso mese (o periodo) di primo acquisto.", "cohort"),
    ("mediana", "Il valore centrale: metà dei casi sta sotto, metà sopra; non risente dei valori estremi.",
     "median"),
]


def glossary() -> pd.DataFrame:
    """The Italian glossary of the CX terms of the curriculum: ``termine``, ``definizione``,
    ``english``, in the order the lessons meet them."""
    return pd.DataFrame(_GLOSSARY, columns=["termine", "definizione", "english"])


def glossary_markdown() -> str:
    """The glossary as the Markdown of ``notebooks/training/GLOSSARIO.md``."""
    lines = ["# Glossario dei termini CX", "",
             ("I termini del corso di formazione cxlab (notebook `notebooks/training/01`-`06`), con una breve "
             "definizione e il termine inglese usato nei notebook e nei report."),
             ("Generato da `cxlab.training.glossary()`: per modificarlo, modificare il pacchetto e rigenerare "
             "con `cxlab.training.write_glossary()`."), "",
             "| termine | definizione | inglese |", "|---|---|---|"]
    for r in glossary().itertuples(index=False):
        lines.append(f"| **{r.termine}** | {r.definizione} | {r.english} |")
    return "\n".join(lines) + "\n"


def write_glossary(path=None) -> Path:
    """Write :func:`glossary_markdown` (default ``notebooks/training/GLOSSARIO.md``)."""
    path = Path(path) if path is not None else repo_root() / "notebooks" / "training" / "GLOSSARIO.md"
    path.write_text(glossary_markdown(), encoding="utf-8")
    return path
