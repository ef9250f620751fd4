"""community — Leiden communities over the evidence graph, cluster scoring and explanations."""
