"""The presets: :class:`HFAudioEmbedder` with a default checkpoint and a check that a checkpoint is of its family."""

from __future__ import annotations

from typing import ClassVar

from audiovec.embedders.base import EmbedderConfig
from audiovec.embedders.hf.config import (
    ASTEmbedderConfig,
    HuBERTEmbedderConfig,
    Wav2Vec2EmbedderConfig,
    WhisperEmbedderConfig,
)
from audiovec.embedders.hf.embedder import HFAudioEmbedder

__all__ = ["ASTEmbedder", "HuBERTEmbedder", "Wav2Vec2Embedder", "WhisperEmbedder"]


class Wav2Vec2Embedder(HFAudioEmbedder):
    """Wav2Vec2 token embeddings (default ``facebook/wav2vec2-base``: 768-d, 50 per second, 10 s windows).

    ``layer="extract_features"`` gives the 512-d CNN features (for instance to concatenate a fixed number of them
    per file as a whole-clip vector).

    Example:
        >>> from audiovec import get_embedder
        >>> emb = get_embedder("wav2vec2", layer="extract_features")  # doctest: +SKIP
        >>> emb.dim, emb.hop_s  # doctest: +SKIP
        (512, 0.02)
    """

    name: ClassVar[str] = "wav2vec2"
    Config: ClassVar[type[EmbedderConfig]] = Wav2Vec2EmbedderConfig
    families: ClassVar[frozenset[str] | None] = frozenset({"wav2vec2", "wav2vec2-conformer"})


class HuBERTEmbedder(HFAudioEmbedder):
    """HuBERT token embeddings (default ``facebook/hubert-base-ls960``: 768-d, 50 per second, 10 s windows)."""

    name: ClassVar[str] = "hubert"
    Config: ClassVar[type[EmbedderConfig]] = HuBERTEmbedderConfig
    families: ClassVar[frozenset[str] | None] = frozenset({"hubert"})


class WhisperEmbedder(HFAudioEmbedder):
    """Whisper encoder token embeddings (default ``openai/whisper-base``: 512-d, 50 per second, 30 s windows).

    Whisper's encoder always reads 30 s; a shorter window (``context_s``, or the end of a file) is zero-padded to
    30 s and only the tokens over real audio are returned. Every window costs a full 30 s encoder pass, so short
    ``context_s`` values are slower per second of audio.
    """

    name: ClassVar[str] = "whisper"
    Config: ClassVar[type[EmbedderConfig]] = WhisperEmbedderConfig
    families: ClassVar[frozenset[str] | None] = frozenset({"whisper"})


class ASTEmbedder(HFAudioEmbedder):
    """Audio Spectrogram Transformer: one 768-d vector per 10.24 s window.

    Default checkpoint ``MIT/ast-finetuned-audioset-10-10-0.4593``.
    """

    name: ClassVar[str] = "ast"
    Config: ClassVar[type[EmbedderConfig]] = ASTEmbedderConfig
    families: ClassVar[frozenset[str] | None] = frozenset({"audio-spectrogram-transformer"})
