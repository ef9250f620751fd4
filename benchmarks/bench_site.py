"""Benchmark the HTML explorer: generation time (demo world, one 5,000-account cluster), page sizes, open/pan time in Chromium."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from exporters.site import write_site  # noqa: E402
from graphbuild.schema import KIND_LAYER  # noqa: E402

READY = "window.hydrascopeReady === true"


def big_cluster_run(path: Path, n: int = 5000, seed: int = 0) -> Path:
    """A run folder with one n-account cluster on a residential-proxy pool (plus two small clusters)."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    t0 = pd.Timestamp("2026-11-02")
    sizes = {"C0001": n, "C0002": 40, "C0003": 12}
    acc_rows, ai, links, feats, act, details = [], [], [], [], [], []
    for cid, size in sizes.items():
        members = [f"{cid.lower()}_{i:06d}" for i in range(size)]
        n_ips, n_pi, n_tpl = max(8, size // 3), max(2, size // 25), max(1, size // 250)
        for i, acc in enumerate(members):
            acc_rows.append((acc, cid, "true", f"{0.9 - 0.0001 * (i % 100):.4f}"))
            used = [("ip", f"100.{sizes[cid] % 250}.{ip // 250}.{ip % 250}") for ip in rng.choice(n_ips, 5, replace=False)]
            used += [("prefix", f"100.{sizes[cid] % 250}.{ip // 250}.0/24") for ip in rng.choice(n_ips, 2, replace=False)]
            used += [("instrument", f"pi_{cid}_{rng.integers(n_pi)}"), ("template", f"t_{cid}_{rng.integers(n_tpl)}"),
                     ("user_agent", f"python-requests/2.{rng.integers(30)}")]
            for kind, ident in used:
                ai.append((acc, kind, ident, int(rng.integers(1, 50)), t0, t0 + pd.Timedelta(hours=int(rng.integers(1, 300)))))
            feats.append((acc, int(rng.integers(10, 400)), "tempmail.example", "US", t0 - pd.Timedelta(hours=int(rng.integers(0, 48))),
                          1.0, float(rng.uniform())))
        a = rng.integers(0, size, 4 * size)
        b = rng.integers(0, size, 4 * size)
        keep = a != b
        for x, y, layer in zip(a[keep], b[keep], rng.choice(["network", "payment", "prompt", "timing"], keep.sum())):
            p, q = sorted((members[x], members[y]))
            links.append((p, q, layer, float(rng.uniform(0.05, 1)), 1, t0, t0))
        for h in range(0, 24 * 14):
            act.append((cid, t0 + pd.Timedelta(hours=h), int(rng.poisson(size / 10)), int(h < 48 and h % 2 == 0) * (size // 48)))
        details.append({"cluster_id": cid, "n_accounts": size, "score": 0.9, "flagged": True,
                        "reasons": [f"{size} accounts on one residential proxy pool"], "signals": {}, "stability": 1.0,
                        "members": members, "layer_weight": {"network": 0.7, "payment": 0.2, "prompt": 0.1},
                        "top_identifiers": [], "templates": [{"template_id": f"t_{cid}_0", "skeleton": "Solve <NUM> step by step",
                                                               "n_in_cluster": size, "share_of_prompts": 0.9,
                                                               "examples": ["Solve 12 step by step"]}],
                        "hourly_profile": [1 / 24] * 24, "first_seen": "2026-11-02T00:00:00Z", "last_seen": "2026-11-16T00:00:00Z",
                        "created_first": "2026-10-31T00:00:00Z", "created_last": "2026-11-02T00:00:00Z"})
    pd.DataFrame(acc_rows, columns=["account_id", "cluster_id", "flagged", "score"]).sort_values("account_id").to_csv(
        path / "accounts.csv", index=False)
    pd.DataFrame([(c, s, "0.9000", "true", f"{s} accounts on one residential proxy pool") for c, s in sizes.items()],
                 columns=["cluster_id", "n_accounts", "score", "flagged", "reasons"]).to_csv(path / "clusters.csv", index=False)
    (path / "clusters.json").write_text(json.dumps({"clusters": details}), encoding="utf-8")
    (path / "run.json").write_text(json.dumps({"version": "bench", "seed": 0, "config": {}, "bundle": "", "inputs": {},
                                               "window": {}, "counts": {}, "previous_run": None}), encoding="utf-8")
    aidf = pd.DataFrame(ai, columns=["account_id", "kind", "identifier", "n_events", "first_seen", "last_seen"])
    aidf.to_parquet(path / "account_identifiers.parquet", index=False)
    idf = aidf.groupby(["kind", "identifier"])["account_id"].nunique().reset_index(name="n_accounts")
    idf["layer"] = idf["kind"].map(KIND_LAYER)
    idf["pair_weight"] = 1.0 / idf["n_accounts"]
    idf["is_hub"] = idf["kind"].eq("user_agent")
    idf.to_parquet(path / "identifiers.parquet", index=False)
    pd.DataFrame(links, columns=["account_a", "account_b", "layer", "weight", "evidence_count", "first_seen",
                                 "last_seen"]).to_parquet(path / "links.parquet", index=False)
    pd.DataFrame(feats, columns=["account_id", "n_requests", "email_domain", "country", "created_at", "prepaid_share",
                                 "template_share"]).to_parquet(path / "account_features.parquet", index=False)
    pd.DataFrame(act, columns=["cluster_id", "hour", "requests", "signups"]).to_parquet(path / "cluster_activity.parquet", index=False)
    return path


def demo_run(path: Path, accounts: int) -> Path:
    """Generate the demo world and run detection on it without the site."""
    from hydrascope.config import RunConfig
    from hydrascope.demo.world import generate_world
    from hydrascope.pipeline import run

    generate_world(path / "world", n_accounts=accounts, seed=0)
    return run(path / "world", path / "run", RunConfig(seed=0, site=False)).run_dir


def timed_site(run_dir: Path, out: Path, **kw):
    if out.exists():
        shutil.rmtree(out)
    t, c = time.perf_counter(), time.process_time()
    paths = write_site(run_dir, out, **kw)
    return paths, time.perf_counter() - t, time.process_time() - c


def largest(paths) -> Path:
    return max(paths.pages(), key=lambda p: (p.stat().st_size, p.name))


def open_and_pan(browser, page: Path, screenshot: Path | None = None) -> tuple[float, float, int]:
    """Seconds to open the page until the graph is drawn, seconds for a mouse-drag pan, nodes in the DataSet."""
    visit = browser.open(page, ready=READY, settle_ms=0)
    assert visit.clean, visit.problems()
    p = visit.page
    if screenshot is not None:
        # from the heading to the bottom of the graph: what the README shows
        clip = p.evaluate("(() => { const h = document.querySelector('h1').getBoundingClientRect();"
                          " const g = document.querySelector('#graph, #overview').getBoundingClientRect();"
                          " return {x: 0, y: h.top + window.scrollY - 8, width: document.documentElement.clientWidth,"
                          " height: g.bottom - h.top + 16}; })()")
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        p.screenshot(path=str(screenshot), clip=clip, full_page=True)
    box = p.evaluate("(() => { const c = document.querySelector('#graph canvas, #overview canvas');"
                     " c.scrollIntoView({block: 'center'}); const r = c.getBoundingClientRect();"
                     " return [r.left + 12, r.top + 12]; })()")
    before = p.evaluate("JSON.stringify(hydrascope.network.getViewPosition())")
    t = time.perf_counter()
    p.mouse.move(box[0], box[1])
    p.mouse.down()
    for k in range(1, 11):
        p.mouse.move(box[0] + 30 * k, box[1] + 12 * k)
    p.mouse.up()
    p.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    pan = time.perf_counter() - t
    after = p.evaluate("JSON.stringify(hydrascope.network.getViewPosition())")
    assert before != after, "the view did not move"
    return visit.open_seconds, pan, p.evaluate("hydrascope.nodes.length")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--accounts", type=int, default=3000, help="demo world size (default 3000)")
    ap.add_argument("--big", type=int, default=5000, help="accounts in the big synthetic cluster (default 5000)")
    ap.add_argument("--no-browser", action="store_true", help="skip the Chromium open/pan timings")
    ap.add_argument("--readme-shot", help="save a screenshot of the demo's top flagged cluster page here (e.g. docs/img/site-cluster.png)")
    ap.add_argument("--keep", help="keep the generated folders here instead of a temporary folder")
    args = ap.parse_args(argv)

    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-site-"))
    rows = []
    browser = None
    if not args.no_browser:
        from tests.browser import browser_available, open_browser

        reason = browser_available()
        if reason:
            print(f"no browser timings: {reason}")
        else:
            browser = open_browser()
    try:
        print(f"demo world: {args.accounts} accounts (generating and running detection, not timed) ...", flush=True)
        demo = demo_run(tmp / "demo", args.accounts)
        paths, wall, cpu = timed_site(demo, tmp / "demo-site")
        big_page = largest(paths)
        n_clusters = len(paths.clusters)
        print(f"demo site: {n_clusters} clusters  write {wall:.2f} s wall / {cpu:.2f} s CPU "
              f"({1000 * wall / max(n_clusters, 1):.0f} ms per cluster)  largest page {big_page.name} "
              f"{big_page.stat().st_size / 1e6:.2f} MB  total {sum(p.stat().st_size for p in paths.pages()) / 1e6:.1f} MB")
        rows.append(("demo", paths, big_page))
        if browser is not None:
            flagged = pd.read_csv(demo / "clusters.csv", dtype=str, keep_default_na=False)
            top = flagged.loc[flagged["flagged"] == "true", "cluster_id"].tolist()[:1] or flagged["cluster_id"].tolist()[:1]
            for page in [paths.index, big_page] + ([paths.clusters[top[0]]] if top else []):
                shot = None
                if args.readme_shot and top and page == paths.clusters[top[0]]:
                    shot = Path(args.readme_shot)
                o, pan, nodes = open_and_pan(browser, page, shot)
                print(f"  open {page.name:24s} {o:6.2f} s   pan {pan:5.2f} s   {nodes} nodes")
            if args.readme_shot:
                print(f"  screenshot {args.readme_shot}")

        print(f"big cluster: {args.big} accounts (synthetic residential-proxy pool) ...", flush=True)
        big = big_cluster_run(tmp / "big", args.big)
        for label, kw in (("default (aggregated)", {}), ("full detail", {"max_nodes": args.big * 3})):
            paths, wall, cpu = timed_site(big, tmp / f"big-site-{len(kw)}", **kw)
            page = paths.clusters["C0001"]
            line = (f"big site, {label}: write {wall:.2f} s wall / {cpu:.2f} s CPU  C0001 page "
                    f"{page.stat().st_size / 1e6:.2f} MB  aggregated={list(paths.aggregated)}")
            print(line, flush=True)
            if browser is not None:
                o, pan, nodes = open_and_pan(browser, page)
                print(f"  open C0001 {o:6.2f} s   pan {pan:5.2f} s   {nodes} nodes")
    finally:
        if browser is not None:
            browser.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
