"""Tests for graphbuild.bundle: reading, typing and validating input bundles."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphbuild.bundle import (DEFAULT_MEMORY_LIMIT, LABELS_TABLE, MIN_MEMORY_LIMIT, Bundle, default_memory_limit,
                               load_bundle)
from graphbuild.errors import BundleError, ConfigError
from graphbuild.ipaddr import normalize_ip
from graphbuild.schema import COLUMNS, REJECT_COLUMNS, TABLES

NOW = datetime(2026, 6, 1)
FORMATS = ["csv", "csv.gz", "parquet", "jsonl", "jsonl.gz"]


# --- writing bundles ---------------------------------------------------------------------------


def write_table(folder: Path, table: str, rows: list[dict], fmt: str, columns: list[str] | None = None) -> Path:
    """Write rows (dicts) as one table file in ``fmt``; None is an empty cell / JSON null."""
    folder.mkdir(parents=True, exist_ok=True)
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    path = folder / f"{table}.{fmt}"
    if fmt.startswith("csv"):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
        data = buf.getvalue().encode()
    elif fmt.startswith("jsonl"):
        data = "".join(json.dumps({c: r[c] for c in columns if c in r}) + "\n" for r in rows).encode()
    elif fmt == "parquet":
        tab = pa.table({c: pa.array([None if r.get(c) is None else str(r[c]) for r in rows], pa.string())
                        for c in columns})
        pq.write_table(tab, path)
        return path
    else:  # pragma: no cover
        raise ValueError(fmt)
    path.write_bytes(gzip.compress(data, mtime=0) if fmt.endswith(".gz") else data)
    return path


def write_text(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.encode())
    return path


def check_invariant(b: Bundle) -> None:
    """rows_read = accepted + rejected + outside_window, and the rejects agree with counts."""
    assert list(b.rejects.columns) == list(REJECT_COLUMNS)
    for t in TABLES:
        c = b.counts[t]
        assert c["rows_read"] == c["rows_accepted"] + c["rows_rejected"] + c["outside_window"], (t, c)
        mine = b.rejects[b.rejects["table"] == t]
        assert (mine["action"] == "rejected").sum() == c["rows_rejected"]
        assert (mine["action"] == "cleared").sum() == c["fields_cleared"]
        typed = LABELS_TABLE if t == "labels" else t
        assert b.con.execute(f"SELECT count(*) FROM {typed}").fetchone()[0] == c["rows_accepted"]


def rejects_list(b: Bundle) -> list[tuple]:
    return [tuple(r) for r in b.rejects[["table", "line", "column", "reason", "action"]].itertuples(index=False)]


# --- one clean world, every format ----------------------------------------------------------------

ACCOUNTS = [
    {"account_id": "a1", "created_at": "2026-01-01T00:00:00Z", "email_domain": "Gmail.com", "country": "us",
     "org_id": "", "signup_ip": "1.2.3.4", "favourite_colour": "blue"},
    {"account_id": " a2 ", "created_at": "2026-01-02 10:00:00+02:00", "email_domain": "acme.io", "country": "DE",
     "org_id": "acme", "signup_ip": "2001:DB8::1", "favourite_colour": None},
    {"account_id": "a3", "created_at": 1767225600, "email_domain": None, "country": None, "org_id": None,
     "signup_ip": "::ffff:10.0.0.1", "favourite_colour": None},
    {"account_id": "a4", "created_at": 1767312000.25, "email_domain": "", "country": "", "org_id": None,
     "signup_ip": "", "favourite_colour": None},
]
EVENTS = [
    {"account_id": "a1", "ts": "2026-01-03T00:00:00Z", "ip": "1.2.3.4", "user_agent": "sdk/1",
     "api_key_id": "k1", "model": "m", "prompt": 'hello\nworld, "quoted"', "prompt_tokens": 10,
     "completion_tokens": 20},
    {"account_id": "a2", "ts": "2026-01-03T00:00:01.5Z", "ip": "::ffff:5.6.7.8", "user_agent": "",
     "api_key_id": None, "model": None, "prompt": "x", "prompt_tokens": "7", "completion_tokens": None},
    {"account_id": "a3", "ts": "2026-01-03 12:00:00", "ip": "2001:0DB8:0000:0000::0001", "user_agent": None,
     "api_key_id": None, "model": None, "prompt": None, "prompt_tokens": None, "completion_tokens": None},
    {"account_id": "a4", "ts": 1767398400, "ip": " 9.9.9.9 ", "user_agent": None, "api_key_id": None,
     "model": None, "prompt": "", "prompt_tokens": "3", "completion_tokens": "4"},
    {"account_id": "a4", "ts": "2026-01-03T05:00:00.123456-05:00", "ip": "9.9.9.9", "user_agent": None,
     "api_key_id": None, "model": None, "prompt": None, "prompt_tokens": None, "completion_tokens": None},
]
PAYMENTS = [
    {"account_id": "a1", "instrument_id": "card-1", "instrument_type": "Prepaid_Card",
     "ts": "2026-01-02T00:00:00Z", "billing_country": "us"},
    {"account_id": "a2", "instrument_id": "card-1", "instrument_type": "prepaid_card", "ts": None,
     "billing_country": None},
]
LABELS = [{"account_id": "a1", "campaign_id": "camp-1"}, {"account_id": "a2", "campaign_id": "camp-1"}]

D = datetime
EXPECTED = {
    "accounts": [
        ("a1", D(2026, 1, 1), "gmail.com", "US", None, "1.2.3.4"),
        ("a2", D(2026, 1, 2, 8), "acme.io", "DE", "acme", "2001:db8::1"),
        ("a3", D(2026, 1, 1), None, None, None, "10.0.0.1"),
        ("a4", D(2026, 1, 2, 0, 0, 0, 250000), None, None, None, None),
    ],
    "events": [
        ("a1", D(2026, 1, 3), "1.2.3.4", "sdk/1", "k1", "m", 'hello\nworld, "quoted"', 10, 20),
        ("a2", D(2026, 1, 3, 0, 0, 1, 500000), "5.6.7.8", None, None, None, "x", 7, None),
        ("a3", D(2026, 1, 3, 12), "2001:db8::1", None, None, None, None, None, None),
        ("a4", D(2026, 1, 3), "9.9.9.9", None, None, None, None, 3, 4),
        ("a4", D(2026, 1, 3, 10, 0, 0, 123456), "9.9.9.9", None, None, None, None, None, None),
    ],
    "payments": [
        ("a1", "card-1", "prepaid_card", D(2026, 1, 2), "US"),
        ("a2", "card-1", "prepaid_card", None, None),
    ],
}


def write_clean(folder: Path, fmt: str) -> Path:
    write_table(folder, "accounts", ACCOUNTS, fmt)
    write_table(folder, "events", EVENTS, fmt)
    write_table(folder, "payments", PAYMENTS, fmt)
    write_table(folder, "labels", LABELS, fmt)
    return folder


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gives_the_same_typed_tables(tmp_path, fmt):
    b = load_bundle(write_clean(tmp_path / fmt, fmt), now=NOW)
    for table, rows in EXPECTED.items():
        cols = "* EXCLUDE (prompt_hash)" if table == "events" else "*"
        assert b.con.execute(f"SELECT {cols} FROM {table}").fetchall() == rows, table
    # the stored prompt key is DuckDB's hash of the typed prompt, NULL prompts included
    assert b.con.execute("SELECT count(*) FROM events WHERE prompt_hash IS DISTINCT FROM hash(prompt)").fetchone()[0] == 0
    assert b.labels().values.tolist() == [["a1", "camp-1"], ["a2", "camp-1"]]
    assert b.rejects.empty
    assert b.has_payments and b.has_labels
    assert set(b.files) == set(TABLES) and b.files["events"].name == f"events.{fmt}"
    assert all(len(h) == 64 for h in b.sha256.values())
    assert b.counts["events"] == {"rows_read": 5, "rows_accepted": 5, "rows_rejected": 0, "fields_cleared": 0,
                                  "outside_window": 0}
    check_invariant(b)


def test_typed_table_schemas(tmp_path):
    b = load_bundle(write_clean(tmp_path, "csv"), now=NOW)
    types = {t: dict(b.con.execute(f"SELECT column_name, data_type FROM information_schema.columns "
                                   f"WHERE table_name = '{t}' ORDER BY ordinal_position").fetchall())
             for t in ("accounts", "events", "payments", LABELS_TABLE)}
    assert types["accounts"] == {"account_id": "VARCHAR", "created_at": "TIMESTAMP", "email_domain": "VARCHAR",
                                 "country": "VARCHAR", "org_id": "VARCHAR", "signup_ip": "VARCHAR"}
    assert types["events"]["ts"] == "TIMESTAMP" and types["events"]["prompt_tokens"] == "BIGINT"
    assert list(types["events"]) == ["account_id", "ts", "ip", "user_agent", "api_key_id", "model", "prompt",
                                     "prompt_tokens", "completion_tokens", "prompt_hash"]
    assert types["events"]["prompt_hash"] == "UBIGINT"
    assert types["payments"]["ts"] == "TIMESTAMP"
    assert list(types[LABELS_TABLE]) == ["account_id", "campaign_id"]
    # detection code cannot pick labels up by its natural name
    assert "labels" not in types and b.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'labels'").fetchone()[0] == 0


def test_unknown_columns_stay_in_the_raw_read_only(tmp_path):
    b = load_bundle(write_clean(tmp_path, "csv"), now=NOW)
    raw_cols = [r[0] for r in b.con.execute("DESCRIBE _raw_accounts").fetchall()]
    assert "favourite_colour" in raw_cols
    typed_cols = [r[0] for r in b.con.execute("DESCRIBE accounts").fetchall()]
    assert "favourite_colour" not in typed_cols


def test_optional_tables_absent_give_empty_tables(tmp_path):
    write_table(tmp_path, "accounts", ACCOUNTS, "csv")
    write_table(tmp_path, "events", EVENTS, "csv")
    b = load_bundle(tmp_path, now=NOW)
    assert not b.has_payments and not b.has_labels
    assert b.con.execute("SELECT count(*) FROM payments").fetchone()[0] == 0
    assert b.labels().empty and list(b.labels().columns) == ["account_id", "campaign_id"]
    assert set(b.files) == {"accounts", "events"}
    check_invariant(b)


def test_column_names_match_case_insensitively_and_in_any_order(tmp_path):
    write_text(tmp_path, "accounts.csv", "Created_At , ACCOUNT_ID\n2026-01-01,a1\n")
    write_text(tmp_path, "events.csv", "ip,ts,account_id\n1.2.3.4,2026-01-02,a1\n")
    b = load_bundle(tmp_path, now=NOW)
    assert b.con.execute("SELECT account_id, created_at FROM accounts").fetchall() == [("a1", D(2026, 1, 1))]
    assert b.con.execute("SELECT account_id, ip FROM events").fetchall() == [("a1", "1.2.3.4")]


# --- timestamps ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("2026-11-02T14:03:11Z", D(2026, 11, 2, 14, 3, 11)),
    ("2026-11-02t14:03:11z", D(2026, 11, 2, 14, 3, 11)),
    ("2026-11-02 14:03:11", D(2026, 11, 2, 14, 3, 11)),
    ("2026-11-02T14:03:11.25", D(2026, 11, 2, 14, 3, 11, 250000)),
    ("2026-11-02T14:03:11.123456789Z", D(2026, 11, 2, 14, 3, 11, 123456)),
    ("2026-11-02T14:03:11+02:00", D(2026, 11, 2, 12, 3, 11)),
    ("2026-11-02T14:03:11+0200", D(2026, 11, 2, 12, 3, 11)),
    ("2026-11-02T14:03:11 -01:30", D(2026, 11, 2, 15, 33, 11)),
    ("2026-11-02", D(2026, 11, 2)),
    ("1793628191", D(2026, 11, 2, 14, 3, 11)),
    ("1793628191.5", D(2026, 11, 2, 14, 3, 11, 500000)),
    ("1.793628191e9", D(2026, 11, 2, 14, 3, 11)),
])
def test_timestamp_forms(tmp_path, text, expected):
    write_text(tmp_path, "accounts.csv", f"account_id,created_at\na1,{text}\n")
    write_text(tmp_path, "events.csv", "account_id,ts,ip\n")
    b = load_bundle(tmp_path, now=D(2027, 1, 1))
    assert b.con.execute("SELECT created_at FROM accounts").fetchall() == [(expected,)]


def test_parquet_native_timestamps_and_numbers(tmp_path):
    aware = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    pq.write_table(pa.table({
        "account_id": ["a1", "a2"],
        "created_at": pa.array([aware, aware], pa.timestamp("us", tz="Europe/Paris")),
    }), tmp_path / "accounts.parquet")
    pq.write_table(pa.table({
        "account_id": ["a1", "a2"],
        "ts": pa.array([datetime(2026, 1, 2, 3), datetime(2026, 1, 2, 4)], pa.timestamp("ms")),
        "ip": ["1.2.3.4", "1.2.3.5"],
        "prompt_tokens": pa.array([5, -1], pa.int64()),
        "completion_tokens": pa.array([2.0, 2.5], pa.float64()),
    }), tmp_path / "events.parquet")
    pq.write_table(pa.table({
        "account_id": ["a1"], "instrument_id": ["c"], "ts": pa.array([1767225600], pa.int64()),
    }), tmp_path / "payments.parquet")
    b = load_bundle(tmp_path, now=NOW)
    assert b.con.execute("SELECT created_at FROM accounts").fetchall() == [(D(2026, 1, 1, 12),)] * 2
    assert b.con.execute("SELECT ts, prompt_tokens, completion_tokens FROM events").fetchall() == [
        (D(2026, 1, 2, 3), 5, 2), (D(2026, 1, 2, 4), None, None)]
    assert b.con.execute("SELECT ts FROM payments").fetchall() == [(D(2026, 1, 1),)]
    assert rejects_list(b) == [
        ("events", 2, "prompt_tokens", "negative token count", "cleared"),
        ("events", 2, "completion_tokens", "unparsable token count", "cleared"),
    ]
    check_invariant(b)


# --- structural errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["accounts", "events"])
def test_missing_required_table_names_expected_files(tmp_path, missing):
    write_clean(tmp_path, "csv")
    (tmp_path / f"{missing}.csv").unlink()
    with pytest.raises(BundleError) as err:
        load_bundle(tmp_path, now=NOW)
    msg = str(err.value)
    assert f"'{missing}'" in msg and f"{missing}.csv" in msg and f"{missing}.parquet" in msg
    assert f"{missing}.jsonl.gz" in msg


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("table, column", [("accounts", "created_at"), ("events", "ip"),
                                           ("payments", "instrument_id"), ("labels", "campaign_id")])
def test_missing_required_column_names_file_and_column(tmp_path, fmt, table, column):
    write_clean(tmp_path, "csv")
    (tmp_path / f"{table}.csv").unlink()
    rows = {"accounts": ACCOUNTS, "events": EVENTS, "payments": PAYMENTS, "labels": LABELS}[table]
    write_table(tmp_path, table, [{k: v for k, v in r.items() if k != column} for r in rows], fmt)
    with pytest.raises(BundleError) as err:
        load_bundle(tmp_path, now=NOW)
    msg = str(err.value)
    assert f"{table}.{fmt}" in msg and f"'{column}'" in msg


def test_two_files_for_one_table(tmp_path):
    write_clean(tmp_path, "csv")
    write_table(tmp_path, "events", EVENTS, "parquet")
    with pytest.raises(BundleError) as err:
        load_bundle(tmp_path, now=NOW)
    assert "events.csv" in str(err.value) and "events.parquet" in str(err.value)


def test_not_a_folder_and_empty_csv(tmp_path):
    with pytest.raises(BundleError, match="not a folder"):
        load_bundle(tmp_path / "nope")
    write_clean(tmp_path, "csv")
    write_text(tmp_path, "events.csv", "")
    with pytest.raises(BundleError, match="events.csv: empty file"):
        load_bundle(tmp_path, now=NOW)


def test_unreadable_parquet_is_a_bundle_error(tmp_path):
    write_clean(tmp_path, "csv")
    (tmp_path / "events.csv").unlink()
    write_text(tmp_path, "events.parquet", "this is not parquet")
    with pytest.raises(BundleError, match="events.parquet"):
        load_bundle(tmp_path, now=NOW)


def test_other_files_are_ignored(tmp_path):
    write_clean(tmp_path, "csv")
    write_text(tmp_path, "notes.csv", "a,b\n1,2\n")
    write_text(tmp_path, "README.txt", "hello")
    b = load_bundle(tmp_path, now=NOW)
    assert set(b.files) == set(TABLES)


# --- rejects with exact lines --------------------------------------------------------------------

BAD_ACCOUNTS_CSV = (
    "account_id,created_at,signup_ip\n"           # 1
    "a1,2026-01-01T00:00:00Z,1.2.3.4\n"           # 2
    "a2,2026-01-01T00:00:00Z,999.1.1.1\n"         # 3 cleared signup_ip
    ",2026-01-01T00:00:00Z,\n"                    # 4 missing account_id
    "a3,not-a-date,\n"                            # 5 unparsable created_at
    "a1,2026-01-02T00:00:00Z,\n"                  # 6 duplicate of line 2
    "a4,1990-01-01T00:00:00Z,\n"                  # 7 before 2000
    "a5,2026-06-03T00:00:00Z,\n"                  # 8 more than a day after now
    "a6,2026-06-01T23:00:00Z,\n"                  # 9 within the grace day: fine
    "a7,,\n"                                      # 10 missing created_at
)
BAD_EVENTS_CSV = (
    "account_id,ts,ip,prompt,prompt_tokens,completion_tokens\n"   # 1
    'a1,2026-01-03T00:00:00Z,1.2.3.4,"line one\n'                 # 2
    'line two, with comma",5,6\n'                                 # 3
    "a1,2026-01-03T00:00:00Z,1.2.3.4.5,x,,\n"                     # 4 malformed ip
    "a2,2026-01-03T00:00:00Z,,x,,\n"                              # 5 missing ip
    "ghost,2026-01-03T00:00:00Z,1.2.3.4,x,,\n"                    # 6 unknown account
    "a3,2026-01-03T00:00:00Z,1.2.3.4,x,,\n"                       # 7 account row was rejected
    'a2,2026-01-03T00:00:00Z,1.2.3.4,"a ""quoted""\n'             # 8
    'multi-line",-4,abc\n'                                        # 9 kept, two fields cleared
    "a2,2026-01-03T00:00:00Z,1.2.3.4,too,many,fields,here\n"      # 10 too many fields
    "\n"                                                          # 11 blank: not a row
    "a2,1767398400,1.2.3.4,,,\n"                                  # 12 fine
    "a2,2026-01-03T00:00:00Z,1.2.3.4\n"                           # 13 too few fields
    "a6,2026-13-03T00:00:00Z,1.2.3.4,,,\n"                        # 14 unparsable ts
    'a2,2026-01-03T00:00:00Z,1.2.3.4,"unterminated'               # 15 truncated last line
)
EXPECTED_CSV_REJECTS = [
    ("accounts", 3, "signup_ip", "malformed IP address", "cleared"),
    ("accounts", 4, "account_id", "missing value", "rejected"),
    ("accounts", 5, "created_at", "unparsable timestamp", "rejected"),
    ("accounts", 6, "account_id", "duplicate account_id, first at line 2", "rejected"),
    ("accounts", 7, "created_at", "timestamp before 2000-01-01", "rejected"),
    ("accounts", 8, "created_at", "timestamp more than 1 day after now", "rejected"),
    ("accounts", 10, "created_at", "missing value", "rejected"),
    ("events", 4, "ip", "malformed IP address", "rejected"),
    ("events", 5, "ip", "missing value", "rejected"),
    ("events", 6, "account_id", "account_id not in accounts", "rejected"),
    ("events", 7, "account_id", "account_id not in accounts", "rejected"),
    ("events", 8, "prompt_tokens", "negative token count", "cleared"),
    ("events", 8, "completion_tokens", "unparsable token count", "cleared"),
    ("events", 10, "", "malformed CSV row: too many fields", "rejected"),
    ("events", 13, "", "malformed CSV row: too few fields", "rejected"),
    ("events", 14, "ts", "unparsable timestamp", "rejected"),
    ("events", 15, "", "malformed CSV row: unterminated or stray quote", "rejected"),
]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("gz", [False, True])
def test_csv_rejects_exact_lines_and_reasons(tmp_path, newline, gz):
    for name, text in (("accounts.csv", BAD_ACCOUNTS_CSV), ("events.csv", BAD_EVENTS_CSV)):
        data = text.replace("\n", newline).encode()
        if gz:
            (tmp_path / (name + ".gz")).write_bytes(gzip.compress(data, mtime=0))
        else:
            (tmp_path / name).write_bytes(data)
    b = load_bundle(tmp_path, now=NOW)
    assert rejects_list(b) == EXPECTED_CSV_REJECTS
    assert b.counts["accounts"] == {"rows_read": 9, "rows_accepted": 3, "rows_rejected": 6, "fields_cleared": 1,
                                    "outside_window": 0}
    assert b.counts["events"] == {"rows_read": 11, "rows_accepted": 3, "rows_rejected": 8, "fields_cleared": 2,
                                  "outside_window": 0}
    assert b.con.execute("SELECT account_id FROM accounts").fetchall() == [("a1",), ("a2",), ("a6",)]
    assert b.con.execute("SELECT prompt, prompt_tokens FROM events").fetchall() == [
        ("line one" + newline + "line two, with comma", 5), ('a "quoted"' + newline + "multi-line", None),
        (None, None)]
    rej = b.rejects.set_index(["table", "line", "column"])
    assert rej.loc[("events", 4, "ip"), "value"] == "1.2.3.4.5"
    assert rej.loc[("events", 6, "account_id"), "value"] == "ghost"
    assert rej.loc[("accounts", 4, "account_id"), "value"] == ""
    assert rej.loc[("events", 10, ""), "value"].startswith("a2,2026-01-03T00:00:00Z,1.2.3.4,too,many")
    assert set(b.rejects["file"]) == ({"accounts.csv.gz", "events.csv.gz"} if gz else {"accounts.csv", "events.csv"})
    check_invariant(b)


def test_csv_reject_line_after_many_multiline_records(tmp_path):
    """Line numbers stay exact far into a file whose records span several lines."""
    rows = ["account_id,ts,ip,prompt"]
    line = 2
    for i in range(3000):
        rows.append(f'a1,2026-01-03T00:00:00Z,1.2.3.{i % 250},"p{i}\nsecond\nthird"')
        line += 3
    rows.append("a1,2026-01-03T00:00:00Z,bad-ip,x")
    write_text(tmp_path, "accounts.csv", "account_id,created_at\na1,2026-01-01\n")
    write_text(tmp_path, "events.csv", "\n".join(rows) + "\n")
    b = load_bundle(tmp_path, now=NOW)
    assert rejects_list(b) == [("events", line, "ip", "malformed IP address", "rejected")]
    check_invariant(b)


def test_invalid_utf8_row_is_rejected(tmp_path):
    (tmp_path / "accounts.csv").write_bytes(b"account_id,created_at\na1,2026-01-01\na\xff2,2026-01-01\na3,2026-01-01\n")
    write_text(tmp_path, "events.csv", "account_id,ts,ip\n")
    b = load_bundle(tmp_path, now=NOW)
    assert rejects_list(b) == [("accounts", 3, "", "malformed CSV row: not valid UTF-8", "rejected")]
    check_invariant(b)


BAD_EVENTS_JSONL = [
    '{"account_id": "a1", "ts": "2026-01-03T00:00:00Z", "ip": "1.2.3.4", "prompt": "two\\nlines"}',  # 1
    '{"account_id": "a1", "ts": "2026-01-03T00:00:00Z", "ip": "1.2.3.4.5"}',                        # 2 bad ip
    'this is not json',                                                                             # 3
    '',                                                                                             # 4 blank
    '[1, 2]',                                                                                       # 5
    '{"account_id": "ghost", "ts": 1767398400, "ip": "1.2.3.4"}',                                   # 6 unknown
    '{"account_id": "a2", "ip": "1.2.3.4"}',                                                        # 7 no ts
    '{"account_id": "a2", "ts": "2026-01-03T00:00:00Z", "ip": "1.2.3.4", "prompt_tokens": -1}',     # 8 cleared
    '{"account_id": "a2", "ts": "2026-01-03T00:00:00Z", "ip": "1.2.\x01"}',                         # 9 control char
    '{"account_id": "a2", "ts": "2026-01-03T00:00:0',                                               # 10 truncated
]


@pytest.mark.parametrize("gz", [False, True])
def test_jsonl_rejects_exact_lines(tmp_path, gz):
    write_text(tmp_path, "accounts.csv", "account_id,created_at\na1,2026-01-01\na2,2026-01-01\n")
    data = "\n".join(BAD_EVENTS_JSONL).encode()
    name = "events.jsonl" + (".gz" if gz else "")
    (tmp_path / name).write_bytes(gzip.compress(data, mtime=0) if gz else data)
    b = load_bundle(tmp_path, now=NOW)
    assert rejects_list(b) == [
        ("events", 2, "ip", "malformed IP address", "rejected"),
        ("events", 3, "", "not valid JSON", "rejected"),
        ("events", 5, "", "not a JSON object", "rejected"),
        ("events", 6, "account_id", "account_id not in accounts", "rejected"),
        ("events", 7, "ts", "missing value", "rejected"),
        ("events", 8, "prompt_tokens", "negative token count", "cleared"),
        ("events", 9, "", "not valid JSON", "rejected"),
        ("events", 10, "", "not valid JSON", "rejected"),
    ]
    assert b.counts["events"] == {"rows_read": 9, "rows_accepted": 2, "rows_rejected": 7, "fields_cleared": 1,
                                  "outside_window": 0}
    assert b.con.execute("SELECT prompt FROM events").fetchall() == [("two\nlines",), (None,)]
    check_invariant(b)


def test_parquet_rejects_use_row_numbers(tmp_path):
    write_table(tmp_path, "accounts", [{"account_id": "a1", "created_at": "2026-01-01"},
                                       {"account_id": "a1", "created_at": "2026-01-02"},
                                       {"account_id": None, "created_at": "2026-01-02"}], "parquet")
    write_table(tmp_path, "events", [{"account_id": "a1", "ts": "2026-01-03", "ip": "x"},
                                     {"account_id": "a1", "ts": "2026-01-03", "ip": "1.1.1.1"},
                                     {"account_id": "zz", "ts": "2026-01-03", "ip": "1.1.1.1"}], "parquet")
    b = load_bundle(tmp_path, now=NOW)
    assert rejects_list(b) == [
        ("accounts", 2, "account_id", "duplicate account_id, first at line 1", "rejected"),
        ("accounts", 3, "account_id", "missing value", "rejected"),
        ("events", 1, "ip", "malformed IP address", "rejected"),
        ("events", 3, "account_id", "account_id not in accounts", "rejected"),
    ]
    check_invariant(b)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_ip_verdicts_in_the_reject_pass(tmp_path, fmt):
    """IPs judged with the reject candidates: reason order, values, cleared fields, an IP also in accounts."""
    write_table(tmp_path, "accounts", [{"account_id": "a1", "created_at": "2026-01-01", "signup_ip": "2001:DB8::1"},
                                       {"account_id": "a2", "created_at": "2026-01-01", "signup_ip": "2001:db8::9"}], fmt)
    ts = "2026-01-03T00:00:00Z"
    write_table(tmp_path, "events", [
        {"account_id": "a1", "ts": ts, "ip": "2001:DB8::1", "prompt_tokens": "1"},         # rewritten, also in accounts
        {"account_id": "ghost", "ts": ts, "ip": "300.1.1.1", "prompt_tokens": "2"},        # the IP comes before the account
        {"account_id": "a1", "ts": "1990-01-01", "ip": "bad", "prompt_tokens": "3"},       # the timestamp comes before the IP
        {"account_id": "a2", "ts": ts, "ip": " ::ffff:1.2.3.4 ", "prompt_tokens": "-1"},   # kept, token count cleared
        {"account_id": "a2", "ts": ts, "ip": "nope", "prompt_tokens": "-1"},               # rejected: no cleared entry
        {"account_id": "ghost", "ts": ts, "ip": "2001:db8::2", "prompt_tokens": "6"},      # canonical IPv6, unknown account
        {"account_id": "a1", "ts": ts, "ip": " ", "prompt_tokens": "7"},                    # blank: missing
        {"account_id": "a2", "ts": ts, "ip": "2001:db8::9", "prompt_tokens": "8"},         # canonical IPv6, kept
        {"account_id": "a1", "ts": ts, "ip": "10.0.0.1", "prompt_tokens": "x"},            # kept, token count cleared
    ], fmt)
    b = load_bundle(tmp_path, now=NOW)
    assert [tuple(r) for r in b.rejects[["line", "column", "value", "reason", "action"]].itertuples(index=False)] == [
        (r + (fmt == "csv"), c, v, why, act) for r, c, v, why, act in [
            (2, "ip", "300.1.1.1", "malformed IP address", "rejected"),
            (3, "ts", "1990-01-01", "timestamp before 2000-01-01", "rejected"),
            (4, "prompt_tokens", "-1", "negative token count", "cleared"),
            (5, "ip", "nope", "malformed IP address", "rejected"),
            (6, "account_id", "ghost", "account_id not in accounts", "rejected"),
            (7, "ip", " ", "missing value", "rejected"),
            (9, "prompt_tokens", "x", "unparsable token count", "cleared"),
        ]]
    assert b.con.execute("SELECT account_id, ip, prompt_tokens FROM events").fetchall() == [
        ("a1", "2001:db8::1", 1), ("a2", "1.2.3.4", None), ("a2", "2001:db8::9", 8), ("a1", "10.0.0.1", None)]
    assert b.con.execute("SELECT signup_ip FROM accounts").fetchall() == [("2001:db8::1",), ("2001:db8::9",)]
    check_invariant(b)


@pytest.mark.parametrize("fmt", FORMATS)
def test_payments_and_labels_rejects(tmp_path, fmt):
    write_table(tmp_path, "accounts", [{"account_id": "a1", "created_at": "2026-01-01"},
                                       {"account_id": "a2", "created_at": "2026-01-01"}], fmt)
    write_table(tmp_path, "events", [{"account_id": "a1", "ts": "2026-01-03", "ip": "1.1.1.1"}], fmt)
    write_table(tmp_path, "payments", [
        {"account_id": "a1", "instrument_id": "c1", "ts": "2026-01-02"},
        {"account_id": "a1", "instrument_id": "", "ts": "2026-01-02"},
        {"account_id": "a2", "instrument_id": "c1", "ts": "yesterday"},
        {"account_id": "a3", "instrument_id": "c1", "ts": None},
        {"account_id": "a2", "instrument_id": "c2", "ts": "2099-01-01"},
    ], fmt)
    write_table(tmp_path, "labels", [{"account_id": "a1", "campaign_id": "k"},
                                     {"account_id": "a1", "campaign_id": "k2"},
                                     {"account_id": "a9", "campaign_id": "k"},
                                     {"account_id": "a2", "campaign_id": None}], fmt)
    b = load_bundle(tmp_path, now=NOW)
    off = 1 if fmt.startswith("csv") else 0   # the CSV header is line 1
    assert rejects_list(b) == [
        ("payments", 2 + off, "instrument_id", "missing value", "rejected"),
        ("payments", 3 + off, "ts", "unparsable timestamp", "cleared"),
        ("payments", 4 + off, "account_id", "account_id not in accounts", "rejected"),
        ("payments", 5 + off, "ts", "timestamp more than 1 day after now", "cleared"),
        ("labels", 2 + off, "account_id", f"duplicate account_id, first at line {1 + off}", "rejected"),
        ("labels", 3 + off, "account_id", "account_id not in accounts", "rejected"),
        ("labels", 4 + off, "campaign_id", "missing value", "rejected"),
    ]
    assert b.con.execute("SELECT account_id, instrument_id, ts FROM payments").fetchall() == [
        ("a1", "c1", D(2026, 1, 2)), ("a2", "c1", None), ("a2", "c2", None)]
    assert b.labels().values.tolist() == [["a1", "k"]]
    check_invariant(b)


def test_long_values_are_truncated(tmp_path):
    write_text(tmp_path, "accounts.csv", "account_id,created_at\na1,2026-01-01\n")
    write_text(tmp_path, "events.csv", f"account_id,ts,ip\na1,{'9' * 500},1.1.1.1\n")
    b = load_bundle(tmp_path, now=NOW)
    assert b.rejects["value"].tolist() == ["9" * 200]
    assert b.rejects["reason"].tolist() == ["timestamp more than 1 day after now"]


# --- window ------------------------------------------------------------------------------------------


def window_bundle(folder: Path) -> Path:
    write_table(folder, "accounts", [
        {"account_id": "old_active", "created_at": "2026-01-01"},    # created before, events inside
        {"account_id": "old_quiet", "created_at": "2026-01-01"},     # created before, no events inside
        {"account_id": "new", "created_at": "2026-02-05"},           # created inside
        {"account_id": "late", "created_at": "2026-03-01"},          # created after until
    ], "csv")
    write_table(folder, "events", [
        {"account_id": "old_active", "ts": "2026-02-02T00:00:00Z", "ip": "1.1.1.1"},
        {"account_id": "old_active", "ts": "2026-01-15T00:00:00Z", "ip": "1.1.1.1"},   # before since
        {"account_id": "old_quiet", "ts": "2026-01-20T00:00:00Z", "ip": "1.1.1.1"},    # before since
        {"account_id": "new", "ts": "2026-02-10T00:00:00Z", "ip": "1.1.1.1"},
        {"account_id": "new", "ts": "2026-03-01T00:00:00Z", "ip": "1.1.1.1"},          # == until: out
        {"account_id": "late", "ts": "2026-03-02T00:00:00Z", "ip": "1.1.1.1"},
        {"account_id": "ghost", "ts": "2026-02-02T00:00:00Z", "ip": "1.1.1.1"},        # reject, not window
    ], "csv")
    write_table(folder, "payments", [{"account_id": "old_quiet", "instrument_id": "c"},
                                     {"account_id": "new", "instrument_id": "c"}], "csv")
    write_table(folder, "labels", [{"account_id": "late", "campaign_id": "x"},
                                   {"account_id": "new", "campaign_id": "x"}], "csv")
    return folder


@pytest.mark.parametrize("since, until", [
    ("2026-02-01", "2026-03-01"),
    (datetime(2026, 2, 1), datetime(2026, 3, 1)),
    ("2026-02-01T01:00:00+01:00", datetime(2026, 3, 1, tzinfo=timezone.utc)),
])
def test_window_filtering(tmp_path, since, until):
    b = load_bundle(window_bundle(tmp_path), since=since, until=until, now=NOW)
    assert b.con.execute("SELECT account_id FROM accounts").fetchall() == [("old_active",), ("new",)]
    assert b.con.execute("SELECT account_id, ts FROM events").fetchall() == [
        ("old_active", D(2026, 2, 2)), ("new", D(2026, 2, 10))]
    assert b.con.execute("SELECT account_id FROM payments").fetchall() == [("new",)]
    assert b.labels().values.tolist() == [["new", "x"]]
    assert b.counts["accounts"]["outside_window"] == 2
    assert b.counts["events"] == {"rows_read": 7, "rows_accepted": 2, "rows_rejected": 1, "fields_cleared": 0,
                                  "outside_window": 4}
    assert b.counts["payments"]["outside_window"] == 1
    assert b.counts["labels"]["outside_window"] == 1
    assert rejects_list(b) == [("events", 8, "account_id", "account_id not in accounts", "rejected")]
    check_invariant(b)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("late_event", [False, True])
def test_window_on_a_clean_bundle(tmp_path, fmt, late_event):
    """No rejects: the events are written without look-ups unless an account created after until has one inside."""
    write_table(tmp_path, "accounts", [
        {"account_id": "old_active", "created_at": "2026-01-01"}, {"account_id": "old_quiet", "created_at": "2026-01-01"},
        {"account_id": "new", "created_at": "2026-02-05"}, {"account_id": "late", "created_at": "2026-03-01"}], fmt)
    events = [("old_active", "2026-02-02"), ("old_active", "2026-01-15"), ("old_quiet", "2026-01-20"),
              ("new", "2026-02-10"), ("new", "2026-03-01"), ("late", "2026-03-02")]
    if late_event:
        events.insert(1, ("late", "2026-02-20"))   # inside the window, but its account is created after until
    write_table(tmp_path, "events", [{"account_id": a, "ts": t + "T00:00:00Z", "ip": "2001:db8::1"} for a, t in events], fmt)
    write_table(tmp_path, "payments", [{"account_id": "old_quiet", "instrument_id": "c"},
                                       {"account_id": "new", "instrument_id": "c"}], fmt)
    write_table(tmp_path, "labels", [{"account_id": "late", "campaign_id": "x"}, {"account_id": "new", "campaign_id": "x"}], fmt)

    def load(**win):
        b = load_bundle(tmp_path, now=NOW, **win)
        check_invariant(b)
        assert len(b.rejects) == 0
        return ([r[0] for r in b.con.execute("SELECT account_id FROM accounts").fetchall()],
                [(a, t.strftime("%m-%d")) for a, t in b.con.execute("SELECT account_id, ts FROM events").fetchall()],
                [r[0] for r in b.con.execute("SELECT account_id FROM payments").fetchall()],
                b.labels()["account_id"].tolist(), b.counts["events"]["outside_window"])

    n = len(events)
    assert load(since="2026-02-01", until="2026-03-01") == (
        ["old_active", "new"], [("old_active", "02-02"), ("new", "02-10")], ["new"], ["new"], n - 2)
    assert load(since="2026-02-05") == (
        ["new", "late"], [("late", "02-20")] * late_event + [("new", "02-10"), ("new", "03-01"), ("late", "03-02")],
        ["new"], ["late", "new"], 3)
    assert load(until="2026-02-01") == (
        ["old_active", "old_quiet"], [("old_active", "01-15"), ("old_quiet", "01-20")], ["old_quiet"], [], n - 2)


def test_window_open_ended(tmp_path):
    b = load_bundle(window_bundle(tmp_path), since="2026-02-05", now=NOW)
    assert b.con.execute("SELECT account_id FROM accounts").fetchall() == [("new",), ("late",)]
    b = load_bundle(window_bundle(tmp_path), until="2026-02-01", now=NOW)
    assert b.con.execute("SELECT account_id FROM accounts ORDER BY 1").fetchall() == [
        ("old_active",), ("old_quiet",)]
    check_invariant(b)
    with pytest.raises(BundleError, match="since"):
        load_bundle(tmp_path, since="2026-03-01", until="2026-02-01")
    with pytest.raises(BundleError, match="since"):
        load_bundle(tmp_path, since="last tuesday")


# --- determinism, database, IPs ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_deterministic(tmp_path, fmt):
    write_table(tmp_path, "accounts", ACCOUNTS + ACCOUNTS, fmt)
    write_table(tmp_path, "events", EVENTS * 50 + [{"account_id": "x", "ts": "bad", "ip": "y"}] * 20, fmt)
    a = load_bundle(tmp_path, now=NOW)
    b = load_bundle(tmp_path, now=NOW)
    assert a.rejects.equals(b.rejects) and len(a.rejects) == 24
    assert a.counts == b.counts and a.sha256 == b.sha256
    for t in ("accounts", "events"):
        assert a.con.execute(f"SELECT * FROM {t}").fetchall() == b.con.execute(f"SELECT * FROM {t}").fetchall()


def test_database_argument_and_close(tmp_path):
    db = tmp_path / "work.duckdb"
    b = load_bundle(write_clean(tmp_path / "b", "csv"), now=NOW, database=db)
    assert db.exists()
    assert b.con.cursor().execute("SELECT count(*) FROM events").fetchone()[0] == 5
    b.close()
    b2 = load_bundle(tmp_path / "b", now=NOW)
    tmp = b2._tmpdir
    assert tmp is not None and tmp.exists()
    b2.close()
    assert not tmp.exists()


@pytest.mark.parametrize("text, expected", [
    ("1.2.3.4", "1.2.3.4"), (" 10.0.0.1 ", "10.0.0.1"), ("2001:DB8:0:0::1", "2001:db8::1"),
    ("::ffff:1.2.3.4", "1.2.3.4"), ("::1", "::1"), ("01.2.3.4", None), ("1.2.3.4:80", None),
    ("256.1.1.1", None), ("[::1]", None), ("10.0.0.0/8", None), ("", None), (None, None), ("abc", None),
])
def test_normalize_ip(text, expected):
    assert normalize_ip(text) == expected


def test_progress_flag_does_not_break(tmp_path):
    b = load_bundle(write_clean(tmp_path, "csv"), now=NOW, progress=True)
    assert b.counts["events"]["rows_accepted"] == 5


def test_tabs_and_spaces_are_trimmed_and_blank_text_is_null(tmp_path):
    write_text(tmp_path, "accounts.csv", "account_id,created_at,org_id\n\ta1 ,\t2026-01-01 , \t\n")
    write_text(tmp_path, "events.csv", 'account_id,ts,ip,prompt,model\na1,2026-01-02,\t1.1.1.1 ,"\t\n ",\t m1\n')
    b = load_bundle(tmp_path, now=NOW)
    assert b.con.execute("SELECT account_id, created_at, org_id FROM accounts").fetchall() == [
        ("a1", D(2026, 1, 1), None)]
    assert b.con.execute("SELECT account_id, ip, prompt, model FROM events").fetchall() == [
        ("a1", "1.1.1.1", None, "\t m1")]
    assert b.rejects.empty


def test_jsonl_keys_match_case_insensitively_and_unknown_keys_stay_raw(tmp_path):
    write_text(tmp_path, "accounts.jsonl", '{"Account_ID": "a1", "CREATED_AT": "2026-01-01", "tier": {"x": 1}}\n')
    write_text(tmp_path, "events.jsonl", '{"account_id": "a1", "ts": 1767312000, "ip": "1.1.1.1", "n": [1]}\n')
    b = load_bundle(tmp_path, now=NOW)
    assert b.con.execute("SELECT account_id, created_at FROM accounts").fetchall() == [("a1", D(2026, 1, 1))]
    assert b.con.execute("SELECT json_extract_string(_json, '$.tier.x') FROM _raw_accounts").fetchall() == [("1",)]
    assert b.con.execute("SELECT ts FROM events").fetchall() == [(D(2026, 1, 2),)]


def test_csv_bom_and_a_header_spanning_two_lines(tmp_path):
    (tmp_path / "accounts.csv").write_bytes(
        '\ufeff"account_id","note\nmore",created_at\na1,x,2026-01-01\na2,x,bad\n'.encode())
    write_text(tmp_path, "events.csv", "account_id,ts,ip\na1,2026-01-02,1.1.1.1\n")
    b = load_bundle(tmp_path, now=NOW)
    assert rejects_list(b) == [("accounts", 4, "created_at", "unparsable timestamp", "rejected")]
    assert b.con.execute("SELECT account_id FROM accounts").fetchall() == [("a1",)]


# --- memory and scale options -------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, needle", [
    ({"memory_limit": "lots"}, "memory_limit 'lots'"),
    ({"memory_limit": "4"}, "memory_limit '4'"),
    ({"memory_limit": "4 XB"}, "memory_limit '4 XB'"),
    ({"memory_limit": 4_000_000_000}, "memory_limit 4000000000"),
    ({"memory_limit": "1MB"}, "at least 16MiB"),
    ({"threads": 0}, "threads 0"),
    ({"threads": -2}, "threads -2"),
    ({"threads": 1.5}, "threads 1.5"),
    ({"threads": "2"}, "threads '2'"),
    ({"threads": True}, "threads True"),
    ({"temp_directory": ""}, "temp_directory ''"),
    ({"temp_directory": 7}, "temp_directory 7"),
])
def test_engine_options_are_validated(tmp_path, kwargs, needle):
    write_clean(tmp_path / "b", "csv")
    with pytest.raises(ConfigError) as err:
        load_bundle(tmp_path / "b", now=NOW, **kwargs)
    assert needle in str(err.value)
    assert not list(tmp_path.glob("hydrascope-bundle-*"))


def test_temp_directory_that_is_a_file_is_refused(tmp_path):
    write_clean(tmp_path / "b", "csv")
    (tmp_path / "spill").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        load_bundle(tmp_path / "b", now=NOW, temp_directory=tmp_path / "spill")


def test_default_memory_limit_is_bounded():
    text = default_memory_limit()
    assert text.endswith("MiB")
    assert MIN_MEMORY_LIMIT <= int(text[:-3]) * 2**20 <= DEFAULT_MEMORY_LIMIT


def test_engine_options_are_applied_and_kept_on_the_connection(tmp_path):
    write_clean(tmp_path / "b", "parquet")
    spill = tmp_path / "spill"
    b = load_bundle(tmp_path / "b", now=NOW, memory_limit="512MiB", threads=1, temp_directory=spill)
    setting = lambda name: b.con.execute(f"SELECT current_setting('{name}')").fetchone()[0]  # noqa: E731
    assert setting("memory_limit") in ("512.0 MiB", "512.0MiB")
    assert setting("threads") == 1
    assert setting("temp_directory") == str(spill)
    assert setting("preserve_insertion_order") is True
    assert setting("disabled_optimizers") == ""
    b.close()
    d = load_bundle(tmp_path / "b", now=NOW)   # defaults: DuckDB's threads, spill folder beside the temp database
    assert d.con.execute("SELECT current_setting('temp_directory')").fetchone()[0].endswith("bundle.duckdb.tmp")
    d.close()


def write_big(folder: Path, fmt: str, n_events: int, bad: bool) -> None:
    """A bundle with long prompts (tens of MB), written by DuckDB; ``bad`` plants rejects and IPv6 to rewrite."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    opts = "(FORMAT parquet, ROW_GROUP_SIZE 20000)" if fmt == "parquet" else "(FORMAT csv, HEADER true)"
    ext = ".parquet" if fmt == "parquet" else ".csv"
    con.execute(f"""COPY (SELECT 'acct-' || i AS account_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) AS created_at,
                          'org' || (i % 7) AS org_id FROM range(2000) t(i)) TO '{folder / ('accounts' + ext)}' {opts}""")
    ghost = "CASE WHEN i % 997 = 5 THEN 'ghost' ELSE 'acct-' || (i * 7919 % 2000) END" if bad else "'acct-' || (i * 7919 % 2000)"
    ip = ("CASE WHEN i % 50 = 0 THEN '2001:DB8::' || printf('%X', i % 300) ELSE '10.0.' || (i % 256) || '.' || (i // 256 % 256) END"
          if bad else "'10.0.' || (i % 256) || '.' || (i // 256 % 256)")
    con.execute(f"""COPY (SELECT {ghost} AS account_id,
                          TIMESTAMPTZ '2026-02-01 00:00:00+00' + to_seconds(i) AS ts, {ip} AS ip,
                          'prompt ' || i || ' ' || repeat(chr(CAST(97 + i % 26 AS INTEGER)), CAST(200 + i % 300 AS INTEGER)) AS prompt,
                          CASE WHEN i % 1001 = 3 THEN -1 ELSE i % 900 END AS prompt_tokens
                   FROM range({n_events}) t(i)) TO '{folder / ('events' + ext)}' {opts}""")
    con.close()


def typed_fingerprint(b: Bundle) -> dict:
    """Row count and an order-sensitive hash of every typed table, plus counts and rejects."""
    out = {"counts": b.counts, "rejects": b.rejects.to_csv(index=False)}
    for t in TABLES:
        typed = LABELS_TABLE if t == "labels" else t
        cols = ", ".join(f'"{c}"' for c in COLUMNS[t])
        out[typed] = b.con.execute(f"SELECT count(*), sum(hash(rowid, {cols})::HUGEINT) FROM {typed}").fetchone()
    return out


@pytest.mark.parametrize("fmt, bad, window", [
    ("parquet", False, False),   # the join-free, all-threads events pass
    ("parquet", True, False),    # rejects and IPs to rewrite: the single-thread pass through the joins
    ("parquet", False, True),    # a window
    ("csv", True, False),
])
def test_tiny_memory_limit_spills_and_loads_identically(tmp_path, fmt, bad, window):
    """A memory limit far below the data (it spills to temp_directory) gives the same tables, rejects and counts."""
    write_big(tmp_path / "b", fmt, 150_000, bad)
    win = {"since": "2026-02-01T06:00:00", "until": "2026-02-02T12:00:00"} if window else {}
    ref = load_bundle(tmp_path / "b", now=NOW, threads=2, **win)
    # the CSV reader holds two 128 MiB buffers per thread (lines up to 64 MiB), so CSV gets more
    limit = "64MB" if fmt == "parquet" else "600MB"
    small = load_bundle(tmp_path / "b", now=NOW, memory_limit=limit, threads=2, temp_directory=tmp_path / "spill", **win)
    try:
        assert typed_fingerprint(small) == typed_fingerprint(ref)
        # file order: events come out exactly as a plain ordered read of the file gives them
        n = ref.counts["events"]["rows_accepted"]
        assert n > 50_000
        expect = ref.con.execute(
            "SELECT min(ts), max(ts), count(*) FROM events").fetchone()
        assert expect[2] == n
        out_of_order = ref.con.execute(
            "SELECT count(*) FROM (SELECT ts, lag(ts) OVER () AS p FROM events) WHERE ts < p").fetchone()[0]
        assert out_of_order == 0          # the planted events are in time order in the file
        if bad:
            reasons = set(ref.rejects["reason"])
            assert {"account_id not in accounts", "negative token count"} <= reasons
            assert ref.con.execute("SELECT count(*) FROM events WHERE ip LIKE '2001:db8::%'").fetchone()[0] > 0
        if window:
            assert ref.counts["events"]["outside_window"] > 0
    finally:
        ref.close()
        small.close()


def test_out_of_order_write_is_sorted(tmp_path):
    import duckdb

    from graphbuild.bundle import _create_in_file_order

    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute("SET threads = 1")
    con.execute("CREATE TEMP TABLE src AS SELECT 'v' || i AS v, i AS _rec FROM range(5000) t(i) ORDER BY i DESC")
    _create_in_file_order(con, "out", "SELECT v, _rec FROM src", stream=True)
    assert [r[0] for r in con.execute("SELECT v FROM out").fetchall()] == [f"v{i}" for i in range(5000)]
    assert [r[0] for r in con.execute("DESCRIBE out").fetchall()] == ["v"]
    con.close()


def test_native_parquet_reject_values_are_the_text_of_the_value(tmp_path):
    pq.write_table(pa.table({
        "account_id": ["a1", "a2"],
        "created_at": pa.array([datetime(2026, 1, 1, 12, tzinfo=timezone.utc), datetime(1999, 12, 31, 23, tzinfo=timezone.utc)],
                               pa.timestamp("us", tz="Europe/Paris")),
    }), tmp_path / "accounts.parquet")
    pq.write_table(pa.table({
        "account_id": ["a1", "a1", "a1"],
        "ts": pa.array([datetime(2026, 1, 2, 3), datetime(1990, 1, 2, 4), datetime(2026, 1, 2, 5)], pa.timestamp("ms")),
        "ip": ["1.2.3.4", "1.2.3.5", "1.2.3.6"],
        "prompt_tokens": pa.array([5, 1, -3], pa.int64()),
    }), tmp_path / "events.parquet")
    b = load_bundle(tmp_path, now=NOW)
    assert [tuple(r) for r in b.rejects[["table", "line", "value", "action"]].itertuples(index=False)] == [
        ("accounts", 2, "1999-12-31 23:00:00+00", "rejected"),
        ("events", 2, "1990-01-02 04:00:00", "rejected"),
        ("events", 3, "-3", "cleared"),
    ]
    check_invariant(b)


def test_memory_limit_too_small_for_the_csv_reader_is_a_clear_error(tmp_path):
    write_big(tmp_path / "b", "csv", 150_000, False)
    with pytest.raises(BundleError, match="does not fit in memory_limit 32MiB"):
        load_bundle(tmp_path / "b", now=NOW, memory_limit="32MiB", threads=2)
    assert not list(tmp_path.glob("b/*.tmp"))
