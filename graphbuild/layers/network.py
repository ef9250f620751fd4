"""Network layer: shared event IPs, co-use of an IP in one window, shared sign-up IPs and prefixes.

A prefix is the /24 of an IPv4 address or the /48 of an IPv6 address: residential-proxy and
datacenter fleets rotate through neighbouring addresses, so the prefix links them where no
single IP does. Co-use of one IP inside the same window (``ip_window_hours``) is extra evidence
on top of ever having used it: two accounts behind one address on the same day are more likely
to be one operator than two that used it months apart.
"""

from __future__ import annotations

import ipaddress

import pandas as pd

from graphbuild.layers._sql import run_uses

__all__ = ["network_uses", "ip_prefix", "prefix_table"]


def ip_prefix(address: str) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network of an address, or None when it is not an IP.

    Examples
    --------
    >>> ip_prefix("203.0.113.77"), ip_prefix("2001:db8:1:2::5")
    ('203.0.113.0/24', '2001:db8:1::/48')
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def prefix_table(con) -> None:
    """Create the temp table ``ip_prefix(ip, prefix)`` for every distinct event IP.

    Canonical IPv4 addresses (as the loader stores them) get their /24 in SQL; only the other
    addresses (IPv6) go through :func:`ip_prefix` in Python, one call per distinct address.
    """
    con.execute("""
        CREATE OR REPLACE TEMP TABLE ip_prefix AS
        SELECT ip, CASE WHEN regexp_full_match(ip, '[0-9]{1,3}(\\.[0-9]{1,3}){3}')
                        THEN regexp_replace(ip, '\\.[0-9]+$', '.0/24') END AS prefix
        FROM (SELECT DISTINCT ip FROM events WHERE ip IS NOT NULL)
    """)
    other = con.execute("SELECT ip FROM ip_prefix WHERE prefix IS NULL ORDER BY ip").df()["ip"]
    if len(other):
        con.register("_ip_prefix_df", pd.DataFrame({"ip": other, "prefix": [ip_prefix(x) for x in other]}))
        con.execute("UPDATE ip_prefix SET prefix = d.prefix FROM _ip_prefix_df d WHERE ip_prefix.ip = d.ip")
        con.unregister("_ip_prefix_df")


def network_uses(con, *, ip_window_hours: int, into: str | None = None) -> pd.DataFrame | None:
    """(account_id, kind, identifier, n_events, first, last) rows of the network layer.

    Also creates the temp table ``ip_prefix`` (:func:`prefix_table`). With ``into``, the rows
    are inserted into that DuckDB table instead of being returned.
    """
    prefix_table(con)
    h = int(ip_window_hours)
    return run_uses(con, f"""
        WITH ev AS (SELECT account_id, ip, ts FROM events WHERE ip IS NOT NULL),
        shared_ip AS (SELECT ip FROM ev GROUP BY ip HAVING count(DISTINCT account_id) >= 2)
        SELECT account_id, 'ip' AS kind, ip AS identifier, count(*) AS n_events,
               epoch(min(ts))::BIGINT AS first, epoch(max(ts))::BIGINT AS last
        FROM ev GROUP BY account_id, ip
        UNION ALL
        SELECT account_id, 'ip_window', ip || '|' || strftime(time_bucket(INTERVAL '{h} hours', ts), '%Y-%m-%dT%H'),
               count(*), epoch(min(ts))::BIGINT, epoch(max(ts))::BIGINT
        FROM ev WHERE ip IN (SELECT ip FROM shared_ip)
        GROUP BY account_id, 3
        UNION ALL
        SELECT e.account_id, 'prefix', p.prefix, count(*), epoch(min(e.ts))::BIGINT, epoch(max(e.ts))::BIGINT
        FROM ev e JOIN ip_prefix p USING (ip) WHERE p.prefix IS NOT NULL
        GROUP BY e.account_id, p.prefix
        UNION ALL
        SELECT account_id, 'signup_ip', signup_ip, 1, epoch(created_at)::BIGINT, epoch(created_at)::BIGINT
        FROM accounts WHERE signup_ip IS NOT NULL
    """, into)
