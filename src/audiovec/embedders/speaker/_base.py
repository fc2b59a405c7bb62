"""What the PyTorch speaker embedders share: device and thread settings, batched windows, the weights in ``spec()``."""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from audiovec._optional import require
from audiovec.embedders._torch import TorchConfig, resolve_device, torch_threads
from audiovec.embedders.base import FramedEmbedder

__all__ = ["TorchConfig", "TorchEmbedder"]


class TorchEmbedder(FramedEmbedder):
    """Common machinery: torch import, device, thread scoping, batched forward passes over frames."""

    runtime_fields: ClassVar[tuple[str, ...]] = ("chunk_s", "device", "batch_size", "num_threads")
    config: TorchConfig
    _torch: Any
    _device: Any

    def _init_torch(self, feature: str) -> None:
        self._torch = require("torch", "speaker", feature)
        self._device = self._torch.device(resolve_device(self._torch, self.config.device))

    def _threads(self) -> contextlib.AbstractContextManager[None]:
        """Torch threads as configured, around a forward pass (:func:`audiovec.embedders._torch.torch_threads`)."""
        return torch_threads(self._torch, self.config.num_threads)

    def _embed_frames_batch(self, chunks: Sequence[NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        frames = [np.lib.stride_tricks.sliding_window_view(c, self.frame_length)[:: self.hop_length] for c in chunks]
        counts = [len(f) for f in frames]
        out = self._embed_windows([row for f in frames for row in f])
        return [np.ascontiguousarray(part) for part in np.split(out, np.cumsum(counts)[:-1])]

    @abstractmethod
    def _embed_windows(self, windows: list[NDArray[np.float32]]) -> NDArray[np.float32]:
        """Embed equal-length windows (``frame_length`` samples each): ``float32[len(windows), dim]``."""

    def _spec_params(self) -> dict[str, Any]:
        """Output-relevant configuration and the identity of the weights."""
        return super()._spec_params() | self._weights_identity()

    def _weights_identity(self) -> dict[str, Any]:
        return {}
