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


@pytest.mark.parametrize("suffix, write", [
    (".csv.gz", lambda p, text: p.write_bytes(gzip.compress(text.encode()))),
    (".jsonl", lambda p, text: p.write_text("\n".join(
        json.dumps(dict(zip(HEADER.strip().split(","), line.split(","))))
        for line in text.splitlines()[1:]) + "\n")),
    (".jsonl.gz", lambda p, text: p.write_bytes(gzip.compress("\n".join(
        json.dumps(dict(zip(HEADER.strip().split(","), line.split(","))))
        for line in text.splitlines()[1:]).encode()))),
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
    (tmp_path / "c[1].csv").write_bytes((HEADER + "caf\xe9,2026-03-01T10:00:00Z,home_page,web\n").encode("cp1252"))
    (tmp_path / "c1.csv").write_bytes((HEADER + "decoy,2026-03-01T10:00:00Z,home_page,web\n").encode("cp1252"))
    assert read_export(tmp_path / "c[1].csv").customer_id.tolist() == ["caf\xe9"]


def test_a_missing_file_with_a_glob_name_is_not_found(ws, tmp_path):
    events_file(tmp_path / "week1.csv", ["a"])
    with pytest.raises(cxlab.exceptions.ExportError, match="file not found"):
        ws.pull(tmp_path / "week*.csv")
    assert ws.counts() == {"events": 0, "feedback": 0}
