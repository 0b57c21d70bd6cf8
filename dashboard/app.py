"""The Dash app: ``create_app(settings)`` for the CLI and tests; ``app`` and ``server`` for gunicorn
(``gunicorn dashboard.app:server``), built on first access from the default settings (file and
``SALESPULSE_*`` environment), so importing this module does no I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dash import Dash, html
from flask import has_request_context, request

from dashboard import callbacks, targets
from dashboard.auth import install_auth, viewer, viewer_scope
from dashboard.data import LakeRepository
from dashboard.headers import install_security_headers
from dashboard.heap import limit_arenas
from dashboard.ingest_api import register_ingest_api
from dashboard.monitoring import register_monitoring
from dashboard.response_cache import ResponseCache, install_response_cache
from salespulse.settings import Settings, load_settings
from salespulse.storage import open_storage

ASSETS = Path(__file__).resolve().parent / "assets"  # the Bootswatch "flatly" theme, served locally (no CDN)


def create_app(settings: Settings, repo: LakeRepository | None = None) -> Dash:
    """The app behind its login (docs/security.md). Raises dashboard.auth.AuthSetupError when production mode
    lacks a session secret or users."""
    limit_arenas()  # before the repository's DuckDB and the server start their threads
    lake = open_storage(settings.paths.lake, settings.hdfs)  # local folder, or HDFS through WebHDFS
    repo = repo or LakeRepository(lake, settings.paths.models, settings.dashboard.query_memory_mb)
    app = Dash(__name__, title="SalesPulse", assets_folder=str(ASSETS), suppress_callback_exceptions=True,
               update_title=None)
    # First, so its request ids and timings cover the login guard's 401s too. Its own reader sees every country:
    # probes and /metrics are system-wide and guarded by their own token, not by a dashboard session.
    register_monitoring(app.server, settings, LakeRepository(lake, settings.paths.models), repo,
                        app.callback_map.keys())
    install_auth(app.server, settings.auth, settings.dashboard.production)

    def layout() -> html.Div:  # a function: rebuilt per page load, for the logged-in user
        # The renderer fetches the layout from the page itself: the Referer (same-origin policy) is the page's
        # address, whose query holds the filters of a shared link.
        search = urlsplit(request.referrer).query if has_request_context() and request.referrer else None
        return callbacks.page(repo, viewer_scope(), viewer(), search, settings.dashboard)

    app.layout = layout
    callbacks.register(app, repo, settings.dashboard)
    targets.register(app, repo, settings.dashboard)
    if settings.dashboard.response_cache_entries:  # after the login guard: only logged-in requests reach it
        install_response_cache(app.server, ResponseCache(settings.dashboard.response_cache_entries),
                               repo.data_version, lambda: viewer_scope().countries, callbacks.CACHEABLE_OUTPUTS,
                               callbacks.READ_WARNINGS.values())
    install_security_headers(app.server, app.csp_hashes(), settings.dashboard.production)
    register_ingest_api(app.server, settings)
    return app


def __getattr__(name: str) -> Any:
    """``app`` and ``server`` on first access, for gunicorn (one app per worker process)."""
    if name not in ("app", "server"):
        raise AttributeError(name)
    built = create_app(load_settings())
    globals().update(app=built, server=built.server)
    return globals()[name]
