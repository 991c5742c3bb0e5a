#!/usr/bin/env python3
"""HF `transformers` on the CPU (torch, 2 threads, eager attention, float32,
random weights) on the shapes `vkformer-bench model` times: BERT-base at 128
tokens, batch 1; MiniLM-L6 at batch 32 of 8 to 64 tokens padded to the longest
(the same lengths as the benchmark); GPT-2 124M (config gpt2): prefill of 128
tokens, and decode tokens/s with the KV cache (past_key_values, one token a
step, greedy) from contexts 128 and 991, as `vkformer-bench model --config
gpt2` measures them; CLIP ViT-B/32 (random weights): the image tower at batch 1
and 8, the text tower on 100 labels of 9 to 12 tokens padded to 16 (as
`vkformer-bench model --config clip-b32`). Median of 5 runs after a warm-up.

Usage: tools/.venv/bin/pip install torch transformers
       tools/.venv/bin/python tools/bench_hf_model.py
"""
import statistics
import time

import torch
from transformers import BertConfig, BertModel, CLIPConfig, CLIPModel, GPT2Config, GPT2LMHeadModel

torch.set_num_threads(2)


def bench(cfg, batch, lens, runs=5):
    model = BertModel(BertConfig(**cfg, attn_implementation="eager")).eval()
    seq = max(lens)
    ids = torch.randint(1000, cfg.get("vocab_size", 30522), (batch, seq))
    mask = torch.zeros(batch, seq, dtype=torch.long)
    for i, n in enumerate(lens):
        mask[i, :n] = 1
    times = []
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask)
        for _ in range(runs):
            t0 = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_gpt2(prompt=128, far=991, steps=32, runs=5):
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(attn_implementation="eager")).eval()
    ids = torch.tensor([[(i * 7919 + 1000) % 50256 for i in range(1024)]])
    with torch.inference_mode():
        model(ids[:, :prompt])
        pre = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model(ids[:, :prompt])
            pre.append(time.perf_counter() - t0)
        out = {"prefill": statistics.median(pre)}
        for n in (prompt, far):
            o = model(ids[:, :n], use_cache=True)
            past, tok = o.past_key_values, o.logits[:, -1:].argmax(-1)
            t0 = time.perf_counter()
            for _ in range(steps):
                o = model(tok, past_key_values=past, use_cache=True)
                past, tok = o.past_key_values, o.logits[:, -1:].argmax(-1)
            out[n] = steps / (time.perf_counter() - t0)
    return out


def bench_clip(runs=5):
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(vision_config=dict(patch_size=32), attn_implementation="eager")).eval()
    out = {}

    def median(fn, n):
        fn()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    with torch.inference_mode():
        for b in (1, 8):
            px = torch.randn(b, 3, 224, 224)
            out[b] = median(lambda: model.get_image_features(pixel_values=px), runs)
        ids = torch.randint(1000, 49000, (100, 16))
        mask = torch.zeros(100, 16, dtype=torch.long)
        for i in range(100):
            mask[i, :9 + i % 4] = 1
            ids[i, 8 + i % 4] = 49407
        out["text"] = median(lambda: model.get_text_features(input_ids=ids, attention_mask=mask), max(1, runs // 2))
    return out


def main():
    base = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    minilm = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    t = bench(base, 1, [128])
    print(f"bert-base, batch 1, 128 tokens: {t * 1e3:.1f} ms")
    lens = [8 + (i * 2654435761) % (2**32) % 57 for i in range(32)]
    t = bench(minilm, 32, lens)
    print(f"minilm-l6, batch 32, {min(lens)}..{max(lens)} tokens padded to {max(lens)}: {t * 1e3:.1f} ms, {32 / t:.1f} sentences/s")
    c = bench_clip()
    print(f"clip-b32, image tower: batch 1 {c[1] * 1e3:.1f} ms, batch 8 {c[8] * 1e3:.1f} ms; text tower, 100 labels: {c['text'] * 1e3:.1f} ms")
    g = bench_gpt2()
    print(f"gpt2, prefill 128 tokens: {g['prefill'] * 1e3:.1f} ms ({128 / g['prefill']:.1f} tokens/s); "
          f"decode from context 128: {g[128]:.2f} tokens/s, from context 991: {g[991]:.2f} tokens/s")


if __name__ == "__main__":
    main()
