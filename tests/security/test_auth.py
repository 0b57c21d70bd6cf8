"""Login, logout, rate limits, production start-up checks, security headers and CSV-safe values, on the real
Flask server of the app (test client; no lake needed: nothing here reads data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
from click.testing import CliRunner

from dashboard.app import create_app
from dashboard.auth import LOGIN_FAILED, AuthSetupError, is_open_path, safe_next
from dashboard.callbacks import spreadsheet_safe
from salespulse.cli import main
from salespulse.settings import load_settings
from tests.accounts import PASSWORD, login, write_accounts
from tests.servers import serve


def make_settings(tmp_path: Path, **overrides: object):
    return load_settings(overrides={"paths.lake": str(tmp_path / "lake"), "paths.models": str(tmp_path / "models"),
                                    "auth.users_file": str(tmp_path / "users.json"), **overrides})


@pytest.fixture
def server(tmp_path: Path):
    write_accounts(tmp_path / "users.json", {"anna": ("France",), "boss": None})
    return create_app(make_settings(tmp_path, **{"auth.login_rate_limit": "3 per minute"})).server


def test_login_form_then_session_then_logout(server) -> None:
    client = server.test_client()
    page = client.get("/login?next=/%3Frange%3D7d")
    assert page.status_code == 200 and b'name="password"' in page.data and b'value="/?range=7d"' in page.data
    assert client.get("/_dash-layout").status_code == 401
    done = login(client, "anna", next="/?range=7d")
    assert done.status_code == 302 and done.headers["Location"] == "/?range=7d"
    cookie = done.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # not production
    assert client.get("/_dash-layout").status_code == 200
    out = client.post("/logout")
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert client.get("/_dash-layout").status_code == 401


def test_wrong_password_is_401_with_a_generic_message(server) -> None:
    client = server.test_client()
    for name in ("anna", "nobody"):  # same answer for a wrong password and an unknown user
        failed = login(client, name, PASSWORD + "x")
        assert failed.status_code == 401
        assert LOGIN_FAILED.encode() in failed.data and b"Set-Cookie" not in failed.data
    assert client.get("/_dash-layout").status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x",
                                    "evil.example", "/.//evil.example", "/%2E//evil.example", "/x/..//evil.example",
                                    "/\t/evil.example", "/x\\..\\\\evil.example"])
def test_login_redirects_only_to_same_site_paths(server, target: str) -> None:
    done = login(server.test_client(), "anna", next=target)
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert safe_next(target) == "/"
    assert safe_next("/?range=7d&country=France") == "/?range=7d&country=France"


@pytest.fixture
def live(server) -> Iterator[str]:
    """The same app on a real threaded HTTP server: redirects and cookies as a browser gets them."""
    yield from serve(server)


def live_login(base: str, target: str) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    done = session.post(base + "login", data={"username": "anna", "password": PASSWORD, "next": target},
                        allow_redirects=False, timeout=30)
    assert done.status_code == 302, done.text[:300]
    return session, done


@pytest.mark.parametrize(("target", "location"), [
    ("/.//evil.example", "/"), ("/%2e%2e//evil.example", "/"), ("/x/./..//evil.example", "/"),
    ("/?range=7d&country=France", "/?range=7d&country=France"), ("/", "/"),
])
def test_login_redirect_on_a_real_server_stays_on_the_site(live: str, target: str, location: str) -> None:
    _, done = live_login(live, target)
    assert done.headers["Location"] == location


def test_logout_is_post_only_on_a_real_server(live: str) -> None:
    session, _ = live_login(live, "/")
    assert session.get(live + "_dash-layout", timeout=30).status_code == 200
    # a GET, as a link or redirect from another site would send it with the session cookie, ends nothing
    assert session.get(live + "logout", allow_redirects=False, timeout=30).status_code == 405
    assert session.get(live + "_dash-layout", timeout=30).status_code == 200
    out = session.post(live + "logout", allow_redirects=False, timeout=30)
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert session.get(live + "_dash-layout", timeout=30).status_code == 401


def test_rate_limit_per_client_and_per_user(server) -> None:
    client = server.test_client()
    codes = [login(client, "anna", "wrong-password").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    # the same user from another address: still limited (per user name) even with the right password
    other = server.test_client()
    assert login(other, "anna", address="10.1.1.1").status_code == 429
    # the first address is limited for every user name
    assert login(client, "boss").status_code == 429
    # another user from another address is not affected
    assert login(other, "boss", address="10.1.1.2").status_code == 302


def test_successful_logins_do_not_count(server) -> None:
    client = server.test_client()
    assert [login(client, "boss").status_code for _ in range(5)] == [302] * 5


def test_changing_a_password_ends_open_sessions(server, tmp_path: Path) -> None:
    client = server.test_client()
    login(client, "anna")
    assert client.get("/_dash-layout").status_code == 200
    write_accounts(tmp_path / "users.json", {"anna": ("France",)})  # same password, new salt: a new hash
    assert client.get("/_dash-layout").status_code == 401


def test_production_refuses_to_start_without_secret_or_users(tmp_path: Path) -> None:
    with pytest.raises(AuthSetupError, match="SALESPULSE_AUTH__SECRET_KEY"):
        create_app(make_settings(tmp_path, **{"dashboard.production": True}))
    with pytest.raises(AuthSetupError, match="no default account"):
        create_app(make_settings(tmp_path, **{"dashboard.production": True, "auth.secret_key": "k" * 32}))
    write_accounts(tmp_path / "users.json", {"boss": None})
    app = create_app(make_settings(tmp_path, **{"dashboard.production": True, "auth.secret_key": "k" * 32}))
    cookie = login(app.server.test_client(), "boss").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_dashboard_command_says_what_is_missing_in_production(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "_manifest.json").write_text("{}")
    monkeypatch.setenv("SALESPULSE_DASHBOARD__PRODUCTION", "true")
    result = CliRunner().invoke(main, ["dashboard", "--lake", str(tmp_path / "lake")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "salespulse: production mode needs a session secret: set SALESPULSE_AUTH__SECRET_KEY to a long random value "
        "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"]


def test_secret_key_is_not_printed_by_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SALESPULSE_AUTH__SECRET_KEY", "do-not-print-me")
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0 and "do-not-print-me" not in result.output and "secret_key" in result.output


def test_security_headers_on_every_kind_of_response(server) -> None:
    client = server.test_client()
    responses = [client.get("/login"), client.get("/", headers={"Accept": "text/html"}), client.get("/_dash-layout"),
                 login(client, "anna", "wrong-password")]
    login(client, "anna")
    responses += [client.get("/"), client.get("/_dash-layout"), client.get("/no-such-page")]
    for response in responses:
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]  # scripts: self + hashes only
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
    assert responses[-2].headers["Cache-Control"] == "no-store"  # the logged-in layout holds figures


def test_open_paths_are_exactly_the_public_and_self_authenticating_ones() -> None:
    assert all(is_open_path(p) for p in ("/login", "/healthz", "/readyz", "/metrics", "/api/v1/sales"))
    assert not any(is_open_path(p) for p in ("/", "/login/../_dash-layout", "/loginx", "/api", "/metrics/x",
                                             "/_dash-update-component", "/assets/x.css"))


def test_spreadsheet_safe_neutralises_formulas_and_keeps_numbers() -> None:
    frame = pd.DataFrame({"product": ["=1+2", "+A1", "-cmd", "@SUM(A1)", "\tx", "\rx", "Velo", "a=b"],
                          "profit": [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})
    safe = spreadsheet_safe(frame)
    assert list(safe["product"]) == ["'=1+2", "'+A1", "'-cmd", "'@SUM(A1)", "'\tx", "'\rx", "Velo", "a=b"]
    assert list(safe["profit"]) == [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert safe["profit"].dtype == float
