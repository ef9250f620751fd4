"""hydrascope — find coordinated proxy-account networks used to distill AI models.

Examples
--------
>>> import hydrascope                                            # doctest: +SKIP
>>> result = hydrascope.run("worlds/demo", "runs/r1", hydrascope.RunConfig(seed=0))   # doctest: +SKIP
>>> result.report.clusters.query("flagged")                      # doctest: +SKIP
"""

__version__ = "0.1.0"

from hydrascope.config import RunConfig, load_config  # noqa: E402
from hydrascope.pipeline import RunResult, analyse, run  # noqa: E402

__all__ = ["__version__", "RunConfig", "load_config", "run", "analyse", "RunResult"]
