"""Key drivers: which service ratings move an overall score, and how much each one matters.

:func:`key_drivers` fits one model of the outcome (an overall rating, a satisfied / not
satisfied label, a likelihood to recommend) on the driver ratings and splits the explained
variance between the drivers; :func:`plot_key_drivers` draws the split.

Definitions (shared by every function here)
-------------------------------------------
data
    A *wide* DataFrame: one row per respondent, one numeric column per driver rating and
    one column for the outcome. (A long feedback table, one row per answer, must be
    pivoted first, e.g. ``feedback.pivot(index="customer_id", columns="question",
    values="score")``.)
missing driver
    A driver value that is NaN or one of ``missing_values`` (surveys often code "not
    applicable / not rated" as 0). Rows with a missing driver or a missing outcome are
    dropped before anything is fitted; ``n_used`` and ``n_dropped`` count them, and the
    summary's ``n_missing`` says how many rows each driver lost. Dropped rows are not a
    random sample (people who did not use the wi-fi differ from those who did), so report
    ``n_dropped`` with the figures.
outcome codes
    The outcome as numbers: its own values when it is numeric; otherwise the position
    (0, 1, 2...) of each value in ``outcome_order`` (or in the categories of an ordered
    Categorical).
coefficient (``estimate``)
    ``kind="ordinal"``: the log odds ratio of a better outcome category (any cut point) per
    one-point increase in the driver, the other drivers held fixed, from a proportional-odds
    (ordered logit) model, :class:`statsmodels.miscmodels.ordinal_model.OrderedModel`
    with ``distr="logit"``. With two outcome levels the ordered logit *is* the binary
    logit (its single threshold is minus the intercept), so a 2-level outcome is fitted
    with :class:`statsmodels.discrete.discrete_model.Logit` and a constant: same
    coefficients, faster and better conditioned. ``odds_ratio`` is ``exp(estimate)``.
    Model-based (inverse Hessian) standard errors.
    ``kind="ols"``: the change in the outcome (codes) per one-point increase in the driver,
    from ordinary least squares with a constant and HC3 heteroskedasticity-robust standard
    errors (MacKinnon & White 1985). Intervals and p-values are Wald (normal) ones.
relative importance (``importance``)
    Johnson's relative weights (Johnson 2000): the drivers are replaced by their closest
    orthogonal counterparts ``Z = X R^(-1/2)`` (``R`` the drivers' correlation matrix),
    the outcome codes are regressed on ``Z``, and each orthogonal component's share of R²
    is handed back to the drivers in proportion to the squared loadings ``R^(1/2)``. The
    raw weights are non-negative and sum exactly to the R² of the *linear* regression of
    the outcome codes on all drivers; ``importance_share`` is the weight divided by that R²
    (the shares sum to 1). They approximate the general dominance weights (the Shapley
    decomposition of R² over all subsets of drivers, Budescu 1993) closely, at the cost of
    one eigendecomposition instead of ``2^p`` regressions. For an ordinal or binary outcome
    the weights are computed on the outcome codes (a linear-probability decomposition for a
    binary one), the usual practice in key driver analysis; the ordered logit coefficients
    give the direction and the significance, the weights the ranking. Correlated drivers
    share credit: a driver with no effect of its own that is correlated with strong drivers
    gets a small, non-zero weight.
bootstrap interval
    ``n_boot`` resamples of the rows (with replacement, the same size as the data, seeded
    by ``random_state``); in each, the correlation matrix is recomputed and the weights
    derived from it. Percentile intervals at level ``1 - alpha``. Group rollups are summed
    within each resample, so a group's interval accounts for the covariance of its members.

References
----------
Johnson, J. W. (2000). A heuristic method for estimating the relative weight of predictor
variables in multiple regression. Multivariate Behavioral Research 35(1), 1-19.
Budescu, D. V. (1993). Dominance analysis: a new approach to the problem of relative
importance of predictors in multiple regression. Psychological Bulletin 114(3), 542-551.
Tonidandel, S., & LeBreton, J. M. (2011). Relative importance analysis: a useful supplement
to regression analysis. Journal of Business and Psychology 26(1), 1-9.
McCullagh, P. (1980). Regression models for ordinal data. JRSS B 42(2), 109-142.
MacKinnon, J. G., & White, H. (1985). Some heteroskedasticity-consistent covariance matrix
estimators with improved finite sample properties. Journal of Econometrics 29(3), 305-325.
Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall.
"""
from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .exceptions import did_you_mean
from .journey import PHASES, JourneyMap
from .stats import _check_alpha, bh_qvalues

__all__ = ["KeyDriversResult", "key_drivers", "plot_key_drivers", "relative_weights"]

KINDS = ("ordinal", "ols")
MAX_ORDINAL_LEVELS = 20
_KNOWN_GROUP_ORDERS = (PHASES, ("ZMOT", "FMOT", "SMOT", "UMOT"))


# =========================================================================== the weights
def relative_weights(corr) -> np.ndarray:
    """Johnson's relative weights from correlation matrices of ``(drivers..., outcome)``.

    Parameters
    ----------
    corr : array, shape ``(q, q)`` or ``(B, q, q)``
        Correlation matrices whose last row/column is the outcome; a stack is handled in
        one batch (this is what makes the bootstrap fast).

    Returns
    -------
    ndarray, shape ``(q - 1,)`` or ``(B, q - 1)``
        Raw relative weights of the ``q - 1`` drivers; each row sums to the R² of the
        outcome on all drivers. A matrix whose driver block is singular (a constant or
        collinear driver) gives a row of NaN.

    References
    ----------
    Johnson, J. W. (2000). Multivariate Behavioral Research 35(1), 1-19.

    Examples
    --------
    >>> r = np.array([[1.0, 0.0, 0.6], [0.0, 1.0, 0.3], [0.6, 0.3, 1.0]])
    >>> relative_weights(r).round(2).tolist()   # uncorrelated drivers: squared correlations
    [0.36, 0.09]
    """
    c = np.asarray(corr, dtype="float64")
    single = c.ndim == 2
    if single:
        c = c[None]
    rxx, rxy = c[:, :-1, :-1], c[:, :-1, -1]
    lam, vec = np.linalg.eigh(rxx)
    bad = ~np.isfinite(lam).all(axis=1) | (lam.min(axis=1) <= 1e-10 * np.abs(lam).max(axis=1))
    lam = np.where(bad[:, None], 1.0, lam)
    sqrt_lam = np.sqrt(np.clip(lam, 1e-300, None))
    # Lambda = R^(1/2) = V diag(sqrt(lam)) V';  beta = R^(-1/2) rxy
    half = (vec * sqrt_lam[:, None, :]) @ np.swapaxes(vec, 1, 2)
    inv_half = (vec / sqrt_lam[:, None, :]) @ np.swapaxes(vec, 1, 2)
    beta = np.einsum("bij,bj->bi", inv_half, rxy)
    w = np.einsum("bjk,bk->bj", half ** 2, beta ** 2)
    w[bad] = np.nan
    return w[0] if single else w


def _corr_from_moments(gram, total, n):
    """Correlation matrices from sums of cross-products and sums (batched)."""
    mean = total / n
    cov = gram / n - mean[:, :, None] * mean[:, None, :]
    d = np.sqrt(np.clip(np.einsum("bii->bi", cov), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        return cov / (d[:, :, None] * d[:, None, :])


def _bootstrap_weights(a: np.ndarray, *, n_boot: int, random_state) -> np.ndarray:
    """``(n_boot, p)`` raw weights, one row per row-resample of the standardised data ``a``."""
    n, q = a.shape
    rng = np.random.default_rng(random_state)
    gram = np.empty((n_boot, q, q))
    total = np.empty((n_boot, q))
    for b in range(n_boot):
        m = a[rng.integers(0, n, n)]
        gram[b] = m.T @ m
        total[b] = m.sum(axis=0)
    return relative_weights(_corr_from_moments(gram, total, n))


# =========================================================================== the result
@dataclass(frozen=True)
class KeyDriversResult:
    """What :func:`key_drivers` fitted (immutable). Use :meth:`summary`, :meth:`groups`,
    :meth:`to_dict` and :func:`plot_key_drivers`.

    Attributes
    ----------
    kind : str
        ``"ordinal"`` or ``"ols"``.
    method : str
        The model actually fitted: ``"ordered logit"``, ``"binary logit"`` or ``"ols (HC3)"``.
    outcome : str
        The outcome column.
    drivers : tuple of str
        The driver columns, in the order given.
    levels : tuple
        Ordinal outcome categories from worst to best as fitted (empty for OLS).
    n_used, n_dropped : int
        Rows fitted, and rows dropped for a missing driver or outcome.
    r2 : float
        R² of the linear regression of the outcome codes on the drivers (the sum of the raw
        relative weights).
    pseudo_r2 : float
        McFadden's pseudo-R² of the ordinal model (``1 - llf / llnull``, the null model
        being the outcome's marginal distribution); NaN for OLS.
    converged : bool
        Whether the model's optimiser reported convergence.
    model : statsmodels results
        The fitted model, for anything the summary does not show.
    """

    kind: str
    method: str
    outcome: str
    drivers: tuple
    group_of: tuple
    levels: tuple
    n_used: int
    n_dropped: int
    n_missing: tuple
    n_boot: int
    alpha: float
    random_state: object
    r2: float
    pseudo_r2: float
    converged: bool
    estimate: np.ndarray = field(repr=False)
    std_error: np.ndarray = field(repr=False)
    p_value: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    boot_weights: np.ndarray = field(repr=False)
    group_names: tuple = field(repr=False, default=())
    model: object = field(repr=False, default=None, compare=False)

    # ------------------------------------------------------------------ tables
    def _ci(self, boot: np.ndarray):
        """Percentile interval per column of ``boot`` (NaN without a bootstrap)."""
        k = boot.shape[1] if boot.ndim == 2 else 0
        if self.n_boot == 0 or boot.size == 0:
            nan = np.full(k, np.nan)
            return nan, nan.copy()
        a = self.alpha
        lo, hi = np.nanpercentile(boot, [100 * a / 2, 100 * (1 - a / 2)], axis=0)
        return lo, hi

    def summary(self) -> pd.DataFrame:
        """One row per driver, sorted by importance (largest first).

        Columns
        -------
        driver, group
            The driver column and its group (``None`` without ``groups``/``journey``).
        estimate, std_error
            The coefficient (log odds ratio for ``kind="ordinal"``, outcome points for
            ``"ols"``) per one-point increase in the driver, and its standard error.
        ci_low, ci_high
            Wald interval of ``estimate`` (the coefficient, not the odds ratio) at level
            ``1 - alpha``.
        odds_ratio, odds_ratio_ci_low, odds_ratio_ci_high
            ``exp`` of the three above (``kind="ordinal"``; NaN for OLS): the multiplicative
            change in the odds of a better outcome per one-point increase.
        p_value, q_value
            Wald test of a zero coefficient, and its Benjamini-Hochberg q-value across drivers.
        importance, importance_ci_low, importance_ci_high
            Johnson's raw relative weight (a part of R²; they sum to ``r2``) with its
            bootstrap percentile interval.
        importance_share, importance_share_ci_low, importance_share_ci_high
            The weight as a fraction of R² (sums to 1) with its bootstrap interval.
        rank
            1 = most important.
        n_missing
            Rows dropped because this driver was missing (a row can miss several drivers).

        ``attrs``: kind, method, outcome, n_used, n_dropped, r2, pseudo_r2, alpha, n_boot.
        """
        est, se = self.estimate, self.std_error
        from scipy.stats import norm

        z = norm.ppf(1 - self.alpha / 2)
        lo, hi = est - z * se, est + z * se
        ordinal = self.kind == "ordinal"
        nan = np.full(len(est), np.nan)
        boot = self.boot_weights
        w_lo, w_hi = self._ci(boot)
        with np.errstate(divide="ignore", invalid="ignore"):
            share_boot = boot / boot.sum(axis=1, keepdims=True) if boot.size else boot
        s_lo, s_hi = self._ci(share_boot)
        out = pd.DataFrame({
            "driver": pd.array(self.drivers, dtype="str"),
            "group": pd.array(list(self.group_of), dtype="str") if self.group_names
            else pd.array([None] * len(est), dtype="str"),
            "estimate": est, "std_error": se, "ci_low": lo, "ci_high": hi,
            "odds_ratio": np.exp(est) if ordinal else nan,
            "odds_ratio_ci_low": np.exp(lo) if ordinal else nan,
            "odds_ratio_ci_high": np.exp(hi) if ordinal else nan,
            "p_value": self.p_value, "q_value": bh_qvalues(self.p_value),
            "importance": self.weights, "importance_ci_low": w_lo, "importance_ci_high": w_hi,
            "importance_share": self.weights / self.r2,
            "importance_share_ci_low": s_lo, "importance_share_ci_high": s_hi,
            "n_missing": np.asarray(self.n_missing, dtype="int64"),
        })
        out["rank"] = out["importance"].rank(ascending=False, method="min").astype("int64")
        out = out.sort_values(["rank", "driver"], ignore_index=True)
        out.attrs.update(self._attrs())
        return out

    def groups(self) -> pd.DataFrame:
        """One row per group, in group order: group, n_drivers, drivers (comma-separated),
        importance (sum of the members' raw weights), importance_ci_low/high (percentile
        interval of the per-resample sums), importance_share (of R²) with its interval,
        rank. Empty without ``groups``/``journey``."""
        cols = ["group", "n_drivers", "drivers", "importance", "importance_ci_low",
                "importance_ci_high", "importance_share", "importance_share_ci_low",
                "importance_share_ci_high", "rank"]
        if not self.group_names:
            return pd.DataFrame({c: [] for c in cols})
        gof = np.asarray(self.group_of, dtype=object)
        member = np.array([[g == name for g in gof] for name in self.group_names], dtype=float)
        weights = member @ self.weights
        boot = self.boot_weights @ member.T if self.boot_weights.size else self.boot_weights
        w_lo, w_hi = self._ci(boot)
        with np.errstate(divide="ignore", invalid="ignore"):
            share_boot = (boot / np.nansum(self.boot_weights, axis=1, keepdims=True)
                          if boot.size else boot)
        s_lo, s_hi = self._ci(share_boot)
        out = pd.DataFrame({
            "group": pd.array(list(self.group_names), dtype="str"),
            "n_drivers": member.sum(axis=1).astype("int64"),
            "drivers": pd.array([", ".join(d for d, g in zip(self.drivers, gof) if g == name)
                                 for name in self.group_names], dtype="str"),
            "importance": weights, "importance_ci_low": w_lo, "importance_ci_high": w_hi,
            "importance_share": weights / self.r2,
            "importance_share_ci_low": s_lo, "importance_share_ci_high": s_hi,
        })
        out["rank"] = out["importance"].rank(ascending=False, method="min").astype("int64")
        out.attrs.update(self._attrs())
        return out

    def _attrs(self) -> dict:
        return {"kind": self.kind, "method": self.method, "outcome": self.outcome,
                "n_used": self.n_used, "n_dropped": self.n_dropped, "r2": self.r2,
                "pseudo_r2": self.pseudo_r2, "alpha": self.alpha, "n_boot": self.n_boot}

    def to_dict(self) -> dict:
        """Key numbers for metrics.json: plain floats, ints and strings (NaN becomes None)."""
        def num(x):
            x = float(x)
            return None if math.isnan(x) else x

        s = self.summary()
        keys = ("estimate", "ci_low", "ci_high", "odds_ratio", "p_value", "q_value", "importance",
                "importance_ci_low", "importance_ci_high", "importance_share",
                "importance_share_ci_low", "importance_share_ci_high")
        drivers = {}
        for row in s.to_dict("records"):
            d = {"group": None if pd.isna(row["group"]) else str(row["group"]),
                 "rank": int(row["rank"]), "n_missing": int(row["n_missing"])}
            d.update({k: num(row[k]) for k in keys})
            drivers[str(row["driver"])] = d
        groups = {}
        for row in self.groups().to_dict("records"):
            groups[str(row["group"])] = {
                "n_drivers": int(row["n_drivers"]), "rank": int(row["rank"]),
                **{k: num(row[k]) for k in ("importance", "importance_ci_low", "importance_ci_high",
                                            "importance_share", "importance_share_ci_low",
                                            "importance_share_ci_high")}}
        return {
            "kind": self.kind, "method": self.method, "outcome": str(self.outcome),
            "levels": [v.item() if isinstance(v, np.generic) else v for v in self.levels],
            "n_used": int(self.n_used), "n_dropped": int(self.n_dropped),
            "n_drivers": len(self.drivers), "r2": num(self.r2), "pseudo_r2": num(self.pseudo_r2),
            "alpha": float(self.alpha), "n_boot": int(self.n_boot), "converged": bool(self.converged),
            "top_driver": str(s["driver"].iloc[0]),
            "drivers": drivers, "groups": groups,
        }

    # ------------------------------------------------------------------ display
    def _headline(self) -> str:
        pr = "" if math.isnan(self.pseudo_r2) else f", McFadden pseudo-R² {self.pseudo_r2:.3f}"
        return (f"{self.method} of {self.outcome!r} on {len(self.drivers)} drivers, "
                f"n={self.n_used:,} ({self.n_dropped:,} rows dropped for missing values); "
                f"R² {self.r2:.3f} (linear, on outcome codes; split by Johnson's relative "
                f"weights{', ' + str(self.n_boot) + ' bootstrap resamples' if self.n_boot else ''})"
                f"{pr}")

    def __repr__(self) -> str:
        s = self.summary()
        top = "; ".join(f"{r.driver} {r.importance_share:.0%}" for r in s.head(3).itertuples())
        return f"KeyDriversResult({self._headline()}; top: {top})"

    def _repr_html_(self) -> str:
        s = self.summary()
        cols = ["rank", "driver", "group", "importance_share", "importance_share_ci_low",
                "importance_share_ci_high", "estimate", "ci_low", "ci_high", "odds_ratio",
                "p_value", "q_value", "n_missing"]
        if self.kind != "ordinal":
            cols.remove("odds_ratio")
        if not self.group_names:
            cols.remove("group")
        table = s[cols].to_html(index=False, float_format=lambda x: f"{x:.3g}", na_rep="")
        return (f"<p><b>Key drivers</b>: {html.escape(self._headline())}</p>{table}")


# =========================================================================== validation
def _check_data(data, outcome, drivers):
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame (one row per respondent), "
                        f"not {type(data).__name__}")
    cols = list(data.columns)
    if not isinstance(outcome, str) and not np.isscalar(outcome):
        raise TypeError(f"outcome must be a column name, not {type(outcome).__name__}")
    if outcome not in data.columns:
        raise ValueError(f"outcome={outcome!r} is not a column of data"
                         + did_you_mean(str(outcome), cols) + f"; columns: {cols}")
    drivers = [drivers] if isinstance(drivers, str) else list(drivers if drivers is not None else ())
    if not drivers:
        raise ValueError("drivers must list at least one driver column")
    for d in drivers:
        if d not in data.columns:
            raise ValueError(f"drivers: {d!r} is not a column of data"
                             + did_you_mean(str(d), cols) + f"; columns: {cols}")
        if d == outcome:
            raise ValueError(f"drivers: {d!r} is the outcome; a column cannot drive itself")
    dup = sorted({str(d) for d in drivers if drivers.count(d) > 1})
    if dup:
        raise ValueError(f"drivers lists {dup} more than once")
    if data.columns.duplicated().any():
        twice = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
        if set(twice) & {str(c) for c in [outcome, *drivers]}:
            raise ValueError(f"data has duplicated column names {twice}")
    for d in drivers:
        s = data[d]
        if not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)):
            raise ValueError(f"drivers: {d!r} is not numeric (dtype {s.dtype}); driver ratings "
                             "must be numbers, e.g. data[col] = pd.to_numeric(data[col])")
    return drivers


def _outcome_codes(y: pd.Series, *, outcome, outcome_order):
    """(float codes with NaN for missing, labels of the codes or None)."""
    if outcome_order is not None:
        order = list(outcome_order)
        if len(order) < 2:
            raise ValueError(f"outcome_order={order!r} must list at least two values, worst first")
        if len({repr(v) for v in order}) != len(order):
            raise ValueError(f"outcome_order={order!r} lists a value twice")
        codes = y.map({v: float(i) for i, v in enumerate(order)})
        unknown = y[y.notna() & codes.isna()]
        if len(unknown):
            vals = sorted({str(v) for v in unknown.unique()})[:10]
            raise ValueError(f"outcome {outcome!r} has values {vals} that are not in "
                             f"outcome_order={order!r}" + did_you_mean(vals[0], map(str, order)))
        return codes.to_numpy(dtype="float64", na_value=np.nan), order
    if isinstance(y.dtype, pd.CategoricalDtype) and y.dtype.ordered:
        order = list(y.dtype.categories)
        codes = y.cat.codes.to_numpy().astype("float64")
        codes[codes < 0] = np.nan
        return codes, order
    if pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype):
        return y.to_numpy(dtype="float64", na_value=np.nan), None
    vals = sorted({str(v) for v in y.dropna().unique()})[:10]
    raise ValueError(f"outcome {outcome!r} is not numeric (dtype {y.dtype}); give "
                     f"outcome_order= listing its values from worst to best (values seen: {vals})")


def _resolve_groups(groups, journey, drivers):
    """(group per driver, ordered group names) or ((), ()) without grouping."""
    if groups is None and journey is None:
        return (), ()
    if groups is not None:
        if isinstance(groups, pd.Series):
            groups = groups.to_dict()
        if not isinstance(groups, Mapping):
            raise TypeError(f"groups must be a mapping driver -> group name, not {type(groups).__name__}")
        for k in groups:
            if k not in drivers:
                raise ValueError(f"groups: {k!r} is not one of the drivers"
                                 + did_you_mean(str(k), map(str, drivers)) + f"; drivers: {drivers}")
        missing = [d for d in drivers if d not in groups]
        if missing:
            raise ValueError(f"groups has no group for drivers {missing}; give every driver a "
                             "group (e.g. 'other')")
        group_of = [groups[d] for d in drivers]
        for d, g in zip(drivers, group_of):
            if g is None or (isinstance(g, float) and math.isnan(g)):
                raise ValueError(f"groups[{d!r}] is empty; give every driver a group name")
        group_of = [str(g) for g in group_of]
        names = list(dict.fromkeys(str(v) for v in groups.values()))
        for known in _KNOWN_GROUP_ORDERS:
            if set(names) <= set(known):
                names = [g for g in known if g in names]
                break
        return tuple(group_of), tuple(names)
    jm = JourneyMap.coerce(journey)
    unknown = [d for d in drivers if d not in jm.touchpoints]
    if unknown:
        raise ValueError(f"journey: drivers {unknown} are not touchpoints of the journey map"
                         + did_you_mean(str(unknown[0]), jm.touchpoints)
                         + "; name the drivers after touchpoints or give groups= instead")
    group_of = [jm.moment_of(d) for d in drivers]
    names = [m for m in jm.moment_ids if m in group_of]
    return tuple(group_of), tuple(names)


# =========================================================================== the models
def _fit_model(X: pd.DataFrame, y: np.ndarray, *, kind):
    """(method, params, bse, pvalues, pseudo_r2, converged, results, levels)."""
    import warnings

    import statsmodels.api as sm

    p = X.shape[1]
    if kind == "ols":
        res = sm.OLS(y, sm.add_constant(X, has_constant="add")).fit(cov_type="HC3")
        return ("ols (HC3)", res.params.to_numpy()[1:], res.bse.to_numpy()[1:],
                res.pvalues.to_numpy()[1:], np.nan, True, res, ())
    levels, codes = np.unique(y, return_inverse=True)
    counts = np.bincount(codes)
    llnull = float(np.sum(counts * np.log(counts / counts.sum())))
    if len(levels) == 2:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*overflow.*", category=RuntimeWarning)
            res = sm.Logit(codes.astype(float), sm.add_constant(X, has_constant="add")).fit(disp=False)
        sl = slice(1, None)
        method = "binary logit"
    else:
        res = _ordered_model_class()(codes, X, distr="logit").fit(method="bfgs", disp=False,
                                                                   maxiter=2000)
        sl = slice(0, p)
        method = "ordered logit"
    conv = bool(res.mle_retvals.get("converged", True))
    if not conv:
        warnings.warn(f"key_drivers: the {method} did not converge; check the drivers for "
                      "perfect separation or rescale them", RuntimeWarning, stacklevel=3)
    pseudo = 1.0 - float(res.llf) / llnull if llnull < 0 else np.nan
    return (method, np.asarray(res.params)[sl], np.asarray(res.bse)[sl],
            np.asarray(res.pvalues)[sl], pseudo, conv, res, tuple(levels))


_ORDERED = {}


def _ordered_model_class():
    """statsmodels' ``OrderedModel`` with an analytic score.

    Same likelihood, parameters and results class; only the gradient is exact instead of
    finite differences of the log-likelihood (and the Hessian is the finite difference of
    that gradient), which makes a fit on 100k rows take about a second instead of 20.
    """
    if "cls" in _ORDERED:
        return _ORDERED["cls"]
    from statsmodels.miscmodels.ordinal_model import OrderedModel
    from statsmodels.tools.numdiff import approx_fprime

    class _OrderedModel(OrderedModel):
        def score(self, params):
            params = np.asarray(params, dtype="float64")
            k, n_cut = self.k_vars, self.k_levels - 1
            low, upp = self._bounds(params)
            prob = self.prob(low, upp) + 1e-20
            f_low, f_upp = self.pdf(low) / prob, self.pdf(upp) / prob
            g_beta = -(f_upp - f_low) @ np.asarray(self.exog)
            y = np.asarray(self.endog)
            # d loglike / d cut point j: + f_upp of category j, - f_low of category j + 1
            g_cut = (np.bincount(y, weights=f_upp, minlength=n_cut + 1)[:n_cut]
                     - np.bincount(y, weights=f_low, minlength=n_cut + 1)[1:n_cut + 1])
            t = params[k:]
            tail = np.cumsum(g_cut[::-1])[::-1]            # sum over cut points j >= i
            g_t = np.concatenate(([g_cut.sum()], np.exp(t[1:]) * tail[1:]))
            return np.concatenate((g_beta, g_t))

        def hessian(self, params):
            h = approx_fprime(np.asarray(params, dtype="float64"), self.score, centered=True)
            return (h + h.T) / 2

    _ORDERED["cls"] = _OrderedModel
    return _OrderedModel


# =========================================================================== public API
def key_drivers(data: pd.DataFrame, *, outcome: str, drivers, kind: str = "ordinal",
                outcome_order=None, groups=None, journey=None, missing_values=None,
                n_boot: int = 200, alpha: float = 0.05, random_state=0) -> KeyDriversResult:
    """What drives an overall score: coefficients and relative importance of each driver.

    Fits the outcome on all drivers at once (an ordered logit or OLS, see ``kind``) for the
    direction, size and significance of each driver's effect, and splits R² between the
    drivers with Johnson's relative weights, with bootstrap intervals, for their
    importance. Every term is defined in the module docstring.

    Parameters
    ----------
    data : DataFrame
        Wide: one row per respondent, a numeric column per driver and the outcome column.
        Not modified.
    outcome : str
        The outcome column: numeric (a 1-5 CSAT, a 0-10 recommend score, 0/1), an ordered
        Categorical, or any values ordered by ``outcome_order``.
    drivers : list of str
        Numeric driver columns (ratings); at least two rows more than drivers are needed.
    kind : {"ordinal", "ols"}
        ``"ordinal"``: proportional-odds logit of the outcome categories (a binary logit
        for a 2-level outcome, which is the same model); at most 20 levels.
        ``"ols"``: linear regression of the outcome codes with HC3 robust errors.
    outcome_order : list, optional
        The outcome's values from worst to best, e.g. ``["neutral or dissatisfied",
        "satisfied"]``; required for a non-numeric outcome that is not an ordered
        Categorical. The codes are the positions in this list.
    groups : mapping, optional
        Driver -> group name (a journey phase ``before``/``during``/``after``, a moment of
        truth, a department); every driver needs one. Importance is also rolled up per group.
    journey : JourneyMap or path, optional
        When ``groups`` is None and the drivers are touchpoints of this map, group them by
        moment of truth (in the map's moment order).
    missing_values : scalar or list, optional
        Driver values meaning "not applicable / not rated" (e.g. ``(0,)``), treated as
        missing. Rows with any missing driver or a missing outcome are dropped.
    n_boot : int
        Bootstrap resamples for the importance intervals (0: no intervals).
    alpha : float
        1 - confidence level of every interval.
    random_state : int or numpy Generator
        Seed of the bootstrap.

    Returns
    -------
    KeyDriversResult
        ``.summary()`` (one row per driver), ``.groups()`` (one row per group),
        ``.to_dict()`` for metrics.json; draw it with :func:`plot_key_drivers`.

    Raises
    ------
    ValueError
        An unknown outcome or driver column (with a "did you mean" hint), a non-numeric or
        constant driver, collinear drivers, too few rows, an unknown ``kind``, a
        non-numeric outcome without ``outcome_order``, groups not covering the drivers.

    References
    ----------
    Johnson, J. W. (2000). A heuristic method for estimating the relative weight of
    predictor variables in multiple regression. Multivariate Behavioral Research 35(1), 1-19.
    McCullagh, P. (1980). Regression models for ordinal data. JRSS B 42(2), 109-142.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = pd.DataFrame(rng.integers(1, 6, size=(500, 3)), columns=["staff", "wait", "price"])
    >>> x["csat"] = (x["staff"] + 0.5 * x["wait"] + rng.normal(size=500) > 5).astype(int)
    >>> r = key_drivers(x, outcome="csat", drivers=["staff", "wait", "price"], n_boot=50)
    >>> r.summary()["driver"].tolist()
    ['staff', 'wait', 'price']
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}" + did_you_mean(str(kind), KINDS))
    _check_alpha(alpha)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot={n_boot!r} must be a whole number >= 0 (e.g. 200; 0 for no intervals)")
    drivers = _check_data(data, outcome, drivers)
    group_of, group_names = _resolve_groups(groups, journey, drivers)

    x = np.column_stack([data[d].to_numpy(dtype="float64", na_value=np.nan) for d in drivers])
    if missing_values is not None:
        mv = np.atleast_1d(np.asarray(missing_values, dtype="float64"))
        x = np.where(np.isin(x, mv), np.nan, x)
    y, order = _outcome_codes(data[outcome], outcome=outcome, outcome_order=outcome_order)
    miss_x = np.isnan(x)
    keep = ~miss_x.any(axis=1) & ~np.isnan(y)
    n_missing = tuple(int(v) for v in miss_x.sum(axis=0))
    x, y = x[keep], y[keep]
    n, p = x.shape
    if n < p + 2:
        raise ValueError(f"only {n} complete rows for {p} drivers; need at least {p + 2} "
                         f"({len(data) - n} of {len(data)} rows dropped for a missing driver or outcome)")
    sd = x.std(axis=0)
    const = [d for d, s in zip(drivers, sd) if not s > 0]
    if const:
        raise ValueError(f"drivers {const} are constant in the {n} complete rows (value "
                         f"{x[0, drivers.index(const[0])]:g}); drop them, they cannot explain anything")
    if not np.std(y) > 0:
        raise ValueError(f"outcome {outcome!r} is constant in the {n} complete rows; nothing to explain")
    levels_all = np.unique(y)
    if kind == "ordinal" and len(levels_all) > MAX_ORDINAL_LEVELS:
        raise ValueError(f"outcome {outcome!r} has {len(levels_all)} distinct values; "
                         f"kind='ordinal' takes at most {MAX_ORDINAL_LEVELS} levels, "
                         "use kind='ols' for a continuous outcome")

    a = np.column_stack([x, y])
    a = (a - a.mean(axis=0)) / a.std(axis=0)
    corr = (a.T @ a) / n
    weights = relative_weights(corr)
    if np.isnan(weights).any():
        _, vec = np.linalg.eigh(corr[:-1, :-1])
        involved = [d for d, v in zip(drivers, vec[:, 0]) if abs(v) > 0.1]
        raise ValueError(f"drivers {involved} are (nearly) collinear in the {n} complete rows: "
                         "one is a combination of the others; drop one of them")
    r2 = float(weights.sum())
    boot = (_bootstrap_weights(a, n_boot=int(n_boot), random_state=random_state)
            if n_boot else np.empty((0, p)))

    X = pd.DataFrame(x, columns=[str(d) for d in drivers])
    method, params, bse, pvalues, pseudo, conv, res, levels = _fit_model(X, y, kind=kind)
    if kind == "ordinal" and order is not None:
        levels = tuple(order[int(v)] for v in levels)
    elif kind == "ordinal":
        levels = tuple(int(v) if float(v).is_integer() else float(v) for v in levels)
    return KeyDriversResult(
        kind=kind, method=method, outcome=outcome, drivers=tuple(drivers), group_of=group_of,
        levels=levels, n_used=int(n), n_dropped=int(len(data) - n), n_missing=n_missing,
        n_boot=int(n_boot), alpha=float(alpha), random_state=random_state, r2=r2,
        pseudo_r2=float(pseudo), converged=conv, estimate=params, std_error=bse,
        p_value=pvalues, weights=weights, boot_weights=boot, group_names=group_names, model=res)


def plot_key_drivers(result: KeyDriversResult, *, ax=None):
    """Horizontal bars of each driver's share of R² with bootstrap intervals, largest on top,
    coloured by group. Returns the Axes.

    Importance has no sign, so a driver whose coefficient interval lies below 0 (more of it,
    worse outcome, the other drivers held fixed) is labelled "coefficient < 0".
    Without ``ax`` a figure sized to the number of drivers is made.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import PercentFormatter

    if not isinstance(result, KeyDriversResult):
        raise TypeError(f"result must be a KeyDriversResult from key_drivers(), not {type(result).__name__}")
    s = result.summary().iloc[::-1].reset_index(drop=True)   # largest at the top
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.2 + 0.38 * len(s)), layout="constrained")
    palette = plt.get_cmap("tab10").colors
    if result.group_names:
        colour = {g: palette[i % len(palette)] for i, g in enumerate(result.group_names)}
        colours = [colour[g] for g in s["group"]]
    else:
        colours = [palette[0]] * len(s)
    share = s["importance_share"].to_numpy()
    y = np.arange(len(s))
    ax.barh(y, share, color=colours, height=0.7)
    lo, hi = s["importance_share_ci_low"].to_numpy(), s["importance_share_ci_high"].to_numpy()
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    if has_ci.any():
        err = np.vstack([np.clip(share - lo, 0, None), np.clip(hi - share, 0, None)])
        err[:, ~has_ci] = 0
        ax.errorbar(share, y, xerr=err, fmt="none", ecolor="0.2", elinewidth=1, capsize=3)
    right = np.where(has_ci, np.maximum(hi, share), share)
    xmax = float(np.nanmax(right)) if len(right) else 1.0
    negative = (s["ci_high"] < 0).to_numpy()
    for yi, r, v, neg in zip(y, right, share, negative):
        ax.text(r + 0.01 * xmax, yi, f"{v:.1%}" + ("  (coefficient < 0)" if neg else ""),
                va="center", fontsize=8, color="0.25")
    ax.set_yticks(y, s["driver"].tolist())
    ax.set_xlim(0, xmax * (1.3 if negative.any() else 1.15))
    ax.set_ylim(-0.6, len(s) - 0.4)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    level = f"{1 - result.alpha:.0%}"
    ci = f", {level} bootstrap CI" if result.n_boot else ""
    ax.set_xlabel(f"share of R² = {result.r2:.2f} (Johnson's relative weights{ci})")
    ax.set_title(f"What drives {result.outcome!r} ({result.method}, n={result.n_used:,})",
                 fontsize=11, loc="left")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if result.group_names:
        handles = [Patch(color=colour[g], label=g) for g in result.group_names]
        ax.legend(handles=handles, title="group", loc="lower right", frameon=False)
    return ax
