"""Configuration of the Hugging Face embedders: :class:`HFAudioConfig` and the presets' defaults."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from audiovec.embedders._torch import DEVICES, check_device
from audiovec.embedders.base import EmbedderConfig

__all__ = [
    "ASTEmbedderConfig",
    "CLAPEmbedderConfig",
    "HFAudioConfig",
    "HuBERTEmbedderConfig",
    "Wav2Vec2EmbedderConfig",
    "WhisperEmbedderConfig",
]


class HFAudioConfig(EmbedderConfig):
    """Configuration of :class:`HFAudioEmbedder` and its presets.

    Attributes:
        model: Hub model id (``"facebook/wav2vec2-base"``) or a local directory written by ``save_pretrained``
            (weights, ``config.json`` and ``preprocessor_config.json``).
        revision: Branch, tag or commit of a Hub model (``None``: the default branch).
        cache_dir: Hugging Face hub cache directory (``None``: the default, ``$HF_HUB_CACHE`` or ``$HF_HOME/hub``).
        local_files_only: Never touch the network: load from ``model`` (a directory) or from the cache only.
            ``HF_HUB_OFFLINE=1`` in the environment has the same effect.
        layer: Which output to read. ``"last"``: the model's final output (``last_hidden_state`` for frame
            models, the pooled/projected vector for AST and CLAP). An integer ``k``: ``hidden_states[k]`` as
            transformers returns it (``0`` is the input of the first transformer layer; negative counts from the
            end); for AST it is the mean of all tokens of that layer. ``"extract_features"`` (Wav2Vec2-style
            models only): the CNN features before the transformer, layer-normalised as transformers'
            ``extract_features`` output (512-d for the base models).
        context_s: Seconds of audio per independent model window. ``None``: 10 s for Wav2Vec2-style models, and
            the model's full input for the others (Whisper 30 s, AST 10.24 s, CLAP 10 s). Whisper, AST and CLAP
            accept shorter windows (padded as the model expects), never longer ones. Rounded to whole tokens.
        batch_size: Windows per model call. Larger is faster on a GPU and takes more memory.
        device: ``"auto"`` (CUDA, then Apple MPS, then Intel XPU, then the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
            ``"mps"``, ``"xpu"`` or ``"xpu:N"``.
        dtype: Floating-point type of the weights and activations (``"float16"``/``"bfloat16"`` mainly for GPUs).
            Outputs are always ``float32``.
    """

    model: str = Field(..., min_length=1)
    revision: str | None = None
    cache_dir: str | None = None
    local_files_only: bool = False
    layer: Literal["last", "extract_features"] | int = "last"
    context_s: float | None = Field(None, gt=0, le=3600)
    batch_size: int = Field(8, ge=1, le=4096)
    device: str = Field("auto", description=f"torch device: {DEVICES}")
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"

    @field_validator("model", "cache_dir", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("layer", mode="before")
    @classmethod
    def _no_bool_layer(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("layer must be 'last', 'extract_features' or an integer index, not a bool")
        return value

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        return check_device(value)

    @model_validator(mode="after")
    def _no_chunk_s(self) -> HFAudioConfig:
        if "chunk_s" in self.model_fields_set:
            raise ValueError(
                "chunk_s does not apply to Hugging Face embedders: audio is cut into context_s windows and "
                "batch_size windows go into one model call"
            )
        return self


class Wav2Vec2EmbedderConfig(HFAudioConfig):
    """Configuration of :class:`Wav2Vec2Embedder` (default checkpoint ``facebook/wav2vec2-base``, 768-d, 50 Hz)."""

    model: str = Field("facebook/wav2vec2-base", min_length=1)


class HuBERTEmbedderConfig(HFAudioConfig):
    """Configuration of :class:`HuBERTEmbedder` (default ``facebook/hubert-base-ls960``, 768-d, 50 Hz)."""

    model: str = Field("facebook/hubert-base-ls960", min_length=1)


class WhisperEmbedderConfig(HFAudioConfig):
    """Configuration of :class:`WhisperEmbedder` (default ``openai/whisper-base``: encoder, 512-d, 50 Hz)."""

    model: str = Field("openai/whisper-base", min_length=1)


class ASTEmbedderConfig(HFAudioConfig):
    """Configuration of :class:`ASTEmbedder` (default ``MIT/ast-finetuned-audioset-10-10-0.4593``, 768-d)."""

    model: str = Field("MIT/ast-finetuned-audioset-10-10-0.4593", min_length=1)


class CLAPEmbedderConfig(HFAudioConfig):
    """Configuration of :class:`CLAPEmbedder` (default ``laion/clap-htsat-unfused``, 512-d, unit length)."""

    model: str = Field("laion/clap-htsat-unfused", min_length=1)
