"""`salespulse targets load|set|list` refuse bad input before touching the lake: one clear message naming the
flag, file line or value, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from salespulse.cli import main
from salespulse.targets import MAX_FILE_BYTES, MAX_ROWS

HEADER = "month,country,segment,sales_target,profit_target\n"
GOOD = ["--country", "France", "--month", "2026-12", "--sales", "1200000", "--profit", "200000"]


def run(args: list[str], lake: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [*args, "--lake", str(lake)])
    return result.exit_code, result.output


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--country", "Brazil", "unknown country 'Brazil'; known: USA, Canada, France, Germany, Mexico"),
    ("--month", "2026-13", "month '2026-13' is not YYYY-MM"),
    ("--month", "Dec 2026", "month 'Dec 2026' is not YYYY-MM"),
    ("--sales", "-5", "sales_target '-5' is negative"),
    ("--sales", "$1,200,000", "sales_target '$1,200,000' is not an amount"),
    ("--profit", "1.23456", "profit_target '1.23456' has more than 4 decimal places"),
    ("--profit", "1e6", "profit_target '1e6' is not an amount"),
    ("--sales", "100000000000000", "too large"),
    ("--segment", "Goverment", "unknown segment 'Goverment'; known: Government"),
])
def test_targets_set_rejects_bad_values_with_exit_2(tmp_path: Path, flag: str, value: str, says: str) -> None:
    args = list(GOOD)
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    code, output = run(["targets", "set", *args], tmp_path / "lake")
    assert code == 2, output
    assert says in output
    assert not (tmp_path / "lake").exists()  # nothing written


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("body", "says"), [
    (HEADER + "2026-12,France,,100,10\n2026-12,Germany,,100,10\n2026-12,france, ,5,1\n",
     "line 4: repeats the target of line 2 (2026-12, France, whole country)"),
    # an alias is the same country: US is USA
    (HEADER + "2026-12,USA,Enterprise,100,10\n2026-12,US,enterprise,5,1\n",
     "line 3: repeats the target of line 2 (2026-12, USA, Enterprise)"),
    (HEADER + "2026-12,Brazil,,100,10\n", "line 2: unknown country 'Brazil'; known: USA, Canada, France"),
    (HEADER + "2026/12,France,,100,10\n", "line 2: month '2026/12' is not YYYY-MM"),
    (HEADER + "2026-12,France,,-100,10\n", "line 2: sales_target '-100' is negative"),
    (HEADER + "2026-12,France,,100\n", "line 2: 4 fields, the header names 5"),
    ("month,country,sales,profit\n2026-12,France,1,1\n", "missing: sales_target, profit_target; unknown: sales"),
    (HEADER, "no targets below the header"),
    ("", "empty; expected the header"),
])
def test_targets_load_rejects_bad_files_naming_the_line(tmp_path: Path, body: str, says: str) -> None:
    code, output = run(["targets", "load", str(write(tmp_path / "plan.csv", body))], tmp_path / "lake")
    assert code == 2, output
    assert says in output and "plan.csv" in output
    assert not (tmp_path / "lake").exists()


def test_targets_load_lists_every_bad_line_at_once(tmp_path: Path) -> None:
    body = HEADER + "2026-12,Brazil,,1,1\n2026-12,France,,1,1\n2026-99,France,,1,1\n2026-12,France,,x,1\n"
    code, output = run(["targets", "load", str(write(tmp_path / "plan.csv", body))], tmp_path / "lake")
    assert code == 2
    assert "3 bad lines, nothing loaded" in output
    assert all(f"line {n}:" in output for n in (2, 4, 5))


def test_targets_load_bounds_file_size_and_rows(tmp_path: Path) -> None:
    huge = write(tmp_path / "huge.csv", HEADER + "#" * MAX_FILE_BYTES)
    code, output = run(["targets", "load", str(huge)], tmp_path / "lake")
    assert code == 2 and f"at most {MAX_FILE_BYTES:,}" in output
    months = [f"{year}-{month:02d}" for year in range(2000, 2400) for month in range(1, 13)]
    rows = [f"{m},{c},,1,1\n" for m in months for c in ("USA", "Canada", "France")][:MAX_ROWS + 1]
    many = write(tmp_path / "many.csv", HEADER + "".join(rows))
    assert many.stat().st_size < MAX_FILE_BYTES
    code, output = run(["targets", "load", str(many)], tmp_path / "lake")
    assert code == 2 and f"more than {MAX_ROWS:,} targets" in output


def test_targets_list_rejects_bad_filters_and_load_needs_a_lake(tmp_path: Path) -> None:
    code, output = run(["targets", "list", "--month", "12-2026"], tmp_path / "lake")
    assert code == 2 and "month '12-2026' is not YYYY-MM" in output
    code, output = run(["targets", "list", "--country", "Atlantis"], tmp_path / "lake")
    assert code == 2 and "unknown country 'Atlantis'" in output
    # valid targets but no lake there: said plainly, nothing created
    code, output = run(["targets", "set", *GOOD], tmp_path / "lake")
    assert code == 1 and "no lake at" in output
    assert not (tmp_path / "lake").exists()
