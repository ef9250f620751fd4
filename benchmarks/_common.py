"""Shared by the benchmark scripts: demo worlds generated once per (size, seed) and kept for re-runs."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def world(work: Path, n: int, seed: int) -> Path:
    """A Parquet demo world of ``n`` accounts under ``work``, generated on first use."""
    from hydrascope.demo.world import generate_world

    folder = Path(work) / f"world-{n}-s{seed}"
    if not (folder / "world.json").exists():
        generate_world(folder, n_accounts=n, seed=seed, fmt="parquet", progress=False)
    return folder
