"""Mask personal data in free text before it is modelled or shown.

Feedback verbatims carry what customers typed: e-mail addresses, phone numbers, card and
IBAN numbers. cxlab masks them before fitting a sentiment model (so no model feature is a
customer's e-mail) and in anything it displays (tables, widgets, reports).

>>> mask_pii("Scrivetemi a mario.rossi@example.it o al +39 347 123 4567")
'Scrivetemi a [EMAIL] o al [PHONE]'

What is masked, in this order (each placeholder names what was there):

``[EMAIL]``  ``local@domain.tld``.
``[IBAN]``   two letters, two check digits and 11-30 letters or digits, spaces allowed in
             groups of four (``IT60 X054 2811 1010 0000 0123 456``); checked with the
             ISO 13616 mod-97 rule, so a product code that merely looks like one is kept.
``[CARD]``   13-19 digits, spaces or dashes allowed between groups, passing the Luhn
             checksum (so an order number that fails it is kept).
``[PHONE]``  an international (``+39 ...``, ``0039 ...``) or national number of 8-15 digits
             with spaces, dots, dashes or brackets between groups.

Masking is deliberately eager for phones (a long digit run with separators is more often
a phone number than anything an analyst needs to read) and exact for cards and IBANs (their
checksums make false positives rare).
"""
from __future__ import annotations

import re
from typing import overload

import numpy as np
import pandas as pd

from ._textfeatures import SEP as _SEP, apply_to, code_points, texts_at

__all__ = ["mask_pii", "PLACEHOLDERS"]

PLACEHOLDERS = ("[EMAIL]", "[IBAN]", "[CARD]", "[PHONE]")

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
_CARD = re.compile(r"(?<![\d])\d(?:[ \-]?\d){12,18}(?![\d])")
_PHONE = re.compile(r"(?<![\w+])(?:(?:\+|00)\d{1,3}[ .\-]?)?(?:\(\d{1,4}\)[ .\-]?)?\d{2,4}(?:[ .\-]?\d{2,5}){1,4}(?![\w])")


def _iban_ok(candidate: str) -> bool:
    s = candidate.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    digits = "".join(str(int(ch, 36)) for ch in moved)
    return int(digits) % 97 == 1


def _luhn_ok(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _phone_ok(candidate: str) -> bool:
    n = sum(c.isdigit() for c in candidate)
    return 8 <= n <= 15


def _sub_email(text: str) -> str:
    return _EMAIL.sub("[EMAIL]", text)


def _sub_iban(text: str) -> str:
    return _IBAN.sub(lambda m: "[IBAN]" if _iban_ok(m.group()) else m.group(), text)


def _sub_card(text: str) -> str:
    return _CARD.sub(lambda m: "[CARD]" if _luhn_ok(m.group()) else m.group(), text)


def _sub_phone(text: str) -> str:
    return _PHONE.sub(lambda m: "[PHONE]" if _phone_ok(m.group()) else m.group(), text)


def _mask_one(text: str) -> str:
    return _sub_phone(_sub_card(_sub_iban(_sub_email(text))))




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


def _is_upper(cp: np.ndarray) -> np.ndarray:
    return (cp >= 65) & (cp <= 90)


def _digit_runs(pos: np.ndarray, starts: np.ndarray, gap: int, least: int) -> np.ndarray:
    """Texts with a run of at least ``least`` digits, each at most ``gap`` characters after
    the previous one (a card number's digits are at most 2 apart: one space or dash; a
    phone number's at most 3: ``) `` or `` (``), so no other text can hold a match."""
    if len(pos) < least:
        return np.zeros(0, dtype=np.int64)
    doc = np.searchsorted(starts, pos, side="right") - 1   # not texts_at: one per digit
    new_run = np.ones(len(pos), dtype=bool)
    new_run[1:] = (np.diff(pos) > gap) | (doc[1:] != doc[:-1])
    run = np.cumsum(new_run) - 1
    size = np.bincount(run)
    return np.unique(doc[new_run][size >= least])


def _mask_many(texts: list[str]) -> list[str]:
    """``_mask_one`` of each text, faster on many: each substitution runs only on the texts
    that could hold a match (an ``@`` for e-mail; ``AA99`` for an IBAN; 13 or more digits
    for a card number, 8 or more for a phone number), joined into one string."""
    out = list(texts)
    if not out or any(_SEP in t for t in out):
        return [_mask_one(t) for t in out]
    cp, starts = code_points(out)

    digit = (cp >= 48) & (cp <= 57)
    other = np.flatnonzero(cp > 127)
    if len(other):    # \d also matches other scripts' decimal digits
        digit[other] = _decimal(cp[other])
    dpos = np.flatnonzero(digit)
    # an IBAN starts with two capital letters and two digits
    d2 = dpos[(dpos >= 2) & (dpos + 1 < len(cp))]
    d2 = d2[digit[d2 + 1] & _is_upper(cp[d2 - 1]) & _is_upper(cp[d2 - 2])]
    # an e-mail's "@" follows a letter, digit or one of ._%+-
    at = np.flatnonzero(cp == 64)
    at = at[at > 0]
    before = cp[at - 1]
    at = at[((before | 32) >= 97) & ((before | 32) <= 122) | ((before >= 48) & (before <= 57))
            | np.isin(before, [ord(c) for c in "._%+-"])]
    stages = ((texts_at(starts, at), _sub_email), (texts_at(starts, d2), _sub_iban),
              (_digit_runs(dpos, starts, 2, 13), _sub_card), (_digit_runs(dpos, starts, 3, 8), _sub_phone))
    for which, fn in stages:
        apply_to(out, which, fn)
    return out


@overload
def mask_pii(texts: str) -> str: ...
@overload
def mask_pii(texts: pd.Series) -> pd.Series: ...
def mask_pii(texts):
    """Replace e-mail addresses, IBANs, card numbers and phone numbers with placeholders.

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
