"""End to end in a real browser: `cxlab explore` serves the pain-point explorer with Voilà on
a free localhost port and prints the URL once Voilà answers there; headless Chromium (Debian's
package, driven by Playwright) opens it with the token, changes the moment of truth, and the
pain-point table follows; every request of the page goes to that server; SIGTERM stops Voilà
and its kernel.

Screenshots go to the test's temporary folder, or to $CXLAB_SCREENSHOTS when set."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import cxlab
from cxlab.datasets import simulate_journeys
from cxlab.painpoints import pain_points

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]


def _need_browser():
    pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency: pip install -e '.[test]'")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("CI needs Debian's chromium for the browser test (.ci/run installs it)")
        pytest.skip("no chromium on this machine: apt-get install chromium")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    _need_browser()
    root = tmp_path_factory.mktemp("explore")
    sim = simulate_journeys(4_000, seed=5)
    ev_csv, fb_csv = root / "events.csv", root / "feedback.csv"
    from cxlab.datasets import write_simulation

    paths = write_simulation(sim, root / "raw")
    ev_csv, fb_csv = paths["events"], paths["feedback"]
    ws_path = root / "ws.duckdb"
    with cxlab.connect(ws_path) as ws:
        ws.pull(ev_csv)
        ws.pull(fb_csv, kind="feedback")
        ref = pain_points(ws)
    token = "t0k3n-" + os.urandom(12).hex()
    proc = subprocess.Popen([sys.executable, "-m", "cxlab.cli", "explore", "--workspace", str(ws_path),
                             "--token", token], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    deadline = time.time() + 180
    while time.time() < deadline and url is None and proc.poll() is None:
        line = proc.stdout.readline()
        m = re.search(r"open: (http://127\.0\.0\.1:\d+/\?token=\S+)", line or "")
        if m:
            url = m.group(1)
    assert url, "cxlab explore printed no URL"
    base = url.split("?")[0]
    answered_at_once = _answers(base)  # the URL is printed once Voilà answers there, not before
    yield {"url": url, "base": base, "port": int(re.search(r":(\d+)/", base).group(1)), "token": token,
           "ref": ref, "proc": proc, "ws_path": ws_path, "answered_at_once": answered_at_once}
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _answers(base: str) -> bool:
    try:
        urllib.request.urlopen(base + "api/status", timeout=5)
    except urllib.error.HTTPError:
        return True  # an HTTP answer: the token was not sent
    except OSError:
        return False
    return True


def _shot_dir(tmp_path) -> Path:
    d = Path(os.environ.get("CXLAB_SCREENSHOTS") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_the_printed_address_is_voilas_and_answers_at_once(served):
    import psutil

    assert served["answered_at_once"]
    voila = [p for p in psutil.Process(served["proc"].pid).children(recursive=True)
             if any(c.status == psutil.CONN_LISTEN and c.laddr.port == served["port"]
                    for c in p.net_connections(kind="tcp"))]
    assert len(voila) == 1 and "voila" in voila[0].cmdline()


def test_the_page_needs_the_token(served):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(served["base"], timeout=10)
    assert err.value.code in (302, 401, 403)
    assert "login" in (err.value.headers.get("Location") or "login")


def test_changing_the_moment_changes_the_table_in_the_browser(served, tmp_path):
    from playwright.sync_api import sync_playwright

    ref, shots = served["ref"], _shot_dir(tmp_path)
    cells = ("() => [...document.querySelectorAll('table.pp-full tr[data-tp]')]"
             ".map(e => e.dataset.tp)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            response = page.goto(served["url"], timeout=120_000)
            page.wait_for_selector("table.pp-table", timeout=180_000)
            page.wait_for_selector("svg[aria-label='Emotional curve']", timeout=30_000)
            assert sorted(page.evaluate(cells)) == sorted(ref["touchpoint"])
            _panels_fit_the_screen(page, 1280)
            _the_explorer_holds_the_workspace_read_only(served["ws_path"])
            page.screenshot(path=str(shots / "explorer_whole_journey.png"), full_page=True)
            for moment in ("SMOT", "FMOT"):
                page.get_by_role("button", name=moment, exact=True).click()
                want = sorted(ref.loc[ref.moment == moment, "touchpoint"])
                page.wait_for_function(f"() => JSON.stringify(({cells})().sort()) === '{_js_list(want)}'",
                                       timeout=30_000)
                # the numbers shown are pain_points' numbers
                row = ref[ref.moment == moment].sort_values("reached").iloc[-1]
                text = page.text_content(f"table.pp-full tr[data-tp='{row.touchpoint}']")
                assert f"{int(row.reached):,}" in text
                page.screenshot(path=str(shots / f"explorer_{moment}.png"), full_page=True)
                _panels_fit_the_screen(page, 1280)
            # the research and sharing moments have content, and it fits the screen
            for moment, what in (("ZMOT", "Research paths"), ("UMOT", "The circle")):
                page.get_by_role("button", name=moment, exact=True).click()
                page.wait_for_function(f"() => JSON.stringify(({cells})().sort()) === "
                                       f"'{_js_list(sorted(ref.loc[ref.moment == moment, 'touchpoint']))}'",
                                       timeout=30_000)
                page.wait_for_selector(f".cx-p-moment :text('{what}')", timeout=30_000)
                page.locator(".cx-p-moment").screenshot(path=str(shots / f"explorer_panel_{moment}.png"))
                _panels_fit_the_screen(page, 1280)
            # A versus B: folded until opened, then a tested table that fits the screen
            page.get_by_text("Compare two groups side by side", exact=False).click()
            page.wait_for_selector("table.cx-compare", timeout=30_000)
            assert "Conversion" in page.text_content("table.cx-compare")
            _panels_fit_the_screen(page, 1280)
            page.locator(".cx-p-compare").screenshot(path=str(shots / "explorer_compare.png"))
        finally:
            browser.close()
    # nothing came from outside this machine (Voilà's lab template asks a CDN for Font Awesome),
    # and the page tells the browser to refuse anything that would
    outside = [u for u in requests if not u.startswith((served["base"], "data:", "blob:"))]
    assert len(requests) > 20 and outside == []
    assert "default-src 'self'" in response.headers["content-security-policy"]


def _panels_fit_the_screen(page, width, columns=("Value at risk", "Evidence")):
    """No panel overlaps another, none reaches past the viewport, the page does not scroll sideways."""
    boxes = page.evaluate("""() => [...document.querySelectorAll("[class*='cx-p-']")].map(e => {
        const r = e.getBoundingClientRect();
        return {name: [...e.classList].find(c => c.startsWith('cx-p-')), x: r.left, y: r.top, w: r.width,
                h: r.height, inner: e.scrollWidth - e.clientWidth};
    })""")
    names = sorted(b["name"] for b in boxes)
    assert names == sorted(f"cx-p-{n}" for n in ("kpis", "curve", "table", "funnel", "terms", "verbatims",
                                                 "filters", "moment", "compare")), names
    for b in boxes:
        assert b["x"] >= 0 and b["x"] + b["w"] <= width + 0.5, b
        assert b["inner"] <= 0, b               # nor scrolls sideways within itself
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            dx = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
            dy = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
            assert dx <= 0.5 or dy <= 0.5, (a, b)
    assert page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)") <= width
    # the table's money and flag columns are on screen, not scrolled off to the right
    for col in columns:
        box = page.locator("table.pp-table th", has_text=col).bounding_box()
        assert box and box["x"] + box["width"] <= width, col


def test_a_second_page_reads_the_aggregates_kept_next_to_the_workspace(served, tmp_path):
    from playwright.sync_api import sync_playwright

    from cxlab._explore_cache import cache_root

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            seen = []
            # a new page is a new kernel: it reads what the first one kept. Voila's preheated kernel
            # for the second page may have started (and built) before the first build was kept, so
            # the third page at the latest must read
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1920, "height": 1000})
                page.goto(served["url"], timeout=120_000)
                page.wait_for_selector(".cx-cache", timeout=180_000)
                seen.append(page.get_attribute(".cx-cache", "data-cache"))
                page.wait_for_selector("svg[aria-label='Emotional curve']", timeout=30_000)
                page.screenshot(path=str(_shot_dir(tmp_path) / f"explorer_1920_{len(seen)}.png"))
                page.close()
                if seen[-1] == "read":
                    break
        finally:
            browser.close()
    kept = [d for d in cache_root(served["ws_path"]).iterdir() if not d.name.startswith(".")]
    assert len(kept) == 1 and (kept[0] / "meta.json").is_file()
    assert seen[-1] == "read" and set(seen) <= {"built", "read"}


def _the_explorer_holds_the_workspace_read_only(ws_path):
    from cxlab.exceptions import WorkspaceLockedError

    with pytest.raises(WorkspaceLockedError) as err:
        cxlab.connect(ws_path)  # a pull would be refused while the explorer's kernel reads it
    assert f"workspace {ws_path} is open read-only by pid" in str(err.value)
    assert "an explorer (cxlab explore / Voilà)" in str(err.value)
    assert "stop the explorer" in str(err.value)


def _js_list(items) -> str:
    return "[" + ",".join(f'"{x}"' for x in items) + "]"


def test_sigterm_stops_voila_and_its_kernels(served):
    """Last in this file: it stops the shared server."""
    import psutil

    urllib.request.urlopen(served["url"], timeout=180).read()  # renders the page: a kernel runs
    children = psutil.Process(served["proc"].pid).children(recursive=True)
    assert any("ipykernel_launcher" in " ".join(c.cmdline()) for c in children)
    served["proc"].send_signal(signal.SIGTERM)
    try:
        assert served["proc"].wait(timeout=60) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert [p.pid for p in alive] == []
        assert not _answers(served["base"])
        with socket.socket() as s:      # the port is free again (TIME_WAIT aside, as servers bind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", served["port"]))
    finally:
        for p in children:  # were this to fail, leave nothing running
            with contextlib.suppress(psutil.Error):
                p.kill()


# --------------------------------------------------------------------------- a voice-only workspace
@contextlib.contextmanager
def _serving(ws_path):
    """`cxlab explore` on ``ws_path``: the URL it prints; stopped (SIGTERM, then SIGKILL) at the end."""
    token = "t0k3n-" + os.urandom(12).hex()
    proc = subprocess.Popen([sys.executable, "-m", "cxlab.cli", "explore", "--workspace", str(ws_path),
                             "--token", token], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url, deadline = None, time.time() + 180
        while time.time() < deadline and url is None and proc.poll() is None:
            m = re.search(r"open: (http://127\.0\.0\.1:\d+/\?token=\S+)", proc.stdout.readline() or "")
            url = m.group(1) if m else None
        assert url, "cxlab explore printed no URL"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_voice_only_workspace_shows_the_voice_half_and_fits_the_screen(tmp_path):
    """Feedback pulled, no events: the voice table, curve, terms and verbatims; one line in
    place of reach, drop-off and the funnel; every panel within 1,280 x 800."""
    from playwright.sync_api import sync_playwright

    from cxlab.explore import NO_EVENTS

    _need_browser()
    fb = simulate_journeys(2_000, seed=5).feedback
    fb.to_parquet(tmp_path / "feedback.parquet")
    with cxlab.connect(tmp_path / "voice.duckdb") as ws:
        ws.pull(tmp_path / "feedback.parquet", kind="feedback")
    missing = NO_EVENTS[:1].upper() + NO_EVENTS[1:]
    with _serving(tmp_path / "voice.duckdb") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url, timeout=120_000)
            page.wait_for_selector("table.pp-voice", timeout=180_000)
            page.wait_for_selector("svg[aria-label='Emotional curve']", timeout=30_000)
            shown = page.evaluate("() => [...document.querySelectorAll('table.pp-voice tr[data-tp]')]"
                                  ".map(e => e.dataset.tp)")
            assert sorted(shown) == sorted(fb["touchpoint"].unique())
            assert page.locator(".cx-p-funnel .cx-missing").text_content().startswith(missing)
            assert page.locator(".cx-p-table .cx-missing").count() == 1
            _panels_fit_the_screen(page, 1280, columns=("Score 0-100", "Evidence"))
            page.screenshot(path=str(_shot_dir(tmp_path) / "explorer_voice_only.png"), full_page=True)
        finally:
            browser.close()
