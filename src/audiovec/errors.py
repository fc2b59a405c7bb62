"""The audiovec exception hierarchy.

Every error the library raises on purpose derives from :class:`AudiovecError`, and most also derive from the
closest built-in exception, so ``except ValueError`` keeps working for callers who do not know audiovec::

    AudiovecError
    ├── AudioError                      problems with an audio input (the message names the source)
    │   ├── AudioFileNotFoundError      (also FileNotFoundError) the path does not exist
    │   ├── AudioDecodeError            (also ValueError) unreadable, corrupt or truncated data
    │   │   └── UnsupportedFormatError  a recognised container/codec that the decoder cannot read
    │   ├── EmptyAudioError             (also ValueError) zero samples
    │   ├── NonFiniteAudioError         (also ValueError) NaN or Inf samples
    │   ├── InvalidSampleRateError      (also ValueError) a sample rate outside [100 Hz, 1 MHz]
    │   ├── UnsupportedUploadError      (also ValueError) uploaded bytes that are not a supported audio container
    │   ├── UploadTooLargeError         (also ValueError) an upload larger than the service accepts
    │   └── AudioTooLongError           (also ValueError) audio longer than the service accepts
    ├── ConfigError                     (also ValueError) an invalid configuration or argument
    ├── RegistryError                   (also LookupError) plugin registry problems
    │   ├── UnknownPluginError          no plugin of that name
    │   ├── DuplicatePluginError        a name is already registered (pass ``clobber=True`` to replace)
    │   └── PluginLoadError             the plugin's entry point failed to import
    ├── MissingDependencyError          (also ImportError) an optional extra is not installed
    ├── ModelLoadError                  a model's weights or files cannot be loaded
    │   └── ModelDownloadError          weights could not be downloaded, or arrived with the wrong checksum
    ├── EmbeddingError                  a model failed while embedding
    │   └── NonFiniteEmbeddingError     (also ValueError) a model or pooling step produced NaN or Inf
    └── StoreError                      vector-store problems
        ├── StoreConnectionError        (also ConnectionError) the store/server cannot be reached
        ├── DimensionMismatchError      (also ValueError) vectors of the wrong dimension
        ├── InvalidVectorError          (also ValueError) NaN/Inf vectors, wrong dtype or shape
        ├── DuplicateIdError            (also ValueError) ``add`` with an id that already exists
        ├── InvalidIdError              (also ValueError) ids of the wrong kind, shape or range
        ├── InvalidMetadataError        (also ValueError) metadata that is not a JSON object within limits
        ├── FilterError                 (also ValueError) an invalid metadata filter
        │   └── FilterTooLargeError     a filter beyond the documented depth, term or size limits
        ├── StoreLockedError            another process holds the store open (the message names it)
        ├── JournalError                the store's write-ahead journal cannot be written or read back
        └── CollectionError             problems with a collection (embedder + pooling + store on disk)
            ├── CollectionNotFoundError (also LookupError) no collection of that name
            ├── CollectionExistsError   (also ValueError) a collection of that name already exists
            └── ItemNotFoundError       (also LookupError) no item of that id in the collection
"""

from __future__ import annotations

__all__ = [
    "AudioDecodeError",
    "AudioError",
    "AudioFileNotFoundError",
    "AudioTooLongError",
    "AudiovecError",
    "CollectionError",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "ConfigError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "DuplicatePluginError",
    "EmbeddingError",
    "EmptyAudioError",
    "FilterError",
    "FilterTooLargeError",
    "InvalidIdError",
    "InvalidMetadataError",
    "InvalidSampleRateError",
    "InvalidVectorError",
    "ItemNotFoundError",
    "JournalError",
    "MissingDependencyError",
    "ModelDownloadError",
    "ModelLoadError",
    "NonFiniteAudioError",
    "NonFiniteEmbeddingError",
    "PluginLoadError",
    "RegistryError",
    "StoreConnectionError",
    "StoreError",
    "StoreLockedError",
    "UnknownPluginError",
    "UnsupportedFormatError",
    "UnsupportedUploadError",
    "UploadTooLargeError",
]


class AudiovecError(Exception):
    """Base class of every error raised on purpose by audiovec."""


# --------------------------------------------------------------------------------------------------- audio
class AudioError(AudiovecError):
    """A problem with one audio input.

    Attributes:
        source: A printable description of the input (a path, ``"<bytes>"``, ``"<file object>"``...).
    """

    def __init__(self, message: str, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The audio file does not exist."""


class AudioDecodeError(AudioError, ValueError):
    """The data cannot be decoded as audio: corrupt, truncated, or not audio at all."""


class UnsupportedFormatError(AudioDecodeError):
    """The data is a recognised audio container or codec that the installed decoder cannot read."""


class EmptyAudioError(AudioError, ValueError):
    """The audio holds no samples (or none in the requested range)."""


class NonFiniteAudioError(AudioError, ValueError):
    """The audio contains NaN or infinite samples."""


class InvalidSampleRateError(AudioError, ValueError):
    """A sample rate is not a plausible audio sample rate."""


class UnsupportedUploadError(AudioError, ValueError):
    """Uploaded bytes are not in a supported audio container (recognised from the bytes, never the name).

    Attributes:
        what: What the bytes look like when recognised (``"PDF"``, ``"MP4/M4A"``...), else ``None``.
    """

    def __init__(self, message: str, source: str | None = None, what: str | None = None) -> None:
        self.what = what
        super().__init__(message, source)


class UploadTooLargeError(AudioError, ValueError):
    """An uploaded file is larger than the service accepts."""


class AudioTooLongError(AudioError, ValueError):
    """The audio is longer than the service accepts."""


# --------------------------------------------------------------------------------------------------- config
class ConfigError(AudiovecError, ValueError):
    """An invalid configuration value or argument."""


# --------------------------------------------------------------------------------------------------- registry
class RegistryError(AudiovecError, LookupError):
    """Base class of plugin-registry errors."""


class UnknownPluginError(RegistryError):
    """No plugin is registered under that name."""


class DuplicatePluginError(RegistryError):
    """A plugin name is already registered; registering again needs ``clobber=True``."""


class PluginLoadError(RegistryError):
    """A plugin's entry point could not be imported or is not the right kind of object."""


class MissingDependencyError(AudiovecError, ImportError):
    """An optional dependency is missing; the message names the ``pip install`` command that fixes it."""


# --------------------------------------------------------------------------------------------------- models
class ModelLoadError(AudiovecError):
    """A model's weights or files could not be found or loaded. audiovec never falls back to another model."""


class ModelDownloadError(ModelLoadError):
    """Weights could not be downloaded, or the downloaded bytes do not have the published size and SHA-256.

    Nothing is left in the cache: a failed or mismatching download is deleted, and an earlier good file is kept.
    """


class EmbeddingError(AudiovecError):
    """A model failed while computing embeddings."""


class NonFiniteEmbeddingError(EmbeddingError, ValueError):
    """A model or a pooling step produced NaN or infinite values (e.g. from audio with enormous samples).

    Such vectors are never returned or stored; batch jobs record the input as a failure and go on.

    Attributes:
        source: A printable description of the input (a path, ``"<array>"``...), when known.
    """

    def __init__(self, message: str, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


# --------------------------------------------------------------------------------------------------- stores
class StoreError(AudiovecError):
    """Base class of vector-store errors."""


class StoreConnectionError(StoreError, ConnectionError):
    """The vector store (or its server) cannot be reached."""


class DimensionMismatchError(StoreError, ValueError):
    """Vectors do not have the store's dimension, or the dimension exceeds the backend's limit."""


class InvalidVectorError(StoreError, ValueError):
    """Vectors are not finite float arrays of the expected shape."""


class DuplicateIdError(StoreError, ValueError):
    """``add`` was given an id that is already stored (use ``upsert`` to replace)."""


class InvalidIdError(StoreError, ValueError):
    """Ids are of the wrong kind (int vs str), shape or range for this store."""


class InvalidMetadataError(StoreError, ValueError):
    """Metadata is not a JSON-able object, or exceeds the store's limits."""


class FilterError(StoreError, ValueError):
    """A metadata filter is malformed or refers to values of the wrong type."""


class FilterTooLargeError(FilterError):
    """A filter is nested deeper, has more terms or is larger than the documented limits allow."""


class StoreLockedError(StoreError):
    """Another process holds the store open; the message names it (its pid) where that can be known."""


class JournalError(StoreError):
    """The store's write-ahead journal could not be written (the write was not acknowledged) or read back."""


class CollectionError(StoreError):
    """A problem with a collection: an embedder preset, a pooling recipe and a vector store kept in one folder."""


class CollectionNotFoundError(CollectionError, LookupError):
    """No collection of that name."""


class CollectionExistsError(CollectionError, ValueError):
    """A collection of that name already exists."""


class ItemNotFoundError(CollectionError, LookupError):
    """No item of that id in the collection."""
