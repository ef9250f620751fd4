"""Lockstep pairs: accounts active in the same short time windows far more often than chance, exactly or at scale."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["lockstep_pairs", "LSH_BANDS", "LSH_ROWS"]

#: LSH bands and rows per band of the scale mode (see :func:`lockstep_pairs`, docs/detection.md)
LSH_BANDS = 128
LSH_ROWS = 2
#: LSH bands whose MinHash bins are built at once (bounds the signature memory: bins x accounts x 4 bytes)
_GROUP_BANDS = 32
#: LSH buckets with more members than this are joined by a sparse expander instead of a clique
_BUCKET_CAP = 200
#: rows, probes or pair incidences handled per vectorised step (bounds the working memory)
_CHUNK = 4_000_000
_EMPTY = np.uint32(np.iinfo(np.uint32).max)


def lockstep_pairs(acc, win, first, last, *, n_accounts: int, window_seconds: int, min_common: int = 3,
                   kind_weight: float = 1.0, hub_cap: int = 500, candidates=None, pair_budget: int = 20_000_000,
                   lsh_bands: int = LSH_BANDS, lsh_rows: int = LSH_ROWS, seed: int = 0,
                   info: dict | None = None) -> pd.DataFrame:
    """Account pairs acting in lockstep: many shared activity windows, far more than chance.

    Time is cut into windows of ``window_seconds``; two accounts *share* a window when both are
    active in it. A pair is kept when it shares at least ``min_common`` windows and at least three
    times the number expected by chance from the two accounts' hour-of-day profiles
    (``E = sum_h n_a(h) n_b(h) / W_h``, ``W_h`` the number of windows of hour ``h`` in which anyone
    is active); its evidence is ``kind_weight`` times the Jaccard similarity of the two accounts'
    window sets. Windows with more than ``hub_cap`` active accounts are never counted as shared
    (they still count in each account's number of windows and in ``W_h``).

    Two modes, picked from the cost of expanding every window into its pairs of active accounts
    (``sum_w k_w (k_w - 1) / 2`` over windows with ``2 <= k_w <= hub_cap``):

    * **exact** (cost ``<= pair_budget``): every pair sharing a window is considered; the result is
      identical to expanding all windows into pairs.
    * **scale** (above the budget): shared windows are counted exactly, but only for candidate
      pairs: the caller's ``candidates`` (pairs already linked by other evidence, which timing
      then corroborates) and the pairs that one-permutation MinHash with LSH banding
      (``lsh_bands`` bands of ``lsh_rows`` rows, seeded) finds over the accounts' window sets.
      Memory and time grow about linearly with the rows (sorts aside). Each kept pair has exactly the
      values the exact mode gives it; pairs are missed only when neither source proposes them.
      A band only buckets accounts whose two bins name two different windows, so every LSH
      candidate already shares two windows. Measured with the default 128 bands of 2 rows
      (synthetic load-balanced fleets among 1M background accounts, benchmarks/bench_lockstep.py),
      a pair is found with probability ~0.4 at Jaccard 0.06-0.1 (a dispatcher sending each burst
      to a random fifth of its fleet gives ~0.075), 0.78 at 0.1-0.15, 0.97 at 0.15-0.2 and
      0.998 above 0.2; over 99 % of fleet members get fleet links, so a fleet stays connected
      though single pairs are missed (docs/detection.md).

    Parameters
    ----------
    acc : int array
        Account vertex index per (account, window) row, in ``[0, n_accounts)``.
    win : int64 array
        Window number per row (``floor(epoch / window_seconds)``); rows are unique per (acc, win).
    first, last : int64 arrays
        Per row, epoch seconds of the account's first and last event in the window.
    n_accounts : int
        Number of vertices.
    window_seconds : int
        Window length (for the hour of day of a window).
    min_common : int
        Fewest shared windows of a kept pair.
    kind_weight : float
        Strength of the lockstep kind (the Jaccard similarity is multiplied by it).
    hub_cap : int
        Windows with more active accounts are not counted as shared.
    candidates : tuple of two int arrays, optional
        ``(a, b)`` vertex pairs to evaluate in scale mode (any order, duplicates allowed); ignored
        in exact mode, which evaluates every pair.
    pair_budget : int
        Largest window-pair expansion done exactly.
    lsh_bands, lsh_rows : int
        LSH banding of the scale mode (``lsh_bands * lsh_rows`` MinHash bins per account).
    seed : int
        Seed of the window hashing of the scale mode.
    info : dict, optional
        When given, filled with ``mode`` ("exact" or "scale"), ``pair_incidences`` (the expansion
        cost), ``lsh_candidates``, ``caller_candidates``, ``candidates`` (distinct pairs
        evaluated) and ``pairs`` (pairs returned).

    Returns
    -------
    pandas.DataFrame
        Columns ``a, b`` (int64, ``a < b``), ``raw`` (float), ``count`` (int64, shared windows),
        ``first``, ``last`` (int64, span of the shared windows' events of the two accounts),
        sorted by (a, b).

    Raises
    ------
    ValueError
        Arrays of different lengths, an account index outside ``[0, n_accounts)``, a parameter
        out of range, or a repeated (account, window) row.

    Examples
    --------
    Accounts 0 and 1 share three 5-second windows; account 2 is busy elsewhere in the same hour:

    >>> acc = np.r_[0, 1, 0, 1, 0, 1, np.full(60, 2)]
    >>> win = np.r_[10, 10, 11, 11, 12, 12, np.arange(100, 160)]
    >>> lockstep_pairs(acc, win, win * 5, win * 5 + 4, n_accounts=3, window_seconds=5).to_dict("records")
    [{'a': 0, 'b': 1, 'raw': 1.0, 'count': 3, 'first': 50, 'last': 64}]
    """
    acc = np.asarray(acc)
    win = np.asarray(win)
    first = np.asarray(first)
    last = np.asarray(last)
    n = int(n_accounts)
    _check(acc, win, first, last, n, window_seconds, min_common, hub_cap, pair_budget, lsh_bands, lsh_rows)
    if candidates is not None:
        ca, cb = (np.asarray(x).astype(np.int64, copy=False) for x in candidates)
        if len(ca) != len(cb):
            raise ValueError(f"candidates must be two arrays of one length, got {len(ca)} and {len(cb)}")
        if len(ca) and (min(ca.min(), cb.min()) < 0 or max(ca.max(), cb.max()) >= n):
            raise ValueError(f"candidate account indices must be in [0, {n}), got "
                             f"{min(ca.min(), cb.min())}..{max(ca.max(), cb.max())}")
    out = info if info is not None else {}
    out.update(mode="exact", pair_incidences=0, lsh_candidates=0, caller_candidates=0, candidates=0, pairs=0)
    if len(acc) == 0:
        return _empty()
    if not np.issubdtype(acc.dtype, np.integer):
        acc = acc.astype(np.int64)
    win = win.astype(np.int64, copy=False)
    first = first.astype(np.int64, copy=False)
    last = last.astype(np.int64, copy=False)

    uw, wid, k = _compact_windows(win)
    n_win = np.bincount(acc, minlength=n)
    hour_w = (uw * int(window_seconds) // 3600) % 24
    w_h = np.bincount(hour_w, minlength=24).astype(float)
    w_h[w_h == 0] = 1.0
    code = np.empty(len(acc), dtype=np.int32 if n * 24 < 2**31 else np.int64)
    for c in range(0, len(acc), _CHUNK):
        code[c:c + _CHUNK] = acc[c:c + _CHUNK].astype(code.dtype) * 24 + hour_w[wid[c:c + _CHUNK]]
    prof = np.bincount(code, minlength=n * 24).astype(np.int32).reshape(n, 24)
    del code

    ok_w = (k >= 2) & (k <= hub_cap)
    kk = k[ok_w].astype(np.int64)
    incidences = int((kk * (kk - 1) // 2).sum())
    out["pair_incidences"] = incidences
    out["mode"] = "exact" if incidences <= pair_budget else "scale"
    del kk
    # rows that can be shared: a non-hub window, an account with at least min_common such windows
    row_ok = ok_w[wid]
    ecnt = np.bincount(acc[row_ok], minlength=n)
    ecnt[ecnt < min_common] = 0
    for c in range(0, len(acc), _CHUNK):
        row_ok[c:c + _CHUNK] &= ecnt[acc[c:c + _CHUNK]] > 0
    if not ecnt.any():
        return _empty()
    st = _Structure(acc, win, wid, row_ok, ecnt, uw, int(window_seconds), first, last)
    del row_ok

    if incidences <= pair_budget:
        a, b = _expand(st, n, min_common)
    else:
        keys = [_lsh_candidates(st, n, uw, lsh_bands, lsh_rows, seed)]
        out["lsh_candidates"] = len(keys[0])
        if candidates is not None:
            lo, hi = np.minimum(ca, cb), np.maximum(ca, cb)
            live = (lo != hi) & (ecnt[lo] > 0) & (ecnt[hi] > 0)
            ck = _distinct(lo[live] * n + hi[live])
            out["caller_candidates"] = len(ck)
            keys.append(ck)
        key = _distinct(np.concatenate(keys)) if len(keys) > 1 else keys[0]
        a, b = key // n, key % n
        del keys, key
    out["candidates"] = len(a)
    count, f, l = st.shared(a, b)
    keep = count >= min_common
    a, b, count, f, l = a[keep], b[keep], count[keep], f[keep], l[keep]
    expected = _expected(prof, w_h, a, b)
    keep = count >= 3.0 * expected
    a, b, count, f, l = a[keep], b[keep], count[keep], f[keep], l[keep]
    jac = count / (n_win[a] + n_win[b] - count)
    out["pairs"] = len(a)
    return pd.DataFrame({"a": a.astype(np.int64), "b": b.astype(np.int64), "raw": kind_weight * jac,
                         "count": count.astype(np.int64), "first": f.astype(np.int64), "last": l.astype(np.int64)})


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"a": np.array([], "i8"), "b": np.array([], "i8"), "raw": np.array([], "f8"),
                         "count": np.array([], "i8"), "first": np.array([], "i8"), "last": np.array([], "i8")})


def _check(acc, win, first, last, n, window_seconds, min_common, hub_cap, pair_budget, bands, rows) -> None:
    if not (len(acc) == len(win) == len(first) == len(last)):
        raise ValueError(f"acc, win, first, last must have one length, got {len(acc)}, {len(win)}, "
                         f"{len(first)}, {len(last)}")
    if n < 0:
        raise ValueError(f"n_accounts must be >= 0, got {n}")
    if len(acc) and (acc.min() < 0 or acc.max() >= n):
        raise ValueError(f"account indices must be in [0, {n}), got {acc.min()}..{acc.max()}")
    for name, v, lo in (("window_seconds", window_seconds, 1), ("min_common", min_common, 1),
                        ("hub_cap", hub_cap, 2), ("pair_budget", pair_budget, 0), ("lsh_bands", bands, 1),
                        ("lsh_rows", rows, 1)):
        if int(v) < lo:
            raise ValueError(f"{name} must be at least {lo}, got {v!r}")


def _compact_windows(win: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct windows (sorted), each row's index into them (int32) and the rows per window."""
    lo, hi = int(win.min()), int(win.max())
    span = hi - lo + 1
    if span > 4 * len(win) + (1 << 22):  # sparse window numbers: sort instead of counting
        uw, inv, k = np.unique(win, return_inverse=True, return_counts=True)
        return uw, inv.astype(np.int32 if len(uw) < 2**31 else np.int64), k
    counts = np.zeros(span, dtype=np.int64)
    for c in range(0, len(win), _CHUNK):
        counts += np.bincount(win[c:c + _CHUNK] - lo, minlength=span)
    present = counts > 0
    uw = lo + np.flatnonzero(present)
    k = counts[present]
    del counts
    lookup = (np.cumsum(present) - 1).astype(np.int32)
    wid = np.empty(len(win), dtype=np.int32)
    for c in range(0, len(win), _CHUNK):
        wid[c:c + _CHUNK] = lookup[win[c:c + _CHUNK] - lo]
    return uw, wid, k


def _expected(prof: np.ndarray, w_h: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Chance number of shared windows of each pair from the hour-of-day profiles (see lockstep_pairs)."""
    out = np.empty(len(a))
    step = 1_000_000
    for i in range(0, len(a), step):
        pa = prof[a[i:i + step]].astype(np.float64)
        pb = prof[b[i:i + step]].astype(np.float64)
        out[i:i + step] = (pa * pb / w_h).sum(axis=1)
    return out


def _expand(st: "_Structure", n: int, min_common: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair sharing at least ``min_common`` shareable windows, by expanding each window, sorted by (a, b)."""
    g = st.gkey()
    key = (g % st.nw) * n + g // st.nw  # (window, account) order
    del g
    key.sort()
    acc, wid = key % n, key // n
    del key
    starts = np.flatnonzero(np.r_[True, wid[1:] != wid[:-1]])
    sizes = np.diff(np.r_[starts, len(wid)])
    keep = sizes >= 2
    starts, sizes = starts[keep], sizes[keep]
    total = int((sizes.astype(np.int64) * (sizes - 1) // 2).sum())
    keys = np.empty(total, dtype=np.int64)
    pos = 0
    for size in np.flatnonzero(np.bincount(sizes)):
        s = starts[sizes == size]
        iu, ju = np.triu_indices(int(size), 1)
        step = max(1, _CHUNK // len(iu))
        for c in range(0, len(s), step):
            base = s[c:c + step][:, None]
            kc = (acc[base + iu] * n + acc[base + ju]).ravel()
            keys[pos:pos + len(kc)] = kc
            pos += len(kc)
    keys.sort()
    if len(keys) < min_common:
        return keys[:0], keys[:0]
    # a key occurs at least min_common times when it equals the key min_common - 1 places on
    # (boolean masks only: most keys occur once, and index arrays over all of them would be large)
    d = min_common - 1
    rep = keys[:len(keys) - d] == keys[d:] if d else np.ones(len(keys), dtype=bool)
    rep[1:] &= keys[1:len(keys) - d] != keys[:len(keys) - d - 1]  # first occurrence only
    key = keys[np.flatnonzero(rep)]
    return key // n, key % n


class _Structure:
    """Shareable rows sorted by (account, window), one int64 per row.

    A row's global key is ``account * n_windows + window_index``; an account's rows are one sorted
    run. When they fit, the offsets of the row's first and last event from its window's start are
    packed into the low bits, so that a plain (SIMD) sort orders the rows and no index back to
    the caller's rows is kept; otherwise rows are ordered by an argsort and that index is kept.
    """

    def __init__(self, acc, win, wid, row_ok, ecnt, uw, window, first, last):
        self.nw = np.int64(len(uw))
        self.uw, self.window = uw, np.int64(window)
        self.ecnt = ecnt
        self.start = np.r_[0, np.cumsum(ecnt)[:-1]].astype(np.int64)
        total = int(ecnt.sum())
        lo, hi = 0, 0
        for c in range(0, len(acc), _CHUNK):
            base = win[c:c + _CHUNK] * self.window
            for x in (first, last):
                off = x[c:c + _CHUNK] - base
                lo, hi = min(lo, int(off.min())), max(hi, int(off.max()))
        self.omin = np.int64(lo)
        self.bits = max(1, (hi - lo).bit_length())
        top = (int(np.flatnonzero(ecnt).max()) + 1) * int(self.nw)
        self.packed = top.bit_length() + 2 * self.bits <= 63
        self.shift = np.int64(2 * self.bits if self.packed else 0)
        self.keys = np.empty(total, dtype=np.int64)
        self.src = None if self.packed else np.empty(total, dtype=np.int64)
        pos = 0
        for c in range(0, len(acc), _CHUNK):
            m = row_ok[c:c + _CHUNK]
            g = acc[c:c + _CHUNK][m].astype(np.int64) * self.nw + wid[c:c + _CHUNK][m]
            if self.packed:
                base = win[c:c + _CHUNK][m] * self.window + self.omin
                g = (g << self.shift) | ((first[c:c + _CHUNK][m] - base) << np.int64(self.bits)) | \
                    (last[c:c + _CHUNK][m] - base)
            else:
                self.src[pos:pos + len(g)] = c + np.flatnonzero(m)
            self.keys[pos:pos + len(g)] = g
            pos += len(g)
        if self.packed:
            self.keys.sort()
        else:
            order = np.argsort(self.keys)
            self.keys, self.src = self.keys[order], self.src[order]
            del order
            self.first, self.last = first, last
        for c in range(0, len(self.keys), _CHUNK):
            g = self.keys[c:c + _CHUNK + 1] >> self.shift
            if (g[1:] == g[:-1]).any():
                raise ValueError("rows must be unique per (account, window); found a repeated pair")

    def gkey(self, pos=slice(None)) -> np.ndarray:
        """Global keys (``account * n_windows + window_index``) of the rows at ``pos``."""
        return self.keys[pos] >> self.shift

    def span(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and last event (epoch seconds) of the rows at ``pos``."""
        if not self.packed:
            r = self.src[pos]
            return self.first[r], self.last[r]
        k = self.keys[pos]
        base = self.uw[(k >> self.shift) % self.nw] * self.window + self.omin
        mask = np.int64((1 << self.bits) - 1)
        return base + ((k >> np.int64(self.bits)) & mask), base + (k & mask)

    def shared(self, a: np.ndarray, b: np.ndarray):
        """Exact shared-window count and event span per pair ``(a[i], b[i])``."""
        m = len(a)
        count = np.zeros(m, dtype=np.int64)
        f = np.zeros(m, dtype=np.int64)
        l = np.zeros(m, dtype=np.int64)
        if m == 0:
            return count, f, l
        na, nb = self.ecnt[a], self.ecnt[b]
        small = np.where(na <= nb, a, b)  # probe the shorter window list against the longer one
        large = np.where(na <= nb, b, a)
        # pairs in order of the longer list: the probes of a chunk then search few, nearby stretches
        # of the key array (cache-friendly) without sorting the probes themselves
        perm = np.lexsort((small, large))
        small, large = small[perm], large[perm]
        load = np.cumsum(self.ecnt[small])
        n_keys = len(self.keys)
        lo = 0
        while lo < m:
            hi = int(np.searchsorted(load, (load[lo - 1] if lo else 0) + _CHUNK, side="right"))
            hi = min(max(hi, lo + 1), m)
            s, L = small[lo:hi], large[lo:hi]
            lens = self.ecnt[s]
            tot = int(lens.sum())
            pid = np.repeat(np.arange(hi - lo), lens)
            off = np.cumsum(lens) - lens
            pos = np.arange(tot) + (self.start[s] - off)[pid]
            q = self.gkey(pos) + ((L - s) * self.nw)[pid]
            j = np.searchsorted(self.keys, q << self.shift)
            j[j == n_keys] = 0
            hit = np.flatnonzero(self.gkey(j) == q)
            j = j[hit]
            p = pid[hit]
            fa, la = self.span(pos[hit])
            fb, lb = self.span(j)
            dst = perm[lo:hi]
            count[dst] = np.bincount(p, minlength=hi - lo)
            if len(p):
                grp = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
                nz = dst[p[grp]]
                f[nz] = np.minimum.reduceat(np.minimum(fa, fb), grp)
                l[nz] = np.maximum.reduceat(np.maximum(la, lb), grp)
            lo = hi
        return count, f, l


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser of uint64 values (wrapping arithmetic)."""
    z = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def _distinct(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort: faster than hashing for mostly-distinct int64 keys)."""
    x = np.sort(x)
    return x[np.r_[True, x[1:] != x[:-1]]] if len(x) else x


def _densify(sig: np.ndarray) -> None:
    """Fill empty one-permutation bins in place from the next non-empty bin to the right, circularly.

    Rotation densification (Shrivastava & Li, 2014), as graphbuild.layers.prompts: two accounts
    agree on an empty bin exactly when they agree on the bin it borrows from. ``sig`` is
    bin-major (``sig[bin, account]``) with values ``window_rank * n_bins``; the borrowing distance
    is added, so values borrowed from different distances differ while ``value // n_bins`` still
    names the window. Two right-to-left sweeps over the bins (the first only to wrap around).
    """
    n_bins, m = sig.shape
    carry = np.full(m, _EMPTY, dtype=sig.dtype)
    at = np.zeros(m, dtype=np.int32)  # position (in the doubled bin range) of the carried bin
    for j in range(2 * n_bins - 1, -1, -1):
        row = sig[j % n_bins]
        full = row != _EMPTY
        if j < n_bins:  # the carry is set by now unless the account has no window at all
            sig[j] = np.where(full | (carry == _EMPTY), row, carry + (at - j).astype(sig.dtype))
        np.copyto(carry, row, where=full)
        np.copyto(at, j, where=full)


def _lsh_candidates(st: _Structure, n: int, uw: np.ndarray, bands: int, rows: int, seed: int) -> np.ndarray:
    """Pair keys ``a * n + b`` (a < b, sorted, distinct) proposed by MinHash/LSH over window sets.

    One-permutation MinHash: a seeded 64-bit hash of each window number picks the window's bin
    and its rank; an account's signature holds, per bin, the lowest-ranked of its windows there
    (empty bins densified). An account joins a band's bucketing only when the band's bins name at
    least two different windows: two accounts that share one window and little else (light
    accounts, whose few windows fill most bins by densification) would otherwise collide in many
    bands, though they can never reach ``min_common`` shared windows.
    """
    n_bins = bands * rows
    nw = int(st.nw)
    if (nw + 1) * n_bins >= int(_EMPTY):
        raise ValueError(f"too many windows ({nw}) for {n_bins} MinHash bins; use longer windows or fewer bands")
    h = _mix64(uw.astype(np.uint64) ^ _mix64(np.array([seed], dtype=np.uint64))[0])
    bin_w = (h % np.uint64(n_bins)).astype(np.int64)
    rank_w = np.empty(nw, dtype=np.uint32)
    rank_w[np.argsort(h, kind="stable")] = np.arange(nw, dtype=np.uint32) * np.uint32(n_bins)
    del h
    act = np.flatnonzero(st.ecnt > 0)
    m = len(act)
    cid = np.full(n, -1, dtype=np.int64)
    cid[act] = np.arange(m)
    nbu = np.uint32(n_bins)
    # bucket hashes of 63 - mbits bits: two different band values merge with probability
    # ~m^2 / 2^(64 - mbits) per band, a handful of extra candidates that the exact count drops
    mbits = np.int64(max(1, int(m - 1).bit_length()))
    hbits = int(63 - mbits)
    mmask = np.int64((1 << int(mbits)) - 1)
    parts: list[np.ndarray] = []
    n_parts = 0
    group = _GROUP_BANDS * rows  # bins per group: the signature is built one group at a time
    for g0 in range(0, n_bins, group):
        nb = min(group, n_bins - g0)
        sig = np.full(nb * m, _EMPTY, dtype=np.uint32)  # bin-major: sig[bin * m + account]
        for c in range(0, len(st.keys), _CHUNK):
            gk = st.gkey(slice(c, c + _CHUNK))
            a, w = gk // nw, gk % nw
            b = bin_w[w] - g0
            sel = (b >= 0) & (b < nb)
            np.minimum.at(sig, b[sel] * m + cid[a[sel]], rank_w[w[sel]])
        sig = sig.reshape(nb, m)
        _densify(sig)
        for band in range(nb // rows):
            cols = sig[band * rows:(band + 1) * rows]
            live = cols[0] != _EMPTY  # the account has windows in this group
            if rows > 1:
                differ = np.zeros(m, dtype=bool)
                for r in range(1, rows):
                    differ |= (cols[r] // nbu) != (cols[0] // nbu)
                live &= differ
            idx = np.flatnonzero(live)
            if rows == 1:
                key = cols[0][idx].astype(np.uint64)
            elif rows == 2:
                key = (cols[0][idx].astype(np.uint64) << np.uint64(32)) | cols[1][idx].astype(np.uint64)
            else:
                key = _mix64(cols[0][idx])
                for r in range(1, rows):
                    key = _mix64(key ^ cols[r][idx].astype(np.uint64))
            # one plain sort of (bucket hash, member) packed into an int64; members ascend in a bucket
            packed = (_mix64(key) >> np.uint64(64 - hbits)).astype(np.int64) << mbits
            del key
            packed |= np.arange(len(idx), dtype=np.int64)
            packed.sort()
            ks = packed >> mbits
            member = act[idx[packed & mmask]]
            del packed
            starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
            sizes = np.diff(np.r_[starts, len(ks)])
            keep = sizes >= 2
            starts, sizes = starts[keep], sizes[keep]
            for size in np.flatnonzero(np.bincount(sizes)) if len(sizes) else []:
                s = starts[sizes == size]
                iu, ju = _bucket_pairs(int(size))
                stp = max(1, _CHUNK // len(iu))
                for c in range(0, len(s), stp):
                    base = s[c:c + stp][:, None]
                    pa, pb = member[base + iu].ravel(), member[base + ju].ravel()
                    parts.append(np.minimum(pa, pb) * n + np.maximum(pa, pb))
                    n_parts += len(pa)
            if n_parts > 4 * _CHUNK:  # keep the distinct keys only, to bound memory
                parts = [_distinct(np.concatenate(parts))]
                n_parts = len(parts[0])
        del sig
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return _distinct(np.concatenate(parts))


def _bucket_pairs(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the pairs proposed inside one LSH bucket: all of them, or an expander above the cap."""
    if size <= _BUCKET_CAP:
        return np.triu_indices(size, 1)
    offsets = 2 ** np.arange(int(np.floor(np.log2(size - 1))) + 1)
    p = np.repeat(np.arange(size), len(offsets))
    q = (p + np.tile(offsets, size)) % size
    lo, hi = np.minimum(p, q), np.maximum(p, q)
    key = _distinct(lo.astype(np.int64) * size + hi)
    key = key[key // size != key % size]
    return key // size, key % size
