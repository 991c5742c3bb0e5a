/* vkformer.h: speech recognition with CTC heads (wav2vec 2.0, HuBERT), as
 * HF's automatic-speech-recognition pipeline runs it: the feature
 * extractor's normalisation, one run, the logits' argmax per frame, then
 * Wav2Vec2CTCTokenizer's decoding (repeats collapsed, the blank dropped, the
 * word delimiter a space). */
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
} api_speech;

void api_free_speech(api_speech *s)
{
    if (!s) return;
    for (uint32_t i = 0; i < s->n_tokens; i++) free(s->tokens[i]);
    free(s->tokens);
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
    const char *delim = "|", *pad = "<pad>";
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    FILE *f = s == VKF_OK ? fopen(path, "rb") : NULL;
    if (f) {
        fclose(f);
        s = io_json_load(d, path, &cfg);
        if (s == VKF_OK) s = io_json_str(d, path, cfg, "word_delimiter_token", "|", &delim);
        if (s == VKF_OK) s = io_json_bool(d, path, cfg, "do_lower_case", false, &sp->lower);
        const cJSON *p = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "pad_token") : NULL;
        if (s == VKF_OK && cJSON_IsString(p)) pad = p->valuestring;
        else if (s == VKF_OK && cJSON_IsObject(p) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "content")))
            pad = cJSON_GetObjectItemCaseSensitive(p, "content")->valuestring;
    }
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

/* Wav2Vec2FeatureExtractor's zero_mean_unit_var_norm of one clip. */
static void normalize(float *x, uint64_t n)
{
    double mean = 0, var = 0;
    for (uint64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (uint64_t i = 0; i < n; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
    var /= (double)n;
    double inv = 1.0 / sqrt(var + 1e-7);
    for (uint64_t i = 0; i < n; i++) x[i] = (float)(((double)x[i] - mean) * inv);
}

/* The CTC text of frame ids: repeats collapsed, blanks dropped, the word
 * delimiter a space, the ends stripped, lower-cased when asked. */
static vkf_status ctc_text(base_diag *d, const api_speech *sp, const int32_t *ids, uint32_t n, char **out)
{
    size_t cap = 1;
    for (uint32_t i = 0; i < n; i++) cap += sp->tokens[ids[i]] ? strlen(sp->tokens[ids[i]]) : 0;
    char *text = malloc(cap), *w = text;
    if (!text) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t i = 0; i < n; i++) {
        if ((i && ids[i] == ids[i - 1]) || ids[i] == sp->pad || !sp->tokens[ids[i]]) continue;
        const char *t = ids[i] == sp->delim ? " " : sp->tokens[ids[i]];
        size_t l = strlen(t);
        memcpy(w, t, l), w += l;
    }
    *w = 0;
    char *start = text;
    while (*start == ' ') start++;
    while (w > start && w[-1] == ' ') *--w = 0;
    memmove(text, start, (size_t)(w - start) + 1);
    if (sp->lower)
        for (char *c = text; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    *out = text;
    return VKF_OK;
}

vkf_status vkf_transcribe(vkf_model *m, const float *samples, uint64_t n, uint32_t rate, char **text)
{
    if (!m || !text || (n && !samples)) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_transcribe: NULL argument");
    *text = NULL;
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    const api_speech *sp = m->speech;
    if (!sp || !mm->ctc_vocab) return base_fail(d, VKF_ERROR_UNSUPPORTED, "vkf_transcribe: %s has no CTC head", mm->model_type);
    if (!sp->tokens) return base_fail(d, VKF_ERROR_NOT_FOUND, "vkf_transcribe: the model directory has no vocab.json");
    if (rate != sp->rate)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_transcribe: %u Hz audio for a model of %u Hz (resample it first)", rate, sp->rate);
    if (n > UINT32_MAX / 2) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_transcribe: %llu samples is too long for one run", (unsigned long long)n);
    uint32_t L = (uint32_t)n, T = model_audio_frames(mm, L);
    if (!T) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "vkf_transcribe: %u samples are too few for one frame", L);
    float *x = malloc((size_t)L * sizeof(float) + (size_t)T * mm->ctc_vocab * sizeof(float));
    int32_t *ids = malloc(((size_t)T + T + 1) * sizeof(int32_t));
    vkf_status s = x && ids ? VKF_OK : base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (s == VKF_OK) {
        float *logits = x + L;
        memcpy(x, samples, (size_t)L * sizeof(float));
        if (sp->normalize) normalize(x, L);
        int32_t *mask = ids + T, frames = (int32_t)T;
        for (uint32_t j = 0; j < T; j++) mask[j] = 1;
        rt_output o = {"logits", logits};
        s = rt_run_audio(&m->run, 1, L, x, mask, &frames, &o, 1);
        for (uint32_t j = 0; s == VKF_OK && j < T; j++) {
            const float *row = logits + (size_t)j * mm->ctc_vocab;
            int32_t best = 0;
            for (uint32_t k = 1; k < mm->ctc_vocab; k++)
                if (row[k] > row[best]) best = (int32_t)k;
            ids[j] = best;
        }
        if (s == VKF_OK) s = ctc_text(d, sp, ids, T, text);
    }
    free(x), free(ids);
    return s;
}
