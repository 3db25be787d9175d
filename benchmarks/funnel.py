"""Benchmark: cxlab.funnel (closed, 7D) against a hand-written DuckDB SQL closed funnel and
a pandas implementation of the same definition, on the same Parquet file, in the same run.

Two hand-written SQL references: ``sql`` counts customers per step and nothing else;
``sql_full`` also returns what cxlab returns (the four exact time-to-step percentiles and
effort), and its numbers must equal cxlab's (asserted).

Data: ``simulate_journeys(120_000, seed=1)`` (about 1M events) written once to
``benchmarks/_work/funnel_1x.parquet``; larger sizes repeat it with customer-id offsets
(``--scale 10``: about 10M events). Each measurement runs in a fresh subprocess, so peak
RSS (``ru_maxrss``) is that of the measurement alone; imports happen before the clock.
All tools must give identical n per step (asserted).

    python benchmarks/funnel.py [--scales 1 10] [--repeat 2] [--tools cxlab sql sql_full pandas]

Prints a Markdown table (seconds, best of --repeat; ratio to the counts-only SQL and to the
same-output SQL; peak RSS MB).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
ROOT = HERE.parent
STEPS = ["home_page", "product_page", "add_to_cart", "checkout", "purchase"]

GENERATE = """
import sys, duckdb
from cxlab.datasets import simulate_journeys
base, out, scale = sys.argv[1], sys.argv[2], int(sys.argv[3])
ev = simulate_journeys(120_000, seed=1).events[["customer_id", "ts", "touchpoint", "channel"]]
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
con.register("ev", ev)
con.execute(f"COPY (SELECT * FROM ev) TO '{base}' (FORMAT parquet)")
if scale > 1:
    con.execute(f'''COPY (SELECT customer_id || '-' || r AS customer_id, ts, touchpoint, channel
                         FROM read_parquet('{base}'), range({scale}) t(r))
                   TO '{out}' (FORMAT parquet)''')
"""

SQL = """
WITH e AS (SELECT customer_id, ts, touchpoint FROM read_parquet('{path}')
           WHERE touchpoint IN ('home_page', 'product_page', 'add_to_cart', 'checkout', 'purchase')),
s1 AS (SELECT customer_id, min(ts) AS t1 FROM e WHERE touchpoint = 'home_page' GROUP BY customer_id),
s2 AS (SELECT s.customer_id, s.t1, min(e.ts) AS t FROM s1 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'product_page' AND e.ts >= s.t1 AND e.ts <= s.t1 + INTERVAL 7 DAY
       GROUP BY s.customer_id, s.t1),
s3 AS (SELECT s.customer_id, s.t1, min(e.ts) AS t FROM s2 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'add_to_cart' AND e.ts >= s.t AND e.ts <= s.t1 + INTERVAL 7 DAY
       GROUP BY s.customer_id, s.t1),
s4 AS (SELECT s.customer_id, s.t1, min(e.ts) AS t FROM s3 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'checkout' AND e.ts >= s.t AND e.ts <= s.t1 + INTERVAL 7 DAY
       GROUP BY s.customer_id, s.t1),
s5 AS (SELECT s.customer_id, s.t1, min(e.ts) AS t FROM s4 s JOIN e USING (customer_id)
       WHERE e.touchpoint = 'purchase' AND e.ts >= s.t AND e.ts <= s.t1 + INTERVAL 7 DAY
       GROUP BY s.customer_id, s.t1)
SELECT (SELECT count(*) FROM s1), (SELECT count(*) FROM s2), (SELECT count(*) FROM s3),
       (SELECT count(*) FROM s4), (SELECT count(*) FROM s5)
"""

# The same closed funnel, hand-written to return what cxlab returns: per step n, the exact
# time-to-step percentiles (ms, interpolated) and effort (median number of the customer's
# events with t1 <= ts <= the step's occurrence). The per-customer row is assembled by left
# joins of the stages, and effort is one range join of all events to it.
SQL_FULL = SQL[:SQL.rindex("SELECT (SELECT")] + """,
w AS (SELECT s1.customer_id, s1.t1, s2.t AS t2, s3.t AS t3, s4.t AS t4, s5.t AS t5
      FROM s1 LEFT JOIN s2 USING (customer_id) LEFT JOIN s3 USING (customer_id)
      LEFT JOIN s4 USING (customer_id) LEFT JOIN s5 USING (customer_id)),
x AS (SELECT w.customer_id, any_value(w.t1) AS t1, any_value(w.t2) AS t2, any_value(w.t3) AS t3,
             any_value(w.t4) AS t4, any_value(w.t5) AS t5,
             count(*) FILTER (a.ts <= w.t1) AS x1, count(*) FILTER (a.ts <= w.t2) AS x2,
             count(*) FILTER (a.ts <= w.t3) AS x3, count(*) FILTER (a.ts <= w.t4) AS x4,
             count(*) FILTER (a.ts <= w.t5) AS x5
      FROM read_parquet('{path}') a JOIN w ON a.customer_id = w.customer_id AND a.ts >= w.t1
           AND a.ts <= coalesce(w.t5, w.t4, w.t3, w.t2, w.t1)
      GROUP BY w.customer_id)
SELECT count(t1), count(t2), count(t3), count(t4), count(t5),
       [0.0, 0.0, 0.0, 0.0],
       quantile_cont(epoch_ms(t2) - epoch_ms(t1), [0.25, 0.5, 0.75, 0.9]),
       quantile_cont(epoch_ms(t3) - epoch_ms(t1), [0.25, 0.5, 0.75, 0.9]),
       quantile_cont(epoch_ms(t4) - epoch_ms(t1), [0.25, 0.5, 0.75, 0.9]),
       quantile_cont(epoch_ms(t5) - epoch_ms(t1), [0.25, 0.5, 0.75, 0.9]),
       median(x1), median(x2) FILTER (t2 IS NOT NULL), median(x3) FILTER (t3 IS NOT NULL),
       median(x4) FILTER (t4 IS NOT NULL), median(x5) FILTER (t5 IS NOT NULL)
FROM x
"""

MEASURE = r"""
import json, resource, sys, time
tool, path = sys.argv[1], sys.argv[2]
STEPS = ["home_page", "product_page", "add_to_cart", "checkout", "purchase"]
if tool.startswith("cxlab"):
    import ibis
    from cxlab import funnel as F
    import statsmodels.stats.proportion, scipy.stats  # one-time imports (~0.8 s), not the funnel
    from cxlab.journey import JourneyMap
    JourneyMap.default()
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone='UTC'")
    t = con.read_parquet(path)
    t0 = time.perf_counter()
    if tool == "cxlab":
        f = F.funnel(t, window="7D", order="closed")
        n = f["n"].tolist()
    else:   # the same without the effort column (one join of all events fewer)
        n = F._run(t, [[s] for s in STEPS], STEPS, ["FMOT"] * 5, order="closed",
                   window=F._window("7D"), by=None, exclude=[], alpha=0.05, effort=False)["n"].tolist()
elif tool in ("sql", "sql_full"):
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    sql = open(sys.argv[3] if tool == "sql" else sys.argv[4]).read().format(path=path)
    t0 = time.perf_counter()
    row = con.execute(sql).fetchall()[0]
    n = list(row[:5])
else:
    import pandas as pd
    t0 = time.perf_counter()
    e = pd.read_parquet(path, columns=["customer_id", "ts", "touchpoint"],
                        filters=[("touchpoint", "in", STEPS)])
    w = pd.Timedelta("7D")
    t1 = e.loc[e["touchpoint"] == STEPS[0]].groupby("customer_id", sort=False)["ts"].min()
    prev, n = t1, [len(t1)]
    for tp in STEPS[1:]:
        x = e.loc[e["touchpoint"] == tp, ["customer_id", "ts"]]
        x = x[x["customer_id"].isin(prev.index)]
        p = prev.reindex(x["customer_id"]).to_numpy()
        s = t1.reindex(x["customer_id"]).to_numpy()
        x = x[(x["ts"].to_numpy() >= p) & (x["ts"].to_numpy() <= s + w)]
        prev = x.groupby("customer_id", sort=False)["ts"].min()
        n.append(len(prev))
secs = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
detail = None   # per step: p25, p50, p75, p90 (ms), effort -- outside the clock
if tool == "cxlab":
    ms = f[["p25", "p50", "p75", "p90"]].apply(lambda c: c.dt.total_seconds() * 1000)
    detail = [[*map(float, q), float(e)] for q, e in zip(ms.to_numpy(), f["effort"])]
elif tool == "sql_full":
    detail = [[*map(float, q), float(e)] for q, e in zip(row[5:10], row[10:15])]
print(json.dumps({"n": [int(v) for v in n], "seconds": secs, "rss_mb": rss, "detail": detail}))
"""


def run(code, *args):
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--tools", nargs="+",
                    default=["cxlab", "cxlab_noeffort", "sql", "sql_full", "pandas"])
    args = ap.parse_args(argv)
    WORK.mkdir(exist_ok=True)
    base = WORK / "funnel_1x.parquet"
    sql_file = WORK / "funnel_closed.sql"
    sql_file.write_text(SQL)
    full_file = WORK / "funnel_closed_full.sql"
    full_file.write_text(SQL_FULL)
    rows = []
    for scale in args.scales:
        path = base if scale == 1 else WORK / f"funnel_{scale}x.parquet"
        if not path.exists() or not base.exists():
            subprocess.run([sys.executable, "-c", GENERATE, str(base), str(path), str(scale)],
                           check=True, cwd=ROOT)
        import duckdb
        n_events = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]
        res = {}
        for tool in args.tools:
            best = None
            for _ in range(args.repeat):
                r = run(MEASURE, tool, path, sql_file, full_file)
                if best is None or r["seconds"] < best["seconds"]:
                    best = {**r, "rss_mb": max(r["rss_mb"], best["rss_mb"] if best else 0)}
            res[tool] = best
        ref = res.get("sql", next(iter(res.values())))
        for tool, r in res.items():
            assert r["n"] == ref["n"], (tool, r["n"], ref["n"])
        if "cxlab" in res and "sql_full" in res:   # the same percentiles and effort
            a, b = res["cxlab"]["detail"], res["sql_full"]["detail"]
            assert all(math.isclose(x, y, rel_tol=1e-12) for ra, rb in zip(a, b)
                       for x, y in zip(ra, rb)) and len(a) == len(b), (a, b)
        full = res.get("sql_full")
        for tool, r in res.items():
            rows.append((f"{n_events:,}", tool, r["seconds"], r["seconds"] / ref["seconds"],
                         r["seconds"] / full["seconds"] if full else float("nan"),
                         r["rss_mb"], r["n"]))
    print(f"\n{platform.python_version()}, {platform.machine()}, best of {args.repeat}\n")
    print("| events | tool | seconds | ratio to SQL | ratio to same-output SQL | peak RSS MB "
          "| n per step |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for ev, tool, s, ratio, ratio_full, rss, n in rows:
        full_txt = "n/a" if math.isnan(ratio_full) else f"{ratio_full:.2f}x"
        print(f"| {ev} | {tool} | {s:.2f} | {ratio:.2f}x | {full_txt} | {rss:.0f} "
              f"| {' > '.join(map(str, n))} |")


if __name__ == "__main__":
    main()
