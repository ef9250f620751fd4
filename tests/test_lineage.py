"""Known-answer tests for community.lineage (cluster matching across runs)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from community.lineage import (LINEAGE_COLUMNS, STATUSES, Lineage, lineage_from_run, match_clusters,
                               read_memberships)
from graphbuild.errors import ConfigError, RunFolderError


def acc(prefix: str, n: int, start: int = 0) -> set[str]:
    return {f"{prefix}{i:03d}" for i in range(start, start + n)}


A10, B10 = acc("a", 10), acc("b", 10)

# name -> (previous, current, expected {provisional: stable}, expected rows {stable: (status, previous_ids)})
CASES = {
    "continuing": (
        {"C0001": A10},
        {"x": A10 - acc("a", 1) | acc("n", 1)},
        {"x": "C0001"},
        {"C0001": ("continuing", "C0001")},
    ),
    "growing": (
        {"C0001": A10},
        {"x": A10 | acc("n", 5)},
        {"x": "C0001"},
        {"C0001": ("growing", "C0001")},
    ),
    "growing_beyond_jaccard": (          # tripling in size: Jaccard 0.33, containment 1
        {"C0001": A10},
        {"x": A10 | acc("n", 20)},
        {"x": "C0001"},
        {"C0001": ("growing", "C0001")},
    ),
    "shrinking": (
        {"C0001": A10},
        {"x": acc("a", 6)},
        {"x": "C0001"},
        {"C0001": ("shrinking", "C0001")},
    ),
    "new": (
        {"C0001": A10},
        {"x": A10, "y": acc("n", 4)},
        {"x": "C0001", "y": "C0002"},
        {"C0001": ("continuing", "C0001"), "C0002": ("new", "")},
    ),
    "merged": (
        {"C0001": A10, "C0002": acc("b", 8)},
        {"x": A10 | acc("b", 8)},
        {"x": "C0001"},
        {"C0001": ("merged", "C0001;C0002")},
    ),
    "split": (
        {"C0003": A10 | acc("b", 6)},
        {"x": A10, "y": acc("b", 6)},
        {"x": "C0003", "y": "C0004"},
        {"C0003": ("split", "C0003"), "C0004": ("split", "C0003")},
    ),
    "dissolved": (
        {"C0001": A10, "C0002": B10},
        {"x": A10 | {"b000"}},
        {"x": "C0001"},
        {"C0001": ("continuing", "C0001"), "C0002": ("dissolved", "C0002")},
    ),
    "fragment_is_not_a_split": (         # 2 of 20 leave: too small a share to call it a split
        {"C0001": acc("a", 20)},
        {"x": acc("a", 18), "y": acc("a", 2, 18) | acc("n", 5)},
        {"x": "C0001", "y": "C0002"},
        {"C0001": ("continuing", "C0001"), "C0002": ("new", "")},
    ),
    "straggler_is_not_a_merge": (        # one member of a dissolved cluster joins a big one
        {"C0001": A10, "C0002": B10},
        {"x": A10 | {"b000"}, "y": acc("n", 3)},
        {"x": "C0001", "y": "C0003"},
        {"C0001": ("continuing", "C0001"), "C0002": ("dissolved", "C0002"), "C0003": ("new", "")},
    ),
    "small_cluster_absorbed_into_big_one_is_merged": (
        {"C0001": acc("a", 20), "C0002": acc("b", 3)},
        {"x": acc("a", 20) | acc("b", 3)},
        {"x": "C0001"},
        {"C0001": ("merged", "C0001;C0002")},
    ),
    "new_campaign_swallowing_a_small_cluster_is_new": (   # 4 -> 41: Jaccard 0.1, below the floor
        {"C0001": A10, "C0002": acc("b", 4)},
        {"x": A10, "y": acc("b", 4) | acc("n", 37)},
        {"x": "C0001", "y": "C0003"},
        {"C0001": ("continuing", "C0001"), "C0002": ("dissolved", "C0002"), "C0003": ("new", "")},
    ),
    "piece_mostly_made_of_others_is_new": (  # half of C0001 leaves into a cluster mostly made of others
        {"C0001": acc("a", 20)},
        {"x": acc("a", 11), "y": acc("a", 9, 11) | acc("n", 30)},
        {"x": "C0001", "y": "C0002"},
        {"C0001": ("split", "C0001"), "C0002": ("new", "")},
    ),
    "first_run": (
        {},
        {"p": acc("a", 3), "q": acc("b", 5)},
        {"p": "C0002", "q": "C0001"},     # new ids in size order
        {"C0001": ("new", ""), "C0002": ("new", "")},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_known_answers(name):
    previous, current, ids, rows = CASES[name]
    lin = match_clusters(previous, current)
    assert isinstance(lin, Lineage)
    assert lin.ids == ids
    got = {r.cluster_id: (r.status, r.previous_ids) for r in lin.table.itertuples()}
    assert got == rows
    assert list(lin.table.columns) == list(LINEAGE_COLUMNS)
    assert list(lin.table["cluster_id"]) == sorted(lin.table["cluster_id"])
    assert set(lin.table["status"]) <= set(STATUSES)


def test_every_status_is_covered_by_a_case():
    seen = set()
    for previous, current, _ids, _rows in CASES.values():
        seen |= set(match_clusters(previous, current).table["status"])
    assert seen == set(STATUSES)


def test_overlap_figures():
    lin = match_clusters({"C0001": A10, "C0002": acc("b", 8)}, {"x": A10 | acc("b", 8) | acc("n", 2)})
    row = lin.table.iloc[0]
    assert (row.overlap, row.n_previous, row.n_current) == (18, 18, 20)
    assert row.jaccard == pytest.approx(0.9)
    lin = match_clusters({"C0001": A10, "C0002": B10}, {"x": A10 | {"b000", "b001"}})
    dis = lin.table.set_index("cluster_id").loc["C0002"]
    assert (dis.status, dis.overlap, dis.n_previous, dis.n_current) == ("dissolved", 2, 10, 0)
    assert dis.jaccard == pytest.approx(2 / 20)


def test_largest_descendant_of_a_split_keeps_the_id():
    prev = {"C0005": acc("a", 30)}
    cur = {"small": acc("a", 10), "big": acc("a", 20, 10)}
    lin = match_clusters(prev, cur)
    assert lin.ids == {"big": "C0005", "small": "C0006"}
    assert lin.status == {"C0005": "split", "C0006": "split"}


def test_merger_keeps_id_of_largest_contributor_and_ties_break_by_id():
    prev = {"C0002": acc("a", 5), "C0001": acc("b", 5), "C0003": acc("c", 7)}
    lin = match_clusters(prev, {"m": acc("a", 5) | acc("b", 5) | acc("c", 7)})
    assert lin.ids == {"m": "C0003"}
    assert lin.status == {"C0003": "merged"}
    assert lin.table.iloc[0].previous_ids == "C0003;C0001;C0002"
    lin = match_clusters({"C0002": acc("a", 5), "C0001": acc("b", 5)}, {"m": acc("a", 5) | acc("b", 5)})
    assert lin.ids == {"m": "C0001"}


def test_new_ids_follow_the_largest_previous_and_next_id():
    prev = {"C0007": A10}
    cur = {"x": A10, "y": acc("n", 3)}
    assert match_clusters(prev, cur).ids["y"] == "C0008"
    lin = match_clusters(prev, cur, next_id=42)
    assert lin.ids["y"] == "C0042" and lin.next_id == 43
    assert match_clusters(prev, cur, next_id=3).ids["y"] == "C0008"


def test_deterministic_regardless_of_input_order():
    prev = {"C0001": A10, "C0002": B10, "C0003": acc("c", 6)}
    cur = {"x": acc("a", 6), "y": acc("a", 4, 6) | acc("b", 9), "z": acc("c", 6) | acc("d", 3), "w": acc("e", 3)}
    one = match_clusters(prev, cur)
    rev = match_clusters(dict(reversed(list(prev.items()))),
                         {k: list(reversed(sorted(v))) for k, v in reversed(list(cur.items()))})
    assert one.ids == rev.ids
    pd.testing.assert_frame_equal(one.table, rev.table)


def test_stable_ids_are_unique_and_every_previous_cluster_is_accounted_for():
    prev = {f"C{i:04d}": acc(chr(97 + i), 6) for i in range(1, 8)}
    cur = {"u": acc("b", 6) | acc("c", 6), "v": acc("d", 3), "w": acc("d", 3, 3), "x": acc("e", 2),
           "y": acc("z", 5), "z": acc("f", 6) | acc("g", 1)}
    lin = match_clusters(prev, cur)
    assert len(set(lin.ids.values())) == len(cur)
    mentioned = set(lin.table["cluster_id"]) | {p for s in lin.table["previous_ids"] for p in s.split(";") if p}
    assert set(prev) <= mentioned


def test_bad_thresholds():
    with pytest.raises(ConfigError, match="min_containment"):
        match_clusters({}, {}, min_containment=0)
    with pytest.raises(ConfigError, match="min_jaccard"):
        match_clusters({}, {}, min_jaccard=1.5)
    with pytest.raises(ConfigError, match="min_share"):
        match_clusters({}, {}, min_share=0.9)


def test_empty_inputs():
    lin = match_clusters({}, {})
    assert lin.ids == {} and lin.table.empty and list(lin.table.columns) == list(LINEAGE_COLUMNS)
    lin = match_clusters({"C0001": A10}, {})
    assert lin.status == {"C0001": "dissolved"}


def _write_run(path, memberships, extra_accounts=(), lineage_rows=None, next_id=None):
    path.mkdir(parents=True)
    rows = sorted([(a, c) for c, ms in memberships.items() for a in ms] + [(a, "") for a in extra_accounts])
    lines = ["account_id,cluster_id,flagged,score"] + [f"{a},{c},false,0.1000" for a, c in rows]
    (path / "accounts.csv").write_text("\n".join(lines) + "\n")
    cl = ["cluster_id,n_accounts,score,flagged,reasons"] + [f"{c},{len(m)},0.1,false," for c, m in memberships.items()]
    (path / "clusters.csv").write_text("\n".join(cl) + "\n")
    (path / "run.json").write_text(json.dumps({"lineage": {"next_id": next_id}} if next_id else {}))
    if lineage_rows:
        (path / "lineage.csv").write_text("cluster_id,status,previous_ids,overlap,jaccard,n_previous,n_current\n"
                                          + "\n".join(lineage_rows) + "\n")
    return path


def test_lineage_from_run_reads_accounts_and_never_reuses_ids(tmp_path):
    run = _write_run(tmp_path / "r1", {"C0001": A10, "C0002": B10}, extra_accounts=["zz"],
                     lineage_rows=["C0001,continuing,C0001,10,1.0,10,10", "C0005,dissolved,C0005,0,0.0,4,0"])
    assert read_memberships(run) == {"C0001": frozenset(A10), "C0002": frozenset(B10)}
    lin = lineage_from_run(run, {"x": A10, "y": acc("n", 3)})
    assert lin.ids == {"x": "C0001", "y": "C0006"}
    assert lin.status["C0002"] == "dissolved"
    run2 = _write_run(tmp_path / "r2", {"C0001": A10}, next_id=12)
    assert lineage_from_run(run2, {"x": A10, "y": acc("n", 3)}).ids["y"] == "C0012"


def test_lineage_csv_bytes_are_deterministic(tmp_path):
    prev = {"C0001": A10, "C0002": B10}
    cur = {"x": A10 | acc("n", 7), "y": acc("b", 5)}
    p1 = match_clusters(prev, cur).to_csv(tmp_path / "a.csv")
    p2 = match_clusters(prev, cur).to_csv(tmp_path / "b.csv")
    assert p1.read_bytes() == p2.read_bytes()
    text = p1.read_text()
    assert text.splitlines()[0] == ",".join(LINEAGE_COLUMNS)
    assert "C0001,growing,C0001,10,0.5882,10,17" in text


def test_missing_run_folder(tmp_path):
    with pytest.raises(RunFolderError, match="accounts.csv"):
        lineage_from_run(tmp_path, {})
