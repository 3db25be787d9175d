"""Omnichannel KPIs, one function each: NPS, CSAT, CES, conversion rate, retention,
repurchase rate, customer-care responsiveness, cost to serve, upsell rate and channel
switching.

Every function takes a pandas DataFrame, an Ibis table or a Workspace (its ``events()``
or ``feedback()`` table), runs the filtering and aggregation in the engine (Ibis/DuckDB)
and returns a small tidy pandas DataFrame with stable columns:

- the breakdown columns (``by`` levels, then ``period`` when ``period=`` is given: the
  start of the period, a UTC timestamp), and ``metric`` where a KPI has several figures;
- ``n`` (the denominator), the estimate (``rate``, ``value`` or ``nps``), ``se``,
  ``ci_low``, ``ci_high`` at level ``1 - alpha``.

``period`` is a pandas-style offset alias applied to ``ts`` (UTC): ``"D"``, ``"W"``
(weeks starting on Monday), ``"M"``, ``"Q"``, ``"Y"`` (``"MS"``, ``"ME"``, ``"QS"``,
``"QE"``, ``"YS"``, ``"YE"``, ``"A"`` are accepted as synonyms): one row per period that
has data. :func:`period_change` (or ``compare_periods=True``) tests the difference
between consecutive periods.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._engine import as_table, check_columns, epoch_ms
from .exceptions import did_you_mean
from .io import SCALES, SCORE_CLASSES
from .journey import JourneyMap, parse_duration
from .stats import _check_alpha, two_proportion_test, wilson_ci

__all__ = ["PERIODS", "care_responsiveness", "ces", "channel_switching", "conversion_rate",
           "cost_to_serve", "csat", "nps", "nps_merge", "period_change", "repurchase_rate",
           "retention", "upsell_rate"]

#: accepted ``period`` aliases -> engine truncation unit
PERIODS = {"D": "D", "W": "W", "M": "M", "MS": "M", "ME": "M", "Q": "Q", "QS": "Q",
           "QE": "Q", "Y": "Y", "YS": "Y", "YE": "Y", "A": "Y"}
_PANDAS_FREQ = {"D": "D", "W": "W", "M": "M", "Q": "Q", "Y": "Y"}


# --------------------------------------------------------------------------- helpers
def _z(alpha):
    from scipy.stats import norm
    return float(norm.ppf(1 - alpha / 2))


def _period_unit(period) -> str | None:
    if period is None:
        return None
    if not isinstance(period, str) or period.strip().upper() not in PERIODS:
        raise ValueError(f"period={period!r} is not one of {tuple(PERIODS)}"
                         + did_you_mean(str(period), PERIODS))
    return PERIODS[period.strip().upper()]


def _events(data, *, required=("customer_id", "ts", "touchpoint")):
    if not isinstance(data, pd.DataFrame) and hasattr(data, "events") and callable(data.events):
        data = data.events()
    if isinstance(data, pd.DataFrame) and data.empty:
        raise ValueError("events is empty: a KPI needs at least one row")
    return as_table(data, required=required)


def _feedback(data):
    if not isinstance(data, pd.DataFrame) and hasattr(data, "feedback") and callable(data.feedback):
        data = data.feedback()
    if isinstance(data, pd.DataFrame) and data.empty:
        raise ValueError("feedback is empty: a KPI needs at least one row")
    t = as_table(data, required=())
    for col in ("ts", "score"):
        if col not in t.columns:
            raise ValueError(f"feedback has no column {col!r}" + did_you_mean(col, t.columns)
                             + f"; columns: {list(t.columns)}")
    return t


def _keys(t, by, period, *, argument="by"):
    """Validate ``by``, add the ``period`` column (period start) when asked."""
    by = check_columns(t, by, argument=argument)
    unit = _period_unit(period)
    if unit is not None:
        if "period" in by:
            raise ValueError("by='period' clashes with period=: rename the column")
        t = t.mutate(period=t.ts.truncate(unit))
        return t, [*by, "period"]
    return t, by


def _touchpoints(value, *, argument, allow_empty=False) -> list[str]:
    if value is None:
        return []
    tps = [value] if isinstance(value, str) else list(value)
    if (not tps and not allow_empty) or not all(isinstance(x, str) and x for x in tps):
        raise ValueError(f"{argument}={value!r} must be a touchpoint name or a list of them")
    return tps


def _check_in_data(t, tps, *, argument, column="touchpoint"):
    """Refuse touchpoints absent from the data, with a did-you-mean hint."""
    if not tps:
        return
    present = set(t.filter(t[column].isin(tps)).select(column).distinct().execute()[column])
    for tp in tps:
        if tp not in present:
            known = t.select(column).distinct().execute()[column].dropna().astype(str).tolist()
            raise ValueError(f"{argument}: touchpoint {tp!r} does not occur in the data"
                             + did_you_mean(tp, known) + f"; touchpoints: {sorted(known)[:30]}")


def _agg(t, keys, **metrics):
    return (t.group_by(keys).aggregate(**metrics) if keys else t.aggregate(**metrics)).execute()


def _finish(df: pd.DataFrame, keys, columns, *, kpi: str, value: str, sort_extra=()) -> pd.DataFrame:
    if "period" in df.columns:
        df["period"] = pd.to_datetime(df["period"])
        if getattr(df["period"].dtype, "tz", None) is None:
            df["period"] = df["period"].dt.tz_localize("UTC")
    sort = [*keys, *sort_extra]
    if sort and len(df):
        df = df.sort_values(sort, kind="stable", ignore_index=True)
    df = df[[*keys, *columns]].reset_index(drop=True)
    df.attrs["kpi"] = {"name": kpi, "value": value,
                       "keys": [k for k in [*keys, *sort_extra] if k != "period"]}
    return df


def _proportion(df, successes, n, alpha):
    df = df.copy()
    s = df[successes].to_numpy("float64")
    m = df[n].to_numpy("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(m > 0, s / m, np.nan)
        se = np.sqrt(p * (1 - p) / m)
    df["rate"] = p
    df["se"] = se
    df["ci_low"], df["ci_high"] = wilson_ci(s, m, alpha=alpha)
    return df


def _mean_t(total, sumsq, n, alpha):
    """mean, sd (ddof 1), se and the t interval from sums; NaN sd/CI when n < 2."""
    from scipy.stats import t as tdist

    total, sumsq, n = (np.asarray(x, dtype="float64") for x in (total, sumsq, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n
        var = np.where(n > 1, (sumsq - total * total / n) / (n - 1), np.nan)
        sd = np.sqrt(np.clip(var, 0, None))
        se = sd / np.sqrt(n)
        q = np.where(n > 1, tdist.ppf(1 - alpha / 2, np.maximum(n - 1, 1)), np.nan)
    return mean, sd, se, mean - q * se, mean + q * se


def _journey_roles(journey):
    jm = JourneyMap.coerce(journey)
    return jm, getattr(jm, "roles", {}) or {}


def _maybe_compare(table, compare_periods, period, alpha):
    if not compare_periods:
        return table
    if period is None:
        raise ValueError("compare_periods=True needs period= (e.g. period='M')")
    return period_change(table, alpha=alpha)


# --------------------------------------------------------------------------- feedback KPIs
def _scored(feedback, scale, *, argument="scale"):
    """Feedback rows of ``scale`` with a score; refuse out-of-range scores."""
    t = _feedback(feedback)
    lo, hi = SCALES[scale]
    if "scale" in t.columns:
        t = t.filter(t.scale == scale)
    t = t.filter(t.score.notnull())
    t = t.mutate(score=t.score.cast("float64"))        # integer scores (survey exports) too
    bad = t.filter((t.score < lo) | (t.score > hi) | t.score.isnan())
    nbad = int(bad.count().execute())
    if nbad:
        ex = bad.select("score").limit(3).execute()["score"].tolist()
        raise ValueError(f"feedback: {nbad} {scale!r} scores are outside {lo:g}-{hi:g} "
                         f"(e.g. {ex}); fix the export or its scale column")
    if int(t.count().execute()) == 0:
        raise ValueError(f"feedback has no scored rows with scale == {scale!r}")
    return t


def nps(feedback, *, by=None, period=None, alpha: float = 0.05, compare_periods: bool = False
        ) -> pd.DataFrame:
    """Net Promoter Score on the 0-10 "how likely are you to recommend" rows.

    ``NPS = 100 * (promoters - detractors) / n`` in points (-100..100), with promoters
    scoring 9-10, passives 7-8 and detractors 0-6 (``cxlab.io.SCORE_CLASSES``). Only rows
    with ``scale == "nps"`` (all rows when the table has no ``scale`` column) and a score
    count; a score outside 0-10 raises ValueError.

    The standard error treats (promoter, passive, detractor) as a multinomial draw:
    ``se = 100 * sqrt((p_pro + p_det - (p_pro - p_det)^2) / n)``; the interval is the
    normal (Wald) one, ``nps +- z_{1-alpha/2} * se``, clipped to [-100, 100]. Its coverage
    is close to nominal from n of about 100 on unless nearly everybody is in one class.

    Parameters
    ----------
    feedback : DataFrame, Ibis table or Workspace
        Canonical feedback (``ts``, ``score``, ``scale``).
    by : str or list of str, optional
        Breakdown columns (e.g. ``"channel"``, or ``"survey"`` to merge with
        :func:`nps_merge`).
    period : str, optional
        Offset alias on ``ts`` (``"W"``, ``"M"``, ``"Q"``...): one row per period.
    alpha : float
        1 - confidence level.
    compare_periods : bool
        Return :func:`period_change` of the result instead (needs ``period``).

    Returns
    -------
    DataFrame
        ``by`` columns, ``period``, ``n``, ``promoters``, ``passives``, ``detractors``
        (counts), ``nps`` (points), ``se``, ``ci_low``, ``ci_high`` (points).

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> _, feedback, _ = simulate_journeys(2_000, seed=1)
    >>> r = nps(feedback)
    >>> bool(-100 <= r["nps"].iloc[0] <= 100)
    True
    """
    _check_alpha(alpha)
    t = _scored(feedback, "nps")
    t, keys = _keys(t, by, period)
    (_, dhi), _, (plo, _) = SCORE_CLASSES["nps"]
    s = t.score
    df = _agg(t, keys, n=t.count(),
              promoters=(s >= plo).cast("int64").sum(),
              detractors=(s <= dhi).cast("int64").sum())
    df = _nps_columns(df, alpha)
    return _maybe_compare(_finish(df, keys, _NPS_COLUMNS, kpi="nps", value="nps"),
                          compare_periods, period, alpha)


_NPS_COLUMNS = ["n", "promoters", "passives", "detractors", "nps", "se", "ci_low", "ci_high"]


def _nps_columns(df, alpha):
    df = df.copy()
    n = df["n"].to_numpy("float64")
    df["passives"] = (df["n"] - df["promoters"] - df["detractors"]).astype("int64")
    pp, pd_ = df["promoters"] / n, df["detractors"] / n
    df["nps"] = 100 * (pp - pd_)
    df["se"] = 100 * np.sqrt(np.clip(pp + pd_ - (pp - pd_) ** 2, 0, None) / n)
    z = _z(alpha)
    df["ci_low"] = np.clip(df["nps"] - z * df["se"], -100, 100)
    df["ci_high"] = np.clip(df["nps"] + z * df["se"], -100, 100)
    return df


def nps_merge(table: pd.DataFrame, *, by=None, weights: str = "n", alpha: float = 0.05
              ) -> pd.DataFrame:
    """Pool several NPS estimates (rows of :func:`nps`, e.g. ``nps(fb, by="survey")``).

    ``weights="n"`` (default): the estimate is weighted by sample size,
    ``sum(n_i * nps_i) / sum(n_i)``, which equals the NPS of all answers pooled; its
    standard error is the stratified one, ``sqrt(sum((n_i/N)^2 * se_i^2))`` (each survey a
    stratum sampled independently). ``weights="inverse_variance"``: fixed-effect
    meta-analysis, weights ``1/se_i^2``, ``se = 1/sqrt(sum(1/se_i^2))``; rows with
    ``se == 0`` are refused. Both give a normal interval, and Cochran's Q test of
    heterogeneity (``q_p_value``: small when the surveys disagree beyond chance; pooling
    then hides a real difference).

    Returns one row per ``by`` level (``by`` must be columns of ``table``): ``by``,
    ``k`` (estimates pooled), ``n``, ``promoters``, ``passives``, ``detractors``
    (summed), ``nps``, ``se``, ``ci_low``, ``ci_high``, ``q``, ``q_p_value``.
    """
    from scipy.stats import chi2

    _check_alpha(alpha)
    if weights not in ("n", "inverse_variance"):
        raise ValueError(f"weights={weights!r} is not one of ('n', 'inverse_variance')"
                         + did_you_mean(str(weights), ("n", "inverse_variance")))
    for col in ("n", "nps", "se"):
        if col not in table.columns:
            raise ValueError(f"table has no column {col!r}: pass the output of nps()")
    by = [by] if isinstance(by, str) else list(by or [])
    for c in by:
        if c not in table.columns:
            raise ValueError(f"by={c!r} is not a column of table" + did_you_mean(c, table.columns))
    rows = []
    groups = table.groupby(by, sort=True, dropna=False) if by else [((), table)]
    for key, g in groups:
        g = g[g["n"] > 0]
        if g.empty:
            continue
        n, x, se = (g[c].to_numpy("float64") for c in ("n", "nps", "se"))
        if weights == "n":
            w = n / n.sum()
            est = float(np.sum(w * x))
            pse = float(np.sqrt(np.sum(w * w * se * se)))
        else:
            if np.any(se <= 0):
                raise ValueError("weights='inverse_variance' needs se > 0 in every row "
                                 "(an estimate with se 0 would take all the weight)")
            w = 1 / se ** 2
            est = float(np.sum(w * x) / w.sum())
            pse = float(1 / np.sqrt(w.sum()))
        with np.errstate(divide="ignore", invalid="ignore"):
            iv = np.where(se > 0, 1 / se ** 2, np.nan)
            fe = np.nansum(iv * x) / np.nansum(iv)
            q = float(np.nansum(iv * (x - fe) ** 2))
        k = len(g)
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row.update(k=k, n=int(n.sum()),
                   promoters=int(g["promoters"].sum()) if "promoters" in g else pd.NA,
                   passives=int(g["passives"].sum()) if "passives" in g else pd.NA,
                   detractors=int(g["detractors"].sum()) if "detractors" in g else pd.NA,
                   nps=est, se=pse, q=q,
                   q_p_value=float(chi2.sf(q, k - 1)) if k > 1 else np.nan)
        rows.append(row)
    out = pd.DataFrame(rows)
    z = _z(alpha)
    out["ci_low"] = np.clip(out["nps"] - z * out["se"], -100, 100)
    out["ci_high"] = np.clip(out["nps"] + z * out["se"], -100, 100)
    return out[[*by, "k", "n", "promoters", "passives", "detractors", "nps", "se", "ci_low",
                "ci_high", "q", "q_p_value"]]


_SCORE_COLUMNS = ["n", "successes", "value", "sd", "se", "ci_low", "ci_high"]


def _score_kpi(feedback, scale, share_name, *, by, period, alpha, compare_periods):
    t = _scored(feedback, scale)
    t, keys = _keys(t, by, period)
    _, _, (plo, phi) = SCORE_CLASSES[scale]
    s = t.score.cast("float64")
    df = _agg(t, keys, n=t.count(), successes=((s >= plo) & (s <= phi)).cast("int64").sum(),
              total=s.sum(), sumsq=(s * s).sum())
    share = _proportion(df, "successes", "n", alpha)
    share["metric"] = share_name
    share["value"], share["sd"] = share["rate"], np.nan
    mean = df.copy()
    mean["metric"] = "mean_score"
    mean["value"], mean["sd"], mean["se"], mean["ci_low"], mean["ci_high"] = _mean_t(
        df["total"], df["sumsq"], df["n"], alpha)
    mean["successes"] = np.nan
    out = pd.concat([share, mean], ignore_index=True)
    out["successes"] = out["successes"].astype("float64")
    out["metric"] = pd.Categorical(out["metric"], [share_name, "mean_score"])
    res = _finish(out, keys, ["metric", *_SCORE_COLUMNS], kpi=scale, value="value",
                  sort_extra=["metric"])
    res = res[[*keys, "metric", *_SCORE_COLUMNS]]
    res["metric"] = res["metric"].astype(str)
    res.attrs["kpi"] = {"name": scale, "value": "value", "keys": [*[k for k in keys if k != "period"], "metric"]}
    return _maybe_compare(res, compare_periods, period, alpha)


def csat(feedback, *, by=None, period=None, scale: str = "csat", alpha: float = 0.05,
         compare_periods: bool = False) -> pd.DataFrame:
    """Customer satisfaction on the 1-5 scale: top-2-box share and mean score.

    - ``metric == "top2_box"``: ``value`` = share of answers scoring 4 or 5
      (``successes / n``), Wilson interval;
    - ``metric == "mean_score"``: ``value`` = mean score (1-5), t interval
      ``mean +- t_{n-1} * sd / sqrt(n)``.

    ``scale`` picks the rows (``"csat"``, or ``"stars"`` for 1-5 star ratings); a score
    outside 1-5 raises ValueError.

    Returns
    -------
    DataFrame
        ``by``, ``period``, ``metric``, ``n``, ``successes`` (NaN for the mean), ``value``,
        ``sd`` (NaN for the share), ``se``, ``ci_low``, ``ci_high``.
    """
    _check_alpha(alpha)
    if scale not in ("csat", "stars"):
        raise ValueError(f"scale={scale!r} is not one of ('csat', 'stars')"
                         + did_you_mean(str(scale), ("csat", "stars")))
    return _score_kpi(feedback, scale, "top2_box", by=by, period=period, alpha=alpha,
                      compare_periods=compare_periods)


def ces(feedback, *, by=None, period=None, alpha: float = 0.05,
        compare_periods: bool = False) -> pd.DataFrame:
    """Customer effort score on the 1-7 agreement scale ("the company made it easy", 7 =
    easiest), rows with ``scale == "ces"``.

    - ``metric == "easy_share"``: share of answers 5-7, Wilson interval;
    - ``metric == "mean_score"``: mean score (1-7), t interval.

    Columns as :func:`csat`. A score outside 1-7 raises ValueError.
    """
    _check_alpha(alpha)
    return _score_kpi(feedback, "ces", "easy_share", by=by, period=period, alpha=alpha,
                      compare_periods=compare_periods)


# --------------------------------------------------------------------------- behaviour KPIs
_RATE_COLUMNS = ["n", "successes", "rate", "se", "ci_low", "ci_high"]


def conversion_rate(events, *, journey=None, by=None, period=None, window="journey",
                    alpha: float = 0.05, compare_periods: bool = False) -> pd.DataFrame:
    """Conversion rate: share of the customers who reached the first funnel step that
    reached the conversion touchpoint within the window.

    ``rate = successes / n``: ``n`` customers with an event of the map's first funnel step
    (``journey.funnel[0]``), ``successes`` those among them with a conversion event
    (``journey.conversion``) at or after their first step-1 event and within ``window`` of
    it; Wilson interval. Computed by :func:`cxlab.funnel.funnel` (closed, two steps), so
    its definitions apply: the ``by`` level and the ``period`` are those of the
    customer's first step-1 event.

    ``window``: ``"journey"`` (default) uses the map's ``conversion_window``; a duration
    with a unit (``"7D"``); ``None`` for no window.

    Returns ``by``, ``period``, ``n``, ``successes``, ``rate``, ``se``, ``ci_low``,
    ``ci_high``.
    """
    from .funnel import funnel

    _check_alpha(alpha)
    jm = JourneyMap.coerce(journey)
    if isinstance(window, str) and window == "journey":
        window = jm.conversion_window
    t = _events(events)
    t, keys = _keys(t, by, period)
    f = funnel(t, journey=jm, steps=[jm.funnel[0], jm.conversion], window=window,
               by=keys or None, alpha=alpha)
    first = f[f["step"] == 1].reset_index(drop=True)
    conv = f[f["step"] == 2].reset_index(drop=True)
    df = first[keys].copy()
    df["n"] = first["n"].astype("int64")
    df["successes"] = conv["n"].astype("int64").to_numpy()
    df = _proportion(df, "successes", "n", alpha)
    return _maybe_compare(_finish(df, keys, _RATE_COLUMNS, kpi="conversion_rate", value="rate"),
                          compare_periods, period, alpha)


def _purchase_tps(purchase, jm):
    return _touchpoints(purchase, argument="purchase") if purchase is not None else [jm.conversion]


def retention(events, *, cohort: str = "first_purchase", periods: int = 6, period: str = "M",
              activity="purchase", purchase=None, journey=None, alpha: float = 0.05
              ) -> pd.DataFrame:
    """Cohort retention, in long format.

    A customer enters at their first purchase (the map's ``conversion`` touchpoint, or
    ``purchase=``); ``period_index`` k counts calendar periods (``period``: ``"M"``,
    ``"W"``, ``"Q"``...) from the period of that first purchase. The customer is
    *retained* at k >= 1 when they have an *activity* event in period k: with
    ``activity="purchase"`` (default) a purchase, with ``activity="any"`` any event, or
    the touchpoint(s) given. At k = 0 every customer counts (rate 1 by definition).

    ``cohort``: ``"first_purchase"`` (or ``"first_purchase_month"``) groups customers by
    the period of their first purchase; a column name groups them by that column's value
    on their first purchase event (smallest when several share the instant).

    ``rate = retained / customers`` with a Wilson interval. Periods that start after the
    last event in the data are not reported (not yet observed), so the right edge of the
    table is ragged; the last reported period of a cohort may be incomplete.

    Returns ``cohort``, ``period_index`` (0..periods), ``period`` (start of the calendar
    period; only for the ``first_purchase`` cohorts), ``n`` (customers in the cohort),
    ``successes`` (retained), ``rate``, ``se``, ``ci_low``, ``ci_high``.
    """
    _check_alpha(alpha)
    jm = JourneyMap.coerce(journey)
    unit = _period_unit(period)
    if unit is None:
        raise ValueError("period=None: retention needs a period ('W', 'M', 'Q'...)")
    if isinstance(periods, bool) or not isinstance(periods, (int, np.integer)) or periods < 1:
        raise ValueError(f"periods={periods!r} must be a positive whole number of periods")
    t = _events(events)
    buy_tps = _purchase_tps(purchase, jm)
    _check_in_data(t, buy_tps, argument="purchase")
    by_period = cohort in ("first_purchase", "first_purchase_month")
    if not by_period:
        check_columns(t, cohort, argument="cohort")
    if activity == "purchase":
        act = t.filter(t.touchpoint.isin(buy_tps))
    elif activity == "any":
        act = t
    else:
        tps = _touchpoints(activity, argument="activity")
        _check_in_data(t, tps, argument="activity")
        act = t.filter(t.touchpoint.isin(tps))
    buys = t.filter(t.touchpoint.isin(buy_tps))
    first = buys.group_by("customer_id").aggregate(first=buys.ts.min())
    if not by_period:
        j = buys.join(first, (buys.customer_id == first.customer_id) & (buys.ts == first.first))
        lv = j.group_by(buys.customer_id).aggregate(cohort=j[cohort].min())
        first = first.join(lv, "customer_id").select(first, lv.cohort)
    first = first.mutate(p0=first.first.truncate(unit))
    a = act.select("customer_id", p=act.ts.truncate(unit)).distinct()
    cust = first.select("customer_id", "p0", *(["cohort"] if not by_period else [])).execute()
    seen = a.join(first.select("customer_id", "p0"), "customer_id")
    seen = seen.filter(seen.p > seen.p0).select("customer_id", "p").execute()
    end = t.ts.max().execute()
    if cust.empty:
        raise ValueError(f"no customer has a purchase ({buy_tps}): retention needs purchases")
    freq = _PANDAS_FREQ[unit]

    def ordinal(s):
        s = pd.to_datetime(s)
        if getattr(s.dtype, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return s.dt.to_period(freq)

    cust["p0"] = ordinal(cust["p0"])
    if by_period:
        cust["cohort"] = cust["p0"]
    seen["p"] = ordinal(seen["p"])
    seen = seen.merge(cust[["customer_id", "p0", "cohort"]], on="customer_id")
    seen["k"] = (seen["p"] - seen["p0"]).map(lambda d: d.n).astype("int64")
    seen = seen[seen["k"] <= periods]
    end_p = pd.Timestamp(end).tz_convert("UTC").tz_localize(None).to_period(freq)
    size = cust.groupby("cohort", sort=True, dropna=False).size()
    ret = seen.groupby(["cohort", "k"], dropna=False)["customer_id"].nunique()
    rows = []
    for c, nc in size.items():
        for k in range(periods + 1):
            if by_period and c + k > end_p:
                break
            if not by_period:
                # a custom cohort mixes first-purchase periods: a customer counts at k
                # only if period p0 + k has started; customers not yet observed drop out
                members = cust[cust["cohort"] == c] if not pd.isna(c) else cust[cust["cohort"].isna()]
                nk = int(((members["p0"] + k) <= end_p).sum()) if k else len(members)
                if nk == 0:
                    break
            else:
                nk = int(nc)
            r = int(ret.get((c, k), 0)) if k else nk
            rows.append({"cohort": c, "period_index": k, "n": nk, "successes": r,
                         "period": (c + k).start_time.tz_localize("UTC") if by_period else pd.NaT})
    df = pd.DataFrame(rows)
    if by_period:
        df["cohort"] = df["cohort"].map(lambda p: p.start_time.tz_localize("UTC"))
    df = _proportion(df, "successes", "n", alpha)
    cols = ["period_index", *(["period"] if by_period else []), *_RATE_COLUMNS]
    out = df[["cohort", *cols]].reset_index(drop=True)
    out.attrs["kpi"] = {"name": "retention", "value": "rate", "keys": ["cohort", "period_index"]}
    return out


def _first_two_purchases(t, buy_tps, keys):
    """Per purchaser: first purchase ts, key levels at it, second (later) purchase ts."""
    buys = t.filter(t.touchpoint.isin(buy_tps))
    first = buys.group_by("customer_id").aggregate(first=buys.ts.min())
    if keys:
        j = buys.join(first, (buys.customer_id == first.customer_id) & (buys.ts == first.first))
        lv = j.group_by(buys.customer_id).aggregate(**{k: j[k].min() for k in keys})
        first = first.join(lv, "customer_id").select(first, *[lv[k] for k in keys])
    later = buys.join(first.select("customer_id", f0="first"), "customer_id")
    later = later.filter(later.ts > later.f0)
    second = later.group_by("customer_id").aggregate(second=later.ts.min())
    return first.left_join(second, "customer_id").select(first, second.second)


def repurchase_rate(events, *, window=None, by=None, period=None, purchase=None, journey=None,
                    censor: bool = True, alpha: float = 0.05, compare_periods: bool = False
                    ) -> pd.DataFrame:
    """Repurchase rate: share of purchasers who buy again.

    ``n`` = customers with a purchase (the map's ``conversion`` touchpoint, or
    ``purchase=``); ``successes`` = those with a purchase strictly later than their first
    one (a second purchase event at the same instant is the same order), within
    ``window`` of the first when a window is given. ``rate`` with a Wilson interval.
    ``by`` levels and ``period`` come from the customer's first purchase.

    With a window and ``censor=True`` (default), customers whose first purchase is less
    than ``window`` before the last event in the data are left out: they could not yet
    have been seen for the whole window and would bias the rate down.

    Also ``p25``, ``p50``, ``p75`` (Timedelta): percentiles of the time from the first to
    the second purchase among the repurchasers (linear interpolation).

    Returns ``by``, ``period``, ``n``, ``successes``, ``rate``, ``se``, ``ci_low``,
    ``ci_high``, ``p25``, ``p50``, ``p75``.
    """
    _check_alpha(alpha)
    jm = JourneyMap.coerce(journey)
    td = None if window is None else _duration(window, "window")
    t = _events(events)
    buy_tps = _purchase_tps(purchase, jm)
    _check_in_data(t, buy_tps, argument="purchase")
    t, keys = _keys(t, by, period)
    per = _first_two_purchases(t, buy_tps, keys).execute()
    if td is not None and censor:
        end = pd.Timestamp(t.ts.max().execute())
        per = per[pd.to_datetime(per["first"]) + td <= end]
    gap = pd.to_datetime(per["second"]) - pd.to_datetime(per["first"])
    ok = gap.notna() if td is None else gap.notna() & (gap <= td)
    per = per.assign(ok=ok.astype("int64"), gap=gap.where(ok))
    qs = {"p25": .25, "p50": .5, "p75": .75}
    groups = per.groupby(keys, dropna=False, sort=True) if keys else [((), per)]
    rows = []
    for key, g in groups:
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update(n=len(g), successes=int(g["ok"].sum()))
        gaps = g["gap"].dropna()
        ns = (gaps / pd.Timedelta(nanoseconds=1)).to_numpy("float64")
        for name, p in qs.items():
            row[name] = pd.Timedelta(round(float(np.quantile(ns, p))), unit="ns") if len(ns) else pd.NaT
        rows.append(row)
    df = pd.DataFrame([{k: v for k, v in r.items() if k not in qs} for r in rows],
                      columns=[*keys, "n", "successes"])
    for name in qs:
        df[name] = pd.Series([r[name] for r in rows], dtype="timedelta64[ns]", index=df.index)
    df = _proportion(df, "successes", "n", alpha)
    return _maybe_compare(_finish(df, keys, [*_RATE_COLUMNS, "p25", "p50", "p75"],
                                  kpi="repurchase_rate", value="rate"),
                          compare_periods, period, alpha)


def _duration(value, argument):
    if value is None or isinstance(value, (bool, int, float, np.number)):
        raise ValueError(f"{argument}={value!r} is not a duration with a unit: write e.g. "
                         "'30min', '12h', '7D' or a pd.Timedelta")
    try:
        return parse_duration(value, key=argument)
    except ValueError as exc:
        raise ValueError(f"{argument}={value!r}: {str(exc).split(': ', 2)[-1]}") from None


_CARE_COLUMNS = ["n", "n_timed", "share_timed", "p50", "p90", "mean", "sd", "se", "ci_low",
                 "ci_high"]


def care_responsiveness(events, *, contact=None, reply=None, resolution=None,
                        customer: str = "customer_id", touchpoint: str = "touchpoint",
                        per: str = "contact", journey=None, by=None, period=None,
                        alpha: float = 0.05, compare_periods: bool = False) -> pd.DataFrame:
    """Customer-care responsiveness: first-response time and resolution time.

    For each *contact* (an event of a ``contact`` touchpoint), the first-response time is
    the time to the first ``reply`` event of the same customer (or case) *strictly after*
    the contact, and the resolution time the time to the first ``resolution`` event
    strictly after it (an event at the very instant of the contact is the contact's own
    record, not an answer). Contacts of one customer at the same instant count once.
    ``per="case"`` keeps only each customer's (case's) first contact: the right grain
    for ticket logs, where ``customer`` is the case id and ``contact`` every activity (the
    case's first event opens it).

    Defaults: ``contact``, ``reply`` and ``resolution`` come from the journey map's
    ``roles`` (``care_contact``, ``care_reply``, ``care_resolution``) when it has them,
    else ``support_contact`` / ``support_reply`` / none. Without a resolution touchpoint
    only first-response rows are returned.

    Figures per ``metric`` (``first_response``, ``resolution``) and breakdown (``by`` levels
    and ``period`` of the contact event): ``n`` contacts, ``n_timed`` with an answer
    (resp. resolution), ``share_timed = n_timed / n``; over the timed contacts ``p50``,
    ``p90`` (exact quantiles, linear interpolation, on times truncated to the
    millisecond), ``mean`` and ``sd``; ``se`` and ``ci_low``/``ci_high`` the t interval of
    the mean. Durations are Timedeltas. Unanswered contacts are not in the times: read
    ``share_timed`` alongside.
    """
    _check_alpha(alpha)
    if per not in ("contact", "case"):
        raise ValueError(f"per={per!r} is not one of ('contact', 'case')"
                         + did_you_mean(str(per), ("contact", "case")))
    _, roles = _journey_roles(journey)
    contact = _touchpoints(contact if contact is not None else roles.get("care_contact", ["support_contact"]),
                           argument="contact")
    reply = _touchpoints(reply if reply is not None else roles.get("care_reply", ["support_reply"]),
                         argument="reply")
    resolution = _touchpoints(resolution if resolution is not None else roles.get("care_resolution"),
                              argument="resolution")
    t = _events(events, required=())
    for arg, col in (("customer", customer), ("touchpoint", touchpoint)):
        check_columns(t, col, argument=arg)
    check_columns(t, "ts", argument="ts")
    t = t.rename(cid=customer) if customer != "cid" else t
    if touchpoint != "touchpoint":
        if "touchpoint" in t.columns:
            t = t.drop("touchpoint")
        t = t.rename(touchpoint=touchpoint)
    for arg, tps in (("contact", contact), ("reply", reply), ("resolution", resolution)):
        _check_in_data(t, tps, argument=arg)
    t, keys = _keys(t, by, period)
    c = t.filter(t.touchpoint.isin(contact))
    c = c.group_by(["cid", "ts"]).aggregate(**{k: c[k].min() for k in keys})
    if per == "case":
        f = c.group_by("cid").aggregate(t0=c.ts.min())
        c = c.join(f, (c.cid == f.cid) & (c.ts == f.t0)).select(*[c[k] for k in c.columns])

    def first_after(tps, name):
        r = t.filter(t.touchpoint.isin(tps)).select(rid="cid", rts="ts")
        j = c.left_join(r, [c.cid == r.rid, r.rts > c.ts]).select(cid=c.cid, ts=c.ts, rts=r.rts)
        return j.group_by(["cid", "ts"]).aggregate(**{name: j.rts.min()})

    frames = []
    for metric, tps in (("first_response", reply), ("resolution", resolution)):
        if not tps:
            continue
        fa = first_after(tps, "ans")
        w = c.join(fa, ["cid", "ts"]).select(c, fa.ans)
        w = w.mutate(d=(epoch_ms(w.ans) - epoch_ms(w.ts)).cast("float64"))
        d = w.d
        df = _agg(w, keys, n=w.count(), n_timed=d.count(), p50=d.quantile(0.5),
                  p90=d.quantile(0.9), total=d.sum(), sumsq=(d * d).sum())
        df["metric"] = metric
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df["share_timed"] = df["n_timed"] / df["n"]
    mean, sd, se, lo, hi = _mean_t(df["total"].fillna(0), df["sumsq"].fillna(0), df["n_timed"], alpha)
    for name, v in (("mean", mean), ("sd", sd), ("se", se), ("ci_low", lo), ("ci_high", hi),
                    ("p50", df["p50"].to_numpy("float64")), ("p90", df["p90"].to_numpy("float64"))):
        # ms -> Timedelta, rounded to the microsecond (interpolated quantiles and means
        # carry float noise below that)
        df[name] = pd.to_timedelta(np.round(np.asarray(v, dtype="float64") * 1e3) * 1e3, unit="ns")
    df["metric"] = pd.Categorical(df["metric"], ["first_response", "resolution"])
    out = _finish(df, keys, ["metric", *_CARE_COLUMNS], kpi="care_responsiveness",
                  value="mean", sort_extra=["metric"])
    out = out[[*keys, "metric", *_CARE_COLUMNS]]
    out["metric"] = out["metric"].astype(str)
    return _maybe_compare(out, compare_periods, period, alpha)


def _cost_table(costs) -> pd.DataFrame:
    if isinstance(costs, Mapping):
        rows = []
        for k, v in costs.items():
            if isinstance(k, tuple):
                if len(k) != 2:
                    raise ValueError(f"costs key {k!r} must be a touchpoint or (touchpoint, channel)")
                rows.append({"touchpoint": k[0], "channel": k[1], "cost": v})
            else:
                rows.append({"touchpoint": k, "cost": v})
        ct = pd.DataFrame(rows)
    elif isinstance(costs, pd.DataFrame):
        ct = costs.copy()
    else:
        raise TypeError("costs must be a dict {touchpoint: cost} / {(touchpoint, channel): cost} "
                         "or a DataFrame with touchpoint[, channel], cost")
    for col in ("touchpoint", "cost"):
        if col not in ct.columns:
            raise ValueError(f"costs has no column {col!r}" + did_you_mean(col, ct.columns))
    extra = [c for c in ct.columns if c not in ("touchpoint", "channel", "cost")]
    if extra:
        raise ValueError(f"costs: unexpected columns {extra}; allowed: touchpoint, channel, cost")
    ct["cost"] = pd.to_numeric(ct["cost"], errors="coerce").astype("float64")
    if ct["cost"].isna().any() or (ct["cost"] < 0).any():
        raise ValueError("costs: every cost must be a number >= 0")
    if ct.empty:
        raise ValueError("costs is empty")
    keys = ["touchpoint", "channel"] if "channel" in ct.columns else ["touchpoint"]
    if ct.duplicated(keys).any():
        raise ValueError(f"costs lists a {'/'.join(keys)} twice")
    return ct


def cost_to_serve(events, *, costs, by=None, period=None, breakdown=None,
                  alpha: float = 0.05, compare_periods: bool = False) -> pd.DataFrame:
    """Cost to serve per customer.

    Each event costs ``costs[touchpoint]`` (or ``costs[(touchpoint, channel)]`` when the
    cost table has a channel; an event no row matches costs 0). A customer's cost is the
    sum over their events (in the ``by``/``period`` cell: a customer active in two months
    counts in both, with that month's events). ``value`` = mean cost per customer over all
    customers with an event in the cell, with the t interval; ``total_cost`` the sum.

    ``breakdown="channel"`` or ``"touchpoint"`` returns instead where the cost goes:
    ``by``, ``period``, the breakdown column, ``events``, ``cost`` and ``share`` of the
    cell's total cost.

    Returns ``by``, ``period``, ``n`` (customers), ``total_cost``, ``value``, ``sd``,
    ``se``, ``ci_low``, ``ci_high``.
    """
    import ibis

    _check_alpha(alpha)
    ct = _cost_table(costs)
    t = _events(events)
    _check_in_data(t, ct["touchpoint"].dropna().unique().tolist(), argument="costs")
    ckeys = ["touchpoint", "channel"] if "channel" in ct.columns else ["touchpoint"]
    if "channel" in ckeys:
        check_columns(t, "channel", argument="costs (channel)")
    if breakdown is not None and breakdown not in ("channel", "touchpoint"):
        raise ValueError(f"breakdown={breakdown!r} is not one of (None, 'channel', 'touchpoint')"
                         + did_you_mean(str(breakdown), ("channel", "touchpoint")))
    t, keys = _keys(t, by, period)
    cm = ibis.memtable(ct.rename(columns={k: f"_c_{k}" for k in ckeys}))
    j = t.left_join(cm, [t[k] == cm[f"_c_{k}"] for k in ckeys])
    j = j.mutate(cost=ibis.coalesce(j.cost, 0.0))
    if breakdown is not None:
        df = _agg(j, [*keys, breakdown], events=j.count(), cost=j.cost.sum())
        tot = df.groupby(keys, dropna=False)["cost"].transform("sum") if keys else df["cost"].sum()
        df["share"] = df["cost"] / tot
        out = _finish(df, keys, [breakdown, "events", "cost", "share"], kpi="cost_breakdown",
                      value="share", sort_extra=[breakdown])
        return out[[*keys, breakdown, "events", "cost", "share"]]
    pc = j.group_by(["customer_id", *keys]).aggregate(c=j.cost.sum())
    df = _agg(pc, keys, n=pc.count(), total_cost=pc.c.sum(), sumsq=(pc.c * pc.c).sum())
    df["value"], df["sd"], df["se"], df["ci_low"], df["ci_high"] = _mean_t(
        df["total_cost"], df["sumsq"], df["n"], alpha)
    return _maybe_compare(_finish(df, keys, ["n", "total_cost", "value", "sd", "se", "ci_low",
                                             "ci_high"], kpi="cost_to_serve", value="value"),
                          compare_periods, period, alpha)


def upsell_rate(events, *, upgrade=None, purchase=None, journey=None, by=None, period=None,
                alpha: float = 0.05, compare_periods: bool = False) -> pd.DataFrame:
    """Upsell rate: share of purchasers who later spend more or take an upgrade.

    ``n`` = customers with a purchase (the map's ``conversion``, or ``purchase=``); a
    purchaser is *upsold* when a later purchase (strictly after the first) has a
    ``value`` above the first order's value (the sum of the first-instant purchase rows),
    or when they have an ``upgrade`` event strictly after the first purchase. ``upgrade``
    defaults to the map's ``upgrade`` role, else ``upgrade_offer``; ``upgrade=[]`` counts
    order values only. ``rate`` with a Wilson interval; ``by_value``, ``by_upgrade`` count
    each route (a customer may take both). ``by`` levels and ``period`` come from the
    first purchase. Purchases without a value cannot show a rise.

    Returns ``by``, ``period``, ``n``, ``successes``, ``rate``, ``se``, ``ci_low``,
    ``ci_high``, ``by_value``, ``by_upgrade``.
    """
    _check_alpha(alpha)
    jm, roles = _journey_roles(journey)
    buy_tps = _purchase_tps(purchase, jm)
    up = _touchpoints(upgrade if upgrade is not None else roles.get("upgrade", ["upgrade_offer"]),
                      argument="upgrade", allow_empty=True)
    t = _events(events)
    check_columns(t, "value", argument="value")
    _check_in_data(t, buy_tps, argument="purchase")
    if upgrade is not None:
        _check_in_data(t, up, argument="upgrade")
    t, keys = _keys(t, by, period)
    buys = t.filter(t.touchpoint.isin(buy_tps))
    first = buys.group_by("customer_id").aggregate(f0=buys.ts.min())
    j = buys.join(first, (buys.customer_id == first.customer_id) & (buys.ts == first.f0))
    lv = j.group_by(buys.customer_id).aggregate(v0=j.value.sum(), f0=j.f0.min(),
                                                **{k: j[k].min() for k in keys})
    later = buys.join(lv.select("customer_id", "f0", "v0"), "customer_id")
    later = later.filter(later.ts > later.f0)
    rise = later.group_by(later.customer_id).aggregate(
        rise=(later.value > later.v0).cast("int64").max())
    cust = lv.left_join(rise, "customer_id").select(lv, rise.rise)
    if up:
        u = t.filter(t.touchpoint.isin(up)).join(lv.select("customer_id", "f0"), "customer_id")
        u = u.filter(u.ts > u.f0).group_by("customer_id").aggregate(upg=u.ts.count())
        cust = cust.left_join(u, "customer_id").select(cust, u.upg)
    else:
        cust = cust.mutate(upg=0)
    v = cust.rise.fill_null(0) > 0
    g = cust.upg.fill_null(0) > 0
    df = _agg(cust, keys, n=cust.count(), successes=(v | g).cast("int64").sum(),
              by_value=v.cast("int64").sum(), by_upgrade=g.cast("int64").sum())
    df = _proportion(df, "successes", "n", alpha)
    return _maybe_compare(_finish(df, keys, [*_RATE_COLUMNS, "by_value", "by_upgrade"],
                                  kpi="upsell_rate", value="rate"),
                          compare_periods, period, alpha)


def channel_switching(events, *, window="7D", contact=None, journey=None, by=None,
                      period=None, matrix: bool = False, alpha: float = 0.05,
                      compare_periods: bool = False) -> pd.DataFrame:
    """Channel switching of care contacts: the same request repeated on another channel.

    A contact (an event of a ``contact`` touchpoint; default: the map's ``care_contact``
    role, else ``support_contact``) *switches* when the same customer's *next* contact
    comes within ``window`` after it (``0 < gap <= window``) on a different ``channel``.
    ``rate = successes / n`` over all contacts, Wilson interval; ``repeats`` counts
    contacts followed by any contact within the window (same channel or not). ``by``
    levels and ``period`` are the first contact's.

    ``matrix=True`` returns the channel-to-channel table instead: ``from_channel``,
    ``to_channel``, ``n`` (contacts from ``from_channel`` followed within the window by a
    next contact on ``to_channel``; the diagonal is a repeat on the same channel) and
    ``share`` of all contacts from ``from_channel``.

    Returns ``by``, ``period``, ``n``, ``successes``, ``rate``, ``se``, ``ci_low``,
    ``ci_high``, ``repeats``.
    """
    import ibis

    _check_alpha(alpha)
    td = _duration(window, "window")
    _, roles = _journey_roles(journey)
    contact = _touchpoints(contact if contact is not None else roles.get("care_contact", ["support_contact"]),
                           argument="contact")
    t = _events(events)
    check_columns(t, "channel", argument="channel")
    _check_in_data(t, contact, argument="contact")
    t, keys = _keys(t, by, period)
    c = t.filter(t.touchpoint.isin(contact))
    c = c.select("customer_id", "ts", "channel", *keys)
    w = ibis.window(group_by="customer_id", order_by=["ts", "channel"])
    c = c.mutate(nts=c.ts.lead().over(w), nch=c.channel.lead().over(w))
    wnd = ibis.interval(microseconds=int(td / pd.Timedelta(microseconds=1)))
    rep = c.nts.notnull() & (c.nts > c.ts) & (c.nts <= c.ts + wnd)
    c = c.mutate(rep=rep.fill_null(False))
    if matrix:
        tot = c.group_by("channel").aggregate(total=c.count())
        rc = c.filter(c.rep)
        m = rc.group_by(["channel", "nch"]).aggregate(n=rc.count()).execute()
        tot = tot.execute()
        m = m.merge(tot, on="channel").rename(columns={"channel": "from_channel", "nch": "to_channel"})
        m["share"] = m["n"] / m["total"]
        return m.sort_values(["from_channel", "to_channel"], ignore_index=True)[
            ["from_channel", "to_channel", "n", "share"]]
    sw = c.rep & (c.nch != c.channel)
    df = _agg(c, keys, n=c.count(), successes=sw.cast("int64").sum(),
              repeats=c.rep.cast("int64").sum())
    df = _proportion(df, "successes", "n", alpha)
    return _maybe_compare(_finish(df, keys, [*_RATE_COLUMNS, "repeats"], kpi="channel_switching",
                                  value="rate"), compare_periods, period, alpha)


# --------------------------------------------------------------------------- comparisons
def period_change(table: pd.DataFrame, *, alpha: float = 0.05, min_n: int = 30) -> pd.DataFrame:
    """Change between consecutive periods of a KPI table (built with ``period=``).

    For each ``by`` level (and ``metric``), each period is compared with the previous
    period *that has data*: ``diff = value - previous_value``, a test of no change and a
    ``1 - alpha`` interval for the difference:

    - proportions (rows with ``successes``): pooled two-proportion z-test; interval
      ``diff +- z * sqrt(se1^2 + se2^2)`` (Wald);
    - means (rows with ``sd``): Welch's t-test with Welch-Satterthwaite df;
    - NPS (rows with neither): z-test ``diff / sqrt(se1^2 + se2^2)``.

    ``significant`` is ``p_value < alpha`` *and* both periods have at least ``min_n``
    observations (default 30): below that the normal approximations are unreliable (a month
    with 3 answers, all promoters, has a standard error of 0), so the change is reported as
    within noise whatever the p-value; ``n`` and ``previous_n`` are in the table. Timedelta KPIs (care responsiveness) keep
    their unit in ``value``, ``previous_value``, ``diff`` and its interval.

    Returns the key columns, ``period``, ``previous_period``, ``value``,
    ``previous_value``, ``n``, ``previous_n``, ``diff``, ``diff_ci_low``, ``diff_ci_high``,
    ``statistic``, ``p_value``, ``significant``.
    """
    from scipy.stats import norm
    from scipy.stats import t as tdist

    _check_alpha(alpha)
    if "period" not in table.columns:
        raise ValueError("period_change needs a table built with period= (no 'period' column)")
    info = table.attrs.get("kpi", {})
    value = info.get("value") or next((c for c in ("nps", "rate", "value", "mean")
                                       if c in table.columns), None)
    if value is None or value not in table.columns or "se" not in table.columns:
        raise ValueError("period_change needs a KPI table from cxlab.kpis (value and se columns)")
    keys = [k for k in info.get("keys", []) if k in table.columns and k != "period"]
    if not info:
        keys = [c for c in table.columns if c == "metric"]
    is_td = pd.api.types.is_timedelta64_dtype(table[value])

    def num(s):
        return (s / pd.Timedelta(seconds=1)).astype("float64") if is_td else s.astype("float64")

    df = table.sort_values([*keys, "period"], kind="stable").reset_index(drop=True)
    cols = {"value": num(df[value]), "se": num(df["se"])}
    if "sd" in df.columns:
        cols["sd"] = num(df["sd"])
    work = pd.DataFrame(cols)
    nn = df["n_timed"] if "n_timed" in df.columns else df["n"]
    work["n"] = nn.astype("float64")
    work["s"] = df["successes"].astype("float64") if "successes" in df.columns else np.nan
    grp = df.groupby(keys, sort=False, dropna=False) if keys else None
    prev = work.groupby([df[k] for k in keys], sort=False, dropna=False).shift(1) if keys else work.shift(1)
    prev_period = grp["period"].shift(1) if keys else df["period"].shift(1)
    diff = work["value"] - prev["value"]
    se = np.sqrt(work["se"] ** 2 + prev["se"] ** 2)
    z = _z(alpha)
    stat = diff / se
    p = 2 * norm.sf(np.abs(stat))
    lo, hi = diff - z * se, diff + z * se
    prop = work["s"].notna() & prev["s"].notna()
    if prop.any():
        zz, pp = two_proportion_test(work["s"], work["n"], prev["s"], prev["n"])
        stat = np.where(prop, zz, stat)
        p = np.where(prop, pp, p)
    if "sd" in work.columns:
        mean = work["sd"].notna() & prev["sd"].notna() & ~prop
        if mean.any():
            v1, v2 = work["se"] ** 2, prev["se"] ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                dof = (v1 + v2) ** 2 / (v1 ** 2 / (work["n"] - 1) + v2 ** 2 / (prev["n"] - 1))
                tq = tdist.ppf(1 - alpha / 2, dof)
                pt = 2 * tdist.sf(np.abs(diff / se), dof)
            p = np.where(mean, pt, p)
            lo = np.where(mean, diff - tq * se, lo)
            hi = np.where(mean, diff + tq * se, hi)
    out = df[[*keys, "period"]].copy()
    out["previous_period"] = prev_period
    out["value"], out["previous_value"] = work["value"], prev["value"]
    out["n"], out["previous_n"] = work["n"], prev["n"]
    out["diff"], out["diff_ci_low"], out["diff_ci_high"] = diff, lo, hi
    out["statistic"], out["p_value"] = np.asarray(stat, dtype="float64"), np.asarray(p, dtype="float64")
    out = out[out["previous_period"].notna()].reset_index(drop=True)
    out["significant"] = (out["p_value"] < alpha) & (out["n"] >= min_n) & (out["previous_n"] >= min_n)
    out["n"], out["previous_n"] = out["n"].astype("int64"), out["previous_n"].astype("int64")
    if is_td:
        for c in ("value", "previous_value", "diff", "diff_ci_low", "diff_ci_high"):
            out[c] = pd.to_timedelta(out[c], unit="s")
    return out
