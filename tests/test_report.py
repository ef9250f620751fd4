"""Tests for exporters.report (periodic report) and the `hydrascope report` command."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from community.lineage import lineage_from_run, match_clusters
from exporters.report import REPORT_CSV_COLUMNS, build_report, find_runs, write_report
from graphbuild.errors import ExportError, RunFolderError

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>'


def make_run(path: Path, clusters: dict[str, dict], *, since: str, until: str, noise: int = 5,
             lineage=None, previous_run=None, rejects: int = 2) -> Path:
    """Write a small run folder following docs/run-folder.md.

    clusters: id -> {"members": [...], "flagged": bool, "score": float, "reasons": str, "rate": int}
    """
    path.mkdir(parents=True)
    rows = []
    for cid, c in clusters.items():
        for a in c["members"]:
            rows.append((a, cid, "true" if c["flagged"] else "false", f"{c['score']:.4f}"))
    rows += [(f"benign{i:03d}", "", "false", "0.0100") for i in range(noise)]
    rows.sort()
    with (path / "accounts.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["account_id", "cluster_id", "flagged", "score"])
        w.writerows(rows)
    order = sorted(clusters, key=lambda c: (-clusters[c]["score"], c))
    with (path / "clusters.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["cluster_id", "n_accounts", "score", "flagged", "reasons"])
        for cid in order:
            c = clusters[cid]
            w.writerow([cid, len(c["members"]), f"{c['score']:.4f}", "true" if c["flagged"] else "false",
                        c.get("reasons", "shared prepaid cards;templated prompts")])
    (path / "run.json").write_text(json.dumps({
        "version": "0.1.0", "seed": 7, "config": {}, "bundle": "worlds/x", "inputs": {},
        "window": {"since": since, "until": until}, "counts": {},
        "previous_run": str(previous_run) if previous_run else None}))
    with (path / "rejects.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["table", "file", "line", "column", "value", "reason", "action"])
        for i in range(rejects):
            w.writerow(["events", "events.csv", i + 2, "ts", "=HYPERLINK()", "unparsable timestamp", "rejected"])
        w.writerow(["accounts", "accounts.csv", 9, "country", "XX", "not ISO 3166", "cleared"])
    hours = pd.date_range(since, until, freq="1h", inclusive="left", tz="UTC")
    act = []
    for cid in sorted(clusters):
        for k, h in enumerate(hours):
            act.append((cid, h, int(clusters[cid].get("rate", 3) * (1 + k % 5)), int(k == 0)))
    pd.DataFrame(act, columns=["cluster_id", "hour", "requests", "signups"]).to_parquet(
        path / "cluster_activity.parquet", index=False)
    details = [{"cluster_id": cid, "n_accounts": len(clusters[cid]["members"]), "members": clusters[cid]["members"],
                "first_seen": since, "last_seen": until} for cid in order]
    (path / "clusters.json").write_text(json.dumps({"clusters": details}))
    if lineage is not None:
        lineage.to_csv(path / "lineage.csv")
    return path


def accts(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(start, start + n)]


@pytest.fixture
def runs(tmp_path) -> list[Path]:
    """Three consecutive daily runs with stable ids (lineage.csv) like `hydrascope run --previous` writes."""
    d1 = {"C0001": {"members": accts("a", 10), "flagged": True, "score": 0.91, "rate": 6},
          "C0002": {"members": accts("b", 6), "flagged": True, "score": 0.72, "rate": 2},
          "C0003": {"members": accts("c", 4), "flagged": False, "score": 0.20},
          "C0004": {"members": accts("d", 5), "flagged": False, "score": 0.15}}
    r1 = make_run(tmp_path / "runs" / "2026-11-02", d1, since="2026-11-01T00:00:00Z", until="2026-11-02T00:00:00Z")
    # day 2: C0001 grows, C0002 continues, C0003 dissolves, a hostile-reasons campaign appears
    cur2 = {"p": accts("a", 10) + accts("a", 5, 10), "q": accts("b", 6), "r": accts("e", 8), "s": accts("d", 5)}
    lin2 = lineage_from_run(r1, cur2)
    assert lin2.status == {"C0001": "growing", "C0002": "continuing", "C0003": "dissolved",
                           "C0004": "continuing", "C0005": "new"}
    meta2 = {"p": (True, 0.95, 9), "q": (True, 0.70, 2), "r": (True, 0.88, 12), "s": (False, 0.1, 1)}
    d2 = {lin2.ids[k]: {"members": v, "flagged": meta2[k][0], "score": meta2[k][1], "rate": meta2[k][2],
                        "reasons": HOSTILE + ";=cmd|' /C calc'!A0" if k == "r" else "shared IPs"}
          for k, v in cur2.items()}
    r2 = make_run(tmp_path / "runs" / "2026-11-03", d2, since="2026-11-02T00:00:00Z", until="2026-11-03T00:00:00Z",
                  lineage=lin2, previous_run=r1)
    # day 3: C0001 and C0005 merge, C0002 splits
    cur3 = {"m": accts("a", 15) + accts("e", 8), "x": accts("b", 3), "y": accts("b", 3, 3), "s": accts("d", 5)}
    lin3 = lineage_from_run(r2, cur3)
    assert lin3.status == {"C0001": "merged", "C0002": "split", "C0004": "continuing", "C0006": "split"}
    meta3 = {"m": (True, 0.97, 20), "x": (True, 0.6, 1), "y": (False, 0.4, 1), "s": (False, 0.1, 1)}
    d3 = {lin3.ids[k]: {"members": v, "flagged": meta3[k][0], "score": meta3[k][1], "rate": meta3[k][2]}
          for k, v in cur3.items()}
    r3 = make_run(tmp_path / "runs" / "2026-11-04", d3, since="2026-11-03T00:00:00Z", until="2026-11-04T00:00:00Z",
                  lineage=lin3, previous_run=r2)
    return [r1, r2, r3]


def test_facts_of_a_run_with_lineage(runs):
    facts = build_report(runs[1], history=[runs[0]])
    h = facts["headline"]
    assert h == {"accounts": 34 + 5, "accounts_in_clusters": 34, "clusters": 4, "flagged_clusters": 3,
                 "flagged_accounts": 29, "rejects": {"rejected": 2, "cleared": 1}, "flagged_requests": h["flagged_requests"]}
    assert h["flagged_requests"] == sum(p["requests"] for p in facts["traffic"]["series"] if p["time"] >= "2026-11-02")
    ch = facts["changes"]
    assert ch["source"] == "lineage.csv"
    assert ch["counts"] == {"new": 1, "growing": 1, "merged": 0, "split": 0, "continuing": 2, "shrinking": 0,
                            "dissolved": 1}
    assert ch["new_flagged"] == 1
    assert [r["cluster_id"] for r in facts["top_flagged"]] == ["C0001", "C0005", "C0002"]
    assert facts["top_flagged"][0]["status"] == "growing" and facts["top_flagged"][0]["n_previous"] == 10
    assert [t["name"] for t in facts["trend"]] == ["2026-11-02", "2026-11-03"]
    assert facts["trend"][0]["status_counts"] is None          # first run: nothing to compare with
    assert facts["trend"][1]["status_counts"]["dissolved"] == 1
    dissolved = [c for c in facts["clusters"] if c["status"] == "dissolved"]
    assert [c["cluster_id"] for c in dissolved] == ["C0003"]
    assert facts["traffic"]["period"] == "hour" and len(facts["traffic"]["series"]) == 48


def test_changes_are_computed_when_the_run_has_no_lineage(tmp_path, runs):
    # the same clusters as day 2, numbered independently (a run made without --previous)
    d = {"C0001": {"members": accts("e", 8), "flagged": True, "score": 0.9},
         "C0002": {"members": accts("a", 15), "flagged": True, "score": 0.8}}
    r = make_run(tmp_path / "solo", d, since="2026-11-02T00:00:00Z", until="2026-11-03T00:00:00Z")
    facts = build_report(r, previous=runs[0])
    assert facts["changes"]["source"] == "computed"
    status = [(row["cluster_id"], row["status"], row["previous_ids"]) for row in facts["changes"]["rows"]]
    # own ids are kept: C0002 here is the earlier C0001 grown; dissolved rows name the previous run's ids
    # (the earlier C0002 dissolved: same id as this run's C0002, so both rows are there)
    assert status == [("C0001", "new", []), ("C0002", "growing", ["C0001"]), ("C0002", "dissolved", ["C0002"]),
                      ("C0003", "dissolved", ["C0003"]), ("C0004", "dissolved", ["C0004"])]
    assert facts["previous"]["name"] == "2026-11-02"
    assert [t["name"] for t in facts["trend"]] == ["2026-11-02", "solo"]


def test_report_files_are_deterministic_and_hold_the_same_facts(tmp_path, runs):
    out1 = write_report(runs[2], tmp_path / "a" / "report.html", history=[runs[0].parent])
    out2 = write_report(runs[2], tmp_path / "b" / "report.html", history=[runs[1], runs[0]])
    for p1, p2 in zip((out1.html, out1.json, out1.csv), (out2.html, out2.json, out2.csv)):
        assert p1.read_bytes() == p2.read_bytes(), p1.name
    assert out1.json.name == "report.json" and out1.csv.name == "report.csv"
    facts = json.loads(out1.json.read_text())
    assert [t["name"] for t in facts["trend"]] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert [t["status_counts"]["merged"] if t["status_counts"] else None for t in facts["trend"]] == [None, 0, 1]
    table = pd.read_csv(out1.csv, dtype=str, keep_default_na=False)
    assert tuple(table.columns) == REPORT_CSV_COLUMNS
    assert list(table["cluster_id"]) == [c["cluster_id"] for c in facts["clusters"]]
    merged = table.set_index("cluster_id").loc["C0001"]
    assert (merged.status, merged.previous_ids, merged.n_current) == ("merged", "C0001;C0005", "23")
    assert set(table["status"]) == {"merged", "split", "continuing"}
    # paths in the JSON are relative to the report's folder, so the bytes do not depend on where it lives
    assert facts["run"]["path"] == os.path.relpath(runs[2], tmp_path / "a")


def test_csv_cells_are_neutralised_and_html_escapes_hostile_text(tmp_path, runs):
    out = write_report(runs[1], tmp_path / "r" / "report.html", previous=runs[0])
    table = pd.read_csv(out.csv, dtype=str, keep_default_na=False).set_index("cluster_id")
    assert table.loc["C0005", "reasons"].startswith("<script>")
    assert ";=cmd" in table.loc["C0005", "reasons"]      # the list is joined; the cell as a whole starts with '<'
    for cell in table.to_numpy().ravel():
        assert not cell.startswith(("=", "+", "-", "@"))
    html = out.html.read_text()
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http://" not in html and "https://" not in html
    assert html.count('src="data:image/png;base64,') == 3


def test_formula_reasons_are_prefixed(tmp_path):
    d = {"C0001": {"members": accts("a", 3), "flagged": True, "score": 0.9, "reasons": "=1+1;@SUM(A1)"}}
    r = make_run(tmp_path / "r", d, since="2026-11-01T00:00:00Z", until="2026-11-02T00:00:00Z")
    out = write_report(r, tmp_path / "out" / "weekly.html")
    assert out.csv.name == "weekly.csv" and out.json.name == "weekly.json"
    with out.csv.open(newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["reasons"] == "'=1+1;@SUM(A1)"


def test_links_to_site_pages_and_evidence_packages(tmp_path, runs):
    run = runs[1]
    (run / "evidence").mkdir()
    from exporters.report import _evidence_package, _site_page  # naming shared with the site and evidence

    (run / "site").mkdir()
    facts = build_report(run)
    assert all(c["site_page"] is None and c["evidence_package"] is None for c in facts["clusters"])
    from exporters.evidence import package_filename
    from exporters.site import page_name

    name = package_filename("C0001")
    (run / "evidence" / name).write_bytes(b"PK")
    page = run / "site" / "clusters" / page_name("C0001")
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("<html></html>")
    (run / "site" / "index.html").write_text("<html></html>")
    assert _site_page(run, "C0001") == page and _evidence_package(run, "C0001") == run / "evidence" / name
    out = write_report(run, run / "report.html")
    facts = json.loads(out.json.read_text())
    c1 = next(c for c in facts["clusters"] if c["cluster_id"] == "C0001")
    assert c1["site_page"] == page.relative_to(run).as_posix()
    assert c1["evidence_package"] == f"evidence/{name}"
    html = out.html.read_text()
    assert f'href="{page.relative_to(run).as_posix()}"' in html and f'href="evidence/{name}"' in html
    assert facts["run"]["site_index"] == "site/index.html" and 'href="site/index.html"' in html
    # a dissolved cluster links to its page in the previous run (run.json names that run)
    old_page = runs[0] / "site" / "clusters" / page_name("C0003")
    old_page.parent.mkdir(parents=True)
    old_page.write_text("<html></html>")
    facts = build_report(run)
    gone = next(c for c in facts["clusters"] if c["status"] == "dissolved")
    assert gone["cluster_id"] == "C0003" and gone["site_page"] == "../2026-11-02/site/clusters/C0003.html"


def test_find_runs_and_errors(tmp_path, runs):
    assert find_runs(runs[0].parent) == runs
    assert find_runs(runs[0]) == [runs[0]]
    with pytest.raises(RunFolderError):
        find_runs(tmp_path / "nothing")
    with pytest.raises(RunFolderError):
        build_report(tmp_path)
    with pytest.raises(ExportError, match="html"):
        write_report(runs[0], tmp_path / "report.pdf")


def _cli(argv):
    import argparse

    from hydrascope.commands.report import register

    parser = argparse.ArgumentParser(prog="hydrascope")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_report(tmp_path, runs, capsys):
    out = tmp_path / "cli" / "report.html"
    assert _cli(["report", str(runs[2]), "--history", str(runs[0]), str(runs[1]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out), str(out.with_suffix(".json")), str(out.with_suffix(".csv"))]
    assert json.loads(out.with_suffix(".json").read_text())["trend"][0]["name"] == "2026-11-02"
    assert _cli(["report", str(runs[0])]) == 0
    assert (runs[0] / "report.html").is_file()
    with pytest.raises(RunFolderError, match="not a hydrascope run folder"):
        _cli(["report", str(tmp_path / "missing"), "--out", str(out)])


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        _cli(["report", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--history runs/" in text


@pytest.mark.browser
def test_report_renders_in_chromium_without_network(tmp_path, runs):
    from tests.browser import open_browser, require_browser

    require_browser()
    out = write_report(runs[2], tmp_path / "report.html", history=[runs[0].parent])
    with open_browser() as browser:
        visit = browser.open(out.html, screenshot=ARTIFACTS / "report.png", full_page=True)
        assert visit.clean, visit.problems()
        page = visit.page
        # the three charts decoded into real pictures of the size they were drawn at
        sizes = page.evaluate("[...document.querySelectorAll('figure img')].map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert len(sizes) == 3 and all(ok and w == 800 and h >= 300 for ok, w, h in sizes), sizes
        assert page.evaluate("document.querySelectorAll('#top-flagged tbody tr').length") == 2
        assert page.evaluate("document.querySelector('#changes-summary').innerText").count("merged") >= 1
        assert visit.screenshot.stat().st_size > 10_000


# --- the demo world in consecutive windows (the pipeline's --since/--until/--previous) -----------------

DEMO_START, DEMO_DAYS = pd.Timestamp("2026-10-01T00:00:00Z"), 12


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def demo_windows(tmp_path_factory):
    """A small demo world run in two consecutive windows, the second with --previous the first."""
    from hydrascope.config import RunConfig
    from hydrascope.demo.world import generate_world
    from hydrascope.pipeline import run

    root = tmp_path_factory.mktemp("windows")
    world = root / "world"
    generate_world(world, n_accounts=600, days=DEMO_DAYS, seed=0, start=DEMO_START.strftime("%Y-%m-%d"))
    half = DEMO_START + pd.Timedelta(days=DEMO_DAYS // 2)
    end = DEMO_START + pd.Timedelta(days=DEMO_DAYS)
    w1, w2 = root / "runs" / "w1", root / "runs" / "w2"
    run(world, w1, RunConfig(since=_iso(DEMO_START), until=_iso(half), site=False))
    run(world, w2, RunConfig(since=_iso(half), until=_iso(end), site=False), previous=w1)
    from exporters.evidence import build_packages

    build_packages(w2, w2 / "evidence", flagged=True)
    from exporters.site import write_site

    write_site(w2)
    return world, w1, w2


def _majority_cluster(run_dir: Path, labels: pd.DataFrame) -> dict[str, str]:
    """campaign -> the cluster holding most of its accounts in a run (ties by id); campaigns absent are left out."""
    acc = pd.read_csv(run_dir / "accounts.csv", dtype=str, keep_default_na=False)
    m = labels.merge(acc[acc["cluster_id"] != ""], on="account_id")
    out = {}
    for camp, g in m.groupby("campaign_id"):
        vc = g["cluster_id"].value_counts()
        out[camp] = sorted(vc[vc == vc.max()].index)[0]
    return out


def test_demo_world_in_consecutive_windows_keeps_ids_and_classifies_changes(demo_windows):
    world, w1, w2 = demo_windows
    labels = pd.read_csv(world / "labels.csv", dtype=str)
    first, second = _majority_cluster(w1, labels), _majority_cluster(w2, labels)
    lineage = pd.read_csv(w2 / "lineage.csv", dtype=str, keep_default_na=False).set_index("cluster_id")
    ids1 = set(pd.read_csv(w1 / "clusters.csv", dtype=str)["cluster_id"])
    ids2 = list(pd.read_csv(w2 / "clusters.csv", dtype=str)["cluster_id"])

    # the late campaign is not there in window 1 and is a new cluster in window 2
    assert "camp_jailbreak_late" not in first
    assert lineage.loc[second["camp_jailbreak_late"], "status"] == "new"
    # a campaign that detection isolates in both windows (its cluster is mostly the campaign and holds most
    # of it) keeps its cluster id; the growing one is then growing (or merged, if detection joined another
    # cluster to it). The rules themselves are checked on the ground truth in the next test.
    members1, members2 = read_memberships_(w1), read_memberships_(w2)
    camp = {c: frozenset(g["account_id"]) for c, g in labels.groupby("campaign_id")}

    def isolated(members, cid, campaign):
        core = len(members[cid] & camp[campaign])
        active = sum(1 for ms in members.values() for a in ms if a in camp[campaign])
        return core >= 0.6 * len(members[cid]) and core >= 0.6 * active

    tracked = [c for c in set(first) & set(second)
               if isolated(members1, first[c], c) and isolated(members2, second[c], c)]
    for c in tracked:
        assert second[c] == first[c], c
        assert lineage.loc[second[c], "status"] != "new", c
    if "camp_resproxy_growing" in tracked:
        assert lineage.loc[second["camp_resproxy_growing"], "status"] in ("growing", "merged")
    # continuing clusters keep their ids, and really hold the same accounts
    persisting = lineage[lineage["status"].isin(["continuing", "growing", "shrinking"])]
    assert len(persisting) >= 2
    for cid in persisting.index:
        assert cid in ids1
        shared = len(members1[cid] & members2[cid])
        assert shared >= 0.5 * min(len(members1[cid]), len(members2[cid])), cid
    # every cluster of window 2 has a lineage row; new ids come after every id of window 1
    assert len(set(ids2)) == len(ids2) and set(ids2) <= set(lineage.index)
    top1 = max(int(c[1:]) for c in ids1)
    assert all(int(c[1:]) > top1 for c in lineage.index[lineage["status"] == "new"])
    # the lineage in the run folder is what match_clusters gives on the two runs' memberships
    again = lineage_from_run(w1, read_memberships_(w2))
    assert again.status == dict(zip(lineage.index, lineage["status"]))


def test_demo_world_campaigns_across_windows_get_the_documented_statuses(demo_windows):
    """Lineage on the ground truth: each campaign's accounts active in each window, as clusters."""
    world, w1, w2 = demo_windows
    labels = pd.read_csv(world / "labels.csv", dtype=str)

    def campaigns(run_dir):
        active = pd.read_csv(run_dir / "accounts.csv", dtype=str, keep_default_na=False)["account_id"]
        m = labels[labels["account_id"].isin(set(active))]
        return {c: frozenset(g["account_id"]) for c, g in m.groupby("campaign_id")}

    c1, c2 = campaigns(w1), campaigns(w2)
    first = match_clusters({}, c1)                        # window 1: every campaign is new
    assert set(first.status.values()) == {"new"}
    stable = {first.ids[c]: m for c, m in c1.items()}
    second = match_clusters(stable, c2, next_id=first.next_id)
    status = {c: second.status[second.ids[c]] for c in c2}
    assert "camp_jailbreak_late" not in c1 and status["camp_jailbreak_late"] == "new"
    assert status["camp_resproxy_growing"] == "growing"
    assert len(c2["camp_resproxy_growing"]) > 1.2 * len(c1["camp_resproxy_growing"])
    for camp in ("camp_card_ring", "camp_dc_burst", "camp_slow_slot"):
        assert second.ids[camp] == first.ids[camp], camp      # the id is kept
        assert status[camp] == "continuing", camp


def read_memberships_(run_dir: Path) -> dict[str, frozenset]:
    from community.lineage import read_memberships

    return read_memberships(run_dir)


def test_demo_report_over_windows(demo_windows, tmp_path):
    world, w1, w2 = demo_windows
    out = write_report(w2, tmp_path / "a" / "report.html", history=[w1])
    facts = json.loads(out.json.read_text())
    assert facts["changes"]["source"] == "lineage.csv"
    assert facts["changes"]["counts"]["new"] >= 1
    assert [t["name"] for t in facts["trend"]] == ["w1", "w2"]
    assert facts["trend"][1]["until"] == _iso(DEMO_START + pd.Timedelta(days=DEMO_DAYS))
    assert facts["headline"]["flagged_requests"] > 0
    flagged = pd.read_csv(w2 / "clusters.csv", dtype=str, keep_default_na=False)
    assert facts["headline"]["flagged_clusters"] == int((flagged["flagged"] == "true").sum())
    assert write_report(w2, tmp_path / "b" / "report.html", history=[w1]).html.read_bytes() == out.html.read_bytes()
    # every flagged cluster links to its evidence package, relative to the report
    top = facts["top_flagged"]
    assert top and all(c["evidence_package"] and c["site_page"] for c in top)
    assert all((out.html.parent / c[k]).resolve().is_file() for c in top for k in ("evidence_package", "site_page"))
    assert all(c["site_page"] for c in facts["clusters"] if c["status"] != "dissolved")


@pytest.mark.browser
def test_demo_report_renders_in_chromium(demo_windows, tmp_path):
    from tests.browser import open_browser, require_browser

    require_browser()
    world, w1, w2 = demo_windows
    out = write_report(w2, tmp_path / "report.html", history=[w1])
    with open_browser() as browser:
        visit = browser.open(out.html, screenshot=ARTIFACTS / "report-demo.png", full_page=True)
        assert visit.clean, visit.problems()
        n_img = visit.page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth === 800).length")
        assert n_img == 3
        hrefs = visit.page.evaluate("[...document.querySelectorAll('#top-flagged a')].map(a => a.href)")
        assert hrefs and all(h.startswith("file://") and h.endswith((".zip", ".html")) for h in hrefs)
        # following a cluster link opens its explorer page
        page_link = next(h for h in hrefs if h.endswith(".html"))
        visit = browser.open(page_link)
        assert visit.page.title(), page_link


# --- scripts/hydrascope-periodic ----------------------------------------------------------------------

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "hydrascope-periodic"


def _periodic(*args, env_extra=None):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, HYDRASCOPE=f"{sys.executable} -m hydrascope",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.update(env_extra or {})
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=600)


def test_periodic_script_dry_run_plans_window_previous_and_pruning(tmp_path):
    runs, bundle = tmp_path / "runs", tmp_path / "bundle"
    bundle.mkdir()
    for name in ("2026-11-03T0000Z", "2026-11-04T0000Z"):
        (runs / name).mkdir(parents=True)
        (runs / name / "run.json").write_text("{}")
    (runs / "keep-me").mkdir()
    r = _periodic("--bundle", bundle, "--runs", runs, "--until", "2026-11-05T00:00:00Z", "--keep", "2",
                  "--evidence", "--dry-run")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "window 2026-11-04T00:00:00Z → 2026-11-05T00:00:00Z" in out
    assert f"--out {runs}/.incomplete-2026-11-05T0000Z --since 2026-11-04T00:00:00Z --until 2026-11-05T00:00:00Z" in out
    assert f"--previous {runs}/2026-11-04T0000Z" in out
    assert f"evidence {runs}/2026-11-05T0000Z --flagged --out {runs}/2026-11-05T0000Z/evidence" in out
    assert out.rstrip().count("--history") == 1
    assert f"--history {runs}/2026-11-04T0000Z\n" in out      # the trend covers the runs that are kept
    assert f"rm -rf -- {runs}/2026-11-03T0000Z" in out and "keep-me" not in out
    assert sorted(p.name for p in runs.iterdir()) == ["2026-11-03T0000Z", "2026-11-04T0000Z", "keep-me"]
    r = _periodic("--bundle", bundle, "--runs", runs, "--until", "2026-11-05T00:00:00Z", "--keep", "0", "--dry-run")
    assert f"--history {runs}/2026-11-03T0000Z {runs}/2026-11-04T0000Z\n" in r.stdout and "rm -rf" not in r.stdout
    r = _periodic("--bundle", bundle, "--runs", runs, "--window", "5x")
    assert r.returncode == 2 and "--window" in r.stderr


def test_periodic_script_runs_reports_and_keeps_the_last_runs(tmp_path):
    from hydrascope.demo.world import generate_world

    world, runs = tmp_path / "world", tmp_path / "runs"
    generate_world(world, n_accounts=300, days=6, seed=1, start="2026-10-01")
    for until in ("2026-10-04", "2026-10-07"):
        r = _periodic("--bundle", world, "--runs", runs, "--window", "3d", "--until", f"{until}T00:00:00Z",
                      "--keep", "1", "--no-site")
        assert r.returncode == 0, r.stdout + r.stderr
    # the first run was the second's --previous, then pruned (keep 1); latest points at the new one
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == ["2026-10-07T0000Z", "latest"]
    assert os.readlink(runs / "latest") == "2026-10-07T0000Z"
    last = runs / "2026-10-07T0000Z"
    meta = json.loads((last / "run.json").read_text())
    assert meta["window"]["since"].startswith("2026-10-04T00:00:00")
    assert meta["previous_run"].endswith("2026-10-04T0000Z")
    assert (last / "lineage.csv").is_file()
    facts = json.loads((last / "report.json").read_text())
    assert facts["changes"]["source"] == "lineage.csv"
    # the trend covers the kept runs and the previous one (pruned only after the report was written)
    assert [t["name"] for t in facts["trend"]] == ["2026-10-04T0000Z", "2026-10-07T0000Z"]
    assert (last / "report.html").is_file() and (last / "report.csv").is_file()
    assert not list(runs.glob(".incomplete-*"))
    # the same window again is a no-op
    r = _periodic("--bundle", world, "--runs", runs, "--window", "3d", "--until", "2026-10-07T00:00:00Z")
    assert r.returncode == 0 and "nothing to do" in r.stdout


def test_minimal_run_folder_without_optional_files(tmp_path):
    """Only the three files RunFolder requires, no clusters at all: the report still renders."""
    run = tmp_path / "bare"
    run.mkdir()
    (run / "accounts.csv").write_text("account_id,cluster_id,flagged,score\nu1,,false,0.0000\n")
    (run / "clusters.csv").write_text("cluster_id,n_accounts,score,flagged,reasons\n")
    (run / "run.json").write_text("{}")
    out = write_report(run, tmp_path / "out" / "report.html")
    facts = json.loads(out.json.read_text())
    assert facts["headline"]["accounts"] == 1 and facts["headline"]["clusters"] == 0
    assert facts["headline"]["rejects"] is None and facts["changes"]["source"] is None
    assert facts["traffic"]["series"] == [] and facts["run"]["until"] is None
    html = out.html.read_text()
    assert "No cluster is flagged in this run." in html and "No previous run to compare with" in html
    assert out.csv.read_text().splitlines() == [",".join(REPORT_CSV_COLUMNS)]


def test_registered_in_the_hydrascope_command(tmp_path, runs, capsys):
    from hydrascope.cli import main

    out = tmp_path / "main" / "report.html"
    assert main(["report", str(runs[1]), "--previous", str(runs[0]), "--out", str(out)]) == 0
    assert out.is_file()
    assert main(["report", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert "not a hydrascope run folder" in capsys.readouterr().err
