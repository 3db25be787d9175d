"""The ``cxlab`` command line: pull exports, simulate journeys, run the demo.

Exit status: 0 on success; 2 with the error on stderr when an export or an argument is
refused (the workspace is then unchanged); 1 on an unexpected failure.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .exceptions import CxlabError


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
    with connect(args.workspace) as ws:
        result = ws.pull(args.path, kind=args.kind, format=args.format, mapping=_mapping(args.map),
                         tz=args.tz, ts_format=args.ts_format, delimiter=args.delimiter,
                         scale=args.scale, language=args.language, journey=journey)
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


def _cmd_demo(args) -> int:
    from .datasets import simulate_journeys, write_simulation
    from .reports import run_notebook

    raw = Path(args.raw)
    events = raw / "events.csv"
    feedback = raw / "feedback.csv"
    if events.exists() and feedback.exists():
        print(f"using the simulated export already in {raw} (exports in data/raw are never rewritten)")
    else:
        sim = simulate_journeys(args.customers, seed=args.seed)
        write_simulation(sim, raw, format="csv", duplicate_share=0.002, seed=args.seed)
        print(f"simulated a journey export of {len(sim.events):,} events and {len(sim.feedback):,} "
              f"feedback rows for {args.customers:,} customers into {raw}")
    run = run_notebook("pull", {"workspace": str(args.workspace), "events_path": str(events),
                                "feedback_path": str(feedback)}, out=args.out)
    print(f"report: {Path(run.html).resolve()}")
    return 0


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

    p = sub.add_parser("demo", help="simulate an export, pull it with the pull notebook, write the report")
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--raw", default="data/raw/demo")
    p.add_argument("--workspace", default="data/cxlab.duckdb")
    p.add_argument("--out", default="reports")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CxlabError, ValueError, FileNotFoundError) as exc:
        print(f"cxlab {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
