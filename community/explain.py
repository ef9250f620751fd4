"""Explanations: the `reasons` of a cluster in investigator words, and its evidence summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["reasons", "evidence_summary", "summary_lookups", "shared_evidence"]


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"


def _span(seconds: float) -> str:
    h = seconds / 3600
    return f"{h:.0f} h" if h < 72 else f"{h / 24:.0f} days"


def reasons(info: dict, summary: dict, *, limit: int = 6) -> list[str]:
    """Short sentences naming a cluster's strongest evidence, strongest first.

    ``info`` is the output of :func:`community.scoring.cluster_signals` for the cluster and
    ``summary`` its :func:`evidence_summary`.
    """
    raw, s = info["raw"], info["signals"]
    n = raw["n_accounts"]
    cand: list[tuple[float, str]] = []
    if s["burst"] > 0:
        cand.append((s["burst"] * 2.5, f"{round(raw['burst_share'] * n)} of {n} accounts created within "
                                      f"{_span(summary.get('burst_seconds', 48 * 3600))}"))
    if s["fresh"] > 0:
        cand.append((s["fresh"] * 1.2, f"{_pct(raw['fresh_share'])} of accounts used within 24 h of sign-up"))
    if s["disposable_mail"] > 0:
        cand.append((s["disposable_mail"] * 2, f"{_pct(raw['disposable_mail_share'])} sign up with throw-away e-mail"))
    inst = summary.get("shared_instruments", {})
    if s["prepaid"] > 0:
        cand.append((s["prepaid"] * 2, f"{_pct(raw['prepaid_share'])} pay with prepaid/anonymous instruments"
                                       + (f"; {inst['any']} instrument{'s' if inst['any'] != 1 else ''} shared" if inst.get("any") else "")))
    elif inst.get("any"):
        cand.append((0.4, f"{inst['any']} payment instrument(s) shared by {inst.get('accounts', 0)} accounts"))
    if s["ip_rotation"] > 0:
        cand.append((s["ip_rotation"] * 1.5, f"new IP on {_pct(raw['ip_rotation'])} of requests "
                                             f"across {summary.get('n_prefixes', 0)} network prefixes"))
    if s["reasoning"] > 0:
        cand.append((s["reasoning"] * 1.6, f"{_pct(raw['reasoning_share'])} of prompts ask for step-by-step reasoning"))
    if s["templated"] > 0:
        nt = len(summary.get("templates", []))
        cand.append((s["templated"] * 1.6, f"{_pct(raw['template_share'])} of prompts follow templates most members share"
                                           + (f" ({nt} main)" if nt else "")))
    if s["jailbreak"] > 0:
        cand.append((s["jailbreak"] * 3, f"{_pct(raw['jailbreak_share'])} of prompts carry jailbreak templates"))
    if s["round_the_clock"] > 0:
        cand.append((s["round_the_clock"] * 2.5, f"active 24/7 (hour-of-day entropy {raw['hours_entropy']:.2f})"))
    if s.get("night", 0) > 0:
        cand.append((s["night"] * 2.0, f"{_pct(raw['night_share'])} of requests sent 01:00-05:00 in the "
                                       "declared country's local time"))
    if s.get("narrow_schedule", 0) > 0:
        cand.append((s["narrow_schedule"] * 2.5, "all accounts active in the same narrow daily slot "
                                                 f"(pooled hour-of-day entropy {raw['schedule_entropy']:.2f})"))
    if s["lockstep"] > 0:
        cand.append((s["lockstep"] * 2.5, f"accounts act in lockstep (mean timing link {raw['timing_density']:.2f})"))
    cand.sort(key=lambda t: (-t[0], t[1]))
    out = [text for _, text in cand[:limit]]
    if not out or max((w for w, _ in cand), default=0) < 1:
        # benign-looking: say what links them and what speaks for them
        top = summary.get("top_identifiers", [])
        if top:
            t = top[0]
            out.append(f"linked mainly by shared {t['kind'].replace('_', ' ')} ({t['n_in_cluster']} accounts)")
        if raw["org_share"] >= 0.5:
            out.append(f"{_pct(raw['org_share'])} declare an organisation")
        if raw["hours_entropy"] < 0.8:
            out.append("diurnal working hours")
        if raw["template_share"] < 0.3:
            out.append("diverse prompts")
    return out[:limit]


def evidence_summary(evidence, members: np.ndarray, *, top: int = 10, activity: pd.DataFrame | None = None,
                     uses: pd.DataFrame | None = None, lookups: dict | None = None) -> dict:
    """Top shared identifiers, main templates with examples and the timing profile of a cluster.

    ``uses`` (the members' rows of ``evidence.uses``) and ``lookups`` (from
    :func:`summary_lookups`) may be passed precomputed when summarising many clusters.
    """
    if uses is None:
        ids = set(evidence.accounts[members])
        uses = evidence.uses[evidence.uses["account_id"].isin(ids)]
    lookups = lookups or summary_lookups(evidence)
    inner = uses.groupby(["kind", "identifier"], sort=True).agg(
        n_in_cluster=("account_id", "nunique"), n_events=("n_events", "sum"),
        first_seen=("first_seen", "min"), last_seen=("last_seen", "max")).reset_index()
    inner = inner[inner["n_in_cluster"] >= 2]
    inner = inner.join(lookups["identifiers"], on=["kind", "identifier"])
    inner["n_accounts"] = inner["n_accounts"].fillna(inner["n_in_cluster"]).astype(int)
    inner["is_hub"] = inner["is_hub"].fillna(False).astype(bool)
    inner = inner.sort_values(["n_in_cluster", "kind", "identifier"], ascending=[False, True, True])
    non_tpl = inner[inner["kind"] != "template"].head(top)
    top_ids = [{"kind": r.kind, "identifier": r.identifier, "n_accounts": int(r.n_accounts),
                "n_in_cluster": int(r.n_in_cluster), "is_hub": bool(r.is_hub),
                "first_seen": _iso(r.first_seen), "last_seen": _iso(r.last_seen)} for r in non_tpl.itertuples()]
    n_prompts = uses.loc[uses["kind"] == "template", "n_events"].sum()
    tpl = inner[inner["kind"] == "template"].sort_values(["n_events", "identifier"], ascending=[False, True]).head(5)
    tmeta = lookups["templates"]
    templates = []
    for r in tpl.itertuples():
        meta = tmeta.loc[r.identifier] if r.identifier in tmeta.index else None
        templates.append({
            "template_id": r.identifier,
            "skeleton": "" if meta is None else str(meta["skeleton"])[:500],
            "n_in_cluster": int(r.n_in_cluster), "n_accounts": int(r.n_accounts),
            "share_of_prompts": round(float(r.n_events / n_prompts), 4) if n_prompts else 0.0,
            "examples": [] if meta is None or meta["examples"] is None else [str(x) for x in list(meta["examples"])],
        })
    inst = inner[inner["kind"] == "instrument"]
    f = evidence.features.iloc[members]
    created = f["created_at"].dropna().sort_values()
    return {
        "top_identifiers": top_ids,
        "templates": templates,
        "n_prefixes": int(uses.loc[uses["kind"] == "prefix", "identifier"].nunique()),
        "shared_instruments": {"any": int(len(inst)), "accounts": int(inst["n_in_cluster"].sum()) if len(inst) else 0},
        "created_first": _iso(created.iloc[0]) if len(created) else None,
        "created_last": _iso(created.iloc[-1]) if len(created) else None,
        "first_seen": _iso(uses["first_seen"].min()) if len(uses) else None,
        "last_seen": _iso(uses["last_seen"].max()) if len(uses) else None,
    }


def summary_lookups(evidence) -> dict:
    """Indexed identifier and template tables shared by all :func:`evidence_summary` calls."""
    return {"identifiers": evidence.identifiers.set_index(["kind", "identifier"])[["n_accounts", "is_hub"]],
            "templates": evidence.templates.set_index("template_id")}


def shared_evidence(uses: pd.DataFrame, links: pd.DataFrame, account_a: str, account_b: str) -> dict:
    """Why two accounts are linked: the identifiers both used (with when) and the per-layer links.

    Works on an EvidenceGraph's ``uses``/``links`` or a run folder's ``account_identifiers`` /
    ``links`` tables.
    """
    a = uses[uses["account_id"] == account_a]
    b = uses[uses["account_id"] == account_b]
    both = a.merge(b, on=["kind", "identifier"], suffixes=("_a", "_b"))
    lo, hi = sorted([account_a, account_b])
    lk = links[(links["account_a"] == lo) & (links["account_b"] == hi)]
    return {
        "identifiers": [{"kind": r.kind, "identifier": r.identifier,
                         "first_seen": _iso(min(r.first_seen_a, r.first_seen_b)),
                         "last_seen": _iso(max(r.last_seen_a, r.last_seen_b))} for r in both.itertuples()],
        "links": [{"layer": r.layer, "weight": float(r.weight), "evidence_count": int(r.evidence_count)}
                  for r in lk.itertuples()],
    }


def _iso(t) -> str | None:
    if t is None or pd.isna(t):
        return None
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ")
