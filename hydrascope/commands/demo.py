"""`hydrascope demo`: make the built-in demo world, run detection on it and evaluate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register"]

EXAMPLES = """examples:
  hydrascope demo                          world in runs/demo/world, results in runs/demo/run
  hydrascope demo --out /tmp/d --accounts 20000 --seed 3
"""


def _demo(args) -> int:
    from hydrascope.commands.evaluate import print_evaluation
    from hydrascope.commands.run import config_from_args, print_summary, _stage_printer
    from hydrascope.demo.world import generate_world
    from hydrascope.evaluation import evaluate_run
    from hydrascope.pipeline import run

    out = Path(args.out)
    world = out / "world"
    say = _stage_printer(args.quiet)
    say("demo-world")
    generate_world(world, n_accounts=args.accounts, seed=args.world_seed)
    cfg = config_from_args(args)
    result = run(world, out / "run", cfg, progress=not args.quiet and sys.stderr.isatty(), on_stage=say)
    print_summary(result)
    print_evaluation(evaluate_run(out / "run", world))
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="generate the demo world and run detection on it",
                       description="Generate the seeded demo world (planted campaigns + benign look-alikes), "
                                   "run detection on it and print precision/recall against its labels.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", "-o", default="runs/demo", help="folder for world/ and run/ (default runs/demo)")
    p.add_argument("--accounts", type=int, default=3000, help="accounts in the world (default 3000)")
    p.add_argument("--world-seed", type=int, default=0, help="seed of the world generator (default 0)")
    from hydrascope.commands.run import add_run_options

    add_run_options(p)
    p.set_defaults(func=_demo, previous=None)
