"""exporters — results tables, Neo4j, static site, evidence packages and periodic reports."""
