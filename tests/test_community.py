"""Community detection: planted partitions and LFR graphs (igraph vs leidenalg), trimming, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from community.leiden import CommunityConfig, detect, leiden_membership, trim_members
from community.scoring import ScoringConfig, account_groups, score_clusters
from graphbuild.config import EvidenceConfig
from graphbuild.errors import ConfigError
from graphbuild.graph import EvidenceGraph


def _nmi(a, b) -> float:
    import igraph as ig

    return ig.compare_communities(list(a), list(b), method="nmi")


def _igraph(edges, n):
    import igraph as ig

    g = ig.Graph(n=n, edges=[tuple(e) for e in edges], directed=False)
    g.es["weight"] = 1.0
    return g


@pytest.fixture(scope="module")
def planted():
    nx = pytest.importorskip("networkx")
    G = nx.planted_partition_graph(50, 20, 0.3, 0.001, seed=3)
    return _igraph(G.edges(), G.number_of_nodes()), np.arange(1000) // 20


@pytest.fixture(scope="module")
def lfr():
    nx = pytest.importorskip("networkx")
    G = nx.LFR_benchmark_graph(1000, 2.5, 1.5, 0.2, average_degree=12, max_degree=40, min_community=20,
                               max_community=60, seed=7)
    comms = {frozenset(G.nodes[v]["community"]) for v in G}
    truth = np.zeros(G.number_of_nodes(), dtype=int)
    for i, c in enumerate(sorted(comms, key=min)):
        truth[list(c)] = i
    return _igraph(G.edges(), G.number_of_nodes()), truth


@pytest.mark.parametrize("method", ["igraph", "leidenalg"])
def test_planted_partition_recovered(planted, method):
    g, truth = planted
    m = leiden_membership(g, method=method, seed=1)
    assert _nmi(m, truth) >= 0.95
    assert len(set(m)) >= 40  # 50 planted; modularity may merge a few pairs, never collapse to ~13


@pytest.mark.parametrize("method", ["igraph", "leidenalg"])
def test_lfr_benchmark_recovered(lfr, method):
    g, truth = lfr
    m = leiden_membership(g, method=method, seed=1)
    assert _nmi(m, truth) >= 0.9


def test_igraph_and_leidenalg_agree(lfr):
    g, _ = lfr
    a = leiden_membership(g, method="igraph", seed=1)
    b = leiden_membership(g, method="leidenalg", seed=1)
    assert _nmi(a, b) >= 0.9


def test_trim_members_known_answer():
    m = np.array([0, 0, 0, 0, 1, 1, 1])
    a = np.array([0, 0, 1, 2, 4, 4, 5])
    b = np.array([1, 2, 2, 3, 5, 6, 6])
    w = np.array([1.0, 1.0, 1.0, 0.05, 0.9, 0.8, 0.7])
    out = trim_members(m, a, b, w, ratio=0.25)
    assert out.tolist() == [0, 0, 0, -1, 1, 1, 1]
    assert trim_members(m, a, b, w, ratio=0.0).tolist() == m.tolist()


def _toy_evidence() -> EvidenceGraph:
    """Two dense groups of 8 (payment + prompt), a weak bridge, and a hanger-on tied by one weak link."""
    rows = []
    for base in (0, 8):
        for i in range(base, base + 8):
            for j in range(i + 1, base + 8):
                rows.append((i, j, "payment", 0.8))
                rows.append((i, j, "prompt", 0.6))
    rows.append((3, 12, "network", 0.05))
    rows.append((0, 16, "network", 0.1))
    n = 20
    accounts = np.array([f"acc{i:02d}" for i in range(n)], dtype=object)
    df = pd.DataFrame(rows, columns=["a", "b", "layer", "weight"])
    df["account_a"], df["account_b"] = accounts[df["a"]], accounts[df["b"]]
    df["evidence_count"] = 1
    df["first_seen"] = df["last_seen"] = pd.Timestamp("2026-01-01")
    return EvidenceGraph(config=EvidenceConfig(), accounts=accounts, links=df, uses=pd.DataFrame(),
                         identifiers=pd.DataFrame(), templates=pd.DataFrame(), features=pd.DataFrame(),
                         timing_window_seconds=60)


def test_detect_finds_groups_trims_hangers_and_is_deterministic():
    ev = _toy_evidence()
    p = detect(ev, seed=4)
    m = p.membership
    assert p.n_clusters == 2
    assert len(set(m[:8])) == 1 and len(set(m[8:16])) == 1 and m[0] != m[8]
    assert (m[16:] == -1).all()  # the hanger-on and the isolated accounts are in no cluster
    assert np.allclose(p.stability, 1.0)
    q = detect(ev, seed=4)
    assert q.membership.tolist() == m.tolist()


def test_detect_methods_agree_on_toy():
    ev = _toy_evidence()
    a = detect(ev, CommunityConfig(method="igraph", stability_runs=0)).membership
    b = detect(ev, CommunityConfig(method="leidenalg", stability_runs=0)).membership
    c = detect(ev, CommunityConfig(method="multiplex", stability_runs=0)).membership
    assert _nmi(a, b) == pytest.approx(1.0) and _nmi(a, c) == pytest.approx(1.0)


def test_config_validation():
    with pytest.raises(ConfigError):
        CommunityConfig(trim=1.5)
    with pytest.raises(ConfigError):
        CommunityConfig(method="louvain")
    with pytest.raises(ConfigError):
        ScoringConfig(threshold=1.0)


def test_scoring_rule_two_strong_groups_flag_one_does_not():
    cfg = ScoringConfig()
    zero = {g: 0.0 for g in ("creation", "payment", "network", "content", "behaviour")}
    one = [dict(zero, **{g: 1.0}) for g in zero]
    two = [dict(zero, **{g: 1.0, h: 1.0}) for g in zero for h in zero if g < h]
    assert (score_clusters(one, cfg) < cfg.threshold).all()
    assert (score_clusters(two, cfg) >= cfg.threshold).all()
    vec = score_clusters({g: np.array([1.0, 0.0]) for g in zero}, cfg)
    assert vec[0] > 0.99 and vec[1] < 0.01


def test_account_groups_vectorised_matches_shape():
    f = pd.DataFrame({"hours_to_first_use": [0.5, 5000.0], "disposable_mail": [True, False],
                      "prepaid_share": [1.0, 0.0], "ip_rotation": [0.9, 0.05], "reasoning_share": [1.0, 0.0],
                      "template_share": [1.0, 0.1], "jailbreak_share": [0.0, 0.0], "hours_entropy": [0.95, 0.5]})
    g = account_groups(f)
    s = score_clusters(g, ScoringConfig())
    assert s.shape == (2,) and s[0] > 0.9 and s[1] < 0.05


def test_segment_sums_and_medians_match_numpy():
    from community.scoring import segment_medians, segment_sums

    rng = np.random.default_rng(5)
    lens = np.concatenate([np.arange(1, 140), [200, 257, 1000]])
    x = rng.random(lens.sum()) * rng.random(lens.sum())
    x[::17] = -0.0
    x[5] = np.nan
    bounds = np.concatenate([[0], np.cumsum(lens)])
    codes = np.repeat(np.arange(len(lens)), lens)
    want = [np.nansum(x[s:e]) if np.isnan(x[s:e]).any() else np.sum(x[s:e]) for s, e in zip(bounds, bounds[1:])]
    assert segment_sums(x, bounds).tolist() == want  # bit for bit, not approximately
    med = segment_medians(x, codes, len(lens))
    ref = [np.median(x[s:e]) for s, e in zip(bounds, bounds[1:])]
    assert [repr(v) for v in med] == [repr(v) for v in ref]
    zeros = np.array([0.0, -0.0, -0.0, 0.0, 0.0, -0.0, 0.3, 0.0])
    z = segment_medians(zeros, np.repeat([0, 1], 4), 2, skipna=True)
    assert [repr(v) for v in z] == [repr(np.median(zeros[:4])), repr(np.median(zeros[4:]))]
    assert segment_medians(np.array([np.nan]), np.array([0]), 2, skipna=True, empty=0.0).tolist() == [0.0, 0.0]


def test_combined_links_and_component_graphs_match_the_igraph_view(demo_result):
    from community.leiden import _prepare, combined_links

    ev = demo_result.evidence
    a, b, w = combined_links(ev)
    c = ev.combined()
    assert a.tolist() == c["a"].tolist() and b.tolist() == c["b"].tolist() and w.tolist() == c["weight"].tolist()
    import dataclasses

    # rows not sorted by pair: pandas sums with compensation in row order, and so must we
    shuffled = dataclasses.replace(ev, links=ev.links.sample(frac=1.0, random_state=1).reset_index(drop=True))
    a2, b2, w2 = combined_links(shuffled)
    c2 = shuffled.combined()
    assert a2.tolist() == c2["a"].tolist() and w2.tolist() == c2["weight"].tolist()
    g = ev.graph()
    ctx = _prepare(ev, CommunityConfig())
    assert ctx["graphs"], "the demo world has components to split"
    comp = np.asarray(g.connected_components().membership)
    assert ctx["comp"].tolist() == comp.tolist()
    for c_id, vs, sub, _ in ctx["graphs"]:
        ref = g.induced_subgraph(vs.tolist())
        assert sub.vcount() == ref.vcount()
        assert sub.get_edgelist() == ref.get_edgelist()
        assert sub.es["weight"] == ref.es["weight"]


def test_vectorised_signals_and_summaries_match_per_cluster(demo_result):
    from community.clusters import _pooled_hours, _timing_density, template_concentration
    from community.explain import evidence_summaries, evidence_summary, summary_lookups
    from community.scoring import cluster_signals, cluster_signals_many

    ev, part = demo_result.evidence, demo_result.partition
    m, k = part.membership, part.n_clusters
    assert k >= 3
    tden, conc, pooled = _timing_density(ev, m, k), template_concentration(ev, m, k), _pooled_hours(ev, m, k)
    many = cluster_signals_many(ev.features, m, k, timing_density=tden, template_concentration=conc, hours=pooled)
    sums = evidence_summaries(ev, m, k)
    lookups = summary_lookups(ev)
    for c in range(k):
        members = np.nonzero(m == c)[0]
        one = cluster_signals(ev.features, members, timing_density=tden[c], template_concentration=conc[c],
                              hours=pooled[c])
        for part_name in ("raw", "signals", "groups"):
            got = {name: v.tolist()[c] for name, v in many[part_name].items()}
            assert repr(got) == repr(one[part_name]), (c, part_name)
        uses = ev.uses[ev.uses["account_id"].isin(set(ev.accounts[members]))]
        assert sums[c] == evidence_summary(ev, members, uses=uses, lookups=lookups), c


def test_capped_leiden_equals_uncapped_when_it_converges(lfr):
    g, _ = lfr
    for seed in range(4):
        full = leiden_membership(g, seed=seed)
        assert leiden_membership(g, seed=seed, max_iterations=100).tolist() == full.tolist()
    one = leiden_membership(g, seed=1, max_iterations=1)
    assert len(one) == g.vcount() and _nmi(one, leiden_membership(g, seed=1)) >= 0.9
    with pytest.raises(ConfigError):
        leiden_membership(g, max_iterations=0)


def test_large_components_capped_and_rerun_less(demo_result):
    ev, part = demo_result.evidence, demo_result.partition
    cfg = part.config
    import dataclasses

    # every component "large", but a cap it never reaches and all stability runs: the same partition
    same = detect(ev, dataclasses.replace(cfg, large_edges=1, large_iterations=1000,
                                          large_stability_runs=cfg.stability_runs), seed=part.seed)
    assert same.membership.tolist() == part.membership.tolist()
    assert same.stability.tolist() == part.stability.tolist()
    # one iteration and one stability run on large components: still a partition with stabilities in [0, 1]
    quick = detect(ev, dataclasses.replace(cfg, large_edges=1, large_iterations=1, large_stability_runs=1),
                   seed=part.seed)
    assert quick.n_clusters > 0 and len(quick.stability) == quick.n_clusters
    assert ((quick.stability >= 0) & (quick.stability <= 1)).all()
    # no stability run reaches a large component: its clusters keep stability 1
    none = detect(ev, dataclasses.replace(cfg, large_edges=1, large_iterations=1, large_stability_runs=0),
                  seed=part.seed)
    assert np.allclose(none.stability, 1.0)
    for bad in ({"large_edges": 0}, {"large_iterations": 0}, {"large_stability_runs": -1}):
        with pytest.raises(ConfigError):
            CommunityConfig(**bad)
