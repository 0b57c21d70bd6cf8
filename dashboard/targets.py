"""The Overview's targets section: cards with attainment to date and the projected month end, and a table of every
target of the month. ``targets_outputs`` is the callback body (repository -> cards and rows); the numbers come
from ``LakeRepository.target_attainment`` (salespulse/targets.py), this module only words and formats them.
Its callback fires when the section appears (the page opens or the Overview tab is chosen), when new data is
published and when the filters change."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
from dash import Dash, Input, Output

from dashboard import ids
from dashboard.auth import viewer_scope
from dashboard.callbacks import guarded
from dashboard.data import LakeRepository
from dashboard.filters import parse_query, period
from dashboard.layout import money_column, render_note, render_target_cards
from salespulse.kpis import round_half_up, round_money
from salespulse.metrics import format_kpi
from salespulse.scope import Scope
from salespulse.settings import DashboardSettings
from salespulse.targets import MEASURES, attainment_totals

NO_TARGETS = ("No targets for {month} yet: load them with `salespulse targets load FILE.csv` or "
              "`salespulse targets set --country ... --month {month:%Y-%m} --sales ... --profit ...`.")
LABELS = {"sales": "Sales", "profit": "Profit"}
OUTPUTS = [Output(ids.TARGET_CARDS, "children"), Output(ids.TARGET_TITLE, "children"),
           Output(ids.TARGET_TABLE, "data"), Output(ids.TARGET_TABLE, "columns")]


def percent(value: Decimal | None) -> str:
    return "–" if value is None else f"{round_half_up(value * 100, 1):f}%"


def target_card_values(totals: dict[str, dict[str, Any]], month: str) -> list[dict[str, Any]]:
    """One card per measure with whole-country targets: attainment to date, then the projection against the
    target and the status."""
    cards = []
    for measure in MEASURES:
        if measure not in totals:
            continue
        total = totals[measure]
        projected = "no forecast past the newest data" if total["projected"] is None else \
            f"projected {format_kpi('total_sales', total['projected'])}"
        cards.append({
            "key": measure, "label": f"{LABELS[measure]} vs target · {month} · {total['countries']} "
                                     f"countr{'y' if total['countries'] == 1 else 'ies'}",
            "value": f"{percent(total['attainment'])} of {format_kpi('total_sales', total['target'])} to date",
            "detail": f"{projected} · {total['status']}", "status": total["status"]})
    return cards


def table_rows(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The table's records: money in cents by the display rule (numbers, so the table sorts them), attainment
    as a fraction the table shows as a percentage."""
    def cents(value: Decimal | None) -> float | None:
        return None if value is None else float(round_money(value))

    return [{"country": r["country"], "segment": r["segment"] or "(whole country)", "measure": LABELS[r["measure"]],
             "target": cents(r["target"]), "actual": cents(r["actual"]),
             "attainment": None if r["attainment"] is None else float(r["attainment"]),
             "projected": cents(r["projected"]), "status": r["status"]} for r in rows.to_dict("records")]


TABLE_COLUMNS = [{"name": "Country", "id": "country"}, {"name": "Segment", "id": "segment"},
                 {"name": "Measure", "id": "measure"}, money_column("Target", "target"),
                 money_column("Actual to date", "actual"),
                 {"name": "Attainment", "id": "attainment", "type": "numeric", "format": {"specifier": ".1%"}},
                 money_column("Projected month end", "projected"), {"name": "Status", "id": "status"}]


def targets_outputs(repo: LakeRepository, scope: Scope, query: str | None,
                    settings: DashboardSettings) -> tuple[Any, ...]:
    found = repo.target_attainment(scope, period(parse_query(query), repo.newest_hour(scope)))
    if found is None:
        return [], "Targets", [], TABLE_COLUMNS
    window, rows = found
    month = f"{window.start:%B %Y}"
    title = (f"Targets of {month}: attainment to date (data up to {window.data_end:%Y-%m-%d %H:00} UTC) and the "
             "projected month end; on track when the projection reaches the target")
    if rows.empty:
        return render_note(NO_TARGETS.format(month=window.start)), title, [], TABLE_COLUMNS
    cards = render_target_cards(target_card_values(attainment_totals(rows), month))
    return cards, title, table_rows(rows), TABLE_COLUMNS


def register(app: Dash, repo: LakeRepository, settings: DashboardSettings) -> None:
    @app.callback(*OUTPUTS, Output(ids.TARGET_WARNING, "children"), Input(ids.DATA_VERSION, "data"),
                  Input(ids.FILTERS, "data"))
    def update_targets(_version: str | None, query: str | None) -> tuple[Any, ...]:
        return guarded(targets_outputs, len(OUTPUTS), repo, viewer_scope(), query, settings)
