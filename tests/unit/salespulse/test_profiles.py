from __future__ import annotations

from pathlib import Path

import pytest

from salespulse.profiles import PROFILES_DIR, ProfileError, load_profile


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return str(path)


def test_profiles_shipped_ones_load() -> None:
    names = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
    assert names == ["canonical", "canonical_inventory", "financial_sample"]
    assert load_profile("financial_sample").columns["country"] == "Country"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("event: sales\ncolumns: {country: C}\ncolour: red\n", "colour: unknown key"),
        ("event: refunds\ncolumns: {}\n", "event: Input should be 'sales' or 'inventory'"),
        ("event: sales\ncolumns: {revenue: R}\n", "columns: revenue not a sales column"),
        ("event: sales\ncolumns: {country: C}\n", "no source, constant or derivation for required column(s): "
                                                  "discount_band, event_time, product, segment, units_sold"),
        ("event: sales\ncolumns: {sales: S}\nblank_is_zero: [country]\n", "only money columns"),
        ("event: sales\ncolumns: [a, b]\n", "columns: Input should be a valid dictionary"),
        ("- a\n", "must be a mapping"),
    ],
)
def test_profiles_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ProfileError) as err:
        load_profile(write(tmp_path, text))
    assert message in str(err.value)
    assert "p.yaml" in str(err.value)


def test_profiles_unknown_name_lists_shipped() -> None:
    with pytest.raises(ProfileError, match="shipped profiles: canonical, canonical_inventory, financial_sample"):
        load_profile("nope")


def test_profiles_error_for_a_check_across_keys_reads_as_documented(tmp_path: Path) -> None:
    """docs/profiles.md quotes this message; a check across keys has no key of its own to put before it."""
    with pytest.raises(ProfileError) as err:
        load_profile(write(tmp_path, "event: sales\ncolumns: {units: Qty}\n"))
    expected = f"profile {tmp_path / 'p.yaml'}: columns: units not a sales column (columns: cogs,"
    assert str(err.value).startswith(expected)
