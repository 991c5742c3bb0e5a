#!/usr/bin/env python3
"""Reference cases for tests/test_encdec.c, made with HF `transformers` (torch,
eager attention, float32): small random encoder-decoder checkpoints of odd
sizes, their forward pass over given decoder_input_ids, and greedy generation
as HF's `generate` does it (forced BOS/EOS, decoder start) with the raw
logits of every step, and beam search with several settings (BEAM_SETTINGS).

Writes tests/data/encdec/<case>/: config.json, generation_config.json,
model.safetensors, case.json and float32 LE files:
  logits.bin                  forward pass: [2, T, vocab] for the padded batch
  encoder_hidden.bin          [2, S, d_model]
  step_logits.bin             prompt 0's greedy steps: [new_tokens, vocab]
Cases:
  bart   BartForConditionalGeneration: d_model 48, 12 encoder heads (head 4) and
         6 decoder heads (head 8), 2 encoder and 3 decoder layers, vocab 301,
         forced_bos_token_id 5 (generation_config.json), forced_eos_token_id 2, final_logits_bias
         non-zero, scale_embedding on, gelu
  bart-eos  the bart shape with EOS favoured by final_logits_bias (greedy stops at
         once; beam search finishes hypotheses early and replaces them)
  mbart  the bart shape as MBartForConditionalGeneration (pre-LN, final layer norms)
  marian d_model 48, 6 encoder heads and 12 decoder heads, swish, sinusoidal
         positions (absent from the checkpoint), vocab 211, pad 210 = decoder start
  marian-text  the real opus-mt tokenizer (source.spm, target.spm,
         vocab.json: a link to tests/data/tokenizers/spm/marian) over a tiny
         Marian (d_model 8): HF's translation pipeline's translation_text
  t5     T5 v1.0: relu, the head tied and scaled by d_model^-0.5, 12 heads of
         d_kv 8 (inner 96 != d_model 48), relative buckets with max distance 20
  flan-t5  the same shape gated-gelu with an untied head (transformers 4.x)
  t5-text  the real T5 tokenizer (spiece.model) over a tiny Flan-style T5:
         text2text-generation's generated_text (transformers 4.x)
  bart-text  a BART tokenizer (RoBERTa's byte-level BPE: a link to
         tests/data/tokenizers/roberta: GPT-2's vocabulary, <s> </s> <pad> after
         it) over a tiny BART (d_model 8): texts in,
         HF's text2text-generation pipeline's generated_text out; ids only
Each prompt is generated alone (batch 1: HF pads a finished row) and then the
tests generate the prompts together.

Usage: python3 -m venv tools/.venv && tools/.venv/bin/pip install torch transformers safetensors
       tools/.venv/bin/python tools/make_encdec_refs.py bart
       (tools/.venv4: transformers 4.57, whose pipelines transformers 5 removed)
       tools/.venv/bin/python tools/make_encdec_refs.py t5
       tools/.venv4/bin/python tools/make_encdec_refs.py bart-text marian-text flan-t5 t5-text
"""
import json
import os
import shutil

import numpy as np
import torch
from transformers import (AutoTokenizer, BartConfig, BartForConditionalGeneration, MarianConfig, MarianMTModel,
                          MarianTokenizer, MBartConfig, MBartForConditionalGeneration, T5Config, T5ForConditionalGeneration,
                          T5Tokenizer, pipeline)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "encdec")


def perturb(model, seed):
    """Random LayerNorm scales/biases, attention/MLP biases and the logits bias
    (HF inits them constant)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "layer_norm" in name or "layernorm" in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
        for name, b in model.named_buffers():
            if name.endswith("final_logits_bias"):
                b.add_(torch.randn(b.shape, generator=g) * 0.1)


# beam settings the cases are generated with (HF's generate keywords)
BEAM_SETTINGS = [
    dict(num_beams=4, length_penalty=1.0, early_stopping=False, max_new_tokens=12),
    dict(num_beams=3, length_penalty=2.0, early_stopping=True, no_repeat_ngram_size=2, max_new_tokens=12),
    dict(num_beams=5, length_penalty=0.5, early_stopping="never", min_new_tokens=6, max_new_tokens=10),
    dict(num_beams=2, length_penalty=-1.0, early_stopping=False, repetition_penalty=1.3, max_new_tokens=9),
]


def write_case(name, model, prompts, dec_ids, new):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    model.save_pretrained(d)  # config, generation config, weights (tied ones once)
    pad = model.config.pad_token_id
    S = max(len(p) for p in prompts)
    ids = torch.tensor([p + [pad] * (S - len(p)) for p in prompts])
    mask = torch.tensor([[1] * len(p) + [0] * (S - len(p)) for p in prompts])
    dec = torch.tensor(dec_ids)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec)
    out.logits.float().numpy().astype("<f4").tofile(os.path.join(d, "logits.bin"))
    out.encoder_last_hidden_state.float().numpy().astype("<f4").tofile(os.path.join(d, "encoder_hidden.bin"))
    greedy, steps = [], None
    for i, p in enumerate(prompts):
        g = model.generate(torch.tensor([p]), max_new_tokens=new, do_sample=False, num_beams=1, output_logits=True,
                           return_dict_in_generate=True)
        greedy.append(g.sequences[0].tolist())
        if i == 0:
            steps = torch.stack(g.logits, 1)[0].float().numpy()
    steps.astype("<f4").tofile(os.path.join(d, "step_logits.bin"))
    # beam search as HF's generate does it (each prompt alone: its sequence unpadded)
    beams = []
    for kw in BEAM_SETTINGS:
        seqs = [model.generate(torch.tensor([p]), do_sample=False, **kw)[0].tolist() for p in prompts]
        beams.append({"settings": {k: v for k, v in kw.items()}, "ids": seqs})
    # bad_words_ids and a list of EOS ids, as a generation_config.json would give them
    listed = []
    if name == "bart":
        for kw in [dict(bad_words_ids=[[79], [240, 281]], eos_token_id=[2, 189], max_new_tokens=12),
                   dict(bad_words_ids=[[79], [240, 281]], eos_token_id=[2, 189], num_beams=3, max_new_tokens=12)]:
            seqs = [model.generate(torch.tensor([p]), do_sample=False, **kw)[0].tolist() for p in prompts]
            listed.append({"settings": kw, "ids": seqs})
    case = {"prompts": prompts, "decoder_input_ids": dec_ids, "new_tokens": new, "greedy_ids": greedy, "beams": beams, "listed": listed,
            "vocab": model.config.vocab_size, "d_model": model.config.d_model, "steps": len(steps), "pad": pad,
            "eos": model.config.eos_token_id,
            "transformers": __import__("transformers").__version__}
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    print(name, [len(p) for p in prompts], "->", greedy)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(24)
    cfg = BartConfig(vocab_size=301, d_model=48, encoder_layers=2, decoder_layers=3, encoder_attention_heads=12,
                     decoder_attention_heads=6, encoder_ffn_dim=72, decoder_ffn_dim=88, max_position_embeddings=64,
                     scale_embedding=True, init_std=0.15, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                     decoder_start_token_id=2, forced_bos_token_id=0, forced_eos_token_id=2, activation_function="gelu")
    torch.manual_seed(32)
    m = BartForConditionalGeneration(cfg).eval()
    perturb(m, 32)
    m.generation_config.forced_bos_token_id = 5  # transformers 5 keeps it in generation_config.json only
    prompts = [[0] + rng.integers(3, 300, 9).tolist() + [2], [0] + rng.integers(3, 300, 4).tolist() + [2]]
    dec = [[2, 0] + rng.integers(3, 300, 5).tolist(), [2, 0] + rng.integers(3, 300, 5).tolist()]
    write_case("bart", m, prompts, dec, 14)

    # the same shape with EOS favoured (final_logits_bias): greedy ends at once, beams
    # finish early hypotheses and replace them with longer ones (the beam search's finished set)
    torch.manual_seed(35)
    m = BartForConditionalGeneration(cfg).eval()
    perturb(m, 35)
    with torch.no_grad():
        m.final_logits_bias[0, cfg.eos_token_id] += 4.3
    m.generation_config.forced_bos_token_id = None
    eos_rng = np.random.default_rng(5)
    p_eos = [[0] + eos_rng.integers(3, 300, 9).tolist() + [2], [0] + eos_rng.integers(3, 300, 4).tolist() + [2]]
    write_case("bart-eos", m, p_eos, dec, 12)

    # mBART: pre-LN blocks, a final layer_norm on each side, scaled embeddings
    mcfg = MBartConfig(vocab_size=301, d_model=48, encoder_layers=2, decoder_layers=2, encoder_attention_heads=12,
                       decoder_attention_heads=6, encoder_ffn_dim=72, decoder_ffn_dim=88, max_position_embeddings=64,
                       scale_embedding=True, init_std=0.15, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                       decoder_start_token_id=2, forced_eos_token_id=2, activation_function="gelu")
    torch.manual_seed(36)
    m = MBartForConditionalGeneration(mcfg).eval()
    perturb(m, 36)
    write_case("mbart", m, prompts, dec, 12)

    # Marian: sinusoidal positions (not in the checkpoint), swish, no embedding norm
    cfg = MarianConfig(vocab_size=211, d_model=48, encoder_layers=2, decoder_layers=2, encoder_attention_heads=6,
                       decoder_attention_heads=12, encoder_ffn_dim=80, decoder_ffn_dim=64, max_position_embeddings=48,
                       scale_embedding=True, init_std=0.15, pad_token_id=210, eos_token_id=0, decoder_start_token_id=210,
                       forced_eos_token_id=0, activation_function="swish")
    torch.manual_seed(33)
    m = MarianMTModel(cfg).eval()
    perturb(m, 33)
    prompts = [rng.integers(1, 210, 12).tolist() + [0], rng.integers(1, 210, 5).tolist() + [0]]
    dec = [[210] + rng.integers(1, 210, 6).tolist(), [210] + rng.integers(1, 210, 6).tolist()]
    write_case("marian", m, prompts, dec, 12)


def text_case(name, make, tok, texts, seeds, task, field, skip, links):
    """A tiny model over a real tokenizer, text in and the pipeline's text out
    (transformers 4.x: version 5 removed these pipelines). make(seed) builds
    the model; the first seed whose greedy steps have no near-tie (the text
    must not hang on rounding; `skip` steps forced) is kept."""
    if int(__import__("transformers").__version__.split(".")[0]) >= 5:
        raise SystemExit(f"{name} needs transformers 4.x (its {task} pipeline): use tools/.venv4")
    for seed in seeds:
        m = make(seed)
        margin = 1e9
        for t in texts:
            g = m.generate(**tok(t, return_tensors="pt"), max_new_tokens=10, output_logits=True, return_dict_in_generate=True)
            for lg in g.logits[skip:-1]:
                top = lg[0].topk(2).values
                margin = min(margin, float(top[0] - top[1]))
        if margin > 0.05:
            break
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    m.save_pretrained(d)
    pipe = pipeline(task, model=m, tokenizer=tok)
    out = [pipe(t, max_new_tokens=10)[0][field] for t in texts]
    ids = [m.generate(**tok(t, return_tensors="pt"), max_new_tokens=10)[0].tolist() for t in texts]
    assert out == [tok.decode(i, skip_special_tokens=True) for i in ids], "the pipeline generated other ids"
    beam4 = [pipe(t, max_new_tokens=10, num_beams=4)[0][field] for t in texts]
    case = {"texts": texts, "new_tokens": 10, field + "s": out, "greedy_ids": ids, "seed": seed, field + "s_beam4": beam4,
            "transformers": __import__("transformers").__version__}
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    for target in links:
        os.symlink(os.path.join("..", "..", "tokenizers", target), os.path.join(d, os.path.basename(target)))
    print(name, ids, out)


def t5_cases():
    """T5 v1.0 (relu, the head tied and the output scaled) and a Flan-T5-style
    model (gated-gelu, an untied head stored): 12 heads of d_kv 8 (inner 96,
    d_model 48), 32 buckets and a max distance of 20 so the log buckets are used.
    Flan's needs transformers 4.x to store an untied head (version 5 ties T5's
    always): run this with tools/.venv4 for flan-t5."""
    major = int(__import__("transformers").__version__.split(".")[0])
    rng = np.random.default_rng(52)
    prompts = [rng.integers(2, 300, 33).tolist() + [1], rng.integers(2, 300, 7).tolist() + [1]]
    dec = [[0] + rng.integers(2, 300, 8).tolist(), [0] + rng.integers(2, 300, 8).tolist()]
    common = dict(vocab_size=301, d_model=48, d_kv=8, d_ff=72, num_layers=3, num_decoder_layers=3, num_heads=12,
                  relative_attention_num_buckets=32, relative_attention_max_distance=20, pad_token_id=0, eos_token_id=1,
                  decoder_start_token_id=0, initializer_factor=0.5)
    if major >= 5:
        # T5EncoderModel: the encoder alone, its last_hidden_state for the padded batch
        from transformers import T5EncoderModel
        torch.manual_seed(60)
        enc = T5EncoderModel(T5Config(feed_forward_proj="gated-gelu", **common)).eval()
        perturb(enc, 60)
        d = os.path.join(OUT, "t5-encoder")
        shutil.rmtree(d, ignore_errors=True)
        enc.save_pretrained(d)
        S = max(len(p) for p in prompts)
        ids = torch.tensor([p + [0] * (S - len(p)) for p in prompts])
        mask = torch.tensor([[1] * len(p) + [0] * (S - len(p)) for p in prompts])
        with torch.no_grad():
            enc(input_ids=ids, attention_mask=mask).last_hidden_state.numpy().astype("<f4").tofile(os.path.join(d, "last_hidden_state.bin"))
        json.dump({"prompts": prompts, "d_model": common["d_model"]}, open(os.path.join(d, "case.json"), "w"), indent=1)
        torch.manual_seed(61)
        m = T5ForConditionalGeneration(T5Config(feed_forward_proj="relu", **dict(common, initializer_factor=1.0))).eval()
        perturb(m, 61)
        write_case("t5", m, prompts, dec, 12)
    else:
        torch.manual_seed(62)
        m = T5ForConditionalGeneration(T5Config(feed_forward_proj="gated-gelu", tie_word_embeddings=False, **common)).eval()
        perturb(m, 62)
        write_case("flan-t5", m, prompts, dec, 12)


def bart_text():
    """A byte-level BPE tokenizer over a tiny BART: text2text-generation."""
    tok = AutoTokenizer.from_pretrained(os.path.join(ROOT, "tests", "data", "tokenizers", "roberta"))
    # the test tokenizer is GPT-2's vocabulary with RoBERTa's special tokens after it
    bos, pad, eos = tok.convert_tokens_to_ids(["<s>", "<pad>", "</s>"])
    cfg = BartConfig(vocab_size=len(tok), d_model=8, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16, max_position_embeddings=40,
                     init_std=0.5, pad_token_id=pad, bos_token_id=bos, eos_token_id=eos, decoder_start_token_id=eos,
                     forced_eos_token_id=eos, activation_function="gelu")

    def make(seed):
        torch.manual_seed(seed)
        m = BartForConditionalGeneration(cfg).eval()
        perturb(m, seed)
        m.config.forced_bos_token_id = bos
        m.generation_config.forced_bos_token_id = bos
        return m

    text_case("bart-text", make, tok, ["Hello, my dog is cute", "The café was closed on Sunday."], range(41, 200),
              "text2text-generation", "generated_text", 2, ["roberta/tokenizer.json"])


def marian_text():
    """The real opus-mt-en-fr tokenizer over a tiny Marian: translation."""
    tok = MarianTokenizer.from_pretrained(os.path.join(ROOT, "tests", "data", "tokenizers", "spm", "marian"))
    cfg = MarianConfig(vocab_size=len(tok), d_model=8, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16, max_position_embeddings=40,
                       scale_embedding=True, init_std=1.0, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                       decoder_start_token_id=tok.pad_token_id, forced_eos_token_id=tok.eos_token_id,
                       activation_function="swish")

    def make(seed):
        torch.manual_seed(seed)
        m = MarianMTModel(cfg).eval()
        perturb(m, seed)
        return m

    text_case("marian-text", make, tok, ["Hello, my dog is cute.", "The weather in Zürich was cold on Sunday."], range(51, 300),
              "translation", "translation_text", 0,
              ["spm/marian/" + n for n in ["source.spm", "target.spm", "vocab.json", "tokenizer_config.json"]])


def t5_text():
    """The real T5 tokenizer (spiece.model, 100 extra ids) over a tiny Flan-style T5: text2text-generation."""
    tok = T5Tokenizer.from_pretrained(os.path.join(ROOT, "tests", "data", "tokenizers", "spm", "t5"))
    cfg = T5Config(vocab_size=len(tok), d_model=8, d_kv=4, d_ff=16, num_layers=1, num_decoder_layers=1, num_heads=2,
                   feed_forward_proj="gated-gelu", tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
                   decoder_start_token_id=0, initializer_factor=4.0)

    task = {"prefix": "translate English to German: ", "num_beams": 2, "max_length": 9, "early_stopping": True}

    def make(seed):
        torch.manual_seed(seed)
        m = T5ForConditionalGeneration(cfg).eval()
        perturb(m, seed)
        m.config.task_specific_params = {"translation_en_to_de": task}  # T5's prefixes and settings per pipeline task
        return m

    text_case("t5-text", make, tok, ["translate English to German: The house is wonderful.", "summarize: studies have shown that owning a dog is good for you"],
              range(71, 300), "text2text-generation", "generated_text", 0,
              ["spm/t5/" + n for n in ["spiece.model", "tokenizer_config.json"]])
    # translation_en_to_de: the task's prefix and settings from task_specific_params, given to generate
    # as HF's pipeline means them (transformers 4.57's pipeline let its generation go past max_length here)
    d = os.path.join(OUT, "t5-text")
    m = T5ForConditionalGeneration.from_pretrained(d).eval()
    case = json.load(open(os.path.join(d, "case.json")))
    case["task_texts"] = ["The house is wonderful.", "I like cheese."]
    gen = {k: v for k, v in task.items() if k != "prefix"}
    out = [m.generate(**tok(task["prefix"] + t, return_tensors="pt"), do_sample=False, **gen)[0] for t in case["task_texts"]]
    case["translation_en_to_de"] = [tok.decode(o, skip_special_tokens=True) for o in out]
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)
    print("t5-text translation_en_to_de", case["translation_en_to_de"])


if __name__ == "__main__":
    import sys
    which = sys.argv[1:] or ["bart"]
    if "bart" in which:
        main()
    if "bart-text" in which:
        bart_text()
    if "marian-text" in which:
        marian_text()
    if "t5" in which or "flan-t5" in which:
        t5_cases()
    if "t5-text" in which:
        t5_text()
