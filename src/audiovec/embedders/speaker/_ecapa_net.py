"""SpeechBrain's ECAPA-TDNN inference in plain PyTorch: the network and the shapes of its state dict."""

from __future__ import annotations

import math
from typing import Any

from audiovec.embedders.speaker._hyperparams import ECAPAArch, ECAPAModelSpec

__all__ = ["ECAPARunner", "ecapa_state_shapes"]


def _tdnn_shapes(prefix: str, c_in: int, c_out: int, k: int, groups: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.conv.conv.weight": (c_out, c_in // groups, k),
        f"{prefix}.conv.conv.bias": (c_out,),
        **_bn_shapes(f"{prefix}.norm.norm", c_out),
    }


def _bn_shapes(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (c,),
        f"{prefix}.bias": (c,),
        f"{prefix}.running_mean": (c,),
        f"{prefix}.running_var": (c,),
        f"{prefix}.num_batches_tracked": (),
    }


def ecapa_state_shapes(a: ECAPAArch) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of SpeechBrain's ``ECAPA_TDNN(**asdict(a))`` state dict."""
    ch, ks = a.channels, a.kernel_sizes
    shapes = _tdnn_shapes("blocks.0", a.input_size, ch[0], ks[0], a.groups[0])
    for i in range(1, len(ch) - 1):
        p = f"blocks.{i}"
        shapes.update(_tdnn_shapes(f"{p}.tdnn1", ch[i - 1], ch[i], 1, a.groups[i]))
        width = ch[i] // a.res2net_scale
        for j in range(a.res2net_scale - 1):
            shapes.update(_tdnn_shapes(f"{p}.res2net_block.blocks.{j}", width, width, ks[i], 1))
        shapes.update(_tdnn_shapes(f"{p}.tdnn2", ch[i], ch[i], 1, a.groups[i]))
        shapes[f"{p}.se_block.conv1.conv.weight"] = (a.se_channels, ch[i], 1)
        shapes[f"{p}.se_block.conv1.conv.bias"] = (a.se_channels,)
        shapes[f"{p}.se_block.conv2.conv.weight"] = (ch[i], a.se_channels, 1)
        shapes[f"{p}.se_block.conv2.conv.bias"] = (ch[i],)
        if ch[i - 1] != ch[i]:
            shapes[f"{p}.shortcut.conv.weight"] = (ch[i], ch[i - 1], 1)
            shapes[f"{p}.shortcut.conv.bias"] = (ch[i],)
    shapes.update(_tdnn_shapes("mfa", ch[-2] * (len(ch) - 2), ch[-1], ks[-1], a.groups[-1]))
    shapes.update(_tdnn_shapes("asp.tdnn", ch[-1] * (3 if a.global_context else 1), a.attention_channels, 1, 1))
    shapes["asp.conv.conv.weight"] = (ch[-1], a.attention_channels, 1)
    shapes["asp.conv.conv.bias"] = (ch[-1],)
    shapes.update(_bn_shapes("asp_bn.norm", ch[-1] * 2))
    shapes["fc.conv.weight"] = (a.lin_neurons, ch[-1] * 2, 1)
    shapes["fc.conv.bias"] = (a.lin_neurons,)
    return shapes


class ECAPARunner:
    """SpeechBrain's ECAPA inference (``EncoderClassifier.encode_batch``, ``normalize=False``) in plain PyTorch.

    Mirrors speechbrain 1.x: ``Fbank`` (centred Hamming STFT, power spectrum, triangular mel filters, ``10 log10``
    with an 80 dB floor below the window's maximum), ``InputNormalization(norm_type="sentence")`` and
    ``ECAPA_TDNN`` (reflect-padded "same" convolutions, SE-Res2Net blocks, attentive statistics pooling).
    """

    def __init__(self, torch: Any, spec: ECAPAModelSpec, params: dict[str, Any], device: Any) -> None:
        self.torch = torch
        self.F = torch.nn.functional
        self.spec = spec
        self.p = params
        fb = spec.fbank
        self.win = round(fb.sample_rate / 1000.0 * fb.win_length)
        self.hop = round(fb.sample_rate / 1000.0 * fb.hop_length)
        self.window = torch.hamming_window(self.win).to(device)
        self.fbank_matrix = self._fbank_matrix().to(device)

    def _fbank_matrix(self) -> Any:
        torch = self.torch
        fb = self.spec.fbank
        f_max = fb.f_max if fb.f_max is not None else fb.sample_rate // 2
        n_stft = fb.n_fft // 2 + 1

        def to_mel(hz: float) -> float:
            return 2595 * math.log10(1 + hz / 700)

        mel = torch.linspace(to_mel(fb.f_min), to_mel(f_max), fb.n_mels + 2)
        hz = 700 * (10 ** (mel / 2595) - 1)
        band = (hz[1:] - hz[:-1])[:-1]
        f_central = hz[1:-1]
        all_freqs = torch.linspace(0, fb.sample_rate // 2, n_stft).repeat(f_central.shape[0], 1)
        f_central_mat = f_central.repeat(n_stft, 1).transpose(0, 1)
        band_mat = band.repeat(n_stft, 1).transpose(0, 1)
        slope = (all_freqs - f_central_mat) / band_mat
        return torch.max(torch.zeros(1), torch.min(slope + 1.0, -slope + 1.0)).transpose(0, 1)

    def features(self, wav: Any) -> Any:
        """``[batch, samples]`` → normalised log-mel features ``[batch, frames, n_mels]``."""
        torch = self.torch
        stft = torch.stft(
            wav,
            self.spec.fbank.n_fft,
            self.hop,
            self.win,
            self.window,
            center=True,
            pad_mode="constant",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        stft = torch.view_as_real(stft).transpose(2, 1)
        power = stft.pow(2).sum(-1)
        fbanks = torch.matmul(power, self.fbank_matrix)
        db = 10 * torch.log10(torch.clamp(fbanks, min=1e-10))
        floor = db.amax(dim=(-2, -1)) - 80.0
        db = torch.max(db, floor.view(db.shape[0], 1, 1))
        mean = db.mean(dim=1, keepdim=True)
        if self.spec.std_norm:
            std = (db - mean).square().mean(dim=1, keepdim=True).sqrt()
            return (db - mean) / std.clamp(min=1e-10)
        return db - mean

    def _conv(self, x: Any, prefix: str, dilation: int = 1, groups: int = 1) -> Any:
        w = self.p[f"{prefix}.weight"]
        pad = dilation * (int(w.shape[-1]) - 1) // 2
        if pad:
            x = self.F.pad(x, (pad, pad), mode="reflect")
        return self.F.conv1d(x, w, self.p[f"{prefix}.bias"], dilation=dilation, groups=groups)

    def _bn(self, x: Any, prefix: str) -> Any:
        p = self.p
        return self.F.batch_norm(
            x,
            p[f"{prefix}.running_mean"],
            p[f"{prefix}.running_var"],
            p[f"{prefix}.weight"],
            p[f"{prefix}.bias"],
            training=False,
            momentum=0.0,
            eps=1e-5,
        )

    def _tdnn(self, x: Any, prefix: str, dilation: int = 1, groups: int = 1) -> Any:
        return self._bn(self.F.relu(self._conv(x, f"{prefix}.conv.conv", dilation, groups)), f"{prefix}.norm.norm")

    @staticmethod
    def _stats(torch: Any, x: Any, m: Any) -> tuple[Any, Any]:
        mean = (m * x).sum(2)
        std = torch.sqrt((m * (x - mean.unsqueeze(2)).pow(2)).sum(2).clamp(1e-12))
        return mean, std

    def embed(self, wav: Any) -> Any:
        """``[batch, samples]`` (all the same length, no padding) → ``[batch, lin_neurons]``."""
        torch, a = self.torch, self.spec.arch
        x = self.features(wav).transpose(1, 2)
        x = self._tdnn(x, "blocks.0", a.dilations[0], a.groups[0])
        outs = []
        for i in range(1, len(a.channels) - 1):
            p = f"blocks.{i}"
            residual = self._conv(x, f"{p}.shortcut.conv") if a.channels[i - 1] != a.channels[i] else x
            h = self._tdnn(x, f"{p}.tdnn1", 1, a.groups[i])
            parts: list[Any] = []
            y: Any = None
            for j, part in enumerate(torch.chunk(h, a.res2net_scale, dim=1)):
                if j == 0:
                    y = part
                elif j == 1:
                    y = self._tdnn(part, f"{p}.res2net_block.blocks.0", a.dilations[i])
                else:
                    y = self._tdnn(part + y, f"{p}.res2net_block.blocks.{j - 1}", a.dilations[i])
                parts.append(y)
            h = self._tdnn(torch.cat(parts, dim=1), f"{p}.tdnn2", 1, a.groups[i])
            s = h.sum(dim=2, keepdim=True) / h.shape[-1]
            s = self.F.relu(self._conv(s, f"{p}.se_block.conv1.conv"))
            s = torch.sigmoid(self._conv(s, f"{p}.se_block.conv2.conv"))
            x = s * h + residual
            outs.append(x)
        x = self._tdnn(torch.cat(outs, dim=1), "mfa", a.dilations[-1], a.groups[-1])
        length = x.shape[-1]
        m = torch.full((x.shape[0], 1, length), 1.0 / length, dtype=x.dtype, device=x.device)
        if a.global_context:
            mean, std = self._stats(torch, x, m)
            attn = torch.cat([x, mean.unsqueeze(2).repeat(1, 1, length), std.unsqueeze(2).repeat(1, 1, length)], 1)
        else:
            attn = x
        attn = self._conv(torch.tanh(self._tdnn(attn, "asp.tdnn")), "asp.conv.conv")
        attn = self.F.softmax(attn, dim=2)
        mean, std = self._stats(torch, x, attn)
        pooled = self._bn(torch.cat((mean, std), dim=1).unsqueeze(2), "asp_bn.norm")
        return self._conv(pooled, "fc.conv").squeeze(2)
