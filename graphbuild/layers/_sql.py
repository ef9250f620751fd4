"""SQL helpers of the layers: run a uses query (DataFrame or insert), quote a list of string literals."""

from __future__ import annotations

import pandas as pd

__all__ = ["run_uses", "sql_strings", "events_is_table", "prompt_key"]


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


def events_is_table(con) -> bool:
    """Whether ``events`` is a base table (it has a ``rowid``, so a text can be fetched by row)."""
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'events' AND "
                       "(database_name = 'temp' OR database_name = current_database())").fetchall()[0][0] > 0


def prompt_key(con) -> str:
    """SQL for an event's 64-bit prompt key: the loader's stored ``prompt_hash`` if present, else ``hash(prompt)``."""
    has = con.execute("SELECT count(*) FROM (DESCRIBE events) WHERE column_name = 'prompt_hash'").fetchall()[0][0] > 0
    return "prompt_hash" if has else "hash(prompt)"
