"""The callback response cache on its own: one computation per key under concurrent requests, a bound on its
entries, a new data version dropping the old one's, and which callbacks and responses it recognises."""

from __future__ import annotations

import threading
import time

from dash import Output

from dashboard import callbacks, ids
from dashboard.response_cache import Lookup, ResponseCache, callback_outputs, read_succeeded

WARNING = Output(ids.warning("overview"), "children")


def ask_at_once(cache: ResponseCache, version: str, key: str, compute: bytes | None, requests: int = 8) -> list[Lookup]:
    """``requests`` threads look ``key`` up together; the one that claims it stores ``compute`` (None: stores
    nothing, as for a failed read) after a pause long enough for every other thread to be waiting."""
    start, answers = threading.Barrier(requests), []

    def request() -> None:
        start.wait()
        found = cache.lookup(version, key)
        answers.append(found)
        if found.claimed:
            time.sleep(0.3)
            if compute is not None:
                cache.store(version, key, compute)
            cache.release(key)

    threads = [threading.Thread(target=request) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_concurrent_identical_requests_compute_once_and_the_others_get_its_body() -> None:
    answers = ask_at_once(ResponseCache(8), "v1", "overview", b'{"response": 1}')
    assert sum(a.claimed for a in answers) == 1
    assert [a.body for a in answers if not a.claimed] == [b'{"response": 1}'] * 7


def test_waiters_compute_their_own_when_the_first_response_was_not_kept() -> None:
    cache = ResponseCache(8)
    answers = ask_at_once(cache, "v1", "overview", None)
    # one computed and kept nothing (a failed read); the seven waiters compute theirs at once, without a claim
    assert sum(a.claimed for a in answers) == 1
    assert [a for a in answers if not a.claimed] == [Lookup()] * 7
    assert cache.lookup("v1", "overview").claimed  # the next request tries again


def test_entries_are_bounded_least_recently_used_out_first() -> None:
    cache = ResponseCache(2)
    for key in ("a", "b"):
        assert cache.lookup("v1", key).claimed
        cache.store("v1", key, key.encode())
        cache.release(key)
    assert cache.lookup("v1", "a").body == b"a"  # a is now the most recently used
    assert cache.lookup("v1", "c").claimed
    cache.store("v1", "c", b"c")
    cache.release("c")
    assert len(cache) == 2
    assert cache.lookup("v1", "a").body == b"a" and cache.lookup("v1", "c").body == b"c"
    assert cache.lookup("v1", "b").claimed  # evicted


def test_a_new_version_drops_the_old_entries_and_never_goes_back() -> None:
    cache = ResponseCache(8)
    cache.lookup("v1", "k1")
    cache.store("v1", "k1", b"old")
    cache.release("k1")
    assert cache.lookup("v2", "k2").claimed and len(cache) == 0  # published: v1's entries are gone
    cache.store("v2", "k2", b"new")
    cache.release("k2")
    # a request that read the manifest just before the publish: answered uncached, and v2 stays
    assert cache.lookup("v1", "k1") == Lookup()
    cache.store("v1", "k1", b"old")
    assert cache.lookup("v2", "k2").body == b"new" and len(cache) == 1


def test_callback_outputs_names_each_output_of_the_request() -> None:
    pie = str(Output(ids.clickable(ids.COUNTRY_PIE, "country"), "figure"))
    assert callback_outputs(f"..overview-kpis.children...{pie}...overview-read-warning.children..") == {
        "overview-kpis.children", pie, "overview-read-warning.children"}
    assert callback_outputs("data-version.data") == {"data-version.data"}
    assert callback_outputs(None) == set()


def test_cacheable_callbacks_are_the_filter_sync_and_four_tabs() -> None:
    names = {str(o) for o in callbacks.CACHEABLE_OUTPUTS}
    assert names == {"filters-store.data", "overview-read-warning.children", "trends-read-warning.children",
                     "customers-read-warning.children", "inventory-read-warning.children"}
    assert str(Output(ids.HEADER_FRESHNESS, "children")) not in names


def test_read_succeeded_only_when_every_warning_is_set_and_empty() -> None:
    assert read_succeeded({"multi": True, "response": {"overview-read-warning": {"children": []}}}, [WARNING])
    failed = {"props": {"children": "Could not read the latest data"}, "type": "Alert"}
    assert not read_succeeded({"response": {"overview-read-warning": {"children": failed}}}, [WARNING])
    assert not read_succeeded({"response": {"overview-kpis": {"children": []}}}, [WARNING])  # warning missing
    assert read_succeeded({"response": {"filters-store": {"data": "?range=30d"}}}, [])  # no warning to check
    assert not read_succeeded([], [])
