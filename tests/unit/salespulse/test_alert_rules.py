"""Alert rules as settings (bad ones fail naming the key) and their evaluation on tiny frames, checked against
numbers worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from salespulse.alerts import AlertInputs, alert_transitions, evaluate_alerts
from salespulse.settings import SettingsError, load_settings

NOW = datetime(2026, 9, 21, 15, 20)


def rules(*items: dict) -> list:
    return load_settings(overrides={"alerts.rules": list(items)}).alerts.rules


@pytest.mark.parametrize(("rule", "message"), [
    ({"name": "a", "kind": "kpi_threshold", "kpi": "active_customers", "below": 1, "window_hours": 2},
     "alerts.rules.0.kpi_threshold.kpi: must be a KPI computed from hourly totals"),
    ({"name": "a", "kind": "kpi_threshold", "kpi": "orders", "below": 1, "above": 5, "window_hours": 2},
     "set exactly one of below and above"),
    ({"name": "a", "kind": "stockout", "within_hours": 5, "countries": ["Atlantis"]}, "not a country: Atlantis"),
    ({"name": "a", "kind": "sometimes"}, "alerts.rules.0"),
])
def test_alert_rules_bad_rule_names_key(rule: dict, message: str) -> None:
    with pytest.raises(SettingsError, match="invalid setting") as err:
        rules(rule)
    assert message in str(err.value)


def test_alert_rules_duplicate_names_and_bad_webhook_rejected() -> None:
    stale = {"name": "x", "kind": "stream_stale", "minutes": 5}
    with pytest.raises(SettingsError, match="repeated: x"):
        rules(stale, stale)
    with pytest.raises(SettingsError, match=r"alerts\.webhooks\.0\.url: .*http"):
        load_settings(overrides={"alerts.webhooks": [{"name": "w", "url": "file:///etc/passwd"}]})


def test_alert_rules_items_per_hour_window() -> None:
    """Units over the window's complete hours (13:00 and 14:00 of 15:20), divided by its 2 hours."""
    hourly = pd.DataFrame({"hour": [datetime(2026, 9, 21, h) for h in (12, 13, 14, 15)], "country": ["USA"] * 4,
                           "units_sold": [100.0, 3.0, 5.0, 100.0]})
    empty = pd.DataFrame()
    watched = rules({"name": "slow", "kind": "kpi_threshold", "kpi": "items_per_hour", "below": 4.5,
                     "window_hours": 2, "countries": ["USA", "Mexico"]})
    fired = evaluate_alerts(AlertInputs(hourly, empty, empty, empty, None), watched, NOW)
    assert [(a.country, a.value) for a in fired] == [("USA", 4.0), ("Mexico", 0.0)]  # (3 + 5) / 2; no sales


def test_alert_transitions_cooldown_counts_from_last_resolution() -> None:
    stale = rules({"name": "stale", "kind": "stream_stale", "minutes": 10})
    inputs = AlertInputs(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), NOW - timedelta(hours=1))
    history = alert_transitions(pd.DataFrame(), evaluate_alerts(inputs, stale, NOW), NOW, timedelta(minutes=30))
    assert history[["status", "notified"]].values.tolist() == [["firing", True]]
    resolved = alert_transitions(history, [], NOW + timedelta(minutes=1), timedelta(minutes=30))
    assert resolved[["status", "notified"]].values.tolist() == [["resolved", True]]
    history = pd.concat([history, resolved], ignore_index=True)
    for minutes, notified in ((30, False), (31, True)):  # 29 and 30 minutes after the resolution
        later = NOW + timedelta(minutes=minutes)
        again = alert_transitions(history, evaluate_alerts(inputs, stale, later), later, timedelta(minutes=30))
        assert again[["status", "notified"]].values.tolist() == [["firing", notified]]
