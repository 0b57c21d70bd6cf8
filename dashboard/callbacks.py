"""Callbacks: inputs -> repository -> figures -> outputs.

The ``*_outputs`` and ``*_view`` functions are the callback bodies, plain functions of their inputs (the
repository and the current time are passed in) so tests call them directly; ``register`` wires them to the
app. The page polls the cheap data version every ``refresh_seconds``; the tab callbacks listen to that version
and to the filters, so unchanged data triggers nothing. A failed read keeps what is on screen and shows a short
warning with the request id instead (``no_update``; the error itself, with its paths and SQL, goes to the log); a
read that had to leave out files the lake lists but cannot read says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
import pandas as pd
from dash import ALL, Dash, Input, Output, State, callback_context, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import figures, ids
from dashboard.auth import viewer_scope
from dashboard.data import LakeRepository, TableMissing
from dashboard.filters import ViewFilters, effective_grain, parse_query, period, to_query, with_clicked
from dashboard.layout import (
    FIRST_TAB,
    fill,
    money_column,
    number_column,
    render_alert_items,
    render_kpi_cards,
    render_note,
    render_page,
    render_tab,
)
from dashboard.monitoring import current_request_id
from salespulse.kpi_report import SalesFilter
from salespulse.kpis import round_money
from salespulse.metrics import KPI_BY_KEY, MONEY_MEASURES
from salespulse.scope import Scope
from salespulse.settings import DashboardSettings
from salespulse.users import User

log = logging.getLogger("salespulse.errors")

# A spreadsheet runs a cell starting so as a formula; some also read the full-width forms of = + - @ as those
# signs, and a leading line break hides the formula behind an empty-looking first line.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
ADMINS_ONLY = ("Pipeline figures and rejected rows count every country: they are shown to administrators only. "
               "The charts below cover your countries.")
OVERVIEW_QUERY_THREADS = 4  # the Overview's independent queries (cards now and before, breakdowns, months, trend)
NO_FORECASTS = "No forecasts yet — run `salespulse train` to train and publish the forecasting model."


# -- header --------------------------------------------------------------------------------------------------
def freshness_badge(status: dict[str, Any] | None, published_at: str | None, now: datetime,
                    settings: DashboardSettings) -> tuple[str, str]:
    """Header text and colour: when the stream last published, amber then red when stale."""
    zone = ZoneInfo(settings.time_zone)
    if status is None:
        if not published_at:
            return "no data published yet", "secondary"
        when = datetime.fromisoformat(published_at).astimezone(zone)
        return f"no live stream · lake published {when:%Y-%m-%d %H:%M:%S}", "secondary"
    updated = datetime.fromisoformat(status["updated_at"])
    age = max((now - updated).total_seconds(), 0.0)
    color = ("success" if age < settings.stale_amber_seconds
             else "warning" if age < settings.stale_red_seconds else "danger")
    return f"data as of {updated.astimezone(zone):%H:%M:%S} ({age:,.0f} s ago)", color


def model_badge(repo: LakeRepository, scope: Scope) -> str:
    info = repo.model_info(scope)
    return f"model {info.version}" if info else "no model yet"


def alert_outputs(repo: LakeRepository, scope: Scope, settings: DashboardSettings) -> tuple[str, str, list[Any]]:
    """The header's alert count, its colour and the dropdown's items, for the viewer's countries."""
    alerts = repo.active_alerts(scope)
    since = figures.local_time(alerts["event_time"], settings.time_zone) if len(alerts) else []
    rows = [{"since": f"{when:%Y-%m-%d %H:%M}", "message": message}
            for when, message in zip(since, alerts["message"], strict=True)]
    return str(len(rows)), "danger" if rows else "secondary", render_alert_items(rows, settings.time_zone)


# -- filters -------------------------------------------------------------------------------------------------
def filters_from_controls(preset: str, start: str | None, end: str | None, countries: list[str] | None,
                          segments: list[str] | None, products: list[str] | None, bands: list[str] | None,
                          grain: str, dates_changed: bool) -> ViewFilters:
    """The controls' values as ViewFilters; picking dates by hand switches the period to custom."""
    chosen = "custom" if dates_changed else preset
    return ViewFilters(
        chosen, pd.Timestamp(start).date() if start and chosen == "custom" else None,
        pd.Timestamp(end).date() if end and chosen == "custom" else None,
        tuple(countries or ()), tuple(segments or ()), tuple(products or ()), tuple(bands or ()), grain)


def controls_for(view: ViewFilters, newest: datetime | None) -> tuple[Any, ...]:
    """Control values, the URL query and the period label for ``view``."""
    where = period(view, newest)
    query = to_query(view, newest)
    first = where.start.date().isoformat() if where.start else None
    last = (where.end - pd.Timedelta(microseconds=1)).date().isoformat() if where.end else None
    if view.preset == "last-hour" and where.start is not None:
        label = f"{where.start:%Y-%m-%d %H:%M}–{where.end:%H:%M} UTC"
    else:
        label = f"{first} → {last} (UTC days)" if first else "all data"
    return (view.preset, first, last, list(view.countries), list(view.segments), list(view.products),
            list(view.bands), view.grain, query, query, label)


def only_changed(values: tuple[Any, ...], shown: tuple[Any, ...]) -> tuple[Any, ...]:
    """``no_update`` for every output already showing its value (``shown`` pairs with the first values): the
    browser re-renders no control needlessly and the tabs are not re-triggered by an unchanged filters store."""
    return tuple(no_update if i < len(shown) and value == shown[i] else value for i, value in enumerate(values))


def _where(repo: LakeRepository, scope: Scope, query: str | None) -> tuple[ViewFilters, SalesFilter, str]:
    view = parse_query(query)
    return view, period(view, repo.newest_hour(scope)), query or "default"


# -- tabs ----------------------------------------------------------------------------------------------------
def overview_outputs(repo: LakeRepository, scope: Scope, query: str | None,
                     settings: DashboardSettings) -> tuple[Any, ...]:
    view, where, revision = _where(repo, scope, query)
    grain, _ = effective_grain(where, view.grain)
    # The independent queries run side by side (each on its own DuckDB cursor; DuckDB releases the GIL): a
    # filter change waits for the slowest one instead of their sum.
    prior, compared = previous_period(repo, scope, where)
    with ThreadPoolExecutor(max_workers=OVERVIEW_QUERY_THREADS) as pool:
        current = pool.submit(repo.kpis, scope, where)
        previous = pool.submit(repo.kpis, scope, prior) if prior else None
        finest = pool.submit(repo.sales_by, scope, where, ("country", "product"))  # breakdowns sum it
        months = pool.submit(repo.sales_by_month, scope, where)
        trend = pool.submit(repo.sales_over_time, scope, where, grain, ("country",), ("sales",))
        cards = render_kpi_cards(figures.kpi_card_values(current.result(), previous and previous.result(),
                                                         compared=compared))
        segments = repo.sales_by(scope, where, ("segment",))
        countries = repo.sales_by(scope, where, ("country",))
        products = repo.sales_by(scope, where, ("product",))
        top = finest.result().nlargest(settings.top_n, "sales")
        months, trend = months.result(), repo.with_partial_periods(scope, trend.result(), where, grain)
    top = top.assign(margin=KPI_BY_KEY["gross_margin_pct"].evaluate(top))
    # money already in cents by the display rule: the table's own $ format then shows exactly those cents
    top = top.assign(**{c: top[c].map(round_money).astype(float) for c in ("sales", "profit")})
    zone = settings.time_zone
    return (cards,
            figures.share_figure(segments, "segment", "Sales by segment", revision, hole=0.5),
            figures.share_figure(countries, "country", "Sales by country", revision),
            figures.month_area_figure(months, revision),
            figures.product_columns_figure(products, revision),
            figures.trend_by_figure(trend, "country", f"Sales trend by country (per {grain})", revision, zone),
            top[["country", "product", "sales", "profit", "margin", "orders", "units_sold"]].to_dict("records"),
            [{"name": "Country", "id": "country"}, {"name": "Product", "id": "product"},
             money_column("Sales", "sales"), money_column("Profit", "profit"),
             {"name": "Margin", "id": "margin", "type": "numeric", "format": {"specifier": ".1%"}},
             number_column("Orders", "orders", 0), number_column("Units", "units_sold")])


def previous_period(repo: LakeRepository, scope: Scope, where: SalesFilter) -> tuple[SalesFilter | None, str]:
    """The like-for-like part of the previous period to compare ``where`` with, and its label (None and why, when
    nothing is comparable)."""
    if where.start is None or where.end is None:
        return None, "no previous period data"
    return repo.comparison(scope, where)


def trends_outputs(repo: LakeRepository, scope: Scope, query: str | None,
                   settings: DashboardSettings) -> tuple[Any, ...]:
    view, where, revision = _where(repo, scope, query)
    grain, _ = effective_grain(where, view.grain)
    actuals = repo.sales_over_time(scope, where, "hour", ("country",))
    try:
        forecasts, anomalies, note = repo.forecasts(scope, where), repo.anomalies(scope, where), None
    except TableMissing:
        forecasts, anomalies, note = pd.DataFrame(), pd.DataFrame(), render_note(NO_FORECASTS, "warning")
    zone = settings.time_zone
    chart = figures.forecast_figure(actuals, forecasts, anomalies, revision, zone)
    if where.start and where.end:
        previous = where.previous()
        comparison = figures.period_comparison_figure(
            repo.sales_over_time(scope, where, grain), repo.sales_over_time(scope, previous, grain),
            pd.Timedelta(where.end - where.start), revision, zone)
    else:
        comparison = figures.empty_figure("pick a bounded period to compare", revision)
    return note, chart, comparison


def customers_outputs(repo: LakeRepository, scope: Scope, query: str | None,
                      settings: DashboardSettings) -> tuple[Any, ...]:
    _, where, revision = _where(repo, scope, query)
    if not where.per_customer:
        note = render_note("Customer KPIs exist per country and segment only; the product and discount-band "
                           "filters are ignored on this tab.")
        where = SalesFilter(where.start, where.end, where.countries, where.segments)
    else:
        note = None
    overall = repo.customers_by(scope, where, None)
    by_country = figures.with_customer_kpis(repo.customers_by(scope, where, "country"))
    by_segment = figures.with_customer_kpis(repo.customers_by(scope, where, "segment"))

    def card_totals(filter_: SalesFilter) -> dict[str, Any]:
        row = repo.customers_by(scope, filter_, None)
        return {} if row.empty else figures.with_customer_kpis(row).iloc[0].to_dict()

    prior, compared = (previous_period(repo, scope, where) if not overall.empty
                       else (None, "no previous period data"))
    previous = card_totals(prior) if prior else None
    cards = render_kpi_cards(figures.kpi_card_values(card_totals(where), previous, figures.CUSTOMER_CARD_KPIS,
                                                     compared))
    return (note, cards,
            figures.new_returning_figure(by_country, "country", revision),
            figures.new_returning_figure(by_segment, "segment", revision),
            figures.customer_ratio_figure(by_country, by_segment, "repeat_customer_rate",
                                          "Repeat-customer rate (2+ orders in the period)", revision),
            figures.customer_ratio_figure(by_country, by_segment, "orders_per_customer", "Orders per customer",
                                          revision),
            figures.engagement_figure(repo.engagement_by_country(scope, where), revision))


def inventory_outputs(repo: LakeRepository, scope: Scope, query: str | None,
                      settings: DashboardSettings) -> tuple[Any, ...]:
    _, where, revision = _where(repo, scope, query)
    stock = repo.stock(scope, where)
    drill = len(where.countries) == 1  # one country chosen: drill down to its products
    by = "product" if drill else "country"
    title = (f"Stock health of {where.countries[0]} by product (units vs reorder point)" if drill
             else "Stock health by country (units vs reorder point; choose one country, or click its bar "
                  "below, to see its products)")
    alerts = repo.reorder_alerts(scope, where)
    note = None if repo.has_stockout_forecasts(scope) else render_note(
        NO_FORECASTS + " Predicted stock-out times appear here once forecasts exist.", "warning")
    for column in ("alerted_at", "predicted_stockout_time", "as_of"):
        if column in alerts:
            alerts[column] = figures.local_time(alerts[column], settings.time_zone).dt.strftime("%Y-%m-%d %H:%M")
    columns = [{"name": "Country", "id": "country"}, {"name": "Product", "id": "product"},
               number_column("Stock (units)", "stock_on_hand"), number_column("Reorder point", "reorder_point"),
               number_column("Days of cover", "days_of_cover"),
               {"name": f"Alerted ({settings.time_zone})", "id": "alerted_at"},
               number_column("Forecast units, next 24 h", "units_p50_24h"),
               {"name": f"Predicted stock-out ({settings.time_zone})", "id": "predicted_stockout_time"}]
    return (note, title, figures.stock_gauges_figure(stock, by, revision), alerts.to_dict("records"), columns,
            figures.cover_figure(stock, by, revision), figures.turnover_figure(stock, by, revision),
            figures.sales_stock_figure(repo.sales_over_time(scope, where, "day", ("country",), ("sales",)),
                                       repo.stock_over_time(scope, where), revision))


def quality_outputs(repo: LakeRepository, scope: Scope, query: str | None,
                    settings: DashboardSettings) -> tuple[Any, ...]:
    view, where, revision = _where(repo, scope, query)
    grain, _ = effective_grain(where, view.grain)
    zone = settings.time_zone
    cards = (render_note(ADMINS_ONLY) if scope.restricted
             else render_pipeline_cards(repo.stream_status(scope), repo.manifest_streams(scope),
                                        repo.backfill_reports(scope)))
    sample = repo.quarantine_sample(scope)
    sample["ingest_time"] = figures.local_time(sample["ingest_time"], zone).dt.strftime("%Y-%m-%d %H:%M:%S")
    info = repo.model_info(scope)
    metrics = figures.model_metrics_frame(info.metrics if info else {})
    model_note = None if info else render_note("No model yet — run `salespulse train`; its metrics against the "
                                               "seasonal-naive, linear-regression and gradient-boosting baselines "
                                               "appear here.", "warning")
    ingest = repo.ingest_over_time(scope, where, grain)
    history = (repo.stream_status(scope) or {}).get("history", [])
    return (cards, figures.batch_history_figure(history, revision, zone),
            figures.ingest_figure(ingest, revision, zone, grain),
            figures.freshness_figure(ingest, revision, zone, grain),
            figures.quarantine_figure(repo.quarantine_over_time(scope, grain), revision, zone, grain),
            sample.to_dict("records"),
            [{"name": f"Ingested ({zone})", "id": "ingest_time"}, {"name": "Reason", "id": "reason"},
             {"name": "Detail", "id": "reason_detail"}, {"name": "File", "id": "source_file"},
             {"name": "Row", "id": "row_number"}, {"name": "Raw values", "id": "raw"}],
            model_note, figures.model_metrics_figure(metrics, revision))


def render_pipeline_cards(status: dict[str, Any] | None, streams: dict[str, Any],
                          reports: list[dict[str, Any]]) -> dbc.Row:
    sales = (status or {}).get("events", {}).get("sales", {})

    def number(value: Any, suffix: str = "", decimals: int = 0) -> str:
        return "–" if value is None else f"{value:,.{decimals}f}{suffix}"

    loaded = streams.get("sales", {})
    cards = [
        ("Ingest rate (last batch)", number(sales.get("last_batch_rows_per_second"), " rows/s")),
        ("Batch duration (last)", number(sales.get("last_batch_seconds"), " s", 2)),
        ("Freshness (last batch)", number(sales.get("freshness_seconds"), " s", 1)),
        ("Files waiting", number(sales.get("files_in_landing"))),
        ("Rows streamed / quarantined", f"{number(loaded.get('rows_in'))} / {number(loaded.get('rows_quarantined'))}"),
        ("Backfill runs", f"{len(reports):,}"),
    ]
    return render_kpi_cards([{"key": label, "label": label, "value": value,
                              "change": "" if status else "no stream has run", "tone": "secondary"}
                             for label, value in cards])


def export_outputs(repo: LakeRepository, scope: Scope, query: str | None) -> tuple[Any, Any]:
    """The CSV download of the filtered view and the note beside the export button: empty, or that the file
    leaves out unreadable files, or (no download) that reading failed, with the request id."""
    try:
        frame, name = export_frame(repo, scope, query)
        left_out = unreadable_count(repo)
    except Exception as err:  # the user gets a message in the page, not a failed request
        return no_update, read_failure(err, "Could not read the data to export.")
    note = partial_notice(left_out, "The exported file leaves it out.") if left_out else []
    return dcc.send_data_frame(frame.to_csv, name, index=False), note


def export_frame(repo: LakeRepository, scope: Scope, query: str | None) -> tuple[pd.DataFrame, str]:
    """The filtered view as a CSV-ready frame (numbers numeric, times UTC ISO) and its file name."""
    view, where, _ = _where(repo, scope, query)
    grain, _ = effective_grain(where, view.grain)
    frame = repo.export_rows(scope, where, grain)
    # the cents every other view shows, written as numbers (assign: the repository's cached frame stays as is)
    frame = frame.assign(**{c: frame[c].map(round_money) for c in frame.columns if c in MONEY_MEASURES})
    frame["period"] = pd.to_datetime(frame["period"]).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame = spreadsheet_safe(frame.rename(columns={"period": f"{grain}_start_utc"}))
    first = where.start.date().isoformat() if where.start else "all"
    last = (where.end - pd.Timedelta(microseconds=1)).date().isoformat() if where.end else "all"
    return frame, f"salespulse-{first}-{last}-{grain}.csv"


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula (CSV injection) get a leading ``'``, so they open as
    text; numeric columns stay numbers (a negative profit is a number, not a formula)."""
    def neutralise(value: Any) -> Any:
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value

    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    return frame.assign(**{c: frame[c].map(neutralise) for c in text})


def clicked_value(click: dict[str, Any] | None) -> str | None:
    """The category a click landed on: the point's customdata (set by every cross-filtering trace)."""
    if not click or not click.get("points"):
        return None
    point = click["points"][0]
    value = point.get("customdata", point.get("label", point.get("x")))
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


# -- wiring --------------------------------------------------------------------------------------------------
TAB_OUTPUTS: dict[str, tuple[Callable[..., tuple[Any, ...]], list[Output]]] = {
    "overview": (overview_outputs, [
        Output(ids.KPI_CARDS, "children"), Output(ids.clickable(ids.SEGMENT_DONUT, "segment"), "figure"),
        Output(ids.clickable(ids.COUNTRY_PIE, "country"), "figure"), Output(ids.MONTH_AREA, "figure"),
        Output(ids.clickable(ids.PRODUCT_COLUMNS, "product"), "figure"),
        Output(ids.clickable(ids.COUNTRY_TREND, "country"), "figure"),
        Output(ids.TOP_TABLE, "data"), Output(ids.TOP_TABLE, "columns")]),
    "trends": (trends_outputs, [
        Output(ids.FORECAST_NOTE, "children"), Output(ids.FORECAST_CHART, "figure"),
        Output(ids.PERIOD_COMPARISON, "figure")]),
    "customers": (customers_outputs, [
        Output(ids.CUSTOMER_NOTE, "children"), Output(ids.CUSTOMER_CARDS, "children"),
        Output(ids.clickable(ids.CUSTOMERS_BY_COUNTRY, "country"), "figure"),
        Output(ids.clickable(ids.CUSTOMERS_BY_SEGMENT, "segment"), "figure"),
        Output(ids.REPEAT_RATE, "figure"), Output(ids.ORDERS_PER_CUSTOMER, "figure"),
        Output(ids.clickable(ids.ENGAGEMENT_CHART, "country"), "figure")]),
    "inventory": (inventory_outputs, [
        Output(ids.INVENTORY_NOTE, "children"), Output(ids.STOCK_TITLE, "children"),
        Output(ids.STOCK_GAUGES, "figure"), Output(ids.REORDER_TABLE, "data"),
        Output(ids.REORDER_TABLE, "columns"), Output(ids.clickable(ids.COVER_CHART, "country"), "figure"),
        Output(ids.clickable(ids.TURNOVER_CHART, "country"), "figure"), Output(ids.SALES_STOCK_CHART, "figure")]),
    "quality": (quality_outputs, [
        Output(ids.PIPELINE_CARDS, "children"), Output(ids.BATCH_CHART, "figure"), Output(ids.INGEST_CHART, "figure"),
        Output(ids.FRESHNESS_CHART, "figure"), Output(ids.QUARANTINE_CHART, "figure"),
        Output(ids.QUARANTINE_TABLE, "data"), Output(ids.QUARANTINE_TABLE, "columns"),
        Output(ids.MODEL_NOTE, "children"), Output(ids.MODEL_CHART, "figure")]),
}
# What the filter sync writes, in controls_for's order.
FILTER_OUTPUTS = [
    Output(ids.PRESET, "value"), Output(ids.DATES, "start_date"), Output(ids.DATES, "end_date"),
    Output(ids.COUNTRY, "value"), Output(ids.SEGMENT, "value"), Output(ids.PRODUCT, "value"),
    Output(ids.BAND, "value"), Output(ids.GRAIN, "value"), Output(ids.URL, "search"),
    Output(ids.FILTERS, "data"), Output(ids.PERIOD_LABEL, "children")]
# Each tab callback's last output: its read warning, non-empty when the read failed or left out unreadable files
# (``guarded``).
READ_WARNINGS = {name: Output(ids.warning(name), "children") for name in TAB_OUTPUTS}
# The callbacks whose response is a pure function of the request body, the data version and the viewer's countries,
# each named by an output only it writes; dashboard/response_cache.py serves them from its cache. Not here: the
# header ("N s ago"), the version poll (one stat) and the Quality tab, which also shows the stream's status file,
# the backfill reports and the model registry: those change without a new data version.
CACHEABLE_OUTPUTS = (Output(ids.FILTERS, "data"), *(w for name, w in READ_WARNINGS.items() if name != "quality"))


def guarded(outputs: Callable[..., tuple[Any, ...]], size: int, repo: LakeRepository, scope: Scope,
            *args: Any) -> tuple[Any, ...]:
    """Run a tab's outputs; on a failed read keep the last good content and say so, and say when the figures
    leave out files that cannot be read."""
    try:
        values = outputs(repo, scope, *args)
        left_out = unreadable_count(repo)
    except Exception as err:  # any read failure: the page must not go blank
        warning = read_failure(err, "Could not read the latest data; showing the last good data. Retrying at the "
                                    "next refresh.")
        return (*([no_update] * size), warning)
    return (*values, partial_notice(left_out, "The figures leave it out, so totals may be too low.") if left_out
            else [])


def read_failure(err: Exception, message: str) -> dbc.Alert:
    """What a user sees of a failed read: ``message`` and the request id. The error (paths, SQL) goes to the
    log under that id, not to the browser."""
    request_id = current_request_id()
    log.warning("a read for the page failed", exc_info=err, extra={"fields": {"request_id": request_id}})
    return dbc.Alert([f"{message} If it keeps happening, send the operators this request id: ",
                      html.Code(request_id, className="request-id")], color="warning", className="py-2")


def unreadable_count(repo: LakeRepository) -> int:
    """How many files (or vanished directories) the lake lists under the current data version but cannot read."""
    return sum(len(parts) for parts in repo.unreadable_files().values())


def partial_notice(count: int, consequence: str) -> dbc.Alert:
    return dbc.Alert(f"Part of the data could not be read ({count} file{'s' if count != 1 else ''}). {consequence} "
                     "The operators' log names the files.", color="warning", className="py-2 partial-data")


def tab_content(repo: LakeRepository, scope: Scope, tab: str, query: str | None,
                settings: DashboardSettings) -> Any:
    """The tab's frame already holding its figures, cards and tables for the filters ``query`` (or its read
    warning): a tab arrives whole, in one round trip."""
    outputs, targets = TAB_OUTPUTS[tab]
    values = guarded(outputs, len(targets), repo, scope, query, settings)
    return fill(render_tab(tab), ((o.component_id, o.component_property, v)
                                  for o, v in zip([*targets, READ_WARNINGS[tab]], values, strict=True)
                                  if v is not no_update))


def page(repo: LakeRepository, scope: Scope, user: User | None, search: str | None,
         settings: DashboardSettings) -> Any:
    """The page for the URL query ``search`` with its filters set and the first tab filled, so the browser
    draws the charts straight from the layout. A link whose query did not reach the server opens on the
    default view; the filter sync then moves it to the link's view."""
    version = repo.data_version()  # first: data published meanwhile is picked up by the next version poll
    try:
        newest = repo.newest_hour(scope)
    except TableMissing:  # nothing published yet
        newest = None
    except Exception as err:  # the page opens whatever the lake's state; the tab shows the read warning
        log.warning("could not read the newest hour; the page opens on all time", exc_info=err)
        newest = None
    controls = dict(zip(((o.component_id, o.component_property) for o in FILTER_OUTPUTS),
                        controls_for(parse_query(search), newest), strict=True))
    del controls[(ids.URL, "search")]  # the address stays as typed until the filter sync tidies it
    first = tab_content(repo, scope, FIRST_TAB, controls[(ids.FILTERS, "data")], settings)
    shell = render_page(settings, user, repo.countries(scope), version, first)
    return fill(shell, ((component_id, prop, value) for (component_id, prop), value in controls.items()))


def register(app: Dash, repo: LakeRepository, settings: DashboardSettings) -> None:
    @app.callback(Output(ids.DATA_VERSION, "data"), Input(ids.REFRESH, "n_intervals"),
                  State(ids.DATA_VERSION, "data"), prevent_initial_call=True)
    def poll_data_version(_: int | None, known: str | None) -> Any:
        scope = viewer_scope()
        version = repo.ready_version(scope)  # new once its shared tables are built: the views then are quick
        return no_update if not version or version == known else version

    @app.callback(Output(ids.HEADER_FRESHNESS, "children"), Output(ids.HEADER_FRESHNESS, "color"),
                  Output(ids.HEADER_MODEL, "children"), Input(ids.REFRESH, "n_intervals"))
    def update_header(_: int | None) -> tuple[str, str, str]:
        scope = viewer_scope()
        published = repo.published_at()
        text, color = freshness_badge(repo.stream_status(scope), published, datetime.now(timezone.utc), settings)
        return text, color, model_badge(repo, scope)

    @app.callback(Output(ids.ALERT_COUNT, "children"), Output(ids.ALERT_COUNT, "color"),
                  Output(ids.ALERT_MENU, "children"), Input(ids.DATA_VERSION, "data"))
    def update_alerts(_version: str | None) -> tuple[str, str, list[Any]]:
        scope = viewer_scope()
        try:
            return alert_outputs(repo, scope, settings)
        except Exception as err:  # the header stays up; the error goes to the log
            log.warning("could not read the alerts", exc_info=err)
            return "?", "warning", [dbc.DropdownMenuItem("Alerts could not be read", disabled=True)]

    @app.callback(
        *FILTER_OUTPUTS, Input(ids.URL, "search"), Input(ids.PRESET, "value"), Input(ids.DATES, "start_date"),
        Input(ids.DATES, "end_date"), Input(ids.COUNTRY, "value"), Input(ids.SEGMENT, "value"),
        Input(ids.PRODUCT, "value"), Input(ids.BAND, "value"), Input(ids.GRAIN, "value"),
        Input(ids.RESET, "n_clicks"), Input(ids.DATA_VERSION, "data"), State(ids.FILTERS, "data"))
    def sync_filters(search: str | None, preset: str | None, start: str | None, end: str | None,
                     countries: list[str] | None, segments: list[str] | None, products: list[str] | None,
                     bands: list[str] | None, grain: str | None, _reset: int | None, _version: str | None,
                     applied: str | None) -> tuple[Any, ...]:
        scope = viewer_scope()
        triggered = {t["prop_id"].split(".")[0] for t in callback_context.triggered}
        if ids.RESET in triggered:
            view = ViewFilters()
        elif ids.URL in triggered or callback_context.triggered_id is None:  # page load, pasted link, cross-filter
            view = parse_query(search)
        elif triggered == {ids.DATA_VERSION}:  # new data moves relative periods; the choice stays
            view = parse_query(applied)
        else:
            view = filters_from_controls(preset, start, end, countries, segments, products, bands,
                                         grain or "day", bool(triggered & {ids.DATES}))
        shown = (preset, start, end, countries, segments, products, bands, grain, search, applied)
        return only_changed(controls_for(view, repo.newest_hour(scope)), shown)

    @app.callback(Output(ids.URL, "search", allow_duplicate=True),
                  Input(ids.clickable(ALL, ALL), "clickData"), State(ids.FILTERS, "data"),
                  prevent_initial_call=True)
    def cross_filter(_clicks: list[Any], applied: str | None) -> str:
        scope = viewer_scope()
        trigger = callback_context.triggered_id
        value = clicked_value(callback_context.triggered[0]["value"]) if trigger else None
        if value is None:
            raise PreventUpdate
        view = with_clicked(parse_query(applied), trigger["dimension"], value)
        return to_query(view, repo.newest_hour(scope))

    @app.callback(Output(ids.TAB_CONTENT, "children"), Input(ids.TABS, "active_tab"), State(ids.FILTERS, "data"),
                  prevent_initial_call=True)  # the page opens with the first tab filled
    def show_tab(tab: str, applied: str | None) -> Any:
        scope = viewer_scope()
        return tab_content(repo, scope, tab, applied, settings)

    def tab_callback(outputs: Callable[..., tuple[Any, ...]], size: int) -> Callable[[str, str], tuple[Any, ...]]:
        return lambda _version, query: guarded(outputs, size, repo, viewer_scope(), query, settings)

    for name, (outputs, targets) in TAB_OUTPUTS.items():  # a tab arrives filled: only changes call these
        app.callback(*targets, READ_WARNINGS[name], Input(ids.DATA_VERSION, "data"), Input(ids.FILTERS, "data"),
                     prevent_initial_call=True)(tab_callback(outputs, len(targets)))

    @app.callback(Output(ids.FILTER_COLLAPSE, "is_open"), Input(ids.FILTER_TOGGLE, "n_clicks"),
                  State(ids.FILTER_COLLAPSE, "is_open"), prevent_initial_call=True)
    def toggle_filters(_: int, shown: bool | None) -> bool:
        return not shown

    @app.callback(Output(ids.EXPORT_DOWNLOAD, "data"), Output(ids.EXPORT_NOTE, "children"),
                  Input(ids.EXPORT_BUTTON, "n_clicks"), State(ids.FILTERS, "data"), prevent_initial_call=True)
    def export_csv(_: int, applied: str | None) -> tuple[Any, Any]:
        scope = viewer_scope()
        return export_outputs(repo, scope, applied)
