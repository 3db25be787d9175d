"""Benchmark: peak memory of a pull of a highly compressed CSV, against plain DuckDB in the same run.

Data: a gzip CSV of events whose rows repeat a 40-row block (so it compresses ~170:1),
expanding to ``--expand-mb`` MB per file size asked. Each measurement runs in a fresh
subprocess writing a fresh DuckDB file, so peak RSS (ru_maxrss) is that of the
measurement alone:

- plain DuckDB: ``CREATE TABLE events AS SELECT * FROM read_csv(file)`` with DuckDB's
  default settings (memory limit 80% of RAM), the reference;
- cxlab pull, unbounded: ``ws.pull(file, memory_limit=<all RAM>)`` (what a pull did before
  issue 17: DuckDB's default limit);
- cxlab pull: ``ws.pull(file)`` with the default ``PULL_MEMORY_LIMIT`` (DuckDB spills to
  ``<workspace>.tmp`` beyond it).

    python benchmarks/pull_memory.py [--expand-mb 300 1200]

Prints a Markdown table; figures are recorded in benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work_memory"

MEASURE = """
import json, resource, sys, time
tool, path, db, limit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
if tool == 'cxlab':
    import cxlab
    from cxlab.io import contract
    contract("events")  # one-time imports are not part of a pull
    ws = cxlab.connect(db)
    t0 = time.perf_counter()
    r = ws.pull(path, memory_limit=limit or None)
    rows, limit_used = r.rows_read, limit or cxlab.workspace.PULL_MEMORY_LIMIT
    ws.close()
else:
    import duckdb
    con = duckdb.connect(db)
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_csv('{path}')")
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    limit_used = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    con.close()
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t0, "limit": limit_used,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_gzip(path: Path, expand_bytes: int) -> int:
    """A gzip CSV of a repeated 40-row block expanding to about ``expand_bytes``; returns rows."""
    tps = ("home_page", "product_page", "checkout", "search")
    block = "".join(f"c{i:05d},2026-03-01T{i % 24:02d}:{i % 60:02d}:00Z,{tps[i % 4]},web,{i % 7}.5,desktop\n"
                    for i in range(40)).encode()
    reps = expand_bytes // len(block)
    with gzip.open(path, "wb", compresslevel=9) as g:
        g.write(b"customer_id,ts,touchpoint,channel,value,device\n")
        for _ in range(reps):
            g.write(block)
    return reps * 40


def measure(tool: str, path: Path, limit: str = "") -> dict:
    db = WORK / f"{tool}.duckdb"
    for p in (db, Path(f"{db}.tmp"), Path(f"{db}.wal")):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    out = subprocess.run([sys.executable, "-c", MEASURE, tool, str(path), str(db), limit],
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--expand-mb", type=int, nargs="+", default=[300, 1200])
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import duckdb

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {ram_gb:.0f} GB RAM, "
          f"python {platform.python_version()}, duckdb {duckdb.__version__}\n")
    print("| file | gzip MB | rows | plain DuckDB peak RSS MB (s) | cxlab unbounded peak RSS MB (s) "
          "| cxlab pull peak RSS MB (s) | cxlab pull limit |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for mb in args.expand_mb:
        path = WORK / f"repeated_{mb}MB.csv.gz"
        n = write_gzip(path, mb * 10**6)
        ref = measure("duckdb", path)
        unbounded = measure("cxlab", path, f"{int(ram_gb)}GB")
        bounded = measure("cxlab", path)
        assert ref["rows"] == unbounded["rows"] == bounded["rows"] == n, (ref, unbounded, bounded, n)
        cells = [f"{r['peak_rss_mb']:,.0f} ({r['seconds']:.1f})" for r in (ref, unbounded, bounded)]
        print(f"| {mb} MB of CSV | {path.stat().st_size / 1e6:.1f} | {n:,} | " + " | ".join(cells)
              + f" | {bounded['limit']} |")
        path.unlink()
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
