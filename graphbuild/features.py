"""Per-account signals that scoring aggregates per cluster, computed in DuckDB in one pass."""

from __future__ import annotations

import numpy as np
import pandas as pd

from graphbuild.layers._sql import events_is_table, prompt_key, sql_strings
from graphbuild.layers.payment import DISPOSABLE_TYPES
from graphbuild.layers.prompts import JAILBREAK_PATTERN, REASONING_PATTERN

__all__ = ["account_features", "account_features_and_hours", "hour_profile", "FREE_MAIL_DOMAINS", "DISPOSABLE_MAIL_DOMAINS", "COUNTRY_UTC_OFFSET"]

#: Consumer mail providers: anyone can open any number of addresses there.
FREE_MAIL_DOMAINS = (
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
    "ymail.com", "aol.com", "icloud.com", "me.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de",
    "mail.com", "yandex.ru", "yandex.com", "qq.com", "163.com", "126.com", "sina.com", "naver.com",
    "web.de", "zoho.com", "fastmail.com", "tutanota.com", "mail.ru", "inbox.ru",
)
#: Throw-away mail services (a small, well-known subset).
DISPOSABLE_MAIL_DOMAINS = (
    "mailinator.com", "guerrillamail.com", "10minutemail.com", "temp-mail.org", "tempmail.com",
    "trashmail.com", "yopmail.com", "sharklasers.com", "getnada.com", "dispostable.com", "maildrop.cc",
    "throwawaymail.com", "mohmal.com", "emailondeck.com", "tempmail.net", "fakeinbox.com", "mailnesia.com",
    "burnermail.io", "mintemail.com", "spamgourmet.com", "tmpmail.org", "tmail.ws", "moakt.com",
)


#: ip_rotation = distinct IPs / max(requests, this): rotation needs enough requests to mean anything
ROTATION_MIN_REQUESTS = 20

#: Standard-time UTC offset (hours) of each country's main population centre, for telling local
#: night from day. Countries spanning several zones get a central one; night is taken as
#: 01:00-05:00 local so that an error of two hours still lands in the night.
COUNTRY_UTC_OFFSET = {
    "US": -6, "CA": -5, "MX": -6, "BR": -3, "AR": -3, "CL": -4, "CO": -5, "PE": -5, "VE": -4, "EC": -5,
    "UY": -3, "PY": -4, "BO": -4, "CR": -6, "GT": -6, "PA": -5, "DO": -4, "CU": -5, "JM": -5, "PR": -4,
    "GB": 0, "IE": 0, "PT": 0, "IS": 0, "MA": 1, "ES": 1, "FR": 1, "DE": 1, "IT": 1, "NL": 1, "BE": 1,
    "LU": 1, "CH": 1, "AT": 1, "SE": 1, "NO": 1, "DK": 1, "PL": 1, "CZ": 1, "SK": 1, "HU": 1, "SI": 1,
    "HR": 1, "RS": 1, "BA": 1, "AL": 1, "MK": 1, "NG": 1, "DZ": 1, "TN": 1, "CM": 1, "AO": 1,
    "FI": 2, "EE": 2, "LV": 2, "LT": 2, "UA": 2, "RO": 2, "BG": 2, "GR": 2, "CY": 2, "IL": 2, "PS": 2,
    "LB": 2, "JO": 3, "EG": 2, "ZA": 2, "LY": 2, "ZW": 2, "ZM": 2, "MZ": 2,
    "TR": 3, "RU": 3, "BY": 3, "SA": 3, "IQ": 3, "KW": 3, "QA": 3, "BH": 3, "KE": 3, "ET": 3, "TZ": 3,
    "UG": 3, "IR": 3.5, "AE": 4, "OM": 4, "AZ": 4, "GE": 4, "AM": 4, "AF": 4.5, "PK": 5, "UZ": 5,
    "KZ": 5, "IN": 5.5, "LK": 5.5, "NP": 5.75, "BD": 6, "MM": 6.5, "TH": 7, "VN": 7, "ID": 7, "KH": 7,
    "LA": 7, "CN": 8, "HK": 8, "MO": 8, "TW": 8, "SG": 8, "MY": 8, "PH": 8, "MN": 8, "JP": 9, "KR": 9,
    "AU": 10, "PG": 10, "NZ": 12,
}


def account_features(con) -> pd.DataFrame:
    """One row per account (sorted by account_id) of behavioural signals.

    Needs the temp tables ``prompt_template`` and ``template_k(template_id, n_accounts, is_hub)``,
    and ``ip_prefix(ip, prefix)`` (graphbuild.layers.network.prefix_table). Uses the account
    numbering ``_acc(account_id, acc)`` that :func:`graphbuild.build_evidence` creates (``acc`` in
    account_id order) when present, else numbers the accounts itself.
    Columns: n_requests, n_active_days, n_ips, n_prefixes, ip_rotation, hours_entropy,
    hours_to_first_use, reasoning_share, jailbreak_share, template_share, top_template_share,
    n_templates, n_instruments, prepaid_share, free_mail, disposable_mail, org_declared,
    avg_completion_tokens, night_share (share of requests sent 01:00-05:00 local time of the
    declared country, NaN when the country is unknown), created_at, email_domain, org_id, country.
    """
    return _features(con, hours=False)[0]


def account_features_and_hours(con) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`account_features` and the hour profile of the same rows, from one pass over the events.

    Returns
    -------
    features : pandas.DataFrame
        As :func:`account_features` (one row per account, sorted by account_id).
    hours : numpy.ndarray
        ``(len(features), 24)`` int32 requests per UTC hour of day, row ``i`` for
        ``features.account_id[i]`` (as :func:`hour_profile` with the accounts in account_id order).
    """
    return _features(con, hours=True)


def _acc_source(con) -> str:
    """The account numbering: ``_acc`` when present (graphbuild.build_evidence), else the same, made here."""
    has = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_acc' AND schema_name = 'main' "
                      "AND (database_name = 'temp' OR database_name = current_database())").fetchall()[0][0] > 0
    return "_acc" if has else ("(SELECT account_id, CAST(row_number() OVER (ORDER BY account_id) - 1 AS INTEGER) "
                               "AS acc FROM accounts)")


def _features(con, *, hours: bool) -> tuple[pd.DataFrame, np.ndarray | None]:
    rp, jp = REASONING_PATTERN.replace("'", "''"), JAILBREAK_PATTERN.replace("'", "''")
    base_table = events_is_table(con)
    # the loader stores hash(prompt) with each event (graphbuild.bundle.PROMPT_HASH): no pass re-hashes texts
    pkey = prompt_key(con)
    # each distinct prompt's text is read once, at one of its rows: no hash table of texts; the
    # patterns run once per distinct prompt, not once per request
    match = f"regexp_matches(prompt, '{rp}', 'i') AS is_reasoning, regexp_matches(prompt, '{jp}', 'i') AS is_jailbreak"
    if base_table:  # one row per key already
        prompt_flags = (f"SELECT p.pid, {match} FROM events e JOIN (SELECT {pkey} AS pid, min(rowid) AS r FROM events "
                        "WHERE prompt IS NOT NULL GROUP BY 1) p ON e.rowid = p.r")
    else:  # two texts with one hash: the key is flagged if either text is
        prompt_flags = (f"SELECT pid, bool_or(is_reasoning) AS is_reasoning, bool_or(is_jailbreak) AS is_jailbreak FROM "
                        f"(SELECT pid, {match} FROM (SELECT DISTINCT hash(prompt) AS pid, prompt FROM events "
                        "WHERE prompt IS NOT NULL)) GROUP BY pid")
    # the hour profile rides along as 24 integer columns, split off below
    hour_cols = ", ".join(f"max(CASE WHEN h = {h} THEN c ELSE 0 END)::INTEGER AS _h{h}" for h in range(24))
    hour_ctes = f"""
        hr AS (SELECT acc, hour(ts) AS h, count(*) AS c FROM ev GROUP BY 1, 2),
        hrs AS (SELECT acc, {hour_cols} FROM hr GROUP BY acc),""" if hours else ""
    hour_sel = ", " + ", ".join(f"coalesce(hs._h{h}, 0) AS _h{h}" for h in range(24)) if hours else ""
    hour_join = "LEFT JOIN hrs hs USING (acc)" if hours else ""
    df = con.execute(f"""
        WITH tz AS (SELECT * FROM (VALUES {_tz_values()}) AS t(country, utc_offset)),
        -- integer account numbers, with the UTC offset of the declared country (NULL: unknown)
        acc AS (
            SELECT x.acc, x.account_id, tz.utc_offset AS off
            FROM {_acc_source(con)} x JOIN accounts a USING (account_id) LEFT JOIN tz ON upper(a.country) = tz.country
        ),
        -- templates numbered in template_id order: a prompt's template (the least id) is an integer minimum
        tk AS (
            SELECT template_id, CAST(row_number() OVER (ORDER BY template_id) AS INTEGER) AS tcode, shared FROM (
                SELECT d.template_id, bool_or(coalesce(k.n_accounts, 1) >= 2 AND NOT coalesce(k.is_hub, false)) AS shared
                FROM (SELECT DISTINCT template_id FROM prompt_template WHERE template_id IS NOT NULL) d
                LEFT JOIN template_k k USING (template_id) GROUP BY d.template_id)
        ),
        pt AS (
            SELECT t.pid, min(tk.tcode) AS tpl, bool_or(tk.shared) AS tpl_shared
            FROM prompt_template t JOIN tk USING (template_id) GROUP BY t.pid
        ),
        pf AS ({prompt_flags}),
        pp AS (
            SELECT pid, pt.tpl, coalesce(pt.tpl_shared, false) AS tpl_shared,
                   coalesce(pf.is_reasoning, false) AS is_reasoning, coalesce(pf.is_jailbreak, false) AS is_jailbreak
            FROM pt FULL JOIN pf USING (pid)
        ),
        -- the one pass over the events: every aggregate below reads this stream, keyed by integers
        ev AS (
            SELECT a.acc, e.ts, e.ip, e.completion_tokens, a.off, p.tpl,
                   coalesce(p.tpl_shared, false) AS tpl_shared,
                   coalesce(p.is_reasoning, false) AS is_reasoning, coalesce(p.is_jailbreak, false) AS is_jailbreak
            FROM (SELECT account_id, ts, ip, completion_tokens, {pkey} AS pid FROM events) e
            JOIN acc a USING (account_id) LEFT JOIN pp p USING (pid)
        ),
        base AS (
            SELECT acc, count(*) AS n_requests, min(ts) AS first_ts,
                   avg(CASE WHEN is_reasoning THEN 1 ELSE 0 END) AS reasoning_share,
                   avg(CASE WHEN is_jailbreak THEN 1 ELSE 0 END) AS jailbreak_share,
                   avg(CASE WHEN tpl_shared THEN 1 ELSE 0 END) AS template_share,
                   avg(completion_tokens) AS avg_completion_tokens,
                   avg(CASE WHEN off IS NULL THEN NULL
                            WHEN hour(ts + to_seconds(CAST(off * 3600 AS BIGINT))) BETWEEN 1 AND 4 THEN 1 ELSE 0 END)
                       AS night_share
            FROM ev GROUP BY acc
        ),
        days AS (SELECT acc, count(d) AS n_active_days FROM (SELECT acc, CAST(ts AS DATE) AS d FROM ev GROUP BY 1, 2)
                 GROUP BY acc),
        aip AS (SELECT acc, ip FROM ev WHERE ip IS NOT NULL GROUP BY 1, 2),
        ips AS (SELECT acc, count(*) AS n_ips FROM aip GROUP BY acc),
        pref AS (SELECT a.acc, count(DISTINCT p.prefix) AS n_prefixes FROM aip a JOIN ip_prefix p USING (ip) GROUP BY a.acc),
        tpl AS (
            SELECT acc, count(*) AS n_templates, max(c) AS top_c FROM (
                SELECT acc, tpl, count(*) AS c FROM ev WHERE tpl IS NOT NULL GROUP BY 1, 2
            ) GROUP BY acc
        ),{hour_ctes}
        pay AS (
            SELECT account_id, count(DISTINCT instrument_id) AS n_instruments,
                   avg(CASE WHEN lower(coalesce(instrument_type, '')) IN ({sql_strings(DISPOSABLE_TYPES)}) THEN 1 ELSE 0 END) AS prepaid_share
            FROM payments GROUP BY account_id
        )
        SELECT a.account_id,
               coalesce(b.n_requests, 0) AS n_requests, coalesce(d.n_active_days, 0) AS n_active_days,
               coalesce(i.n_ips, 0) AS n_ips, coalesce(pf.n_prefixes, 0) AS n_prefixes,
               -- new IPs per request, over at least {ROTATION_MIN_REQUESTS} requests: three requests from
               -- three addresses is a phone on the move, not a proxy fleet
               coalesce(i.n_ips::DOUBLE / greatest(b.n_requests, {ROTATION_MIN_REQUESTS}), 0) AS ip_rotation,
               0.0 AS hours_entropy,  -- filled from the exact hour profile (graphbuild.graph)
               (epoch(b.first_ts) - epoch(ac.created_at)) / 3600.0 AS hours_to_first_use,
               coalesce(b.reasoning_share, 0) AS reasoning_share, coalesce(b.jailbreak_share, 0) AS jailbreak_share,
               coalesce(b.template_share, 0) AS template_share,
               coalesce(t.top_c::DOUBLE / nullif(b.n_requests, 0), 0) AS top_template_share,
               coalesce(t.n_templates, 0) AS n_templates,
               coalesce(p.n_instruments, 0) AS n_instruments, coalesce(p.prepaid_share, 0) AS prepaid_share,
               lower(coalesce(ac.email_domain, '')) IN ({sql_strings(FREE_MAIL_DOMAINS)}) AS free_mail,
               lower(coalesce(ac.email_domain, '')) IN ({sql_strings(DISPOSABLE_MAIL_DOMAINS)}) AS disposable_mail,
               ac.org_id IS NOT NULL AS org_declared,
               coalesce(b.avg_completion_tokens, 0) AS avg_completion_tokens,
               b.night_share,
               ac.created_at, ac.email_domain, ac.org_id, ac.country{hour_sel}
        FROM acc a JOIN accounts ac USING (account_id)
        LEFT JOIN base b USING (acc) LEFT JOIN days d USING (acc) LEFT JOIN ips i USING (acc)
        LEFT JOIN pref pf USING (acc) LEFT JOIN tpl t USING (acc) {hour_join}
        LEFT JOIN pay p ON p.account_id = a.account_id
        ORDER BY a.acc
    """).df()
    if not hours:
        return df, None
    cols = [f"_h{h}" for h in range(24)]
    out = np.ascontiguousarray(df[cols].to_numpy(dtype=np.int32))
    return df.drop(columns=cols), out


def _tz_values() -> str:
    return ", ".join(f"('{c}', {float(o)})" for c, o in sorted(COUNTRY_UTC_OFFSET.items()))


def hour_profile(con, accounts) -> np.ndarray:
    """Requests per UTC hour of day: an ``(len(accounts), 24)`` int32 array in ``accounts`` order.

    The events are grouped by the row number of their account in ``accounts`` (an integer), not
    by the account_id string. Events of accounts not in ``accounts`` are left out.
    """
    accounts = np.asarray(accounts, dtype=object)
    out = np.zeros((len(accounts), 24), dtype=np.int32)
    if not len(accounts):
        return out
    name = f"_hour_profile_accounts_{id(out)}"
    con.register(name, pd.DataFrame({"account_id": accounts, "pos": np.arange(len(accounts), dtype=np.int32)}))
    try:
        r = con.execute(f"SELECT a.pos, hour(e.ts) AS h, count(*) AS c FROM events e JOIN {name} a USING (account_id) "
                        "WHERE e.ts IS NOT NULL "
                        "GROUP BY 1, 2").fetchnumpy()
    finally:
        con.unregister(name)
    # one row per (account, hour): plain assignment
    out[np.asarray(r["pos"], dtype=np.int64), np.asarray(r["h"], dtype=np.int64)] = np.asarray(r["c"]).astype(np.int32)
    return out
