"""Dashboard accounts for tests and benchmarks: a users file written by the project's own code, and logins
through the real /login form (Flask test client or HTTP)."""

from __future__ import annotations

from pathlib import Path

from salespulse.users import add_user, build_user

PASSWORD = "correct horse battery"


def write_accounts(path: Path, accounts: dict[str, tuple[str, ...] | None]) -> Path:
    """One user per name, all with PASSWORD; ``None`` countries make an administrator."""
    for name, countries in accounts.items():
        add_user(path, build_user(name, PASSWORD, countries or (), countries is None))
    return path


def login(client, name: str, password: str = PASSWORD, *, address: str = "127.0.0.1", **form: str):
    """POST the login form with a Flask test client from client IP ``address``; the client keeps the session
    cookie."""
    return client.post("/login", data={"username": name, "password": password, **form},
                       environ_base={"REMOTE_ADDR": address})
