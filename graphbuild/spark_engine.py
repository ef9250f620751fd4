"""Spark engine: identifier-use extraction and pair projection of the evidence graph on PySpark.

The DuckDB engine (graphbuild.layers, graphbuild.pairs) does the two heavy steps of
:func:`graphbuild.build_evidence` on one machine: scanning every event into ``(account,
identifier)`` *uses*, and projecting the uses of each shared identifier into account pairs.
This module does the same two steps on Spark DataFrames, so that a data set too large for one
machine can run them on a cluster, and the result is the *same* evidence graph:

* the bundle's typed tables are exported once to Parquet (:func:`export_parquet`; timestamps as
  integer microseconds, so Spark never re-interprets a time zone) and read by Spark;
* each layer's uses are the layer's DuckDB query written in Spark SQL, with the same rounding
  (epoch seconds rounded half to even, as DuckDB casts a DOUBLE), the same window arithmetic
  (``floor(epoch / w)``; ``time_bucket`` aligned at 2000-01-03) and the same text formats;
* per-value Python steps run the very same Python function: the IP prefix of each *distinct*
  IP through ``mapInPandas`` calling :func:`graphbuild.layers.network.ip_prefix`; the prompt
  templates by running :func:`graphbuild.layers.prompts.prompt_templates` itself on the
  *distinct* prompts (collected to the driver: the template grouping is one global
  computation over distinct texts, and its MinHash hashes with DuckDB's ``hash``, so the very
  code of the DuckDB engine is what keeps the ids bit-identical);
* pair projection: sharers are counted per identifier in Spark and single-sharer identifiers
  dropped; the rest are hashed into buckets (all uses of one identifier in one bucket), each
  bucket is expanded by the very same :func:`graphbuild.pairs.expand_pairs` in a Python
  worker (``applyInPandas``: its hub cap, pruning and sparse expansion are per identifier),
  and Spark aggregates the partial pairs per ``(a, b)`` with sum/count/min/max; the result is
  collected to pandas for the igraph stage.

Everything between and after those steps (rarity weights, activity shares, the lockstep null
model, link weights, features) is graph.py's own code, run unchanged on the driver:
:func:`build_evidence_spark` passes the Spark operations to
:func:`graphbuild.graph.build_evidence_with` in place of the DuckDB ones
(:class:`graphbuild.graph.LocalSteps`), so the two engines cannot drift apart in anything but
the SQL of the layers. See docs/spark.md for running on a cluster.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SparkOps", "build_evidence_spark", "export_parquet", "spark_expand_pairs", "PARQUET_TABLES"]

#: Tables and columns exported for Spark; ``*_us`` are epoch microseconds (BIGINT, UTC).
PARQUET_TABLES = {
    "accounts": "account_id, epoch_us(created_at) AS created_us, signup_ip",
    "events": "account_id, epoch_us(ts) AS ts_us, ip, user_agent, prompt",
    "payments": "account_id, instrument_id, instrument_type, epoch_us(ts) AS ts_us",
}

#: DuckDB's ``time_bucket`` origin for sub-month widths: 2000-01-03 00:00:00 UTC, in microseconds.
_BUCKET_ORIGIN_US = 946_857_600 * 1_000_000
_USES_COLUMNS = ["account_id", "kind", "identifier", "n_events", "first", "last"]
_SEQ = itertools.count()


def _sec(expr: str) -> str:
    """Spark SQL for DuckDB's ``epoch(ts)::BIGINT`` from epoch microseconds (half to even)."""
    return f"CAST(rint(({expr}) / 1000000D) AS BIGINT)"


def _epoch(expr: str) -> str:
    """Spark SQL for DuckDB's ``epoch(ts)`` (DOUBLE seconds) from epoch microseconds."""
    return f"(({expr}) / 1000000D)"


def export_parquet(con, folder) -> dict:
    """Write the typed ``accounts``, ``events`` and ``payments`` tables of a bundle to Parquet.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The bundle's connection (``Bundle.con``).
    folder : str or Path
        Created if needed; receives ``accounts.parquet``, ``events.parquet``, ``payments.parquet``.

    Returns
    -------
    dict of str to Path
        Table name to the file written. Columns: see :data:`PARQUET_TABLES`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for table, cols in PARQUET_TABLES.items():
        path = folder / f"{table}.parquet"
        lit = str(path).replace("'", "''")
        con.execute(f"COPY (SELECT {cols} FROM {table}) TO '{lit}' (FORMAT parquet)")
        out[table] = path
    return out


def spark_expand_pairs(spark, account, ident, pair_w, first, last, *, share=None, rows_per_bucket: int = 1_000_000,
                       **options) -> pd.DataFrame:
    """:func:`graphbuild.pairs.expand_pairs` on Spark: same arguments, same result.

    The uses go to Spark; identifiers with a single sharer are dropped there; the rest are
    hashed into buckets (every use of one identifier in the same bucket, about
    ``rows_per_bucket`` uses per bucket) and each bucket is expanded by the very same
    :func:`~graphbuild.pairs.expand_pairs` in a Python worker (``applyInPandas``), with
    ``options`` (``hub_cap``, ``min_contribution``, ``sample_above``, …) passed through
    unchanged — its hub rule, pruning and sampling are per identifier, so expanding the buckets
    separately gives the same pairs. Spark then aggregates the buckets' partial pairs per
    ``(a, b)``: ``sum(raw)``, ``sum(count)``, ``min(first)``, ``max(last)``. Sums may differ
    from the one-process engine in the last bits (another summation order).

    Returns
    -------
    pandas.DataFrame
        ``a, b, raw, count, first, last`` sorted by ``(a, b)``.
    """
    from pyspark.sql import functions as F

    from graphbuild.pairs import expand_pairs

    pdf = pd.DataFrame({"acc": np.asarray(account, dtype=np.int64), "ident": np.asarray(ident, dtype=np.int64),
                        "w": np.asarray(pair_w, dtype=np.float64), "first": np.asarray(first, dtype=np.int64),
                        "last": np.asarray(last, dtype=np.int64)})
    has_share = share is not None
    if has_share:
        pdf["share"] = np.asarray(share, dtype=np.float64)
    if len(pdf) == 0:
        z = np.array([], "i8")
        return expand_pairs(z, z, z.astype("f8"), z, z, **options)
    n_buckets = max(1, int(np.ceil(len(pdf) / max(int(rows_per_bucket), 1))))

    def expand(part: pd.DataFrame) -> pd.DataFrame:
        out = expand_pairs(part["acc"].to_numpy(), part["ident"].to_numpy(), part["w"].to_numpy(),
                           part["first"].to_numpy(), part["last"].to_numpy(),
                           share=part["share"].to_numpy() if has_share else None, **options)
        return out[["a", "b", "raw", "count", "first", "last"]].astype(
            {"a": "i8", "b": "i8", "raw": "f8", "count": "i8", "first": "i8", "last": "i8"})

    from graphbuild.engine import quiet_pyspark

    view = f"hs_pairs_{next(_SEQ)}"
    with quiet_pyspark():
        spark.createDataFrame(pdf).createOrReplaceTempView(view)
    try:
        shared = spark.sql(f"""
            SELECT *, pmod(hash(ident), {n_buckets}) AS bucket
            FROM (SELECT *, count(*) OVER (PARTITION BY ident) AS k FROM {view}) WHERE k >= 2
        """).drop("k")
        partial = shared.groupBy("bucket").applyInPandas(
            expand, "a long, b long, raw double, count long, first long, last long")
        out = (partial.groupBy("a", "b")
               .agg(F.sum("raw").alias("raw"), F.sum("count").alias("count"), F.min("first").alias("first"),
                    F.max("last").alias("last")))
        with quiet_pyspark():
            out = out.toPandas()
    finally:
        spark.catalog.dropTempView(view)
    out = out.astype({"a": "i8", "b": "i8", "raw": "f8", "count": "i8", "first": "i8", "last": "i8"})
    return out.sort_values(["a", "b"], ignore_index=True)


class SparkOps:
    """The layer queries and the pair projection of graph.py, served by Spark.

    Methods have the signatures of the DuckDB functions they stand for
    (:func:`graphbuild.layers.network_uses`, :func:`~graphbuild.layers.payment_uses`,
    :func:`~graphbuild.layers.prompt_templates`, :func:`~graphbuild.layers.timing_uses`,
    :func:`graphbuild.pairs.expand_pairs`); ``con`` is the bundle's DuckDB connection, which
    only receives the small lookup tables later stages read (``ip_prefix``, ``prompt_template``).

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
    parquet_dir : str or Path
        Folder with ``accounts.parquet``, ``events.parquet``, ``payments.parquet`` as written by
        :func:`export_parquet` (any path Spark can read: local, NFS, ``hdfs://``, ``s3a://``).
    """

    #: join events to templates by a 64-bit hash of the prompt (collisions are detected and
    #: fall back to the text); off: always by the text
    prompt_key = True

    def __init__(self, spark, parquet_dir):
        self.spark = spark
        self.prefix = f"hs{next(_SEQ)}_"
        base = str(parquet_dir).rstrip("/")
        self.views = {t: self.prefix + t for t in PARQUET_TABLES}
        _ship_package(spark)
        for t, v in self.views.items():
            spark.read.parquet(f"{base}/{t}.parquet").createOrReplaceTempView(v)
        self._cached = []

    def close(self) -> None:
        """Drop the temporary views and cached frames."""
        for df in self._cached:
            df.unpersist()
        self._cached.clear()
        for name in [t.name for t in self.spark.catalog.listTables() if t.name.startswith(self.prefix)]:
            self.spark.catalog.dropTempView(name)

    def _sql(self, query: str) -> pd.DataFrame:
        df = self.spark.sql(query).toPandas()
        return df.astype({c: "i8" for c in ("n_events", "first", "last") if c in df})

    # -- network -----------------------------------------------------------------------------
    def network_uses(self, con, *, ip_window_hours: int, into=None) -> pd.DataFrame:
        """Uses of kinds ip, ip_window, prefix, signup_ip; creates ``ip_prefix`` in ``con`` (``into``: ignored, returned)."""
        from graphbuild.layers.network import ip_prefix

        def prefixes(batches):
            for b in batches:
                yield pd.DataFrame({"ip": b["ip"], "prefix": [ip_prefix(x) for x in b["ip"]]})

        ev, acc = self.views["events"], self.views["accounts"]
        pfx = (self.spark.sql(f"SELECT DISTINCT ip FROM {ev} WHERE ip IS NOT NULL")
               .mapInPandas(prefixes, "ip string, prefix string").cache())
        self._cached.append(pfx)
        pfx.createOrReplaceTempView(self.prefix + "ip_prefix")
        table = pfx.toPandas().sort_values("ip", ignore_index=True)
        con.register("_ip_prefix_df", table)
        con.execute("CREATE OR REPLACE TEMP TABLE ip_prefix AS SELECT * FROM _ip_prefix_df")
        con.unregister("_ip_prefix_df")
        width = int(ip_window_hours) * 3600 * 1_000_000
        bucket = f"ts_us - pmod(ts_us - {_BUCKET_ORIGIN_US}L, {width}L)"
        return self._sql(f"""
            WITH ev AS (SELECT account_id, ip, ts_us FROM {ev} WHERE ip IS NOT NULL),
            shared_ip AS (SELECT ip FROM ev GROUP BY ip HAVING count(DISTINCT account_id) >= 2),
            win AS (SELECT account_id, ts_us,
                           concat(ip, '|', date_format(timestamp_micros({bucket}), "yyyy-MM-dd'T'HH")) AS identifier
                    FROM ev WHERE ip IN (SELECT ip FROM shared_ip))
            SELECT account_id, 'ip' AS kind, ip AS identifier, count(*) AS n_events,
                   {_sec('min(ts_us)')} AS `first`, {_sec('max(ts_us)')} AS `last`
            FROM ev GROUP BY account_id, ip
            UNION ALL
            SELECT account_id, 'ip_window', identifier, count(*), {_sec('min(ts_us)')}, {_sec('max(ts_us)')}
            FROM win GROUP BY account_id, identifier
            UNION ALL
            SELECT e.account_id, 'prefix', p.prefix, count(*), {_sec('min(e.ts_us)')}, {_sec('max(e.ts_us)')}
            FROM ev e JOIN {self.prefix}ip_prefix p ON e.ip = p.ip WHERE p.prefix IS NOT NULL
            GROUP BY e.account_id, p.prefix
            UNION ALL
            SELECT account_id, 'signup_ip', signup_ip, CAST(1 AS BIGINT), {_sec('created_us')}, {_sec('created_us')}
            FROM {acc} WHERE signup_ip IS NOT NULL
        """)

    # -- payment -----------------------------------------------------------------------------
    def payment_uses(self, con, *, into=None) -> pd.DataFrame:
        """Uses of kind instrument, with the instrument-type ``factor`` (``into``: ignored, returned)."""
        from graphbuild.layers.payment import TYPE_FACTOR

        cases = " ".join(f"WHEN '{t}' THEN {float(f)!r}D" for t, f in sorted(TYPE_FACTOR.items()))
        df = self._sql(f"""
            SELECT p.account_id, 'instrument' AS kind, p.instrument_id AS identifier, count(*) AS n_events,
                   {_sec('coalesce(min(p.ts_us), min(a.created_us))')} AS `first`,
                   {_sec('coalesce(max(p.ts_us), max(a.created_us))')} AS `last`,
                   max(CASE lower(coalesce(p.instrument_type, '')) {cases} ELSE 1.0D END) AS factor
            FROM {self.views['payments']} p JOIN {self.views['accounts']} a ON p.account_id = a.account_id
            WHERE p.instrument_id IS NOT NULL
            GROUP BY p.account_id, p.instrument_id
        """)
        return df.astype({"factor": "f8"})

    # -- prompts -----------------------------------------------------------------------------
    def prompt_templates(self, con, *, perms: int, rows: int, threshold: float, **kwargs):
        """Template uses and the template table; creates ``prompt_template`` in ``con``.

        The distinct prompts are collected and fingerprinted on the driver by
        :func:`graphbuild.layers.prompts.prompt_templates` itself (in a scratch in-memory
        DuckDB holding only those texts); Spark then joins every event to its templates, by
        ``xxhash64`` of the prompt (by the text itself when :attr:`prompt_key` is off or two
        distinct prompts share a hash).
        """
        import duckdb

        from graphbuild.layers.prompts import prompt_templates

        ev = self.views["events"]
        # a 64-bit key per distinct prompt, so that only (key, template id) goes back to Spark;
        # the texts themselves are the join key if two prompts ever share a key
        distinct = self.spark.sql(f"SELECT prompt, xxhash64(prompt) AS pk FROM "
                                  f"(SELECT DISTINCT prompt FROM {ev} WHERE prompt IS NOT NULL)").toPandas()
        distinct = distinct.sort_values("prompt", ignore_index=True)
        by_key = self.prompt_key and not distinct["pk"].duplicated().any()
        scratch = duckdb.connect()
        try:
            scratch.execute("SET TimeZone = 'UTC'")
            scratch.register("_prompts", distinct)
            scratch.execute("CREATE TABLE events AS SELECT CAST(NULL AS VARCHAR) AS account_id, "
                            "CAST(NULL AS TIMESTAMP) AS ts, CAST(prompt AS VARCHAR) AS prompt FROM _prompts")
            _, templates = prompt_templates(scratch, perms=perms, rows=rows, threshold=threshold, **kwargs)
            table = scratch.sql("SELECT * FROM prompt_template").to_arrow_table()
            if by_key:
                mapping = scratch.sql("SELECT DISTINCT p.pk, t.template_id FROM prompt_template t "
                                      "JOIN _prompts p ON CAST(p.prompt AS VARCHAR) = t.prompt").df()
            else:
                mapping = scratch.sql("SELECT DISTINCT prompt, template_id FROM prompt_template").df()
            scratch.unregister("_prompts")
        finally:
            scratch.close()
        con.register("_prompt_template_arrow", table)
        con.execute("CREATE OR REPLACE TEMP TABLE prompt_template AS SELECT * FROM _prompt_template_arrow")
        con.unregister("_prompt_template_arrow")
        key, key_type = ("pk", "BIGINT") if by_key else ("prompt", "STRING")
        view = self.prefix + "prompt_template"
        if len(mapping):
            self.spark.createDataFrame(mapping).createOrReplaceTempView(view)
        else:
            self.spark.sql(f"SELECT CAST(NULL AS {key_type}) AS {key}, CAST(NULL AS STRING) AS template_id "
                           "WHERE false").createOrReplaceTempView(view)
        e_key = "xxhash64(prompt)" if by_key else "prompt"
        uses = self._sql(f"""
            SELECT e.account_id, 'template' AS kind, t.template_id AS identifier, count(*) AS n_events,
                   {_sec('min(e.ts_us)')} AS `first`, {_sec('max(e.ts_us)')} AS `last`
            FROM (SELECT account_id, ts_us, {e_key} AS {key} FROM {ev} WHERE prompt IS NOT NULL) e
            JOIN {view} t ON e.{key} = t.{key}
            GROUP BY e.account_id, t.template_id
            HAVING count(DISTINCT e.{key}) >= 2
                OR (count(*) >= 2 AND NOT (t.template_id LIKE 'h%' OR t.template_id LIKE 't%'))
        """)
        return uses, templates

    # -- timing ------------------------------------------------------------------------------
    def timing_uses(self, con, *, window_seconds: int = 0, signup_window_hours: int, into=None) -> pd.DataFrame:
        """Uses of kinds signup_window, user_agent (``into``: ignored, returned).

        Lockstep window activity is read from the bundle's DuckDB tables by
        :func:`graphbuild.layers.window_activity` on the driver (integers, one row per account and
        active window).
        """
        h = int(signup_window_hours)
        ev, acc = self.views["events"], self.views["accounts"]
        return self._sql(f"""
            SELECT account_id, 'signup_window' AS kind, CAST(floor({_epoch('created_us')} / {h * 3600}) AS STRING) AS identifier,
                   CAST(1 AS BIGINT) AS n_events, {_sec('created_us')} AS `first`, {_sec('created_us')} AS `last`
            FROM {acc}
            UNION ALL
            SELECT account_id, 'user_agent', user_agent, count(*), {_sec('min(ts_us)')}, {_sec('max(ts_us)')}
            FROM {ev} WHERE user_agent IS NOT NULL GROUP BY account_id, user_agent
        """)

    # -- pairs -------------------------------------------------------------------------------
    def expand_pairs(self, account, ident, pair_w, first, last, **options) -> pd.DataFrame:
        """:func:`spark_expand_pairs` on this session (options passed through to expand_pairs)."""
        return spark_expand_pairs(self.spark, account, ident, pair_w, first, last, **options)


def _ship_package(spark) -> None:
    """Let the Python workers import graphbuild from where the driver does (local mode, shared disks).

    On a cluster whose workers do not see the driver's disk, ship the package instead
    (``pip install`` on the workers, or ``spark-submit --py-files hydrascope.zip``).
    """
    import graphbuild

    root = str(Path(graphbuild.__file__).resolve().parent.parent)
    env = spark.sparkContext.environment
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([root] + paths)


class _Counted:
    """``ops``' :data:`graphbuild.graph.ENGINE_STEPS`, counting their calls in ``calls``.

    A graph.py that stopped calling one of them (and so would run it in DuckDB) is noticed.
    """

    def __init__(self, ops: "SparkOps", calls: dict):
        self._ops, self._calls = ops, calls

    def __getattr__(self, name):
        from graphbuild.graph import ENGINE_STEPS

        if name not in ENGINE_STEPS:
            raise AttributeError(name)
        fn = getattr(self._ops, name)

        def call(*args, **kwargs):
            self._calls[name] = self._calls.get(name, 0) + 1
            return fn(*args, **kwargs)
        return call


def build_evidence_spark(bundle, config=None, *, progress: bool = False, version: str = "",
                         stats: dict | None = None, spark=None, master: str | None = "local[2]",
                         parquet_dir=None, workdir=None, engine: str = "spark"):
    """:func:`graphbuild.build_evidence` with the heavy steps on Spark; the same EvidenceGraph.

    Parameters
    ----------
    bundle : graphbuild.Bundle
    config : EvidenceConfig, optional
    progress, version, stats
        As for :func:`graphbuild.build_evidence`.
    spark : pyspark.sql.SparkSession, optional
        Default: the active session, else :func:`graphbuild.engine.get_spark` with ``master``.
        The session is left running (stop it with :func:`graphbuild.engine.stop_spark`).
    master : str or None
        Master URL for a new session (``None``: as given to ``spark-submit``).
    parquet_dir : str or Path, optional
        Where the bundle's tables already are as Parquet (:func:`export_parquet`); otherwise
        they are exported to a temporary folder under ``workdir`` and removed afterwards.
        On a cluster, either must be a location every executor can read.
    workdir : str or Path, optional
        Parent of the temporary export (default: the system temp folder).
    engine : str
        Only ``"spark"``.

    Returns
    -------
    graphbuild.EvidenceGraph
    """
    from graphbuild.engine import check_engine, get_spark, quiet_pyspark
    import graphbuild.graph as graph
    from graphbuild.errors import ConfigError, HydrascopeError
    from graphbuild.schema import PAYMENT, TIMING

    if check_engine(engine) != "spark":
        raise ConfigError(f"build_evidence_spark runs the spark engine, not {engine!r}")
    spark = spark or get_spark(master)
    tmp = None
    if parquet_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="hydrascope-spark-", dir=workdir))
        parquet_dir = tmp
        export_parquet(bundle.con, tmp)
    ops = SparkOps(spark, parquet_dir)
    calls: dict = {}
    try:
        with quiet_pyspark():
            evidence = graph.build_evidence_with(bundle, _Counted(ops, calls), config, progress=progress,
                                                 version=version, stats=stats)
        layers = evidence.config.layers
        expected = {"network_uses", "prompt_templates"} | ({"expand_pairs"} if layers else set()) | (
            {"payment_uses"} if PAYMENT in layers else set()) | ({"timing_uses"} if TIMING in layers else set())
        missing = sorted(expected - set(calls))
        if missing:
            raise HydrascopeError(f"graphbuild.graph no longer calls {', '.join(missing)}: the Spark engine "
                                  "would have run them in DuckDB; update graphbuild.spark_engine")
        return evidence
    finally:
        ops.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
