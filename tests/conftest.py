"""Shared fixtures: tiny hand-made exports with hand-computed expectations, a workspace
snapshot to prove failed pulls change nothing, the shared real data, one Spark session."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import cxlab

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if os.environ.get("CXLAB_SHARED_DATA"):
    SHARED_DATA = Path(os.environ["CXLAB_SHARED_DATA"])


def shared_file(*parts) -> Path:
    """A file under ../shared/data, or skip the test saying why."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real dataset {path} is absent: ../shared/data comes with the cxlab "
                    "development checkout, not with a user's clone")
    return path


@pytest.fixture
def ws(tmp_path):
    w = cxlab.connect(tmp_path / "ws.duckdb")
    yield w
    w.close()


def snapshot(w) -> tuple:
    """Everything a pull could change: row counts, a checksum of each table, the manifest."""
    out = []
    for table in ("events", "feedback", "_cx_loads"):
        cols = [r[0] for r in w._raw.execute(f"DESCRIBE {table}").fetchall()]
        n, digest = w._raw.execute(
            f"SELECT count(*), coalesce(sum(hash(COLUMNS(*))), 0) FROM {table}").fetchone()[:2]
        out.append((table, tuple(cols), n, digest))
    return tuple(out)


def file_sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


EVENTS_CSV = """customer_id,ts,touchpoint,channel,value,device
c1,2026-03-01T10:00:00Z,home_page,web,,desktop
c1,2026-03-01T10:02:00Z,product_page,web,,desktop
c1,2026-03-01T11:00:00Z,checkout,web,,desktop
c1,2026-03-01T11:05:00Z,purchase,web,59.90,desktop
c2,2026-03-02T08:00:00+01:00,home_page,app,,mobile
c2,2026-03-02T08:01:00+01:00,product_page,app,,mobile
c3,2026-03-03T09:30:00Z,search,web,,tablet
"""


@pytest.fixture
def events_csv(tmp_path) -> Path:
    p = tmp_path / "events.csv"
    p.write_text(EVENTS_CSV, encoding="utf-8")
    return p


@pytest.fixture
def ws_file(tmp_path, events_csv):
    """A workspace file with the tiny events export pulled (closed again)."""
    path = tmp_path / "ws.duckdb"
    with cxlab.connect(path) as w:
        w.pull(events_csv)
    return path


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark")
    from cxlab.workspace import _spark_session

    session = _spark_session()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
