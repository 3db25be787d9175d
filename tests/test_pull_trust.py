"""Issue 17: a pull reads the file named, knows a corrected export, and stays bounded."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import cxlab
from conftest import file_sha, snapshot
from cxlab.io import read_export

HEADER = "customer_id,ts,touchpoint,channel\n"


def events_file(path: Path, customers, *, hour: int = 10, touchpoint: str = "home_page") -> Path:
    """One event per customer at ``hour`` (so files differ in content, not only in name)."""
    rows = "".join(f"{c},2026-03-01T{hour:02d}:00:00Z,{touchpoint},web\n" for c in customers)
    path.write_text(HEADER + rows, encoding="utf-8")
    return path


# ---------------------------------------------------------------- 1. file names are names
@pytest.mark.parametrize("name", ["oct[1].csv", "week*.csv", "what?.csv", "o'brien.csv",
                                  "with space [draft].csv", "ottobre-è-già[1].csv", "~home.csv"])
def test_a_file_name_is_read_literally(ws, tmp_path, monkeypatch, name):
    # neighbours that a glob would match (oct1.csv for oct[1], week1-3 for week*, ...)
    for other in ("oct1.csv", "week1.csv", "week2.csv", "week3.csv", "whatX.csv",
                  "with space d.csv", "ottobre-è-già1.csv"):
        events_file(tmp_path / other, [f"decoy-{other}"])
    target = events_file(tmp_path / name, ["a", "b"])
    monkeypatch.chdir(tmp_path)  # a relative name, as typed
    r = ws.pull(name)
    assert (r.status, r.rows_read, r.rows_added) == ("loaded", 2, 2)
    assert sorted(ws.events().customer_id.execute()) == ["a", "b"]
    m = ws.loads().iloc[-1]
    assert m.source == str(target.resolve()) and m.file_name == name
    assert m.sha256 == file_sha(target)


def as_jsonl(text: str) -> str:
    return "".join(json.dumps(dict(zip(HEADER.strip().split(","), line.split(",")))) + "\n"
                   for line in text.splitlines()[1:])


@pytest.mark.parametrize("suffix, write", [
    (".csv.gz", lambda p, text: p.write_bytes(gzip.compress(text.encode()))),
    (".jsonl", lambda p, text: p.write_text(as_jsonl(text))),
    (".jsonl.gz", lambda p, text: p.write_bytes(gzip.compress(as_jsonl(text).encode()))),
])
def test_glob_characters_in_gzip_and_json_names(tmp_path, suffix, write):
    text = HEADER + "a,2026-03-01T10:00:00Z,home_page,web\n"
    write(tmp_path / f"oct[1]{suffix}", text)
    write(tmp_path / f"oct1{suffix}", text.replace("a,", "decoy,"))
    df = read_export(tmp_path / f"oct[1]{suffix}")
    assert df.customer_id.tolist() == ["a"]


def test_glob_characters_in_parquet_and_cp1252_names(tmp_path):
    import pandas as pd

    pd.DataFrame({"customer_id": ["a"], "ts": ["2026-03-01T10:00:00Z"],
                  "touchpoint": ["home_page"]}).to_parquet(tmp_path / "p[1].parquet")
    pd.DataFrame({"customer_id": ["decoy"], "ts": ["2026-03-01T10:00:00Z"],
                  "touchpoint": ["home_page"]}).to_parquet(tmp_path / "p1.parquet")
    assert read_export(tmp_path / "p[1].parquet").customer_id.tolist() == ["a"]
    row = ",2026-03-01T10:00:00Z,home_page,web\n"
    (tmp_path / "c[1].csv").write_bytes((HEADER + "caf\xe9" + row).encode("cp1252"))
    (tmp_path / "c1.csv").write_bytes((HEADER + "decoy" + row).encode("cp1252"))
    assert read_export(tmp_path / "c[1].csv").customer_id.tolist() == ["caf\xe9"]


def test_a_missing_file_with_a_glob_name_is_not_found(ws, tmp_path):
    events_file(tmp_path / "week1.csv", ["a"])
    with pytest.raises(cxlab.exceptions.ExportError, match="file not found"):
        ws.pull(tmp_path / "week*.csv")
    assert ws.counts() == {"events": 0, "feedback": 0}


# ---------------------------------------------------------------- 2. a corrected export
CUSTOMERS = [f"c{i:02d}" for i in range(40)]


def corrected(path: Path) -> Path:
    """The same export after the source system moved 20 customers' timestamps by an hour."""
    text = path.read_text().splitlines(keepends=True)
    out = [text[0]] + [ln.replace("T10:", "T11:") if i < 20 else ln for i, ln in enumerate(text[1:])]
    path.write_text("".join(out))
    return path


def test_a_corrected_export_is_refused_naming_the_earlier_load(ws, tmp_path):
    export = events_file(tmp_path / "export.csv", CUSTOMERS)
    first = ws.pull(export)
    before = snapshot(ws)
    corrected(export)
    with pytest.raises(cxlab.exceptions.SourceChangedError) as err:
        ws.pull(export)
    msg = str(err.value)
    assert f"load {first.load_id}" in msg and first.sha256[:12] in msg and "40 rows added" in msg
    assert "replace=True" in msg and "--replace" in msg and "append=True" in msg and "--append" in msg
    assert [e["load_id"] for e in err.value.earlier] == [first.load_id]
    assert snapshot(ws) == before  # nothing added, not even a manifest row


def test_replace_swaps_the_rows_of_that_source_atomically(ws, tmp_path):
    export = events_file(tmp_path / "export.csv", CUSTOMERS)
    other = events_file(tmp_path / "other.csv", ["z1", "z2"], touchpoint="search")
    first, kept = ws.pull(export), ws.pull(other)
    corrected(export)
    r = ws.pull(export, replace=True)
    assert (r.status, r.rows_read, r.rows_added, r.rows_removed) == ("replaced", 40, 40, 40)
    assert r.replaced == (first.load_id,)
    df = ws.events().execute()
    assert len(df) == 42 and df.customer_id.nunique() == 42  # no journey doubled
    moved = df[df.customer_id.isin(CUSTOMERS[:20])].ts.dt.hour.unique().tolist()
    assert moved == [11]
    m = ws.loads().set_index("load_id")
    assert m.loc[first.load_id, "superseded_by"] == r.load_id
    assert pd_isna(m.loc[kept.load_id, "superseded_by"])
    assert (m.loc[r.load_id, "status"], m.loc[r.load_id, "rows_removed"], m.loc[r.load_id, "replaces"]) == (
        "replaced", 40, str(first.load_id))
    # the replaced version is no longer "already loaded": pulling it back is a change again
    events_file(export, CUSTOMERS)
    with pytest.raises(cxlab.exceptions.SourceChangedError, match=f"load {r.load_id}"):
        ws.pull(export)
    back = ws.pull(export, replace=True)
    assert (back.rows_removed, back.rows_added) == (40, 40)
    said = f"the same content was pulled as load {first.load_id}, whose rows load {r.load_id} replaced"
    assert said in back.notes


def pd_isna(x) -> bool:
    import pandas as pd

    return bool(pd.isna(x))


def test_a_failed_replace_leaves_the_workspace_as_it_was(ws, tmp_path):
    export = events_file(tmp_path / "export.csv", CUSTOMERS)
    ws.pull(export)
    before = snapshot(ws)
    export.write_text(export.read_text() + "c99,not a time,home_page,web\n")  # corrected, but broken
    with pytest.raises(cxlab.exceptions.TimestampError):
        ws.pull(export, replace=True)
    assert snapshot(ws) == before

    def boom():
        raise RuntimeError("killed after the delete and the insert")

    corrected(events_file(export, CUSTOMERS))
    with pytest.raises(RuntimeError):
        ws.pull(export, replace=True, _in_transaction=boom)
    assert snapshot(ws) == before


def test_append_adds_new_data_at_the_same_path(ws, tmp_path):
    export = events_file(tmp_path / "export.csv", CUSTOMERS[:10])
    first = ws.pull(export)
    events_file(export, CUSTOMERS[5:15])  # five customers repeated exactly, five new
    r = ws.pull(export, append=True)
    assert (r.status, r.rows_added, r.duplicates_skipped, r.rows_removed) == ("loaded", 5, 5, 0)
    assert any(f"load {first.load_id}" in n for n in r.notes)
    assert ws.events().count().execute() == 15
    with pytest.raises(ValueError, match="contradict"):
        ws.pull(export, append=True, replace=True)


def feedback_file(path: Path, scores: dict[str, int]) -> Path:
    rows = "".join(f"{fid},c{fid},2026-03-01T10:00:00Z,{s},nps,ok\n" for fid, s in scores.items())
    path.write_text("feedback_id,customer_id,ts,score,scale,text\n" + rows)
    return path


def test_a_corrected_score_survives_replace_and_is_counted_on_append(ws, tmp_path):
    export = feedback_file(tmp_path / "nps.csv", {"f1": 9, "f2": 3, "f3": 7})
    ws.pull(export, kind="feedback")
    feedback_file(export, {"f1": 9, "f2": 8, "f3": 7})  # f2 corrected from 3 to 8
    r = ws.pull(export, kind="feedback", replace=True)
    assert (r.rows_removed, r.rows_added, r.duplicates_skipped, r.conflicts_skipped) == (3, 3, 0, 0)
    scores = dict(ws.feedback().select("feedback_id", "score").execute().itertuples(index=False))
    assert scores == {"f1": 9, "f2": 8, "f3": 7}
    # the same keys with other content from another file: kept out, but counted apart and named
    elsewhere = feedback_file(tmp_path / "nps_copy.csv", {"f1": 9, "f2": 1, "f4": 10})
    r = ws.pull(elsewhere, kind="feedback")
    assert (r.rows_added, r.duplicates_skipped, r.conflicts_skipped) == (1, 1, 1)
    assert any("other content (first: feedback_id 'f2')" in n and "replace=True" in n for n in r.notes)
    m = ws.loads().iloc[-1]
    assert (m.conflicts_skipped, m.duplicates_skipped) == (1, 1)


def test_the_fingerprint_follows_a_replace_and_not_a_no_op(ws, tmp_path):
    from cxlab.reports import workspace_fingerprint

    export = events_file(tmp_path / "export.csv", CUSTOMERS)
    ws.pull(export)
    fp = workspace_fingerprint(ws)
    ws.pull(export)  # already loaded
    ws.pull(tmp_path / "export.csv")
    assert workspace_fingerprint(ws)["fingerprint"] == fp["fingerprint"]
    corrected(export)
    ws.pull(export, replace=True)
    after = workspace_fingerprint(ws)
    assert after["fingerprint"] != fp["fingerprint"]
    assert after["sha256"] == [file_sha(export)]  # the replaced version no longer counts


def test_a_file_changed_while_read_is_refused(ws, tmp_path):
    export = events_file(tmp_path / "export.csv", CUSTOMERS)
    before = snapshot(ws)
    with pytest.raises(cxlab.exceptions.FileChangedError, match="while it was being read"):
        ws.pull(export, _in_transaction=lambda: export.write_text(export.read_text() + "x,y,z,w\n"))
    assert snapshot(ws) == before
    # the same size and the modification time put back: still seen (the inode's ctime moved)
    import os

    events_file(export, CUSTOMERS)
    st = export.stat()

    def same_size_edit():
        export.write_text(export.read_text().replace("c00", "c0X"))
        os.utime(export, ns=(st.st_atime_ns, st.st_mtime_ns))

    with pytest.raises(cxlab.exceptions.FileChangedError):
        ws.pull(export, _in_transaction=same_size_edit)
    assert snapshot(ws) == before


def test_a_file_changed_while_hashed_is_refused(ws, tmp_path, monkeypatch):
    import cxlab.io as cio

    export = events_file(tmp_path / "export.csv", CUSTOMERS)
    real = cio.sniff

    def sniff_then_edit(*a, **k):
        info = real(*a, **k)
        export.write_text(export.read_text() + "late,2026-03-01T10:00:00Z,home_page,web\n")
        return info

    monkeypatch.setattr(cio, "sniff", sniff_then_edit)
    with pytest.raises(cxlab.exceptions.FileChangedError, match="changed size"):
        ws.pull(export)
    assert ws.counts()["events"] == 0 and len(ws.loads()) == 0


def test_an_older_manifest_gains_the_new_columns(tmp_path):
    import duckdb

    db = tmp_path / "old.duckdb"
    ws = cxlab.connect(db)
    export = events_file(tmp_path / "export.csv", CUSTOMERS)
    ws.pull(export)
    ws.close()
    con = duckdb.connect(str(db))  # as written by cxlab before issue 17
    for c in ("rows_removed", "conflicts_skipped", "replaces", "superseded_by"):
        con.execute(f"ALTER TABLE _cx_loads DROP COLUMN {c}")
    con.close()
    ws = cxlab.connect(db)
    corrected(export)
    with pytest.raises(cxlab.exceptions.SourceChangedError):
        ws.pull(export)
    assert ws.pull(export, replace=True).rows_removed == 40
    assert ws.events().count().execute() == 40
    ws.close()


def test_cli_refuses_a_corrected_export_and_replaces_on_request(tmp_path, capsys):
    from cxlab.cli import main

    export = events_file(tmp_path / "export.csv", CUSTOMERS)
    db = str(tmp_path / "cli.duckdb")
    assert main(["pull", str(export), "--workspace", db]) == 0
    corrected(export)
    capsys.readouterr()
    assert main(["pull", str(export), "--workspace", db]) == 2
    err = capsys.readouterr().err
    assert "SourceChanged" not in err and "pulled before with other content" in err and "--replace" in err
    assert main(["pull", str(export), "--workspace", db, "--replace"]) == 0
    assert "replaced load 1 (40 rows removed)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:  # argparse: the two are exclusive
        main(["pull", str(export), "--workspace", db, "--replace", "--append"])
    assert exit_.value.code == 2


# ---------------------------------------------------------------- 5. large and odd inputs
def long_line_file(path: Path, size: int) -> Path:
    path.write_text(HEADER + "a,2026-03-01T10:00:00Z,home_page,web\n"
                    + f'b,2026-03-01T10:00:00Z,"{"x" * size}",web\n'
                    + "c,2026-03-01T10:00:00Z,home_page,web\n")
    return path


def test_a_line_over_the_limit_names_the_limit_and_how_to_raise_it(ws, tmp_path):
    p = long_line_file(tmp_path / "long.csv", 2_100_000)
    before = snapshot(ws)
    with pytest.raises(cxlab.exceptions.LineTooLongError) as err:
        ws.pull(p)
    msg = str(err.value)
    assert err.value.row == 2 and "line 3 of the file" in msg and "2,000,000 bytes" in msg
    assert "max_line_size=" in msg and "--max-line-size" in msg and "no data rows" not in msg
    assert snapshot(ws) == before
    needed = int(msg.split("max_line_size=")[1].split()[0])
    r = ws.pull(p, max_line_size=needed)
    assert (r.rows_read, r.rows_added) == (3, 3)
    assert json.loads(ws.loads().iloc[-1].options)["max_line_size"] == needed


def test_max_line_size_lowers_the_limit_too_and_the_cli_passes_it(tmp_path, capsys):
    from cxlab.cli import main

    p = long_line_file(tmp_path / "long.csv", 5_000)
    db = str(tmp_path / "cli.duckdb")
    assert main(["pull", str(p), "--workspace", db, "--max-line-size", "1000"]) == 2
    err = capsys.readouterr().err
    assert "longer than the 1,000 bytes a CSV line may have" in err and "line 3" in err
    assert main(["pull", str(p), "--workspace", db]) == 0
    with pytest.raises(ValueError, match="positive"):
        read_export(p, max_line_size=0)


def test_a_pull_runs_under_a_memory_limit_and_restores_the_setting(ws, tmp_path):
    from cxlab.workspace import PULL_MEMORY_LIMIT

    def setting():
        return ws._raw.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

    assert PULL_MEMORY_LIMIT == "1GB"
    outside = setting()
    seen = []
    ws.pull(events_file(tmp_path / "a.csv", ["a"]), _in_transaction=lambda: seen.append(setting()))
    ws.pull(events_file(tmp_path / "b.csv", ["b"]), memory_limit="300MB",
            _in_transaction=lambda: seen.append(setting()))
    assert seen == ["953.6 MiB", "286.1 MiB"] and setting() == outside
    bad = tmp_path / "c.csv"
    bad.write_text(HEADER + "c,never,x,web\n")
    with pytest.raises(cxlab.exceptions.TimestampError):  # restored after a refusal too
        ws.pull(bad)
    assert setting() == outside
    # a workspace opened with its own limit pulls under it and keeps it
    with cxlab.connect(tmp_path / "own.duckdb", memory_limit="500MB") as own:
        own.pull(tmp_path / "a.csv", _in_transaction=lambda: seen.append(
            own._raw.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]))
        assert seen[-1] == "476.8 MiB"
        assert own._raw.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "476.8 MiB"


def test_spark_reads_canonical_tables_in_a_folder_with_glob_characters(spark, ws, tmp_path):
    ws.pull(events_file(tmp_path / "a.csv", CUSTOMERS))
    decoy = tmp_path / "canonical 1"
    folder = tmp_path / "canonical [1]"  # a glob that would match the decoy
    ws.export_parquet(folder)
    with cxlab.connect(tmp_path / "decoy.duckdb") as other:
        other.pull(events_file(tmp_path / "b.csv", ["d"]))
        other.export_parquet(decoy)
    assert cxlab.connect(spark, path=folder).events().count().execute() == 40
