"""The FastAPI application behind ``audiovec serve``.

Routes (all JSON unless noted; the OpenAPI schema is at ``/openapi.json``, interactive docs at ``/docs``):

=======  ===============================================  =====================================================
GET      ``/health``                                      liveness and readiness (no key needed)
GET      ``/metrics``                                     Prometheus text: request counts, latency quantiles
GET      ``/api/v1/stats``                                the same as JSON
GET      ``/api/v1/embedders``                            embedder presets new collections may use
GET      ``/api/v1/collections``                          list collections
POST     ``/api/v1/collections``                          create (embedder preset + pooling + store)
GET      ``/api/v1/collections/{name}``                   describe (counts, config, dimension)
DELETE   ``/api/v1/collections/{name}``                   drop
POST     ``/api/v1/collections/{name}/items``             add: multipart upload of one or more files
GET      ``/api/v1/collections/{name}/items/{id}``        get an item
DELETE   ``/api/v1/collections/{name}/items/{id}``        delete an item
GET      ``/api/v1/collections/{name}/items/{id}/audio``  stream the stored audio back (HTTP ranges supported)
POST     ``/api/v1/collections/{name}/search``            search by an uploaded clip (multipart)
POST     ``/api/v1/collections/{name}/search/text``       search by text (CLAP presets)
POST     ``/api/v1/collections/{name}/search/item``       search by a stored item
POST     ``/api/v1/collections/{name}/search/vector``     search by a vector (no embedding step)
GET      ``/``                                            the search page
=======  ===============================================  =====================================================

With an API key set, the schema and the docs need it too (unless ``public_docs``); the page asks the user for it.

Every error is ``{"error": {"type": ..., "status": ..., "message": ...}}``, with a 4xx status for anything the
client can fix (415 not audio, 413 too large/long, 422 undecodable, 404 unknown collection/item, 409 exists, 401 key,
408 a body too slow to arrive) and a 500 that says nothing about an unexpected failure (the log has it).
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any, Literal

from audiovec._optional import require

require("fastapi", "serve", "the search service")

from fastapi import APIRouter, Depends, FastAPI, File, Form, Request, UploadFile  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.middleware.cors import CORSMiddleware  # noqa: E402
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html  # noqa: E402
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

from audiovec import __version__  # noqa: E402
from audiovec.errors import (  # noqa: E402
    AudiovecError,
    ConfigError,
    FilterError,
    FilterTooLargeError,
    InvalidMetadataError,
    UnsupportedUploadError,
    UploadTooLargeError,
)
from audiovec.service.collection import Collection, CollectionConfig, Timings  # noqa: E402
from audiovec.service.manager import CollectionManager  # noqa: E402
from audiovec.service.metrics import Metrics  # noqa: E402
from audiovec.service.middleware import (  # noqa: E402
    BodyLimit,
    JSONErrors,
    MetricsAndHeaders,
    error_response,
    internal_error_response,
    status_for,
)
from audiovec.service.schemas import (  # noqa: E402
    AddResponse,
    CollectionInfo,
    CollectionList,
    EmbedderPresetInfo,
    ErrorResponse,
    Health,
    Item,
    ItemQuery,
    JSONFilter,
    Limits,
    SearchResponse,
    TextQuery,
    VectorQuery,
)
from audiovec.service.settings import ServiceSettings  # noqa: E402

__all__ = ["create_app"]

log = logging.getLogger("audiovec.service")


# ------------------------------------------------------------------------------------------------ app
def create_app(settings: ServiceSettings | None = None, manager: CollectionManager | None = None) -> FastAPI:
    """Build the service.

    Args:
        settings: Service settings (default: :class:`ServiceSettings` defaults, ``AUDIOVEC_API_KEY`` honoured).
        manager: A collection manager to serve (default: one over ``settings.data_dir``). The app closes it at
            shutdown.

    Returns:
        The FastAPI app; run it with uvicorn (``audiovec serve`` does). Use **one** worker process: collections
        with an embedded store (FAISS, exact, Milvus Lite) live in this process.
    """
    settings = settings or ServiceSettings.load()
    manager = manager or CollectionManager(settings)
    metrics = Metrics()
    api_key = settings.api_key.get_secret_value().encode() if settings.api_key else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()

        def autosave() -> None:
            while not stop.wait(settings.autosave_s):
                manager.save_all()

        saver = threading.Thread(target=autosave, name="audiovec-autosave", daemon=True)
        saver.start()
        log.info(
            "audiovec service %s: data in %s, %d collection(s)", __version__, settings.data_dir, len(manager.names())
        )
        try:
            yield
        finally:
            stop.set()
            saver.join(timeout=30)
            manager.close()

    app = FastAPI(
        title="audiovec search service",
        version=__version__,
        description="Index audio into collections and search them by clip, text or item. "
        "See https://github.com/audiovec/audiovec/blob/main/docs/service.md",
        lifespan=lifespan,
        openapi_url=None,  # served below, behind the key unless settings.public_docs
        responses={
            400: {"model": ErrorResponse, "description": "Invalid request"},
            401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
            422: {"model": ErrorResponse, "description": "Invalid input"},
        },
    )
    app.state.settings = settings
    app.state.manager = manager
    app.state.metrics = metrics

    # ---------------------------------------------------------------- errors
    @app.exception_handler(AudiovecError)
    async def _audiovecerror_response(request: Request, err: AudiovecError) -> JSONResponse:
        status = status_for(err)
        if status >= 500:
            log.error("%s %s failed: %s: %s", request.method, request.url.path, type(err).__name__, err)
        return error_response(status, type(err).__name__, str(err))

    @app.exception_handler(RequestValidationError)
    async def _validationerror_response(request: Request, err: RequestValidationError) -> JSONResponse:
        detail = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in err.errors()]
        first = detail[0] if detail else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(422, "ValidationError", f"{where}: {first.get('msg')}", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _httperror_response(request: Request, err: StarletteHTTPException) -> JSONResponse:
        headers = getattr(err, "headers", None)
        return error_response(err.status_code, "HTTPError", str(err.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected_response(request: Request, err: Exception) -> JSONResponse:
        # the last resort, outside every middleware (JSONErrors answers the failures inside them); the server logs it
        return internal_error_response()

    # ---------------------------------------------------------------- auth
    def check_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if given is None or not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), api_key):
            raise StarletteHTTPException(401, "missing or wrong API key", headers={"WWW-Authenticate": "Bearer"})

    def col(name: str) -> Collection:
        return manager.get(name)

    def check_k(k: int) -> int:
        if not 1 <= k <= settings.max_k:
            raise ConfigError(f"k must be within [1, {settings.max_k}], got {k}")
        return k

    def parse_json_filter(text: str | None) -> JSONFilter | None:
        if text is None or not text.strip():
            return None
        if len(text) > 16384:
            raise FilterTooLargeError(f"filter is {len(text)} characters long; the limit is 16384 (16 KiB)")
        value = _parse_json(text, "filter", FilterError, FilterTooLargeError)
        if not isinstance(value, dict):
            raise FilterError("filter must be a JSON object")
        return value

    def record(timings: Timings) -> dict[str, float]:
        for stage, ms in timings.as_dict().items():
            metrics.observe_stage(stage.removesuffix("_ms"), ms / 1e3)
        return timings.as_dict()

    async def read_upload(upload: UploadFile) -> bytes:
        limit = settings.max_file_bytes
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise UploadTooLargeError(f"{upload.filename}: file larger than {settings.max_file_mb:g} MiB")
        if not data:
            raise UnsupportedUploadError(f"{upload.filename}: the file is empty")
        return data

    def search_response(c: Collection, k: int, hits: list[dict[str, Any]], timings: Timings) -> JSONResponse:
        t = record(timings)
        body = {"collection": c.name, "k": k, "results": hits, "timings": t}
        server_timing = ", ".join(f"{name.removesuffix('_ms')};dur={ms:.3f}" for name, ms in t.items())
        return JSONResponse(body, headers={"Server-Timing": server_timing} if server_timing else None)

    # ---------------------------------------------------------------- open routes
    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness/readiness (the process answers, its data folder is readable), whether a key is needed, limits."""
        limits = {f: getattr(settings, f) for f in Limits.model_fields}
        return {
            "status": "ok",
            "version": __version__,
            "collections": len(manager.names()),
            "auth_required": api_key is not None,
            "limits": limits,
        }

    @app.get("/metrics", response_class=PlainTextResponse, dependencies=[Depends(check_key)], tags=["service"])
    def prometheus_metrics() -> str:
        """Request counts and latency quantiles per route, and per-step times, in Prometheus' text format."""
        return metrics.prometheus()

    # ---------------------------------------------------------------- schema and docs
    docs_auth = [] if settings.public_docs else [Depends(check_key)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=docs_auth)
    def openapi_schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=docs_auth)
    def swagger_docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - Swagger UI")

    @app.get("/redoc", include_in_schema=False, dependencies=docs_auth)
    def redoc_docs() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")

    static = resources.files("audiovec.service") / "static"

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        html = (static / "index.html").read_text(encoding="utf-8")
        csp = (
            "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        )
        return HTMLResponse(html, headers={"Content-Security-Policy": csp, "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    # ---------------------------------------------------------------- API
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(check_key)])

    @api.get("/stats", tags=["service"])
    def stats() -> dict[str, Any]:
        """Request counts, latency quantiles and per-step times as JSON (seconds)."""
        return metrics.snapshot()

    @api.get("/embedders", response_model=list[EmbedderPresetInfo], tags=["collections"])
    def embedders() -> list[dict[str, Any]]:
        """The embedder presets new collections may use (chosen by the operator), and whether each is available.

        A preset is ``available`` when its model and packages are there (it is loaded once to find out); when it is
        not, ``reason`` says why.
        """
        presets = []
        for n, p in sorted(settings.embedders.items()):
            reason = manager.unavailable_reason(n)
            presets.append(
                {
                    "name": n,
                    "embedder": p.name,
                    "description": p.description,
                    "available": reason is None,
                    "reason": reason,
                }
            )
        return presets

    @api.get("/collections", response_model=CollectionList, tags=["collections"])
    def list_collections() -> dict[str, Any]:
        """Every collection, described."""
        return {"collections": [c.describe() for c in manager]}

    @api.post("/collections", status_code=201, response_model=CollectionInfo, tags=["collections"])
    def create_collection(config: CollectionConfig) -> dict[str, Any]:
        """Create a collection: an embedder preset, a pooling recipe and a store (backend, index, metric)."""
        return manager.create(config).describe()

    @api.get("/collections/{name}", response_model=CollectionInfo, tags=["collections"])
    def describe_collection(name: str) -> dict[str, Any]:
        """Item and vector counts, config, dimension."""
        return col(name).describe()

    @api.delete("/collections/{name}", status_code=204, tags=["collections"])
    def drop_collection(name: str) -> Response:
        """Drop a collection with its vectors and stored audio."""
        manager.drop(name)
        return Response(status_code=204)

    @api.post(
        "/collections/{name}/items",
        status_code=201,
        response_model=AddResponse,
        tags=["items"],
        responses={207: {"model": AddResponse, "description": "Some files were added, some failed"}},
    )
    async def add_items(
        name: str,
        files: Annotated[list[UploadFile], File(description="one or more audio files")],
        metadata: Annotated[
            str | None,
            Form(description="JSON object applied to every file, or a JSON list with one object per file"),
        ] = None,
        if_exists: Annotated[
            Literal["add", "skip"],
            Form(description="'skip': a file whose exact bytes are already stored is not added again (safe retries)"),
        ] = "add",
    ) -> JSONResponse:
        """Add uploaded files as items. Each file is processed on its own: a bad file is reported, the others added.

        Status: 201 all added (or already stored, with ``if_exists=skip``); 200 every file was already stored; 207
        some failed; otherwise the first failure's status (e.g. 415 for a non-audio file).
        """
        c = col(name)
        if len(files) > settings.max_files_per_request:
            raise ConfigError(f"at most {settings.max_files_per_request} files per request, got {len(files)}")
        parsed: Any = None
        if metadata is not None and metadata.strip():
            parsed = _parse_json(metadata, "metadata", InvalidMetadataError)
        metas: list[Any]
        if isinstance(parsed, list):
            if len(parsed) != len(files):
                raise InvalidMetadataError(f"metadata list has {len(parsed)} entries for {len(files)} files")
            metas = parsed
        elif parsed is None or isinstance(parsed, dict):
            metas = [parsed] * len(files)
        else:
            raise InvalidMetadataError("metadata must be a JSON object, or a list with one object per file")
        added: list[dict[str, Any]] = []
        existing: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for i, (upload, meta) in enumerate(zip(files, metas, strict=True)):
            try:
                data = await read_upload(upload)
                item = await run_in_threadpool(c.add, data, upload.filename, meta, if_exists)
                if item.get("existing"):
                    existing.append(item)
                else:
                    record(Timings(**item["timings"]))
                    added.append(item)
            except AudiovecError as err:
                failed.append(
                    {
                        "index": i,
                        "filename": upload.filename,
                        "type": type(err).__name__,
                        "status": status_for(err),
                        "message": str(err),
                    }
                )
        if failed and not added and not existing:
            first = failed[0]
            detail = {"added": [], "existing": [], "failed": failed}
            return error_response(first["status"], first["type"], first["message"], detail)
        status = 207 if failed else 201 if added else 200
        return JSONResponse({"added": added, "existing": existing, "failed": failed}, status_code=status)

    @api.get("/collections/{name}/items/{item_id}", response_model=Item, tags=["items"])
    def get_item(name: str, item_id: str) -> dict[str, Any]:
        """One item: file name, duration, format, checksum, metadata, audio URL."""
        return col(name).get(item_id)

    @api.delete("/collections/{name}/items/{item_id}", status_code=204, tags=["items"])
    def delete_item(name: str, item_id: str) -> Response:
        """Delete an item (its vectors and its stored audio)."""
        col(name).delete(item_id)
        return Response(status_code=204)

    @api.get(
        "/collections/{name}/items/{item_id}/audio",
        response_class=FileResponse,
        tags=["items"],
        responses={200: {"content": {"audio/*": {}}, "description": "The stored audio file"}},
    )
    def item_audio(name: str, item_id: str) -> FileResponse:
        """Stream the item's stored audio (only ever from the service's own storage; HTTP ranges supported)."""
        path, media_type = col(name).audio_file(item_id)
        return FileResponse(path, media_type=media_type, content_disposition_type="inline", filename=path.name)

    @api.post("/collections/{name}/search", response_model=SearchResponse, tags=["search"])
    async def search_clip(
        name: str,
        file: Annotated[UploadFile, File(description="the query clip")],
        k: Annotated[int, Form()] = 10,
        filter: Annotated[str | None, Form(description="metadata filter as a JSON object")] = None,
    ) -> JSONResponse:
        """The ``k`` items most similar to an uploaded clip."""
        c = col(name)
        check_k(k)
        flt = parse_json_filter(filter)
        data = await read_upload(file)
        hits, timings = await run_in_threadpool(c.search_audio, data, file.filename, k, flt)
        return search_response(c, k, hits, timings)

    @api.post("/collections/{name}/search/text", response_model=SearchResponse, tags=["search"])
    def search_text(name: str, query: TextQuery) -> JSONResponse:
        """The ``k`` items best matching a text (embedders with a text tower, such as CLAP)."""
        c = col(name)
        check_k(query.k)
        if len(query.text) > settings.max_text_chars:
            raise ConfigError(f"text longer than {settings.max_text_chars} characters")
        hits, timings = c.search_text(query.text, query.k, query.filter)
        return search_response(c, query.k, hits, timings)

    @api.post("/collections/{name}/search/item", response_model=SearchResponse, tags=["search"])
    def search_item(name: str, query: ItemQuery) -> JSONResponse:
        """The ``k`` items most similar to a stored item (itself excluded unless ``exclude_self`` is false)."""
        c = col(name)
        check_k(query.k)
        hits, timings = c.search_item(query.item_id, query.k, query.filter, query.exclude_self)
        return search_response(c, query.k, hits, timings)

    @api.post("/collections/{name}/search/vector", response_model=SearchResponse, tags=["search"])
    def search_vector(name: str, query: VectorQuery) -> JSONResponse:
        """The ``k`` items nearest to a vector of the collection's dimension (no embedding step)."""
        c = col(name)
        check_k(query.k)
        hits, timings = c.search_vector(query.vector, query.k, query.filter)
        return search_response(c, query.k, hits, timings)

    app.include_router(api)

    # outermost last: metrics/headers see every response, including the body limits' 413/408 and JSONErrors' 500
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes, timeout_s=settings.body_timeout_s)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(JSONErrors)
    app.add_middleware(MetricsAndHeaders, metrics=metrics)
    return app


def _parse_json(text: str, what: str, error: type[AudiovecError], too_deep: type[AudiovecError] | None = None) -> Any:
    """Parse a JSON form field, raising ``error`` (or ``too_deep`` for nesting the parser refuses) naming ``what``."""
    try:
        return json.loads(text)
    except ValueError as err:
        raise error(f"{what} is not valid JSON: {err}") from None
    except RecursionError:
        limit = sys.getrecursionlimit()
        raise (too_deep or error)(f"{what} is nested too deeply: JSON may nest at most about {limit} levels") from None
