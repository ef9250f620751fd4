"""`hydrascope demo-world OUT`: write the seeded demo input bundle (no detection)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]

EXAMPLES = """examples:
  hydrascope demo-world worlds/demo                      3,000 accounts, CSV, seed 0
  hydrascope demo-world worlds/big --accounts 200000 --format parquet --seed 7
  hydrascope demo-world worlds/plain --no-hostile        no planted HTML/Cypher/CSV-formula text
"""


def _demo_world(args) -> int:
    from hydrascope.demo.world import generate_world

    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    try:
        info = generate_world(args.out, n_accounts=args.accounts, seed=args.seed, days=args.days, start=args.start,
                              fmt=args.format, hostile=args.hostile, progress=progress)
    except ValueError as exc:
        print(f"hydrascope demo-world: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        n_camp = sum(c["size"] for c in info.campaigns.values())
        print(f"wrote {info.path}: {info.n_accounts:,} accounts ({n_camp:,} in {len(info.campaigns)} campaigns, "
              f"{len(info.benign_orgs)} benign organisations), {info.n_events:,} events")
        for cid, c in sorted(info.campaigns.items()):
            print(f"  {cid:<24} {c['size']:>6,} accounts  from day {c['start_day']}")
        print(f"  files: {', '.join(info.files)}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo-world", help="write the seeded demo input bundle",
                       description="Write a seeded synthetic input bundle (accounts, events, payments, labels; "
                                   "plus world.json and population.csv) with benign look-alikes and planted "
                                   "campaigns of varying stealth. "
                                   "Same arguments give byte-identical files.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="folder to write the bundle to")
    p.add_argument("--accounts", type=int, default=3000, help="number of accounts (default 3000)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--days", type=int, default=28, help="length of the period in days (default 28)")
    p.add_argument("--start", default="2026-10-01", help="first day of the period, YYYY-MM-DD (default 2026-10-01)")
    p.add_argument("--format", default="csv", choices=("csv", "csv.gz", "parquet", "jsonl"),
                   help="table format (default csv)")
    p.add_argument("--no-hostile", dest="hostile", action="store_false",
                   help="do not plant hostile text (script tags, Cypher, CSV formulas)")
    p.add_argument("--progress", dest="progress", action="store_true", default=None, help="show a progress bar")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    p.set_defaults(func=_demo_world)
