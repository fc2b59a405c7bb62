"""CLAP: audio embeddings (one unit vector per window) and text embeddings in the same space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from audiovec.embedders.base import EmbedderConfig
from audiovec.embedders.hf._backends import pooled
from audiovec.embedders.hf.config import CLAPEmbedderConfig
from audiovec.embedders.hf.embedder import HFAudioEmbedder
from audiovec.errors import ConfigError, EmbeddingError, ModelLoadError

__all__ = ["CLAPEmbedder"]


class CLAPEmbedder(HFAudioEmbedder):
    """CLAP audio embeddings (one unit vector per 10 s window) and text embeddings in the same space.

    Default checkpoint ``laion/clap-htsat-unfused`` (512-d). Audio and text vectors are L2-normalised, so their
    inner product is the cosine similarity CLAP was trained with: search audio by text with
    ``store.search(emb.embed_text(["a dog barking"]))``.

    Example:
        >>> from audiovec import get_embedder, load
        >>> clap = get_embedder("clap")  # doctest: +SKIP
        >>> audio_vecs = clap.embed(load("dog.ogg")).vectors  # doctest: +SKIP
        >>> scores = audio_vecs @ clap.embed_text(["a dog barking", "a piano"]).T  # doctest: +SKIP
    """

    name: ClassVar[str] = "clap"
    Config: ClassVar[type[EmbedderConfig]] = CLAPEmbedderConfig
    families: ClassVar[frozenset[str] | None] = frozenset({"clap"})

    def _setup(self) -> None:
        super()._setup()
        try:
            self._tokenizer = self._transformers.AutoTokenizer.from_pretrained(self._where, **self._kw)
        except Exception as err:
            raise ModelLoadError(f"cannot load the tokenizer of {self._what()}: {type(err).__name__}: {err}") from err
        text_cfg = self._hf_config.text_config
        limit = int(getattr(self._tokenizer, "model_max_length", 0) or 0)
        positions = int(text_cfg.max_position_embeddings) - 2  # RoBERTa-style positions start after the pad id
        self._max_tokens = positions if limit <= 0 or limit > positions else limit

    def embed_text(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed texts into the audio embedding space.

        Texts longer than the text tower's maximum are truncated. Batched ``batch_size`` at a time, padded with
        an attention mask (a batch gives one-text-at-a-time vectors up to float rounding, 1e-5 in the tests).

        Args:
            texts: The queries (``["a dog barking", "rain on a roof"]``).

        Returns:
            ``float32[len(texts), dim]``, unit-length rows.

        Raises:
            ConfigError: ``texts`` is a single string or holds something that is not a string.
            EmbeddingError: The model failed.
        """
        if isinstance(texts, str):
            raise ConfigError("embed_text expects a list of strings, not one string (wrap it: [text])")
        items = list(texts)
        for t in items:
            if not isinstance(t, str):
                raise ConfigError(f"embed_text expects strings, got {type(t).__name__}")
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        torch = self._torch
        model = self._backend.model
        out: list[NDArray[np.float32]] = []
        size = self.config.batch_size
        try:
            for i in range(0, len(items), size):
                tok = self._tokenizer(
                    items[i : i + size],
                    padding=True,
                    truncation=True,
                    max_length=self._max_tokens,
                    return_tensors="pt",
                )
                with torch.inference_mode():
                    res = model.get_text_features(
                        input_ids=tok["input_ids"].to(self.device), attention_mask=tok["attention_mask"].to(self.device)
                    )
                    vec = torch.nn.functional.normalize(pooled(torch, res).float(), dim=-1)
                out.append(self._backend._numpy(vec))
        except Exception as err:
            raise EmbeddingError(f"clap ({self.config.model}) failed while embedding text: {err}") from err
        return np.concatenate(out, axis=0)
