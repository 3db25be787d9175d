"""Benchmark: latency of a selection change in the pain-point explorer at ~1M simulated
events, against recomputing pain_points from the workspace on each change (the reference).

    python benchmarks/widgets.py [--customers 123000] [--changes 200] [--reference 5]

The simulation (events and feedback) is written once to benchmarks/_work/ as Parquet and
pulled once into a workspace there. One process: build the explorer (ExplorerData: sentiment
fit, whole-journey pain_points, aggregates) and time it, then apply a seeded random sequence
of selection changes as a user would click them (moment, touchpoints, channels, segments,
date range, reset), each timed from the control's change to every panel re-rendered
(``PainPointExplorer.latency``). The reference recomputes ``pain_points`` on the filtered
workspace tables for a few of the same selections, with the explorer's fitted sentiment model
(so it does less work than a fresh call). Peak RSS is the process's ru_maxrss. The build
keeps its aggregates next to the workspace; ``read_kept_s`` is reading them back (what a new
kernel does). Then, unless ``--no-browser``, benchmarks/widgets_browser.py times the page in
headless Chromium against `cxlab explore` (cold build, page ready with the aggregates kept).
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"


def _paths(n):
    return (WORK / f"widgets_events_{n}.parquet", WORK / f"widgets_feedback_{n}.parquet",
            WORK / f"widgets_{n}.duckdb")


def prepare(n: int) -> None:
    import cxlab
    from cxlab.datasets import simulate_journeys

    WORK.mkdir(parents=True, exist_ok=True)
    ev, fb, db = _paths(n)
    if not ev.exists():
        t = time.perf_counter()
        sim = simulate_journeys(n, seed=3)
        sim.events.to_parquet(ev, index=False)
        sim.feedback.to_parquet(fb, index=False)
        print(f"simulated {n:,} customers -> {len(sim.events):,} events, {len(sim.feedback):,} feedback in "
              f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
        del sim
    if not db.exists():
        with cxlab.connect(db) as ws:
            print(ws.pull(ev), file=sys.stderr)
            print(ws.pull(fb, kind="feedback"), file=sys.stderr)


def _changes(x, rng, k):
    """A seeded sequence of clicks: (label, function applying it)."""
    moments = list(x.moment.options)
    chans, segs = list(x.channels.options), list(x.segments.options)
    ndays = len(x._days)
    out = []
    for _ in range(k):
        kind = rng.choice(["moment", "moment", "touchpoints", "channels", "segments", "dates", "reset"])
        if kind == "moment":
            v = moments[rng.integers(len(moments))][1]
            out.append(("moment", lambda v=v: setattr(x.moment, "value", v)))
        elif kind == "touchpoints":
            def pick():
                opts = [v for _, v in x.touchpoints.options]
                take = rng.choice(len(opts), size=max(1, rng.integers(1, len(opts) + 1)), replace=False)
                x.touchpoints.value = [opts[i] for i in sorted(take)]
            out.append(("touchpoints", pick))
        elif kind == "channels":
            v = [chans[i] for i in sorted(rng.choice(len(chans), size=rng.integers(1, len(chans) + 1), replace=False))]
            out.append(("channels", lambda v=v: setattr(x.channels, "value", v)))
        elif kind == "segments":
            v = [segs[i] for i in sorted(rng.choice(len(segs), size=rng.integers(1, len(segs) + 1), replace=False))]
            out.append(("segments", lambda v=v: setattr(x.segments, "value", v)))
        elif kind == "dates":
            a = int(rng.integers(0, ndays - 30))
            b = int(rng.integers(a + 14, ndays))
            out.append(("dates", lambda a=a, b=b: setattr(x.dates, "index", (a, b))))
        else:
            out.append(("reset", lambda: x.reset_button.click()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=123_000)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--reference", type=int, default=5)
    ap.add_argument("--no-browser", action="store_true", help="skip the page timings in Chromium")
    args = ap.parse_args()
    prepare(args.customers)
    import cxlab
    from cxlab.painpoints import pain_points
    from cxlab.widgets import PainPointExplorer

    _, _, db = _paths(args.customers)
    ws = cxlab.connect(db, read_only=True)
    n_events = int(ws.events().count().execute())
    from cxlab._explore_cache import cache_root
    from cxlab.explore import ExplorerData

    shutil.rmtree(cache_root(db), ignore_errors=True)
    t = time.perf_counter()
    x = PainPointExplorer(ws)
    build = time.perf_counter() - t
    t = time.perf_counter()
    kept = ExplorerData(ws)           # a new process would do this: read what the build kept
    read = time.perf_counter() - t
    assert kept.cache_status == "read", kept.cache_note
    rss_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = np.random.default_rng(7)
    lat = {}
    seen_filters = set()
    for label, apply in _changes(x, rng, args.changes):
        before = x.selection().filter_key() if x.table is not None else None
        apply()
        after = x.selection().filter_key() if x.table is not None else None
        kind = "new filter" if after is not None and after != before and after not in seen_filters else "other"
        seen_filters.add(after)
        lat.setdefault(kind, []).append(x.latency)
        lat.setdefault("all", []).append(x.latency)
    ref = []
    x.reset_button.click()
    for i in range(args.reference):
        x.channels.value = list(x.channels.options)[: 2 + i % 3]
        sel = x.selection()
        events, fb = x.data.filtered(sel)
        t = time.perf_counter()
        pain_points((events, fb), sentiment_model=x.data.sentiment_model)
        ref.append(time.perf_counter() - t)
    out = {"customers": args.customers, "events": n_events, "feedback": len(x.data.feedback),
           "build_s": round(build, 2), "read_kept_s": round(read, 2),
           "kept_mb": round(sum(f.stat().st_size for f in kept.cache_dir.iterdir()) / 2**20, 1), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
           "rss_after_build_mb": round(rss_build),
           "changes": {k: {"n": len(v), "p50_ms": round(1000 * float(np.percentile(v, 50)), 1),
                           "p95_ms": round(1000 * float(np.percentile(v, 95)), 1),
                           "max_ms": round(1000 * float(np.max(v)), 1)} for k, v in lat.items()},
           "reference_pain_points_s": {"n": len(ref), "p50": round(float(np.median(ref)), 2),
                                       "max": round(float(np.max(ref)), 2)}}
    print(json.dumps(out, indent=2))
    if not args.no_browser:
        ws.close()
        from widgets_browser import main as browser

        browser(["--customers", str(args.customers)])


if __name__ == "__main__":
    main()
