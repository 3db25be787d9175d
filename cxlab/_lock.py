"""Who holds a DuckDB workspace file, and how: the text of :class:`WorkspaceLockedError`.

DuckDB takes a POSIX lock on the whole file: a shared (READ) lock for a read-only connection,
an exclusive (WRITE) one otherwise. Readers share the file; a writer excludes everyone.
On Linux ``/proc/locks`` lists every holder with its kind; elsewhere the pid comes from
DuckDB's own message, and the kind from what was asked (a reader is refused only by a writer)
and DuckDB's hint that a read-only open would succeed (the holders are then readers).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

READ, WRITE = "read-only", "for writing"
_DUCKDB_PID = re.compile(r"\(PID (\d+)\)")
_READ_HINT = "would be able to open this database in read-only mode"


@dataclass(frozen=True)
class Holder:
    """A process holding the workspace file: ``mode`` is ``read-only`` or ``for writing``."""

    pid: int
    mode: str
    command: str | None = None
    role: str | None = None

    def __str__(self) -> str:
        what = ": ".join(x for x in (self.command, self.role) if x)
        return f"pid {self.pid}" + (f" ({what})" if what else "")


def is_lock_error(exc: BaseException) -> bool:
    """True when DuckDB refused to open a file because another process holds its lock."""
    return "could not set lock" in str(exc).lower()


def holders(path, exc: BaseException, *, read_only: bool) -> list[Holder]:
    """The processes holding ``path``, from /proc/locks, else from DuckDB's message ``exc``."""
    found = _proc_locks(Path(path))
    if not found:
        m = _DUCKDB_PID.search(str(exc))
        if m:
            reader = not read_only and _READ_HINT in str(exc)
            found = [(int(m.group(1)), READ if reader else WRITE)]
    return [Holder(pid, mode, *_describe(pid)) for pid, mode in found if pid != os.getpid()]


def _proc_locks(path: Path) -> list[tuple[int, str]]:
    """(pid, mode) of the POSIX locks on ``path`` listed in /proc/locks (Linux), else []."""
    try:
        st = path.stat()
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or "->" in fields:  # "->" marks a process waiting for a lock
            continue
        kind, pid, dev = fields[3], fields[4], fields[5].split(":")
        if len(dev) != 3 or not pid.isdigit():
            continue
        try:
            same = (int(dev[0], 16), int(dev[1], 16), int(dev[2])) == (
                os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
        except ValueError:
            continue
        if same:
            out.append((int(pid), READ if kind == "READ" else WRITE))
    return sorted(set(out))


_ROLES = (  # (role, test on the command lines of the process and its ancestors)
    ("an explorer (cxlab explore / Voilà)", lambda chain: any(_has(c, "voila") for c in chain)),
    ("a report run (cxlab report / papermill)",
     lambda chain: any(_has(c, "papermill") or _cxlab(c, "report") for c in chain)),
    ("a cxlab pull", lambda chain: _cxlab(chain[0], "pull")),
    ("a notebook (a Jupyter kernel)", lambda chain: _has(chain[0], "ipykernel")),
)
_ADVICE = {
    _ROLES[0][0]: "stop the explorer (Ctrl-C in its terminal)",
    _ROLES[1][0]: "wait for the report to finish",
    _ROLES[2][0]: "wait for the pull to finish",
    _ROLES[3][0]: "shut that notebook's kernel down (or close the workspace in it: ws.close())",
}


def advice(found: list[Holder]) -> str:
    """What to do about the holders, e.g. "stop the explorer (Ctrl-C in its terminal)"."""
    todo = [_ADVICE[h.role] for h in found if h.role in _ADVICE]
    return ", ".join(dict.fromkeys(todo)) if todo else "close the workspace in that process"


def _has(cmd: list[str], word: str) -> bool:
    return any(word in Path(arg).name.lower() for arg in cmd)


def _cxlab(cmd: list[str], sub: str) -> bool:
    return any(Path(a).name in ("cxlab", "cxlab.cli") for a in cmd) and sub in cmd


def _describe(pid: int) -> tuple[str | None, str | None]:
    """(shortened command line, role) of ``pid``; (None, None) when it cannot be read."""
    try:
        import psutil

        proc = psutil.Process(pid)
        chain = [proc.cmdline()]
        for parent in proc.parents()[:3]:
            try:
                chain.append(parent.cmdline())
            except psutil.Error:
                break
    except Exception:  # psutil missing, the process gone, or not ours to read
        return None, None
    if not chain[0]:
        return None, None
    role = next((name for name, test in _ROLES if test(chain)), None)
    return _short(chain[0]), role


def _short(cmd: list[str], width: int = 70) -> str:
    text = " ".join(" ".join([Path(cmd[0]).name, *cmd[1:]]).split())  # one line
    return text if len(text) <= width else text[:width - 1] + "…"


def message(path, found: list[Holder], *, read_only: bool, waited: str | None) -> str:
    """The text of WorkspaceLockedError: who holds ``path``, how, and what to do."""
    mode = found[0].mode if found else (WRITE if read_only else None)
    who = " and ".join(str(h) for h in found) or "another process"
    held = f"open {mode} by {who}" if mode else f"open in {who}"
    want = "read" if read_only else "opened for writing"
    head = (f"workspace {path} was still {held} after waiting {waited}" if waited
            else f"workspace {path} is {held}")
    retry = " and retry" if waited else (" and retry, or wait for it (cxlab pull --wait 10min; "
                                         "connect(..., wait='10min'))")
    return f"{head}, so it cannot be {want}: {advice(found)}{retry}"
