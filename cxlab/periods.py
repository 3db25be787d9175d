"""The period a report covers and the previous period it is compared with.

A report notebook declares three parameters (see ``notebooks/reports/``)::

    period: str = ""        # "", "last_week", "last_month" or N days ("7D", "28D")
    period_start: str = ""  # first day covered, YYYY-MM-DD
    period_end: str = ""    # last day covered, YYYY-MM-DD

and :func:`resolve_period` turns them into a :class:`Period`: whole UTC days, both ends
included, and the previous period of the same length just before it. Relative periods are
anchored on ``period_end`` when given, else on the **last day with data in the workspace**
(the latest event or feedback day, :func:`last_data_day`), not on today: the same workspace
gives the same period whenever the report runs, and a weekly export that arrives on a
Tuesday still reports its last full week.

=====================  =================================================  =====================================
parameters             period                                             previous period
=====================  =================================================  =====================================
all empty              all data (no :class:`Period`, nothing to compare)  none: the index compares with the
                                                                          previous run
``period_end`` only    all data up to that day                            none
``period_start`` (and  those days (to the anchor day when no end)         the same number of days just before
``period_end``)
``7D``, ``28D``        the N days ending on the anchor day                the N days before them
``last_week``          the latest full Monday-Sunday (ISO) week ending    the week before
                       on or before the anchor day
``last_month``         the latest full calendar month ending on or        the calendar month before, whatever
                       before the anchor day                              its length (rates and scores compare;
                                                                          counts differ by the days, said in
                                                                          :attr:`Period.note`)
=====================  =================================================  =====================================

Events and feedback *in* a period are those whose ``ts`` falls on one of its days
(:meth:`Period.filter`). A funnel attempt that starts late in a period and converts after
it is therefore not counted as converted; the previous period is cut the same way, so
the two compare like with like.

>>> p = resolve_period("7D", last_day="2026-11-30")
>>> p.label, p.previous_label
('7 days to 30 Nov 2026', 'previous 7 days (17–23 Nov 2026)')
"""
from __future__ import annotations

import calendar
import datetime as _dt
import re
from dataclasses import dataclass

import pandas as pd

from .exceptions import PeriodError

__all__ = ["Period", "PeriodError", "check_period_parameters", "comparison_view", "format_change",
           "format_day_range", "format_value", "last_data_day", "period_metrics", "period_section",
           "resolve_period"]

RELATIVE = ("last_week", "last_month")
_DAYS = re.compile(r"^\s*(\d{1,4})\s*[dD]\s*$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ACCEPTED = ('period: "" (all data), "last_week", "last_month" or a number of days such as "7D" or "28D"; '
            'period_start / period_end: a day YYYY-MM-DD')


# --------------------------------------------------------------------------- parsing
def _day(value, parameter: str) -> _dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    text = str(value).strip()
    try:
        if not _ISO_DAY.match(text):
            raise ValueError
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise PeriodError(parameter, value, f"is not a day written YYYY-MM-DD (e.g. 2026-11-30); "
                                            f"accepted: {ACCEPTED}") from None


def _relative(period) -> tuple[str, int | None]:
    """``("", None)``, ``("last_week", None)``, ``("last_month", None)`` or ``("days", N)``."""
    if period is None or not str(period).strip():
        return "", None
    text = str(period).strip()
    if text.lower() in RELATIVE:
        return text.lower(), None
    m = _DAYS.match(text)
    if m and int(m.group(1)) >= 1:
        return "days", int(m.group(1))
    from .exceptions import did_you_mean

    raise PeriodError("period", period, f"is not a period; accepted: {ACCEPTED}"
                      + did_you_mean(text, RELATIVE))


def check_period_parameters(period="", period_start="", period_end="") -> None:
    """Check the three period parameters without data (before a report runs).

    Raises
    ------
    PeriodError
        A value of the wrong form, ``period_start`` after ``period_end``, or a relative
        ``period`` given together with ``period_start``. The error names the parameter and
        the accepted forms.
    """
    kind, _ = _relative(period)
    start, end = _day(period_start, "period_start"), _day(period_end, "period_end")
    if start and end and start > end:
        raise PeriodError("period_start", period_start, f"is after period_end={str(period_end)!r}; "
                          "the first day covered must come before the last")
    if kind and start:
        raise PeriodError("period", period, f"and period_start={str(period_start)!r} both say where the "
                          "period starts; give one (period_end may anchor a relative period)")


# --------------------------------------------------------------------------- formatting
def format_day_range(start: _dt.date, end: _dt.date) -> str:
    """``"17–23 Nov 2026"``, ``"28 Nov – 4 Dec 2026"``, ``"28 Dec 2026 – 3 Jan 2027"``, one day
    ``"30 Nov 2026"``."""
    if start == end:
        return f"{end.day} {end:%b %Y}"
    if start.year != end.year:
        return f"{start.day} {start:%b %Y} – {end.day} {end:%b %Y}"
    if start.month != end.month:
        return f"{start.day} {start:%b} – {end.day} {end:%b %Y}"
    return f"{start.day}–{end.day} {end:%b %Y}"


def _day_text(d: _dt.date) -> str:
    return f"{d.day} {d:%b %Y}"


# --------------------------------------------------------------------------- the period
@dataclass(frozen=True)
class Period:
    """The days a report covers, both ends included (UTC), and the previous period.

    Attributes
    ----------
    start : date or None
        First day covered; None: from the first day of the data (``period_end`` only).
    end : date
    previous_start, previous_end : date or None
        The previous period of the same length (None when there is none).
    kind : str
        ``"days"``, ``"last_week"``, ``"last_month"``, ``"range"`` or ``"until"``.
    anchor : date or None
        The day a relative period was counted back from.
    """

    start: _dt.date | None
    end: _dt.date
    previous_start: _dt.date | None = None
    previous_end: _dt.date | None = None
    kind: str = "range"
    anchor: _dt.date | None = None

    @property
    def days(self) -> int | None:
        return None if self.start is None else (self.end - self.start).days + 1

    @property
    def has_previous(self) -> bool:
        return self.previous_start is not None

    @property
    def label(self) -> str:
        """``"7 days to 30 Nov 2026"``, ``"week 23–29 Nov 2026"``, ``"November 2026"``,
        ``"1 Oct – 15 Nov 2026"``, ``"all data to 30 Nov 2026"``."""
        if self.start is None:
            return f"all data to {_day_text(self.end)}"
        if self.kind == "days":
            return f"{self.days} day{'s' if self.days != 1 else ''} to {_day_text(self.end)}"
        if self.kind == "last_week":
            return f"week {format_day_range(self.start, self.end)}"
        if self.kind == "last_month":
            return f"{self.end:%B %Y}"
        return format_day_range(self.start, self.end)

    @property
    def previous_label(self) -> str:
        """How the page names the previous period (empty when there is none)."""
        if not self.has_previous:
            return ""
        span = format_day_range(self.previous_start, self.previous_end)
        if self.kind == "last_week":
            return f"week {span}"
        if self.kind == "last_month":
            return f"{self.previous_end:%B %Y}"
        return f"previous {self.days} day{'s' if self.days != 1 else ''} ({span})"

    @property
    def note(self) -> str:
        """One line for the page on what is compared with what (Markdown)."""
        if not self.has_previous:
            return (f"Period: {self.label}. No previous period to compare with (give period_start or a "
                    "relative period); the index compares this run with the previous run.")
        text = f"Period: **{self.label}**, compared with **{self.previous_label}**"
        prev_days = (self.previous_end - self.previous_start).days + 1
        if prev_days != self.days:
            text += (f" ({self.days} days against {prev_days}: rates and scores compare, counts of "
                     "customers also reflect the months' lengths)")
        return text + "."

    def previous(self) -> Period | None:
        """The previous period as a :class:`Period` (which has no previous of its own)."""
        if not self.has_previous:
            return None
        return Period(self.previous_start, self.previous_end, kind=self.kind, anchor=self.anchor)

    def bounds(self) -> tuple[pd.Timestamp | None, pd.Timestamp]:
        """``[lo, hi)`` as UTC timestamps: midnight of ``start`` (None: open) and midnight after ``end``."""
        lo = None if self.start is None else pd.Timestamp(self.start, tz="UTC")
        return lo, pd.Timestamp(self.end, tz="UTC") + pd.Timedelta("1D")

    def filter(self, table):
        """The rows of ``table`` (an Ibis table or a DataFrame with a ``ts`` column) whose
        ``ts`` falls on one of the period's days; None passes through."""
        if table is None:
            return None
        lo, hi = self.bounds()
        if isinstance(table, pd.DataFrame):
            keep = table["ts"] < hi
            if lo is not None:
                keep &= table["ts"] >= lo
            return table[keep]
        cond = table.ts < hi
        if lo is not None:
            cond = cond & (table.ts >= lo)
        return table.filter(cond)

    def to_dict(self) -> dict:
        """The ``"period"`` key of ``metrics.json`` (ISO days; previous ones None when absent)."""
        iso = (lambda d: None if d is None else d.isoformat())
        return {"start": iso(self.start), "end": iso(self.end), "previous_start": iso(self.previous_start),
                "previous_end": iso(self.previous_end), "label": self.label,
                "previous_label": self.previous_label, "kind": self.kind}


def _month_back(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _full_month(anchor: _dt.date) -> tuple[_dt.date, _dt.date]:
    """The latest calendar month ending on or before ``anchor``."""
    last = calendar.monthrange(anchor.year, anchor.month)[1]
    y, m = (anchor.year, anchor.month) if anchor.day == last else _month_back(anchor.year, anchor.month)
    return _dt.date(y, m, 1), _dt.date(y, m, calendar.monthrange(y, m)[1])


def resolve_period(period: str = "", *, period_start: str = "", period_end: str = "",
                   last_day=None, today=None) -> Period | None:
    """The :class:`Period` the three report parameters describe (see the module docstring).

    Parameters
    ----------
    period : str
        ``""``, ``"last_week"``, ``"last_month"`` or ``"<N>D"`` (N days, N >= 1).
    period_start, period_end : str
        Days ``YYYY-MM-DD``, both included; ``""`` for none.
    last_day : date or str, optional
        The last day with data (:func:`last_data_day`): the anchor of a relative period
        and the end of a period given by its start only.
    today : date, optional
        The anchor when there is neither ``period_end`` nor ``last_day`` (an empty
        workspace); default: today (UTC).

    Returns
    -------
    Period or None
        None when all three are empty: all data, nothing to compare with.

    Raises
    ------
    PeriodError
        See :func:`check_period_parameters`.

    Examples
    --------
    >>> resolve_period("last_month", last_day="2024-03-15").to_dict()["previous_start"]
    '2024-01-01'
    >>> resolve_period(period_start="2026-11-01", period_end="2026-11-30").previous_label
    'previous 30 days (2–31 Oct 2026)'
    """
    check_period_parameters(period, period_start, period_end)
    kind, n = _relative(period)
    start, end = _day(period_start, "period_start"), _day(period_end, "period_end")
    if not kind and start is None and end is None:
        return None
    data_day = _day(last_day, "last_day")
    anchor = end or data_day or _day(today, "today") or _dt.datetime.now(_dt.UTC).date()
    one = _dt.timedelta(days=1)
    if not kind:
        if start is None:  # period_end only: all data up to it, as before periods existed
            return Period(None, end, kind="until")
        end = anchor
        if start > end:
            raise PeriodError("period_start", period_start, f"is after the last day with data ({end.isoformat()}); "
                              "give period_end too, or an earlier start")
        length = (end - start).days + 1
        return Period(start, end, start - length * one, start - one, kind="range", anchor=anchor)
    if kind == "days":
        start = anchor - (n - 1) * one
        return Period(start, anchor, start - n * one, start - one, kind="days", anchor=anchor)
    if kind == "last_week":
        end = anchor - _dt.timedelta(days=(anchor.isoweekday() % 7))  # the Sunday on or before
        start = end - 6 * one
        return Period(start, end, start - 7 * one, start - one, kind="last_week", anchor=anchor)
    start, end = _full_month(anchor)
    pstart, pend = _full_month(start - one)
    return Period(start, end, pstart, pend, kind="last_month", anchor=anchor)


def last_data_day(ws) -> _dt.date | None:
    """The latest UTC day with an event or a feedback row in the workspace (None when empty)."""
    days = []
    for name in ("events", "feedback"):
        t = getattr(ws, name)()
        ts = t.ts.max().execute()
        if ts is not None and not pd.isna(ts):
            ts = pd.Timestamp(ts)
            days.append((ts.tz_convert("UTC") if ts.tzinfo else ts).date())
    return max(days) if days else None


def period_metrics(period: Period | None, previous: dict | None) -> dict:
    """The ``"period"`` and ``"previous_period"`` keys of ``metrics.json`` (the contract of
    issue 16): empty when no period is in force; no ``"previous_period"`` without a
    previous period."""
    if period is None:
        return {}
    out = {"period": period.to_dict()}
    if period.has_previous and previous is not None:
        out["previous_period"] = previous
    return out


# --------------------------------------------------------------------------- the page
def format_value(x, unit: str, currency: str | None = None) -> str:
    """A number for people by its unit: ``share`` as %, ``points`` signed (NPS), ``count``
    with thousands separators, ``hours`` (days from 48 h), ``money`` with its currency and
    no cents (cents below 10); blank for a missing value."""
    if x is None or pd.isna(x):
        return ""
    x = float(x)
    if unit == "share":
        from .quality import format_pct

        return format_pct(x)
    if unit == "points":
        return f"{x:+.0f}"
    if unit == "count":
        return f"{x:,.0f}"
    if unit == "hours":
        return f"{x:.1f} h" if x < 48 else f"{x / 24:.1f} days"
    if unit == "money":
        if abs(x) >= 10:
            return f"{currency} {x:,.0f}" if currency else f"{x:,.0f}"
        return f"{currency or ''} {x:.2f}".strip()
    return f"{x:.2f}"


def format_change(d, unit: str, currency: str | None = None) -> str:
    """A difference for people: percentage points for a share (``"+2.1 pts"``), else signed
    in the unit of :func:`format_value`."""
    if d is None or pd.isna(d):
        return ""
    d = float(d)
    if unit == "share":
        return f"{100 * d:+.1f} pts"
    if unit in ("points", "count"):
        return f"{d:+,.0f}" if round(d) else "0"
    if unit == "hours":
        return f"{d:+.1f} h"
    if unit == "money":
        sign = "+" if d > 0 else ("−" if d < 0 else "")
        return sign + format_value(abs(d), "money", currency)
    return f"{d:+.2f}"


def comparison_view(metrics: dict, previous: dict, rows, *, currency: str | None = None,
                    alpha: float = 0.05) -> pd.DataFrame:
    """This period against the previous, for people.

    Parameters
    ----------
    metrics, previous : dict
        The headline metrics of the period and of the previous period (the shapes
        :func:`cxlab.reports.headline_metrics` reads).
    rows : list of (key, label, unit)
        The metrics shown, in order; a key absent from ``metrics`` is left out.
    currency : str, optional
    alpha : float
        Level of :func:`cxlab.reports.compare_with_previous`, which gives the verdict.

    Returns
    -------
    DataFrame
        ``measure``, ``this period``, ``previous period``, ``change`` and ``verdict``:
        ``up`` / ``down`` only when :func:`~cxlab.reports.compare_with_previous` calls the
        change (its test at ``alpha`` with at least 100 in both periods), else ``within
        noise`` (with the reason when a period is too small), ``not tested`` or ``no
        previous value``.
    """
    from .reports import compare_with_previous

    rows = [r for r in rows if r[0] in metrics]
    if not rows:
        return pd.DataFrame(columns=["measure", "this period", "previous period", "change", "verdict"])
    cmp = compare_with_previous({k: metrics[k] for k, _, _ in rows},
                                {k: previous[k] for k, _, _ in rows if k in (previous or {})},
                                alpha=alpha).set_index("metric")
    out = []
    for key, label, unit in rows:
        r = cmp.loc[key]
        if r["verdict"] == "changed":
            verdict = "up" if r["difference"] > 0 else "down"
        elif r["verdict"] == "within noise":
            verdict = "within noise" + (f" ({r['reason'].replace('n below', 'fewer than')} in a period)"
                                        if str(r["reason"]).startswith("n below") else "")
        elif r["reason"] == "no previous value":
            verdict = "no previous value"
        else:
            verdict = "a count, not tested" if unit == "count" else "not tested"
        out.append({"measure": label, "this period": format_value(r["value"], unit, currency),
                    "previous period": format_value(r["previous"], unit, currency),
                    "change": format_change(r["difference"], unit, currency), "verdict": verdict})
    return pd.DataFrame(out)


NO_PERIOD = ("All data in the workspace (no period given): no previous period to compare with here; the reports "
             "index compares this run with the previous run.")


def period_section(period: Period | None, metrics: dict, previous: dict | None, rows, *,
                   currency: str | None = None, alpha: float = 0.05) -> tuple[str, pd.DataFrame | None]:
    """What a report page says about its period: one line (Markdown) and, when there is a
    previous period, :func:`comparison_view` of ``metrics`` against ``previous`` (else None)."""
    if period is None:
        return NO_PERIOD, None
    if not period.has_previous or previous is None:
        return period.note, None
    return period.note, comparison_view(metrics, previous, rows, currency=currency, alpha=alpha)
