"""Row-level security by explicit Scope: every query method of the lake repository, called with a France scope from a
request thread and from a background thread, returns exactly what an administrator gets from a lake holding only
France's rows (so no other country's row), and a call without a Scope fails.

The France-only twin is the same lake with every Parquet file rewritten by pyarrow to France's rows (tables without a
country column emptied): an independent definition of "what France may see" that does not use the repository's own
filtering."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import flask
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from dashboard.data import LakeRepository
from dashboard.filters import parse_query, period
from salespulse.kpi_report import SalesFilter
from salespulse.scope import Scope
from tests.dashboard.test_targets import build_targeted_lake
from tests.lakes import SampleLake, publish_frame

FRANCE = Scope.only(("France",))
ADMIN = Scope.everything()
SEEDED = ("France", "Germany")  # the countries the extra tables below get rows for


def seed_other_tables(spark: Any, lake: Path, at: pd.Timestamp) -> None:
    """Rows for France and Germany in the tables a backfill does not write (anomalies, alerts, reorder alerts,
    stock-out predictions), so every query has another country's rows to withhold."""
    hour = at.floor("h")
    rows = {
        "gold_forecast_anomalies": pd.DataFrame([
            {"hour": hour - pd.Timedelta(hours=i), "level": "country", "country": c, "product": None,
             "measure": "sales", "actual": 100.0 + i, "p10": 200.0, "p50": 300.0, "p90": 400.0, "direction": "below",
             "model_version": "v1", "origin": hour - pd.Timedelta(hours=i + 1), "detected_at": hour}
            for c in SEEDED for i in range(3)]),
        "gold_alert_events": pd.DataFrame([
            {"event_time": hour, "alert_id": f"sales-low|{c}|", "rule": "sales-low", "kind": "kpi_threshold",
             "status": "firing", "country": c, "product": None, "value": 1.0, "threshold": 2.0,
             "message": f"Total sales in {c} below 2", "notified": True} for c in SEEDED]
            + [{"event_time": hour, "alert_id": "stale||", "rule": "stale", "kind": "stream_stale", "status": "firing",
                "country": None, "product": None, "value": 900.0, "threshold": 600.0, "message": "stream stale",
                "notified": True}]),
        "gold_reorder_alerts": pd.DataFrame([
            {"detected_at": hour, "country": c, "product": "Velo", "stock_on_hand": 1.0, "reorder_point": 50.0,
             "days_of_cover": 0.1, "as_of": hour} for c in SEEDED]),
        "gold_stockout": pd.DataFrame([
            {"country": c, "product": "Velo", "stock_on_hand": 1.0, "as_of": hour, "units_p50_24h": 30.0,
             "predicted_stockout_time": hour + pd.Timedelta(hours=2), "model_version": "v1", "generated_at": hour}
            for c in SEEDED]),
    }
    for table, frame in rows.items():
        times = frame.select_dtypes("datetime").columns
        publish_frame(spark, lake, table, f"gold/{table.removeprefix('gold_')}",
                      frame.astype(dict.fromkeys(times, "datetime64[us]")), f"scope-{table}")


def france_only_twin(lake: Path, twin: Path) -> None:
    """A copy of ``lake`` whose Parquet files hold France's rows only (none in a table without a country column)."""
    shutil.copytree(lake, twin)
    for file in twin.rglob("*.parquet"):
        table = pq.read_table(file)
        kept = (table.filter(pc.fill_null(pc.equal(table["country"], "France"), False))
                if "country" in table.column_names else table.slice(0, 0))
        pq.write_table(kept, file)


@pytest.fixture(scope="module")
def lakes(sample_lake: SampleLake, spark: Any, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Path, Path, Path, SalesFilter]:
    root = tmp_path_factory.mktemp("scope")
    full, _ = build_targeted_lake(sample_lake, spark, root)
    newest = LakeRepository(full.lake, root / "models").newest_hour(ADMIN)
    seed_other_tables(spark, full.lake, newest)
    france_only_twin(full.lake, root / "france-only")
    where = period(parse_query("?range=30d"), newest)
    return full.lake, root / "france-only", root / "models", where


def calls(where: SalesFilter) -> dict[str, Callable[[LakeRepository, Scope], Any]]:
    """Every query method with arguments that reach its tables."""
    recent = SalesFilter(where.end - timedelta(days=2), where.end)
    return {
        "ready_version": lambda r, s: r.ready_version(s) != "",
        "stream_status": lambda r, s: r.stream_status(s),
        "model_info": lambda r, s: r.model_info(s),
        "countries": lambda r, s: r.countries(s),
        "newest_hour": lambda r, s: r.newest_hour(s),
        "kpis": lambda r, s: r.kpis(s, where),
        "sales_by": lambda r, s: r.sales_by(s, where, ("country", "segment")),
        "sales_over_time": lambda r, s: r.sales_over_time(s, where, "day", ("country",)),
        "export_rows": lambda r, s: r.export_rows(s, where, "day"),
        "comparison": lambda r, s: r.comparison(s, where),
        "sales_by_month": lambda r, s: r.sales_by_month(s, where),
        "with_partial_periods": lambda r, s: r.with_partial_periods(
            s, r.sales_over_time(s, where, "week", ("country",)), where, "week"),
        "customers_by": lambda r, s: r.customers_by(s, where, "country"),
        "forecasts": lambda r, s: r.forecasts(s, recent),
        "anomalies": lambda r, s: r.anomalies(s, recent),
        "target_attainment": lambda r, s: r.target_attainment(s, where),
        "stock": lambda r, s: r.stock(s, where),
        "reorder_alerts": lambda r, s: r.reorder_alerts(s, where),
        "engagement_by_country": lambda r, s: r.engagement_by_country(s, where),
        "stock_over_time": lambda r, s: r.stock_over_time(s, recent),
        "has_stockout_forecasts": lambda r, s: r.has_stockout_forecasts(s),
        "active_alerts": lambda r, s: r.active_alerts(s),
        "quarantine_over_time": lambda r, s: r.quarantine_over_time(s, "day"),
        "quarantine_sample": lambda r, s: r.quarantine_sample(s),
        "ingest_over_time": lambda r, s: r.ingest_over_time(s, where, "day"),
        "backfill_reports": lambda r, s: r.backfill_reports(s),
        "manifest_streams": lambda r, s: r.manifest_streams(s),
    }


# What a restricted scope gets instead of the twin's administrator view: figures over every country are withheld,
# and the filter lists the scope's countries only.
WITHHELD = {"backfill_reports": [], "manifest_streams": {}, "countries": ("France",)}


def query_methods() -> set[str]:
    """LakeRepository's query methods: those wrapped to take a Scope."""
    return {name for name, member in vars(LakeRepository).items() if hasattr(member, "__wrapped__")}


def frames_in(value: Any) -> list[pd.DataFrame]:
    if isinstance(value, pd.DataFrame):
        return [value]
    if isinstance(value, tuple):
        return [f for part in value for f in frames_in(part)]
    return []


def assert_same(name: str, got: Any, want: Any) -> None:
    if isinstance(want, tuple) and any(isinstance(p, pd.DataFrame) for p in want):
        assert len(got) == len(want), name
        for part_got, part_want in zip(got, want, strict=True):
            assert_same(name, part_got, part_want)
    elif isinstance(want, pd.DataFrame):
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False,
                                      obj=name)
    else:
        assert got == want, name


def run_all(lake: Path, models: Path, scope: Scope, where: SalesFilter, in_thread: str) -> dict[str, Any]:
    """Every query on a fresh repository (nothing cached from another run), from a request or a background thread."""
    repo, results = LakeRepository(lake, models), {}

    def run() -> None:
        for name, call in calls(where).items():
            results[name] = call(repo, scope)

    if in_thread == "request":
        with flask.Flask(__name__).test_request_context("/_dash-update-component", method="POST"):
            run()
    else:
        worker = threading.Thread(target=run, name="background-reader")
        worker.start()
        worker.join()
    assert len(results) == len(calls(where)), "a query failed in the thread (see its traceback above)"
    return results


@pytest.mark.slow
@pytest.mark.parametrize("in_thread", ["request", "background"])
def test_every_query_with_a_france_scope_returns_only_what_france_may_see(
        lakes: tuple[Path, Path, Path, SalesFilter], in_thread: str) -> None:
    full, twin, models, where = lakes
    assert set(calls(where)) == query_methods(), "every query method needs a case here"
    france = run_all(full, models, FRANCE, where, in_thread)
    only_france = run_all(twin, models, ADMIN, where, "request")
    everyone = run_all(full, models, ADMIN, where, "request")
    for name in calls(where):
        assert_same(name, france[name], WITHHELD.get(name, only_france[name]))
        for frame in frames_in(france[name]):
            if "country" in frame:
                assert set(frame["country"].dropna()) <= {"France"}, name
    # the twin comparison is not vacuous: France has rows where the full lake has other countries' too
    for name in ("sales_by", "customers_by", "forecasts", "anomalies", "stock", "active_alerts",
                 "engagement_by_country", "stock_over_time"):
        shown = frames_in(france[name])[0]
        assert not shown.empty and set(frames_in(everyone[name])[0]["country"].dropna()) > {"France"}, name
    assert set(france["target_attainment"][1]["country"]) == {"France"}
    assert france["kpis"]["sales"] < everyone["kpis"]["sales"]
    assert france["quarantine_sample"].empty and not everyone["quarantine_sample"].empty  # rows without a country


def test_a_query_without_a_scope_fails(lakes: tuple[Path, Path, Path, SalesFilter]) -> None:
    full, _, models, where = lakes
    repo = LakeRepository(full, models)
    for name in query_methods():
        method = getattr(repo, name)
        with pytest.raises(TypeError):
            method()
        for not_a_scope in (None, ("France",), where):
            with pytest.raises(TypeError, match="needs a Scope"):
                method(not_a_scope)
    with pytest.raises(RuntimeError, match="no Scope"):
        repo._scan("gold_sales_hourly")  # a private reader outside a query method
