"""mask_pii: seconds to mask 100k texts as a list (the fast path) and one at a time.

Three corpora of ``--texts`` texts:
* ``real``: the real texts of benchmarks/sentiment.py (airline tweets, clothing reviews,
  SENTIPOLC Italian tweets), almost none holding personal data;
* ``simulated``: ``simulate_journeys`` feedback (template texts, some with planted e-mails,
  phones, IBANs and cards);
* ``planted``: the real texts, one in five with an Italian form appended (codice fiscale,
  partita IVA, lower-case or dashed IBAN, dotted card, ``02/1234567``, accented e-mail).

The list path is checked against the one-at-a-time path on every corpus.

    python benchmarks/privacy.py [--texts 100000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PLANTED = ["codice fiscale RSSMRA85T10A562S", "P.IVA 00743110157", "iban it60x0542811101000000123456",
           "IBAN IT60-X054-2811-1010-0000-0123-456", "carta 4111.1111.1111.1111", "chiamate lo 02/1234567",
           "scrivete a andrè.rossi@università.it", "cell 347 123 4567"]


def corpora(n: int) -> dict[str, list[str]]:
    from cxlab.datasets import simulate_journeys
    from sentiment import real_corpus

    real = real_corpus(n).text.astype(str).tolist()
    k = n
    while True:
        _, fb, _ = simulate_journeys(k * 7, seed=1)
        sim = fb.text.dropna().astype(str).tolist()
        if len(sim) >= n:
            break
        k *= 2
    rng = np.random.default_rng(0)
    planted = [t + " " + PLANTED[rng.integers(len(PLANTED))] if rng.random() < 0.2 else t for t in real]
    return {"real": real, "simulated": sim[:n], "planted": planted}


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    from cxlab.privacy import _mask_one, mask_pii

    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'corpus':<10} {'texts':>8} {'changed':>8} {'list s':>8} {'one by one s':>13}")
    for name, texts in corpora(args.texts).items():
        many = mask_pii(texts)
        one = [_mask_one(t) for t in texts]
        assert many == one, f"{name}: the list path differs from the one-at-a-time path"
        t_many = best_of(lambda: mask_pii(texts), args.repeat)
        t_one = best_of(lambda: [_mask_one(t) for t in texts], 1)
        changed = sum(a != b for a, b in zip(many, texts))
        print(f"{name:<10} {len(texts):>8,} {changed:>8,} {t_many:>8.2f} {t_one:>13.2f}")


if __name__ == "__main__":
    main()
