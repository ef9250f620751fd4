"""Read an input bundle into typed DuckDB tables, setting every bad row aside as a reject.

Decisions (docs/input-validation.md gives each at length):

* One file per table: ``<table>.csv``, ``.csv.gz``, ``.parquet``, ``.jsonl`` or ``.jsonl.gz``.
  Two candidates for one table, a missing required table (accounts, events), a missing
  required column or an unreadable file raise :class:`~graphbuild.errors.BundleError` naming
  the file (or the expected file names) and the column. Other files are ignored. Column
  names match after trimming and lower-casing.
* DuckDB reads everything into an on-disk database, within ``memory_limit`` (temporary
  tables spill to ``temp_directory``): CSV all-VARCHAR with a fixed RFC 4180 dialect and
  DuckDB's ``store_rejects``; JSON Lines as one text value per physical line, then
  ``json_extract_string``; Parquet with native types, re-read by each pass instead of
  copied. The events are streamed (never held parsed); the other tables are parsed once.
  Afterwards ``_raw_<table>`` is a temporary view re-reading the file (unknown columns
  included, ignored by detection); the typed tables ``accounts``, ``events``, ``payments``
  and ``_labels_eval_only`` are ordinary tables holding the accepted rows in file order.
  No Python runs per row: only distinct non-canonical IP strings and the rejected rows
  reach Python.
* Rejected (one reject per row, the first problem found): a CSV record that does not parse,
  a JSON line that is not a JSON object, a missing/blank or unparsable required field, a
  required timestamp before 2000-01-01 or more than one day after ``now``, a malformed
  ``events.ip``, a later duplicate ``account_id`` in accounts (and in labels), and a row whose
  ``account_id`` is not an accepted account. Cleared (field set to NULL, row kept, one
  entry per field): a bad ``signup_ip``, a bad ``payments.ts``, a negative or non-integer
  token count.
* Timestamps: ISO 8601 / RFC 3339 (offsets converted, no offset = UTC), epoch seconds, or
  native Parquet timestamps; stored as naive UTC TIMESTAMP. IPs: canonical IPv4 dotted quads,
  IPv6 compressed lower-case, IPv4-mapped IPv6 as IPv4. Ids are trimmed; optional text that
  is blank becomes NULL.
* ``line`` is the 1-based physical line where the record starts (the CSV header is line 1;
  quoted line breaks count), found for rejected rows only by one streaming NumPy pass;
  Parquet gives the 1-based row number.
* ``since``/``until`` keep events in ``[since, until)``, accounts created before ``until``
  that were created in the window or have events in it, and the payments and labels of kept
  accounts; the rest counts as ``outside_window``, not as rejects. For every table
  ``rows_read = rows_accepted + rows_rejected + outside_window``; blank lines are not rows.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from graphbuild.errors import BundleError, ConfigError
from graphbuild.ipaddr import IPV4_CANONICAL_REGEX, normalize_ips
from graphbuild.schema import COLUMNS, REJECT_COLUMNS, REQUIRED_COLUMNS, REQUIRED_TABLES, TABLES

__all__ = ["Bundle", "load_bundle", "file_sha256", "discover", "default_memory_limit", "LABELS_TABLE", "FORMATS",
           "EARLIEST", "FUTURE_GRACE", "VALUE_MAX_CHARS", "DEFAULT_MEMORY_LIMIT", "MIN_MEMORY_LIMIT"]

#: name of the typed labels table inside ``Bundle.con``; detection code never reads it
LABELS_TABLE = "_labels_eval_only"
#: accepted file suffixes, in the order they are listed in messages
FORMATS = (".csv", ".csv.gz", ".parquet", ".jsonl", ".jsonl.gz")
#: required timestamps before this instant are rejected
EARLIEST = datetime(2000, 1, 1)
#: grace after ``now`` before a timestamp counts as in the future
FUTURE_GRACE = timedelta(days=1)
#: column of the typed ``events`` table holding DuckDB's ``hash(prompt)`` (not an input column)
PROMPT_HASH = "prompt_hash"
#: reject values are cut to this many characters
VALUE_MAX_CHARS = 200
#: default DuckDB memory limit in bytes (capped at half the machine's memory)
DEFAULT_MEMORY_LIMIT = 3 * 2**30
#: smallest memory limit accepted, in bytes
MIN_MEMORY_LIMIT = 16 * 2**20
_MAX_LINE = 1 << 26  # 64 MiB: long prompts must not break the CSV reader

# column kind per table: "id" (required identifier, trimmed), "ts", "ip", "int", "text",
# "lower"/"upper" (trimmed, case-folded short codes)
_KINDS = {
    "accounts": {"account_id": "id", "created_at": "ts", "email_domain": "lower", "country": "upper",
                 "org_id": "text", "signup_ip": "ip"},
    "events": {"account_id": "id", "ts": "ts", "ip": "ip", "user_agent": "text", "api_key_id": "text",
               "model": "text", "prompt": "text", "prompt_tokens": "int", "completion_tokens": "int"},
    "payments": {"account_id": "id", "instrument_id": "id", "instrument_type": "lower", "ts": "ts",
                 "billing_country": "upper"},
    "labels": {"account_id": "id", "campaign_id": "id"},
}
_SQL_TYPE = {"ts": "TIMESTAMP", "int": "BIGINT"}
_TYPED_NAME = {"accounts": "accounts", "events": "events", "payments": "payments", "labels": LABELS_TABLE}

R_MISSING = "missing value"
R_TS = "unparsable timestamp"
R_EARLY = "timestamp before 2000-01-01"
R_FUTURE = "timestamp more than 1 day after now"
R_IP = "malformed IP address"
R_NEG = "negative token count"
R_INT = "unparsable token count"
R_UNKNOWN = "account_id not in accounts"
R_DUP = "duplicate account_id, first at line {}"
R_JSON = "not valid JSON"
R_JSON_OBJ = "not a JSON object"
R_UTF8 = "not valid UTF-8"
_CSV_ERRORS = {
    "TOO MANY COLUMNS": "malformed CSV row: too many fields",
    "MISSING COLUMNS": "malformed CSV row: too few fields",
    "UNQUOTED VALUE": "malformed CSV row: unterminated or stray quote",
    "LINE SIZE OVER MAXIMUM": "malformed CSV row: longer than 64 MiB",
    "INVALID ENCODING": "malformed CSV row: not valid UTF-8",
    "INVALID UNICODE": "malformed CSV row: not valid UTF-8",
}


@dataclass(frozen=True)
class Bundle:
    """A loaded, validated input bundle.

    Attributes
    ----------
    path : Path
        The bundle folder.
    con : duckdb.DuckDBPyConnection
        Connection holding the typed tables ``accounts``, ``events``, ``payments`` (empty
        when absent), ``_labels_eval_only`` and the temporary views ``_raw_<table>``
        re-reading each file as it is; its session time zone is UTC. ``events`` has one column
        beyond the schema: ``prompt_hash`` (:data:`PROMPT_HASH`), DuckDB's ``hash(prompt)``.
        Keep the Bundle alive while using ``con``: a temporary database is removed by
        :meth:`close` or when the Bundle is garbage-collected.
    files : dict of str to Path
        Table name to the file that was read.
    sha256 : dict of str to str
        Table name to the SHA-256 of that file.
    counts : dict of str to dict
        Table name to ``rows_read``, ``rows_accepted``, ``rows_rejected``,
        ``fields_cleared`` and ``outside_window``.
    rejects : pandas.DataFrame
        Columns :data:`graphbuild.schema.REJECT_COLUMNS`, sorted by table, line, column.
    has_payments, has_labels : bool
        Whether the optional tables were present.
    """

    path: Path
    con: duckdb.DuckDBPyConnection = field(repr=False, compare=False)
    files: dict
    sha256: dict
    counts: dict
    rejects: pd.DataFrame = field(repr=False, compare=False)
    has_payments: bool
    has_labels: bool
    _tmpdir: Path | None = field(default=None, repr=False, compare=False)

    def labels(self) -> pd.DataFrame:
        """Return the ground-truth labels (evaluation only; detection never reads them).

        Returns
        -------
        pandas.DataFrame
            Columns ``account_id``, ``campaign_id``, sorted by account_id; empty when the
            bundle has no labels table.
        """
        return self.con.execute(
            f"SELECT account_id, campaign_id FROM {LABELS_TABLE} ORDER BY account_id, campaign_id"
        ).df()

    def close(self) -> None:
        """Close the connection and remove the temporary database, if one was made."""
        try:
            self.con.close()
        finally:
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# small helpers


def _lit(text: str) -> str:
    """SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def _ident(name: str) -> str:
    """SQL quoted identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def _trim(expr: str) -> str:
    """SQL: ``expr`` without leading/trailing spaces, tabs, CRs and LFs (DuckDB's trim strips spaces only)."""
    return f"trim({expr}, ' \t\r\n')"


def _suffix(name: str) -> str | None:
    lower = name.lower()
    for suf in (".csv.gz", ".jsonl.gz", ".csv", ".parquet", ".jsonl"):
        if lower.endswith(suf):
            return suf
    return None


def _as_utc_naive(value, what: str) -> datetime | None:
    """Turn a datetime, date or ISO string into a naive UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise BundleError(f"{what}: cannot read {value!r} as an ISO 8601 date/time") from exc
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise BundleError(f"{what}: expected a datetime or ISO 8601 string, got {type(value).__name__}")
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def discover(path: Path) -> dict[str, Path]:
    """Find the file of each known table in a bundle folder.

    Parameters
    ----------
    path : Path
        The bundle folder.

    Returns
    -------
    dict of str to Path
        Table name to file, for the tables present.

    Raises
    ------
    BundleError
        When the folder is missing, a table has two candidate files, or a required table
        has none.
    """
    if not path.is_dir():
        raise BundleError(f"input bundle {path}: not a folder")
    found: dict[str, list[Path]] = {}
    for entry in sorted(path.iterdir()):
        suf = _suffix(entry.name)
        if suf is None or not entry.is_file():
            continue
        table = entry.name[: -len(suf)]
        if table in TABLES:
            found.setdefault(table, []).append(entry)
    files = {}
    for table in TABLES:
        cands = found.get(table, [])
        if len(cands) > 1:
            names = " and ".join(p.name for p in cands)
            raise BundleError(f"input bundle {path}: table '{table}' is given by two files, {names}; keep exactly one")
        if cands:
            files[table] = cands[0]
        elif table in REQUIRED_TABLES:
            names = ", ".join(table + s for s in FORMATS)
            raise BundleError(f"input bundle {path}: required table '{table}' is missing; expected one of {names}")
    return files


# ---------------------------------------------------------------------------------------------
# physical line numbers of CSV records


def _csv_record_lines(path: Path, max_record: int, min_candidates: int, skip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scan a CSV file (streaming, vectorised) and return start lines and blank flags of its records.

    Records are split at line feeds outside double quotes (quote parity, as RFC 4180 and
    DuckDB's reader do); record 1 is the header. The scan stops once it has seen
    ``max_record`` records and ``min_candidates`` non-blank data records not in ``skip``.

    Returns
    -------
    start_line : ndarray of int64
        ``start_line[k - 1]`` is the physical line where record ``k`` starts.
    blank : ndarray of bool
        Whether record ``k`` is empty (DuckDB skips those).
    """
    starts = [np.array([1], dtype=np.int64)]
    blanks: list[np.ndarray] = []
    parity = 0
    nl_base = 0          # line feeds before this chunk
    byte_base = 0        # bytes before this chunk
    last_term = -1       # global offset of the last record terminator
    prev_byte = -1       # last byte of the previous chunk
    n_complete = 0       # records ended by a terminator so far
    n_cand = 0           # of those: data records, not blank, not parse errors
    with _open_bytes(path) as fh:
        while True:
            chunk = fh.read(1 << 24)
            if not chunk:
                break
            arr = np.frombuffer(chunk, dtype=np.uint8)
            par = (np.cumsum(arr == 34, dtype=np.uint8) + parity) & 1   # uint8 wrap keeps parity
            nl = np.flatnonzero(arr == 10)
            term_mask = par[nl] == 0
            term = nl[term_mask]
            if term.size:
                g = term + byte_base
                length = g - np.concatenate(([last_term], g[:-1])) - 1
                before = np.where(term > 0, arr[np.maximum(term - 1, 0)], prev_byte)
                blank = (length == 0) | ((length == 1) & (before == 13))
                blanks.append(blank)
                starts.append(np.flatnonzero(term_mask) + nl_base + 2)
                recno = np.arange(n_complete + 1, n_complete + 1 + term.size)
                n_cand += int(((recno >= 2) & ~blank & ~np.isin(recno, skip)).sum())
                n_complete += term.size
                last_term = int(g[-1])
            parity = int(par[-1])
            nl_base += nl.size
            byte_base += arr.size
            prev_byte = int(arr[-1])
            if n_complete >= max_record and n_cand >= min_candidates:
                break
    start_line = np.concatenate(starts)[: n_complete + 1]
    blank_flags = np.concatenate(blanks) if blanks else np.zeros(0, dtype=bool)
    if start_line.size > n_complete:
        # a last record without a terminator: real unless nothing (or a lone CR) follows
        tail_len = byte_base - last_term - 1
        tail_blank = tail_len <= 0 or (tail_len == 1 and prev_byte == 13)
        blank_flags = np.concatenate((blank_flags, [tail_blank]))
    return start_line[: blank_flags.size], blank_flags


def _map_csv_lines(path: Path, err_records: np.ndarray, recs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Physical start lines of CSV parse-error records (DuckDB record numbers) and of parsed rows.

    Parameters
    ----------
    err_records : ndarray of int64
        Record numbers (header = 1, blank lines counted) of records DuckDB could not parse.
    recs : ndarray of int64
        0-based indexes of parsed rows (``rowid`` of the raw read).

    Returns
    -------
    (ndarray, ndarray)
        Lines for ``err_records`` and for ``recs``, in the same order.
    """
    skip = np.unique(err_records)
    max_err = int(skip.max()) if skip.size else 0
    need = int(recs.max()) + 1 if recs.size else 0
    start_line, blank = _csv_record_lines(path, max_err, need, skip)
    n = start_line.size
    recno = np.arange(1, n + 1)
    cand = recno[(recno >= 2) & ~blank & ~np.isin(recno, skip)]
    if cand.size:
        rec_lines = np.where(recs < cand.size, start_line[cand[np.minimum(recs, cand.size - 1)] - 1], recs + 2)
    else:
        rec_lines = recs + 2
    if n:
        err_lines = np.where(err_records <= n, start_line[np.clip(err_records, 1, n) - 1], err_records)
    else:
        err_lines = err_records.copy()
    return err_lines.astype(np.int64), rec_lines.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# reading each format into _raw_<table> and a uniform _src_<table> view


def _csv_header(path: Path) -> list[str]:
    with _open_bytes(path) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="replace", newline="")
        try:
            header = next(csv.reader(text))
        except StopIteration:
            header = []
        except csv.Error as exc:
            raise BundleError(f"{path.name}: cannot read the header row: {exc}") from exc
    if not header or all(not h.strip() for h in header):
        raise BundleError(f"{path.name}: empty file; expected a header row naming the columns")
    return [h if h.strip() else f"column_{i + 1}" for i, h in enumerate(header)]


def _match_columns(table: str, fname: str, names: list[str]) -> dict[str, str]:
    """Map expected column -> actual name; raise on duplicates and missing required ones."""
    seen: dict[str, str] = {}
    for n in names:
        key = n.strip().lower()
        if key in seen:
            raise BundleError(f"{fname}: column '{n}' appears twice (also as '{seen[key]}')")
        seen[key] = n
    mapping = {c: seen[c] for c in COLUMNS[table] if c in seen}
    missing = [c for c in REQUIRED_COLUMNS[table] if c not in mapping]
    if missing:
        cols = ", ".join(f"'{c}'" for c in missing)
        found = ", ".join(names) if names else "none"
        word = "column" if len(missing) == 1 else "columns"
        raise BundleError(f"{fname}: required {word} {cols} missing (found: {found})")
    return mapping


def _read_csv(con, table: str, path: Path) -> dict:
    header = _csv_header(path)
    mapping = _match_columns(table, path.name, header)
    cols = "{" + ", ".join(f"{_lit(h)}: 'VARCHAR'" for h in header) + "}"
    comp = "gzip" if path.name.lower().endswith(".gz") else "none"
    raw = f"_read_{table}"
    errt = f"_csverr_{table}"
    opts = (f"columns={cols}, auto_detect=false, header=true, delim=',', quote='\"', escape='\"', "
            f"ignore_errors=true, strict_mode=true, null_padding=false, max_line_size={_MAX_LINE}, "
            f"buffer_size={_MAX_LINE * 2}, compression='{comp}', encoding='utf-8'")
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {raw} AS SELECT * FROM read_csv(?, {opts}, store_rejects=true, "
            f"rejects_table='{errt}', rejects_scan='_csvscan_{table}')",
            [str(path)],
        )
    except duckdb.OutOfMemoryException:
        raise   # load_bundle names memory_limit
    except duckdb.Error as exc:
        raise BundleError(f"{path.name}: cannot be read as CSV: {exc}") from exc
    sel = ["rowid AS _rec", "CAST(NULL AS BIGINT) AS _line", "CAST(NULL AS VARCHAR) AS _bad",
           "CAST(NULL AS VARCHAR) AS _badval"]
    sel += _column_exprs(table, mapping, {})
    con.execute(f"CREATE OR REPLACE TEMP VIEW _src_{table} AS SELECT {', '.join(sel)} FROM {raw}")
    errs = con.execute(
        f"SELECT line, first(error_type ORDER BY byte_position), first(csv_line ORDER BY byte_position) "
        f"FROM {errt} GROUP BY line ORDER BY line"
    ).fetchall()
    return {"format": "csv", "raw_view": f"SELECT * FROM read_csv({_lit(path.resolve())}, {opts})",
            "parse_errors": [(int(l), _CSV_ERRORS.get(str(t), f"malformed CSV row: {str(t).lower()}"),
                                               (v or "").strip("\r\n")) for l, t, v in errs]}


def _read_parquet(con, table: str, path: Path) -> dict:
    # no copy: Parquet is columnar and cheap to re-read, so every pass scans the file itself
    # and reads only the columns it needs (file_row_number keeps the file order)
    raw = f"read_parquet({_lit(path.resolve())}, file_row_number=true)"
    try:
        desc = con.execute(f"DESCRIBE SELECT * FROM {raw}").fetchall()
        con.execute(f"SELECT count(*) FROM {raw}").fetchone()
    except duckdb.Error as exc:
        raise BundleError(f"{path.name}: cannot be read as Parquet: {exc}") from exc
    types = {r[0]: str(r[1]) for r in desc if r[0] != "file_row_number"}
    mapping = _match_columns(table, path.name, list(types))
    sel = ["file_row_number AS _rec", "file_row_number + 1 AS _line", "CAST(NULL AS VARCHAR) AS _bad",
           "CAST(NULL AS VARCHAR) AS _badval"]
    sel += _column_exprs(table, mapping, types)
    con.execute(f"CREATE OR REPLACE TEMP VIEW _src_{table} AS SELECT {', '.join(sel)} FROM {raw}")
    return {"format": "parquet", "parse_errors": [], "native": _native_columns(table, mapping, types),
            "raw_view": f"SELECT * FROM read_parquet({_lit(path.resolve())}, file_row_number=true)"}


def _read_jsonl(con, table: str, path: Path) -> dict:
    comp = "gzip" if path.name.lower().endswith(".gz") else "none"
    lines = f"_lines_{table}"
    errt = f"_jsonerr_{table}"
    opts = (f"columns={{'_text': 'VARCHAR'}}, auto_detect=false, header=false, delim='\x01', quote='', escape='', "
            f"ignore_errors=true, strict_mode=false, max_line_size={_MAX_LINE}, buffer_size={_MAX_LINE * 2}, "
            f"compression='{comp}', encoding='utf-8'")
    try:
        # one VARCHAR per physical line: no quoting, and a delimiter (0x01) that valid JSON
        # cannot contain unescaped, so a line holding it is a reject either way
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {lines} AS SELECT * FROM read_csv(?, {opts}, "
            f"store_rejects=true, rejects_table='{errt}', rejects_scan='_jsonscan_{table}')",
            [str(path)],
        )
    except duckdb.OutOfMemoryException:
        raise   # load_bundle names memory_limit
    except duckdb.Error as exc:
        raise BundleError(f"{path.name}: cannot be read as JSON Lines: {exc}") from exc
    errs = con.execute(
        f"SELECT line, first(csv_line ORDER BY byte_position), first(error_type ORDER BY byte_position) "
        f"FROM {errt} GROUP BY line ORDER BY line"
    ).fetchall()
    if errs:
        n = con.execute(f"SELECT count(*) FROM {lines}").fetchone()[0]
        total = n + len(errs)
        err_lines = ", ".join(str(int(e[0])) for e in errs)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _linemap_{table} AS SELECT r, l FROM (SELECT l, row_number() OVER (ORDER BY l) - 1 AS r "
                    f"FROM range(1, {total + 1}) t(l) WHERE l NOT IN ({err_lines}))")
        src_lines = (f"SELECT m.l AS _line, s._text FROM (SELECT rowid AS r, _text FROM {lines}) s "
                     f"JOIN _linemap_{table} m USING (r)")
    else:
        src_lines = f"SELECT rowid + 1 AS _line, _text FROM {lines}"
    raw = f"_read_{table}"
    jl = f"_jl_{table}"
    # pass 1: the JSON type of each non-blank line (NULL when it is not JSON)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {jl} AS SELECT _line, _text, try(json_type(_text)) AS _kind "
        f"FROM ({src_lines}) WHERE _text IS NOT NULL AND {_trim('_text')} <> ''"
    )
    con.execute(f"DROP TABLE IF EXISTS temp.{lines}")
    # pass 2: the keys present in any object
    n_obj = con.execute(f"SELECT count(*) FROM {jl} WHERE _kind = 'OBJECT'").fetchone()[0]
    keys = [r[0] for r in con.execute(
        f"SELECT DISTINCT k FROM (SELECT unnest(json_keys(_text)) AS k FROM {jl} WHERE _kind = 'OBJECT') ORDER BY k"
    ).fetchall()]
    # no objects at all: every line is a reject and the columns cannot be judged
    mapping = _match_columns(table, path.name, keys) if n_obj else {}
    wanted = list(mapping)
    # pass 3: all wanted columns of a line in one parse, materialised as text
    cols = "".join(f", _jv[{i + 1}] AS {_ident(c)}" for i, c in enumerate(wanted))
    paths = ", ".join(_lit("$." + _json_key(mapping[c])) for c in wanted)
    extract = (f"json_extract_string(CASE WHEN _kind = 'OBJECT' THEN _text END, [{paths}])" if wanted
               else "CAST(NULL AS VARCHAR[])")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {raw} AS SELECT _line, _kind, CASE WHEN _kind IS NULL THEN _text END AS _text"
        f"{cols} FROM (SELECT *, {extract} AS _jv FROM {jl}) ORDER BY _line"
    )
    con.execute(f"DROP TABLE IF EXISTS temp.{jl}")
    sel = ["_line - 1 AS _rec", "_line",
           f"CASE WHEN _kind IS NULL THEN {_lit(R_JSON)} WHEN _kind <> 'OBJECT' THEN {_lit(R_JSON_OBJ)} END AS _bad",
           "_text AS _badval"]
    sel += _column_exprs(table, {c: c for c in wanted}, {})
    con.execute(f"CREATE OR REPLACE TEMP VIEW _src_{table} AS SELECT {', '.join(sel)} FROM {raw}")
    parse_errors = [(int(l), R_UTF8 if "INVALID" in str(t) else R_JSON, (v or "").strip("\r\n")) for l, v, t in errs]
    raw_view = (f"SELECT CASE WHEN json_valid(_text) THEN _text END AS _json, "
                f"CASE WHEN NOT json_valid(_text) THEN _text END AS _text "
                f"FROM read_csv({_lit(path.resolve())}, {opts}) WHERE {_trim('_text')} <> ''")
    return {"format": "jsonl", "parse_errors": parse_errors, "raw_view": raw_view}


def _json_key(name: str) -> str:
    """JSON path step for a key (quoted)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------------------------
# SQL expressions


def _epoch_expr(num: str) -> str:
    """TIMESTAMP from epoch seconds (DOUBLE expression); far-out values clamp to the extremes."""
    return (f"CASE WHEN {num} IS NULL OR isnan({num}) THEN NULL "
            f"WHEN {num} >= 1e11 THEN TIMESTAMP '9999-12-31 00:00:00' "
            f"WHEN {num} <= -1e11 THEN TIMESTAMP '0001-01-01 00:00:00' "
            f"ELSE timezone('UTC', to_timestamp({num})) END")


def _text_ts_expr(t: str) -> str:
    """TIMESTAMP (naive UTC) from trimmed ISO 8601 / RFC 3339 or epoch-second text ``t``.

    The common ISO forms go through one TRY_CAST; only what fails it is tried as epoch
    seconds, then as ISO with a lower-case ``t``/``z`` or a space before the offset.
    """
    num = f"TRY_CAST({t} AS DOUBLE)"
    iso = (f"regexp_replace(regexp_replace(regexp_replace({t}, '^(\\d{{4}}-\\d\\d-\\d\\d)[tT ]', '\\1 '), "
           f"'[zZ]$', '+00:00'), ' ([+-]\\d\\d(:?\\d\\d)?)$', '\\1')")
    return (f"coalesce(timezone('UTC', TRY_CAST({t} AS TIMESTAMPTZ)), "
            f"CASE WHEN regexp_full_match({t}, '[+-]?\\d+(\\.\\d*)?([eE][+-]?\\d+)?') THEN {_epoch_expr(num)} "
            f"ELSE timezone('UTC', TRY_CAST({iso} AS TIMESTAMPTZ)) END)")


def _native_ts_expr(col: str, sqltype: str) -> str | None:
    """TIMESTAMP (naive UTC) from a native Parquet column, or None when it is text to parse."""
    t = sqltype.upper()
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        # the stored instant is UTC microseconds: rebuilding it is exact and several times
        # cheaper than the time-zone conversion, which is kept for +-infinity only
        return f"CASE WHEN isfinite({col}) THEN make_timestamp(epoch_us({col})) ELSE timezone('UTC', {col}) END"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return f"CAST({col} AS TIMESTAMP)"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE") or t.startswith("DECIMAL"):
        return _epoch_expr(f"CAST({col} AS DOUBLE)")
    return None


_INT_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
              "UBIGINT", "UHUGEINT")


def _native_columns(table: str, mapping: dict, types: dict) -> set:
    """Columns of ``table`` whose Parquet type is a native timestamp/number (ts) or integer (int)."""
    out = set()
    for c, kind in _KINDS[table].items():
        t = types.get(mapping.get(c)) if types else None
        if t is None:
            continue
        if kind == "ts" and _native_ts_expr("x", t) is not None:
            out.add(c)
        elif kind == "int" and t.upper() in _INT_TYPES:
            out.add(c)
    return out


def _column_exprs(table: str, mapping: dict, types: dict, src_map: dict | None = None) -> list[str]:
    """For each expected column: ``c`` as VARCHAR text, for timestamps ``c__ts``, for integers ``c__num``.

    ``c__ts`` is the native timestamp of a Parquet column, else NULL (the text is parsed later);
    ``c__num`` is a native Parquet integer as DOUBLE (what parsing its text gives), else NULL.
    """
    out = []
    for c, kind in _KINDS[table].items():
        if c in mapping:
            src = src_map[c] if src_map else _ident(mapping[c])
            text = f"CAST({src} AS VARCHAR)"
        else:
            src, text = "NULL", "CAST(NULL AS VARCHAR)"
        out.append(f"{text} AS {_ident(c)}")
        if kind == "ts":
            expr = None
            if c in mapping and types and mapping[c] in types:
                expr = _native_ts_expr(src, types[mapping[c]])
            out.append(f"{expr or 'CAST(NULL AS TIMESTAMP)'} AS {_ident(c + '__ts')}")
        if kind == "int":
            native = c in mapping and types and str(types.get(mapping[c], "")).upper() in _INT_TYPES
            out.append(f"{f'CAST({src} AS DOUBLE)' if native else 'CAST(NULL AS DOUBLE)'} AS {_ident(c + '__num')}")
        if c in mapping and c in _native_columns(table, mapping, types):
            out.append(f"{src} AS {_ident(c + '__orig')}")   # its text is made only for reject values
    return out


# ---------------------------------------------------------------------------------------------
# IP normalisation map (Python ipaddress on DISTINCT non-canonical values only)


def _build_ipmap(con, sources: list[tuple[str, str]]) -> None:
    """Create ``_ipmap (raw, norm)`` for the distinct non-canonical IPs of the ``(table, column)`` sources."""
    # canonical IPv4 (nearly every row) is dropped before the DISTINCT: hashing tens of
    # millions of addresses costs far more than the regex
    parts = [f"SELECT DISTINCT v FROM (SELECT {_trim(_ident(col))} AS v FROM _src_{t}) WHERE v <> '' "
             f"AND NOT regexp_full_match(v, {_lit(IPV4_CANONICAL_REGEX)})" for t, col in sources]
    con.execute("CREATE OR REPLACE TEMP TABLE _ipmap (raw VARCHAR, norm VARCHAR)")
    if parts:
        _add_to_ipmap(con, f"SELECT DISTINCT v FROM ({' UNION ALL '.join(parts)})")


def _add_to_ipmap(con, values: str) -> None:
    """Add to ``_ipmap`` the values of the one-column query ``values`` that it does not hold yet."""
    rows = con.execute(f"SELECT DISTINCT v FROM ({values}) q(v) WHERE v IS NOT NULL "
                       f"AND v NOT IN (SELECT raw FROM _ipmap) ORDER BY v").fetchall()
    if rows:
        raw = [r[0] for r in rows]
        df = pd.DataFrame({"raw": pd.Series(raw, dtype=object), "norm": pd.Series(normalize_ips(raw), dtype=object)})
        con.register("_ipmap_df", df)
        try:
            con.execute("INSERT INTO _ipmap SELECT CAST(raw AS VARCHAR), CAST(norm AS VARCHAR) FROM _ipmap_df")
        finally:
            con.unregister("_ipmap_df")


# ---------------------------------------------------------------------------------------------
# validation


def _normalise(con, table: str, now_lit: str, materialise: bool = True, native: set = frozenset(),
               lookups: bool = True, tag: str = "", ip_defer: bool = False) -> list[str]:
    """Create ``_p_<table>`` (parsed values) and the view ``_n_<table>``.

    ``_p_<table>`` is a temporary table (parsed once) when ``materialise``, else a view
    recomputed by each pass: for events, whose copy would hold every prompt once more.
    Columns in ``native`` (Parquet timestamps and integers) skip the text round trip: their
    text is never blank, and it would parse back to the native value. Without ``lookups``
    (views ``_p<tag>_<table>``, ``_n<tag>_<table>``) there are no joins: every account counts
    as known and IPs that are not canonical IPv4 are kept as read, which is right only when
    no row is rejected and no IP needs rewriting (see :func:`_load`).

    ``_n_<table>`` has, per column ``c``: ``c__raw`` (text as read, for checked columns),
    ``c`` (normalised value, NULL when blank or bad), ``c__why`` (problem or NULL); and per row
    ``_known`` (account_id is an accepted account), ``_wcol``, ``_why``, ``_wval``: the first
    problem of the record or of a required column. Returns the optional columns that can be
    cleared.

    With ``ip_defer`` (and ``lookups``) the accounts are looked up but the IPs are not: an IP
    that is not canonical IPv4 is kept as read, and ``c__nc`` marks it (non-blank, not
    canonical IPv4) for :func:`_settle_ips`, which gives the verdict once the map holds it.
    """
    kinds = _KINDS[table]
    required = REQUIRED_COLUMNS[table]
    # three stacked projections so that each trim / cast / regex runs once per value
    a = ["s._rec", "s._line", "s._bad", "s._badval"]          # A: trims
    b = ["a.*"]                                              # B: casts, regexes, joins
    cfin = ["_rec", "_line", "_bad", "_badval", "_known"]    # C: what _p keeps
    joins = []
    if table == "accounts" or not lookups:
        b.append("TRUE AS _known")
    else:  # is the account an accepted account? (accounts are done first)
        joins.append("LEFT JOIN _first_accounts _fa ON _fa.account_id = a.account_id__t")
        b.append("(_fa.account_id IS NOT NULL) AS _known")
    sel = ["_rec", "_line", "_bad", "_badval", "_known"]    # view: cheap checks on parsed values
    clears = []
    for c, kind in kinds.items():
        ci, raw, v, blank = _ident(c), _ident(c + "__raw"), _ident(c + "__v"), _ident(c + "__blank")
        tt, x = _ident(c + "__t"), _ident(c + "__x")
        if kind == "text":
            a.append(f"s.{ci} AS {x}")
            # trim only values that start with white space or a control character (cheap on long prompts)
            a.append(f"CASE WHEN s.{ci} IS NULL THEN true WHEN ascii(s.{ci}) > 32 THEN false "
                     f"ELSE {_trim('s.' + ci)} = '' END AS {blank}")
            b.append(f"CASE WHEN NOT {blank} THEN {x} END AS {v}")
            cfin += [blank, v]
        elif c in native:  # Parquet timestamp / integer: blank exactly when NULL
            nat = _ident(c + ("__ts" if kind == "ts" else "__num"))
            cfin.append(f"({_ident(c + '__nat')} IS NULL) AS {blank}")
            a.append(f"s.{nat} AS {_ident(c + '__nat')}")
        else:
            a.append(f"{_trim('s.' + ci)} AS {tt}")
            cfin.append(f"({tt} IS NULL OR {tt} = '') AS {blank}")
        if c in native:   # text as read, for reject values: formatted above the filters, only where needed
            orig = _ident(c + "__orig")
            a.append(f"s.{orig} AS {orig}")
            cfin.append(orig)
            sel.append(f"CAST({orig} AS VARCHAR) AS {raw}")
        elif kind in ("id", "ts", "ip", "int"):   # text as read, for reject values
            a.append(f"s.{ci} AS {raw}")
            cfin.append(raw)
            sel.append(raw)
        missing = _lit(R_MISSING) if c in required else "NULL"
        if kind == "id":
            b.append(f"NULLIF({tt}, '') AS {v}")
            why = f"CASE WHEN {blank} THEN {missing} END"
        elif kind == "ts" and c in native:
            b.append(f"{_ident(c + '__nat')} AS {v}")
            why = (f"CASE WHEN {blank} THEN {missing} "
                   f"WHEN {v} < TIMESTAMP '2000-01-01' THEN {_lit(R_EARLY)} WHEN {v} > {now_lit} THEN {_lit(R_FUTURE)} END")
        elif kind == "ts":
            a.append(f"s.{_ident(c + '__ts')} AS {_ident(c + '__nat')}")
            b.append(f"coalesce({_ident(c + '__nat')}, {_text_ts_expr(tt)}) AS {v}")
            why = (f"CASE WHEN {blank} THEN {missing} WHEN {v} IS NULL THEN {_lit(R_TS)} "
                   f"WHEN {v} < TIMESTAMP '2000-01-01' THEN {_lit(R_EARLY)} WHEN {v} > {now_lit} THEN {_lit(R_FUTURE)} END")
        elif kind == "ip":
            alias = f"_ip_{c}"
            if ip_defer:
                nc = _ident(c + "__nc")
                b.append(f"{tt} AS {v}")
                cfin.append(f"(NOT {blank} AND NOT regexp_full_match({tt}, {_lit(IPV4_CANONICAL_REGEX)})) AS {nc}")
                sel.append(nc)
            elif lookups:
                joins.append(f"LEFT JOIN _ipmap {alias} ON {alias}.raw = a.{tt}")
                b.append(f"CASE WHEN regexp_full_match({tt}, {_lit(IPV4_CANONICAL_REGEX)}) THEN {tt} "
                         f"ELSE {alias}.norm END AS {v}")
            else:
                b.append(f"{tt} AS {v}")
            why = f"CASE WHEN {blank} THEN {missing} WHEN {v} IS NULL THEN {_lit(R_IP)} END"
        elif kind == "int":
            d = _ident(c + "__d")
            b.append(f"{_ident(c + '__nat')} AS {d}" if c in native else f"TRY_CAST({tt} AS DOUBLE) AS {d}")
            cfin.append(f"CASE WHEN {d} >= 0 AND {d} < 9e18 AND {d} = floor({d}) THEN CAST({d} AS BIGINT) END AS {v}")
            cfin.append(f"coalesce({d} < 0, false) AS {_ident(c + '__neg')}")
            why = (f"CASE WHEN {blank} OR {v} IS NOT NULL THEN NULL "
                   f"WHEN {_ident(c + '__neg')} THEN {_lit(R_NEG)} ELSE {_lit(R_INT)} END")
        elif kind == "lower":
            b.append(f"NULLIF(lower({tt}), '') AS {v}")
            why = "NULL"
        elif kind == "upper":
            b.append(f"NULLIF(upper({tt}), '') AS {v}")
            why = "NULL"
        else:
            why = "NULL"
        if kind in ("id", "ts", "ip", "lower", "upper"):
            cfin.append(v)
        sel.append(f"{why} AS {_ident(c + '__why')}")
        sel.append(f"CASE WHEN ({why}) IS NULL THEN {v} END AS {ci}")
        if c not in required and why != "NULL":
            clears.append(c)
    kind_of = "TABLE" if materialise else "VIEW"
    con.execute(
        f"CREATE OR REPLACE TEMP {kind_of} _p{tag}_{table} AS SELECT {', '.join(cfin)} FROM ("
        f"SELECT {', '.join(b)} FROM (SELECT {', '.join(a)} FROM _src_{table} s) a {' '.join(joins)})"
    )
    con.execute(f"CREATE OR REPLACE TEMP VIEW _n0{tag}_{table} AS SELECT {', '.join(sel)} FROM _p{tag}_{table}")
    _first_problem(con, f"_n{tag}_{table}", f"_n0{tag}_{table}", table)
    return clears


def _first_problem(con, name: str, source: str, table: str) -> None:
    """Create the view ``name``: ``source`` (per-column ``c__why``/``c__raw``) plus ``_wcol``, ``_why``, ``_wval``."""
    # first problem wins: the record itself, then required columns in schema order
    problems = [c for c in _KINDS[table] if c in REQUIRED_COLUMNS[table]]
    col_case = " ".join(f"WHEN {_ident(c + '__why')} IS NOT NULL THEN {_lit(c)}" for c in problems)
    why_case = " ".join(f"WHEN {_ident(c + '__why')} IS NOT NULL THEN {_ident(c + '__why')}" for c in problems)
    val_case = " ".join(f"WHEN {_ident(c + '__why')} IS NOT NULL THEN {_ident(c + '__raw')}" for c in problems)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *, "
        f"CASE WHEN _bad IS NOT NULL THEN '' {col_case} END AS _wcol, "
        f"CASE WHEN _bad IS NOT NULL THEN _bad {why_case} END AS _why, "
        f"CASE WHEN _bad IS NOT NULL THEN _badval {val_case} END AS _wval "
        f"FROM {source}"
    )


def _set(con, **settings) -> None:
    """``SET name = value`` for each setting (values as SQL string literals)."""
    for name, value in settings.items():
        con.execute(f"SET {name} = {_lit(value)}")


_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*", re.IGNORECASE)
_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def _size_bytes(text: str) -> int | None:
    """Bytes in a size string such as ``'4GB'`` or ``'512 MiB'``, or None when it is not one."""
    m = _SIZE_RE.fullmatch(text) if isinstance(text, str) else None
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).upper()]) if m else None


def default_memory_limit() -> str:
    """DuckDB memory limit used when none is given: 3 GiB, or half the machine's memory if less.

    The connection keeps it after loading, so the evidence stage that runs on
    ``Bundle.con`` stays within it too (DuckDB spills to ``temp_directory`` beyond it).

    Returns
    -------
    str
        A size string, e.g. ``'4096MiB'``.
    """
    try:
        phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume enough
        phys = 0
    limit = DEFAULT_MEMORY_LIMIT if phys <= 0 else min(DEFAULT_MEMORY_LIMIT, phys // 2)
    return f"{max(limit, MIN_MEMORY_LIMIT) // 2**20}MiB"


def _engine_settings(memory_limit, threads, temp_directory, db_path: Path) -> dict:
    """Validate the DuckDB resource options of :func:`load_bundle`; return the settings to apply."""
    if memory_limit is None:
        memory_limit = default_memory_limit()
    n = _size_bytes(memory_limit)
    if n is None:
        raise ConfigError(f"memory_limit {memory_limit!r}: expected a size such as '4GB', '512MB' or '2GiB' "
                          f"(a number and one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")
    if n < MIN_MEMORY_LIMIT:
        raise ConfigError(f"memory_limit {memory_limit!r}: must be at least 16MiB")
    out = {"memory_limit": f"{n // 2**10}KiB"}
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ConfigError(f"threads {threads!r}: expected a whole number of at least 1, or None for DuckDB's default "
                              f"(one per core)")
        out["threads"] = str(int(threads))
    if temp_directory is None:
        temp_directory = Path(str(db_path) + ".tmp")
    elif not isinstance(temp_directory, (str, os.PathLike)) or not str(temp_directory).strip():
        raise ConfigError(f"temp_directory {temp_directory!r}: expected a folder path")
    temp_directory = Path(temp_directory)
    if temp_directory.exists() and not temp_directory.is_dir():
        raise ConfigError(f"temp_directory {str(temp_directory)!r}: exists and is not a folder")
    out["temp_directory"] = str(temp_directory)
    return out


def load_bundle(path, *, since=None, until=None, now=None, database=None, progress=False,
                memory_limit=None, threads=None, temp_directory=None) -> Bundle:
    """Read, validate and type an input bundle.

    Parameters
    ----------
    path : str or Path
        The bundle folder (see ../shared/SCHEMA.md).
    since, until : datetime, date or ISO 8601 str, optional
        Keep events with ``since <= ts < until``, accounts created before ``until`` that were
        created at or after ``since`` or have kept events, and the payments and labels of kept
        accounts. Naive values are UTC. Rows left out are counted as ``outside_window``.
    now : datetime or str, optional
        The present, for the future-timestamp check (default: the wall clock).
    database : str or Path, optional
        DuckDB database file to load into; default a temporary file removed with the Bundle.
    progress : bool
        Show a tqdm progress bar on stderr.
    memory_limit : str, optional
        DuckDB memory limit for the connection, a size such as ``'4GB'`` or ``'512MiB'``
        (at least 16 MiB); default :func:`default_memory_limit` (3 GiB, or half the machine's
        memory if less). Work beyond it spills to ``temp_directory``; the connection keeps
        the limit for the later stages that use ``Bundle.con``.
    threads : int, optional
        DuckDB worker threads (at least 1); default DuckDB's, one per core.
    temp_directory : str or Path, optional
        Folder for DuckDB's spill files; default ``<database>.tmp`` beside the database
        (inside the temporary folder removed with the Bundle when ``database`` is not given).

    Returns
    -------
    Bundle

    Raises
    ------
    BundleError
        A required table or column is missing, a table has two files, a file is unreadable,
        or the load does not fit in ``memory_limit`` plus the free space of ``temp_directory``.
    ConfigError
        ``memory_limit``, ``threads`` or ``temp_directory`` is not an allowed value.
    """
    from tqdm import tqdm

    path = Path(path)
    files = discover(path)
    since_dt = _as_utc_naive(since, "since")
    until_dt = _as_utc_naive(until, "until")
    now_dt = _as_utc_naive(now, "now") if now is not None else datetime.now(timezone.utc).replace(tzinfo=None)
    if since_dt is not None and until_dt is not None and since_dt >= until_dt:
        raise BundleError(f"window: since ({since_dt.isoformat()}) must be before until ({until_dt.isoformat()})")
    now_lit = f"TIMESTAMP '{(now_dt + FUTURE_GRACE).isoformat(sep=' ')}'"

    # validated before anything is created (the temp folder name is only a placeholder here)
    _engine_settings(memory_limit, threads, temp_directory, Path(database or "bundle.duckdb"))
    tmpdir = None
    if database is None:
        tmpdir = Path(tempfile.mkdtemp(prefix="hydrascope-bundle-"))
        db_path = tmpdir / "bundle.duckdb"
    else:
        db_path = Path(database)
    settings = _engine_settings(memory_limit, threads, temp_directory, db_path)
    con = duckdb.connect(str(db_path))
    try:
        # spill folder first, then the limit: nothing may be buffered beyond it
        _set(con, **settings)
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET preserve_insertion_order = true")
        try:
            con.execute("SET enable_progress_bar = false")
        except duckdb.InvalidInputException:  # Jupyter without ipywidgets refuses the setting; its bar is off there
            pass
        try:
            result = _load(con, path, files, since_dt, until_dt, now_lit, progress, tqdm)
        except duckdb.OutOfMemoryException as exc:
            limit = memory_limit if memory_limit is not None else default_memory_limit()
            raise BundleError(f"input bundle {path}: does not fit in memory_limit {limit} "
                              f"plus the free space of temp_directory {settings['temp_directory']}: {exc}") from exc
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            # a Parquet file is read lazily, so a damaged page shows up only here
            raise BundleError(f"input bundle {path}: a file cannot be read: {exc}") from exc
    except BaseException:
        con.close()
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    bundle = Bundle(path=path, con=con, _tmpdir=tmpdir, **result)
    if tmpdir is not None:
        weakref.finalize(bundle, shutil.rmtree, str(tmpdir), True)
    return bundle


def _load(con, path, files, since_dt, until_dt, now_lit, progress, tqdm) -> dict:
    present = [t for t in TABLES if t in files]
    bar = tqdm(total=len(present) * 2 + 2, desc="reading bundle", unit="step", disable=None if progress else True)
    info = {}
    sha = {}
    for table in present:
        f = files[table]
        bar.set_postfix_str(f.name)
        suf = _suffix(f.name)
        if suf in (".csv", ".csv.gz"):
            info[table] = _read_csv(con, table, f)
        elif suf == ".parquet":
            info[table] = _read_parquet(con, table, f)
        else:
            info[table] = _read_jsonl(con, table, f)
        sha[table] = file_sha256(f)
        bar.update(1)
    # empty sources for the absent optional tables
    for table in TABLES:
        if table not in files:
            sel = ["CAST(NULL AS BIGINT) AS _rec", "CAST(NULL AS BIGINT) AS _line", "CAST(NULL AS VARCHAR) AS _bad",
                   "CAST(NULL AS VARCHAR) AS _badval"] + _column_exprs(table, {}, {})
            con.execute(f"CREATE OR REPLACE TEMP VIEW _src_{table} AS SELECT {', '.join(sel)} WHERE false")
            info[table] = {"format": None, "parse_errors": []}

    # the events' IPs join the map in their reject pass (_settle_ips), not in a pass of their own
    _build_ipmap(con, [("accounts", "signup_ip")])
    clears = {"accounts": _normalise(con, "accounts", now_lit, native=info["accounts"].get("native", set()))}
    # accounts: first valid row per account_id wins
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _first_accounts AS SELECT account_id, min(_rec) AS _first "
        "FROM _n_accounts WHERE _why IS NULL GROUP BY account_id"
    )
    # events (by far the largest table) stay a view over the read: each pass below streams it
    # once instead of holding a parsed copy with every prompt
    ev_native = info["events"].get("native", set())
    clears["events"] = _normalise(con, "events", now_lit, materialise=False, native=ev_native, ip_defer=True, tag="d")
    late = None
    if until_dt is not None:
        # accounts created at or after until: their events are outside the window, and the
        # candidates include those inside it, which can then only be told apart by a look-up
        con.execute(f"CREATE OR REPLACE TEMP TABLE _late_accounts AS SELECT n.account_id FROM _n_accounts n "
                    f"JOIN _first_accounts f ON f._first = n._rec "
                    f"WHERE NOT n.created_at < TIMESTAMP '{until_dt.isoformat(sep=' ')}'")
        if con.execute("SELECT count(*) FROM _late_accounts").fetchone()[0]:
            late = f"{_window(since_dt, until_dt, 'ts')} AND account_id IN (SELECT account_id FROM _late_accounts)"
    _settle_ips(con, clears["events"], also=late)
    _normalise(con, "events", now_lit, materialise=False, native=ev_native)
    for table in ("payments", "labels"):
        clears[table] = _normalise(con, table, now_lit, native=info[table].get("native", set()))
    bar.update(1)

    con.execute(
        "CREATE OR REPLACE TEMP VIEW _v_accounts AS SELECT n.*, f._first, "
        "CASE WHEN n._why IS NULL AND n._rec <> f._first THEN 'account_id' ELSE n._wcol END AS _rcol, "
        "CASE WHEN n._why IS NULL AND n._rec <> f._first THEN '__dup__' ELSE n._why END AS _rwhy, "
        "CASE WHEN n._why IS NULL AND n._rec <> f._first THEN n.account_id__raw ELSE n._wval END AS _rval "
        "FROM _n_accounts n LEFT JOIN _first_accounts f ON n._why IS NULL AND f.account_id = n.account_id"
    )
    for table in ("events", "payments", "labels"):
        if table == "labels":
            # one label per account: later rows for the same account are duplicates
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _first_labels AS SELECT account_id, min(_rec) AS _first "
                "FROM _n_labels WHERE _why IS NULL AND account_id IN (SELECT account_id FROM _first_accounts) "
                "GROUP BY account_id"
            )
        _verdict_view(con, f"_v_{table}", f"_n_{table}", table)
    # the events' reject candidates with their settled IPs (see _settle_ips)
    _verdict_view(con, "_vs_events", "_ns_events", "events")

    # window
    acc_in = "TRUE"
    ev_keep = _window(since_dt, until_dt, "ts")
    ev_lookup = False
    if until_dt is not None:
        acc_in += f" AND created_at < TIMESTAMP '{until_dt.isoformat(sep=' ')}'"
        # an accepted event in the window makes its account active, so it is kept exactly when
        # its account was created before until; no look-up when no such event has a later
        # account (the candidates hold every event in the window of a later account)
        if late is not None and con.execute(f"SELECT count(*) FROM _vs_events WHERE _rwhy IS NULL AND {late}").fetchone()[0]:
            ev_keep += " AND account_id NOT IN (SELECT account_id FROM _late_accounts)"
            ev_lookup = True
    if since_dt is not None:
        # the accounts active in the window are those of the kept events (written first)
        acc_in += (f" AND (created_at >= TIMESTAMP '{since_dt.isoformat(sep=' ')}' OR account_id IN "
                   f"(SELECT DISTINCT account_id FROM events))")
    keep = {
        "accounts": acc_in,
        "events": ev_keep,
        "payments": "account_id IN (SELECT account_id FROM _keep_accounts)",
        "labels": "account_id IN (SELECT account_id FROM _keep_accounts)",
    }
    if since_dt is None and until_dt is None:
        # no window: the kept accounts are the accepted ones, and a row with no reject reason
        # has an accepted account, so the look-up (a hash probe per row) adds nothing
        keep = {t: "TRUE" for t in keep}
    counts = {}
    for table in ("events",) + tuple(t for t in TABLES if t != "events"):
        if table == "accounts":
            con.execute(f"CREATE OR REPLACE TEMP TABLE _keep_accounts AS SELECT account_id FROM _v_accounts "
                        f"WHERE _rwhy IS NULL AND {acc_in}")
        cols = ", ".join(
            f"CAST({_ident(c)} AS {_SQL_TYPE.get(k, 'VARCHAR')}) AS {_ident(c)}" for c, k in _KINDS[table].items()
        )
        if table == "events":
            # the prompt's 64-bit key, computed while the text is read anyway: later passes
            # (prompt fingerprints, features) group and join on it without reading any text
            cols += f", hash(CAST({_ident('prompt')} AS VARCHAR)) AS {PROMPT_HASH}"
        # one narrow pass for everything the reject list needs: rejected rows, and accepted rows
        # with a cleared field (few, in any sane bundle)
        cleared_any = " OR ".join(f"{_ident(c + '__why')} IS NOT NULL" for c in clears[table]) or "FALSE"
        rj_cols = ", ".join(["_rec", "_line", "_rcol", "_rval", "_rwhy", "_first"]
                            + [_ident(c + s) for c in clears[table] for s in ("__raw", "__why")])
        # the events' candidates were set aside by the pass of _settle_ips: no pass over the events here
        rj_from = "_vs_events" if table == "events" else f"_v_{table}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _rj_{table} AS SELECT {rj_cols}, (_rwhy IS NULL) AS _acc FROM {rj_from} "
            f"WHERE _rwhy IS NOT NULL OR (({cleared_any}) AND {keep[table]})"
        )
        read = con.execute(f"SELECT count(*) FROM _src_{table}").fetchone()[0]
        rejected = con.execute(f"SELECT count(*) FROM _rj_{table} WHERE NOT _acc").fetchone()[0]
        select = f"SELECT {cols}, _rec FROM _v_{table} WHERE _rwhy IS NULL AND {keep[table]}"
        stream = table == "events"
        parallel = False
        if stream and rejected == 0 and not ev_lookup and not con.execute(
                "SELECT count(*) FROM _ipmap WHERE norm IS DISTINCT FROM raw").fetchone()[0]:
            # nothing rejected, no account look-up for the window and no IP to rewrite: every
            # row is accepted and kept as read (or as the window says), so the joins can go,
            # and without joins DuckDB keeps file order on all threads; each typed column is
            # its parsed value, with no reject reasons to evaluate (see _clean_select)
            _normalise(con, table, now_lit, materialise=False, native=info[table].get("native", set()),
                       lookups=False, tag="f")
            select = _clean_select(table, f"_pf_{table}", where=_window(since_dt, until_dt, _ident("ts__v")))
            parallel = True
        _create_in_file_order(con, _TYPED_NAME[table], select, stream=stream, parallel=parallel)
        accepted = con.execute(f"SELECT count(*) FROM {_TYPED_NAME[table]}").fetchone()[0]
        n_parse = len(info[table]["parse_errors"])
        counts[table] = {
            "rows_read": int(read) + n_parse,
            "rows_accepted": int(accepted),
            "rows_rejected": int(rejected) + n_parse,
            "fields_cleared": 0,
            "outside_window": int(read) - int(rejected) - int(accepted),
        }
    counts = {t: counts[t] for t in TABLES}
    bar.update(1)

    # rejects: rejected rows, then cleared fields of accepted rows
    frames = []
    for table in TABLES:
        parts = [
            f"SELECT _rec, _line, _rcol AS col, _rval AS value, _rwhy AS reason, 'rejected' AS action, "
            f"_first AS ref_rec, "
            + (f"(SELECT _line FROM _p_{table} x WHERE x._rec = v._first) AS ref_line "
               if table in ("accounts", "labels") else "CAST(NULL AS BIGINT) AS ref_line ")
            + f"FROM _rj_{table} v WHERE NOT _acc"
        ]
        for c in clears[table]:
            parts.append(
                f"SELECT _rec, _line, {_lit(c)} AS col, {_ident(c + '__raw')} AS value, {_ident(c + '__why')} AS reason, "
                f"'cleared' AS action, NULL AS ref_rec, NULL AS ref_line FROM _rj_{table} "
                f"WHERE {_ident(c + '__why')} IS NOT NULL AND _acc"
            )
        df = con.execute(" UNION ALL ".join(parts)).df()
        counts[table]["fields_cleared"] = int((df["action"] == "cleared").sum()) if len(df) else 0
        perr = info[table]["parse_errors"]
        if perr:
            pe = pd.DataFrame({
                "_rec": pd.array([pd.NA] * len(perr), dtype="Int64"),
                "_line": pd.array([pd.NA] * len(perr), dtype="Int64"),
                "col": "", "value": [v for _, _, v in perr], "reason": [r for _, r, _ in perr],
                "action": "rejected", "ref_rec": pd.array([pd.NA] * len(perr), dtype="Int64"),
                "ref_line": pd.array([pd.NA] * len(perr), dtype="Int64"),
                "_recno": [l for l, _, _ in perr],
            })
            df = pd.concat([df, pe], ignore_index=True) if len(df) else pe
        if not len(df):
            continue
        if "_recno" not in df:
            df["_recno"] = pd.NA
        df = _fill_lines(table, files[table], info[table]["format"], df)
        df.insert(0, "table", table)
        df.insert(1, "file", files[table].name)
        frames.append(df)
    _drop_intermediates(con)
    # leave views that re-read the files, for anyone who wants the unknown columns
    for table in present:
        con.execute(f"CREATE OR REPLACE TEMP VIEW _raw_{table} AS {info[table]['raw_view']}")
    bar.update(1)
    bar.close()
    rejects = _finish_rejects(frames)
    return {
        "files": {t: files[t] for t in TABLES if t in files},
        "sha256": sha,
        "counts": counts,
        "rejects": rejects,
        "has_payments": "payments" in files,
        "has_labels": "labels" in files,
    }


def _verdict_view(con, name: str, source: str, table: str) -> None:
    """Create the view ``name``: ``source`` (a ``_n`` view of ``table``) plus the row's reject ``_rcol``, ``_rwhy``, ``_rval``.

    After the first problem of the record or a required column comes an unknown account,
    then (labels) a later label of the same account (reason ``'__dup__'``, filled in later).
    """
    dup = table == "labels"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT n.*, "
        + ("f._first, " if dup else "CAST(NULL AS BIGINT) AS _first, ")
        + "CASE WHEN n._why IS NOT NULL THEN n._wcol WHEN NOT n._known THEN 'account_id' "
        + ("WHEN n._rec <> f._first THEN 'account_id' " if dup else "")
        + f"END AS _rcol, CASE WHEN n._why IS NOT NULL THEN n._why WHEN NOT n._known THEN {_lit(R_UNKNOWN)} "
        + ("WHEN n._rec <> f._first THEN '__dup__' " if dup else "")
        + "END AS _rwhy, CASE WHEN n._why IS NOT NULL THEN n._wval WHEN NOT n._known THEN n.account_id__raw "
        + ("WHEN n._rec <> f._first THEN n.account_id__raw " if dup else "")
        + f"END AS _rval FROM {source} n "
        + ("LEFT JOIN _first_labels f ON n._why IS NULL AND f.account_id = n.account_id " if dup else "")
    )


def _window(since_dt, until_dt, ts: str) -> str:
    """SQL condition: timestamp expression ``ts`` in ``[since, until)`` (``TRUE`` without a window)."""
    cond = "TRUE"
    if since_dt is not None:
        cond += f" AND {ts} >= TIMESTAMP '{since_dt.isoformat(sep=' ')}'"
    if until_dt is not None:
        cond += f" AND {ts} < TIMESTAMP '{until_dt.isoformat(sep=' ')}'"
    return cond


def _settle_ips(con, clears: list[str], also: str | None = None) -> None:
    """One pass over the events for their reject candidates and their non-canonical IPs.

    Reads ``_nd_events`` (IPs deferred, see :func:`_normalise`) once into the temporary
    table ``_cand_events``: every row with a problem, an unknown account or a cleared field,
    and every row whose IP is not canonical IPv4 (its verdict needs the IP map). The distinct
    such IPs join ``_ipmap``; then the view ``_ns_events`` gives the candidates the columns
    of ``_n_events`` with the IPs judged, so the reject list needs no other pass. Rows that
    are not candidates have no reject and no cleared field whatever their IP map says.
    ``also``, a condition on ``_nd_events``, makes more rows candidates.
    """
    ip_cols = [c for c, k in _KINDS["events"].items() if k == "ip"]
    keep = ["_rec", "_line", "_bad", "_badval", "_known"]

    def raw_if_why(c):
        # a text value is only shown with its reason; only needed then (a native value is formatted)
        return f"CASE WHEN {_ident(c + '__why')} IS NOT NULL THEN {_ident(c + '__raw')} END AS {_ident(c + '__raw')}"

    for c, kind in _KINDS["events"].items():
        if c in REQUIRED_COLUMNS["events"]:
            # the account's text is shown for an unknown account, an IP's for a malformed one
            raw = _ident(c + "__raw") if kind in ("id", "ip") else raw_if_why(c)
            keep += [raw, _ident(c + "__why"), _ident(c)]
    keep += [s for c in clears for s in (raw_if_why(c), _ident(c + "__why"))]
    keep += [_ident(c + "__nc") for c in ip_cols]
    cand = " OR ".join(["_why IS NOT NULL", "NOT _known"] + [f"{_ident(c + '__why')} IS NOT NULL" for c in clears]
                       + [_ident(c + "__nc") for c in ip_cols] + ([f"({also})"] if also else []))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _cand_events AS SELECT {', '.join(keep)} FROM _nd_events WHERE {cand}")
    for c in ip_cols:
        _add_to_ipmap(con, f"SELECT {_ident(c)} FROM _cand_events WHERE {_ident(c + '__nc')}")
    # an IP the map cannot normalise is malformed: its reason (and value) as _normalise gives them
    joins = " ".join(f"LEFT JOIN _ipmap _ip_{c} ON s.{_ident(c + '__nc')} AND _ip_{c}.raw = s.{_ident(c)}"
                     for c in ip_cols)
    repl = ", ".join(
        f"CASE WHEN s.{_ident(c + '__why')} IS NOT NULL THEN s.{_ident(c + '__why')} "
        f"WHEN s.{_ident(c + '__nc')} AND _ip_{c}.norm IS NULL THEN {_lit(R_IP)} END AS {_ident(c + '__why')}, "
        f"CASE WHEN s.{_ident(c + '__nc')} THEN _ip_{c}.norm ELSE s.{_ident(c)} END AS {_ident(c)}"
        for c in ip_cols)
    con.execute(f"CREATE OR REPLACE TEMP VIEW _ns0_events AS SELECT s.* REPLACE ({repl}) FROM _cand_events s {joins}")
    _first_problem(con, "_ns_events", "_ns0_events", "events")


def _clean_select(table: str, parsed: str, where: str = "TRUE") -> str:
    """SELECT writing the typed ``table`` from its parsed values ``parsed`` when every row is accepted.

    For an accepted row each typed column equals its parsed value ``c__v``: the required
    columns have no reason, and an optional text, code or token count is NULL exactly when
    its reason is set. An optional timestamp can be out of range and still parsed, and an
    optional IP parsed without look-ups is blank text, not NULL, so tables with either
    (accounts, payments) are refused.
    """
    kinds = _KINDS[table]
    if any(k in ("ts", "ip") and c not in REQUIRED_COLUMNS[table] for c, k in kinds.items()):
        raise ValueError(f"table {table!r}: an optional timestamp or IP needs its reason checked")
    cols = ", ".join(f"CAST({_ident(c + '__v')} AS {_SQL_TYPE.get(k, 'VARCHAR')}) AS {_ident(c)}" for c, k in kinds.items())
    if table == "events":
        cols += f", hash(CAST({_ident('prompt__v')} AS VARCHAR)) AS {PROMPT_HASH}"
    return f"SELECT {cols}, _rec FROM {parsed}" + ("" if where == "TRUE" else f" WHERE {where}")


def _create_in_file_order(con, name: str, select: str, stream: bool, parallel: bool = False) -> None:
    """Create the persistent table ``name`` from ``select`` (whose last column is ``_rec``), in ``_rec`` order.

    Small tables are sorted. Sorting the events would hold every prompt once more, so with
    ``stream`` they are written as they are read: DuckDB keeps the scan order on all threads
    only for plans without joins (``parallel``), and through hash joins only on one thread,
    so such a plan runs on one (the other passes use all). One streaming check of ``_rec``
    confirms the order, and the table is sorted only if it fails; ``_rec`` is then dropped
    (no rewrite: the other columns are shared). Columns are written with ZSTD: as fast as
    uncompressed writes and about six times smaller on prompt text (DuckDB's own choice,
    analysing every method, is twice as slow).
    """
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    _set(con, force_compression="zstd")
    try:
        if stream and parallel:
            con.execute(f"CREATE OR REPLACE TABLE {name} AS {select}")
        elif stream:
            _set(con, threads="1")
            try:
                con.execute(f"CREATE OR REPLACE TABLE {name} AS {select}")
            finally:
                _set(con, threads=str(threads))
        if stream:
            out_of_order = con.execute(
                f"SELECT count(*) FROM (SELECT _rec, lag(_rec) OVER () AS _prev FROM {name}) WHERE _rec <= _prev"
            ).fetchone()[0]
        else:
            con.execute(f"CREATE OR REPLACE TABLE {name} AS {select} ORDER BY _rec")
            out_of_order = 0
        if out_of_order:  # pragma: no cover - DuckDB keeps single-threaded scans in order
            con.execute(f"CREATE OR REPLACE TABLE _sorted_{name} AS SELECT * FROM {name} ORDER BY _rec")
            con.execute(f"DROP TABLE {name}")
            con.execute(f"ALTER TABLE _sorted_{name} RENAME TO {name}")
        con.execute(f"ALTER TABLE {name} DROP COLUMN _rec")
    finally:
        _set(con, force_compression="auto")


def _drop_intermediates(con) -> None:
    """Drop the temporary working tables and views; keep the views ``_raw_<table>``."""
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal "
                        "AND starts_with(view_name, '_') AND NOT starts_with(view_name, '_raw_') "
                        "ORDER BY view_name").fetchall()
    for (name,) in views:
        con.execute(f"DROP VIEW IF EXISTS temp.{_ident(name)}")
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary AND starts_with(table_name, '_') "
                         "AND NOT starts_with(table_name, '_raw_') ORDER BY table_name").fetchall()
    for (name,) in tables:
        con.execute(f"DROP TABLE IF EXISTS temp.{_ident(name)}")


def _fill_lines(table: str, path: Path, fmt: str, df: pd.DataFrame) -> pd.DataFrame:
    """Compute the ``line`` column (and the line inside duplicate reasons) of one table's rejects."""
    df = df.copy()

    def ints(col):
        return pd.to_numeric(df[col], errors="coerce").fillna(-1).astype(np.int64).to_numpy()

    rec, recno, ref_rec = ints("_rec"), ints("_recno"), ints("ref_rec")
    if fmt == "csv":
        both = np.concatenate((rec, ref_rec))
        err_lines, rec_lines = _map_csv_lines(path, recno[recno >= 0], both[both >= 0])
        lines_all = np.full(both.size, -1, dtype=np.int64)
        lines_all[both >= 0] = rec_lines
        line = lines_all[: rec.size]
        ref = lines_all[rec.size:]
        line[recno >= 0] = err_lines
    else:
        line = np.where(recno >= 0, recno, ints("_line"))
        ref = ints("ref_line")
    df["line"] = line
    dup = (df["reason"] == "__dup__").to_numpy()
    if dup.any():
        df.loc[dup, "reason"] = [R_DUP.format(int(r)) for r in ref[dup]]
    return df


def _finish_rejects(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        out = pd.DataFrame({c: pd.Series([], dtype=object) for c in REJECT_COLUMNS})
        out["line"] = out["line"].astype("int64")
        return out
    df = pd.concat(frames, ignore_index=True)
    df = df.rename(columns={"col": "column"})
    df["column"] = df["column"].fillna("").astype(object)
    df["value"] = [("" if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)[:VALUE_MAX_CHARS])
                   for v in df["value"]]
    df["_t"] = df["table"].map({t: i for i, t in enumerate(TABLES)})
    order = {t: {c: i for i, c in enumerate(("",) + COLUMNS[t])} for t in TABLES}
    df["_c"] = [order[t].get(c, 99) for t, c in zip(df["table"], df["column"])]
    df = df.sort_values(["_t", "line", "_c", "reason"], kind="mergesort").reset_index(drop=True)
    out = df[list(REJECT_COLUMNS)].copy()
    out["line"] = out["line"].astype("int64")
    for c in ("table", "file", "column", "reason", "action"):
        out[c] = out[c].astype(object)
    return out
