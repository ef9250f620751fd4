"""Expand (account, identifier) rows into account pairs, vectorised, without expanding hubs."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["expand_pairs"]

_MAX_CHUNK_PAIRS = 20_000_000


def expand_pairs(account: np.ndarray, ident: np.ndarray, pair_w: np.ndarray,
                 first: np.ndarray, last: np.ndarray, *, hub_cap: int, share: np.ndarray | None = None) -> pd.DataFrame:
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
    order = np.lexsort((account, ident))
    account, ident = np.asarray(account)[order].astype(np.int64), np.asarray(ident)[order]
    pair_w, first, last = np.asarray(pair_w, "f8")[order], np.asarray(first, "i8")[order], np.asarray(last, "i8")[order]
    share = None if share is None else np.asarray(share, "f8")[order]
    _, starts, sizes = np.unique(ident, return_index=True, return_counts=True)
    keep = (sizes >= 2) & (sizes <= hub_cap)
    starts, sizes = starts[keep], sizes[keep]
    parts = []
    for k in np.unique(sizes):
        s = starts[sizes == k]
        iu, ju = np.triu_indices(int(k), 1)
        per_group = len(iu)
        step = max(1, _MAX_CHUNK_PAIRS // per_group)
        for c in range(0, len(s), step):
            base = s[c:c + step][:, None]
            ia, ib = (base + iu).ravel(), (base + ju).ravel()
            raw = pair_w[ia] if share is None else pair_w[ia] * np.minimum(share[ia], share[ib])
            parts.append(pd.DataFrame({
                "a": account[ia], "b": account[ib], "raw": raw,
                "first": np.minimum(first[ia], first[ib]), "last": np.maximum(last[ia], last[ib]),
            }))
            if sum(len(p) for p in parts) > _MAX_CHUNK_PAIRS:
                parts = [_aggregate(pd.concat(parts, ignore_index=True))]
    if not parts:
        return empty
    return _aggregate(pd.concat(parts, ignore_index=True)).sort_values(["a", "b"], ignore_index=True)


def _aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """Group pair rows by (a, b); rows from an earlier aggregation already carry their count."""
    if "count" not in df:
        df["count"] = 1
    else:
        df["count"] = df["count"].fillna(1).astype("i8")
    out = df.groupby(["a", "b"], sort=True).agg(raw=("raw", "sum"), count=("count", "sum"),
                                                first=("first", "min"), last=("last", "max"))
    return out.reset_index()
