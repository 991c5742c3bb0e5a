#!/usr/bin/env python3
"""PyTorch checkpoints (torch.save's zip format) for tests/test_torchbin.c,
made with torch and HF `transformers`.

Writes tests/data/torchbin/:
  bert/          a random BertForSequenceClassification of odd sizes (hidden
                 24, 3 heads, 2 layers, intermediate 37, vocabulary 101, 3
                 labels): config.json and pytorch_model.bin as transformers 4
                 saved it before safetensors (torch.save of the state dict: an
                 OrderedDict with its _metadata attribute)
  bert_st/       the same weights as model.safetensors (save_pretrained)
  bert_sharded/  the same weights as pytorch_model-0000k-of-0000N.bin shards
                 (plain dicts, as transformers 4 wrote them with a small
                 max_shard_size) and pytorch_model.bin.index.json
  dtypes.bin     float32, float16, bfloat16 and int64 tensors, a scalar, a
                 view with a storage offset, one tensor under two names and
                 two views of one storage (tied weights), an nn.Parameter,
                 non-tensor values; dtypes.safetensors holds the same tensors
                 (contiguous copies) for a bit-for-bit comparison
  zip64.bin      dtypes.bin with its central directory rewritten the way
                 zip64 archives over 4 GiB have it (sizes and offsets in zip64
                 extra fields)
  hostile/       files that must be refused: os_system.bin (a __reduce__
                 calling os.system), eval.bin (builtins.eval), exec.bin
                 (exec), deflated.bin (dtypes.bin recompressed), noncontig.bin
                 (a transposed tensor saved as it is), past_storage.bin (a
                 tensor past the end of its storage), short_entry.bin (a
                 storage larger than its archive entry), not_a_dict.bin (a
                 list of tensors), legacy.bin (the pre-1.6 format's start)

Usage: tools/.venv/bin/python tools/make_torchbin_refs.py
"""
import collections
import io
import json
import os
import pickle
import shutil
import struct
import zipfile

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "torchbin")


def bert():
    torch.manual_seed(1234)
    cfg = BertConfig(vocab_size=101, hidden_size=24, num_hidden_layers=2, num_attention_heads=3, intermediate_size=37,
                     max_position_embeddings=40, type_vocab_size=2, num_labels=3)
    model = BertForSequenceClassification(cfg).eval()
    st_dir, bin_dir, sh_dir = (os.path.join(OUT, n) for n in ("bert_st", "bert", "bert_sharded"))
    for d in (st_dir, bin_dir, sh_dir):
        shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(st_dir)
    os.makedirs(bin_dir)
    os.makedirs(sh_dir)
    for d in (bin_dir, sh_dir):
        shutil.copy(os.path.join(st_dir, "config.json"), d)
    sd = model.state_dict()
    from safetensors import safe_open
    with safe_open(os.path.join(st_dir, "model.safetensors"), "pt") as f:
        assert sorted(f.keys()) == sorted(sd.keys()), "save_pretrained renamed tensors"
    torch.save(sd, os.path.join(bin_dir, "pytorch_model.bin"))
    # shards of about 16 KB, in state-dict order (huggingface_hub's greedy split)
    shards, cur, size = [], {}, 0
    for k, v in sd.items():
        n = v.numel() * v.element_size()
        if cur and size + n > 16000:
            shards.append(cur)
            cur, size = {}, 0
        cur[k] = v
        size += n
    shards.append(cur)
    weight_map = {}
    for i, shard in enumerate(shards):
        name = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        torch.save(shard, os.path.join(sh_dir, name))
        weight_map.update({k: name for k in shard})
    total = sum(v.numel() * v.element_size() for v in sd.values())
    with open(os.path.join(sh_dir, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    print(f"bert: {len(sd)} tensors, {len(shards)} shards")


def dtypes():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(5, 6, generator=g)
    emb = torch.randn(7, 3, generator=g)
    sd = collections.OrderedDict()
    sd["f32.weight"] = torch.randn(3, 5, generator=g)
    sd["f16.weight"] = torch.randn(4, 3, generator=g).half()
    sd["bf16.weight"] = torch.randn(2, 3, 2, generator=g).bfloat16()
    sd["position_ids"] = torch.arange(9).unsqueeze(0)
    sd["scalar"] = torch.tensor(2.5)
    sd["row3"] = base[3]                      # storage offset 18
    sd["rows1to3"] = base[1:3]                # offset 6, same storage
    sd["embed.weight"] = emb
    sd["decoder.weight"] = emb                # the same tensor twice (tied)
    sd["param"] = torch.nn.Parameter(torch.randn(4, generator=g))
    sd["empty"] = torch.zeros(0, 3)
    sd["step"] = 17                           # non-tensors: skipped
    sd["note"] = "not a tensor"
    sd["flag"] = None
    torch.save(sd, os.path.join(OUT, "dtypes.bin"))
    save_file({k: v.detach().clone().contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)},
              os.path.join(OUT, "dtypes.safetensors"))


def zip64():
    """dtypes.bin with every central directory record's sizes and local
    header offset moved into a zip64 extra field, as for a file over 4 GiB."""
    data = open(os.path.join(OUT, "dtypes.bin"), "rb").read()
    eocd = data.rfind(b"PK\x05\x06")
    n, cd_size, cd_off = struct.unpack_from("<HII", data, eocd + 10)
    z64 = data.rfind(b"PK\x06\x06")
    assert 0 < z64 < eocd, "torch writes a zip64 end record"
    cd, q = bytearray(), cd_off
    for _ in range(n):
        assert data[q:q + 4] == b"PK\x01\x02"
        csize, usize = struct.unpack_from("<II", data, q + 20)
        nlen, xlen, clen = struct.unpack_from("<HHH", data, q + 28)
        (lh,) = struct.unpack_from("<I", data, q + 42)
        rec = bytearray(data[q:q + 46])
        struct.pack_into("<II", rec, 20, 0xFFFFFFFF, 0xFFFFFFFF)
        struct.pack_into("<I", rec, 42, 0xFFFFFFFF)
        extra = struct.pack("<HHQQQ", 1, 24, usize, csize, lh) + data[q + 46 + nlen:q + 46 + nlen + xlen]
        struct.pack_into("<H", rec, 30, len(extra))
        cd += rec + data[q + 46:q + 46 + nlen] + extra + data[q + 46 + nlen + xlen:q + 46 + nlen + xlen + clen]
        q += 46 + nlen + xlen + clen
    head = data[:cd_off]
    new_z64 = len(head) + len(cd)
    rec = bytearray(data[z64:z64 + 56])
    struct.pack_into("<QQ", rec, 40, len(cd), cd_off)
    loc = struct.pack("<IIQI", 0x07064B50, 0, new_z64, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    open(os.path.join(OUT, "zip64.bin"), "wb").write(head + cd + bytes(rec) + loc + end)


def torch_zip(path, pkl, entries):
    """A zip laid out as torch.save's: archive/data.pkl, archive/data/<key>..."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        for k, v in entries.items():
            z.writestr(f"archive/data/{k}", v)
        z.writestr("archive/version", "3\n")


class Storage:
    def __init__(self, cls, key, numel):
        self.cls, self.key, self.numel = cls, key, numel


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        return None


def dumps(obj):
    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


class System:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class Eval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


class Exec:
    def __reduce__(self):
        return (exec, ("print(1)",))


def hostile():
    h = os.path.join(OUT, "hostile")
    shutil.rmtree(h, ignore_errors=True)
    os.makedirs(h)
    f32 = bytes(48)
    torch_zip(os.path.join(h, "os_system.bin"), pickle.dumps({"w": System()}, protocol=2), {})
    torch_zip(os.path.join(h, "eval.bin"), pickle.dumps({"w": Eval()}, protocol=2), {})
    torch_zip(os.path.join(h, "exec.bin"), pickle.dumps({"w": Exec()}, protocol=2), {})
    s = Storage(torch.FloatStorage, "0", 12)
    torch_zip(os.path.join(h, "past_storage.bin"), dumps({"w": Tensor(s, 10, (4,), (1,))}), {"0": f32})
    torch_zip(os.path.join(h, "short_entry.bin"), dumps({"w": Tensor(Storage(torch.FloatStorage, "0", 100), 0, (4,), (1,))}),
              {"0": f32})
    torch_zip(os.path.join(h, "not_a_dict.bin"), dumps([Tensor(s, 0, (4,), (1,))]), {"0": f32})
    torch.save({"w": torch.arange(6.0).reshape(2, 3).t()}, os.path.join(h, "noncontig.bin"))
    with zipfile.ZipFile(os.path.join(OUT, "dtypes.bin")) as src, \
            zipfile.ZipFile(os.path.join(h, "deflated.bin"), "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf, _use_new_zipfile_serialization=False)
    open(os.path.join(h, "legacy.bin"), "wb").write(buf.getvalue())


def main():
    os.makedirs(OUT, exist_ok=True)
    bert()
    dtypes()
    zip64()
    hostile()
    # torch itself reads what must be read, and refuses the non-tensor globals
    for name in ("bert/pytorch_model.bin", "dtypes.bin", "zip64.bin"):
        torch.load(os.path.join(OUT, name), weights_only=True)
    for name in ("os_system.bin", "eval.bin", "exec.bin"):
        try:
            torch.load(os.path.join(OUT, "hostile", name), weights_only=True)
            raise SystemExit(f"torch read {name}")
        except pickle.UnpicklingError:
            pass
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"{OUT}: {total} bytes")


if __name__ == "__main__":
    main()
