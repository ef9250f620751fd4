"""graphbuild — read and validate an input bundle and build the multi-layer account evidence graph.

Examples
--------
>>> from graphbuild import load_bundle, build_evidence          # doctest: +SKIP
>>> bundle = load_bundle("worlds/demo")                         # doctest: +SKIP
>>> evidence = build_evidence(bundle)                           # doctest: +SKIP
>>> evidence.links.groupby("layer").size()                      # doctest: +SKIP
"""

from graphbuild.bundle import Bundle, load_bundle
from graphbuild.config import EvidenceConfig
from graphbuild.errors import BundleError, ConfigError, ExportError, HydrascopeError, RunFolderError
from graphbuild.graph import EvidenceGraph, build_evidence

__all__ = ["Bundle", "load_bundle", "EvidenceConfig", "EvidenceGraph", "build_evidence",
           "HydrascopeError", "BundleError", "ConfigError", "RunFolderError", "ExportError"]
