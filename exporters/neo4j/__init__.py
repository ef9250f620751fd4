"""Neo4j exporter: graph model, batched idempotent export, admin-import CSVs and investigator queries."""

from exporters.neo4j.admin_import import AdminImport, write_admin_csv
from exporters.neo4j.export import ExportStats, connect, export_run, export_run_with_driver, prepare_run
from exporters.neo4j.model import ensure_schema, run_id_of, schema_statements
from exporters.neo4j.queries import QUERY_NAMES, get_query, load_queries, run_query

__all__ = [
    "ExportStats", "export_run", "export_run_with_driver", "prepare_run", "connect",
    "ensure_schema", "run_id_of", "schema_statements",
    "QUERY_NAMES", "get_query", "load_queries", "run_query", "write_admin_csv", "AdminImport",
]
