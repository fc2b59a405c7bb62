"""The HEAR 2021 module of audiovec's ``yamnet`` embedder (1024-d frames every 0.48 s at 16 kHz).

``hear-validator audiovec.hear.yamnet -m yamnet.tflite`` checks it; see :mod:`audiovec.hear`.
"""

from __future__ import annotations

from audiovec.hear._model import HEARModel, get_scene_embeddings, get_timestamp_embeddings
from audiovec.hear._preset import load_preset

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]


def load_model(model_file_path: str = "") -> HEARModel:
    """The ``yamnet`` embedder as a HEAR model.

    Args:
        model_file_path: Empty: the defaults. A ``.json`` or ``.toml`` file: the embedder's parameters (and
            optionally the scene ``pooling``). Anything else: the model, a ``.tflite`` file or a SavedModel. Empty
            means ``AUDIOVEC_YAMNET_MODEL``, else the default model (downloaded once).

    Raises:
        ConfigError: Invalid parameters.
    """
    return load_preset("yamnet", model_file_path, "model")
