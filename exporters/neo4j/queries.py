"""Load the documented investigator queries of ``queries.cypher`` by name and run them with parameters."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

__all__ = ["Query", "load_queries", "get_query", "run_query", "QUERY_NAMES"]


@dataclass(frozen=True)
class Query:
    """One investigator query.

    Attributes
    ----------
    name : str
        Name from the ``// name:`` header.
    description : str
        The comment lines after the headers.
    defaults : dict
        Parameter names and default values (None: optional, or required when the query
        cannot answer without it).
    cypher : str
        The statement, without the trailing semicolon.
    """

    name: str
    description: str
    cypher: str
    defaults: dict = field(default_factory=dict)

    def parameters(self, **params) -> dict:
        """Defaults overlaid with ``params``; raises ValueError on an unknown parameter name."""
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(f"query {self.name!r} has no parameter(s) {sorted(unknown)}; "
                             f"it takes {sorted(self.defaults)}")
        return {**self.defaults, **params}


_HEADER = re.compile(r"^//\s*name:\s*(\S+)\s*$", re.M)


@lru_cache(maxsize=1)
def load_queries() -> dict[str, Query]:
    """Every query of ``exporters/neo4j/queries.cypher``, by name, in file order."""
    text = resources.files("exporters.neo4j").joinpath("queries.cypher").read_text(encoding="utf-8")
    starts = [m.start() for m in _HEADER.finditer(text)] + [len(text)]
    out: dict[str, Query] = {}
    for a, b in zip(starts, starts[1:]):
        lines = text[a:b].strip().splitlines()
        name = _HEADER.match(lines[0]).group(1)
        defaults: dict = {}
        desc, body = [], []
        for line in lines[1:]:
            s = line.strip()
            if not body and s.startswith("// params:"):
                defaults = json.loads(s[len("// params:"):])
            elif not body and s.startswith("//"):
                desc.append(s[2:].strip())
            elif s:
                body.append(line)
        cypher = "\n".join(body).rstrip().rstrip(";")
        out[name] = Query(name=name, description=" ".join(desc), cypher=cypher, defaults=defaults)
    return out


#: names of the documented queries
QUERY_NAMES = tuple(load_queries())


def get_query(name: str) -> Query:
    """One query by name; raises KeyError listing the known names."""
    q = load_queries()
    if name not in q:
        raise KeyError(f"no investigator query {name!r}; known: {', '.join(q)}")
    return q[name]


def run_query(driver, name: str, *, database: str | None = None, **params) -> list[dict]:
    """Run a named query through an open ``neo4j`` driver; values are sent as parameters.

    Parameters
    ----------
    driver : neo4j.Driver
        An open driver.
    name : str
        One of :data:`QUERY_NAMES`.
    database : str, optional
        Target database.
    **params
        Query parameters; missing ones take the defaults of the query header.

    Returns
    -------
    list of dict
        One dict per result row.

    Examples
    --------
    >>> run_query(driver, "accounts_sharing_instrument", account_id="acct-0042")   # doctest: +SKIP
    """
    q = get_query(name)
    records, _, _ = driver.execute_query(q.cypher, parameters_=q.parameters(**params), database_=database)
    return [r.data() for r in records]
