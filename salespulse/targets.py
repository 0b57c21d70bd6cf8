"""Monthly sales and profit targets: what a valid target is, how a targets file reads, and attainment.

A target is one month x country (x segment, optional) with a sales and a profit amount, exact Decimals at the
lake's money scale. ``salespulse targets load|set`` validate with the functions here before anything is written
(spark_jobs/targets.py publishes the table); the dashboard's repository reads the month's targets, the actuals and
the forecast and calls :func:`target_attainment`, so the numbers are computed once, here, and the page only draws.

Projection to month end: the actual to date plus the forecast's p50 sales for the hours from the end of the newest
hour with data to the end of the month; hours past the forecast's horizon count at the latest forecast's average
hourly p50 (a whole day's cycle). A segment's share of its country's forecast is its share of the country's sales
so far this month, and projected profit adds the remaining sales at the month-to-date margin. Status: projected >=
target is "on track", below is "at risk"; without a forecast reaching past the newest data, a month not yet over
has no projection ("no forecast").
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from salespulse.kpi_report import UnknownFilterValue, canonical_filter_values, exact_frame
from salespulse.kpis import as_decimal, safe_ratio
from salespulse.lake import duckdb_scan, read_manifest
from salespulse.schema import MONEY_PRECISION, MONEY_SCALE
from salespulse.storage import Storage

COLUMNS = ("month", "country", "segment", "sales_target", "profit_target")
REQUIRED = ("month", "country", "sales_target", "profit_target")
MEASURES = ("sales", "profit")
MAX_FILE_BYTES = 1 << 20  # a targets file is a plan, not data: a few thousand lines at most
MAX_ROWS = 10_000
MAX_ERRORS_SHOWN = 20
MONEY_LIMIT = Decimal(10) ** (MONEY_PRECISION - MONEY_SCALE)  # what DECIMAL(18,4) holds
_MONEY = re.compile(r"^\d+(\.\d+)?$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
ON_TRACK, AT_RISK, NO_FORECAST = "on track", "at risk", "no forecast"


class TargetError(ValueError):
    """Input that is not a valid target (the message names the file, line, column or flag)."""


@dataclass(frozen=True)
class Target:
    month: date  # the month's first day
    country: str
    segment: str | None  # None: the whole country
    sales_target: Decimal
    profit_target: Decimal
    source: str

    @property
    def key(self) -> tuple[date, str, str | None]:
        return self.month, self.country, self.segment


def parse_month(text: str) -> date:
    """``YYYY-MM`` as the month's first day."""
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise TargetError(f"month {text!r} is not YYYY-MM (e.g. 2026-12)")
    return date(int(match.group(1)), int(match.group(2)), 1)


def parse_money(text: str, what: str) -> Decimal:
    """A non-negative amount written as plain digits (no currency sign, no thousands separator), exact, with at
    most the lake's 4 decimal places."""
    value = text.strip()
    if value.startswith("-") and _MONEY.match(value[1:]):
        raise TargetError(f"{what} {text!r} is negative; targets are 0 or more")
    if not _MONEY.match(value):
        raise TargetError(f"{what} {text!r} is not an amount such as 1200000 or 1200000.50 (digits and a point only)")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise TargetError(f"{what} {text!r} is not an amount") from None
    if amount.as_tuple().exponent < -MONEY_SCALE:  # type: ignore[operator]
        raise TargetError(f"{what} {text!r} has more than {MONEY_SCALE} decimal places")
    if amount >= MONEY_LIMIT:
        raise TargetError(f"{what} {text!r} is too large (at most {MONEY_LIMIT - 1})")
    return amount


def build_target(month: str, country: str, segment: str | None, sales: str, profit: str,
                 country_aliases: dict[str, str], source: str) -> Target:
    """A validated target from text: the country through the ingest aliases, the segment case-insensitively
    (blank: the whole country)."""
    try:
        (canonical,) = canonical_filter_values("country", (country,), country_aliases)
        segments = canonical_filter_values("segment", (segment,), {}) if segment and segment.strip() else (None,)
    except UnknownFilterValue as err:
        raise TargetError(str(err)) from None
    return Target(parse_month(month), canonical, segments[0], parse_money(sales, "sales_target"),
                  parse_money(profit, "profit_target"), source)


def describe_key(key: tuple[date, str, str | None]) -> str:
    month, country, segment = key
    return f"{month:%Y-%m}, {country}, {segment or 'whole country'}"


def read_targets_file(path: Path, country_aliases: dict[str, str]) -> list[Target]:
    """Every target of a CSV file with the header ``month,country,segment,sales_target,profit_target`` (segment
    optional; names trimmed, any case). Raises TargetError naming each bad line (the first MAX_ERRORS_SHOWN),
    a repeated key with both its lines, and a file too large to be a plan."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise TargetError(f"{path}: {size:,} bytes; a targets file may hold at most {MAX_FILE_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise TargetError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(rows)]
    except StopIteration:
        raise TargetError(f"{path}: empty; expected the header {','.join(COLUMNS)}") from None
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        raise TargetError(f"{path}: line 1: header {','.join(header)!r} does not fit; expected "
                          f"{','.join(COLUMNS)} (segment optional)"
                          + (f"; missing: {', '.join(missing)}" if missing else "")
                          + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    targets: list[Target] = []
    errors: list[str] = []
    seen: dict[tuple[date, str, str | None], int] = {}
    try:
        for line, cells in enumerate(rows, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(targets) + len(errors) >= MAX_ROWS:
                raise TargetError(f"{path}: more than {MAX_ROWS:,} targets; split the file")
            if len(cells) != len(header):
                errors.append(f"line {line}: {len(cells)} fields, the header names {len(header)}")
                continue
            values = dict(zip(header, cells, strict=True))
            try:
                target = build_target(values["month"], values["country"], values.get("segment"),
                                      values["sales_target"], values["profit_target"], country_aliases,
                                      f"{path.name}:{line}")
            except TargetError as err:
                errors.append(f"line {line}: {err}")
                continue
            if target.key in seen:
                errors.append(f"line {line}: repeats the target of line {seen[target.key]} "
                              f"({describe_key(target.key)})")
                continue
            seen[target.key] = line
            targets.append(target)
    except csv.Error as err:
        errors.append(f"line {rows.line_num}: not valid CSV ({err})")
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise TargetError(f"{path}: {len(errors)} bad line{'s' if len(errors) != 1 else ''}, nothing loaded:\n  "
                          + "\n  ".join(shown) + more)
    if not targets:
        raise TargetError(f"{path}: no targets below the header")
    return targets


def merge_targets(current: Iterable[Target], new: Iterable[Target], replace_all: bool = False) -> list[Target]:
    """The targets after a change: ``new`` replaces the current target of the same key and adds the others;
    ``replace_all`` drops every current one first. Sorted by month, country, segment."""
    merged = {} if replace_all else {t.key: t for t in current}
    merged |= {t.key: t for t in new}
    return sorted(merged.values(), key=lambda t: (t.month, t.country, t.segment or ""))


def targets_from_rows(rows: Iterable[dict[str, Any]]) -> list[Target]:
    """Targets as read back from the lake table (columns of salespulse.lake.TABLES["targets"])."""
    return [Target(pd.Timestamp(r["month"]).date(), r["country"], r["segment"], as_decimal(r["sales_target"]),
                   as_decimal(r["profit_target"]), r["source"]) for r in rows]


def read_published_targets(lake: Storage) -> tuple[list[Target], list[str]]:
    """The lake's targets and the directories they were read from ([] and [] before any was published)."""
    dirs = list(read_manifest(lake).get("tables", {}).get("targets", []))
    if not dirs:
        return [], []
    scan = duckdb_scan(lake, "targets")
    if scan is None:
        return [], dirs
    con = duckdb.connect()
    lake.attach(con)
    frame = exact_frame(con, f"SELECT * FROM {scan} ORDER BY month, country, segment NULLS FIRST", [])
    return targets_from_rows(frame.to_dict("records")), dirs


# -- attainment ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MonthToDate:
    """The month a targets view is about, in naive UTC: [start, end), and ``data_end``, the end of the newest hour
    with data within it (``end`` for a month already over)."""

    start: datetime
    end: datetime
    data_end: datetime

    @property
    def month(self) -> date:
        return self.start.date()

    @property
    def remaining_hours(self) -> int:
        return int((self.end - self.data_end).total_seconds() // 3600)


def month_to_date(reference: datetime, data_end: datetime) -> MonthToDate:
    """The month holding ``reference`` (naive UTC), with data up to ``data_end`` (naive UTC, an hour start)."""
    start = datetime(reference.year, reference.month, 1)
    end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
    return MonthToDate(start, end, min(max(data_end, start), end))


def remaining_forecast(forecasts: pd.DataFrame, window: MonthToDate) -> dict[str, Decimal]:
    """Per country, the forecast p50 sales of the month's hours after the data: the hours the forecast covers,
    plus every later hour at the latest forecast origin's average hourly p50. ``forecasts``: hour, country, origin,
    sales_p50, one row per country and hour (the latest origin's). A country whose forecasts all lie before
    ``window.data_end`` gets none."""
    if window.remaining_hours == 0:
        return {}
    remaining: dict[str, Decimal] = {}
    for country, rows in forecasts.groupby("country"):
        hours = pd.to_datetime(rows["hour"])
        ahead = rows[(hours >= window.data_end) & (hours < window.end)]
        if ahead.empty:
            continue
        latest = rows[rows["origin"] == rows["origin"].max()]
        rate = as_decimal(float(latest["sales_p50"].mean()))
        covered = as_decimal(float(ahead["sales_p50"].sum()))
        remaining[str(country)] = covered + rate * (window.remaining_hours - len(ahead))
    return remaining


def target_attainment(targets: pd.DataFrame, actuals: pd.DataFrame, remaining: dict[str, Decimal],
                      window: MonthToDate) -> pd.DataFrame:
    """Per target and measure (sales, profit): target, actual to date, attainment (actual / target), projected
    month end and status (module docstring). ``targets``: country, segment, sales_target, profit_target;
    ``actuals``: the month's country, segment, sales, profit so far; ``remaining``: remaining_forecast. Money as
    Decimal; attainment and projection None where undefined (a zero target, no forecast)."""
    by_segment = {(r["country"], r["segment"]): r for r in actuals.to_dict("records")}
    rows = []
    for target in targets.to_dict("records"):
        country, segment = target["country"], target["segment"]
        scope = [r for (c, s), r in by_segment.items() if c == country and (segment is None or s == segment)]
        country_rows = [r for (c, _), r in by_segment.items() if c == country]
        actual = {m: sum((as_decimal(r[m]) for r in scope), Decimal(0)) for m in MEASURES}
        country_sales = sum((as_decimal(r["sales"]) for r in country_rows), Decimal(0))
        if window.remaining_hours == 0:
            ahead: Decimal | None = Decimal(0)
        elif country in remaining:
            share = Decimal(1) if segment is None else (safe_ratio(actual["sales"], country_sales) or Decimal(0))
            ahead = remaining[country] * share
        else:
            ahead = None
        for measure in MEASURES:
            goal = as_decimal(target[f"{measure}_target"])
            if ahead is None:
                projected = None
            elif measure == "sales":
                projected = actual["sales"] + ahead
            else:
                projected = actual["profit"] + ahead * (safe_ratio(actual["profit"], actual["sales"]) or Decimal(0))
            rows.append({"country": country, "segment": segment, "measure": measure, "target": goal,
                         "actual": actual[measure], "attainment": safe_ratio(actual[measure], goal),
                         "projected": projected, "status": status_of(projected, goal)})
    return pd.DataFrame(rows, columns=["country", "segment", "measure", "target", "actual", "attainment",
                                       "projected", "status"])


def status_of(projected: Decimal | None, target: Decimal) -> str:
    if projected is None:
        return NO_FORECAST
    return ON_TRACK if projected >= target else AT_RISK


def attainment_totals(rows: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per measure, the sum over the whole-country targets (segment targets are parts of them, so they are left
    out): target, actual, attainment, projected (None if any country has no projection) and status."""
    totals = {}
    whole = rows[rows["segment"].isna()] if not rows.empty else rows
    for measure in MEASURES:
        part = whole[whole["measure"] == measure] if not whole.empty else whole
        if part.empty:
            continue
        target = sum(part["target"], Decimal(0))
        actual = sum(part["actual"], Decimal(0))
        projected = None if part["projected"].isna().any() else sum(part["projected"], Decimal(0))
        totals[measure] = {"target": target, "actual": actual, "attainment": safe_ratio(actual, target),
                           "projected": projected, "status": status_of(projected, target),
                           "countries": len(part)}
    return totals


def reference_time(period_end: datetime | None, data_end: datetime) -> datetime:
    """The instant whose month a view of a period ending at ``period_end`` (naive UTC, exclusive; None: open)
    judges: the period's last instant, or the newest data's when the period reaches past it."""
    end = data_end if period_end is None else min(period_end, data_end)
    return end - timedelta(microseconds=1)
