"""`hydrascope run`: detection on an input bundle, writing a run folder."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register", "add_run_options", "config_from_args", "print_summary"]

EXAMPLES = """examples:
  hydrascope run worlds/demo --out runs/r1
  hydrascope run export/ --out runs/2026-11-26 --since 2026-11-19 --until 2026-11-26 --previous runs/2026-11-19
  hydrascope run export/ --out runs/r2 --config hydrascope.toml --seed 7 --no-site
  hydrascope run big-export/ --out runs/big --no-site --memory-limit 6GB
"""


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML file with [evidence], [community], [scoring] sections")
    p.add_argument("--seed", type=int, help="seed of community detection (default 0)")
    p.add_argument("--since", help="analyse only events at or after this ISO 8601 time")
    p.add_argument("--until", help="analyse only events before this ISO 8601 time")
    p.add_argument("--previous", help="earlier run folder: keep its cluster ids and report what changed")
    p.add_argument("--no-site", action="store_true", help="do not write the HTML explorer")
    p.add_argument("--layers", help="comma-separated evidence layers to use (default: all four)")
    p.add_argument("--memory-limit", help="DuckDB memory limit, e.g. 6GB (default 3 GiB; it spills to disk beyond)")
    p.add_argument("--threads", type=int, help="DuckDB threads (default: one per core)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def config_from_args(args):
    from hydrascope.config import load_config

    cfg = load_config(args.config, seed=args.seed, since=args.since, until=args.until,
                      memory_limit=getattr(args, "memory_limit", None), threads=getattr(args, "threads", None))
    if args.no_site:
        cfg = cfg.with_(site=False)
    if args.layers:
        from dataclasses import replace

        cfg = cfg.with_(evidence=replace(cfg.evidence, layers=tuple(x.strip() for x in args.layers.split(","))))
    return cfg


def print_summary(result, out=None) -> None:
    out = out or sys.stdout
    c = result.counts
    print(f"{c['accounts']} accounts, {c['links']} links, {c['clusters']} clusters, "
          f"{c['flagged_clusters']} flagged ({c['flagged_accounts']} accounts)", file=out)
    flagged = result.report.clusters[result.report.clusters["flagged"]]
    for r in flagged.head(10).itertuples():
        print(f"  {r.cluster_id}  {r.n_accounts:5d} accounts  score {r.score:.2f}  {'; '.join(r.reasons[:3])}", file=out)
    if result.run_dir is not None:
        print(f"wrote {result.run_dir}", file=out)


def _stage_printer(quiet: bool):
    def say(stage: str) -> None:
        if not quiet:
            print(f"[{stage}]", file=sys.stderr, flush=True)
    return say


def _run(args) -> int:
    from hydrascope.pipeline import run

    cfg = config_from_args(args)
    result = run(args.bundle, args.out, cfg, previous=args.previous, progress=not args.quiet and sys.stderr.isatty(),
                 on_stage=_stage_printer(args.quiet), engine=args.engine)
    rejected = sum(v.get("rows_rejected", 0) for v in _inputs(result))
    print_summary(result)
    if rejected:
        print(f"{rejected} input rows rejected; see {result.run_dir}/rejects.csv", file=sys.stderr)
    return 0


def _inputs(result):
    import json

    if result.run_dir is None:
        return []
    return json.loads((result.run_dir / "run.json").read_text())["inputs"].values()


def register(sub) -> None:
    p = sub.add_parser("run", help="detect coordinated clusters in an input bundle",
                       description="Run detection on an input bundle (../shared/SCHEMA.md) and write a run folder "
                                   "with accounts.csv, clusters.csv and the evidence tables.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="input bundle folder (accounts, events, payments, labels tables)")
    p.add_argument("--out", "-o", required=True, help="run folder to write")
    add_run_options(p)
    p.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                   help="engine of the graph-building stage: duckdb (default) or spark (local Spark, or the "
                        "session of spark-submit; same results, see docs/spark.md)")
    p.set_defaults(func=_run)
