#!/usr/bin/env python3
"""Reference decodes for tests/test_io.c: what PIL's Image.open(f).convert("RGB")
gives for the test JPEGs and for small PNGs of every layout libpng must
transform (palette with transparency, 1-bit and 16-bit gray, gray + alpha,
RGBA, 16-bit RGB, interlaced) and a BMP and a GIF, as a 64-bit FNV-1a hash of the RGB bytes and
the size, so the C decoders can be checked bit for bit without storing pixels.

Writes tests/data/images/decode/ (the small PNGs, a BMP, a GIF) and tests/data/images/pil_decode.json.

Usage: python3 -m venv tools/.venv && tools/.venv/bin/pip install pillow numpy
       tools/.venv/bin/python tools/make_decode_refs.py
"""
import json
import os

import numpy as np
from PIL import Image, features

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, "tests", "data", "images")
PNG = os.path.join(IMAGES, "decode")


def fnv1a(b):
    h = 0xCBF29CE484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def pngs():
    os.makedirs(PNG, exist_ok=True)
    rng = np.random.default_rng(7)
    h, w = 17, 23
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(os.path.join(PNG, "rgb_interlaced.png"), interlace=1)
    # the two formats stb_image still reads (checked complete first)
    Image.fromarray(rgb, "RGB").save(os.path.join(PNG, "rgb.bmp"))
    Image.fromarray(rgb, "RGB").quantize(32).save(os.path.join(PNG, "palette.gif"))
    rgba = np.concatenate([rgb, rng.integers(0, 256, size=(h, w, 1), dtype=np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(os.path.join(PNG, "rgba.png"))
    la = Image.fromarray(rng.integers(0, 256, size=(h, w, 2), dtype=np.uint8), "LA")
    la.save(os.path.join(PNG, "gray_alpha.png"))
    Image.fromarray(rng.integers(0, 2, size=(h, w), dtype=np.uint8) * 255, "L").convert("1").save(os.path.join(PNG, "gray_1bit.png"))
    pal = Image.fromarray(rgb, "RGB").quantize(16)
    pal.info["transparency"] = 3
    pal.save(os.path.join(PNG, "palette_trns.png"), transparency=3)
    g16 = rng.integers(0, 65536, size=(h, w), dtype=np.uint16)
    g16[:4] = rng.integers(0, 256, size=(4, w), dtype=np.uint16)  # some values a byte wide
    Image.fromarray(g16).save(os.path.join(PNG, "gray_16bit.png"))  # uint16: mode I;16
    # 16-bit RGB through numpy's raw bytes (PIL cannot build it from an array)
    import struct
    import zlib
    rgb16 = rng.integers(0, 65536, size=(h, w, 3), dtype=np.uint16)
    raw = b"".join(b"\0" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t, data):
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)

    with open(os.path.join(PNG, "rgb_16bit.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    pngs()
    files = ["grace_hopper.jpg"] + sorted("imagenet_samples/" + f for f in os.listdir(os.path.join(IMAGES, "imagenet_samples"))
                                          if f.endswith(".JPEG"))
    files += sorted("decode/" + f for f in os.listdir(PNG))
    refs = {"pillow": Image.__version__, "libjpeg": features.version("jpg"), "images": {}}
    for f in files:
        im = Image.open(os.path.join(IMAGES, f))
        mode = im.mode
        rgb = im.convert("RGB")
        refs["images"][f] = {"mode": mode, "width": rgb.width, "height": rgb.height, "fnv1a": fnv1a(rgb.tobytes())}
        print(f, mode, rgb.size)
    with open(os.path.join(IMAGES, "pil_decode.json"), "w") as out:
        json.dump(refs, out, indent=1)


if __name__ == "__main__":
    main()
