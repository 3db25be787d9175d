"""The logic of the ``voice_painpoints_kpis`` report: which KPIs a workspace can answer,
computed with :mod:`cxlab.kpis`, and the sections that need a kind of data the workspace
may not have (feedback, events, rated verbatims), each absent one named in one line.

>>> data = load(ws, journey=journey)                        # doctest: +SKIP
>>> kpi = answerable_kpis(data, journey=journey)            # doctest: +SKIP
>>> kpi.table, kpi.absent                                   # doctest: +SKIP

The notebook only displays what these functions return; ``metrics.json`` gets the same
numbers (:meth:`KpiSummary.metrics`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import kpis
from .journey import JourneyMap
from .quality import format_pct

__all__ = ["KpiSummary", "ReportData", "SentimentSection", "answerable_kpis", "circle_note", "circle_view", "cost_view",
           "fit_sentiment", "format_money", "format_pct", "kpi_view", "load", "pain_point_headline",
           "pain_point_metrics", "pain_point_view", "parse_costs", "period_table", "period_view", "relabel", "retention_table",
           "retention_view", "terms_note", "thin_note"]

#: fewest rated verbatims the sentiment section fits a model on
MIN_VERBATIMS = 50
#: fewest negative verbatims (with a touchpoint, in >= 2 touchpoints) for distinctive terms
MIN_NEGATIVE = 20
_SCALE_NAMES = {"nps": "NPS answers (0-10)", "csat": "CSAT answers", "stars": "star ratings",
                "ces": "CES answers"}


# --------------------------------------------------------------------------- data
@dataclass
class ReportData:
    """What the workspace holds for the report: the Ibis tables (None when that kind of
    data is absent), the feedback as pandas, and the touchpoints and channels seen."""

    events: object | None
    feedback: object | None
    feedback_df: pd.DataFrame | None
    touchpoints: set = field(default_factory=set)
    channels: int = 0

    @property
    def note(self) -> str | None:
        """One line when a kind of data is absent, else None."""
        if self.events is None and self.feedback is None:
            return "This workspace has neither events nor customer feedback: pull an export first (the pull report)."
        if self.feedback is None:
            return "No customer feedback in this workspace: the behaviour half of the report only."
        if self.events is None:
            return "No events in this workspace: the voice half of the report only."
        return None


def load(ws, *, period_end: str = "", period=None) -> ReportData:
    """The workspace's events and feedback in ``period`` (a :class:`cxlab.periods.Period`),
    or up to ``period_end`` (``YYYY-MM-DD``, inclusive; empty for all data), each None when
    the workspace has no rows of it."""
    events, feedback = ws.events(), ws.feedback()
    if period is None and period_end:
        from .periods import resolve_period

        period = resolve_period(period_end=period_end)
    if period is not None:
        events, feedback = period.filter(events), period.filter(feedback)
    events = events if int(events.count().execute()) else None
    feedback = feedback if int(feedback.count().execute()) else None
    tps, channels = set(), 0
    if events is not None:
        tps = set(events.select("touchpoint").distinct().execute()["touchpoint"].dropna())
        if "channel" in events.columns:
            channels = int(events.channel.nunique().execute())
    return ReportData(events, feedback, feedback.to_pandas() if feedback is not None else None, tps, channels)


# --------------------------------------------------------------------------- formats
def format_money(x, currency: str | None) -> str:
    """``1234.56, "CHF"`` -> ``"CHF 1,235"`` (no cents); blank for a missing value."""
    if x is None or pd.isna(x):
        return ""
    return f"{currency} {float(x):,.0f}" if currency else f"{float(x):,.0f}"


def _format(x, unit: str, currency: str | None) -> str:
    from .periods import format_value

    return format_value(x, unit, currency)


def parse_costs(touchpoint_costs, journey: JourneyMap) -> dict[str, float]:
    """The costs of the report: ``touchpoint_costs`` (``["touchpoint:cost", ...]``) when given,
    else the journey map's ``costs:``. A malformed item raises ValueError naming the
    parameter."""
    if not touchpoint_costs:
        return dict(journey.costs)
    out = {}
    for item in touchpoint_costs:
        name, sep, value = str(item).rpartition(":")
        try:
            cost = float(value)
        except ValueError:
            cost = None
        if not sep or not name or cost is None or not np.isfinite(cost) or cost < 0:
            raise ValueError(f"touchpoint_costs: {item!r} is not 'touchpoint:cost' with a cost >= 0")
        if name not in journey.touchpoints:
            raise ValueError(f"touchpoint_costs: {name!r} is not a touchpoint of the journey map")
        out[name] = cost
    return out


# --------------------------------------------------------------------------- KPIs
@dataclass
class KpiSummary:
    """The KPIs a workspace answers: ``table`` (one row each: ``key``, ``KPI``, ``value``,
    ``ci_low``, ``ci_high``, ``n``, ``unit``, ``se``, ``successes``), ``absent`` (one line
    per KPI it cannot answer), ``currency`` and the tables behind the headline figures
    (``details``: ``care``, ``retention``, ``cost_by_channel``, ``nps_by_period``)."""

    table: pd.DataFrame
    absent: list[str]
    currency: str | None = None
    details: dict = field(default_factory=dict)

    def period_rows(self) -> list[tuple[str, str, str]]:
        """``(key, KPI, unit)`` of every KPI, for :func:`cxlab.periods.comparison_view`."""
        return list(zip(self.table["key"], self.table["KPI"], self.table["unit"]))

    def metrics(self) -> dict:
        """``key -> {value, ci_low, ci_high, n[, se][, successes]}`` for ``metrics.json``."""
        out = {}
        for r in self.table.to_dict("records"):
            d = {k: (None if pd.isna(r[k]) else float(r[k])) for k in ("value", "ci_low", "ci_high")}
            d["n"] = int(r["n"])
            for k in ("se", "successes"):
                if pd.notna(r[k]):
                    d[k] = int(r[k]) if k == "successes" else float(r[k])
            if r["unit"] == "money":
                d["currency"] = self.currency
            out[r["key"]] = d
        return out


def _row(key, label, value, lo, hi, n, unit, *, se=np.nan, successes=np.nan) -> dict:
    return {"key": key, "KPI": label, "value": float(value), "ci_low": float(lo), "ci_high": float(hi),
            "n": int(n), "unit": unit, "se": float(se), "successes": float(successes)}


def _rate_row(key, label, r) -> dict:
    return _row(key, label, r["rate"], r["ci_low"], r["ci_high"], r["n"], "share", successes=r["successes"])


def _feedback_kpis(feedback, df: pd.DataFrame, alpha, rows, absent, details):
    scales = df["scale"].value_counts() if "scale" in df.columns else pd.Series({"nps": len(df)})
    has = {s: int(scales.get(s, 0)) > 0 for s in _SCALE_NAMES}
    if has["nps"]:
        r = kpis.nps(feedback, alpha=alpha).iloc[0]
        rows.append(_row("nps", "NPS", r["nps"], r["ci_low"], r["ci_high"], r["n"], "points", se=r["se"]))
    for scale, key, label in (("csat", "csat_top2_box", "CSAT (share scoring 4-5)"),
                              ("stars", "stars_top2_box", "Star rating (share of 4-5 stars)")):
        if has[scale]:
            t = kpis.csat(feedback, scale=scale, alpha=alpha)
            r = t[t["metric"] == "top2_box"].iloc[0]
            rows.append(_row(key, label, r["value"], r["ci_low"], r["ci_high"], r["n"], "share",
                             successes=r["successes"]))
    if has["ces"]:
        t = kpis.ces(feedback, alpha=alpha)
        r = t[t["metric"] == "easy_share"].iloc[0]
        rows.append(_row("ces_easy_share", "Effort (share finding it easy, CES 5-7)", r["value"], r["ci_low"],
                         r["ci_high"], r["n"], "share", successes=r["successes"]))
    absent += [f"No {name} in this workspace." for s, name in _SCALE_NAMES.items() if not has[s]]


def _care(data: ReportData, jm, alpha, rows, absent, details):
    roles = jm.roles
    contact, reply = roles.get("care_contact"), roles.get("care_reply")
    if not contact or not reply:
        absent.append("No care roles in the journey map (`roles: care_contact`, `care_reply`): "
                      "no care responsiveness or channel switching.")
        return
    if not data.touchpoints & set(contact) or not data.touchpoints & set(reply):
        absent.append(f"No {', '.join(jm.label(x) for x in contact)} / {', '.join(jm.label(x) for x in reply)} "
                      "events: no care responsiveness or channel switching.")
        return
    care = kpis.care_responsiveness(data.events, journey=jm, alpha=alpha)
    details["care"] = care
    hours = pd.Timedelta(hours=1)
    for r in care.to_dict("records"):
        if r["n_timed"] > 0:
            label = "Care: time to first reply (mean)" if r["metric"] == "first_response" else "Care: time to resolution (mean)"
            rows.append(_row(f"care_{r['metric']}_hours", label, r["mean"] / hours, r["ci_low"] / hours,
                             r["ci_high"] / hours, r["n_timed"], "hours", se=r["se"] / hours))
    if data.channels > 1:
        r = kpis.channel_switching(data.events, journey=jm, alpha=alpha).iloc[0]
        rows.append(_rate_row("channel_switching", "Care contacts repeated on another channel (7 days)", r))
    else:
        absent.append("One channel only: no channel switching.")


def _purchases(data: ReportData, jm, alpha, retention_periods, rows, absent, details):
    conv = jm.conversion
    if conv not in data.touchpoints:
        absent.append(f"No {jm.label(conv)} events: no conversion, repurchase, retention or upsell.")
        return
    if jm.funnel[0] in data.touchpoints:
        r = kpis.conversion_rate(data.events, journey=jm, alpha=alpha).iloc[0]
        rows.append(_rate_row("conversion", f"Conversion ({jm.label(jm.funnel[0])} to {jm.label(conv)})", r))
    else:
        absent.append(f"No {jm.label(jm.funnel[0])} events (the funnel's first step): no conversion rate.")
    r = kpis.repurchase_rate(data.events, journey=jm, alpha=alpha).iloc[0]
    if r["successes"] > 0:
        rows.append(_rate_row("repurchase", f"Repurchase (a second {jm.label(conv)})", r))
        details["retention"] = kpis.retention(data.events, journey=jm, periods=retention_periods, alpha=alpha)
    else:
        absent.append(f"No customer reached {jm.label(conv)} twice: no repurchase or retention.")
    upgrade = jm.roles.get("upgrade")
    if not upgrade:
        absent.append("No upgrade role in the journey map (`roles: upgrade`): no upsell rate.")
    elif "value" not in data.events.columns:
        absent.append("The events carry no order value: no upsell rate.")
    else:
        r = kpis.upsell_rate(data.events, journey=jm, alpha=alpha).iloc[0]
        rows.append(_rate_row("upsell", "Upsell (a larger order or an upgrade later)", r))


def _cost(data: ReportData, jm, costs, alpha, rows, absent, details):
    if not costs:
        absent.append("No costs in the journey map: add `costs:` (and `currency:`) or pass touchpoint_costs.")
        return
    present = {k: v for k, v in costs.items() if k in data.touchpoints}
    if not present:
        absent.append("None of the costed touchpoints occurs in the events: no cost to serve.")
        return
    r = kpis.cost_to_serve(data.events, costs=present, alpha=alpha).iloc[0]
    rows.append(_row("cost_to_serve", "Cost to serve per customer", r["value"], r["ci_low"], r["ci_high"],
                     r["n"], "money", se=r["se"]))
    if "channel" in data.events.columns:
        details["cost_by_channel"] = kpis.cost_to_serve(data.events, costs=present, breakdown="channel")


def answerable_kpis(data: ReportData, *, journey: JourneyMap, alpha: float = 0.05, touchpoint_costs=None,
                    retention_periods: int = 3, breakdown: str = "M") -> KpiSummary:
    """Every KPI the workspace can answer, computed with :mod:`cxlab.kpis`, and one line
    for each it cannot.

    NPS, CSAT, stars top-2 box and CES when the feedback has answers on that scale;
    conversion when the events have the map's first funnel step and conversion; repurchase
    and retention when a customer converts twice; upsell when the map has an ``upgrade``
    role and the events a ``value``; care responsiveness when the map has ``care_contact``
    and ``care_reply`` roles seen in the events, channel switching when there is more than
    one channel too; cost to serve when ``touchpoint_costs`` (``["touchpoint:cost"]``,
    overriding the map) or the map's ``costs:`` give costs, in the map's ``currency``.
    ``breakdown`` is the period of the NPS-by-period table (``W``, ``M``, ``Q``).

    Returns
    -------
    KpiSummary
    """
    jm = JourneyMap.coerce(journey)
    costs = parse_costs(touchpoint_costs, jm)
    rows, absent, details = [], [], {}
    if data.feedback is None:
        absent.append("No customer feedback in this workspace: no NPS, CSAT, stars or CES.")
    else:
        _feedback_kpis(data.feedback, data.feedback_df, alpha, rows, absent, details)
        if any(r["key"] == "nps" for r in rows):
            details["nps_by_period"] = kpis.nps(data.feedback, period=breakdown, alpha=alpha, compare_periods=True)
    if data.events is None:
        absent.append("No events in this workspace: no conversion, care, cost, repurchase or upsell KPIs.")
    else:
        _purchases(data, jm, alpha, retention_periods, rows, absent, details)
        _care(data, jm, alpha, rows, absent, details)
        _cost(data, jm, costs, alpha, rows, absent, details)
    table = pd.DataFrame(rows, columns=["key", "KPI", "value", "ci_low", "ci_high", "n", "unit", "se",
                                        "successes"])
    return KpiSummary(table, absent, jm.currency, details)


def kpi_view(summary: KpiSummary, *, alpha: float = 0.05) -> pd.DataFrame:
    """The KPI table as a CX manager reads it: formatted value, interval and base."""
    cur = summary.currency
    t = summary.table
    return pd.DataFrame({
        "KPI": t["KPI"],
        "value": [_format(v, u, cur) for v, u in zip(t["value"], t["unit"])],
        f"{1 - alpha:.0%} interval": [f"{_format(lo, u, cur)} to {_format(hi, u, cur)}"
                                      for lo, hi, u in zip(t["ci_low"], t["ci_high"], t["unit"])],
        "based on": [f"{int(n):,}" for n in t["n"]]})


# --------------------------------------------------------------------------- sentiment
@dataclass
class SentimentSection:
    """The fitted model (None when skipped), its cross-validated quality, and ``note``:
    why it was skipped or could not be judged (None when all is well)."""

    model: object | None
    quality: object | None
    note: str | None
    n: int = 0


def fit_sentiment(feedback_df: pd.DataFrame | None, *, folds: int = 5,
                  min_verbatims: int = MIN_VERBATIMS) -> SentimentSection:
    """A :class:`cxlab.sentiment.SentimentModel` fitted on the rated verbatims and its
    ``folds``-fold quality, or the reason it is skipped: no feedback, fewer than
    ``min_verbatims`` rated verbatims, a single class, or a class with fewer texts than
    folds (then the model is fitted but its quality is not judged). A quality that cannot be
    believed (too few distinct texts of a class, one class nearly everywhere, mostly repeated
    texts: :meth:`cxlab.sentiment.FittedSentiment.evaluate`'s ``note``) is not reported as a
    number: ``quality`` is None and ``note`` says why."""
    from .sentiment import SentimentModel, labels_from_scores

    if feedback_df is None or not len(feedback_df):
        return SentimentSection(None, None, "No customer feedback: no sentiment model.")
    if not {"text", "score", "scale"} <= set(feedback_df.columns):
        return SentimentSection(None, None, "The feedback has no rated verbatims (text and score): no sentiment model.")
    text = feedback_df["text"].astype(object)
    ok = text.notna() & (text.astype(str).str.strip() != "") & feedback_df["score"].notna() & feedback_df["scale"].notna()
    rated = feedback_df[ok]
    classes = labels_from_scores(rated["score"].to_numpy(), rated["scale"].to_numpy()).value_counts()
    if len(rated) < min_verbatims or len(classes) < 2:
        why = (f"only {len(rated):,} rated verbatims (at least {min_verbatims} needed)" if len(rated) < min_verbatims
               else f"every rated verbatim is {classes.index[0]}")
        return SentimentSection(None, None, f"Sentiment model skipped: {why}.", len(rated))
    model = SentimentModel().fit(rated)
    if classes.min() < folds:
        return SentimentSection(model, None, f"Model quality not judged: the {classes.idxmin()} class has only "
                                f"{classes.min()} verbatims, fewer than the {folds} cross-validation folds.", len(rated))
    try:
        quality = model.evaluate(cv=folds)
    except ValueError as err:                   # fewer distinct texts of a class than folds
        return SentimentSection(model, None, f"Model quality not judged: {err}.", len(rated))
    if quality.note:
        return SentimentSection(model, None, f"Model quality not judged: {quality.note}.", len(rated))
    return SentimentSection(model, quality, None, len(rated))


def terms_note(feedback_df: pd.DataFrame | None, *, min_negative: int = MIN_NEGATIVE) -> str | None:
    """Why the distinctive-terms section is skipped (None when it can run)."""
    from .io import in_score_class

    if feedback_df is None or not {"text", "score", "scale", "touchpoint"} <= set(feedback_df.columns):
        return "No rated verbatims with a touchpoint: no distinctive terms."
    negative = np.asarray(in_score_class(feedback_df["score"], feedback_df["scale"], "negative"), dtype=bool)
    neg = feedback_df[negative & feedback_df["text"].notna().to_numpy() & feedback_df["touchpoint"].notna().to_numpy()]
    if len(neg) < min_negative or neg["touchpoint"].nunique() < 2:
        return (f"Distinctive terms skipped: {len(neg):,} negative verbatims in {neg['touchpoint'].nunique()} "
                f"touchpoint(s); at least {min_negative} in two touchpoints are needed.")
    return None


# --------------------------------------------------------------------------- pain points
def relabel(table: pd.DataFrame, journey: JourneyMap, *, column: str = "touchpoint") -> pd.DataFrame:
    """A copy of ``table`` with ``column`` in business labels (for plots and pages)."""
    out = table.copy()
    out[column] = [journey.label(x) for x in out[column]]
    out.attrs = dict(table.attrs)
    return out


def _has_value(table: pd.DataFrame) -> bool:
    return table.attrs.get("value_per_customer", 1.0) != 1.0


def _short_moment(journey: JourneyMap, moment_id: str) -> str:
    """The moment's label without its parenthesis ("First moment of truth (offer...)" ->
    "First moment of truth")."""
    return journey.moment(moment_id).label.split(" (")[0]


def pain_point_view(table: pd.DataFrame, journey: JourneyMap, *, voice: bool, behaviour: bool,
                    top: int = 12) -> pd.DataFrame:
    """The pain-point table in rank order with business labels, rates as % and money with
    the map's currency; only the voice or the behaviour columns when only that half of the
    data exists."""
    t = table.sort_values("rank").head(top)
    cur = journey.currency
    out = pd.DataFrame({"rank": t["rank"].to_numpy(),
                        "moment": [_short_moment(journey, m) for m in t["moment"]],
                        "touchpoint": [journey.label(x) for x in t["touchpoint"]]})
    if behaviour:
        out["customers reached"] = t["reached"].to_numpy()
    if voice:
        out["answers"] = t["feedback"].astype("int64").to_numpy()
        out["score (0-100)"] = [f"{x:.0f}" if pd.notna(x) else "" for x in t["score_mean"]]
        out["vs rest of journey"] = [f"{x:+.0f}" if pd.notna(x) else "" for x in t["score_diff"]]
        out["negative"] = [format_pct(x, digits=0) for x in t["share_negative"]]
    if behaviour:
        out["left after it"] = [format_pct(x, digits=0) for x in t["left_after"]]
        out["odds of leaving"] = [f"x{x:.2f}" if pd.notna(x) else "" for x in t["dropoff_or"]]
        out["customers lost"] = [f"{x:,.0f}" if pd.notna(x) else "" for x in t["customers_lost"]]
        if _has_value(table):
            out[f"money at risk ({cur})" if cur else "money at risk"] = [
                f"{x:,.0f}" if pd.notna(x) else "" for x in t["value_at_risk"]]
    out["evidence"] = t["flag"].to_numpy()
    return out


def _at_stake(r, table: pd.DataFrame, journey: JourneyMap) -> str:
    """"460 customers lost, EUR 32,967 at risk" (customers only when there is no order value)."""
    lost = f"{r['customers_lost']:,.0f} customers lost"
    return lost + (f", {format_money(r['value_at_risk'], journey.currency)} at risk" if _has_value(table) else "")


def pain_point_headline(table: pd.DataFrame, journey: JourneyMap) -> str:
    """The first priority in labels, in the order of the table and the priority matrix (one
    scale: customers lost and money at risk, whatever the evidence), then how many pain
    points and behaviour-only issues there are."""
    ranked = table.sort_values("rank")
    flagged = ranked[ranked["flag"] != ""]
    if flagged.empty:
        return "**No touchpoint is significantly worse than the rest of the journey at this alpha.**"
    top = flagged.iloc[0]
    where = f"{journey.label(top['touchpoint'])} ({_short_moment(journey, top['moment'])})"
    said = []
    if top["flag"] in ("voice", "voice and behaviour") and pd.notna(top["score_mean"]):
        said.append(f"rated {top['score_mean']:.0f} of 100 against {table.attrs['baseline_score']:.0f} for the "
                    "rest of the journey")
    elif top["flag"] in ("voice", "voice and behaviour"):
        said.append("its feedback reads significantly more negative than elsewhere")
    if pd.notna(top["customers_lost"]) and top["customers_lost"] > 0:
        s = (f"**First priority: {where}: {_at_stake(top, table, journey)}; customers who meet it have "
             f"{top['dropoff_or']:.1f} times the odds of leaving")
        s += f", and it is {said[0]}" if said else ", though nobody complains about it"
    else:
        s = f"**First priority: {where}, {said[0] if said else 'flagged'}; its effect on leaving is not measured"
    s += ".**"
    n_pain = int(table["pain_point"].sum())
    n_beh = int((table["flag"] == "behaviour").sum())
    parts = []
    if n_pain:
        parts.append(f"{n_pain} pain point(s) in the customers' voice")
    if n_beh:
        parts.append(f"{n_beh} touchpoint(s) where customers leave without complaining")
    return s + (" " + " and ".join(parts) + ", ranked together below by what they put at risk." if parts else "")


# --------------------------------------------------------------------------- circle
_CIRCLE = {"reach_umot": "Customers who share their experience",
           "umot_negative": "Shared feedback that is negative",
           "return_to_zmot_fmot": "Sharers who come back to research or buy",
           "repurchase_after_umot": "Sharers who buy again"}


def circle_view(circle: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """The circular journey with readable measures, rates as % and their interval; a
    measure with no base (no feedback at the sharing touchpoints) is left out."""
    circle = circle[circle["base"] > 0]
    return pd.DataFrame({
        "measure": [_CIRCLE.get(m, m) for m in circle["measure"]],
        "customers": [f"{int(n):,} of {int(b):,}" for n, b in zip(circle["n"], circle["base"])],
        "rate": [format_pct(x) for x in circle["rate"]],
        f"{1 - alpha:.0%} interval": [f"{format_pct(lo)} to {format_pct(hi)}" if pd.notna(lo) else ""
                                      for lo, hi in zip(circle["ci_low"], circle["ci_high"])]})


def circle_note(data: ReportData, journey: JourneyMap) -> str | None:
    """Why the circular journey is skipped (None when it can run): it needs events and a
    ``UMOT`` moment (sharing the experience) in the map."""
    if data.events is None:
        return "No events: no circular journey."
    if "UMOT" not in journey.moment_ids:
        return "The journey map has no UMOT moment (customers sharing their experience): no circular journey."
    return None


def pain_point_metrics(table: pd.DataFrame | None) -> dict:
    """The pain-point keys of ``metrics.json``: ``pain_points`` (in rank order),
    ``top_pain_point`` (empty when none), ``behaviour_issues`` (behaviour-only flags) and
    ``top_priority``: the first flagged touchpoint on the one priority scale, whatever its
    evidence (what the headline names)."""
    if table is None:
        return {"pain_points": [], "top_pain_point": "", "behaviour_issues": [], "top_priority": ""}
    ranked = table.sort_values("rank")
    pains = [str(x) for x in ranked.loc[ranked["pain_point"], "touchpoint"]]
    flagged = ranked.loc[ranked["flag"] != "", "touchpoint"]
    return {"pain_points": pains, "top_pain_point": pains[0] if pains else "",
            "top_priority": str(flagged.iloc[0]) if len(flagged) else "",
            "behaviour_issues": [str(x) for x in ranked.loc[ranked["flag"] == "behaviour", "touchpoint"]]}


#: fewest answers (or customers) for a cell of a by-period table to be judged; thinner cells are greyed out
MIN_N = 30


def period_view(changes: pd.DataFrame, *, breakdown: str = "M", min_n: int = MIN_N) -> pd.DataFrame:
    """NPS by period against the previous period (:func:`cxlab.kpis.nps` with
    ``compare_periods=True``): periods as months (or weeks, quarters...), a verdict per change;
    a period with fewer than ``min_n`` answers is marked and not judged (:func:`period_table`
    greys it out)."""
    def verdict(r):
        if r["n"] < min_n or r["previous_n"] < min_n:
            return f"too few answers (< {min_n})"
        return ("up" if r["diff"] > 0 else "down") if r["significant"] else "within noise"

    return pd.DataFrame({
        "period": pd.to_datetime(changes["period"]).dt.strftime(
            {"M": "%Y-%m", "Y": "%Y"}.get(kpis.PERIODS.get(breakdown.upper(), "D"), "%Y-%m-%d")).to_numpy(),
        "NPS": [f"{x:+.0f}" for x in changes["value"]],
        "previous": [f"{x:+.0f}" for x in changes["previous_value"]],
        "change": [f"{x:+.0f}" if pd.notna(x) else "" for x in changes["diff"]],
        "answers": [f"{int(n):,}" for n in changes["n"]],
        "verdict": [verdict(r) for r in changes.to_dict("records")]})


def thin_note(min_n: int = MIN_N, *, what: str = "answers") -> str:
    """The page's one line on thin cells."""
    return f"Greyed out: fewer than {min_n} {what}, too few to judge."


def period_table(changes: pd.DataFrame, *, breakdown: str = "M", min_n: int = MIN_N, caption: str | None = None):
    """:func:`period_view` as a Styler, the periods with fewer than ``min_n`` answers greyed
    out (a change from or to such a period is not judged); the caption says the threshold."""
    from .quality import mute_rows, style_table

    view = period_view(changes, breakdown=breakdown, min_n=min_n)
    thin = changes["n"] < min_n
    note = thin_note(min_n) if thin.any() else None
    caption = " · ".join(x for x in (caption, note) if x) or None
    return mute_rows(style_table(view, caption=caption, right=["NPS", "previous", "change", "answers"],
                                 max_rows=None), thin.to_numpy())


def cost_view(summary: KpiSummary) -> pd.DataFrame:
    """Where the cost to serve goes, by channel: events, cost in the map's currency (no
    cents) and share of the total."""
    t = summary.details["cost_by_channel"]
    return pd.DataFrame({"channel": t["channel"].to_numpy(), "events": [f"{int(n):,}" for n in t["events"]],
                         "cost": [format_money(x, summary.currency) for x in t["cost"]],
                         "share": [format_pct(x) for x in t["share"]]})


def retention_view(retention: pd.DataFrame) -> pd.DataFrame:
    """Retention cohorts as rows (with their size), ``period k`` (k >= 1) as columns, rates
    as %; blank where the period has not been observed yet."""
    r = retention[retention["period_index"] > 0]
    wide = r.pivot(index="cohort", columns="period_index", values="rate")
    size = retention.groupby("cohort")["n"].max().reindex(wide.index)
    out = pd.DataFrame({"first purchase": pd.to_datetime(wide.index).strftime("%Y-%m"),
                        "customers": [f"{int(n):,}" for n in size]})
    for k in wide.columns:
        out[f"period {k}"] = [format_pct(x) for x in wide[k]]
    return out


def retention_table(retention: pd.DataFrame, *, min_n: int = MIN_N, caption: str | None = None):
    """:func:`retention_view` as a Styler, cohorts of fewer than ``min_n`` customers greyed out."""
    from .quality import mute_rows, style_table

    view = retention_view(retention)
    size = retention[retention["period_index"] > 0].groupby("cohort")["n"].max()
    thin = (size.reindex(sorted(size.index)) < min_n).to_numpy()
    note = thin_note(min_n, what="customers in the cohort") if thin.any() else None
    caption = " · ".join(x for x in (caption, note) if x) or None
    return mute_rows(style_table(view, caption=caption, right=list(view.columns[1:]), max_rows=None), thin)
