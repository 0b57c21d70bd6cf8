"""build_session: the only place in the project that creates a SparkSession."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark import SparkContext
from pyspark.logger import PySparkLogger
from pyspark.sql import SparkSession

from salespulse.settings import PROJECT_ROOT, SparkSettings

FAIR_POOLS = PROJECT_ROOT / "conf" / "fairscheduler.xml"  # micro-batches ahead of the work beside them


def build_session(settings: SparkSettings) -> SparkSession:
    # Spark starts Python workers with `python3` from PATH unless told otherwise, which may lack our
    # packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder
    # Under spark-submit (which sets PYSPARK_GATEWAY_PORT for the driver) its --master wins over the settings.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(settings.master)
    builder = (
        builder.appName(settings.app_name)
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.sql.session.timeZone", settings.session_time_zone)
        .config("spark.ui.enabled", str(settings.ui_enabled).lower())
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.scheduler.mode", settings.scheduler_mode)
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(settings.arrow_batch_rows))
        # A stream batch plans some 50 distinct generated classes; with Spark's default of 100 cached, a stream
        # and its background refreshes evicted each other's and compiled them again in every batch.
        .config("spark.sql.codegen.cache.maxEntries", "2000")
        # Generated classes are cached by their source; with the stage id in the class name, the same stage
        # numbered differently (a plan with one more union input before it) compiled and JIT-compiled anew.
        .config("spark.sql.codegen.useIdInClassName", "false")
    )
    if settings.scheduler_mode == "FAIR":
        builder = builder.config("spark.scheduler.allocation.file", str(FAIR_POOLS))
    for key, value in settings.extra_conf.items():
        builder = builder.config(key, value)
    # Under spark-submit the JVM and its logging exist already (Spark's own log4j setup applies).
    log_file = settings.log_file if "PYSPARK_GATEWAY_PORT" not in os.environ else None
    with _jvm_output_to(log_file if SparkContext._gateway is None else None):
        session = builder.getOrCreate()
    if log_file is not None:
        _query_error_logs_to(log_file)
    session.sparkContext.setLogLevel(settings.log_level)
    return session


@contextmanager
def _jvm_output_to(log_file: str | None) -> Iterator[None]:
    """While the Spark JVM is started, point this process's stdout and stderr at ``log_file``: the JVM inherits
    them for its whole life, so its log4j lines, banners and JVM warnings (some printed before any log level
    applies) go to the file, while Python's own output goes back to the terminal. None: leave both alone."""
    if log_file is None:
        yield
        return
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(log_file, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        yield
    finally:
        for fd, original in zip((1, 2), saved, strict=True):
            os.dup2(original, fd)
            os.close(original)


def build_source_session(spark: SparkSession) -> SparkSession:
    """A SQL session of its own (same SparkContext) for the jobs that read and clean source files (backfill and
    stream): it plans one scan partition per input file, so CSV rows are numbered per file in the same pass as the
    read (``io.number_rows``), and suits the cleaning's large generated code and short-lived caches. Other users of
    ``spark`` keep Spark's packing of small files and its defaults."""
    session = spark.newSession()
    # A file costs more than a partition holds: Spark closes the partition after every file.
    session.conf.set("spark.sql.files.openCostInBytes", str(1 << 62))
    # The JVM never JIT-compiles a method over 8,000 bytes of bytecode; the cleaning's whole-stage method is
    # larger, so it ran interpreted. At this limit Spark runs such a stage operator by operator instead, with
    # each operator's expressions split into small methods that do get compiled (same results).
    session.conf.set("spark.sql.codegen.hugeMethodLimit", "8000")
    # Cleaned frames are cached to be read twice or more, right away: encoding and decoding a compressed cache
    # cost more CPU than it saves (it spills to local disk when memory runs short).
    session.conf.set("spark.sql.inMemoryColumnarStorage.compressed", "false")
    return session


# PySpark logs every failed query as a multi-KB JSON line on stderr from these Python-side loggers (beside raising it).
QUERY_ERROR_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


def _query_error_logs_to(log_file: str) -> None:
    """Send PySpark's query-error loggers to ``log_file`` instead of stderr: the error still reaches the caller."""
    for name in QUERY_ERROR_LOGGERS:
        logger = PySparkLogger.getLogger(name)
        logger.propagate = False
        for handler in list(logger.handlers):
            if not isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
        if not logger.handlers:
            logger.addHandler(logging.FileHandler(log_file, encoding="utf-8", delay=True))
