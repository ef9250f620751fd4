"""Cluster and account suspicion scores from cluster-level evidence, and the flagging rule.

The score is a log-odds sum of five independent evidence groups, each a number in [0, 1]:

=============  =====================================================================  ======
group          signals (each in [0, 1])                                                weight
=============  =====================================================================  ======
creation       share of members created in the densest 48 h; share first used within   2.5
               24 h of sign-up; share with throw-away mail domains
payment        share of members paying with prepaid / anonymous instruments             2.0
network        per-request IP rotation of members (proxy and datacenter fleets)         1.5
content        share of prompts eliciting step-by-step reasoning; share in shared        3.0
               templates; jailbreak share
behaviour      round-the-clock activity (hour-of-day entropy); lockstep timing links     2.5
=============  =====================================================================  ======

    score = sigmoid(BIAS + Σ weight_g · group_g),   BIAS = -5.5

and a cluster is flagged when ``score >= 0.5``. The rule reads: *a cluster is a campaign when
at least two independent kinds of evidence are strong* (content and behaviour: 5.5; creation,
payment and network: 6.0), while one strong kind alone — a maths class asking for worked
solutions, a company sharing one card and a NAT, a household on one card — stays below. The
weights order evidence by how hard it is for an honest group to produce it (templated
reasoning harvesting and lockstep timing are rarer than a shared card) and were set from that
argument, then checked — not fitted — on demo worlds of several seeds and sizes, with a seed
kept aside (see docs/detection.md).

A benign organisation that declares itself, uses its own domain, works diurnal hours and
writes diverse prompts scores low on every group even though its staff share a NAT and a card:
sharing alone is what *links* a cluster, never what *flags* it.

The account score is the cluster score scaled by how embedded the account is in its cluster
(share of its link weight that stays inside): ``cluster_score * (0.5 + 0.5 * embeddedness)``;
accounts outside clusters get half their individual score from the same model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from graphbuild.errors import ConfigError

__all__ = ["ScoringConfig", "cluster_signals", "score_clusters", "GROUPS", "DEFAULT_GROUP_WEIGHTS"]

GROUPS = ("creation", "payment", "network", "content", "behaviour")
DEFAULT_GROUP_WEIGHTS = {"creation": 2.5, "payment": 2.0, "network": 1.5, "content": 3.0, "behaviour": 2.5}


@dataclass(frozen=True)
class ScoringConfig:
    """Weights, bias and threshold of the scoring rule (see module docstring)."""

    group_weights: dict = field(default_factory=lambda: dict(DEFAULT_GROUP_WEIGHTS))
    bias: float = -5.5
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


def cluster_signals(features: pd.DataFrame, members: np.ndarray, *, timing_density: float,
                    burst_hours: float = 48.0) -> dict:
    """Raw cluster-level figures and [0, 1] signals for one cluster.

    ``features`` is indexed by vertex (graphbuild.features rows in account order);
    ``timing_density`` is the mean timing-layer link weight over the cluster's member pairs.
    """
    f = features.iloc[members]
    req = f["n_requests"].to_numpy(dtype=float)
    wreq = req / req.sum() if req.sum() > 0 else np.full(len(f), 1.0 / max(len(f), 1))
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
        "template_share": float((f["template_share"] * wreq).sum()),
        "jailbreak_share": float((f["jailbreak_share"] * wreq).sum()),
        "hours_entropy": float(np.median(f["hours_entropy"])),
        "timing_density": float(timing_density),
    }
    s = {
        "burst": float(_ramp(raw["burst_share"], 0.3, 0.8)) if len(f) >= 3 else 0.0,
        "fresh": float(_ramp(raw["fresh_share"], 0.2, 0.8)),
        "disposable_mail": float(_ramp(raw["disposable_mail_share"], 0.1, 0.5)),
        "prepaid": float(_ramp(raw["prepaid_share"], 0.2, 0.8)),
        "ip_rotation": float(_ramp(raw["ip_rotation"], 0.2, 0.6)),
        "reasoning": float(_ramp(raw["reasoning_share"], 0.2, 0.7)),
        "templated": float(_ramp(raw["template_share"], 0.3, 0.8)),
        "jailbreak": float(_ramp(raw["jailbreak_share"], 0.1, 0.4)),
        "round_the_clock": float(_ramp(raw["hours_entropy"], 0.80, 0.93)),
        "lockstep": float(_ramp(raw["timing_density"], 0.05, 0.25)),
    }
    groups = {
        "creation": max(s["burst"], 0.5 * s["burst"] + 0.5 * s["fresh"], s["disposable_mail"]) if s["burst"] or s["fresh"] or s["disposable_mail"] else 0.0,
        "payment": s["prepaid"],
        "network": s["ip_rotation"],
        "content": max(min(1.0, 0.5 * s["reasoning"] + 0.5 * s["templated"]), s["jailbreak"]),
        "behaviour": max(s["round_the_clock"], s["lockstep"]),
    }
    return {"raw": raw, "signals": s, "groups": groups}


def score_clusters(groups: list[dict], config: ScoringConfig) -> np.ndarray:
    """Scores in [0, 1] for clusters given their evidence groups."""
    z = np.array([config.bias + sum(config.group_weights.get(k, 0.0) * v for k, v in g.items()) for g in groups],
                 dtype=float)
    return 1.0 / (1.0 + np.exp(-z)) if len(z) else z
