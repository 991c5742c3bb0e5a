#!/usr/bin/env python3
"""Audio files and their expected samples for tests/test_audio.c, made with
python `soundfile` (libsndfile) and `soxr` (libsoxr), the libraries
src/io/audio.c calls.

Writes tests/data/audio/:
  tones16k.wav        1.5 s at 16 kHz, mono int16: three tones (440, 1000,
                      3000 Hz) one after another, fades at the joins
  tones16k_f32.wav    the same samples as float32 WAV (the int16 values / 32768,
                      so both decode to the same floats; checked here, and the
                      test compares them with the int16 data / 32768, which is
                      what soundfile gives: no .bin needed for these two)
  tones44k.flac       0.4 s at 44.1 kHz, stereo 16-bit FLAC: a 440 Hz tone on
                      the left, 1234 Hz on the right, so the mean is neither
  tones48k.ogg        0.5 s at 48 kHz, stereo Ogg Vorbis
  tones8k.wav         0.5 s at 8 kHz, mono int16 (upsampled to 16 kHz)
  tones44k.flac.native.bin  the FLAC decoded as float32 by soundfile, the
                      channels averaged (float64 mean, rounded to float32)
  <name>.16k.bin      each file but the 16 kHz ones decoded and averaged so,
                      then resampled to 16 kHz with soxr.resample(x, rate,
                      16000, quality='VHQ') (float32 in, float32 out)
All .bin files are raw little-endian float32; everything stays under 400 KB.

usage: /work/main/tools/.venv/bin/python tools/make_audio_refs.py
"""
import os
import sys

import numpy as np
import soundfile as sf
import soxr

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "audio")


def tones(rate, seconds, freqs, amp=0.5):
    n = int(rate * seconds)
    t = np.arange(n) / rate
    x = np.zeros(n)
    seg = n // len(freqs)
    for i, f in enumerate(freqs):
        a, b = i * seg, n if i == len(freqs) - 1 else (i + 1) * seg
        env = np.ones(b - a)
        ramp = min(200, (b - a) // 4)
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.linspace(1, 0, ramp)
        x[a:b] = amp * env * np.sin(2 * np.pi * f * t[a:b])
    return x


def refs(name, native):
    path = os.path.join(OUT, name)
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = x.astype(np.float64).mean(axis=1).astype(np.float32)
    if native:
        mono.astype("<f4").tofile(path + ".native.bin")
    y = soxr.resample(mono, rate, 16000, quality="VHQ")
    np.asarray(y, dtype="<f4").tofile(path + ".16k.bin")
    print(f"{name}: {rate} Hz, {x.shape[1]} channel(s), {len(mono)} frames -> {len(y)} at 16 kHz")


def main():
    os.makedirs(OUT, exist_ok=True)
    x16 = tones(16000, 1.5, [440, 1000, 3000])
    sf.write(os.path.join(OUT, "tones16k.wav"), x16, 16000, subtype="PCM_16")
    i16, _ = sf.read(os.path.join(OUT, "tones16k.wav"), dtype="int16")
    sf.write(os.path.join(OUT, "tones16k_f32.wav"), i16.astype(np.float32) / 32768, 16000, subtype="FLOAT")
    a, _ = sf.read(os.path.join(OUT, "tones16k.wav"), dtype="float32")
    b, _ = sf.read(os.path.join(OUT, "tones16k_f32.wav"), dtype="float32")
    assert np.array_equal(a, i16.astype(np.float32) / 32768) and np.array_equal(a, b)
    st = np.stack([tones(44100, 0.4, [440]), tones(44100, 0.4, [1234], 0.3)], axis=1)
    sf.write(os.path.join(OUT, "tones44k.flac"), st, 44100, subtype="PCM_16")
    st = np.stack([tones(48000, 0.5, [300, 2000]), tones(48000, 0.5, [700], 0.25)], axis=1)
    sf.write(os.path.join(OUT, "tones48k.ogg"), st, 48000, format="OGG", subtype="VORBIS")
    sf.write(os.path.join(OUT, "tones8k.wav"), tones(8000, 0.5, [300, 1500]), 8000, subtype="PCM_16")
    refs("tones44k.flac", True)
    refs("tones48k.ogg", False)
    refs("tones8k.wav", False)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"{total} bytes in {OUT}")
    if total > 400_000:
        sys.exit("over 400 KB")


if __name__ == "__main__":
    main()
