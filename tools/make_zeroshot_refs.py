#!/usr/bin/env python3
"""Reference cases for tests/test_zeroshot.c: HF's zero-shot-classification
pipeline on small random NLI checkpoints, and sentence-transformers'
CrossEncoder.predict / .rank on a small random one-logit cross-encoder.

Each model is a random checkpoint of odd size (torch, eager attention,
float32) with a real tokenizer cut down to the tokens the test texts need, so
that the embedding table stays small: bert-base-uncased's WordPiece (the
texts' tokens, every letter and digit and their ## forms, punctuation) and
RoBERTa's byte-level BPE (the 256 bytes and its first 400 merges), from
tests/data/tokenizers/. vocab_size is the cut tokenizer's size, and the
tokenizer's model_max_length the model's positions (40), so that HF's
truncation and ours cut at the same place. Writes tests/data/zeroshot/:
  bert_nli        BertForSequenceClassification, hidden 36 (3 heads of 12),
                  id2label {0: contradiction, 1: neutral, 2: entailment}
  roberta_nli     RobertaForSequenceClassification, hidden 36 (9 heads of 4),
                  id2label {0: ENTAILMENT, 1: NEUTRAL, 2: CONTRADICTION}
  distilbert_nli  DistilBertForSequenceClassification, hidden 24 (2 heads), two
                  labels {0: not_entailment, 1: entailment} (QNLI/RTE style)
  deberta_nli     DebertaV2ForSequenceClassification (v3-style: log buckets,
                  share_att_key, norm_rel_ebd, no absolute positions), hidden 48
                  (12 heads of 4), id2label as cross-encoder/nli-deberta-base's
                  {0: contradiction, 1: entailment, 2: neutral}, the WordPiece tokenizer
  mpnet_nli       MPNetForSequenceClassification, hidden 48 (12 heads of 4), the
                  WordPiece tokenizer
  cross_encoder   BertForSequenceClassification with one label
  refs.json       the pipeline's {sequence, labels, scores} per model, text,
                  label set, template and multi_label (a premise longer than
                  the positions among them: HF truncates only_first), the same
                  for roberta_nli's weights under generic LABEL_i names (no
                  entailment label: HF warns and takes the last logit), and
                  CrossEncoder.predict's scores and .rank's order for a query
                  against 35 documents (one longer than the positions).

Usage: tools/.venv/bin/pip install torch transformers safetensors sentence-transformers
       tools/.venv/bin/python tools/make_zeroshot_refs.py
(made with torch 2.15, transformers 5.25, sentence-transformers 6.3)
"""
import json
import os
import shutil
import tempfile

import torch
from transformers import (BertConfig, BertForSequenceClassification, BertTokenizer, DebertaV2Config,
                          DebertaV2ForSequenceClassification, DistilBertConfig, MPNetConfig, MPNetForSequenceClassification,
                          DistilBertForSequenceClassification, DistilBertTokenizer, RobertaConfig,
                          RobertaForSequenceClassification, RobertaTokenizer, pipeline)

from make_text_refs import perturb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "zeroshot")
TOK = os.path.join(ROOT, "tests", "data", "tokenizers")
POSITIONS = 40

SEQUENCES = [
    "The team won the match in the last minute.",
    "Parliament passed the new budget after a long debate.",
    "Add the onions and stir until golden!",
    # longer than the positions: HF truncates the premise, never the hypothesis
    "The rocket lifted off at dawn, and after a few minutes the crew reported that every system on board was working "
    "well, while the people watching from the beach cheered and waved flags for a very long time.",
]
LABELS = [["sports", "politics", "cooking", "space travel"], ["urgent", "not urgent"], ["food"]]
TEMPLATES = [None, "The topic is {}!"]

QUERY = "How do rockets reach orbit?"
DOCS = ["Rockets burn fuel to climb and then fly sideways fast enough to stay in orbit.",
        "A cake needs flour, eggs and sugar.",
        "The match ended in a draw.",
        "Orbit is reached when the speed is high enough that the ground curves away as fast as you fall, and every "
        "rocket that gets there has to carry a lot of fuel for a long way before it does."] + \
       [f"Document number {i} talks about {w}." for i, w in
        enumerate(["rockets", "bread", "votes", "space", "orbits", "stars", "soup", "games", "trains", "moons", "fuel",
                   "laws", "goals", "ships", "clouds", "maps", "cats", "kings", "rivers", "songs", "planes", "music",
                   "farms", "roads", "glass", "stone", "paper", "light", "heat", "sand", "wind"])]

ALL_TEXTS = SEQUENCES + [t.format(l) for t in ["This example is {}.", "The topic is {}!"] for ls in LABELS for l in ls] + \
            [QUERY] + DOCS


def bert_vocab(tmp):
    """bert-base-uncased's tokens that the texts use, every character with its
    ## form, in their original order (ids change; the tokenization does not)."""
    full = BertTokenizer(os.path.join(TOK, "bert-base-uncased", "vocab.txt"), do_lower_case=True)
    vocab = [l.rstrip("\n") for l in open(os.path.join(TOK, "bert-base-uncased", "vocab.txt"), encoding="utf-8")]
    keep = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    for t in ALL_TEXTS:
        keep.update(full.tokenize(t))
    chars = "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"
    keep.update(chars)
    keep.update("##" + c for c in chars)
    kept = [t for t in vocab if t in keep]
    path = os.path.join(tmp, "vocab.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(kept) + "\n")
    return path


def roberta_files(tmp):
    """RoBERTa's BPE with its first 400 merges: the 256 byte symbols, the
    merges' results and the five special tokens."""
    vocab = json.load(open(os.path.join(TOK, "roberta", "vocab.json"), encoding="utf-8"))
    merges = [l.rstrip("\n") for l in open(os.path.join(TOK, "roberta", "merges.txt"), encoding="utf-8")
              if l.strip() and not l.startswith("#version")]
    by_id = sorted(vocab, key=vocab.get)
    base = [t for t in by_id if len(t) == 1]
    assert len(base) == 256, len(base)
    have, kept_merges, merged = set(base), [], []
    for m in merges[:400]:
        a, b = m.split(" ")
        if a in have and b in have and a + b not in have:
            kept_merges.append(m)
            merged.append(a + b)
            have.add(a + b)
    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + base + merged + ["<mask>"]
    vpath, mpath = os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt")
    json.dump({t: i for i, t in enumerate(tokens)}, open(vpath, "w", encoding="utf-8"), ensure_ascii=False)
    with open(mpath, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(kept_merges) + "\n")
    return vpath, mpath


def save(name, model, tok):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    model.eval()
    model.save_pretrained(d, safe_serialization=True)
    tok.model_max_length = POSITIONS
    tok.save_pretrained(d)
    return d


def bert(seed, vocab_size, **labels):
    """A BertForSequenceClassification, hidden 36 (3 heads of 12), 2 layers."""
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                     intermediate_size=50, max_position_embeddings=POSITIONS, initializer_range=0.2,
                     attn_implementation="eager", architectures=["BertForSequenceClassification"], **labels)
    m = BertForSequenceClassification(cfg)
    perturb(m, seed)
    return m


def zero_shot_cases(d, model=None):
    clf = pipeline("zero-shot-classification", model=model or d, tokenizer=d, device="cpu")
    cases = []
    for labels in LABELS:
        for tmpl in TEMPLATES:
            for multi in (False, True):
                kw = {"candidate_labels": labels, "multi_label": multi}
                if tmpl:
                    kw["hypothesis_template"] = tmpl
                for r in clf(SEQUENCES, **kw):
                    cases.append({"sequence": r["sequence"], "candidate_labels": labels, "template": tmpl,
                                  "multi_label": multi, "labels": r["labels"], "scores": r["scores"]})
    return cases


def main():
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp()
    refs = {}
    bert_tok = BertTokenizer(bert_vocab(tmp), do_lower_case=True)
    roberta_tok = RobertaTokenizer(*roberta_files(tmp))
    distil_tok = DistilBertTokenizer(os.path.join(tmp, "vocab.txt"), do_lower_case=True)

    m = bert(21, len(bert_tok), id2label={0: "contradiction", 1: "neutral", 2: "entailment"},
             label2id={"contradiction": 0, "neutral": 1, "entailment": 2})
    refs["bert_nli"] = zero_shot_cases(save("bert_nli", m, bert_tok))

    torch.manual_seed(22)
    cfg = RobertaConfig(vocab_size=len(roberta_tok), hidden_size=36, num_hidden_layers=2, num_attention_heads=9,
                        intermediate_size=44, max_position_embeddings=POSITIONS + 2, type_vocab_size=1, pad_token_id=1,
                        initializer_range=0.2, id2label={0: "ENTAILMENT", 1: "NEUTRAL", 2: "CONTRADICTION"},
                        label2id={"ENTAILMENT": 0, "NEUTRAL": 1, "CONTRADICTION": 2},
                        attn_implementation="eager", architectures=["RobertaForSequenceClassification"])
    m = RobertaForSequenceClassification(cfg)
    perturb(m, 22)
    d = save("roberta_nli", m, roberta_tok)
    refs["roberta_nli"] = zero_shot_cases(d)
    # the same weights under HF's generic names: no entailment label
    m.config.id2label = {i: f"LABEL_{i}" for i in range(3)}
    m.config.label2id = {f"LABEL_{i}": i for i in range(3)}
    refs["roberta_nli_generic_labels"] = zero_shot_cases(d, model=m)

    torch.manual_seed(23)
    cfg = DistilBertConfig(vocab_size=len(distil_tok), dim=24, n_layers=2, n_heads=2, hidden_dim=40,
                           max_position_embeddings=POSITIONS, initializer_range=0.2,
                           id2label={0: "not_entailment", 1: "entailment"}, label2id={"not_entailment": 0, "entailment": 1},
                           attn_implementation="eager", architectures=["DistilBertForSequenceClassification"])
    m = DistilBertForSequenceClassification(cfg)
    perturb(m, 23)
    refs["distilbert_nli"] = zero_shot_cases(save("distilbert_nli", m, distil_tok))

    nli = {"id2label": {0: "contradiction", 1: "entailment", 2: "neutral"},
           "label2id": {"contradiction": 0, "entailment": 1, "neutral": 2}}
    torch.manual_seed(25)
    cfg = DebertaV2Config(vocab_size=len(bert_tok), hidden_size=48, num_hidden_layers=2, num_attention_heads=12,
                          intermediate_size=60, max_position_embeddings=POSITIONS, type_vocab_size=0, relative_attention=True,
                          position_buckets=16, max_relative_positions=POSITIONS, norm_rel_ebd="layer_norm", share_att_key=True,
                          pos_att_type=["p2c", "c2p"], position_biased_input=False, initializer_range=0.2,
                          attn_implementation="eager", architectures=["DebertaV2ForSequenceClassification"], **nli)
    m = DebertaV2ForSequenceClassification(cfg)
    perturb(m, 25)
    refs["deberta_nli"] = zero_shot_cases(save("deberta_nli", m, bert_tok))

    torch.manual_seed(26)
    cfg = MPNetConfig(vocab_size=len(bert_tok), hidden_size=48, num_hidden_layers=2, num_attention_heads=12, intermediate_size=60,
                      max_position_embeddings=POSITIONS + 2, pad_token_id=0, initializer_range=0.2,
                      attn_implementation="eager", architectures=["MPNetForSequenceClassification"], **nli)
    m = MPNetForSequenceClassification(cfg)
    perturb(m, 26)
    refs["mpnet_nli"] = zero_shot_cases(save("mpnet_nli", m, bert_tok))

    d = save("cross_encoder", bert(24, len(bert_tok), num_labels=1), bert_tok)
    from sentence_transformers import CrossEncoder
    ce = CrossEncoder(d, device="cpu")
    scores = ce.predict([(QUERY, doc) for doc in DOCS], batch_size=32)
    ranked = ce.rank(QUERY, DOCS)
    refs["cross_encoder"] = {"query": QUERY, "documents": DOCS, "scores": [float(s) for s in scores],
                             "rank": [{"corpus_id": int(r["corpus_id"]), "score": float(r["score"])} for r in ranked],
                             "max_length": ce.max_length}
    with open(os.path.join(OUT, "refs.json"), "w", encoding="utf-8") as f:
        json.dump(refs, f, indent=1, ensure_ascii=False)
    shutil.rmtree(tmp)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"{OUT}: {total} bytes")


if __name__ == "__main__":
    main()
