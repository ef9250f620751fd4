"""Cluster and account suspicion scores from cluster-level evidence, and the flagging rule.

The score is a log-odds sum of five independent evidence groups, each a number in [0, 1]:

=============  =====================================================================  ======
group          signals (each in [0, 1])                                                weight
=============  =====================================================================  ======
creation       share of members created in the densest 48 h (with the share first      2.5
               used within 24 h of sign-up); share with throw-away mail domains
payment        share of members paying with prepaid / anonymous instruments             2.5
network        per-request IP rotation of members (proxy and datacenter fleets)         2.5
content        share of prompts eliciting step-by-step reasoning, averaged with the     3.0
               cluster's template concentration; or the jailbreak share alone
behaviour      round the clock (hour-of-day entropy), night-time activity at the        2.5
               declared location, one narrow shared daily slot, lockstep timing links
=============  =====================================================================  ======

    score = sigmoid(BIAS + Σ weight_g · group_g),   BIAS = -5.0,   flagged when score >= 0.5

The rule reads: *a cluster is a campaign when at least two independent kinds of evidence are
strong*. Any two full groups reach the threshold (2.5 + 2.5 = 5.0); one strong kind alone —
a maths class asking for worked solutions, a company sharing one card and a NAT, an app
integrator answering customers around the clock with one system prompt — stays below
(at most sigmoid(-2) = 0.12). Content weighs a little more because templated reasoning
harvesting is what distillation *is*; a strong content signal plus a partial second one is
enough. The weights and the bias follow from that argument, not from fitting: they were
checked on demo worlds of several seeds and sizes, and the held-out seed was never used to
change them (docs/detection.md).

Signals are cluster-level on purpose. The *template concentration* is the share of the
cluster's prompts that go through templates used by at least 30 % of its members: a fleet
sends almost everything through its few wrappers, strangers who happen to share "Translate the
following text into French" do not. The *narrow schedule* pools the members' UTC hours: one
operator's cron slot is one or two hours wide whatever countries the accounts claim, a human
team's working day is eight or more. *Night activity* reads hours in the local time of each
member's declared country: people sleep, fleets do not.

A benign organisation that declares itself, uses its own domain, works diurnal hours and
writes diverse prompts scores low on every group even though its staff share a NAT and a card:
sharing alone is what *links* a cluster, never what *flags* it.

The account score is the cluster score scaled by how embedded the account is in its cluster
(share of its link weight that stays inside): ``cluster_score * (0.5 + 0.5 * embeddedness)``;
accounts outside clusters get half their individual score from the same model
(:func:`account_groups`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from graphbuild.errors import ConfigError

__all__ = ["ScoringConfig", "cluster_signals", "cluster_signals_many", "score_clusters", "account_groups",
           "groups_from_signals", "segment_sums", "segment_medians", "GROUPS", "DEFAULT_GROUP_WEIGHTS"]

GROUPS = ("creation", "payment", "network", "content", "behaviour")
#: fewest members for the cluster-only coincidence signals (burst, night, narrow schedule)
MIN_PATTERN = 5
DEFAULT_GROUP_WEIGHTS = {"creation": 2.5, "payment": 2.5, "network": 2.5, "content": 3.0, "behaviour": 2.5}


@dataclass(frozen=True)
class ScoringConfig:
    """Weights, bias and threshold of the scoring rule (see module docstring)."""

    group_weights: dict = field(default_factory=lambda: dict(DEFAULT_GROUP_WEIGHTS))
    bias: float = -5.0
    threshold: float = 0.5
    burst_hours: float = 48.0

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold!r}")
        bad = [g for g in self.group_weights if g not in GROUPS]
        if bad:
            raise ConfigError(f"unknown evidence group {bad[0]!r}; allowed: {', '.join(GROUPS)}")

    def to_dict(self) -> dict:
        return asdict(self)


def _ramp(x, lo, hi):
    return np.clip((np.asarray(x, dtype=float) - lo) / (hi - lo), 0.0, 1.0)


def _densest_window_share(created: pd.Series, hours: float) -> float:
    t = np.sort(pd.to_datetime(created.dropna()).to_numpy().astype("datetime64[s]").astype(np.int64))
    if len(t) == 0:
        return 0.0
    j = np.searchsorted(t, t + hours * 3600, side="right")
    return float((j - np.arange(len(t))).max() / len(t))


def _entropy24(counts: np.ndarray) -> float:
    c = np.asarray(counts, dtype=float)
    tot = c.sum()
    if tot <= 0:
        return 1.0
    p = c[c > 0] / tot
    return max(0.0, float(-(p * np.log(p)).sum() / np.log(24)))


def groups_from_signals(s: dict) -> dict:
    """The five evidence groups from the [0, 1] signals (arrays or scalars)."""
    creation = np.maximum.reduce([np.asarray(s["burst"], float), 0.5 * np.asarray(s["burst"]) + 0.5 * np.asarray(s["fresh"]),
                                  np.asarray(s["disposable_mail"], float)])
    content = np.maximum(np.minimum(1.0, 0.5 * np.asarray(s["reasoning"]) + 0.5 * np.asarray(s["templated"])),
                         np.asarray(s["jailbreak"], float))
    behaviour = np.maximum.reduce([np.asarray(s["round_the_clock"], float), np.asarray(s["night"], float),
                                   np.asarray(s["narrow_schedule"], float), np.asarray(s["lockstep"], float)])
    return {"creation": creation, "payment": np.asarray(s["prepaid"], float),
            "network": np.asarray(s["ip_rotation"], float), "content": content, "behaviour": behaviour}


def cluster_signals(features: pd.DataFrame, members: np.ndarray, *, timing_density: float,
                    burst_hours: float = 48.0, template_concentration: float | None = None,
                    hours: np.ndarray | None = None) -> dict:
    """Raw cluster-level figures and [0, 1] signals for one cluster.

    Parameters
    ----------
    features : pandas.DataFrame
        graphbuild.features rows in account (vertex) order.
    members : int array
        Vertex indices of the cluster.
    timing_density : float
        Mean timing-layer link weight over the cluster's member pairs.
    template_concentration : float, optional
        Share of the cluster's prompts in templates used by ≥ 30 % of its members
        (community.clusters computes it); defaults to the members' own shared-template share.
    hours : array of 24, optional
        The members' pooled requests per UTC hour of day.
    """
    f = features.iloc[members]
    req = f["n_requests"].to_numpy(dtype=float)
    wreq = req / req.sum() if req.sum() > 0 else np.full(len(f), 1.0 / max(len(f), 1))
    night = f["night_share"].dropna() if "night_share" in f else pd.Series(dtype=float)
    raw = {
        "n_accounts": int(len(f)),
        "n_requests": int(req.sum()),
        "burst_share": _densest_window_share(f["created_at"], burst_hours),
        "fresh_share": float((f["hours_to_first_use"].fillna(1e9) <= 24).mean()),
        "disposable_mail_share": float(f["disposable_mail"].mean()),
        "free_mail_share": float(f["free_mail"].mean()),
        "org_share": float(f["org_declared"].mean()),
        "prepaid_share": float((f["prepaid_share"] > 0).mean()),
        "paying_share": float((f["n_instruments"] > 0).mean()),
        "ip_rotation": float(np.median(f["ip_rotation"])),
        "reasoning_share": float((f["reasoning_share"] * wreq).sum()),
        "template_share": float(template_concentration) if template_concentration is not None
        else float((f["template_share"] * wreq).sum()),
        "jailbreak_share": float((f["jailbreak_share"] * wreq).sum()),
        "hours_entropy": float(np.median(f["hours_entropy"])),
        "night_share": float(np.median(night)) if len(night) else 0.0,
        "schedule_entropy": _entropy24(hours) if hours is not None else 1.0,
        "timing_density": float(timing_density),
    }
    # a coincidence among fewer than five accounts (three friends signing up the same weekend)
    # is not a pattern: burst, night and schedule signals need at least MIN_PATTERN members
    big = len(f) >= MIN_PATTERN
    s = {
        "burst": float(_ramp(raw["burst_share"], 0.3, 0.8)) if big else 0.0,
        "fresh": float(_ramp(raw["fresh_share"], 0.2, 0.8)),
        "disposable_mail": float(_ramp(raw["disposable_mail_share"], 0.1, 0.5)),
        "prepaid": float(_ramp(raw["prepaid_share"], 0.2, 0.8)),
        "ip_rotation": float(_ramp(raw["ip_rotation"], 0.2, 0.6)),
        "reasoning": float(_ramp(raw["reasoning_share"], 0.2, 0.7)),
        "templated": float(_ramp(raw["template_share"], 0.3, 0.8)),
        "jailbreak": float(_ramp(raw["jailbreak_share"], 0.1, 0.4)),
        "round_the_clock": float(_ramp(raw["hours_entropy"], 0.80, 0.93)),
        "night": float(_ramp(raw["night_share"], 0.06, 0.12)) if big else 0.0,
        "narrow_schedule": float(1.0 - _ramp(raw["schedule_entropy"], 0.3, 0.5)) if big else 0.0,
        "lockstep": float(_ramp(raw["timing_density"], 0.05, 0.25)),
    }
    groups = {k: float(v) for k, v in groups_from_signals(s).items()}
    return {"raw": raw, "signals": s, "groups": groups}


def segment_sums(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per segment ``values[bounds[i]:bounds[i + 1]]``, the sum exactly as ``numpy.sum`` gives it.

    ``numpy.add.reduceat`` starts each segment from its first element where ``numpy.sum``
    starts from 0 (pairwise summation either way), so a 0 is put in front of every segment.
    NaN counts as 0 (as in pandas' ``Series.sum``).
    """
    x = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0, posinf=np.inf, neginf=-np.inf)
    k = len(bounds) - 1
    if k <= 0:
        return np.zeros(0)
    padded = np.insert(x, bounds[:-1], 0.0)
    return np.add.reduceat(padded, bounds[:-1] + np.arange(k))


def segment_medians(values: np.ndarray, codes: np.ndarray, k: int, *, skipna: bool = False,
                    empty: float = np.nan) -> np.ndarray:
    """Per group ``0..k-1`` of ``codes``, the median as ``numpy.median`` gives it.

    A group with a NaN gets NaN unless ``skipna`` (then NaNs are dropped first); a group with no
    values gets ``empty``.
    """
    v = np.asarray(values, dtype=float)
    codes = np.asarray(codes)
    nan = np.isnan(v)
    out = np.full(k, empty, dtype=float)
    if skipna:
        v, codes = v[~nan], codes[~nan]
        has_nan = np.zeros(k, dtype=bool)
    else:
        has_nan = np.bincount(codes[nan], minlength=k) > 0
    if len(v) == 0:
        return out
    order = np.lexsort((v, codes))
    sv = v[order]
    n = np.bincount(codes, minlength=k)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    ok = n > 0
    lo = start + (n - 1) // 2
    hi = start + n // 2
    med = (sv[np.minimum(lo, len(sv) - 1)] + sv[np.minimum(hi, len(sv) - 1)]) / 2
    odd = n % 2 == 1
    med[odd] = sv[np.minimum(lo, len(sv) - 1)][odd]
    out[ok] = med[ok]
    # which of several tied ±0 values numpy's selection returns is its own business: ask it
    zero = np.nonzero(ok & (out == 0) & ~has_nan)[0]
    if len(zero):
        grouped = np.argsort(codes, kind="stable")
        for g in zero:
            out[g] = np.median(v[grouped[start[g]:start[g] + n[g]]])
    out[has_nan] = np.nan
    return out


def cluster_signals_many(features: pd.DataFrame, membership: np.ndarray, n_clusters: int, *,
                         timing_density: np.ndarray, burst_hours: float = 48.0,
                         template_concentration: np.ndarray | None = None,
                         hours: np.ndarray | None = None) -> dict:
    """:func:`cluster_signals` of every cluster at once, vectorised over clusters.

    Parameters
    ----------
    features : pandas.DataFrame
        graphbuild.features rows in account (vertex) order.
    membership : int array
        Per vertex, its cluster ``0..n_clusters-1`` or -1.
    timing_density, template_concentration : arrays of ``n_clusters``
    hours : array ``(n_clusters, 24)``, optional
        Pooled requests per UTC hour of day per cluster.

    Returns
    -------
    dict
        ``raw``, ``signals`` and ``groups``: each a dict of arrays of length ``n_clusters``, the
        same numbers :func:`cluster_signals` gives cluster by cluster (same summation order).
    """
    k = n_clusters
    m = np.asarray(membership)
    order = np.argsort(m, kind="stable")
    order = order[m[order] >= 0]
    c = m[order]
    bounds = np.searchsorted(c, np.arange(k + 1))
    n = np.diff(bounds)
    f = features

    def col(name):
        return f[name].to_numpy(dtype=float)[order]

    def share(x):
        x = np.asarray(x, dtype=float)
        ok = ~np.isnan(x)
        cnt = np.bincount(c[ok], minlength=k).astype(float)
        tot = segment_sums(np.where(ok, x, 0.0), bounds)
        return np.divide(tot, cnt, out=np.full(k, np.nan), where=cnt > 0)

    req = col("n_requests")
    req_tot = segment_sums(req, bounds)
    wreq = np.where(req_tot[c] > 0, req / np.where(req_tot[c] > 0, req_tot[c], 1.0), 1.0 / np.maximum(n[c], 1))

    def weighted(name):
        return segment_sums(col(name) * wreq, bounds)

    if template_concentration is None:
        tshare = weighted("template_share")
    else:
        tshare = np.asarray(template_concentration, dtype=float)
    if hours is None:
        sched = np.ones(k)
    else:
        sched = _entropy24_many(np.asarray(hours, dtype=float))
    raw = {
        "n_accounts": n.astype(np.int64),
        "n_requests": req_tot.astype(np.int64),
        "burst_share": _densest_window_shares(f["created_at"], order, c, k, burst_hours),
        "fresh_share": share((f["hours_to_first_use"].fillna(1e9) <= 24).to_numpy(dtype=float)[order]),
        "disposable_mail_share": share(col("disposable_mail")),
        "free_mail_share": share(col("free_mail")),
        "org_share": share(col("org_declared")),
        "prepaid_share": share((f["prepaid_share"] > 0).to_numpy(dtype=float)[order]),
        "paying_share": share((f["n_instruments"] > 0).to_numpy(dtype=float)[order]),
        "ip_rotation": segment_medians(col("ip_rotation"), c, k),
        "reasoning_share": weighted("reasoning_share"),
        "template_share": tshare,
        "jailbreak_share": weighted("jailbreak_share"),
        "hours_entropy": segment_medians(col("hours_entropy"), c, k),
        "night_share": (segment_medians(col("night_share"), c, k, skipna=True, empty=0.0) if "night_share" in f
                        else np.zeros(k)),
        "schedule_entropy": sched,
        "timing_density": np.asarray(timing_density, dtype=float),
    }
    big = n >= MIN_PATTERN
    zero = np.zeros(k)
    s = {
        "burst": np.where(big, _ramp(raw["burst_share"], 0.3, 0.8), zero),
        "fresh": _ramp(raw["fresh_share"], 0.2, 0.8),
        "disposable_mail": _ramp(raw["disposable_mail_share"], 0.1, 0.5),
        "prepaid": _ramp(raw["prepaid_share"], 0.2, 0.8),
        "ip_rotation": _ramp(raw["ip_rotation"], 0.2, 0.6),
        "reasoning": _ramp(raw["reasoning_share"], 0.2, 0.7),
        "templated": _ramp(raw["template_share"], 0.3, 0.8),
        "jailbreak": _ramp(raw["jailbreak_share"], 0.1, 0.4),
        "round_the_clock": _ramp(raw["hours_entropy"], 0.80, 0.93),
        "night": np.where(big, _ramp(raw["night_share"], 0.06, 0.12), zero),
        "narrow_schedule": np.where(big, 1.0 - _ramp(raw["schedule_entropy"], 0.3, 0.5), zero),
        "lockstep": _ramp(raw["timing_density"], 0.05, 0.25),
    }
    return {"raw": raw, "signals": s, "groups": groups_from_signals(s)}


def _densest_window_shares(created: pd.Series, order: np.ndarray, c: np.ndarray, k: int, hours: float) -> np.ndarray:
    """Per cluster, :func:`_densest_window_share` of its members' sign-up times (one sort for all)."""
    ts = pd.to_datetime(created)
    valid = ts.notna().to_numpy()[order]
    t = ts.to_numpy()[order][valid].astype("datetime64[s]").astype(np.int64)
    cc = c[valid]
    out = np.zeros(k)
    if len(t) == 0:
        return out
    span = int(t.max() - t.min()) + int(np.ceil(hours * 3600)) + 1
    key = cc * span + (t - t.min())
    srt = np.argsort(key, kind="stable")
    key = key[srt]
    cc = cc[srt]
    j = np.searchsorted(key, key + hours * 3600, side="right")
    width = j - np.arange(len(key))
    best = np.zeros(k, dtype=np.int64)
    np.maximum.at(best, cc, width)
    cnt = np.bincount(cc, minlength=k)
    np.divide(best, cnt, out=out, where=cnt > 0)
    return out


def _entropy24_many(counts: np.ndarray) -> np.ndarray:
    """:func:`_entropy24` of every row of ``counts`` (same summation order)."""
    k = len(counts)
    if k == 0:
        return np.zeros(0)
    tot = counts.sum(axis=1)
    out = np.ones(k)
    pos = counts > 0
    rows, cols = np.nonzero(pos & (tot[:, None] > 0))
    p = counts[rows, cols] / tot[rows]
    bounds = np.searchsorted(rows, np.arange(k + 1))
    h = segment_sums(p * np.log(p), bounds)
    has = tot > 0
    e = -h[has] / np.log(24)
    out[has] = np.where(e > 0.0, e, 0.0)  # as max(0.0, e): never -0.0
    return out


def account_groups(features: pd.DataFrame) -> dict:
    """Evidence groups of every account on its own (vectorised; no cluster-only signals).

    Bursts, night activity and schedules need a group, so an account alone can only show
    creation by a fresh throw-away sign-up, its own payment, rotation, content and 24/7 activity.
    """
    f = features
    zero = np.zeros(len(f))
    s = {
        "burst": zero,
        "fresh": _ramp((f["hours_to_first_use"].fillna(1e9) <= 24).astype(float), 0.2, 0.8),
        "disposable_mail": _ramp(f["disposable_mail"].astype(float), 0.1, 0.5),
        "prepaid": _ramp((f["prepaid_share"] > 0).astype(float), 0.2, 0.8),
        "ip_rotation": _ramp(f["ip_rotation"], 0.2, 0.6),
        "reasoning": _ramp(f["reasoning_share"], 0.2, 0.7),
        "templated": _ramp(f["template_share"], 0.3, 0.8),
        "jailbreak": _ramp(f["jailbreak_share"], 0.1, 0.4),
        "round_the_clock": _ramp(f["hours_entropy"], 0.80, 0.93),
        "night": zero, "narrow_schedule": zero, "lockstep": zero,
    }
    return groups_from_signals(s)


def score_clusters(groups, config: ScoringConfig) -> np.ndarray:
    """Scores in [0, 1] given evidence groups: a list of dicts, or one dict of arrays."""
    if isinstance(groups, dict):
        n = len(next(iter(groups.values()))) if groups else 0
        z = np.full(n, config.bias, dtype=float)
        for k, v in groups.items():
            z += config.group_weights.get(k, 0.0) * np.asarray(v, dtype=float)
    else:
        z = np.array([config.bias + sum(config.group_weights.get(k, 0.0) * v for k, v in g.items()) for g in groups],
                     dtype=float)
    return 1.0 / (1.0 + np.exp(-z)) if len(z) else z
