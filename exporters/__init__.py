"""exporters — results tables, Neo4j, static explorer site, evidence packages and periodic reports.

Every exporter reads a run folder (docs/run-folder.md) through :class:`RunFolder`, so it can run
long after, and apart from, the run that wrote it. Heavy dependencies (the neo4j driver) are
imported only by the exporter that needs them.
"""

from exporters.evidence import build_package, build_packages
from exporters.figures import LAYER_COLORS, cluster_graph_png, timeline_png
from exporters.report import write_report
from exporters.results import safe_cell, write_results
from exporters.runfolder import RunFolder
from exporters.verify import VerifyResult, verify_package

__all__ = ["RunFolder", "write_results", "safe_cell", "build_package", "build_packages", "verify_package",
           "VerifyResult", "write_report", "export_neo4j", "write_site", "timeline_png", "cluster_graph_png",
           "LAYER_COLORS"]


def export_neo4j(run_dir, uri, auth=None, **kwargs):
    """Export a run folder to Neo4j (see :func:`exporters.neo4j.export.export_run`); needs ``neo4j``."""
    from exporters.neo4j.export import export_run

    return export_run(run_dir, uri, auth, **kwargs)


def write_site(run_dir, out_dir=None, **kwargs):
    """Write the static explorer (see :mod:`exporters.site`)."""
    from exporters.site import write_site as _write_site

    return _write_site(run_dir, out_dir, **kwargs)
