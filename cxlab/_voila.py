"""Serve an explorer notebook with Voilà for ``cxlab explore``.

- On 127.0.0.1 only, on the port asked (refused when another process has it: Voilà is told
  never to move to another port) or on a free one; the URL is printed once Voilà answers
  there, so the printed address (token included) is the real one.
- Nothing is loaded from outside the machine: the page is rendered with cxlab's template,
  Voilà's lab template without the Font Awesome stylesheets it links from a CDN, and every
  response carries a Content-Security-Policy that lets the browser fetch from this server
  only (anything else a notebook's output links is refused by the browser).
- One kernel is kept ready with the explorer notebook already run (Voilà's preheated kernel
  pool, ``CXLAB_EXPLORE_PREHEAT``, default 1, 0 turns it off), so a page, a reload or a new
  tab is served at once; the notebook reads the aggregates kept next to the workspace.
- Voilà runs in its own session; SIGTERM, SIGHUP or Ctrl-C to ``cxlab explore`` stop it and
  its kernels (SIGTERM, then SIGKILL to whatever still runs after a few seconds).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .exceptions import ExplorerError

HOST = "127.0.0.1"
#: the browser may fetch scripts, styles, fonts, images and websockets from this server only
CSP = "; ".join([
    "default-src 'self' data: blob:",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:",
    "style-src 'self' 'unsafe-inline'",
    "connect-src 'self'",
    "frame-ancestors 'self'",
    "form-action 'self'",
    "base-uri 'self'",
])
#: cxlab's Voilà template (share/voila/templates/cxlab): Voilà's lab without its CDN stylesheets
TEMPLATE, SHARE = "cxlab", Path(__file__).parent / "share"
START_TIMEOUT = 120.0  # seconds for Voilà to answer
STOP_TIMEOUT = 10.0    # seconds for Voilà and its kernels to stop before SIGKILL
#: kernels kept ready with the notebook already run (Voilà's preheated kernels); 0 turns it off
PREHEAT = int(os.environ.get("CXLAB_EXPLORE_PREHEAT", "1"))
_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


class _Stop(Exception):
    """A stop signal arrived (SIGTERM, SIGHUP)."""


def port_is_free(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1 (with SO_REUSEADDR, as Voilà binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def serve(notebook: Path, *, port: int, token: str, env: dict, verbose: bool = False,
          describe: str = "") -> int:
    """Serve ``notebook`` until Voilà exits or a stop signal arrives; the exit status.

    Parameters
    ----------
    port : int
        The port on 127.0.0.1; 0 picks a free one.
    describe : str
        Printed before the URL (what is served).

    Raises
    ------
    ExplorerError
        ``port`` is in use by another process, or Voilà did not answer on it.
    """
    if port and not port_is_free(port):
        raise ExplorerError(f"port {port} on {HOST} is in use by another process: choose another "
                            "--port, or leave --port out for a free one")
    if describe:
        print(describe, flush=True)
    with tempfile.TemporaryDirectory(prefix="cxlab-explore-") as tmp, _stop_signals():
        config = Path(tmp)
        (config / "voila.json").write_text(json.dumps(
            {"Voila": {"tornado_settings": {"headers": {"Content-Security-Policy": CSP}}},
             # one kernel kept ready with the notebook already run: a page (a reload, a new tab)
             # is served at once; Voilà starts the next one as soon as a page takes it
             "VoilaConfiguration": {"preheat_kernel": PREHEAT > 0, "default_pool_size": PREHEAT}}))
        for attempt in range(1 if port else 3):  # a free port can be taken before Voilà binds it
            chosen = port or free_port()
            proc = _start(notebook, chosen, token, env, config, verbose)
            try:
                if _wait_until_serving(proc, chosen, last=bool(port) or attempt == 2, log=config / "log"):
                    print(f"  open: http://{HOST}:{chosen}/?token={token}", flush=True)
                    print("  (Ctrl-C stops it; the token is needed to open the page)", flush=True)
                    return proc.wait()
            except (KeyboardInterrupt, _Stop):
                print("cxlab explore: stopping Voilà and its kernels", file=sys.stderr, flush=True)
                return 0
            finally:
                stop(proc)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _start(notebook: Path, port: int, token: str, env: dict, config: Path, verbose: bool):
    cmd = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
           "--Voila.port_retries=0", f"--Voila.ip={HOST}", f"--Voila.token={token}",
           "--VoilaConfiguration.show_tracebacks=False", "--VoilaConfiguration.file_allowlist=[]",
           f"--VoilaConfiguration.template={TEMPLATE}",
           # cxlab's settings first (they win), then the usual places (the notebook's folder, ~/.jupyter)
           *(f"--Voila.config_file_paths={d}" for d in (config, notebook.parent, *_jupyter_config_path()))]
    out = None if verbose else open(config / "log", "ab")  # noqa: SIM115 - Voilà keeps its own copy
    try:
        env = dict(env, JUPYTER_PATH=os.pathsep.join(
            [str(SHARE), *filter(None, [env.get("JUPYTER_PATH")])]))  # where Voilà finds TEMPLATE
        return subprocess.Popen(cmd, env=env, cwd=str(notebook.parent), stdout=out,
                                stderr=subprocess.STDOUT if out else None, start_new_session=True,
                                preexec_fn=_stop_with_parent)
    finally:
        if out is not None:
            out.close()


def _stop_with_parent() -> None:
    """In the child before Voilà starts: on Linux, ask the kernel to send it SIGTERM when the
    process that started it dies, so a ``cxlab explore`` killed with SIGKILL (which it cannot
    catch) leaves no Voilà serving. Elsewhere nothing is done."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)


def _jupyter_config_path() -> list[str]:
    from jupyter_core.paths import jupyter_config_path

    return jupyter_config_path()


def _wait_until_serving(proc, port: int, *, last: bool, log: Path) -> bool:
    """True once Voilà (``proc``) answers HTTP on ``port``. False when it exited and another
    attempt may follow; raises ExplorerError on the last attempt or when time is up."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if not last:
                return False
            taken = "" if port_is_free(port) else f"port {port} was taken by another process; "
            raise ExplorerError(f"Voilà stopped before serving (exit {proc.returncode}): {taken}"
                                f"{_tail(log)}")
        if _answers(port):
            if not _listens(proc.pid, port):
                raise ExplorerError(f"port {port} on {HOST} is answered by another process, not Voilà")
            return True
        time.sleep(0.2)
    raise ExplorerError(f"Voilà did not answer on port {port} within {START_TIMEOUT:.0f} s: "
                        f"{_tail(log)}")


def _answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://{HOST}:{port}/api/status", timeout=2).close()
    except urllib.error.HTTPError:
        return True  # an HTTP answer, whatever its status (the token is not sent here)
    except OSError:
        return False
    return True


def _listens(pid: int, port: int) -> bool:
    import psutil

    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns)


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        text = []
    return " | ".join(text) if text else "run with --verbose to see Voilà's log"


def stop(proc: subprocess.Popen, *, timeout: float = STOP_TIMEOUT) -> None:
    """Stop Voilà and every process under it (its kernels): SIGTERM to Voilà's process group
    (Voilà then shuts its kernels down), SIGKILL to whatever still runs after ``timeout``."""
    import psutil

    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        kids = []
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    _, alive = psutil.wait_procs(kids, timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=timeout)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    """Signal Voilà's process group (its own session: only Voilà and what it did not detach)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


@contextlib.contextmanager
def _stop_signals():
    """Turn SIGTERM and SIGHUP into :class:`_Stop` for the duration of the block (once: a
    second signal does not interrupt the stopping)."""
    def raise_stop(signum, frame):
        for s in _STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise _Stop(signum)

    previous = {s: signal.signal(s, raise_stop) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
