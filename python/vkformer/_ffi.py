"""The C API through cffi's ABI mode, declared from the installed vkformer.h itself.

The header is read at import time and cut down to what cffi's parser takes:
comments, preprocessor lines, conditional blocks other than the include guard
(``extern "C"``, the ``VKF_API`` definitions) and the ``VKF_API`` marker go;
``#define NAME <integer>`` constants stay. So the declarations cannot drift
from the library they load. cffi calls every C function with the GIL released.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import cffi

_HERE = Path(__file__).resolve().parent


def cdef_source(header: str) -> str:
    """The declarations of ``vkformer.h`` as cffi's ``cdef`` takes them."""
    text = re.sub(r"/\*.*?\*/", "", header, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out, blocks = [], []  # blocks: per open #if, whether its contents are dropped
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            word = s[1:].split()[0] if len(s) > 1 else ""
            if word in ("if", "ifdef", "ifndef"):
                blocks.append(s != "#ifndef VKFORMER_H")
            elif word == "endif":
                blocks.pop()
            elif word == "define" and not any(blocks) and re.fullmatch(r"#define\s+\w+\s+\d+", s):
                out.append(s)
            continue
        if not any(blocks):
            out.append(line.replace("VKF_API ", ""))
    return "\n".join(out)


def _load() -> tuple[cffi.FFI, object]:
    header = _HERE / "vkformer.h"
    if not header.exists():  # a source tree: python/vkformer beside include/
        header = _HERE.parent.parent / "include" / "vkformer.h"
    ffi = cffi.FFI()
    ffi.cdef(cdef_source(header.read_text(encoding="utf-8")))
    lib_path = os.environ.get("VKFORMER_LIBRARY") or str(next(iter(sorted(_HERE.glob("libvkformer.so*"))), ""))
    if not lib_path:
        raise ImportError(f"vkformer: no libvkformer.so in {_HERE} (set VKFORMER_LIBRARY to use another)")
    return ffi, ffi.dlopen(lib_path)


ffi, lib = _load()
