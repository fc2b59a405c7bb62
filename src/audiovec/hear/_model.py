"""Any audiovec embedder behind the HEAR 2021 API: the model object and the three functions.

The HEAR API (https://hearbenchmark.com) asks a module for ``load_model``, ``get_timestamp_embeddings`` and
``get_scene_embeddings``; the loaded model is a ``torch.nn.Module`` with ``sample_rate``,
``scene_embedding_size`` and ``timestamp_embedding_size``. Here the model holds an audiovec embedder and every call
goes through the embedder's own ``embed_batch``, so a HEAR caller gets exactly the vectors audiovec computes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from audiovec._optional import require
from audiovec.audio import Audio
from audiovec.embedders import Embedder, WindowedEmbedder, get_embedder
from audiovec.errors import ConfigError
from audiovec.pooling import pool

require("torch", "hear", "audiovec's HEAR modules")
import torch  # noqa: E402 - after the install hint above

__all__ = [
    "HEAR_SAMPLE_RATES",
    "SCENE_POOLING",
    "HEARModel",
    "as_hear_model",
    "frame_centres",
    "get_scene_embeddings",
    "get_timestamp_embeddings",
    "load_config",
    "load_model",
]

#: The sample rates a HEAR model may declare (the official validator refuses others).
HEAR_SAMPLE_RATES: tuple[int, ...] = (16000, 22050, 44100, 48000)

#: How frame vectors become a scene embedding, and the scene size each gives for frames of ``dim``.
SCENE_POOLING: dict[str, int] = {"mean": 1, "max": 1, "mean_std": 2}


class HEARModel(torch.nn.Module):
    """An audiovec embedder as a HEAR 2021 model (a ``torch.nn.Module`` with no parameters).

    Args:
        embedder: Any :class:`~audiovec.Embedder`.
        pooling: How frame vectors become one scene vector: ``"mean"`` (default), ``"max"`` or ``"mean_std"``
            (mean and standard deviation, twice the frame dimension).

    Attributes:
        embedder: The wrapped embedder.
        sample_rate: The rate HEAR callers must give audio at: the embedder's own rate when HEAR allows it,
            else the lowest allowed rate above it (the embedder resamples).
        timestamp_embedding_size: The embedder's frame dimension.
        scene_embedding_size: The size of a scene vector (``timestamp_embedding_size``, doubled for ``mean_std``).

    Raises:
        ConfigError: Unknown pooling, or an embedder rate above every rate HEAR allows.
    """

    def __init__(self, embedder: Embedder, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in SCENE_POOLING:
            raise ConfigError(f"unknown scene pooling {pooling!r}; choose one of {', '.join(SCENE_POOLING)}")
        self.embedder = embedder
        self.pooling = pooling
        self.sample_rate: int = _hear_rate(embedder.sample_rate)
        self.timestamp_embedding_size: int = int(embedder.dim)
        self.scene_embedding_size: int = int(embedder.dim) * SCENE_POOLING[pooling]

    def forward(self, audio: Any) -> Any:
        """Frame embeddings of ``[n_sounds, n_samples]`` audio (see :func:`get_timestamp_embeddings`)."""
        return get_timestamp_embeddings(audio, self)[0]

    def extra_repr(self) -> str:
        """The embedder and pooling, for ``repr(model)``."""
        return f"embedder={self.embedder!r}, pooling={self.pooling!r}"


def _hear_rate(rate: int) -> int:
    for allowed in HEAR_SAMPLE_RATES:
        if allowed >= rate:
            return allowed
    raise ConfigError(
        f"the embedder works at {rate} Hz, above every sample rate a HEAR model may declare "
        f"({', '.join(map(str, HEAR_SAMPLE_RATES))})"
    )


def as_hear_model(embedder: Embedder | str, *, pooling: str = "mean", **params: Any) -> HEARModel:
    """A HEAR model for ``embedder``: an embedder object, or a registry name built with ``params``.

    Raises:
        ConfigError: Invalid parameters or pooling.
        UnknownPluginError: No embedder of that name.
        MissingDependencyError: The embedder's optional dependency is missing.
    """
    if isinstance(embedder, str):
        embedder = get_embedder(embedder, **params)
    elif params:
        raise ConfigError("parameters are only accepted with an embedder name, not an embedder object")
    return HEARModel(embedder, pooling)


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON or TOML file of embedder parameters (a ``.json`` or ``.toml`` file).

    Raises:
        ConfigError: The file cannot be read or parsed, or does not hold a table.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10
                import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read the HEAR model configuration {str(p)!r}: {err}") from err
    if not isinstance(data, Mapping):
        raise ConfigError(f"{str(p)!r} must hold a table of parameters, got {type(data).__name__}")
    return dict(data)


def load_model(model_file_path: str = "", **params: Any) -> HEARModel:
    """The HEAR ``load_model`` of the parametrised module :mod:`audiovec.hear`.

    Args:
        model_file_path: A ``.json`` or ``.toml`` file naming the embedder (key ``embedder``) and its parameters,
            optionally the scene ``pooling``; keyword arguments override it. Empty: only the keyword arguments.
        **params: ``embedder=...`` (a registry name), ``pooling=...`` and the embedder's parameters.

    Raises:
        ConfigError: No embedder named, or invalid parameters.

    Example:
        >>> model = load_model(embedder="mfcc", n_mfcc=13)
        >>> model.timestamp_embedding_size
        13
    """
    config = load_config(model_file_path) if model_file_path else {}
    config.update(params)
    name = config.pop("embedder", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(
            "audiovec.hear needs an embedder: pass a .json/.toml file with 'embedder = \"<name>\"' as "
            "model_file_path, or use a preset module such as audiovec.hear.mfcc"
        )
    pooling = config.pop("pooling", "mean")
    return as_hear_model(name, pooling=str(pooling), **config)


def _check_model(model: object) -> HEARModel:
    if not isinstance(model, HEARModel):
        raise ConfigError(f"expected a model from an audiovec HEAR module's load_model, got {type(model).__name__}")
    return model


def _as_numpy(audio: Any) -> tuple[NDArray[np.float32], Any]:
    """``[n_sounds, n_samples]`` float32 samples and the torch device of the input (``None`` for other arrays)."""
    device = None
    if isinstance(audio, torch.Tensor):
        device = audio.device
        audio = audio.detach().to("cpu", torch.float32).numpy()
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 2:
        raise ConfigError(f"audio must be [n_sounds, n_samples], got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ConfigError("audio holds no sounds (n_sounds = 0)")
    return x, device


def frame_centres(embedder: Embedder, frames: int) -> NDArray[np.float64]:
    """Centre of every whole frame in seconds, padding included: ``j * hop - lead + window / 2``.

    audiovec's own timestamps give the centre of the part of a frame inside the audio, so the last (padded) frame
    of an input sits earlier than the grid; HEAR asks for a regular grid, so the centres of the whole frames are
    given instead. Embedders built on :class:`~audiovec.embedders.WindowedEmbedder` give their exact framing
    (including a lead of silence, as OpenL3's centring adds); others are taken to start a frame every ``hop_s``.
    """
    if isinstance(embedder, WindowedEmbedder):
        framing = embedder._framing()
        sr = embedder.sample_rate
        grid: NDArray[np.floating[Any]] = (np.arange(frames) * framing.hop - framing.lead + framing.span / 2.0) / sr
    else:
        grid = np.arange(frames) * float(embedder.hop_s) + float(embedder.window_s) / 2.0
    return grid.astype(np.float64)


def _embed(audio: Any, model: object) -> tuple[list[NDArray[np.float32]], NDArray[np.float64], Any]:
    hear = _check_model(model)
    x, device = _as_numpy(audio)
    sounds = [Audio.from_array(row, hear.sample_rate, f"sound {i}") for i, row in enumerate(x)]
    frames = hear.embedder.embed_batch(sounds)
    vectors = [f.vectors for f in frames]
    counts = {len(v) for v in vectors}
    if len(counts) != 1:  # pragma: no cover - equal lengths give equal frame counts
        raise ConfigError(f"sounds of equal length gave different frame counts {sorted(counts)}")
    return vectors, frame_centres(hear.embedder, len(vectors[0])), device


def get_timestamp_embeddings(audio: Any, model: object) -> tuple[Any, Any]:
    """Frame embeddings of a batch of sounds, with their centre times in milliseconds (the HEAR API).

    Args:
        audio: ``[n_sounds, n_samples]`` mono audio in [-1, 1] at ``model.sample_rate`` (a torch tensor; a NumPy
            array works too). All sounds have the same length.
        model: The model from ``load_model``.

    Returns:
        ``float32[n_sounds, n_timestamps, timestamp_embedding_size]`` embeddings and ``float32[n_sounds,
        n_timestamps]`` timestamps: the centres of the frames in milliseconds, on a regular grid. Both are torch
        tensors on the input's device (the CPU for NumPy input).

    Raises:
        ConfigError: Not a 2-D batch, or not an audiovec HEAR model.
        EmptyAudioError: The sounds have no samples.
        NonFiniteAudioError: The audio holds NaN or Inf.
        NonFiniteEmbeddingError: The embedder produced NaN or Inf (e.g. from enormous sample values).
    """
    vectors, centres, device = _embed(audio, model)
    emb = torch.from_numpy(np.stack(vectors).astype(np.float32, copy=False))
    ts = torch.from_numpy(np.tile((centres * 1000.0).astype(np.float32), (len(vectors), 1)))
    if device is not None:
        emb, ts = emb.to(device), ts.to(device)
    return emb, ts


def get_scene_embeddings(audio: Any, model: object) -> Any:
    """One embedding per sound: the model's pooling (mean by default) of its frame embeddings (the HEAR API).

    Args:
        audio: ``[n_sounds, n_samples]`` mono audio in [-1, 1] at ``model.sample_rate`` (see
            :func:`get_timestamp_embeddings`).
        model: The model from ``load_model``.

    Returns:
        ``float32[n_sounds, scene_embedding_size]``, a torch tensor on the input's device.

    Raises:
        ConfigError: Not a 2-D batch, or not an audiovec HEAR model.
        EmptyAudioError: The sounds have no samples.
        NonFiniteAudioError: The audio holds NaN or Inf.
        NonFiniteEmbeddingError: The embedder produced NaN or Inf.
    """
    vectors, _, device = _embed(audio, model)
    pooling = _check_model(model).pooling
    scene = np.stack([pool(v, pooling).reshape(-1) for v in vectors]).astype(np.float32, copy=False)
    out = torch.from_numpy(scene)
    return out.to(device) if device is not None else out
