"""Build the static, offline HTML explorer of a run folder (index page + one page per cluster)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from exporters.runfolder import RunFolder
from graphbuild.errors import ExportError, RunFolderError
from graphbuild.schema import KIND_LAYER, LAYERS, RunFiles

__all__ = ["write_site", "SitePaths", "page_name", "paged_clusters", "script_json", "KIND_LABELS", "MAX_PAGES"]

#: how each identifier kind is named on the pages
KIND_LABELS = {
    "ip": "IP", "ip_window": "IP (time window)", "signup_ip": "sign-up IP", "prefix": "network prefix",
    "instrument": "payment instrument", "template": "prompt template", "time_window": "activity window",
    "signup_window": "sign-up burst", "user_agent": "user agent",
}
#: identifier kinds in display order (graph legend, tables)
KIND_ORDER = ("ip", "signup_ip", "prefix", "ip_window", "instrument", "template", "user_agent",
              "time_window", "signup_window")
#: vis-network node shape per identifier kind
KIND_SHAPES = {"ip": "dot", "signup_ip": "diamond", "prefix": "square", "ip_window": "dot",
               "instrument": "triangle", "template": "star", "user_agent": "hexagon",
               "time_window": "triangleDown", "signup_window": "triangleDown"}

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10)),
             "index"}
_HERE = Path(__file__).resolve().parent
_TABLE_PAGE = 100          # accounts table page size
_MAX_PROMPT_CHARS = 4000   # sample prompts are cut (visibly) beyond this
_MAX_EXAMPLES = 3
_MAX_TEMPLATES = 12
_MAX_TOP_PAIRS = 25
_AGG_GROUPS = 200          # aggregated view: at most this many account groups ...
_AGG_IDENTIFIERS = 300     # ... and identifier nodes


@dataclass(frozen=True)
class SitePaths:
    """Where :func:`write_site` wrote the explorer.

    Attributes
    ----------
    root : Path
        The site folder (``RUN_DIR/site`` by default).
    index : Path
        ``root/index.html``.
    clusters : dict
        cluster id → path of its page (``root/clusters/<name>.html``).
    assets : tuple of Path
        Scripts shipped beside the pages (empty when ``standalone``).
    aggregated : tuple of str
        Ids of clusters drawn as an aggregated view (more than ``max_nodes`` nodes).
    unpaged : tuple of str
        Ids of clusters listed in the index without a page (beyond ``max_pages``).
    """

    root: Path
    index: Path
    clusters: dict[str, Path] = field(default_factory=dict)
    assets: tuple[Path, ...] = ()
    aggregated: tuple[str, ...] = ()
    unpaged: tuple[str, ...] = ()

    def pages(self) -> list[Path]:
        """Every HTML page written, index first."""
        return [self.index, *self.clusters.values()]


# ---------------------------------------------------------------------------------------------
# small safe helpers
# ---------------------------------------------------------------------------------------------

def page_name(cluster_id: str) -> str:
    """File name of a cluster's page: the id itself when it is a plain word, else a safe slug + hash.

    Parameters
    ----------
    cluster_id : str
        Any string.

    Returns
    -------
    str
        ``<name>.html`` made only of ``[A-Za-z0-9_.-]``, never ``index.html``; distinct ids
        give distinct names (case-insensitively).

    Examples
    --------
    >>> page_name("C0001")
    'C0001.html'
    >>> page_name("../<b>x")
    'b_x-9f4a08e0.html'
    """
    cid = str(cluster_id)
    if _SAFE_NAME.fullmatch(cid) and cid.lower() not in _RESERVED and cid == cid.upper():
        return f"{cid}.html"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", cid).strip("_-")[:40] or "cluster"
    digest = hashlib.sha256(cid.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug}-{digest}.html"


def script_json(obj: Any) -> str:
    """JSON text that is safe inside an HTML ``<script>`` element.

    ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e``, ``\\u0026`` and non-ASCII (including
    U+2028/U+2029) is ``\\u``-escaped, so no string can close the element or open a comment.
    """
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _plain(v: Any) -> Any:
    """A JSON-ready value: NaN/NaT → None, numpy scalars → Python, timestamps → ISO 8601 Z."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else round(f, 6)
    if isinstance(v, pd.Timestamp):
        if pd.isna(v):
            return None
        ts = v.tz_convert("UTC") if v.tzinfo else v
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, str):
        return v
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return str(v)


def _ts(v: Any) -> str | None:
    """ISO 8601 'Z' text for any timestamp-ish value, None when missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, str):
        return v
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        return str(v)
    if pd.isna(ts):
        return None
    ts = ts.tz_convert("UTC") if ts.tzinfo else ts
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _flag(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    try:
        return bool(v) and not pd.isna(v)
    except (TypeError, ValueError):
        return bool(v)


def _short(s: Any, n: int) -> str:
    s = "" if s is None else str(s)
    return s if len(s) <= n else s[: n - 1] + "…"


def _csp(hashes: list[str], standalone: bool) -> str:
    sources = ([] if standalone else ["'self'"]) + [f"'sha256-{h}'" for h in hashes]
    return ("default-src 'none'; script-src " + " ".join(sources or ["'none'"])
            + "; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")


def _sha256_b64(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


# ---------------------------------------------------------------------------------------------
# assets
# ---------------------------------------------------------------------------------------------

def _vis_js() -> str:
    """The vis-network build vendored by pyvis (lib/vis-9.1.2), found without importing pyvis."""
    import importlib.util

    spec = importlib.util.find_spec("pyvis")
    if spec is None or not spec.submodule_search_locations:
        raise ExportError("the site needs pyvis for its vendored vis-network (pip install pyvis)")
    path = Path(list(spec.submodule_search_locations)[0]) / "lib" / "vis-9.1.2" / "vis-network.min.js"
    if not path.is_file():
        raise ExportError(f"vis-network is missing from the pyvis package: {path}")
    return path.read_text(encoding="utf-8")


def _static(name: str) -> str:
    return (_HERE / "static" / name).read_text(encoding="utf-8")


def _env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = lambda v, d=4: "" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))
    env.filters["short"] = _short
    return env


# ---------------------------------------------------------------------------------------------
# reading the run folder once
# ---------------------------------------------------------------------------------------------

def _optional(run: RunFolder, name: str) -> pd.DataFrame | None:
    try:
        return run.table(name)
    except RunFolderError:
        return None


def _rows_of(run: RunFolder, name: str, columns: tuple[str, ...], accounts: set | None) -> pd.DataFrame | None:
    """The rows of a run-folder Parquet table whose ``columns`` all hold accounts of ``accounts``.

    Filtered while reading, in file order, so a million-account run's tables are never held
    whole; ``accounts=None`` reads every row.
    """
    try:
        path = run.file(name)
    except RunFolderError:
        return None
    import pyarrow as pa
    import pyarrow.dataset as ds

    dataset = ds.dataset(path, format="parquet")
    cond = None
    if accounts is not None:
        values = pa.array(sorted(accounts), type=pa.string())
        for c in columns:
            if c not in dataset.schema.names:
                continue
            part = ds.field(c).cast(pa.string()).isin(values)
            cond = part if cond is None else cond & part
    return dataset.to_table(filter=cond).to_pandas()


class _Run:
    """The run folder's tables, grouped by cluster once."""

    def __init__(self, run: RunFolder, max_pages: int | None = None, max_nodes: int | None = None):
        self.run = run
        acc = run.accounts.copy()
        acc["account_id"] = acc["account_id"].astype(str)
        self.accounts = acc
        clusters = run.clusters.copy()
        clusters["cluster_id"] = clusters["cluster_id"].astype(str)
        self.clusters = clusters
        try:
            details = run.cluster_details
        except RunFolderError:
            details = []
        self.details = {str(c.get("cluster_id")): c for c in details}
        self.meta = run.meta

        in_cluster = acc.dropna(subset=["cluster_id"])
        self.members = {cid: sorted(g["account_id"].tolist())
                        for cid, g in in_cluster.groupby("cluster_id", sort=True)}
        self.cluster_of = dict(zip(in_cluster["account_id"], in_cluster["cluster_id"].astype(str)))
        # only the clusters that get a page, and those the index's overview draws, need their rows
        ids = [str(c) for c in clusters["cluster_id"]]
        self.paged = paged_clusters(clusters, max_pages)
        wanted = set(self.paged)
        if max_nodes is not None:
            wanted.update(ids[:max_nodes])
        need = None
        if len(wanted) < len(ids):
            need = {a for c in wanted for a in self.members.get(c, ())}

        # per-account extras (score/flag from accounts.csv; embeddedness and features when present)
        extra = acc.set_index("account_id")[["score", "flagged"]].copy()
        det = _optional(run, RunFiles.ACCOUNT_DETAILS)
        if det is not None and "embeddedness" in det.columns:
            extra = extra.join(det.astype({"account_id": str}).set_index("account_id")[["embeddedness"]])
        feats = _optional(run, RunFiles.FEATURES)
        self.feature_columns: list[str] = []
        if feats is not None and len(feats.columns) > 1:
            feats = feats.astype({"account_id": str}).set_index("account_id")
            keep = [c for c in ("n_requests", "email_domain", "country", "created_at", "prepaid_share",
                                "template_share") if c in feats.columns]
            keep = [c for c in keep if c not in extra.columns]
            self.feature_columns = keep
            extra = extra.join(feats[keep])
        self.extra = extra

        ai = _rows_of(run, RunFiles.ACCOUNT_IDENTIFIERS, ("account_id",), need)
        if ai is None:
            ai = pd.DataFrame(columns=["account_id", "kind", "identifier", "n_events", "first_seen", "last_seen"])
        ai = ai.astype({"account_id": str, "kind": str, "identifier": str})
        ai = ai.assign(cluster_id=ai["account_id"].map(self.cluster_of)).dropna(subset=["cluster_id"])
        if ai.duplicated(["account_id", "kind", "identifier"]).any():
            ai = (ai.groupby(["cluster_id", "account_id", "kind", "identifier"], sort=True)
                  .agg(n_events=("n_events", "sum"), first_seen=("first_seen", "min"),
                       last_seen=("last_seen", "max")).reset_index())
        # one integer id per (kind, identifier), numbered in sorted order, so per-cluster work is on ints
        grouped = ai.groupby(["kind", "identifier"], sort=True)
        ai = ai.assign(kid=grouped.ngroup().to_numpy())
        self.kid_keys = grouped.size().index.to_frame(index=False)[["kind", "identifier"]]
        self.ai = {cid: g for cid, g in ai[["cluster_id", "account_id", "kid", "n_events", "first_seen",
                                            "last_seen"]].groupby("cluster_id", sort=True)}

        idf = _optional(run, RunFiles.IDENTIFIERS)
        cols = ["kind", "identifier", "layer", "n_accounts", "pair_weight", "is_hub"]
        if idf is None or not len(idf):
            idf = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
        idf = idf.astype({"kind": str, "identifier": str})
        for c in cols:
            if c not in idf.columns:
                idf[c] = None
        idf = idf[cols].drop_duplicates(["kind", "identifier"])
        self.kid_info = self.kid_keys.merge(idf, on=["kind", "identifier"], how="left")
        self.kid_info["layer"] = self.kid_info["layer"].where(
            self.kid_info["layer"].notna() & (self.kid_info["layer"] != ""),
            self.kid_info["kind"].map(KIND_LAYER)).fillna("")
        self.kid_info["is_hub"] = self.kid_info["is_hub"].fillna(False).astype(bool)
        self.kid_info["n_accounts"] = pd.to_numeric(self.kid_info["n_accounts"], errors="coerce").astype("Int64")

        tpl = _optional(run, RunFiles.TEMPLATES)
        self.skeletons: dict[str, str] = {}
        if tpl is not None and len(tpl):
            self.skeletons = dict(zip(tpl["template_id"].astype(str), tpl["skeleton"].astype(str)))
        self.templates = tpl

        links = _rows_of(run, RunFiles.LINKS, ("account_a", "account_b"), need)
        if links is None:
            links = pd.DataFrame(columns=["account_a", "account_b", "layer", "weight", "evidence_count",
                                          "first_seen", "last_seen"])
        links = links.astype({"account_a": str, "account_b": str, "layer": str})
        ca = links["account_a"].map(self.cluster_of)
        cb = links["account_b"].map(self.cluster_of)
        same = ca.notna() & (ca == cb)
        self.links = {cid: g for cid, g in links[same].assign(cluster_id=ca[same]).groupby("cluster_id", sort=True)}
        m = ca.notna() & cb.notna() & (ca != cb)
        cross = links[m].assign(ca=ca[m], cb=cb[m])
        self.cross = cross

        act = _optional(run, RunFiles.CLUSTER_ACTIVITY)
        self.activity = {} if act is None else {str(cid): g for cid, g in act.groupby("cluster_id", sort=True)}


# ---------------------------------------------------------------------------------------------
# cluster page data
# ---------------------------------------------------------------------------------------------

def _iso(series: pd.Series) -> list:
    """ISO 8601 'Z' strings (None when missing) for a column of timestamps."""
    if not len(series):
        return []
    s = pd.to_datetime(series, utc=True, errors="coerce")
    out = s.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return [None if pd.isna(v) else v for v in out]


_NO_AI = pd.DataFrame({"account_id": pd.Series(dtype=str), "kind": pd.Series(dtype=str),
                       "identifier": pd.Series(dtype=str), "n_events": pd.Series(dtype="int64"),
                       "first_seen": pd.Series(dtype="datetime64[ns]"), "last_seen": pd.Series(dtype="datetime64[ns]")})
_INODE_SAMPLE = 20   # identifiers listed in one merged node's tooltip


def _shared_identifiers(R: _Run, cid: str, aidx: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Identifiers used by >= 2 members, strongest first, and the account x identifier incidence."""
    ai = R.ai.get(cid)
    cols = ["kind", "identifier", "n_in", "first", "last", "layer", "n_accounts", "pair_weight", "is_hub"]
    if ai is None or not len(ai):
        return (pd.DataFrame({c: pd.Series(dtype=object) for c in cols}),
                pd.DataFrame({c: pd.Series(dtype="int64") for c in ("a", "i", "n")}).assign(first=pd.NaT, last=pd.NaT))
    g = ai.groupby("kid", sort=True).agg(n_in=("account_id", "size"), first=("first_seen", "min"),
                                         last=("last_seen", "max"))
    g = g[g["n_in"] >= 2]
    kids = g.index.to_numpy()
    info = R.kid_info.iloc[kids].reset_index(drop=True)
    sh = info.assign(n_in=g["n_in"].to_numpy(), first=g["first"].to_numpy(), last=g["last"].to_numpy(), kid=kids)
    rank = {k: i for i, k in enumerate(KIND_ORDER)}
    sh = sh.assign(_pw=pd.to_numeric(sh["pair_weight"], errors="coerce").fillna(0.0).astype(float),
                   _kr=sh["kind"].map(rank).fillna(99))
    # strongest first: rarer (higher pair weight), then more members, then kind, then text
    sh = sh.sort_values(["_pw", "n_in", "_kr", "kind", "identifier"],
                        ascending=[False, False, True, True, True], kind="mergesort").reset_index(drop=True)
    pos = pd.Series(np.arange(len(sh)), index=sh["kid"].to_numpy())
    rows = ai[ai["kid"].isin(pos.index)]
    a = rows["account_id"].map(aidx)
    inc = pd.DataFrame({"a": a.to_numpy(), "i": pos.reindex(rows["kid"].to_numpy()).to_numpy(),
                        "n": rows["n_events"].to_numpy(), "first": rows["first_seen"].to_numpy(),
                        "last": rows["last_seen"].to_numpy()}).dropna(subset=["a"])
    inc = inc.astype({"a": "int64", "i": "int64"}).sort_values(["a", "i"], kind="mergesort").reset_index(drop=True)
    return sh, inc


def _hidden_identifier_nodes(inodes: list[list], drawn: list[int], n_accounts: int) -> list[int]:
    """Identifier nodes (positions in ``drawn``) hidden until the reader asks for all of them.

    A readable picture shows at most ``max(60, min(300, 2 * n_accounts))`` identifier nodes:
    first the ten most widely shared of every kind, then the most widely shared overall.
    """
    budget = max(60, min(300, 2 * n_accounts))
    if len(drawn) <= budget:
        return []
    order = sorted(range(len(drawn)), key=lambda j: (-inodes[drawn[j]][2], j))
    shown: set[int] = set()
    per_kind: dict[str, int] = {}
    for j in order:
        kind = inodes[drawn[j]][0]
        if per_kind.get(kind, 0) < 10:
            per_kind[kind] = per_kind.get(kind, 0) + 1
            shown.add(j)
    for j in order:
        if len(shown) >= budget:
            break
        shown.add(j)
    return [j for j in range(len(drawn)) if j not in shown]


def _cluster_data(R: _Run, cid: str, *, max_nodes: int, seed: int) -> dict:
    """Everything the cluster page's script needs: accounts, identifiers, graph, links summary."""
    from exporters.site.layout import bipartite_positions, layout_positions

    members = R.members.get(cid, [])
    n_a = len(members)
    aidx = {a: i for i, a in enumerate(members)}
    sh, inc = _shared_identifiers(R, cid, aidx)
    n_i = len(sh)
    kinds, idents_s, layers = sh["kind"].tolist(), sh["identifier"].tolist(), sh["layer"].tolist()
    is_hub = sh["is_hub"].tolist()

    # identifier nodes: non-hub identifiers of one kind used by exactly the same accounts are merged
    users: dict[int, tuple] = {}
    if len(inc):   # inc is sorted by (a, i); regroup by identifier without a Python-level groupby
        order = np.lexsort((inc["a"].to_numpy(), inc["i"].to_numpy()))
        ii, aa = inc["i"].to_numpy()[order], inc["a"].to_numpy()[order]
        cuts = np.flatnonzero(np.diff(ii)) + 1
        for chunk_i, chunk_a in zip(np.split(ii, cuts), np.split(aa, cuts)):
            users[int(chunk_i[0])] = tuple(chunk_a.tolist())
    inode_of = np.full(n_i, -1, dtype=np.int64)
    inodes: list[list] = []     # [kind, layer, n_users, [identifier indexes (sample)], n_identifiers]
    inode_users: list[tuple] = []
    seen: dict[tuple, int] = {}
    for i in range(n_i):
        if is_hub[i]:
            continue
        u = users.get(i, ())
        key = (kinds[i], u)
        k = seen.get(key)
        if k is None:
            k = seen[key] = len(inodes)
            inodes.append([kinds[i], layers[i], len(u), [], 0])
            inode_users.append(u)
        inode_of[i] = k
        node = inodes[k]
        node[4] += 1
        if len(node[3]) < _INODE_SAMPLE:
            node[3].append(i)

    inc = inc.assign(node=inode_of[inc["i"].to_numpy()] if len(inc) else np.zeros(0, dtype=np.int64))
    on_graph = inc[inc["node"] >= 0]
    edges_df = (on_graph.groupby(["a", "node"], sort=True)
                .agg(n=("n", "sum"), first=("first", "min"), last=("last", "max")).reset_index())
    strongest = np.full(n_a, -1, dtype=np.int64)
    if len(edges_df):
        best = edges_df.groupby("a")["node"].min()
        strongest[best.index.to_numpy()] = best.to_numpy()
    n_shared = np.zeros(n_a, dtype=np.int64)
    if len(inc):
        cnt = inc.groupby("a").size()
        n_shared[cnt.index.to_numpy()] = cnt.to_numpy()

    # links among members, summarised per account and per layer
    links = R.links.get(cid)
    link_layers: dict[str, dict] = {}
    partners: list[dict] = [dict() for _ in members]
    top_pairs = []
    if links is not None and len(links):
        for layer, g in links.groupby("layer", sort=True):
            link_layers[layer] = {"pairs": int(len(g)), "weight": round(float(g["weight"].sum()), 4)}
        ends = pd.concat([links[["account_a", "layer"]].rename(columns={"account_a": "acc"}),
                          links[["account_b", "layer"]].rename(columns={"account_b": "acc"})])
        for (acc, layer), n in ends.groupby(["acc", "layer"], sort=True).size().items():
            if acc in aidx:
                partners[aidx[acc]][layer] = int(n)
        pair = links.groupby(["account_a", "account_b"], sort=True)["weight"].sum().reset_index()
        pair = pair.sort_values(["weight", "account_a", "account_b"], ascending=[False, True, True],
                                kind="mergesort").head(_MAX_TOP_PAIRS)
        top = links.merge(pair[["account_a", "account_b"]], on=["account_a", "account_b"])
        layers_of: dict[tuple, set] = {}
        for a, b, layer in zip(top["account_a"], top["account_b"], top["layer"]):
            layers_of.setdefault((a, b), set()).add(layer)
        for a, b, w in zip(pair["account_a"], pair["account_b"], pair["weight"]):
            top_pairs.append({"a": a, "b": b, "weight": round(float(w), 4),
                              "layers": ", ".join(sorted(layers_of.get((a, b), ())))})

    # accounts table rows (column-wise, then zipped)
    ex = R.extra.reindex(members)
    feature_cols = [c for c in R.feature_columns]
    columns = ["account_id", "score", "embeddedness", *feature_cols, "shared_identifiers", "linked_members", "group"]
    colvals = [members, [_plain(v) for v in ex["score"]],
               [_plain(v) for v in ex["embeddedness"]] if "embeddedness" in ex.columns else [None] * n_a]
    for c in feature_cols:
        colvals.append(_iso(ex[c]) if c == "created_at" else [_plain(v) for v in ex[c]])
    colvals.append(n_shared.tolist())
    colvals.append([" · ".join(f"{layer} {n}" for layer, n in sorted(p.items())) for p in partners])
    colvals.append(strongest.tolist())
    rows = [list(r) for r in zip(*colvals)] if n_a else []

    # identifiers only two members share are drawn as a direct edge between the two accounts
    drawn = [k for k, n in enumerate(inodes) if n[2] >= 3]
    n_nodes = n_a + len(drawn)
    graph: dict[str, Any]
    if n_nodes <= max_nodes:
        jpos = {k: j for j, k in enumerate(drawn)}
        pair_of: dict[tuple[int, int], list[int]] = {}
        for k, u in enumerate(inode_users):
            if len(u) == 2:
                pair_of.setdefault((int(u[0]), int(u[1])), []).append(k)
        pair_rows = []
        for (a, b), ks in sorted(pair_of.items()):
            per_layer: dict[str, int] = {}
            for k in ks:
                per_layer[inodes[k][1]] = per_layer.get(inodes[k][1], 0) + inodes[k][4]
            layer = sorted(per_layer.items(), key=lambda t: (-t[1], t[0]))[0][0]
            pair_rows.append([a, b, layer, sum(inodes[k][4] for k in ks), ks[:_INODE_SAMPLE]])
        on = edges_df[edges_df["node"].isin(jpos)]
        nodes_j = [jpos[k] for k in on["node"].tolist()]
        hidden = _hidden_identifier_nodes(inodes, drawn, n_a)
        # lay out what is shown; hidden identifiers sit among the accounts that used them
        hidden_set = set(hidden)
        visible = [j for j in range(len(drawn)) if j not in hidden_set]
        vpos = {j: v for v, j in enumerate(visible)}
        inc_v = [(a, vpos[j]) for a, j in zip(on["a"].tolist(), nodes_j) if j in vpos]
        lay = bipartite_positions(n_a, len(visible), inc_v, pairs=[(r[0], r[1]) for r in pair_rows], seed=seed)
        pos = np.zeros((n_a + len(drawn), 2))
        pos[:n_a] = lay[:n_a]
        for j, v in vpos.items():
            pos[n_a + j] = lay[n_a + v]
        if hidden:
            users_of: dict[int, list[int]] = {}
            for a, j in zip(on["a"].tolist(), nodes_j):
                if j in hidden_set:
                    users_of.setdefault(j, []).append(a)
            rng = np.random.default_rng(seed)
            for j in hidden:
                centre = pos[users_of.get(j, [0])].mean(axis=0)
                pos[n_a + j] = centre + rng.normal(0.0, 25.0, size=2)
        pos = np.round(pos, 1)
        edges = [list(e) for e in zip(on["a"].tolist(), nodes_j, [_plain(v) for v in on["n"]],
                                      _iso(on["first"]), _iso(on["last"]))]
        graph = {"mode": "detail", "inode_ids": drawn, "edges": edges, "pairs": pair_rows, "pos": pos.tolist(),
                 "hidden": hidden}
    else:
        import igraph as ig

        sizes = pd.Series(strongest).value_counts()
        gkeys = sorted(sizes.index.tolist(), key=lambda s: (-int(sizes[s]), s))
        max_groups = max(1, min(_AGG_GROUPS, max_nodes // 2))
        shown, rest = gkeys[:max_groups], gkeys[max_groups:]
        group_rows = [[int(s), int(sizes[s])] for s in shown]
        if rest:
            group_rows.append([-2, int(sum(int(sizes[s]) for s in rest))])
        gid = {s: k for k, s in enumerate(shown)}
        other = len(shown) if rest else -1
        acc_group = np.array([gid.get(int(s), other) for s in strongest], dtype=np.int64)
        ge = edges_df.assign(g=acc_group[edges_df["a"].to_numpy()] if len(edges_df) else np.zeros(0, dtype=np.int64))
        counts = ge.groupby(["g", "node"], sort=True).size().reset_index(name="n")
        ngroups = counts.groupby("node").size()
        budget = max(0, min(_AGG_IDENTIFIERS, max_nodes - len(group_rows)))
        cand = [k for k in ngroups.index.tolist() if ngroups[k] >= 2 and inodes[k][2] >= 3]
        cand = sorted(sorted(cand, key=lambda k: (-inodes[k][2], k))[:budget])
        cpos = {k: j for j, k in enumerate(cand)}
        counts = counts[counts["node"].isin(cpos)]
        edges = [[int(g_), cpos[int(k)], int(n)] for g_, k, n in counts.itertuples(index=False)]
        g = ig.Graph(n=len(group_rows) + len(cand), edges=[(e[0], len(group_rows) + e[1]) for e in edges])
        g.es["weight"] = [float(e[2]) for e in edges]
        scale = max(500.0, 120.0 * math.sqrt(len(group_rows) + len(cand)))
        pos = layout_positions(g, seed=seed, weights="weight", scale=scale)
        graph = {"mode": "aggregated", "groups": group_rows, "inodes": [inodes[k] for k in cand],
                 "inode_ids": cand, "edges": edges, "pos": pos.tolist(), "n_nodes_full": n_nodes,
                 "account_group": acc_group.tolist()}
    skeleton = [(_short(R.skeletons.get(x, ""), 300) if k == "template" else None) for k, x in zip(kinds, idents_s)]
    return {
        "columns": columns, "accounts": rows,
        "identifiers": [list(r) for r in zip(kinds, idents_s, layers, sh["n_in"].astype(int).tolist(),
                                             [_plain(v) for v in sh["n_accounts"]],
                                             [_plain(v) for v in sh["pair_weight"]], is_hub,
                                             _iso(sh["first"]), _iso(sh["last"]), skeleton)],
        "all_inodes": inodes, "graph": graph, "link_layers": link_layers, "top_pairs": top_pairs,
        "n_hubs": int(sum(is_hub)),
    }


def _timeline_uri(R: _Run, cid: str) -> str | None:
    from exporters.figures import timeline_png

    act = R.activity.get(cid)
    if act is None or not len(act):
        return None
    png = timeline_png(act, title=None)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _templates_view(R: _Run, cid: str, detail: dict) -> list[dict]:
    out = []
    for t in (detail.get("templates") or [])[:_MAX_TEMPLATES]:
        examples = []
        for ex in (t.get("examples") or [])[:_MAX_EXAMPLES]:
            ex = "" if ex is None else str(ex)
            examples.append({"text": ex[:_MAX_PROMPT_CHARS], "cut": max(0, len(ex) - _MAX_PROMPT_CHARS)})
        out.append({"template_id": str(t.get("template_id", "")), "skeleton": str(t.get("skeleton") or ""),
                    "n_in_cluster": t.get("n_in_cluster"), "share": t.get("share_of_prompts"),
                    "examples": examples})
    return out


# ---------------------------------------------------------------------------------------------
# index data
# ---------------------------------------------------------------------------------------------

def _index_data(R: _Run, names: dict[str, str], *, max_nodes: int, seed: int) -> dict:
    import igraph as ig

    from exporters.site.layout import layout_positions

    rows = []
    for r in R.clusters.itertuples(index=False):
        cid = str(r.cluster_id)
        d = R.details.get(cid, {})
        lw = d.get("layer_weight") or {}
        top_layer = max(sorted(lw), key=lambda k: lw[k]) if lw else ""
        reasons = d.get("reasons") or [x.strip() for x in str(r.reasons or "").split(";") if x.strip()]
        rows.append([cid, _plain(r.n_accounts), _plain(r.score), _flag(r.flagged), " · ".join(map(str, reasons)),
                     _plain(d.get("stability")), top_layer, _ts(d.get("first_seen")), _ts(d.get("last_seen")),
                     "clusters/" + names[cid] if cid in names else ""])
    shown = [row[0] for row in rows[:max_nodes]]
    idx = {c: i for i, c in enumerate(shown)}
    edges = []
    cross = R.cross
    if len(cross) and shown:
        c = cross[cross["ca"].isin(idx) & cross["cb"].isin(idx)]
        if len(c):
            lo = np.where(c["ca"] < c["cb"], c["ca"], c["cb"])
            hi = np.where(c["ca"] < c["cb"], c["cb"], c["ca"])
            agg = (c.assign(lo=lo, hi=hi).groupby(["lo", "hi"], sort=True)
                   .agg(weight=("weight", "sum"), n=("weight", "size"),
                        layers=("layer", lambda s: ", ".join(sorted(set(s))))))
            agg = agg.reset_index().sort_values(["weight", "lo", "hi"], ascending=[False, True, True],
                                                kind="mergesort").head(max(50, 5 * len(shown)))
            edges = sorted([idx[a], idx[b], round(float(w), 4), int(n), layers]
                           for a, b, w, n, layers in agg.itertuples(index=False))
    g = ig.Graph(n=len(shown), edges=[(e[0], e[1]) for e in edges])
    g.es["weight"] = [e[2] for e in edges]
    pos = layout_positions(g, seed=seed, weights="weight", scale=max(300.0, 60.0 * math.sqrt(len(shown) or 1)))
    return {
        "columns": ["cluster_id", "n_accounts", "score", "flagged", "reasons", "stability", "top_layer",
                    "first_seen", "last_seen", "href"],
        "clusters": rows,
        "graph": {"nodes": list(range(len(shown))), "edges": edges,
                  "pos": [[float(x), float(y)] for x, y in pos], "n_clusters": len(rows)},
    }


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------

def _common() -> dict:
    return {
        "layers": [{"name": layer, "color": _layer_colors()[layer]} for layer in LAYERS],
        "kinds": {k: {"label": KIND_LABELS[k], "layer": KIND_LAYER[k], "shape": KIND_SHAPES[k]}
                  for k in KIND_ORDER},
        "colors": _layer_colors(),
    }


def _layer_colors() -> dict:
    from exporters.figures import LAYER_COLORS

    return dict(LAYER_COLORS)


class _Writer:
    def __init__(self, root: Path, standalone: bool):
        self.root = root
        self.standalone = standalone
        self.env = _env()
        self.vis = _vis_js()
        self.app = _static("site.js")
        self.css = _static("site.css")

    def assets(self) -> tuple[Path, ...]:
        if self.standalone:
            return ()
        d = self.root / "assets"
        d.mkdir(parents=True, exist_ok=True)
        out = []
        for name, text in (("vis-network.min.js", self.vis), ("site.js", self.app)):
            p = d / name
            data = text.encode("utf-8")
            if not p.is_file() or p.read_bytes() != data:
                p.write_bytes(data)
            out.append(p)
        return tuple(out)

    def render(self, template: str, path: Path, *, depth: int, data: dict, **ctx) -> None:
        prefix = "../" * depth
        if self.standalone:
            inline = [self.vis, self.app]
            scripts = [{"src": None, "text": t} for t in inline]
            hashes = [_sha256_b64(t) for t in inline]
        else:
            scripts = [{"src": prefix + "assets/vis-network.min.js", "text": None},
                       {"src": prefix + "assets/site.js", "text": None}]
            hashes = []
        html = self.env.get_template(template).render(
            csp=_csp(hashes, self.standalone), css=self.css, scripts=scripts, data_json=script_json(data),
            prefix=prefix, **ctx)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(html.encode("utf-8"))


def _run_summary(R: _Run) -> dict:
    meta = R.meta or {}
    window = meta.get("window") or {}
    return {
        "version": str(meta.get("version", "")), "seed": meta.get("seed"),
        "since": window.get("since"), "until": window.get("until"),
        "n_accounts": int(len(R.accounts)), "n_clusters": int(len(R.clusters)),
        "n_flagged": int(sum(_flag(v) for v in R.clusters["flagged"])) if len(R.clusters) else 0,
    }


#: default number of cluster pages: every flagged cluster gets one, then the highest scored others
MAX_PAGES = 500


def paged_clusters(clusters: pd.DataFrame, max_pages: int | None = MAX_PAGES) -> list[str]:
    """The cluster ids that get a page, in the order of ``clusters``.

    Every flagged cluster, then the unflagged ones by score (highest first, ties by id) until
    ``max_pages`` pages in all; ``None`` pages every cluster.

    >>> df = pd.DataFrame({"cluster_id": ["C1", "C2", "C3", "C4"], "score": [0.2, 0.9, 0.5, 0.1],
    ...                    "flagged": [True, False, False, True]})
    >>> paged_clusters(df, max_pages=3)
    ['C1', 'C2', 'C4']
    """
    ids = [str(c) for c in clusters["cluster_id"]]
    if max_pages is None or len(ids) <= max_pages:
        return ids
    flagged = [_flag(f) for f in clusters["flagged"]]
    score = pd.to_numeric(clusters["score"], errors="coerce").fillna(-1.0).to_numpy()
    keep = {c for c, f in zip(ids, flagged) if f}
    rest = sorted((-sc, c) for c, f, sc in zip(ids, flagged, score) if not f)
    keep.update(c for _, c in rest[:max(0, max_pages - len(keep))])
    return [c for c in ids if c in keep]


def write_site(run_dir, out_dir=None, *, max_nodes: int = 2000, progress: bool = False,
               standalone: bool = False, seed: int | None = None,
               max_pages: int | None = MAX_PAGES) -> SitePaths:
    """Write the static HTML explorer of a run folder.

    The index page lists every cluster (sortable, filterable) with an overview graph of clusters;
    each cluster gets a page with its accounts and shared identifiers as an interactive
    vis-network graph coloured by evidence layer, an accounts table, an activity timeline and
    sample prompts. Pages work offline (no request leaves the machine), every account-written
    string is escaped, and the same run folder gives the same bytes.

    Parameters
    ----------
    run_dir : path-like
        A run folder (docs/run-folder.md).
    out_dir : path-like, optional
        Where to write; defaults to ``RUN_DIR/site``. Pages of clusters no longer in the run
        are removed from ``out_dir/clusters``.
    max_nodes : int
        A cluster whose graph would have more nodes (accounts + shared identifiers) is drawn
        as an aggregated view (accounts grouped by their strongest identifier) with a paged
        accounts table; the index's overview graph shows at most this many clusters.
    progress : bool
        Show a progress bar on stderr.
    standalone : bool
        Inline vis-network and the page script into every page (each page is then a single
        self-contained file, about 0.5 MB bigger) instead of shipping them in ``assets/``.
    seed : int, optional
        Layout seed; defaults to the run's seed (run.json), else 0.
    max_pages : int or None
        At most this many cluster pages (default :data:`MAX_PAGES`), but always one per flagged
        cluster; the rest go to the highest scored clusters (:func:`paged_clusters`). The index
        lists every cluster either way; one without a page has no link. ``None``: a page for
        every cluster (a million-account run has ~13,000 clusters, ~0.3 s of drawing each).

    Returns
    -------
    SitePaths
        The paths written.

    Raises
    ------
    RunFolderError
        ``run_dir`` is not a run folder.
    ExportError
        The pages cannot be written.

    Examples
    --------
    >>> paths = write_site("runs/demo")               # doctest: +SKIP
    >>> paths.index                                   # doctest: +SKIP
    PosixPath('runs/demo/site/index.html')
    """
    from tqdm import tqdm

    if max_nodes < 2:
        raise ExportError(f"max_nodes must be at least 2, got {max_nodes}")
    if max_pages is not None and (isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 0):
        raise ExportError(f"max_pages must be a non-negative integer or None, got {max_pages!r}")
    run = RunFolder(run_dir)
    root = Path(out_dir) if out_dir is not None else run.path / "site"
    R = _Run(run, max_pages=max_pages, max_nodes=max_nodes)
    if seed is None:
        s = (R.meta or {}).get("seed")
        seed = int(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else 0

    ids = [str(c) for c in R.clusters["cluster_id"]]
    names: dict[str, str] = {}
    taken: set[str] = set()
    for cid in ids:
        name = page_name(cid)
        if name.lower() in taken:  # two ids differing only in case, or a hash clash
            digest = hashlib.sha256(cid.encode("utf-8", "surrogatepass")).hexdigest()[:12]
            name = f"{name[:-5]}-{digest}.html"
        taken.add(name.lower())
        names[cid] = name

    try:
        root.mkdir(parents=True, exist_ok=True)
        writer = _Writer(root, standalone)
        assets = writer.assets()
        common = _common()
        summary = _run_summary(R)
        cdir = root / "clusters"
        cdir.mkdir(exist_ok=True)
        pages: dict[str, Path] = {}
        aggregated = []
        paged = set(R.paged)
        for pos, cid in enumerate(tqdm(ids, desc="site", unit="cluster", disable=not progress)):
            if cid not in paged:
                continue
            detail = R.details.get(cid, {})
            crow = R.clusters.iloc[pos]
            data = _cluster_data(R, cid, max_nodes=max_nodes, seed=seed)
            if data["graph"]["mode"] == "aggregated":
                aggregated.append(cid)
            data.update(common)
            data["page"] = "cluster"
            data["cluster_id"] = cid
            data["page_size"] = _TABLE_PAGE
            reasons = detail.get("reasons")
            if not reasons:
                reasons = [r.strip() for r in str(crow["reasons"] or "").split(";") if r.strip()]
            signals = sorted((str(k), _plain(v)) for k, v in (detail.get("signals") or {}).items())
            top_ids = [{**{k: _plain(v) for k, v in t.items()},
                        "kind_label": KIND_LABELS.get(str(t.get("kind")), str(t.get("kind")))}
                       for t in (detail.get("top_identifiers") or [])[:20]]
            page = cdir / names[cid]
            writer.render(
                "cluster.html.j2", page, depth=1, data=data, run=summary,
                cluster={"id": cid, "n_accounts": _plain(crow["n_accounts"]), "score": _plain(crow["score"]),
                         "flagged": _flag(crow["flagged"]), "reasons": [str(r) for r in reasons],
                         "stability": _plain(detail.get("stability")),
                         "first_seen": _ts(detail.get("first_seen")), "last_seen": _ts(detail.get("last_seen")),
                         "created_first": _ts(detail.get("created_first")),
                         "created_last": _ts(detail.get("created_last")),
                         "layer_weight": sorted((str(k), _plain(v)) for k, v in (detail.get("layer_weight") or {}).items())},
                signals=signals, top_identifiers=top_ids, templates=_templates_view(R, cid, detail),
                timeline=_timeline_uri(R, cid), link_layers=sorted(data["link_layers"].items()),
                top_pairs=data["top_pairs"], n_hubs=data["n_hubs"], mode=data["graph"]["mode"],
                n_members=len(data["accounts"]), max_nodes=max_nodes,
                n_graph_nodes=data["graph"].get("n_nodes_full"),
            )
            pages[cid] = page
        keep = {p.name for p in pages.values()}
        for old in sorted(cdir.glob("*.html")):
            if old.name not in keep:
                old.unlink()
        index = root / "index.html"
        idata = _index_data(R, {c: n for c, n in names.items() if c in pages}, max_nodes=max_nodes, seed=seed)
        idata.update(common)
        idata["page"] = "index"
        idata["page_size"] = 250
        writer.render("index.html.j2", index, depth=0, data=idata, run=summary, max_nodes=max_nodes,
                      n_unpaged=len(ids) - len(pages), n_pages=len(pages))
    except OSError as exc:
        raise ExportError(f"cannot write the site to {root}: {exc}") from exc
    return SitePaths(root=root, index=index, clusters=pages, assets=assets, aggregated=tuple(aggregated),
                     unpaged=tuple(c for c in ids if c not in pages))
