"""Pure component trees: the page shell, the navigation panel and one builder per tab. No data access."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dash_bootstrap_components as dbc
from dash import dash_table, dcc, html

from dashboard import ids
from dashboard.filters import CATEGORIES, GRAINS, PRESETS
from salespulse.settings import DashboardSettings
from salespulse.users import User

TABS = {"overview": "Overview", "trends": "Sales trends", "customers": "Customer engagement",
        "inventory": "Inventory", "quality": "Data quality & pipeline"}
FIRST_TAB = "overview"
GRAPH_CONFIG = {"displaylogo": False, "responsive": True}


def render_page(settings: DashboardSettings, user: User | None, countries: tuple[str, ...],
                data_version: str | None, first_tab: html.Div) -> html.Div:
    """The whole page for ``user`` (None: no login, as in tests), whose country filter offers ``countries``;
    built per request (``app.layout`` is a function: a static layout would be computed once at start). The page opens
    knowing ``data_version`` and holding ``first_tab`` already filled, so no callback round trip stands between the
    layout and the charts."""
    return html.Div([
        dcc.Location(id=ids.URL, refresh=False),
        dcc.Interval(id=ids.REFRESH, interval=int(settings.refresh_seconds * 1000)),
        dcc.Store(id=ids.DATA_VERSION, data=data_version),
        dcc.Store(id=ids.FILTERS),
        dcc.Download(id=ids.EXPORT_DOWNLOAD),
        render_header(settings, user),
        dbc.Container([
            dbc.Row([
                dbc.Col(render_filter_panel(settings, countries), lg=3, xxl=2, className="mb-3"),
                dbc.Col([
                    dbc.Tabs([dbc.Tab(label=label, tab_id=key) for key, label in TABS.items()],
                             id=ids.TABS, active_tab=FIRST_TAB, className="mb-3"),
                    html.Div(first_tab, id=ids.TAB_CONTENT),
                ], lg=9, xxl=10),
            ]),
        ], fluid=True),
    ])


def fill(tree: Any, values: Iterable[tuple[str | dict[str, str], str, Any]]) -> Any:
    """``tree`` with each (component id, property, value) set on the component of that id: a callback's
    outputs written into the layout before it is sent."""
    for component_id, prop, value in values:
        setattr(tree[component_id], prop, value)
    return tree


def render_header(settings: DashboardSettings, user: User | None) -> dbc.Navbar:
    return dbc.Navbar(dbc.Container([
        dbc.NavbarBrand([html.Span("SalesPulse", className="fw-bold"),
                         html.Span(" executive dashboard", className="fw-light")]),
        html.Div([
            # text-wrap: a long badge wraps on a phone instead of widening the page
            dbc.Badge(id=ids.HEADER_FRESHNESS, color="secondary", className="me-2 fs-6 text-wrap text-start"),
            dbc.Badge(id=ids.HEADER_MODEL, color="light", text_color="dark", className="me-2 fs-6 text-wrap"),
            dbc.Badge(f"times in {settings.time_zone}", color="light", text_color="dark", className="fs-6"),
            *render_alert_menu(),
            *render_account(user),
        ], className="d-flex flex-wrap align-items-center"),
    ], fluid=True), color="primary", dark=True, className="mb-3")


def render_alert_menu() -> list[Any]:
    """The alert count and the dropdown listing the alerts (filled by the alerts callback)."""
    return [dbc.DropdownMenu(id=ids.ALERT_MENU, label=["Alerts ", dbc.Badge(id=ids.ALERT_COUNT, color="secondary",
                                                                             pill=True, className="ms-1")],
                             color="light", size="sm", align_end=True, className="ms-2")]


def render_alert_items(alerts: list[dict[str, Any]], zone: str) -> list[Any]:
    """One item per active alert (``LakeRepository.active_alerts`` rows): since when, and what."""
    if not alerts:
        return [dbc.DropdownMenuItem("No active alerts", disabled=True)]
    return [dbc.DropdownMenuItem([html.Small(f"since {a['since']} {zone}", className="text-muted d-block"),
                                  html.Span(a["message"])], className="alert-item text-wrap",
                                 style={"minWidth": "22rem"}) for a in alerts]


def render_account(user: User | None) -> list[Any]:
    """Who is logged in, what they may see, and the logout button: a plain form posting to the server's /logout
    (POST only, so no other site can log the user out with a link or an image)."""
    if user is None:
        return []
    scope = "all countries" if user.admin else ", ".join(user.countries)
    return [html.Span(f"{user.name} · {scope}", id=ids.ACCOUNT, className="text-white ms-3 small"),
            html.Form(html.Button("Log out", type="submit", className="btn btn-outline-light btn-sm"),
                      id=ids.LOGOUT, action="/logout", method="post", className="ms-2 mb-0")]


def _multi(component_id: str, name: str, label: str, options: tuple[str, ...] | None = None) -> html.Div:
    return html.Div([
        dbc.Label(label, html_for=component_id, className="small fw-bold mb-1"),
        dcc.Dropdown(id=component_id, options=list(CATEGORIES[name] if options is None else options), multi=True,
                     placeholder="all"),
    ], className="mb-2")


def render_filter_panel(settings: DashboardSettings, countries: tuple[str, ...]) -> html.Div:
    """The filters, always shown on large screens; on small ones (a phone) folded behind a button so the charts
    come first."""
    return html.Div([
        dbc.Button("Filters", id=ids.FILTER_TOGGLE, color="primary", outline=True, size="sm",
                   className="d-lg-none w-100 mb-2"),
        dbc.Collapse(render_filters(settings, countries), id=ids.FILTER_COLLAPSE, is_open=False,
                     className="d-lg-block"),
    ])


def render_filters(settings: DashboardSettings, countries: tuple[str, ...]) -> dbc.Card:
    return dbc.Card(dbc.CardBody([
        html.H6("Filters", className="card-title"),
        dbc.Label("Period", html_for=ids.PRESET, className="small fw-bold mb-1"),
        dcc.Dropdown(id=ids.PRESET, options=[{"label": v, "value": k} for k, v in PRESETS.items()],
                     clearable=False, className="mb-2"),
        dcc.DatePickerRange(id=ids.DATES, display_format="YYYY-MM-DD", className="mb-1",
                            start_date_placeholder_text="start", end_date_placeholder_text="end"),
        html.Div(id=ids.PERIOD_LABEL, className="small text-muted mb-2"),
        _multi(ids.COUNTRY, "country", "Countries", countries),
        _multi(ids.SEGMENT, "segment", "Segments"),
        _multi(ids.PRODUCT, "product", "Products"),
        _multi(ids.BAND, "band", "Discount bands"),
        dbc.Label("Time grain", html_for=ids.GRAIN, className="small fw-bold mb-1"),
        dcc.Dropdown(id=ids.GRAIN, options=list(GRAINS), clearable=False, className="mb-3"),
        dbc.Button("Reset filters", id=ids.RESET, color="secondary", outline=True, size="sm", className="me-2"),
        dbc.Button("Export CSV", id=ids.EXPORT_BUTTON, color="primary", size="sm"),
        html.Div(id=ids.EXPORT_NOTE, className="small mt-2"),
        html.Div("Dates are UTC days. Click a country, segment or product in a chart to filter on it.",
                 className="small text-muted mt-2"),
    ]), className="shadow-sm")


def _graph(component_id: str | dict[str, str], height: int = 340) -> dcc.Graph:
    return dcc.Graph(id=component_id, config=GRAPH_CONFIG, style={"minHeight": f"{height}px"})


def _card(child: Any) -> dbc.Card:
    return dbc.Card(dbc.CardBody(child, className="p-2"), className="shadow-sm h-100")


def _row(*children: Any, widths: tuple[int, ...] | None = None) -> dbc.Row:
    widths = widths or (12 // len(children),) * len(children)
    return dbc.Row([dbc.Col(_card(c), lg=w, className="mb-3") for c, w in zip(children, widths, strict=True)])


def render_kpi_cards(cards: list[dict[str, Any]]) -> dbc.Row:
    """Cards from figures.kpi_card_values: label, formatted value, change vs the previous period."""
    return dbc.Row([
        dbc.Col(dbc.Card(dbc.CardBody([
            html.Div(c["label"], className="small text-muted text-uppercase"),
            html.Div(c["value"], className="fs-4 fw-bold", id={"type": "kpi-value", "key": c["key"]}),
            html.Div(c["change"], className=f"small text-{c['tone']}"),
        ]), className="shadow-sm h-100"), xs=12, sm=6, md=4, xl=True, className="mb-3")  # one per row on a phone
        for c in cards
    ])


def money_column(name: str, column: str) -> dict[str, Any]:
    """A numeric DataTable column shown as currency: sorting and export keep the number (money as text sorts and exports
    wrongly)."""
    return {"name": name, "id": column, "type": "numeric",
            "format": dash_table.FormatTemplate.money(2)}


def number_column(name: str, column: str, decimals: int = 1) -> dict[str, Any]:
    fmt = dash_table.Format.Format(precision=decimals, scheme=dash_table.Format.Scheme.fixed,
                                   group=dash_table.Format.Group.yes)
    return {"name": name, "id": column, "type": "numeric", "format": fmt}


def _table(component_id: str, page_size: int = 10) -> dash_table.DataTable:
    return dash_table.DataTable(id=component_id, sort_action="native", page_size=page_size,
                                style_table={"overflowX": "auto"}, style_as_list_view=True,
                                style_cell={"fontFamily": "Lato, Arial, sans-serif", "fontSize": 13, "padding": "4px"},
                                style_header={"fontWeight": "bold", "backgroundColor": "#ecf0f1"})


def render_tab(tab: str) -> html.Div:
    """The empty frame of one tab, for ``fill`` and its callbacks to fill in the figures, cards and tables."""
    return html.Div([html.Div(id=ids.warning(tab)), _tab_body(tab)])


def _tab_body(tab: str) -> html.Div:
    if tab == "trends":
        return html.Div([html.Div(id=ids.FORECAST_NOTE), _row(_graph(ids.FORECAST_CHART, 600)),
                         _row(_graph(ids.PERIOD_COMPARISON))])
    if tab == "customers":
        return html.Div([
            html.Div(id=ids.CUSTOMER_NOTE), html.Div(id=ids.CUSTOMER_CARDS),
            _row(_graph(ids.clickable(ids.CUSTOMERS_BY_COUNTRY, "country")),
                 _graph(ids.clickable(ids.CUSTOMERS_BY_SEGMENT, "segment"))),
            _row(_graph(ids.REPEAT_RATE), _graph(ids.ORDERS_PER_CUSTOMER)),
            _row(_graph(ids.clickable(ids.ENGAGEMENT_CHART, "country"), 400)),
        ])
    if tab == "inventory":
        return html.Div([
            html.Div(id=ids.INVENTORY_NOTE),
            _row([html.H6(id=ids.STOCK_TITLE, className="ms-2 mt-1"), _graph(ids.STOCK_GAUGES, 230)]),
            _row([html.H6("Reorder alerts: series below their reorder point", className="ms-2 mt-1"),
                  _table(ids.REORDER_TABLE)]),
            _row(_graph(ids.clickable(ids.COVER_CHART, "country")),
                 _graph(ids.clickable(ids.TURNOVER_CHART, "country"))),
            _row(_graph(ids.SALES_STOCK_CHART, 400)),
        ])
    if tab == "quality":
        return html.Div([
            html.Div(id=ids.PIPELINE_CARDS),
            _row(_graph(ids.BATCH_CHART)),
            _row(_graph(ids.INGEST_CHART), _graph(ids.FRESHNESS_CHART)),
            _row(_graph(ids.QUARANTINE_CHART)),
            # Full width: each row's detail names the culprit and what was found, the widest column of the page.
            _row([html.H6("Latest rejected sales rows", className="ms-2 mt-1"), _table(ids.QUARANTINE_TABLE, 8)]),
            html.Div(id=ids.MODEL_NOTE), _row(_graph(ids.MODEL_CHART)),
        ])
    return html.Div([
        html.Div(id=ids.KPI_CARDS),
        _row(_graph(ids.clickable(ids.SEGMENT_DONUT, "segment")), _graph(ids.clickable(ids.COUNTRY_PIE, "country")),
             _graph(ids.MONTH_AREA)),
        _row(_graph(ids.clickable(ids.PRODUCT_COLUMNS, "product")),
             _graph(ids.clickable(ids.COUNTRY_TREND, "country"))),
        _row([html.H6("Top countries x products by sales (click a header to sort)", className="ms-2 mt-1"),
              _table(ids.TOP_TABLE)]),
        render_targets_frame(),
    ])


# On track: the projected month end reaches the target (salespulse/targets.py); the colours of the cards' tones.
STATUS_TONES = {"on track": "success", "at risk": "danger", "no forecast": "secondary"}


def render_targets_frame() -> html.Div:
    """The Overview's targets section, filled by dashboard/targets.py's callback: attainment cards and the table
    of every target of the month, its status cell coloured."""
    table = _table(ids.TARGET_TABLE, 15)
    table.style_cell_conditional = [{"if": {"column_id": column}, "textAlign": "left"}
                                    for column in ("country", "segment", "measure", "status")]
    table.style_data_conditional = [
        {"if": {"filter_query": f'{{status}} = "{status}"', "column_id": "status"},
         "color": "white", "backgroundColor": color, "fontWeight": "bold"}
        for status, color in (("on track", "#18bc9c"), ("at risk", "#e74c3c"))]
    return html.Div([
        html.Div(id=ids.TARGET_WARNING), html.Div(id=ids.TARGET_CARDS),
        _row([html.H6(id=ids.TARGET_TITLE, className="ms-2 mt-1"), table]),
    ], id="overview-targets")


def render_target_cards(cards: list[dict[str, Any]]) -> dbc.Row:
    """Cards from dashboard.targets.target_card_values: attainment to date, and the projected month end against
    the target, coloured by status."""
    return dbc.Row([
        dbc.Col(dbc.Card(dbc.CardBody([
            html.Div(c["label"], className="small text-muted text-uppercase"),
            html.Div(c["value"], className="fs-4 fw-bold", id={"type": "target-value", "key": c["key"]}),
            html.Div(c["detail"], className=f"small text-{STATUS_TONES[c['status']]}",
                     id={"type": "target-detail", "key": c["key"]}),
        ]), className=f"shadow-sm h-100 border-{STATUS_TONES[c['status']]}"), xs=12, md=6, className="mb-3")
        for c in cards
    ])


def render_note(text: str, color: str = "info") -> dbc.Alert:
    return dbc.Alert(text, color=color, className="py-2")
