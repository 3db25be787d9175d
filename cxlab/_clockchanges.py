"""Local times that a change of UTC offset skipped or repeated, counted in the engine.

When the clocks go forward (Europe/Rome, last Sunday of March, 02:00 -> 03:00) the wall
times 02:00-02:59 do not exist; when they go back (last Sunday of October, 03:00 -> 02:00)
02:00-02:59 occur twice. A naive timestamp in such a window has no single UTC value, so the
conversion applies a rule (DuckDB/ICU: a skipped time is read with the offset before the
change, a repeated one as the later occurrence). :func:`count_sql` counts those rows in the
same scan as the other timestamp checks; :func:`notes` says how many there were, which rule
was applied (measured on the engine, not assumed) and the earliest such time.

The windows come from the zone's rules in the IANA database (:mod:`zoneinfo`), 1900-2100.
"""
from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_HOUR_US = 3_600_000_000
_YEARS = (1900, 2100)
#: kind -> (what happened to the local times, what the clocks did)
KINDS = {"gap": ("do not exist", "skipped when the clocks went forward"),
         "fold": ("occur twice", "repeated when the clocks went back")}


@functools.lru_cache(maxsize=32)
def windows(tz: str) -> tuple[tuple[str, datetime, datetime, timedelta, timedelta], ...]:
    """Every change of UTC offset of ``tz`` in 1900-2100 as ``(kind, start, end, before,
    after)``: ``kind`` "gap" (the naive local times ``start <= t < end`` do not exist) or
    "fold" (they occur twice), and the offsets before and after the change."""
    zone = ZoneInfo(tz)

    def offset(second: int) -> timedelta:
        return datetime.fromtimestamp(second, zone).utcoffset()

    second = int(datetime(_YEARS[0], 1, 1, tzinfo=timezone.utc).timestamp())
    end = int(datetime(_YEARS[1], 1, 1, tzinfo=timezone.utc).timestamp())
    out, before = [], offset(second)
    while second < end:                     # a day at a time, then bisect to the second
        nxt = second + 86_400
        after = offset(nxt)
        if after != before:
            lo, hi = second, nxt
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == before else (lo, mid)
            change = _EPOCH + timedelta(seconds=hi)        # first UTC second of the new offset
            a, b = change + before, change + after
            out.append(("gap", a, b, before, after) if after > before else ("fold", b, a, before, after))
            before = after
        second = nxt
    return tuple(out)


def _us(t: datetime) -> int:
    return (t - _EPOCH) // _US


def count_sql(tz: str | None, local: str) -> dict[str, str]:
    """Aggregates over a scan where ``local`` is the naive local TIMESTAMP: ``dst_<kind>``
    (rows in a window of that kind) and ``dst_<kind>_first`` (the earliest such time).
    Empty when ``tz`` never changes offset. Cheap per row: an integer hour test, and the
    exact window test only for rows in an hour that holds a window."""
    if tz is None:
        return {}
    us = f"epoch_us({local})"
    out = {}
    for kind in KINDS:
        ws = [(_us(a), _us(b)) for k, a, b, _, _ in windows(tz) if k == kind]
        if not ws:
            continue
        hours = sorted({h for a, b in ws for h in range(a // _HOUR_US, (b - 1) // _HOUR_US + 1)})
        exact = " OR ".join(f"{us} BETWEEN {a} AND {b - 1}" for a, b in ws)
        # CASE evaluates a branch only on the rows that reach it: most rows stop at the
        # time-of-day test, a few at the hour test; the exact windows see only the hits
        hit = (f"CASE WHEN {_time_of_day_sql(us, ws)} THEN CASE WHEN {us} // {_HOUR_US} IN "
               f"({', '.join(map(str, hours))}) THEN ({exact}) ELSE FALSE END ELSE FALSE END")
        out[f"dst_{kind}"] = f"count(*) FILTER (WHERE {hit})"
        out[f"dst_{kind}_first"] = f"min({local}) FILTER (WHERE {hit})"
    return out


def _time_of_day_sql(us: str, ws: list[tuple[int, int]]) -> str:
    """A test true for every row whose time of day falls in one of the windows' (merged)."""
    day = 24 * _HOUR_US
    spans = []
    for a, b in ws:
        lo, hi = a % day, (b - 1) % day
        spans += [(lo, hi)] if lo <= hi else [(0, hi), (lo, day - 1)]
    merged: list[list[int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    shift = _us(_EPOCH) - _us(datetime(1800, 1, 1))   # whole days: times of day after 1800 stay >= 0
    return "(" + " OR ".join(f"({us} + {shift}) % {day} BETWEEN {lo} AND {hi}" for lo, hi in merged) + ")"


def _fmt_offset(td: timedelta) -> str:
    sign = "-" if td < timedelta(0) else "+"
    s = abs(int(td.total_seconds()))
    hm = f"{s // 3600:02d}:{s % 3600 // 60:02d}"
    return f"{sign}{hm}" + (f":{s % 60:02d}" if s % 60 else "")


def _fmt_span(td: timedelta) -> str:
    s = int(abs(td).total_seconds())
    parts = [(s // 3600, "h"), (s % 3600 // 60, "min"), (s % 60, "s")]
    return " ".join(f"{n} {u}" for n, u in parts if n) or "0 s"


def notes(con, tz: str, counts: dict, *, column: str) -> list[str]:
    """One line per kind found in ``counts`` (the results of :func:`count_sql`): how many
    local times, the change, the earliest, and the rule the engine applied to it (the
    offset it used, asked of the engine with the same conversion as the pull)."""
    out = []
    zone = ZoneInfo(tz)
    for kind, (what, change) in KINDS.items():
        n, first = counts.get(f"dst_{kind}"), counts.get(f"dst_{kind}_first")
        if not n or first is None:
            continue
        stamp = f"TIMESTAMP '{first.isoformat(sep=' ')}'"
        zone_sql = "'" + tz.replace("'", "''") + "'"
        used = timedelta(microseconds=int(con.execute(
            f"SELECT epoch_us({stamp}) - epoch_us(timezone({zone_sql}, {stamp}))").fetchall()[0][0]))
        _, _, _, before, after = next(w for w in windows(tz) if w[0] == kind and w[1] <= first < w[2])
        name = next((d.tzname() for d in (first.replace(tzinfo=zone, fold=f) for f in (0, 1))
                     if d.utcoffset() == used), None)
        applied = f"{_fmt_offset(used)}" + (f" ({name})" if name and name[0] not in "+-" else "")
        if kind == "gap":
            rule = (f"read with the offset before the change, {applied}, i.e. moved forward by "
                    f"{_fmt_span(after - before)}" if used == before else
                    f"read with the offset after the change, {applied}, i.e. moved back by "
                    f"{_fmt_span(after - before)}" if used == after else f"read with the offset {applied}")
        else:
            rule = (f"read as the later occurrence, {applied}" if used == after else
                    f"read as the earlier occurrence, {applied}" if used == before else
                    f"read with the offset {applied}")
        out.append(f"{column}: {n} local time{'s' if n != 1 else ''} {what if n != 1 else _one(what)} "
                   f"in {tz} ({change}, {_fmt_offset(before)} to {_fmt_offset(after)}; earliest "
                   f"{first.isoformat(sep=' ')}): {rule}")
    return out


def _one(what: str) -> str:
    return {"do not exist": "does not exist", "occur twice": "occurs twice"}[what]
