"""musicnn: music-tagging embeddings from the TensorFlow 1 checkpoints shipped in the ``musicnn`` wheel.

The models are Jordi Pons and Xavier Serra's music auto-taggers (ISMIR 2019 late-breaking demo, "musicnn:
pre-trained convolutional neural networks for music audio tagging"): ``MTT_musicnn`` and ``MTT_vgg`` (trained on
MagnaTagATune, 50 tags) and ``MSD_musicnn`` and ``MSD_vgg`` (Million Song Dataset, 50 tags). The checkpoints are
inside the ``musicnn`` 0.1.0 wheel (ISC licence, Music Technology Group, Universitat Pompeu Fabra); audiovec reads
their variables with TensorFlow's checkpoint reader and runs the networks of ``musicnn.models`` as one
``tf.function``, built once per embedder. It never imports ``musicnn`` (whose code builds a new TF1 graph and
session on every call and needs the Keras 2 ``tf.compat.v1.layers``).

Front end (``musicnn.extractor.batch_data``): 16 kHz mono; power mel spectrogram, 512-point Hann window every 256
samples (centred, zero padding), 96 Slaney mel bands (librosa's defaults); stored as float16, as musicnn's
training data were; ``log10(10000 * mel + 1)``. Patches of 187 spectrogram frames (3 s) go into the network, one
vector per patch; by default patches do not overlap (musicnn's default), ``hop_s`` makes them overlap.
musicnn computes the ``log10`` in float16, where ``10000 * mel`` overflows to infinity for loud bins (1-3 % of
the bins of loud commercial music), which makes the network's output meaningless there; audiovec computes it in
float32, so the two agree wherever musicnn's own output is finite.

Layers (``layer``), as ``musicnn.extractor`` names them:

* musicnn models: ``"penultimate"`` (default; 200-d, the dense layer before the tag layer, after its ReLU and
  batch norm), ``"max_pool"`` and ``"mean_pool"`` (753-d, the temporal max / mean of the mid-end features),
  ``"taggram"`` (the 50 tag probabilities);
* vgg models: ``"pool5"`` (default; 256-d, the last pooling layer, flattened) and ``"taggram"``.

Example:
    >>> from audiovec import get_embedder, load
    >>> emb = get_embedder("musicnn")  # doctest: +SKIP
    >>> emb.embed(load("song.mp3")).vectors.shape  # doctest: +SKIP
    (70, 200)
    >>> get_embedder("musicnn", model="MSD_musicnn", layer="max_pool").dim  # doctest: +SKIP
    753
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from audiovec._hashing import sha256_files
from audiovec.embedders import _tf
from audiovec.embedders._mel import mel_filterbank
from audiovec.embedders.base import EmbedderConfig, FramedEmbedder
from audiovec.embedders.framing import FrameGeometry
from audiovec.errors import MissingDependencyError, ModelLoadError

__all__ = [
    "LAYERS",
    "MODELS",
    "MUSICNN_PIP",
    "MusicnnConfig",
    "MusicnnEmbedder",
    "musicnn_frontend",
    "package_dir",
]

#: The pip command that installs the weights (the wheel pins numpy < 1.17: no dependencies).
MUSICNN_PIP = "pip install 'audiovec[musicnn]' && pip install --no-deps musicnn==0.1.0"

MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
#: The layers each family offers, the default first.
LAYERS: dict[str, tuple[str, ...]] = {
    "musicnn": ("penultimate", "max_pool", "mean_pool", "taggram"),
    "vgg": ("pool5", "taggram"),
}
_DIMS = {"penultimate": 200, "max_pool": 753, "mean_pool": 753, "taggram": 50, "pool5": 256}

SAMPLE_RATE = 16000
N_FFT = 512
STFT_HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1
FRAME_LENGTH = (PATCH_FRAMES - 1) * STFT_HOP + N_FFT  # 48128 samples (3.008 s) feed 187 spectrogram frames
_BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's default
_EXTRA = "musicnn"
_FEATURE = "MusicnnEmbedder"

ModelName = Literal["MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"]
LayerName = Literal["penultimate", "max_pool", "mean_pool", "taggram", "pool5"]


class MusicnnConfig(EmbedderConfig):
    """Configuration of :class:`MusicnnEmbedder`.

    Attributes:
        model: Which packaged model: ``"MTT_musicnn"`` (default), ``"MSD_musicnn"``, ``"MTT_vgg"``, ``"MSD_vgg"``.
        layer: Which activations are the embedding (see the module docstring); ``None``: ``"penultimate"`` for
            the musicnn models, ``"pool5"`` for the vgg models.
        weights_dir: A folder holding the model's checkpoint (``.index`` and ``.data-00000-of-00001``, as in the
            wheel). ``None``: ``musicnn/<model>/`` of the installed ``musicnn`` package.
        hop_s: Step between 3 s patches in seconds, rounded to whole spectrogram frames (16 ms); ``None``: 187
            frames (2.992 s), musicnn's default of patches that neither overlap nor leave gaps.
        batch_size: Patches per model call; bounds memory, does not change the output.
        device: ``"auto"`` (TensorFlow's choice), ``"cpu"``, ``"gpu"`` or ``"gpu:N"``.
        num_threads: TensorFlow intra/inter-op threads (process-wide; only effective before TensorFlow starts).
    """

    model: ModelName = "MTT_musicnn"
    layer: LayerName | None = None
    weights_dir: str | None = None
    hop_s: float | None = Field(None, gt=0.0, le=PATCH_FRAMES * STFT_HOP / SAMPLE_RATE)
    batch_size: int = Field(16, ge=1, le=4096)
    device: str = Field("auto", pattern=_tf.DEVICE_PATTERN)
    num_threads: int | None = Field(None, ge=1, le=1024)

    @model_validator(mode="after")
    def _check_layer(self) -> MusicnnConfig:
        layers = LAYERS[_family(self.model)]
        if self.layer is not None and self.layer not in layers:
            raise ValueError(f"layer {self.layer!r} is not a layer of {self.model}; choose one of {layers}")
        return self


def _family(model: str) -> str:
    return "vgg" if model.endswith("_vgg") else "musicnn"


def package_dir() -> Path:
    """The folder of the installed ``musicnn`` package (found without importing it).

    Raises:
        MissingDependencyError: ``musicnn`` is not installed.
    """
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"{_FEATURE}'s weights come from the optional package 'musicnn', which is not installed. Install it "
            f"with: {MUSICNN_PIP} (or pass weights_dir='/path/to/MTT_musicnn')"
        )
    return Path(next(iter(spec.submodule_search_locations)))


_FILTERBANK: NDArray[np.float32] | None = None


def _filterbank() -> NDArray[np.float32]:
    global _FILTERBANK
    if _FILTERBANK is None:
        _FILTERBANK = mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS)
    return _FILTERBANK


def musicnn_frontend(samples: NDArray[np.float32], n_patches: int, hop_frames: int) -> NDArray[np.float32]:
    """The log-mel patches of musicnn: ``float32[n_patches, 187, 96]``.

    Args:
        samples: Mono 16 kHz samples covering exactly the patches:
            ``(n_patches - 1) * hop_frames * 256 + 48128`` samples (a centred first frame needs 256 leading zeros,
            which the embedder's framing provides).
        n_patches: Number of patches.
        hop_frames: Spectrogram frames between patch starts.
    """
    n_stft = (n_patches - 1) * hop_frames + PATCH_FRAMES
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa's stft
    frames = np.lib.stride_tricks.sliding_window_view(samples[: (n_stft - 1) * STFT_HOP + N_FFT], N_FFT)
    spec = np.fft.rfft(frames[::STFT_HOP] * window, axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = (power @ _filterbank().T).astype(np.float16).astype(np.float32)  # musicnn's float16 representation
    logmel = np.log10(np.float32(10000.0) * mel + np.float32(1.0))
    starts = np.arange(n_patches) * hop_frames
    return np.ascontiguousarray(logmel[starts[:, None] + np.arange(PATCH_FRAMES)[None, :]])


class MusicnnEmbedder(FramedEmbedder):
    """musicnn embeddings, ``float32[frames, dim]``: 3 s patches every 2.99 s (``hop_s``) at 16 kHz.

    The checkpoint is read and the network built once, in the constructor.

    Args:
        config: A :class:`MusicnnConfig`, a dict of its fields, or ``None`` for defaults.
        **params: Config fields as keyword arguments, e.g. ``model="MSD_musicnn"``, ``layer="max_pool"``.

    Attributes:
        load_seconds: Wall time spent reading the checkpoint and building the network.

    Raises:
        ConfigError: Invalid parameters (an unknown model, a layer the model does not have), or a device
            TensorFlow does not have.
        MissingDependencyError: TensorFlow (``audiovec[musicnn]``) or, for the packaged weights, ``musicnn`` is
            missing.
        ModelLoadError: The checkpoint is missing, unreadable, or does not hold the model's variables.
    """

    name: ClassVar[str] = "musicnn"
    version: ClassVar[str] = "1"
    Config = MusicnnConfig
    config: MusicnnConfig
    runtime_fields: ClassVar[tuple[str, ...]] = ("chunk_s", "batch_size", "device", "num_threads")
    _lead = N_FFT // 2  # librosa's centred first frame: n_fft // 2 = 256 zeros before the first sample

    def _setup(self) -> None:
        c = self.config
        t0 = time.perf_counter()
        self.layer: str = c.layer or LAYERS[_family(c.model)][0]
        folder = Path(c.weights_dir).expanduser() if c.weights_dir else package_dir() / c.model
        index = folder / ".index"
        if not index.is_file():
            raise ModelLoadError(
                f"{_FEATURE}: no checkpoint in {str(folder)!r} (expected the files '.index' and "
                "'.data-00000-of-00001' of a musicnn model folder)"
            )
        self.weights_dir = folder
        self._tf, self._device = _tf.start(_EXTRA, _FEATURE, c.device, c.num_threads)
        weights = self._read(folder)
        self._sha256 = sha256_files([index])  # the index holds a checksum of every variable
        with _tf.device_scope(self._tf, self._device):
            self._fn = _build(self._tf, weights, _family(c.model), self.layer)
        self._hop_frames = PATCH_FRAMES if c.hop_s is None else max(1, round(c.hop_s * SAMPLE_RATE / STFT_HOP))
        self.geometry = FrameGeometry(SAMPLE_RATE, FRAME_LENGTH, self._hop_frames * STFT_HOP, _DIMS[self.layer])
        self.load_seconds = time.perf_counter() - t0

    def _read(self, folder: Path) -> dict[str, NDArray[np.float32]]:
        """Every model variable of the checkpoint (the optimiser's slots are left out)."""
        tf = self._tf
        prefix = str(folder) + "/"  # musicnn's checkpoints are named by their folder: '<model>/.index'
        try:
            reader = tf.compat.v1.train.NewCheckpointReader(prefix)
            names = [n for n in reader.get_variable_to_shape_map() if "Adam" not in n and "power" not in n]
            return {n: np.asarray(reader.get_tensor(n), dtype=np.float32) for n in names}
        except Exception as err:
            raise ModelLoadError(
                f"{_FEATURE}: could not read the checkpoint in {str(folder)!r}: {type(err).__name__}: {err}"
            ) from err

    @property
    def tags(self) -> tuple[str, ...]:
        """The 50 tags of the model, in the order of the ``"taggram"`` layer (from ``musicnn.configuration``)."""
        package_dir()  # a missing package raises MissingDependencyError
        configuration = importlib.import_module("musicnn.configuration")  # plain constants: imports nothing
        key = "MSD_LABELS" if self.config.model.startswith("MSD") else "MTT_LABELS"
        return tuple(str(t) for t in getattr(configuration, key))

    def embed_patches(self, patches: NDArray[np.float32]) -> NDArray[np.float32]:
        """The network on log-mel patches ``float32[B, 187, 96]``: ``float32[B, dim]`` of :attr:`layer`."""
        bs = self.config.batch_size
        outs = []
        with _tf.device_scope(self._tf, self._device):
            for i in range(0, len(patches), bs):
                outs.append(np.asarray(self._fn(self._tf.constant(patches[i : i + bs]))))
        return np.concatenate(outs).astype(np.float32, copy=False) if outs else np.zeros((0, self.dim), np.float32)

    # ------------------------------------------------------------------ FramedEmbedder
    def _embed_frames_batch(self, chunks: Sequence[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        patches = []
        for chunk in chunks:
            n = (len(chunk) - FRAME_LENGTH) // self.hop_length + 1
            patches.append(musicnn_frontend(chunk, n, self._hop_frames))
        counts = [len(p) for p in patches]
        out = self.embed_patches(np.concatenate(patches))
        return [np.ascontiguousarray(part) for part in np.split(out, np.cumsum(counts)[:-1])]

    def _spec_params(self) -> dict[str, Any]:
        """Model, layer, patch hop and the checkpoint's digest."""
        return {
            "model": self.config.model,
            "layer": self.layer,
            "hop_frames": self._hop_frames,
            "sha256": self._sha256,
        }


# ------------------------------------------------------------------------------------------- the networks
def _build(tf: Any, weights: dict[str, NDArray[np.float32]], family: str, layer: str) -> Callable[[Any], Any]:
    """``musicnn.models.define_model`` (inference: ``is_training=False``) as a ``tf.function`` returning ``layer``.

    The variables are named as ``tf.compat.v1.layers`` named them, in creation order (``conv2d``, ``conv2d_1``...,
    ``batch_normalization``, ``batch_normalization_1``...; the vgg convolutions ``1CNN``...``5CNN``).

    Raises:
        ModelLoadError: A variable is missing or has another shape than the network needs.
    """
    w: dict[str, Any] = {}

    def var(name: str, shape: tuple[int, ...] | None = None) -> Any:
        if name not in w:
            arr = weights.get(name)
            if arr is None or (shape is not None and arr.shape != shape):
                found = None if arr is None else arr.shape
                raise ModelLoadError(f"{_FEATURE}: checkpoint variable {name} has shape {found}, expected {shape}")
            w[name] = tf.constant(arr)
        return w[name]

    def bn(x: Any, i: int) -> Any:
        p = "batch_normalization" + (f"_{i}" if i else "")
        scale = var(f"{p}/gamma") * tf.math.rsqrt(var(f"{p}/moving_variance") + _BN_EPS)
        return x * scale + (var(f"{p}/beta") - var(f"{p}/moving_mean") * scale)

    def conv(x: Any, name: str, padding: str) -> Any:
        return tf.nn.relu(tf.nn.conv2d(x, var(f"{name}/kernel"), 1, padding) + var(f"{name}/bias"))

    def conv_name(i: int) -> str:
        return "conv2d" + (f"_{i}" if i else "")

    def pad_time(x: Any) -> Any:
        return tf.pad(x, [[0, 0], [3, 3], [0, 0], [0, 0]])

    def musicnn(x: Any) -> Any:
        inp = bn(tf.expand_dims(x, 3), 0)
        front = []
        for i, pad in ((0, True), (1, True), (2, False), (3, False), (4, False)):  # 2 timbral, 3 temporal
            y = bn(conv(pad_time(inp) if pad else inp, conv_name(i), "VALID" if pad else "SAME"), i + 1)
            front.append(tf.reduce_max(y, axis=2))  # max over frequency: [B, T, filters]
        front_out = tf.expand_dims(tf.concat(front, 2), 3)  # [B, T, 561, 1]
        c1 = tf.transpose(bn(conv(pad_time(front_out), conv_name(5), "VALID"), 6), [0, 1, 3, 2])
        c2 = tf.transpose(bn(conv(pad_time(c1), conv_name(6), "VALID"), 7), [0, 1, 3, 2]) + c1
        c3 = tf.transpose(bn(conv(pad_time(c2), conv_name(7), "VALID"), 8), [0, 1, 3, 2]) + c2
        mid = tf.concat([front_out, c1, c2, c3], 2)  # [B, T, 753, 1]
        max_pool = tf.reduce_max(mid, axis=1)  # [B, 753, 1]
        mean_pool = tf.reduce_mean(mid, axis=1)
        if layer in ("max_pool", "mean_pool"):
            return tf.squeeze(max_pool if layer == "max_pool" else mean_pool, [2])
        flat = bn(tf.reshape(tf.concat([max_pool, mean_pool], 2), [-1, 2 * 753]), 9)
        penultimate = bn(tf.nn.relu(tf.matmul(flat, var("dense/kernel")) + var("dense/bias")), 10)
        if layer == "penultimate":
            return penultimate
        return tf.sigmoid(tf.matmul(penultimate, var("dense_1/kernel")) + var("dense_1/bias"))

    def vgg(x: Any) -> Any:
        y = bn(tf.expand_dims(x, 3), 0)
        pools = ((4, 1, 2, 2), (2, 2, 2, 2), (2, 2, 2, 2), (2, 2, 2, 2), (4, 4, 4, 4))
        for i, (ph, pw, sh, sw) in enumerate(pools, start=1):
            y = bn(conv(y, f"{i}CNN", "SAME"), i)
            y = tf.nn.max_pool2d(y, [ph, pw], [sh, sw], "VALID")
        pool5 = tf.reshape(y, [tf.shape(y)[0], -1])
        if layer == "pool5":
            return pool5
        return tf.sigmoid(tf.matmul(pool5, var("dense/kernel")) + var("dense/bias"))

    body = vgg if family == "vgg" else musicnn
    fn = tf.function(body, input_signature=[tf.TensorSpec([None, PATCH_FRAMES, N_MELS], tf.float32)])
    try:
        fn.get_concrete_function()  # trace now: a checkpoint that does not fit fails in the constructor
    except ModelLoadError:
        raise
    except Exception as err:
        raise ModelLoadError(
            f"{_FEATURE}: the checkpoint does not fit the network: {type(err).__name__}: {err}"
        ) from err
    return fn  # type: ignore[no-any-return]
