"""`hydrascope export`: put a run into other tools (Neo4j)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["register"]

NEO4J_EXAMPLES = """examples:
  scripts/neo4j start
  hydrascope export neo4j runs/demo
      export to the local server of scripts/neo4j (bolt://127.0.0.1:7687, no authentication)
  NEO4J_PASSWORD=secret hydrascope export neo4j runs/r1 --uri bolt://db.internal:7687 --user neo4j
      a server with authentication (the password is read from the environment, never from the command line)
  hydrascope export neo4j runs/r1 --uri neo4j+s://xxxx.databases.neo4j.io --password-env AURA_PASSWORD
  hydrascope export neo4j runs/r2 --batch-size 20000
      a later run is added beside the earlier ones; re-exporting a run changes nothing
  hydrascope export neo4j runs/big --admin-csv import/big
      write CSV files for `neo4j-admin database import full` instead (very large runs; see import/big/import.sh)

Investigator queries: exporters/neo4j/queries.cypher (docs/neo4j.md).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a run to another tool (neo4j)",
                              description="Export a run folder to another tool.")
    targets = p.add_subparsers(dest="target", metavar="TARGET")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    n = targets.add_parser(
        "neo4j", help="export a run to a Neo4j server (batched, idempotent)",
        description="Export a run folder to Neo4j: accounts, IPs, prefixes, payment instruments, prompt "
                    "templates, user agents, clusters, memberships and account-account links. Each batch is "
                    "one transaction; re-running the export changes nothing and completes an interrupted one.",
        epilog=NEO4J_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    n.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="run folder written by `hydrascope run`")
    n.add_argument("--uri", default=os.environ.get("NEO4J_URI", "bolt://127.0.0.1:7687"),
                   help="Bolt/neo4j URI (default: $NEO4J_URI or bolt://127.0.0.1:7687)")
    n.add_argument("--user", default=os.environ.get("NEO4J_USER", "neo4j"), help="user name (default neo4j)")
    n.add_argument("--password-env", metavar="VAR", default="NEO4J_PASSWORD",
                   help="environment variable holding the password (default NEO4J_PASSWORD); "
                        "when it is unset or empty, no authentication is sent")
    n.add_argument("--no-auth", action="store_true", help="send no credentials even if the password variable is set")
    n.add_argument("--database", default=None, help="target database (default: the server's default)")
    n.add_argument("--batch-size", type=int, default=5000, metavar="N", help="rows per transaction (default 5000)")
    n.add_argument("--admin-csv", metavar="DIR", type=Path, default=None,
                   help="write neo4j-admin import CSV files into DIR instead of exporting over Bolt")
    n.add_argument("--no-progress", action="store_true", help="no progress bar")
    n.set_defaults(func=run_neo4j)


def run_neo4j(args) -> int:
    from graphbuild.errors import ConfigError

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.admin_csv is not None:
        from exporters.neo4j.admin_import import write_admin_csv

        res = write_admin_csv(args.run_dir, args.admin_csv)
        print(f"run {res.run_id}: neo4j-admin import files in {res.directory}")
        for name, rows in res.rows.items():
            print(f"  {name:32s} {rows:>10d} rows")
        print(f"load into an empty, stopped database with: sh {res.directory / 'import.sh'} [DATABASE]")
        print(f"then create constraints and indexes with: hydrascope export neo4j {args.run_dir} --uri ...")
        return 0

    from exporters.neo4j import export_run

    password = os.environ.get(args.password_env or "", "")
    auth = None if (args.no_auth or not password) else (args.user, password)
    progress = not args.no_progress and sys.stderr.isatty()
    stats = export_run(args.run_dir, args.uri, auth, database=args.database, batch_size=args.batch_size,
                       progress=progress)
    print(f"run {stats.run_id} exported to {args.uri} in {stats.seconds:.1f}s ({stats.batches} transactions)")
    for name, n in stats.nodes.items():
        print(f"  (:{name}) {n:>10d}")
    for name, n in stats.relationships.items():
        print(f"  [:{name}] {n:>10d}")
    print(f"  created {stats.nodes_created} nodes, {stats.relationships_created} relationships "
          f"(0 when the run was already there)")
    return 0
