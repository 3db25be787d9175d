"""``reports/index.html``: every report run, its status and the trend of its headline numbers.

Private to :mod:`cxlab.reports` (see :func:`cxlab.reports.write_index`). Everything read from
the reports folder is HTML-escaped: parameters are user input.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import re
from pathlib import Path

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MAX_RUNS_PER_METRIC = 12

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
.muted{color:#666;font-size:.9rem}
table{border-collapse:collapse;font-size:.88rem;margin:.3rem 0}
th,td{padding:.25rem .6rem;border-bottom:1px solid #e5e5e5;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600}.failed{color:#c62828;font-weight:600}
.changed{color:#b35c00;font-weight:600}.better{color:#1a7f37;font-weight:600}.worse{color:#cf222e;font-weight:600}.nowrap{white-space:nowrap}.noise{color:#555}
.cards{display:flex;flex-wrap:wrap;gap:1rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem .8rem;width:375px;box-sizing:border-box}
.card h4{margin:0 0 .3rem;font-size:.95rem;word-break:break-all}
.card img{max-width:100%;height:auto;display:block;margin:0 auto .3rem}
.card table{width:100%;font-size:.8rem}.card th,.card td{padding:.2rem .35rem}
.sub{display:block;color:#666;font-size:.75rem;font-weight:400}
code{background:#f3f3f3;padding:0 .2rem;border-radius:3px;font-size:.85em;word-break:break-all}
"""


def _e(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1:
        v = int(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


def _signed(v) -> str:
    return ("+" if v is not None and v > 0 else "") + _fmt(v)


def _error_of(failed: Path) -> str:
    try:
        nb = json.loads(failed.read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    evalue = (str(o.get("evalue", "")).strip().splitlines() or [""])[0]
                    return f"{o.get('ename', 'Error')}: {evalue}"[:300]
    except (OSError, ValueError):
        return "the executed notebook cannot be read"
    return "failed before any cell ran"


def collect_runs(out: Path) -> list[dict]:
    """One dict per run found under ``out``: date, report, status, files, metrics."""
    runs = []
    for day in sorted(p for p in out.iterdir() if p.is_dir() and _DATE.match(p.name)):
        for m in sorted(day.glob("*.metrics.json")):
            name = m.name[: -len(".metrics.json")]
            try:
                doc = json.loads(m.read_text(encoding="utf-8"))
                status = "ok"
            except (OSError, ValueError):
                doc, status = {}, "unreadable metrics"
            runs.append({"date": day.name, "report": name, "status": status, "metrics": doc,
                         "html": day / f"{name}.html", "notebook": day / f"{name}.ipynb",
                         "metrics_path": m, "time": (doc.get("run") or {}).get("finished_at")
                         or doc.get("created_at") or "", "error": ""})
        for f in sorted(day.glob("*.failed.ipynb")):
            name = f.name[: -len(".failed.ipynb")]
            when = _dt.datetime.fromtimestamp(f.stat().st_mtime, _dt.UTC)
            runs.append({"date": day.name, "report": name, "status": "failed", "metrics": {},
                         "html": None, "notebook": f, "metrics_path": None,
                         "time": when.isoformat(timespec="seconds"), "error": _error_of(f)})
    return runs


def _link(path: Path | None, out: Path, label: str) -> str:
    if path is None or not path.exists():
        return ""
    rel = path.relative_to(out).as_posix()
    return f'<a href="{_e(rel)}">{_e(label)}</a>'


def _chart(name: str, points: list[tuple[str, dict]]) -> str:
    """An embedded PNG: the metric across run dates, with its CI band when it has one."""
    import matplotlib.dates as mdates
    import pandas as pd
    from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone

    x = pd.to_datetime([d for d, _ in points])
    y = [s["value"] for _, s in points]
    fig = Figure(figsize=(3.4, 1.7), dpi=110)
    ax = fig.subplots()
    lo = [s["ci_low"] for _, s in points]
    hi = [s["ci_high"] for _, s in points]
    if all(v is not None for v in lo + hi):
        ax.fill_between(x, lo, hi, color="C0", alpha=0.2, lw=0, label="CI")
    ax.plot(x, y, marker="o", ms=3.5, color="C0", lw=1.5)
    if len(points) <= 6:  # one tick per run
        ax.set_xticks(x)
    else:
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=6))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.margins(x=0.08)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.04)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{_e(name)} across runs" src="data:image/png;base64,{data}">'


def _params_text(params: dict) -> str:
    if not params:
        return ""
    parts = [f"{k}={v!r}" for k, v in params.items()]
    return "<code>" + _e(", ".join(parts))[:400] + "</code>"


def _runs_table(runs: list[dict], out: Path) -> str:
    rows = []
    for r in sorted(runs, key=lambda r: (r["date"], r["time"]), reverse=True):
        doc = r["metrics"]
        ws = doc.get("workspace") or {}
        fp = (ws.get("fingerprint") or "")[:12] if isinstance(ws, dict) else ""
        links = " · ".join(x for x in (_link(r["html"], out, "report"),
                                         _link(r["notebook"], out, "notebook"),
                                         _link(r["metrics_path"], out, "metrics")) if x)
        status = ('<span class="ok">ok</span>' if r["status"] == "ok"
                  else f'<span class="failed">{_e(r["status"])}</span><br>{_e(r["error"])}')
        rows.append(f"<tr><td class='nowrap'>{_e(r['date'])}</td><td>{_e(r['report'])}</td>"
                    f"<td>{status}</td><td>{links}</td><td class='nowrap'>{_e(r['time'][:19].replace('T', ' '))}</td>"
                    f"<td>{_e(doc.get('cxlab_version', ''))}</td><td>{f'<code>{_e(fp)}</code>' if fp else ''}</td>"
                    f"<td>{_params_text(doc.get('parameters') or {})}</td></tr>")
    return ("<table><thead><tr><th>date</th><th>report</th><th>status</th><th>files</th>"
            "<th>finished (UTC)</th><th>cxlab</th><th>data fingerprint</th><th>parameters</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _diff(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):   # to_dict turns None into NaN
        return "—"
    if v == 0:
        return "no change"
    if v == int(v) and abs(v) >= 1:
        return f"{int(v):+,}"
    return f"{v:+.2g}"


def _verdict_html(row, basis: str = "run") -> str:
    if row is None:
        return '<span class="muted">first run</span>'
    v = row["verdict"]
    p = row["p_value"]
    diff = _diff(row["difference"])
    ptxt = f", p={p:.2g}" if p is not None and math.isfinite(p) else ""
    if basis == "period":
        if row["reason"] == "no previous value":
            return '<span class="muted">—<span class="sub">not computed for the previous period</span></span>'
        ptxt += "; vs previous period"
    if v == "changed":
        from .brief import direction_word

        tone = direction_word(str(row["metric"]), row["difference"])   # "better", "worse" or ""
        word = f"changed: {tone}" if tone else "changed"
        return f'<span class="{tone or "changed"}">{word}<span class="sub">{_e(diff + ptxt)}</span></span>'
    if v == "within noise":
        why = f"; {row['reason']}" if str(row["reason"]).startswith("n below") else ""
        return f'<span class="noise">within noise<span class="sub">{_e(diff + ptxt + why)}</span></span>'
    if row["reason"] == "no previous value":
        return '<span class="muted">new metric</span>'
    vs = "; vs previous period" if basis == "period" else ""
    return f'<span class="muted">{_e(diff)}<span class="sub">not tested{vs}</span></span>'


#: metric names (or their prefixes) that are engineering detail, not business KPIs: shown in a
#: collapsed section of the index
_DETAIL_PREFIXES = ("reached.", "odds_ratio.", "leave_rate.", "rows_read", "rows_added", "duplicates_skipped",
                    "conflicts_skipped", "rows_removed", "sentiment_macro_f1", "days", "customers.", "rows.")


def _is_detail(name: str) -> bool:
    return name.startswith(_DETAIL_PREFIXES) or name in {p.rstrip(".") for p in _DETAIL_PREFIXES}


def _is_rate(s: dict) -> bool:
    return s["se"] is None and bool(s["n"]) and s["value"] is not None and 0 <= s["value"] <= 1


def _fmt_stat(v, s: dict) -> str:
    """A rate (a value in 0..1 with its n, no standard error) as %, anything else as a number."""
    from .quality import format_pct

    return format_pct(v) if v is not None and _is_rate(s) else _fmt(v)


def _labels(ok_runs: list[dict]) -> dict[str, str]:
    """Business labels of the metrics, from the latest brief that names them."""
    out = {}
    for r in sorted(ok_runs, key=lambda r: (r["date"], r["time"])):
        for k in (r["metrics"].get("brief") or {}).get("kpis") or []:
            if isinstance(k, dict) and k.get("key") and k.get("label"):
                out[str(k["key"])] = str(k["label"])
    return out


def briefs(runs: list[dict], out: Path) -> str:
    """The brief of each report's latest successful run, on top of the index."""
    from .brief import render_brief

    latest = {}
    for r in sorted(runs, key=lambda r: (r["date"], r["time"])):
        if r["status"] == "ok" and isinstance(r["metrics"].get("brief"), dict):
            latest[r["report"]] = r
    if not latest:
        return ""
    parts = []
    for name, r in latest.items():
        try:
            html_brief = render_brief(r["metrics"]["brief"])
        except Exception as exc:  # a brief written by another cxlab version: say so, keep the page
            html_brief = f"<p class='muted'>The brief of {_e(name)} cannot be shown: {_e(type(exc).__name__)}.</p>"
        parts.append(f"<p class='muted'>{_e(name)}, run of {_e(r['date'])} · {_link(r['html'], out, 'full report')}"
                     f"</p>{html_brief}")
    return "<h2>In brief</h2>" + "".join(parts)


def _trends(report: str, ok_runs: list[dict]) -> str:
    from .reports import compare_with_previous, headline_metrics

    ok_runs = sorted(ok_runs, key=lambda r: r["date"])
    flat = [(r["date"], headline_metrics(r["metrics"])) for r in ok_runs]
    names = []
    for _, m in flat:
        names.extend(k for k in m if k not in names)
    if not names:
        return '<p class="muted">This report records no numeric headline metrics.</p>'
    comparisons, basis, period_labels = {}, {}, {}
    for i, run in enumerate(ok_runs):
        own = run["metrics"].get("previous_period")
        if isinstance(own, dict):  # like with like: the run's own previous period of the same length
            table = compare_with_previous(flat[i][1], headline_metrics(own))
            basis[flat[i][0]] = "period"
        elif i == 0:
            continue
        else:
            table = compare_with_previous(flat[i][1], flat[i - 1][1])
            basis[flat[i][0]] = "run"
        comparisons[flat[i][0]] = {r["metric"]: r for r in table.to_dict("records")}
        period = run["metrics"].get("period")
        if isinstance(period, dict) and period.get("label"):
            period_labels[flat[i][0]] = str(period["label"])
    labels = _labels(ok_runs)
    cards, detail_cards = [], []
    for name in names:
        points = [(d, m[name]) for d, m in flat if name in m][-_MAX_RUNS_PER_METRIC:]
        has_ci = any(s["ci_low"] is not None for _, s in points)
        has_n = any(s["n"] is not None for _, s in points)
        head = "<th>date</th><th>value</th>" + ("<th>CI</th>" if has_ci else "") + \
               ("<th>n</th>" if has_n else "") + "<th>vs previous</th>"
        rows = []
        for d, s in reversed(points):
            ci = (f"<td class='num nowrap'>{_e(_fmt_stat(s['ci_low'], s))}–{_e(_fmt_stat(s['ci_high'], s))}</td>"
                  if has_ci else "")
            n = f"<td class='num'>{_fmt(s['n'])}</td>" if has_n else ""
            cmp = comparisons.get(d, {}).get(name)
            when = _e(d) + (f"<span class='sub'>{_e(period_labels[d])}</span>" if d in period_labels else "")
            rows.append(f"<tr><td class='nowrap'>{when}</td><td class='num'>{_e(_fmt_stat(s['value'], s))}</td>"
                        f"{ci}{n}<td>{_verdict_html(cmp, basis.get(d, 'run'))}</td></tr>")
        chart = _chart(name, points) if len(points) >= 2 else ""
        title = (f"{_e(labels[name])}<span class='sub'>{_e(name)}</span>" if name in labels else _e(name))
        card = (f'<div class="card"><h4>{title}</h4>{chart}<table><thead><tr>{head}'
                f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
        (detail_cards if _is_detail(name) else cards).append(card)
    out = f'<div class="cards">{"".join(cards)}</div>' if cards else ""
    if detail_cards:
        out += (f"<details><summary class='muted'>Engineering detail: {len(detail_cards)} more numbers "
                f"(per-step counts, model terms, load counters)</summary><div class='cards'>"
                f"{''.join(detail_cards)}</div></details>")
    return out


def render_index(out: Path) -> str:
    out = Path(out)
    runs = collect_runs(out)
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>cxlab reports</title><style>{_CSS}</style></head><body>",
        "<h1>cxlab reports</h1>",
        (f"<p class='muted'>{len(runs)} runs in <code>{_e(out.resolve())}</code>; page generated "
         f"{_e(now)} (UTC). A run of the same report on the same date replaces the earlier one; a "
         "failed run keeps its executed notebook and leaves the earlier report in place.</p>"),
    ]
    parts.append(briefs(runs, out))
    parts.append("<h2>Runs</h2>")
    if not runs:
        parts.append("<p>No reports yet: run <code>cxlab report NAME</code>.</p>")
    else:
        parts.append(_runs_table(runs, out))
        parts.append(
            "<h2>Headline numbers across runs</h2><p class='muted'>Most recent first. "
            "<em>vs previous</em>: a run that covers a period (<code>period</code>, "
            "<code>period_start</code>) is compared with its own previous period of the same "
            "length, like with like (<em>vs previous period</em>); a run without one with the "
            "previous run of the report. A rate with its n is compared with a two-proportion "
            "z-test, a score with its standard error with a z-test on the difference; "
            "<span class='changed'>changed</span> means p &lt; 0.05 with n ≥ 100 in both runs, "
            "otherwise the difference is within noise. Numbers without n or standard error "
            "are shown, not tested. Shaded band on the charts: the confidence interval.</p>")
        for report in sorted({r["report"] for r in runs}):
            ok_runs = [r for r in runs if r["report"] == report and r["status"] == "ok"]
            parts.append(f"<h3>{_e(report)}</h3>")
            parts.append(_trends(report, ok_runs) if ok_runs else
                         "<p class='muted'>No successful run yet.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
