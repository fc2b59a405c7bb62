""":class:`HFAudioEmbedder`: any supported Hugging Face audio encoder, by Hub id or local directory.

The model is cut into isolated context windows by the shared framing helper (:mod:`audiovec.embedders.framing`),
so ``embed``, ``embed_batch``, ``embed_stream`` and ``embed_file`` give the model the same windows; this class adds
loading, the batching policy of each model family and the spec. See :mod:`audiovec.embedders.hf` for the notes on
windows, batching and determinism.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from audiovec._download import offline
from audiovec._optional import require
from audiovec.embedders._torch import resolve_device
from audiovec.embedders.base import EmbedderConfig, WindowedEmbedder
from audiovec.embedders.framing import FrameGeometry, Framing, ModelInput
from audiovec.embedders.hf._backends import SUPPORTED_MODEL_TYPES, Backend, backend_class
from audiovec.embedders.hf._loading import describe, fingerprint, resolve_source
from audiovec.embedders.hf.config import HFAudioConfig
from audiovec.errors import ConfigError, EmbeddingError, ModelLoadError

__all__ = ["HFAudioEmbedder"]

log = logging.getLogger(__name__)


class HFAudioEmbedder(WindowedEmbedder):
    """Any supported Hugging Face audio encoder, by Hub id or local directory.

    Supported ``model_type``: see :data:`~audiovec.embedders.hf.SUPPORTED_MODEL_TYPES`. Output:
    ``float32[frames, dim]`` token vectors (Wav2Vec2-style models and Whisper, :attr:`output` ``"frames"``) or one
    vector per context window (AST, CLAP; :attr:`output` ``"pooled"``). The model is loaded once, in the
    constructor.

    Args:
        config: A config instance, a dict of its fields, or ``None`` (then ``model=`` is required).
        **params: Config fields as keyword arguments (override ``config``); see :class:`HFAudioConfig`.

    Raises:
        ConfigError: Invalid parameters, a layer the model does not have, an unusable device, or a checkpoint of
            the wrong family for a preset.
        MissingDependencyError: torch or transformers is not installed (``pip install 'audiovec[transformers]'``).
        ModelLoadError: The model, its config or its feature extractor cannot be loaded (not found, not cached
            with ``local_files_only``, corrupt, or not a supported audio encoder).

    Example:
        >>> from audiovec import get_embedder, load
        >>> emb = get_embedder("hf", model="facebook/wav2vec2-base", layer=6)  # doctest: +SKIP
        >>> emb.embed(load("speech_3s.flac")).vectors.shape  # 50 frames per second  # doctest: +SKIP
        (150, 768)
    """

    name: ClassVar[str] = "hf"
    version: ClassVar[str] = "1"
    Config: ClassVar[type[EmbedderConfig]] = HFAudioConfig
    #: Model types a preset accepts (``None``: every supported type).
    families: ClassVar[frozenset[str] | None] = None

    config: HFAudioConfig

    # ------------------------------------------------------------------ loading
    @property
    def offline(self) -> bool:
        """Whether loading may not use the network (``local_files_only`` or ``HF_HUB_OFFLINE``)."""
        return offline(self.config.local_files_only)

    def _what(self) -> str:
        return describe(self.config, self.offline)

    def _setup(self) -> None:
        self._fingerprint: dict[str, Any] | None = None
        feature = f"{type(self).__name__}"
        torch = require("torch", "transformers", feature)
        transformers = require("transformers", "transformers", feature)
        self._torch = torch
        c = self.config
        self.device = resolve_device(torch, c.device)
        dtype = getattr(torch, c.dtype)
        where, kw = resolve_source(c, self.offline)
        self._where, self._kw = where, kw
        try:
            hf_config = transformers.AutoConfig.from_pretrained(where, **kw)
        except Exception as err:
            raise ModelLoadError(f"cannot load the config of {self._what()}: {type(err).__name__}: {err}") from err
        model_type = str(getattr(hf_config, "model_type", ""))
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ModelLoadError(
                f"{self._what()} has model_type {model_type!r}, which is not an audio encoder audiovec supports "
                f"(supported: {', '.join(sorted(SUPPORTED_MODEL_TYPES))})"
            )
        if self.families is not None and model_type not in self.families:
            raise ConfigError(
                f"the {self.name!r} embedder expects a {'/'.join(sorted(self.families))} checkpoint, but {c.model!r} "
                f"is {model_type!r}; use get_embedder('hf', model=...) for other architectures"
            )
        try:
            with warnings.catch_warnings():
                # AST's 128 Kaldi mel bands include empty ones at a 512-point FFT; transformers warns on every load
                warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
                fe = transformers.AutoFeatureExtractor.from_pretrained(where, **kw)
            model = transformers.AutoModel.from_pretrained(where, config=hf_config, **kw)
        except Exception as err:
            raise ModelLoadError(f"cannot load {self._what()}: {type(err).__name__}: {err}") from err
        if model_type == "whisper":
            model = model.get_encoder()
        model = model.to(device=self.device, dtype=dtype).eval()
        self.model_type = model_type
        self._hf_config = hf_config
        self._backend: Backend = backend_class(model_type)(torch, model, fe, self.device, dtype, hf_config, c)
        self._transformers = transformers
        f = self._backend.framing
        self.geometry = FrameGeometry(self._backend.sample_rate, f.span, f.hop, self._backend.dim)
        # the model input of a full window; models that batch only equal lengths hold shorter ones back
        self._full_len = len(f.model_input(np.zeros(f.step, np.float32), f.per_input).samples)
        log.info("loaded %s (%s) on %s", c.model, model_type, self.device)

    # ------------------------------------------------------------------ attributes
    @property
    def context_s(self) -> float:
        """Seconds of audio in one independent model window."""
        return self._backend.framing.step / self.sample_rate

    @property
    def output(self) -> Literal["frames", "pooled"]:
        """``"frames"`` (one vector per token) or ``"pooled"`` (one vector per context window)."""
        return "pooled" if self.model_type in ("audio-spectrogram-transformer", "clap") else "frames"

    def _spec_params(self) -> dict[str, Any]:
        """Checkpoint identity (commit and weight-file hashes) and output-relevant parameters.

        ``device``, ``batch_size``, ``cache_dir`` and ``local_files_only`` do not change the output and are left out;
        a local directory is named by its last path component, so the same weights give the same key everywhere.
        Weight files are hashed (SHA-256) on the first call; files in the Hugging Face cache are named by their
        hash already and are not read.
        """
        c = self.config
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self._where, c, self._hf_config)
        return {
            # a local directory is named by its last component, so that the key does not depend on the machine
            "model": Path(self._where).name if Path(c.model).expanduser().is_dir() else c.model,
            "revision": c.revision,
            "model_type": self.model_type,
            "layer": c.layer,
            "dtype": c.dtype,
            "window_samples": self._backend.framing.step,
            "sample_rate": self.sample_rate,
            **self._fingerprint,
        }

    def __repr__(self) -> str:
        c = self.config
        return (
            f"{type(self).__name__}(model={c.model!r}, layer={c.layer!r}, context_s={self.context_s:g}, "
            f"device={self.device!r}, dtype={c.dtype!r})"
        )

    # ------------------------------------------------------------------ windows and batches
    def _framing(self) -> Framing:
        return self._backend.framing

    def _inputs_per_call(self, batch: bool) -> int | None:
        """``batch_size`` windows per model call, one input or many."""
        return self.config.batch_size

    def _defer(self, item: ModelInput) -> bool:
        """Models that batch only equal lengths keep partial windows for the last call (run together by length)."""
        return self._backend.equal_lengths and len(item.samples) != self._full_len

    def _label(self) -> str:
        return f"{self.name} ({self.config.model})"

    def _batches(self, windows: Sequence[ModelInput]) -> list[list[int]]:
        """Indices of ``windows`` grouped into model calls of at most ``batch_size``."""
        size = self.config.batch_size
        if self._backend.equal_lengths:
            groups: dict[int, list[int]] = {}
            for i, w in enumerate(windows):
                groups.setdefault(len(w.samples), []).append(i)
            ordered = [idx for _, idx in sorted(groups.items(), reverse=True)]
        else:  # similar lengths together: less padding
            ordered = [sorted(range(len(windows)), key=lambda i: -len(windows[i].samples))]
        return [idx[i : i + size] for idx in ordered for i in range(0, len(idx), size)]

    def _embed_inputs(self, inputs: Sequence[ModelInput]) -> list[NDArray[np.float32]]:
        out: list[NDArray[np.float32] | None] = [None] * len(inputs)
        for idx in self._batches(inputs):
            frames = [inputs[i].frames for i in idx]
            with self._torch.inference_mode():
                vectors = self._backend.run([inputs[i].samples for i in idx], frames)
            for i, v in zip(idx, vectors, strict=False):
                out[i] = v
        if any(v is None for v in out):
            raise EmbeddingError(f"{self.name}: the model returned fewer frames than expected (implementation bug)")
        return [v for v in out if v is not None]
