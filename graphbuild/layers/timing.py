"""Timing layer: lockstep activity windows, sign-up bursts and shared rare user agents.

Lockstep (SynchroTrap, Cao et al. 2014): time is cut into short windows; two accounts that are
active in many of the same windows, relative to how active they are at all (the Jaccard
similarity of their window sets), act in lockstep. Load-balanced fleets dispatch a batch of
requests to many accounts within seconds; independent people almost never share more than a
handful of windows by chance. The window length is picked from the data so that an average
window holds a few active accounts, which keeps chance co-occurrence low at any traffic level.
What counts as "far more often than chance" is judged per hour of day (graphbuild.graph): two
colleagues who both work 09:00-17:00 share many windows without acting in lockstep.

Sign-up bursts: accounts created within the same ``signup_window_hours`` share a window
identifier, weighed by rarity like any other identifier. Rare user agents likewise; common
browser strings are hubs and carry nothing.
"""

from __future__ import annotations

import pandas as pd

from graphbuild.layers._sql import run_uses

__all__ = ["timing_uses", "window_activity", "choose_timing_window"]


def choose_timing_window(con, *, target_per_window: float, fixed: int = 0) -> int:
    """Window length in seconds: ``fixed`` when set, else about ``target_per_window`` events per window."""
    if fixed:
        return int(fixed)
    n, span = con.execute("SELECT count(*), coalesce(epoch(max(ts)) - epoch(min(ts)), 0) FROM events").fetchall()[0]
    if not n or not span:
        return 60
    w = target_per_window * float(span) / float(n)
    return int(min(600, max(5, round(w))))


def timing_uses(con, *, window_seconds: int = 0, signup_window_hours: int,
                into: str | None = None) -> pd.DataFrame | None:
    """(account_id, kind, identifier, n_events, first, last) rows of sign-up bursts and user agents.

    Lockstep windows are not identifier rows (one per account and active window, about one per
    event): :func:`window_activity` returns them as integers. ``window_seconds`` is unused and
    kept for callers of the earlier signature. With ``into``, rows are inserted there.
    """
    h = int(signup_window_hours)
    return run_uses(con, f"""
        SELECT account_id, 'signup_window' AS kind, CAST(floor(epoch(created_at) / {h * 3600}) AS BIGINT)::VARCHAR AS identifier,
               1 AS n_events, epoch(created_at)::BIGINT AS first, epoch(created_at)::BIGINT AS last
        FROM accounts
        UNION ALL
        SELECT account_id, 'user_agent', user_agent, count(*), epoch(min(ts))::BIGINT, epoch(max(ts))::BIGINT
        FROM events WHERE user_agent IS NOT NULL GROUP BY account_id, user_agent
    """, into)


def window_activity(con, *, window_seconds: int, account_table: str = "_acc") -> dict:
    """Every (account, lockstep window) with activity, as NumPy arrays.

    Returns ``{"acc": int32 vertex (from ``account_table(account_id, acc)``), "win": int64
    window number floor(epoch / window_seconds), "first", "last": int64 epoch seconds}``, sorted
    by (acc, win).
    """
    w = int(window_seconds)
    return con.execute(f"""
        SELECT a.acc, CAST(floor(epoch(e.ts) / {w}) AS BIGINT) AS win,
               epoch(min(e.ts))::BIGINT AS first, epoch(max(e.ts))::BIGINT AS last
        FROM events e JOIN {account_table} a USING (account_id)
        GROUP BY 1, 2 ORDER BY 1, 2
    """).fetchnumpy()
