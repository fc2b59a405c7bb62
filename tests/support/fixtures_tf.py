"""A tiny TensorFlow SavedModel with YAMNet's published interface, to test the TF Hub / SavedModel code path.

It is a test double, not YAMNet: its weights are seeded random numbers, so its scores mean nothing. What it
shares with the real model is everything audiovec relies on:

* ``model(waveform)`` with ``waveform`` float32[None] at 16 kHz returns ``(scores [N, 521], embeddings [N, 1024],
  log_mel_spectrogram [M, 64])``;
* YAMNet's own input padding (``features.pad_waveform``: at least one 0.975 s patch, then whole 0.48 s hops) and
  framing (25 ms / 10 ms log-mel STFT, 96-frame patches every 48 frames), so ``N`` and ``M`` follow the real rule
  and patch ``k`` depends on samples ``[7680 k, 7680 k + 15600)`` only;
* ``model.class_map_path()`` returning the path of an ``assets/yamnet_class_map.csv`` with 521 rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SR = 16000
PATCH_SAMPLES = 15600
HOP_SAMPLES = 7680
CLASS_NAMES = [f"tiny class {i}" for i in range(521)]


def make_tiny_yamnet(directory: Path) -> Path:
    """Write the tiny YAMNet-interface SavedModel into ``directory`` (created) and return it."""
    import tensorflow as tf

    directory.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f"{directory.name}.assets"
    staging.mkdir(exist_ok=True)
    csv_path = staging / "yamnet_class_map.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["index", "mid", "display_name"])
        for i, name in enumerate(CLASS_NAMES):
            w.writerow([i, f"/m/tiny{i}", name])

    rng = np.random.default_rng(1234)
    w_emb = rng.standard_normal((64, 1024)).astype(np.float32) / 8.0
    w_cls = rng.standard_normal((1024, 521)).astype(np.float32) / 32.0
    mel = tf.signal.linear_to_mel_weight_matrix(64, 257, SR, 125.0, 7500.0)

    class TinyYAMNet(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w_emb = tf.Variable(w_emb, trainable=False)
            self.w_cls = tf.Variable(w_cls, trainable=False)
            self.mel = tf.Variable(mel, trainable=False)
            self.class_map = tf.saved_model.Asset(str(csv_path))

        @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.float32)])
        def __call__(self, waveform: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            # yamnet/features.py pad_waveform: one whole patch at least, then whole hops
            n = tf.shape(waveform)[0]
            pad = tf.maximum(0, PATCH_SAMPLES - n)
            n = tf.maximum(n, PATCH_SAMPLES)
            after = n - PATCH_SAMPLES
            hops = tf.cast(tf.math.ceil(tf.cast(after, tf.float32) / HOP_SAMPLES), tf.int32)
            pad += HOP_SAMPLES * hops - after
            x = tf.pad(waveform, [[0, pad]])
            stft = tf.abs(tf.signal.stft(x, frame_length=400, frame_step=160, fft_length=512))
            log_mel = tf.math.log(tf.matmul(stft, self.mel) + 0.001)
            patches = tf.signal.frame(log_mel, frame_length=96, frame_step=48, axis=0)  # [N, 96, 64]
            embeddings = tf.nn.relu(tf.matmul(tf.reduce_mean(patches, axis=1), self.w_emb))
            scores = tf.sigmoid(tf.matmul(embeddings, self.w_cls))
            return scores, embeddings, log_mel

        @tf.function(input_signature=[])
        def class_map_path(self) -> tf.Tensor:
            return self.class_map.asset_path

    tf.saved_model.save(TinyYAMNet(), str(directory))
    csv_path.unlink()  # the SavedModel keeps its own copy under assets/
    staging.rmdir()
    return directory
