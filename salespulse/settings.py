"""The one typed settings object: YAML file < environment (``SALESPULSE_*``) < CLI flags.

Built once by an entry point with :func:`load_settings` and passed down as the sub-object a function needs.
Every model forbids unknown keys, so a typo fails at start with the key's name instead of being ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from salespulse.metrics import WINDOW_KPIS
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
    """Where data lives: local folders or ``hdfs://`` URIs (the Python side reaches HDFS through WebHDFS, see
    HdfsSettings; the model registry stays a local path)."""

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


class HdfsSettings(_Section):
    """How the Python side (dashboard, monitoring, `salespulse kpis`, simulator, ingest API) reaches ``hdfs://``
    paths: WebHDFS, the namenode's HTTP API (salespulse/storage.py). Spark uses its own Hadoop client."""

    # http(s)://HOST:PORT of the namenode's web server; None: the hdfs:// URI's host on port 9870 (Hadoop 3)
    webhdfs_url: str | None = None
    user: str | None = Field(default=None, description="HDFS user for files written (simple auth); None: dr.who")
    # Remote files' status (the manifest's data version, the stream status) is asked of the namenode at most this
    # often per process: a page's requests ask dozens of times, the page polls once a second.
    version_check_seconds: float = Field(default=0.5, ge=0, le=10)

    @field_validator("webhdfs_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlparse

        if value is not None and (urlparse(value).scheme not in ("http", "https") or not urlparse(value).hostname):
            raise ValueError("must be http://HOST:PORT or https://HOST:PORT (the namenode's web address)")
        return value


class SparkSettings(_Section):
    master: str = "local[*]"
    app_name: str = "salespulse"
    # Fixed into streaming checkpoints on first run (a checkpoint cannot be resumed with another value): keep it small
    # and stable.
    shuffle_partitions: int = Field(default=4, ge=1, le=2000)
    session_time_zone: Literal["UTC"] = "UTC"
    ui_enabled: bool = False
    driver_memory: str = "2g"
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "ERROR"
    # Where the Spark JVM's own output goes (log4j lines, banners, JVM warnings) when a command starts it: a local
    # file, appended to, so a command's terminal shows only its own lines. None: the terminal (`--verbose`).
    log_file: str | None = "data/logs/spark.log"
    # FAIR: the micro-batches' tasks go ahead of the forecast, stock and compaction work beside them
    # (spark.scheduler.mode, pools in conf/fairscheduler.xml) instead of queueing behind their jobs.
    scheduler_mode: Literal["FAIR", "FIFO"] = "FAIR"
    # Rows per Arrow batch into pandas UDFs (spark.sql.execution.arrow.maxRecordsPerBatch): forecast scoring is
    # fastest with few large batches (bench/score_throughput.py); a feature row is about 2 KB.
    arrow_batch_rows: int = Field(default=20_000, ge=100, le=1_000_000)
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

    # Case-insensitive spellings mapped onto the canonical country names (exports spell countries many ways).
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
    # Spark's own default is unbounded: the first batch after downtime would take every waiting file at once.
    max_files_per_trigger: int = Field(default=200, ge=1, description="bounds the first batch after downtime")
    processed_files: Literal["archive", "delete", "keep"] = "archive"
    # Events that happened more than this before their file landed are quarantined as late_event. Also the
    # dedupe window: an order id is checked against silver events inside it.
    allowed_lateness_hours: float = Field(default=6.0, gt=0, le=24 * 30)
    compact_every_batches: int = Field(default=60, ge=0, description="0: only `salespulse compact`")
    # Spark's file source never trims its list of processed files: a query moves to a new, empty checkpoint after
    # this many batches (0: never). Needs processed_files archive or delete (with keep, landing is read again).
    checkpoint_rotate_batches: int = Field(default=20_000, ge=0)
    stock_refresh_seconds: float = Field(default=60.0, ge=0)
    status_history: int = Field(default=500, ge=1, description="batches kept in the status file's history")
    # Off by default: adaptive execution runs each shuffle stage of a micro-batch as a Spark job of its own,
    # which costs more in a small batch than its re-planning saves.
    adaptive_query_execution: bool = False


class ModelSettings(_Section):
    """`salespulse train`: the split, the training budget and the small hyperparameter search (docs/model.md)."""

    validation_days: float = Field(default=14.0, gt=0, description="origins of the validation split")
    test_days: float = Field(default=14.0, gt=0, description="origins of the test split (the most recent)")
    max_epochs: int = Field(default=40, ge=1)
    patience: int = Field(default=5, ge=1, description="early stopping: epochs without validation improvement")
    batch_size: int = Field(default=256, ge=8)
    learning_rate: float = Field(default=0.002, gt=0, le=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    mlp_hidden_units: list[int] = Field(default_factory=lambda: [256], min_length=1)
    conv_filters: list[int] = Field(default_factory=lambda: [16], min_length=1)
    conv_hidden_units: int = Field(default=128, ge=1)
    trainings_per_candidate: int = Field(default=2, ge=1, description="search: trainings of each architecture, "
                                         "each from its own seed, all weighted into the served network")
    ridge_alphas: list[float] = Field(default_factory=lambda: [0.1, 1.0, 10.0, 100.0], min_length=1)
    tree_leaf_nodes: list[int] = Field(default_factory=lambda: [15, 63], min_length=1,
                                       description="gradient-boosting baseline: tree sizes tried on validation")
    tree_max_iter: int = Field(default=100, ge=1, description="gradient-boosting baseline: boosting rounds")
    tree_learning_rate: float = Field(default=0.1, gt=0, le=1)
    tree_max_rows: int = Field(default=120_000, ge=1000,
                               description="gradient-boosting baseline: (origin, horizon) training rows sampled")
    max_minutes: float = Field(default=10.0, gt=0, description="search budget; no new trial starts after it")
    threads: int = Field(default=2, ge=1, description="TensorFlow intra- and inter-op threads")
    seed: int = Field(default=42, ge=0)

    @field_validator("mlp_hidden_units", "conv_filters", "tree_leaf_nodes")
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
    # Display only: the lake stays in UTC, so JVM, pandas and Plotly agree on hours. An IANA name such as Europe/Paris.
    time_zone: str = "UTC"
    refresh_seconds: float = Field(default=1.0, gt=0, le=1.0, description="data-version check interval")
    stale_amber_seconds: float = Field(default=30.0, gt=0)
    stale_red_seconds: float = Field(default=120.0, gt=0)
    top_n: int = Field(default=10, ge=1, le=100, description="rows of the top-N table")
    # Responses of the deterministic callbacks kept per process for the current data version (dashboard/
    # response_cache.py, docs/dashboard.md); 0 turns the cache off.
    response_cache_entries: int = Field(default=256, ge=0, description="cached callback responses per process")
    # DuckDB's memory per worker (queries, per-version tables, cached remote file blocks); a query needing more
    # spills to a temp folder. The 90-day Data quality tab over 10M events needs about 300 MB.
    query_memory_mb: int = Field(default=1024, ge=64, description="DuckDB memory limit per dashboard worker, MB")
    # Production mode (`salespulse dashboard --prod`, gunicorn): no built-in demo accounts or secrets, secure
    # cookies; every secret must come from the environment.
    production: bool = False
    # `salespulse dashboard --prod` / conf/gunicorn.conf.py (docs/deploy.md). Workers do not share memory: each
    # keeps its own per-data-version caches and computes each new version's results itself (worker processes share no
    # memory), so more workers cost memory and CPU, threads are cheap: after a publish most requests wait for one
    # response being computed (dashboard/response_cache.py) and hold a thread meanwhile. 1 worker x 32 threads measured
    # best on 2 cores (docs/deploy.md).
    workers: int = Field(default=1, ge=1, le=64, description="gunicorn worker processes")
    threads: int = Field(default=32, ge=1, le=64, description="threads per gunicorn worker")
    timeout_seconds: int = Field(default=60, ge=1, description="a worker silent this long is restarted")
    graceful_timeout_seconds: int = Field(default=30, ge=1, description="on stop: time to finish requests")
    forwarded_allow_ips: str = Field(default="127.0.0.1", description="proxies trusted for X-Forwarded-Proto")

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


class AuthSettings(_Section):
    """Dashboard login and sessions; docs/security.md explains each knob."""

    users_file: str = "data/users.json"  # written by `salespulse users`; mode 0600, passwords hashed
    # Signs the session cookie. Required in production (set SALESPULSE_AUTH__SECRET_KEY); elsewhere an empty
    # value means a random key per process (sessions end when the dashboard restarts).
    secret_key: SecretStr = SecretStr("")
    login_rate_limit: str = Field(default="5 per minute", min_length=1,
                                  description="failed logins allowed per client IP and per user name")
    # Where the login counters live: memory:// is per process; with several gunicorn workers use a shared
    # store such as redis://host:6379 (needs the redis package).
    rate_limit_storage: str = "memory://"
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30, description="a login lasts this long")

    @field_validator("login_rate_limit")
    @classmethod
    def _parsable_limit(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError("must be a rate such as '5 per minute' or '5/minute;20/hour'") from None
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage_uri(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be a storage URI such as memory:// or redis://host:6379")
        return value


class ApiSettings(_Section):
    """The ingest API (`POST /api/v1/sales`, `/api/v1/inventory`); docs/ingest-api.md."""

    # Bearer tokens, from the environment (SALESPULSE_API__TOKENS='["t1","t2"]'); none: the API is disabled.
    tokens: list[SecretStr] = Field(default_factory=list)
    max_body_bytes: int = Field(default=5_000_000, ge=1_000, description="larger bodies get 413")
    max_rows: int = Field(default=10_000, ge=1, description="rows per request; more get 413")
    rate_limit: str = Field(default="120/minute", description="per token, Flask-Limiter notation")
    rate_limit_storage: str = Field(default="memory://", description="per process; redis://... to share")

    @field_validator("tokens")
    @classmethod
    def _long_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(token.get_secret_value()) < 16 for token in value):
            raise ValueError("every token needs at least 16 characters (e.g. `python -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))'`)")
        return value


class PrivacySettings(_Section):
    """Pseudonymous customer ids and retention of event-level data; docs/security.md."""

    # Secret salt for profiles with `hash_customer_id: true`; from SALESPULSE_PRIVACY__CUSTOMER_ID_SALT only.
    customer_id_salt: SecretStr | None = None
    retention_days: int = Field(default=0, ge=0, description="`salespulse compact` default; 0 keeps forever")


class MonitoringSettings(_Section):
    """`/healthz`, `/readyz`, `/metrics` and the JSON request log; docs/operations.md."""

    # Bearer token for /metrics (SALESPULSE_MONITORING__METRICS_TOKEN); unset: /metrics answers loopback only.
    metrics_token: SecretStr | None = None
    ready_max_lag_seconds: float = Field(default=300.0, gt=0, description="/readyz: newest stream batch at most")
    log_requests: bool = True


class _AlertRule(_Section):
    name: str = Field(min_length=1, description="unique; names the alert in the lake, the header and messages")


class _CountryRule(_AlertRule):
    countries: list[str] | None = Field(default=None, description="only these countries; None: every country")

    @field_validator("countries")
    @classmethod
    def _known_countries(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or ()) - set(COUNTRIES))
        if unknown:
            raise ValueError(f"not a country: {', '.join(unknown)}; countries are {', '.join(COUNTRIES)}")
        return value


class KpiThresholdRule(_CountryRule):
    """Fires per country when a KPI over the last ``window_hours`` complete hours is below (or above) a value."""

    kind: Literal["kpi_threshold"]
    kpi: str
    below: float | None = None
    above: float | None = None
    window_hours: int = Field(ge=1, le=24 * 31)

    @field_validator("kpi")
    @classmethod
    def _window_kpi(cls, value: str) -> str:
        if value not in WINDOW_KPIS:
            raise ValueError(f"must be a KPI computed from hourly totals: {', '.join(WINDOW_KPIS)}")
        return value

    @model_validator(mode="after")
    def _one_bound(self) -> KpiThresholdRule:
        if (self.below is None) == (self.above is None):
            raise ValueError("set exactly one of below and above")
        return self


class ForecastBandRule(_CountryRule):
    """Fires per country when each of the last ``hours`` complete hours had sales outside the forecast's p10-p90
    band (gold_forecast_anomalies)."""

    kind: Literal["forecast_band"]
    hours: int = Field(ge=1, le=24)
    direction: Literal["above", "below", "either"] = "either"


class StockoutRule(_CountryRule):
    """Fires per country x product when stock is predicted to run out within ``within_hours``."""

    kind: Literal["stockout"]
    within_hours: float = Field(gt=0, le=24 * 90)


class StreamStaleRule(_AlertRule):
    """Fires when the stream has published no batch for ``minutes`` (no country: shown to administrators)."""

    kind: Literal["stream_stale"]
    minutes: float = Field(gt=0)


AlertRule = Annotated[KpiThresholdRule | ForecastBandRule | StockoutRule | StreamStaleRule,
                      Field(discriminator="kind")]


class WebhookSettings(_Section):
    """An incoming webhook (Slack, Teams, or any receiver of JSON POSTs). Set by operators only."""

    name: str = Field(min_length=1)
    # Often holds its own secret (Slack's path is the credential): from the environment in production.
    url: SecretStr

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        from urllib.parse import urlparse

        parsed = urlparse(value.get_secret_value())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("must be an http:// or https:// URL")
        return value


class AlertSettings(_Section):
    """Alert rules, evaluated by the pipeline after each publish, and the webhooks they are sent to;
    docs/operations.md."""

    rules: list[AlertRule] = Field(default_factory=list)
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    # A rule that resolved and fires again within this time is stored and shown but not sent again.
    cooldown_minutes: float = Field(default=30.0, ge=0)
    # The stream also evaluates this often without a publish: a stale stream publishes nothing.
    evaluate_every_seconds: float = Field(default=60.0, gt=0, le=3600)
    timeout_seconds: float = Field(default=5.0, gt=0, le=120, description="per webhook request")
    retries: int = Field(default=3, ge=0, le=10, description="further attempts after a failed request")
    backoff_seconds: float = Field(default=2.0, ge=0, le=600, description="first wait between attempts; doubles")
    queue_size: int = Field(default=100, ge=1, description="messages waiting per webhook; more are dropped")

    @field_validator("rules", "webhooks")
    @classmethod
    def _unique_names(cls, value: list[Any]) -> list[Any]:
        names = [item.name for item in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"names must be unique; repeated: {', '.join(repeated)}")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    paths: PathSettings = Field(default_factory=PathSettings)
    hdfs: HdfsSettings = Field(default_factory=HdfsSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)


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


def config_path(config: str | Path | None = None) -> Path:
    """The settings file a command reads: ``--config``, else ``$SALESPULSE_CONFIG``, else conf/default.yaml."""
    return Path(config or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG)


def describe_sources(config: str | Path | None = None) -> list[str]:
    """Where the settings come from, as lines for people: the file (and what chose it) and the environment
    variables that set a key (names only: values may be secrets), plus SALESPULSE_* variables naming no key."""
    path = config_path(config)
    chosen_by = ("--config" if config else f"${CONFIG_ENV_VAR}" if os.environ.get(CONFIG_ENV_VAR)
                 else f"the default; --config FILE or ${CONFIG_ENV_VAR} picks another")
    lines = [f"settings file: {path} ({chosen_by})"]
    used, ignored = [], []
    for name in sorted(os.environ):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV_VAR:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        section_type = Settings.model_fields[section].annotation if section in Settings.model_fields else None
        known = key and section_type is not None and key.split("__")[0] in section_type.model_fields
        (used if known else ignored).append(f"{name} -> {section}.{key.replace('__', '.')}" if known else name)
    lines.append(f"environment: {', '.join(used) if used else 'none'}")
    if ignored:
        lines.append(f"ignored environment variables (no such setting): {', '.join(ignored)}")
    lines.append("command flags override both; keys set by none of them take their built-in defaults")
    return lines


def load_settings(config: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings once. ``overrides`` holds CLI flags as dotted keys (``{"simulator.rate": 50}``);
    ``None`` values are ignored so unset flags do not mask the file or environment."""
    path = config_path(config)
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
