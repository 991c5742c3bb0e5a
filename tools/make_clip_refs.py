#!/usr/bin/env python3
"""Reference cases for tests/test_clip.c, made with HF `transformers` (torch,
eager attention, float32): small random CLIPs in the configurations and
checkpoint classes the loader must accept.

Writes tests/data/clip/<case>/: config.json, model.safetensors, and raw
little-endian inputs (pixel_values.bin float32 [N, 3, S, S], input_ids.bin /
attention_mask.bin int32 [T, L]) and outputs (image_embeds, text_embeds,
logits_per_image as float32), with case.json giving the shapes. Cases:
  zero_shot  CLIPModel with the real CLIP tokenizer (a link to
             tests/data/tokenizers/clip) and a preprocessor_config.json
             (shortest edge 32, bicubic, center crop): two small PNG photos
             (the cats 96x72, Grace Hopper 60x70: one wide, one tall) against
             labels in HF's hypothesis template, one label past the 77-token
             context (truncated as HF's tokenizer does); HF's probabilities
  legacy     CLIPModel from a config.json in the legacy layout
             (text_config_dict / vision_config_dict), sizes that are not
             multiples of 8 (text 36 = 3 heads of 12, vision 44 = 11 heads of
             4, image 30 with patch 6, projection 20, intermediate 70), the
             gelu activation, eos_token_id 2 (pooled at the highest id), a
             position_ids buffer; three texts of different lengths
  vision     CLIPVisionModelWithProjection (image_embeds not normalised)
  text       CLIPTextModelWithProjection (text_embeds not normalised)
  b32        CLIP ViT-B/32 shapes (openai/clip-vit-base-patch32's config) with
             weights from a formula both sides compute (splitmix64 of the
             tensor's index and the element's, scaled by powers of two, so
             numpy and C give the same float32 bits): only the tensor list,
             the inputs and HF's outputs are stored; tests/test_clip.c writes
             the 605 MB model.safetensors into a temporary directory
The weights are float16-rounded (the references come from those) and saved
as float16 to keep the files small.

Usage: python3 -m venv tools/.venv && tools/.venv/bin/pip install torch transformers safetensors pillow
       tools/.venv/bin/python tools/make_clip_refs.py [zero_shot legacy towers b32]
"""
import json
import os
import shutil

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig, CLIPTextModelWithProjection,
                          CLIPTokenizerFast, CLIPVisionConfig, CLIPVisionModelWithProjection)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "clip")
TEMPLATE = "This is a photo of {}."


def prepare(model, seed):
    """Random biases and LayerNorm parameters (HF inits them constant), then fp16-rounded weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name or "layrnorm" in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
            p.copy_(p.half().float())
    return model.eval()


def save(d, model, extra_buffers=None):
    sd = {k: v.contiguous().half() if v.is_floating_point() else v.contiguous() for k, v in model.state_dict().items()}
    sd.update(extra_buffers or {})
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})


def fresh(name):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(d, arrays, case):
    for k, (a, dt) in arrays.items():
        np.ascontiguousarray(a, dtype=dt).tofile(os.path.join(d, k + ".bin"))
        case.setdefault("shapes", {})[k] = list(a.shape)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f, indent=1)


def photos():
    """The bundled cats photo and the Grace Hopper JPEG, shrunk (Lanczos) and kept as PNG (pixels PIL decoded)."""
    cats = Image.open(os.path.join(ROOT, "models", "images", "000000039769.png")).convert("RGB").resize((96, 72), Image.LANCZOS)
    hopper = Image.open(os.path.join(ROOT, "tests", "data", "images", "grace_hopper.jpg")).convert("RGB").resize((60, 70), Image.LANCZOS)
    return [cats, hopper]


def zero_shot():
    d = fresh("zero_shot")
    cfg = CLIPConfig(text_config=dict(vocab_size=49408, hidden_size=8, intermediate_size=20, num_hidden_layers=2,
                                      num_attention_heads=2, max_position_embeddings=77),
                     vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                        image_size=32, patch_size=8),
                     projection_dim=24)
    torch.manual_seed(21)
    model = prepare(CLIPModel(cfg), 21)
    model.config.save_pretrained(d)
    save(d, model)
    tok = CLIPTokenizerFast.from_pretrained(os.path.join(ROOT, "tests", "data", "tokenizers", "clip"))
    os.symlink(os.path.join("..", "..", "tokenizers", "clip", "tokenizer.json"), os.path.join(d, "tokenizer.json"))
    proc = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    proc.save_pretrained(d)
    for i, im in enumerate(photos()):
        im.save(os.path.join(d, f"photo{i}.png"))
    imgs = [Image.open(os.path.join(d, f"photo{i}.png")) for i in range(2)]
    labels = ["cat", "dog", "a remote control", "an admiral in uniform", "",
              " ".join(["very"] * 90) + " long label"]
    texts = [TEMPLATE.format(l) for l in labels]
    enc = tok(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
    px = proc(images=imgs, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=px)
    probs = out.logits_per_image.softmax(-1).numpy()
    write(d, {"pixel_values": (px.numpy(), "<f4"), "probs": (probs, "<f4"),
              "image_embeds": (out.image_embeds.numpy(), "<f4"), "text_embeds": (out.text_embeds.numpy(), "<f4"),
              "logits_per_image": (out.logits_per_image.numpy(), "<f4")},
          {"labels": labels, "template": TEMPLATE, "images": ["photo0.png", "photo1.png"],
           "text_lengths": enc["attention_mask"].sum(-1).tolist()})
    print("zero_shot", probs.round(3).tolist())


def legacy():
    d = fresh("legacy")
    tc = dict(vocab_size=97, hidden_size=36, intermediate_size=70, num_hidden_layers=2, num_attention_heads=3,
              max_position_embeddings=20, hidden_act="gelu", bos_token_id=0, eos_token_id=2, pad_token_id=1)
    vc = dict(hidden_size=44, intermediate_size=70, num_hidden_layers=2, num_attention_heads=11, image_size=30, patch_size=6,
              hidden_act="gelu")
    torch.manual_seed(22)
    model = prepare(CLIPModel(CLIPConfig(text_config=tc, vision_config=vc, projection_dim=20)), 22)
    model.config.save_pretrained(d)
    # the legacy layout: *_config_dict keys (old CLIPConfig files carry both; the _dict wins)
    with open(os.path.join(d, "config.json")) as f:
        j = json.load(f)
    j["text_config_dict"] = j.pop("text_config")
    j["vision_config_dict"] = j.pop("vision_config")
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(j, f, indent=1)
    save(d, model, {"text_model.embeddings.position_ids": torch.arange(20).unsqueeze(0)})
    g = torch.Generator().manual_seed(3)
    px = torch.randn(3, 3, 30, 30, generator=g)
    # eos_token_id 2: pooled at the highest id, which here is not always the last real token
    ids = torch.tensor([[0, 40, 96, 11, 2, 1, 1, 1], [0, 5, 6, 7, 8, 9, 10, 2], [0, 2, 1, 1, 1, 1, 1, 1]])
    mask = (torch.arange(8)[None] < torch.tensor([[5], [8], [2]])).long()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, pixel_values=px)
    write(d, {"pixel_values": (px.numpy(), "<f4"), "input_ids": (ids.numpy(), "<i4"), "attention_mask": (mask.numpy(), "<i4"),
              "image_embeds": (out.image_embeds.numpy(), "<f4"), "text_embeds": (out.text_embeds.numpy(), "<f4"),
              "logits_per_image": (out.logits_per_image.numpy(), "<f4")}, {})
    print("legacy", out.logits_per_image.numpy().round(3).tolist())


def towers():
    torch.manual_seed(23)
    d = fresh("vision")
    vm = prepare(CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=40, intermediate_size=52, num_hidden_layers=2,
                                                                 num_attention_heads=5, image_size=24, patch_size=8,
                                                                 projection_dim=12)), 23)
    vm.config.save_pretrained(d)
    save(d, vm)
    px = torch.randn(2, 3, 24, 24, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        o = vm(pixel_values=px)
    write(d, {"pixel_values": (px.numpy(), "<f4"), "image_embeds": (o.image_embeds.numpy(), "<f4")}, {})
    d = fresh("text")
    tm = prepare(CLIPTextModelWithProjection(CLIPTextConfig(vocab_size=50, hidden_size=24, intermediate_size=30,
                                                            num_hidden_layers=2, num_attention_heads=2,
                                                            max_position_embeddings=12, projection_dim=12,
                                                            bos_token_id=48, eos_token_id=49)), 24)
    tm.config.save_pretrained(d)
    save(d, tm)
    ids = torch.tensor([[48, 3, 4, 5, 49], [48, 7, 49, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        o = tm(input_ids=ids, attention_mask=mask)
    write(d, {"input_ids": (ids.numpy(), "<i4"), "attention_mask": (mask.numpy(), "<i4"),
              "text_embeds": (o.text_embeds.numpy(), "<f4")}, {})
    print("towers done")


def splitmix_weights(index, n):
    """Element i of tensor `index`: the top 24 bits of splitmix64(index << 40 | i) as a value in [-1, 1)."""
    with np.errstate(over="ignore"):
        x = (np.uint64(index) << np.uint64(40)) + np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return ((x >> np.uint64(40)).astype(np.float64) * 2.0 ** -23 - 1.0).astype(np.float32)


def formula(name, index, shape):
    """The init both sides use: LayerNorm scales 1 + u/16, biases u/64, logit_scale 2.5, the rest u/32."""
    u = splitmix_weights(index, int(np.prod(shape)) if shape else 1).reshape(shape)
    if name == "logit_scale":
        return np.full(shape, 2.5, dtype=np.float32), "logit"
    if ("norm" in name or "layrnorm" in name) and name.endswith("weight"):
        return (np.float32(1) + u * np.float32(1 / 16)).astype(np.float32), "ln"
    if name.endswith("bias"):
        return (u * np.float32(1 / 64)).astype(np.float32), "bias"
    return (u * np.float32(1 / 32)).astype(np.float32), "weight"


def b32():
    d = fresh("b32")
    cfg = CLIPConfig(vision_config=dict(patch_size=32), projection_dim=512)
    model = CLIPModel(cfg).eval()
    tensors = []
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            v, kind = formula(name, i, tuple(p.shape))
            p.copy_(torch.from_numpy(v))
            tensors.append({"name": name, "shape": list(p.shape), "kind": kind})
    model.config.save_pretrained(d)
    px = torch.from_numpy(splitmix_weights(999, 2 * 3 * 224 * 224).reshape(2, 3, 224, 224) * np.float32(2))  # in [-2, 2)
    ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 269, 49407, 49407, 49407, 49407, 49407],
                        [49406, 320, 1125, 539, 320, 1929, 530, 518, 2444, 3546, 269, 49407],
                        [49406, 49407, 49407, 49407, 49407, 49407, 49407, 49407, 49407, 49407, 49407, 49407]])
    mask = (torch.arange(12)[None] < torch.tensor([[8], [12], [2]])).long()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, pixel_values=px)
    write(d, {"input_ids": (ids.numpy(), "<i4"), "attention_mask": (mask.numpy(), "<i4"),
              "image_embeds": (out.image_embeds.numpy(), "<f4"), "text_embeds": (out.text_embeds.numpy(), "<f4"),
              "logits_per_image": (out.logits_per_image.numpy(), "<f4")}, {"tensors": tensors, "pixels": "2 * u(999), [2, 3, 224, 224]"})
    print("b32", out.logits_per_image.numpy().round(3).tolist())


if __name__ == "__main__":
    import sys
    os.makedirs(OUT, exist_ok=True)
    cases = {"zero_shot": zero_shot, "legacy": legacy, "towers": towers, "b32": b32}
    for name in sys.argv[1:] or cases:  # default: every case
        cases[name]()
