import numpy as np
import pytest

from cxlab.stats import bh_qvalues, two_proportion_test, wilson_ci


def test_wilson_matches_the_formula():
    s, n, z = 30, 80, 1.959963984540054
    p = s / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    lo, hi = wilson_ci(s, n)
    assert lo == pytest.approx(centre - half) and hi == pytest.approx(centre + half)
    lo, hi = wilson_ci([0, 5], [0, 5])
    assert np.isnan(lo[0]) and hi[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="alpha"):
        wilson_ci(1, 2, alpha=5)


def test_two_proportion_test_by_hand():
    z, p = two_proportion_test(45, 100, 30, 100)
    pooled = 75 / 200
    z_hand = (0.45 - 0.30) / np.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert z == pytest.approx(z_hand) and p == pytest.approx(0.0285, abs=5e-4)
    z, p = two_proportion_test(0, 0, 1, 10)
    assert np.isnan(z) and np.isnan(p)


def test_bh_qvalues_by_hand():
    q = bh_qvalues([0.01, 0.04, 0.03, np.nan, 0.20])
    # sorted p 0.01, 0.03, 0.04, 0.20 with m=4: 0.04, 0.0533, 0.0533, 0.20
    assert q[0] == pytest.approx(0.04) and q[2] == pytest.approx(0.04 * 4 / 3)
    assert q[1] == pytest.approx(0.04 * 4 / 3) and np.isnan(q[3]) and q[4] == pytest.approx(0.2)
