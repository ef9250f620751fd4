"""`hydrascope site`: (re)write the static HTML explorer of a run folder."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]

EXAMPLES = """examples:
  hydrascope site runs/demo/run                    write runs/demo/run/site/index.html + clusters/*.html
  hydrascope site runs/r1 --out /tmp/r1-site       write the pages elsewhere
  hydrascope site runs/r1 --max-nodes 5000         draw bigger clusters node by node (default 2000)
  hydrascope site runs/r1 --standalone             every page a single self-contained file (to attach to a case)
  hydrascope site runs/r1 --max-pages 0            pages for flagged clusters only
  hydrascope site runs/r1 --all-pages              a page for every cluster (slow beyond a few thousand)

Open the index in any browser; the pages work offline and load nothing from the network.
"""


def _site(args) -> int:
    from exporters.site import write_site

    paths = write_site(args.run_dir, args.out, max_nodes=args.max_nodes, standalone=args.standalone,
                       progress=not args.quiet and sys.stderr.isatty(),
                       max_pages=None if args.all_pages else args.max_pages)
    if paths.aggregated and not args.quiet:
        print(f"{len(paths.aggregated)} cluster(s) drawn as an aggregated view (more than {args.max_nodes} nodes): "
              + ", ".join(paths.aggregated[:10]) + (" …" if len(paths.aggregated) > 10 else ""), file=sys.stderr)
    print(f"wrote {len(paths.clusters)} cluster page(s); open {paths.index}")
    if paths.unpaged and not args.quiet:
        print(f"{len(paths.unpaged)} unflagged cluster(s) listed in the index without a page "
              "(--max-pages N or --all-pages to write them)", file=sys.stderr)
    return 0


def register(sub) -> None:
    from exporters.site import MAX_PAGES

    p = sub.add_parser("site", help="write the static HTML explorer of a run folder",
                       description="Write the offline HTML explorer of a run folder: an index of every cluster "
                                   "(sortable, filterable, with an overview graph) and one page per cluster with "
                                   "its accounts and shared identifiers as an interactive graph, an accounts table, "
                                   "an activity timeline and sample prompts.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `hydrascope run`")
    p.add_argument("--out", "-o", help="folder for the pages (default RUN_DIR/site)")
    p.add_argument("--max-nodes", type=int, default=2000,
                   help="draw clusters with more graph nodes as an aggregated view (default 2000)")
    p.add_argument("--standalone", action="store_true",
                   help="inline vis-network into every page instead of sharing assets/ (pages ~0.5 MB bigger)")
    p.add_argument("--max-pages", type=int, default=MAX_PAGES,
                   help=f"at most this many cluster pages, flagged clusters always included, then the highest "
                        f"scored (default {MAX_PAGES}); the index lists every cluster")
    p.add_argument("--all-pages", action="store_true", help="a page for every cluster")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=_site)
