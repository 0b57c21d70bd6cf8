"""Settings and profile rules of the ingest API and privacy: failing early with the key's name."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from salespulse.profiles import ProfileError, SourceProfile, customer_id_salt, load_profile
from salespulse.settings import PrivacySettings, SettingsError, load_settings


def test_api_tokens_from_the_environment_masked_and_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_API__TOKENS", '["0123456789abcdefXYZ", "another-long-token-42"]')
    settings = load_settings()
    assert [t.get_secret_value() for t in settings.api.tokens] == ["0123456789abcdefXYZ", "another-long-token-42"]
    assert "0123456789abcdefXYZ" not in str(settings.model_dump(mode="json"))
    monkeypatch.setenv("SALESPULSE_API__TOKENS", '["short"]')
    with pytest.raises(SettingsError, match=r"invalid setting api.tokens: every token needs at least 16"):
        load_settings()


def test_hash_customer_id_needs_a_customer_column_and_a_salt() -> None:
    with pytest.raises(ValueError, match=r"hash_customer_id needs columns\.customer_id"):
        SourceProfile(name="x", event="inventory", hash_customer_id=True,
                      columns={c: c for c in ("event_time", "country", "product", "kind", "quantity")})
    hashing = load_profile("canonical").model_copy(update={"hash_customer_id": True})
    with pytest.raises(ProfileError, match="SALESPULSE_PRIVACY__CUSTOMER_ID_SALT"):
        customer_id_salt(hashing, PrivacySettings())
    with pytest.raises(ProfileError):
        customer_id_salt(hashing, PrivacySettings(customer_id_salt=SecretStr("")))
    assert customer_id_salt(hashing, PrivacySettings(customer_id_salt=SecretStr("s3cret"))) == "s3cret"
    assert customer_id_salt(load_profile("canonical"), PrivacySettings()) is None


def test_retention_days_not_negative() -> None:
    with pytest.raises(SettingsError, match=r"privacy\.retention_days"):
        load_settings(overrides={"privacy.retention_days": -1})
