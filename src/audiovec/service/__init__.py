"""The search service: collections of audio indexed and searched over HTTP (``audiovec serve``).

Needs the ``serve`` extra (``pip install audiovec[serve]``): FastAPI, uvicorn and python-multipart.

Example:
    >>> from audiovec.service import ServiceSettings, create_app  # doctest: +SKIP
    >>> app = create_app(ServiceSettings(data_dir="data", api_key="change-me"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from audiovec.service.collection import CollectionConfig, StoreSpec
from audiovec.service.manager import CollectionManager
from audiovec.service.settings import EmbedderPreset, ServiceSettings

__all__ = ["CollectionConfig", "CollectionManager", "EmbedderPreset", "ServiceSettings", "StoreSpec", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":  # needs fastapi: imported on first use
        from audiovec.service.app import create_app

        return create_app
    raise AttributeError(f"module 'audiovec.service' has no attribute {name!r}")
