"""`salespulse profile suggest FILE`: a starting profile read off an export (CSV, TSV, .xlsx).

It finds the header line, maps source columns onto canonical ones by their names, picks the date format that reads
every row (and says when day and month could be swapped), and lists each category column's values, marking those
the product does not know. The result is YAML with comments for a person to check and edit, then load.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from salespulse.exports import DELIMITERS, SourceError, export_rows
from salespulse.profiles import MONEY_COLUMNS, ReadOptions
from salespulse.schema import CATEGORY_VALUES, EVENT_SCHEMAS

SCAN_LINES = 50  # the header is looked for among a file's first lines
SHOWN_VALUES = 30  # distinct values listed per category column

# Source header names (lower case, letters and digits only) each canonical column is recognised by, best first.
# Location-like names stand for a country last: a branch city usually stands for one market.
HEADER_NAMES: dict[str, tuple[str, ...]] = {
    "order_id": ("orderid", "invoiceid", "transactionid", "ordernumber", "invoicenumber", "receiptid", "order",
                 "invoice"),
    "event_time": ("eventtime", "datetime", "timestamp", "orderdate", "saledate", "date"),
    "country": ("country", "nation", "market", "region", "city", "branch", "store", "location"),
    "segment": ("segment", "customersegment", "customertype", "channel"),
    "product": ("product", "productline", "productname", "item", "category"),
    "discount_band": ("discountband",),
    "units_sold": ("unitssold", "quantity", "qty", "units"),
    "manufacturing_price": ("manufacturingprice",),
    "sale_price": ("saleprice", "unitprice", "price"),
    "gross_sales": ("grosssales",),
    "discounts": ("discounts", "discount"),
    "sales": ("sales", "netsales", "revenue", "total", "amount"),
    "cogs": ("cogs", "costofgoodssold", "cost"),
    "profit": ("profit", "grossincome", "netincome"),
    "customer_id": ("customerid", "customer", "clientid"),
    # inventory
    "kind": ("kind", "movement", "movementtype"),
    "reorder_point": ("reorderpoint", "reorderlevel"),
}
TIME_NAMES = ("time", "timeofday", "hour")

# Spark datetime patterns tried on dates, with the Python format that reads exactly the same text.
DATE_FORMATS: tuple[tuple[str, str], ...] = (
    ("yyyy-MM-dd HH:mm:ss", "%Y-%m-%d %H:%M:%S"), ("yyyy-MM-dd'T'HH:mm:ss", "%Y-%m-%dT%H:%M:%S"),
    ("yyyy-MM-dd HH:mm", "%Y-%m-%d %H:%M"), ("yyyy-MM-dd", "%Y-%m-%d"),
    ("M/d/yyyy H:mm", "%m/%d/%Y %H:%M"), ("d/M/yyyy H:mm", "%d/%m/%Y %H:%M"),
    ("M/d/yyyy", "%m/%d/%Y"), ("d/M/yyyy", "%d/%m/%Y"), ("M/d/yy", "%m/%d/%y"), ("d/M/yy", "%d/%m/%y"),
    ("MM-dd-yy", "%m-%d-%y"), ("dd-MM-yy", "%d-%m-%y"), ("dd.MM.yyyy", "%d.%m.%Y"), ("yyyy/MM/dd", "%Y/%m/%d"),
)


@dataclass
class Suggestion:
    """What was read off an export, and the profile it suggests."""

    profile: dict[str, Any]
    header_line: int
    rows: int
    notes: list[str] = field(default_factory=list)  # things a person must check, shown as comments
    categories: dict[str, dict[str, int]] = field(default_factory=dict)  # column -> value -> rows
    unknown: dict[str, list[str]] = field(default_factory=dict)  # column -> values the product does not know


def normalised(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lstrip("\ufeff").lower())


def _delimiter_by_field_count(text: str) -> str:
    """The delimiter that splits the first lines into the most fields, the same number on most of them."""
    lines = [line for line in text.splitlines()[:SCAN_LINES] if line.strip()]

    def score(candidate: str) -> tuple[int, int]:
        counts = Counter(len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=candidate))
        width, lines_of_that_width = counts.most_common(1)[0] if counts else (1, 0)
        return (lines_of_that_width if width > 1 else 0, width)

    return max(DELIMITERS, key=score)


def _is_number(text: str) -> bool:
    return re.fullmatch(r"[\s$€£(]*-?[\d,.]+\)?\s*%?", text) is not None


def _find_header(rows: list[list[str]]) -> int:
    """Index of the header: the first of the first lines naming (nearly) as many columns as most lines have cells,
    none of them a number; preamble lines above it hold a title or a date in one cell."""
    scanned = [row for row in rows[:SCAN_LINES] if any(c.strip() for c in row)]
    widths = Counter(len(row) for row in scanned)
    width = widths.most_common(1)[0][0] if widths else 0
    for index, row in enumerate(rows[:SCAN_LINES]):
        named = [c.strip() for c in row if c.strip()]
        if len(named) >= max(2, 0.8 * width) and not any(_is_number(c) for c in named):
            return index
    raise SourceError(f"no header line among the first {SCAN_LINES} lines (a line naming every column)")


def _match_columns(headers: list[str], event: str) -> dict[str, str]:
    """canonical column -> source header, by name; each source header plays one role (the best-ranked first)."""
    by_name = {normalised(h): h for h in headers if h.strip()}
    wanted = [c.name for c in EVENT_SCHEMAS[event].columns]
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for rank in range(max(len(names) for names in HEADER_NAMES.values())):
        for column in wanted:
            names = HEADER_NAMES.get(column, (normalised(column),))
            if column in mapping or rank >= len(names):
                continue
            source = by_name.get(names[rank])
            if source is not None and source not in taken:
                mapping[column] = source
                taken.add(source)
    return {column: mapping[column] for column in wanted if column in mapping}


def _parses(value: str, python_format: str) -> datetime | None:
    try:
        return datetime.strptime(value, python_format)
    except ValueError:
        return None


def _date_formats(values: list[str]) -> tuple[list[str], list[str]]:
    """Patterns that together read every non-blank value (the fewest, each reading the most of what is left), and
    notes: day and month swappable, values no pattern reads."""
    left = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    chosen: list[str] = []
    notes: list[str] = []
    while left:
        read = {spark: [v for v in left if _parses(v, python)] for spark, python in DATE_FORMATS}
        best = max(DATE_FORMATS, key=lambda f: len(read[f[0]]))[0]  # earlier formats win ties
        if not read[best]:
            notes.append(f"{len(left)} date value(s) no known format reads (e.g. {left[0]!r}): add their pattern to "
                         "date_formats, or they go to quarantine as malformed_date")
            break
        python = dict(DATE_FORMATS)
        swapped = best.replace("M/d", "d/M") if "M/d" in best else best.replace("d/M", "M/d")
        if swapped != best and len(read[swapped]) == len(read[best]):
            # every value fits both: a monthly export dated on the 1st tells which is the day
            on_firsts = {f: all(_parses(v, python[f]).day == 1 for v in read[f]) for f in (best, swapped)}
            if on_firsts[swapped] and not on_firsts[best]:
                best, swapped = swapped, best
            notes.append(f"the dates fit both {best} and {swapped}: the export does not say which is the month"
                         + (f"; {best} puts every date on the 1st of a month" if on_firsts[best] else "")
                         + ". Check a date whose day is above 12 in the source system, then keep one of them")
        chosen.append(best)
        left = [v for v in left if v not in read[best]]
    if len(chosen) > 1:
        notes.append(f"the dates come in {len(chosen)} formats; they are tried in the order listed")
    return chosen, notes


def suggest_profile(path: Path, event: str = "sales", sheet: str | int = 0) -> Suggestion:
    """Read ``path`` and suggest a profile for it (as a dict ready for YAML)."""
    rows = list(export_rows(path, ReadOptions(sheet=sheet), _delimiter_by_field_count))
    header_index = _find_header(rows)
    headers = [c.strip().lstrip("\ufeff").strip() for c in rows[header_index]]
    data = [row for row in rows[header_index + 1:] if any(c.strip() for c in row)]
    column_of = {h: i for i, h in enumerate(headers) if h}

    def values(header: str) -> list[str]:
        i = column_of[header]
        return [row[i] if i < len(row) else "" for row in data]

    mapping = _match_columns(headers, event)
    read: dict[str, Any] = {"engine": "local", "delimiter": "auto", "header": "auto"}
    if path.suffix.lower() == ".xlsx":
        read["sheet"] = sheet
    profile: dict[str, Any] = {"event": event, "description": f"suggested from {path.name}", "read": read}
    notes: list[str] = []

    times = next((h for h in headers if normalised(h) in TIME_NAMES), None)
    date_column = mapping.get("event_time")
    if date_column is not None:
        if times is not None and times != date_column:
            joined = [f"{d.strip()} {t.strip()}" for d, t in zip(values(date_column), values(times), strict=True)]
            chosen, date_notes = _date_formats(joined)
            del mapping["event_time"]
            profile["event_time_parts"] = [date_column, times]
        else:
            chosen, date_notes = _date_formats(values(date_column))
        notes += date_notes
        if chosen:
            profile["date_formats"] = chosen
    profile["columns"] = mapping

    constants: dict[str, str] = {}
    if event == "sales":
        if "order_id" not in mapping:
            profile["order_id"] = "row_hash"
            notes.append("no order id column: order ids derive from each row's values (exact duplicate rows collapse)")
        if "discount_band" not in mapping:
            constants["discount_band"] = "None"
            notes.append("no discount band column: every row gets the band None (no discount)")
    if constants:
        profile["constants"] = constants
    # money columns other than sales may be left out (amount checks skip what is missing)
    required = [c.name for c in EVENT_SCHEMAS[event].columns
                if c.required and (c.name not in MONEY_COLUMNS or c.name == "sales")]
    unmapped = [c for c in required if c not in mapping and c not in constants
                and not (c == "order_id" and profile.get("order_id") == "row_hash")
                and not (c == "event_time" and "event_time_parts" in profile)]
    if unmapped:
        notes.append(f"no source column found for {', '.join(unmapped)}: map them under columns (or constants)")
    ignored = [h for h in headers if h and h not in mapping.values() and h not in profile.get("event_time_parts", [])]
    if ignored:
        notes.append(f"not used: {', '.join(ignored)}")

    suggestion = Suggestion(profile, header_index + 1, len(data), notes)
    for column, source in mapping.items():
        if column not in CATEGORY_VALUES:
            continue
        counts = Counter(v.strip() for v in values(source) if v.strip())
        suggestion.categories[column] = dict(counts.most_common())
        known = {v.lower() for v in CATEGORY_VALUES[column]}
        suggestion.unknown[column] = sorted(v for v in counts if v.lower() not in known)
    return suggestion


def render_profile(suggestion: Suggestion, country_aliases: dict[str, str]) -> str:
    """The suggestion as YAML: notes and category values as comments above the keys, value maps to fill in."""
    lines = [f"# Suggested by `salespulse profile suggest`: header on line {suggestion.header_line}, "
             f"{suggestion.rows:,} data rows. Check it, then load it with `salespulse backfill --profile FILE`."]
    lines += [f"# CHECK: {note}" for note in suggestion.notes]
    aliases = {a.lower() for a in country_aliases}
    for column, counts in suggestion.categories.items():
        unknown = [v for v in suggestion.unknown[column] if not (column == "country" and v.lower() in aliases)]
        shown = ", ".join(f"{v} ({n:,})" for v, n in list(counts.items())[:SHOWN_VALUES])
        more = f", and {len(counts) - SHOWN_VALUES} more" if len(counts) > SHOWN_VALUES else ""
        lines.append(f"# {column} values: {shown}{more}")
        if unknown:
            lines.append(f"#   unknown to SalesPulse: {', '.join(unknown)}; known: "
                         f"{', '.join(CATEGORY_VALUES[column])}. Map each under value_maps below (or set "
                         "category_policy: flag to keep them, flagged)")
    body = yaml.safe_dump(suggestion.profile, sort_keys=False, allow_unicode=True)
    maps = {column: [v for v in values if not (column == "country" and v.lower() in aliases)]
            for column, values in suggestion.unknown.items()}
    maps = {column: values for column, values in maps.items() if values}
    if maps:
        body += "# value_maps:  (source value -> one of the known values; uncomment and fill in)\n"
        for column, values in maps.items():
            body += f"#   {column}:\n" + "".join(f"#     {json.dumps(v, ensure_ascii=False)}: ?\n" for v in values)
    return "\n".join(lines) + "\n" + body
