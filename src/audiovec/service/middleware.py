"""HTTP plumbing of the service: error statuses and bodies, the request-body limits, metrics and security headers.

Typed errors (:mod:`audiovec.errors`) become a status code and a JSON body (``{"error": {...}}``), and so does
every other error: an unexpected exception is a logged 500, and an error another component answers in plain text
is rewritten. Request bodies over the size limit are refused from their header or while they stream in, and bodies
that arrive too slowly get a 408; every request is counted and timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any, NoReturn

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
    InvalidIdError,
    InvalidMetadataError,
    InvalidVectorError,
    ItemNotFoundError,
    MissingDependencyError,
    ModelLoadError,
    StoreConnectionError,
    StoreLockedError,
    UnsupportedUploadError,
    UploadTooLargeError,
)
from audiovec.service.metrics import Metrics

__all__ = [
    "INTERNAL_ERROR",
    "BodyLimit",
    "JSONErrors",
    "MetricsAndHeaders",
    "error_body",
    "error_response",
    "internal_error_response",
    "status_for",
]

log = logging.getLogger("audiovec.service")

INTERNAL_ERROR = "the server failed to handle this request; the error is logged on the server"
"""The message of every 500: what went wrong stays in the server's log, never in the response."""


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
        (InvalidIdError, 400),
        (MissingDependencyError, 503),
        (ModelLoadError, 503),
        (StoreConnectionError, 503),
        (StoreLockedError, 503),
        (ConfigError, 400),
    ]
    for cls, status in table:
        if isinstance(err, cls):
            return status
    return 500


def error_body(status: int, type_: str, message: str, detail: Any = None) -> dict[str, Any]:
    """The JSON body of every error: ``{"error": {"type", "status", "message"[, "detail"]}}``."""
    error: dict[str, Any] = {"type": type_, "status": status, "message": message}
    if detail is not None:
        error["detail"] = detail
    return {"error": error}


def error_response(
    status: int, type_: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON error response (:func:`error_body`)."""
    return JSONResponse(error_body(status, type_, message, detail), status_code=status, headers=headers)


def internal_error_response() -> JSONResponse:
    """The JSON 500 that stands for any unexpected failure (it tells the client nothing about the failure)."""
    return error_response(500, "InternalServerError", INTERNAL_ERROR)


class _Rejected(Exception):
    """A request body broke a limit; the error response is already on its way."""


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
    """Reject request bodies over ``limit`` bytes (413) or that arrive too slowly (408).

    The size is checked from ``Content-Length`` and while the body streams in. The whole body must have arrived
    ``timeout_s`` seconds after the request head; a body that has not gets a 408 and its connection is closed.
    """

    def __init__(self, app: _App, limit: int, timeout_s: float = 60.0) -> None:
        super().__init__(app)
        self.limit = limit
        self.timeout_s = timeout_s

    async def http(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Refuse an over-long body from its header; watch its size and its deadline while it arrives."""
        too_large = f"request body larger than {self.limit / 2**20:g} MiB"
        if self._declared_length(scope) > self.limit:
            await error_response(413, "PayloadTooLarge", too_large)(scope, receive, send)
            return
        deadline = time.monotonic() + self.timeout_s
        seen = 0
        started = complete = rejected = False

        async def reject(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> NoReturn:
            nonlocal rejected
            rejected = True
            if not started:  # answer now: the body parser would report any error as a 400
                await error_response(status, type_, message, headers=headers)(scope, receive, send)
            raise _Rejected

        async def guarded_receive() -> MutableMapping[str, Any]:
            nonlocal seen, complete
            if complete or rejected:
                return await receive()  # type: ignore[no-any-return]
            try:
                message: MutableMapping[str, Any] = await asyncio.wait_for(
                    receive(), max(deadline - time.monotonic(), 0.0)
                )
            except asyncio.TimeoutError:
                await reject(
                    408,
                    "RequestTimeout",
                    f"the request body did not arrive within {self.timeout_s:g} s (the service's body timeout)",
                    {"Connection": "close"},
                )
            if message["type"] != "http.request":
                complete = True  # the client went away
            else:
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    await reject(413, "PayloadTooLarge", too_large)
                complete = not message.get("more_body", False)
            return message

        async def tracked_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if rejected:
                return  # the error is already on its way; drop what the app answers after the aborted read
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_Rejected):  # the error was sent when the limit was broken
            await self.app(scope, guarded_receive, tracked_send)

    @staticmethod
    def _declared_length(scope: MutableMapping[str, Any]) -> int:
        """The request's ``Content-Length`` (0 when absent or not a number)."""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                with contextlib.suppress(ValueError):
                    return int(value)
        return 0


class JSONErrors(_HTTPMiddleware):
    """Make every error response the JSON error format.

    An unexpected exception is logged with its traceback and answered with a JSON 500 that says nothing about it.
    An error response that another component wrote in plain text (a malformed ``Range`` header, a refused CORS
    preflight) is rewritten as JSON with the same status and headers.
    """

    _DROP = frozenset({b"content-type", b"content-length"})
    _MAX_MESSAGE = 500

    async def http(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Run the request; turn a failure or a non-JSON error response into a JSON error."""
        sent = False  # something went out to the client
        held: MutableMapping[str, Any] | None = None  # the start of a non-JSON error response, held back
        body = bytearray()

        async def json_send(message: MutableMapping[str, Any]) -> None:
            nonlocal sent, held
            if message["type"] == "http.response.start" and int(message["status"]) >= 400:
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if not content_type.startswith(b"application/json"):
                    held = message
                    return
            if held is not None and message["type"] == "http.response.body":
                body.extend(message.get("body", b"")[: self._MAX_MESSAGE])
                if not message.get("more_body", False):
                    response = self._rewritten(held, bytes(body))
                    held = None
                    sent = True
                    await response(scope, receive, send)
                return
            sent = True
            await send(message)

        try:
            await self.app(scope, receive, json_send)
        except Exception:
            log.error("%s %s failed", scope.get("method"), scope.get("path"), exc_info=True)
            if sent:
                raise  # the response is half-sent: the server aborts the connection
            await internal_error_response()(scope, receive, send)
            return
        if not sent:
            log.error("%s %s: the app sent no response", scope.get("method"), scope.get("path"))
            await internal_error_response()(scope, receive, send)

    def _rewritten(self, start: MutableMapping[str, Any], text: bytes) -> JSONResponse:
        """A JSON error with the status and headers of ``start``; its plain-text body (if any) is the message."""
        status = int(start["status"])
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in self._DROP]
        content_type = dict(start.get("headers", [])).get(b"content-type", b"")
        message = text.decode("utf-8", "replace").strip() if content_type.startswith(b"text/plain") else ""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "error"
        response = error_response(status, "HTTPError", message[: self._MAX_MESSAGE] or phrase)
        response.raw_headers.extend(headers)
        return response


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
