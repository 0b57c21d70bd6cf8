"""The CSV export's formula neutralisation as a plain function: every start a spreadsheet runs as a formula."""

from __future__ import annotations

import pandas as pd

from dashboard.callbacks import spreadsheet_safe


def test_spreadsheet_safe_neutralises_line_breaks_and_full_width_signs() -> None:
    hostile = ["\n=1+2", "\r\n=cmd", "＝1+2", "＋A1", "－cmd", "＠SUM(A1)"]
    frame = pd.DataFrame({"product": [*hostile, "Velo", "a＝b"], "profit": [-1.0, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})
    safe = spreadsheet_safe(frame)
    assert list(safe["product"]) == [*("'" + h for h in hostile), "Velo", "a＝b"]
    assert list(safe["profit"]) == [-1.0, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
