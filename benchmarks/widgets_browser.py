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

5. ``controls`` (``--clicks K``, on the warm server): every control of the page operated K
   times as a user would (moment buttons, touchpoint, channel and segment lists, the
   ever-used / first-came-through switch, the date slider by keyboard, reset, and each
   extra panel's step list), each timed in the browser from the action to the page's update
   counter (``.cx-tick``, written after every panel of a change) advancing: what the user
   waits for, kernel round trip and drawing included. p50 / p95 / max per control.

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


def _tick(page) -> int:
    return int(page.get_attribute(".cx-tick", "data-n") or 0)


def _timed(page, act, timeout_s: float = 60) -> float | None:
    """Seconds from ``act()`` to the update counter advancing; None when the action changed nothing."""
    before = _tick(page)
    t0 = time.perf_counter()
    act()
    try:
        page.wait_for_function(f"() => +(document.querySelector('.cx-tick')?.dataset.n || 0) > {before}",
                               timeout=timeout_s * 1000, polling="raf")
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: the action did not lead to an update
        return None
    return time.perf_counter() - t0


def controls(browser, url: str, *, clicks: int, seed: int = 7, width: int = 1280) -> dict:
    """Operate every control ``clicks`` times; per control the browser-measured p50/p95/max (ms)."""
    import random

    import numpy as np

    rng = random.Random(seed)
    page = browser.new_page(viewport={"width": width, "height": 800})
    times: dict[str, list[float]] = {}

    def record(name, dt):
        if dt is not None:
            times.setdefault(name, []).append(dt * 1000)

    try:
        page.goto(url, timeout=900_000)
        page.wait_for_selector(PANELS, timeout=900_000)
        page.wait_for_selector(".cx-tick", state="attached", timeout=60_000)
        root = page.locator(".cx-root").first
        moments = [b for b in page.locator(".widget-toggle-buttons").first.locator("button").all()]
        selects = page.locator(".cx-p-filters select").all()
        names = ["touchpoints", "channels", "segments"][:len(selects)]
        for _ in range(clicks):
            # a moment (never the one shown), then back to the whole journey
            b = rng.choice(moments[1:]) if len(moments) > 1 else moments[0]
            record("moment", _timed(page, b.click))
            record("moment", _timed(page, moments[0].click))
            for name, sel in zip(names, selects):
                labels = [o.strip() for o in sel.locator("option").all_text_contents()]
                if len(labels) < 2:
                    continue
                pick = rng.sample(labels, rng.randint(1, len(labels) - 1))
                record(name, _timed(page, lambda: sel.select_option(label=pick)))
                record(name, _timed(page, lambda: sel.select_option(label=labels)))
            rule = page.get_by_role("button", name="first came through", exact=True)
            if rule.count():
                record("ever used / first came through", _timed(page, rule.click))
                record("ever used / first came through",
                       _timed(page, page.get_by_role("button", name="ever used", exact=True).click))
            handle = page.locator(".cx-p-filters .noUi-handle-lower, .cx-p-filters .noUi-handle").first
            if handle.count():
                steps = rng.randint(1, 20)

                def slide():
                    handle.focus()
                    for _ in range(steps):
                        page.keyboard.press("ArrowRight")
                    handle.blur()
                record("dates", _timed(page, slide))
            reset = page.get_by_role("button", name="Reset filters", exact=True)
            record("reset", _timed(page, reset.click))
            # the extra panels' own lists (a select outside the filters: a step of the funnel, say)
            for i, sel in enumerate(root.locator("select:not(.cx-p-filters select)").all()):
                labels = [o.strip() for o in sel.locator("option").all_text_contents()]
                if len(labels) >= 2 and sel.is_visible():
                    record(f"panel list {i + 1}", _timed(page, lambda: sel.select_option(label=rng.choice(
                        [x for x in labels if x != sel.evaluate("e => e.selectedOptions[0]?.text")] or labels))))
        # the A-versus-B panel: opened once, then what to compare and B changed; the moment with it open
        opener = page.get_by_text("Compare two groups side by side", exact=False)
        if opener.count():
            record("compare: open", _timed(page, opener.first.click))
            box = page.locator(".cx-p-compare")
            dims = box.locator(".widget-toggle-buttons button").all()
            for _ in range(clicks):
                for bt in dims:
                    if "mod-active" not in (bt.get_attribute("class") or ""):
                        record("compare: what to compare", _timed(page, bt.click))
                        break
                sel = box.locator("select").last
                labels = [o.strip() for o in sel.locator("option").all_text_contents()]
                current = sel.evaluate("e => e.selectedOptions[0]?.text")
                others = [x for x in labels if x != current]
                if others:
                    pick = rng.choice(others)
                    record("compare: B", _timed(page, lambda: sel.select_option(label=pick)))
                b = rng.choice(moments[1:]) if len(moments) > 1 else moments[0]
                record("moment, compare open", _timed(page, b.click))
                record("moment, compare open", _timed(page, moments[0].click))
    finally:
        page.close()
    out = {}
    for name, ms in times.items():
        a = np.array(ms)
        out[name] = {"n": len(a), "p50_ms": round(float(np.percentile(a, 50))),
                     "p95_ms": round(float(np.percentile(a, 95))), "max_ms": round(float(a.max()))}
    every = np.concatenate([np.array(v) for v in times.values()]) if times else np.array([np.nan])
    out["every control"] = {"n": len(every), "p50_ms": round(float(np.percentile(every, 50))),
                            "p95_ms": round(float(np.percentile(every, 95))), "max_ms": round(float(every.max()))}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=123_000)
    ap.add_argument("--pages", type=int, default=3)
    ap.add_argument("--clicks", type=int, default=20, help="times each control is operated (0: skip)")
    ap.add_argument("--only-controls", action="store_true", help="skip the page-open scenarios")
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
            if not args.only_controls:
                with serving(db, {**no_preheat, "CXLAB_EXPLORER_CACHE": "off"}) as (url, rss):
                    out["reference"] = {**load(browser, url), **rss.stop()}
                shutil.rmtree(cache_root(db), ignore_errors=True)
                with serving(db, no_preheat) as (url, rss):
                    out["cold"] = {**load(browser, url), **rss.stop()}
                with serving(db, no_preheat) as (url, rss):
                    out["warm_new_kernel"] = {**load(browser, url), **rss.stop()}
            with serving(db, {}) as (url, rss):
                time.sleep(20)          # the pool's kernel runs the notebook (reads the kept aggregates)
                if not args.only_controls:
                    loads = []
                    for _ in range(args.pages):
                        loads.append(load(browser, url))
                        time.sleep(5)       # Voilà refills the pool (fill_delay 1 s + the notebook)
                    out["warm"] = {"loads": loads, "panels_s_max": max(x["panels_s"] for x in loads)}
                if args.clicks:
                    out["controls"] = controls(browser, url, clicks=args.clicks)
                out["warm_rss"] = rss.stop()
        finally:
            browser.close()
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
