"""Lockstep pair finder (graphbuild.lockstep): exact mode equals the window-expansion algorithm, scale mode finds fleets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graphbuild.lockstep import lockstep_pairs
from graphbuild.pairs import expand_pairs

WINDOW = 5
T0 = 1_767_225_600  # 2026-01-01 UTC


def _reference(acc, win, first, last, *, n_accounts, window_seconds, min_common=3, kind_weight=1.0, hub_cap=500):
    """Straight port of the lockstep block of graphbuild.graph.build_evidence before graphbuild.lockstep."""
    tw = pd.DataFrame({"acc": acc, "identifier": pd.Series(win).astype(str), "first": first, "last": last})
    co = expand_pairs(tw["acc"].to_numpy(), pd.factorize(tw["identifier"])[0], np.ones(len(tw)),
                      tw["first"].to_numpy(), tw["last"].to_numpy(), hub_cap=hub_cap)
    co = co[co["count"] >= min_common]
    n_win = np.bincount(tw["acc"].to_numpy(), minlength=n_accounts)
    # _expected_cooccurrence
    if co.empty:
        expected = np.zeros(0)
    else:
        w = pd.to_numeric(tw["identifier"]).to_numpy(dtype=np.int64)
        hour = (w * int(window_seconds) // 3600) % 24
        prof = np.zeros((n_accounts, 24))
        np.add.at(prof, (tw["acc"].to_numpy(), hour), 1.0)
        w_h = np.bincount(hour[np.unique(w, return_index=True)[1]], minlength=24).astype(float)
        w_h[w_h == 0] = 1.0
        a, b = co["a"].to_numpy(), co["b"].to_numpy()
        expected = np.empty(len(a))
        step = 1_000_000
        for i in range(0, len(a), step):
            expected[i:i + step] = (prof[a[i:i + step]] * prof[b[i:i + step]] / w_h).sum(axis=1)
    co = co[co["count"].to_numpy() >= 3.0 * expected].copy()
    jac = co["count"] / (n_win[co["a"]] + n_win[co["b"]] - co["count"])
    co["raw"] = kind_weight * jac.to_numpy()
    return co[["a", "b", "raw", "count", "first", "last"]].reset_index(drop=True)


def _world(seed: int = 0, n: int = 600, days: int = 4, fleets=((30, 0.5), (20, 0.2), (40, 0.05))):
    """Random rows: diurnal background accounts, a few busy ones, and load-balanced fleets."""
    rng = np.random.default_rng(seed)
    acc_parts, t_parts = [], []
    lam = rng.lognormal(np.log(12), 1.0, size=n)
    peak = rng.integers(0, 24, size=n)
    cnt = rng.poisson(lam)
    a = np.repeat(np.arange(n), cnt)
    hour = (peak[a] + rng.normal(0, 3, size=len(a)).round().astype(int)) % 24
    acc_parts.append(a)
    t_parts.append(rng.integers(0, days, size=len(a)) * 86400 + hour * 3600 + rng.integers(0, 3600, size=len(a)))
    members = rng.permutation(n)
    fleet = np.full(n, -1)
    pos = 0
    for f, (size, p) in enumerate(fleets):
        idx = members[pos:pos + size]
        fleet[idx] = f
        pos += size
        t_d = rng.integers(0, days * 86400 - 10, size=24 * days)
        di, mi = np.nonzero(rng.random((len(t_d), size)) < p)
        acc_parts.append(idx[mi])
        t_parts.append(t_d[di] + rng.integers(0, 4, size=len(di)))
    a = np.concatenate(acc_parts)
    t = np.concatenate(t_parts) + T0
    df = pd.DataFrame({"acc": a, "win": t // WINDOW, "t": t})
    g = df.groupby(["acc", "win"], as_index=False).agg(first=("t", "min"), last=("t", "max"))
    g = g.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # callers' rows come in any order
    return (g["acc"].to_numpy(np.int64), g["win"].to_numpy(np.int64), g["first"].to_numpy(np.int64),
            g["last"].to_numpy(np.int64), fleet)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("hub_cap,min_common", [(500, 3), (12, 3), (500, 1), (30, 5)])
def test_exact_mode_equals_window_expansion(seed, hub_cap, min_common):
    acc, win, first, last, _ = _world(seed)
    info = {}
    got = lockstep_pairs(acc, win, first, last, n_accounts=600, window_seconds=WINDOW, hub_cap=hub_cap,
                         min_common=min_common, kind_weight=0.7, info=info)
    ref = _reference(acc, win, first, last, n_accounts=600, window_seconds=WINDOW, hub_cap=hub_cap,
                     min_common=min_common, kind_weight=0.7)
    assert info["mode"] == "exact"
    assert len(ref) > 50
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert list(got.dtypes) == [np.dtype("i8"), np.dtype("i8"), np.dtype("f8"), np.dtype("i8"), np.dtype("i8"),
                                np.dtype("i8")]


def test_exact_mode_equals_window_expansion_on_the_demo_world(demo_world):
    from graphbuild.bundle import load_bundle
    from graphbuild.config import EvidenceConfig
    from graphbuild.layers.timing import choose_timing_window, window_activity

    cfg = EvidenceConfig()
    b = load_bundle(demo_world)
    try:
        window = choose_timing_window(b.con, target_per_window=cfg.timing_target_per_window)
        b.con.execute("""CREATE TEMP TABLE _acc AS SELECT account_id,
                         CAST(row_number() OVER (ORDER BY account_id) - 1 AS INTEGER) AS acc FROM accounts""")
        act = window_activity(b.con, window_seconds=window)
        n_accounts = b.con.execute("SELECT count(*) FROM accounts").fetchall()[0][0]
    finally:
        b.close()
    acc, win = act["acc"].astype(np.int64), act["win"].astype(np.int64)
    first, last = act["first"].astype(np.int64), act["last"].astype(np.int64)
    kw = dict(n_accounts=n_accounts, window_seconds=window, min_common=cfg.timing_min_common,
              kind_weight=cfg.kind_weights["time_window"], hub_cap=cfg.hub_cap)
    ref = _reference(acc, win, first, last, **kw)
    assert len(ref) > 100
    pd.testing.assert_frame_equal(lockstep_pairs(acc, win, first, last, **kw), ref, check_exact=True)
    # scale mode evaluates exactly: given every lockstep pair as a candidate it returns all of them
    info = {}
    scale = lockstep_pairs(acc, win, first, last, **kw, pair_budget=0, info=info,
                           candidates=(ref["b"].to_numpy(), ref["a"].to_numpy()))
    assert info["mode"] == "scale"
    pd.testing.assert_frame_equal(scale, ref, check_exact=True)


@pytest.mark.parametrize("bands,rows", [(64, 2), (24, 1), (200, 3)])
def test_scale_mode_gives_the_exact_values_of_the_pairs_it_finds(bands, rows):
    acc, win, first, last, _ = _world(3)
    ref = _reference(acc, win, first, last, n_accounts=600, window_seconds=WINDOW)
    info = {}
    got = lockstep_pairs(acc, win, first, last, n_accounts=600, window_seconds=WINDOW, pair_budget=0, info=info,
                         lsh_bands=bands, lsh_rows=rows)
    assert info["mode"] == "scale" and info["caller_candidates"] == 0
    assert 0 < len(got) < len(ref)
    both = got.merge(ref, on=["a", "b"], how="left", suffixes=("", "_ref"), indicator=True)
    assert (both["_merge"] == "both").all()  # nothing that the exact mode would not keep
    for c in ("raw", "count", "first", "last"):
        assert (both[c] == both[f"{c}_ref"]).all()


def test_scale_mode_with_all_candidates_equals_exact_mode():
    acc, win, first, last, _ = _world(4)
    ref = _reference(acc, win, first, last, n_accounts=600, window_seconds=WINDOW, hub_cap=20)
    rng = np.random.default_rng(0)
    # every pair of accounts (any order, repeated) plus noise pairs and self-pairs
    a, b = np.triu_indices(600, 1)
    cand_a = np.concatenate([b, a[:1000], rng.integers(0, 600, 500)])
    cand_b = np.concatenate([a, b[:1000], rng.integers(0, 600, 500)])
    got = lockstep_pairs(acc, win, first, last, n_accounts=600, window_seconds=WINDOW, hub_cap=20, pair_budget=0,
                         candidates=(cand_a, cand_b))
    pd.testing.assert_frame_equal(got, ref, check_exact=True)


def test_event_times_outside_their_window_are_kept_exactly():
    # first/last far from the window start cannot be packed next to the row key: the rows are then
    # ordered by an argsort and the times looked up, with the same result
    acc, win, first, last, _ = _world(9)
    first, last = first - 10**12, last + 10**11
    ref = _reference(acc, win, first, last, n_accounts=600, window_seconds=WINDOW)
    assert len(ref) > 50
    pd.testing.assert_frame_equal(lockstep_pairs(acc, win, first, last, n_accounts=600, window_seconds=WINDOW),
                                  ref, check_exact=True)
    got = lockstep_pairs(acc, win, first, last, n_accounts=600, window_seconds=WINDOW, pair_budget=0,
                         candidates=(ref["a"].to_numpy(), ref["b"].to_numpy()))
    pd.testing.assert_frame_equal(got, ref, check_exact=True)


def test_scale_mode_finds_synchronised_fleets_without_other_evidence():
    # bursts to 70 % and 40 % of each fleet: pair Jaccard ~0.28 and ~0.14 (median)
    acc, win, first, last, fleet = _world(5, n=2000, days=6, fleets=((40, 0.7), (60, 0.4)))
    got = lockstep_pairs(acc, win, first, last, n_accounts=2000, window_seconds=WINDOW, pair_budget=0)
    truth = _reference(acc, win, first, last, n_accounts=2000, window_seconds=WINDOW)
    fa, fb = fleet[truth["a"]], fleet[truth["b"]]
    true_keys = set(zip(truth["a"][(fa >= 0) & (fa == fb)], truth["b"][(fa >= 0) & (fa == fb)]))
    got_keys = set(zip(got["a"], got["b"]))
    strong = truth[(fa >= 0) & (fa == fb) & (truth["raw"] >= 0.2)]
    assert len(strong) > 500
    found_strong = np.mean([(x, y) in got_keys for x, y in zip(strong["a"], strong["b"])])
    assert found_strong > 0.95
    assert len(got_keys & true_keys) / len(true_keys) > 0.6
    assert len(got_keys - true_keys) == 0
    # every member of both fleets is linked to its fleet
    for f in (0, 1):
        members = set(np.flatnonzero(fleet == f))
        linked = {x for x, y in got_keys if x in members and y in members} | \
                 {y for x, y in got_keys if x in members and y in members}
        assert linked == members


def test_same_input_gives_identical_output_whatever_the_row_order():
    acc, win, first, last, _ = _world(6)
    perm = np.random.default_rng(1).permutation(len(acc))
    for budget in (20_000_000, 0):
        one = lockstep_pairs(acc, win, first, last, n_accounts=600, window_seconds=WINDOW, pair_budget=budget)
        two = lockstep_pairs(acc[perm].astype(np.int32), win[perm], first[perm], last[perm], n_accounts=600,
                             window_seconds=WINDOW, pair_budget=budget)
        assert len(one) > 0
        pd.testing.assert_frame_equal(one, two, check_exact=True)
    seeded = [lockstep_pairs(acc, win, first, last, n_accounts=600, window_seconds=WINDOW, pair_budget=0, seed=s)
              for s in (0, 0, 7)]
    pd.testing.assert_frame_equal(seeded[0], seeded[1], check_exact=True)


def test_mode_follows_the_pair_budget():
    acc, win, first, last, _ = _world(7)
    info = {}
    lockstep_pairs(acc, win, first, last, n_accounts=600, window_seconds=WINDOW, info=info)
    k = np.unique(win, return_counts=True)[1]
    k = k[(k >= 2) & (k <= 500)]
    assert info["pair_incidences"] == int((k * (k - 1) // 2).sum())
    for budget, mode in ((info["pair_incidences"], "exact"), (info["pair_incidences"] - 1, "scale")):
        lockstep_pairs(acc, win, first, last, n_accounts=600, window_seconds=WINDOW, pair_budget=budget, info=info)
        assert info["mode"] == mode


def test_counts_span_and_hub_windows_by_hand():
    # accounts 0 and 1 share windows 100, 101, 102; window 103 is shared by 0, 1, 2, 4, a hub at hub_cap=3;
    # account 3 shares only two windows with 0 (below min_common); account 4 fills the hour with
    # 100 more windows, so that sharing 3 of them is far above chance
    rows = [(0, 100, 500, 502), (1, 100, 501, 504), (0, 101, 505, 505), (1, 101, 506, 509),
            (0, 102, 512, 513), (1, 102, 510, 510), (0, 103, 515, 515), (1, 103, 516, 516), (2, 103, 517, 517),
            (4, 103, 518, 518), (3, 100, 500, 500), (3, 101, 505, 505), (1, 200, 1000, 1000)]
    rows += [(4, w, 5 * w, 5 * w) for w in range(300, 400)]
    acc, win, first, last = (np.array(c) for c in zip(*rows))
    for budget in (100, 0):
        info = {}
        got = lockstep_pairs(acc, win, first, last, n_accounts=5, window_seconds=5, hub_cap=3, pair_budget=budget,
                             candidates=(np.array([0, 3]), np.array([1, 0])), info=info)
        assert info["pair_incidences"] == 7 and info["mode"] == ("exact" if budget else "scale")
        # n_win: account 0 has 4 windows, account 1 has 5 (the hub window counts here) -> 3 / (4 + 5 - 3)
        assert got.to_dict("list") == {"a": [0], "b": [1], "raw": [0.5], "count": [3], "first": [500], "last": [513]}


def test_empty_and_invalid_input():
    e = lockstep_pairs(np.array([], "i8"), np.array([], "i8"), np.array([], "i8"), np.array([], "i8"),
                       n_accounts=0, window_seconds=5)
    assert e.empty and list(e.columns) == ["a", "b", "raw", "count", "first", "last"]
    one = np.array([0, 1])
    with pytest.raises(ValueError, match="one length"):
        lockstep_pairs(one, one[:1], one, one, n_accounts=2, window_seconds=5)
    with pytest.raises(ValueError, match=r"account indices must be in \[0, 1\)"):
        lockstep_pairs(one, one, one, one, n_accounts=1, window_seconds=5)
    with pytest.raises(ValueError, match="window_seconds must be at least 1, got 0"):
        lockstep_pairs(one, one, one, one, n_accounts=2, window_seconds=0)
    with pytest.raises(ValueError, match="hub_cap must be at least 2"):
        lockstep_pairs(one, one, one, one, n_accounts=2, window_seconds=5, hub_cap=1)
    dup = np.array([0, 0, 0, 1, 1, 1, 0])
    w = np.array([1, 2, 3, 1, 2, 3, 3])
    with pytest.raises(ValueError, match="unique per \\(account, window\\)"):
        lockstep_pairs(dup, w, w, w, n_accounts=2, window_seconds=5)
    acc, win, first, last, _ = _world(8)
    with pytest.raises(ValueError, match=r"candidate account indices must be in \[0, 600\)"):
        lockstep_pairs(acc, win, first, last, n_accounts=600, window_seconds=5, pair_budget=0,
                       candidates=(np.array([0]), np.array([600])))
