#!/usr/bin/env python3
"""Reference token ids for tests/test_tokenizer.c: what Hugging Face
`transformers` (AutoTokenizer, i.e. the Rust `tokenizers` backend) produces on a
hostile corpus, for every tokenizer the project ships, each loaded from its
tokenizer.json and from the legacy files (vocab.txt / vocab.json + merges.txt).

Writes tests/data/tokenizers/:
  gpt2/tokenizer.json         the GPT-2 fast tokenizer as HF's gpt2 repo has it
                              (ByteLevel pre-tokenizer, post-processor, decoder)
  corpus.json                 the texts, base64 of their raw bytes (some are not
                              valid UTF-8: HF sees bytes.decode("utf-8", "replace"))
  refs.json                   per tokenizer and file form: ids (with special
                              tokens), ids without special tokens, byte offsets,
                              decoded text; pairs, truncation and batch padding

Usage: python3 -m venv tools/.venv && tools/.venv/bin/pip install transformers tokenizers
       tools/.venv/bin/python tools/make_tokenizer_refs.py
"""
import base64
import json
import os
import shutil
import tempfile

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "tokenizers")

S = lambda s: s.encode("utf-8")
PROSE = ("The quick brown fox jumps over the lazy dog. It wasn't the first time; "
         "the dog, unimpressed, yawned and went back to sleep under the old oak tree. ")

CORPUS = [
    S("Hello, world!"),
    S("naïve café résumé Ångström Zoë crème brûlée façade"),
    S("e\u0301 a\u0308 o\u0302\u0323 Z\u0335\u0321\u034e combining \u0301leading"),
    S("我爱北京天安门。東京は日本の首都です。한국어 텍스트 豈 更"),
    S("ภาษาไทยเป็นภาษาที่สวยงาม"),
    S("مرحبا بالعالم، كيف حالك؟ שלום עולם"),
    S("हिन्दी भाषा বাংলা ಕನ್ನಡ"),
    S("👨\u200d👩\u200d👧\u200d👦 family 🏳️\u200d🌈 flag 🇺🇸🇯🇵 👍🏽 skin 🥲 new 😀😃"),
    S("a  b   c\t\td\n\n\ne    "),
    S("   leading and trailing   "),
    S("no\u00a0break\u202fthin\u3000ideographic\u2003em"),
    S("zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u2060wj\u00adsoft\u180emvs"),
    b"ctrl\x01\x02\x7f\x1b[31mred\x00nul\x08bs",
    S("\ufeffBOM start"),
    S("ＦＵＬＬＷＩＤＴＨ ｆｏｒｍｓ １２３ ｶﾞｷﾞ"),
    S("ﬁnance ﬂow ﬀ ǆ Ǆ ǅ ㎏ ℌ ① ⁵ 𝐇𝐞𝐥𝐥𝐨"),
    S("İstanbul ıstakoz İI ı i İ"),
    S("ΣΊΣΥΦΟΣ σοφός Οδυσσεύς ΌΣΟΣ"),
    S("STRAẞE straße Maße"),
    S("a" * 150 + " " + "supercalifragilistic" * 8 + " ok"),
    S("[CLS] hello [SEP] world [MASK] <|endoftext|> <|startoftext|> [PAD][UNK]"),
    S("x<|endoftext|>y[SEP]z<|startoftext|>w"),
    S("https://example.com/path?q=1&x=y#frag mailto:user@example.org"),
    S("def f(x):\n    return x**2 + 1  # comment\n\tprint(f'{x!r}')"),
    S("line1\r\nline2\rline3\n\nline4\r\n"),
    S(""),
    b"bad \xff\xfe bytes \xc3\x28 \xe2\x82 \xf0\x9f\x98 trunc \xed\xa0\x80 surrogate \xc0\xaf overlong\xe2",
    S("1234567890 3.14159 1,000,000 ½ ² ٣ 12th"),
    S("I'm can't we'll they've she'd it's O'Neil 'quoted' '' I'M DON'T"),
    S("Hello!!! What??? ... --- ((nested)) \"quotes\" «guillemets» „low“ — – …"),
    S("   \n\t  "),
    S("     "),
    S("☺️ ❤️ ✔︎ \U0001F1E6"),
    S("private\ue000 unassigned\u0378 nonchar\uffff plane15\U000F0000"),
    S("\x0b\x0c\x85 next \u2028 ls \u2029 ps"),
    S("##ing ## hash#tag @mention $100 50% a&b"),
    S("Don't you love 🤗 Transformers? We sure do."),
    S(PROSE * 3),
    S("word " * 40 + "end"),
    S("CamelCaseIdentifier snake_case_name kebab-case-name SCREAMING_CASE"),
    S("I said <ent> hello<ent>world  <ent>  xyzzy axyzzy xyzzyb XYZZY, Naïve CAFÉ cafe\u0301 my-token! zyxwv"),
    S("Hello <ent> NEWWORD newwords x<ent>y  <ent>"),
]


def random_texts(n, seed=1234):
    """Seeded mixes of the corpus's hard pieces: every script, mark, space and
    special string next to each other in orders nobody would write by hand."""
    import random
    rng = random.Random(seed)
    atoms = ["the", "Hello", "WORLD", "naïve", "e\u0301", "\u0308", "我爱", "東京", "한국", "ภาษา", "مرحبا", "हिन्दी",
             "👨\u200d👩\u200d👧", "🇯🇵", "👍🏽", "🥲", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u200b",
             "\ufeff", "\x00", "\x1b", "ＦＵＬＬ", "ﬁ", "İ", "ı", "Σ", "ς", "ẞ", "[SEP]", "[MASK]", "<|endoftext|>",
             "<|startoftext|>", "'s", "'ll", "don't", "123", "4.5", "½", "##", "...", "!?", "\"", "«", "—", "http://x.y/z?a=b",
             "snake_case", "CamelCase", "x" * 30, "\ue000", "\u0378", "ǅ", "𝐇", "ｶﾞ"]
    out = []
    for _ in range(n):
        k = rng.randint(1, 12)
        out.append("".join(rng.choice(atoms) for _ in range(k)).encode("utf-8"))
    return out


def invalid_texts(n, seed=99):
    """Bytes that are not UTF-8 in every way: lone continuation bytes, overlong
    forms, encoded surrogates, bytes over F4, sequences cut short, mid-word
    and at the end; HF sees them through bytes.decode("utf-8", "replace")."""
    import random
    rng = random.Random(seed)
    bad = [b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xed\xbf\xbf",
           b"\xf0\x80\x80\x80", b"\xf4\x90\x80\x80", b"\xf5", b"\xff", b"\xfe", b"\xe2\x82", b"\xf0\x9f\x98",
           b"\xc3", b"\xe2", b"\xf0\x9f"]
    good = [b"word", b" ", b"caf\xc3\xa9", b"\xf0\x9f\x98\x80", b"\xe6\x97\xa5", b"[SEP]", b"<|endoftext|>", b"\n"]
    out = []
    for _ in range(n):
        out.append(b"".join(rng.choice(bad if rng.random() < 0.4 else good) for _ in range(rng.randint(1, 10))))
    return out


CORPUS += random_texts(160)
CORPUS += invalid_texts(24)

PAIRS = [
    (S("How old are you?"), S("I am six years old.")),
    (S("A short one"), S(PROSE)),
    (S("naïve café"), S("İstanbul 🥲")),
    (S(""), S("only the second")),
]
TRUNC_CASES = [  # (first, second or None, max_length)
    (S(PROSE), None, 10),
    (S(PROSE), S("short second text"), 16),
    (S("short first"), S(PROSE), 16),
    (S(PROSE), S(PROSE * 2), 20),
    (S(PROSE * 2), S(PROSE), 21),
    (S("a b c d e f"), S("g h i j k l"), 9),
]
BATCH = [S("Hello world"), S(PROSE), S(""), S("naïve café 🥲")]

TOKENIZERS = ["bert-base-uncased", "gpt2", "clip", "roberta", "bert-added", "gpt2-ignore-merges", "bert-4x"]
JSON_ONLY = ("bert-added", "gpt2-ignore-merges")
# legacy/bert-4x (hand-written): a transformers 4.x save, with added_tokens_decoder
# in tokenizer_config.json (an lstrip special and a normalized plain token beyond
# vocab.txt) and special_tokens_map.json
LEGACY_ONLY = ("bert-4x",)


def write_gpt2_tokenizer_json():
    """The GPT-2 fast tokenizer as the HF gpt2 repository ships it."""
    d = os.path.join(DATA, "gpt2")
    tok = Tokenizer(models.BPE.from_file(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    tok.save(os.path.join(d, "tokenizer.json"))


def write_roberta_files():
    """A RoBERTa-style tokenizer: GPT-2's BPE plus RoBERTa's five special
    tokens (real checkpoints order their ids differently; the pipeline is the
    same). Legacy files and the tokenizer.json transformers converts them to."""
    d = os.path.join(DATA, "roberta")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(DATA, "gpt2", "vocab.json")) as f:
        vocab = json.load(f)
    for t in ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]:
        vocab[t] = len(vocab)
    with open(os.path.join(d, "vocab.json"), "w") as f:
        json.dump(vocab, f, ensure_ascii=False)
    shutil.copy(os.path.join(DATA, "gpt2", "merges.txt"), d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"model_type": "roberta"}, f)
    tmp = tempfile.mkdtemp()
    for f in ("vocab.json", "merges.txt", "config.json"):
        shutil.copy(os.path.join(d, f), tmp)
    tok = AutoTokenizer.from_pretrained(tmp)
    tok.backend_tokenizer.save(os.path.join(d, "tokenizer.json"))
    shutil.rmtree(tmp)


def write_bert_added():
    """BERT with added tokens of every kind: lstrip/rstrip, single_word, and
    normalized ones (matched after lowercasing and accent stripping)."""
    from tokenizers import AddedToken
    d = os.path.join(DATA, "bert-added")
    os.makedirs(d, exist_ok=True)
    tok = Tokenizer.from_file(os.path.join(DATA, "bert-base-uncased", "tokenizer.json"))
    tok.add_special_tokens([AddedToken("<ent>", lstrip=True, rstrip=True, normalized=False)])
    tok.add_tokens([AddedToken("xyzzy", single_word=True, normalized=True), AddedToken("Naïve Café", normalized=True),
                    AddedToken("my-token", normalized=False)])
    tok.save(os.path.join(d, "tokenizer.json"))
    shutil.copy(os.path.join(DATA, "bert-base-uncased", "tokenizer_config.json"), d)


def write_gpt2_ignore_merges():
    """GPT-2 with BPE ignore_merges (as Llama 3 uses): a word the vocabulary
    has is one token, whatever the merges would make of it."""
    d = os.path.join(DATA, "gpt2-ignore-merges")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(DATA, "gpt2", "tokenizer.json")) as f:
        j = json.load(f)
    j["model"]["ignore_merges"] = True
    # a word no merge sequence reaches, so ignore_merges decides its ids
    j["model"]["vocab"]["Ġzyxwv"] = max(j["model"]["vocab"].values()) + 1
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(j, f, ensure_ascii=False)


def load(name, form):
    """AutoTokenizer on a directory holding only one file form."""
    src = os.path.join(DATA, "legacy", name) if name in LEGACY_ONLY else os.path.join(DATA, name)
    tmp = tempfile.mkdtemp()
    for f in os.listdir(src):
        if (f == "tokenizer.json") != (form == "json") and f in ("tokenizer.json", "vocab.txt", "vocab.json", "merges.txt"):
            continue
        shutil.copy(os.path.join(src, f), tmp)
    tok = AutoTokenizer.from_pretrained(tmp)
    shutil.rmtree(tmp)
    return tok


def text(b):
    return b.decode("utf-8", "replace")


def byte_offsets(s, offsets):
    """HF's char offsets into s as byte offsets into s.encode('utf-8')."""
    pos = [0]
    for ch in s:
        pos.append(pos[-1] + len(ch.encode("utf-8")))
    return [[pos[a], pos[b]] for a, b in offsets]


def refs_for(tok):
    r = {"ids": [], "ids_no_special": [], "offsets": [], "decoded": []}
    for b in CORPUS:
        s = text(b)
        e = tok(s, return_offsets_mapping=True)
        r["ids"].append(e["input_ids"])
        r["ids_no_special"].append(tok(s, add_special_tokens=False)["input_ids"])
        r["offsets"].append(byte_offsets(s, e["offset_mapping"]))
        r["decoded"].append(base64.b64encode(tok.decode(e["input_ids"]).encode("utf-8")).decode())
    r["pairs"] = []
    for a, b in PAIRS:
        e = tok(text(a), text(b), return_token_type_ids=True)
        r["pairs"].append({"ids": e["input_ids"], "type_ids": e["token_type_ids"]})
    r["truncation"] = []
    for a, b, n in TRUNC_CASES:
        e = tok(text(a), text(b) if b else None, truncation="longest_first", max_length=n,
                return_token_type_ids=True)
        r["truncation"].append({"ids": e["input_ids"], "type_ids": e["token_type_ids"]})
    r["batch"] = {}
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or "<|endoftext|>"  # as users of GPT-2 do to pad a batch
    for side in ("right", "left"):
        tok.padding_side = side
        e = tok([text(b) for b in BATCH], padding=True)
        r["batch"][side] = {"ids": e["input_ids"], "attention_mask": e["attention_mask"]}
    return r


def main():
    os.makedirs(DATA, exist_ok=True)
    write_gpt2_tokenizer_json()
    write_roberta_files()
    write_bert_added()
    write_gpt2_ignore_merges()
    corpus = {
        "texts": [base64.b64encode(b).decode() for b in CORPUS],
        "pairs": [[base64.b64encode(a).decode(), base64.b64encode(b).decode()] for a, b in PAIRS],
        "truncation": [[base64.b64encode(a).decode(), base64.b64encode(b).decode() if b else None, n]
                       for a, b, n in TRUNC_CASES],
        "batch": [base64.b64encode(b).decode() for b in BATCH],
    }
    with open(os.path.join(DATA, "corpus.json"), "w") as f:
        json.dump(corpus, f, indent=0)
    out = {}
    for name in TOKENIZERS:
        forms = ("json",) if name in JSON_ONLY else ("legacy",) if name in LEGACY_ONLY else ("json", "legacy")
        for form in forms:
            tok = load(name, form)
            out[f"{name}/{form}"] = refs_for(tok)
            print(f"{name}/{form}: {type(tok).__name__}, {len(CORPUS)} texts")
        if len(forms) < 2:
            continue
        a, b = out[f"{name}/json"]["ids"], out[f"{name}/legacy"]["ids"]
        if a != b:
            print(f"note: {name}: json and legacy forms differ on {sum(x != y for x, y in zip(a, b))} texts")
    with open(os.path.join(DATA, "refs.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
