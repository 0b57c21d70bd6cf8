"""The simulated business: demand, customers, promotions and inventory, generated vectorised per window.

Pure computation: no clock, no files. A :class:`Business` is built from a seed and produces the events of a
time window ``[start, end)`` (epoch milliseconds, UTC) as columns of numpy arrays. Money is integer cents
until it is written, so ``gross = units x price``, ``sales = gross - discounts`` and ``profit = sales - cogs``
hold to the cent.

Model, grounded in the public Financial Sample export:
- demand per country follows a local hour-of-day profile, a day-of-week profile, a country size and a
  monthly trend; promotions lift one product in one country for 6-48 hours and push discounts up;
- the segment sets the price point (Government sells at 7, 20 or 350) and COGS per unit;
- each segment has its own heavy-tailed customer population, so customers repeat;
- stock per country x product is depleted by sales and refilled by restocks ordered at a reorder point
  with a 12-48 h lead time; demand beyond stock is lost (a stock-out); a count is taken every UTC midnight
  and shrinkage is booked as an adjustment just before it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from salespulse.schema import (
    COUNTRIES,
    DISCOUNT_BANDS,
    DISCOUNT_RATES,
    MANUFACTURING_PRICE,
    PRODUCTS,
    SEGMENT_PRICE_POINTS,
    SEGMENTS,
    UNIT_COST_BY_PRICE,
)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
TREND_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00Z: where every country's trend factor is 1

# Demand by local hour (0-23) and weekday (Monday first); the simulator rescales them so that the
# configured rate is the weekly mean.
HOUR_PROFILE = np.array(
    [0.2, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 1.0, 1.3, 1.5, 1.6,
     1.5, 1.4, 1.4, 1.3, 1.3, 1.4, 1.5, 1.4, 1.1, 0.8, 0.5, 0.3]
)
WEEKDAY_PROFILE = np.array([1.0, 1.05, 1.05, 1.1, 1.2, 0.8, 0.6])
# Standard-time offsets of each market's main time zone (daylight saving is not modelled).
UTC_OFFSET_HOURS = {"USA": -5, "Canada": -5, "France": 1, "Germany": 1, "Mexico": -6}
MONTHLY_GROWTH = {"USA": 0.02, "Canada": 0.01, "France": 0.005, "Germany": 0.015, "Mexico": 0.03}

SEGMENT_MIX = np.array([0.30, 0.20, 0.15, 0.15, 0.20])  # order of SEGMENTS
GOVERNMENT_PRICE_MIX = np.array([0.5, 0.35, 0.15])  # 7, 20, 350
MEAN_UNITS = np.array([6.0, 8.0, 10.0, 3.0, 2.0])  # per order, by segment
FRACTIONAL_UNITS_SHARE = 0.02  # orders of n.5 units, as the Financial Sample has
PRODUCT_MIX = np.array([0.20, 0.20, 0.25, 0.12, 0.13, 0.10])  # order of PRODUCTS, before country noise
BAND_MIX = np.array([0.45, 0.25, 0.20, 0.10])  # order of DISCOUNT_BANDS
PROMO_BAND_MIX = np.array([0.10, 0.20, 0.35, 0.35])
CUSTOMER_SKEW = 2.5  # u ** skew concentrates orders on a head of loyal customers

PROMOS_PER_WEEK = 0.35  # per country x product
PROMO_HOURS = (6.0, 48.0)
PROMO_LIFT = (1.8, 3.0)
LEAD_TIME_HOURS = (12.0, 48.0)
REORDER_COVER_DAYS = 2.25  # mean lead time plus one day of safety stock
ORDER_UP_TO_EXTRA_DAYS = 7.0
SHRINKAGE_DAILY_PROBABILITY = 0.05
SHRINKAGE_SHARE = (0.01, 0.04)

N_COUNTRIES, N_PRODUCTS = len(COUNTRIES), len(PRODUCTS)


@dataclass
class SalesColumns:
    """One window's sales, sorted by event time. Money in integer cents."""

    event_ms: np.ndarray
    country: np.ndarray  # index into COUNTRIES
    segment: np.ndarray
    product: np.ndarray
    band: np.ndarray
    units: np.ndarray  # float64
    sale_price: np.ndarray  # float64 per unit
    gross_cents: np.ndarray
    discount_cents: np.ndarray
    sales_cents: np.ndarray
    cogs_cents: np.ndarray
    profit_cents: np.ndarray
    customer: np.ndarray  # index within the country's population

    def __len__(self) -> int:
        return len(self.event_ms)

    def take(self, index: np.ndarray) -> SalesColumns:
        return SalesColumns(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})


@dataclass
class InventoryColumns:
    event_ms: np.ndarray
    country: np.ndarray
    product: np.ndarray
    kind: np.ndarray  # index into INVENTORY_KINDS order: restock, adjustment, count
    quantity: np.ndarray
    reorder_point: np.ndarray

    def __len__(self) -> int:
        return len(self.event_ms)


KIND_RESTOCK, KIND_ADJUSTMENT, KIND_COUNT = 0, 1, 2


@dataclass
class StockState:
    on_hand: np.ndarray  # [country, product]
    pending_qty: np.ndarray
    pending_arrival_ms: np.ndarray  # int64, -1 when nothing is on order
    last_day: int | None = None  # UTC day index of the last count taken
    lost_units: float = 0.0


@dataclass
class Business:
    seed: int
    rate: float  # mean sales events per second over a week
    customers_per_country: int
    country_weights: dict[str, float]
    product_weights: np.ndarray = field(init=False)  # [country, product], rows sum to 1
    country_share: np.ndarray = field(init=False)
    reorder_point: np.ndarray = field(init=False)
    order_up_to: np.ndarray = field(init=False)
    segment_offsets: np.ndarray = field(init=False)
    segment_sizes: np.ndarray = field(init=False)
    population: int = field(init=False)

    def __post_init__(self) -> None:
        noise_rng = np.random.default_rng([self.seed, 1])
        weights = PRODUCT_MIX * noise_rng.uniform(0.8, 1.2, size=(N_COUNTRIES, N_PRODUCTS))
        self.product_weights = weights / weights.sum(axis=1, keepdims=True)
        share = np.array([self.country_weights[c] for c in COUNTRIES], dtype=float)
        self.country_share = share / share.sum()
        self.segment_sizes = np.maximum(1, np.round(SEGMENT_MIX * self.customers_per_country)).astype(np.int64)
        self.segment_offsets = np.concatenate([[0], np.cumsum(self.segment_sizes)[:-1]])
        self.population = int(self.segment_sizes.sum())  # customers per country, all segments
        mean_units = float(SEGMENT_MIX @ MEAN_UNITS) + FRACTIONAL_UNITS_SHARE * 0.5
        daily_units = self.rate * 86_400 * self.country_share[:, None] * self.product_weights * mean_units
        self.reorder_point = np.ceil(daily_units * REORDER_COVER_DAYS)
        self.order_up_to = self.reorder_point + np.ceil(daily_units * ORDER_UP_TO_EXTRA_DAYS)

    def new_stock(self) -> StockState:
        shape = (N_COUNTRIES, N_PRODUCTS)
        return StockState(
            on_hand=self.order_up_to.copy(),
            pending_qty=np.zeros(shape),
            pending_arrival_ms=np.full(shape, -1, dtype=np.int64),
        )

    # -- demand -------------------------------------------------------------------------------------------
    def promo_lift(self, times_ms: np.ndarray) -> np.ndarray:
        """Lift per time x country x product (1.0 without a promotion). Promotions are a pure function of
        the seed and the week, so history and live runs see the same calendar."""
        lift = np.ones((len(times_ms), N_COUNTRIES, N_PRODUCTS))
        if len(times_ms) == 0:
            return lift
        first_week, last_week = int(times_ms.min() // WEEK_MS) - 1, int(times_ms.max() // WEEK_MS)
        for week in range(first_week, last_week + 1):
            for series in range(N_COUNTRIES * N_PRODUCTS):
                rng = np.random.default_rng([self.seed, 7919, week + 10_000, series])
                for _ in range(rng.poisson(PROMOS_PER_WEEK)):
                    start = week * WEEK_MS + int(rng.uniform(0, WEEK_MS))
                    end = start + int(rng.uniform(*PROMO_HOURS) * HOUR_MS)
                    active = (times_ms >= start) & (times_ms < end)
                    c, p = divmod(series, N_PRODUCTS)
                    lift[active, c, p] = np.maximum(lift[active, c, p], rng.uniform(*PROMO_LIFT))
        return lift

    def seasonality(self, times_ms: np.ndarray) -> np.ndarray:
        """Hour-of-day x weekday x trend factor per time x country, with a weekly mean of 1 (before trend)."""
        offsets = np.array([UTC_OFFSET_HOURS[c] for c in COUNTRIES]) * HOUR_MS
        local = times_ms[:, None] + offsets[None, :]
        hour = (local // HOUR_MS) % 24
        weekday = (local // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday
        weekly_mean = np.outer(WEEKDAY_PROFILE, HOUR_PROFILE).mean()
        growth = np.array([MONTHLY_GROWTH[c] for c in COUNTRIES])
        months = (times_ms[:, None] - TREND_EPOCH_MS) / (30 * DAY_MS)
        return HOUR_PROFILE[hour] * WEEKDAY_PROFILE[weekday] / weekly_mean * (1 + growth) ** months

    def demand_factor(self, at_ms: int) -> float:
        """Expected demand at ``at_ms`` relative to the weekly mean rate (all countries, no promotions)."""
        return float(self.seasonality(np.array([at_ms], dtype=np.int64))[0] @ self.country_share)

    def expected_demand(self, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The promotion lift per slice x country x product and the expected orders per slice x country
        before promotions, for the slices between consecutive ``bounds`` (epoch ms). Seasonality and
        promotions are taken at each slice's middle. A country's orders are shared out over its products in
        proportion to weight x lift, so a promotion adds orders (the country's mean lift) and moves them."""
        slice_start, slice_len = bounds[:-1], np.diff(bounds)
        mid = slice_start + slice_len // 2
        base = self.rate * (slice_len[:, None] / 1000.0) * self.country_share[None, :] * self.seasonality(mid)
        return self.promo_lift(mid), base

    def expected_hourly(self, start_ms: int, end_ms: int, window_ms: int = DAY_MS,
                        bad_rows_pct: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The oracle: expected units and sales (currency) per UTC hour x country x product of a run over
        ``[start_ms, end_ms)``, computed from the demand parameters alone (rates, profiles, trend,
        promotions, price and discount mixes), never from drawn events. The run generates
        ``window_ms`` windows ending at ``end_ms`` (as a history of whole days does), so the slices, and the
        instant a promotion is looked up, are the run's own. ``bad_rows_pct`` of the orders are corrupted and
        quarantined, so they never reach gold. Returns (hour starts in ms, units, sales), the last two shaped
        hours x country x product. Not modelled: stock-outs (demand beyond stock is lost) and late events
        (their event time moves up to 3 h earlier)."""
        edges = sorted({start_ms, end_ms, *range(end_ms - window_ms, start_ms, -window_ms)})
        bounds = np.unique(np.concatenate([_hour_bounds(lo, hi) for lo, hi in itertools.pairwise(edges)]))
        lift, base = self.expected_demand(bounds)
        orders = base[:, :, None] * lift * self.product_weights[None] * (1.0 - bad_rows_pct / 100.0)
        in_promo = lift > 1.0
        units = orders * EXPECTED_UNITS_PER_ORDER
        sales = orders * np.where(in_promo, EXPECTED_SALES_PER_ORDER[1], EXPECTED_SALES_PER_ORDER[0])
        hour = bounds[:-1] // HOUR_MS * HOUR_MS
        starts, slot = np.unique(hour, return_inverse=True)
        by_hour = np.zeros((len(starts), N_COUNTRIES, N_PRODUCTS))
        units_by_hour, sales_by_hour = by_hour.copy(), by_hour.copy()
        np.add.at(units_by_hour, slot, units)
        np.add.at(sales_by_hour, slot, sales)
        return starts, units_by_hour, sales_by_hour

    def generate_sales(
        self, rng: np.random.Generator, start_ms: int, end_ms: int
    ) -> tuple[SalesColumns, np.ndarray, np.ndarray]:
        """Demand in ``[start_ms, end_ms)``. Returns the sales (before stock limits), the hour-aligned
        slice boundaries and each sale's slice index (rows are sorted by slice, then time)."""
        bounds = _hour_bounds(start_ms, end_ms)
        slice_start, slice_len = bounds[:-1], np.diff(bounds)
        lift, base = self.expected_demand(bounds)
        mean_lift = (lift * self.product_weights[None]).sum(axis=2)
        counts = rng.poisson(base * mean_lift)  # [slice, country]
        n = int(counts.sum())
        slice_of_row = np.repeat(np.repeat(np.arange(len(slice_start)), N_COUNTRIES), counts.ravel())
        country = np.repeat(np.tile(np.arange(N_COUNTRIES), len(slice_start)), counts.ravel())
        event_ms = slice_start[slice_of_row] + (rng.random(n) * slice_len[slice_of_row]).astype(np.int64)
        order = np.lexsort((event_ms, slice_of_row))
        slice_of_row, country, event_ms = slice_of_row[order], country[order], event_ms[order]

        product_p = lift[slice_of_row, country] * self.product_weights[country]
        product = _draw(rng, product_p / product_p.sum(axis=1, keepdims=True))
        segment = _draw_fixed(rng, SEGMENT_MIX, n)
        in_promo = lift[slice_of_row, country, product] > 1.0
        band = np.where(in_promo, _draw_fixed(rng, PROMO_BAND_MIX, n), _draw_fixed(rng, BAND_MIX, n))

        price_points = np.array([SEGMENT_PRICE_POINTS[s][0] for s in SEGMENTS])
        sale_price = price_points[segment]
        government = segment == SEGMENTS.index("Government")
        gov_prices = np.array(SEGMENT_PRICE_POINTS["Government"])
        sale_price[government] = gov_prices[_draw_fixed(rng, GOVERNMENT_PRICE_MIX, int(government.sum()))]
        units = 1.0 + rng.poisson(MEAN_UNITS[segment] - 1.0)
        units += np.where(rng.random(n) < FRACTIONAL_UNITS_SHARE, 0.5, 0.0)

        gross = np.round(units * sale_price * 100).astype(np.int64)
        rates = np.array([DISCOUNT_RATES[b] for b in DISCOUNT_BANDS])
        discount = np.round(gross * rates[band]).astype(np.int64)
        sales = gross - discount
        unit_cost = UNIT_COSTS[np.searchsorted(PRICE_POINTS, sale_price)]
        cogs = np.round(units * unit_cost * 100).astype(np.int64)

        sizes, offsets = self.segment_sizes[segment], self.segment_offsets[segment]
        customer = offsets + np.minimum(sizes - 1, (sizes * rng.random(n) ** CUSTOMER_SKEW).astype(np.int64))
        columns = SalesColumns(
            event_ms=event_ms, country=country, segment=segment, product=product, band=band, units=units,
            sale_price=sale_price, gross_cents=gross, discount_cents=discount, sales_cents=sales,
            cogs_cents=cogs, profit_cents=sales - cogs, customer=customer,
        )
        return columns, bounds, slice_of_row

    # -- inventory ----------------------------------------------------------------------------------------
    def apply_stock(
        self,
        rng: np.random.Generator,
        state: StockState,
        sales: SalesColumns,
        bounds: np.ndarray,
        slice_of_row: np.ndarray,
    ) -> tuple[np.ndarray, InventoryColumns]:
        """Walk the slices in time order: restocks arrive, midnight counts are taken, sales deplete stock
        (demand beyond stock is lost) and reorders are placed. Returns the kept-sales mask and the
        inventory events. Mutates ``state``."""
        keep = np.ones(len(sales), dtype=bool)
        events: list[tuple[np.ndarray, ...]] = []
        row_edges = np.searchsorted(slice_of_row, np.arange(len(bounds)))
        series = sales.country * N_PRODUCTS + sales.product
        for k in range(len(bounds) - 1):
            t0, t1 = int(bounds[k]), int(bounds[k + 1])
            day = t0 // DAY_MS
            if state.last_day is None:  # opening count: consumers learn the starting stock
                events.append(self._events(t0, np.ones(state.on_hand.shape, bool), KIND_COUNT, state.on_hand))
                state.last_day = day
            elif day > state.last_day:
                events.extend(self._count(rng, state, day * DAY_MS))
                state.last_day = day
            arrived = (state.pending_arrival_ms >= 0) & (state.pending_arrival_ms <= t0)
            if arrived.any():
                state.on_hand[arrived] += state.pending_qty[arrived]
                events.append(self._events(t0, arrived, KIND_RESTOCK, state.pending_qty))
                state.pending_qty[arrived] = 0
                state.pending_arrival_ms[arrived] = -1

            lo, hi = row_edges[k], row_edges[k + 1]
            demand = np.bincount(series[lo:hi], weights=sales.units[lo:hi], minlength=N_COUNTRIES * N_PRODUCTS)
            demand = demand.reshape(N_COUNTRIES, N_PRODUCTS)
            short = demand > state.on_hand
            for c, p in zip(*np.nonzero(short), strict=True):
                rows = lo + np.nonzero(series[lo:hi] == c * N_PRODUCTS + p)[0]
                sold_ok = np.cumsum(sales.units[rows]) <= state.on_hand[c, p]
                keep[rows[~sold_ok]] = False
                state.lost_units += float(sales.units[rows[~sold_ok]].sum())
                demand[c, p] = float(sales.units[rows[sold_ok]].sum())
            state.on_hand -= demand

            reorder = (state.on_hand < self.reorder_point) & (state.pending_arrival_ms < 0)
            if reorder.any():
                lead = rng.uniform(*LEAD_TIME_HOURS, size=reorder.shape) * HOUR_MS
                state.pending_qty[reorder] = (self.order_up_to - state.on_hand)[reorder]
                state.pending_arrival_ms[reorder] = t1 + lead.astype(np.int64)[reorder]
        return keep, _concat_inventory(events)

    def _count(self, rng: np.random.Generator, state: StockState, at_ms: int) -> list[tuple[np.ndarray, ...]]:
        shrink = rng.random(state.on_hand.shape) < SHRINKAGE_DAILY_PROBABILITY
        shrink &= state.on_hand > 0
        out = []
        if shrink.any():
            loss = -np.floor(state.on_hand * rng.uniform(*SHRINKAGE_SHARE, size=state.on_hand.shape))
            loss[~shrink] = 0
            state.on_hand += loss
            # Booked a millisecond before the count it precedes, so event order alone tells them apart.
            out.append(self._events(at_ms - 1, shrink, KIND_ADJUSTMENT, loss))
        out.append(self._events(at_ms, np.ones(shrink.shape, bool), KIND_COUNT, state.on_hand))
        return out

    def _events(self, at_ms: int, mask: np.ndarray, kind: int, quantity: np.ndarray) -> tuple[np.ndarray, ...]:
        c, p = np.nonzero(mask)
        n = len(c)
        return (
            np.full(n, at_ms, dtype=np.int64), c, p, np.full(n, kind),
            quantity[c, p].astype(float), self.reorder_point[c, p].astype(float),
        )


def _concat_inventory(parts: list[tuple[np.ndarray, ...]]) -> InventoryColumns:
    if not parts:
        empty_i, empty_f = np.empty(0, dtype=np.int64), np.empty(0)
        return InventoryColumns(empty_i, empty_i, empty_i, empty_i, empty_f, empty_f)
    cols = [np.concatenate(col) for col in zip(*parts, strict=True)]
    return InventoryColumns(*cols)


def _hour_bounds(start_ms: int, end_ms: int) -> np.ndarray:
    inner = np.arange((start_ms // HOUR_MS + 1) * HOUR_MS, end_ms, HOUR_MS, dtype=np.int64)
    return np.concatenate([[start_ms], inner, [end_ms]]).astype(np.int64)


def _draw(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probabilities`` (rows sum to 1)."""
    cdf = np.cumsum(probabilities, axis=1)
    return np.minimum((rng.random(len(cdf))[:, None] > cdf).sum(axis=1), probabilities.shape[1] - 1)


def _draw_fixed(rng: np.random.Generator, probabilities: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(np.cumsum(probabilities), rng.random(n), side="right"), len(probabilities) - 1)


def _expected_sales_per_order() -> tuple[float, np.ndarray]:
    """Expected units and sales (currency) of one order, the latter outside and inside a promotion (the
    discount bands differ): segment mix x mean units x mean price x (1 - mean discount rate). Units and price
    are drawn independently given the segment."""
    units = MEAN_UNITS + FRACTIONAL_UNITS_SHARE * 0.5  # 1 + Poisson(mean - 1), plus half a unit sometimes
    price = np.array([SEGMENT_PRICE_POINTS[s][0] for s in SEGMENTS], dtype=float)
    price[SEGMENTS.index("Government")] = GOVERNMENT_PRICE_MIX @ np.array(SEGMENT_PRICE_POINTS["Government"])
    gross = float(SEGMENT_MIX @ (units * price))
    rates = np.array([DISCOUNT_RATES[b] for b in DISCOUNT_BANDS])
    return float(SEGMENT_MIX @ units), np.array([gross * (1 - BAND_MIX @ rates), gross * (1 - PROMO_BAND_MIX @ rates)])


EXPECTED_UNITS_PER_ORDER, EXPECTED_SALES_PER_ORDER = _expected_sales_per_order()

MANUFACTURING_PRICES = np.array([MANUFACTURING_PRICE[p] for p in PRODUCTS])
PRICE_POINTS = np.array(sorted(UNIT_COST_BY_PRICE))
UNIT_COSTS = np.array([UNIT_COST_BY_PRICE[p] for p in PRICE_POINTS])
