"""Benchmark: the pain-point explorer page in headless Chromium against `cxlab explore`.

    python benchmarks/widgets_browser.py [--customers 123000] [--pages 3]

(`benchmarks/widgets.py` runs it after its in-process figures.) The workspace is the one
`benchmarks/widgets.py` prepares (~1M events at 123,000 customers). Four ways of opening the
page, each on its own `cxlab explore` server, timed from `page.goto` to:

- ``first_paint_s``: the first thing drawn by the notebook (the progress shell or the panels);
- ``panels_s``: the first panels painted (the pain-point table and the emotional curve).

1. ``reference``: today's path before the aggregates were kept: no cache
   (``CXLAB_EXPLORER_CACHE=off``), no preheated kernel: every page builds everything.
2. ``cold``: an empty cache, no preheated kernel: the first page ever (it builds and keeps).
3. ``warm_new_kernel``: cache kept, no preheated kernel: a page whose kernel starts on request.
4. ``warm``: cache kept, `cxlab explore` as shipped (one preheated kernel): ``--pages`` page
   loads one after another (a reload, a new tab), after the pool is ready.

Peak RSS: the largest resident memory of the server's process tree (Voilà and its kernels,
summed) and of one kernel, sampled every 0.2 s while each scenario runs.
Chromium: Debian's /usr/bin/chromium (``apt-get install -y chromium``), driven by Playwright.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PANELS = "table.pp-table"
CURVE = "svg[aria-label='Emotional curve']"


class _RSS:
    """Peak RSS of a process tree, sampled in a thread."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.tree_mb = self.kernel_mb = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                rss = []
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        rss.append((p.memory_info().rss / 2**20, "ipykernel" in " ".join(p.cmdline())))
                self.tree_mb = max(self.tree_mb, sum(r for r, _ in rss))
                self.kernel_mb = max([self.kernel_mb] + [r for r, k in rss if k])
            except psutil.Error:
                pass
            self._stop.wait(0.2)

    def stop(self) -> dict:
        self._stop.set()
        self._t.join()
        return {"peak_rss_tree_mb": round(self.tree_mb), "peak_rss_kernel_mb": round(self.kernel_mb)}


@contextlib.contextmanager
def serving(db: Path, env: dict):
    token = "b" * 32
    proc = subprocess.Popen([sys.executable, "-m", "cxlab.cli", "explore", "--workspace", str(db), "--token", token],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, **env))
    url = None
    while url is None:
        line = proc.stdout.readline()
        m = re.search(r"open: (\S+)", line or "")
        if m:
            url = m.group(1)
        elif not line and proc.poll() is not None:
            raise RuntimeError("cxlab explore stopped before printing its address")
    rss = _RSS(proc.pid)
    try:
        yield url, rss
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def load(browser, url: str, *, width: int = 1280, height: int = 800, timeout_s: float = 900) -> dict:
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        t0 = time.perf_counter()
        page.goto(url, timeout=timeout_s * 1000)
        page.wait_for_selector(f".cx-loading, {PANELS}", timeout=timeout_s * 1000)
        first = time.perf_counter() - t0
        page.wait_for_selector(PANELS, timeout=timeout_s * 1000)
        page.wait_for_selector(CURVE, timeout=timeout_s * 1000)
        panels = time.perf_counter() - t0
        cache = page.get_attribute(".cx-cache", "data-cache") if page.query_selector(".cx-cache") else None
        return {"first_paint_s": round(first, 2), "panels_s": round(panels, 2), "cache": cache}
    finally:
        page.close()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=123_000)
    ap.add_argument("--pages", type=int, default=3)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from widgets import _paths, prepare

    from cxlab._explore_cache import cache_root
    from playwright.sync_api import sync_playwright

    prepare(args.customers)
    _, _, db = _paths(args.customers)
    out = {"customers": args.customers}
    no_preheat = {"CXLAB_EXPLORE_PREHEAT": "0"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            with serving(db, {**no_preheat, "CXLAB_EXPLORER_CACHE": "off"}) as (url, rss):
                out["reference"] = {**load(browser, url), **rss.stop()}
            shutil.rmtree(cache_root(db), ignore_errors=True)
            with serving(db, no_preheat) as (url, rss):
                out["cold"] = {**load(browser, url), **rss.stop()}
            with serving(db, no_preheat) as (url, rss):
                out["warm_new_kernel"] = {**load(browser, url), **rss.stop()}
            with serving(db, {}) as (url, rss):
                time.sleep(20)          # the pool's kernel runs the notebook (reads the kept aggregates)
                loads = []
                for _ in range(args.pages):
                    loads.append(load(browser, url))
                    time.sleep(5)       # Voilà refills the pool (fill_delay 1 s + the notebook)
                out["warm"] = {"loads": loads, "panels_s_max": max(x["panels_s"] for x in loads), **rss.stop()}
        finally:
            browser.close()
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
