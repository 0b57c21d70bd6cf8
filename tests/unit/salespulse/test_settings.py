from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from salespulse.settings import DEFAULT_CONFIG, Settings, SettingsError, load_settings


def write_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_settings_default_file_is_the_embedded_default() -> None:
    settings = load_settings()
    assert settings.spark.master == "local[*]"
    assert settings.paths.landing == "data/landing"
    assert settings.paths.lake == "data/lake"
    assert settings.spark.session_time_zone == "UTC"


def test_settings_cluster_example_is_valid() -> None:
    settings = load_settings(DEFAULT_CONFIG.parent / "cluster.yaml")
    assert settings.spark.master.startswith("spark://")
    assert all(getattr(settings.paths, name).startswith("hdfs://") for name in ("landing", "lake", "checkpoints"))


def test_settings_precedence_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_yaml(tmp_path, "simulator:\n  rate: 5\n  seed: 3\n  late_pct: 2.5\n")
    assert load_settings(config).simulator.rate == 5

    monkeypatch.setenv("SALESPULSE_SIMULATOR__RATE", "7")
    from_env = load_settings(config)
    assert from_env.simulator.rate == 7
    assert from_env.simulator.seed == 3  # untouched keys keep the file's value

    from_flag = load_settings(config, {"simulator.rate": 9, "simulator.seed": None})
    assert from_flag.simulator.rate == 9
    assert from_flag.simulator.seed == 3  # an unset flag (None) does not mask the file
    assert from_flag.simulator.late_pct == 2.5


def test_settings_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_CONFIG", str(write_yaml(tmp_path, "spark:\n  shuffle_partitions: 3\n")))
    assert load_settings().spark.shuffle_partitions == 3


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("simulator:\n  rate: -1\n", "invalid setting simulator.rate: Input should be greater than 0 (got -1)"),
        ("simulatr:\n  rate: 1\n", "invalid setting simulatr: unknown key"),
        ("spark:\n  masterr: local\n", "invalid setting spark.masterr: unknown key"),
        ("spark:\n  session_time_zone: Europe/Paris\n",
         "invalid setting spark.session_time_zone: Input should be 'UTC'"),
        ("spark:\n  master: mesos://x\n", "invalid setting spark.master: must be local[N], local[*], spark://"),
        ("simulator:\n  country_weights: {USA: 1}\n", "invalid setting simulator.country_weights: needs a positive"),
    ],
)
def test_settings_bad_value_names_the_key(tmp_path: Path, yaml_text: str, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(write_yaml(tmp_path, yaml_text))
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_settings_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_SPARK__SHUFFLE_PARTITIONS", "many")
    with pytest.raises(SettingsError, match=r"spark\.shuffle_partitions.*SALESPULSE_SPARK__SHUFFLE_PARTITIONS"):
        load_settings()


def test_settings_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_settings(write_yaml(tmp_path, "spark: [unclosed\n"))
    with pytest.raises(SettingsError, match="must hold a mapping"):
        load_settings(write_yaml(tmp_path, "- a\n- b\n"))


def test_settings_object_is_plain_frozen_and_picklable(tmp_path: Path) -> None:
    settings = load_settings(write_yaml(tmp_path, "simulator:\n  seed: 11\n"))
    assert type(settings) is Settings
    assert pickle.loads(pickle.dumps(settings)) == settings
    with pytest.raises(Exception, match="frozen"):
        settings.simulator.seed = 12  # type: ignore[misc]


def test_cli_bad_config_value_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, "simulator:\n  bad_rows_pct: 150\n")
    result = subprocess.run(
        [sys.executable, "-m", "salespulse", "--config", str(config), "simulate", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "simulator.bad_rows_pct" in lines[0] and "less than or equal to 100" in lines[0]
    assert not (tmp_path / "o").exists()
