"""Configuration of the search service (``audiovec serve``).

Everything a request may *choose* is bounded here by the operator: which embedders (named presets whose model
paths the operator fixed), which store backends, where data lives, and how large an upload may be. A request never
names a server path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from audiovec.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

__all__ = ["API_KEY_ENV", "EmbedderPreset", "ServiceSettings"]

API_KEY_ENV = "AUDIOVEC_API_KEY"
"""Environment variable read for the API key when the settings file gives none."""


class EmbedderPreset(BaseModel):
    """An embedder a collection may use, fixed by the operator.

    Attributes:
        name: Registry name (``audiovec list``), e.g. ``"yamnet"``.
        params: Constructor parameters, e.g. ``{"model": "/models/yamnet.tflite"}``. Requests cannot change them.
        description: Shown to clients by ``GET /api/v1/embedders``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


def _default_presets() -> dict[str, EmbedderPreset]:
    return {
        "mfcc": EmbedderPreset(name="mfcc", description="MFCC (20 coefficients), 16 kHz; fast, no model files"),
        "logmel": EmbedderPreset(name="logmel", description="log-mel spectrogram (64 bands), 16 kHz; no model files"),
    }


class ServiceSettings(BaseModel):
    """Settings of one service instance (a TOML file, keyword arguments, and two environment variables).

    Attributes:
        data_dir: Where collections (their configs, vector stores and stored audio) live.
        api_key: When set, every ``/api`` and ``/metrics`` request needs it (``X-API-Key: KEY`` or
            ``Authorization: Bearer KEY``). Read from ``AUDIOVEC_API_KEY`` when not given. Never logged.
        cors_origins: Origins allowed to call the API from a browser (``["*"]`` for any); empty = same origin only.
        max_file_mb: Largest uploaded file.
        max_request_mb: Largest request body (several files in one upload).
        max_files_per_request: Most files in one upload.
        max_duration_s: Longest audio accepted for indexing.
        max_query_duration_s: Longest audio accepted as a search query.
        max_k: Largest ``k`` a search may ask for.
        max_text_chars: Longest text query.
        stores: Store backends new collections may use.
        milvus_uri: A Milvus server or cluster URI for ``milvus`` collections; ``None`` = one Milvus Lite file per
            collection inside ``data_dir``.
        milvus_token: Token for ``milvus_uri`` (never logged).
        milvus_prefix: Prefix of the Milvus collection names this service creates.
        embedders: Presets new collections may choose from (name -> preset).
        index_roots: Folders that ``audiovec collection index`` may read (empty = any folder the admin names).
        autosave_s: Seconds between background saves of changed collections (also saved at shutdown). Every
            acknowledged change is already on disk in the store's journal; a save folds the journal into the
            store's files, which keeps the journal short and the next start fast.
        header_timeout_s: A connection that has not sent a complete request head this many seconds after it opened
            (or after its previous response) is closed, so slow clients cannot hold connections open.
        body_timeout_s: A request body that has not fully arrived this many seconds after its head gets a 408 and
            its connection is closed. An upload of ``max_request_mb`` needs at least ``max_request_mb /
            body_timeout_s`` MiB/s; raise it for large uploads over slow links.
        keep_alive_timeout_s: An idle keep-alive connection is closed after this many seconds.
        max_connections: Most connections open at once; a connection beyond it is answered 503 and closed at once.
        public_docs: Serve the OpenAPI schema and the interactive docs (``/openapi.json``, ``/docs``, ``/redoc``)
            without the API key. By default they need it when a key is set.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    data_dir: Path = Path("audiovec-data")
    api_key: SecretStr | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_file_mb: float = Field(25.0, gt=0)
    max_request_mb: float = Field(100.0, gt=0)
    max_files_per_request: int = Field(64, ge=1)
    max_duration_s: float = Field(900.0, gt=0)
    max_query_duration_s: float = Field(60.0, gt=0)
    max_k: int = Field(100, ge=1, le=16384)
    max_text_chars: int = Field(1000, ge=1)
    stores: list[str] = Field(default_factory=lambda: ["faiss", "exact", "milvus"])
    milvus_uri: str | None = None
    milvus_token: SecretStr | None = None
    milvus_prefix: str = Field("audiovec_", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    embedders: dict[str, EmbedderPreset] = Field(default_factory=_default_presets)
    index_roots: list[Path] = Field(default_factory=list)
    autosave_s: float = Field(30.0, gt=0)
    header_timeout_s: float = Field(10.0, gt=0)
    body_timeout_s: float = Field(60.0, gt=0)
    keep_alive_timeout_s: float = Field(5.0, gt=0)
    max_connections: int = Field(256, ge=1)
    public_docs: bool = False

    @field_validator("embedders")
    @classmethod
    def _check_presets(cls, value: dict[str, EmbedderPreset]) -> dict[str, EmbedderPreset]:
        if not value:
            raise ValueError("at least one embedder preset is needed")
        return value

    @property
    def max_file_bytes(self) -> int:
        """:attr:`max_file_mb` in bytes."""
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def max_request_bytes(self) -> int:
        """:attr:`max_request_mb` in bytes."""
        return int(self.max_request_mb * 1024 * 1024)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, **overrides: Any) -> ServiceSettings:
        """Settings from a TOML file (optional), then keyword overrides, then ``AUDIOVEC_API_KEY``.

        A relative ``data_dir`` or ``index_roots`` entry in the file is relative to the file's folder.

        Raises:
            ConfigError: Unreadable file or invalid values.
        """
        data: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            try:
                data = tomllib.loads(p.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as err:
                raise ConfigError(f"cannot read service settings {p}: {err}") from None
            data = dict(data.get("service", data))
            base = p.resolve().parent
            if "data_dir" in data:
                data["data_dir"] = base / data["data_dir"]
            if "index_roots" in data:
                data["index_roots"] = [base / r for r in data["index_roots"]]
        data.update({k: v for k, v in overrides.items() if v is not None})
        if data.get("api_key") is None and os.environ.get(API_KEY_ENV):
            data["api_key"] = os.environ[API_KEY_ENV]
        try:
            return cls(**data)
        except ValidationError as err:
            raise ConfigError(f"invalid service settings: {err}") from None
