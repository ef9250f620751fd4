"""Run a layer's uses query: return it as a DataFrame, or insert it into a DuckDB table."""

from __future__ import annotations

import pandas as pd

__all__ = ["run_uses"]


def run_uses(con, sql: str, into: str | None) -> pd.DataFrame | None:
    """``sql``'s rows as a DataFrame, or (``into`` given) inserted by column name into ``into``."""
    if into is None:
        return con.execute(sql).df()
    con.execute(f"INSERT INTO {into} BY NAME {sql}")
    return None
