"""Simulated exports in every format pulled into a workspace: nothing lost, nothing invented."""
from __future__ import annotations

import pandas as pd
import pytest

import cxlab
from cxlab.datasets import simulate_journeys, to_ga4, write_simulation


@pytest.fixture(scope="module")
def sim():
    return simulate_journeys(3_000, seed=7)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_simulated_export_round_trips(sim, tmp_path, fmt):
    paths = write_simulation(sim, tmp_path / "raw", format=fmt, duplicate_share=0.01, seed=3)
    with cxlab.connect(tmp_path / "ws.duckdb") as ws:
        ev = ws.pull(paths["events"])
        fb = ws.pull(paths["feedback"], kind="feedback")
        assert ev.rows_read == len(sim.events) + paths["n_duplicate_rows"]
        assert ev.duplicates_skipped == paths["n_duplicate_rows"]
        assert ev.rows_added == len(sim.events)
        assert fb.rows_added == len(sim.feedback)
        got = ws.events().order_by(["customer_id", "ts", "touchpoint"]).execute()
        want = sim.events.sort_values(["customer_id", "ts", "touchpoint"], ignore_index=True)
        for col in ("customer_id", "touchpoint", "channel", "session_id", "device", "segment"):
            assert got[col].tolist() == want[col].tolist(), col
        assert (got.ts.to_numpy() == want.ts.to_numpy()).all()
        assert got.value.sum() == pytest.approx(want.value.sum())
        f = ws.feedback().order_by("feedback_id").execute()
        w = sim.feedback.sort_values("feedback_id", ignore_index=True)
        assert f.text.tolist() == w.text.tolist()  # Italian accents and PII intact
        assert f.score.tolist() == w.score.tolist() and f.scale.tolist() == w.scale.tolist()
        assert ws.check().ok


def test_ga4_export_round_trips(sim, tmp_path):
    paths = write_simulation(sim, tmp_path / "raw", format="ga4")
    digital = sim.events[sim.events.channel.isin(["web", "app", "email", "social"])]
    with cxlab.connect(tmp_path / "ws.duckdb") as ws:
        r = ws.pull(paths["events"])
        assert r.format == "ga4" and r.rows_added == len(digital)
        got = ws.events().execute()
    assert got.groupby("channel").size().to_dict() == digital.groupby("channel").size().to_dict()
    assert got.groupby("customer_id").size().to_dict() == digital.groupby("customer_id").size().to_dict()
    # one GA4 session id per simulated session
    pairs = got.merge(digital, on=["customer_id", "ts", "touchpoint", "channel"], suffixes=("", "_sim"))
    assert len(pairs) == len(digital)
    assert pairs.groupby("session_id_sim").session_id.nunique().max() == 1
    assert pairs.value.fillna(-1).tolist() == pairs.value_sim.fillna(-1).tolist()
    assert len(to_ga4(sim.events.head(50))) <= 50


def test_cli_simulate_writes_files(tmp_path):
    from cxlab.cli import main

    assert main(["simulate", "--customers", "300", "--seed", "1", "--out", str(tmp_path / "s"),
                 "--format", "parquet"]) == 0
    assert len(pd.read_parquet(tmp_path / "s" / "events.parquet")) > 300
