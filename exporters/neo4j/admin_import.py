"""Write a run as CSV files for ``neo4j-admin database import full``, for loads too large for Bolt."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from graphbuild.schema import NodeLabel, RelType

from exporters.neo4j.export import PreparedRun, prepare_run
from exporters.neo4j.model import IDENTIFIER_NODES, NODES, RELATIONSHIPS, USER_AGENT

__all__ = ["AdminImport", "write_admin_csv", "ARRAY_DELIMITER"]

#: array delimiter passed to neo4j-admin (--array-delimiter=U+001F, the ASCII unit separator);
#: the character is replaced by a space inside array elements
ARRAY_DELIMITER = "\x1f"

_SEEN_COLS = [("n_events", "long"), ("first_seen", "datetime"), ("last_seen", "datetime"),
              ("run_ids", "string[]"), ("run_order", "string")]
_IDENT_COLS = {
    NodeLabel.IP: [("n_accounts", "long"), ("is_hub", "boolean")],
    NodeLabel.PREFIX: [("n_accounts", "long"), ("is_hub", "boolean")],
    NodeLabel.INSTRUMENT: [("type", "string"), ("n_accounts", "long"), ("is_hub", "boolean")],
    NodeLabel.TEMPLATE: [("skeleton", "string"), ("n_accounts", "long"), ("n_prompts", "long"),
                         ("is_hub", "boolean"), ("examples", "string[]")],
    USER_AGENT: [("n_accounts", "long"), ("is_hub", "boolean")],
}
_CLUSTER_COLS = [("cluster_id", "string"), ("run_id", "string"), ("n_accounts", "long"), ("score", "double"),
                 ("flagged", "boolean"), ("reasons", "string[]"), ("stability", "double"), ("status", "string"),
                 ("first_seen", "datetime"), ("last_seen", "datetime"), ("signals_json", "string"),
                 ("layer_weight_json", "string")]
_RUN_COLS = [("name", "string"), ("version", "string"), ("seed", "long"), ("since", "string"), ("until", "string"),
             ("previous_run", "string"), ("previous_run_id", "string"), ("n_accounts", "long"),
             ("n_clusters", "long"), ("n_flagged", "long"), ("config_json", "string"), ("counts_json", "string"),
             ("run_order", "string"), ("model_version", "long"), ("complete", "boolean")]


@dataclass(frozen=True)
class AdminImport:
    """The files written for ``neo4j-admin database import full``.

    Attributes
    ----------
    directory : Path
        Folder holding the CSV files, ``import.sh`` and ``README.txt``.
    nodes : dict
        Label -> CSV file name.
    relationships : dict
        Relationship type -> CSV file name.
    rows : dict
        File name -> data rows written.
    run_id : str
        The run's id (the same as a Bolt export of the folder).
    """

    directory: Path
    nodes: dict[str, str]
    relationships: dict[str, str]
    rows: dict[str, int]
    run_id: str

    def arguments(self, database: str = "neo4j") -> list[str]:
        """Arguments after ``neo4j-admin database import full``, file paths relative to :attr:`directory`."""
        args = [f"--nodes={label}={f}" for label, f in self.nodes.items()]
        args += [f"--relationships={t}={f}" for t, f in self.relationships.items()]
        args += ["--array-delimiter=U+001F", "--multiline-fields=true", "--id-type=string", database]
        return args


def _cell(value, typ: str) -> str:
    if value is None:
        return ""
    if typ == "string[]":
        items = [str(v).replace(ARRAY_DELIMITER, " ") for v in value]
        if not items:
            return ""
        value = ARRAY_DELIMITER.join(items)
        typ = "string"
    if typ == "boolean":
        return "true" if value else "false"
    if typ == "long":
        return str(int(value))
    if typ == "double":
        return repr(float(value))
    if typ == "datetime":
        if isinstance(value, int):  # epoch microseconds, as prepare_run sends them
            value = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=value)
        if isinstance(value, datetime):
            v = value.astimezone(timezone.utc)
            fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if v.microsecond else "%Y-%m-%dT%H:%M:%SZ"
            return v.strftime(fmt)
        typ = "string"
    return '"' + str(value).replace('"', '""') + '"'


def _write(path: Path, header: list[tuple[str, str]], rows: list[list]) -> int:
    head = ",".join(name if (name.startswith(":") or ":" in name or typ == "string") else f"{name}:{typ}"
                    for name, typ in header)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(head + "\n")
        for row in rows:
            fh.write(",".join(_cell(v, typ) for v, (_, typ) in zip(row, header)) + "\n")
    return len(rows)


def write_admin_csv(run_dir: str | Path, out_dir: str | Path, *, prepared: PreparedRun | None = None) -> AdminImport:
    """Write one run folder as ``neo4j-admin database import full`` CSV files.

    The import builds the same graph as :func:`exporters.neo4j.export_run` (same nodes,
    relationships and properties), far faster, into an empty, stopped database; run
    ``hydrascope export neo4j`` on the same folder afterwards to create the constraints and
    indexes (it changes nothing else). Values are written verbatim — these files are input for
    neo4j-admin, not for spreadsheets, so cells are not formula-neutralised; do not open them in
    spreadsheet software.

    Parameters
    ----------
    run_dir : path-like
        Run folder written by ``hydrascope run``.
    out_dir : path-like
        Folder to write (created; existing files of the same names are replaced).
    prepared : PreparedRun, optional
        Rows already prepared by :func:`exporters.neo4j.export.prepare_run`.

    Returns
    -------
    AdminImport
        File names, row counts and the neo4j-admin arguments (also written to ``import.sh``).
    """
    prep = prepared if prepared is not None else prepare_run(run_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rid, order = prep.run_id, prep.run_order
    nodes, rels, rows = {}, {}, {}

    def emit(kind: dict, name: str, fname: str, header, data) -> None:
        rows[fname] = _write(out / fname, header, data)
        kind[name] = fname

    run_props = {**prep.run_props, "complete": True}
    run_cols = [(c, "string" if c == "seed" and not isinstance(run_props.get(c), (int, type(None))) else t)
                for c, t in _RUN_COLS]
    emit(nodes, NodeLabel.RUN, "nodes_run.csv", [("run_id:ID(Run)", "string")] + run_cols,
         [[rid] + [run_props.get(c) for c, _ in run_cols]])
    emit(nodes, NodeLabel.ACCOUNT, "nodes_account.csv",
         [("account_id:ID(Account)", "string"), ("score", "double"), ("flagged", "boolean"), ("cluster_id", "string"),
          ("run_id", "string"), ("run_order", "string")],
         [[r["account_id"], r["score"], r["flagged"], r["cluster_id"], rid, order] for r in prep.nodes[NodeLabel.ACCOUNT]])
    for label, cols in _IDENT_COLS.items():
        key = NODES[label].key
        emit(nodes, label, f"nodes_{label.lower()}.csv", [(f"{key}:ID({label})", "string")] + cols + [("run_order", "string")],
             [[r["key"]] + [r.get(c) for c, _ in cols] + [order] for r in prep.nodes.get(label, [])])
    emit(nodes, NodeLabel.CLUSTER, "nodes_cluster.csv", [("key:ID(Cluster)", "string")] + _CLUSTER_COLS,
         [[r["key"]] + [r["props"].get(c) for c, _ in _CLUSTER_COLS] for r in prep.nodes[NodeLabel.CLUSTER]])

    emit(rels, RelType.IN_RUN, "rels_in_run.csv", [(":START_ID(Cluster)", "string"), (":END_ID(Run)", "string")],
         [[r["key"], rid] for r in prep.relationships[RelType.IN_RUN]])
    emit(rels, RelType.MEMBER_OF, "rels_member_of.csv",
         [(":START_ID(Account)", "string"), (":END_ID(Cluster)", "string"), ("score", "double"), ("flagged", "boolean")],
         [[r["account_id"], r["key"], r["score"], r["flagged"]] for r in prep.relationships[RelType.MEMBER_OF]])
    for rel in dict.fromkeys(r for _, r in IDENTIFIER_NODES.values()):
        spec = RELATIONSHIPS[rel]
        disc = [(spec.discriminator, "string")] if spec.discriminator else []
        emit(rels, rel, f"rels_{rel.lower()}.csv",
             [(":START_ID(Account)", "string"), (f":END_ID({spec.end})", "string")] + disc + _SEEN_COLS,
             [[r["account_id"], r["key"]] + [r[c] for c, _ in disc]
              + [r["n_events"], r["first_seen"], r["last_seen"], [rid], order]
              for r in prep.relationships.get(rel, [])])
    emit(rels, RelType.LINKED, "rels_linked.csv",
         [(":START_ID(Account)", "string"), (":END_ID(Account)", "string"), ("layer", "string"), ("weight", "double"),
          ("evidence_count", "long"), ("first_seen", "datetime"), ("last_seen", "datetime"),
          ("run_ids", "string[]"), ("run_order", "string")],
         [[r["account_a"], r["account_b"], r["layer"], r["weight"], r["evidence_count"], r["first_seen"],
           r["last_seen"], [rid], order] for r in prep.relationships[RelType.LINKED]])

    result = AdminImport(directory=out, nodes=nodes, relationships=rels, rows=rows, run_id=rid)
    script = ("#!/bin/sh\n# Load this run into an EMPTY, STOPPED Neo4j database, then run\n"
              "#   hydrascope export neo4j RUN_DIR --uri ...   to create constraints and indexes.\n"
              "# Usage: sh import.sh [DATABASE]   (neo4j-admin on PATH, or NEO4J_ADMIN=\"/path/scripts/neo4j admin\")\n"
              'cd "$(dirname "$0")" || exit 1\n'
              "exec ${NEO4J_ADMIN:-neo4j-admin} database import full "
              + " ".join(shlex.quote(a) for a in result.arguments()[:-1]) + ' "${1:-neo4j}"\n')
    (out / "import.sh").write_text(script, encoding="utf-8")
    (out / "README.txt").write_text(
        "neo4j-admin import files written by hydrascope (run " + rid + ").\n"
        "Values are verbatim account data and may contain text crafted to look like spreadsheet\n"
        "formulas: do not open these files in spreadsheet software. See import.sh and docs/neo4j.md.\n"
        + json.dumps({"nodes": nodes, "relationships": rels, "rows": rows}, indent=1, sort_keys=True) + "\n",
        encoding="utf-8")
    return result
