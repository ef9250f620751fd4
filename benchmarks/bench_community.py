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
    t, cpu = time.perf_counter(), time.process_time()
    out = fn()
    dt, dcpu = time.perf_counter() - t, time.process_time() - cpu
    peak = _peak_gib()
    print(f"  {name:<16} {dt:7.1f} s wall {dcpu:7.1f} s cpu   RSS before {base:5.2f} GiB  peak {peak:5.2f} GiB "
          f"(+{peak - base:4.2f})", flush=True)
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


def _cat(codes: np.ndarray, names) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes), categories=pd.Index(names, dtype="str"))


def synthetic_evidence(n: int, *, seed: int = 0, group_share: float = 0.3, random_degree: float = 8.0):
    """An EvidenceGraph of ``n`` accounts with planted groups and sparse random links.

    ``group_share`` of the accounts sit in dense groups of 5-60 members (every pair linked on
    network, payment, prompt and timing: ~20M link rows at 1M accounts); everyone gets
    ``random_degree`` random network links on average (shared residential exits), which ties
    nearly all accounts into one giant component, as in the demo worlds. String columns are
    categoricals (one of the layouts graphbuild may use); timestamps are datetime64.
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
    pa, pb = [], []
    for s in np.unique(sizes):
        i, j = np.triu_indices(s, 1)
        base = starts[sizes == s][:, None]
        pa.append(grouped[(base + i).ravel()])
        pb.append(grouped[(base + j).ravel()])
    ga, gb = np.concatenate(pa), np.concatenate(pb)
    m = int(n * random_degree / 2)
    ra, rb = rng.integers(0, n, m), rng.integers(0, n, m)
    frames = []
    layers = ["network", "payment", "prompt", "timing"]
    for li, a, b, wlo, whi, keep_p in [(0, ga, gb, 0.3, 0.9, 0.9), (1, ga, gb, 0.4, 0.9, 0.9),
                                       (2, ga, gb, 0.2, 0.8, 0.9), (3, ga, gb, 0.1, 0.5, 0.9),
                                       (0, ra, rb, 0.05, 0.4, 1.0)]:
        keep = rng.random(len(a)) < keep_p
        lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
        ok = lo != hi
        frames.append(pd.DataFrame({"a": lo[ok], "b": hi[ok], "layer": np.int8(li),
                                    "weight": rng.uniform(wlo, whi, int(ok.sum()))}))
    links = pd.concat(frames, ignore_index=True)
    del frames, pa, pb, ga, gb, ra, rb
    links = links.drop_duplicates(["a", "b", "layer"]).sort_values(["layer", "a", "b"], ignore_index=True)
    k = len(links)
    t0 = np.datetime64("2026-10-01T00:00:00", "us")
    first = t0 + rng.integers(0, 20 * 86400, k).astype("timedelta64[s]")
    links = pd.DataFrame({
        "a": links["a"].to_numpy(), "b": links["b"].to_numpy(),
        "account_a": _cat(links["a"].to_numpy(), accounts), "account_b": _cat(links["b"].to_numpy(), accounts),
        "layer": _cat(links["layer"].to_numpy(), layers), "weight": links["weight"].to_numpy(),
        "evidence_count": rng.integers(1, 20, k), "first_seen": first,
        "last_seen": first + rng.integers(0, 8 * 86400, k).astype("timedelta64[s]")})

    # uses: grouped accounts share their group's ip, prefix, instrument, 2 templates and user agent;
    # everyone has an own ip, template and prefix, and one of n/4 common user agents
    acc, kind, ident, names = [], [], [], []
    kinds = ["instrument", "ip", "prefix", "template", "user_agent"]
    n_names = 0
    for ki, kname, per in [(1, "ip", 1), (2, "prefix", 1), (0, "instrument", 1), (3, "template", 2),
                           (4, "user_agent", 1)]:
        for r in range(per):
            acc.append(grouped)
            kind.append(np.full(n_grouped, ki, np.int8))
            ident.append(n_names + gid)
            names.append(np.char.add(f"{kname}-g{r}-", np.arange(len(sizes)).astype(str)))
            n_names += len(sizes)
    for ki, kname in [(1, "ip"), (3, "template"), (2, "prefix")]:
        acc.append(np.arange(n))
        kind.append(np.full(n, ki, np.int8))
        ident.append(n_names + np.arange(n))
        names.append(np.char.add(f"{kname}-s", np.arange(n).astype(str)))
        n_names += n
    acc.append(np.arange(n))
    kind.append(np.full(n, 4, np.int8))
    ident.append(n_names + rng.integers(0, n // 4 + 1, n))
    names.append(np.char.add("ua", np.arange(n // 4 + 1).astype(str)))
    n_names += n // 4 + 1
    acc, kind, ident = np.concatenate(acc), np.concatenate(kind), np.concatenate(ident)
    names = np.concatenate(names).astype(object)
    o = np.lexsort((ident, kind, acc))
    acc, kind, ident = acc[o], kind[o], ident[o]
    k = len(acc)
    f = t0 + rng.integers(0, 20 * 86400, k).astype("timedelta64[s]")
    uses = pd.DataFrame({"account_id": _cat(acc, accounts), "kind": _cat(kind, kinds),
                         "identifier": _cat(ident, names), "n_events": rng.integers(1, 200, k), "first_seen": f,
                         "last_seen": f + rng.integers(0, 8 * 86400, k).astype("timedelta64[s]")})
    cnt = np.bincount(ident, minlength=len(names))
    kind_of = np.zeros(len(names), np.int8)
    kind_of[ident] = kind
    shared = np.nonzero(cnt >= 2)[0]
    layer_of = np.array(["payment", "network", "network", "prompt", "network"], dtype=object)
    identifiers = pd.DataFrame({"kind": _cat(kind_of[shared], kinds), "identifier": names[shared].astype(str),
                                "layer": layer_of[kind_of[shared]].astype(str), "n_accounts": cnt[shared],
                                "pair_weight": 1.0 / np.log1p(cnt[shared] + 1.0), "is_hub": cnt[shared] > 200})
    tids = names[np.nonzero(kind_of == 3)[0]]
    templates = pd.DataFrame({"template_id": tids.astype(str),
                              "skeleton": np.char.add("Solve step by step: ", tids.astype(str)),
                              "n_accounts": 1, "n_prompts": 1, "is_hub": False,
                              "examples": [["an example prompt"]] * len(tids)})
    grp = np.zeros(n, bool)
    grp[grouped] = True
    created = t0 + rng.integers(0, 20 * 86400, n).astype("timedelta64[s]")
    created[grouped] = t0 + (gid * 3600 + rng.integers(0, 36 * 3600, n_grouped)).astype("timedelta64[s]")
    features = pd.DataFrame({
        "account_id": pd.array(accounts, dtype="str"), "created_at": created,
        "hours_to_first_use": np.where(grp, rng.uniform(0, 12, n), rng.uniform(0, 400, n)),
        "disposable_mail": grp & (rng.random(n) < 0.7), "free_mail": rng.random(n) < 0.5,
        "org_declared": rng.random(n) < 0.1,
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
    ap.add_argument("--random-degree", type=float, default=8.0,
                    help="mean number of random links per account in the synthetic graph (default 8: one giant "
                         "component; below 1: many small components and ~10^5 clusters)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/community"), help="where EvidenceGraphs are pickled")
    ap.add_argument("--seed", type=int, default=0, help="Leiden seed")
    ap.add_argument("--stability-runs", type=int, default=None, help="override CommunityConfig.stability_runs")
    ap.add_argument("--lineage", action="store_true", help="also time lineage matching against a perturbed copy")
    ap.add_argument("--save", type=Path, help="pickle (membership, stability, clusters, accounts) here")
    args = ap.parse_args(argv)

    from community.clusters import score
    from community.leiden import CommunityConfig, detect

    t = time.perf_counter()
    if args.world:
        ev = evidence_from_world(args.world, args.cache)
        name = args.world.name
    else:
        tag = "" if args.random_degree == 8.0 else f"-d{args.random_degree:g}"
        path = args.cache / f"synthetic-{args.synthetic}{tag}.pkl"
        if path.exists():
            with open(path, "rb") as fh:
                ev = pickle.load(fh)
        else:
            ev = synthetic_evidence(args.synthetic, random_degree=args.random_degree)
            args.cache.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                pickle.dump(ev, fh, protocol=pickle.HIGHEST_PROTOCOL)
        name = f"synthetic-{args.synthetic}{tag}"
    print(f"{name}: {ev.n_accounts} accounts, {len(ev.links)} link rows, {len(ev.uses)} use rows "
          f"(loaded in {time.perf_counter() - t:.1f} s, RSS {_rss_gib():.2f} GiB)", flush=True)
    cfg = CommunityConfig() if args.stability_runs is None else CommunityConfig(stability_runs=args.stability_runs)
    t0 = time.perf_counter()
    part = _step("detect", lambda: detect(ev, cfg, seed=args.seed))
    rep = _step("score", lambda: score(ev, part))
    total = time.perf_counter() - t0
    print(f"  {'community stage':<16} {total:7.1f} s wall   clusters {part.n_clusters}, flagged "
          f"{int(rep.clusters['flagged'].sum())}, clustered accounts {int((part.membership >= 0).sum())}", flush=True)
    if args.lineage:
        from community.lineage import match_clusters

        current = {r.cluster_id: r.members for r in rep.clusters.itertuples()}
        # the previous run: the same clusters, every tenth one losing a fifth of its members
        previous = {cid: (m[: len(m) - len(m) // 5] if i % 10 == 0 else m)
                    for i, (cid, m) in enumerate(sorted(current.items()))}
        _step("lineage", lambda: match_clusters(previous, current))
    if args.save:
        with open(args.save, "wb") as fh:
            pickle.dump({"membership": part.membership, "stability": part.stability, "clusters": rep.clusters,
                         "accounts": rep.accounts}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    os.nice(5)
    raise SystemExit(main())
