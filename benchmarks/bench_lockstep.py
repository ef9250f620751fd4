"""Benchmark the lockstep pair finder (graphbuild.lockstep): exact and scale mode, time, peak RSS, fleet recall.

Usage::

    .venv/bin/python benchmarks/bench_lockstep.py --sizes 10000 100000 250000 1000000 --work /tmp/bench-lockstep

Synthetic (account, window) rows are generated once per size into ``--work`` (``.npz``) and reused:
background accounts with log-normal activity (``--rows-per-account`` windows on average) spread
over ``--days`` days of 5-second windows with a diurnal profile peaking at a per-account hour,
plus planted load-balanced fleets: each fleet's dispatcher sends 24 bursts a day, each burst to
every member with probability ``p`` (0.1 … 0.5) within 4 seconds (so one or two windows), on top
of a little background activity of their own.

Every measurement runs in a fresh child process; the peak RSS printed is the process's peak during
the call (VmHWM reset just before it), which includes what was resident before the call (printed
too: the input arrays, ``acc`` int32 and ``win``/``first``/``last`` int64, and the libraries). Per size and mode it prints wall time, peak RSS, the mode's
counters and, in scale mode, the recall of planted fleet pairs: found without any caller
candidates, over all fleet pairs that pass the lockstep test (measured by a second call given
every fleet pair as a candidate), by Jaccard band, plus how many fleet members got at least one
fleet link and into how many connected pieces each fleet falls. Exact mode is run while its
pair expansion stays under ``--exact-max`` pair incidences (beyond that it does not fit).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WINDOW = 5
FLEET_P = (0.1, 0.2, 0.3, 0.5)
FLEET_SIZES = (20, 50, 100, 200, 300)


def synthetic(path: Path, n_accounts: int, rows_per_account: float, days: int, seed: int) -> None:
    """Write a synthetic lockstep input of ``n_accounts`` accounts to ``path`` (npz)."""
    rng = np.random.default_rng(seed)
    n_win_total = days * 86400 // WINDOW
    # diurnal shape shared by everyone, shifted to each account's peak hour
    shape = 1.0 + 0.9 * np.cos(2 * np.pi * (np.arange(24) - 0) / 24)
    shape /= shape.sum()
    n_fleets = max(4, n_accounts // 25_000)
    fsize = np.array([FLEET_SIZES[i % len(FLEET_SIZES)] for i in range(n_fleets)])
    fp = np.array([FLEET_P[i % len(FLEET_P)] for i in range(n_fleets)])  # 4 and 5 coprime: every size meets every p
    fleet = np.full(n_accounts, -1, dtype=np.int32)
    members = rng.choice(n_accounts, size=int(fsize.sum()), replace=False)
    fleet[members] = np.repeat(np.arange(n_fleets), fsize).astype(np.int32)
    lam = rng.lognormal(0.0, 1.0, size=n_accounts)
    lam *= rows_per_account / lam.mean()
    lam[fleet >= 0] *= 0.2
    peak = rng.integers(0, 24, size=n_accounts)
    parts = []
    step = 100_000
    for c in range(0, n_accounts, step):
        cnt = rng.poisson(lam[c:c + step])
        a = np.repeat(np.arange(c, c + len(cnt), dtype=np.int64), cnt)
        hour = (peak[a] + rng.choice(24, size=len(a), p=shape)) % 24
        t = rng.integers(0, days, size=len(a)) * 86400 + hour * 3600 + rng.integers(0, 3600, size=len(a))
        parts.append((a, t))
    for f in range(n_fleets):
        idx = np.flatnonzero(fleet == f)
        t_d = rng.integers(0, days * 86400 - 10, size=24 * days)
        take = rng.random((len(t_d), len(idx))) < fp[f]
        di, mi = np.nonzero(take)
        parts.append((idx[mi].astype(np.int64), t_d[di] + rng.integers(0, 4, size=len(di))))
    a = np.concatenate([p[0] for p in parts])
    t = np.concatenate([p[1] for p in parts]) + 1_767_225_600  # 2026-01-01
    del parts
    w = t // WINDOW
    key = a * (w.max() + 1) + w
    order = np.argsort(key, kind="stable")
    key = key[order]
    first_pos = np.r_[True, key[1:] != key[:-1]]
    last_pos = np.r_[key[1:] != key[:-1], True]
    ts = t[order]
    acc = a[order][first_pos].astype(np.int32)
    win = w[order][first_pos]
    first = ts[first_pos]
    last = ts[last_pos]
    # shuffle rows: the caller's rows come in no particular order
    perm = rng.permutation(len(acc))
    np.savez(path, acc=acc[perm], win=win[perm], first=first[perm], last=last[perm], fleet=fleet,
             fleet_p=fp, n_accounts=n_accounts, days=days, windows=n_win_total)


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status in MB (VmRSS: now, VmHWM: peak since the last reset)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux), so the next peak is that of the measured call alone."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def child(path: Path, mode: str, memory_limit_gb: float, lsh_bands: int) -> dict:
    """One measurement (run in a fresh process)."""
    from graphbuild.lockstep import lockstep_pairs

    if memory_limit_gb:
        lim = int(memory_limit_gb * 2**30)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            lim = min(lim, hard)
        resource.setrlimit(resource.RLIMIT_AS, (lim, hard))
    d = np.load(path)
    acc, win, first, last = d["acc"], d["win"], d["first"], d["last"]
    fleet = d["fleet"]
    n = int(d["n_accounts"])
    input_mb = sum(x.nbytes for x in (acc, win, first, last)) / 2**20
    base_mb = _status_mb("VmRSS")
    _reset_peak()
    info: dict = {}
    budget = 2**62 if mode == "exact" else 0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    out = lockstep_pairs(acc, win, first, last, n_accounts=n, window_seconds=WINDOW, pair_budget=budget, info=info,
                         lsh_bands=lsh_bands)
    sec = time.perf_counter() - t
    ru2 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime
    res = {"mode": mode, "rows": len(acc), "accounts": n, "seconds": round(sec, 2), "cpu_seconds": round(cpu, 2),
           "peak_rss_mb": round(_status_mb("VmHWM"), 0), "rss_before_mb": round(base_mb, 0),
           "input_mb": round(input_mb, 0), "info": info}
    a, b = out["a"].to_numpy(), out["b"].to_numpy()
    same = (fleet[a] >= 0) & (fleet[a] == fleet[b])
    res["fleet_pairs_found"] = int(same.sum())
    res["background_pairs"] = int((~same).sum())
    if mode == "scale":
        # truth: every fleet pair offered as a candidate, so all that pass the test are returned
        ca, cb = [], []
        for f in range(int(fleet.max()) + 1):
            idx = np.flatnonzero(fleet == f)
            iu, ju = np.triu_indices(len(idx), 1)
            ca.append(idx[iu])
            cb.append(idx[ju])
        truth = lockstep_pairs(acc, win, first, last, n_accounts=n, window_seconds=WINDOW, pair_budget=0,
                               candidates=(np.concatenate(ca), np.concatenate(cb)), lsh_bands=lsh_bands)
        ta, tb = truth["a"].to_numpy(), truth["b"].to_numpy()
        tsame = (fleet[ta] >= 0) & (fleet[ta] == fleet[tb])
        tkey = ta[tsame].astype(np.int64) * n + tb[tsame]
        found = np.isin(tkey, a[same].astype(np.int64) * n + b[same])
        jac = truth["raw"].to_numpy()[tsame]
        res["fleet_pairs_true"] = int(tsame.sum())
        res["recall"] = round(float(found.mean()), 4) if len(found) else None
        bands = [0, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 1.0]
        res["recall_by_jaccard"] = {
            f"{lo:.2f}-{hi:.2f}": [int(((jac > lo) & (jac <= hi)).sum()),
                                   round(float(found[(jac > lo) & (jac <= hi)].mean()), 3)]
            for lo, hi in zip(bands[:-1], bands[1:]) if ((jac > lo) & (jac <= hi)).any()}
        res["recall_by_p"] = {}
        fp = d["fleet_p"]
        for p in sorted(set(fp.tolist())):
            sel = fp[fleet[ta[tsame]]] == p
            res["recall_by_p"][str(p)] = [round(float(np.median(jac[sel])), 3) if sel.any() else None,
                                          round(float(found[sel].mean()), 3) if sel.any() else None]
        # fleet-level: members with a fleet link, connected pieces per fleet
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        fa, fb = a[same], b[same]
        g = coo_matrix((np.ones(len(fa)), (fa, fb)), shape=(n, n))
        _, lab = connected_components(g, directed=False)
        covered, pieces, members = 0, [], 0
        linked = np.zeros(n, dtype=bool)
        linked[fa] = True
        linked[fb] = True
        for f in range(int(fleet.max()) + 1):
            idx = np.flatnonzero(fleet == f)
            members += len(idx)
            covered += int(linked[idx].sum())
            pieces.append(len(np.unique(lab[idx[linked[idx]]])))
        res["fleet_members_linked"] = round(covered / members, 4)
        res["fleet_pieces_max"] = int(max(pieces))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 250_000, 1_000_000])
    ap.add_argument("--rows-per-account", type=float, default=50.0)
    ap.add_argument("--days", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench-lockstep"))
    ap.add_argument("--modes", nargs="+", default=["exact", "scale"])
    ap.add_argument("--exact-max", type=float, default=3e8, help="largest pair expansion to run exactly")
    ap.add_argument("--memory-limit-gb", type=float, default=12.0, help="address-space limit per child (0: none)")
    ap.add_argument("--lsh-bands", type=int, default=None, help="LSH bands (default graphbuild.lockstep.LSH_BANDS)")
    ap.add_argument("--child", nargs=2, metavar=("NPZ", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.lsh_bands is None:
        from graphbuild.lockstep import LSH_BANDS

        args.lsh_bands = LSH_BANDS
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1], args.memory_limit_gb, args.lsh_bands)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        path = args.work / f"lockstep-v2-{n}-r{args.rows_per_account:g}-d{args.days}-s{args.seed}.npz"
        if not path.exists():
            t = time.perf_counter()
            synthetic(path, n, args.rows_per_account, args.days, args.seed)
            print(f"# generated {path.name} in {time.perf_counter() - t:.0f} s", flush=True)
        with np.load(path) as d:
            win = d["win"]
            k = np.bincount(win - win.min())
            k = k[(k >= 2) & (k <= 500)].astype(np.int64)
            inc = int((k * (k - 1) // 2).sum())
            rows = len(win)
        print(f"## {n:,} accounts, {rows:,} (account, window) rows, {inc:,} pair incidences", flush=True)
        for mode in args.modes:
            if mode == "exact" and inc > args.exact_max:
                print(f"{mode:6s} skipped: {inc:,} pair incidences (> --exact-max {args.exact_max:,.0f}) "
                      f"would need ~{inc * 8 / 2**30:.0f} GB of pair keys", flush=True)
                continue
            cmd = [sys.executable, __file__, "--child", str(path), mode, "--memory-limit-gb", str(args.memory_limit_gb),
                   "--lsh-bands", str(args.lsh_bands)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                print(f"{mode:6s} FAILED: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}",
                      flush=True)
                continue
            res = json.loads(r.stdout.strip().splitlines()[-1])
            info = res["info"]
            line = (f"{mode:6s} {res['seconds']:8.1f} s wall ({res['cpu_seconds']:.1f} s CPU)  peak RSS {res['peak_rss_mb']:7.0f} MB "
                    f"(RSS before the call {res['rss_before_mb']:.0f} MB, of which input arrays {res['input_mb']:.0f} MB)  "
                    f"candidates {info['candidates']:,} (LSH {info['lsh_candidates']:,})  pairs {info['pairs']:,} "
                    f"[fleet {res['fleet_pairs_found']:,}, other {res['background_pairs']:,}]")
            print(line, flush=True)
            if mode == "scale":
                print(f"       fleet-pair recall {res['recall']} of {res['fleet_pairs_true']:,}; by Jaccard "
                      f"{res['recall_by_jaccard']}; by burst share p [median J, recall] {res['recall_by_p']}; "
                      f"members linked {res['fleet_members_linked']}, most pieces per fleet {res['fleet_pieces_max']}",
                      flush=True)


if __name__ == "__main__":
    main()
