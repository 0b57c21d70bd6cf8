"""`salespulse sql` as a data engineer meets it: Spark's own message for a bad query on one line, numbers written
out in full, and Spark's log output kept off the terminal unless --verbose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from salespulse.cli import main

pytestmark = pytest.mark.spark


def _sql(spark, tmp_path: Path, query: str):
    # the shared test session is running already: the command reuses it
    return CliRunner().invoke(main, ["sql", query, "--lake", str(tmp_path / "lake")])


@pytest.mark.parametrize(("query", "expected"), [
    ("SELEC 1", "SQL error: [PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601 (line 1, pos 0)"),
    ("SELECT id FROM range(3) WHERE id = 1 AND", "(line 1, pos 37)"),
    ("SELECT * FROM silver_salez", "[TABLE_OR_VIEW_NOT_FOUND] The table or view `silver_salez` cannot be found."),
    ("SELECT nocol FROM range(2)", "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column, variable, or function parameter "
                                   "with name `nocol` cannot be resolved."),
])
def test_sql_error_is_sparks_message_on_one_line(spark, tmp_path, query, expected) -> None:
    result = _sql(spark, tmp_path, query)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("salespulse: SQL error: [") and expected in lines[0], lines
    assert "(line 1, pos" in lines[0]


def test_sql_prints_sums_as_plain_decimals(spark, tmp_path) -> None:
    result = _sql(spark, tmp_path, "SELECT CAST(118726350.26 AS DOUBLE) AS sales, "
                                   "CAST(25029830.165 AS DECIMAL(20, 4)) AS usa, 'x' AS label, NULL AS nothing")
    assert result.exit_code == 0, result.output
    header, _, row = result.output.splitlines()
    assert header.split(" | ") == ["       sales", "          usa", "label", "nothing"]
    assert row.split(" | ") == ["118726350.26", "25029830.1650", "x    ", "   NULL"]
    assert "E8" not in result.output and "E7" not in result.output


@pytest.mark.slow
def test_spark_output_goes_to_the_log_file_unless_verbose(tmp_path) -> None:
    log = tmp_path / "logs" / "spark.log"
    env = {**os.environ, "SALESPULSE_SPARK__LOG_FILE": str(log), "SALESPULSE_SPARK__MASTER": "local[1]"}
    command = [sys.executable, "-m", "salespulse", "sql", "SELECT * FROM nowhere", "--lake", str(tmp_path)]
    quiet = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 1
    assert quiet.stdout == ""
    assert quiet.stderr.splitlines() == [
        "salespulse: SQL error: [TABLE_OR_VIEW_NOT_FOUND] The table or view `nowhere` cannot be found. Verify the "
        "spelling and correctness of the schema and catalog. (line 1, pos 14)"]
    assert "log4j" in log.read_text(encoding="utf-8")  # Spark's banner went to the file
    verbose = subprocess.run([command[0], "-m", "salespulse", "--verbose", *command[3:]], env=env,
                             capture_output=True, text=True, timeout=300)
    assert verbose.returncode == 1 and "log4j" in verbose.stderr
