"""cxlab.reports: finding, running and recording report notebooks."""
from __future__ import annotations

import json

import nbformat
import pytest

import cxlab
from cxlab import reports
from cxlab.exceptions import CxlabError

EVENTS = """customer_id,ts,touchpoint,channel,session_id,value
c1,2026-03-01T10:00:00Z,home_page,web,s1,
c1,2026-03-01T10:05:00Z,product_page,web,s1,
c1,2026-03-01T10:09:00Z,purchase,web,s1,49.5
c1,2026-03-01T10:09:00Z,purchase,web,s1,49.5
c2,2026-03-02T09:00:00Z,home_page,app,s2,
c2,2026-03-02T09:01:00Z,popup_shown,app,s2,
c2,2026-03-04T18:00:00Z,mystery_click,app,s3,
c3,2026-03-04T12:00:00Z,store_visit,store,s4,120
"""
FEEDBACK = """feedback_id,customer_id,ts,touchpoint,channel,score,scale,text,language
f1,c1,2026-03-02T10:00:00Z,delivery,email,9,nps,Great delivery,en
f2,c2,2026-03-03T10:00:00Z,home_page,email,3,nps,Troppi popup,it
f3,c3,2026-03-05T13:00:00Z,store_visit,web,4,stars,,it
"""
DAY = "2026-03-31"


# --------------------------------------------------------------------------- no kernel
def test_notebook_path_finds_the_pull_report():
    path = reports.notebook_path("pull")
    assert path.name == "pull.ipynb" and path.parent.name == "reports"
    assert "pull" in reports.available()


def test_notebook_path_lists_available_reports():
    with pytest.raises(FileNotFoundError, match=r"available reports: .*pull.*did you mean 'pull'"):
        reports.notebook_path("pul")


def test_committed_notebook_is_stripped_and_parametrised():
    nb = nbformat.read(reports.notebook_path("pull"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    import papermill

    declared = papermill.inspect_notebook(str(reports.notebook_path("pull")))
    assert set(declared) == {"workspace", "events_path", "events_format", "events_tz",
                             "feedback_path", "feedback_scale", "journey_path", "metrics_path"}
    assert all(p["inferred_type_name"] == "str" for p in declared.values())
    assert "def " not in "\n".join(c.source for c in code)


def test_unknown_parameter_is_refused_before_running(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'events_path'"):
        reports.run_notebook("pull", {"event_path": "x.csv"}, out=tmp_path)
    assert not any(tmp_path.rglob("*.html"))


def test_write_metrics(tmp_path):
    ws = cxlab.connect(tmp_path / "ws.duckdb")
    try:
        (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
        ws.pull(tmp_path / "events.csv")
        import numpy as np
        import pandas as pd

        out = reports.write_metrics(tmp_path / "m" / "metrics.json",
                                    {"rows": np.int64(7), "share": float("nan"),
                                     "first": pd.Timestamp("2026-03-01", tz="UTC")},
                                    parameters={"events_path": "events.csv"}, workspace=ws)
        doc = json.loads(out.read_text())
        assert doc["rows"] == 7 and doc["share"] is None
        assert doc["first"].startswith("2026-03-01T00:00:00")
        assert doc["cxlab_version"] == cxlab.__version__
        assert doc["parameters"] == {"events_path": "events.csv"}
        assert doc["workspace"]["sha256"] == ws.loads()["sha256"].tolist()
        assert len(doc["workspace"]["fingerprint"]) == 64
        assert reports.write_metrics("", {"rows": 1}) is None
        with pytest.raises(ValueError, match="reserved"):
            reports.write_metrics(tmp_path / "x.json", {"parameters": 1})
    finally:
        ws.close()


def test_report_error_is_a_cxlab_error():
    assert issubclass(reports.ReportError, CxlabError)


# --------------------------------------------------------------------------- kernel
@pytest.fixture(scope="module")
def pulled(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    (d / "events.csv").write_text(EVENTS, encoding="utf-8")
    (d / "feedback.csv").write_text(FEEDBACK, encoding="utf-8")
    params = {"workspace": str(d / "ws.duckdb"), "events_path": str(d / "events.csv"),
              "feedback_path": str(d / "feedback.csv")}
    run = reports.run_notebook("pull", params, out=d / "reports", date=DAY, progress=False)
    return d, run


@pytest.mark.notebooks
def test_run_notebook_writes_html_notebook_and_metrics(pulled):
    d, run = pulled
    day = d / "reports" / DAY
    assert run.html == day / "pull.html" and run.notebook == day / "pull.ipynb"
    assert run.metrics == day / "pull.metrics.json"
    assert sorted(p.name for p in day.iterdir()) == ["pull.html", "pull.ipynb", "pull.metrics.json"]
    # no temp folder left; the lock file and the index of all runs sit next to the dates
    assert sorted(p.name for p in (d / "reports").iterdir()) == [".lock", DAY, "index.html"]
    html = run.html.read_text(encoding="utf-8")
    assert "<title>Pull and data quality — 2026-03-31</title>" in html
    for tp in ("home_page", "product_page", "store_visit", "mystery_click"):
        assert tp in html
    # code cells hidden: no input areas, no source
    assert 'class="jp-InputArea-editor' not in html
    assert 'class="highlight hl-ipython3"' not in html and "quality.touchpoint_table(" not in html
    assert "import cxlab" not in html
    assert "data:image/png;base64" in html  # images embedded
    ws = cxlab.connect(d / "ws.duckdb", read_only=True)
    try:
        counts, loads = ws.counts(), ws.loads()
    finally:
        ws.close()
    metrics = run.read_metrics()
    assert metrics["rows"] == counts == {"events": 7, "feedback": 3}
    assert metrics["duplicates_skipped"] == {"events": 1, "feedback": 0}
    assert metrics["unknown_touchpoints"] == ["mystery_click"]
    assert metrics["first_ts"].startswith("2026-03-01T10:00:00")
    assert metrics["workspace"]["sha256"] == loads["sha256"].tolist()
    assert metrics["parameters"]["events_path"] == str(d / "events.csv")


@pytest.mark.notebooks
def test_failing_notebook_keeps_the_earlier_report(pulled):
    d, run = pulled
    before = {p.name: p.read_bytes() for p in run.html.parent.iterdir()}
    params = {"workspace": str(d / "ws.duckdb"), "events_path": str(d / "missing.csv"),
              "feedback_path": ""}
    with pytest.raises(reports.ReportError, match=r"failed in cell \d+: \w+.*missing\.csv") as err:
        reports.run_notebook("pull", params, out=d / "reports", date=DAY, progress=False)
    failed = d / "reports" / DAY / "pull.failed.ipynb"
    assert err.value.failed_notebook == failed and failed.exists()
    nb = nbformat.read(failed, as_version=4)
    assert any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code"
               for o in c.outputs)
    after = {p.name: p.read_bytes() for p in run.html.parent.iterdir() if p.name != failed.name}
    assert after == before  # the earlier HTML, notebook and metrics are byte-identical
    assert sorted(p.name for p in (d / "reports").iterdir()) == [".lock", DAY, "index.html"]


@pytest.mark.notebooks
def test_report_shows_keyed_pseudonyms_and_never_the_key(pulled):
    import base64
    import hashlib

    from cxlab.privacy import pseudonym

    d, run = pulled
    with cxlab.connect(d / "ws.duckdb", read_only=True) as ws:
        key = ws.pseudonym_key()
    written = "\n".join(p.read_text(encoding="utf-8") for p in (run.html, run.notebook, run.metrics))
    for form in (key.hex(), key.hex().upper(), base64.b64encode(key).decode(), repr(key)[2:-1]):
        assert form not in written
    customers, feedback = ("c1", "c2", "c3"), ("f1", "f2", "f3")
    assert any(pseudonym(c, key=key) in written for c in customers)
    assert any(pseudonym(f, key=key) in written for f in feedback)
    for value in customers + feedback:                 # no unsalted pseudonym
        assert "id:" + hashlib.sha256(value.encode()).hexdigest()[:8] not in written
