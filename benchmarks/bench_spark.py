"""Benchmark the graph-building stage per engine (DuckDB, Spark local mode) at two demo-world sizes.

Usage::

    .venv/bin/python benchmarks/bench_spark.py --sizes 1000 10000 --master 'local[2]' --work /tmp/bench-spark

Worlds are generated once (Parquet) into ``--work`` and reused. For each size: bundle load
time, then ``build_evidence`` wall time with ``engine="duckdb"`` and with ``engine="spark"``
(the Spark session is started before timing and its start-up time printed separately; the
first Spark build also pays the JVM's warm-up, so it is run twice and both times shown), the
links per engine and whether the two link tables are equal. Also prints per-stage times.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import world  # noqa: E402  (benchmarks/ is on sys.path when a script runs)


def same_links(x, y) -> bool:
    import pandas as pd

    x = x.sort_values(["a", "b", "layer"], ignore_index=True)
    y = y.sort_values(["a", "b", "layer"], ignore_index=True)
    try:
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=0, atol=1e-12)
    except AssertionError:
        return False
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--master", default="local[2]", help="Spark master URL (default local[2])")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-spark"))
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")

    from graphbuild.bundle import load_bundle
    from graphbuild.engine import get_spark, stop_spark
    from graphbuild.graph import build_evidence

    t = time.perf_counter()
    get_spark(args.master)
    print(f"spark session start ({args.master}): {time.perf_counter() - t:.1f} s", flush=True)
    try:
        for n in args.sizes:
            folder = world(args.work, n, args.seed)
            t = time.perf_counter()
            b = load_bundle(folder)
            load_s = time.perf_counter() - t
            n_events = b.con.execute("SELECT count(*) FROM events").fetchone()[0]
            print(f"\n== {n} accounts, {n_events} events (load {load_s:.1f} s)", flush=True)
            runs = {}
            for label, engine in (("duckdb", "duckdb"), ("spark (1st)", "spark"), ("spark (2nd)", "spark")):
                stats: dict = {}
                t = time.perf_counter()
                ev = build_evidence(b, engine=engine, stats=stats)
                runs[label] = (time.perf_counter() - t, ev, stats)
                stages = ", ".join(f"{k} {v['seconds']:.1f}" for k, v in stats.items())
                print(f"  {label:12s} {runs[label][0]:8.1f} s  {len(ev.links):8d} links   [{stages}]", flush=True)
            d, s = runs["duckdb"][1], runs["spark (2nd)"][1]
            print(f"  links equal: {same_links(d.links, s.links)};  spark/duckdb time: "
                  f"{runs['spark (2nd)'][0] / max(runs['duckdb'][0], 1e-9):.1f}x", flush=True)
            b.close()
    finally:
        stop_spark()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
