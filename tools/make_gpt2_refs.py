#!/usr/bin/env python3
"""Reference cases for tests/test_gpt2.c, made with HF `transformers` (torch,
eager attention, float32): small random GPT-2s in the checkpoint layouts and
shapes the loader must accept, each prompt generated greedily by HF with the
raw logits of every step.

Writes tests/data/gpt2/<case>/: config.json, model.safetensors (plus the
tokenizer for `text`), case.json (prompts, new tokens, HF's greedy ids and
texts) and step_logits.bin (float32 LE [prompts, new_tokens, vocab]) and
logits.bin (the forward pass over prompt 0: [1, len, vocab]). Cases:
  original  the original gpt2 files' layout: no "transformer." prefix, with
            the attn.bias / attn.masked_bias buffers; n_embd 60 (5 heads of
            12), vocab 301, scale_attn_by_inverse_layer_idx
  distil    distilgpt2-shaped (6 layers) with n_inner 200 and an explicit,
            untied lm_head.weight
  batch     two prompts of 7 and 3 tokens (generated together by vkformer,
            one at a time by HF), and a third case prompt near n_positions
  text      the real GPT-2 tokenizer (a link to tests/data/tokenizers/gpt2)
            over a tiny model (n_embd 8): prompts as text, HF's generated
            text (skip_special_tokens); ids only, no logits files
Each generates with eos_token_id None in HF (the tests pass ignore_eos).

Usage: python3 -m venv tools/.venv && tools/.venv/bin/pip install torch transformers safetensors
       tools/.venv/bin/python tools/make_gpt2_refs.py
"""
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "gpt2")


def perturb(model, seed):
    """Random LayerNorm scales/biases and attention/MLP biases (HF inits them constant)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "ln_" in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


def generate(model, ids, new):
    out = model.generate(torch.tensor([ids]), max_new_tokens=new, do_sample=False, eos_token_id=None, pad_token_id=0,
                         output_logits=True, return_dict_in_generate=True)
    gen = out.sequences[0, len(ids):].tolist()
    logits = torch.stack(out.logits, 1)[0].float().numpy()  # [new, vocab]
    return gen, logits


def write_case(name, model, prompts, new, state_dict=None, extra=None, logits=True):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    model.config.save_pretrained(d)
    sd = state_dict if state_dict is not None else {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    greedy, steps = [], []
    for p in prompts:
        gen, lg = generate(model, p, new)
        greedy.append(gen)
        steps.append(lg)
    if logits:
        np.stack(steps).astype("<f4").tofile(os.path.join(d, "step_logits.bin"))
        with torch.no_grad():
            fwd = model(torch.tensor([prompts[0]])).logits.float().numpy()
        fwd.astype("<f4").tofile(os.path.join(d, "logits.bin"))
    case = {"prompts": prompts, "new_tokens": new, "greedy_ids": greedy, "vocab": model.config.vocab_size,
            "n_positions": model.config.n_positions, "transformers": __import__("transformers").__version__}
    case.update(extra or {})
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    print(name, [len(p) for p in prompts], "->", [g[:6] for g in greedy])
    return d


def make(cfg, seed):
    torch.manual_seed(seed)
    m = GPT2LMHeadModel(cfg).eval()
    perturb(m, seed)
    return m


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)

    # original layout: no prefix, attention buffers present
    cfg = GPT2Config(vocab_size=301, n_positions=40, n_embd=60, n_layer=3, n_head=5, initializer_range=0.1,
                     scale_attn_by_inverse_layer_idx=True, bos_token_id=300, eos_token_id=300)
    m = make(cfg, 11)
    sd = {}
    for k, v in m.state_dict().items():
        if k == "lm_head.weight":
            continue  # tied: the original files store wte only
        sd[k.removeprefix("transformer.")] = v.contiguous()
    for l in range(cfg.n_layer):
        P = cfg.n_positions
        sd[f"h.{l}.attn.bias"] = torch.tril(torch.ones(P, P, dtype=torch.uint8)).view(1, 1, P, P).float()
        sd[f"h.{l}.attn.masked_bias"] = torch.tensor(-1e4)
    write_case("original", m, [rng.integers(0, 300, 9).tolist()], 12, state_dict=sd)

    # distilgpt2-shaped, untied head stored explicitly
    cfg = GPT2Config(vocab_size=257, n_positions=48, n_embd=64, n_layer=6, n_head=4, n_inner=200, initializer_range=0.1,
                     tie_word_embeddings=False, bos_token_id=256, eos_token_id=256)
    m = make(cfg, 12)
    sd = {k: v.contiguous() for k, v in m.state_dict().items()}
    assert "lm_head.weight" in sd and not torch.equal(sd["lm_head.weight"], sd["transformer.wte.weight"])
    write_case("distil", m, [rng.integers(0, 256, 6).tolist()], 10, state_dict=sd)

    # a batch of two prompts of different lengths, and one near the context
    cfg = GPT2Config(vocab_size=200, n_positions=24, n_embd=32, n_layer=2, n_head=2, initializer_range=0.1,
                     bos_token_id=199, eos_token_id=199)
    m = make(cfg, 13)
    sd = {k: v.contiguous() for k, v in m.state_dict().items() if k != "lm_head.weight"}
    write_case("batch", m, [rng.integers(0, 199, 7).tolist(), rng.integers(0, 199, 3).tolist()], 8, state_dict=sd)
    write_case("near_context", m, [rng.integers(0, 199, 20).tolist()], 4, state_dict=sd)

    # the real tokenizer over a tiny model
    tok = GPT2TokenizerFast.from_pretrained(os.path.join(ROOT, "tests", "data", "tokenizers", "gpt2"))
    cfg = GPT2Config(vocab_size=50257, n_positions=32, n_embd=8, n_layer=1, n_head=2, initializer_range=0.5)
    m = make(cfg, 14)
    texts = ["Hello, my dog is cute and", "The café", ""]
    prompts = [tok(t)["input_ids"] or [cfg.bos_token_id] for t in texts]
    sd = {k: v.contiguous() for k, v in m.state_dict().items() if k != "lm_head.weight"}
    d = write_case("text", m, prompts, 10, state_dict=sd, extra={"texts": texts}, logits=False)
    case = json.load(open(os.path.join(d, "case.json")))
    case["generated_texts"] = [tok.decode(g, skip_special_tokens=True) for g in case["greedy_ids"]]
    json.dump(case, open(os.path.join(d, "case.json"), "w"), indent=1)
    # the tokenizer the tests already have, linked rather than copied
    os.symlink(os.path.join("..", "..", "tokenizers", "gpt2", "tokenizer.json"), os.path.join(d, "tokenizer.json"))


if __name__ == "__main__":
    main()
