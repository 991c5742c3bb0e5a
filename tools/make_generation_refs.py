#!/usr/bin/env python3
"""Generation-option references for tests/test_gpt2.c and tests/test_tools.c,
made by HF `transformers` `generate` on the GPT-2 cases tools/make_gpt2_refs.py
wrote (their checkpoints are loaded, not rebuilt):

  tests/data/gpt2/original/options.json
      greedy ids with repetition_penalty 1.3 and 0.7 (HF's
      RepetitionPenaltyLogitsProcessor) for the case's prompt
  tests/data/gpt2/text/options.json
      greedy ids with repetition_penalty 1.5 for each prompt (one at a time),
      and with stop_strings (HF's StopStringCriteria, the tokenizer passed to
      generate): the ids, the decoded text, for stop strings that end inside
      a token, span two tokens, or never occur

Every run uses eos_token_id None, as the cases do (the tests pass ignore_eos).

Usage: python3 -m venv tools/.venv && tools/.venv/bin/pip install torch transformers safetensors
       tools/.venv/bin/python tools/make_generation_refs.py
"""
import json
import os

import torch
from transformers import GPT2LMHeadModel, GPT2TokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = os.path.join(ROOT, "tests", "data", "gpt2")


def load(name):
    d = os.path.join(CASES, name)
    model = GPT2LMHeadModel.from_pretrained(d, attn_implementation="eager").eval()
    with open(os.path.join(d, "case.json")) as f:
        return d, model, json.load(f)


def greedy(model, ids, new, **kw):
    out = model.generate(torch.tensor([ids]), max_new_tokens=new, do_sample=False, eos_token_id=None, pad_token_id=0, **kw)
    return out[0, len(ids):].tolist()


def main():
    torch.manual_seed(0)
    d, m, case = load("original")
    prompt, new = case["prompts"][0], case["new_tokens"]
    out = {"prompt": prompt, "new_tokens": new,
           "penalty": [{"repetition_penalty": p, "ids": greedy(m, prompt, new, repetition_penalty=p)} for p in (1.3, 0.7)]}
    with open(os.path.join(d, "options.json"), "w") as f:
        json.dump(out, f, indent=1)

    d, m, case = load("text")
    tok = GPT2TokenizerFast.from_pretrained(d)
    new = case["new_tokens"]
    out = {"new_tokens": new, "penalty": 1.5,
           "penalty_ids": [greedy(m, p, new, repetition_penalty=1.5) for p in case["prompts"]], "stops": []}
    # prompt 1 ("The café") goes on " 794 NicotineAbAbAbAbAbAb MUCH Sens" without stops
    prompt = case["prompts"][1]
    for stops in (["otine"], ["cot"], ["bAbA"], ["never here", "AbAb"], ["never here"]):
        ids = greedy(m, prompt, new, stop_strings=stops, tokenizer=tok)
        out["stops"].append({"prompt": 1, "stop_strings": stops, "ids": ids, "text": tok.decode(ids, skip_special_tokens=True)})
    with open(os.path.join(d, "options.json"), "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
    print(json.dumps(out, ensure_ascii=False)[:2000])


if __name__ == "__main__":
    main()
