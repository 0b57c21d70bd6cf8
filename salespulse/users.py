"""Dashboard users: who may log in and which countries' rows each may see.

One JSON file (``auth.users_file``), written only by ``salespulse users`` (atomically, mode 0600), holding
password hashes (werkzeug scrypt), never passwords. The dashboard reads it through :class:`UserStore`, which
re-reads it when it changes, so an added or removed user takes effect without a restart.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.security import check_password_hash, generate_password_hash

from salespulse.schema import COUNTRIES

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MIN_PASSWORD_LENGTH = 8
# Checked against when a user name is unknown, so a failed login costs the same time either way.
_DUMMY_HASH = generate_password_hash("salespulse-no-such-user", method="scrypt")


class UserError(ValueError):
    """A bad user name, password, country list or users file, with a one-line message."""


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str
    countries: tuple[str, ...]  # empty for admins
    admin: bool = False

    @property
    def allowed_countries(self) -> tuple[str, ...] | None:
        """The countries whose rows this user may see; None means every country (admins)."""
        return None if self.admin else self.countries

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def describe(self) -> str:
        return f"{self.name}: {'admin (all countries)' if self.admin else ', '.join(self.countries)}"


def parse_countries(text: str | None) -> tuple[str, ...]:
    """``France,Germany`` as canonical country names, in the canonical order; unknown names are an error."""
    names = [c.strip() for c in (text or "").split(",") if c.strip()]
    by_folded = {c.casefold(): c for c in COUNTRIES}
    unknown = [n for n in names if n.casefold() not in by_folded]
    if unknown:
        raise UserError(f"unknown country {', '.join(unknown)}; countries are {', '.join(COUNTRIES)}")
    chosen = {by_folded[n.casefold()] for n in names}
    return tuple(c for c in COUNTRIES if c in chosen)


def build_user(name: str, password: str, countries: tuple[str, ...], admin: bool) -> User:
    """A new user with a hashed password; a non-admin needs at least one country."""
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(f"user name {name!r} must be 1-64 letters, digits or . _ @ -")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if not admin and not countries:
        raise UserError("give --countries (e.g. --countries France,Germany) or --admin")
    return User(name, generate_password_hash(password, method="scrypt"), () if admin else countries, admin)


def check_login(users: dict[str, User], name: str, password: str) -> User | None:
    """The user whose name and password these are, or None (same work whether or not the name exists)."""
    user = users.get(name)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if user.check_password(password) else None


def read_users(path: str | Path) -> dict[str, User]:
    """The users of ``path``, by name; an absent file holds none."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as err:
        raise UserError(f"users file {path} is not valid JSON (line {err.lineno})") from None
    try:
        return {name: User(name, entry["password_hash"], tuple(entry.get("countries", ())), bool(entry.get("admin")))
                for name, entry in data["users"].items()}
    except (KeyError, TypeError, AttributeError):
        raise UserError(f"users file {path} must hold {{\"users\": {{NAME: {{\"password_hash\": ...}}}}}}") from None


def write_users(path: str | Path, users: dict[str, User]) -> None:
    """Replace ``path`` atomically (temporary file in the same folder, then rename) with mode 0600: a reader
    never sees half a file, and only the owner can read the hashes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"users": {u.name: {"password_hash": u.password_hash, "countries": list(u.countries),
                                               "admin": u.admin} for u in sorted(users.values(), key=lambda u: u.name)}}
    descriptor, temporary = tempfile.mkstemp(prefix=".users-", dir=path.parent)  # created with mode 0600
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add_user(path: str | Path, user: User) -> bool:
    """Add or replace ``user``; True when it replaced an existing one."""
    users = read_users(path)
    existed = user.name in users
    write_users(path, users | {user.name: user})
    return existed


def remove_user(path: str | Path, name: str) -> None:
    users = read_users(path)
    if name not in users:
        raise UserError(f"no user {name!r} in {path}")
    write_users(path, {n: u for n, u in users.items() if n != name})


class UserStore:
    """The users file as the dashboard sees it: re-read when its identity (inode, size, mtime) changes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._identity: tuple[int, int, int] | None = None
        self._users: dict[str, User] = {}

    def users(self) -> dict[str, User]:
        try:
            st = os.stat(self.path)
            identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            identity = None
        with self._lock:
            if identity != self._identity:
                self._users, self._identity = (read_users(self.path) if identity else {}), identity
            return self._users

    def get(self, name: str) -> User | None:
        return self.users().get(name)
