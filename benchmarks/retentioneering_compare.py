"""Peer benchmark: cxlab against retentioneering on the same event export, in the same run.

retentioneering is a *peer*, never a dependency of cxlab: it lives in its own virtual
environment, and this script only launches that environment's Python in a subprocess.
Create the venv once (retentioneering >= 5 runs on Python 3.11; it pulls pandas, DuckDB,
posthog, mcp, ...)::

    python3 -m venv /tmp/rete-venv
    RETENTIONEERING_NO_TRACK=1 /tmp/rete-venv/bin/pip install retentioneering

retentioneering sends usage telemetry (PostHog) by default; every subprocess started here
gets ``RETENTIONEERING_NO_TRACK=1``, and the child refuses to run without it.

Then, from the repository root, with cxlab's own environment::

    .venv/bin/python benchmarks/retentioneering_compare.py --rete-python /tmp/rete-venv/bin/python \
        [--scales 1 10] [--format csv|parquet] [--repeat 1] [--rete-full-transitions]

Data: the inputs of ``benchmarks/funnel.py`` (``simulate_journeys(120_000, seed=1)``, about
1M events, in ``_work/funnel_1x.parquet``; ``_work/funnel_10x.parquet`` repeats it 10 times
with customer-id suffixes, about 10M events; they are generated the same way when missing).
Each is exported once to ``_work/rete_events_{N}x.csv`` (columns customer_id, ts as ISO
8601 UTC with microseconds and ``Z``, touchpoint, channel), the file both tools read: it is
the format retentioneering's ``Eventstream`` reads natively (``pd.read_csv``), and cxlab
pulls it with ``Workspace.pull``. ``--format parquet`` feeds both the Parquet file instead.

Per size and tool, one fresh subprocess (imports happen before the clock, but the process
wall time including interpreter start and imports is reported too):

* cxlab -- ``ws = cxlab.connect(<tmp>.duckdb); ws.pull(file)`` (load), ``funnel(ws,
  window="7D")`` (closed; home_page > product_page > add_to_cart > checkout > purchase),
  ``transitions(ws)``, ``step_matrix(ws, max_steps=10)``.
* retentioneering -- ``pd.read_csv`` + ``Eventstream(df, schema={"path_cols":
  ["customer_id"], "event_col": "touchpoint", "timestamp_col": "ts"})`` (load),
  ``stream.funnel_data(steps=...)``, ``stream.transition_graph_data()`` (the headless
  transition matrix, default ``edge_weight="proba_out"``), ``stream.step_matrix_data(
  max_steps=10)`` -- the documented headless ("_data") counterparts of its widgets; no
  widget is built or rendered.

* hand-written DuckDB floor -- what the same four answers cost with nothing around them:
  the file read into an in-memory DuckDB table (no checks, no sessions, nothing
  persisted), the counts-only closed funnel SQL of ``funnel.py``, and one window pass
  (``lead`` and ``row_number`` over customer, ts) shared by the transition probabilities
  and the step-matrix counts. It shows how much of the 5x aim any DuckDB-based tool can
  reach on this machine; its numbers must agree with cxlab's.

Peak RSS is the child's ``ru_maxrss`` (``os.wait4``). Outside the clock, each child also
returns what is needed to check the numbers agree: cxlab computes its closed funnel once
more with ``window=None`` (retentioneering's funnel has no conversion window), and the
transition probabilities and step-matrix shares are compared cell by cell.

Prints a Markdown table; the last column = retentioneering's total / the tool's total (work
after the imports) at the same size. The project's aim: cxlab at least 5x faster end to end.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
ROOT = HERE.parent
STEPS = ["home_page", "product_page", "add_to_cart", "checkout", "purchase"]

# --------------------------------------------------------------------------- children
CXLAB = r"""
import json, os, resource, sys, time
path, ws_path = sys.argv[1], sys.argv[2]
STEPS = json.loads(sys.argv[3])
import cxlab
from cxlab.funnel import funnel
from cxlab.paths import transitions, step_matrix
import statsmodels.stats.proportion, scipy.stats   # one-time imports, not the work
from cxlab.journey import JourneyMap
JourneyMap.default()
T = {}
t0 = time.perf_counter()
ws = cxlab.connect(ws_path)
res = ws.pull(path)
T["load"] = time.perf_counter() - t0
t = time.perf_counter()
f = funnel(ws, window="7D", steps=STEPS)
T["funnel"] = time.perf_counter() - t
t = time.perf_counter()
tr = transitions(ws)
T["transitions"] = time.perf_counter() - t
t = time.perf_counter()
sm = step_matrix(ws, max_steps=10)
T["step_matrix"] = time.perf_counter() - t
T["total"] = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
# ---- outside the clock: what the agreement checks need
f_nowin = funnel(ws, window=None, steps=STEPS)
out = {
    "times": T, "rss_self_mb": rss, "rows": int(res.rows_added),
    "customers": int(sm.attrs["customers"]),
    "funnel": [int(v) for v in f["n"]],
    "funnel_nowindow": [int(v) for v in f_nowin["n"]],
    "transitions": [[r.touchpoint, r.next_touchpoint, int(r.n), float(r.probability)]
                    for r in tr.itertuples()],
    "step_matrix": {str(tp): [float(v) for v in row] for tp, row in sm.iterrows()},
}
print("@@RESULT@@" + json.dumps(out))
"""

RETE = r"""
import json, os, resource, sys, time
assert os.environ.get("RETENTIONEERING_NO_TRACK"), "refusing to run retentioneering with telemetry on"
path, fmt = sys.argv[1], sys.argv[2]
STEPS = json.loads(sys.argv[3])
full = sys.argv[4] == "1"
import pandas as pd
import retentioneering
from retentioneering import Eventstream
import retentioneering.tools.funnel, retentioneering.tools.transition_matrix, retentioneering.tools.step_matrix
from retentioneering import engine
engine.run("SELECT 1 AS x")           # build its shared DuckDB instance before the clock
SCHEMA = {"path_cols": ["customer_id"], "event_col": "touchpoint", "timestamp_col": "ts"}
T = {}
t0 = time.perf_counter()
df = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
stream = Eventstream(df, schema=SCHEMA)
del df
T["load"] = time.perf_counter() - t0
t = time.perf_counter()
fd = stream.funnel_data(steps=STEPS)
T["funnel"] = time.perf_counter() - t
t = time.perf_counter()
tm = stream.transition_graph_data()          # edge_weight="proba_out"
if full:   # the other quantities cxlab.transitions returns in the same call
    stream.transition_graph_data(edge_weight="count")
    stream.transition_graph_data(edge_weight="unique_paths")
    stream.transition_graph_data(edge_weight="time_median")
T["transitions"] = time.perf_counter() - t
t = time.perf_counter()
sm = stream.step_matrix_data(max_steps=10)
T["step_matrix"] = time.perf_counter() - t
T["total"] = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out = {
    "times": T, "rss_self_mb": rss, "version": retentioneering.__version__,
    "rows": int(len(stream.df)), "customers": int(stream.df["customer_id"].nunique()),
    "funnel": [int(s["unique_paths"]) for s in fd["steps"]],
    "funnel_rate_all_paths": [float(s["conversion_rate"]) for s in fd["steps"]],
    "transitions": [[str(a), str(b), None, float(tm.loc[a, b])]
                    for a in tm.index for b in tm.columns if tm.loc[a, b] != 0],
    "step_matrix": {str(e): [float(v) for v in sm.loc[e, list(range(1, 11))]] for e in sm.index},
}
print("@@RESULT@@" + json.dumps(out))
"""


FLOOR = r"""
import json, resource, sys, time
path, fmt = sys.argv[1], sys.argv[2]
import duckdb
con = duckdb.connect()                 # in memory: nothing persisted
con.execute("SET TimeZone='UTC'")
src = f"read_csv('{path}')" if fmt == "csv" else f"read_parquet('{path}')"
T = {}
t0 = time.perf_counter()
con.execute(f"CREATE TABLE events AS SELECT customer_id, CAST(ts AS TIMESTAMPTZ) AS ts, touchpoint, "
            f"channel FROM {src}")
T["load"] = time.perf_counter() - t0
t = time.perf_counter()
funnel = list(con.execute(sys.argv[3]).fetchone())   # funnel.py's counts-only SQL, on events
T["funnel"] = time.perf_counter() - t
t = time.perf_counter()
# one window pass shared by transitions and the step matrix (cxlab's order of contacts)
con.execute("CREATE TEMP TABLE w AS SELECT touchpoint, "
            "coalesce(lead(touchpoint) OVER w, '(end)') AS nxt, row_number() OVER w AS pos "
            "FROM events WINDOW w AS (PARTITION BY customer_id ORDER BY ts, touchpoint, channel)")
tr = con.execute("SELECT touchpoint, nxt, count(*) FROM w GROUP BY ALL").fetchall()
T["transitions"] = time.perf_counter() - t
t = time.perf_counter()
sm = con.execute("SELECT pos, touchpoint, count(*) FROM w WHERE pos <= 10 GROUP BY ALL").fetchall()
n = sum(c for pos, _, c in sm if pos == 1)   # one first contact per customer
T["step_matrix"] = time.perf_counter() - t
T["total"] = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out_n = {}
for a, b, c in tr:
    out_n[a] = out_n.get(a, 0) + c
share = {}
for pos, tp, c in sm:
    share.setdefault(tp, [0.0] * 10)[pos - 1] = c / n
for k in range(10):
    share.setdefault("(end)", [0.0] * 10)[k] = 1 - sum(v[k] for tp, v in share.items() if tp != "(end)")
out = {"times": T, "rss_self_mb": rss, "rows": int(con.execute("SELECT count(*) FROM events").fetchone()[0]),
       "customers": int(n), "funnel": [int(v) for v in funnel],
       "transitions": [[a, b, int(c), c / out_n[a]] for a, b, c in tr], "step_matrix": share}
print("@@RESULT@@" + json.dumps(out))
"""


def _child(python, code, args, env=None):
    """Run one measurement; returns (result dict, process wall s, peak RSS MB of the child)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen([python, "-c", code, *map(str, args)], stdout=out, stderr=err,
                             cwd=ROOT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if p.returncode != 0:
        raise RuntimeError(f"{python} failed ({p.returncode}):\n{stderr[-4000:]}")
    line = next(x for x in stdout.splitlines() if x.startswith("@@RESULT@@"))
    return json.loads(line[len("@@RESULT@@"):]), wall, ru.ru_maxrss / 1024


# --------------------------------------------------------------------------- inputs
def _funnel_bench():
    """benchmarks/funnel.py as a module: its input generator and its hand-written SQL."""
    spec = importlib.util.spec_from_file_location("_cx_funnel_bench", HERE / "funnel.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _inputs(scale: int, fmt: str) -> Path:
    base = WORK / "funnel_1x.parquet"
    parquet = base if scale == 1 else WORK / f"funnel_{scale}x.parquet"
    if not parquet.exists() or not base.exists():
        subprocess.run([sys.executable, "-c", _funnel_bench().GENERATE, str(base), str(parquet), str(scale)],
                       check=True, cwd=ROOT)
    if fmt == "parquet":
        return parquet
    csv = WORK / f"rete_events_{scale}x.csv"
    if not csv.exists() or csv.stat().st_mtime < parquet.stat().st_mtime:
        import duckdb

        tmp = csv.with_suffix(".csv.tmp")
        con = duckdb.connect()
        con.execute("SET TimeZone='UTC'")
        con.execute(f"""COPY (SELECT customer_id,
                                     strftime(timezone('UTC', ts), '%Y-%m-%dT%H:%M:%S.%fZ') AS ts,
                                     touchpoint, channel
                              FROM read_parquet('{parquet}'))
                        TO '{tmp}' (FORMAT csv, HEADER true)""")
        tmp.replace(csv)
    return csv


# --------------------------------------------------------------------------- checks
def _compare(cx: dict, rt: dict) -> list[str]:
    notes = []
    notes.append(f"events {cx['rows']:,} (cxlab) / {rt['rows']:,} (retentioneering); customers "
                 f"{cx['customers']:,} / {rt['customers']:,}")
    same = cx["funnel_nowindow"] == rt["funnel"]
    notes.append("funnel n per step: cxlab closed 7D " + " > ".join(map(str, cx["funnel"]))
                 + "; cxlab closed no window " + " > ".join(map(str, cx["funnel_nowindow"]))
                 + "; retentioneering " + " > ".join(map(str, rt["funnel"]))
                 + (" -- identical to cxlab without window" if same else
                    " -- DIFFERS from cxlab without window by "
                    + ", ".join(str(a - b) for a, b in zip(rt["funnel"], cx["funnel_nowindow"]))))
    # transitions: cxlab "(end)" <-> retentioneering "path_end"; path_start rows are extra
    cp = {(a, b): p for a, b, _, p in cx["transitions"]}
    rp = {(a, "(end)" if b == "path_end" else b): p for a, b, _, p in rt["transitions"]
          if a != "path_start"}
    keys = set(cp) | set(rp)
    diff = max((abs(cp.get(k, 0.0) - rp.get(k, 0.0)) for k in keys), default=0.0)
    notes.append(f"transition probabilities: {len(cp)} pairs (cxlab) / {len(rp)} pairs "
                 f"(retentioneering, without path_start -> ...); max |difference| {diff:.2e}")
    cs = cx["step_matrix"]
    rs = {("(end)" if k == "path_end" else k): v for k, v in rt["step_matrix"].items()
          if k != "path_start"}
    diff = max((abs(a - b) for k in set(cs) | set(rs)
                for a, b in zip(cs.get(k, [0.0] * 10), rs.get(k, [0.0] * 10))), default=0.0)
    notes.append(f"step matrix shares (steps 1..10): max |difference| {diff:.2e}")
    return notes


def _compare_floor(cx: dict, fl: dict) -> list[str]:
    """The floor must compute the same numbers as cxlab (funnel with the window, transition
    probabilities, step-matrix shares)."""
    notes = ["DuckDB floor: funnel n per step " + " > ".join(map(str, fl["funnel"]))
             + (" -- identical to cxlab" if fl["funnel"] == cx["funnel"] else " -- DIFFERS")]
    cp = {(a, b): p for a, b, _, p in cx["transitions"]}
    fp = {(a, b): p for a, b, _, p in fl["transitions"]}
    diff = max(abs(cp.get(k, 0.0) - fp.get(k, 0.0)) for k in set(cp) | set(fp))
    notes.append(f"DuckDB floor: transition probabilities, {len(fp)} pairs, max |difference| "
                 f"from cxlab {diff:.2e}")
    cs, fs = cx["step_matrix"], fl["step_matrix"]
    diff = max(abs(a - b) for k in set(cs) | set(fs)
               for a, b in zip(cs.get(k, [0.0] * 10), fs.get(k, [0.0] * 10)))
    notes.append(f"DuckDB floor: step matrix shares, max |difference| from cxlab {diff:.2e}")
    return notes


# --------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rete-python", default="/tmp/rete-venv/bin/python",
                    help="the Python of the separate retentioneering venv")
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--format", choices=["csv", "parquet"], default="csv")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool and size (best kept)")
    ap.add_argument("--rete-full-transitions", action="store_true",
                    help="also time retentioneering's count, unique_paths and time_median "
                         "matrices (cxlab.transitions returns all of them in one call)")
    args = ap.parse_args(argv)
    if not Path(args.rete_python).exists():
        sys.exit(f"{args.rete_python} not found; create the venv as described at the top of "
                 "this file")
    WORK.mkdir(exist_ok=True)
    rete_env = {**os.environ, "RETENTIONEERING_NO_TRACK": "1"}
    rete_env.pop("PYTHONPATH", None)
    rows, notes, version = [], [], "?"
    bench = _funnel_bench()
    assert bench.STEPS == STEPS, "funnel.py's SQL must count the same steps"
    floor_funnel = bench.SQL.replace("read_parquet('{path}')", "events")
    for scale in args.scales:
        path = _inputs(scale, args.format)
        res = {}
        for _ in range(args.repeat):
            tmpdir = Path(tempfile.mkdtemp(prefix="cx-rete-", dir=WORK))
            try:
                r = _child(sys.executable, CXLAB, [path, tmpdir / "ws.duckdb", json.dumps(STEPS)])
            finally:
                shutil.rmtree(tmpdir, ignore_errors=True)
            if "cxlab" not in res or r[0]["times"]["total"] < res["cxlab"][0]["times"]["total"]:
                res["cxlab"] = r
            r = _child(sys.executable, FLOOR, [path, args.format, floor_funnel])
            if "floor" not in res or r[0]["times"]["total"] < res["floor"][0]["times"]["total"]:
                res["floor"] = r
            r = _child(args.rete_python, RETE, [path, args.format, json.dumps(STEPS),
                                                int(args.rete_full_transitions)], env=rete_env)
            if "rete" not in res or r[0]["times"]["total"] < res["rete"][0]["times"]["total"]:
                res["rete"] = r
        version = res["rete"][0]["version"]
        rete_total = res["rete"][0]["times"]["total"]
        for tool, name in (("cxlab", "cxlab"), ("floor", "hand-written DuckDB floor"),
                           ("rete", f"retentioneering {version}")):
            out, wall, rss = res[tool]
            tm = out["times"]
            rows.append((f"{scale}x ({out['rows'] / 1e6:.1f}M)", name, tm["load"], tm["funnel"],
                         tm["transitions"], tm["step_matrix"], tm["total"], wall, rss,
                         rete_total / tm["total"]))
        notes.append((scale, _compare(res["cxlab"][0], res["rete"][0])
                      + _compare_floor(res["cxlab"][0], res["floor"][0])))
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    print(f"\nPython {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"input {args.format}, best of {args.repeat}, load average after the run "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          + ("; retentioneering transitions = proba_out + count + unique_paths + time_median"
             if args.rete_full_transitions else "") + "\n")
    print("| size | tool | load s | funnel s | transitions s | step matrix s | total s "
          "| process wall s | peak RSS MB | retentioneering / tool |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, tool, ld, fn, tr, sm, tot, wall, rss, ratio in rows:
        print(f"| {size} | {tool} | {ld:.2f} | {fn:.2f} | {tr:.2f} | {sm:.2f} | {tot:.2f} "
              f"| {wall:.2f} | {rss:.0f} | {ratio:.2f}x |")
    print()
    for scale, lines in notes:
        print(f"{scale}x:")
        for line in lines:
            print(f"  - {line}")


if __name__ == "__main__":
    main()
