"""`salespulse simulate --push` against the real app served by a real HTTP server on a free port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from dashboard.app import create_app
from salespulse.cli import main
from salespulse.schema import SALES_EVENT
from tests.api.test_ingest_api import TOKEN, api_settings
from tests.conftest import END_MS, read_landing, run_simulator

PINNED = ["--seed", "11", "--rate", "300", "--seconds", "3", "--end", "2026-09-21T14:13:20Z"]


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(api_settings(tmp_path / "server")).server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_simulate_push_lands_the_same_rows_as_the_file_simulator(server_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", "--push", server_url, "--token", TOKEN, *PINNED])
    assert result.exit_code == 0, result.output
    pushed_sales = read_landing(tmp_path / "server" / "landing" / "sales")
    pushed_inventory = read_landing(tmp_path / "server" / "landing" / "inventory")
    assert set(pushed_sales["file"].str.slice(0, 10)) == {"api-sales-"}

    # The same run written as files (faults off, as --push does by default) must hold the same rows.
    assert END_MS == 1_790_000_000_000
    run_simulator(tmp_path / "direct", seconds=3, seed=11, rate=300, bad_rows_pct=0)
    direct_sales = read_landing(tmp_path / "direct" / "sales")
    assert pushed_sales["file"].nunique() == direct_sales["file"].nunique()

    def rows(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.drop(columns=["file", "row"])
        # The API writes numbers as Python floats ("10.0"), the simulator as Arrow does ("10"): compare values.
        typed = frame.assign(**{c.name: frame[c.name].astype(float) for c in SALES_EVENT.columns
                                if c.dtype in ("double", "money")})
        return typed.sort_values(list(typed.columns)).reset_index(drop=True)

    pd.testing.assert_frame_equal(rows(pushed_sales), rows(direct_sales), check_like=False)
    direct_inventory = read_landing(tmp_path / "direct" / "inventory")
    assert len(pushed_inventory) == len(direct_inventory) > 0


def test_simulate_push_stops_with_a_clear_error_when_refused(server_url: str, tmp_path: Path) -> None:
    wrong = CliRunner().invoke(main, ["simulate", "--push", server_url, "--token", "not-the-token-at-all", *PINNED])
    assert wrong.exit_code == 1
    assert "refused the sales batch: HTTP 401" in wrong.output

    faulty = CliRunner().invoke(main, ["simulate", "--push", server_url, "--token", TOKEN, "--bad-rows-pct", "20",
                                       *PINNED])
    assert faulty.exit_code == 1
    assert "HTTP 422" in faulty.output and "failing rows" in faulty.output
    assert not (tmp_path / "server" / "landing" / "sales").exists()

    unreachable = CliRunner().invoke(main, ["simulate", "--push", "http://127.0.0.1:9", "--token", TOKEN, *PINNED])
    assert unreachable.exit_code == 1 and "cannot reach" in unreachable.output

    no_token = CliRunner().invoke(main, ["simulate", "--push", server_url, *PINNED])
    assert no_token.exit_code == 2 and "--push needs --token" in no_token.output
