"""Benchmark load_bundle: rows, seconds, rows/s and peak RSS per bundle, each load in a fresh process."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

FORMATS = {"csv": ".csv", "csv.gz": ".csv.gz", "parquet": ".parquet", "jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz"}
_COPY = {
    "csv": "(FORMAT csv, HEADER true)", "csv.gz": "(FORMAT csv, HEADER true, COMPRESSION gzip)",
    "parquet": "(FORMAT parquet)", "jsonl": "(FORMAT json)", "jsonl.gz": "(FORMAT json, COMPRESSION gzip)",
}


def write_bundle(folder: Path, n_events: int, n_accounts: int, fmt: str, bad_every: int) -> None:
    """Write synthetic accounts and events in ``fmt`` with DuckDB (no Python per row), planting bad rows."""
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar = false")
    ext, opts = FORMATS[fmt], _COPY[fmt]
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


def to_format(world: Path, dest: Path, fmt: str) -> Path:
    """Copy a bundle folder into ``dest`` in another format (timestamps as ISO 8601 UTC text)."""
    dest.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar = false")
    for src in sorted(world.iterdir()):
        table = src.name.split(".")[0]
        if table not in ("accounts", "events", "payments", "labels") or not src.name.endswith(".parquet"):
            continue
        out = dest / (table + FORMATS[fmt])
        if not out.exists():
            con.execute(f"COPY (SELECT * FROM read_parquet('{src}')) TO '{out}' {_COPY[fmt]}")
    con.close()
    return dest


def _peak_rss_gb() -> float:
    with open("/proc/self/status") as fh:
        return int(re.search(r"VmHWM:\s+(\d+)", fh.read()).group(1)) / 1e6


def child(folder: Path, memory_limit: str | None, threads: int | None, now: str | None,
          since: str | None = None, until: str | None = None) -> None:
    """Load one bundle in this process and print one JSON line with its numbers."""
    from graphbuild.bundle import load_bundle

    t0 = time.perf_counter()
    c0 = time.process_time()
    b = load_bundle(folder, now=now or datetime(2100, 1, 1), memory_limit=memory_limit, threads=threads,
                    since=since, until=until)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    size = b.con.execute("SELECT database_size FROM pragma_database_size()").fetchone()[0]
    rows = sum(c["rows_read"] for c in b.counts.values())
    # CPU seconds of all threads (on a shared machine wall time can be several times CPU / cores)
    print(json.dumps({"rows": rows, "events": b.counts["events"]["rows_read"],
                      "accepted": b.counts["events"]["rows_accepted"], "rejects": len(b.rejects),
                      "seconds": seconds, "cpu": cpu, "peak_rss_gb": _peak_rss_gb(), "db": size,
                      "memory_limit": b.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]}))
    b.close()


def run(folder: Path, label: str, memory_limit: str | None, threads: int | None, now: str | None,
        since: str | None = None, until: str | None = None) -> dict:
    """Load ``folder`` in a fresh Python process; return its numbers."""
    cmd = [sys.executable, __file__, "--child", str(folder)]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    if threads:
        cmd += ["--threads", str(threads)]
    if now:
        cmd += ["--now", now]
    if since:
        cmd += ["--since", since]
    if until:
        cmd += ["--until", until]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["label"] = label
    return res


def _fmt_of(folder: Path) -> str:
    names = [p.name for p in folder.iterdir() if p.name.startswith("events.")]
    return names[0][len("events."):] if names else "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("worlds", nargs="*", type=Path, help="bundle folders to load (e.g. demo worlds)")
    ap.add_argument("--also", choices=sorted(FORMATS), action="append", default=[],
                    help="also load each world converted to this format (kept under --dir)")
    ap.add_argument("--generate", action="store_true", help="load a synthetic bundle with planted bad rows instead")
    ap.add_argument("--events", type=int, default=5_000_000, help="synthetic events rows (default 5,000,000)")
    ap.add_argument("--accounts", type=int, default=50_000, help="synthetic accounts (default 50,000)")
    ap.add_argument("--format", choices=sorted(FORMATS), default="csv", help="synthetic bundle format")
    ap.add_argument("--bad-every", type=int, default=10_000,
                    help="plant an unknown account, a bad timestamp and a bad IP every N rows (0: none)")
    ap.add_argument("--memory-limit", default=None, help="load_bundle memory_limit (default: its default)")
    ap.add_argument("--threads", type=int, default=None, help="load_bundle threads (default: DuckDB's)")
    ap.add_argument("--now", default=None, help="'now' for the future-timestamp check (default 2100-01-01)")
    ap.add_argument("--since", default=None, help="load_bundle since (window start, ISO 8601)")
    ap.add_argument("--until", default=None, help="load_bundle until (window end, ISO 8601)")
    ap.add_argument("--dir", type=Path, default=None, help="work folder for generated bundles (default: a temp folder, removed)")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.memory_limit, args.threads, args.now, args.since, args.until)
        return 0
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    cases: list[tuple[Path, str]] = []
    try:
        if args.generate:
            folder = work / f"synthetic-{args.events}-{args.format}"
            folder.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            write_bundle(folder, args.events, args.accounts, args.format, args.bad_every)
            print(f"generated {args.events:,} synthetic events ({args.format}) in {time.perf_counter() - t0:.1f} s")
            cases.append((folder, f"synthetic {args.events:,}"))
        for w in args.worlds:
            cases.append((w, w.name))
            for fmt in args.also:
                t0 = time.perf_counter()
                conv = to_format(w, work / f"{w.name}-{fmt.replace('.', '')}", fmt)
                print(f"converted {w.name} to {fmt} in {time.perf_counter() - t0:.1f} s")
                cases.append((conv, w.name))
        print(f"{'bundle':<22} {'format':<8} {'rows':>12} {'events':>12} {'seconds':>8} {'rows/s':>10} "
              f"{'CPU s':>7} {'peak RSS':>9} {'database':>10}")
        for folder, label in cases:
            r = run(folder, label, args.memory_limit, args.threads, args.now, args.since, args.until)
            print(f"{label:<22} {_fmt_of(folder):<8} {r['rows']:>12,} {r['events']:>12,} {r['seconds']:>8.1f} "
                  f"{r['rows'] / r['seconds']:>10,.0f} {r['cpu']:>7.1f} {r['peak_rss_gb']:>7.2f}GB {r['db']:>10}", flush=True)
        window = f", window [{args.since or '-'}, {args.until or '-'})" if args.since or args.until else ""
        print(f"memory_limit {r['memory_limit']}, threads {args.threads or 'DuckDB default'}{window}, "
              f"{os.cpu_count()} cores, {datetime.now():%Y-%m-%d}")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
