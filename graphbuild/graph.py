"""EvidenceGraph: per-layer account links with their evidence, features, and the igraph view."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from graphbuild.config import EvidenceConfig
from graphbuild.layers import network_uses, payment_uses, prompt_templates, timing_uses, choose_timing_window
from graphbuild.features import account_features, hour_profile
from graphbuild.pairs import expand_pairs
from graphbuild.schema import KIND_LAYER, LAYERS, NETWORK, PAYMENT, PROMPT, TIMING
from graphbuild.weighting import idf, layer_weight, pair_weight

__all__ = ["EvidenceGraph", "build_evidence", "PUBLIC_KINDS"]

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
        ``account_id, kind, identifier, n_events, first_seen, last_seen`` for the public kinds.
    identifiers : pandas.DataFrame
        ``kind, identifier, layer, n_accounts, pair_weight, is_hub`` for identifiers with ≥ 2 sharers.
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


def _shares(con, uses: pd.DataFrame, acc_cat) -> np.ndarray:
    """Per use row, the share of the account's activity that the identifier carries, in [0, 1].

    Event identifiers (IPs, prefixes, templates, user agents): events with it over the account's
    requests; an IP-window co-use inherits the share of its IP; instruments: payments with it
    over the account's payments; sign-up identifiers: 1.
    """
    n_req = con.execute("SELECT account_id, count(*) AS n FROM events GROUP BY account_id").df()
    req = np.zeros(len(acc_cat.categories))
    codes = pd.Categorical(n_req["account_id"], dtype=acc_cat).codes
    req[codes[codes >= 0]] = n_req["n"].to_numpy()[codes >= 0]
    kind = uses["kind"].to_numpy()
    n_ev = uses["n_events"].to_numpy(dtype=float)
    acc = uses["acc"].to_numpy()
    share = np.ones(len(uses))
    ev_kind = np.isin(kind, ["ip", "prefix", "template", "user_agent"])
    share[ev_kind] = n_ev[ev_kind] / np.maximum(req[acc[ev_kind]], 1.0)
    pay = kind == "instrument"
    if pay.any():
        tot = uses.loc[pay].groupby("acc")["n_events"].transform("sum").to_numpy(dtype=float)
        share[pay] = n_ev[pay] / np.maximum(tot, 1.0)
    win = kind == "ip_window"
    if win.any():
        ipk = pd.Series(share[kind == "ip"], index=pd.MultiIndex.from_arrays(
            [acc[kind == "ip"], uses["identifier"].to_numpy()[kind == "ip"].astype(str)]))
        ip_of = pd.Series(uses["identifier"].to_numpy()[win].astype(str)).str.rsplit("|", n=1).str[0]
        look = ipk.reindex(pd.MultiIndex.from_arrays([acc[win], ip_of.to_numpy()]))
        share[win] = look.fillna(0.0).to_numpy()
    return np.clip(share, 0.0, 1.0)


def _hour_entropy(hours: np.ndarray) -> np.ndarray:
    """Normalised hour-of-day entropy (0 = one hour, 1 = uniform) per row of an (n, 24) count array."""
    c = hours.astype(np.float64)
    tot = c.sum(axis=1, keepdims=True)
    p = np.divide(c, tot, out=np.zeros_like(c), where=tot > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / np.log(24)
    return np.round(h, 12)


def _expected_cooccurrence(tw: pd.DataFrame, co: pd.DataFrame, window: int, n_accounts: int) -> np.ndarray:
    """Chance number of shared lockstep windows of each pair, given both accounts' hour-of-day profiles.

    Two accounts that both work 09:00-17:00 UTC share windows far more often than two that are
    active at random; the null model therefore spreads each account's active windows over the
    windows of the same hour of day only: ``E = sum_h n_a(h) n_b(h) / W_h``, with ``W_h`` the
    number of windows of hour ``h`` in which anyone is active.
    """
    if co.empty:
        return np.zeros(0)
    w = pd.to_numeric(tw["identifier"]).to_numpy(dtype=np.int64)
    hour = (w * int(window) // 3600) % 24
    prof = np.zeros((n_accounts, 24))
    np.add.at(prof, (tw["acc"].to_numpy(), hour), 1.0)
    w_h = np.bincount(hour[np.unique(w, return_index=True)[1]], minlength=24).astype(float)
    w_h[w_h == 0] = 1.0
    a, b = co["a"].to_numpy(), co["b"].to_numpy()
    out = np.empty(len(a))
    step = 1_000_000
    for i in range(0, len(a), step):
        out[i:i + step] = (prof[a[i:i + step]] * prof[b[i:i + step]] / w_h).sum(axis=1)
    return out


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
    from tqdm.auto import tqdm

    config = config or EvidenceConfig()
    st = _Stages(stats)
    st.start("network")
    con = bundle.con
    steps = ["network", "payment", "prompt", "timing", "links", "features"]
    bar = tqdm(total=len(steps), desc="evidence", disable=not progress, leave=False)

    accounts = con.execute("SELECT account_id FROM accounts ORDER BY account_id").df()["account_id"].to_numpy(dtype=object)
    acc_cat = pd.CategoricalDtype(categories=accounts, ordered=False)
    frames = []
    # the ip_prefix table is needed by features even when the network layer is ablated
    net = network_uses(con, ip_window_hours=config.ip_window_hours)
    if NETWORK in config.layers:
        frames.append(net)
    bar.update()
    st.start("payment")
    if PAYMENT in config.layers:
        frames.append(payment_uses(con))
    bar.update()
    st.start("prompt")
    tpl_uses, templates = prompt_templates(con, perms=config.minhash_perms, rows=config.lsh_rows,
                                           threshold=config.template_jaccard)
    if PROMPT in config.layers:
        frames.append(tpl_uses)
    bar.update()
    st.start("timing")
    window = choose_timing_window(con, target_per_window=config.timing_target_per_window,
                                  fixed=config.timing_window_seconds)
    if TIMING in config.layers:
        frames.append(timing_uses(con, window_seconds=window, signup_window_hours=config.signup_window_hours))
    bar.update()
    st.start("weights")

    uses = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else \
        pd.DataFrame(columns=["account_id", "kind", "identifier", "n_events", "first", "last"])
    if "factor" not in uses:
        uses["factor"] = 1.0
    uses["factor"] = uses["factor"].fillna(1.0)
    uses["acc"] = pd.Series(pd.Categorical(uses["account_id"], dtype=acc_cat)).cat.codes.to_numpy()
    uses = uses[uses["acc"] >= 0]
    # identifier index in (kind, identifier) order, without building concatenated key strings
    uses["identifier"] = uses["identifier"].astype(str)
    uses["ident"] = uses.groupby(["kind", "identifier"], sort=True).ngroup().to_numpy()
    k = uses.groupby("ident")["acc"].transform("size").to_numpy()
    uses["k"] = k
    beta = uses["kind"].map(config.kind_weights).fillna(0.0).to_numpy() * uses["factor"].to_numpy()
    # resource allocation for shared resources; templates are behaviour, weighed by rarity and use
    is_tpl = (uses["kind"] == "template").to_numpy()
    uses["pair_w"] = np.where(is_tpl, beta, pair_weight(1.0, k) * beta) * idf(k, len(accounts))
    uses["share"] = _shares(con, uses, acc_cat)

    link_parts = []
    for layer in config.layers:
        st.start(f"links:{layer}")
        lu = uses[uses["kind"].map(KIND_LAYER) == layer]
        ra = lu[lu["kind"] != "time_window"]
        pairs = expand_pairs(ra["acc"].to_numpy(), ra["ident"].to_numpy(), ra["pair_w"].to_numpy(),
                             ra["first"].to_numpy(), ra["last"].to_numpy(), hub_cap=config.hub_cap,
                             share=ra["share"].to_numpy(), min_contribution=config.min_link_weight,
                             sample_above=config.pair_sample_above)
        if layer == TIMING:
            tw = lu[lu["kind"] == "time_window"]
            co = expand_pairs(tw["acc"].to_numpy(), tw["ident"].to_numpy(), np.ones(len(tw)),
                              tw["first"].to_numpy(), tw["last"].to_numpy(), hub_cap=config.hub_cap)
            co = co[co["count"] >= config.timing_min_common]
            n_win = np.bincount(tw["acc"].to_numpy(), minlength=len(accounts))
            expected = _expected_cooccurrence(tw, co, window, len(accounts))
            co = co[co["count"].to_numpy() >= 3.0 * expected].copy()
            jac = co["count"] / (n_win[co["a"]] + n_win[co["b"]] - co["count"])
            co["raw"] = config.kind_weights.get("time_window", 1.0) * jac.to_numpy()
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
    links = pd.concat(link_parts, ignore_index=True) if link_parts else pd.DataFrame(
        columns=["a", "b", "account_a", "account_b", "layer", "weight", "evidence_count", "first_seen", "last_seen"])
    links["layer"] = pd.Categorical(links["layer"], categories=list(LAYERS), ordered=True)
    links = links.sort_values(["a", "b", "layer"], ignore_index=True)
    links["layer"] = links["layer"].astype(str)
    bar.update()
    st.start("identifiers")

    shared = uses[uses["k"] >= 2]
    identifiers = shared.groupby(["kind", "identifier"], sort=True, as_index=False).agg(
        n_accounts=("k", "first"), pair_weight=("pair_w", "first"))
    identifiers.insert(2, "layer", identifiers["kind"].map(KIND_LAYER))
    identifiers["is_hub"] = identifiers["n_accounts"] > config.hub_cap
    identifiers.loc[identifiers["is_hub"], "pair_weight"] = 0.0
    identifiers = identifiers[identifiers["kind"].isin(PUBLIC_KINDS)].reset_index(drop=True)

    # template table: sharers, hub flag and up to three example prompts
    tk = tpl_uses.groupby("identifier").agg(n_accounts=("account_id", "nunique"), n_prompts=("n_events", "sum"))
    templates = templates.set_index("template_id").join(tk, how="left").fillna({"n_accounts": 0, "n_prompts": 0})
    templates["is_hub"] = templates["n_accounts"] > config.hub_cap
    templates = templates.reset_index().rename(columns={"index": "template_id"})
    con.register("_tk", templates[["template_id", "n_accounts", "is_hub"]])
    con.execute("CREATE OR REPLACE TEMP TABLE template_k AS SELECT * FROM _tk")
    con.unregister("_tk")
    examples = con.execute("""
        SELECT template_id, list(prompt ORDER BY prompt)[1:3] AS examples FROM (
            SELECT template_id, prompt, row_number() OVER (PARTITION BY template_id ORDER BY hash(prompt), prompt) AS r
            FROM prompt_template) WHERE r <= 3 GROUP BY template_id
    """).df()
    templates = templates.merge(examples, on="template_id", how="left")
    templates = templates[(templates["n_accounts"] >= 2) | (templates["n_prompts"] >= 3)]
    templates = templates[["template_id", "skeleton", "n_accounts", "n_prompts", "is_hub", "examples"]]
    templates = templates.astype({"n_accounts": "i8", "n_prompts": "i8"}).sort_values("template_id", ignore_index=True)

    pub = uses[uses["kind"].isin(PUBLIC_KINDS)]
    pub_uses = pd.DataFrame({
        "account_id": pub["account_id"].to_numpy(), "kind": pub["kind"].to_numpy(),
        "identifier": pub["identifier"].astype(str).to_numpy(), "n_events": pub["n_events"].astype("i8").to_numpy(),
        "first_seen": _ts(pub["first"]).to_numpy(), "last_seen": _ts(pub["last"]).to_numpy(),
    }).sort_values(["account_id", "kind", "identifier"], ignore_index=True)
    if PROMPT not in config.layers:  # templates still describe accounts even when not used as links
        t = tpl_uses
        extra = pd.DataFrame({"account_id": t["account_id"], "kind": "template", "identifier": t["identifier"],
                              "n_events": t["n_events"].astype("i8"), "first_seen": _ts(t["first"]),
                              "last_seen": _ts(t["last"])})
        pub_uses = pd.concat([pub_uses, extra], ignore_index=True).sort_values(
            ["account_id", "kind", "identifier"], ignore_index=True)
    bar.update()
    st.start("features")

    features = account_features(con)
    hours = hour_profile(con, accounts)
    # from exact integer counts, in numpy: DuckDB's parallel float sums are not bit-reproducible
    features["hours_entropy"] = _hour_entropy(hours)
    bar.update()
    st.stop()
    bar.close()
    return EvidenceGraph(config=config, accounts=accounts, links=links, uses=pub_uses, identifiers=identifiers,
                         templates=templates, features=features, timing_window_seconds=window, version=version,
                         hours=hours)
