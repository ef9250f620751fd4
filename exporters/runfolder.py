"""Read a run folder written by `hydrascope run` (see docs/run-folder.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from graphbuild.errors import RunFolderError
from graphbuild.schema import RunFiles

__all__ = ["RunFolder"]


@dataclass(frozen=True)
class RunFolder:
    """A run folder on disk; each table is read once, on first use.

    Parameters
    ----------
    path : path-like
        The folder `hydrascope run` wrote.

    Examples
    --------
    >>> run = RunFolder("runs/demo")            # doctest: +SKIP
    >>> run.clusters.query("flagged").head()    # doctest: +SKIP
    """

    path: Path
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        for name in (RunFiles.ACCOUNTS, RunFiles.CLUSTERS, RunFiles.RUN):
            if not (self.path / name).is_file():
                raise RunFolderError(f"{self.path} is not a hydrascope run folder: {name} is missing")

    def file(self, name: str) -> Path:
        """Path of a run-folder file; raises RunFolderError when it does not exist."""
        p = self.path / name
        if not p.exists():
            raise RunFolderError(f"{p} is missing from the run folder")
        return p

    @cached_property
    def meta(self) -> dict:
        """run.json: version, seed, config, inputs with SHA-256, counts, window."""
        return json.loads(self.file(RunFiles.RUN).read_text(encoding="utf-8"))

    @cached_property
    def accounts(self) -> pd.DataFrame:
        """accounts.csv (cluster_id as string, empty → NA)."""
        return pd.read_csv(self.file(RunFiles.ACCOUNTS), dtype={"account_id": str, "cluster_id": str},
                           keep_default_na=False, na_values={"cluster_id": [""]})

    @cached_property
    def clusters(self) -> pd.DataFrame:
        """clusters.csv."""
        return pd.read_csv(self.file(RunFiles.CLUSTERS), dtype={"cluster_id": str, "reasons": str},
                           keep_default_na=False)

    @cached_property
    def cluster_details(self) -> list[dict]:
        """clusters.json entries, in clusters.csv order."""
        return json.loads(self.file(RunFiles.CLUSTER_DETAILS).read_text(encoding="utf-8"))["clusters"]

    def cluster(self, cluster_id: str) -> dict:
        """One clusters.json entry; raises RunFolderError naming the id when absent."""
        for c in self.cluster_details:
            if c["cluster_id"] == cluster_id:
                return c
        raise RunFolderError(f"cluster {cluster_id!r} is not in {self.path}")

    def table(self, name: str) -> pd.DataFrame:
        """Any Parquet table of the run folder by file name (e.g. RunFiles.LINKS)."""
        if name not in self._cache:
            self._cache[name] = pd.read_parquet(self.file(name))
        return self._cache[name]

    @property
    def links(self) -> pd.DataFrame:
        return self.table(RunFiles.LINKS)

    @property
    def account_identifiers(self) -> pd.DataFrame:
        return self.table(RunFiles.ACCOUNT_IDENTIFIERS)

    @property
    def identifiers(self) -> pd.DataFrame:
        return self.table(RunFiles.IDENTIFIERS)

    @property
    def templates(self) -> pd.DataFrame:
        return self.table(RunFiles.TEMPLATES)

    @property
    def features(self) -> pd.DataFrame:
        return self.table(RunFiles.FEATURES)

    @property
    def activity(self) -> pd.DataFrame:
        return self.table(RunFiles.CLUSTER_ACTIVITY)

    @property
    def events(self) -> pd.DataFrame:
        """Raw event rows of accounts in flagged clusters (with cluster_id)."""
        return self.table(RunFiles.CLUSTER_EVENTS)
