"""ECAPA-TDNN speaker embeddings from SpeechBrain checkpoints (a local directory or the Hugging Face Hub)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from audiovec._download import offline
from audiovec._hashing import sha256_file
from audiovec._optional import require
from audiovec.embedders.framing import FrameGeometry
from audiovec.embedders.speaker._base import TorchConfig, TorchEmbedder
from audiovec.embedders.speaker._ecapa_net import ECAPARunner, ecapa_state_shapes
from audiovec.embedders.speaker._hyperparams import parse_ecapa_hyperparams
from audiovec.errors import ModelLoadError

__all__ = ["ECAPAConfig", "ECAPAEmbedder"]

logger = logging.getLogger(__name__)

_ECAPA_DEFAULT_SOURCE = "speechbrain/spkrec-ecapa-voxceleb"
_ECAPA_FILES = ("hyperparams.yaml", "embedding_model.ckpt")
_ECAPA_MIN_S = 0.5  # a trimmed window keeps at least this much (the dilated convolutions need context)


class ECAPAConfig(TorchConfig):
    """Configuration of :class:`ECAPAEmbedder`.

    Attributes:
        source: A local directory holding ``hyperparams.yaml`` and ``embedding_model.ckpt`` (SpeechBrain's layout),
            or a Hugging Face Hub repository id (default ``speechbrain/spkrec-ecapa-voxceleb``).
        revision: Hub revision (branch, tag or commit); ``None``: the default branch.
        cache_dir: Hub cache directory; ``None``: huggingface_hub's default.
        local_files_only: Never touch the network: use the local directory or the Hub cache only. Also implied
            by the environment variable ``HF_HUB_OFFLINE=1``.
        window_s: Length of one frame in seconds (the model embeds each window on its own).
        hop_s: Step between windows in seconds (at most ``window_s``).
        batch_size: Windows per forward pass (default 8: the full-size model needs about 50 MB of activations per
            3 s window, so memory grows by that much per window in a batch).
        trim_padding: Drop the trailing run of exact-zero samples of a window before embedding it (keeping at
            least 0.5 s), so the zero padding that completes a short input or the last window is not embedded as
            silence; a window of real audio never ends in a run of exact zeros unless it is digital silence.
    """

    batch_size: int = Field(8, ge=1, le=4096, description="windows per forward pass")
    source: str = Field(_ECAPA_DEFAULT_SOURCE, min_length=1, description="local model directory or Hub repo id")
    revision: str | None = None
    cache_dir: str | None = None
    local_files_only: bool = False
    window_s: float = Field(3.0, ge=_ECAPA_MIN_S, le=60.0, description="window length (s)")
    hop_s: float = Field(1.0, gt=0, description="step between windows (s)")
    trim_padding: bool = True

    @model_validator(mode="after")
    def _check_hop(self) -> ECAPAConfig:
        if self.hop_s > self.window_s:
            raise ValueError(f"hop_s={self.hop_s} must not exceed window_s={self.window_s} (gaps between frames)")
        return self


def _looks_like_path(source: str) -> bool:
    return Path(source).is_absolute() or source.startswith((".", "~")) or source.count("/") != 1 or "\\" in source


class ECAPAEmbedder(TorchEmbedder):
    """ECAPA-TDNN speaker embeddings from a SpeechBrain checkpoint: one vector per window (192-d by default).

    The model directory follows SpeechBrain's layout (``hyperparams.yaml`` with ``compute_features`` (Fbank),
    ``mean_var_norm`` (sentence) and ``embedding_model`` (``ECAPA_TDNN``), plus ``embedding_model.ckpt``); any
    channel widths, kernel sizes, dilations or mel count that SpeechBrain's ``ECAPA_TDNN`` accepts are read from
    the YAML. The vectors are what ``EncoderClassifier.encode_batch(wav)`` returns for each window (no
    ``mean_var_norm_emb``); compare them with cosine similarity.

    Args:
        config: An :class:`ECAPAConfig`, a dict of its fields, or ``None``.
        **params: Config fields as keyword arguments.

    Raises:
        ConfigError: Invalid parameters.
        MissingDependencyError: ``torch`` (or, for Hub sources, ``huggingface_hub``; for the YAML, ``pyyaml``) is
            not installed (``pip install 'audiovec[speaker]'``).
        ModelLoadError: The directory or Hub files cannot be found (offline or not), the YAML describes something
            other than SpeechBrain's ECAPA inference path, or the checkpoint does not fit the described model.

    Example:
        >>> from audiovec import get_embedder
        >>> emb = get_embedder("ecapa", source="/models/spkrec-ecapa-voxceleb", local_files_only=True)  # doctest: +SKIP
        >>> emb.dim, emb.window_s  # doctest: +SKIP
        (192, 3.0)
    """

    name: ClassVar[str] = "ecapa"
    version: ClassVar[str] = "1"
    Config = ECAPAConfig
    config: ECAPAConfig
    runtime_fields: ClassVar[tuple[str, ...]] = (*TorchEmbedder.runtime_fields, "cache_dir", "local_files_only")

    def _setup(self) -> None:
        c = self.config
        self._init_torch("ECAPAEmbedder")
        t0 = time.perf_counter()
        hparams_path, ckpt_path, self._model_name = self._locate_files()
        spec = parse_ecapa_hyperparams(hparams_path)
        try:
            state = self._torch.load(ckpt_path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ModelLoadError(f"cannot read the ECAPA checkpoint {ckpt_path}: {err}") from err
        if not isinstance(state, dict):
            raise ModelLoadError(f"{ckpt_path} is not a state dict")
        expected = ecapa_state_shapes(spec.arch)
        found = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        if missing or unexpected or wrong:
            raise ModelLoadError(
                f"{ckpt_path} does not fit the ECAPA_TDNN described in {hparams_path}: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}"
            )
        params_t = {k: state[k].to(self._device, self._torch.float32) for k in expected if expected[k]}
        self._runner = ECAPARunner(self._torch, spec, params_t, self._device)
        self._spec = spec
        self._weights_sha256 = sha256_file(ckpt_path)
        self._files = (hparams_path, ckpt_path)
        sr = spec.fbank.sample_rate
        frame = round(c.window_s * sr)
        self.geometry = FrameGeometry(sr, frame, max(1, round(c.hop_s * sr)), spec.arch.lin_neurons)
        self._min_samples = min(frame, round(_ECAPA_MIN_S * sr))
        self.load_seconds = time.perf_counter() - t0
        logger.info("loaded ECAPA-TDNN %s on %s in %.2f s", self._model_name, self._device, self.load_seconds)

    def _locate_files(self) -> tuple[Path, Path, str]:
        c = self.config
        local = Path(c.source).expanduser()
        if local.is_dir():
            missing = [f for f in _ECAPA_FILES if not (local / f).is_file()]
            if missing:
                raise ModelLoadError(
                    f"ECAPA model directory {local} lacks {missing} (a SpeechBrain ECAPA directory holds "
                    f"{list(_ECAPA_FILES)}; tried source={c.source!r})"
                )
            return local / _ECAPA_FILES[0], local / _ECAPA_FILES[1], local.name
        if _looks_like_path(c.source):
            raise ModelLoadError(f"ECAPA model directory not found: {local} (tried source={c.source!r})")
        hub = require("huggingface_hub", "speaker", "ECAPAEmbedder", package="huggingface_hub")
        no_network = offline(c.local_files_only)
        paths = []
        for fname in _ECAPA_FILES:
            try:
                got = hub.hf_hub_download(
                    repo_id=c.source,
                    filename=fname,
                    revision=c.revision,
                    cache_dir=c.cache_dir,
                    local_files_only=no_network,
                )
            except Exception as err:
                where = "the local Hugging Face cache (offline mode)" if no_network else "the Hugging Face Hub"
                raise ModelLoadError(
                    f"cannot get {fname} of the ECAPA model {c.source!r} (revision={c.revision!r}, "
                    f"cache_dir={c.cache_dir!r}) from {where}: {type(err).__name__}: {err}"
                ) from err
            paths.append(Path(got))
        return paths[0], paths[1], c.source

    @property
    def model_files(self) -> tuple[Path, Path]:
        """The ``hyperparams.yaml`` and ``embedding_model.ckpt`` in use."""
        return self._files

    def _weights_identity(self) -> dict[str, Any]:
        a, fb = self._spec.arch, self._spec.fbank
        return {
            "source": self._model_name,
            "revision": self.config.revision,
            "weights_sha256": self._weights_sha256[:16],
            "architecture": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(a).items()},
            "features": asdict(fb) | {"std_norm": self._spec.std_norm},
        }

    def _valid_length(self, window: NDArray[np.float32]) -> int:
        if not self.config.trim_padding:
            return len(window)
        nz = np.flatnonzero(window)
        last = int(nz[-1]) + 1 if len(nz) else 0
        return max(last, self._min_samples)

    def _embed_windows(self, windows: list[NDArray[np.float32]]) -> NDArray[np.float32]:
        torch = self._torch
        out = np.empty((len(windows), self.dim), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            groups.setdefault(self._valid_length(w), []).append(i)
        bs = self.config.batch_size
        with self._threads(), torch.inference_mode():
            for length, idx in groups.items():
                for b in range(0, len(idx), bs):
                    sel = idx[b : b + bs]
                    wav = torch.from_numpy(np.stack([windows[i][:length] for i in sel])).to(self._device)
                    out[sel] = self._runner.embed(wav).float().cpu().numpy()
        return out
