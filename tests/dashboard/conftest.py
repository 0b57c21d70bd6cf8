"""A small real lake shared by the dashboard tests (built once per session), and copies for tests that publish."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from salespulse.settings import load_settings
from tests.dashboard.browser import start_chromium
from tests.lakes import SampleLake, build_sample_lake


@pytest.fixture(scope="session")
def sample_lake(spark, tmp_path_factory: pytest.TempPathFactory) -> SampleLake:
    """14 days of simulated history, backfilled. Read-only: use ``lake_copy`` to publish more."""
    return build_sample_lake(spark, tmp_path_factory.mktemp("sample"))


@pytest.fixture
def lake_copy(sample_lake: SampleLake, tmp_path: Path) -> SampleLake:
    """A private copy of the sample lake (manifest paths are relative, so a copied lake is a valid lake)."""
    shutil.copytree(sample_lake.lake, tmp_path / "lake")
    settings = load_settings(overrides={"paths.lake": str(tmp_path / "lake"), "paths.models": str(tmp_path / "models")})
    return replace(sample_lake, root=tmp_path, settings=settings)


@pytest.fixture
def browser(tmp_path: Path):
    driver = start_chromium(tmp_path / "profile", tmp_path / "downloads")
    yield driver
    driver.quit()
