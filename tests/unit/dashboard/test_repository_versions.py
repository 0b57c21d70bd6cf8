"""Per-version work after a publish: the repository copies what did not change from the viewer's previous version
(daily sales rollup rows and customer bitsets of days whose files are the same) and reads only the changed days.
Over a series of publishes (new days, late rows, a customer seen earlier than before, compaction, retention) its
answers stay equal to pandas over every published row."""

from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dashboard import data
from dashboard.data import LakeRepository
from salespulse.kpi_report import SalesFilter
from salespulse.lake import MANIFEST, TABLES
from salespulse.scope import Scope
from tests.scopes import inside_a_query

ADMIN = Scope.everything()  # the reader's scope: every country

DAYS = [date(2026, 3, 1) + timedelta(days=n) for n in range(4)]
COUNTRIES = ("France", "Germany")
SEGMENTS = ("Government", "Midmarket")
FRANCE = ("France",)


class Lake:
    """gold_customers_daily and gold_sales_hourly written as the lake's writers do: each batch a new directory
    of event_date partitions, published by a manifest swap. A customer row sells at one hour of its day."""

    def __init__(self, root: Path):
        self.root = root
        self.batches: dict[str, pd.DataFrame] = {}
        self.serial = 0

    def write(self, name: str, rows: pd.DataFrame) -> str:
        self.batches[name] = rows
        sales = rows.assign(hour=[datetime.combine(d, datetime.min.time()) + timedelta(hours=h)
                                  for d, h in zip(rows["event_date"], rows["hour_of_day"], strict=True)],
                            product="Paseo", discount_band="None", units_sold=rows["orders"] * 2.0,
                            gross_sales=rows["sales"], discounts=0.0, cogs=rows["sales"] / 2, profit=rows["sales"] / 2)
        for table, frame in (("gold_customers_daily", rows), ("gold_sales_hourly", sales)):
            columns = [c for c in TABLES[table].column_names if c != "event_date"]
            for day, part in frame.groupby("event_date"):
                folder = self.root / TABLES[table].folder / f"dir={name}" / f"event_date={day.isoformat()}"
                folder.mkdir(parents=True)
                pq.write_table(pa.Table.from_pandas(part[columns], preserve_index=False), folder / "part-0.parquet")
        return name

    def publish(self, *names: str) -> pd.DataFrame:
        """A manifest listing the batches ``names``; returns their rows (what every answer must count)."""
        self.serial += 1
        tables = {t: [f"{TABLES[t].folder}/dir={n}" for n in names]
                  for t in ("gold_customers_daily", "gold_sales_hourly")}
        staged = self.root / f".manifest-{self.serial}"
        staged.write_text(json.dumps({"tables": tables, "schemas": {}, "serial": self.serial}))
        staged.replace(self.root / MANIFEST)
        return pd.concat([self.batches[n] for n in names], ignore_index=True)


def customer_rows(rng: np.random.Generator, days: list[date], customers: list[str], n: int) -> pd.DataFrame:
    picked = rng.choice(customers, n)
    first = {c: DAYS[0] - timedelta(days=int(rng.integers(0, 30))) for c in customers}
    return pd.DataFrame({
        "country": rng.choice(COUNTRIES, n), "segment": rng.choice(SEGMENTS, n), "customer_id": picked,
        "orders": rng.integers(1, 3, n), "sales": rng.integers(100, 10_000, n) / 100.0,
        "first_order_date": [first[c] for c in picked], "event_date": rng.choice(days, n),
        "hour_of_day": rng.integers(0, 24, n)})


def expected_customers(rows: pd.DataFrame, viewer: tuple[str, ...] | None, first: date, last: date,
                       by: str | None) -> dict[Any, dict[str, int]]:
    """Active, new, repeat customers and orders per group over whole days ``first``..``last``, from the rows the
    viewer may see ("new": first order ever, over the viewer's rows, on or after ``first``)."""
    seen = rows if viewer is None else rows[rows["country"].isin(viewer)]
    first_ever = seen.groupby("customer_id")["first_order_date"].min()
    period = seen[(seen["event_date"] >= first) & (seen["event_date"] <= last)]
    found = {}
    for group, part in period.assign(all="all").groupby(by or "all"):
        orders = part.groupby("customer_id")["orders"].sum()
        found[group] = {
            "active_customers": len(orders), "new_customers": int((first_ever[orders.index] >= first).sum()),
            "repeat_customers": int((orders >= 2).sum()), "customer_orders": int(orders.sum())}
    return found


def expected_sales(rows: pd.DataFrame, viewer: tuple[str, ...] | None, first: date, last: date) -> dict:
    seen = rows if viewer is None else rows[rows["country"].isin(viewer)]
    period = seen[(seen["event_date"] >= first) & (seen["event_date"] <= last)]
    sums = period.groupby(["country", "segment"])[["orders", "sales"]].sum()
    return {key: (int(v["orders"]), round(float(v["sales"]), 2)) for key, v in sums.iterrows()}


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path)


@pytest.mark.parametrize("renewed", [False, True], ids=["one database", "a new database every version"])
def test_answers_after_each_publish_equal_pandas_and_only_changed_days_are_read_again(
        lake: Lake, monkeypatch: pytest.MonkeyPatch, renewed: bool) -> None:
    if renewed:  # a new DuckDB database has no previous tables: every version is read whole, with the same answers
        monkeypatch.setattr(data, "DATABASE_VERSIONS", 1)
    rng = np.random.default_rng(3)
    old = [f"c{n:03d}" for n in range(100, 160)]
    later = [f"c{n:03d}" for n in range(160, 200)]
    kept: list[list[int]] = []  # per customer bitset build: the epoch days copied from the previous build
    real_build = data.build_customer_cells

    def spying_build(*args: Any, **kwargs: Any) -> Any:
        kept.append(sorted(args[7]) if len(args) > 7 else [])
        return real_build(*args, **kwargs)
    monkeypatch.setattr(data, "build_customer_cells", spying_build)
    daily_sql: list[str] = []
    real_create = LakeRepository._create

    def spying_create(self: LakeRepository, name: str, select: Any, days: Any = None) -> str:
        def recorded(previous: Any) -> str:
            sql = select(previous)
            if name == "sales_daily":
                daily_sql.append(sql)
            return sql
        return real_create(self, name, recorded, days)
    monkeypatch.setattr(LakeRepository, "_create", spying_create)

    repo = LakeRepository(lake.root, lake.root / "models")
    epoch = {d: (d - date(1970, 1, 1)).days for d in DAYS}
    a = lake.write("a", customer_rows(rng, DAYS[:3], old, 300))
    b = lake.write("b", customer_rows(rng, DAYS[2:3], old + later[:20], 80))  # day 3 again, new customers
    c = lake.write("c", customer_rows(rng, DAYS[3:], old + later, 80))  # a new day
    late = customer_rows(rng, DAYS[:1], ["c001"], 2)  # a customer numbered before all, first seen on day 1
    d = lake.write("d", pd.concat([late, customer_rows(rng, DAYS[1:2], later[30:], 5)]))  # others now seen earlier
    every = pd.concat([lake.batches[n] for n in (a, b, c, d)])
    keys = ["country", "segment", "customer_id", "event_date"]
    merged = every.groupby(keys, as_index=False).agg(orders=("orders", "sum"), sales=("sales", "sum"),
                                                     first_order_date=("first_order_date", "min"),
                                                     hour_of_day=("hour_of_day", "min"))
    # compaction: the same rows, merged, in new directories (the first day apart, so retention can drop it alone)
    e0 = lake.write("e0", merged[merged["event_date"] == DAYS[0]])
    e1 = lake.write("e1", merged[merged["event_date"] > DAYS[0]])
    g = lake.write("g", customer_rows(rng, DAYS[3:], old, 30))

    # published batches; the days whose customer bitsets carry over (with the same files, and before the first day
    # whose customers changed: without the first day, its customers are first seen later); the days whose daily
    # rollup carries over (the same files)
    steps = [((a,), None, None), ((a, b), DAYS[:2], DAYS[:2]), ((a, b, c), DAYS[:3], DAYS[:3]),
             ((a, b, c, d), [], DAYS[2:]), ((e0, e1), [], []), ((e1,), [], DAYS[1:]),
             ((e1, g), DAYS[1:3], DAYS[1:3])]
    if renewed:
        steps = [(names, None if carried is None else [], None if daily is None else [])
                 for names, carried, daily in steps]
    for names, carried, carried_daily in steps:
        rows = lake.publish(*names)
        for countries in (None, FRANCE):
            before = len(kept)
            for first, last in ((DAYS[0], DAYS[3]), (DAYS[1], DAYS[2]), (DAYS[3], DAYS[3])):
                where = SalesFilter.for_dates(first, last)
                for by in (None, "country"):
                    shown = repo.customers_by(Scope(countries), where, by).set_index(by or "scope").to_dict("index")
                    assert shown == expected_customers(rows, countries, first, last, by), (names, countries, by)
                sums = repo.sales_by(Scope(countries), where, ("country", "segment"))
                assert {(r.country, r.segment): (int(r.orders), round(float(r.sales), 2))
                        for r in sums.itertuples() if r.orders} == expected_sales(rows, countries, first, last)
            assert len(kept) == before + 1  # one bitset build per version and viewer
            if carried is not None:
                assert kept[-1] == [epoch[day] for day in carried], (names, countries)
        if carried_daily is not None:  # the newest daily rollup read only the changed days' files
            copied = [day for day in DAYS if f"DATE '{day.isoformat()}'" in daily_sql[-1]]
            assert copied == carried_daily, names
            read = {day for day in DAYS for name in names
                    if f"dir={name}/event_date={day.isoformat()}" in daily_sql[-1]}
            assert read == set(rows["event_date"]) - set(carried_daily), names


@pytest.fixture
def held_build(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Customer bitset builds that wait for ``release`` (set at the end of the test), each recording the viewer
    it built for."""
    release, viewers = threading.Event(), []
    real_build = data.build_customer_cells

    def held(*args: Any, **kwargs: Any) -> Any:
        viewers.append(repo_under_test[0]._viewer())
        release.wait(30)
        return real_build(*args, **kwargs)
    monkeypatch.setattr(data, "build_customer_cells", held)
    repo_under_test: list[LakeRepository] = []
    yield release, viewers, repo_under_test
    release.set()


def test_a_new_version_is_told_once_its_shared_tables_are_built_for_that_viewer(lake: Lake, held_build: Any,
                                                                                 tmp_path: Path) -> None:
    release, viewers, repo_under_test = held_build
    rng = np.random.default_rng(5)
    lake.publish(lake.write("a", customer_rows(rng, DAYS[:2], [f"c{n}" for n in range(20)], 40)))
    repo = LakeRepository(lake.root, tmp_path / "models")
    repo_under_test.append(repo)
    assert repo.ready_version(Scope.only(FRANCE)) == ""  # its build is held: "no change yet"
    release.set()
    deadline = time.monotonic() + 30
    while not (version := repo.ready_version(Scope.only(FRANCE))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert version == repo.data_version() != ""
    assert viewers == [FRANCE]  # built for the asking viewer, though the build's thread has no request

    def must_not_run() -> Any:
        raise AssertionError("the views' shared tables should have been built already")
    with inside_a_query(Scope.only(FRANCE)):  # as that viewer's next query
        assert repo._cached(("customer_cells",), must_not_run) is not None
        assert repo._cached(("coverage",), must_not_run) is not None  # the daily rollup it is read from, too


def test_a_new_version_is_held_back_at_most_the_hold(lake: Lake, held_build: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, repo_under_test = held_build
    monkeypatch.setattr(data, "PREPARE_HOLD_SECONDS", 0.5)
    rng = np.random.default_rng(6)
    lake.publish(lake.write("a", customer_rows(rng, DAYS[:1], ["c1", "c2"], 4)))
    repo = LakeRepository(lake.root, tmp_path / "models")
    repo_under_test.append(repo)
    assert repo.ready_version(Scope.only(FRANCE)) == ""
    time.sleep(0.6)
    assert repo.ready_version(ADMIN) == repo.data_version() != ""  # the build still runs, but the data is not hidden
