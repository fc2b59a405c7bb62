"""Hugging Face audio encoders (``transformers``): Wav2Vec2, HuBERT, WavLM, Whisper's encoder, AST and CLAP.

One generic embedder, :class:`HFAudioEmbedder` (registry name ``hf``), takes a model id on the Hub or a local
directory written by ``save_pretrained``; the presets (``wav2vec2``, ``hubert``, ``whisper``, ``ast``, ``clap``)
are the same class with a default checkpoint and a check that the checkpoint is of their family.
:class:`CLAPEmbedder` also embeds text into the audio space (:meth:`CLAPEmbedder.embed_text`).

Windowing. A transformer's output for one position depends on everything in its input, so audio is cut into
fixed, independent, back-to-back *context windows* (``context_s``; window ``k`` holds samples
``[k * step, (k + 1) * step)``) and each window is embedded on its own (the cutting is the shared
:class:`~audiovec.embedders.framing.Framing` with ``isolated=True``). A window's input never depends on the audio
outside it, so :meth:`~HFAudioEmbedder.embed`, :meth:`~HFAudioEmbedder.embed_batch`,
:meth:`~HFAudioEmbedder.embed_stream` and :meth:`~HFAudioEmbedder.embed_file` give the model the same windows
(their results agree up to the float rounding of batched computation, see Batching), and a file of any length is
embedded with memory bounded by ``batch_size`` windows. The price: tokens near a window boundary see no context
beyond it. Two kinds of output:

* **frames** (Wav2Vec2-style models, Whisper): one vector per encoder token, on one uniform grid across windows
  (50 per second for the usual checkpoints: frame ``j`` starts at ``j * 20 ms``; 500 frames per 10 s window).
  Wav2Vec2-style models read the raw waveform through a CNN whose receptive field (400 samples, 25 ms) is longer
  than its stride (320 samples); each window is zero-padded after its own samples to complete its last frame
  (80 samples for a full window), and the end of the audio is padded the same way, so there is a frame for every
  started 20 ms, as for :class:`~audiovec.FramedEmbedder`. ``window_s`` is the receptive field (25 ms).
  Whisper's encoder only accepts its full 30 s input: each window of real audio is zero-padded to 30 s by the
  feature extractor and only the tokens over real audio are kept (``ceil(samples / 320)`` of them; the rest
  encode padding). ``window_s`` is one token (20 ms).
* **pooled** (AST, CLAP audio tower): one vector per window (10.24 s for AST, 10 s for CLAP), timestamped at the
  centre of the part of the window that holds audio. The last window of a file is usually partial: AST pads
  its spectrogram with zeros, CLAP repeats the audio to fill the window ("repeatpad", as in LAION's code).

Batching. Windows (of one long file or of many files) go to the model ``batch_size`` at a time. Whisper, AST and
CLAP turn every window into an input of the same fixed size, so a window's input does not depend on its
batch-mates. Wav2Vec2-style models take
variable-length waveforms: checkpoints whose CNN uses layer normalisation (``feat_extract_norm="layer"``, e.g.
wav2vec2-large-lv60) are padded and given an attention mask; checkpoints with group normalisation
(``feat_extract_norm="group"``, e.g. wav2vec2-base and hubert-base) were not trained with an attention mask and
their group norm takes statistics over the whole (padded) input, so, as transformers documents, they get no
attention mask, and audiovec only batches windows of *equal length* together (all full windows are), so padding
never reaches a window. A batched result is therefore the one-by-one result up to float rounding: a batched matrix
product may round differently from a single one (the tests allow 1e-5, and 1e-4 with attention masks).

Determinism. Dropout is off (``eval()``), and CLAP's random crops never happen: windows are never longer than the
feature extractor's maximum, CLAP's ``is_longer`` flags are all false (transformers otherwise sets a random one for
fusion checkpoints), and NumPy's global random state is restored after CLAP's feature extractor runs.

Loading. ``model`` is a Hub id (downloaded to the Hugging Face cache on first use) or a local directory.
``local_files_only=True``, or ``HF_HUB_OFFLINE=1`` in the environment, forbids any network access: a Hub id is
then looked up in the cache by path and loaded from its snapshot directory. ``cache_dir`` and ``revision`` select
the cache and the Hub revision. A model that cannot be loaded raises
:class:`~audiovec.errors.ModelLoadError` naming what was tried; audiovec never falls back to another model.
torch and transformers are imported when an embedder is built, never by ``import audiovec``.

Layout: ``config`` (the configurations), ``embedder`` (:class:`HFAudioEmbedder`: loading, batching policy, spec),
``presets`` and ``clap`` (the named presets; CLAP's text tower), ``_backends`` (one adapter per model family) and
``_loading`` (where a model is loaded from and what identifies its weights).
"""

from __future__ import annotations

from audiovec.embedders.hf._backends import SUPPORTED_MODEL_TYPES
from audiovec.embedders.hf.clap import CLAPEmbedder
from audiovec.embedders.hf.config import (
    ASTEmbedderConfig,
    CLAPEmbedderConfig,
    HFAudioConfig,
    HuBERTEmbedderConfig,
    Wav2Vec2EmbedderConfig,
    WhisperEmbedderConfig,
)
from audiovec.embedders.hf.embedder import HFAudioEmbedder
from audiovec.embedders.hf.presets import ASTEmbedder, HuBERTEmbedder, Wav2Vec2Embedder, WhisperEmbedder

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "ASTEmbedder",
    "ASTEmbedderConfig",
    "CLAPEmbedder",
    "CLAPEmbedderConfig",
    "HFAudioConfig",
    "HFAudioEmbedder",
    "HuBERTEmbedder",
    "HuBERTEmbedderConfig",
    "Wav2Vec2Embedder",
    "Wav2Vec2EmbedderConfig",
    "WhisperEmbedder",
    "WhisperEmbedderConfig",
]
