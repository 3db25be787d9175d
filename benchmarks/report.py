"""`cxlab report all` end to end on about 1M simulated events.

Simulates ``--customers`` customers (120k give about 1M events), writes the export as
Parquet, then runs ``cxlab report all`` in a fresh subprocess (pull, funnel and drop-off,
voice / pain points / KPIs) and reports the wall time of the whole command and of each
notebook (from each run's metrics.json), and the command's peak RSS (the kernels run in
child processes, so theirs is reported as the largest child's). After the pull, the analysis
reports run ``--jobs`` at a time (cxlab's default: 2 on 2 or more cores).

    python benchmarks/report.py [--customers 120000] [--jobs 1]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=120_000)
    ap.add_argument("--keep", help="folder to keep the workspace and reports in")
    ap.add_argument("--jobs", type=int, help="`cxlab report all --jobs` (default: cxlab's, from the cores)")
    args = ap.parse_args(argv)
    from cxlab.datasets import simulate_journeys

    work = Path(args.keep or tempfile.mkdtemp(prefix="cxlab-report-bench-"))
    raw = work / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    sim = simulate_journeys(args.customers, seed=1)
    sim.events.to_parquet(raw / "events.parquet")
    sim.feedback.to_parquet(raw / "feedback.parquet")
    print(f"{len(sim.events):,} events, {len(sim.feedback):,} feedback rows, {args.customers:,} customers")
    cmd = [str(Path(sys.executable).with_name("cxlab")), "report", "all", "--no-progress",
           "--workspace", str(work / "ws.duckdb"), "--out", str(work / "reports"),
           "-p", f"events_path={raw / 'events.parquet'}", "-p", f"feedback_path={raw / 'feedback.parquet'}"]
    if args.jobs is not None:
        cmd += ["--jobs", str(args.jobs)]
    load = os.getloadavg()[0]  # the machine may be shared: the 1-minute load average when starting
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        return proc.returncode
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"cxlab report all{' --jobs ' + str(args.jobs) if args.jobs is not None else ''}: {wall:.1f} s wall, "
          f"largest child peak RSS {child:,.0f} MB, load average before {load:.2f}")
    for m in sorted((work / "reports").glob("*/*.metrics.json")):
        run = json.loads(m.read_text()).get("run", {})
        print(f"  {m.name.replace('.metrics.json', ''):<24} {run.get('seconds', float('nan')):7.1f} s")
    print(f"reports in {work / 'reports'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
