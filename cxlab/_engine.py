"""Engine helpers shared by the analyses: every analysis takes a workspace table (Ibis) or
a pandas DataFrame and runs its heavy aggregation in the engine."""
from __future__ import annotations

import pandas as pd

from .exceptions import did_you_mean

EVENT_COLUMNS = ("customer_id", "ts", "touchpoint")


def as_table(events, *, required=EVENT_COLUMNS):
    """An Ibis table from an Ibis table, a Workspace or a pandas DataFrame.

    A DataFrame becomes an in-memory table (DuckDB); ``ts`` must be timezone-aware.
    Raises ValueError naming a missing column, with a "did you mean" hint.
    """
    import ibis

    if hasattr(events, "events") and callable(events.events):  # a workspace
        events = events.events()
    if isinstance(events, pd.DataFrame):
        if "ts" in events.columns and getattr(events["ts"].dtype, "tz", None) is None:
            raise ValueError("events['ts'] must be timezone-aware (UTC); "
                             "use df['ts'] = df['ts'].dt.tz_localize('UTC') or pull through cxlab.io")
        events = ibis.memtable(events)
    if not hasattr(events, "columns"):
        raise TypeError(f"events must be an Ibis table, a Workspace or a DataFrame, not {type(events).__name__}")
    for col in required:
        if col not in events.columns:
            raise ValueError(f"events has no column {col!r}" + did_you_mean(col, events.columns)
                             + f"; columns: {list(events.columns)}")
    return events


def check_columns(table, columns, *, argument: str) -> list[str]:
    """Validate ``by=``-style column arguments against the table, with hints."""
    if columns is None:
        return []
    cols = [columns] if isinstance(columns, str) else list(columns)
    for c in cols:
        if c not in table.columns:
            raise ValueError(f"{argument}={c!r} is not a column of events" + did_you_mean(c, table.columns)
                             + f"; columns: {list(table.columns)}")
    return cols
