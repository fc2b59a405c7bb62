"""The HEAR 2021 module of audiovec's ``logmel`` embedder (64 log-mel bands every 10 ms at 16 kHz).

``hear-validator audiovec.hear.logmel`` checks it; see :mod:`audiovec.hear`.
"""

from __future__ import annotations

from audiovec.hear._model import HEARModel, get_scene_embeddings, get_timestamp_embeddings
from audiovec.hear._preset import load_preset

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]


def load_model(model_file_path: str = "") -> HEARModel:
    """The ``logmel`` embedder as a HEAR model.

    Args:
        model_file_path: Empty: the defaults. A ``.json`` or ``.toml`` file: the embedder's parameters (and
            optionally the scene ``pooling``). No weights are needed.

    Raises:
        ConfigError: Invalid parameters.
    """
    return load_preset("logmel", model_file_path, None)
