"""The only Spark code that touches paths: read sources, write table versions, publish the manifest.

Local paths and ``hdfs://`` URIs both work for Spark reads and writes; the manifest is replaced atomically
(``os.replace`` locally, Hadoop ``FileContext.rename(OVERWRITE)`` elsewhere).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from salespulse.lake import MANIFEST, TABLES
from salespulse.profiles import SourceProfile
from spark_jobs.schemas import CORRUPT_RECORD, raw_csv_schema
from spark_jobs.transforms.parse import ROW_NUMBER, SOURCE_FILE

SOURCE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx")
RECORD_ID = "_record_id"


class SourceError(ValueError):
    """An input that cannot be read as the profile says, with a message naming the file."""


# -- paths -------------------------------------------------------------------------------------------------
def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file:")


def _local(path: str) -> Path:
    return Path(urlparse(path).path if path.startswith("file:") else path)


def _hadoop(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def expand_inputs(spark: SparkSession, pattern: str) -> list[str]:
    """Files named by a file, a folder (its direct children) or a glob; hidden and ``_`` files skipped."""
    fs, hpath = _hadoop(spark, pattern)
    statuses = fs.globStatus(hpath) or []
    files: list[str] = []
    for status in statuses:
        children = fs.listStatus(status.getPath()) if status.isDirectory() else [status]
        for child in children:
            name = child.getPath().getName()
            if child.isFile() and not name.startswith((".", "_")) and name.lower().endswith(SOURCE_SUFFIXES):
                files.append(child.getPath().toString())
    if not files:
        raise SourceError(f"no input files match {pattern!r} (expected {', '.join(SOURCE_SUFFIXES)} files)")
    return sorted(files)


# -- reading sources ----------------------------------------------------------------------------------------
def read_source(spark: SparkSession, files: list[str], profile: SourceProfile) -> DataFrame:
    """The profile's source columns as text, plus ``_source_file``, ``_record_id`` (consecutive within a
    file) and ``_corrupt_record`` (the line, when it did not split into the header's fields)."""
    if profile.read.engine == "spark":
        return _read_spark_csv(spark, files, profile)
    remote = [f for f in files if not is_local(f)]
    if remote:
        raise SourceError(
            f"profile {profile.name!r} reads on the driver (engine: local) and needs local files; got {remote[0]}"
        )
    tables = [read_local_export(_local(f), profile) for f in files]
    return spark.createDataFrame(pa.concat_tables(tables).to_pandas())


def _read_spark_csv(spark: SparkSession, files: list[str], profile: SourceProfile) -> DataFrame:
    names = profile.source_columns
    schema = raw_csv_schema(names)
    delimiter = "," if profile.read.delimiter == "auto" else profile.read.delimiter
    frame = (
        spark.read.schema(schema)
        .option("header", True)
        .option("enforceSchema", False)  # the header must name the columns; never map by position (PITFALLS 8)
        .option("multiLine", True)  # quoted newlines; files are then read whole, so record ids are consecutive
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .option("sep", delimiter)
        .csv(files)
    )
    return frame.select(
        *[F.col(f"`{n}`") for n in names], F.col(CORRUPT_RECORD),
        F.col("_metadata.file_path").alias(SOURCE_FILE),
        F.monotonically_increasing_id().alias(RECORD_ID),
    )


def number_rows(frame: DataFrame) -> DataFrame:
    """``_row_number``: 1-based data-record number within the file, from the consecutive record ids."""
    starts = frame.groupBy(SOURCE_FILE).agg(F.min(RECORD_ID).alias("_first_id"))
    return (
        frame.join(F.broadcast(starts), SOURCE_FILE)
        .withColumn(ROW_NUMBER, F.col(RECORD_ID) - F.col("_first_id") + 1)
        .drop("_first_id")
    )


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _rows(path: Path, profile: SourceProfile) -> Iterator[list[str]]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        sheet = profile.read.sheet
        try:
            worksheet = workbook.worksheets[sheet] if isinstance(sheet, int) else workbook[sheet]
        except (IndexError, KeyError):
            raise SourceError(f"{path}: no sheet {sheet!r} (sheets: {', '.join(workbook.sheetnames)})") from None
        for row in worksheet.iter_rows(values_only=True):
            yield [_cell_text(v) for v in row]
        workbook.close()
        return
    text = path.read_text(encoding=profile.read.encoding, errors="strict")
    delimiter = profile.read.delimiter
    if delimiter == "auto":
        delimiter = _sniff_delimiter(text, profile)
    yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _sniff_delimiter(text: str, profile: SourceProfile) -> str:
    wanted = {n.strip().lower() for n in profile.source_columns}
    for line in text.splitlines()[:50]:
        for candidate in (",", "\t", ";", "|"):
            cells = {c.strip().strip('"').strip().lower() for c in line.split(candidate)}
            if wanted <= cells:
                return candidate
    return ","


def read_local_export(path: Path, profile: SourceProfile) -> pa.Table:
    """Read a CSV/TSV/Excel export on the driver: BOM, preamble lines, padded or re-cased headers, CRLF and
    delimiters handled; every value stays text. Blank lines are not records."""
    wanted = {n.strip().lower(): n for n in profile.source_columns}
    header: list[str] | None = None
    index: dict[str, int] = {}
    records: dict[str, list[str | None]] = {n: [] for n in profile.source_columns}
    corrupt: list[str | None] = []
    header_line = profile.read.header
    for line_number, row in enumerate(_rows(path, profile), start=1):
        if header is None:
            cells = [c.strip().lstrip("\ufeff").strip().lower() for c in row]
            found = (line_number == header_line) if header_line != "auto" else set(wanted) <= set(cells)
            if found:
                missing = sorted(set(wanted) - set(cells))
                if missing:
                    raise SourceError(f"{path}: header on line {line_number} lacks column(s) {missing}")
                header, index = cells, {wanted[c]: cells.index(c) for c in wanted}
            continue
        if not any(cell.strip() for cell in row):
            continue
        fits = len(row) == len(header)
        for name, position in index.items():
            records[name].append(row[position] if fits or position < len(row) else None)
        corrupt.append(None if fits else ",".join(row))
    if header is None:
        raise SourceError(
            f"{path}: no header line holds all of {sorted(profile.source_columns)} "
            f"(profile {profile.name!r}; headers are matched trimmed and case-insensitively)"
        )
    n = len(corrupt)
    columns = {name: pa.array(values, pa.string()) for name, values in records.items()}
    columns[CORRUPT_RECORD] = pa.array(corrupt, pa.string())
    columns[SOURCE_FILE] = pa.array([path.resolve().as_uri()] * n, pa.string())
    columns[RECORD_ID] = pa.array(range(1, n + 1), pa.int64())
    return pa.table(columns)


# -- lake tables ---------------------------------------------------------------------------------------------
def read_manifest(spark: SparkSession, lake: str) -> dict[str, Any]:
    target = f"{lake.rstrip('/')}/{MANIFEST}"
    if is_local(lake):
        path = _local(target)
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    fs, hpath = _hadoop(spark, target)
    if not fs.exists(hpath):
        return {}
    stream = fs.open(hpath)
    try:
        reader = spark.sparkContext._jvm.java.io.BufferedReader(
            spark.sparkContext._jvm.java.io.InputStreamReader(stream, "UTF-8"))
        return json.loads("\n".join(iter(reader.readLine, None)))
    finally:
        stream.close()


def read_table(spark: SparkSession, lake: str, table: str, manifest: dict[str, Any] | None = None) -> DataFrame | None:
    """The committed content of a lake table, or None when it has not been published yet."""
    manifest = manifest if manifest is not None else read_manifest(spark, lake)
    dirs = manifest.get("tables", {}).get(table, [])
    if not dirs:
        return None
    return read_version(spark, lake, dirs, manifest["schemas"][table])


def read_version(spark: SparkSession, lake: str, dirs: list[str], schema_json: str) -> DataFrame:
    # The schema travels with the manifest: an empty version has no Parquet footer to infer it from.
    schema = StructType.fromJson(json.loads(schema_json))
    return spark.read.schema(schema).parquet(*[f"{lake.rstrip('/')}/{d}" for d in dirs])


def write_table_version(frame: DataFrame, lake: str, table: str, version: str) -> tuple[str, str]:
    """Write a new, unpublished version of a table; returns its directory relative to the lake and its
    schema (JSON) for the manifest."""
    spec = TABLES[table]
    relative = f"{spec.folder}/version-{version}"
    writer = frame.write.mode("errorifexists")
    if spec.partition_by:
        writer = writer.partitionBy(*spec.partition_by)
    writer.parquet(f"{lake.rstrip('/')}/{relative}")
    fields = [f for f in frame.schema.fields if f.name not in spec.partition_by]
    fields += [f for name in spec.partition_by for f in frame.schema.fields if f.name == name]
    return relative, StructType(fields).json()


def publish(spark: SparkSession, lake: str, previous: dict[str, Any], written: dict[str, tuple[str, str]],
            version: str, published_at: str) -> dict[str, Any]:
    """Atomically replace the manifest: readers switch from the previous versions to these in one step."""
    manifest = {
        "version": version,
        "published_at": published_at,
        "tables": {**previous.get("tables", {}), **{t: [d] for t, (d, _) in written.items()}},
        "schemas": {**previous.get("schemas", {}), **{t: schema for t, (_, schema) in written.items()}},
    }
    payload = json.dumps(manifest, indent=2, sort_keys=True)
    target = f"{lake.rstrip('/')}/{MANIFEST}"
    staging = f"{lake.rstrip('/')}/.{MANIFEST}.{version}"
    if is_local(lake):
        _local(lake).mkdir(parents=True, exist_ok=True)
        _local(staging).write_text(payload, encoding="utf-8")
        os.replace(_local(staging), _local(target))
    else:
        jvm = spark.sparkContext._jvm
        fs, hstaging = _hadoop(spark, staging)
        out = fs.create(hstaging, True)
        out.write(bytearray(payload.encode("utf-8")))
        out.close()
        context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(
            hstaging.toUri(), spark.sparkContext._jsc.hadoopConfiguration())
        options = spark.sparkContext._gateway.new_array(jvm.org.apache.hadoop.fs.Options.Rename, 1)
        options[0] = jvm.org.apache.hadoop.fs.Options.Rename.OVERWRITE
        context.rename(hstaging, jvm.org.apache.hadoop.fs.Path(target), options)
    return manifest


def remove_superseded(spark: SparkSession, lake: str, older: dict[str, Any], current: dict[str, Any]) -> None:
    """Delete table versions neither the current nor the previous manifest lists. The previous ones stay so a
    reader that read the old manifest a moment ago can finish."""
    keep = {d for m in (older, current) for dirs in m.get("tables", {}).values() for d in dirs}
    for table in current.get("tables", {}):
        folder = f"{lake.rstrip('/')}/{TABLES[table].folder}"
        fs, hpath = _hadoop(spark, folder)
        if not fs.exists(hpath):
            continue
        for status in fs.listStatus(hpath):
            relative = f"{TABLES[table].folder}/{status.getPath().getName()}"
            if status.isDirectory() and relative not in keep:
                fs.delete(status.getPath(), True)


def write_report(spark: SparkSession, lake: str, run_id: str, report: dict[str, Any]) -> str:
    path = f"{lake.rstrip('/')}/reports/backfill/{run_id}.json"
    payload = json.dumps(report, indent=2, sort_keys=True)
    if is_local(path):
        _local(path).parent.mkdir(parents=True, exist_ok=True)
        _local(path).write_text(payload, encoding="utf-8")
    else:
        fs, hpath = _hadoop(spark, path)
        out = fs.create(hpath, True)
        out.write(bytearray(payload.encode("utf-8")))
        out.close()
    return path
