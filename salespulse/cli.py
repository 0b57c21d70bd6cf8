"""The ``salespulse`` command: parse flags, build the settings once, call one entry point."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime, timezone
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
        return load_settings(ctx.obj["config"], overrides)
    except SettingsError as err:
        click.echo(f"salespulse: {err}", err=True)
        ctx.exit(2)


def _say(message: str) -> None:
    click.echo(message, err=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), help=CONFIG_HELP)
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """SalesPulse: real-time sales KPIs for executives.

    \b
    Data flow: simulate -> landing CSV files -> Spark (stream or backfill) -> Parquet lake -> dashboard.
    Run `salespulse COMMAND --help` for one command's options.
    """
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


@main.command("config")
@click.pass_context
def show_config(ctx: click.Context) -> None:
    """Print the effective settings (file, environment and defaults merged) as YAML."""
    click.echo(yaml.safe_dump(_settings(ctx).model_dump(mode="json"), sort_keys=False), nl=False)


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
@click.option("--out", type=click.Path(file_okay=False),
              help="Landing folder (default: paths.landing). Live files go to OUT/sales and OUT/inventory, "
                   "history to OUT/history/sales and OUT/history/inventory.")
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
@click.pass_context
def simulate(ctx: click.Context, out: str | None, rate: float | None, history_rate: float | None,
             seconds: float | None, history_days: float, end: int | None, interval: float | None,
             seed: int | None, bad_rows_pct: float | None, duplicate_pct: float | None,
             late_pct: float | None, quiet: bool) -> None:
    """Write realistic sales and inventory CSV files into the landing folder.

    Demand follows local hour-of-day and weekday profiles, per-country size and trend, and promotions;
    customers repeat; stock is depleted by sales and refilled by restocks. Faults are injected at the
    given rates. Files appear atomically (written aside, then renamed). Ctrl-C stops cleanly.
    """
    from salespulse.simulator.run import simulate as run_simulation

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
    landing = settings.paths.landing
    if "://" in landing:
        raise click.UsageError(f"the simulator writes local folders; paths.landing is {landing!r}")

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        click.echo(f"simulate: {signal.Signals(signum).name} received, finishing the current file", err=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    run_simulation(settings.simulator, Path(landing), history_days=history_days, seconds=seconds, stop=stop,
                   say=_say, end_ms=end, progress=not quiet and sys.stderr.isatty())
