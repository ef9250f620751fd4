"""Shared fixtures: a small demo world and its run folder, made once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DEMO_ACCOUNTS = int(os.environ.get("HYDRASCOPE_TEST_ACCOUNTS", "1000"))


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory) -> Path:
    """A seeded demo input bundle (CSV) with planted campaigns, labels and hostile text."""
    from hydrascope.demo.world import generate_world

    out = tmp_path_factory.mktemp("demo") / "world"
    generate_world(out, n_accounts=DEMO_ACCOUNTS, seed=0)
    return out


@pytest.fixture(scope="session")
def demo_result(demo_world, tmp_path_factory):
    """The RunResult of `hydrascope run` on :func:`demo_world` (site included)."""
    from hydrascope.config import RunConfig
    from hydrascope.pipeline import run

    return run(demo_world, tmp_path_factory.mktemp("demo_run") / "run", RunConfig(seed=0))


@pytest.fixture(scope="session")
def demo_run(demo_result) -> Path:
    """Path of the run folder of :func:`demo_world`."""
    return demo_result.run_dir
