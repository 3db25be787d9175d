"""Benchmark: cxlab pull against a plain DuckDB insert of the same file, in the same run.

Data: a 10M-event Parquet and a 1M-event CSV with the canonical columns plus a property,
written by DuckDB (1M / 100k customers, 25 touchpoints, 6 channels, session ids given).
Each measurement runs in a fresh subprocess writing a fresh DuckDB file, so peak RSS
(ru_maxrss) is that of the measurement alone.

    python benchmarks/pull.py [--events 10000000] [--csv-events 1000000] [--repeat 2]

Prints a Markdown table; figures are recorded in benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"

GENERATE = """
import duckdb, sys
n, customers, path, fmt = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
tps = ['search','ad_click','social_post_view','review_read','newsletter_open','home_page','popup_shown',
       'product_page','add_to_cart','registration_form','checkout','purchase','store_visit','sales_call',
       'order_confirmation','delivery','product_use','support_contact','support_reply','return_request',
       'upgrade_offer','review_written','social_share','survey_response','home_page']
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
sql = f'''
SELECT 'C' || lpad(CAST(i % {customers} AS VARCHAR), 8, '0') AS customer_id,
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(CAST(i // {customers} AS BIGINT) * 3600 + (i % 997)) AS ts,
       ({tps}::VARCHAR[])[1 + CAST(hash(i) % 25 AS INTEGER)] AS touchpoint,
       (['web','app','store','call_centre','email','social'])[1 + CAST(hash(i + 1) % 6 AS INTEGER)] AS channel,
       'C' || lpad(CAST(i % {customers} AS VARCHAR), 8, '0') || '-S' || CAST(i // {customers} AS VARCHAR) AS session_id,
       CASE WHEN hash(i) % 25 = 10 THEN round(10 + (hash(i + 2) % 20000) / 100.0, 2) END AS value,
       (['desktop','mobile','tablet'])[1 + CAST(hash(i + 3) % 3 AS INTEGER)] AS device
FROM range({n}) t(i)'''
if fmt == 'parquet':
    con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
else:
    con.execute(f"COPY (SELECT customer_id, strftime(ts, '%Y-%m-%dT%H:%M:%SZ') AS ts, touchpoint, channel, "
                f"session_id, value, device FROM ({sql})) TO '{path}' (FORMAT csv, HEADER)")
"""

MEASURE = """
import json, resource, sys, time
tool, path, db = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
if tool == 'cxlab':
    import cxlab
    from cxlab.io import contract
    contract("events")  # one-time imports (pandera, ibis: ~0.75 s) are not part of a pull
    ws = cxlab.connect(db)
    t0 = time.perf_counter()
    r = ws.pull(path)
    rows = r.rows_added
    elapsed = time.perf_counter() - t0
    ws.close()
else:
    import duckdb
    con = duckdb.connect(db)
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar=false")
    t0 = time.perf_counter()
    reader = f"read_parquet('{path}')" if path.endswith('.parquet') else f"read_csv('{path}')"
    con.execute(f"CREATE TABLE events AS SELECT * FROM {reader} LIMIT 0")
    con.execute(f"INSERT INTO events SELECT * FROM {reader}")
    rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    elapsed = time.perf_counter() - t0
    con.close()
print(json.dumps({"tool": tool, "rows": rows, "seconds": elapsed,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(code: str, *args) -> str:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return out.stdout


def measure(tool: str, path: Path, repeat: int) -> dict:
    best = None
    for i in range(repeat):
        db = WORK / f"{tool}-{path.stem}-{i}.duckdb"
        db.unlink(missing_ok=True)
        res = json.loads(run(MEASURE, tool, path, db).strip().splitlines()[-1])
        db.unlink(missing_ok=True)
        if best is None or res["seconds"] < best["seconds"]:
            best = res
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--csv-events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the generated files in benchmarks/_work")
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    files = [(WORK / f"events_{args.events}.parquet", args.events, args.events // 10, "parquet"),
             (WORK / f"events_{args.csv_events}.csv", args.csv_events, args.csv_events // 10, "csv")]
    for path, n, customers, fmt in files:
        if not path.exists():
            run(GENERATE, n, customers, path, fmt)
    import duckdb
    print(f"machine: {platform.machine()}, python {platform.python_version()}, duckdb {duckdb.__version__}\n")
    print("| file | rows | plain DuckDB s | cxlab pull s | ratio | plain rows/s | cxlab rows/s | plain peak RSS MB | cxlab peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path, n, _, fmt in files:
        ref = measure("duckdb", path, args.repeat)
        cx = measure("cxlab", path, args.repeat)
        assert ref["rows"] == cx["rows"] == n, (ref, cx)
        print(f"| {path.name} ({path.stat().st_size / 1e6:.0f} MB) | {n:,} | {ref['seconds']:.2f} | "
              f"{cx['seconds']:.2f} | {cx['seconds'] / ref['seconds']:.2f}x | {n / ref['seconds']:,.0f} | "
              f"{n / cx['seconds']:,.0f} | {ref['peak_rss_mb']:,.0f} | {cx['peak_rss_mb']:,.0f} |")
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
