"""Engine selection for the graph-building stage: DuckDB (default, one machine) or Spark."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

from graphbuild.errors import ConfigError

__all__ = ["ENGINES", "DEFAULT_ENGINE", "check_engine", "get_spark", "stop_spark", "quiet_pyspark"]

#: Engines that can run the heavy steps of :func:`graphbuild.build_evidence`.
ENGINES = ("duckdb", "spark")
#: The engine used when none is asked for.
DEFAULT_ENGINE = "duckdb"

_SPARK_HINT = ("the Spark engine needs PySpark and Java 17+: pip install 'hydrascope[spark]' "
               "(or pip install pyspark) and put a JDK on PATH / JAVA_HOME")


def check_engine(engine: str) -> str:
    """Return ``engine`` lower-cased when it is one of :data:`ENGINES`, else raise ConfigError.

    Examples
    --------
    >>> check_engine("Spark")
    'spark'
    """
    name = str(engine or DEFAULT_ENGINE).strip().lower()
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    return name


def get_spark(master: str | None = "local[2]", *, app_name: str = "hydrascope", shuffle_partitions: int = 4,
              conf: dict | None = None):
    """A SparkSession suited to the graph-building stage (reuses the active one when there is one).

    Parameters
    ----------
    master : str or None
        Spark master URL. The default ``local[2]`` runs Spark inside this process's JVM with two
        threads, bound to 127.0.0.1 (no network access beyond localhost). ``None`` leaves the
        master to ``spark-submit`` (``--master yarn`` / ``spark://host:7077`` / ``k8s://…``); the
        localhost binding is then not applied.
    app_name : str
    shuffle_partitions : int
        ``spark.sql.shuffle.partitions``; small for local runs (Spark's default 200 is for clusters).
    conf : dict, optional
        Further Spark settings (``{"spark.driver.memory": "8g"}``: in local mode the driver's
        JVM also does the executors' work), applied last.

    Returns
    -------
    pyspark.sql.SparkSession
        Session time zone UTC, Arrow transfers on, web UI off, no limit on results collected to
        the driver (``spark.driver.maxResultSize=0``: the pairs are collected), log level ERROR.

    Raises
    ------
    ConfigError
        PySpark is not installed.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ConfigError(_SPARK_HINT) from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    local = master is not None and master.startswith("local")
    if local:
        # the driver, its block manager and the Python workers talk over the loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers run this interpreter (with its packages), not whatever python3 is on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    b = SparkSession.builder.appName(app_name)
    settings = {
        "spark.sql.shuffle.partitions": str(int(shuffle_partitions)),
        "spark.default.parallelism": str(int(shuffle_partitions)),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.adaptive.enabled": "true",
        # the pairs of every layer are collected to the driver (the igraph stage needs them)
        "spark.driver.maxResultSize": "0",
        "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dlog4j2.configurationFile={_log4j_file().as_uri()}",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if local:
        settings.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    settings.update({k: str(v) for k, v in (conf or {}).items()})
    if master is not None:
        b = b.master(master)
    for k, v in settings.items():
        b = b.config(k, v)
    try:
        with quiet_pyspark():
            spark = b.getOrCreate()
    except Exception as exc:  # Java missing or not startable
        raise ConfigError(f"could not start Spark ({exc.__class__.__name__}: {exc}); {_SPARK_HINT}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


_LOG4J = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
"""


def _log4j_file():
    """A log4j2 configuration without start-up chatter (``setLogLevel("ERROR")`` follows the start)."""
    import tempfile
    from pathlib import Path

    path = Path(tempfile.gettempdir()) / "hydrascope-spark-log4j2.properties"
    if not path.exists() or path.read_text() != _LOG4J:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(_LOG4J)
        os.replace(tmp, path)
    return path


@contextlib.contextmanager
def quiet_pyspark():
    """Silence PySpark's own Python warnings (pandas-version notices, deprecated pandas keywords)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"pyspark(\.|$)")
        yield


def stop_spark() -> None:
    """Stop the active SparkSession, if any (tests and benchmarks call this at the end)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover
        return
    s = SparkSession.getActiveSession()
    if s is not None:
        s.stop()
