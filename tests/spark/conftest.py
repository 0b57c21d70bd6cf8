"""One SparkSession for the whole test session: local[2], UI off, 2 shuffle partitions, UTC."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession

from salespulse.settings import SparkSettings
from spark_jobs.session import build_session


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = build_session(
        SparkSettings(master="local[2]", app_name="salespulse-tests", shuffle_partitions=2, driver_memory="1g")
    )
    yield session
    session.stop()
