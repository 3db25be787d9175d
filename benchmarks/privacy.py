"""mask_pii: seconds to mask 100k texts as a list (the fast path) and one at a time.

Three corpora of ``--texts`` texts:
* ``real``: the real texts of benchmarks/sentiment.py (airline tweets, clothing reviews,
  SENTIPOLC Italian tweets), almost none holding personal data;
* ``simulated``: ``simulate_journeys`` feedback (template texts, some with planted e-mails,
  phones, IBANs and cards);
* ``planted``: the real texts, one in five with an Italian form appended (codice fiscale,
  partita IVA, lower-case or dashed IBAN, dotted card, ``02/1234567``, accented e-mail).

The list path is checked against the one-at-a-time path on every corpus. ``--against REV``
also times ``cxlab/privacy.py`` as it was at a git revision, in the same run (the machine's
load changes from run to run).

    python benchmarks/privacy.py [--texts 100000] [--repeat 3] [--against 32a3e2a]
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
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


def privacy_at(rev: str):
    """cxlab/privacy.py as it was at a git revision, imported inside the cxlab package."""
    import cxlab

    src = subprocess.run(["git", "-C", str(HERE.parent), "show", f"{rev}:cxlab/privacy.py"],
                         check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="cxlab-privacy-")) / "privacy.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"{cxlab.__name__}._privacy_{rev}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    from cxlab import privacy

    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--against", default=None, help="also time cxlab/privacy.py at this git revision")
    args = ap.parse_args()
    versions = {"current": privacy} | ({args.against: privacy_at(args.against)} if args.against else {})
    print(f"{'version':<10} {'corpus':<10} {'texts':>8} {'changed':>8} {'list s':>8} {'one by one s':>13}")
    for name, texts in corpora(args.texts).items():
        for version, module in versions.items():
            many = module.mask_pii(texts)
            one = [module._mask_one(t) for t in texts]
            assert many == one, f"{version}, {name}: the list path differs from the one-at-a-time path"
            t_many = best_of(lambda: module.mask_pii(texts), args.repeat)
            t_one = best_of(lambda: [module._mask_one(t) for t in texts], 1)
            changed = sum(a != b for a, b in zip(many, texts))
            print(f"{version:<10} {name:<10} {len(texts):>8,} {changed:>8,} {t_many:>8.2f} {t_one:>13.2f}")


if __name__ == "__main__":
    main()
