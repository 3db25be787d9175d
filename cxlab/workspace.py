"""The workspace: canonical tables in an engine, filled by idempotent, atomic pulls.

The embedded default is a DuckDB file (``data/cxlab.duckdb``) opened through Ibis, so the
analyses written against ``ws.events()`` run unchanged on another Ibis backend. PySpark is
the distributed one tested here: :func:`connect` with a SparkSession (or a ``pyspark://DIR``
target) reads canonical tables written as Parquet by :meth:`Workspace.export_parquet`.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import _lock, privacy
from . import io as cio
from .exceptions import (ExportError, JourneyMapError, SourceChangedError, WorkspaceError,
                         WorkspaceLockedError)
from .journey import JourneyMap, parse_duration

DEFAULT_PATH = Path("data") / "cxlab.duckdb"
#: DuckDB's memory limit during a pull when the workspace was opened without one: beyond it
#: DuckDB spills to ``<workspace file>.tmp``, so a pull's memory does not grow with the file
PULL_MEMORY_LIMIT = "1GB"
MANIFEST = "_cx_loads"
_MANIFEST_COLUMNS = (
    ("load_id", "BIGINT"), ("source", "VARCHAR"), ("file_name", "VARCHAR"), ("sha256", "VARCHAR"),
    ("kind", "VARCHAR"), ("format", "VARCHAR"), ("encoding", "VARCHAR"), ("delimiter", "VARCHAR"),
    ("rows_read", "BIGINT"), ("rows_added", "BIGINT"), ("duplicates_skipped", "BIGINT"),
    ("status", "VARCHAR"), ("started_at", "TIMESTAMPTZ"), ("finished_at", "TIMESTAMPTZ"),
    ("options", "VARCHAR"), ("notes", "VARCHAR"), ("cxlab_version", "VARCHAR"),
    # added with source identity (issue 17); older manifests get them on open
    ("rows_removed", "BIGINT"), ("conflicts_skipped", "BIGINT"), ("replaces", "VARCHAR"),
    ("superseded_by", "BIGINT"),
)
#: manifest statuses of a load whose rows are in the tables (unless ``superseded_by`` is set)
LIVE_STATUSES = ("loaded", "replaced")


@dataclass(frozen=True)
class PullResult:
    """What a pull did.

    ``status`` is ``loaded`` (rows were read and checked; new ones added), ``replaced``
    (the same, after removing the rows of the earlier loads of this source, listed in
    ``replaced``: ``rows_removed`` of them) or ``already_loaded`` (a file with the same
    sha256 was pulled before: nothing read). ``rows_read`` counts the file's data rows,
    ``rows_added`` those written, ``duplicates_skipped`` those whose key was already in the
    workspace with the same content, or earlier in the file (events: customer_id, ts,
    touchpoint, channel; feedback: feedback_id), and ``conflicts_skipped`` those whose key
    was already in the workspace with other content (the earlier row is kept; a corrected
    export is pulled with ``replace=True``).
    """

    source: str
    kind: str
    format: str
    sha256: str
    status: str
    rows_read: int
    rows_added: int
    duplicates_skipped: int
    load_id: int | None
    notes: tuple[str, ...] = field(default=())
    rows_removed: int = 0
    conflicts_skipped: int = 0
    replaced: tuple[int, ...] = field(default=())

    def __str__(self) -> str:
        if self.status == "already_loaded":
            return f"{self.source}: already loaded (sha256 {self.sha256[:12]}), nothing added"
        text = (f"{self.source}: {self.rows_read} rows read as {self.format}, {self.rows_added} "
                f"{self.kind} added, {self.duplicates_skipped} duplicates skipped")
        if self.conflicts_skipped:
            text += f", {self.conflicts_skipped} skipped whose key is already there with other content"
        if self.replaced:
            loads = ", ".join(map(str, self.replaced))
            text += f"; replaced load {loads} ({self.rows_removed} rows removed)"
        return text


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _version() -> str:
    from . import __version__
    return __version__


def _source_changed(info, kind: str, earlier: list[dict]) -> SourceChangedError:
    """The refusal of other content at a source pulled before, naming its loads and the choices."""
    last = earlier[-1]
    when = pd.Timestamp(last["started_at"]).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")
    loads = "load " + ", ".join(str(e["load_id"]) for e in earlier)
    more = f" (the latest of {loads})" if len(earlier) > 1 else ""
    return SourceChangedError(
        info.path, f"this {kind} source was pulled before with other content: load "
        f"{last['load_id']} on {when}, sha256 {str(last['sha256'])[:12]}, {last['rows_added']} rows "
        f"added{more}; this file has sha256 {info.sha256[:12]}. Nothing was added. If it corrects "
        f"that export, pull it with replace=True (CLI --replace) to swap the rows of {loads} for "
        "this file's in one transaction; if it is new data, pull it with append=True (--append) "
        "to add its rows beside them.", earlier=earlier)


class Workspace:
    """A DuckDB-file workspace (the embedded default). Open it with :func:`connect`."""

    engine = "duckdb"

    def __init__(self, path=DEFAULT_PATH, *, read_only: bool = False, memory_limit: str | None = None,
                 wait=None):
        self.path = Path(path)
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise WorkspaceError(f"workspace {self.path} does not exist")
        self.con = _open_duckdb(self.path, read_only=read_only, wait=wait)
        self._raw = self.con.con
        self._raw.execute("SET TimeZone='UTC'")
        self._raw.execute("SET enable_progress_bar=false")
        if memory_limit:
            self._raw.execute(f"SET memory_limit={cio._lit(memory_limit)}")
        self.memory_limit = memory_limit
        self.read_only = read_only
        if not read_only:
            self._create_tables()

    # ------------------------------------------------------------------ set-up
    def _create_tables(self) -> None:
        for kind, cols in cio.COLUMNS.items():
            spec = ", ".join(f"{cio._q(c)} {t}" for c, (t, _) in cols.items())
            self._raw.execute(f"CREATE TABLE IF NOT EXISTS {kind} ({spec}, _load_id BIGINT)")
        spec = ", ".join(f"{c} {t}" for c, t in _MANIFEST_COLUMNS)
        self._raw.execute(f"CREATE TABLE IF NOT EXISTS {MANIFEST} ({spec})")
        have = self._columns(MANIFEST)
        for c, t in _MANIFEST_COLUMNS:  # a manifest written by an earlier cxlab
            if c not in have:
                self._raw.execute(f"ALTER TABLE {MANIFEST} ADD COLUMN {c} {t}")
        privacy.ensure_secret(self._raw)   # the pseudonym key; an older file gets one here

    def _columns(self, table: str) -> dict[str, str]:
        rows = self._raw.execute(f"DESCRIBE {table}").fetchall()
        return {r[0]: r[1] for r in rows}

    # ------------------------------------------------------------------ reading
    def events(self):
        """The ``events`` table (Ibis): canonical columns then properties."""
        return self._public("events")

    def feedback(self):
        """The ``feedback`` table (Ibis)."""
        return self._public("feedback")

    def _public(self, name):
        t = self.con.table(name)
        return t.select([c for c in t.columns if not c.startswith("_")])

    def loads(self) -> pd.DataFrame:
        """The manifest: one row per pull (source, sha256, kind, format, rows, status, times)."""
        return self._raw.execute(f"SELECT * FROM {MANIFEST} ORDER BY load_id").df()

    def pseudonym_key(self) -> bytes:
        """The secret key of this workspace's pseudonyms (:func:`cxlab.privacy.pseudonym`).

        Drawn once (32 random bytes) when the workspace is created or first opened for
        writing, kept in the workspace file only: never show, log or export it.

        Raises
        ------
        cxlab.exceptions.WorkspaceError
            A file made by an earlier cxlab, opened read-only, has no key yet.
        """
        key = privacy.read_secret(self._raw)
        if key is None:
            raise WorkspaceError(f"workspace {self.path} was made by an earlier cxlab and has no "
                                 f"pseudonym key yet: open it once for writing "
                                 f"(cxlab.connect({str(self.path)!r})) to add one")
        return key

    def counts(self) -> dict[str, int]:
        return {k: int(self._raw.execute(f"SELECT count(*) FROM {k}").fetchall()[0][0])
                for k in cio.KINDS}

    def check(self, journey: JourneyMap | None = None):
        """Touchpoints in ``events`` that the journey map does not know (see JourneyMap.check)."""
        return JourneyMap.coerce(journey).check(self.events())

    # ------------------------------------------------------------------ pulling
    def pull(self, path, *, kind: str = "events", format: str = "auto", mapping: dict | None = None,
             tz: str | None = None, ts_format: str | None = None, delimiter: str | None = None,
             scale: str | None = None, language: str | None = None, session_gap=None,
             journey: JourneyMap | None = None, replace: bool = False, append: bool = False,
             max_line_size: int | None = None, memory_limit: str | None = None,
             _in_transaction=None) -> PullResult:
        """Pull an export into the workspace: idempotent and atomic.

        Parameters
        ----------
        path : str or Path
            The export as received (``data/raw/...``); it is only read.
        kind : {"events", "feedback"}
        format : {"auto", "csv", "parquet", "jsonl", "ga4", "survey"}
            ``auto`` goes by the content and the file name.
        mapping : dict, optional
            Canonical column -> column in the file, e.g. ``{"customer_id": "user_id"}``.
            Columns that are neither mapped nor canonical are kept as properties.
        tz : str, optional
            IANA zone of naive timestamps (``"Europe/Rome"``); required when they have none.
        ts_format : str, optional
            strptime layout for non-ISO timestamps (``"%d/%m/%Y %H:%M"``).
        delimiter : str, optional
            CSV delimiter; sniffed among ``,`` ``;`` and tab when not given.
        scale : {"nps", "csat", "ces", "stars"}, optional
            Feedback score scale when the file has no scale column.
        language : str, optional
            ISO code of the feedback text when the file has no language column.
        session_gap : duration, optional
            Inactivity that starts a new session when the file has no session id
            (default: the journey map's, 30min).
        replace : bool, default False
            The file corrects an earlier pull of the same source (same resolved path, same
            kind): remove the rows of that source's earlier loads and add this file's, in one
            transaction.
        append : bool, default False
            The file at a source pulled before holds new data: add its rows beside the
            earlier ones (keys already in the workspace are skipped as usual).
        max_line_size : int, optional
            Longest CSV line accepted, in bytes (default DuckDB's, 2,000,000); a longer one
            is refused with :class:`~cxlab.exceptions.LineTooLongError`, which says the size.
        memory_limit : str, optional
            DuckDB's memory limit for this pull (``"2GB"``); default the workspace's
            ``memory_limit``, else :data:`PULL_MEMORY_LIMIT`. Beyond it DuckDB spills to disk.

        Returns
        -------
        PullResult
            Status ``loaded``, ``replaced`` or ``already_loaded``, rows read, added and
            removed, duplicates and conflicting keys skipped.

        Raises
        ------
        cxlab.exceptions.SourceChangedError
            The source was pulled before with other content and neither ``replace`` nor
            ``append`` says what the new content is.
        cxlab.exceptions.FileChangedError
            The file changed while it was being read.
        cxlab.exceptions.ExportError
            (and its subclasses) naming the file, row and column; the workspace is unchanged.

        Notes
        -----
        A *source* is the file's resolved absolute path (symbolic links followed) and the
        kind pulled; content is known by its sha256. The same content under any name is
        ``already_loaded``; other content at a path pulled before is refused unless
        ``replace`` or ``append`` is given.
        """
        if self.read_only:
            raise WorkspaceError(f"workspace {self.path} is open read-only")
        if kind not in cio.KINDS:
            raise ValueError(f"kind={kind!r} is not one of {cio.KINDS}")
        if replace and append:
            raise ValueError("replace=True and append=True contradict each other: a corrected "
                             "export replaces, new data appends; pass one")
        journey = JourneyMap.coerce(journey)
        gap = session_gap or journey.session_gap
        started = _now()
        tmp = Path(tempfile.mkdtemp(prefix="cxlab-pull-"))
        options = {k: v for k, v in dict(mapping=mapping, tz=tz, ts_format=ts_format,
                                         delimiter=delimiter, scale=scale, language=language,
                                         session_gap=str(session_gap) if session_gap else None,
                                         max_line_size=max_line_size).items()
                   if v is not None}
        try:
            with self._memory_bound(memory_limit):
                read = dict(format=format, mapping=mapping, tz=tz, ts_format=ts_format,
                            delimiter=delimiter, scale=scale, language=language, session_gap=gap,
                            max_line_size=max_line_size)
                return self._pull(path, kind, read, tmp=tmp, started=started, options=options,
                                  replace=replace, append=append, hook=_in_transaction)
        finally:
            for view in ("_cx_stage", "_cx_stage_src"):
                try:
                    self._raw.execute(f"DROP VIEW IF EXISTS {view}")
                except Exception:
                    pass
            shutil.rmtree(tmp, ignore_errors=True)

    @contextlib.contextmanager
    def _memory_bound(self, limit):
        """Run a pull under DuckDB memory limit ``limit`` (or the default), then restore it."""
        self._raw.execute(f"SET memory_limit={cio._lit(limit or self.memory_limit or PULL_MEMORY_LIMIT)}")
        try:
            yield
        finally:
            self._raw.execute(f"SET memory_limit={cio._lit(self.memory_limit)}" if self.memory_limit
                              else "RESET memory_limit")

    def _pull(self, path, kind, read: dict, *, tmp, started, options, replace, append,
              hook) -> PullResult:
        """The body of :meth:`pull`; ``read`` holds the options of :func:`cxlab.io.stage`."""
        before = cio.file_state(path) if Path(path).is_file() else None
        info = cio.sniff(path, format=read["format"], delimiter=read["delimiter"], tmpdir=tmp)
        cio.check_unchanged(path, before)  # the sha256 is of one version of the file
        prior = self._raw.execute(
            f"SELECT load_id FROM {MANIFEST} WHERE sha256 = ? AND kind = ? AND {self._LIVE}",
            [info.sha256, kind]).fetchall()
        if prior:
            return self._record_already_loaded(info, kind, started, options, prior[0][0])
        earlier = self._source_loads(info.path, kind)
        if earlier and not (replace or append):
            raise _source_changed(info, kind, earlier)
        staged = cio.stage(self._raw, path, kind=kind, tmpdir=tmp, info=info, eager=False, **read)
        for old, by in self._raw.execute(
                f"SELECT load_id, superseded_by FROM {MANIFEST} WHERE sha256 = ? AND kind = ? "
                "AND superseded_by IS NOT NULL ORDER BY load_id", [info.sha256, kind]).fetchall():
            staged.notes.append(f"the same content was pulled as load {old}, whose rows load {by} "
                                "replaced")
        if append and earlier:
            staged.notes.append(f"appended beside the rows of load "
                                f"{', '.join(str(e['load_id']) for e in earlier)} of this source")
        replaces = [e["load_id"] for e in earlier] if replace else []
        return self._commit(staged, started, options, hook, replaces=replaces,
                            unchanged=lambda: cio.check_unchanged(path, before))

    _LIVE = f"status IN {LIVE_STATUSES} AND superseded_by IS NULL"

    def _source_loads(self, path, kind) -> list[dict]:
        """The loads of a source (resolved path and kind) whose rows are in the workspace."""
        cur = self._raw.execute(
            f"SELECT load_id, started_at, sha256, rows_added FROM {MANIFEST} WHERE source = ? "
            f"AND kind = ? AND {self._LIVE} ORDER BY load_id", [str(Path(path).resolve()), kind])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def _next_load_id(self) -> int:
        return int(self._raw.execute(f"SELECT coalesce(max(load_id), 0) + 1 FROM {MANIFEST}").fetchall()[0][0])

    def _manifest_row(self, info, kind, fmt, status, rows_read, rows_added, started, options,
                      notes, load_id, *, conflicts=0, removed=0, replaces=()):
        values = [load_id, str(Path(info.path).resolve()), Path(info.path).name, info.sha256, kind,
                  fmt, info.encoding, info.delimiter, rows_read, rows_added,
                  rows_read - rows_added - conflicts, status, started, _now(),
                  json.dumps(options, sort_keys=True, default=str), "\n".join(notes), _version(),
                  removed, conflicts, ",".join(map(str, replaces)) or None, None]
        names = ", ".join(c for c, _ in _MANIFEST_COLUMNS)
        marks = ", ".join("?" for _ in values)
        self._raw.execute(f"INSERT INTO {MANIFEST} ({names}) VALUES ({marks})", values)

    def _record_already_loaded(self, info, kind, started, options, prior_id) -> PullResult:
        load_id = self._next_load_id()
        note = f"same sha256 as load {prior_id}"
        self._manifest_row(info, kind, info.format, "already_loaded", 0, 0, started, options,
                           [note], load_id)
        return PullResult(source=str(info.path), kind=kind, format=info.format, sha256=info.sha256,
                          status="already_loaded", rows_read=0, rows_added=0, duplicates_skipped=0,
                          load_id=load_id, notes=(note,))

    def _commit(self, staged: cio.Staged, started, options, hook, *, replaces=(),
                unchanged=None) -> PullResult:
        """Insert the staged rows in one transaction: read once, then tidy the new rows.

        The staged view raises on a bad row; the transaction is then rolled back and the
        file diagnosed for a typed error naming row and column. After the insert, only
        the new rows (``_load_id``) are touched: session gaps filled, repeated keys within
        the file and keys already in the workspace removed, the data contract checked.
        ``replaces`` lists the loads whose rows go first (a corrected export); ``unchanged``
        raises if the file changed while it was read, before the commit.
        """
        kind, raw, path = staged.kind, self._raw, staged.info.path
        q = cio._q
        key = cio.KEYS[kind]
        raw.execute("BEGIN TRANSACTION")
        open_tx = True
        try:
            existing = self._columns(kind)
            for prop, typ in staged.properties.items():
                if prop not in existing:
                    raw.execute(f"ALTER TABLE {kind} ADD COLUMN {q(prop)} {typ}")
                    existing[prop] = typ
            load_id = self._next_load_id()
            new = f"_load_id = {load_id}"  # the rows of this load
            removed = self._remove_loads(kind, replaces, load_id)
            cols = staged.columns
            select = ", ".join(
                q(c) if c in cio.COLUMNS[kind] or existing[c] == staged.properties[c]
                else f"CAST({q(c)} AS {existing[c]}) AS {q(c)}" for c in cols)
            had_rows = raw.execute(f"SELECT count(*) > 0 FROM {kind}").fetchall()[0][0]
            try:
                raw.execute(f"INSERT INTO {kind} ({', '.join(q(c) for c in cols)}, _load_id) "
                            f"SELECT {select}, {load_id} FROM {q(staged.view)}").fetchall()
            except Exception as exc:
                raw.execute("ROLLBACK")
                open_tx = False
                staged.diagnose(raw)  # raises the typed error of the first bad row
                self._diagnose_casts(staged, existing)
                raise ExportError(path, f"cannot add the rows to the workspace: "
                                        f"{str(exc).splitlines()[0]}") from None
            keys = ", ".join(q(k) for k in key)
            stats = f"count(*), count(DISTINCT hash({keys}))"
            if kind == "events":
                stats += ", count(*) FILTER (WHERE session_id IS NULL)"
            row = raw.execute(f"SELECT {stats} FROM {kind} WHERE {new}").fetchall()[0]
            rows, distinct = int(row[0]), int(row[1])
            if rows == 0:
                what = "has a header and no data rows" if staged.info.base == "csv" else "has no rows"
                raise cio.EmptyExportError(path, f"the file {what}")
            staged.rows = rows
            if kind == "events" and row[2]:
                self._fill_sessions(staged, new, int(row[2]))
            if distinct < rows:  # repeated keys within the file: keep the first
                raw.execute(f"DELETE FROM {kind} WHERE {new} AND rowid IN (SELECT rid FROM "
                            f"(SELECT rowid AS rid, row_number() OVER (PARTITION BY {keys} ORDER BY rowid) "
                            f"AS rn FROM {kind} WHERE {new}) WHERE rn > 1)").fetchall()
            conflicts = self._skip_known_keys(staged, load_id) if had_rows else 0
            added = int(raw.execute(f"SELECT count(*) FROM {kind} WHERE {new}").fetchall()[0][0])
            if added:  # the data contract, checked on what this load wrote, in the engine
                table = self.con.table(kind)
                cio.validate_contract(table.filter(table._load_id == load_id), kind, path=path)
            status = "replaced" if replaces else "loaded"
            self._manifest_row(staged.info, kind, staged.info.format, status, rows, added,
                               started, options, staged.notes, load_id, conflicts=conflicts,
                               removed=removed, replaces=replaces)
            if hook is not None:
                hook()
            if unchanged is not None:
                unchanged()
            raw.execute("COMMIT")
        except BaseException:
            if open_tx:
                raw.execute("ROLLBACK")
            raise
        return PullResult(source=str(path), kind=kind, format=staged.info.format,
                          sha256=staged.info.sha256, status=status, rows_read=rows,
                          rows_added=added, duplicates_skipped=rows - added - conflicts,
                          load_id=load_id, notes=tuple(staged.notes), rows_removed=removed,
                          conflicts_skipped=conflicts, replaced=tuple(replaces))

    def _remove_loads(self, kind: str, load_ids, by: int) -> int:
        """Delete the rows of ``load_ids`` and mark them superseded by load ``by`` (in the
        caller's transaction); returns the number of rows removed."""
        if not load_ids:
            return 0
        ids = ", ".join(str(int(i)) for i in load_ids)
        removed = int(self._raw.execute(f"SELECT count(*) FROM {kind} WHERE _load_id IN ({ids})")
                      .fetchall()[0][0])
        self._raw.execute(f"DELETE FROM {kind} WHERE _load_id IN ({ids})").fetchall()
        self._raw.execute(f"UPDATE {MANIFEST} SET superseded_by = {int(by)} WHERE load_id IN ({ids})")
        return removed

    def _skip_known_keys(self, staged: cio.Staged, load_id: int) -> int:
        """Remove this load's rows whose key is already in the workspace; return how many of
        them had other content there (a conflict, noted; the earlier row is kept)."""
        kind, q = staged.kind, cio._q
        key = cio.KEYS[kind]
        new = f"_load_id = {load_id}"
        content = [c for c in cio.COLUMNS[kind] if c not in key and c != "session_id"]
        old = (f"SELECT {', '.join(q(c) for c in key + tuple(content))} FROM {kind} "
               f"WHERE _load_id <> {load_id}")
        if kind == "events":
            lo, hi = self._raw.execute(f"SELECT min(ts), max(ts) FROM {kind} WHERE {new}").fetchall()[0]
            old = f"{old} AND ts BETWEEN '{lo.isoformat()}' AND '{hi.isoformat()}'"
        join = " AND ".join(f"{kind}.{q(k)} = o.{q(k)}" for k in key)
        differs = " OR ".join(f"{kind}.{q(c)} IS DISTINCT FROM o.{q(c)}" for c in content)
        n, first = self._raw.execute(
            f"SELECT count(DISTINCT {kind}.rowid), min({kind}.{q(key[0])}) FROM {kind} JOIN ({old}) o "
            f"ON {join} WHERE {kind}.{new} AND ({differs})").fetchall()[0]
        if n:
            which = f" (first: {key[0]} {first!r})" if len(key) == 1 else ""
            staged.notes.append(
                f"{n} rows have a key ({', '.join(key)}) already in the workspace with other "
                f"content{which}: the earlier rows are kept; if this export corrects them, pull "
                "it with replace=True (--replace)")
        self._raw.execute(f"DELETE FROM {kind} USING ({old}) o WHERE {kind}.{new} AND {join}").fetchall()
        return int(n)

    def _diagnose_casts(self, staged: cio.Staged, existing: dict[str, str]) -> None:
        """A property whose values do not fit the type the workspace already has for it."""
        for prop, typ in staged.properties.items():
            if existing.get(prop, typ) == typ:
                continue
            q = cio._q(prop)
            hit = self._raw.execute(
                f"SELECT _row, _val FROM (SELECT row_number() OVER () AS _row, CAST({q} AS VARCHAR) AS _val, "
                f"{q} IS NOT NULL AND try_cast({q} AS {existing[prop]}) IS NULL AS _bad "
                f"FROM {cio._q(staged.view + '_src')}) WHERE _bad ORDER BY _row LIMIT 1").fetchall()
            if hit:
                row, val = hit[0]
                raise ExportError(staged.info.path, f"property {prop!r} is {existing[prop]} in the "
                                  f"workspace and {val!r} at row {row} is not; fix the export or pull "
                                  "it into another workspace", row=int(row), column=prop, value=val)

    def _fill_sessions(self, staged: cio.Staged, new: str, n_missing: int) -> None:
        """Derive session ids for new rows whose export left them empty."""
        from .journey import _format_duration

        src = f"(SELECT rowid AS rid, customer_id, ts, session_id FROM events WHERE {new})"
        derived = cio.session_sql(src, ["customer_id", "session_id"], staged.session_gap, extra=", rid")
        self._raw.execute(f"UPDATE events SET session_id = d.session_id FROM ({derived}) d "
                          f"WHERE events.rowid = d.rid AND events.session_id IS NULL").fetchall()
        staged.notes.append(f"session_id derived for {n_missing} rows without one: a new session "
                            f"after {_format_duration(staged.session_gap)} without events")

    # ------------------------------------------------------------------ other
    def export_parquet(self, directory) -> dict[str, Path]:
        """Write ``events``, ``feedback`` and the manifest as Parquet (for Spark and others)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        out = {}
        for name, table in (("events", "events"), ("feedback", "feedback"), ("loads", MANIFEST)):
            target = directory / f"{name}.parquet"
            cols = [c for c in self._columns(table) if not c.startswith("_")]
            self._raw.execute(f"COPY (SELECT {', '.join(cio._q(c) for c in cols)} FROM {table}) "
                              f"TO {cio._lit(target)} (FORMAT parquet)")
            out[name] = target
        return out

    def close(self) -> None:
        try:
            self.con.disconnect()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        try:
            c = self.counts()
            return f"Workspace({str(self.path)!r}: {c['events']} events, {c['feedback']} feedback)"
        except Exception:
            return f"Workspace({str(self.path)!r})"


class SparkWorkspace:
    """A read-only workspace on Spark over canonical tables written as Parquet.

    Pull into the DuckDB workspace, :meth:`Workspace.export_parquet` to a shared folder
    (or write the canonical tables there with Spark), then ``cxlab.connect(spark, path=DIR)``.
    """

    engine = "pyspark"

    def __init__(self, session, path):
        import ibis

        self.path = Path(path)
        self.session = session
        self.con = ibis.pyspark.connect(session)
        self._tables = {}
        for name in ("events", "feedback", "loads"):
            f = self.path / f"{name}.parquet"
            if f.exists():
                self._tables[name] = self.con.read_parquet(_hadoop_literal(f), table_name=f"cx_{name}")
        if "events" not in self._tables:
            raise WorkspaceError(f"no events.parquet in {self.path}: write the canonical tables "
                                 "there first (Workspace.export_parquet)")

    def events(self):
        return self._tables["events"]

    def feedback(self):
        if "feedback" not in self._tables:
            raise WorkspaceError(f"no feedback.parquet in {self.path}")
        return self._tables["feedback"]

    def loads(self) -> pd.DataFrame:
        return self._tables["loads"].execute() if "loads" in self._tables else pd.DataFrame()

    def check(self, journey: JourneyMap | None = None):
        return JourneyMap.coerce(journey).check(self.events())

    def pull(self, *args, **kwargs):
        raise WorkspaceError("the Spark workspace reads canonical Parquet tables and cannot pull "
                             "exports: pull into a DuckDB workspace (cxlab.connect()) and "
                             "export_parquet() to the folder Spark reads")

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"SparkWorkspace({str(self.path)!r})"


def _open_duckdb(path: Path, *, read_only: bool, wait):
    """An Ibis DuckDB connection to ``path``; while another process holds the file's lock,
    retry with backoff (0.05 s doubling up to 2 s) until ``wait`` has passed.

    Raises
    ------
    WorkspaceLockedError
        The lock was still held (at once when ``wait`` is None): who holds it, how, what to do.
    """
    import time

    import ibis

    seconds = _wait_seconds(wait)
    deadline, delay = time.monotonic() + seconds, 0.05
    while True:
        try:
            return ibis.duckdb.connect(database=str(path), read_only=read_only)
        except Exception as exc:
            if not _lock.is_lock_error(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                found = _lock.holders(path, exc, read_only=read_only)
                text = _lock.message(path, found, read_only=read_only,
                                     waited=str(wait) if seconds else None)
                raise WorkspaceLockedError(path, text, holders=found,
                                           waited=wait if seconds else None) from None
            time.sleep(min(delay, left))
            delay = min(2 * delay, 2.0)


def _wait_seconds(wait) -> float:
    """Seconds of ``wait`` (``"10min"``, a Timedelta; None: 0), refusing durations without a unit."""
    if wait is None:
        return 0.0
    try:
        return parse_duration(wait, key="wait").total_seconds()
    except JourneyMapError as exc:
        raise ValueError(f"wait={wait!r}: {exc.reason}") from None


def _hadoop_literal(path) -> str:
    """``path`` with Hadoop's glob characters escaped, so Spark reads exactly that file."""
    return re.sub(r"([\\\[\]{}*?])", r"\\\1", str(path))


def _spark_session():
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master("local[2]").appName("cxlab")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .getOrCreate())


def connect(target=None, *, path=None, read_only: bool = False, memory_limit: str | None = None,
            wait=None):
    """Open a workspace.

    Parameters
    ----------
    target : None, str, Path or SparkSession
        ``None``: the DuckDB file in ``$CXLAB_WORKSPACE`` or ``data/cxlab.duckdb``.
        A path (or ``duckdb://PATH``): that DuckDB file, created when missing.
        A SparkSession: canonical Parquet tables in ``path``.
        ``pyspark://DIR``: a local Spark session over the Parquet tables in DIR.
    read_only : bool
        Open the DuckDB file for reading: any number of readers share it, but no process
        can write while one is open (an explorer, a report notebook are readers).
    wait : str or Timedelta, optional
        While another process holds the file (a writer, or readers when writing), retry
        until this duration (``"10min"``) has passed. ``None``: fail at once.

    Raises
    ------
    WorkspaceLockedError
        The file is held by another process: the message says which (pid, command line,
        read-only or writing) and what to do.

    Examples
    --------
    >>> ws = cxlab.connect("data/cxlab.duckdb")           # doctest: +SKIP
    >>> ws.pull("data/raw/events.csv", tz="Europe/Rome")  # doctest: +SKIP
    """
    if target is None:
        target = os.environ.get("CXLAB_WORKSPACE") or DEFAULT_PATH
    if type(target).__name__ == "SparkSession":
        if path is None:
            raise ValueError("connect(spark_session) needs path= the folder of canonical Parquet tables")
        return SparkWorkspace(target, path)
    text = str(target)
    if text.startswith("pyspark://"):
        return SparkWorkspace(_spark_session(), text[len("pyspark://"):])
    if text.startswith("duckdb://"):
        text = text[len("duckdb://"):]
    return Workspace(text, read_only=read_only, memory_limit=memory_limit, wait=wait)
