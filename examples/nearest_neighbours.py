"""Leave-kit-out nearest-neighbour classification of the demo drums with MFCC statistics.

A query may not match a clip from its own kit (velocity layers of one instrument are near-duplicates), so the
score measures whether the embedding generalises across kits. Run: python examples/nearest_neighbours.py
"""

from __future__ import annotations

import numpy as np

import audiovec
from audiovec import Pipeline
from audiovec.data import demo_metadata

rows = demo_metadata()
emb = audiovec.get_embedder("mfcc")
pipe = Pipeline.parse("mean_std")
x = np.stack([pipe(emb.embed(audiovec.load(r["path"]))).vectors[0] for r in rows])
x = (x - x.mean(0)) / (x.std(0) + 1e-9)  # standardise features, then cosine similarity
x /= np.linalg.norm(x, axis=1, keepdims=True)
labels = np.array([r["label"] for r in rows])
kits = np.array([r["kit"] for r in rows])
sim = x @ x.T
sim[kits[:, None] == kits[None, :]] = -np.inf  # leave-kit-out
top1 = labels[sim.argmax(1)]
has_other_kit = np.array([(labels[kits != k] == lab).any() for lab, k in zip(labels, kits, strict=True)])
acc = float((top1 == labels)[has_other_kit].mean())
print(f"leave-kit-out top-1 accuracy: {acc:.2f} over {has_other_kit.sum()} queries (chance ~{1 / 9:.2f})")
