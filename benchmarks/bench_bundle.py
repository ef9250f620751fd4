"""Benchmark load_bundle on a generated bundle: prints load time and events rows per second."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from graphbuild.bundle import load_bundle  # noqa: E402

FORMATS = {"csv": ".csv", "csv.gz": ".csv.gz", "parquet": ".parquet", "jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz"}


def write_bundle(folder: Path, n_events: int, n_accounts: int, fmt: str, bad_every: int) -> None:
    """Write accounts and events in ``fmt`` with DuckDB (no Python per row)."""
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar = false")
    ext = FORMATS[fmt]
    opts = {
        "csv": "(FORMAT csv, HEADER true)", "csv.gz": "(FORMAT csv, HEADER true, COMPRESSION gzip)",
        "parquet": "(FORMAT parquet)", "jsonl": "(FORMAT json)", "jsonl.gz": "(FORMAT json, COMPRESSION gzip)",
    }[fmt]
    con.execute(f"""
        COPY (SELECT 'acct-' || lpad(CAST(i AS VARCHAR), 7, '0') AS account_id,
                     strftime(TIMESTAMP '2026-01-01' + to_seconds(i * 37 % 2592000), '%Y-%m-%dT%H:%M:%SZ') AS created_at,
                     (['gmail.com','acme.io','proton.me','uni.edu'])[1 + i % 4] AS email_domain,
                     (['US','DE','SG','BR'])[1 + i % 4] AS country,
                     CASE WHEN i % 5 = 0 THEN 'org' || (i % 97) ELSE '' END AS org_id,
                     CASE WHEN i % 3 = 0 THEN '2001:db8:' || printf('%x', i % 65535) || '::1'
                          ELSE '10.' || (i % 256) || '.' || (i // 256 % 256) || '.7' END AS signup_ip
              FROM range({n_accounts}) t(i)) TO '{folder / ('accounts' + ext)}' {opts}""")
    con.execute(f"""
        COPY (SELECT CASE WHEN {bad_every} > 0 AND i % {bad_every} = 1 THEN 'ghost-' || i
                          ELSE 'acct-' || lpad(CAST(hash(i) % {n_accounts} AS VARCHAR), 7, '0') END AS account_id,
                     CASE WHEN {bad_every} > 0 AND i % {bad_every} = 2 THEN 'not a time'
                          WHEN i % 2 = 0 THEN strftime(TIMESTAMP '2026-02-01' + to_microseconds(i * 500000), '%Y-%m-%dT%H:%M:%S.%fZ')
                          ELSE CAST(epoch(TIMESTAMP '2026-02-01') + i / 2 AS VARCHAR) END AS ts,
                     CASE WHEN i % 10 = 0 THEN '2001:DB8:' || printf('%X', hash(i) % 4096) || '::' || printf('%x', i % 9)
                          WHEN {bad_every} > 0 AND i % {bad_every} = 3 THEN '300.1.1.1'
                          ELSE (hash(i) % 223 + 1) || '.' || (hash(i + 1) % 256) || '.' || (i % 256) || '.' || (hash(i + 2) % 256) END AS ip,
                     'python-sdk/1.' || (i % 40) AS user_agent,
                     'key-' || (i % 1000) AS api_key_id,
                     (['m-large','m-small'])[1 + i % 2] AS model,
                     'Solve step by step, "show" your reasoning, problem #' || (i % 5000) ||
                        CASE WHEN i % 1000 = 0 THEN chr(10) || 'second line' ELSE '' END AS prompt,
                     CAST(50 + i % 400 AS VARCHAR) AS prompt_tokens,
                     CAST(200 + i % 900 AS VARCHAR) AS completion_tokens
              FROM range({n_events}) t(i)) TO '{folder / ('events' + ext)}' {opts}""")
    con.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=5_000_000, help="events rows (default 5,000,000)")
    ap.add_argument("--accounts", type=int, default=50_000)
    ap.add_argument("--format", choices=sorted(FORMATS), default="csv")
    ap.add_argument("--bad-every", type=int, default=10_000,
                    help="plant an unknown account, a bad timestamp and a bad IP every N rows (0: none)")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp folder, removed)")
    args = ap.parse_args(argv)
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    bundle_dir = work / "bundle"
    bundle_dir.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        write_bundle(bundle_dir, args.events, args.accounts, args.format, args.bad_every)
        t1 = time.perf_counter()
        size = sum(p.stat().st_size for p in bundle_dir.iterdir())
        print(f"generated {args.events:,} events ({args.format}, {size / 1e6:,.0f} MB) in {t1 - t0:.1f} s")
        t2, c2 = time.perf_counter(), time.process_time()
        b = load_bundle(bundle_dir, now=datetime(2026, 6, 1), database=work / "bench.duckdb")
        t3, c3 = time.perf_counter(), time.process_time()
        ev = b.counts["events"]
        print(f"load_bundle: {t3 - t2:.1f} s wall, {c3 - c2:.1f} s CPU (all threads); events read {ev['rows_read']:,}, accepted {ev['rows_accepted']:,}, "
              f"rejected {ev['rows_rejected']:,}, cleared {ev['fields_cleared']:,}")
        print(f"throughput: {ev['rows_read'] / (t3 - t2):,.0f} event rows/s wall, "
              f"{ev['rows_read'] / (c3 - c2):,.0f} event rows per CPU-second; rejects listed: {len(b.rejects):,}")
        b.close()
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
