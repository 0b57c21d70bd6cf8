"""Canonical text -> typed, normalised columns plus the reason a row is rejected (null when it is valid).

Rules (real exports are dirty: padded text, money as text, ``None`` as a value, mixed date formats): values are trimmed;
money drops ``$``, thousands separators and spaces, reads ``(x)`` as ``-x`` and ``-``/``$-`` as 0, and goes from text
straight to a decimal (``MONEY``, rounded half-up to its scale), never through a binary float; blanks are zero only for
the profile's blank-is-zero columns; numbers and dates are parsed with ``try_cast`` / ``try_to_timestamp`` (never ANSI
casts that kill a job); categories match case-insensitively, countries through the alias map. The first failing rule, in
the order of :data:`REASON_ORDER`, is the row's reason; ``reason_detail`` says which column or check of that rule failed
and what it found, as ``<culprit>: <what was expected and found>`` (the culprit, a column name or an amount check, is
what reports count by: :func:`detail_culprit`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, DoubleType

from salespulse.profiles import MONEY_COLUMNS, ROW_HASH, SourceProfile, customer_id_salt
from salespulse.schema import CATEGORY_VALUES
from salespulse.settings import IngestSettings, PrivacySettings
from spark_jobs.schemas import MONEY
from spark_jobs.transforms.parse import raw_columns, raw_map

REASON_ORDER = (
    "bad_header", "malformed_row", "missing_field", "malformed_number", "malformed_date", "unknown_category",
    "negative_units", "amount_mismatch", "future_event_time", "late_event",
)
NUMBER_COLUMNS = {*MONEY_COLUMNS, "units_sold", "quantity", "reorder_point"}
REQUIRED: dict[str, tuple[str, ...]] = {
    "sales": ("order_id", "event_time", "country", "segment", "product", "discount_band", "units_sold", "sales"),
    "inventory": ("event_time", "country", "product", "kind", "quantity"),
}


@dataclass(frozen=True)
class CleaningRules:
    """Everything the cleaning needs besides the data: built once per run by the job entry point."""

    profile: SourceProfile
    country_aliases: dict[str, str]
    category_policy: str
    amount_tolerance: float
    future_tolerance: timedelta
    # The time event times are judged against: a fixed ingest time (backfill), or None for each row's
    # ``landed_time`` (stream: when its file landed, so a replayed or delayed batch judges rows the same way).
    as_of: datetime | None
    late_after: timedelta | None  # older events (vs the reference time) are late; None: no lateness rule
    customer_id_salt: str | None = None  # set: customer ids are replaced by sha2(salt + id) (privacy)

    @classmethod
    def build(cls, profile: SourceProfile, ingest: IngestSettings, as_of: datetime | None,
              late_after: timedelta | None = None, privacy: PrivacySettings | None = None) -> CleaningRules:
        """Raises ProfileError when the profile hashes customer ids and ``privacy`` holds no salt."""
        return cls(
            customer_id_salt=customer_id_salt(profile, privacy or PrivacySettings()),
            profile=profile,
            country_aliases=ingest.country_aliases,
            category_policy=profile.category_policy or ingest.category_policy,
            amount_tolerance=ingest.amount_tolerance,
            future_tolerance=timedelta(hours=ingest.future_tolerance_hours),
            as_of=as_of,
            late_after=late_after,
        )

    def reference_time(self) -> Column:
        return F.lit(self.as_of) if self.as_of is not None else F.col("landed_time")


def _blank_to_null(c: Column) -> Column:
    trimmed = F.trim(c)
    return F.when(trimmed == "", None).otherwise(trimmed)


class Check(NamedTuple):
    """One test of a rule: ``condition`` true rejects the row; ``culprit`` (a column, or an amount check) and
    ``found`` (text: what was expected and found) explain it in ``reason_detail``."""

    condition: Column
    culprit: str
    found: Column


def detail_culprit(detail: Column) -> Column:
    """The culprit a ``reason_detail`` names first: a column name or an amount check, a small fixed set to count by."""
    return F.substring_index(detail, ": ", 1)


def _shown(number: Column) -> Column:
    """A number as text for people: money keeps its cents but not the stored scale's trailing zeros."""
    return F.regexp_replace(number.cast("string"), r"(\.\d\d\d*?)0+$", "$1")


def _shown_time(time: Column) -> Column:
    return F.concat(F.date_format(time, "yyyy-MM-dd HH:mm:ss"), F.lit(" UTC"))


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g} h"


def number_type(column: str) -> DataType:
    """The Spark type a numeric column is parsed into: a decimal for money, a double for quantities."""
    return MONEY if column in MONEY_COLUMNS else DoubleType()


def parse_number(text: Column, to: DataType) -> Column:
    """'$32,370.00' -> 32370, '($4,533.75)' -> -4533.75, '$-' and '-' -> 0, garbage -> null; as type ``to``,
    cast from the text itself (a decimal gets exactly the digits written, rounded half-up to its scale)."""
    # Plain numbers, the bulk of every file, are read by the cast alone: coalesce evaluates the formatted
    # reading only where the cast gave null. Where the cast succeeds the formatted reading gives the same value
    # (it ends in the same cast, of the same text minus characters a castable text cannot hold).
    return F.coalesce(text.try_cast(to), parse_formatted_number(text, to))


def parse_formatted_number(text: Column, to: DataType) -> Column:
    """The full reading of :func:`parse_number`: drop ``$``, ``,`` and whitespace, ``(x)`` -> ``-x``, a lone ``-``
    -> 0, then cast. Each step takes the previous one's text once: the generated code stays small (a step used
    twice is generated twice), which keeps the cleaning stage's code within what the JIT compiles."""
    bare = F.regexp_replace(text, r"[$,\s]", "")
    # `$` also matches before a final line break (\R), which the text then loses, as with a match and extract.
    negated = F.regexp_replace(bare, r"^\((.*)\)$\R?", "-$1")
    return F.regexp_replace(negated, r"^-$", "0").try_cast(to)


def parse_time(text: Column, formats: list[str]) -> Column:
    """The first of ``formats`` that parses; ISO 8601 (``2026-11-23T16:39:34.123Z``) is always accepted and
    tried first, since it is unambiguous and by far the most common."""
    return F.coalesce(text.try_cast("timestamp"), *[F.try_to_timestamp(text, F.lit(fmt)) for fmt in formats])


# A day or month field of a datetime pattern (d, dd, M, MM; not MMM month names, not inside quoted text).
_DAY_OR_MONTH = re.compile(r"(?<![A-Za-z'])(d{1,2}|M{1,2})(?![A-Za-z])")


def day_month_swapped(pattern: str) -> str | None:
    """``pattern`` with its day and month fields swapped (``M/d/yyyy`` -> ``d/M/yyyy``), or None when it does not
    put both before the year: then the same text can read as two different dates."""
    fields = [m[1][0] for m in _DAY_OR_MONTH.finditer(pattern)]
    if pattern.startswith("y") or sorted(set(fields)) != ["M", "d"]:
        return None
    return _DAY_OR_MONTH.sub(lambda m: m[1].replace("d", "#").replace("M", "d").replace("#", "M"), pattern)


def _loose(pattern: str) -> str:
    return pattern.replace("dd", "d").replace("MM", "M")


def date_order_census(canonical: DataFrame, formats: list[str]) -> DataFrame | None:
    """Per source file, how its ``event_time`` texts read under the formats that can swap day and month: for each
    such format, the rows it reads (it is the first that parses them, as in cleaning), how many of those would read
    as a different date with day and month swapped, how many only it reads, how many fall on the 1st of a month,
    and an example of each kind. None when no format is ambiguous (nothing to count)."""
    ambiguous = [(i, fmt, swapped) for i, fmt in enumerate(formats) if (swapped := day_month_swapped(fmt))]
    if not ambiguous:
        return None
    text = F.trim(F.col("event_time"))
    parsed = [F.try_to_timestamp(text, F.lit(fmt)) for fmt in formats]
    winner = F.when(text.try_cast("timestamp").isNotNull(), F.lit(-1))
    for i, value in enumerate(parsed):
        winner = winner.when(value.isNotNull(), F.lit(i))
    columns = []
    for i, _, swapped in ambiguous:
        other = F.try_to_timestamp(text, F.lit(swapped))
        won = winner == i
        differs = won & other.isNotNull() & (other != parsed[i])
        only = won & other.isNull()
        columns += [
            F.count(F.when(won, 1)).alias(f"rows_{i}"),
            F.count(F.when(differs, 1)).alias(f"swappable_{i}"),
            F.count(F.when(only, 1)).alias(f"only_{i}"),
            F.count(F.when(won & (F.dayofmonth(parsed[i]) == 1), 1)).alias(f"firsts_{i}"),
            F.min(F.when(differs, text)).alias(f"swappable_example_{i}"),
            F.min(F.when(won, text)).alias(f"example_{i}"),
        ]
    return canonical.groupBy("source_file").agg(*columns)


def date_order_warnings(census: list[dict], formats: list[str]) -> list[dict]:
    """Warnings from :func:`date_order_census`'s rows: a file whose dates fit both orders (nothing in it says which
    is the month), and a file read partly by a format and partly by its day/month swap (one of them misreads it)."""
    warnings = []
    ambiguous = {i: swapped for i, fmt in enumerate(formats) if (swapped := day_month_swapped(fmt))}
    for row in census:
        name = row["source_file"].rsplit("/", 1)[-1]
        for i, swapped in ambiguous.items():
            rows, swappable = row[f"rows_{i}"], row[f"swappable_{i}"]
            partners = [j for j in ambiguous if j > i and _loose(formats[j]) == _loose(swapped) and row[f"rows_{j}"]]
            for j in partners:
                warnings.append({
                    "file": name, "kind": "mixed_day_month", "formats": [formats[i], formats[j]],
                    "rows": [rows, row[f"rows_{j}"]], "examples": [row[f"example_{i}"], row[f"example_{j}"]],
                    "message": f"{name}: {rows:,} date(s) read as {formats[i]} (e.g. {row[f'example_{i}']!r}) and "
                               f"{row[f'rows_{j}']:,} as {formats[j]} (e.g. {row[f'example_{j}']!r}): one export "
                               "holds one date order, so one of the two misreads its rows; keep the right one only"})
            if rows and swappable and not row[f"only_{i}"] and not any(
                    row[f"rows_{j}"] for j in ambiguous if _loose(formats[j]) == _loose(swapped)):
                monthly = row[f"firsts_{i}"] == rows
                warnings.append({
                    "file": name, "kind": "ambiguous_day_month", "formats": [formats[i], swapped],
                    "rows": [rows, swappable], "examples": [row[f"swappable_example_{i}"]],
                    "message": f"{name}: all {rows:,} date(s) read as {formats[i]} also fit {swapped} ({swappable:,} "
                               f"of them as another date, e.g. {row[f'swappable_example_{i}']!r}); "
                               f"{formats[i]} is used because the profile lists it first"
                               + ("; every date falls on the 1st of a month that way, as in a monthly export"
                                  if monthly else "") + ". If the source system writes the day first, list "
                               f"{swapped} instead (docs/profiles.md)"})
    return warnings


def pseudonymise(text: Column, salt: str) -> Column:
    """sha2-256 (hex) of salt + trimmed id; null stays null. The same id and salt always give the same value, so
    customer counts and repeat-customer KPIs still work."""
    return F.when(text.isNotNull(), F.sha2(F.concat(F.lit(salt), F.trim(text)), 256))


def _canonical_lookup(text: Column, names: tuple[str, ...], aliases: dict[str, str]) -> Column:
    """Case-insensitive match of trimmed text onto canonical names (and aliases); null when unknown."""
    pairs = {**{a.lower(): target for a, target in aliases.items()}, **{n.lower(): n for n in names}}
    lookup = F.create_map(*[F.lit(x) for pair in pairs.items() for x in pair])
    return lookup[F.lower(text)]


def clean_events(canonical: DataFrame, rules: CleaningRules) -> DataFrame:
    """Typed canonical columns, ``reason`` (null when valid), ``flags`` and the lineage columns."""
    return build_cleaning(rules)(canonical)


def build_cleaning(rules: CleaningRules) -> Callable[[DataFrame], DataFrame]:
    """:func:`clean_events` with its expressions built once. Building them takes thousands of py4j calls (close
    to a second here); a stream reuses one cleaning for every micro-batch instead of paying that each time."""
    profile = rules.profile
    event = profile.schema
    text = {c.name: _blank_to_null(F.col(c.name)) for c in event.columns}
    for column, mapping in profile.value_maps.items():
        lookup = F.create_map(*[F.lit(x) for pair in ((k.lower(), v) for k, v in mapping.items()) for x in pair])
        text[column] = F.coalesce(lookup[F.lower(text[column])], text[column])

    # Stage 1: normalised text (as _text_<name>) and typed values, each computed once. Stage 2 compares the
    # two, so no parser runs twice per value.
    typed: dict[str, Column] = {}
    for column in event.columns:
        name, value = column.name, F.col(f"_text_{column.name}")
        if name in NUMBER_COLUMNS:
            blank = F.lit(0 if name in profile.blank_is_zero else None).cast(number_type(name))
            typed[name] = F.when(value.isNull(), blank).otherwise(parse_number(value, number_type(name)))
        elif column.dtype == "timestamp":
            typed[name] = parse_time(value, profile.date_formats)
        elif name in CATEGORY_VALUES:
            known = _canonical_lookup(value, CATEGORY_VALUES[name], rules.country_aliases if name == "country" else {})
            typed[name] = F.coalesce(known, value) if rules.category_policy == "flag" else known
            typed[f"_known_{name}"] = known
        elif name == "customer_id" and rules.customer_id_salt is not None:
            typed[name] = pseudonymise(value, rules.customer_id_salt)
        else:
            typed[name] = value
    lineage = (*raw_columns(profile), "header_problem", "source_file", "row_number", "landed_time", "malformed",
               "bad_header")
    raw = raw_map(profile)
    if rules.customer_id_salt is not None:
        # Quarantine keeps a rejected row's raw text: its customer id is hashed there too.
        customer, salt = profile.columns["customer_id"], rules.customer_id_salt
        raw = raw_map(profile, lambda source, text: pseudonymise(text, salt) if source == customer else text)
    normalised = [*[v.alias(f"_text_{k}") for k, v in text.items()], *lineage]
    parsed = [*[v.alias(k) for k, v in typed.items()], *[f"_text_{k}" for k in text], *lineage]

    checks: dict[str, list[Check]] = {code: [] for code in (*REASON_ORDER, "flag_unknown_category")}
    # A bad_header entry stands for its whole file; its raw holds what the header lacks and the line found.
    missing, found = F.col("header_problem").getItem("_missing"), F.col("header_problem").getItem("_header")
    checks["bad_header"].append(Check(F.col("bad_header"), "header", F.concat(
        F.lit("missing "), F.when(missing == "", F.lit("none (the order or number of columns differs)"))
        .otherwise(missing),
        F.lit("; the file's header line: "), F.coalesce(found, F.lit("")))))
    checks["malformed_row"].append(Check(F.col("malformed"), "row", F.lit(
        "the line does not split into the header's fields")))
    for column in event.columns:
        name, value = column.name, F.col(f"_text_{column.name}")
        if name in NUMBER_COLUMNS:
            checks["malformed_number"].append(Check(value.isNotNull() & F.col(name).isNull(), name, F.concat(
                F.lit("'"), value, F.lit("' is not a number"))))
        elif column.dtype == "timestamp":
            tried = ", ".join(["ISO 8601", *profile.date_formats])
            checks["malformed_date"].append(Check(value.isNotNull() & F.col(name).isNull(), name, F.concat(
                F.lit("'"), value, F.lit(f"' fits none of [{tried}]"))))
        elif name in CATEGORY_VALUES:
            code = "flag_unknown_category" if rules.category_policy == "flag" else "unknown_category"
            known = ", ".join(CATEGORY_VALUES[name]) + (" (or a country alias)" if name == "country" else "")
            checks[code].append(Check(value.isNotNull() & F.col(f"_known_{name}").isNull(), name, F.concat(
                F.lit("'"), value, F.lit(f"' is not one of {known}"))))
        derived = name in profile.derive or (name == "order_id" and profile.order_id == ROW_HASH)
        if name in REQUIRED[profile.event] and name not in profile.blank_is_zero and not derived:
            checks["missing_field"].append(Check(value.isNull(), name, F.lit("required, but blank")))

    # Columns added in order, each seeing the ones before it.
    added = [(column, F.expr(expression).cast(number_type(column) if column in NUMBER_COLUMNS else "string"))
             for column, expression in profile.derive.items()]
    if profile.event == "sales":
        if profile.order_id == ROW_HASH:
            added.append(("order_id", _row_hash_order_id()))
        checks["missing_field"].append(Check(F.col("order_id").isNull(), "order_id", F.lit("required, but blank")))
        checks["negative_units"].append(Check(
            F.col("units_sold") < 0, "units_sold", F.concat(_shown(F.col("units_sold")), F.lit(" is below zero"))))
        checks["amount_mismatch"].extend(_amount_checks(rules.amount_tolerance))
    reference = rules.reference_time()
    judged = "the run's time" if rules.as_of is not None else "its file's landing time"

    def time_check(condition: Column, span: timedelta, side: str) -> Check:
        return Check(condition, "event_time", F.concat(
            _shown_time(F.col("event_time")), F.lit(f" is more than {_hours(span)} {side} {judged} "),
            _shown_time(reference)))

    checks["future_event_time"].append(time_check(
        F.col("event_time") > reference + F.lit(rules.future_tolerance), rules.future_tolerance, "after"))
    if rules.late_after is not None:
        checks["late_event"].append(time_check(
            F.col("event_time") < reference - F.lit(rules.late_after), rules.late_after, "before"))

    def any_of(code: str) -> Column | None:
        conds = [F.coalesce(c.condition, F.lit(False)) for c in checks[code]]
        return functools.reduce(lambda a, b: a | b, conds) if conds else None

    def detail_of(code: str) -> Column:
        # Every check of the rule that failed, the first one first (the culprit reports count the row under).
        found = [F.when(c.condition, F.concat(F.lit(f"{c.culprit}: "), c.found)) for c in checks[code]]
        return F.array_join(F.array_distinct(F.array(*found)), "; ")

    reason = F.lit(None).cast("string")
    for code in reversed(REASON_ORDER):
        hit = any_of(code)
        if hit is not None:
            reason = F.when(hit, F.lit(code)).otherwise(reason)
    added.append(("reason", reason))
    # Worked out from the rows' reasons, so valid rows (nearly all) never evaluate the explanations.
    detail = F.lit(None).cast("string")
    for code in REASON_ORDER:
        if checks[code]:
            detail = F.when(F.col("reason") == code, detail_of(code)).otherwise(detail)
    added.append(("reason_detail", detail))
    flagged = any_of("flag_unknown_category")
    flags = F.when(flagged, F.lit("unknown_category")) if flagged is not None else F.lit(None)
    output = [
        *[F.col(c.name) for c in event.columns],
        F.col("reason"), F.col("reason_detail"),
        flags.cast("string").alias("flags"),
        # Raw text is kept for rejected rows only: valid rows carry their values in the typed columns.
        # A bad_header entry has no values: its raw says what is wrong with its file.
        F.when(F.col("reason").isNotNull(), F.coalesce(F.col("header_problem"), raw)).alias("raw"),
        F.col("source_file"), F.col("row_number"), F.col("landed_time"),
    ]

    def clean(canonical: DataFrame) -> DataFrame:
        frame = canonical.select(*normalised).select(*parsed)
        for column, expression in added:
            frame = frame.withColumn(column, expression)
        return frame.select(*output)

    return clean


def _row_hash_order_id() -> Column:
    # Exports without an order id: a stable id from the cleaned business values, so exact duplicates collapse
    # and re-loading the same export (as CSV or Excel) finds the same ids.
    parts = ["event_time", "country", "segment", "product", "discount_band", "units_sold", *MONEY_COLUMNS]
    fingerprint = F.concat_ws("|", *[F.coalesce(F.col(c).cast("string"), F.lit("")) for c in parts])
    return F.substring(F.sha2(fingerprint, 256), 1, 24)


def _amount_checks(tolerance: float) -> list[Check]:
    # Exact decimal arithmetic: a gap of exactly the tolerance (exports round each amount to the cent, so
    # 0.01 is legitimate) passes, a larger one does not, with no float noise either way.
    limit = Decimal(str(tolerance))

    def check(actual: str, expected: Column, operator: str, left: str, right: str) -> Check:
        gap = F.abs(F.col(actual) - expected)
        found = F.concat(F.lit(f"{actual} "), _shown(F.col(actual)), F.lit(f" != {left} "), _shown(F.col(left)),
                      F.lit(f" {operator} {right} "), _shown(F.col(right)), F.lit(" = "), _shown(expected),
                      F.lit(" (off by "), _shown(gap), F.lit(f", tolerance {limit})"))
        return Check(F.coalesce(gap > F.lit(limit), F.lit(False)), f"{actual} vs {left} {operator} {right}", found)

    return [
        check("gross_sales", F.col("units_sold").cast(MONEY) * F.col("sale_price"), "x", "units_sold", "sale_price"),
        check("sales", F.col("gross_sales") - F.col("discounts"), "-", "gross_sales", "discounts"),
        check("profit", F.col("sales") - F.col("cogs"), "-", "sales", "cogs"),
    ]
