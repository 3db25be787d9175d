"""The aggregates behind the interactive explorers, computed once per workspace.

:class:`ExplorerData` reads a workspace (or events and feedback frames) once: it fits the
text-sentiment model, scores every verbatim, computes the whole-journey pain-point table
(:func:`cxlab.painpoints.pain_points`, drop-off model included), and keeps small
aggregates: who reached which touchpoint on which day, and per customer the channels and
segments used and how far the funnel went (computed in the engine, held as arrays).
A selection (moment of truth, touchpoints, channels, segments, a date range) is then answered
from those aggregates in milliseconds instead of from the raw events.

What a selection means
----------------------
``channels`` and ``segments`` pick *customers*, and their whole journeys stay whole: every
event and every piece of feedback of the picked customers, whatever its channel, so a
customer who bought on the web and used the app afterwards is a converter under "app" too.
``rule`` says how: ``"ever"`` (default) picks customers with at least one event through one
of the channels (and one in one of the segments); ``"entry"`` picks them by the channel
(and segment) of their first event (the smallest among events at the same instant).
Feedback of no known customer (no id, or an id without events) is picked by its own
channel, and by no segment. ``start``/``end`` (dates, ``start <= day < end + 1 day``) then
keep the events and feedback of those days. :func:`customers_of` gives the picked customers
from the engine; :meth:`ExplorerData.filtered` gives the selection's tables.
``moment`` and ``touchpoints`` then pick the rows to show; q-values are always over the
whole journey's touchpoints, as in ``pain_points``.

For every selection the table's voice columns (scores, negative share, text sentiment, their
tests) and the reach columns (``reached``, ``at_risk``, ``left``, ``left_after``) equal
``pain_points`` on the filtered tables. Two things are read from cheaper aggregates until
:meth:`ExplorerData.refit` is asked for:

- the drop-off odds ratios come from the whole-journey model (``attrs["behaviour"] ==
  "whole journey"``); ``refit`` fits the model on the selection (seconds) and caches it;
- under a date range, ``left``/``left_after`` of the funnel steps count the picked customers
  whose funnel entry falls within the days (:func:`cxlab.funnel.funnel`'s ``by=`` rule for a
  day), each with the whole journey after the entry.

The per-customer aggregates (first and ever-used channels and segments, funnel depth, entry
day, conversion) are computed once in the engine and kept with the other aggregates
(:mod:`cxlab._explore_cache`), so a filter change is a few vectorised passes.

With no filter, or after ``refit``, the table is exactly ``pain_points`` for the selection.

Half a workspace
----------------
A voice-only workspace (feedback, no events) opens too: ``has_events`` is False, the days,
channels and segments (the ``segment`` column of the feedback, when it has one) come from the
feedback, each piece picked by its own columns; reach, drop-off, funnel and conversion are
empty and ``missing["events"]`` says so in one line. Behaviour-only (events, no feedback):
``has_feedback`` is False and ``missing["feedback"]`` says so. Neither:
:class:`~cxlab.exceptions.NothingToExploreError`, saying what to pull.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .exceptions import NothingToExploreError
from .journey import JourneyMap
from .stats import wilson_ci

__all__ = ["ExplorerData", "Selection", "MOMENTS", "RULES", "customers_of"]

MOMENTS = ("ZMOT", "FMOT", "SMOT", "UMOT")


@dataclass(frozen=True)
class Selection:
    """What the analyst picked. ``None`` means everything (every channel, segment, day...)."""

    moment: str | None = None
    touchpoints: tuple | None = None
    channels: tuple | None = None
    segments: tuple | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None        # inclusive day
    rule: str | None = None                # "entry" or "ever" (None when no channel or segment is picked)

    def filter_key(self) -> tuple:
        return (self.channels, self.segments, self.start, self.end, self.rule)

    @property
    def filtered(self) -> bool:
        """Whether channels, segments or dates narrow the data (moment and touchpoints do not)."""
        return self.filter_key() != (None, None, None, None, None)

    @property
    def customers_picked(self) -> bool:
        """Whether a channel or segment picks customers."""
        return self.channels is not None or self.segments is not None


#: how a channel or segment picks customers: (value, words for the page)
RULES = (("ever", "ever used"), ("entry", "first came through"))


def _day(value) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.normalize()


def _levels(values) -> tuple | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return tuple(sorted(str(v) for v in values))


def _feedback_of(data) -> pd.DataFrame | None:
    """The feedback of a Workspace or of a pair (events, feedback), as pandas (or None)."""
    if hasattr(data, "events") and callable(data.events):
        fb = data.feedback() if hasattr(data, "feedback") else None
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        fb = data[1]
    else:
        fb = None
    if fb is not None and not isinstance(fb, pd.DataFrame):
        fb = fb.to_pandas()
    return fb


#: the feedback columns the panels read (no raw text, no customer or feedback id, no property)
FEEDBACK_COLUMNS = ("ts", "touchpoint", "channel", "score", "scale", "_norm", "_neg", "_sent", "_seg", "_day",
                    "_masked", "_channel_s", "_seg_s", "_cust")


def _display_feedback(raw: pd.DataFrame, sentiment_model) -> pd.DataFrame:
    """The scored feedback the panels show: 0-100 score, negative class, text sentiment and
    the verbatim with personal data masked (:func:`cxlab.privacy.mask_pii`), nothing else."""
    from .painpoints import _scored_feedback
    from .privacy import mask_pii

    f = _scored_feedback(raw, sentiment_model)
    if "text" in f.columns:
        f["_masked"] = mask_pii(f["text"]) if len(f) else f["text"]
    else:
        f["_masked"] = None
    return f[[c for c in FEEDBACK_COLUMNS if c != "_cust"]].reset_index(drop=True)


def _term_index(f: pd.DataFrame):
    """The document-term matrix of the negative verbatims (masked before tokenising, as
    :func:`cxlab.sentiment.distinctive_terms` does): ``(X, vocab, negative row mask)``."""
    from ._terms import _resolve_stop_words, _sentiment_mask, _term_matrix

    neg = np.zeros(len(f), dtype=bool)
    if "text" in f.columns and len(f):
        text = f["text"].astype("str")
        neg = (_sentiment_mask(f, "negative") & f["text"].notna().to_numpy()
               & ~text.str.strip().eq("").to_numpy() & f["touchpoint"].notna().to_numpy())
    if not neg.any():
        return None, None, neg
    mode, stop = _resolve_stop_words("auto")
    sub = f[neg]
    X, vocab, *_ = _term_matrix(sub, sub["text"].astype("str"), language="language", stop_mode=mode,
                                stop_set=stop, nmin=1, nmax=2)
    return X, vocab, neg


class _Stages:
    """Reports the build's stages to ``on_stage(done, total, name)`` and/or a tqdm bar."""

    def __init__(self, on_stage, progress: bool):
        from ._explore_cache import STAGES

        self.on_stage, self.bar = on_stage, None
        self.names = STAGES
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(STAGES), desc="explorer: aggregates")
        self._last = None

    def stage(self, i: int, name: str | None = None) -> None:
        name = name or self.names[i]
        if self.bar is not None and self._last is not None and i > self._last:
            self.bar.update(i - self._last)
        self._last = i
        if self.on_stage is not None:
            self.on_stage(i, len(self.names), name)

    def note(self, name: str) -> None:
        """A step that is not a build stage (reading, waiting)."""
        if self.on_stage is not None:
            self.on_stage(self._last or 0, len(self.names), name)

    def done(self, total: int) -> None:
        if self.bar is not None:
            self.bar.update(total - (self._last or 0))
            self.bar.close()
        if self.on_stage is not None:
            self.on_stage(total, total, "ready")


class ExplorerData:
    """Aggregates for :class:`cxlab.widgets.PainPointExplorer` (see the module docstring).

    Parameters
    ----------
    data : Workspace or (events, feedback)
    journey : JourneyMap, path or None (the default map)
    segment : str or None
        Events column used as the customer segment (default ``"segment"`` when present).
    alpha : float
        Significance level of every interval, test and flag.
    sentiment_model : "fit", a fitted model or None
        As in :func:`~cxlab.painpoints.pain_points`; "fit" fits one model once.
    value_per_customer, window
        As in :func:`~cxlab.painpoints.pain_points`.
    cache : "auto" or False
        "auto": for a Workspace kept in a file, with ``sentiment_model="fit"``, read the
        aggregates kept next to it for the same content, map and parameters, or build and keep
        them (:mod:`cxlab._explore_cache`); ``CXLAB_EXPLORER_CACHE=off`` turns it off.
        ``cache_status`` then says "read", "built", "rebuilt" (a damaged copy) or "memory"
        (the folder could not be written); ``cache_note`` says it in a sentence.
    on_stage : callable or None
        ``on_stage(done, total, name)`` at each stage of the build or read (a progress bar).
    """

    def __init__(self, data, *, journey=None, segment="segment", alpha: float = 0.05, sentiment_model="fit",
                 value_per_customer=None, window=None, progress: bool = False, cache="auto", on_stage=None):
        from ._engine import as_table
        from ._explore_cache import STAGES, store_for

        self.journey = jm = JourneyMap.coerce(journey)
        self.alpha = float(alpha)
        self.window = window if window is not None else jm.conversion_window
        self._data = data
        if hasattr(data, "events") and callable(data.events):
            events = data.events()
        elif isinstance(data, (tuple, list)) and len(data) == 2:
            events = data[0]
        else:
            events = data
        t = as_table(events if events is not None else _NO_EVENTS)
        self._events = t
        fb_columns, fb_rows = _feedback_shape(data)
        no_events = _count(t) == 0
        if no_events and not fb_rows:
            raise NothingToExploreError(NOTHING_TO_EXPLORE)
        self._voice_segment = None       # voice-only: the feedback's own segment column, if any
        if segment is not None and segment not in t.columns:
            if no_events and segment in fb_columns:
                self._voice_segment = segment
            segment = None
        self.segment = segment
        self.has_channel = "channel" in t.columns
        self._raw = None
        bar = _Stages(on_stage, progress)
        fit = isinstance(sentiment_model, str) and sentiment_model == "fit"
        self.cache_dir, self.cache_status = None, None
        self.cache_note = "built in this process (not kept: frames, or a workspace without a file)"
        store = None
        if cache and fit and not os.environ.get("CXLAB_EXPLORER_CACHE", "").lower() in ("0", "off", "no"):
            store = store_for(data, t, journey=jm, segment=segment, alpha=self.alpha,
                              value_per_customer=value_per_customer, window=self.window)
        if store is None:
            state = self._build(t, bar, sentiment_model, value_per_customer, window)
        else:
            state = store.load_or_build(lambda: self._build(t, bar, sentiment_model, value_per_customer, window),
                                        stage=bar)
            self.cache_dir, self.cache_note, self.cache_status = store.path, store.note, store.status
        self._set_state(state)
        bar.done(len(STAGES))
        self._cache: OrderedDict = OrderedDict()
        self._refits: dict = {}
        self._picks: dict = {}

    def _build(self, t, bar, sentiment_model, value_per_customer, window) -> dict:
        """Every aggregate, computed from the workspace (the stages of ``STAGES``)."""
        import ibis

        from .painpoints import fit_voice_model, pain_points

        jm, alpha, segment = self.journey, self.alpha, self.segment
        fb = _feedback_of(self._data)
        fb = fb if fb is not None else pd.DataFrame(columns=["feedback_id", "customer_id", "ts", "touchpoint"])

        # 1. text sentiment: fitted once, every verbatim scored once
        bar.stage(0)
        if isinstance(sentiment_model, str) and sentiment_model == "fit":
            sentiment_model = fit_voice_model(fb) if len(fb) else None

        # 2. the whole-journey pain-point table (the drop-off model is fitted here)
        bar.stage(1)
        base = pain_points((t, fb), journey=jm, alpha=alpha, sentiment_model=sentiment_model,
                           value_per_customer=value_per_customer, window=window)
        base.attrs["behaviour"] = "whole journey"

        # 3. scored feedback with its channel, segment and day; verbatims masked once
        bar.stage(2)
        raw = self._keyed_feedback(t, fb)
        f = _display_feedback(raw, sentiment_model)
        self._raw = raw

        # 4. who each customer is: entry and ever-used channels and segments, funnel steps (engine)
        bar.stage(3)
        customers, ids = _Customers.from_table(t, journey=jm, segment=segment, has_channel=self.has_channel,
                                               window=self.window)
        f["_cust"] = _codes(ids, raw["customer_id"] if "customer_id" in raw.columns else None, len(raw))

        # 5. reach: customer x touchpoint x day, first time (engine, then arrays)
        bar.stage(4)
        tps = list(jm.touchpoints)
        ev = t.filter(t.touchpoint.isin(tps))
        ev = ev.mutate(_day=ev.ts.truncate("D"))
        if "value" not in ev.columns:       # no order values: every sum 0 over 0 values
            ev = ev.mutate(value=ibis.null().cast("float64"))
        values = {"vsum": ev.value.cast("float64").sum().fill_null(0.0), "vn": ev.value.count()}
        reach = (ev.group_by(["customer_id", "touchpoint", "_day"])
                 .aggregate(first=ev.ts.min(), **values).to_pyarrow())
        reach = _ReachIndex.from_table(reach, tps, jm.conversion, ids)

        # 6. the complaint terms' document-term matrix (built from masked text)
        bar.stage(5)
        terms = _term_index(raw)

        # 7. research paths and the circle (cxlab.explore_moments)
        bar.stage(6)
        from .explore_moments import MomentIndex

        moments = MomentIndex.build(t, reach, ids, jm)
        return {"sentiment_model": sentiment_model, "base": base, "value_given": value_per_customer,
                "feedback": f[list(FEEDBACK_COLUMNS)], "reach": reach, "customers": customers, "terms": terms,
                "moments": moments}

    def _set_state(self, state: dict) -> None:
        self.sentiment_model = state["sentiment_model"]
        self.base = state["base"]
        self._value_given = state["value_given"]
        self.value_per_customer = self.base.attrs["value_per_customer"]
        self.feedback = state["feedback"]
        self._reach = state["reach"]
        self._customers = state["customers"]
        self._terms_cache = state["terms"]
        self._moments = state.get("moments")
        self.first_day, self.last_day = self._reach.first_day, self._reach.last_day
        self.channels = self._customers.channels if self.has_channel else ()
        self.segments = self._customers.segments if self.segment else ()
        self._set_partial()

    # ------------------------------------------------------------------ voice-only, behaviour-only
    def _set_partial(self) -> None:
        """What the workspace can answer: ``has_events`` (journey events: reach, drop-off,
        funnel, conversion) and ``has_feedback`` (scores, sentiment, terms, verbatims), and the
        one line a page shows for the half that is missing (``missing``). Voice-only: the days,
        channels and segments come from the feedback itself. Neither: :class:`NothingToExploreError`."""
        self.has_events = self._customers.n > 0
        self.has_feedback = len(self.feedback) > 0
        if not self.has_events and not self.has_feedback:
            raise NothingToExploreError(NOTHING_TO_EXPLORE)
        self.missing = {"events": None if self.has_events else NO_EVENTS,
                        "feedback": None if self.has_feedback else NO_FEEDBACK}
        if self.has_events:
            if self.channels == ("unknown",):     # a log without channels (BPIC 2012): nothing to pick
                self.channels = ()
            return
        days = self.feedback["_day"].dropna()
        self.first_day, self.last_day = _day(days.min()), _day(days.max())
        self.channels = (tuple(sorted(set(_voice_levels(self.feedback["channel"]))))
                         if self.feedback["channel"].notna().any() else ())
        self.segments = (tuple(sorted(set(_voice_levels(self.feedback["_seg"]))))
                         if self.feedback["_seg"].notna().any() else ())

    def _voice_only_mask(self, sel: Selection, f: pd.DataFrame) -> np.ndarray:
        """Voice-only (no customer journeys to pick): each piece of feedback by its own
        channel and segment columns."""
        m = np.ones(len(f), dtype=bool)
        if sel.channels is not None:
            m &= np.isin(_voice_levels(f["channel"]), list(sel.channels))
        if sel.segments is not None:
            m &= np.isin(_voice_levels(f["_seg"]), list(sel.segments))
        return m

    def _keyed_feedback(self, t, fb: pd.DataFrame) -> pd.DataFrame:
        """The feedback with the keys a selection filters on: ``_seg`` (the customer's first
        event's segment), ``_day``, ``_channel_s``, ``_seg_s``."""
        f = fb.reset_index(drop=True).copy()
        if self._voice_segment is not None:          # voice-only: the feedback's own segment
            f["_seg"] = f[self._voice_segment].astype(object).where(f[self._voice_segment].notna(), None)
        elif self.segment is not None and "customer_id" in f.columns:
            seg = (t.group_by("customer_id").aggregate(_seg=t[self.segment].argmin(t.ts)).to_pandas())
            f = f.merge(seg, on="customer_id", how="left")
        else:
            f["_seg"] = None
        if "channel" not in f.columns:
            f["channel"] = None
        f["_day"] = pd.to_datetime(f["ts"], utc=True).dt.floor("D")
        f["_channel_s"] = f["channel"].astype("str")
        f["_seg_s"] = f["_seg"].astype("str")
        return f

    def _raw_feedback(self) -> pd.DataFrame:
        """The workspace's feedback as received (raw text, ids), keyed for filtering: kept
        after a build, read again from the workspace after the aggregates were read from disk."""
        if self._raw is None:
            fb = _feedback_of(self._data)
            fb = fb if fb is not None else pd.DataFrame(columns=["feedback_id", "customer_id", "ts", "touchpoint"])
            self._raw = self._keyed_feedback(self._events, fb)
        return self._raw

    # ------------------------------------------------------------------ selection helpers
    def selection(self, *, moment=None, touchpoints=None, channels=None, segments=None, start=None,
                  end=None, rule="ever") -> Selection:
        """A normalised :class:`Selection`: levels sorted, everything-selected becomes None,
        unknown values refused with the known ones. ``rule``: how channels and segments pick
        customers, ``"ever"`` (ever used the channel, ever in the segment) or ``"entry"`` (the
        channel and segment of the customer's first event)."""
        if rule not in dict(RULES):
            raise ValueError(f"rule={rule!r}: one of {[r for r, _ in RULES]} (ever used, or entered through)")
        if moment is not None and moment not in self.journey.moment_ids:
            raise ValueError(f"moment={moment!r} is not a moment of the journey map: one of "
                             f"{list(self.journey.moment_ids)} (or None for the whole journey)")
        channels, segments = _levels(channels), _levels(segments)
        for name, got, known in (("channels", channels, self.channels), ("segments", segments, self.segments)):
            if got is not None:
                bad = [v for v in got if v not in known]
                if bad:
                    raise ValueError(f"{name}: {bad[0]!r} is not in the data; known: {list(known)}")
        if channels is not None and channels == self.channels:
            channels = None
        if segments is not None and segments == self.segments:
            segments = None
        start, end = _day(start), _day(end)
        if start is not None and start <= self.first_day:
            start = None
        if end is not None and end >= self.last_day:
            end = None
        if touchpoints is not None:
            touchpoints = tuple(touchpoints)
            unknown = [x for x in touchpoints if x not in self.journey.touchpoints]
            if unknown:
                raise ValueError(f"touchpoints: {unknown[0]!r} is not in the journey map")
        return Selection(moment, touchpoints, channels, segments, start, end,
                         rule if channels is not None or segments is not None else None)

    def _picked(self, sel: Selection) -> np.ndarray | None:
        """The customers the selection's channels and segments pick (None: all), cached."""
        if not sel.customers_picked:
            return None
        key = (sel.channels, sel.segments, sel.rule)
        got = self._picks.get(key)
        if got is None:
            got = self._customers.mask(sel)
            self._picks[key] = got
            if len(self._picks) > 32:
                self._picks.pop(next(iter(self._picks)))
        return got

    def describe(self, sel: Selection) -> str:
        """The selection's customers in plain words, e.g. "Customers who ever used: app"."""
        if not sel.customers_picked:
            return "All customers" if self.has_events else "All feedback"
        if not self.has_events:          # voice-only: feedback is picked by its own columns
            return "Feedback " + "; ".join(f"{what}: {', '.join(levels)}" for what, levels in
                                           (("through", sel.channels), ("in segment", sel.segments)) if levels)
        verb = dict(RULES)[sel.rule]
        parts = []
        if sel.channels is not None:
            parts.append(f"{verb}: {', '.join(sel.channels)}")
        if sel.segments is not None:
            parts.append(("ever in segment" if sel.rule == "ever" else "first seen in segment")
                         + f": {', '.join(sel.segments)}")
        return "Customers who " + "; ".join(parts)

    def _feedback_mask(self, sel: Selection, f: pd.DataFrame | None = None) -> np.ndarray:
        """The selection's feedback: that of the picked customers (every channel), and feedback
        of no known customer by its own channel (no segment can be known for it); in the days."""
        f = self.feedback if f is None else f
        m = np.ones(len(f), dtype=bool)
        picked = self._picked(sel) if self.has_events else None
        if not self.has_events:
            m &= self._voice_only_mask(sel, f)
        if picked is not None:
            cust = f["_cust"].to_numpy()
            known = cust >= 0
            mc = np.zeros(len(f), dtype=bool)
            mc[known] = picked[cust[known]]
            if sel.segments is None:
                mc[~known] = np.isin(f["_channel_s"].to_numpy(dtype=object)[~known], list(sel.channels))
            m &= mc
        if sel.start is not None:
            m &= (f["_day"] >= sel.start).to_numpy()
        if sel.end is not None:
            m &= (f["_day"] <= sel.end).to_numpy()
        return m

    def rows_for(self, table: pd.DataFrame, sel: Selection) -> pd.DataFrame:
        """The rows of a journey-wide table that the moment and touchpoints pick."""
        m = np.ones(len(table), dtype=bool)
        if sel.moment is not None:
            m &= (table["moment"] == sel.moment).to_numpy()
        if sel.touchpoints is not None:
            m &= table["touchpoint"].isin(sel.touchpoints).to_numpy()
        return table[m].reset_index(drop=True)

    def selected_touchpoints(self, sel: Selection) -> list[str]:
        tps = [x for x in self.journey.touchpoints if sel.moment is None or self.journey.moment_of(x) == sel.moment]
        return [x for x in tps if sel.touchpoints is None or x in sel.touchpoints]

    # ------------------------------------------------------------------ the panels' numbers
    def journey_table(self, sel: Selection) -> pd.DataFrame:
        """The pain-point table of the whole journey under the selection's filters (cached)."""
        key = sel.filter_key()
        if key in self._refits:
            return self._refits[key]
        if not sel.filtered:
            return self.base
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        table = self._filtered_table(sel)
        self._cache[key] = table
        if len(self._cache) > 64:
            self._cache.popitem(last=False)
        return table

    def _filtered_table(self, sel: Selection) -> pd.DataFrame:
        from .painpoints import PAIN_POINT_COLUMNS, _priority, _voice_columns

        jm = self.journey
        tps = list(jm.touchpoints)
        reach, conv_value = self._reach.counts(sel, self._picked(sel))
        rows = pd.DataFrame({"moment": [jm.moment_of(x) for x in tps], "touchpoint": tps})
        rows = rows.merge(reach[["touchpoint", "reached"]], on="touchpoint", how="left")
        rows["reached"] = rows["reached"].fillna(0).astype("int64")
        f = self.feedback[self._feedback_mask(sel)]
        rows = _voice_columns(rows, f if len(f) else None, tps, self.alpha)
        base = self.base.set_index("touchpoint")
        for c in ("dropoff_or", "dropoff_ci_low", "dropoff_ci_high", "dropoff_step", "dropoff_p", "dropoff_q"):
            rows[c] = rows["touchpoint"].map(base[c]).to_numpy()
        rows = rows.merge(reach[["touchpoint", "at_risk", "left"]], on="touchpoint", how="left")
        steps = self.funnel_table(sel)
        for i, st in enumerate(jm.funnel[:-1]):
            m = rows.touchpoint == st
            rows.loc[m, "at_risk"] = steps["n"].iloc[i]
            rows.loc[m, "left"] = steps["n"].iloc[i] - steps["n"].iloc[i + 1]
        rows["at_risk"] = rows["at_risk"].fillna(0).astype("int64")
        rows["left"] = rows["left"].fillna(0).astype("int64")
        with np.errstate(invalid="ignore", divide="ignore"):
            rows["left_after"] = rows["left"] / rows["at_risk"].where(rows["at_risk"] > 0)
        rows["left_after_ci_low"], rows["left_after_ci_high"] = wilson_ci(rows["left"], rows["at_risk"],
                                                                        alpha=self.alpha)
        value = self._value_given
        if value is None:        # the mean conversion value of the selection, as pain_points takes it
            value = conv_value
        rows = _priority(rows, self.alpha, value)[PAIN_POINT_COLUMNS]
        rows.attrs.update(baseline_score=float(f["_norm"].mean()) if len(f) else np.nan,
                          value_per_customer=value, alpha=self.alpha,
                          behaviour="whole journey")
        return rows

    def table(self, sel: Selection | None = None, **kwargs) -> pd.DataFrame:
        """The pain-point table for a selection: the journey table's rows of the moment and
        touchpoints picked, with the journey table's ``attrs``."""
        sel = sel if sel is not None else self.selection(**kwargs)
        full = self.journey_table(sel)
        out = self.rows_for(full, sel)
        out.attrs.update(full.attrs)
        return out

    def refit(self, sel: Selection) -> pd.DataFrame:
        """Fit ``pain_points`` (drop-off model included) on the selection's filtered events and
        feedback and use it from now on for that selection: takes seconds, cached."""
        from .painpoints import pain_points

        key = sel.filter_key()
        if not sel.filtered:
            return self.base
        if key not in self._refits:
            events, fb = self.filtered(sel)
            table = pain_points((events, fb), journey=self.journey, alpha=self.alpha,
                                sentiment_model=self.sentiment_model, value_per_customer=self._value_given,
                                window=self.window)
            table.attrs["behaviour"] = "selection"
            self._refits[key] = table
        return self._refits[key]

    def filtered(self, sel: Selection):
        """The selection's events (Ibis table) and feedback (DataFrame, canonical columns):
        what :func:`~cxlab.painpoints.pain_points` is given for the same selection."""
        t = all_events = self._events
        raw = self._raw_feedback()
        m = np.ones(len(raw), dtype=bool)
        if sel.customers_picked:
            who = customers_of(t, channels=sel.channels, segments=sel.segments, rule=sel.rule,
                               segment=self.segment)
            t = t.filter(t.customer_id.isin(who.customer_id))
            ids = set(who.to_pandas()["customer_id"].astype("str"))
            known = set(all_events.select("customer_id").distinct().to_pandas()["customer_id"].astype("str"))
            cid = (raw["customer_id"].astype("str").where(raw["customer_id"].notna(), None)
                   if "customer_id" in raw.columns else pd.Series([None] * len(raw), dtype=object))
            m = cid.isin(ids).to_numpy().copy()
            if sel.segments is None:
                m |= (~cid.isin(known)).to_numpy() & raw["_channel_s"].isin(sel.channels).to_numpy()
        if sel.start is not None:
            t = t.filter(t.ts >= sel.start)
            m &= (raw["_day"] >= sel.start).to_numpy()
        if sel.end is not None:
            t = t.filter(t.ts < sel.end + pd.Timedelta(days=1))
            m &= (raw["_day"] <= sel.end).to_numpy()
        f = raw[m]
        keep = [c for c in f.columns if not c.startswith("_")]
        return t, f[keep].reset_index(drop=True)

    def funnel_table(self, sel: Selection) -> pd.DataFrame:
        """The journey funnel of the selection's customers whose funnel entry falls within its
        days (their whole journey counts, every channel): step, touchpoint, moment, n, rate and
        step rate with Wilson intervals, dropped."""
        jm = self.journey
        k = len(jm.funnel)
        n, _ = self._customers.funnel_counts(sel, self._picked(sel), k)
        out = pd.DataFrame({"step": np.arange(1, k + 1), "touchpoint": list(jm.funnel),
                            "moment": [jm.moment_of(x) for x in jm.funnel], "n": n})
        first = n[0] if len(n) else 0
        prev = np.concatenate([[first], n[:-1]])
        with np.errstate(invalid="ignore", divide="ignore"):
            out["rate"] = np.where(first > 0, n / max(first, 1), np.nan)
            out["step_rate"] = np.where(prev > 0, n / np.maximum(prev, 1), np.nan)
        out["ci_low"], out["ci_high"] = wilson_ci(n, np.full(len(n), first), alpha=self.alpha)
        out["step_ci_low"], out["step_ci_high"] = wilson_ci(n, prev, alpha=self.alpha)
        out["dropped"] = prev - n
        return out

    def customer_count(self, sel: Selection) -> int:
        """The selection's customers with a contact at a touchpoint of the map in its days."""
        return self._reach.customers(sel, self._picked(sel))

    def kpis(self, sel: Selection) -> dict:
        """NPS, CSAT (top-2 box of CSAT or star ratings) and conversion for the selection,
        each ``{"value", "ci_low", "ci_high", "n"}`` (None when there is nothing to compute).
        NPS and CSAT use the feedback of the selected touchpoints; conversion the customers
        whose funnel entry matches the filters (:func:`cxlab.kpis.conversion_rate`)."""
        from .io import in_score_class
        from .kpis import _nps_columns

        f = self.feedback[self._feedback_mask(sel)]
        f = f[f["touchpoint"].isin(self.selected_touchpoints(sel))]
        out = {}
        nps_rows = f[(f["scale"].astype("str") == "nps") & f["score"].notna()]
        if len(nps_rows):
            s = nps_rows["score"].to_numpy("float64")
            df = _nps_columns(pd.DataFrame({"n": [len(s)], "promoters": [int((s >= 9).sum())],
                                            "detractors": [int((s <= 6).sum())]}), self.alpha)
            out["NPS"] = {"value": float(df["nps"].iloc[0]), "ci_low": float(df["ci_low"].iloc[0]),
                          "ci_high": float(df["ci_high"].iloc[0]), "n": len(s)}
        else:
            out["NPS"] = None
        sat = f[f["scale"].astype("str").isin(["csat", "stars"]) & f["score"].notna()]
        if len(sat):
            top = in_score_class(sat["score"], sat["scale"], "positive")
            k, n = int(np.sum(top)), len(sat)
            lo, hi = wilson_ci(k, n, alpha=self.alpha)
            out["CSAT"] = {"value": k / n, "ci_low": float(lo), "ci_high": float(hi), "n": n}
        else:
            out["CSAT"] = None
        steps, n1 = self._customers.funnel_counts(sel, self._picked(sel), len(self.journey.funnel))
        n0 = int(steps[0]) if len(steps) else 0
        if n0:
            lo, hi = wilson_ci(n1, n0, alpha=self.alpha)
            out["Conversion"] = {"value": n1 / n0, "ci_low": float(lo), "ci_high": float(hi), "n": n0}
        else:
            out["Conversion"] = None
        return out

    def terms(self, sel: Selection, *, top: int = 10) -> pd.DataFrame:
        """Complaint terms of the selected touchpoints: negative feedback of the selected
        touchpoints against the other negative feedback under the same filters
        (:func:`cxlab.sentiment.distinctive_terms` with ``sentiment="negative"`` and
        ``stop_words="auto"``, computed from a document-term matrix built once)."""
        from ._terms import contrast_terms

        empty = pd.DataFrame(columns=["term", "z", "count_in_group", "share_in_group", "share_elsewhere"])
        X, vocab, neg = self._term_index()
        if X is None:
            return empty
        m = self._feedback_mask(sel)[neg]
        rows = np.flatnonzero(m)
        tp = self.feedback["touchpoint"].to_numpy()[neg][rows]
        in_group = np.isin(tp, self.selected_touchpoints(sel))
        if in_group.all() or not in_group.any():
            return empty
        return contrast_terms(X[rows], vocab, in_group, top=top)

    def _term_index(self):
        return self._terms_cache

    def moment_view(self, sel: Selection) -> dict | None:
        """The research paths or the circle of the selection's moment
        (:func:`cxlab.explore_moments.moment_view`)."""
        from .explore_moments import moment_view

        return moment_view(self, sel)

    def verbatims(self, sel: Selection, *, k: int = 8) -> pd.DataFrame:
        """The newest ``k`` verbatims of the selected touchpoints under the filters, PII masked:
        ts, touchpoint, channel, score, scale, text, sentiment (-1..1)."""
        f = self.feedback[self._feedback_mask(sel)]
        f = f[f["touchpoint"].isin(self.selected_touchpoints(sel)) & f["_masked"].notna()]
        f = f[f["_masked"].astype("str").str.strip() != ""]
        f = f.sort_values("ts", ascending=False, kind="stable").head(k)
        return pd.DataFrame({"ts": f["ts"], "touchpoint": f["touchpoint"], "channel": f["channel"],
                             "score": f["score"], "scale": f["scale"], "text": f["_masked"],
                             "sentiment": f["_sent"]}).reset_index(drop=True)


class _ReachIndex:
    """Who reached which touchpoint, when: one row per customer x touchpoint x day with the
    first time, held as numpy arrays sorted by (touchpoint, customer, first time); customers
    are the codes of :class:`_Customers`. A selection's reach, at-risk and left counts are
    then one masked pass over the arrays (no sort, no hash)."""

    ARRAYS = ("tp", "cid", "day", "first", "vsum", "vn")

    def __init__(self, arrays: dict, *, touchpoints, n_customers, conv, first_day, last_day):
        for name in self.ARRAYS:
            setattr(self, name, arrays[name])
        self.touchpoints = list(touchpoints)
        self.n_customers, self.conv = int(n_customers), int(conv)
        self.first_day, self.last_day = first_day, last_day

    @classmethod
    def from_table(cls, table, touchpoints, conversion, ids: pd.Index) -> _ReachIndex:
        """From the engine's rows (customer_id, touchpoint, _day, first, vsum, vn)."""
        frame = table.to_pandas()
        touchpoints = list(touchpoints)
        tp = pd.Categorical(frame["touchpoint"], categories=touchpoints).codes.astype(np.int16)
        cid = ids.get_indexer(frame["customer_id"].astype("str").to_numpy(dtype=object)).astype(np.int64)
        day = pd.to_datetime(frame["_day"], utc=True).dt.as_unit("ns")
        first = pd.to_datetime(frame["first"], utc=True).dt.as_unit("ns").astype("int64").to_numpy()
        order = np.lexsort((first, cid, tp))
        arrays = {"tp": tp[order], "cid": cid[order],
                  "day": day.astype("int64").to_numpy()[order], "first": first[order],
                  "vsum": frame["vsum"].fillna(0).to_numpy("float64")[order],
                  "vn": frame["vn"].fillna(0).to_numpy("float64")[order]}
        return cls(arrays, touchpoints=touchpoints, n_customers=len(ids),
                   conv=touchpoints.index(conversion) if conversion in touchpoints else -1,
                   first_day=_day(day.min()) if len(day) else None,
                   last_day=_day(day.max()) if len(day) else None)

    def arrays(self) -> dict:
        return {name: getattr(self, name) for name in self.ARRAYS}

    def meta(self) -> dict:
        """Everything but the arrays, as JSON-ready values."""
        return {"touchpoints": self.touchpoints, "n_customers": self.n_customers, "conv": self.conv,
                "first_day": None if self.first_day is None else self.first_day.isoformat(),
                "last_day": None if self.last_day is None else self.last_day.isoformat()}

    @classmethod
    def from_saved(cls, arrays: dict, meta: dict) -> _ReachIndex:
        n = {len(arrays[name]) for name in cls.ARRAYS}
        if len(n) != 1:
            raise ValueError(f"reach arrays of different lengths: {sorted(n)}")
        return cls(arrays, touchpoints=meta["touchpoints"], n_customers=meta["n_customers"], conv=meta["conv"],
                   first_day=None if meta["first_day"] is None else _day(meta["first_day"]),
                   last_day=None if meta["last_day"] is None else _day(meta["last_day"]))

    def _mask(self, sel: Selection, picked: np.ndarray | None) -> np.ndarray:
        m = np.ones(len(self.tp), dtype=bool) if picked is None else picked[self.cid]
        if sel.start is not None:
            m &= self.day >= sel.start.value
        if sel.end is not None:
            m &= self.day <= sel.end.value
        return m

    def customers(self, sel: Selection, picked: np.ndarray | None) -> int:
        """Customers with at least one contact at a touchpoint of the map within the selection."""
        m = self._mask(sel, picked)
        return int(np.count_nonzero(np.bincount(self.cid[m], minlength=1)))

    def counts(self, sel: Selection, picked: np.ndarray | None = None) -> tuple[pd.DataFrame, float]:
        """Per touchpoint: ``reached`` (customers), ``at_risk`` (reached it before converting,
        or never converted) and ``left`` (never converted), as pain_points counts them on the
        filtered events; and the mean conversion value (1.0 without values). ``picked``: the
        customers a channel or segment picked (their every contact counts)."""
        m = self._mask(sel, picked)
        tp, cid, first = self.tp[m], self.cid[m], self.first[m]
        k = len(self.touchpoints)
        if len(tp) == 0:
            zero = np.zeros(k, dtype=np.int64)
            return pd.DataFrame({"touchpoint": self.touchpoints, "reached": zero, "at_risk": zero, "left": zero}), 1.0
        start = np.ones(len(tp), dtype=bool)            # first row of each (touchpoint, customer): its first time
        start[1:] = (tp[1:] != tp[:-1]) | (cid[1:] != cid[:-1])
        tp, cid, first = tp[start], cid[start], first[start]
        conv = np.full(self.n_customers, np.iinfo(np.int64).max)
        is_conv = tp == self.conv
        conv[cid[is_conv]] = first[is_conv]
        c = conv[cid]
        never = c == np.iinfo(np.int64).max
        at_risk = never | (c >= first)
        out = pd.DataFrame({"touchpoint": self.touchpoints,
                            "reached": np.bincount(tp, minlength=k)[:k],
                            "at_risk": np.bincount(tp[at_risk], minlength=k)[:k],
                            "left": np.bincount(tp[never], minlength=k)[:k]})
        vm = m & (self.tp == self.conv)
        vn = self.vn[vm].sum()
        return out, (float(self.vsum[vm].sum() / vn) if vn else 1.0)

#: the one line shown in place of what a workspace cannot answer
NO_EVENTS = "no journey events in this workspace: reach and drop-off need an events export"
NO_FEEDBACK = ("no feedback in this workspace: scores, sentiment, complaint terms and verbatims need a "
               "feedback export")
NOTHING_TO_EXPLORE = ("nothing to explore: this workspace holds no journey events and no feedback yet; "
                      "pull an events export (cxlab pull FILE) or a feedback export "
                      "(cxlab pull FILE --kind feedback) first")
#: the events of a voice-only explorer: the canonical columns, no row
_NO_EVENTS = pd.DataFrame({"customer_id": pd.Series([], dtype="str"), "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
                           "touchpoint": pd.Series([], dtype="str"), "value": pd.Series([], dtype="float64")})


def _feedback_shape(data) -> tuple[list, int]:
    """The feedback's columns and row count, read without loading it (no feedback: ``([], 0)``)."""
    if hasattr(data, "events") and callable(data.events):
        fb = data.feedback() if hasattr(data, "feedback") else None
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        fb = data[1]
    else:
        fb = None
    if fb is None:
        return [], 0
    if isinstance(fb, pd.DataFrame):
        return list(fb.columns), len(fb)
    return list(fb.columns), _count(fb)


def _count(t) -> int:
    return int(t.count().to_pyarrow().as_py())


def _voice_levels(values) -> np.ndarray:
    """A feedback column as filter levels (strings; missing is ``unknown``, as for events)."""
    s = pd.Series(values)
    return s.astype(object).where(s.notna(), "unknown").astype("str").to_numpy(dtype=object)


def _codes(ids: pd.Index, values, n: int) -> np.ndarray:
    """The customer code of each value (-1: not a customer of the events, or missing)."""
    if values is None or len(ids) == 0:
        return np.full(n, -1, dtype=np.int64)
    s = pd.Series(values).astype("str").where(pd.Series(values).notna().to_numpy(), None)
    return ids.get_indexer(s.to_numpy(dtype=object)).astype(np.int64)


def _customer_keys(t, segment, has_channel):
    """The events with ``_ch`` and ``_sg`` (strings; a missing channel is ``unknown``)."""
    import ibis

    ch = t.channel.cast("string").fill_null("unknown") if has_channel else ibis.literal("")
    sg = t[segment].cast("string").fill_null("unknown") if segment else ibis.literal("")
    return t.select("customer_id", "ts", "touchpoint", _ch=ch, _sg=sg)


def _entry_keys(k):
    """Per customer, the channel and segment of the first event (the smallest among ties)."""
    first = k.group_by("customer_id").aggregate(_fts=k.ts.min())
    j = k.join(first, (k.customer_id == first.customer_id) & (k.ts == first._fts))
    return j.group_by(k.customer_id).aggregate(entry_ch=j._ch.min(), entry_sg=j._sg.min())


def customers_of(t, *, channels=None, segments=None, rule="ever", segment=None):
    """The customer ids (an Ibis table with one column ``customer_id``) that a selection's
    channels and segments pick from the events ``t``, computed in the engine: ``rule="entry"``
    by the channel and segment of each customer's first event; ``rule="ever"`` customers with
    at least one event through one of the channels and at least one in one of the segments."""
    k = _customer_keys(t, segment, "channel" in t.columns)
    if rule == "entry":
        e = _entry_keys(k)
        if channels is not None:
            e = e.filter(e.entry_ch.isin(list(channels)))
        if segments is not None:
            e = e.filter(e.entry_sg.isin(list(segments)))
        return e.select("customer_id")
    out = k.select("customer_id").distinct()
    for col, levels in (("_ch", channels), ("_sg", segments)):
        if levels is not None:
            hit = k.filter(k[col].isin(list(levels))).select("customer_id").distinct()
            out = out.filter(out.customer_id.isin(hit.customer_id))
    return out


class _Customers:
    """One row per customer of the events (integer codes, no id): the channel and segment of
    the first event, every channel and segment ever used (a boolean matrix, customers x
    levels), how far the closed journey funnel went (``fstep``: steps reached, 0 = never
    entered), the day of the funnel entry, and whether the conversion funnel (first step ->
    conversion touchpoint) was completed. A selection's customers are one vectorised pass."""

    ARRAYS = ("entry_ch", "entry_sg", "ever_ch", "ever_sg", "fstep", "fday", "conv")

    def __init__(self, arrays: dict, *, channels, segments):
        for name in self.ARRAYS:
            setattr(self, name, arrays[name])
        self.channels, self.segments = tuple(channels), tuple(segments)
        self.n = len(self.fstep)

    @classmethod
    def from_table(cls, t, *, journey, segment, has_channel, window) -> tuple[_Customers, pd.Index]:
        from .funnel import _per_customer, _steps, _window

        k = _customer_keys(t, segment, has_channel)
        entry = _entry_keys(k).to_pyarrow().to_pandas()
        ids = pd.Index(entry["customer_id"].astype("str").to_numpy(dtype=object)).sort_values()
        entry["_c"] = ids.get_indexer(entry["customer_id"].astype("str").to_numpy(dtype=object))
        entry = entry.sort_values("_c")
        n = len(ids)
        chs = k.select("customer_id", "_ch").distinct().to_pyarrow().to_pandas()
        sgs = k.select("customer_id", "_sg").distinct().to_pyarrow().to_pandas()
        ch_levels = sorted(set(chs["_ch"].astype("str")))
        sg_levels = sorted(set(sgs["_sg"].astype("str")))

        def matrix(frame, col, levels):
            m = np.zeros((n, len(levels)), dtype=bool)
            rows = ids.get_indexer(frame["customer_id"].astype("str").to_numpy(dtype=object))
            m[rows, pd.Index(levels).get_indexer(frame[col].astype("str"))] = True
            return m

        td = _window(window)
        steps = _steps(t, None, journey)
        per = _per_customer(t, [[x] for x in steps], order="closed", window=td, by=[], exclude=[],
                            effort=False).to_pyarrow().to_pandas()
        rows = ids.get_indexer(per["customer_id"].astype("str").to_numpy(dtype=object))
        fstep = np.zeros(n, dtype=np.int16)
        fstep[rows] = sum(per[f"e{i + 1}"].notna().to_numpy().astype(np.int16) for i in range(len(steps)))
        fday = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        fday[rows] = pd.to_datetime(per["e1"], utc=True).dt.floor("D").dt.as_unit("ns").astype("int64").to_numpy()
        conv = np.zeros(n, dtype=bool)
        if journey.conversion in journey.touchpoints and journey.conversion != steps[0]:
            cp = _per_customer(t, [[steps[0]], [journey.conversion]], order="closed", window=td, by=[], exclude=[],
                               effort=False).to_pyarrow().to_pandas()
            crow = ids.get_indexer(cp["customer_id"].astype("str").to_numpy(dtype=object))
            conv[crow] = cp["e2"].notna().to_numpy()
        arrays = {"entry_ch": pd.Index(ch_levels).get_indexer(entry["entry_ch"].astype("str")).astype(np.int16),
                  "entry_sg": pd.Index(sg_levels).get_indexer(entry["entry_sg"].astype("str")).astype(np.int16),
                  "ever_ch": matrix(chs, "_ch", ch_levels), "ever_sg": matrix(sgs, "_sg", sg_levels),
                  "fstep": fstep, "fday": fday, "conv": conv}
        return cls(arrays, channels=ch_levels, segments=sg_levels), ids

    def arrays(self) -> dict:
        return {name: getattr(self, name) for name in self.ARRAYS}

    def meta(self) -> dict:
        return {"channels": list(self.channels), "segments": list(self.segments)}

    @classmethod
    def from_saved(cls, arrays: dict, meta: dict) -> _Customers:
        n = {len(arrays[name]) for name in cls.ARRAYS}
        if len(n) != 1:
            raise ValueError(f"customer arrays of different lengths: {sorted(n)}")
        if arrays["ever_ch"].shape[1] != len(meta["channels"]) or arrays["ever_sg"].shape[1] != len(meta["segments"]):
            raise ValueError("customer arrays and their levels disagree")
        return cls(arrays, channels=meta["channels"], segments=meta["segments"])

    def mask(self, sel: Selection) -> np.ndarray | None:
        """The customers a selection's channels and segments pick (None: every customer)."""
        if not sel.customers_picked:
            return None
        m = np.ones(self.n, dtype=bool)
        for levels, known, entry, ever in ((sel.channels, self.channels, self.entry_ch, self.ever_ch),
                                           (sel.segments, self.segments, self.entry_sg, self.ever_sg)):
            if levels is None:
                continue
            codes = [known.index(v) for v in levels if v in known]
            if sel.rule == "entry":
                m &= np.isin(entry, codes)
            else:
                m &= ever[:, codes].any(axis=1)
        return m

    def funnel_counts(self, sel: Selection, picked: np.ndarray | None, k: int) -> tuple[np.ndarray, int]:
        """Customers reaching each of the ``k`` funnel steps, and converting, among the picked
        customers whose funnel entry falls within the selection's days."""
        m = self.fstep > 0
        if picked is not None:
            m &= picked
        if sel.start is not None:
            m &= self.fday >= sel.start.value
        if sel.end is not None:
            m &= self.fday <= sel.end.value
        counts = np.bincount(self.fstep[m], minlength=k + 1)[: k + 1]
        n = counts[::-1].cumsum()[::-1][1:]          # reached step i = went at least i steps deep
        return n.astype(np.int64), int(self.conv[m].sum())
