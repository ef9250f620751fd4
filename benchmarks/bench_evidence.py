"""Benchmark evidence packages on the demo world: prints packages per second and package sizes."""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporters.evidence import build_packages  # noqa: E402
from exporters.runfolder import RunFolder  # noqa: E402
from exporters.verify import verify_package  # noqa: E402


def make_demo_run(work: Path, n_accounts: int, seed: int) -> Path:
    """Generate the demo world and run detection on it (no site)."""
    from hydrascope.config import RunConfig
    from hydrascope.demo.world import generate_world
    from hydrascope.pipeline import run

    generate_world(work / "world", n_accounts=n_accounts, seed=seed)
    config = RunConfig()
    try:
        import dataclasses

        config = dataclasses.replace(config, seed=seed, site=False)
    except (TypeError, ValueError):
        pass
    t0 = time.perf_counter()
    result = run(work / "world", work / "run", config)
    print(f"demo world: {n_accounts} accounts, pipeline {time.perf_counter() - t0:.1f} s")
    return result.run_dir


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", type=Path, help="an existing run folder (default: generate the demo world)")
    ap.add_argument("--accounts", type=int, default=3000, help="demo world size (default 3000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=2, help="build the packages this many times (default 2)")
    ap.add_argument("--all", action="store_true", help="package every cluster, not only the flagged ones")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-evidence-"))
    try:
        run_dir = args.run or make_demo_run(work, args.accounts, args.seed)
        rf = RunFolder(run_dir)
        ids = rf.clusters["cluster_id"].astype(str).tolist() if args.all else None
        key = b"benchmark-indicator-key-0123456789"
        for mode, kwargs in (("plain", {}), ("redacted+indicators", {"redact": True, "indicator_key": key})):
            times, digests = [], []
            for i in range(args.repeat):
                out = work / f"packages-{mode}-{i}"
                t0 = time.perf_counter()
                paths = build_packages(run_dir, out, cluster_ids=ids, flagged=not args.all, **kwargs)
                times.append(time.perf_counter() - t0)
                digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in paths])
            n = len(paths)
            best = min(times)
            sizes = sorted(p.stat().st_size for p in paths)
            t0 = time.perf_counter()
            ok = all(verify_package(p).ok for p in paths)
            t_verify = time.perf_counter() - t0
            print(f"[{mode}] packages: {n}  build best of {args.repeat}: {best:.2f} s  "
                  f"-> {n / best if best else 0:.1f} packages/s  ({best / max(n, 1) * 1000:.0f} ms/package)")
            if sizes:
                print(f"[{mode}] package size: min {sizes[0] / 1024:.1f} KiB  median {sizes[len(sizes) // 2] / 1024:.1f} KiB"
                      f"  max {sizes[-1] / 1024:.1f} KiB  total {sum(sizes) / 1024 / 1024:.2f} MiB")
            print(f"[{mode}] verify: {n / t_verify if t_verify else 0:.1f} packages/s, all ok: {ok}; "
                  f"identical bytes across repeats: {all(d == digests[0] for d in digests)}")
            for p in paths[:10]:
                print(f"    {p.name:32s} {p.stat().st_size / 1024:8.1f} KiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
