#!/usr/bin/env python3
"""Reference data for tests/test_image.c: what PIL (as HF image processors use
it) produces, so the C preprocessing can be checked pixel for pixel.

Writes tests/data/preprocess/:
  src_rgb.png, src_gray.png, src_rgba.png   small synthetic sources (lossless)
  <src>_<w>x<h>_<filter>.png                PIL Image.resize(..., resample) of the
                                            source converted to RGB, as uint8 RGB
  cats_224x224_bilinear.png                 the bundled COCO cats photo resized as
                                            ViTImageProcessor does (bilinear 224x224)
  cats_pixel_values_head.bin               the first 4096 float32 values of the
                                            normalised NCHW tensor (rescale in
                                            float64, cast, (x - mean) / std in float32)

Usage: python3 -m venv tools/.venv && tools/.venv/bin/pip install pillow numpy
       tools/.venv/bin/python tools/make_preprocess_refs.py
"""
import os
import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "preprocess")
os.makedirs(OUT, exist_ok=True)

rng = np.random.default_rng(1234)
# Smooth gradients plus noise: both flat areas and sharp edges get resampled.
h, w = 61, 97
yy, xx = np.mgrid[0:h, 0:w]
base = np.stack([(xx * 255 // (w - 1)), (yy * 255 // (h - 1)), ((xx + yy) * 7) % 256], axis=-1)
noise = rng.integers(-40, 41, size=(h, w, 3))
rgb = np.clip(base + noise, 0, 255).astype(np.uint8)
rgb[20:30, 40:60] = [255, 0, 0]  # a hard-edged block
Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "src_rgb.png"))
gray = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
Image.fromarray(gray, "L").save(os.path.join(OUT, "src_gray.png"))
rgba = np.concatenate([rgb, rng.integers(0, 256, size=(h, w, 1), dtype=np.uint8)], axis=-1)
Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "src_rgba.png"))

sizes = [(40, 33), (13, 9), (130, 70), (97, 20), (224, 224)]
filters = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
for src in ["rgb", "gray", "rgba"]:
    # HF: PIL image -> convert("RGB") (pipelines' load_image), alpha dropped
    im = Image.open(os.path.join(OUT, f"src_{src}.png")).convert("RGB")
    for (ow, oh) in sizes:
        for name, f in filters.items():
            if src != "rgb" and (ow, oh) != (40, 33):
                continue
            im.resize((ow, oh), resample=f, reducing_gap=None).save(
                os.path.join(OUT, f"{src}_{ow}x{oh}_{name}.png"))

cats = Image.open(os.path.join(ROOT, "models", "images", "000000039769.png")).convert("RGB")
r = cats.resize((224, 224), resample=Image.BILINEAR, reducing_gap=None)
r.save(os.path.join(OUT, "cats_224x224_bilinear.png"))
arr = np.asarray(r)
x = (arr.astype(np.float64) * 0.00392156862745098).astype(np.float32)
mean = np.array([0.5, 0.5, 0.5], dtype=np.float32)
std = np.array([0.5, 0.5, 0.5], dtype=np.float32)
x = ((x - mean) / std).astype(np.float32).transpose(2, 0, 1)
x.reshape(-1)[:4096].astype("<f4").tofile(os.path.join(OUT, "cats_pixel_values_head.bin"))
print("wrote", len(os.listdir(OUT)), "files to", OUT)

# EXIF orientation: the same small JPEG with orientation tags 1..8, and what
# PIL's ImageOps.exif_transpose (as HF pipelines' load_image) makes of each.
from PIL import ImageOps
yy, xx = np.mgrid[0:24, 0:40]
ori = np.stack([xx * 6, yy * 10, 128 + 0 * xx], axis=-1).astype(np.uint8)
ori[2:8, 3:12] = [250, 250, 20]  # a marker in one corner
base = Image.fromarray(ori, "RGB")
for o in range(1, 9):
    exif = Image.Exif()
    exif[0x0112] = o
    path = os.path.join(OUT, f"exif_{o}.jpg")
    base.save(path, quality=95, exif=exif.tobytes())
    ImageOps.exif_transpose(Image.open(path)).convert("RGB").save(os.path.join(OUT, f"exif_{o}_pil.png"))
print("wrote EXIF cases")

# Extreme aspect ratios (resize's windows span thousands of rows or columns),
# every filter: src_tall.png (5 x 4000) and src_wide.png (4000 x 3).
ext = np.random.default_rng(77)
for name, (w_, h_), outs in [("tall", (5, 4000), [(24, 32), (7, 3), (5, 9)]), ("wide", (4000, 3), [(17, 30), (33, 3)])]:
    yy, xx = np.mgrid[0:h_, 0:w_]
    base = np.stack([(xx * 255 // max(w_ - 1, 1)), (yy * 255 // max(h_ - 1, 1)), ((xx + yy) * 13) % 256], axis=-1)
    img = np.clip(base + ext.integers(-60, 61, size=(h_, w_, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img, "RGB").save(os.path.join(OUT, f"src_{name}.png"))
    for (ow, oh) in outs:
        for fname, f in {"box": Image.BOX, "bilinear": Image.BILINEAR, "hamming": Image.HAMMING, "bicubic": Image.BICUBIC,
                         "lanczos": Image.LANCZOS}.items():
            Image.fromarray(img, "RGB").resize((ow, oh), resample=f, reducing_gap=None).save(
                os.path.join(OUT, f"{name}_{ow}x{oh}_{fname}.png"))
print("wrote extreme aspect ratio cases")
