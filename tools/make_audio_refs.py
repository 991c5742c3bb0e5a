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

With --vs-ffmpeg it compares them with HF's pipeline path instead
(transformers.pipelines.audio_utils.ffmpeg_read: ffmpeg -ac 1 -ar RATE -f
f32le, here the static ffmpeg of the `imageio-ffmpeg` package) and writes
nothing. Measured with ffmpeg 9.0.2 (imageio-ffmpeg 0.8.1): WAV decoding
identical; stereo mixed down to (L + R) / sqrt(2), not the mean (swresample's
stereo-to-mono matrix has 1/sqrt(2) per channel and is normalised only for
integer output); resampling by swresample differs from soxr VHQ by at most
2.9e-5 (44.1 kHz to 16 kHz), 3.0e-4 (8 kHz up) and 3.4e-4 (48 kHz Vorbis),
at signal RMS 0.28 to 0.33; ffmpeg's Vorbis decoder ends 64 samples later
(the last page's end trim ignored).

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


def vs_ffmpeg():
    import subprocess

    import imageio_ffmpeg

    ff = imageio_ffmpeg.get_ffmpeg_exe()

    def hf(path, rate):
        cmd = [ff, "-i", "pipe:0", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-hide_banner", "-loglevel", "quiet", "pipe:1"]
        with open(path, "rb") as f:
            return np.frombuffer(subprocess.run(cmd, input=f.read(), capture_output=True, check=True).stdout, np.float32)

    for name in ["tones16k.wav", "tones44k.flac", "tones48k.ogg", "tones8k.wav"]:
        path = os.path.join(OUT, name)
        x, rate = sf.read(path, dtype="float32", always_2d=True)
        mean = x.astype(np.float64).mean(axis=1).astype(np.float32)
        native = hf(path, rate)[: len(mean)]
        print(f"{name}: max |ffmpeg - mean| {np.abs(native - mean).max():.3g}, "
              f"max |ffmpeg - sqrt(2) * mean| {np.abs(native - np.float32(np.sqrt(2)) * mean).max():.3g}")
        if rate != 16000:
            ref = np.fromfile(path + ".16k.bin", np.float32) * np.float32(np.sqrt(2) if x.shape[1] == 2 else 1)
            y = hf(path, 16000)
            n = min(len(y), len(ref))
            print(f"  16 kHz: {len(y)} samples (soxr {len(ref)}), max |ffmpeg - soxr| {np.abs(y[:n] - ref[:n]).max():.3g} "
                  f"(the stereo mixdown scaled as ffmpeg's), RMS {np.sqrt(np.mean(ref ** 2)):.3g}")


def main():
    if "--vs-ffmpeg" in sys.argv:
        return vs_ffmpeg()
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
