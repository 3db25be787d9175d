"""``cxlab explore`` before Voilà starts: a busy port is refused, never moved off silently.

The served page itself (the printed address, the token, requests, stopping) is tested in a
real browser in test_explore_browser.py."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

import cxlab


@pytest.fixture
def ws_file(tmp_path, events_csv):
    path = tmp_path / "ws.duckdb"
    with cxlab.connect(path) as w:
        w.pull(events_csv)
    return path


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
