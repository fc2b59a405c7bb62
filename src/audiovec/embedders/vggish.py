"""VGGish: 128-d audio embeddings from Google's VGG-like AudioSet model (TensorFlow SavedModel / TF Hub).

The model is the TF Hub SavedModel ``https://tfhub.dev/google/vggish/1`` (default) or any local SavedModel folder
with the same signature: a 1-D ``float32`` waveform at 16 kHz in [-1, 1] goes in, ``float32[N, 128]`` comes out,
one row per 0.96 s example. Inside, the model computes a log-mel spectrogram (25 ms windows every 10 ms, no
padding) and cuts it into patches of 96 spectrogram frames every 96 frames, so one example spans
``95 * 160 + 400 = 15600`` samples (0.975 s) and examples start every ``96 * 160 = 15360`` samples (0.96 s).

:class:`VGGishEmbedder` frames the audio the same way (``frame_length=15600``, ``hop_length=15360``), which
makes chunked, streamed and batched embedding give the model's own vectors (to float rounding, 1e-5 in the
tests: TensorFlow may round an example differently in a longer waveform). The only difference from calling the
model on the whole waveform is the tail: the model drops samples that do not fill a whole example, audiovec
zero-pads them into one more frame (and pads input shorter than 0.975 s to one frame instead of returning
nothing).

The embeddings are the raw output of VGGish's last layer; the PCA + 8-bit quantisation of the original AudioSet
release is not applied.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator

from audiovec.embedders import _tf
from audiovec.embedders.base import EmbedderConfig, FramedEmbedder
from audiovec.embedders.framing import FrameGeometry, frame_count
from audiovec.errors import EmbeddingError, ModelLoadError

__all__ = ["DEFAULT_VGGISH_HANDLE", "VGGishConfig", "VGGishEmbedder"]

#: The TF Hub handle loaded by default.
DEFAULT_VGGISH_HANDLE = "https://tfhub.dev/google/vggish/1"

_SR = 16000
_FRAME = 15600  # 96 STFT hops of 160 samples + one 400-sample window - one hop
_HOP = 15360  # 96 STFT hops of 160 samples
_EXTRA = "vggish"


class VGGishConfig(EmbedderConfig):
    """Configuration of :class:`VGGishEmbedder`.

    Attributes:
        model: A TF Hub handle (downloaded once into the TF Hub cache) or the path of a local SavedModel folder
            with VGGish's signature.
        cache_dir: TF Hub cache folder (default: ``$TFHUB_CACHE_DIR``, else ``<tmp>/tfhub_modules``).
        local_files_only: Never use the network: a handle must already be in the cache. ``HF_HUB_OFFLINE=1`` in
            the environment has the same effect.
        batch_size: Most examples (0.96 s frames) computed per model call; short inputs are packed together.
        device: ``"auto"`` (TensorFlow's choice), ``"cpu"``, ``"gpu"`` or ``"gpu:N"``.
        num_threads: TensorFlow intra/inter-op threads (process-wide; only effective before TensorFlow starts).
    """

    model: str = Field(DEFAULT_VGGISH_HANDLE, min_length=1)
    cache_dir: str | None = None
    local_files_only: bool = False
    batch_size: int = Field(32, ge=1, le=65536)
    device: str = Field("auto", pattern=_tf.DEVICE_PATTERN)
    num_threads: int | None = Field(None, ge=1, le=1024)

    @field_validator("model", "cache_dir", mode="before")
    @classmethod
    def _path_to_str(cls, value: object) -> object:
        return os.fspath(value) if isinstance(value, os.PathLike) else value


class VGGishEmbedder(FramedEmbedder):
    """VGGish embeddings, ``float32[frames, 128]``: 0.975 s frames every 0.96 s at 16 kHz.

    The model is loaded once, in the constructor, and reused for every input.

    Args:
        config: A :class:`VGGishConfig`, a dict of its fields, or ``None`` for defaults.
        **params: Config fields as keyword arguments.

    Attributes:
        load_seconds: Wall time spent resolving and loading the model.

    Raises:
        MissingDependencyError: TensorFlow (or ``tensorflow_hub`` for a hub handle) is not installed.
        ModelLoadError: The model cannot be found, downloaded or loaded, or does not have VGGish's signature.
        ConfigError: Invalid parameters, or a device TensorFlow does not have.

    Example:
        >>> from audiovec import get_embedder
        >>> emb = get_embedder("vggish")  # doctest: +SKIP
        >>> emb = get_embedder("vggish", model="/models/vggish_1", local_files_only=True)  # doctest: +SKIP
        >>> emb.embed_file("song.mp3").vectors.shape  # doctest: +SKIP
        (253, 128)
    """

    name: ClassVar[str] = "vggish"
    version: ClassVar[str] = "1"
    Config = VGGishConfig
    config: VGGishConfig

    def _setup(self) -> None:
        c = self.config
        feature = "VGGishEmbedder"
        t0 = time.perf_counter()
        if importlib.util.find_spec("tensorflow") is None:  # name the missing extra before downloading anything
            _tf.import_tensorflow(_EXTRA, feature)
        # resolve (and download) before importing TensorFlow: a model that cannot be had fails in a second
        path = _tf.resolve_saved_model(
            c.model, cache_dir=c.cache_dir, local_files_only=c.local_files_only, extra=_EXTRA, feature=feature
        )
        self._tf, self._device = _tf.start(_EXTRA, feature, c.device, c.num_threads)
        self._path: Path = path
        self._weights = _tf.saved_model_digest(path)
        with _tf.device_scope(self._tf, self._device):
            loaded = _tf.load_saved_model(self._tf, path, feature)
        self._loaded = loaded  # keeps the variables alive
        self._fn = _callable_of(loaded, path)
        # 15600-sample frames (the waveform of one VGGish example, 0.975 s) every 15360 samples (0.96 s)
        self.geometry = FrameGeometry(_SR, _FRAME, _HOP, self._probe())
        self.load_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ FramedEmbedder
    def _spec_params(self) -> dict[str, Any]:
        """Model handle and a fingerprint of the SavedModel's weights."""
        return {"model": self.config.model, "weights_sha256": self._weights}

    def _embed_frames_batch(self, chunks: Sequence[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        """Pack chunks into few model calls of at most ``batch_size`` examples.

        The model takes one waveform, so pieces are laid end to end at multiples of the hop with one hop of
        silence between them; each piece's examples then see only the piece's own samples, and the one example
        that straddles each gap is dropped.
        """
        bs = self.config.batch_size
        pieces: list[tuple[int, int, NDArray[np.float32]]] = []  # (chunk index, frames, samples)
        for ci, chunk in enumerate(chunks):
            n = frame_count(len(chunk), _FRAME, _HOP)
            for f0 in range(0, n, bs):
                f1 = min(n, f0 + bs)
                pieces.append((ci, f1 - f0, chunk[f0 * _HOP : (f1 - 1) * _HOP + _FRAME]))
        outs: list[list[NDArray[np.float32]]] = [[] for _ in chunks]
        group: list[tuple[int, int, NDArray[np.float32]]] = []
        used = 0
        for piece in pieces:
            need = piece[1] + (1 if group else 0)
            if group and used + need > bs:
                self._run_group(group, outs)
                group, used, need = [], 0, piece[1]
            group.append(piece)
            used += need
        if group:
            self._run_group(group, outs)
        return [np.concatenate(parts, axis=0) for parts in outs]

    # ------------------------------------------------------------------ internals
    def _run_group(
        self, group: list[tuple[int, int, NDArray[np.float32]]], outs: list[list[NDArray[np.float32]]]
    ) -> None:
        starts = []
        hop_index = 0
        for _, n, _ in group:
            starts.append(hop_index)
            hop_index += n + 1
        last_start, last_n = starts[-1], group[-1][1]
        wave = np.zeros((last_start + last_n - 1) * _HOP + _FRAME, dtype=np.float32)
        for (_, _, samples), s in zip(group, starts, strict=True):
            wave[s * _HOP : s * _HOP + len(samples)] = samples
        rows = self._call(wave)
        expected = last_start + last_n
        if rows.shape[0] != expected:
            raise EmbeddingError(
                f"vggish model returned {rows.shape[0]} examples for {len(wave)} samples, expected {expected}"
            )
        for (ci, n, _), s in zip(group, starts, strict=True):
            outs[ci].append(rows[s : s + n])

    def _call(self, wave: NDArray[np.float32]) -> NDArray[np.float32]:
        with _tf.device_scope(self._tf, self._device):
            out = self._fn(self._tf.constant(wave))
        if isinstance(out, dict):
            out = next(iter(out.values()))
        arr = np.asarray(out.numpy() if hasattr(out, "numpy") else out, dtype=np.float32)
        if arr.ndim != 2:
            raise EmbeddingError(f"vggish model returned shape {arr.shape}, expected [examples, dim]")
        return arr

    def _probe(self) -> int:
        """Check the model's signature and framing on silence; return its embedding dimension."""
        shapes = []
        for n in (1, 3):
            try:
                shapes.append(self._call(np.zeros((n - 1) * _HOP + _FRAME, dtype=np.float32)).shape)
            except Exception as err:
                raise ModelLoadError(
                    f"VGGishEmbedder: SavedModel {str(self._path)!r} does not take a 1-D float32 waveform and "
                    f"return [examples, dim] embeddings: {type(err).__name__}: {err}"
                ) from err
        if shapes[0][0] != 1 or shapes[1][0] != 3 or shapes[0][1] != shapes[1][1] or shapes[0][1] < 1:
            raise ModelLoadError(
                f"VGGishEmbedder: SavedModel {str(self._path)!r} does not frame audio like VGGish "
                f"(0.975 s examples every 0.96 s, no padding): {_FRAME} samples gave shape {shapes[0]}, "
                f"{2 * _HOP + _FRAME} samples gave {shapes[1]} (expected 1 and 3 rows)"
            )
        return int(shapes[0][1])


def _callable_of(loaded: Any, path: Path) -> Any:
    """The function to call on a waveform: the object itself, or its ``serving_default`` signature."""
    if callable(loaded):
        return loaded
    signatures = getattr(loaded, "signatures", {})
    if "serving_default" in signatures:
        sig = signatures["serving_default"]
        inputs = list(sig.structured_input_signature[1])
        if len(inputs) == 1:
            key = inputs[0]
            return lambda wave: sig(**{key: wave})
    raise ModelLoadError(
        f"VGGishEmbedder: SavedModel {str(path)!r} is neither callable nor has a 'serving_default' signature"
    )
