#!/usr/bin/env python3
"""Reference cases for tests/test_bert.c, made with HF `transformers` (torch,
eager attention, float32): small random text encoders of odd sizes, saved in
HF layout with the inputs they ran on and the outputs they produced, and the
real all-MiniLM-L6-v2's sentence embeddings.

Writes tests/data/text/<case>/: config.json, model.safetensors, and raw
little-endian input_ids.bin / attention_mask.bin / token_type_ids.bin (int32)
and logits.bin / last_hidden_state.bin / pooler_output.bin (float32), with
case.json giving the shapes. Cases:
  bert_mlm        BertForMaskedLM, hidden 96 (3 heads of 32), 3 texts of 11
                  tokens: right padding, left padding, a mask with holes
  distilbert_mlm  DistilBertForMaskedLM, hidden 72 (3 heads of 24), same masks
  roberta_cls     RobertaForSequenceClassification, hidden 40 (2 heads of 20),
                  right-padded with padding_idx 1 (positions skip padding)
  roberta_mlm     RobertaForMaskedLM, hidden 48, a padded batch (lm_head, tied decoder)
  bert_multilabel BertForSequenceClassification with problem_type
                  multi_label_classification (sigmoid scores)
  bert_one_label  BertForSequenceClassification with one label (a cross-encoder's
                  or STS model's head: the pipelines' sigmoid; the tests turn it
                  into a regression head by its config)
  bert_gamma      the golden BERT re-saved as old checkpoints are: LayerNorm
                  gamma/beta names and an int64 position_ids buffer
  minilm          all-MiniLM-L6-v2 (models/, from scripts/fetch_models.sh):
                  sentence-transformers embeddings (mean pooling, normalised)
                  of a padded batch of sentences of mixed length

Usage: python3 -m venv tools/.venv && tools/.venv/bin/pip install torch transformers safetensors
       bash scripts/fetch_models.sh && tools/.venv/bin/python tools/make_text_refs.py [CASE...]
"""
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import (AutoModel, AutoTokenizer, BertConfig, BertForMaskedLM, BertForSequenceClassification,
                          DistilBertConfig, DistilBertForMaskedLM, RobertaConfig, RobertaForMaskedLM,
                          RobertaForSequenceClassification)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "text")

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "A man is riding a horse.",
    "The new movie is awesome and everyone in the theatre was laughing out loud all the way through it.",
    "Hi",
    "naïve café 🥲",
]


def masks(B, S):
    """Right padding, left padding, holes."""
    m = np.ones((B, S), dtype=np.int64)
    m[0, 8:] = 0
    m[1, :4] = 0
    m[2, [2, 5, 6, 9]] = 0
    return m


def halve(model):
    """Weights rounded to fp16 (run in fp32): the checkpoint can then be saved
    as fp16, half the bytes a clone and a device call carry (write(half=True))."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def write(case, model, inputs, outputs, extra=None, half=False):
    d = os.path.join(OUT, case)
    os.makedirs(d, exist_ok=True)
    (model.half() if half else model).save_pretrained(d, safe_serialization=True)
    meta = {"inputs": {}, "outputs": {}}
    for k, v in inputs.items():
        v.astype(np.int32).tofile(os.path.join(d, k + ".bin"))
        meta["inputs"][k] = list(v.shape)
    for k, v in outputs.items():
        v.astype(np.float32).tofile(os.path.join(d, k + ".bin"))
        meta["outputs"][k] = list(v.shape)
    if extra:
        meta.update(extra)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(meta, f, indent=1)


def perturb(model, seed):
    """Biases and LayerNorm parameters get noise, so ignoring them shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


def run(model, inputs):
    model.eval()
    with torch.no_grad():
        return model(**{k: torch.tensor(v) for k, v in inputs.items()}, output_hidden_states=True)


def bert_mlm():
    torch.manual_seed(11)
    cfg = BertConfig(vocab_size=300, hidden_size=96, num_hidden_layers=2, num_attention_heads=3, intermediate_size=160,
                     max_position_embeddings=40, type_vocab_size=2, initializer_range=0.1, attn_implementation="eager",
                     architectures=["BertForMaskedLM"])
    model = BertForMaskedLM(cfg)
    perturb(model, 1)
    B, S = 3, 11
    rng = np.random.default_rng(5)
    inp = {"input_ids": rng.integers(5, 300, (B, S)), "attention_mask": masks(B, S),
           "token_type_ids": (np.arange(S)[None, :] >= 6).astype(np.int64).repeat(B, 0)}
    o = run(model, inp)
    write("bert_mlm", model, inp, {"logits": o.logits.numpy(), "last_hidden_state": o.hidden_states[-1].numpy()})


def distilbert_mlm():
    torch.manual_seed(12)
    cfg = DistilBertConfig(vocab_size=280, dim=72, n_layers=2, n_heads=3, hidden_dim=130, max_position_embeddings=30,
                           initializer_range=0.1, attn_implementation="eager", architectures=["DistilBertForMaskedLM"])
    model = DistilBertForMaskedLM(cfg)
    perturb(model, 2)
    B, S = 3, 11
    rng = np.random.default_rng(6)
    inp = {"input_ids": rng.integers(5, 280, (B, S)), "attention_mask": masks(B, S)}
    o = run(model, inp)
    write("distilbert_mlm", model, inp, {"logits": o.logits.numpy(), "last_hidden_state": o.hidden_states[-1].numpy()})


def roberta_cls():
    torch.manual_seed(13)
    cfg = RobertaConfig(vocab_size=260, hidden_size=40, num_hidden_layers=2, num_attention_heads=2, intermediate_size=72,
                        max_position_embeddings=34, type_vocab_size=1, pad_token_id=1, initializer_range=0.1,
                        num_labels=4, attn_implementation="eager", architectures=["RobertaForSequenceClassification"])
    model = RobertaForSequenceClassification(cfg)
    perturb(model, 3)
    B, S = 3, 13
    rng = np.random.default_rng(7)
    ids = rng.integers(3, 260, (B, S))
    lens = [13, 9, 5]
    mask = np.zeros((B, S), dtype=np.int64)
    for b, n in enumerate(lens):
        ids[b, 0], ids[b, n - 1] = 0, 2  # <s> ... </s>
        ids[b, n:] = 1                  # padding_idx
        mask[b, :n] = 1
    inp = {"input_ids": ids, "attention_mask": mask}
    o = run(model, inp)
    write("roberta_cls", model, inp, {"logits": o.logits.numpy(), "last_hidden_state": o.hidden_states[-1].numpy()})


def roberta_mlm():
    torch.manual_seed(14)
    cfg = RobertaConfig(vocab_size=250, hidden_size=48, num_hidden_layers=2, num_attention_heads=4, intermediate_size=80,
                        max_position_embeddings=30, type_vocab_size=1, pad_token_id=1, initializer_range=0.1,
                        attn_implementation="eager", architectures=["RobertaForMaskedLM"])
    model = RobertaForMaskedLM(cfg)
    perturb(model, 4)
    B, S = 2, 9
    rng = np.random.default_rng(8)
    ids = rng.integers(3, 250, (B, S))
    ids[1, 6:] = 1
    mask = (ids != 1).astype(np.int64)
    inp = {"input_ids": ids, "attention_mask": mask}
    o = run(model, inp)
    write("roberta_mlm", model, inp, {"logits": o.logits.numpy(), "last_hidden_state": o.hidden_states[-1].numpy()})


def bert_multilabel():
    torch.manual_seed(15)
    cfg = BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=40,
                     max_position_embeddings=24, num_labels=5, problem_type="multi_label_classification",
                     initializer_range=0.3, attn_implementation="eager", architectures=["BertForSequenceClassification"])
    model = BertForSequenceClassification(cfg)
    perturb(model, 5)
    rng = np.random.default_rng(9)
    inp = {"input_ids": rng.integers(5, 300, (1, 7))}
    o = run(model, inp)
    write("bert_multilabel", model, inp, {"logits": o.logits.numpy()})


def bert_one_label():
    torch.manual_seed(16)
    cfg = BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=40,
                     max_position_embeddings=24, num_labels=1, initializer_range=0.3, attn_implementation="eager",
                     architectures=["BertForSequenceClassification"])
    model = BertForSequenceClassification(cfg)
    perturb(model, 6)
    rng = np.random.default_rng(10)
    inp = {"input_ids": rng.integers(5, 300, (2, 6))}
    o = run(model, inp)
    write("bert_one_label", model, inp, {"logits": o.logits.numpy()})


def bert_gamma():
    src = os.path.join(ROOT, "tests", "data", "golden", "bert")
    d = os.path.join(OUT, "bert_gamma")
    os.makedirs(d, exist_ok=True)
    t = load_file(os.path.join(src, "model.safetensors"))
    old = {}
    for k, v in t.items():
        if "LayerNorm.weight" in k:
            k = k.replace("LayerNorm.weight", "LayerNorm.gamma")
        elif "LayerNorm.bias" in k:
            k = k.replace("LayerNorm.bias", "LayerNorm.beta")
        old[k] = v
    old["bert.embeddings.position_ids"] = torch.arange(64, dtype=torch.int64)[None, :]
    save_file(old, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(os.path.join(src, "config.json"), d)


def minilm():
    d = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModel.from_pretrained(d, attn_implementation="eager")
    model.eval()
    enc = tok(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    e = torch.nn.functional.normalize(e, p=2, dim=1).numpy()
    out = os.path.join(OUT, "minilm")
    os.makedirs(out, exist_ok=True)
    e.astype(np.float32).tofile(os.path.join(out, "embeddings.bin"))
    with open(os.path.join(out, "case.json"), "w") as f:
        json.dump({"sentences": SENTENCES, "dim": int(e.shape[1]),
                   "cos_food_bread": float(e[0] @ e[1]), "cos_food_horse": float(e[0] @ e[2])}, f, indent=1, ensure_ascii=False)
    print(f"minilm: cos(food, bread) = {e[0] @ e[1]:.4f}, cos(food, horse) = {e[0] @ e[2]:.4f}")


if __name__ == "__main__":
    import sys
    os.makedirs(OUT, exist_ok=True)
    cases = [bert_mlm, distilbert_mlm, roberta_cls, roberta_mlm, bert_multilabel, bert_one_label, bert_gamma, minilm]
    for c in cases:
        if len(sys.argv) == 1 or c.__name__ in sys.argv[1:]:
            c()
