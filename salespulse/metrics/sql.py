"""SELECT lists over sales rows, built from the measure list (DuckDB dialect; text only, no connection)."""

from __future__ import annotations

from collections.abc import Iterable

from salespulse.metrics.catalog import MEASURE_BY_NAME, MEASURES, Measure
from salespulse.schema import MONEY_TOTAL_SQL


def measure_sum(name: str) -> str:
    """``sum(<name>) AS <name>`` over rows already holding the measure (gold, a rollup of it): counts as BIGINT,
    money as exact ``MONEY_TOTAL_SQL``, each value cast before summing so a lake written before money was DECIMAL
    (doubles) sums to the same type."""
    measure = MEASURE_BY_NAME[name]
    if measure.unit == "count":
        return f"sum({name})::BIGINT AS {name}"
    if measure.money:
        return f"sum({name}::{MONEY_TOTAL_SQL}) AS {name}"
    return f"sum({name}) AS {name}"


def measure_sums(names: Iterable[str] = tuple(m.name for m in MEASURES)) -> str:
    return ", ".join(measure_sum(name) for name in names)


def _event_value(measure: Measure) -> str:
    if measure.source is None:
        return f"1 AS {measure.name}"
    return measure.name if measure.source == measure.name else f"{measure.source} AS {measure.name}"


def event_measures() -> str:
    """Every measure of one silver_sales event, named as in gold (orders: 1), for sums finer than gold's hour."""
    return ", ".join(_event_value(m) for m in MEASURES)
