"""Embed a long recording into per-segment vectors, and a folder of clips into one vector each.

Run: python examples/embed_and_pool.py
"""

from __future__ import annotations

import numpy as np

import audiovec
from audiovec import Pipeline
from audiovec.data import demo_dir
from audiovec.ingest import extract
from audiovec.testing import synthetic_signal

# 1. Any Audio works: the embedder resamples and mixes down itself.
audio = audiovec.Audio.from_array(synthetic_signal(95.0, 44100, channels=2), 44100, "synthetic")
emb = audiovec.get_embedder("mfcc", n_mfcc=20)
frames = emb.embed(audio)
print(frames)  # FrameEmbeddings(model='mfcc', frames=9499, dim=20, ...)

# 2. One vector per 10 s segment, every 5 s, statistics pooling, unit length (ready for cosine search).
pipe = Pipeline.parse("mean_std+l2", segments="10:5")
segments = pipe(frames)
print(f"{len(segments)} segments of dim {segments.dim}; first: {segments.starts[0]:.0f}-{segments.ends[0]:.0f} s")
assert len(segments) == 18 and segments.dim == 40

# 3. The pipeline is data: save it with your results and rebuild it exactly.
again = Pipeline.model_validate_json(pipe.model_dump_json())
assert again == pipe

# 4. A folder of files, batched, with failures recorded instead of raised.
result = extract([demo_dir()], emb, Pipeline.parse("linear_concat:16"), progress=False)
print(f"{result.vectors.shape[0]} clips -> {result.vectors.shape[1]}-d vectors; failures: {result.failures}")
assert np.allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
