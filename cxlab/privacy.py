"""Mask personal data in free text before it is modelled or shown.

Feedback verbatims carry what customers typed: e-mail addresses, phone numbers, card and
IBAN numbers, Italian tax codes. cxlab masks them before fitting a sentiment model (so no
model feature is a customer's e-mail) and in anything it displays (tables, widgets, reports).

>>> mask_pii("Scrivetemi a mario.rossi@example.it o al +39 347 123 4567")
'Scrivetemi a [EMAIL] o al [PHONE]'

What is masked, in this order (each placeholder names what was there). Candidates are
found by regular expressions; those with a check digit are confirmed with python-stdnum,
so a product or order code that merely looks like one is kept.

``[EMAIL]``   ``local@domain.tld``, letters with accents included (``andrè@università.it``).
``[IBAN]``    two letters, two check digits and 11-30 letters or digits, either case, spaces
              or dashes allowed between groups of four (``IT60 X054 2811 1010 0000 0123 456``,
              ``it60-x054-...``); confirmed by ``stdnum.iban`` (mod 97 and the country's
              layout).
``[TAX_ID]``  an Italian codice fiscale (16 characters, ``RSSMRA85T10A562S``, either case,
              omocodia letters included) confirmed by ``stdnum.it.codicefiscale``, or a
              partita IVA (11 digits, optionally ``IT`` before them) confirmed by
              ``stdnum.it.iva``.
``[CARD]``    13-19 digits, spaces, dots or dashes allowed between them, passing the Luhn
              checksum (``stdnum.luhn``).
``[PHONE]``   8-15 digits with an international prefix (``+39``, ``0039``), a bracketed area
              code, or groups separated by spaces, dots, dashes or, after an Italian
              prefix, one slash (``02/1234567``); a run of digits without separators when
              it has 10 or 11 digits (a national number) or starts with 0 or 3 (an Italian
              landline or mobile), so ``ordine 12345678`` is kept. Dates (``02/12/2026``,
              ``2026-12-02``, ``12.03.2026 10.30``), time ranges, numbers grouped in
              thousands (``1.234.567``), decimals, ``2495/1170`` and digits after a code's
              letters (``ORD-30012345``) are never phones.

Masking stays eager for phones (a long digit run with separators, or of 10 or 11 digits,
is more often a phone number than anything an analyst needs to read) and exact for IBANs,
tax codes and cards (their check digits make false positives rare; about 1 in 100 random
11-digit numbers is a valid partita IVA, and the others read as phones anyway).

Identifiers (customer, session and feedback ids, and property columns named like an id, an
e-mail, a phone or a name) are shown as keyed pseudonyms: :func:`pseudonym` is ``id:`` and
the first 8 hex digits of an HMAC-SHA256 of the value with a secret key drawn once per
workspace and kept in it (:meth:`cxlab.Workspace.pseudonym_key`), so the same customer has
the same pseudonym in every report of a workspace and nobody without the workspace file
can reverse one by hashing candidate ids (an unsalted hash of ``C0000001``...``C0020000``
is reversed in well under a second).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import overload

import numpy as np
import pandas as pd
from stdnum import iban as _stdnum_iban, luhn as _stdnum_luhn
from stdnum.it import codicefiscale as _stdnum_cf, iva as _stdnum_iva

from ._textfeatures import SEP as _SEP, apply_to, code_points, texts_at

__all__ = ["mask_pii", "pseudonym", "PLACEHOLDERS"]

PLACEHOLDERS = ("[EMAIL]", "[IBAN]", "[TAX_ID]", "[CARD]", "[PHONE]")

# The patterns open with a lookahead at their first character, so that the engine skips
# ahead to the places where a match can begin (it cannot skip with a lookbehind or \b first).
_EMAIL = re.compile(r"[\w.%+\-]+@[\w.\-]+\.[^\W\d_]{2,}")
_IBAN = re.compile(r"(?=[A-Za-z])\b[A-Za-z]{2}[0-9]{2}"
                   r"(?:[ \-]?[A-Za-z0-9]{4}){2,7}(?:[ \-]?[A-Za-z0-9]{1,4})?\b")
# A codice fiscale's digits, or the letters that replace them in a code given to a second
# person with the same one (omocodia). They are replaced right to left, so the 7th character
# stays a digit but after seven such collisions (a code of 16 letters, not masked).
_OMOCODIA = "0-9LMNPQRSTUVlmnpqrstuv"
_CODICE_FISCALE = re.compile(rf"(?=[A-Za-z])\b[A-Za-z]{{6}}[0-9][{_OMOCODIA}][A-Za-z]"
                             rf"[{_OMOCODIA}]{{2}}[A-Za-z][{_OMOCODIA}]{{3}}[A-Za-z]\b")
_PARTITA_IVA = re.compile(r"(?=[Ii0-9])(?<!\w)(?:[Ii][Tt] ?)?[0-9]{11}(?!\w)")
_CARD = re.compile(r"(?=\d)(?<!\d)\d(?:[ .\-]?\d){12,}(?!\d)")
_DATE = r"\d{1,2}([./\-])\d{1,2}\1\d{2,4}|\d{4}([./\-])\d{1,2}\2\d{1,2}"      # 02/12/2026, 2026-12-02
_PHONE = re.compile(
    r"(?=[+(\d])(?<![\w+])(?<!\d[.,/])(?<![^\W\d]-)"   # not inside a number or a date, nor after ORD-
    rf"(?!(?:{_DATE})(?![./\-]?\d))"               # nor at a date
    r"(?:(?:\+|00)\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)[ .\-]?)?"
    r"\d{2,5}(?:/ ?\d{2,8})?(?:[ .\-]?\d{2,5}){0,4}"
    r"(?![\w]|[.,]\d)")                            # nor the integer part of a decimal
# 1.234.567, 10.30-12.30: thousands and time ranges
_NOT_PHONE = re.compile(r"\d{1,3}(?:\.\d{3}){2,}|\d{1,2}[.:]\d{2}-\d{1,2}[.:]\d{2}")


def _valid_prefix(candidate: str, ok, placeholder: str) -> str:
    """The placeholder for the longest prefix of ``candidate`` that ``ok`` accepts, cut at a
    separator (``IBAN ... 7034 ciao``: the word after an IBAN is not part of it), the
    rest kept; ``candidate`` itself when no prefix is accepted."""
    cuts = [len(candidate)] + [i for i in range(len(candidate) - 1, 0, -1) if candidate[i] in " .-"]
    for cut in cuts:
        if ok(candidate[:cut]):
            return placeholder + candidate[cut:]
    return candidate


def _card_ok(candidate: str) -> bool:
    digits = "".join(str(int(c)) for c in candidate if c.isdigit())    # other scripts' digits too
    return 13 <= len(digits) <= 19 and _stdnum_luhn.is_valid(digits)


def _phone_ok(candidate: str) -> bool:
    digits = [c for c in candidate if c.isdigit()]
    if not 8 <= len(digits) <= 15:
        return False
    if candidate[0] in "+(" or candidate.startswith("00"):
        return True
    italian = int(candidate[0]) in (0, 3)           # a landline or mobile number
    if len(digits) == len(candidate):               # one run of digits: a national number or an Italian one
        return len(digits) in (10, 11) or italian
    if "/" in candidate and not italian:            # 2495/1170: two flight numbers, not 02/1234567
        return False
    return _NOT_PHONE.fullmatch(candidate) is None


def _sub_email(text: str) -> str:
    return _EMAIL.sub("[EMAIL]", text)


def _sub_iban(text: str) -> str:
    return _IBAN.sub(lambda m: _valid_prefix(m.group(), _stdnum_iban.is_valid, "[IBAN]"), text)


def _sub_codice_fiscale(text: str) -> str:
    return _CODICE_FISCALE.sub(lambda m: "[TAX_ID]" if _stdnum_cf.is_valid(m.group()) else m.group(), text)


def _sub_partita_iva(text: str) -> str:
    return _PARTITA_IVA.sub(lambda m: "[TAX_ID]" if _stdnum_iva.is_valid(m.group()[-11:]) else m.group(),
                            text)


def _sub_card(text: str) -> str:
    return _CARD.sub(lambda m: _valid_prefix(m.group(), _card_ok, "[CARD]"), text)


def _sub_phone(text: str) -> str:
    return _PHONE.sub(lambda m: "[PHONE]" if _phone_ok(m.group()) else m.group(), text)


_STAGES = (_sub_email, _sub_iban, _sub_codice_fiscale, _sub_partita_iva, _sub_card, _sub_phone)


_HAS_DIGIT = re.compile(r"\d").search


def _mask_one(text: str) -> str:
    if "@" in text:
        text = _sub_email(text)
    if _HAS_DIGIT(text):           # every other form holds a digit
        for fn in _STAGES[1:]:
            text = fn(text)
    return text


_DECIMAL = None


def _decimal(cp: np.ndarray) -> np.ndarray:
    """Whether each code point is a decimal digit (what ``\\d`` matches)."""
    global _DECIMAL
    if _DECIMAL is None:
        _DECIMAL = np.array([chr(i).isdecimal() for i in range(0x10000)], dtype=bool)
    out = np.zeros(len(cp), dtype=bool)
    low = cp < 0x10000
    out[low] = _DECIMAL[cp[low]]
    out[~low] = [chr(c).isdecimal() for c in cp[~low].tolist()]
    return out


def _is_letter(cp: np.ndarray) -> np.ndarray:
    """ASCII letters, either case."""
    low = cp | 32
    return (low >= 97) & (low <= 122)


def _after_letters(cp: np.ndarray, pos: np.ndarray, n: int) -> np.ndarray:
    """The positions of ``pos`` that follow ``n`` ASCII letters."""
    pos = pos[pos >= n]
    for k in range(1, n + 1):
        pos = pos[_is_letter(cp[pos - k])]
    return pos


def _word_start(cp: np.ndarray, pos: np.ndarray, back: int) -> np.ndarray:
    """The positions of ``pos`` whose ``back``-th character before could start a word
    (``\\b``): the text's start or after anything but an ASCII letter, digit or ``_``."""
    start = pos - back
    prev = cp[np.maximum(start - 1, 0)]
    ascii_word = _is_letter(prev) | ((prev >= 48) & (prev <= 57)) | (prev == 95)
    return pos[(start == 0) | ~ascii_word]


def _digit_runs(pos: np.ndarray, starts: np.ndarray, gap: int, least: int) -> np.ndarray:
    """Texts with a run of at least ``least`` digits, each at most ``gap`` characters after
    the previous one (a card number's digits are at most 2 apart: one space, dot or dash; a
    phone number's at most 3: ``) `` or ``/ ``; a partita IVA's 1), so no other text can
    hold a match."""
    if len(pos) < least:
        return np.zeros(0, dtype=np.int64)
    doc = np.searchsorted(starts, pos, side="right") - 1   # not texts_at: one per digit
    new_run = np.ones(len(pos), dtype=bool)
    new_run[1:] = (np.diff(pos) > gap) | (doc[1:] != doc[:-1])
    run = np.cumsum(new_run) - 1
    size = np.bincount(run)
    return np.unique(doc[new_run][size >= least])


def _candidates(cp: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, ...]:
    """For each stage of ``_STAGES``, the texts that could hold a match: an ``@`` after a
    character of an address (e-mail); two letters and two digits at the start of a word
    (IBAN); there, six letters, a digit, any character and a letter (codice fiscale); 11
    digits in a row (partita IVA); 13 or more digits (card); 8 or more (phone)."""
    digit = (cp >= 48) & (cp <= 57)
    other = np.flatnonzero(cp > 127)
    if len(other):    # \d also matches other scripts' decimal digits
        digit[other] = _decimal(cp[other])
    dpos = np.flatnonzero(digit)
    d2 = _after_letters(cp, dpos[dpos + 1 < len(cp)], 2)
    d2 = _word_start(cp, d2[digit[d2 + 1]], 2)
    at = np.flatnonzero(cp == 64)
    at = at[at > 0]
    before = cp[at - 1]
    at = at[_is_letter(before) | ((before >= 48) & (before <= 57)) | (before > 127)
            | np.isin(before, [ord(c) for c in "._%+-"])]
    # a codice fiscale's 7th character is a digit, its 9th a letter
    d6 = _after_letters(cp, dpos[dpos + 2 < len(cp)], 6)
    d6 = _word_start(cp, d6[_is_letter(cp[d6 + 2])], 6)
    return (texts_at(starts, at), texts_at(starts, d2), texts_at(starts, d6),
            _digit_runs(dpos, starts, 1, 11), _digit_runs(dpos, starts, 2, 13),
            _digit_runs(dpos, starts, 3, 8))


def _mask_many(texts: list[str]) -> list[str]:
    """``_mask_one`` of each text, faster on many: each substitution runs only on the texts
    that could hold a match (:func:`_candidates`), joined into one string. A substitution
    creates no candidate for a later stage (a placeholder holds no digit or ``@``, is
    bracketed and is longer than the widest gap a digit run allows), so the texts picked
    on the unmasked corpus are all those a later stage can change."""
    out = list(texts)
    if not out or any(_SEP in t for t in out):
        return [_mask_one(t) for t in out]
    cp, starts = code_points(out)
    for which, fn in zip(_candidates(cp, starts), _STAGES):
        apply_to(out, which, fn)
    return out


@overload
def mask_pii(texts: str) -> str: ...
@overload
def mask_pii(texts: pd.Series) -> pd.Series: ...
def mask_pii(texts):
    """Replace e-mail addresses, IBANs, tax codes, card and phone numbers with placeholders.

    See the module docstring for what each placeholder (:data:`PLACEHOLDERS`) stands for.

    Takes a string, a pandas Series, or any list-like of strings; returns the same kind
    (a Series keeps its index and name; a list-like becomes a list). Missing values stay
    missing. Nothing else in the text changes.
    """
    if texts is None:
        return None
    if isinstance(texts, str):
        return _mask_one(texts)
    if isinstance(texts, (pd.Series, list, tuple, np.ndarray, pd.Index)):
        values = list(texts)
        where = [i for i, t in enumerate(values) if isinstance(t, str)]
        for i, t in zip(where, _mask_many([values[i] for i in where])):
            values[i] = t
        if isinstance(texts, pd.Series):
            return pd.Series(values, index=texts.index, name=texts.name, dtype=texts.dtype)
        return values
    if isinstance(texts, float) and np.isnan(texts):
        return texts
    raise TypeError(f"mask_pii takes a string or a list-like of strings, not {type(texts).__name__}")


# --------------------------------------------------------------------------- pseudonyms
#: the workspace table holding the pseudonym key (one row, 32 random bytes)
SECRET_TABLE = "_cx_secret"
_PROCESS_KEY: list[bytes] = []


def pseudonym(value, *, key: bytes | None) -> str:
    """A keyed pseudonym: ``id:`` and the first 8 hex digits of HMAC-SHA256(key, value).

    Parameters
    ----------
    value : str or any
        The identifier (other types are taken as their ``str``).
    key : bytes or None
        The workspace's key (:meth:`cxlab.Workspace.pseudonym_key`). None uses a key drawn
        for this Python process: pseudonyms are then stable within one run only.

    Examples
    --------
    >>> pseudonym("C0000001", key=b"k" * 32)
    'id:b233673d'
    """
    if key is None:
        if not _PROCESS_KEY:
            _PROCESS_KEY.append(secrets.token_bytes(32))
        key = _PROCESS_KEY[0]
    return "id:" + hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()[:8]


def ensure_secret(con) -> None:
    """Create the pseudonym key of a workspace once (a writable DuckDB connection)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {SECRET_TABLE} (secret BLOB NOT NULL)")
    if not con.execute(f"SELECT count(*) FROM {SECRET_TABLE}").fetchall()[0][0]:
        con.execute(f"INSERT INTO {SECRET_TABLE} VALUES (?)", [secrets.token_bytes(32)])


def read_secret(con) -> bytes | None:
    """The pseudonym key of a workspace, or None for a file made before it had one."""
    has = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main' "
                      "AND database_name = current_database()", [SECRET_TABLE]).fetchall()[0][0]
    if not has:
        return None
    rows = con.execute(f"SELECT secret FROM {SECRET_TABLE} LIMIT 1").fetchall()
    return bytes(rows[0][0]) if rows else None
