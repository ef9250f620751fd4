"""The Neo4j graph model of a hydrascope run: labels, keys, relationship types, constraints and indexes."""

from __future__ import annotations

from dataclasses import dataclass

from graphbuild.schema import NodeLabel, RelType

__all__ = [
    "NodeSpec", "RelSpec", "NODES", "RELATIONSHIPS", "IDENTIFIER_NODES", "USER_AGENT", "USED_USER_AGENT",
    "run_id_of", "schema_statements", "ensure_schema", "MODEL_VERSION",
]

#: bumped when the shape of the graph changes (stored on every :Run node as `model_version`)
MODEL_VERSION = 1

#: extra label and relationship for rare user agents (identifier kind `user_agent`); not in
#: graphbuild.schema because only the Neo4j model has a node for them
USER_AGENT = "UserAgent"
USED_USER_AGENT = "USED_USER_AGENT"


@dataclass(frozen=True)
class NodeSpec:
    """One node label: its unique key property and the other properties it carries.

    Parameters
    ----------
    label : str
        Node label (from :class:`graphbuild.schema.NodeLabel`).
    key : str
        Property that identifies the node; a uniqueness constraint is created on it.
    properties : tuple of str
        Other properties an export sets.
    indexes : tuple of str
        Extra properties with a range index.
    """

    label: str
    key: str
    properties: tuple[str, ...] = ()
    indexes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RelSpec:
    """One relationship type: start and end labels, the property that tells parallel ones apart, properties."""

    type: str
    start: str
    end: str
    discriminator: str | None = None
    properties: tuple[str, ...] = ()


_SEEN = ("n_events", "first_seen", "last_seen", "run_ids")

NODES: dict[str, NodeSpec] = {
    s.label: s for s in (
        NodeSpec(NodeLabel.ACCOUNT, "account_id", ("score", "flagged", "cluster_id", "run_id")),
        NodeSpec(NodeLabel.IP, "address", ("n_accounts", "is_hub")),
        NodeSpec(NodeLabel.PREFIX, "prefix", ("n_accounts", "is_hub")),
        NodeSpec(NodeLabel.INSTRUMENT, "instrument_id", ("type", "n_accounts", "is_hub")),
        NodeSpec(NodeLabel.TEMPLATE, "template_id", ("skeleton", "n_accounts", "n_prompts", "is_hub", "examples")),
        NodeSpec(USER_AGENT, "user_agent", ("n_accounts", "is_hub")),
        NodeSpec(NodeLabel.CLUSTER, "key",
                 ("cluster_id", "run_id", "n_accounts", "score", "flagged", "reasons", "stability", "status",
                  "first_seen", "last_seen", "signals_json", "layer_weight_json"),
                 indexes=("cluster_id", "flagged")),
        NodeSpec(NodeLabel.RUN, "run_id",
                 ("name", "version", "seed", "since", "until", "previous_run", "previous_run_id",
                  "n_accounts", "n_clusters", "n_flagged", "config_json", "counts_json", "model_version"),
                 indexes=("until",)),
    )
}

RELATIONSHIPS: dict[str, RelSpec] = {
    s.type: s for s in (
        RelSpec(RelType.USED_IP, NodeLabel.ACCOUNT, NodeLabel.IP, "kind", _SEEN),
        RelSpec(RelType.IN_PREFIX, NodeLabel.ACCOUNT, NodeLabel.PREFIX, None, _SEEN),
        RelSpec(RelType.PAID_WITH, NodeLabel.ACCOUNT, NodeLabel.INSTRUMENT, None, _SEEN),
        RelSpec(RelType.USED_TEMPLATE, NodeLabel.ACCOUNT, NodeLabel.TEMPLATE, None, _SEEN),
        RelSpec(USED_USER_AGENT, NodeLabel.ACCOUNT, USER_AGENT, None, _SEEN),
        RelSpec(RelType.MEMBER_OF, NodeLabel.ACCOUNT, NodeLabel.CLUSTER, None, ("score", "flagged")),
        RelSpec(RelType.IN_RUN, NodeLabel.CLUSTER, NodeLabel.RUN),
        RelSpec(RelType.LINKED, NodeLabel.ACCOUNT, NodeLabel.ACCOUNT, "layer",
                ("weight", "evidence_count", "first_seen", "last_seen", "run_ids")),
    )
}

#: account_identifiers.parquet `kind` -> (label, relationship type); other kinds (ip_window,
#: time_window, signup_window) are evidence windows, not things an investigator looks up
IDENTIFIER_NODES: dict[str, tuple[str, str]] = {
    "ip": (NodeLabel.IP, RelType.USED_IP),
    "signup_ip": (NodeLabel.IP, RelType.USED_IP),
    "prefix": (NodeLabel.PREFIX, RelType.IN_PREFIX),
    "instrument": (NodeLabel.INSTRUMENT, RelType.PAID_WITH),
    "template": (NodeLabel.TEMPLATE, RelType.USED_TEMPLATE),
    "user_agent": (USER_AGENT, USED_USER_AGENT),
}


def run_id_of(run_json: bytes) -> str:
    """The id of a run: ``r`` + the first 16 hex digits of the SHA-256 of its ``run.json`` bytes.

    ``run.json`` holds the version, seed, full configuration and the SHA-256 of every input
    table, so two folders with the same run get the same id (re-exporting is idempotent) and
    runs over different inputs or settings get different ids, whatever the folders are called.

    Parameters
    ----------
    run_json : bytes
        The raw bytes of ``run.json``.

    Returns
    -------
    str
        e.g. ``"r3f2a9c0d1b7e4a56"``.
    """
    import hashlib

    return "r" + hashlib.sha256(run_json).hexdigest()[:16]


def schema_statements() -> list[str]:
    """Cypher statements creating every uniqueness constraint and index, each ``IF NOT EXISTS``.

    Labels and property names come from this module only (never from data), so the statements
    are constant strings.
    """
    out = []
    for spec in NODES.values():
        out.append(f"CREATE CONSTRAINT {spec.label.lower()}_{spec.key} IF NOT EXISTS "
                   f"FOR (n:{spec.label}) REQUIRE n.{spec.key} IS UNIQUE")
        for prop in spec.indexes:
            out.append(f"CREATE INDEX {spec.label.lower()}_{prop} IF NOT EXISTS FOR (n:{spec.label}) ON (n.{prop})")
    out.append(f"CREATE INDEX linked_layer IF NOT EXISTS FOR ()-[l:{RelType.LINKED}]-() ON (l.layer)")
    return out


def ensure_schema(driver, database: str | None = None) -> None:
    """Create the constraints and indexes that are missing and wait until they are online.

    Parameters
    ----------
    driver : neo4j.Driver
        An open driver.
    database : str, optional
        Target database (the server default when None).
    """
    for stmt in schema_statements():
        driver.execute_query(stmt, database_=database)
    driver.execute_query("CALL db.awaitIndexes(300)", database_=database)
