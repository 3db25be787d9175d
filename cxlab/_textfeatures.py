"""Text features for the sentiment model, computed on a whole corpus at once.

Scikit-learn's vectorisers build every token and character n-gram as a Python string, one
text at a time (about 1,150 n-grams for a 230-character review). Here a corpus is joined
into one string and turned into an array of code points; tokens, word bigrams and
character n-grams become 64-bit polynomial hashes computed with numpy from prefix sums, so
a string is only built for the terms of the vocabulary. A term's hash is the hash of its
text, ``H(s) = sum((ord(s[k]) + 1) * B**k) mod 2**64``, so a saved vocabulary (plain
strings) gives back the same columns when loaded.

Definitions (see also :mod:`cxlab.sentiment`)
---------------------------------------------
tokens
    Runs of word characters (``\\w``: letters, digits, underscore) joined by inner
    apostrophes (``l'albergo``, ``it's``), and every other non-space character on its own
    (``!``, ``,``, ``€``).
negation scope
    Every token after a negation word, up to the next ``. , : ; ! ?`` or the end of the
    text, that starts with a letter or digit is prefixed ``NEG_``.
word features
    Token unigrams and bigrams (``NEG_`` included) in at least ``min_df`` texts; TF-IDF
    with sublinear term frequency ``1 + ln(tf)``, smooth IDF ``ln((1 + n) / (1 + df)) + 1``
    and each text's vector L2-normalised (scikit-learn's ``TfidfVectorizer`` definitions).
character features
    The character n-grams of each token padded with a space on both sides (``" ok "`` ->
    ``" o"``, ``"ok"``, ``"k "``, ``" ok"``, ...; the lone space left out), counted over the
    text's tokens, kept when they occur in at least ``min_df`` texts, weighted by the same
    smooth IDF, and divided by ``g * sqrt(number of tokens)`` (``g`` is fixed at fit so a
    typical text's character vector has length 1). Because a text's character vector is
    the sum of its tokens' vectors, it is kept factored: a text x token count matrix times
    a token x n-gram matrix. A linear model's score for a text is then its token counts
    times each token's score, and a fit never builds the text x n-gram matrix.
"""
from __future__ import annotations

from dataclasses import InitVar, dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.linalg.blas import daxpy as _daxpy, ddot as _ddot
from threadpoolctl import threadpool_limits

SEP = "\x1f"            # joins texts; Python counts it as white space, so no token spans it
_B = 0x100000001B3      # odd, so invertible modulo 2**64
_MASK = 2 ** 64 - 1
_UB = np.uint64(_B)
_UBINV = np.uint64(pow(_B, -1, 2 ** 64))
_SPACE, _WORD, _APOS, _OTHER = 0, 1, 2, 3
_CLAUSE_END = np.array([ord(c) for c in ".,:;!?"], dtype=np.uint32)
_CLASS_TABLE = None


def _classes(cp: np.ndarray) -> np.ndarray:
    """Character class of each code point: space, word (``\\w``), apostrophe, other."""
    global _CLASS_TABLE
    if _CLASS_TABLE is None:
        table = np.full(0x10000, _OTHER, dtype=np.uint8)
        for i in range(0x10000):
            ch = chr(i)
            if ch.isspace():
                table[i] = _SPACE
            elif ch.isalnum() or ch == "_":
                table[i] = _WORD
        table[ord("'")] = _APOS
        _CLASS_TABLE = table
    out = np.empty(len(cp), dtype=np.uint8)
    low = cp < 0x10000
    out[low] = _CLASS_TABLE[cp[low]]
    if not low.all():
        high = np.flatnonzero(~low)
        for i in high:
            ch = chr(int(cp[i]))
            out[i] = _SPACE if ch.isspace() else _WORD if (ch.isalnum() or ch == "_") else _OTHER
    return out


def string_hash(s: str) -> int:
    """The polynomial hash of one string (as the vectorised code computes it)."""
    h, p = 0, 1
    for ch in s:
        h = (h + (ord(ch) + 1) * p) & _MASK
        p = (p * _B) & _MASK
    return h


_POWERS: dict = {}


def _powers(n: int, base: np.uint64) -> np.ndarray:
    """``base**i`` for i = 0..n (mod 2**64), from a cache that grows as needed."""
    have = _POWERS.get(int(base))
    if have is None or len(have) < n + 1:
        size = max(n + 1, 2 * (0 if have is None else len(have)), 1 << 16)
        out = np.empty(size, dtype=np.uint64)
        out[0] = 1
        out[1:] = base
        np.cumprod(out, out=out)
        _POWERS[int(base)] = have = out
    return have[: n + 1]


def code_points(texts: list[str], joined: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The texts joined by :data:`SEP` as an array of code points, and where each text starts."""
    joined = SEP.join(texts) if joined is None else joined
    cp = np.frombuffer(joined.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    starts = np.zeros(len(texts), dtype=np.int64)
    if len(texts) > 1:
        starts[1:] = np.cumsum(lengths[:-1] + 1)
    return cp, starts


def texts_at(starts: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """The texts (by index, each once) that hold the given positions of the joined string."""
    return np.unique(np.searchsorted(starts, pos, side="right") - 1)


def apply_to(texts: list[str], which: np.ndarray, fn) -> None:
    """Replace ``texts[i]`` by ``fn(texts[i])`` for the texts ``which``, in one call on them
    joined by :data:`SEP` (one call per text if ``fn`` made or removed a separator)."""
    if not len(which):
        return
    out = fn(SEP.join(texts[i] for i in which)).split(SEP)
    if len(out) != len(which):
        out = [fn(texts[i]) for i in which]
    for i, t in zip(which.tolist(), out):
        texts[i] = t


@dataclass
class Corpus:
    """Texts joined into one array of code points, with prefix hashes."""

    text: str                 # the joined texts
    cp: np.ndarray            # code points (uint32)
    starts: np.ndarray        # start offset of each text in ``text``
    prefix: np.ndarray        # prefix[i] = hash of text[:i] (uint64)
    inv: np.ndarray           # B**-i
    pw: np.ndarray            # B**i

    @classmethod
    def of(cls, texts: list[str]) -> Corpus:
        text = SEP.join(texts)
        cp, starts = code_points(texts, text)
        n = len(cp)
        pw = _powers(n + 16, _UB)
        inv = _powers(n, _UBINV)
        prefix = np.empty(n + 1, dtype=np.uint64)      # in place: each new 8-byte array of
        prefix[0] = 0                                  # the corpus' length costs page faults
        body = prefix[1:]
        np.add(cp, 1, out=body, dtype=np.uint64)
        np.multiply(body, pw[:n], out=body)
        np.cumsum(body, out=body)
        return cls(text, cp, starts, prefix, inv, pw)

    def hash(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Hashes of ``text[a:b]`` for arrays of offsets."""
        return (self.prefix[b] - self.prefix[a]) * self.inv[a]


def hash_strings(strings) -> np.ndarray:
    """Polynomial hashes of a list of strings (equal to :func:`string_hash` of each)."""
    strings = list(strings)
    if not strings:
        return np.zeros(0, dtype=np.uint64)
    c = Corpus.of(strings)
    lengths = np.fromiter((len(s) for s in strings), dtype=np.int64, count=len(strings))
    return c.hash(c.starts, c.starts + lengths)


_NEG_PREFIX = string_hash("NEG_")
_SPACE_HASH = string_hash(" ")


@dataclass
class Tokens:
    """The tokens of a corpus: where they are, which text they belong to, their hashes."""

    corpus: Corpus
    start: np.ndarray         # offset in corpus.text
    end: np.ndarray
    doc: np.ndarray           # text index
    base: np.ndarray          # hash of the token's text
    hash: np.ndarray          # hash of the token as a feature (NEG_ prefixed in a negation scope)
    length: np.ndarray        # length of the feature token (NEG_ counts 4)
    negated: np.ndarray       # bool
    n_docs: int

    def strings(self, which=None) -> list[str]:
        """The feature strings of the tokens (all, or those at the positions ``which``)."""
        idx = np.arange(len(self.start)) if which is None else np.asarray(which)
        text = self.corpus.text
        return [("NEG_" if n else "") + text[a:b]
                for a, b, n in zip(self.start[idx].tolist(), self.end[idx].tolist(), self.negated[idx].tolist())]


def tokenize(texts: list[str], negations_hashes: np.ndarray, *, negation: bool = True) -> Tokens:
    """Tokens of already normalised (lower-cased) texts, with negation scopes marked."""
    corpus = Corpus.of(texts)
    cp = corpus.cp
    n = len(cp)
    cls = _classes(cp)
    is_word = cls == _WORD
    prev_word = np.zeros(n, dtype=bool)
    prev_word[1:] = is_word[:-1]
    next_word = np.zeros(n, dtype=bool)
    next_word[:-1] = is_word[1:]
    joining = (cls == _APOS) & prev_word & next_word
    inword = is_word | joining
    single = ((cls == _OTHER) | (cls == _APOS)) & ~joining
    prev_in = np.zeros(n, dtype=bool)
    prev_in[1:] = inword[:-1]
    next_in = np.zeros(n, dtype=bool)
    next_in[:-1] = inword[1:]
    start = np.flatnonzero((inword & ~prev_in) | single)
    end = np.flatnonzero((inword & ~next_in) | single) + 1
    doc = np.searchsorted(corpus.starts, start, side="right") - 1
    base = corpus.hash(start, end)
    length = end - start
    negated = np.zeros(len(start), dtype=bool)
    if negation and len(start):
        idx = np.arange(len(start))
        is_neg = np.isin(base, negations_hashes)
        clause_end = (length == 1) & np.isin(cp[start], _CLAUSE_END)
        first = np.ones(len(start), dtype=bool)
        first[1:] = doc[1:] != doc[:-1]
        last_neg = np.maximum.accumulate(np.where(is_neg, idx, -1))
        neg_before = np.empty_like(last_neg)
        neg_before[0] = -1
        neg_before[1:] = last_neg[:-1]
        # a clause end clears the scope at its own position, a new text just before its first token
        reset = np.maximum.accumulate(np.where(clause_end, 2 * idx, np.where(first, 2 * idx - 1, -2)))
        alnum_first = is_word[start] & (cp[start] != ord("_"))
        negated = (2 * neg_before > reset) & alnum_first
    h = base.copy()
    if negated.any():
        h[negated] = np.uint64(_NEG_PREFIX) + corpus.pw[4] * base[negated]
    return Tokens(corpus, start, end, doc, base, h, length + 4 * negated, negated, len(texts))


def word_terms(tok: Tokens, ngrams: tuple) -> tuple:
    """(doc, term hash, index of the term's first token, number of tokens) of every word
    n-gram occurrence."""
    lo, hi = int(ngrams[0]), int(ngrams[1])
    docs, hashes, firsts, sizes = [], [], [], []
    m = len(tok.hash)
    pw = tok.corpus.pw
    for k in range(lo, hi + 1):
        if m < k:
            break
        i = np.arange(m - k + 1)
        ok = tok.doc[i] == tok.doc[i + k - 1]
        i = i[ok]
        h = tok.hash[i].copy()
        length = tok.length[i].copy()
        for j in range(1, k):
            h += pw[length] * np.uint64(_SPACE_HASH)
            length += 1
            h += pw[length] * tok.hash[i + j]
            length += tok.length[i + j]
        docs.append(tok.doc[i])
        hashes.append(h)
        firsts.append(i)
        sizes.append(np.full(len(i), k, dtype=np.int64))
    if not docs:
        return (np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return np.concatenate(docs), np.concatenate(hashes), np.concatenate(firsts), np.concatenate(sizes)


def term_strings(tok: Tokens, first: np.ndarray, size: np.ndarray) -> list[str]:
    """The text of word n-grams from the index of their first token and their size."""
    first, size = np.asarray(first), np.asarray(size)
    parts = [tok.strings(np.minimum(first + j, len(tok.hash) - 1)) for j in range(int(size.max(initial=1)))]
    return [" ".join(parts[j][i] for j in range(k)) for i, k in enumerate(size.tolist())]


def char_grams(words: list[str], ngrams: tuple) -> tuple:
    """(word index, n-gram hash, start in the padded text, length) of the character n-grams
    of each word padded with a space on both sides, the lone space left out; and the
    :class:`Corpus` of the padded words."""
    lo, hi = int(ngrams[0]), int(ngrams[1])
    padded = [" " + w + " " for w in words]
    c = Corpus.of(padded)
    lengths = np.fromiter((len(p) for p in padded), dtype=np.int64, count=len(padded))
    ends = c.starts + lengths
    n = len(c.cp)
    pos = np.arange(n)
    owner = np.searchsorted(c.starts, pos, side="right") - 1
    space = np.uint64(_SPACE_HASH)
    rows, hashes, where, sizes = [], [], [], []
    for k in range(lo, hi + 1):
        p = pos[: max(n - k + 1, 0)]
        ok = p + k <= ends[owner[: len(p)]]
        p = p[ok]
        h = c.hash(p, p + k)
        if k == 1:
            keep = h != space
            p, h = p[keep], h[keep]
        rows.append(owner[p])
        hashes.append(h)
        where.append(p)
        sizes.append(np.full(len(p), k, dtype=np.int64))
    return np.concatenate(rows), np.concatenate(hashes), np.concatenate(where), np.concatenate(sizes), c


@dataclass
class TextFeatures:
    """A fitted vocabulary: word n-grams and character n-grams with their IDF weights."""

    word_ngrams: tuple
    char_ngrams: tuple | None
    word_vocab: np.ndarray        # strings
    word_idf: np.ndarray
    char_vocab: np.ndarray        # strings (may be empty)
    char_idf: np.ndarray
    char_scale: float             # g
    negation: bool = True
    hashes: InitVar[tuple | None] = None      # of both vocabularies, when the fit already has them

    def __post_init__(self, hashes):
        wh, ch = hashes or (hash_strings(self.word_vocab), hash_strings(self.char_vocab))
        self._word_index = pd.Index(wh)
        self._char_index = pd.Index(ch) if len(self.char_vocab) else None
        for index in (self._word_index, self._char_index):     # build the hash tables now, not on first use
            if index is not None and len(index):
                index.get_indexer(index[:1])

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(cls, prepared: list[str], *, word_ngrams=(1, 2), char_ngrams=(1, 5), min_df=1,
            max_features=None, negation=True, negations_hashes=None) -> tuple[TextFeatures, Design]:
        tok = tokenize(prepared, negations_hashes, negation=negation)
        n = tok.n_docs
        d, h, first, size = word_terms(tok, word_ngrams)
        codes, uniq = pd.factorize(h, sort=False)
        counts = sp.csr_matrix((np.ones(len(codes), dtype=np.float32), (d, codes)),
                               shape=(n, len(uniq)))
        counts.sum_duplicates()
        df = np.bincount(counts.indices, minlength=len(uniq))
        keep = np.flatnonzero(df >= min_df)
        if max_features is not None and len(keep) > max_features:
            keep = keep[np.argsort(-df[keep], kind="stable")[:max_features]]
            keep.sort()
        occurrence = _first_occurrence(codes, len(uniq))[keep]
        vocab = np.array(term_strings(tok, first[occurrence], size[occurrence]), dtype=str)
        word_idf = np.log((1.0 + n) / (1.0 + df[keep])) + 1.0
        Xw = _tfidf(counts[:, keep], word_idf)

        char_vocab, char_idf, scale, chars = np.array([], dtype=str), np.zeros(0), 1.0, None
        char_hashes = np.zeros(0, dtype=np.uint64)
        if char_ngrams is not None:
            C, words = _token_counts(tok)
            rows, gh, gpos, glen, pc = char_grams(words, char_ngrams)
            gcodes, guniq = pd.factorize(gh, sort=False)
            Wc = sp.csr_matrix((np.ones(len(gcodes), dtype=np.float32), (rows, gcodes)),
                               shape=(len(words), len(guniq)))
            Wc.sum_duplicates()
            gdf = _doc_frequency((C > 0).astype(np.float32), (Wc > 0).astype(np.float32))
            gkeep = np.flatnonzero(gdf >= min_df)
            if max_features is not None and len(gkeep) > max_features:
                gkeep = gkeep[np.argsort(-gdf[gkeep], kind="stable")[:max_features]]
                gkeep.sort()
            occ = _first_occurrence(gcodes, len(guniq))[gkeep]
            char_vocab = np.array([pc.text[a:a + k] for a, k in zip(gpos[occ].tolist(), glen[occ].tolist())],
                                  dtype=str)
            char_idf = np.log((1.0 + n) / (1.0 + gdf[gkeep])) + 1.0
            char_hashes = guniq[gkeep]
            Wc = (Wc[:, gkeep] @ sp.diags(char_idf.astype(np.float32))).tocsr()
            ntok = np.asarray(C.sum(axis=1)).ravel()
            sample = np.arange(min(n, 2000))
            norms = np.sqrt(np.asarray((C[sample] @ Wc).power(2).sum(axis=1)).ravel())
            ratio = norms / np.sqrt(np.maximum(ntok[sample], 1))
            ratio = ratio[ntok[sample] > 0]
            scale = float(np.median(ratio)) if len(ratio) and np.median(ratio) > 0 else 1.0
            chars = (_scaled(C, ntok, scale), Wc)
        feats = cls(tuple(word_ngrams), None if char_ngrams is None else tuple(char_ngrams), vocab, word_idf,
                    char_vocab, char_idf, scale, negation, hashes=(uniq[keep], char_hashes))
        return feats, Design(Xw, *(chars or (None, None)))

    # ------------------------------------------------------------------ transform
    def transform(self, prepared: list[str], negations_hashes) -> Design:
        tok = tokenize(prepared, negations_hashes, negation=self.negation)
        n = tok.n_docs
        d, h, _, _ = word_terms(tok, self.word_ngrams)
        col = self._word_index.get_indexer(h)
        hit = col >= 0
        counts = sp.csr_matrix((np.ones(int(hit.sum()), dtype=np.float32), (d[hit], col[hit])),
                               shape=(n, len(self.word_vocab)))
        counts.sum_duplicates()
        Xw = _tfidf(counts, self.word_idf)
        if self.char_ngrams is None or self._char_index is None:
            return Design(Xw, None, None)
        C, words = _token_counts(tok)
        rows, gh, _, _, _ = char_grams(words, self.char_ngrams)
        gcol = self._char_index.get_indexer(gh)
        ok = gcol >= 0
        Wc = sp.csr_matrix((self.char_idf[gcol[ok]].astype(np.float32), (rows[ok], gcol[ok])),
                           shape=(len(words), len(self.char_vocab)))
        Wc.sum_duplicates()
        ntok = np.asarray(C.sum(axis=1)).ravel()
        return Design(Xw, _scaled(C, ntok, self.char_scale), Wc)


def _first_occurrence(codes: np.ndarray, n: int) -> np.ndarray:
    """Index of the first occurrence of each code 0..n-1."""
    first = np.full(n, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    return first


def _token_counts(tok: Tokens) -> tuple[sp.csr_matrix, list[str]]:
    """Texts x distinct tokens (by their text, without NEG_) count matrix, and the tokens."""
    codes, uniq = pd.factorize(tok.base, sort=False)
    first = _first_occurrence(codes, len(uniq))
    text = tok.corpus.text
    words = [text[a:b] for a, b in zip(tok.start[first].tolist(), tok.end[first].tolist())]
    C = sp.csr_matrix((np.ones(len(codes), dtype=np.float32), (tok.doc, codes)), shape=(tok.n_docs, len(uniq)))
    C.sum_duplicates()
    return C, words


def _doc_frequency(Cb: sp.csr_matrix, Wb: sp.csr_matrix, chunk: int = 4000) -> np.ndarray:
    """In how many texts each character n-gram occurs (texts x tokens x n-grams)."""
    df = np.zeros(Wb.shape[1], dtype=np.int64)
    for a in range(0, Cb.shape[0], chunk):
        P = Cb[a:a + chunk] @ Wb
        df += np.bincount(P.indices, minlength=Wb.shape[1])
    return df


def _scaled(C: sp.csr_matrix, ntok: np.ndarray, g: float) -> sp.csr_matrix:
    s = 1.0 / (g * np.sqrt(np.maximum(ntok, 1)))
    return (sp.diags(s.astype(np.float32)) @ C).tocsr()


def _tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    X = counts.tocsr(copy=True).astype(np.float32)
    X.data = (1.0 + np.log(X.data)) * idf.astype(np.float32)[X.indices]
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return (sp.diags((1.0 / norms).astype(np.float32)) @ X).tocsr()


@dataclass
class Design:
    """The features of a set of texts: word TF-IDF, and the character block as
    ``C @ Wc`` (texts x tokens, scaled; tokens x n-grams, IDF-weighted), kept factored."""

    Xw: sp.csr_matrix
    C: sp.csr_matrix | None
    Wc: sp.csr_matrix | None

    @property
    def n(self) -> int:
        return self.Xw.shape[0]

    @property
    def widths(self) -> tuple[int, int]:
        return self.Xw.shape[1], (0 if self.Wc is None else self.Wc.shape[1])

    def matvec(self, w: np.ndarray) -> np.ndarray:
        """X @ w for a weight vector (word weights first, then character weights)."""
        fw, _ = self.widths
        out = self.Xw @ w[:fw]
        if self.C is not None:
            out = out + self.C @ (self.Wc @ w[fw:])
        return out

    def rmatvec(self, r: np.ndarray) -> np.ndarray:
        """X.T @ r."""
        parts = [self.Xw.T @ r]
        if self.C is not None:
            parts.append(self.Wc.T @ (self.C.T @ r))
        return np.concatenate(parts)

    def matmat(self, W: np.ndarray) -> np.ndarray:
        """X @ W.T for a (classes x features) weight matrix."""
        fw, _ = self.widths
        out = np.asarray(self.Xw @ W[:, :fw].T)
        if self.C is not None:
            out = out + np.asarray(self.C @ (self.Wc @ W[:, fw:].T))
        return out

    def column_sums(self, rows: np.ndarray, *, binary: bool) -> np.ndarray:
        """Per feature, the number of the given texts where it occurs (word block;
        ``binary``) and the n-gram's weighted count over them (character block)."""
        Xw = self.Xw[rows]
        w = np.asarray((Xw > 0).sum(axis=0) if binary else Xw.sum(axis=0)).ravel()
        if self.C is None:
            return w
        tok = np.asarray(self.C[rows].sum(axis=0)).ravel()
        c = np.asarray(self.Wc.T @ tok).ravel()
        return np.concatenate([w, c])

    def materialise(self) -> sp.csr_matrix:
        """The full texts x features matrix (for tests and small data)."""
        if self.C is None:
            return self.Xw
        return sp.hstack([self.Xw, (self.C @ self.Wc)], format="csr")


def _lbfgs(fun, x0: np.ndarray, *, gtol: float, max_iter: int, memory: int = 10) -> tuple[np.ndarray, int]:
    """Minimise a smooth convex function with limited-memory BFGS (two-loop recursion,
    backtracking line search on the Armijo condition). Stops when the largest absolute
    gradient component is at most ``gtol`` or the objective stops decreasing.

    scipy's L-BFGS-B gives the same optimum but spends most of a fit in its own bookkeeping
    at half a million unbounded parameters (about 30 ms an iteration, against 5 ms here).
    The two-loop updates run in place (BLAS ``daxpy``), a third faster than numpy's
    ``q -= a * y``, which allocates a temporary per update. Run it with BLAS limited to one
    thread (:func:`one_blas_thread`): the vectors are too short for BLAS threads to pay, and
    the number of threads changes the rounding and with it where the fit stops.
    """
    x = np.array(x0, dtype=np.float64)
    f, g = fun(x)
    S, Y, rho = [], [], []
    it = 0
    for it in range(1, max_iter + 1):
        if np.abs(g).max() <= gtol:
            break
        q = g.copy()
        alphas = []
        for s_, y_, r_ in zip(reversed(S), reversed(Y), reversed(rho)):
            a = r_ * _ddot(s_, q)
            _daxpy(y_, q, a=-a)
            alphas.append(a)
        if S:
            q *= _ddot(S[-1], Y[-1]) / _ddot(Y[-1], Y[-1])
        else:
            q /= max(np.linalg.norm(q), 1e-12)
        for (s_, y_, r_), a in zip(zip(S, Y, rho), reversed(alphas)):
            _daxpy(s_, q, a=a - r_ * _ddot(y_, q))
        d = np.negative(q, out=q)
        slope = _ddot(g, d)
        if slope >= 0:          # not a descent direction: restart from the gradient
            S, Y, rho = [], [], []
            d = -g / max(np.linalg.norm(g), 1e-12)
            slope = _ddot(g, d)
        step = 1.0
        for _ in range(30):
            x_new = x + step * d
            f_new, g_new = fun(x_new)
            if f_new <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        s_, y_ = x_new - x, g_new - g
        sy = _ddot(s_, y_)
        if sy > 1e-10:
            S.append(s_)
            Y.append(y_)
            rho.append(1.0 / sy)
            if len(S) > memory:
                S.pop(0), Y.pop(0), rho.pop(0)
        done = abs(f - f_new) <= 1e-10 * max(abs(f), abs(f_new), 1.0)
        x, f, g = x_new, f_new, g_new
        if done:
            break
    return x, it


def one_blas_thread():
    """A context in which BLAS runs on one thread (the fits run in parallel threads of
    their own; letting each BLAS call start threads too made them twice as slow on two
    cores, and made the result depend on the machine's thread count)."""
    return threadpool_limits(limits=1, user_api="blas")


def fit_logistic(X: Design, y: np.ndarray, *, C: float = 1.0, scale: np.ndarray | None = None,
                 tol: float = 1e-4, max_iter: int = 1000) -> tuple[np.ndarray, float, int]:
    """Binary logistic regression with balanced class weights and an L2 penalty, fitted
    with L-BFGS on the factored design (scikit-learn's ``LogisticRegression(C=C,
    class_weight="balanced")`` objective: the weighted mean log-loss plus
    ``||w||^2 / (2 C sum(weights))``, intercept not penalised).

    ``scale``: fit on ``X * scale`` (each feature multiplied, e.g. naive-Bayes weights);
    the returned weights are for the scaled features. Returns (weights, intercept, iterations).
    """
    y = np.asarray(y, dtype=bool)
    n = len(y)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == n:
        raise ValueError("a binary fit needs both outcomes")
    sw = np.where(y, n / (2.0 * n_pos), n / (2.0 * (n - n_pos)))
    total = sw.sum()
    sign = np.where(y, 1.0, -1.0)
    nf = sum(X.widths)
    s = None if scale is None else np.asarray(scale, dtype=np.float64)

    def f(theta):
        w, b = theta[:-1], theta[-1]
        z = np.asarray(X.matvec((w if s is None else w * s).astype(np.float32))).astype(np.float64) + b
        loss = np.logaddexp(0.0, -sign * z)
        p = 1.0 / (1.0 + np.exp(-z))
        r = sw * (p - y)
        grad = np.empty_like(theta)
        xr = np.asarray(X.rmatvec(r.astype(np.float32))).astype(np.float64)
        grad[:-1] = (xr if s is None else xr * s) / total + w / (C * total)
        grad[-1] = r.sum() / total
        return float((sw * loss).sum() / total + (w @ w) / (2 * C * total)), grad

    x, it = _lbfgs(f, np.zeros(nf + 1), gtol=tol, max_iter=max_iter)
    return x[:-1], float(x[-1]), it
