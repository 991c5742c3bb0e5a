/* Audio in: WAV, FLAC and Ogg decoding against python soundfile, the mixdown,
 * libsoxr resampling against python soxr (tools/make_audio_refs.py), memory
 * decoding equal to file decoding, and hostile files each refused with its
 * own message. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include "io/io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUDIO VKF_TEST_DATA "/audio"

static base_diag diag;
static char tmpdir[256];

static void init_diag(void) { base_diag_init(&diag, NULL, NULL, VKF_LOG_ERROR + 1); }

static void make_tmp(void)
{
    init_diag();
    ttmpdir_create(tmpdir, sizeof tmpdir, "audio-test");
}

static void rm_tmp(void) { ttmpdir_remove(tmpdir); }

/* tmpdir/name (one of four buffers, so a few can be live at once). */
static const char *tmp(const char *name)
{
    static char path[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", tmpdir, name);
    return path[k];
}

static io_audio load_ok(const char *path, uint32_t rate)
{
    io_audio a;
    cr_assert_eq(io_audio_load(&diag, path, rate, 0, &a), VKF_OK, "%s", diag.error);
    cr_assert(a.samples && a.frames > 0);
    return a;
}

/* A raw float32 file of exactly n values (malloc'd). */
static float *read_f32(const char *path, size_t *n)
{
    void *data;
    size_t size;
    cr_assert_eq(base_read_file(&diag, path, &data, &size), VKF_OK, "%s", diag.error);
    cr_assert_eq(size % 4, 0, "%s", path);
    *n = size / 4;
    return data;
}

/* The 16 kHz files: int16 decoded as soundfile decodes it (value / 32768),
 * the float32 copy decoded to the same floats, and at rate 16000 nothing is
 * resampled: the samples come out bit-identical. */
Test(audio, wav_16k_int16_and_float32_exact, .init = init_diag)
{
    io_audio a = load_ok(AUDIO "/tones16k.wav", 0), f = load_ok(AUDIO "/tones16k_f32.wav", 0);
    cr_assert_eq(a.rate, 16000);
    cr_assert_eq(a.frames, 24000);
    uint8_t *raw = tread_file(AUDIO "/tones16k.wav", 44 + 48000);
    cr_assert(memcmp(raw + 36, "data", 4) == 0, "a 44-byte header");
    for (size_t i = 0; i < a.frames; i++) {
        int16_t v = (int16_t)(raw[44 + 2 * i] | raw[45 + 2 * i] << 8);
        cr_assert_eq(a.samples[i], v / 32768.0f, "sample %zu: %.9g, want %d / 32768", i, a.samples[i], v);
    }
    free(raw);
    cr_assert_eq(f.frames, a.frames);
    cr_assert_eq(memcmp(f.samples, a.samples, a.frames * 4), 0, "the float32 WAV decodes to the int16 one's floats");
    io_audio same = load_ok(AUDIO "/tones16k.wav", 16000);
    cr_assert_eq(same.rate, 16000);
    cr_assert_eq(same.frames, a.frames);
    cr_assert_eq(memcmp(same.samples, a.samples, a.frames * 4), 0, "16 kHz at rate 16000 is bit-identical");
    io_audio_free(&same);
    io_audio_free(&f);
    io_audio_free(&a);
}

/* Stereo FLAC: soundfile's decode, the channels averaged, exactly. */
Test(audio, flac_stereo_mixdown_exact, .init = init_diag)
{
    io_audio a = load_ok(AUDIO "/tones44k.flac", 0);
    size_t n;
    float *want = read_f32(AUDIO "/tones44k.flac.native.bin", &n);
    cr_assert_eq(a.rate, 44100);
    cr_assert_eq(a.frames, n);
    for (size_t i = 0; i < n; i++) cr_assert_eq(a.samples[i], want[i], "sample %zu: %.9g, soundfile %.9g", i, a.samples[i], want[i]);
    free(want);
    io_audio_free(&a);
}

/* To 16 kHz against soxr.resample(mono, rate, 16000, quality='VHQ'): the
 * same libsoxr 0.1.3 (python-soxr builds its own copy), the same length.
 * Measured on x86-64 (Debian 12's libsndfile 1.2.0, libvorbis 1.3.7, libsoxr
 * 0.1.3 against soundfile 0.14's bundled libsndfile 1.2.2, soxr 1.1.0): 0
 * for the FLAC and the 8 kHz WAV (bit-identical), 2.98e-8 for Vorbis (the
 * two libvorbis builds round their float synthesis differently). Bounds:
 * 1e-6 (another libsoxr build may vectorise differently), 1e-5 for Vorbis. */
Test(audio, resampled_to_16k_matches_soxr, .init = init_diag)
{
    static const struct {
        const char *file;
        uint32_t rate;
        double tol;
    } cases[] = {{"tones44k.flac", 44100, 1e-6}, {"tones8k.wav", 8000, 1e-6}, {"tones48k.ogg", 48000, 1e-5}};
    for (size_t c = 0; c < BASE_ARRAY_LEN(cases); c++) {
        char path[512], ref[600];
        snprintf(path, sizeof path, AUDIO "/%s", cases[c].file);
        snprintf(ref, sizeof ref, "%s.16k.bin", path);
        io_audio a = load_ok(path, 16000);
        size_t n;
        float *want = read_f32(ref, &n);
        cr_assert_eq(a.rate, 16000);
        cr_assert_eq(a.frames, n, "%s: %llu samples, soxr gives %zu", path, (unsigned long long)a.frames, n);
        double m = max_abs_diff_f32(a.samples, want, n);
        cr_log_info("%s -> 16 kHz: max |vkformer - soxr| = %.3g", cases[c].file, m);
        cr_assert(m <= cases[c].tol, "%s: max difference %.3g over %.0e", path, m, cases[c].tol);
        /* the raw-PCM path: the file's own samples through io_audio_resample give the same */
        io_audio native = load_ok(path, 0), r;
        cr_assert_eq(native.rate, cases[c].rate);
        cr_assert_eq(io_audio_resample(&diag, native.samples, native.frames, native.rate, 16000, &r), VKF_OK, "%s", diag.error);
        cr_assert_eq(r.frames, a.frames);
        cr_assert_eq(memcmp(r.samples, a.samples, a.frames * 4), 0, "%s: io_audio_resample differs", path);
        io_audio_free(&r);
        io_audio_free(&native);
        free(want);
        io_audio_free(&a);
    }
}

Test(audio, memory_decoding_equals_file_decoding, .init = init_diag)
{
    static const char *files[] = {"tones16k.wav", "tones16k_f32.wav", "tones44k.flac", "tones48k.ogg", "tones8k.wav"};
    for (size_t i = 0; i < BASE_ARRAY_LEN(files); i++)
        for (uint32_t rate = 0; rate <= 16000; rate += 16000) {
            char path[512];
            snprintf(path, sizeof path, AUDIO "/%s", files[i]);
            void *data;
            size_t size;
            cr_assert_eq(base_read_file(&diag, path, &data, &size), VKF_OK);
            io_audio a = load_ok(path, rate), m;
            cr_assert_eq(io_audio_decode(&diag, data, size, files[i], rate, 0, &m), VKF_OK, "%s", diag.error);
            cr_assert(m.rate == a.rate && m.frames == a.frames, "%s", path);
            cr_assert_eq(memcmp(m.samples, a.samples, a.frames * 4), 0, "%s at %u: memory and file differ", path, rate);
            io_audio_free(&m);
            io_audio_free(&a);
            free(data);
        }
}

Test(audio, resample_arguments_checked, .init = init_diag)
{
    float x[4] = {0, 0.5f, -0.5f, 0};
    io_audio r;
    cr_assert_eq(io_audio_resample(&diag, x, 4, 16000, 16000, &r), VKF_OK);
    cr_assert(r.frames == 4 && r.rate == 16000 && memcmp(r.samples, x, sizeof x) == 0);
    io_audio_free(&r);
    cr_assert_eq(io_audio_resample(&diag, x, 4, 999, 16000, &r), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(diag.error, "rates must be within [1000, 768000] Hz"), "%s", diag.error);
    cr_assert_null(r.samples);
    cr_assert_eq(io_audio_resample(&diag, x, 4, 16000, 800000, &r), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(io_audio_resample(&diag, x, 0, 16000, 8000, &r), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(diag.error, "no samples"), "%s", diag.error);
    io_audio a;
    cr_assert_eq(io_audio_load(&diag, AUDIO "/tones8k.wav", 500, 0, &a), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(diag.error, "requested rate 500 Hz"), "%s", diag.error);
    cr_assert_eq(io_audio_load(&diag, AUDIO "/tones8k.wav", 0, -1, &a), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(io_audio_load(&diag, AUDIO "/tones8k.wav", 0, NAN, &a), VKF_ERROR_INVALID_ARGUMENT);
    /* the caller's duration bound: the 0.5 s file over 0.25 s */
    cr_assert_eq(io_audio_load(&diag, AUDIO "/tones8k.wav", 0, 0.25, &a), VKF_ERROR_FORMAT);
    cr_assert(strstr(diag.error, "0.5 s of audio (4000 frames at 8000 Hz), over the 0.2 s bound"), "%s", diag.error);
}

/* A canonical 44-byte PCM WAV header. */
static size_t wav_header(uint8_t *h, uint16_t channels, uint32_t rate, uint16_t bits, uint16_t format, uint32_t data_bytes)
{
    uint16_t align = (uint16_t)(channels * (bits / 8));
    memcpy(h, "RIFF", 4);
    uint32_t riff = 36 + data_bytes;
    uint32_t v32[] = {riff, 16, rate, rate * align, data_bytes};
    for (int i = 0; i < 4; i++) h[4 + i] = (uint8_t)(v32[0] >> (8 * i));
    memcpy(h + 8, "WAVEfmt ", 8);
    for (int i = 0; i < 4; i++) h[16 + i] = (uint8_t)(v32[1] >> (8 * i));
    h[20] = (uint8_t)format, h[21] = 0;
    h[22] = (uint8_t)channels, h[23] = (uint8_t)(channels >> 8);
    for (int i = 0; i < 4; i++) h[24 + i] = (uint8_t)(v32[2] >> (8 * i)), h[28 + i] = (uint8_t)(v32[3] >> (8 * i));
    h[32] = (uint8_t)align, h[33] = (uint8_t)(align >> 8);
    h[34] = (uint8_t)bits, h[35] = 0;
    memcpy(h + 36, "data", 4);
    for (int i = 0; i < 4; i++) h[40 + i] = (uint8_t)(v32[4] >> (8 * i));
    return 44;
}

/* A WAV file: the header, then data_present bytes of a quiet ramp. */
static const char *wav_file(const char *name, uint16_t channels, uint32_t rate, uint16_t bits, uint16_t format,
                            uint32_t data_bytes, size_t data_present)
{
    uint8_t *buf = calloc(1, 44 + data_present);
    cr_assert_not_null(buf);
    wav_header(buf, channels, rate, bits, format, data_bytes);
    for (size_t i = 0; i < data_present; i++) buf[44 + i] = (uint8_t)(i % 7);
    twrite_file(tmpdir, name, buf, 44 + data_present);
    free(buf);
    return tmp(name);
}

static void expect_error(const char *path, double max_seconds, const char *needle)
{
    io_audio a;
    vkf_status s = io_audio_load(&diag, path, 16000, max_seconds, &a);
    cr_assert_neq(s, VKF_OK, "%s decoded", path);
    cr_assert_null(a.samples);
    cr_assert(strstr(diag.error, needle) && strstr(diag.error, path), "%s: expected '%s' in: %s", path, needle, diag.error);
    /* the same bytes from memory: the same refusal, naming the name given */
    void *data;
    size_t size;
    if (base_read_file(&diag, path, &data, &size) != VKF_OK) return; /* missing, a directory */
    cr_assert_neq(io_audio_decode(&diag, data, size, "mem.wav", 16000, max_seconds, &a), VKF_OK, "%s decoded from memory", path);
    cr_assert(strstr(diag.error, needle) && strstr(diag.error, "mem.wav"), "%s (memory): expected '%s' in: %s", path, needle,
              diag.error);
    free(data);
}

Test(audio, hostile_files_each_get_their_own_message, .init = make_tmp, .fini = rm_tmp)
{
    expect_error(tmp("missing.wav"), 0, "cannot open");
    expect_error(tmpdir, 0, "is a directory");
    twrite_file(tmpdir, "empty.wav", "", 0);
    expect_error(tmp("empty.wav"), 0, "empty file, not audio");
    uint8_t junk[3000];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 37 + 11);
    twrite_file(tmpdir, "random.wav", junk, sizeof junk);
    expect_error(tmp("random.wav"), 0, "not a WAV, FLAC or Ogg file");
    /* a PNG named .wav */
    void *png;
    size_t n;
    cr_assert_eq(base_read_file(&diag, VKF_TEST_DATA "/preprocess/src_rgb.png", &png, &n), VKF_OK);
    twrite_file(tmpdir, "image.wav", png, n);
    free(png);
    expect_error(tmp("image.wav"), 0, "not a WAV, FLAC or Ogg file");
    /* RIFF/WAVE, then garbage: libsndfile's own reason appended */
    memcpy(junk, "RIFF\x10\x00\x00\x00WAVEjunk", 16);
    twrite_file(tmpdir, "riffjunk.wav", junk, sizeof junk);
    expect_error(tmp("riffjunk.wav"), 0, "not a readable WAV file (libsndfile: ");
    /* the header promises 1 s, the file holds 1000 bytes: refused, not shortened */
    expect_error(wav_file("truncated.wav", 1, 16000, 16, 1, 32000, 1000), 0,
                 "truncated WAV: its data chunk says 32000 bytes, the file holds 1000");
    expect_error(wav_file("ch0.wav", 0, 16000, 16, 1, 1000, 1000), 0, "not a readable WAV file (libsndfile: ");
    expect_error(wav_file("ch100.wav", 100, 16000, 16, 1, 2000, 2000), 0, "100 channels, outside [1, 64]");
    expect_error(wav_file("rate1.wav", 1, 1, 16, 1, 1000, 1000), 0, "sample rate 1 Hz is outside [1000, 768000] Hz");
    expect_error(wav_file("rate1m.wav", 1, 1000000, 16, 1, 1000, 1000), 0, "sample rate 1000000 Hz is outside");
    /* 10 hours at 16 kHz (1.15 GB of data, a sparse file) against a 1 s bound:
     * refused from the header, nothing read or allocated */
    const char *ten = wav_file("10h.wav", 1, 16000, 16, 1, 36000u * 32000, 0);
    cr_assert_eq(truncate(ten, 44 + 36000ll * 32000), 0);
    io_audio a;
    cr_assert_eq(io_audio_load(&diag, ten, 16000, 1, &a), VKF_ERROR_FORMAT);
    cr_assert(strstr(diag.error, "36000.0 s of audio (576000000 frames at 16000 Hz), over the 1.0 s bound"), "%s", diag.error);
    cr_assert_null(a.samples);
    /* a header of 0 frames */
    expect_error(wav_file("noframes.wav", 1, 16000, 16, 1, 0, 0), 0, "no audio (0 frames");
    /* a FLAC cut in half: fewer frames than STREAMINFO promises */
    void *flac;
    cr_assert_eq(base_read_file(&diag, AUDIO "/tones44k.flac", &flac, &n), VKF_OK);
    twrite_file(tmpdir, "half.flac", flac, n / 2);
    free(flac);
    expect_error(tmp("half.flac"), 0, "corrupt or truncated FLAC: ");
    /* float32 data with a NaN */
    uint8_t f32[44 + 16];
    wav_header(f32, 1, 16000, 32, 3, 16);
    float vals[4] = {0.25f, NAN, 0.5f, 0};
    memcpy(f32 + 44, vals, sizeof vals);
    twrite_file(tmpdir, "nan.wav", f32, sizeof f32);
    expect_error(tmp("nan.wav"), 0, "sample 1 is not a finite number");
}
