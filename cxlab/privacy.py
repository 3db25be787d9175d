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


def _mask_one(text: str) -> str:
    text = _EMAIL.sub("[EMAIL]", text)
    text = _IBAN.sub(lambda m: "[IBAN]" if _iban_ok(m.group()) else m.group(), text)
    text = _CARD.sub(lambda m: "[CARD]" if _luhn_ok(m.group()) else m.group(), text)
    text = _PHONE.sub(lambda m: "[PHONE]" if _phone_ok(m.group()) else m.group(), text)
    return text


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
    if isinstance(texts, pd.Series):
        return texts.map(lambda t: _mask_one(t) if isinstance(t, str) else t)
    if isinstance(texts, (list, tuple, np.ndarray, pd.Index)):
        return [_mask_one(t) if isinstance(t, str) else t for t in texts]
    if isinstance(texts, float) and np.isnan(texts):
        return texts
    raise TypeError(f"mask_pii takes a string or a list-like of strings, not {type(texts).__name__}")
