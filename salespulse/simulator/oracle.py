"""The oracle forecast of a simulated history: the simulator's expected sales and units per hour and series,
as gold-like rows, so training can score it on the same test hours as the model (the noise floor).

It knows what no forecaster can: the demand parameters of the run (rates, hour and weekday profiles, trend,
price and discount mixes) and its promotion calendar, so it sees a promotion from its first hour and knows
when it ends. What it does not know: which orders the Poisson draws produce, stock-outs and late events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from salespulse.schema import COUNTRIES, PRODUCTS
from salespulse.settings import SimulatorSettings
from salespulse.simulator.model import Business


def expected_gold_hourly(settings: SimulatorSettings, rate: float, start_ms: int, end_ms: int) -> pd.DataFrame:
    """hour (UTC, naive), country, product, sales, units_sold: the expected gold of a history run of
    ``settings`` (its seed, country weights and bad-row rate) at ``rate`` events per second over
    ``[start_ms, end_ms)``, as ``salespulse simulate --history-days`` generates it (one-day windows ending
    at the end)."""
    business = Business(settings.seed, rate, settings.customers_per_country, settings.country_weights)
    starts, units, sales = business.expected_hourly(start_ms, end_ms, bad_rows_pct=settings.bad_rows_pct)
    hours, countries, products = np.meshgrid(pd.to_datetime(starts, unit="ms").to_numpy(), np.array(COUNTRIES),
                                             np.array(PRODUCTS), indexing="ij")
    return pd.DataFrame({"hour": hours.ravel(), "country": countries.ravel(), "product": products.ravel(),
                         "sales": sales.ravel(), "units_sold": units.ravel()})


@dataclass(frozen=True)
class SimulatedRun:
    """The ``salespulse simulate --history-days`` run a lake was built from: its simulator settings, its
    history rate and its end (epoch ms)."""

    settings: SimulatorSettings
    rate: float
    end_ms: int

    def expected_gold(self, start_ms: int) -> pd.DataFrame:
        return expected_gold_hourly(self.settings, self.rate, start_ms, self.end_ms)
