"""The brief on top of every report and of the reports index: one screen a CX manager reads
in 30 seconds.

A :class:`Brief` holds what the screen says, already in people's words: the period, the
headline KPIs against an earlier figure (a change is called only when
:func:`cxlab.reports.compare_with_previous` says so), one or two key findings, the top
items by what they put at risk, and one recommendation. Business labels come from the
journey map (``labels:``), percentages are %, money carries the map's currency and no cents.

- :func:`behaviour_brief` from a :class:`cxlab.behaviour_report.BehaviourReport`;
- :func:`voice_brief` from the voice report's KPIs and pain-point table;
- :func:`previous_metrics` finds what to compare with: the run's own previous period when
  the report computed one (``metrics["previous_period"]``), else the latest earlier run of
  the same report in the reports folder;
- :meth:`Brief.to_html` renders it (Jinja2, autoescaped), in the report and in the index,
  from :meth:`Brief.to_dict` as stored in ``metrics.json`` under ``"brief"``.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from .quality import format_pct

__all__ = ["Brief", "behaviour_brief", "voice_brief", "pull_brief", "previous_metrics", "render_brief", "describe_period"]

_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_TEMPLATE = """\
<section class="cx-brief" style="border:1px solid #d0d7de;border-radius:8px;padding:.8rem 1rem;margin:.6rem 0 1.2rem;
max-width:1100px;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;line-height:1.45">
<h2 style="margin:0 0 .2rem;font-size:1.25rem;border:0">{{ b.title }}: in brief</h2>
<p style="margin:0 0 .6rem;color:#555;font-size:.9rem">{{ b.period }}{% if b.compared_with %} · compared with {{ b.compared_with }}{% endif %}</p>
{% if b.kpis %}<table style="border-collapse:collapse;font-size:.92rem;margin:0 0 .6rem">
<thead><tr>{% for h in ["", "now", "based on", "before", "change"] %}<th style="text-align:{{ 'left' if loop.first else 'right' }};padding:.2rem .7rem;border-bottom:1px solid #ccc;background:#f6f8fa">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for k in b.kpis %}<tr{% if k.thin %} style="color:#8c959f" title="based on fewer than {{ thin_n }}: too few to judge"{% endif %}><td style="padding:.2rem .7rem;border-bottom:1px solid #eee;text-align:left">{{ k.label }}</td>
<td style="padding:.2rem .7rem;text-align:right;border-bottom:1px solid #eee;{% if not k.thin %}font-weight:600{% endif %}">{{ k.value }}</td>
<td style="padding:.2rem .7rem;text-align:right;border-bottom:1px solid #eee;color:#555">{{ k.based_on }}</td>
<td style="padding:.2rem .7rem;text-align:right;border-bottom:1px solid #eee;color:#555">{{ k.previous }}</td>
<td style="padding:.2rem .7rem;text-align:right;border-bottom:1px solid #eee;{% if k.tone == 'better' %}color:#1a7f37;font-weight:600{% elif k.tone == 'worse' %}color:#cf222e;font-weight:600{% elif k.verdict == 'changed' %}color:#b35c00;font-weight:600{% else %}color:#555{% endif %}">{{ k.change }}</td></tr>{% endfor %}</tbody></table>{% endif %}
{% if b.findings %}<ul style="margin:.2rem 0 .6rem 1.1rem;padding:0">{% for f in b.findings %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}
{% if b.items %}<table style="border-collapse:collapse;font-size:.92rem;margin:0 0 .6rem">
<caption style="text-align:left;font-weight:600;padding:.2rem 0">{{ b.items_title }}</caption>
<thead><tr>{% for h in b.item_columns %}<th style="text-align:{{ 'left' if loop.index0 < b.numeric_from else 'right' }};padding:.2rem .7rem;border-bottom:1px solid #ccc;background:#f6f8fa">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in b.items %}<tr>{% for v in row %}<td style="padding:.2rem .7rem;border-bottom:1px solid #eee;text-align:{{ 'left' if loop.index0 < b.numeric_from else 'right' }}">{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>{% endif %}
{% if b.recommendation %}<p style="margin:.4rem 0 0;padding:.5rem .7rem;background:#fff8e6;border-left:4px solid #e6a700"><strong>Recommendation:</strong> {{ b.recommendation }}</p>{% endif %}
</section>"""


@dataclass
class Brief:
    """One screen of a report, in people's words (all fields are display text).

    ``kpis``: ``{key, label, value, previous, change, verdict}`` dicts (``key``: the metric's
    name in ``metrics.json``); ``items``: rows of
    ``item_columns`` (text up to column ``numeric_from``, numbers after); ``findings``:
    sentences; ``recommendation``: one sentence.
    """

    title: str
    period: str
    compared_with: str = ""
    kpis: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    items_title: str = ""
    item_columns: list = field(default_factory=list)
    items: list = field(default_factory=list)
    recommendation: str = ""
    numeric_from: int = 2

    def to_dict(self) -> dict:
        """Plain data for ``metrics.json`` (the index renders it again)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Brief":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def to_html(self) -> str:
        return render_brief(self)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_text(self) -> str:
        lines = [f"{self.title}: in brief", self.period + (f" (compared with {self.compared_with})"
                                                            if self.compared_with else "")]
        lines += [f"  {k['label']}: {k['value']} (before {k['previous'] or '-'}; {k['change']})" for k in self.kpis]
        lines += [f"- {f}" for f in self.findings]
        lines += ["  " + " | ".join(str(v) for v in row) for row in self.items]
        if self.recommendation:
            lines.append(f"Recommendation: {self.recommendation}")
        return "\n".join(lines)


def render_brief(brief: Brief | dict) -> str:
    """The brief as an HTML fragment (inline styles, so it reads the same in a report and in
    the index); every value is escaped."""
    import jinja2

    b = brief if isinstance(brief, Brief) else Brief.from_dict(brief)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    b.kpis = [{"tone": "", "thin": False, "based_on": "", **k} for k in b.kpis]  # briefs of earlier versions
    return env.from_string(_TEMPLATE).render(b=b, thin_n=THIN_N)


# --------------------------------------------------------------------------- comparing
def previous_metrics(metrics: dict | None, *, metrics_path: str | Path | None, name: str
                     ) -> tuple[dict | None, str]:
    """What a run's headline numbers are compared with, and how to say it.

    The run's own previous period (``metrics["previous_period"]``, with ``metrics["period"]``
    describing it) when the report computed one: like with like. Else the latest run of
    report ``name`` on an earlier date in the reports folder holding ``metrics_path``
    (``<out>/.<name>-<date>-<random>/<name>.metrics.json`` while ``cxlab report`` runs it; a
    run on the same date is the one this run replaces). Else ``(None, "")``: a first run.
    """
    if metrics and metrics.get("previous_period"):
        per = metrics.get("period") or {}
        when = (f"the previous period ({_date_range(per.get('previous_start'), per.get('previous_end'))})"
                if per.get("previous_start") else "the previous period")
        return metrics["previous_period"], when
    if not metrics_path:
        return None, ""
    here = Path(metrics_path).resolve().parent
    out = here.parent
    if not out.is_dir():
        return None, ""
    m = re.match(rf"^\.{re.escape(name)}-(\d{{4}}-\d{{2}}-\d{{2}})-", here.name)
    today = m.group(1) if m else "9999-99-99"
    days = (p for p in out.iterdir() if p.is_dir() and _DATE_DIR.match(p.name) and p.name < today)
    for day in sorted(days, reverse=True):
        f = day / f"{name}.metrics.json"
        if f.exists():
            try:
                return json.loads(f.read_text(encoding="utf-8")), f"the run of {_date(day.name)}"
            except (OSError, ValueError):
                continue
    return None, ""


def describe_period(events=None, feedback: pd.DataFrame | None = None) -> str:
    """"Events from 4 Jan 2026 to 30 Jun 2026; feedback from ..." from the data's timestamps."""
    from ._engine import as_table

    parts = []
    if events is not None:
        t = as_table(events)
        r = t.aggregate(a=t.ts.min(), b=t.ts.max(), n=t.count()).to_pandas().iloc[0]
        if int(r["n"]):
            parts.append(f"events from {_date(r['a'])} to {_date(r['b'])}")
    if feedback is not None and len(feedback) and "ts" in feedback.columns and feedback["ts"].notna().any():
        parts.append(f"feedback from {_date(feedback['ts'].min())} to {_date(feedback['ts'].max())}")
    text = "; ".join(parts) or "no data"
    return text[0].upper() + text[1:]


def _date(d) -> str:
    """2026-06-30 -> "30 Jun 2026"."""
    if d is None or (not isinstance(d, str) and pd.isna(d)):
        return ""
    return pd.Timestamp(d).strftime("%-d %b %Y")


def _date_range(a, b) -> str:
    return f"{_date(a)} to {_date(b)}" if a is not None and b is not None else ""


def _fmt_stat(v, unit: str, currency: str | None) -> str:
    from .voice_report import _format

    return _format(v, unit, currency)


#: which way is better for each headline KPI the reports write (metric key -> +1: higher is
#: better, -1: lower is better); a KPI not listed gets no "better"/"worse" word
BETTER = {"nps": 1, "csat_top2_box": 1, "stars_top2_box": 1, "ces_easy_share": 1, "conversion": 1,
          "repurchase": 1, "upsell": 1, "care_first_response_hours": -1, "care_resolution_hours": -1,
          "channel_switching": -1, "cost_to_serve": -1, "leave_rate_worst_step": -1}

#: a KPI figure based on fewer answers or customers than this is shown greyed, "too few to judge"
THIN_N = 30


def direction_word(key: str, difference) -> str:
    """"better", "worse" or "" (no direction known, or no difference) for a KPI's change."""
    sign = BETTER.get(key)
    if sign is None or difference is None or pd.isna(difference) or difference == 0:
        return ""
    return "better" if sign * difference > 0 else "worse"


def _kpi_rows(current: dict, previous: dict | None, specs: list[tuple[str, str, str]], *, currency,
              alpha: float, thin_n: int = THIN_N) -> list[dict]:
    """``specs``: (metric key, label, unit). One row per metric present in ``current``.

    A row's ``tone`` is ``"better"``/``"worse"`` (see :data:`BETTER`) only for a real change;
    ``thin`` is True when the figure rests on fewer than ``thin_n`` answers or customers (then
    no change is called); ``based_on`` is that count."""
    from .reports import compare_with_previous

    cmp = {}
    if previous:
        table = compare_with_previous({k: current[k] for k, _, _ in specs if k in current},
                                      {k: previous[k] for k, _, _ in specs if k in previous}, alpha=alpha)
        cmp = {r["metric"]: r for r in table.to_dict("records")}
    rows = []
    for key, label, unit in specs:
        if key not in current or not isinstance(current[key], dict) or current[key].get("value") is None:
            continue
        now = current[key]["value"]
        n = current[key].get("n")
        thin = n is not None and n < thin_n
        r = cmp.get(key)
        prev = "" if r is None or r["previous"] is None else _fmt_stat(r["previous"], unit, currency)
        tone = ""
        if not previous:
            change, verdict = "first run", ""
        elif r is None or r["previous"] is None:
            change, verdict = "no earlier figure", ""
        else:
            diff = r["difference"]
            d = (f"{100 * diff:+.1f} pts" if unit == "share" else
                 f"{diff:+.0f}" if unit == "points" else
                 ("+" if diff > 0 else "-" if diff < 0 else "") + _fmt_stat(abs(diff), unit, currency))
            verdict = r["verdict"]
            if verdict == "changed":
                tone = direction_word(key, diff)
                change = f"{d}, {tone} (a real change)" if tone else f"{d}, a real change"
            elif verdict == "within noise" and str(r.get("reason", "")).startswith("n below"):
                change = f"{d}, too few to tell ({r['reason']})"
            elif verdict == "within noise":
                change = f"{d}, within noise"
            else:
                change = f"{d}, not tested"
        if thin:
            change = f"too few to judge (fewer than {thin_n})"
            verdict, tone = "", ""
        rows.append({"key": key, "label": label, "value": _fmt_stat(now, unit, currency), "previous": prev,
                     "change": change, "verdict": verdict, "tone": tone, "thin": bool(thin),
                     "based_on": f"{int(n):,}" if n is not None else ""})
    return rows


# --------------------------------------------------------------------------- behaviour
def behaviour_brief(report, *, metrics: dict, previous: dict | None = None, compared_with: str = "",
                    value_per_customer: float | None = None, period: str = "") -> Brief:
    """The funnel report's brief: conversion and the worst step's leave rate against an
    earlier figure, the steps that lose most customers (with their value at the mean order
    value when orders have values), the strongest association with leaving, and where to
    start.

    Parameters
    ----------
    report : BehaviourReport
    metrics : dict
        ``report.metrics()``.
    previous, compared_with
        From :func:`previous_metrics`.
    value_per_customer : float, optional
        Mean order value (:func:`cxlab.painpoints.mean_order_value`); None: customers only.
    period : str
        How the report names its data's period (e.g. "events from 1 Jan 2026 to 30 Jun 2026").
    """
    from .behaviour_report import readable_duration

    jm = report.journey
    cur = jm.currency
    b = Brief(title="Funnel and drop-off", period=period, compared_with=compared_with)
    if report.note:
        b.findings = [report.note]
        return b
    conv_label = f"Conversion ({jm.label(jm.funnel[0])} to {jm.label(jm.funnel[-1])})"
    specs = [("conversion", conv_label, "share")]
    if report.worst is not None:
        specs.append(("leave_rate_worst_step", f"Leaving after {jm.label(report.worst)}", "share"))
    b.kpis = _kpi_rows(metrics, previous, specs, currency=cur, alpha=report.alpha)
    first, last = report.funnel.iloc[0], report.funnel.iloc[-1]
    b.findings.append(f"{int(first['n']):,} customers started at {jm.label(first['touchpoint'])}; "
                      f"{int(last['n']):,} ({format_pct(last['rate'])}) reached {jm.label(last['touchpoint'])} "
                      f"within {readable_duration(report.window)}.")
    esc = report.escapes.sort_values("left", ascending=False)
    money = value_per_customer is not None
    b.items_title = "Where customers leave the funnel"
    b.item_columns = ["step", "next step", "customers reached", "left", "leave rate"] + (
        [f"worth ({cur})" if cur else "worth"] if money else [])
    for r in esc.head(3).itertuples():
        row = [jm.label(r.step), jm.label(r.next_step), f"{int(r.reached):,}", f"{int(r.left):,}",
               format_pct(r.leave_rate, digits=0)]
        if money:
            row.append(f"{value_per_customer * r.left:,.0f}")
        b.items.append(row)
    if report.worst is not None:
        w = report.escapes.set_index("step").loc[report.worst]
        worth = (f", worth {_money(value_per_customer * w['left'], cur)} at the mean order value" if money else "")
        b.findings.append(f"The step that loses most customers is {jm.label(report.worst)}: {int(w['left']):,} of "
                          f"{int(w['reached']):,} ({format_pct(w['leave_rate'], digits=0)}) did not go on to "
                          f"{jm.label(w['next_step'])}{worth}.")
    top = report.strongest(touchpoints_only=True)
    if top is not None:
        what = str(top["what"])
        b.findings.append(f"{what}: {top['odds ratio of leaving']:.1f} times the odds of leaving ({report.level} "
                          f"interval {top['CI low']:.1f} to {top['CI high']:.1f}); an association in the data, "
                          "not a tested cause.")
        b.recommendation = (f"Start with {what}: it goes most surely with leaving; test a change there (an A/B "
                            "test) and watch the leave rate of that step.")
    elif report.worst is not None:
        b.recommendation = (f"Start with {jm.label(report.worst)}: most customers are lost there; look at what its "
                            "leavers did last (below) for the cause.")
    return b


def _money(x, cur) -> str:
    from .voice_report import format_money

    return format_money(x, cur)


# --------------------------------------------------------------------------- voice
def voice_brief(summary, table: pd.DataFrame | None, journey, *, metrics: dict, previous: dict | None = None,
                compared_with: str = "", alpha: float = 0.05, period: str = "", top: int = 3) -> Brief:
    """The voice report's brief: the KPIs the data answers against an earlier figure, the
    top items on the one priority scale (pain points and behaviour-only issues together, by
    money at risk), and where to start.

    Parameters
    ----------
    summary : KpiSummary
        :func:`cxlab.voice_report.answerable_kpis`.
    table : DataFrame or None
        :func:`cxlab.painpoints.pain_points` (None when there is no data for it).
    journey : JourneyMap
    metrics : dict
        What the report writes to ``metrics.json`` (the KPIs under their keys).
    """
    from .voice_report import _has_value, _short_moment, format_money, pain_point_headline

    cur = journey.currency
    b = Brief(title="Voice, pain points and KPIs", period=period, compared_with=compared_with, numeric_from=3)
    units = dict(zip(summary.table["key"], summary.table["unit"])) if len(summary.table) else {}
    labels = dict(zip(summary.table["key"], summary.table["KPI"])) if len(summary.table) else {}
    b.kpis = _kpi_rows(metrics, previous, [(k, labels[k], units[k]) for k in labels], currency=cur, alpha=alpha)
    if summary.absent:
        b.findings.append(f"{len(summary.absent)} KPI(s) this data cannot answer (listed in the KPI section).")
    if table is None or not len(table):
        b.findings.insert(0, "No events and no feedback: no pain points.")
        return b
    ranked = table.sort_values("rank")
    flagged = ranked[ranked["flag"] != ""]
    money = _has_value(table)
    b.items_title = "Top priorities (pain points and silent drop-off, ranked by what they put at risk)"
    b.item_columns = ["#", "touchpoint", "evidence", "customers lost"] + (
        [f"money at risk ({cur})" if cur else "money at risk"] if money else [])
    for r in flagged.head(top).itertuples():
        row = [str(int(r.rank)), f"{journey.label(r.touchpoint)} ({_short_moment(journey, r.moment)})",
               _EVIDENCE.get(r.flag, r.flag),
               f"{r.customers_lost:,.0f}" if pd.notna(r.customers_lost) else "not measured"]
        if money:
            row.append(f"{r.value_at_risk:,.0f}" if pd.notna(r.value_at_risk) else "not measured")
        b.items.append(row)
    head = pain_point_headline(table, journey).replace("**", "")
    b.findings.insert(0, head)
    if len(flagged):
        r = flagged.iloc[0]
        risk = ""
        if pd.notna(r["customers_lost"]) and r["customers_lost"] > 0:
            risk = f" ({r['customers_lost']:,.0f} customers" + (
                f", {format_money(r['value_at_risk'], cur)} at risk)" if money else ")")
        what = {"behaviour": "find out why customers leave there though they do not complain (a short exit "
                             "survey, session recordings) and test a change",
                "voice": "read its complaints below and fix what they name",
                "voice and behaviour": "fix what its complaints name, then check that fewer customers leave "
                                       "after it"}.get(r["flag"], "look at it first")
        b.recommendation = f"Start with {journey.label(r['touchpoint'])}{risk}: {what}."
    return b


_EVIDENCE = {"voice and behaviour": "complaints and drop-off", "behaviour": "drop-off, no complaints",
             "voice": "complaints"}


# --------------------------------------------------------------------------- pull
def pull_brief(pulls, summary: pd.DataFrame, touchpoints: pd.DataFrame | None = None) -> Brief:
    """The pull report's brief: what this run pulled (file names, rows read, added,
    skipped), what the workspace now holds and for when, what to fix before the analyses.

    Parameters
    ----------
    pulls : list of PullResult
    summary : DataFrame
        :func:`cxlab.quality.quality_summary`.
    touchpoints : DataFrame, optional
        :func:`cxlab.quality.touchpoint_table` (``in_map``, ``events``).
    """
    b = Brief(title="Pull and data quality", period="", numeric_from=2)
    by = summary.set_index("table")
    spans = []
    for name in ("events", "feedback"):
        if name in by.index and pd.notna(by.loc[name, "rows"]) and int(by.loc[name, "rows"]):
            r = by.loc[name]
            spans.append(f"{name} from {_date(r['first_ts'])} to {_date(r['last_ts'])}")
    b.period = ("The workspace now holds " + "; ".join(spans)) if spans else "The workspace holds no data yet"
    b.items_title = "This run"
    b.item_columns = ["file", "kind", "rows read", "added", "duplicates skipped", "other"]
    for p in pulls:
        other = []
        if p.status == "already_loaded":
            other.append("already pulled: nothing read")
        if p.conflicts_skipped:
            other.append(f"{p.conflicts_skipped:,} with a known key and other content")
        if p.rows_removed:
            other.append(f"replaced an earlier load ({p.rows_removed:,} rows removed)")
        b.items.append([Path(str(p.source)).name, p.kind, f"{p.rows_read:,}", f"{p.rows_added:,}",
                        f"{p.duplicates_skipped:,}", "; ".join(other)])
    for name in ("events", "feedback"):
        if name in by.index and pd.notna(by.loc[name, "rows"]) and int(by.loc[name, "rows"]):
            r = by.loc[name]
            cust = f" from {int(r['customers']):,} customers" if pd.notna(r.get("customers")) else ""
            line = f"{int(r['rows']):,} {'events' if name == 'events' else 'pieces of feedback'}{cust}"
            if pd.notna(r.get("days")) and pd.notna(r.get("active_days")) and int(r["active_days"]) < int(r["days"]):
                line += (f"; {int(r['days']) - int(r['active_days']):,} of {int(r['days']):,} days have none "
                         "(gaps in the export, or quiet days)")
            b.findings.append(line + ".")
    todo = []
    if touchpoints is not None and len(touchpoints) and "in_map" in touchpoints.columns:
        unknown = touchpoints[~touchpoints["in_map"].astype(bool)]
        if len(unknown):
            share = unknown["events"].sum() / max(touchpoints["events"].sum(), 1)
            b.findings.append(f"{len(unknown)} touchpoint(s) in the data are not in the journey map "
                              f"({unknown['events'].sum():,} events, {format_pct(share)}).")
            todo.append("add the touchpoints the map does not know to journey.yml (or fix the export)")
    notes = [n for p in pulls for n in p.notes]
    if notes:
        b.findings.append(f"{len(notes)} note(s) on how times were read (see below).")
    if sum(p.conflicts_skipped for p in pulls):
        todo.append("pull a corrected export with --replace if the rows with known keys and other content "
                    "are corrections")
    b.recommendation = ("Before the analyses: " + "; ".join(todo) + "." if todo
                        else "The data is ready for the analyses (funnel and drop-off, voice and KPIs).")
    return b
