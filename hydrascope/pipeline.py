"""The pipeline: bundle → evidence graph → clusters → scored report → run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from community.clusters import ClusterReport, score
from community.leiden import Partition, detect
from exporters.results import write_results
from graphbuild.bundle import Bundle, load_bundle
from graphbuild.graph import EvidenceGraph, build_evidence

from hydrascope import __version__
from hydrascope.config import RunConfig

__all__ = ["RunResult", "run", "analyse"]


@dataclass(frozen=True)
class RunResult:
    """What :func:`run` made, with the config, seed and version that made it."""

    run_dir: Path | None
    config: RunConfig
    version: str
    evidence: EvidenceGraph
    partition: Partition
    report: ClusterReport
    counts: dict
    lineage: object = None


def analyse(bundle: Bundle, config: RunConfig, *, progress: bool = False,
            engine: str = "duckdb") -> tuple[EvidenceGraph, Partition, ClusterReport]:
    """Detection on a loaded bundle, without writing anything (``engine``: see :func:`run`)."""
    evidence = build_evidence(bundle, config.evidence, progress=progress, version=__version__, engine=engine)
    partition = detect(evidence, config.community, seed=config.seed, version=__version__)
    return evidence, partition, score(evidence, partition, config.scoring)


def run(bundle_dir, out_dir=None, config: RunConfig | None = None, *, previous=None, progress: bool = False,
        now=None, on_stage: Callable[[str], None] | None = None, engine: str = "duckdb",
        evidence_stats: dict | None = None) -> RunResult:
    """Run detection on an input bundle and write the run folder.

    Parameters
    ----------
    bundle_dir : path-like
        A folder in the shape of ../shared/SCHEMA.md.
    out_dir : path-like, optional
        The run folder to write; nothing is written when None.
    config : RunConfig, optional
    previous : path-like, optional
        An earlier run folder: clusters inherit its ids and get a lineage status.
    progress : bool
        Show progress bars.
    now : datetime, optional
        The instant after which timestamps count as "in the future" (default: the wall clock).
    on_stage : callable, optional
        Called with the name of each stage as it starts.
    engine : {"duckdb", "spark"}
        Engine of the graph-building stage (graphbuild.engine); the results are the same.
    evidence_stats : dict, optional
        Filled with the evidence stage's own sub-stage times and peak memory (benchmarks).

    Examples
    --------
    >>> from hydrascope.demo.world import generate_world          # doctest: +SKIP
    >>> generate_world("world", n_accounts=1000)                   # doctest: +SKIP
    >>> result = run("world", "runs/r1")                           # doctest: +SKIP
    >>> result.report.clusters.query("flagged")[["cluster_id", "n_accounts"]]   # doctest: +SKIP
    """
    config = config or RunConfig()
    say = on_stage or (lambda s: None)
    say("load")
    bundle = load_bundle(bundle_dir, since=config.since, until=config.until, now=now, progress=progress,
                         memory_limit=config.memory_limit, threads=config.threads)
    try:
        say("evidence")
        evidence = build_evidence(bundle, config.evidence, progress=progress, version=__version__, engine=engine,
                                  stats=evidence_stats)
        say("communities")
        partition = detect(evidence, config.community, seed=config.seed, version=__version__)
        say("scoring")
        report = score(evidence, partition, config.scoring)
        lineage = None
        if previous is not None:
            from community.lineage import lineage_from_run

            current = {r.cluster_id: r.members for r in report.clusters.itertuples()}
            lineage = lineage_from_run(previous, current)
            report = report.with_ids(lineage.ids)
        run_dir = None
        counts = {"accounts": evidence.n_accounts, "links": int(len(evidence.links)),
                  "clusters": int(len(report.clusters)), "flagged_clusters": int(report.clusters["flagged"].sum()),
                  "flagged_accounts": int(report.accounts["flagged"].sum()),
                  "timing_window_seconds": evidence.timing_window_seconds}
        if out_dir is not None:
            say("write")
            meta = {
                "version": __version__, "seed": config.seed, "config": config.to_dict(),
                "bundle": str(Path(bundle_dir)),
                "inputs": {t: {"file": p.name, "sha256": bundle.sha256[t], **{k: int(v) for k, v in bundle.counts[t].items()}}
                           for t, p in sorted(bundle.files.items())},
                "window": {"since": config.since, "until": config.until},
                "counts": counts, "previous_run": str(previous) if previous is not None else None,
                # the id watermark: the next run never reuses an id, even one that dissolved
                "lineage": ({"next_id": lineage.next_id, "params": lineage.params} if lineage is not None
                            else {"next_id": len(report.clusters) + 1, "params": {}}),
            }
            run_dir = write_results(out_dir, evidence, report, meta=meta, rejects=bundle.rejects, con=bundle.con)
            if lineage is not None:
                lineage.to_csv(run_dir / "lineage.csv")
            if config.site:
                say("site")
                _write_site(run_dir, progress)
        return RunResult(run_dir=run_dir, config=config, version=__version__, evidence=evidence,
                         partition=partition, report=report, counts=counts, lineage=lineage)
    finally:
        bundle.close()


def _write_site(run_dir: Path, progress: bool) -> None:
    from exporters.site import write_site

    write_site(run_dir, progress=progress)
