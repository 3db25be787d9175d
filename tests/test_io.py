"""Adapters: every bad export gets a typed error naming file, row and column, and the
workspace (and the file) stay exactly as they were."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from conftest import EVENTS_CSV, file_sha, snapshot
from cxlab import io as cio
from cxlab.exceptions import (
    EmptyExportError,
    ExportError,
    MissingColumnError,
    NullValueError,
    ScoreRangeError,
    TimestampError,
    UnreadableExportError,
)


def write(tmp_path, name, content, encoding="utf-8"):
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding=encoding, newline="")
    return p


def refused(ws, path, error, **options):
    """Pull must raise ``error``; workspace and file unchanged. Returns the exception."""
    ws.pull(write(path.parent, "ok_before.csv", EVENTS_CSV))  # a workspace with data in it
    before, sha = snapshot(ws), file_sha(path)
    with pytest.raises(error) as exc:
        ws.pull(path, **options)
    assert snapshot(ws) == before, "a failed pull changed the workspace"
    assert file_sha(path) == sha, "the export was modified"
    assert exc.value.path == str(path)
    return exc.value


# ------------------------------------------------------------------ good files
def test_csv_canonical_values(ws, events_csv):
    r = ws.pull(events_csv)
    assert (r.status, r.rows_read, r.rows_added, r.duplicates_skipped) == ("loaded", 7, 7, 0)
    df = ws.events().order_by(["customer_id", "ts"]).execute()
    assert list(df.columns) == ["customer_id", "ts", "touchpoint", "channel", "session_id", "value", "device"]
    c2 = df[df.customer_id == "c2"]
    assert c2.ts.iloc[0] == pd.Timestamp("2026-03-02T07:00:00Z")  # +01:00 converted to UTC
    assert df.value.sum() == pytest.approx(59.90)
    # sessions derived with the 30-minute gap: c1 has a 58-minute pause -> 2 sessions
    assert df[df.customer_id == "c1"].session_id.nunique() == 2
    assert df.session_id.nunique() == 4


def test_naive_timestamps_with_tz_follow_dst(ws, tmp_path):
    p = write(tmp_path, "naive.csv", "customer_id,ts,touchpoint\n"
                                     "a,2026-01-15 10:00:00,home_page\n"
                                     "a,2026-07-15 10:00:00,purchase\n")
    ws.pull(p, tz="Europe/Rome")
    ts = sorted(ws.events().execute().ts)
    assert ts == [pd.Timestamp("2026-01-15T09:00Z"), pd.Timestamp("2026-07-15T08:00Z")]


def test_unknown_tz_is_refused_before_reading(ws, events_csv):
    with pytest.raises(ValueError, match="not a known IANA time zone"):
        ws.pull(events_csv, tz="Europe/Roma")


def test_mapping_semicolon_decimal_comma_and_properties(ws, tmp_path):
    p = write(tmp_path, "export.csv",
              "user_id;event_time;evento;importo;negozio\n"
              "u1;01/03/2026 10:00;purchase;1.234,50;Milano\n"
              "u2;02/03/2026 11:30;purchase;12,5;Roma\n"
              "u3;02/03/2026 11:31;home_page;;Torino\n")
    r = ws.pull(p, mapping={"customer_id": "user_id", "ts": "event_time", "touchpoint": "evento",
                            "value": "importo"}, tz="Europe/Rome", ts_format="%d/%m/%Y %H:%M")
    assert r.rows_added == 3
    df = ws.events().order_by("customer_id").execute()
    assert list(df.value[:2]) == [1234.5, 12.5] and np.isnan(df.value[2])
    assert list(df.negozio) == ["Milano", "Roma", "Torino"]
    assert df.ts[0] == pd.Timestamp("2026-03-01T09:00Z")
    assert set(df.channel) == {"unknown"}


def test_tab_gzip_bom_and_jsonl(ws, tmp_path):
    tsv = EVENTS_CSV.replace(",", "\t")
    p1 = write(tmp_path, "e.tsv.gz", gzip.compress(("\ufeff" + tsv).encode("utf-8")))
    assert ws.pull(p1).rows_added == 7
    rows = [{"customer_id": "j1", "ts": "2026-04-01T10:00:00Z", "touchpoint": "search",
             "channel": "social", "campaign": "spring"},
            {"customer_id": "j1", "ts": "2026-04-01T10:03:00+02:00", "touchpoint": "home_page",
             "channel": "web", "campaign": None}]
    p2 = write(tmp_path, "e.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    r = ws.pull(p2)
    assert (r.format, r.rows_added) == ("jsonl", 2)
    df = ws.events().filter(ws.events().customer_id == "j1").order_by("ts").execute()
    assert list(df.ts) == [pd.Timestamp("2026-04-01T08:03Z"), pd.Timestamp("2026-04-01T10:00Z")]
    assert df.campaign.tolist()[1] == "spring"


def test_cp1252_italian_text_loads_correctly(ws, tmp_path):
    text = ("feedback_id;ts;score;text\n"
            "f1;2026-02-01T10:00:00Z;2;La consegna è arrivata in ritardo, perché? Costo 10€\n"
            "f2;2026-02-02T10:00:00Z;9;Più che soddisfatto, qualità ottima “davvero”\n")
    p = write(tmp_path, "survey.csv", text, encoding="cp1252")
    with pytest.raises(UnicodeDecodeError):
        p.read_bytes().decode("utf-8")
    r = ws.pull(p, kind="feedback", scale="nps", language="it")
    assert r.rows_added == 2
    df = ws.feedback().order_by("feedback_id").execute()
    assert df.text[0] == "La consegna è arrivata in ritardo, perché? Costo 10€"
    assert df.text[1] == "Più che soddisfatto, qualità ottima “davvero”"
    assert ws.loads().encoding.iloc[-1] == "cp1252"


def test_latin1_bytes_outside_cp1252(ws, tmp_path):
    # 0x81 is undefined in cp1252: such a file is latin-1
    p = write(tmp_path, "l1.csv", b"customer_id,ts,touchpoint\nJos\xe9\x81,2026-01-01T00:00:00Z,search\n")
    ws.pull(p)
    assert ws.events().execute().customer_id[0] == "Jos\u00e9\u0081"
    assert ws.loads().encoding.iloc[-1] == "latin-1"


def test_survey_scale_inferred_or_refused(ws, tmp_path):
    body = "respondent,date,nps,comment\nr1,2026-05-01T09:00:00Z,0,pessimo\nr2,2026-05-02T09:00:00Z,10,ottimo\n"
    p = write(tmp_path, "nps.csv", body)
    m = {"customer_id": "respondent", "ts": "date", "score": "nps", "text": "comment"}
    r = ws.pull(p, kind="feedback", format="survey", mapping=m)
    assert r.rows_added == 2 and any("inferred as 'nps'" in n for n in r.notes)
    fb = ws.feedback().execute()
    assert set(fb.scale) == {"nps"} and fb.feedback_id.str.len().eq(32).all()
    # pulling the same answers from another file adds nothing: ids are content hashes
    p2 = write(tmp_path, "nps_again.csv", body.replace("\n", "\r\n"))
    assert ws.pull(p2, kind="feedback", format="survey", mapping=m).duplicates_skipped == 2
    # 1-5 scores are ambiguous (csat or stars): refused until scale= is given
    p3 = write(tmp_path, "stars.csv", "respondent,date,stars,comment\nr1,2026-05-01T09:00:00Z,4,ok\n")
    m3 = dict(m, score="stars")
    err = refused(ws, p3, ScoreRangeError, kind="feedback", format="survey", mapping=m3)
    assert "scale=" in str(err)
    assert ws.pull(p3, kind="feedback", format="survey", mapping=m3, scale="stars").rows_added == 1


def test_ga4_export_jsonl_and_parquet(ws, tmp_path):
    def params(session, page):
        return [{"key": "ga_session_id", "value": {"string_value": None, "int_value": session,
                                                    "float_value": None, "double_value": None}},
                {"key": "page_location", "value": {"string_value": page, "int_value": None,
                                                    "float_value": None, "double_value": None}}]
    rows = [
        dict(event_date="20260301", event_timestamp=1772359200000000, event_name="page_view",
             user_pseudo_id="111.222", user_id="cust9", event_params=params(77, "https://x/home"),
             platform="WEB", device={"category": "desktop"}, traffic_source={"medium": "organic"},
             ecommerce={"purchase_revenue": None}),
        dict(event_date="20260301", event_timestamp=1772359260000000, event_name="purchase",
             user_pseudo_id="111.222", user_id=None, event_params=params(77, "https://x/thanks"),
             platform="IOS", device={"category": "mobile"}, traffic_source={"medium": "organic"},
             ecommerce={"purchase_revenue": 42.5}),
        dict(event_date="20260302", event_timestamp=1772445600000000, event_name="newsletter_open",
             user_pseudo_id="333.444", user_id=None, event_params=params(5, None),
             platform="WEB", device={"category": "desktop"}, traffic_source={"medium": "email"},
             ecommerce={"purchase_revenue": None}),
    ]
    p = write(tmp_path, "events_20260301.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    r = ws.pull(p)  # detected as GA4 from the columns
    assert (r.format, r.rows_added) == ("ga4", 3)
    df = ws.events().order_by("ts").execute()
    assert list(df.customer_id) == ["cust9", "111.222", "333.444"]
    assert list(df.channel) == ["web", "app", "email"]
    assert df.ts[0] == pd.Timestamp(1772359200, unit="s", tz="UTC")
    assert list(df.session_id) == ["111.222-77", "111.222-77", "333.444-5"]
    assert df.value[1] == 42.5 and df.page_location[0] == "https://x/home"
    pq = tmp_path / "events_ga4.parquet"
    pd.DataFrame(rows).assign(event_timestamp=lambda d: d.event_timestamp + 1).to_parquet(pq)
    r2 = ws.pull(pq, format="ga4")
    assert r2.rows_added == 3 and ws.events().count().execute() == 6


# ------------------------------------------------------------------ bad files
def test_empty_file(ws, tmp_path):
    err = refused(ws, write(tmp_path, "empty.csv", b""), EmptyExportError)
    assert "empty" in str(err)


def test_header_only(ws, tmp_path):
    err = refused(ws, write(tmp_path, "header.csv", "customer_id,ts,touchpoint\n"), EmptyExportError)
    assert "header and no data rows" in str(err)


def test_missing_required_column_suggests_near_name(ws, tmp_path):
    p = write(tmp_path, "miss.csv", "customerid,ts,touchpoint\nc1,2026-01-01T00:00:00Z,search\n")
    err = refused(ws, p, MissingColumnError)
    assert err.column == "customer_id"
    assert "did you mean 'customerid'" in str(err) and "mapping=" in str(err)


def test_mapped_column_absent(ws, events_csv):
    with pytest.raises(MissingColumnError, match="'customer' .*did you mean 'customer_id'"):
        ws.pull(events_csv, mapping={"customer_id": "customer"})
    with pytest.raises(ValueError, match="did you mean 'customer_id'"):
        ws.pull(events_csv, mapping={"customer": "customer_id"})


def test_unparseable_timestamp_names_row_and_value(ws, tmp_path):
    lines = ["customer_id,ts,touchpoint"] + [f"c{i},2026-01-01T00:00:{i:02d}Z,search" for i in range(40)]
    lines[26] = "c25,2026-13-45T00:00:00Z,search"
    err = refused(ws, write(tmp_path, "badts.csv", "\n".join(lines) + "\n"), TimestampError)
    assert (err.row, err.column, err.value) == (26, "ts", "2026-13-45T00:00:00Z")
    assert "row 26 (line 27 of the file)" in str(err)


def test_naive_timestamps_without_tz(ws, tmp_path):
    p = write(tmp_path, "naive.csv", "customer_id,ts,touchpoint\nc1,2026-01-01 10:00:00,search\n")
    err = refused(ws, p, TimestampError)
    assert "tz=" in str(err) and err.column == "ts"


def test_naive_parquet_timestamps_without_tz(ws, tmp_path):
    p = tmp_path / "naive.parquet"
    pd.DataFrame({"customer_id": ["a"], "ts": [pd.Timestamp("2026-01-01 10:00")],
                  "touchpoint": ["search"]}).to_parquet(p)
    refused(ws, p, TimestampError)
    ws.pull(p, tz="UTC")
    assert ws.events().filter(ws.events().customer_id == "a").execute().ts[0] == pd.Timestamp("2026-01-01T10:00Z")


def test_mixed_time_zones(ws, tmp_path):
    p = write(tmp_path, "mixed.csv", "customer_id,ts,touchpoint\n"
                                     "c1,2026-01-01T10:00:00+01:00,search\n"
                                     "c1,2026-01-01 10:05:00,home_page\n")
    err = refused(ws, p, TimestampError, tz="Europe/Rome")
    assert "mixed time zones" in str(err) and err.row == 2


def test_nulls_in_required_column(ws, tmp_path):
    p = write(tmp_path, "nulls.csv", "customer_id,ts,touchpoint\nc1,2026-01-01T10:00:00Z,search\n"
                                     "c2,2026-01-01T10:00:00Z,\nc3,2026-01-01T10:00:00Z,  \n")
    err = refused(ws, p, NullValueError)
    assert (err.row, err.column) == (2, "touchpoint") and "2 rows" in str(err)


def test_score_out_of_scale(ws, tmp_path):
    p = write(tmp_path, "scores.csv", "feedback_id,ts,score,scale,text\n"
                                      "f1,2026-01-01T10:00:00Z,9,nps,ok\n"
                                      "f2,2026-01-01T10:00:00Z,6,stars,hmm\n")
    err = refused(ws, p, ScoreRangeError, kind="feedback")
    assert (err.row, err.column, err.value) == (2, "score", 6.0) and "stars 1-5" in str(err)


def test_unknown_scale_value(ws, tmp_path):
    p = write(tmp_path, "scales.csv", "feedback_id,ts,score,scale\nf1,2026-01-01T10:00:00Z,9,promoter\n")
    err = refused(ws, p, ScoreRangeError, kind="feedback")
    assert err.row == 1 and "unknown scale 'promoter'" in str(err)


def test_non_numeric_value(ws, tmp_path):
    p = write(tmp_path, "val.csv", "customer_id,ts,touchpoint,value\nc1,2026-01-01T10:00:00Z,purchase,12 EUR\n")
    err = refused(ws, p, ExportError)
    assert (err.row, err.column, err.value) == (1, "value", "12 EUR")


def test_wrong_delimiter(ws, tmp_path):
    p = write(tmp_path, "pipes.csv", "customer_id|ts|touchpoint\nc1|2026-01-01T10:00:00Z|search\n")
    err = refused(ws, p, ExportError)
    assert "delimiter" in str(err) and "'|'" in str(err)
    # a delimiter given by the user that does not match the file
    p2 = write(tmp_path, "semi.csv", "customer_id;ts;touchpoint\nc1;2026-01-01T10:00:00Z;search\n")
    err2 = refused(ws, p2, ExportError, delimiter=",")
    assert "delimiter=';'" in str(err2)


def test_ragged_rows_name_the_line(ws, tmp_path):
    p = write(tmp_path, "ragged.csv", "customer_id,ts,touchpoint\nc1,2026-01-01T10:00:00Z,search\n"
                                      "c2,2026-01-01T10:00:00Z,search,extra,fields\n")
    err = refused(ws, p, ExportError)
    assert err.row == 2 or "line 3" in str(err)


def test_truncated_gzip(ws, tmp_path):
    data = gzip.compress(("customer_id,ts,touchpoint\n" + "c1,2026-01-01T10:00:00Z,search\n" * 5000).encode())
    err = refused(ws, write(tmp_path, "cut.csv.gz", data[: len(data) // 2]), UnreadableExportError)
    assert "gzip" in str(err)


def test_corrupt_parquet(ws, tmp_path):
    good = tmp_path / "good.parquet"
    pd.DataFrame({"customer_id": ["a"] * 100, "ts": pd.Timestamp("2026-01-01", tz="UTC"),
                  "touchpoint": "search"}).to_parquet(good)
    data = good.read_bytes()
    bad = write(tmp_path, "bad.parquet", data[:20] + b"\x00" * 50 + data[70:-10])
    err = refused(ws, bad, UnreadableExportError)
    assert "Parquet" in str(err)


def test_binary_garbage_named_csv(ws, tmp_path):
    rng = np.random.default_rng(0)
    err = refused(ws, write(tmp_path, "garbage.csv", rng.bytes(5000)), UnreadableExportError)
    assert "binary" in str(err)


def test_parquet_named_csv(ws, tmp_path):
    p = tmp_path / "really.csv"
    pd.DataFrame({"a": [1]}).to_parquet(p)
    err = refused(ws, p, UnreadableExportError)
    assert "format='parquet'" in str(err)


def test_missing_file(ws, tmp_path):
    with pytest.raises(ExportError, match="file not found"):
        ws.pull(tmp_path / "nope.csv")


def test_duplicates_are_skipped_and_counted(ws, tmp_path):
    lines = EVENTS_CSV.splitlines()
    dup = "\n".join(lines + lines[1:3]) + "\n"  # two rows repeated in the same file
    r = ws.pull(write(tmp_path, "dup.csv", dup))
    assert (r.rows_read, r.rows_added, r.duplicates_skipped) == (9, 7, 2)
    # another file overlapping the first: the known rows are skipped, the new one added
    more = "\n".join(lines[:1] + lines[4:6] + ["c9,2026-03-05T10:00:00Z,search,web,,desktop"]) + "\n"
    r2 = ws.pull(write(tmp_path, "more.csv", more))
    assert (r2.rows_read, r2.rows_added, r2.duplicates_skipped) == (3, 1, 2)
    assert ws.events().count().execute() == 8
    manifest = ws.loads()
    assert list(manifest.duplicates_skipped) == [2, 2]


def test_read_export_returns_canonical_frame(events_csv):
    df = cio.read_export(events_csv)
    assert len(df) == 7 and str(df.ts.dtype) == "datetime64[us, UTC]"


# ------------------------------------------------------------------ clock changes
_CLOCK_CHANGES = [
    # zone, skipped local times, repeated ones, times on either side, the notes' rules
    ("Europe/Rome", ["2026-03-29 02:00:00", "2026-03-29 02:30:00"],
     ["2026-10-25 02:00:00", "2026-10-25 02:30:00", "2026-10-25 02:59:59"],
     ["2026-03-29 01:59:59", "2026-03-29 03:00:00", "2026-10-25 01:59:59", "2026-10-25 03:00:00"],
     "read with the offset before the change, +01:00 (CET), i.e. moved forward by 1 h",
     "read as the later occurrence, +01:00 (CET)"),
    ("America/New_York", ["2026-03-08 02:00:00", "2026-03-08 02:30:00"],
     ["2026-11-01 01:00:00", "2026-11-01 01:30:00", "2026-11-01 01:59:59"],
     ["2026-03-08 01:59:59", "2026-03-08 03:00:00", "2026-11-01 00:59:59", "2026-11-01 02:00:00"],
     "read with the offset before the change, -05:00 (EST), i.e. moved forward by 1 h",
     "read as the later occurrence, -05:00 (EST)"),
    ("Australia/Lord_Howe", ["2026-10-04 02:00:00", "2026-10-04 02:15:00"],   # a 30-minute change
     ["2026-04-05 01:30:00", "2026-04-05 01:45:00", "2026-04-05 01:59:59"],
     ["2026-10-04 01:59:59", "2026-10-04 02:30:00", "2026-04-05 01:29:59", "2026-04-05 02:00:00"],
     "read with the offset before the change, +10:30, i.e. moved forward by 30 min",
     "read as the later occurrence, +10:30"),
]


def _expected_utc(walls, tz, repeated=()):
    """Independently of the engine (zoneinfo, PEP 495): a skipped time read with the offset
    before the change (fold=0), a repeated one as the later occurrence (fold=1)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return [pd.Timestamp(datetime.fromisoformat(w).replace(tzinfo=ZoneInfo(tz), fold=int(w in repeated)))
            .tz_convert("UTC") for w in walls]


@pytest.mark.parametrize("tz, gap, fold, normal, gap_rule, fold_rule", _CLOCK_CHANGES)
def test_local_times_a_clock_change_skipped_or_repeated_are_counted_and_noted(
        ws, tmp_path, tz, gap, fold, normal, gap_rule, fold_rule):
    walls = normal[:2] + gap + normal[2:] + fold
    p = write(tmp_path, "dst.csv", "customer_id,ts,touchpoint\n"
              + "".join(f"c{i},{w},home_page\n" for i, w in enumerate(walls)))
    r = ws.pull(p, tz=tz)
    assert r.rows_added == len(walls)
    got = ws.events().execute().set_index("customer_id")["ts"]
    assert [got[f"c{i}"] for i in range(len(walls))] == _expected_utc(walls, tz, fold)
    gap_note = next(n for n in r.notes if "do not exist" in n)
    fold_note = next(n for n in r.notes if "occur twice" in n)
    assert gap_note.startswith(f"ts: 2 local times do not exist in {tz} (skipped when the clocks went forward")
    assert f"earliest {gap[0]}" in gap_note and gap_note.endswith(gap_rule)
    assert fold_note.startswith(f"ts: 3 local times occur twice in {tz} (repeated when the clocks went back")
    assert f"earliest {fold[0]}" in fold_note and fold_note.endswith(fold_rule)
    manifest = ws.loads().set_index("load_id").loc[r.load_id, "notes"]
    assert gap_note in manifest and fold_note in manifest


def test_clock_change_note_text_and_times_on_either_side(ws, tmp_path):
    p = write(tmp_path, "one.csv", "customer_id,ts,touchpoint\n"
                                   "a,2026-03-29 01:59:59,home_page\nb,2026-03-29 02:10:00,home_page\n"
                                   "c,2026-03-29 03:00:00,home_page\nd,2026-10-25 03:00:00,home_page\n")
    r = ws.pull(p, tz="Europe/Rome")
    assert [n for n in r.notes if n.startswith("ts:")] == [
        "ts: 1 local time does not exist in Europe/Rome (skipped when the clocks went forward, +01:00 "
        "to +02:00; earliest 2026-03-29 02:10:00): read with the offset before the change, +01:00 (CET), "
        "i.e. moved forward by 1 h"]


def test_no_clock_change_note_without_such_times_or_with_offsets(ws, tmp_path):
    p = write(tmp_path, "plain.csv", "customer_id,ts,touchpoint\na,2026-03-29 01:00:00,home_page\n"
                                     "a,2026-10-25 03:30:00,purchase\n")
    assert not [n for n in ws.pull(p, tz="Europe/Rome").notes if n.startswith("ts:")]
    p = write(tmp_path, "aware.csv", "customer_id,ts,touchpoint\nb,2026-03-29T02:30:00+01:00,home_page\n"
                                     "b,2026-10-25T02:30:00+02:00,purchase\n")
    assert not [n for n in ws.pull(p, tz="Europe/Rome").notes if n.startswith("ts:")]
    assert not [n for n in ws.pull(write(tmp_path, "utc.csv", "customer_id,ts,touchpoint\n"
                                         "c,2026-03-29 02:30:00,home_page\n"), tz="UTC").notes
                if n.startswith("ts:")]


def test_clock_changes_in_naive_parquet_timestamps_and_the_eager_stage(ws, tmp_path):
    import duckdb

    p = tmp_path / "naive.parquet"
    walls = ["2026-03-29 02:30:00", "2026-10-25 02:30:00", "2026-10-25 02:45:00", "2026-06-01 12:00:00"]
    pd.DataFrame({"customer_id": list("abcd"), "ts": pd.to_datetime(walls),
                  "touchpoint": ["search"] * 4}).to_parquet(p)
    r = ws.pull(p, tz="Europe/Rome")
    assert sum("1 local time does not exist" in n for n in r.notes) == 1
    assert sum("2 local times occur twice" in n for n in r.notes) == 1
    got = ws.events().execute().set_index("customer_id")["ts"]
    assert list(got[list("abcd")]) == _expected_utc(walls, "Europe/Rome", walls[1:3])
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    staged = cio.stage(con, p, tz="Europe/Rome")              # eager: the one check scan counts too
    assert [n[:40] for n in staged.notes if n.startswith("ts:")] == [
        "ts: 1 local time does not exist in Europ", "ts: 2 local times occur twice in Europe/"]


def test_clock_change_windows_from_the_zone_rules():
    from cxlab._clockchanges import windows

    rome = [w for w in windows("Europe/Rome") if w[1].year == 2026]
    assert [(k, str(a), str(b)) for k, a, b, _, _ in rome] == [
        ("gap", "2026-03-29 02:00:00", "2026-03-29 03:00:00"),
        ("fold", "2026-10-25 02:00:00", "2026-10-25 03:00:00")]
    assert windows("UTC") == () and windows("Asia/Tokyo")[-1][1].year < 1960
