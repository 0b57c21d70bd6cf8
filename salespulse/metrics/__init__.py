"""The metrics layer: each measure, input and KPI defined once (``catalog``), their formulas (``formula``) and the
SQL built from them (``sql``). No Dash, Spark or DuckDB here: every other layer imports this one. docs/metrics.md
shows how to add a KPI."""

from salespulse.metrics.catalog import (
    INPUT_BY_NAME,
    INPUTS,
    KPI_BY_KEY,
    KPIS,
    MEASURE_BY_NAME,
    MEASURES,
    MONEY_MEASURES,
    SHOWN_MEASURES,
    WINDOW_KPIS,
    Answer,
    Input,
    Kpi,
    Measure,
    Source,
    answered_by,
    compute_kpis,
    format_kpi,
    is_metric,
    metric_format,
)
from salespulse.metrics.formula import Formula, FormulaError
from salespulse.metrics.sql import event_measures, measure_sum, measure_sums

__all__ = [
    "INPUTS", "INPUT_BY_NAME", "KPIS", "KPI_BY_KEY", "MEASURES", "MEASURE_BY_NAME", "MONEY_MEASURES", "SHOWN_MEASURES",
    "WINDOW_KPIS", "Answer", "Formula", "FormulaError", "Input", "Kpi", "Measure", "Source", "answered_by",
    "compute_kpis", "event_measures", "format_kpi", "is_metric", "measure_sum", "measure_sums", "metric_format",
]
