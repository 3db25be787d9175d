"""The explorer's aggregates kept with the workspace, so a second page, a reload or a new
kernel reads them instead of recomputing them.

Where: ``<workspace>.cache/explorer/<key>/`` next to the workspace file. ``key`` is the
sha256 of what the aggregates depend on: the workspace's content
(:func:`cxlab.reports.workspace_fingerprint`, plus the row counts and last timestamp of
events and feedback, so content that came without a pull is seen too), the journey map,
the parameters (segment, alpha, value per customer, window), cxlab's version and this
layout's version. A workspace that changed has another key: its old aggregates are never
read (the few newest keys are kept, older ones removed).

What: nothing but what the page shows, in formats that load without running code
(no pickle: Parquet, ``numpy.load(allow_pickle=False)``, JSON):

- ``meta.json``: the key's inputs, small values, and the size and sha256 of every other
  file (a file that does not match is damaged);
- ``base.parquet`` and ``dropoff_model.parquet``: the whole-journey pain-point table and its
  drop-off model summary;
- ``customers.npz``: per customer (an integer code, no id) the channel and segment of the
  first event, the channels and segments ever used (a boolean matrix), the funnel steps
  reached, the funnel entry day and conversion: what a channel or segment filter picks;
- ``feedback.parquet``: the scored feedback's display columns
  (:data:`cxlab.explore.FEEDBACK_COLUMNS`: verbatims masked, no raw text, no customer or
  feedback id, no property column);
- ``reach.npz``: who reached which touchpoint when (customers as integer codes, no id);
- ``terms.npz``: the complaint terms' document-term matrix (built from masked text);
- ``moments.npz``: per customer (integer codes) the first conversion, the research path and
  its first day, the first share, return and repeat conversion
  (:class:`cxlab.explore_moments.MomentIndex`; the paths themselves in meta.json);
- ``sentiment.npz``: the text-sentiment model, by :meth:`cxlab.sentiment.FittedSentiment.save`
  (read back by ``load``, which validates the file).

How: built once under an exclusive ``flock`` on ``<workspace>.cache/explorer/.lock`` (a
second page opening meanwhile waits, then reads), written into a temporary directory and
renamed into place, so a reader sees a whole set or none. A damaged set (a file missing,
truncated, of another size or checksum, unreadable) is reported with a warning, rebuilt and
replaced. When the folder cannot be written (a read-only file system, no permission) the
aggregates stay in memory for this process and :attr:`Store.note` says so in one line.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

#: the build's stages, as the page shows them
STAGES = ("fitting the text-sentiment model on the team's rated feedback",
          "scoring the journey's pain points (drop-off model)",
          "scoring and masking the feedback",
          "indexing each customer's channels, segments and funnel steps",
          "counting who reached each touchpoint",
          "indexing the complaint terms",
          "following the research paths and the circle",
          "keeping the aggregates with the workspace for the next page")
READING = "reading the aggregates kept with the workspace"
WAITING = "waiting for another page that is building the same aggregates"
FORMAT = 3
KEEP = 4          # key folders kept per workspace (the newest)
_FILES = ("base.parquet", "dropoff_model.parquet", "feedback.parquet", "customers.npz", "reach.npz", "terms.npz",
          "moments.npz")


class CacheDamaged(Exception):
    """A kept file is missing, truncated or not what meta.json says."""


def cache_root(workspace_path) -> Path:
    """``<workspace>.cache/explorer`` for a workspace file."""
    p = Path(workspace_path)
    return p.with_name(p.name + ".cache") / "explorer"


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, (pd.Timedelta, pd.Timestamp)):
        return str(v)
    return v


def store_for(data, events, *, journey, segment, alpha, value_per_customer, window) -> Store | None:
    """The :class:`Store` of a Workspace kept in a file, or None (frames, in-memory workspaces)."""
    path = getattr(data, "path", None)
    if path is None or not hasattr(data, "loads") or not Path(path).is_file():
        return None
    from . import __version__
    from .reports import workspace_fingerprint

    def counts(table):
        if table is None:
            return None
        row = table.aggregate(n=table.count(), last=table.ts.max()).to_pandas().iloc[0]
        return [int(row["n"]), str(row["last"])]

    fb = data.feedback() if hasattr(data, "feedback") else None
    inputs = {"format": FORMAT, "cxlab": __version__,
              "workspace": workspace_fingerprint(data)["fingerprint"],
              "events": counts(events), "feedback": counts(fb) if fb is not None and "ts" in fb.columns else None,
              "journey": journey.to_dict(), "segment": segment, "alpha": alpha,
              "value_per_customer": _jsonable(value_per_customer), "window": str(pd.Timedelta(window))}
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
    return Store(cache_root(path), key, inputs)


class Store:
    """One key's folder: :meth:`load_or_build` reads it, or builds and writes it."""

    def __init__(self, root: Path, key: str, inputs: dict):
        self.root, self.key, self.inputs = Path(root), key, inputs
        self.path = self.root / key[:32]
        self.note = ""
        self.status = None    # "read", "built", "rebuilt", "memory"

    # ------------------------------------------------------------------ the one entry point
    def load_or_build(self, build, *, stage=None) -> dict:
        """The aggregates: read when kept and whole, else ``build()`` and keep them."""
        def say(name):
            if stage is not None:
                stage.note(name)

        def kept(how=""):
            say(READING)
            state = self.read()                  # CacheDamaged when a file is not whole
            self.status, self.note = "read", f"read from {self.path}{how}"
            return state

        damaged = None
        if (self.path / "meta.json").exists():
            try:
                return kept()
            except CacheDamaged as err:
                damaged = err
        try:
            with self._lock(lambda: say(WAITING)):
                if damaged is None and (self.path / "meta.json").exists():   # built by another page meanwhile
                    try:
                        return kept(" (built by another page)")
                    except CacheDamaged as err:
                        damaged = err
                if damaged is not None:
                    warnings.warn(f"explorer cache {self.path} is damaged ({damaged}): rebuilding it",
                                  RuntimeWarning, stacklevel=3)
                state = build()
                if stage is not None:
                    stage.stage(len(STAGES) - 1)
                self.write(state)
                self.status = "rebuilt" if damaged is not None else "built"
                self.note = f"built and kept in {self.path}"
                return state
        except _Unwritable as err:
            state = err.state if err.state is not None else build()
            self.status = "memory"
            self.note = (f"the aggregates could not be kept next to the workspace ({err.reason}): "
                         "built in memory for this page only")
            return state

    # ------------------------------------------------------------------ lock
    @contextlib.contextmanager
    def _lock(self, waiting):
        import fcntl

        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fh = open(self.root / ".lock", "a+b")  # noqa: SIM115 - closed below
        except OSError as err:
            raise _Unwritable(_reason(err)) from err
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                waiting()
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()

    # ------------------------------------------------------------------ write
    def write(self, state: dict) -> None:
        """Write ``state`` into a temporary folder, then rename it into place (whole or not at all)."""
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{self.key[:12]}-", dir=self.root))
        except OSError as err:
            raise _Unwritable(_reason(err), state) from err
        try:
            meta = _write_state(tmp, state)
            meta["inputs"] = self.inputs
            meta["key"] = self.key
            meta["files"] = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                             for p in sorted(tmp.iterdir())}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=_jsonable))
            if self.path.exists():          # a damaged set: moved aside, then removed
                aside = self.root / f".damaged-{self.key[:12]}-{os.getpid()}-{time.monotonic_ns()}"
                os.rename(self.path, aside)
                shutil.rmtree(aside, ignore_errors=True)
            os.rename(tmp, self.path)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _Unwritable(_reason(err), state) from err
        self._prune()

    def _prune(self) -> None:
        """Keep the :data:`KEEP` newest key folders (and no leftover temporary folder)."""
        with contextlib.suppress(OSError):
            dirs = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
            dirs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
            for old in dirs[KEEP:]:
                if old != self.path:
                    shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------ read
    def read(self) -> dict:
        """The kept aggregates; :class:`CacheDamaged` when anything is not as written."""
        try:
            meta = json.loads((self.path / "meta.json").read_text())
            if meta.get("key") != self.key or meta.get("format") != FORMAT:
                raise CacheDamaged("meta.json belongs to another key or format")
            for name, want in meta["files"].items():
                p = self.path / name
                if p.stat().st_size != want["bytes"] or _sha256(p) != want["sha256"]:
                    raise CacheDamaged(f"{name} is not the file written (size or sha256 differ)")
            missing = [n for n in _FILES if n not in meta["files"]]
            if missing:
                raise CacheDamaged(f"{missing[0]} is missing")
            with contextlib.suppress(OSError):
                os.utime(self.path)         # most recently used: kept by _prune
            return _read_state(self.path, meta)
        except CacheDamaged:
            raise
        except Exception as err:  # noqa: BLE001 - whatever a damaged file raises: rebuild
            raise CacheDamaged(f"{type(err).__name__}: {err}") from err


class _Unwritable(Exception):
    def __init__(self, reason: str, state: dict | None = None):
        super().__init__(reason)
        self.reason, self.state = reason, state


def _reason(err: OSError) -> str:
    import errno

    what = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
            errno.EPERM: "not permitted", errno.ENOSPC: "no space left"}.get(err.errno, err.strerror or str(err))
    return f"{what}: {err.filename or ''}".rstrip(": ")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- state <-> files
def _write_state(d: Path, state: dict) -> dict:
    base = state["base"]
    attrs = {k: v for k, v in base.attrs.items() if k != "dropoff_model"}
    model = base.attrs.get("dropoff_model")
    table = pd.DataFrame(base)
    table.attrs = {}
    objects = {name: [c for c in frame.columns if frame[c].dtype == object]
               for name, frame in (("base", table), ("feedback", state["feedback"]))}
    table.to_parquet(d / "base.parquet", index=False)
    (model if isinstance(model, pd.DataFrame) else pd.DataFrame()).reset_index(drop=True).to_parquet(
        d / "dropoff_model.parquet", index=False)
    state["feedback"].to_parquet(d / "feedback.parquet", index=False)
    np.savez(d / "customers.npz", **state["customers"].arrays())
    np.savez(d / "reach.npz", **state["reach"].arrays())
    np.savez(d / "moments.npz", **state["moments"].arrays())
    X, vocab, neg = state["terms"]
    if X is None:
        np.savez(d / "terms.npz", neg=neg)
    else:
        X = X.tocsr()
        np.savez(d / "terms.npz", neg=neg, data=X.data, indices=X.indices, indptr=X.indptr,
                 shape=np.array(X.shape, dtype=np.int64), vocab=np.array([str(v) for v in vocab], dtype=str))
    model_file = None
    if state["sentiment_model"] is not None:
        state["sentiment_model"].save(d / "sentiment.npz")
        model_file = "sentiment.npz"
    return {"format": FORMAT, "base_attrs": {k: _jsonable(v) for k, v in attrs.items()},
            "value_given": _jsonable(state["value_given"]), "reach": state["reach"].meta(),
            "customers": state["customers"].meta(), "moments": state["moments"].meta(),
            "sentiment": model_file, "object_columns": objects}


def _read_state(d: Path, meta: dict) -> dict:
    from scipy import sparse

    from .explore import FEEDBACK_COLUMNS, _Customers, _ReachIndex

    def objects(frame, name):
        """Columns written from object dtype come back as such (missing as None, not NaN)."""
        for c in meta["object_columns"][name]:
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
        return frame

    base = objects(pd.read_parquet(d / "base.parquet"), "base")
    base.attrs.update({k: (np.nan if v is None else v) for k, v in meta["base_attrs"].items()})
    model = pd.read_parquet(d / "dropoff_model.parquet")
    if len(model.columns):
        base.attrs["dropoff_model"] = model
    f = objects(pd.read_parquet(d / "feedback.parquet"), "feedback")
    if list(f.columns) != list(FEEDBACK_COLUMNS):
        raise CacheDamaged("feedback.parquet has other columns")
    with np.load(d / "reach.npz", allow_pickle=False) as z:
        reach = _ReachIndex.from_saved({k: z[k] for k in _ReachIndex.ARRAYS}, meta["reach"])
    with np.load(d / "customers.npz", allow_pickle=False) as z:
        customers = _Customers.from_saved({k: z[k] for k in _Customers.ARRAYS}, meta["customers"])
    from .explore_moments import MomentIndex

    with np.load(d / "moments.npz", allow_pickle=False) as z:
        moments = MomentIndex.from_saved({k: z[k] for k in z.files}, meta["moments"])
    if moments.n != customers.n:
        raise CacheDamaged("moments.npz and customers.npz disagree")
    if customers.n != reach.n_customers or (len(f) and int(f["_cust"].max()) >= customers.n):
        raise CacheDamaged("customers.npz, reach.npz and feedback.parquet disagree")
    with np.load(d / "terms.npz", allow_pickle=False) as z:
        neg = z["neg"]
        if "data" in z:
            X = sparse.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            vocab = z["vocab"].astype(object)
            if X.shape != (int(neg.sum()), len(vocab)):
                raise CacheDamaged("terms.npz: matrix and vocabulary disagree")
        else:
            X = vocab = None
    if len(neg) != len(f):
        raise CacheDamaged("terms.npz and feedback.parquet disagree")
    sentiment = None
    if meta.get("sentiment"):
        from .sentiment import FittedSentiment

        sentiment = FittedSentiment.load(d / meta["sentiment"])   # validates; ModelFileError -> damaged
    value = meta.get("value_given")
    return {"sentiment_model": sentiment, "base": base, "value_given": value, "feedback": f, "reach": reach,
            "customers": customers, "terms": (X, vocab, neg), "moments": moments}
