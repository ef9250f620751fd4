"""Evaluation against labelled campaigns: precision, recall, F1, per-campaign recall, benign orgs hit."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["evaluate", "layer_purity"]


def evaluate(accounts: pd.DataFrame, labels: pd.DataFrame, *, orgs: pd.Series | None = None) -> dict:
    """Score ``flagged`` against campaign labels.

    Parameters
    ----------
    accounts : DataFrame
        ``account_id, flagged`` (bool or "true"/"false"), optionally ``cluster_id``.
    labels : DataFrame
        ``account_id, campaign_id``; unlabelled accounts are benign.
    orgs : Series, optional
        account_id -> declared org_id; benign organisations with a flagged member are listed.

    Examples
    --------
    >>> acc = pd.DataFrame({"account_id": list("abcd"), "flagged": [True, True, False, False]})
    >>> lab = pd.DataFrame({"account_id": ["a", "c"], "campaign_id": ["X", "X"]})
    >>> r = evaluate(acc, lab); (r["precision"], r["recall"], r["per_campaign"]["X"]["recall"])
    (0.5, 0.5, 0.5)
    """
    flagged = accounts["flagged"].map(lambda v: v is True or str(v).lower() == "true")
    df = pd.DataFrame({"account_id": accounts["account_id"].astype(str), "flagged": flagged.to_numpy()})
    lab = labels.drop_duplicates("account_id").set_index("account_id")["campaign_id"].astype(str)
    df["campaign"] = df["account_id"].map(lab)
    pos = df["campaign"].notna()
    tp = int((df["flagged"] & pos).sum())
    fp = int((df["flagged"] & ~pos).sum())
    fn = int((~df["flagged"] & pos).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per = {}
    for cid, g in df[pos].groupby("campaign", sort=True):
        per[cid] = {"n_accounts": int(len(g)), "flagged": int(g["flagged"].sum()),
                    "recall": round(float(g["flagged"].mean()), 4)}
    out = {"n_accounts": int(len(df)), "n_campaign_accounts": int(pos.sum()), "n_flagged": int(df["flagged"].sum()),
           "tp": tp, "fp": fp, "fn": fn, "precision": round(precision, 4), "recall": round(recall, 4),
           "f1": round(f1, 4), "per_campaign": per}
    if orgs is not None:
        o = df["account_id"].map(orgs)
        hit = df[df["flagged"] & ~pos & o.notna()]
        out["benign_orgs_flagged"] = sorted(set(hit["account_id"].map(orgs)))
        out["benign_orgs_total"] = int(o[~pos].dropna().nunique())
    return out


def layer_purity(links: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Per layer, the share of link weight inside one campaign, between benign accounts, and mixed.

    Returns a DataFrame indexed by layer with columns ``inside_campaign, benign_benign,
    campaign_benign, cross_campaign, total_weight, n_links``.
    """
    lab = labels.drop_duplicates("account_id").set_index("account_id")["campaign_id"].astype(str)
    ca, cb = links["account_a"].map(lab), links["account_b"].map(lab)
    kind = np.select(
        [ca.notna() & cb.notna() & (ca == cb), ca.isna() & cb.isna(), ca.notna() & cb.notna()],
        ["inside_campaign", "benign_benign", "cross_campaign"], default="campaign_benign")
    df = pd.DataFrame({"layer": links["layer"].to_numpy(), "kind": kind, "w": links["weight"].to_numpy()})
    t = df.pivot_table(index="layer", columns="kind", values="w", aggfunc="sum", fill_value=0.0)
    for c in ("inside_campaign", "benign_benign", "campaign_benign", "cross_campaign"):
        if c not in t:
            t[c] = 0.0
    total = t.sum(axis=1)
    out = t.div(total, axis=0).round(4)
    out["total_weight"] = total.round(2)
    out["n_links"] = df.groupby("layer").size()
    return out[["inside_campaign", "benign_benign", "campaign_benign", "cross_campaign", "total_weight", "n_links"]]
