"""Text for the terminal: query results as an aligned table with numbers written out in full, and Spark's SQL
errors as one line. Pure functions of their inputs (no Spark import: errors are read through ``str``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

# Spark names the position as "(line 1, pos 7)", "; line 1 pos 14;" or "== SQL (line 1, position 8) ==".
_POSITION = re.compile(r"line (\d+),? pos(?:ition)? (\d+)")
_POSITION_IN_LINE = re.compile(r"[;,]?\s*\(?line \d+,? pos(?:ition)? \d+\)?;?")


def describe_sql_error(error: BaseException) -> str:
    """Spark's message for a failed query on one line, ending with the line and position it points at as
    "(line L, pos P)": the text after the first line (the analysed plan, the search path, the SQL with a caret)
    stays out of the terminal."""
    text = str(error).strip()
    first = _POSITION_IN_LINE.sub("", text.splitlines()[0]).rstrip("; ") if text else type(error).__name__
    found = _POSITION.search(text)
    return f"{first} (line {found[1]}, pos {found[2]})" if found else first


def format_value(value: Any) -> str:
    """A cell as text: decimals and floats in plain positional notation (never 1.1872635026E8), NULL for None."""
    if value is None:
        return "NULL"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f") if value == value and abs(value) != float("inf") else repr(value)
    return str(value)


def format_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Rows as lines of an aligned table: a header, a rule, one line per row; numbers right-aligned."""
    cells = [[format_value(value) for value in row] for row in rows]
    numeric = [all(isinstance(row[i], (int, float, Decimal)) and not isinstance(row[i], bool)
                   for row in rows if row[i] is not None) for i in range(len(columns))]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return " | ".join(v.rjust(w) if right else v.ljust(w)
                          for v, w, right in zip(values, widths, numeric, strict=True)).rstrip()

    return [line(columns), "-+-".join("-" * w for w in widths), *(line(row) for row in cells)]


def money_table(money: dict[str, dict[str, Any]]) -> list[str]:
    """A backfill report's ``money`` (per measure: in, silver, duplicates, quarantined per reason, unreadable rows)
    as aligned lines: where the money that came in went, one column per measure."""
    measures = list(money)
    reasons = list(money[measures[0]]["quarantined"])
    amounts = [(line, [money[m][line] for m in measures]) for line in ("in", "silver", "duplicates")]
    amounts += [(f"quarantined: {r}", [money[m]["quarantined"][r] for m in measures]) for r in reasons]
    rows = [("money", *measures), *((label, *(f"{v:,.2f}" for v in values)) for label, values in amounts),
            ("rows without a readable amount", *(f"{money[m]['unreadable']:,}" for m in measures))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join([row[0].ljust(widths[0]), *(v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True))])
            for row in rows]
