"""The ingest API on the dashboard's Flask server: ``POST /api/v1/sales`` and ``POST /api/v1/inventory``.

Thin HTTP layer: bearer-token check (constant time), content type, body and row limits, rate limit per
token; the validation itself is :mod:`salespulse.ingest`, and accepted rows land as one CSV file through the
simulator's atomic writer (staging folder, then one rename; on a local landing folder or on HDFS through
WebHDFS, salespulse/storage.py), so the stream sees a whole file or none. File names are generated here, never
taken from the request, and the storage refuses any path outside the landing folder. docs/ingest-api.md.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from datetime import datetime, timezone
from typing import IO, Any

from flask import Flask, g, jsonify, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from dashboard.monitoring import metrics_for
from salespulse.ingest import EventValidator, MalformedBody, parse_csv_records, parse_json_records
from salespulse.schema import EVENT_SCHEMAS
from salespulse.settings import Settings
from salespulse.simulator.output import write_csv_atomic
from salespulse.storage import open_storage

API_PREFIX = "/api/v1"
CONTENT_TYPES = ("application/json", "text/csv")
BODY_CHUNK_BYTES = 64 * 1024
log = logging.getLogger("salespulse.api")


def _error(status: int, message: str, **more: Any) -> Any:
    return jsonify(error=message, status=status, request_id=getattr(g, "request_id", None), **more), status


def _token_index(tokens: list[bytes]) -> int | None:
    """Which configured token the request carries, comparing every one in constant time."""
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    candidate = given.strip().encode()
    found = None
    for index, token in enumerate(tokens):
        if hmac.compare_digest(candidate, token):
            found = index
    return found


def read_body(stream: IO[bytes], limit: int) -> bytes | None:
    """The whole body, or None as soon as it holds more than ``limit`` bytes. Read here in bounded chunks to its
    end: a chunked body announces no length, so only reading it tells its size, and the limit must not depend
    on how the client framed the body (nor may a body be cut at the limit and parsed)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(BODY_CHUNK_BYTES, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None


def landing_file_name(event: str, now: datetime) -> str:
    """Unique, sortable, and nothing from the request: ``api-sales-20261123T163934123-<hex>.csv``."""
    return f"api-{event}-{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}-{uuid.uuid4().hex[:12]}.csv"


def register_ingest_api(server: Flask, settings: Settings) -> None:
    api = settings.api
    tokens = [t.get_secret_value().encode() for t in api.tokens]
    landing = open_storage(settings.paths.landing, settings.hdfs)  # no I/O until the first accepted request
    validators = {name: EventValidator(schema, settings.ingest.country_aliases, settings.ingest.category_policy)
                  for name, schema in EVENT_SCHEMAS.items()}
    metrics = metrics_for(server)

    def rate_key() -> str:
        # Per token (a digest, never the token itself); unauthenticated callers share their address's bucket.
        index = _token_index(tokens)
        if index is None:
            return f"ip:{get_remote_address()}"
        return "token:" + hashlib.sha256(tokens[index]).hexdigest()[:16]

    def breach(limit: RequestLimit) -> Any:
        return _error(429, f"rate limit exceeded ({limit.limit}); retry later")

    limiter = Limiter(rate_key, app=server, storage_uri=api.rate_limit_storage, strategy="moving-window",
                      key_prefix="salespulse-api", headers_enabled=True)

    @limiter.limit(api.rate_limit, on_breach=breach)
    def ingest(event: str) -> Any:
        if not tokens:
            return _error(503, "the ingest API is disabled: no tokens are configured (api.tokens, e.g. "
                               "SALESPULSE_API__TOKENS='[\"...\"]')")
        index = _token_index(tokens)
        if index is None:
            return _error(401, "a valid bearer token is required (Authorization: Bearer <token>)")
        g.api_client = f"api-token-{index}"
        content_type = request.mimetype
        if content_type not in CONTENT_TYPES:
            return _error(415, f"Content-Type must be application/json (an array of objects) or text/csv; "
                               f"got {content_type or 'none'}")
        too_large = f"body larger than {api.max_body_bytes} bytes (api.max_body_bytes); nothing was landed"
        if request.content_length is not None and request.content_length > api.max_body_bytes:
            return _error(413, too_large)
        body = read_body(request.stream, api.max_body_bytes)
        if body is None:
            return _error(413, too_large)
        validator = validators[event]
        try:
            if content_type == "application/json":
                records = parse_json_records(body)
                rows = len(records)
            else:
                header, data = parse_csv_records(body)
                rows = len(data)
        except MalformedBody as err:
            return _error(400, str(err))
        if rows > api.max_rows:
            return _error(413, f"{rows} rows; at most {api.max_rows} per request (api.max_rows)")
        result = validator.validate(records) if content_type == "application/json" else \
            validator.validate_csv(header, data)
        if not result.ok:
            body = result.error_body()
            return _error(422, body.pop("error"), **body)
        name = landing_file_name(event, datetime.now(timezone.utc))
        try:
            write_csv_atomic([result.table], landing, event, name)
        except OSError:  # e.g. HDFS's WebHDFS address does not answer: nothing was published, the client may retry
            log.exception("landing %s in %s failed", name, landing.uri)
            return _error(503, "the landing folder is not writable right now; nothing was landed, retry later")
        metrics.rows_ingested.labels(event).inc(result.table.num_rows)
        return jsonify(rows_accepted=result.table.num_rows, file=name, event=event,
                       request_id=getattr(g, "request_id", None)), 201

    for event in EVENT_SCHEMAS:
        server.add_url_rule(f"{API_PREFIX}/{event}", f"ingest_{event}", ingest, methods=["POST"],
                            defaults={"event": event})
