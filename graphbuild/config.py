"""EvidenceConfig: the frozen parameters of the evidence graph."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from graphbuild.errors import ConfigError
from graphbuild.schema import KIND_LAYER, LAYERS

__all__ = ["EvidenceConfig", "DEFAULT_KIND_WEIGHTS"]

#: Evidence strength of one identifier shared by exactly two accounts, per identifier kind
#: (see graphbuild.weighting for how it decays with the number of sharers).
DEFAULT_KIND_WEIGHTS = {
    "ip": 0.6,
    "ip_window": 0.6,
    "signup_ip": 1.0,
    "prefix": 0.3,
    "instrument": 2.0,
    "template": 1.5,
    "time_window": 1.0,
    "signup_window": 0.5,
    "user_agent": 0.5,
}


@dataclass(frozen=True)
class EvidenceConfig:
    """Parameters of :func:`graphbuild.build_evidence`.

    Parameters
    ----------
    hub_cap : int
        An identifier shared by more accounts than this is a *hub* (a carrier NAT, a VPN exit,
        a popular template): it is recorded as context and never expanded into links.
    ip_window_hours : int
        Length of the co-use window for the ``ip_window`` kind: two accounts using one IP in the
        same window get this extra evidence on top of the plain ``ip`` kind.
    timing_window_seconds : int
        Length of the lockstep window; ``0`` picks it from the data so that an average window
        holds about ``timing_target_per_window`` active accounts (bounded to 5 s … 600 s).
    timing_min_common : int
        Fewest shared active windows before two accounts count as acting in lockstep.
    signup_window_hours : int
        Width of the sign-up burst window.
    minhash_perms, lsh_rows, template_jaccard : int, int, float
        MinHash size, LSH rows per band and the estimated Jaccard similarity of prompt skeletons
        above which two prompts are taken to share a template.
    min_link_weight : float
        Layer links weaker than this are noise and are not kept; an identifier use that cannot
        give any pair this much on its own is dropped before pairs are expanded.
    lockstep_pair_budget : int
        Largest number of (window, pair of active accounts) incidences the lockstep finder expands
        exactly; above it, shared windows are counted only for pairs linked by other evidence and
        pairs that MinHash/LSH over the window sets proposes (graphbuild.lockstep).
    pair_sample_above : int
        Identifiers shared by more accounts than this are expanded into a sparse expander
        (~k log2 k pairs, weights scaled to keep the group's total) instead of a clique
        (graphbuild.pairs); 0 expands every clique in full.
    layers : tuple of str
        Evidence layers to build (drop one for an ablation).
    kind_weights : dict
        Strength of each identifier kind (:data:`DEFAULT_KIND_WEIGHTS`).
    """

    hub_cap: int = 500
    ip_window_hours: int = 24
    timing_window_seconds: int = 0
    timing_target_per_window: float = 4.0
    timing_min_common: int = 3
    signup_window_hours: int = 2
    minhash_perms: int = 64
    lsh_rows: int = 4
    template_jaccard: float = 0.6
    min_link_weight: float = 0.02
    pair_sample_above: int = 64
    lockstep_pair_budget: int = 20_000_000
    layers: tuple = LAYERS
    kind_weights: dict = field(default_factory=lambda: dict(DEFAULT_KIND_WEIGHTS))

    def __post_init__(self) -> None:
        if self.hub_cap < 2:
            raise ConfigError(f"hub_cap must be at least 2, got {self.hub_cap!r}")
        if not 0 < self.template_jaccard <= 1:
            raise ConfigError(f"template_jaccard must be in (0, 1], got {self.template_jaccard!r}")
        if self.minhash_perms % self.lsh_rows:
            raise ConfigError(f"minhash_perms ({self.minhash_perms}) must be a multiple of lsh_rows ({self.lsh_rows})")
        bad = [l for l in self.layers if l not in LAYERS]
        if bad:
            raise ConfigError(f"unknown layer {bad[0]!r}; allowed: {', '.join(LAYERS)}")
        object.__setattr__(self, "layers", tuple(l for l in LAYERS if l in self.layers))
        bad = [k for k in self.kind_weights if k not in KIND_LAYER]
        if bad:
            raise ConfigError(f"unknown identifier kind {bad[0]!r}; allowed: {', '.join(KIND_LAYER)}")
        if self.lockstep_pair_budget < 0:
            raise ConfigError(f"lockstep_pair_budget must be at least 0, got {self.lockstep_pair_budget!r}")
        for name in ("ip_window_hours", "signup_window_hours", "timing_min_common"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = list(self.layers)
        return d
