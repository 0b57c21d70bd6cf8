"""Structural validation of pushed events (the ingest API): JSON or CSV text -> canonical rows, or the reasons.

The API rejects what is structurally wrong — unknown or missing columns, blanks in required fields, numbers
and times that do not parse, categories outside the configured lists — and lands everything else in the
canonical layout the simulator writes (``salespulse/schema.py``). Business rules (negative units, amounts that
do not reconcile, late or future events, duplicates) stay with Spark's cleaning, which quarantines such rows
as it does for any landed file. A request is all-or-nothing: one failing row rejects the whole request.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from salespulse.schema import CATEGORY_VALUES, EventSchema

CANONICAL_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MAX_REPORTED_ROWS = 100  # failing rows listed in one response; the count covers all of them
MAX_INTEGER_DIGITS = 300  # an integer up to this long converts to float without overflow (doubles end near 1.8e308)
LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # only a JSON \u escape makes one; no file can hold it as UTF-8


class MalformedBody(ValueError):
    """A body that is not JSON / CSV of the expected shape at all (400)."""


@dataclass
class RowProblem:
    row: int  # 0-based position in the JSON array, or among the CSV data rows (header excluded)
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "reasons": self.reasons}


@dataclass
class Validation:
    """Either ``table`` (every row valid, canonical text columns) or the problems (request-level and per row)."""

    table: pa.Table | None = None
    problems: list[str] = field(default_factory=list)  # about the request as a whole (e.g. unknown columns)
    rows: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.table is not None

    def error_body(self) -> dict[str, Any]:
        return {
            "error": "validation failed; nothing was landed (a request is accepted whole or not at all)",
            "problems": self.problems,
            "failing_rows": len(self.rows),
            "rows": [r.as_dict() for r in self.rows[:MAX_REPORTED_ROWS]],
        }


def _json_integer(digits: str) -> int | float:
    # Every numeric column is a double, so a longer integer is read as one: a 400-digit number becomes infinite
    # and fails its row as not finite, instead of Python's int refusing more than 4300 digits or overflowing
    # when converted to float.
    return int(digits) if len(digits) <= MAX_INTEGER_DIGITS else float(digits)


def parse_json_records(body: bytes) -> list[dict[str, Any]]:
    """A JSON array of objects; anything else is :class:`MalformedBody`."""
    try:
        records = json.loads(body.decode("utf-8"), parse_int=_json_integer)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MalformedBody(f"body is not valid UTF-8 JSON: {err}") from None
    except RecursionError:  # the parser recurses once per level: a deep enough nesting exhausts the stack
        raise MalformedBody("body nests arrays or objects too deeply: a JSON array of flat objects (one per "
                            "event, column -> value) is expected") from None
    if not isinstance(records, list):
        raise MalformedBody(f"body must be a JSON array of objects, got a JSON {type(records).__name__}")
    wrong = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    if wrong is not None:
        raise MalformedBody(f"element {wrong} of the array is a {type(records[wrong]).__name__}, not an object")
    return records


def parse_csv_records(body: bytes) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows of a CSV body (UTF-8, comma-separated, a header line first)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise MalformedBody(f"body is not valid UTF-8: {err}") from None
    try:
        lines = [row for row in csv.reader(io.StringIO(text, newline=""), strict=True) if row]
    except csv.Error as err:
        raise MalformedBody(f"body is not valid CSV: {err}") from None
    if not lines:
        raise MalformedBody("CSV body is empty: a header line is expected first")
    return [name.strip() for name in lines[0]], lines[1:]


def _iso_utc(value: str) -> str | None:
    try:
        # Python 3.10's fromisoformat does not read a Z suffix.
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in "Zz" and value else value)
    except ValueError:
        return None
    if CANONICAL_TIME.match(value):  # already as the simulator writes it: checked, kept (formatting is the cost)
        return value
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _number_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return repr(number) if math.isfinite(number) else None


class EventValidator:
    """Validates the rows of one event kind against its canonical schema and the category settings."""

    def __init__(self, schema: EventSchema, country_aliases: dict[str, str], category_policy: str):
        self.schema = schema
        self.columns = {c.name: c for c in schema.columns}
        self.required = tuple(c.name for c in schema.columns if c.required)
        self.check_categories = category_policy == "reject"
        self.known = {
            name: {v.lower() for v in values} | ({a.lower() for a in country_aliases} if name == "country" else set())
            for name, values in CATEGORY_VALUES.items() if name in schema.names
        }

    def columns_problems(self, columns: list[str]) -> list[str]:
        problems = []
        unknown = [c for c in columns if c not in self.schema.names]
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}; {self.schema.name} columns are "
                            f"{', '.join(self.schema.names)}")
        missing = [c.name for c in self.schema.columns if c.required and c.name not in columns]
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if duplicated:
            problems.append(f"column(s) given twice: {', '.join(duplicated)}")
        return problems

    def _value(self, name: str, value: Any, reasons: list[str]) -> str | None:
        column = self.columns[name]
        blank = value is None or (isinstance(value, str) and not value.strip())
        if blank:
            if column.required:
                reasons.append(f"{name}: required, got a blank")
            return None
        if column.dtype in ("double", "money"):
            text = _number_text(value)
            if text is None:
                reasons.append(f"{name}: not a finite number")
            return text
        if not isinstance(value, str):
            reasons.append(f"{name}: expected a string, got {type(value).__name__}")
            return None
        if LONE_SURROGATE.search(value):
            reasons.append(f"{name}: not valid Unicode text (a lone surrogate such as \\ud800)")
            return None
        value = value.strip()
        if column.dtype == "timestamp":
            text = _iso_utc(value)
            if text is None:
                reasons.append(f"{name}: not an ISO 8601 time such as 2026-11-23T16:39:34.123Z")
            return text
        if self.check_categories and name in self.known and value.lower() not in self.known[name]:
            reasons.append(f"{name}: not one of {', '.join(CATEGORY_VALUES[name])}")
        return value

    def validate(self, records: list[dict[str, Any]]) -> Validation:
        """Rows as mappings of column -> value (JSON values, or CSV text)."""
        # Missing columns are reported per row (objects may differ); unknown ones for the whole request.
        seen = list(dict.fromkeys(key for record in records for key in record))
        result = Validation(problems=[p for p in self.columns_problems(seen) if p.startswith("unknown")])
        values: dict[str, list[str | None]] = {name: [] for name in self.schema.names}
        for index, record in enumerate(records):
            reasons = [f"{c}: missing" for c in self.required if c not in record]
            for name in self.schema.names:
                if name in record:
                    values[name].append(self._value(name, record[name], reasons))
                else:
                    values[name].append(None)
            if reasons:
                result.rows.append(RowProblem(index, reasons))
        if not records:
            result.problems.append("no rows: send at least one")
        if not result.problems and not result.rows:
            result.table = pa.table({name: pa.array(column, pa.string()) for name, column in values.items()})
        return result

    def validate_csv(self, header: list[str], rows: list[list[str]]) -> Validation:
        problems = self.columns_problems(header)
        if problems:
            return Validation(problems=problems)
        width_problems = [RowProblem(i, [f"has {len(row)} fields, the header has {len(header)}"])
                          for i, row in enumerate(rows) if len(row) != len(header)]
        if width_problems:
            return Validation(rows=width_problems)
        return self.validate([dict(zip(header, row, strict=True)) for row in rows])
