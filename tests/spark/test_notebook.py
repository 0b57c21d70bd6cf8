"""notebooks/explore.ipynb, executed against a lake built by the project's own backfill, so it cannot rot.

Expected numbers come from the messy fixture's hand-made expectations (messy_expected.csv), not from the lake.
The kernel is ipykernel's "python3": ipykernel installs that spec into sys.prefix, jupyter_client falls back to
it even when it is not registered, and its "python" command runs this interpreter, so no setup step is needed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from salespulse.lake import TABLES
from salespulse.metrics import format_kpi
from salespulse.profiles import load_profile
from salespulse.settings import load_settings
from spark_jobs.backfill import run_backfill

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "explore.ipynb"
EXPORTS = ROOT / "tests" / "fixtures" / "exports"
PLOTLY = "application/vnd.plotly.v1+json"


def printed_text(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook printed or displayed as text."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                parts.append(output["text"])
            elif "text/plain" in output.get("data", {}):
                parts.append(output["data"]["text/plain"])
    return "\n".join(parts)


def row(text: str, label: str) -> list[str]:
    """The values of the displayed table row(s) labelled ``label``; pandas may wrap a wide row into several
    blocks, each repeating the label, so the values of all of them are joined in order."""
    values: list[str] = []
    for line in text.splitlines():
        if re.match(rf"{re.escape(label)}\s", line):
            values += line[len(label):].split()
    return values


def test_explore_notebook_runs_on_a_backfilled_lake(spark: SparkSession, tmp_path: Path) -> None:
    settings = load_settings(overrides={"paths.lake": str(tmp_path / "lake")})
    now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    run_backfill(spark, settings, str(EXPORTS / "messy_sales.csv"), load_profile("financial_sample"), now, "nbtest",
                 say=lambda _: None)

    expected = pd.read_csv(EXPORTS / "messy_expected.csv", dtype=str, keep_default_na=False)
    expected = expected[expected["file"] == "messy_sales.csv"]
    silver = expected[expected["outcome"] == "silver"]
    outcomes = expected["outcome"].value_counts()
    reasons = expected.loc[expected["outcome"] == "quarantine", "reason"].value_counts()
    total_sales = float(sum(Decimal(v) for v in silver["sales"]))

    # the documented command (`make notebook LAKE=...` runs this script), headless
    executed = tmp_path / "explore.ipynb"
    run = subprocess.run([sys.executable, str(ROOT / "notebooks" / "run.py"), "--lake", settings.paths.lake,
                          "--out", str(executed)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == (f"notebook: explore.ipynb ran against {settings.paths.lake}; "
                                  f"executed copy in {executed}")
    nb = nbformat.read(executed, as_version=4)
    text = printed_text(nb)

    # (a) what is published: manifest version and rows per table
    assert "version nbtest" in text
    assert row(text, "silver_sales")[-1] == str(len(silver))
    assert row(text, "quarantine_sales")[-1] == str(outcomes["quarantine"])
    # The financial sample has no customer ids: gold_customers_daily is published with no rows.
    assert row(text, "gold_customers_daily")[-1] == "0"
    # (b) schemas match the documented contract
    for table in ("silver_sales", "gold_sales_hourly"):
        assert f"{table}: all {len(TABLES[table].columns)} contract columns present, no extra columns" in text
    # (c) data quality: quarantine by reason, and the run report reconciles
    assert f"quarantined sales rows: {outcomes['quarantine']}" in text
    for reason, count in reasons.items():
        assert row(text, reason)[0] == str(count), reason
    assert {"malformed_row", "future_event_time"} <= set(reasons.index)
    report = [str(len(expected)), str(len(silver)), str(outcomes["quarantine"]), str(outcomes["duplicate"]), "True"]
    assert row(text, "nbtest")[-5:] == report
    # (d) KPIs, formatted for display
    assert row(text, "Total sales") == [format_kpi("total_sales", total_sales)]
    assert row(text, "Orders") == [format_kpi("orders", len(silver))]
    assert row(text, "Active customers") == [format_kpi("active_customers", None)]
    # (e) three charts
    figures = [o for c in nb.cells for o in c.get("outputs", []) if PLOTLY in o.get("data", {})]
    assert len(figures) == 3


def test_explore_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert 'LAKE = os.environ.get("SALESPULSE_LAKE", "data/lake")' in code[0].source
