"""For tests that call the lake repository's private readers directly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dashboard import data
from salespulse.scope import Scope


@contextmanager
def inside_a_query(scope: Scope = Scope.everything()) -> Iterator[None]:  # noqa: B008 - a frozen value
    """What a query method of ``LakeRepository`` sets on entry, until the block ends (no leak into later tests)."""
    token = data._CALL_SCOPE.set(scope)
    try:
        yield
    finally:
        data._CALL_SCOPE.reset(token)
