"""Send the simulator's batches to a SalesPulse ingest API instead of writing landing files (``--push``)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pyarrow as pa

from salespulse.simulator.output import write_csv


class PushError(RuntimeError):
    """The server refused a batch or could not be reached; the message says which and why."""


class ApiPusher:
    """One ``POST <url>/api/v1/<event>`` per batch, as CSV with the bearer token."""

    def __init__(self, url: str, token: str, timeout_seconds: float = 30.0):
        self.base = url.rstrip("/")
        self.token = token
        self.timeout = timeout_seconds

    def __call__(self, event: str, tables: list[pa.Table]) -> None:
        body = io.BytesIO()
        write_csv(tables, body)
        target = f"{self.base}/api/v1/{event}"
        post = urllib.request.Request(target, data=body.getvalue(), method="POST", headers={
            "Content-Type": "text/csv", "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(post, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as err:
            raise PushError(f"{target} refused the {event} batch: HTTP {err.code}: {_server_message(err)}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise PushError(f"cannot reach {target}: {reason}") from None


def _server_message(err: urllib.error.HTTPError) -> str:
    """The API's JSON error (with the first failing rows), or the start of whatever else came back."""
    text = err.read().decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return text[:200] or err.reason
    if not isinstance(body, dict):
        return text[:200]
    message = str(body.get("error", ""))
    rows = body.get("rows") or []
    if rows:
        shown = "; ".join(f"row {r['row']}: {', '.join(r['reasons'])}" for r in rows[:3])
        message += f" ({body.get('failing_rows', len(rows))} failing rows, e.g. {shown})"
    problems = body.get("problems") or []
    if problems:
        message += f" ({'; '.join(problems)})"
    return message
