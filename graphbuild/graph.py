"""EvidenceGraph: per-layer account links with their evidence, features, and the igraph view."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from graphbuild.config import EvidenceConfig
from graphbuild.layers import (network_uses, payment_uses, prompt_templates, timing_uses, window_activity,
                               choose_timing_window)
from graphbuild.layers._sql import sql_strings
from graphbuild.layers.prompts import template_examples
from graphbuild.features import account_features_and_hours
from graphbuild.lockstep import lockstep_pairs
from graphbuild.pairs import expand_pairs
from graphbuild.schema import KIND_LAYER, LAYERS, NETWORK, PAYMENT, PROMPT, TIMING
from graphbuild.weighting import idf, layer_weight, pair_weight

__all__ = ["EvidenceGraph", "build_evidence", "build_evidence_with", "LocalSteps", "ENGINE_STEPS", "PUBLIC_KINDS"]

#: identifier kinds written to account_identifiers.parquet (windows are internal)
PUBLIC_KINDS = ("ip", "prefix", "signup_ip", "instrument", "template", "user_agent")


@dataclass(frozen=True)
class EvidenceGraph:
    """The account graph and everything needed to explain it.

    Attributes
    ----------
    config : EvidenceConfig
    accounts : numpy.ndarray
        Account ids sorted; vertex ``i`` of :meth:`graph` is ``accounts[i]``.
    links : pandas.DataFrame
        ``a, b`` (vertex ids), ``account_a, account_b, layer, weight, evidence_count, first_seen,
        last_seen`` — one row per linked pair per layer.
    uses : pandas.DataFrame
        ``account_id, kind, identifier, n_events, first_seen, last_seen`` for the public kinds,
        sorted by account, kind and identifier. The three text columns are categoricals (their
        categories sorted), so a million accounts' ~15M rows hold each text once; group them with
        ``observed=True``.
    identifiers : pandas.DataFrame
        ``kind, identifier, layer, n_accounts, pair_weight, is_hub, instrument_type`` for identifiers
        with ≥ 2 sharers (``instrument_type``: the payments' type of a shared instrument, else None).
    templates : pandas.DataFrame
        ``template_id, skeleton, n_accounts, n_prompts, is_hub, examples``.
    features : pandas.DataFrame
        Per-account signals (graphbuild.features).
    timing_window_seconds : int
        The lockstep window actually used.
    hours : numpy.ndarray
        ``(n_accounts, 24)`` requests per UTC hour of day (for cluster-level schedules).
    """

    config: EvidenceConfig
    accounts: np.ndarray
    links: pd.DataFrame
    uses: pd.DataFrame
    identifiers: pd.DataFrame
    templates: pd.DataFrame
    features: pd.DataFrame
    timing_window_seconds: int
    version: str = ""
    hours: np.ndarray | None = None
    _index: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_accounts(self) -> int:
        return len(self.accounts)

    def vertex(self, account_id: str) -> int:
        """Vertex index of an account id."""
        if not self._index:
            self._index.update({a: i for i, a in enumerate(self.accounts)})
        return self._index[account_id]

    def combined(self, layers=None) -> pd.DataFrame:
        """Pairs with the sum of their layer weights over ``layers`` (default: all built)."""
        links = self.links if layers is None else self.links[self.links["layer"].isin(list(layers))]
        if links.empty:
            return pd.DataFrame({"a": np.array([], "i8"), "b": np.array([], "i8"), "weight": np.array([], "f8")})
        return links.groupby(["a", "b"], sort=True, as_index=False)["weight"].sum()

    def graph(self, layers=None):
        """The combined weighted igraph.Graph (edge attribute ``weight``; vertex attribute ``name``)."""
        import igraph as ig

        c = self.combined(layers)
        g = ig.Graph(n=self.n_accounts, edges=np.column_stack([c["a"].to_numpy(), c["b"].to_numpy()]).tolist(),
                     directed=False)
        g.es["weight"] = c["weight"].astype(float).tolist()
        g.vs["name"] = list(self.accounts)
        return g


def _ts(sec: pd.Series) -> pd.Series:
    return pd.to_datetime(sec.astype("int64"), unit="s")


def _hour_entropy(hours: np.ndarray) -> np.ndarray:
    """Normalised hour-of-day entropy (0 = one hour, 1 = uniform) per row of an (n, 24) count array."""
    c = hours.astype(np.float64)
    tot = c.sum(axis=1, keepdims=True)
    p = np.divide(c, tot, out=np.zeros_like(c), where=tot > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / np.log(24)
    return np.round(h, 12)


def _sharer_pair_weight(is_template: np.ndarray, beta: np.ndarray, k: np.ndarray, n_accounts: int) -> np.ndarray:
    """Weight one pair of an identifier's ``k`` sharers gets from it (``beta``: kind weight × factor).

    Resource allocation for shared resources; templates are behaviour, weighed by rarity and use.
    """
    return np.where(is_template, beta, pair_weight(1.0, k) * beta) * idf(k, n_accounts)


def _insert_uses(con, frame) -> None:
    """Append a layer's uses returned as a DataFrame (the Spark engine) to the ``_uses`` table."""
    if frame is None or not len(frame):
        return
    con.register("_uses_df", frame)
    try:
        con.execute("INSERT INTO _uses BY NAME SELECT * FROM _uses_df")
    finally:
        con.unregister("_uses_df")


class _Stages:
    """Wall time and peak resident memory per stage, for benchmarks (Linux; memory 0 elsewhere)."""

    def __init__(self, out: dict | None):
        self.out = out
        self.name = None

    @staticmethod
    def _reset_peak() -> None:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass

    @staticmethod
    def _peak_mb() -> float:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return 0.0

    def start(self, name: str) -> None:
        if self.out is None:
            return
        import time

        self.stop()
        self.name, self.t0 = name, time.perf_counter()
        self._reset_peak()

    def stop(self) -> None:
        if self.out is None or self.name is None:
            return
        import time

        self.out[self.name] = {"seconds": round(time.perf_counter() - self.t0, 3), "peak_rss_mb": round(self._peak_mb(), 1)}
        self.name = None


#: the steps an engine may run elsewhere (graphbuild.spark_engine), by name
ENGINE_STEPS = ("network_uses", "payment_uses", "prompt_templates", "timing_uses", "expand_pairs")


class LocalSteps:
    """The DuckDB / NumPy implementations of :data:`ENGINE_STEPS` (the ``duckdb`` engine)."""

    network_uses = staticmethod(network_uses)
    payment_uses = staticmethod(payment_uses)
    prompt_templates = staticmethod(prompt_templates)
    timing_uses = staticmethod(timing_uses)
    expand_pairs = staticmethod(expand_pairs)


def build_evidence(bundle, config: EvidenceConfig | None = None, *, progress: bool = False,
                   version: str = "", stats: dict | None = None, engine: str = "duckdb") -> EvidenceGraph:
    """Build the four-layer evidence graph of a loaded bundle.

    Parameters
    ----------
    bundle : graphbuild.Bundle
        A loaded bundle (its DuckDB connection holds typed ``accounts``, ``events``, ``payments``).
    config : EvidenceConfig, optional
    progress : bool
        Show a progress bar over the stages.
    stats : dict, optional
        When given, filled with ``{stage: {"seconds", "peak_rss_mb"}}`` (benchmarks).
    engine : {"duckdb", "spark"}
        Where identifier extraction and pair projection run (graphbuild.engine); ``"spark"``
        gives the same graph from the active or a local SparkSession (graphbuild.spark_engine).

    Returns
    -------
    EvidenceGraph
    """
    if engine != "duckdb":  # same stages, heavy steps on Spark
        from graphbuild.spark_engine import build_evidence_spark

        return build_evidence_spark(bundle, config, progress=progress, version=version, stats=stats, engine=engine)
    return build_evidence_with(bundle, LocalSteps, config, progress=progress, version=version, stats=stats)


def build_evidence_with(bundle, steps, config: EvidenceConfig | None = None, *, progress: bool = False,
                        version: str = "", stats: dict | None = None) -> EvidenceGraph:
    """:func:`build_evidence` with the :data:`ENGINE_STEPS` taken from ``steps``.

    ``steps`` has one attribute per name of :data:`ENGINE_STEPS`, each with the signature of the
    graphbuild function of that name (:class:`LocalSteps` holds those); an engine passes its own
    (graphbuild.spark_engine.SparkOps) and gets the same EvidenceGraph.
    """
    from tqdm.auto import tqdm

    config = config or EvidenceConfig()
    st = _Stages(stats)
    st.start("network")
    con = bundle.con
    stages = ["network", "payment", "prompt", "timing", "links", "features"]
    bar = tqdm(total=len(stages), desc="evidence", disable=not progress, leave=False)

    # accounts numbered once; every later table carries the integer vertex, not the id string
    con.execute("""CREATE OR REPLACE TEMP TABLE _acc AS
                   SELECT account_id, CAST(row_number() OVER (ORDER BY account_id) - 1 AS INTEGER) AS acc
                   FROM accounts""")
    accounts = con.execute("SELECT account_id FROM _acc ORDER BY acc").df()["account_id"].to_numpy(dtype=object)
    n_acc = len(accounts)
    # identifier uses stay in DuckDB; only integer columns of shared identifiers reach NumPy
    con.execute("""CREATE OR REPLACE TEMP TABLE _uses (account_id VARCHAR, kind VARCHAR, identifier VARCHAR,
                   n_events BIGINT, first BIGINT, last BIGINT, factor DOUBLE)""")
    # network uses are always read: the ip_prefix table is needed by features even when ablated
    _insert_uses(con, steps.network_uses(con, ip_window_hours=config.ip_window_hours, into="_uses"))
    bar.update()
    st.start("payment")
    if PAYMENT in config.layers:
        _insert_uses(con, steps.payment_uses(con, into="_uses"))
    bar.update()
    st.start("prompt")
    tpl_uses, templates = steps.prompt_templates(con, perms=config.minhash_perms, rows=config.lsh_rows,
                                           threshold=config.template_jaccard)
    _insert_uses(con, tpl_uses)  # templates describe accounts even when the layer is ablated
    # per template its sharers and prompts; the per-account frame (~7M rows at 1M accounts) then goes
    tk = tpl_uses.groupby("identifier").agg(n_accounts=("account_id", "nunique"), n_prompts=("n_events", "sum"))
    del tpl_uses
    bar.update()
    st.start("timing")
    window = choose_timing_window(con, target_per_window=config.timing_target_per_window,
                                  fixed=config.timing_window_seconds)
    activity, lockstep_info = None, {}
    if TIMING in config.layers:
        _insert_uses(con, steps.timing_uses(con, window_seconds=window, signup_window_hours=config.signup_window_hours,
                                      into="_uses"))
        activity = window_activity(con, window_seconds=window)
    bar.update()
    st.start("weights")

    live = [k for k, layer in KIND_LAYER.items() if layer in config.layers and k != "time_window"]
    kinds = sorted(set(live) | {"template"})
    kind_code = {k: i for i, k in enumerate(kinds)}
    # identifiers numbered in (kind, identifier) order; share of the account's activity per use:
    # event identifiers over its requests, an IP-window co-use inherits its IP's share,
    # instruments over its payments, sign-up identifiers 1 (graphbuild.weighting)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _ids AS
        SELECT kind, identifier, k, factor, CAST(row_number() OVER (ORDER BY kind, identifier) - 1 AS INTEGER) AS ident
        FROM (SELECT kind, identifier, count(*) AS k, max(coalesce(factor, 1.0)) AS factor FROM _uses
              WHERE kind IN ({sql_strings(live)}) GROUP BY kind, identifier)
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _u AS
        SELECT a.acc, u.kind, u.identifier, u.n_events, u.first, u.last, coalesce(u.factor, 1.0) AS factor, i.k, i.ident
        FROM _uses u JOIN _acc a USING (account_id) JOIN _ids i USING (kind, identifier)
    """)
    con.execute("DROP TABLE _uses")
    cases = " ".join(f"WHEN '{k}' THEN {i}" for k, i in kind_code.items())
    # rows of shared identifiers only, kept in DuckDB and read one layer at a time (at 1M accounts
    # all layers' rows together were ~2.5 GB of NumPy); expand_pairs orders them itself
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _sh AS
        WITH req AS (SELECT a.acc, count(*)::DOUBLE AS n FROM events e JOIN _acc a USING (account_id) GROUP BY a.acc),
        pay AS (SELECT acc, sum(n_events)::DOUBLE AS n FROM _u WHERE kind = 'instrument' GROUP BY acc),
        ip AS (SELECT u.acc, u.identifier AS ip,
                      least(greatest(u.n_events::DOUBLE / greatest(coalesce(req.n, 0.0), 1.0), 0.0), 1.0) AS share
               FROM _u u LEFT JOIN req USING (acc) WHERE u.kind = 'ip' AND u.k >= 2)
        SELECT u.acc, u.ident, CAST(CASE u.kind {cases} END AS TINYINT) AS kind, CAST(u.k AS INTEGER) AS k, u.factor,
               least(greatest(CASE WHEN u.kind IN ('ip', 'prefix', 'template', 'user_agent')
                                       THEN u.n_events::DOUBLE / greatest(coalesce(req.n, 0.0), 1.0)
                                   WHEN u.kind = 'instrument' THEN u.n_events::DOUBLE / greatest(coalesce(pay.n, 0.0), 1.0)
                                   WHEN u.kind = 'ip_window' THEN coalesce(ip.share, 0.0)
                                   ELSE 1.0 END, 0.0), 1.0) AS share,
               u.first, u.last
        FROM _u u LEFT JOIN req USING (acc) LEFT JOIN pay USING (acc)
        LEFT JOIN ip ON u.kind = 'ip_window' AND ip.acc = u.acc AND ip.ip = split_part(u.identifier, '|', 1)
        WHERE u.k >= 2
    """)
    kind_w = np.array([config.kind_weights.get(k, 0.0) for k in kinds])

    def layer_rows(codes: list[int]) -> dict:
        """The shared rows of some identifier kinds, with the weight one pair of sharers gets from each."""
        r = con.execute(f"SELECT * FROM _sh WHERE kind IN ({', '.join(map(str, codes)) or '-1'})").fetchnumpy()
        r = {c: np.asarray(v) for c, v in r.items()}
        beta = kind_w[r["kind"].astype(np.int64)] * r["factor"]
        r["pair_w"] = _sharer_pair_weight(r["kind"] == kind_code["template"], beta, r["k"], n_acc)
        return r

    link_parts, pairs = [], None
    for layer in config.layers:
        st.start(f"links:{layer}")
        codes = [kind_code[k] for k in kinds if KIND_LAYER[k] == layer and k in live]
        sh = layer_rows(codes)
        pairs = steps.expand_pairs(sh["acc"], sh["ident"], sh["pair_w"], sh["first"], sh["last"],
                             hub_cap=config.hub_cap, share=sh["share"], min_contribution=config.min_link_weight,
                             sample_above=config.pair_sample_above)
        del sh
        if layer == TIMING and activity is not None:
            # above the pair budget, lockstep is counted for pairs other evidence links, and for
            # pairs MinHash/LSH finds over the accounts' window sets (graphbuild.lockstep)
            cand_a = np.concatenate([p["a"].to_numpy() for p in link_parts] + [pairs["a"].to_numpy()])
            cand_b = np.concatenate([p["b"].to_numpy() for p in link_parts] + [pairs["b"].to_numpy()])
            co = lockstep_pairs(activity["acc"], activity["win"], activity["first"], activity["last"],
                                n_accounts=n_acc, window_seconds=window, min_common=config.timing_min_common,
                                kind_weight=config.kind_weights.get("time_window", 1.0), hub_cap=config.hub_cap,
                                candidates=(cand_a, cand_b), pair_budget=config.lockstep_pair_budget,
                                info=lockstep_info)
            del cand_a, cand_b
            pairs = pd.concat([pairs, co], ignore_index=True).groupby(["a", "b"], sort=True, as_index=False).agg(
                raw=("raw", "sum"), count=("count", "sum"), first=("first", "min"), last=("last", "max"))
        if pairs.empty:
            continue
        pairs = pairs[layer_weight(pairs["raw"].to_numpy()) >= config.min_link_weight]
        link_parts.append(pd.DataFrame({
            "a": pairs["a"].to_numpy(), "b": pairs["b"].to_numpy(),
            "account_a": accounts[pairs["a"].to_numpy()], "account_b": accounts[pairs["b"].to_numpy()],
            "layer": layer, "weight": np.round(layer_weight(pairs["raw"].to_numpy()), 6),
            "evidence_count": pairs["count"].to_numpy().astype("i8"),
            "first_seen": _ts(pairs["first"]), "last_seen": _ts(pairs["last"]),
        }))
    del activity, pairs
    con.execute("DROP TABLE _sh")
    links = pd.concat(link_parts, ignore_index=True) if link_parts else pd.DataFrame(
        columns=["a", "b", "account_a", "account_b", "layer", "weight", "evidence_count", "first_seen", "last_seen"])
    del link_parts
    links["layer"] = pd.Categorical(links["layer"], categories=list(LAYERS), ordered=True)
    links = links.sort_values(["a", "b", "layer"], ignore_index=True)
    links["layer"] = links["layer"].astype(str)
    bar.update()
    st.start("identifiers")

    # identifiers with >= 2 sharers: the weight one pair of sharers gets from each
    pub_live = [k for k in PUBLIC_KINDS if k in live]
    ids = con.execute(f"""
        SELECT kind, identifier, k AS n_accounts, factor FROM _ids
        WHERE k >= 2 AND kind IN ({sql_strings(pub_live or ['-'])}) ORDER BY kind, identifier
    """).df()
    ik = ids["n_accounts"].to_numpy()
    ib = ids["kind"].map(config.kind_weights).fillna(0.0).to_numpy() * ids["factor"].to_numpy()
    ids["pair_weight"] = _sharer_pair_weight(ids["kind"].to_numpy() == "template", ib, ik, n_acc)
    identifiers = ids[["kind", "identifier", "n_accounts", "pair_weight"]].copy()
    identifiers.insert(2, "layer", identifiers["kind"].map(KIND_LAYER))
    identifiers["is_hub"] = identifiers["n_accounts"] > config.hub_cap
    identifiers.loc[identifiers["is_hub"], "pair_weight"] = 0.0
    # the type of each shared instrument (its most common one when rows disagree), for investigators
    itype = con.execute("""
        SELECT instrument_id AS identifier, instrument_type FROM (
            SELECT instrument_id, instrument_type,
                   row_number() OVER (PARTITION BY instrument_id ORDER BY count(*) DESC, instrument_type) AS r
            FROM payments WHERE instrument_id IS NOT NULL AND instrument_type IS NOT NULL
            GROUP BY instrument_id, instrument_type)
        WHERE r = 1
    """).df() if (identifiers["kind"] == "instrument").any() else pd.DataFrame(columns=["identifier", "instrument_type"])
    t = dict(zip(itype["identifier"], itype["instrument_type"]))
    identifiers["instrument_type"] = [t.get(i) if k == "instrument" else None
                                      for k, i in zip(identifiers["kind"], identifiers["identifier"])]
    identifiers["instrument_type"] = identifiers["instrument_type"].astype(object)
    identifiers = identifiers.reset_index(drop=True)
    del ids

    # template table: sharers, hub flag and up to three example prompts
    templates = templates.set_index("template_id").join(tk, how="left").fillna({"n_accounts": 0, "n_prompts": 0})
    templates["is_hub"] = templates["n_accounts"] > config.hub_cap
    templates = templates.reset_index().rename(columns={"index": "template_id"})
    con.register("_tk", templates[["template_id", "n_accounts", "is_hub"]])
    con.execute("CREATE OR REPLACE TEMP TABLE template_k AS SELECT * FROM _tk")
    con.unregister("_tk")
    templates = templates[(templates["n_accounts"] >= 2) | (templates["n_prompts"] >= 3)]
    has_pt = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_pt_tid'").fetchall()[0][0] > 0
    if has_pt:  # the prompt layer's integer-keyed tables: examples chosen before any text is read
        examples = template_examples(con, templates["template_id"].tolist())
    else:  # a prompt_template table made elsewhere (the Spark engine)
        con.register("_tkeep", templates[["template_id"]])
        examples = con.execute("""
            SELECT template_id, list(prompt ORDER BY prompt)[1:3] AS examples FROM (
                SELECT template_id, prompt, row_number() OVER (PARTITION BY template_id ORDER BY hash(prompt), prompt) AS r
                FROM prompt_template SEMI JOIN _tkeep USING (template_id)) WHERE r <= 3 GROUP BY template_id
        """).df()
        con.unregister("_tkeep")
    templates = templates.merge(examples, on="template_id", how="left")
    templates = templates[["template_id", "skeleton", "n_accounts", "n_prompts", "is_hub", "examples"]]
    templates = templates.astype({"n_accounts": "i8", "n_prompts": "i8"}).sort_values("template_id", ignore_index=True)

    # public uses: every account's IPs, prefixes, instruments, templates, user agents. Fetched as
    # integers and held as categoricals (one copy of each account id, kind and identifier text):
    # at 1M accounts this table has ~15M rows, too many for one Python string per cell
    pub_kinds = sorted(k for k in PUBLIC_KINDS if k in kinds)
    pub_in = sql_strings(pub_kinds or ["-"])
    # identifier texts numbered in text order (DuckDB compares UTF-8 bytes, i.e. code points, as
    # Python does), so sorting the categorical sorts the text
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _pubid AS
                    SELECT identifier, CAST(row_number() OVER (ORDER BY identifier) - 1 AS INTEGER) AS icode
                    FROM (SELECT DISTINCT identifier FROM _ids WHERE kind IN ({pub_in}))""")
    id_text = con.execute("SELECT identifier FROM _pubid ORDER BY icode").fetchnumpy()["identifier"]
    kcases = " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(pub_kinds)) or "WHEN '-' THEN 0"
    pub = con.execute(f"""
        WITH m AS (SELECT i.ident, p.icode FROM _ids i JOIN _pubid p USING (identifier) WHERE i.kind IN ({pub_in}))
        SELECT u.acc, CAST(CASE u.kind {kcases} END AS TINYINT) AS kcode, m.icode, u.n_events, u.first, u.last
        FROM _u u JOIN m USING (ident) ORDER BY u.acc, u.ident
    """).fetchnumpy()
    con.execute("DROP TABLE _pubid")
    pub_uses = pd.DataFrame({
        "account_id": pd.Categorical.from_codes(np.asarray(pub["acc"], dtype=np.int32), categories=accounts),
        "kind": pd.Categorical.from_codes(np.asarray(pub["kcode"], dtype=np.int8), categories=pub_kinds),
        "identifier": pd.Categorical.from_codes(np.asarray(pub["icode"], dtype=np.int32),
                                                categories=np.asarray(id_text, dtype=object)),
        "n_events": np.asarray(pub["n_events"]).astype("i8"),
        "first_seen": _ts(pd.Series(np.asarray(pub["first"]))), "last_seen": _ts(pd.Series(np.asarray(pub["last"]))),
    })
    del pub, id_text
    con.execute("DROP TABLE _u")
    con.execute("DROP TABLE _ids")
    bar.update()
    st.start("features")

    features, hours = account_features_and_hours(con)  # one pass over the events; rows in _acc order
    # from exact integer counts, in numpy: DuckDB's parallel float sums are not bit-reproducible
    features["hours_entropy"] = _hour_entropy(hours)
    bar.update()
    st.stop()
    bar.close()
    return EvidenceGraph(config=config, accounts=accounts, links=links, uses=pub_uses, identifiers=identifiers,
                         templates=templates, features=features, timing_window_seconds=window, version=version,
                         hours=hours)
