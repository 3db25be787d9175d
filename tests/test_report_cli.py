"""``cxlab report``: parameters checked before running, metrics, index.html, lock and failures."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

import cxlab
from cxlab import reports
from cxlab.cli import EXIT_LOCKED, main
from cxlab.reports import ReportParameterError, compare_with_previous, parse_parameter, report_parameters

D1, D2 = "2026-11-29", "2026-11-30"
PWNED = Path("/tmp/cxlab_pwned")


# --------------------------------------------------------------------------- parameters
def test_parameters_are_read_from_the_cell_with_their_types():
    declared = report_parameters("funnel_dropoff")
    assert list(declared) == ["workspace", "window", "alpha", "period", "period_start", "period_end",
                              "escape_step", "journey_path", "metrics_path"]
    assert declared["alpha"].type == "float" and declared["alpha"].default == 0.05
    assert declared["window"].type == "str" and declared["window"].default == ""  # the map's
    assert "conversion window" in declared["window"].help
    folds = report_parameters("dropoff_real_data")["folds"]
    assert (folds.type, folds.default) == ("int", 5)


def test_funnel_dropoff_notebook_is_stripped_and_has_no_definitions():
    nb = nbformat.read(reports.notebook_path("funnel_dropoff"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    assert "def " not in "\n".join(c.source for c in code)
    text = "\n".join(c.source for c in nb.cells)  # nothing names a touchpoint of the default map
    assert [tp for tp in cxlab.JourneyMap.default().touchpoints if re.search(rf"\b{tp}\b", text)] == []


@pytest.mark.parametrize("text, expected", [
    ("alpha=0.01", ("alpha", 0.01)),
    ("alpha=1", ("alpha", 1.0)),                      # int accepted for float
    ("period_end=2026-11-30", ("period_end", "2026-11-30")),  # plain text for str
    ("window=7D", ("window", "7D")),
    ("window='48h'", ("window", "48h")),
    ("escape_step=123", ("escape_step", "123")),      # a str keeps the text as written
    ("workspace=data/x (1).duckdb", ("workspace", "data/x (1).duckdb")),
])
def test_parse_parameter_accepts(text, expected):
    assert parse_parameter(text, report_parameters("funnel_dropoff")) == expected


@pytest.mark.parametrize("text, message", [
    ("alpa=0.1", r"no parameter 'alpa'.*did you mean 'alpha'"),
    ("alpha=high", r"not a plain literal; alpha is float"),
    ("alpha=True", r"is float .*got bool"),
    ("alpha='0.1'", r"is float .*got str"),
    ("alpha=[0.1]", r"is float .*got list"),
    ("alpha=1e999", r"not a finite number"),
    ("alpha={'a': 1}", r"not a plain literal"),
    ("metrics_path=/tmp/m.json", r"set by the run"),
    ("window", r"write NAME=VALUE"),
    ("window='a\\nimport os'", r"control characters"),
    ("workspace=__import__('os').system('id')", r"looks like code"),
])
def test_parse_parameter_refuses(text, message):
    with pytest.raises(ReportParameterError, match=message):
        parse_parameter(text, report_parameters("funnel_dropoff"))


def test_folds_is_an_int():
    declared = report_parameters("dropoff_real_data")
    assert parse_parameter("folds=3", declared) == ("folds", 3)
    with pytest.raises(ReportParameterError, match="is int"):
        parse_parameter("folds=2.5", declared)


def test_a_parameters_cell_with_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "notebooks" / "reports"
    d.mkdir(parents=True)
    cell = nbformat.v4.new_code_cell('x = 1  # fine\ny = __import__("os").getcwd()',
                                     metadata={"tags": ["parameters"]})
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), d / "evil_cell.ipynb")
    with pytest.raises(ReportParameterError, match="'y' .* is not a plain literal"):
        report_parameters("evil_cell")


def _refused(capsys, argv, out: Path, match: str):
    assert main(argv + ["--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cxlab report: error:") and match in err, err
    assert not out.exists()  # refused before anything ran or was written


def test_cli_refuses_bad_parameters_before_running(tmp_path, capsys):
    out = tmp_path / "reports"
    _refused(capsys, ["report", "funnel_dropoff", "-p", "alpa=0.1"], out, "did you mean 'alpha'")
    _refused(capsys, ["report", "funnel_dropoff", "-p", "alpha=[1]"], out, "is float")
    _refused(capsys, ["report", "funnel_drop"], out, "did you mean 'funnel_dropoff'")
    _refused(capsys, ["report", "all", "-p", "nonsense=1"], out, "no report declares")


@pytest.mark.parametrize("param", ['x=__import__("os").system("touch /tmp/cxlab_pwned")',
                                   'workspace=__import__("os").system("touch /tmp/cxlab_pwned")',
                                   'alpha=__import__("os").system("touch /tmp/cxlab_pwned")'])
def test_code_injection_is_refused_and_runs_nothing(tmp_path, capsys, param):
    PWNED.unlink(missing_ok=True)
    _refused(capsys, ["report", "funnel_dropoff", "-p", param], tmp_path / "reports", "")
    assert not PWNED.exists()


def test_cli_lists_reports_and_parameters(capsys):
    assert main(["report", "--list"]) == 0
    text = capsys.readouterr().out
    assert "funnel_dropoff" in text and "alpha: float = 0.05" in text
    assert "dropoff_real_data   (not in `report all`)" in text
    assert "metrics_path" not in text


def test_report_all_runs_pull_first_and_skips_real_data():
    from cxlab.cli import _report_names

    names = _report_names("all")
    assert names[0] == "pull" and "funnel_dropoff" in names
    assert not any(n.endswith("_real_data") for n in names)


# --------------------------------------------------------------------------- comparing
def test_compare_with_previous_flags_only_real_changes():
    now = {"real": {"value": 0.31, "n": 5000}, "noise": {"value": 0.305, "n": 5000},
           "small": {"value": 0.45, "n": 60}, "nps": {"value": 35.0, "se": 1.0, "n": 2000},
           "nps_noise": {"value": 31.5, "se": 1.0, "n": 2000}, "count": 1200,
           "fresh": {"value": 0.5, "n": 900}}
    before = {"real": {"value": 0.28, "n": 5000}, "noise": {"value": 0.30, "n": 5000},
              "small": {"value": 0.25, "n": 60}, "nps": {"value": 30.0, "se": 1.0, "n": 2000},
              "nps_noise": {"value": 30.0, "se": 1.0, "n": 2000}, "count": 1000}
    t = compare_with_previous(now, before).set_index("metric")
    assert t.loc["real", "verdict"] == "changed" and t.loc["real", "test"] == "two-proportion"
    assert t.loc["real", "p_value"] < 0.01
    assert t.loc["noise", "verdict"] == "within noise" and t.loc["noise", "p_value"] > 0.5
    # a 20-point jump on 60 customers each is significant, but below min_n: not called a change
    assert t.loc["small", "p_value"] < 0.05 and t.loc["small", "verdict"] == "within noise"
    assert t.loc["small", "reason"] == "n below 100"
    assert t.loc["nps", "verdict"] == "changed" and t.loc["nps", "test"] == "z"
    assert t.loc["nps_noise", "verdict"] == "within noise"
    assert t.loc["count", "verdict"] == "not tested" and t.loc["count", "difference"] == 200
    assert t.loc["fresh", "reason"] == "no previous value"
    # the z-test on the difference: (35 - 30) / sqrt(2) -> two-sided p
    from scipy.stats import norm

    assert t.loc["nps", "p_value"] == pytest.approx(2 * norm.sf(5 / 2 ** 0.5))
    assert compare_with_previous(now, before, min_n=10).set_index("metric").loc["small", "verdict"] == "changed"
    assert compare_with_previous({"real": {"value": 0.31, "n": 5000}}, None)["verdict"].tolist() == ["not tested"]


def test_headline_metrics_flatten_one_level():
    flat = reports.headline_metrics({"rows": {"events": 7, "feedback": 3}, "rate": {"value": 0.2, "n": 10},
                                     "deep": {"a": {"b": 1}}, "names": ["x"], "parameters": {"a": 1},
                                     "flag": True, "conv": {"rate": 0.1, "ci_low": 0.05, "ci_high": 0.2}})
    assert set(flat) == {"rows.events", "rows.feedback", "rate", "conv"}
    assert flat["conv"]["ci_high"] == 0.2 and flat["rate"]["n"] == 10


# --------------------------------------------------------------------------- lock
def test_a_second_run_is_refused_while_the_lock_is_held(tmp_path, capsys):
    out = tmp_path / "reports"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from cxlab.reports import report_lock
            with report_lock({str(out)!r}):
                print("locked", flush=True)
                sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = main(["report", "funnel_dropoff", "--out", str(out), "--workspace",
                     str(tmp_path / "ws.duckdb"), "--no-progress"])
        err = capsys.readouterr().err
        assert code == EXIT_LOCKED
        assert "another report run is writing" in err and f"pid {holder.pid}" in err
        assert [p.name for p in out.iterdir()] == [".lock"]  # nothing else written
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    with reports.report_lock(out), reports.report_lock(out):  # released; re-entrant in-process
        pass


# --------------------------------------------------------------------------- kernel
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from cxlab.datasets import simulate_journeys, write_simulation

    d = tmp_path_factory.mktemp("report_cli")
    paths = write_simulation(simulate_journeys(1500, seed=11), d / "raw", format="csv")
    ws, out = d / "ws.duckdb", d / "reports"
    common = ["--workspace", str(ws), "--out", str(out), "--no-progress"]
    codes = [main(["report", "pull", "-p", f"events_path={paths['events']}",
                   "-p", f"feedback_path={paths['feedback']}", "--date", D1] + common),
             main(["report", "funnel_dropoff", "-p", "alpha=0.1", "--date", D1] + common)]
    return d, ws, out, paths, codes


@pytest.mark.notebooks
def test_metrics_equal_the_package_results(runs):
    from cxlab.dropoff import DropoffModel
    from cxlab.funnel import funnel
    from cxlab.painpoints import estimable_exposures
    from cxlab.paths import escape_routes

    _, ws_path, out, _, codes = runs
    assert codes == [0, 0]
    m = json.loads((out / D1 / "funnel_dropoff.metrics.json").read_text())
    with cxlab.connect(ws_path, read_only=True) as ws:
        f = funnel(ws, window="7D", alpha=0.1)
        routes = {s: escape_routes(ws, step=s, window="7D", alpha=0.1).to_dict()
                  for s in ("home_page", "product_page", "add_to_cart", "checkout")}
        terms = estimable_exposures(ws, journey=cxlab.JourneyMap.default(),
                                    exposures=["popup_shown", "registration_form"])
        model = DropoffModel(covariates=["channel"], exposures=list(terms), interactions=terms,
                             alpha=0.1).fit(ws, window="7D")
        odds = model.to_dict()["terms"]
        fingerprint = reports.workspace_fingerprint(ws)
        counts = ws.counts()
    assert [r["n"] for r in m["details"]["funnel"]] == f["n"].tolist()
    assert m["reached"] == dict(zip(f["touchpoint"], f["n"].tolist()))
    assert m["entrants"] == f["n"].iloc[0]
    assert m["conversion"]["value"] == pytest.approx(f["rate"].iloc[-1])
    assert m["conversion"]["ci_low"] == pytest.approx(f["ci_low"].iloc[-1])  # 90% CI: alpha passed on
    worst = max(routes, key=lambda s: routes[s]["left"])
    assert m["worst_step"] == worst
    assert m["leave_rate_worst_step"]["successes"] == routes[worst]["left"]
    assert m["leave_rate_worst_step"]["n"] == routes[worst]["reached"]
    assert m["leave_rate"]["checkout"]["successes"] == routes["checkout"]["left"]
    assert terms["registration_form"] == ["checkout"]  # the planted effect is examined where it acts
    assert set(m["odds_ratio"]) == {k for k in odds if not k.startswith("step[")}
    for k in ("registration_form:checkout", "popup_shown:home_page", "channel[app]"):
        assert m["odds_ratio"][k]["value"] == pytest.approx(odds[k]["odds_ratio"])
    # what the run adds: parameters, version, timestamp, data fingerprint
    assert m["parameters"]["alpha"] == 0.1 and m["parameters"]["window"] == "" and m["window"] == "7D"
    assert m["parameters"]["workspace"] == str(ws_path)
    assert m["cxlab_version"] == cxlab.__version__ and m["created_at"].startswith("20")
    assert m["run"]["report"] == "funnel_dropoff" and m["run"]["date"] == D1
    assert m["workspace"]["sha256"] == fingerprint["sha256"] and len(fingerprint["sha256"]) == 2
    pull = json.loads((out / D1 / "pull.metrics.json").read_text())
    assert pull["rows"] == counts and pull["workspace"]["fingerprint"] == fingerprint["fingerprint"]
    html = (out / D1 / "funnel_dropoff.html").read_text()
    assert "Funnel and drop-off" in html and "import cxlab" not in html
    assert "data:image/png;base64" in html


@pytest.mark.notebooks
def test_demo_says_what_the_pull_report_pulled(runs):
    from cxlab.cli import _pulled

    _, ws, out, _, _ = runs
    m = json.loads((out / D1 / "pull.metrics.json").read_text())
    with cxlab.connect(ws, read_only=True) as w:
        counts, customers = w.counts(), int(w.con.table("events")["customer_id"].nunique().execute())
    line = _pulled(m, ws)
    assert line.startswith(f"pulled {counts['events']:,} events and {counts['feedback']:,} pieces of feedback "
                           f"into the workspace {ws}")
    assert f"0 repeated rows skipped; {customers:,} customers, {m['first_ts'][:10]} to " in line
    again = {**m, "rows_added": {"events": 0, "feedback": 0}}   # a second demo pulls nothing twice
    assert _pulled(again, ws) == (f"nothing new to pull: the workspace {ws} already holds these exports "
                                  f"({counts['events']:,} events, {counts['feedback']:,} pieces of feedback)")


@pytest.mark.notebooks
def test_index_lists_runs_and_a_failure_keeps_earlier_reports(runs, capsys):
    d, ws, out, _, _ = runs
    index = (out / "index.html").read_text()
    for name in ("pull", "funnel_dropoff"):
        assert f'href="{D1}/{name}.html"' in index
    assert index.count('<span class="ok">ok</span>') == 2
    before = {p.name: p.read_bytes() for p in (out / D1).iterdir()}
    code = main(["report", "pull", "-p", f"events_path={d / 'missing.csv'}", "-p", "feedback_path=",
                 "--workspace", str(ws), "--out", str(out), "--date", D1, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "failed in cell" in err and "missing.csv" in err
    failed = out / D1 / "pull.failed.ipynb"
    assert failed.exists()
    after = {p.name: p.read_bytes() for p in (out / D1).iterdir() if p != failed}
    assert after == before
    index = (out / "index.html").read_text()
    assert 'class="failed">failed' in index and "missing.csv" in index
    assert f'href="{D1}/pull.failed.ipynb"' in index


@pytest.mark.notebooks
def test_report_all_and_trends_in_the_index(runs, capfd):
    _, ws, out, paths, _ = runs
    code = main(["report", "all", "-p", f"events_path={paths['events']}", "-p",
                 f"feedback_path={paths['feedback']}", "-p", "period_end=2026-03-31",
                 "--workspace", str(ws), "--out", str(out), "--date", D2, "--no-progress"])
    err = capfd.readouterr().err   # the kernels' own stderr included (capfd reads file descriptor 2)
    assert code == 0, err
    # a quiet run: no kernel-transport notice ("Kernel is running over TCP without encryption"),
    # no warning of any kind; only the names of the reports as they start
    noisy = [line for line in err.splitlines() if re.search(r"warning|TCP|Exception ignored", line, re.I)]
    assert not noisy, noisy
    assert [line for line in err.splitlines() if line.strip()] == \
        ["running pull", "running funnel_dropoff", "running voice_painpoints_kpis"]
    assert sorted(p.name for p in (out / D2).iterdir() if p.name.endswith(".html")) == \
        ["funnel_dropoff.html", "pull.html", "voice_painpoints_kpis.html"]
    voice = json.loads((out / D2 / "voice_painpoints_kpis.metrics.json").read_text())
    assert voice["parameters"]["period_end"] == "2026-03-31"      # -p goes to every report declaring it
    m = json.loads((out / D2 / "funnel_dropoff.metrics.json").read_text())
    assert m["parameters"]["period_end"] == "2026-03-31" and m["parameters"]["alpha"] == 0.05
    earlier = json.loads((out / D1 / "funnel_dropoff.metrics.json").read_text())
    assert m["entrants"] < earlier["entrants"]  # the period ends in March
    index = (out / "index.html").read_text()
    assert f'href="{D2}/funnel_dropoff.html"' in index and f'href="{D1}/funnel_dropoff.html"' in index
    assert re.search(r"<h4>Conversion \([^<]*\)<span class='sub'>conversion</span></h4><img", index)  # a chart once there are two runs
    expected = compare_with_previous(m, earlier).set_index("metric").loc["conversion", "verdict"]
    assert expected in ("changed", "within noise") and expected in index


@pytest.mark.notebooks
def test_report_all_stops_when_its_pull_fails(runs, capsys):
    d, ws, out, _, _ = runs
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name not in ("index.html", ".lock")}
    code = main(["report", "all", "-p", f"events_path={d / 'missing.csv'}", "-p", "feedback_path=",
                 "--workspace", str(ws), "--out", str(out), "--date", "2026-07-01", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "missing.csv" in err and "pull failed" in err and "not running funnel_dropoff" in err
    assert "running funnel_dropoff" not in err.replace("not running funnel_dropoff", "")
    day = out / "2026-07-01"
    assert sorted(p.name for p in day.iterdir()) == ["pull.failed.ipynb"]  # no analysis ran or was published
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*")
             if p.is_file() and p.name not in ("index.html", ".lock") and p.parent != day}
    assert after == before  # earlier reports as they were


def test_run_reports_pulls_first_then_runs_the_analyses_at_once(tmp_path, monkeypatch):
    """run_reports: the pull alone first; the analysis reports together (both wait on one
    barrier, which breaks unless they run at the same time); results in plan order."""
    import threading

    from cxlab import cli

    barrier, calls = threading.Barrier(2, timeout=20), []

    def fake(name, params, **kw):
        calls.append((name, threading.current_thread().name, kw["progress"]))
        if name == "pull":
            assert barrier.n_waiting == 0
            if params.get("fail"):
                raise reports.ReportError("boom", name=name)
        else:
            barrier.wait()   # BrokenBarrierError if the other analysis is not running too
            if name == "b":
                threading.Event().wait(0.2)   # b finishes after c, and is still yielded first
        return reports.ReportRun(name=name, date="d", html=tmp_path / f"{name}.html",
                                 notebook=tmp_path, metrics=tmp_path)

    monkeypatch.setattr(reports, "run_notebook", fake)
    plan = [("pull", {}), ("b", {}), ("c", {})]
    started = []
    out = list(cli.run_reports(plan, out=tmp_path, jobs=2, starting=started.append))
    assert [name for name, _, _ in out] == ["pull", "b", "c"] == started
    assert all(isinstance(run, reports.ReportRun) for _, run, _ in out)
    assert calls[0][1] == threading.main_thread().name and calls[0][2] is True
    assert {c[2] for c in calls[1:]} == {False}          # no per-notebook bars side by side
    # a failed pull stops the run: nothing reads a workspace that may be stale
    calls.clear()
    out = list(cli.run_reports([("pull", {"fail": True}), ("b", {}), ("c", {})], out=tmp_path, jobs=2))
    assert [name for name, _, _ in out] == ["pull"] and isinstance(out[0][1], reports.ReportError)
    assert [c[0] for c in calls] == ["pull"]
    # one job: one after the other, in the calling thread
    calls.clear()
    barrier = threading.Barrier(1)
    assert [n for n, _, _ in cli.run_reports(plan, out=tmp_path, jobs=1)] == ["pull", "b", "c"]
    assert {c[1] for c in calls} == {threading.main_thread().name}


def test_a_run_never_changes_the_process_directory(tmp_path, monkeypatch):
    """Reports run in threads (run_reports): papermill's `cwd=` would chdir the whole process
    while another thread resolves its paths; the kernel's directory goes by `resources`."""
    import papermill

    from cxlab._kernel import LocalKernelManager

    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    with pytest.raises(reports.ReportError, match="could not run"):
        reports.run_notebook("funnel_dropoff", {}, out=tmp_path, progress=False, index=False)
    assert seen.get("cwd") is None
    assert seen["resources"]["metadata"]["path"] == str(reports.notebook_path("funnel_dropoff").parents[2])
    assert seen["kernel_manager_class"] is LocalKernelManager
