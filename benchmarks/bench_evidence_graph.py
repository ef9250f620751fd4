"""Benchmark the evidence graph: build time and peak memory per layer at several demo-world sizes.

Usage::

    .venv/bin/python benchmarks/bench_evidence_graph.py --sizes 3000 30000 200000 --work /tmp/bench-evidence

Worlds are generated once (Parquet) into ``--work`` and reused. Prints, per size, the bundle
load time, then per stage (layer extraction, pair expansion per layer, features) the wall
time and the peak resident memory of the process during that stage, then the growth ratio of
the total time between consecutive sizes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import world  # noqa: E402  (benchmarks/ is on sys.path when a script runs)


class _LiveStats(dict):
    """Prints every stage to stderr as soon as it ends (a run that dies still shows how far it got)."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        print(f"  [{key}] {value['seconds']:.2f} s, peak RSS {value['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)


def bench(folder: Path, memory_limit: str | None) -> dict:
    from graphbuild.bundle import load_bundle
    from graphbuild.graph import build_evidence

    t = time.perf_counter()
    b = load_bundle(folder, memory_limit=memory_limit)
    load_s = time.perf_counter() - t
    n_events = b.con.execute("SELECT count(*) FROM events").fetchone()[0]
    n_accounts = b.con.execute("SELECT count(*) FROM accounts").fetchone()[0]
    stats: dict = _LiveStats()
    print(f"loaded {folder.name} in {load_s:.1f} s", file=sys.stderr, flush=True)
    t = time.perf_counter()
    ev = build_evidence(b, stats=stats)
    total = time.perf_counter() - t
    b.close()
    return {"accounts": int(n_accounts), "events": int(n_events), "load_s": round(load_s, 2),
            "evidence_s": round(total, 2), "links": int(len(ev.links)),
            "links_per_layer": {k: int(v) for k, v in ev.links.groupby("layer").size().items()}, "stages": dict(stats)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[3000, 30000, 200000])
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-evidence"))
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--duckdb-memory", default=None, help="DuckDB memory_limit (default: the loader's)")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for n in args.sizes:
        r = bench(world(args.work, n, args.seed), args.duckdb_memory)
        results.append(r)
        print(f"\n== {r['accounts']:,} accounts / {r['events']:,} events: load {r['load_s']} s, "
              f"evidence {r['evidence_s']} s, {r['links']:,} links {r['links_per_layer']}")
        print(f"{'stage':<16}{'seconds':>10}{'peak RSS MB':>14}")
        for name, s in r["stages"].items():
            print(f"{name:<16}{s['seconds']:>10.2f}{s['peak_rss_mb']:>14.0f}")
        sys.stdout.flush()
    for a, b in zip(results, results[1:]):
        print(f"growth {a['events']:,} -> {b['events']:,} events (x{b['events'] / a['events']:.1f}): "
              f"evidence time x{b['evidence_s'] / max(a['evidence_s'], 1e-9):.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
