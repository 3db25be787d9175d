"""``cxlab explore`` without a browser: a busy port is refused, never moved off silently;
SIGHUP and Ctrl-C stop Voilà.

The served page itself (the printed address, the token, requests, stopping) is tested in a
real browser in test_explore_browser.py."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys

import pytest



def explore(*args, cwd):
    """Run `cxlab explore`; whatever it started is killed if it has not exited in 60 s."""
    proc = subprocess.Popen([sys.executable, "-m", "cxlab.cli", "explore", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"cxlab explore kept running: {out}")
    return proc.returncode, out, err


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_a_busy_port_is_refused_with_no_address_printed(ws_file, tmp_path, host):
    with socket.socket() as other:
        other.bind((host, 0))
        other.listen()
        port = other.getsockname()[1]
        code, out, err = explore("--workspace", str(ws_file), "--port", str(port), "--token", "t" * 20,
                                 cwd=tmp_path)
    assert code == 2
    assert f"port {port} on 127.0.0.1 is in use by another process" in err and "--port" in err
    assert "open:" not in out and "token" not in out


def test_a_port_out_of_range_is_refused(ws_file, tmp_path):
    code, out, err = explore("--workspace", str(ws_file), "--port", "70000", cwd=tmp_path)
    assert code == 2 and "--port 70000" in err and "open:" not in out


@contextlib.contextmanager
def serving(ws_file, cwd):
    """`cxlab explore` once it has printed its address: (process, port, its child processes).
    Whatever it started is killed at the end, were a test to fail."""
    import psutil

    proc = subprocess.Popen([sys.executable, "-m", "cxlab.cli", "explore", "--workspace", str(ws_file)],
                            cwd=cwd, stdout=subprocess.PIPE, text=True)
    children = []
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert "open: http://127.0.0.1:" in lines[1], lines
        port = int(lines[1].split("127.0.0.1:")[1].split("/")[0])
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("voila" in c.cmdline() for c in children)
        yield proc, port, children
    finally:
        proc.kill()
        for c in children:
            with contextlib.suppress(psutil.Error):
                c.kill()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT])
def test_sighup_and_ctrl_c_stop_voila(ws_file, tmp_path, signum):
    import psutil

    with serving(ws_file, tmp_path) as (proc, port, children):
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_sigkill_of_cxlab_explore_stops_voila_too(ws_file, tmp_path):
    """SIGKILL cannot be caught: the kernel's parent-death signal stops Voilà instead."""
    import psutil

    with serving(ws_file, tmp_path) as (proc, _, children):
        voila = [c for c in children if "voila" in c.cmdline()]
        proc.kill()
        proc.wait(timeout=10)
        _, alive = psutil.wait_procs(voila, timeout=30)
        assert alive == [], "Voilà kept serving after cxlab explore was killed"
