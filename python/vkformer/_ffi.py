"""The C API through cffi's ABI mode, declared from the installed vkformer.h itself.

The header is read at import time and cut down to what cffi's parser takes:
comments, preprocessor lines, conditional blocks other than the include guard
(``extern "C"``, the ``VKF_API`` definitions) and the ``VKF_API`` marker go;
``#define NAME <integer>`` and ``(1u << N)`` constants stay. So the declarations cannot drift
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
            elif word == "define" and not any(blocks):
                m = re.fullmatch(r"#define\s+(\w+)\s+\(?(\d+)u?(?:\s*<<\s*(\d+))?\)?", s)
                if m:  # integer constants, and bit flags written (1u << N)
                    out.append(f"#define {m[1]} {int(m[2]) << int(m[3] or 0)}")
            continue
        if not any(blocks):
            out.append(line.replace("VKF_API ", ""))
    return "\n".join(out)


def _paths() -> tuple[Path, str]:
    header = _HERE / "vkformer.h"
    if not header.exists():  # a source tree: python/vkformer beside include/
        header = _HERE.parent.parent / "include" / "vkformer.h"
    library = os.environ.get("VKFORMER_LIBRARY") or str(next(iter(sorted(_HERE.glob("libvkformer.so*"))), ""))
    if not library:
        raise ImportError(f"vkformer: no libvkformer.so in {_HERE} (set VKFORMER_LIBRARY to use another)")
    return header, library


HEADER, LIBRARY = _paths()
ffi = cffi.FFI()
ffi.cdef(cdef_source(HEADER.read_text(encoding="utf-8")))
# Never unloaded: objects freed late at interpreter exit still call their destroy functions.
lib = ffi.dlopen(LIBRARY, ffi.RTLD_NOW | ffi.RTLD_NODELETE)
