#!/usr/bin/env python3
"""Reference cases for the encoders of issue 25 (tests/test_bert.c), made with
HF `transformers` (torch, eager attention, float32) like tools/make_text_refs.py
and written in its layout (tests/data/text/<case>/: config.json,
model.safetensors, raw int32 inputs and float32 outputs, case.json). Random
checkpoints of odd sizes, padded batches, heads of 12 and 24:
  mpnet_mlm        MPNetForMaskedLM, hidden 48 (12 heads of 4), 40 tokens (the
                   relative buckets' log range), right padding
  mpnet_cls        MPNetForSequenceClassification, hidden 96 (24 heads of 4)
  xlmr_cls         XLMRobertaForSequenceClassification (RoBERTa's graph)
  electra_cls      ElectraForSequenceClassification, embedding_size 20 < hidden 36
  electra_disc     ElectraForPreTraining (per-token discriminator logits)
  electra_gen      ElectraForMaskedLM (generator head at embedding_size, tied)
  deberta_cls      DeBERTa v1 DebertaForSequenceClassification: in_proj with
                   q_bias / v_bias, c2p|p2c, absolute positions too
  deberta_mlm      DeBERTa v1 DebertaForMaskedLM (legacy head), p2c|c2p order
  debertav2_mlm    DeBERTa-v2/v3 style: log position buckets, share_att_key,
                   norm_rel_ebd layer_norm, no absolute positions, 12 heads
  debertav2_conv   DeBERTa-v2 with the convolution layer of deberta-v2-xlarge
                   (kernel 3, conv_act gelu), the base model
  debertav2_cls    DeBERTa-v2 without buckets or shared keys (pos_key_proj /
                   pos_query_proj), c2p only, an embedding projection, 24 heads
The DeBERTa cases set compare_real_tokens: HF masks padded queries' rows
entirely (their outputs are those of a uniform attention over every key and of
zeroed embeddings), vkformer only their keys; only real tokens are compared.

Checkpoints are saved in fp16 (weights rounded to fp16 before HF runs them
in fp32): half the bytes, the same comparison.

Usage: tools/.venv/bin/python tools/make_encoder_refs.py [CASE...]
"""
import os
import sys

import numpy as np
import torch
from transformers import (DebertaConfig, DebertaForMaskedLM, DebertaForSequenceClassification, DebertaV2Config,
                          DebertaV2ForMaskedLM, DebertaV2ForSequenceClassification, DebertaV2Model, ElectraConfig,
                          ElectraForMaskedLM, ElectraForPreTraining, ElectraForSequenceClassification, MPNetConfig,
                          MPNetForMaskedLM, MPNetForSequenceClassification, XLMRobertaConfig,
                          XLMRobertaForSequenceClassification)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_text_refs import halve, perturb, run  # noqa: E402
from make_text_refs import write as write_fp32  # noqa: E402


def write(case, model, inputs, outputs, extra=None):
    """Every case's checkpoint in fp16 (its weights rounded before HF ran)."""
    write_fp32(case, model, inputs, outputs, extra, half=True)


def padded(rng, B, S, lens, vocab, pad, bos=0, eos=2):
    ids = rng.integers(3, vocab, (B, S))
    mask = np.zeros((B, S), dtype=np.int64)
    for b, n in enumerate(lens):
        ids[b, 0], ids[b, n - 1] = bos, eos
        ids[b, n:] = pad
        mask[b, :n] = 1
    return ids, mask


def outs(o, head=True):
    d = {"last_hidden_state": o.hidden_states[-1].numpy()}
    if head:
        d["logits"] = o.logits.numpy()
    return d


def mpnet_mlm():
    torch.manual_seed(21)
    cfg = MPNetConfig(vocab_size=230, hidden_size=48, num_hidden_layers=2, num_attention_heads=12, intermediate_size=70,
                      max_position_embeddings=60, initializer_range=0.1, attn_implementation="eager",
                      architectures=["MPNetForMaskedLM"])
    model = MPNetForMaskedLM(cfg)
    perturb(model, 21)
    with torch.no_grad():  # a bias table that matters
        model.mpnet.encoder.relative_attention_bias.weight.normal_(0, 1)
    rng = np.random.default_rng(21)
    ids, mask = padded(rng, 2, 40, [40, 23], 230, 1)
    inp = {"input_ids": ids, "attention_mask": mask}
    halve(model)
    write("mpnet_mlm", model, inp, outs(run(model, inp)))


def mpnet_cls():
    torch.manual_seed(22)
    cfg = MPNetConfig(vocab_size=210, hidden_size=96, num_hidden_layers=2, num_attention_heads=24, intermediate_size=100,
                      max_position_embeddings=40, initializer_range=0.1, num_labels=3, attn_implementation="eager",
                      architectures=["MPNetForSequenceClassification"])
    model = MPNetForSequenceClassification(cfg)
    perturb(model, 22)
    with torch.no_grad():
        model.mpnet.encoder.relative_attention_bias.weight.normal_(0, 1)
    rng = np.random.default_rng(22)
    ids, mask = padded(rng, 3, 17, [17, 12, 4], 210, 1)
    inp = {"input_ids": ids, "attention_mask": mask}
    halve(model)
    write("mpnet_cls", model, inp, outs(run(model, inp)))


def xlmr_cls():
    torch.manual_seed(23)
    cfg = XLMRobertaConfig(vocab_size=270, hidden_size=36, num_hidden_layers=2, num_attention_heads=3, intermediate_size=50,
                           max_position_embeddings=30, type_vocab_size=1, pad_token_id=1, initializer_range=0.1,
                           num_labels=2, attn_implementation="eager",
                           architectures=["XLMRobertaForSequenceClassification"])
    model = XLMRobertaForSequenceClassification(cfg)
    perturb(model, 23)
    rng = np.random.default_rng(23)
    ids, mask = padded(rng, 2, 11, [11, 6], 270, 1)
    inp = {"input_ids": ids, "attention_mask": mask}
    halve(model)
    write("xlmr_cls", model, inp, outs(run(model, inp)))


def electra_cfg(**kw):
    return ElectraConfig(vocab_size=190, embedding_size=20, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                         intermediate_size=44, max_position_embeddings=24, initializer_range=0.1,
                         attn_implementation="eager", **kw)


def electra_case(name, cls, arch, seed, **kw):
    torch.manual_seed(seed)
    model = cls(electra_cfg(architectures=[arch], **kw))
    perturb(model, seed)
    rng = np.random.default_rng(seed)
    ids, mask = padded(rng, 2, 13, [13, 7], 190, 0, bos=101 % 190, eos=102 % 190)
    inp = {"input_ids": ids, "attention_mask": mask, "token_type_ids": (np.arange(13)[None] >= 5).astype(np.int64).repeat(2, 0)}
    halve(model)
    o = run(model, inp)
    d = outs(o)
    if name == "electra_disc":
        d["logits"] = d["logits"][..., None]  # [B, S, 1] as the graph gives it
    write(name, model, inp, d)


def electra_cls():
    electra_case("electra_cls", ElectraForSequenceClassification, "ElectraForSequenceClassification", 24, num_labels=3)


def electra_disc():
    electra_case("electra_disc", ElectraForPreTraining, "ElectraForPreTraining", 25)


def electra_gen():
    electra_case("electra_gen", ElectraForMaskedLM, "ElectraForMaskedLM", 26)


def deberta_case(name, model, seed, S, lens, vocab, token_types=True, head=True):
    perturb(model, seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "rel_embeddings" in n:
                p.normal_(0, 1)
    rng = np.random.default_rng(seed)
    ids, mask = padded(rng, len(lens), S, lens, vocab, 0, bos=1, eos=2)
    inp = {"input_ids": ids, "attention_mask": mask}
    if token_types:
        inp["token_type_ids"] = (np.arange(S)[None] >= S // 2).astype(np.int64).repeat(len(lens), 0)
    halve(model)
    write(name, model, inp, outs(run(model, inp), head), {"compare_real_tokens": True})


def deberta_cls():
    torch.manual_seed(27)
    cfg = DebertaConfig(vocab_size=200, hidden_size=48, num_hidden_layers=2, num_attention_heads=12, intermediate_size=60,
                        max_position_embeddings=40, type_vocab_size=2, relative_attention=True, max_relative_positions=-1,
                        pos_att_type=["c2p", "p2c"], position_biased_input=True, initializer_range=0.1, num_labels=3,
                        pooler_hidden_act="gelu", attn_implementation="eager",
                        architectures=["DebertaForSequenceClassification"])
    deberta_case("deberta_cls", DebertaForSequenceClassification(cfg), 27, 19, [19, 11, 5], 200)


def deberta_mlm():
    torch.manual_seed(28)
    cfg = DebertaConfig(vocab_size=220, hidden_size=36, num_hidden_layers=2, num_attention_heads=3, intermediate_size=50,
                        max_position_embeddings=30, type_vocab_size=0, relative_attention=True, max_relative_positions=8,
                        pos_att_type=["p2c", "c2p"], position_biased_input=True, initializer_range=0.1,
                        attn_implementation="eager", architectures=["DebertaForMaskedLM"])
    deberta_case("deberta_mlm", DebertaForMaskedLM(cfg), 28, 14, [14, 9], 220, token_types=False)


def debertav2_mlm():
    torch.manual_seed(29)
    cfg = DebertaV2Config(vocab_size=240, hidden_size=48, num_hidden_layers=2, num_attention_heads=12, intermediate_size=64,
                          max_position_embeddings=64, type_vocab_size=0, relative_attention=True, position_buckets=8,
                          max_relative_positions=32, norm_rel_ebd="layer_norm", share_att_key=True,
                          pos_att_type=["p2c", "c2p"], position_biased_input=False, layer_norm_eps=1e-7,
                          initializer_range=0.1, attn_implementation="eager", architectures=["DebertaV2ForMaskedLM"])
    deberta_case("debertav2_mlm", DebertaV2ForMaskedLM(cfg), 29, 27, [27, 16], 240, token_types=False)


def debertav2_cls():
    torch.manual_seed(30)
    cfg = DebertaV2Config(vocab_size=180, hidden_size=96, embedding_size=40, num_hidden_layers=2, num_attention_heads=24,
                          intermediate_size=80, max_position_embeddings=32, type_vocab_size=2, relative_attention=True,
                          position_buckets=-1, max_relative_positions=-1, share_att_key=False, pos_att_type=["c2p"],
                          position_biased_input=True, initializer_range=0.1, num_labels=2, pooler_hidden_act="tanh",
                          attn_implementation="eager", architectures=["DebertaV2ForSequenceClassification"])
    deberta_case("debertav2_cls", DebertaV2ForSequenceClassification(cfg), 30, 15, [15, 8, 3], 180)


def mpnet_real():
    """The real all-mpnet-base-v2 (models/, scripts/fetch_models.sh): sentence-transformers' embeddings."""
    from sentence_transformers import SentenceTransformer

    from make_text_refs import SENTENCES
    import json
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    st = SentenceTransformer(os.path.join(root, "models", "all-mpnet-base-v2"), device="cpu")
    e = st.encode(SENTENCES, convert_to_numpy=True, batch_size=len(SENTENCES))
    out = os.path.join(root, "tests", "data", "text", "mpnet_real")
    os.makedirs(out, exist_ok=True)
    e.astype(np.float32).tofile(os.path.join(out, "embeddings.bin"))
    with open(os.path.join(out, "case.json"), "w") as f:
        json.dump({"sentences": SENTENCES, "dim": int(e.shape[1]), "cos_food_bread": float(e[0] @ e[1]),
                   "cos_food_horse": float(e[0] @ e[2])}, f, indent=1, ensure_ascii=False)
    print(f"mpnet_real: cos(food, bread) = {e[0] @ e[1]:.4f}, cos(food, horse) = {e[0] @ e[2]:.4f}")


def debertav2_conv():
    """deberta-v2-xlarge's layout: the convolution layer after the first layer (kernel 3, tanh)."""
    torch.manual_seed(31)
    cfg = DebertaV2Config(vocab_size=170, hidden_size=48, num_hidden_layers=2, num_attention_heads=12, intermediate_size=56,
                          max_position_embeddings=32, type_vocab_size=0, relative_attention=True, position_buckets=16,
                          max_relative_positions=32, norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"],
                          position_biased_input=False, conv_kernel_size=3, conv_act="gelu", initializer_range=0.1,
                          attn_implementation="eager", architectures=["DebertaV2Model"])
    deberta_case("debertav2_conv", DebertaV2Model(cfg), 31, 13, [13, 6, 9], 170, token_types=False, head=False)


CASES = [debertav2_conv, mpnet_real, mpnet_mlm, mpnet_cls, xlmr_cls, electra_cls, electra_disc, electra_gen, deberta_cls, deberta_mlm, debertav2_mlm,
         debertav2_cls]

if __name__ == "__main__":
    for c in CASES:
        if len(sys.argv) == 1 or c.__name__ in sys.argv[1:]:
            print(c.__name__)
            c()
