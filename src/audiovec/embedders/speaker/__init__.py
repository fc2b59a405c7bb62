"""Speaker embedders: Resemblyzer (GE2E, 256-d) and ECAPA-TDNN (SpeechBrain checkpoints, 192-d).

Both turn speech into vectors whose cosine similarity says "same speaker". They follow the framing rules of
:class:`~audiovec.embedders.base.FramedEmbedder`: each frame is one fixed window of audio, embedded from its own
samples only, so chunked, streamed, batched and one-shot embedding give the model the same windows. An utterance
vector is the pipeline ``Pipeline.parse("mean+l2")`` over the frames.

* :class:`ResemblyzerEmbedder` (:mod:`~audiovec.embedders.speaker.resemblyzer`): the pretrained GE2E voice
  encoder that ships inside the ``resemblyzer`` wheel (3-layer LSTM over 40-band mel frames at 16 kHz). One
  frame is one of Resemblyzer's 1.6 s *partial utterances*; its vector is the L2-normalised partial embedding.
  Mean + L2 over the frames is what ``VoiceEncoder.embed_utterance`` computes (the test suite checks it on real
  speech). Resemblyzer's ``preprocess_wav`` (volume normalisation to -30 dBFS and webrtcvad silence trimming)
  looks at the whole utterance, so it is **not** applied inside the embedder; call
  :func:`resemblyzer_preprocess` on a whole utterance first when you want it.
* :class:`ECAPAEmbedder` (:mod:`~audiovec.embedders.speaker.ecapa`): ECAPA-TDNN models in SpeechBrain's format
  (``hyperparams.yaml`` + ``embedding_model.ckpt``; default ``speechbrain/spkrec-ecapa-voxceleb``), loaded from a
  local directory or the Hugging Face Hub and run by a pure-PyTorch re-implementation of SpeechBrain's inference
  path (Fbank features, sentence mean normalisation, ``ECAPA_TDNN``), which gives the output of
  ``EncoderClassifier.encode_batch`` without importing ``speechbrain`` or ``torchaudio``. One frame is a fixed
  window (3 s, hop 1 s by default).

The PyTorch machinery both share (device, threads, batched windows, spec) is in ``_base``; the ECAPA network and
the reader of SpeechBrain's ``hyperparams.yaml`` are in ``_ecapa_net`` and ``_hyperparams``. Heavy imports
(``torch``, ``resemblyzer``, ``huggingface_hub``, ``yaml``) happen in the constructors only.
"""

from __future__ import annotations

from audiovec.embedders.speaker.ecapa import ECAPAConfig, ECAPAEmbedder
from audiovec.embedders.speaker.resemblyzer import ResemblyzerConfig, ResemblyzerEmbedder, resemblyzer_preprocess

__all__ = [
    "ECAPAConfig",
    "ECAPAEmbedder",
    "ResemblyzerConfig",
    "ResemblyzerEmbedder",
    "resemblyzer_preprocess",
]
