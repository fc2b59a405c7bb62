"""Run the service with uvicorn: in the foreground (``audiovec serve``) or in a background thread (tests, notebooks)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import TracebackType

from audiovec._optional import require
from audiovec.errors import AudiovecError
from audiovec.service._http import guarded_protocol
from audiovec.service.app import create_app
from audiovec.service.manager import CollectionManager
from audiovec.service.settings import ServiceSettings

__all__ = ["BackgroundServer", "serve"]

log = logging.getLogger("audiovec.service")


def _uvicorn_config(
    settings: ServiceSettings, host: str, port: int, log_level: str, manager: CollectionManager | None
) -> object:
    uvicorn = require("uvicorn", "serve", "audiovec serve")
    return uvicorn.Config(
        create_app(settings, manager),
        host=host,
        port=port,
        log_level=log_level,
        workers=1,  # embedded stores live in this process
        access_log=log_level in ("debug", "trace"),  # the access log prints paths and query strings only
        timeout_graceful_shutdown=10,
        server_header=False,
        http=guarded_protocol(settings.header_timeout_s, settings.max_connections),
        ws="none",  # the service has no WebSocket routes
        timeout_keep_alive=settings.keep_alive_timeout_s,
    )


def serve(settings: ServiceSettings, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Run the service until interrupted (Ctrl-C / SIGTERM save every collection before exiting)."""
    uvicorn = require("uvicorn", "serve", "audiovec serve")
    if host not in ("127.0.0.1", "localhost", "::1") and settings.api_key is None:
        log.warning("serving on %s without an API key: anyone who can reach this port can change collections", host)
    server = uvicorn.Server(_uvicorn_config(settings, host, port, log_level, None))

    def _terminate(signum: int, frame: object) -> None:  # uvicorn re-raises the signal after its graceful shutdown
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        server.run()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM, after uvicorn saved and closed everything
        log.info("audiovec service stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)


class BackgroundServer:
    """A real uvicorn server on a free local port, in a background thread.

    Example:
        >>> with BackgroundServer(ServiceSettings(data_dir=tmp)) as server:  # doctest: +SKIP
        ...     requests.get(server.url + "/health").json()
    """

    def __init__(
        self,
        settings: ServiceSettings,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        manager: CollectionManager | None = None,
    ) -> None:
        uvicorn = require("uvicorn", "serve", "BackgroundServer")
        self.settings = settings
        self.host = host
        self._server = uvicorn.Server(_uvicorn_config(settings, host, port, log_level, manager))
        self._thread = threading.Thread(target=self._server.run, name="audiovec-uvicorn", daemon=True)
        self.port = port

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> BackgroundServer:
        """Start and wait until the server accepts connections.

        Raises:
            AudiovecError: It did not start within ``timeout`` seconds.
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise AudiovecError(f"the uvicorn server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        sockets = [s for srv in self._server.servers for s in srv.sockets]
        self.port = int(sockets[0].getsockname()[1])
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down gracefully (collections are saved and closed)."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
