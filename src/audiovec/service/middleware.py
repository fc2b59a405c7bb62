"""HTTP plumbing of the service: error statuses and bodies, the request-body limit, metrics and security headers.

Typed errors (:mod:`audiovec.errors`) become a status code and a JSON body (``{"error": {...}}``); request bodies
over the limit are refused from their header or while they stream in; every request is counted and timed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi.responses import JSONResponse

from audiovec.errors import (
    AudioError,
    AudioTooLongError,
    CollectionExistsError,
    CollectionNotFoundError,
    ConfigError,
    DimensionMismatchError,
    DuplicateIdError,
    EmbeddingError,
    FilterError,
    InvalidMetadataError,
    InvalidVectorError,
    ItemNotFoundError,
    MissingDependencyError,
    ModelLoadError,
    StoreConnectionError,
    UnsupportedUploadError,
    UploadTooLargeError,
)
from audiovec.service.metrics import Metrics

__all__ = ["BodyLimit", "MetricsAndHeaders", "error_response", "status_for"]


def status_for(err: BaseException) -> int:
    """The HTTP status of an error: 4xx for what the client can fix, 503 for what is missing here, else 500."""
    table: list[tuple[type[BaseException], int]] = [
        (CollectionNotFoundError, 404),
        (ItemNotFoundError, 404),
        (CollectionExistsError, 409),
        (DuplicateIdError, 409),
        (UnsupportedUploadError, 415),
        (AudioTooLongError, 413),
        (UploadTooLargeError, 413),
        (AudioError, 422),
        (DimensionMismatchError, 422),
        (InvalidVectorError, 422),
        (EmbeddingError, 422),
        (FilterError, 400),
        (InvalidMetadataError, 400),
        (MissingDependencyError, 503),
        (ModelLoadError, 503),
        (StoreConnectionError, 503),
        (ConfigError, 400),
    ]
    for cls, status in table:
        if isinstance(err, cls):
            return status
    return 500


def error_response(
    status: int, type_: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON error response: ``{"error": {"type", "status", "message"[, "detail"]}}``."""
    error: dict[str, Any] = {"type": type_, "status": status, "message": message}
    if detail is not None:
        error["detail"] = detail
    return JSONResponse({"error": error}, status_code=status, headers=headers)


class _PayloadTooLarge(Exception):
    pass


_App = Callable[..., Awaitable[None]]


class _HTTPMiddleware:
    """An ASGI middleware that handles HTTP requests in :meth:`http` and passes everything else through."""

    def __init__(self, app: _App) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """ASGI entry point."""
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def http(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Handle one HTTP request."""
        raise NotImplementedError


class BodyLimit(_HTTPMiddleware):
    """Reject request bodies over ``limit`` bytes (413) from the header, or while they stream in."""

    def __init__(self, app: _App, limit: int) -> None:
        super().__init__(app)
        self.limit = limit

    async def http(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Refuse an over-long body from ``Content-Length``, or as soon as the streamed body crosses the limit."""
        msg = f"request body larger than {self.limit / 2**20:g} MiB"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await error_response(413, "PayloadTooLarge", msg)(scope, receive, send)
                    return
        seen = 0
        started = rejected = False

        async def counted_receive() -> MutableMapping[str, Any]:
            nonlocal seen, rejected
            message: MutableMapping[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not rejected:
                    rejected = True
                    if not started:  # answer now: the body parser would report any error as a 400
                        await error_response(413, "PayloadTooLarge", msg)(scope, receive, send)
                    raise _PayloadTooLarge
            return message

        async def tracked_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if rejected:
                return  # the 413 is already on its way; drop what the app answers after the aborted read
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_PayloadTooLarge):  # the 413 was sent when the limit was crossed
            await self.app(scope, counted_receive, tracked_send)


class MetricsAndHeaders(_HTTPMiddleware):
    """Count every request by route template and status; add security headers to every response."""

    def __init__(self, app: _App, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def http(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Time the request, add the headers, count it under its route template."""
        t0 = time.perf_counter()
        status = 500

        async def wrapped_send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for k, v in (
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ):
                    if k not in names:
                        headers.append((k, v))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, wrapped_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            self.metrics.observe_request(scope.get("method", "?"), route, status, time.perf_counter() - t0)
