"""What the per-embedder HEAR modules share: how ``model_file_path`` becomes embedder parameters."""

from __future__ import annotations

from audiovec.errors import ConfigError
from audiovec.hear._model import HEARModel, as_hear_model, load_config

__all__ = ["load_preset"]


def load_preset(name: str, model_file_path: str = "", weights: str | None = None) -> HEARModel:
    """A HEAR model for the registered embedder ``name``.

    Args:
        name: Registry name of the embedder.
        model_file_path: Empty: the embedder's defaults. A ``.json`` or ``.toml`` file: its parameters (and
            optionally the scene ``pooling``). Anything else: the embedder's weights, passed as its ``weights``
            parameter.
        weights: The embedder parameter that names its model file (``None``: the embedder has no weights).

    Raises:
        ConfigError: A weights path for an embedder without weights, or invalid parameters.
    """
    path = str(model_file_path)
    if not path:
        return as_hear_model(name)
    if path.lower().endswith((".json", ".toml")):
        params = load_config(path)
        if "embedder" in params and params.pop("embedder") != name:
            raise ConfigError(f"{path!r} names another embedder than {name!r}; use audiovec.hear for that")
        pooling = str(params.pop("pooling", "mean"))
        return as_hear_model(name, pooling=pooling, **params)
    if weights is None:
        raise ConfigError(
            f"the {name!r} embedder has no weights file; pass a .json or .toml file of its parameters, or nothing"
        )
    return as_hear_model(name, **{weights: path})
