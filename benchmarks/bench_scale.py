"""Scale benchmark: ``hydrascope.pipeline.run`` on demo worlds of growing size; time and peak memory per stage.

Usage::

    .venv/bin/python benchmarks/bench_scale.py                                   # 10k, 40k, 160k accounts
    .venv/bin/python benchmarks/bench_scale.py --sizes 250000 1000000 --days 32 --workdir /data/bench

Runs the whole pipeline as ``hydrascope run`` does (load, evidence, communities, scoring, write,
and the static site unless ``--no-site``) and prints, per size and stage, wall seconds and peak
RSS in GiB (the kernel's high-water mark of this process, reset when each stage starts), the
evidence stage's own sub-stages, then the growth of total time between consecutive sizes against
the growth of the data. Worlds are generated as Parquet once per (size, days, seed) and kept in
--workdir for re-runs (generation is not timed). ``--days 32`` gives about 50 events per account.
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


def measure(size: int, workdir: Path, seed: int, days: int, site: bool, engine: str) -> dict:
    from hydrascope.config import RunConfig
    from hydrascope.demo.world import generate_world
    from hydrascope.pipeline import run

    world = workdir / f"world-{size}-d{days}-s{seed}"
    if not (world / "world.json").exists():
        t = time.perf_counter()
        generate_world(world, n_accounts=size, seed=seed, days=days, fmt="parquet")
        print(f"  generated {size} accounts in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    cfg = RunConfig(seed=seed, site=site)
    stages: dict = {}
    sub: dict = {}
    clock = {"name": None, "t": 0.0}

    def close() -> None:
        if clock["name"] is not None:
            peak = _peak_gib()
            if clock["name"] == "evidence":  # its sub-stages reset the high-water mark as they start
                peak = max([peak] + [v["peak_rss_mb"] / 1024 for v in sub.values()])
            stages[clock["name"]] = {"seconds": round(time.perf_counter() - clock["t"], 2),
                                     "peak_gib": round(peak, 2)}
            s = stages[clock["name"]]
            print(f"  {size:>9} {clock['name']:<12} {s['seconds']:>8.2f} s  {s['peak_gib']:>6.2f} GiB",
                  file=sys.stderr, flush=True)

    def on_stage(name: str) -> None:
        close()
        _reset_peak()
        clock.update(name=name, t=time.perf_counter())

    t0 = time.perf_counter()
    result = run(world, workdir / f"run-{size}-d{days}-s{seed}", cfg, on_stage=on_stage, engine=engine,
                 evidence_stats=sub, now=None)
    close()
    total = time.perf_counter() - t0
    n_events = json.loads((result.run_dir / "run.json").read_text())["inputs"]["events"]["rows_accepted"]
    return {"accounts": size, "events": int(n_events), "links": int(result.counts["links"]),
            "clusters": int(result.counts["clusters"]), "flagged": int(result.counts["flagged_clusters"]),
            "stages": stages, "evidence_stages": sub, "total_seconds": round(total, 2),
            "peak_gib": max(s["peak_gib"] for s in stages.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 40_000, 160_000])
    ap.add_argument("--days", type=int, default=28, help="observed days per world (28: ~44 events/account)")
    ap.add_argument("--workdir", default="/tmp/hydrascope-bench-scale")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-site", action="store_true", help="skip the static site stage")
    ap.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"])
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024**2
    print(f"machine: {os.cpu_count()} cores, {mem:.0f} GiB RAM; engine {args.engine}; "
          f"site {'off' if args.no_site else 'on'}", flush=True)
    rows = []
    for n in args.sizes:
        rows.append(measure(n, work, args.seed, args.days, not args.no_site, args.engine))
        r = rows[-1]
        print(f"  evidence sub-stages at {n}: " + ", ".join(
            f"{k} {v['seconds']:.1f} s / {v['peak_rss_mb'] / 1024:.1f} GiB" for k, v in r["evidence_stages"].items()),
            flush=True)
    names = list(dict.fromkeys(k for r in rows for k in r["stages"]))
    print(f"{'accounts':>9} {'events':>11} {'links':>10} " + " ".join(f"{s:>11}" for s in names)
          + f" {'total s':>8} {'peak GiB':>8} {'growth':>7}")
    prev = None
    for r in rows:
        growth = f"{r['total_seconds'] / prev['total_seconds']:.2f}x" if prev else "-"
        size_ratio = f" (data {r['events'] / prev['events']:.1f}x)" if prev else ""
        print(f"{r['accounts']:>9} {r['events']:>11} {r['links']:>10} "
              + " ".join(f"{r['stages'].get(s, {}).get('seconds', float('nan')):>11.1f}" for s in names)
              + f" {r['total_seconds']:>8.1f} {r['peak_gib']:>8.2f} {growth:>7}{size_ratio}")
        prev = r
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
