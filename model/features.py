"""Forecast features, shared by training and scoring: the hourly series grid and one feature row per
(series, origin).

Pure pandas/numpy. A forecast made at an *origin* hour uses only the ``HISTORY_HOURS`` hours ending at the
origin (inclusive) and predicts the ``HORIZON_HOURS`` hours after it. Every value of a series is divided by
the series' trailing one-week mean at the origin (its *scale*), so big and small series share one model;
the scales are columns of the rows so predictions can be scaled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from salespulse.schema import COUNTRIES, PRODUCTS

HORIZON_HOURS = 24
WEEK_HOURS = 168
HISTORY_HOURS = 2 * WEEK_HOURS  # two weeks: the same hour of the week, twice
MEASURES = ("sales", "units_sold")
SHORT = {"sales": "sales", "units_sold": "units"}  # prefixes of feature and prediction columns
ID_COLUMNS = ("level", "country", "product", "origin")
SCALE_FLOOR = 1.0  # a series that sold (almost) nothing must not blow its scaled values up
TOTAL = "*"  # the product part of a country total's series key


def series_key(country: str, product: str | None) -> str:
    """``"<country>|<product>"``, or ``"<country>|*"`` for a country total (the key used in metrics.json)."""
    return f"{country}|{TOTAL if product is None or product != product else product}"


def _utc_naive(hours: pd.Series) -> pd.Series:
    hours = pd.to_datetime(hours)
    if getattr(hours.dt, "tz", None) is not None:
        hours = hours.dt.tz_convert("UTC").dt.tz_localize(None)
    return hours.dt.floor("h").astype("datetime64[ns]")


def series_history(hourly: pd.DataFrame) -> pd.DataFrame:
    """Gold hourly rows (hour, country, product, sales, units_sold; partial rows are summed) -> one complete
    hourly grid per series from the first to the last hour of the input, missing hours as 0: every
    country x product seen (level ``product``) and every country's total (level ``country``, product None)."""
    columns = ["level", "country", "product", "hour", *MEASURES]
    if hourly.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    frame = hourly[["hour", "country", "product", *MEASURES]].assign(hour=lambda d: _utc_naive(d["hour"]))
    frame = frame.astype({m: "float64" for m in MEASURES})
    grid = pd.date_range(frame["hour"].min(), frame["hour"].max(), freq="h")
    products = frame.groupby(["country", "product", "hour"])[list(MEASURES)].sum()
    totals = products.groupby(level=["country", "hour"]).sum()
    parts = []
    for level, sums, keys in (("product", products, ["country", "product"]), ("country", totals, ["country"])):
        series = sums.index.droplevel("hour").unique()
        full = pd.MultiIndex.from_tuples(
            [(*(s if isinstance(s, tuple) else (s,)), h) for s in series for h in grid], names=[*keys, "hour"])
        part = sums.reindex(full, fill_value=0.0).reset_index()
        if level == "country":
            part["product"] = None
        parts.append(part.assign(level=level))
    history = pd.concat(parts, ignore_index=True)[columns]
    return history.sort_values(["level", "country", "product", "hour"], na_position="first",
                               ignore_index=True)


def _lag_columns(short: str) -> list[str]:
    return [f"{short}_lag_{k:03d}" for k in range(WEEK_HOURS)]


def _measure_columns(short: str) -> list[str]:
    horizons = range(1, HORIZON_HOURS + 1)
    return [
        *[f"{short}_same_hour_2w_h{h:02d}" for h in horizons],
        *[f"{short}_same_hour_7d_mean_h{h:02d}" for h in horizons],
        f"{short}_mean_6h", f"{short}_mean_24h", f"{short}_std_24h", f"{short}_std_168h",
        f"{short}_prev_week_mean", f"{short}_lift_6h_vs_week", f"{short}_zero_run_48h",
        f"{short}_lift_3h_vs_7d", f"{short}_lift_24h_vs_7d", f"{short}_lifted_run_48h",
        f"{short}_log_scale", f"scale_{short}",
    ]


# The first 2 x WEEK_HOURS columns are the scaled last week of both measures, most recent hour first: the
# sequence the convolutional architecture reads (SEQUENCE_COLUMNS); the rest are summaries, calendar and
# series identity.
SEQUENCE_COLUMNS = [*_lag_columns("sales"), *_lag_columns("units")]
FEATURE_COLUMNS = [
    *SEQUENCE_COLUMNS,
    *_measure_columns("sales"), *_measure_columns("units"),
    *[f"origin_hour_{h:02d}" for h in range(24)], *[f"origin_dow_{d}" for d in range(7)],
    *[f"country_{c}" for c in COUNTRIES], *[f"product_{p}" for p in PRODUCTS], "is_country_total",
]


def _index(name: str) -> int:
    return FEATURE_COLUMNS.index(name)


def _block(prefix: str) -> slice:
    first = next(i for i, c in enumerate(FEATURE_COLUMNS) if c.startswith(prefix))
    return slice(first, first + sum(c.startswith(prefix) for c in FEATURE_COLUMNS))


_TREE_SUMMARIES = ("mean_6h", "mean_24h", "std_24h", "prev_week_mean", "lift_6h_vs_week", "zero_run_48h",
                   "lift_3h_vs_7d", "lift_24h_vs_7d", "lifted_run_48h", "log_scale")
TREE_FEATURE_COLUMNS = [
    "horizon", "target_hour", "target_dow", "country", "product", "is_country_total",
    *[f"{short}_{name}" for short in ("sales", "units") for name in (
        "lag_last_hour", "lag_same_hour_yesterday", "lag_same_hour_last_week", "same_hour_2w", "same_hour_7d_mean",
        *_TREE_SUMMARIES)],
]
TREE_CATEGORICAL = ("country", "product")  # indices into COUNTRIES / PRODUCTS (len(PRODUCTS) for a total)


def tree_features(matrix: np.ndarray) -> np.ndarray:
    """``FEATURE_COLUMNS`` rows -> one row per (row, horizon) in ``TREE_FEATURE_COLUMNS`` order, rows major
    (row 0's horizons 1..24 first): the few values a tree needs for one target hour (the lags that fall on
    its hour of day and week, the summaries, the target's UTC hour and weekday), instead of all 500 columns
    for all 24 hours at once."""
    rows = len(matrix)
    horizons = np.arange(1, HORIZON_HOURS + 1)

    def per_horizon(values: np.ndarray) -> np.ndarray:  # (rows, horizons) -> (rows * horizons,)
        return values.reshape(-1)

    def repeat(values: np.ndarray) -> np.ndarray:  # (rows,) -> (rows * horizons,)
        return np.repeat(values, HORIZON_HOURS)

    origin_hour = matrix[:, _block("origin_hour_")].argmax(axis=1)
    origin_dow = matrix[:, _block("origin_dow_")].argmax(axis=1)
    target = origin_hour[:, None] + horizons[None, :]
    is_total = matrix[:, _index("is_country_total")] > 0.5
    product = np.where(is_total, len(PRODUCTS), matrix[:, _block("product_")].argmax(axis=1))
    columns = [
        np.tile(horizons, rows), per_horizon(target % 24), per_horizon((origin_dow[:, None] + target // 24) % 7),
        repeat(matrix[:, _block("country_")].argmax(axis=1)), repeat(product), repeat(is_total),
    ]
    for short in ("sales", "units"):
        lags = matrix[:, _block(f"{short}_lag_")]
        columns += [
            repeat(lags[:, 0]),
            # The target hour 1 day and 1 week earlier is k = 24 - h (h <= 24) and k = 168 - h hours back.
            per_horizon(lags[:, 24 - horizons]), per_horizon(lags[:, WEEK_HOURS - horizons]),
            per_horizon(matrix[:, _block(f"{short}_same_hour_2w_h")]),
            per_horizon(matrix[:, _block(f"{short}_same_hour_7d_mean_h")]),
            *[repeat(matrix[:, _index(f"{short}_{name}")]) for name in _TREE_SUMMARIES],
        ]
    return np.column_stack(columns).astype(np.float32)


LIFTED = 1.4  # a promotion lifts demand 1.8-3x; noise alone seldom keeps 3 hours this far above normal
STATE_HOURS = 48  # the longest promotion


def promotion_state(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a forecaster can see of a promotion at the origin, from the series' own recent hours ``x`` (rows,
    hours back; ``x[:, k]`` is k hours before the origin, at least ``STATE_HOURS + 2 + WEEK_HOURS`` of them):
    the last 3 and 24 hours against the same hours' mean over the 7 days before each (the lift now and over a
    day, at most 5), and how many hours (over ``STATE_HOURS``, at most 1) the 3-hour lift has stayed above
    ``LIFTED`` up to the origin: a promotion runs 6-48 h, so its age tells how long it may still run."""
    hours = np.arange(STATE_HOURS + 2)
    recent = x[:, hours]
    usual = np.stack([x[:, hours + 24 * d] for d in range(1, 8)]).mean(axis=0)

    def lift(first: int, span: int) -> np.ndarray:
        # + 0.1 per hour: a series that sells almost nothing has no measurable lift, not a huge one.
        return np.minimum((recent[:, first:first + span].sum(axis=1) + 0.1 * span)
                          / (usual[:, first:first + span].sum(axis=1) + 0.1 * span), 5.0)

    lifted = np.column_stack([lift(k, 3) > LIFTED for k in range(STATE_HOURS)])
    run = np.where(lifted.all(axis=1), STATE_HOURS, (~lifted).argmax(axis=1)) / STATE_HOURS
    return lift(0, 3), lift(0, 24), run


def _measure_features(values: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features of one measure of one series at origin positions ``at`` (all >= HISTORY_HOURS - 1), and
    the scale used. ``recent[:, k]`` is the value k hours before the origin."""
    recent = sliding_window_view(values, HISTORY_HOURS)[at - (HISTORY_HOURS - 1)][:, ::-1]
    scale = np.maximum(recent[:, :WEEK_HOURS].mean(axis=1), SCALE_FLOOR)
    x = recent / scale[:, None]
    horizons = np.arange(1, HORIZON_HOURS + 1)
    # The target hour origin+h, two weeks and 1..7 days earlier: k = 2*WEEK - h and k = 24*d - h.
    same_hour_2w = x[:, 2 * WEEK_HOURS - horizons]
    same_hour_7d = np.stack([x[:, 24 * d - horizons] for d in range(1, 8)]).mean(axis=0)
    # A promotion lifts the last hours above the same hours a week before; a stock-out drops them to zero.
    lift = (x[:, :6].mean(axis=1) + 0.05) / (x[:, WEEK_HOURS:WEEK_HOURS + 6].mean(axis=1) + 0.05)
    nonzero = recent[:, :48] != 0
    zero_run = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), 48) / 48
    lift_3h, lift_24h, lifted_run = promotion_state(x)
    summaries = np.column_stack([
        x[:, :6].mean(axis=1), x[:, :24].mean(axis=1), x[:, :24].std(axis=1), x[:, :WEEK_HOURS].std(axis=1),
        x[:, WEEK_HOURS:].mean(axis=1), np.minimum(lift, 5.0), zero_run, lift_3h, lift_24h, lifted_run,
        np.log1p(scale), scale,
    ])
    return np.column_stack([x[:, :WEEK_HOURS], same_hour_2w, same_hour_7d, summaries]), scale


def _origin_positions(hours: pd.DatetimeIndex, origins: Literal["latest", "all"] | Sequence) -> np.ndarray:
    usable = np.arange(HISTORY_HOURS - 1, len(hours))
    if isinstance(origins, str):
        if origins not in ("latest", "all"):
            raise ValueError(f"origins must be 'latest', 'all' or timestamps, not {origins!r}")
        return usable[-1:] if origins == "latest" else usable
    stamps = [pd.Timestamp(o) for o in origins]
    wanted = np.array([(s.tz_convert("UTC").tz_localize(None) if s.tzinfo else s).floor("h") for s in stamps],
                      dtype="datetime64[ns]")
    return usable[np.isin(hours[usable].to_numpy(), wanted)]


def _series_rows(series: pd.DataFrame, origins: Literal["latest", "all"] | Sequence) -> pd.DataFrame | None:
    series = series.assign(hour=_utc_naive(series["hour"])).sort_values("hour")
    grid = pd.date_range(series["hour"].iloc[0], series["hour"].iloc[-1], freq="h")
    values = series.groupby("hour")[list(MEASURES)].sum().reindex(grid, fill_value=0.0)
    at = _origin_positions(grid, origins)
    if at.size == 0:
        return None
    sales, _ = _measure_features(values["sales"].to_numpy(np.float64), at)
    units, _ = _measure_features(values["units_sold"].to_numpy(np.float64), at)
    first = series.iloc[0]
    origin_hours = grid[at]
    calendar = np.column_stack([
        np.eye(24)[origin_hours.hour], np.eye(7)[origin_hours.dayofweek],
        [[first["country"] == c for c in COUNTRIES]] * len(at),
        [[first["product"] == p for p in PRODUCTS]] * len(at),
        np.full(len(at), first["level"] == "country"),
    ])
    # Lags of both measures first (SEQUENCE_COLUMNS), then the other features in FEATURE_COLUMNS order.
    matrix = np.column_stack([sales[:, :WEEK_HOURS], units[:, :WEEK_HOURS],
                              sales[:, WEEK_HOURS:], units[:, WEEK_HOURS:], calendar]).astype(np.float32)
    ids = pd.DataFrame({"level": first["level"], "country": first["country"], "product": first["product"],
                        "origin": origin_hours})
    return pd.concat([ids, pd.DataFrame(matrix, columns=FEATURE_COLUMNS)], axis=1)


def feature_rows(history: pd.DataFrame,
                 origins: Literal["latest", "all"] | Sequence = "latest") -> pd.DataFrame:
    """One row per (series, origin): the id columns ``level, country, product, origin`` and the float32
    ``FEATURE_COLUMNS`` (``scale_sales`` and ``scale_units`` among them). ``history`` is the output of
    :func:`series_history`, one series or many; ``origins`` is ``"latest"`` (the last hour of each series),
    ``"all"`` or a sequence of hours. Only origins with ``HISTORY_HOURS`` of history ending at them get a row.
    The origin hour is taken as complete: pass only finished hours."""
    keys = ["level", "country", "product"]
    parts = [rows for _, series in history.groupby(keys, dropna=False, sort=True)
             if (rows := _series_rows(series, origins)) is not None]
    if not parts:
        return pd.DataFrame({**{c: pd.Series(dtype="object") for c in ID_COLUMNS},
                             **{c: pd.Series(dtype="float32") for c in FEATURE_COLUMNS}})
    return pd.concat(parts, ignore_index=True)


def values_at(history: pd.DataFrame, rows: pd.DataFrame, offsets: Sequence[int]) -> np.ndarray:
    """Raw values of both measures at ``origin + offset`` hours for each row: shape (rows, 2, offsets), in
    ``MEASURES`` order, NaN outside the history. Targets are offsets 1..24; the seasonal-naive forecast is the
    same hours one week earlier (offsets 1-168 .. 24-168)."""
    keys = history["country"] + "|" + history["product"].fillna(TOTAL)
    frame = history.assign(key=keys, hour=_utc_naive(history["hour"])).set_index(["key", "hour"])[list(MEASURES)]
    row_keys = (rows["country"] + "|" + rows["product"].fillna(TOTAL)).to_numpy()
    origins = _utc_naive(rows["origin"]).to_numpy()
    out = np.full((len(rows), len(MEASURES), len(offsets)), np.nan)
    for j, offset in enumerate(offsets):
        wanted = pd.MultiIndex.from_arrays([row_keys, origins + np.timedelta64(int(offset), "h")])
        out[:, :, j] = frame.reindex(wanted).to_numpy()
    return out
