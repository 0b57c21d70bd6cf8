"""In the test session's Spark: rows pushed through the ingest API reach gold through the real stream; customer ids
hashed at cleaning for a profile that asks for it; retention removes exactly the old event-level rows."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from pydantic import SecretStr
from pyspark.sql import SparkSession

from dashboard.app import create_app
from salespulse.cli import main
from salespulse.profiles import PROFILES_DIR, load_profile
from salespulse.settings import PrivacySettings, load_settings
from spark_jobs import io
from spark_jobs import stream as stream_module
from spark_jobs.backfill import run_backfill
from spark_jobs.compact import apply_retention
from spark_jobs.stream import StreamSetupError, run_stream
from tests.api.test_ingest_api import AUTH, TOKEN
from tests.conftest import read_landing, run_simulator
from tests.lakes import BUILT_AT
from tests.spark.test_stream import drain, lake_table, stream_settings

pytestmark = pytest.mark.spark
SALT = "pepper-for-tests-0123456789"


def priced_sale(i: int, when: datetime) -> dict[str, Any]:
    """Midmarket at 15 a unit, cost 10 a unit, Medium band (7 %): amounts worked out here, to the cent."""
    units = 1 + i % 7
    gross = units * 15.0
    discounts = round(gross * 0.07, 2)
    return {
        "order_id": f"push-{i}", "event_time": (when - timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
        "country": ("USA", "Canada", "France", "Germany", "Mexico")[i % 5], "segment": "Midmarket",
        "product": "Paseo", "discount_band": "Medium", "units_sold": units, "manufacturing_price": 10.0,
        "sale_price": 15.0, "gross_sales": gross, "discounts": discounts, "sales": round(gross - discounts, 2),
        "cogs": units * 10.0, "profit": round(gross - discounts - units * 10.0, 2), "customer_id": f"C{i % 9}",
    }


def test_pushed_rows_reach_gold_through_the_stream(spark: SparkSession, tmp_path: Path) -> None:
    settings = stream_settings(tmp_path)
    app_settings = load_settings(overrides={"paths.landing": settings.paths.landing, "paths.lake": settings.paths.lake,
                                            "api.tokens": [TOKEN]})
    client = create_app(app_settings).server.test_client()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    batches = [[priced_sale(i, now) for i in range(start, start + 20)] for start in (0, 20, 40)]
    for batch in batches:
        assert client.post("/api/v1/sales", json=batch, headers=AUTH).status_code == 201
    drain(spark, settings)

    pushed = pd.DataFrame([row for batch in batches for row in batch])
    expected = pushed.groupby("country")[["sales", "profit", "units_sold"]].sum()
    gold = lake_table(settings, "gold_sales_hourly").groupby("country")[["sales", "profit", "units_sold"]].sum()
    assert sorted(gold.index) == sorted(expected.index)
    for column in ("sales", "profit", "units_sold"):
        for country in expected.index:
            assert round(gold.loc[country, column] * 100) == round(expected.loc[country, column] * 100), column
    assert lake_table(settings, "gold_sales_hourly")["orders"].sum() == len(pushed) == 60
    assert len(lake_table(settings, "silver_sales")) == 60


def hashing_profile(tmp_path: Path) -> Path:
    data = yaml.safe_load((PROFILES_DIR / "canonical.yaml").read_text())
    data["hash_customer_id"] = True
    path = tmp_path / "pos_with_real_ids.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # column order is the header order
    return path


def test_customer_ids_hashed_with_the_salt_in_silver_gold_and_quarantine(spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    run_simulator(landing, history_days=1, history_rate=0.05, seed=3, bad_rows_pct=5)
    raw = read_landing(landing / "history" / "sales")
    profile = hashing_profile(tmp_path)
    lake = tmp_path / "lake"

    unsalted = CliRunner().invoke(main, ["backfill", "--input", str(landing / "history" / "sales"),
                                         "--profile", str(profile), "--lake", str(lake)])
    assert unsalted.exit_code == 2
    assert "SALESPULSE_PRIVACY__CUSTOMER_ID_SALT" in unsalted.output
    assert not lake.exists()

    settings = load_settings(overrides={"paths.lake": str(lake), "privacy.customer_id_salt": SALT})
    run_backfill(spark, settings, str(landing / "history" / "sales"), load_profile(str(profile)), BUILT_AT, "hashed",
                 say=lambda _: None)

    def digest(customer: str) -> str:
        return hashlib.sha256((SALT + customer).encode()).hexdigest()

    originals = set(raw["customer_id"])
    silver = lake_table(settings, "silver_sales")
    by_order = raw.drop_duplicates("order_id").set_index("order_id")["customer_id"]
    assert len(silver) > 100
    for order_id, customer in zip(silver["order_id"], silver["customer_id"], strict=True):
        assert customer == digest(by_order[order_id])
    customers = set(lake_table(settings, "gold_customers_daily")["customer_id"])
    assert customers and customers <= {digest(c) for c in originals}
    quarantine = lake_table(settings, "quarantine_sales")
    assert len(quarantine) > 0
    quarantined_ids = {dict(r)["customer_id"] for r in quarantine["raw"]} - {None, ""}
    assert quarantined_ids and not quarantined_ids & originals
    assert quarantined_ids <= {digest(c) for c in originals}


def test_stream_hashes_pushed_customer_ids_for_a_hashing_profile(spark: SparkSession, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The stream reads the canonical profile by name; here it reads a copy asking for hashing.
    monkeypatch.setitem(stream_module.EVENTS, "sales", str(hashing_profile(tmp_path)))
    settings = stream_settings(tmp_path)
    Path(settings.paths.landing).mkdir()
    with pytest.raises(StreamSetupError, match="SALESPULSE_PRIVACY__CUSTOMER_ID_SALT"):
        run_stream(spark, settings, lambda _: None, threading.Event(), available_now=True)

    client = create_app(load_settings(overrides={"paths.landing": settings.paths.landing, "api.tokens": [TOKEN]}))
    rows = [priced_sale(i, datetime.now(timezone.utc).replace(microsecond=0)) for i in range(12)]
    assert client.server.test_client().post("/api/v1/sales", json=rows, headers=AUTH).status_code == 201
    salted = settings.model_copy(update={"privacy": PrivacySettings(customer_id_salt=SecretStr(SALT))})
    drain(spark, salted)
    silver = lake_table(salted, "silver_sales").set_index("order_id")["customer_id"]
    assert {order: silver[order] for order in silver.index} == {
        row["order_id"]: hashlib.sha256((SALT + row["customer_id"]).encode()).hexdigest() for row in rows}


def publish_dirs(spark: SparkSession, lake: str, table: str, frames: dict[str, pd.DataFrame]) -> None:
    """Write each frame as one stream-style directory of ``table`` and list them in the manifest, as the stream
    does (io.write_table_version, then one manifest swap)."""
    written = [io.write_table_version(spark.createDataFrame(frame), lake, table, name)
               for name, frame in frames.items()]

    def change(manifest: dict[str, Any]) -> None:
        for version in written:
            io.set_dirs(manifest, table, version, [])

    io.update_manifest(spark, lake, change, f"test-{table}")


def test_retention_removes_exactly_the_old_event_level_rows(spark: SparkSession, tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    day = timedelta(days=1)

    def sales(first: int, days_ago: list[int]) -> pd.DataFrame:
        times = [now - d * day for d in days_ago]
        return pd.DataFrame({"order_id": [f"o{first + i}" for i in range(len(times))], "event_time": times,
                             "sales": [10.0 + first + i for i in range(len(times))],
                             "event_date": [t.date() for t in times]})

    def rejected(run: str, days_ago: int, rows: int) -> pd.DataFrame:
        return pd.DataFrame({"reason": ["malformed_number"] * rows, "row_number": list(range(1, rows + 1)),
                             "ingest_time": [now - days_ago * day] * rows, "run_id": [run] * rows})

    publish_dirs(spark, lake, "silver_sales", {
        "stream-sales-0000000001": sales(0, [30, 20, 9]),       # all older than 5 days: unlisted
        "stream-sales-0000000002": sales(100, [8, 6, 4, 1]),    # mixed: rewritten without the first two
        "stream-sales-0000000003": sales(200, [2, 0]),          # recent: untouched
    })
    publish_dirs(spark, lake, "quarantine_sales", {"stream-sales-0000000001": rejected("old", 12, 3),
                                                   "stream-sales-0000000003": rejected("new", 1, 2)})
    hourly = pd.DataFrame({"hour": [now - 30 * day], "country": ["France"], "sales": [99.0],
                           "event_date": [(now - 30 * day).date()]})
    publish_dirs(spark, lake, "gold_sales_hourly", {"stream-sales-0000000001": hourly})
    settings = load_settings(overrides={"paths.lake": lake})
    before = {t: lake_table(settings, t) for t in ("silver_sales", "quarantine_sales", "gold_sales_hourly")}

    result = CliRunner().invoke(main, ["compact", "--lake", lake, "--retention-days", "5"])
    assert result.exit_code == 0, result.output
    assert "retention silver_sales: before" in result.output and "1 directory unlisted, 1 rewritten" in result.output

    cutoff = (now - 5 * day).date()
    silver = lake_table(settings, "silver_sales").sort_values("order_id").reset_index(drop=True)
    dates = pd.to_datetime(before["silver_sales"]["event_date"]).dt.date
    expected = before["silver_sales"][dates >= cutoff].sort_values("order_id").reset_index(drop=True)
    assert expected["order_id"].tolist() == ["o102", "o103", "o200", "o201"]  # worked out by hand above
    pd.testing.assert_frame_equal(silver[expected.columns], expected, check_dtype=False)
    quarantine = lake_table(settings, "quarantine_sales")
    assert quarantine["run_id"].tolist() == ["new", "new"]
    pd.testing.assert_frame_equal(lake_table(settings, "gold_sales_hourly"), before["gold_sales_hourly"])

    assert apply_retention(spark, settings, 5, now) == []  # nothing older is left
    assert apply_retention(spark, settings, 0, now + 100 * day) == []  # 0 keeps everything
    assert len(lake_table(settings, "silver_sales")) == 4
