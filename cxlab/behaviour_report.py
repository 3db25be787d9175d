"""The behaviour report (``notebooks/reports/funnel_dropoff.ipynb``): what it examines.

Everything the report looks at is chosen from the journey map and the data, so the same
notebook reads a web shop, a loan application log or a subscription journey:

* **escape routes** of every funnel step but the last (:func:`cxlab.paths.escape_summary`),
  the table led by the step that loses most customers (most leavers; ties: the earlier
  step); that step, or the one asked for, is examined in detail
  (:func:`cxlab.paths.escape_routes`);
* **exposures** of the drop-off model: the map's ``exposures:`` when it gives them, else
  :func:`cxlab.painpoints.exposure_candidates` (the touchpoints outside the funnel in the
  moments up to the conversion), keeping those present in the data;
* **where an exposure acts**: one term per exposure and funnel step at which its link with
  leaving can be estimated (:func:`cxlab.painpoints.estimable_exposures`, the rule
  :func:`cxlab.painpoints.pain_points` uses). There is no general rule for *the* step where
  a touchpoint matters; this one keeps the steps where an odds ratio exists and drops those
  where it cannot (a form only met by customers who already chose to go on);
* **covariates**: ``channel`` when the attempts start on more than one channel, else none.

:func:`behaviour_report` computes it all and returns a :class:`BehaviourReport` whose
methods give the report's tables with business labels (``journey.label``) and its
``metrics.json`` numbers. An events table that is empty, or a funnel nobody enters, is a
report of one line, not an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._engine import as_table
from .exceptions import did_you_mean
from .journey import JourneyMap, _format_duration, parse_duration
from .painpoints import MAX_LOG_SE, independent_terms, separated_terms  # noqa: F401 - part of this module's API
from .quality import format_pct, short_duration

__all__ = [
    "BehaviourReport",
    "behaviour_report",
    "check_escape_step",
    "headline_numbers",
    "choose_covariates",
    "choose_exposures",
    "independent_terms",
    "readable_duration",
    "worst_step",
]


def _pct(v) -> str:
    return format_pct(v, missing="–")


def readable_duration(td: pd.Timedelta) -> str:
    """``"7 days"``, ``"48 hours"``, ``"45 minutes"``; else the short form (``"1d 6h"``)."""
    secs = int(pd.Timedelta(td).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs and secs % size == 0:
            n = secs // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return short_duration(td)


def check_escape_step(step: str, journey: JourneyMap) -> str:
    """``step`` when it is a funnel step other than the last; ``""`` passes through."""
    if not step:
        return ""
    funnel = list(journey.funnel)
    if step not in funnel:
        raise ValueError(f"escape_step={step!r} is not a step of the funnel {' > '.join(funnel)}"
                         + did_you_mean(str(step), funnel))
    if step == funnel[-1]:
        raise ValueError(f"escape_step={step!r} is the last funnel step: nobody leaves it for a next step; "
                         f"choose one of {funnel[:-1]} or leave it empty for the step that loses most")
    return step


def choose_exposures(events, *, journey: JourneyMap, window=None) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The drop-off model's exposures and the funnel steps where each is examined.

    Parameters
    ----------
    events : Workspace, Ibis table or DataFrame
    journey : JourneyMap
    window : duration, optional
        Attempt length (default: the map's conversion window).

    Returns
    -------
    (terms, left_out)
        ``terms``: ``{exposure: [steps]}`` (see the module docstring); ``left_out``:
        ``{exposure: reason}`` for the candidates not examined.
    """
    from .painpoints import estimable_exposures, exposure_candidates

    t = as_table(events)
    candidates = list(journey.exposures) or exposure_candidates(journey)
    seen = set(t.filter(t.touchpoint.isin(candidates)).select("touchpoint").distinct()
               .to_pandas()["touchpoint"].astype(str)) if candidates else set()
    present = [x for x in candidates if x in seen]
    terms = estimable_exposures(t, journey=journey, exposures=present, window=window) if present else {}
    left_out = {x: "not in the data" for x in candidates if x not in seen}
    left_out.update({x: "not estimable at any step (never seen during an attempt, or seen only by "
                        "customers who all left or all went on)" for x in present if x not in terms})
    return terms, left_out


def choose_covariates(events, *, journey: JourneyMap) -> list[str]:
    """``["channel"]`` when the funnel's first step is met on more than one channel, else ``[]``."""
    t = as_table(events)
    if "channel" not in t.columns:
        return []
    first = t.filter(t.touchpoint == journey.funnel[0])
    n = first.select(first.channel.fill_null("unknown").name("c")).distinct().count().to_pandas()
    return ["channel"] if int(n) > 1 else []


def worst_step(escapes: pd.DataFrame) -> str | None:
    """The step with most leavers (ties: the earlier funnel step); None when nobody left."""
    if escapes.empty or escapes["left"].max() <= 0:
        return None
    return str(escapes.sort_values(["left", "position"], ascending=[False, True]).iloc[0]["step"])


@dataclass(frozen=True, eq=False)
class BehaviourReport:
    """What the behaviour report shows; built by :func:`behaviour_report`.

    Attributes
    ----------
    journey, window, alpha
        The map, the conversion window (Timedelta) and 1 - confidence level used.
    note : str or None
        One line when there is nothing to analyse (no events, nobody entered the funnel).
    funnel, moments : DataFrame or None
        :func:`cxlab.funnel.funnel` and :func:`cxlab.funnel.funnel_by_moment`.
    routes : dict
        ``{focus: EscapeRoutes}``: the full escape routes of the step examined in detail.
    escapes : DataFrame
        One row per funnel step but the last (:func:`cxlab.paths.escape_summary`, plus
        ``position`` in the funnel), most leavers first.
    worst : str or None
        The step that loses most customers; ``focus`` the one examined in detail (``worst``
        unless a step was asked for).
    covariates, exposures, left_out
        What the drop-off model adjusts for, examines (``{exposure: steps}``) and left out
        (``{exposure: reason}``).
    model : DropoffResult or None
    """

    journey: JourneyMap
    window: pd.Timedelta
    alpha: float
    note: str | None = None
    funnel: pd.DataFrame | None = None
    moments: pd.DataFrame | None = None
    routes: dict = field(default_factory=dict)
    escapes: pd.DataFrame | None = None
    worst: str | None = None
    focus: str | None = None
    covariates: tuple = ()
    exposures: dict = field(default_factory=dict)
    left_out: dict = field(default_factory=dict)
    model: object | None = None

    # ------------------------------------------------------------------ prose
    @property
    def level(self) -> str:
        return f"{1 - self.alpha:.0%}"

    def label(self, touchpoint) -> str:
        return self.journey.label(str(touchpoint))

    def headline(self) -> str:
        """Two or three sentences (Markdown): entrants, conversion, the step that loses most."""
        if self.note:
            return self.note
        first, last = self.funnel.iloc[0], self.funnel.iloc[-1]
        text = (f"**{int(first['n']):,} customers started at {self.label(first['touchpoint'])}; "
                f"{int(last['n']):,} reached {self.label(last['touchpoint'])} within "
                f"{readable_duration(self.window)} ({_pct(last['rate'])}, {self.level} CI "
                f"{_pct(last['ci_low'])} to {_pct(last['ci_high'])}).**")
        if self.worst is not None:
            w = self.escapes.set_index("step").loc[self.worst]
            text += (f" The step that loses most customers is **{self.label(self.worst)}**: "
                     f"{int(w['left']):,} of {int(w['reached']):,} ({_pct(w['leave_rate'])}) did not go on to "
                     f"{self.label(w['next_step'])}.")
        return text

    def focus_heading(self) -> str:
        """The heading of the detailed escape routes (Markdown)."""
        why = "the step that loses most customers" if self.focus == self.worst else "the step asked for"
        return f"### Leaving at {self.label(self.focus)} ({why})"

    def model_note(self) -> str:
        """One line on what the drop-off model examines and what it left out."""
        parts = []
        if self.exposures:
            parts.append("Touchpoints examined: " + ", ".join(
                f"{self.label(x)} (at {', '.join(self.label(s) for s in steps)})"
                for x, steps in self.exposures.items()) + ".")
        else:
            parts.append("No touchpoint outside the funnel can be examined in this data.")
        parts.append("Adjusted for the channel." if self.covariates else
                     "Not adjusted for the channel: the funnel is entered on one channel only.")
        strongest = self.strongest()
        if strongest is not None:
            parts.append(f"Clearest link with leaving: **{strongest['what']}**, odds of leaving "
                         f"×{strongest['odds ratio of leaving']:.2f} ({self.level} CI {strongest['CI low']:.2f} "
                         f"to {strongest['CI high']:.2f}).")
        by_reason = {}
        for x, why in self.left_out.items():
            by_reason.setdefault(why, []).append(self.label(x))
        for why, names in by_reason.items():
            parts.append(f"Left out, {why}: {', '.join(names)}.")
        return " ".join(parts)

    # ------------------------------------------------------------------ tables
    def funnel_table(self) -> pd.DataFrame:
        f = self.funnel
        return pd.DataFrame({
            "step": f["step"], "touchpoint": f["touchpoint"].map(self.label), "customers": f["n"],
            "share of entrants": f["rate"], "CI low": f["ci_low"], "CI high": f["ci_high"],
            "share of previous step": f["step_rate"], "lost since previous": f["dropped"],
            "median time": f["p50"], "90% reached within": f["p90"]})

    def moments_table(self) -> pd.DataFrame:
        m = self.moments
        return pd.DataFrame({
            "step": m["step"], "moment": [self.journey.moment(x).label for x in m["moment"]],
            "customers": m["n"], "share of entrants": m["rate"], "CI low": m["ci_low"], "CI high": m["ci_high"],
            "share of previous moment": m["step_rate"], "lost since previous": m["dropped"]})

    def escape_table(self) -> pd.DataFrame:
        e = self.escapes
        return pd.DataFrame({
            "step": e["step"].map(self.label), "next step": e["next_step"].map(self.label),
            "reached": e["reached"], "left": e["left"], "leave rate": e["leave_rate"],
            "CI low": e["ci_low"], "CI high": e["ci_high"],
            "median time to next step": e["median_time_to_next"]})

    def last_touchpoints(self) -> pd.DataFrame:
        lt = self.routes[self.focus].last_touchpoints
        out = pd.DataFrame({"last touchpoint": lt["touchpoint"].map(self.label), "channel": lt["channel"],
                            "leavers": lt["n"], "share of leavers": lt["share"]})
        real = out["channel"][out["channel"] != ""]
        return out.drop(columns="channel") if real.nunique() <= 1 else out   # one channel says nothing

    def lift(self) -> pd.DataFrame:
        li = self.routes[self.focus].lift
        return pd.DataFrame({"touchpoint": li["touchpoint"].map(self.label), "leavers who saw it": li["n_leavers"],
                             "share of leavers": li["share_leavers"], "share of those who went on":
                             li["share_continuers"], "lift": li["lift"].replace(np.inf, np.nan),
                             "q_value": li["q_value"]})

    def odds_table(self) -> pd.DataFrame:
        """The model's odds ratios with readable names (baselines left out)."""
        s = self.model.summary()
        s = s[s["kind"] != "baseline"]
        return pd.DataFrame({"what": [self._term_label(r) for r in s.itertuples()],
                             "odds ratio of leaving": s["odds_ratio"], "CI low": s["ci_low"],
                             "CI high": s["ci_high"], "q_value": s["q_value"]})

    def strongest(self, *, touchpoints_only: bool = False) -> pd.Series | None:
        """The clearest link with leaving: among the rows of :meth:`odds_table` significant
        (q below ``alpha``) and above 1, the one whose interval's lower end is highest (the
        odds ratio the data most surely put far above 1); None when there is none.
        ``touchpoints_only``: leave out the covariates (a channel is not something to fix)."""
        if self.model is None:
            return None
        odds = self.odds_table()
        if touchpoints_only:
            kinds = self.model.summary().query("kind != 'baseline'")["kind"].to_numpy()
            odds = odds[kinds != "covariate"]
        sig = odds[(odds["q_value"] < self.alpha) & (odds["odds ratio of leaving"] > 1)]
        return None if sig.empty else sig.loc[sig["CI low"].idxmax()]

    def plot_funnel(self, ax=None):
        """:func:`cxlab.funnel.plot_funnel` with the touchpoints' business labels (returns the Axes)."""
        from .funnel import plot_funnel

        return plot_funnel(self.funnel.assign(touchpoint=self.funnel["touchpoint"].map(self.label)), ax=ax)

    def plot_odds(self, ax=None):
        """The model's forest plot, terms named as in :meth:`odds_table` (returns the Axes)."""
        from matplotlib.ticker import FixedLocator

        ax = self.model.plot(ax=ax)
        odds = self.odds_table()
        ax.set_yticklabels(odds["what"].tolist())
        lo, hi = float(odds["CI low"].min()), float(odds["CI high"].max())
        if max(hi, 1) / min(lo, 1) > 8:   # a wide range: fewer ticks, so their labels do not overlap
            ax.xaxis.set_major_locator(FixedLocator(
                [t for t in (0.01, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if min(lo, 1) / 1.3 <= t <= max(hi, 1) * 1.3]))
        ax.set_title("What goes with leaving")
        return ax

    def _term_label(self, r) -> str:
        if r.kind == "covariate":
            return f"{r.variable.capitalize()}: {r.level} (vs {r.reference})"
        if r.kind == "interaction":
            return f"{self.label(r.variable)}, leaving at {self.label(r.level)}"
        return self.label(r.variable)

    # ------------------------------------------------------------------ metrics
    def period_rows(self) -> list[tuple[str, str, str]]:
        """The rows of the page's "this period against the previous" table: ``(key, label,
        unit)`` for :func:`cxlab.periods.comparison_view`."""
        if self.funnel is None or self.note:
            return [("entrants", f"Customers who started at {self.label(self.journey.funnel[0])}", "count")]
        rows = [("entrants", f"Customers who started at {self.label(self.journey.funnel[0])}", "count"),
                ("conversion", f"Reached {self.label(self.journey.funnel[-1])} within "
                               f"{readable_duration(self.window)}", "share")]
        if self.worst is not None:
            w = self.escapes.set_index("step").loc[self.worst]
            rows.append(("leave_rate_worst_step", f"Left at {self.label(self.worst)} (did not go on to "
                                                  f"{self.label(w['next_step'])})", "share"))
        return rows

    def metrics(self) -> dict:
        """The numbers for ``metrics.json``.

        ``entrants``; ``conversion`` (value, CI, n, successes); ``reached`` (customers per
        funnel touchpoint); ``worst_step`` and ``leave_rate_worst_step`` (its escape-route
        leave rate with CI, n = reached, successes = left); ``leave_rate`` per step;
        ``odds_ratio`` per model term other than the baselines; ``details`` (tables).
        With nothing to analyse: ``entrants`` (0) and ``note``.
        """
        if self.funnel is None:
            return {"entrants": 0, "note": self.note}
        out = {"entrants": int(self.funnel["n"].iloc[0]), "window": _format_duration(self.window),
               "reached": dict(zip(self.funnel["touchpoint"], self.funnel["n"].astype(int)))}
        if self.note:
            out["note"] = self.note
            return out
        out["conversion"] = _conversion(self.funnel)
        rates = _leave_rates(self.escapes)
        out["worst_step"] = self.worst
        if self.worst is not None:
            out["leave_rate_worst_step"] = rates[self.worst]
        out["leave_rate"] = rates
        out["exposures"] = {x: list(s) for x, s in self.exposures.items()}
        out["covariates"] = list(self.covariates)
        if self.model is not None:
            terms = self.model.to_dict()["terms"]
            out["odds_ratio"] = {k: {"value": t["odds_ratio"], "ci_low": t["ci_low"], "ci_high": t["ci_high"]}
                                 for k, t in terms.items() if not k.startswith("step[")}
        out["details"] = {
            "funnel": self.funnel[["step", "touchpoint", "n", "rate", "ci_low", "ci_high"]],
            "funnel_by_moment": self.moments[["step", "moment", "n", "rate", "ci_low", "ci_high"]],
            "escape_routes": self.routes[self.focus].to_dict(),
            "dropoff": None if self.model is None else self.model.to_dict(),
        }
        return out


def _conversion(steps: pd.DataFrame) -> dict:
    first, last = steps.iloc[0], steps.iloc[-1]
    return {"value": last["rate"], "ci_low": last["ci_low"], "ci_high": last["ci_high"],
            "n": int(first["n"]), "successes": int(last["n"])}


def _leave_rates(escapes: pd.DataFrame) -> dict:
    """``{step: {value, ci_low, ci_high, n, successes}}`` in funnel order."""
    return {r.step: {"value": r.leave_rate, "ci_low": r.ci_low, "ci_high": r.ci_high, "n": int(r.reached),
                     "successes": int(r.left)}
            for r in escapes.sort_values("position").itertuples()}


def headline_numbers(events, *, journey=None, window=None, alpha: float = 0.05, worst=None) -> dict:
    """The report's headline metrics on ``events`` alone, without the drop-off model: what
    the previous period of a report needs (:mod:`cxlab.periods`).

    Parameters
    ----------
    events : Workspace, Ibis table or DataFrame
        Typically :meth:`cxlab.periods.Period.filter` of the previous period.
    journey, window, alpha
        As in :func:`behaviour_report`.
    worst : str, optional
        The step whose leave rate is ``leave_rate_worst_step`` (give the current period's
        worst step, so the two periods compare the same step); default: this data's own.

    Returns
    -------
    dict
        The keys of :meth:`BehaviourReport.metrics` that :func:`cxlab.reports.headline_metrics`
        reads, in the same shapes: ``entrants``, ``reached``, ``conversion``, ``worst_step``,
        ``leave_rate_worst_step``, ``leave_rate``; ``entrants`` 0 and ``note`` when nobody
        entered the funnel.
    """
    from .funnel import funnel
    from .paths import escape_summary

    jm = JourneyMap.coerce(journey)
    td = jm.conversion_window if window in (None, "") else parse_duration(window, key="window")
    t = as_table(events)
    if int(t.count().to_pandas()) == 0:
        return {"entrants": 0, "note": "no events in this period"}
    steps = funnel(t, journey=jm, window=td, alpha=alpha)
    out = {"entrants": int(steps["n"].iloc[0]), "reached": dict(zip(steps["touchpoint"], steps["n"].astype(int)))}
    if out["entrants"] == 0:
        return {**out, "note": "nobody entered the funnel in this period"}
    escapes = pd.concat([escape_summary(t, step=s, journey=jm, window=td, alpha=alpha).assign(position=i)
                         for i, s in enumerate(jm.funnel[:-1])], ignore_index=True)
    rates = _leave_rates(escapes)
    worst = worst if worst in rates else worst_step(escapes)
    out["conversion"] = _conversion(steps)
    out["worst_step"] = worst
    if worst is not None:
        out["leave_rate_worst_step"] = rates[worst]
    out["leave_rate"] = rates
    return out


def behaviour_report(events, *, journey=None, window=None, alpha: float = 0.05,
                     escape_step: str = "") -> BehaviourReport:
    """Funnel, escape routes of every step and the drop-off model, chosen from the map and data.

    Parameters
    ----------
    events : Workspace, Ibis table or DataFrame
        Canonical events (possibly empty).
    journey : JourneyMap, path or None (the default map)
    window : duration, optional
        Conversion window (default: the map's ``conversion_window``); ``""`` counts as None.
    alpha : float
        1 - confidence level of the intervals and tests.
    escape_step : str
        The funnel step examined in detail; ``""`` (default) for the one that loses most.

    Returns
    -------
    BehaviourReport

    Raises
    ------
    ValueError
        ``escape_step`` not a funnel step (with a "did you mean" hint) or the last step; a
        window without a unit; ``alpha`` outside (0, 1).

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> rep = behaviour_report(simulate_journeys(1_000, seed=1).events)
    >>> rep.worst in rep.journey.funnel
    True
    """
    from .dropoff import DropoffModel
    from .funnel import funnel, funnel_by_moment
    from .paths import escape_routes, escape_summary

    if not 0 < float(alpha) < 1:
        raise ValueError(f"alpha={alpha!r} must be between 0 and 1 (e.g. 0.05)")
    jm = JourneyMap.coerce(journey)
    td = jm.conversion_window if window in (None, "") else parse_duration(window, key="window")
    step = check_escape_step(escape_step, jm)
    t = as_table(events)
    base = {"journey": jm, "window": td, "alpha": float(alpha)}
    if int(t.count().to_pandas()) == 0:
        return BehaviourReport(**base, note="No events in this period: the funnel and drop-off cannot be shown "
                                            "(pull an events export first).")
    steps = funnel(t, journey=jm, window=td, alpha=alpha)
    moments = funnel_by_moment(t, journey=jm, alpha=alpha)
    if int(steps["n"].iloc[0]) == 0:
        return BehaviourReport(**base, funnel=steps, moments=moments,
                               note=f"Nobody entered the funnel at {jm.label(jm.funnel[0])} in this period: "
                                    "no conversion or drop-off to show.")
    escapes = pd.concat([escape_summary(t, step=s, journey=jm, window=td, alpha=alpha).assign(position=i)
                         for i, s in enumerate(jm.funnel[:-1])], ignore_index=True)
    worst = worst_step(escapes)
    escapes = escapes.sort_values(["left", "position"], ascending=[False, True], ignore_index=True)
    focus = step or worst or jm.funnel[0]
    routes = {focus: escape_routes(t, step=focus, journey=jm, window=td, alpha=alpha)}
    terms, left_out = choose_exposures(t, journey=jm, window=td)
    covs = choose_covariates(t, journey=jm)
    terms, together = independent_terms(t, journey=jm, terms=terms, covariates=covs, window=td)
    left_out.update(together)
    model = None
    if terms or covs:
        model = DropoffModel(covariates=covs, exposures=list(terms), interactions=terms, alpha=alpha).fit(
            t, journey=jm, window=td)
        terms, separated = separated_terms(model, terms)
        if separated:
            left_out.update(separated)
            model = (DropoffModel(covariates=covs, exposures=list(terms), interactions=terms, alpha=alpha)
                     .fit(t, journey=jm, window=td) if terms or covs else None)
    return BehaviourReport(**base, funnel=steps, moments=moments, routes=routes, escapes=escapes, worst=worst,
                           focus=focus, covariates=tuple(covs), exposures=terms,
                           left_out=left_out, model=model)
