"""The `hydrascope` command line: parses arguments, calls the library, prints, exits."""

from __future__ import annotations

import argparse
import importlib
import sys

from graphbuild.errors import HydrascopeError

__all__ = ["main", "build_parser"]

#: subcommand modules in hydrascope/commands/, each with `register(subparsers)`;
#: a command sets `func(args) -> int` on its parser.
COMMAND_MODULES = ("run", "demo", "evaluate", "evidence", "report", "demo_world", "export", "site")

EPILOG = """examples:
  hydrascope demo --out runs/demo              make the demo world and run it
  hydrascope demo-world worlds/demo --seed 7   write a demo input bundle only
  hydrascope run worlds/demo --out runs/r1     run detection on any input bundle
  hydrascope evaluate runs/r1 worlds/demo/labels.csv
  hydrascope evidence runs/r1 --flagged --out packages   one verifiable zip per flagged cluster
  hydrascope verify packages/cluster-C0001.zip
  hydrascope report runs/r2 --previous runs/r1 --out runs/r2/report.html   what changed since r1
"""


def build_parser() -> argparse.ArgumentParser:
    from hydrascope import __version__

    parser = argparse.ArgumentParser(
        prog="hydrascope",
        description="Find coordinated networks of proxy accounts used to distill AI models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hydrascope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"hydrascope.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except HydrascopeError as exc:
        print(f"hydrascope: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hydrascope: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
