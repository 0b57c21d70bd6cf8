"""Dashboard callbacks called directly on a small real lake (simulator files -> Spark backfill), checked against
pandas over the simulator's own CSV files and against `salespulse kpis`."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go
import pytest
from click.testing import CliRunner

from dashboard import callbacks, ids
from dashboard.data import LakeRepository
from dashboard.filters import parse_query, period
from salespulse.cli import main
from salespulse.kpi_report import customer_totals
from salespulse.lake import duckdb_scan
from salespulse.metrics import format_kpi
from salespulse.scope import Scope
from salespulse.settings import DashboardSettings
from tests.conftest import read_landing
from tests.lakes import SampleLake, publish_frame, sample_forecasts
from tests.unit.salespulse.test_simulator import valid_mask

ADMIN = Scope.everything()  # the reader's scope: every country

pytestmark = pytest.mark.spark
SETTINGS = DashboardSettings(time_zone="Europe/Paris")
QUERIES = (
    "?range=7d&grain=day",
    "?start=2026-09-10&end=2026-09-15&country=USA,France&grain=hour",
    "?range=30d&segment=Government,Enterprise&band=None,Low",
    "?range=today&product=Velo&grain=minute",
)


def cents(value: Any) -> int:
    return int((Decimal(str(value)) * 100).quantize(Decimal(1)))


@pytest.fixture(scope="module")
def truth(sample_lake: SampleLake) -> pd.DataFrame:
    """The sales a careful analyst keeps from the simulator's files: valid rows, one per order id."""
    raw = read_landing(sample_lake.landing / "history" / "sales")
    kept = raw[valid_mask(raw)].drop_duplicates("order_id")
    numbers = {c: kept[c].astype(float) for c in ("sales", "profit", "units_sold")}
    return kept.assign(**numbers, event_time=pd.to_datetime(kept["event_time"]).dt.tz_convert("UTC"))


def expected(truth: pd.DataFrame, query: str | None, newest: pd.Timestamp) -> pd.DataFrame:
    view = parse_query(query)
    where = period(view, newest)
    rows = truth[(truth["event_time"] >= where.start) & (truth["event_time"] < where.end)]
    for column, values in (("country", view.countries), ("segment", view.segments), ("product", view.products),
                           ("discount_band", view.bands)):
        if values:
            rows = rows[rows[column].isin(values)]
    return rows


def texts(component: Any) -> list[str]:
    """Every string in a Dash component tree."""
    if isinstance(component, str):
        return [component]
    if isinstance(component, list | tuple):
        return [t for c in component for t in texts(c)]
    children = getattr(component, "children", None)
    return texts(children) if children is not None else []


@pytest.fixture(scope="module")
def repo(sample_lake: SampleLake) -> LakeRepository:
    return LakeRepository(sample_lake.lake, sample_lake.root / "models")


@pytest.mark.parametrize("query", QUERIES)
def test_overview_cards_and_charts_match_pandas_over_the_source_files(repo: LakeRepository, truth: pd.DataFrame,
                                                                      query: str) -> None:
    rows = expected(truth, query, repo.newest_hour(ADMIN))
    assert len(rows) > 0, "the filter combination must select some sales"
    cards, segment_donut, country_pie, _, products, trend, top, _ = callbacks.overview_outputs(
        repo, ADMIN, query, SETTINGS)
    segment_donut, country_pie, products = (go.Figure(f) for f in (segment_donut, country_pie, products))
    shown = texts(cards)
    assert format_kpi("total_sales", round(rows["sales"].sum(), 2)) in shown
    assert format_kpi("profit", round(rows["profit"].sum(), 2)) in shown
    assert format_kpi("orders", len(rows)) in shown
    assert format_kpi("avg_transaction_value", rows["sales"].sum() / len(rows)) in shown
    view = parse_query(query)
    if not view.products and not view.bands:
        assert format_kpi("active_customers", rows["customer_id"].nunique()) in shown
    by_country = rows.groupby("country")["sales"].sum()
    pie = dict(zip(country_pie.data[0].labels, country_pie.data[0].values, strict=True))
    assert {k: cents(round(v, 2)) for k, v in pie.items()} == {k: cents(round(v, 2)) for k, v in by_country.items()}
    assert cents(round(sum(segment_donut.data[0].values), 2)) == cents(round(rows["sales"].sum(), 2))
    lines = {trace["customdata"][0]: sum(trace["y"]) for trace in trend["data"]}
    assert lines == pytest.approx(by_country.to_dict(), abs=0.01)  # the trend covers every sale once
    units = dict(zip(products.data[1].x, products.data[1].y, strict=True))
    assert units == pytest.approx(rows.groupby("product")["units_sold"].sum().to_dict())
    best = rows.groupby(["country", "product"])["sales"].sum().nlargest(1)
    assert (top[0]["country"], top[0]["product"]) == best.index[0]


@pytest.mark.parametrize("search", [QUERIES[1], None])
def test_the_page_opens_on_its_links_view_with_the_first_tab_drawn(repo: LakeRepository, truth: pd.DataFrame,
                                                                  search: str | None) -> None:
    page = callbacks.page(repo, ADMIN, None, search, SETTINGS)
    view = parse_query(search)
    rows = expected(truth, search, repo.newest_hour(ADMIN))
    assert len(rows) > 0
    assert set(page[ids.COUNTRY].value) == set(view.countries)  # the controls show the link's filters
    assert page[ids.GRAIN].value == view.grain
    newest = repo.newest_hour(ADMIN)
    assert period(parse_query(page[ids.FILTERS].data), newest) == period(view, newest)
    if view.start:
        assert (page[ids.DATES].start_date, page[ids.DATES].end_date) == (str(view.start), str(view.end))
    shown = texts(page[ids.KPI_CARDS].children)  # the Overview is drawn from the layout, no callback needed
    assert format_kpi("total_sales", round(rows["sales"].sum(), 2)) in shown
    assert format_kpi("orders", len(rows)) in shown
    pie = go.Figure(page[ids.clickable(ids.COUNTRY_PIE, "country")].figure).data[0]
    by_country = rows.groupby("country")["sales"].sum()
    assert {k: cents(round(v, 2)) for k, v in zip(pie.labels, pie.values, strict=True)} == \
        {k: cents(round(v, 2)) for k, v in by_country.items()}


@pytest.mark.parametrize("query", QUERIES[:3])
def test_dashboard_kpis_equal_the_kpis_command(repo: LakeRepository, sample_lake: SampleLake, query: str) -> None:
    view = parse_query(query)
    where = period(view, repo.newest_hour(ADMIN))
    flags = ["--start", where.start.date().isoformat(),
             "--end", (where.end - pd.Timedelta(microseconds=1)).date().isoformat()]
    for flag, values in (("--country", view.countries), ("--segment", view.segments), ("--band", view.bands)):
        if values:
            flags += [flag, ",".join(values)]
    result = CliRunner().invoke(main, ["kpis", "--lake", str(sample_lake.lake), "--json", *flags])
    assert result.exit_code == 0, result.output
    cli = json.loads(result.output, parse_float=Decimal)[0]
    shown = repo.kpis(ADMIN, where)
    assert {"orders", "sales", "items_per_hour"} < set(cli) and set(cli) - {"scope"} <= set(shown)
    for key, value in cli.items():
        if key == "scope":
            continue
        if isinstance(shown[key], Decimal):  # money and its ratios: the same exact value
            assert shown[key] == value, key
        else:
            assert shown[key] == pytest.approx(float(value) if isinstance(value, Decimal) else value, nan_ok=True), key


def test_customer_tab_matches_distinct_customers_in_the_files(repo: LakeRepository, truth: pd.DataFrame) -> None:
    query = "?range=7d&country=Germany,Mexico"
    rows = expected(truth, query, repo.newest_hour(ADMIN))
    note, cards, by_country, _, repeat, _, _ = callbacks.customers_outputs(repo, ADMIN, query, SETTINGS)
    assert note is None
    assert format_kpi("active_customers", rows["customer_id"].nunique()) in texts(cards)
    active = rows.groupby("country")["customer_id"].nunique()
    stacked = {x: 0 for x in by_country.data[0].x}
    for trace in by_country.data:  # new + returning = active
        for x, y in zip(trace.x, trace.y, strict=True):
            stacked[x] += y
    assert stacked == active.to_dict()
    orders = rows.groupby(["country", "customer_id"]).size()
    rate = (orders >= 2).groupby("country").mean()
    got = dict(zip(repeat.data[0].x, repeat.data[0].y, strict=True))
    assert got == pytest.approx(rate.to_dict())


CUSTOMER_QUERIES = (  # periods over several UTC days, with country and segment filters, at hour and minute grain
    "?start=2026-09-10&end=2026-09-12&country=USA,France&grain=hour",
    "?range=7d&country=Germany&segment=Enterprise,Midmarket&grain=day",
    "?range=last-hour&segment=Government,Small+Business&grain=minute",
    "?range=today&country=Canada,Mexico&grain=minute",
    "?range=90d",
)


@pytest.mark.parametrize("query", CUSTOMER_QUERIES)
def test_customer_rollup_equals_pandas_and_the_kpis_commands_sql(repo: LakeRepository, truth: pd.DataFrame,
                                                                  sample_lake: SampleLake, query: str) -> None:
    """The dashboard's customer bitsets vs distinct customers in the source files (whole UTC days touching the
    period, "new" = first order ever on or after its first day) and vs `salespulse kpis`' SQL (customer_totals)."""
    where = period(parse_query(query), repo.newest_hour(ADMIN))
    first, last = where.start.date(), (where.end - pd.Timedelta(microseconds=1)).date()
    day = truth["event_time"].dt.date
    first_ever = truth.assign(day=day).groupby("customer_id")["day"].min()
    rows = truth[(day >= first) & (day <= last)]
    for column, values in (("country", where.countries), ("segment", where.segments)):
        if values:
            rows = rows[rows[column].isin(values)]
    assert len(rows) > 0
    customers = duckdb_scan(sample_lake.lake, "gold_customers_daily")
    for dimension in (None, "country", "segment"):
        groups = rows.assign(grp="all" if dimension is None else rows[dimension]).groupby("grp")
        orders = groups["customer_id"].value_counts()
        expected_rows = pd.DataFrame({
            "active_customers": groups["customer_id"].nunique(),
            "new_customers": groups["customer_id"].agg(lambda c: (first_ever[c.unique()] >= first).sum()),
            "repeat_customers": (orders >= 2).groupby("grp").sum(),
            "customer_orders": groups.size()}).astype("int64").sort_index()
        shown = repo.customers_by(ADMIN, where, dimension).set_index(dimension or "scope").sort_index()
        sql = customer_totals(duckdb.connect(), customers, dimension, where).set_index("grp").sort_index()
        assert shown.to_dict("index") == expected_rows.to_dict("index"), dimension
        assert shown.to_dict("index") == sql.to_dict("index"), dimension
    view = parse_query(query)
    cards = texts(callbacks.overview_outputs(repo, ADMIN, query, SETTINGS)[0])
    assert format_kpi("active_customers", rows["customer_id"].nunique()) in cards, view


def test_export_csv_holds_the_filtered_view(repo: LakeRepository, truth: pd.DataFrame) -> None:
    query = "?start=2026-09-12&end=2026-09-14&segment=Midmarket&grain=day"
    frame, name = callbacks.export_frame(repo, ADMIN, query)
    rows = expected(truth, query, repo.newest_hour(ADMIN))
    assert name == "salespulse-2026-09-12-2026-09-14-day.csv"
    assert set(frame["segment"]) == {"Midmarket"}
    assert cents(round(frame["sales"].sum(), 2)) == cents(round(rows["sales"].sum(), 2))
    assert frame["orders"].sum() == len(rows)
    assert frame["day_start_utc"].min() == "2026-09-12T00:00:00Z"


def test_forecast_tabs_say_so_before_training_then_show_forecasts(lake_copy: SampleLake, spark) -> None:
    repo = LakeRepository(lake_copy.lake, lake_copy.root / "models")
    note, chart, _ = callbacks.trends_outputs(repo, ADMIN, "?range=7d", SETTINGS)
    assert "salespulse train" in " ".join(texts(note))
    assert "salespulse train" in " ".join(texts(callbacks.inventory_outputs(repo, ADMIN, "?range=7d", SETTINGS)[0]))

    last30 = period(parse_query("?range=30d"), repo.newest_hour(ADMIN))
    hourly = repo.sales_over_time(ADMIN, last30, "hour", ("country",))
    hourly = hourly.rename(columns={"period": "hour"})
    origin = repo.newest_hour(ADMIN) - pd.Timedelta(hours=5)
    publish_frame(spark, lake_copy.lake, "gold_forecasts", "gold/forecasts", sample_forecasts(hourly, origin), "test-1")
    note, chart, _ = callbacks.trends_outputs(repo, ADMIN, "?range=7d&country=USA", SETTINGS)
    assert note is None
    p50 = [t for t in chart.data if t.name == "forecast p50"]
    assert len(p50) == 1 and len(p50[0].x) == 24  # USA only, one forecast per hour of the horizon
    week_before = hourly[(hourly["country"] == "USA") & (hourly["hour"] == origin + pd.Timedelta(hours=1, days=-7))]
    assert p50[0].y[0] == pytest.approx(week_before["sales"].iloc[0])


def test_new_data_changes_the_version_and_the_numbers(lake_copy: SampleLake, spark) -> None:
    from tests.conftest import END_MS, run_simulator
    from tests.lakes import backfill_more

    repo = LakeRepository(lake_copy.lake, lake_copy.root / "models")
    version, before = repo.data_version(), repo.kpis(ADMIN, period(parse_query(""), repo.newest_hour(ADMIN)))
    assert repo.data_version() == version  # nothing published: the same version, served from cache
    more = lake_copy.root / "more"
    run_simulator(more, history_days=0.25, history_rate=0.05, end_ms=END_MS + 6 * 3600 * 1000, seed=11)
    backfill_more(spark, lake_copy, more / "history" / "sales", "more")
    assert repo.data_version() != version
    after = repo.kpis(ADMIN, period(parse_query(""), repo.newest_hour(ADMIN)))
    assert after["orders"] > before["orders"]


def test_header_freshness_turns_amber_then_red() -> None:
    settings = DashboardSettings(stale_amber_seconds=30, stale_red_seconds=120, time_zone="Europe/Paris")
    status = {"updated_at": "2026-09-21T12:00:00+00:00"}
    at = datetime(2026, 9, 21, 12, 0, 10, tzinfo=timezone.utc)
    assert callbacks.freshness_badge(status, None, at, settings) == ("data as of 14:00:00 (10 s ago)", "success")
    assert callbacks.freshness_badge(status, None, at.replace(minute=1), settings)[1] == "warning"
    assert callbacks.freshness_badge(status, None, at.replace(minute=5), settings)[1] == "danger"
    assert "no live stream" in callbacks.freshness_badge(None, "2026-09-21T12:00:00+00:00", at, settings)[0]


def test_clicks_name_the_category() -> None:
    assert callbacks.clicked_value({"points": [{"label": "USA", "customdata": ["USA"]}]}) == "USA"
    assert callbacks.clicked_value({"points": [{"x": "Velo", "customdata": "Velo"}]}) == "Velo"
    assert callbacks.clicked_value(None) is None


def test_a_viewer_of_no_country_gets_an_empty_page_not_a_warning(sample_lake: SampleLake) -> None:
    repo = LakeRepository(sample_lake.lake, sample_lake.root / "models")
    outputs = callbacks.guarded(callbacks.overview_outputs, 8, repo, Scope.only(()), "?range=30d", SETTINGS)
    assert outputs[8] == []  # no read warning
    assert outputs[6] == []  # an empty top table
    assert not any(trace.get("values") for trace in outputs[2]["data"])  # an empty country pie

