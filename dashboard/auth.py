"""Login, sessions and the one guard in front of everything the Flask server serves.

``install_auth`` adds to the Dash app's Flask server: Flask-Login sessions (signed cookie, HttpOnly,
SameSite=Lax, Secure in production), ``/login`` (form, rate-limited failures) and ``POST /logout``, and a
``before_request`` guard that lets through only logged-in users and the paths of ``OPEN_PATHS``.
``viewer_scope`` is the current request's user's Scope, which callbacks pass to every lake query.
See docs/security.md.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, has_request_context, jsonify, redirect, render_template_string, request, session
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import MethodNotAllowed

from salespulse.scope import Scope
from salespulse.settings import AuthSettings
from salespulse.users import User, UserStore, check_login

# Paths the guard lets through without a session: they are public or authenticate themselves (the
# monitoring endpoints and the ingest API check their own bearer tokens). An entry ending in "/" covers every
# path under it; any other entry is one exact path.
OPEN_PATHS = ("/login", "/healthz", "/readyz", "/metrics", "/api/")
LOGIN_FAILED = "Unknown user name or wrong password."
SAME_SITE_PATH = re.compile(r"^/(?![/\\])")  # one slash, then anything but another slash or a backslash
DOT_SEGMENT = re.compile(r"^(\.|%2e){1,2}$", re.IGNORECASE)


class AuthSetupError(RuntimeError):
    """The dashboard cannot start safely (production mode without a secret key or without users)."""


class SessionUser(UserMixin):
    """A users-file entry as Flask-Login sees it. The session id carries a fingerprint of the password hash,
    so changing a user's password or removing the user ends their open sessions."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self) -> str:
        return f"{self.user.name}|{password_fingerprint(self.user)}"


def password_fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def is_open_path(path: str) -> bool:
    return any(path.startswith(p) if p.endswith("/") else path == p for p in OPEN_PATHS)


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a same-site path only (``/?range=7d``), else ``/``; never another host
    (``//evil.example``, ``https://...``, ``/\\evil``, ``/.//evil.example``)."""
    if not target or any(ord(ch) < 32 or ch in "\\\x7f" for ch in target):
        return "/"  # browsers drop control characters and read a backslash as a slash
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not SAME_SITE_PATH.match(parts.path):
        return "/"
    # Browsers remove dot segments ("." and "..", also spelled %2e): "/.//evil.example" becomes the path
    # "//evil.example", which reads as another host wherever it is used as a link again.
    if any(DOT_SEGMENT.match(segment) for segment in parts.path.split("/")):
        return "/"
    return target


def wants_html(accept: MIMEAccept) -> bool:
    """A page navigation: the browser asks for text/html by name (scripts, fetches and curl send */*)."""
    return any(mimetype == "text/html" for mimetype, _ in accept)


def viewer_scope() -> Scope:
    """Whose data the current request may read: the logged-in user's countries (all for an administrator), none
    without a logged-in user. Only inside a request: code outside one has no viewer to ask and passes its own Scope,
    so nothing ever reads as an administrator by default."""
    if not has_request_context():
        raise RuntimeError("viewer_scope() outside a request: pass the Scope the reader may see instead")
    if not current_user.is_authenticated:
        return Scope.only(())
    return Scope(current_user.user.allowed_countries)


def viewer() -> User | None:
    """The logged-in user of the current request, if any."""
    return current_user.user if has_request_context() and current_user.is_authenticated else None


def install_auth(server: Flask, settings: AuthSettings, production: bool) -> UserStore:
    """Sessions, login, logout, rate limits and the guard on ``server``. Raises AuthSetupError when production
    mode lacks a secret key or users."""
    store = UserStore(settings.users_file)
    secret = settings.secret_key.get_secret_value()
    if production and not secret:
        raise AuthSetupError("production mode needs a session secret: set SALESPULSE_AUTH__SECRET_KEY to a long "
                             "random value (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)")
    if production and not store.users():
        raise AuthSetupError(f"production mode has no default account and {settings.users_file} holds no users: "
                             "add one with `salespulse users add NAME --admin` (or --countries ...)")
    server.config.update(
        SECRET_KEY=secret or secrets.token_hex(32),  # outside production: sessions last as long as the process
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=production,
        SESSION_COOKIE_NAME="salespulse_session", PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SECURE=production,
    )
    manager = LoginManager(server)

    @manager.user_loader
    def load_user(session_id: str) -> SessionUser | None:
        name, _, fingerprint = session_id.partition("|")
        user = store.get(name)
        return SessionUser(user) if user and password_fingerprint(user) == fingerprint else None

    @server.before_request
    def require_login() -> ResponseReturnValue | None:
        # Judged on the route that matched, not the raw path: a GET to /api/... falls through to Dash's
        # catch-all page route, which must stay behind the login.
        rule = request.url_rule
        if (rule is not None and is_open_path(rule.rule)) or current_user.is_authenticated:
            return None
        if request.method == "GET" and wants_html(request.accept_mimetypes):
            target = request.full_path if request.query_string else request.path
            return redirect(f"/login?{urlencode({'next': target})}")
        return jsonify(error="authentication required", login="/login"), 401

    limiter = Limiter(get_remote_address, app=server, storage_uri=settings.rate_limit_storage,
                      key_prefix="salespulse-login", headers_enabled=True)

    def failed(response: Response) -> bool:
        return response.status_code == 401

    def login_name() -> str:
        return "user:" + request.form.get("username", "").strip().casefold()

    @limiter.limit(settings.login_rate_limit, methods=["POST"], deduct_when=failed, scope="login-ip",
                   key_func=get_remote_address)
    @limiter.limit(settings.login_rate_limit, methods=["POST"], deduct_when=failed, scope="login-user",
                   key_func=login_name)
    def login() -> ResponseReturnValue:
        target = safe_next(request.values.get("next"))
        if request.method == "GET":
            return _login_page(target, "", no_users=not store.users())
        name = request.form.get("username", "").strip()
        user = check_login(store.users(), name, request.form.get("password", ""))
        if user is None:
            return _login_page(target, LOGIN_FAILED, name=name), 401
        session.clear()  # a fresh session at login: nothing from before carries over
        session.permanent = True
        login_user(SessionUser(user))
        return redirect(target)

    def logout() -> ResponseReturnValue:
        if request.method != "POST":
            raise MethodNotAllowed(["POST"], "log out with a POST (the header's Log out button)")
        logout_user()
        session.clear()
        return redirect("/login")

    server.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    # Logging out takes a POST: another site's link or redirect is a top-level GET, which carries the SameSite=Lax
    # session cookie; its POSTs do not. GET is routed here only to answer 405 instead of Dash's catch-all page.
    server.add_url_rule("/logout", "logout", logout, methods=["GET", "POST"])
    return store


def _login_page(target: str, message: str, *, name: str = "", no_users: bool = False) -> str:
    """The login form (Jinja autoescapes every value). Styled inline: the app's assets are behind the login."""
    return render_template_string(LOGIN_PAGE, target=target, message=message, name=name, no_users=no_users)


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>SalesPulse · log in</title>
<style>
body { margin: 0; font-family: Lato, "Helvetica Neue", Arial, sans-serif; background: #ecf0f1; color: #212529; }
header { background: #2c3e50; color: #fff; padding: 1rem 1.5rem; font-size: 1.25rem; }
main { display: flex; justify-content: center; padding: 3rem 1rem; }
form { background: #fff; border-radius: .375rem; box-shadow: 0 .125rem .25rem rgba(0,0,0,.075); padding: 1.5rem;
       width: 100%; max-width: 22rem; }
label { display: block; font-weight: bold; font-size: .875rem; margin: .75rem 0 .25rem; }
input { width: 100%; box-sizing: border-box; padding: .5rem .75rem; border: 1px solid #dee2e6; border-radius: .375rem;
        font-size: 1rem; }
button { margin-top: 1.25rem; width: 100%; padding: .5rem; border: 0; border-radius: .375rem; background: #2c3e50;
         color: #fff; font-size: 1rem; cursor: pointer; }
.alert { background: #fadbd8; color: #78281f; border-radius: .375rem; padding: .5rem .75rem; font-size: .9rem; }
.muted { color: #6c757d; font-size: .85rem; margin-top: 1rem; }
</style></head>
<body><header><b>SalesPulse</b> <span style="font-weight: 300">executive dashboard</span></header>
<main><form method="post" action="/login">
<h1 style="font-size: 1.25rem; margin-top: 0">Log in</h1>
{% if message %}<div class="alert" role="alert">{{ message }}</div>{% endif %}
<input type="hidden" name="next" value="{{ target }}">
<label for="username">User name</label>
<input id="username" name="username" autocomplete="username" value="{{ name }}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
{% if no_users %}<p class="muted">No users yet: an administrator adds them with
<code>salespulse users add NAME --countries France</code> (or <code>--admin</code>).</p>{% endif %}
</form></main></body></html>
"""
