"""Response cache for the dashboard's deterministic Dash callbacks, per process (each gunicorn worker has one).

After a publish every open page asks for the same few callback results at once: the same request body (filters,
data version, trigger) from viewers who see the same countries. ``LakeRepository`` computes each query once per
data version, but Dash would still run the callback body and JSON-encode its figures, cards and tables for every
request, and that CPU holds the GIL the cheap version checks of the same worker queue behind. This cache keeps the
response bytes of the opt-in callbacks (``dashboard.callbacks.CACHEABLE_OUTPUTS``), keyed by the sha256 of the raw
request body, the viewer's visible countries (row-level security: one set of countries never gets another's
response) and the data version when the request arrived. Installed with Flask hooks on
``POST /_dash-update-component``, after the login guard, so only logged-in requests reach it. docs/dashboard.md.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Any

from dash import Output
from flask import Flask, Response, g, request

CALLBACK_PATH = "/_dash-update-component"
CACHE_HEADER = "X-SalesPulse-Cache"  # hit or miss, on the responses of cacheable callbacks
# Versions replaced by a newer one, remembered so that a request that read the version just before a publish
# neither brings the old version back (which would drop the new one's entries) nor stores its response.
RETIRED_VERSIONS = 16


@dataclass(frozen=True)
class Lookup:
    """What the cache gives a request: the cached body, or the duty to compute it (``claimed``: store or release
    it afterwards), or neither (compute without caching)."""

    body: bytes | None = None
    claimed: bool = False


class ResponseCache:
    """Response bodies per key for the current data version: at most ``max_entries`` (least recently used out
    first), thread-safe, each key computed by one request at a time (the others wait for its result)."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._version: str | None = None
        self._retired: deque[str] = deque(maxlen=RETIRED_VERSIONS)
        self._building: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()

    def lookup(self, version: str, key: Hashable) -> Lookup:
        with self._lock:
            if version != self._version:
                if version in self._retired:  # read just before a publish: answer it, but do not go back
                    return Lookup()
                if self._version is not None:
                    self._retired.append(self._version)
                self._version = version
                self._entries.clear()  # new data: nothing computed from the old version is served again
            if key in self._entries:
                self._entries.move_to_end(key)
                return Lookup(self._entries[key])
            running = self._building.get(key)
            if running is None:
                self._building[key] = threading.Event()
                return Lookup(claimed=True)
        running.wait()
        with self._lock:
            # Its result, or (it could not be cached: a failed read, an error, a publish meanwhile) each waiter
            # computes its own, at once rather than one after the other.
            return Lookup(self._entries.get(key)) if version == self._version else Lookup()

    def store(self, version: str, key: Hashable, body: bytes) -> None:
        with self._lock:
            if version != self._version:
                return
            self._entries[key] = body
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def release(self, key: Hashable) -> None:
        """End a claim (after ``store`` or without it): requests waiting for this key go on."""
        with self._lock:
            done = self._building.pop(key, None)
        if done is not None:
            done.set()

    def __len__(self) -> int:
        return len(self._entries)


def callback_outputs(output: Any) -> set[str]:
    """The ``id.property`` outputs of the callback a request names (its ``output``: Dash's key of the callback,
    ``..a.children...b.figure..`` for several outputs)."""
    if not isinstance(output, str):
        return set()
    return set(output[2:-2].split("...")) if output.startswith("..") else {output}


def read_succeeded(payload: Any, warnings: Collection[Output]) -> bool:
    """Whether a callback response sets each of ``warnings`` (read-failure warnings) to an empty value."""
    if not isinstance(payload, dict) or not isinstance(payload.get("response"), dict):
        return False
    values = payload["response"]
    return all(isinstance(values.get(w.component_id_str()), dict)
               and w.component_property in values[w.component_id_str()]
               and not values[w.component_id_str()][w.component_property] for w in warnings)


def install_response_cache(server: Flask, cache: ResponseCache, data_version: Callable[[], str],
                           visible_countries: Callable[[], tuple[str, ...] | None],
                           cacheable: Collection[Output], read_warnings: Collection[Output]) -> None:
    """Serve the callbacks named by ``cacheable`` (each by one output only it writes) from ``cache``. A response
    is kept only when it is a 200 whose ``read_warnings`` among its outputs are empty, and the data version did
    not change while it was computed. Install after the login guard: a hook that answers stops the later ones."""
    names = {str(o) for o in cacheable}
    warnings = {str(o): o for o in read_warnings}

    @server.before_request
    def serve_cached_response() -> Response | None:
        if request.method != "POST" or request.path != CALLBACK_PATH:
            return None
        body = request.get_json(silent=True, cache=True)  # cached: Dash parses it once, from here
        outputs = callback_outputs(body.get("output") if isinstance(body, dict) else None)
        if not outputs & names:
            return None
        version = data_version()
        key = (version, visible_countries(), hashlib.sha256(request.get_data(cache=True)).hexdigest())
        found = cache.lookup(version, key)
        if found.body is not None:
            return Response(found.body, content_type="application/json", headers={CACHE_HEADER: "hit"})
        g.response_cache = (version, key, [warnings[o] for o in outputs if o in warnings], found.claimed)
        return None

    @server.after_request
    def keep_response(response: Response) -> Response:
        pending = g.get("response_cache")
        if pending is None:
            return response
        version, key, own_warnings, claimed = pending
        response.headers[CACHE_HEADER] = "miss"
        if claimed and response.status_code == 200 and data_version() == version:
            body = response.get_data()
            try:
                payload = json.loads(body)
            except ValueError:  # not a callback's JSON answer: nothing to keep
                return response
            if read_succeeded(payload, own_warnings):
                cache.store(version, key, body)
        return response

    @server.teardown_request
    def release_claim(_error: BaseException | None) -> None:
        pending = g.pop("response_cache", None)
        if pending is not None and pending[3]:
            cache.release(pending[1])
