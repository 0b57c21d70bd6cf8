"""Source columns -> canonical text columns, keeping the raw values and lineage for quarantine."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from salespulse.profiles import SourceProfile
from spark_jobs.schemas import CORRUPT_RECORD

SOURCE_FILE, ROW_NUMBER, LANDED_TIME, BAD_HEADER = "_source_file", "_row_number", "_landed_time", "_bad_header"


def map_to_canonical(raw: DataFrame, profile: SourceProfile) -> DataFrame:
    """``raw`` holds the profile's source columns as text plus ``_source_file``, ``_row_number``,
    ``_corrupt_record`` and ``_bad_header`` (null, or for the one entry standing for a file whose header does not
    fit, what is wrong with it as a map). Returns every canonical column of the profile's event as text (null where
    the profile gives no source), the source texts as they were read (:func:`raw_columns`, for :func:`raw_map`),
    ``header_problem`` (an entry's ``_bad_header``: its raw in quarantine), ``source_file``, ``row_number``,
    ``malformed`` (the reader could not split the line into the header's fields) and ``bad_header``."""
    return build_canonical_mapping(profile)(raw)


def build_canonical_mapping(profile: SourceProfile) -> Callable[[DataFrame], DataFrame]:
    """:func:`map_to_canonical` with its expressions built once (a stream reuses it for every micro-batch)."""
    columns: dict[str, Column] = {}
    for column in profile.schema.columns:
        if column.name in profile.constants:
            columns[column.name] = F.lit(profile.constants[column.name])
        elif column.name in profile.columns:
            columns[column.name] = F.col(f"`{profile.columns[column.name]}`")
        elif column.name == "event_time" and profile.event_time_parts:
            columns[column.name] = F.concat_ws(" ", *[F.trim(F.col(f"`{p}`")) for p in profile.event_time_parts])
        else:
            columns[column.name] = F.lit(None).cast("string")
    sources = [*profile.source_columns, CORRUPT_RECORD]
    output = [
        *[expr.cast("string").alias(name) for name, expr in columns.items()],
        *[F.col(f"`{source}`").alias(name) for source, name in zip(sources, raw_columns(profile), strict=True)],
        F.col(BAD_HEADER).alias("header_problem"),
        F.col(SOURCE_FILE).alias("source_file"),
        F.col(ROW_NUMBER).cast("long").alias("row_number"),
        F.col(LANDED_TIME).cast("timestamp").alias("landed_time"),
        F.col(CORRUPT_RECORD).isNotNull().alias("malformed"),
        F.col(BAD_HEADER).isNotNull().alias("bad_header"),
    ]
    return lambda raw: raw.select(*output)


def raw_columns(profile: SourceProfile) -> list[str]:
    """The columns :func:`map_to_canonical` keeps the source texts in: one per source column, in the profile's
    order, then the unsplit line of a malformed record (positional names: source names may be anything)."""
    return [f"_raw_{i}" for i in range(len(profile.source_columns) + 1)]


def raw_map(profile: SourceProfile, value: Callable[[str, Column], Column] = lambda _, text: text) -> Column:
    """Quarantine's ``raw``: source column -> text as read, and ``_corrupt_record`` -> the line of a record that
    did not split into the header's fields; ``value(source, text)`` may rewrite a text (hash an id). Built from
    :func:`raw_columns` where a row is rejected only: a map per valid row would be built just to be dropped."""
    sources = [*profile.source_columns, CORRUPT_RECORD]
    return F.create_map(*[item for source, name in zip(sources, raw_columns(profile), strict=True)
                          for item in (F.lit(source), value(source, F.col(name)))])
