"""SpeechBrain's ECAPA ``hyperparams.yaml``: the feature, normalisation and model settings audiovec can run.

SpeechBrain writes HyperPyYAML (``!new:``, ``!ref``, ``!name:`` tags); this reader parses it with plain PyYAML
(a ``SafeLoader`` subclass that keeps tagged nodes), follows ``!ref`` chains, and accepts only the settings of
SpeechBrain's default ECAPA inference path, refusing anything else with a :class:`~audiovec.errors.ModelLoadError`.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiovec._optional import require
from audiovec.errors import ModelLoadError

__all__ = ["ECAPAArch", "ECAPAModelSpec", "FbankParams", "parse_ecapa_hyperparams"]


@dataclass(frozen=True)
class FbankParams:
    """``speechbrain.lobes.features.Fbank`` settings (win/hop in milliseconds, as SpeechBrain takes them)."""

    sample_rate: int = 16000
    n_fft: int = 400
    win_length: float = 25.0
    hop_length: float = 10.0
    n_mels: int = 40
    f_min: float = 0.0
    f_max: float | None = None


@dataclass(frozen=True)
class ECAPAArch:
    """``speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN`` constructor arguments (SpeechBrain's defaults)."""

    input_size: int
    lin_neurons: int = 192
    channels: tuple[int, ...] = (512, 512, 512, 512, 1536)
    kernel_sizes: tuple[int, ...] = (5, 3, 3, 3, 1)
    dilations: tuple[int, ...] = (1, 2, 3, 4, 1)
    attention_channels: int = 128
    res2net_scale: int = 8
    se_channels: int = 128
    global_context: bool = True
    groups: tuple[int, ...] = (1, 1, 1, 1, 1)


@dataclass(frozen=True)
class ECAPAModelSpec:
    fbank: FbankParams
    arch: ECAPAArch
    std_norm: bool


class _Tagged:
    """A HyperPyYAML tagged node (``!new:...``, ``!ref <x>``, ``!name:...``) read by plain YAML."""

    def __init__(self, tag: str, value: Any) -> None:
        self.tag = tag
        self.value = value


def _read_hyperparams(path: Path) -> dict[str, Any]:
    yaml = require("yaml", "speaker", "ECAPAEmbedder", package="pyyaml")

    class _Loader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
        pass

    def construct(loader: Any, suffix: str, node: Any) -> _Tagged:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return _Tagged(suffix, value)

    _Loader.add_multi_constructor("!", construct)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader subclass
    except Exception as err:
        raise ModelLoadError(f"cannot parse {path}: {err}") from err
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is not a YAML mapping")
    return data


def _resolve_refs(value: Any, top: dict[str, Any], path: Path, depth: int = 0) -> Any:
    if depth > 20:
        raise ModelLoadError(f"{path}: !ref chain too deep")
    if isinstance(value, _Tagged) and value.tag == "ref":
        m = re.fullmatch(r"\s*<([A-Za-z_][\w]*)>\s*", str(value.value))
        if m is None or m.group(1) not in top:
            raise ModelLoadError(f"{path}: unsupported or dangling reference !ref {value.value}")
        return _resolve_refs(top[m.group(1)], top, path, depth + 1)
    if isinstance(value, list):
        return [_resolve_refs(v, top, path, depth + 1) for v in value]
    return value


def _find_node(top: dict[str, Any], key: str, suffix: str, path: Path) -> dict[str, Any] | None:
    candidates = [top.get(key)] + [v for k, v in top.items() if k != key]
    for node in candidates:
        with contextlib.suppress(ModelLoadError):  # other entries may hold refs we do not need to understand
            node = _resolve_refs(node, top, path)
        if isinstance(node, _Tagged) and node.tag.startswith("new:") and node.tag.endswith(suffix):
            args = node.value if isinstance(node.value, dict) else {}
            return {k: _resolve_refs(v, top, path) for k, v in args.items()}
    return None


def parse_ecapa_hyperparams(path: Path) -> ECAPAModelSpec:
    """Read the feature, normalisation and model settings of a SpeechBrain ECAPA ``hyperparams.yaml``."""
    top = _read_hyperparams(path)
    model = _find_node(top, "embedding_model", "ECAPA_TDNN.ECAPA_TDNN", path)
    if model is None:
        raise ModelLoadError(f"{path}: no `!new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN` embedding_model")
    feats = _find_node(top, "compute_features", "features.Fbank", path)
    if feats is None:
        raise ModelLoadError(f"{path}: no `!new:speechbrain.lobes.features.Fbank` compute_features")
    norm = _find_node(top, "mean_var_norm", "InputNormalization", path)
    if norm is None:
        raise ModelLoadError(f"{path}: no `!new:speechbrain.processing.features.InputNormalization` mean_var_norm")

    def unsupported(what: str, detail: str) -> ModelLoadError:
        return ModelLoadError(
            f"{path}: unsupported {what} setting {detail} (audiovec runs SpeechBrain's default "
            "ECAPA inference path only)"
        )

    # --- features
    fb: dict[str, Any] = {}
    for key, value in feats.items():
        if key in ("sample_rate", "n_fft", "n_mels"):
            fb[key] = int(value)
        elif key in ("win_length", "hop_length", "f_min"):
            fb[key] = float(value)
        elif key == "f_max":
            fb[key] = None if value is None else float(value)
        elif key in ("deltas", "context") and value:
            raise unsupported("Fbank", f"{key}={value!r}")
        elif key == "filter_shape" and value != "triangular":
            raise unsupported("Fbank", f"filter_shape={value!r}")
        elif key not in (
            "deltas",
            "context",
            "requires_grad",
            "left_frames",
            "right_frames",
            "filter_shape",
            "param_change_factor",
            "param_rand_factor",
        ):
            raise unsupported("Fbank", f"{key}={value!r}")
    fbank = FbankParams(**fb)
    # --- normalisation
    if norm.get("norm_type", "global") != "sentence" or norm.get("mean_norm", True) is not True:
        raise unsupported("InputNormalization", f"{norm!r} (need norm_type: sentence)")
    extra = set(norm) - {
        "norm_type",
        "std_norm",
        "mean_norm",
        "epsilon",
        "length_dim",
        "update_until_epoch",
        "avoid_padding_norm",
        "device",
    }
    if extra:
        raise unsupported("InputNormalization", f"{sorted(extra)}")
    # --- model
    arch: dict[str, Any] = {}
    for key, value in model.items():
        if key in ("input_size", "lin_neurons", "attention_channels", "res2net_scale", "se_channels"):
            arch[key] = int(value)
        elif key in ("channels", "kernel_sizes", "dilations", "groups"):
            arch[key] = tuple(int(v) for v in value)
        elif key == "global_context":
            arch[key] = bool(value)
        elif key == "activation":
            if not (isinstance(value, _Tagged) and value.tag == "name:torch.nn.ReLU"):
                raise unsupported("ECAPA_TDNN", f"activation={getattr(value, 'tag', value)!r}")
        elif key not in ("device", "dropout"):
            raise unsupported("ECAPA_TDNN", f"{key}={value!r}")
    if "input_size" not in arch:
        raise ModelLoadError(f"{path}: ECAPA_TDNN has no input_size")
    spec = ECAPAModelSpec(fbank, ECAPAArch(**arch), std_norm=bool(norm.get("std_norm", True)))
    a = spec.arch
    n = len(a.channels)
    if n < 3 or not (len(a.kernel_sizes) == len(a.dilations) == len(a.groups) == n):
        raise ModelLoadError(f"{path}: channels/kernel_sizes/dilations/groups must have the same length >= 3")
    if any(c % a.res2net_scale for c in a.channels[1:-1]):
        raise ModelLoadError(f"{path}: SE-Res2Net channels must be divisible by res2net_scale={a.res2net_scale}")
    if a.input_size != fbank.n_mels:
        raise ModelLoadError(f"{path}: ECAPA input_size={a.input_size} != Fbank n_mels={fbank.n_mels}")
    return spec
