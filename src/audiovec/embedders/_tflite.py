"""Shared plumbing of the TensorFlow Lite embedders (YAMNet, BirdNET): the interpreter, weights hashing, scores.

:class:`TFLiteModel` wraps one ``ai_edge_litert`` interpreter, loaded once: it resizes the input tensor only when
the input shape changes, invokes, and returns copies of the outputs it was asked for. A model's intermediate
tensor (BirdNET's embedding layer, which is not a model output) is read in one of two ways:

* ``extra_outputs`` (default): the flatbuffer is rewritten in memory so that the tensor becomes an additional
  output of the graph. Nothing else changes (the weights are the same bytes), the default XNNPACK delegate still
  runs the whole graph, and inputs can be batched.
* ``preserve_all_tensors=True``: the interpreter's ``experimental_preserve_all_tensors`` debugging switch, which
  keeps every intermediate tensor alive. Same numbers, but every input row costs the memory of all activations
  (about 120 MB per BirdNET window), so callers should invoke one row at a time.

The module also holds two small helpers used by both embedders: :class:`ScoresView` (a model's class-score
output, cut into the same frames as its embeddings) and :func:`pooled_top_k`.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from audiovec._hashing import sha256_bytes, sha256_file
from audiovec._optional import require
from audiovec._threads import thread_budget
from audiovec.embedders.base import FramedEmbedder
from audiovec.embedders.framing import FrameGeometry
from audiovec.errors import ConfigError, ModelLoadError

__all__ = ["ScoresView", "TFLiteModel", "default_num_threads", "pooled_top_k"]

_PRESERVE_WARNING = r".*experimental_preserve_all_tensors.*"


def default_num_threads() -> int:
    """The interpreter's thread count when none is given: every core, or ``$AUDIOVEC_NUM_THREADS``."""
    return thread_budget()


def _add_outputs(content: bytes, names: Sequence[str], source: str, extra: str) -> tuple[bytes, dict[str, int]]:
    """Return ``content`` rewritten so that the tensors ``names`` are also graph outputs, and their indices."""
    schema = require(
        "ai_edge_litert.schema_py_generated", extra, "reading intermediate TFLite tensors", "ai-edge-litert"
    )
    flatbuffers = require("flatbuffers", extra, "reading intermediate TFLite tensors")
    try:
        model = schema.ModelT.InitFromPackedBuf(content, 0)
        graph = model.subgraphs[0]
        by_name = {bytes(t.name).decode("utf-8", "replace"): i for i, t in enumerate(graph.tensors)}
    except Exception as err:
        raise ModelLoadError(f"{source}: cannot parse the TFLite flatbuffer ({type(err).__name__}: {err})") from err
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ModelLoadError(f"{source}: the model has no tensor named {', '.join(map(repr, missing))}")
    indices = {n: by_name[n] for n in names}
    outputs = [int(i) for i in graph.outputs]
    graph.outputs = outputs + [i for i in indices.values() if i not in outputs]
    builder = flatbuffers.Builder(len(content) + 65536)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), indices


class TFLiteModel:
    """A ``.tflite`` model loaded once into an ``ai_edge_litert`` interpreter with one input tensor.

    Args:
        path: The ``.tflite`` file.
        num_threads: Interpreter threads (``None``: every core available to the process).
        extra_outputs: Names of intermediate tensors to return besides the model's outputs.
        preserve_all_tensors: Read ``extra_outputs`` through ``experimental_preserve_all_tensors`` instead of
            rewriting the model (much more memory per input row; see the module docstring).
        extra: The audiovec extra that provides ``ai-edge-litert``, for the install hint.
        feature: What is loading the model, for messages.

    Attributes:
        path: The model file.
        sha256: Hex SHA-256 of the file's bytes (before any rewriting).
        output_names: Names of the tensors :meth:`run` returns.
        num_threads: Interpreter threads.

    Raises:
        MissingDependencyError: ``ai-edge-litert`` is not installed.
        ModelLoadError: The file is missing, is not a TFLite model, or lacks a requested tensor.
        ConfigError: ``num_threads`` is below 1.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        num_threads: int | None = None,
        extra_outputs: Sequence[str] = (),
        preserve_all_tensors: bool = False,
        extra: str = "yamnet",
        feature: str = "a TFLite model",
    ) -> None:
        litert = require("ai_edge_litert.interpreter", extra, feature, "ai-edge-litert")
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelLoadError(f"{feature}: TFLite model file not found: {self.path}")
        if num_threads is not None and num_threads < 1:
            raise ConfigError(f"num_threads must be >= 1, got {num_threads}")
        self.num_threads = num_threads or default_num_threads()
        source = f"{feature} ({self.path})"
        kwargs: dict[str, Any] = {"num_threads": self.num_threads}
        extra_index: dict[str, int] = {}
        try:
            if extra_outputs and not preserve_all_tensors:
                content = self.path.read_bytes()
                self.sha256 = sha256_bytes(content)
                kwargs["model_content"], extra_index = _add_outputs(content, extra_outputs, source, extra)
                del content
            else:
                self.sha256 = sha256_file(self.path)
                kwargs["model_path"] = str(self.path)
            kwargs["experimental_preserve_all_tensors"] = preserve_all_tensors
            with warnings.catch_warnings():  # the switch is used on purpose, with one row per call
                warnings.filterwarnings("ignore", message=_PRESERVE_WARNING, category=UserWarning)
                self._interp = litert.Interpreter(**kwargs)
            self._interp.allocate_tensors()
        except ModelLoadError:
            raise
        except (OSError, ValueError, RuntimeError) as err:
            raise ModelLoadError(f"{source}: not a loadable TFLite model ({type(err).__name__}: {err})") from err
        inputs = self._interp.get_input_details()
        if len(inputs) != 1:
            raise ModelLoadError(f"{source}: expected one input tensor, found {len(inputs)}")
        self._input = int(inputs[0]["index"])
        self.input_shape_signature: tuple[int, ...] = tuple(int(d) for d in inputs[0]["shape_signature"])
        self._shape: tuple[int, ...] = tuple(int(d) for d in inputs[0]["shape"])
        self._read: dict[str, int] = {d["name"]: int(d["index"]) for d in self._interp.get_output_details()}
        if preserve_all_tensors:
            by_name = {d["name"]: int(d["index"]) for d in self._interp.get_tensor_details()}
            missing = [n for n in extra_outputs if n not in by_name]
            if missing:
                raise ModelLoadError(f"{source}: the model has no tensor named {', '.join(map(repr, missing))}")
            extra_index = {n: by_name[n] for n in extra_outputs}
        # a rewritten model lists the extra tensors among its outputs under their own names
        self._read.update(extra_index)
        self.output_names: tuple[str, ...] = tuple(self._read)
        self._lock = threading.Lock()  # one interpreter, one invocation at a time

    def run(self, x: NDArray[np.float32], outputs: Iterable[str] | None = None) -> dict[str, NDArray[np.float32]]:
        """Invoke the model on ``x`` and return copies of the requested outputs.

        The input tensor is resized (and the interpreter re-allocated) only when ``x.shape`` differs from the
        previous call's.

        Args:
            x: The input, shaped like the model's input signature (``-1`` dimensions free).
            outputs: Names to return (default: every name in :attr:`output_names`).

        Returns:
            ``{name: array}``, each a fresh copy that later calls do not overwrite.
        """
        names = tuple(outputs) if outputs is not None else self.output_names
        x = np.ascontiguousarray(x, dtype=np.float32)
        with self._lock:
            if x.shape != self._shape:
                self._interp.resize_tensor_input(self._input, list(x.shape), strict=True)
                self._interp.allocate_tensors()
                self._shape = tuple(x.shape)
            self._interp.set_tensor(self._input, x)
            self._interp.invoke()
            return {n: np.asarray(self._interp.get_tensor(self._read[n]), dtype=np.float32) for n in names}


class ScoresView(FramedEmbedder):
    """Another output of a :class:`FramedEmbedder`'s model (class scores), cut into the same frames as its embeddings.

    It shares the parent's configuration and loaded model, so the scores of frame ``i`` come from the same
    samples as embedding ``i``; resampling, chunking and streaming work as for the parent.

    Args:
        parent: The embedder whose framing and configuration are used.
        dim: Number of scores per frame.
        fn: Computes ``float32[n, dim]`` scores for samples covering ``n`` whole frames.
    """

    name: ClassVar[str] = "scores"

    def __init__(
        self, parent: FramedEmbedder, dim: int, fn: Callable[[NDArray[np.float32]], NDArray[np.float32]]
    ) -> None:
        self.config = parent.config  # already validated; the framing only reads chunk_s
        self.name = f"{parent.name}-scores"  # type: ignore[misc]
        self.geometry = FrameGeometry(parent.sample_rate, parent.frame_length, parent.hop_length, dim)
        self._fn = fn

    def _embed_frames(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._fn(samples)


def pooled_top_k(
    scores: NDArray[np.float32], names: Sequence[str], top_k: int, pool: Literal["mean", "max"]
) -> list[tuple[str, float]]:
    """Pool ``float32[frames, classes]`` scores over frames and return the ``top_k`` ``(name, score)`` pairs.

    Raises:
        ConfigError: ``top_k`` below 1 or an unknown ``pool``.
    """
    if top_k < 1:
        raise ConfigError(f"top_k must be >= 1, got {top_k}")
    if pool == "mean":
        pooled = scores.mean(axis=0)
    elif pool == "max":
        pooled = scores.max(axis=0)
    else:
        raise ConfigError(f"pool must be 'mean' or 'max', got {pool!r}")
    order = np.argsort(-pooled, kind="stable")[:top_k]
    return [(names[int(i)], float(pooled[int(i)])) for i in order]
