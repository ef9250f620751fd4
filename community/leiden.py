"""Leiden communities over the combined evidence graph: per component, seeded, with stability.

Why one combined graph and not a multiplex partition
----------------------------------------------------
Every layer's link weight is already a calibrated probability-like value in [0, 1)
(graphbuild.weighting), so the sum over layers is a principled combination: a pair linked by
payment *and* prompt *and* timing is more strongly tied than one linked by any single layer.
A multiplex partition (leidenalg ``optimise_partition_multiplex``) optimises the sum of
per-layer modularities instead, which lets a dense but harmless layer (a company's shared NAT)
pull as hard as the rare ones. Measured on demo worlds of 1,500 / 3,000 / 6,000 accounts
(docs/detection.md): all three methods give the same precision and recall after trimming and
scoring; the combined graph with igraph's Leiden is 2-10x faster than leidenalg, which is about 2x
faster than the multiplex optimiser (detection with 3 stability runs: 1.1 s vs 5.9 s vs 10.8 s at
6,000 accounts), so it is the default.

Resolution rule
---------------
Modularity (Reichardt–Bornholdt with γ = 1), optimised separately inside every connected
component: the null model is then the component's own degree sequence, which removes the
resolution limit that would merge small campaigns in a large graph, and gives components to
spread over workers. γ is not fitted to any data set.

Scale
-----
Each component's igraph.Graph is built straight from the link arrays (no whole-graph igraph
object, no Python list of edges); components of at most ``min_cluster_size`` accounts need no
Leiden at all; a component with more than ``large_edges`` links gets at most
``large_iterations`` Leiden iterations and ``large_stability_runs`` stability runs, so the
stability runs cost a few passes over the links in all instead of growing with the number of
iterations to convergence. Below that size the results are those of uncapped Leiden.

Known trap: leidenalg 0.12's default refinement under-splits some graphs; when the
``leidenalg`` method is chosen we set ``Optimiser.refine_consider_comms = ALL_NEIGH_COMMS``.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from community.scoring import segment_medians
from graphbuild.errors import ConfigError

__all__ = ["CommunityConfig", "Partition", "detect", "leiden_membership", "combined_links"]

METHODS = ("igraph", "leidenalg", "multiplex")


@dataclass(frozen=True)
class CommunityConfig:
    """Parameters of :func:`detect`.

    Parameters
    ----------
    method : {"igraph", "leidenalg", "multiplex"}
        igraph's built-in Leiden (default), leidenalg on the combined graph, or leidenalg's
        multiplex optimiser over the per-layer graphs.
    resolution : float
        Modularity resolution γ (1.0 is standard modularity).
    stability_runs : int
        Extra seeds used to measure how stable each cluster is (0 disables).
    min_cluster_size : int
        Smaller groups are not clusters: their accounts get no cluster id.
    trim : float
        A member whose link weight inside its cluster is below ``trim`` times the cluster's
        median is only hanging on (one shared residential exit, one VPN address) and is moved
        out of the cluster (0 disables); see :func:`trim_members`.
    large_edges : int
        A connected component with more (layer-summed) links than this is *large*. Leiden on a
        component runs until an iteration changes nothing; the number of iterations that takes
        grows with the component (8 at 9,000 accounts / 0.4M links, 19 at 36,000 / 1.7M) and
        each costs a pass over the links, so on large components the iterations are capped.
        The demo worlds up to 10,000 accounts have no large component (same results as before).
    large_iterations : int
        At most this many Leiden iterations on a large component (fewer when one changes
        nothing). On the 40,000-account demo world (one 1.7M-link component) 1 iteration gives
        F1 0.884 against 0.885 converged with the same 16 flagged clusters, 2 iterations the
        converged F1, at 1/10 and 1/8 of the time; on a 1M-account graph one iteration costs
        ~20 s and its modularity is within 0.01 % of four iterations' (docs/scale.md).
    large_stability_runs : int
        Stability runs on a large component, at most ``stability_runs``: each one repeats
        Leiden on the whole component. Clusters no stability run reached get stability 1.
    """

    method: str = "igraph"
    resolution: float = 1.0
    stability_runs: int = 3
    min_cluster_size: int = 3
    trim: float = 0.25
    large_edges: int = 1_000_000
    large_iterations: int = 1
    large_stability_runs: int = 1

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown community method {self.method!r}; allowed: {', '.join(METHODS)}")
        if self.resolution <= 0:
            raise ConfigError(f"resolution must be > 0, got {self.resolution!r}")
        if self.min_cluster_size < 2:
            raise ConfigError(f"min_cluster_size must be at least 2, got {self.min_cluster_size!r}")
        if not 0 <= self.trim < 1:
            raise ConfigError(f"trim must be in [0, 1), got {self.trim!r}")
        if self.stability_runs < 0:
            raise ConfigError(f"stability_runs must be >= 0, got {self.stability_runs!r}")
        if self.large_edges < 1:
            raise ConfigError(f"large_edges must be >= 1, got {self.large_edges!r}")
        if self.large_iterations < 1:
            raise ConfigError(f"large_iterations must be >= 1, got {self.large_iterations!r}")
        if self.large_stability_runs < 0:
            raise ConfigError(f"large_stability_runs must be >= 0, got {self.large_stability_runs!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Partition:
    """Cluster membership of every account.

    Attributes
    ----------
    membership : numpy.ndarray
        Per vertex, a cluster index ``0..n_clusters-1`` or ``-1`` when in no cluster. Clusters
        are numbered by size (largest first), then by their smallest vertex.
    stability : numpy.ndarray
        Per cluster, the mean share of its members that other seeds keep together (1 = always).
    config, seed, version
        What made it.
    """

    membership: np.ndarray
    stability: np.ndarray
    config: CommunityConfig
    seed: int
    version: str = ""

    @property
    def n_clusters(self) -> int:
        return int(self.membership.max() + 1) if len(self.membership) else 0

    def members(self, cluster: int) -> np.ndarray:
        return np.nonzero(self.membership == cluster)[0]


def leiden_membership(graph, *, method: str = "igraph", resolution: float = 1.0, seed: int = 0,
                      layer_graphs=None, max_iterations: int | None = None) -> np.ndarray:
    """Leiden membership of one (connected) igraph.Graph with edge attribute ``weight``.

    Iterates until an iteration changes nothing, or at most ``max_iterations`` times. For the
    igraph method the capped run is one-iteration calls that start from the previous
    membership with the random stream running on: igraph's own loop does the same, so a run
    that converges within the cap gives the partition an uncapped run gives.

    Examples
    --------
    >>> import igraph as ig
    >>> g = ig.Graph.Famous("Zachary"); g.es["weight"] = 1.0
    >>> m = leiden_membership(g, seed=1)
    >>> len(set(m)) >= 2
    True
    """
    if max_iterations is not None and max_iterations < 1:
        raise ConfigError(f"max_iterations must be >= 1 or None, got {max_iterations!r}")
    if method == "igraph":
        random.seed(seed)
        if max_iterations is None:
            part = graph.community_leiden(objective_function="modularity", weights="weight", resolution=resolution,
                                          n_iterations=-1)
            return np.asarray(part.membership)
        membership, before = None, None
        for _ in range(max_iterations):
            membership = graph.community_leiden(objective_function="modularity", weights="weight",
                                                resolution=resolution, n_iterations=1,
                                                initial_membership=membership).membership
            # every move strictly improves the quality, so "nothing moved" is "the same partition"
            # (labels may differ: compare first-occurrence codes)
            now = pd.factorize(np.asarray(membership))[0]
            if before is not None and np.array_equal(now, before):
                break
            before = now
        return np.asarray(membership)
    import leidenalg as la

    n_iter = -1 if max_iterations is None else max_iterations
    opt = la.Optimiser()
    opt.set_rng_seed(seed)
    opt.refine_consider_comms = la.ALL_NEIGH_COMMS
    if method == "leidenalg":
        p = la.RBConfigurationVertexPartition(graph, weights="weight", resolution_parameter=resolution)
        opt.optimise_partition(p, n_iterations=n_iter)
        return np.asarray(p.membership)
    layers = layer_graphs or [graph]
    parts = [la.RBConfigurationVertexPartition(h, weights="weight", resolution_parameter=resolution) for h in layers]
    opt.optimise_partition_multiplex(parts, n_iterations=n_iter)
    return np.asarray(parts[0].membership)


def trim_members(membership: np.ndarray, a: np.ndarray, b: np.ndarray, w: np.ndarray, *, ratio: float,
                 rounds: int = 3) -> np.ndarray:
    """Move weakly attached members out of their clusters.

    A member's *inside strength* is the summed weight of its links to other members. Modularity
    puts every vertex of a component somewhere, so an account tied to a fleet by one shared
    residential exit lands in the fleet's cluster with an inside strength of ~1 while the
    fleet's own members have ~50. Members below ``ratio`` times their cluster's median inside
    strength get membership ``-1``; repeated (up to ``rounds``) since removing members lowers
    others' inside strength.

    Examples
    --------
    >>> m = np.array([0, 0, 0, 0])
    >>> a, b = np.array([0, 0, 1, 2]), np.array([1, 2, 2, 3])
    >>> trim_members(m, a, b, np.array([1.0, 1.0, 1.0, 0.05]), ratio=0.25).tolist()
    [0, 0, 0, -1]
    """
    m = membership.copy()
    if ratio <= 0 or len(a) == 0:
        return m
    n = len(m)
    for _ in range(rounds):
        same = (m[a] == m[b]) & (m[a] >= 0)
        inside = np.bincount(a[same], w[same], n) + np.bincount(b[same], w[same], n)
        ok = m >= 0
        if not ok.any():
            break
        labels = m[ok]
        med = segment_medians(inside[ok], labels, int(labels.max()) + 1)  # = pandas' groupby median
        thr = np.zeros(n)
        thr[ok] = ratio * med[labels]
        drop = ok & (inside < thr)
        if not drop.any():
            break
        m[drop] = -1
    return m


_COMBINED: dict = {}


def combined_links(evidence, layers=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The links summed over ``layers`` (default: all) as arrays ``a, b, weight``, sorted by ``(a, b)``.

    The same pairs and bit-identical weights as ``evidence.combined(layers)``, which sums with
    pandas' compensated (Kahan) group sum in row order: here one stable sort of an integer pair
    key (cheap: the links come in a few sorted runs) and the same compensated sum, one pass per
    layer. The result for all layers is kept for the last EvidenceGraph asked, so detection and
    scoring combine the links once.
    """
    links = evidence.links
    if layers is None:
        hit = _COMBINED.get("key")
        if hit is not None and hit[0]() is evidence and hit[1] is links:
            return _COMBINED["value"]
    else:
        if len(links):
            links = links[links["layer"].isin(list(layers))]
    if len(links) == 0:
        out = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, float)
    else:
        out = _kahan_pairs(links["a"].to_numpy(np.int64), links["b"].to_numpy(np.int64),
                           links["weight"].to_numpy(dtype=float), max(int(evidence.n_accounts), 1))
    if layers is None:
        import weakref

        try:
            _COMBINED["key"] = (weakref.ref(evidence), evidence.links)
            _COMBINED["value"] = out
        except TypeError:  # an object without weak references: no caching
            _COMBINED.clear()
    return out


def _kahan_pairs(a: np.ndarray, b: np.ndarray, w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum ``w`` per pair ``(a, b)`` bit for bit as pandas' groupby sum does.

    pandas sums rows already sorted by the key (and free of NaN) with ``numpy.add.reduceat``,
    and anything else with a compensated (Kahan) sum in row order, skipping NaN.
    """
    key = a * n + b
    monotonic = bool((key[1:] >= key[:-1]).all())
    if not monotonic:
        order = np.argsort(key, kind="stable")
        key = key[order]
        w = w[order]
    start = np.ones(len(key), dtype=bool)
    start[1:] = key[1:] != key[:-1]
    first = np.nonzero(start)[0]
    if monotonic and not np.isnan(w).any():
        k = key[first]
        return k // n, k % n, np.add.reduceat(w, first)
    group = np.cumsum(start) - 1
    rank = np.arange(len(key)) - first[group]
    total = np.zeros(len(first))
    comp = np.zeros(len(first))
    for r in range(int(rank.max()) + 1 if len(rank) else 0):
        at = np.nonzero(rank == r)[0]
        g, val = group[at], w[at]
        ok = ~np.isnan(val)
        g, val = g[ok], val[ok]
        y = val - comp[g]
        t = total[g] + y
        c = (t - total[g]) - y
        comp[g] = np.where(np.isnan(c), 0.0, c)  # an infinite value: no compensation (as pandas)
        total[g] = t
    k = key[first]
    return k // n, k % n, total


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label per vertex, numbered by smallest vertex (as igraph numbers them)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return np.zeros(0, np.int64)
    adj = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n)).tocsr()
    _, lab = connected_components(adj, directed=True, connection="weak")
    first = np.full(lab.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, lab, np.arange(n))
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[lab]


def _by_component(comp: np.ndarray, a: np.ndarray, n_comp: int) -> tuple[np.ndarray, np.ndarray]:
    """Edge order grouped by component (keeping ``(a, b)`` order inside) and the group bounds."""
    ecomp = comp[a]
    eorder = np.argsort(ecomp, kind="stable")
    return eorder, np.searchsorted(ecomp[eorder], np.arange(n_comp + 1))


def _graph(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray):
    import igraph as ig

    g = ig.Graph(n=n, edges=np.column_stack([a, b]) if len(a) else [], directed=False)
    g.es["weight"] = np.asarray(w, dtype=float).tolist()
    return g


def _prepare(evidence, config: CommunityConfig) -> dict:
    """Components and one igraph.Graph per component to split, shared by the main and stability runs.

    Every component's graph is built straight from the link arrays, with vertices in account
    order and edges in ``(a, b)`` order: the graph ``evidence.graph().induced_subgraph`` gives,
    without a whole-graph igraph object or a Python list of edges.
    """
    n = evidence.n_accounts
    a, b, w = combined_links(evidence)
    comp = _components(n, a, b)
    sizes = np.bincount(comp) if n else np.zeros(0, dtype=np.int64)
    order = np.argsort(comp, kind="stable")
    bounds = np.cumsum(sizes)
    local = np.empty(n, dtype=np.int64)
    local[order] = np.arange(n) - (bounds - sizes)[comp[order]]
    eorder, ebounds = _by_component(comp, a, len(sizes))
    layers = []
    if config.method == "multiplex":
        for layer in evidence.config.layers:
            la, lb, lw = combined_links(evidence, [layer])
            lo, lbd = _by_component(comp, la, len(sizes))
            layers.append((la, lb, lw, lo, lbd))
    graphs = []
    for c in np.nonzero(sizes > config.min_cluster_size)[0]:
        vs = order[bounds[c] - sizes[c]:bounds[c]]
        es = eorder[ebounds[c]:ebounds[c + 1]]
        g = _graph(int(sizes[c]), local[a[es]], local[b[es]], w[es])
        subs = None
        if layers:
            subs = []
            for la, lb, lw, lo, lbd in layers:
                les = lo[lbd[c]:lbd[c + 1]]
                subs.append(_graph(int(sizes[c]), local[la[les]], local[lb[les]], lw[les]))
        graphs.append((int(c), vs, g, subs))
    esizes = np.diff(ebounds)
    large = esizes > config.large_edges
    return {"comp": comp, "sizes": sizes, "graphs": graphs, "a": a, "b": b, "w": w, "n": n, "large": large}


def _run(evidence, config: CommunityConfig, seed: int, ctx: dict | None = None, *,
         with_large: bool = True) -> np.ndarray:
    """Raw (not yet renumbered) cluster labels; large components left out (-1) unless ``with_large``."""
    ctx = ctx or _prepare(evidence, config)
    comp, sizes, large = ctx["comp"], ctx["sizes"], ctx["large"]
    raw = np.full(ctx["n"], -1, dtype=np.int64)
    # components too small to split are clusters as they are (vectorised: no loop over them)
    small = (sizes >= 2) & (sizes <= config.min_cluster_size)
    if len(comp):
        raw[small[comp]] = comp[small[comp]]
    next_label = len(sizes)
    for c, vs, sub, subs in ctx["graphs"]:
        if large[c] and not with_large:
            continue
        m = leiden_membership(sub, method=config.method, resolution=config.resolution, seed=seed + c,
                              layer_graphs=subs, max_iterations=config.large_iterations if large[c] else None)
        raw[vs] = m + next_label
        next_label += int(m.max()) + 1
    if config.trim > 0:
        raw = trim_members(raw, ctx["a"], ctx["b"], ctx["w"], ratio=config.trim)
    return raw


def _canonical(raw: np.ndarray, min_size: int) -> np.ndarray:
    """Renumber clusters by size desc, then smallest vertex; drop those below ``min_size``."""
    out = np.full(len(raw), -1, dtype=np.int64)
    valid = raw >= 0
    if not valid.any():
        return out
    df = pd.DataFrame({"c": raw[valid], "v": np.nonzero(valid)[0]})
    g = df.groupby("c")["v"].agg(["size", "min"]).reset_index()
    g = g[g["size"] >= min_size].sort_values(["size", "min"], ascending=[False, True])
    mapping = dict(zip(g["c"], range(len(g))))
    out[valid] = pd.Series(raw[valid]).map(mapping).fillna(-1).astype(np.int64).to_numpy()
    return out


def _stability(membership: np.ndarray, others: list[np.ndarray], n: int,
               covered: list[np.ndarray] | None = None) -> np.ndarray:
    """Per cluster, the mean over the other runs that covered it of the share of members kept together.

    ``covered[i]`` says which clusters run ``i`` re-ran (default: all); a cluster no run covered
    keeps stability 1, as with no stability runs at all.
    """
    if n == 0:
        return np.zeros(0)
    if not others:
        return np.ones(n)
    scores = np.zeros(n)
    count = np.zeros(n)
    for i, other in enumerate(others):
        df = pd.DataFrame({"c": membership, "o": other})
        df = df[df["c"] >= 0]
        df.loc[df["o"] < 0, "o"] = -1 - df.index[df["o"] < 0]  # unclustered vertices stand alone
        counts = df.groupby(["c", "o"]).size()
        best = counts.groupby(level=0).max()
        size = df.groupby("c").size()
        share = (best / size).reindex(range(n)).fillna(0).to_numpy()
        cov = np.ones(n, dtype=bool) if covered is None else covered[i]
        scores += np.where(cov, share, 0.0)
        count += cov
    return np.divide(scores, count, out=np.ones(n), where=count > 0)


def detect(evidence, config: CommunityConfig | None = None, *, seed: int = 0, version: str = "") -> Partition:
    """Find clusters of accounts in an :class:`graphbuild.EvidenceGraph`.

    Parameters
    ----------
    evidence : graphbuild.EvidenceGraph
    config : CommunityConfig, optional
    seed : int
        Seeds Leiden; the same seed gives the same partition.

    Returns
    -------
    Partition
    """
    config = config or CommunityConfig()
    ctx = _prepare(evidence, config)
    membership = _canonical(_run(evidence, config, seed, ctx), config.min_cluster_size)
    n = int(membership.max() + 1) if len(membership) else 0
    # which clusters sit in a large component (re-run by the first large_stability_runs runs only)
    in_large = np.zeros(n, dtype=bool)
    if n:
        inside = membership >= 0
        in_large[membership[inside]] = ctx["large"][ctx["comp"][inside]]
    others, covered = [], []
    for i in range(config.stability_runs):
        with_large = i < config.large_stability_runs
        others.append(_canonical(_run(evidence, config, seed + 1000 * (i + 1), ctx, with_large=with_large),
                                 config.min_cluster_size))
        covered.append(~in_large | with_large)
    del ctx
    return Partition(membership=membership, stability=_stability(membership, others, n, covered), config=config,
                     seed=seed, version=version)
