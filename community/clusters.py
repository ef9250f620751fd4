"""ClusterReport: scored, explained clusters and per-account scores for one partition."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from community.explain import evidence_summaries, reasons, summary_lookups
from community.leiden import _COMBINED, Partition, combined_links
from community.scoring import ScoringConfig, account_groups, cluster_signals_many, score_clusters

__all__ = ["ClusterReport", "score", "template_concentration", "cluster_layer_shares"]


@dataclass(frozen=True)
class ClusterReport:
    """Clusters with scores, flags, reasons and evidence summaries, and per-account scores.

    Attributes
    ----------
    clusters : pandas.DataFrame
        One row per cluster: ``cluster_id, index, n_accounts, score, flagged, reasons`` (list),
        ``signals`` (dict), ``raw`` (dict), ``groups`` (dict), ``stability``, ``summary`` (dict),
        ``members`` (list of account ids). Ordered by score desc, then id.
    accounts : pandas.DataFrame
        One row per account in account order: ``account_id, cluster_id`` (None when in none),
        ``score, flagged, embeddedness``.
    partition : Partition
    config : ScoringConfig
    """

    clusters: pd.DataFrame
    accounts: pd.DataFrame
    partition: Partition
    config: ScoringConfig

    def with_ids(self, mapping: dict) -> "ClusterReport":
        """The same report with cluster ids renamed by ``mapping`` (old id -> new id)."""
        c = self.clusters.copy()
        c["cluster_id"] = c["cluster_id"].map(lambda x: mapping.get(x, x))
        c = c.sort_values(["score", "cluster_id"], ascending=[False, True], ignore_index=True)
        a = self.accounts.copy()
        a["cluster_id"] = a["cluster_id"].map(lambda x: mapping.get(x, x) if x is not None else None)
        return ClusterReport(clusters=c, accounts=a, partition=self.partition, config=self.config)


def _embeddedness(evidence, membership: np.ndarray) -> np.ndarray:
    """Per account, the share of its (layer-summed) link weight that stays inside its cluster."""
    n = evidence.n_accounts
    a, b, w = combined_links(evidence)
    total = np.bincount(a, w, n) + np.bincount(b, w, n)
    same = (membership[a] == membership[b]) & (membership[a] >= 0)
    inside = np.bincount(a[same], w[same], n) + np.bincount(b[same], w[same], n)
    return np.divide(inside, total, out=np.zeros(n), where=total > 0)


def _timing_density(evidence, membership: np.ndarray, n_clusters: int) -> np.ndarray:
    t = evidence.links[evidence.links["layer"] == "timing"]
    out = np.zeros(n_clusters)
    if t.empty or n_clusters == 0:
        return out
    a, b = t["a"].to_numpy(), t["b"].to_numpy()
    same = (membership[a] == membership[b]) & (membership[a] >= 0)
    sums = np.bincount(membership[a[same]], t["weight"].to_numpy()[same], n_clusters)
    sizes = np.bincount(membership[membership >= 0], minlength=n_clusters).astype(float)
    pairs = sizes * (sizes - 1) / 2
    return np.divide(sums, pairs, out=np.zeros(n_clusters), where=pairs > 0)


def template_concentration(evidence, membership: np.ndarray, n_clusters: int, *, min_share: float = 0.3,
                           account_codes: np.ndarray | None = None) -> np.ndarray:
    """Per cluster, the share of its prompts sent through templates used by ≥ ``min_share`` of its members.

    A prompt may carry several fingerprints (near-duplicate group ``d…``, opening ``h…``,
    closing ``t…``); per account the share is summed within each fingerprint family, capped at 1,
    and the largest family counts, so one prompt is never counted twice. Accounts are weighted by
    their requests. ``account_codes`` (the vertex of every row of ``evidence.uses``) may be passed
    when already computed.
    """
    out = np.zeros(n_clusters)
    u = evidence.uses
    if account_codes is None:
        account_codes = pd.Categorical(u["account_id"], categories=evidence.accounts).codes
    account_codes = np.asarray(account_codes, dtype=np.int64)
    sel = np.nonzero((u["kind"] == "template").to_numpy(dtype=bool) & (account_codes >= 0))[0]
    if len(sel) == 0 or n_clusters == 0:
        return out
    acc = account_codes[sel]
    c = membership[acc]
    inside = c >= 0
    sel, acc, c = sel[inside], acc[inside], c[inside]
    tid = u["identifier"].iloc[sel].astype(str).reset_index(drop=True)
    tcode, tuniq = pd.factorize(tid)
    fam_of = pd.Series(np.asarray(pd.Index(tuniq).astype(str), dtype=object)).str[:1]
    # families numbered in name order, so the groupby below sums in the order a groupby on names would
    fcode = pd.factorize(fam_of, sort=True)[0][tcode] if len(tuniq) else np.zeros(0, np.int64)
    n_ev = u["n_events"].to_numpy()[sel].astype(float)
    req = evidence.features["n_requests"].to_numpy(dtype=float)
    df = pd.DataFrame({"c": c, "acc": acc, "tid": tcode, "fam": fcode, "share": n_ev / np.maximum(req[acc], 1.0)})
    size = np.bincount(membership[membership >= 0], minlength=n_clusters)
    users = df.groupby(["c", "tid"])["acc"].transform("size").to_numpy()
    df = df[(users >= 2) & (users >= min_share * size[df["c"].to_numpy()])]
    if df.empty:
        return out
    per = df.groupby(["c", "acc", "fam"])["share"].sum().clip(upper=1.0).groupby(level=[0, 1]).max().reset_index()
    per["w"] = req[per["acc"].to_numpy()] * per["share"]
    num = np.bincount(per["c"].to_numpy(), per["w"].to_numpy(), n_clusters)
    den = np.bincount(membership[membership >= 0], req[membership >= 0], n_clusters)
    return np.divide(num, den, out=np.zeros(n_clusters), where=den > 0)


def cluster_layer_shares(evidence, report: "ClusterReport") -> dict:
    """Per cluster id, the share of its internal link weight carried by each layer (one pass).

    Returns ``{cluster_id: {layer: share}}`` with shares rounded to 4 digits; clusters without
    internal links map to ``{}``.
    """
    out = {c: {} for c in report.clusters["cluster_id"]}
    links = evidence.links
    if links.empty:
        return out
    # cluster ids numbered in name order: the groupby below then sums as one on the names would
    codes, names = pd.factorize(report.accounts["cluster_id"], sort=True, use_na_sentinel=True)
    ca, cb = codes[links["a"].to_numpy()], codes[links["b"].to_numpy()]
    same = (ca == cb) & (ca >= 0)
    if not same.any():
        return out
    lcode, luniq = pd.factorize(links["layer"])
    luniq = np.asarray(pd.Index(luniq).astype(str), dtype=object)
    layers = np.sort(luniq)
    rank = np.searchsorted(layers, luniq)  # layers in name order, as a groupby on the names sorts them
    df = pd.DataFrame({"c": ca[same], "layer": rank[lcode[same]], "w": links["weight"].to_numpy()[same]})
    per = df.groupby(["c", "layer"], sort=True)["w"].sum()
    tot = per.groupby(level=0).sum()
    tot = tot.reindex(range(len(names))).to_numpy()
    names = np.asarray(names, dtype=object)
    for (c, li), w in zip(per.index.tolist(), per.to_numpy().tolist()):
        t = tot[c]
        if t > 0:
            out.setdefault(names[c], {})[layers[li]] = round(float(w / t), 4)
    return out


def _pooled_hours(evidence, membership: np.ndarray, n_clusters: int) -> np.ndarray | None:
    hours = getattr(evidence, "hours", None)
    if hours is None or n_clusters == 0:
        return None
    out = np.zeros((n_clusters, 24))
    inside = membership >= 0
    np.add.at(out, membership[inside], hours[inside])
    return out


def _account_codes(evidence) -> np.ndarray:
    """Vertex of every row of ``evidence.uses`` (-1 for an account not in ``evidence.accounts``)."""
    ids = evidence.uses["account_id"]
    if isinstance(ids.dtype, pd.CategoricalDtype):
        cats = np.asarray(ids.cat.categories.astype(str), dtype=object)
        pos = pd.Index(np.asarray(evidence.accounts, dtype=object)).get_indexer(cats)
        codes = ids.cat.codes.to_numpy(np.int64)
        return np.where(codes >= 0, pos[np.maximum(codes, 0)] if len(pos) else -1, -1)
    return pd.Categorical(ids, categories=evidence.accounts).codes.astype(np.int64)


def score(evidence, partition: Partition, config: ScoringConfig | None = None) -> ClusterReport:
    """Score, flag and explain every cluster of ``partition``.

    All clusters are scored and summarised together (groupbys over clusters, no loop of
    DataFrame work per cluster); the numbers are the ones :func:`community.scoring.cluster_signals`
    and :func:`community.explain.evidence_summary` give cluster by cluster.

    Parameters
    ----------
    evidence : graphbuild.EvidenceGraph
    partition : Partition
    config : ScoringConfig, optional

    Returns
    -------
    ClusterReport
    """
    config = config or ScoringConfig()
    m = partition.membership
    k = partition.n_clusters
    emb = _embeddedness(evidence, m)
    _COMBINED.clear()  # detection's combined links were kept for this; free them
    tden = _timing_density(evidence, m, k)
    feats = evidence.features
    codes = _account_codes(evidence)
    conc = template_concentration(evidence, m, k, account_codes=codes)
    pooled = _pooled_hours(evidence, m, k)
    many = cluster_signals_many(feats, m, k, timing_density=tden, burst_hours=config.burst_hours,
                                template_concentration=conc, hours=pooled)
    summaries = evidence_summaries(evidence, m, k, account_codes=codes, lookups=summary_lookups(evidence))
    raw_cols = {name: (v.tolist()) for name, v in many["raw"].items()}
    sig_cols = {name: v.tolist() for name, v in many["signals"].items()}
    grp_cols = {name: v.tolist() for name, v in many["groups"].items()}
    infos = []
    for c in range(k):
        infos.append({"raw": {name: v[c] for name, v in raw_cols.items()},
                      "signals": {name: v[c] for name, v in sig_cols.items()},
                      "groups": {name: v[c] for name, v in grp_cols.items()}})
        summaries[c]["burst_seconds"] = config.burst_hours * 3600
    # the same association as score_clusters on a list of dicts: bias + (w1·g1 + w2·g2 + ...)
    total = np.zeros(k)
    for name, v in many["groups"].items():
        total = total + config.group_weights.get(name, 0.0) * np.asarray(v, dtype=float)
    scores = 1.0 / (1.0 + np.exp(-(config.bias + total))) if k else np.zeros(0)
    ids = [f"C{c + 1:04d}" for c in range(k)]
    order = np.argsort(m, kind="stable")
    order = order[m[order] >= 0]
    bounds = np.searchsorted(m[order], np.arange(k + 1))
    names = np.asarray(evidence.accounts, dtype=object)[order].tolist()
    clusters = pd.DataFrame({
        "cluster_id": ids, "index": np.arange(k), "n_accounts": raw_cols["n_accounts"] if k else [],
        "score": np.round(scores, 4), "flagged": scores >= config.threshold,
        "reasons": [reasons(i, s) for i, s in zip(infos, summaries)],
        "signals": [i["signals"] for i in infos], "raw": [i["raw"] for i in infos],
        "groups": [i["groups"] for i in infos],
        "stability": np.round(partition.stability, 4) if k else np.zeros(0),
        "summary": summaries,
        "members": [sorted(names[bounds[c]:bounds[c + 1]]) for c in range(k)],
    })
    clusters = clusters.sort_values(["score", "cluster_id"], ascending=[False, True], ignore_index=True)

    # individual scores for accounts outside clusters: the same model on the account alone
    n = evidence.n_accounts
    acc_score = np.zeros(n)
    flagged = np.zeros(n, dtype=bool)
    cl_score = np.zeros(k)
    cl_flag = np.zeros(k, dtype=bool)
    cl_score[clusters["index"].to_numpy(np.int64)] = clusters["score"].to_numpy(dtype=float)
    cl_flag[clusters["index"].to_numpy(np.int64)] = clusters["flagged"].to_numpy(dtype=bool)
    inside = m >= 0
    acc_score[inside] = cl_score[m[inside]] * (0.5 + 0.5 * emb[inside])
    flagged[inside] = cl_flag[m[inside]]
    outside = np.nonzero(~inside)[0]
    if len(outside):
        solo = account_groups(feats.iloc[outside])
        acc_score[outside] = 0.5 * score_clusters(solo, config)
    cid = np.full(n, None, dtype=object)
    if k:
        cid[inside] = np.asarray(ids, dtype=object)[m[inside]]
    accounts = pd.DataFrame({
        "account_id": evidence.accounts,
        "cluster_id": cid.tolist(),
        "score": np.round(acc_score, 4), "flagged": flagged, "embeddedness": np.round(emb, 4),
    })
    return ClusterReport(clusters=clusters, accounts=accounts, partition=partition, config=config)
