"""Benchmark: cxlab DropoffModel (person-step table built and collapsed in the engine, GLM on
the patterns) vs statsmodels Logit on the uncollapsed person-step rows fetched to pandas.

    python benchmarks/dropoff.py [--customers 1000000] [--repeat 3]

The simulation is written once to benchmarks/_work/ as Parquet and pulled once into a
workspace there. Each measurement runs in a fresh subprocess (peak RSS = its ru_maxrss);
imports happen before the clock starts. Both sides must give the same coefficients (1e-6).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
MODEL = dict(covariates=["channel"], exposures=["popup_shown", "registration_form"],
             interactions={"registration_form": ["checkout"]})


def _paths(n):
    return WORK / f"dropoff_events_{n}.parquet", WORK / f"dropoff_{n}.duckdb"


def prepare(n: int) -> None:
    import cxlab
    from cxlab.datasets import simulate_journeys

    WORK.mkdir(parents=True, exist_ok=True)
    pq, db = _paths(n)
    if not pq.exists():
        t = time.perf_counter()
        sim = simulate_journeys(n, seed=1)
        sim.events.to_parquet(pq, index=False)
        print(f"simulated {n:,} customers -> {len(sim.events):,} events in "
              f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
        del sim
    if not db.exists():
        with cxlab.connect(db) as ws:
            r = ws.pull(pq)
            print(f"pulled: {r}", file=sys.stderr)


def run(mode: str, n: int) -> dict:
    import pandas as pd
    import statsmodels.api as sm

    import cxlab
    from cxlab.dropoff import DropoffModel, person_steps

    _, db = _paths(n)
    ws = cxlab.connect(db, read_only=True)
    ws.events().count().execute()               # open the file before the clock starts
    out = {"mode": mode}
    t = time.perf_counter()
    if mode == "cxlab":
        res = DropoffModel(**MODEL).fit(ws)
        out.update(seconds=time.perf_counter() - t, params=res.params.to_dict(), rows=res.n_rows,
                   patterns=res.n_patterns, customers=res.n_customers)
    else:
        ps = person_steps(ws, covariates=MODEL["covariates"], exposures=MODEL["exposures"]).execute()
        t_fetch = time.perf_counter() - t
        step = ps["step"].to_numpy()
        X = pd.DataFrame({f"step[{s}]": (step == s).astype(float)
                          for s in ("home_page", "product_page", "add_to_cart", "checkout")})
        for lv in ("app", "store"):
            X[f"channel[{lv}]"] = (ps["channel"].to_numpy() == lv).astype(float)
        X["popup_shown"] = ps["popup_shown"].to_numpy(float)
        X["registration_form:checkout"] = ps["registration_form"].to_numpy(float) * (step == "checkout")
        fit = sm.Logit(ps["left"].to_numpy(float), X).fit(disp=0, tol=1e-12)
        out.update(seconds=time.perf_counter() - t, fetch_seconds=t_fetch,
                   params=fit.params.to_dict(), rows=len(ps))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ws.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", choices=["cxlab", "statsmodels"])
    a = ap.parse_args()
    if a.child:
        print(json.dumps(run(a.child, a.customers)))
        return
    prepare(a.customers)
    results = {}
    for mode in ("cxlab", "statsmodels"):
        runs = []
        for _ in range(a.repeat):
            p = subprocess.run([sys.executable, __file__, "--child", mode, "--customers",
                                str(a.customers)], capture_output=True, text=True, check=True)
            runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
        results[mode] = min(runs, key=lambda r: r["seconds"])
        results[mode]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    cx, sm_ = results["cxlab"], results["statsmodels"]
    assert set(cx["params"]) == set(sm_["params"]), (cx["params"], sm_["params"])
    diff = max(abs(cx["params"][k] - sm_["params"][k]) for k in cx["params"])
    assert diff < 1e-6, f"coefficients differ by {diff}"
    print(f"\n{a.customers:,} customers, {cx['customers']:,} with a home page, {cx['rows']:,} "
          f"person-step rows, {cx['patterns']} patterns; max |coef diff| = {diff:.1e}; best of "
          f"{a.repeat}\n")
    print("| method | seconds | peak RSS MB |")
    print("|---|---:|---:|")
    print(f"| cxlab DropoffModel.fit (engine: person-steps + collapse; GLM on patterns) | "
          f"{cx['seconds']:.2f} | {cx['peak_rss_mb']:.0f} |")
    print(f"| statsmodels Logit on uncollapsed rows (fetch {sm_['fetch_seconds']:.2f} s + fit) | "
          f"{sm_['seconds']:.2f} | {sm_['peak_rss_mb']:.0f} |")
    print(f"| ratio | {sm_['seconds'] / cx['seconds']:.1f}x faster | |")


if __name__ == "__main__":
    main()
