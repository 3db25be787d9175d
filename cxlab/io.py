"""Read journey and voice exports into the canonical ``events`` and ``feedback`` tables.

The adapters never load a whole export into pandas: DuckDB reads the file, every check
runs as SQL over it, and only the first offending row of a failed check comes back, so
the error can name the file, the row and the column.

Formats
-------
``csv``      comma, semicolon or tab separated, gzip or not; encoding detected among
             UTF-8, UTF-8 with BOM and cp1252/latin-1; a decimal comma is accepted when
             the delimiter is ``;``.
``parquet``  any Parquet file with the needed columns.
``jsonl``    JSON Lines (one object per line), gzip or not.
``ga4``      the Google Analytics 4 BigQuery export schema (JSON Lines or Parquet).
``survey``   a survey export CSV (respondent id, date, score, comment) into ``feedback``.

Rows are numbered from 1 at the first data row (the header is not a row); for CSV the
message also gives the line of the file (row + 1 when no field spans lines).

Timestamps: values with an offset (``Z``, ``+02:00``) are converted to UTC; naive values
need ``tz=`` (an IANA zone such as ``Europe/Rome``) and are read as wall-clock time there.
A file that mixes naive and offset values is refused. Formats other than ISO 8601 need an
explicit ``ts_format=`` (strptime codes, e.g. ``"%d/%m/%Y %H:%M"``); nothing is guessed.
Naive times that a clock change in ``tz`` skipped (read with the offset before the change)
or repeated (read as the later occurrence) are counted and noted with the rule applied
(:mod:`cxlab._clockchanges`).
"""
from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io as _io
import json
import re
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from . import _clockchanges
from .exceptions import (
    EmptyExportError,
    ExportError,
    FileChangedError,
    LineTooLongError,
    MissingColumnError,
    NullValueError,
    SchemaError,
    ScoreRangeError,
    TimestampError,
    UnreadableExportError,
    did_you_mean,
)

KINDS = ("events", "feedback")
FORMATS = ("auto", "csv", "parquet", "jsonl", "ga4", "survey")
SCALES = {"nps": (0.0, 10.0), "csat": (1.0, 5.0), "ces": (1.0, 7.0), "stars": (1.0, 5.0)}
#: what a score says, per scale: ``(negative, neutral, positive)`` inclusive score ranges.
#: NPS detractors 0-6, passives 7-8, promoters 9-10; stars and CSAT 1-2 / 3 / 4-5; CES is
#: read as the CES 2.0 agreement scale ("the company made it easy...", 1-7, 7 = easiest),
#: so 1-3 is negative, 4 neutral, 5-7 positive. Shared by sentiment labels and filters.
SCORE_CLASSES = {
    "nps": ((0, 6), (7, 8), (9, 10)),
    "stars": ((1, 2), (3, 3), (4, 5)),
    "csat": ((1, 2), (3, 3), (4, 5)),
    "ces": ((1, 3), (4, 4), (5, 7)),
}


def in_score_class(score, scale, label: str):
    """True where a score falls in ``label``'s range (``negative``/``neutral``/``positive``) of
    its row's scale (:data:`SCORE_CLASSES`); False for missing scores and unknown scales."""
    import numpy as np

    k = ("negative", "neutral", "positive").index(label)
    score = np.asarray(score, dtype="float64")
    scale = np.asarray([str(x).lower() if x is not None else "" for x in np.asarray(scale, dtype=object)],
                       dtype=object)
    out = np.zeros(score.shape, dtype=bool)
    for name, ranges in SCORE_CLASSES.items():
        lo, hi = ranges[k]
        out |= (scale == name) & (score >= lo) & (score <= hi)
    return out

#: canonical columns: name -> (DuckDB type, required)
EVENTS_COLUMNS = {
    "customer_id": ("VARCHAR", True),
    "ts": ("TIMESTAMPTZ", True),
    "touchpoint": ("VARCHAR", True),
    "channel": ("VARCHAR", False),
    "session_id": ("VARCHAR", False),
    "value": ("DOUBLE", False),
}
FEEDBACK_COLUMNS = {
    "feedback_id": ("VARCHAR", True),
    "customer_id": ("VARCHAR", False),
    "ts": ("TIMESTAMPTZ", True),
    "touchpoint": ("VARCHAR", False),
    "channel": ("VARCHAR", False),
    "score": ("DOUBLE", False),
    "scale": ("VARCHAR", False),
    "text": ("VARCHAR", False),
    "language": ("VARCHAR", False),
}
COLUMNS = {"events": EVENTS_COLUMNS, "feedback": FEEDBACK_COLUMNS}
#: the columns that identify a row: a second row with the same key is a duplicate
KEYS = {"events": ("customer_id", "ts", "touchpoint", "channel"), "feedback": ("feedback_id",)}

_OFFSET_RE = r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"
_SAMPLE_BYTES = 1 << 16
_CHUNK = 1 << 22
_DEFAULT_GAP = "30min"


# --------------------------------------------------------------------------- helpers
def _q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def _lit(value) -> str:
    """An SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def check_tz(tz: str | None) -> str | None:
    """Return ``tz`` if it is a known IANA time zone, else raise a clear ValueError."""
    if tz is None:
        return None
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"tz={tz!r} is not a known IANA time zone (e.g. 'Europe/Rome', 'UTC')") from None
    return str(tz)


@dataclass
class FileInfo:
    """What the sniffing pass learnt about a file (and its sha256)."""

    path: Path
    sha256: str
    size: int
    compressed: bool
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    decimal_comma: bool = False
    columns: list[str] = field(default_factory=list)
    read_path: Path | None = None  # a UTF-8 copy when the source was cp1252/latin-1
    link: Path | None = None  # a plain-named link DuckDB reads when the name holds glob characters
    max_line_size: int | None = None  # longest CSV line accepted (DuckDB's default when None)
    base: str = "csv"  # how the bytes are laid out: csv, parquet or jsonl


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def file_state(path) -> tuple[int, int, int, int]:
    """What changes when a file is written: (size, mtime_ns, ctime_ns, inode).

    The ctime cannot be set back by the writer, so an edit that keeps the size and
    restores the modification time is still seen; a file replaced by a rename has a new inode.
    """
    st = Path(path).resolve().stat()
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def check_unchanged(path, before: tuple[int, int, int, int]) -> None:
    """Raise :class:`FileChangedError` if ``path`` is no longer as :func:`file_state` saw it."""
    try:
        now = file_state(path)
    except OSError:
        now = None
    if now != before:
        what = "was removed" if now is None else (
            f"changed size ({before[0]:,} -> {now[0]:,} bytes)" if now[0] != before[0]
            else "was modified")
        raise FileChangedError(path, f"the file {what} while it was being read, so its sha256 and "
                                     "rows may not match; nothing was added: pull it again once the "
                                     "export is complete")


#: characters a path may hold and still be read literally by DuckDB, which expands
#: ``* ? [ ]`` as globs, ``~`` as the home folder and ``scheme://`` as a remote file
_PLAIN_PATH = re.compile(r"[\w./ -]+")


def _literal_path(path: Path, tmpdir: Path) -> Path | None:
    """A path DuckDB reads as exactly ``path``: None when the absolute path is plain, else a
    symbolic link with a plain name in ``tmpdir`` (a copy where links are not allowed)."""
    target = path.resolve()
    if _PLAIN_PATH.fullmatch(str(target)):
        return None
    link = Path(tempfile.mkdtemp(prefix="src-", dir=tmpdir)) / ("export" + "".join(
        s for s in target.suffixes[-2:] if _PLAIN_PATH.fullmatch(s)))
    try:
        link.symlink_to(target)
    except OSError:
        import shutil

        shutil.copyfile(target, link)
    return link


def _looks_binary(sample: bytes) -> bool:
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 13))
    return controls / len(sample) > 0.01


def _detect_format(path: Path, head: bytes, compressed: bool) -> str:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for ext, fmt in ((".parquet", "parquet"), (".pq", "parquet"), (".csv", "csv"), (".tsv", "csv"),
                     (".txt", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl")):
        if name.endswith(ext):
            if head.startswith(b"PAR1") and fmt != "parquet":
                raise UnreadableExportError(path, f"this is a Parquet file named {ext}; "
                                                  "pass format='parquet' (or rename it)")
            return fmt
    if head.startswith(b"PAR1") and not compressed:
        return "parquet"
    raise ExportError(path, "cannot tell the format from the file name; pass format= one of "
                            f"{FORMATS[1:]}")


def _scan_text(path: Path, compressed: bool, tmpdir: Path) -> tuple[str, str, Path | None, str]:
    """One streaming pass: sha256 of the stored bytes, gzip integrity, encoding.

    Returns (sha256, encoding, utf8_copy_or_None, decoded_sample). cp1252/latin-1 files
    are transcoded to a UTF-8 copy in ``tmpdir`` for DuckDB; the source is never touched.
    """
    h = hashlib.sha256()
    sample = bytearray()
    utf8_ok = True
    decoder = codecs.getincrementaldecoder("utf-8")()
    first = True
    bom = False

    class _Hashing(_io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def readable(self):
            return True

        def readinto(self, b):
            data = self.f.read(len(b))
            h.update(data)
            b[: len(data)] = data
            return len(data)

    raw = open(path, "rb")
    try:
        stream = _io.BufferedReader(_Hashing(raw), _CHUNK)
        reader = gzip.GzipFile(fileobj=stream) if compressed else stream
        total = 0
        while True:
            try:
                chunk = reader.read(_CHUNK)
            except (EOFError, OSError, zlib.error) as exc:
                raise UnreadableExportError(path, f"the gzip stream is truncated or corrupt ({exc})") from None
            if not chunk:
                break
            total += len(chunk)
            if first:
                first = False
                if chunk.startswith(codecs.BOM_UTF8):
                    bom = True
                if _looks_binary(chunk[:_SAMPLE_BYTES]):
                    raise UnreadableExportError(
                        path, "this is not a text file (binary content); is it really a CSV/JSON export?")
            if len(sample) < _SAMPLE_BYTES:
                sample.extend(chunk[: _SAMPLE_BYTES - len(sample)])
            if utf8_ok:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8_ok = False
        # drain the raw file so the hash covers every byte, even after a gzip end marker
        while raw.read(_CHUNK):
            pass
        if utf8_ok:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8_ok = False
    finally:
        raw.close()
    if total == 0:
        raise EmptyExportError(path, "the file is empty")
    if utf8_ok:
        encoding = "utf-8-sig" if bom else "utf-8"
        text = bytes(sample).decode("utf-8", errors="ignore")
        return h.hexdigest(), encoding, None, text.lstrip("\ufeff")
    # not UTF-8: cp1252 unless it uses bytes cp1252 leaves undefined, then latin-1
    encoding = "cp1252"
    opener = gzip.open if compressed else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            try:
                chunk.decode("cp1252")
            except UnicodeDecodeError:
                encoding = "latin-1"
                break
    out = Path(tempfile.mkstemp(suffix=".csv", dir=tmpdir)[1])
    with opener(path, "rb") as f, open(out, "w", encoding="utf-8", newline="") as w:
        text_stream = _io.TextIOWrapper(f, encoding=encoding, newline="")
        for chunk in iter(lambda: text_stream.read(_CHUNK), ""):
            w.write(chunk)
    return h.hexdigest(), encoding, out, bytes(sample).decode(encoding)


def _sniff_delimiter(path: Path, text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(text) >= _SAMPLE_BYTES - 1 and len(lines) > 1:
        lines = lines[:-1]  # the last sampled line may be cut
    if not lines:
        raise EmptyExportError(path, "the file is empty")
    best = None
    for delim in (",", ";", "\t"):
        rows = list(csv.reader(lines[:50], delimiter=delim))
        widths = {len(r) for r in rows}
        if len(rows[0]) > 1 and len(widths) == 1:
            score = len(rows[0])
            if best is None or score > best[1]:
                best = (delim, score)
    if best is None:
        # fall back to the header alone (multi-line quoted fields confuse the sample)
        for delim in (",", ";", "\t"):
            if len(next(csv.reader([lines[0]], delimiter=delim))) > 1:
                return delim
        header = lines[0][:120]
        other = next((c for c in "|:^~ " if c in lines[0]), None)
        hint = f" (it seems to use {other!r})" if other else ""
        raise ExportError(path, f"cannot find the column delimiter: the header {header!r} does not "
                                f"split on ',', ';' or tab{hint}; pass delimiter=", row=None)
    return best[0]


def sniff(path, *, format: str = "auto", delimiter: str | None = None, tmpdir=None) -> FileInfo:
    """Check a file and learn how to read it: format, compression, encoding, delimiter.

    Raises :class:`EmptyExportError` or :class:`UnreadableExportError` for files that are
    empty, truncated, corrupt or binary.
    """
    path = Path(path)
    if not path.exists():
        raise ExportError(path, "file not found")
    if path.is_dir():
        raise ExportError(path, "is a directory, not a file")
    size = path.stat().st_size
    if size == 0:
        raise EmptyExportError(path, "the file is empty (0 bytes)")
    with open(path, "rb") as f:
        head = f.read(8)
    compressed = head.startswith(b"\x1f\x8b")
    if format not in FORMATS:
        raise ValueError(f"format={format!r} is not one of {FORMATS}" + did_you_mean(format, FORMATS))
    fmt = _detect_format(path, head, compressed) if format == "auto" else format
    base = "parquet" if fmt == "parquet" else "csv" if fmt in ("csv", "survey") else "jsonl"
    if fmt == "ga4":
        base = "parquet" if head.startswith(b"PAR1") else "jsonl"
    info = FileInfo(path=path, sha256="", size=size, compressed=compressed, format=fmt, base=base,
                    link=_literal_path(path, Path(tmpdir or tempfile.gettempdir())))
    if base == "parquet":
        if compressed or not head.startswith(b"PAR1"):
            raise UnreadableExportError(path, "not a Parquet file (no PAR1 magic bytes at the start)")
        info.sha256 = sha256_file(path)
        return info
    if head.startswith(b"PAR1"):
        raise UnreadableExportError(path, f"this is a Parquet file, not {base.upper()}; pass format='parquet'")
    sha, encoding, copy, text = _scan_text(path, compressed, Path(tmpdir or tempfile.gettempdir()))
    info.sha256, info.encoding, info.read_path = sha, encoding, copy
    if base == "csv":
        info.delimiter = delimiter or _sniff_delimiter(path, text)
        info.decimal_comma = info.delimiter == ";"
        header = text.splitlines()[0] if text.splitlines() else ""
        info.columns = [c.strip() for c in next(csv.reader([header], delimiter=info.delimiter), [])]
        seen = set()
        for i, c in enumerate(info.columns):
            if not c:
                raise ExportError(path, f"column {i + 1} of the header has no name", row=None)
            if c in seen:
                raise ExportError(path, f"the header names column {c!r} twice", column=c)
            seen.add(c)
    return info


# --------------------------------------------------------------------------- reading
def _reader_sql(info: FileInfo) -> str:
    """A DuckDB table function that reads the file as it is."""
    src = _lit(info.read_path or info.link or info.path.resolve())
    if info.base == "csv":
        comp = "gzip" if (info.compressed and info.read_path is None) else "none"
        columns = ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in info.columns)
        return (f"read_csv({src}, delim={_lit(info.delimiter)}, header=true, quote='\"', "
                f"escape='\"', columns={{{columns}}}, compression='{comp}', "
                "null_padding=false, strict_mode=true, auto_detect=false"
                + (f", max_line_size={int(info.max_line_size)}" if info.max_line_size else "") + ")")
    if info.base == "parquet":
        return f"read_parquet({src})"
    # JSON Lines: keep timestamp-looking strings as strings so naive/offset is ours to judge
    comp = "gzip" if info.compressed else "none"
    return (f"read_json({src}, format='newline_delimited', compression='{comp}', "
            "timestampformat='%%cxlab-no-auto%%', dateformat='%%cxlab-no-auto%%', "
            "sample_size=-1, maximum_object_size=16777216)")


def _wrap_duckdb_error(info: FileInfo, exc: Exception) -> ExportError:
    msg = str(exc).split("\n")
    first = msg[0]
    line = re.search(r"[Ll]ine:? (\d+)", str(exc))
    row = int(line.group(1)) - 1 if line else None
    long = re.search(r"Maximum line size of (\d+) bytes exceeded\. Actual Size: ?(\d+)", str(exc))
    if long:
        limit, size = int(long.group(1)), int(long.group(2))
        at = f"line {row + 1}" if row is not None else "a line"
        return LineTooLongError(
            info.path, f"{at} of the file is {size:,} bytes, longer than the {limit:,} bytes a CSV "
            "line may have (DuckDB's max_line_size); an unclosed quote makes such lines, so check "
            f"that row first; if the field is really that long, pass max_line_size={size + 1024} "
            f"(CLI --max-line-size {size + 1024})", row=row)
    if "gzip" in str(exc).lower() or "GZIP" in str(exc):
        return UnreadableExportError(info.path, f"the gzip stream is truncated or corrupt ({first})")
    if info.format in ("parquet",) or "parquet" in str(exc).lower() or "magic bytes" in str(exc):
        return UnreadableExportError(info.path, f"cannot read the Parquet file: {first}")
    detail = first.replace("Invalid Input Error: ", "")
    hint = ""
    if "Expected Number of Columns" in str(exc) or "columns" in str(exc).lower():
        hint = " (a row has a different number of fields than the header: a wrong delimiter or an unquoted delimiter inside a value?)"
    return ExportError(info.path, f"cannot parse the file: {detail}{hint}", row=row)


def source_columns(con, info: FileInfo) -> dict[str, str]:
    """Column name -> DuckDB type of the file as read."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {_reader_sql(info)}").fetchall()
    except Exception as exc:  # duckdb raises several types
        raise _wrap_duckdb_error(info, exc) from None
    return {r[0]: r[1] for r in rows}


# --------------------------------------------------------------------------- canonical
@dataclass
class Staged:
    """A pulled export, as a DuckDB view of canonical columns plus properties."""

    view: str
    kind: str
    info: FileInfo
    rows: int
    properties: dict[str, str]  # extra column -> DuckDB type
    mapping: dict[str, str]
    tz: str | None
    scale: str | None
    notes: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)  # results of the check scan (eager mode)
    raws: dict[str, str] = field(default_factory=dict)  # column -> SQL of its raw text
    ts_format: str | None = None
    local_ts: bool = False  # the source view has ``_local_ts``, the naive local time tz= converts
    session_gap: pd.Timedelta = pd.Timedelta(_DEFAULT_GAP)
    has_session: bool = False  # the export carries session ids (maybe with gaps)

    @property
    def columns(self) -> list[str]:
        """Canonical columns then properties, in table order."""
        return list(COLUMNS[self.kind]) + list(self.properties)

    def diagnose(self, con) -> None:
        """Run every row-level check over the file; raise the typed error of the first
        problem found (naming row and column). Returns when the file is clean."""
        _check(con, self)


def _ts_expr(src: str, src_type: str, tz: str | None,
             ts_format: str | None) -> tuple[str, str | None, str | None]:
    """SQL for the UTC timestamp, the SQL of the raw text (for messages) and the SQL of the
    naive local time that ``tz`` converts (None when there is none), whose skipped and
    repeated wall times are counted (:mod:`cxlab._clockchanges`)."""
    c = _q(src)
    t = src_type.upper()
    if t.startswith("TIMESTAMP WITH TIME ZONE") or t == "TIMESTAMPTZ":
        return f"CAST({c} AS TIMESTAMPTZ)", None, None
    if t.startswith("TIMESTAMP") or t == "DATE":
        if tz is None:
            return "CAST(NULL AS TIMESTAMPTZ)", None, None  # refused by _check: naive without tz=
        return f"timezone({_lit(tz)}, CAST({c} AS TIMESTAMP))", None, f"CAST({c} AS TIMESTAMP)"
    if t != "VARCHAR":
        return "CAST(NULL AS TIMESTAMPTZ)", f"CAST({c} AS VARCHAR)", None
    raw = f"NULLIF(trim({c}), '')"
    if ts_format:
        aware = f"try_strptime({raw}, {_lit(ts_format)})"
        if "%z" in ts_format or "%Z" in ts_format:
            return f"CAST({aware} AS TIMESTAMPTZ)", raw, None
        naive = f"CAST({aware} AS TIMESTAMP)"
    else:
        naive = f"try_cast({raw} AS TIMESTAMP)"
    local = f"timezone({_lit(tz)}, {naive})" if tz else "CAST(NULL AS TIMESTAMPTZ)"
    expr = (f"CASE WHEN {raw} IS NULL THEN NULL "
            f"WHEN regexp_matches({raw}, {_lit(_OFFSET_RE)}) THEN try_cast({raw} AS TIMESTAMPTZ) "
            f"ELSE {local} END")
    # the naive reading of every row: used only when no row carries an offset (a file
    # mixing the two is refused), so it needs no test of the offset
    return expr, raw, (naive if tz else None)


def _num_expr(src: str, src_type: str, decimal_comma: bool) -> tuple[str, str | None]:
    c = _q(src)
    if src_type.upper() != "VARCHAR":
        return f"try_cast({c} AS DOUBLE)", f"CAST({c} AS VARCHAR)"
    raw = f"NULLIF(trim({c}), '')"
    if decimal_comma:
        conv = (f"CASE WHEN contains({raw}, ',') THEN replace(replace({raw}, '.', ''), ',', '.') "
                f"ELSE {raw} END")
        return f"try_cast({conv} AS DOUBLE)", raw
    return f"try_cast({raw} AS DOUBLE)", raw


def _str_expr(src: str) -> str:
    return f"NULLIF(trim(CAST({_q(src)} AS VARCHAR)), '')"


def _resolve_mapping(info: FileInfo, kind: str, cols: dict[str, str], mapping: dict | None) -> dict[str, str]:
    canon = COLUMNS[kind]
    mapping = dict(mapping or {})
    for key, src in mapping.items():
        if key not in canon:
            raise ValueError(f"mapping key {key!r} is not a canonical {kind} column "
                             f"{tuple(canon)}" + did_you_mean(key, canon))
        if src not in cols:
            raise MissingColumnError(info.path, f"mapped column {src!r} (for {key!r}) is not in the "
                                     f"file" + did_you_mean(src, cols) + f"; the file has {list(cols)}",
                                     column=src)
    resolved = {}
    for name in canon:
        if name in mapping:
            resolved[name] = mapping[name]
        elif name in cols and name not in mapping.values():
            resolved[name] = name
    return resolved


def _require(info, kind, resolved, cols, *, derived=()):
    for name, (_, required) in COLUMNS[kind].items():
        if required and name not in resolved and name not in derived:
            raise MissingColumnError(
                info.path, f"required column {name!r} is missing" + did_you_mean(name, cols)
                + f"; the file has {list(cols)[:20]}; map it with mapping={{{name!r}: '<column>'}}",
                column=name)


def _property_name(name: str, taken: set[str]) -> str:
    clean = re.sub(r"[^0-9a-zA-Z_]+", "_", name.strip()).strip("_").lower() or "column"
    if clean[0].isdigit():
        clean = "c_" + clean
    base, i = clean, 2
    if clean in taken or clean.startswith("_"):
        base = clean = f"src_{clean.lstrip('_')}"
    while clean in taken:
        clean, i = f"{base}_{i}", i + 1
    taken.add(clean)
    return clean


def _ga4_select(info: FileInfo, cols: dict[str, str]) -> tuple[str, dict[str, str]]:
    """SQL select list turning the GA4 export schema into canonical event columns."""
    needed = ("event_timestamp", "event_name", "user_pseudo_id")
    for n in needed:
        if n not in cols:
            raise MissingColumnError(info.path, f"GA4 export column {n!r} is missing"
                                     + did_you_mean(n, cols) + "; is this a GA4 BigQuery export?",
                                     column=n)

    def param(key, kind):
        if "event_params" not in cols:
            return "NULL"
        return (f"list_extract(list_transform(list_filter(event_params, lambda p: p.key = {_lit(key)}), "
                f"lambda p: p.value.{kind}), 1)")

    def sub(col, field_):
        t = cols.get(col, "")
        return f"{_q(col)}.{_q(field_)}" if t.upper().startswith("STRUCT") and f"{field_} " in t else "NULL"

    user = "NULLIF(trim(CAST(user_id AS VARCHAR)), '')" if "user_id" in cols else "NULL"
    medium = f"lower(CAST({sub('traffic_source', 'medium')} AS VARCHAR))"
    platform = "upper(CAST(platform AS VARCHAR))" if "platform" in cols else "NULL"
    device = f"lower(CAST({sub('device', 'category')} AS VARCHAR))"
    session = param("ga_session_id", "int_value")
    select = {
        "customer_id": f"coalesce({user}, NULLIF(trim(CAST(user_pseudo_id AS VARCHAR)), ''))",
        "ts": "make_timestamptz(CAST(event_timestamp AS BIGINT))",
        "touchpoint": "NULLIF(trim(CAST(event_name AS VARCHAR)), '')",
        "channel": (f"CASE WHEN {platform} IN ('IOS', 'ANDROID') THEN 'app' "
                    f"WHEN {medium} = 'email' THEN 'email' "
                    f"WHEN {medium} IN ('social', 'social-network', 'social-media', 'sm') THEN 'social' "
                    "ELSE 'web' END"),
        "session_id": (f"CASE WHEN {session} IS NULL THEN NULL ELSE "
                       f"NULLIF(trim(CAST(user_pseudo_id AS VARCHAR)), '') || '-' || CAST({session} AS VARCHAR) END"),
        "value": f"CAST({sub('ecommerce', 'purchase_revenue')} AS DOUBLE)",
    }
    props = {"device_category": device, "medium": medium, "platform": platform,
             "user_pseudo_id": "CAST(user_pseudo_id AS VARCHAR)",
             "page_location": param("page_location", "string_value")}
    return select, props


def stage(con, path, *, kind: str = "events", format: str = "auto", mapping: dict | None = None,
          tz: str | None = None, ts_format: str | None = None, delimiter: str | None = None,
          scale: str | None = None, language: str | None = None,
          session_gap=_DEFAULT_GAP, tmpdir=None, view: str = "_cx_stage",
          info: FileInfo | None = None, keep_order: bool = False, eager: bool = True,
          max_line_size: int | None = None) -> Staged:
    """Read an export into a temporary DuckDB view of canonical columns and check it.

    Raises a typed :class:`~cxlab.exceptions.ExportError` naming the file, row and
    column of the first problem found. Nothing is written but temporary objects.

    ``eager`` (the default) checks every row with one scan before the view is used. With
    ``eager=False`` the view itself guards each row (reading a bad row raises a DuckDB
    error), so a pull reads the file once; on such an error the caller rolls back and
    calls :meth:`Staged.diagnose` for the typed, located error. Checks that need the
    whole file (mixed time zones) still run before.

    ``max_line_size`` raises the longest CSV line accepted (bytes; DuckDB's default is
    2,000,000); a longer line is a :class:`~cxlab.exceptions.LineTooLongError`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}" + did_you_mean(kind, KINDS))
    tz = check_tz(tz)
    if scale is not None and scale not in SCALES:
        raise ValueError(f"scale={scale!r} is not one of {tuple(SCALES)}" + did_you_mean(scale, SCALES))
    if format == "ga4" and kind != "events":
        raise ValueError("format='ga4' reads events; use kind='events'")
    if format == "survey" and kind != "feedback":
        raise ValueError("format='survey' reads feedback; use kind='feedback'")
    if info is None:
        info = sniff(path, format=format, delimiter=delimiter, tmpdir=tmpdir)
    if max_line_size is not None:
        if int(max_line_size) < 1:
            raise ValueError(f"max_line_size={max_line_size!r} must be a positive number of bytes")
        info.max_line_size = int(max_line_size)
    cols = source_columns(con, info)
    if info.format in ("parquet", "jsonl") and not info.columns:
        info.columns = list(cols)
    if info.format == "jsonl" and "event_timestamp" in cols and "event_params" in cols and format == "auto":
        info.format = "ga4"
    reader = _reader_sql(info)
    if info.format in ("csv", "survey") and len(cols) == 1:
        only = next(iter(cols))
        other = next((c for c in ";,\t|" if c in only and c != info.delimiter), None)
        if other:
            raise ExportError(info.path, f"the header has one column {only[:80]!r}: the delimiter is "
                                         f"{other!r}, not {info.delimiter!r}; pass delimiter={other!r}")
    notes: list[str] = []
    local_ts = None
    select: dict[str, str] = {}
    raws: dict[str, str] = {}
    taken: set[str] = set(COLUMNS[kind])
    if info.format == "ga4":
        if kind != "events":
            raise ValueError("GA4 exports hold events; use kind='events'")
        select, props_sql = _ga4_select(info, cols)
        resolved = {"ts": "event_timestamp", "customer_id": "user_pseudo_id", "touchpoint": "event_name"}
        props = {k: v for k, v in props_sql.items()}
        taken.update(props)
    else:
        resolved = _resolve_mapping(info, kind, cols, mapping)
        derived = ("feedback_id",) if kind == "feedback" else ()
        _require(info, kind, resolved, cols, derived=derived)
        for name, (ctype, _) in COLUMNS[kind].items():
            src = resolved.get(name)
            if src is None:
                continue
            if name == "ts":
                select[name], raws[name], local_ts = _ts_expr(src, cols[src], tz, ts_format)
            elif ctype == "DOUBLE":
                select[name], raws[name] = _num_expr(src, cols[src], info.decimal_comma)
            else:
                select[name] = _str_expr(src)
        used = set(resolved.values())
        props = {}
        for c in cols:
            if c not in used:
                props[_property_name(c, taken)] = _q(c)
    # defaults and derived columns
    if kind == "events":
        select["channel"] = f"coalesce({select.get('channel', 'NULL')}, 'unknown')"
        select.setdefault("session_id", "CAST(NULL AS VARCHAR)")
        select.setdefault("value", "CAST(NULL AS DOUBLE)")
    else:
        if scale is None and "scale" not in select and "score" in select:
            scale, note = _infer_scale(con, info, reader, select["score"])
            notes.append(note)
        if scale is not None:
            select["scale"] = (f"coalesce({select['scale']}, {_lit(scale)})" if "scale" in select
                               else _lit(scale))
        if language is not None:
            select["language"] = (f"coalesce({select['language']}, {_lit(language)})"
                                  if "language" in select else _lit(language))
        for name in FEEDBACK_COLUMNS:
            if name not in select:
                ctype = FEEDBACK_COLUMNS[name][0]
                select[name] = f"CAST(NULL AS {ctype})"
        if "feedback_id" not in resolved:
            # stable id from content: the same answer pulled twice gets the same id
            select["feedback_id"] = (
                "md5(concat_ws('|', " + ", ".join(
                    f"coalesce(CAST({select[c]} AS VARCHAR), '')"
                    for c in ("customer_id", "ts", "touchpoint", "channel", "score", "scale", "text"))
                + "))")
            notes.append("feedback_id derived from a hash of the content (the export has none)")
    order = list(COLUMNS[kind])
    body = ",\n  ".join([f"{select[c]} AS {_q(c)}" for c in order]
                        + [f"{expr} AS {_q(p)}" for p, expr in props.items()]
                        + [f"{expr} AS {_q('_raw_' + c)}" for c, expr in raws.items() if expr]
                        + ([f"{local_ts} AS {_q('_local_ts')}"] if local_ts else []))
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_q(view + '_src')} AS SELECT\n  {body}\nFROM {reader}")
    prop_types = {}
    if props:
        described = con.execute(f"DESCRIBE SELECT {', '.join(_q(p) for p in props)} "
                                f"FROM {_q(view + '_src')}").fetchall()
        prop_types = {r[0]: r[1] for r in described}
    staged = Staged(view=view, kind=kind, info=info, rows=0, properties=prop_types,
                    mapping=resolved, tz=tz, scale=scale, notes=notes, raws=raws,
                    ts_format=ts_format, local_ts=local_ts is not None,
                    session_gap=pd.Timedelta(session_gap),
                    has_session="session_id" in resolved or info.format == "ga4")
    if eager:
        _check(con, staged)
        derive = kind == "events" and staged.stats["session_null"] > 0
        _finish_view(con, staged, derive=derive, keep_order=keep_order)
    else:
        if (raws.get("ts") and tz is not None) or staged.local_ts:
            _check_ts_forms(con, staged)
        # sessions are derived in the view when the export has none; gaps in a session
        # column are filled after the insert (Workspace), only when there are any
        derive = kind == "events" and not staged.has_session
        _finish_view(con, staged, derive=derive, guard=True)
    return staged


def _check_ts_forms(con, staged: Staged) -> None:
    """Refuse a file mixing timestamps with and without an offset, and count the local times
    a clock change skipped or repeated (one scan of ts)."""
    raw = _q("_raw_ts")
    aggs = _dst_checks(staged)
    if staged.raws.get("ts"):
        aggs.update(ts_aware=f"count(*) FILTER (WHERE regexp_matches({raw}, {_lit(_OFFSET_RE)}))",
                    ts_total=f"count({raw})")
    if not aggs:
        return
    r = dict(zip(aggs, con.execute(f"SELECT {', '.join(aggs.values())} "
                                   f"FROM {_q(staged.view + '_src')}").fetchall()[0]))
    if 0 < r.get("ts_aware", 0) < r.get("ts_total", 0):
        _check(con, staged)
    _note_dst(con, staged, r)


def _dst_checks(staged: Staged) -> dict[str, str]:
    """Aggregates counting naive local times that do not exist or occur twice in ``tz``."""
    return _clockchanges.count_sql(staged.tz, _q("_local_ts")) if staged.local_ts else {}


def _note_dst(con, staged: Staged, r: dict) -> None:
    """Add to the notes how many local times a clock change skipped or repeated and the
    rule applied (nothing when the file's timestamps carry offsets)."""
    if not staged.local_ts or r.get("ts_aware"):
        return
    for note in _clockchanges.notes(con, staged.tz, r, column=_source_col(staged, "ts")):
        if note not in staged.notes:
            staged.notes.append(note)


def _guards(staged: Staged) -> dict[str, str]:
    """Per column, the condition under which a row is bad (see ``_check`` for the messages)."""
    g: dict[str, list[str]] = {}
    for name, (_, required) in COLUMNS[staged.kind].items():
        if required:
            g.setdefault(name, []).append(f"{_q(name)} IS NULL")
    for num in ("value", "score"):
        if staged.raws.get(num):
            g.setdefault(num, []).append(f"({_q('_raw_' + num)} IS NOT NULL AND {_q(num)} IS NULL)")
    if staged.kind == "events":
        g.setdefault("value", []).append("value < 0 OR isinf(value) OR isnan(value)")
    else:
        known = ", ".join(_lit(s) for s in SCALES)
        g.setdefault("scale", []).append(f"scale IS NOT NULL AND scale NOT IN ({known})")
        ranges = " OR ".join(f"(scale = {_lit(s)} AND (score < {lo} OR score > {hi}))"
                             for s, (lo, hi) in SCALES.items())
        g.setdefault("score", []).append(f"(score IS NOT NULL AND scale IS NULL) OR {ranges} OR isnan(score)")
    return {c: " OR ".join(f"({x})" for x in conds) for c, conds in g.items()}


def session_sql(src: str, cols: list[str], gap: pd.Timedelta, *, extra: str = "") -> str:
    """SELECT ``cols`` from ``src`` with ``session_id`` filled where it is NULL: a customer's
    rows without one start a new session after ``gap`` without events; the id is the
    customer id and the session's first timestamp (stable across files).

    Two window passes with one ordering (the session start is the running maximum of the
    timestamps that open a session), so DuckDB sorts once per customer partition.
    """
    micros = int(pd.Timedelta(gap) / pd.Timedelta("1us"))
    part = "PARTITION BY customer_id, session_id IS NULL ORDER BY ts"
    # the start formatted from its UTC microseconds: strftime of a time-zone-aware timestamp
    # goes through ICU's calendar (10M rows: 1.04 s against 0.53 s)
    sel = ", ".join("coalesce(session_id, customer_id || '-' || "
                    "strftime(make_timestamp(epoch_us(_start)), '%Y%m%dT%H%M%SZ')) "
                    "AS session_id" if c == "session_id" else _q(c) for c in cols)
    return (f"SELECT {sel}{extra} FROM (SELECT *, max(CASE WHEN _new THEN ts END) OVER ({part} "
            f"ROWS UNBOUNDED PRECEDING) AS _start FROM (SELECT *, lag(ts) OVER w IS NULL OR "
            f"epoch_us(ts) - epoch_us(lag(ts) OVER w) > {micros} AS _new FROM {src} WINDOW w AS ({part})))")


def _first_row(con, staged: Staged, predicate: str, raw_col: str | None):
    """(row number, raw value) of the first row where ``predicate`` holds."""
    raw = _q(raw_col) if raw_col else "NULL"
    sql = (f"SELECT _row, _val FROM (SELECT row_number() OVER () AS _row, {predicate} AS _hit, "
           f"{raw} AS _val FROM {_q(staged.view + '_src')}) WHERE _hit ORDER BY _row LIMIT 1")
    rows = con.execute(sql).fetchall()
    return (int(rows[0][0]), rows[0][1]) if rows else (None, None)


def _source_col(staged: Staged, name: str) -> str:
    return staged.mapping.get(name, name)


def _check(con, staged: Staged) -> None:
    """Every row-level check in one scan; on a failure, locate the first bad row."""
    raws, ts_format = staged.raws, staged.ts_format
    v = _q(staged.view + "_src")
    kind = staged.kind
    checks: dict[str, str] = {"rows": "count(*)"}
    if kind == "events":
        checks["session_null"] = "count(*) FILTER (WHERE session_id IS NULL)"
    for name, (_, required) in COLUMNS[kind].items():
        if required and name != "ts":
            checks[f"null_{name}"] = f"count(*) FILTER (WHERE {_q(name)} IS NULL)"
    has_raw_ts = "ts" in raws and raws["ts"]
    if has_raw_ts:
        checks["ts_null"] = f"count(*) FILTER (WHERE {_q('_raw_ts')} IS NULL)"
        checks["ts_bad"] = f"count(*) FILTER (WHERE {_q('_raw_ts')} IS NOT NULL AND ts IS NULL)"
        checks["ts_aware"] = (f"count(*) FILTER (WHERE regexp_matches({_q('_raw_ts')}, "
                              f"{_lit(_OFFSET_RE)}))")
    else:
        checks["ts_null"] = "count(*) FILTER (WHERE ts IS NULL)"
    checks.update(_dst_checks(staged))
    for num in ("value", "score"):
        if num in raws and raws[num]:
            checks[f"{num}_bad"] = (f"count(*) FILTER (WHERE {_q('_raw_' + num)} IS NOT NULL "
                                    f"AND {_q(num)} IS NULL)")
    if kind == "events":
        checks["value_neg"] = "count(*) FILTER (WHERE value < 0 OR isinf(value) OR isnan(value))"
    if kind == "feedback":
        checks["scale_unknown"] = (f"count(*) FILTER (WHERE scale IS NOT NULL AND scale NOT IN "
                                   f"({', '.join(_lit(s) for s in SCALES)}))")
        checks["score_no_scale"] = "count(*) FILTER (WHERE score IS NOT NULL AND scale IS NULL)"
        ranges = " OR ".join(f"(scale = {_lit(s)} AND (score < {lo} OR score > {hi}))"
                             for s, (lo, hi) in SCALES.items())
        checks["score_range"] = f"count(*) FILTER (WHERE {ranges} OR isnan(score))"
    sql = "SELECT " + ", ".join(f"{expr} AS {_q(k)}" for k, expr in checks.items()) + f" FROM {v}"
    try:
        res = con.execute(sql).fetchall()[0]
    except Exception as exc:
        raise _wrap_duckdb_error(staged.info, exc) from None
    r = dict(zip(checks, res))
    path = staged.info.path
    staged.rows = int(r["rows"])
    staged.stats = r
    line = staged.info.format in ("csv", "survey")

    def where(row):
        return f" (line {row + 1} of the file)" if line and row else ""

    if staged.rows == 0:
        what = "has a header and no data rows" if staged.info.format in ("csv", "survey") else "has no rows"
        raise EmptyExportError(path, f"the file {what}")
    for name, (_, required) in COLUMNS[kind].items():
        if required and name != "ts" and r.get(f"null_{name}"):
            row, _ = _first_row(con, staged, f"{_q(name)} IS NULL", None)
            col = _source_col(staged, name)
            raise NullValueError(path, f"{r[f'null_{name}']} rows have no {name} (required); first "
                                       f"at row {row}{where(row)}", row=row, column=col)
    tscol = _source_col(staged, "ts")
    if r["ts_null"]:
        if not has_raw_ts and staged.tz is None and staged.info.format != "ga4":
            typ = "naive timestamps"
            raise TimestampError(path, f"the timestamps have no time zone ({typ}); pass tz= the zone "
                                       "they were recorded in, e.g. tz='Europe/Rome' (or 'UTC')",
                                 column=tscol)
        row, _ = _first_row(con, staged, f"{_q('_raw_ts') if has_raw_ts else 'ts'} IS NULL", None)
        raise NullValueError(path, f"{r['ts_null']} rows have no ts (required); first at row "
                                   f"{row}{where(row)}", row=row, column=tscol)
    if has_raw_ts:
        aware, total = r["ts_aware"], staged.rows - r["ts_null"]
        if 0 < aware < total:
            row_a, val_a = _first_row(con, staged, f"regexp_matches({_q('_raw_ts')}, {_lit(_OFFSET_RE)})", "_raw_ts")
            row_n, val_n = _first_row(con, staged, f"NOT regexp_matches({_q('_raw_ts')}, {_lit(_OFFSET_RE)})", "_raw_ts")
            raise TimestampError(path, f"mixed time zones: {aware} timestamps carry an offset "
                                       f"(row {row_a}: {val_a!r}) and {total - aware} do not (row "
                                       f"{row_n}: {val_n!r}); export them all in one form",
                                 row=row_n, column=tscol, value=val_n)
        if aware == 0 and staged.tz is None:
            row, val = _first_row(con, staged, "TRUE", "_raw_ts")
            raise TimestampError(path, f"timestamps have no time zone (row {row}: {val!r}); pass tz= "
                                       "the zone they were recorded in, e.g. tz='Europe/Rome' (or 'UTC')",
                                 row=row, column=tscol, value=val)
        if r["ts_bad"]:
            row, val = _first_row(con, staged, f"{_q('_raw_ts')} IS NOT NULL AND ts IS NULL", "_raw_ts")
            fmt = f"the format {ts_format!r}" if ts_format else "ISO 8601 (e.g. 2026-03-01T14:05:00+01:00)"
            hint = "" if ts_format else "; for other layouts pass ts_format= e.g. '%d/%m/%Y %H:%M'"
            raise TimestampError(path, f"{r['ts_bad']} timestamps cannot be parsed as {fmt}; first at "
                                       f"row {row}{where(row)}: {val!r}{hint}",
                                 row=row, column=tscol, value=val)
    for num in ("value", "score"):
        if r.get(f"{num}_bad"):
            row, val = _first_row(con, staged, f"{_q('_raw_' + num)} IS NOT NULL AND {_q(num)} IS NULL",
                                  "_raw_" + num)
            raise ExportError(path, f"{r[f'{num}_bad']} values of {num} are not numbers; first at row "
                                    f"{row}{where(row)}: {val!r}", row=row,
                              column=_source_col(staged, num), value=val)
    if kind == "events" and r["value_neg"]:
        row, _ = _first_row(con, staged, "value < 0 OR isinf(value) OR isnan(value)", None)
        raise ExportError(path, f"{r['value_neg']} values are negative or not finite; first at row "
                                f"{row}{where(row)}", row=row, column=_source_col(staged, "value"))
    if kind == "feedback":
        _check_scores(con, staged, r, where)
    _note_dst(con, staged, r)


def _check_scores(con, staged: Staged, r: dict, where) -> None:
    path = staged.info.path
    scol = _source_col(staged, "score")
    if r["scale_unknown"]:
        row, _ = _first_row(con, staged, f"scale IS NOT NULL AND scale NOT IN "
                                         f"({', '.join(_lit(s) for s in SCALES)})", None)
        val = con.execute(f"SELECT scale FROM (SELECT row_number() OVER () AS _row, scale FROM "
                          f"{_q(staged.view + '_src')}) WHERE _row = {row}").fetchall()[0][0]
        raise ScoreRangeError(path, f"unknown scale {val!r} at row {row}{where(row)}; scales are "
                                    f"{tuple(SCALES)}" + did_you_mean(str(val), SCALES),
                              row=row, column=_source_col(staged, "scale"), value=val)
    if r["score_no_scale"]:
        row, _ = _first_row(con, staged, "score IS NOT NULL AND scale IS NULL", None)
        raise ScoreRangeError(path, f"{r['score_no_scale']} scores have no scale; first at row {row}"
                                    f"{where(row)}; pass scale= one of {tuple(SCALES)} or map a "
                                    "scale column", row=row, column=scol)
    if r["score_range"]:
        ranges = " OR ".join(f"(scale = {_lit(s)} AND (score < {lo} OR score > {hi}))"
                             for s, (lo, hi) in SCALES.items())
        row, val = _first_row(con, staged, f"{ranges} OR isnan(score)", "score")
        sc = con.execute(f"SELECT scale FROM (SELECT row_number() OVER () AS _row, scale FROM "
                         f"{_q(staged.view + '_src')}) WHERE _row = {row}").fetchall()[0][0]
        lo, hi = SCALES.get(sc, (None, None))
        raise ScoreRangeError(path, f"{r['score_range']} scores are outside their scale; first at row "
                                    f"{row}{where(row)}: {val:g} is not within {sc} {lo:g}-{hi:g}",
                              row=row, column=scol, value=val)


def _finish_view(con, staged: Staged, *, derive: bool, keep_order: bool = False,
                 guard: bool = False) -> None:
    """The final staged view: canonical columns, properties, sessions derived when asked.

    ``keep_order`` keeps the file's row order (a sort: only for small reads); ``guard``
    makes reading a bad row raise (see :func:`stage` with ``eager=False``).
    """
    src = _q(staged.view + "_src")
    order = ""
    if keep_order:
        src = f"(SELECT *, row_number() OVER () AS _ord FROM {src})"
        order = " ORDER BY _ord"
    cols = staged.columns
    raw_cols = [f"_raw_{c}" for c, e in staged.raws.items() if e]
    inner = src
    if derive:
        from .journey import _format_duration

        staged.notes.append(f"session_id derived where the export has none: a new session after "
                            f"{_format_duration(staged.session_gap)} without events")
        keep = cols + raw_cols + (["_ord"] if keep_order else [])
        inner = f"({session_sql(src, keep, staged.session_gap)})"
    guards = _guards(staged) if guard else {}
    sel = ", ".join(f"CASE WHEN {guards[c]} THEN error('cxlab: bad row') ELSE {_q(c)} END AS {_q(c)}"
                    if c in guards else _q(c) for c in cols)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_q(staged.view)} AS SELECT {sel} FROM {inner}{order}")


# --------------------------------------------------------------------------- contracts
def contract(kind: str):
    """The pandera (Ibis) schema of a canonical table: the data contract in DESIGN.md."""
    import warnings

    import ibis.expr.datatypes as dt

    with warnings.catch_warnings():  # pandera probes pyspark, which warns about pandas 3
        warnings.simplefilter("ignore", FutureWarning)
        import pandera.ibis as pa

    ts = pa.Column(dt.Timestamp(timezone="UTC", scale=6), nullable=False)
    if kind == "events":
        cols = {
            "customer_id": pa.Column(dt.String, nullable=False),
            "ts": ts,
            "touchpoint": pa.Column(dt.String, nullable=False),
            "channel": pa.Column(dt.String, nullable=False),
            "session_id": pa.Column(dt.String, nullable=False),
            "value": pa.Column(dt.Float64, nullable=True, checks=pa.Check.ge(0)),
        }
    elif kind == "feedback":
        cols = {
            "feedback_id": pa.Column(dt.String, nullable=False, unique=False),
            "customer_id": pa.Column(dt.String, nullable=True),
            "ts": ts,
            "touchpoint": pa.Column(dt.String, nullable=True),
            "channel": pa.Column(dt.String, nullable=True),
            "score": pa.Column(dt.Float64, nullable=True),
            "scale": pa.Column(dt.String, nullable=True, checks=pa.Check.isin(list(SCALES))),
            "text": pa.Column(dt.String, nullable=True),
            "language": pa.Column(dt.String, nullable=True),
        }
    else:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    return pa.DataFrameSchema(cols, strict=False, name=kind)


def validate_contract(table, kind: str, *, path=None):
    """Validate an Ibis table against :func:`contract`; raise :class:`SchemaError`."""
    schema = contract(kind)  # imports pandera quietly
    import pandera.errors

    try:
        return schema.validate(table, lazy=True)
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError) as exc:
        text = str(exc)
        try:
            detail = json.loads(text)
            text = json.dumps(detail)[:600]
        except ValueError:
            text = text[:600]
        raise SchemaError(path, f"the {kind} table breaks its data contract: {text}") from None


def read_export(path, *, kind: str = "events", **options) -> pd.DataFrame:
    """Read an export into a canonical pandas DataFrame (no workspace involved).

    Same parsing and checks as :meth:`cxlab.Workspace.pull`, for small files and tests.
    Duplicate rows are kept; ``Workspace.pull`` is what skips them.
    """
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar=false")
    with tempfile.TemporaryDirectory(prefix="cxlab-") as tmp:
        staged = stage(con, path, kind=kind, tmpdir=tmp, keep_order=True, **options)
        df = con.execute(f"SELECT * FROM {_q(staged.view)}").df()
    con.close()
    df["ts"] = df["ts"].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    return df


def _infer_scale(con, info: FileInfo, reader: str, score_sql: str) -> tuple[str, str]:
    """Scale of a score column given without one: 0-10 integers are NPS; 1-5 is ambiguous."""
    try:
        lo, hi, frac = con.execute(
            f"SELECT min(s), max(s), count(*) FILTER (WHERE s <> floor(s)) FROM "
            f"(SELECT {score_sql} AS s FROM {reader})").fetchall()[0]
    except Exception as exc:
        raise _wrap_duckdb_error(info, exc) from None
    if lo is None:
        return "nps", "no scores in the file"
    if lo >= 0 and hi <= 10 and not frac and (hi > 7 or lo == 0):
        return "nps", f"scale inferred as 'nps' (0-10): the scores range {lo:g}-{hi:g}"
    raise ScoreRangeError(info.path, f"the scores range {lo:g}-{hi:g} and no scale is given: pass "
                                     f"scale= one of {tuple(SCALES)} (nps 0-10, csat 1-5, ces 1-7, "
                                     "stars 1-5) or map a scale column")


__all__ = ["read_export", "stage", "sniff", "contract", "validate_contract", "COLUMNS", "KEYS",
           "SCALES", "EVENTS_COLUMNS", "FEEDBACK_COLUMNS", "check_tz", "sha256_file", "file_state",
           "check_unchanged"]
