"""Shared fixtures: tiny hand-made exports with hand-computed expectations, a workspace
snapshot to prove failed pulls change nothing, the shared real data, one Spark session."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
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


# --------------------------------------------------------------------------- another journey
#: the demo's touchpoints renamed to an Italian subscription journey: a face that names a
#: touchpoint, scale or cost of the default map fails on it
OWN_TOUCHPOINTS = {
    "search": "ricerca_google", "ad_click": "annuncio_social", "social_post_view": "post_instagram",
    "review_read": "recensioni_lette", "newsletter_open": "newsletter_aperta",
    "home_page": "pagina_offerta", "popup_shown": "banner_cookie", "product_page": "scheda_piano",
    "add_to_cart": "scelta_piano", "registration_form": "modulo_dati", "checkout": "pagamento",
    "purchase": "abbonamento_attivo", "store_visit": "visita_negozio", "sales_call": "chiamata_vendite",
    "order_confirmation": "email_benvenuto", "delivery": "attivazione_sim", "product_use": "uso_servizio",
    "support_contact": "richiesta_assistenza", "support_reply": "risposta_assistenza",
    "return_request": "disdetta", "upgrade_offer": "offerta_upgrade", "review_written": "recensione_scritta",
    "social_share": "condivisione_social", "survey_response": "risposta_sondaggio",
}
OWN_JOURNEY_YML = """\
name: Abbonamento mobile
moments:
  - id: RICERCA
    label: Ricerca (prima dell'acquisto)
    phase: before
    touchpoints: [ricerca_google, annuncio_social, post_instagram, recensioni_lette, newsletter_aperta]
  - id: OFFERTA
    label: Offerta e sottoscrizione
    phase: during
    touchpoints: [pagina_offerta, banner_cookie, scheda_piano, scelta_piano, modulo_dati, pagamento,
                  abbonamento_attivo, visita_negozio, chiamata_vendite]
  - id: SERVIZIO
    label: Attivazione e servizio
    phase: after
    touchpoints: [email_benvenuto, attivazione_sim, uso_servizio, richiesta_assistenza,
                  risposta_assistenza, disdetta, offerta_upgrade]
  - id: PASSAPAROLA
    label: Passaparola
    phase: after
    touchpoints: [recensione_scritta, condivisione_social, risposta_sondaggio]
funnel: [pagina_offerta, scheda_piano, scelta_piano, pagamento, abbonamento_attivo]
conversion: abbonamento_attivo
conversion_window: 10D
session_gap: 45min
roles:
  care_contact: [richiesta_assistenza]
  care_reply: [risposta_assistenza]
currency: CHF
costs:
  richiesta_assistenza: 9
  risposta_assistenza: 3
  visita_negozio: 12
labels:
  pagina_offerta: Pagina dell'offerta
  banner_cookie: Banner dei cookie
  scheda_piano: Scheda del piano
  scelta_piano: Scelta del piano
  modulo_dati: Modulo dei dati personali
  pagamento: Pagamento
  abbonamento_attivo: Abbonamento attivo
"""


#: how the own journey's survey export (``own_journey["survey"]``) is pulled: NPS only, Italian columns
OWN_SURVEY_PULL = {"kind": "feedback", "format": "survey", "scale": "nps",
                   "mapping": {"customer_id": "respondent", "ts": "data", "score": "voto", "text": "commento",
                               "touchpoint": "pagina", "language": "lingua"}}


@pytest.fixture(scope="session")
def own_journey(tmp_path_factory):
    """A journey of our own making: the simulator's journeys under other touchpoint names
    (:data:`OWN_TOUCHPOINTS`), a map with Italian labels, costs in CHF and a 10-day window,
    and a survey export with NPS answers only (no stars, no scale column: ``scale=nps``).

    Returns a dict: ``dir``, ``events`` (CSV), ``survey`` (CSV: respondent, data, voto,
    commento, pagina), ``journey`` (YAML path), ``sim`` (the simulation, demo names)."""
    from cxlab.datasets import simulate_journeys

    out = tmp_path_factory.mktemp("own_journey")
    sim = simulate_journeys(3000, seed=11, italian_share=0.8)
    ev = sim.events.assign(touchpoint=sim.events["touchpoint"].map(OWN_TOUCHPOINTS))
    assert ev["touchpoint"].notna().all(), "OWN_TOUCHPOINTS misses a simulated touchpoint"
    ev = ev.assign(ts=ev["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    ev.drop(columns=["session_id"]).to_csv(out / "eventi.csv", index=False)
    fb = sim.feedback[sim.feedback["scale"] == "nps"]
    survey = pd.DataFrame({"respondent": fb["customer_id"], "data": fb["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "voto": fb["score"].astype(int), "commento": fb["text"],
                           "pagina": fb["touchpoint"].map(OWN_TOUCHPOINTS), "lingua": fb["language"]})
    survey.to_csv(out / "sondaggio_nps.csv", index=False)
    (out / "journey.yml").write_text(OWN_JOURNEY_YML, encoding="utf-8")
    return {"dir": out, "events": out / "eventi.csv", "survey": out / "sondaggio_nps.csv",
            "journey": out / "journey.yml", "sim": sim}
