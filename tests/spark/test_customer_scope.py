"""Customer KPIs within the viewer's countries: a customer first seen in Germany who later buys in France is new
for a France-only viewer (her first order within France) and returning for an administrator. Lakes built by the
project's own Spark backfill (and partial rows as the stream writes them, merged as compaction merges them);
expectations computed with pandas from the landed files."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from dashboard.data import LakeRepository
from salespulse.kpi_report import SalesFilter, kpi_totals
from salespulse.profiles import load_profile
from salespulse.scope import Scope
from salespulse.settings import Settings, load_settings
from spark_jobs.backfill import run_backfill
from spark_jobs.transforms.aggregate import aggregate_customers_daily, combine_customers_daily
from tests.conftest import read_landing, run_simulator
from tests.lakes import BUILT_AT

ADMIN = Scope.everything()  # the reader's scope: every country

pytestmark = pytest.mark.spark

FRANCE = ("France",)
FRANCE_GERMANY = ("France", "Germany")


@pytest.fixture(scope="module")
def travelling_lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame]:
    """Four days of simulated sales whose customer ids drop their country code, so customer n of every country is
    one person buying in several countries; backfilled. Returns the settings and the landed rows."""
    root = tmp_path_factory.mktemp("travelling")
    landing = root / "landing"
    run_simulator(landing, history_days=4, history_rate=0.03, seed=5, customers_per_country=2000,
                  bad_rows_pct=0, duplicate_pct=0, late_pct=0)
    for path in sorted((landing / "history" / "sales").glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame["customer_id"] = "CXX" + frame["customer_id"].str[3:]
        frame.to_csv(path, index=False)
    settings = load_settings(overrides={"paths.lake": str(root / "lake"), "paths.models": str(root / "models")})
    run_backfill(spark, settings, str(landing / "history" / "sales"), load_profile("canonical"), BUILT_AT,
                 "travelling", say=lambda _: None)
    rows = read_landing(landing / "history" / "sales")
    rows["day"] = pd.to_datetime(rows["event_time"], utc=True, format="ISO8601").dt.date
    return settings, rows


def expected(rows: pd.DataFrame, viewer: tuple[str, ...] | None, chosen: tuple[str, ...], first: date,
             last: date) -> dict[str, int]:
    """Active and new customers over days ``first``..``last`` in the ``chosen`` countries (empty: all), "new"
    meaning: first order within the viewer's countries (None: all) on or after ``first``."""
    seen = rows if viewer is None else rows[rows["country"].isin(viewer)]
    first_order = seen.groupby("customer_id")["day"].min()
    period = seen[(seen["day"] >= first) & (seen["day"] <= last) & (seen["country"].isin(chosen or seen["country"]))]
    active = period["customer_id"].unique()
    return {"active_customers": len(active), "new_customers": int((first_order[active] >= first).sum())}


def first_elsewhere(rows: pd.DataFrame, day: date) -> set[str]:
    """Customers whose first order in France is on ``day`` and who had ordered in another country before."""
    first_anywhere = rows.groupby("customer_id")["day"].min()
    first_in_france = rows[rows["country"] == "France"].groupby("customer_id")["day"].min()
    return {c for c, first in first_in_france.items() if first == day and first_anywhere[c] < day}


def test_dashboard_customer_kpis_count_new_within_the_viewers_countries(
        travelling_lake: tuple[Settings, pd.DataFrame]) -> None:
    settings, rows = travelling_lake
    days = sorted(rows["day"].unique())
    last = days[-1]
    assert first_elsewhere(rows, last), "the data must hold customers first buying in France on the last day"
    for viewer in (None, FRANCE, FRANCE_GERMANY):
        repo, scope = LakeRepository(settings.paths.lake, settings.paths.models), Scope(viewer)
        for first in (last, days[1]):
            where = SalesFilter.for_dates(first, last)
            overall = repo.customers_by(scope, where, None).iloc[0]
            want = expected(rows, viewer, (), first, last)
            assert {k: int(overall[k]) for k in want} == want, (viewer, first)
            cards = repo.kpis(scope, where)
            assert (int(cards["new_customers"]), int(cards["returning_customers"])) == (
                want["new_customers"], want["active_customers"] - want["new_customers"]), (viewer, first)
            by_country = repo.customers_by(scope, where, "country").set_index("country")
            for country in by_country.index:
                want = expected(rows, viewer, (country,), first, last)
                assert {k: int(by_country.loc[country, k]) for k in want} == want, (viewer, first, country)


def test_france_only_viewer_sees_a_germany_first_customer_as_new_and_an_administrator_as_returning(
        travelling_lake: tuple[Settings, pd.DataFrame]) -> None:
    settings, rows = travelling_lake
    last = max(rows["day"])
    where = SalesFilter.for_dates(last, last, countries=FRANCE)
    repo = LakeRepository(settings.paths.lake, settings.paths.models)
    first_seen = rows.sort_values("event_time").groupby("customer_id").first()
    germany_first = {c for c in first_elsewhere(rows, last) if first_seen.loc[c, "country"] == "Germany"}
    assert germany_first, "the data must hold a Germany-first customer first buying in France on the last day"
    france_new = int(repo.customers_by(Scope.only(FRANCE), where, None).iloc[0]["new_customers"])
    admin_new = int(repo.customers_by(ADMIN, where, None).iloc[0]["new_customers"])
    assert france_new == expected(rows, FRANCE, FRANCE, last, last)["new_customers"]
    assert admin_new == expected(rows, None, FRANCE, last, last)["new_customers"]
    assert france_new - admin_new == len(first_elsewhere(rows, last))  # new in France, returning for the company
    # `salespulse kpis` reads every country (administrators): the country filter narrows what is counted,
    # not what a customer's history is
    cli = kpi_totals(settings.paths.lake, None, where).iloc[0]
    assert int(cli["new_customers"]) == admin_new


def test_stream_partials_merged_by_compaction_keep_the_first_order_per_country(spark: SparkSession) -> None:
    day = date(2026, 3, 1)
    batches = [  # (event_date, country, customer): Ana buys in Germany, then in France two days later
        [(day, "Germany", "ana"), (day, "France", "bea")],
        [(day + timedelta(days=2), "France", "ana"), (day + timedelta(days=2), "Germany", "bea")],
        [(day + timedelta(days=3), "France", "ana")],
    ]
    partials = None
    for batch in batches:
        silver = spark.createDataFrame(
            pd.DataFrame(batch, columns=["event_date", "country", "customer_id"]).assign(segment="Government",
                                                                                      sales=10.0))
        part = aggregate_customers_daily(silver)
        partials = part if partials is None else partials.unionByName(part)
    merged = combine_customers_daily(partials).toPandas()
    rows = pd.DataFrame([r for batch in batches for r in batch], columns=["event_date", "country", "customer_id"])
    want = rows.groupby(["customer_id", "country"])["event_date"].min()
    got = merged.groupby(["customer_id", "country"])["first_order_date"].min()
    assert got.to_dict() == want.to_dict()
    assert (merged.groupby(["customer_id", "country"])["first_order_date"].nunique() == 1).all()

