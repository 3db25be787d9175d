"""Property-based: random valid frames written as CSV in any accepted dialect come back equal."""
from __future__ import annotations

import gzip

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxlab.io import read_export

TOUCHPOINTS = ["home_page", "product_page", "checkout", "purchase", "chat bot", "prodotto; più"]
text = st.text(alphabet=st.characters(codec="cp1252", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
               min_size=1, max_size=12).map(str.strip).filter(bool)


@st.composite
def frames(draw):
    n = draw(st.integers(1, 25))
    start = pd.Timestamp("2020-01-01", tz="UTC")
    rows = []
    for _ in range(n):
        micros = draw(st.integers(0, 10 * 365 * 86400 * 10**6))
        rows.append({
            "customer_id": draw(text),
            "ts": start + pd.Timedelta(microseconds=micros),
            "touchpoint": draw(st.sampled_from(TOUCHPOINTS)),
            "channel": draw(st.sampled_from(["web", "app", "store", "call centre, IT"])),
            "session_id": draw(st.none() | text),
            "value": draw(st.none() | st.floats(0, 1e6, allow_nan=False).map(lambda v: round(v, 2))),
            "note": draw(st.none() | text),
        })
    return pd.DataFrame(rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(df=frames(), delimiter=st.sampled_from([",", ";", "\t"]),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]), gz=st.booleans(),
       decimal_comma=st.booleans(), offset=st.sampled_from(["Z", "+02:00", "-05:30"]))
def test_csv_round_trip(tmp_path_factory, df, delimiter, encoding, gz, decimal_comma, offset):
    out = df.copy()
    tz = {"Z": "UTC", "+02:00": "Etc/GMT-2", "-05:30": "Asia/Kolkata"}[offset]
    local = out["ts"].dt.tz_convert("UTC") + pd.Timedelta(
        {"Z": 0, "+02:00": 120, "-05:30": -330}[offset], unit="min")
    out["ts"] = local.dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + offset
    comma = decimal_comma and delimiter == ";"
    out["value"] = out["value"].map(lambda v: "" if pd.isna(v) else (f"{v:.2f}".replace(".", ",") if comma else repr(v)))
    csv_text = out.to_csv(index=False, sep=delimiter, lineterminator="\n")
    data = csv_text.encode(encoding)
    path = tmp_path_factory.mktemp("rt") / ("e.csv.gz" if gz else "e.csv")
    path.write_bytes(gzip.compress(data) if gz else data)

    got = read_export(path)
    assert len(got) == len(df)
    assert got["customer_id"].tolist() == df["customer_id"].tolist()
    assert got["touchpoint"].tolist() == df["touchpoint"].tolist()
    assert got["channel"].tolist() == df["channel"].tolist()
    assert (got["ts"] == df["ts"].astype("datetime64[us, UTC]")).all()
    expected_value = df["value"].astype("float64")
    assert ((got["value"] - expected_value).abs().fillna(0) < 1e-9).all()
    assert got["value"].isna().tolist() == expected_value.isna().tolist()
    assert got["note"].fillna("").tolist() == df["note"].fillna("").tolist()
    given_sessions = df["session_id"].notna()
    assert got.loc[given_sessions, "session_id"].tolist() == df.loc[given_sessions, "session_id"].tolist()
    assert got["session_id"].notna().all()
    del tz
