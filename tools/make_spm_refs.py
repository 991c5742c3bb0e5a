#!/usr/bin/env python3
"""Reference token ids for the SentencePiece-family tokenizers (tests/test_spm.c):
what `transformers` 4.x's slow tokenizers (sentencepiece 0.2 underneath) give
for the `.model` files, and what `tokenizers` gives for the tokenizer.json that
transformers converts them to, on the hostile corpus of
tests/data/tokenizers/corpus.json.

Writes tests/data/tokenizers/spm/:
  albert/      spiece.model (albert-base-v2, real) + AlbertTokenizer config
  t5/          spiece.model (transformers' test fixture: unigram, 1,000 pieces)
               as a T5Tokenizer with 100 extra ids
  llama/       tokenizer.model (transformers' byte-fallback fixture: unigram with
               byte pieces) as a LlamaTokenizer
  bpe/         tokenizer.model trained here: a SentencePiece BPE with byte
               fallback, identity normalization and no whitespace removal (as
               Llama's), a user-defined symbol, on the King James Bible (Debian's
               bible-kjv), as a LlamaTokenizer
  xlmr/        the fixture as sentencepiece.bpe.model of an XLMRobertaTokenizer
               (fairseq's id offset)
  deberta/     the trained BPE as spm.model of a DebertaV2Tokenizer
  marian/      source.spm, target.spm, vocab.json (opus-mt-en-fr, real): MarianTokenizer
  <name>-json/ the tokenizer.json transformers converts each to (not marian: no
               fast tokenizer), with the same tokenizer_config.json
  refs.json    per folder: ids, ids without special tokens, decoded text
               (skip_special_tokens), byte offsets (json forms), pairs
With --extra (alone: the folders above are left as they are):
  t5-user/     the T5 fixture with user-defined pieces added, no config (plain
               sentencepiece encoding)
  long.txt     the first 160 kB of the King James Bible (bible-kjv, public
               domain) as one text: path scores past sentencepiece 0.2.3's reset
               at 1e5 (with near-ties where float rounding decides), long words
  extra.json   ids of long.txt for every .model folder and bpe-json / t5-json
               (no special tokens), and t5-user's ids for the corpus and for
               texts around its user-defined pieces, and bpe-denorm's decoding
  bpe-denorm/  the trained BPE with the T5 fixture's nmt_nfkc map as its
               denormalizer (applied to decoded text)

Usage: python3 -m venv tools/.venv4 && tools/.venv4/bin/pip install "transformers==4.57.*" "sentencepiece==0.2.3" protobuf tokenizers
       tools/.venv4/bin/python tools/make_spm_refs.py [SHARED_TOKENIZERS_DIR]
       tools/.venv4/bin/python tools/make_spm_refs.py --extra
then:  bash scripts/pack-test-data.sh   (the .model files, long.txt and the references are packed)
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

import sentencepiece as spm
import transformers
from transformers import AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizer_refs import byte_offsets, text  # noqa: E402  (the same corpus handling)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOK = os.path.join(ROOT, "tests", "data", "tokenizers")
OUT = os.path.join(TOK, "spm")
SHARED = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "--extra" else os.path.join(ROOT, "..", "shared", "tokenizers")
USER_PIECES = ["<sep2>", "\u2581hello\u2581world", "xyz", "\U0001f972"]
USER_TEXTS = ["<sep2>", "a<sep2>b", "hello world", " hello world ", "xyzxyz", "axyzb xyz", "\U0001f972\U0001f972 \U0001f972",
              "<sep2><sep2>hello world<sep2>", "hello worldxyz", "xy z", "<sep"]


def copy(src_dir, names, dst, rename=None):
    os.makedirs(dst, exist_ok=True)
    for n in names:
        shutil.copy(os.path.join(src_dir, n), os.path.join(dst, (rename or {}).get(n, n)))


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def train_bpe(dst):
    """A small Llama-style SentencePiece BPE: byte fallback, identity normalizer."""
    text = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "kjv.txt"), "w") as f:
        f.write(text)
    prefix = os.path.join(tmp, "m")
    spm.SentencePieceTrainer.train(
        input=os.path.join(tmp, "kjv.txt"), model_prefix=prefix, model_type="bpe", vocab_size=1500,
        character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity", add_dummy_prefix=True,
        remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True,
        user_defined_symbols=["<sep2>"], unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=2, seed_sentencepiece_size=100000,
        minloglevel=2)
    shutil.copy(prefix + ".model", dst)
    shutil.rmtree(tmp)


def make_folders():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    copy(os.path.join(SHARED, "albert-base-v2"), ["spiece.model", "tokenizer_config.json"], os.path.join(OUT, "albert"))
    copy(os.path.join(SHARED, "fixture-t5-unigram"), ["spiece.model", "tokenizer_config.json"], os.path.join(OUT, "t5"))
    copy(os.path.join(SHARED, "fixture-llama-bytefallback"), ["tokenizer.model", "tokenizer_config.json"], os.path.join(OUT, "llama"))
    copy(os.path.join(SHARED, "marian-opus-mt-en-fr"), ["source.spm", "target.spm", "vocab.json", "tokenizer_config.json"],
         os.path.join(OUT, "marian"))
    os.makedirs(os.path.join(OUT, "bpe"))
    train_bpe(os.path.join(OUT, "bpe", "tokenizer.model"))
    write_json(os.path.join(OUT, "bpe", "tokenizer_config.json"),
               {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "legacy": True,
                "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "model_max_length": 2048})
    copy(os.path.join(SHARED, "fixture-t5-unigram"), ["spiece.model"], os.path.join(OUT, "xlmr"),
         {"spiece.model": "sentencepiece.bpe.model"})
    write_json(os.path.join(OUT, "xlmr", "tokenizer_config.json"),
               {"tokenizer_class": "XLMRobertaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>",
                "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>", "model_max_length": 512})
    copy(os.path.join(OUT, "bpe"), ["tokenizer.model"], os.path.join(OUT, "deberta"), {"tokenizer.model": "spm.model"})
    write_json(os.path.join(OUT, "deberta", "tokenizer_config.json"),
               {"tokenizer_class": "DebertaV2Tokenizer", "do_lower_case": False, "split_by_punct": False,
                "bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                "cls_token": "[CLS]", "mask_token": "[MASK]", "model_max_length": 512})


def refs_for(tok, corpus, fast):
    r = {"class": type(tok).__name__, "ids": [], "ids_no_special": [], "decoded": [], "offsets": []}
    for b in corpus["texts"]:
        s = text(base64.b64decode(b))
        if fast:
            e = tok(s, return_offsets_mapping=True)
            r["offsets"].append(byte_offsets(s, e["offset_mapping"]))
        else:
            e = tok(s)
        r["ids"].append(e["input_ids"])
        r["ids_no_special"].append(tok(s, add_special_tokens=False)["input_ids"])
        r["decoded"].append(base64.b64encode(tok.decode(e["input_ids"], skip_special_tokens=True).encode("utf-8")).decode())
    r["pairs"] = []
    for a, b in corpus["pairs"]:
        e = tok(text(base64.b64decode(a)), text(base64.b64decode(b)))
        r["pairs"].append({"ids": e["input_ids"]})
    return r


def main():
    make_folders()
    with open(os.path.join(TOK, "corpus.json")) as f:
        corpus = json.load(f)
    refs = {"transformers": transformers.__version__, "sentencepiece": spm.__version__}
    for name in sorted(os.listdir(OUT)):
        d = os.path.join(OUT, name)
        if not os.path.isdir(d):
            continue
        slow = AutoTokenizer.from_pretrained(d, use_fast=False)
        refs[name] = refs_for(slow, corpus, False)
        print(f"{name}: {type(slow).__name__}, {len(slow)} tokens")
        if name == "marian":
            continue
        fast = AutoTokenizer.from_pretrained(d, use_fast=True, from_slow=True)
        jd = d + "-json"
        os.makedirs(jd)
        fast.backend_tokenizer.save(os.path.join(jd, "tokenizer.json"))
        shutil.copy(os.path.join(d, "tokenizer_config.json"), jd)
        fast = AutoTokenizer.from_pretrained(jd)
        refs[name + "-json"] = refs_for(fast, corpus, True)
        differ = sum(x != y for x, y in zip(refs[name]["ids"], refs[name + "-json"]["ids"]))
        print(f"{name}-json: {type(fast).__name__}; ids differ from the slow tokenizer's on {differ} of {len(corpus['texts'])} texts")
    with open(os.path.join(OUT, "refs.json"), "w") as f:
        json.dump(refs, f, separators=(",", ":"))


def extra():
    from sentencepiece import sentencepiece_model_pb2 as pb
    from tokenizers import Tokenizer
    with open(os.path.join(TOK, "corpus.json")) as f:
        corpus = json.load(f)
    texts = [text(base64.b64decode(b)) for b in corpus["texts"]]
    # the start of the King James Bible (Debian's bible-kjv, public domain), one verse a line
    kjv = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    long_text = kjv[:kjv.index("\n", 160000) + 1]
    with open(os.path.join(OUT, "long.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(long_text)
    refs = {"sentencepiece": spm.__version__, "long": {}}
    for name in sorted(os.listdir(OUT)):
        d = os.path.join(OUT, name)
        if not os.path.isdir(d) or name.endswith("-json") and name not in ("bpe-json", "t5-json") or name == "t5-user":
            continue
        if name.endswith("-json"):
            tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
            ids = tok.encode(long_text, add_special_tokens=False).ids
        else:
            tok = AutoTokenizer.from_pretrained(d, use_fast=False)
            ids = tok(long_text, add_special_tokens=False)["input_ids"]
        refs["long"][name] = ids
        print(f"long.txt through {name}: {len(ids)} ids")
    # user-defined pieces in a Unigram model
    m = pb.ModelProto()
    with open(os.path.join(OUT, "t5", "spiece.model"), "rb") as f:
        m.ParseFromString(f.read())
    for u in USER_PIECES:
        p = m.pieces.add()
        p.piece, p.score, p.type = u, 0.0, pb.ModelProto.SentencePiece.USER_DEFINED
    os.makedirs(os.path.join(OUT, "t5-user"), exist_ok=True)
    path = os.path.join(OUT, "t5-user", "spiece.model")
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    sp = spm.SentencePieceProcessor(model_file=path)
    refs["t5-user"] = {"pieces": USER_PIECES, "texts": [base64.b64encode(t.encode()).decode() for t in USER_TEXTS],
                       "ids": [sp.encode(t) for t in USER_TEXTS], "corpus": [sp.encode(t) for t in texts]}
    # a denormalizer: the BPE model with the T5 fixture's nmt_nfkc map as its denormalizer spec
    b = pb.ModelProto()
    with open(os.path.join(OUT, "bpe", "tokenizer.model"), "rb") as f:
        b.ParseFromString(f.read())
    b.denormalizer_spec.name = "nmt_nfkc"
    b.denormalizer_spec.precompiled_charsmap = m.normalizer_spec.precompiled_charsmap
    b.denormalizer_spec.add_dummy_prefix = False
    b.denormalizer_spec.remove_extra_whitespaces = False
    b.denormalizer_spec.escape_whitespaces = False
    os.makedirs(os.path.join(OUT, "bpe-denorm"), exist_ok=True)
    path = os.path.join(OUT, "bpe-denorm", "spiece.model")
    with open(path, "wb") as f:
        f.write(b.SerializeToString())
    sp = spm.SentencePieceProcessor(model_file=path)
    dtexts = ["x \ufb01 \u2460", "\uff21\uff22  c", "caf\u00e9 \u2163 \u3000end", "plain text"]
    ids = [sp.encode(t) for t in dtexts]
    refs["bpe-denorm"] = {"ids": ids, "decoded": [base64.b64encode(sp.decode(i).encode()).decode() for i in ids]}
    with open(os.path.join(OUT, "extra.json"), "w") as f:
        json.dump(refs, f, separators=(",", ":"))


if __name__ == "__main__":
    if "--extra" in sys.argv:
        extra()
    else:
        main()
