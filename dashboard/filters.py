"""The global filters: what the navigation panel holds, how they live in the URL, and the UTC period they mean.

Pure: the newest hour in the lake is passed in (presets end at the newest data, so a lake of old exports
opens on its data rather than on an empty "today").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode

from salespulse.kpi_report import SalesFilter
from salespulse.schema import COUNTRIES, DISCOUNT_BANDS, PRODUCTS, SEGMENTS

PRESETS: dict[str, str] = {"last-hour": "Last hour", "today": "Today", "7d": "Last 7 days", "30d": "Last 30 days",
                           "90d": "Last 90 days", "custom": "Custom"}
PRESET_DAYS = {"7d": 7, "30d": 30, "90d": 90}
GRAINS = ("minute", "hour", "day", "week", "month")
DEFAULT_PRESET, DEFAULT_GRAIN = "30d", "day"
MAX_MINUTE_GRAIN_DAYS = 2  # minute charts read silver; beyond this the hourly gold is used instead
CATEGORIES = {"country": COUNTRIES, "segment": SEGMENTS, "product": PRODUCTS, "band": DISCOUNT_BANDS}


@dataclass(frozen=True)
class ViewFilters:
    """What the user chose; ``start``/``end`` (inclusive UTC days) matter only for the custom preset."""

    preset: str = DEFAULT_PRESET
    start: date | None = None
    end: date | None = None
    countries: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()
    grain: str = DEFAULT_GRAIN

    def categories(self) -> dict[str, tuple[str, ...]]:
        return {"countries": self.countries, "segments": self.segments, "products": self.products,
                "bands": self.bands}


def period(view: ViewFilters, newest_hour: datetime | None) -> SalesFilter:
    """The UTC period and categories ``view`` means, given the newest hour with data (naive or UTC; None for an
    empty lake, where a preset means all time)."""
    if view.preset != "custom" and newest_hour is None:
        return SalesFilter(**view.categories())
    anchor = (newest_hour or datetime.min).replace(tzinfo=timezone.utc, minute=0, second=0, microsecond=0)
    last_day = anchor.date()
    if view.preset == "last-hour":
        return SalesFilter(anchor, anchor + timedelta(hours=1), **view.categories())
    if view.preset == "today":
        return SalesFilter.for_dates(last_day, last_day, **view.categories())
    if view.preset in PRESET_DAYS:
        return SalesFilter.for_dates(last_day - timedelta(days=PRESET_DAYS[view.preset] - 1), last_day,
                                     **view.categories())
    return SalesFilter.for_dates(view.start, view.end, **view.categories())


def effective_grain(where: SalesFilter, grain: str) -> tuple[str, str | None]:
    """The grain to chart and, when it had to change, why."""
    if grain != "minute":
        return grain, None
    if where.start is None or where.end is None or where.end - where.start > timedelta(days=MAX_MINUTE_GRAIN_DAYS):
        return "hour", f"minute grain needs a period of at most {MAX_MINUTE_GRAIN_DAYS} days; showing hours"
    return grain, None


def parse_query(search: str | None) -> ViewFilters:
    """ViewFilters from a URL query (``?start=2026-09-01&end=2026-09-07&country=USA,France&grain=day``).
    Unknown or malformed values are dropped, never trusted: the URL is user input."""
    query = {k: v[-1] for k, v in parse_qs((search or "").lstrip("?")).items()}

    def pick(name: str) -> tuple[str, ...]:
        allowed = CATEGORIES[name]
        return tuple(v for v in allowed if v in query.get(name, "").split(","))

    def day(name: str) -> date | None:
        try:
            return date.fromisoformat(query[name])
        except (KeyError, ValueError):
            return None

    start, end = day("start"), day("end")
    preset = query.get("range")
    if preset not in PRESETS:
        preset = "custom" if start or end else DEFAULT_PRESET
    if start and end and start > end:
        start, end = end, start
    grain = query.get("grain") if query.get("grain") in GRAINS else DEFAULT_GRAIN
    return ViewFilters(preset, start, end, pick("country"), pick("segment"), pick("product"), pick("band"), grain)


def to_query(view: ViewFilters, newest_hour: datetime | None) -> str:
    """The URL query of ``view``: always the resolved ``start``/``end`` days, plus ``range`` for a preset (so a
    shared "last 7 days" link follows the data)."""
    where = period(view, newest_hour)
    params: dict[str, str] = {}
    if view.preset != "custom":
        params["range"] = view.preset
    if where.start:
        params["start"] = where.start.date().isoformat()
    if where.end:
        params["end"] = (where.end - timedelta(microseconds=1)).date().isoformat()
    for name, values in (("country", view.countries), ("segment", view.segments), ("product", view.products),
                         ("band", view.bands)):
        if values:
            params[name] = ",".join(values)
    params["grain"] = view.grain
    return "?" + urlencode(params, safe=",")


def with_clicked(view: ViewFilters, dimension: str, value: str) -> ViewFilters:
    """Cross-filter: a click on a category narrows the view to it (a second click on the same one clears it)."""
    field = {"country": "countries", "segment": "segments", "product": "products", "band": "bands"}[dimension]
    if value not in CATEGORIES[dimension]:
        return view
    current = getattr(view, field)
    return replace(view, **{field: () if current == (value,) else (value,)})
