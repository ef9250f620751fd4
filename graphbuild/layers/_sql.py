"""SQL helpers of the layers: run a uses query (DataFrame or insert), quote a list of string literals."""

from __future__ import annotations

import pandas as pd

__all__ = ["run_uses", "sql_strings"]


def run_uses(con, sql: str, into: str | None) -> pd.DataFrame | None:
    """``sql``'s rows as a DataFrame, or (``into`` given) inserted by column name into ``into``."""
    if into is None:
        return con.execute(sql).df()
    con.execute(f"INSERT INTO {into} BY NAME {sql}")
    return None


def sql_strings(values) -> str:
    """A comma-separated list of SQL string literals (quotes doubled), for ``IN (...)``.

    Examples
    --------
    >>> sql_strings(["ip", "o'brien"])
    "'ip', 'o''brien'"
    """
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)
