"""Connection guards of ``audiovec serve``: a deadline for every request head and a cap on open connections.

uvicorn closes idle keep-alive connections, but not a connection that never sends a request or sends its head
slowly (a header line every few seconds): such a connection stays open for as long as the client likes, and a few
hundred of them hold the server. :func:`guarded_protocol` extends uvicorn's HTTP/1.1 protocol class (h11 or
httptools, whichever uvicorn's ``http="auto"`` picks) so that

* a connection that has not sent a complete request head ``header_timeout_s`` seconds after it opened, or after
  its previous response, is closed;
* a connection that would be open beside ``max_connections`` others is answered with a JSON 503 and closed at once,
  before anything is read from it;
* a request that is not valid HTTP/1.1 is answered with a JSON 400 (uvicorn's own answer is plain text).

Request *bodies* have their deadline in :class:`audiovec.service.middleware.BodyLimit`, which answers 408.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, ClassVar

from audiovec._optional import require
from audiovec.service.middleware import error_body

if TYPE_CHECKING:
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Protocol
else:  # the real base is given to guarded_protocol's class; httptools' protocol has the same interface
    _Protocol = object

__all__ = ["guarded_protocol", "raw_error"]

log = logging.getLogger("audiovec.service")

_REFUSAL_LOG_INTERVAL_S = 10.0


def raw_error(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 error response in the service's JSON error format, with ``Connection: close``.

    Args:
        status: HTTP status code.
        type_: The error's ``type``.
        message: The error's ``message``.
        headers: Extra response headers.

    Returns:
        The bytes to write to the connection before closing it.
    """
    body = json.dumps(error_body(status, type_, message)).encode()
    fields = {
        "content-type": "application/json",
        "content-length": str(len(body)),
        "connection": "close",
        "x-content-type-options": "nosniff",
        **(headers or {}),
    }
    head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("latin-1") + b"\r\n" + body


class _Guards(_Protocol):
    """The guards, placed before uvicorn's protocol class in the class made by :func:`guarded_protocol`."""

    header_timeout_s: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 256
    last_refusal_log: ClassVar[float] = -math.inf

    _head_timer: asyncio.TimerHandle | None = None
    _refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn
        """Refuse the connection when the server is at its cap; otherwise start the head deadline."""
        if len(self.connections) >= self.max_connections:
            self._refuse(transport)
            return
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        """Parse as uvicorn does; stop the head deadline once a head is complete."""
        if self._refused:
            return
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        """A response is out: the next request head has ``header_timeout_s`` to arrive."""
        super().on_response_complete()
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the head deadline; clean up as uvicorn does."""
        self._stop_head_timer()
        if not self._refused:
            super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """Answer a request that is not valid HTTP/1.1 with a JSON 400 (when no response is under way) and close."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            message = "the request is not valid HTTP/1.1 (request line, header or body framing)"
            self.transport.write(raw_error(400, "InvalidHTTPRequest", message))
        self.transport.close()

    def _watch_head(self) -> None:
        """Start the deadline while the connection waits for a request head; stop it once a head has arrived."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            self._stop_head_timer()
        elif self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timeout)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.debug("closing a connection: no complete request head within %g s", self.header_timeout_s)
            self.transport.close()

    def _refuse(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._refused = True
        now = time.monotonic()
        if now - self.last_refusal_log >= _REFUSAL_LOG_INTERVAL_S:  # one warning at a time, however many come
            type(self).last_refusal_log = now
            log.warning("refusing new connections: %d are open (max_connections)", len(self.connections))
        message = f"the server has {self.max_connections} open connections, its limit; retry later"
        transport.write(raw_error(503, "TooManyConnections", message, {"retry-after": "1"}))
        transport.close()


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """The HTTP/1.1 protocol class of uvicorn, with the head deadline, the connection cap and JSON 400s.

    Args:
        header_timeout_s: Seconds a connection has to send a complete request head, from when it opens or from
            its previous response.
        max_connections: Most connections open at once.

    Returns:
        A protocol class for ``uvicorn.Config(http=...)``.

    Raises:
        MissingDependencyError: uvicorn is not installed.
    """
    auto = require("uvicorn.protocols.http.auto", "serve", "audiovec serve", package="uvicorn")
    base: type[asyncio.Protocol] = auto.AutoHTTPProtocol
    attrs = {"header_timeout_s": header_timeout_s, "max_connections": max_connections, "last_refusal_log": -math.inf}
    return type(f"Guarded{base.__name__}", (_Guards, base), attrs)
