"""Conversion funnels: closed, open and any-order, with a conversion window.

Every funnel is computed in the engine through Ibis (joins, conditional aggregates, exact
quantiles), so the same call gives the same numbers on DuckDB and on PySpark; only the
per-step aggregate (one row per step and ``by`` level) comes back as pandas.

The definitions are written out in :func:`funnel`.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._engine import as_table, check_columns, epoch_ms
from .exceptions import did_you_mean
from .journey import JourneyMap, parse_duration
from .stats import _check_alpha, two_proportion_test, wilson_ci

__all__ = ["funnel", "funnel_by_moment", "plot_funnel", "ORDERS", "QUANTILES"]

ORDERS = ("closed", "open", "any")
#: time-to-step percentiles reported (column name -> quantile)
QUANTILES = {"p25": 0.25, "p50": 0.50, "p75": 0.75, "p90": 0.90}

COLUMNS = ("step", "touchpoint", "moment", "n", "rate", "step_rate", "ci_low", "ci_high",
           "step_ci_low", "step_ci_high", "dropped", *QUANTILES, "effort")


# --------------------------------------------------------------------------- arguments
def _window(window) -> pd.Timedelta | None:
    if window is None:
        return None
    if isinstance(window, bool) or isinstance(window, (int, float, np.number)):
        raise ValueError(f"window={window!r} is a bare number: give a duration with a unit "
                         "('30min', '12h', '7D', a pd.Timedelta) or None for no window")
    try:
        return parse_duration(window, key="window")
    except ValueError as exc:
        reason = str(exc).split(": ", 2)[-1]
        raise ValueError(f"window={window!r}: {reason}") from None


def _order(order: str) -> str:
    if order not in ORDERS:
        raise ValueError(f"order={order!r} is not one of {ORDERS}" + did_you_mean(str(order), ORDERS))
    return order


def _steps(t, steps, journey: JourneyMap) -> list[str]:
    steps = list(journey.funnel if steps is None else ([steps] if isinstance(steps, str) else steps))
    if len(steps) < 2:
        raise ValueError(f"steps={steps!r}: a funnel needs at least two steps")
    seen = set()
    for s in steps:
        if not isinstance(s, str):
            raise ValueError(f"steps: {s!r} is not a touchpoint name")
        if s in seen:
            raise ValueError(f"steps: touchpoint {s!r} is listed twice; each step is a "
                             "distinct touchpoint")
        seen.add(s)
    # a step the map knows is fine even when the data lacks it (n = 0); otherwise ask the data
    unmapped = [s for s in steps if s not in journey.touchpoints]
    if unmapped:
        present = set(t.filter(t.touchpoint.isin(unmapped)).select("touchpoint").distinct()
                      .execute()["touchpoint"])
        for s in unmapped:
            if s not in present:
                choices = list(journey.touchpoints)
                known = t.select("touchpoint").distinct().execute()["touchpoint"].dropna().tolist()
                raise ValueError(f"steps: unknown touchpoint {s!r}, neither in the data nor in "
                                 f"the journey map" + did_you_mean(s, known + choices))
    return steps


def _exclude(exclude, steps_tps) -> list[str]:
    if exclude is None:
        return []
    ex = [exclude] if isinstance(exclude, str) else list(exclude)
    for x in ex:
        if x in steps_tps:
            raise ValueError(f"exclude={x!r} is also a funnel step; a touchpoint cannot both "
                             "make and break a step")
    return ex


# --------------------------------------------------------------------------- the engine part
def _closed_per_customer(t, groups, *, window, by, exclude, effort):
    """The closed funnel, one row per customer that entered: by levels, ``d{k}`` (ms from
    the entry to the occurrence used for step k, null if not reached) and ``x{k}``
    (effort, null if not reached).

    Shaped for the engine: the chain joins only the step-k events to the customers still
    in the funnel (the range conditions sit in the join, as in a hand-written SQL funnel);
    the per-customer row is assembled by one union and group-by of the stages (no chain of
    left joins); ``effort`` is one range join of all events to the customers, on
    ``t1 <= ts <= last end``, and one group-by that also carries the other columns."""
    import ibis

    K = len(groups)
    tp = t.touchpoint
    relevant = [x for g in groups for x in g] + list(exclude)
    ev = t.filter(tp.isin(relevant)).select("customer_id", "ts", "touchpoint")
    wnd = None if window is None else ibis.interval(
        microseconds=int(window / pd.Timedelta(microseconds=1)))

    s1 = (ev.filter(ev.touchpoint.isin(groups[0])).group_by("customer_id")
          .aggregate(f1=lambda e: e.ts.min()))
    if by:
        entry_ev = t.filter(tp.isin(groups[0]))
        lv = (entry_ev.join(s1, (entry_ev.customer_id == s1.customer_id) & (entry_ev.ts == s1.f1))
              .group_by("customer_id").aggregate(**{c: entry_ev[c].min() for c in by}))
        s1 = s1.left_join(lv, "customer_id").select(s1, *[lv[c] for c in by])

    s1 = s1.cache()                 # the entries, used by every stage and the assembly
    stages = [s1.select("customer_id", "f1", c="f1")]
    stage = stages[0]
    for k in range(2, K + 1):
        is_k = ev.touchpoint.isin(groups[k - 1])
        if exclude:
            evk = ev.filter(is_k | ev.touchpoint.isin(exclude)).select(
                "customer_id", "ts", is_k=is_k)
        else:
            evk = ev.filter(is_k).select("customer_id", "ts")
        preds = [evk.customer_id == stage.customer_id, evk.ts >= stage.c]
        if wnd is not None and not exclude:
            preds.append(evk.ts <= stage.f1 + wnd)
        m = evk.join(stage, preds).select(evk.customer_id, evk.ts, stage.f1, stage.c,
                                          *(["is_k"] if exclude else []))
        if exclude:
            ok = m.is_k if wnd is None else m.is_k & (m.ts <= m.f1 + wnd)
            step = m.group_by("customer_id").aggregate(
                f1=m.f1.min(), n=m.ts.min(where=ok), x=m.ts.min(where=~m.is_k & (m.ts > m.c)))
            nxt = ibis.ifelse(step.x.isnull() | (step.x >= step.n), step.n,
                              ibis.null(step.n.type()))
            stage = step.select("customer_id", "f1", c=nxt).filter(lambda s: s.c.notnull())
        else:
            stage = m.group_by("customer_id").aggregate(f1=m.f1.min(), c=m.ts.min())
        stage = stage.cache()       # used by the next stage and by the assembly: computed once
        stages.append(stage)

    # one row per customer: e{k} (ts used for step k) and d{k}; stage k holds the
    # customers who reached step k, so a left join of each (small) stage to the entries
    w = s1.select("customer_id", *by, e1="f1", m1=epoch_ms(s1.f1))
    for k in range(2, K + 1):
        st = stages[k - 1]
        st = st.select("customer_id", **{f"e{k}": st.c, f"m{k}": epoch_ms(st.c)})
        w = w.left_join(st, "customer_id").select(w, f"e{k}", f"m{k}")
    w = w.select("customer_id", *by, *[f"e{k}" for k in range(1, K + 1)],
                 d1=ibis.ifelse(w.e1.notnull(), ibis.literal(0, "int64"), ibis.null("int64")),
                 **{f"d{k}": w[f"m{k}"] - w.m1 for k in range(2, K + 1)})
    if not effort:
        return w
    # effort: one range join of all the customer's events to its entry..last end, summed
    # per customer; only the counts travel (the times stay in w), and the two per-level
    # aggregates are put side by side in _aggregate
    all_ev = t.select("customer_id", "ts")
    keys = w.select("customer_id", *by, *[f"e{k}" for k in range(1, K + 1)],
                    emax=ibis.coalesce(*[w[f"e{k}"] for k in range(K, 0, -1)]))
    j = all_ev.join(keys, [all_ev.customer_id == keys.customer_id, all_ev.ts >= keys.e1,
                           all_ev.ts <= keys.emax])
    j = j.select(all_ev.customer_id, all_ev.ts, *[keys[c] for c in by],
                 *[keys[f"e{k}"] for k in range(1, K + 1)])
    # ts <= e{k} is null when step k was not reached, and so is the sum
    xa = {c: j[c].min() for c in by}
    xa.update({f"x{k}": (j.ts <= j[f"e{k}"]).cast("int64").sum() for k in range(1, K + 1)})
    eff = j.group_by("customer_id").aggregate(**xa)
    return w, eff.select(*by, *[f"x{k}" for k in range(1, K + 1)])


def _per_customer(t, groups, *, order, window, by, exclude, effort):
    """One row per customer that entered: by levels, ``s{k}``/``e{k}`` (start/end ts of
    step k, end null if not reached), ``d{k}`` (ms) and ``x{k}`` (effort)."""
    import ibis

    if order == "closed":
        return _closed_per_customer(t, groups, window=window, by=by, exclude=exclude,
                                    effort=effort)
    K = len(groups)
    tp = t.touchpoint
    k_expr = ibis.cases(*[(tp.isin(g), k + 1) for k, g in enumerate(groups)], else_=0)
    relevant = [x for g in groups for x in g] + list(exclude)
    ev = t.filter(tp.isin(relevant)).select("customer_id", "ts", k=k_expr)
    wnd = None if window is None else ibis.interval(
        microseconds=int(window / pd.Timedelta(microseconds=1)))

    def within(ts, entry):
        return ibis.literal(True) if wnd is None else ts <= entry + wnd

    entries = [1] if order == "closed" else list(range(1, K + 1))
    # first occurrence of every entry step; f0 = the entry event time (by levels come from it)
    base = ev.filter(ev.k == 1) if order == "closed" else ev.filter(ev.k > 0)
    aggs = {f"f{j}": base.ts.min(where=base.k == j) for j in
            (entries if order != "any" else range(1, K + 1))}
    aggs["f0"] = base.ts.min()
    cust = base.group_by("customer_id").aggregate(**aggs)

    if by:
        entry_ev = t.filter(tp.isin(groups[0]) if order == "closed"
                            else tp.isin([x for g in groups for x in g]))
        lv = (entry_ev.join(cust.select("customer_id", "f0"),
                            (entry_ev.customer_id == cust.customer_id) & (entry_ev.ts == cust.f0))
              .group_by("customer_id").aggregate(**{c: entry_ev[c].min() for c in by}))
        cust = cust.left_join(lv, "customer_id").select(cust, *[lv[c] for c in by])

    ends, starts = {}, {}
    if order == "any":
        for k in range(1, K + 1):
            fs = [cust[f"f{i}"] for i in range(1, k + 1)]
            lo, hi = ibis.least(*fs), ibis.greatest(*fs)
            ok = ibis.and_(*[f.notnull() for f in fs])
            if wnd is not None:
                ok = ok & (hi <= lo + wnd)
            starts[k] = ibis.ifelse(ok, lo, ibis.null("timestamp"))
            ends[k] = ibis.ifelse(ok, hi, ibis.null("timestamp"))
        per = cust.select("customer_id", *by, **{f"s{k}": starts[k] for k in starts},
                          **{f"e{k}": ends[k] for k in ends})
    elif order == "closed":
        # one linear chain, as a hand-written SQL funnel: stage k holds the customers who
        # reached step k, with t1 (f1) and the occurrence used for step k (c)
        stage = cust.select("customer_id", *by, "f1", c=cust.f1)
        reached = [stage]
        for k in range(2, K + 1):
            evk = ev.filter((ev.k == k) | (ev.k == 0)) if exclude else ev.filter(ev.k == k)
            m = evk.join(stage, "customer_id")
            a = {"n": m.ts.min(where=(m.k == k) & (m.ts >= m.c) & within(m.ts, m.f1))}
            if exclude:
                a["x"] = m.ts.min(where=(m.k == 0) & (m.ts > m.c))
            step = m.group_by(["customer_id", *by, "f1"]).aggregate(**a)
            nxt = step.n
            if exclude:
                nxt = ibis.ifelse(step.x.isnull() | (step.x >= step.n), step.n,
                                  ibis.null("timestamp"))
            stage = step.select("customer_id", *by, "f1", c=nxt).filter(lambda s: s.c.notnull())
            reached.append(stage)
        per = reached[0].select("customer_id", *by, s1="f1", e1="c")
        for k in range(2, K + 1):
            r = reached[k - 1]
            per = per.left_join(r.select("customer_id", **{f"e{k}": r.c}), "customer_id") \
                .select(per, f"e{k}")
        per = per.mutate(**{f"s{k}": per.s1 for k in range(2, K + 1)})
    else:
        # chains: chain j enters at the first occurrence of step j (c{j}_{j} = f{j}) and takes,
        # for each later step, its first occurrence at or after the previous one within the
        # window from the entry, unless an excluded touchpoint comes strictly in between.
        cust = cust.mutate(**{f"c{j}_{j}": cust[f"f{j}"] for j in entries})
        for k in range(2, K + 1):
            live = [j for j in entries if j < k]
            alive = cust.filter(ibis.or_(*[cust[f"c{j}_{k - 1}"].notnull() for j in live]))
            alive = alive.select("customer_id", *[f"f{j}" for j in live],
                                 *[f"c{j}_{k - 1}" for j in live])
            evk = ev.filter((ev.k == k) | (ev.k == 0)) if exclude else ev.filter(ev.k == k)
            m = evk.join(alive, "customer_id")
            a = {}
            for j in live:
                prev, entry = m[f"c{j}_{k - 1}"], m[f"f{j}"]
                a[f"n{j}"] = m.ts.min(where=(m.k == k) & (m.ts >= prev) & within(m.ts, entry))
                if exclude:
                    a[f"x{j}"] = m.ts.min(where=(m.k == 0) & (m.ts > prev))
            step = m.group_by("customer_id").aggregate(**a)
            new = {}
            for j in live:
                nxt = step[f"n{j}"]
                if exclude:
                    x = step[f"x{j}"]
                    nxt = ibis.ifelse(x.isnull() | (x >= nxt), nxt, ibis.null("timestamp"))
                new[f"c{j}_{k}"] = nxt
            step = step.select("customer_id", **new)
            cust = cust.left_join(step, "customer_id").select(cust, *[step[c] for c in new])
        for k in range(1, K + 1):
            js = [j for j in entries if j <= k]
            ends[k] = ibis.coalesce(*[cust[f"c{j}_{k}"] for j in js]) if len(js) > 1 \
                else cust[f"c{js[0]}_{k}"]
            if len(js) == 1:
                starts[k] = cust[f"f{js[0]}"]
            else:
                starts[k] = ibis.cases(*[(cust[f"c{j}_{k}"].notnull(), cust[f"f{j}"]) for j in js],
                                       else_=ibis.null("timestamp"))
        per = cust.select("customer_id", *by, **{f"s{k}": starts[k] for k in starts},
                          **{f"e{k}": ends[k] for k in ends})
    per = per.mutate(**{f"d{k}": epoch_ms(per[f"e{k}"]) - epoch_ms(per[f"s{k}"]) for k in range(1, K + 1)})
    if effort:
        all_ev = t.select("customer_id", "ts")
        keys = per.select("customer_id", *[f"s{k}" for k in range(1, K + 1)],
                          *[f"e{k}" for k in range(1, K + 1)])
        j = all_ev.join(keys, "customer_id")
        eff = j.group_by("customer_id").aggregate(**{
            f"x{k}": ((j.ts >= j[f"s{k}"]) & (j.ts <= j[f"e{k}"])).cast("int64").sum()
            for k in range(1, K + 1)})
        per = per.left_join(eff, "customer_id").select(
            per, **{f"x{k}": ibis.ifelse(per[f"e{k}"].notnull(), eff[f"x{k}"],
                                         ibis.null("int64")) for k in range(1, K + 1)})
    return per


def _aggregate(per, K, by, effort) -> pd.DataFrame:
    import ibis

    per, eff = per if isinstance(per, tuple) else (per, None)
    qs = list(QUANTILES.values())
    aggs = {}
    for k in range(1, K + 1):
        n_col = f"e{k}" if f"e{k}" in per.columns else f"d{k}"
        aggs[f"n{k}"] = per[n_col].count()
        # all four percentiles in one aggregate (one sort of the column, not four)
        aggs[f"q_{k}"] = per[f"d{k}"].quantile(qs)
        if effort and eff is None:
            aggs[f"effort_{k}"] = per[f"x{k}"].quantile(0.5)
    agg = per.group_by(by).aggregate(**aggs) if by else per.aggregate(**aggs)
    if effort and eff is not None:
        # the effort medians come from their own per-customer table: one query, two
        # aggregates stacked (part 1: counts and times, part 2: effort), merged below
        ea = {f"effort_{k}": eff[f"x{k}"].quantile(0.5) for k in range(1, K + 1)}
        agg2 = eff.group_by(by).aggregate(**ea) if by else eff.aggregate(**ea)
        a1 = agg.mutate(part=ibis.literal(1, "int8"),
                        **{f"effort_{k}": ibis.null("float64") for k in range(1, K + 1)})
        a2 = agg2.select(*by, **{c: ibis.null(a1[c].type()) for c in aggs},
                         **{f"effort_{k}": agg2[f"effort_{k}"] for k in range(1, K + 1)},
                         part=ibis.literal(2, "int8"))
        both = ibis.union(a1, a2.select(*a1.columns), distinct=False).execute()
        ecols = [f"effort_{k}" for k in range(1, K + 1)]
        w1 = both[both["part"] == 1].drop(columns=["part", *ecols])
        w2 = both[both["part"] == 2][[*by, *ecols]]
        if by:
            wide = w1.merge(w2, on=by, how="left")
        else:
            wide = w1.reset_index(drop=True)
            for c in ecols:
                wide[c] = w2[c].iloc[0] if len(w2) else np.nan
    else:
        wide = agg.execute()
    for k in range(1, K + 1):
        col = wide.pop(f"q_{k}")
        for i, name in enumerate(QUANTILES):
            wide[f"{name}_{k}"] = [None if v is None or (np.ndim(v) == 0 and pd.isna(v))
                                   else v[i] for v in col]
    return wide


def _tidy(wide: pd.DataFrame, labels, moments, tps, by, alpha, effort) -> pd.DataFrame:
    K = len(labels)
    if wide.empty and not by:
        wide = pd.DataFrame({f"n{k}": [0] for k in range(1, K + 1)})
    rows = []
    for _, r in wide.iterrows():
        for k in range(1, K + 1):
            row = {c: r[c] for c in by}
            row.update(step=k, touchpoint=tps[k - 1], moment=moments[k - 1], n=int(r[f"n{k}"]))
            for name in QUANTILES:
                v = r.get(f"{name}_{k}")
                row[name] = (pd.NaT if v is None or pd.isna(v)
                             else pd.Timedelta(int(round(float(v) * 1000)), unit="us"))
            v = r.get(f"effort_{k}") if effort else None
            row["effort"] = np.nan if v is None or pd.isna(v) else float(v)
            rows.append(row)
    out = pd.DataFrame(rows, columns=[*by, "step", "touchpoint", "moment", "n", *QUANTILES, "effort"])
    out["n"] = out["n"].astype("int64")
    key = by if by else None
    first = out.groupby(key, dropna=False, sort=False)["n"].transform("first") if key else \
        pd.Series(out["n"].iloc[0] if len(out) else 0, index=out.index)
    prev = out.groupby(key, dropna=False, sort=False)["n"].shift(1) if key else out["n"].shift(1)
    prev = prev.fillna(out["n"]).astype("int64")     # step 1: its own previous step
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate"] = np.where(first > 0, out["n"] / first.where(first > 0, 1), np.nan)
        out["step_rate"] = np.where(prev > 0, out["n"] / prev.where(prev > 0, 1), np.nan)
    out["ci_low"], out["ci_high"] = wilson_ci(np.minimum(out["n"], first), first, alpha=alpha)
    out["step_ci_low"], out["step_ci_high"] = wilson_ci(np.minimum(out["n"], prev), prev, alpha=alpha)
    out["dropped"] = (prev - out["n"]).astype("int64")
    for name in QUANTILES:   # an all-NaT column (nobody reached the step) would be inferred as datetime
        out[name] = pd.Series([v if isinstance(v, pd.Timedelta) else pd.NaT for v in out[name]],
                              index=out.index, dtype="timedelta64[ns]")
    out = out[[*by, *COLUMNS]]
    if by:
        out = out.sort_values([*by, "step"], kind="stable", ignore_index=True)
    return out


def _run(events, groups, tps, moments, *, order, window, by, exclude, alpha, effort=True):
    t = as_table(events)
    _check_alpha(alpha)
    by = check_columns(t, by, argument="by")
    per = _per_customer(t, groups, order=order, window=window, by=by, exclude=exclude,
                        effort=effort)
    wide = _aggregate(per, len(groups), by, effort)
    return _tidy(wide, tps, moments, tps, by, alpha, effort)


def _compare(table: pd.DataFrame, column, a, b, alpha) -> pd.DataFrame:
    levels = set(table[column].dropna().tolist())
    for lv in (a, b):
        if lv not in levels:
            raise ValueError(f"compare: {column}={lv!r} has no customers entering the funnel"
                             + did_you_mean(str(lv), [str(x) for x in levels])
                             + f"; levels: {sorted(map(str, levels))}")
    ta = table[table[column] == a].set_index("step")
    tb = table[table[column] == b].set_index("step")
    out = ta[["touchpoint", "moment"]].copy()
    out.insert(0, "column", column)
    out["level_a"], out["level_b"] = a, b
    out["n_a"], out["rate_a"] = ta["n"], ta["rate"]
    out["n_b"], out["rate_b"] = tb["n"], tb["rate"]
    base_a, base_b = ta["n"].iloc[0], tb["n"].iloc[0]
    out["diff"] = out["rate_a"] - out["rate_b"]
    # Newcombe (1998) hybrid score interval from the two Wilson intervals
    la, ha = wilson_ci(ta["n"], base_a, alpha=alpha)
    lb, hb = wilson_ci(tb["n"], base_b, alpha=alpha)
    pa, pb = out["rate_a"].to_numpy(), out["rate_b"].to_numpy()
    out["diff_ci_low"] = out["diff"] - np.sqrt((pa - la) ** 2 + (hb - pb) ** 2)
    out["diff_ci_high"] = out["diff"] + np.sqrt((ha - pa) ** 2 + (pb - lb) ** 2)
    out["z"], out["p_value"] = two_proportion_test(ta["n"], base_a, tb["n"], base_b)
    return out.reset_index()[["column", "level_a", "level_b", "step", "touchpoint", "moment",
                              "n_a", "rate_a", "n_b", "rate_b", "diff", "diff_ci_low",
                              "diff_ci_high", "z", "p_value"]]


def _parse_compare(compare):
    if isinstance(compare, Mapping):
        if len(compare) != 1:
            raise ValueError("compare={column: (level_a, level_b)} takes exactly one column")
        (column, pair), = compare.items()
        compare = (column, *pair)
    if not isinstance(compare, (tuple, list)) or len(compare) != 3:
        raise ValueError(f"compare={compare!r} must be (column, level_a, level_b) "
                         "or {column: (level_a, level_b)}")
    return tuple(compare)


# --------------------------------------------------------------------------- public API
def funnel(events, *, journey: JourneyMap | None = None, steps=None, window="7D",
           order: str = "closed", by=None, exclude=None, compare=None,
           alpha: float = 0.05) -> pd.DataFrame:
    """Conversion funnel: how many customers reach each step, with CIs and time to step.

    Parameters
    ----------
    events : Ibis table, Workspace or pandas DataFrame
        Canonical events (``customer_id``, ``ts`` UTC, ``touchpoint``, properties).
    journey : JourneyMap, optional
        Gives the default steps (its ``funnel``) and each step's ``moment``
        (default :meth:`JourneyMap.default`).
    steps : list of str, optional
        Two or more distinct touchpoints in funnel order (default: the map's funnel). A
        step neither in the data nor in the map raises ValueError with a "did you mean"
        hint; a map touchpoint absent from the data simply has ``n = 0``.
    window : str, Timedelta or None
        The conversion window, with a unit (``"30min"``, ``"7D"``); ``None`` for no window.
        Bare numbers are refused. The journey map's ``conversion_window`` is the natural
        choice: ``window=jm.conversion_window``.
    order : {"closed", "open", "any"}
        How steps must follow each other (definitions below).
    by : str or list of str, optional
        Columns to break the funnel down by; a customer's level is taken from their
        *entry event* (below).
    exclude : str or list of str, optional
        Touchpoints that break the funnel (closed and open orders; refused for ``any``).
    compare : tuple or dict, optional
        ``(column, level_a, level_b)`` or ``{column: (level_a, level_b)}``: compare the two
        groups step by step instead of returning the funnel (cannot be combined with
        ``by``).
    alpha : float
        1 - confidence level of the intervals (0.05: 95 %).

    Returns
    -------
    DataFrame
        One row per step (per ``by`` level, levels sorted):

        - ``by`` columns; ``step`` (1-based); ``touchpoint``; ``moment`` (the map's moment
          of the touchpoint, None when the map does not know it);
        - ``n``: customers who reached the step (definitions below);
        - ``rate`` = n / n of step 1, with the Wilson interval ``ci_low``, ``ci_high``;
        - ``step_rate`` = n / n of the previous step (1 for step 1), with the Wilson
          interval ``step_ci_low``, ``step_ci_high``;
        - ``dropped`` = n of the previous step - n (0 for step 1);
        - ``p25``, ``p50``, ``p75``, ``p90`` (Timedelta): percentiles, over the customers
          who reached the step, of the time from their *start* to their *end* occurrence
          (below). They are *exact* quantiles with linear interpolation (DuckDB
          ``percentile_cont``, Spark ``percentile``, numpy's default), on times truncated
          to the millisecond, so both engines give the same values;
        - ``effort``: median (exact, interpolated) number of the customer's events, of any
          touchpoint, with ``start <= ts <= end``, among those who reached the step.

        With ``compare``: one row per step with ``column``, ``level_a``, ``level_b``,
        ``step``, ``touchpoint``, ``moment``, ``n_a``, ``rate_a``, ``n_b``, ``rate_b``,
        ``diff`` = rate_a - rate_b, ``diff_ci_low``/``diff_ci_high`` (Newcombe's hybrid
        Wilson score interval), and ``z``, ``p_value`` of the pooled two-proportion z-test
        of n_a / n_a(step 1) against n_b / n_b(step 1).

    Notes
    -----
    An *occurrence* of a step is an event of its touchpoint. A step's occurrence must come
    *at or after* the occurrence used for the previous step: real logs record several steps
    at the same instant (an offer accepted and the loan approved in one transaction), and
    a step at the same ``ts`` is not before the previous one. The rule is the same on every
    engine, whatever the row order.

    ``order="closed"``: a customer *enters* at their first occurrence of step 1 (first
    overall: later step-1 events are not new attempts), at ``t1``. Step k counts with the
    first occurrence of step k at or after the occurrence used for step k-1, provided it
    is within ``window`` of ``t1`` (``ts <= t1 + window``). Taking the first occurrence
    each time is optimal: no other choice reaches more steps. ``start = t1``, ``end`` = the
    occurrence used for the step.

    ``order="open"``: customers may enter at any step. For each step j, the chain entering
    at the customer's first occurrence of step j (``tj``) takes the first occurrence of
    j+1 at or after it, then of j+2 at or after that, and so on, all within
    ``window`` of ``tj``. ``n_k`` counts customers for whom some chain with entry
    ``j <= k`` reaches step k. Since the chain entering at step k itself is allowed (as in
    the "open funnel" of web analytics, where a customer may enter at any step), ``n_k`` is
    the number of customers with at least one occurrence of step k, and ``rate`` may
    exceed 1; the window and ``exclude`` shape only ``start``/``end``, which come from the
    chain with the smallest such ``j`` (the longest ordered run ending at step k), and so
    the time and effort columns.

    ``order="any"``: ``n_k`` counts customers who have each of steps 1..k at least once, in
    any order, with the first occurrences of steps 1..k all within ``window`` of the
    earliest of them (``max - min <= window``). ``start`` = the earliest and ``end`` = the
    latest of those first occurrences.

    ``exclude``: with the closed order, if an excluded touchpoint occurs strictly between
    the occurrence used for step k-1 and the one for step k, the customer does not reach
    step k (nor any later step); an excluded event at the same instant as either does not
    count. With the open order the same rule applies within each chain. The any order has
    no "between" and refuses ``exclude``.

    *Entry event* (for ``by`` and ``compare``): the first occurrence of step 1 (closed), or
    the customer's first occurrence of any step (open, any). When several such events share
    that ``ts``, the smallest value of each ``by`` column among them is used; customers
    whose value is missing form a level of their own (NaN).

    Everything but the final table runs in the engine: a filter to the step (and excluded)
    touchpoints, one join and conditional ``min`` aggregate per step, one join of all the
    customer's events for ``effort``, and the per-level counts and quantiles.

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> from cxlab.funnel import funnel
    >>> events, feedback, truth = simulate_journeys(2_000, seed=1)
    >>> f = funnel(events, window="7D")
    >>> f[["step", "touchpoint", "n"]].to_string(index=False)  # doctest: +SKIP
    >>> list(f["touchpoint"])
    ['home_page', 'product_page', 'add_to_cart', 'checkout', 'purchase']
    >>> bool((f["n"].diff().dropna() <= 0).all())   # a closed funnel never grows
    True
    >>> c = funnel(events, compare=("channel", "web", "app"))
    >>> list(c.columns[-5:])
    ['diff', 'diff_ci_low', 'diff_ci_high', 'z', 'p_value']
    """
    journey = JourneyMap.coerce(journey)
    order = _order(order)
    td = _window(window)
    t = as_table(events)
    if compare is not None and by is not None:
        raise ValueError("compare= and by= cannot be combined: compare two levels of one column")
    step_list = _steps(t, steps, journey)
    ex = _exclude(exclude, step_list)
    if ex and order == "any":
        raise ValueError("exclude= needs an order of steps: use order='closed' or 'open' "
                         "(order='any' has no 'between')")
    moments = [journey.moment_of(s) if s in journey.touchpoints else None for s in step_list]
    groups = [[s] for s in step_list]
    if compare is not None:
        column, a, b = _parse_compare(compare)
        check_columns(t, column, argument="compare")
        table = _run(t, groups, step_list, moments, order=order, window=td, by=[column],
                     exclude=ex, alpha=alpha)
        return _compare(table, column, a, b, alpha)
    return _run(t, groups, step_list, moments, order=order, window=td, by=by, exclude=ex,
                alpha=alpha)


def funnel_by_moment(events, *, journey: JourneyMap | None = None, window=None,
                     order: str = "closed", by=None, alpha: float = 0.05) -> pd.DataFrame:
    """The funnel rolled up to moments of truth (ZMOT > FMOT > SMOT > UMOT by default).

    A customer *reaches* a moment with any touchpoint of that moment; the steps are the
    map's moments in map order, and the definitions of :func:`funnel` apply with "an
    occurrence of step k" meaning "an event of any touchpoint of moment k": closed order
    enters at the customer's first event of the first moment and takes, for each next
    moment, its first event at or after the one used for the previous moment, within
    ``window`` of the entry.

    ``window`` defaults to None (no window), unlike :func:`funnel`: moments span weeks
    (research, then purchase, then delivery, then a review), so a 7-day window from the
    first research contact would cut most journeys short.

    Returns
    -------
    DataFrame
        The columns of :func:`funnel`; ``moment`` is the moment id and ``touchpoint`` lists
        the moment's touchpoints, comma-separated.

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> from cxlab.funnel import funnel_by_moment
    >>> events, _, _ = simulate_journeys(2_000, seed=1)
    >>> list(funnel_by_moment(events, window="30D")["moment"])
    ['ZMOT', 'FMOT', 'SMOT', 'UMOT']
    """
    journey = JourneyMap.coerce(journey)
    order = _order(order)
    td = _window(window)
    groups = [list(m.touchpoints) for m in journey.moments]
    if len(groups) < 2:
        raise ValueError("funnel_by_moment needs a journey map with at least two moments")
    labels = [", ".join(g) for g in groups]
    out = _run(events, groups, labels, list(journey.moment_ids), order=order, window=td,
               by=by, exclude=[], alpha=alpha)
    out.attrs["steps"] = "moments"
    return out


def plot_funnel(table: pd.DataFrame, ax=None):
    """Horizontal bars of ``n`` per step, labelled with the rate and its CI.

    Takes the table :func:`funnel` returns (without ``by``; with ``by``, one bar group per
    level). Returns the Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 + 0.5 * len(table)))
    by = [c for c in table.columns if c not in COLUMNS]
    name = "moment" if table.attrs.get("steps") == "moments" else "touchpoint"
    labels = [(" / ".join(str(getattr(r, c)) for c in by) + ": " if by else "") + f"{r.step}. {getattr(r, name)}"
              for r in table.itertuples()]
    y = np.arange(len(table))[::-1]
    ax.barh(y, table["n"], color="#4C72B0")
    ax.set_yticks(y, labels)
    top = float(table["n"].max()) if len(table) else 0.0
    for yi, r in zip(y, table.itertuples()):
        text = (f"{r.n:,}  {r.rate:.1%} [{r.ci_low:.1%}, {r.ci_high:.1%}]"
                if pd.notna(r.rate) else f"{r.n:,}")
        ax.text(r.n + top * 0.01, yi, text, va="center", fontsize=8)
    ax.set_xlim(0, top * 1.45 if top else 1)
    ax.set_xlabel("customers")
    return ax
