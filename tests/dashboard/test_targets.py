"""Targets on a small real lake: loaded and set through the CLI (published by Spark in the manifest), then
attainment to date and the projected month end from the repository and the Overview's callback, checked against
pandas over the simulator's own files, the forecast table as published and the targets file; a France-only
viewer gets France's targets only."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from dashboard import targets as targets_view
from dashboard.data import LakeRepository
from dashboard.filters import parse_query, period
from salespulse.cli import main
from salespulse.scope import Scope
from salespulse.settings import DashboardSettings
from tests.conftest import read_landing
from tests.lakes import SampleLake, publish_frame, sample_forecasts
from tests.unit.salespulse.test_simulator import valid_mask

ADMIN = Scope.everything()  # the reader's scope: every country

pytestmark = pytest.mark.spark
SETTINGS = DashboardSettings(time_zone="Europe/Paris")
MONTH_END = pd.Timestamp("2026-10-01")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Expected:
    """Per (country, segment or None): the month's actual sales and profit and the projected month end."""

    actual: dict[tuple[str, str | None], tuple[Decimal, Decimal]]
    projected: dict[tuple[str, str | None], tuple[Decimal, Decimal]]


def september_truth(sample: SampleLake) -> pd.DataFrame:
    """The valid, deduplicated sales of the simulator's files, money as exact Decimals of their text."""
    raw = read_landing(sample.landing / "history" / "sales")
    kept = raw[valid_mask(raw)].drop_duplicates("order_id")
    times = pd.to_datetime(kept["event_time"], utc=True).dt.tz_localize(None)
    kept = kept.assign(event_time=times, sales=kept["sales"].map(Decimal), profit=kept["profit"].map(Decimal))
    return kept[(times >= pd.Timestamp("2026-09-01")) & (times < MONTH_END)]


def expected_figures(truth: pd.DataFrame, forecasts: pd.DataFrame) -> Expected:
    """The projection rule of docs/dashboard.md, written out with pandas: the month's actuals plus the
    forecast p50 of the hours after the newest data hour, later hours at the forecast's mean hourly p50; a
    segment's part by its share of the country's sales, profit at the month-to-date margin."""
    data_end = truth["event_time"].max().floor("h") + pd.Timedelta(hours=1)
    hours_left = int((MONTH_END - data_end) / pd.Timedelta(hours=1))
    actual, projected = {}, {}
    for country, rows in truth.groupby("country"):
        fc = forecasts[forecasts["country"] == country]
        ahead = fc[(fc["hour"] >= data_end) & (fc["hour"] < MONTH_END)]["sales_p50"]
        rate = Decimal(repr(float(fc["sales_p50"].mean())))
        left = Decimal(repr(float(ahead.sum()))) + rate * (hours_left - len(ahead))
        country_sales = rows["sales"].sum()
        for segment, part in [(None, rows), *rows.groupby("segment")]:
            sales, profit = part["sales"].sum(), part["profit"].sum()
            mine = left * sales / country_sales
            actual[(country, segment)] = (sales, profit)
            projected[(country, segment)] = (sales + mine, profit + mine * profit / sales)
    return Expected(actual, projected)


@pytest.fixture(scope="module")
def targeted(sample_lake: SampleLake, spark, tmp_path_factory: pytest.TempPathFactory) -> tuple[SampleLake, Expected]:
    return build_targeted_lake(sample_lake, spark, tmp_path_factory.mktemp("targets"))


def build_targeted_lake(sample_lake: SampleLake, spark, root: Path) -> tuple[SampleLake, Expected]:
    """A copy of the sample lake with forecasts published and targets loaded by `salespulse targets load` and
    `set`: France and USA (as its alias "United States") whole-country, France's Government segment, Germany in
    another month; each on track or at risk by a clear margin of the expected projection."""
    import shutil
    from dataclasses import replace

    from salespulse.settings import load_settings

    shutil.copytree(sample_lake.lake, root / "lake")
    settings = load_settings(overrides={"paths.lake": str(root / "lake"), "paths.models": str(root / "models")})
    sample = replace(sample_lake, root=root, settings=settings)
    repo = LakeRepository(sample.lake, root / "models")
    last30 = period(parse_query("?range=30d"), repo.newest_hour(ADMIN))
    hourly = repo.sales_over_time(ADMIN, last30, "hour", ("country",))
    forecasts = sample_forecasts(hourly.rename(columns={"period": "hour"}),
                                 repo.newest_hour(ADMIN) - pd.Timedelta(hours=5))
    publish_frame(spark, sample.lake, "gold_forecasts", "gold/forecasts", forecasts, "test-1")
    expected = expected_figures(september_truth(sample), forecasts)

    def scaled(key: tuple[str, str | None], measure: int, factor: str) -> str:
        return str((expected.projected[key][measure] * Decimal(factor)).quantize(CENT))

    plan = root / "plan.csv"
    plan.write_text(
        "month,country,segment,sales_target,profit_target\n"
        f"2026-09,France,,{scaled(('France', None), 0, '0.9')},{scaled(('France', None), 1, '1.1')}\n"
        f"2026-09,United States,,{scaled(('USA', None), 0, '1.1')},{scaled(('USA', None), 1, '0.9')}\n"
        "2026-10,Germany,,5000000,900000\n"
        "2026-09,Germany,,1,1\n", encoding="utf-8")
    runner = CliRunner()
    loaded = runner.invoke(main, ["targets", "load", str(plan), "--lake", str(sample.lake)])
    assert loaded.exit_code == 0, loaded.output
    assert "targets: 4 set (4 new, 0 replaced); 4 in the lake" in loaded.output
    segment = runner.invoke(main, [
        "targets", "set", "--country", "france", "--segment", "government", "--month", "2026-09",
        "--sales", str(set_goals(expected)[("France", "Government")][0]),
        "--profit", str(set_goals(expected)[("France", "Government")][1]),
        "--lake", str(sample.lake)])
    assert segment.exit_code == 0, segment.output
    # a second load of the plan without Germany's September line replaces only what it names
    plan.write_text("\n".join(plan.read_text(encoding="utf-8").splitlines()[:-1]) + "\n", encoding="utf-8")
    again = runner.invoke(main, ["targets", "load", str(plan), "--lake", str(sample.lake)])
    assert again.exit_code == 0 and "targets: 3 set (0 new, 3 replaced); 5 in the lake" in again.output
    germany = set_goals(expected)[("Germany", None)]
    replaced = runner.invoke(main, ["targets", "set", "--country", "Deutschland", "--month", "2026-09", "--sales",
                                    str(germany[0]), "--profit", str(germany[1]), "--lake", str(sample.lake)])
    assert replaced.exit_code == 0 and "(0 new, 1 replaced)" in replaced.output
    return sample, expected


def set_goals(expected: Expected) -> dict[tuple[str, str | None], tuple[Decimal, Decimal]]:
    """The targets `targets set` gives after the plan: France's Government segment and Germany's month."""
    def scaled(key: tuple[str, str | None], sales: str, profit: str) -> tuple[Decimal, Decimal]:
        return ((expected.projected[key][0] * Decimal(sales)).quantize(CENT),
                (expected.projected[key][1] * Decimal(profit)).quantize(CENT))
    return {("France", "Government"): scaled(("France", "Government"), "1.2", "0.8"),
            ("Germany", None): scaled(("Germany", None), "1.05", "0.95")}


def read_plan(sample: SampleLake) -> pd.DataFrame:
    """The plan as written, read back by pandas with exact amounts (the CLI's own reading is not used)."""
    plan = pd.read_csv(sample.root / "plan.csv", dtype=str, keep_default_na=False)
    plan = plan.assign(country=plan["country"].replace({"United States": "USA"}),
                       segment=plan["segment"].replace({"": None}),
                       sales_target=plan["sales_target"].map(Decimal), profit_target=plan["profit_target"].map(Decimal))
    return plan[plan["month"] == "2026-09"]


def test_targets_list_shows_what_was_loaded_and_set(targeted: tuple[SampleLake, Expected]) -> None:
    sample, _ = targeted
    listed = CliRunner().invoke(main, ["targets", "list", "--lake", str(sample.lake)])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.strip().splitlines()
    assert lines[0].split() == ["month", "|", "country", "|", "segment", "|", "sales_target", "|", "profit_target",
                                "|", "source"]
    assert len(lines) == 2 + 5
    assert any("France" in line and "Government" in line and line.rstrip().endswith("set") for line in lines)
    assert any(line.startswith("2026-10 | Germany") and "5000000.00" in line and "plan.csv:4" in line
               for line in lines)
    only = CliRunner().invoke(main, ["targets", "list", "--month", "2026-10", "--lake", str(sample.lake)])
    assert len(only.output.strip().splitlines()) == 3


def test_attainment_and_projection_equal_pandas_over_the_files(targeted: tuple[SampleLake, Expected]) -> None:
    sample, expected = targeted
    repo = LakeRepository(sample.lake, sample.root / "models")
    window, rows = repo.target_attainment(ADMIN, period(parse_query("?range=30d"), repo.newest_hour(ADMIN)))
    assert (window.start, window.end) == (pd.Timestamp("2026-09-01"), MONTH_END)
    plan = read_plan(sample)
    goals = {(r["country"], r["segment"]): (r["sales_target"], r["profit_target"]) for r in plan.to_dict("records")}
    goals |= set_goals(expected)
    got = {(r["country"], r["segment"], r["measure"]): r for r in rows.to_dict("records")}
    assert set(got) == {(c, s, m) for c, s in goals for m in ("sales", "profit")}
    for (country, segment), targets in goals.items():
        for i, measure in enumerate(("sales", "profit")):
            row = got[(country, segment, measure)]
            actual = expected.actual[(country, segment)][i]
            projected = expected.projected[(country, segment)][i]
            assert row["target"] == targets[i]
            assert row["actual"].quantize(CENT) == actual.quantize(CENT), (country, segment, measure)
            assert row["attainment"].quantize(Decimal("0.0001")) == (actual / targets[i]).quantize(Decimal("0.0001"))
            assert row["projected"].quantize(CENT) == projected.quantize(CENT), (country, segment, measure)
            assert row["status"] == ("on track" if projected >= targets[i] else "at risk")
    # the factors above make each status certain: France's sales and USA's profit on track, the others at risk
    assert [got[k]["status"] for k in (("France", None, "sales"), ("France", None, "profit"), ("USA", None, "sales"),
                                       ("USA", None, "profit"), ("France", "Government", "sales"),
                                       ("Germany", None, "sales"), ("Germany", None, "profit"))] == \
        ["on track", "at risk", "at risk", "on track", "at risk", "at risk", "on track"]

    cards, title, data, _ = targets_view.targets_outputs(repo, ADMIN, "?range=30d", SETTINGS)
    assert "September 2026" in title
    whole = [(c, None) for c in ("France", "USA", "Germany")]
    sales_target = sum(goals[k][0] for k in whole)
    sales_actual = sum(expected.actual[k][0] for k in whole)
    card = targets_view.target_card_values({"sales": {
        "target": sales_target, "actual": sales_actual, "attainment": sales_actual / sales_target,
        "projected": sum(expected.projected[k][0] for k in whole), "status": "x", "countries": 3}}, "September 2026")
    shown = {c.children[1].id["key"]: c.children[1].children for c in (col.children.children for col in cards.children)}
    assert shown["sales"] == card[0]["value"]
    assert len(data) == 2 * 4


def test_a_france_only_viewer_sees_only_frances_targets(targeted: tuple[SampleLake, Expected]) -> None:
    sample, expected = targeted
    repo, france = LakeRepository(sample.lake, sample.root / "models"), Scope.only(("France",))
    _, rows = repo.target_attainment(france, period(parse_query("?range=30d"), repo.newest_hour(france)))
    assert set(rows["country"]) == {"France"} and len(rows) == 4
    # asking for other countries through the filter adds none of them
    _, rows = repo.target_attainment(france, period(parse_query("?range=30d&country=USA,Germany,France"),
                                             repo.newest_hour(france)))
    assert set(rows["country"]) == {"France"}
    cards, _, data, _ = targets_view.targets_outputs(repo, france, "?range=30d&country=USA", SETTINGS)
    assert data == [] and "No targets" in str(cards)
    _, _, data, _ = targets_view.targets_outputs(repo, france, "?range=30d", SETTINGS)
    assert {r["country"] for r in data} == {"France"}
    france = next(r for r in data if r["segment"] == "(whole country)" and r["measure"] == "Sales")
    assert Decimal(str(france["actual"])) == expected.actual[("France", None)][0].quantize(CENT)


def test_a_lake_without_targets_says_how_to_load_them(sample_lake: SampleLake) -> None:
    repo = LakeRepository(sample_lake.lake, sample_lake.root / "models")
    cards, title, data, _ = targets_view.targets_outputs(repo, ADMIN, "?range=30d", SETTINGS)
    assert data == [] and "salespulse targets load" in str(cards) and "September 2026" in title


def test_a_period_ending_in_an_earlier_month_judges_that_month(targeted: tuple[SampleLake, Expected]) -> None:
    sample, _ = targeted
    repo = LakeRepository(sample.lake, sample.root / "models")
    # a period ending in August: no targets there
    august = period(parse_query("?start=2026-08-01&end=2026-08-31"), repo.newest_hour(ADMIN))
    window, rows = repo.target_attainment(ADMIN, august)
    assert window.start == pd.Timestamp("2026-08-01") and window.remaining_hours == 0 and rows.empty
