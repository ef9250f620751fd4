"""Deterministic igraph layouts for the explorer and the pictures."""

from __future__ import annotations

import contextlib
import random

import numpy as np

__all__ = ["seeded_igraph", "layout_positions"]


@contextlib.contextmanager
def seeded_igraph(seed: int):
    """Run a block with igraph's random numbers drawn from ``random.Random(seed)``.

    igraph keeps one process-wide generator; it is restored afterwards so other callers
    are not affected.
    """
    import igraph as ig

    rng = random.Random(seed)
    ig.set_random_number_generator(rng)
    try:
        yield rng
    finally:
        ig.set_random_number_generator(random)


def layout_positions(graph, *, seed: int = 0, weights: str | None = "weight", scale: float = 1000.0,
                     method: str | None = None) -> np.ndarray:
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
    method : {"fr", "drl", "circle"}, optional
        Defaults to Fruchterman–Reingold up to 1,500 vertices, DrL above.

    Returns
    -------
    numpy.ndarray
        ``(n, 2)`` float array, rounded to 0.1 so the output is stable text.
    """
    n = graph.vcount()
    if n == 0:
        return np.zeros((0, 2))
    if n == 1:
        return np.zeros((1, 2))
    w = weights if (weights and graph.ecount() and weights in graph.es.attributes()) else None
    method = method or ("fr" if n <= 1500 else "drl")
    with seeded_igraph(seed) as rng:
        if method == "circle" or graph.ecount() == 0:
            side = int(np.ceil(np.sqrt(n)))
            pos = np.array([(i % side, i // side) for i in range(n)], dtype=float)
        elif method == "drl":
            pos = np.asarray(graph.layout_drl(weights=w).coords, dtype=float)
        else:
            start = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(n)]
            pos = np.asarray(graph.layout_fruchterman_reingold(weights=w, seed=start, niter=500).coords,
                             dtype=float)
    pos = pos - pos.mean(axis=0)
    span = float(np.abs(pos).max()) or 1.0
    pos = pos / span * scale
    return np.round(pos, 1)
