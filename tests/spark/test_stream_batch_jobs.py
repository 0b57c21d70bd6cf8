"""Jobs a micro-batch runs on the writer pool belong to that batch, as the jobs of the query's own thread do."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from salespulse.settings import load_settings
from spark_jobs.stream import BATCH_PROPERTIES, StreamJob

pytestmark = pytest.mark.spark


def test_stream_pool_work_carries_the_calling_batch_ids(spark: SparkSession, tmp_path: Path) -> None:
    settings = load_settings(overrides={"paths.lake": str(tmp_path / "lake"), "spark.master": "local[2]"})
    job = StreamJob(spark, settings, lambda _: None)
    context = job.spark.sparkContext
    seen: dict[str, list[dict[str, str | None]]] = {}

    def read_properties() -> dict[str, str | None]:
        return {key: context.getLocalProperty(key) for key in BATCH_PROPERTIES}

    def batch(name: str, batch_id: str) -> None:
        # As the query's thread has them during a micro-batch.
        context.setLocalProperty("spark.job.description", f"{name} batch {batch_id}")
        context.setLocalProperty("sql.streaming.queryId", f"query-{name}")
        context.setLocalProperty("streaming.sql.batchId", batch_id)
        seen[name] = [job.submit(read_properties).result() for _ in range(8)]

    threads = [threading.Thread(target=batch, args=(name, batch_id)) for name, batch_id in (("sales", "7"),
                                                                                           ("inventory", "3"))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outside = job.submit(read_properties).result()
    finally:
        job.writers.shutdown()
    assert seen["sales"] == [{"spark.job.description": "sales batch 7", "sql.streaming.queryId": "query-sales",
                              "streaming.sql.batchId": "7"}] * 8
    assert seen["inventory"] == [{"spark.job.description": "inventory batch 3",
                                  "sql.streaming.queryId": "query-inventory", "streaming.sql.batchId": "3"}] * 8
    # Work submitted from outside any batch carries no batch's ids, though the pool threads ran batches before.
    assert outside == dict.fromkeys(BATCH_PROPERTIES)
