"""A versus B in the explorer: two segments, channels or periods side by side, tested.

:func:`compare` takes an :class:`~cxlab.explore.ExplorerData` and two selections and returns
a :class:`Comparison`: one row per measure the data can answer (customers, conversion, NPS,
CSAT, each funnel step's pass rate, and per selected touchpoint the share who left after it
and the share of negative scores), with A's and B's value and n, the difference B - A and
its interval, the test's p-value and a verdict. Tests are the package's own: the pooled
two-proportion z-test (:func:`cxlab.stats.two_proportion_test`, as
:func:`cxlab.kpis.period_change` uses) for rates, and for NPS a z-test of the difference over
the two standard errors (as ``period_change`` does for NPS). A difference is *called* only
when its Benjamini-Hochberg q-value (over every row tested in the comparison,
:func:`cxlab.stats.bh_qvalues`, as the pain-point table adjusts its p-values) is below ``alpha`` and both groups have at least ``min_n`` observations;
otherwise the row says "no clear difference" or "too few to judge".

:class:`CompareView` is the panel of the pain-point explorer: what to compare (segments,
channels or months), A and B, and the table, following the explorer's moment and touchpoints.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

import numpy as np
import pandas as pd

from .explore import Selection
from .io import in_score_class
from .stats import bh_qvalues, two_proportion_test

#: what A and B can be
DIMENSIONS = (("segment", "Segments"), ("channel", "Channels"), ("period", "Months"))
MIN_N = 30

# which way is better for each measure (+1: higher is better)
_BETTER = {"customers": 0, "conversion": 1, "nps": 1, "csat": 1, "step": 1, "left_after": -1, "negative": -1}


@dataclass
class Comparison:
    """The rows of an A-versus-B comparison (see the module docstring)."""

    table: pd.DataFrame
    a_label: str
    b_label: str
    alpha: float
    min_n: int
    notes: list = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def called(self) -> pd.DataFrame:
        """The rows whose difference is called."""
        return self.table[self.table["significant"]].reset_index(drop=True)

    def to_dict(self) -> dict:
        t = self.table.replace({np.nan: None})
        return {"a": self.a_label, "b": self.b_label, "alpha": self.alpha, "min_n": self.min_n,
                "rows": t.to_dict(orient="records"), "notes": list(self.notes)}

    def summary(self) -> str:
        called = self.called()
        head = f"{self.b_label} vs {self.a_label}: "
        if called.empty:
            return head + "no difference is clear at this sample size."
        return head + "; ".join(f"{r.measure} {_fmt(r.b_value, r.unit)} vs {_fmt(r.a_value, r.unit)}"
                                for r in called.itertuples())

    def _repr_html_(self) -> str:
        return comparison_html(self)


def _fmt(v, unit: str) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if unit == "%":
        return f"{100 * v:.1f}%"
    if unit == "pts":
        return f"{v:+.0f}"
    return f"{v:,.0f}"


def _fmt_diff(v, unit: str) -> str:
    if v is None or np.isnan(v):
        return "–"
    if unit == "%":
        return f"{100 * v:+.1f} pts"
    if unit == "pts":
        return f"{v:+.1f}"
    return f"{v:+,.0f}"


def _p(p) -> str:
    if p is None or np.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _row(measure, kind, unit, a, na, b, nb, *, sa=None, sb=None, se_a=None, se_b=None, z=1.96):
    """One row: values, n, difference and its Wald interval, the test statistic and p-value."""
    from scipy.stats import norm

    r = {"measure": measure, "kind": kind, "unit": unit, "a_value": a, "a_n": int(na), "b_value": b,
         "b_n": int(nb), "diff": np.nan, "diff_ci_low": np.nan, "diff_ci_high": np.nan, "p_value": np.nan}
    if a is None or b is None or np.isnan(a) or np.isnan(b):
        return r
    r["diff"] = b - a
    if sa is not None:                        # a proportion: successes of n
        _, p = two_proportion_test(sb, nb, sa, na)
        r["p_value"] = float(p)
        se = np.sqrt(a * (1 - a) / max(na, 1) + b * (1 - b) / max(nb, 1))
    elif se_a is not None:
        se = float(np.hypot(se_a, se_b))
        r["p_value"] = float(2 * norm.sf(abs(r["diff"]) / se)) if se > 0 else np.nan
    else:
        return r
    r["diff_ci_low"], r["diff_ci_high"] = r["diff"] - z * se, r["diff"] + z * se
    return r


def compare(data, a: Selection, b: Selection, *, a_label: str = "A", b_label: str = "B",
            alpha: float | None = None, min_n: int = MIN_N) -> Comparison:
    """Compare two selections of the same explorer data (see the module docstring).

    ``a`` and ``b`` usually differ in one filter (segments, channels or dates) and share the
    moment and touchpoints; the touchpoint rows are those of ``b``'s moment and touchpoints.
    """
    from scipy.stats import norm

    alpha = data.alpha if alpha is None else float(alpha)
    z = float(norm.ppf(1 - alpha / 2))
    jm = data.journey
    rows = []
    notes = []
    has_events = getattr(data, "has_events", True)
    voice = _Voice.of(data)
    va, vb = voice.select(data, a), voice.select(data, b)
    if has_events:
        rows.append(_row("Customers", "customers", "n", float(data.customer_count(a)), 0,
                         float(data.customer_count(b)), 0))
        fa, fb = data.funnel_table(a), data.funnel_table(b)
        na, nb = int(fa["n"].iloc[0]), int(fb["n"].iloc[0])
        ca, cb = _converted(data, a), _converted(data, b)
        if na and nb:
            rows.append(_row(f"Conversion ({jm.label(jm.funnel[0])} to {jm.label(jm.funnel[-1])})",
                             "conversion", "%", ca / na, na, cb / nb, nb, sa=ca, sb=cb, z=z))
    tps_b = data.selected_touchpoints(b)
    for kind in ("nps", "csat"):
        (ka, sa_, se_a), (kb, sb_, se_b) = voice.kpi(va, kind, tps_b), voice.kpi(vb, kind, tps_b)
        name = "NPS" if kind == "nps" else "CSAT (top-2 box)"
        if not (ka and kb):
            if ka or kb:
                notes.append(f"{name}: only {'A' if ka else 'B'} has answers")
            continue
        if kind == "nps":
            rows.append(_row(name, kind, "pts", sa_, ka, sb_, kb, se_a=se_a, se_b=se_b, z=z))
        else:
            rows.append(_row(name, kind, "%", sa_ / ka, ka, sb_ / kb, kb, sa=sa_, sb=sb_, z=z))
    if has_events and len(jm.funnel) > 1:
        for i in range(1, len(jm.funnel)):
            pa, pb = int(fa["n"].iloc[i - 1]), int(fb["n"].iloc[i - 1])
            xa, xb = int(fa["n"].iloc[i]), int(fb["n"].iloc[i])
            if pa == 0 or pb == 0:
                continue
            rows.append(_row(f"{jm.label(jm.funnel[i - 1])} → {jm.label(jm.funnel[i])}", "step", "%",
                             xa / pa, pa, xb / pb, pb, sa=xa, sb=xb, z=z))
    tps = data.selected_touchpoints(b)
    if has_events:
        ta, tb = (data.journey_table(s).set_index("touchpoint") for s in (a, b))
        for tp in tps:
            if tp not in ta.index or tp not in tb.index or tp in jm.funnel[-1:]:
                continue
            ra, rb = ta.loc[tp], tb.loc[tp]
            na, nb = int(ra["at_risk"]), int(rb["at_risk"])
            if na == 0 or nb == 0:
                continue
            rows.append(_row(f"Left after {jm.label(tp)}", "left_after", "%", ra["left"] / na, na,
                             rb["left"] / nb, nb, sa=int(ra["left"]), sb=int(rb["left"]), z=z))
    neg_a, neg_b = voice.negative(va, tps), voice.negative(vb, tps)
    for tp in tps:
        (sa, na), (sb, nb) = neg_a.get(tp, (0, 0)), neg_b.get(tp, (0, 0))
        if na == 0 or nb == 0:
            continue
        rows.append(_row(f"Negative scores at {jm.label(tp)}", "negative", "%", sa / na, na, sb / nb, nb,
                         sa=sa, sb=sb, z=z))
    t = pd.DataFrame(rows, columns=["measure", "kind", "unit", "a_value", "a_n", "b_value", "b_n", "diff",
                                    "diff_ci_low", "diff_ci_high", "p_value"])
    t["p_adjusted"] = bh_qvalues(t["p_value"])
    tested = t["p_value"].notna().to_numpy()
    enough = (t["a_n"] >= min_n) & (t["b_n"] >= min_n)
    t["significant"] = (t["p_adjusted"] < alpha) & enough & tested
    t["verdict"] = [_verdict(r, enough_i, min_n) for r, enough_i in zip(t.itertuples(), enough)]
    return Comparison(t, a_label, b_label, alpha, min_n, notes)


def _verdict(r, enough: bool, min_n: int) -> str:
    if r.kind == "customers":
        return ""
    if np.isnan(r.p_value):
        return "not testable"
    if not enough:
        return f"too few to judge (n < {min_n})"
    if not r.significant:
        return "no clear difference"
    better = _BETTER[r.kind] * np.sign(r.diff)
    return "B better" if better > 0 else "B worse" if better < 0 else "B differs"


def _converted(data, sel: Selection) -> int:
    """Customers of the selection who converted (what the explorer's conversion tile counts)."""
    return data._customers.funnel_counts(sel, data._picked(sel), len(data.journey.funnel))[1]


class _Voice:
    """The explorer's feedback as arrays, built once per ExplorerData: touchpoint codes, NPS
    answers' promoter/detractor flags, satisfaction answers' top-2 flags, negative flags."""

    _kept: dict = {}

    def __init__(self, data):
        f = data.feedback
        self.n = 0 if f is None else len(f)
        if not self.n:
            return
        self.tps = list(data.journey.touchpoints)
        self.tp = pd.Categorical(f["touchpoint"].astype("str"), categories=self.tps).codes
        scale = f["scale"].astype("str").to_numpy()
        score = f["score"].to_numpy("float64", na_value=np.nan)
        scored = ~np.isnan(score)
        self.nps = scored & (scale == "nps")
        self.promoter, self.detractor = self.nps & (score >= 9), self.nps & (score <= 6)
        self.sat = scored & np.isin(scale, ["csat", "stars"])
        self.top = np.zeros(self.n, dtype=bool)
        if self.sat.any():
            self.top[self.sat] = np.asarray(in_score_class(f["score"][self.sat], f["scale"][self.sat],
                                                           "positive"), dtype=bool)
        self.scored = scored
        self.neg = np.zeros(self.n, dtype=bool)
        if scored.any():
            self.neg[scored] = np.asarray(in_score_class(f["score"][scored], f["scale"][scored], "negative"),
                                          dtype=bool)

    @classmethod
    def of(cls, data) -> _Voice:
        key = id(data)
        got = cls._kept.get(key)
        if got is None or got[0] is not data:
            cls._kept.clear()                 # one explorer's data at a time
            got = cls._kept[key] = (data, cls(data))
        return got[1]

    def select(self, data, sel: Selection) -> np.ndarray:
        return data._feedback_mask(sel) if self.n else np.zeros(0, dtype=bool)

    def _in(self, m, tps):
        codes = [self.tps.index(t) for t in tps if t in self.tps]
        return m & np.isin(self.tp, codes)

    def kpi(self, m, kind, tps) -> tuple[int, float, float]:
        """(n, value, se): NPS in points with its standard error, or CSAT's (n, top-2 count, nan)."""
        if not self.n:
            return 0, np.nan, np.nan
        m = self._in(m, tps)
        if kind == "nps":
            k = int((m & self.nps).sum())
            if not k:
                return 0, np.nan, np.nan
            pp, pd_ = (m & self.promoter).sum() / k, (m & self.detractor).sum() / k
            return k, float(100 * (pp - pd_)), float(100 * np.sqrt(max(pp + pd_ - (pp - pd_) ** 2, 0) / k))
        k = int((m & self.sat).sum())
        return k, float((m & self.top).sum()), np.nan

    def negative(self, m, tps) -> dict:
        """Per touchpoint: (negative scores, scored answers)."""
        if not self.n:
            return {}
        m = m & self.scored
        k = len(self.tps)
        g = np.where(m & (self.tp >= 0), self.tp, k)
        n = np.bincount(g, minlength=k + 1)[:k]
        neg = np.bincount(g, weights=self.neg.astype("float64"), minlength=k + 1)[:k]
        return {t: (int(neg[i]), int(n[i])) for i, t in enumerate(self.tps) if t in tps and n[i]}


def comparison_html(c: Comparison) -> str:
    """The comparison as an HTML table: measure, A, B, difference with interval, p, verdict."""
    head = (f"<tr><th>Measure</th><th>A: {escape(c.a_label)}</th><th>B: {escape(c.b_label)}</th>"
            "<th>B − A (95% interval)</th><th>q (BH)</th><th>Verdict</th></tr>")
    body = []
    for r in c.table.itertuples():
        cls = "cx-called" if r.significant else "cx-muted"
        if r.kind == "customers":
            a, b = _fmt(r.a_value, "n"), _fmt(r.b_value, "n")
        else:
            a = f"{_fmt(r.a_value, r.unit)} <span class='cx-n'>n={r.a_n:,}</span>"
            b = f"{_fmt(r.b_value, r.unit)} <span class='cx-n'>n={r.b_n:,}</span>"
        d = ("" if np.isnan(r.diff) or r.kind == "customers" else
             f"{_fmt_diff(r.diff, r.unit)}" + ("" if np.isnan(r.diff_ci_low) else
                                                f" <span class='cx-n'>({_fmt_diff(r.diff_ci_low, r.unit)} to "
                                                f"{_fmt_diff(r.diff_ci_high, r.unit)})</span>"))
        body.append(f"<tr class='{cls}'><td>{escape(r.measure)}</td><td>{a}</td><td>{b}</td><td>{d}</td>"
                    f"<td>{_p(r.p_adjusted)}</td><td>{escape(r.verdict)}</td></tr>")
    notes = "".join(f"<div class='cx-note'>{escape(n)}</div>" for n in c.notes)
    called = c.called()
    lead = (f"<div class='cx-note'><b>{len(called)}</b> of {int(c.table['p_value'].notna().sum())} X {c.alpha:g}, at least {c.min_n} in each group); "
            "the others are shown greyed.</div>")
    return (f"{lead}<table class='cx-compare'><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>{notes}")


def months(data) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """The calendar months of the data: (label, first day, last day), oldest first."""
    first, last = pd.Timestamp(data.first_day), pd.Timestamp(data.last_day)
    out = []
    tz = first.tz
    for m in pd.period_range(first.tz_localize(None), last.tz_localize(None), freq="M"):
        lo, hi = m.start_time.normalize(), m.end_time.normalize()
        if tz is not None:
            lo, hi = lo.tz_localize(tz), hi.tz_localize(tz)
        lo, hi = max(lo, first), min(hi, last)
        out.append((m.start_time.strftime("%B %Y"), lo, hi))
    return out


def selections_for(data, dimension: str, a, b, *, moment=None, touchpoints=None, channels=None,
                   segments=None, rule="ever") -> tuple[Selection, Selection]:
    """Two selections differing in ``dimension`` (``segment``, ``channel`` or ``period``), the
    rest as given (a period's A and B are ``(first day, last day)`` pairs)."""
    def sel(**over):
        kw = dict(moment=moment, touchpoints=touchpoints, channels=channels, segments=segments, rule=rule)
        kw.update(over)
        return data.selection(**kw)

    if dimension == "segment":
        return sel(segments=[a]), sel(segments=[b])
    if dimension == "channel":
        return sel(channels=[a]), sel(channels=[b])
    if dimension == "period":
        return sel(start=a[0], end=a[1]), sel(start=b[0], end=b[1])
    raise ValueError(f"dimension={dimension!r}: one of {[d for d, _ in DIMENSIONS]}")


class CompareView:
    """The A-versus-B panel of the pain-point explorer (``explorer``: a PainPointExplorer)."""

    def __init__(self, explorer, *, lazy: bool = False):
        import ipywidgets as w

        self.explorer = explorer
        d = explorer.data
        self._months = months(d)
        dims = [(words, key) for key, words in DIMENSIONS if self._options(key, d)]
        self.comparison: Comparison | None = None
        self.dimension = w.ToggleButtons(options=dims or [("Nothing to compare", "")], description="",
                                         style={"button_width": "100px"})
        self.a = w.Dropdown(description="A", layout=w.Layout(width="260px"))
        self.b = w.Dropdown(description="B", layout=w.Layout(width="260px"))
        self.html = w.HTML()
        self.widget = w.VBox([w.HBox([self.dimension, self.a, self.b],
                                     layout=w.Layout(flex_flow="row wrap", grid_gap="4px 12px")), self.html],
                             layout=w.Layout(width="100%", min_width="0", overflow="auto"))
        self._busy = False
        self._lazy = lazy            # built before the explorer's first selection exists: no update yet
        self.dimension.observe(self._on_dimension, "value")
        self.a.observe(self._on_pick, "value")
        self.b.observe(self._on_pick, "value")
        self._on_dimension(None)
        self._lazy = False

    @staticmethod
    def _levels(key, d):
        if key == "segment":
            return list(d.segments)
        if key == "channel":
            return list(d.channels)
        return [m[0] for m in months(d)]

    def _options(self, key, d):
        return len(self._levels(key, d)) >= 2

    def _on_dimension(self, _):
        key = self.dimension.value
        levels = self._levels(key, self.explorer.data) if key else []
        self._busy = True
        try:
            self.a.options = self.b.options = levels
            if len(levels) >= 2:
                if key == "period":      # the last two months
                    self.a.value, self.b.value = levels[-2], levels[-1]
                else:                    # the two largest groups come first in the data's order
                    self.a.value, self.b.value = levels[0], levels[1]
        finally:
            self._busy = False
        if not self._lazy:
            self._refresh()

    def _refresh(self):
        self.update()
        if hasattr(self.explorer, "_tick"):      # the page's update counter (browser timings)
            self.explorer._tick()

    def _on_pick(self, _):
        if not self._busy:
            self._refresh()

    def update(self) -> None:
        key = self.dimension.value
        d = self.explorer.data
        if not key or self.a.value is None or self.b.value is None:
            self.html.value = ("<div class='cx-note'>Nothing to compare: the data has one segment, one channel "
                               "and one month.</div>")
            self.comparison = None
            return
        if self.a.value == self.b.value:
            self.html.value = "<div class='cx-note'>Pick two different groups for A and B.</div>"
            self.comparison = None
            return
        cur = self.explorer.selection()
        a, b = self.a.value, self.b.value
        if key == "period":
            bounds = {m[0]: (m[1], m[2]) for m in self._months}
            a, b = bounds[a], bounds[b]
        kw = dict(moment=cur.moment, touchpoints=cur.touchpoints, rule=cur.rule or "ever")
        if key != "channel":
            kw["channels"] = cur.channels
        if key != "segment":
            kw["segments"] = cur.segments
        sa, sb = selections_for(d, key, a, b, **kw)
        self.comparison = compare(d, sa, sb, a_label=str(self.a.value), b_label=str(self.b.value))
        entry = sa.rule == "entry"
        who = {"segment": "Customers first seen in each segment" if entry else "Customers ever in each segment",
               "channel": "Customers who first came through each channel" if entry
               else "Customers who ever used each channel",
               "period": "Customers and answers of each calendar month"}[key]
        who = f"<div class='cx-note'>{who}, with their whole journeys.</div>"
        self.html.value = who + comparison_html(self.comparison)
