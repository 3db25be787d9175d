"""Run report notebooks: papermill with parameters, HTML without code, and ``metrics.json``.

A report is a notebook under ``notebooks/reports/`` (see STYLE.md). :func:`run_notebook`
executes it in a temporary folder under ``reports/``, converts it to HTML (code hidden,
images embedded) and only then moves the results to ``reports/<YYYY-MM-DD>/``::

    reports/2026-06-30/pull.html           the stakeholder page
    reports/2026-06-30/pull.ipynb          the executed notebook
    reports/2026-06-30/pull.metrics.json   the headline numbers (write_metrics)

A run that fails leaves the earlier report of the day untouched and keeps the executed
notebook as ``<name>.failed.ipynb`` next to it, so the traceback can be read.

Examples
--------
>>> from cxlab.reports import run_notebook
>>> run = run_notebook("pull", {"events_path": "data/raw/demo/events.csv"})  # doctest: +SKIP
>>> run.html                                                                  # doctest: +SKIP
PosixPath('reports/2026-06-30/pull.html')
"""
from __future__ import annotations

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

from .exceptions import CxlabError, did_you_mean

KERNEL = "python3"
_RESERVED = ("cxlab_version", "created_at", "parameters", "workspace")


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


def _report_dirs() -> list[Path]:
    dirs = [_repo_root() / "notebooks" / "reports", Path.cwd() / "notebooks" / "reports"]
    out = []
    for d in dirs:
        if d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


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
    if stem.endswith(".ipynb"):
        stem = stem[: -len(".ipynb")]
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
    """What identifies a workspace's content: the sha256 of every file pulled into it.

    Returns
    -------
    dict
        ``path`` (the workspace file or folder), ``engine``, ``loads`` (one entry per
        successful pull: ``kind``, ``file``, ``sha256``, ``rows_added``), ``sha256`` (the
        manifest's sha256 list, in pull order) and ``fingerprint`` (sha256 of that list:
        two workspaces built from the same files in the same order share it).
    """
    loads = ws.loads()
    entries = []
    if loads is not None and len(loads):
        loaded = loads[loads["status"].astype("str") == "loaded"] if "status" in loads else loads
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
    doc["created_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
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


# --------------------------------------------------------------------------- running
def _title(nb, name: str, date: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, flags=re.M)
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


def _check_parameters(path: Path, parameters: dict) -> None:
    import papermill

    declared = papermill.inspect_notebook(str(path))
    unknown = [k for k in parameters if k not in declared]
    if unknown:
        k = unknown[0]
        raise ValueError(f"report {path.stem!r} has no parameter {k!r}; its parameters are "
                         f"{sorted(declared)}" + did_you_mean(k, declared))


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
                 kernel: str = KERNEL, progress: bool = True) -> ReportRun:
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
    FileNotFoundError
        No such report (the message lists the available ones).
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = notebook_path(name)
    name = path.stem
    day = _date(date)
    params = dict(parameters or {})
    _check_parameters(path, {k: v for k, v in params.items() if k != "metrics_path"})
    # the repository the notebook lives in (its relative paths are relative to it)
    root = path.parent.parent.parent if path.parent.parent.name == "notebooks" else Path.cwd()
    out = Path(out).resolve()
    day_dir = out / day
    day_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out))
    try:
        executed = tmp / f"{name}.ipynb"
        metrics = tmp / f"{name}.metrics.json"
        html = tmp / f"{name}.html"
        params["metrics_path"] = str(metrics)
        try:
            papermill.execute_notebook(str(path), str(executed), parameters=params,
                                       kernel_name=kernel, cwd=str(root), progress_bar=progress,
                                       log_output=False)
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
            write_metrics(metrics, {}, parameters={k: v for k, v in params.items()
                                                   if k != "metrics_path"})
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


__all__ = ["ReportError", "ReportRun", "available", "notebook_path", "run_notebook",
           "write_metrics", "workspace_fingerprint"]
