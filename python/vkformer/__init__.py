"""vkformer: Hugging Face transformer models on any Vulkan GPU, from Python.

    >>> import vkformer
    >>> classify = vkformer.pipeline("image-classification")      # the bundled ViT-Tiny
    >>> classify("cats.png")[0]
    {'label': 'tabby, tabby cat', 'score': 0.725...}
    >>> embed = vkformer.pipeline("feature-extraction", model="models/all-MiniLM-L6-v2")
    >>> embed(["A man is eating food.", "A man is eating a piece of bread."]).shape
    (2, 384)

``pipeline(task, model=...)`` gives calls shaped as ``transformers.pipeline``'s; beneath
them, ``Context(device).load(path)`` gives a ``Model`` with ``.info`` and ``.run({...})``
(numpy tensors in and out), and ``Tokenizer(path)`` encodes and decodes as HF's
tokenizers do. Every failure raises ``vkformer.Error`` with the library's message.

Models and tokenizers may be used from several threads at once; the GIL is released
while the library runs (cffi releases it around every C call).
"""
from ._core import Context, Error, Model, ModelInfo, TensorInfo, Tokenizer, devices
from ._ffi import ffi, lib
from .pipelines import bundled_models, pipeline

__version__: str = ffi.string(lib.vkf_version_string()).decode()

__all__ = ["Context", "Error", "Model", "ModelInfo", "TensorInfo", "Tokenizer", "devices", "pipeline",
           "bundled_models", "__version__"]
