"""Tiny, randomly initialised Hugging Face audio models of the real architectures, written with ``save_pretrained``.

Each builder writes a model directory (weights, ``config.json``, ``preprocessor_config.json`` and, for CLAP, a
tokenizer) that audiovec then loads by path with ``local_files_only=True``: the same loading and inference code as
for the real checkpoints, with hidden sizes of 16-32 so that a 10-minute input embeds in seconds. The weights are
random (seeded), so these models test the plumbing (windowing, batching, masks, layers, determinism), not meaning.

Context lengths are shortened the way the real configs allow (Whisper ``max_source_positions`` with a matching
``chunk_length``, AST ``max_length``, CLAP ``max_length_s``) to keep the conformance kit fast.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers as tf

TINY_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)


def _save(model: torch.nn.Module, path: Path, *extras: object) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    for extra in extras:
        extra.save_pretrained(path)
    return path


def wav2vec2_config(norm: str = "group", **overrides: object) -> tf.Wav2Vec2Config:
    """A 2-layer, 32-d Wav2Vec2 with the real CNN strides (320 samples per token, 325-sample receptive field)."""
    params: dict[str, object] = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(16, 16, 16, 24),
        conv_stride=(5, 4, 4, 4),
        conv_kernel=(10, 4, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer",
        vocab_size=8,
    )
    params.update(overrides)
    return tf.Wav2Vec2Config(**params)


def build_wav2vec2(path: Path, norm: str = "group", seed: int = 0) -> Path:
    """Tiny Wav2Vec2: ``norm="group"`` like wav2vec2-base (no attention mask), ``"layer"`` like large-lv60."""
    torch.manual_seed(seed)
    model = tf.Wav2Vec2Model(wav2vec2_config(norm))
    fe = tf.Wav2Vec2FeatureExtractor(return_attention_mask=norm == "layer", do_normalize=True)
    return _save(model, path, fe)


def build_hubert(path: Path, seed: int = 1) -> Path:
    """Tiny HuBERT (group-norm CNN, like hubert-base-ls960)."""
    torch.manual_seed(seed)
    base = wav2vec2_config("group").to_dict()
    keep = {k: base[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")}
    cfg = tf.HubertConfig(
        **keep,
        conv_dim=(16, 16, 16, 24),
        conv_stride=(5, 4, 4, 4),
        conv_kernel=(10, 4, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="group",
        vocab_size=8,
    )
    return _save(tf.HubertModel(cfg), path, tf.Wav2Vec2FeatureExtractor(return_attention_mask=False))


def build_wavlm(path: Path, seed: int = 2) -> Path:
    """Tiny WavLM (group-norm CNN, relative position buckets), loaded only through the generic ``hf`` embedder."""
    torch.manual_seed(seed)
    cfg = tf.WavLMConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(16, 16, 16, 24),
        conv_stride=(5, 4, 4, 4),
        conv_kernel=(10, 4, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        num_buckets=32,
        max_bucket_distance=100,
        vocab_size=8,
    )
    return _save(tf.WavLMModel(cfg), path, tf.Wav2Vec2FeatureExtractor(return_attention_mask=False))


def build_whisper(path: Path, seconds: int = 2, seed: int = 3) -> Path:
    """Tiny Whisper whose encoder reads ``seconds`` of audio (50 tokens per second, like every Whisper)."""
    torch.manual_seed(seed)
    cfg = tf.WhisperConfig(
        vocab_size=64,
        num_mel_bins=20,
        encoder_layers=2,
        encoder_attention_heads=2,
        decoder_layers=1,
        decoder_attention_heads=2,
        d_model=32,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        max_source_positions=50 * seconds,
        max_target_positions=16,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=3,
        decoder_start_token_id=2,
    )
    fe = tf.WhisperFeatureExtractor(feature_size=20, chunk_length=seconds)
    return _save(tf.WhisperModel(cfg), path, fe)


def build_ast(path: Path, max_length: int = 100, seed: int = 4) -> Path:
    """Tiny AST reading ``max_length`` fbank frames (10 ms each) of 32 mel bands."""
    torch.manual_seed(seed)
    cfg = tf.ASTConfig(
        **TINY_TEXT,
        patch_size=16,
        num_mel_bins=32,
        max_length=max_length,
        frequency_stride=10,
        time_stride=10,
    )
    fe = tf.ASTFeatureExtractor(num_mel_bins=32, max_length=max_length)
    return _save(tf.ASTModel(cfg), path, fe)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map, used by byte-level BPE (RoBERTa, CLAP)."""
    keep = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, (chr(c) for c in chars), strict=True))


def tiny_roberta_tokenizer() -> tf.RobertaTokenizer:
    """A byte-level BPE tokenizer over the 256 byte symbols plus a few merges, built offline."""
    byte_symbols = list(_bytes_to_unicode().values())
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4}
    for sym in byte_symbols:
        vocab.setdefault(sym, len(vocab))
    merges = [("Ġ", "a"), ("Ġ", "d"), ("o", "g"), ("Ġd", "og"), ("Ġ", "c"), ("a", "t"), ("Ġc", "at")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return tf.RobertaTokenizer(vocab=vocab, merges=merges)


def build_clap(path: Path, fusion: bool = False, seconds: int = 1, seed: int = 5) -> Path:
    """Tiny CLAP (HTSAT audio tower + RoBERTa text tower, 16-d shared space) reading ``seconds`` at 48 kHz."""
    torch.manual_seed(seed)
    tok = tiny_roberta_tokenizer()
    text = dict(TINY_TEXT, vocab_size=len(tok), max_position_embeddings=40, projection_dim=16)
    audio = dict(
        spec_size=64,
        num_mel_bins=16,
        patch_size=4,
        patch_stride=(4, 4),
        window_size=4,
        depths=[1, 1],
        num_attention_heads=[2, 2],
        patch_embeds_hidden_size=8,
        hidden_size=16,
        projection_dim=16,
        enable_fusion=fusion,
    )
    cfg = tf.ClapConfig(text_config=text, audio_config=audio, projection_dim=16)
    fe = tf.ClapFeatureExtractor(
        feature_size=16,
        max_length_s=seconds,
        truncation="fusion" if fusion else "rand_trunc",
        padding="repeatpad",
        frequency_min=50,
    )
    return _save(tf.ClapModel(cfg), path, fe, tok)
