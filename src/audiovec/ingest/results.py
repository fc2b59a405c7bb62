"""What the ingest path returns: one :class:`ItemResult` per source.

Each holds the frames, :class:`EmbedStats` and :class:`Failure` records per model; :class:`Monitor` is the protocol
of the optional per-call measurements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import AudiovecError
from audiovec.ingest.sources import Source

__all__ = ["EmbedStats", "Failure", "ItemResult", "Monitor"]


class Monitor(Protocol):
    """Measures one model call: a context manager whose :meth:`as_dict` gives figures after the block."""

    def __enter__(self) -> Any: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None, /
    ) -> Any: ...

    def as_dict(self) -> dict[str, float]:
        """The measurements, by name."""
        ...


@dataclass(frozen=True)
class Failure:
    """An item (or one model on an item) that could not be embedded.

    Attributes:
        key: The item's key.
        source: Its printable name (a path, an upload's name).
        embedder: The model that failed, or ``None`` when the item could not be read at all.
        error: The error's type name (from :mod:`audiovec.errors`).
        message: The error's message.
        exception: The exception itself, when raised in this process.
    """

    key: str
    source: str
    embedder: str | None
    error: str
    message: str
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, source: Source, embedder: str | None, err: BaseException) -> Failure:
        """A failure record for ``err`` (its message without the source prefix typed errors start with)."""
        message, named = str(err), getattr(err, "source", None)
        if named and message.startswith(f"{named}: "):
            message = message[len(named) + 2 :]
        return cls(source.key, source.label, embedder, type(err).__name__, message, err)

    def raise_error(self) -> None:
        """Raise the original exception (or an :class:`~audiovec.errors.AudiovecError` with the message)."""
        if self.exception is not None:
            raise self.exception
        raise AudiovecError(f"{self.error}: {self.message}")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (without the exception object)."""
        return {
            "key": self.key,
            "source": self.source,
            "embedder": self.embedder,
            "error": self.error,
            "message": self.message,
        }


@dataclass
class EmbedStats:
    """What producing one item's frames with one model cost.

    Attributes:
        decode_s: Decoding the item and resampling it to the model's rate, in seconds (for models sharing a rate,
            the shared decode is counted for each); 0 for streamed items, whose decoding is part of ``embed_s``.
        embed_s: Running the model (for a batched call, the call's time divided among its items).
        wait_s: Waiting for a model shared with other threads (see ``Ingest(lock=...)``).
        cached: The frames came from the cache (the figures are those measured when they were computed).
        streamed: The item was streamed in blocks.
        resources: Figures from the monitor, when one was given.
    """

    decode_s: float = 0.0
    embed_s: float = 0.0
    wait_s: float = 0.0
    cached: bool = False
    streamed: bool = False
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        """Decoding plus embedding, in seconds."""
        return self.decode_s + self.embed_s

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what the cache keeps beside the frames)."""
        return {
            "decode_s": self.decode_s,
            "embed_s": self.embed_s,
            "wait_s": self.wait_s,
            "streamed": self.streamed,
            "resources": dict(self.resources),
        }

    @classmethod
    def from_cache(cls, meta: Mapping[str, Any]) -> EmbedStats:
        """Stats read back from a cache entry's metadata (``cached=True``)."""
        return cls(
            decode_s=float(meta.get("decode_s", math.nan)),
            embed_s=float(meta.get("embed_s", math.nan)),
            wait_s=0.0,
            cached=True,
            streamed=bool(meta.get("streamed", False)),
            resources={k: float(v) for k, v in dict(meta.get("resources", {})).items()},
        )


@dataclass
class ItemResult:
    """The outcome of one source: frames per model, what each cost, and failures.

    Attributes:
        source: The source.
        digest: SHA-256 of its content (``None`` when not hashed).
        duration: Seconds of audio (``None`` when unreadable).
        size_bytes: Size of the encoded file (``None`` for decoded audio).
        frames: Frame embeddings by model label.
        stats: Cost by model label.
        failures: Failures by model label.
    """

    source: Source
    digest: str | None = None
    duration: float | None = None
    size_bytes: int | None = None
    frames: dict[str, FrameEmbeddings] = field(default_factory=dict)
    stats: dict[str, EmbedStats] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every model produced frames."""
        return not self.failures

    def frames_of(self, label: str) -> FrameEmbeddings:
        """The frames of one model, raising that model's failure if it failed.

        Raises:
            AudiovecError: The failure's exception (an :class:`~audiovec.errors.AudioError`...).
            KeyError: No such model.
        """
        if label in self.failures:
            self.failures[label].raise_error()
        return self.frames[label]
