"""Run report notebooks: papermill with parameters, HTML without code, and ``metrics.json``.

A report is a notebook under ``notebooks/reports/`` (see STYLE.md). :func:`run_notebook`
executes it in a temporary folder under ``reports/``, converts it to HTML (code hidden,
images embedded) and only then moves the results to ``reports/<YYYY-MM-DD>/``::

    reports/2026-06-30/pull.html           the stakeholder page
    reports/2026-06-30/pull.ipynb          the executed notebook
    reports/2026-06-30/pull.metrics.json   the headline numbers (write_metrics)

A run that fails leaves the earlier report of the day untouched and keeps the executed
notebook as ``<name>.failed.ipynb`` next to it, so the traceback can be read.

Parameters given to a run are checked against the notebook's ``parameters`` cell before
anything runs (:func:`report_parameters`, :func:`parse_parameter`): only declared names,
only literals of the declared type; nothing given is ever evaluated as code. A run holds
``<out>/.lock`` (:func:`report_lock`) so two runs cannot write the same folder at once,
and every run regenerates ``<out>/index.html`` (:func:`write_index`): all runs, their
status and the trend of their headline numbers, each compared with the previous run
(:func:`compare_with_previous`).

Examples
--------
>>> from cxlab.reports import run_notebook
>>> run = run_notebook("pull", {"events_path": "data/raw/demo/events.csv"})  # doctest: +SKIP
>>> run.html                                                                  # doctest: +SKIP
PosixPath('reports/2026-06-30/pull.html')
"""
from __future__ import annotations

import ast
import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .exceptions import CxlabError, ReportParameterError, did_you_mean

KERNEL = "python3"
_RESERVED = ("cxlab_version", "created_at", "parameters", "workspace", "run")
#: keys a report writes that are not headline numbers: the brief (display text) and the periods
_NOT_HEADLINE = _RESERVED + ("brief", "period", "previous_period")
_SET_BY_RUN = ("metrics_path",)  # parameters the run sets itself


class ReportLockedError(CxlabError, RuntimeError):
    """Another run holds the reports folder's lock (``<out>/.lock``)."""


class ReportError(CxlabError, RuntimeError):
    """A report notebook failed; the message names the failing cell and its error.

    Attributes
    ----------
    name : str
        The report.
    failed_notebook : Path or None
        The executed notebook up to the failure (``<out>/<date>/<name>.failed.ipynb``).
    ename, evalue : str or None
        The error's type and message inside the notebook.
    """

    def __init__(self, message: str, *, name: str, failed_notebook=None, ename=None, evalue=None):
        self.name = name
        self.failed_notebook = Path(failed_notebook) if failed_notebook else None
        self.ename = ename
        self.evalue = evalue
        super().__init__(message)


@dataclass(frozen=True)
class ReportRun:
    """What :func:`run_notebook` wrote.

    ``html`` (code hidden, images embedded), ``notebook`` (the executed ``.ipynb``) and
    ``metrics`` (``<name>.metrics.json``) are paths under ``<out>/<date>/``.
    """

    name: str
    date: str
    html: Path
    notebook: Path
    metrics: Path
    parameters: dict = field(default_factory=dict)

    def read_metrics(self) -> dict:
        """The metrics JSON as a dict."""
        return json.loads(Path(self.metrics).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- finding
def _repo_root() -> Path:
    import cxlab

    return Path(cxlab.__file__).resolve().parent.parent


def notebook_dirs(kind: str) -> list[Path]:
    """Where ``notebooks/<kind>/`` notebooks are looked up: the repository next to the
    installed package, then the current directory."""
    dirs = [_repo_root() / "notebooks" / kind, Path.cwd() / "notebooks" / kind]
    out = []
    for d in dirs:
        if d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def _report_dirs() -> list[Path]:
    return notebook_dirs("reports")


def available() -> list[str]:
    """Names of the report notebooks that :func:`notebook_path` can find."""
    names = set()
    for d in _report_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.ipynb") if not p.name.startswith("."))
    return sorted(names)


def notebook_path(name: str) -> Path:
    """The report notebook ``notebooks/reports/<name>.ipynb``.

    Looked up in the repository next to the installed package, then under the current
    directory.

    Raises
    ------
    FileNotFoundError
        Listing the reports that exist, with a "did you mean" hint.
    """
    stem = Path(str(name)).name
    stem = stem.removesuffix(".ipynb")
    for d in _report_dirs():
        p = d / f"{stem}.ipynb"
        if p.is_file():
            return p
    names = available()
    where = " or ".join(str(d) for d in _report_dirs())
    listing = ", ".join(names) if names else "none"
    raise FileNotFoundError(f"no report notebook {stem!r} in {where}; available reports: {listing}"
                            + did_you_mean(stem, names))


# --------------------------------------------------------------------------- metrics
def _json_default(value):
    import numpy as np
    import pandas as pd

    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (pd.Timestamp, _dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, (pd.Series, pd.Index)):
        return value.tolist()
    if isinstance(value, pd.DataFrame):
        return json.loads(value.to_json(orient="records", date_format="iso"))
    if value is pd.NA or value is pd.NaT:
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _clean(value):
    """NaN and infinities become null (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def workspace_fingerprint(ws) -> dict:
    """What identifies a workspace's content: the sha256 of every file whose rows it holds.

    Returns
    -------
    dict
        ``path`` (the workspace file or folder), ``engine``, ``loads`` (one entry per
        pull whose rows are in the workspace, status ``loaded`` or ``replaced`` and not
        superseded by a later replacement: ``kind``, ``file``, ``sha256``, ``rows_added``),
        ``sha256`` (their sha256 list, in pull order) and ``fingerprint`` (sha256 of that
        list: two workspaces built from the same files in the same order share it; a
        replaced export changes it, a pull that adds nothing does not).
    """
    loads = ws.loads()
    entries = []
    if loads is not None and len(loads):
        loaded = loads
        if "status" in loads:
            from .workspace import LIVE_STATUSES

            loaded = loads[loads["status"].astype("str").isin(LIVE_STATUSES)]
        if "superseded_by" in loaded:
            loaded = loaded[loaded["superseded_by"].isna()]
        for row in loaded.to_dict("records"):
            added = row.get("rows_added")
            entries.append({"kind": str(row.get("kind")), "file": str(row.get("file_name")),
                            "sha256": str(row.get("sha256")),
                            "rows_added": None if added is None or added != added else int(added)})
    shas = [e["sha256"] for e in entries]
    return {"path": str(getattr(ws, "path", "")), "engine": getattr(ws, "engine", None),
            "loads": entries, "sha256": shas,
            "fingerprint": hashlib.sha256("\n".join(shas).encode()).hexdigest()}


def write_metrics(path, metrics: dict, *, parameters: dict | None = None, workspace=None) -> Path | None:
    """Write a report's headline numbers as JSON (the last cell of a report notebook).

    Parameters
    ----------
    path : str or Path
        Where to write; an empty string writes nothing (a notebook run by hand).
    metrics : dict
        The headline numbers (JSON-able; numpy numbers, timestamps and NaN are converted).
    parameters : dict, optional
        The notebook's parameters, recorded as they were.
    workspace : Workspace, optional
        Recorded by :func:`workspace_fingerprint` (the manifest's sha256 list).

    Returns
    -------
    Path or None
        The file written.

    Notes
    -----
    The JSON holds the metrics at the top level plus ``cxlab_version``, ``created_at``
    (UTC, ISO 8601), ``parameters`` and ``workspace``; a metric may not use these names.
    """
    if not path:
        return None
    clash = [k for k in metrics if k in _RESERVED]
    if clash:
        raise ValueError(f"metric names {clash} are reserved for {_RESERVED}; rename them")
    from . import __version__

    doc = dict(metrics)
    doc["cxlab_version"] = __version__
    doc["created_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    doc["parameters"] = dict(parameters or {})
    doc["workspace"] = workspace_fingerprint(workspace) if workspace is not None else None
    text = json.dumps(_clean(json.loads(json.dumps(doc, default=_json_default))), indent=2,
                      ensure_ascii=False, allow_nan=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- parameters
_SCALARS = (str, int, float, bool, type(None))
_TYPE_NAMES = {str: "str", int: "int", float: "float", bool: "bool", type(None): "None", list: "list"}
_MAX_VALUE_CHARS = 4096


@dataclass(frozen=True)
class Parameter:
    """One entry of a report notebook's ``parameters`` cell.

    ``type`` is the type of the default literal (``"str"``, ``"int"``, ``"float"``,
    ``"bool"``, ``"None"`` or ``"list"``); ``help`` is the line's ``# comment``.
    """

    name: str
    type: str
    default: object
    help: str = ""

    def __str__(self) -> str:
        text = f"{self.name}: {self.type} = {self.default!r}"
        return f"{text}  # {self.help}" if self.help else text


def _is_plain_literal(value) -> bool:
    if isinstance(value, _SCALARS):
        return True
    return isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value)


def _parameters_cell(nb) -> str | None:
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell.source
    return None


def report_parameters(name) -> dict[str, Parameter]:
    """The parameters a report declares, read from its ``parameters`` cell with :mod:`ast`.

    The cell may hold only ``name = <literal>`` or ``name: type = <literal>`` lines, each
    optionally followed by a ``# comment``; a literal is a str, int, float, bool, None or
    a list of those. Nothing in the notebook is executed.

    Parameters
    ----------
    name : str
        The report (see :func:`notebook_path`).

    Returns
    -------
    dict
        Name -> :class:`Parameter`, in the cell's order (``metrics_path`` included).

    Raises
    ------
    ReportParameterError
        The notebook has no ``parameters`` cell, or the cell holds anything else.
    """
    import nbformat

    path = notebook_path(name)
    source = _parameters_cell(nbformat.read(path, as_version=4))
    if source is None:
        raise ReportParameterError(f"report {path.stem!r} has no cell tagged 'parameters'")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ReportParameterError(f"report {path.stem!r}: parameters cell line {exc.lineno}: "
                                   f"{exc.msg}") from None
    lines = source.splitlines()
    out: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        else:
            raise ReportParameterError(
                f"report {path.stem!r}: parameters cell line {node.lineno} is not a `name = <literal>` "
                f"assignment; move computed values to the next cell")
        try:
            default = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError):
            default = ...
        if default is ... or not _is_plain_literal(default):
            raise ReportParameterError(
                f"report {path.stem!r}: parameter {target!r} (line {node.lineno}) is not a plain "
                f"literal (str, int, float, bool, None or a list of those)")
        line = lines[node.end_lineno - 1] if node.end_lineno else ""
        comment = ""
        for tok in _comments(line):
            comment = tok
        out[target] = Parameter(target, _TYPE_NAMES[type(default)], default, comment)
    return out


def _comments(line: str) -> list[str]:
    import io
    import tokenize

    try:
        return [t.string.lstrip("#").strip() for t in tokenize.generate_tokens(io.StringIO(line).readline)
                if t.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError):
        return []


def _type_ok(value, declared: Parameter) -> bool:
    kind = declared.type
    if kind == "None":  # no type to go by: any plain literal
        return _is_plain_literal(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "list":
        if not (isinstance(value, list) and _is_plain_literal(value)):
            return False
        kinds = {type(v) for v in declared.default}
        if len(kinds) == 1 and declared.default:  # a list of one type stays of that type
            proto = Parameter(declared.name, _TYPE_NAMES[kinds.pop()], declared.default[0])
            return all(_type_ok(v, proto) for v in value)
        return True
    return False


def _contains_call(text: str) -> bool:
    """Text that reads as a Python call (``f(x)``, ``os.system("...")``): refused for clarity.

    Safe either way (a str value is injected as a string literal), but such a value is far
    more likely an attempt to run code than a path or a date. ``x (1).csv`` is a path.
    """
    if not re.search(r"[A-Za-z_][\w.]*\(", text) and "lambda" not in text:
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(n, (ast.Call, ast.Lambda)) for n in ast.walk(tree))


def parse_parameter(text: str, declared: dict[str, Parameter], *, report: str = "report") -> tuple[str, object]:
    """Parse one ``key=value`` given on the command line (``-p``) against the declarations.

    The value is read with :func:`ast.literal_eval` (``0.01``, ``True``, ``"7D"``,
    ``['app', 'web']``); a value that is no literal is taken as plain text only for a
    ``str`` parameter (``-p period_end=2026-11-30``, ``-p window=7D``), and a ``str``
    parameter given a number keeps the text as written. Nothing is ever evaluated as code.

    Raises
    ------
    ReportParameterError
        No ``=``; an unknown name (with a "did you mean" hint); a parameter the run sets
        itself (``metrics_path``); a value of the wrong type; a value that is not a plain
        literal; text that looks like code (a call) for a ``str`` parameter; control
        characters.
    """
    if "=" not in text:
        raise ReportParameterError(f"-p {text!r}: write NAME=VALUE, e.g. -p period_end=2026-11-30")
    key, raw = text.split("=", 1)
    key = key.strip()
    _check_name(key, declared, report)
    p = declared[key]
    if len(raw) > _MAX_VALUE_CHARS:
        raise ReportParameterError(f"-p {key}=...: the value is longer than {_MAX_VALUE_CHARS} characters")
    stripped = raw.strip()
    try:
        value = ast.literal_eval(stripped) if stripped else ...
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = ...
    if p.type == "str":
        if not isinstance(value, str):
            if value is ... and _contains_call(stripped):
                raise ReportParameterError(
                    f"-p {key}={raw!r} looks like code, which is never run; to pass this text "
                    f"as a string, quote it: -p '{key}=\"...\"'")
            value = raw
    elif value is ...:
        raise ReportParameterError(
            f"-p {key}={raw!r} is not a plain literal; {key} is {p.type} (default {p.default!r}), "
            f"e.g. -p {key}={p.default!r}")
    return key, _check_value(key, value, p, report)


def _check_name(key: str, declared: dict[str, Parameter], report: str):
    if key in _SET_BY_RUN:
        raise ReportParameterError(f"parameter {key!r} of report {report!r} is set by the run; "
                                   f"it cannot be given")
    if key not in declared:
        names = [k for k in declared if k not in _SET_BY_RUN]
        raise ReportParameterError(f"report {report!r} has no parameter {key!r}; its parameters are "
                                   f"{', '.join(names) or 'none'}" + did_you_mean(key, names))


def _check_value(key: str, value, p: Parameter, report: str):
    if isinstance(value, os.PathLike) and p.type == "str":
        value = os.fspath(value)
    if not _is_plain_literal(value):
        raise ReportParameterError(f"parameter {key!r} of report {report!r}: {value!r} is not a plain "
                                   f"literal (str, int, float, bool, None or a list of those)")
    if not _type_ok(value, p):
        raise ReportParameterError(f"parameter {key!r} of report {report!r} is {p.type} (default "
                                   f"{p.default!r}); got {type(value).__name__} {value!r}")
    texts = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
        if isinstance(value, list) else []
    for t in texts:
        if any(ord(c) < 32 and c != "\t" for c in t) or "\x7f" in t:
            raise ReportParameterError(f"parameter {key!r}: control characters (newlines...) are not "
                                       f"allowed in {t!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ReportParameterError(f"parameter {key!r}: {value!r} is not a finite number")
    if p.type == "float" and isinstance(value, int):
        value = float(value)
    return value


def check_parameters(name, parameters: dict | None) -> dict:
    """Check parameters for a report (names and types) and return them, normalised.

    Used by :func:`run_notebook` for parameters given from Python; ``-p`` text goes
    through :func:`parse_parameter` first. Raises :class:`ReportParameterError`.
    """
    path = notebook_path(name)
    declared = report_parameters(path)
    out = {}
    for key, value in (parameters or {}).items():
        _check_name(str(key), declared, path.stem)
        out[key] = _check_value(key, value, declared[key], path.stem)
    _check_periods(out, declared)
    _check_injection(out)
    return out


_PERIOD_PARAMETERS = ("period", "period_start", "period_end")


def _check_periods(params: dict, declared: dict[str, Parameter]) -> None:
    """A report that declares ``period_start`` takes the period parameters of
    :mod:`cxlab.periods`: their form is checked before it runs (:class:`PeriodError`)."""
    if "period_start" not in declared:
        return
    from .periods import check_period_parameters

    given = {k: params.get(k, declared[k].default) for k in _PERIOD_PARAMETERS if k in declared}
    check_period_parameters(**given)


def _check_injection(params: dict) -> None:
    """Defence in depth: what papermill will inject must be literal assignments only."""
    from papermill.translators import translate_parameters

    code = translate_parameters(KERNEL, "python", params, "Injected parameters")
    tree = ast.parse(code)
    for node in tree.body:
        ok = (isinstance(node, ast.Assign) and len(node.targets) == 1
              and isinstance(node.targets[0], ast.Name) and node.targets[0].id in params)
        if ok:
            try:
                ok = ast.literal_eval(node.value) == params[node.targets[0].id]
            except (ValueError, TypeError, SyntaxError):
                ok = False
        if not ok:
            raise ReportParameterError("the parameters would not be injected as plain literals; refused")


def effective_parameters(name, parameters: dict | None = None) -> dict:
    """The declared defaults overridden by ``parameters`` (``metrics_path`` left out)."""
    declared = report_parameters(name)
    out = {k: p.default for k, p in declared.items() if k not in _SET_BY_RUN}
    out.update({k: v for k, v in (parameters or {}).items() if k not in _SET_BY_RUN})
    return out


# --------------------------------------------------------------------------- lock
_HELD: dict[str, list] = {}


@contextlib.contextmanager
def report_lock(out="reports"):
    """Hold ``<out>/.lock`` (``fcntl.flock``, non-blocking) for the duration of a block.

    Re-entrant within a process (``cxlab report all`` holds it around every run, and each
    :func:`run_notebook` takes it again). The file stays; only the lock is released.

    Raises
    ------
    ReportLockedError
        Another process holds the lock; the message says which pid and since when.
    """
    import fcntl

    out = Path(out).resolve()
    key = str(out)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield out / ".lock"
        finally:
            _HELD[key][1] -= 1
        return
    out.mkdir(parents=True, exist_ok=True)
    path = out / ".lock"
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open across the yield
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise ReportLockedError(f"another report run is writing to {out} (lock {path} held by "
                                    f"{holder}); try again when it has finished") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since "
                 f"{_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')}\n")
        fh.flush()
        _HELD[key] = [fh, 1]
        try:
            yield path
        finally:
            del _HELD[key]
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()


def _complete_metrics(metrics: Path, path: Path, *, name, day, params, started, kernel) -> None:
    """Add what the run knows to the notebook's metrics.json (see run_notebook, Notes)."""
    from . import __version__

    doc = json.loads(metrics.read_text(encoding="utf-8"))
    used = effective_parameters(path, {k: v for k, v in params.items() if k not in _SET_BY_RUN})
    doc["parameters"] = {**used, **{k: v for k, v in (doc.get("parameters") or {}).items()
                                    if k not in used}}
    doc.setdefault("cxlab_version", __version__)
    finished = _dt.datetime.now(_dt.UTC)
    doc.setdefault("created_at", finished.isoformat(timespec="seconds"))
    if not doc.get("workspace") and isinstance(used.get("workspace"), str) and used["workspace"]:
        doc["workspace"] = _fingerprint_of(used["workspace"], root=_root_of(path))
    doc["run"] = {"report": name, "date": day, "status": "ok", "notebook": str(path),
                  "started_at": started.isoformat(timespec="seconds"),
                  "finished_at": finished.isoformat(timespec="seconds"),
                  "seconds": round((finished - started).total_seconds(), 1), "kernel": kernel,
                  "cxlab_version": __version__}
    text = json.dumps(_clean(doc), indent=2, ensure_ascii=False, allow_nan=False)
    tmp = metrics.with_name(f".{metrics.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, metrics)


def _root_of(path: Path) -> Path:
    """The repository a report notebook lives in (its relative paths are relative to it)."""
    return path.parent.parent.parent if path.parent.parent.name == "notebooks" else Path.cwd()


def _fingerprint_of(workspace: str, *, root: Path) -> dict | None:
    p = Path(workspace)
    p = p if p.is_absolute() else root / p
    if not p.exists():
        return None
    from .workspace import connect

    try:
        with connect(p, read_only=True) as ws:
            return workspace_fingerprint(ws)
    except Exception:  # noqa: BLE001 - an unreadable workspace must not fail a finished report
        return None


# --------------------------------------------------------------------------- comparing runs
_STAT_KEYS = ("value", "rate")
#: the period a run covers and its previous period's metrics (cxlab.periods): not headline metrics
_PERIOD_KEYS = ("period", "previous_period")


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _stat(v) -> dict | None:
    """A metric as ``{"value", "ci_low", "ci_high", "n", "se", "successes"}``, or None."""
    if _number(v) is not None:
        return {"value": _number(v), "ci_low": None, "ci_high": None, "n": None, "se": None,
                "successes": None}
    if isinstance(v, dict):
        key = next((k for k in _STAT_KEYS if _number(v.get(k)) is not None), None)
        if key is None:
            return None
        return {"value": _number(v[key]), "ci_low": _number(v.get("ci_low")),
                "ci_high": _number(v.get("ci_high")), "n": _number(v.get("n")),
                "se": _number(v.get("se")),
                "successes": _number(v.get("successes", v.get("k")))}
    return None


def headline_metrics(metrics: dict) -> dict[str, dict]:
    """The numeric headline metrics of a ``metrics.json``, flattened one level deep.

    A number is a metric; so is a dict with a numeric ``value`` (or ``rate``), optionally
    with ``ci_low``, ``ci_high``, ``n``, ``se`` and ``successes``. Other dicts are opened
    one level (``rows.events``); lists, text, the run's own keys (``parameters``,
    ``workspace``...) and the period keys (``period``, ``previous_period``: compare them
    with ``compare_with_previous(metrics, metrics["previous_period"])``) are left out.

    Returns
    -------
    dict
        ``name -> {"value", "ci_low", "ci_high", "n", "se", "successes"}`` (None when absent).
    """
    out = {}
    for key, v in (metrics or {}).items():
        if key in _NOT_HEADLINE or key in _PERIOD_KEYS or str(key).startswith("_"):
            continue
        s = _stat(v)
        if s is not None:
            out[str(key)] = s
        elif isinstance(v, dict):
            for sub, w in v.items():
                s = _stat(w)
                if s is not None:
                    out[f"{key}.{sub}"] = s
    return out


def _is_flat(metrics: dict) -> bool:
    return bool(metrics) and all(isinstance(v, dict) and "value" in v and "se" in v
                                 for v in metrics.values())


def compare_with_previous(metrics: dict, previous: dict | None, *, alpha: float = 0.05,
                          min_n: int = 100):
    """Say, metric by metric, whether a run's headline numbers changed beyond noise.

    Parameters
    ----------
    metrics, previous : dict
        Two runs' ``metrics.json`` contents (or :func:`headline_metrics` of them).
        A rate carries its sample size: ``{"value": 0.31, "n": 5000}`` (optionally
        ``successes``, ``ci_low``, ``ci_high``); an NPS-like score carries its standard
        error: ``{"value": 32.0, "se": 1.4, "n": 800}``.
    alpha : float
        Significance level of the tests.
    min_n : int
        Smallest sample size, in both runs, at which a difference may be called a change.

    Returns
    -------
    DataFrame
        One row per metric of ``metrics``: ``metric``, ``value``, ``previous``,
        ``difference`` (value - previous), ``n``, ``previous_n``, ``test``
        (``"two-proportion"``, ``"z"`` or ``"none"``), ``p_value`` and ``verdict``:

        - ``"changed"``: the test rejects equality at ``alpha`` and both n >= ``min_n``;
        - ``"within noise"``: it does not, or a sample is smaller than ``min_n``
          (``reason`` says which);
        - ``"not tested"``: no n (rate) or standard error (score), or no previous value.

    Notes
    -----
    Rates (a ``value`` between 0 and 1 with ``n``, no ``se``) use the pooled
    two-proportion z-test (:func:`cxlab.stats.two_proportion_test`) on
    ``successes = round(value * n)``. Scores with ``se`` use
    ``z = (v1 - v0) / sqrt(se1**2 + se0**2)``. Each metric is tested on its own: with
    many metrics, expect about ``alpha`` of the unchanged ones to be flagged.

    Examples
    --------
    >>> from cxlab.reports import compare_with_previous
    >>> now = {"conversion": {"value": 0.31, "n": 5000}}
    >>> before = {"conversion": {"value": 0.28, "n": 5000}}
    >>> compare_with_previous(now, before)["verdict"].tolist()
    ['changed']
    """
    import pandas as pd
    from scipy.stats import norm

    from .stats import _check_alpha, two_proportion_test

    _check_alpha(alpha)
    cur = metrics if _is_flat(metrics) else headline_metrics(metrics)
    prev = previous if previous and _is_flat(previous) else headline_metrics(previous or {})
    rows = []
    for name, a in cur.items():
        b = prev.get(name)
        row = {"metric": name, "value": a["value"], "previous": None, "difference": None,
               "n": a["n"], "previous_n": None, "test": "none", "p_value": None,
               "verdict": "not tested", "reason": ""}
        if b is None:
            row["reason"] = "no previous value"
            rows.append(row)
            continue
        row.update(previous=b["value"], difference=a["value"] - b["value"], previous_n=b["n"])
        is_rate = (a["se"] is None and b["se"] is None and a["n"] and b["n"]
                   and 0 <= a["value"] <= 1 and 0 <= b["value"] <= 1)
        if is_rate:
            s1 = a["successes"] if a["successes"] is not None else round(a["value"] * a["n"])
            s0 = b["successes"] if b["successes"] is not None else round(b["value"] * b["n"])
            _, p = two_proportion_test(s1, a["n"], s0, b["n"])
            row.update(test="two-proportion", p_value=float(p))
        elif a["se"] is not None and b["se"] is not None:
            se = math.sqrt(a["se"] ** 2 + b["se"] ** 2)
            p = float(2 * norm.sf(abs(a["value"] - b["value"]) / se)) if se > 0 else float("nan")
            row.update(test="z", p_value=p)
        else:
            row["reason"] = "no n or standard error"
            rows.append(row)
            continue
        ns = [x for x in (a["n"], b["n"]) if x is not None]
        if row["p_value"] is None or not math.isfinite(row["p_value"]):
            row.update(verdict="not tested", reason="test undefined (rate of 0 or 1, or zero se)",
                       p_value=None)
        elif any(x < min_n for x in ns):
            row.update(verdict="within noise", reason=f"n below {min_n}")
        elif row["p_value"] < alpha:
            row.update(verdict="changed", reason=f"p < {alpha:g}")
        else:
            row.update(verdict="within noise", reason=f"p >= {alpha:g}")
        rows.append(row)
    cols = ["metric", "value", "previous", "difference", "n", "previous_n", "test", "p_value",
            "verdict", "reason"]
    return pd.DataFrame(rows, columns=cols)


def write_index(out="reports") -> Path:
    """Regenerate ``<out>/index.html``: every run, its status, and headline trends.

    Reads every ``<out>/<date>/*.metrics.json`` (successful runs) and
    ``*.failed.ipynb`` (failed ones). Self-contained HTML: charts are embedded PNGs.
    Called after every :func:`run_notebook`.
    """
    from ._report_index import render_index

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    tmp = out / ".index.html.tmp"
    tmp.write_text(render_index(out), encoding="utf-8")
    os.replace(tmp, page)
    return page


# --------------------------------------------------------------------------- running
def _title(nb, name: str, date: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, flags=re.MULTILINE)
            if m:
                return f"{m.group(1).strip()} — {date}"
    return f"{name} — {date}"


def _to_html(executed: Path, html: Path, title: str) -> None:
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:  # warnings and progress bars are for the analyst, not the page
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True)
    tags = TagRemovePreprocessor(remove_cell_tags={"remove_cell"},
                                 remove_all_outputs_tags={"remove_output"},
                                 remove_input_tags={"remove_input"})
    exporter.register_preprocessor(tags, enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    html.write_text(body, encoding="utf-8")


def _date(date) -> str:
    if date is None:
        return _dt.date.today().isoformat()
    if isinstance(date, (_dt.date, _dt.datetime)):
        return date.strftime("%Y-%m-%d")
    try:
        return _dt.date.fromisoformat(str(date)).isoformat()
    except ValueError:
        raise ValueError(f"date={date!r} is not a date like '2026-06-30'") from None


def run_notebook(name: str, parameters: dict | None = None, *, out="reports", date=None,
                 kernel: str = KERNEL, progress: bool = True, index: bool = True) -> ReportRun:
    """Execute a report notebook with parameters and write HTML, notebook and metrics.

    Parameters
    ----------
    name : str
        The report: ``notebooks/reports/<name>.ipynb`` (see :func:`notebook_path`).
    parameters : dict
        Values for the notebook's ``parameters`` cell; an unknown name is refused.
        ``metrics_path`` is set by the run (where the notebook writes its metrics).
    out : str or Path
        Reports folder; results go to ``<out>/<date>/``.
    date : str or date, optional
        The folder's date (default: today).
    kernel : str
        Jupyter kernel name.
    progress : bool
        Show papermill's progress bar.
    index : bool
        Regenerate ``<out>/index.html`` afterwards (also after a failure).

    Returns
    -------
    ReportRun
        Paths of ``<name>.html`` (code hidden, images embedded), ``<name>.ipynb`` and
        ``<name>.metrics.json``. A report of the same name and date is replaced only
        once the new run has succeeded.

    Raises
    ------
    ReportError
        The notebook failed: the message names the cell and the error; the executed
        notebook is kept as ``<name>.failed.ipynb`` and the earlier report is untouched.
    ReportParameterError
        An unknown parameter or a value of the wrong type (nothing runs).
    ReportLockedError
        Another run holds ``<out>/.lock``.
    FileNotFoundError
        No such report (the message lists the available ones).

    Notes
    -----
    ``metrics.json`` holds what the notebook wrote with :func:`write_metrics`, and the run
    completes it: ``parameters`` (every declared parameter with the value used),
    ``cxlab_version``, ``created_at``, ``workspace`` (the data fingerprint, when the
    report has a ``workspace`` parameter and the notebook recorded none) and ``run``
    (report, date, started and finished times, kernel).
    """
    path = notebook_path(name)
    name = path.stem
    day = _date(date)
    params = check_parameters(path, parameters)
    with report_lock(out):
        try:
            return _run_locked(path, name, day, params, out=out, kernel=kernel, progress=progress)
        finally:
            if index:
                _write_index_quietly(out)


def _write_index_quietly(out) -> None:
    """Regenerate index.html; a broken index must not hide the run's own outcome."""
    import warnings

    try:
        write_index(out)
    except Exception as exc:  # noqa: BLE001 - reported as a warning, never raised
        warnings.warn(f"reports index not updated: {type(exc).__name__}: {exc}", stacklevel=3)


def _run_locked(path: Path, name: str, day: str, params: dict, *, out, kernel, progress) -> ReportRun:
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from ._kernel import LocalKernelManager  # the kernel on local sockets: no open TCP port

    started = _dt.datetime.now(_dt.UTC)
    root = _root_of(path)
    out = Path(out).resolve()
    day_dir = out / day
    day_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-{day}-", dir=out))   # the day: see brief.previous_metrics
    try:
        executed = tmp / f"{name}.ipynb"
        metrics = tmp / f"{name}.metrics.json"
        html = tmp / f"{name}.html"
        params["metrics_path"] = str(metrics)
        try:
            papermill.execute_notebook(str(path), str(executed), parameters=params,
                                       kernel_name=kernel, progress_bar=progress, log_output=False,
                                       kernel_manager_class=LocalKernelManager,
                                       # the kernel starts in the project root; papermill's own
                                       # `cwd=` would chdir this whole process, which races
                                       # when reports run in threads (cxlab.cli.run_reports)
                                       resources={"metadata": {"path": str(root)}})
        except PapermillExecutionError as exc:
            failed = day_dir / f"{name}.failed.ipynb"
            if executed.exists():
                os.replace(executed, failed)
            else:
                failed = None
            evalue = str(exc.evalue).strip().splitlines()
            evalue = evalue[0] if evalue else ""
            cell = f"cell {exc.exec_count}" if exc.exec_count else f"cell #{exc.cell_index}"
            where = f"; the executed notebook is kept in {failed}" if failed else ""
            raise ReportError(f"report {name!r} failed in {cell}: {exc.ename}: {evalue}{where}",
                              name=name, failed_notebook=failed, ename=exc.ename,
                              evalue=exc.evalue) from None
        except Exception as exc:  # the kernel died, could not start...
            failed = day_dir / f"{name}.failed.ipynb"
            if executed.exists():
                os.replace(executed, failed)
            else:
                failed = None
            raise ReportError(f"report {name!r} could not run: {type(exc).__name__}: {exc}",
                              name=name, failed_notebook=failed, ename=type(exc).__name__,
                              evalue=str(exc)) from exc
        nb = nbformat.read(executed, as_version=4)
        _to_html(executed, html, _title(nb, name, day))
        if not metrics.exists():  # the notebook wrote none: record at least the run
            write_metrics(metrics, {})
        _complete_metrics(metrics, path, name=name, day=day, params=params, started=started,
                          kernel=kernel)
        targets = {html: day_dir / html.name, executed: day_dir / executed.name,
                   metrics: day_dir / metrics.name}
        for src, dst in targets.items():
            os.replace(src, dst)
        stale = day_dir / f"{name}.failed.ipynb"
        if stale.exists():
            stale.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ReportRun(name=name, date=day, html=day_dir / f"{name}.html",
                     notebook=day_dir / f"{name}.ipynb", metrics=day_dir / f"{name}.metrics.json",
                     parameters={k: v for k, v in params.items() if k != "metrics_path"})


__all__ = [
    "Parameter",
    "ReportError",
    "ReportLockedError",
    "ReportParameterError",
    "ReportRun",
    "available",
    "check_parameters",
    "compare_with_previous",
    "effective_parameters",
    "headline_metrics",
    "notebook_path",
    "parse_parameter",
    "report_lock",
    "report_parameters",
    "run_notebook",
    "workspace_fingerprint",
    "write_index",
    "write_metrics",
]
