"""The ``cxlab`` command line: pull exports, simulate journeys, run reports and the demo.

Exit status: 0 on success; 2 with the error on stderr when an export or an argument is
refused (the workspace is then unchanged; for ``report``, nothing ran); 1 when a report
notebook failed or on an unexpected failure; 75 (EX_TEMPFAIL) when another report run holds
the reports folder's lock, or another process has the workspace open (``pull --wait`` waits).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .exceptions import CxlabError, WorkspaceLockedError


def _mapping(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--map {pair!r}: write CANONICAL=SOURCE, e.g. --map customer_id=user_id")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _cmd_pull(args) -> int:
    from .journey import JourneyMap
    from .workspace import connect

    journey = JourneyMap.from_yaml(args.journey) if args.journey else None
    with connect(args.workspace, wait=args.wait) as ws:
        result = ws.pull(args.path, kind=args.kind, format=args.format, mapping=_mapping(args.map),
                         tz=args.tz, ts_format=args.ts_format, delimiter=args.delimiter,
                         scale=args.scale, language=args.language, journey=journey,
                         replace=args.replace, append=args.append, max_line_size=args.max_line_size,
                         memory_limit=args.memory_limit)
        print(result)
        for note in result.notes:
            print(f"  note: {note}")
        if result.kind == "events" and result.status == "loaded":
            check = ws.check(journey)
            if not check.ok:
                print(f"  warning: {check}")
    return 0


def _cmd_simulate(args) -> int:
    from .datasets import simulate_journeys, write_simulation

    sim = simulate_journeys(args.customers, seed=args.seed)
    paths = write_simulation(sim, args.out, format=args.format, duplicate_share=args.duplicates,
                             seed=args.seed)
    print(f"simulated {len(sim.events):,} events and {len(sim.feedback):,} feedback rows "
          f"for {args.customers:,} customers (seed {args.seed})")
    for name, path in paths.items():
        print(f"  {name}: {path}")
    return 0


def _cmd_check(args) -> int:
    from .journey import JourneyMap
    from .workspace import connect

    journey = JourneyMap.from_yaml(args.journey) if args.journey else JourneyMap.default()
    with connect(args.workspace, read_only=True) as ws:
        check = ws.check(journey)
        print(check)
    return 0 if check.ok else 3


def _shown(path) -> str:
    """A path as a newcomer types it: relative to the current directory when under it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _this_command() -> str:
    """How to call this cxlab again: ``cxlab`` when that is the one on PATH, else its path
    (``make demo`` runs ``.venv/bin/cxlab``, which a new shell does not find)."""
    import shutil

    me = Path(sys.argv[0])
    if me.name != "cxlab":
        return "cxlab"
    on_path = shutil.which("cxlab")
    if on_path and Path(on_path).resolve() == me.resolve():
        return "cxlab"
    return _shown(me)


def _pulled(metrics: dict, workspace: Path) -> str:
    """One line on what the pull report pulled (from its metrics.json)."""
    added, dup, rows = (metrics.get(k) or {} for k in ("rows_added", "duplicates_skipped", "rows"))
    where = _shown(workspace)
    if not any(added.values()):
        return (f"nothing new to pull: the workspace {where} already holds these exports "
                f"({rows.get('events', 0):,} events, {rows.get('feedback', 0):,} pieces of feedback)")
    skipped = dup.get("events", 0) + dup.get("feedback", 0)
    first, last = (str(metrics.get(k) or "")[:10] for k in ("first_ts", "last_ts"))
    span = f", {first} to {last}" if first and last else ""
    customers = (metrics.get("customers") or {}).get("events", 0)
    return (f"pulled {added.get('events', 0):,} events and {added.get('feedback', 0):,} pieces of feedback "
            f"into the workspace {where} ({skipped:,} repeated rows skipped; {customers:,} customers{span})")


def _cmd_demo(args) -> int:
    from .datasets import simulate_journeys, write_simulation
    from .reports import ReportError, report_lock, write_index

    # the notebooks run from the project root: paths typed here are relative to where the user is
    raw = Path(args.raw).resolve()
    workspace = Path(args.workspace).resolve()
    events = raw / "events.csv"
    feedback = raw / "feedback.csv"
    if events.exists() and feedback.exists():
        print(f"using the simulated export already in {_shown(raw)}/ (exports in data/raw are never rewritten)")
    else:
        sim = simulate_journeys(args.customers, seed=args.seed)
        write_simulation(sim, raw, format="csv", duplicate_share=0.002, seed=args.seed)
        print(f"simulated {args.customers:,} customers on the shipped journey map (seed {args.seed}): "
              f"{len(sim.events):,} events and {len(sim.feedback):,} pieces of feedback, written as "
              f"CSV exports to {_shown(events)} and {_shown(feedback)}")
    plan = []
    for name in _report_names("all"):  # pull first, then every analysis report on the fresh workspace
        params = {"workspace": str(workspace)}
        if name == "pull":
            params.update(events_path=str(events), feedback_path=str(feedback))
        plan.append((name, params))
    progress = sys.stderr.isatty() and args.jobs == 1  # papermill's bars on a terminal; none in a log
    with report_lock(args.out):
        for name, run, seconds in run_reports(plan, out=args.out, jobs=args.jobs, progress=progress,
                                              starting=lambda n: print(f"running the {n} report ...", flush=True)):
            if isinstance(run, ReportError):
                raise run
            if name == "pull":
                print(f"  {_pulled(run.read_metrics(), workspace)}")
            print(f"  wrote {_shown(run.html)} ({seconds:.0f} s)")
    index = Path(write_index(args.out)).resolve()
    cmd = _this_command()
    print("each report's executed notebook (.ipynb) and headline numbers (.metrics.json) are next to its HTML")
    print("next:")
    print(f"  open the reports in a browser: {index.as_uri()} (every run and the trend of its numbers)")
    print(f"  explore the pain points interactively: {cmd} explore --workspace {_shown(workspace)} "
          f"(`{cmd} explore funnel ...` for the funnel)")
    print(f"  your own export: {cmd} pull PATH --workspace WS, then {cmd} report all --workspace WS")
    return 0

EXIT_LOCKED = 75  # sysexits EX_TEMPFAIL: try again later


def _report_names(name: str) -> list[str]:
    from .reports import available

    if name != "all":
        return [name]
    names = [n for n in available() if not n.endswith(SKIPPED_BY_ALL)]
    first = [n for n in RUN_FIRST if n in names]
    return first + [n for n in names if n not in first]


SKIPPED_BY_ALL = "_real_data"  # need ../shared/data: run them by name
RUN_FIRST = ("pull",)  # pulls the latest exports before the analyses read the workspace


def _cmd_report_list() -> int:
    from .reports import ReportParameterError, available, report_parameters

    for name in available():
        marker = "" if not name.endswith(SKIPPED_BY_ALL) else "   (not in `report all`)"
        print(f"{name}{marker}")
        try:
            declared = report_parameters(name)
        except ReportParameterError as exc:  # one broken notebook does not hide the others
            print(f"    cannot run: {exc}")
            continue
        for p in declared.values():
            if p.name == "metrics_path":
                continue
            print(f"    {p}")
    return 0


def _report_plan(args) -> list[tuple[str, dict]]:
    """(name, parameters) per report, every value checked before anything runs."""
    from .reports import ReportParameterError, check_parameters, parse_parameter, report_parameters

    names = _report_names(args.name)
    if not names:
        raise ReportParameterError("no report notebooks to run")
    plan, used = [], set()
    for name in names:
        declared = report_parameters(name)
        params = {}
        for text in args.param or []:
            key = text.split("=", 1)[0].strip()
            if args.name == "all" and key not in declared:
                continue  # `report all`: a parameter goes to the reports that declare it
            key, value = parse_parameter(text, declared, report=name)
            params[key] = value
            used.add(key)
        if args.workspace is not None:
            if "workspace" in declared:
                params["workspace"] = parse_parameter(f"workspace={Path(args.workspace).resolve()}", declared,
                                                      report=name)[1]
            elif args.name != "all":
                raise ReportParameterError(f"report {name!r} has no workspace parameter; "
                                           f"drop --workspace")
        plan.append((name, check_parameters(name, params)))
    if args.name == "all":
        unknown = [t.split("=", 1)[0].strip() for t in args.param or []
                   if t.split("=", 1)[0].strip() not in used]
        if unknown:
            raise ReportParameterError(f"no report declares the parameter {unknown[0]!r}; see "
                                       f"cxlab report --list")
    return plan


def default_jobs() -> int:
    """Analysis reports run at once by ``report all`` and the demo: 2 on a machine with 2 or
    more cores (each report is mostly single-threaded Python between DuckDB queries), else 1."""
    import os

    return max(1, min(2, os.cpu_count() or 1))


def run_reports(plan, *, out, date=None, jobs=1, progress=True, starting=None):
    """Run ``(name, parameters)`` reports; yield ``(name, ReportRun or ReportError, seconds)``
    in plan order.

    The :data:`RUN_FIRST` reports (the pull) run first, one after the other; when one fails
    nothing else runs. The analysis reports then run ``jobs`` at a time, each in its own
    kernel (they only read the workspace, which DuckDB lets several processes open
    read-only). Papermill's per-notebook bars are shown only when reports run one at a time.
    ``starting(name)`` is called as each report is started or queued, in plan order. The caller holds the reports lock.
    """
    import time
    from concurrent.futures import ThreadPoolExecutor

    from .reports import ReportError, run_notebook

    def one(name, params, bar):
        started = time.perf_counter()
        try:
            run = run_notebook(name, params, out=out, date=date, progress=bar, index=False)
        except ReportError as exc:
            run = exc
        return name, run, time.perf_counter() - started

    out = Path(out).resolve()   # once, before any thread runs
    first = [(n, p) for n, p in plan if n in RUN_FIRST]
    rest = [(n, p) for n, p in plan if n not in RUN_FIRST]
    def announce(name):
        if starting is not None:
            starting(name)

    for name, params in first:
        announce(name)
        result = one(name, params, progress)
        yield result
        if isinstance(result[1], ReportError) and len(plan) > 1:
            return
    jobs = max(1, min(int(jobs), len(rest) or 1))
    if jobs == 1:
        for name, params in rest:
            announce(name)
            yield one(name, params, progress)
        return
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="cxlab-report") as pool:
        futures = []
        for name, params in rest:   # announced as queued, in plan order
            announce(name)
            futures.append(pool.submit(one, name, params, False))
        for future in futures:
            yield future.result()


def _cmd_report(args) -> int:
    from .reports import ReportError, ReportLockedError, report_lock, write_index

    if args.list:
        return _cmd_report_list()
    if not args.name:
        print("cxlab report: error: give a report NAME, `all` or --list", file=sys.stderr)
        return 2
    try:
        plan = _report_plan(args)  # refuses bad input before taking the lock or writing
    except FileNotFoundError as exc:
        print(f"cxlab report: error: {exc}", file=sys.stderr)
        return 2
    failed = []
    try:
        with report_lock(args.out):
            bar = None
            if len(plan) > 1 and not args.no_progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(plan), desc="reports", unit="report")
            starting = (lambda name: print(f"running {name}", file=sys.stderr)) if len(plan) > 1 else None
            for name, run, _ in run_reports(plan, out=args.out, date=args.date, jobs=args.jobs,
                                            progress=not args.no_progress, starting=starting):
                if bar is not None:
                    bar.update()
                if isinstance(run, ReportError):
                    failed.append(name)
                    print(f"cxlab report: error: {run}", file=sys.stderr)
                    if name in RUN_FIRST and len(plan) > 1:
                        skipped = [n for n, _ in plan if n not in RUN_FIRST]
                        print(f"cxlab report: {name} failed, so the workspace may not hold the latest "
                              f"exports: not running {', '.join(skipped)}; the earlier reports are "
                              "unchanged", file=sys.stderr)
                    continue
                print(f"{name}: {Path(run.html).resolve()}")
            if bar is not None:
                bar.close()
            index = write_index(args.out)
    except ReportLockedError as exc:
        print(f"cxlab report: error: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    print(f"index: {Path(index).resolve()}")
    if failed:
        print(f"cxlab report: {len(failed)} of {len(plan)} reports failed: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


def _explore_notebook(name: str) -> Path:
    from .reports import notebook_dirs

    given = Path(name)
    if given.suffix == ".ipynb" or given.exists():
        if not given.is_file():
            raise FileNotFoundError(f"explorer notebook {name!r} does not exist")
        return given.resolve()
    dirs = notebook_dirs("explore")
    for d in dirs:
        if (d / f"{name}.ipynb").is_file():
            return (d / f"{name}.ipynb").resolve()
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.ipynb")})
    from .exceptions import did_you_mean

    raise ValueError(f"no explorer notebook {name!r}" + did_you_mean(name, known) + f"; known: {known}")


def _cmd_explore(args) -> int:
    """Serve an explorer notebook with Voilà on 127.0.0.1 only, token authentication on."""
    import os
    import secrets

    from . import _voila

    notebook = _explore_notebook(args.notebook)
    workspace = Path(args.workspace or os.environ.get("CXLAB_WORKSPACE") or "data/cxlab.duckdb").resolve()
    if not workspace.is_file():
        raise FileNotFoundError(f"workspace {workspace} does not exist: run `cxlab demo` or `cxlab pull` first")
    token = args.token if args.token is not None else os.environ.get("CXLAB_EXPLORE_TOKEN") or secrets.token_urlsafe(24)
    if not token or not token.strip() or len(token) < 16:
        raise ValueError("--token must be at least 16 characters: the explorer never runs without authentication")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port}: give a port between 1 and 65535, or none for a free one")
    env = dict(os.environ, CXLAB_WORKSPACE=str(workspace))
    if args.journey:
        env["CXLAB_JOURNEY"] = str(Path(args.journey).resolve())
    return _voila.serve(notebook, port=args.port, token=token, env=env, verbose=args.verbose,
                        describe=f"cxlab explore: serving {notebook.name} on this machine only, "
                                 f"workspace {workspace}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cxlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pull", help="pull an export into the workspace (idempotent, atomic)")
    p.add_argument("path", help="the export file (CSV, Parquet, JSON Lines; gzip or not)")
    p.add_argument("--kind", choices=("events", "feedback"), default="events")
    p.add_argument("--format", choices=("auto", "csv", "parquet", "jsonl", "ga4", "survey"),
                   default="auto")
    p.add_argument("--map", action="append", metavar="CANONICAL=SOURCE",
                   help="column mapping, repeatable: --map customer_id=user_id --map ts=event_time")
    p.add_argument("--tz", help="IANA zone of naive timestamps, e.g. Europe/Rome")
    p.add_argument("--ts-format", help="strptime layout of non-ISO timestamps, e.g. '%%d/%%m/%%Y %%H:%%M'")
    p.add_argument("--delimiter", help="CSV delimiter (sniffed among , ; and tab when absent)")
    p.add_argument("--scale", choices=("nps", "csat", "ces", "stars"), help="feedback score scale")
    p.add_argument("--language", help="ISO code of feedback text when the file has none")
    p.add_argument("--journey", help="journey map YAML (default: the shipped map)")
    p.add_argument("--workspace", help="DuckDB workspace file (default: $CXLAB_WORKSPACE or data/cxlab.duckdb)")
    p.add_argument("--wait", metavar="DURATION",
                   help="while another process has the workspace open, retry for this long "
                        "(e.g. 10min) instead of failing at once (exit 75 when still held)")
    same = p.add_mutually_exclusive_group()
    same.add_argument("--replace", action="store_true",
                      help="the file corrects an earlier pull of the same path: "
                           "swap that load's rows for its rows")
    same.add_argument("--append", action="store_true",
                      help="the file at a path pulled before is new data: "
                           "add its rows beside the earlier ones")
    p.add_argument("--max-line-size", type=int, metavar="BYTES",
                   help="longest CSV line accepted (default: DuckDB's, 2,000,000 bytes)")
    p.add_argument("--memory-limit", metavar="SIZE",
                   help="DuckDB memory limit of the pull, e.g. 2GB "
                        "(default 1GB; beyond it DuckDB spills to disk)")
    p.set_defaults(func=_cmd_pull)

    p = sub.add_parser("simulate", help="simulate a journey export with planted ground truth")
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default="data/raw/simulated")
    p.add_argument("--format", choices=("csv", "parquet", "ga4"), default="csv")
    p.add_argument("--duplicates", type=float, default=0.0,
                   help="share of duplicated event rows to add, as real exports have")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("check", help="touchpoints in the workspace that the journey map does not know")
    p.add_argument("--journey", help="journey map YAML (default: the shipped map)")
    p.add_argument("--workspace")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser(
        "report", help="run a report notebook with parameters: HTML, notebook and metrics.json",
        description="Run notebooks/reports/NAME.ipynb with papermill and write "
                    "<out>/<date>/NAME.html, .ipynb and .metrics.json, then <out>/index.html. "
                    "`all` runs every report except those ending in _real_data (pull first). "
                    "Values are literals checked against the notebook's parameters cell; "
                    "nothing given is run as code.")
    p.add_argument("name", nargs="?", help="report name (see --list), or `all`")
    p.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                   help="parameter, repeatable: -p period_end=2026-11-30 -p alpha=0.01")
    p.add_argument("--workspace", help="sets the report's workspace parameter")
    p.add_argument("--out", default="reports", help="reports folder (default: reports)")
    p.add_argument("--date", help="folder date YYYY-MM-DD (default: today)")
    p.add_argument("--list", action="store_true", help="list reports and their parameters")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-j", "--jobs", type=int, default=default_jobs(), metavar="N",
                   help="analysis reports run at once after the pull, each in its own kernel "
                        "(default: %(default)s, from the cores; 1 runs them one after the other)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "explore", help="serve an explorer (pain points, funnel) as a web page with Voila, localhost only",
        description="Serve notebooks/explore/NOTEBOOK.ipynb (pain_points by default, or funnel, or a path) with "
                    "Voila on 127.0.0.1 with token authentication, and print the URL to open once it "
                    "answers. SIGTERM, SIGHUP or Ctrl-C stop Voila and its kernels.")
    p.add_argument("notebook", nargs="?", default="pain_points", help="pain_points (default), funnel, or a path")
    p.add_argument("--workspace", help="DuckDB workspace file (default: $CXLAB_WORKSPACE or data/cxlab.duckdb)")
    p.add_argument("--journey", help="journey map YAML (default: the shipped map)")
    p.add_argument("--port", type=int, default=0,
                   help="port on 127.0.0.1, refused when in use (default: a free one)")
    p.add_argument("--token", help="access token, 16+ characters (default: $CXLAB_EXPLORE_TOKEN or a random one)")
    p.add_argument("--verbose", action="store_true", help="show Voila's own log")
    p.set_defaults(func=_cmd_explore)

    p = sub.add_parser("demo", help="simulate an export, pull it with the pull notebook, write every report")
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--raw", default="data/raw/demo")
    p.add_argument("--workspace", default="data/cxlab.duckdb")
    p.add_argument("--out", default="reports")
    p.add_argument("-j", "--jobs", type=int, default=default_jobs(), metavar="N",
                   help="analysis reports run at once after the pull (default: %(default)s)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except WorkspaceLockedError as exc:
        print(f"cxlab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except (CxlabError, ValueError, FileNotFoundError) as exc:
        print(f"cxlab {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
