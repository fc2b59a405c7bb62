"""The embedder conformance checks (see :func:`check_embedder`)."""

from __future__ import annotations

import io
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from audiovec.audio import Audio, load
from audiovec.embedders.base import Embedder, EmbedderSpec
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import AudioError, AudiovecError, EmptyAudioError, NonFiniteAudioError, NonFiniteEmbeddingError

__all__ = ["EXTREME_AMPLITUDES", "CheckResult", "check_embedder", "embedder_checks", "run_checks", "synthetic_signal"]

Check = Callable[[Embedder], None]

#: Peak sample values of the extreme-input check: finite, but far outside [-1, 1], up to nearly the largest float32.
EXTREME_AMPLITUDES = (1e19, 1e30, 3e38)


def synthetic_signal(
    duration: float, sample_rate: int, *, channels: int = 1, seed: int = 0, start: float = 0.0
) -> NDArray[np.float32]:
    """A deterministic, band-limited test signal: gliding tones, a slow beat and decaying clicks.

    The signal is a function of time only (not of the sample rate), so the same ``duration`` rendered at two
    rates is the same sound. Content stays below 3.5 kHz, under the Nyquist frequency of an 8 kHz model.

    Args:
        duration: Seconds.
        sample_rate: Samples per second.
        channels: 1 gives ``[samples]``; more gives ``[channels, samples]`` with identical channels.
        seed: Varies the tone frequencies.
        start: Time of the first sample, so consecutive calls render consecutive blocks of one signal.

    Returns:
        ``float32`` samples in [-1, 1].
    """
    rng = np.random.default_rng(seed)
    freqs = np.sort(rng.uniform(110.0, 3000.0, size=6))
    n = round(duration * sample_rate)
    t = start + np.arange(n, dtype=np.float64) / sample_rate
    x = np.zeros(n)
    for i, f in enumerate(freqs):
        vib = 1.0 + 0.01 * np.sin(2 * np.pi * (0.3 + 0.1 * i) * t)
        env = 0.5 + 0.5 * np.sin(2 * np.pi * (0.25 + 0.05 * i) * t + i)
        x += env * np.sin(2 * np.pi * f * vib * t + i)
    period = 0.37
    phase = np.mod(t, period)
    x += 2.0 * np.exp(-phase * 60.0) * np.sin(2 * np.pi * 1700.0 * phase)
    x *= 0.8 / (len(freqs) + 2.0)
    y = x.astype(np.float32)
    return y if channels == 1 else np.tile(y, (channels, 1))


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one conformance check."""

    name: str
    passed: bool
    detail: str
    seconds: float


def _audio(duration: float, sr: int, channels: int = 1, seed: int = 0) -> Audio:
    return Audio.from_array(
        synthetic_signal(duration, sr, channels=channels, seed=seed), sr, f"synthetic_signal(seed={seed})"
    )


def _assert_frames(fe: object, emb: Embedder, duration: float, what: str) -> FrameEmbeddings:
    assert isinstance(fe, FrameEmbeddings), f"{what}: expected FrameEmbeddings, got {type(fe).__name__}"
    assert fe.vectors.dtype == np.float32, f"{what}: vectors dtype {fe.vectors.dtype}, expected float32"
    assert fe.timestamps.dtype == np.float64, f"{what}: timestamps dtype {fe.timestamps.dtype}, expected float64"
    assert fe.vectors.ndim == 2 and fe.vectors.shape[0] >= 1, f"{what}: vectors shape {fe.vectors.shape}"
    assert fe.vectors.shape[1] == emb.dim, f"{what}: dim {fe.vectors.shape[1]} != embedder.dim {emb.dim}"
    assert fe.timestamps.shape == (fe.vectors.shape[0],), f"{what}: {fe.timestamps.shape} timestamps"
    assert np.isfinite(fe.vectors).all(), f"{what}: non-finite values in the vectors"
    assert abs(fe.duration - duration) <= max(2.0 / emb.sample_rate, 1e-3), (
        f"{what}: duration {fe.duration} != input duration {duration}"
    )
    return fe


def _close(a: NDArray[np.float32], b: NDArray[np.float32], rtol: float = 1e-4) -> float:
    """Largest difference relative to the scale of ``a``."""
    scale = max(float(np.abs(a).max()), 1e-6)
    return float(np.abs(a - b).max()) / scale


# --------------------------------------------------------------------------------------------- checks
def check_attributes(emb: Embedder) -> None:
    """``name``, ``sample_rate``, ``dim``, ``window_s``, ``hop_s`` and ``spec()`` are present and sensible."""
    assert isinstance(emb, Embedder), f"{type(emb).__name__} does not satisfy the audiovec.Embedder protocol"
    assert isinstance(emb.name, str) and emb.name, "name must be a non-empty string"
    assert isinstance(emb.sample_rate, int) and 1000 <= emb.sample_rate <= 384000, f"sample_rate {emb.sample_rate!r}"
    assert isinstance(emb.dim, int) and emb.dim > 0, f"dim {emb.dim!r}"
    assert emb.window_s > 0 and emb.hop_s > 0, f"window_s={emb.window_s}, hop_s={emb.hop_s}"
    spec = emb.spec()
    assert isinstance(spec, EmbedderSpec), f"spec() returned {type(spec).__name__}"
    assert spec.name == emb.name, f"spec name {spec.name!r} != {emb.name!r}"
    assert spec.key() == EmbedderSpec.model_validate_json(spec.model_dump_json()).key(), "spec does not round-trip"


def check_shape_dtype(emb: Embedder) -> None:
    """Output is ``float32[frames, dim]`` with ``float64`` timestamps and the input's duration."""
    _assert_frames(emb.embed(_audio(2.5, emb.sample_rate)), emb, 2.5, "2.5 s input")


def check_determinism(emb: Embedder) -> None:
    """The same input gives the same vectors twice, within 1e-5 of their scale (no random crops, no dropout)."""
    a = _audio(3.0, emb.sample_rate, seed=1)
    v1, v2 = emb.embed(a).vectors, emb.embed(a).vectors
    assert v1.shape == v2.shape, f"shapes differ between runs: {v1.shape} vs {v2.shape}"
    assert _close(v1, v2) <= 1e-5, f"outputs differ between two runs (rel. diff {_close(v1, v2):.2e})"


def check_batch_invariance(emb: Embedder) -> None:
    """``embed_batch`` agrees with one-by-one ``embed`` (within 1e-3) for inputs of different lengths."""
    audios = [_audio(d, emb.sample_rate, seed=i) for i, d in enumerate((1.3, 4.0, 2.2))]
    batch = emb.embed_batch(audios)
    assert len(batch) == len(audios), f"embed_batch returned {len(batch)} results for {len(audios)} inputs"
    for i, (a, fb) in enumerate(zip(audios, batch, strict=False)):
        single = emb.embed(a)
        _assert_frames(fb, emb, a.duration, f"batch item {i}")
        assert fb.vectors.shape == single.vectors.shape, f"item {i}: {fb.vectors.shape} vs {single.vectors.shape}"
        diff = _close(single.vectors, fb.vectors)
        assert diff <= 1e-3, f"item {i}: batched result differs from single (rel. diff {diff:.2e})"
        assert np.allclose(fb.timestamps, single.timestamps), f"item {i}: timestamps differ"


def check_sample_rates_and_stereo(emb: Embedder) -> None:
    """Stereo input gives its mono mix's vectors (within 1e-4); the sound at other rates gives the same frames."""
    sr = emb.sample_rate
    mono = emb.embed(_audio(2.0, sr, seed=3))
    stereo = emb.embed(_audio(2.0, sr, channels=2, seed=3))
    assert stereo.vectors.shape == mono.vectors.shape, f"stereo {stereo.vectors.shape} vs mono {mono.vectors.shape}"
    assert _close(mono.vectors, stereo.vectors) <= 1e-4, "identical stereo channels do not give the mono result"
    for other in (44100, 22050):
        if other == sr:
            continue
        fe = _assert_frames(emb.embed(_audio(2.0, other, channels=2, seed=3)), emb, 2.0, f"{other} Hz stereo")
        assert fe.vectors.shape == mono.vectors.shape, (
            f"{other} Hz input gives {fe.vectors.shape[0]} frames, {sr} Hz input gives {mono.vectors.shape[0]}"
        )
        a, b = mono.vectors.mean(0), fe.vectors.mean(0)
        cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
        assert cos >= 0.98, f"{other} Hz input embeds differently from {sr} Hz input (cosine of means {cos:.3f})"


def check_short_input(emb: Embedder) -> None:
    """Input shorter than one window (even a few milliseconds) gives at least one finite frame."""
    for dur in (emb.window_s * 0.5, 0.005):
        n = max(1, round(dur * emb.sample_rate))
        a = Audio.from_array(synthetic_signal(n / emb.sample_rate, emb.sample_rate), emb.sample_rate, "short")
        fe = _assert_frames(emb.embed(a), emb, a.duration, f"{a.duration * 1000:.1f} ms input")
        assert len(fe) >= 1, "no frame for a short input"


def check_monotone_timestamps(emb: Embedder) -> None:
    """Timestamps increase strictly, lie inside the audio, and step by about ``hop_s``."""
    fe = emb.embed(_audio(max(5.0, 8 * emb.hop_s + emb.window_s), emb.sample_rate, seed=4))
    ts = fe.timestamps
    assert np.all(np.diff(ts) > 0), "timestamps are not strictly increasing"
    assert ts[0] >= 0 and ts[-1] <= fe.duration + 1e-6, f"timestamps [{ts[0]}, {ts[-1]}] outside [0, {fe.duration}]"
    if len(ts) > 2:
        step = float(np.median(np.diff(ts)))
        assert abs(step - emb.hop_s) <= 0.05 * emb.hop_s + 1e-6, f"median step {step} != hop_s {emb.hop_s}"


def check_bad_input(emb: Embedder) -> None:
    """Empty and NaN input raise the typed errors, not a crash inside the model."""
    empty = Audio(np.zeros(0, np.float32), emb.sample_rate, "empty")
    bad = synthetic_signal(1.0, emb.sample_rate)
    bad[100] = np.nan
    for audio, exc in ((empty, EmptyAudioError), (Audio(bad, emb.sample_rate, "nan"), NonFiniteAudioError)):
        try:
            emb.embed(audio)
        except exc:
            continue
        except AudiovecError as err:
            raise AssertionError(f"{audio.source} input raised {type(err).__name__}, expected {exc.__name__}") from err
        raise AssertionError(f"{audio.source} input did not raise {exc.__name__}")


def check_extreme_input(emb: Embedder) -> None:
    """Finite but enormous samples give finite vectors or a typed error, never NaN or Inf.

    The inputs peak at each of :data:`EXTREME_AMPLITUDES`, plus one of tiny values (1e-30) with every seventh
    sample at ±3e38. A model may overflow on them; it must then raise
    :class:`~audiovec.errors.NonFiniteEmbeddingError` (or an :class:`~audiovec.errors.AudioError`, for an embedder
    that refuses such audio up front).
    """
    sr = emb.sample_rate
    x = synthetic_signal(1.0, sr, seed=6).astype(np.float64)
    x /= np.abs(x).max()
    mixed = x * 1e-30
    mixed[::7] = np.where(x[::7] >= 0, 3e38, -3e38)
    cases = {f"peak {a:g}": x * a for a in EXTREME_AMPLITUDES}
    cases["tiny and 3e+38 mixed"] = mixed
    for what, samples in cases.items():
        audio = Audio(samples.astype(np.float32), sr, what)
        try:
            fe = emb.embed(audio)
        except (NonFiniteEmbeddingError, AudioError):
            continue
        except AudiovecError as err:
            raise AssertionError(
                f"{what} input raised {type(err).__name__} ({err}); expected finite vectors or NonFiniteEmbeddingError"
            ) from err
        _assert_frames(fe, emb, audio.duration, f"{what} input")


def check_embed_file(emb: Embedder) -> None:
    """``embed_file`` (streamed in blocks) agrees with ``embed(load(file))`` for a stereo file at another rate.

    The file is streamed in five blocks through one continuous resampler; the only allowed difference from the
    one-shot result is the resampler's rounding at block joins and a batched computation's rounding: 1e-3 of the
    vectors' scale, as in the other checks.
    """
    rate = 44100 if emb.sample_rate == 22050 else 22050
    duration = max(4.0, 2 * emb.window_s + 2 * emb.hop_s)
    buf = io.BytesIO()
    sf.write(buf, synthetic_signal(duration, rate, channels=2, seed=5).T, rate, format="WAV", subtype="FLOAT")
    data = buf.getvalue()
    whole = emb.embed(load(data))
    streamed = _assert_frames(emb.embed_file(data, block_s=duration / 5), emb, duration, "embed_file")
    assert streamed.vectors.shape == whole.vectors.shape, (
        f"embed_file gives {streamed.vectors.shape[0]} frames, embed(load(file)) {whole.vectors.shape[0]}"
    )
    assert np.allclose(streamed.timestamps, whole.timestamps), "embed_file timestamps differ from embed(load(file))"
    diff = _close(whole.vectors, streamed.vectors)
    assert diff <= 1e-3, f"embed_file differs from embed(load(file)) (rel. diff {diff:.2e})"


def make_long_input_check(seconds: float = 600.0, budget_mb: float = 256.0) -> Check:
    """A check that a ``seconds``-long input embeds with traced Python/NumPy memory under ``budget_mb``.

    Streaming embedders (with ``embed_stream``) get the input as 10 s blocks that are never held together;
    others get it whole, and the budget then also covers the input itself.
    """

    def check_long_input(emb: Embedder) -> None:
        sr = emb.sample_rate
        block = 10.0

        def blocks() -> Iterator[Audio]:
            t = 0.0
            while t < seconds - 1e-9:
                d = min(block, seconds - t)
                yield Audio(synthetic_signal(d, sr, start=t), sr, "long", t)
                t += d

        out_bytes = seconds / emb.hop_s * emb.dim * 4
        tracemalloc.start()
        try:
            if hasattr(emb, "embed_stream"):
                fe = emb.embed_stream(blocks(), source="long")
            else:
                fe = emb.embed(Audio(np.concatenate([b.samples for b in blocks()]), sr, "long"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        _assert_frames(fe, emb, seconds, f"{seconds:.0f} s input")
        expected = seconds / emb.hop_s
        assert abs(len(fe) - expected) <= max(2.0, 0.01 * expected) + emb.window_s / emb.hop_s, (
            f"{len(fe)} frames for {seconds} s at hop {emb.hop_s} s (expected about {expected:.0f})"
        )
        limit = budget_mb * 2**20 + 2 * out_bytes
        assert peak <= limit, f"peak traced memory {peak / 2**20:.0f} MiB exceeds {limit / 2**20:.0f} MiB"
        # the streamed result must agree with a one-shot embedding of its first 20 s; a contextual model that
        # declares ``context_s`` (audio processed together, e.g. a transformer window) is compared over whole
        # context windows, since a frame may see everything in its window
        context = float(getattr(emb, "context_s", 0.0) or 0.0)
        head_s = 20.0 if context <= 0 else max(1, int(np.ceil(20.0 / context - 1e-9))) * context
        head = emb.embed(Audio(synthetic_signal(head_s, sr), sr, "head"))
        n = max(1, len(head) - int(np.ceil(emb.window_s / emb.hop_s)) - 1)
        diff = _close(head.vectors[:n], fe.vectors[:n])
        assert diff <= 1e-3, f"streamed frames differ from one-shot frames (rel. diff {diff:.2e})"

    check_long_input.__doc__ = (
        f"A {seconds:.0f} s input embeds with bounded memory and matches one-shot output (within 1e-3)."
    )
    return check_long_input


def embedder_checks(long_input_s: float = 600.0, budget_mb: float = 256.0) -> list[tuple[str, Check]]:
    """Every conformance check as ``(name, check)``; each check raises ``AssertionError`` on failure."""
    return [
        ("attributes", check_attributes),
        ("shape_dtype", check_shape_dtype),
        ("determinism", check_determinism),
        ("batch_invariance", check_batch_invariance),
        ("sample_rates_and_stereo", check_sample_rates_and_stereo),
        ("short_input", check_short_input),
        ("monotone_timestamps", check_monotone_timestamps),
        ("bad_input", check_bad_input),
        ("extreme_input", check_extreme_input),
        ("embed_file", check_embed_file),
        ("long_input", make_long_input_check(long_input_s, budget_mb)),
    ]


def check_embedder(
    embedder: Embedder,
    *,
    long_input_s: float = 600.0,
    budget_mb: float = 256.0,
    skip: tuple[str, ...] = (),
) -> list[CheckResult]:
    """Run every conformance check on ``embedder``.

    Args:
        embedder: The embedder under test.
        long_input_s: Length of the long-input check (at least 10 minutes by default).
        budget_mb: Traced-memory budget of the long-input check, on top of twice the output size.
        skip: Names of checks to leave out (see :func:`embedder_checks`).

    Returns:
        One :class:`CheckResult` per check run.

    Raises:
        AssertionError: At least one check failed; the message lists each failure.
    """
    checks = embedder_checks(long_input_s, budget_mb)
    return run_checks(
        ((name, partial(check, embedder)) for name, check in checks if name not in skip),
        f"{embedder!r} failed {{n}} conformance check(s)",
    )


def run_checks(checks: Iterable[tuple[str, Callable[[], None]]], failure: str) -> list[CheckResult]:
    """Run named checks, time each, and raise one ``AssertionError`` listing every failure.

    Shared by the conformance kits: a check fails by raising ``AssertionError``; any other exception is a crash of
    the thing under test and is reported as a failure too.

    Args:
        checks: ``(name, check)`` pairs; each check takes no argument (bind the subject with ``functools.partial``).
        failure: Heading of the error message, with ``{n}`` for the number of failed checks.

    Returns:
        One :class:`CheckResult` per check, in order.

    Raises:
        AssertionError: At least one check failed.
    """
    results = []
    for name, check in checks:
        t0 = time.perf_counter()
        try:
            check()
        except AssertionError as err:
            results.append(CheckResult(name, False, str(err), time.perf_counter() - t0))
        except Exception as err:  # an unexpected crash is a failure of the subject, reported as such
            results.append(CheckResult(name, False, f"{type(err).__name__}: {err}", time.perf_counter() - t0))
        else:
            results.append(CheckResult(name, True, "", time.perf_counter() - t0))
    failed = [r for r in results if not r.passed]
    if failed:
        lines = "\n".join(f"  - {r.name}: {r.detail}" for r in failed)
        raise AssertionError(f"{failure.format(n=len(failed))}:\n{lines}")
    return results
