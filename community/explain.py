"""Explanations: the `reasons` of a cluster in investigator words, and its evidence summary."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["reasons", "evidence_summary", "evidence_summaries", "summary_lookups", "shared_evidence"]


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
    inner = uses.groupby(["kind", "identifier"], sort=True, observed=True).agg(
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


def _iso_many(values) -> list:
    """:func:`_iso` of many timestamps at once (None for missing)."""
    t = pd.to_datetime(pd.Series(values).reset_index(drop=True))
    if getattr(t.dtype, "tz", None) is not None:
        t = t.dt.tz_localize(None)
    if len(t) == 0:
        return []
    text = np.char.add(np.datetime_as_string(t.to_numpy().astype("datetime64[s]"), unit="s"), "Z").astype(object)
    text[t.isna().to_numpy()] = None
    return text.tolist()


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and their string values, for a str, object, pyarrow or categorical column."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(np.int64), np.asarray(values.cat.categories.astype(str), dtype=object)
    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64), np.asarray(pd.Index(uniques).astype(str), dtype=object)


def _reduce_times(values: pd.Series, rows: np.ndarray, starts: np.ndarray, ufunc) -> np.ndarray:
    """Per run of ``rows`` starting at ``starts``, the min (``numpy.minimum``) or max of timestamps, NaT skipped."""
    t = pd.to_datetime(values)
    if getattr(t.dtype, "tz", None) is not None:
        t = t.dt.tz_localize(None)
    arr = t.to_numpy()
    if len(starts) == 0:
        return arr[:0]
    iv = arr.view(np.int64)[rows]
    nat = np.iinfo(np.int64).min
    if ufunc is np.minimum:
        iv = np.where(iv == nat, np.iinfo(np.int64).max, iv)
    out = ufunc.reduceat(iv, starts)
    out = np.where(out == np.iinfo(np.int64).max, nat, out)
    return out.view(arr.dtype)


def evidence_summaries(evidence, membership: np.ndarray, n_clusters: int, *, top: int = 10,
                       account_codes: np.ndarray | None = None, lookups: dict | None = None) -> list[dict]:
    """:func:`evidence_summary` of every cluster of ``membership`` at once (groupbys over all clusters).

    Parameters
    ----------
    evidence : graphbuild.EvidenceGraph
    membership : int array
        Per vertex, its cluster ``0..n_clusters-1`` or -1.
    account_codes : int array, optional
        Vertex of every row of ``evidence.uses`` (-1 when unknown), if already computed.

    Returns
    -------
    list of dict
        Per cluster, the same dict :func:`evidence_summary` returns for its members.
    """
    k = n_clusters
    if k == 0:
        return []
    lookups = lookups or summary_lookups(evidence)
    m = np.asarray(membership)
    u = evidence.uses
    if account_codes is None:
        account_codes = pd.Categorical(u["account_id"], categories=evidence.accounts).codes
    acc = np.asarray(account_codes, dtype=np.int64)
    cl = np.where(acc >= 0, m[np.maximum(acc, 0)], -1)
    keep = np.nonzero(cl >= 0)[0]
    cl, acc = cl[keep], acc[keep]

    def col(name):
        return u[name].iloc[keep].reset_index(drop=True)

    kcode, kinds = _codes(col("kind"))
    icode, idents = _codes(col("identifier"))
    n_ev = u["n_events"].to_numpy()[keep]
    first, last = col("first_seen"), col("last_seen")
    is_tpl = np.isin(kcode, np.nonzero(kinds == "template")[0])
    valid = (kcode >= 0) & (icode >= 0)  # groupby drops missing keys
    is_prefix = np.isin(kcode, np.nonzero(kinds == "prefix")[0]) & valid

    # per cluster, over all its use rows
    span = pd.DataFrame({"c": cl, "first": first, "last": last}).groupby("c", sort=True).agg(
        first=("first", "min"), last=("last", "max")).reindex(range(k))
    n_prompts = np.bincount(cl[is_tpl], weights=n_ev[is_tpl].astype(float), minlength=k).astype(np.int64)

    # per (cluster, kind, identifier): one integer key and one sort (no hash tables over the rows)
    n_k, n_i = max(len(kinds), 1), max(len(idents), 1)
    rows = np.nonzero(valid)[0]
    key = (cl[rows] * n_k + kcode[rows]) * n_i + icode[rows]
    o = np.lexsort((acc[rows], key))
    rows, key = rows[o], key[o]
    new_key = np.ones(len(key), dtype=bool)
    new_key[1:] = key[1:] != key[:-1]
    starts = np.nonzero(new_key)[0]
    racc = acc[rows]
    new_acc = new_key.copy()
    new_acc[1:] |= racc[1:] != racc[:-1]
    gkey = key[starts]
    gkind = (gkey // n_i) % n_k
    gc = gkey // (n_k * n_i)
    prefix_codes = np.nonzero(kinds == "prefix")[0]
    n_prefixes = np.bincount(gc[np.isin(gkind, prefix_codes)], minlength=k)
    n_in = np.add.reduceat(new_acc.astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)
    n_events = np.add.reduceat(n_ev[rows].astype(np.int64), starts) if len(starts) else np.zeros(0, np.int64)
    first_min = _reduce_times(first, rows, starts, np.minimum)
    last_max = _reduce_times(last, rows, starts, np.maximum)
    sh = n_in >= 2
    kk = gkey[sh]
    inner = pd.DataFrame({"key": kk, "n_events": n_events[sh], "first_seen": first_min[sh],
                          "last_seen": last_max[sh], "n_in_cluster": n_in[sh], "c": gc[sh]})
    inner["kind"] = kinds[(kk // n_i) % n_k] if len(inner) else np.zeros(0, object)
    inner["identifier"] = idents[kk % n_i] if len(inner) else np.zeros(0, object)
    ids = lookups["identifiers"].reset_index()
    ids = ids.assign(kind=np.asarray(ids["kind"].astype(str), dtype=object),
                     identifier=np.asarray(ids["identifier"].astype(str), dtype=object))
    inner = inner.merge(ids, on=["kind", "identifier"], how="left", sort=False)
    inner["n_accounts"] = inner["n_accounts"].fillna(inner["n_in_cluster"]).astype(int)
    inner["is_hub"] = inner["is_hub"].astype(object).fillna(False).astype(bool)

    # top identifiers (not templates): n_in_cluster desc, kind, identifier
    non = inner[inner["kind"] != "template"].sort_values(["c", "n_in_cluster", "kind", "identifier"],
                                                         ascending=[True, False, True, True])
    non = non[non.groupby("c", sort=False).cumcount().to_numpy() < top]
    non_first, non_last = _iso_many(non["first_seen"]), _iso_many(non["last_seen"])
    top_ids = [[] for _ in range(k)]
    for c, kind, ident, na, nin, hub, fs, ls in zip(non["c"].tolist(), non["kind"].tolist(),
                                                    non["identifier"].tolist(), non["n_accounts"].tolist(),
                                                    non["n_in_cluster"].tolist(), non["is_hub"].tolist(),
                                                    non_first, non_last):
        top_ids[c].append({"kind": kind, "identifier": ident, "n_accounts": int(na), "n_in_cluster": int(nin),
                           "is_hub": bool(hub), "first_seen": fs, "last_seen": ls})

    # main templates: n_events desc, identifier
    tpl = inner[inner["kind"] == "template"].sort_values(["c", "n_events", "identifier"],
                                                         ascending=[True, False, True])
    tpl = tpl[tpl.groupby("c", sort=False).cumcount().to_numpy() < 5]
    tmeta = lookups["templates"]
    wanted = np.asarray(tpl["identifier"], dtype=object)
    pos = (pd.Index(np.asarray(tmeta.index.astype(str), dtype=object)).get_indexer(wanted) if len(tpl)
           else np.zeros(0, np.int64))
    found = pos >= 0
    skel = tmeta["skeleton"].to_numpy(dtype=object)[np.maximum(pos, 0)].tolist() if len(tpl) else []
    exs = tmeta["examples"].to_numpy(dtype=object)[np.maximum(pos, 0)].tolist() if len(tpl) else []
    templates = [[] for _ in range(k)]
    for j, (c, ident, nin, na, nev) in enumerate(zip(tpl["c"].tolist(), tpl["identifier"].tolist(),
                                                     tpl["n_in_cluster"].tolist(), tpl["n_accounts"].tolist(),
                                                     tpl["n_events"].tolist())):
        ok = bool(found[j])
        npr = n_prompts[c]
        ex = exs[j] if ok else None
        templates[c].append({
            "template_id": ident,
            "skeleton": str(skel[j])[:500] if ok else "",
            "n_in_cluster": int(nin), "n_accounts": int(na),
            "share_of_prompts": round(float(np.int64(nev) / npr), 4) if npr else 0.0,
            "examples": [] if not ok or ex is None else [str(x) for x in list(ex)],
        })

    inst = inner[inner["kind"] == "instrument"]
    inst_any = np.bincount(inst["c"].to_numpy(), minlength=k)
    inst_acc = np.bincount(inst["c"].to_numpy(), weights=inst["n_in_cluster"].to_numpy(float), minlength=k)

    created = pd.DataFrame({"c": m, "t": evidence.features["created_at"].to_numpy()})
    created = created[created["c"] >= 0].groupby("c", sort=True)["t"].agg(["min", "max"]).reindex(range(k))
    c_first, c_last = _iso_many(created["min"]), _iso_many(created["max"])
    s_first, s_last = _iso_many(span["first"]), _iso_many(span["last"])
    return [{
        "top_identifiers": top_ids[c],
        "templates": templates[c],
        "n_prefixes": int(n_prefixes[c]),
        "shared_instruments": {"any": int(inst_any[c]), "accounts": int(inst_acc[c]) if inst_any[c] else 0},
        "created_first": c_first[c],
        "created_last": c_last[c],
        "first_seen": s_first[c],
        "last_seen": s_last[c],
    } for c in range(k)]


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
