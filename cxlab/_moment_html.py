"""The moment panel of :class:`cxlab.widgets.PainPointExplorer` as HTML: the research paths of
a research moment, the circle of a sharing moment (:mod:`cxlab.explore_moments`), or one line
saying where they are. Labels come from the journey map; numbers are formatted for people."""
from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd

from .explore_moments import research_moments, sharing_moments

#: paths listed per side (precede conversion / precede leaving)
TOP = 5


def _pct(v, digits=1) -> str:
    from .quality import format_pct

    return format_pct(v, digits=digits, missing="–")


def _p(v) -> str:
    """A p-value for people, as HTML: ``&lt; 0.001``, else three decimals."""
    if v is None or pd.isna(v):
        return "–"
    return "&lt; 0.001" if v < 0.001 else f"{v:.3f}"


def _one_line(msg: str) -> str:
    return f"<div class='cx-note cx-moment-none'>{escape(msg)}</div>"


def _path(journey, path) -> str:
    if not path:
        return "<i>other paths</i> (each fewer customers)"
    return " → ".join(escape(journey.label(x)) for x in path)


def moment_panel_html(journey, sel, view) -> str:
    """The panel for ``view`` (:meth:`cxlab.explore.ExplorerData.moment_view`)."""
    if view is None or view.get("kind") is None:
        return _pointer(journey, sel)
    if view["kind"] == "research":
        return _research_html(journey, view["paths"])
    return _circle_html(journey, view["circle"], view["voice"])


def _pointer(journey, sel) -> str:
    r, s = research_moments(journey), sharing_moments(journey)
    parts = []
    parts.append(f"research paths at {', '.join(r)}" if r else
                 "no research moment in this journey map (a 'before' moment without the conversion)")
    parts.append(f"whether sharers come back at {', '.join(s)}" if s else
                 "no sharing moment in this journey map (a last 'after' moment without the conversion or a "
                 "funnel step)")
    return _one_line("Moments of truth: " + "; ".join(parts) + ".")


def _rows(journey, t: pd.DataFrame) -> str:
    out = []
    for r in t.itertuples(index=False):
        diff = "–" if pd.isna(r.diff) else f"{100 * r.diff:+.1f} pts"
        cls = "good" if r.verdict == "conversion" else ("bad" if r.verdict == "leaving" else "")
        out.append(f"<tr><td>{_path(journey, r.path)}</td><td class='n'>{r.customers:,}</td>"
                   f"<td class='n' title='95% CI {_pct(r.ci_low)} to {_pct(r.ci_high)}'>{_pct(r.rate)}</td>"
                   f"<td class='n {cls}'>{diff}</td><td class='n'>{_p(r.p_value)}</td></tr>")
    return "".join(out)


def _table(journey, t: pd.DataFrame, cls="") -> str:
    return ("<div class='cx-scroll'><table class='cx " + cls + "'><tr><th>Path (first use, in order)</th>"
            "<th class='n'>Customers</th><th class='n'>Converted</th><th class='n'>vs others</th>"
            "<th class='n'>p</th></tr>" + _rows(journey, t) + "</table></div>")


def _research_html(journey, t: pd.DataFrame) -> str:
    a = t.attrs
    label = escape(journey.moment(a["moment"]).label)
    head = f"<div class='cx-h'>Research paths: {label}</div>"
    if a["researched"] == 0:
        return head + _one_line("No customer of this selection used a touchpoint of this moment.")
    n, c = a["researched"], a["converted"]
    lead = (f"<div class='cx-note'>{n:,} customers researched here before converting or leaving; "
            f"{_pct(c / n)} converted."
            + (f" {a['no_research']:,} customers had no contact here ({_pct(a['no_research_converted'] / a['no_research'])}"
               " converted)." if a["no_research"] else "") + "</div>")
    sides = []
    for verdict, title, none in (("conversion", "Paths that precede conversion", "No path converts significantly "
                                  "more often than the other researching customers."),
                                 ("leaving", "Paths that precede leaving", "No path converts significantly less "
                                  "often than the other researching customers.")):
        rows = t[t["verdict"] == verdict].sort_values("customers", ascending=False, kind="stable").head(TOP)
        body = _table(journey, rows, f"cx-paths-{verdict}") if len(rows) else _one_line(none)
        sides.append(f"<div class='cx-panel' style='flex:1 1 380px'><div class='cx-h'>{title}</div>{body}</div>")
    alpha = a.get("alpha", 0.05)
    note = ("<div class='cx-note'>Converted: share of the path's customers who converted (hover for the 95% "
            "interval); vs others: against every other researching customer, pooled two-proportion z-test; a path "
            f"is listed when significant after Benjamini-Hochberg (q &lt; {alpha:g}). Paths of fewer than "
            f"{a['min_customers']} customers are pooled.</div>")
    more = (f"<details class='cx-more'><summary>Every path ({len(t)})</summary>"
            + _table(journey, t, "cx-paths-all") + "</details>")
    return head + lead + "<div class='cx-panels'>" + "".join(sides) + "</div>" + note + more


def _tile(title, row, horizon_days, alpha) -> str:
    s, o = row["rate_sharers"], row["rate_others"]
    if np.isfinite(row["p_value"]) and row["p_value"] < alpha:
        verdict = f"difference significant, p {_p(row['p_value'])}" if row["p_value"] < 0.001 else \
            f"difference significant, p = {_p(row['p_value'])}"
    elif np.isfinite(row["p_value"]):
        verdict = f"no significant difference (p = {_p(row['p_value'])})"
    else:
        verdict = "too few customers to test"
    return (f"<div class='cx-tile'><div class='k'>{escape(title)} within {horizon_days} days</div>"
            f"<div class='v'>{_pct(s)} <span style='font-size:14px;color:#666'>vs {_pct(o)}</span></div>"
            f"<div class='c'>sharers ({row['sharers']:,}) vs converters who did not share ({row['others']:,})</div>"
            f"<div class='c'>{verdict}</div></div>")


def _circle_html(journey, c: dict, voice: dict) -> str:
    label = escape(journey.moment(c["moment"]).label)
    head = f"<div class='cx-h'>The circle: {label}</div>"
    days = int(round(c["horizon"] / pd.Timedelta(days=1)))
    if c["sharers_all"] == 0:
        return head + _one_line("No converted customer of this selection had a contact at this moment.")
    lead = (f"<div class='cx-note'>{c['sharers']:,} converted customers shared (a contact here after converting) "
            f"and {c['others']:,} did not; come back: a new visit before or during a purchase, more than a session "
            f"after sharing (or after buying); {c['censored']:,} customers whose {days} days have not passed yet "
            "are not counted.</div>")
    tiles = ("<div class='cx-tiles'>" + _tile("Come back", {**c["back"], "sharers": c["sharers"],
                                                            "others": c["others"]}, days, c["alpha"])
             + _tile("Buy again", {**c["again"], "sharers": c["sharers"], "others": c["others"]}, days, c["alpha"])
             + "</div>")
    say = "<div class='cx-h'>What sharers say</div>"
    if voice["n"] == 0:
        say += _one_line("No feedback from sharers in this selection.")
    else:
        score = "–" if pd.isna(voice["score"]) else f"{voice['score']:.0f}"
        say += (f"<div class='cx-note'>{voice['n']:,} pieces of feedback from {voice['customers']:,} sharers "
                f"(from their first share on): mean score {score} of 100, {_pct(voice['negative'], 0)} "
                "negative. Newest first, personal data masked.</div>")
        for r in voice["verbatims"].itertuples(index=False):
            cls = "neg" if pd.notna(r.sentiment) and r.sentiment < -0.2 else (
                "pos" if pd.notna(r.sentiment) and r.sentiment > 0.2 else "")
            sc = "" if pd.isna(r.score) else f" · {r.scale} {r.score:g}"
            sent = "" if pd.isna(r.sentiment) else f" · sentiment {r.sentiment:+.2f}"
            say += (f"<div class='cx-verb {cls}'><div class='meta'>{pd.Timestamp(r.ts):%d %b %Y} · "
                    f"{escape(journey.label(r.touchpoint))}{escape(sc)}{sent}</div>{escape(str(r.text))}</div>")
    return head + lead + tiles + say
