"""The simulator's output checked from the CSV files alone, with pandas, as a consumer would see it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from salespulse.schema import (
    COUNTRIES,
    COUNTRY_CODES,
    DISCOUNT_BANDS,
    DISCOUNT_RATES,
    INVENTORY_EVENT,
    MANUFACTURING_PRICE,
    PRODUCTS,
    SALES_EVENT,
    SEGMENTS,
    UNIT_COST_BY_PRICE,
)
from salespulse.simulator.model import HOUR_PROFILE, SEGMENT_MIX, UTC_OFFSET_HOURS
from tests.conftest import END_MS, read_landing, run_simulator

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
NUMERIC = ["units_sold", "manufacturing_price", "sale_price", "gross_sales", "discounts", "sales", "cogs", "profit"]


def valid_mask(sales: pd.DataFrame) -> pd.Series:
    """Rows a strict consumer accepts: parseable numbers and times, known categories, required fields
    present, units not negative."""
    numbers = sales[NUMERIC].apply(pd.to_numeric, errors="coerce")
    times = pd.to_datetime(sales["event_time"].where(sales["event_time"].str.match(ISO_UTC)),
                           format="%Y-%m-%dT%H:%M:%S.%fZ", errors="coerce")
    return (
        numbers.notna().all(axis=1)
        & times.notna()
        & sales["country"].isin(COUNTRIES)
        & sales["segment"].isin(SEGMENTS)
        & sales["product"].isin(PRODUCTS)
        & sales["discount_band"].isin(DISCOUNT_BANDS)
        & (sales["order_id"] != "")
        & (numbers["units_sold"] >= 0)
    )


def typed(sales: pd.DataFrame) -> pd.DataFrame:
    out = sales.copy()
    out[NUMERIC] = out[NUMERIC].astype(float)
    out["event_time"] = pd.to_datetime(out["event_time"], format="%Y-%m-%dT%H:%M:%S.%fZ", utc=True)
    return out


@pytest.fixture(scope="module")
def clean_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """21 days, no injected faults: the business itself."""
    out = tmp_path_factory.mktemp("clean")
    run_simulator(out, history_days=21, history_rate=0.3, bad_rows_pct=0, duplicate_pct=0, late_pct=0)
    return out


@pytest.fixture(scope="module")
def clean_sales(clean_history: Path) -> pd.DataFrame:
    return typed(read_landing(clean_history / "history" / "sales"))


def test_simulator_files_have_canonical_headers(clean_history: Path) -> None:
    for kind, schema in (("sales", SALES_EVENT), ("inventory", INVENTORY_EVENT)):
        files = sorted((clean_history / "history" / kind).glob("*.csv"))
        assert len(files) == 21
        for f in files:
            assert f.read_text().splitlines()[0].replace('"', "").split(",") == list(schema.names)


def test_simulator_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    def files(out: Path) -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.csv"))}

    run_simulator(tmp_path / "a", history_days=2, seed=5)
    run_simulator(tmp_path / "b", history_days=2, seed=5)
    run_simulator(tmp_path / "c", history_days=2, seed=6)
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert a and a == b
    assert {k.replace("s5-", "s6-") for k in a} == set(c)
    assert [a[k] for k in sorted(a)] != [c[k.replace("s5-", "s6-")] for k in sorted(a)]


def test_simulator_amounts_are_consistent_to_the_cent(clean_sales: pd.DataFrame) -> None:
    s = clean_sales
    cents = lambda col: (s[col] * 100).round().astype(np.int64)  # noqa: E731
    assert (cents("gross_sales") == (s["units_sold"] * s["sale_price"] * 100).round().astype(np.int64)).all()
    assert (cents("sales") == cents("gross_sales") - cents("discounts")).all()
    assert (cents("profit") == cents("sales") - cents("cogs")).all()
    rates = s["discount_band"].map(DISCOUNT_RATES)
    assert (cents("discounts") == (cents("gross_sales") * rates).round().astype(np.int64)).all()
    unit_cost = s["sale_price"].map(UNIT_COST_BY_PRICE)
    assert (cents("cogs") == (s["units_sold"] * unit_cost * 100).round().astype(np.int64)).all()
    assert (s["manufacturing_price"] == s["product"].map(MANUFACTURING_PRICE)).all()
    assert (s["units_sold"] > 0).all() and ((s["units_sold"] * 2) % 1 == 0).all()
    assert 0 < (s["units_sold"] % 1 != 0).mean() < 0.05  # some fractional units, as real exports have
    assert s["order_id"].is_unique
    assert s["country"].isin(COUNTRIES).all() and s["product"].isin(PRODUCTS).all()
    assert (s["customer_id"].str[1:3] == s["country"].map(COUNTRY_CODES)).all()
    assert s["customer_id"].str.fullmatch(r"C[A-Z]{2}\d{6}").all()


def test_simulator_segment_mix_and_prices(clean_sales: pd.DataFrame) -> None:
    mix = clean_sales["segment"].value_counts(normalize=True)
    for segment, share in zip(SEGMENTS, SEGMENT_MIX, strict=True):
        assert mix[segment] == pytest.approx(share, abs=0.01), segment
    prices = clean_sales.groupby("segment")["sale_price"].unique().map(sorted)
    assert prices["Government"] == [7.0, 20.0, 350.0]
    assert prices["Enterprise"] == [125.0] and prices["Small Business"] == [300.0]
    assert set(clean_sales["discount_band"]) == set(DISCOUNT_BANDS)


def test_simulator_hourly_profile_follows_local_time(clean_sales: pd.DataFrame) -> None:
    for country in ("France", "USA"):
        rows = clean_sales[clean_sales["country"] == country]
        local_hour = (rows["event_time"] + pd.Timedelta(hours=UTC_OFFSET_HOURS[country])).dt.hour
        observed = local_hour.value_counts(normalize=True).sort_index().to_numpy()
        expected = HOUR_PROFILE / HOUR_PROFILE.sum()
        assert np.abs(observed - expected).max() < 0.006, country
        assert np.corrcoef(observed, expected)[0, 1] > 0.98


def test_simulator_weekends_are_quieter_and_countries_differ(clean_sales: pd.DataFrame) -> None:
    daily = clean_sales.groupby(clean_sales["event_time"].dt.dayofweek).size() / 3  # 3 of each weekday
    assert daily[[5, 6]].mean() < 0.85 * daily[[0, 1, 2, 3, 4]].mean()
    by_country = clean_sales["country"].value_counts(normalize=True)
    assert by_country.idxmax() == "USA" and by_country.idxmin() == "Mexico"


def test_simulator_customers_repeat_and_new_ones_keep_coming(clean_sales: pd.DataFrame) -> None:
    per_customer = clean_sales.groupby("customer_id").size()
    assert (per_customer[per_customer >= 2].sum() / per_customer.sum()) > 0.8
    first_seen = clean_sales.groupby("customer_id")["event_time"].min()
    last_week = clean_sales["event_time"].max() - pd.Timedelta(days=7)
    assert (first_seen > last_week).sum() > 20
    segments_per_customer = clean_sales.groupby("customer_id")["segment"].nunique()
    assert (segments_per_customer == 1).all()  # a customer belongs to one segment


def test_simulator_promotions_make_spikes(clean_sales: pd.DataFrame) -> None:
    daily_units = clean_sales.groupby(["country", "product", clean_sales["event_time"].dt.floor("D")])[
        "units_sold"].sum()
    peak_ratio = daily_units.groupby(level=[0, 1]).agg(lambda u: u.max() / u.median())
    assert (peak_ratio > 1.5).sum() >= 3


def test_simulator_stock_reconciles_with_sales(clean_history: Path, clean_sales: pd.DataFrame) -> None:
    """Replaying restocks, adjustments and sales from the files reproduces every midnight count exactly,
    stock never goes negative, and stock-outs happen."""
    inventory = typed_inventory(read_landing(clean_history / "history" / "inventory"))
    assert set(inventory["kind"]) == {"restock", "adjustment", "count"}
    sales = clean_sales.assign(kind="sale", quantity=-clean_sales["units_sold"])
    order = {"adjustment": 0, "count": 1, "restock": 2, "sale": 3}  # the simulator's order within an instant
    events = pd.concat([inventory, sales[["event_time", "country", "product", "kind", "quantity"]]])
    events = events.assign(rank=events["kind"].map(order)).sort_values(["event_time", "rank"], kind="stable")
    counts_checked, lowest_cover = 0, []
    for (_country, _product), series in events.groupby(["country", "product"]):
        stock, low = None, np.inf
        reorder_point = inventory.loc[(inventory["country"] == _country) & (inventory["product"] == _product),
                                      "reorder_point"].iloc[0]
        for kind, quantity in zip(series["kind"], series["quantity"], strict=True):
            if kind == "count":
                if stock is not None:
                    assert stock == pytest.approx(quantity, abs=1e-6)
                    counts_checked += 1
                stock = quantity
            else:
                assert stock is not None, "an event before the opening count"
                stock += quantity
                low = min(low, stock)
                assert stock >= -1e-6
        lowest_cover.append(low / reorder_point)
    assert counts_checked == 30 * 21  # 30 series x 21 midnights after the opening count (14:13 UTC)
    assert min(lowest_cover) < 0.05  # at least one series ran (nearly) dry


def typed_inventory(inventory: pd.DataFrame) -> pd.DataFrame:
    return inventory.assign(
        event_time=pd.to_datetime(inventory["event_time"], format="%Y-%m-%dT%H:%M:%S.%fZ", utc=True),
        quantity=inventory["quantity"].astype(float),
        reorder_point=inventory["reorder_point"].astype(float),
    )


def test_simulator_fault_rates_within_tolerance(tmp_path: Path) -> None:
    """Live files pinned in time: bad rows, duplicates and late events at the requested rates."""
    run_simulator(tmp_path, seconds=900, rate=60, bad_rows_pct=3, duplicate_pct=2, late_pct=5)
    sales = read_landing(tmp_path / "sales")
    unique = sales.drop_duplicates(subset=[c for c in sales.columns if c not in ("file", "row")])
    duplicates = len(sales) - len(unique)
    valid = valid_mask(unique)
    assert len(unique) > 40_000
    assert (~valid).mean() == pytest.approx(0.03, abs=0.004)
    assert duplicates / valid.sum() == pytest.approx(0.02, abs=0.004)
    resent = sales[(sales["order_id"] != "") & sales.duplicated(subset="order_id", keep=False)]
    assert valid_mask(resent).all()  # only clean orders are re-sent
    # A duplicate sometimes lands in a later file than its original, so dedup must span files.
    spread = sales[sales.duplicated("order_id", keep=False)].groupby("order_id")["file"].nunique()
    assert (spread > 1).any() and (spread == 1).any()

    good = typed(unique[valid])
    landed = pd.to_datetime(good["file"].str.extract(r"sales-(\d{8}T\d{9})-")[0], format="%Y%m%dT%H%M%S%f", utc=True)
    delay = landed - good["event_time"]
    late = delay > pd.Timedelta(minutes=1)
    assert late.mean() == pytest.approx(0.05, abs=0.007)
    assert delay[late].max() <= pd.Timedelta(hours=3, seconds=1)
    assert delay[~late].min() >= pd.Timedelta(0)
    kinds = {"country": "Atlantis|Narnia", "product": "Unicycle", "segment": "Retail"}
    bad = unique[~valid]
    for column, pattern in kinds.items():
        assert bad[column].str.fullmatch(pattern).any(), column
    assert (pd.to_numeric(bad["units_sold"], errors="coerce") < 0).any()
    assert (bad["order_id"] == "").any() and (bad["event_time"] == "").any()


def test_simulator_live_files_arrive_per_interval(tmp_path: Path) -> None:
    totals = run_simulator(tmp_path, seconds=30, rate=20, file_interval_seconds=2)
    names = sorted(p.name for p in (tmp_path / "sales").glob("*.csv"))
    assert len(names) == 15 == totals.sales_files
    stamps = pd.to_datetime([n.split("-")[1] for n in names], format="%Y%m%dT%H%M%S%f", utc=True)
    assert set(np.diff(stamps.asi8) // 1_000_000) == {2000}
    assert stamps[-1] == pd.Timestamp(END_MS + 30_000, unit="ms", tz="UTC")
    assert not list((tmp_path / ".staging").iterdir())


def test_simulator_rate_is_the_weekly_mean(tmp_path: Path) -> None:
    """One week starting at the trend epoch (trend factor 1): rows ~ rate x seconds, plus promotion lift."""
    week_end = 1_767_225_600_000 + 7 * 86_400_000  # 2026-01-08T00:00Z
    totals = run_simulator(tmp_path, history_days=7, end_ms=week_end, history_rate=0.2,
                           bad_rows_pct=0, duplicate_pct=0, late_pct=0)
    ratio = totals.sales_rows / (0.2 * 7 * 86_400)
    assert 0.98 < ratio < 1.15, ratio
