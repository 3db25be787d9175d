"""Interactive explorers (ipywidgets 8) for JupyterLab and for Voilà (``cxlab explore``).

>>> from cxlab.widgets import PainPointExplorer, FunnelExplorer
>>> PainPointExplorer(ws)                     # doctest: +SKIP
>>> FunnelExplorer(ws)                        # doctest: +SKIP

:class:`PainPointExplorer` answers "where does the journey hurt, what did customers say
there, and who left?" for a moment of truth, touchpoints, channels, segments and a date
range. It reads the aggregates of :class:`cxlab.explore.ExplorerData`, computed once per
workspace, so a click costs milliseconds; the numbers are those of
:func:`cxlab.painpoints.pain_points` for the same selection (see :mod:`cxlab.explore` for
the two columns that need "Refit" under a filter).

:class:`FunnelExplorer` drives :func:`cxlab.funnel.funnel` (steps, window, order,
breakdown) in the engine and shows the escape routes of a step
(:func:`cxlab.paths.escape_routes`); each answer is cached, so going back is instant.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from html import escape

import numpy as np
import pandas as pd

from .exceptions import NothingToExploreError
from .explore import RULES, ExplorerData, Selection
from .journey import JourneyMap

__all__ = ["PainPointExplorer", "FunnelExplorer", "ExplorerPage", "explorer_data", "emotion_curve_svg"]

_CSS = """
<style>
.cx-root {font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; color: #222;}
.cx-title {font-size: 20px; font-weight: 600; margin: 4px 0 2px 0;}
.cx-sub {color: #666; font-size: 12.5px; margin-bottom: 6px;}
.cx-h {font-size: 14px; font-weight: 600; margin: 10px 0 4px 0; color: #333;}
.cx-compare {border-collapse: collapse; font-size: 12.5px;}
.cx-compare th, .cx-compare td {padding: 3px 8px; text-align: left; border-bottom: 1px solid #eee;}
.cx-compare tr.cx-muted td {color: #999;}
.cx-compare tr.cx-called td {font-weight: 600;}
.cx-compare .cx-n {color: #999; font-weight: 400; font-size: 11px;}
.cx-note {color: #666; font-size: 12px; margin: 2px 0 6px 0;}
.cx-empty {color: #8a6d3b; background: #fcf8e3; border: 1px solid #faebcc; padding: 8px 10px;
           border-radius: 4px; font-size: 13px;}
.cx-tiles {display: flex; gap: 10px; flex-wrap: wrap;}
.cx-tile {border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 150px; background: #fafafa;}
.cx-tile .k {font-size: 12px; color: #666; text-transform: uppercase; letter-spacing: .04em;}
.cx-tile .v {font-size: 24px; font-weight: 600;}
.cx-tile .c {font-size: 11.5px; color: #666;}
table.cx {border-collapse: collapse; font-size: 12.5px; width: 100%;}
table.cx th {text-align: left; border-bottom: 2px solid #bbb; padding: 4px 6px; background: #f4f4f4;
             font-weight: 600; white-space: nowrap;}
table.cx td {border-bottom: 1px solid #e5e5e5; padding: 3px 6px; vertical-align: top;}
table.cx th.n {text-align: right;}
table.cx td.n {text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap;}
table.cx tr.pp td {background: #fdecea;}
table.cx .bad {color: #b03a2e; font-weight: 600;}
table.cx .good {color: #1e8449;}
table.cx .sig {font-weight: 600;}
.cx-flag {display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11px; background: #c0392b;
          color: white; white-space: nowrap;}
.cx-flag.v {background: #e67e22;} .cx-flag.b {background: #8e44ad;}
.cx-bar {background: #4c72b0; height: 12px; display: inline-block; vertical-align: middle;}
.cx-bar.neg {background: #c0392b;}
.cx-verb {border-left: 4px solid #bbb; padding: 4px 8px; margin: 4px 0; font-size: 12.5px; background: #fbfbfb;}
.cx-verb.neg {border-color: #c0392b;} .cx-verb.pos {border-color: #27ae60;}
.cx-verb .meta {color: #777; font-size: 11px;}
.cx-scroll {overflow-x: auto; max-width: 100%;}
.cx-why {font-size: 11.5px; color: #444; line-height: 1.35;}
.cx-why div {white-space: normal;}
.cx-mom {color: #777; font-size: 11px;}
details.cx-more {margin: 6px 0 2px 0; font-size: 12.5px;}
details.cx-more > summary {cursor: pointer; color: #2c5d8f;}
.cx-panel {min-width: 0; overflow-x: auto;}
.cx-panels {display: flex; flex-wrap: wrap; gap: 0 24px;}
.cx-panels > .cx-panel {flex: 1 1 380px;}
.cx-loading {padding: 18px 4px; font-size: 14px; color: #333;}
.cx-loading .cx-stage {color: #555; font-size: 13px; margin-top: 4px;}
.cx-root .widget-html-content {white-space: normal;}
.cx-p-funnel table.cx th {white-space: normal;}
.cx-p-funnel table.cx td, .cx-p-funnel table.cx th {padding-left: 4px; padding-right: 4px;}
</style>
"""

_DATA_CACHE: OrderedDict = OrderedDict()


def explorer_data(data, *, journey=None, on_stage=None, **kwargs) -> ExplorerData:
    """The :class:`ExplorerData` of a workspace, built once per workspace content and journey
    map and then reused: within the process (several explorers, the same notebook re-run) and,
    for a workspace file, across processes through the aggregates kept next to it
    (:mod:`cxlab._explore_cache`: a reload or a new kernel reads them). ``on_stage(done,
    total, name)`` hears the stages of a build or read."""
    if isinstance(data, ExplorerData):
        return data
    jm = JourneyMap.coerce(journey)
    key = None
    if hasattr(data, "loads") and hasattr(data, "path"):
        try:
            from .reports import workspace_fingerprint

            key = (str(data.path), workspace_fingerprint(data)["fingerprint"], repr(jm.to_dict()),
                   repr(sorted(kwargs.items())))
        except Exception:  # noqa: BLE001 - no fingerprint: do not cache
            key = None
    if key is not None and key in _DATA_CACHE:
        return _DATA_CACHE[key]
    built = ExplorerData(data, journey=jm, on_stage=on_stage, **kwargs)
    if key is not None:
        _DATA_CACHE[key] = built
        while len(_DATA_CACHE) > 4:
            _DATA_CACHE.popitem(last=False)
    return built


class ExplorerPage:
    """The pain-point explorer as a page that paints at once (what ``cxlab explore`` shows).

    The page's frame, a progress bar and the name of the stage under way appear first; the
    aggregates are read from the workspace's cache (seconds) or built (a first opening)
    in a background thread, and the explorer replaces the progress bar when they are ready.
    A line at the bottom says where the aggregates came from.

    Parameters
    ----------
    data, journey, **kwargs
        As :class:`PainPointExplorer`.
    background : bool
        Build in a thread (the page paints first) or here (``explorer`` is set on return).

    Attributes: ``widget``, ``explorer`` (None until ready), ``error`` (what stopped it),
    ``ready`` (a :class:`threading.Event`), ``stages`` (the stage names heard, in order).
    """

    def __init__(self, data, *, journey=None, background: bool = True, **kwargs):
        import threading

        import ipywidgets as w

        from ._explore_cache import STAGES

        self._args = (data, journey, kwargs)
        self.explorer = self.error = None
        self.stages: list[str] = []
        self.ready = threading.Event()
        self.progress = w.IntProgress(value=0, min=0, max=len(STAGES), bar_style="info",
                                      layout=w.Layout(width="360px"))
        self.stage = w.HTML("<div class='cx-stage'>opening the workspace</div>")
        self.cache_line = w.HTML()
        self._shell = w.VBox([w.HTML(_CSS + "<div class='cx-root cx-loading'><div class='cx-title'>Pain points per "
                                     "moment of truth</div><div class='cx-sub'>Preparing the explorer: the first "
                                     "opening of a workspace builds its aggregates (a minute on a large one); "
                                     "later pages read them in seconds.</div></div>"),
                              self.progress, self.stage], layout=w.Layout(padding="8px 0"))
        self._shell.add_class("cx-root")
        self._shell.add_class("cx-loading")
        self.widget = w.VBox([self._shell], layout=w.Layout(width="100%", max_width="100%"))
        if background:
            threading.Thread(target=self._open, name="cxlab-explorer", daemon=True).start()
        else:
            self._open()

    def _on_stage(self, done: int, total: int, name: str) -> None:
        self.stages.append(name)
        self.progress.max = max(total, 1)
        self.progress.value = min(done, total)
        self.stage.value = f"<div class='cx-stage'>{escape(name)}…</div>" if name != "ready" else ""

    def _open(self) -> None:
        import logging

        data, journey, kwargs = self._args
        try:
            d = explorer_data(data, journey=journey, on_stage=self._on_stage, **kwargs)
            self.stage.value = "<div class='cx-stage'>drawing the panels…</div>"
            x = PainPointExplorer(d)
            how = {"read": "read from", "built": "built and kept in", "rebuilt": "rebuilt (the kept copy was "
                   "damaged) and kept in"}
            status = getattr(d, "cache_status", None)
            where = (f"Aggregates {how[status]} {escape(str(d.cache_dir))}." if status in how else
                     f"Aggregates {escape(d.cache_note)}.")
            self.cache_line.value = f"<div class='cx-note cx-cache' data-cache='{status or 'none'}'>{where}</div>"
            logging.getLogger("cxlab.explore").info("explorer aggregates: %s (%s)", status, d.cache_note)
            self.explorer = x
            self.widget.children = [x.widget, self.cache_line]
        except NothingToExploreError as err:        # an empty workspace: what to pull, no error style
            import ipywidgets as w

            self.error = err
            self.stage.value = _missing(str(err))
            self._shell.children = [w.HTML(_CSS + "<div class='cx-root cx-loading'><div class='cx-title'>Pain points "
                                           "per moment of truth</div></div>"), self.stage]
        except Exception as err:  # noqa: BLE001 - shown on the page, not lost in a thread
            self.error = err
            self.progress.bar_style = "danger"
            self.stage.value = _empty(f"The explorer could not open: {type(err).__name__}: {err}")
        finally:
            self.ready.set()

    def wait(self, timeout: float | None = None) -> PainPointExplorer:
        """The explorer once ready (raises what stopped it, or TimeoutError)."""
        if not self.ready.wait(timeout):
            raise TimeoutError(f"the explorer was not ready within {timeout} s")
        if self.error is not None:
            raise self.error
        return self.explorer

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


# --------------------------------------------------------------------------- formatting
def _num(v, fmt="{:,.0f}", na="–"):
    return na if v is None or (isinstance(v, float) and not np.isfinite(v)) or pd.isna(v) else fmt.format(v)


def _pct(v, digits=0):
    from .quality import format_pct

    return format_pct(v, digits=digits, missing="–")


def _money(v, currency) -> str:
    from .voice_report import format_money

    return format_money(v, currency) or "–"


def _p(v):
    """A p- or q-value for people: ``< 0.001``, else three decimals."""
    if v is None or pd.isna(v):
        return "–"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def _empty(msg: str) -> str:
    return f"<div class='cx-empty'>{escape(msg)}</div>"


_MOMENT_FILLS = ("#dbe9f6", "#fde9d9", "#e2f0d9", "#ece2f0", "#fff3cd", "#e0f2f1")


def _moment_fill(moment, curve) -> str:
    """The band colour of a moment: its position among the curve's moments (any map's ids)."""
    order = list(dict.fromkeys(curve["moment"]))
    return _MOMENT_FILLS[order.index(moment) % len(_MOMENT_FILLS)] if moment in order else "#eeeeee"


def emotion_curve_svg(table: pd.DataFrame, *, highlight=None, label=None, width: int = 980,
                      height: int = 290) -> str:
    """The emotional curve of :func:`cxlab.painpoints.plot_emotion_curve` as inline SVG (drawn
    in about a millisecond, with a tooltip on every point): mean 0-100 score per touchpoint
    in journey order, its 95% interval band, moments shaded (``highlight`` brought forward),
    the journey baseline dashed, pain points ringed in red. ``label``: a function giving a
    touchpoint's business label (e.g. ``JourneyMap.label``); the touchpoint names otherwise."""
    from .painpoints import emotion_curve

    name = label or str

    curve = emotion_curve(table)
    if curve.empty:
        return _empty("No scored feedback in this selection: no emotional curve to draw.")
    left, right, top, bottom = 48, 12, 26, 92
    pw, ph = width - left - right, height - top - bottom
    k = len(curve)
    step = pw / k

    def xs(i):
        return left + step * (i + 0.5)

    def ys(v):
        return top + ph * (1 - float(np.clip(v, 0, 100)) / 100)

    parts = [(f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='100%' "
              f"style='max-width:{width}px;font-family:sans-serif' role='img' aria-label='Emotional curve'>")]
    for moment, idx in curve.groupby("moment", sort=False).groups.items():
        lo, hi = left + step * min(idx), left + step * (max(idx) + 1)
        faded = highlight is not None and moment != highlight
        stroke = " stroke='#c0392b' stroke-width='2'" if moment == highlight else ""
        parts.append(f"<rect x='{lo:.1f}' y='{top}' width='{hi - lo:.1f}' height='{ph}' "
                     f"fill='{_moment_fill(moment, curve)}' fill-opacity='{0.35 if faded else 1}'{stroke}/>")
        parts.append(f"<text x='{(lo + hi) / 2:.1f}' y='{top - 8}' text-anchor='middle' font-size='13' "
                     f"font-weight='bold' fill='{'#bbbbbb' if faded else '#333333'}'>{escape(str(moment))}</text>")
    for v in (0, 25, 50, 75, 100):
        parts.append(f"<line x1='{left}' x2='{left + pw}' y1='{ys(v):.1f}' y2='{ys(v):.1f}' stroke='#ffffff' "
                     "stroke-opacity='0.8'/>"
                     f"<text x='{left - 6}' y='{ys(v) + 4:.1f}' text-anchor='end' font-size='11' fill='#555'>{v}</text>")
    parts.append(f"<text transform='translate(12,{top + ph / 2:.0f}) rotate(-90)' text-anchor='middle' font-size='11' "
                 "fill='#555'>mean score (0-100)</text>")
    ok = curve["ci_low"].notna() & curve["ci_high"].notna()
    if ok.any():
        pts = [(xs(i), ys(v)) for i, v in zip(np.flatnonzero(ok), curve.loc[ok, "ci_high"])]
        pts += [(xs(i), ys(v)) for i, v in zip(np.flatnonzero(ok)[::-1], curve.loc[ok, "ci_low"][::-1])]
        parts.append("<polygon points='" + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
                     + "' fill='#4c72b0' fill-opacity='0.22'/>")
    base = table.attrs.get("baseline_score", np.nan)
    if pd.notna(base):
        parts.append(f"<line x1='{left}' x2='{left + pw}' y1='{ys(base):.1f}' y2='{ys(base):.1f}' stroke='#666' "
                     f"stroke-dasharray='5,4'/><text x='{left + pw - 4}' y='{ys(base) - 5:.1f}' text-anchor='end' "
                     f"font-size='11' fill='#444'>journey baseline {base:.0f}</text>")
    parts.append("<polyline fill='none' stroke='#4c72b0' stroke-width='2' points='"
                 + " ".join(f"{xs(i):.1f},{ys(v):.1f}" for i, v in enumerate(curve["mean"])) + "'/>")
    for i, r in enumerate(curve.itertuples(index=False)):
        tip = (f"{name(r.touchpoint)} ({r.moment}): {r.mean:.1f}"
               + (f" (95% CI {r.ci_low:.1f}-{r.ci_high:.1f})" if pd.notna(r.ci_low) else "")
               + f", n={r.feedback:,}" + (" - pain point" if r.pain_point else ""))
        parts.append(f"<circle cx='{xs(i):.1f}' cy='{ys(r.mean):.1f}' r='4.5' fill='#4c72b0'>"
                     f"<title>{escape(tip)}</title></circle>")
        if r.pain_point:
            parts.append(f"<circle cx='{xs(i):.1f}' cy='{ys(r.mean):.1f}' r='10' fill='none' stroke='#c0392b' "
                         f"stroke-width='2.2'><title>{escape(tip)}</title></circle>"
                         f"<text x='{xs(i):.1f}' y='{ys(r.mean) + 24:.1f}' text-anchor='middle' font-size='11' "
                         f"font-weight='bold' fill='#c0392b'>{escape(name(r.touchpoint))}</text>")
        lx, ly = xs(i), top + ph + 10
        parts.append(f"<text transform='translate({lx:.1f},{ly:.1f}) rotate(-35)' text-anchor='end' font-size='11' "
                     f"fill='#333'>{escape(name(r.touchpoint))} (n={r.feedback:,})</text>")
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- pain points
class PainPointExplorer:
    """Pain points per moment of truth, clickable.

    Parameters
    ----------
    data : Workspace, (events, feedback) or :class:`~cxlab.explore.ExplorerData`
    journey : JourneyMap, path or None (the default map)
    **kwargs : passed to :class:`~cxlab.explore.ExplorerData` (``segment``, ``alpha``,
        ``sentiment_model``, ``value_per_customer``, ``window``)

    Controls: moment of truth (or the whole journey), touchpoints, channels, segments, date
    range, and "Refit drop-off model" (fits the model on the selection; seconds). Panels: KPI
    tiles (NPS, CSAT, conversion with 95% intervals), the emotional curve with the moment
    highlighted, the pain-point table, the funnel steps of the moment, the complaint terms of
    the selected touchpoints, and the newest verbatims (PII masked, coloured by sentiment).

    Attributes for code and tests: ``table`` (the pain-point table shown), ``kpis``,
    ``funnel``, ``terms``, ``verbatims``, ``moment_view`` (the research paths or the circle of
    the moment, :mod:`cxlab.explore_moments`) and ``latency`` (seconds of the last update).
    """

    def __init__(self, data, *, journey=None, **kwargs):
        import ipywidgets as w

        self.data = explorer_data(data, journey=journey, **kwargs)
        d = self.data
        self._busy = False
        self.latency = float("nan")
        self._curves: OrderedDict = OrderedDict()

        jm = d.journey               # the map's own moments, in its order, with its labels as tooltips
        ids = [m for m in jm.moment_ids if jm.moment(m).touchpoints]
        moments = [("Whole journey", "ALL")] + [(m, m) for m in ids]
        self.moment = w.ToggleButtons(options=moments, value="ALL", description="",
                                      tooltips=["All touchpoints"] + [jm.moment(m).label for m in ids],
                                      style={"button_width": "120px"})
        box = {"layout": w.Layout(width="240px")}
        self.touchpoints = w.SelectMultiple(options=self._tp_options(d.journey.touchpoints),
                                            value=list(d.journey.touchpoints), rows=9, **box)
        self.channels = w.SelectMultiple(options=list(d.channels), value=list(d.channels),
                                         rows=min(6, max(2, len(d.channels))), **box)
        self.segments = w.SelectMultiple(options=list(d.segments), value=list(d.segments),
                                         rows=min(5, max(2, len(d.segments))), **box)
        self.rule = w.ToggleButtons(options=[(words, value) for value, words in RULES], value="ever",
                                    tooltips=["customers with at least one contact through the channel (or in "
                                              "the segment), their whole journey",
                                              "customers whose first contact was through the channel (or in the "
                                              "segment), their whole journey"],
                                    style={"button_width": "117px"}, layout=w.Layout(width="248px"))
        days = pd.date_range(d.first_day, d.last_day, freq="D")
        self._days = days
        self.dates = w.SelectionRangeSlider(options=[(x.strftime("%d %b %Y"), x) for x in days],
                                            index=(0, len(days) - 1), description="",
                                            layout=w.Layout(width="240px"), continuous_update=False,
                                            readout=False)
        self.dates_label = w.HTML()
        self.refit_button = w.Button(description="Refit drop-off model",
                                     tooltip="Fit the drop-off model on this selection (takes seconds)",
                                     layout=w.Layout(width="240px"))
        self.reset_button = w.Button(description="Reset filters", layout=w.Layout(width="240px"))
        self.kpi_html = w.HTML()
        self.curve = w.HTML(layout=w.Layout(width="100%"))
        self.table_html = w.HTML()
        panel = {"flex": "1 1 380px", "min_width": "0", "overflow": "auto"}
        self.funnel_html = w.HTML(layout=w.Layout(**panel))
        self.terms_html = w.HTML(layout=w.Layout(**panel))
        self.verbatims_html = w.HTML()
        self.moment_html = w.HTML(layout=w.Layout(width="100%", min_width="0", overflow="auto"))
        self.status = w.HTML()
        # updated last by update(): a browser (the layout test, benchmarks/widgets_browser.py) waits for
        # its counter to know that every panel of a change has been redrawn
        self.tick = w.HTML(layout=w.Layout(display="none"))
        self._updates = 0

        def label(text):
            return w.HTML(f"<div class='cx-h'>{escape(text)}</div>")

        picks = ([label("Channels and segments pick customers who")] + [self.rule]
                 if (d.channels or d.segments) and d.has_events else [])
        if not d.has_events:                 # voice-only: no drop-off model to refit
            self.refit_button.layout.display = "none"
        channels = [label("Channels"), self.channels] if d.channels else []   # a survey or a log may have none
        filters = w.VBox([label("Touchpoints"), self.touchpoints, *picks, *channels]
                         + ([label("Segments"), self.segments] if d.segments else [])
                         + [label("Dates"), self.dates, self.dates_label, w.HTML("<br>"), self.reset_button, self.refit_button,
                            self.status],
                         layout=w.Layout(width="260px", min_width="260px"))
        main = w.VBox([self.kpi_html, self.moment_html, label("Pain points, the costliest first" if d.has_events else
                                            "Voice per touchpoint, the lowest score first"), self.table_html,
                       label("Emotional curve"), self.curve,
                       w.HBox([self.funnel_html, self.terms_html],
                              layout=w.Layout(flex_flow="row wrap", grid_gap="0 24px", width="100%")),
                       label("What customers said (newest first, personal data masked)"), self.verbatims_html,
                       self._compare_panel()],
                      layout=w.Layout(flex="1 1 0%", min_width="0", padding="0 0 0 16px"))
        title = w.HTML(_CSS + "<div class='cx-root'><div class='cx-title'>Pain points per moment of truth</div>"
                       f"<div class='cx-sub'>{_activity(d)}, "
                       f"{len(d.feedback):,} pieces of feedback, {d.first_day:%d %b %Y} – {d.last_day:%d %b %Y}. "
                       "Pick a moment, then narrow by touchpoint, channel, segment or dates.</div></div>")
        self.widget = w.VBox([title, self.moment, w.HBox([filters, main], layout=w.Layout(width="100%")),
                              self.tick], layout=w.Layout(width="100%", max_width="100%"))
        self.widget.add_class("cx-root")
        for name, h in (("compare", self.compare_box), ("kpis", self.kpi_html), ("curve", self.curve), ("table", self.table_html),
                        ("funnel", self.funnel_html), ("terms", self.terms_html), ("verbatims", self.verbatims_html),
                        ("filters", filters), ("moment", self.moment_html)):
            h.add_class(f"cx-p-{name}")          # the page's panels, for layout checks

        self.moment.observe(self._on_moment, "value")
        for c in (self.touchpoints, self.channels, self.segments, self.dates, self.rule):
            c.observe(self._on_change, "value")
        self.refit_button.on_click(self._on_refit)
        self.reset_button.on_click(self._on_reset)
        self.update()

    # ------------------------------------------------------------------ events
    def _tp_options(self, touchpoints) -> list:
        """(business label, touchpoint) pairs: the list shows labels, the value holds names."""
        return [(self.data.journey.label(x), x) for x in touchpoints]

    def _moment_value(self):
        return None if self.moment.value == "ALL" else self.moment.value

    def _on_moment(self, change):
        m = self._moment_value()
        tps = [x for x in self.data.journey.touchpoints if m is None or self.data.journey.moment_of(x) == m]
        self._busy = True
        try:
            self.touchpoints.options = self._tp_options(tps)
            self.touchpoints.value = tps
        finally:
            self._busy = False
        self.update()

    def _on_change(self, change):
        if not self._busy:
            self.update()

    def _on_reset(self, _):
        self._busy = True
        try:
            self.channels.value = list(self.channels.options)
            self.segments.value = list(self.segments.options)
            self.dates.index = (0, len(self._days) - 1)
        finally:
            self._busy = False
        self.update()

    def _on_refit(self, _):
        sel = self.selection()
        if not sel.filtered:
            self.status.value = "<div class='cx-note'>No filter: the table already uses the journey's model.</div>"
            return
        self.refit_button.disabled = True
        self.status.value = "<div class='cx-note'>Fitting the drop-off model on this selection…</div>"
        try:
            self.data.refit(sel)
        except ValueError as err:
            self.status.value = _empty(f"Cannot fit the drop-off model on this selection: {err}")
            return
        finally:
            self.refit_button.disabled = False
        self.update()

    def selection(self) -> Selection:
        """The current :class:`~cxlab.explore.Selection` (touchpoints within the moment)."""
        d = self.data
        lo, hi = self.dates.value
        m = self._moment_value()
        all_tps = [x for x in d.journey.touchpoints if m is None or d.journey.moment_of(x) == m]
        tps = tuple(self.touchpoints.value)
        return d.selection(moment=m, touchpoints=None if set(tps) == set(all_tps) else tps,
                           channels=self.channels.value, segments=self.segments.value or None,
                           start=lo, end=hi, rule=self.rule.value)

    # ------------------------------------------------------------------ rendering
    def update(self) -> None:
        """Recompute every panel for the current selection (called on every change)."""
        t0 = time.perf_counter()
        d = self.data
        missing = [name for name, c in (("touchpoint", self.touchpoints), ("channel", self.channels),
                                        ("segment", self.segments)) if c.options and not c.value]
        if missing:
            msg = (f"No {missing[0]} selected: pick at least one {missing[0]} on the left "
                   "(Ctrl/Cmd-click selects several).")
            self.table = self.funnel = self.terms = self.verbatims = None
            self.kpis = {}
            for h in (self.kpi_html, self.table_html, self.verbatims_html):
                h.value = _empty(msg)
            self.funnel_html.value = self.terms_html.value = ""
            self.curve.value = self.moment_html.value = ""
            self.moment_view = None
            self.latency = time.perf_counter() - t0
            self._tick()
            return
        lo, hi = self.dates.value
        self.dates_label.value = f"<div class='cx-note'>{lo:%d %b %Y} – {hi:%d %b %Y}</div>"
        sel = self.selection()
        full = d.journey_table(sel)
        self.table = d.table(sel)
        self.kpis = d.kpis(sel)
        self.funnel = d.funnel_table(sel)
        self.terms = d.terms(sel)
        self.verbatims = d.verbatims(sel)
        self.moment_view = d.moment_view(sel)
        self.kpi_html.value = self._kpi_html(sel)
        self.moment_html.value = self._moment_html(sel)
        self.curve.value = self._curve_svg(full, sel)
        self.table_html.value = self._table_html(self.table, sel)
        self.funnel_html.value = self._funnel_html(sel)
        self.terms_html.value = self._terms_html(sel)
        self.verbatims_html.value = self._verbatims_html()
        self._show_missing()
        behaviour = self.table.attrs.get("behaviour", "whole journey")
        self.status.value = "" if not d.has_events else ("<div class='cx-note'>Drop-off odds ratios: "
                             + ("fitted on this selection." if behaviour == "selection" else
                                "from the whole journey's model; <b>Refit</b> fits them on this selection."
                                if sel.filtered else "whole journey.") + "</div>")
        if self.compare_box.selected_index == 0:
            self.compare.update()
        self.latency = time.perf_counter() - t0
        self._tick()

    def _compare_panel(self):
        """A versus B (:class:`cxlab.explore_compare.CompareView`), folded until opened; open, it
        follows the moment, touchpoints and the filters that are not being compared."""
        import ipywidgets as w

        from .explore_compare import CompareView

        self.compare = CompareView(self, lazy=True)
        self.compare_box = w.Accordion(children=[self.compare.widget], selected_index=None,
                                       layout=w.Layout(width="100%", margin="12px 0 0 0"))
        self.compare_box.set_title(0, "Compare two groups side by side (segments, channels or months)")

        def opened(change):
            if change["new"] == 0:
                self.compare.update()
                self._tick()
        self.compare_box.observe(opened, "selected_index")
        return self.compare_box

    def _tick(self) -> None:
        self._updates += 1
        self.tick.value = (f"<span class='cx-tick' data-n='{self._updates}' "
                           f"data-ms='{self.latency * 1000:.0f}'></span>")

    def _kpi_html(self, sel: Selection) -> str:
        tiles = []
        for name, fmt, note in (("NPS", "{:+.0f}", "promoters − detractors, points"),
                                ("CSAT", "{:.0%}", "top-2 box (4-5 of 5)"),
                                ("Conversion", "{:.1%}", "entered the funnel → bought")):
            if not _answerable(self.data, name):
                continue
            k = self.kpis.get(name)
            if k is None:
                tiles.append(f"<div class='cx-tile'><div class='k'>{name}</div><div class='v'>–</div>"
                             f"<div class='c'>no answers in this selection</div></div>")
                continue
            tiles.append(f"<div class='cx-tile'><div class='k'>{name}</div><div class='v'>{fmt.format(k['value'])}"
                         f"</div><div class='c'>95% CI {fmt.format(k['ci_low'])} to {fmt.format(k['ci_high'])}"
                         f" · n={k['n']:,}</div><div class='c'>{note}</div></div>")
        who = self.data.describe(sel)
        if sel.customers_picked:
            who += " (their whole journeys: every contact and piece of feedback, every channel)"
        return (f"<div class='cx-note cx-who'><b>{escape(who)}</b></div>"
                "<div class='cx-root cx-tiles'>" + "".join(tiles) + "</div>")

    def _moment_html(self, sel: Selection) -> str:
        """Research paths (a research moment), the circle (a sharing moment), else one line."""
        from ._moment_html import moment_panel_html

        return moment_panel_html(self.data.journey, sel, self.moment_view)

    def _curve_svg(self, full: pd.DataFrame, sel: Selection) -> str:
        key = (sel.filter_key(), sel.moment, full.attrs.get("behaviour"))
        if key not in self._curves:
            self._curves[key] = emotion_curve_svg(full, highlight=sel.moment, label=self.data.journey.label)
            if len(self._curves) > 64:
                self._curves.popitem(last=False)
        self._curves.move_to_end(key)
        return self._curves[key]

    #: rows of the pain-point table shown before "Show the other touchpoints"
    TOP = 8

    def _table_html(self, table: pd.DataFrame, sel: Selection) -> str:
        """The pain points, ranked: the columns that matter first (rank, touchpoint, money at
        risk, customers lost, the evidence), every column under "All columns" (scrolls)."""
        if table.empty:
            return _empty("No touchpoint of the journey map in this selection.")
        alpha, jm = self.data.alpha, self.data.journey
        cur = jm.currency
        t = table.sort_values("rank", kind="stable")
        head = ("<tr><th>#</th><th>Touchpoint</th><th class='n'>Value at risk</th><th class='n'>Customers lost</th>"
                "<th class='n'>Left after</th><th class='n'>Score 0-100</th><th>Evidence</th></tr>")
        body, full = [], []
        top = len(t) if len(t) <= self.TOP + 2 else self.TOP
        for i, r in enumerate(t.itertuples(index=False)):
            voice_bad = (pd.notna(r.score_diff) and r.score_diff < 0 and pd.notna(r.score_q) and r.score_q < alpha)
            leave_bad = (pd.notna(r.dropoff_or) and r.dropoff_or > 1 and pd.notna(r.dropoff_q)
                         and r.dropoff_q < alpha)
            flag = {"voice and behaviour": "<span class='cx-flag'>voice + behaviour</span>",
                    "voice": "<span class='cx-flag v'>voice</span>",
                    "behaviour": "<span class='cx-flag b'>behaviour</span>"}.get(r.flag, "")
            why = []
            if pd.notna(r.score_diff):
                why.append(f"<div class='{'bad' if voice_bad else ''}'>score {r.score_diff:+.0f} vs journey "
                           f"(q {_p(r.score_q)})</div>")
            if pd.notna(r.share_negative):
                why.append(f"<div>{_pct(r.share_negative)} negative of {_num(r.feedback)}</div>")
            if pd.notna(r.dropoff_or):
                why.append(f"<div class='{'bad' if leave_bad else ''}'>leaving ×{r.dropoff_or:.2f} "
                           f"(q {_p(r.dropoff_q)})</div>")
            name = escape(jm.label(r.touchpoint))
            tp = escape(str(r.touchpoint), quote=True)
            score = "–" if pd.isna(r.score_mean) else f"{r.score_mean:.0f}"
            if i < top:
                body.append(
                    f"<tr class='{'pp' if r.pain_point else ''}' data-tp='{tp}'><td class='n'>{r.rank}</td>"
                    f"<td><b>{name}</b> <span class='cx-mom'>{escape(str(r.moment))}</span></td>"
                    f"<td class='n'>{_money(r.value_at_risk, cur)}</td><td class='n'>{_num(r.customers_lost)}</td>"
                    f"<td class='n'>{_pct(r.left_after)}</td><td class='n'>{score}</td>"
                    f"<td class='cx-why'>{flag}{''.join(why)}</td></tr>")
            orr = ("–" if pd.isna(r.dropoff_or) else
                   f"{r.dropoff_or:.2f} ({r.dropoff_ci_low:.2f}–{r.dropoff_ci_high:.2f})"
                   + (f" at {escape(jm.label(r.dropoff_step))}" if isinstance(r.dropoff_step, str) else ""))
            full.append(
                f"<tr data-tp='{tp}'><td class='n'>{r.rank}</td><td>{name}</td><td class='n'>{_num(r.reached)}</td>"
                f"<td class='n'>{_num(r.feedback)}</td>"
                f"<td class='n'>{score} ({_num(r.score_ci_low)}–{_num(r.score_ci_high)})</td>"
                f"<td class='n'>{_num(r.score_diff, '{:+.1f}')}</td><td class='n'>{_p(r.score_q)}</td>"
                f"<td class='n'>{_pct(r.share_negative)}</td><td class='n'>{_num(r.sentiment_mean, '{:+.2f}')}</td>"
                f"<td class='n'>{_num(r.at_risk)}</td><td class='n'>{_num(r.left)}</td>"
                f"<td class='n'>{_pct(r.left_after)} ({_pct(r.left_after_ci_low)}–{_pct(r.left_after_ci_high)})</td>"
                f"<td class='n'>{orr}</td><td class='n'>{_p(r.dropoff_q)}</td></tr>")
        value = table.attrs.get("value_per_customer", self.data.value_per_customer)
        note = ("<div class='cx-note'>Pain point (red row): voice significantly worse than the journey "
                f"(Benjamini-Hochberg q &lt; {alpha:g}) and, where the drop-off model can measure it, leaving "
                "significantly more likely. Value at risk = customers lost × value per customer "
                f"({_money(value, cur)}). Left after: share of those who reached it and never converted.</div>")
        rest = (f"the other {len(t) - top} touchpoints and " if top < len(t) else "")
        more = (f"<details class='cx-more'><summary>Show {rest}every column (intervals, q-values, drop-off model)"
                "</summary>"
                "<div class='cx-scroll'><table class='cx pp-full'><tr><th>#</th><th>Touchpoint</th><th>Reached</th>"
                "<th>Feedback</th><th>Score (95% CI)</th><th>vs journey</th><th>q</th><th>Negative</th>"
                "<th>Text sentiment</th><th>At risk</th><th>Left</th><th>Left after (95% CI)</th>"
                "<th>Drop-off odds ratio (95% CI)</th><th>q</th></tr>" + "".join(full) + "</table></div></details>")
        return (f"<div class='cx-scroll'><table class='cx pp-table'>{head}{''.join(body)}</table></div>"
                + note + more)

    def _funnel_html(self, sel: Selection) -> str:
        f = self.funnel
        jm = self.data.journey
        head = "<div class='cx-h'>Funnel</div>"
        steps = f if sel.moment is None else f[f["moment"] == sel.moment]
        if steps.empty:
            return head + _empty(f"No funnel step at {sel.moment}: the funnel runs through "
                                 f"{', '.join(sorted(set(f['moment'].dropna())))}.")
        rows = []
        for r in steps.itertuples(index=False):
            width = 0 if pd.isna(r.rate) else round(80 * r.rate)
            ci = f"95% CI {_pct(r.step_ci_low, 1)} to {_pct(r.step_ci_high, 1)}"
            rows.append(f"<tr data-tp='{escape(str(r.touchpoint), quote=True)}'><td style='white-space:nowrap'>{r.step}. "
                        f"{escape(jm.label(r.touchpoint))}</td><td class='n'>{r.n:,}</td>"
                        f"<td class='n'><span class='cx-bar' style='width:{width}px'></span> {_pct(r.rate, 1)}</td>"
                        f"<td class='n' title='{ci}'>{_pct(r.step_rate, 1)}</td><td class='n'>{r.dropped:,}</td></tr>")
        return (head + "<div class='cx-scroll'><table class='cx'><tr><th>Step</th><th class='n'>Customers</th>"
                "<th class='n'>From step 1</th><th class='n'>From previous</th><th class='n'>Dropped</th></tr>"
                + "".join(rows) + "</table></div>"
                "<div class='cx-note'>The selected customers, counted by the day of their funnel entry, their "
                f"whole journey; closed funnel within {_dur(self.data.window)}. Hover a rate for its 95% "
                "interval.</div>")

    def _terms_html(self, sel: Selection) -> str:
        head = "<div class='cx-h'>What the complaints are about</div>"
        t = self.terms
        if t is None or t.empty:
            why = ("Pick a moment or touchpoints to contrast their complaints with the rest of the journey."
                   if sel.moment is None and sel.touchpoints is None else
                   "No term stands out in the negative feedback of this selection.")
            return head + _empty(why)
        zmax = float(t["z"].max())
        rows = "".join(
            f"<tr><td>{escape(r.term)}</td><td><span class='cx-bar neg' style='width:{int(80 * r.z / zmax)}px'>"
            f"</span> {r.z:.1f}</td><td class='n'>{_pct(r.share_in_group, 1)}</td><td class='n'>"
            f"{_pct(r.share_elsewhere, 1)}</td></tr>" for r in t.itertuples(index=False))
        return (head + "<div class='cx-scroll'><table class='cx'><tr><th>Term</th><th>z</th>"
                "<th class='n'>of these complaints</th><th class='n'>elsewhere</th></tr>" + rows + "</table></div>"
                "<div class='cx-note'>Log-odds with an informative Dirichlet prior (Monroe et al. 2008), "
                "negative feedback of the selection vs the rest.</div>")

    def _verbatims_html(self) -> str:
        v = self.verbatims
        if v is None or v.empty:
            return _empty("No verbatim in this selection.")
        jm = self.data.journey
        out = []
        for r in v.itertuples(index=False):
            cls = "neg" if pd.notna(r.sentiment) and r.sentiment < -0.2 else (
                "pos" if pd.notna(r.sentiment) and r.sentiment > 0.2 else "")
            score = "" if pd.isna(r.score) else f" · {r.scale} {r.score:g}"
            out.append(f"<div class='cx-verb {cls}'><div class='meta'>{pd.Timestamp(r.ts):%d %b %Y %H:%M} · "
                       f"{escape(jm.label(r.touchpoint))}{_channel_part(r.channel)}{escape(score)} · sentiment "
                       f"{_num(r.sentiment, '{:+.2f}')}</div>{escape(str(r.text))}</div>")
        return "".join(out)

    # ------------------------------------------------------------------ voice-only, behaviour-only
    def _show_missing(self) -> None:
        """The panels the workspace cannot answer say so in one line (``ExplorerData.missing``);
        voice-only, the pain-point table is the voice table (no reach, no drop-off)."""
        d = self.data
        if not d.has_events:
            self.funnel_html.value = "<div class='cx-h'>Funnel</div>" + _missing(d.missing["events"])
            self.table_html.value = _missing(d.missing["events"]) + _voice_table_html(self.table, d.journey)
        if not d.has_feedback:
            self.curve.value = _missing(d.missing["feedback"])
            self.terms_html.value = "<div class='cx-h'>What the complaints are about</div>" + _missing(
                d.missing["feedback"])
            self.verbatims_html.value = _missing(d.missing["feedback"])

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _channel_part(channel) -> str:
    """`` · channel`` for a verbatim's line, nothing when the feedback has no channel."""
    return "" if channel is None or pd.isna(channel) else f" · {escape(str(channel))}"


def _missing(line: str) -> str:
    """The one line shown in place of a panel the workspace cannot answer."""
    return f"<div class='cx-empty cx-missing'>{escape(line[:1].upper() + line[1:])}.</div>"


def _activity(d: ExplorerData) -> str:
    """The page's first words: touchpoints with activity (events) or with feedback (voice-only)."""
    if d.has_events:
        return f"{sum(d.base['reached'] > 0)} touchpoints with activity"
    return f"{sum(d.base['feedback'] > 0)} touchpoints with feedback"


def _answerable(d: ExplorerData, kpi: str) -> bool:
    """Whether the workspace can answer a KPI tile: conversion needs events; NPS and CSAT need
    feedback on their scales (a voice-only workspace without NPS answers shows no NPS tile)."""
    if kpi == "Conversion":
        return d.has_events
    if not d.has_feedback:
        return False
    if d.has_events:
        return True
    scales = set(d.feedback["scale"].dropna().astype("str"))
    return bool(scales & ({"nps"} if kpi == "NPS" else {"csat", "stars"}))


def _voice_table_html(table: pd.DataFrame, jm: JourneyMap) -> str:
    """Voice-only: per touchpoint with feedback the volume, the 0-100 score with its interval
    and test against the journey, the negative share and the text sentiment, lowest score first."""
    t = table[table["feedback"] > 0].sort_values(["score_mean", "touchpoint"], kind="stable", na_position="last")
    if t.empty:
        return _empty("No feedback in this selection.")
    rows = []
    for r in t.itertuples(index=False):
        flag = "<span class='cx-flag v'>voice</span>" if r.flag in ("voice", "voice and behaviour") else ""
        rows.append(
            f"<tr class='{'pp' if r.pain_point else ''}' data-tp='{escape(str(r.touchpoint), quote=True)}'>"
            f"<td><b>{escape(jm.label(r.touchpoint))}</b> <span class='cx-mom'>{escape(str(r.moment))}</span></td>"
            f"<td class='n'>{_num(r.feedback)}</td>"
            f"<td class='n'>{_num(r.score_mean)} ({_num(r.score_ci_low)}–{_num(r.score_ci_high)})</td>"
            f"<td class='n'>{_num(r.score_diff, '{:+.0f}')} (q {_p(r.score_q)})</td>"
            f"<td class='n'>{_pct(r.share_negative)}</td><td class='n'>{_num(r.sentiment_mean, '{:+.2f}')}</td>"
            f"<td class='cx-why'>{flag}</td></tr>")
    head = ("<tr><th>Touchpoint</th><th class='n'>Feedback</th><th class='n'>Score 0-100 (95% CI)</th>"
            "<th class='n'>vs journey</th><th class='n'>Negative</th><th class='n'>Text sentiment</th>"
            "<th>Evidence</th></tr>")
    quiet = int((table["feedback"] == 0).sum())
    note = (f"<div class='cx-note'>{quiet} touchpoints of the map have no feedback in this selection.</div>"
            if quiet else "")
    return ("<div class='cx-scroll'><table class='cx pp-table pp-voice'>" + head + "".join(rows) + "</table></div>"
            + note)


# --------------------------------------------------------------------------- funnel
#: what the funnel explorer shows on a workspace without journey events
NO_EVENTS_FUNNEL = "no journey events in this workspace: funnels and escape routes need an events export"
_WINDOWS = [("30 minutes", "30min"), ("1 hour", "1h"), ("1 day", "1D"), ("7 days", "7D"), ("30 days", "30D"),
            ("no window", "none")]


def _window_label(td) -> str:
    td = pd.Timedelta(td)
    for _, v in _WINDOWS:
        if v != "none" and pd.Timedelta(v) == td:
            return v
    secs = int(td.total_seconds())               # the map's own window, as a duration funnel() reads
    if secs % 86400 == 0:
        return f"{secs // 86400}D"
    return f"{secs // 60}min" if secs % 60 == 0 else f"{secs}s"


class FunnelExplorer:
    """A funnel you can reshape: steps (type or pick touchpoints, in order), window, order
    (closed / open / any, as :func:`cxlab.funnel.funnel`), breakdown by an event column, and
    the escape routes of a step (:func:`cxlab.paths.escape_routes`). Every answer is computed
    in the engine once and cached.

    Attributes for code and tests: ``table`` (the funnel shown), ``routes`` (the
    :class:`~cxlab.paths.EscapeRoutes` shown) and ``latency``.
    """

    def __init__(self, data, *, journey=None, alpha: float = 0.05, breakdowns=None):
        import ipywidgets as w

        from ._engine import as_table

        self.journey = jm = JourneyMap.coerce(journey)
        self.events = as_table(data)
        self.alpha = alpha
        self._cache: OrderedDict = OrderedDict()
        self.latency = float("nan")
        if self._no_events():
            return
        if breakdowns is None:
            breakdowns = [c for c in ("channel", "device", "segment") if c in self.events.columns]
        present = set(self.events.select("touchpoint").distinct().to_pandas()["touchpoint"])
        tps = [x for x in jm.touchpoints if x in present] + sorted(present - set(jm.touchpoints))
        self.steps = w.TagsInput(value=list(jm.funnel), allowed_tags=tps, allow_duplicates=False,
                                 layout=w.Layout(width="100%"))
        win = _window_label(jm.conversion_window)
        options = _WINDOWS if any(v == win for _, v in _WINDOWS) else _WINDOWS + [(_dur(win), win)]
        self.window = w.Dropdown(options=options, value=win, description="Window", layout=w.Layout(width="220px"))
        self.order = w.ToggleButtons(options=[("closed", "closed"), ("open", "open"), ("any order", "any")],
                                     value="closed", description="Order",
                                     tooltips=["each step after the previous, within the window from step 1",
                                               "a step counts when reached in order, entering at any step",
                                               "all steps in any order within the window"],
                                     style={"button_width": "90px"})
        self.breakdown = w.Dropdown(options=[("none", "")] + [(c, c) for c in breakdowns], value="",
                                    description="Break down", layout=w.Layout(width="220px"))
        self.escape_step = w.Dropdown(description="Escape routes of", style={"description_width": "initial"},
                                      layout=w.Layout(width="320px"))
        self.table_html = w.HTML()
        self.routes_html = w.HTML()
        title = w.HTML(_CSS + "<div class='cx-root'><div class='cx-title'>Funnel explorer</div><div class='cx-sub'>"
                       "Type or pick the steps in order; change the window, the order rule or the breakdown. "
                       "Rates carry 95% Wilson intervals.</div></div>")
        self.widget = w.VBox([title, w.HTML("<div class='cx-h'>Steps</div>"), self.steps,
                              w.HBox([self.window, self.breakdown]), self.order, self.table_html,
                              w.HTML("<div class='cx-h'>Escape routes: who leaves a step, after what</div>"),
                              self.escape_step, self.routes_html])
        for c in (self.steps, self.window, self.order, self.breakdown):
            c.observe(self._on_change, "value")
        self.escape_step.observe(self._on_escape, "value")
        self._busy = False
        self.update()

    def _no_events(self) -> bool:
        """A workspace without journey events (voice-only, empty): the page is its title and one
        line saying what is missing, and ``table`` and ``routes`` are None."""
        from .explore import _count

        if _count(self.events) > 0:
            return False
        import ipywidgets as w

        self.table = self.routes = None
        self.widget = w.VBox([w.HTML(_CSS + "<div class='cx-root'><div class='cx-title'>Funnel explorer</div></div>"),
                              w.HTML("<div class='cx-root'>" + _missing(NO_EVENTS_FUNNEL) + "</div>")])
        return True

    def _params(self):
        win = None if self.window.value == "none" else self.window.value
        return tuple(self.steps.value), win, self.order.value, self.breakdown.value or None

    def _cached(self, key, compute):
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        value = compute()
        self._cache[key] = value
        if len(self._cache) > 128:
            self._cache.popitem(last=False)
        return value

    def _on_change(self, change):
        if not self._busy:
            self.update()

    def _on_escape(self, change):
        if not self._busy:
            self._update_routes()

    def update(self) -> None:
        """Recompute the funnel (cached per setting) and the escape routes."""
        from .funnel import funnel

        t0 = time.perf_counter()
        steps, win, order, by = self._params()
        if len(steps) < 2:
            self.table = None
            self.table_html.value = _empty("A funnel needs at least two steps: add touchpoints above.")
            self.routes_html.value = ""
            self.latency = time.perf_counter() - t0
            return
        try:
            self.table = self._cached(("funnel", steps, win, order, by),
                                      lambda: funnel(self.events, journey=self.journey, steps=list(steps),
                                                     window=win, order=order, by=by, alpha=self.alpha))
        except ValueError as err:
            self.table = None
            self.table_html.value = _empty(str(err))
            self.latency = time.perf_counter() - t0
            return
        self.table_html.value = self._table_html(self.table, by)
        choices = [s for s in steps[:-1] if s in self.journey.funnel[:-1]]
        self._busy = True
        try:
            self.escape_step.options = choices
            if choices and self.escape_step.value not in choices:
                self.escape_step.value = choices[0]
        finally:
            self._busy = False
        self._update_routes()
        self.latency = time.perf_counter() - t0

    def _update_routes(self) -> None:
        from .paths import escape_routes

        step = self.escape_step.value
        _, win, _, _ = self._params()
        if not step:
            self.routes = None
            self.routes_html.value = _empty("Escape routes need a step of the journey map's funnel "
                                            f"({', '.join(self.journey.funnel[:-1])}) among the steps.")
            return
        window = win if win is not None else self.journey.conversion_window
        self.routes = self._cached(("routes", step, window),
                                   lambda: escape_routes(self.events, step=step, journey=self.journey,
                                                         window=window, alpha=self.alpha))
        self.routes_html.value = "<div class='cx-root'>" + self.routes._repr_html_().replace(
            "<table", "<table class='cx'").replace('class="dataframe"', "") + "</div>"

    def _table_html(self, table: pd.DataFrame, by) -> str:
        rows = []
        for r in table.itertuples(index=False):
            width = 0 if pd.isna(r.rate) else round(200 * r.rate)
            level = f"<td>{escape(str(getattr(r, by)))}</td>" if by else ""
            rows.append(f"<tr>{level}<td>{r.step}. {escape(self.journey.label(r.touchpoint))}</td>"
                        f"<td>{escape(str(r.moment))}</td>"
                        f"<td class='n'>{r.n:,}</td><td><span class='cx-bar' style='width:{width}px'></span> "
                        f"{_pct(r.rate, 1)} <span class='cx-note'>({_pct(r.ci_low, 1)}–{_pct(r.ci_high, 1)})"
                        f"</span></td><td class='n'>{_pct(r.step_rate, 1)}</td><td class='n'>{r.dropped:,}</td>"
                        f"<td class='n'>{_dur(r.p50)}</td></tr>")
        head = (f"<tr>{'<th>' + escape(by) + '</th>' if by else ''}<th>Step</th><th>Moment</th><th>Customers</th>"
                "<th>From step 1 (95% CI)</th><th>From previous</th><th>Dropped</th><th>Median time to step</th></tr>")
        return "<div class='cx-root'><table class='cx'>" + head + "".join(rows) + "</table></div>"

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _dur(td) -> str:
    """A duration for people: ``45 s``, ``2 min 13 s``, ``3 h 5 min``, ``7 days``, ``2 days 4 h``."""
    if td is None or pd.isna(td):
        return "–"
    secs = int(round(abs(pd.Timedelta(td).total_seconds())))
    d, rest = divmod(secs, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{d} day{'s' if d > 1 else ''}" + (f" {h} h" if h else "")
    if h:
        return f"{h} h" + (f" {m} min" if m else "")
    if m:
        return f"{m} min" + (f" {sec} s" if sec else "")
    return f"{sec} s"
