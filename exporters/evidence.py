"""Evidence packages: one self-contained, reproducible, verifiable zip per cluster (docs/evidence-packages.md)."""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import hashlib
import hmac
import io
import json
import math
import re
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from graphbuild.bundle import file_sha256
from graphbuild.errors import ExportError, RunFolderError
from graphbuild.schema import COLUMNS, IDENTIFIER_KINDS, KIND_LAYER, RunFiles
from exporters.indicators import INDICATOR_KINDS, MIN_KEY_BYTES, indicator
from exporters.runfolder import RunFolder
from exporters.verify import MANIFEST_NAME, PACKAGE_FORMAT, manifest_digest, render_manifest

__all__ = [
    "build_package", "build_packages", "package_filename", "neutralise_cell", "PACKAGE_MEMBERS",
    "FORMAT_VERSION", "ZIP_DATE_TIME",
]

#: version of the package layout described in docs/evidence-packages.md
FORMAT_VERSION = 1
#: every member's timestamp (the earliest a zip can hold), so the bytes never depend on the clock
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
#: member order inside every package; ``indicators.csv`` only with a key; manifest last
PACKAGE_MEMBERS = (
    "README.txt", "summary.html", "timeline.png", "graph.png", "accounts.csv", "account_evidence.csv",
    "links.csv", "identifiers.csv", "templates.csv", "events.csv", "indicators.csv", "run.json",
    MANIFEST_NAME,
)
#: text that stands where redacted content was
REDACTED = "[redacted]"

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_KIND_ORDER = {k: i for i, k in enumerate(IDENTIFIER_KINDS)}
_MAX_HTML_ROWS = 200
_KEY_CHECK_MESSAGE = b"hydrascope-indicator-key-check"


# --- small, deterministic formatting helpers -----------------------------------------------------

def neutralise_cell(text: str) -> str:
    """Defuse spreadsheet formula injection: prefix ``'`` to text starting with = + - @ tab or CR."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _iso(ts) -> str:
    ts = pd.Timestamp(ts)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if ts.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return ts.strftime(fmt)


def _is_missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    return False


def _plain(value):
    """A JSON-ready, deterministic plain value (timestamps as ISO text, NumPy scalars unwrapped)."""
    if _is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (pd.Timestamp, _dt.datetime, np.datetime64)):
        return _iso(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _cell(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray, dict)):
        return neutralise_cell(json.dumps(_plain(value), ensure_ascii=False, sort_keys=True))
    if _is_missing(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format(float(value), ".10g")
    if isinstance(value, (pd.Timestamp, _dt.datetime, np.datetime64)):
        return _iso(value)
    return neutralise_cell(str(value))


def _column_cells(col: pd.Series) -> list[str]:
    """One column as CSV cell text, vectorised by dtype (same text as :func:`_cell` per value)."""
    dtype = col.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        ts = col if not isinstance(dtype, pd.DatetimeTZDtype) else col.dt.tz_convert("UTC").dt.tz_localize(None)
        whole = ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        frac = ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out = whole.where(ts.dt.microsecond == 0, frac)
        return out.where(ts.notna(), "").tolist()
    if pd.api.types.is_bool_dtype(dtype) and not isinstance(dtype, pd.ArrowDtype):
        return ["" if _is_missing(v) else ("true" if v else "false") for v in col.tolist()]
    if pd.api.types.is_integer_dtype(dtype) and not col.isna().any():
        return col.astype("int64").astype(str).tolist()
    if pd.api.types.is_float_dtype(dtype):
        return ["" if v != v else format(v, ".10g") for v in col.astype("float64").tolist()]
    starts = _FORMULA_START
    return [("'" + v if v.startswith(starts) else v) if type(v) is str else _cell(v) for v in col.tolist()]


def _csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV with a header, ``\\n`` line ends, minimal quoting and every text cell neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([neutralise_cell(str(c)) for c in df.columns])
    columns = [_column_cells(df[c]) for c in df.columns] if len(df.columns) else []
    writer.writerows(zip(*columns))
    return buf.getvalue().encode("utf-8")


def _json_bytes(obj) -> bytes:
    return (json.dumps(_plain(obj), sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def package_filename(cluster_id: str) -> str:
    """A safe file name for a cluster's package, whatever characters the id holds.

    Plain ids (``C0001``) give ``cluster-C0001.zip``; any other id keeps its safe characters
    and gets a short hash of the full id, so that different ids never share a file name.

    Examples
    --------
    >>> package_filename("C0001")
    'cluster-C0001.zip'
    >>> package_filename("../../etc/passwd")[:22]
    'cluster-etc_passwd-375'
    """
    cid = str(cluster_id)
    safe = _UNSAFE_NAME.sub("_", cid).strip("._-")[:48]
    if safe != cid or not safe:
        digest = hashlib.sha256(cid.encode("utf-8")).hexdigest()[:12]
        safe = f"{safe}-{digest}" if safe else digest
    return f"cluster-{safe}.zip"


def _write_zip(members: list[tuple[str, bytes]]) -> bytes:
    """A zip whose bytes depend only on `members`: fixed order, time, permissions and compression."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=False) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.create_system = 3  # Unix, so external_attr carries the permissions below
            info.external_attr = (0o100644 & 0xFFFF) << 16
            if name.endswith(".png"):
                info.compress_type = zipfile.ZIP_STORED  # already compressed
                zf.writestr(info, data)
            else:
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    return buf.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bundle_source(path: Path) -> str:
    """DuckDB table expression reading one bundle file (CSV as text, Parquet, JSON Lines)."""
    p = str(path).replace("'", "''")
    if path.name.endswith((".csv", ".csv.gz")):
        return f"read_csv('{p}', all_varchar=true, header=true)"
    if path.name.endswith(".parquet"):
        return f"read_parquet('{p}')"
    return f"read_json('{p}', format='newline_delimited')"


# --- reading the run folder --------------------------------------------------------------------------

def _optional(run: RunFolder, name: str) -> pd.DataFrame | None:
    try:
        return run.table(name)
    except RunFolderError:
        return None


def _email_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if "email" in str(c).lower()]


def _members_of(run: RunFolder, cluster: dict, cluster_id: str) -> list[str]:
    members = [str(m) for m in cluster.get("members") or []]
    if not members:
        acc = run.accounts
        members = acc.loc[acc["cluster_id"] == cluster_id, "account_id"].astype(str).tolist()
    return sorted(set(members))


def _accounts_frame(run: RunFolder, cluster_id: str, members: list[str], evidence: pd.DataFrame,
                    links: pd.DataFrame, redact: bool) -> pd.DataFrame:
    acc = run.accounts
    acc = acc[acc["account_id"].astype(str).isin(members)][["account_id", "score", "flagged"]].copy()
    acc["account_id"] = acc["account_id"].astype(str)
    missing = sorted(set(members) - set(acc["account_id"]))
    if missing:
        acc = pd.concat([acc, pd.DataFrame({"account_id": missing})], ignore_index=True)
    details = _optional(run, RunFiles.ACCOUNT_DETAILS)
    if details is not None and "embeddedness" in details.columns:
        d = details[["account_id", "embeddedness"]].copy()
        d["account_id"] = d["account_id"].astype(str)
        acc = acc.merge(d.drop_duplicates("account_id"), on="account_id", how="left")
    # links inside the cluster, per account
    if len(links):
        ends = pd.concat([links[["account_a", "weight"]].rename(columns={"account_a": "account_id"}),
                          links[["account_b", "weight"]].rename(columns={"account_b": "account_id"})])
        per = ends.groupby("account_id", sort=True)["weight"].agg(["count", "sum"])
        acc["n_links_in_cluster"] = acc["account_id"].map(per["count"]).fillna(0).astype(int)
        acc["link_weight_in_cluster"] = acc["account_id"].map(per["sum"]).fillna(0.0).round(6)
    else:
        acc["n_links_in_cluster"] = 0
        acc["link_weight_in_cluster"] = 0.0
    # identifiers each account shares with at least one other member, per kind
    kinds = sorted(set(evidence["kind"]) if len(evidence) else set(), key=lambda k: (_KIND_ORDER.get(k, 99), k))
    for kind in kinds:
        counts = evidence[evidence["kind"] == kind].groupby("account_id").size()
        acc[f"shared_{kind}"] = acc["account_id"].map(counts).fillna(0).astype(int)
    feats = _optional(run, RunFiles.FEATURES)
    if feats is not None and "account_id" in feats.columns:
        f = feats.copy()
        f["account_id"] = f["account_id"].astype(str)
        f = f[f["account_id"].isin(members)].drop_duplicates("account_id")
        f = f[[c for c in f.columns if c == "account_id" or c not in acc.columns]]
        acc = acc.merge(f, on="account_id", how="left")
    if redact:
        acc = acc.drop(columns=_email_columns(acc))
    acc["score"] = pd.to_numeric(acc["score"], errors="coerce")
    return acc.sort_values(["score", "account_id"], ascending=[False, True], kind="mergesort",
                           na_position="last").reset_index(drop=True)


def _identifier_frames(run: RunFolder, members: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(all identifiers used by members, per-account shared evidence, shared identifiers)."""
    cols = ["account_id", "kind", "identifier", "n_events", "first_seen", "last_seen"]
    ai = _optional(run, RunFiles.ACCOUNT_IDENTIFIERS)
    if ai is None:
        ai = pd.DataFrame(columns=cols)
    ai = ai[ai["account_id"].astype(str).isin(members)].copy()
    ai["account_id"] = ai["account_id"].astype(str)
    ai["kind"] = ai["kind"].astype(str)
    ai["identifier"] = ai["identifier"].astype(str)
    in_cluster = ai.groupby(["kind", "identifier"], sort=True)["account_id"].nunique().rename("n_in_cluster")
    ai = ai.merge(in_cluster.reset_index(), on=["kind", "identifier"], how="left")

    ident = _optional(run, RunFiles.IDENTIFIERS)
    if ident is not None and len(ident):
        meta = ident[[c for c in ("kind", "identifier", "layer", "n_accounts", "pair_weight", "is_hub")
                      if c in ident.columns]].copy()
        meta["kind"] = meta["kind"].astype(str)
        meta["identifier"] = meta["identifier"].astype(str)
        meta = meta.drop_duplicates(["kind", "identifier"])
    else:
        meta = pd.DataFrame(columns=["kind", "identifier"])

    agg = ai.groupby(["kind", "identifier"], sort=True).agg(
        n_in_cluster=("account_id", "nunique"), n_events=("n_events", "sum"),
        first_seen=("first_seen", "min"), last_seen=("last_seen", "max")).reset_index()
    agg = agg.merge(meta, on=["kind", "identifier"], how="left")
    if "layer" not in agg.columns:
        agg["layer"] = None
    agg["layer"] = agg["layer"].where(agg["layer"].notna(), agg["kind"].map(KIND_LAYER))
    for c, default in (("n_accounts", None), ("pair_weight", None), ("is_hub", False)):
        if c not in agg.columns:
            agg[c] = default
    if len(agg):
        agg["n_accounts"] = agg["n_accounts"].where(agg["n_accounts"].notna(), agg["n_in_cluster"])
        agg["is_hub"] = agg["is_hub"].fillna(False).astype(bool)
    agg["_k"] = agg["kind"].map(lambda k: _KIND_ORDER.get(k, 99))
    agg = agg.sort_values(["_k", "kind", "n_in_cluster", "identifier"], ascending=[True, True, False, True],
                          kind="mergesort").drop(columns="_k").reset_index(drop=True)
    agg = agg[["kind", "identifier", "layer", "n_in_cluster", "n_accounts", "n_events", "first_seen",
               "last_seen", "is_hub", "pair_weight"]]

    shared = agg[agg["n_in_cluster"] >= 2].reset_index(drop=True)
    evidence = ai[ai["n_in_cluster"] >= 2].merge(
        agg[["kind", "identifier", "n_accounts", "is_hub"]], on=["kind", "identifier"], how="left")
    evidence["_k"] = evidence["kind"].map(lambda k: _KIND_ORDER.get(k, 99))
    evidence = evidence.sort_values(["account_id", "_k", "kind", "identifier"], kind="mergesort")
    evidence = evidence[["account_id", "kind", "identifier", "n_events", "first_seen", "last_seen",
                         "n_in_cluster", "n_accounts", "is_hub"]].reset_index(drop=True)
    return agg, evidence, shared


def _links_frame(run: RunFolder, members: list[str]) -> pd.DataFrame:
    links = _optional(run, RunFiles.LINKS)
    cols = ["account_a", "account_b", "layer", "weight", "evidence_count", "first_seen", "last_seen"]
    if links is None:
        return pd.DataFrame(columns=cols)
    links = links.copy()
    links["account_a"] = links["account_a"].astype(str)
    links["account_b"] = links["account_b"].astype(str)
    m = set(members)
    links = links[links["account_a"].isin(m) & links["account_b"].isin(m)]
    links = links[[c for c in cols if c in links.columns]]
    return links.sort_values(["account_a", "account_b", "layer"], kind="mergesort").reset_index(drop=True)


def _templates_frame(run: RunFolder, cluster: dict, redact: bool) -> pd.DataFrame:
    rows = []
    for t in cluster.get("templates") or []:
        rows.append({"template_id": str(t.get("template_id")), "skeleton": t.get("skeleton"),
                     "n_in_cluster": t.get("n_in_cluster"), "share_of_prompts": t.get("share_of_prompts"),
                     "examples": list(t.get("examples") or [])})
    df = pd.DataFrame(rows, columns=["template_id", "skeleton", "n_in_cluster", "share_of_prompts", "examples"])
    tpl = _optional(run, RunFiles.TEMPLATES)
    if tpl is not None and len(df):
        meta = tpl[[c for c in ("template_id", "n_accounts", "n_prompts", "is_hub", "examples")
                    if c in tpl.columns]].copy()
        meta["template_id"] = meta["template_id"].astype(str)
        meta = meta.drop_duplicates("template_id").rename(columns={"examples": "_examples"})
        df = df.merge(meta, on="template_id", how="left")
        if "_examples" in df.columns:  # fall back to the run-wide examples when the cluster has none
            df["examples"] = [e if len(e) else (list(x) if isinstance(x, (list, np.ndarray)) else [])
                              for e, x in zip(df["examples"], df["_examples"])]
            df = df.drop(columns="_examples")
    for c in ("n_accounts", "n_prompts", "is_hub"):
        if c not in df.columns:
            df[c] = None
    for i in range(3):
        df[f"example_{i + 1}"] = [(e[i] if i < len(e) else None) for e in df["examples"]]
    df = df.drop(columns="examples")
    if redact:
        df = df.drop(columns=[f"example_{i + 1}" for i in range(3)])
    return df[[c for c in df.columns]].reset_index(drop=True)


def _read_bundle_events(bundle_dir: Path, members: list[str], expected: dict | None) -> pd.DataFrame:
    """Raw event rows of `members` straight from the input bundle, after checking its SHA-256."""
    import duckdb

    candidates = sorted(p for p in bundle_dir.iterdir()
                        if p.is_file() and p.name.split(".", 1)[0] == "events"
                        and p.name.split(".", 1)[-1] in ("csv", "csv.gz", "parquet", "jsonl", "jsonl.gz"))
    if not candidates:
        raise ExportError(f"{bundle_dir} has no events table (events.csv, .parquet or .jsonl)")
    path = candidates[0]
    if expected and expected.get("sha256") and file_sha256(path) != expected["sha256"]:
        raise ExportError(f"{path} is not the events file this run read (SHA-256 differs from run.json)")
    con = duckdb.connect()
    try:
        con.register("members", pd.DataFrame({"account_id": members}))
        src = _bundle_source(path)
        df = con.execute(f"SELECT e.* FROM {src} e WHERE CAST(e.account_id AS VARCHAR) IN "
                         "(SELECT account_id FROM members)").df()
    finally:
        con.close()
    return df


def _events_frame(run: RunFolder, cluster_id: str, members: list[str], redact: bool,
                  bundle_dir) -> tuple[pd.DataFrame, str]:
    source = "none"
    ev = None
    try:
        table = run.events
        ev = table[table["cluster_id"].astype(str) == cluster_id]
        source = RunFiles.CLUSTER_EVENTS
    except RunFolderError:
        ev = None
    if (ev is None or not len(ev)) and bundle_dir is not None:
        expected = (run.meta.get("inputs") or {}).get("events")
        ev = _read_bundle_events(Path(bundle_dir), members, expected)
        ev.insert(len(ev.columns), "cluster_id", cluster_id)
        source = "input bundle"
    if ev is None or not len(ev):
        source = "none"
    if ev is None:
        ev = pd.DataFrame(columns=list(COLUMNS["events"]) + ["cluster_id"])
    cols = [c for c in COLUMNS["events"] if c in ev.columns]
    cols += [c for c in ev.columns if c not in cols]
    ev = ev[cols].copy()
    ev["account_id"] = ev["account_id"].astype(str)
    if "ts" in ev.columns and len(ev):
        ev["_ts"] = pd.to_datetime(ev["ts"], utc=True, errors="coerce", format="mixed") \
            if ev["ts"].dtype == object else ev["ts"]
        ev = ev.sort_values(["_ts", "account_id"], kind="mergesort", na_position="last").drop(columns="_ts")
    if redact:
        ev = ev.drop(columns=[c for c in ev.columns if c == "prompt"] + _email_columns(ev))
    return ev.reset_index(drop=True), source


def _indicators_frame(all_idents: pd.DataFrame, key: bytes) -> pd.DataFrame:
    rows: dict[tuple[str, str], dict] = {}
    for r in all_idents.itertuples(index=False):
        if r.kind not in INDICATOR_KINDS or bool(r.is_hub):
            continue
        kind = INDICATOR_KINDS[r.kind]
        try:
            value = indicator(key, kind, r.identifier)
        except ValueError:
            continue  # not an address/network: nothing another provider could match
        row = rows.setdefault((kind, value), {"kind": kind, "indicator": value, "n_in_cluster": 0,
                                              "first_seen": None, "last_seen": None})
        row["n_in_cluster"] = max(row["n_in_cluster"], int(r.n_in_cluster))
        for col, pick in (("first_seen", min), ("last_seen", max)):
            v = getattr(r, col)
            if not _is_missing(v):
                v = _iso(v)
                row[col] = v if row[col] is None else pick(row[col], v)
    df = pd.DataFrame(sorted(rows.values(), key=lambda d: (d["kind"], d["indicator"])),
                      columns=["kind", "indicator", "n_in_cluster", "first_seen", "last_seen"])
    return df


def _key_check(key: bytes) -> str:
    return hmac.new(key, _KEY_CHECK_MESSAGE, hashlib.sha256).hexdigest()[:16]


def _email_domains(run: RunFolder, members: list[str], bundle_dir) -> set[str]:
    """E-mail domains to scrub when redacting: any ``*email*`` column of the account features, and
    the members' ``email_domain`` in the input bundle (`bundle_dir`, else run.json's ``bundle`` when
    it still exists and its accounts file has the SHA-256 run.json recorded)."""
    found: set[str] = set()
    feats = _optional(run, RunFiles.FEATURES)
    if feats is not None:
        for c in _email_columns(feats):
            found |= {str(v) for v in feats[c].dropna().unique()}
    expected = (run.meta.get("inputs") or {}).get("accounts") or {}
    bundle = Path(bundle_dir) if bundle_dir is not None else (
        Path(run.meta["bundle"]) if isinstance(run.meta.get("bundle"), str) else None)
    if bundle is not None and bundle.is_dir():
        files = sorted(p for p in bundle.iterdir() if p.is_file() and p.name.split(".", 1)[0] == "accounts"
                       and p.name.split(".", 1)[-1] in ("csv", "csv.gz", "parquet", "jsonl", "jsonl.gz"))
        if files and (not expected.get("sha256") or file_sha256(files[0]) == expected["sha256"]):
            found |= set(_read_bundle_column(files[0], "email_domain"))
    return {d.strip() for d in found if isinstance(d, str) and len(d.strip()) >= 3}


def _read_bundle_column(path: Path, column: str) -> list[str]:
    import duckdb

    src = _bundle_source(path)
    con = duckdb.connect()
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
        if column not in cols:
            return []
        return [r[0] for r in con.execute(
            f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM {src} WHERE "{column}" IS NOT NULL').fetchall()]
    finally:
        con.close()


#: a dotted host-name-like token, starting only at a token boundary (linear time on long runs)
_HOST = re.compile(r"(?<![A-Za-z0-9-])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


class _Scrubber:
    """Replace e-mail domains by ``[redacted]`` in text, in one pass for host-name-like domains."""

    def __init__(self, secrets: Iterable[str]):
        from markupsafe import escape

        secrets = {s for s in secrets if s}
        self.hosts = {s.lower() for s in secrets if _HOST.fullmatch(s)}
        self.odd: list[str] = []
        variants: set[str] = set()
        for s in secrets - {h for h in secrets if _HOST.fullmatch(h)}:
            variants |= {s, str(escape(s)), json.dumps(s, ensure_ascii=False)[1:-1],
                         json.dumps(s, ensure_ascii=True)[1:-1], s.replace('"', '""')}
        self.odd = sorted(variants, key=lambda v: (-len(v), v))

    def _host(self, m: re.Match) -> str:
        token = m.group(0)
        labels = token.split(".")
        n = len(labels)
        for length in range(n, 1, -1):  # longest run of labels that is a known domain
            for start in range(0, n - length + 1):
                if ".".join(labels[start:start + length]).lower() in self.hosts:
                    return ".".join(labels[:start] + [REDACTED] + labels[start + length:])
        return token

    def __call__(self, data: bytes) -> bytes:
        text = data.decode("utf-8")
        for v in self.odd:
            text = text.replace(v, REDACTED)
        if self.hosts:
            text = _HOST.sub(self._host, text)
        return text.encode("utf-8")


# --- the summary ------------------------------------------------------------------------------------

def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                      autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = _fmt
    return env


def _fmt(value) -> str:
    if _is_missing(value):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return format(float(value), ".4g")
    if isinstance(value, (pd.Timestamp, _dt.datetime, np.datetime64)):
        return _iso(value)
    return str(value)


def _records(df: pd.DataFrame, limit: int = _MAX_HTML_ROWS) -> list[dict]:
    return [dict(zip(df.columns, row)) for row in df.head(limit).itertuples(index=False, name=None)]


def _summary_html(ctx: dict) -> bytes:
    html = _environment().get_template("evidence_summary.html.j2").render(**ctx)
    return html.encode("utf-8")


def _readme(cluster_id: str, names: list[str], redact: bool, keyed: bool) -> bytes:
    lines = [
        "hydrascope evidence package",
        "===========================",
        "",
        f"Cluster: {cluster_id}",
        f"Package format: {PACKAGE_FORMAT} version {FORMAT_VERSION}",
        f"Redacted (raw prompt text and e-mail domains left out): {'yes' if redact else 'no'}",
        f"Keyed shareable indicators included: {'yes (indicators.csv)' if keyed else 'no'}",
        "",
        "Open summary.html in a browser (or print it) for the human summary.",
        "manifest.json lists the SHA-256 of every other file; check the package with:",
        "",
        "    hydrascope verify PACKAGE.zip",
        "",
        "Files:",
    ]
    lines += [f"  {n}" for n in names]
    lines += ["", "All CSV cells that begin with = + - @ TAB or CR are prefixed with ' so that",
              "spreadsheets show them as text. Times are UTC (ISO 8601, Z).", ""]
    return "\n".join(lines).encode("utf-8")


# --- public API -------------------------------------------------------------------------------------

def build_package(run_dir, cluster_id: str, out_dir, *, redact: bool = False, indicator_key: bytes | None = None,
                  bundle_dir=None, run: RunFolder | None = None) -> Path:
    """Write the evidence package of one cluster as a reproducible, verifiable zip.

    Parameters
    ----------
    run_dir : path-like
        A run folder written by ``hydrascope run`` (docs/run-folder.md).
    cluster_id : str
        The cluster to package (as in ``clusters.csv``).
    out_dir : path-like
        Folder to write ``cluster-<id>.zip`` into (created when missing).
    redact : bool
        Leave raw prompt text (event prompts, template examples) and e-mail domains out.
    indicator_key : bytes, optional
        When given (at least 16 bytes), also write ``indicators.csv``: the cluster's IPs,
        prefixes, instruments and template fingerprints as HMAC-SHA256 hex digests.
    bundle_dir : path-like, optional
        The input bundle; used for the raw event rows of clusters that ``cluster_events.parquet``
        does not hold (clusters not flagged). Its events file must match the SHA-256 in run.json.
    run : RunFolder, optional
        An already-open RunFolder for `run_dir` (saves re-reading tables across clusters).

    Returns
    -------
    pathlib.Path
        The package written. The same run, cluster and options give the same bytes.

    Raises
    ------
    RunFolderError
        When the run folder or the cluster does not exist.
    ExportError
        When the bundle's events file differs from the one the run read.
    ConfigError
        When the indicator key is shorter than 16 bytes.

    Examples
    --------
    >>> build_package("runs/demo", "C0001", "packages")   # doctest: +SKIP
    PosixPath('packages/cluster-C0001.zip')
    """
    from exporters.figures import cluster_graph_png, timeline_png

    if indicator_key is not None and len(indicator_key) < MIN_KEY_BYTES:
        from graphbuild.errors import ConfigError

        raise ConfigError(f"the indicator key must be at least {MIN_KEY_BYTES} bytes")
    run = run if run is not None else RunFolder(run_dir)
    cluster_id = str(cluster_id)
    cluster = run.cluster(cluster_id)
    members = _members_of(run, cluster, cluster_id)
    meta = run.meta

    links = _links_frame(run, members)
    all_idents, evidence, shared = _identifier_frames(run, members)
    accounts = _accounts_frame(run, cluster_id, members, evidence, links, redact)
    templates = _templates_frame(run, cluster, redact)
    events, events_source = _events_frame(run, cluster_id, members, redact, bundle_dir)

    secrets = _email_domains(run, members, bundle_dir) if redact else set()

    activity = _optional(run, RunFiles.CLUSTER_ACTIVITY)
    if activity is not None and len(activity):
        activity = activity[activity["cluster_id"].astype(str) == cluster_id]
    timeline = timeline_png(activity, title=f"Cluster {cluster_id}: activity per hour (UTC)")
    graph = cluster_graph_png(links, members=members, title=f"Cluster {cluster_id}: links between accounts",
                              seed=int(meta.get("seed") or 0))

    data: dict[str, bytes] = {
        "accounts.csv": _csv_bytes(accounts),
        "account_evidence.csv": _csv_bytes(evidence),
        "links.csv": _csv_bytes(links),
        "identifiers.csv": _csv_bytes(shared),
        "templates.csv": _csv_bytes(templates),
        "events.csv": _csv_bytes(events),
    }
    keyed = indicator_key is not None
    if keyed:
        data["indicators.csv"] = _csv_bytes(_indicators_frame(all_idents, bytes(indicator_key)))

    source_files = run._cache.get("evidence:file_sha256")
    if source_files is None:  # hashed once per RunFolder, however many packages are built
        known = {v for k, v in vars(RunFiles).items() if not k.startswith("_") and isinstance(v, str)}
        known.add("lineage.csv")
        source_files = {name: file_sha256(run.path / name)
                        for name in sorted(known) if (run.path / name).is_file()}
        run._cache["evidence:file_sha256"] = source_files
    facts = {
        "package_format": PACKAGE_FORMAT,
        "format_version": FORMAT_VERSION,
        "cluster_id": cluster_id,
        "cluster": {k: cluster.get(k) for k in ("n_accounts", "score", "flagged", "stability", "reasons",
                                                 "signals", "layer_weight", "first_seen", "last_seen",
                                                 "created_first", "created_last") if k in cluster},
        "redacted": bool(redact),
        "indicators": ({"file": "indicators.csv", "algorithm": "HMAC-SHA256",
                        "message": "{kind}:{canonical value}", "kinds": sorted(set(INDICATOR_KINDS.values())),
                        "key_check": _key_check(bytes(indicator_key))} if keyed else None),
        "events_source": events_source,
        "software": {"name": "hydrascope", "version": meta.get("version")},
        "seed": meta.get("seed"),
        "config": meta.get("config"),
        "window": meta.get("window"),
        "inputs": meta.get("inputs"),
        "counts": meta.get("counts"),
        "bundle": meta.get("bundle"),
        "previous_run": meta.get("previous_run"),
        "run_folder_files": source_files,
    }
    data["run.json"] = _json_bytes(facts)
    scrub = _Scrubber(secrets) if secrets else None
    if scrub:
        data = {k: scrub(v) for k, v in data.items()}

    ctx = {
        "cluster_id": cluster_id,
        "cluster": cluster,
        "reasons": list(cluster.get("reasons") or []),
        "signals": sorted((cluster.get("signals") or {}).items()),
        "layer_weight": sorted((cluster.get("layer_weight") or {}).items(), key=lambda kv: (-float(kv[1] or 0), kv[0])),
        "n_members": len(members),
        "run": {"version": meta.get("version"), "seed": meta.get("seed"), "window": meta.get("window") or {},
                "inputs": sorted((meta.get("inputs") or {}).items())},
        "timeline_src": "data:image/png;base64," + base64.b64encode(timeline).decode("ascii"),
        "graph_src": "data:image/png;base64," + base64.b64encode(graph).decode("ascii"),
        "accounts": _records(accounts), "n_accounts_rows": len(accounts),
        "account_columns": [c for c in ("account_id", "score", "flagged", "embeddedness", "n_links_in_cluster",
                                        "link_weight_in_cluster") if c in accounts.columns]
        + [c for c in accounts.columns if c.startswith("shared_")],
        "identifiers": _records(shared), "n_identifier_rows": len(shared),
        "templates": _records(templates, 50), "n_template_rows": len(templates),
        "n_events": len(events), "n_links": len(links), "events_source": events_source,
        "redact": bool(redact), "keyed": keyed,
        "files": [(name, _sha256(body), len(body)) for name, body in data.items()],
        "max_rows": _MAX_HTML_ROWS,
    }
    summary = _summary_html(ctx)
    if scrub:
        summary = scrub(summary)

    contents = {"summary.html": summary, "timeline.png": timeline, "graph.png": graph, **data}
    names = [n for n in PACKAGE_MEMBERS if n in contents or n in ("README.txt", MANIFEST_NAME)]
    contents["README.txt"] = _readme(cluster_id, names, redact, keyed)
    members_out = [(n, contents[n]) for n in PACKAGE_MEMBERS if n in contents]
    manifest = {
        "format": PACKAGE_FORMAT,
        "format_version": FORMAT_VERSION,
        "cluster_id": cluster_id,
        "algorithm": "sha256",
        "files": [{"name": n, "sha256": _sha256(b), "size": len(b)} for n, b in members_out],
    }
    manifest["digest"] = manifest_digest(manifest)
    members_out.append((MANIFEST_NAME, render_manifest(manifest)))

    blob = _write_zip(members_out)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / package_filename(cluster_id)
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(blob)
    tmp.replace(target)
    return target


def build_packages(run_dir, out_dir, *, cluster_ids: Iterable[str] | None = None, flagged: bool = False,
                   redact: bool = False, indicator_key: bytes | None = None, bundle_dir=None,
                   progress: bool = False) -> list[Path]:
    """Write one evidence package per cluster.

    Parameters
    ----------
    run_dir : path-like
        A run folder written by ``hydrascope run``.
    out_dir : path-like
        Folder for the packages.
    cluster_ids : iterable of str, optional
        Clusters to package, in this order (duplicates dropped).
    flagged : bool
        Package every flagged cluster (added after `cluster_ids`, in ``clusters.csv`` order).
        With neither `cluster_ids` nor `flagged`, every flagged cluster is packaged.
    redact, indicator_key, bundle_dir
        As for :func:`build_package`.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    list of pathlib.Path
        The packages written, in the order the clusters were given.

    Examples
    --------
    >>> build_packages("runs/demo", "packages", flagged=True)   # doctest: +SKIP
    [PosixPath('packages/cluster-C0001.zip'), PosixPath('packages/cluster-C0003.zip')]
    """
    from tqdm.auto import tqdm

    run = RunFolder(run_dir)
    ids: list[str] = [str(c) for c in (cluster_ids or [])]
    if flagged or not ids:
        clusters = run.clusters
        flags = clusters["flagged"].astype(str).str.lower().isin(("true", "1"))
        ids += clusters.loc[flags, "cluster_id"].astype(str).tolist()
    seen: set[str] = set()
    ordered = [c for c in ids if not (c in seen or seen.add(c))]
    for cid in ordered:
        run.cluster(cid)  # fail early, naming the id, before writing anything
    return [build_package(run.path, cid, out_dir, redact=redact, indicator_key=indicator_key,
                          bundle_dir=bundle_dir, run=run)
            for cid in tqdm(ordered, desc="evidence packages", unit="package", disable=not progress)]
