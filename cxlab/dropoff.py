"""Drop-off: who leaves the funnel, at which step, and what raises the risk.

Two families of models, both built on a journey map's funnel:

* a **discrete-time hazard model** (:class:`DropoffModel`): one row per customer attempt
  per funnel step entered before the conversion step (:func:`person_steps`), ``left = 1``
  when the attempt did not reach the next step. The table is built and *collapsed to
  covariate patterns* in the engine (Ibis), and a binomial GLM with frequency weights is
  fitted on the patterns, so the cost grows with the number of patterns, not customers.
  Odds ratios with CIs, Benjamini-Hochberg q-values, predictions, a hold-out validation.
* **time to drop-off** (:func:`survival_table`, :func:`kaplan_meier`, :func:`cox`):
  Kaplan-Meier curves per group with a log-rank test and a Cox model (statsmodels).

Definitions (shared by every function here)
-------------------------------------------
attempt
    A customer's journey attempt starts at an occurrence of the first funnel step that
    comes more than ``window`` after the same customer's previous occurrence of that step
    (the first occurrence always starts one). The attempt covers ``[start, start + window]``;
    later step-1 occurrences inside it belong to it. Every attempt is modelled, not only
    the first: a customer who comes back weeks later for a second journey contributes a
    second attempt (this is how :func:`cxlab.datasets.simulate_journeys` plants its
    hazards: one per customer-journey).
step reached
    The closed funnel path: step ``k`` is reached at the first occurrence of step ``k`` at
    or after the time step ``k-1`` was reached, within the attempt.
person-step rows
    One row per attempt and step reached *before* the conversion step; ``left = 1`` when
    the next step was not reached within the attempt.
covariates
    Event columns (``channel``, ``device``, ``segment``...) taken from the step-1 event that
    started the attempt, used as categorical (text; missing -> ``"(missing)"``). The
    reference level is the most frequent one (by attempts).
exposures
    Touchpoints (``popup_shown``, ``registration_form``...). At step ``k`` the exposure is 1
    when the touchpoint occurred in the attempt (at or after its start) and at or before the
    moment step ``k+1`` was reached; for the last step reached, at any time in the attempt.
    That is "seen while the customer could still decide at this step". (A stricter "at or
    before step k's own event" misses a pop-up shown seconds *after* the home page loads,
    exactly the one that acts on leaving the home page.) Caveat: a touchpoint that typically
    follows leaving (an exit e-mail) would look like a cause of leaving.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._engine import as_table, check_columns, epoch_ms
from .exceptions import did_you_mean
from .journey import JourneyMap, parse_duration
from .stats import bh_qvalues

__all__ = ["person_steps", "DropoffModel", "DropoffResult", "DropoffValidation",
           "survival_table", "kaplan_meier", "cox", "plot_kaplan_meier", "session_dropoff",
           "SessionDropoffResult"]

MISSING = "(missing)"
_RESERVED = ("customer_id", "attempt", "start", "step", "step_index", "left", "n", "n_left")


# =========================================================================== engine side
def _setup(journey, window):
    jm = JourneyMap.coerce(journey)
    if not isinstance(jm, JourneyMap):
        raise TypeError(f"journey must be a JourneyMap, not {type(jm).__name__}")
    funnel = list(jm.funnel)
    if jm.conversion in funnel:
        steps = funnel[: funnel.index(jm.conversion) + 1]
    else:
        steps = funnel + [jm.conversion]
    if len(steps) < 2:
        raise ValueError(f"the journey map's funnel {funnel} has no step before the "
                         f"conversion step {jm.conversion!r}")
    td = jm.conversion_window if window is None else parse_duration(window, key="window")
    return jm, steps, td


def _interval(td: pd.Timedelta):
    import ibis

    us = int(td / pd.Timedelta(microseconds=1))
    if us <= 0:
        raise ValueError(f"window={td!r} must be positive")
    return ibis.interval(seconds=us // 1_000_000) if us % 1_000_000 == 0 else ibis.interval(microseconds=us)


def _check_exposures(exposures, jm, steps) -> list[str]:
    exps = [exposures] if isinstance(exposures, str) else list(exposures or ())
    for e in exps:
        if e not in jm.touchpoints:
            raise ValueError(f"exposures={e!r} is not a touchpoint of the journey map"
                             + did_you_mean(e, jm.touchpoints)
                             + f"; touchpoints: {list(jm.touchpoints)}")
        if e in steps:
            raise ValueError(f"exposures={e!r} is a funnel step; exposures are touchpoints "
                             "outside the funnel (pop-ups, forms, calls)")
        if e in _RESERVED:
            raise ValueError(f"exposures={e!r} clashes with a column of the person-step table")
    if len(set(exps)) != len(exps):
        raise ValueError(f"exposures={exps} lists a touchpoint twice")
    return exps


def _check_covariates(t, covariates, exposures) -> list[str]:
    covs = check_columns(t, covariates, argument="covariates")
    for c in covs:
        if c in _RESERVED or c in ("ts", "touchpoint"):
            raise ValueError(f"covariates={c!r} cannot be a covariate (it is a key column); "
                             "use a property such as channel, device or segment")
        if c in exposures:
            raise ValueError(f"{c!r} is given both as a covariate and as an exposure")
    if len(set(covs)) != len(covs):
        raise ValueError(f"covariates={covs} lists a column twice")
    return covs


def _attempts(t, steps, td, covs, exps):
    """Wide attempt table: customer_id, start, covariates, _t1.._tK, _x_<exposure>."""
    import ibis

    iv = _interval(td)
    s1 = t.filter(t.touchpoint == steps[0])
    w = ibis.window(group_by="customer_id", order_by="ts")
    s1 = s1.select("customer_id", "ts", *[s1[c].cast("string").fill_null(MISSING).name(c) for c in covs])
    s1 = s1.mutate(_prev=s1.ts.lag().over(w))
    starts = s1.filter(s1._prev.isnull() | (s1.ts > s1._prev + iv))
    starts = starts.select("customer_id", start=starts.ts, **{c: starts[c] for c in covs}).cache()

    later = t.filter(t.touchpoint.isin(list(steps[1:]) + list(exps)))
    later = later.select(_cid=later.customer_id, _ts=later.ts, _tp=later.touchpoint)
    j = starts.join(later, [starts.customer_id == later._cid, later._ts >= starts.start,
                            later._ts <= starts.start + iv])
    j = j.select(_k_cid=j.customer_id, _k_start=j.start, _ts=j._ts, _tp=j._tp)
    key = ["_k_cid", "_k_start"]
    wide = starts
    prev = None
    for k, step in enumerate(steps[1:], start=2):
        ek = j.filter(j._tp == step)
        if prev is not None:          # the first step-k event at or after step k-1 was reached
            ek = ek.join(prev, key).filter(lambda r: r._ts >= r[f"_t{k - 1}"])
        prev = ek.group_by(key).aggregate(**{f"_t{k}": ek._ts.min()})
        wide = wide.left_join(prev, [wide.customer_id == prev._k_cid, wide.start == prev._k_start])
        wide = wide.drop("_k_cid", "_k_start")
    if exps:
        ex = j.filter(j._tp.isin(list(exps)))
        ax = ex.group_by(key).aggregate(**{f"_x{i}": ex._ts.min(where=ex._tp == e)
                                          for i, e in enumerate(exps)})
        wide = wide.left_join(ax, [wide.customer_id == ax._k_cid, wide.start == ax._k_start])
        wide = wide.drop("_k_cid", "_k_start")
    wide = wide.mutate(_t1=wide.start)
    return wide


def _long(wide, steps, covs, exps):
    """Person-step rows from the wide attempt table."""
    import ibis

    parts = []
    for k in range(1, len(steps)):
        cur, nxt = wide[f"_t{k}"], wide[f"_t{k + 1}"]
        sel = wide.filter(cur.notnull())
        cur, nxt = sel[f"_t{k}"], sel[f"_t{k + 1}"]
        cols = {"customer_id": sel.customer_id, "start": sel.start,
                "step": ibis.literal(steps[k - 1]), "step_index": ibis.literal(k, "int16"),
                "left": nxt.isnull().cast("int8")}
        cols.update({c: sel[c] for c in covs})
        for i, e in enumerate(exps):
            x = sel[f"_x{i}"]
            cols[e] = (x.notnull() & (nxt.isnull() | (x <= nxt))).cast("int8")
        parts.append(sel.select(**cols))
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p, distinct=False)
    return out


def person_steps(events, *, journey: JourneyMap | None = None, covariates=(), exposures=(),
                 window=None):
    """The discrete-time person-period table, built in the engine.

    Parameters
    ----------
    events : Ibis table, Workspace or DataFrame
        Canonical events (``customer_id``, ``ts``, ``touchpoint`` and any properties).
    journey : JourneyMap, optional
        Funnel, conversion step and window (default :meth:`JourneyMap.default`).
    covariates : list of str
        Event columns taken from the step-1 event that started the attempt.
    exposures : list of str
        Touchpoints; see the module docstring for when they count at a step.
    window : duration, optional
        Attempt length (default: the map's ``conversion_window``, 7D).

    Returns
    -------
    ibis.Table
        One row per attempt and funnel step reached before the conversion step:
        ``customer_id``, ``start`` (the attempt's step-1 timestamp; with ``customer_id`` the
        attempt key), ``step`` (touchpoint), ``step_index`` (1-based), ``left`` (int8, 1 =
        did not reach the next step), one text column per covariate and one int8 (0/1)
        column per exposure.

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> events = simulate_journeys(500, seed=1).events
    >>> ps = person_steps(events, covariates=["channel"], exposures=["popup_shown"])
    >>> sorted(ps.columns)[:3]
    ['channel', 'customer_id', 'left']
    """
    t = as_table(events)
    jm, steps, td = _setup(journey, window)
    exps = _check_exposures(exposures, jm, steps)
    covs = _check_covariates(t, covariates, exps)
    return _long(_attempts(t, steps, td, covs, exps), steps, covs, exps)


# =========================================================================== design
@dataclass(frozen=True)
class _Spec:
    steps: tuple            # hazard steps (before conversion)
    conversion: str
    covariates: tuple
    levels: dict            # covariate -> (reference, other levels...)
    exposures: tuple
    interactions: dict      # exposure -> tuple of steps
    step_effects: bool

    def terms(self) -> list[tuple[str, str, str, str | None]]:
        """(term, kind, variable, level/step)."""
        out = []
        if self.step_effects:
            out += [(f"step[{s}]", "baseline", "step", s) for s in self.steps]
        else:
            out.append(("baseline", "baseline", "step", None))
        for c in self.covariates:
            out += [(f"{c}[{lv}]", "covariate", c, lv) for lv in self.levels[c][1:]]
        for e in self.exposures:
            if e in self.interactions:
                out += [(f"{e}:{s}", "interaction", e, s) for s in self.interactions[e]]
            else:
                out.append((e, "exposure", e, None))
        return out

    def design(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model matrix of person-step (or pattern) rows."""
        cols = {}
        step = frame["step"].astype(str).to_numpy()
        unknown = set(np.unique(step)) - set(self.steps)
        if unknown:
            raise ValueError(f"unknown steps {sorted(unknown)}; the model's steps: {list(self.steps)}")
        for term, kind, var, lv in self.terms():
            if kind == "baseline":
                cols[term] = (step == lv).astype(float) if lv is not None else np.ones(len(frame))
            elif kind == "covariate":
                cols[term] = (frame[var].astype(str).to_numpy() == lv).astype(float)
            elif kind == "exposure":
                cols[term] = frame[var].to_numpy(dtype=float)
            else:
                cols[term] = frame[var].to_numpy(dtype=float) * (step == lv)
        return pd.DataFrame(cols, index=frame.index)


def _fit_patterns(spec: _Spec, patterns: pd.DataFrame):
    """Binomial GLM on collapsed patterns: each pattern gives a 'left' row weighted n_left
    and a 'stayed' row weighted n - n_left (frequency weights)."""
    import statsmodels.api as sm

    X = spec.design(patterns)
    n = patterns["n"].to_numpy(dtype=float)
    nl = patterns["n_left"].to_numpy(dtype=float)
    Xe = pd.concat([X, X], ignore_index=True)
    y = np.r_[np.ones(len(X)), np.zeros(len(X))]
    w = np.r_[nl, n - nl]
    keep = w > 0
    Xe, y, w = Xe[keep].reset_index(drop=True), y[keep], w[keep]
    rank = np.linalg.matrix_rank(Xe.to_numpy())
    if rank < Xe.shape[1]:
        const = [c for c in Xe.columns if Xe[c].nunique() == 1 and c.startswith(tuple(spec.exposures))]
        hint = f" (constant: {const})" if const else ""
        raise ValueError(f"the model terms are collinear{hint}: an exposure that never (or always) "
                         "occurs, a covariate level that always goes with a step, or an exposure "
                         "listed both as a main effect and in interactions")
    model = sm.GLM(y, Xe, family=sm.families.Binomial(), freq_weights=w)
    return model.fit()


def _collapse_wide(wide, steps, covs, exps, extra=None) -> pd.DataFrame:
    """Collapsed person-step patterns straight from the wide attempt table: one engine
    group-by over attempts by (covariates, last step reached L, first step m_e at which each
    exposure counts), expanded to steps in pandas (exact: an exposure that counts at step k
    counts at every later step, because the step times increase)."""
    import ibis

    K = len(steps)
    L = ibis.cases(*[(wide[f"_t{k}"].notnull(), k) for k in range(K, 1, -1)], else_=1)
    cols = {c: wide[c] for c in covs}
    cols["_L"] = L
    for i, e in enumerate(exps):
        x = wide[f"_x{i}"]
        cols[f"_m{i}"] = ibis.cases((x.isnull(), K + 1),
                                    *[(x <= wide[f"_t{k + 1}"], k) for k in range(1, K)], else_=L)
    if extra is not None:
        cols["_test"] = extra(wide)
    g = wide.select(**cols)
    keys = list(cols)
    att = g.group_by(keys).aggregate(_n=g.count()).execute()
    rows = []
    for k in range(1, K):
        a = att[att["_L"] >= k]
        part = {"step": steps[k - 1], "step_index": k}
        df = pd.DataFrame({c: a[c].astype(str) for c in covs}, index=a.index)
        for i, e in enumerate(exps):
            df[e] = (a[f"_m{i}"] <= k).astype("int64")
        if extra is not None:
            df["_test"] = a["_test"].astype("int64")
        df["n"] = a["_n"].astype("int64")
        df["n_left"] = np.where(a["_L"] == k, a["_n"], 0).astype("int64")
        rows.append(df.assign(**part))
    out = pd.concat(rows, ignore_index=True)
    keys = ["step", "step_index", *covs, *exps] + (["_test"] if extra is not None else [])
    return out.groupby(keys, sort=False, as_index=False)[["n", "n_left"]].sum()


# =========================================================================== model
class DropoffModel:
    """Discrete-time hazard model of leaving the funnel (binomial GLM, logit link).

    ``logit P(leave at step s) = alpha_s + sum(beta * covariate dummies) + sum(gamma *
    exposures) [+ step-specific exposure terms]``.

    Parameters
    ----------
    covariates : list of str
        Event columns at the attempt's step-1 event (categorical; reference = most frequent
        level; one dummy per other level, term ``"channel[app]"``).
    exposures : list of str
        Touchpoints, term named as the touchpoint (``"popup_shown"``): one odds ratio for
        all steps.
    step_effects : bool
        One baseline hazard per step (``"step[home_page]"``...); ``False``: one common
        baseline (``"baseline"``).
    interactions : dict, optional
        ``{"registration_form": ["checkout"]}``: the exposure acts only at the listed steps,
        one term per step (``"registration_form:checkout"``), and has no all-steps term.
    alpha : float
        1 - confidence level of the intervals.
    drop_absent_exposures : bool
        Leave out exposures never seen within an attempt (e.g. research touchpoints that
        only happen before the funnel's first step) instead of raising.

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> events = simulate_journeys(3_000, seed=1).events
    >>> res = DropoffModel(covariates=["channel"], exposures=["popup_shown"]).fit(events)
    >>> res.summary()["term"].tolist()[-1]
    'popup_shown'
    """

    def __init__(self, covariates=(), exposures=(), step_effects: bool = True,
                 interactions: dict | None = None, alpha: float = 0.05, drop_absent_exposures: bool = False):
        if not 0 < float(alpha) < 1:
            raise ValueError(f"alpha={alpha!r} must be between 0 and 1 (e.g. 0.05)")
        self.covariates = [covariates] if isinstance(covariates, str) else list(covariates or ())
        self.exposures = [exposures] if isinstance(exposures, str) else list(exposures or ())
        self.step_effects = bool(step_effects)
        self.interactions = {k: ([v] if isinstance(v, str) else list(v))
                             for k, v in (interactions or {}).items()}
        self.alpha = float(alpha)
        self.drop_absent_exposures = bool(drop_absent_exposures)

    def __repr__(self) -> str:
        return (f"DropoffModel(covariates={self.covariates}, exposures={self.exposures}, "
                f"step_effects={self.step_effects}, interactions={self.interactions}, alpha={self.alpha})")

    def fit(self, events, *, journey: JourneyMap | None = None, window=None) -> "DropoffResult":
        """Build the person-step table in the engine, collapse it, fit the GLM.

        Raises
        ------
        ValueError
            unknown covariate/exposure (with a "did you mean" hint), a covariate with one
            level, an exposure that never occurs, an empty person-step table.
        """
        t = as_table(events)
        jm, steps, td = _setup(journey, window)
        exps = _check_exposures(self.exposures, jm, steps)
        covs = _check_covariates(t, self.covariates, exps)
        hazard_steps = tuple(steps[:-1])
        for e, ss in self.interactions.items():
            if e not in exps:
                raise ValueError(f"interactions key {e!r} is not one of exposures={exps}"
                                 + did_you_mean(e, exps))
            for s in ss:
                if s not in hazard_steps:
                    raise ValueError(f"interactions[{e!r}] step {s!r} is not a funnel step before "
                                     f"the conversion" + did_you_mean(s, hazard_steps)
                                     + f"; steps: {list(hazard_steps)}")
        wide = _attempts(t, steps, td, covs, exps)
        ps = _long(wide, steps, covs, exps)
        patterns = _collapse_wide(wide, steps, covs, exps)
        if patterns.empty or patterns["n"].sum() == 0:
            raise ValueError(f"the person-step table is empty: no customer entered the funnel's "
                             f"first step {steps[0]!r}")
        patterns = patterns.sort_values(["step_index", *covs, *exps], kind="stable").reset_index(drop=True)
        for c in ("n", "n_left", "step_index", *exps):
            patterns[c] = patterns[c].astype("int64")
        for c in covs:
            patterns[c] = patterns[c].astype(str)
        levels = {}
        first = patterns[patterns["step_index"] == 1]
        for c in covs:
            counts = first.groupby(c)["n"].sum().sort_values(ascending=False, kind="stable")
            if len(counts) < 2:
                raise ValueError(f"covariate {c!r} has a single level {list(counts.index)} in the "
                                 "person-step table: nothing to compare it with")
            levels[c] = tuple(counts.index)
        absent = [e for e in exps if patterns.loc[patterns[e] == 1, "n"].sum() == 0]
        if absent and self.drop_absent_exposures and len(absent) < len(exps):
            # rebuilt without them, so every stored table indexes the kept exposures alone
            kept = [e for e in exps if e not in absent]
            return DropoffModel(covariates=self.covariates, exposures=kept, step_effects=self.step_effects,
                                interactions={e: s for e, s in self.interactions.items() if e in kept},
                                alpha=self.alpha).fit(events, journey=journey, window=window)
        if absent:
            raise ValueError(f"exposure {absent[0]!r} never occurs within an attempt: its effect "
                             "cannot be estimated")
        spec = _Spec(steps=hazard_steps, conversion=steps[-1], covariates=tuple(covs),
                     levels=levels, exposures=tuple(exps),
                     interactions={e: tuple(s) for e, s in self.interactions.items()},
                     step_effects=self.step_effects)
        glm = _fit_patterns(spec, patterns)
        n_attempts = int(first["n"].sum())
        return DropoffResult(model=self, spec=spec, glm=glm, patterns=patterns,
                             n_rows=int(patterns["n"].sum()), n_attempts=n_attempts,
                             window=td, _person_steps=ps, _wide=wide,
                             _steps=tuple(steps))


@dataclass(frozen=True, eq=False)
class DropoffValidation:
    """Hold-out check of a :class:`DropoffResult` (see :meth:`DropoffResult.validate`).

    ``auc``: weighted Mann-Whitney AUC of the predicted hazard on the hold-out person-step
    rows; ``calibration``: deciles of predicted hazard (bin, n, n_left, predicted,
    observed, ci_low, ci_high; bins merge when predictions take fewer distinct values).
    """

    auc: float
    calibration: pd.DataFrame
    n_train_rows: int
    n_test_rows: int
    test_size: float
    random_state: int

    def to_dict(self) -> dict:
        return {"auc": self.auc, "n_train_rows": self.n_train_rows, "n_test_rows": self.n_test_rows,
                "test_size": self.test_size, "random_state": self.random_state,
                "max_calibration_gap": float((self.calibration["predicted"]
                                              - self.calibration["observed"]).abs().max())}

    def __repr__(self) -> str:
        return (f"DropoffValidation(hold-out AUC {self.auc:.3f} on {self.n_test_rows:,} person-step "
                f"rows, trained on {self.n_train_rows:,}; {len(self.calibration)} calibration bins)")


@dataclass(frozen=True, eq=False)
class DropoffResult:
    """A fitted :class:`DropoffModel` (immutable)."""

    model: DropoffModel
    spec: _Spec
    glm: object
    patterns: pd.DataFrame
    n_rows: int
    n_attempts: int
    window: pd.Timedelta
    _person_steps: object = field(repr=False, default=None)
    _cache: dict = field(repr=False, default_factory=dict)
    _wide: object = field(repr=False, default=None)
    _steps: tuple = field(repr=False, default=())

    @property
    def n_customers(self) -> int:
        """Distinct customers with at least one attempt (one engine query, on first use)."""
        if "n_customers" not in self._cache:
            ps = self._person_steps
            self._cache["n_customers"] = int(ps.filter(ps.step_index == 1).customer_id.nunique().execute())
        return self._cache["n_customers"]

    # ------------------------------------------------------------------ tables
    @property
    def n_patterns(self) -> int:
        return len(self.patterns)

    def design_matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model matrix for person-step rows (columns as :func:`person_steps` returns)."""
        return self.spec.design(frame)

    @property
    def params(self) -> pd.Series:
        """Coefficients (log odds ratios) by term."""
        return self.glm.params

    @property
    def bse(self) -> pd.Series:
        """Standard errors by term."""
        return self.glm.bse

    def summary(self) -> pd.DataFrame:
        """One row per term: term, kind (baseline/covariate/exposure/interaction), odds_ratio,
        ci_low, ci_high, p_value, q_value (Benjamini-Hochberg across the non-baseline terms;
        baseline rows give the baseline odds of leaving at each step for the reference levels).
        ``attrs``: n_rows, n_patterns, n_attempts, n_customers, references, alpha."""
        a = self.model.alpha
        ci = np.asarray(self.glm.conf_int(alpha=a))
        rows = []
        with np.errstate(over="ignore"):     # a separated term's bound is exp(hundreds): inf, as it should read
            ci = np.exp(ci)
        for (term, kind, var, lv), b, lo, hi, p in zip(self.spec.terms(), self.glm.params,
                                                       ci[:, 0], ci[:, 1], self.glm.pvalues):
            ref = self.spec.levels[var][0] if kind == "covariate" else None
            rows.append(dict(term=term, kind=kind, variable=var, level=lv, reference=ref,
                             odds_ratio=float(np.exp(min(b, 709.0))), ci_low=lo, ci_high=hi,
                             p_value=p))
        out = pd.DataFrame(rows)
        q = np.full(len(out), np.nan)
        nb = (out["kind"] != "baseline").to_numpy()
        if nb.any():
            q[nb] = bh_qvalues(out.loc[nb, "p_value"].to_numpy())
        out["q_value"] = q
        out.attrs.update(n_rows=self.n_rows, n_patterns=self.n_patterns, n_attempts=self.n_attempts,
                         n_customers=self.n_customers, alpha=a,
                         references={c: lv[0] for c, lv in self.spec.levels.items()})
        return out

    def _hazard(self, X: pd.DataFrame) -> np.ndarray:
        eta = X.to_numpy() @ self.glm.params.to_numpy()
        return 1.0 / (1.0 + np.exp(-eta))

    def predict(self, frame: pd.DataFrame | None = None) -> pd.DataFrame:
        """Hazard per step and cumulative conversion for given covariate/exposure values.

        Parameters
        ----------
        frame : DataFrame, optional
            One row per profile; a covariate column left out takes its reference level, an
            exposure left out is 0. ``None``: the reference profile.

        Returns
        -------
        DataFrame
            One row per profile and step: ``profile`` (row label of ``frame``), the profile's
            covariates and exposures, ``step``, ``hazard`` (probability of leaving at the step
            given it was reached), ``reach_next`` (probability of getting past the step from
            step 1) and ``conversion`` (probability of reaching the conversion step).
        """
        frame = pd.DataFrame(index=[0]) if frame is None else pd.DataFrame(frame)
        sp = self.spec
        prof = pd.DataFrame(index=frame.index)
        for c in sp.covariates:
            vals = frame[c].astype(str) if c in frame else pd.Series(sp.levels[c][0], index=frame.index)
            bad = set(vals) - set(sp.levels[c])
            if bad:
                raise ValueError(f"unknown level(s) {sorted(bad)} of covariate {c!r}; "
                                 f"known: {list(sp.levels[c])}")
            prof[c] = vals.to_numpy()
        for e in sp.exposures:
            prof[e] = frame[e].astype(float).to_numpy() if e in frame else 0.0
        extra = set(frame.columns) - set(sp.covariates) - set(sp.exposures)
        if extra:
            c0 = sorted(extra)[0]
            raise ValueError(f"predict: {c0!r} is not a covariate or exposure of the model"
                             + did_you_mean(c0, [*sp.covariates, *sp.exposures]))
        k = len(sp.steps)
        long = prof.loc[prof.index.repeat(k)].copy()
        long.insert(0, "profile", long.index)
        long = long.reset_index(drop=True)
        long["step"] = np.tile(np.array(sp.steps, dtype=object), len(prof))
        h = self._hazard(sp.design(long))
        long["hazard"] = h
        surv = pd.Series(1 - h).groupby(long["profile"].to_numpy(), sort=False).cumprod().to_numpy()
        long["reach_next"] = surv
        long["conversion"] = pd.Series(surv).groupby(long["profile"].to_numpy(), sort=False).transform("last").to_numpy()
        long["step"] = long["step"].astype("str")
        return long

    def to_frame(self) -> pd.DataFrame:
        """Per step: n (rows reaching it), n_left, observed hazard with Wilson CI, and the
        model's predicted hazard averaged over the same rows."""
        from .stats import wilson_ci

        p = self.patterns.copy()
        p["_pred"] = self._hazard(self.spec.design(p)) * p["n"]
        g = p.groupby(["step_index", "step"], sort=True)[["n", "n_left", "_pred"]].sum().reset_index()
        lo, hi = wilson_ci(g["n_left"].to_numpy(), g["n"].to_numpy(), alpha=self.model.alpha)
        return pd.DataFrame({"step": g["step"].astype("str"), "n": g["n"], "n_left": g["n_left"],
                             "observed": g["n_left"] / g["n"], "ci_low": lo, "ci_high": hi,
                             "predicted": g["_pred"] / g["n"]})

    def to_dict(self) -> dict:
        """Key numbers for metrics.json."""
        s = self.summary()
        return {
            "n_rows": self.n_rows, "n_patterns": self.n_patterns, "n_attempts": self.n_attempts,
            "n_customers": self.n_customers, "window": str(self.window),
            "references": s.attrs["references"], "alpha": self.model.alpha,
            "terms": {r.term: {"odds_ratio": float(r.odds_ratio), "ci_low": float(r.ci_low),
                               "ci_high": float(r.ci_high), "p_value": float(r.p_value),
                               "q_value": None if pd.isna(r.q_value) else float(r.q_value)}
                      for r in s.itertuples()},
        }

    def plot(self, ax=None, *, baseline: bool = False):
        """Forest plot of the odds ratios with CIs on a log axis (returns the Axes)."""
        import matplotlib.pyplot as plt

        s = self.summary()
        if not baseline:
            s = s[s["kind"] != "baseline"]
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.4 * len(s) + 1.2))
        y = np.arange(len(s))[::-1]
        ax.errorbar(s["odds_ratio"], y, xerr=[s["odds_ratio"] - s["ci_low"], s["ci_high"] - s["odds_ratio"]],
                    fmt="o", color="C0", capsize=3)
        ax.axvline(1.0, color="grey", lw=1, ls="--")
        ax.set_xscale("log")
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

        lo, hi = float(s["ci_low"].min()), float(s["ci_high"].max())
        ticks = [t for t in (0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 10, 20)
                 if min(lo, 1) / 1.3 <= t <= max(hi, 1) * 1.3]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_yticks(y)
        ax.set_yticklabels(s["term"])
        ax.set_xlabel(f"odds ratio of leaving ({100 * (1 - self.model.alpha):.0f}% CI)")
        ax.set_title("Drop-off: what raises the odds of leaving")
        return ax

    # ------------------------------------------------------------------ validation
    def validate(self, test_size: float = 0.3, random_state: int = 0) -> DropoffValidation:
        """Refit on a customer-level split and score the hold-out customers.

        Customers go to the hold-out when a hash of ``customer_id`` and ``random_state``
        falls below ``test_size`` (computed in the engine; all attempts of a customer stay
        together). Returns a :class:`DropoffValidation`.
        """
        if not 0 < test_size < 1:
            raise ValueError(f"test_size={test_size!r} must be between 0 and 1")
        import ibis

        sp = self.spec
        cut = int(round(test_size * 1_000_003))

        def split(w):
            h = (w.customer_id.concat(ibis.literal(f"#{int(random_state)}")).hash() % 1_000_003).abs()
            return (h < cut).cast("int8")

        pat = _collapse_wide(self._wide, list(self._steps), list(sp.covariates), list(sp.exposures),
                             extra=split)
        for c in sp.covariates:
            pat[c] = pat[c].astype(str)
        train, test = pat[pat["_test"] == 0], pat[pat["_test"] == 1]
        if train.empty or test.empty:
            raise ValueError("the split left no customers on one side; change test_size")
        glm = _fit_patterns(sp, train.reset_index(drop=True))
        X = sp.design(test)
        pred = 1 / (1 + np.exp(-(X.to_numpy() @ glm.params.to_numpy())))
        n = test["n"].to_numpy(float)
        nl = test["n_left"].to_numpy(float)
        auc = _weighted_auc(pred, nl, n - nl)
        cal = _calibration(pred, n, nl, alpha=self.model.alpha)
        return DropoffValidation(auc=auc, calibration=cal, n_train_rows=int(train["n"].sum()),
                                 n_test_rows=int(n.sum()), test_size=float(test_size),
                                 random_state=int(random_state))

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        sp = self.spec
        refs = ", ".join(f"{c}={lv[0]}" for c, lv in sp.levels.items()) or "none"
        return (f"DropoffResult: discrete-time hazard (binomial GLM, logit) over steps "
                f"{' > '.join(sp.steps)} (conversion {sp.conversion}, window {self.window}); "
                f"{self.n_rows:,} person-step rows from {self.n_attempts:,} attempts of "
                f"{self.n_customers:,} customers, collapsed to {self.n_patterns:,} patterns; "
                f"{len(sp.terms())} terms; references: {refs}")

    def _repr_html_(self) -> str:
        s = self.summary()
        cols = ["term", "kind", "odds_ratio", "ci_low", "ci_high", "p_value", "q_value"]
        import html

        return (f"<div><p><b>DropoffResult</b>: {html.escape(repr(self).split(': ', 1)[1])}</p>"
                + s[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}") + "</div>")


def _weighted_auc(score, w_pos, w_neg) -> float:
    """Mann-Whitney AUC with weights: P(score_pos > score_neg) + 0.5 P(tie)."""
    score = np.asarray(score, float)
    df = pd.DataFrame({"s": score, "p": w_pos, "n": w_neg}).groupby("s", sort=True)[["p", "n"]].sum()
    pos, neg = df["p"].to_numpy(), df["n"].to_numpy()
    below = np.cumsum(neg) - neg
    tot_p, tot_n = pos.sum(), neg.sum()
    if tot_p == 0 or tot_n == 0:
        return float("nan")
    return float((pos * (below + 0.5 * neg)).sum() / (tot_p * tot_n))


def _calibration(pred, n, nl, *, alpha, bins: int = 10) -> pd.DataFrame:
    from .stats import wilson_ci

    o = np.argsort(pred, kind="stable")
    cw = np.cumsum(n[o]) / n.sum()
    # weighted decile edges: the prediction at cumulative weight k/bins
    qs = [pred[o][min(np.searchsorted(cw, k / bins), len(o) - 1)] for k in range(1, bins)]
    edges = np.unique(qs)
    b = np.searchsorted(edges, pred, side="left")
    df = pd.DataFrame({"bin": b, "n": n, "n_left": nl, "pn": pred * n})
    g = df.groupby("bin", sort=True)[["n", "n_left", "pn"]].sum().reset_index(drop=True)
    lo, hi = wilson_ci(g["n_left"].to_numpy(), g["n"].to_numpy(), alpha=alpha)
    return pd.DataFrame({"bin": np.arange(1, len(g) + 1), "n": g["n"].astype("int64"),
                         "n_left": g["n_left"].astype("int64"), "predicted": g["pn"] / g["n"],
                         "observed": g["n_left"] / g["n"], "ci_low": lo, "ci_high": hi})


# =========================================================================== survival
def _unit(unit) -> pd.Timedelta:
    return parse_duration(unit, key="unit")


def survival_table(events, *, journey: JourneyMap | None = None, by=None, window=None,
                   unit="1h") -> pd.DataFrame:
    """Time to drop-off, one row per attempt (computed in the engine).

    Definition: the clock starts at the attempt's step-1 event.

    - non-converter whose window closed within the data (``start + window`` at or before the
      last event in ``events``): ``dropped = 1`` at the last funnel step reached (its time
      minus the start; a customer who left at step 1 has duration 0);
    - converter: censored (``dropped = 0``) at the conversion;
    - non-converter whose window is still open at the end of the data: censored at the data
      end (they may still move on).

    Returns
    -------
    DataFrame
        ``customer_id``, ``start``, ``duration`` (float, in ``unit``; also in
        ``attrs["unit"]``), ``dropped`` (int 0/1), ``last_step`` (the last funnel step
        reached), ``converted`` (bool) and the ``by`` columns (text, from the step-1 event).
    """
    import ibis

    t = as_table(events)
    jm, steps, td = _setup(journey, window)
    by_cols = _check_covariates(t, by, [])
    u = _unit(unit)
    data_end = t.ts.max().execute()
    wide = _attempts(t, steps, td, by_cols, [])
    K = len(steps)
    last_t = ibis.coalesce(*[wide[f"_t{k}"] for k in range(K, 0, -1)])
    last_step = ibis.cases(*[(wide[f"_t{k}"].notnull(), steps[k - 1]) for k in range(K, 1, -1)],
                           else_=steps[0])
    conv = wide[f"_t{K}"].notnull()
    iv = _interval(td)
    closed = (wide.start + iv) <= ibis.literal(pd.Timestamp(data_end))
    end = ibis.cases((conv, last_t), (closed, last_t), else_=ibis.literal(pd.Timestamp(data_end)))
    ms = epoch_ms(end) - epoch_ms(wide.start)
    out = wide.select("customer_id", "start", *by_cols, _ms=ms,
                      dropped=(~conv & closed).cast("int8"), last_step=last_step, converted=conv)
    df = out.execute()
    df = df.sort_values(["customer_id", "start"], kind="stable").reset_index(drop=True)
    df.insert(2, "duration", df.pop("_ms").astype(float) / (u / pd.Timedelta(milliseconds=1)))
    df["dropped"] = df["dropped"].astype("int64")
    df["converted"] = df["converted"].astype(bool)
    df["last_step"] = df["last_step"].astype("str")
    df.attrs["unit"] = str(u)
    return df


def _km_frame(time, status, alpha):
    from scipy.stats import norm
    from statsmodels.duration.survfunc import SurvfuncRight

    sf = SurvfuncRight(np.asarray(time, float), np.asarray(status, float))
    s = np.asarray(sf.surv_prob, float)
    se = np.asarray(sf.surv_prob_se, float)
    z = norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ls = np.log(s)
        th_se = se / (s * np.abs(ls))
        lo = s ** np.exp(z * th_se)        # log(-log) transformed pointwise interval
        hi = s ** np.exp(-z * th_se)
    one = (s >= 1.0) | (se == 0)
    lo = np.where(one, s, lo)
    hi = np.where(one, s, hi)
    lo = np.where(s <= 0, 0.0, lo)
    hi = np.where(s <= 0, 0.0, hi)
    return pd.DataFrame({"time": sf.surv_times, "n_risk": sf.n_risk, "n_events": sf.n_events,
                         "survival": s, "ci_low": lo, "ci_high": hi})


def kaplan_meier(events, *, by=None, bins: int | None = None, journey: JourneyMap | None = None,
                 window=None, unit="1h", alpha: float = 0.05) -> pd.DataFrame:
    """Kaplan-Meier curves of time to drop-off per group, with a log-rank test.

    Parameters
    ----------
    events : Ibis table, Workspace, DataFrame, or a :func:`survival_table` DataFrame
        (recognised by its ``duration`` and ``dropped`` columns).
    by : str, optional
        Grouping column (at the attempt's step-1 event).
    bins : int, optional
        Cut a numeric ``by`` into this many quantile groups (``"[lo, hi]"`` labels).

    Returns
    -------
    DataFrame
        ``group``, ``time`` (in ``unit``), ``n_risk``, ``n_events``, ``survival`` (share not
        yet dropped off), ``ci_low``, ``ci_high`` (pointwise, log-log); each group starts with
        a row at time 0, survival 1. ``attrs["logrank"]``: ``statistic`` (statsmodels
        ``survdiff``), ``df``, ``p_value`` (``scipy.stats.chi2.sf(statistic, df)``, so a p-value
        below 1e-16 is reported, not rounded to 0); ``None`` with one group. ``attrs["unit"]``.
    """
    from scipy.stats import chi2
    from statsmodels.duration.survfunc import survdiff

    if isinstance(events, pd.DataFrame) and {"duration", "dropped"} <= set(events.columns):
        st = events
    else:
        st = survival_table(events, journey=journey, by=by, window=window, unit=unit)
    if by is not None and by not in st.columns:
        raise ValueError(f"by={by!r} is not a column" + did_you_mean(by, st.columns))
    if st.empty:
        raise ValueError("no attempts: the survival table is empty")
    if by is None:
        grp = pd.Series("all", index=st.index)
    elif bins:
        v = pd.to_numeric(st[by], errors="raise")
        codes = pd.qcut(v, bins, duplicates="drop", labels=False)
        # label each bin by the values it holds, e.g. "6,000-15,000", in ascending order
        span = v.groupby(codes).agg(["min", "max"])
        labels = {c: f"{r['min']:,.6g}-{r['max']:,.6g}" for c, r in span.iterrows()}
        grp = codes.map(labels).astype(str)
        order = [labels[c] for c in sorted(labels)]
    else:
        grp = st[by].astype(str)
    if by is None:
        order = ["all"]
    elif not bins:
        order = sorted(pd.unique(grp))
    frames = []
    for g in order:
        m = (grp == g).to_numpy()
        f = _km_frame(st.loc[m, "duration"], st.loc[m, "dropped"], alpha)
        head = pd.DataFrame({"time": [0.0], "n_risk": [int(m.sum())], "n_events": [0],
                             "survival": [1.0], "ci_low": [1.0], "ci_high": [1.0]})
        if len(f) and f["time"].iloc[0] == 0:
            head = head.iloc[:0]
        f = pd.concat([head, f], ignore_index=True)
        f.insert(0, "group", g)
        frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    out["group"] = out["group"].astype("str")
    lr = None
    if grp.nunique() > 1:
        # survdiff's own p-value is 1 - chi2.cdf, exactly 0 below ~1e-16: the survival function
        stat, _ = survdiff(st["duration"].to_numpy(float), st["dropped"].to_numpy(float),
                           grp.to_numpy(dtype=object))
        df = int(grp.nunique() - 1)
        lr = {"statistic": float(stat), "df": df, "p_value": float(chi2.sf(stat, df))}
    out.attrs["logrank"] = lr
    out.attrs["unit"] = st.attrs.get("unit", str(_unit(unit)))
    out.attrs["by"] = by
    return out


def plot_kaplan_meier(table: pd.DataFrame, ax=None):
    """Step curves of :func:`kaplan_meier` with CI bands; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for i, (g, f) in enumerate(table.groupby("group", sort=False)):
        ax.step(f["time"], f["survival"], where="post", color=f"C{i}", label=str(g))
        ax.fill_between(f["time"], f["ci_low"], f["ci_high"], step="post", color=f"C{i}", alpha=0.2)
    lr = table.attrs.get("logrank")
    title = "Time to drop-off"
    if lr:
        p = lr["p_value"]
        title += f" (log-rank p {'< 1e-16' if p < 1e-16 else f'= {p:.2g}'})"
    ax.set_title(title)
    unit = str(table.attrs.get("unit", ""))
    names = {str(pd.Timedelta(k)): v for k, v in (("1D", "days"), ("1h", "hours"), ("1min", "minutes"),
                                                  ("1s", "seconds"), ("7D", "weeks"))}
    ax.set_xlabel(f"time since step 1 ({names.get(unit, unit)})")
    ax.set_ylabel("share not yet dropped off")
    ax.set_ylim(0, 1.02)
    ax.legend(title=table.attrs.get("by") or None)
    return ax


def _dummies(frame: pd.DataFrame, cols) -> tuple[pd.DataFrame, dict]:
    X, refs = {}, {}
    for c in cols:
        v = frame[c].astype(str)
        counts = v.value_counts(sort=True)
        if len(counts) < 2:
            raise ValueError(f"covariate {c!r} has a single level {list(counts.index)}")
        refs[c] = counts.index[0]
        for lv in counts.index[1:]:
            X[f"{c}[{lv}]"] = (v == lv).astype(float).to_numpy()
    return pd.DataFrame(X, index=frame.index), refs


def cox(events, *, covariates, journey: JourneyMap | None = None, window=None, unit="1h",
        alpha: float = 0.05) -> pd.DataFrame:
    """Cox proportional-hazards model of time to drop-off (statsmodels ``PHReg``, Breslow ties).

    Durations and censoring as in :func:`survival_table`; categorical covariates from the
    attempt's step-1 event, reference = most frequent level.

    Returns
    -------
    DataFrame
        ``term`` (``"channel[app]"``), ``hazard_ratio``, ``ci_low``, ``ci_high``, ``p_value``,
        ``q_value``; ``attrs``: n (attempts), n_events, references.
    """
    from statsmodels.duration.hazard_regression import PHReg

    if isinstance(events, pd.DataFrame) and {"duration", "dropped"} <= set(events.columns):
        st = events
        covs = [covariates] if isinstance(covariates, str) else list(covariates)
        for c in covs:
            if c not in st.columns:
                raise ValueError(f"covariates={c!r} is not a column" + did_you_mean(c, st.columns))
    else:
        st = survival_table(events, journey=journey, by=covariates, window=window, unit=unit)
        covs = [covariates] if isinstance(covariates, str) else list(covariates)
    if not covs:
        raise ValueError("cox needs at least one covariate")
    X, refs = _dummies(st, covs)
    res = PHReg(st["duration"].to_numpy(float), X, status=st["dropped"].to_numpy(float),
                ties="breslow").fit()
    ci = np.asarray(res.conf_int(alpha=alpha))
    out = pd.DataFrame({"term": list(X.columns), "hazard_ratio": np.exp(res.params),
                        "ci_low": np.exp(ci[:, 0]), "ci_high": np.exp(ci[:, 1]),
                        "p_value": res.pvalues})
    out["q_value"] = bh_qvalues(out["p_value"].to_numpy())
    out.attrs.update(n=len(st), n_events=int(st["dropped"].sum()), references=refs, alpha=alpha)
    return out


# =========================================================================== sessions
@dataclass(frozen=True, eq=False)
class SessionDropoffResult:
    """Session-level drop-off logit (see :func:`session_dropoff`)."""

    table: pd.DataFrame
    auc: float
    fold_aucs: tuple
    n: int
    n_left: int
    outcome: str

    def summary(self) -> pd.DataFrame:
        return self.table

    def to_dict(self) -> dict:
        return {"auc_cv": self.auc, "fold_aucs": list(self.fold_aucs), "n": self.n,
                "n_left": self.n_left,
                "terms": {r.term: float(r.odds_ratio) for r in self.table.itertuples()}}

    def __repr__(self) -> str:
        return (f"SessionDropoffResult: logit of leaving (not {self.outcome}) on {self.n:,} sessions "
                f"({self.n_left:,} left), {len(self.table)} terms, {len(self.fold_aucs)}-fold "
                f"cross-validated AUC {self.auc:.3f}")

    def _repr_html_(self) -> str:
        import html

        return (f"<div><p>{html.escape(repr(self))}</p>"
                + self.table.to_html(index=False, float_format=lambda v: f"{v:.4g}") + "</div>")


def session_dropoff(frame: pd.DataFrame, *, outcome: str = "Revenue", covariates=None,
                    n_splits: int = 5, random_state: int = 0, alpha: float = 0.05) -> SessionDropoffResult:
    """Drop-off model for session-level data without an event log (one row per session).

    ``left = not outcome``; a statsmodels ``Logit`` of ``left`` on the covariates: numeric
    columns standardised (odds ratio **per SD**), text/bool/category columns as dummies
    (reference = most frequent). The AUC is the mean over ``n_splits`` shuffled folds
    (fitted on the other folds).

    Returns
    -------
    SessionDropoffResult
        ``summary()``: term, kind (numeric/level), odds_ratio (of leaving), ci_low, ci_high,
        p_value, q_value, ``sd`` (numeric terms: the SD one unit of the odds ratio stands for).
    """
    import statsmodels.api as sm

    if outcome not in frame.columns:
        raise ValueError(f"outcome={outcome!r} is not a column" + did_you_mean(outcome, frame.columns))
    covs = [c for c in frame.columns if c != outcome] if covariates is None else list(covariates)
    for c in covs:
        if c not in frame.columns:
            raise ValueError(f"covariates={c!r} is not a column" + did_you_mean(c, frame.columns))
    y_raw = frame[outcome]
    if y_raw.dtype == object or pd.api.types.is_string_dtype(y_raw):
        y_raw = y_raw.astype(str).str.upper().map({"TRUE": True, "FALSE": False, "1": True, "0": False})
    left = (~y_raw.astype(bool)).astype(float).to_numpy()
    cols, kinds, sds = {}, {}, {}
    for c in covs:
        v = frame[c]
        if pd.api.types.is_numeric_dtype(v) and not pd.api.types.is_bool_dtype(v):
            sd = float(v.std())
            if not sd > 0:
                raise ValueError(f"covariate {c!r} is constant")
            cols[c] = ((v - v.mean()) / sd).to_numpy(float)
            kinds[c], sds[c] = "numeric", sd
        else:
            d, _ = _dummies(frame[[c]], [c])
            for k in d:
                cols[k], kinds[k], sds[k] = d[k].to_numpy(), "level", np.nan
    X = sm.add_constant(pd.DataFrame(cols, index=frame.index), has_constant="add")
    res = sm.Logit(left, X).fit(disp=0, maxiter=200)
    ci = np.asarray(res.conf_int(alpha=alpha))[1:]
    terms = list(X.columns[1:])
    tab = pd.DataFrame({"term": terms, "kind": [kinds[t] for t in terms],
                        "odds_ratio": np.exp(res.params.to_numpy()[1:]), "ci_low": np.exp(ci[:, 0]),
                        "ci_high": np.exp(ci[:, 1]), "p_value": res.pvalues.to_numpy()[1:],
                        "sd": [sds[t] for t in terms]})
    tab["q_value"] = bh_qvalues(tab["p_value"].to_numpy())
    rng = np.random.default_rng(random_state)
    fold = rng.permutation(len(frame)) % n_splits
    aucs = []
    for k in range(n_splits):
        tr, te = fold != k, fold == k
        r = sm.Logit(left[tr], X[tr]).fit(disp=0, maxiter=200)
        p = r.predict(X[te])
        aucs.append(_weighted_auc(p, left[te], 1 - left[te]))
    return SessionDropoffResult(table=tab, auc=float(np.mean(aucs)), fold_aucs=tuple(aucs),
                                n=len(frame), n_left=int(left.sum()), outcome=outcome)
