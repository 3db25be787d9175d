"""The data-quality view of a workspace: what is there, how complete, how it is spread.

Every function aggregates in the engine through Ibis (DuckDB by default, PySpark or any
other Ibis backend unchanged) and brings back only the aggregates as pandas DataFrames,
so the same calls work on a few hundred rows and on hundreds of millions.

The functions take a workspace (anything with ``events()`` and ``feedback()`` returning
Ibis tables, i.e. :class:`cxlab.Workspace` or the Spark workspace); ``column_profile``
takes a single table. The ``plot_*`` functions take either the workspace or the table
the matching function returned.

Examples
--------
>>> import cxlab
>>> from cxlab import quality
>>> ws = cxlab.connect("data/cxlab.duckdb")                 # doctest: +SKIP
>>> quality.quality_summary(ws)                             # doctest: +SKIP
>>> quality.plot_touchpoints(quality.touchpoint_table(ws))  # doctest: +SKIP
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .exceptions import did_you_mean
from .io import SCALES
from .journey import JourneyMap
from .privacy import mask_pii, pseudonym

#: the label of touchpoints that are in the data but not in the journey map
UNMAPPED = "not in map"
_SCALE_ORDER = tuple(SCALES)
_SCALE_LABELS = {"nps": "NPS (0-10)", "csat": "CSAT (1-5)", "ces": "CES (1-7)", "stars": "Stars (1-5)"}
_SCALE_RANGES = {k: (int(lo), int(hi)) for k, (lo, hi) in SCALES.items()}
_UNMAPPED_COLOR = "#9e9e9e"


# --------------------------------------------------------------------------- helpers
def _ibis_table(obj):
    """An Ibis table from an Ibis table or a pandas DataFrame."""
    if isinstance(obj, pd.DataFrame):
        import ibis

        return ibis.memtable(obj)
    return obj


def _events(ws):
    """The events table of a workspace (or the table itself when given one)."""
    if hasattr(ws, "events") and callable(ws.events):
        return ws.events()
    return _ibis_table(ws)


def _feedback(ws):
    """The feedback table of a workspace, or None when the workspace has none."""
    if hasattr(ws, "feedback") and callable(ws.feedback):
        try:
            return ws.feedback()
        except Exception:  # a Spark workspace without feedback.parquet
            return None
    return _ibis_table(ws)


def _utc(series: pd.Series) -> pd.Series:
    """Timestamps as tz-aware UTC (the engine may hand back naive or aware values)."""
    s = pd.to_datetime(series)
    if getattr(s.dt, "tz", None) is None:
        return s.dt.tz_localize("UTC")
    return s.dt.tz_convert("UTC")


def _as_int(value) -> int:
    return 0 if value is None or pd.isna(value) else int(value)


def moment_palette(journey=None) -> dict[str, str]:
    """Colours of the moments of truth, in map order, plus grey for touchpoints not in the map.

    The same moment gets the same colour in every cxlab chart.

    Parameters
    ----------
    journey : JourneyMap or path, optional
        The journey map (default: :meth:`JourneyMap.default`).

    Returns
    -------
    dict
        Moment id -> hex colour; the key :data:`UNMAPPED` (``"not in map"``) is grey.
    """
    import seaborn as sns

    jm = JourneyMap.coerce(journey)
    colors = sns.color_palette("colorblind", max(len(jm.moments), 4)).as_hex()
    palette = {m.id: colors[i % len(colors)] for i, m in enumerate(jm.moments)}
    palette[UNMAPPED] = _UNMAPPED_COLOR
    return palette


_ID_COLUMNS = ("customer_id", "session_id", "feedback_id")
# property columns that identify a person: a name word (split at _ - . spaces and case
# changes) or a whole name below; their examples are pseudonyms, never values
_PERSONAL_WORDS = frozenset({
    "id", "email", "mail", "phone", "telefono", "tel", "cell", "cellulare", "mobile", "cf",
    "fiscale", "codicefiscale", "piva", "iva", "vat", "iban", "nome", "cognome", "surname",
    "firstname", "lastname", "fullname", "address", "indirizzo", "user", "username", "login"})
_PERSONAL_NAMES = frozenset({"name", "first_name", "last_name", "full_name", "customer_name", "e_mail"})
# ... or a part of one (a pull lowercases customerEmail to customeremail)
_PERSONAL_PARTS = ("email", "phone", "telefono", "cellulare", "fiscale", "cognome", "surname", "username",
                   "indirizzo", "address")


def _identifies(column: str) -> bool:
    """Whether a column holds identifiers (canonical ids, or a name such as ``email``, ``crm_id``)."""
    name = re.sub(r"[\s.\-]+|(?<=[a-z])(?=[A-Z])", "_", column.strip()).lower()   # customerEmail too
    return (column in _ID_COLUMNS or name in _PERSONAL_NAMES
            or not _PERSONAL_WORDS.isdisjoint(name.split("_"))
            or any(part in name for part in _PERSONAL_PARTS))


def _redact(column: str, value: str, *, key: bytes | None, width: int = 48) -> str:
    """Example values fit for a report: identifiers pseudonymised (keyed), everything else
    masked (:func:`cxlab.privacy.mask_pii`) and shortened."""
    if _identifies(column):
        return pseudonym(value, key=key)
    value = " ".join(mask_pii(value).split())
    return value if len(value) <= width else value[: width - 1] + "…"


def _thousands(ax, axis="y"):
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(MaxNLocator(integer=True))
    target.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))


def _empty(ax, title, message):
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _new_ax(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


# --------------------------------------------------------------------------- tables
def quality_summary(ws, *, journey=None) -> pd.DataFrame:
    """One row per canonical table: volume, coverage in time, completeness.

    Parameters
    ----------
    ws : Workspace
        A workspace (DuckDB, Spark or any object whose ``events()`` / ``feedback()``
        return Ibis tables).
    journey : JourneyMap or path, optional
        The map used to count touchpoints that are not in it (default map when None).

    Returns
    -------
    pandas.DataFrame
        One row per table (``events``, ``feedback``) with columns:

        - ``table``: ``events`` or ``feedback``.
        - ``rows``: number of rows.
        - ``customers``: distinct non-empty ``customer_id``.
        - ``first_ts``, ``last_ts``: earliest and latest ``ts`` (UTC).
        - ``days``: calendar days from the first to the last date, both included.
        - ``active_days``: distinct dates (UTC) with at least one row; fewer than
          ``days`` means gaps in the export.
        - ``sessions``: distinct ``session_id`` (events only, else missing).
        - ``touchpoints``: distinct non-empty touchpoints.
        - ``unknown_touchpoints``: of those, how many are not in the journey map.
        - ``channels``: distinct non-empty channels.
        - ``value_share``: share of event rows with a ``value`` (events only).
        - ``with_score``, ``with_text``: feedback rows with a score, with a non-blank
          text (feedback only).
        - ``languages``: distinct languages of the feedback (feedback only).

        Count columns are nullable integers (``Int64``): missing where a measure does
        not apply to the table or the table is empty.
    """
    jm = JourneyMap.coerce(journey)
    known = list(jm.touchpoints)
    rows = []
    for name, table in (("events", _events(ws)), ("feedback", _feedback(ws))):
        row = {"table": name}
        if table is None:
            rows.append(row | {"rows": 0})
            continue
        t = table
        aggs = dict(rows=t.count(), customers=t.customer_id.nunique(), first_ts=t.ts.min(),
                    last_ts=t.ts.max(), active_days=t.ts.date().nunique(),
                    touchpoints=t.touchpoint.nunique(), channels=t.channel.nunique(),
                    unknown_touchpoints=t.touchpoint.nunique(
                        where=t.touchpoint.notnull() & ~t.touchpoint.isin(known)))
        if name == "events":
            aggs.update(sessions=t.session_id.nunique(), with_value=t.value.count())
        else:
            aggs.update(with_score=t.score.count(),
                        with_text=(t.text.notnull() & (t.text.strip().length() > 0)).sum(),
                        languages=t.language.nunique())
        got = t.aggregate(**aggs).execute().iloc[0].to_dict()
        row.update(got)
        n = _as_int(got["rows"])
        if n:
            first, last = _utc(pd.Series([got["first_ts"], got["last_ts"]]))
            row.update(first_ts=first, last_ts=last,
                       days=(last.normalize() - first.normalize()).days + 1)
        if name == "events":
            with_value = row.pop("with_value")
            row["value_share"] = _as_int(with_value) / n if n else np.nan
        rows.append(row)
    cols = ["table", "rows", "customers", "first_ts", "last_ts", "days", "active_days", "sessions",
            "touchpoints", "unknown_touchpoints", "channels", "value_share", "with_score",
            "with_text", "languages"]
    out = pd.DataFrame(rows).reindex(columns=cols)
    for c in cols:
        if c in ("table", "first_ts", "last_ts", "value_share"):
            continue
        out[c] = pd.to_numeric(out[c]).astype("Int64")
    out["rows"] = out["rows"].fillna(0)
    for c in ("first_ts", "last_ts"):
        out[c] = pd.to_datetime(out[c], utc=True)
    out["value_share"] = out["value_share"].astype("float64")
    return out


def column_profile(table, *, key: bytes | None = None) -> pd.DataFrame:
    """Per column of a table: type, completeness, cardinality and an example value.

    All counts come from a single aggregation in the engine.

    Parameters
    ----------
    table : ibis.Table or pandas.DataFrame
        E.g. ``ws.events()`` or ``ws.feedback()``.
    key : bytes, optional
        The workspace's pseudonym key (``ws.pseudonym_key()``), so an identifier has the
        same pseudonym as in the workspace's other reports; without it, a key drawn for
        this Python process.

    Returns
    -------
    pandas.DataFrame
        One row per column, in table order:

        - ``column``: the column name.
        - ``type``: its engine type (``string``, ``timestamp('UTC', 6)``, ``float64``...).
        - ``non_null``: rows where it has a value.
        - ``null_share``: share of rows without a value (0 when the table is empty).
        - ``distinct``: distinct non-null values.
        - ``example``: one non-null value, as text (missing when the column is empty).
          Identifiers (``customer_id``, ``session_id``, ``feedback_id`` and property
          columns named like an id, an e-mail, a phone, a tax code or a person's name:
          ``crm_id``, ``email``, ``telefono``, ``codice_fiscale``, ``nome``...) are shown
          as a keyed pseudonym (:func:`cxlab.privacy.pseudonym`: ``id:`` + 8 hex digits
          of an HMAC-SHA256); every other value that is not a time or a float, in any
          column, with personal data masked (:func:`cxlab.privacy.mask_pii`); long values
          shortened.
    """
    t = _ibis_table(table)
    schema = t.schema()
    aggs = {"__rows": t.count()}
    for i, (name, dtype) in enumerate(schema.items()):
        col = t[name]
        aggs[f"n{i}"] = col.count()
        aggs[f"d{i}"] = col.nunique()
        ex = col.cast("string") if not (dtype.is_string() or dtype.is_numeric() or
                                        dtype.is_temporal() or dtype.is_boolean()) else col
        aggs[f"e{i}"] = ex.arbitrary()
    got = t.aggregate(**aggs).execute().iloc[0]
    n = _as_int(got["__rows"])
    rows = []
    for i, (name, dtype) in enumerate(schema.items()):
        non_null = _as_int(got[f"n{i}"])
        ex = got[f"e{i}"]
        if ex is None or (not isinstance(ex, (list, dict)) and pd.isna(ex)):
            example = None
        elif dtype.is_temporal() and not isinstance(ex, str):
            stamp = pd.Timestamp(ex)
            example = stamp.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if stamp.tzinfo else "")
        elif dtype.is_floating():
            example = f"{float(ex):g}"
        else:
            example = _redact(name, str(ex), key=key)
        rows.append({"column": name, "type": str(dtype), "non_null": non_null,
                     "null_share": (n - non_null) / n if n else 0.0,
                     "distinct": _as_int(got[f"d{i}"]), "example": example})
    out = pd.DataFrame(rows, columns=["column", "type", "non_null", "null_share", "distinct", "example"])
    return out.astype({"non_null": "int64", "distinct": "int64", "null_share": "float64"})


def touchpoint_table(ws, *, journey=None) -> pd.DataFrame:
    """Per touchpoint: its moment of truth, volume, reach and when it was seen.

    Touchpoints in the data that the journey map does not know are listed (moment
    ``"not in map"``), never dropped; map touchpoints never seen get zero events.

    Parameters
    ----------
    ws : Workspace or ibis.Table
        A workspace, or an events table.
    journey : JourneyMap or path, optional
        The journey map (default map when None).

    Returns
    -------
    pandas.DataFrame
        One row per touchpoint, in map order (moment by moment) and then the unknown
        touchpoints by number of events:

        - ``moment``: id of the moment of truth (``ZMOT``...), ``"not in map"`` if unknown.
        - ``phase``: ``before``, ``during``, ``after`` the purchase (missing if unknown).
        - ``touchpoint``: the touchpoint.
        - ``events``: event rows.
        - ``customers``: distinct customers with at least one such event.
        - ``share``: ``events`` / all event rows.
        - ``first_seen``, ``last_seen``: first and last ``ts`` (UTC; NaT if never seen).
        - ``in_map``: whether the journey map lists the touchpoint.
    """
    jm = JourneyMap.coerce(journey)
    t = _events(ws)
    counts = (t.group_by("touchpoint")
               .aggregate(events=t.count(), customers=t.customer_id.nunique(),
                          first_seen=t.ts.min(), last_seen=t.ts.max())
               .execute())
    counts["touchpoint"] = counts["touchpoint"].astype("str")
    mapped = jm.to_frame()[["moment", "phase", "touchpoint", "order"]]
    out = mapped.merge(counts, on="touchpoint", how="outer")
    out["in_map"] = out["order"].notna()
    out["moment"] = out["moment"].fillna(UNMAPPED)
    out["events"] = out["events"].fillna(0).astype("int64")
    out["customers"] = out["customers"].fillna(0).astype("int64")
    total = out["events"].sum()
    out["share"] = out["events"] / total if total else 0.0
    for c in ("first_seen", "last_seen"):
        out[c] = _utc(out[c]) if len(out) else pd.Series(dtype="datetime64[us, UTC]")
    out = out.sort_values(["in_map", "order", "events", "touchpoint"],
                          ascending=[False, True, False, True], ignore_index=True)
    cols = ["moment", "phase", "touchpoint", "events", "customers", "share", "first_seen",
            "last_seen", "in_map"]
    return out[cols]


def daily_events(ws, *, by: str | None = "channel") -> pd.DataFrame:
    """Events per calendar day (UTC), optionally split by a column.

    Days and levels without events are filled with zeros, so gaps in an export show as
    drops to zero rather than as missing points.

    Parameters
    ----------
    ws : Workspace or ibis.Table
        A workspace, or an events table.
    by : str or None
        Column to split by (``channel``, ``touchpoint``, a property such as ``device``);
        None for the total only.

    Returns
    -------
    pandas.DataFrame
        Columns ``date`` (midnight UTC of the day, datetime64), ``by`` (when given; empty
        values shown as ``"(missing)"``), ``events`` (event rows that day), sorted by
        date then by the level's total volume.
    """
    t = _events(ws)
    if by is not None and by not in t.columns:
        raise ValueError(f"by={by!r} is not a column of events; columns are {list(t.columns)}"
                         + did_you_mean(str(by), t.columns))
    keys = [t.ts.date().name("date")] + ([t[by].cast("string").name(by)] if by else [])
    got = t.group_by(keys).aggregate(events=t.count()).execute()
    got["date"] = pd.to_datetime(got["date"])
    got["events"] = got["events"].astype("int64")
    if by:
        got[by] = got[by].astype("object").where(got[by].notna(), "(missing)").astype("str")
    if got.empty:
        return pd.DataFrame({"date": pd.Series(dtype="datetime64[s]"),
                             **({by: pd.Series(dtype="str")} if by else {}),
                             "events": pd.Series(dtype="int64")})
    days = pd.date_range(got["date"].min(), got["date"].max(), freq="D")
    if by:
        levels = got.groupby(by)["events"].sum().sort_values(ascending=False).index
        grid = pd.MultiIndex.from_product([days, levels], names=["date", by])
        out = got.set_index(["date", by])["events"].reindex(grid, fill_value=0).reset_index()
    else:
        out = got.set_index("date")["events"].reindex(days, fill_value=0).rename_axis("date").reset_index()
    out["events"] = out["events"].astype("int64")
    return out


def events_per_customer(ws) -> pd.DataFrame:
    """The distribution of the number of events per customer.

    Parameters
    ----------
    ws : Workspace or ibis.Table
        A workspace, or an events table.

    Returns
    -------
    pandas.DataFrame
        One row per observed number of events, ascending:

        - ``events``: number of events a customer has.
        - ``customers``: customers with exactly that many events.
        - ``share``: ``customers`` / all customers.
        - ``cumulative_share``: share of customers with at most ``events`` events.
    """
    t = _events(ws)
    per = t.group_by("customer_id").aggregate(n=t.count())
    got = per.group_by(per.n.name("events")).aggregate(customers=per.count()).execute()
    got = got.astype({"events": "int64", "customers": "int64"}).sort_values("events", ignore_index=True)
    total = got["customers"].sum()
    got["share"] = got["customers"] / total if total else np.nan
    got["cumulative_share"] = got["share"].cumsum()
    return got[["events", "customers", "share", "cumulative_share"]]


def score_distribution(ws) -> pd.DataFrame:
    """Feedback scores per scale: how many answers gave each score.

    Integer scales are completed with zero counts for scores nobody gave, so the bars
    of a scale always span its whole range.

    Parameters
    ----------
    ws : Workspace or ibis.Table
        A workspace, or a feedback table.

    Returns
    -------
    pandas.DataFrame
        Columns ``scale`` (``nps``, ``csat``, ``ces``, ``stars``, in that order),
        ``score``, ``n`` (feedback rows with that score on that scale) and ``share``
        (``n`` / rows of the scale). Feedback without a score is not counted.
    """
    t = _feedback(ws)
    empty = pd.DataFrame({"scale": pd.Series(dtype="str"), "score": pd.Series(dtype="float64"),
                          "n": pd.Series(dtype="int64"), "share": pd.Series(dtype="float64")})
    if t is None:
        return empty
    scored = t.filter(t.score.notnull())
    got = scored.group_by(["scale", "score"]).aggregate(n=scored.count()).execute()
    got["scale"] = got["scale"].astype("str")
    got["score"] = got["score"].astype("float64")
    got["n"] = got["n"].astype("int64")
    parts = []
    for scale in sorted(got["scale"].unique(), key=lambda s: (_SCALE_ORDER + (s,)).index(s)):
        part = got[got["scale"] == scale]
        if scale in _SCALE_RANGES and (part["score"] % 1 == 0).all():
            lo, hi = _SCALE_RANGES[scale]
            full = pd.DataFrame({"score": np.arange(lo, hi + 1, dtype="float64")})
            part = full.merge(part, on="score", how="outer")
            part["scale"] = scale
            part["n"] = part["n"].fillna(0).astype("int64")
        parts.append(part.sort_values("score"))
    if not parts:
        return empty
    out = pd.concat(parts, ignore_index=True)
    out["share"] = out["n"] / out.groupby("scale")["n"].transform("sum")
    return out[["scale", "score", "n", "share"]]


def feedback_languages(ws) -> pd.DataFrame:
    """Feedback per language.

    Parameters
    ----------
    ws : Workspace or ibis.Table
        A workspace, or a feedback table.

    Returns
    -------
    pandas.DataFrame
        One row per language, largest first: ``language`` (ISO code, ``"(missing)"``
        when not given), ``feedback`` (rows), ``share`` (of all feedback rows),
        ``with_text`` (rows with a non-blank text), ``with_score`` (rows with a score).
    """
    t = _feedback(ws)
    cols = ["language", "feedback", "share", "with_text", "with_score"]
    if t is None:
        return pd.DataFrame(columns=cols)
    has_text = (t.text.notnull() & (t.text.strip().length() > 0)).cast("int64")
    got = (t.group_by("language")
            .aggregate(feedback=t.count(), with_text=has_text.sum(), with_score=t.score.count())
            .execute())
    got["language"] = got["language"].astype("object").where(got["language"].notna(), "(missing)")
    got["language"] = got["language"].astype("str")
    for c in ("feedback", "with_text", "with_score"):
        got[c] = got[c].fillna(0).astype("int64")
    total = got["feedback"].sum()
    got["share"] = got["feedback"] / total if total else np.nan
    return got.sort_values(["feedback", "language"], ascending=[False, True], ignore_index=True)[cols]


def pull_table(pulls) -> pd.DataFrame:
    """The :class:`~cxlab.PullResult` objects of a run as a table.

    Returns
    -------
    pandas.DataFrame
        One row per pull: ``kind``, ``file`` (file name), ``format``, ``status``
        (``loaded`` / ``already_loaded``), ``rows_read``, ``rows_added``,
        ``duplicates_skipped``, ``sha256`` (first 12 hex digits), ``notes``.
    """
    from pathlib import Path

    rows = [{"kind": p.kind, "file": Path(p.source).name, "format": p.format, "status": p.status,
             "rows_read": p.rows_read, "rows_added": p.rows_added,
             "duplicates_skipped": p.duplicates_skipped, "sha256": p.sha256[:12],
             "notes": "; ".join(p.notes)} for p in pulls]
    cols = ["kind", "file", "format", "status", "rows_read", "rows_added", "duplicates_skipped",
            "sha256", "notes"]
    return pd.DataFrame(rows, columns=cols)


def loads_table(ws, *, last: int | None = None) -> pd.DataFrame:
    """The workspace manifest in a readable form (one row per pull, oldest first).

    Parameters
    ----------
    ws : Workspace
    last : int, optional
        Keep only the last ``last`` pulls.

    Returns
    -------
    pandas.DataFrame
        ``load_id``, ``finished_at`` (UTC, to the second), ``kind``, ``file``, ``format``,
        ``status``, ``rows_read``, ``rows_added``, ``duplicates_skipped``, ``sha256``
        (first 12 hex digits).
    """
    m = ws.loads()
    cols = ["load_id", "finished_at", "kind", "file", "format", "status", "rows_read",
            "rows_added", "duplicates_skipped", "sha256"]
    if m is None or len(m) == 0:
        return pd.DataFrame(columns=cols)
    m = m.rename(columns={"file_name": "file"}).copy()
    m["sha256"] = m["sha256"].astype("str").str[:12]
    m["finished_at"] = _utc(m["finished_at"]).dt.floor("s")
    out = m.reindex(columns=cols)
    return out.tail(last).reset_index(drop=True) if last else out


def summary_metrics(summary: pd.DataFrame, *, touchpoints: pd.DataFrame | None = None,
                    pulls=()) -> dict:
    """The headline numbers of the data-quality view, ready for ``metrics.json``.

    Parameters
    ----------
    summary : pandas.DataFrame
        What :func:`quality_summary` returned.
    touchpoints : pandas.DataFrame, optional
        What :func:`touchpoint_table` returned (for the unknown touchpoints).
    pulls : sequence of PullResult
        The pulls of this run.

    Returns
    -------
    dict
        ``rows`` and ``customers`` (per table), ``rows_read``, ``rows_added`` and
        ``duplicates_skipped`` (per kind, summed over this run's pulls), ``first_ts``,
        ``last_ts`` (events, ISO 8601 UTC), ``days`` (events, calendar days covered),
        ``unknown_touchpoints`` (names in the events that the map does not know) and
        ``unknown_touchpoint_events`` (their events).
    """
    by = summary.set_index("table")

    def num(table, col):
        v = by[col].get(table) if table in by.index else None
        return 0 if v is None or pd.isna(v) else int(v)

    def when(col):
        v = by[col].get("events") if "events" in by.index else None
        return None if v is None or pd.isna(v) else pd.Timestamp(v).isoformat()

    tables = list(by.index)
    out = {"rows": {t: num(t, "rows") for t in tables},
           "customers": {t: num(t, "customers") for t in tables},
           "rows_read": {}, "rows_added": {}, "duplicates_skipped": {},
           "first_ts": when("first_ts"), "last_ts": when("last_ts"), "days": num("events", "days")}
    for p in pulls:
        for key in ("rows_read", "rows_added", "duplicates_skipped"):
            out[key][p.kind] = out[key].get(p.kind, 0) + int(getattr(p, key))
    if touchpoints is not None:
        unknown = touchpoints[~touchpoints["in_map"].astype(bool)]
        out["unknown_touchpoints"] = [str(t) for t in unknown["touchpoint"]]
        out["unknown_touchpoint_events"] = int(unknown["events"].sum())
    return out


# --------------------------------------------------------------------------- display
def style_table(df: pd.DataFrame, *, percent=None, max_rows: int | None = 30, caption=None,
                right=None):
    """A pandas Styler for reports: no index, thousands separators, percentages, short times.

    Parameters
    ----------
    df : pandas.DataFrame
    percent : list of str, optional
        Columns shown as percentages (default: columns named ``share`` or ending in
        ``_share``).
    max_rows : int or None
        Show at most this many rows; a caption says how many were left out.
    caption : str, optional
    right : list of str, optional
        Text columns to align right (numbers already formatted as text); numeric
        columns are always right-aligned.

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    shown = df.head(max_rows) if max_rows and len(df) > max_rows else df
    notes = [caption] if caption else []
    if len(shown) < len(df):
        notes.append(f"first {len(shown):,} of {len(df):,} rows")
    if percent is None:
        percent = [c for c in df.columns if str(c) == "share" or str(c).endswith("_share")]
    fmt = {}
    for c in shown.columns:
        s = shown[c]
        if c in percent:
            fmt[c] = "{:.1%}"
        elif (str(c) in ("p_value", "q_value") or str(c).endswith(("_p", "_q"))) and pd.api.types.is_float_dtype(s):
            fmt[c] = lambda v: "" if pd.isna(v) else ("< 1e-16" if v < 1e-16 else f"{v:.2g}")
        elif pd.api.types.is_bool_dtype(s):
            fmt[c] = lambda v: "yes" if v is True or v == 1 else ("no" if v is False or v == 0 else "")
        elif pd.api.types.is_integer_dtype(s):
            fmt[c] = "{:,.0f}"
        elif pd.api.types.is_float_dtype(s):
            fmt[c] = "{:,.2f}"
        elif pd.api.types.is_datetime64_any_dtype(s):
            fmt[c] = lambda v: "" if pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")
        elif pd.api.types.is_timedelta64_dtype(s):
            fmt[c] = short_duration
    styler = shown.style.format(fmt, na_rep="–").hide(axis="index")
    styler = styler.format_index(lambda c: str(c).replace("_", " "), axis=1)
    numeric = [c for c in shown.columns if pd.api.types.is_numeric_dtype(shown[c])
               and not pd.api.types.is_bool_dtype(shown[c])] + list(right or [])
    align = {c: [{"selector": "", "props": "text-align: right;"},
                 {"selector": "th", "props": "text-align: right;"}] if c in numeric else
             [{"selector": "", "props": "text-align: left;"}] for c in shown.columns}
    styler = styler.set_table_styles([
        {"selector": "th", "props": "text-align: left; padding: 4px 10px; background: #f3f3f3;"},
        {"selector": "td", "props": "padding: 3px 10px;"},
        {"selector": "caption", "props": "caption-side: bottom; color: #666; text-align: left;"},
    ])
    styler = styler.set_table_styles(align, overwrite=False)
    if notes:
        styler = styler.set_caption(" · ".join(notes))
    return styler


MUTED_CSS = "color: #9a9a9a; background-color: #f7f7f7;"


def mute_rows(styler, rows, *, css: str = MUTED_CSS):
    """Grey out the rows of a :func:`style_table` Styler where ``rows`` (booleans, one per row
    of the table, in order) is true: cells too thin to judge stay visible but read as such."""
    import numpy as np

    rows = np.asarray(rows, dtype=bool)
    shown = styler.data
    if not rows[: len(shown)].any():
        return styler
    flags = pd.Series(rows[: len(shown)], index=shown.index)
    return styler.apply(lambda r: [css if flags[r.name] else "" for _ in r], axis=1)


def format_pct(x, *, digits: int = 1, missing: str = "") -> str:
    """A share for people: ``0.1653`` -> ``"16.5%"``; ``missing`` for a missing value."""
    return missing if x is None or pd.isna(x) else f"{100 * float(x):.{digits}f}%"


def short_duration(value) -> str:
    """A duration for people: ``"14d 10h"``, ``"4h 07m"``, ``"5m 43s"``, ``"44s"``; empty for NaT."""
    if value is None or pd.isna(value):
        return ""
    secs = pd.Timedelta(value).total_seconds()
    sign, secs = ("-" if secs < 0 else ""), abs(secs)
    d, rest = divmod(int(round(secs)), 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{sign}{d}d {h}h"
    if h:
        return f"{sign}{h}h {m:02d}m"
    if m:
        return f"{sign}{m}m {sec:02d}s"
    return f"{sign}{secs:.0f}s"


def summary_card(summary: pd.DataFrame):
    """:func:`quality_summary` turned sideways for reading: one row per measure, one column per table.

    Returns
    -------
    pandas.DataFrame
        Index-free table with a ``measure`` column and one text column per table
        (numbers already formatted with thousands separators, shares as percentages,
        times to the minute).
    """
    labels = {"rows": "rows", "customers": "customers", "first_ts": "first (UTC)",
              "last_ts": "last (UTC)", "days": "days covered", "active_days": "days with data",
              "sessions": "sessions", "touchpoints": "touchpoints",
              "unknown_touchpoints": "touchpoints not in the map", "channels": "channels",
              "value_share": "events with a value", "with_score": "feedback with a score",
              "with_text": "feedback with a text", "languages": "languages"}
    out = {"measure": list(labels.values())}
    for _, row in summary.iterrows():
        vals = []
        for key in labels:
            v = row[key]
            if v is None or pd.isna(v):
                vals.append("–")
            elif key in ("first_ts", "last_ts"):
                vals.append(pd.Timestamp(v).strftime("%Y-%m-%d %H:%M"))
            elif key == "value_share":
                vals.append(f"{float(v):.1%}")
            else:
                vals.append(f"{int(v):,}")
        out[str(row["table"])] = vals
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- plots
def plot_daily_events(data, *, by: str | None = "channel", ax=None, rolling: int | None = None):
    """Events per day, one line per level of ``by`` (largest first in the legend).

    Parameters
    ----------
    data : Workspace, ibis.Table or pandas.DataFrame
        A workspace or events table, or what :func:`daily_events` returned.
    by : str or None
        Split column when ``data`` is a workspace or table.
    ax : matplotlib Axes, optional
    rolling : int, optional
        Draw a centred rolling mean over that many days instead of the raw counts.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.dates as mdates
    import seaborn as sns

    df = data if isinstance(data, pd.DataFrame) else daily_events(data, by=by)
    ax = _new_ax(ax, (11, 4))
    title = "Events per day" + (f" by {by.replace('_', ' ')}" if by and by in df.columns else "")
    if df.empty:
        return _empty(ax, title, "no events")
    hue = by if by and by in df.columns else None
    y = "events"
    if rolling:
        df = df.sort_values("date").copy()
        if hue:
            df["events"] = df.groupby(hue)["events"].transform(
                lambda s: s.rolling(rolling, center=True, min_periods=1).mean())
        else:
            df["events"] = df["events"].rolling(rolling, center=True, min_periods=1).mean()
        title += f" ({rolling}-day rolling mean)"
    order = (df.groupby(hue)["events"].sum().sort_values(ascending=False).index.tolist()
             if hue else None)
    palette = dict(zip(order, sns.color_palette("tab10", len(order)))) if hue else None
    sns.lineplot(data=df, x="date", y=y, hue=hue, hue_order=order, palette=palette, ax=ax,
                 linewidth=1.3)
    ax.set_title(title, loc="left", fontweight="bold")
    ax.set_xlabel("date (UTC)")
    ax.set_ylabel("events per day")
    ax.set_ylim(bottom=0)
    _thousands(ax)
    loc = mdates.AutoDateLocator(maxticks=12)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    ax.grid(axis="y", alpha=0.3)
    if hue:
        ax.legend(title=by.replace("_", " "), loc="upper left", bbox_to_anchor=(1.01, 1),
                  frameon=False)
    sns.despine(ax=ax)
    return ax


def plot_touchpoints(data, *, journey=None, ax=None, value: str = "events"):
    """Horizontal bars per touchpoint, grouped and coloured by moment of truth.

    Touchpoints run top to bottom in map order; those not in the map come last, in grey.

    Parameters
    ----------
    data : Workspace, ibis.Table or pandas.DataFrame
        A workspace or events table, or what :func:`touchpoint_table` returned.
    journey : JourneyMap or path, optional
        The map (for order and colours; default map when None).
    ax : matplotlib Axes, optional
    value : {"events", "customers"}
        What the bars measure.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import seaborn as sns

    jm = JourneyMap.coerce(journey)
    df = data if isinstance(data, pd.DataFrame) else touchpoint_table(data, journey=jm)
    ax = _new_ax(ax, (10, max(3.0, 0.28 * len(df) + 1.2)))
    title = f"{value.capitalize()} per touchpoint, by moment of truth"
    if df.empty:
        return _empty(ax, title, "no touchpoints")
    palette = moment_palette(jm)
    colors = [palette.get(m, _UNMAPPED_COLOR) for m in df["moment"]]
    y = np.arange(len(df))
    ax.barh(y, df[value], color=colors, height=0.75)
    ax.set_yticks(y, df["touchpoint"])
    ax.invert_yaxis()
    ax.set_title(title, loc="left", fontweight="bold")
    ax.set_xlabel(value)
    ax.set_ylabel("")
    _thousands(ax, "x")
    top = float(df[value].max()) or 1.0
    ax.set_xlim(0, top * 1.15)
    total = df[value].sum() if value == "events" else None
    for yi, v in zip(y, df[value]):
        label = f"{v:,}" + (f"  ({v / total:.1%})" if total else "")
        ax.text(v + top * 0.005, yi, label, va="center", fontsize=8, color="0.25")
    # separators and moment labels between groups
    moments = df["moment"].tolist()
    for i in range(1, len(moments)):
        if moments[i] != moments[i - 1]:
            ax.axhline(i - 0.5, color="0.8", linewidth=0.8)
    from matplotlib.patches import Patch

    present = list(dict.fromkeys(moments))
    labels = {m.id: f"{m.id} · {m.phase}" for m in jm.moments}
    handles = [Patch(color=palette.get(m, _UNMAPPED_COLOR), label=labels.get(m, m)) for m in present]
    ax.legend(handles=handles, title="moment of truth", loc="upper left", bbox_to_anchor=(1.01, 1),
              frameon=False)
    ax.grid(axis="x", alpha=0.3)
    sns.despine(ax=ax)
    return ax


def plot_events_per_customer(data, *, ax=None, cap: float = 0.99):
    """Bars of how many customers have 1, 2, 3... events; the long tail lumped in one bar.

    Parameters
    ----------
    data : Workspace, ibis.Table or pandas.DataFrame
        A workspace or events table, or what :func:`events_per_customer` returned.
    ax : matplotlib Axes, optional
    cap : float
        The last bar holds every count above the one where this share of customers is
        reached (``"k+"``), so one heavy customer does not squash the chart.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import seaborn as sns

    df = data if isinstance(data, pd.DataFrame) else events_per_customer(data)
    ax = _new_ax(ax, (10, 3.8))
    title = "Events per customer"
    if df.empty:
        return _empty(ax, title, "no events")
    df = df.sort_values("events")
    reach = df.index[df["cumulative_share"] >= cap - 1e-12]
    k = int(df.loc[reach[0], "events"]) if len(reach) else int(df["events"].max())
    k = max(k, min(10, int(df["events"].max())))
    head = df[df["events"] < k]
    tail = df[df["events"] >= k]
    labels = [str(e) for e in head["events"]] + ([f"{k}+" if tail["events"].max() > k else str(k)]
                                                  if len(tail) else [])
    heights = list(head["customers"]) + ([int(tail["customers"].sum())] if len(tail) else [])
    x = np.arange(len(labels))
    ax.bar(x, heights, color=sns.color_palette("colorblind")[0], width=0.8)
    step = max(1, int(np.ceil(len(labels) / 30)))
    ax.set_xticks(x[::step], labels[::step])
    if len(tail) and tail["events"].max() > k:
        ticks = list(x[::step])
        if x[-1] not in ticks:
            ax.set_xticks(ticks + [x[-1]], labels[::step] + [labels[-1]])
    cum = df["cumulative_share"].to_numpy()
    median = int(df["events"].to_numpy()[np.searchsorted(cum, 0.5 - 1e-12)])
    mean = float((df["events"] * df["customers"]).sum() / df["customers"].sum())
    ax.set_title(f"{title} (median {median:,}, mean {mean:,.1f}, max {int(df['events'].max()):,})",
                 loc="left", fontweight="bold")
    ax.set_xlabel("events per customer")
    ax.set_ylabel("customers")
    _thousands(ax)
    ax.grid(axis="y", alpha=0.3)
    sns.despine(ax=ax)
    return ax


def _score_colors(scale: str, scores) -> list:
    """Red for detractors / low scores, amber for passives / middle, green for promoters / high."""
    red, amber, green = "#d55e00", "#e6ab02", "#009e73"
    out = []
    for s in scores:
        if scale == "nps":
            out.append(red if s <= 6 else amber if s <= 8 else green)
        elif scale == "ces":  # customer effort: high is good on the 1-7 agreement scale
            out.append(red if s <= 3 else amber if s <= 4 else green)
        else:
            out.append(red if s <= 2 else amber if s <= 3 else green)
    return out


def plot_score_distribution(data, *, axes=None):
    """Feedback scores, one panel per scale, bars coloured low / middle / high.

    Parameters
    ----------
    data : Workspace, ibis.Table or pandas.DataFrame
        A workspace or feedback table, or what :func:`score_distribution` returned.
    axes : sequence of matplotlib Axes, optional
        One per scale present; a new figure is made when None.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    df = data if isinstance(data, pd.DataFrame) else score_distribution(data)
    scales = list(dict.fromkeys(df["scale"])) if len(df) else []
    if axes is None:
        fig, axes = plt.subplots(1, max(1, len(scales)), figsize=(5.2 * max(1, len(scales)), 3.6),
                                 layout="constrained", squeeze=False)
        axes = list(axes.ravel())
    else:
        axes = list(np.atleast_1d(axes))
        fig = axes[0].figure
    if not scales:
        _empty(axes[0], "Feedback scores", "no scored feedback")
        return fig
    if len(axes) < len(scales):
        raise ValueError(f"axes has {len(axes)} Axes for {len(scales)} scales ({', '.join(scales)})")
    for ax, scale in zip(axes, scales):
        part = df[df["scale"] == scale]
        labels = [f"{s:g}" for s in part["score"]]
        x = np.arange(len(part))
        ax.bar(x, part["n"], color=_score_colors(scale, part["score"]), width=0.8)
        ax.set_xticks(x, labels)
        n = int(part["n"].sum())
        extra = ""
        if scale == "nps" and n:
            promoters = part.loc[part["score"] >= 9, "n"].sum()
            detractors = part.loc[part["score"] <= 6, "n"].sum()
            nps = 100 * (promoters - detractors) / n
            extra = f", NPS {nps:+.0f}"
        elif n:
            mean = float((part["score"] * part["n"]).sum() / n)
            extra = f", mean {mean:.2f}"
        ax.set_title(f"{_SCALE_LABELS.get(scale, scale)}: {n:,} answers{extra}", loc="left",
                     fontweight="bold", fontsize=10)
        ax.set_xlabel("score")
        ax.set_ylabel("answers")
        _thousands(ax)
        ax.grid(axis="y", alpha=0.3)
        sns.despine(ax=ax)
    for ax in axes[len(scales):]:
        ax.set_visible(False)
    fig.suptitle("Feedback scores per scale", x=0.01, ha="left", fontweight="bold")
    return fig


__all__ = ["format_pct", "quality_summary", "column_profile", "touchpoint_table", "daily_events",
           "events_per_customer", "score_distribution", "feedback_languages", "pull_table",
           "summary_metrics",
           "loads_table", "mute_rows", "style_table", "summary_card", "moment_palette", "plot_daily_events",
           "plot_touchpoints", "plot_events_per_customer", "plot_score_distribution", "UNMAPPED"]
