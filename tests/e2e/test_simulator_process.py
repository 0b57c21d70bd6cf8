"""The simulator as a real process: a concurrent reader never sees a partial file, and Ctrl-C / SIGTERM
stop it cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from salespulse.schema import INVENTORY_EVENT, SALES_EVENT

pytestmark = pytest.mark.slow


def start(out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "salespulse", "simulate", "--out", str(out), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def read_strict(path: Path, expected_header: tuple[str, ...]) -> int:
    """Parse a whole file; raises on a truncated or malformed CSV. Returns its row count."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n"), f"{path.name} does not end with a newline: partial?"
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types=dict.fromkeys(expected_header, "string")))
    assert tuple(table.column_names) == expected_header
    return table.num_rows


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_simulator_reader_never_sees_partial_files(tmp_path: Path, stop_signal: signal.Signals) -> None:
    # High rate and a short interval make files big and frequent, so a non-atomic writer would be caught.
    proc = start(tmp_path, "--rate", "20000", "--interval", "0.1", "--bad-rows-pct", "1")
    seen: dict[Path, int] = {}
    headers = {"sales": SALES_EVENT.names, "inventory": INVENTORY_EVENT.names}
    deadline = time.monotonic() + 120  # the watch ends once 20 sales files were read, however busy the machine
    try:
        while sum(1 for p in seen if p.parent.name == "sales") < 20 and time.monotonic() < deadline:
            for kind, header in headers.items():
                for path in (tmp_path / kind).glob("*") if (tmp_path / kind).exists() else ():
                    assert path.suffix == ".csv", f"unexpected file in the landing folder: {path.name}"
                    if path not in seen:
                        seen[path] = read_strict(path, header)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.send_signal(stop_signal)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert f"{stop_signal.name} received" in stderr
    assert sum(1 for p in seen if p.parent.name == "sales") >= 20
    # Big files, so a partial write would show. The live rate follows the hour of day: at the weekly trough
    # (about 0.2 of the mean rate) 20 files of 0.1 s still hold ~8,000 rows; the old bound of 20,000 failed
    # around 04:00 UTC.
    assert sum(seen.values()) > 5_000
    # After the stop: nothing half-written anywhere, and every landed file still parses.
    assert not list((tmp_path / ".staging").iterdir())
    for kind, header in headers.items():
        for path in (tmp_path / kind).glob("*.csv"):
            read_strict(path, header)
    summary = re.search(r"live stopped after .*?: ([\d,]+) sales rows", stdout)
    assert summary, stdout
    landed = sum(read_strict(p, SALES_EVENT.names) for p in (tmp_path / "sales").glob("*.csv"))
    assert int(summary.group(1).replace(",", "")) == landed


def test_simulator_history_cli_prints_rows_and_rate(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "salespulse", "simulate", "--out", str(tmp_path), "--history-days", "3",
         "--history-rate", "0.5", "--end", "2026-11-01T00:00:00Z", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"history done in [\d.]+ s: ([\d,]+) sales rows \(([\d,]+) rows/s\)", result.stdout)
    assert match, result.stdout
    files = sorted((tmp_path / "history" / "sales").glob("*.csv"))
    assert len(files) == 3
    assert int(match.group(1).replace(",", "")) == sum(read_strict(f, SALES_EVENT.names) for f in files)
    assert int(match.group(2).replace(",", "")) > 0
    assert not (tmp_path / "sales").exists()  # history only: no live run without --seconds

