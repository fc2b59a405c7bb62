"""Reading pymilvus and gRPC errors: unreachable server, unimplemented method, and the text worth showing."""

from __future__ import annotations

import contextlib
import re

__all__ = ["is_connection_error", "is_unimplemented", "message", "redact"]


def redact(uri: str) -> str:
    """``uri`` with the password of a ``scheme://user:password@host`` form masked (for messages and repr)."""
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", uri)


def message(err: BaseException) -> str:
    """The most useful text of an exception (pymilvus errors carry a ``message``)."""
    msg = getattr(err, "message", None)
    return str(msg) if msg else (str(err) or type(err).__name__)


def is_connection_error(err: BaseException) -> bool:
    """Whether ``err`` means the server is unreachable or did not answer in time (not a refused request)."""
    code = getattr(err, "code", None)
    if callable(code):  # grpc.RpcError
        with contextlib.suppress(Exception):
            name = getattr(code(), "name", "")
            return name in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
        return False
    if code == 2:  # pymilvus: "Fail connecting to server on ..."
        return True
    text = message(err)
    return any(
        s in text for s in ("Fail connecting to server", "server unavailable", "DEADLINE_EXCEEDED", "UNAVAILABLE")
    )


def is_unimplemented(err: BaseException) -> bool:
    """Whether ``err`` (or its cause) says the server does not implement the method called."""
    cause = err.__cause__ if err.__cause__ is not None else err
    text = f"{message(err)} {message(cause)}".lower()
    return any(s in text for s in ("unimplemented", "not implemented", "unknown method"))
