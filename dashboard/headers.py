"""Security headers on every response of the Flask server, compatible with Dash (docs/security.md).

The Content-Security-Policy allows scripts from the app itself plus, by hash, Dash's one inline script (the
renderer's start, ``Dash.csp_hashes``); no inline or third-party scripts otherwise. Styles allow
'unsafe-inline': Dash components and Plotly set style attributes and inject <style> elements at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask, Response, request

# Responses that carry sales figures (the layout holds the first tab's): kept out of browser and proxy caches.
DATA_PATHS = frozenset({"/_dash-layout", "/_dash-update-component"})


def content_security_policy(script_hashes: Sequence[str]) -> str:
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],  # Plotly's modebar and the DataTable use data: SVG images
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def security_headers(script_hashes: Sequence[str], production: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(script_hashes),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",  # for browsers without CSP frame-ancestors
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if production:  # production is served over HTTPS (docs/security.md): browsers must not fall back to HTTP
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


def install_security_headers(server: Flask, script_hashes: Sequence[str], production: bool) -> None:
    headers = security_headers(script_hashes, production)

    @server.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if request.path in DATA_PATHS:
            response.headers["Cache-Control"] = "no-store"
        return response
