"""The users file and `salespulse users`: hashed passwords, mode 0600, canonical countries, clear errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from salespulse.cli import main
from salespulse.users import UserError, UserStore, check_login, parse_countries, read_users

SECRET = "s3cret-Passw0rd"


def users_cli(path: Path, *args: str, stdin: str | None = None):
    return CliRunner().invoke(main, ["users", *args, "--users-file", str(path)], input=stdin)


def test_users_add_stores_only_a_hash_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "users.json"
    result = users_cli(path, "add", "anna", "--countries", "france,Germany", "--password-stdin", stdin=SECRET + "\n")
    assert result.exit_code == 0, result.output
    assert "anna: France, Germany" in result.output
    text = path.read_text()
    assert SECRET not in text and "scrypt:" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name != "users.json"]  # no temporary file left behind
    user = read_users(path)["anna"]
    assert user.countries == ("France", "Germany") and user.allowed_countries == ("France", "Germany")
    assert check_login(read_users(path), "anna", SECRET) == user
    assert check_login(read_users(path), "anna", SECRET + "x") is None
    assert check_login(read_users(path), "nobody", SECRET) is None


def test_users_add_prompts_twice_and_admin_sees_all(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    result = users_cli(path, "add", "boss", "--admin", stdin=f"{SECRET}\n{SECRET}\n")
    assert result.exit_code == 0, result.output
    assert read_users(path)["boss"].allowed_countries is None
    mismatch = users_cli(path, "add", "eve", "--admin", stdin=f"{SECRET}\nother-password\n{SECRET}\n{SECRET}\n")
    assert "do not match" in mismatch.output


def test_users_list_and_remove(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    for name, country in (("a1", "USA"), ("b2", "Mexico")):
        users_cli(path, "add", name, "--countries", country, "--password-stdin", stdin=SECRET)
    listed = users_cli(path, "list")
    assert listed.output.splitlines() == ["a1: USA", "b2: Mexico"]
    assert SECRET not in listed.output and "scrypt" not in listed.output
    assert users_cli(path, "remove", "a1").exit_code == 0
    assert set(read_users(path)) == {"b2"}
    missing = users_cli(path, "remove", "a1")
    assert missing.exit_code == 2 and "no user 'a1'" in missing.output


@pytest.mark.parametrize(("args", "message"), [
    (("add", "x", "--countries", "Spain,France"), "unknown country Spain; countries are USA, Canada, France"),
    (("add", "x"), "give --countries"),
    (("add", "bad name", "--countries", "USA"), "must be 1-64 letters"),
    (("add", "x", "--admin", "--countries", "USA"), "leave out --countries"),
])
def test_users_add_rejects_bad_input_clearly(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = users_cli(tmp_path / "users.json", *args, "--password-stdin", stdin=SECRET)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "users.json").exists()


def test_short_password_is_refused(tmp_path: Path) -> None:
    result = users_cli(tmp_path / "users.json", "add", "x", "--countries", "USA", "--password-stdin", stdin="short")
    assert result.exit_code == 2 and "at least 8 characters" in result.output


def test_parse_countries_is_canonical() -> None:
    assert parse_countries(" germany , FRANCE,France") == ("France", "Germany")
    with pytest.raises(UserError, match="unknown country Atlantis"):
        parse_countries("Atlantis")


def test_user_store_rereads_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    store = UserStore(path)
    assert store.users() == {}
    users_cli(path, "add", "late", "--countries", "Canada", "--password-stdin", stdin=SECRET)
    assert store.get("late").countries == ("Canada",)
    users_cli(path, "remove", "late")
    assert store.get("late") is None
