"""A tiny HTTP file server on 127.0.0.1 for download tests: fixed bytes per path, every request recorded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    """The running server: its base URL, the files it serves (path -> bytes; editable) and the paths requested."""

    url: str
    files: dict[str, bytes]
    requests: list[str] = field(default_factory=list)


@contextmanager
def serve_files(files: dict[str, bytes]) -> Iterator[Served]:
    """Serve ``files`` (URL path without query -> bytes) at ``http://127.0.0.1:<port>`` until the block ends."""
    served = Served("", dict(files))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            body = served.files.get(self.path.split("?", 1)[0])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
