"""The static explorer: pages per cluster, offline, deterministic, inert against hostile text — in Chromium."""

from __future__ import annotations

import json
import re
from html import unescape
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exporters.figures import cluster_graph_png, timeline_png
from graphbuild.errors import ExportError
from exporters.site import page_name, script_json, write_site
from graphbuild.schema import KIND_LAYER
from tests.browser import open_browser, require_browser, wait_for

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
READY = "window.hydrascopeReady === true"

# Strings an adversary writes into prompts, user agents, e-mail domains and ids. The payloads set
# window.__pwned (and open dialogs) if they ever run.
HOSTILE_PROMPTS = [
    "<script>window.__pwned = 1; alert(1)</script>",
    "<img src=x onerror=\"window.__pwned = 2; alert(2)\">",
    "javascript:alert(3)",
    "</textarea><b id=\"injected\">bold</b>",
    "</script><script>window.__pwned = 4; alert(4)</script>",
    "<!-- {{7*7}} \u2028 \u2029 &amp; &lt;",
]
HOSTILE_ACCOUNT = "acc\"<b>evil'&"
HOSTILE_UA = "Mozilla/5.0 <img src=x onerror=\"window.__pwned = 5; alert(5)\">"
HOSTILE_DOMAIN = "<svg onload=\"window.__pwned = 6; alert(6)\">.example"
HOSTILE_REASON = "shared user agent <script>window.__pwned = 7; alert(7)</script>"
HOSTILE_CLUSTER = "C../<i>9\"x"
T0 = pd.Timestamp("2026-11-02T00:00:00")
BIG_CLUSTER = "C9000"


# ---------------------------------------------------------------------------------------------
# a hand-made run folder following docs/run-folder.md
# ---------------------------------------------------------------------------------------------

def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_run_folder(path: Path, sizes=(12, 6, 3), *, n_free: int = 5, seed: int = 0,
                     big: int = 0) -> Path:
    """Write a small but complete run folder with hostile text; returns its path.

    ``sizes`` are the cluster sizes (the last one gets a hostile id); ``big`` adds one more
    cluster of that many accounts (for the aggregated view and the benchmark).
    """
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    cids = [f"C{k + 1:04d}" for k in range(len(sizes))]
    if len(sizes) >= 3:
        cids[2] = HOSTILE_CLUSTER
    if big:
        sizes, cids = list(sizes) + [big], cids + [BIG_CLUSTER]
    accounts, acc_rows, ai_rows, link_rows, feat_rows, events, activity = [], [], [], [], [], [], []
    ident_users: dict[tuple[str, str], set] = {}
    templates, details = [], []
    for k, (cid, n) in enumerate(zip(cids, sizes)):
        members = [f"a{k:02d}_{i:05d}" for i in range(n)]
        if k == 0:
            members[1] = HOSTILE_ACCOUNT
        members.sort()
        flagged = k < 2
        score = round(0.95 - 0.2 * k, 4)
        tid = f"t{k:02d}"
        examples = [HOSTILE_PROMPTS[(k + j) % len(HOSTILE_PROMPTS)] + f" step by step #{j}" for j in range(3)]
        templates.append({"template_id": tid, "skeleton": "Explain <script>alert('skeleton')</script> <NUM> step by step",
                          "n_accounts": n, "n_prompts": 3 * n, "is_hub": False, "examples": examples})
        for i, acc in enumerate(members):
            accounts.append(acc)
            acc_rows.append((acc, cid, flagged, round(score - 0.001 * i, 4)))
            created = T0 + pd.Timedelta(hours=int(i % 30))
            uses = [("ip", f"10.{k}.{i % 4}.{i % 3 + 1}"), ("prefix", f"10.{k}.{i % 4}.0/24"),
                    ("instrument", f"pi_{k:02d}_{i % 3}"), ("template", tid), ("signup_ip", f"10.{k}.9.{i % 2}")]
            if k == 0 or i % 2 == 0:
                uses.append(("user_agent", HOSTILE_UA if k == 0 else f"sdk/{k}"))
            uses.append(("ip", f"172.16.{k}.{i}"))  # used by one account only: not drawn
            uses.append(("ip", f"192.168.{k}.{i // 2}"))  # shared by a pair: a dashed account-account edge
            for kind, ident in uses:
                first = T0 + pd.Timedelta(hours=int(rng.integers(0, 48)))
                ai_rows.append((acc, kind, ident, int(rng.integers(1, 40)), first,
                                first + pd.Timedelta(hours=int(rng.integers(0, 24)))))
                ident_users.setdefault((kind, ident), set()).add(acc)
            feat_rows.append((acc, int(rng.integers(5, 90)), HOSTILE_DOMAIN if i == 0 else "mail.example",
                              "ZZ", created, float(rng.uniform()), float(rng.uniform())))
            for j in range(2):
                ts = T0 + pd.Timedelta(minutes=int(rng.integers(0, 3000)))
                events.append((acc, ts, f"10.{k}.{i % 4}.1", HOSTILE_UA, "key", "model-x",
                               HOSTILE_PROMPTS[(i + j) % len(HOSTILE_PROMPTS)], 10, 20, cid))
        for a_i in range(len(members)):
            for b_i in range(a_i + 1, min(len(members), a_i + 4)):
                layer = ("network", "payment", "prompt", "timing")[(a_i + b_i) % 4]
                link_rows.append((members[a_i], members[b_i], layer, round(float(rng.uniform(0.05, 1)), 4),
                                  int(rng.integers(1, 5)), T0, T0 + pd.Timedelta(days=1)))
        for h in range(0, 60, 3):
            activity.append((cid, T0 + pd.Timedelta(hours=h), int(rng.integers(0, 30)), int(h < 30 and h % 6 == 0)))
        details.append({
            "cluster_id": cid, "n_accounts": n, "score": score, "flagged": flagged,
            "reasons": [HOSTILE_REASON, f"{n} of {n} accounts created within 48 h"],
            "signals": {"prepaid_share": 0.9, "template_share": 0.8},
            "stability": 1.0, "members": members, "layer_weight": {"network": 0.5, "payment": 0.3, "prompt": 0.2},
            "top_identifiers": [{"kind": "user_agent", "identifier": HOSTILE_UA, "n_accounts": n,
                                 "n_in_cluster": n, "first_seen": _iso(T0), "last_seen": _iso(T0)}],
            "templates": [{"template_id": tid, "skeleton": templates[-1]["skeleton"], "n_in_cluster": n,
                           "share_of_prompts": 0.75, "examples": examples}],
            "hourly_profile": [1 / 24] * 24, "first_seen": _iso(T0), "last_seen": _iso(T0 + pd.Timedelta(days=2)),
            "created_first": _iso(T0), "created_last": _iso(T0 + pd.Timedelta(hours=29)),
        })
    # cross-cluster links for the overview graph
    firsts = [r[0] for r in acc_rows]
    for k in range(len(cids) - 1):
        a = next(r[0] for r in acc_rows if r[1] == cids[k])
        b = next(r[0] for r in acc_rows if r[1] == cids[k + 1])
        link_rows.append((min(a, b), max(a, b), "network", 0.3, 1, T0, T0))
    for i in range(n_free):
        acc = f"z{i:04d}"
        accounts.append(acc)
        acc_rows.append((acc, None, False, 0.01))
        feat_rows.append((acc, 3, "mail.example", "ZZ", T0, 0.0, 0.0))
    del firsts

    acc_df = pd.DataFrame(acc_rows, columns=["account_id", "cluster_id", "flagged", "score"]).sort_values("account_id")
    acc_df["flagged"] = acc_df["flagged"].map({True: "true", False: "false"})
    acc_df["score"] = acc_df["score"].map(lambda v: f"{v:.4f}")
    acc_df.to_csv(path / "accounts.csv", index=False)
    cl = pd.DataFrame([(d["cluster_id"], d["n_accounts"], f"{d['score']:.4f}", "true" if d["flagged"] else "false",
                        ";".join(d["reasons"])) for d in details],
                      columns=["cluster_id", "n_accounts", "score", "flagged", "reasons"])
    cl.to_csv(path / "clusters.csv", index=False)
    (path / "clusters.json").write_text(json.dumps({"clusters": details}, indent=1), encoding="utf-8")
    (path / "run.json").write_text(json.dumps({
        "version": "test", "seed": 0, "config": {"seed": 0}, "bundle": "bundle", "inputs": {},
        "window": {"since": None, "until": None}, "counts": {}, "previous_run": None}), encoding="utf-8")
    (path / "rejects.csv").write_text("table,file,line,column,value,reason,action\n", encoding="utf-8")
    pd.DataFrame(link_rows, columns=["account_a", "account_b", "layer", "weight", "evidence_count",
                                     "first_seen", "last_seen"]).to_parquet(path / "links.parquet", index=False)
    pd.DataFrame(ai_rows, columns=["account_id", "kind", "identifier", "n_events", "first_seen",
                                   "last_seen"]).to_parquet(path / "account_identifiers.parquet", index=False)
    pd.DataFrame([(kind, ident, KIND_LAYER[kind], len(users), 0.0 if kind == "prefix" else 1.0 / len(users),
                   kind == "prefix" and len(users) > 2) for (kind, ident), users in sorted(ident_users.items())],
                 columns=["kind", "identifier", "layer", "n_accounts", "pair_weight", "is_hub"]
                 ).to_parquet(path / "identifiers.parquet", index=False)
    pd.DataFrame(templates).to_parquet(path / "templates.parquet", index=False)
    pd.DataFrame(feat_rows, columns=["account_id", "n_requests", "email_domain", "country", "created_at",
                                     "prepaid_share", "template_share"]).to_parquet(path / "account_features.parquet", index=False)
    det = acc_df.copy()
    det["embeddedness"] = 0.5
    det.to_parquet(path / "account_details.parquet", index=False)
    pd.DataFrame(activity, columns=["cluster_id", "hour", "requests", "signups"]).to_parquet(
        path / "cluster_activity.parquet", index=False)
    pd.DataFrame(events, columns=["account_id", "ts", "ip", "user_agent", "api_key_id", "model", "prompt",
                                  "prompt_tokens", "completion_tokens", "cluster_id"]).to_parquet(
        path / "cluster_events.parquet", index=False)
    return path


def expected_graph_nodes(run_dir: Path, cluster_id: str) -> int:
    """Accounts + identifier nodes of a detailed cluster graph, computed independently.

    Identifiers used by >= 3 members and not hubs (two-member identifiers are drawn as an
    account-account edge); those of one kind used by exactly the same members form one node.
    """
    acc = pd.read_csv(run_dir / "accounts.csv", dtype=str, keep_default_na=False)
    members = set(acc.loc[acc["cluster_id"] == cluster_id, "account_id"])
    ai = pd.read_parquet(run_dir / "account_identifiers.parquet")
    ai = ai[ai["account_id"].astype(str).isin(members)]
    users = ai.groupby(["kind", "identifier"])["account_id"].agg(lambda s: tuple(sorted(set(s))))
    users = users[users.map(len) >= 2]
    idf = pd.read_parquet(run_dir / "identifiers.parquet").set_index(["kind", "identifier"])
    hubs = {k for k in users.index if k in idf.index and bool(idf.loc[k, "is_hub"])}
    nodes = {(kind, u) for (kind, ident), u in users.items() if (kind, ident) not in hubs and len(u) >= 3}
    return len(members) + len(nodes)


def expected_pair_edges(run_dir: Path, cluster_id: str) -> int:
    """Account pairs that share a non-hub identifier no other member uses (one dashed edge each)."""
    acc = pd.read_csv(run_dir / "accounts.csv", dtype=str, keep_default_na=False)
    members = set(acc.loc[acc["cluster_id"] == cluster_id, "account_id"])
    ai = pd.read_parquet(run_dir / "account_identifiers.parquet")
    ai = ai[ai["account_id"].astype(str).isin(members)]
    users = ai.groupby(["kind", "identifier"])["account_id"].agg(lambda s: tuple(sorted(set(s))))
    hubs = pd.read_parquet(run_dir / "identifiers.parquet").query("is_hub")
    hub_keys = set(zip(hubs["kind"], hubs["identifier"]))
    return len({u for k, u in users.items() if len(u) == 2 and k not in hub_keys})


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory) -> Path:
    return write_run_folder(tmp_path_factory.mktemp("site") / "run")


@pytest.fixture(scope="module")
def hand_site(hand_run):
    return write_site(hand_run)


# ---------------------------------------------------------------------------------------------
# without a browser
# ---------------------------------------------------------------------------------------------

def test_page_names_are_safe_and_distinct():
    ids = ["C0001", "C0002", "c0001", "../etc/passwd", "<script>", "index", "CON", "", " ", "a/b", "a\\b",
           "x" * 300, "Ünïcode", HOSTILE_CLUSTER, "C0001.html"]
    names = [page_name(i) for i in ids]
    assert page_name("C0001") == "C0001.html"
    for n in names:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.html", n), n
        assert n.lower() != "index.html" and len(n) < 80
    assert len({n.lower() for n in names}) == len(names)


def test_script_json_cannot_break_out_of_script():
    payload = {"p": HOSTILE_PROMPTS, "u": "\u2028\u2029", "k": HOSTILE_ACCOUNT}
    text = script_json(payload)
    assert not set(text) & set("<>&\u2028\u2029")
    assert json.loads(text) == payload


def test_every_cluster_gets_a_page(hand_run, hand_site):
    clusters = pd.read_csv(hand_run / "clusters.csv", dtype=str, keep_default_na=False)
    assert sorted(hand_site.clusters) == sorted(clusters["cluster_id"])
    assert hand_site.index == hand_run / "site" / "index.html"
    for cid, page in hand_site.clusters.items():
        assert page.is_file() and page.parent == hand_run / "site" / "clusters"
    assert {p.name for p in hand_site.assets} == {"vis-network.min.js", "site.js"}


def test_hostile_text_never_reaches_html_unescaped(hand_site):
    for page in hand_site.pages():
        html = page.read_text(encoding="utf-8")
        for bad in ("<script>window", "<img src=x", "<svg onload", "<b id=", "</textarea>", "<i>9",
                    "\u2028", "\u2029", "<b>evil"):
            assert bad not in html, (page.name, bad)
        # only our own script elements, and the data block is inert JSON
        assert html.count("<script") == 3
        assert '<script type="application/json" id="hs-data">' in html
        assert "Content-Security-Policy" in html and "default-src 'none'" in unescape(html)
        assert "http://" not in html and "https://" not in html.replace("https://visjs", "")


def test_hostile_text_kept_literally_in_page_data(hand_site):
    page = hand_site.clusters["C0001"]
    html = page.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="hs-data">(.*?)</script>', html, re.S).group(1))
    assert HOSTILE_ACCOUNT in [r[0] for r in data["accounts"]]
    assert HOSTILE_UA in [r[1] for r in data["identifiers"]]
    assert HOSTILE_DOMAIN in [v for r in data["accounts"] for v in r]
    # sample prompts are in the HTML, escaped
    assert "&lt;script&gt;window.__pwned = 1; alert(1)&lt;/script&gt;" in html


def test_same_run_same_bytes(hand_run, tmp_path):
    a = write_site(hand_run, tmp_path / "a")
    b = write_site(hand_run, tmp_path / "b")
    files_a = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes(), rel


def test_stale_cluster_pages_are_removed(hand_run, tmp_path):
    out = tmp_path / "s"
    (out / "clusters").mkdir(parents=True)
    (out / "clusters" / "C9999.html").write_text("old", encoding="utf-8")
    (out / "clusters" / "notes.txt").write_text("keep", encoding="utf-8")
    write_site(hand_run, out)
    assert not (out / "clusters" / "C9999.html").exists()
    assert (out / "clusters" / "notes.txt").exists()


def test_big_cluster_is_aggregated(tmp_path):
    run = write_run_folder(tmp_path / "run", sizes=(4, 3), big=300)
    paths = write_site(run, max_nodes=100)
    big = BIG_CLUSTER
    assert paths.aggregated == (big,)
    html = paths.clusters[big].read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="hs-data">(.*?)</script>', html, re.S).group(1))
    g = data["graph"]
    assert g["mode"] == "aggregated"
    assert len(g["groups"]) + len(g["inode_ids"]) <= 100
    assert sum(n for _, n in g["groups"]) == 300 == len(data["accounts"])
    assert len(g["account_group"]) == 300


def test_standalone_pages_need_no_assets(hand_run, tmp_path):
    paths = write_site(hand_run, tmp_path / "st", standalone=True)
    assert paths.assets == ()
    html = paths.clusters["C0001"].read_text(encoding="utf-8")
    assert "<script src" not in html and "assets/" not in html
    assert "'sha256-" in unescape(html) and "'self'" not in unescape(html)


def test_figures_are_deterministic_pngs():
    hours = pd.date_range("2026-11-02", periods=48, freq="h", tz="UTC")
    act = pd.DataFrame({"cluster_id": "C1", "hour": hours, "requests": np.arange(48) % 7,
                        "signups": (np.arange(48) % 9 == 0).astype(int)})
    a, b = timeline_png(act, title="$x$ <b>"), timeline_png(act, title="$x$ <b>")
    assert a == b and a.startswith(b"\x89PNG") and b"Software" not in a
    assert timeline_png(act.iloc[:0]).startswith(b"\x89PNG")
    links = pd.DataFrame({"account_a": ["a", "a", "b"], "account_b": ["b", "c", "c"],
                          "layer": ["network", "payment", "prompt"], "weight": [0.5, 1.0, 0.2]})
    g1 = cluster_graph_png(links, members=["a", "b", "c", "d"], title="C1")
    assert g1 == cluster_graph_png(links, members=["a", "b", "c", "d"], title="C1")
    assert g1.startswith(b"\x89PNG")
    assert cluster_graph_png(links, max_nodes=2) != g1


@pytest.mark.parametrize("extra", [0, 3])
def test_max_pages_pages_flagged_then_best_scored(demo_run, tmp_path, extra):
    """Beyond ``max_pages`` the flagged clusters and the highest scored others get pages; the index lists all."""
    hand_run = demo_run
    clusters = pd.read_csv(hand_run / "clusters.csv", dtype={"cluster_id": str}, keep_default_na=False)
    flagged = set(clusters.loc[clusters["flagged"].astype(str).str.lower() == "true", "cluster_id"])
    others = clusters[~clusters["cluster_id"].isin(flagged)].sort_values(["score", "cluster_id"], ascending=[False, True])
    assert flagged and len(others) > extra + 1
    out = tmp_path / "s"
    write_site(hand_run, out)  # every cluster first: the pages beyond the limit must then go
    paths = write_site(hand_run, out, max_pages=len(flagged) + extra)
    want = flagged | set(others["cluster_id"].head(extra))
    assert set(paths.clusters) == want
    assert set(paths.unpaged) == set(clusters["cluster_id"]) - want
    assert sorted(p.name for p in (out / "clusters").glob("*.html")) == sorted(page_name(c) for c in want)
    html = paths.index.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="hs-data">(.*?)</script>', html, re.S).group(1))
    rows = {r[0]: r[-1] for r in data["clusters"]}
    assert set(rows) == set(clusters["cluster_id"])
    assert {c for c, href in rows.items() if href} == want
    assert f"{len(clusters) - len(want)} unflagged clusters are listed without a page" in html
    # a flagged cluster always gets its page, whatever the limit
    assert set(write_site(hand_run, tmp_path / "z", max_pages=0).clusters) == flagged


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_max_pages_must_be_a_count(hand_run, tmp_path, bad):
    with pytest.raises(ExportError, match="max_pages"):
        write_site(hand_run, tmp_path / "s", max_pages=bad)


def test_cli_site(hand_run, tmp_path, capsys):
    from hydrascope.cli import main

    out = tmp_path / "cli-site"
    assert main(["site", str(hand_run), "--out", str(out), "--max-nodes", "50"]) == 0
    assert (out / "index.html").is_file()
    assert str(out / "index.html") in capsys.readouterr().out
    assert main(["site", str(tmp_path / "missing")]) == 1


# ---------------------------------------------------------------------------------------------
# in Debian's headless Chromium
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    require_browser()
    with open_browser() as b:
        yield b


def _assert_inert(visit):
    assert visit.clean, visit.problems()
    page = visit.page
    assert page.evaluate("window.__pwned === undefined")
    assert page.evaluate("document.querySelectorAll('#injected, img[src=x], svg[onload], i').length") == 0
    scripts = page.evaluate("Array.from(document.scripts).map(s => s.type || 'js')")
    assert scripts == ["application/json", "js", "js"]


@pytest.mark.browser
def test_index_lists_every_cluster(browser, hand_run, hand_site):
    visit = browser.open(hand_site.index, ready=READY, screenshot=ARTIFACTS / "site-index.png", full_page=True)
    _assert_inert(visit)
    clusters = pd.read_csv(hand_run / "clusters.csv", dtype=str, keep_default_na=False)
    shown = visit.page.eval_on_selector_all("#clusters-table tbody tr td:first-child", "els => els.map(e => e.textContent)")
    assert sorted(shown) == sorted(clusters["cluster_id"])
    hrefs = visit.page.eval_on_selector_all("#clusters-table tbody a", "els => els.map(e => e.getAttribute('href'))")
    assert sorted(hrefs) == sorted("clusters/" + page_name(c) for c in clusters["cluster_id"])
    assert visit.page.evaluate("hydrascope.nodes.length") == len(clusters)
    body = visit.page.inner_text("body")
    assert HOSTILE_REASON in body and HOSTILE_CLUSTER in body
    # filter and sort
    visit.page.fill("#cluster-filter", "C0002")
    assert visit.page.eval_on_selector_all("#clusters-table tbody tr", "els => els.length") == 1
    visit.page.fill("#cluster-filter", "")
    visit.page.check("#flagged-only")
    assert visit.page.eval_on_selector_all("#clusters-table tbody tr", "els => els.length") == 2
    visit.page.uncheck("#flagged-only")
    visit.page.click("#clusters-table thead th:nth-child(2) button")  # accounts, descending
    sizes = visit.page.eval_on_selector_all("#clusters-table tbody tr td:nth-child(2)", "els => els.map(e => +e.textContent)")
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.browser
def test_cluster_pages_draw_their_nodes_offline_and_inert(browser, hand_run, hand_site):
    for cid, page in sorted(hand_site.clusters.items()):
        shot = ARTIFACTS / "site-cluster.png" if cid == "C0001" else None
        visit = browser.open(page, ready=READY, screenshot=shot)
        _assert_inert(visit)
        assert visit.page.evaluate("document.querySelectorAll('#graph canvas').length") == 1
        assert visit.page.evaluate("hydrascope.nodes.length") == expected_graph_nodes(hand_run, cid), cid
        pairs = visit.page.evaluate("hydrascope.edges.get({filter: e => String(e.id).startsWith('p')}).length")
        assert pairs == expected_pair_edges(hand_run, cid)
        assert pairs > 0 or cid != "C0001"
        body = visit.page.inner_text("body")
        assert cid in body
        assert HOSTILE_REASON in body
        details = json.loads((hand_run / "clusters.json").read_text(encoding="utf-8"))["clusters"]
        for ex in next(d for d in details if d["cluster_id"] == cid)["templates"][0]["examples"]:
            assert ex.replace("\u2028", "").replace("\u2029", "")[:30] in body.replace("\u2028", "").replace("\u2029", "")


@pytest.mark.browser
def test_hostile_text_shows_literally_in_tables_prompts_and_tooltips(browser, hand_site):
    visit = browser.open(hand_site.clusters["C0001"], ready=READY)
    page = visit.page
    body = page.inner_text("body")
    for s in (HOSTILE_PROMPTS[0], HOSTILE_PROMPTS[1], HOSTILE_PROMPTS[2], HOSTILE_ACCOUNT, HOSTILE_DOMAIN):
        assert s in body, s
    page.fill("#account-filter", "evil")
    assert page.eval_on_selector_all("#accounts-table tbody tr", "els => els.length") == 1
    # hover the node of the hostile account and of the hostile user agent: tooltips are plain text
    for label in (HOSTILE_ACCOUNT, HOSTILE_UA):
        xy = page.evaluate("""(label) => {
            const n = hydrascope.nodes.get({filter: n => (n.title || '').includes(label)})[0];
            hydrascope.network.moveTo({position: {x: n.x, y: n.y}, scale: 1.5, animation: false});
            const p = hydrascope.network.canvasToDOM({x: n.x, y: n.y});
            const r = document.querySelector('#graph canvas').getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }""", label)
        page.mouse.move(xy[0] + 40, xy[1] + 40)
        page.mouse.move(xy[0], xy[1])
        wait_for(page, "document.querySelector('div.vis-tooltip') !== null && "
                       "getComputedStyle(document.querySelector('div.vis-tooltip')).visibility === 'visible'")
        tip = page.evaluate("document.querySelector('div.vis-tooltip').innerText")
        assert label in tip
        # plain text: innerText turns line breaks into <br>, nothing else becomes an element
        tags = page.evaluate("Array.from(document.querySelectorAll('div.vis-tooltip *')).map(e => e.tagName)")
        assert set(tags) <= {"BR"}, tags
    _assert_inert(visit)
    assert visit.clean, visit.problems()


@pytest.mark.browser
def test_aggregated_view_opens_and_filters(browser, tmp_path):
    run = write_run_folder(tmp_path / "run", sizes=(4, 3), big=400)
    paths = write_site(run, max_nodes=60)
    visit = browser.open(paths.clusters[BIG_CLUSTER], ready=READY)
    _assert_inert(visit)
    data = visit.page.evaluate("hydrascope.data.graph")
    assert visit.page.evaluate("hydrascope.nodes.length") == len(data["groups"]) + len(data["inode_ids"])
    # clicking the biggest group lists its accounts
    count = data["groups"][0][1]
    xy = visit.page.evaluate("""() => {
        const n = hydrascope.nodes.get(0);
        hydrascope.network.moveTo({position: {x: n.x, y: n.y}, scale: 1, animation: false});
        const p = hydrascope.network.canvasToDOM({x: n.x, y: n.y});
        const r = document.querySelector('#graph canvas').getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }""")
    visit.page.mouse.click(xy[0], xy[1])
    wait_for(visit.page, "document.querySelector('#selection').textContent.length > 0")
    info = visit.page.inner_text("#accounts-table .pager span")
    assert f"of {count} (filtered from 400)" in info


@pytest.mark.browser
def test_standalone_page_opens_alone(browser, hand_run, tmp_path):
    paths = write_site(hand_run, tmp_path / "st", standalone=True)
    lonely = tmp_path / "elsewhere" / "C0001.html"
    lonely.parent.mkdir()
    shutil.copy(paths.clusters["C0001"], lonely)
    visit = browser.open(lonely, ready=READY)
    _assert_inert_standalone(visit)
    assert visit.page.evaluate("hydrascope.nodes.length") == expected_graph_nodes(hand_run, "C0001")


def _assert_inert_standalone(visit):
    assert visit.clean, visit.problems()
    assert visit.page.evaluate("window.__pwned === undefined")


@pytest.mark.browser
def test_demo_run_site_in_browser(browser, demo_run):
    """The pipeline's own run folder (demo world with hostile text): every page opens clean."""
    paths = write_site(demo_run, demo_run / "site-check")
    clusters = pd.read_csv(demo_run / "clusters.csv", dtype=str, keep_default_na=False)
    visit = browser.open(paths.index, ready=READY, screenshot=ARTIFACTS / "site-demo-index.png")
    assert visit.clean, visit.problems()
    assert visit.page.evaluate("window.__pwned === undefined")
    shown = visit.page.eval_on_selector_all("#clusters-table tbody tr td:first-child", "els => els.map(e => e.textContent)")
    assert sorted(shown) == sorted(clusters["cluster_id"])
    flagged = clusters.loc[clusters["flagged"] == "true", "cluster_id"].tolist() or clusters["cluster_id"].tolist()[:1]
    for k, cid in enumerate(clusters["cluster_id"]):
        shot = ARTIFACTS / "site-demo-cluster.png" if cid == flagged[0] else None
        v = browser.open(paths.clusters[cid], ready=READY, screenshot=shot)
        assert v.clean, v.problems()
        assert v.page.evaluate("window.__pwned === undefined")
        assert v.page.evaluate("document.querySelectorAll('#graph canvas').length") == 1
        if cid not in paths.aggregated:
            assert v.page.evaluate("hydrascope.nodes.length") == expected_graph_nodes(demo_run, cid)


def test_run_without_clusters_or_optional_tables(tmp_path):
    run = write_run_folder(tmp_path / "run", sizes=(3,))
    (run / "clusters.csv").write_text("cluster_id,n_accounts,score,flagged,reasons\n", encoding="utf-8")
    acc = pd.read_csv(run / "accounts.csv", dtype=str, keep_default_na=False)
    acc["cluster_id"] = ""
    acc.to_csv(run / "accounts.csv", index=False)
    for name in ("clusters.json", "links.parquet", "account_identifiers.parquet", "identifiers.parquet",
                 "templates.parquet", "account_features.parquet", "account_details.parquet",
                 "cluster_activity.parquet", "cluster_events.parquet"):
        (run / name).unlink()
    paths = write_site(run)
    assert paths.clusters == {} and paths.index.is_file()


def test_cluster_with_nothing_shared(tmp_path):
    run = write_run_folder(tmp_path / "run", sizes=(3, 2))
    ai = pd.read_parquet(run / "account_identifiers.parquet")
    ai = ai[~ai["account_id"].str.startswith("a01_")]
    ai.to_parquet(run / "account_identifiers.parquet", index=False)
    act = pd.read_parquet(run / "cluster_activity.parquet")
    act[act["cluster_id"] != "C0002"].to_parquet(run / "cluster_activity.parquet", index=False)
    paths = write_site(run)
    html = paths.clusters["C0002"].read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="hs-data">(.*?)</script>', html, re.S).group(1))
    assert data["identifiers"] == [] and len(data["accounts"]) == 2
    assert "No hourly activity recorded" in html


@pytest.mark.browser
def test_degenerate_pages_open_clean(browser, tmp_path):
    run = write_run_folder(tmp_path / "run", sizes=(3, 2))
    ai = pd.read_parquet(run / "account_identifiers.parquet")
    ai[~ai["account_id"].str.startswith("a01_")].to_parquet(run / "account_identifiers.parquet", index=False)
    paths = write_site(run)
    visit = browser.open(paths.clusters["C0002"], ready=READY)
    _assert_inert(visit)
    assert visit.page.evaluate("hydrascope.nodes.length") == 2
    (run / "clusters.csv").write_text("cluster_id,n_accounts,score,flagged,reasons\n", encoding="utf-8")
    acc = pd.read_csv(run / "accounts.csv", dtype=str, keep_default_na=False)
    acc["cluster_id"] = ""
    acc.to_csv(run / "accounts.csv", index=False)
    paths = write_site(run)
    visit = browser.open(paths.index, ready=READY)
    _assert_inert(visit)
    assert visit.page.inner_text("#overview-note") == "No clusters in this run."


def test_links_only_inside_clusters(tmp_path):
    run = write_run_folder(tmp_path / "run", sizes=(4, 3))
    links = pd.read_parquet(run / "links.parquet")
    links[links["account_a"].str[:3] == links["account_b"].str[:3]].to_parquet(run / "links.parquet", index=False)
    paths = write_site(run)
    html = paths.index.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="hs-data">(.*?)</script>', html, re.S).group(1))
    assert data["graph"]["edges"] == [] and len(data["clusters"]) == 2
