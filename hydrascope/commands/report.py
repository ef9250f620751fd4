"""`hydrascope report`: the periodic report of a run — what is new, growing, merged, split or gone."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]

EXAMPLES = """examples:
  hydrascope report runs/2026-11-26 --out runs/2026-11-26/report.html
      report on a run made with --previous (its lineage.csv gives the changes)
  hydrascope report runs/today --previous runs/yesterday --out reports/today.html
      compare with an earlier run (for runs made without --previous)
  hydrascope report runs/2026-11-26 --history runs/ --out runs/2026-11-26/report.html
      trend charts over every run folder inside runs/
  hydrascope report runs/w3 --history runs/w1 runs/w2 --top 50 --out w3.html

Writes the HTML (one self-contained file: charts inlined, no network requests) and,
beside it, <name>.json (every fact shown) and <name>.csv (one row per cluster, then
one per dissolved cluster).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write the periodic HTML/JSON/CSV report of a run",
        description="Write the periodic report of a run: headline numbers, changes since the last run, "
                    "top flagged clusters and trend charts over earlier runs.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="the run folder to report on")
    p.add_argument("--previous", metavar="RUN_DIR", type=Path, default=None,
                   help="the run before, for changes when RUN_DIR has no lineage.csv (also joins the trend)")
    p.add_argument("--history", metavar="RUN_DIR", type=Path, nargs="+", action="extend", default=[],
                   help="earlier run folders, or folders holding run folders, for the trend charts")
    p.add_argument("--out", metavar="HTML", type=Path, default=None,
                   help="the HTML file to write (default: RUN_DIR/report.html)")
    p.add_argument("--top", metavar="N", type=int, default=20, help="flagged clusters to list (default 20)")
    p.add_argument("--title", default=None, help="page title")
    p.set_defaults(func=run)


def run(args) -> int:
    from exporters.report import write_report

    out = args.out if args.out is not None else args.run_dir / "report.html"
    paths = write_report(args.run_dir, out, previous=args.previous, history=args.history, top=args.top,
                         title=args.title)
    for p in (paths.html, paths.json, paths.csv):
        print(p)
    return 0
