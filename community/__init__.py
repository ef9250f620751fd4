"""community — Leiden communities over the evidence graph, cluster scoring, explanations, lineage.

Examples
--------
>>> from community import detect, score                         # doctest: +SKIP
>>> partition = detect(evidence, seed=0)                        # doctest: +SKIP
>>> report = score(evidence, partition)                         # doctest: +SKIP
>>> report.clusters.query("flagged")[["cluster_id", "n_accounts", "reasons"]]   # doctest: +SKIP
"""

from community.clusters import ClusterReport, cluster_layer_shares, score, template_concentration
from community.evaluation import evaluate, layer_purity
from community.explain import evidence_summaries, shared_evidence
from community.leiden import CommunityConfig, Partition, combined_links, detect, trim_members
from community.lineage import Lineage, lineage_from_run, match_clusters
from community.scoring import ScoringConfig, account_groups, cluster_signals_many, segment_medians, segment_sums

__all__ = ["CommunityConfig", "Partition", "detect", "ScoringConfig", "ClusterReport", "score",
           "shared_evidence", "evaluate", "layer_purity", "Lineage", "match_clusters", "lineage_from_run",
           "trim_members", "template_concentration", "cluster_layer_shares", "account_groups", "combined_links",
           "evidence_summaries", "cluster_signals_many", "segment_sums", "segment_medians"]
