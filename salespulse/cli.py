"""The ``salespulse`` command: parse flags, build the settings once, call one entry point."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import click
import yaml

from salespulse.settings import CONFIG_ENV_VAR, DEFAULT_CONFIG, Settings, SettingsError, load_settings

CONFIG_HELP = (
    f"YAML settings file (default: ${CONFIG_ENV_VAR} or {DEFAULT_CONFIG.relative_to(DEFAULT_CONFIG.parents[1])}). "
    "Precedence: file < SALESPULSE_SECTION__KEY environment variables < command flags."
)


def _settings(ctx: click.Context, overrides: dict[str, Any] | None = None) -> Settings:
    try:
        settings = load_settings(ctx.obj["config"], overrides)
    except SettingsError as err:
        click.echo(f"salespulse: {err}", err=True)
        ctx.exit(2)
    if ctx.obj["verbose"]:  # Spark's own output on the terminal instead of spark.log_file
        settings = settings.model_copy(update={"spark": settings.spark.model_copy(update={"log_file": None})})
    return settings


def _say(message: str) -> None:
    click.echo(message, err=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), help=CONFIG_HELP)
@click.option("--verbose", is_flag=True,
              help="Show Spark's own output (log4j lines, banners) on the terminal instead of spark.log_file.")
@click.pass_context
def main(ctx: click.Context, config: Path | None, verbose: bool) -> None:
    """SalesPulse: real-time sales KPIs for executives.

    \b
    Data flow: simulate -> landing CSV files -> Spark (stream or backfill) -> Parquet lake -> dashboard.
    Run `salespulse COMMAND --help` for one command's options.
    """
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    ctx.obj["verbose"] = verbose


@main.command("config")
@click.pass_context
def show_config(ctx: click.Context) -> None:
    """Print the effective settings (file, environment and defaults merged) as YAML, after comment lines saying
    which settings file and which environment variables they came from."""
    from salespulse.settings import describe_sources

    settings = _settings(ctx)
    for line in describe_sources(ctx.obj["config"]):
        click.echo(f"# {line}")
    click.echo(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False, allow_unicode=True), nl=False)


def _parse_end(_: click.Context, __: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date-time such as 2026-11-23T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


@main.command()
@click.option("--out",
              help="Landing folder or hdfs:// URI (default: paths.landing; HDFS through WebHDFS). Live files go to "
                   "OUT/sales and OUT/inventory, history to OUT/history/sales and OUT/history/inventory.")
@click.option("--rate", type=float, help="Live sales events per second, weekly mean (simulator.rate).")
@click.option("--history-rate", type=float, help="History sales events per second (simulator.history_rate).")
@click.option("--seconds", type=float,
              help="Live run length; 0 = until Ctrl-C. Default: until Ctrl-C, or no live run after --history-days.")
@click.option("--history-days", type=float, default=0, show_default=True,
              help="First write this many days of history ending now (or at --end), one file per day.")
@click.option("--end", callback=_parse_end, help="History end time, ISO 8601 UTC (default: now). Pins the output.")
@click.option("--interval", type=float, help="Seconds between live files (simulator.file_interval_seconds).")
@click.option("--seed", type=int, help="Random seed; the same seed and --end give identical files.")
@click.option("--bad-rows-pct", type=float, help="Percent of rows corrupted (malformed, unknown, negative, missing).")
@click.option("--duplicate-pct", type=float, help="Percent of orders sent twice (same file or the next one).")
@click.option("--late-pct", type=float, help="Percent of sales whose event time is 2 min to 3 h in the past.")
@click.option("--quiet", is_flag=True, help="No progress bar (status lines are still printed).")
@click.option("--push", metavar="URL",
              help="Send each live batch to the ingest API at URL (e.g. http://127.0.0.1:8050) instead of writing "
                   "files; --bad-rows-pct defaults to 0 then, since the API refuses structurally bad rows.")
@click.option("--token", envvar="SALESPULSE_PUSH_TOKEN", help="Bearer token for --push (or $SALESPULSE_PUSH_TOKEN).")
@click.pass_context
def simulate(ctx: click.Context, out: str | None, rate: float | None, history_rate: float | None,
             seconds: float | None, history_days: float, end: int | None, interval: float | None,
             seed: int | None, bad_rows_pct: float | None, duplicate_pct: float | None,
             late_pct: float | None, quiet: bool, push: str | None, token: str | None) -> None:
    """Write realistic sales and inventory CSV files into the landing folder.

    Demand follows local hour-of-day and weekday profiles, per-country size and trend, and promotions;
    customers repeat; stock is depleted by sales and refilled by restocks. Faults are injected at the
    given rates. Files appear atomically (written aside, then renamed). Ctrl-C stops cleanly. With --push, one
    POST per batch to the ingest API instead; a refused batch stops the run with exit code 1.
    """
    from salespulse.simulator.push import ApiPusher, PushError
    from salespulse.simulator.run import simulate as run_simulation
    from salespulse.storage import open_storage

    if push is not None:
        if not token:
            raise click.BadParameter("--push needs --token (or $SALESPULSE_PUSH_TOKEN)", param_hint="--token")
        if history_days > 0:
            raise click.UsageError("--push sends live batches only; load history with `salespulse backfill`")
        if bad_rows_pct is None:
            bad_rows_pct = 0.0

    settings = _settings(ctx, {
        "simulator.rate": rate, "simulator.history_rate": history_rate, "simulator.seed": seed,
        "simulator.file_interval_seconds": interval, "simulator.bad_rows_pct": bad_rows_pct,
        "simulator.duplicate_pct": duplicate_pct, "simulator.late_pct": late_pct,
        "paths.landing": out,
    })
    if history_days < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--history-days")
    if seconds is not None and seconds < 0:
        raise click.BadParameter("must be 0 (until Ctrl-C) or more", param_hint="--seconds")
    try:
        landing = open_storage(settings.paths.landing, settings.hdfs)
    except ValueError as err:
        raise click.UsageError(str(err)) from None

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        click.echo(f"simulate: {signal.Signals(signum).name} received, finishing the current file", err=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    try:
        run_simulation(settings.simulator, landing, history_days=history_days, seconds=seconds, stop=stop,
                       say=_say, end_ms=end, progress=not quiet and sys.stderr.isatty(),
                       send=ApiPusher(push, token) if push else None)
    except PushError as err:
        _fail(str(err))
    except OSError as err:  # e.g. the namenode's WebHDFS address does not answer
        _fail(f"cannot land files in {landing.uri}: {err}")


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"salespulse: {message}", err=True)
    sys.exit(code)


@main.command()
@click.option("--input", "inputs", required=True,
              help="File, folder or glob of CSV/TSV/.xlsx files (local path or hdfs:// URI).")
@click.option("--profile", "profile_name", required=True,
              help="Source profile: a name from conf/profiles (canonical, canonical_inventory, financial_sample) "
                   "or a YAML file; see docs/profiles.md.")
@click.option("--lake", help="Lake folder or URI (paths.lake).")
@click.pass_context
def backfill(ctx: click.Context, inputs: str, profile_name: str, lake: str | None) -> None:
    """Load history or a real export into the lake: clean, validate (bad rows to quarantine with a reason),
    deduplicate, rebuild gold, publish atomically. A file whose header does not fit the profile (a stray
    notes.txt, another export) is one quarantine entry (bad_header), named on one line and in the report's
    bad_header_files, and the other files load.

    Ends with a one-line JSON report, also saved under LAKE/reports/backfill/:
    rows_in = rows_silver + rows_quarantined + rows_duplicate, quarantined rows counted by reason and by the
    culprit their detail names; for sales, where the money went (sales and profit in = silver + duplicates +
    quarantined per reason), also printed as a table. Re-running the same input changes nothing.
    """
    import json
    import uuid

    from salespulse.profiles import ProfileError, customer_id_salt, load_profile

    settings = _settings(ctx, {"paths.lake": lake})
    try:
        profile = load_profile(profile_name)
        customer_id_salt(profile, settings.privacy)
    except ProfileError as err:
        _fail(str(err), 2)
    from spark_jobs.backfill import run_backfill
    from spark_jobs.io import SourceError
    from spark_jobs.session import build_session

    now = datetime.now(timezone.utc)
    run_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    spark = build_session(settings.spark)
    try:
        report = run_backfill(spark, settings, inputs, profile, now, run_id, lambda m: click.echo(m, err=True))
    except SourceError as err:
        _fail(str(err))
    if "money" in report:
        from salespulse.console import money_table

        for line in money_table(report["money"]):
            click.echo(line, err=True)
    _evaluate_alerts(spark, settings, lambda m: click.echo(m, err=True))
    click.echo(json.dumps(report, sort_keys=True))


def _evaluate_alerts(spark: Any, settings: Settings, say: Callable[[str], None]) -> None:
    """The alert rules on what a command just published; its webhooks get at most alerts.timeout_seconds to
    answer before the command ends. A failure is reported, not fatal: the data is published already."""
    from salespulse.notify import WebhookNotifier
    from spark_jobs.alerts import evaluate_alerts_job

    notifier = WebhookNotifier(settings.alerts, say)
    try:
        evaluate_alerts_job(spark, settings, datetime.now(timezone.utc), notifier, say)
    except Exception as err:  # any failure of the evaluation: the backfill itself succeeded
        say(f"alerts: evaluation failed, done again after the next publish: {str(err).splitlines()[0]}")
    notifier.close(settings.alerts.timeout_seconds)


@main.command()
@click.option("--landing", help="Landing folder or URI holding sales/ and inventory/ (paths.landing).")
@click.option("--lake", help="Lake folder or URI (paths.lake).")
@click.option("--checkpoints", help="Checkpoint folder or URI (paths.checkpoints).")
@click.option("--trigger-seconds", type=float, help="Seconds between micro-batches (stream.trigger_seconds).")
@click.option("--available-now", is_flag=True,
              help="Process every file landed so far, then stop (catch-up runs, tests, cron).")
@click.pass_context
def stream(ctx: click.Context, landing: str | None, lake: str | None, checkpoints: str | None,
           trigger_seconds: float | None, available_now: bool) -> None:
    """Stream landed sales and inventory files into the lake, exactly once, until Ctrl-C or SIGTERM.

    Each micro-batch is cleaned, validated (bad rows to quarantine), deduplicated and aggregated by the
    same code as `backfill`, then published atomically. Prints one line per batch; writes the stream's
    figures to LAKE/_status/stream.json. A restart resumes from the checkpoint; see docs/operations.md.
    """
    settings = _settings(ctx, {"paths.landing": landing, "paths.lake": lake, "paths.checkpoints": checkpoints,
                               "stream.trigger_seconds": trigger_seconds})
    from spark_jobs.session import build_session
    from spark_jobs.stream import StreamSetupError, run_stream

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        click.echo(f"stream: {signal.Signals(signum).name} received, finishing the running batch", err=True)
        stop.set()

    spark = build_session(settings.spark)
    # After the session: SparkContext installs its own SIGINT handler, which would cancel the running batch.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    try:
        code = run_stream(spark, settings, _say, stop, available_now=available_now)
    except StreamSetupError as err:
        _fail(str(err))
    finally:
        spark.stop()
    sys.exit(code)


@main.command()
@click.option("--lake", help="Lake folder or URI (paths.lake).")
@click.option("--table", "tables", multiple=True, help="Only this table (repeatable). Default: all.")
@click.option("--retention-days", type=click.IntRange(min=0),
              help="First drop event-level data older than this many days: silver sales and inventory by event "
                   "day, quarantine by ingest time; gold stays. 0 keeps everything (privacy.retention_days).")
@click.pass_context
def compact(ctx: click.Context, lake: str | None, tables: tuple[str, ...], retention_days: int | None) -> None:
    """Merge the small directories the stream writes into bigger ones, after applying the retention period.
    Safe while the stream, a backfill and the dashboard run: every change is published atomically and replaced
    files are deleted after a grace period."""
    from salespulse.lake import TABLES
    from spark_jobs.compact import apply_retention, compact_tables
    from spark_jobs.session import build_session

    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        _fail(f"no lake table {', '.join(unknown)}; tables are {', '.join(TABLES)}", 2)
    settings = _settings(ctx, {"paths.lake": lake, "privacy.retention_days": retention_days})
    spark = build_session(settings.spark)
    lines = apply_retention(spark, settings, settings.privacy.retention_days, datetime.now(timezone.utc))
    lines += compact_tables(spark, settings, list(tables) or None)
    for line in lines:
        _say(line)
    _say(f"compact: {len(lines)} change(s)")


def _parse_date(_: click.Context, __: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date such as 2026-11-23") from None


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@main.command()
@click.option("--lake", help="Lake folder or URI (paths.lake).")
@click.option("--registry", help="Model registry folder (paths.models).")
@click.option("--every-hours", type=click.IntRange(1, 24 * 7), default=24, show_default=True,
              help="Hours between two forecast origins.")
@click.option("--start", "start", callback=lambda _c, _p, v: _parse_hour(v), help="First origin (ISO, UTC).")
@click.option("--end", "end", callback=lambda _c, _p, v: _parse_hour(v), help="Last origin (ISO, UTC).")
@click.pass_context
def forecast(ctx: click.Context, lake: str | None, registry: str | None, every_hours: int,
             start: datetime | None, end: datetime | None) -> None:
    """Back-test the current model over history: forecasts from origins every N hours (default: the whole
    of gold that has a week of history before it), written to gold_forecasts, and every covered hour judged
    into gold_forecast_anomalies. The running stream forecasts by itself; this is for history and exports."""
    from model.registry import ModelError
    from spark_jobs.forecast import run_backtest
    from spark_jobs.session import build_session

    settings = _settings(ctx, {"paths.lake": lake, "paths.models": registry})
    spark = build_session(settings.spark)
    try:
        output = run_backtest(spark, settings, every_hours, start, end, datetime.now(timezone.utc))
    except (ModelError, ValueError) as err:
        _fail(str(err))
    _say(f"forecast: model {output.version}, {len(output.origins)} origin(s) from "
         f"{output.origins[0]:%Y-%m-%d %H}:00 to {output.origins[-1]:%Y-%m-%d %H}:00 UTC: "
         f"{output.forecasts:,} forecast rows, {output.anomalies:,} anomalies")


def _parse_hour(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO date or time") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


@main.command()
@click.option("--lake", help="Lake folder or hdfs:// URI (paths.lake; HDFS through WebHDFS, hdfs.webhdfs_url).")
@click.option("--by", type=click.Choice(["country", "segment", "product", "month"]), help="Group the KPIs.")
@click.option("--start", callback=_parse_date, help="First UTC day counted (ISO date). Default: all history.")
@click.option("--end", callback=_parse_date, help="Last UTC day counted, inclusive (ISO date).")
@click.option("--country", help="Only these countries (comma-separated).")
@click.option("--segment", help="Only these segments (comma-separated).")
@click.option("--product", help="Only these products (comma-separated); no customer KPIs then.")
@click.option("--band", help="Only these discount bands (comma-separated); no customer KPIs then.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
@click.pass_context
def kpis(ctx: click.Context, lake: str | None, by: str | None, start: date | None, end: date | None,
         country: str | None, segment: str | None, product: str | None, band: str | None, as_json: bool) -> None:
    """Print KPI totals read from gold (DuckDB, committed tables only): every measure, and every KPI of the
    metrics layer (docs/metrics.md) that gold's sales and customer tables answer for the filters. The filters
    are the dashboard's: its KPI cards show the same numbers for the same filters."""
    from salespulse.kpi_report import (
        SalesFilter,
        UnknownFilterValue,
        canonical_filter_values,
        format_kpi_table,
        kpi_json,
        kpi_totals,
    )
    from salespulse.storage import open_storage

    settings = _settings(ctx, {"paths.lake": lake})
    chosen = {"country": country, "segment": segment, "product": product, "discount_band": band}
    try:
        values = {column: canonical_filter_values(column, _split(given), settings.ingest.country_aliases)
                  for column, given in chosen.items()}
    except UnknownFilterValue as err:
        _fail(str(err), 2)
    where = SalesFilter.for_dates(start, end, countries=values["country"], segments=values["segment"],
                                  products=values["product"], bands=values["discount_band"])
    try:
        table = kpi_totals(open_storage(settings.paths.lake, settings.hdfs), by, where)
    except FileNotFoundError as err:
        _fail(str(err))
    if as_json:
        click.echo(kpi_json(table))
    else:
        click.echo(format_kpi_table(table).to_string(index=False))


@main.command()
@click.option("--lake", help="Lake folder or hdfs:// URI to read gold_sales_hourly from (paths.lake).")
@click.option("--registry", help="Local model registry folder (paths.models).")
@click.option("--max-minutes", type=float, help="Search budget in minutes (model.max_minutes).")
@click.option("--max-epochs", type=int, help="Epochs per trial at most, before early stopping (model.max_epochs).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--oracle-seed", type=int,
              help="The lake holds `salespulse simulate --history-days` output of this seed: also score the "
                   "simulator's expected demand (the oracle, the noise floor) on the test hours. Needs --oracle-end.")
@click.option("--oracle-end", callback=_parse_end, help="With --oracle-seed: the simulation's --end (ISO 8601 UTC).")
@click.option("--oracle-rate", type=float,
              help="With --oracle-seed: the simulation's --history-rate (default simulator.history_rate).")
@click.pass_context
def train(ctx: click.Context, lake: str | None, registry: str | None, max_minutes: float | None,
          max_epochs: int | None, quiet: bool, oracle_seed: int | None, oracle_end: int | None,
          oracle_rate: float | None) -> None:
    """Train the hourly sales and units forecast (24 h, p10/p50/p90) on gold, compare it with seasonal-naive
    and linear-regression baselines on the same test split, and write a new registry version.

    The version becomes `current` only if its test sales MAE beats the best baseline's; otherwise it is
    kept unpromoted and the command says so (exit code 0 either way). See docs/model.md.
    """
    settings = _settings(ctx, {"paths.lake": lake, "paths.models": registry, "model.max_minutes": max_minutes,
                               "model.max_epochs": max_epochs, "simulator.seed": oracle_seed,
                               "simulator.history_rate": oracle_rate})
    if "://" in settings.paths.models and not settings.paths.models.startswith("file://"):
        _fail(f"train writes a local registry folder; paths.models is {settings.paths.models!r}", 2)
    from model.registry import ModelError
    from model.train import TrainingError, run_training
    from salespulse.simulator.oracle import SimulatedRun
    from salespulse.storage import open_storage

    if (oracle_seed is None) != (oracle_end is None):
        raise click.UsageError("--oracle-seed and --oracle-end go together (the simulation's --seed and --end)")
    simulated = None if oracle_end is None else SimulatedRun(settings.simulator, settings.simulator.history_rate,
                                                             oracle_end)
    try:
        result = run_training(open_storage(settings.paths.lake, settings.hdfs), settings.paths.models, settings.model,
                              datetime.now(timezone.utc), progress=not quiet and sys.stderr.isatty(), say=_say,
                              simulated=simulated)
    except (TrainingError, ModelError) as err:
        _fail(str(err))
    overall = result.metrics["overall"]
    for method, by_measure in overall.items():
        sales = by_measure["sales"]
        coverage = "" if sales["coverage_p10_p90"] is None else f", p10-p90 coverage {sales['coverage_p10_p90']:.1%}"
        _say(f"train: test sales {method}: MAE {sales['mae']:,.2f}, sMAPE {sales['smape']:.1f} %{coverage}")
    _say(result.message)
    _say(f"train: model card {result.folder / 'card.md'}")


@main.command()
@click.option("--lake", help="Lake folder or hdfs:// URI (paths.lake; HDFS through WebHDFS, hdfs.webhdfs_url).")
@click.option("--host", help="Address to listen on (dashboard.host, default 127.0.0.1).")
@click.option("--port", type=int, help="Port (dashboard.port, default 8050).")
@click.option("--prod", is_flag=True,
              help="Production: serve with gunicorn and conf/gunicorn.conf.py (dashboard.production on, debug off).")
@click.option("--workers", type=click.IntRange(1, 64),
              help="gunicorn worker processes, with --prod (dashboard.workers).")
@click.pass_context
def dashboard(ctx: click.Context, lake: str | None, host: str | None, port: int | None, prod: bool,
              workers: int | None) -> None:
    """Serve the executive dashboard (Dash) over the lake: KPIs, trends and forecasts, customers, inventory,
    data quality; live, without reloading the page. Without --prod, Flask's development server; with --prod,
    gunicorn (docs/deploy.md)."""
    if workers is not None and not prod:
        raise click.UsageError("--workers applies to --prod only (the development server is one process)")
    overrides = {"paths.lake": lake, "dashboard.host": host, "dashboard.port": port, "dashboard.workers": workers}
    settings = _settings(ctx, {**overrides, "dashboard.production": True if prod else None})
    from salespulse.lake import MANIFEST
    from salespulse.storage import open_storage

    try:
        published = open_storage(settings.paths.lake, settings.hdfs).exists(MANIFEST)
    except (OSError, ValueError) as err:  # e.g. the namenode's WebHDFS address does not answer
        _fail(f"cannot read the lake at {settings.paths.lake}: {err}")
    if not published:
        _fail(f"no lake at {settings.paths.lake} (no {MANIFEST}); load data first with `salespulse backfill` "
              "or `salespulse stream`, or pass --lake")
    if prod:
        from salespulse.serving import gunicorn_command, serving_environment

        command = gunicorn_command(sys.executable)
        env = {**os.environ, **serving_environment(overrides, ctx.obj["config"])}
        _say(f"dashboard: gunicorn on http://{settings.dashboard.host}:{settings.dashboard.port}/ with "
             f"{settings.dashboard.workers} worker(s) x {settings.dashboard.threads} thread(s) (SIGTERM stops)")
        sys.stdout.flush()
        os.execvpe(command[0], command, env)  # gunicorn replaces this process: signals reach its master directly
    from dashboard.app import create_app
    from dashboard.auth import AuthSetupError

    try:
        app = create_app(settings)
    except AuthSetupError as err:
        _fail(str(err))
    # The page polls every second: one access-log line per request would bury everything else.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _say(f"dashboard: http://{settings.dashboard.host}:{settings.dashboard.port}/ (Ctrl-C stops)")
    app.run(host=settings.dashboard.host, port=settings.dashboard.port, debug=False)


@main.command()
@click.argument("query")
@click.option("--lake", help="Lake folder or URI (paths.lake).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of rows.")
@click.option("--limit", type=int, default=50, show_default=True, help="Rows to print (table output).")
@click.pass_context
def sql(ctx: click.Context, query: str, lake: str | None, as_json: bool, limit: int) -> None:
    """Run Spark SQL over the lake's published tables, registered as views: silver_sales, silver_inventory,
    gold_sales_hourly, gold_customers_daily, gold_stock, gold_reorder_alerts, quarantine_sales,
    quarantine_inventory."""
    import json

    from pyspark.errors.exceptions.captured import CapturedException

    from salespulse.console import describe_sql_error, format_rows
    from spark_jobs.io import read_manifest, read_table
    from spark_jobs.session import build_session

    settings = _settings(ctx, {"paths.lake": lake})
    spark = build_session(settings.spark)
    manifest = read_manifest(spark, settings.paths.lake)
    for table in manifest.get("tables", {}):
        frame = read_table(spark, settings.paths.lake, table, manifest)
        if frame is not None:
            frame.createOrReplaceTempView(table)
    try:
        result = spark.sql(query)
        if as_json:
            click.echo(json.dumps([row.asDict(recursive=True) for row in result.collect()], default=str))
        else:
            rows = result.limit(limit + 1).collect()
            for line in format_rows(result.columns, [tuple(row) for row in rows[:limit]]):
                _say(line)
            if len(rows) > limit:
                _say(f"(the first {limit} rows; --limit shows more)")
    except CapturedException as err:
        _fail(f"SQL error: {describe_sql_error(err)}")


@main.group()
def targets() -> None:
    """Monthly sales and profit targets per country (optionally per segment), kept in the lake's targets table;
    the dashboard's Overview shows attainment to date and the projected month end against them."""


TARGETS_LAKE_OPTION = click.option("--lake", help="Lake folder or URI (paths.lake).")


def _store_targets(settings: Settings, new: list[Any], replace_all: bool) -> None:
    """Merge ``new`` targets into the lake's (replacing those of the same month, country and segment) and publish
    the table with one manifest swap."""
    from salespulse.lake import MANIFEST
    from salespulse.storage import open_storage
    from salespulse.targets import TargetError, merge_targets, read_published_targets

    try:
        storage = open_storage(settings.paths.lake, settings.hdfs)
        if not storage.exists(MANIFEST):
            _fail(f"no lake at {settings.paths.lake} (no {MANIFEST}); load data first with `salespulse backfill` "
                  "or `salespulse stream`, or pass --lake")
        current, read_from = read_published_targets(storage)
    except (OSError, ValueError) as err:
        _fail(f"cannot read the lake at {settings.paths.lake}: {err}")
    merged = merge_targets(current, new, replace_all)
    known = {t.key for t in current}
    from spark_jobs.session import build_session
    from spark_jobs.targets import publish_targets

    spark = build_session(settings.spark)
    try:
        publish_targets(spark, settings.paths.lake, merged, read_from, datetime.now(timezone.utc))
    except TargetError as err:
        _fail(str(err))
    replaced = sum(t.key in known for t in new)
    _say(f"targets: {len(new)} set ({len(new) - replaced} new, {replaced} replaced); {len(merged)} in the lake")


@targets.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", "replace_all", is_flag=True,
              help="Drop every target FILE does not name (default: FILE's targets replace those of the same "
                   "month, country and segment, and the others stay).")
@TARGETS_LAKE_OPTION
@click.pass_context
def load_targets(ctx: click.Context, file: Path, replace_all: bool, lake: str | None) -> None:
    """Load targets from a CSV file with the header month,country,segment,sales_target,profit_target (segment
    optional: blank means the whole country; month YYYY-MM; amounts plain non-negative numbers). The whole file is
    checked first: any bad line, or a month, country and segment given twice, loads nothing (exit code 2)."""
    from salespulse.targets import TargetError, read_targets_file

    settings = _settings(ctx, {"paths.lake": lake})
    try:
        new = read_targets_file(file, settings.ingest.country_aliases)
    except TargetError as err:
        _fail(str(err), 2)
    _store_targets(settings, new, replace_all)


@targets.command("set")
@click.option("--country", required=True, help="Country (canonical name or an ingest.country_aliases spelling).")
@click.option("--month", required=True, help="Month, YYYY-MM.")
@click.option("--sales", required=True, help="Sales target for the month, e.g. 1200000 or 1200000.50.")
@click.option("--profit", required=True, help="Profit target for the month.")
@click.option("--segment", help="Only this segment (default: the whole country).")
@TARGETS_LAKE_OPTION
@click.pass_context
def set_target(ctx: click.Context, country: str, month: str, sales: str, profit: str, segment: str | None,
               lake: str | None) -> None:
    """Set (or replace) one month's sales and profit target of a country, or of one segment of it."""
    from salespulse.targets import TargetError, build_target

    settings = _settings(ctx, {"paths.lake": lake})
    try:
        target = build_target(month, country, segment, sales, profit, settings.ingest.country_aliases, "set")
    except TargetError as err:
        _fail(str(err), 2)
    _store_targets(settings, [target], False)


@targets.command("list")
@click.option("--month", help="Only this month (YYYY-MM).")
@click.option("--country", help="Only these countries (comma-separated).")
@TARGETS_LAKE_OPTION
@click.pass_context
def list_targets(ctx: click.Context, month: str | None, country: str | None, lake: str | None) -> None:
    """Print the targets in the lake (amounts in cents by the display rounding), oldest month first."""
    from salespulse.console import format_rows
    from salespulse.kpi_report import UnknownFilterValue, canonical_filter_values
    from salespulse.kpis import round_money
    from salespulse.storage import open_storage
    from salespulse.targets import TargetError, parse_month, read_published_targets

    settings = _settings(ctx, {"paths.lake": lake})
    try:
        chosen_month = parse_month(month) if month else None
        countries = canonical_filter_values("country", _split(country), settings.ingest.country_aliases)
    except (TargetError, UnknownFilterValue) as err:
        _fail(str(err), 2)
    try:
        found, _ = read_published_targets(open_storage(settings.paths.lake, settings.hdfs))
    except (OSError, ValueError) as err:
        _fail(f"cannot read the lake at {settings.paths.lake}: {err}")
    shown = [t for t in found if (chosen_month is None or t.month == chosen_month)
             and (not countries or t.country in countries)]
    if not shown:
        _say("targets: none" + (" match" if found else " in the lake; set them with `salespulse targets load FILE` "
                                                         "or `salespulse targets set ...`"))
        return
    rows = [(f"{t.month:%Y-%m}", t.country, t.segment or "(whole country)", round_money(t.sales_target),
             round_money(t.profit_target), t.source) for t in shown]
    for line in format_rows(("month", "country", "segment", "sales_target", "profit_target", "source"), rows):
        _say(line)


@main.group()
def profile() -> None:
    """Source profiles: how an export's columns map onto SalesPulse's (docs/profiles.md)."""


@profile.command("suggest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--event", type=click.Choice(["sales", "inventory"]), default="sales", show_default=True)
@click.option("--sheet", default="0", show_default=True, help=".xlsx sheet name or 0-based index.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the profile here (default: stdout).")
@click.pass_context
def suggest_profile(ctx: click.Context, file: Path, event: str, sheet: str, out: Path | None) -> None:
    """Read an export (CSV, TSV, .xlsx) and write a starting profile: the header line found, columns mapped by
    their names, the date format that reads every row (day/month ambiguity called out), and each category
    column's values with those SalesPulse does not know. Edit what it marks CHECK, then load it with
    `salespulse backfill --profile FILE`."""
    from salespulse.exports import SourceError
    from salespulse.profile_suggest import render_profile
    from salespulse.profile_suggest import suggest_profile as suggest

    settings = _settings(ctx)
    try:
        suggestion = suggest(file, event, int(sheet) if sheet.isdigit() else sheet)
    except (SourceError, UnicodeDecodeError) as err:
        _fail(f"{file}: {err}", 2)
    text = render_profile(suggestion, settings.ingest.country_aliases)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        _say(f"profile: wrote {out} ({len(suggestion.profile['columns'])} columns mapped, header on line "
             f"{suggestion.header_line}, {suggestion.rows:,} rows); check the lines marked CHECK")


@main.group()
def users() -> None:
    """Dashboard users: who may log in and which countries each may see (auth.users_file)."""


USERS_FILE_OPTION = click.option("--users-file", help="Users file (auth.users_file, default data/users.json).")


def _users_file(ctx: click.Context, users_file: str | None) -> str:
    return _settings(ctx, {"auth.users_file": users_file}).auth.users_file


@users.command("add")
@click.argument("name")
@click.option("--countries", help="Countries the user may see, comma-separated (e.g. France,Germany).")
@click.option("--admin", is_flag=True, help="May see every country and the pipeline figures.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin (scripts).")
@USERS_FILE_OPTION
@click.pass_context
def add_user(ctx: click.Context, name: str, countries: str | None, admin: bool, password_stdin: bool,
             users_file: str | None) -> None:
    """Add user NAME (or replace it: new password and countries). Asks for the password twice unless
    --password-stdin; only its scrypt hash is stored."""
    from salespulse import users as store

    path = _users_file(ctx, users_file)
    try:
        allowed = store.parse_countries(countries)
        if admin and allowed:
            raise store.UserError("--admin sees every country; leave out --countries")
        password = (sys.stdin.readline().rstrip("\r\n") if password_stdin
                    else click.prompt("Password", hide_input=True, confirmation_prompt=True))
        replaced = store.add_user(path, store.build_user(name, password, allowed, admin))
    except store.UserError as err:
        _fail(str(err), 2)
    user = store.read_users(path)[name]
    _say(f"users: {'replaced' if replaced else 'added'} {user.describe()} in {path}")


@users.command("list")
@USERS_FILE_OPTION
@click.pass_context
def list_users(ctx: click.Context, users_file: str | None) -> None:
    """List the users and the countries each may see (never the hashes)."""
    from salespulse import users as store

    path = _users_file(ctx, users_file)
    try:
        found = store.read_users(path)
    except store.UserError as err:
        _fail(str(err))
    if not found:
        _say(f"users: none in {path}; add one with `salespulse users add NAME --countries ...` or --admin")
    for user in found.values():
        _say(user.describe())


@users.command("remove")
@click.argument("name")
@USERS_FILE_OPTION
@click.pass_context
def remove_user(ctx: click.Context, name: str, users_file: str | None) -> None:
    """Remove user NAME; their open sessions end at their next request."""
    from salespulse import users as store

    path = _users_file(ctx, users_file)
    try:
        store.remove_user(path, name)
    except store.UserError as err:
        _fail(str(err), 2)
    _say(f"users: removed {name} from {path}")
