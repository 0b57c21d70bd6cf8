"""Every component id of the dashboard, in one place (layout and callbacks import them from here)."""

URL = "url"
REFRESH = "refresh-interval"
DATA_VERSION = "data-version"  # dcc.Store: the lake's data version, changes only when a writer publishes
FILTERS = "filters-store"  # dcc.Store: the applied filters as a URL query string

HEADER_FRESHNESS = "header-freshness"
HEADER_MODEL = "header-model"
ACCOUNT = "header-account"
LOGOUT = "logout-form"
ALERT_COUNT = "header-alert-count"  # badge: how many alerts fire now (for the viewer's countries)
ALERT_MENU = "header-alert-menu"  # dropdown listing them

PRESET = "filter-preset"
DATES = "filter-dates"
COUNTRY = "filter-country"
SEGMENT = "filter-segment"
PRODUCT = "filter-product"
BAND = "filter-band"
GRAIN = "filter-grain"
RESET = "filter-reset"
PERIOD_LABEL = "filter-period-label"
FILTER_TOGGLE = "filter-toggle"  # on small screens: shows and hides the filters
FILTER_COLLAPSE = "filter-collapse"

TABS = "tabs"
TAB_CONTENT = "tab-content"
EXPORT_BUTTON = "export-button"
EXPORT_DOWNLOAD = "export-download"
EXPORT_NOTE = "export-note"  # beside the export button: why a download did not come or is partial

# Overview
KPI_CARDS = "overview-kpis"
SEGMENT_DONUT = "overview-segment-donut"
COUNTRY_PIE = "overview-country-pie"
MONTH_AREA = "overview-month-area"
PRODUCT_COLUMNS = "overview-product-columns"
COUNTRY_TREND = "overview-country-trend"
TOP_TABLE = "overview-top-table"
# Overview: targets (dashboard/targets.py)
TARGET_CARDS = "overview-target-cards"
TARGET_TITLE = "overview-target-title"
TARGET_TABLE = "overview-target-table"
TARGET_WARNING = "targets-read-warning"
# Sales trends
FORECAST_CHART = "trends-forecast"
FORECAST_NOTE = "trends-note"
PERIOD_COMPARISON = "trends-period-comparison"
# Customer engagement
CUSTOMER_CARDS = "customers-kpis"
CUSTOMERS_BY_COUNTRY = "customers-by-country"
CUSTOMERS_BY_SEGMENT = "customers-by-segment"
REPEAT_RATE = "customers-repeat-rate"
ORDERS_PER_CUSTOMER = "customers-orders-per-customer"
CUSTOMER_NOTE = "customers-note"
ENGAGEMENT_CHART = "customers-engagement-vs-sales"
# Inventory
STOCK_GAUGES = "inventory-gauges"
STOCK_TITLE = "inventory-gauges-title"
REORDER_TABLE = "inventory-reorder-table"
COVER_CHART = "inventory-cover"
TURNOVER_CHART = "inventory-turnover"
INVENTORY_NOTE = "inventory-note"
SALES_STOCK_CHART = "inventory-sales-stock"
# Data quality & pipeline
PIPELINE_CARDS = "quality-pipeline-cards"
INGEST_CHART = "quality-ingest"
FRESHNESS_CHART = "quality-freshness"
BATCH_CHART = "quality-batches"
QUARANTINE_CHART = "quality-quarantine"
QUARANTINE_TABLE = "quality-quarantine-sample"
MODEL_CHART = "quality-model-metrics"
MODEL_NOTE = "quality-model-note"


def warning(tab: str) -> str:
    """The read-failure warning of one tab (each tab callback owns its own)."""
    return f"{tab}-read-warning"


def clickable(name: str, dimension: str) -> dict[str, str]:
    """Id of a chart whose clicks cross-filter ``dimension`` (country, segment or product)."""
    return {"type": "crossfilter", "chart": name, "dimension": dimension}
