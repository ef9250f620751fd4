"""Per-account signals that scoring aggregates per cluster, computed in DuckDB in one pass."""

from __future__ import annotations

import pandas as pd

from graphbuild.layers.payment import DISPOSABLE_TYPES
from graphbuild.layers.prompts import JAILBREAK_PATTERN, REASONING_PATTERN

__all__ = ["account_features", "FREE_MAIL_DOMAINS", "DISPOSABLE_MAIL_DOMAINS"]

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


def _sql_list(values) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def account_features(con) -> pd.DataFrame:
    """One row per account (sorted by account_id) of behavioural signals.

    Needs the temp tables ``prompt_template`` and ``template_k(template_id, n_accounts, is_hub)``.
    Columns: n_requests, n_active_days, n_ips, n_prefixes, ip_rotation, hours_entropy,
    hours_to_first_use, reasoning_share, jailbreak_share, template_share, top_template_share,
    n_templates, n_instruments, prepaid_share, free_mail, disposable_mail, org_declared,
    avg_completion_tokens, created_at, email_domain, org_id, country.
    """
    rp, jp = REASONING_PATTERN.replace("'", "''"), JAILBREAK_PATTERN.replace("'", "''")
    return con.execute(f"""
        WITH pt AS (
            SELECT t.prompt, min(t.template_id) AS template_id,
                   bool_or(coalesce(k.n_accounts, 1) >= 2 AND NOT coalesce(k.is_hub, false)) AS tpl_shared
            FROM prompt_template t LEFT JOIN template_k k USING (template_id) GROUP BY t.prompt
        ),
        ev AS (
            SELECT e.account_id, e.ts, e.ip, e.prompt, e.completion_tokens, pt.template_id,
                   coalesce(pt.tpl_shared, false) AS tpl_shared
            FROM events e LEFT JOIN pt USING (prompt)
        ),
        base AS (
            SELECT account_id, count(*) AS n_requests, count(DISTINCT CAST(ts AS DATE)) AS n_active_days,
                   count(DISTINCT ip) AS n_ips, min(ts) AS first_ts,
                   avg(CASE WHEN regexp_matches(prompt, '{rp}', 'i') THEN 1 ELSE 0 END) AS reasoning_share,
                   avg(CASE WHEN regexp_matches(prompt, '{jp}', 'i') THEN 1 ELSE 0 END) AS jailbreak_share,
                   avg(CASE WHEN tpl_shared THEN 1 ELSE 0 END) AS template_share,
                   count(DISTINCT template_id) AS n_templates,
                   avg(completion_tokens) AS avg_completion_tokens
            FROM ev GROUP BY account_id
        ),
        toptpl AS (
            SELECT account_id, max(c) AS top_c FROM (
                SELECT account_id, template_id, count(*) AS c FROM ev WHERE template_id IS NOT NULL GROUP BY 1, 2
            ) GROUP BY account_id
        ),
        hrs AS (
            SELECT account_id, -sum((c / tot) * ln(c / tot)) / ln(24) AS hours_entropy FROM (
                SELECT account_id, hour(ts) AS h, count(*)::DOUBLE AS c, sum(count(*)) OVER (PARTITION BY account_id) AS tot
                FROM events GROUP BY account_id, hour(ts)
            ) GROUP BY account_id
        ),
        pref AS (
            SELECT e.account_id, count(DISTINCT p.prefix) AS n_prefixes
            FROM events e JOIN ip_prefix p USING (ip) GROUP BY e.account_id
        ),
        pay AS (
            SELECT account_id, count(DISTINCT instrument_id) AS n_instruments,
                   avg(CASE WHEN lower(coalesce(instrument_type, '')) IN ({_sql_list(DISPOSABLE_TYPES)}) THEN 1 ELSE 0 END) AS prepaid_share
            FROM payments GROUP BY account_id
        )
        SELECT a.account_id,
               coalesce(b.n_requests, 0) AS n_requests, coalesce(b.n_active_days, 0) AS n_active_days,
               coalesce(b.n_ips, 0) AS n_ips, coalesce(pf.n_prefixes, 0) AS n_prefixes,
               coalesce(b.n_ips::DOUBLE / nullif(b.n_requests, 0), 0) AS ip_rotation,
               coalesce(h.hours_entropy, 0) AS hours_entropy,
               (epoch(b.first_ts) - epoch(a.created_at)) / 3600.0 AS hours_to_first_use,
               coalesce(b.reasoning_share, 0) AS reasoning_share, coalesce(b.jailbreak_share, 0) AS jailbreak_share,
               coalesce(b.template_share, 0) AS template_share,
               coalesce(t.top_c::DOUBLE / nullif(b.n_requests, 0), 0) AS top_template_share,
               coalesce(b.n_templates, 0) AS n_templates,
               coalesce(p.n_instruments, 0) AS n_instruments, coalesce(p.prepaid_share, 0) AS prepaid_share,
               lower(coalesce(a.email_domain, '')) IN ({_sql_list(FREE_MAIL_DOMAINS)}) AS free_mail,
               lower(coalesce(a.email_domain, '')) IN ({_sql_list(DISPOSABLE_MAIL_DOMAINS)}) AS disposable_mail,
               a.org_id IS NOT NULL AS org_declared,
               coalesce(b.avg_completion_tokens, 0) AS avg_completion_tokens,
               a.created_at, a.email_domain, a.org_id, a.country
        FROM accounts a
        LEFT JOIN base b USING (account_id) LEFT JOIN toptpl t USING (account_id) LEFT JOIN hrs h USING (account_id)
        LEFT JOIN pref pf USING (account_id) LEFT JOIN pay p USING (account_id)
        ORDER BY a.account_id
    """).df()
