"""Production serving of the dashboard with gunicorn: the options ``conf/gunicorn.conf.py`` applies, and the
command and environment ``salespulse dashboard --prod`` execs. Pure: no I/O, no imports of gunicorn or Dash."""

from __future__ import annotations

from typing import Any

from salespulse.settings import CONFIG_ENV_VAR, ENV_PREFIX, PROJECT_ROOT, DashboardSettings

GUNICORN_CONFIG = PROJECT_ROOT / "conf" / "gunicorn.conf.py"
WSGI_APP = "dashboard.app:server"


def gunicorn_options(dashboard: DashboardSettings) -> dict[str, Any]:
    """gunicorn settings from the dashboard section, by gunicorn's own names."""
    return {
        "bind": [f"{dashboard.host}:{dashboard.port}"],
        "workers": dashboard.workers,
        # gthread: a worker serves `threads` requests at once (the page's polls and callbacks are short).
        "worker_class": "gthread",
        "threads": dashboard.threads,
        "timeout": dashboard.timeout_seconds,
        "graceful_timeout": dashboard.graceful_timeout_seconds,
        "keepalive": 5,
        # Each worker builds its own app after the fork (dashboard.app builds it on first access): threads and
        # DuckDB connections made before a fork do not work in the children.
        "preload_app": False,
        "forwarded_allow_ips": dashboard.forwarded_allow_ips,
        # No gunicorn access log: the app writes one JSON line per request itself, with its request id and
        # without query strings (dashboard/monitoring.py); a second line per request would only duplicate it.
        "accesslog": None,
        "errorlog": "-",
        "proc_name": "salespulse-dashboard",
        # gunicorn >= 25 opens a control socket at one fixed path per user: a second instance on the machine
        # (tests, a benchmark) would take it over. Signals (TERM, HUP, TTIN/TTOU) manage the master instead.
        "control_socket_disable": True,
    }


def gunicorn_command(python: str) -> list[str]:
    """The command that serves the app with the project's gunicorn config, under the given interpreter."""
    return [python, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG), WSGI_APP]


def serving_environment(overrides: dict[str, Any], config: str | None) -> dict[str, str]:
    """Environment variables that hand the command's flags (dotted keys) and ``--config`` file to gunicorn's
    config and to the app it loads: both build their settings from the file and ``SALESPULSE_*`` variables.
    Production mode is always on."""
    env = {ENV_PREFIX + key.upper().replace(".", "__"): str(value)
           for key, value in overrides.items() if value is not None}
    env[ENV_PREFIX + "DASHBOARD__PRODUCTION"] = "true"
    if config is not None:
        env[CONFIG_ENV_VAR] = str(config)
    return env
