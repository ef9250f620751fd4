"""Periodic cluster report: headline numbers, changes since the last run and trends, as HTML, JSON and CSV."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from community.lineage import (DISSOLVED, LINEAGE_COLUMNS, LINEAGE_CSV, STATUSES, lineage_from_run,
                               read_memberships)
from exporters.runfolder import RunFolder
from graphbuild.errors import ExportError, RunFolderError
from graphbuild.schema import RunFiles

__all__ = ["ReportPaths", "write_report", "build_report", "find_runs", "REPORT_CSV_COLUMNS",
           "REPORT_FORMAT_VERSION"]

#: bumped when report.json changes shape
REPORT_FORMAT_VERSION = 1

#: columns of report.csv: one row per cluster of the run, then one per dissolved cluster
REPORT_CSV_COLUMNS = ("cluster_id", "status", "previous_ids", "overlap", "jaccard", "n_previous", "n_current",
                      "n_accounts", "score", "flagged", "reasons", "site_page", "evidence_package")

#: most rows the HTML "changes" table lists (report.csv and report.json hold them all)
MAX_CHANGE_ROWS = 300

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NOT_COMPARED = "not compared"


@dataclass(frozen=True)
class ReportPaths:
    """The three files `write_report` wrote."""

    html: Path
    json: Path
    csv: Path


# --- small helpers ---------------------------------------------------------------------------------

def _neutralise(value: str) -> str:
    """Defuse spreadsheet formula injection in a CSV cell."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _truthy(series: pd.Series) -> pd.Series:
    return series.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


def _ts(value) -> pd.Timestamp | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rel(target: Path, base: Path) -> str:
    """POSIX relative path from `base` (a folder) to `target`, percent-encoded for an href."""
    return Path(os.path.relpath(Path(target).resolve(), Path(base).resolve())).as_posix()


def _href(rel: str | None) -> str | None:
    return None if rel is None else quote(rel, safe="/")


def _is_run(path: Path) -> bool:
    return all((path / name).is_file() for name in (RunFiles.ACCOUNTS, RunFiles.CLUSTERS, RunFiles.RUN))


def find_runs(path: str | Path) -> list[Path]:
    """Run folders at `path`: the folder itself when it is one, else its sub-folders that are, sorted by name.

    Raises
    ------
    RunFolderError
        When `path` is neither a run folder nor a folder holding any.
    """
    p = Path(path)
    if _is_run(p):
        return [p]
    found = sorted((c for c in p.iterdir() if c.is_dir() and _is_run(c)), key=lambda c: c.name) if p.is_dir() else []
    if not found:
        raise RunFolderError(f"{p} is neither a hydrascope run folder nor a folder of run folders")
    return found


def _site_page(run_dir: Path, cluster_id: str) -> Path | None:
    """The explorer page of a cluster when the run's site has been built, else None."""
    site = run_dir / "site"
    if not site.is_dir():
        return None
    from exporters.site import page_name  # the explorer's own naming: site/clusters/<page_name>

    page = site / "clusters" / page_name(cluster_id)
    # when two ids differ only in case the explorer gives the second a hashed name; that name is unique
    digest = hashlib.sha256(str(cluster_id).encode("utf-8", "surrogatepass")).hexdigest()[:12]
    for candidate in (page.with_name(f"{page.stem}-{digest}.html"), page):
        if candidate.is_file():
            return candidate
    return None


def _site_index(run_dir: Path) -> Path | None:
    p = run_dir / "site" / "index.html"
    return p if p.is_file() else None


def _evidence_package(run_dir: Path, cluster_id: str) -> Path | None:
    """The evidence package of a cluster when it has been built into RUN_DIR/evidence/, else None."""
    from exporters.evidence import package_filename

    p = run_dir / "evidence" / package_filename(cluster_id)
    return p if p.is_file() else None


# --- reading runs ----------------------------------------------------------------------------------

def _window(run: RunFolder) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    w = run.meta.get("window") or {}
    return _ts(w.get("since")), _ts(w.get("until"))


def _label(run: RunFolder) -> str:
    since, until = _window(run)
    if until is not None:
        return until.strftime("%Y-%m-%d" if until == until.normalize() else "%Y-%m-%d %H:%M")
    return run.path.name


def _flagged_ids(run: RunFolder) -> list[str]:
    c = run.clusters
    if c.empty:
        return []
    return sorted(c.loc[_truthy(c["flagged"]), "cluster_id"].astype(str))


def _hourly_flagged_traffic(run: RunFolder) -> pd.Series:
    """Requests per hour of the run's flagged clusters (UTC hour -> requests); empty when unknown."""
    if not (run.path / RunFiles.CLUSTER_ACTIVITY).is_file():
        return pd.Series(dtype="float64")
    act = run.activity
    flagged = set(_flagged_ids(run))
    if act.empty or not flagged or not {"cluster_id", "hour", "requests"} <= set(act.columns):
        return pd.Series(dtype="float64")
    act = act[act["cluster_id"].astype(str).isin(flagged)]
    hours = pd.to_datetime(act["hour"], utc=True)
    requests = pd.to_numeric(act["requests"], errors="coerce").fillna(0)
    keep = requests > 0
    since, until = _window(run)          # sign-ups before the window are not traffic of this run
    if since is not None:
        keep = keep & (hours >= since)
    if until is not None:
        keep = keep & (hours < until)
    return requests[keep].groupby(hours[keep].dt.tz_localize(None).to_numpy()).sum().sort_index()


def _rejects(run: RunFolder) -> dict[str, int] | None:
    p = run.path / RunFiles.REJECTS
    if not p.is_file():
        return None
    df = pd.read_csv(p, dtype=str, keep_default_na=False)
    if "action" not in df.columns:
        return {"rejected": len(df), "cleared": 0}
    return {"rejected": int((df["action"] == "rejected").sum()), "cleared": int((df["action"] == "cleared").sum())}


def _summary(run: RunFolder, base: Path) -> dict:
    since, until = _window(run)
    acc = run.accounts
    flagged_accounts = int(_truthy(acc["flagged"]).sum()) if "flagged" in acc.columns else 0
    in_cluster = int(acc["cluster_id"].notna().sum()) if "cluster_id" in acc.columns else 0
    traffic = _hourly_flagged_traffic(run)
    meta = run.meta
    return {
        "name": run.path.name,
        "path": _rel(run.path, base),
        "label": _label(run),
        "since": _iso(since),
        "until": _iso(until),
        "version": meta.get("version"),
        "seed": meta.get("seed"),
        "accounts": int(len(acc)),
        "accounts_in_clusters": in_cluster,
        "clusters": int(len(run.clusters)),
        "flagged_clusters": len(_flagged_ids(run)),
        "flagged_accounts": flagged_accounts,
        "rejects": _rejects(run),
        "flagged_requests": int(traffic.sum()) if len(traffic) else 0,
    }


def _read_lineage_csv(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = set(LINEAGE_COLUMNS) - set(df.columns)
    if missing:
        raise RunFolderError(f"{path} lacks column(s) {', '.join(sorted(missing))}")
    df = df[list(LINEAGE_COLUMNS)].copy()
    for col in ("overlap", "n_previous", "n_current"):
        df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype("int64")
    df["jaccard"] = pd.to_numeric(df["jaccard"], errors="coerce").fillna(0.0)
    return df


def _lineage(run: RunFolder, previous: RunFolder | None) -> tuple[pd.DataFrame | None, str | None]:
    """The run's lineage table and where it came from (``lineage.csv``, ``computed`` or None).

    A computed table names the run's own cluster ids (the run was made without ``--previous``, so its
    ids are not inherited); ``previous_ids`` and dissolved rows refer to the previous run.
    """
    own = run.path / LINEAGE_CSV
    if own.is_file():
        return _read_lineage_csv(own), LINEAGE_CSV
    if previous is None:
        return None, None
    lin = lineage_from_run(previous.path, read_memberships(run.path))
    back = {stable: mine for mine, stable in lin.ids.items()}
    table = lin.table.copy()
    live = table["status"] != DISSOLVED
    table.loc[live, "cluster_id"] = [back[s] for s in table.loc[live, "cluster_id"]]
    return table.sort_values("cluster_id", kind="stable").reset_index(drop=True), "computed"


def _status_counts(table: pd.DataFrame | None) -> dict[str, int] | None:
    if table is None:
        return None
    vc = table["status"].value_counts()
    return {s: int(vc.get(s, 0)) for s in STATUSES}


def _sequence(run: RunFolder, previous: RunFolder | None, history: Iterable) -> list[RunFolder]:
    """Earlier runs (deduplicated, in window order) followed by the run itself."""
    seen = {run.path.resolve()}
    earlier: list[RunFolder] = []
    items = [previous] if previous is not None else []
    for h in history:
        for p in (find_runs(h.path) if isinstance(h, RunFolder) else find_runs(h)):
            items.append(RunFolder(p))
    for r in items:
        key = r.path.resolve()
        if key not in seen:
            seen.add(key)
            earlier.append(r)

    def order(r: RunFolder):
        since, until = _window(r)
        return (_iso(until) or "", _iso(since) or "", r.path.name, str(r.path))

    earlier.sort(key=order)
    return earlier + [run]


# --- the facts ---------------------------------------------------------------------------------------

def build_report(run_dir, *, previous=None, history: Iterable = (), top: int = 20, base_dir=None) -> dict:
    """Collect everything a report shows, as a JSON-ready dict (what report.json holds).

    Parameters
    ----------
    run_dir : path-like
        The run folder to report on.
    previous : path-like, optional
        The run to compare with when `run_dir` has no lineage.csv (it was made without ``--previous``).
        It also joins the trend.
    history : iterable of path-like
        Earlier run folders (or folders of run folders) for the trend charts; duplicates and the run
        itself are ignored, order comes from each run's window.
    top : int
        How many flagged clusters to list (highest score first).
    base_dir : path-like, optional
        Folder the paths in the result are relative to (default: `run_dir`).

    Returns
    -------
    dict
        Keys ``format``, ``run``, ``previous``, ``headline``, ``changes``, ``top_flagged``, ``clusters``,
        ``trend``, ``traffic``.
    """
    run = RunFolder(run_dir)
    prev = RunFolder(previous) if previous is not None else None
    base = Path(base_dir) if base_dir is not None else run.path
    seq = _sequence(run, prev, history)

    # the run's lineage
    table, source = _lineage(run, prev)
    prev_for_links = prev
    if prev_for_links is None and source == LINEAGE_CSV:
        pp = run.meta.get("previous_run")
        if isinstance(pp, str) and pp:
            # recorded as given to `hydrascope run`; a relative path may be relative to another folder, so
            # prefer a sibling of this run with that name (the usual layout) over the working directory
            sibling = run.path.parent / Path(pp).name
            for cand in ([Path(pp)] if Path(pp).is_absolute() else [sibling, Path(pp)]):
                if _is_run(cand) and cand.resolve() != run.path.resolve():
                    prev_for_links = RunFolder(cand)
                    break

    clusters = run.clusters.copy()
    clusters["cluster_id"] = clusters["cluster_id"].astype(str)
    clusters["hs_flagged"] = _truthy(clusters["flagged"]) if len(clusters) else pd.Series(dtype=bool)
    clusters["score"] = pd.to_numeric(clusters["score"], errors="coerce")
    lin_by_id = {} if table is None else {r.cluster_id: r for r in table.itertuples(index=False)
                                          if r.status != DISSOLVED}

    def links(run_folder: RunFolder | None, cid: str) -> tuple[str | None, str | None]:
        if run_folder is None:
            return None, None
        site = _site_page(run_folder.path, cid)
        ev = _evidence_package(run_folder.path, cid)
        return (_rel(site, base) if site else None), (_rel(ev, base) if ev else None)

    details = {}
    if (run.path / RunFiles.CLUSTER_DETAILS).is_file():
        details = {str(c.get("cluster_id")): c for c in run.cluster_details}

    rows = []
    ordered = clusters.sort_values(["score", "cluster_id"], ascending=[False, True], kind="stable",
                                   na_position="last")
    for c in ordered.itertuples(index=False):
        cid = c.cluster_id
        lr = lin_by_id.get(cid)
        site, ev = links(run, cid)
        reasons = [s.strip() for s in str(c.reasons or "").split(";") if s.strip()]
        d = details.get(cid, {})
        rows.append({
            "cluster_id": cid,
            "status": lr.status if lr is not None else None,
            "previous_ids": [p for p in lr.previous_ids.split(";") if p] if lr is not None else [],
            "overlap": int(lr.overlap) if lr is not None else None,
            "jaccard": float(lr.jaccard) if lr is not None else None,
            "n_previous": int(lr.n_previous) if lr is not None else None,
            "n_current": int(lr.n_current) if lr is not None else None,
            "n_accounts": int(c.n_accounts),
            "score": float(c.score) if pd.notna(c.score) else None,
            "flagged": bool(c.hs_flagged),
            "reasons": reasons,
            "first_seen": d.get("first_seen"),
            "last_seen": d.get("last_seen"),
            "site_page": site,
            "evidence_package": ev,
        })
    dissolved = []
    if table is not None:
        for r in table[table["status"] == DISSOLVED].itertuples(index=False):
            site, ev = links(prev_for_links, r.cluster_id)
            dissolved.append({
                "cluster_id": r.cluster_id, "status": DISSOLVED, "previous_ids": [r.cluster_id],
                "overlap": int(r.overlap), "jaccard": float(r.jaccard), "n_previous": int(r.n_previous),
                "n_current": 0, "n_accounts": None, "score": None, "flagged": None, "reasons": [],
                "first_seen": None, "last_seen": None, "site_page": site, "evidence_package": ev,
            })

    # trend over the sequence of runs
    trend = []
    traffic_by_hour: dict[pd.Timestamp, float] = {}
    boundaries = []
    for i, r in enumerate(seq):
        s = _summary(r, base)
        if r is run:
            t_table = table
        else:
            t_table, _src = _lineage(r, seq[i - 1] if i else None)
        s["status_counts"] = _status_counts(t_table)
        trend.append(s)
        for hour, v in _hourly_flagged_traffic(r).items():
            traffic_by_hour[pd.Timestamp(hour)] = float(v)       # a later run wins an hour both cover
        since, _until = _window(r)
        if i and since is not None:
            boundaries.append(since)
    traffic = pd.Series(traffic_by_hour, dtype="float64").sort_index()
    period = "hour"
    if len(traffic) and (traffic.index[-1] - traffic.index[0]) > pd.Timedelta(hours=72):
        traffic = traffic.resample("1D").sum()
        period = "day"

    head = trend[-1]
    counts = _status_counts(table)
    changes_rows = sorted((r for r in rows + dissolved if r["status"] is not None),
                          key=lambda r: (STATUSES.index(r["status"]) if r["status"] in STATUSES else 99,
                                         r["cluster_id"]))
    return {
        "format": REPORT_FORMAT_VERSION,
        "run": {**{k: head[k] for k in ("name", "path", "label", "since", "until", "version", "seed")},
                "site_index": _rel(_site_index(run.path), base) if _site_index(run.path) else None},
        "previous": None if prev is None else {"name": prev.path.name, "path": _rel(prev.path, base)},
        "headline": {k: head[k] for k in ("accounts", "accounts_in_clusters", "clusters", "flagged_clusters",
                                          "flagged_accounts", "rejects", "flagged_requests")},
        "changes": {
            "source": source,
            "counts": counts,
            "new_flagged": sum(1 for r in rows if r["status"] == "new" and r["flagged"]),
            "rows": [{k: r[k] for k in ("cluster_id", "status", "previous_ids", "overlap", "jaccard",
                                        "n_previous", "n_current", "flagged", "site_page")}
                     for r in changes_rows],
        },
        "top_flagged": [r for r in rows if r["flagged"]][: max(int(top), 0)],
        "clusters": rows + dissolved,
        "trend": trend,
        "traffic": {
            "period": period,
            "series": [{"time": _iso(_ts(t)), "requests": int(v)} for t, v in traffic.items()],
            "run_starts": [_iso(b) for b in boundaries],
        },
    }


# --- writing ---------------------------------------------------------------------------------------

def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _charts(facts: dict) -> list[dict]:
    from exporters.figures import STATUS_COLORS, runs_bar_png, traffic_png

    trend = facts["trend"]
    labels = [t["label"] for t in trend]
    charts = []
    charts.append({
        "id": "chart-flagged",
        "title": "Flagged accounts and clusters per run",
        "alt": "Bar chart of flagged accounts per run: " + ", ".join(
            f"{t['label']}: {t['flagged_accounts']} accounts in {t['flagged_clusters']} clusters" for t in trend),
        "png": runs_bar_png(labels, {"flagged accounts": [t["flagged_accounts"] for t in trend],
                                     "flagged clusters": [t["flagged_clusters"] for t in trend]},
                            stacked=False, title="Flagged accounts and clusters per run", ylabel="count",
                            colors={"flagged accounts": "#d62728", "flagged clusters": "#1f77b4"}),
    })
    series = {s: [(t["status_counts"] or {}).get(s, 0) * (-1 if s == DISSOLVED else 1) for t in trend]
              for s in STATUSES}
    series = {s: v for s, v in series.items() if any(v)}
    missing = [t["clusters"] if t["status_counts"] is None else 0 for t in trend]
    if any(missing):
        series[_NOT_COMPARED] = missing
    colors = dict(STATUS_COLORS, **{_NOT_COMPARED: "#c7c7c7"})
    charts.append({
        "id": "chart-status",
        "title": "Clusters by status per run",
        "alt": "Stacked bar chart of clusters by lineage status per run: " + "; ".join(
            f"{lab}: " + ", ".join(f"{abs(v[i])} {s}" for s, v in series.items() if v[i])
            for i, lab in enumerate(labels)),
        "png": runs_bar_png(labels, series, stacked=True, colors=colors,
                            title="Clusters by status per run (below zero: dissolved since the run before)",
                            ylabel="clusters"),
    })
    tr = facts["traffic"]
    frame = pd.DataFrame(tr["series"], columns=["time", "requests"])
    per = tr["period"]
    charts.append({
        "id": "chart-traffic",
        "title": f"Requests per {per} from flagged clusters",
        "alt": f"Line chart of requests per {per} sent by the accounts of flagged clusters, "
               f"{len(frame)} points, total {int(frame['requests'].sum()) if len(frame) else 0} requests",
        "png": traffic_png(frame, title=f"Requests per {per} from flagged clusters (dashed: a new run begins)",
                           ylabel=f"requests / {per}", boundaries=tr["run_starts"]),
    })
    return charts


def _csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REPORT_CSV_COLUMNS)

    def cell(v) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return f"{v:.4f}"
        if isinstance(v, list):
            return _neutralise(";".join(map(str, v)))
        return _neutralise(str(v))

    for r in rows:
        w.writerow([cell(r.get(c)) for c in REPORT_CSV_COLUMNS])
    return buf.getvalue().encode("utf-8")


def _render_html(facts: dict, charts: list[dict], title: str, data_names: tuple[str, str]) -> bytes:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from exporters.figures import STATUS_COLORS

    env = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["href"] = _href
    env.filters["num"] = lambda v: "—" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:,.4f}")
    env.filters["score"] = lambda v: "—" if v is None else f"{v:.3f}"
    env.filters["png"] = _png_uri
    env.filters["when"] = lambda v: "…" if not v else v.replace("T", " ").replace(":00Z", " UTC")
    changes = facts["changes"]
    shown = [r for r in changes["rows"] if r["status"] != "continuing"]
    html = env.get_template("report.html.j2").render(
        title=title, f=facts, charts=charts, statuses=STATUSES, data_names=data_names,
        status_colors={s: STATUS_COLORS.get(s, "#7f7f7f") for s in STATUSES},
        changes_shown=shown[:MAX_CHANGE_ROWS], changes_hidden=max(len(shown) - MAX_CHANGE_ROWS, 0),
    )
    return html.encode("utf-8")


def write_report(run_dir, out_path, *, previous=None, history: Iterable = (), top: int = 20,
                 title: str | None = None) -> ReportPaths:
    """Write the periodic report of a run: ``out_path`` (HTML) plus ``report.json`` and ``report.csv`` beside it.

    The HTML is one self-contained file (charts are PNG ``data:`` URIs, CSS inline, no script, a
    Content-Security-Policy that forbids any network request) with: headline numbers (accounts,
    clusters, flagged clusters and accounts, rejected input rows), changes since the previous run (from
    the run's ``lineage.csv``, else computed with `community.lineage.match_clusters` against
    `previous`), the top flagged clusters, trend charts over every earlier run it is given (flagged
    accounts, clusters by status, requests of flagged clusters from ``cluster_activity.parquet``), and a
    table of those runs. Each cluster links to its explorer page (``RUN_DIR/site/``) and evidence
    package (``RUN_DIR/evidence/cluster-<id>.zip``) when they have been built.

    ``report.json`` holds every fact shown (see `build_report`); ``report.csv`` has one row per cluster
    of the run (highest score first) then one per dissolved cluster, columns `REPORT_CSV_COLUMNS`.
    The same run folders give the same bytes.

    Parameters
    ----------
    run_dir : path-like
        The run folder to report on.
    out_path : path-like
        The HTML file to write (its folder is created); the JSON and CSV go beside it as
        ``<stem>.json`` and ``<stem>.csv`` (``report.json``/``report.csv`` for ``report.html``).
    previous : path-like, optional
        The run before, used when the run has no lineage.csv and added to the trend.
    history : iterable of path-like
        Earlier runs (or folders of runs) for the trend charts.
    top : int
        How many flagged clusters to list.
    title : str, optional
        Page title (default: "hydrascope report — <run folder name>").

    Returns
    -------
    ReportPaths
        Paths of the HTML, JSON and CSV files.

    Raises
    ------
    RunFolderError
        When a folder is not a run folder.
    ExportError
        When the output cannot be written.
    """
    out = Path(out_path)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ExportError(f"--out must name an .html file, got {out}")
    facts = build_report(run_dir, previous=previous, history=history, top=top, base_dir=out.parent)
    charts = _charts(facts)
    title = title or f"hydrascope report — {facts['run']['name']}"
    paths = ReportPaths(html=out, json=out.with_suffix(".json"), csv=out.with_suffix(".csv"))
    html = _render_html(facts, charts, title, (paths.json.name, paths.csv.name))
    json_bytes = (json.dumps(facts, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    csv_bytes = _csv_bytes(facts["clusters"])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        paths.html.write_bytes(html)
        paths.json.write_bytes(json_bytes)
        paths.csv.write_bytes(csv_bytes)
    except OSError as exc:
        raise ExportError(f"cannot write the report to {out.parent}: {exc}") from exc
    return paths
