"""Neo4j export benchmark: nodes/s and relationships/s for exporting a large run (default 200k accounts).

Usage::

    .venv/bin/python benchmarks/bench_neo4j_export.py                         # demo world + pipeline, 200k
    .venv/bin/python benchmarks/bench_neo4j_export.py --source synthetic       # synthetic run folder, 200k
    .venv/bin/python benchmarks/bench_neo4j_export.py --run-dir runs/big       # any existing run folder
    .venv/bin/python benchmarks/bench_neo4j_export.py --uri bolt://127.0.0.1:7687 --accounts 20000

Without --uri the script starts its own empty server with scripts/neo4j on --port (default 7689,
home in --workdir) so it never touches the development database, and stops it afterwards. It
prints, per label and relationship type, rows and rows/s; then the totals of the first export,
of a re-export of the same run (idempotent: nothing created), and the time to write the
neo4j-admin import CSVs. The world and its run folder are kept in --workdir for re-runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def demo_run_folder(n: int, seed: int, workdir: Path) -> Path:
    """Demo world of n accounts and its run folder (both cached in workdir)."""
    from hydrascope.config import RunConfig
    from hydrascope.demo.world import generate_world
    from hydrascope.pipeline import run

    world, out = workdir / f"world-{n}-{seed}", workdir / f"run-{n}-{seed}"
    if not (world / "world.json").is_file():
        t = time.perf_counter()
        generate_world(world, n_accounts=n, seed=seed, fmt="parquet", progress=sys.stderr.isatty())
        print(f"generated world of {n:,} accounts in {time.perf_counter() - t:.0f}s", flush=True)
    if not (out / "run.json").is_file():
        t = time.perf_counter()
        run(world, out, RunConfig(seed=seed, site=False), progress=sys.stderr.isatty())
        print(f"ran the pipeline in {time.perf_counter() - t:.0f}s", flush=True)
    return out


def synthetic_run_folder(n: int, seed: int, workdir: Path) -> Path:
    """A run folder of n accounts in the run-folder format, made directly (no pipeline).

    Clusters of 3-60 accounts hold 60% of the accounts and share IPs, prefixes, instruments and
    templates; every account also uses a few popular and private identifiers. Roughly per
    account: 4 IP uses, 2 prefix uses, 0.7 instrument, 3 templates, 0.2 user agent, 10 links.
    """
    import numpy as np
    import pandas as pd

    out = workdir / f"synthetic-{n}-{seed}"
    if (out / "run.json").is_file():
        return out
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    ids = np.array([f"acct-{i:07d}" for i in range(n)])
    sizes = []
    left = int(n * 0.6)
    while left > 0:
        s = int(min(left, rng.integers(3, 61)))
        sizes.append(s)
        left -= s
    perm = rng.permutation(n)
    cluster = np.full(n, -1)
    pos = 0
    for c, s in enumerate(sizes):
        cluster[perm[pos:pos + s]] = c
        pos += s
    n_cl = len(sizes)
    cscore = np.round(rng.random(n_cl), 4)
    cflag = cscore > 0.85
    cid = np.array([f"C{c + 1:05d}" for c in range(n_cl)])
    t0 = pd.Timestamp("2026-10-01", tz="UTC")

    def times(k):
        a = t0 + pd.to_timedelta(rng.integers(0, 20 * 86400, k), unit="s")
        return a, a + pd.to_timedelta(rng.integers(0, 8 * 86400, k), unit="s")

    parts = []

    def uses(acc, kind, ident, nev):
        f, l = times(len(acc))
        parts.append(pd.DataFrame({"account_id": ids[acc], "kind": kind, "identifier": ident,
                                   "n_events": nev, "first_seen": f, "last_seen": l}))

    clustered = np.flatnonzero(cluster >= 0)
    # shared cluster identifiers
    cl_ip = np.array([f"10.{(c >> 8) & 255}.{c & 255}.{rng.integers(1, 255)}" for c in range(n_cl)])
    ip_of = lambda c: cl_ip[c]  # noqa: E731
    uses(clustered, "ip", ip_of(cluster[clustered]), rng.integers(1, 50, len(clustered)))
    uses(clustered, "prefix", np.array([x.rsplit(".", 1)[0] + ".0/24" for x in ip_of(cluster[clustered])]),
         rng.integers(1, 50, len(clustered)))
    pay = clustered[rng.random(len(clustered)) < 0.7]
    uses(pay, "instrument", np.array([f"card:{c:06d}" for c in cluster[pay]]), 1)
    uses(clustered, "template", np.array([f"T{c:06d}" for c in cluster[clustered]]), rng.integers(1, 30, len(clustered)))
    # private and popular identifiers for everybody
    k = rng.poisson(3, n)
    acc = np.repeat(np.arange(n), k)
    pool = rng.integers(0, n * 2, len(acc))
    ips = np.array([f"100.{(p >> 16) & 255}.{(p >> 8) & 255}.{p & 255}" for p in pool])
    df = pd.DataFrame({"a": acc, "ip": ips}).drop_duplicates()
    uses(df["a"].to_numpy(), "ip", df["ip"].to_numpy(), rng.integers(1, 100, len(df)))
    pre = pd.DataFrame({"a": df["a"], "p": [x.rsplit(".", 1)[0] + ".0/24" for x in df["ip"]]}).drop_duplicates()
    uses(pre["a"].to_numpy(), "prefix", pre["p"].to_numpy(), rng.integers(1, 100, len(pre)))
    k = rng.poisson(2, n)
    acc = np.repeat(np.arange(n), k)
    tp = pd.DataFrame({"a": acc, "t": [f"P{x:06d}" for x in (rng.zipf(1.6, len(acc)) % (n // 10))]}).drop_duplicates()
    uses(tp["a"].to_numpy(), "template", tp["t"].to_numpy(), rng.integers(1, 40, len(tp)))
    ua = np.flatnonzero(rng.random(n) < 0.2)
    uses(ua, "user_agent", np.array([f"tool/{x % 5000}.0 (x'\"`}}) // MATCH (n) DETACH DELETE n)" for x in ua]), 3)
    single = np.flatnonzero(cluster < 0)
    pay = single[rng.random(len(single)) < 0.5]
    uses(pay, "instrument", np.array([f"card:s{x:07d}" for x in pay]), 1)
    ai = pd.concat(parts, ignore_index=True).drop_duplicates(["account_id", "kind", "identifier"])
    ai = ai.sort_values(["account_id", "kind", "identifier"], ignore_index=True)
    ai.to_parquet(out / "account_identifiers.parquet", index=False)

    idf = ai.groupby(["kind", "identifier"])["account_id"].nunique().rename("n_accounts").reset_index()
    idf = idf[idf["n_accounts"] >= 2].reset_index(drop=True)
    layer = {"ip": "network", "prefix": "network", "instrument": "payment", "template": "prompt", "user_agent": "timing"}
    idf["layer"] = idf["kind"].map(layer)
    idf["is_hub"] = idf["n_accounts"] > 500
    idf["pair_weight"] = np.where(idf["is_hub"], 0.0, 1.0 / idf["n_accounts"])
    idf[["kind", "identifier", "layer", "n_accounts", "pair_weight", "is_hub"]].to_parquet(
        out / "identifiers.parquet", index=False)
    tids = sorted(set(ai.loc[ai["kind"] == "template", "identifier"]))
    tcount = ai[ai["kind"] == "template"].groupby("identifier").agg(n=("account_id", "nunique"), p=("n_events", "sum"))
    pd.DataFrame({"template_id": tids, "skeleton": [f"Solve <NUM> step by step ({t}) `}}) // x" for t in tids],
                  "n_accounts": tcount.loc[tids, "n"].to_numpy(), "n_prompts": tcount.loc[tids, "p"].to_numpy(),
                  "is_hub": tcount.loc[tids, "n"].to_numpy() > 500,
                  "examples": [["Solve 3 step by step"]] * len(tids)}).to_parquet(out / "templates.parquet", index=False)

    # links: each clustered account to up to 8 cluster mates (1-3 layers), plus 1 random benign link
    rows_a, rows_b = [], []
    order = np.argsort(cluster, kind="stable")
    starts = np.searchsorted(cluster[order], np.arange(n_cl))
    for c, s in enumerate(sizes):
        mem = order[starts[c]:starts[c] + s]
        for j in range(1, min(s, 9)):
            rows_a.append(mem)
            rows_b.append(np.roll(mem, -j))
    a = np.concatenate(rows_a + [rng.integers(0, n, n)])
    b = np.concatenate(rows_b + [rng.integers(0, n, n)])
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    lk = pd.DataFrame({"account_a": ids[lo], "account_b": ids[hi]}).drop_duplicates()
    layers = ["network", "payment", "prompt", "timing"]
    second = lk[rng.random(len(lk)) < 0.5]
    lk = pd.concat([lk.assign(layer=rng.choice(layers, len(lk))), second.assign(layer=rng.choice(layers, len(second)))])
    lk = lk.drop_duplicates(["account_a", "account_b", "layer"])
    f, l = times(len(lk))
    lk = lk.assign(weight=np.round(rng.random(len(lk)) * 0.99 + 0.01, 4), evidence_count=rng.integers(1, 20, len(lk)),
                   first_seen=f, last_seen=l).sort_values(["account_a", "account_b", "layer"], ignore_index=True)
    lk.to_parquet(out / "links.parquet", index=False)

    score = np.where(cluster >= 0, cscore[np.maximum(cluster, 0)], np.round(rng.random(n) * 0.1, 4))
    pd.DataFrame({"account_id": ids, "cluster_id": np.where(cluster >= 0, cid[np.maximum(cluster, 0)], ""),
                  "flagged": np.where((cluster >= 0) & cflag[np.maximum(cluster, 0)], "true", "false"),
                  "score": [f"{x:.4f}" for x in score]}).to_csv(out / "accounts.csv", index=False)
    cl = pd.DataFrame({"cluster_id": cid, "n_accounts": sizes, "score": [f"{x:.4f}" for x in cscore],
                       "flagged": np.where(cflag, "true", "false"),
                       "reasons": np.where(cflag, "shared prepaid card; templated prompts", "")})
    cl.sort_values(["score", "cluster_id"], ascending=[False, True]).to_csv(out / "clusters.csv", index=False)
    (out / "run.json").write_text(json.dumps({
        "version": "synthetic", "seed": seed, "config": {}, "bundle": None, "inputs": {},
        "window": {"since": "2026-10-01T00:00:00Z", "until": "2026-10-29T00:00:00Z"},
        "counts": {"accounts": n}, "previous_run": None}, sort_keys=True), encoding="utf-8")
    print(f"wrote synthetic run folder of {n:,} accounts in {time.perf_counter() - t:.0f}s", flush=True)
    return out


def start_server(port: int, home: Path) -> None:
    if home.exists():
        shutil.rmtree(home)
    env = {**os.environ, "NEO4J_PORT": str(port), "NEO4J_HOME_DIR": str(home),
           "NEO4J_HEAP": os.environ.get("NEO4J_HEAP", "3g"), "NEO4J_PAGECACHE": os.environ.get("NEO4J_PAGECACHE", "2g")}
    subprocess.run([str(ROOT / "scripts" / "neo4j"), "start"], check=True, env=env)


def stop_server(port: int, home: Path) -> None:
    env = {**os.environ, "NEO4J_PORT": str(port), "NEO4J_HOME_DIR": str(home)}
    subprocess.run([str(ROOT / "scripts" / "neo4j"), "stop"], check=False, env=env)


def report(title: str, stats) -> None:
    print(f"\n{title}: run {stats.run_id}, {stats.batches} transactions, {stats.seconds:.1f}s")
    print(f"  {'':22s} {'rows':>10s} {'seconds':>8s} {'rows/s':>9s}")
    for name, n in list(stats.nodes.items()) + list(stats.relationships.items()):
        if name not in stats.phase_seconds:
            continue
        s = stats.phase_seconds[name]
        print(f"  {name:22s} {n:10,d} {s:8.1f} {n / s if s else 0:9,.0f}")
    node_s = sum(s for k, s in stats.phase_seconds.items() if k in stats.nodes)
    rel_s = sum(s for k, s in stats.phase_seconds.items() if k in stats.relationships)
    print(f"  nodes:         {stats.n_nodes:10,d} in {node_s:7.1f}s = {stats.n_nodes / max(node_s, 1e-9):9,.0f} nodes/s")
    print(f"  relationships: {stats.n_relationships:10,d} in {rel_s:7.1f}s = "
          f"{stats.n_relationships / max(rel_s, 1e-9):9,.0f} relationships/s")
    print(f"  overall:       {(stats.n_nodes + stats.n_relationships) / max(stats.seconds, 1e-9):9,.0f} rows/s; "
          f"created {stats.nodes_created:,} nodes, {stats.relationships_created:,} relationships", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--source", choices=("demo", "synthetic"), default="demo",
                    help="demo: generate_world + pipeline (default); synthetic: a run folder made directly")
    ap.add_argument("--run-dir", type=Path, default=None, help="export this run folder instead")
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "hydrascope-bench-neo4j")
    ap.add_argument("--uri", default=None, help="use this server (it is NOT emptied) instead of starting one")
    ap.add_argument("--port", type=int, default=7689, help="port of the server the script starts")
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--no-reexport", action="store_true")
    args = ap.parse_args(argv)

    from exporters.neo4j import connect, export_run_with_driver, prepare_run
    from exporters.neo4j.admin_import import write_admin_csv

    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.run_dir:
        run_dir = args.run_dir
    elif args.source == "demo":
        run_dir = demo_run_folder(args.accounts, args.seed, args.workdir)
    else:
        run_dir = synthetic_run_folder(args.accounts, args.seed, args.workdir)

    t = time.perf_counter()
    prep = prepare_run(run_dir)
    t_prep = time.perf_counter() - t
    n_rows = sum(map(len, prep.nodes.values())) + sum(map(len, prep.relationships.values()))
    print(f"run folder {run_dir}: {len(prep.nodes['Account']):,} accounts, {n_rows:,} rows to send; "
          f"read and prepared in {t_prep:.1f}s", flush=True)

    home = args.workdir / f"neo4j-home-{args.port}"
    uri = args.uri or f"bolt://127.0.0.1:{args.port}"
    if not args.uri:
        start_server(args.port, home)
    try:
        driver = connect(uri)
        try:
            def phase(name, rows, seconds):
                print(f"  ... {name:22s} {rows:10,d} rows {seconds:8.1f}s {rows / max(seconds, 1e-9):9,.0f}/s",
                      flush=True)

            first = export_run_with_driver(run_dir, driver, batch_size=args.batch_size, prepared=prep,
                                           progress=sys.stderr.isatty(), on_phase=phase)
            report(f"first export (batch size {args.batch_size})", first)
            if not args.no_reexport:
                again = export_run_with_driver(run_dir, driver, batch_size=args.batch_size, prepared=prep,
                                               progress=sys.stderr.isatty())
                report("re-export of the same run", again)
        finally:
            driver.close()
    finally:
        if not args.uri:
            stop_server(args.port, home)
    t = time.perf_counter()
    res = write_admin_csv(run_dir, args.workdir / "admin-csv", prepared=prep)
    print(f"\nneo4j-admin CSVs: {sum(res.rows.values()):,} rows in {time.perf_counter() - t:.1f}s "
          f"({res.directory})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
