"""Time the demo-world generator at a few sizes and print rows/s (no assertions).

Usage: python benchmarks/bench_demo_world.py [--sizes 3000,30000,200000] [--formats csv,parquet] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from hydrascope.demo.world import generate_world

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="3000,30000,200000", help="comma-separated account counts")
    ap.add_argument("--formats", default="csv,parquet", help="comma-separated formats")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="scratch folder (default: a temporary one, removed)")
    args = ap.parse_args(argv)
    scratch = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_demo_world_"))
    print(f"{'accounts':>9} {'format':>8} {'events':>11} {'seconds':>8} {'events/s':>11} {'MB':>8}")
    try:
        for n in (int(x) for x in args.sizes.split(",")):
            for fmt in args.formats.split(","):
                out = scratch / f"w{n}_{fmt}"
                t0 = time.perf_counter()
                info = generate_world(out, n_accounts=n, seed=args.seed, fmt=fmt)
                dt = time.perf_counter() - t0
                mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
                print(f"{n:>9,} {fmt:>8} {info.n_events:>11,} {dt:>8.1f} {info.n_events / dt:>11,.0f} {mb:>8.0f}",
                      flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if not args.out:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
