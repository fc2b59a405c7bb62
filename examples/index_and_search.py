"""Index a folder of audio into a collection on every core, search it, and resume after an interruption.

The collection is a folder (here a temporary one) holding the embedder, the pooling, a FAISS HNSW store and one
record per file; `audiovec search` and `audiovec serve` read the same folder. Items are keyed by their content, so
the second `index` call adds nothing, and a run that was killed resumes where it was last saved.

Run: python examples/index_and_search.py [FOLDER]      (default: the bundled demo drums, one sub-folder per class)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from audiovec import Collection
from audiovec.data import demo_dir


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else demo_dir()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp) / "sounds"
        with Collection.create(where, "mfcc", pooling="mean_std+l2", index="hnsw") as col:
            first = col.index([folder], label_from="{label}/*", workers=2, progress=False)
            print(first.summary())
            again = col.index([folder], label_from="{label}/*", workers=2, progress=False)
            print(again.summary())  # nothing new: every file's content is already stored
            assert again.added == 0 and again.skipped == first.added + first.skipped

            query = next(p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in {".flac", ".wav"})
            print(f"\n10 nearest items to {query.name}:")
            for hit in col.search(query, k=10):
                print(f"  {hit['score']:.3f}  {hit['filename']:<45} {hit['metadata'].get('label')}")

            label = query.parent.name
            hits = col.search(query, k=5, filter={"label": {"$ne": label}})
            print(f"\nthe nearest items that are not {label!r}:")
            for hit in hits:
                print(f"  {hit['score']:.3f}  {hit['filename']:<45} {hit['metadata'].get('label')}")

        with Collection.open(where) as col:  # a later session: the same collection, the same model
            print(f"\nreopened: {col.describe()['items']} items, {col.pipeline.describe()}, {col.config.store.index}")


if __name__ == "__main__":  # indexing starts worker processes: guard the entry point
    main()
