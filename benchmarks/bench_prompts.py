"""Benchmark of the prompt-fingerprint layer (graphbuild.layers.prompts) at 40k, 200k and 1M accounts.

Each world's events (account_id, ts, prompt) are copied once into a DuckDB file under --work
(cached between runs, so the bundle loader's cost is not measured here); then, in a fresh child
process per world, ``prompt_templates`` runs on that file with a DuckDB memory limit, and the
script prints wall and CPU seconds per step, the sizes (distinct prompts, skeletons, signature
bins, templates, uses) and the child's peak RSS.

    python benchmarks/bench_prompts.py                       # the three default worlds
    python benchmarks/bench_prompts.py /path/to/world ...    # any Parquet demo worlds
    python benchmarks/bench_prompts.py --old                 # also the original implementation
    python benchmarks/bench_prompts.py --prompt-hash         # events with the loader's prompt_hash
    python benchmarks/bench_prompts.py --acc                 # with the evidence stage's _acc table

``--old`` runs the original implementation (the copy in tests/test_prompts.py) in its own child.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_WORLDS = ["/tmp/lead/scale/world-40000", "/tmp/tune/big-200k", "/tmp/lead/scale/world-1m"]


def _connect(db: Path, memory_limit: str, threads: int, spill: Path):
    import duckdb

    con = duckdb.connect(str(db))
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = '{memory_limit}'; SET threads = {int(threads)}; SET TimeZone = 'UTC'; "
                f"SET temp_directory = '{spill}'; SET preserve_insertion_order = false")
    return con


def events_db(world: Path, work: Path, memory_limit: str, threads: int, key: bool = False) -> Path:
    """The DuckDB file holding ``events(account_id, ts, prompt)`` of ``world`` (made once).

    With ``key`` the table also has ``prompt_hash = hash(prompt)``, as graphbuild.bundle stores it.
    """
    db = work / f"{world.name}.events{'-key' if key else ''}.duckdb"
    done = db.with_suffix(".ok")
    if done.exists():
        return db
    db.unlink(missing_ok=True)
    con = _connect(db, memory_limit, threads, work / "spill")
    src = str(world / "events.parquet").replace("'", "''")
    extra = ", hash(prompt) AS prompt_hash" if key else ""
    con.execute(f"CREATE TABLE events AS SELECT account_id, CAST(ts AS TIMESTAMP) AS ts, prompt{extra} "
                f"FROM read_parquet('{src}')")
    con.close()
    done.write_text("ok\n")
    return db


class _Loud(dict):
    """A stats dict that reports each finished step on stderr as it is recorded."""

    def setdefault(self, key, default=None):
        if key == "seconds" and key not in self:
            default = _LoudSteps()
        return super().setdefault(key, default)


class _LoudSteps(dict):
    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        print(f"    .. {key}: {value:.1f} s", file=sys.stderr, flush=True)


def child(db: Path, memory_limit: str, threads: int, spill: Path, old: bool, acc: bool = False) -> dict:
    """Run the layer once on ``db`` (in this process) and return its numbers.

    With ``acc`` the temporary table ``_acc(account_id, acc)`` is made first, as
    graphbuild.graph.build_evidence makes it before the layer runs (not timed).
    """
    from graphbuild.layers.prompts import prompt_templates

    con = _connect(db, memory_limit, threads, spill)
    if acc:
        con.execute("CREATE OR REPLACE TEMP TABLE _acc AS SELECT account_id, "
                    "CAST(row_number() OVER (ORDER BY account_id) - 1 AS INTEGER) AS acc "
                    "FROM (SELECT DISTINCT account_id FROM events)")
    n_events, n_prompts = con.execute("SELECT count(*), count(prompt) FROM events").fetchone()
    stats: dict = _Loud()
    t0, c0 = time.perf_counter(), time.process_time()
    if old:
        sys.path.insert(0, str(ROOT / "tests"))
        from test_prompts import _old_prompt_templates

        uses, templates = _old_prompt_templates(con, perms=64, rows=4, threshold=0.6)
    else:
        uses, templates = prompt_templates(con, perms=64, rows=4, threshold=0.6, stats=stats)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    con.close()
    return {"events": n_events, "events_with_prompt": n_prompts, "wall": wall, "cpu": cpu,
            "uses": len(uses), "templates": len(templates),
            "peak_rss_mb": peak, **stats}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("worlds", nargs="*", default=DEFAULT_WORLDS, help="Parquet demo world folders")
    ap.add_argument("--work", default="/tmp/prompts/bench", help="where the events DuckDB files are kept")
    ap.add_argument("--memory-limit", default="2GB", help="DuckDB memory_limit for the run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--old", action="store_true", help="also run the original implementation")
    ap.add_argument("--prompt-hash", action="store_true",
                    help="events carry prompt_hash (as the bundle loader stores it); a separate DuckDB file")
    ap.add_argument("--acc", action="store_true",
                    help="make the evidence stage's account table _acc before the run (untimed)")
    ap.add_argument("--child", nargs=2, metavar=("DB", "WHICH"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    work = Path(a.work)
    if a.child:
        out = child(Path(a.child[0]), a.memory_limit, a.threads, work / "spill", a.child[1] == "old", a.acc)
        print(json.dumps(out))
        return 0
    work.mkdir(parents=True, exist_ok=True)
    for w in map(Path, a.worlds):
        if not (w / "events.parquet").exists():
            print(f"{w}: no events.parquet, skipped")
            continue
        t = time.perf_counter()
        db = events_db(w, work, "4GB", a.threads, key=a.prompt_hash)
        print(f"\n== {w}  (events DuckDB ready in {time.perf_counter() - t:.1f} s: {db})")
        for which in (["old"] if a.old else []) + ["new"]:
            p = subprocess.run([sys.executable, __file__, "--work", str(work), "--memory-limit", a.memory_limit,
                                "--threads", str(a.threads), "--child", str(db), which] + (["--acc"] if a.acc else []),
                               stdout=subprocess.PIPE, text=True)
            if p.returncode:
                print(f"  {which}: failed (exit {p.returncode})")
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            print(f"  [{which}] events {r['events']:,} (with prompt {r['events_with_prompt']:,}); "
                  f"total {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU; peak RSS {r['peak_rss_mb']:,} MB; "
                  f"uses {r['uses']:,}; templates {r['templates']:,}")
            for step, sec in r.get("seconds", {}).items():
                print(f"      {step:22s} {sec:8.2f} s wall {r['cpu_seconds'][step]:8.2f} s CPU")
            for k, v in r.get("counts", {}).items():
                print(f"      {k:22s} {v:>14,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
