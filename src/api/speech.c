/* vkformer.h: audio models (wav2vec 2.0, HuBERT). Speech recognition with a
 * CTC head as HF's automatic-speech-recognition pipeline runs it: the
 * feature extractor's normalisation, one run (or chunks overlapping by
 * strides, as its chunk_iter cuts them), the logits' argmax per frame, then
 * Wav2Vec2CTCTokenizer's decoding (repeats collapsed, the blank dropped, the
 * word delimiter a space) with word offsets; audio classification as the
 * audio-classification pipeline; audio files through src/io. */
#include "api.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct api_speech {
    uint32_t rate;
    bool normalize, mask;
    char **tokens;   /* vocab.json by id (NULL: no CTC vocabulary) */
    uint32_t n_tokens;
    int32_t pad, delim;
    bool lower;
    char *unk;       /* the string of an id vocab.json lacks (unk_token) */
} api_speech;

void api_free_speech(api_speech *s)
{
    if (!s) return;
    for (uint32_t i = 0; i < s->n_tokens; i++) free(s->tokens[i]);
    free(s->tokens);
    free(s->unk);
    free(s);
}

static vkf_status load_vocab(base_diag *d, const char *dir, uint32_t vocab, api_speech *sp)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    cJSON *v = NULL, *cfg = NULL;
    vkf_status s = io_json_load(d, path, &v);
    if (s != VKF_OK) return s;
    sp->tokens = calloc(vocab, sizeof *sp->tokens);
    sp->n_tokens = vocab;
    if (!sp->tokens) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (const cJSON *e = v ? v->child : NULL; e && s == VKF_OK; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble != (double)(int64_t)e->valuedouble)
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: the id of \"%s\" is not a non-negative integer", path, e->string);
        else if (e->valuedouble >= vocab)
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: id %.0f of \"%s\" is past the model's %u outputs", path, e->valuedouble, e->string, vocab);
        else if (!sp->tokens[(uint32_t)e->valuedouble] && !(sp->tokens[(uint32_t)e->valuedouble] = strdup(e->string)))
            s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    io_json_free(v);
    /* the tokenizer's options (Wav2Vec2CTCTokenizer's defaults) */
    const char *delim = "|", *pad = "<pad>", *unk = "<unk>";
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    FILE *f = s == VKF_OK ? fopen(path, "rb") : NULL;
    if (f) {
        fclose(f);
        s = io_json_load(d, path, &cfg);
        if (s == VKF_OK) s = io_json_str(d, path, cfg, "word_delimiter_token", "|", &delim);
        if (s == VKF_OK) s = io_json_bool(d, path, cfg, "do_lower_case", false, &sp->lower);
        if (io_json_token(cfg, "pad_token")) pad = io_json_token(cfg, "pad_token");
        if (io_json_token(cfg, "unk_token")) unk = io_json_token(cfg, "unk_token");
    }
    if (s == VKF_OK && !(sp->unk = strdup(unk))) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    sp->pad = sp->delim = -1;
    for (uint32_t i = 0; s == VKF_OK && i < vocab; i++) {
        if (sp->tokens[i] && !strcmp(sp->tokens[i], pad)) sp->pad = (int32_t)i;
        if (sp->tokens[i] && !strcmp(sp->tokens[i], delim)) sp->delim = (int32_t)i;
    }
    if (s == VKF_OK && sp->pad < 0) s = base_fail(d, VKF_ERROR_FORMAT, "%s/vocab.json: no pad token \"%s\" (the CTC blank)", dir, pad);
    io_json_free(cfg);
    return s;
}

vkf_status api_load_speech(vkf_model *m, const char *dir)
{
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    api_speech *sp = calloc(1, sizeof *sp);
    if (!sp) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    m->speech = sp;
    sp->rate = mm->sampling_rate, sp->normalize = true, sp->mask = mm->audio_mask;
    char path[4200];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    FILE *f = fopen(path, "rb");
    vkf_status s = VKF_OK;
    if (f) {
        fclose(f);
        cJSON *pp = NULL;
        s = io_json_load(d, path, &pp);
        if (s == VKF_OK) s = io_json_u32(d, path, pp, "sampling_rate", mm->sampling_rate, 1000, 768000, &sp->rate);
        if (s == VKF_OK) s = io_json_bool(d, path, pp, "do_normalize", true, &sp->normalize);
        if (s == VKF_OK) s = io_json_bool(d, path, pp, "return_attention_mask", mm->audio_mask, &sp->mask);
        io_json_free(pp);
    }
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    f = s == VKF_OK && mm->ctc_vocab ? fopen(path, "rb") : NULL;
    if (f) fclose(f), s = load_vocab(d, dir, mm->ctc_vocab, sp);
    return s;
}

uint32_t api_speech_rate(const vkf_model *m)
{
    return m->speech ? m->speech->rate : m->m.sampling_rate;
}

/* The checks every clip goes through; the frames its run makes in *frames. */
static vkf_status check_clip(vkf_model *m, const char *what, const float *samples, uint64_t n, uint32_t rate, uint32_t *frames)
{
    base_diag *d = m->dev->diag;
    const api_speech *sp = m->speech;
    if (!sp) return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: %s does not take audio", what, m->m.model_type);
    if (rate != sp->rate)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s: %u Hz audio for a model of %u Hz (resample it first: vkf_audio_load does)", what,
                         rate, sp->rate);
    if (n > UINT32_MAX / 2) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s: %llu samples is too long for one run", what, (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(samples[i])) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s: sample %llu is not finite", what, (unsigned long long)i);
    *frames = model_audio_frames(&m->m, n);
    if (!*frames) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s: %llu samples are too few for one frame", what, (unsigned long long)n);
    return VKF_OK;
}

/* Wav2Vec2FeatureExtractor's zero_mean_unit_var_norm of one clip, into x. */
static void normalize(const float *in, float *x, uint64_t n)
{
    double mean = 0, var = 0;
    for (uint64_t i = 0; i < n; i++) mean += in[i];
    mean /= (double)n;
    for (uint64_t i = 0; i < n; i++) var += ((double)in[i] - mean) * ((double)in[i] - mean);
    var /= (double)n;
    double inv = 1.0 / sqrt(var + 1e-7);
    for (uint64_t i = 0; i < n; i++) x[i] = (float)(((double)in[i] - mean) * inv);
}

/* One clip of L samples (T frames) as the feature extractor gives it to the
 * model, run alone: `output` ([T, V] or [V]) into out. */
static vkf_status run_clip(vkf_model *m, const float *samples, uint32_t L, uint32_t T, const char *output, float *out)
{
    float *x = malloc((size_t)L * sizeof(float));
    int32_t *mask = malloc((size_t)T * sizeof(int32_t));
    vkf_status s = x && mask ? VKF_OK : base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (s == VKF_OK) {
        if (m->speech->normalize) normalize(samples, x, L);
        else memcpy(x, samples, (size_t)L * sizeof(float));
        int32_t frames = (int32_t)T;
        for (uint32_t j = 0; j < T; j++) mask[j] = 1;
        rt_output o = {output, out};
        s = rt_run_audio(&m->run, 1, L, x, mask, &frames, &o, 1);
    }
    free(x), free(mask);
    return s;
}

/* Frame ids (per-frame argmax) of the transcription so far. */
typedef struct id_list {
    int32_t *v;
    uint64_t n, cap;
} id_list;

static vkf_status ids_push(base_diag *d, id_list *l, int32_t id)
{
    if (l->n == l->cap) {
        uint64_t cap = l->cap ? l->cap * 2 : 1024;
        int32_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = id;
    return VKF_OK;
}

/* The argmax ids of frames [first, end) of one clip's run. */
static vkf_status clip_ids(vkf_model *m, const float *samples, uint32_t L, uint32_t T, uint32_t first, uint32_t end, id_list *ids)
{
    uint32_t V = m->m.ctc_vocab;
    float *logits = malloc((size_t)T * V * sizeof(float));
    vkf_status s = logits ? run_clip(m, samples, L, T, "logits", logits) : base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t j = first; s == VKF_OK && j < end && j < T; j++) {
        const float *row = logits + (size_t)j * V;
        int32_t best = 0;
        for (uint32_t k = 1; k < V; k++)
            if (row[k] > row[best]) best = (int32_t)k;
        s = ids_push(m->dev->diag, ids, best);
    }
    free(logits);
    return s;
}

/* Python's int(round(x)): halves to even (rint in the default rounding mode). */
static int64_t py_round(double x) { return (int64_t)rint(x); }

/* The pipeline's chunk_iter and its postprocess: chunks of chunk samples
 * stepping by chunk - left - right, the first without a left stride and the
 * last without a right one, each chunk's frames [left, total - right)
 * kept, both rescaled from samples to frames as rescale_stride does. */
static vkf_status chunked_ids(vkf_model *m, const float *samples, uint64_t n, uint64_t chunk, uint64_t left, uint64_t right,
                              const vkf_transcribe_desc *desc, id_list *ids)
{
    double ratio = 1.0 / model_audio_hop(&m->m);
    vkf_status s = VKF_OK;
    for (uint64_t start = 0; start < n && s == VKF_OK; start += chunk - left - right) {
        uint64_t end = start + chunk, len = BASE_MIN(end, n) - start;
        uint64_t l = start ? left : 0, r = end >= n ? 0 : right;
        uint32_t T = model_audio_frames(&m->m, len);
        /* a last piece no longer than its left stride adds nothing, as in
         * chunk_iter; one too short for a frame adds nothing either (HF's
         * convolution would fail on it) */
        if (len > l && T) {
            int64_t total = py_round((double)len * ratio);
            int64_t first = py_round((double)l / (double)len * (double)total);
            int64_t stop = total - py_round((double)r / (double)len * (double)total);
            if (stop > first) s = clip_ids(m, samples + start, (uint32_t)len, T, (uint32_t)first, (uint32_t)BASE_MIN(stop, (int64_t)T), ids);
        }
        if (s == VKF_OK && desc && desc->progress) desc->progress(desc->progress_user, BASE_MIN(end, n), n);
        if (end >= n) break;
    }
    return s;
}

/* The tokenizer's string of a frame id (unk_token for one vocab.json lacks). */
static const char *token_of(const api_speech *sp, int32_t id)
{
    return sp->tokens[id] ? sp->tokens[id] : sp->unk;
}

/* Wav2Vec2CTCTokenizer's decode: ids grouped into runs of the same token, the
 * blank's runs dropped, the word delimiter a space, the text stripped (and
 * lower-cased when asked); with words, the runs' frame offsets grouped into
 * words as _get_word_offsets does (their characters as the runs give them),
 * in seconds as the pipeline computes them: offset * frame / rate. */
static vkf_status ctc_decode(base_diag *d, const api_speech *sp, const int32_t *ids, uint64_t n, uint32_t frame, uint32_t rate,
                             vkf_transcription *out)
{
    /* runs of one token: the text is within their characters, the words at most one a run */
    size_t cap = 1;
    uint64_t runs = 0;
    for (uint64_t i = 0; i < n; i++)
        if (!i || strcmp(token_of(sp, ids[i]), token_of(sp, ids[i - 1]))) cap += strlen(token_of(sp, ids[i])), runs++;
    char *text = malloc(cap), *w = text;
    vkf_word *words = out->words = NULL;
    char *chars = NULL, *cw = NULL;
    if (frame && runs) {
        words = out->words = calloc(runs, sizeof *words);
        chars = cw = malloc(cap + runs);
    }
    if (!text || (frame && runs && (!words || !chars))) {
        free(text), free(chars), free(words), out->words = NULL;
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    const char *pad = sp->tokens[sp->pad];
    bool in_word = false;
    for (uint64_t i = 0, e; i < n; i = e) {
        const char *t = token_of(sp, ids[i]);
        for (e = i + 1; e < n && !strcmp(token_of(sp, ids[e]), t); e++) {}
        if (!strcmp(t, pad)) continue;
        if (ids[i] == sp->delim) t = " ";
        size_t l = strlen(t);
        memcpy(w, t, l), w += l;
        if (!words) continue;
        bool space = !strcmp(t, " ");
        if (space && in_word) *cw++ = 0, in_word = false; /* a word ends */
        if (!space && !in_word) { /* a word starts */
            words[out->n_words++] = (vkf_word){cw, (double)(i * frame) / rate, 0};
            in_word = true;
        }
        if (!space) memcpy(cw, t, l), cw += l, words[out->n_words - 1].end = (double)(e * frame) / rate;
    }
    if (in_word) *cw++ = 0;
    *w = 0;
    /* Python's str.strip() */
    char *start = text;
    while (*start && strchr(" \t\n\v\f\r", *start)) start++;
    while (w > start && strchr(" \t\n\v\f\r", w[-1])) *--w = 0;
    memmove(text, start, (size_t)(w - start) + 1);
    if (sp->lower)
        for (char *c = text; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    out->text = text;
    if (words && !out->n_words) free(chars), free(words), out->words = NULL;
    return VKF_OK;
}

void vkf_transcription_free(vkf_transcription *t)
{
    if (!t) return;
    if (t->words) free((void *)t->words[0].text);
    free(t->words);
    free(t->text);
    *t = (vkf_transcription){0};
}

vkf_status vkf_transcribe_audio(vkf_model *m, const float *samples, uint64_t n, uint32_t rate, const vkf_transcribe_desc *desc,
                                vkf_transcription *out)
{
    if (out) *out = (vkf_transcription){0};
    if (!m || !out || (n && !samples)) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_transcribe: NULL argument");
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    const api_speech *sp = m->speech;
    if (!sp || !mm->ctc_vocab)
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "vkf_transcribe: %s has no CTC head (%s)", mm->model_type, model_task_name(mm->task));
    if (!sp->tokens) return base_fail(d, VKF_ERROR_NOT_FOUND, "vkf_transcribe: the model directory has no vocab.json");
    uint32_t T;
    vkf_status s = check_clip(m, "vkf_transcribe", samples, n, rate, &T);
    if (s != VKF_OK) return s;
    double frame = model_audio_hop(mm); /* samples per frame: the pipeline's align_to */
    double chunk_s = desc ? desc->chunk_length_s : 0;
    if (!(chunk_s >= 0) || chunk_s > 86400) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_transcribe: chunk_length_s %g is out of range", chunk_s);
    id_list ids = {0};
    if (chunk_s > 0) {
        /* seconds to samples, rounded to whole frames as the pipeline does */
        double side[2] = {desc->stride_left_s, desc->stride_right_s};
        int64_t len[3];
        for (int k = 0; k < 2; k++) {
            if (side[k] == 0) side[k] = chunk_s / 6;
            if (!(side[k] < 86400)) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_transcribe: stride %g s is out of range", side[k]);
            len[k + 1] = side[k] < 0 ? 0 : py_round(side[k] * rate / frame) * (int64_t)frame;
        }
        len[0] = py_round(chunk_s * rate / frame) * (int64_t)frame;
        if (len[0] <= len[1] + len[2])
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT,
                             "vkf_transcribe: chunks of %lld samples leave nothing between strides of %lld and %lld (chunk_length_s %g)",
                             (long long)len[0], (long long)len[1], (long long)len[2], chunk_s);
        if (model_audio_frames(mm, (uint64_t)len[0]) == 0)
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_transcribe: chunks of %g s are too short for one frame", chunk_s);
        s = chunked_ids(m, samples, n, (uint64_t)len[0], (uint64_t)len[1], (uint64_t)len[2], desc, &ids);
    } else {
        s = clip_ids(m, samples, (uint32_t)n, T, 0, T, &ids);
        if (s == VKF_ERROR_UNSUPPORTED || s == VKF_ERROR_OUT_OF_MEMORY) /* a device limit: say what avoids it */
            base_fail_prefix(d, s, "vkf_transcribe: %.1f s of audio in one run (transcribe it in chunks: chunk_length_s): ", (double)n / rate);
        if (s == VKF_OK && desc && desc->progress) desc->progress(desc->progress_user, n, n);
    }
    if (s == VKF_OK) s = ctc_decode(d, sp, ids.v, ids.n, desc && desc->word_timestamps ? (uint32_t)frame : 0, rate, out);
    free(ids.v);
    return s;
}

vkf_status vkf_transcribe(vkf_model *m, const float *samples, uint64_t n, uint32_t rate, char **text)
{
    if (!text) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_transcribe: NULL argument");
    vkf_transcription t;
    vkf_status s = vkf_transcribe_audio(m, samples, n, rate, NULL, &t);
    *text = t.text;
    t.text = NULL;
    vkf_transcription_free(&t);
    return s;
}

vkf_status vkf_classify_audio(vkf_model *m, const float *samples, uint64_t n, uint32_t rate, vkf_class_score *top, uint32_t k)
{
    if (!m || (n && !samples) || (k && !top))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_classify_audio: NULL argument");
    const model *mm = &m->m;
    if (mm->task != MODEL_TASK_AUDIO_CLASSIFICATION)
        return base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "vkf_classify_audio: %s is not an audio classifier (%s)", mm->model_type,
                         model_task_name(mm->task));
    uint32_t T;
    vkf_status s = check_clip(m, "vkf_classify_audio", samples, n, rate, &T);
    float *logits = s == VKF_OK ? malloc((size_t)mm->num_labels * sizeof(float)) : NULL;
    if (s == VKF_OK && !logits) s = base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (s == VKF_OK) s = run_clip(m, samples, (uint32_t)n, T, "logits", logits);
    if (s == VKF_OK) s = vkf_top_k(m, logits, top, k);
    free(logits);
    return s;
}

/* ---- audio files ---------------------------------------------------------------- */

static vkf_status audio_out(vkf_status s, io_audio *a, vkf_audio *out)
{
    if (s == VKF_OK) *out = (vkf_audio){a->samples, a->frames, a->rate};
    return s;
}

vkf_status vkf_audio_load(const char *path, uint32_t rate, vkf_audio *out)
{
    if (out) *out = (vkf_audio){0};
    if (!path || !out) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_audio_load: NULL argument");
    io_audio a;
    return audio_out(io_audio_load(base_thread_diag(), path, rate, 0, &a), &a, out);
}

vkf_status vkf_audio_load_memory(const void *data, size_t size, const char *name, uint32_t rate, vkf_audio *out)
{
    if (out) *out = (vkf_audio){0};
    if (!data || !out) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_audio_load_memory: NULL argument");
    io_audio a;
    return audio_out(io_audio_decode(base_thread_diag(), data, size, name ? name : "(memory)", rate, 0, &a), &a, out);
}

void vkf_audio_free(vkf_audio *audio)
{
    if (!audio) return;
    free(audio->samples);
    *audio = (vkf_audio){0};
}
