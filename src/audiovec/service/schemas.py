"""The JSON bodies of the service's API (request and response models), which the OpenAPI schema is made from."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AddFailure",
    "AddResponse",
    "CollectionInfo",
    "CollectionList",
    "EmbedderPresetInfo",
    "ErrorBody",
    "ErrorResponse",
    "Health",
    "Item",
    "ItemQuery",
    "JSONFilter",
    "Limits",
    "SearchHit",
    "SearchResponse",
    "TextQuery",
    "VectorQuery",
]

JSONFilter = dict[str, Any]


class ErrorBody(BaseModel):
    """What went wrong: the error's type, the HTTP status, a message, and details when there are some."""

    type: str
    status: int
    message: str
    detail: Any = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


class Item(BaseModel):
    """A stored item (one uploaded file) and its metadata."""

    id: str
    filename: str | None = None
    duration: float | None = None
    format: str | None = None
    sha256: str | None = None
    added: str | None = None
    segments: int = 1
    metadata: dict[str, Any] = Field(default_factory=dict)
    audio_url: str | None = None
    timings: dict[str, float] | None = None
    existing: bool = False


class AddFailure(BaseModel):
    """A file of an upload that was not added, with why."""

    index: int
    filename: str | None
    type: str
    status: int
    message: str


class AddResponse(BaseModel):
    """The outcome of an upload: items added, items already stored, files that failed."""

    added: list[Item]
    existing: list[Item] = Field(default_factory=list)
    failed: list[AddFailure]


class SearchHit(Item):
    """An item found by a search, with its score and the best-matching segment."""

    score: float
    distance: float
    start: float | None = None
    end: float | None = None
    query_segment: int = 0


class SearchResponse(BaseModel):
    """Ranked search results and the time each step took."""

    collection: str
    k: int
    results: list[SearchHit]
    timings: dict[str, float]


class TextQuery(BaseModel):
    """A search by text (collections whose embedder has a text tower)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    k: int = Field(10, ge=1)
    filter: JSONFilter | None = None


class ItemQuery(BaseModel):
    """A search by a stored item (its stored vectors are the query)."""

    model_config = ConfigDict(extra="forbid")
    item_id: str
    k: int = Field(10, ge=1)
    filter: JSONFilter | None = None
    exclude_self: bool = True


class VectorQuery(BaseModel):
    """A search by a vector computed by the client."""

    model_config = ConfigDict(extra="forbid")
    vector: list[float] = Field(min_length=1, max_length=65536)
    k: int = Field(10, ge=1)
    filter: JSONFilter | None = None


class CollectionInfo(BaseModel):
    """A collection: its configuration, dimension, counts and embedder."""

    name: str
    config: dict[str, Any]
    dim: int
    items: int
    vectors: int
    embedder: dict[str, Any]
    sample_rate: int
    pipeline: str
    text_search: bool
    created: str


class CollectionList(BaseModel):
    """The collections of the service."""

    collections: list[CollectionInfo]


class EmbedderPresetInfo(BaseModel):
    """An embedder preset new collections may use, and whether its model and packages are available here."""

    name: str
    embedder: str
    description: str
    available: bool = True
    reason: str | None = Field(None, description="why the preset is not available (when it is not)")


class Limits(BaseModel):
    """The limits the service enforces."""

    max_k: int
    max_file_mb: float
    max_request_mb: float
    max_files_per_request: int
    max_duration_s: float
    max_query_duration_s: float
    max_text_chars: int


class Health(BaseModel):
    """Liveness, version, number of collections, whether a key is needed, and the limits."""

    status: Literal["ok"]
    version: str
    collections: int
    auth_required: bool
    limits: Limits
