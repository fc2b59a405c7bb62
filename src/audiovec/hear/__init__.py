"""audiovec embedders as HEAR 2021 modules, and HEAR modules as audiovec embedders.

A HEAR module (https://hearbenchmark.com) is an importable module with ``load_model``,
``get_timestamp_embeddings`` and ``get_scene_embeddings``. This package is one, parametrised by a configuration
file naming any registered embedder, and each of its submodules is one for a single embedder with its defaults::

    hear-validator audiovec.hear.mfcc
    hear-validator audiovec.hear.yamnet -m /path/to/yamnet.tflite
    hear-validator audiovec.hear -m my_embedder.toml      # embedder = "logmel", n_mels = 128

In Python, :func:`as_hear_model` wraps any embedder object. The other direction, any installed HEAR module as an
audiovec embedder, is :class:`audiovec.embedders.hear.HEAREmbedder` (registry name ``hear``).

Importing this package imports torch (HEAR models are ``torch.nn.Module`` objects); without it the import raises
:class:`~audiovec.errors.MissingDependencyError` with the ``pip install`` that fixes it.
"""

from __future__ import annotations

from audiovec.hear._model import (
    HEAR_SAMPLE_RATES,
    SCENE_POOLING,
    HEARModel,
    as_hear_model,
    frame_centres,
    get_scene_embeddings,
    get_timestamp_embeddings,
    load_model,
)

__all__ = [
    "HEAR_SAMPLE_RATES",
    "SCENE_POOLING",
    "HEARModel",
    "as_hear_model",
    "frame_centres",
    "get_scene_embeddings",
    "get_timestamp_embeddings",
    "load_model",
]
