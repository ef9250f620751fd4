"""`hydrascope evaluate`: precision, recall and F1 of a run against campaign labels."""

from __future__ import annotations

import argparse
import json

__all__ = ["register", "print_evaluation"]

EXAMPLES = """examples:
  hydrascope evaluate runs/demo/run runs/demo/world/labels.csv
  hydrascope evaluate runs/demo/run runs/demo/world --json
"""


def print_evaluation(ev: dict) -> None:
    print(f"precision {ev['precision']:.3f}  recall {ev['recall']:.3f}  F1 {ev['f1']:.3f}  "
          f"({ev['tp']} true, {ev['fp']} false positives, {ev['fn']} missed)")
    for cid, c in ev["per_campaign"].items():
        print(f"  campaign {cid}: {c['flagged']}/{c['n_accounts']} flagged (recall {c['recall']:.2f})")
    if "benign_orgs_flagged" in ev:
        print(f"benign organisations flagged: {len(ev['benign_orgs_flagged'])} of {ev['benign_orgs_total']}"
              + (f" ({', '.join(ev['benign_orgs_flagged'][:5])})" if ev["benign_orgs_flagged"] else ""))
    if "layers" in ev:
        print("link weight by layer: inside campaigns / benign-benign / campaign-benign")
        for layer, r in ev["layers"].items():
            print(f"  {layer:8s} {r['inside_campaign']:.3f} / {r['benign_benign']:.3f} / {r['campaign_benign']:.3f}"
                  f"  ({r['n_links']} links)")


def _evaluate(args) -> int:
    from hydrascope.evaluation import evaluate_run

    ev = evaluate_run(args.run_dir, args.labels)
    if args.json:
        print(json.dumps(ev, indent=1, sort_keys=True))
    else:
        print_evaluation(ev)
    return 0


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="precision/recall of a run against campaign labels",
                       description="Compare a run's flagged accounts with campaign labels: precision, recall, F1, "
                                   "per-campaign recall, benign organisations flagged, link weight per layer.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="run folder written by `hydrascope run`")
    p.add_argument("labels", help="labels table file, or the input bundle folder holding it")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_evaluate)
