#!/usr/bin/env python3
"""HF `tokenizers` (Rust) on the same text and in the same two ways as
`vkformer-bench tokenize`: every line one encoding (encode_batch, so Python's
per-call cost stays out) and the whole text as one string; one thread, no
special tokens, median of 5 passes after one warm-up. The SentencePiece
.model files (spm/t5, spm/bpe) are timed with the `sentencepiece` library
itself (C++, a list of lines in one call, num_threads=1): what the slow
transformers tokenizers run underneath, without their Python around it.

Usage: tools/.venv/bin/pip install tokenizers sentencepiece
       RAYON_NUM_THREADS=1 tools/.venv/bin/python tools/bench_hf_tokenize.py kjv.txt
"""
import os
import statistics
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "tokenizers")


def main():
    path = sys.argv[1]
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    print(f"text: {path}, {len(raw) / 1e6:.2f} MB, {len(lines)} lines; HF tokenizers, RAYON_NUM_THREADS="
          f"{os.environ['RAYON_NUM_THREADS']}\n")
    print(f"{'tokenizer':28} {'input':7} {'MB/s':>10} {'tokens/s':>12} {'tokens':>10} {'ms':>10}")
    for name in ("bert-base-uncased", "gpt2", "spm/t5-json", "spm/t5", "spm/bpe-json", "spm/bpe"):
        d = os.path.join(DATA, name)
        model = [f for f in ("spiece.model", "tokenizer.model") if os.path.exists(os.path.join(d, f))]
        if model and not name.endswith("-json"):
            import sentencepiece
            sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(d, model[0]))

            def encode_lines():
                return sum(len(x) for x in sp.encode(lines, num_threads=1))

            def encode_whole():
                return len(sp.encode(text))
        else:
            tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()

            def encode_lines():
                return sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))

            def encode_whole():
                return len(tok.encode(text, add_special_tokens=False).ids)
        for mode in ("lines", "whole"):
            times, n = [], 0
            for r in range(6):
                t0 = time.perf_counter()
                n = encode_lines() if mode == "lines" else encode_whole()
                dt = time.perf_counter() - t0
                if r:
                    times.append(dt)
            med = statistics.median(times)
            print(f"{name:28} {mode:7} {len(raw) / 1e6 / med:10.2f} {n / med:12.0f} {n:10d} {med * 1e3:10.1f}")


if __name__ == "__main__":
    main()
