"""Payment layer: shared payment instruments, with the instrument type kept for weighting.

Prepaid cards, gift cards and crypto wallets are what fleets buy by the dozen; a family card or
a company card is shared by people who know each other. The link weight of an instrument is
multiplied by :data:`TYPE_FACTOR` of its type, and the type is a scoring signal on its own.
"""

from __future__ import annotations

import pandas as pd

from graphbuild.layers._sql import run_uses

__all__ = ["payment_uses", "TYPE_FACTOR", "DISPOSABLE_TYPES"]

#: Instrument types bought anonymously and in bulk.
DISPOSABLE_TYPES = ("prepaid_card", "prepaid", "gift_card", "virtual_card", "crypto")
#: Multiplier of the payment kind weight by instrument type (others: 1.0).
TYPE_FACTOR = {t: 1.5 for t in DISPOSABLE_TYPES}


def payment_uses(con, *, into: str | None = None) -> pd.DataFrame | None:
    """(account_id, kind, identifier, n_events, first, last, factor) rows of the payment layer (``into``: inserted there)."""
    cases = " ".join(f"WHEN '{t}' THEN {f}" for t, f in sorted(TYPE_FACTOR.items()))
    return run_uses(con, f"""
        SELECT p.account_id, 'instrument' AS kind, p.instrument_id AS identifier, count(*) AS n_events,
               epoch(coalesce(min(p.ts), min(a.created_at)))::BIGINT AS first,
               epoch(coalesce(max(p.ts), max(a.created_at)))::BIGINT AS last,
               max(CASE lower(coalesce(p.instrument_type, '')) {cases} ELSE 1.0 END) AS factor
        FROM payments p JOIN accounts a USING (account_id) WHERE p.instrument_id IS NOT NULL
        GROUP BY p.account_id, p.instrument_id
    """, into)
