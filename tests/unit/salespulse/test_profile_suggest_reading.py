"""profile suggest's reading of an export, without Spark: header, names, date formats, unknown values."""

from __future__ import annotations

from pathlib import Path

import yaml

from salespulse.profile_suggest import render_profile, suggest_profile
from salespulse.settings import IngestSettings


def export(tmp_path: Path, text: str, name: str = "pos.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_suggest_skips_preamble_and_maps_by_name(tmp_path: Path) -> None:
    path = export(tmp_path, "Shop export\nGenerated 2024-05-01;;\n"
                            "Order ID;Country;Segment;Product;Qty;Total;Date\n"
                            "A1;France;Midmarket;Velo;2;30.00;25/03/2024\nA2;Germany;Enterprise;VTT;1;125.00;02/04/2024\n")
    suggestion = suggest_profile(path)
    assert suggestion.header_line == 3 and suggestion.rows == 2
    assert suggestion.profile["columns"] == {"order_id": "Order ID", "event_time": "Date", "country": "Country",
                                             "segment": "Segment", "product": "Product", "units_sold": "Qty",
                                             "sales": "Total"}
    assert suggestion.profile["date_formats"] == ["d/M/yyyy"]  # 25/03 reads only day first
    assert suggestion.profile["constants"] == {"discount_band": "None"}


def test_suggest_calls_out_dates_that_fit_day_and_month_first(tmp_path: Path) -> None:
    path = export(tmp_path, "Order ID,Country,Segment,Product,Units Sold,Sales,Date\n"
                            "A1,USA,Midmarket,Velo,2,30,03/04/2024\nA2,USA,Midmarket,Velo,2,30,05/06/2024\n")
    suggestion = suggest_profile(path)
    assert suggestion.profile["date_formats"] == ["M/d/yyyy"]
    assert any("fit both M/d/yyyy and d/M/yyyy" in note for note in suggestion.notes)


def test_suggest_lists_unknown_category_values_and_loads_as_yaml(tmp_path: Path) -> None:
    path = export(tmp_path, "Order ID,Country,Segment,Product,Units Sold,Sales,Date\n"
                            "A1,Brasil,Midmarket,Velo,2,30,2024-01-05\nA2,U.S.,Retail,Velo,2,30,2024-01-06\n")
    suggestion = suggest_profile(path)
    assert suggestion.unknown == {"country": ["Brasil", "U.S."], "segment": ["Retail"], "product": []}
    text = render_profile(suggestion, IngestSettings().country_aliases)
    assert "unknown to SalesPulse: Brasil;" in text  # U.S. is an alias of USA
    assert '#     "Retail": ?' in text
    assert yaml.safe_load(text)["columns"]["units_sold"] == "Units Sold"
