"""Pain points per moment of truth: where the journey hurts, what customers said there, and
who left after it; the emotional curve; the priority matrix; the circular journey.

>>> table = pain_points(ws)                       # doctest: +SKIP
>>> table[table.pain_point]                       # doctest: +SKIP
>>> plot_emotion_curve(table)                     # doctest: +SKIP

Definitions (one row per touchpoint of the journey map, in map order)
--------------------------------------------------------------------
reached
    Customers with at least one event at the touchpoint.
score (voice)
    Feedback given at the touchpoint, each score put on a 0-100 scale within its own scale
    (``100 * (score - low) / (high - low)``: NPS 0-10, CSAT and stars 1-5, CES 1-7 with 7 =
    easiest), so NPS, CSAT and stars can be averaged together. ``score_mean`` with a t
    interval; ``share_negative``: feedback in the negative class of its scale
    (:data:`cxlab.io.SCORE_CLASSES`: NPS 0-6, stars/CSAT 1-2, CES 1-3), Wilson interval.
    ``score_diff``: ``score_mean`` minus the mean of all feedback given elsewhere in the
    journey (the baseline), Welch t-test ``score_p``, Benjamini-Hochberg ``score_q`` over
    the touchpoints tested.
sentiment (text)
    ``sentiment_mean``: mean text sentiment (P(positive) - P(negative), -1..1) of the
    touchpoint's verbatims with a t interval, scored by ``sentiment_model`` (by default a
    :class:`cxlab.sentiment.SentimentModel` with word features, fitted on this feedback's
    own scores); reads the voice of text-only feedback too.
drop-off (behaviour)
    For the journey map's ``exposures:`` when it lists them, else the touchpoints outside the
    funnel seen before conversion (:func:`exposure_candidates`: those of the moments up to the
    one holding the conversion, e.g. ZMOT/FMOT touchpoints such as a pop-up or a registration
    form): the odds ratio of leaving the funnel once the
    touchpoint has been seen, from one :class:`cxlab.dropoff.DropoffModel` with every such
    touchpoint as an exposure, the channel as covariate and one baseline per step, so each
    odds ratio is adjusted for the others and for where in the funnel it was seen
    (``dropoff_or`` with its interval, ``dropoff_p``, BH ``dropoff_q``). A term the model cannot
    pin down once the others are in (separation, :func:`separated_terms`) is left out and the
    model refitted without it: its touchpoint gets no odds ratio. ``left_after``: of
    the customers who reached the touchpoint before converting, the share who never
    converted (Wilson interval). Funnel steps themselves: ``left_after`` is the share who
    reached the step and not the next one (the funnel's complement of the step rate).
priority
    ``customers_lost``: customers who left after the touchpoint times the attributable
    fraction ``(OR - 1) / OR`` (the odds ratio standing in for the risk ratio), for
    touchpoints whose odds ratio is above 1; ``value_at_risk`` = ``customers_lost x
    value_per_customer`` (by default the mean value of conversion events, else 1, i.e. in
    customers).
pain point
    ``pain_point`` is True when the voice is significantly worse than the journey baseline
    (``score_diff < 0`` and ``score_q < alpha``) and, where the drop-off model measures the
    touchpoint, leaving is significantly more likely (``dropoff_or > 1`` and ``dropoff_q <
    alpha``). Feedback with text but no scores (reviews, posts, tickets) is judged by its
    text sentiment instead: ``sentiment_diff < 0`` and ``sentiment_q < alpha`` (Welch test
    against the other touchpoints' text, BH q-values). ``flag`` says which evidence there is: ``"voice and behaviour"``, ``"voice"``,
    ``"behaviour"`` or ``""``.
rank
    One priority for every issue, whatever its evidence: the flagged touchpoints whose
    customers lost can be measured come first, by value at risk (customers lost when there
    is no order value), so a pop-up that loses customers without anyone complaining ranks
    above a form that both loses fewer and is rated badly; then flagged touchpoints whose
    effect on leaving is not measured (voice only), by how much worse their score is than
    the baseline; then every other touchpoint the same way.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._engine import as_table
from .exceptions import did_you_mean
from .io import SCALES, in_score_class
from .journey import JourneyMap
from .stats import bh_qvalues, wilson_ci

__all__ = ["pain_points", "mean_order_value", "exposure_candidates", "estimable_exposures", "independent_terms", "separated_terms",
           "fit_voice_model", "emotion_curve",
           "plot_emotion_curve", "plot_priority_matrix", "circular_journey",
           "normalised_score"]

_MOMENT_COLOURS = {"ZMOT": "#dbe9f6", "FMOT": "#fde9d9", "SMOT": "#e2f0d9", "UMOT": "#ece2f0"}


def normalised_score(score, scale) -> np.ndarray:
    """Scores on a 0-100 scale within each row's own scale (NaN for unknown scales)."""
    score = np.asarray(score, dtype="float64")
    if isinstance(scale, str):                     # one scale for every score
        scale = [scale] * score.size
    scale = pd.Series(np.asarray(scale, dtype=object).ravel()).astype(str).str.lower().to_numpy().reshape(score.shape)
    out = np.full(score.shape, np.nan)
    for name, (lo, hi) in SCALES.items():
        m = scale == name
        out[m] = 100 * (score[m] - lo) / (hi - lo)
    return out


def _mean_ci(x: pd.Series, alpha: float):
    from scipy import stats

    x = x.dropna()
    n = len(x)
    if n == 0:
        return np.nan, np.nan, np.nan
    m = float(x.mean())
    if n < 2:
        return m, np.nan, np.nan
    half = stats.t.ppf(1 - alpha / 2, n - 1) * float(x.std(ddof=1)) / np.sqrt(n)
    return m, m - half, m + half


def _welch(a: pd.Series, b: pd.Series) -> float:
    from scipy import stats

    a, b = a.dropna(), b.dropna()
    if len(a) < 2 or len(b) < 2:
        return np.nan
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _frames(data, feedback):
    """(events Ibis table, feedback DataFrame or None) from a Workspace or frames."""
    if hasattr(data, "events") and callable(data.events):
        events = data.events()
        if feedback is None and hasattr(data, "feedback"):
            feedback = data.feedback()
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        events, feedback = data
    else:
        events = data
    t = None if events is None else as_table(events)
    if t is None and feedback is None:
        raise ValueError("pain_points needs events, feedback or both (a Workspace gives both)")
    if feedback is not None and not isinstance(feedback, pd.DataFrame):
        feedback = feedback.to_pandas()
    return t, feedback


def fit_voice_model(feedback: pd.DataFrame):
    """The default text-sentiment model of :func:`pain_points`: a word-feature
    :class:`cxlab.sentiment.SentimentModel` fitted on the feedback's own scored verbatims, or
    None when there are fewer than 50 of them. Fit it once and pass it as
    ``sentiment_model=`` to score several selections of the same feedback alike."""
    if "text" not in feedback.columns or "score" not in feedback.columns or "scale" not in feedback.columns:
        return None
    has_text = feedback["text"].notna() & (feedback["text"].astype(str).str.strip() != "")
    rated = feedback[has_text & feedback["score"].notna()]
    if len(rated) < 50 or rated["scale"].nunique() == 0:
        return None
    from .sentiment import SentimentModel

    try:
        return SentimentModel(char_ngrams=None).fit(rated)
    except ValueError:
        return None


def _text_sentiment(feedback: pd.DataFrame, model):
    """Text sentiment per feedback row (NaN without text), or None."""
    if model is None or "text" not in feedback.columns or feedback["text"].notna().sum() == 0:
        return None
    has_text = feedback["text"].notna() & (feedback["text"].astype(str).str.strip() != "")
    if isinstance(model, str) and model == "fit":
        model = fit_voice_model(feedback)
        if model is None:
            return None
    out = pd.Series(np.nan, index=feedback.index)
    if has_text.any():
        out[has_text] = model.predict(feedback.loc[has_text, "text"].astype(str).tolist())["score"].to_numpy()
    return out


def pain_points(data, *, journey=None, feedback=None, segment=None, period=None, alpha: float = 0.05,
                sentiment_model="fit", value_per_customer=None, window=None) -> pd.DataFrame:
    """Pain points per moment of truth and touchpoint: voice, behaviour, significance, priority.

    Parameters
    ----------
    data : Workspace, events (DataFrame / Ibis table), or a pair ``(events, feedback)``
    journey : JourneyMap, path or None (the default map)
    feedback : the feedback table when ``data`` is events only
    segment : str, optional
        An events column (e.g. ``"segment"``, ``"device"``): one block of rows per level,
        each computed on that level's customers (feedback joined by ``customer_id``). Text
        sentiment of every level comes from one model (the one given, or one fitted on all
        the rated feedback), so the levels' scores are on one scale.
    period : (start, end), optional
        Keep events and feedback with ``start <= ts < end`` (dates or timestamps, UTC).
    alpha : float
        Significance level for intervals, flags and the false-discovery rate.
    sentiment_model : "fit" (default), a fitted model, or None
        How verbatims are scored (see the module docstring); None skips text sentiment.
    value_per_customer : float, optional
        Value of one lost customer for ``value_at_risk``.
    window : duration, optional
        Conversion window of the drop-off model (default: the journey map's).

    Returns one row per touchpoint (per segment level) with the columns defined in the
    module docstring, in journey-map order, plus ``rank``; ``attrs`` carry the baseline
    score and the drop-off model's summary.
    """
    if not 0 < float(alpha) < 1:
        raise ValueError(f"alpha={alpha!r} must be between 0 and 1 (e.g. 0.05)")
    jm = JourneyMap.coerce(journey)
    t, fb = _frames(data, feedback)
    if period is not None:
        try:
            start, end = (pd.Timestamp(p, tz="UTC") if pd.Timestamp(p).tzinfo is None else pd.Timestamp(p)
                          for p in period)
        except (TypeError, ValueError) as err:
            raise ValueError(f"period={period!r} must be (start, end) dates: {err}") from None
        if t is not None:
            t = t.filter((t.ts >= start) & (t.ts < end))
        if fb is not None:
            fb = fb[(fb["ts"] >= start) & (fb["ts"] < end)]
    if segment is not None and isinstance(sentiment_model, str) and sentiment_model == "fit" and fb is not None:
        # one model for every level, fitted on all the rated feedback: segment scores compare
        sentiment_model = fit_voice_model(fb)
    if segment is not None and t is None:
        if segment not in fb.columns:
            raise ValueError(f"segment={segment!r} is not a column of the feedback"
                             + did_you_mean(segment, fb.columns))
        blocks = [_pain_points(None, fb[fb[segment] == lv], jm, alpha, sentiment_model, value_per_customer,
                               window).assign(**{segment: lv}) for lv in sorted(fb[segment].dropna().unique())]
        out = pd.concat(blocks, ignore_index=True)
        return out[[segment] + [c for c in out.columns if c != segment]]
    if segment is not None:
        if segment not in t.columns:
            raise ValueError(f"segment={segment!r} is not a column of events" + did_you_mean(segment, t.columns)
                             + f"; columns: {list(t.columns)}")
        levels = sorted(v for v in t.select(segment).distinct().to_pandas()[segment].dropna().tolist())
        blocks = []
        for lv in levels:
            ts = t.filter(t[segment] == lv)
            fs = None
            if fb is not None and "customer_id" in fb.columns:
                ids = set(ts.select("customer_id").distinct().to_pandas()["customer_id"])
                fs = fb[fb["customer_id"].isin(ids)]
            block = _pain_points(ts, fs, jm, alpha, sentiment_model, value_per_customer, window)
            blocks.append(block.assign(**{segment: lv}))
        out = pd.concat(blocks, ignore_index=True)
        return out[[segment] + [c for c in out.columns if c != segment]]
    return _pain_points(t, fb, jm, alpha, sentiment_model, value_per_customer, window)


def exposure_candidates(journey=None) -> list[str]:
    """The touchpoints whose link with leaving the funnel is worth examining.

    Those outside the funnel (and not the conversion) in the moments up to the one holding
    the conversion touchpoint, in journey-map order: what customers meet on the way to
    converting (a pop-up, a form, a call), as opposed to what follows it (delivery, support,
    reviews). :func:`pain_points` and the reports examine these when the map has no
    ``exposures:`` key.

    Parameters
    ----------
    journey : JourneyMap, path or None (the default map)

    Returns
    -------
    list of str

    Examples
    --------
    >>> exposure_candidates()[:2]
    ['search', 'ad_click']
    """
    jm = JourneyMap.coerce(journey)
    steps = set(jm.funnel) | {jm.conversion}
    ids = list(jm.moment_ids)
    owner = jm.moment_of(jm.conversion) if jm.conversion in jm.touchpoints else ids[-1]
    early = ids[: ids.index(owner) + 1]
    return [x for m in early for x in jm.moment(m).touchpoints if x not in steps]


def estimable_exposures(events, *, journey=None, exposures, window=None) -> dict[str, list[str]]:
    """For each exposure, the funnel steps at which its link with leaving can be estimated.

    A step qualifies when some but not all of the customers at the step have seen the
    exposure (in the sense of :func:`cxlab.dropoff.person_steps`) and, among those who have,
    some left and some continued: elsewhere the odds ratio is undefined or infinite (a
    touchpoint only ever seen by those who continue, or only by those who leave).

    Parameters
    ----------
    events : Workspace, Ibis table or DataFrame
    journey : JourneyMap, path or None (the default map)
    exposures : list of str
        Touchpoints of the map outside the funnel (e.g. :func:`exposure_candidates`).
    window : duration, optional
        Attempt length (default: the map's conversion window).

    Returns
    -------
    dict
        ``{exposure: [steps in funnel order]}`` for the exposures estimable at one step or
        more, in the order given; the others are left out.
    """
    from .dropoff import person_steps

    jm = JourneyMap.coerce(journey)
    candidates = list(exposures)
    if not candidates:
        return {}
    ps = person_steps(as_table(events), journey=jm, exposures=candidates, window=window)
    agg = ps.group_by("step").aggregate(
        _n=ps.count(), **{f"_e{i}": ps[x].sum() for i, x in enumerate(candidates)},
        **{f"_l{i}": (ps[x] * ps.left).sum() for i, x in enumerate(candidates)}).to_pandas()
    out = {}
    for i, x in enumerate(candidates):
        ok = agg[(agg[f"_e{i}"] > 0) & (agg[f"_e{i}"] < agg["_n"]) & (agg[f"_l{i}"] > 0)
                 & (agg[f"_l{i}"] < agg[f"_e{i}"])]
        steps_x = [s for s in jm.funnel if s in set(ok["step"])]
        if steps_x:
            out[x] = steps_x
    return out


def independent_terms(events, *, journey: JourneyMap, terms: dict, covariates=(), window=None
                      ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Drop exposure-step terms that move in lockstep with terms kept before them.

    Real logs record several touchpoints together (an offer created, selected and sent in
    one go): each is estimable alone, but together their columns are collinear and no model
    can tell them apart. Terms are kept in the order given (map order), each only when it
    raises the rank of the design (steps, covariate levels, the terms kept so far) on the
    collapsed person-step patterns.

    Returns
    -------
    (kept, left_out)
        ``kept``: ``{exposure: [steps]}``; ``left_out``: ``{exposure: reason}`` for the
        exposures with no step left.
    """
    from .dropoff import person_steps

    if not terms:
        return {}, {}
    exps = list(terms)
    ps = person_steps(events, journey=journey, covariates=list(covariates), exposures=exps, window=window)
    pat = ps.group_by(["step", *covariates, *exps]).aggregate(n=ps.count()).to_pandas()
    cols = [(pat["step"] == s).to_numpy(float) for s in pat["step"].unique()]
    for c in covariates:
        levels = pat.groupby(c)["n"].sum().sort_values(ascending=False).index[1:]
        cols += [(pat[c] == lv).to_numpy(float) for lv in levels]
    rank = np.linalg.matrix_rank(np.column_stack(cols))
    kept = {}
    for x, steps in terms.items():
        for s in steps:
            col = (pat[x].to_numpy(float) * (pat["step"] == s).to_numpy(float))
            r = np.linalg.matrix_rank(np.column_stack(cols + [col]))
            if r > rank:
                cols.append(col)
                rank = r
                kept.setdefault(x, []).append(s)
    left_out = {x: "always seen together with touchpoints examined before it" for x in terms if x not in kept}
    return kept, left_out



MAX_LOG_SE = 5.0  # a log-odds standard error above this: the odds ratio is not estimated (separation)


def separated_terms(model, terms: dict) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Drop-off terms whose odds ratio a fit could not pin down.

    A term ``exposure:step`` whose log-odds standard error is above :data:`MAX_LOG_SE` has an
    interval from 0 to infinity: in the model with the other terms, everyone exposed at that
    step went on, or everyone left (separation), and its odds ratio (1e-13 or 1e9) means
    nothing.

    Parameters
    ----------
    model : DropoffResult
        A fitted :class:`cxlab.dropoff.DropoffModel` (its ``bse`` by term).
    terms : dict
        Exposure -> the steps it was fitted at.

    Returns
    -------
    (kept, reasons)
        The terms left, and for each exposure with no step left one plain reason.
    """
    se = model.bse
    kept = {}
    for x, steps in terms.items():
        ok = [s for s in steps if np.isfinite(se.get(f"{x}:{s}", np.inf)) and se[f"{x}:{s}"] <= MAX_LOG_SE]
        if ok:
            kept[x] = ok
    if kept == terms:
        return terms, {}
    return kept, {x: "their odds cannot be estimated once the other touchpoints are accounted for (all who "
                     "saw them went on, or all left)" for x in terms if x not in kept}


def _behaviour(rows: pd.DataFrame, t, jm: JourneyMap, alpha, window):
    """Drop-off columns: step-specific odds ratios from the drop-off model, left after."""
    from .funnel import funnel

    tps = list(jm.touchpoints)
    steps = list(jm.funnel)
    conv = jm.conversion
    chosen = list(jm.exposures) or exposure_candidates(jm)   # the map's choice first, as the reports
    candidates = [x for x in chosen if rows.loc[rows.touchpoint == x, "reached"].iloc[0] > 0]
    rows["dropoff_or"] = rows["dropoff_ci_low"] = rows["dropoff_ci_high"] = rows["dropoff_p"] = np.nan
    rows["dropoff_step"] = None
    rows["dropoff_q"] = np.nan
    model_summary = None
    covs = ["channel"] if "channel" in t.columns else []
    terms = estimable_exposures(t, journey=jm, exposures=candidates, window=window)
    terms, _ = independent_terms(t, journey=jm, terms=terms, covariates=covs, window=window)
    if terms:
        from .dropoff import DropoffModel

        def fit(terms):
            spec = dict(exposures=list(terms), interactions=terms, alpha=alpha)
            try:
                return DropoffModel(covariates=covs, **spec).fit(t, journey=jm, window=window)
            except ValueError:           # e.g. a single channel: no covariate to adjust for
                return DropoffModel(**spec).fit(t, journey=jm, window=window)

        res = fit(terms)
        kept, _ = separated_terms(res, terms)
        if kept != terms:            # separation: refit without the terms that cannot be estimated
            terms = kept
            res = fit(terms) if terms else None
    if terms:
        model_summary = res.summary()
        model_summary["q_all"] = bh_qvalues(model_summary["p_value"])
        for x, steps_x in terms.items():
            cand = model_summary[model_summary["term"].isin([f"{x}:{st}" for st in steps_x])]
            if cand.empty:
                continue
            sig = cand[(cand["q_all"] < alpha) & (cand["odds_ratio"] > 1)]
            pick = sig.loc[sig["odds_ratio"].idxmax()] if len(sig) else cand.loc[cand["p_value"].idxmin()]
            m = rows.touchpoint == x
            rows.loc[m, "dropoff_or"] = pick["odds_ratio"]
            rows.loc[m, "dropoff_ci_low"] = pick["ci_low"]
            rows.loc[m, "dropoff_ci_high"] = pick["ci_high"]
            rows.loc[m, "dropoff_p"] = pick["p_value"]
            rows.loc[m, "dropoff_q"] = pick["q_all"]
            rows.loc[m, "dropoff_step"] = pick["term"].split(":", 1)[1]

    # left after: customers who reached the touchpoint before converting, share never converting
    firsts = (t.filter(t.touchpoint.isin(tps)).group_by(["customer_id", "touchpoint"])
              .aggregate(_first=t.ts.min()))
    conv_t = t.filter(t.touchpoint == conv).group_by("customer_id").aggregate(_conv=t.ts.min())
    j = firsts.left_join(conv_t, "customer_id")
    in_play = j.filter(j._conv.isnull() | (j._conv >= j._first))
    left = in_play.group_by("touchpoint").aggregate(at_risk=in_play.count(),
                                                     left=in_play._conv.isnull().sum()).to_pandas()
    rows = rows.merge(left, on="touchpoint", how="left")
    f_tab = funnel(t, journey=jm, window=window if window is not None else jm.conversion_window, alpha=alpha)
    for i, st in enumerate(steps[:-1]):
        n_here = int(f_tab["n"].iloc[i])
        n_next = int(f_tab["n"].iloc[i + 1])
        m = rows.touchpoint == st
        rows.loc[m, "at_risk"], rows.loc[m, "left"] = n_here, n_here - n_next
    rows["at_risk"] = rows["at_risk"].fillna(0).astype("int64")
    rows["left"] = rows["left"].fillna(0).astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        rows["left_after"] = rows["left"] / rows["at_risk"].where(rows["at_risk"] > 0)
    rows["left_after_ci_low"], rows["left_after_ci_high"] = wilson_ci(rows["left"], rows["at_risk"], alpha=alpha)

    return rows, model_summary


PAIN_POINT_COLUMNS = [
    "moment", "touchpoint", "reached", "feedback", "score_mean", "score_ci_low", "score_ci_high",
    "score_diff", "score_p", "score_q", "share_negative", "share_negative_ci_low", "share_negative_ci_high",
    "sentiment_mean", "sentiment_ci_low", "sentiment_ci_high", "sentiment_diff", "sentiment_p",
    "sentiment_q", "at_risk", "left", "left_after",
    "left_after_ci_low", "left_after_ci_high", "dropoff_or", "dropoff_ci_low", "dropoff_ci_high",
    "dropoff_step", "dropoff_p", "dropoff_q", "customers_lost", "value_at_risk", "pain_point", "flag", "rank"]


def _scored_feedback(fb: pd.DataFrame, sentiment_model) -> pd.DataFrame:
    """The feedback with ``_norm`` (0-100 score), ``_neg`` (negative class) and ``_sent``
    (text sentiment, NaN without text or model) columns: the per-row voice, computed once."""
    f = fb.copy()
    if "score" not in f.columns:
        f["score"] = np.nan
    if "scale" not in f.columns:
        f["scale"] = None
    f["_norm"] = normalised_score(f["score"], f["scale"])
    f["_neg"] = in_score_class(f["score"], f["scale"], "negative")
    f.loc[f["score"].isna(), "_neg"] = False
    sent = _text_sentiment(f, sentiment_model)
    f["_sent"] = sent if sent is not None else np.nan
    return f


def _group_moments(x: np.ndarray, codes: np.ndarray, k: int, alpha: float) -> dict:
    """Per group 0..k-1 of ``codes``, over the non-NaN ``x``: the mean with its t interval
    (as :func:`_mean_ci`), the mean of everything outside the group, and Welch's p-value
    group vs outside (as :func:`_welch`), all vectorised. Sums are taken on values centred on
    the overall mean, so the variances keep full precision."""
    from scipy import stats

    ok = ~np.isnan(x)
    x, codes = x[ok], codes[ok]
    g = np.where(codes >= 0, codes, k)
    n_all = len(x)
    centre = float(x.mean()) if n_all else 0.0
    y = x - centre
    n = np.bincount(g, minlength=k + 1)[:k].astype("float64")
    s = np.bincount(g, weights=y, minlength=k + 1)[:k]
    q = np.bincount(g, weights=y * y, minlength=k + 1)[:k]
    n_o, s_o, q_o = n_all - n, y.sum() - s, (y * y).sum() - q
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_c, mean_oc = s / n, s_o / n_o
        var = np.where(n > 1, np.clip(q - s * mean_c, 0, None) / (n - 1), np.nan)
        var_o = np.where(n_o > 1, np.clip(q_o - s_o * mean_oc, 0, None) / (n_o - 1), np.nan)
        half = stats.t.ppf(1 - alpha / 2, np.maximum(n - 1, 1)) * np.sqrt(var / n)
        testable = (n >= 2) & (n_o >= 2)
        p = np.full(k, np.nan)
        if testable.any():
            p[testable] = stats.ttest_ind_from_stats(
                mean_c[testable], np.sqrt(var[testable]), n[testable], mean_oc[testable], np.sqrt(var_o[testable]),
                n_o[testable], equal_var=False).pvalue
    mean = np.where(n > 0, mean_c + centre, np.nan)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half,
            "mean_out": np.where(n_o > 0, mean_oc + centre, np.nan), "p": p}


def _voice_columns(rows: pd.DataFrame, f: pd.DataFrame | None, tps, alpha) -> pd.DataFrame:
    """Voice columns of the pain-point table from scored feedback (:func:`_scored_feedback`)."""
    if f is None or len(f) == 0:
        rows["feedback"] = 0
        for c in ("score_mean", "score_ci_low", "score_ci_high", "score_diff", "score_p", "score_q",
                  "sentiment_mean", "sentiment_ci_low", "sentiment_ci_high", "sentiment_diff", "sentiment_p",
                  "sentiment_q", "share_negative", "share_negative_ci_low", "share_negative_ci_high"):
            rows[c] = np.nan
        return rows
    codes = pd.Categorical(f["touchpoint"], categories=list(tps)).codes   # -1: not a map touchpoint
    score = _group_moments(f["_norm"].to_numpy("float64"), codes, len(tps), alpha)
    sent = _group_moments(f["_sent"].to_numpy("float64"), codes, len(tps), alpha)
    g = np.where(codes >= 0, codes, len(tps))
    stats = pd.DataFrame({
        "touchpoint": list(tps), "feedback": np.bincount(g, minlength=len(tps) + 1)[:len(tps)],
        "score_mean": score["mean"], "score_ci_low": score["ci_low"], "score_ci_high": score["ci_high"],
        "score_diff": score["mean"] - score["mean_out"], "score_p": score["p"],
        "negative": np.bincount(g, weights=f["_neg"].to_numpy("float64"), minlength=len(tps) + 1)[:len(tps)],
        "scored": np.bincount(g, weights=f["score"].notna().to_numpy("float64"),
                              minlength=len(tps) + 1)[:len(tps)],
        "sentiment_mean": sent["mean"], "sentiment_ci_low": sent["ci_low"], "sentiment_ci_high": sent["ci_high"],
        "sentiment_diff": sent["mean"] - sent["mean_out"], "sentiment_p": sent["p"]})
    rows = rows.merge(stats, on="touchpoint", how="left")
    lo, hi = wilson_ci(rows["negative"], rows["scored"], alpha=alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        rows["share_negative"] = rows["negative"] / rows["scored"].where(rows["scored"] > 0)
    rows["share_negative_ci_low"], rows["share_negative_ci_high"] = lo, hi
    rows["score_q"] = bh_qvalues(rows["score_p"])
    rows["sentiment_q"] = bh_qvalues(rows["sentiment_p"])
    return rows.drop(columns=["negative", "scored"])


def mean_order_value(events, *, journey=None) -> float | None:
    """The mean ``value`` of the conversion events (what a lost customer is worth in the
    reports); None when the events carry no order values.

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> round(mean_order_value(simulate_journeys(2_000, seed=1).events))
    73
    """
    jm = JourneyMap.coerce(journey)
    t = as_table(events)
    if "value" not in t.columns:
        return None
    v = t.filter((t.touchpoint == jm.conversion) & t.value.notnull()).aggregate(v=t.value.mean()).to_pandas()["v"]
    return float(v.iloc[0]) if pd.notna(v.iloc[0]) else None


def _value_per_customer(t, jm: JourneyMap) -> float:
    """Mean value of the conversion events (1.0 when there is none: value in customers)."""
    v = mean_order_value(t, journey=jm) if t is not None else None
    return 1.0 if v is None else v


def _priority(rows: pd.DataFrame, alpha, value_per_customer) -> pd.DataFrame:
    """customers_lost, value_at_risk, pain_point, flag and rank from the voice and behaviour columns."""
    orr = rows["dropoff_or"]
    af = np.where(orr > 1, (orr - 1) / orr, 0.0)
    af = np.where(orr.isna(), np.nan, af)
    rows["customers_lost"] = rows["left"] * af
    rows["value_at_risk"] = rows["customers_lost"] * float(value_per_customer)
    voice_bad = (rows["score_diff"] < 0) & (rows["score_q"] < alpha)
    if rows["score_mean"].isna().all():     # text-only feedback: the voice is the text sentiment
        voice_bad = (rows["sentiment_diff"] < 0) & (rows["sentiment_q"] < alpha)
    behaviour_bad = (rows["dropoff_or"] > 1) & (rows["dropoff_q"] < alpha)
    measured = rows["dropoff_or"].notna()
    rows["pain_point"] = voice_bad & (behaviour_bad | ~measured)
    rows["flag"] = np.select([voice_bad & behaviour_bad, voice_bad, behaviour_bad],
                             ["voice and behaviour", "voice", "behaviour"], default="")
    risk = rows["value_at_risk"]
    flagged = rows["flag"] != ""
    tier = np.select([flagged & (risk > 0), flagged], [0, 1], default=2)
    order = rows.assign(_tier=tier, _v=-risk.fillna(0),
                        _s=rows["score_diff"].fillna(rows["sentiment_diff"]).fillna(np.inf))
    order = order.sort_values(["_tier", "_v", "_s"], kind="stable")
    rows.loc[order.index, "rank"] = np.arange(1, len(rows) + 1)
    rows["rank"] = rows["rank"].astype("int64")
    return rows


def _pain_points(t, fb, jm: JourneyMap, alpha, sentiment_model, value_per_customer, window) -> pd.DataFrame:

    tps = list(jm.touchpoints)
    if t is not None:
        reached = (t.filter(t.touchpoint.isin(tps)).group_by("touchpoint")
                   .aggregate(reached=t.customer_id.nunique()).to_pandas())
    else:                                   # voice only: who gave feedback there
        who = fb["customer_id"] if "customer_id" in fb.columns else fb.index.to_series()
        reached = who.groupby(fb["touchpoint"]).nunique().rename("reached").reset_index()
    rows = pd.DataFrame({"moment": [jm.moment_of(x) for x in tps], "touchpoint": tps})
    rows = rows.merge(reached, on="touchpoint", how="left")
    rows["reached"] = rows["reached"].fillna(0).astype("int64")

    # ---------------------------------------------------------------- voice
    base_mean = np.nan
    if fb is not None and len(fb):
        f = _scored_feedback(fb, sentiment_model)
        base_mean = float(f["_norm"].mean())
        rows = _voice_columns(rows, f, tps, alpha)
    else:
        rows = _voice_columns(rows, None, tps, alpha)

    # ---------------------------------------------------------------- behaviour
    if t is not None:
        rows, model_summary = _behaviour(rows, t, jm, alpha, window)
    else:
        model_summary = None
        for c in ("dropoff_or", "dropoff_ci_low", "dropoff_ci_high", "dropoff_p", "dropoff_q", "at_risk", "left",
                  "left_after", "left_after_ci_low", "left_after_ci_high"):
            rows[c] = np.nan
        rows["dropoff_step"] = None
    # ---------------------------------------------------------------- priority
    if value_per_customer is None:
        value_per_customer = _value_per_customer(t, jm)
    rows = _priority(rows, alpha, value_per_customer)
    rows.attrs.update(baseline_score=base_mean, value_per_customer=float(value_per_customer), alpha=alpha,
                      dropoff_model=model_summary)
    return rows[PAIN_POINT_COLUMNS]


# --------------------------------------------------------------------------- emotion curve
def emotion_curve(table: pd.DataFrame, *, measure: str = "score") -> pd.DataFrame:
    """The voice along the journey in map order: touchpoints with feedback, their mean
    (``measure="score"``: 0-100 score; ``"sentiment"``: text sentiment -1..1), interval,
    moment and whether they are pain points. ``table`` is :func:`pain_points`' output."""
    if measure not in ("score", "sentiment"):
        raise ValueError(f"measure={measure!r} must be 'score' or 'sentiment'")
    cols = [f"{measure}_mean", f"{measure}_ci_low", f"{measure}_ci_high"]
    out = table[table[cols[0]].notna()][["moment", "touchpoint", "feedback", *cols, "pain_point"]].copy()
    out.columns = ["moment", "touchpoint", "feedback", "mean", "ci_low", "ci_high", "pain_point"]
    return out.reset_index(drop=True)


def plot_emotion_curve(table: pd.DataFrame, *, measure: str = "score", ax=None, highlight=None):
    """The emotional curve: mean voice per touchpoint in journey order with its interval band,
    moments of truth shaded, the journey baseline dashed, pain points marked in red.
    ``highlight``: a moment (``"FMOT"``...) to bring forward; the others are faded."""
    import matplotlib.pyplot as plt

    curve = emotion_curve(table, measure=measure)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(7.0, 0.75 * len(curve) + 2), 4.6))
    x = np.arange(len(curve))
    for moment, idx in curve.groupby("moment", sort=False).groups.items():
        lo, hi = min(idx) - 0.5, max(idx) + 0.5
        faded = highlight is not None and moment != highlight
        ax.axvspan(lo, hi, color=_MOMENT_COLOURS.get(moment, "#eeeeee"), zorder=0, alpha=0.35 if faded else 1.0,
                   ec="#c0392b" if highlight == moment else None, lw=2 if highlight == moment else 0)
        ax.text((lo + hi) / 2, 1.0, moment, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=11 if highlight == moment else 10, fontweight="bold",
                color="#bbbbbb" if faded else "#444444")
    ax.fill_between(x, curve["ci_low"], curve["ci_high"], color="#4c72b0", alpha=0.25, lw=0, zorder=2)
    ax.plot(x, curve["mean"], "-o", color="#4c72b0", lw=2, ms=5, zorder=3)
    pp = curve["pain_point"].fillna(False).astype(bool).to_numpy()
    if pp.any():
        ax.scatter(x[pp], curve["mean"][pp], s=140, facecolors="none", edgecolors="#c0392b", linewidths=2.2,
                   zorder=4, label="pain point")
        for i in np.flatnonzero(pp):
            ax.annotate(curve["touchpoint"][i], (x[i], curve["mean"][i]), textcoords="offset points",
                        xytext=(0, -18), ha="center", color="#c0392b", fontsize=8.5, fontweight="bold")
    if measure == "score" and pd.notna(table.attrs.get("baseline_score", np.nan)):
        ax.axhline(table.attrs["baseline_score"], ls="--", color="#666666", lw=1,
                   label=f"journey baseline {table.attrs['baseline_score']:.0f}")
    ax.set_xticks(x, [f"{t}\n(n={n:,})" for t, n in zip(curve["touchpoint"], curve["feedback"])],
                  rotation=40, ha="right", fontsize=8.5)
    ax.set_xlim(-0.5, len(curve) - 0.5)
    ax.set_ylabel("mean score (0-100 within its scale)" if measure == "score" else "mean text sentiment (-1..1)")
    ax.set_title("Emotional curve along the journey (band: 95% interval)", pad=18, fontsize=11)
    if pp.any() or measure == "score":
        ax.legend(loc="lower left", fontsize=8.5, frameon=True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


_FLAG_COLOURS = {"voice and behaviour": "#c0392b", "behaviour": "#e67e22", "voice": "#8e44ad", "": "#9aa5b1"}


def plot_priority_matrix(table: pd.DataFrame, *, ax=None, currency: str | None = None, top: int = 12):
    """Priority: what each touchpoint puts at risk against how customers rate it.

    One point per touchpoint that is flagged or has measured customers lost (the ``top``
    first by ``rank``), numbered by its rank, so the matrix, the table and the
    headline give the same order. x: money at risk (customers lost when there is no order
    value); touchpoints whose effect on leaving is not measured sit in a band on the left.
    y: mean score against the rest of the journey (0-100 points); touchpoints nobody rated
    (a pop-up) sit in a band at the bottom, so a behaviour-only issue is never left out.
    Colour: the evidence (``flag``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    d = table.sort_values("rank")
    keep = (d["flag"] != "") | (d["customers_lost"] > 0)
    d = d[keep].head(top).copy()
    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 5.6))
    if d.empty:
        ax.text(0.5, 0.5, "no touchpoint is flagged and none has measured customers lost", ha="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    money = float(table.attrs.get("value_per_customer", 1.0)) != 1.0
    x = (d["value_at_risk"] if money else d["customers_lost"]).astype("float64")
    gap = d["score_diff"].astype("float64")
    if gap.isna().all() and d["sentiment_diff"].notna().any():     # text-only feedback: sentiment, in points
        gap = 50 * d["sentiment_diff"].astype("float64")
    xmax = float(np.nanmax(x)) if x.notna().any() and np.nanmax(x) > 0 else 1.0
    glo = float(np.nanmin(gap)) if gap.notna().any() else -10.0
    ghi = float(np.nanmax(gap)) if gap.notna().any() else 10.0
    glo, ghi = min(glo, -5.0), max(ghi, 5.0)
    span = ghi - glo
    x_band, y_band = -0.12 * xmax, glo - 0.22 * span
    px = x.fillna(x_band).to_numpy()
    py = gap.fillna(y_band).to_numpy()
    ax.axvspan(-0.2 * xmax, -0.04 * xmax, color="#f2f2f2", zorder=0)
    ax.axhspan(glo - 0.32 * span, glo - 0.12 * span, color="#f2f2f2", zorder=0)
    ax.text(-0.12 * xmax, glo - 0.1 * span, "drop-off\nnot\nmeasured", ha="center", va="bottom", fontsize=7.5,
            color="#666666")
    ax.text(0.02 * xmax, glo - 0.3 * span, "no feedback", ha="left", va="bottom", fontsize=7.5, color="#666666")
    var = x.fillna(0).to_numpy()
    size = 60 + 360 * (var / xmax)
    colours = [_FLAG_COLOURS.get(f, "#9aa5b1") for f in d["flag"]]
    ax.scatter(px, py, s=size, c=colours, alpha=0.8, edgecolors="white", zorder=3)
    placed: list[tuple[float, float]] = []
    for xi, yi, (_, r) in zip(px, py, d.iterrows()):
        nx, ny = xi / (1.3 * xmax), (yi - glo) / (1.5 * span)
        for off in (0, 12, -12, 24, -24, 36, -36):
            if all(abs(nx - qx) > 0.22 or abs(ny + off / 330 - qy) > 0.035 for qx, qy in placed):
                break
        placed.append((nx, ny + off / 330))
        ax.annotate(f"{int(r['rank'])}. {r['touchpoint']}", (xi, yi), textcoords="offset points",
                    xytext=(8, off - 3), fontsize=8.5, color="#222222" if r["flag"] else "#777777", zorder=4)
    ax.axhline(0, ls="--", color="#888888", lw=1)
    ax.axvline(0, color="#bbbbbb", lw=0.8)
    ax.set_xlim(-0.2 * xmax, xmax * 1.5)
    ax.set_ylim(glo - 0.32 * span, ghi + 0.12 * span)
    unit = f"money at risk ({currency})" if money and currency else ("money at risk" if money else "customers lost")
    ax.set_xlabel(f"{unit}: customers who leave because of it  — impact")
    ax.set_ylabel("score against the rest of the journey (points)")
    ax.set_title("Priority (numbers: rank; right = more at risk, low = rated worse)", fontsize=11)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 0 else ""))
    seen = [f for f in _FLAG_COLOURS if f and f in set(d["flag"])]
    if seen:
        ax.legend(handles=[Line2D([], [], ls="", marker="o", color=_FLAG_COLOURS[f], label=f) for f in seen],
                  title="evidence", fontsize=8, title_fontsize=8, loc="upper right", frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


# --------------------------------------------------------------------------- circular journey
def circular_journey(data, *, journey=None, feedback=None, window="90D", alpha: float = 0.05,
                     sentiment_model=None) -> pd.DataFrame:
    """The circle: who shares their experience (UMOT), in what mood, and who comes back.

    Rows (``measure``, ``n``, ``base``, ``rate``, ``ci_low``, ``ci_high``):
    ``reach_umot``: customers with a UMOT event, of all customers; ``umot_negative``: UMOT
    feedback in the negative class of its scale, of UMOT feedback with a score;
    ``return_to_zmot_fmot``: customers with a ZMOT or FMOT event within ``window`` after
    their first UMOT event, of UMOT customers (the sharer re-entering the journey, as one
    customer's UMOT is another's ZMOT); ``repurchase_after_umot``: customers converting
    within ``window`` after their first UMOT event, of UMOT customers. Wilson intervals.
    ``attrs["umot_score_mean"]``: mean 0-100 score of UMOT feedback.
    """
    from .journey import parse_duration

    jm = JourneyMap.coerce(journey)
    t, fb = _frames(data, feedback)
    td = parse_duration(window, key="window")
    umot = list(jm.moment("UMOT").touchpoints) if "UMOT" in jm.moment_ids else []
    if not umot:
        raise ValueError("the journey map has no UMOT moment: the circular journey needs one")
    early = [x for m in ("ZMOT", "FMOT") if m in jm.moment_ids for x in jm.moment(m).touchpoints]
    n_all = int(t.customer_id.nunique().to_pandas())
    first_u = (t.filter(t.touchpoint.isin(umot)).group_by("customer_id").aggregate(_u=t.ts.min()))
    n_u = int(first_u.count().to_pandas())
    later = t.join(first_u, "customer_id")
    within = later.filter((later.ts > later._u) & (later.ts <= later._u + td))
    back = int(within.filter(within.touchpoint.isin(early)).customer_id.nunique().to_pandas())
    rebuy = int(within.filter(within.touchpoint == jm.conversion).customer_id.nunique().to_pandas())
    neg = scored = 0
    score_mean = np.nan
    if fb is not None and len(fb) and "score" in fb.columns:
        fu = fb[fb["touchpoint"].isin(umot) & fb["score"].notna()]
        scored = len(fu)
        neg = int(in_score_class(fu["score"], fu["scale"], "negative").sum())
        score_mean = float(np.nanmean(normalised_score(fu["score"], fu["scale"]))) if scored else np.nan
    rows = pd.DataFrame({"measure": ["reach_umot", "umot_negative", "return_to_zmot_fmot", "repurchase_after_umot"],
                         "n": [n_u, neg, back, rebuy], "base": [n_all, scored, n_u, n_u]})
    with np.errstate(invalid="ignore", divide="ignore"):
        rows["rate"] = rows["n"] / rows["base"].where(rows["base"] > 0)
    rows["ci_low"], rows["ci_high"] = wilson_ci(rows["n"], rows["base"], alpha=alpha)
    rows.attrs.update(umot_score_mean=score_mean, window=str(window), umot_touchpoints=umot)
    return rows
