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
    the profile gives no source), ``raw`` (source column -> text; an entry's ``_bad_header``), ``source_file``,
    ``row_number``, ``malformed`` (the reader could not split the line into the header's fields) and
    ``bad_header``."""
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
    raw_map = F.create_map(*[item for name in profile.source_columns
                             for item in (F.lit(name), F.col(f"`{name}`"))],
                           F.lit(CORRUPT_RECORD), F.col(CORRUPT_RECORD))
    output = [
        *[expr.cast("string").alias(name) for name, expr in columns.items()],
        F.coalesce(F.col(BAD_HEADER), raw_map).alias("raw"),
        F.col(SOURCE_FILE).alias("source_file"),
        F.col(ROW_NUMBER).cast("long").alias("row_number"),
        F.col(LANDED_TIME).cast("timestamp").alias("landed_time"),
        F.col(CORRUPT_RECORD).isNotNull().alias("malformed"),
        F.col(BAD_HEADER).isNotNull().alias("bad_header"),
    ]
    return lambda raw: raw.select(*output)
