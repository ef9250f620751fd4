"""Write the run folder: the SCHEMA result tables and the evidence tables exporters read."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from graphbuild.schema import (ACCOUNTS_CSV_COLUMNS, CLUSTERS_CSV_COLUMNS, COLUMNS, LINK_COLUMNS, REJECT_COLUMNS,
                               RunFiles)

__all__ = ["write_results", "safe_cell", "write_csv", "write_json", "write_parquet"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A CSV cell that spreadsheet programs will not evaluate as a formula.

    Examples
    --------
    >>> safe_cell('=HYPERLINK("http://x")'), safe_cell("acct_1"), safe_cell(-0.5)
    ('\\'=HYPERLINK("http://x")', 'acct_1', '-0.5')
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    s = str(value)
    return "'" + s if s.startswith(_FORMULA_START) else s


def write_csv(path: Path, df: pd.DataFrame, columns) -> None:
    """Write ``df[columns]`` as UTF-8 CSV, LF line ends, every text cell neutralised."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in df[list(columns)].itertuples(index=False, name=None):
        w.writerow([safe_cell(v) for v in row])
    Path(path).write_text(buf.getvalue(), encoding="utf-8")


def write_json(path: Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False, default=_json_default) + "\n",
                          encoding="utf-8")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, pd.Timestamp):
        return o.strftime("%Y-%m-%dT%H:%M:%SZ")
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    """Parquet without pandas index metadata, so the bytes depend only on the data.

    Categorical columns are written as their plain values (a categorical ``uses`` table gives
    the same file as one of strings).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False).replace_schema_metadata(None)
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    pq.write_table(table, path, compression="zstd")


def write_parquet_query(path: Path, con, sql: str, batch_rows: int = 65_536) -> None:
    """Write a DuckDB query's rows to Parquet in row groups of ``batch_rows`` (bounded memory).

    DuckDB hands out batches whose sizes depend on its threads; they are re-cut into row groups of
    exactly ``batch_rows`` rows, so the same rows always give the same bytes.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    reader = con.sql(sql).to_arrow_reader(batch_rows)
    schema = reader.schema.remove_metadata()
    pending, n = [], 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in reader:
            pending.append(batch)
            n += batch.num_rows
            if n >= batch_rows:
                table = pa.Table.from_batches(pending, schema=reader.schema)
                full = (n // batch_rows) * batch_rows
                for start in range(0, full, batch_rows):
                    writer.write_table(table.slice(start, batch_rows).replace_schema_metadata(None))
                pending, n = table.slice(full).to_batches(), n - full
        if n or not pending:
            writer.write_table(pa.Table.from_batches(pending, schema=reader.schema).replace_schema_metadata(None))


def _fmt_score(x: float) -> str:
    return f"{float(x):.4f}"


def write_results(run_dir, evidence, report, *, meta: dict, rejects: pd.DataFrame, con=None,
                  hourly: pd.DataFrame | None = None) -> Path:
    """Write every run-folder file (docs/run-folder.md) for one run.

    Parameters
    ----------
    run_dir : path-like
    evidence : graphbuild.EvidenceGraph
    report : community.ClusterReport
    meta : dict
        The content of run.json.
    rejects : pandas.DataFrame
        The bundle's rejects (graphbuild.schema.REJECT_COLUMNS).
    con : duckdb connection, optional
        The bundle's connection, to write hourly activity and the raw events of flagged clusters.
    """
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    acc = report.accounts.copy()
    acc["score"] = acc["score"].map(_fmt_score)
    acc = acc.sort_values("account_id", ignore_index=True)
    write_csv(run / RunFiles.ACCOUNTS, acc, ACCOUNTS_CSV_COLUMNS)
    cl = report.clusters.copy()
    cl["score_s"] = cl["score"].map(_fmt_score)
    cl["reasons_s"] = cl["reasons"].map(lambda r: "; ".join(x.replace(";", ",") for x in r))
    out = cl[["cluster_id", "n_accounts", "score_s", "flagged", "reasons_s"]].copy()
    out.columns = list(CLUSTERS_CSV_COLUMNS)
    write_csv(run / RunFiles.CLUSTERS, out, CLUSTERS_CSV_COLUMNS)
    write_csv(run / RunFiles.REJECTS, rejects.reindex(columns=list(REJECT_COLUMNS)), REJECT_COLUMNS)
    write_json(run / RunFiles.RUN, meta)

    write_parquet(run / RunFiles.LINKS, evidence.links[list(LINK_COLUMNS)])
    write_parquet(run / RunFiles.ACCOUNT_IDENTIFIERS, evidence.uses)
    write_parquet(run / RunFiles.IDENTIFIERS, evidence.identifiers)
    write_parquet(run / RunFiles.TEMPLATES, evidence.templates)
    write_parquet(run / RunFiles.FEATURES, evidence.features)
    write_parquet(run / RunFiles.ACCOUNT_DETAILS, report.accounts)

    profiles = {}
    activity = pd.DataFrame(columns=["cluster_id", "hour", "requests", "signups"])
    if con is not None and len(cl):
        members = report.accounts.dropna(subset=["cluster_id"])[["account_id", "cluster_id"]]
        con.register("_members", members)
        activity = con.execute("""
            WITH r AS (SELECT m.cluster_id, date_trunc('hour', e.ts) AS hour, count(*) AS requests
                       FROM events e JOIN _members m USING (account_id) GROUP BY 1, 2),
                 s AS (SELECT m.cluster_id, date_trunc('hour', a.created_at) AS hour, count(*) AS signups
                       FROM accounts a JOIN _members m USING (account_id) GROUP BY 1, 2)
            SELECT cluster_id, hour, coalesce(r.requests, 0)::BIGINT AS requests, coalesce(s.signups, 0)::BIGINT AS signups
            FROM r FULL OUTER JOIN s USING (cluster_id, hour) ORDER BY cluster_id, hour
        """).df()
        prof = con.execute("""
            SELECT m.cluster_id, hour(e.ts) AS h, count(*) AS c FROM events e JOIN _members m USING (account_id)
            GROUP BY 1, 2 ORDER BY 1, 2
        """).df()
        for cid, grp in prof.groupby("cluster_id"):
            v = np.zeros(24)
            v[grp["h"].to_numpy()] = grp["c"].to_numpy()
            profiles[cid] = np.round(v / max(v.sum(), 1), 4).tolist()
        flagged_members = members[members["cluster_id"].isin(set(cl.loc[cl["flagged"], "cluster_id"]))]
        con.register("_flagged", flagged_members)
        # the schema's columns (the loader also stores a prompt_hash), streamed to Parquet in
        # batches: the flagged clusters' events of a large run do not fit in memory at once
        ev_cols = ", ".join(f'e."{c}"' for c in COLUMNS["events"])
        write_parquet_query(run / RunFiles.CLUSTER_EVENTS, con, f"""
            SELECT m.cluster_id, {ev_cols} FROM events e JOIN _flagged m USING (account_id)
            ORDER BY m.cluster_id, e.account_id, e.ts, e.ip, e.prompt
        """)
        con.unregister("_members")
        con.unregister("_flagged")
    write_parquet(run / RunFiles.CLUSTER_ACTIVITY, activity)

    from community.clusters import cluster_layer_shares

    layer_shares = cluster_layer_shares(evidence, report)  # one pass instead of one per cluster
    details = []
    for r in cl.itertuples():
        s = r.summary
        details.append({
            "cluster_id": r.cluster_id, "n_accounts": int(r.n_accounts), "score": float(r.score),
            "flagged": bool(r.flagged), "reasons": list(r.reasons), "stability": float(r.stability),
            "signals": {k: round(float(v), 4) for k, v in r.signals.items()},
            "figures": {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in r.raw.items()},
            "groups": {k: round(float(v), 4) for k, v in r.groups.items()},
            "members": list(r.members),
            "layer_weight": layer_shares.get(r.cluster_id, {}),
            "top_identifiers": s["top_identifiers"], "templates": s["templates"],
            "hourly_profile": profiles.get(r.cluster_id, [0.0] * 24),
            "first_seen": s["first_seen"], "last_seen": s["last_seen"],
            "created_first": s["created_first"], "created_last": s["created_last"],
        })
    write_json(run / RunFiles.CLUSTER_DETAILS, {"clusters": details})
    return run
