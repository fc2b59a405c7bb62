"""YAMNet: 1024-d AudioSet embeddings and 521 class scores (Google, MobileNetV1 on log-mel patches).

Two backends run the same published model:

* **LiteRT** (``pip install "audiovec[yamnet]"``: ``ai-edge-litert``, about 60 MB, no TensorFlow), the default.
  With no ``model`` given, TF Hub's YAMNet TFLite file (:data:`DEFAULT_MODEL`, 16,096,668 bytes) is downloaded
  once into the audiovec cache and checked against its published SHA-256 (:data:`DEFAULT_MODEL`); so is the
  class map (:data:`DEFAULT_CLASS_MAP`). Any other ``.tflite`` conversion of YAMNet works too (``model=`` a path
  ending in ``.tflite``): one whose input is a waveform of any length is called once per chunk, one with a fixed
  0.975 s input once per frame.
* **TensorFlow** (``pip install "audiovec[yamnet-tf]"``): the TF Hub SavedModel, from a handle
  (:data:`DEFAULT_HANDLE`, downloaded once into the TF Hub cache without importing TensorFlow) or a local
  SavedModel directory.

Offline (``local_files_only=True``, ``AUDIOVEC_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) nothing is downloaded: a file
that is not cached raises :class:`~audiovec.errors.ModelLoadError` naming where it looked.

Framing. YAMNet computes a 25 ms / 10 ms log-mel spectrogram and classifies 96-frame patches every 48 frames.
Patch ``k`` therefore reads samples ``[7680 k, 7680 k + 15600)`` at 16 kHz: 0.96 s of STFT frame starts plus the
last 25 ms window. The model zero-pads its input to a whole number of such patches. This embedder uses exactly
that receptive field as its frame (``frame_length = 15600``, ``hop_length = 7680``), so each frame depends on its
own samples only and ``embed``, chunked, batched and streamed output all agree with one model call on the whole
waveform, frame count included (to float rounding, 1e-5 in the tests: the interpreter may round a patch
differently in a longer input). (With a 15360-sample frame, the last frame of every chunk would miss 240 real
samples and differ from the one-shot output.) ``window_s`` is therefore 0.975 s; ``hop_s`` is 0.48 s.

Example:
    >>> from audiovec import get_embedder, load
    >>> emb = get_embedder("yamnet")  # TF Hub's TFLite file, downloaded and checked once  # doctest: +SKIP
    >>> emb.embed(load("speech.flac")).vectors.shape  # doctest: +SKIP
    (21, 1024)
    >>> emb.classify(load("speech.flac"), top_k=1)  # doctest: +SKIP
    [('Speech', 0.93)]
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from audiovec._download import RemoteFile, cached_file
from audiovec._hashing import sha256_file, sha256_parts
from audiovec._optional import require
from audiovec.audio import Audio
from audiovec.embedders import _tf
from audiovec.embedders._tflite import ScoresView, TFLiteModel, default_num_threads, pooled_top_k
from audiovec.embedders.base import EmbedderConfig, FramedEmbedder
from audiovec.embedders.framing import FrameGeometry, frame_count
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import ConfigError, EmbeddingError, ModelLoadError

__all__ = [
    "DEFAULT_CLASS_MAP",
    "DEFAULT_HANDLE",
    "DEFAULT_MODEL",
    "MODEL_ENV",
    "YAMNetConfig",
    "YAMNetEmbedder",
    "hub_cache_path",
    "time_bare_interpreter",
]

logger = logging.getLogger(__name__)

#: The model used when neither ``model`` nor :data:`MODEL_ENV` is set: TF Hub's YAMNet TFLite file, version 1
#: (Apache-2.0, Google; the Kaggle Models instance google/yamnet/tfLite/tflite/1). Its size and SHA-256 are the
#: ones published for that file; a download that differs is deleted and refused.
DEFAULT_MODEL = RemoteFile(
    url="https://tfhub.dev/google/lite-model/yamnet/tflite/1?lite-format=tflite",
    filename="yamnet.tflite",
    sha256="141fba1cdaae842c816f28edc4937e8b4f0af4c8df21862ccc6b52dc567993c3",
    size=16_096_668,
    subdir="yamnet/tflite-1",
)
#: The 521 AudioSet class names, from the YAMNet source in tensorflow/models, pinned to one revision.
DEFAULT_CLASS_MAP = RemoteFile(
    url="https://raw.githubusercontent.com/tensorflow/models/4d7bdd8c170ee90850f2f9ccef0f6d19b817de35/"
    "research/audioset/yamnet/yamnet_class_map.csv",
    filename="yamnet_class_map.csv",
    sha256="cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2",
    size=14_096,
    subdir="yamnet/tflite-1",
)
#: The TF Hub SavedModel handle (TensorFlow backend, ``pip install "audiovec[yamnet-tf]"``): pass it as ``model``.
DEFAULT_HANDLE = "https://tfhub.dev/google/yamnet/1"
#: Environment variable naming the model (a ``.tflite`` file, a SavedModel directory or a handle).
MODEL_ENV = "AUDIOVEC_YAMNET_MODEL"

SAMPLE_RATE = 16000
FRAME_LENGTH = 15600  # 96 STFT hops of 160 samples + one 400-sample window - one hop: the patch's receptive field
HOP_LENGTH = 7680  # 48 STFT hops
EMBEDDING_DIM = 1024
NUM_CLASSES = 521
CLASS_MAP_NAME = "yamnet_class_map.csv"


class YAMNetConfig(EmbedderConfig):
    """Configuration of :class:`YAMNetEmbedder`.

    Attributes:
        model: A ``.tflite`` file (LiteRT backend), a SavedModel directory, or a TF Hub handle such as
            :data:`DEFAULT_HANDLE` (TensorFlow backend). ``None``: the ``AUDIOVEC_YAMNET_MODEL`` environment
            variable, else :data:`DEFAULT_MODEL`, downloaded once into the cache and checked.
        class_map: CSV of class names (``index,mid,display_name``). ``None``: ``yamnet_class_map.csv`` beside
            the ``.tflite`` file (downloaded with the default model), or the SavedModel's own asset.
        cache_dir: Where downloads go. For the default model: ``None`` is the audiovec cache (``$AUDIOVEC_CACHE``,
            else ``~/.cache/audiovec``). For TF Hub handles: ``None`` is ``$TFHUB_CACHE_DIR``, else
            ``<temp dir>/tfhub_modules`` (TF Hub's own default).
        local_files_only: Never download: the model must already be cached. Also on when the environment sets
            ``AUDIOVEC_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``.
        num_threads: LiteRT interpreter threads (``None``: every available core). The TensorFlow backend uses
            TensorFlow's own thread pools.
    """

    model: str | None = None
    class_map: str | None = None
    cache_dir: str | None = None
    local_files_only: bool = False
    num_threads: int | None = Field(None, ge=1, le=1024)


def hub_cache_path(handle: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where TF Hub caches ``handle``: ``<cache>/<sha1(handle)>`` (the layout of ``tensorflow_hub``).

    Args:
        handle: A TF Hub handle, e.g. :data:`DEFAULT_HANDLE`.
        cache_dir: The cache root (``None``: ``$TFHUB_CACHE_DIR``, else ``<temp dir>/tfhub_modules``).
    """
    return _tf.hub_cached_path(handle, cache_dir)


def _savedmodel_sha256(path: Path) -> str:
    """SHA-256 over a SavedModel's graph and variables (relative names and contents, in sorted order)."""

    def parts() -> Iterator[bytes]:
        for f in [path / "saved_model.pb", *sorted((path / "variables").glob("*"))]:
            if f.is_file():
                yield f.relative_to(path).as_posix().encode()
                yield bytes.fromhex(sha256_file(f))

    return sha256_parts(parts())


class _Backend:
    """One loaded YAMNet: waveform ``float32[samples]`` at 16 kHz -> scores ``[N, 521]``, embeddings ``[N, 1024]``."""

    kind: str
    weights: str  # file name, handle or directory name: what the weights are called, not where they are
    sha256: str
    class_map: RemoteFile | None = None  # where the class map is downloaded from when none is beside the model

    def run(self, waveform: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        raise NotImplementedError

    def class_map_candidates(self) -> list[Path]:
        raise NotImplementedError


class _LiteRTBackend(_Backend):
    kind = "litert"

    def __init__(self, path: Path, num_threads: int | None, class_map: RemoteFile | None = None) -> None:
        self.model = TFLiteModel(path, num_threads=num_threads, extra="yamnet", feature="YAMNetEmbedder")
        signature = self.model.input_shape_signature
        if signature == (-1,):
            self.fixed = False  # a waveform of any length: one call per chunk
        elif signature in ((FRAME_LENGTH,), (1, FRAME_LENGTH)):
            self.fixed = True  # one 0.975 s patch per call (the input shape TF Hub's TFLite file is published with)
        else:
            raise ModelLoadError(
                f"YAMNetEmbedder: {path} is not a YAMNet model: input shape {signature}, expected a float32 "
                f"waveform of any length [-1] or of one patch [{FRAME_LENGTH}]"
            )
        try:
            scores, emb = self.run(np.zeros(FRAME_LENGTH, np.float32))
        except (ValueError, RuntimeError) as err:
            raise ModelLoadError(f"YAMNetEmbedder: {path} fails on a 0.975 s waveform: {err}") from err
        if scores.shape != (1, NUM_CLASSES) or emb.shape != (1, EMBEDDING_DIM):
            raise ModelLoadError(f"YAMNetEmbedder: {path} gave {scores.shape}, {emb.shape} for one patch")
        self.path = path
        self.weights = path.name
        self.sha256 = self.model.sha256
        self.class_map = class_map

    @staticmethod
    def _pick_outputs(out: dict[str, NDArray[np.float32]]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        by_dim = {a.shape[-1]: a.reshape(-1, a.shape[-1]) for a in out.values() if a.ndim in (1, 2)}
        if NUM_CLASSES not in by_dim or EMBEDDING_DIM not in by_dim:
            shapes = {k: v.shape for k, v in out.items()}
            raise ModelLoadError(
                f"YAMNetEmbedder: expected [N, 521] scores and [N, 1024] embeddings among the outputs, got {shapes} "
                "(not YAMNet, or a classification-only conversion without the embeddings output)"
            )
        return by_dim[NUM_CLASSES], by_dim[EMBEDDING_DIM]

    def run(self, waveform: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        if not self.fixed:
            return self._pick_outputs(self.model.run(waveform))
        shape = self.model.input_shape_signature
        n = frame_count(len(waveform), FRAME_LENGTH, HOP_LENGTH)
        parts = [
            self._pick_outputs(self.model.run(waveform[k * HOP_LENGTH : k * HOP_LENGTH + FRAME_LENGTH].reshape(shape)))
            for k in range(n)
        ]
        if not parts:
            return np.zeros((0, NUM_CLASSES), np.float32), np.zeros((0, EMBEDDING_DIM), np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def class_map_candidates(self) -> list[Path]:
        return [self.path.with_name(CLASS_MAP_NAME)]


class _TensorFlowBackend(_Backend):
    kind = "tensorflow"

    def __init__(self, path: Path, weights: str) -> None:
        self.tf = require("tensorflow", "yamnet-tf", "YAMNetEmbedder (TensorFlow backend)")
        if not (path / "saved_model.pb").is_file():
            raise ModelLoadError(f"YAMNetEmbedder: {path} is not a SavedModel directory (no saved_model.pb)")
        try:
            self.model = self.tf.saved_model.load(str(path))
        except Exception as err:
            raise ModelLoadError(f"YAMNetEmbedder: cannot load the SavedModel at {path}: {err}") from err
        if not callable(self.model):
            raise ModelLoadError(f"YAMNetEmbedder: the SavedModel at {path} is not callable (not YAMNet)")
        self.path = path
        self.weights = weights
        self.sha256 = _savedmodel_sha256(path)
        try:
            scores, emb = self.run(np.zeros(FRAME_LENGTH, np.float32))
        except Exception as err:  # a SavedModel without YAMNet's call signature
            raise ModelLoadError(
                f"YAMNetEmbedder: the SavedModel at {path} cannot be called like YAMNet, model(waveform float32[None]) "
                f"-> (scores, embeddings, log_mel): {type(err).__name__}: {err}"
            ) from err
        if scores.shape != (1, NUM_CLASSES) or emb.shape != (1, EMBEDDING_DIM):
            raise ModelLoadError(
                f"YAMNetEmbedder: the SavedModel at {path} returned {scores.shape} and {emb.shape} for one patch; "
                "expected (1, 521) scores and (1, 1024) embeddings"
            )

    def run(self, waveform: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        out = self.model(self.tf.constant(waveform, dtype=self.tf.float32))
        return np.asarray(out[0].numpy(), np.float32), np.asarray(out[1].numpy(), np.float32)

    def class_map_candidates(self) -> list[Path]:
        found = []
        getter = getattr(self.model, "class_map_path", None)
        if callable(getter):
            with contextlib.suppress(Exception):
                found.append(Path(getter().numpy().decode("utf-8")))
        found.append(self.path / "assets" / CLASS_MAP_NAME)
        return found


def _resolve_savedmodel(model: str, cache_dir: str | None, local_files_only: bool) -> Path:
    """A local SavedModel directory for a handle: from the TF Hub cache, or downloaded into it."""
    try:
        return _tf.resolve_saved_model(
            model,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            extra="yamnet-tf",
            feature="YAMNetEmbedder",
        )
    except ModelLoadError as err:  # the same class (a download error stays a ModelDownloadError), with a hint
        raise type(err)(f"{err} (or leave model unset to use the TFLite model)") from err


def _load_backend(config: YAMNetConfig) -> _Backend:
    model = config.model or os.environ.get(MODEL_ENV)
    if model is None:
        # check the runtime before downloading 16 MB that could not be run
        require("ai_edge_litert.interpreter", "yamnet", "YAMNetEmbedder", "ai-edge-litert")
        path = cached_file(
            DEFAULT_MODEL,
            cache_dir=config.cache_dir,
            local_files_only=config.local_files_only,
            feature="YAMNetEmbedder",
            hint=" (or pass model='/path/to/yamnet.tflite')",
        )
        return _LiteRTBackend(path, config.num_threads, class_map=DEFAULT_CLASS_MAP)
    if _tf.is_remote_handle(model):
        path = _resolve_savedmodel(model, config.cache_dir, config.local_files_only)
        return _TensorFlowBackend(path, weights=model)
    path = Path(model).expanduser()
    if model.lower().endswith(".tflite"):
        return _LiteRTBackend(path, config.num_threads)
    if path.is_dir():
        return _TensorFlowBackend(path, weights=path.name)
    raise ModelLoadError(
        f"YAMNetEmbedder: model {model!r} is neither a .tflite file, an existing SavedModel directory, nor an "
        "http(s):// or gs:// TF Hub handle"
    )


def _read_class_map(path: Path) -> tuple[str, ...]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "display_name" not in rows[0]:
        raise ModelLoadError(f"YAMNet class map {path} has no display_name column")
    names = tuple(r["display_name"] for r in rows)
    if len(names) != NUM_CLASSES:
        raise ModelLoadError(f"YAMNet class map {path} has {len(names)} classes, expected {NUM_CLASSES}")
    return names


class YAMNetEmbedder(FramedEmbedder):
    """YAMNet frame embeddings, ``float32[frames, 1024]`` at a 0.48 s hop, plus the 521 AudioSet class scores.

    The model is loaded once, in the constructor; the class map is read on first use of :attr:`class_names`.

    Args:
        config: A :class:`YAMNetConfig`, a dict of its fields, or ``None``.
        **params: Config fields as keyword arguments, e.g. ``model="yamnet.tflite"``, ``num_threads=2``.

    Raises:
        ConfigError: Invalid parameters.
        MissingDependencyError: The backend's package is not installed (``pip install 'audiovec[yamnet]'`` for
            ``.tflite`` files and the default model, ``'audiovec[yamnet-tf]'`` for SavedModels and TF Hub handles).
        ModelLoadError: The model cannot be found or loaded, or is not cached while offline; the message names
            what was tried.
        ModelDownloadError: The download failed or did not have the published size and SHA-256.

    Example:
        >>> emb = YAMNetEmbedder(model="shared/models/yamnet.tflite", num_threads=2)  # doctest: +SKIP
        >>> emb.dim, emb.hop_s  # doctest: +SKIP
        (1024, 0.48)
    """

    name: ClassVar[str] = "yamnet"
    version: ClassVar[str] = "1"
    Config = YAMNetConfig
    config: YAMNetConfig
    #: 15600-sample frames (the receptive field of one YAMNet patch, 0.975 s) every 7680 samples (0.48 s).
    geometry = FrameGeometry(SAMPLE_RATE, FRAME_LENGTH, HOP_LENGTH, EMBEDDING_DIM)

    def _setup(self) -> None:
        self._backend = _load_backend(self.config)
        self._class_names: tuple[str, ...] | None = None
        self._scores = ScoresView(self, NUM_CLASSES, lambda x: self._run_frames(x)[0])

    # ------------------------------------------------------------------ framing
    @property
    def backend(self) -> Literal["litert", "tensorflow"]:
        """Which runtime executes the model."""
        return "litert" if self._backend.kind == "litert" else "tensorflow"

    def _run_frames(self, samples: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Scores and embeddings of the ``n`` whole frames that ``samples`` cover."""
        n = frame_count(len(samples), FRAME_LENGTH, HOP_LENGTH)
        scores, emb = self._backend.run(samples)
        # The samples end exactly where frame n-1 ends, so the model needs no padding. YAMNet's own padding rule
        # computes the number of patches in float32 and, for some n, rounds (len - 15600) / 7680 up to one
        # more: that extra patch re-covers the tail with zeros and is dropped here. Patch k always reads
        # samples [7680 k, 7680 k + 15600), so the first n rows are the n frames of the samples.
        if len(emb) < n or len(scores) < n:
            raise EmbeddingError(f"YAMNet returned {len(emb)} patches for {len(samples)} samples, expected {n}")
        return scores[:n], emb[:n]

    def _embed_frames(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._run_frames(samples)[1]

    # The model's input is one waveform (no batch dimension); ``_embed_frames_batch`` keeps the default
    # one-call-per-chunk. Packing chunks into one waveform would cost two discarded patches per chunk and
    # measured no faster.

    def _spec_params(self) -> dict[str, Any]:
        """Backend, weights name and SHA-256 (paths, threads and chunking excluded)."""
        return {"backend": self._backend.kind, "weights": self._backend.weights, "sha256": self._backend.sha256}

    # ------------------------------------------------------------------ class scores
    @property
    def class_names(self) -> tuple[str, ...]:
        """The 521 AudioSet class names in output order.

        Raises:
            ModelLoadError: No class map was found (pass ``class_map=``); the message lists the paths tried.
        """
        if self._class_names is None:
            tried = [Path(self.config.class_map)] if self.config.class_map else self._backend.class_map_candidates()
            found = next((path for path in tried if path.is_file()), None)
            remote = self._backend.class_map
            if found is None and remote is not None and not self.config.class_map:  # the default model's own map
                found = cached_file(
                    remote,
                    cache_dir=self.config.cache_dir,
                    local_files_only=self.config.local_files_only,
                    feature="YAMNetEmbedder",
                    hint=" (or pass class_map='...csv')",
                )
            if found is None:
                raise ModelLoadError(
                    f"YAMNet class map not found (tried {', '.join(map(str, tried))}); pass class_map='...csv'"
                )
            self._class_names = _read_class_map(found)
        return self._class_names

    def frame_scores(self, audio: Audio) -> FrameEmbeddings:
        """Per-frame class scores, ``float32[frames, 521]`` in [0, 1], for the frames of :meth:`embed`.

        Raises:
            EmptyAudioError, NonFiniteAudioError: Invalid input.
            EmbeddingError: The model failed.
        """
        return self._scores.embed(audio)

    def classify(self, audio: Audio, top_k: int = 5, pool: Literal["mean", "max"] = "mean") -> list[tuple[str, float]]:
        """The ``top_k`` classes of ``audio``: ``(class name, score)``, best first.

        Args:
            audio: Any sample rate and channel count.
            top_k: How many classes to return.
            pool: How frame scores become one score per class: ``"mean"`` (YAMNet's own clip-level rule) or
                ``"max"`` (the strongest frame; better for short events in long audio).

        Raises:
            ConfigError: ``top_k < 1`` or an unknown ``pool``.
            ModelLoadError: No class map is available.
        """
        names = self.class_names
        return pooled_top_k(self.frame_scores(audio).vectors, names, top_k, pool)


def time_bare_interpreter(
    model: str | os.PathLike[str], audio: Audio, *, repeats: int = 5, num_threads: int | None = None
) -> list[float]:
    """Seconds the bare LiteRT interpreter takes to embed ``audio`` in one call, for speed baselines.

    This is what a hand-written script does: resample to 16 kHz mono (not timed), resize the input tensor to
    the whole waveform, allocate, set the input, invoke, read the embeddings. One untimed warm-up run precedes
    the ``repeats`` timed runs. Compare with :meth:`YAMNetEmbedder.embed` on the same :class:`Audio` to get the
    overhead of framing, chunking and resampling.

    Args:
        model: A YAMNet ``.tflite`` file.
        audio: The input (resampled and mixed down before timing).
        repeats: Timed runs.
        num_threads: Interpreter threads (``None``: every available core, as in :class:`YAMNetEmbedder`).

    Returns:
        The wall-clock seconds of each timed run.

    Raises:
        ConfigError: ``repeats < 1``.
        ModelLoadError: The model cannot be loaded.
    """
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    litert = require("ai_edge_litert.interpreter", "yamnet", "time_bare_interpreter", "ai-edge-litert")
    path = Path(model)
    if not path.is_file():
        raise ModelLoadError(f"time_bare_interpreter: TFLite model file not found: {path}")
    x = np.ascontiguousarray(audio.prepared(SAMPLE_RATE).samples, dtype=np.float32)
    interp = litert.Interpreter(model_path=str(path), num_threads=num_threads or default_num_threads())
    index = interp.get_input_details()[0]["index"]
    out = next(d["index"] for d in interp.get_output_details() if d["shape_signature"][-1] == EMBEDDING_DIM)
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        interp.resize_tensor_input(index, [len(x)], strict=True)
        interp.allocate_tensors()
        interp.set_tensor(index, x)
        interp.invoke()
        interp.get_tensor(out)
        if i:
            times.append(time.perf_counter() - t0)
    logger.debug("bare interpreter: median %.4f s", statistics.median(times))
    return times
