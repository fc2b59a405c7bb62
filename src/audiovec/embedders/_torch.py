"""The device and thread rules of the PyTorch embedders (speaker models, aiSFX, Hugging Face encoders), in one place.

A ``device`` setting is validated when the configuration is built (:func:`check_device`, a pydantic validator's
helper) and resolved against the installed torch when the model is loaded (:func:`resolve_device`). Both raise
the same way for every embedder: a malformed name fails validation (:class:`~audiovec.errors.ConfigError` from
the embedder's constructor), and a well-formed name that torch cannot use raises
:class:`~audiovec.errors.ConfigError` naming what torch sees. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from pydantic import Field, field_validator

from audiovec.embedders.base import EmbedderConfig
from audiovec.errors import ConfigError

__all__ = ["DEVICES", "TorchConfig", "check_device", "resolve_device", "torch_threads"]

#: The accepted ``device`` values, for messages and field descriptions.
DEVICES = "'auto', 'cpu', 'mps', 'cuda', 'cuda:N', 'xpu' or 'xpu:N'"

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|(cuda|xpu)(:\d+)?)$")


def check_device(value: str) -> str:
    """``value`` if it is a device name audiovec accepts (pydantic validators call this).

    Raises:
        ValueError: Not one of :data:`DEVICES`.
    """
    if not _DEVICE_RE.match(value):
        raise ValueError(f"device must be {DEVICES}, got {value!r}")
    return value


@contextlib.contextmanager
def torch_threads(torch: Any, n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (a process-wide setting), restored afterwards.

    ``None`` (or the current count) leaves the setting alone.
    """
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def resolve_device(torch: Any, device: str) -> str:
    """The torch device to use for ``device``: ``"auto"`` picks CUDA, then Apple MPS, then Intel XPU, then CPU.

    Args:
        torch: The imported ``torch`` module.
        device: A name accepted by :func:`check_device`.

    Returns:
        A torch device string (``"cpu"``, ``"cuda:1"``...).

    Raises:
        ConfigError: The name is malformed, or torch has no such device.
    """
    if _DEVICE_RE.match(device) is None:
        raise ConfigError(f"device must be {DEVICES}, got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available(torch) else "xpu" if _xpu_available(torch) else "cpu"
    kind, _, index = device.partition(":")
    if kind == "cpu":
        return device
    usable = {"cuda": bool(torch.cuda.is_available()), "mps": _mps_available(torch), "xpu": _xpu_available(torch)}
    if not usable[kind]:
        raise ConfigError(f"device={device!r} was requested but torch sees no {kind.upper()} device")
    count = 1 if kind == "mps" else int(getattr(torch, kind).device_count())
    if index and int(index) >= count:
        raise ConfigError(f"device={device!r} was requested but torch sees only {count} {kind.upper()} device(s)")
    return device


def _mps_available(torch: Any) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _xpu_available(torch: Any) -> bool:
    xpu = getattr(torch, "xpu", None)
    return bool(xpu is not None and xpu.is_available())


class TorchConfig(EmbedderConfig):
    """Fields shared by the PyTorch embedders (speaker models, aiSFX): where and how wide the model runs.

    Attributes:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"xpu"`` or ``"auto"`` (CUDA, then Apple MPS, then
            Intel XPU, then the CPU).
        batch_size: Frames per forward pass; bounds memory, does not change the output.
        num_threads: PyTorch intra-op threads used during each forward pass (a process-wide torch setting,
            restored afterwards); ``None`` keeps the process setting. On a small or busy machine, 1 is often
            fastest.
    """

    device: str = Field("cpu", description=f"torch device: {DEVICES}")
    batch_size: int = Field(32, ge=1, le=4096, description="frames per forward pass")
    num_threads: int | None = Field(None, ge=1, le=1024, description="torch threads during forward passes")

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        return check_device(value)
