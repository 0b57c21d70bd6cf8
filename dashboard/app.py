"""The Dash app: ``create_app(settings)`` for the CLI and tests; ``app`` and ``server`` for gunicorn
(``gunicorn dashboard.app:server``), built on first access from the default settings (file and
``SALESPULSE_*`` environment), so importing this module does no I/O."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from dash import Dash

from dashboard import callbacks
from dashboard.data import LakeRepository
from dashboard.ingest_api import register_ingest_api
from dashboard.layout import render_page
from dashboard.monitoring import register_monitoring
from salespulse.settings import Settings, load_settings

ASSETS = Path(__file__).resolve().parent / "assets"  # the Bootswatch "flatly" theme, served locally (no CDN)


def create_app(settings: Settings, repo: LakeRepository | None = None) -> Dash:
    repo = repo or LakeRepository(settings.paths.lake, settings.paths.models)
    app = Dash(__name__, title="SalesPulse", assets_folder=str(ASSETS), suppress_callback_exceptions=True,
               update_title=None)
    app.layout = partial(render_page, settings.dashboard)  # a function: rebuilt per page load (PITFALLS 30)
    callbacks.register(app, repo, settings.dashboard)
    register_monitoring(app.server, settings, repo)
    register_ingest_api(app.server, settings)
    return app


def __getattr__(name: str) -> Any:
    """``app`` and ``server`` on first access, for gunicorn (one app per worker process)."""
    if name not in ("app", "server"):
        raise AttributeError(name)
    built = create_app(load_settings())
    globals().update(app=built, server=built.server)
    return globals()[name]
