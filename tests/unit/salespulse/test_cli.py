from __future__ import annotations

import socket

from click.testing import CliRunner

from salespulse.cli import main


def test_cli_every_command_has_help() -> None:
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0 and "simulate" in top.output and "config" in top.output
    for command in main.commands:
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0, command
        assert f"Usage: main {command}" in result.output or f"Usage: salespulse {command}" in result.output
        assert len(result.output.splitlines()) > 3


def test_cli_config_prints_effective_settings(monkeypatch) -> None:
    monkeypatch.setenv("SALESPULSE_SIMULATOR__SEED", "99")
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0
    assert "seed: 99" in result.output and "master: local[*]" in result.output


def test_cli_simulate_rejects_bad_flags(tmp_path) -> None:
    runner = CliRunner()
    negative = runner.invoke(main, ["simulate", "--out", str(tmp_path), "--history-days", "-1"])
    assert negative.exit_code == 2 and "--history-days" in negative.output
    bad_end = runner.invoke(main, ["simulate", "--out", str(tmp_path), "--history-days", "1", "--end", "soon"])
    assert bad_end.exit_code == 2 and "not an ISO date-time" in bad_end.output
    unknown = runner.invoke(main, ["simulate", "--out", "nosuchfs://x/landing"])
    assert unknown.exit_code == 2 and "cannot open nosuchfs://x/landing" in unknown.output
    # an hdfs:// landing is written through WebHDFS; a namenode that does not answer is one error line, exit 1
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = runner.invoke(main, ["simulate", "--out", "hdfs://127.0.0.1:8020/landing", "--seconds", "1"],
                         env={"SALESPULSE_HDFS__WEBHDFS_URL": f"http://127.0.0.1:{port}"})
    assert down.exit_code == 1 and "cannot land files in hdfs://127.0.0.1:8020/landing" in down.output


def test_cli_kpis_unknown_filter_value_is_one_line_exit_2(tmp_path) -> None:
    runner = CliRunner()
    for flag, value, known in (("--country", "Brazil", "USA, Canada, France, Germany, Mexico"),
                               ("--segment", "Goverment", "Government, Midmarket"),
                               ("--product", "Bike", "Carretera, Montana"), ("--band", "Huge", "None, Low")):
        result = runner.invoke(main, ["kpis", "--lake", str(tmp_path / "no-lake"), flag, value])
        assert result.exit_code == 2, (flag, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and repr(value) in lines[0] and known in lines[0], lines


def test_kpi_filter_values_follow_case_and_country_aliases() -> None:
    from salespulse.kpi_report import canonical_filter_values
    from salespulse.settings import IngestSettings

    aliases = IngestSettings().country_aliases
    assert canonical_filter_values("country", ("United States of America", " france ", "usa"), aliases) == (
        "USA", "France")
    assert canonical_filter_values("segment", ("small business",), aliases) == ("Small Business",)
    assert canonical_filter_values("discount_band", ("none",), aliases) == ("None",)


def test_cli_config_names_the_file_and_environment_variables_used(monkeypatch, tmp_path) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text("simulator:\n  rate: 7.0\n", encoding="utf-8")
    monkeypatch.setenv("SALESPULSE_SIMULATOR__SEED", "99")
    monkeypatch.setenv("SALESPULSE_PRIVACY__CUSTOMER_ID_SALT", "a-secret-salt-value")
    monkeypatch.setenv("SALESPULSE_SIMULATR__SEED", "1")
    result = CliRunner().invoke(main, ["--config", str(config), "config"])
    assert result.exit_code == 0, result.output
    header = [line for line in result.output.splitlines() if line.startswith("#")]
    assert header[0] == f"# settings file: {config} (--config)"
    assert "SALESPULSE_SIMULATOR__SEED -> simulator.seed" in header[1]
    assert "SALESPULSE_PRIVACY__CUSTOMER_ID_SALT -> privacy.customer_id_salt" in header[1]
    assert "SALESPULSE_SIMULATR__SEED" in header[2] and "no such setting" in header[2]
    assert "a-secret-salt-value" not in result.output
    assert "rate: 7.0" in result.output and "seed: 99" in result.output
