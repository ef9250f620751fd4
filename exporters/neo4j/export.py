"""Export a run folder to a Neo4j server with batched, idempotent ``UNWIND … MERGE`` transactions."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from graphbuild.errors import ExportError, RunFolderError
from graphbuild.schema import NodeLabel, RelType, RunFiles

from exporters.neo4j.model import IDENTIFIER_NODES, MODEL_VERSION, NODES, RELATIONSHIPS, ensure_schema, run_id_of
from exporters.runfolder import RunFolder

__all__ = ["ExportStats", "export_run", "export_run_with_driver", "prepare_run", "PreparedRun", "connect"]

LINEAGE_CSV = "lineage.csv"

# ---------------------------------------------------------------------------------------------
# Cypher. Labels, types and property names come from exporters.neo4j.model only; every value
# (ids, prompts, skeletons, user agents, scores, times) travels as a query parameter.
# `$run_order` (the run's window end + run id) decides which run's values a shared node or
# relationship shows, so exporting runs in any order gives the same graph.
# ---------------------------------------------------------------------------------------------

_LATEST = "coalesce({v}.run_order, '') <= $run_order"
# a node already written by this very run (same run_order) holds these values: skip the write
_NEWER = "coalesce({v}.run_order, '') < $run_order"
# a relationship whose run_ids has this run already holds its values: skip the write
_NOT_SEEN = "WITH {v}, r, fs, ls WHERE NOT $run_id IN coalesce({v}.run_ids, [])"


def _add_run_id(v: str) -> str:
    # insert $run_id into the sorted list v.run_ids, without duplicates
    return (f"{v}.run_ids = [x IN coalesce({v}.run_ids, []) WHERE x < $run_id] + $run_id"
            f" + [x IN coalesce({v}.run_ids, []) WHERE x > $run_id]")


def _seen(v: str) -> str:
    # fs / ls: the row's first/last seen as DateTime (see _DT); keep the earliest and the latest
    return (f"{v}.first_seen = CASE WHEN {v}.first_seen IS NULL OR fs < {v}.first_seen "
            f"THEN fs ELSE {v}.first_seen END, "
            f"{v}.last_seen = CASE WHEN {v}.last_seen IS NULL OR ls > {v}.last_seen "
            f"THEN ls ELSE {v}.last_seen END")


def _dt(x: str) -> str:
    """Cypher turning an epoch-microseconds integer parameter into a UTC DateTime (null stays null).

    Timestamps travel as integers because the driver packs datetime objects ~10x slower.
    """
    return (f"CASE WHEN {x} IS NULL THEN null ELSE "
            f"datetime({{epochSeconds: {x} / 1000000, nanosecond: ({x} % 1000000) * 1000}}) END")


_WITH_SEEN = f"WITH r, {_dt('r.first_seen')} AS fs, {_dt('r.last_seen')} AS ls"


Q_RUN_BEGIN = f"""
MERGE (run:{NodeLabel.RUN} {{run_id: $run_id}})
ON CREATE SET run.complete = false
SET run += $props
"""

Q_RUN_COMPLETE = f"MATCH (run:{NodeLabel.RUN} {{run_id: $run_id}}) SET run.complete = true"

Q_ACCOUNTS = f"""
UNWIND $rows AS r
MERGE (a:{NodeLabel.ACCOUNT} {{account_id: r.account_id}})
ON CREATE SET a.score = r.score, a.flagged = r.flagged, a.cluster_id = r.cluster_id,
    a.run_id = $run_id, a.run_order = $run_order
WITH a, r WHERE {_NEWER.format(v='a')}
SET a.score = r.score, a.flagged = r.flagged, a.cluster_id = r.cluster_id,
    a.run_id = $run_id, a.run_order = $run_order
"""


def _q_identifier(label: str, key: str, extra: Sequence[str]) -> str:
    sets = ", ".join(f"n.{p} = coalesce(r.{p}, n.{p})" for p in extra)
    return f"""
UNWIND $rows AS r
MERGE (n:{label} {{{key}: r.key}})
ON CREATE SET {sets}, n.run_order = $run_order
WITH n, r WHERE {_NEWER.format(v='n')}
SET {sets}, n.run_order = $run_order
"""


Q_CLUSTERS = f"""
UNWIND $rows AS r
MERGE (c:{NodeLabel.CLUSTER} {{key: r.key}})
SET c += r.props
WITH c
MATCH (run:{NodeLabel.RUN} {{run_id: $run_id}})
MERGE (c)-[:{RelType.IN_RUN}]->(run)
"""

Q_MEMBERS = f"""
UNWIND $rows AS r
MATCH (a:{NodeLabel.ACCOUNT} {{account_id: r.account_id}})
MATCH (c:{NodeLabel.CLUSTER} {{key: r.key}})
MERGE (a)-[m:{RelType.MEMBER_OF}]->(c)
ON CREATE SET m.score = r.score, m.flagged = r.flagged
"""


def _q_usage(label: str, key: str, rel: str, discriminator: str | None) -> str:
    disc = f" {{{discriminator}: r.{discriminator}}}" if discriminator else ""
    return f"""
UNWIND $rows AS r
{_WITH_SEEN}
MATCH (a:{NodeLabel.ACCOUNT} {{account_id: r.account_id}})
MATCH (n:{label} {{{key}: r.key}})
MERGE (a)-[u:{rel}{disc}]->(n)
ON CREATE SET u.n_events = r.n_events, u.run_order = $run_order, u.first_seen = fs, u.last_seen = ls,
    u.run_ids = [$run_id]
{_NOT_SEEN.format(v='u')}
SET u.n_events = CASE WHEN {_LATEST.format(v='u')} THEN r.n_events ELSE u.n_events END,
    u.run_order = CASE WHEN {_LATEST.format(v='u')} THEN $run_order ELSE u.run_order END,
    {_seen('u')}, {_add_run_id('u')}
"""


Q_LINKS = f"""
UNWIND $rows AS r
{_WITH_SEEN}
MATCH (a:{NodeLabel.ACCOUNT} {{account_id: r.account_a}})
MATCH (b:{NodeLabel.ACCOUNT} {{account_id: r.account_b}})
MERGE (a)-[l:{RelType.LINKED} {{layer: r.layer}}]->(b)
ON CREATE SET l.weight = r.weight, l.evidence_count = r.evidence_count, l.run_order = $run_order,
    l.first_seen = fs, l.last_seen = ls, l.run_ids = [$run_id]
{_NOT_SEEN.format(v='l')}
SET l.weight = CASE WHEN {_LATEST.format(v='l')} THEN r.weight ELSE l.weight END,
    l.evidence_count = CASE WHEN {_LATEST.format(v='l')} THEN r.evidence_count ELSE l.evidence_count END,
    l.run_order = CASE WHEN {_LATEST.format(v='l')} THEN $run_order ELSE l.run_order END,
    {_seen('l')}, {_add_run_id('l')}
"""

_IDENT_EXTRA = {
    NodeLabel.IP: ("n_accounts", "is_hub"),
    NodeLabel.PREFIX: ("n_accounts", "is_hub"),
    NodeLabel.INSTRUMENT: ("type", "n_accounts", "is_hub"),
    NodeLabel.TEMPLATE: ("skeleton", "n_accounts", "n_prompts", "is_hub", "examples"),
}


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------

@dataclass
class ExportStats:
    """What an export sent and what the server changed.

    Attributes
    ----------
    run_id : str
        Id of the exported run (see :func:`exporters.neo4j.model.run_id_of`).
    nodes : dict
        Label -> nodes of this run sent (distinct entities).
    relationships : dict
        Relationship type -> relationships of this run sent.
    nodes_created, relationships_created, properties_set : int
        Server counters summed over every batch (0 nodes/relationships created on a re-export).
    batches : int
        Transactions committed.
    seconds : float
        Time spent sending batches (not part of any output file).
    phase_seconds : dict
        Label or relationship type -> seconds spent on its batches.
    """

    run_id: str
    nodes: dict[str, int] = field(default_factory=dict)
    relationships: dict[str, int] = field(default_factory=dict)
    nodes_created: int = 0
    relationships_created: int = 0
    properties_set: int = 0
    batches: int = 0
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Nodes sent, all labels."""
        return sum(self.nodes.values())

    @property
    def n_relationships(self) -> int:
        """Relationships sent, all types."""
        return sum(self.relationships.values())


@dataclass
class PreparedRun:
    """A run folder turned into parameter rows, ready to be sent (or written as import CSVs).

    Attributes
    ----------
    run_id, run_order : str
        Run id and the sort key (window end + run id) deciding which run is the latest.
    run_props : dict
        Properties of the :Run node.
    nodes : dict
        Label -> list of row dicts (``key`` plus properties; accounts keyed by ``account_id``).
    relationships : dict
        Relationship type -> list of row dicts.
    """

    run_id: str
    run_order: str
    run_props: dict
    nodes: dict[str, list[dict]]
    relationships: dict[str, list[dict]]


# ---------------------------------------------------------------------------------------------
# Preparing rows from a run folder
# ---------------------------------------------------------------------------------------------

def _py(v):
    """A pandas/numpy scalar as a plain Python value the driver can send (NaN/NaT -> None)."""
    if v is None:
        return None
    if isinstance(v, pd.Timestamp):
        if pd.isna(v):
            return None
        if v.tzinfo is None:
            v = v.tz_localize("UTC")
        return v.to_pydatetime()
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, np.ndarray):
        return [_py(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_py(x) for x in v]
    if v is pd.NaT or v is pd.NA:
        return None
    return v


#: columns sent as epoch microseconds and stored as DateTime
_TIME_COLUMNS = ("first_seen", "last_seen")


def _records(df: pd.DataFrame, columns: Sequence[str]) -> list[dict]:
    cols = {}
    for c in columns:
        s = df[c] if c in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)
        if c in _TIME_COLUMNS and not pd.api.types.is_datetime64_any_dtype(s):
            s = pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")
        if pd.api.types.is_datetime64_any_dtype(s):
            # epoch microseconds (ints pack fast); the Cypher turns them into DateTime
            if s.dt.tz is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            us = s.to_numpy().astype("datetime64[us]").astype("int64").tolist()
            cols[c] = [None if na else v for v, na in zip(us, s.isna().tolist())]
        elif pd.api.types.is_bool_dtype(s) and not s.isna().any():
            cols[c] = [bool(x) for x in s]
        elif pd.api.types.is_integer_dtype(s) and not s.isna().any():
            cols[c] = [int(x) for x in s]
        elif pd.api.types.is_float_dtype(s):
            cols[c] = [None if x != x else float(x) for x in s]
        else:
            cols[c] = [_py(x) for x in s]
    n = len(df)
    keys = list(cols)
    return [{k: cols[k][i] for k in keys} for i in range(n)]


def _bool(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.fillna(False).astype(bool)
    return s.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


_NEEDED = {
    RunFiles.ACCOUNT_IDENTIFIERS: ("account_id", "kind", "identifier", "n_events", "first_seen", "last_seen"),
    RunFiles.LINKS: ("account_a", "account_b", "layer", "weight", "evidence_count", "first_seen", "last_seen"),
    RunFiles.IDENTIFIERS: ("kind", "identifier", "is_hub"),
    RunFiles.TEMPLATES: ("template_id", "skeleton"),
}


def _optional(run: RunFolder, name: str) -> pd.DataFrame | None:
    """A Parquet table of the run folder, None when the file is absent; checks the needed columns."""
    if not (run.path / name).exists():
        return None
    df = run.table(name)
    missing = [c for c in _NEEDED.get(name, ()) if c not in df.columns]
    if missing:
        raise RunFolderError(f"{run.path / name} lacks column(s) {', '.join(missing)} (docs/run-folder.md)")
    return df


def _ts(v):
    """An ISO 8601 string (clusters.json) as a UTC datetime; None stays None."""
    if v is None or v == "":
        return None
    try:
        return _py(pd.Timestamp(v))
    except (ValueError, TypeError):
        return str(v)


def _iso(v) -> str:
    if v is None:
        return ""
    return str(v)


def prepare_run(run_dir: str | Path) -> PreparedRun:
    """Read a run folder and build every node and relationship row the export sends.

    Parameters
    ----------
    run_dir : path-like
        A folder written by ``hydrascope run`` (docs/run-folder.md).

    Returns
    -------
    PreparedRun
        Rows sorted by key, so the same folder always gives the same rows in the same order.

    Raises
    ------
    RunFolderError
        When the folder is not a run folder or a table lacks a needed column.
    """
    run = RunFolder(run_dir)
    raw = (run.path / RunFiles.RUN).read_bytes()
    run_id = run_id_of(raw)
    meta = run.meta
    window = meta.get("window") or {}
    until = _iso(window.get("until"))
    run_order = f"{until}|{run_id}"

    accounts = run.accounts.copy()
    accounts["flagged"] = _bool(accounts["flagged"])
    clusters = run.clusters.copy()
    clusters["flagged"] = _bool(clusters["flagged"])

    previous = meta.get("previous_run")
    previous_id = None
    if previous:
        p = Path(previous)
        if not p.is_absolute():
            p = (run.path / p) if (run.path / p / RunFiles.RUN).is_file() else p
        if (p / RunFiles.RUN).is_file():
            previous_id = run_id_of((p / RunFiles.RUN).read_bytes())

    run_props = {
        "name": run.path.name,
        "version": _py(meta.get("version")),
        "seed": _py(meta.get("seed")),
        "since": _iso(window.get("since")) or None,
        "until": until or None,
        "previous_run": str(previous) if previous else None,
        "previous_run_id": previous_id,
        "n_accounts": int(len(accounts)),
        "n_clusters": int(len(clusters)),
        "n_flagged": int(clusters["flagged"].sum()),
        "config_json": json.dumps(meta.get("config", {}), sort_keys=True, default=str),
        "counts_json": json.dumps(meta.get("counts", {}), sort_keys=True, default=str),
        "run_order": run_order,
        "model_version": MODEL_VERSION,
    }

    ai = _optional(run, RunFiles.ACCOUNT_IDENTIFIERS)
    links = _optional(run, RunFiles.LINKS)
    idents = _optional(run, RunFiles.IDENTIFIERS)
    templates = _optional(run, RunFiles.TEMPLATES)

    # --- accounts: every account of accounts.csv, plus any only seen in links / identifiers
    acc = accounts[["account_id", "score", "flagged", "cluster_id"]].copy()
    extra_ids: set[str] = set()
    if links is not None and len(links):
        extra_ids.update(links["account_a"].astype(str)); extra_ids.update(links["account_b"].astype(str))
    if ai is not None and len(ai):
        extra_ids.update(ai["account_id"].astype(str))
    extra_ids.difference_update(acc["account_id"])
    if extra_ids:
        acc = pd.concat([acc, pd.DataFrame({"account_id": sorted(extra_ids)})], ignore_index=True)
    acc = acc.sort_values("account_id", kind="stable")
    nodes: dict[str, list[dict]] = {NodeLabel.ACCOUNT: _records(acc, ["account_id", "score", "flagged", "cluster_id"])}
    rels: dict[str, list[dict]] = {}

    # --- identifiers and account -> identifier use
    if ai is not None and len(ai):
        ai = ai[ai["kind"].isin(IDENTIFIER_NODES)].copy()
        ai["identifier"] = ai["identifier"].astype(str)
        ai["label"] = ai["kind"].map(lambda k: IDENTIFIER_NODES[k][0])
        ai["rel"] = ai["kind"].map(lambda k: IDENTIFIER_NODES[k][1])
        hub = {}
        if idents is not None and len(idents):
            for kind, ident, is_hub in zip(idents["kind"], idents["identifier"].astype(str), _bool(idents["is_hub"])):
                if kind in IDENTIFIER_NODES:
                    lab = IDENTIFIER_NODES[kind][0]
                    hub[(lab, ident)] = hub.get((lab, ident), False) or bool(is_hub)
        types = {}
        for col in ("instrument_type", "type"):
            for frame in (ai, idents):
                if frame is not None and col in frame.columns:
                    sub = frame[frame["kind"] == "instrument"][["identifier", col]].dropna()
                    for ident, t in zip(sub["identifier"].astype(str), sub[col].astype(str)):
                        types.setdefault(ident, t)
        tmpl = {}
        if templates is not None and len(templates):
            t = templates.copy()
            t["template_id"] = t["template_id"].astype(str)
            for rec in _records(t, ["template_id", "skeleton", "n_accounts", "n_prompts", "is_hub", "examples"]):
                tmpl[rec["template_id"]] = rec
        for label in dict.fromkeys(lab for lab, _ in IDENTIFIER_NODES.values()):
            sub = ai[ai["label"] == label]
            n_acc = sub.groupby("identifier")["account_id"].nunique()
            keys = set(n_acc.index)
            if label == NodeLabel.TEMPLATE:
                keys |= set(tmpl)
            rows = []
            for k in sorted(keys):
                row = {"key": k, "n_accounts": int(n_acc.get(k, 0)), "is_hub": hub.get((label, k), False)}
                if label == NodeLabel.INSTRUMENT:
                    row["type"] = types.get(k)
                if label == NodeLabel.TEMPLATE:
                    t = tmpl.get(k, {})
                    row.update(skeleton=t.get("skeleton"), n_prompts=t.get("n_prompts"),
                               examples=[str(x) for x in (t.get("examples") or [])])
                    if t.get("n_accounts") is not None:
                        row["n_accounts"] = int(t["n_accounts"])
                    if t.get("is_hub") is not None:
                        row["is_hub"] = bool(t["is_hub"]) or row["is_hub"]
                rows.append(row)
            nodes[label] = rows
        for rel in dict.fromkeys(r for _, r in IDENTIFIER_NODES.values()):
            sub = ai[ai["rel"] == rel].sort_values(["account_id", "identifier", "kind"], kind="stable")
            sub = sub.rename(columns={"identifier": "key"})
            rels[rel] = _records(sub, ["account_id", "key", "kind", "n_events", "first_seen", "last_seen"])
            if RELATIONSHIPS[rel].discriminator is None:
                for r in rels[rel]:
                    del r["kind"]
    else:
        for label, rel in IDENTIFIER_NODES.values():
            nodes.setdefault(label, [])
            rels.setdefault(rel, [])

    # --- clusters, membership
    details = {}
    if (run.path / RunFiles.CLUSTER_DETAILS).is_file():
        details = {str(c["cluster_id"]): c for c in run.cluster_details}
    status = {}
    if (run.path / LINEAGE_CSV).is_file():
        lin = pd.read_csv(run.path / LINEAGE_CSV, dtype=str, keep_default_na=False)
        status = dict(zip(lin["cluster_id"], lin["status"]))
    crow = []
    for rec in _records(clusters.sort_values("cluster_id", kind="stable"),
                        ["cluster_id", "n_accounts", "score", "flagged", "reasons"]):
        cid = str(rec["cluster_id"])
        d = details.get(cid, {})
        reasons = d.get("reasons")
        if not isinstance(reasons, list):
            reasons = [x.strip() for x in str(rec["reasons"] or "").split(";") if x.strip()]
        props = {
            "cluster_id": cid, "run_id": run_id, "n_accounts": rec["n_accounts"], "score": rec["score"],
            "flagged": rec["flagged"], "reasons": [str(x) for x in reasons],
            "stability": _py(d.get("stability")), "status": status.get(cid),
            "first_seen": _ts(d.get("first_seen")), "last_seen": _ts(d.get("last_seen")),
            "signals_json": json.dumps(d["signals"], sort_keys=True) if "signals" in d else None,
            "layer_weight_json": json.dumps(d["layer_weight"], sort_keys=True) if "layer_weight" in d else None,
        }
        crow.append({"key": f"{run_id}/{cid}", "props": props})
    nodes[NodeLabel.CLUSTER] = crow
    rels[RelType.IN_RUN] = [{"key": c["key"]} for c in crow]
    mem = accounts[accounts["cluster_id"].notna() & (accounts["cluster_id"].astype(str) != "")]
    mem = mem.assign(key=run_id + "/" + mem["cluster_id"].astype(str)).sort_values("account_id", kind="stable")
    rels[RelType.MEMBER_OF] = _records(mem, ["account_id", "key", "score", "flagged"])

    # --- account-account links
    if links is not None and len(links):
        lk = links.copy()
        lk["account_a"] = lk["account_a"].astype(str)
        lk["account_b"] = lk["account_b"].astype(str)
        lk = lk.sort_values(["account_a", "account_b", "layer"], kind="stable")
        rels[RelType.LINKED] = _records(lk, ["account_a", "account_b", "layer", "weight", "evidence_count",
                                             "first_seen", "last_seen"])
    else:
        rels[RelType.LINKED] = []

    return PreparedRun(run_id=run_id, run_order=run_order, run_props=run_props, nodes=nodes, relationships=rels)


# ---------------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------------

def _batches(rows: list[dict], size: int) -> Iterator[list[dict]]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


def _plan(prep: PreparedRun) -> list[tuple[str, str, list[dict]]]:
    """(name, query, rows) in dependency order: nodes before the relationships that need them."""
    plan = [(NodeLabel.ACCOUNT, Q_ACCOUNTS, prep.nodes[NodeLabel.ACCOUNT])]
    for label, extra in _IDENT_EXTRA.items():
        plan.append((label, _q_identifier(label, NODES[label].key, extra), prep.nodes.get(label, [])))
    from exporters.neo4j.model import USER_AGENT
    plan.append((USER_AGENT, _q_identifier(USER_AGENT, NODES[USER_AGENT].key, ("n_accounts", "is_hub")),
                 prep.nodes.get(USER_AGENT, [])))
    plan.append((NodeLabel.CLUSTER, Q_CLUSTERS, prep.nodes[NodeLabel.CLUSTER]))
    plan.append((RelType.MEMBER_OF, Q_MEMBERS, prep.relationships[RelType.MEMBER_OF]))
    for kind, (label, rel) in IDENTIFIER_NODES.items():
        if any(p[0] == rel for p in plan):
            continue
        spec = RELATIONSHIPS[rel]
        plan.append((rel, _q_usage(label, NODES[label].key, rel, spec.discriminator), prep.relationships.get(rel, [])))
    plan.append((RelType.LINKED, Q_LINKS, prep.relationships[RelType.LINKED]))
    return plan


def connect(uri: str, auth=None):
    """Open a ``neo4j`` driver and check the server answers.

    Parameters
    ----------
    uri : str
        e.g. ``bolt://127.0.0.1:7687`` or ``neo4j+s://xxxx.databases.neo4j.io``.
    auth : tuple (user, password) or None
        None for a server with authentication disabled (``scripts/neo4j``).

    Raises
    ------
    ExportError
        When the driver is not installed, the server cannot be reached or refuses the credentials.
    """
    try:
        import neo4j
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ExportError("the Neo4j exporter needs the `neo4j` driver: pip install 'hydrascope[neo4j]'") from exc
    try:
        driver = neo4j.GraphDatabase.driver(uri, auth=auth)
        driver.verify_connectivity()
    except neo4j.exceptions.AuthError as exc:
        raise ExportError(f"Neo4j at {uri} refused the credentials: {exc.message}") from exc
    except (neo4j.exceptions.DriverError, neo4j.exceptions.Neo4jError, OSError, ValueError) as exc:
        raise ExportError(f"cannot reach Neo4j at {uri}: {exc}") from exc
    return driver


def export_run_with_driver(run_dir: str | Path, driver, *, database: str | None = None, batch_size: int = 5000,
                           progress: bool = False, prepared: PreparedRun | None = None,
                           on_phase=None) -> ExportStats:
    """Export a run folder through an open driver (see :func:`export_run`).

    ``on_phase(name, rows, seconds)``, when given, is called after each label or relationship
    type is written; ``prepared`` reuses rows from :func:`prepare_run`.
    """
    import neo4j

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    prep = prepared if prepared is not None else prepare_run(run_dir)
    stats = ExportStats(run_id=prep.run_id)
    plan = _plan(prep)
    for name, _, rows in plan:
        target = stats.relationships if name in RELATIONSHIPS else stats.nodes
        target[name] = len(rows)
    stats.relationships[RelType.IN_RUN] = len(prep.relationships[RelType.IN_RUN])
    params = {"run_id": prep.run_id, "run_order": prep.run_order}
    total = sum(len(rows) for _, _, rows in plan)

    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="row", desc="neo4j", disable=not progress, leave=False)
    t0 = time.perf_counter()
    try:
        ensure_schema(driver, database)
        with driver.session(database=database) as session:

            def write(query, **kw):
                def work(tx):
                    return tx.run(query, **kw).consume().counters
                c = session.execute_write(work)
                stats.nodes_created += c.nodes_created
                stats.relationships_created += c.relationships_created
                stats.properties_set += c.properties_set
                stats.batches += 1

            write(Q_RUN_BEGIN, props=prep.run_props, **params)
            for name, query, rows in plan:
                bar.set_description(f"neo4j {name}")
                t_phase = time.perf_counter()
                for batch in _batches(rows, batch_size):
                    write(query, rows=batch, **params)
                    bar.update(len(batch))
                stats.phase_seconds[name] = time.perf_counter() - t_phase
                if on_phase is not None:
                    on_phase(name, len(rows), stats.phase_seconds[name])
            write(Q_RUN_COMPLETE, **params)
    except neo4j.exceptions.Neo4jError as exc:
        raise ExportError(f"Neo4j rejected the export of run {prep.run_id}: {exc}") from exc
    except (neo4j.exceptions.DriverError, OSError) as exc:
        raise ExportError(f"the export of run {prep.run_id} stopped: {exc}. Batches already committed are "
                          "complete; run the export again to finish it") from exc
    finally:
        bar.close()
    stats.seconds = time.perf_counter() - t0
    return stats


def export_run(run_dir: str | Path, uri: str, auth=None, *, database: str | None = None, batch_size: int = 5000,
               progress: bool = False) -> ExportStats:
    """Export a run folder to Neo4j: accounts, identifiers, clusters, memberships and links.

    Each batch of ``batch_size`` rows is one ``UNWIND $rows AS r MERGE …`` transaction, so a
    failure (server stopped) leaves no half-written batch, and running the export again
    completes it. Exporting the same run again changes no node or relationship count;
    exporting a later run adds its :Run, :Cluster and MEMBER_OF beside the earlier ones and
    reuses the shared accounts, IPs, prefixes, instruments, templates and user agents.

    Parameters
    ----------
    run_dir : path-like
        Run folder written by ``hydrascope run``.
    uri : str
        Bolt or neo4j URI, e.g. ``bolt://127.0.0.1:7687``.
    auth : tuple (user, password) or None
        Credentials; None when the server has authentication disabled.
    database : str, optional
        Target database (server default when None).
    batch_size : int
        Rows per transaction.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    ExportStats

    Raises
    ------
    ExportError
        Server unreachable, credentials refused, or the export interrupted.
    RunFolderError
        ``run_dir`` is not a run folder.

    Examples
    --------
    >>> stats = export_run("runs/demo", "bolt://127.0.0.1:7687")     # doctest: +SKIP
    >>> stats.nodes["Account"], stats.relationships["LINKED"]         # doctest: +SKIP
    """
    prep = prepare_run(run_dir)
    driver = connect(uri, auth)
    try:
        return export_run_with_driver(run_dir, driver, database=database, batch_size=batch_size,
                                      progress=progress, prepared=prep)
    finally:
        driver.close()
