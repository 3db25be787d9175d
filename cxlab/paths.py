"""Paths through the journey: transitions, step matrices, Sankey links and escape routes.

Journeys are not linear funnels: customers loop, skip steps, switch channel and leave.
This module answers *where do people go next* and *where do the ones who leave go*:

* :func:`transitions` -- the first-order transition table (touchpoint -> next touchpoint)
  with probabilities and median time between the two contacts;
* :func:`step_matrix` -- the share of customers whose k-th contact is each touchpoint;
* :func:`sankey_data` -- the links of a Sankey (alluvial) diagram of the first contacts;
* :func:`escape_routes` -- for one funnel step, who leaves instead of reaching the next
  step, their last touchpoint, where they go instead, and which touchpoints leavers saw
  more often than continuers (lift with a two-proportion test and BH q-values).

All heavy work runs in the engine through Ibis (window functions ``lead`` and
``row_number`` over ``customer_id`` ordered by ``ts``, then aggregates); only aggregates
come back as pandas, so the same calls run on a DuckDB workspace, a DataFrame (in-memory
DuckDB) or a Spark workspace.

**Order of contacts.** A customer's events are ordered by ``ts``, then ``touchpoint``
(alphabetically), then ``channel`` when the column exists: two contacts with the same
timestamp are therefore always put in the same order, on every engine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._engine import EVENT_COLUMNS, as_table, check_columns, micros_between
from .exceptions import JourneyMapError, did_you_mean
from .journey import JourneyMap, _format_duration, parse_duration
from .stats import bh_qvalues, two_proportion_test, wilson_ci

END = "(end)"
OTHER = "(other)"
NOTHING = "(nothing)"

__all__ = ["transitions", "plot_transitions", "step_matrix", "plot_step_matrix", "sankey_data",
           "plot_sankey", "escape_routes", "escape_summary", "EscapeRoutes", "END", "OTHER", "NOTHING"]


# --------------------------------------------------------------------------- helpers
def _order(t) -> list[str]:
    """The order of a customer's contacts: ts, then touchpoint, then channel if present."""
    return ["ts", "touchpoint"] + (["channel"] if "channel" in t.columns else [])


def _with_channel(t):
    """``channel`` with nulls (or a missing column) as ``"unknown"``."""
    import ibis

    if "channel" not in t.columns:
        return t.mutate(channel=ibis.literal("unknown"))
    return t.mutate(channel=t.channel.fill_null("unknown"))


def _window(window, argument: str = "window") -> pd.Timedelta:
    try:
        td = parse_duration(window, key=argument)
    except JourneyMapError as exc:
        raise ValueError(f"{argument}={window!r} is not a duration with a unit; write e.g. "
                         "'30min', '12h' or '7D' (a bare number could be days or seconds)") from exc
    if td < pd.Timedelta(seconds=1):
        raise ValueError(f"{argument}={window!r} must be at least one second")
    return td


def _positive_int(value, argument: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{argument}={value!r} must be an integer >= {minimum}")
    return int(value)


def _map_order(touchpoints, journey: JourneyMap) -> list[str]:
    """Touchpoints in journey-map order, then unknown ones alphabetically, then the
    pseudo-touchpoints ``(other)``, ``(nothing)`` and ``(end)``."""
    present = list(dict.fromkeys(str(x) for x in touchpoints))
    special = [s for s in (OTHER, NOTHING, END) if s in present]
    known = [tp for tp in journey.touchpoints if tp in present]
    unknown = sorted(tp for tp in present if tp not in journey.touchpoints and tp not in special)
    return known + unknown + special


def _timedelta_us(values) -> pd.Series:
    """Microseconds (float, NaN allowed) -> timedelta64[ns], rounded to the microsecond."""
    us = pd.Series(values, dtype="float64").round()
    return pd.to_timedelta(us, unit="us")


def _cell_label(v) -> str:
    """A heatmap cell's text: the share in whole %, blank below 1 % (after rounding)."""
    return f"{v:.0%}" if round(float(v) * 100) >= 1 else ""


def _color_ticklabels(labels, journey: JourneyMap) -> None:
    """Colour touchpoint tick labels by their moment of truth (grey when not in the map)."""
    from .quality import moment_palette

    palette = moment_palette(journey)
    owner = {tp: m.id for m in journey.moments for tp in m.touchpoints}
    for lab in labels:
        moment = owner.get(lab.get_text())
        lab.set_color(palette[moment] if moment else "0.35")


# --------------------------------------------------------------------------- transitions
def transitions(events, *, by=None, min_count: int = 1, session: bool = False) -> pd.DataFrame:
    """First-order transitions between consecutive contacts of a customer.

    Each event is paired with the customer's next event (``lead`` over ``customer_id``
    ordered by ``ts``, then ``touchpoint``, then ``channel``). The last event of a
    customer (of a session when ``session=True``) is paired with the pseudo-touchpoint
    ``"(end)"``, so the probabilities out of a touchpoint include leaving.

    Parameters
    ----------
    events : Workspace, Ibis table or DataFrame
        Canonical events (``customer_id``, ``ts``, ``touchpoint``; ``session_id`` when
        ``session=True``).
    by : str or list of str, optional
        Event columns to break down by (e.g. ``"channel"``, ``"device"``); the level is
        the one of the *source* event, and probabilities are computed within each level.
    min_count : int
        Drop pairs seen fewer than ``min_count`` times (after the probabilities are
        computed, so the remaining probabilities of a source keep their meaning).
    session : bool
        Pair events within a session (``session_id``) instead of across a customer's
        whole history; ``"(end)"`` then marks the end of a session.

    Returns
    -------
    DataFrame
        One row per ``by`` level, ``touchpoint`` and ``next_touchpoint``, sorted by
        ``by``, ``touchpoint``, descending ``n``, ``next_touchpoint``:

        - ``touchpoint`` (str): the source contact.
        - ``next_touchpoint`` (str): the customer's next contact, or ``"(end)"``.
        - ``n`` (int): number of transitions (pairs of consecutive events).
        - ``customers`` (int): distinct customers who made the transition at least once.
        - ``probability`` (float): ``n`` / all transitions out of ``touchpoint`` (including
          to ``"(end)"``) within the ``by`` level; sums to 1 per source before ``min_count``.
        - ``median_time`` (Timedelta): median time from the source to the next contact
          (exact median, interpolated between the two middle values); NaT for ``"(end)"``.

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> events, _, _ = simulate_journeys(500, seed=1)
    >>> tr = transitions(events)
    >>> bool(tr.groupby("touchpoint")["probability"].sum().round(6).eq(1).all())
    True
    """
    import ibis

    min_count = _positive_int(min_count, "min_count")
    required = EVENT_COLUMNS + (("session_id",) if session else ())
    t = as_table(events, required=required)
    by = check_columns(t, by, argument="by")
    for col in by:
        if col in ("customer_id", "ts", "touchpoint"):
            raise ValueError(f"by={col!r} cannot break down transitions; use a property such as "
                             "'channel' or 'device'")
    part = ["customer_id"] + (["session_id"] if session else [])
    w = ibis.window(group_by=part, order_by=_order(t))
    x = t.mutate(_next_tp=t.touchpoint.lead().over(w), _next_ts=t.ts.lead().over(w))
    x = x.mutate(next_touchpoint=x._next_tp.fill_null(END),
                 _gap_us=micros_between(x._next_ts, x.ts))
    keys = by + ["touchpoint", "next_touchpoint"]
    agg = (x.group_by(keys)
            .aggregate(n=x.count(), customers=x.customer_id.nunique(), _median_us=x._gap_us.median())
            .execute())
    cols = keys + ["n", "customers", "probability", "median_time"]
    if agg.empty:
        return pd.DataFrame({c: pd.Series(dtype="timedelta64[ns]" if c == "median_time" else
                                          "int64" if c in ("n", "customers") else
                                          "float64" if c == "probability" else "str")
                             for c in cols})
    agg = agg.astype({"n": "int64", "customers": "int64"})
    total = agg.groupby(by + ["touchpoint"], dropna=False, observed=True)["n"].transform("sum")
    agg["probability"] = agg["n"] / total
    agg["median_time"] = _timedelta_us(agg.pop("_median_us"))
    agg = agg[agg["n"] >= min_count]
    agg = agg.sort_values(by + ["touchpoint", "n", "next_touchpoint"],
                          ascending=[True] * (len(by) + 1) + [False, True], ignore_index=True)
    return agg[cols]


def plot_transitions(table: pd.DataFrame, ax=None, *, top: int = 15, journey=None,
                     annot: bool = True):
    """Heatmap of transition probabilities, touchpoints in journey-map order.

    Parameters
    ----------
    table : DataFrame
        What :func:`transitions` returned. ``by`` levels are pooled (probabilities are
        recomputed from the summed ``n``).
    ax : matplotlib Axes, optional
        Where to draw (a new figure sized to the matrix when None).
    top : int
        Keep the ``top`` source touchpoints with the most transitions; transitions to any
        other touchpoint are pooled in an ``"(other)"`` column, so each row still sums to 1.
    journey : JourneyMap or path, optional
        The map giving the order (default :meth:`JourneyMap.default`); touchpoints not in
        the map come after, then ``"(other)"`` and ``"(end)"``. Tick labels are coloured
        by moment of truth.
    annot : bool
        Write the probability (whole %) in each cell that rounds to at least 1 %.

    Returns
    -------
    matplotlib Axes
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    top = _positive_int(top, "top")
    jm = JourneyMap.coerce(journey)
    for col in ("touchpoint", "next_touchpoint", "n"):
        if col not in table.columns:
            raise ValueError(f"table has no column {col!r}: pass what cxlab.paths.transitions returned")
    pooled = table.groupby(["touchpoint", "next_touchpoint"], as_index=False, observed=True)["n"].sum()
    out_n = pooled.groupby("touchpoint")["n"].sum().sort_values(ascending=False, kind="stable")
    sources = _map_order(out_n.index[:top], jm)
    pooled = pooled[pooled["touchpoint"].isin(sources)].copy()
    keep = set(sources) | {END}
    pooled["next_touchpoint"] = pooled["next_touchpoint"].where(pooled["next_touchpoint"].isin(keep), OTHER)
    mat = pooled.pivot_table(index="touchpoint", columns="next_touchpoint", values="n",
                             aggfunc="sum", fill_value=0)
    targets = _map_order(list(mat.columns), jm)
    mat = mat.reindex(index=sources, columns=targets, fill_value=0)
    prob = mat.div(mat.sum(axis=1), axis=0)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.4 + 0.55 * len(targets), 1.2 + 0.42 * len(sources)))
    labels = prob.map(_cell_label) if annot else False
    sns.heatmap(prob, ax=ax, cmap="Blues", vmin=0, vmax=max(float(prob.to_numpy().max()), 1e-9),
                mask=prob.to_numpy() == 0, annot=labels, fmt="", annot_kws={"fontsize": 7},
                linewidths=0.5, linecolor="0.92", square=False,
                cbar_kws={"label": "P(next touchpoint | touchpoint)", "format": "{x:.0%}"})
    ax.set_xlabel("next touchpoint")
    ax.set_ylabel("touchpoint")
    ax.set_title("Where customers go next", loc="left", fontweight="bold")
    ax.tick_params(axis="x", labelrotation=90)
    ax.tick_params(axis="y", labelrotation=0)
    _color_ticklabels(ax.get_xticklabels(), jm)
    _color_ticklabels(ax.get_yticklabels(), jm)
    return ax


# --------------------------------------------------------------------------- step matrix
def _positions(t):
    """Events with ``_pos``: 1-based rank of the contact within its customer."""
    import ibis

    w = ibis.window(group_by="customer_id", order_by=_order(t))
    return t.mutate(_pos=ibis.row_number().over(w) + 1)


def _check_touchpoint(name, t, journey: JourneyMap, argument: str) -> None:
    """A touchpoint argument must be in the map or in the data (one small query)."""
    if name in journey.touchpoints:
        return
    seen = t.select("touchpoint").distinct().execute()["touchpoint"].astype(str).tolist()
    if name not in seen:
        raise ValueError(f"{argument}={name!r} is neither a touchpoint of the journey map nor one "
                         "seen in events" + did_you_mean(str(name), list(journey.touchpoints) + seen))


def step_matrix(events, *, max_steps: int = 10, journey=None, start: str | None = None) -> pd.DataFrame:
    """Share of customers whose k-th contact is each touchpoint.

    Contacts are counted from each customer's first event, or, with ``start``, from their
    first event on the ``start`` touchpoint (step 1 is then ``start`` itself; customers who
    never reach it are left out). A customer with fewer than k contacts is at ``"(end)"``
    in step k, so **every column sums to 1** (over the same cohort of customers).

    Parameters
    ----------
    events : Workspace, Ibis table or DataFrame
    max_steps : int
        Number of steps (columns), at least 1.
    journey : JourneyMap or path, optional
        Gives the row order (default :meth:`JourneyMap.default`).
    start : str, optional
        A touchpoint to align customers on (e.g. ``"home_page"``).

    Returns
    -------
    DataFrame
        Index ``touchpoint`` (map order, then touchpoints not in the map alphabetically,
        then ``"(end)"``; only touchpoints seen in the first ``max_steps`` steps), columns
        ``1 .. max_steps`` (named ``step``): the share of the cohort whose contact number
        ``step`` is that touchpoint. ``matrix.attrs["customers"]`` is the cohort size and
        ``matrix.attrs["start"]`` the ``start`` argument.

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> events, _, _ = simulate_journeys(500, seed=1)
    >>> m = step_matrix(events, max_steps=6, start="home_page")
    >>> bool(m.sum().round(9).eq(1).all()), m.loc["home_page", 1]
    (True, np.float64(1.0))
    """
    max_steps = _positive_int(max_steps, "max_steps")
    jm = JourneyMap.coerce(journey)
    t = as_table(events)
    x = _positions(t)
    if start is not None:
        _check_touchpoint(start, t, jm, "start")
        s = x.filter(x.touchpoint == start).group_by("customer_id").aggregate(_p0=x._pos.min())
        x = x.join(s, "customer_id")
        x = x.mutate(_k=x._pos - x._p0 + 1)
        x = x.filter(x._k >= 1)
    else:
        x = x.mutate(_k=x._pos)
    x = x.filter(x._k <= max_steps)
    counts = x.group_by(["_k", "touchpoint"]).aggregate(n=x.count()).execute()
    # every customer of the cohort has exactly one step 1 (their first contact, or their
    # first contact on ``start``): the cohort size without another pass over the events
    n_customers = int(counts.loc[counts["_k"] == 1, "n"].sum())
    steps = list(range(1, max_steps + 1))
    if n_customers == 0:
        mat = pd.DataFrame(index=pd.Index([], name="touchpoint", dtype="str"),
                           columns=pd.Index(steps, name="step"), dtype="float64")
    else:
        counts["touchpoint"] = counts["touchpoint"].astype(str)
        wide = counts.pivot_table(index="touchpoint", columns="_k", values="n", aggfunc="sum",
                                  fill_value=0).reindex(columns=steps, fill_value=0)
        wide.loc[END] = n_customers - wide.sum(axis=0)
        wide = wide.reindex(_map_order(wide.index, jm))
        if wide.loc[END].eq(0).all():
            wide = wide.drop(index=END)
        mat = (wide / n_customers).astype("float64")
        mat.index.name, mat.columns.name = "touchpoint", "step"
    mat.attrs["customers"] = n_customers
    mat.attrs["start"] = start
    return mat


def plot_step_matrix(matrix: pd.DataFrame, ax=None, *, journey=None, annot: bool = True):
    """Heatmap of a :func:`step_matrix` (share of customers per touchpoint and step).

    Cells of 0 are left blank; annotations show shares that round to at least 1 %.
    Tick labels are coloured by moment of truth. Returns the Axes.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    jm = JourneyMap.coerce(journey)
    if ax is None:
        _, ax = plt.subplots(figsize=(2.2 + 0.75 * matrix.shape[1], 1.2 + 0.36 * max(matrix.shape[0], 3)))
    labels = matrix.map(_cell_label) if annot else False
    sns.heatmap(matrix, ax=ax, cmap="Purples", vmin=0, vmax=1, mask=matrix.to_numpy() == 0,
                annot=labels, fmt="", annot_kws={"fontsize": 7}, linewidths=0.5, linecolor="0.92",
                cbar_kws={"label": "share of customers", "format": "{x:.0%}"})
    start = matrix.attrs.get("start")
    n = matrix.attrs.get("customers")
    title = "Contact number k of each customer" + (f", from their first {start}" if start else "")
    ax.set_title(title + (f" (n = {n:,})" if n else ""), loc="left", fontweight="bold", fontsize=10)
    ax.set_xlabel("step (k-th contact)")
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelrotation=0)
    ax.tick_params(axis="x", labelrotation=0)
    _color_ticklabels(ax.get_yticklabels(), jm)
    return ax


# --------------------------------------------------------------------------- Sankey
def sankey_data(events, *, max_steps: int = 5, journey=None, top: int = 8) -> pd.DataFrame:
    """Links of a Sankey diagram of each customer's first ``max_steps`` contacts.

    A link goes from a customer's contact number ``step`` to contact number ``step + 1``;
    a customer with exactly ``step`` contacts flows to ``"(end)"`` (and stops there).
    Touchpoints outside the ``top`` most frequent among the first ``max_steps`` contacts
    are grouped into ``"(other)"``.

    Parameters
    ----------
    events : Workspace, Ibis table or DataFrame
    max_steps : int
        Number of contacts drawn (at least 2): links for steps ``1 .. max_steps - 1``.
    journey : JourneyMap or path, optional
        Gives the order of the rows within a step (default :meth:`JourneyMap.default`).
    top : int
        Touchpoints kept by name.

    Returns
    -------
    DataFrame
        ``step`` (int, the source contact number; the target is ``step + 1``), ``source``,
        ``target`` (touchpoint, ``"(other)"`` or, for targets, ``"(end)"``) and ``n``
        (customers on that link). The ``n`` of step 1 sum to the number of customers.
    """
    import ibis

    max_steps = _positive_int(max_steps, "max_steps", minimum=2)
    top = _positive_int(top, "top")
    jm = JourneyMap.coerce(journey)
    t = as_table(events)
    w = ibis.window(group_by="customer_id", order_by=_order(t))
    x = t.mutate(_pos=ibis.row_number().over(w) + 1, _next=t.touchpoint.lead().over(w))
    x = x.filter(x._pos < max_steps)
    links = (x.group_by(["_pos", "touchpoint", x._next.fill_null(END).name("target")])
              .aggregate(n=x.count()).execute())
    links = links.rename(columns={"_pos": "step", "touchpoint": "source"})
    cols = ["step", "source", "target", "n"]
    if links.empty:
        return pd.DataFrame({"step": pd.Series(dtype="int64"), "source": pd.Series(dtype="str"),
                             "target": pd.Series(dtype="str"), "n": pd.Series(dtype="int64")})
    links = links.astype({"step": "int64", "n": "int64", "source": "str", "target": "str"})
    # volume of each touchpoint among the first max_steps contacts
    vol = links.groupby("source")["n"].sum()
    last = links[(links["step"] == max_steps - 1) & (links["target"] != END)].groupby("target")["n"].sum()
    vol = vol.add(last, fill_value=0).sort_values(ascending=False, kind="stable")
    keep = set(vol.index[:top]) | {END}
    for col in ("source", "target"):
        links[col] = links[col].where(links[col].isin(keep), OTHER)
    links = links.groupby(["step", "source", "target"], as_index=False)["n"].sum()
    rank = {tp: i for i, tp in enumerate(_map_order(set(links["source"]) | set(links["target"]), jm))}
    links = links.sort_values(["step", "source", "target"],
                              key=lambda s: s.map(rank) if s.name != "step" else s,
                              ignore_index=True)
    return links[cols]


def plot_sankey(links: pd.DataFrame, *, journey=None, title: str | None = None):
    """Draw :func:`sankey_data` links as a plotly Sankey figure (returns the Figure).

    Nodes are ``"k · touchpoint"`` (contact number k), coloured by moment of truth.

    Raises
    ------
    ImportError
        When plotly is not installed: ``pip install plotly`` (or ``conda install plotly``).
    """
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise ImportError("plot_sankey draws with plotly, which is not installed: "
                          "pip install plotly (or conda install -c conda-forge plotly); "
                          "sankey_data() works without it") from None
    from .quality import moment_palette

    jm = JourneyMap.coerce(journey)
    palette = moment_palette(jm)
    owner = {tp: m.id for m in jm.moments for tp in m.touchpoints}
    nodes: dict[tuple[int, str], int] = {}
    for row in links.itertuples():
        for key in ((int(row.step), row.source), (int(row.step) + 1, row.target)):
            nodes.setdefault(key, len(nodes))
    labels = [f"{k} · {tp}" for k, tp in nodes]
    colors = [palette.get(owner.get(tp), "#bbbbbb") for _, tp in nodes]
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node=dict(label=labels, color=colors, pad=12, thickness=14),
        link=dict(source=[nodes[(int(r.step), r.source)] for r in links.itertuples()],
                  target=[nodes[(int(r.step) + 1, r.target)] for r in links.itertuples()],
                  value=links["n"].tolist())))
    fig.update_layout(title=title or "First contacts of each customer", font_size=11)
    return fig


# --------------------------------------------------------------------------- escape routes
@dataclass(frozen=True)
class EscapeRoutes:
    """Who leaves a funnel step, how, and after what (see :func:`escape_routes`).

    Attributes
    ----------
    step, next_step : str
        The funnel step studied and the one after it.
    window : Timedelta
        Time allowed after reaching ``step`` to reach ``next_step``.
    since : str
        ``"previous"`` or ``"step"``: where the exposure period of ``lift`` starts.
    summary, last_touchpoints, next_instead, lift : DataFrame
        Described in :func:`escape_routes`.
    """

    step: str
    next_step: str
    window: pd.Timedelta
    since: str
    summary: pd.DataFrame
    last_touchpoints: pd.DataFrame
    next_instead: pd.DataFrame
    lift: pd.DataFrame

    def to_dict(self) -> dict:
        """Headline numbers for ``metrics.json``."""
        s = self.summary.iloc[0]
        flagged = self.lift[(self.lift["lift"] > 1) & (self.lift["q_value"] < 0.05)]
        return {"step": self.step, "next_step": self.next_step,
                "window": _format_duration(self.window), "reached": int(s["reached"]), "left": int(s["left"]),
                "continued": int(s["continued"]), "leave_rate": _num(s["leave_rate"]),
                "ci_low": _num(s["ci_low"]), "ci_high": _num(s["ci_high"]),
                "top_last_touchpoint": (None if self.last_touchpoints.empty
                                        else str(self.last_touchpoints["touchpoint"].iloc[0])),
                "risk_touchpoints": flagged["touchpoint"].astype(str).tolist()}

    def __repr__(self) -> str:
        s = self.summary.iloc[0]
        lines = [f"EscapeRoutes({self.step} -> {self.next_step} within {_format_duration(self.window)}): "
                 f"{int(s['reached']):,} reached, {int(s['left']):,} left "
                 f"({_pct(s['leave_rate'])}, CI {_pct(s['ci_low'])}-{_pct(s['ci_high'])}), "
                 f"{int(s['continued']):,} continued"]
        if not self.last_touchpoints.empty:
            r = self.last_touchpoints.iloc[0]
            lines.append(f"  most common last touchpoint of leavers: {r['touchpoint']} "
                         f"({r['channel']}, {_pct(r['share'])})")
        risky = self.lift[(self.lift["lift"] > 1) & (self.lift["q_value"] < 0.05)].head(5)
        for r in risky.itertuples():
            lines.append(f"  seen more by leavers: {r.touchpoint} (lift {r.lift:.2f}, q={r.q_value:.2g})")
        return "\n".join(lines)

    __str__ = __repr__

    def _repr_html_(self) -> str:
        from html import escape

        def table(df, title, fmt):
            return (f"<h4 style='margin:0.6em 0 0.2em'>{escape(title)}</h4>"
                    + df.to_html(index=False, formatters=fmt, na_rep="–", border=0))

        pct = {c: _pct for c in ("share", "share_leavers", "share_continuers", "leave_rate",
                                 "ci_low", "ci_high", "difference")}
        num = {"lift": lambda v: "–" if pd.isna(v) else f"{v:.2f}",
               "p_value": lambda v: "–" if pd.isna(v) else f"{v:.2g}",
               "q_value": lambda v: "–" if pd.isna(v) else f"{v:.2g}"}
        head = escape(repr(self).splitlines()[0])
        return ("<div class='cxlab-escape-routes'>"
                f"<p><b>{head}</b></p>"
                + table(self.summary, "Summary", pct)
                + table(self.last_touchpoints, "Leavers' last touchpoint", pct)
                + table(self.next_instead, "What leavers did next (after the window)", pct)
                + table(self.lift, "Touchpoints seen by leavers vs continuers", {**pct, **num})
                + "</div>")


def _pct(v) -> str:
    from .quality import format_pct

    return format_pct(v, missing="–")


def _num(v):
    return None if v is None or pd.isna(v) else float(v)


def escape_routes(events, *, step: str, journey=None, window="7D", since: str = "previous",
                  top: int = 10, alpha: float = 0.05) -> EscapeRoutes:
    """Escape routes from one funnel step: who leaves instead of reaching the next step.

    For each customer, ``t_step`` is the time of their **first** event on ``step``. A
    customer *continued* when they have an event on the next funnel step with
    ``t_step <= ts <= t_step + window`` (``t_next`` = the first such event), and *left*
    otherwise. Time ties count as "after".

    Parameters
    ----------
    events : Workspace, Ibis table or DataFrame
        Canonical events; ``channel`` is used when present (missing or null: ``"unknown"``).
    step : str
        A funnel step of the journey map other than the last one.
    journey : JourneyMap or path, optional
        Gives the funnel (default :meth:`JourneyMap.default`).
    window : str or Timedelta
        Time allowed to reach the next step, with a unit (``"7D"``, ``"48h"``).
    since : {"previous", "step"}
        Start of the exposure period used for ``lift``. ``"previous"`` (default): the
        customer's last event on the previous funnel step within ``window`` before
        ``t_step`` (``t_step`` itself for the first funnel step, or when there is none), so
        what customers met *on the way to* the step counts too -- a form just before
        checkout is judged at ``step="checkout"``. ``"step"``: from ``t_step`` only.
    top : int
        Rows kept in ``last_touchpoints`` and ``next_instead``; the rest are summed into
        one ``"(other)"`` row.
    alpha : float
        1 - confidence level of the Wilson interval of the leave rate.

    Returns
    -------
    EscapeRoutes
        With four DataFrames:

        ``summary`` (one row): ``step``, ``next_step``, ``window`` (str); ``reached``
        (customers with an event on ``step``), ``left``, ``continued``
        (``left + continued == reached``); ``leave_rate`` = left / reached with Wilson
        ``ci_low``, ``ci_high``; ``median_time_to_next`` (Timedelta, ``t_next - t_step``
        among continuers).

        ``last_touchpoints``: the leavers' last event with ``t_step <= ts <= t_step +
        window`` (ties broken by touchpoint then channel, the later in that order is
        last): ``touchpoint``, ``channel``, ``n`` (leavers), ``share`` (of leavers). Sorted
        by ``n``; after ``top`` rows, one ``"(other)"`` row.

        ``next_instead``: what leavers did next, defined as their **first event after the
        window end** (``ts > t_step + window``), which is also the first event after their
        last in-window event: ``touchpoint``, ``channel``, ``n``, ``share`` (of leavers),
        ``median_gap`` (Timedelta from the last in-window event to it). Leavers with no
        later event are one ``"(nothing)"`` row (channel ``""``, ``median_gap`` NaT).

        ``lift``: for each touchpoint other than ``step``, the next step and (with
        ``since="previous"``) the previous step, seen in the exposure period -- from the
        start given by ``since`` to ``t_next`` for continuers, to the last in-window event
        for leavers: ``n_leavers``, ``n_continuers`` (customers who saw it at least once),
        ``share_leavers`` = n_leavers / left, ``share_continuers`` = n_continuers /
        continued, ``lift`` = share_leavers / share_continuers (inf when no continuer saw
        it), ``difference`` = share_leavers - share_continuers, ``p_value`` (two-sided
        pooled two-proportion z-test) and ``q_value`` (Benjamini-Hochberg over the rows).
        Sorted by ``q_value`` then descending ``lift``. Lift is descriptive: leavers'
        exposure can last up to ``window``, continuers' stops at the next step.

    Raises
    ------
    ValueError
        Unknown step (with a "did you mean" hint), the last funnel step, a window without
        a unit, an unknown ``since``.

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> events, _, _ = simulate_journeys(5_000, seed=1)
    >>> er = escape_routes(events, step="checkout")
    >>> er.lift.set_index("touchpoint").loc["registration_form", "lift"] > 1
    np.True_
    """
    import ibis

    step, nxt, prev, td, win = _escape_setup(step, journey, window, since, alpha)
    top = _positive_int(top, "top")
    t = _with_channel(as_table(events))
    order = _order(t)
    _, ev, inwin, cust = _reached_and_continued(t, step, nxt, win)
    last = inwin.group_by("customer_id").aggregate(_t_last=inwin.ts.max())
    cust = cust.left_join(last, "customer_id").select(cust, last._t_last)
    if prev is not None:
        pe = ev.filter(ev.touchpoint == prev, ev.ts <= ev._t_step, ev.ts >= ev._t_step - win)
        pr = pe.group_by("customer_id").aggregate(_t_prev=pe.ts.max())
        cust = cust.left_join(pr, "customer_id").select(cust, pr._t_prev)
        start_expr = cust._t_prev.fill_null(cust._t_step)
    else:
        start_expr = cust._t_step
    cust = cust.mutate(_left=cust._t_next.isnull(), _t_start=start_expr,
                       _t_end=cust._t_next.fill_null(cust._t_last))

    # (d) summary
    summary = _summary_frame(cust, step, nxt, td, alpha)
    n_left, n_cont = int(summary["left"].iloc[0]), int(summary["continued"].iloc[0])

    leavers = cust.filter(cust._left).select("customer_id", "_t_last")

    # (a) leavers' last in-window touchpoint
    lw = inwin.join(leavers, "customer_id")
    wd = ibis.window(group_by="customer_id", order_by=[ibis.desc(c) for c in order])
    lw = lw.mutate(_r=ibis.row_number().over(wd))
    lw = lw.filter(lw._r == 0)
    lt = lw.group_by(["touchpoint", "channel"]).aggregate(n=lw.count()).execute()
    last_touchpoints = _top_rows(lt, n_left, top, extra=None)

    # (b) the first event after the window end
    after = ev.filter(ev.ts > ev._t_lim).join(leavers, "customer_id")
    wa = ibis.window(group_by="customer_id", order_by=order)
    after = after.mutate(_r=ibis.row_number().over(wa),
                         _gap=micros_between(after.ts, after._t_last))
    after = after.filter(after._r == 0)
    ni = (after.group_by(["touchpoint", "channel"])
               .aggregate(n=after.count(), median_gap=after._gap.median()).execute())
    ni["median_gap"] = _timedelta_us(ni["median_gap"]) if len(ni) else pd.Series(dtype="timedelta64[ns]")
    next_instead = _top_rows(ni, n_left, top, extra="median_gap")
    nothing = n_left - int(next_instead["n"].sum())
    if nothing > 0:
        row = pd.DataFrame({"touchpoint": [NOTHING], "channel": [""], "n": [nothing],
                            "share": [nothing / n_left],
                            "median_gap": pd.Series([pd.NaT], dtype="timedelta64[ns]")})
        next_instead = pd.concat([next_instead, row], ignore_index=True)
        next_instead = next_instead.sort_values("n", ascending=False, kind="stable", ignore_index=True)

    # (c) touchpoints seen in the exposure period: leavers vs continuers
    exclude = [tp for tp in (step, nxt, prev) if tp is not None]
    ex = t.join(cust.select("customer_id", "_left", "_t_start", "_t_end"), "customer_id")
    ex = ex.filter(ex.ts >= ex._t_start, ex.ts <= ex._t_end, ~ex.touchpoint.isin(exclude))
    seen = ex.select("customer_id", "touchpoint", "_left").distinct()
    sc = seen.group_by(["touchpoint", "_left"]).aggregate(n=seen.count()).execute()
    lift = _lift_table(sc, n_left, n_cont)
    return EscapeRoutes(step=step, next_step=nxt, window=td, since=since, summary=summary,
                        last_touchpoints=last_touchpoints, next_instead=next_instead, lift=lift)



def _escape_setup(step, journey, window, since, alpha):
    """Checked arguments of the escape-route functions: step, next step, previous step (or
    None), the window as a Timedelta and as an Ibis interval."""
    import ibis

    jm = JourneyMap.coerce(journey)
    funnel = list(jm.funnel)
    if step not in funnel:
        raise ValueError(f"step={step!r} is not a step of the funnel {' > '.join(funnel)}"
                         + did_you_mean(str(step), funnel))
    i = funnel.index(step)
    if i == len(funnel) - 1:
        raise ValueError(f"step={step!r} is the last funnel step: nobody can leave it for a next "
                         f"step; choose one of {funnel[:-1]}")
    if since not in ("previous", "step"):
        raise ValueError(f"since={since!r} is not one of ('previous', 'step')"
                         + did_you_mean(str(since), ("previous", "step")))
    if not 0 < float(alpha) < 1:
        raise ValueError(f"alpha={alpha!r} must be between 0 and 1 (e.g. 0.05 for 95% intervals)")
    td = _window(window)
    prev = funnel[i - 1] if (i > 0 and since == "previous") else None
    return step, funnel[i + 1], prev, td, ibis.interval(seconds=int(td.total_seconds()))


def _reached_and_continued(t, step, nxt, win):
    """Per customer reaching ``step``: ``_t_step`` (first event on it) and ``_t_next`` (first
    event on ``nxt`` within the window, null for leavers); also the events joined to
    ``_t_step`` (with ``_t_lim``) and those within the window."""
    reach = t.filter(t.touchpoint == step).group_by("customer_id").aggregate(_t_step=t.ts.min())
    ev = t.join(reach, "customer_id")
    ev = ev.mutate(_t_lim=ev._t_step + win)
    inwin = ev.filter(ev.ts >= ev._t_step, ev.ts <= ev._t_lim)
    cont = (inwin.filter(inwin.touchpoint == nxt).group_by("customer_id")
                 .aggregate(_t_next=inwin.ts.min()))
    cust = reach.left_join(cont, "customer_id").select(reach, cont._t_next)
    return reach, ev, inwin, cust


def _summary_frame(cust, step, nxt, td, alpha) -> pd.DataFrame:
    """The one-row summary of :func:`escape_routes` from the per-customer table."""
    c = cust.mutate(_left=cust._t_next.isnull())
    s = (c.group_by("_left")
          .aggregate(n=c.count(), _med_us=micros_between(c._t_next, c._t_step).median())
          .execute())
    n_left = int(s.loc[s["_left"].astype(bool), "n"].sum())
    n_cont = int(s.loc[~s["_left"].astype(bool), "n"].sum())
    reached = n_left + n_cont
    lo, hi = wilson_ci(n_left, reached, alpha=alpha)
    med = s.loc[~s["_left"].astype(bool), "_med_us"]
    return pd.DataFrame({
        "step": [step], "next_step": [nxt], "window": [_format_duration(td)],
        "reached": [reached], "left": [n_left], "continued": [n_cont],
        "leave_rate": [n_left / reached if reached else np.nan],
        "ci_low": [float(lo)], "ci_high": [float(hi)],
        "median_time_to_next": _timedelta_us([med.iloc[0] if len(med) else np.nan])})


def escape_summary(events, *, step: str, journey=None, window="7D", alpha: float = 0.05) -> pd.DataFrame:
    """The ``summary`` of :func:`escape_routes` alone (one row), without the leavers' last
    touchpoints, next contacts and lift: one query, for scanning every funnel step.

    Parameters and the returned columns are those of :func:`escape_routes`; the numbers are
    the same.

    Examples
    --------
    >>> from cxlab.datasets import simulate_journeys
    >>> events = simulate_journeys(2_000, seed=1).events
    >>> a = escape_summary(events, step="checkout")
    >>> b = escape_routes(events, step="checkout").summary
    >>> a.equals(b)
    True
    """
    step, nxt, _, td, win = _escape_setup(step, journey, window, "previous", alpha)
    t = _with_channel(as_table(events))
    return _summary_frame(_reached_and_continued(t, step, nxt, win)[3], step, nxt, td, alpha)

def _top_rows(df: pd.DataFrame, total: int, top: int, *, extra: str | None) -> pd.DataFrame:
    """Sort by n, keep ``top`` rows and sum the rest into ``(other)``; add ``share``."""
    cols = ["touchpoint", "channel", "n", "share"] + ([extra] if extra else [])
    if df.empty:
        out = pd.DataFrame({c: pd.Series(dtype="str") for c in ("touchpoint", "channel")})
        out["n"] = pd.Series(dtype="int64")
        out["share"] = pd.Series(dtype="float64")
        if extra:
            out[extra] = pd.Series(dtype="timedelta64[ns]")
        return out[cols]
    df = df.astype({"n": "int64", "touchpoint": "str", "channel": "str"})
    df = df.sort_values(["n", "touchpoint", "channel"], ascending=[False, True, True], ignore_index=True)
    if len(df) > top:
        rest = df.iloc[top:]
        other = {"touchpoint": OTHER, "channel": "", "n": int(rest["n"].sum())}
        if extra:
            other[extra] = pd.NaT
        df = pd.concat([df.iloc[:top], pd.DataFrame([other])], ignore_index=True)
    df["share"] = df["n"] / total if total else np.nan
    return df[cols]


def _lift_table(sc: pd.DataFrame, n_left: int, n_cont: int) -> pd.DataFrame:
    cols = ["touchpoint", "n_leavers", "share_leavers", "n_continuers", "share_continuers",
            "lift", "difference", "p_value", "q_value"]
    if sc.empty:
        return pd.DataFrame({c: pd.Series(dtype="str" if c == "touchpoint" else
                                          "int64" if c.startswith("n_") else "float64")
                             for c in cols})
    sc = sc.assign(_left=sc["_left"].astype(bool), touchpoint=sc["touchpoint"].astype(str))
    wide = sc.pivot_table(index="touchpoint", columns="_left", values="n", aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=[True, False], fill_value=0)
    out = pd.DataFrame({"touchpoint": wide.index.astype(str),
                        "n_leavers": wide[True].to_numpy().astype("int64"),
                        "n_continuers": wide[False].to_numpy().astype("int64")})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["share_leavers"] = out["n_leavers"] / n_left if n_left else np.nan
        out["share_continuers"] = out["n_continuers"] / n_cont if n_cont else np.nan
        out["lift"] = out["share_leavers"] / out["share_continuers"]
    out["difference"] = out["share_leavers"] - out["share_continuers"]
    _, p = two_proportion_test(out["n_leavers"], n_left, out["n_continuers"], n_cont)
    out["p_value"] = p
    out["q_value"] = bh_qvalues(p)
    out = out.sort_values(["q_value", "lift", "touchpoint"], ascending=[True, False, True],
                          na_position="last", ignore_index=True)
    return out[cols]
