"""Neo4j exporter against the real server of scripts/neo4j: counts, idempotence, runs side by side, hostile strings, queries."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest

from graphbuild.errors import ExportError
from graphbuild.schema import NodeLabel, RelType, RunFiles

PORT = os.environ.get("NEO4J_PORT", "7687")
URI = f"bolt://127.0.0.1:{PORT}"

HOSTILE_ID = "acct'\"`}) // MATCH (n) DETACH DELETE n"
HOSTILE_UA = "Mozilla/5.0 `}) RETURN 1 // '\"; MATCH (n) DETACH DELETE n"
HOSTILE_SKELETON = "Think step by step: <NUM> '\"`}) // MATCH (n) DETACH DELETE n {x: 1}\n=cmd|' /C calc'!A0"
HOSTILE_PROMPT = "Solve 17 + 4 '\"`}) // MATCH (n) DETACH DELETE n"
HOSTILE_INSTRUMENT = "card:`}-[r]->() DELETE r //"


# ---------------------------------------------------------------------------------------------
# A small run folder written by hand, following docs/run-folder.md exactly
# ---------------------------------------------------------------------------------------------

def _ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def write_run_folder(path: Path, *, later: bool = False) -> Path:
    """A two-cluster run (``later=True``: a follow-up run with one new cluster and one new account)."""
    path.mkdir(parents=True, exist_ok=True)
    ids = ["a01", "a02", "a03", HOSTILE_ID, "b01", "b02", "z01", "z02"]
    cluster = {"a01": "C0001", "a02": "C0001", "a03": "C0001", HOSTILE_ID: "C0001", "b01": "C0002", "b02": "C0002"}
    if later:
        ids += ["n01", "n02"]
        cluster.update({"n01": "C0003", "n02": "C0003"})
    ids = sorted(ids)
    flagged_clusters = {"C0001", "C0003"}
    acc = pd.DataFrame({
        "account_id": ids,
        "cluster_id": [cluster.get(a, "") for a in ids],
        "flagged": ["true" if cluster.get(a) in flagged_clusters else "false" for a in ids],
        "score": [0.9123 if cluster.get(a) == "C0001" else 0.8 if cluster.get(a) == "C0003"
                  else 0.2 if a in cluster else 0.01 for a in ids],
    })
    acc.to_csv(path / RunFiles.ACCOUNTS, index=False, float_format="%.4f")
    clusters = [
        {"cluster_id": "C0001", "n_accounts": 4, "score": 0.9123, "flagged": "true",
         "reasons": "shared prepaid card across 4 accounts;templated chain-of-thought prompts"},
        {"cluster_id": "C0002", "n_accounts": 2, "score": 0.2, "flagged": "false", "reasons": "shared office IP"},
    ]
    if later:
        clusters.insert(1, {"cluster_id": "C0003", "n_accounts": 2, "score": 0.8, "flagged": "true",
                            "reasons": "synchronized timing"})
    pd.DataFrame(clusters).to_csv(path / RunFiles.CLUSTERS, index=False)
    run = {
        "version": "0.1.0", "seed": 7, "config": {"resolution": 1.0}, "bundle": "worlds/hand",
        "inputs": {"accounts": {"file": "accounts.csv", "sha256": "0" * 64, "rows_read": len(ids),
                                "rows_accepted": len(ids), "rows_rejected": 0}},
        "window": {"since": "2026-11-01T00:00:00Z", "until": "2026-11-08T00:00:00Z" if later else "2026-11-04T00:00:00Z"},
        "counts": {"accounts": len(ids)},
        "previous_run": "../run1" if later else None,
    }
    (path / RunFiles.RUN).write_text(json.dumps(run, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    pd.DataFrame(columns=["table", "file", "line", "column", "value", "reason", "action"]).to_csv(
        path / RunFiles.REJECTS, index=False)

    t1, t2, t3 = _ts("2026-11-01T10:00:00"), _ts("2026-11-02T12:30:00"), _ts("2026-11-03T08:00:00")
    ai = []

    def use(a, kind, ident, n=3, first=t1, last=t2):
        ai.append({"account_id": a, "kind": kind, "identifier": ident, "n_events": n, "first_seen": first, "last_seen": last})

    for a in ["a01", "a02", "a03", HOSTILE_ID]:
        use(a, "ip", "203.0.113.7")
        use(a, "prefix", "203.0.113.0/24")
        use(a, "template", "T0001", n=12)
        use(a, "ip_window", "203.0.113.7|2026-11-02")
    for a in ["a01", "a02", HOSTILE_ID]:
        use(a, "instrument", "card:prepaid-77")
    use("a03", "instrument", HOSTILE_INSTRUMENT)
    use("b02", "instrument", HOSTILE_INSTRUMENT)
    use(HOSTILE_ID, "user_agent", HOSTILE_UA, n=5)
    use("a01", "user_agent", HOSTILE_UA, n=2)
    use("a01", "signup_ip", "203.0.113.7", n=1, first=t1, last=t1)
    for a in ["b01", "b02"]:
        use(a, "ip", "198.51.100.20", n=40, last=t3)
        use(a, "prefix", "198.51.100.0/24", n=40, last=t3)
    for a in ids:  # one hub IP everybody used (too common to be evidence)
        use(a, "ip", "192.0.2.1", n=1)
        use(a, "template", "T0002", n=1)
    if later:
        for a in ["n01", "n02"]:
            use(a, "ip", "2001:db8::1", n=7, first=t2, last=t3)
            use(a, "prefix", "2001:db8::/48", n=7, first=t2, last=t3)
        use("n01", "signup_ip", "2001:db8::1", n=1, first=t2, last=t2)
    ai = pd.DataFrame(ai).sort_values(["account_id", "kind", "identifier"]).reset_index(drop=True)
    ai.to_parquet(path / RunFiles.ACCOUNT_IDENTIFIERS, index=False)

    layer = {"ip": "network", "ip_window": "network", "signup_ip": "network", "prefix": "network",
             "instrument": "payment", "template": "prompt", "user_agent": "timing"}
    idf = (ai.groupby(["kind", "identifier"])["account_id"].nunique().rename("n_accounts").reset_index())
    idf = idf[idf["n_accounts"] >= 2].copy()
    idf["layer"] = idf["kind"].map(layer)
    idf["is_hub"] = idf["identifier"].isin(["192.0.2.1", "T0002"])
    idf["pair_weight"] = [0.0 if h else round(1.0 / n, 4) for h, n in zip(idf["is_hub"], idf["n_accounts"])]
    idf[["kind", "identifier", "layer", "n_accounts", "pair_weight", "is_hub"]].to_parquet(
        path / RunFiles.IDENTIFIERS, index=False)

    pd.DataFrame({
        "template_id": ["T0001", "T0002"],
        "skeleton": [HOSTILE_SKELETON, "hello <NAME>"],
        "n_accounts": [4, len(ids)],
        "n_prompts": [48, len(ids)],
        "is_hub": [False, True],
        "examples": [[HOSTILE_PROMPT, "Solve 3 + 5 step by step"], ["hello bob"]],
    }).to_parquet(path / RunFiles.TEMPLATES, index=False)

    links = []

    def link(a, b, lay, w, n, first=t1, last=t2):
        a, b = sorted([a, b])
        links.append({"account_a": a, "account_b": b, "layer": lay, "weight": w, "evidence_count": n,
                      "first_seen": first, "last_seen": last})

    c1 = sorted(["a01", "a02", "a03", HOSTILE_ID])
    for i, a in enumerate(c1):
        for b in c1[i + 1:]:
            link(a, b, "network", 0.5, 4)
            link(a, b, "prompt", 0.7, 12)
    link("a01", "a02", "payment", 0.33, 1)
    link("a01", HOSTILE_ID, "payment", 0.33, 1)
    link("a02", HOSTILE_ID, "payment", 0.33, 1)
    link("a01", HOSTILE_ID, "timing", 0.2, 2)
    link("b01", "b02", "network", 0.6, 40, last=t3)
    link("a03", "b02", "payment", 0.5, 1)
    if later:
        link("n01", "n02", "network", 0.9, 7, first=t2, last=t3)
    pd.DataFrame(links).sort_values(["account_a", "account_b", "layer"]).to_parquet(path / RunFiles.LINKS, index=False)

    pd.DataFrame({"account_id": ids, "n_requests": [10] * len(ids)}).to_parquet(path / RunFiles.FEATURES, index=False)
    acc.assign(embeddedness=0.5).to_parquet(path / RunFiles.ACCOUNT_DETAILS, index=False)
    det = []
    for c in clusters:
        members = sorted(a for a, cid in cluster.items() if cid == c["cluster_id"])
        det.append({
            "cluster_id": c["cluster_id"], "n_accounts": c["n_accounts"], "score": c["score"],
            "flagged": c["flagged"] == "true", "reasons": c["reasons"].split(";"),
            "signals": {"prepaid_share": 0.75}, "stability": 0.9, "members": members,
            "layer_weight": {"network": 0.5, "payment": 0.2, "prompt": 0.3, "timing": 0.0},
            "top_identifiers": [], "templates": [], "hourly_profile": [0.0] * 24,
            "first_seen": "2026-11-01T10:00:00Z", "last_seen": "2026-11-02T12:30:00Z",
            "created_first": "2026-10-30T00:00:00Z", "created_last": "2026-10-31T00:00:00Z",
        })
    (path / RunFiles.CLUSTER_DETAILS).write_text(json.dumps({"clusters": det}, indent=1, sort_keys=True),
                                                 encoding="utf-8")
    pd.DataFrame({"cluster_id": ["C0001"], "hour": [_ts("2026-11-02T12:00:00")], "requests": [10], "signups": [0]}
                 ).to_parquet(path / RunFiles.CLUSTER_ACTIVITY, index=False)
    pd.DataFrame({"account_id": ["a01"], "ts": [t1], "ip": ["203.0.113.7"], "user_agent": [HOSTILE_UA],
                  "prompt": [HOSTILE_PROMPT], "cluster_id": ["C0001"]}).to_parquet(path / RunFiles.CLUSTER_EVENTS,
                                                                                    index=False)
    if later:
        pd.DataFrame({"cluster_id": ["C0001", "C0003", "C0002"], "status": ["continuing", "new", "continuing"],
                      "previous_ids": ["C0001", "", "C0002"], "overlap": [4, 0, 2], "jaccard": [1.0, 0.0, 1.0],
                      "n_previous": [4, 0, 2], "n_current": [4, 2, 2]}).to_csv(path / "lineage.csv", index=False)
    return path


@pytest.fixture(scope="module")
def hand_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("neo4j-runs")
    return write_run_folder(root / "run1"), write_run_folder(root / "run2", later=True)


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def neo4j_driver():
    neo4j = pytest.importorskip("neo4j")
    try:
        driver = neo4j.GraphDatabase.driver(URI, auth=None, connection_timeout=5)
        driver.verify_connectivity()
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        msg = f"no Neo4j server at {URI} ({type(exc).__name__}); start one with scripts/neo4j start"
        if os.environ.get("HYDRASCOPE_REQUIRE_NEO4J") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    yield driver
    driver.close()


def clear(driver) -> None:
    with driver.session() as s:
        s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()


@pytest.fixture
def db(neo4j_driver, tmp_path_factory):
    """The driver, with the database emptied and held exclusively (safe under pytest-xdist)."""
    lock = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"hydrascope-neo4j-{PORT}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        clear(neo4j_driver)
        yield neo4j_driver
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def counts(driver) -> tuple[dict, dict]:
    nodes = {r["label"]: r["n"] for r in driver.execute_query(
        "MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS n").records}
    rels = {r["type"]: r["n"] for r in driver.execute_query(
        "MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n").records}
    return nodes, rels


def expected_counts(*run_dirs: Path) -> tuple[dict, dict]:
    """Node and relationship counts the graph must have after exporting these runs, from pandas."""
    from exporters.neo4j.model import IDENTIFIER_NODES

    accounts, keys, uses, links = set(), {}, set(), set()
    n_clusters = n_members = 0
    for d in run_dirs:
        acc = pd.read_csv(d / RunFiles.ACCOUNTS, dtype=str, keep_default_na=False)
        cl = pd.read_csv(d / RunFiles.CLUSTERS, dtype=str, keep_default_na=False)
        ai = pd.read_parquet(d / RunFiles.ACCOUNT_IDENTIFIERS)
        lk = pd.read_parquet(d / RunFiles.LINKS)
        tm = pd.read_parquet(d / RunFiles.TEMPLATES)
        accounts |= set(acc["account_id"]) | set(ai["account_id"]) | set(lk["account_a"]) | set(lk["account_b"])
        n_clusters += len(cl)
        n_members += int((acc["cluster_id"] != "").sum())
        ai = ai[ai["kind"].isin(IDENTIFIER_NODES)]
        for a, k, i in zip(ai["account_id"], ai["kind"], ai["identifier"]):
            label, rel = IDENTIFIER_NODES[k]
            keys.setdefault(label, set()).add(i)
            uses.add((rel, a, i, k if rel == RelType.USED_IP else ""))
        keys.setdefault(NodeLabel.TEMPLATE, set()).update(tm["template_id"])
        links |= set(zip(lk["account_a"], lk["account_b"], lk["layer"]))
    nodes = {NodeLabel.ACCOUNT: len(accounts), NodeLabel.CLUSTER: n_clusters, NodeLabel.RUN: len(run_dirs)}
    nodes.update({label: len(v) for label, v in keys.items()})
    rels = {RelType.MEMBER_OF: n_members, RelType.IN_RUN: n_clusters, RelType.LINKED: len(links)}
    for rel, *_ in uses:
        rels[rel] = rels.get(rel, 0) + 1
    return {k: v for k, v in nodes.items() if v}, {k: v for k, v in rels.items() if v}


def snapshot(driver) -> tuple[list, list]:
    """Every node and relationship with its properties, sorted (for order-independence checks)."""
    def norm(props):
        return json.dumps({k: str(v) for k, v in props.items()}, sort_keys=True)
    nodes = sorted((sorted(r["l"]), norm(r["p"])) for r in driver.execute_query(
        "MATCH (n) RETURN labels(n) AS l, properties(n) AS p").records)
    rels = sorted((r["t"], norm(r["a"]), norm(r["b"]), norm(r["p"])) for r in driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN type(r) AS t, properties(a) AS a, properties(b) AS b, properties(r) AS p").records)
    return nodes, rels


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

@pytest.mark.neo4j
def test_export_counts_match_run_folder(db, hand_runs):
    from exporters.neo4j import export_run

    run1, _ = hand_runs
    stats = export_run(run1, URI, batch_size=3)
    assert counts(db) == expected_counts(run1)
    assert stats.nodes_created == sum(expected_counts(run1)[0].values())
    assert stats.relationships_created == sum(expected_counts(run1)[1].values())
    # the hub / window kinds are not nodes, the 'ip_window' rows are skipped
    assert db.execute_query("MATCH (i:IP) WHERE i.address CONTAINS '|' RETURN count(i) AS n").records[0]["n"] == 0


@pytest.mark.neo4j
def test_reexport_changes_no_counts(db, hand_runs):
    from exporters.neo4j import export_run

    run1, _ = hand_runs
    export_run(run1, URI, batch_size=4)
    before = counts(db)
    snap = snapshot(db)
    stats = export_run(run1, URI, batch_size=1000)
    assert stats.nodes_created == 0 and stats.relationships_created == 0
    assert counts(db) == before
    assert snapshot(db) == snap


@pytest.mark.neo4j
def test_later_run_added_beside_earlier_one(db, hand_runs):
    from exporters.neo4j import export_run

    run1, run2 = hand_runs
    s1 = export_run(run1, URI)
    s2 = export_run(run2, URI)
    assert s1.run_id != s2.run_id
    assert counts(db) == expected_counts(run1, run2)
    # the shared IP node is one node used by accounts of both runs
    rec = db.execute_query("MATCH (i:IP {address: '203.0.113.7'})<-[u:USED_IP {kind: 'ip'}]-(a) "
                           "RETURN count(a) AS n, collect(DISTINCT u.run_ids) AS ids").records[0]
    assert rec["n"] == 4 and rec["ids"] == [sorted([s1.run_id, s2.run_id])]


@pytest.mark.neo4j
def test_export_order_does_not_matter(db, hand_runs):
    from exporters.neo4j import export_run

    run1, run2 = hand_runs
    export_run(run1, URI)
    export_run(run2, URI)
    a = snapshot(db)
    clear(db)
    export_run(run2, URI)
    export_run(run1, URI)
    assert snapshot(db) == a


@pytest.mark.neo4j
def test_hostile_strings_arrive_verbatim(db, hand_runs):
    from exporters.neo4j import export_run

    run1, _ = hand_runs
    export_run(run1, URI, batch_size=2)
    assert db.execute_query("MATCH (a:Account {account_id: $id}) RETURN a.cluster_id AS c",
                            id=HOSTILE_ID).records[0]["c"] == "C0001"
    t = db.execute_query("MATCH (t:PromptTemplate {template_id: 'T0001'}) RETURN t.skeleton AS s, t.examples AS e"
                         ).records[0]
    assert t["s"] == HOSTILE_SKELETON and t["e"][0] == HOSTILE_PROMPT
    ua = db.execute_query("MATCH (a:Account)-[u:USED_USER_AGENT]->(x:UserAgent {user_agent: $ua}) "
                          "RETURN collect(a.account_id) AS a", ua=HOSTILE_UA).records[0]["a"]
    assert sorted(ua) == sorted(["a01", HOSTILE_ID])
    assert db.execute_query("MATCH (p:PaymentInstrument {instrument_id: $i}) RETURN count(p) AS n",
                            i=HOSTILE_INSTRUMENT).records[0]["n"] == 1
    assert counts(db) == expected_counts(run1)  # nothing was deleted by the injected text


@pytest.mark.neo4j
def test_queries_answer_correctly(db, hand_runs):
    from exporters.neo4j import export_run, run_query

    run1, run2 = hand_runs
    s1 = export_run(run1, URI)
    # with one run, every cluster is new
    new = run_query(db, "new_clusters_in_latest_run")
    assert sorted(r["cluster_id"] for r in new) == ["C0001", "C0002"]
    s2 = export_run(run2, URI)
    check_queries(db, run2, s2.run_id, previous=run1)
    top1 = run_query(db, "top_flagged_clusters", run_id=s1.run_id)
    assert [r["cluster_id"] for r in top1] == ["C0001"]


def check_queries(driver, run_dir: Path, run_id: str, previous: Path | None = None, max_hops: int = 8) -> None:
    """Every investigator query against answers computed from the run folder with pandas/networkx."""
    from exporters.neo4j import QUERY_NAMES, run_query
    from exporters.neo4j.model import IDENTIFIER_NODES

    acc = pd.read_csv(run_dir / RunFiles.ACCOUNTS, dtype={"account_id": str, "cluster_id": str}, keep_default_na=False)
    cl = pd.read_csv(run_dir / RunFiles.CLUSTERS, dtype={"cluster_id": str}, keep_default_na=False)
    ai = pd.read_parquet(run_dir / RunFiles.ACCOUNT_IDENTIFIERS)
    lk = pd.read_parquet(run_dir / RunFiles.LINKS)
    idf = pd.read_parquet(run_dir / RunFiles.IDENTIFIERS)
    done = set()

    # top flagged clusters
    fl = cl[cl["flagged"].astype(str).str.lower() == "true"].sort_values(["score", "cluster_id"],
                                                                       ascending=[False, True])
    got = run_query(driver, "top_flagged_clusters", limit=1000)
    assert got and [r["cluster_id"] for r in got] == list(fl["cluster_id"])
    if (run_dir / RunFiles.CLUSTER_DETAILS).is_file():
        det = {c["cluster_id"]: c["reasons"] for c in json.loads((run_dir / RunFiles.CLUSTER_DETAILS).read_text())["clusters"]}
        assert [r["reasons"] for r in got] == [det[c] for c in fl["cluster_id"]]
    else:
        assert [r["reasons"] for r in got] == [[x.strip() for x in s.split(";") if x.strip()] for s in fl["reasons"]]
    assert all(r["run_id"] == run_id for r in got)
    done.add("top_flagged_clusters")

    # accounts sharing an instrument: the account with the most co-users
    pay = ai[ai["kind"] == "instrument"]
    co = pay.merge(pay, on="identifier")
    co = co[co["account_id_x"] != co["account_id_y"]]
    assert len(co), "the run has no shared payment instrument"
    probe = co.groupby("account_id_x")["account_id_y"].nunique().sort_values(ascending=False).index[0]
    want = co[co["account_id_x"] == probe].groupby("account_id_y")["identifier"].apply(lambda s: sorted(set(s)))
    got = run_query(driver, "accounts_sharing_instrument", account_id=probe)
    assert {r["account_id"]: r["instruments"] for r in got} == want.to_dict()
    assert [r["account_id"] for r in got] == sorted(want.index)
    done.add("accounts_sharing_instrument")

    # shortest path: networkx over links and non-hub identifiers
    g = nx.Graph()
    g.add_edges_from(("A:" + a, "A:" + b) for a, b in zip(lk["account_a"], lk["account_b"]))
    hubs = set(zip(idf.loc[idf["is_hub"], "kind"].map(lambda k: IDENTIFIER_NODES.get(k, ("?",))[0]),
                   idf.loc[idf["is_hub"], "identifier"]))
    sub = ai[ai["kind"].isin(IDENTIFIER_NODES)]
    for a, k, i in zip(sub["account_id"], sub["kind"], sub["identifier"]):
        label = IDENTIFIER_NODES[k][0]
        if (label, i) not in hubs:
            g.add_edge("A:" + a, f"{label}:{i}")
    members = acc[acc["cluster_id"] != ""]
    flagged_ids = members[members["flagged"].astype(str).str.lower() == "true"]["account_id"].tolist()
    src = sorted(flagged_ids)[0]
    lengths = nx.single_source_shortest_path_length(g, "A:" + src, cutoff=max_hops)
    far = sorted((d, n) for n, d in lengths.items() if n.startswith("A:") and d >= 2)
    assert far, "no pair of accounts two hops apart"
    hops, dst = far[-1][0], far[-1][1][2:]
    got = run_query(driver, "shortest_path", account_a=src, account_b=dst, max_hops=max_hops)
    assert len(got) == 1 and got[0]["hops"] == hops
    assert got[0]["ids"][0] == src and got[0]["ids"][-1] == dst
    done.add("shortest_path")

    # templates used by the top flagged cluster
    cid = fl["cluster_id"].iloc[0]
    mem = set(acc.loc[acc["cluster_id"] == cid, "account_id"])
    tu = ai[(ai["kind"] == "template") & ai["account_id"].isin(mem)]
    want = tu.groupby("identifier").agg(n_accounts=("account_id", "nunique"), n_prompts=("n_events", "sum"))
    want = want.reset_index().sort_values(["n_accounts", "identifier"], ascending=[False, True])
    got = run_query(driver, "cluster_templates", cluster_id=cid)
    assert got and [(r["template_id"], r["n_accounts"], r["n_prompts"]) for r in got] == \
        list(zip(want["identifier"], want["n_accounts"], want["n_prompts"]))
    done.add("cluster_templates")

    # clusters new in the latest run
    lin = run_dir / "lineage.csv"
    if lin.is_file():
        lt = pd.read_csv(lin, dtype=str, keep_default_na=False)
        new_ids = set(lt.loc[lt["status"] == "new", "cluster_id"]) & set(cl["cluster_id"])
    else:
        old = set()
        if previous is not None:
            pa = pd.read_csv(previous / RunFiles.ACCOUNTS, dtype=str, keep_default_na=False)
            old = set(pa.loc[pa["cluster_id"] != "", "account_id"])
        new_ids = {c for c, grp in members.groupby("cluster_id") if not set(grp["account_id"]) & old}
    got = run_query(driver, "new_clusters_in_latest_run")
    assert got and sorted(r["cluster_id"] for r in got) == sorted(new_ids)
    done.add("new_clusters_in_latest_run")

    # account history
    got = run_query(driver, "account_history", account_id=src)
    assert got and got[-1]["run_id"] == run_id
    assert got[-1]["cluster_id"] == acc.loc[acc["account_id"] == src, "cluster_id"].iloc[0]
    done.add("account_history")

    assert done == set(QUERY_NAMES)


def test_unreachable_server_is_an_export_error(hand_runs):
    from exporters.neo4j import export_run

    with pytest.raises(ExportError, match="cannot reach"):
        export_run(hand_runs[0], "bolt://127.0.0.1:9", batch_size=10)


@pytest.mark.neo4j
def test_cli_exports(db, hand_runs, capsys, monkeypatch):
    from hydrascope.cli import main

    run1, _ = hand_runs
    assert main(["export", "neo4j", str(run1), "--uri", URI, "--no-auth", "--batch-size", "3"]) == 0
    out = capsys.readouterr().out
    assert "Account" in out
    assert counts(db) == expected_counts(run1)


def test_admin_csv_files(hand_runs, tmp_path):
    from exporters.neo4j.admin_import import write_admin_csv
    from hydrascope.cli import main

    run1, _ = hand_runs
    res = write_admin_csv(run1, tmp_path / "a")
    nodes, rels = expected_counts(run1)
    assert {k: res.rows[f] for k, f in res.nodes.items() if res.rows[f]} == nodes
    assert {k: res.rows[f] for k, f in res.relationships.items() if res.rows[f]} == rels
    text = (tmp_path / "a" / res.nodes[NodeLabel.TEMPLATE]).read_text(encoding="utf-8")
    assert '"' + HOSTILE_SKELETON.replace('"', '""') + '"' in text  # verbatim, CSV-quoted
    assert (tmp_path / "a" / "import.sh").read_text().count("--nodes=") == len(res.nodes)
    # same bytes for the same run
    write_admin_csv(run1, tmp_path / "b")
    for f in list(res.nodes.values()) + list(res.relationships.values()):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert main(["export", "neo4j", str(run1), "--admin-csv", str(tmp_path / "c")]) == 0


@pytest.mark.neo4j
def test_demo_run_export(db, demo_run):
    """The demo world's run: counts match the run folder, re-export keeps them, every query answers correctly."""
    from exporters.neo4j import export_run

    stats = export_run(demo_run, URI)
    want = expected_counts(demo_run)
    assert counts(db) == want
    assert stats.nodes_created == sum(want[0].values())
    again = export_run(demo_run, URI, batch_size=20000)
    assert again.run_id == stats.run_id
    assert again.nodes_created == 0 and again.relationships_created == 0
    assert counts(db) == want
    check_queries(db, demo_run, stats.run_id)


def test_shared_instruments_carry_their_type(db, demo_world, demo_run):
    """A shared instrument's PaymentInstrument.type is the type its payment rows give it."""
    from exporters.neo4j import export_run

    pay = pd.read_csv(demo_world / "payments.csv", dtype=str, keep_default_na=False)
    pay = pay[pay["instrument_type"] != ""]
    want = {i: sorted(g["instrument_type"].str.lower().value_counts().items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
            for i, g in pay.groupby("instrument_id")}
    stats = export_run(demo_run, URI)
    got = {r["id"]: r["type"] for r in db.execute_query(
        "MATCH (p:PaymentInstrument) WHERE p.n_accounts >= 2 RETURN p.instrument_id AS id, p.type AS type").records}
    assert stats.run_id and len(got) >= 5
    assert got == {i: want[i] for i in got}
    assert len(set(got.values())) >= 2  # more than one kind of instrument is shared in the demo world


# ---------------------------------------------------------------------------------------------
# A scratch server of our own (scripts/neo4j on another port): neo4j-admin import, and an export
# interrupted by the server dying. Slow (server starts), so also marked `slow`.
# ---------------------------------------------------------------------------------------------

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "neo4j"
SCRATCH_PORT = int(os.environ.get("HYDRASCOPE_NEO4J_SCRATCH_PORT", "7699"))


def _scratch(cmd: str, home: Path, *args: str, check: bool = True):
    import subprocess

    env = {**os.environ, "NEO4J_PORT": str(SCRATCH_PORT), "NEO4J_HOME_DIR": str(home), "NEO4J_HEAP": "1g",
           "NEO4J_PAGECACHE": "256m"}
    return subprocess.run([str(SCRIPT), cmd, *args], env=env, check=check, capture_output=True, text=True)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, hand_runs, neo4j_driver):
    """A second server on SCRATCH_PORT whose database was loaded with neo4j-admin from run1's CSVs."""
    import subprocess

    from exporters.neo4j.admin_import import write_admin_csv

    root = tmp_path_factory.mktemp("scratch")
    home = root / "home"
    res = write_admin_csv(hand_runs[0], root / "csv")
    env = {**os.environ, "NEO4J_ADMIN": f"{SCRIPT} admin", "NEO4J_PORT": str(SCRATCH_PORT),
           "NEO4J_HOME_DIR": str(home), "NEO4J_HEAP": "1g"}
    out = subprocess.run(["sh", str(res.directory / "import.sh"), "neo4j"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    started = _scratch("start", home, check=False)
    if started.returncode != 0:
        pytest.fail(f"scratch server did not start: {started.stderr[-2000:]}")
    import neo4j

    driver = neo4j.GraphDatabase.driver(f"bolt://127.0.0.1:{SCRATCH_PORT}", auth=None)
    yield home, driver
    driver.close()
    _scratch("stop", home, check=False)


@pytest.mark.neo4j
@pytest.mark.slow
def test_admin_import_builds_the_same_graph(db, scratch, hand_runs):
    from exporters.neo4j import export_run

    home, sdriver = scratch
    imported = snapshot(sdriver)
    export_run(hand_runs[0], URI)
    assert imported == snapshot(db)
    stats = export_run(hand_runs[0], f"bolt://127.0.0.1:{SCRATCH_PORT}")  # adds constraints, nothing else
    assert stats.nodes_created == 0 and stats.relationships_created == 0
    assert snapshot(sdriver) == imported


@pytest.mark.neo4j
@pytest.mark.slow
def test_export_interrupted_by_server_death_leaves_whole_batches(scratch, demo_run):
    """Kill -9 the server mid-export: only whole batches are in the database; a re-run completes it."""
    import signal
    import threading
    import time

    from exporters.neo4j import export_run

    home, sdriver = scratch  # export_run is used for the completing re-run below
    clear(sdriver)
    uri = f"bolt://127.0.0.1:{SCRATCH_PORT}"
    want = expected_counts(demo_run)
    batch = 50
    errors: list[BaseException] = []

    import neo4j

    from exporters.neo4j import export_run_with_driver

    def work():
        # a driver that gives up retrying after 2 s instead of 30 s, to keep the test short
        drv = neo4j.GraphDatabase.driver(uri, auth=None, max_transaction_retry_time=2)
        try:
            export_run_with_driver(demo_run, drv, batch_size=batch)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            drv.close()

    th = threading.Thread(target=work)
    th.start()
    deadline = time.time() + 300
    while time.time() < deadline:
        n = sdriver.execute_query("MATCH ()-[r:USED_IP]->() RETURN count(r) AS n").records[0]["n"]
        if n >= 3 * batch:
            break
        time.sleep(0.05)
    pid = int((home / "neo4j.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    th.join(timeout=600)
    assert not th.is_alive()
    assert errors and isinstance(errors[0], ExportError), errors
    while True:  # wait for the process to be gone before restarting on the same home
        try:
            os.kill(pid, 0)
            time.sleep(0.2)
        except ProcessLookupError:
            break
    _scratch("start", home)
    n_acc, rels = counts(sdriver)
    assert n_acc[NodeLabel.ACCOUNT] == want[0][NodeLabel.ACCOUNT]      # an earlier phase: complete
    assert 0 < rels[RelType.USED_IP] < want[1][RelType.USED_IP]         # the interrupted phase
    assert rels[RelType.USED_IP] % batch == 0                           # ... holds whole batches only
    assert RelType.LINKED not in rels                                   # a later phase: not started
    assert sdriver.execute_query("MATCH (r:Run) RETURN r.complete AS c").records[0]["c"] is False
    export_run(demo_run, uri, batch_size=5000)
    assert counts(sdriver) == want
    assert sdriver.execute_query("MATCH (r:Run) RETURN r.complete AS c").records[0]["c"] is True


def test_run_folder_errors(tmp_path, hand_runs):
    from graphbuild.errors import RunFolderError

    from exporters.neo4j import prepare_run

    with pytest.raises(RunFolderError, match="not a hydrascope run folder"):
        prepare_run(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(hand_runs[0], bad)
    pd.read_parquet(bad / RunFiles.LINKS).drop(columns=["layer"]).to_parquet(bad / RunFiles.LINKS)
    with pytest.raises(RunFolderError, match="layer"):
        prepare_run(bad)
    assert prepare_run(hand_runs[0]).run_id == prepare_run(hand_runs[0]).run_id
