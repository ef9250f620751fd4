"""One place naming tables, columns, layers, identifier kinds, node labels and run-folder files."""

from __future__ import annotations

__all__ = [
    "TABLES", "REQUIRED_TABLES", "COLUMNS", "REQUIRED_COLUMNS", "TIMESTAMP_COLUMNS", "INTEGER_COLUMNS",
    "LAYERS", "NETWORK", "PAYMENT", "PROMPT", "TIMING",
    "IDENTIFIER_KINDS", "KIND_LAYER",
    "LINK_COLUMNS", "ACCOUNTS_CSV_COLUMNS", "CLUSTERS_CSV_COLUMNS", "REJECT_COLUMNS",
    "RunFiles", "NodeLabel", "RelType",
]

# --- input bundle (../shared/SCHEMA.md) -------------------------------------------------------
TABLES = ("accounts", "events", "payments", "labels")
REQUIRED_TABLES = ("accounts", "events")
COLUMNS = {
    "accounts": ("account_id", "created_at", "email_domain", "country", "org_id", "signup_ip"),
    "events": ("account_id", "ts", "ip", "user_agent", "api_key_id", "model", "prompt",
               "prompt_tokens", "completion_tokens"),
    "payments": ("account_id", "instrument_id", "instrument_type", "ts", "billing_country"),
    "labels": ("account_id", "campaign_id"),
}
REQUIRED_COLUMNS = {
    "accounts": ("account_id", "created_at"),
    "events": ("account_id", "ts", "ip"),
    "payments": ("account_id", "instrument_id"),
    "labels": ("account_id", "campaign_id"),
}
TIMESTAMP_COLUMNS = {"accounts": ("created_at",), "events": ("ts",), "payments": ("ts",), "labels": ()}
INTEGER_COLUMNS = {"events": ("prompt_tokens", "completion_tokens")}
REJECT_COLUMNS = ("table", "file", "line", "column", "value", "reason", "action")

# --- evidence layers and identifier kinds -------------------------------------------------------
NETWORK, PAYMENT, PROMPT, TIMING = "network", "payment", "prompt", "timing"
LAYERS = (NETWORK, PAYMENT, PROMPT, TIMING)

#: identifier kind -> evidence layer it belongs to
KIND_LAYER = {
    "ip": NETWORK,            # an event IP address
    "ip_window": NETWORK,     # an event IP within one co-use time window ("ip|2026-11-02")
    "signup_ip": NETWORK,     # the sign-up IP address
    "prefix": NETWORK,        # /24 (IPv4) or /48 (IPv6) network prefix of event IPs
    "instrument": PAYMENT,    # a payment instrument fingerprint
    "template": PROMPT,       # a prompt template (masked, near-duplicate-grouped skeleton)
    "time_window": TIMING,    # a short activity window shared by accounts
    "signup_window": TIMING,  # an account-creation burst window
    "user_agent": TIMING,     # a (rare) user agent string
}
IDENTIFIER_KINDS = tuple(KIND_LAYER)

# --- results ----------------------------------------------------------------------------------
LINK_COLUMNS = ("account_a", "account_b", "layer", "weight", "evidence_count", "first_seen", "last_seen")
ACCOUNTS_CSV_COLUMNS = ("account_id", "cluster_id", "flagged", "score")
CLUSTERS_CSV_COLUMNS = ("cluster_id", "n_accounts", "score", "flagged", "reasons")


class RunFiles:
    """File names inside a run folder (see docs/run-folder.md)."""

    ACCOUNTS = "accounts.csv"
    CLUSTERS = "clusters.csv"
    RUN = "run.json"
    REJECTS = "rejects.csv"
    LINKS = "links.parquet"
    ACCOUNT_IDENTIFIERS = "account_identifiers.parquet"
    IDENTIFIERS = "identifiers.parquet"
    TEMPLATES = "templates.parquet"
    FEATURES = "account_features.parquet"
    ACCOUNT_DETAILS = "account_details.parquet"
    CLUSTER_DETAILS = "clusters.json"
    CLUSTER_ACTIVITY = "cluster_activity.parquet"
    CLUSTER_EVENTS = "cluster_events.parquet"


class NodeLabel:
    """Neo4j node labels."""

    ACCOUNT = "Account"
    IP = "IP"
    PREFIX = "Prefix"
    INSTRUMENT = "PaymentInstrument"
    TEMPLATE = "PromptTemplate"
    CLUSTER = "Cluster"
    RUN = "Run"


class RelType:
    """Neo4j relationship types."""

    USED_IP = "USED_IP"
    IN_PREFIX = "IN_PREFIX"
    PAID_WITH = "PAID_WITH"
    USED_TEMPLATE = "USED_TEMPLATE"
    MEMBER_OF = "MEMBER_OF"
    IN_RUN = "IN_RUN"
    LINKED = "LINKED"  # account-account link; property `layer`
