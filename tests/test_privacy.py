"""cxlab.privacy.mask_pii: what is masked, what is kept."""
import numpy as np
import pandas as pd
import pytest

from cxlab.datasets import simulate_journeys
from cxlab.privacy import mask_pii


@pytest.mark.parametrize("text, expected", [
    ("scrivetemi a mario.rossi@example.it grazie", "scrivetemi a [EMAIL] grazie"),
    ("IBAN IT60 X054 2811 1010 0000 0123 456.", "IBAN [IBAN]."),
    ("IBAN IT60X0542811101000000123456", "IBAN [IBAN]"),
    ("GB82 WEST 1234 5698 7654 32 please", "[IBAN] please"),
    ("card 4111 1111 1111 1111 expired", "card [CARD] expired"),
    ("card 5500-0000-0000-0004", "card [CARD]"),
    ("chiamatemi al +39 347 123 4567", "chiamatemi al [PHONE]"),
    ("call (555) 123-4567 or 020 7946 0958", "call [PHONE] or [PHONE]"),
    ("tel 3471234567", "tel [PHONE]"),
])
def test_masks_personal_data(text, expected):
    assert mask_pii(text) == expected


# what Italian verbatims carry (issue 17): each form masked, by a single text and in a list
ITALIAN_FORMS = [
    ("codice fiscale RSSMRA85T10A562S grazie", "codice fiscale [TAX_ID] grazie"),
    ("il mio cf è rssmra85t10a562s", "il mio cf è [TAX_ID]"),
    ("cf omocodico RSSMRA85T10A56NH", "cf omocodico [TAX_ID]"),
    ("omocodia fino all'ottavo carattere RSSMRA8RTLMAQSNZ", "omocodia fino all'ottavo carattere [TAX_ID]"),
    ("fattura a P.IVA 00743110157 per favore", "fattura a P.IVA [TAX_ID] per favore"),
    ("partita iva IT00743110157.", "partita iva [TAX_ID]."),
    ("iban it60x0542811101000000123456 ok", "iban [IBAN] ok"),
    ("IBAN IT60-X054-2811-1010-0000-0123-456", "IBAN [IBAN]"),
    ("iban be71 0961 2345 6769 ciao", "iban [IBAN] ciao"),      # the word after is not part of it
    ("carta 4111.1111.1111.1111 scaduta", "carta [CARD] scaduta"),
    ("chiamate lo 02/1234567 dopo le 18", "chiamate lo [PHONE] dopo le 18"),
    ("cell. 347/123 4567", "cell. [PHONE]"),
    ("fisso 06.1234.5678", "fisso [PHONE]"),
    ("il 12.03.2026 347 123 4567 risponde", "il 12.03.2026 [PHONE] risponde"),
    ("scrivete a andrè.rossi@università.it", "scrivete a [EMAIL]"),
    ("email: josé_garcía@correo.es", "email: [EMAIL]"),
    ("MARIO.ROSSI@EXAMPLE.IT", "[EMAIL]"),
    # forms from the airline tweets in ../shared/data: national numbers stay masked
    ("please call me 9148445695 #1", "please call me [PHONE] #1"),
    ("calls from 1-800-433-7300 drop", "calls from 1-[PHONE] drop"),
]


@pytest.mark.parametrize("text, expected", ITALIAN_FORMS)
def test_masks_italian_personal_data(text, expected):
    assert mask_pii(text) == expected
    assert mask_pii([text, "ok"]) == [expected, "ok"]


# ordinary CX sentences: numbers an analyst needs to read, never masked
ORDINARY = [
    "ordine n. 12345678 del 02/12/2026 alle 10:30",
    "consegna prevista il 2026-12-02, ritiro dalle 10.30-12.30",
    "il 12.03.2026 alle 10.30 nessuno ha risposto",
    "prezzo € 1.234,56 invece di € 1.499,00, sconto del 17,5%",
    "fatturato 12.345.678 euro nel 2025",
    "codice ordine ORD-30012345, reso RMA-2026-001",
    "tracking 123456789012 fermo da 3 giorni",
    "pagato 12345678,50 per errore",
    "voto 10/10, consegna in 2-3 giorni, 4 pezzi su 5",
    "codice sconto SAVE20ESTATE2026 non valido",
    "RSSMRA85T10A562X non è un codice valido",          # wrong check letter
    "incomprehensible CODICEPROMOZIONE",
    "the @user handle and #hashtag stay, a@b.c too",
    "flights 2495/1170 on 02.27.2015, reference # 261093929756, ticket 2792125083854",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_cx_sentences_are_unchanged(text):
    assert mask_pii(text) == text
    assert mask_pii([text]) == [text]


def test_validators_decide_not_the_shape():
    # same shapes as the masked forms, wrong check digits: kept
    assert mask_pii("iban it60x0542811101000000123457") == "iban it60x0542811101000000123457"
    assert mask_pii("carta 4111.1111.1111.1112") == "carta 4111.1111.1111.1112"
    assert "[TAX_ID]" not in mask_pii("P.IVA 00743110158")


@pytest.mark.parametrize("text", [
    "ordine n. 12345 del 12/03/2026 alle 10:30, 3 pezzi da 19.99",
    "prezzo 1.299,00 euro, sconto 20%",
    "IT60 X054 2811 1010 0000 0123 457",          # wrong IBAN check digits: a code, kept
    "voto 10/10, consegna in 2-3 giorni",
    "the @user handle and #hashtag stay",
])
def test_keeps_what_is_not_personal(text):
    masked = mask_pii(text)
    assert "[EMAIL]" not in masked and "[IBAN]" not in masked and "[CARD]" not in masked
    if "457" in text:
        return                                  # long digit runs may still read as a phone
    assert masked == text


def test_card_number_failing_luhn_is_not_a_card():
    assert "[CARD]" not in mask_pii("order 4111 1111 1111 1112")


def test_containers_keep_their_shape_and_missing_values():
    s = pd.Series(["a@b.com", None, np.nan, "ok"], index=[10, 11, 12, 13], name="text")
    out = mask_pii(s)
    assert list(out.index) == [10, 11, 12, 13] and out.name == "text"
    assert out[10] == "[EMAIL]" and out[13] == "ok" and pd.isna(out[11]) and pd.isna(out[12])
    assert mask_pii(["x@y.org", "plain"]) == ["[EMAIL]", "plain"]
    assert mask_pii(None) is None
    with pytest.raises(TypeError, match="string or a list-like"):
        mask_pii(42)


def test_simulated_feedback_leaves_no_personal_data_after_masking():
    _, feedback, _ = simulate_journeys(20_000, seed=3)
    planted = feedback.text.str.contains("@", regex=False)
    assert planted.sum() > 50
    masked = mask_pii(feedback.text)
    assert not masked.str.contains("@", regex=False).any()
    # no run of 3+ digits survives in the rows with planted contacts, IBANs and cards
    assert not masked[planted].str.contains(r"\d{3}").any()
    assert masked[planted].str.contains(r"\[IBAN\]").sum() > 0
    assert masked[planted].str.contains(r"\[CARD\]").sum() > 0
    # rows without planted data are unchanged
    assert (masked[~planted] == feedback.text[~planted]).all()


# --------------------------------------------------------------------------- keyed pseudonyms
def test_pseudonyms_are_keyed_per_workspace_and_stable_in_it(tmp_path):
    import hashlib

    import cxlab
    from cxlab.privacy import pseudonym

    with cxlab.connect(tmp_path / "a.duckdb") as a, cxlab.connect(tmp_path / "b.duckdb") as b:
        key_a, key_b = a.pseudonym_key(), b.pseudonym_key()
    assert len(key_a) == 32 and key_a != key_b
    with cxlab.connect(tmp_path / "a.duckdb", read_only=True) as again:
        assert again.pseudonym_key() == key_a                   # read-only opens read the same key
    with cxlab.connect(tmp_path / "a.duckdb") as a:
        exported = a.export_parquet(tmp_path / "parquet")
    for f in exported.values():                                  # the key stays in the workspace
        assert key_a not in f.read_bytes() and key_a.hex().encode() not in f.read_bytes()
    p = pseudonym("C0000001", key=key_a)
    assert p.startswith("id:") and len(p) == 11
    assert p == pseudonym("C0000001", key=key_a) != pseudonym("C0000001", key=key_b)
    # an unsalted hash of every id of the range does not reverse it (it would the old pseudonym)
    unsalted = {hashlib.sha256(f"C{i:07d}".encode()).hexdigest()[:8]: f"C{i:07d}" for i in range(1, 20_001)}
    assert unsalted[hashlib.sha256(b"C0000001").hexdigest()[:8]] == "C0000001"
    assert p[3:] not in unsalted
    assert pseudonym("C0000001", key=None) == pseudonym("C0000001", key=None)    # a process key


def test_a_workspace_made_before_pseudonym_keys_gets_one_at_the_next_writable_open(tmp_path):
    import cxlab
    from cxlab.exceptions import WorkspaceError
    from cxlab.privacy import SECRET_TABLE

    path = tmp_path / "old.duckdb"
    with cxlab.connect(path) as w:
        w._raw.execute(f"DROP TABLE {SECRET_TABLE}")             # as an earlier cxlab left it
    with cxlab.connect(path, read_only=True) as old:
        assert old.counts() == {"events": 0, "feedback": 0}       # still readable
        with pytest.raises(WorkspaceError, match="earlier cxlab.*open it once for writing"):
            old.pseudonym_key()
    with cxlab.connect(path) as w:
        key = w.pseudonym_key()
    with cxlab.connect(path) as w:
        assert w.pseudonym_key() == key
    with cxlab.connect(path, read_only=True) as w:
        assert w.pseudonym_key() == key                            # drawn once, kept


def test_list_path_equals_single_texts_on_glued_fragments():
    from cxlab.privacy import _mask_one

    # fragments glued without spaces, so that matches meet word and digit boundaries
    pieces = ["RSSMRA85T10A562S", "rssmra8rtlmaqsnz", "00743110157", "IT", "it60x0542811101000000123456",
              "IT60-X054-2811-1010-0000-0123-456", "4111.1111.1111.1111", "02/1234567",
              "andrè.rossi@università.it", "@", "è", "_", "-", ".", "/", " ", "(", ")", "+", "39", "347",
              "123", "4567", "02", "12", "2026", "be71 0961 2345 6769", "ciao", "A", "x", "٣٤٧", "0", ","]
    rng = np.random.default_rng(5)
    texts = ["".join(rng.choice(pieces, size=rng.integers(1, 10))) for _ in range(6000)]
    assert mask_pii(texts) == [_mask_one(t) for t in texts]
