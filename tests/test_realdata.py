"""Real journey logs from ../shared/data pulled through the generic CSV adapter; counts equal
an independent pandas computation and the published sizes in each SOURCE.md."""
from __future__ import annotations

import pandas as pd
import pytest

from conftest import shared_file

pytestmark = pytest.mark.realdata

LOGS = {
    # file, mapping, published rows, cases
    "helpdesk": (("helpdesk_tickets", "helpdesk_events.csv.gz"),
                 {"customer_id": "case_id", "touchpoint": "activity", "ts": "timestamp"}, 21_348, 4_580),
    "bpic2012": (("bpic2012_loans", "bpic2012_events.csv.gz"),
                 {"customer_id": "case_id", "touchpoint": "activity", "ts": "timestamp"}, 262_200, 13_087),
}


@pytest.mark.parametrize("name", list(LOGS))
def test_real_event_log_pull_matches_pandas(ws, name):
    parts, mapping, published_rows, published_cases = LOGS[name]
    path = shared_file(*parts)
    result = ws.pull(path, mapping=mapping)

    ref = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(ref) == published_rows and ref.case_id.nunique() == published_cases
    ref_ts = pd.to_datetime(ref.timestamp, utc=True, format="ISO8601")
    key = pd.DataFrame({"c": ref.case_id, "ts": ref_ts, "tp": ref.activity})
    expected_dups = int(key.duplicated().sum())
    assert (result.rows_read, result.duplicates_skipped) == (published_rows, expected_dups)
    assert result.rows_added == published_rows - expected_dups

    t = ws.events()
    got = t.group_by("touchpoint").aggregate(n=t.count()).execute().set_index("touchpoint").n
    want = key.drop_duplicates().groupby("tp").size()
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_names=False)
    first, last = t.ts.min().execute(), t.ts.max().execute()
    assert (first, last) == (ref_ts.min(), ref_ts.max())
    # the other columns are kept as properties
    assert "resource" in t.columns
    # every touchpoint is unknown to the retail default map: reported, none dropped
    check = ws.check()
    assert check.unknown_events == result.rows_added
