"""Deterministic igraph layouts for the explorer and the pictures, fast on big graphs."""

from __future__ import annotations

import contextlib
import math
import random
from typing import Sequence

import numpy as np

__all__ = ["seeded_igraph", "layout_positions", "bipartite_positions", "FR_LIMIT"]

#: graphs up to this many vertices get a full Fruchterman–Reingold layout; larger ones are
#: laid out on a reduced graph (accounts grouped) and the members placed around their group
FR_LIMIT = 1500

_GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


@contextlib.contextmanager
def seeded_igraph(seed: int):
    """Run a block with igraph's random numbers drawn from ``random.Random(seed)``.

    igraph keeps one process-wide generator; the default (the ``random`` module) is restored
    afterwards so other callers are not affected.
    """
    import igraph as ig

    rng = random.Random(seed)
    ig.set_random_number_generator(rng)
    try:
        yield rng
    finally:
        ig.set_random_number_generator(random)


def _normalise(pos: np.ndarray, scale: float) -> np.ndarray:
    pos = np.asarray(pos, dtype=float).reshape(-1, 2)
    if len(pos) <= 1:
        return np.zeros((len(pos), 2))
    pos = pos - (pos.max(axis=0) + pos.min(axis=0)) / 2.0
    span = float(np.abs(pos).max()) or 1.0
    return pos / span * scale


def _grid(n: int) -> np.ndarray:
    side = int(math.ceil(math.sqrt(max(n, 1))))
    return np.array([(i % side, i // side) for i in range(n)], dtype=float)


def layout_positions(graph, *, seed: int = 0, weights: str | None = "weight", scale: float = 1000.0,
                     method: str | None = None, niter: int = 300) -> np.ndarray:
    """Positions for the vertices of an igraph graph, reproducible for a given seed.

    Parameters
    ----------
    graph : igraph.Graph
        The graph to lay out.
    seed : int
        Seed for the layout's random start.
    weights : str or None
        Edge attribute used as attraction weight (ignored when absent).
    scale : float
        The result is centred and scaled to fit in ``[-scale, scale]``.
    method : {"fr", "drl", "grid"}, optional
        Defaults to Fruchterman–Reingold (grid variant above 1,000 vertices); ``drl`` is
        much slower and only used when asked for.
    niter : int
        Fruchterman–Reingold iterations.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float array, rounded to 0.1 so the output is stable text.
    """
    n = graph.vcount()
    if n <= 1:
        return np.zeros((n, 2))
    w = weights if (weights and graph.ecount() and weights in graph.es.attributes()) else None
    method = method or "fr"
    with seeded_igraph(seed) as rng:
        if method == "grid" or graph.ecount() == 0:
            pos = _grid(n)
        elif method == "drl":
            pos = np.asarray(graph.layout_drl(weights=w).coords, dtype=float)
        else:
            start = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(n)]
            pos = np.asarray(graph.layout_fruchterman_reingold(weights=w, seed=start, niter=niter,
                                                               grid="auto").coords, dtype=float)
    return np.round(_normalise(pos, scale), 1)


def _sunflower(count: int, spacing: float) -> np.ndarray:
    """``count`` points packed in a disc (Vogel's spiral), ``spacing`` apart, centred on 0."""
    k = np.arange(count, dtype=float)
    r = spacing * np.sqrt(k + 0.5)
    theta = k * _GOLDEN_ANGLE
    return np.column_stack([r * np.cos(theta), r * np.sin(theta)])


def bipartite_positions(n_accounts: int, n_identifiers: int, incidence: Sequence[tuple[int, int]], *,
                        pairs: Sequence[tuple[int, int]] = (), seed: int = 0, spacing: float = 18.0,
                        limit: int = FR_LIMIT) -> np.ndarray:
    """Lay out an account–identifier graph; fast and deterministic whatever its size.

    Up to ``limit`` vertices the whole graph gets a Fruchterman–Reingold layout. Above, accounts
    with the same set of identifiers (or, when there are still too many such sets, the same
    first identifier) are collapsed into one group vertex; the reduced graph is laid out and
    each group's accounts are packed in a small disc around its position.

    Parameters
    ----------
    n_accounts, n_identifiers : int
        Vertex counts; accounts are vertices ``0 .. n_accounts-1``, identifiers follow.
    incidence : sequence of (account index, identifier index)
        Which account used which identifier (identifier index counted from 0). An account's
        identifiers should be listed strongest first when grouping by first identifier matters.
    pairs : sequence of (account index, account index)
        Direct account–account edges (e.g. identifiers only two accounts share).
    seed : int
        Layout seed.
    spacing : float
        Distance between neighbouring accounts of one group, in page pixels.
    limit : int
        Largest graph laid out vertex by vertex.

    Returns
    -------
    numpy.ndarray
        ``(n_accounts + n_identifiers, 2)`` positions rounded to 0.1.
    """
    import igraph as ig

    total = n_accounts + n_identifiers
    inc = [(int(a), int(i)) for a, i in incidence]
    direct = [(int(a), int(b)) for a, b in pairs]
    page_scale = max(400.0, spacing * 2.2 * math.sqrt(max(total, 1)))
    if total <= limit:
        g = ig.Graph(n=total, edges=[(a, n_accounts + i) for a, i in inc] + direct)
        pos = layout_positions(g, seed=seed, weights=None, scale=page_scale)
        lonely = [v for v, d in enumerate(g.degree()) if d == 0]
        if lonely and len(lonely) < total:
            # vertices without edges go in a tidy disc beside the drawing, not scattered around it
            rest = np.array([v for v in range(total) if v not in set(lonely)])
            g2 = g.induced_subgraph(rest.tolist())
            pos = np.zeros((total, 2))
            pos[rest] = layout_positions(g2, seed=seed, weights=None, scale=page_scale)
            disc = _sunflower(len(lonely), spacing * 1.5)
            right = pos[rest, 0].max() + spacing * 4 + (np.abs(disc[:, 0]).max() if len(disc) else 0)
            pos[lonely] = disc + np.array([right, 0.0])
            pos = np.round(pos, 1)
        return pos

    per_account: list[list[int]] = [[] for _ in range(n_accounts)]
    for a, i in inc:
        per_account[a].append(i)
    signatures = [tuple(sorted(set(ids))) for ids in per_account]
    distinct = sorted(set(signatures))
    if len(distinct) + n_identifiers > limit:
        signatures = [(ids[0],) if ids else () for ids in per_account]
        distinct = sorted(set(signatures))
    gindex = {sig: k for k, sig in enumerate(distinct)}
    members: list[list[int]] = [[] for _ in distinct]
    for a, sig in enumerate(signatures):
        members[gindex[sig]].append(a)
    n_groups = len(distinct)
    radii = np.array([spacing * math.sqrt(len(m) + 0.5) for m in members])

    if len(distinct) + n_identifiers <= limit:
        edges = [(k, n_groups + i) for k, sig in enumerate(distinct) for i in sig]
        group_of = [gindex[sig] for sig in signatures]
        edges += sorted({(min(group_of[a], group_of[b]), max(group_of[a], group_of[b])) for a, b in direct
                         if group_of[a] != group_of[b]})
        g = ig.Graph(n=n_groups + n_identifiers, edges=edges)
        # leave room for every group's disc: area of discs ≈ a fraction of the page
        area = float((radii ** 2).sum()) * math.pi * 4.0 + n_identifiers * (spacing * 3) ** 2
        scale = max(page_scale, math.sqrt(area) / 1.5)
        group_pos = layout_positions(g, seed=seed, weights=None, scale=scale)
    else:
        order = sorted(range(n_groups), key=lambda k: -len(members[k]))
        group_pos = np.zeros((n_groups + n_identifiers, 2))
        centres = _sunflower(n_groups + n_identifiers, spacing * 6)
        for slot, k in enumerate(order):
            group_pos[k] = centres[slot]
        group_pos[n_groups:] = centres[n_groups:]

    pos = np.zeros((total, 2))
    for k, accs in enumerate(members):
        disc = _sunflower(len(accs), spacing)
        pos[accs] = group_pos[k] + disc
    pos[n_accounts:] = group_pos[n_groups:]
    return np.round(pos, 1)
