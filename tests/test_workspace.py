"""The workspace: idempotent and atomic pulls, properties, the manifest, the CLI, Spark."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import cxlab
from conftest import snapshot
from cxlab.exceptions import ExportError, TimestampError, WorkspaceError, WorkspaceLockedError

REPO = Path(__file__).resolve().parents[1]


def big_csv(path: Path, n: int, *, bad_row: int | None = None, start: int = 0) -> Path:
    """n events of 1,000 customers; optionally one unparseable timestamp at ``bad_row``."""
    i = pd.RangeIndex(start, start + n)
    ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(i * 7, unit="s")
    df = pd.DataFrame({"customer_id": "c" + (i % 1000).astype(str), "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "touchpoint": pd.Series(["home_page", "product_page", "add_to_cart", "checkout"])
                       .iloc[i % 4].to_numpy(), "channel": "web"})
    if bad_row is not None:
        df.loc[bad_row - 1, "ts"] = "not a time"
    df.to_csv(path, index=False)
    return path


def test_pull_twice_is_idempotent(ws, events_csv):
    first = ws.pull(events_csv)
    again = ws.pull(events_csv)
    assert first.status == "loaded" and again.status == "already_loaded"
    assert (again.rows_read, again.rows_added) == (0, 0)
    assert ws.events().count().execute() == 7
    m = ws.loads()
    assert list(m.status) == ["loaded", "already_loaded"]
    assert m.sha256.nunique() == 1 and len(m.sha256[0]) == 64
    assert {"source", "sha256", "kind", "format", "rows_read", "rows_added", "status",
            "started_at", "finished_at"} <= set(m.columns)
    # the same file as feedback is a different pull (and here a refused one)
    assert ws.counts() == {"events": 7, "feedback": 0}


def test_properties_grow_with_new_columns(ws, tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("customer_id,ts,touchpoint,device\nc1,2026-01-01T00:00:00Z,search,mobile\n")
    b = tmp_path / "b.csv"
    b.write_text("customer_id,ts,touchpoint,campaign,ts_local\nc2,2026-01-02T00:00:00Z,search,xmas,x\n")
    ws.pull(a)
    ws.pull(b)
    df = ws.events().order_by("customer_id").execute()
    assert list(df.columns[-3:]) == ["device", "campaign", "ts_local"]
    assert df.device.tolist()[0] == "mobile" and pd.isna(df.device.tolist()[1])
    assert df.campaign.tolist()[1] == "xmas"


def test_gaps_in_a_session_column_are_filled_by_the_gap_rule(ws, tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("customer_id,ts,touchpoint,session_id\n"
                 "a,2026-01-01T10:00:00Z,home_page,S1\n"
                 "a,2026-01-01T10:10:00Z,product_page,\n"
                 "a,2026-01-01T10:20:00Z,add_to_cart,\n"
                 "a,2026-01-01T11:30:00Z,checkout,\n"
                 "b,2026-01-01T10:00:00Z,home_page,\n")
    r = ws.pull(p)
    assert any("derived for 4 rows" in n for n in r.notes)
    got = ws.events().order_by(["customer_id", "ts"]).execute().session_id.tolist()
    assert got == ["S1", "a-20260101T101000Z", "a-20260101T101000Z", "a-20260101T113000Z",
                   "b-20260101T100000Z"]


def test_property_type_conflict_names_column_and_row(ws, tmp_path):
    first = tmp_path / "first.parquet"
    pd.DataFrame({"customer_id": ["a"], "ts": [pd.Timestamp("2026-01-01", tz="UTC")],
                  "touchpoint": ["purchase"], "basket_size": [3]}).to_parquet(first)
    ws.pull(first)
    before = snapshot(ws)
    second = tmp_path / "second.csv"
    second.write_text("customer_id,ts,touchpoint,basket_size\nb,2026-01-02T00:00:00Z,purchase,4\n"
                      "c,2026-01-02T00:00:00Z,purchase,four\n")
    with pytest.raises(ExportError) as err:
        ws.pull(second)
    assert (err.value.row, err.value.column, err.value.value) == (2, "basket_size", "four")
    assert snapshot(ws) == before


def test_failed_pull_late_in_a_big_file_changes_nothing(ws, tmp_path):
    ws.pull(big_csv(tmp_path / "ok.csv", 5_000))
    before = snapshot(ws)
    bad = big_csv(tmp_path / "bad.csv", 200_000, bad_row=199_990, start=10_000)
    with pytest.raises(TimestampError) as err:
        ws.pull(bad)
    assert err.value.row == 199_990 and err.value.value == "not a time"
    assert snapshot(ws) == before


KILLED = textwrap.dedent("""
    import sys, time, cxlab
    ws = cxlab.connect(sys.argv[1])
    def hold():
        print("IN_TRANSACTION", flush=True)
        time.sleep(60)
    ws.pull(sys.argv[2], _in_transaction=hold)
""")


def test_sigkill_in_the_middle_of_a_pull_leaves_the_workspace_as_before(tmp_path):
    path = tmp_path / "ws.duckdb"
    with cxlab.connect(path) as w:
        w.pull(big_csv(tmp_path / "first.csv", 20_000))
        before = snapshot(w)
    export = big_csv(tmp_path / "second.csv", 300_000, start=50_000)
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(path), str(export)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    line = proc.stdout.readline()
    assert line.strip() == "IN_TRANSACTION", proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)  # rows inserted, manifest written, not committed
    proc.wait()
    with cxlab.connect(path) as w:
        assert snapshot(w) == before
        # and the workspace still works: the same pull now completes
        r = w.pull(export)
        assert (r.status, r.rows_added) == ("loaded", 300_000)


def test_sigkill_at_random_moments_never_leaves_half_a_pull(tmp_path):
    path = tmp_path / "ws.duckdb"
    export = big_csv(tmp_path / "e.csv", 300_000)
    script = "import sys, cxlab; cxlab.connect(sys.argv[1]).pull(sys.argv[2])"
    for delay in (0.6, 1.2, 1.8, 2.4):
        proc = subprocess.Popen([sys.executable, "-c", script, str(path), str(export)], cwd=REPO)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        with cxlab.connect(path) as w:
            n, loads = w.counts()["events"], int((w.loads().status == "loaded").sum())
        assert (n, loads) in {(0, 0), (300_000, 1)}, f"half a pull after {delay}s: {n} rows, {loads} loads"


def test_read_only_workspace_refuses_pulls(tmp_path, events_csv):
    path = tmp_path / "ws.duckdb"
    with cxlab.connect(path) as w:
        w.pull(events_csv)
    with cxlab.connect(path, read_only=True) as r:
        assert r.events().count().execute() == 7
        with pytest.raises(WorkspaceError, match="read-only"):
            r.pull(events_csv)


HOLDER = textwrap.dedent("""
    import sys, time, cxlab
    ws = cxlab.connect(sys.argv[1], read_only=sys.argv[2] == "read")
    print("OPEN", flush=True)
    time.sleep(float(sys.argv[3]))
""")


@contextlib.contextmanager
def holding(path, how: str, seconds: float = 60):
    """Another process with ``path`` open (``how``: "read" or "write") for ``seconds``."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), how, str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "OPEN", proc.stderr.read()
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_reader_holding_the_workspace_is_named_as_a_reader(ws_file):
    with holding(ws_file, "read") as proc, pytest.raises(WorkspaceLockedError) as err:
        cxlab.connect(ws_file)
    text = str(err.value)
    assert f"is open read-only by pid {proc.pid} (python -c import sys, time, cxlab ws = " in text
    assert "\n" not in text
    assert "cannot be opened for writing" in text and "for writing by" not in text
    assert "--wait 10min" in text and "wait='10min'" in text  # what to do
    assert [(h.pid, h.mode) for h in err.value.holders] == [(proc.pid, "read-only")]
    assert isinstance(err.value, WorkspaceError) and err.value.waited is None


def test_a_writer_holding_the_workspace_is_named_as_a_writer(ws_file):
    with holding(ws_file, "write") as proc:
        for read_only, verb in ((False, "opened for writing"), (True, "read")):
            with pytest.raises(WorkspaceLockedError) as err:
                cxlab.connect(ws_file, read_only=read_only)
            assert f"is open for writing by pid {proc.pid} (python -c " in str(err.value)
            assert f"so it cannot be {verb}:" in str(err.value)
            assert [(h.pid, h.mode) for h in err.value.holders] == [(proc.pid, "for writing")]
        # readers share the file: a second one opens while the first holds it
    with holding(ws_file, "read"), cxlab.connect(ws_file, read_only=True) as r:
        assert r.counts()["events"] == 7


def test_without_proc_locks_the_holder_comes_from_duckdbs_message(ws_file, monkeypatch):
    from cxlab import _lock

    monkeypatch.setattr(_lock, "_proc_locks", lambda path: [])  # as on macOS
    for how, mode in (("read", "read-only"), ("write", "for writing")):
        with holding(ws_file, how) as proc, pytest.raises(WorkspaceLockedError) as err:
            cxlab.connect(ws_file)
        assert f"is open {mode} by pid {proc.pid}" in str(err.value)


def test_wait_opens_the_workspace_once_the_holder_exits(ws_file, events_csv):
    with holding(ws_file, "read", seconds=1.5) as proc:
        with cxlab.connect(ws_file, wait="2min") as w:  # retried until the reader is gone
            assert not w.read_only and w.counts()["events"] == 7
    with holding(ws_file, "read") as proc:                # and without a wait: refused at once
        with pytest.raises(WorkspaceLockedError, match=f"read-only by pid {proc.pid}"):
            cxlab.connect(ws_file)


def test_wait_gives_up_after_the_given_time_saying_it_waited(ws_file):
    with holding(ws_file, "write") as proc, pytest.raises(WorkspaceLockedError) as err:
        cxlab.connect(ws_file, wait="1s")
    assert f"was still open for writing by pid {proc.pid}" in str(err.value)
    assert "after waiting 1s" in str(err.value) and "--wait" not in str(err.value)
    assert err.value.waited == "1s"


@pytest.mark.parametrize("wait", ["10", 10, "-5min"])
def test_a_wait_without_a_unit_is_refused(ws_file, wait):
    with pytest.raises(ValueError, match=r"^wait=.*(unit|positive)"):
        cxlab.connect(ws_file, wait=wait)


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "cxlab.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_cli_pull_success_and_failure(tmp_path):
    (tmp_path / "ok.csv").write_text(
        "user_id;event_time;touchpoint\nu1;01/02/2026 10:00;home_page\nu1;01/02/2026 10:01;chatbot\n")
    ok = run_cli("pull", "ok.csv", "--map", "customer_id=user_id", "--map", "ts=event_time",
                 "--tz", "Europe/Rome", "--ts-format", "%d/%m/%Y %H:%M", "--workspace", "w.duckdb",
                 cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "2 rows read as csv, 2 events added, 0 duplicates skipped" in ok.stdout
    assert "'chatbot'" in ok.stdout  # unknown touchpoint reported, not dropped
    (tmp_path / "bad.csv").write_text("user_id;event_time;touchpoint\nu1;yesterday;home_page\n")
    bad = run_cli("pull", "bad.csv", "--map", "customer_id=user_id", "--map", "ts=event_time",
                  "--tz", "UTC", "--workspace", "w.duckdb", cwd=tmp_path)
    assert bad.returncode == 2
    assert "bad.csv, row 1, column 'event_time'" in bad.stderr and "'yesterday'" in bad.stderr
    with cxlab.connect(tmp_path / "w.duckdb") as w:
        assert w.counts()["events"] == 2


def test_cli_pull_while_the_workspace_is_held_exits_75_or_waits(ws_file, tmp_path):
    more = big_csv(tmp_path / "more.csv", 10)
    with holding(ws_file, "read") as proc:
        refused = run_cli("pull", str(more), "--workspace", str(ws_file), cwd=tmp_path)
    assert refused.returncode == 75, refused.stderr
    assert f"cxlab pull: error: workspace {ws_file} is open read-only by pid {proc.pid}" in refused.stderr
    with holding(ws_file, "write", seconds=1.5):
        waited = run_cli("pull", str(more), "--workspace", str(ws_file), "--wait", "2min", cwd=tmp_path)
    assert waited.returncode == 0, waited.stderr
    assert "10 events added" in waited.stdout
    with cxlab.connect(ws_file, read_only=True) as w:
        assert w.counts()["events"] == 17


@pytest.mark.spark
@pytest.mark.slow
def test_same_aggregation_on_duckdb_and_pyspark(spark, tmp_path, events_csv):
    with cxlab.connect(tmp_path / "ws.duckdb") as w:
        w.pull(events_csv)
        w.pull(big_csv(tmp_path / "more.csv", 3_000))
        w.export_parquet(tmp_path / "canonical")

        def aggregate(workspace):
            t = workspace.events()
            out = (t.group_by(["touchpoint", "channel"])
                    .aggregate(n=t.count(), customers=t.customer_id.nunique(),
                               value=t.value.sum(), first=t.ts.min())
                    .order_by(["touchpoint", "channel"]).execute())
            out["first"] = pd.to_datetime(out["first"], utc=True)
            return out.reset_index(drop=True)

        on_duckdb = aggregate(w)
    sw = cxlab.connect(spark, path=tmp_path / "canonical")
    on_spark = aggregate(sw)
    pd.testing.assert_frame_equal(on_duckdb, on_spark, check_dtype=False)
    assert on_duckdb.n.sum() == 3_007
    with pytest.raises(WorkspaceError, match="cannot pull"):
        sw.pull(events_csv)
    # the pyspark:// target reaches the same tables
    again = cxlab.connect(f"pyspark://{tmp_path / 'canonical'}")
    assert again.events().count().execute() == 3_007
