"""The ingest path: sources → frame embeddings, read and decoded as few times as possible, cached by content.

Everything that turns audio into vectors — ``audiovec embed``, the benchmark, identification and the search
service — goes through :class:`Ingest`. For each :class:`~audiovec.ingest.Source` it:

1. **reads** a file once: files up to :data:`READ_WHOLE_BELOW_BYTES` are read into memory in one go, and their
   hash, header and decoding all come from those bytes (larger files are hashed in one pass and then decoded
   from disk);
2. **hashes** the content (SHA-256) when a cache is used or hashing is asked for;
3. **reads the header** and decides: audio longer than :data:`STREAM_ABOVE_S` seconds is **streamed** through
   :meth:`~audiovec.Embedder.embed_file` in blocks (bounded memory); shorter audio is decoded whole, **once**,
   then resampled **once per model sample rate** and shared by every model of that rate;
4. **looks up the cache** (:class:`~audiovec.ingest.cache.EmbeddingCache`, keyed by embedder spec and content)
   and embeds only what is missing — short items batched through ``embed_batch``, a failing batch retried one
   item at a time so one bad file never sinks the others;
5. returns one :class:`ItemResult` per source, in input order: the frames per model, the time each step took
   (and resource measurements when a monitor is given), and typed failures instead of exceptions.

Frames are never NaN or infinite: whatever the embedder (one built on :class:`~audiovec.FramedEmbedder` refuses
them itself, a plugin's own ``embed`` is checked here), non-finite output is recorded as a
:class:`~audiovec.errors.NonFiniteEmbeddingError` failure of that item and never cached.

The work is done by :meth:`Ingest.process` on a batch of sources: a pure step (sources in, results out, no shared
state but the cache), so the same code runs in one process, in a pool of worker processes or in actors on a
cluster. :meth:`Ingest.run` streams any number of sources through it with bounded memory, in ``workers`` processes
(default: one per core; see :mod:`audiovec.ingest.workers`), results in input order and identical whatever the
number of workers.

Example:
    >>> from audiovec import get_embedder
    >>> from audiovec.data import demo_dir
    >>> from audiovec.ingest import Ingest, sources_from_paths
    >>> ingest = Ingest(get_embedder("mfcc"))
    >>> results = list(ingest.run(sources_from_paths([demo_dir()])))
    >>> len(results), results[0].frames["mfcc"].dim
    (42, 20)
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from audiovec._hashing import sha256_bytes, sha256_file
from audiovec._threads import available_cores
from audiovec.audio import Audio, AudioInfo, AudioSource, info, load
from audiovec.embedders.base import Embedder, EmbedderSpec
from audiovec.embedders.framing import check_finite_frames
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import AudioTooLongError, AudiovecError, ConfigError, NonFiniteEmbeddingError
from audiovec.ingest.cache import EmbeddingCache
from audiovec.ingest.results import EmbedStats, Failure, ItemResult, Monitor
from audiovec.ingest.sources import Source
from audiovec.ingest.workers import WorkerPool, default_workers, start_method
from audiovec.progress import Callback, as_callback

__all__ = ["READ_WHOLE_BELOW_BYTES", "STREAM_ABOVE_S", "Ingest"]

log = logging.getLogger(__name__)

#: Audio longer than this many seconds is streamed in blocks (bounded memory) instead of decoded whole.
STREAM_ABOVE_S = 120.0
#: Files up to this size are read into memory once; hashing, header and decoding then share those bytes.
READ_WHOLE_BELOW_BYTES = 64 << 20


class _Item:
    """One source during :meth:`Ingest.process`: its bytes, header, and decoded audio per sample rate."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.result = ItemResult(source, digest=source.digest)
        self.data: bytes | None = source.data
        self.failure: BaseException | None = None
        self.stream = False
        self._native: Audio | None = source.audio
        self._native_s = 0.0
        self._at: dict[int, tuple[Audio, float]] = {}

    def target(self) -> AudioSource:
        """What the decoder reads: the bytes in memory (named for messages) or the path."""
        if self.data is not None:
            buf = io.BytesIO(self.data)
            buf.name = self.source.label
            return buf
        assert self.source.path is not None
        return self.source.path

    def at_rate(self, rate: int) -> tuple[Audio, float]:
        """Mono audio at ``rate`` and the seconds spent decoding and resampling it (decoded once per item)."""
        if rate not in self._at:
            if self._native is None:
                t0 = time.perf_counter()
                self._native = load(self.target())
                self._native_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            audio = self._native.prepared(rate)
            self._at[rate] = (audio, self._native_s + time.perf_counter() - t0)
        return self._at[rate]


class Ingest:
    """The one path from sources to frame embeddings (see the module docs).

    Args:
        embedders: One embedder, or several by label (each source is read and decoded once for all of them).
        cache: An :class:`~audiovec.ingest.cache.EmbeddingCache` (or its folder): frames are looked up by embedder
            spec and content hash before embedding, and stored after.
        stream_above_s: Audio longer than this is streamed (default :data:`STREAM_ABOVE_S`).
        batch_size: Sources per :meth:`process` call; short items of one call share ``embed_batch`` calls.
        hash_content: Compute each source's SHA-256 (default: when there is a cache).
        monitor: A factory of :class:`Monitor` objects: each model call on one item is measured, and items are then
            embedded one at a time so the figures belong to one item.
        max_duration_s: Refuse longer audio (:class:`~audiovec.errors.AudioTooLongError`, from the header).
        lock: Held around every model call (a model shared by threads); the time spent waiting is reported.
        workers: Processes :meth:`run` embeds in (``None``: one per core available; 1: this process only): this
            process and ``workers - 1`` worker processes, each with its own copy of the models, on its share of the
            cores, ``batch_size`` sources at a time; :meth:`process` always runs in the calling process. Needs
            embedders that can be rebuilt in another process (every registered one can) and no ``lock``.

    Raises:
        ConfigError: No embedder, or invalid numbers.
    """

    def __init__(
        self,
        embedders: Embedder | Mapping[str, Embedder],
        *,
        cache: EmbeddingCache | str | os.PathLike[str] | None = None,
        stream_above_s: float = STREAM_ABOVE_S,
        batch_size: int = 16,
        hash_content: bool | None = None,
        monitor: Callable[[], Monitor] | None = None,
        max_duration_s: float | None = None,
        lock: AbstractContextManager[Any] | None = None,
        workers: int | None = None,
    ) -> None:
        models = dict(embedders) if isinstance(embedders, Mapping) else {embedders.name: embedders}
        if not models:
            raise ConfigError("Ingest needs at least one embedder")
        if batch_size < 1 or stream_above_s <= 0:
            raise ConfigError(f"batch_size must be >= 1 and stream_above_s > 0, got {batch_size}, {stream_above_s}")
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.embedders: dict[str, Embedder] = models
        self.cache = cache if cache is None or isinstance(cache, EmbeddingCache) else EmbeddingCache(cache)
        self.stream_above_s = float(stream_above_s)
        self.batch_size = int(batch_size)
        self.hash_content = self.cache is not None if hash_content is None else bool(hash_content)
        self.monitor = monitor
        self.max_duration_s = max_duration_s
        self.lock = lock
        self.workers = (1 if lock is not None else default_workers()) if workers is None else int(workers)
        self._specs: dict[str, EmbedderSpec] = {}

    def __getstate__(self) -> dict[str, Any]:
        """What a worker process gets: everything but the lock (an ingest with a lock stays in its process)."""
        if self.lock is not None:
            raise TypeError("an Ingest with a lock cannot be copied to another process")
        return dict(self.__dict__)

    def spec(self, label: str) -> EmbedderSpec:
        """The spec of one model (computed once: some models hash their weights for it)."""
        if label not in self._specs:
            self._specs[label] = self.embedders[label].spec()
        return self._specs[label]

    # ------------------------------------------------------------------ driving
    def run(
        self,
        sources: Iterable[Source | str | os.PathLike[str]],
        *,
        progress: bool | Callback | None = None,
        total: int | None = None,
    ) -> Iterator[ItemResult]:
        """Stream sources through :meth:`process`, ``batch_size`` at a time, yielding results in input order.

        With ``workers`` > 1 the batches run in worker processes (started when there is more than one batch);
        sources are read from ``sources`` only as workers need them, so memory stays bounded.

        Args:
            sources: Sources, or paths (keyed by their path).
            progress: Report progress per item (see :func:`audiovec.progress.as_callback`).
            total: The number of sources, for progress, when ``sources`` has no length.

        Raises:
            ConfigError: ``workers`` > 1 with embedders that cannot be rebuilt in another process.
        """
        if total is None and isinstance(sources, Sequence):
            total = len(sources)
        names = ", ".join(self.embedders)
        size = self.batch_size
        if self.workers > 1 and total:  # few files (long ones, say): smaller batches, so every worker gets some
            size = max(1, min(size, total // (2 * self.workers)))
        batches = _batches((Source.of(s) for s in sources), size)
        first = next(batches, None)
        if first is None:
            return
        second = next(batches, None) if self.workers > 1 else None  # one batch: no workers to start
        with as_callback(progress, total, f"embed with {names}", "file") as cb:
            if second is None:  # one process: this one
                rest = itertools.chain([first], batches)
                results: Iterator[list[ItemResult]] = (self.process(b) for b in rest)
                for batch_results in results:
                    for r in batch_results:
                        cb.relative_update()
                        yield r
                return
            n_batches = -(-total // size) if total else self.workers
            n = min(self.workers, n_batches)
            # forked workers: this process is one of the n; spawned ones (a neural model, whose thread pool here
            # was sized before the workers existed): n workers, this process only fills in while they start
            share = start_method() == "fork"
            threads = max(1, available_cores() // n)
            with WorkerPool(self, n - 1 if share else n, threads=threads, local=self, share=share) as pool:
                for batch_results in pool.map(itertools.chain([first, second], batches)):
                    for r in batch_results:
                        cb.relative_update()
                        yield r

    def process(self, batch: Sequence[Source]) -> list[ItemResult]:
        """Embed a batch of sources with every model: the unit of work of the ingest path.

        Never raises for a bad item: its :class:`ItemResult` carries the typed failure.
        """
        items = [self._open(s) for s in batch]
        for label in sorted(self.embedders, key=lambda name: self.embedders[name].sample_rate):
            self._embed_all(label, items)
        for it in items:  # decoded audio is dropped with the items
            it._at.clear()
            it._native = None
        return [it.result for it in items]

    # ------------------------------------------------------------------ steps
    def _open(self, source: Source) -> _Item:
        """Read the bytes (once), hash them, read the header, decide whether to stream."""
        it = _Item(source)
        res = it.result
        try:
            if source.audio is not None:
                res.duration = source.audio.duration
            else:
                if source.path is not None:
                    size = Path(source.path).stat().st_size if Path(source.path).is_file() else None
                    if size is not None and size <= READ_WHOLE_BELOW_BYTES:
                        it.data = Path(source.path).read_bytes()
                    res.size_bytes = size
                else:
                    res.size_bytes = len(it.data or b"")
                if self.hash_content and res.digest is None:
                    res.digest = sha256_bytes(it.data) if it.data is not None else self._hash_path(source)
                head: AudioInfo = info(it.target())
                res.duration = head.duration
                it.stream = head.duration > self.stream_above_s
            if self.max_duration_s is not None and (res.duration or 0.0) > self.max_duration_s:
                raise AudioTooLongError(
                    f"{res.duration:.1f} s of audio is longer than the {self.max_duration_s:g} s limit", source.label
                )
        except (AudiovecError, OSError) as err:
            it.failure = err
        return it

    def _hash_path(self, source: Source) -> str | None:
        assert source.path is not None
        return sha256_file(source.path) if Path(source.path).is_file() else None

    def _embed_all(self, label: str, items: list[_Item]) -> None:
        """Frames of one model for every item: cache hits, streamed items, then the decoded rest in batches."""
        emb = self.embedders[label]
        pending: list[tuple[_Item, Audio, float]] = []
        for it in items:
            if it.failure is not None:
                it.result.failures[label] = Failure.of(it.source, None, it.failure)
                continue
            if self._from_cache(label, it):
                continue
            if it.stream:
                self._embed_one(label, it, None, 0.0)
                continue
            try:
                audio, decode_s = it.at_rate(emb.sample_rate)
            except AudiovecError as err:  # undecodable: the same for every model
                it.failure = err
                it.result.failures[label] = Failure.of(it.source, None, err)
                continue
            pending.append((it, audio, decode_s))
        if self.monitor is not None or len(pending) <= 1:
            for it, audio, decode_s in pending:
                self._embed_one(label, it, audio, decode_s)
        else:
            self._embed_batch(label, pending)

    def _from_cache(self, label: str, it: _Item) -> bool:
        if self.cache is None or it.result.digest is None:
            return False
        hit = self.cache.get(self.spec(label), it.result.digest)
        if hit is None:
            return False
        frames, meta = hit
        it.result.frames[label] = _named(frames, it.source)
        it.result.stats[label] = EmbedStats.from_cache(meta)
        return True

    def _call(self, fn: Callable[[], Any]) -> tuple[Any, float, float, dict[str, float]]:
        """Run one model call under the lock and the monitor: (value, wait_s, run_s, measurements)."""
        t_wait = time.perf_counter()
        with self.lock if self.lock is not None else nullcontext():
            t0 = time.perf_counter()
            if self.monitor is None:
                value = fn()
                figures: dict[str, float] = {}
            else:
                mon = self.monitor()
                with mon:
                    value = fn()
                figures = mon.as_dict()
            t1 = time.perf_counter()
        return value, t0 - t_wait, t1 - t0, figures

    def _embed_one(self, label: str, it: _Item, audio: Audio | None, decode_s: float) -> None:
        emb = self.embedders[label]
        try:
            if audio is None:
                target = it.target()
                frames, wait_s, run_s, figures = self._call(lambda: emb.embed_file(target))
            else:
                frames, wait_s, run_s, figures = self._call(lambda: emb.embed(audio))
        except AudiovecError as err:
            log.info("%s failed on %s: %s", label, it.source.label, err)
            it.result.failures[label] = Failure.of(it.source, label, err)
            return
        stats = EmbedStats(decode_s, run_s, wait_s, streamed=audio is None, resources=figures)
        self._done(label, it, frames, stats)

    def _embed_batch(self, label: str, pending: list[tuple[_Item, Audio, float]]) -> None:
        emb = self.embedders[label]
        audios = [a for _, a, _ in pending]
        try:
            outs, wait_s, run_s, _ = self._call(lambda: emb.embed_batch(audios))
        except AudiovecError:  # isolate the item that broke the batch
            for it, audio, decode_s in pending:
                self._embed_one(label, it, audio, decode_s)
            return
        share = run_s / len(pending)
        for (it, _, decode_s), frames in zip(pending, outs, strict=True):
            self._done(label, it, frames, EmbedStats(decode_s, share, wait_s))

    def _done(self, label: str, it: _Item, frames: FrameEmbeddings, stats: EmbedStats) -> None:
        try:
            frames = check_finite_frames(_named(frames, it.source))
        except NonFiniteEmbeddingError as err:  # an embedder that does not check its own output
            log.info("%s failed on %s: %s", label, it.source.label, err)
            it.result.failures[label] = Failure.of(it.source, label, err)
            return
        it.result.frames[label] = frames
        it.result.stats[label] = stats
        if self.cache is not None and it.result.digest is not None:
            self.cache.put(self.spec(label), it.result.digest, frames, stats.as_dict())


def _batches(sources: Iterable[Source], size: int) -> Iterator[list[Source]]:
    """Consecutive lists of ``size`` sources (the last may be shorter)."""
    it = iter(sources)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _named(frames: FrameEmbeddings, source: Source) -> FrameEmbeddings:
    """The frames named after the source (cached frames keep the name they were computed under)."""
    if frames.source == source.label:
        return frames
    return FrameEmbeddings(
        frames.vectors, frames.timestamps, frames.duration, frames.window_s, frames.hop_s, source.label, frames.model
    )
