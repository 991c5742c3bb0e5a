"""The Python package against the C tools' outputs and the project's references.

Run by tests/python.sh (ctest's test_python) on the package as pip installs it:
VKF_REPO_DIR is the repository, VKF_TOOLS_DIR holds the vkformer-* tools."""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import vkformer
from vkformer._ffi import HEADER, LIBRARY, cdef_source

REPO = Path(os.environ.get("VKF_REPO_DIR", Path(__file__).resolve().parents[2]))
TOOLS = Path(os.environ.get("VKF_TOOLS_DIR", REPO / "build"))
DATA = REPO / "tests" / "data"
CATS, DOG = REPO / "models/images/000000039769.png", REPO / "models/images/dog.jpg"
MINILM = REPO / "models/all-MiniLM-L6-v2"


def tool(name: str, *args: str) -> list:
    """A tool's --json output (one element per input), its numbers as float32."""
    r = subprocess.run([str(TOOLS / f"vkformer-{name}"), "-q", "--json", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return f32(json.loads(r.stdout))


def f32(x: object) -> object:
    """Floats as the library's float32 (cJSON prints 15 digits: not always the double)."""
    if isinstance(x, float):
        return float(np.float32(x))
    if isinstance(x, list):
        return [f32(v) for v in x]
    if isinstance(x, dict):
        return {k: f32(v) for k, v in x.items()}
    return x


@pytest.fixture(scope="session")
def ctx() -> vkformer.Context:
    return vkformer.Context()


@pytest.fixture(scope="session")
def vocab_mlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """text/bert_mlm with a made-up WordPiece vocabulary, as tests/common.c's tvocab_model."""
    d = tmp_path_factory.mktemp("mlm")
    for f in ("config.json", "model.safetensors"):
        (d / f).symlink_to(DATA / "text/bert_mlm" / f)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(ord("a") + i) for i in range(26)]
    (d / "vocab.txt").write_text("\n".join(words + [f"w{i}" for i in range(31, 300)]) + "\n")
    (d / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer", "do_lower_case": true}')
    return d


def test_cdef_declares_every_exported_function() -> None:
    declared = set(re.findall(r"\b(vkf_\w+)\s*\(", cdef_source(HEADER.read_text())))
    nm = subprocess.run(["nm", "-D", "--defined-only", LIBRARY], capture_output=True, text=True, check=True).stdout
    exported = set(re.findall(r" T (vkf_\w+)$", nm, re.M))
    assert exported and declared == exported
    for name in declared:
        getattr(vkformer._ffi.lib, name)  # resolves


def test_image_classification_equals_the_tool() -> None:
    pipe = vkformer.pipeline("image-classification")
    want = tool("classify", "--top", "5", str(CATS), str(DOG))
    assert pipe([str(CATS), DOG]) == want
    assert pipe(CATS) == want[0]
    assert pipe(CATS, top_k=2) == want[0][:2]
    assert want[0][0]["label"] == "tabby, tabby cat"


def test_image_arrays(ctx: vkformer.Context) -> None:
    pipe = vkformer.pipeline("image-classification", model=ctx.load(REPO / "models/vit-tiny-patch16-224"))
    rgb = np.random.default_rng(1).integers(0, 256, (120, 90, 3), np.uint8)
    rgba = np.concatenate([rgb, np.full((120, 90, 1), 255, np.uint8)], axis=2)
    assert pipe(rgb) == pipe(rgba) == pipe([rgb, rgb])[1]
    with pytest.raises(TypeError, match="uint8"):
        pipe(rgb.astype(np.float32))


def test_run_equals_the_golden_vit(ctx: vkformer.Context) -> None:
    m = ctx.load(DATA / "golden/vit")
    px = np.fromfile(DATA / "golden/vit/pixel_values.bin", np.float32).reshape(1, 3, 64, 64)
    out = m.run({"pixel_values": px})
    assert set(out) == {t.name for t in m.info.outputs}
    logits = np.fromfile(DATA / "golden/vit/logits.bin", np.float32).reshape(1, 10)
    assert out["logits"].shape == (1, 10) and np.abs(out["logits"] - logits).max() < 1e-4
    assert m.run({"pixel_values": px}, outputs=["logits"])["logits"].tolist() == out["logits"].tolist()


def test_run_text_tensors_from_the_tokenizer(ctx: vkformer.Context) -> None:
    m = ctx.load(DATA / "zeroshot/bert_nli")
    enc = m.tokenizer(["The team won.", "A vote"], padding=True)
    out = m.run(enc, outputs=["logits", "last_hidden_state"])
    assert out["last_hidden_state"].shape == (*enc["input_ids"].shape, m.info.hidden_size)
    one = m.run({k: v[:1] for k, v in m.tokenizer("The team won.").items()})["logits"]
    assert np.abs(one - out["logits"][:1]).max() < 1e-5


def test_text_classification_equals_the_tool() -> None:
    model = DATA / "zeroshot/bert_nli"
    pipe = vkformer.pipeline("text-classification", model=model)
    want = tool("classify", "-m", str(model), "--top", "2", "a b", "The team won.")
    assert pipe(["a b", "The team won."], top_k=2) == want
    assert pipe("a b") == [want[0][0]] and pipe(["a b", "The team won."]) == [w[0] for w in want]


def test_feature_extraction_equals_sentence_transformers() -> None:
    if not (MINILM / "model.safetensors").exists():
        pytest.skip("models/all-MiniLM-L6-v2 missing (scripts/fetch_models.sh)")
    case = json.loads((DATA / "text/minilm/case.json").read_text())
    ref = np.fromfile(DATA / "text/minilm/embeddings.bin", np.float32).reshape(-1, case["dim"])
    emb = vkformer.pipeline("feature-extraction", model=MINILM)(case["sentences"])
    assert emb.shape == ref.shape and emb.dtype == np.float32
    cos = (emb * ref).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.9999
    assert emb.tolist() == tool("embed", "-m", str(MINILM), *case["sentences"])


def test_fill_mask_equals_the_tool(vocab_mlm: Path) -> None:
    pipe = vkformer.pipeline("fill-mask", model=vocab_mlm)
    want = tool("fill-mask", "-m", str(vocab_mlm), "a [MASK] c", "[MASK] b [MASK]")
    assert pipe(["a [MASK] c", "[MASK] b [MASK]"]) == want
    assert pipe("a [MASK] c", top_k=2) == want[0][:2]


def test_zero_shot_image_classification_equals_the_tool() -> None:
    clip = DATA / "clip/zero_shot"
    pipe = vkformer.pipeline("zero-shot-image-classification", model=clip)
    images = [str(clip / "photo0.png"), str(clip / "photo1.png")]
    assert pipe(images, candidate_labels=["cat", "dog"]) == tool("zero-shot", "-m", str(clip), "--labels", "cat,dog",
                                                                 *images)


def test_zero_shot_classification_equals_the_tool() -> None:
    model = DATA / "zeroshot/roberta_nli"
    pipe = vkformer.pipeline("zero-shot-classification", model=model)
    for multi in (False, True):
        want = tool("classify", "-m", str(model), "--labels", "sports, politics", *(["--multi-label"] * multi),
                    "The team won.", "A vote")
        assert pipe(["The team won.", "A vote"], candidate_labels=["sports", "politics"], multi_label=multi) == want
    assert pipe("A vote", "sports, politics")["labels"] == want[1]["labels"]


def test_reranking_equals_the_tool() -> None:
    model = DATA / "zeroshot/cross_encoder"
    pipe = vkformer.pipeline("reranking", model=model)
    docs = ["a", "b c", "d"]
    want = tool("rerank", "-m", str(model), "-Q", "q", *docs)
    assert pipe("q", docs) == [{"corpus_id": w["index"], "score": w["score"]} for w in want]
    assert pipe("q", docs, top_k=1, return_documents=True)[0]["text"] == docs[want[0]["index"]]
    scores = pipe.predict("q", docs)
    assert scores[[w["index"] for w in want]].tolist() == [w["score"] for w in want]


def test_text_generation_and_streaming_equal_the_tool() -> None:
    model = DATA / "gpt2/text"
    pipe = vkformer.pipeline("text-generation", model=model)
    want = tool("generate", "-m", str(model), "-n", "5", "--ignore-eos", "-p", "The café", "-p", "Hello")
    got = pipe(["The café", "Hello"], max_new_tokens=5, ignore_eos=True)
    assert got == [[{"generated_text": w[0]["generated_text"]}] for w in want]
    one = tool("generate", "-m", str(model), "-n", "5", "--ignore-eos", "-p", "The café")[0][0]["generated_text"]
    pieces = list(pipe.stream("The café", max_new_tokens=5, ignore_eos=True))
    assert len(pieces) == 5 and "The café" + "".join(pieces) == one
    for piece in pipe.stream("The café", max_new_tokens=50, ignore_eos=True):
        break  # stopping early stops the generation
    sampled = pipe("Hello", do_sample=True, seed=7, max_new_tokens=4)
    assert sampled == pipe("Hello", do_sample=True, seed=7, max_new_tokens=4)


def test_translation_equals_the_tool() -> None:
    model = DATA / "encdec/marian-text"
    pipe = vkformer.pipeline("translation", model=model)
    want = tool("generate", "-m", str(model), "--task", "translation", "-n", "6", "-p", "Hello world")
    assert pipe("Hello world", max_new_tokens=6) == [{"translation_text": want[0][0]["translation_text"]}]


def test_tokenizer_equals_hf_on_the_corpus() -> None:
    corpus = json.loads((DATA / "tokenizers/corpus.json").read_text())
    texts = [base64.b64decode(t) for t in corpus["texts"]]
    refs = json.loads((DATA / "tokenizers/refs.json").read_text())
    for key in ("bert-base-uncased/json", "gpt2/json", "roberta/legacy", "clip/json"):
        name, form = key.split("/")
        tok = vkformer.Tokenizer(DATA / "tokenizers" / (name if form == "json" else f"legacy/{name}"))
        ref = refs[key]
        assert [tok.encode(t) for t in texts] == ref["ids"], key
        assert [tok.encode(t, add_special_tokens=False) for t in texts] == ref["ids_no_special"], key
        pairs = [[base64.b64decode(x) for x in p] for p in corpus["pairs"]]
        enc = [tok(a, b) for a, b in pairs]
        assert [e["input_ids"][0].tolist() for e in enc] == [p["ids"] for p in ref["pairs"]], key
    tok = vkformer.Tokenizer(DATA / "tokenizers/gpt2")
    assert tok.decode(tok.encode("naïve café 🥲")) == "naïve café 🥲"
    batch = tok(["a b c", "a"], padding=True)
    assert batch["input_ids"].shape == (2, 3) and batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="padding"):
        tok(["a b c", "a"])


def test_errors_raise_with_the_library_message(ctx: vkformer.Context, vocab_mlm: Path) -> None:
    with pytest.raises(vkformer.Error, match="no-such-model") as e:
        ctx.load("/no-such-model")
    assert e.value.status
    with pytest.raises(vkformer.Error, match=r"\[MASK\]"):
        vkformer.pipeline("fill-mask", model=vocab_mlm)("no mask here")
    with pytest.raises(vkformer.Error, match="fill-mask"):  # refused before the weights load
        vkformer.pipeline("fill-mask", model=REPO / "models/vit-tiny-patch16-224")
    with pytest.raises(vkformer.Error, match="nope.png"):
        vkformer.pipeline("image-classification")("nope.png")
    with pytest.raises(vkformer.Error, match="input_ids"):
        ctx.load(DATA / "zeroshot/bert_nli").run({"input_ids": np.array([[1, 10**6]])})
    with pytest.raises(vkformer.Error):
        vkformer.Tokenizer("/no-such-tokenizer")


def test_four_threads_share_a_model(ctx: vkformer.Context) -> None:
    pipe = vkformer.pipeline("zero-shot-classification", model=ctx.load(DATA / "zeroshot/bert_nli"))
    texts = [f"text {i} about sports and votes" for i in range(12)]
    want = [pipe(t, ["sports", "politics", "food"]) for t in texts]
    got: dict[int, list] = {}

    def work(k: int) -> None:
        got[k] = [pipe(t, ["sports", "politics", "food"]) for t in texts]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(got[k] == want for k in range(4))


def test_the_gil_is_released_during_inference() -> None:
    pipe = vkformer.pipeline("image-classification")
    done, ticks = threading.Event(), [0]

    def classify() -> None:
        pipe([str(CATS)] * 4)
        done.set()

    t = threading.Thread(target=classify)
    t.start()
    while not done.is_set():
        ticks[0] += 1
    t.join()
    assert ticks[0] > 10000  # this thread kept running Python while the library worked


LEAK_CHECK = """
import re, sys
from pathlib import Path
import numpy as np, vkformer
m = vkformer.Context().load(sys.argv[1])
pipe, tok = vkformer.pipeline("text-classification", model=m), m.tokenizer
def calls(n):
    for i in range(n):
        pipe(f"call {i}", top_k=2)
        tok.decode(tok(f"call {i}")["input_ids"][0])
        m.run({"input_ids": np.array([[101, 102]])}, outputs=["logits"])
def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))
calls(300)  # warm: buckets recorded, allocator pools grown
r = [rss()]
for _ in range(8):
    calls(250)
    r.append(rss())
print(*[b - a for a, b in zip(r, r[1:])])
"""


def test_no_leak_over_1000_calls() -> None:
    # in a process of its own, so that pytest's own allocations do not count
    out = subprocess.run([sys.executable, "-c", LEAK_CHECK, str(DATA / "zeroshot/bert_nli")], capture_output=True,
                         text=True, check=True).stdout
    growth = [int(x) for x in out.split()]
    # a leak grows every window; the allocator grows now and then by a step of about
    # 1 MiB, bounded (seen: three such steps over the first 4,000 calls, then none)
    assert sorted(growth)[3] < 256 and sum(growth) < 6144, f"RSS grew {growth} KiB per 250 calls"


def test_a_context_outlives_its_models() -> None:
    ctx = vkformer.Context()
    m = ctx.load(DATA / "zeroshot/bert_nli")
    ctx.close()  # freed with its last model
    assert m.info.num_labels == 3
    # at exit the collector meets model and context in a cycle (globals, a lambda): no crash
    code = f"import vkformer\nctx = vkformer.Context()\nm = ctx.load({str(DATA / 'zeroshot/bert_nli')!r})\nf = lambda: (ctx, m)\n"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
