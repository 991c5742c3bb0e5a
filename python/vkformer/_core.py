"""Contexts, models, tokenizers and errors: thin wrappers over the C API."""
from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

from ._ffi import ffi, lib

PathLike = Union[str, "os.PathLike[str]"]

_PRECISIONS = {"auto": lib.VKF_PRECISION_DEFAULT, "fp32": lib.VKF_FP32, "fp16": lib.VKF_FP16}
_DTYPES = {np.dtype(np.float32): lib.VKF_F32, np.dtype(np.float16): lib.VKF_F16,
           np.dtype(np.int32): lib.VKF_I32, np.dtype(np.int64): lib.VKF_I64}
_DTYPE_NAMES = {lib.VKF_F32: "float32", lib.VKF_F16: "float16", lib.VKF_I32: "int32", lib.VKF_I64: "int64"}


class Error(RuntimeError):
    """A call into the library failed. ``str(e)`` is the library's message (naming the file,
    tensor or input and what was wrong); ``e.status`` is the short status text, such as
    ``"a file is missing or unreadable"``."""

    def __init__(self, message: str, status: str = ""):
        super().__init__(message)
        self.status = status


def _str(p: Any) -> str:
    return ffi.string(p).decode("utf-8", "replace") if p != ffi.NULL else ""


def check(status: int, ctx: Any = ffi.NULL) -> None:
    """Raises Error with this thread's last message when status is not VKF_OK."""
    if status != lib.VKF_OK:
        what = _str(lib.vkf_status_string(status))
        raise Error(_str(lib.vkf_last_error(ctx)) or what, what)


def cstrings(texts: Iterable[str]) -> tuple[Any, list[Any]]:
    """A ``const char *[]`` of the texts (UTF-8) and the buffers that must outlive it."""
    keep = [ffi.new("char[]", t.encode("utf-8") if isinstance(t, str) else bytes(t)) for t in texts]
    return ffi.new("const char *[]", keep), keep


def fspath(path: PathLike) -> bytes:
    return os.fsencode(os.fspath(path))


class _Owner:
    """A C object, destroyed once its Python object and everything loaded from it are gone
    (a context outlives its models, whatever order the garbage collector finds them in)."""

    def __init__(self, ptr: Any, destroy: Any, parent: "_Owner | None" = None):
        self.ptr, self.destroy, self.parent, self.users = ptr, destroy, parent, 1
        if parent:
            parent.users += 1

    def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.destroy(self.ptr)
            if self.parent:
                self.parent.release()


def _own(obj: Any, ptr: Any, destroy: Any, parent: _Owner | None = None) -> _Owner:
    owner = _Owner(ptr, destroy, parent)
    obj._ptr, obj._close = ptr, weakref.finalize(obj, owner.release)  # also run at exit, newest first
    return owner


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a model: its HF name, dtype and shape (0: chosen by the run)."""
    name: str
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is (``vkf_model_info``)."""
    type: str
    family: str
    task: str
    precision: str
    image_size: tuple[int, int, int]  # channels, height, width (image models)
    num_labels: int
    hidden_size: int
    num_layers: int
    vocab_size: int
    max_positions: int
    embedding_size: int
    parameters: int
    weight_bytes: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]


def _tensors(arr: Any, n: int) -> tuple[TensorInfo, ...]:
    return tuple(TensorInfo(_str(t.name), _DTYPE_NAMES[t.dtype], tuple(t.shape[0:t.rank])) for t in arr[0:n])


class Context:
    """A Vulkan device and everything loaded on it.

    ``device``: None picks the best device (or the one ``VKF_DEVICE`` names), an int is an
    index as ``vkformer-info`` lists them, a str a case-insensitive part of a device name.
    A context may be shared by threads; ``close()`` (or ``with``) frees it once no model
    of it is in use (models keep their context alive)."""

    def __init__(self, device: int | str | None = None):
        desc = ffi.new("vkf_context_desc *")
        if isinstance(device, str):
            device = self._find(device)
        if device is not None:
            desc.use_device_index, desc.device_index = 1, int(device)
        out = ffi.new("vkf_context **")
        check(lib.vkf_context_create(desc, out))
        self._owner = _own(self, out[0], lib.vkf_context_destroy)

    @staticmethod
    def _find(name: str) -> int:
        for d in devices():
            if name.lower() in d["name"].lower():
                return d["index"]
        raise Error(f"no Vulkan device's name contains '{name}'", "not found")

    @property
    def device(self) -> dict[str, Any]:
        """The device this context runs on: ``{"index", "name", "driver", "caps"}``."""
        info = ffi.new("vkf_device_info *")
        check(lib.vkf_context_device(self._ptr, info), self._ptr)
        return _device_dict(info)

    def load(self, path: PathLike, precision: str = "fp32", task: str | None = None) -> "Model":
        """Loads a Hugging Face model directory (or a Hub id found in the local HF cache).

        ``precision``: ``"fp32"``, ``"fp16"`` (fp16 storage, fp32 arithmetic) or ``"auto"``
        (the library's choice: fp16 where the device has 16-bit storage, else fp32).
        ``task``: an HF task name the model must be able to run, checked before any
        weight is read."""
        return Model(self, path, precision, task)

    def close(self) -> None:
        """Frees the context now, or when the last model loaded on it is freed."""
        self._close()
        self._ptr = ffi.NULL

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _device_dict(d: Any) -> dict[str, Any]:
    return {"index": d.index, "name": _str(d.name), "driver": _str(d.driver), "caps": _str(d.caps_line)}


def devices() -> list[dict[str, Any]]:
    """Every Vulkan device: ``[{"index", "name", "driver", "caps"}]``."""
    count = ffi.new("uint32_t *")
    check(lib.vkf_list_devices(ffi.NULL, ffi.NULL, 0, count))
    infos = ffi.new("vkf_device_info[]", count[0])
    check(lib.vkf_list_devices(ffi.NULL, infos, count[0], count))
    return [_device_dict(infos[i]) for i in range(count[0])]


class Model:
    """A loaded model (``Context.load``). Thread-safe: several threads may run it at once."""

    def __init__(self, ctx: Context, path: PathLike, precision: str = "fp32", task: str | None = None):
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(_PRECISIONS)}, not {precision!r}")
        self.context = ctx
        self.path = os.fspath(path)
        desc = ffi.new("vkf_model_desc *")
        desc.precision = _PRECISIONS[precision]
        task_c = ffi.new("char[]", task.encode()) if task else ffi.NULL
        desc.task = task_c
        out = ffi.new("vkf_model **")
        check(lib.vkf_model_load(ctx._ptr, fspath(path), desc, out), ctx._ptr)
        _own(self, out[0], lib.vkf_model_destroy, ctx._owner)
        self._ctx = ctx._ptr

    def _check(self, status: int) -> None:
        check(status, self._ctx)

    @property
    def info(self) -> ModelInfo:
        """Type, task, sizes, and the tensors ``run`` takes and gives."""
        i = ffi.new("vkf_model_info *")
        self._check(lib.vkf_model_get_info(self._ptr, i))
        return ModelInfo(
            type=_str(i.type), family=_str(i.family), task=_str(i.task),
            precision="fp16" if i.precision == lib.VKF_FP16 else "fp32",
            image_size=(i.channels, i.image_height, i.image_width), num_labels=i.num_labels,
            hidden_size=i.hidden_size, num_layers=i.num_layers, vocab_size=i.vocab_size,
            max_positions=i.max_positions, embedding_size=i.embedding_size, parameters=i.parameters,
            weight_bytes=i.weight_bytes, inputs=_tensors(i.inputs, i.n_inputs), outputs=_tensors(i.outputs, i.n_outputs))

    @property
    def labels(self) -> list[str]:
        """The class labels (``config.json``'s id2label), by index."""
        return [_str(lib.vkf_model_label(self._ptr, k)) for k in range(self.info.num_labels)]

    @property
    def tokenizer(self) -> "Tokenizer | None":
        """The tokenizer loaded with the model, or None when its directory has none."""
        t = lib.vkf_model_tokenizer(self._ptr)
        return None if t == ffi.NULL else Tokenizer._borrow(t, self)

    def run(self, inputs: Mapping[str, Any], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The tensor level (``vkf_model_run``): named arrays in, named float32 arrays out.

        Inputs as HF names them (``input_ids``, ``attention_mask``, ``token_type_ids``,
        ``position_ids``, ``pixel_values``, ``decoder_input_ids``...), float32, float16,
        int32 or int64, passed without a copy when C-contiguous. ``outputs``: names among
        ``info.outputs`` (default: all of them)."""
        arrays = {k: np.ascontiguousarray(v) for k, v in inputs.items()}
        for k, a in arrays.items():
            if a.dtype not in _DTYPES:
                arrays[k] = a = a.astype(np.int64 if a.dtype.kind in "iub" else np.float32)
            if not 1 <= a.ndim <= 4:
                raise ValueError(f"input {k}: rank {a.ndim}, the library takes 1 to 4")
        names = list(outputs) if outputs is not None else [t.name for t in self.info.outputs]
        info = {t.name: t for t in self.info.outputs}
        # The sizes a run chooses: the batch (every input's first axis), then tokens (second axes).
        batch = max(a.shape[0] for a in arrays.values()) if arrays else 1
        seq = max((a.shape[1] for a in arrays.values() if a.ndim > 1), default=1)
        cin = ffi.new("vkf_tensor[]", len(arrays))
        keep: list[Any] = []
        for t, (k, a) in zip(cin, arrays.items()):
            keep.append(ffi.new("char[]", k.encode()))
            t.name, t.rank, t.dtype = keep[-1], a.ndim, _DTYPES[a.dtype]
            t.shape[0:a.ndim] = a.shape
            t.data = ffi.cast("void *", ffi.from_buffer(a))
            t.capacity = a.nbytes
        cout = ffi.new("vkf_tensor[]", len(names))
        bufs = []
        for t, k in zip(cout, names):
            dims = info[k].shape if k in info else (0,)
            n = int(np.prod([d or (batch if j == 0 else seq) for j, d in enumerate(dims)]))
            bufs.append(np.empty(n, np.float32))
            keep.append(ffi.new("char[]", k.encode()))
            t.name, t.data, t.capacity = keep[-1], ffi.cast("void *", ffi.from_buffer(bufs[-1])), bufs[-1].nbytes
        self._check(lib.vkf_model_run(self._ptr, cin, len(arrays), cout, len(names)))
        shapes = [tuple(t.shape)[:t.rank] for t in cout]
        return {k: b[:int(np.prod(s))].reshape(s) for k, b, s in zip(names, bufs, shapes)}

    def close(self) -> None:
        """Frees the model now; it must not be in use by another thread."""
        self._close()
        self._ptr = ffi.NULL

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return f"<vkformer.Model {self.path!r} {i.type} {i.task} {i.precision}>"


class Tokenizer:
    """A Hugging Face tokenizer (``tokenizer.json``, legacy vocabulary files or SentencePiece
    ``.model``), with ids equal to ``AutoTokenizer.from_pretrained(path)``'s. Thread-safe.

    >>> tok = vkformer.Tokenizer("models/all-MiniLM-L6-v2")
    >>> tok.encode("Hello world")
    [101, 7592, 2088, 102]
    >>> tok(["Hello world", "Hi"], padding=True)["attention_mask"]
    array([[1, 1, 1, 1], [1, 1, 1, 0]])
    """

    def __init__(self, path: PathLike):
        out = ffi.new("vkf_tokenizer **")
        check(lib.vkf_tokenizer_load(fspath(path), out))
        _own(self, out[0], lib.vkf_tokenizer_destroy)
        self._owner: Any = None

    @classmethod
    def _borrow(cls, ptr: Any, owner: Any) -> "Tokenizer":
        tok = cls.__new__(cls)
        tok._ptr, tok._owner = ptr, owner  # the model owns it; keep the model alive
        return tok

    @property
    def info(self) -> dict[str, Any]:
        """``{"model", "source", "vocab_size", "model_max_length", "pad_id", "unk_id", "cls_id",
        "sep_id", "mask_id", "bos_id", "eos_id"}`` (-1: no such token)."""
        i = ffi.new("vkf_tokenizer_info *")
        check(lib.vkf_tokenizer_get_info(self._ptr, i))
        d = {k: getattr(i, k) for k in ("vocab_size", "model_max_length", "pad_id", "unk_id", "cls_id", "sep_id",
                                         "mask_id", "bos_id", "eos_id")}
        return {"model": _str(i.model), "source": _str(i.source), **d}

    def token_to_id(self, token: str) -> int | None:
        i = lib.vkf_tokenizer_token_to_id(self._ptr, token.encode())
        return None if i < 0 else i

    def id_to_token(self, id: int) -> str | None:
        p = lib.vkf_tokenizer_id_to_token(self._ptr, id)
        return None if p == ffi.NULL else _str(p)

    def _encode(self, texts: Sequence[str | bytes], pairs: Sequence[str | bytes] | None, add_special_tokens: bool,
                max_length: int | None, padding: bool | str, truncation: bool | str) -> list[dict[str, np.ndarray]]:
        opt = ffi.new("vkf_encode_options *")
        opt.no_special_tokens = not add_special_tokens
        # max_length truncates (the strategy as `truncation` says); truncation alone: the model's limit
        opt.max_length = max_length or (self.info["model_max_length"] if truncation else 0)
        opt.truncation = {"only_first": lib.VKF_TRUNCATE_ONLY_FIRST,
                          "only_second": lib.VKF_TRUNCATE_ONLY_SECOND}.get(truncation, lib.VKF_TRUNCATE_LONGEST_FIRST)
        opt.padding = {False: 0, "do_not_pad": 0, True: lib.VKF_PAD_LONGEST, "longest": lib.VKF_PAD_LONGEST,
                       "max_length": lib.VKF_PAD_MAX_LENGTH}[padding]
        ctexts, k1 = cstrings(texts)
        lens = ffi.new("size_t[]", [len(k) - 1 for k in k1])  # texts may hold NUL characters
        cpairs, k2 = cstrings(pairs) if pairs is not None else (ffi.NULL, [])
        plens = ffi.new("size_t[]", [len(k) - 1 for k in k2]) if pairs is not None else ffi.NULL
        encs = ffi.new("vkf_encoding[]", len(texts))
        check(lib.vkf_tokenizer_encode_batch(self._ptr, ctexts, lens, cpairs, plens, len(texts), opt, encs))
        out = []
        try:
            for e in encs:
                n = e.length
                arr = lambda p: np.frombuffer(ffi.buffer(p, 4 * n), np.int32).astype(np.int64)  # noqa: E731
                off = np.frombuffer(ffi.buffer(e.offsets, 8 * n), np.uint32).reshape(n, 2).astype(np.int64)
                out.append({"input_ids": arr(e.ids), "token_type_ids": arr(e.type_ids),
                            "attention_mask": arr(e.attention_mask), "special_tokens_mask": arr(e.special_mask),
                            "offset_mapping": off})
        finally:
            for i in range(len(texts)):
                lib.vkf_encoding_free(encs + i)
        return out

    def encode(self, text: str | bytes, text_pair: str | bytes | None = None, add_special_tokens: bool = True,
               max_length: int | None = None, truncation: bool | str = False) -> list[int]:
        """The ids of one text (or pair), as HF's ``tokenizer.encode``."""
        e = self._encode([text], None if text_pair is None else [text_pair], add_special_tokens, max_length, False,
                         truncation)
        return e[0]["input_ids"].tolist()

    def __call__(self, text: str | bytes | Sequence[str], text_pair: str | bytes | Sequence[str] | None = None, *,
                 add_special_tokens: bool = True, padding: bool | str = False, truncation: bool | str = False,
                 max_length: int | None = None, return_offsets_mapping: bool = False,
                 return_special_tokens_mask: bool = False) -> dict[str, np.ndarray]:
        """HF's ``tokenizer(text, return_tensors="np")``: int64 arrays ``[batch, tokens]``
        (``input_ids``, ``token_type_ids``, ``attention_mask``; ``offset_mapping`` in bytes of
        the UTF-8 text ``[batch, tokens, 2]``), ready for ``Model.run``. Texts of different
        lengths need ``padding=True`` (``"longest"``) or ``"max_length"``."""
        single = isinstance(text, (str, bytes))
        texts = [text] if single else list(text)
        pairs = None if text_pair is None else ([text_pair] if isinstance(text_pair, (str, bytes)) else list(text_pair))
        encs = self._encode(texts, pairs, add_special_tokens, max_length, padding, truncation)
        if len({len(e["input_ids"]) for e in encs}) > 1:
            raise ValueError("texts of different lengths: pass padding=True to make one array of them")
        keys = ["input_ids", "token_type_ids", "attention_mask"]
        keys += ["offset_mapping"] * return_offsets_mapping + ["special_tokens_mask"] * return_special_tokens_mask
        return {k: np.stack([e[k] for e in encs]) if encs else np.zeros((0, 0), np.int64) for k in keys}

    def decode(self, ids: Sequence[int] | np.ndarray, skip_special_tokens: bool = False) -> str:
        """Ids back to text, as HF's ``tokenizer.decode``."""
        a = np.ascontiguousarray(ids, dtype=np.int32).reshape(-1)
        text, n = ffi.new("char **"), ffi.new("size_t *")
        check(lib.vkf_tokenizer_decode(self._ptr, ffi.cast("const int32_t *", ffi.from_buffer(a)), a.size,
                                       int(skip_special_tokens), text, n))
        try:
            return ffi.unpack(text[0], n[0]).decode("utf-8", "replace")
        finally:
            lib.vkf_free(text[0])
