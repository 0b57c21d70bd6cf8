"""The one typed settings object: YAML file < environment (``SALESPULSE_*``) < CLI flags.

Built once by an entry point with :func:`load_settings` and passed down as the sub-object a function needs.
Every model forbids unknown keys, so a typo fails at start with the key's name instead of being ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from salespulse.schema import COUNTRIES

ENV_PREFIX = "SALESPULSE_"
CONFIG_ENV_VAR = "SALESPULSE_CONFIG"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "conf" / "default.yaml"


class SettingsError(ValueError):
    """A configuration problem, with a one-line message naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathSettings(_Section):
    """Where data lives: local folders or ``hdfs://`` URIs (the simulator writes local folders only)."""

    landing: str = "data/landing"
    lake: str = "data/lake"
    checkpoints: str = "data/checkpoints"
    archive: str = "data/archive"  # landed files the stream has processed, when stream.processed_files=archive
    models: str = "data/models"

    @field_validator("*")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a folder path or URI, not empty")
        return value.strip()


class SparkSettings(_Section):
    master: str = "local[*]"
    app_name: str = "salespulse"
    # Fixed into streaming checkpoints on first run (PITFALLS 13): keep it small and stable.
    shuffle_partitions: int = Field(default=4, ge=1, le=2000)
    session_time_zone: Literal["UTC"] = "UTC"
    ui_enabled: bool = False
    driver_memory: str = "2g"
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "ERROR"
    extra_conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("master")
    @classmethod
    def _known_master(cls, value: str) -> str:
        if not value.startswith(("local", "spark://", "yarn", "k8s://")):
            raise ValueError("must be local[N], local[*], spark://HOST:PORT, yarn or k8s://...")
        return value


class SimulatorSettings(_Section):
    """Synthetic events grounded in the Financial Sample; see docs/simulator.md for the model."""

    rate: float = Field(default=20.0, gt=0, le=1_000_000, description="live sales events per second (weekly mean)")
    history_rate: float = Field(default=1.0, gt=0, le=10_000, description="history sales events per second")
    file_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    seed: int = Field(default=42, ge=0)
    bad_rows_pct: float = Field(default=0.5, ge=0, le=100)
    duplicate_pct: float = Field(default=0.5, ge=0, le=100)
    late_pct: float = Field(default=1.0, ge=0, le=100)
    customers_per_country: int = Field(default=20_000, ge=1)
    status_every_seconds: float = Field(default=10.0, gt=0)
    country_weights: dict[str, float] = Field(
        default_factory=lambda: {"USA": 0.32, "Germany": 0.2, "France": 0.18, "Canada": 0.17, "Mexico": 0.13}
    )

    @field_validator("country_weights")
    @classmethod
    def _all_countries(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(COUNTRIES))
        missing = sorted(set(COUNTRIES) - set(value))
        if unknown or missing or any(w <= 0 for w in value.values()):
            raise ValueError(
                f"needs a positive weight for each of {', '.join(COUNTRIES)}"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
        return value


class IngestSettings(_Section):
    """Validation rules shared by backfill and stream; profiles may tighten or relax some per source."""

    # Case-insensitive spellings mapped onto the canonical country names (PITFALLS 1).
    country_aliases: dict[str, str] = Field(
        default_factory=lambda: {
            "US": "USA", "U.S.": "USA", "U.S.A.": "USA", "United States": "USA",
            "United States of America": "USA", "Deutschland": "Germany", "México": "Mexico",
        }
    )
    category_policy: Literal["reject", "flag"] = "reject"
    amount_tolerance: float = Field(default=0.01, ge=0, description="currency units")
    future_tolerance_hours: float = Field(default=24.0, ge=0)

    @field_validator("country_aliases")
    @classmethod
    def _aliases_to_countries(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = sorted({target for target in value.values() if target not in COUNTRIES})
        if wrong:
            raise ValueError(f"aliases must map onto {', '.join(COUNTRIES)}; not a country: {', '.join(wrong)}")
        return value


class StreamSettings(_Section):
    """The streaming job; docs/operations.md explains each knob."""

    trigger_seconds: float = Field(default=1.0, gt=0, le=3600)
    max_files_per_trigger: int = Field(default=200, ge=1, description="bounds a batch after downtime (PITFALLS 10)")
    processed_files: Literal["archive", "delete", "keep"] = "archive"
    # Events that happened more than this before their file landed are quarantined as late_event. Also the
    # dedupe window: an order id is checked against silver events inside it.
    allowed_lateness_hours: float = Field(default=6.0, gt=0, le=24 * 30)
    compact_every_batches: int = Field(default=60, ge=0, description="0: only `salespulse compact`")
    stock_refresh_seconds: float = Field(default=10.0, ge=0)
    status_history: int = Field(default=500, ge=1, description="batches kept in the status file's history")


class ModelSettings(_Section):
    """`salespulse train`: the split, the training budget and the small hyperparameter search (docs/model.md)."""

    validation_days: float = Field(default=14.0, gt=0, description="origins of the validation split")
    test_days: float = Field(default=14.0, gt=0, description="origins of the test split (the most recent)")
    max_epochs: int = Field(default=40, ge=1)
    patience: int = Field(default=5, ge=1, description="early stopping: epochs without validation improvement")
    batch_size: int = Field(default=256, ge=8)
    learning_rate: float = Field(default=0.002, gt=0, le=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    mlp_hidden_units: list[int] = Field(default_factory=lambda: [128, 256], min_length=1)
    conv_filters: list[int] = Field(default_factory=lambda: [16, 32], min_length=1)
    conv_hidden_units: int = Field(default=128, ge=1)
    ridge_alphas: list[float] = Field(default_factory=lambda: [0.1, 1.0, 10.0, 100.0], min_length=1)
    max_minutes: float = Field(default=10.0, gt=0, description="search budget; no new trial starts after it")
    threads: int = Field(default=2, ge=1, description="TensorFlow intra- and inter-op threads")
    seed: int = Field(default=42, ge=0)

    @field_validator("mlp_hidden_units", "conv_filters")
    @classmethod
    def _positive_sizes(cls, value: list[int]) -> list[int]:
        if any(size < 1 for size in value):
            raise ValueError("sizes must be 1 or more")
        return value

    @field_validator("ridge_alphas")
    @classmethod
    def _positive_alphas(cls, value: list[float]) -> list[float]:
        if any(alpha <= 0 for alpha in value):
            raise ValueError("alphas must be above 0")
        return value


class DashboardSettings(_Section):
    """The Dash app; docs/dashboard.md explains live refresh and caching."""

    host: str = "127.0.0.1"
    port: int = Field(default=8050, ge=1, le=65535)
    # Display only: the lake stays in UTC (PITFALLS 20). An IANA name such as Europe/Paris.
    time_zone: str = "UTC"
    refresh_seconds: float = Field(default=1.0, gt=0, le=1.0, description="data-version check interval")
    stale_amber_seconds: float = Field(default=30.0, gt=0)
    stale_red_seconds: float = Field(default=120.0, gt=0)
    top_n: int = Field(default=10, ge=1, le=100, description="rows of the top-N table")
    # Production mode (`salespulse dashboard --prod`, gunicorn): no built-in demo accounts or secrets, secure
    # cookies; every secret must come from the environment.
    production: bool = False

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as UTC or Europe/Paris") from None
        return value

    @model_validator(mode="after")
    def _red_after_amber(self) -> DashboardSettings:
        if self.stale_red_seconds <= self.stale_amber_seconds:
            raise ValueError("stale_red_seconds must be greater than stale_amber_seconds")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    paths: PathSettings = Field(default_factory=PathSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)


class _YamlFileSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]):
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise SettingsError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def _describe(err: ValidationError, config_path: Path) -> str:
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    unknown = first["type"] == "extra_forbidden"
    message = "unknown key" if unknown else first["msg"].removeprefix("Value error, ")
    shown = first.get("input")
    got = "" if unknown or isinstance(shown, dict) else f" (got {shown!r})"
    env_name = ENV_PREFIX + key.upper().replace(".", "__")
    more = f"; {len(err.errors()) - 1} more problem(s)" if len(err.errors()) > 1 else ""
    return f"invalid setting {key}: {message}{got} [from {config_path}, {env_name} or a CLI flag]{more}"


def _set_nested(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = target
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def load_settings(config: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings once. ``overrides`` holds CLI flags as dotted keys (``{"simulator.rate": 50}``);
    ``None`` values are ignored so unset flags do not mask the file or environment."""
    path = Path(config or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG)
    file_data = _read_yaml(path)
    init: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_nested(init, dotted, value)

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _YamlFileSource(settings_cls, file_data))

    try:
        built = _FromFile(**init)
    except ValidationError as err:
        raise SettingsError(_describe(err, path)) from None
    # A plain Settings instance (not the local subclass) pickles and compares like any other.
    return Settings.model_construct(**{name: getattr(built, name) for name in Settings.model_fields})
