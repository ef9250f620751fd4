"""Cluster lineage across runs: stable cluster ids and new/continuing/growing/shrinking/merged/split/dissolved."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from graphbuild.errors import ConfigError, RunFolderError
from graphbuild.schema import RunFiles

__all__ = [
    "Lineage", "match_clusters", "lineage_from_run", "read_memberships",
    "LINEAGE_CSV", "LINEAGE_COLUMNS", "STATUSES",
    "NEW", "CONTINUING", "GROWING", "SHRINKING", "MERGED", "SPLIT", "DISSOLVED",
]

#: file name of the lineage table inside a run folder (docs/run-folder.md)
LINEAGE_CSV = "lineage.csv"
LINEAGE_COLUMNS = ("cluster_id", "status", "previous_ids", "overlap", "jaccard", "n_previous", "n_current")

NEW, CONTINUING, GROWING, SHRINKING = "new", "continuing", "growing", "shrinking"
MERGED, SPLIT, DISSOLVED = "merged", "split", "dissolved"
#: every status, in the order reports list them
STATUSES = (NEW, GROWING, MERGED, SPLIT, CONTINUING, SHRINKING, DISSOLVED)

_ID_RE = re.compile(r"^C(\d+)$")


def _id_number(cluster_id: str) -> int | None:
    m = _ID_RE.match(str(cluster_id))
    return int(m.group(1)) if m else None


def format_cluster_id(number: int) -> str:
    """The stable id of cluster number `number`: ``C0001`` (more digits past 9999)."""
    return f"C{number:04d}"


@dataclass(frozen=True, eq=False)
class Lineage:
    """How the clusters of one run relate to those of the previous run.

    Attributes
    ----------
    ids : dict[str, str]
        Provisional (current-run) cluster id -> stable id. Every current cluster is a key.
    table : pandas.DataFrame
        One row per current cluster (under its stable id) plus one row per dissolved previous
        cluster, columns `LINEAGE_COLUMNS`, sorted by `cluster_id`.
    next_id : int
        The first cluster number no run in this chain has used yet; pass it as ``next_id`` to the
        next `match_clusters` (or record it in run.json) so dissolved ids are never reused.
    params : dict
        The thresholds the matching used.
    """

    ids: dict[str, str]
    table: pd.DataFrame
    next_id: int = 1
    params: dict = field(default_factory=dict)

    @property
    def status(self) -> dict[str, str]:
        """Stable id -> status (dissolved clusters included)."""
        return dict(zip(self.table["cluster_id"], self.table["status"]))

    def counts(self) -> dict[str, int]:
        """Number of clusters per status, every status present (0 when none)."""
        vc = self.table["status"].value_counts()
        return {s: int(vc.get(s, 0)) for s in STATUSES}

    def to_csv(self, path: str | Path) -> Path:
        """Write the table as ``lineage.csv`` (deterministic bytes: fixed column order, 4-decimal Jaccard)."""
        path = Path(path)
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(LINEAGE_COLUMNS)
            for row in self.table.itertuples(index=False):
                w.writerow([row.cluster_id, row.status, row.previous_ids, int(row.overlap),
                            f"{float(row.jaccard):.4f}", int(row.n_previous), int(row.n_current)])
        return path


def match_clusters(previous: Mapping[str, Collection[str]], current: Mapping[str, Collection[str]], *,
                   min_containment: float = 0.5, min_jaccard: float = 0.2, min_share: float = 0.25,
                   size_change: float = 0.2, next_id: int | None = None) -> Lineage:
    """Match this run's clusters to the previous run's by shared members and give them stable ids.

    Notation: ``P`` a previous cluster (stable id), ``C`` a current cluster (provisional id),
    ``overlap(P, C) = |P ∩ C|`` (shared account ids), ``jaccard = overlap / |P ∪ C|``,
    ``containment = overlap / min(|P|, |C|)`` and the *surviving* members of ``P`` are those that sit
    in some current cluster; ``share(P, C) = overlap / |surviving(P)|``.

    Rules, applied in this order:

    1. **Match.** ``(P, C)`` is a match when ``containment >= min_containment`` — most of the smaller of
       the two is inside the other — and ``jaccard >= min_jaccard``. Containment lets a cluster that
       triples in size keep matching its earlier self (Jaccard alone would not), while a fragment of a
       large cluster only matches it if the fragment is mostly made of that cluster. The Jaccard floor
       (0.2: at most five-fold growth, or a piece holding at least a fifth) stops a big new cluster
       that swallowed a small old one from inheriting the old id: it is new, the old one dissolved.
    2. **Stable ids.** Matches are taken greedily by overlap (largest first; ties by larger Jaccard,
       then previous id, then current id); a match is accepted when neither side has been paired
       yet. An accepted ``C`` inherits ``P``'s id. So a cluster keeps its id while it persists, the
       largest descendant of a split keeps the id, and a merger keeps the id of its largest
       contributor. Every other current cluster gets a new id ``C%04d``, numbered from
       ``max(next_id, largest previous number + 1)``, in order of size (largest first), then smallest
       member id.
    3. **Split parents.** ``P`` is *split* when at least two current clusters each hold at least
       ``min_share`` of its surviving members and at least 2 of them.
    4. **Status of each current cluster** (first rule that applies):

       - ``merged`` — it inherited an id and at least one *other* previous cluster ``Q`` was absorbed
         into it: ``Q`` put most (more than half) of its surviving members into it and
         ``containment(Q, C) >= min_containment`` (no Jaccard floor: a small cluster swallowed by a big
         one is a merger); ``previous_ids`` is the inherited id followed by those ``Q`` (sorted).
       - ``split`` — it inherited the id of a split parent, or it inherited nothing but is one of the
         ≥2 pieces of a split parent *and* matches it (rule 1; then ``previous_ids`` names such a
         parent giving it the largest overlap, ties by id).
       - ``new`` — it inherited nothing (``previous_ids`` empty, overlap 0).
       - ``growing`` / ``shrinking`` — it inherited ``P`` and ``|C| > (1 + size_change)·|P|`` /
         ``|C| < (1 − size_change)·|P|``.
       - ``continuing`` — it inherited ``P`` and its size changed by at most ``size_change``.

    5. **Dissolved.** A previous cluster whose id was not inherited and that is not named in any row's
       ``previous_ids`` gets a row of its own with status ``dissolved``, its old id in both
       ``cluster_id`` and ``previous_ids``, ``n_current = 0`` and the overlap and Jaccard of its
       closest current cluster (largest overlap), which was not close enough.

    For the other rows ``n_previous`` is the total size of the clusters in ``previous_ids``, ``overlap``
    and ``jaccard`` compare the current cluster with their union, ``n_current = |C|``.

    Parameters
    ----------
    previous : Mapping[str, Collection[str]]
        Stable cluster id -> member account ids, from the previous run (may be empty: first run).
    current : Mapping[str, Collection[str]]
        Provisional cluster id -> member account ids of this run (clusters are disjoint).
    min_containment : float
        Containment a pair needs to match, in (0, 1].
    min_jaccard : float
        Jaccard similarity a pair needs to match (to pass on an id), in [0, 1].
    min_share : float
        Share of a previous cluster's surviving members a piece needs to count towards a split, in (0, 0.5].
    size_change : float
        Relative size change beyond which a continuing cluster is growing or shrinking, >= 0.
    next_id : int, optional
        Lowest number a new id may take (e.g. `Lineage.next_id` of the previous run, so ids of clusters
        that dissolved earlier are never reused).

    Returns
    -------
    Lineage
        ``ids`` (provisional -> stable) and ``table`` (see `LINEAGE_COLUMNS`).

    Raises
    ------
    ConfigError
        When a threshold is outside its range.

    Examples
    --------
    >>> lin = match_clusters({"C0001": {"a", "b", "c"}}, {"x": {"a", "b", "c", "d", "e"}, "y": {"p", "q"}})
    >>> lin.ids
    {'x': 'C0001', 'y': 'C0002'}
    >>> lin.status
    {'C0001': 'growing', 'C0002': 'new'}
    """
    if not 0 < min_containment <= 1:
        raise ConfigError(f"min_containment must be in (0, 1], got {min_containment}")
    if not 0 <= min_jaccard <= 1:
        raise ConfigError(f"min_jaccard must be in [0, 1], got {min_jaccard}")
    if not 0 < min_share <= 0.5:
        raise ConfigError(f"min_share must be in (0, 0.5], got {min_share}")
    if size_change < 0:
        raise ConfigError(f"size_change must be >= 0, got {size_change}")
    prev = {str(k): frozenset(map(str, v)) for k, v in previous.items()}
    cur = {str(k): frozenset(map(str, v)) for k, v in current.items()}
    prev_ids = sorted(prev)
    cur_ids = sorted(cur)

    # overlaps, via an account -> current cluster index (linear in members)
    where: dict[str, list[str]] = {}
    for cid in cur_ids:
        for a in cur[cid]:
            where.setdefault(a, []).append(cid)
    overlap: dict[tuple[str, str], int] = {}
    surviving: dict[str, int] = {}
    for pid in prev_ids:
        n_surv = 0
        for a in prev[pid]:
            cs = where.get(a)
            if cs:
                n_surv += 1
                for cid in cs:
                    overlap[(pid, cid)] = overlap.get((pid, cid), 0) + 1
        surviving[pid] = n_surv

    def jac(pid: str, cid: str) -> float:
        o = overlap.get((pid, cid), 0)
        union = len(prev[pid]) + len(cur[cid]) - o
        return o / union if union else 0.0

    def share(pid: str, cid: str) -> float:
        return overlap.get((pid, cid), 0) / surviving[pid] if surviving[pid] else 0.0

    # 1. matches; 2. greedy one-to-one inheritance
    def contained(pid: str, cid: str) -> bool:
        return overlap.get((pid, cid), 0) >= min_containment * min(len(prev[pid]), len(cur[cid])) > 0

    def is_match(pid: str, cid: str) -> bool:
        return contained(pid, cid) and jac(pid, cid) >= min_jaccard

    # who overlaps whom, so that the rules below never scan all previous x all current clusters
    by_cur: dict[str, list[str]] = {}
    by_prev: dict[str, list[str]] = {}
    for pid, cid in overlap:
        by_cur.setdefault(cid, []).append(pid)
        by_prev.setdefault(pid, []).append(cid)

    matches = [pc for pc in overlap if is_match(*pc)]
    matches.sort(key=lambda pc: (-overlap[pc], -jac(*pc), pc[0], pc[1]))
    inherits: dict[str, str] = {}      # current -> previous
    taken: set[str] = set()
    for pid, cid in matches:
        if cid not in inherits and pid not in taken:
            inherits[cid] = pid
            taken.add(pid)

    # 3. split parents and their pieces
    pieces: dict[str, list[str]] = {}
    for (pid, cid), o in overlap.items():
        if o >= 2 and share(pid, cid) >= min_share:
            pieces.setdefault(pid, []).append(cid)
    split_parents = {pid for pid, cs in pieces.items() if len(cs) >= 2}

    # 4. status of each current cluster
    status: dict[str, str] = {}
    sources: dict[str, list[str]] = {}
    for cid in cur_ids:
        pid = inherits.get(cid)
        if pid is not None:
            absorbed = sorted(q for q in by_cur.get(cid, ()) if q != pid
                              and contained(q, cid) and share(q, cid) > 0.5)
            if absorbed:
                status[cid], sources[cid] = MERGED, [pid, *absorbed]
            elif pid in split_parents:
                status[cid], sources[cid] = SPLIT, [pid]
            else:
                n_p, n_c = len(prev[pid]), len(cur[cid])
                if n_c > (1 + size_change) * n_p:
                    status[cid] = GROWING
                elif n_c < (1 - size_change) * n_p:
                    status[cid] = SHRINKING
                else:
                    status[cid] = CONTINUING
                sources[cid] = [pid]
        else:
            parents = [p for p in by_cur.get(cid, ())
                       if p in split_parents and cid in pieces[p] and is_match(p, cid)]
            if parents:
                parents.sort(key=lambda p: (-overlap[(p, cid)], p))
                status[cid], sources[cid] = SPLIT, [parents[0]]
            else:
                status[cid], sources[cid] = NEW, []

    # stable ids: inherited, then new numbers in size order
    largest = max((n for n in map(_id_number, prev_ids) if n is not None), default=0)
    number = max(largest + 1, int(next_id) if next_id is not None else 1)
    ids: dict[str, str] = {cid: inherits[cid] for cid in cur_ids if cid in inherits}
    used = set(prev_ids)
    fresh = sorted((cid for cid in cur_ids if cid not in inherits),
                   key=lambda c: (-len(cur[c]), min(cur[c], default=""), c))
    for cid in fresh:
        while format_cluster_id(number) in used:
            number += 1
        ids[cid] = format_cluster_id(number)
        used.add(ids[cid])
        number += 1

    rows = []
    for cid in cur_ids:
        srcs = sources[cid]
        union_prev = frozenset().union(*(prev[p] for p in srcs)) if srcs else frozenset()
        o = len(cur[cid] & union_prev)
        u = len(cur[cid] | union_prev)
        rows.append((ids[cid], status[cid], ";".join(srcs), o, round(o / u, 4) if u and srcs else 0.0,
                     sum(len(prev[p]) for p in srcs), len(cur[cid])))

    # 5. dissolved
    named = {p for srcs in sources.values() for p in srcs}
    for pid in prev_ids:
        if pid in named:
            continue
        best = sorted(by_prev.get(pid, ()), key=lambda c: (-overlap[(pid, c)], -jac(pid, c), c))
        o, j = (overlap[(pid, best[0])], round(jac(pid, best[0]), 4)) if best else (0, 0.0)
        rows.append((pid, DISSOLVED, pid, o, j, len(prev[pid]), 0))

    table = pd.DataFrame(rows, columns=list(LINEAGE_COLUMNS))
    table = table.astype({"overlap": "int64", "jaccard": "float64", "n_previous": "int64", "n_current": "int64"})
    table = table.sort_values("cluster_id", kind="stable").reset_index(drop=True)
    params = {"min_containment": min_containment, "min_jaccard": min_jaccard, "min_share": min_share,
              "size_change": size_change}
    return Lineage(ids=dict(sorted(ids.items())), table=table, next_id=number, params=params)


def read_memberships(run_dir: str | Path) -> dict[str, frozenset[str]]:
    """Cluster id -> member account ids from a run folder's accounts.csv (accounts in no cluster skipped).

    Raises
    ------
    RunFolderError
        When accounts.csv is missing or lacks the account_id/cluster_id columns.
    """
    path = Path(run_dir) / RunFiles.ACCOUNTS
    if not path.is_file():
        raise RunFolderError(f"{run_dir} is not a hydrascope run folder: {RunFiles.ACCOUNTS} is missing")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"account_id", "cluster_id"} - set(df.columns)
    if missing:
        raise RunFolderError(f"{path} lacks column(s) {', '.join(sorted(missing))}")
    df = df[df["cluster_id"] != ""]
    return {cid: frozenset(g["account_id"]) for cid, g in df.groupby("cluster_id", sort=True)}


def _used_numbers(run_dir: Path) -> int:
    """Largest cluster number a run folder mentions (accounts, clusters, lineage, run.json watermark)."""
    numbers = [0]
    for name, cols in ((RunFiles.CLUSTERS, ("cluster_id",)), (LINEAGE_CSV, ("cluster_id", "previous_ids"))):
        p = run_dir / name
        if p.is_file():
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
            for col in cols:
                if col in df.columns:
                    for cell in df[col]:
                        numbers += [n for n in map(_id_number, cell.split(";")) if n is not None]
    run_json = run_dir / RunFiles.RUN
    if run_json.is_file():
        try:
            meta = json.loads(run_json.read_text(encoding="utf-8"))
        except ValueError:
            meta = {}
        nxt = (meta.get("lineage") or {}).get("next_id") if isinstance(meta, dict) else None
        if isinstance(nxt, int):
            numbers.append(nxt - 1)
    return max(numbers)


def lineage_from_run(previous_run_dir: str | Path, current: Mapping[str, Collection[str]], **kwargs) -> Lineage:
    """`match_clusters` against the clusters of an earlier run folder (its accounts.csv).

    New ids start after every id the earlier run mentions — its clusters, its own lineage.csv (which
    names clusters that dissolved then) and ``run.json["lineage"]["next_id"]`` when present — so an
    id is never given to two different clusters in one chain of runs.

    Parameters
    ----------
    previous_run_dir : path-like
        The earlier run folder.
    current : Mapping[str, Collection[str]]
        Provisional cluster id -> member account ids of this run.
    **kwargs
        Passed to `match_clusters` (``min_containment``, ``min_jaccard``, ``min_share``, ``size_change``,
        ``next_id``).
    """
    run_dir = Path(previous_run_dir)
    previous = read_memberships(run_dir)
    floor = _used_numbers(run_dir) + 1
    given = kwargs.pop("next_id", None)
    next_id = max(floor, given) if given is not None else floor
    return match_clusters(previous, current, next_id=next_id, **kwargs)
