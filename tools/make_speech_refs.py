#!/usr/bin/env python3
"""Reference cases for tests/test_speech.c: wav2vec 2.0 and HuBERT with HF
`transformers` (torch, eager attention, float32), random checkpoints of odd
sizes in both layouts, a batch of two clips of different lengths.

Writes tests/data/speech/<case>/: config.json, model.safetensors, raw
little-endian input_values.bin (float32 [B, L]), attention_mask.bin (int32,
when the case has one), logits.bin / last_hidden_state.bin (float32) and
case.json with the shapes. Cases:
  w2v_base_ctc    Wav2Vec2ForCTC, feat_extract_norm "group" (GroupNorm on the
                  first conv, post-LN encoder), conv_bias false, no attention
                  mask (the shorter clip zero-padded, as the feature extractor
                  pads a group-norm model's batch), the positional conv's weight
                  norm in the old weight_g / weight_v names
  w2v_stable_ctc  Wav2Vec2ForCTC, feat_extract_norm "layer", do_stable_layer_norm
                  (pre-LN, final LayerNorm), conv_bias true, an attention_mask
                  (padded frames zeroed and masked), weight norm in the
                  parametrizations names transformers saves today, an even
                  positional kernel (the last output dropped)
  hubert_cls      HubertForSequenceClassification (mean over the frames,
                  projector, classifier), group norm, no mask

Beside the tensors, case.json's "pipeline" holds HF's pipelines on the
committed tests/data/audio/tones16k.wav (1.5 s at 16 kHz, read with soundfile
as vkformer reads it: bit-identical, so the pipeline's ffmpeg is not needed):
automatic-speech-recognition on w2v_base_ctc whole and in chunks
(chunk_length_s, stride_length_s), with and without return_timestamps="word";
audio-classification on hubert_cls. w2v_base_ctc's CTC head has its bias
centred on that clip's logits (the blank and the word delimiter a little
favoured), so that a random model's frames spread over the vocabulary and
its words are many and short.

Usage: tools/.venv/bin/python tools/make_speech_refs.py [CASE...]
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import (HubertConfig, HubertForSequenceClassification, Wav2Vec2Config, Wav2Vec2CTCTokenizer,
                          Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, pipeline)

# facebook/wav2vec2-base-960h's vocabulary
VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C", "F",
         "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]


def asr_files(d, mask):
    """The tokenizer and feature extractor beside a CTC case, and HF's pipeline over clip 0 (from write's input)."""
    with open(os.path.join(d, "vocab.json"), "w") as f:
        json.dump({t: i for i, t in enumerate(VOCAB)}, f)
    Wav2Vec2CTCTokenizer(os.path.join(d, "vocab.json")).save_pretrained(d)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=mask).save_pretrained(d)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "speech")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_text_refs import halve, perturb  # noqa: E402

SMALL = dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=12, intermediate_size=64, conv_dim=(16, 24, 16),
             conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
             vocab_size=32, initializer_range=0.2, attn_implementation="eager")


CLIP = os.path.join(ROOT, "tests", "data", "audio", "tones16k.wav")


def tones():
    import soundfile
    x, rate = soundfile.read(CLIP, dtype="float32")
    assert rate == 16000 and x.ndim == 1
    return x


def centre_ctc_head(model):
    """lm_head.bias minus its logits' mean over the clip's frames, the blank and "|" raised by half a deviation."""
    model.eval()
    x = tones()
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    with torch.no_grad():
        lg = model(torch.tensor(x)[None]).logits[0]
        b = model.lm_head.bias
        b -= lg.mean(0)
        sd = lg.std(0)
        for t in (VOCAB.index("<pad>"), VOCAB.index("|")):
            b[t] += 0.5 * sd[t]


def smallest_margin(model, x):
    """The smallest gap between a frame's two best logits: a near tie could flip an argmax."""
    with torch.no_grad():
        top = model.float()(torch.tensor(x)[None]).logits[0].topk(2, -1).values
    return float((top[:, 0] - top[:, 1]).min())


def pipelines(d, task, runs, case_model):
    """HF's pipeline on tones16k.wav with each run's arguments, into case.json's "pipeline"."""
    pipe = pipeline(task, model=d, device="cpu", dtype=torch.float32)  # the checkpoint is fp16: "auto" would run in fp16
    x = tones()
    out = []
    for args in runs:
        with torch.no_grad():
            r = pipe(x.copy(), **args)
        if isinstance(r, dict) and "chunks" in r:
            r["chunks"] = [{"text": c["text"], "timestamp": list(c["timestamp"])} for c in r["chunks"]]
        out.append({"args": args, "output": r})
        print(f"  {task} {args}: {str(r)[:100]}")
    meta = json.load(open(os.path.join(d, "case.json")))
    meta["pipeline"] = {"audio": "tones16k.wav", "runs": out}
    json.dump(meta, open(os.path.join(d, "case.json"), "w"), indent=1)
    if case_model is not None:
        print(f"  smallest top-2 logit margin on the clip: {smallest_margin(case_model, (x - x.mean()) / np.sqrt(x.var() + 1e-7)):.2e}")


def clips(rng, lens):
    L = max(lens)
    x = np.zeros((len(lens), L), dtype=np.float32)
    t = np.arange(L) / 16000.0
    for b, n in enumerate(lens):
        x[b, :n] = (0.5 * np.sin(2 * np.pi * (220 + 110 * b) * t[:n]) + 0.1 * rng.standard_normal(n)).astype(np.float32)
    mask = np.zeros((len(lens), L), dtype=np.int64)
    for b, n in enumerate(lens):
        mask[b, :n] = 1
    return x, mask


def write(case, model, inputs, outputs, old_weight_norm=False):
    d = os.path.join(OUT, case)
    os.makedirs(d, exist_ok=True)
    model.half().save_pretrained(d, safe_serialization=True)  # fp16: its weights were rounded before HF ran
    if old_weight_norm:  # the layout of checkpoints saved before torch's parametrizations
        path = os.path.join(d, "model.safetensors")
        sd = load_file(path)
        for k in list(sd):
            if "parametrizations.weight.original0" in k:
                sd[k.replace("parametrizations.weight.original0", "weight_g")] = sd.pop(k)
            elif "parametrizations.weight.original1" in k:
                sd[k.replace("parametrizations.weight.original1", "weight_v")] = sd.pop(k)
        save_file(sd, path, metadata={"format": "pt"})
    meta = {"inputs": {}, "outputs": {}}
    for k, v in inputs.items():
        (v.astype(np.float32) if k == "input_values" else v.astype(np.int32)).tofile(os.path.join(d, k + ".bin"))
        meta["inputs"][k] = list(v.shape)
    for k, v in outputs.items():
        v.astype(np.float32).tofile(os.path.join(d, k + ".bin"))
        meta["outputs"][k] = list(v.shape)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(meta, f, indent=1)


def run(model, inputs):
    halve(model)
    model.eval()
    with torch.no_grad():
        args = {k: torch.tensor(v) for k, v in inputs.items()}
        o = model(**args, output_hidden_states=True)
        # the base model's last_hidden_state (stable layouts: after the final LayerNorm, which
        # hidden_states[-1] of the head classes is not)
        o.hidden_states = (model.base_model(**args).last_hidden_state,)
        return o


def w2v_base_ctc():
    torch.manual_seed(41)
    model = Wav2Vec2ForCTC(Wav2Vec2Config(feat_extract_norm="group", conv_bias=False, **SMALL))
    perturb(model, 41)
    centre_ctc_head(model)
    x, _ = clips(np.random.default_rng(41), [4000, 2911])
    inp = {"input_values": x}
    o = run(model, inp)
    write("w2v_base_ctc", model, inp, {"logits": o.logits.numpy(), "last_hidden_state": o.hidden_states[-1].numpy()},
          old_weight_norm=True)
    d = os.path.join(OUT, "w2v_base_ctc")
    asr_files(d, False)
    asr = pipeline("automatic-speech-recognition", model=d, device="cpu", dtype=torch.float32)
    clip = x[0, :4000].copy()
    with torch.no_grad():  # the model's own argmax text too, to see the clip is not silence to it
        text = asr(clip)["text"]
    meta = json.load(open(os.path.join(d, "case.json")))
    meta["transcription"] = {"clip": 0, "samples": 4000, "text": text}
    json.dump(meta, open(os.path.join(d, "case.json"), "w"), indent=1)
    print("w2v_base_ctc: pipeline text", repr(text))
    pipelines(d, "automatic-speech-recognition", [
        {},
        {"return_timestamps": "word"},
        {"chunk_length_s": 0.4, "return_timestamps": "word"},  # strides chunk_length_s / 6, a short last chunk
        {"chunk_length_s": 0.25, "stride_length_s": [0.1, 0.05]},
        {"chunk_length_s": 0.3, "stride_length_s": 0.0},  # no overlap
    ], model)


def w2v_stable_ctc():
    torch.manual_seed(42)
    cfg = dict(SMALL, num_conv_pos_embeddings=12)
    model = Wav2Vec2ForCTC(Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, **cfg))
    perturb(model, 42)
    x, mask = clips(np.random.default_rng(42), [3733, 2400])
    inp = {"input_values": x, "attention_mask": mask}
    o = run(model, inp)
    write("w2v_stable_ctc", model, inp, {"logits": o.logits.numpy(), "last_hidden_state": o.hidden_states[-1].numpy()})


def hubert_cls():
    torch.manual_seed(43)
    cfg = {k: v for k, v in SMALL.items() if k != "vocab_size"}
    model = HubertForSequenceClassification(HubertConfig(feat_extract_norm="group", num_labels=3, classifier_proj_size=20, **cfg))
    perturb(model, 43)
    x, _ = clips(np.random.default_rng(43), [3000, 3000])
    inp = {"input_values": x}
    o = run(model, inp)
    write("hubert_cls", model, inp, {"logits": o.logits.numpy(), "last_hidden_state": o.hidden_states[-1].numpy()})
    d = os.path.join(OUT, "hubert_cls")
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(d)
    pipelines(d, "audio-classification", [{}, {"top_k": 2}], None)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for c in (w2v_base_ctc, w2v_stable_ctc, hubert_cls):
        if len(sys.argv) == 1 or c.__name__ in sys.argv[1:]:
            print(c.__name__)
            c()
