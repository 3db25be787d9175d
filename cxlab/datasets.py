"""Simulated customer journeys and customer voice with *planted ground truth*.

:func:`simulate_journeys` draws an omnichannel e-commerce journey for every customer
(ZMOT research, an FMOT funnel with loops, deferred checkouts and channel switches, SMOT
delivery/support/returns, UMOT reviews, shares and surveys, and the UMOT -> ZMOT circle
of customers who come back for a second or third journey), plus the feedback those
customers leave (NPS surveys, star reviews, exit surveys) in Italian and English.
Everything that matters for an analysis is planted and returned as truth:

* drop-off hazards: at each funnel step entered before ``purchase`` a customer leaves with
  probability ``p``, ``logit(p) = alpha_step + log(2.0)*popup_seen + log(0.5)*app
  + log(2.5)*registration_seen*[step == checkout]``;
* the pain point: ``registration_form``, which both raises drop-off at checkout and
  carries clearly negative feedback (latent sentiment shift -2.5).

:func:`write_simulation` writes the tables as CSV, Parquet or a GA4 BigQuery-style JSON
Lines export (optionally with duplicated rows, as real exports have), and
:func:`to_ga4` converts the canonical events table to the GA4 export schema.

Everything is vectorised with numpy/pandas (loops only run over a handful of touchpoints,
product-page views and journey rounds) and deterministic for a given ``seed``.

Measured (2-core container, numpy 2.4, pandas 3.1, ``simulate_journeys(n, seed=1)``):
100,000 customers -> 818,143 events (8.2 per customer), 15,337 feedback rows, 101,796
customer-journeys, conversion 16.7 %, in 0.5-1.0 s; 1,000,000 customers -> 8.2 million
events in 7-10 s. ``to_ga4`` on the 100k simulation (741k digital events): about 3 s;
``write_simulation`` csv about 2.5 s, parquet 0.3 s, ga4 JSON Lines 8-10 s.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .journey import JourneyMap

__all__ = ["SimulatedJourneys", "SimulationTruth", "simulate_journeys", "write_simulation",
           "to_ga4", "TEXT_TEMPLATES", "GA4_CHANNELS"]

# --------------------------------------------------------------------------- constants
CHANNELS = ("web", "app", "store", "call_centre", "email", "social")
WEB, APP, STORE, CALL, EMAIL, SOCIAL = range(6)
DEVICES = ("desktop", "mobile", "tablet")
DESKTOP, MOBILE, TABLET = range(3)
SEGMENTS = ("new", "returning", "loyal")
NEW, RETURNING, LOYAL = range(3)
LANGUAGES = ("it", "en")
SCALES = ("nps", "stars")

FUNNEL = ("home_page", "product_page", "add_to_cart", "checkout", "purchase")
HAZARD_STEPS = FUNNEL[:-1]
_REQUIRED = ("search", "ad_click", "social_post_view", "review_read", "newsletter_open",
             "home_page", "popup_shown", "product_page", "add_to_cart", "registration_form",
             "checkout", "purchase", "store_visit", "sales_call", "order_confirmation",
             "delivery", "product_use", "support_contact", "support_reply", "return_request",
             "upgrade_offer", "review_written", "social_share", "survey_response")

POPUP_OR, APP_OR, REGISTRATION_OR = 2.0, 0.5, 2.5
#: baseline probability of leaving at each step (web, no pop-up, no registration form)
_BASE_LEAVE = {"home_page": 0.30, "product_page": 0.45, "add_to_cart": 0.42, "checkout": 0.33}
STEP_ALPHA = {k: float(np.log(p / (1 - p))) for k, p in _BASE_LEAVE.items()}

#: latent sentiment shift of feedback about each touchpoint (customer baseline ~ N(0, 1))
SENTIMENT_EFFECTS = {"delivery": 0.3, "product_use": 0.4, "checkout": 0.1,
                     "home_page": 0.0, "product_page": 0.1, "add_to_cart": 0.0,
                     "support_contact": -0.6, "return_request": -0.8,
                     "registration_form": -2.5}
LEAVE_SHIFT = -1.0           # extra latent shift of exit-survey answers
_WORDS_NOISE = 0.35          # sd of the texts' own latent noise (see _build_feedback)
_NPS_CENTRE, _NPS_SLOPE = 8.0, 1.8
_STARS_CENTRE, _STARS_SLOPE = 3.7, 1.0

_DAY, _HOUR, _MIN = 86400, 3600, 60
_MAX_SPAN = 40 * _DAY        # longest possible journey after its first visit
_EXTRA_DAYS = 120            # events stay within start .. start + days + 120 days

GA4_CHANNELS = ("web", "app", "email", "social")

# --------------------------------------------------------------------------- text templates
#: Fragments the feedback texts are built from (see :func:`_compose_texts`), per language:
#:
#: - ``openers[cls]`` / ``closers[cls]``: what a text of class ``cls`` (``negative``,
#:   ``neutral``, ``positive``) may start and end with;
#: - ``topics[touchpoint][cls]``: what it says about its touchpoint;
#: - ``hedges``: softeners put before the topic ("direi che", "to be fair");
#: - ``polite``: kind openers of a complaint ("Di solito mi trovo bene, ma");
#: - ``but``: joins a praise and a gripe ("ma", "although");
#: - ``short``[cls]: whole short answers ("ok", "bene", "never again"), the same word in more
#:   than one class where people use it so ("ok").
TEXT_TEMPLATES = {
    "it": {
        "openers": {
            "negative": ["Pessima esperienza:", "Davvero deludente,", "Sono molto insoddisfatto:",
                         "Che delusione!", "Esperienza da dimenticare:", "Non ci siamo:",
                         "Molto male,", "Sono arrabbiata:", "Inaccettabile:", "Peggio di così...",
                         "Mai vista una cosa simile:"],
            "neutral": ["Nel complesso nella media:", "Esperienza discreta,", "Così così:",
                        "Niente di speciale:", "Insomma,", "Diciamo sufficiente:", "Normale,",
                        "Né carne né pesce:", "Tutto sommato ok,"],
            "positive": ["Esperienza ottima!", "Tutto perfetto:", "Sono davvero soddisfatta:",
                         "Complimenti,", "Che bella sorpresa!", "Benissimo,", "Bravi!",
                         "Molto contento:", "Ottimo servizio:", "Sempre una garanzia:"],
        },
        "closers": {
            "negative": ["non comprerò più da voi.", "non lo consiglio a nessuno.",
                         "perché devo perdere così tanto tempo?", "spero che migliorerete presto.",
                         "ho perso la pazienza.", "mai più.", "sono davvero deluso.",
                         "pessimo servizio."],
            "neutral": ["si può fare di meglio.", "nel complesso accettabile.",
                        "vedremo la prossima volta.", "né bene né male.", "niente di più.",
                        "potrebbe andare meglio.", "per ora va bene così."],
            "positive": ["lo consiglio a tutti!", "tornerò sicuramente.", "grazie mille!",
                         "continuate così.", "cinque stelle meritate.", "bravissimi!",
                         "ricomprerò di sicuro."],
        },
        "hedges": ["direi che", "sinceramente", "a dire il vero", "onestamente", "mah,", "boh,",
                   "in effetti", "devo dire che"],
        "polite": ["Di solito mi trovo bene, ma", "Prodotti belli, però", "Grazie per la domanda, però",
                   "Vi ho sempre consigliato, ma questa volta", "Il personale è gentile, ma",
                   "Non voglio lamentarmi, però"],
        "but": ["ma", "però", "anche se", "peccato che", "l'unica pecca:"],
        "short": {
            "negative": ["pessimo", "male", "no", "deluso", "mai più", "non bene", "vergognoso",
                         "pessimooo", "una delusione", "non ci siamo"],
            "neutral": ["ok", "così così", "normale", "nella media", "sufficiente", "mah", "ok ma",
                        "va bene", "niente di che"],
            "positive": ["ok", "bene", "tutto bene", "ottimo", "perfetto", "top", "bene grazie",
                         "tutto ok", "bellissimo", "va bene"],
        },
        "topics": {
            "delivery": {
                "negative": ["consegna in ritardo di una settimana", "il pacco è arrivato danneggiato",
                             "il corriere non si è mai presentato",
                             "il pacco è stato lasciato al vicino senza avvisare",
                             "tracking fermo da giorni, nessuna notizia del pacco"],
                "neutral": ["la consegna è arrivata con un giorno di ritardo",
                            "il corriere è stato puntuale ma poco gentile",
                            "la consegna è arrivata nei tempi, niente di più",
                            "il tracking del pacco si aggiorna poco"],
                "positive": ["consegna velocissima, in due giorni",
                             "il pacco è arrivato in perfette condizioni",
                             "corriere puntualissimo e gentile", "pacco arrivato prima del previsto"]},
            "product_use": {
                "negative": ["il prodotto si è rotto dopo pochi giorni",
                             "la qualità è molto più bassa di quanto promesso",
                             "il prodotto non funziona come descritto",
                             "dopo una settimana il prodotto ha smesso di funzionare"],
                "neutral": ["il prodotto fa il suo lavoro", "qualità nella media per il prezzo",
                            "il prodotto va bene ma niente di eccezionale",
                            "le istruzioni del prodotto sono poco chiare"],
                "positive": ["il prodotto funziona benissimo",
                             "qualità eccellente, è più bello dal vivo",
                             "il prodotto è esattamente come descritto",
                             "lo uso ogni giorno ed è resistente"]},
            "support_contact": {
                "negative": ["ho dovuto ripetere il problema tre volte all'assistenza",
                             "il servizio clienti non risponde mai",
                             "in chat l'operatore mi ha chiuso la conversazione",
                             "al telefono quaranta minuti di attesa per l'assistenza"],
                "neutral": ["l'assistenza ha risposto dopo qualche giorno",
                            "il servizio clienti è stato gentile ma lento",
                            "l'operatore ha risposto ma ho dovuto richiamare",
                            "la chat dell'assistenza risponde dopo un po'"],
                "positive": ["l'assistenza ha risolto tutto in pochi minuti",
                             "operatore gentilissimo e competente",
                             "in chat l'assistenza mi ha aiutato subito",
                             "il servizio clienti mi ha richiamato in giornata"]},
            "return_request": {
                "negative": ["il reso è una procedura complicatissima",
                             "aspetto ancora il rimborso del reso",
                             "il rimborso del reso non è mai arrivato",
                             "per il reso mi chiedono di pagare la spedizione"],
                "neutral": ["il reso è stato gestito in tempi normali",
                            "la procedura di reso è un po' lunga",
                            "il reso è gratuito ma il rimborso è lento",
                            "l'etichetta del reso è arrivata dopo qualche giorno"],
                "positive": ["reso semplice e rimborso immediato", "il reso è stato gestito benissimo",
                             "etichetta del reso già nel pacco, comodissimo",
                             "rimborso del reso arrivato in due giorni"]},
            "registration_form": {
                "negative": ["la registrazione obbligatoria è lunghissima",
                             "il modulo di registrazione chiede troppi dati personali",
                             "perché devo registrarmi per comprare?",
                             "il modulo di registrazione si blocca e perdo tutti i dati",
                             "registrazione obbligatoria solo per un acquisto, assurdo"],
                "neutral": ["la registrazione richiede qualche passaggio di troppo",
                            "il modulo di registrazione è un po' lungo",
                            "la registrazione funziona ma chiede troppi campi",
                            "il modulo di registrazione andrebbe semplificato"],
                "positive": ["la registrazione è stata rapida",
                             "il modulo di registrazione è semplice e chiaro",
                             "registrazione veloce con il mio account",
                             "il modulo di registrazione si compila in un attimo"]},
            "checkout": {
                "negative": ["il pagamento è stato rifiutato più volte",
                             "i costi di spedizione compaiono solo alla fine",
                             "il codice sconto non viene accettato al pagamento",
                             "il checkout va in errore alla fine"],
                "neutral": ["il pagamento è andato a buon fine al secondo tentativo",
                            "il carrello funziona, ma le spese di spedizione sono alte",
                            "poche opzioni di pagamento al checkout", "il checkout è lungo ma funziona"],
                "positive": ["pagamento veloce e sicuro", "il checkout è semplicissimo",
                             "pagamento con paypal in un clic",
                             "checkout rapido, spese di spedizione chiare"]},
            "home_page": {
                "negative": ["il sito è lentissimo e pieno di pop-up", "la home page è confusa",
                             "la home page non si carica dal telefono",
                             "il pop-up sulla home copre tutto il sito"],
                "neutral": ["il sito è un po' disordinato", "la home page è nella media",
                            "la home page ha troppe offerte", "il sito si carica un po' lentamente"],
                "positive": ["il sito è chiaro e veloce", "la home page è ben fatta",
                             "la home page mostra subito le offerte giuste",
                             "il sito è facile da usare anche dal telefono"]},
            "product_page": {
                "negative": ["le schede prodotto non dicono nulla sulle taglie",
                             "le foto non corrispondono al prodotto",
                             "la scheda prodotto ha il prezzo sbagliato",
                             "nessuna tabella delle taglie sulla scheda prodotto"],
                "neutral": ["le informazioni sul prodotto sono essenziali",
                            "mancano alcune recensioni sul prodotto", "le foto del prodotto sono poche",
                            "la descrizione del prodotto è un po' vaga"],
                "positive": ["le schede prodotto sono dettagliatissime",
                             "foto e descrizioni molto utili", "la tabella delle taglie è precisa",
                             "le recensioni sulla scheda prodotto aiutano molto"]},
            "add_to_cart": {
                "negative": ["il carrello si svuota da solo",
                             "non riesco ad aggiungere prodotti al carrello",
                             "il carrello perde i prodotti quando cambio pagina",
                             "il pulsante aggiungi al carrello non funziona"],
                "neutral": ["il carrello è un po' scomodo", "il carrello funziona ma è lento",
                            "il carrello non mostra subito il totale", "il carrello si aggiorna lentamente"],
                "positive": ["aggiungere al carrello è facilissimo", "il carrello è comodo",
                             "il carrello salva i prodotti anche dal telefono",
                             "il riepilogo del carrello è chiarissimo"]},
        },
    },
    "en": {
        "openers": {
            "negative": ["Terrible experience:", "Really disappointing,", "Very unhappy:",
                         "What a letdown!", "Never again:", "Not good enough:", "Awful,",
                         "I am furious:", "Unacceptable:", "Worst service ever:", "Seriously?"],
            "neutral": ["Overall average:", "Decent experience,", "So-so:", "Nothing special:",
                        "Mixed feelings,", "It was okay:", "Fair enough,", "Middle of the road:",
                        "All in all ok,"],
            "positive": ["Great experience!", "All perfect:", "Really pleased:", "Well done,",
                         "Lovely surprise!", "Brilliant,", "Top marks!", "Very happy:",
                         "Excellent service:", "Never disappoints:"],
        },
        "closers": {
            "negative": ["I will not buy from you again.", "would not recommend.",
                         "why do I have to waste so much time?", "please fix this.",
                         "I have lost my patience.", "never again.", "really disappointed.",
                         "poor service."],
            "neutral": ["could be better.", "acceptable overall.", "we will see next time.",
                        "neither good nor bad.", "nothing more.", "room for improvement.",
                        "fine for now."],
            "positive": ["highly recommended!", "will definitely come back.", "thank you so much!",
                         "keep it up.", "five stars well deserved.", "amazing!",
                         "will buy again for sure."],
        },
        "hedges": ["honestly", "I guess", "to be fair", "tbh", "I'd say", "well,", "actually",
                   "I must say"],
        "polite": ["I usually like you, but", "Nice products, but", "Thanks for asking, however",
                   "I have always recommended you, but this time", "Staff are friendly, but",
                   "I hate to complain, but"],
        "but": ["but", "although", "though", "shame that", "only gripe:"],
        "short": {
            "negative": ["bad", "awful", "no", "never again", "poor", "not good", "disgraceful",
                         "terribleee", "a letdown", "nope"],
            "neutral": ["ok", "so so", "average", "meh", "fine", "okay I guess", "ok but",
                        "alright", "nothing special"],
            "positive": ["ok", "good", "great", "fine thanks", "perfect", "all good", "excellent",
                         "top", "lovely", "alright"],
        },
        "topics": {
            "delivery": {
                "negative": ["delivery was a week late", "the parcel arrived damaged",
                             "the courier never showed up",
                             "the parcel was left with a neighbour without notice",
                             "tracking stuck for days, no news of the parcel"],
                "neutral": ["delivery came one day late", "the courier was on time but rude",
                            "delivery arrived on time, nothing more", "parcel tracking barely updates"],
                "positive": ["super fast delivery, two days", "the parcel arrived in perfect shape",
                             "very punctual and friendly courier", "the parcel came earlier than expected"]},
            "product_use": {
                "negative": ["the product broke after a few days",
                             "quality is far below what was promised",
                             "the product does not work as described",
                             "the product stopped working after a week"],
                "neutral": ["the product does its job", "average quality for the price",
                            "the product is fine but nothing exceptional",
                            "the product instructions are unclear"],
                "positive": ["the product works brilliantly", "excellent quality, even nicer in person",
                             "the product is exactly as described", "I use it every day and it is sturdy"]},
            "support_contact": {
                "negative": ["I had to explain my problem to support three times",
                             "customer service never answers",
                             "the chat agent closed the conversation on me",
                             "forty minutes on hold waiting for support"],
                "neutral": ["support answered after a few days", "customer service was kind but slow",
                            "the agent answered but I had to call back",
                            "the support chat replies after a while"],
                "positive": ["support solved everything in minutes", "very kind and competent agent",
                             "the support chat helped me straight away",
                             "customer service called me back the same day"]},
            "return_request": {
                "negative": ["the return process is a nightmare", "still waiting for my refund",
                             "the refund for my return never arrived",
                             "they want me to pay shipping for the return"],
                "neutral": ["the return was handled in normal time", "the return process is a bit long",
                            "the return is free but the refund is slow",
                            "the return label came after a few days"],
                "positive": ["easy return and instant refund", "the return was handled perfectly",
                             "return label already in the box, so handy",
                             "the refund for my return arrived in two days"]},
            "registration_form": {
                "negative": ["the mandatory registration takes forever",
                             "the sign-up form asks for far too much personal data",
                             "why must I register just to buy?",
                             "the registration form freezes and I lose everything I typed",
                             "mandatory registration just to buy once, absurd"],
                "neutral": ["registration has a few steps too many", "the sign-up form is a bit long",
                            "registration works but asks for too many fields",
                            "the sign-up form could be simpler"],
                "positive": ["registration was quick", "the sign-up form is simple and clear",
                             "quick registration with my existing account",
                             "the sign-up form takes a minute"]},
            "checkout": {
                "negative": ["my payment was declined several times",
                             "shipping costs only show up at the very end",
                             "the discount code is rejected at payment",
                             "checkout throws an error at the last step"],
                "neutral": ["payment went through on the second try",
                            "checkout works but shipping is expensive",
                            "few payment options at checkout", "checkout is long but it works"],
                "positive": ["fast and secure payment", "checkout is really simple",
                             "one-click payment with paypal", "quick checkout, clear shipping costs"]},
            "home_page": {
                "negative": ["the site is slow and full of pop-ups", "the home page is confusing",
                             "the home page will not load on my mobile",
                             "the home page pop-up covers the whole site"],
                "neutral": ["the site is a bit cluttered", "the home page is average",
                            "the home page has too many offers", "the site loads a bit slowly"],
                "positive": ["the site is clear and fast", "the home page is well made",
                             "the home page shows the right offers at once",
                             "the site is easy to use on mobile too"]},
            "product_page": {
                "negative": ["product pages say nothing about sizes",
                             "the photos do not match the product",
                             "the product page shows the wrong price",
                             "no size chart on the product page"],
                "neutral": ["product information is basic", "some product reviews are missing",
                            "there are few product photos", "the product description is a bit vague"],
                "positive": ["product pages are very detailed", "photos and descriptions are helpful",
                             "the size chart is accurate", "the reviews on the product page really help"]},
            "add_to_cart": {
                "negative": ["the cart empties itself", "I cannot add products to the cart",
                             "the cart loses my items when I change page",
                             "the add to cart button does not work"],
                "neutral": ["the cart is a bit awkward", "the cart works but is slow",
                            "the cart does not show the total at once", "the cart updates slowly"],
                "positive": ["adding to the cart is very easy", "the cart is handy",
                             "the cart keeps my items across devices", "the cart summary is very clear"]},
        },
    },
}
_CLASSES = ("negative", "neutral", "positive")

_FIRST = {"it": ["mario", "giulia", "luca", "francesca", "marco", "chiara", "alessandro", "sara"],
          "en": ["john", "emma", "oliver", "sophie", "james", "olivia", "harry", "grace"]}
_LAST = {"it": ["rossi", "bianchi", "russo", "ferrari", "esposito", "romano", "colombo", "ricci"],
         "en": ["smith", "jones", "taylor", "brown", "wilson", "evans", "walker", "wright"]}


# --------------------------------------------------------------------------- public types
@dataclass(frozen=True, eq=False)
class SimulationTruth:
    """The ground truth planted by :func:`simulate_journeys`.

    Attributes
    ----------
    dropoff_effects : DataFrame
        One row per planted drop-off effect: ``term`` (``popup_shown``, ``channel_app``,
        ``registration_form``), ``odds_ratio`` (2.0, 0.5, 2.5), ``steps`` (comma-separated
        funnel steps where the effect acts) and ``description``.
    step_alpha : dict
        Funnel step -> baseline logit ``alpha_step`` of leaving at that step.
    pain_points : DataFrame
        ``touchpoint``, ``moment``, ``dropoff_odds_ratio``, ``sentiment_shift`` (shift of the
        latent sentiment, customer baseline ~ N(0, 1)), ``description``.
    sentiment_effects : dict
        Touchpoint -> latent sentiment shift of feedback referring to it; exit surveys get
        a further ``leave_shift`` (in ``params``).
    customers : DataFrame
        One row per customer and journey: ``customer_id``, ``journey`` (1, 2, 3),
        ``segment``, ``channel`` (the FMOT channel, the one of the hazard model),
        ``device``, ``language``, ``popup_seen``, ``registration_seen``, ``last_step`` (the
        last funnel step reached, ``purchase`` for converters) and ``converted``.
    params : dict
        The :func:`simulate_journeys` arguments (JSON-serialisable) and a few constants.
    """

    dropoff_effects: pd.DataFrame
    step_alpha: dict
    pain_points: pd.DataFrame
    sentiment_effects: dict
    customers: pd.DataFrame
    params: dict

    def to_dict(self) -> dict:
        """A JSON-serialisable dict of everything but the ``customers`` table.

        A small ``summary`` (customers, journeys, conversion rate) is included.
        """
        c = self.customers
        return {
            "dropoff_effects": self.dropoff_effects.to_dict(orient="records"),
            "step_alpha": {k: float(v) for k, v in self.step_alpha.items()},
            "pain_points": self.pain_points.to_dict(orient="records"),
            "sentiment_effects": {k: float(v) for k, v in self.sentiment_effects.items()},
            "params": self.params,
            "summary": {"n_customers": int(c["customer_id"].nunique()),
                        "n_journeys": int(len(c)),
                        "conversion_rate": float(c["converted"].mean()) if len(c) else None},
        }


class SimulatedJourneys(NamedTuple):
    """``events, feedback, truth = simulate_journeys(...)``."""

    events: pd.DataFrame
    feedback: pd.DataFrame
    truth: SimulationTruth


# --------------------------------------------------------------------------- helpers
def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _u(rng, lo, hi, n):
    """Integer seconds uniform in [lo, hi)."""
    return rng.uniform(lo, hi, n).astype(np.int64)


def _id_strings(prefix: str, n: int, width: int) -> pa.Array:
    nums = pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n + 1)), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, nums, "")


def _str_series(arr) -> pd.Series:
    """A pandas ``str`` Series from a pyarrow array (no Python objects on the way)."""
    return pd.Series(pd.array(arr, dtype="str"))


def _from_codes(codes, names) -> pd.Series:
    """``names[codes]`` as a ``str`` Series, built in pyarrow."""
    return _str_series(pc.take(pa.array(list(names), pa.string()), pa.array(np.asarray(codes))))


class _Acc:
    """Accumulates event chunks as integer arrays."""

    def __init__(self):
        self.parts = []

    def add(self, cust, ts, tp, ch, seg, value=None):
        n = len(cust)
        if n == 0:
            return
        self.parts.append((cust, ts, np.broadcast_to(np.int16(tp), (n,)) if np.isscalar(tp) else tp,
                           np.broadcast_to(np.int8(ch), (n,)) if np.isscalar(ch) else ch, seg,
                           np.full(n, np.nan) if value is None else value,
                           np.full(n, len(self.parts), dtype=np.int32)))

    def arrays(self):
        return [np.concatenate([np.asarray(p[i]) for p in self.parts]) for i in range(7)]


def _simulate_round(rng, acc, fbs, cust, t0, lower, chan, seg, *, tpc, popup_share,
                    defer_max, bound):
    """One journey for each customer in ``cust`` (global indices); returns records and
    who comes back (global indices, next first-visit time, lower bound for their ZMOT)."""
    m = len(cust)
    ar = np.arange(m)
    t_end = t0.copy()

    def add(sel, ts, tp, ch, value=None):
        acc.add(cust[sel], ts, tpc[tp], ch, seg[sel], value)
        if len(sel):
            t_end[sel] = np.maximum(t_end[sel], ts)

    # ZMOT research: 0-4 events in the (up to) 14 days before the first visit
    nz = rng.choice(5, m, p=[0.04, 0.10, 0.20, 0.30, 0.36])
    rep = np.repeat(ar, nz)
    win = np.clip(np.minimum(14 * _DAY, t0 - lower - _HOUR), 0, None)
    zts = t0[rep] - 600 - (rng.random(len(rep)) * win[rep]).astype(np.int64)
    ztps = np.array([tpc[t] for t in ("search", "ad_click", "review_read", "social_post_view",
                                      "newsletter_open")], dtype=np.int16)
    zchs = np.array([WEB, WEB, WEB, SOCIAL, EMAIL], dtype=np.int8)
    k = rng.choice(5, len(rep), p=[0.30, 0.20, 0.25, 0.15, 0.10])
    acc.add(cust[rep], zts, ztps[k], zchs[k], seg[rep])

    # FMOT funnel
    t = t0.copy()
    sch = chan.astype(np.int8).copy()          # the channel of the current session
    st = np.flatnonzero(chan == STORE)
    add(st, t[st], "store_visit", STORE)
    t[st] += _u(rng, 60, 600, len(st))
    add(ar, t.copy(), "home_page", sch.copy())
    popup = (chan == WEB) & (rng.random(m) < popup_share)
    p = np.flatnonzero(popup)
    add(p, t[p] + _u(rng, 3, 20, len(p)), "popup_shown", WEB)
    t += _u(rng, 30, 240, m)
    xb = np.log(POPUP_OR) * popup + np.log(APP_OR) * (chan == APP)
    alive = np.ones(m, bool)
    last = np.zeros(m, np.int8)
    t_leave = np.zeros(m, np.int64)

    def hazard(step, extra=0.0):
        leave = alive & (rng.random(m) < _expit(STEP_ALPHA[step] + xb + extra))
        t_leave[leave] = t[leave]
        alive[leave] = False

    hazard("home_page")
    nv = rng.choice(3, m, p=[0.20, 0.35, 0.45]) + 1   # product page viewed 1-3 times
    for v in range(3):
        s = np.flatnonzero(alive & (nv > v))
        add(s, t[s], "product_page", sch[s])
        t[s] += _u(rng, 20, 300, len(s))
    last[alive] = 1
    hazard("product_page")
    s = np.flatnonzero(alive)
    add(s, t[s], "add_to_cart", sch[s])
    t[s] += _u(rng, 10, 120, len(s))
    last[alive] = 2
    s = np.flatnonzero(alive & (rng.random(m) < 0.35))   # back to the product page
    add(s, t[s], "product_page", sch[s])
    t[s] += _u(rng, 20, 300, len(s))
    add(s, t[s], "add_to_cart", sch[s])
    t[s] += _u(rng, 10, 120, len(s))
    hazard("add_to_cart")
    # a later session 1-3 days later, sometimes on another channel
    defer = alive & (rng.random(m) < 0.25)
    t[defer] += _u(rng, _DAY, defer_max, int(defer.sum()))
    r = rng.random(m)
    sch[defer & (chan == WEB) & (r < 0.35)] = APP
    sch[defer & (chan == WEB) & (r >= 0.35) & (r < 0.50)] = CALL
    sch[defer & (chan == APP) & (r < 0.20)] = WEB
    sch[defer & (chan == STORE) & (r < 0.30)] = CALL
    s = np.flatnonzero(alive & (sch == CALL))
    add(s, t[s], "sales_call", CALL)
    t[s] += _u(rng, 120, 900, len(s))
    reg = alive & (seg == NEW) & ((chan == WEB) | (chan == APP))
    s = np.flatnonzero(reg)
    add(s, t[s], "registration_form", sch[s])
    t[s] += _u(rng, 60, 400, len(s))
    s = np.flatnonzero(alive)
    add(s, t[s], "checkout", sch[s])
    last[alive] = 3
    hazard("checkout", np.log(REGISTRATION_OR) * reg)
    t += _u(rng, 30, 300, m)
    conv = alive.copy()
    s = np.flatnonzero(conv)
    ns = len(s)
    value = np.round(rng.lognormal(np.log(60.0), 0.6, ns), 2) + 1.0
    add(s, t[s], "purchase", sch[s], value)
    last[conv] = 4

    # SMOT for purchasers
    tp = t[s]
    ch_s = chan[s]
    add(s, tp + _u(rng, 30, 300, ns), "order_confirmation", EMAIL)
    deliv = tp + _u(rng, _DAY, 5 * _DAY, ns)
    add(s, deliv, "delivery", np.where(ch_s == STORE, STORE, EMAIL).astype(np.int8))
    use_ch = np.where(ch_s == APP, APP, WEB).astype(np.int8)
    nu = rng.choice(5, ns, p=[0.2, 0.25, 0.25, 0.15, 0.15]) + 1
    for v in range(5):
        j = np.flatnonzero(nu > v)
        add(s[j], deliv[j] + _u(rng, _DAY // 5, 20 * _DAY, len(j)), "product_use", use_ch[j])
    after = deliv.copy()
    sup = np.flatnonzero(rng.random(ns) < 0.20)
    sup_chs = np.array([CALL, EMAIL, APP], dtype=np.int8)
    i1 = rng.choice(3, len(sup), p=[0.45, 0.35, 0.20])
    c1 = deliv[sup] + _u(rng, _DAY // 10, 10 * _DAY, len(sup))
    add(s[sup], c1, "support_contact", sup_chs[i1])
    r1 = c1 + _u(rng, _HOUR, 48 * _HOUR, len(sup))
    add(s[sup], r1, "support_reply", sup_chs[i1])
    after[sup] = r1
    two = np.flatnonzero(rng.random(len(sup)) < 0.35)  # repeats the request elsewhere
    i2 = (i1[two] + rng.integers(1, 3, len(two))) % 3
    c2 = c1[two] + _u(rng, 2 * _HOUR, 30 * _HOUR, len(two))
    add(s[sup[two]], c2, "support_contact", sup_chs[i2])
    r2 = c2 + _u(rng, _HOUR, 24 * _HOUR, len(two))
    add(s[sup[two]], r2, "support_reply", sup_chs[i2])
    after[sup[two]] = np.maximum(after[sup[two]], r2)
    ret = rng.random(ns) < 0.08
    j = np.flatnonzero(ret)
    rt = deliv[j] + _u(rng, _DAY, 14 * _DAY, len(j))
    add(s[j], rt, "return_request",
        np.where(ch_s[j] == APP, APP, np.where(ch_s[j] == STORE, STORE, WEB)).astype(np.int8))
    after[j] = np.maximum(after[j], rt)
    j = np.flatnonzero(rng.random(ns) < 0.10)
    add(s[j], deliv[j] + _u(rng, 10 * _DAY, 30 * _DAY, len(j)), "upgrade_offer", EMAIL)
    # UMOT
    rev = rng.random(ns) < 0.30
    j = np.flatnonzero(rev)
    rev_ts = after[j] + _u(rng, _DAY, 10 * _DAY, len(j))
    add(s[j], rev_ts, "review_written", use_ch[j])
    rev_tp = np.where(ret[j], tpc["return_request"],
                      np.where(rng.random(len(j)) < 0.5, tpc["delivery"], tpc["product_use"]))
    fbs.append(dict(cust=cust[s[j]], ts=rev_ts, tp=rev_tp, ch=use_ch[j], scale=1, leave=False))
    shr = rng.random(ns) < 0.10
    j = np.flatnonzero(shr)
    add(s[j], deliv[j] + _u(rng, _DAY, 10 * _DAY, len(j)), "social_share", SOCIAL)
    j = np.flatnonzero(rng.random(ns) < 0.35)
    sv_ts = after[j] + _u(rng, _DAY, 5 * _DAY, len(j))
    add(s[j], sv_ts, "survey_response", EMAIL)
    supm = np.zeros(ns, bool)
    supm[sup] = True
    r = rng.random(len(j))
    sv_tp = np.select(
        [supm[j], reg[s[j]], ret[j], r < 0.6, r < 0.8],
        [tpc["support_contact"], tpc["registration_form"], tpc["return_request"],
         tpc["delivery"], tpc["checkout"]], tpc["product_use"])
    fbs.append(dict(cust=cust[s[j]], ts=sv_ts, tp=sv_tp, ch=np.full(len(j), EMAIL, np.int8),
                    scale=0, leave=False))

    # exit survey for ~5% of those who left the funnel
    ex = np.flatnonzero(~conv & (rng.random(m) < 0.05))
    hz = np.array([tpc[x] for x in HAZARD_STEPS])
    ex_tp = np.where(reg[ex] & (last[ex] == 3), tpc["registration_form"], hz[last[ex]])
    fbs.append(dict(cust=cust[ex], ts=t_leave[ex] + _u(rng, 30, 600, len(ex)), tp=ex_tp,
                    ch=sch[ex], scale=0, leave=True))

    records = dict(cust=cust, seg=seg, chan=chan, popup=popup, reg=reg, last=last, conv=conv)
    # the circle: reviewers and sharers may come back 20-90 days later
    back = np.zeros(m, bool)
    back[s] = rev | shr
    t_next = t_end + _u(rng, 20 * _DAY, 90 * _DAY, m)
    back &= (rng.random(m) < 0.30) & (t_next + _MAX_SPAN <= bound)
    b = np.flatnonzero(back)
    return records, cust[b], t_next[b], t_end[b]


def _score_class(score, scale):
    nps = scale == 0
    return np.where(nps, np.where(score <= 6, 0, np.where(score <= 8, 1, 2)),
                    np.where(score <= 2, 0, np.where(score <= 3, 1, 2))).astype(np.int8)


def _scores(latent, scale) -> np.ndarray:
    """NPS (``scale`` 0) or star rating of each latent sentiment."""
    nps = np.clip(np.rint(_NPS_CENTRE + _NPS_SLOPE * latent), 0, 10)
    stars = np.clip(np.rint(_STARS_CENTRE + _STARS_SLOPE * latent), 1, 5)
    return np.where(scale == 0, nps, stars).astype(np.float64)


_FULL, _MIXED, _SHORT = range(3)
#: how often a text is a plain one, a mixed one (a kind opener before a complaint, a
#: gripe after a praise, pros and cons) or a short answer
_FORM_P = (0.68, 0.24, 0.08)
_NO_ACCENT = (str.maketrans({"è": "e'", "é": "e'", "à": "a'", "ì": "i'", "ò": "o'", "ù": "u'", "È": "E'"}),
              str.maketrans({"è": "e", "é": "e", "à": "a", "ì": "i", "ò": "o", "ù": "u", "È": "E"}))


def _pick(rng, options, m, p=1.0) -> np.ndarray:
    """``m`` draws from ``options``; each left empty with probability ``1 - p``."""
    a = np.array(list(options) + [""], dtype=object)[:-1]     # 1-d even for equal-length strings
    out = a[rng.integers(0, len(a), m)]
    if p < 1.0:
        out[rng.random(m) >= p] = ""
    return out


def _joined(*parts, sep=" ") -> list[str]:
    return [sep.join(x for x in row if x) for row in zip(*parts)]


def _compose_group(rng, tpl, cn, tp, form, m) -> list[str]:
    """``m`` texts of class ``cn`` (the class their words express) about ``tp`` in ``form``."""
    if form == _SHORT:
        return list(_pick(rng, tpl["short"][cn], m))
    topics = tpl["topics"][tp]
    hedge = _pick(rng, tpl["hedges"], m, 0.15)
    if form == _FULL:
        head = _joined(_pick(rng, tpl["openers"][cn], m, 0.7), hedge, _pick(rng, topics[cn], m))
        tail = _pick(rng, tpl["closers"][cn], m, 0.65)
    elif cn == "negative":          # a kind word first, then the complaint
        head = _joined(_pick(rng, tpl["polite"], m), hedge, _pick(rng, topics["negative"], m))
        tail = _pick(rng, tpl["closers"][cn], m, 0.5)
    else:                           # a praise, then a gripe (positive) or a complaint (neutral)
        gripe = topics["neutral" if cn == "positive" else "negative"]
        head = _joined(_pick(rng, tpl["openers"][cn], m, 0.5), _pick(rng, topics["positive"], m))
        head = _joined(head, _joined(_pick(rng, tpl["but"], m), hedge, _pick(rng, gripe, m)), sep=", ")
        tail = _pick(rng, tpl["closers"][cn], m, 0.4)
    stop = np.where(rng.random(m) < 0.5, ".", "")
    return [f"{h}, {t}" if t else h + s for h, t, s in zip(head, tail, stop)]


def _compose_texts(rng, lang, cls, tp_names) -> np.ndarray:
    """Texts from TEXT_TEMPLATES for each row's language (codes of LANGUAGES), the class its
    words express (codes of _CLASSES) and its touchpoint: plain (opener, topic, closer, each
    but the topic optional), mixed or short (see ``_FORM_P``), then written the way people
    type (:func:`_as_typed`)."""
    k = len(cls)
    out = np.empty(k, dtype=object)
    form = rng.choice(3, k, p=_FORM_P).astype(np.int8)
    keys = pd.MultiIndex.from_arrays([lang, cls, tp_names, form])
    codes, uniq = pd.factorize(keys, sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
    for j, (lg, c, tp, fm) in enumerate(uniq):
        idx = order[bounds[j]:bounds[j + 1]]
        texts = _compose_group(rng, TEXT_TEMPLATES[LANGUAGES[lg]], _CLASSES[c], tp, fm, len(idx))
        out[idx] = [t[:1].upper() + t[1:] for t in texts] if fm != _SHORT else texts
    return _as_typed(rng, lang, out)


def _typo(text: str, u: float, v: float) -> str:
    """``text`` with two inner letters of one of its longer words swapped."""
    words = text.split(" ")
    long = [j for j, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long:
        return text
    j = long[int(u * len(long))]
    w = words[j]
    i = 1 + int(v * (len(w) - 3))
    words[j] = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    return " ".join(words)


def _as_typed(rng, lang, texts) -> np.ndarray:
    """Texts the way people type them: accents left out or typed as apostrophes (Italian,
    a quarter of the texts), all lower case (15%), a typo (6%), no final punctuation (10%) or
    an insistent one (5%)."""
    n = len(texts)
    out = list(texts)
    r = rng.random((5, n))
    for i in np.flatnonzero((lang == 0) & (r[0] < 0.25)).tolist():
        out[i] = out[i].translate(_NO_ACCENT[int(r[0, i] < 0.1)])
    for i in np.flatnonzero(r[1] < 0.15).tolist():
        out[i] = out[i].lower()
    for i in np.flatnonzero(r[2] < 0.06).tolist():
        out[i] = _typo(out[i], r[2, i] / 0.06, r[4, i])
    for i in np.flatnonzero(r[3] < 0.15).tolist():
        t = out[i].rstrip(".!?")
        out[i] = t if r[3, i] < 0.10 else t + ("!!!" if r[4, i] < 0.5 else "...")
    return np.array(out + [""], dtype=object)[:-1]


def _digits(rng, n, width) -> pd.Series:
    return pd.Series(rng.integers(0, 10 ** width, n)).astype(str).str.zfill(width)


def _with_iban_check(bban: str, country: str = "IT") -> str:
    """An IBAN in groups of four with correct check digits for ``bban``."""
    rearranged = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in rearranged)) % 97
    s = f"{country}{check:02d}{bban}"
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def _with_luhn_check(digits: str) -> str:
    """``digits`` plus its Luhn check digit, in groups of four."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    s = digits + str((10 - total % 10) % 10)
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def _pii_suffix(rng, lang) -> np.ndarray:
    """' contattatemi a <email> ...' style suffixes for the rows given by ``lang`` codes."""
    n = len(lang)
    it = lang == 0
    fi = rng.integers(0, 8, n)
    la = rng.integers(0, 8, n)
    first = np.where(it, np.array(_FIRST["it"], dtype=object)[fi], np.array(_FIRST["en"], dtype=object)[fi])
    last = np.where(it, np.array(_LAST["it"], dtype=object)[la], np.array(_LAST["en"], dtype=object)[la])
    dom = np.where(it, "example.it", "example.com")
    email = pd.Series(first) + "." + pd.Series(last) + "@" + pd.Series(dom)
    d3, d3b, d4 = _digits(rng, n, 3), _digits(rng, n, 3), _digits(rng, n, 4)
    phone_it = "+39 3" + _digits(rng, n, 2) + " " + d3 + " " + d4
    phone_en = "(555) " + d3b + "-" + d4
    phone = phone_it.where(pd.Series(it), phone_en)
    base_it = " Contattatemi a " + email + " oppure al " + phone + "."
    base_en = " Please contact me at " + email + " or " + phone + "."
    text = base_it.where(pd.Series(it), base_en)
    r = rng.random(n)
    # valid check digits (ISO 13616 mod 97, Luhn), as a real IBAN or card number has
    bban = ("X" + _digits(rng, n, 3) + _digits(rng, n, 4) + _digits(rng, n, 4) + _digits(rng, n, 4)
            + _digits(rng, n, 4) + _digits(rng, n, 3))
    iban = pd.Series([_with_iban_check(b) for b in bban], dtype=object)
    card15 = "4" + _digits(rng, n, 3) + _digits(rng, n, 4) + _digits(rng, n, 4) + _digits(rng, n, 3)
    card = pd.Series([_with_luhn_check(c) for c in card15], dtype=object)
    iban_txt = pd.Series(np.where(it, " IBAN per il rimborso: ", " Refund to IBAN ")) + iban + "."
    card_txt = pd.Series(np.where(it, " Ho pagato con la carta ", " I paid with card ")) + card + "."
    text = text.where(~pd.Series(r < 0.15), text + iban_txt)
    text = text.where(~pd.Series((r >= 0.15) & (r < 0.25)), text + card_txt)
    return text.to_numpy(dtype=object)


# --------------------------------------------------------------------------- simulate
def simulate_journeys(n_customers: int, *, seed: int, start="2026-01-01", days: int = 180,
                      journey: JourneyMap | None = None, popup_share: float = 0.35,
                      italian_share: float = 0.6, pii_share: float = 0.04) -> SimulatedJourneys:
    """Simulate omnichannel journeys and feedback with planted ground truth.

    Parameters
    ----------
    n_customers : int
        Number of customers (each has one first journey; some come back for more).
    seed : int
        Seed of ``np.random.default_rng``; the same seed gives identical tables.
    start : str or Timestamp
        First day of the simulation (naive values are UTC).
    days : int
        First visits fall within ``start .. start + days``; every event falls within
        ``start .. start + days + 120 days``.
    journey : JourneyMap, optional
        The map whose ``session_gap`` and ``conversion_window`` are used (default
        :meth:`JourneyMap.default`). It must hold the simulated touchpoints and the funnel
        ``home_page > product_page > add_to_cart > checkout > purchase``.
    popup_share : float
        Share of web customers shown the home-page pop-up.
    italian_share : float
        Share of customers writing in Italian (the rest write in English).
    pii_share : float
        Share of feedback texts that contain an e-mail address and a phone number
        (some also an IBAN or a card number).

    Returns
    -------
    SimulatedJourneys
        ``(events, feedback, truth)``.

        ``events``, one row per contact, sorted by ``customer_id``, ``ts``:

        - ``customer_id`` (str): ``"C0000001"``...
        - ``ts`` (datetime64[us, UTC]): when the contact happened (whole seconds).
        - ``touchpoint`` (str): a touchpoint of the journey map.
        - ``channel`` (str): ``web``, ``app``, ``store``, ``call_centre``, ``email``, ``social``.
        - ``session_id`` (str): ``"<customer_id>-S<k>"``, ``k`` counted per customer from 1;
          a new session starts when the gap since the customer's previous event exceeds
          the map's ``session_gap``.
        - ``value`` (float64): order value on ``purchase`` rows (> 0), NaN elsewhere.
        - ``device`` (str): ``desktop``, ``mobile`` or ``tablet``, the customer's device
          (app customers are mobile, and so is every app event).
        - ``segment`` (str): ``new``, ``returning`` or ``loyal`` at the time of the journey
          (new customers are ``returning`` in their later journeys).

        ``feedback``, one row per piece of customer voice, sorted by ``ts``:

        - ``feedback_id`` (str): ``"F0000001"``... unique.
        - ``customer_id`` (str): the author.
        - ``ts`` (datetime64[us, UTC]): when it was given.
        - ``touchpoint`` (str): the touchpoint it refers to (surveys: the most salient one
          of the journey; reviews: delivery, product_use or return_request; exit surveys:
          the step where the customer left, ``registration_form`` if they left at checkout
          after the form).
        - ``channel`` (str): where it was given (``email`` surveys, ``web``/``app`` reviews,
          exit surveys on the channel of the session).
        - ``score`` (float64): integer 0-10 for ``nps``, 1-5 for ``stars``.
        - ``scale`` (str): ``nps`` (surveys, exit surveys) or ``stars`` (reviews).
        - ``text`` (str): verbatim about the touchpoint, built from ``TEXT_TEMPLATES``: a
          plain text (opener, topic, closer), a mixed one (a kind opener before a complaint,
          a minor gripe after a praise, pros and cons) or a short answer (``ok``, ``bene``),
          typed as people do (accents left out, lower case, typos). Its words express a
          sentiment class drawn from the same latent sentiment as the score plus
          N(0, 0.35) of their own, so they agree with the score class (NPS 0-6 / stars 1-2
          negative, 7-8 / 3 neutral, 9-10 / 4-5 positive) for about 85% of the texts and
          disagree near the class boundaries (a 9 with a mild complaint).
        - ``language`` (str): ``it`` or ``en``.

        ``truth``: a :class:`SimulationTruth`.

    Notes
    -----
    Scores come from a latent sentiment = customer baseline (N(0, 1), loyal +0.3, new -0.1)
    + touchpoint effect (``SENTIMENT_EFFECTS``) + ``LEAVE_SHIFT`` for exit surveys +
    N(0, 0.8) noise; ``nps = clip(round(8 + 1.8 * latent), 0, 10)``,
    ``stars = clip(round(3.7 + latent), 1, 5)``.
    """
    journey = JourneyMap.coerce(journey)
    missing = [t for t in _REQUIRED if t not in journey.touchpoints]
    if missing:
        raise ValueError(f"the journey map lacks the simulated touchpoints {missing}")
    if tuple(journey.funnel) != FUNNEL:
        raise ValueError(f"the simulator needs the funnel {' > '.join(FUNNEL)}, "
                         f"the map has {' > '.join(journey.funnel)}")
    if n_customers < 1:
        raise ValueError("n_customers must be at least 1")
    if days < 2:
        raise ValueError("days must be at least 2")
    tp_names = journey.touchpoints
    tpc = {t: i for i, t in enumerate(tp_names)}
    gap_s = int(journey.session_gap.total_seconds())
    defer_max = int(min(3 * _DAY, journey.conversion_window.total_seconds() - 2 * _HOUR))

    start_ts = pd.Timestamp(start)
    start_ts = start_ts.tz_localize("UTC") if start_ts.tzinfo is None else start_ts.tz_convert("UTC")
    s0 = int(start_ts.timestamp())
    bound = s0 + (days + _EXTRA_DAYS) * _DAY

    rng = np.random.default_rng(seed)
    n = int(n_customers)
    seg = rng.choice(3, n, p=[0.45, 0.35, 0.20]).astype(np.int8)
    chan = rng.choice(np.array([WEB, APP, STORE], np.int8), n, p=[0.55, 0.30, 0.15])
    dev = np.where(chan == APP, MOBILE, rng.choice(3, n, p=[0.55, 0.35, 0.10])).astype(np.int8)
    lang = (rng.random(n) >= italian_share).astype(np.int8)       # 0 = it, 1 = en
    base = rng.normal(0.0, 1.0, n) + np.where(seg == LOYAL, 0.3, np.where(seg == NEW, -0.1, 0.0))
    day = rng.integers(1, days, n)
    hour = np.clip(rng.normal(15 * _HOUR, 4 * _HOUR, n), 7 * _HOUR, 23.5 * _HOUR).astype(np.int64)
    t0 = s0 + day * _DAY + hour

    acc, fbs, recs = _Acc(), [], []
    cust, lower = np.arange(n), np.full(n, s0, np.int64)
    seg_later = np.where(seg == NEW, RETURNING, seg).astype(np.int8)
    for jno in (1, 2, 3):
        s_r = seg[cust] if jno == 1 else seg_later[cust]
        rec, nxt, t_nxt, low = _simulate_round(
            rng, acc, fbs, cust, t0, lower, chan[cust], s_r, tpc=tpc, popup_share=popup_share,
            defer_max=defer_max, bound=bound)
        rec["journey"] = np.full(len(cust), jno, np.int8)
        recs.append(rec)
        if len(nxt) == 0 or jno == 3:
            break
        cust, t0, lower = nxt, t_nxt, low

    width = max(7, len(str(n)))
    ids = _id_strings("C", n, width)
    events = _build_events(acc, ids, tp_names, dev, gap_s)
    feedback = _build_feedback(rng, fbs, ids, tp_names, base, lang, pii_share)
    truth = _build_truth(recs, ids, dev, lang, dict(
        n_customers=n, seed=seed, start=start_ts.isoformat(), days=days,
        journey=journey.to_dict(), popup_share=popup_share, italian_share=italian_share,
        pii_share=pii_share, leave_shift=LEAVE_SHIFT))
    return SimulatedJourneys(events, feedback, truth)


def _build_events(acc, ids, tp_names, dev, gap_s) -> pd.DataFrame:
    cust, ts, tp, ch, seg, value, order = acc.arrays()
    o = np.lexsort((order, ts, cust))
    cust, ts, tp, ch, seg, value = cust[o], ts[o], tp[o], ch[o], seg[o], value[o]
    new = np.ones(len(cust), bool)
    new[1:] = (cust[1:] != cust[:-1]) | ((ts[1:] - ts[:-1]) > gap_s)
    g = np.cumsum(new)
    first = np.ones(len(cust), bool)
    first[1:] = cust[1:] != cust[:-1]
    k = g - np.maximum.accumulate(np.where(first, g, 0)) + 1
    cid_pa = pc.take(ids, pa.array(cust))
    cid = _str_series(cid_pa)
    sid = _str_series(pc.binary_join_element_wise(cid_pa, pc.cast(pa.array(k), pa.string()), "-S"))
    tsi = pd.DatetimeIndex(ts.astype("datetime64[s]").astype("datetime64[us]")).tz_localize("UTC")
    return pd.DataFrame({
        "customer_id": cid,
        "ts": tsi,
        "touchpoint": _from_codes(tp, tp_names),
        "channel": _from_codes(ch, CHANNELS),
        "session_id": sid,
        "value": value.astype(np.float64),
        "device": _from_codes(np.where(ch == APP, MOBILE, dev[cust]), DEVICES),
        "segment": _from_codes(seg, SEGMENTS),
    })


def _build_feedback(rng, fbs, ids, tp_names, base, lang, pii_share) -> pd.DataFrame:
    cols = ["feedback_id", "customer_id", "ts", "touchpoint", "channel", "score", "scale",
            "text", "language"]
    n = sum(len(f["cust"]) for f in fbs)
    cust = np.concatenate([f["cust"] for f in fbs]).astype(np.int64)
    ts = np.concatenate([f["ts"] for f in fbs]).astype(np.int64)
    tp = np.concatenate([np.asarray(f["tp"]) for f in fbs]).astype(np.int16)
    ch = np.concatenate([np.asarray(f["ch"]) for f in fbs]).astype(np.int8)
    scale = np.concatenate([np.full(len(f["cust"]), f["scale"], np.int8) for f in fbs])
    leave = np.concatenate([np.full(len(f["cust"]), f["leave"]) for f in fbs]).astype(bool)
    o = np.lexsort((tp, cust, ts))
    cust, ts, tp, ch, scale, leave = cust[o], ts[o], tp[o], ch[o], scale[o], leave[o]
    tpn = np.array(tp_names, dtype=object)[tp]
    eff = pd.Series(tpn).map(SENTIMENT_EFFECTS).fillna(0.0).to_numpy(np.float64)
    latent = base[cust] + eff + LEAVE_SHIFT * leave + rng.normal(0.0, 0.8, n)
    score = _scores(latent, scale)
    # the words carry a little noise of their own: near a class boundary a text may say
    # what the score does not (a 9 with a mild complaint, a 6 that sounds fair)
    words = _score_class(_scores(latent + rng.normal(0.0, _WORDS_NOISE, n), scale), scale)
    lg = lang[cust]
    text = _compose_texts(rng, lg, words, tpn) if n else np.empty(0, object)
    pii = np.flatnonzero(rng.random(n) < pii_share)
    if len(pii):
        text[pii] = text[pii] + _pii_suffix(rng, lg[pii])
    tsi = pd.DatetimeIndex(ts.astype("datetime64[s]").astype("datetime64[us]")).tz_localize("UTC")
    out = pd.DataFrame({
        "feedback_id": _str_series(_id_strings("F", n, max(7, len(str(n))))),
        "customer_id": _str_series(pc.take(ids, pa.array(cust))),
        "ts": tsi,
        "touchpoint": pd.Series(tpn, dtype="str"),
        "channel": _from_codes(ch, CHANNELS),
        "score": score,
        "scale": _from_codes(scale, SCALES),
        "text": pd.Series(text, dtype="str"),
        "language": _from_codes(lg, LANGUAGES),
    })
    return out[cols]


def _build_truth(recs, ids, dev, lang, params) -> SimulationTruth:
    cat = {k: np.concatenate([r[k] for r in recs]) for k in recs[0]}
    o = np.lexsort((cat["journey"], cat["cust"]))
    cat = {k: v[o] for k, v in cat.items()}
    customers = pd.DataFrame({
        "customer_id": _str_series(pc.take(ids, pa.array(cat["cust"]))),
        "journey": cat["journey"].astype(np.int64),
        "segment": _from_codes(cat["seg"], SEGMENTS),
        "channel": _from_codes(cat["chan"], CHANNELS),
        "device": _from_codes(dev[cat["cust"]], DEVICES),
        "language": _from_codes(lang[cat["cust"]], LANGUAGES),
        "popup_seen": cat["popup"].astype(bool),
        "registration_seen": cat["reg"].astype(bool),
        "last_step": _from_codes(cat["last"], FUNNEL),
        "converted": cat["conv"].astype(bool),
    })
    all_steps = ",".join(HAZARD_STEPS)
    effects = pd.DataFrame({
        "term": ["popup_shown", "channel_app", "registration_form"],
        "odds_ratio": [POPUP_OR, APP_OR, REGISTRATION_OR],
        "steps": [all_steps, all_steps, "checkout"],
        "description": [
            "home-page pop-up seen (web customers): doubles the odds of leaving at every step",
            "FMOT channel app (vs web/store): halves the odds of leaving at every step",
            "mandatory registration form seen before checkout (new web/app customers): "
            "odds of leaving at checkout x2.5"],
    })
    pain = pd.DataFrame({
        "touchpoint": ["registration_form"], "moment": ["FMOT"],
        "dropoff_odds_ratio": [REGISTRATION_OR],
        "sentiment_shift": [SENTIMENT_EFFECTS["registration_form"]],
        "description": ["the mandatory registration form: more drop-off at checkout and "
                        "clearly negative feedback (NPS several points below the rest)"],
    })
    return SimulationTruth(dropoff_effects=effects, step_alpha=dict(STEP_ALPHA), pain_points=pain,
                           sentiment_effects=dict(SENTIMENT_EFFECTS), customers=customers,
                           params=params)


# --------------------------------------------------------------------------- GA4
def _ga4_flat(events: pd.DataFrame) -> pd.DataFrame:
    """The GA4 fields of the digital events as flat columns (vectorised)."""
    ts_us = events["ts"].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    us = pd.Series(ts_us.astype("int64").to_numpy(), index=events.index)
    sess_start = us.groupby(events["session_id"].to_numpy()).transform("min") // 1_000_000
    cust = events["customer_id"].to_numpy()
    first_seen = us.groupby(cust).transform("min") // 1_000_000
    sess_num = sess_start.groupby(cust).rank(method="dense").astype("int64")
    keep = events["channel"].isin(GA4_CHANNELS).to_numpy()
    ev = events[keep]
    us, sess_start, first_seen, sess_num = (x[keep].to_numpy() for x in
                                            (us, sess_start, first_seen, sess_num))
    cid = ev["customer_id"].astype(str).to_numpy(dtype=object)
    ch = ev["channel"].astype(str).to_numpy(dtype=object)
    h = pd.util.hash_array(cid)
    pseudo = pd.Series(h % np.uint64(10 ** 10)).astype(str).str.zfill(10) + "." + \
        pd.Series(first_seen).astype(str)
    is_app = ch == "app"
    platform = np.where(is_app, np.where(h % np.uint64(100) < 45, "IOS", "ANDROID"), "WEB")
    hs = pd.util.hash_array(ev["session_id"].astype(str).to_numpy(dtype=object)) % np.uint64(10)
    web_medium = np.where(hs < 5, "organic", np.where(hs < 8, "cpc", "(none)"))
    medium = np.where(ch == "email", "email", np.where(ch == "social", "social", web_medium))
    tpn = ev["touchpoint"].astype(str).reset_index(drop=True)
    site = "https://shop.example.com/" + tpn
    loc = np.where(is_app, "app://shop/" + tpn,
                   np.where(ch == "email", site + "?utm_medium=email",
                            np.where(ch == "social", site + "?utm_medium=social", site)))
    dev = (ev["device"].astype(str).to_numpy(dtype=object) if "device" in ev
           else np.where(is_app, "mobile", "desktop"))
    val = ev["value"].to_numpy(dtype=np.float64) if "value" in ev else np.full(len(ev), np.nan)
    date = pd.Series(np.datetime_as_string(us.astype("datetime64[us]"), unit="D"))
    return pd.DataFrame({
        "event_date": date.str.replace("-", "", regex=False).astype("str"),
        "event_timestamp": us.astype(np.int64),
        "event_name": tpn.astype("str"),
        "user_pseudo_id": pseudo.astype("str"),
        "user_id": pd.Series(cid, dtype="str"),
        "ga_session_id": sess_start.astype(np.int64),
        "ga_session_number": sess_num.astype(np.int64),
        "page_location": pd.Series(loc, dtype="str"),
        "platform": pd.Series(platform, dtype="str"),
        "device_category": pd.Series(dev, dtype="str"),
        "medium": pd.Series(medium, dtype="str"),
        "purchase_revenue": val,
    })


def _ga4_jsonl(flat: pd.DataFrame, path: Path, chunk: int = 500_000) -> None:
    """Write flat GA4 rows as nested JSON Lines with one vectorised string join per chunk."""
    def js(col):            # JSON string literals, escaped once per distinct value
        codes, uniq = pd.factorize(flat[col].astype(str))
        lit = pa.array([json.dumps(u, ensure_ascii=False) for u in uniq], pa.large_string())
        return pc.take(lit, pa.array(codes))

    def num(col):
        return pc.cast(pa.array(flat[col].to_numpy()), pa.large_string())

    rev = flat["purchase_revenue"].to_numpy(dtype=np.float64)
    rev_s = pc.fill_null(pc.cast(pa.array(rev, from_pandas=True), pa.large_string()), "null")
    parts = ['{"event_date":', js("event_date"), ',"event_timestamp":', num("event_timestamp"),
             ',"event_name":', js("event_name"), ',"user_pseudo_id":', js("user_pseudo_id"),
             ',"user_id":', js("user_id"), ',"event_params":[',
             '{"key":"ga_session_id","value":{"string_value":null,"int_value":',
             num("ga_session_id"), ',"float_value":null,"double_value":null}},',
             '{"key":"ga_session_number","value":{"string_value":null,"int_value":',
             num("ga_session_number"), ',"float_value":null,"double_value":null}},',
             '{"key":"page_location","value":{"string_value":', js("page_location"),
             ',"int_value":null,"float_value":null,"double_value":null}}]',
             ',"platform":', js("platform"), ',"device":{"category":', js("device_category"),
             '},"traffic_source":{"medium":', js("medium"), '},"ecommerce":{"purchase_revenue":',
             rev_s, '}}\n']
    with open(path, "wb") as fh:
        for lo in range(0, len(flat), chunk):
            sl = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else p.slice(lo, chunk)
                  for p in parts]
            line = pc.binary_join_element_wise(*sl, pa.scalar("", pa.large_string()))
            if isinstance(line, pa.ChunkedArray):
                line = line.combine_chunks()
            off = np.frombuffer(line.buffers()[1], dtype=np.int64)[line.offset:line.offset + len(line) + 1]
            fh.write(memoryview(line.buffers()[2])[off[0]:off[-1]])


def to_ga4(events: pd.DataFrame) -> pd.DataFrame:
    """Convert canonical events to the Google Analytics 4 BigQuery export schema.

    GA4 only sees digital channels: rows on ``web``, ``app``, ``email`` and ``social`` are
    exported; ``store`` and ``call_centre`` contacts are not seen by GA4 and are dropped.

    Parameters
    ----------
    events : DataFrame
        Canonical events with ``customer_id``, ``ts``, ``touchpoint``, ``channel``,
        ``session_id``, and optionally ``value`` and ``device``.

    Returns
    -------
    DataFrame
        One row per exported event, in the input order:

        - ``event_date`` (str): ``"YYYYMMDD"``, UTC date.
        - ``event_timestamp`` (int64): microseconds since the epoch, UTC.
        - ``event_name`` (str): the touchpoint.
        - ``user_pseudo_id`` (str): ``"<10 digits>.<first-seen epoch seconds>"``, derived
          deterministically from the customer id (a hash) and their first event.
        - ``user_id`` (str): the customer id.
        - ``event_params`` (list of dict): ``{"key", "value": {"string_value",
          "int_value", "float_value", "double_value"}}``: ``ga_session_id`` (int_value: the
          epoch seconds at which the canonical session started, the same for every event of
          the session), ``ga_session_number`` (int_value: the customer's n-th session) and
          ``page_location`` (string_value).
        - ``platform`` (str): ``IOS``/``ANDROID`` for the app, ``WEB`` otherwise.
        - ``device`` (dict): ``{"category": desktop|mobile|tablet}``.
        - ``traffic_source`` (dict): ``{"medium": ...}``: ``email`` for e-mail, ``social``
          for social, ``organic``/``cpc``/``(none)`` for web and app.
        - ``ecommerce`` (dict): ``{"purchase_revenue": float or None}``.

        The channel maps back as: platform IOS/ANDROID -> ``app``; else medium ``email``
        -> ``email``; medium ``social`` -> ``social``; else ``web``.

    Notes
    -----
    Everything is vectorised: the nested columns are pyarrow-backed (``pd.ArrowDtype``
    list/struct) columns whose elements read as Python lists and dicts, with ``None`` for
    nulls. :func:`write_simulation` writes the JSON Lines file straight from the flat
    fields.
    """
    f = _ga4_flat(events)
    n = len(f)
    rows = np.repeat(np.arange(n), 3)
    slot = np.tile(np.arange(3), n)
    keys = pc.take(pa.array(["ga_session_id", "ga_session_number", "page_location"]),
                   pa.array(slot))
    ints = np.zeros(3 * n, np.int64)
    ints[0::3] = f["ga_session_id"].to_numpy()
    ints[1::3] = f["ga_session_number"].to_numpy()
    int_value = pa.array(ints, mask=slot == 2)
    string_value = pc.take(pa.array(f["page_location"]), pa.array(rows, mask=slot != 2))
    nulls = pa.nulls(3 * n, pa.float64())
    value = pa.StructArray.from_arrays([string_value, int_value, nulls, nulls],
                                       ["string_value", "int_value", "float_value", "double_value"])
    item = pa.StructArray.from_arrays([keys, value], ["key", "value"])
    params = pa.ListArray.from_arrays(pa.array(np.arange(0, 3 * n + 1, 3, dtype=np.int32)), item)

    def arrow(arr):
        return pd.Series(pd.arrays.ArrowExtensionArray(arr))

    def struct(name, col, **kw):
        return arrow(pa.StructArray.from_arrays([pa.array(f[col], **kw)], [name]))

    return pd.DataFrame({
        "event_date": f["event_date"],
        "event_timestamp": f["event_timestamp"],
        "event_name": f["event_name"],
        "user_pseudo_id": f["user_pseudo_id"],
        "user_id": f["user_id"],
        "event_params": arrow(params),
        "platform": f["platform"],
        "device": struct("category", "device_category"),
        "traffic_source": struct("medium", "medium"),
        "ecommerce": struct("purchase_revenue", "purchase_revenue", from_pandas=True),
    })


# --------------------------------------------------------------------------- writing
def _iso_z(ts: pd.Series) -> np.ndarray:
    arr = ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    whole = (arr.astype(np.int64) % 1_000_000 == 0).all()
    return np.char.add(np.datetime_as_string(arr, unit="s" if whole else "us").astype(str), "Z")


def _csv(df: pd.DataFrame, path: Path) -> None:
    out = df.copy()
    out["ts"] = _iso_z(df["ts"])
    out.to_csv(path, index=False, encoding="utf-8")


def write_simulation(sim, out_dir, *, format: str = "csv", duplicate_share: float = 0.0,
                     seed: int = 0) -> dict:
    """Write a simulation as export files, plus its truth.

    Parameters
    ----------
    sim : SimulatedJourneys
        What :func:`simulate_journeys` returned.
    out_dir : path
        Created if needed.
    format : {"csv", "parquet", "ga4"}
        ``csv``: ``events.csv`` and ``feedback.csv`` (UTF-8, ``ts`` as ISO 8601 with
        ``Z``); ``parquet``: ``events.parquet`` and ``feedback.parquet``; ``ga4``:
        ``events_ga4.jsonl`` (:func:`to_ga4`, one JSON object per line, nested objects and
        arrays, nulls as null) and ``feedback.csv``.
    duplicate_share : float
        Share of exact duplicate event rows appended (random rows, deterministic with
        ``seed``), as real exports have. For ``ga4`` the share applies to the GA4 rows.
    seed : int
        Seed for choosing the duplicated rows.

    Returns
    -------
    dict
        ``{"events": Path, "feedback": Path, "truth": Path, "n_duplicate_rows": int}``.
        ``truth.json`` holds ``truth.to_dict()`` plus ``n_duplicate_rows`` and ``format``.
    """
    if format not in ("csv", "parquet", "ga4"):
        raise ValueError(f"format must be 'csv', 'parquet' or 'ga4', not {format!r}")
    if not 0 <= duplicate_share <= 1:
        raise ValueError("duplicate_share must be within [0, 1]")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events = _ga4_flat(sim.events) if format == "ga4" else sim.events
    rng = np.random.default_rng(seed)
    n_dup = int(round(duplicate_share * len(events)))
    if n_dup:
        rows = np.sort(rng.choice(len(events), n_dup, replace=False))
        events = pd.concat([events, events.iloc[rows]], ignore_index=True)
    if format == "csv":
        ev_path, fb_path = out / "events.csv", out / "feedback.csv"
        _csv(events, ev_path)
        _csv(sim.feedback, fb_path)
    elif format == "parquet":
        ev_path, fb_path = out / "events.parquet", out / "feedback.parquet"
        events.to_parquet(ev_path, index=False)
        sim.feedback.to_parquet(fb_path, index=False)
    else:
        ev_path, fb_path = out / "events_ga4.jsonl", out / "feedback.csv"
        _ga4_jsonl(events, ev_path)
        _csv(sim.feedback, fb_path)
    truth = sim.truth.to_dict()
    truth["n_duplicate_rows"] = n_dup
    truth["format"] = format
    truth_path = out / "truth.json"
    truth_path.write_text(json.dumps(truth, indent=2, ensure_ascii=False), encoding="utf-8")
    return {"events": ev_path, "feedback": fb_path, "truth": truth_path, "n_duplicate_rows": n_dup}
