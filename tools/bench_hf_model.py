#!/usr/bin/env python3
"""HF `transformers` on the CPU (torch, 2 threads, eager attention, float32,
random weights) on the shapes `vkformer-bench model` times: BERT-base at 128
tokens, batch 1; MiniLM-L6 at batch 32 of 8 to 64 tokens padded to the longest
(the same lengths as the benchmark). Median of 5 runs after a warm-up.

Usage: tools/.venv/bin/pip install torch transformers
       tools/.venv/bin/python tools/bench_hf_model.py
"""
import statistics
import time

import torch
from transformers import BertConfig, BertModel

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


def main():
    base = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    minilm = dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
    t = bench(base, 1, [128])
    print(f"bert-base, batch 1, 128 tokens: {t * 1e3:.1f} ms")
    lens = [8 + (i * 2654435761) % (2**32) % 57 for i in range(32)]
    t = bench(minilm, 32, lens)
    print(f"minilm-l6, batch 32, {min(lens)}..{max(lens)} tokens padded to {max(lens)}: {t * 1e3:.1f} ms, {32 / t:.1f} sentences/s")


if __name__ == "__main__":
    main()
