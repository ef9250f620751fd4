"""Benchmark the community stage (Leiden detection, then scoring and explanations): time and peak RSS per step.

Usage::

    .venv/bin/python benchmarks/bench_community.py --world /tmp/lead/scale/world-10000 --cache /tmp/community
    .venv/bin/python benchmarks/bench_community.py --synthetic 1000000 --cache /tmp/community

``--world`` builds the EvidenceGraph of a demo-world folder once (graphbuild.bundle.load_bundle +
graphbuild.graph.build_evidence) and pickles it into ``--cache`` for re-runs. ``--synthetic N``
makes an EvidenceGraph directly: N accounts, planted dense groups of 5-60 accounts (one shared
identifier per layer, lockstep timing, templates) and sparse random links between everyone else
(shared residential exits and user agents), with the column types graphbuild uses. It then runs
:func:`community.leiden.detect` and :func:`community.clusters.score` and prints wall time and peak
RSS (kernel high-water mark, reset before each step where the kernel allows it) per step.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common  # noqa: E402,F401  (puts the project root on sys.path)


def _rss_gib() -> float:
    """Current RSS in GiB (from /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_gib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _step(name: str, fn):
    _reset_peak()
    base = _rss_gib()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    peak = _peak_gib()
    print(f"  {name:<22} {dt:8.1f} s   RSS before {base:5.2f} GiB  peak {peak:5.2f} GiB  (+{peak - base:4.2f})",
          flush=True)
    return out


def evidence_from_world(folder: Path, cache: Path):
    """The EvidenceGraph of a demo world, pickled under ``cache`` on first use."""
    path = cache / f"evidence-{folder.name}.pkl"
    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    from graphbuild.bundle import load_bundle
    from graphbuild.graph import build_evidence

    b = load_bundle(folder)
    try:
        ev = build_evidence(b)
    finally:
        b.close()
    cache.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(ev, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return ev


def synthetic_evidence(n: int, *, seed: int = 0, group_share: float = 0.3, random_degree: float = 8.0):
    """An EvidenceGraph of ``n`` accounts with planted groups and sparse random links.

    ``group_share`` of the accounts sit in dense groups of 5-60 members (every pair linked on
    network, payment, prompt and timing, so ~20-40M link rows at 1M accounts); the others get
    ``random_degree`` random network links on average. Columns have graphbuild's types: ids are
    strings, layer/kind categoricals, timestamps datetime64.
    """
    from graphbuild.config import EvidenceConfig
    from graphbuild.graph import EvidenceGraph

    rng = np.random.default_rng(seed)
    accounts = np.array([f"acct-{i:07d}" for i in range(n)], dtype=object)
    perm = rng.permutation(n)
    n_grouped = int(n * group_share)
    sizes = []
    left = n_grouped
    while left > 0:
        s = int(min(left, rng.integers(5, 61)))
        sizes.append(s)
        left -= s
    sizes = np.array(sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    gid = np.repeat(np.arange(len(sizes)), sizes)
    grouped = perm[:n_grouped]
    # all pairs inside each group, vectorised by group size
    pa, pb = [], []
    for s in np.unique(sizes):
        idx = np.nonzero(sizes == s)[0]
        i, j = np.triu_indices(s, 1)
        base = starts[idx][:, None]
        pa.append(grouped[(base + i).ravel()])
        pb.append(grouped[(base + j).ravel()])
    ga, gb = np.concatenate(pa), np.concatenate(pb)
    # random sparse links among everyone (residential exits, shared user agents)
    m = int(n * random_degree / 2)
    ra, rb = rng.integers(0, n, m), rng.integers(0, n, m)
    frames = []
    t0 = np.datetime64("2026-10-01T00:00:00", "s")
    for layer, a, b, wlo, whi in [("network", ga, gb, 0.3, 0.9), ("payment", ga, gb, 0.4, 0.9),
                                  ("prompt", ga, gb, 0.2, 0.8), ("timing", ga, gb, 0.1, 0.5),
                                  ("network", ra, rb, 0.05, 0.4)]:
        keep = rng.random(len(a)) < (0.9 if layer != "network" or a is ga else 1.0)
        a, b = a[keep], b[keep]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        ok = lo != hi
        frames.append(pd.DataFrame({"a": lo[ok], "b": hi[ok], "layer": layer,
                                    "weight": rng.uniform(wlo, whi, ok.sum())}))
    links = pd.concat(frames, ignore_index=True)
    links = links.drop_duplicates(["a", "b", "layer"]).sort_values(["layer", "a", "b"], ignore_index=True)
    links["layer"] = links["layer"].astype("category")
    links["account_a"] = accounts[links["a"].to_numpy()]
    links["account_b"] = accounts[links["b"].to_numpy()]
    links["evidence_count"] = rng.integers(1, 20, len(links))
    first = t0 + rng.integers(0, 20 * 86400, len(links)).astype("timedelta64[s]")
    links["first_seen"] = first
    links["last_seen"] = first + rng.integers(0, 8 * 86400, len(links)).astype("timedelta64[s]")
    links = links[["a", "b", "account_a", "account_b", "layer", "weight", "evidence_count", "first_seen",
                   "last_seen"]]

    # uses: every grouped account uses its group's ip, prefix, instrument and 2 templates; everyone
    # has its own ip and template, and a few shared residential exits / user agents
    rows = []
    g_acc = grouped
    for kind, per in [("ip", 1), ("prefix", 1), ("instrument", 1), ("template", 2), ("user_agent", 1)]:
        for r in range(per):
            ident = np.array([f"{kind[0]}g{g}-{r}" for g in range(len(sizes))], dtype=object)[gid]
            rows.append(pd.DataFrame({"acc": g_acc, "kind": kind, "identifier": ident}))
    for kind in ("ip", "template", "prefix"):
        rows.append(pd.DataFrame({"acc": np.arange(n), "kind": kind,
                                  "identifier": np.array([f"{kind[0]}s{i}" for i in range(n)], dtype=object)}))
    shared = rng.integers(0, n // 4 + 1, n)
    rows.append(pd.DataFrame({"acc": np.arange(n), "kind": "user_agent",
                              "identifier": np.array([f"ua{i}" for i in shared], dtype=object)}))
    uses = pd.concat(rows, ignore_index=True).sort_values(["acc", "kind", "identifier"], ignore_index=True)
    k = len(uses)
    uses.insert(0, "account_id", accounts[uses.pop("acc").to_numpy()])
    uses["kind"] = uses["kind"].astype("category")
    uses["n_events"] = rng.integers(1, 200, k)
    f = t0 + rng.integers(0, 20 * 86400, k).astype("timedelta64[s]")
    uses["first_seen"] = f
    uses["last_seen"] = f + rng.integers(0, 8 * 86400, k).astype("timedelta64[s]")
    cnt = uses.groupby(["kind", "identifier"], observed=True).size().rename("n_accounts").reset_index()
    cnt = cnt[cnt["n_accounts"] >= 2].reset_index(drop=True)
    cnt["layer"] = cnt["kind"].map({"ip": "network", "prefix": "network", "user_agent": "network",
                                    "instrument": "payment", "template": "prompt"}).astype(str)
    cnt["pair_weight"] = 1.0 / np.log1p(cnt["n_accounts"].to_numpy() + 1.0)
    cnt["is_hub"] = cnt["n_accounts"] > 200
    identifiers = cnt[["kind", "identifier", "layer", "n_accounts", "pair_weight", "is_hub"]]
    tids = np.unique(uses.loc[uses["kind"] == "template", "identifier"].to_numpy().astype(str))
    templates = pd.DataFrame({"template_id": tids, "skeleton": [f"Solve step by step: <{t}>" for t in tids],
                              "n_accounts": 1, "n_prompts": 1, "is_hub": False,
                              "examples": [[f"example of {t}"] for t in tids]})
    grp = np.zeros(n, bool)
    grp[grouped] = True
    created = t0 + rng.integers(0, 20 * 86400, n).astype("timedelta64[s]")
    created[grouped] = t0 + (gid * 3600 + rng.integers(0, 36 * 3600, n_grouped)).astype("timedelta64[s]")
    features = pd.DataFrame({
        "account_id": accounts, "created_at": created,
        "hours_to_first_use": np.where(grp, rng.uniform(0, 12, n), rng.uniform(0, 400, n)),
        "disposable_mail": grp & (rng.random(n) < 0.7), "free_mail": rng.random(n) < 0.5,
        "org_declared": rng.random(n) < 0.1, "org_id": None,
        "prepaid_share": np.where(grp, rng.uniform(0.5, 1, n), 0.0) * (rng.random(n) < 0.8),
        "n_instruments": rng.integers(0, 3, n),
        "ip_rotation": np.where(grp, rng.uniform(0.3, 0.9, n), rng.uniform(0, 0.2, n)),
        "n_requests": rng.integers(1, 400, n),
        "reasoning_share": np.where(grp, rng.uniform(0.4, 1, n), rng.uniform(0, 0.3, n)),
        "template_share": np.where(grp, rng.uniform(0.4, 1, n), rng.uniform(0, 0.3, n)),
        "jailbreak_share": rng.uniform(0, 0.05, n),
        "hours_entropy": np.where(grp, rng.uniform(0.85, 1, n), rng.uniform(0.5, 0.85, n)),
        "night_share": rng.uniform(0, 0.2, n),
    })
    hours = rng.integers(0, 20, (n, 24)).astype(float)
    return EvidenceGraph(config=EvidenceConfig(), accounts=accounts, links=links, uses=uses,
                         identifiers=identifiers, templates=templates, features=features,
                         timing_window_seconds=60, hours=hours)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--world", type=Path, help="a demo-world folder (Parquet)")
    src.add_argument("--synthetic", type=int, metavar="N", help="a synthetic EvidenceGraph of N accounts")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/community"), help="where EvidenceGraphs are pickled")
    ap.add_argument("--seed", type=int, default=0, help="Leiden seed")
    ap.add_argument("--stability-runs", type=int, default=None, help="override CommunityConfig.stability_runs")
    ap.add_argument("--save", type=Path, help="pickle (membership, stability, clusters, accounts) here")
    args = ap.parse_args(argv)

    from community.clusters import score
    from community.leiden import CommunityConfig, detect

    t = time.perf_counter()
    if args.world:
        ev = evidence_from_world(args.world, args.cache)
        name = args.world.name
    else:
        path = args.cache / f"synthetic-{args.synthetic}.pkl"
        if path.exists():
            with open(path, "rb") as fh:
                ev = pickle.load(fh)
        else:
            ev = synthetic_evidence(args.synthetic)
            args.cache.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                pickle.dump(ev, fh, protocol=pickle.HIGHEST_PROTOCOL)
        name = f"synthetic-{args.synthetic}"
    print(f"{name}: {ev.n_accounts} accounts, {len(ev.links)} link rows, {len(ev.uses)} use rows "
          f"(loaded in {time.perf_counter() - t:.1f} s, RSS {_rss_gib():.2f} GiB)", flush=True)
    cfg = CommunityConfig() if args.stability_runs is None else CommunityConfig(stability_runs=args.stability_runs)
    t0 = time.perf_counter()
    part = _step("detect", lambda: detect(ev, cfg, seed=args.seed))
    rep = _step("score", lambda: score(ev, part))
    total = time.perf_counter() - t0
    print(f"  {'community stage':<22} {total:8.1f} s   clusters {part.n_clusters}, flagged "
          f"{int(rep.clusters['flagged'].sum())}, clustered accounts {int((part.membership >= 0).sum())}", flush=True)
    if args.save:
        with open(args.save, "wb") as fh:
            pickle.dump({"membership": part.membership, "stability": part.stability, "clusters": rep.clusters,
                         "accounts": rep.accounts}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    os.nice(5)
    raise SystemExit(main())
