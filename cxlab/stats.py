"""Small statistical building blocks shared by the analyses (thin, tested wrappers over
statsmodels): Wilson intervals, two-proportion tests, Benjamini-Hochberg q-values."""
from __future__ import annotations

import numpy as np


def wilson_ci(successes, trials, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for ``successes / trials`` (arrays or scalars).

    Returns ``(low, high)``; NaN where ``trials`` is 0.

    References
    ----------
    Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
    inference. JASA 22(158), 209-212.
    """
    from statsmodels.stats.proportion import proportion_confint

    _check_alpha(alpha)
    s = np.asarray(successes, dtype="float64")
    n = np.asarray(trials, dtype="float64")
    low = np.full(np.broadcast(s, n).shape, np.nan)
    high = low.copy()
    ok = n > 0
    if np.any(ok):
        lo, hi = proportion_confint(np.broadcast_to(s, low.shape)[ok], np.broadcast_to(n, low.shape)[ok],
                                    alpha=alpha, method="wilson")
        low[ok], high[ok] = lo, hi
    return low, high


def two_proportion_test(s1, n1, s2, n2) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided z-test of ``s1/n1 == s2/n2`` (pooled variance), elementwise.

    Returns ``(z, p_value)``; NaN where either group is empty or the pooled rate is 0 or 1.
    """
    s1, n1, s2, n2 = (np.asarray(x, dtype="float64") for x in (s1, n1, s2, n2))
    from scipy.stats import norm

    with np.errstate(divide="ignore", invalid="ignore"):
        p = (s1 + s2) / (n1 + n2)
        se = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
        z = (s1 / n1 - s2 / n2) / se
    z = np.where((n1 > 0) & (n2 > 0) & (se > 0), z, np.nan)
    pval = 2 * norm.sf(np.abs(z))
    return z, pval


def bh_qvalues(p_values) -> np.ndarray:
    """Benjamini-Hochberg q-values (false-discovery-rate adjusted p-values); NaNs kept."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype="float64")
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q


def _check_alpha(alpha: float) -> None:
    if not (0 < float(alpha) < 1):
        raise ValueError(f"alpha={alpha!r} must be between 0 and 1 (e.g. 0.05 for 95% intervals)")


__all__ = ["wilson_ci", "two_proportion_test", "bh_qvalues"]
