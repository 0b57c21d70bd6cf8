"""Reading real exports (CSV, TSV, Excel) row by row on one machine, every value as text: shared by the backfill's
driver-side reader (spark_jobs/io.py) and `salespulse profile suggest`."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from pathlib import Path

from salespulse.profiles import ReadOptions

DELIMITERS = (",", "\t", ";", "|")


class SourceError(ValueError):
    """An input that cannot be read as the profile says, with a message naming the file."""


def cell_text(value: object) -> str:
    """An Excel cell as the text a CSV export of it would hold."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def export_rows(path: Path, read: ReadOptions, choose_delimiter: Callable[[str], str]) -> Iterator[list[str]]:
    """The records of an export: an .xlsx sheet's rows, or a text file split as RFC 4180 CSV with ``read.delimiter``
    (``choose_delimiter(text)`` picks it when that is ``auto``)."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        sheet = read.sheet
        try:
            worksheet = workbook.worksheets[sheet] if isinstance(sheet, int) else workbook[sheet]
        except (IndexError, KeyError):
            raise SourceError(f"{path}: no sheet {sheet!r} (sheets: {', '.join(workbook.sheetnames)})") from None
        for row in worksheet.iter_rows(values_only=True):
            yield [cell_text(v) for v in row]
        workbook.close()
        return
    text = path.read_text(encoding=read.encoding, errors="strict")
    delimiter = choose_delimiter(text) if read.delimiter == "auto" else read.delimiter
    yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def delimiter_naming(text: str, names: Iterable[str]) -> str:
    """The delimiter that splits one of the first 50 lines into cells holding every name (trimmed, any case)."""
    wanted = {n.strip().lower() for n in names}
    for line in text.splitlines()[:50]:
        for candidate in DELIMITERS:
            cells = {c.strip().strip('"').strip().lower() for c in line.split(candidate)}
            if wanted <= cells:
                return candidate
    return ","
