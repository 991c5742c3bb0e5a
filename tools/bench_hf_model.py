#!/usr/bin/env python3
"""HF `transformers` (torch, eager attention, random weights) on the shapes
`vkformer-bench model` times, so every vkformer figure has torch's beside it:

  vit-b16   ViT-B/16 at 224, batches 1 and 8          (--config base)
  bert-base BERT-base at 128 tokens, batch 1          (--config bert-base)
  minilm-l6 MiniLM-L6 at batch 32 of 8 to 64 tokens padded to the longest (the
            benchmark's lengths)                      (--config minilm-l6)
  mpnet-base all-mpnet-base-v2's MPNet at 128 tokens, batch 1 (--config mpnet-base)
  deberta-v3-base DeBERTa-v3-base at 128 tokens, batch 1 (--config deberta-v3-base)
  clip-b32  CLIP ViT-B/32: the image tower at batch 1 and 8, the text tower on
            100 labels of 9 to 12 tokens padded to 16 (--config clip-b32)
  gpt2      GPT-2 124M: prefill of 128 tokens, and decode tokens/s with the KV
            cache (past_key_values, one token a step, greedy) from contexts 128
            and 991                                   (--config gpt2)
  bart-base BART-base and opus-mt (Marian en-de's shape): the encoder over 32
  opus-mt   tokens with the first decoder step, then greedy decode tokens/s
  t5-small  with the self- and cross-attention caches (--config bart-base,
            --config opus-mt, --config t5-small)
  wav2vec2-base Wav2Vec2ForCTC base (facebook/wav2vec2-base-960h's shape): one
            clip of 10 s and one of 60 s at 16 kHz, the real-time factor
            (--config wav2vec2-base)

Median of --runs after a warm-up. On the CPU (the default: 2 threads, float32)
as the README's lavapipe tables compare; with --device cuda on a GPU (CUDA
events, synchronised), --dtype fp16 and --compile (torch.compile) for the
fastest torch. --json prints one object with every figure (what
scripts/device-run.sh puts in its report).

Usage: tools/.venv/bin/pip install torch transformers
       tools/.venv/bin/python tools/bench_hf_model.py [--device cuda] [--dtype fp16] [--compile] [--json]
"""
import argparse
import json
import statistics
import sys
import time

import torch
from transformers import (BartConfig, BartForConditionalGeneration, BertConfig, BertModel, CLIPConfig, CLIPModel, DebertaV2Config,
                          DebertaV2Model, GPT2Config, GPT2LMHeadModel, MarianConfig, MarianMTModel, MPNetConfig, MPNetModel,
                          T5Config, T5ForConditionalGeneration, ViTConfig, ViTModel, Wav2Vec2Config, Wav2Vec2ForCTC)


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn, runs):
        fn()
        if self.cuda:
            torch.cuda.synchronize()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            if self.cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)


def prepare(model, args):
    model = model.eval().to(device=args.device, dtype=args.torch_dtype)
    return torch.compile(model) if args.compile else model


def bench_vit(args, timer):
    model = prepare(ViTModel(ViTConfig(attn_implementation="eager"), add_pooling_layer=False), args)
    out = {}
    with torch.inference_mode():
        for b in (1, 8):
            px = torch.randn(b, 3, 224, 224, device=args.device, dtype=args.torch_dtype)
            out[f"batch{b}_ms"] = timer(lambda: model(pixel_values=px), args.runs) * 1e3
    return out


def bench_encoder(args, timer, cfg, batch, lens, model=None):
    model = prepare(model or BertModel(BertConfig(**cfg, attn_implementation="eager")), args)
    seq = max(lens)
    ids = torch.randint(1000, cfg.get("vocab_size", 30522), (batch, seq), device=args.device)
    mask = torch.zeros(batch, seq, dtype=torch.long, device=args.device)
    for i, n in enumerate(lens):
        mask[i, :n] = 1
    with torch.inference_mode():
        return timer(lambda: model(input_ids=ids, attention_mask=mask), args.runs)


def bench_wav2vec2(args, timer):
    """Wav2Vec2ForCTC base (group norm, post-LN, 32 outputs) on one clip per length, the lengths vkformer-bench takes."""
    cfg = Wav2Vec2Config(vocab_size=32, feat_extract_norm="group", conv_bias=False, do_stable_layer_norm=False,
                         attn_implementation="eager")
    model = prepare(Wav2Vec2ForCTC(cfg), args)
    out = {}
    with torch.inference_mode():
        for sec in (10, 60):
            i = torch.arange(sec * 16000, dtype=torch.float64)
            x = (0.5 * torch.sin(i * 0.0863) + 0.3 * torch.sin(i * 0.2117 + 0.001 * i)).to(args.torch_dtype)[None].to(args.device)
            t = timer(lambda: model(x), max(1, args.runs * 10 // sec))
            out[f"clip{sec}s_ms"] = t * 1e3
            out[f"clip{sec}s_rtf"] = t / sec
    return out


def bench_gpt2(args, timer, prompt=128, far=991, steps=32):
    model = prepare(GPT2LMHeadModel(GPT2Config(attn_implementation="eager")), args)
    ids = torch.tensor([[(i * 7919 + 1000) % 50256 for i in range(1024)]], device=args.device)
    with torch.inference_mode():
        out = {"prefill_ms": timer(lambda: model(ids[:, :prompt]), args.runs) * 1e3}
        for n in (prompt, far):
            o = model(ids[:, :n], use_cache=True)
            past, tok = o.past_key_values, o.logits[:, -1:].argmax(-1)
            if timer.cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                o = model(tok, past_key_values=past, use_cache=True)
                past, tok = o.past_key_values, o.logits[:, -1:].argmax(-1)
            if timer.cuda:
                torch.cuda.synchronize()
            out[f"decode{n}_tokens_per_s"] = steps / (time.perf_counter() - t0)
    out["prefill_tokens_per_s"] = prompt / (out["prefill_ms"] * 1e-3)
    return out


def bench_encdec(args, timer, model, prompt=32, steps=32):
    """The encoder and the first decoder step (what vkformer-bench's "encode" row times), then greedy decode steps."""
    model = prepare(model, args)
    cfg = model.config
    ids = torch.tensor([[(i * 7919 + 1000) % (cfg.vocab_size - 1) for i in range(prompt)]], device=args.device)
    start_id = getattr(cfg, "decoder_start_token_id", None)
    start = torch.tensor([[start_id if start_id is not None else cfg.pad_token_id]], device=args.device)
    with torch.inference_mode():
        out = {"encode_ms": timer(lambda: model(input_ids=ids, decoder_input_ids=start), args.runs) * 1e3}
        o = model(input_ids=ids, decoder_input_ids=start, use_cache=True)
        enc, past, tok = o.encoder_last_hidden_state, o.past_key_values, o.logits[:, -1:].argmax(-1)
        if timer.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            o = model(encoder_outputs=(enc,), decoder_input_ids=tok, past_key_values=past, use_cache=True)
            past, tok = o.past_key_values, o.logits[:, -1:].argmax(-1)
        if timer.cuda:
            torch.cuda.synchronize()
        out["decode_tokens_per_s"] = steps / (time.perf_counter() - t0)
    return out


def bench_clip(args, timer):
    model = prepare(CLIPModel(CLIPConfig(vision_config=dict(patch_size=32), attn_implementation="eager")), args)
    out = {}
    with torch.inference_mode():
        for b in (1, 8):
            px = torch.randn(b, 3, 224, 224, device=args.device, dtype=args.torch_dtype)
            out[f"image_batch{b}_ms"] = timer(lambda: model.get_image_features(pixel_values=px), args.runs) * 1e3
        ids = torch.randint(1000, 49000, (100, 16), device=args.device)
        mask = torch.zeros(100, 16, dtype=torch.long, device=args.device)
        for i in range(100):
            mask[i, :9 + i % 4] = 1
            ids[i, 8 + i % 4] = 49407
        out["text_100_labels_ms"] = timer(lambda: model.get_text_features(input_ids=ids, attention_mask=mask),
                                          max(1, args.runs // 2)) * 1e3
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "fp16"])
    ap.add_argument("--compile", action="store_true", help="torch.compile the models")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (default 2, this project's machines)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="vit-b16,bert-base,minilm-l6,mpnet-base,deberta-v3-base,clip-b32,gpt2,bart-base,opus-mt,t5-small,"
                    "wav2vec2-base",
                    help="comma-separated models")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.device = torch.device(args.device)
    args.torch_dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    if args.device.type == "cpu":
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    timer = Timer(args.device)
    want = set(args.only.split(","))
    res = {"device": torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else "cpu",
           "dtype": args.dtype, "compile": args.compile, "torch": torch.__version__}
    if "vit-b16" in want:
        res["vit-b16"] = bench_vit(args, timer)
    if "bert-base" in want:
        base = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
        res["bert-base"] = {"batch1_128_ms": bench_encoder(args, timer, base, 1, [128]) * 1e3}
    if "minilm-l6" in want:
        minilm = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
        lens = [8 + (i * 2654435761) % (2**32) % 57 for i in range(32)]
        t = bench_encoder(args, timer, minilm, 32, lens)
        res["minilm-l6"] = {"batch32_mixed_ms": t * 1e3, "sentences_per_s": 32 / t}
    if "mpnet-base" in want:
        m = MPNetModel(MPNetConfig(attn_implementation="eager"), add_pooling_layer=False)
        res["mpnet-base"] = {"batch1_128_ms": bench_encoder(args, timer, {"vocab_size": 30527}, 1, [128], m) * 1e3}
    if "deberta-v3-base" in want:
        cfg = DebertaV2Config(vocab_size=128100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                              intermediate_size=3072, relative_attention=True, position_buckets=256, max_relative_positions=-1,
                              norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"],
                              position_biased_input=False, type_vocab_size=0, attn_implementation="eager")
        res["deberta-v3-base"] = {"batch1_128_ms": bench_encoder(args, timer, {"vocab_size": 128100}, 1, [128], DebertaV2Model(cfg)) * 1e3}
    if "clip-b32" in want:
        res["clip-b32"] = bench_clip(args, timer)
    if "bart-base" in want:
        cfg = BartConfig(d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12, decoder_attention_heads=12,
                         encoder_ffn_dim=3072, decoder_ffn_dim=3072, attn_implementation="eager")
        res["bart-base"] = bench_encdec(args, timer, BartForConditionalGeneration(cfg))
    if "opus-mt" in want:
        cfg = MarianConfig(vocab_size=58101, decoder_vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6,
                           encoder_attention_heads=8, decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
                           max_position_embeddings=512, pad_token_id=58100, decoder_start_token_id=58100, eos_token_id=0,
                           scale_embedding=True, activation_function="swish", attn_implementation="eager")
        res["opus-mt"] = bench_encdec(args, timer, MarianMTModel(cfg))
    if "t5-small" in want:
        cfg = T5Config(d_model=512, d_ff=2048, num_layers=6, num_heads=8, feed_forward_proj="relu", attn_implementation="eager")
        res["t5-small"] = bench_encdec(args, timer, T5ForConditionalGeneration(cfg))
    if "gpt2" in want:
        res["gpt2"] = bench_gpt2(args, timer)
    if "wav2vec2-base" in want:
        res["wav2vec2-base"] = bench_wav2vec2(args, timer)
    if args.json:
        json.dump(res, sys.stdout, indent=1)
        print()
        return
    print(f"torch {res['torch']} on {res['device']}, {args.dtype}{', torch.compile' if args.compile else ''}")
    if "vit-b16" in res:
        v = res["vit-b16"]
        print(f"vit-b16: batch 1 {v['batch1_ms']:.2f} ms, batch 8 {v['batch8_ms']:.2f} ms")
    for k in ("mpnet-base", "deberta-v3-base"):
        if k in res:
            print(f"{k}, batch 1, 128 tokens: {res[k]['batch1_128_ms']:.1f} ms")
    if "bert-base" in res:
        print(f"bert-base, batch 1, 128 tokens: {res['bert-base']['batch1_128_ms']:.1f} ms")
    if "minilm-l6" in res:
        m = res["minilm-l6"]
        print(f"minilm-l6, batch 32, 8..64 tokens padded to the longest: {m['batch32_mixed_ms']:.1f} ms, {m['sentences_per_s']:.1f} sentences/s")
    if "clip-b32" in res:
        c = res["clip-b32"]
        print(f"clip-b32, image tower: batch 1 {c['image_batch1_ms']:.1f} ms, batch 8 {c['image_batch8_ms']:.1f} ms; "
              f"text tower, 100 labels: {c['text_100_labels_ms']:.1f} ms")
    if "wav2vec2-base" in res:
        w = res["wav2vec2-base"]
        print(f"wav2vec2-base, one clip: 10 s {w['clip10s_ms']:.1f} ms (RTF {w['clip10s_rtf']:.4f}), "
              f"60 s {w['clip60s_ms']:.1f} ms (RTF {w['clip60s_rtf']:.4f})")
    if "gpt2" in res:
        g = res["gpt2"]
        print(f"gpt2, prefill 128 tokens: {g['prefill_ms']:.1f} ms ({g['prefill_tokens_per_s']:.1f} tokens/s); "
              f"decode from context 128: {g['decode128_tokens_per_s']:.2f} tokens/s, from context 991: {g['decode991_tokens_per_s']:.2f} tokens/s")


if __name__ == "__main__":
    main()
