"""Pure figure builders: small aggregated frames in, Plotly figures and display values out.

Numbers stay numeric in the frames; formatting happens here, for display only (text sorts and exports wrongly). Times
arrive in UTC and are shown in the display time zone named on every time axis. Every figure carries a ``uirevision`` so
zoom and legend choices survive live refreshes (without it every refresh resets them).
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from salespulse.kpis import as_decimal, round_half_up
from salespulse.metrics import KPI_BY_KEY, compute_kpis, format_kpi
from salespulse.schema import COUNTRIES, PRODUCTS, SEGMENTS

COLORS = {  # one colour per category, the same in every chart
    **dict(zip(COUNTRIES, ("#2c3e50", "#e74c3c", "#3498db", "#f39c12", "#18bc9c"), strict=True)),
    **dict(zip(SEGMENTS, ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"), strict=True)),
    **dict(zip(PRODUCTS, ("#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8d99ae"), strict=True)),
}
MONEY = "$,.2f"
FONT = "Lato, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"


TEMPLATE = "plotly_white"
# Plotly reads a small HTML subset (<b>, <br>, <a href>) in every label, and %{...} in templates; entities show
# those characters literally. Category names come from data, so they are shown through plain_text.
_PLOTLY_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "%": "&#37;"})


@functools.cache
def _template() -> dict[str, Any]:
    return pio.templates[TEMPLATE].to_plotly_json()


Figure = go.Figure | dict[str, Any]  # what dcc.Graph's ``figure`` takes: a graph object or its plain JSON form


def plain_text(values: Any) -> Any:
    """Data strings (one, or a list/Series of them) as Plotly shows them literally. Clicks still get the raw
    names: every cross-filtering trace carries them in ``customdata``."""
    if isinstance(values, str):
        return values.translate(_PLOTLY_ENTITIES)
    return [str(v).translate(_PLOTLY_ENTITIES) for v in values]


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    """A figure as plain trace and layout dicts plus the house template: building graph objects costs 10-40 ms
    per figure (validation, and a deep copy of the template even without it), most of a filter change's budget.
    The builders that use this pass only valid properties; tests read their figures back through go.Figure."""
    return {"data": data, "layout": {**layout, "template": _template()}}


def _finish(fig: go.Figure) -> go.Figure:
    """``fig`` with the house template. Setting a template through ``update_layout`` validates all of it again
    (about 15 ms per figure, a tenth of a filter change's budget); it is valid, so attach its JSON without
    re-validation: the same figure JSON (only the key order differs)."""
    layout = {**fig._layout, "template": _template()}  # fig's own validated parts: it is ours and discarded
    return go.Figure({"data": fig._data, "layout": layout}, _validate=False)


def _base(title: str, revision: str, height: int = 340) -> dict[str, Any]:
    """Layout shared by every figure (the template is added by ``_finish``)."""
    return {"title": {"text": title, "x": 0.01, "font": {"size": 15}},
            "uirevision": revision, "height": height, "margin": {"l": 50, "r": 20, "t": 50, "b": 40},
            "font": {"family": FONT}, "legend": {"orientation": "h", "y": -0.18}, "separators": ".,",
            "modebar": {"orientation": "v"}}  # down the right edge: across the top it covers a half-width title


def empty_figure(message: str, revision: str = "empty", height: int = 340) -> Figure:
    return _figure([], {**_base("", revision, height), "xaxis": {"visible": False}, "yaxis": {"visible": False},
                        "annotations": [{"text": message, "showarrow": False,
                                         "font": {"size": 14, "color": "#7b8a8b"}}]})


def local_time(times: pd.Series, time_zone: str) -> pd.Series:
    """UTC (naive or aware) timestamps as naive wall-clock times of the display zone, for plotting."""
    series = pd.to_datetime(times)
    if series.dt.tz is None:
        series = series.dt.tz_localize("UTC")
    return series.dt.tz_convert(time_zone).dt.tz_localize(None)


def iso_text(times: pd.Series) -> pd.Series:
    """Naive timestamps as the ISO text Plotly's JSON encoder writes for them, made in one vectorised step: the
    encoder converts a Timestamp at a time (~15 µs each, 150 ms for a 90-day hourly trend by country)."""
    return pd.Series(np.datetime_as_string(times.to_numpy(), unit="s"), index=times.index)


# -- KPI cards -----------------------------------------------------------------------------------------------
CARD_KPIS = ("total_sales", "profit", "gross_margin_pct", "orders", "avg_transaction_value", "items_per_hour",
             "active_customers")
CUSTOMER_CARD_KPIS = ("active_customers", "new_customers", "returning_customers", "repeat_customer_rate",
                      "orders_per_customer")


def kpi_card_values(current: dict[str, Any], previous: dict[str, Any] | None,
                    keys: tuple[str, ...] = CARD_KPIS, compared: str = "vs previous period") -> list[dict[str, Any]]:
    """Label, formatted value and change vs the previous equal period for each KPI card. The change of a
    percentage is in points; of anything else, relative. ``compared`` names what ``previous`` covers
    (``LakeRepository.comparison``), or, without ``previous``, why there is no change to show."""
    cards = []
    for key in keys:
        label = KPI_BY_KEY[key].label
        value = current.get(key)
        before = (previous or {}).get(key)
        text = format_kpi(key, value)
        change, tone = None, "secondary"
        if _number(value) and _number(before):
            if KPI_BY_KEY[key].fmt == "percent":
                delta = (as_decimal(value) - as_decimal(before)) * 100
                change = f"{round_half_up(delta, 1):+f} pts {compared}"
            elif before:
                delta = (as_decimal(value) - as_decimal(before)) / abs(as_decimal(before))
                change = f"{round_half_up(delta * 100, 1):+f}% {compared}"
            else:
                delta = 0.0
            tone = "success" if delta > 0 else "danger" if delta < 0 else "secondary"
        fallback = compared if previous is None else "no previous period data"
        cards.append({"key": key, "label": label, "value": text, "change": change or fallback,
                      "tone": tone})
    return cards


def _number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not (isinstance(value, float | Decimal) and math.isnan(value))


# -- Overview ------------------------------------------------------------------------------------------------
def share_figure(frame: pd.DataFrame, dimension: str, title: str, revision: str, hole: float = 0.0) -> Figure:
    """Sales share per category: a pie (``hole`` > 0: a donut). Clicking a slice cross-filters."""
    if frame.empty or frame["sales"].sum() == 0:
        return empty_figure("no sales for these filters", revision)
    labels = frame[dimension].tolist()
    return _figure([{"type": "pie", "labels": plain_text(labels), "values": frame["sales"].tolist(), "hole": hole,
                     "customdata": labels, "sort": False, "marker": {"colors": [COLORS.get(v) for v in labels]},
                     "hovertemplate": "%{label}<br>$%{value:,.2f} (%{percent})<extra></extra>",
                     "texttemplate": "%{label}<br>%{percent}", "textposition": "inside"}],
                   {**_base(title, revision), "showlegend": False})


def month_area_figure(frame: pd.DataFrame, revision: str) -> Figure:
    """Sales per month (``LakeRepository.sales_by_month``). A month the data covers only partly (the month to
    date, or one the period starts inside) is labelled with its covered days and drawn as an open marker
    reached by a dotted segment, so its lower total does not read as a fall in sales."""
    if frame.empty:
        return empty_figure("no sales for these filters", revision)
    partial = (frame["hours"] < frame["month_hours"]).tolist()
    months = [f"{m:%b %Y}" + (f" · {_days(h)} of {_days(n)} days" if p else "")
              for m, h, n, p in zip(pd.to_datetime(frame["period"]), frame["hours"], frame["month_hours"], partial,
                                    strict=True)]
    sales = frame["sales"].tolist()
    whole = [v if not p else None for v, p in zip(sales, partial, strict=True)]
    # the dotted part: each partial month and its neighbours, so the segments into and out of it are dotted
    near = [any(partial[max(i - 1, 0):i + 2]) for i in range(len(sales))]
    return _figure(
        [{"type": "scatter", "x": months, "y": whole, "mode": "lines+markers", "fill": "tozeroy", "name": "whole month",
          "line": {"color": "#18bc9c"}, "connectgaps": False, "hovertemplate": "%{x}: $%{y:,.2f}<extra></extra>"},
         {"type": "scatter", "x": months, "y": [v if n else None for v, n in zip(sales, near, strict=True)],
          "mode": "lines+markers", "fill": "tozeroy", "fillcolor": "rgba(24,188,156,0.12)", "name": "partial month",
          "line": {"color": "#18bc9c", "dash": "dot"}, "connectgaps": False,
          "marker": {"symbol": ["circle-open" if p else "circle" for p in partial], "size": 10},
          "hovertemplate": "%{x} (partial month): $%{y:,.2f}<extra></extra>"}],
        {**_base("Sales by month (UTC months)", revision), "yaxis": {"tickformat": "$,.0f"},
         "showlegend": any(partial)})


def _days(hours: float) -> str:
    """Hours as days, to one decimal at most ("7", "6.6")."""
    return f"{round_half_up(hours / 24, 1).normalize():f}"


def product_columns_figure(frame: pd.DataFrame, revision: str) -> Figure:
    """Sales (left axis) and units (right axis) per product, side by side; clicking cross-filters the product."""
    if frame.empty:
        return empty_figure("no sales for these filters", revision)
    products = frame["product"].tolist()
    bar = {"type": "bar", "x": plain_text(products), "customdata": products}
    return _figure(
        [{**bar, "y": frame["sales"].tolist(), "name": "Sales", "offsetgroup": "0", "marker": {"color": "#2c3e50"},
          "hovertemplate": "%{x}: $%{y:,.2f}<extra>Sales</extra>"},
         {**bar, "y": frame["units_sold"].tolist(), "name": "Units", "offsetgroup": "1", "yaxis": "y2",
          "marker": {"color": "#18bc9c"}, "hovertemplate": "%{x}: %{y:,.1f} units<extra>Units</extra>"}],
        {**_base("Sales and units by product", revision), "barmode": "group",
         "xaxis": {"domain": [0.0, 0.94]},  # room for the right-hand axis, as make_subplots' secondary_y leaves
         "yaxis": {"title": {"text": "sales"}, "tickformat": "$,.0f"},
         "yaxis2": {"title": {"text": "units"}, "tickformat": ",.0f", "overlaying": "y", "side": "right",
                    "anchor": "x", "showgrid": False}})


def trend_by_figure(frame: pd.DataFrame, dimension: str, title: str, revision: str, time_zone: str,
                    measure: str = "sales") -> Figure:
    """One line per category over time (``period`` in UTC, shown in ``time_zone``). Periods marked ``partial``
    (the month or week to date) get an open marker and say so on hover: their smaller totals are not a fall."""
    if frame.empty:
        return empty_figure("no sales for these filters", revision)
    times = iso_text(local_time(frame["period"], time_zone))
    partial = frame["partial"] if "partial" in frame else pd.Series(False, index=frame.index)
    traces = [{"type": "scatter", "x": times[series.index].tolist(), "y": series[measure].tolist(),
               "name": plain_text(value), "mode": "lines+markers", "line": {"color": COLORS.get(value)},
               "marker": {"symbol": ["circle-open" if p else "circle" for p in partial[series.index]],
                          "size": [10 if p else 4 for p in partial[series.index]]},
               "customdata": [value] * len(series),
               "text": [" (partial period)" if p else "" for p in partial[series.index]],
               "hovertemplate": f"{plain_text(value)}: $%{{y:,.2f}}<br>%{{x}}%{{text}}<extra></extra>"}
              for value, series in frame.groupby(dimension, sort=False)]
    note = " · open markers: partial periods" if partial.any() else ""
    return _figure(traces, {**_base(f"{title} · {time_zone}{note}", revision), "yaxis": {"tickformat": "$,.0f"}})


# -- Sales trends --------------------------------------------------------------------------------------------
def forecast_figure(actuals: pd.DataFrame, forecasts: pd.DataFrame, anomalies: pd.DataFrame, revision: str,
                    time_zone: str) -> Figure:
    """Per country: hourly actual sales, the forecast p50 and its p10-p90 band, and anomaly markers."""
    countries = [c for c in COUNTRIES if c in set(actuals.get("country", [])) | set(forecasts.get("country", []))]
    if not countries:
        return empty_figure("no sales for these filters", revision)
    fig = make_subplots(rows=len(countries), cols=1, shared_xaxes=True, subplot_titles=countries,
                        vertical_spacing=0.06)
    for row, country in enumerate(countries, start=1):
        first = row == 1
        fc = forecasts[forecasts["country"] == country] if not forecasts.empty else forecasts
        if not fc.empty:
            hours = local_time(fc["hour"], time_zone)
            fig.add_scatter(x=hours, y=fc["sales_p90"], mode="lines", line={"width": 0}, showlegend=False,
                            hoverinfo="skip", row=row, col=1)
            fig.add_scatter(x=hours, y=fc["sales_p10"], mode="lines", line={"width": 0}, fill="tonexty",
                            fillcolor="rgba(52,152,219,0.2)", name="forecast p10–p90", legendgroup="band",
                            showlegend=first, hoverinfo="skip", row=row, col=1)
            fig.add_scatter(x=hours, y=fc["sales_p50"], mode="lines", line={"color": "#3498db", "dash": "dash"},
                            name="forecast p50", legendgroup="p50", showlegend=first, row=row, col=1,
                            hovertemplate="forecast p50 $%{y:,.2f}<br>%{x}<extra></extra>")
        act = actuals[actuals["country"] == country]
        fig.add_scatter(x=local_time(act["period"], time_zone), y=act["sales"], mode="lines", name="actual",
                        line={"color": "#2c3e50"}, legendgroup="actual", showlegend=first, row=row, col=1,
                        hovertemplate="actual $%{y:,.2f}<br>%{x}<extra></extra>")
        odd = anomalies[anomalies["country"] == country] if not anomalies.empty else anomalies
        if not odd.empty:
            fig.add_scatter(x=local_time(odd["hour"], time_zone), y=odd["actual"], mode="markers",
                            marker={"color": "#e74c3c", "size": 9, "symbol": "x"}, name="anomaly",
                            legendgroup="anomaly", showlegend=first, row=row, col=1,
                            customdata=odd["direction"],
                            hovertemplate="anomaly (%{customdata} band) $%{y:,.2f}<br>%{x}<extra></extra>")
    layout = _base(f"Hourly sales: actual vs forecast · {time_zone}", revision,
                   height=max(340, 190 * len(countries) + 80))
    layout["legend"] = {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"}
    fig.update_layout(**layout)
    fig.update_yaxes(tickformat="$,.0f")
    return _finish(fig)


def period_comparison_figure(current: pd.DataFrame, previous: pd.DataFrame, shift: pd.Timedelta,
                             revision: str, time_zone: str) -> Figure:
    """Sales this period vs the previous equal period, laid over the same time axis."""
    if current.empty and previous.empty:
        return empty_figure("no sales for these filters", revision)
    fig = go.Figure()
    fig.add_scatter(x=local_time(current["period"], time_zone), y=current["sales"], name="this period",
                    mode="lines+markers", line={"color": "#2c3e50"},
                    hovertemplate="$%{y:,.2f}<br>%{x}<extra>this period</extra>")
    if not previous.empty:
        fig.add_scatter(x=local_time(pd.to_datetime(previous["period"]) + shift, time_zone), y=previous["sales"],
                        name="previous period", mode="lines+markers", line={"color": "#95a5a6", "dash": "dot"},
                        hovertemplate="$%{y:,.2f}<extra>previous period</extra>")
    fig.update_layout(**_base(f"Sales: this period vs the previous one · {time_zone}", revision),
                      yaxis={"tickformat": "$,.0f"})
    return _finish(fig)


# -- Customer engagement -------------------------------------------------------------------------------------
def new_returning_figure(frame: pd.DataFrame, dimension: str, revision: str) -> Figure:
    if frame.empty:
        return empty_figure("no customer data for these filters", revision)
    returning = frame["active_customers"] - frame["new_customers"]
    fig = go.Figure()
    fig.add_bar(x=plain_text(frame[dimension]), y=frame["new_customers"], name="new", marker_color="#18bc9c",
                customdata=frame[dimension], hovertemplate="%{x}: %{y:,} new<extra></extra>")
    fig.add_bar(x=plain_text(frame[dimension]), y=returning, name="returning", marker_color="#2c3e50",
                customdata=frame[dimension], hovertemplate="%{x}: %{y:,} returning<extra></extra>")
    fig.update_layout(**_base(f"Active customers by {dimension}: new vs returning", revision), barmode="stack",
                      yaxis={"tickformat": ",d"})
    return _finish(fig)


def customer_ratio_figure(by_country: pd.DataFrame, by_segment: pd.DataFrame, measure: str, title: str,
                          revision: str) -> Figure:
    """A customer ratio KPI (``repeat_customer_rate`` or ``orders_per_customer``) per country and per segment."""
    if by_country.empty and by_segment.empty:
        return empty_figure("no customer data for these filters", revision)
    percent = KPI_BY_KEY[measure].fmt == "percent"
    fig = go.Figure()
    for frame, dimension, color in ((by_country, "country", "#3498db"), (by_segment, "segment", "#f39c12")):
        fig.add_bar(x=plain_text(frame[dimension]), y=frame[measure], name=f"by {dimension}", marker_color=color,
                    customdata=frame[dimension],
                    hovertemplate="%{x}: " + ("%{y:.1%}" if percent else "%{y:.2f}") + "<extra></extra>")
    fig.update_layout(**_base(title, revision), yaxis={"tickformat": ".0%" if percent else ".2f"})
    return _finish(fig)


CUSTOMER_KPIS = ("returning_customers", "repeat_customer_rate", "orders_per_customer")


def with_customer_kpis(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds the customer KPIs derived from a frame of customer counts (returning customers, repeat-customer rate,
    orders per customer), from its summed numerators and denominators."""
    return frame.assign(**compute_kpis(frame, CUSTOMER_KPIS))


def engagement_figure(frame: pd.DataFrame, revision: str) -> Figure:
    """Per country (``LakeRepository.engagement_by_country``): active customers against sales, the bubble's area
    the stock on hand now. Clicking a bubble cross-filters its country."""
    if frame.empty or not frame["active_customers"].any():
        return empty_figure("no customer data for these filters", revision)
    countries = frame["country"].tolist()
    stock = frame["stock_on_hand"].clip(lower=0).fillna(0.0)
    top = float(stock.max()) or 1.0
    return _figure(
        [{"type": "scatter", "mode": "markers+text", "x": frame["active_customers"].tolist(),
          "y": frame["sales"].tolist(), "text": plain_text(countries), "textposition": "top center",
          "customdata": [[c, None if pd.isna(u) else u] for c, u in zip(countries, frame["stock_on_hand"],
                                                                        strict=True)],
          "marker": {"size": stock.tolist(), "sizemode": "area", "sizeref": 2.0 * top / 60**2, "sizemin": 6,
                     "color": [COLORS.get(c, "#3498db") for c in countries], "opacity": 0.75,
                     "line": {"color": "#2c3e50", "width": 1}},
          "hovertemplate": "%{text}<br>%{x:,} active customers<br>$%{y:,.2f} sales"
                           "<br>%{customdata[1]:,.0f} units in stock<extra></extra>"}],
        {**_base("Customer engagement vs sales by country (bubble: stock on hand)", revision), "showlegend": False,
         "xaxis": {"title": {"text": "active customers"}, "tickformat": ",d", "rangemode": "tozero"},
         "yaxis": {"title": {"text": "sales"}, "tickformat": "$.3~s", "rangemode": "tozero"}})


def sales_stock_figure(sales: pd.DataFrame, stock: pd.DataFrame, revision: str) -> Figure:
    """Per country over UTC days: sales (solid, left axis) and stock on hand at each day's end (dotted, right
    axis, ``LakeRepository.stock_over_time``), in the country's colour."""
    if sales.empty and stock.empty:
        return empty_figure("no sales or stock for these filters", revision)
    traces = []
    for frame, measure, axis, dash, what in ((sales, "sales", "y", "solid", "sales"),
                                             (stock, "stock_on_hand", "y2", "dot", "stock")):
        for country, series in frame.groupby("country", sort=True):
            days = pd.to_datetime(series["period"]).dt.strftime("%Y-%m-%d").tolist()
            value = "$%{y:,.2f}" if what == "sales" else "%{y:,.0f} units"
            traces.append({"type": "scatter", "mode": "lines+markers", "x": days, "y": series[measure].tolist(),
                           "yaxis": axis, "name": f"{plain_text(country)} {what}", "legendgroup": plain_text(country),
                           "line": {"color": COLORS.get(country), "dash": dash}, "marker": {"size": 4},
                           "hovertemplate": f"{plain_text(country)} {what}: {value}<br>%{{x}}<extra></extra>"})
    return _figure(traces, {
        **_base("Sales and stock on hand by country (UTC days; stock at each day's end)", revision, height=400),
        "xaxis": {"domain": [0.0, 0.92], "type": "date"},
        "yaxis": {"title": {"text": "sales per day"}, "tickformat": "$.3~s", "rangemode": "tozero"},
        "yaxis2": {"title": {"text": "stock (units)"}, "tickformat": ".3~s", "overlaying": "y", "side": "right",
                   "anchor": "x", "showgrid": False, "rangemode": "tozero"}})


# -- Inventory -----------------------------------------------------------------------------------------------
def stock_gauges_figure(stock: pd.DataFrame, by: str, revision: str) -> Figure:
    """One gauge per ``by`` (country, or product on drill-down): stock on hand against the reorder point
    (summed over the series). Red below the reorder point, amber within 1.5x, green above."""
    if stock.empty:
        return empty_figure("no stock snapshot yet (inventory events not loaded)", revision, height=260)
    totals = stock.groupby(by, sort=False)[["stock_on_hand", "reorder_point"]].sum().reset_index()
    columns = min(len(totals), 6)
    rows = math.ceil(len(totals) / columns)
    fig = make_subplots(rows=rows, cols=columns, specs=[[{"type": "indicator"}] * columns] * rows)
    for i, item in totals.iterrows():
        stock_units, reorder = float(item["stock_on_hand"]), float(item["reorder_point"])
        top = max(reorder * 3, stock_units * 1.1, 1.0)
        color = "#e74c3c" if stock_units < reorder else "#f39c12" if stock_units < reorder * 1.5 else "#18bc9c"
        fig.add_trace(go.Indicator(
            mode="gauge+number", value=stock_units, title={"text": plain_text(str(item[by])), "font": {"size": 14}},
            number={"valueformat": ",.0f", "suffix": " u", "font": {"size": 22}},
            # short SI ticks (160k, 1.2M): full numbers overflow a small gauge and are cut at its edges
            gauge={"axis": {"range": [0, top], "tickformat": ".3~s", "nticks": 5, "tickfont": {"size": 10}},
                   "bar": {"color": color},
                   "steps": [{"range": [0, reorder], "color": "#fbe3e1"}],
                   "threshold": {"line": {"color": "#2c3e50", "width": 3}, "value": reorder}}),
            row=i // columns + 1, col=i % columns + 1)
    fig.update_layout(**{**_base("", revision, height=230 * rows), "margin": {"l": 40, "r": 40, "t": 40, "b": 10}})
    return _finish(fig)


def cover_figure(stock: pd.DataFrame, by: str, revision: str) -> Figure:
    """Days of cover per ``by``: summed stock / summed average daily units (trailing 7 days)."""
    if stock.empty:
        return empty_figure("no stock snapshot yet", revision)
    cover = KPI_BY_KEY["days_of_cover"]
    totals = stock.groupby(by, sort=False)[list(cover.inputs)].sum().reset_index()
    days = cover.evaluate(totals)
    fig = go.Figure(go.Bar(x=plain_text(totals[by]), y=days,
                           marker_color=[COLORS.get(v, "#3498db") for v in totals[by]],
                           customdata=totals[by], hovertemplate="%{x}: %{y:,.1f} days<extra></extra>"))
    fig.update_layout(**_base("Days of cover (stock / average daily units, 7 days)", revision),
                      yaxis={"title": {"text": "days"}})
    return _finish(fig)


def turnover_figure(stock: pd.DataFrame, by: str, revision: str) -> Figure:
    """Inventory turnover per ``by`` over the period: COGS / inventory value (the current snapshot's value
    stands in for the average, as the lake keeps one snapshot)."""
    if stock.empty:
        return empty_figure("no stock snapshot yet", revision)
    kpi = KPI_BY_KEY["inventory_turnover"]
    totals = stock.groupby(by, sort=False)[list(kpi.inputs)].sum().reset_index()
    turnover = kpi.evaluate(totals)
    fig = go.Figure(go.Bar(x=plain_text(totals[by]), y=turnover, marker_color="#2c3e50", customdata=totals[by],
                           hovertemplate="%{x}: %{y:,.2f}×<extra></extra>"))
    fig.update_layout(**_base("Inventory turnover in the period (COGS / inventory value)", revision),
                      yaxis={"title": {"text": "×"}})
    return _finish(fig)


# -- Data quality & pipeline ---------------------------------------------------------------------------------
GRAIN_SPANS = {"minute": pd.Timedelta(minutes=1), "hour": pd.Timedelta(hours=1), "day": pd.Timedelta(days=1),
               "week": pd.Timedelta(days=7), "month": pd.Timedelta(days=31)}


def time_axis(times: pd.Series, span: pd.Timedelta) -> dict[str, Any]:
    """An x axis over ``times`` at least ``span`` wide on each side of a lone point: Plotly autoranges a single
    time (or several within a millisecond) into millisecond ticks."""
    if times.empty or times.max() - times.min() >= span:
        return {}
    return {"range": [iso_text(pd.Series([times.min() - span]))[0], iso_text(pd.Series([times.max() + span]))[0]]}


def ingest_figure(frame: pd.DataFrame, revision: str, time_zone: str, grain: str = "hour") -> Figure:
    if frame.empty:
        return empty_figure("no rows loaded in this period", revision)
    x = local_time(frame["period"], time_zone)
    # a bar as wide as its period (a lone bar would otherwise be a millisecond wide)
    fig = go.Figure(go.Bar(x=x, y=frame["rows"], marker_color="#3498db", **_period_bars(grain),
                           hovertemplate="%{y:,} rows<br>%{x}<extra></extra>"))
    fig.update_layout(**_base(f"Sales rows loaded per ingest period · {time_zone}", revision),
                      yaxis={"tickformat": ",d"}, xaxis=time_axis(x, GRAIN_SPANS[grain]))
    return _finish(fig)


def _period_bars(grain: str) -> dict[str, Any]:
    """Bars over the ``grain`` period they count, 80 % of it wide (milliseconds on a time axis): by default a lone
    bar is a millisecond wide and every bar is centred on its period's start."""
    span = GRAIN_SPANS[grain].total_seconds() * 1000
    return {"width": span * 0.8, "xperiod": "M1" if grain == "month" else span, "xperiodalignment": "middle"}


def freshness_figure(frame: pd.DataFrame, revision: str, time_zone: str, grain: str = "hour") -> Figure:
    """Lag from event to load over time (p50, p95): how fresh the lake was at each load."""
    if frame.empty:
        return empty_figure("no rows loaded in this period", revision)
    fig = go.Figure()
    x = local_time(frame["period"], time_zone)
    fig.update_layout(xaxis=time_axis(x, GRAIN_SPANS[grain]))
    for column, name, color in (("lag_p50_s", "p50", "#18bc9c"), ("lag_p95_s", "p95", "#e74c3c")):
        fig.add_scatter(x=x, y=frame[column] / 60, name=f"lag {name}", mode="lines+markers",
                        line={"color": color}, hovertemplate="%{y:,.1f} min<br>%{x}<extra>" + name + "</extra>")
    fig.update_layout(**_base(f"Freshness: event-to-load lag · {time_zone}", revision),
                      yaxis={"title": {"text": "minutes"}})
    return _finish(fig)


def batch_history_figure(history: list[dict[str, Any]], revision: str, time_zone: str) -> Figure:
    """The stream's recent sales batches (the status file's history): duration and freshness in seconds, and
    the ingest rate in rows/s on the right-hand axis."""
    batches = pd.DataFrame([b for b in history if b.get("event") == "sales"],
                           columns=["time", "rows", "seconds", "freshness_seconds"])
    if batches.empty:
        return empty_figure("no stream batches yet (the history fills as `salespulse stream` runs)", revision)
    times = local_time(batches["time"], time_zone)
    rate = batches["rows"] / batches["seconds"].where(batches["seconds"] > 0)
    axis = time_axis(times, GRAIN_SPANS["minute"])
    line = {"type": "scatter", "x": times, "mode": "lines+markers"}
    return _figure(
        [{**line, "y": batches["seconds"], "name": "batch duration (s)", "line": {"color": "#2c3e50"},
          "hovertemplate": "%{y:,.2f} s<br>%{x}<extra>duration</extra>"},
         {**line, "y": batches["freshness_seconds"], "name": "freshness (s)", "line": {"color": "#e74c3c"},
          "hovertemplate": "%{y:,.1f} s<br>%{x}<extra>freshness</extra>"},
         {**line, "y": rate, "name": "ingest rate (rows/s)", "yaxis": "y2", "line": {"color": "#18bc9c", "dash": "dot"},
          "hovertemplate": "%{y:,.0f} rows/s<br>%{x}<extra>ingest rate</extra>"}],
        {**_base(f"Stream batches: duration, freshness and ingest rate · {time_zone}", revision),
         "xaxis": {"domain": [0.0, 0.94], **axis}, "yaxis": {"title": {"text": "seconds"}},
         "yaxis2": {"title": {"text": "rows/s"}, "overlaying": "y", "side": "right", "anchor": "x",
                    "showgrid": False, "tickformat": ",.0f"}})


def quarantine_figure(frame: pd.DataFrame, revision: str, time_zone: str, grain: str = "hour") -> Figure:
    if frame.empty:
        return empty_figure("no quarantined rows", revision)
    fig = go.Figure()
    for reason, series in frame.groupby("reason"):
        fig.add_bar(x=local_time(series["period"], time_zone), y=series["rows"], name=reason,
                    **_period_bars(grain), hovertemplate=f"{reason}: %{{y:,}}<br>%{{x}}<extra></extra>")
    fig.update_layout(**_base(f"Quarantined rows by reason · {time_zone}", revision), barmode="stack",
                      yaxis={"tickformat": ",d"}, xaxis=time_axis(local_time(frame["period"], time_zone),
                                                                 GRAIN_SPANS[grain]))
    return _finish(fig)


def model_metrics_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """Long frame (measure, method, metric, value) from a registry metrics.json ``overall`` section."""
    rows = [{"measure": measure, "method": method, "metric": metric, "value": value}
            for method, by_measure in metrics.get("overall", {}).items()
            for measure, values in by_measure.items()
            for metric, value in values.items() if isinstance(value, int | float)]
    return pd.DataFrame(rows, columns=["measure", "method", "metric", "value"])


def model_metrics_figure(frame: pd.DataFrame, revision: str) -> Figure:
    """MAE and sMAPE of the model vs the baselines (and the oracle, for a simulated history), per measure
    (lower is better)."""
    shown = frame[frame["metric"].isin(["mae", "smape"])]
    if shown.empty:
        return empty_figure("no model metrics", revision)
    panels = sorted(set(zip(shown["measure"], shown["metric"], strict=True)))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[f"{m} {k.upper()}" for m, k in panels])
    colors = {"model": "#18bc9c", "seasonal_naive": "#95a5a6", "linear_regression": "#f39c12",
              "gradient_boosting": "#e74c3c", "oracle": "#2c3e50"}
    for col, (measure, metric) in enumerate(panels, start=1):
        part = shown[(shown["measure"] == measure) & (shown["metric"] == metric)]
        fig.add_bar(x=part["method"], y=part["value"], marker_color=[colors.get(m, "#3498db") for m in part["method"]],
                    showlegend=False, hovertemplate="%{x}: %{y:,.3f}<extra></extra>", row=1, col=col)
    fig.update_layout(**_base("Forecast error: model vs baselines (lower is better)", revision))
    return _finish(fig)
