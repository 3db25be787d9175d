"""Typed errors raised by cxlab.

Every error about an export names the file and, where one applies, the row (1-based
data row, header excluded) and the column, so an analyst can open the file and see it.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class CxlabError(Exception):
    """Base class of every error cxlab raises on purpose."""


class JourneyMapError(CxlabError, ValueError):
    """A journey map is invalid; the message names the offending key."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.reason = message
        super().__init__(f"journey map: {key}: {message}")


class ExportError(CxlabError, ValueError):
    """An export cannot be pulled. Carries ``path``, ``row`` and ``column`` when known."""

    def __init__(self, path, message: str, *, row: int | None = None,
                 column: str | None = None, value=None):
        self.path = str(path) if path is not None else None
        self.row = row
        self.column = column
        self.value = value
        where = [f"{self.path}"] if self.path else []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        self.reason = message
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class EmptyExportError(ExportError):
    """The file is empty or has a header and no rows."""


class UnreadableExportError(ExportError):
    """The file is not what its name says: binary garbage, a truncated gzip, corrupt Parquet."""


class MissingColumnError(ExportError):
    """A required column is missing (the message suggests near names)."""


class TimestampError(ExportError):
    """A timestamp cannot be parsed, or naive timestamps came without ``tz=``, or zones mix."""


class NullValueError(ExportError):
    """A required column holds an empty value."""


class ScoreRangeError(ExportError):
    """A feedback score is outside its scale, or the scale is unknown."""


class SchemaError(ExportError):
    """The canonical table does not meet its data contract (pandera)."""


class SourceChangedError(ExportError):
    """A source (the same file path, same kind) was pulled before with other content.

    ``earlier`` holds the manifest rows (dicts) of the earlier loads still in the
    workspace. Pull again with ``replace=True`` to swap their rows for the new file's, or
    with ``append=True`` when the file is new data to add beside them.
    """

    def __init__(self, path, message: str, *, earlier=()):
        self.earlier = list(earlier)
        super().__init__(path, message)


class FileChangedError(ExportError):
    """The file changed (size, modification time or inode) while the pull was reading it."""


class LineTooLongError(ExportError):
    """A CSV line is longer than the reader's maximum line size (``max_line_size=``)."""


class ModelFileError(CxlabError, ValueError):
    """A saved model file cannot be loaded (empty, truncated, not a cxlab model, an array
    missing or of the wrong shape or type, another format version). Carries ``path``."""

    def __init__(self, path, message: str):
        self.path = str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}")


class WorkspaceError(CxlabError, RuntimeError):
    """The workspace cannot do what was asked (e.g. pulling into a read-only Spark workspace)."""


class WorkspaceLockedError(WorkspaceError):
    """Another process holds the workspace file, so it cannot be opened as asked.

    A writer (a pull, a notebook with a writable workspace) excludes everyone; readers (an
    explorer, a notebook opened ``read_only=True``) exclude writers only. ``holders`` lists
    each holding process (``pid``, ``mode``: ``read-only`` or ``for writing``, ``command``,
    ``role``) as far as the system tells; ``waited`` is the wait given (``None``: none).
    """

    def __init__(self, path, message: str, *, holders=(), waited=None):
        self.path = str(path)
        self.holders = tuple(holders)
        self.waited = waited
        super().__init__(message)


class ReportParameterError(CxlabError, ValueError):
    """A parameter given to a report is refused: unknown name, wrong type or not a literal.

    Raised before anything runs (``cxlab report`` exits with status 2).
    """


class PeriodError(ReportParameterError):
    """A report's period parameter (``period``, ``period_start``, ``period_end``) is refused.

    ``parameter`` names it and ``value`` is what was given; the message lists the accepted
    forms (see :mod:`cxlab.periods`).
    """

    def __init__(self, parameter: str, value, message: str):
        self.parameter = parameter
        self.value = value
        self.reason = message
        super().__init__(f"{parameter}={value!r} {message}")


class ExplorerError(CxlabError, RuntimeError):
    """``cxlab explore`` cannot serve: the port is in use, or Voilà did not answer on it."""


class NothingToExploreError(CxlabError, ValueError):
    """The explorer was given neither events nor feedback (an empty workspace): the message
    says what to pull first. A workspace with either one opens (behaviour-only, voice-only)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or an empty string."""
    choices = [str(c) for c in choices]
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if not close:
        # substring match catches 'customer' -> 'customer_id', 'time' -> 'event_time'
        subs = [c for c in choices if name.lower() in c.lower() or c.lower() in name.lower()]
        return f" (did you mean {subs[0]!r}?)" if subs else ""
    return f" (did you mean {lowered[close[0]]!r}?)"
