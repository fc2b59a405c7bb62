"""aiSFX: 512-d sound-effects embeddings from the model shipped in the ``aisfx`` wheel (PyTorch).

The model is **X-Sequential-CE** of Ma, Mathur, Keener and Manjunath (ISMIR 2022, "Audio representations for
sound-effects retrieval"): a 9-layer CNN (DCASE's cross-task baseline, four conv blocks of 64-512 channels)
trained across commercial sound-effects libraries. Its weights are ``aisfx/models/checkpoint.pth`` inside the
``aisfx`` 0.1.2 wheel (code MIT; pre-trained model and paper CC BY 4.0: credit the authors when you publish
results). audiovec reads that file with ``torch.load(weights_only=True)`` and runs the embedding network itself
(each eval-mode batch norm folded into its convolution; the classification heads are not used); it never
imports ``aisfx``, whose own spectrogram helper returns a ``[mels, frames]`` array that its blocking function
reads as ``[frames, mels]``.

Front end (``aisfx.inference`` with its ``librosa`` spectrogram, which is what the package runs without
Essentia): 44.1 kHz mono, peak-normalised to 1; power spectrogram with a 2048-sample Hann window every 1024
samples (centred, zero padding); 96 mel bands on the HTK scale from 0 to 22.05 kHz, each filter scaled to unit
sum; ``log10(10000 * mel + 1)``, divided by 9.4578 (the "original" normalisation of the paper's training data).
Blocks of 100 spectrogram frames (2.35 s), every 50 frames (``hop=0.5``), go into the network, one 512-d vector
per block.

Differences from ``aisfx.inference.main``, all needed for a frame to depend only on its own samples:

* the peak normalisation is per frame (each 2.35 s window is scaled by its own peak), not per file; for a
  clip shorter than one frame the two are the same (``normalize="none"`` leaves the waveform as it is);
* the tail is zero-padded into one more frame instead of being dropped (``drop_partial_block=True``), and input
  shorter than one frame gives one frame, as in aiSFX;
* the last spectrogram frame of aiSFX (centred past the end of the input) is computed from the samples it
  covers; librosa drops the frames centred after the last sample, so when the input length is not a multiple
  of 1024 samples one spectrogram frame of the last block differs.

Example:
    >>> from audiovec import get_embedder, load
    >>> emb = get_embedder("aisfx")  # doctest: +SKIP
    >>> emb.embed(load("door_slam.wav")).vectors.shape  # doctest: +SKIP
    (3, 512)
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from audiovec._hashing import sha256_file
from audiovec._optional import require
from audiovec.embedders._mel import mel_filterbank
from audiovec.embedders._torch import TorchConfig, resolve_device, torch_threads
from audiovec.embedders.base import FramedEmbedder
from audiovec.embedders.framing import FrameGeometry
from audiovec.errors import MissingDependencyError, ModelLoadError

__all__ = [
    "AISFX_PIP",
    "EMBEDDING_DIM",
    "AiSFXConfig",
    "AiSFXEmbedder",
    "aisfx_frontend",
    "default_checkpoint_path",
]

#: The pip command that installs the weights (the wheel pins librosa 0.9.2 and numpy 1.23: no dependencies).
AISFX_PIP = "pip install 'audiovec[aisfx]' && pip install --no-deps aisfx==0.1.2"

SAMPLE_RATE = 44100
N_FFT = 2048
STFT_HOP = 1024
N_MELS = 96
BLOCK_FRAMES = 100  # spectrogram frames per model input (aisfx.inference.EMB_BLOCK_LENGTH)
SPEC_MAX = 9.457798957824707  # aisfx.preprocessing.spectrogram_normalize(spec_norm="original"): (spec - 0) / max
EMBEDDING_DIM = 512
FRAME_LENGTH = (BLOCK_FRAMES - 1) * STFT_HOP + N_FFT  # 103424 samples (2.345 s) feed 100 spectrogram frames
_EXTRA = "aisfx"
_FEATURE = "AiSFXEmbedder"
_CONV_BLOCKS = 4
_BN_EPS = 1e-5


class AiSFXConfig(TorchConfig):
    """Configuration of :class:`AiSFXEmbedder`.

    Attributes:
        checkpoint: A ``checkpoint.pth`` of aiSFX's layout (``(state_dict, datasets)``). ``None``: the one inside
            the installed ``aisfx`` package.
        hop: Step between frames as a fraction of the 100-frame block (aiSFX's ``emb_hop_size``; 0.5: 1.16 s).
            Rounded to whole spectrogram frames (1024 samples).
        normalize: ``"peak"``: scale each frame's samples to a peak of 1, as aiSFX scales a file (the model was
            trained on peak-normalised audio); ``"none"``: keep the level (a quiet sound then looks quieter).
        device: torch device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"xpu"`` or ``"auto"``.
        batch_size: Frames per forward pass; bounds memory, does not change the output.
        num_threads: torch intra-op threads during each forward pass (restored afterwards); ``None``: unchanged.
    """

    checkpoint: str | None = None
    hop: float = Field(0.5, gt=0.0, le=1.0, description="frame step as a fraction of the 100-frame block")
    normalize: Literal["peak", "none"] = "peak"


def default_checkpoint_path() -> Path:
    """``aisfx/models/checkpoint.pth`` of the installed ``aisfx`` package (found without importing it).

    Raises:
        MissingDependencyError: ``aisfx`` is not installed.
        ModelLoadError: The package is installed but the checkpoint is not where it should be.
    """
    spec = importlib.util.find_spec("aisfx")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"{_FEATURE}'s weights come from the optional package 'aisfx', which is not installed. Install it "
            f"with: {AISFX_PIP} (or pass checkpoint='/path/to/checkpoint.pth')"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "checkpoint.pth"
    if not path.is_file():
        raise ModelLoadError(f"{_FEATURE}: aisfx is installed but {path} is missing")
    return path


def _numpy_globals() -> list[Any]:
    """The NumPy globals that aiSFX's checkpoint pickles (a NumPy 1.x int64 scalar and its dtype), by name."""
    try:
        multiarray = importlib.import_module("numpy._core.multiarray")  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        multiarray = importlib.import_module("numpy.core.multiarray")
    return [(multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype, type(np.dtype(np.int64))]


def _fold_batch_norms(torch: Any, state: dict[str, Any], device: Any) -> dict[str, tuple[Any, Any]]:
    """Each convolution with the eval-mode batch norm after it folded in: ``conv_block{i}.conv{j}`` -> (weight, bias).

    ``bn(conv(x, W)) = conv(x, W * s) + (beta - mean * s)`` with ``s = gamma / sqrt(var + eps)`` per channel,
    computed in float64 and stored in float32, weights in the channels-last layout; one pass over the activations
    fewer, the same numbers to float rounding (the tests compare with aiSFX's own modules).
    """
    folded: dict[str, tuple[Any, Any]] = {}
    for i in range(1, _CONV_BLOCKS + 1):
        p = f"embedding_net.conv_block{i}"
        for j in (1, 2):
            bn = {k: state[f"{p}.bn{j}.{k}"].double() for k in ("weight", "bias", "running_mean", "running_var")}
            scale = bn["weight"] / torch.sqrt(bn["running_var"] + _BN_EPS)
            weight = state[f"{p}.conv{j}.weight"].double() * scale[:, None, None, None]
            bias = bn["bias"] - bn["running_mean"] * scale
            folded[f"conv_block{i}.conv{j}"] = (
                weight.float().to(device).contiguous(memory_format=torch.channels_last),
                bias.float().to(device),
            )
    return folded


def _state_shapes() -> dict[str, tuple[int, ...]]:
    """Names and shapes of the embedding network's parameters in aiSFX's state dict."""
    shapes: dict[str, tuple[int, ...]] = {}
    c_in = 1
    for i in range(1, _CONV_BLOCKS + 1):
        c_out = 64 * 2 ** (i - 1)
        p = f"embedding_net.conv_block{i}"
        shapes[f"{p}.conv1.weight"] = (c_out, c_in, 3, 3)
        shapes[f"{p}.conv2.weight"] = (c_out, c_out, 3, 3)
        for bn in ("bn1", "bn2"):
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{p}.{bn}.{name}"] = (c_out,)
        c_in = c_out
    return shapes


def aisfx_frontend(
    samples: NDArray[np.float32], n_blocks: int, hop_frames: int, normalize: Literal["peak", "none"] = "peak"
) -> NDArray[np.float32]:
    """The normalised log-mel blocks of aiSFX, ``n_blocks`` of them: ``float32[n_blocks, 100, 96]``.

    Args:
        samples: Mono 44.1 kHz samples covering exactly the blocks:
            ``(n_blocks - 1) * hop_frames * 1024 + 103424`` samples (a centred first frame needs 1024 leading
            zeros, which the embedder's framing provides).
        n_blocks: Number of blocks.
        hop_frames: Spectrogram frames between block starts.
        normalize: ``"peak"`` scales each block's samples to a peak of 1 (a silent block stays silent).
    """
    hop = hop_frames * STFT_HOP
    n_stft = (n_blocks - 1) * hop_frames + BLOCK_FRAMES
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa's stft
    frames = np.lib.stride_tricks.sliding_window_view(samples[: (n_stft - 1) * STFT_HOP + N_FFT], N_FFT)
    spec = np.fft.rfft(frames[::STFT_HOP] * window, axis=1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = power @ _filterbank().T  # [n_stft, 96]
    out = np.empty((n_blocks, BLOCK_FRAMES, N_MELS), np.float32)
    for j in range(n_blocks):
        block = mel[j * hop_frames : j * hop_frames + BLOCK_FRAMES]
        if normalize == "peak":
            peak = float(np.abs(samples[j * hop : j * hop + FRAME_LENGTH]).max())
            if peak > 0:
                block = block / np.float32(peak * peak)
        out[j] = np.log10(np.float32(10000.0) * block + np.float32(1.0)) / np.float32(SPEC_MAX)
    return out


_FILTERBANK: NDArray[np.float32] | None = None


def _filterbank() -> NDArray[np.float32]:
    global _FILTERBANK
    if _FILTERBANK is None:
        _FILTERBANK = mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, 0.0, SAMPLE_RATE / 2, htk=True, norm="l1")
    return _FILTERBANK


class AiSFXEmbedder(FramedEmbedder):
    """aiSFX sound-effects embeddings, ``float32[frames, 512]``: 2.35 s frames every 1.16 s at 44.1 kHz.

    The checkpoint is loaded once, in the constructor.

    Args:
        config: An :class:`AiSFXConfig`, a dict of its fields, or ``None`` for defaults.
        **params: Config fields as keyword arguments.

    Raises:
        ConfigError: Invalid parameters, or a device torch does not have.
        MissingDependencyError: torch (``audiovec[aisfx]``) or, for the default weights, ``aisfx`` is missing.
        ModelLoadError: The checkpoint is missing or is not aiSFX's.

    Example:
        >>> emb = AiSFXEmbedder(hop=1.0)  # doctest: +SKIP
        >>> emb.dim, emb.sample_rate, round(emb.window_s, 3), round(emb.hop_s, 3)  # doctest: +SKIP
        (512, 44100, 2.345, 2.322)
    """

    name: ClassVar[str] = "aisfx"
    version: ClassVar[str] = "1"
    Config = AiSFXConfig
    config: AiSFXConfig
    runtime_fields: ClassVar[tuple[str, ...]] = ("chunk_s", "device", "batch_size", "num_threads")
    _lead = STFT_HOP  # librosa's centred first frame: 1024 zeros before the first sample

    def _setup(self) -> None:
        c = self.config
        t0 = time.perf_counter()
        self.checkpoint_path = Path(c.checkpoint).expanduser() if c.checkpoint else default_checkpoint_path()
        if not self.checkpoint_path.is_file():
            raise ModelLoadError(f"{_FEATURE}: checkpoint not found: {self.checkpoint_path}")
        self._torch: Any = require("torch", _EXTRA, _FEATURE)
        self._device = self._torch.device(resolve_device(self._torch, c.device))
        self._params = self._load(self.checkpoint_path)
        self._sha256 = sha256_file(self.checkpoint_path)
        self._hop_frames = max(1, round(BLOCK_FRAMES * c.hop))
        self.geometry = FrameGeometry(SAMPLE_RATE, FRAME_LENGTH, self._hop_frames * STFT_HOP, EMBEDDING_DIM)
        self.load_seconds = time.perf_counter() - t0

    def _load(self, path: Path) -> dict[str, tuple[Any, Any]]:
        torch = self._torch
        try:
            # the checkpoint also pickles its dataset table, whose class indices are NumPy integers: allow
            # exactly those two NumPy globals, nothing else (no arbitrary code runs)
            with torch.serialization.safe_globals(_numpy_globals()):
                loaded = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:
            raise ModelLoadError(
                f"{_FEATURE}: could not read checkpoint {str(path)!r}: {type(err).__name__}: {err}"
            ) from err
        state = loaded[0] if isinstance(loaded, tuple | list) and loaded else loaded
        if not isinstance(state, dict):
            raise ModelLoadError(f"{_FEATURE}: {str(path)!r} holds no state dict (got {type(state).__name__})")
        for key, shape in _state_shapes().items():
            tensor = state.get(key)
            if tensor is None or tuple(tensor.shape) != shape:
                found = None if tensor is None else tuple(tensor.shape)
                raise ModelLoadError(
                    f"{_FEATURE}: {str(path)!r} is not an aiSFX checkpoint: {key} has shape {found}, expected {shape}"
                )
        return _fold_batch_norms(torch, state, self._device)

    # ------------------------------------------------------------------ model
    def _forward(self, blocks: NDArray[np.float32]) -> NDArray[np.float32]:
        """The ``EmbeddingNet.forward`` of aiSFX (eval mode) on ``float32[B, 100, 96]``: ``float32[B, 512]``."""
        torch = self._torch
        f = torch.nn.functional
        p = self._params
        x = torch.from_numpy(np.ascontiguousarray(blocks)).to(self._device).unsqueeze(1)
        x = x.contiguous(memory_format=torch.channels_last)  # oneDNN's faster layout (same to float rounding)
        for i in range(1, _CONV_BLOCKS + 1):
            for conv in ("conv1", "conv2"):
                weight, bias = p[f"conv_block{i}.{conv}"]
                x = f.relu_(f.conv2d(x, weight, bias, padding=1))  # conv + batch norm (folded), ReLU
            if i < _CONV_BLOCKS:  # the last block pools with a 1x1 kernel: nothing
                x = f.max_pool2d(x, kernel_size=(2, 2))
        out = x.mean(dim=3).max(dim=2).values  # mean over frequency, max over time
        result: NDArray[np.float32] = out.detach().cpu().numpy().astype(np.float32, copy=False)
        return result

    def embed_blocks(self, blocks: NDArray[np.float32]) -> NDArray[np.float32]:
        """The network on aiSFX input blocks ``float32[B, 100, 96]`` (normalised log-mel): ``float32[B, 512]``."""
        torch = self._torch
        outs = []
        with torch_threads(torch, self.config.num_threads), torch.inference_mode():
            for i in range(0, len(blocks), self.config.batch_size):
                outs.append(self._forward(blocks[i : i + self.config.batch_size]))
        return np.concatenate(outs) if outs else np.zeros((0, EMBEDDING_DIM), np.float32)

    # ------------------------------------------------------------------ FramedEmbedder
    def _embed_frames_batch(self, chunks: Sequence[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        blocks = []
        for chunk in chunks:
            n = (len(chunk) - FRAME_LENGTH) // self.hop_length + 1
            blocks.append(aisfx_frontend(chunk, n, self._hop_frames, self.config.normalize))
        counts = [len(b) for b in blocks]
        out = self.embed_blocks(np.concatenate(blocks))
        return [np.ascontiguousarray(part) for part in np.split(out, np.cumsum(counts)[:-1])]

    def _spec_params(self) -> dict[str, Any]:
        """Front-end settings, the weights file name and its SHA-256."""
        params = super()._spec_params()
        params.pop("checkpoint", None)  # the file is identified by its name and digest, not where it lies
        return params | {"weights": self.checkpoint_path.name, "sha256": self._sha256}
