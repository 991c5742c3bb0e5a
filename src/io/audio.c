/* Audio: WAV, FLAC and Ogg (Vorbis, Opus) files decoded by libsndfile
 * as float, mixed down to mono by averaging the channels and resampled with
 * libsoxr at very high quality. Files and memory go through one path (the
 * same virtual I/O), every bound is checked from the header before anything
 * is allocated, and a file that holds fewer frames than its header promises
 * is refused as truncated.
 *
 * Against HF's pipelines, which decode a file with ffmpeg (`-ac 1 -ar RATE -f
 * f32le`; tools/make_audio_refs.py --vs-ffmpeg measures it): PCM decodes to
 * the same floats; the mixdown is the mean of the channels, as librosa,
 * torchaudio and `datasets` make mono, while ffmpeg's default stereo-to-mono
 * matrix gives (L + R) / sqrt(2) for float output (swresample normalises it
 * only for integer formats): stereo comes out 1/sqrt(2) as loud as through
 * ffmpeg; resampling (soxr VHQ against swresample's default filter) differs
 * by up to about 3e-4 on full-scale tones. A model whose feature extractor
 * normalises the waveform (wav2vec2's do_normalize) sees neither. */
#include "io.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sndfile.h>
#include <soxr.h>

#define IO_AUDIO_MIN_RATE 1000u
#define IO_AUDIO_MAX_RATE 768000u
#define IO_AUDIO_MAX_CHANNELS 64
/* frames read (and mixed down) per libsndfile call */
#define IO_AUDIO_BLOCK 4096

void io_audio_free(io_audio *a)
{
    if (!a) return;
    free(a->samples);
    memset(a, 0, sizeof(*a));
}

/* ---- one source for libsndfile's virtual I/O: bytes in memory or a file --------- */

typedef struct audio_src {
    const uint8_t *mem; /* memory, or NULL for fd */
    int fd;
    sf_count_t size, pos;
    int err; /* errno of a failed file read */
} audio_src;

static sf_count_t src_len(void *user) { return ((audio_src *)user)->size; }

static sf_count_t src_seek(sf_count_t off, int whence, void *user)
{
    audio_src *s = user;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s->pos : s->size;
    if ((off < 0 && base + off < 0) || (off > 0 && off > INT64_MAX - base)) return -1;
    s->pos = base + off; /* past the end is allowed, as lseek; reads there return 0 */
    return s->pos;
}

/* Up to n bytes at off; the count read (short only at the end or on an error). */
static sf_count_t src_pread(audio_src *s, void *buf, sf_count_t n, sf_count_t off)
{
    if (n <= 0 || off < 0 || off >= s->size) return 0;
    if (n > s->size - off) n = s->size - off;
    if (s->mem) {
        memcpy(buf, s->mem + off, (size_t)n);
        return n;
    }
    sf_count_t done = 0;
    while (done < n) {
        ssize_t r = pread(s->fd, (uint8_t *)buf + done, (size_t)(n - done), (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r < 0) s->err = errno;
            break;
        }
        done += r;
    }
    return done;
}

static sf_count_t src_read(void *buf, sf_count_t n, void *user)
{
    audio_src *s = user;
    sf_count_t r = src_pread(s, buf, n, s->pos);
    s->pos += r;
    return r;
}

static sf_count_t src_write(const void *buf, sf_count_t n, void *user) { return 0; }
static sf_count_t src_tell(void *user) { return ((audio_src *)user)->pos; }

/* ---- the container, from its first bytes ------------------------------------------- */

typedef enum audio_kind { AUDIO_NONE = 0, AUDIO_WAV, AUDIO_RF64, AUDIO_FLAC, AUDIO_OGG } audio_kind;

static uint32_t rd32(const uint8_t *p, bool le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

/* Only these reach libsndfile: it reads some twenty other formats (and takes
 * headerless bytes for MPEG), none of which a speech pipeline needs. */
static audio_kind sniff(const uint8_t *p, sf_count_t n)
{
    if (n >= 12 && (memcmp(p, "RIFF", 4) == 0 || memcmp(p, "RIFX", 4) == 0) && memcmp(p + 8, "WAVE", 4) == 0) return AUDIO_WAV;
    if (n >= 12 && memcmp(p, "RF64", 4) == 0 && memcmp(p + 8, "WAVE", 4) == 0) return AUDIO_RF64;
    if (n >= 4 && memcmp(p, "fLaC", 4) == 0) return AUDIO_FLAC;
    if (n >= 4 && memcmp(p, "OggS", 4) == 0) return AUDIO_OGG;
    return AUDIO_NONE;
}

/* A WAV whose data chunk says more bytes than the file holds: libsndfile
 * shortens it silently to what is there; we refuse it. Sizes 0 and
 * 0xFFFFFFFF (a stream written before its length was known) are not checked.
 * Returns the declared and present byte counts through *want, *have. */
static bool wav_truncated(audio_src *s, uint64_t *want, uint64_t *have)
{
    uint8_t h[8];
    if (src_pread(s, h, 4, 0) != 4) return false;
    bool le = memcmp(h, "RIFX", 4) != 0;
    sf_count_t off = 12;
    for (int i = 0; i < 4096 && off <= s->size - 8; i++) {
        if (src_pread(s, h, 8, off) != 8) return false;
        uint32_t len = rd32(h + 4, le);
        if (memcmp(h, "data", 4) == 0) {
            uint64_t present = (uint64_t)(s->size - off - 8);
            if (len == 0 || len == UINT32_MAX || len <= present) return false;
            *want = len, *have = present;
            return true;
        }
        off += 8 + (sf_count_t)len + (len & 1);
    }
    return false;
}

static const char *kind_name(audio_kind k)
{
    switch (k) {
    case AUDIO_WAV: return "WAV";
    case AUDIO_RF64: return "RF64";
    case AUDIO_FLAC: return "FLAC";
    default: return "Ogg";
    }
}

/* Whether libsndfile's major format is the container the bytes began with. */
static bool format_matches(audio_kind k, int format)
{
    int major = format & SF_FORMAT_TYPEMASK;
    switch (k) {
    case AUDIO_WAV: return major == SF_FORMAT_WAV || major == SF_FORMAT_WAVEX;
    case AUDIO_RF64: return major == SF_FORMAT_RF64;
    case AUDIO_FLAC: return major == SF_FORMAT_FLAC;
    case AUDIO_OGG: return major == SF_FORMAT_OGG;
    default: return false;
    }
}

/* ---- resampling ------------------------------------------------------------------- */

vkf_status io_audio_resample(base_diag *d, const float *in, uint64_t frames, uint32_t from, uint32_t to, io_audio *out)
{
    memset(out, 0, sizeof(*out));
    if (from < IO_AUDIO_MIN_RATE || from > IO_AUDIO_MAX_RATE || to < IO_AUDIO_MIN_RATE || to > IO_AUDIO_MAX_RATE)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "resampling %u Hz to %u Hz: rates must be within [%u, %u] Hz", from, to,
                         IO_AUDIO_MIN_RATE, IO_AUDIO_MAX_RATE);
    if (frames == 0) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "resampling %u Hz to %u Hz: no samples", from, to);
    if (!in) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "resampling %u Hz to %u Hz: no input", from, to);
    /* soxr_oneshot gives round(frames * to / from) samples; one more for safety */
    double want = ceil((double)frames * to / from) + 1;
    if (want > (double)(SIZE_MAX / sizeof(float)) || (double)frames > (double)(SIZE_MAX / sizeof(float)))
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "resampling %llu samples from %u Hz to %u Hz: too many samples",
                         (unsigned long long)frames, from, to);
    size_t olen = (size_t)want;
    float *y = malloc(olen * sizeof(float));
    if (!y) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory resampling %llu samples", (unsigned long long)frames);
    if (from == to) {
        memcpy(y, in, (size_t)frames * sizeof(float));
        out->samples = y, out->frames = frames, out->rate = to;
        return VKF_OK;
    }
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_VHQ, 0);
    size_t done = 0;
    soxr_error_t e = soxr_oneshot(from, to, 1, in, (size_t)frames, NULL, y, olen, &done, &io, &q, NULL);
    if (e || done == 0) {
        free(y);
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "resampling %u Hz to %u Hz failed: %s", from, to, e ? e : "no output");
    }
    out->samples = y, out->frames = done, out->rate = to;
    return VKF_OK;
}

/* ---- decoding ----------------------------------------------------------------------- */

static vkf_status decode_src(base_diag *d, audio_src *src, const char *name, uint32_t rate, double max_seconds, io_audio *out)
{
    memset(out, 0, sizeof(*out));
    if (!(max_seconds >= 0) || isinf(max_seconds))
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s: max_seconds %g is not a duration", name, max_seconds);
    if (max_seconds == 0) max_seconds = IO_AUDIO_MAX_SECONDS_DEFAULT;
    if (rate != 0 && (rate < IO_AUDIO_MIN_RATE || rate > IO_AUDIO_MAX_RATE))
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s: the requested rate %u Hz is outside [%u, %u] Hz", name, rate,
                         IO_AUDIO_MIN_RATE, IO_AUDIO_MAX_RATE);
    if (src->size == 0) return base_fail(d, VKF_ERROR_FORMAT, "%s: empty file, not audio", name);
    uint8_t head[12];
    audio_kind kind = sniff(head, src_pread(src, head, sizeof head, 0));
    if (kind == AUDIO_NONE && src->size >= 3 && (memcmp(head, "ID3", 3) == 0 || (head[0] == 0xFF && (head[1] & 0xE0) == 0xE0)))
        return base_fail(d, VKF_ERROR_FORMAT, "%s: looks like MP3, which is not read: convert it to WAV or FLAC", name);
    if (kind == AUDIO_NONE)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: not a WAV, FLAC or Ogg file (those are the audio formats read)", name);
    SF_VIRTUAL_IO vio = {src_len, src_seek, src_read, src_write, src_tell};
    SF_INFO info;
    memset(&info, 0, sizeof info);
    src->pos = 0;
    SNDFILE *sf = sf_open_virtual(&vio, SFM_READ, &info, src);
    if (!sf) {
        if (src->err)
            return base_fail(d, VKF_ERROR_IO, "%s: read failed: %s", name, strerror(src->err));
        return base_fail(d, VKF_ERROR_FORMAT, "%s: not a readable %s file (libsndfile: %s)", name, kind_name(kind),
                         sf_strerror(NULL));
    }
    vkf_status s = VKF_OK;
    float *mono = NULL, *block = NULL;
    if (!format_matches(kind, info.format)) {
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: not a readable %s file (libsndfile took it for format 0x%x)", name,
                      kind_name(kind), (unsigned)info.format);
        goto done;
    }
    if (info.samplerate < (int)IO_AUDIO_MIN_RATE || info.samplerate > (int)IO_AUDIO_MAX_RATE) {
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: sample rate %d Hz is outside [%u, %u] Hz", name, info.samplerate,
                      IO_AUDIO_MIN_RATE, IO_AUDIO_MAX_RATE);
        goto done;
    }
    if (info.channels < 1 || info.channels > IO_AUDIO_MAX_CHANNELS) {
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: %d channels, outside [1, %d]", name, info.channels, IO_AUDIO_MAX_CHANNELS);
        goto done;
    }
    if (info.frames <= 0) {
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: no audio (0 frames, or a stream that does not say its length)", name);
        goto done;
    }
    double seconds = (double)info.frames / info.samplerate;
    if (info.frames == SF_COUNT_MAX || seconds > max_seconds) {
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: %.1f s of audio (%lld frames at %d Hz), over the %.1f s bound", name,
                      seconds, (long long)info.frames, info.samplerate, max_seconds);
        goto done;
    }
    uint64_t want = 0, have = 0;
    if (kind == AUDIO_WAV && wav_truncated(src, &want, &have)) {
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: truncated WAV: its data chunk says %llu bytes, the file holds %llu", name,
                      (unsigned long long)want, (unsigned long long)have);
        goto done;
    }
    if ((uint64_t)info.frames > SIZE_MAX / sizeof(float)) {
        s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "%s: %lld frames do not fit in memory", name, (long long)info.frames);
        goto done;
    }
    uint64_t frames = (uint64_t)info.frames;
    uint32_t ch = (uint32_t)info.channels;
    mono = malloc((size_t)frames * sizeof(float));
    block = malloc((size_t)IO_AUDIO_BLOCK * ch * sizeof(float));
    if (!mono || !block) {
        s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "%s: out of host memory for %llu frames", name, (unsigned long long)frames);
        goto done;
    }
    sf_command(sf, SFC_SET_NORM_FLOAT, NULL, SF_TRUE); /* integers to [-1, 1) (the default, made explicit) */
    uint64_t got = 0;
    while (got < frames) {
        sf_count_t want_n = (sf_count_t)BASE_MIN((uint64_t)IO_AUDIO_BLOCK, frames - got);
        sf_count_t n = sf_readf_float(sf, block, want_n);
        if (n <= 0) break;
        for (sf_count_t i = 0; i < n; i++) {
            const float *f = block + (size_t)i * ch;
            double sum = 0;
            for (uint32_t c = 0; c < ch; c++) sum += f[c];
            float v = ch == 1 ? f[0] : (float)(sum / ch);
            if (!isfinite(v)) {
                s = base_fail(d, VKF_ERROR_FORMAT, "%s: sample %llu is not a finite number", name,
                              (unsigned long long)(got + (uint64_t)i));
                goto done;
            }
            mono[got + (uint64_t)i] = v;
        }
        got += (uint64_t)n;
    }
    if (src->err) {
        s = base_fail(d, VKF_ERROR_IO, "%s: read failed: %s", name, strerror(src->err));
        goto done;
    }
    if (got < frames) {
        int e = sf_error(sf);
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: corrupt or truncated %s: %llu of the %llu frames its header promises (%s)", name,
                      kind_name(kind), (unsigned long long)got, (unsigned long long)frames,
                      e ? sf_error_number(e) : "the data ends early");
        goto done;
    }
    free(block), block = NULL;
    sf_close(sf), sf = NULL;
    uint32_t from = (uint32_t)info.samplerate;
    if (rate == 0 || rate == from) {
        out->samples = mono, out->frames = frames, out->rate = from;
        return VKF_OK;
    }
    s = io_audio_resample(d, mono, frames, from, rate, out);
    if (s != VKF_OK) base_fail_prefix(d, s, "%s: ", name);
done:
    free(block);
    free(mono);
    if (sf) sf_close(sf);
    return s;
}

vkf_status io_audio_decode(base_diag *d, const void *data, size_t size, const char *name, uint32_t rate, double max_seconds,
                           io_audio *out)
{
    memset(out, 0, sizeof(*out));
    if (!data && size) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s: no data", name);
    if ((uint64_t)size > (uint64_t)INT64_MAX) return base_fail(d, VKF_ERROR_FORMAT, "%s: too large", name);
    audio_src src = {.mem = data ? data : (const uint8_t *)"", .fd = -1, .size = (sf_count_t)size};
    return decode_src(d, &src, name, rate, max_seconds, out);
}

vkf_status io_audio_load(base_diag *d, const char *path, uint32_t rate, double max_seconds, io_audio *out)
{
    memset(out, 0, sizeof(*out));
    int fd = base_open_regular(d, path);
    if (fd < 0) return VKF_ERROR_IO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return base_fail(d, VKF_ERROR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    audio_src src = {.fd = fd, .size = (sf_count_t)st.st_size};
    vkf_status s = decode_src(d, &src, path, rate, max_seconds, out);
    close(fd);
    return s;
}
