"""The real-data drop-off notebook runs end to end and its metrics equal the package's own
results on the same data."""
from __future__ import annotations

import pandas as pd
import pytest

import cxlab
from conftest import SHARED_DATA, shared_file
from cxlab.funnel import funnel
from cxlab.reports import run_notebook

pytestmark = [pytest.mark.realdata, pytest.mark.notebooks, pytest.mark.slow]


def test_dropoff_real_data_notebook(tmp_path):
    shared_file("online_shoppers", "online_shoppers_intention.csv")
    loans = shared_file("bpic2012_loans", "bpic2012_events.csv.gz")
    run = run_notebook("dropoff_real_data", {"shared_data": str(SHARED_DATA),
                                             "workspace": str(tmp_path / "bpic.duckdb")},
                       out=tmp_path / "reports", progress=False)
    m = run.read_metrics()
    html = open(run.html, encoding="utf-8").read()
    assert "Escape routes" in html and "A_PREACCEPTED" in html and "<img" in html

    sessions = pd.read_csv(SHARED_DATA / "online_shoppers" / "online_shoppers_intention.csv")
    assert m["sessions"] == len(sessions) == 12_330
    assert m["sessions_left"] == int((~sessions["Revenue"]).sum())
    assert m["session_auc_cv"] > 0.75

    with cxlab.connect(tmp_path / "check.duckdb") as ws:
        ws.pull(loans, mapping={"customer_id": "case_id", "touchpoint": "activity", "ts": "timestamp"})
        jm = cxlab.JourneyMap.from_yaml(cxlab.reports.notebook_path("dropoff_real_data").parent
                                        / "bpic2012_journey.yml")
        table = funnel(ws, journey=jm, window=None)
    assert m["loan_funnel_n"] == table["n"].tolist()
    assert m["loan_funnel_n"][0] == 13_087  # every application is submitted
    assert m["escape_reached"] == table.set_index("touchpoint").loc["A_PREACCEPTED", "n"]
    assert 0 < m["escape_left"] < m["escape_reached"]
    assert 0 <= m["km_logrank_p"] <= 1
