"""Scale benchmark: the whole pipeline on demo worlds of growing size; wall time and peak memory per stage.

Usage::

    .venv/bin/python benchmarks/bench_scale.py                       # 10k, 40k, 160k accounts
    .venv/bin/python benchmarks/bench_scale.py --sizes 250000 1000000 --workdir /data/bench

Prints, per size and stage, wall seconds and peak RSS (GiB; the kernel's high-water mark, reset
before each stage), then the growth ratio of total time between consecutive sizes. Worlds are
generated as Parquet once per size and kept in --workdir for re-runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def measure(size: int, workdir: Path, seed: int) -> dict:
    from community.clusters import score
    from community.leiden import detect
    from exporters.results import write_results
    from graphbuild.bundle import load_bundle
    from graphbuild.graph import build_evidence
    from hydrascope.config import RunConfig
    from hydrascope.demo.world import generate_world

    world = workdir / f"world-{size}"
    if not (world / "world.json").exists():
        t = time.perf_counter()
        generate_world(world, n_accounts=size, seed=seed, fmt="parquet")
        print(f"  generated {size} accounts in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    cfg = RunConfig(seed=seed, site=False)
    stages = {}

    def stage(name, fn):
        _reset_peak()
        t = time.perf_counter()
        out = fn()
        stages[name] = {"seconds": round(time.perf_counter() - t, 2), "peak_gib": round(_peak_gib(), 2)}
        print(f"  {size:>9} {name:<10} {stages[name]['seconds']:>8.2f} s  {stages[name]['peak_gib']:>6.2f} GiB",
              file=sys.stderr, flush=True)
        return out

    bundle = stage("load", lambda: load_bundle(world))
    n_events = bundle.counts["events"]["rows_accepted"]
    evidence = stage("evidence", lambda: build_evidence(bundle, cfg.evidence))
    partition = stage("leiden", lambda: detect(evidence, cfg.community, seed=seed))
    report = stage("scoring", lambda: score(evidence, partition, cfg.scoring))
    stage("write", lambda: write_results(workdir / f"run-{size}", evidence, report, meta={"size": size},
                                         rejects=bundle.rejects, con=bundle.con))
    bundle.close()
    total = sum(s["seconds"] for s in stages.values())
    return {"accounts": size, "events": int(n_events), "links": int(len(evidence.links)), "stages": stages,
            "total_seconds": round(total, 2), "peak_gib": max(s["peak_gib"] for s in stages.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 40_000, 160_000])
    ap.add_argument("--workdir", default="/tmp/hydrascope-bench-scale")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, "
          f"{int(Path('/proc/meminfo').read_text().split()[1]) / 1024**2:.0f} GiB", flush=True)
    rows = [measure(n, work, args.seed) for n in args.sizes]
    print(f"{'accounts':>9} {'events':>11} {'links':>10} " + " ".join(f"{s:>9}" for s in rows[0]["stages"])
          + f" {'total s':>8} {'peak GiB':>8} {'growth':>7}")
    prev = None
    for r in rows:
        growth = f"{r['total_seconds'] / prev['total_seconds']:.2f}x" if prev else "-"
        size_ratio = f" (data {r['events'] / prev['events']:.1f}x)" if prev else ""
        print(f"{r['accounts']:>9} {r['events']:>11} {r['links']:>10} "
              + " ".join(f"{s['seconds']:>9.1f}" for s in r["stages"].values())
              + f" {r['total_seconds']:>8.1f} {r['peak_gib']:>8.2f} {growth:>7}{size_ratio}")
        prev = r
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
