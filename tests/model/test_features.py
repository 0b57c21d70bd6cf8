"""The feature module: series grid, one row per (series, origin), no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.features import (
    FEATURE_COLUMNS,
    HISTORY_HOURS,
    SEQUENCE_COLUMNS,
    feature_rows,
    series_history,
    values_at,
)


def _hourly(rows: list[tuple[str, str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["hour", "country", "product", "sales", "units_sold"]).assign(
        hour=lambda d: pd.to_datetime(d["hour"]))


def test_series_history_sums_partial_rows_fills_gaps_and_adds_country_totals() -> None:
    hourly = _hourly([
        ("2026-05-01 10:00", "USA", "Velo", 100.0, 2.0), ("2026-05-01 10:00", "USA", "Velo", 50.0, 1.0),
        ("2026-05-01 12:00", "USA", "Velo", 30.0, 1.0), ("2026-05-01 12:00", "USA", "VTT", 7.0, 0.5),
    ])
    history = series_history(hourly)
    velo = history[history["product"] == "Velo"]
    assert velo["sales"].tolist() == [150.0, 0.0, 30.0] and velo["units_sold"].tolist() == [3.0, 0.0, 1.0]
    assert history[history["product"] == "VTT"]["sales"].tolist() == [0.0, 0.0, 7.0]
    total = history[history["level"] == "country"]
    assert total["product"].isna().all() and total["sales"].tolist() == [150.0, 0.0, 37.0]
    assert list(history.columns) == ["level", "country", "product", "hour", "sales", "units_sold"]


def test_series_history_takes_tz_aware_hours_as_utc() -> None:
    hourly = _hourly([("2026-05-01 10:00", "USA", "Velo", 1.0, 1.0)])
    hourly["hour"] = hourly["hour"].dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    assert series_history(hourly)["hour"].iloc[0] == pd.Timestamp("2026-05-01 10:00")


def test_feature_rows_one_series_equals_its_rows_from_many(planted: pd.DataFrame) -> None:
    history = series_history(planted[planted["hour"] < planted["hour"].min() + pd.Timedelta(days=16)])
    many = feature_rows(history, "all")
    one_history = history[(history["country"] == "France") & history["product"].isna()]
    one = feature_rows(one_history, "all")
    expected = many[(many["country"] == "France") & many["product"].isna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(one, expected)
    assert len(one) == 16 * 24 - HISTORY_HOURS + 1
    assert one[FEATURE_COLUMNS].dtypes.eq(np.float32).all()


def test_feature_rows_latest_and_chosen_origins(planted: pd.DataFrame) -> None:
    history = series_history(planted[planted["hour"] < planted["hour"].min() + pd.Timedelta(days=15)])
    last = history["hour"].max()
    latest = feature_rows(history)
    assert len(latest) == history.groupby(["country", "product"], dropna=False).ngroups
    assert (latest["origin"] == last).all()
    too_early = history["hour"].min() + pd.Timedelta(hours=HISTORY_HOURS - 2)
    chosen = feature_rows(history, [last, last.tz_localize("UTC") - pd.Timedelta(hours=1), too_early])
    assert sorted(chosen["origin"].unique()) == [last - pd.Timedelta(hours=1), last]


def test_features_at_an_origin_ignore_everything_after_it(planted: pd.DataFrame) -> None:
    history = series_history(planted[planted["hour"] < planted["hour"].min() + pd.Timedelta(days=17)])
    origin = history["hour"].min() + pd.Timedelta(days=15)
    changed = history.copy()
    after = changed["hour"] > origin
    changed.loc[after, ["sales", "units_sold"]] = changed.loc[after, ["sales", "units_sold"]] * 7 + 1000
    before = feature_rows(history, [origin])
    assert len(before) == 8
    pd.testing.assert_frame_equal(before, feature_rows(changed, [origin]))


def test_feature_lags_are_scaled_values_most_recent_first() -> None:
    hours = pd.date_range("2026-05-01", periods=HISTORY_HOURS, freq="h")
    sales = np.arange(HISTORY_HOURS, dtype=float)
    history = series_history(pd.DataFrame({"hour": hours, "country": "USA", "product": "Velo",
                                           "sales": sales, "units_sold": 1.0}))
    row = feature_rows(history[history["level"] == "product"]).iloc[0]
    scale = sales[-168:].mean()
    assert row["scale_sales"] == pytest.approx(scale)
    assert row[SEQUENCE_COLUMNS[0]] == pytest.approx(sales[-1] / scale)
    assert row["sales_lag_167"] == pytest.approx(sales[-168] / scale)
    assert row["sales_same_hour_2w_h02"] == pytest.approx(sales[1] / scale)  # origin + 2 h - 336 h
    assert row["country_USA"] == 1 and row["product_Velo"] == 1 and row["is_country_total"] == 0


def test_values_at_reads_targets_and_last_week(planted: pd.DataFrame) -> None:
    history = series_history(planted[planted["hour"] < planted["hour"].min() + pd.Timedelta(days=15)])
    rows = feature_rows(history, [history["hour"].min() + pd.Timedelta(hours=HISTORY_HOURS - 1)])
    rows = rows[rows["product"] == "Velo"].head(1)
    origin = rows["origin"].iloc[0]
    series = planted[(planted["country"] == rows["country"].iloc[0]) & (planted["product"] == "Velo")]
    by_hour = series.groupby("hour")["sales"].sum()
    got = values_at(history, rows, [1, -167, 10_000])
    assert got[0, 0, 0] == pytest.approx(by_hour[origin + pd.Timedelta(hours=1)])
    assert got[0, 0, 1] == pytest.approx(by_hour[origin - pd.Timedelta(hours=167)])
    assert np.isnan(got[0, :, 2]).all()


def test_tree_features_are_the_target_hours_values_from_the_raw_history(planted: pd.DataFrame) -> None:
    from model.features import HORIZON_HOURS, TREE_FEATURE_COLUMNS, tree_features
    from salespulse.schema import COUNTRIES, PRODUCTS

    history = series_history(planted)
    origins = pd.to_datetime(["2026-03-20 05:00", "2026-03-27 22:00"])
    rows = feature_rows(history, origins)
    trees = pd.DataFrame(tree_features(rows[FEATURE_COLUMNS].to_numpy(np.float32)), columns=TREE_FEATURE_COLUMNS)
    assert len(trees) == len(rows) * HORIZON_HOURS
    raw = planted.groupby(["country", "product", "hour"])[["sales", "units_sold"]].sum()
    checked = 0
    for i, row in rows[rows["level"] == "product"].iterrows():
        # The series' scale: its mean over the 168 h ending at the origin, from the raw partial rows.
        week = pd.date_range(row["origin"] - pd.Timedelta(hours=167), row["origin"], freq="h")
        scale = max(raw.loc[[(row["country"], row["product"], h) for h in week], "sales"].mean(), 1.0)
        for h in (1, 5, 24):
            tree = trees.iloc[i * HORIZON_HOURS + h - 1]
            target = row["origin"] + pd.Timedelta(hours=h)
            assert tree["horizon"] == h and tree["target_hour"] == target.hour
            assert tree["target_dow"] == target.dayofweek
            assert tree["country"] == COUNTRIES.index(row["country"])
            assert tree["product"] == PRODUCTS.index(row["product"])
            for name, back in (("lag_same_hour_last_week", 168), ("lag_same_hour_yesterday", 24), ("lag_last_hour", h)):
                expected = raw.loc[(row["country"], row["product"], target - pd.Timedelta(hours=back)), "sales"] / scale
                assert tree[f"sales_{name}"] == pytest.approx(expected, rel=1e-5), (name, h)
            checked += 1
    assert checked == 2 * 6 * 3
    totals = trees[trees["is_country_total"] == 1]
    assert len(totals) == 2 * 2 * HORIZON_HOURS and (totals["product"] == len(PRODUCTS)).all()


def _flat_series_with_lift(lift_hours: pd.DatetimeIndex, lift: float) -> pd.DataFrame:
    """Three weeks of one series selling 100 (sales) and 10 (units) every hour, ``lift`` times that in
    ``lift_hours``."""
    hours = pd.date_range("2026-05-01", periods=3 * 168, freq="h")
    factor = np.where(hours.isin(lift_hours), lift, 1.0)
    return series_history(pd.DataFrame({"hour": hours, "country": "USA", "product": "Velo",
                                        "sales": 100.0 * factor, "units_sold": 10.0 * factor}))


def test_promotion_state_sees_a_running_promotion_and_its_age_but_nothing_after_the_origin() -> None:
    from model.features import STATE_HOURS

    origin = pd.Timestamp("2026-05-19 12:00")
    columns = [f"{short}_{name}" for short in ("sales", "units")
               for name in ("lift_3h_vs_7d", "lift_24h_vs_7d", "lifted_run_48h")]

    def state(history: pd.DataFrame) -> pd.Series:
        rows = feature_rows(history[history["level"] == "product"], [origin])
        assert len(rows) == 1
        return rows.iloc[0][columns]

    # Running for the 10 hours up to the origin (origin - 9 h .. origin) at 2.5x: the lift now is 2.5 (by hand:
    # (3 x 2.5 + 0.3) / (3 x 1 + 0.3) on scaled values of about 1), the day's is about 1 + 10 x 1.5 / 24.
    started = pd.date_range(origin - pd.Timedelta(hours=9), origin + pd.Timedelta(hours=30), freq="h")
    running = state(_flat_series_with_lift(started, 2.5))
    scale = (158 + 10 * 2.5) / 168  # the trailing week's mean over the flat level, which the lifts are scaled by
    for short in ("sales", "units"):
        assert running[f"{short}_lift_3h_vs_7d"] == pytest.approx((7.5 / scale + 0.3) / (3 / scale + 0.3), rel=1e-5)
        assert running[f"{short}_lift_24h_vs_7d"] == pytest.approx(
            (39 / scale + 2.4) / (24 / scale + 2.4), rel=1e-5)
        # The 3-hour windows starting 0-9 h back hold at least one lifted hour (one of three: (2.5 + 2) / 3 = 1.5
        # > 1.4 before scaling), the one starting 10 h back none: the promotion is 10 hours old.
        assert running[f"{short}_lifted_run_48h"] == pytest.approx(10 / STATE_HOURS)

    # What happens after the origin is invisible: the same promotion ending at the origin, or one starting
    # right after it, give the features of a series without them.
    ended = state(_flat_series_with_lift(started[started <= origin], 2.5))
    pd.testing.assert_series_equal(ended, running)
    later = pd.date_range(origin + pd.Timedelta(hours=1), periods=24, freq="h")
    quiet = state(_flat_series_with_lift(later, 2.5))
    assert quiet.tolist() == pytest.approx([1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
