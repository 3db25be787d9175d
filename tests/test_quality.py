"""cxlab.quality: numbers equal an independent pandas computation on hand-made exports."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import cxlab  # noqa: E402
from cxlab import quality  # noqa: E402

EVENTS = """customer_id,ts,touchpoint,channel,session_id,value,device
c1,2026-03-01T10:00:00Z,home_page,web,s1,,desktop
c1,2026-03-01T10:05:00Z,product_page,web,s1,,desktop
c1,2026-03-01T10:06:00Z,add_to_cart,web,s1,,desktop
c1,2026-03-01T10:09:00Z,purchase,web,s1,49.5,desktop
c2,2026-03-02T09:00:00Z,home_page,app,s2,,mobile
c2,2026-03-02T09:01:00Z,popup_shown,app,s2,,mobile
c2,2026-03-02T09:01:00Z,popup_shown,app,s2,,mobile
c2,2026-03-04T18:00:00Z,mystery_click,app,s3,,mobile
c3,2026-03-04T12:00:00Z,store_visit,store,s4,120,
c3,2026-03-06T23:30:00Z,mystery_click,web,s5,,desktop
c3,2026-03-06T23:45:00Z,legacy_event,web,s5,,desktop
c4,2026-03-06T08:00:00Z,home_page,web,s6,,tablet
"""
FEEDBACK = """feedback_id,customer_id,ts,touchpoint,channel,score,scale,text,language
f1,c1,2026-03-02T10:00:00Z,delivery,email,9,nps,Great delivery,en
f2,c2,2026-03-03T10:00:00Z,home_page,email,3,nps,"Troppi popup, scrivete a mario@example.com",it
f3,c3,2026-03-05T13:00:00Z,store_visit,web,4,stars,,it
f4,,2026-03-06T13:00:00Z,,social,,,Nice shop,en
f5,c1,2026-03-07T13:00:00Z,purchase,web,10,nps,   ,
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("quality")
    (d / "events.csv").write_text(EVENTS, encoding="utf-8")
    (d / "feedback.csv").write_text(FEEDBACK, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def ws(files):
    w = cxlab.connect(files / "ws.duckdb")
    w.pull(files / "events.csv", kind="events")
    w.pull(files / "feedback.csv", kind="feedback")
    yield w
    w.close()


@pytest.fixture(scope="module")
def ev(files):
    """The events as pandas computes them: exact duplicates removed, ts in UTC."""
    df = pd.read_csv(files / "events.csv", dtype={"value": float})
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df.drop_duplicates(["customer_id", "ts", "touchpoint", "channel"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def fb(files):
    df = pd.read_csv(files / "feedback.csv", keep_default_na=True)
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_quality_summary_matches_pandas(ws, ev, fb):
    s = quality.quality_summary(ws).set_index("table")
    e, f = s.loc["events"], s.loc["feedback"]
    assert e["rows"] == len(ev) == 11
    assert e["customers"] == ev["customer_id"].nunique()
    assert e["first_ts"] == ev["ts"].min() and e["last_ts"] == ev["ts"].max()
    dates = ev["ts"].dt.tz_convert("UTC").dt.normalize()
    assert e["days"] == (dates.max() - dates.min()).days + 1 == 6
    assert e["active_days"] == dates.nunique() == 4
    assert e["sessions"] == ev["session_id"].nunique()
    assert e["touchpoints"] == ev["touchpoint"].nunique()
    assert e["unknown_touchpoints"] == 2
    assert e["channels"] == ev["channel"].nunique()
    assert e["value_share"] == pytest.approx(ev["value"].notna().mean())
    assert pd.isna(e["with_score"]) and pd.isna(e["languages"])
    assert f["rows"] == len(fb)
    assert f["customers"] == fb["customer_id"].nunique()
    assert f["with_score"] == fb["score"].notna().sum() == 4
    assert f["with_text"] == (fb["text"].fillna("").str.strip() != "").sum() == 3
    assert f["languages"] == fb["language"].nunique() == 2
    assert f["first_ts"] == fb["ts"].min() and f["last_ts"] == fb["ts"].max()
    assert pd.isna(f["sessions"]) and pd.isna(f["value_share"])


def test_column_profile_matches_pandas(ws, ev):
    prof = quality.column_profile(ws.events()).set_index("column")
    assert list(prof.index) == ["customer_id", "ts", "touchpoint", "channel", "session_id",
                                "value", "device"]
    for col in ("customer_id", "touchpoint", "channel", "value", "device"):
        assert prof.loc[col, "non_null"] == ev[col].notna().sum(), col
        assert prof.loc[col, "null_share"] == pytest.approx(ev[col].isna().mean()), col
        assert prof.loc[col, "distinct"] == ev[col].nunique(), col
    assert prof.loc["value", "type"] == "float64"
    assert prof.loc["ts", "example"].endswith("UTC")
    # identifiers are pseudonymised, not shown
    assert prof.loc["customer_id", "example"].startswith("id:")
    # a DataFrame works too
    again = quality.column_profile(ev[["channel", "value"]])
    assert again["non_null"].tolist() == [11, 2]


def test_column_profile_masks_verbatims(ws):
    prof = quality.column_profile(ws.feedback().filter(ws.feedback().feedback_id == "f2"))
    text = prof.set_index("column").loc["text", "example"]
    assert "mario@example.com" not in text and "[EMAIL]" in text


def test_touchpoint_table_keeps_unknown_touchpoints_last(ws, ev):
    jm = cxlab.JourneyMap.default()
    tp = quality.touchpoint_table(ws, journey=jm)
    # every map touchpoint in map order, then the unknown ones by events
    assert tp["touchpoint"].tolist()[: len(jm.touchpoints)] == list(jm.touchpoints)
    unknown = tp[~tp["in_map"]]
    assert unknown["touchpoint"].tolist() == ["mystery_click", "legacy_event"]
    assert (unknown["moment"] == quality.UNMAPPED).all()
    assert unknown["phase"].isna().all()
    expected = ev.groupby("touchpoint").agg(events=("ts", "size"), customers=("customer_id", "nunique"),
                                            first_seen=("ts", "min"), last_seen=("ts", "max"))
    seen = tp.set_index("touchpoint").loc[expected.index]
    assert seen["events"].tolist() == expected["events"].tolist()
    assert seen["customers"].tolist() == expected["customers"].tolist()
    assert (seen["first_seen"] == expected["first_seen"]).all()
    assert (seen["last_seen"] == expected["last_seen"]).all()
    assert tp["share"].sum() == pytest.approx(1.0)
    assert tp.set_index("touchpoint").loc["popup_shown", "share"] == pytest.approx(1 / 11)
    assert tp.set_index("touchpoint").loc["checkout", "events"] == 0  # in the map, never seen
    assert tp.set_index("touchpoint").loc["checkout", "moment"] == "FMOT"
    # the journey check agrees
    assert set(ws.check(jm).unknown["touchpoint"]) == set(unknown["touchpoint"])


def test_daily_events_matches_pandas_and_fills_gaps(ws, ev):
    d = quality.daily_events(ws, by="channel")
    exp = ev.assign(date=ev["ts"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize())
    exp = exp.groupby(["date", "channel"]).size()
    got = d.set_index(["date", "channel"])["events"]
    assert got[got > 0].sort_index().tolist() == exp.sort_index().tolist()
    assert got.sum() == len(ev)
    # 2026-03-03 has no events: present with zeros for every channel, 6 days x 3 channels
    assert len(d) == 6 * 3
    assert d.loc[d["date"] == "2026-03-03", "events"].sum() == 0
    total = quality.daily_events(ws, by=None)
    assert total["events"].tolist() == [4, 2, 0, 2, 0, 3]
    with pytest.raises(ValueError, match="did you mean 'channel'"):
        quality.daily_events(ws, by="chanel")


def test_events_per_customer_matches_pandas(ws, ev):
    got = quality.events_per_customer(ws)
    exp = ev.groupby("customer_id").size().value_counts().sort_index()
    assert got["events"].tolist() == exp.index.tolist()
    assert got["customers"].tolist() == exp.tolist()
    assert got["cumulative_share"].iloc[-1] == pytest.approx(1.0)


def test_score_distribution_and_languages(ws, fb):
    sd = quality.score_distribution(ws)
    assert sd["scale"].unique().tolist() == ["nps", "stars"]
    nps = sd[sd["scale"] == "nps"]
    assert nps["score"].tolist() == list(np.arange(0.0, 11.0))  # completed 0-10
    exp = fb.dropna(subset=["score"]).groupby(["scale", "score"]).size()
    got = sd.set_index(["scale", "score"])["n"]
    assert got[got > 0].tolist() == exp.tolist()
    assert sd.groupby("scale")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    lang = quality.feedback_languages(ws).set_index("language")
    assert lang.loc["en", "feedback"] == 2 and lang.loc["it", "feedback"] == 2
    assert lang.loc["(missing)", "feedback"] == 1
    assert lang.loc["it", "with_text"] == 1


def test_summary_metrics_and_tables(ws):
    m = quality.summary_metrics(quality.quality_summary(ws),
                                touchpoints=quality.touchpoint_table(ws))
    assert m["rows"] == ws.counts()
    assert m["unknown_touchpoints"] == ["mystery_click", "legacy_event"]
    assert m["unknown_touchpoint_events"] == 3
    loads = quality.loads_table(ws)
    assert loads["duplicates_skipped"].tolist() == [1, 0]
    assert loads["sha256"].str.len().eq(12).all()
    tp = quality.touchpoint_table(ws)
    html = quality.style_table(tp, max_rows=5).to_html()
    assert f"first 5 of {len(tp)} rows" in html and html.count("<tr>") == 6
    card = quality.summary_card(quality.quality_summary(ws))
    assert card.set_index("measure").loc["rows", "events"] == "11"


def test_plots_return_axes(ws):
    ax = quality.plot_touchpoints(ws)
    assert isinstance(ax, plt.Axes)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-2:] == ["mystery_click", "legacy_event"]
    assert isinstance(quality.plot_daily_events(ws), plt.Axes)
    assert isinstance(quality.plot_events_per_customer(ws), plt.Axes)
    fig = quality.plot_score_distribution(ws)
    assert isinstance(fig, plt.Figure)
    assert len([a for a in fig.axes if a.get_visible()]) == 2
    _, ax = plt.subplots()
    assert quality.plot_daily_events(quality.daily_events(ws, by=None), by=None, ax=ax) is ax


def test_empty_workspace(tmp_path):
    w = cxlab.connect(tmp_path / "empty.duckdb")
    try:
        s = quality.quality_summary(w)
        assert s["rows"].tolist() == [0, 0]
        assert quality.daily_events(w).empty
        assert quality.score_distribution(w).empty
        assert isinstance(quality.plot_score_distribution(w), plt.Figure)
        assert isinstance(quality.plot_daily_events(w), plt.Axes)
        assert quality.touchpoint_table(w)["events"].sum() == 0
    finally:
        w.close()


def test_short_duration_reads_like_a_person_would_say_it():
    from cxlab.quality import short_duration

    assert short_duration(pd.Timedelta("14D 10h 32min")) == "14d 10h"
    assert short_duration(pd.Timedelta("4h 7min 12s")) == "4h 07m"
    assert short_duration(pd.Timedelta("5min 43.6s")) == "5m 44s"
    assert short_duration(pd.Timedelta("44s")) == "44s"
    assert short_duration(pd.NaT) == ""


CRM_EVENTS = ("customer_id,ts,touchpoint,channel,crm_note,email,telefono,nome,codice_fiscale,cellulare,"
              "customerEmail,segment\n") + "".join(
    f"C{i:07d},2026-03-0{i}T10:00:00Z,home_page,web,"
    f"\"scrive da mario{i}@example.it, cell 347 123 456{i}, cf RSSMRA85T10A562S\","
    f"anna{i}@example.it,+39 06 1234 567{i},Anna Verdi {i},VRDNNA90A41H501{'UVWXYZ'[i]},34712345{i}{i},"
    f"b{i}@example.it,gold\n"
    for i in range(1, 6))


def test_column_profile_never_shows_personal_data_of_property_columns(tmp_path):
    from cxlab.privacy import pseudonym

    (tmp_path / "crm.csv").write_text(CRM_EVENTS, encoding="utf-8")
    with cxlab.connect(tmp_path / "crm.duckdb") as w:
        w.pull(tmp_path / "crm.csv", kind="events")
        key = w.pseudonym_key()
        prof = quality.column_profile(w.events(), key=key).set_index("column")["example"]
        ids = w.events().customer_id.execute().tolist()
    shown = " ".join(prof.dropna())
    for raw in ("@example.it", "347 123", "RSSMRA85T10A562S", "1234 567", "Anna", "VRDNNA", "3471234"):
        assert raw not in shown, raw
    assert "[EMAIL]" in prof["crm_note"] and "[PHONE]" in prof["crm_note"] and "[TAX_ID]" in prof["crm_note"]
    # columns that are identifiers show a keyed pseudonym, never a value
    for col in ("customer_id", "email", "telefono", "nome", "codice_fiscale", "cellulare", "customeremail"):
        assert prof[col].startswith("id:") and len(prof[col]) == 11, col
    assert prof["customer_id"] in {pseudonym(c, key=key) for c in ids}
    assert prof["segment"] == "gold" and prof["touchpoint"] == "home_page"     # ordinary values stay readable
    # a frame with the export's own names: customerEmail is an e-mail column too
    frame = pd.DataFrame({"customerEmail": ["x@example.it"], "Codice Fiscale": ["RSSMRA85T10A562S"]})
    assert quality.column_profile(frame, key=key)["example"].str.startswith("id:").all()
