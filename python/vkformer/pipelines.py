"""``vkformer.pipeline(task, model=...)``: Hugging Face pipeline-shaped calls.

Every pipeline returns what ``transformers.pipeline`` returns for the same input (one
input: its result; a list: a list of results), except ``feature-extraction``, which
returns sentence embeddings as sentence-transformers' ``encode`` does (numpy ``[dim]``
for a text, ``[n, dim]`` for a list). Scores, top-k, softmax and decoding are the C
library's; this module only converts.
"""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ._core import Context, Error, Model, PathLike, _str, check, cstrings, fspath
from ._ffi import ffi, lib

_HERE = Path(__file__).resolve().parent


def bundled_models() -> Path:
    """The folder holding the bundled ViT-Tiny (``vit-tiny-patch16-224``) and the example
    images (``images/000000039769.png``, the cats photo, and ``images/dog.jpg``)."""
    for d in (_HERE / "models", _HERE.parent.parent / "models"):  # installed; a source tree
        if (d / "vit-tiny-patch16-224").is_dir():
            return d
    raise Error(f"the bundled models are not in {_HERE / 'models'}", "a file is missing or unreadable")


def _scores(arr: Any, n: int) -> list[dict[str, Any]]:
    return [{"label": _str(s.label), "score": float(s.prob)} for s in arr[0:n]]


def _is_list(x: Any) -> bool:
    return isinstance(x, (list, tuple))


class Pipeline:
    """A model and a task; call it on one input or a list of them."""

    task = ""

    def __init__(self, model: Model):
        self.model = model

    def _texts(self, inputs: str | Sequence[str]) -> tuple[list[str], bool]:
        return ([inputs], True) if isinstance(inputs, str) else (list(inputs), False)

    def __repr__(self) -> str:
        return f"<vkformer pipeline {self.task!r} {self.model.path!r}>"


class ImageClassificationPipeline(Pipeline):
    """``pipe(image, top_k=5)`` -> ``[{"label", "score"}, ...]`` best first; a list of images
    gives a list of those. An image is a path (JPEG, PNG, BMP, GIF), a uint8 numpy array
    ``[height, width, 3 or 4]`` (RGB or RGBA, passed without a copy when C-contiguous) or a
    PIL image."""

    task = "image-classification"

    def __call__(self, images: Any, top_k: int = 5) -> list[Any]:
        single = not _is_list(images)
        items = [images] if single else list(images)
        k = max(1, min(top_k, self.model.info.num_labels))
        top = ffi.new("vkf_class_score[]", max(1, len(items) * k))
        if all(isinstance(x, (str, os.PathLike)) for x in items):
            paths, keep = cstrings(fspath(x) for x in items)
            self.model._check(lib.vkf_classify_files(self.model._ptr, paths, len(items), top, k))
        else:
            arrays = [self._pixels(x) for x in items]
            imgs = ffi.new("vkf_image[]", len(arrays))
            for im, a in zip(imgs, arrays):
                im.data, im.height, im.width = ffi.from_buffer(a), a.shape[0], a.shape[1]
                im.format = lib.VKF_PIXELS_RGB8 if a.shape[2] == 3 else lib.VKF_PIXELS_RGBA8
            self.model._check(lib.vkf_classify_images(self.model._ptr, imgs, len(arrays), top, k))
        out = [_scores(top + i * k, k) for i in range(len(items))]
        return out[0] if single else out

    @staticmethod
    def _pixels(x: Any) -> np.ndarray:
        if isinstance(x, (str, os.PathLike)):
            raise TypeError("a batch mixes paths and pixel arrays: pass one kind")
        if hasattr(x, "convert") and not isinstance(x, np.ndarray):  # a PIL image
            x = np.asarray(x.convert("RGB"))
        a = np.ascontiguousarray(x)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] not in (3, 4):
            raise TypeError(f"an image array must be uint8 [height, width, 3 or 4], not {a.dtype} {list(a.shape)}")
        return a


class TextClassificationPipeline(Pipeline):
    """``pipe(text)`` -> ``[{"label", "score"}]`` (the best label); ``top_k=k`` gives the k
    best; a list of texts gives one result each (one dict each without ``top_k``, as HF).
    Sentence pairs: ``pipe({"text": a, "text_pair": b})`` or ``text_pair=``."""

    task = "text-classification"

    def __call__(self, inputs: Any, top_k: int | None = None, text_pair: str | Sequence[str] | None = None) -> Any:
        single = isinstance(inputs, (str, dict))
        items = [inputs] if single else list(inputs)
        texts = [x["text"] if isinstance(x, dict) else x for x in items]
        pairs = [x.get("text_pair") if isinstance(x, dict) else None for x in items]
        if text_pair is not None:
            pairs = [text_pair] if isinstance(text_pair, str) else list(text_pair)
        k = max(1, min(top_k or 1, self.model.info.num_labels))
        top = ffi.new("vkf_class_score[]", max(1, len(texts) * k))
        ctexts, k1 = cstrings(texts)
        cpairs, k2 = cstrings(p or "" for p in pairs) if any(p is not None for p in pairs) else (ffi.NULL, [])
        self.model._check(lib.vkf_classify_texts(self.model._ptr, ctexts, cpairs, len(texts), top, k))
        out: list[Any] = [_scores(top + i * k, k) for i in range(len(texts))]
        if top_k is None:  # HF: the best label, a dict per text (a list of one for a lone string)
            out = [r[0] for r in out]
            return out if not single else (out[0] if isinstance(inputs, dict) else out)
        return out[0] if single else out


class FeatureExtractionPipeline(Pipeline):
    """Sentence embeddings as sentence-transformers' ``encode``: a float32 numpy array,
    ``[dim]`` for a text and ``[n, dim]`` for a list, pooled and normalised as the model
    folder says (``pooling="mean"|"cls"|"max"|"mean_sqrt"``, ``normalize=True|False``
    override it). CLIP models embed texts with their text tower; ``images=[paths]``
    embeds images instead."""

    task = "feature-extraction"
    _POOL = {None: lib.VKF_POOL_DEFAULT, "mean": lib.VKF_POOL_MEAN, "cls": lib.VKF_POOL_CLS,
             "max": lib.VKF_POOL_MAX, "mean_sqrt": lib.VKF_POOL_MEAN_SQRT}

    def __call__(self, inputs: str | Sequence[str] | None = None, pooling: str | None = None,
                 normalize: bool | None = None, max_tokens: int = 0, images: Sequence[PathLike] | None = None
                 ) -> np.ndarray:
        dim = self.model.info.embedding_size
        if images is not None:
            out = np.empty((len(images), dim), np.float32)
            paths, keep = cstrings(fspath(p) for p in images)
            self.model._check(lib.vkf_embed_image_files(self.model._ptr, paths, len(images), ffi.from_buffer("float[]", out)))
            return out
        texts, single = self._texts(inputs or [])
        opt = ffi.new("vkf_embed_options *")
        opt.pooling = self._POOL[pooling]
        opt.normalize = {None: lib.VKF_DEFAULT, True: lib.VKF_ON, False: lib.VKF_OFF}[normalize]
        opt.max_tokens = max_tokens
        out = np.empty((len(texts), dim), np.float32)
        ctexts, keep = cstrings(texts)
        self.model._check(lib.vkf_embed(self.model._ptr, ctexts, len(texts), opt, ffi.from_buffer("float[]", out)))
        return out[0] if single else out


class FillMaskPipeline(Pipeline):
    """``pipe(text, top_k=5)`` -> ``[{"score", "token", "token_str", "sequence"}, ...]`` for a
    text with one mask token; a list of such lists (one per mask) for several masks; a
    list of texts gives one result each."""

    task = "fill-mask"

    def __call__(self, inputs: str | Sequence[str], top_k: int = 5) -> list[Any]:
        texts, single = self._texts(inputs)
        out = [self._one(t, top_k) for t in texts]
        return out[0] if single else out

    def _one(self, text: str, k: int) -> list[Any]:
        tok = self.model.tokenizer
        assert tok is not None  # a fill-mask model loads with its tokenizer
        enc = tok.encode(text)
        masks = max(1, enc.count(tok.info["mask_id"]))
        res = ffi.new("vkf_fill_mask_result[]", masks * k)
        count = ffi.new("uint32_t *")
        self.model._check(lib.vkf_fill_mask(self.model._ptr, text.encode(), k, res, masks * k, count))
        groups: list[list[dict[str, Any]]] = []
        for r in res[0:count[0]]:
            if r.mask == len(groups):
                groups.append([])
            ids = list(enc)
            at = [i for i, t in enumerate(enc) if t == tok.info["mask_id"]][r.mask]
            ids[at] = r.token  # HF's "sequence": the ids with this mask filled, decoded
            groups[-1].append({"score": float(r.score), "token": r.token, "token_str": _str(r.token_str),
                               "sequence": tok.decode(ids, skip_special_tokens=True)})
        return groups[0] if len(groups) == 1 else groups


class ZeroShotImageClassificationPipeline(Pipeline):
    """CLIP: ``pipe(image_path, candidate_labels=[...], hypothesis_template="This is a photo
    of {}.")`` -> ``[{"score", "label"}, ...]`` best first; a list of paths gives a list."""

    task = "zero-shot-image-classification"

    def __call__(self, images: PathLike | Sequence[PathLike], candidate_labels: Sequence[str],
                 hypothesis_template: str | None = None) -> list[Any]:
        single = not _is_list(images)
        labels, keep = cstrings(candidate_labels)
        tmpl = hypothesis_template.encode() if hypothesis_template else ffi.NULL
        out = []
        for path in [images] if single else images:
            scores = ffi.new("vkf_class_score[]", max(1, len(candidate_labels)))
            self.model._check(lib.vkf_zero_shot(self.model._ptr, fspath(path), labels, len(candidate_labels), tmpl,
                                                scores))
            out.append([{"score": float(s.prob), "label": _str(s.label)} for s in scores[0:len(candidate_labels)]])
        return out[0] if single else out


class ZeroShotClassificationPipeline(Pipeline):
    """NLI models: ``pipe(text, candidate_labels=[...], hypothesis_template="This example is
    {}.", multi_label=False)`` -> ``{"sequence", "labels", "scores"}`` best first; a list of
    texts gives a list."""

    task = "zero-shot-classification"

    def __call__(self, sequences: str | Sequence[str], candidate_labels: Sequence[str] | str,
                 hypothesis_template: str | None = None, multi_label: bool = False) -> Any:
        texts, single = self._texts(sequences)
        if isinstance(candidate_labels, str):  # HF takes "a, b, c" too
            candidate_labels = [x.strip() for x in candidate_labels.split(",") if x.strip()]
        labels, keep = cstrings(candidate_labels)
        tmpl = hypothesis_template.encode() if hypothesis_template else ffi.NULL
        out = []
        for t in texts:
            s = ffi.new("vkf_class_score[]", max(1, len(candidate_labels)))
            self.model._check(lib.vkf_zero_shot_text(self.model._ptr, t.encode(), labels, len(candidate_labels), tmpl,
                                                     int(multi_label), s))
            n = len(candidate_labels)
            out.append({"sequence": t, "labels": [_str(x.label) for x in s[0:n]], "scores": [float(x.prob) for x in s[0:n]]})
        return out[0] if single else out


class RerankingPipeline(Pipeline):
    """Cross-encoders, as sentence-transformers' ``CrossEncoder``:
    ``pipe(query, documents, top_k=None, return_documents=False)`` is ``.rank``:
    ``[{"corpus_id", "score"(, "text")}, ...]`` best first; ``pipe.predict(query, documents)``
    the scores in document order (numpy ``[n]``, ``[n, labels]`` for several logits)."""

    task = "reranking"

    def __call__(self, query: str, documents: Sequence[str], top_k: int | None = None,
                 return_documents: bool = False) -> list[dict[str, Any]]:
        n = len(documents)
        m = min(top_k or n, n)
        docs, keep = cstrings(documents)
        res = ffi.new("vkf_rank_result[]", max(1, m))
        self.model._check(lib.vkf_rank(self.model._ptr, query.encode(), docs, n, top_k or 0, res))
        out = [{"corpus_id": r.corpus_id, "score": float(r.score)} for r in res[0:m]]
        if return_documents:
            for r in out:
                r["text"] = documents[r["corpus_id"]]
        return out

    def predict(self, query: str, documents: Sequence[str]) -> np.ndarray:
        labels = max(1, self.model.info.num_labels)
        out = np.empty((len(documents), labels), np.float32)
        docs, keep = cstrings(documents)
        self.model._check(lib.vkf_rerank(self.model._ptr, query.encode(), docs, len(documents), ffi.from_buffer("float[]", out)))
        return out[:, 0] if labels == 1 else out


class TextGenerationPipeline(Pipeline):
    """Causal LMs (GPT-2) and encoder-decoders (BART, Marian, T5).

    ``pipe(prompt, max_new_tokens=..., do_sample=False, temperature=, top_k=, top_p=, seed=,
    repetition_penalty=, stop_strings=[...], num_beams=, ...)`` -> ``[{"generated_text"}]``
    (the prompt and its continuation for a causal LM, as HF's ``return_full_text=True``; the
    new text for encoder-decoders); a list of prompts is generated as one batch and gives a
    list of those. ``translation`` / ``summarization`` name the field ``translation_text`` /
    ``summary_text``. ``pipe.stream(prompt, ...)`` yields the new text piece by piece."""

    task = "text-generation"
    _FIELD = {"translation": "translation_text", "summarization": "summary_text"}

    def __init__(self, model: Model, task: str = "text-generation"):
        super().__init__(model)
        self.task = task
        self.field = self._FIELD.get(task.split("_")[0], "generated_text")
        self.full_text = model.info.task == "text-generation"  # a causal LM, not an encoder-decoder

    def _desc(self, kw: dict[str, Any], keep: list[Any]) -> Any:
        d = ffi.new("vkf_generate_desc *")
        keep.append(d)
        sample = kw.pop("do_sample", None)
        for name in ("max_new_tokens", "top_k", "top_p", "seed", "repetition_penalty", "num_beams",
                     "length_penalty", "no_repeat_ngram_size", "min_new_tokens"):
            v = kw.pop(name, None)
            if v is not None:
                setattr(d, name, v)
                bit = {"num_beams": "NUM_BEAMS", "length_penalty": "LENGTH_PENALTY", "min_new_tokens": "MIN_NEW_TOKENS",
                       "no_repeat_ngram_size": "NO_REPEAT_NGRAM", "max_new_tokens": "MAX_NEW_TOKENS"}.get(name)
                d.explicit_fields |= getattr(lib, "VKF_GEN_" + bit) if bit else 0
        temperature = kw.pop("temperature", None)
        d.temperature = (temperature or 1.0) if sample or (sample is None and temperature) else 0.0
        if d.temperature and kw.get("top_k") is None and not d.top_k:
            d.top_k = 50  # HF's generation default when sampling
        es = kw.pop("early_stopping", None)
        d.early_stopping = {None: 0, True: lib.VKF_EARLY_STOPPING_TRUE, False: lib.VKF_EARLY_STOPPING_FALSE,
                            "never": lib.VKF_EARLY_STOPPING_NEVER}[es]
        d.ignore_eos = int(bool(kw.pop("ignore_eos", False)))
        stops = kw.pop("stop_strings", None)
        if stops:
            stops = [stops] if isinstance(stops, str) else stops
            arr, k = cstrings(stops)
            keep += [arr, k]
            d.stop_strings, d.n_stop_strings = arr, len(stops)
        if self.task not in ("text-generation", "text2text-generation"):
            keep.append(ffi.new("char[]", self.task.encode()))
            d.task = keep[-1]
        if kw:
            raise TypeError(f"unknown generation arguments: {', '.join(kw)}")
        return d

    def _generate(self, prompts: list[str], d: Any) -> list[str]:
        cprompts, keep = cstrings(prompts)
        g = ffi.new("vkf_generation[]", len(prompts))
        self.model._check(lib.vkf_generate(self.model._ptr, cprompts, len(prompts), d, g))
        try:
            return [ffi.unpack(x.text, x.text_len).decode("utf-8", "replace") if x.text != ffi.NULL else "" for x in g]
        finally:
            lib.vkf_generation_free(g, len(prompts))

    def __call__(self, text_inputs: str | Sequence[str], **generate_kwargs: Any) -> list[Any]:
        prompts, single = self._texts(text_inputs)
        keep: list[Any] = []
        texts = self._generate(prompts, self._desc(dict(generate_kwargs), keep))
        out = [[{self.field: (p + t) if self.full_text else t}] for p, t in zip(prompts, texts)]
        return out[0] if single else out

    def stream(self, prompt: str, **generate_kwargs: Any) -> Iterator[str]:
        """Yields the generated text of one prompt as it is produced (pieces concatenating to
        the new text; a piece may be empty while a UTF-8 character is unfinished). Stopping
        the iteration early stops the generation."""
        keep: list[Any] = []
        d = self._desc(dict(generate_kwargs), keep)
        pieces: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()

        @ffi.callback("int(void *, uint32_t, int32_t, const char *, size_t)")
        def on_token(user: Any, seq: int, id: int, text: Any, n: int) -> int:
            pieces.put(ffi.unpack(text, n))
            return int(stop.is_set())

        d.on_token = on_token

        def run() -> None:
            try:
                self._generate([prompt], d)
                pieces.put(None)
            except Exception as e:  # raised in the consumer
                pieces.put(e)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            while (item := pieces.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item.decode("utf-8", "replace")  # the library holds back unfinished characters
        finally:
            stop.set()
            worker.join()


_TASKS: dict[str, type[Pipeline]] = {
    "image-classification": ImageClassificationPipeline,
    "text-classification": TextClassificationPipeline,
    "sentiment-analysis": TextClassificationPipeline,
    "feature-extraction": FeatureExtractionPipeline,
    "sentence-similarity": FeatureExtractionPipeline,
    "fill-mask": FillMaskPipeline,
    "zero-shot-image-classification": ZeroShotImageClassificationPipeline,
    "zero-shot-classification": ZeroShotClassificationPipeline,
    "reranking": RerankingPipeline,
    "text-ranking": RerankingPipeline,
}
_GENERATION = ("text-generation", "text2text-generation", "translation", "summarization")
# The library's name for what the model must do (checked before weights load).
_LOAD_TASK = {"sentiment-analysis": "text-classification", "sentence-similarity": "feature-extraction",
              "reranking": "text-classification", "text-ranking": "text-classification",
              "zero-shot-classification": "text-classification"}

_default_context: Context | None = None
_default_lock = threading.Lock()


def _context(device: int | str | None) -> Context:
    global _default_context
    if device is not None:
        return Context(device)
    with _default_lock:
        if _default_context is None:
            _default_context = Context()
        return _default_context


def pipeline(task: str, model: PathLike | Model | None = None, device: int | str | None = None,
             precision: str = "fp32") -> Any:
    """A pipeline for ``task`` on ``model`` (a model directory, a Hub id in the local HF
    cache, or a loaded ``Model``), in the shape of ``transformers.pipeline``.

    Tasks: ``image-classification`` (default model: the bundled ViT-Tiny),
    ``text-classification`` (``sentiment-analysis``), ``feature-extraction`` (sentence
    embeddings), ``fill-mask``, ``zero-shot-image-classification`` (CLIP),
    ``zero-shot-classification`` (NLI models), ``text-generation``, ``text2text-generation``,
    ``translation`` (``translation_xx_to_yy``), ``summarization``, ``reranking``
    (cross-encoders). ``device``: None (the best device, one context shared by every
    pipeline), a device index, or part of a device name."""
    base = task.split("_")[0] if task.startswith("translation") else task
    if base not in _TASKS and base not in _GENERATION:
        raise ValueError(f"unknown task {task!r}; vkformer has {', '.join([*_TASKS, *_GENERATION])}")
    if model is None:
        if base != "image-classification":
            raise ValueError(f"{task}: name a model (only image-classification has a bundled default)")
        model = bundled_models() / "vit-tiny-patch16-224"
    if not isinstance(model, Model):
        load_task = _LOAD_TASK.get(base, base if base not in _GENERATION[1:] else None)
        model = _context(device).load(model, precision=precision, task=load_task)
    if base in _GENERATION:
        return TextGenerationPipeline(model, task)
    return _TASKS[base](model)


__all__ = ["pipeline", "bundled_models", "Pipeline", "ImageClassificationPipeline", "TextClassificationPipeline",
           "FeatureExtractionPipeline", "FillMaskPipeline", "ZeroShotImageClassificationPipeline",
           "ZeroShotClassificationPipeline", "RerankingPipeline", "TextGenerationPipeline", "check"]
