"""RunConfig: every parameter of a run, frozen, loadable from TOML and printable into run.json."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from community.leiden import CommunityConfig
from community.scoring import ScoringConfig
from graphbuild.config import EvidenceConfig
from graphbuild.errors import ConfigError

__all__ = ["RunConfig", "load_config"]


@dataclass(frozen=True)
class RunConfig:
    """What a run does.

    Parameters
    ----------
    seed : int
        Seeds community detection (and nothing else is random).
    since, until : str or None
        ISO 8601 bounds of the analysed window (``since <= ts < until``).
    evidence, community, scoring
        Stage parameters.
    site : bool
        Also write the static explorer (RUN_DIR/site).
    memory_limit : str or None
        DuckDB memory limit for loading and graph building (e.g. ``"6GB"``; default
        :func:`graphbuild.bundle.default_memory_limit`, 3 GiB); DuckDB spills to disk beyond it.
    threads : int or None
        DuckDB threads (default: one per core).

    Resources change how fast a run is, never what it finds: they are not written to run.json.
    """

    seed: int = 0
    since: str | None = None
    until: str | None = None
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    community: CommunityConfig = field(default_factory=CommunityConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    site: bool = True
    memory_limit: str | None = None
    threads: int | None = None

    def to_dict(self) -> dict:
        return {"seed": self.seed, "since": self.since, "until": self.until, "site": self.site,
                "evidence": self.evidence.to_dict(), "community": self.community.to_dict(),
                "scoring": self.scoring.to_dict()}

    def with_(self, **changes) -> "RunConfig":
        """A copy with top-level fields changed."""
        return replace(self, **changes)


_SECTIONS = {"evidence": EvidenceConfig, "community": CommunityConfig, "scoring": ScoringConfig}


def load_config(path=None, **overrides) -> RunConfig:
    """Read a TOML file (sections ``[evidence]``, ``[community]``, ``[scoring]``) into a RunConfig.

    Unknown keys are errors naming the key and the allowed ones.

    Examples
    --------
    >>> load_config(seed=3).seed
    3
    """
    data: dict = {}
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {p}: {exc}") from exc
    kwargs = {}
    top = {f.name for f in fields(RunConfig)} - set(_SECTIONS)
    for key, value in data.items():
        if key in _SECTIONS:
            cls = _SECTIONS[key]
            allowed = {f.name for f in fields(cls)}
            bad = [k for k in value if k not in allowed]
            if bad:
                raise ConfigError(f"unknown key [{key}].{bad[0]}; allowed: {', '.join(sorted(allowed))}")
            if "layers" in value:
                value = dict(value, layers=tuple(value["layers"]))
            kwargs[key] = cls(**value)
        elif key in top:
            kwargs[key] = value
        else:
            raise ConfigError(f"unknown config key {key!r}; allowed: {', '.join(sorted(top | set(_SECTIONS)))}")
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig(**kwargs)
