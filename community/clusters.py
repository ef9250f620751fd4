"""ClusterReport: scored, explained clusters and per-account scores for one partition."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from community.explain import evidence_summary, reasons, summary_lookups
from community.leiden import Partition
from community.scoring import ScoringConfig, account_groups, cluster_signals, score_clusters

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


def _embeddedness(evidence, membership: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    c = evidence.combined()
    n = evidence.n_accounts
    a, b, w = c["a"].to_numpy(), c["b"].to_numpy(), c["weight"].to_numpy()
    total = np.bincount(a, w, n) + np.bincount(b, w, n)
    same = (membership[a] == membership[b]) & (membership[a] >= 0)
    inside = np.bincount(a[same], w[same], n) + np.bincount(b[same], w[same], n)
    emb = np.divide(inside, total, out=np.zeros(n), where=total > 0)
    return emb, c


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


def template_concentration(evidence, membership: np.ndarray, n_clusters: int, *, min_share: float = 0.3) -> np.ndarray:
    """Per cluster, the share of its prompts sent through templates used by ≥ ``min_share`` of its members.

    A prompt may carry several fingerprints (near-duplicate group ``d…``, opening ``h…``,
    closing ``t…``); per account the share is summed within each fingerprint family, capped at 1,
    and the largest family counts, so one prompt is never counted twice. Accounts are weighted by
    their requests.
    """
    out = np.zeros(n_clusters)
    u = evidence.uses
    u = u[u["kind"] == "template"]
    if u.empty or n_clusters == 0:
        return out
    acc = pd.Categorical(u["account_id"], categories=evidence.accounts).codes
    ok = acc >= 0
    acc = acc[ok]
    tid = u["identifier"].to_numpy()[ok].astype(str)
    c = membership[acc]
    inside = c >= 0
    acc, tid, c = acc[inside], tid[inside], c[inside]
    n_ev = u["n_events"].to_numpy()[ok][inside].astype(float)
    req = evidence.features["n_requests"].to_numpy(dtype=float)
    df = pd.DataFrame({"c": c, "acc": acc, "tid": tid, "fam": [t[:1] for t in tid],
                       "share": n_ev / np.maximum(req[acc], 1.0)})
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
    cid = report.accounts["cluster_id"].to_numpy(dtype=object)
    l = evidence.links
    out = {c: {} for c in report.clusters["cluster_id"]}
    if l.empty:
        return out
    ca, cb = cid[l["a"].to_numpy()], cid[l["b"].to_numpy()]
    same = (ca == cb) & pd.notna(ca)
    if not same.any():
        return out
    df = pd.DataFrame({"c": ca[same], "layer": l["layer"].to_numpy()[same], "w": l["weight"].to_numpy()[same]})
    per = df.groupby(["c", "layer"], sort=True)["w"].sum()
    tot = per.groupby(level=0).sum()
    for (c, layer), w in per.items():
        if tot[c] > 0:
            out.setdefault(c, {})[layer] = round(float(w / tot[c]), 4)
    return out


def _pooled_hours(evidence, membership: np.ndarray, n_clusters: int) -> np.ndarray | None:
    hours = getattr(evidence, "hours", None)
    if hours is None or n_clusters == 0:
        return None
    out = np.zeros((n_clusters, 24))
    inside = membership >= 0
    np.add.at(out, membership[inside], hours[inside])
    return out


def score(evidence, partition: Partition, config: ScoringConfig | None = None) -> ClusterReport:
    """Score, flag and explain every cluster of ``partition``.

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
    emb, _ = _embeddedness(evidence, m)
    tden = _timing_density(evidence, m, k)
    feats = evidence.features
    conc = template_concentration(evidence, m, k)
    pooled = _pooled_hours(evidence, m, k)
    infos, summaries = [], []
    lookups = summary_lookups(evidence)
    u = evidence.uses
    ucode = pd.Categorical(u["account_id"], categories=evidence.accounts).codes
    ucl = np.where(ucode >= 0, m[np.maximum(ucode, 0)], -1)
    keep = ucl >= 0
    uses_by = dict(iter(u[keep].groupby(ucl[keep], sort=True))) if keep.any() else {}
    order = np.argsort(m, kind="stable")
    bounds = np.searchsorted(m[order], np.arange(k + 1))
    for c in range(k):
        members = order[bounds[c]:bounds[c + 1]]
        info = cluster_signals(feats, members, timing_density=tden[c], burst_hours=config.burst_hours,
                               template_concentration=conc[c], hours=None if pooled is None else pooled[c])
        summ = evidence_summary(evidence, members, uses=uses_by.get(c, u.iloc[:0]), lookups=lookups)
        summ["burst_seconds"] = config.burst_hours * 3600
        infos.append(info)
        summaries.append(summ)
    scores = score_clusters([i["groups"] for i in infos], config)
    ids = [f"C{c + 1:04d}" for c in range(k)]
    clusters = pd.DataFrame({
        "cluster_id": ids, "index": np.arange(k), "n_accounts": [i["raw"]["n_accounts"] for i in infos],
        "score": np.round(scores, 4), "flagged": scores >= config.threshold,
        "reasons": [reasons(i, s) for i, s in zip(infos, summaries)],
        "signals": [i["signals"] for i in infos], "raw": [i["raw"] for i in infos],
        "groups": [i["groups"] for i in infos],
        "stability": np.round(partition.stability, 4) if k else np.zeros(0),
        "summary": summaries,
        "members": [sorted(evidence.accounts[order[bounds[c]:bounds[c + 1]]].tolist()) for c in range(k)],
    })
    clusters = clusters.sort_values(["score", "cluster_id"], ascending=[False, True], ignore_index=True)

    # individual scores for accounts outside clusters: the same model on the account alone
    acc_score = np.zeros(evidence.n_accounts)
    flagged = np.zeros(evidence.n_accounts, dtype=bool)
    cl_score = dict(zip(clusters["index"], clusters["score"]))
    cl_flag = dict(zip(clusters["index"], clusters["flagged"]))
    inside = m >= 0
    acc_score[inside] = np.array([cl_score[c] for c in m[inside]]) * (0.5 + 0.5 * emb[inside])
    flagged[inside] = np.array([cl_flag[c] for c in m[inside]], dtype=bool)
    outside = np.nonzero(~inside)[0]
    if len(outside):
        solo = account_groups(feats.iloc[outside])
        acc_score[outside] = 0.5 * score_clusters(solo, config)
    accounts = pd.DataFrame({
        "account_id": evidence.accounts,
        "cluster_id": [ids[c] if c >= 0 else None for c in m],
        "score": np.round(acc_score, 4), "flagged": flagged, "embeddedness": np.round(emb, 4),
    })
    return ClusterReport(clusters=clusters, accounts=accounts, partition=partition, config=config)
