"""Expand (account, identifier) rows into account pairs, vectorised, without expanding hubs."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["expand_pairs"]

_MAX_CHUNK_PAIRS = 8_000_000


def expand_pairs(account: np.ndarray, ident: np.ndarray, pair_w: np.ndarray,
                 first: np.ndarray, last: np.ndarray, *, hub_cap: int, share: np.ndarray | None = None,
                 min_contribution: float = 0.0, sample_above: int = 0) -> pd.DataFrame:
    """Sum the evidence of shared identifiers per account pair.

    Parameters
    ----------
    account, ident : int arrays
        One row per (account, identifier) use; ``account`` is a vertex index, ``ident`` an
        identifier index. Rows must be unique per (account, identifier).
    pair_w : float array
        Per row, the weight the row's identifier gives each pair of its sharers.
    first, last : int64 arrays
        Per row, first and last use (epoch seconds) of the identifier by the account.
    hub_cap : int
        Identifiers with more sharers are skipped (they are hubs, see graphbuild.weighting).
    share : float array, optional
        Per row, how much of the account's activity the identifier carries (in [0, 1]); a pair
        then gets ``pair_w * min(share_a, share_b)``: an IP that is one of a proxy account's
        eighty exits says little about its tie to the household whose only IP it is.
    sample_above : int
        Identifiers with more sharers than this (0: never) are expanded into a sparse random
        expander instead of a clique: after a fixed pseudo-random shuffle, member ``p`` is paired
        with members ``p + 2^j`` (mod k), about ``k log2 k`` pairs instead of ``k(k-1)/2``, each
        carrying ``k(k-1)/2 / n_pairs`` times the weight so the group's total is unchanged.
        Communities are found just as well in a sparse expander as in a clique, and a
        500-account template costs 4,500 pairs instead of 125,000.
    min_contribution : float
        Rows whose largest possible contribution to a pair (``pair_w * share``) is below this are
        dropped before expansion (they cannot make a link on their own; memory at scale).

    Returns
    -------
    pandas.DataFrame
        Columns ``a, b`` (vertex indices, a < b), ``raw`` (summed weight), ``count`` (shared
        identifiers), ``first``, ``last`` (span of the shared use), sorted by (a, b).

    Examples
    --------
    >>> df = expand_pairs(np.array([0, 1, 2, 0, 1]), np.array([7, 7, 7, 9, 9]),
    ...                   np.array([.5, .5, .5, 1., 1.]), np.zeros(5, 'i8'), np.ones(5, 'i8'), hub_cap=10)
    >>> df[["a", "b", "raw", "count"]].values.tolist()
    [[0.0, 1.0, 1.5, 2.0], [0.0, 2.0, 0.5, 1.0], [1.0, 2.0, 0.5, 1.0]]
    """
    empty = pd.DataFrame({"a": np.array([], "i8"), "b": np.array([], "i8"), "raw": np.array([], "f8"),
                          "count": np.array([], "i8"), "first": np.array([], "i8"), "last": np.array([], "i8")})
    if len(account) == 0:
        return empty
    account = np.asarray(account).astype(np.int64)
    ident = np.asarray(ident)
    pair_w, first, last = np.asarray(pair_w, "f8"), np.asarray(first, "i8"), np.asarray(last, "i8")
    share = None if share is None else np.asarray(share, "f8")
    if min_contribution > 0:
        # a use whose largest possible contribution to any pair is negligible cannot decide a link
        best = pair_w if share is None else pair_w * share
        live = best >= min_contribution
        account, ident, pair_w, first, last = account[live], ident[live], pair_w[live], first[live], last[live]
        share = None if share is None else share[live]
        if len(account) == 0:
            return empty
    order = np.lexsort((account, ident))
    account, ident, pair_w, first, last = account[order], ident[order], pair_w[order], first[order], last[order]
    share = None if share is None else share[order]
    _, starts, sizes = np.unique(ident, return_index=True, return_counts=True)
    keep = (sizes >= 2) & (sizes <= hub_cap)
    starts, sizes = starts[keep], sizes[keep]
    n = int(account.max()) + 1
    acc_parts: list[pd.DataFrame] = []
    pending: list[tuple] = []
    n_pending = 0
    for k in np.unique(sizes):
        s = starts[sizes == k]
        iu, ju, scale = _group_pairs(int(k), sample_above)
        per_group = len(iu)
        step = max(1, _MAX_CHUNK_PAIRS // per_group)
        for c in range(0, len(s), step):
            base = s[c:c + step][:, None]
            ia, ib = (base + iu).ravel(), (base + ju).ravel()
            raw = pair_w[ia] if share is None else pair_w[ia] * np.minimum(share[ia], share[ib])
            if scale != 1.0:
                raw = raw * scale
            pending.append((account[ia] * n + account[ib], raw, np.minimum(first[ia], first[ib]),
                            np.maximum(last[ia], last[ib])))
            n_pending += len(ia)
            if n_pending > _MAX_CHUNK_PAIRS:
                acc_parts = [_aggregate(acc_parts, pending)]
                pending, n_pending = [], 0
    if not pending and not acc_parts:
        return empty
    out = _aggregate(acc_parts, pending)
    key = out["key"].to_numpy()
    return pd.DataFrame({"a": key // n, "b": key % n, "raw": out["raw"].to_numpy(),
                         "count": out["count"].to_numpy(), "first": out["first"].to_numpy(),
                         "last": out["last"].to_numpy()})


def _group_pairs(k: int, sample_above: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Positions (i < j) of the pairs expanded for one identifier of ``k`` sharers, and the weight scale."""
    if not sample_above or k <= sample_above:
        iu, ju = np.triu_indices(k, 1)
        return iu, ju, 1.0
    perm = np.random.default_rng(k).permutation(k)
    offsets = 2 ** np.arange(int(np.floor(np.log2(k - 1))) + 1)
    p = np.repeat(np.arange(k), len(offsets))
    q = (p + np.tile(offsets, k)) % k
    a, b = perm[p], perm[q]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = np.unique(lo.astype(np.int64) * k + hi)
    key = key[key // k != key % k]
    return key // k, key % k, (k * (k - 1) / 2) / len(key)


def _aggregate(done: list, pending: list) -> pd.DataFrame:
    """Sum pair rows by pair key; ``done`` holds earlier aggregates (with counts), ``pending`` raw rows."""
    frames = list(done)
    if pending:
        frames.append(pd.DataFrame({
            "key": np.concatenate([p[0] for p in pending]), "raw": np.concatenate([p[1] for p in pending]),
            "count": np.ones(sum(len(p[0]) for p in pending), dtype=np.int64),
            "first": np.concatenate([p[2] for p in pending]), "last": np.concatenate([p[3] for p in pending]),
        }))
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    out = df.groupby("key", sort=True).agg(raw=("raw", "sum"), count=("count", "sum"),
                                           first=("first", "min"), last=("last", "max"))
    return out.reset_index()
