/* vkformer.h's text tasks: text classification, sentence embeddings and
 * fill-mask on the text encoders, as HF pipelines and sentence-transformers
 * compute them, with the model directory's tokenizer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "../text/text.h"

#define TEXTS_PER_RUN 32

vkf_status api_load_tokenizer(vkf_model *m, const char *dir)
{
    base_diag *d = m->dev->diag;
    if (!tok_dir_has_files(dir)) return VKF_OK; /* an image model, or ids only */
    if (vkf_tokenizer_load(dir, &m->tok) != VKF_OK) return base_fail(d, VKF_ERROR_FORMAT, "%s", base_thread_diag()->error);
    vkf_tokenizer_info ti;
    vkf_tokenizer_get_info(m->tok, &ti);
    if (ti.vocab_size > m->m.vocab_size) {
        vkf_tokenizer_destroy(m->tok);
        m->tok = NULL;
        return base_fail(d, VKF_ERROR_SHAPE, "%s: the tokenizer has %u tokens, the model's embedding table %u: they do not belong together",
                         dir, ti.vocab_size, m->m.vocab_size);
    }
    return VKF_OK;
}

const vkf_tokenizer *vkf_model_tokenizer(const vkf_model *m) { return m ? m->tok : NULL; }

static vkf_status need_text_model(vkf_model *m, const char *what)
{
    if (!m->m.vocab_size)
        return base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "%s: %s is an image model (no text tower)", what, m->m.model_type);
    if (!m->tok) return base_fail(m->dev->diag, VKF_ERROR_NOT_FOUND, "%s: the model directory has no tokenizer files", what);
    return VKF_OK;
}

/* A batch of encoded texts as right-padded int32 [n, S] arrays. */
typedef struct id_batch {
    uint32_t n, S;
    int32_t *ids, *mask, *tt;
} id_batch;

static void id_batch_free(id_batch *b)
{
    free(b->ids);
    memset(b, 0, sizeof *b);
}

/* Tokenizes texts (and pairs), truncating to max_len tokens with a warning.
 * Messages number the texts from `base` (their index in the caller's array). */
static vkf_status encode(vkf_model *m, const char *noun, const char *const *texts, const char *const *pairs, uint32_t n,
                         uint32_t base, uint32_t max_len, vkf_truncation strategy, id_batch *out)
{
    base_diag *d = m->dev->diag;
    memset(out, 0, sizeof *out);
    vkf_encoding *e = calloc(n, sizeof *e);
    if (!e) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    vkf_status s = VKF_OK;
    uint32_t done = 0, longest = 0;
    for (; done < n && s == VKF_OK; done++) {
        const char *t = texts[done], *p = pairs ? pairs[done] : NULL;
        if (!t) {
            s = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s %u is NULL", noun, base + done);
            break;
        }
        if (vkf_tokenizer_encode(m->tok, t, VKF_TEXT_NUL, p, VKF_TEXT_NUL, NULL, &e[done]) != VKF_OK) {
            s = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s %u: %s", noun, base + done, base_thread_diag()->error);
            break;
        }
        if (e[done].length > max_len) {
            base_log(d, VKF_LOG_WARN, "%s %u: %u tokens truncated to %u", noun, base + done, e[done].length, max_len);
            vkf_encoding_free(&e[done]);
            vkf_encode_options o = {.max_length = max_len, .truncation = strategy};
            if (vkf_tokenizer_encode(m->tok, t, VKF_TEXT_NUL, p, VKF_TEXT_NUL, &o, &e[done]) != VKF_OK) {
                s = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s %u: %s", noun, base + done, base_thread_diag()->error);
                break;
            }
        }
        if (e[done].length == 0) {
            s = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%s %u has no tokens (an empty text, and a tokenizer that adds none)", noun, base + done);
            done++;
            break;
        }
        longest = BASE_MAX(longest, e[done].length);
    }
    if (s == VKF_OK) {
        size_t cells = (size_t)n * longest;
        out->ids = calloc(3 * cells, sizeof(int32_t));
        if (!out->ids) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        else {
            out->n = n, out->S = longest;
            out->mask = out->ids + cells, out->tt = out->ids + 2 * cells;
            for (uint32_t i = 0; i < n && s == VKF_OK; i++)
                for (uint32_t j = 0; j < longest; j++) {
                    size_t o = (size_t)i * longest + j;
                    bool real = j < e[i].length;
                    out->ids[o] = real ? e[i].ids[j] : (int32_t)m->m.pad_id;
                    out->mask[o] = real ? e[i].attention_mask[j] : 0;
                    out->tt[o] = real && m->m.type_vocab ? e[i].type_ids[j] : 0;
                    if (out->tt[o] < 0 || (m->m.type_vocab && (uint32_t)out->tt[o] >= m->m.type_vocab)) {
                        /* it was clamped: a silently different input; torch fails on it */
                        s = base_fail(d, VKF_ERROR_FORMAT, "%s %u: the tokenizer gives token type id %d, and the model has %u token "
                                      "types (type_vocab_size)", noun, base + i, out->tt[o], m->m.type_vocab);
                        break;
                    }
                }
        }
    }
    for (uint32_t i = 0; i < done; i++) vkf_encoding_free(&e[i]);
    free(e);
    return s;
}

/* Runs texts [first, first + count) of b: one output into out. */
static vkf_status run_rows(vkf_model *m, const id_batch *b, uint32_t first, uint32_t count, const char *output, float *out)
{
    size_t off = (size_t)first * b->S;
    rt_output o = {output, out};
    rt_text t = {.B = count, .S = b->S, .ids = b->ids + off, .mask = b->mask + off, .tt = m->m.type_vocab ? b->tt + off : NULL,
                 .packed = true};
    return rt_run_text(&m->run, &t, &o, 1);
}

vkf_status api_text_logits(vkf_model *m, const char *what, const char *noun, const char *const *texts, const char *const *pairs, uint32_t n,
                           vkf_truncation strategy, float *logits)
{
    vkf_status s = need_text_model(m, what);
    if (s != VKF_OK) return s;
    if (m->m.task != MODEL_TASK_TEXT_CLASSIFICATION)
        return base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "%s: this %s model has no sequence classification head (%s)", what,
                         m->m.model_type, model_task_name(m->m.task));
    for (uint32_t first = 0; first < n && s == VKF_OK; first += TEXTS_PER_RUN) {
        uint32_t c = BASE_MIN((uint32_t)TEXTS_PER_RUN, n - first);
        id_batch b;
        s = encode(m, noun, texts + first, pairs ? pairs + first : NULL, c, first, m->m.max_positions, strategy, &b);
        if (s == VKF_OK) s = run_rows(m, &b, 0, c, "logits", logits + (size_t)first * m->m.num_labels);
        id_batch_free(&b);
    }
    return s;
}

vkf_status vkf_classify_texts(vkf_model *m, const char *const *texts, const char *const *pairs, uint32_t n,
                              vkf_class_score *top, uint32_t k)
{
    if (!m || (n && (!texts || (k && !top))))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_classify_texts: NULL argument");
    uint32_t L = m->m.num_labels;
    float *logits = malloc(((size_t)n * L + 1) * sizeof(float));
    vkf_status s = logits ? VKF_OK : base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (s == VKF_OK) s = api_text_logits(m, "vkf_classify_texts", "text", texts, pairs, n, VKF_TRUNCATE_LONGEST_FIRST, logits);
    for (uint32_t i = 0; i < n && s == VKF_OK; i++) s = vkf_top_k(m, logits + (size_t)i * L, top + (size_t)i * k, k);
    free(logits);
    return s;
}

/* x / max(||x||, 1e-12) per row of n (torch.nn.functional.normalize), in float64. */
void api_l2_rows(float *x, uint32_t rows, uint32_t n)
{
    for (uint32_t r = 0; r < rows; r++) {
        float *y = x + (size_t)r * n;
        double norm = 0;
        for (uint32_t f = 0; f < n; f++) norm += (double)y[f] * y[f];
        norm = fmax(sqrt(norm), 1e-12);
        for (uint32_t f = 0; f < n; f++) y[f] = (float)(y[f] / norm);
    }
}

/* CLIP's text tower: the projected row of each text's EOS token (the
 * pooled row without a projection); CLIPModel's graph normalises already. */
static vkf_status embed_at_eos(vkf_model *m, const char *const *texts, uint32_t n, uint32_t max_len, bool normalize, float *out)
{
    const model *mm = &m->m;
    bool projected = mm->embed_dim != mm->hidden || mm->task == MODEL_TASK_ZERO_SHOT_IMAGE;
    const char *output = projected ? "text_embeds" : "text_pooled";
    uint32_t E = projected ? mm->embed_dim : mm->hidden;
    vkf_status s = VKF_OK;
    for (uint32_t first = 0; first < n && s == VKF_OK; first += TEXTS_PER_RUN) {
        uint32_t c = BASE_MIN((uint32_t)TEXTS_PER_RUN, n - first);
        id_batch b;
        s = encode(m, "text", texts + first, NULL, c, first, max_len, VKF_TRUNCATE_LONGEST_FIRST, &b);
        if (s == VKF_OK) s = run_rows(m, &b, 0, c, output, out + (size_t)first * E);
        if (s == VKF_OK && normalize) api_l2_rows(out + (size_t)first * E, c, E);
        id_batch_free(&b);
    }
    return s;
}

vkf_status vkf_embed(vkf_model *m, const char *const *texts, uint32_t n, const vkf_embed_options *opt, float *out)
{
    if (!m || (n && (!texts || !out))) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_embed: NULL argument");
    vkf_status s = need_text_model(m, "vkf_embed");
    if (s != VKF_OK) return s;
    vkf_embed_options o = opt ? *opt : (vkf_embed_options){0};
    const model_sentence *st = &m->m.sentence;
    vkf_pooling pool = o.pooling ? o.pooling : (vkf_pooling)(st->pooling + 1);
    bool normalize = o.normalize == VKF_DEFAULT ? st->normalize : o.normalize == VKF_ON;
    uint32_t max_len = o.max_tokens ? o.max_tokens : st->max_seq_length ? st->max_seq_length : m->m.max_positions;
    max_len = BASE_MIN(max_len, m->m.max_positions);
    if (m->m.text_pooled) return embed_at_eos(m, texts, n, max_len, o.normalize == VKF_ON, out);
    uint32_t H = m->m.hidden;
    for (uint32_t first = 0; first < n && s == VKF_OK; first += TEXTS_PER_RUN) {
        uint32_t c = BASE_MIN((uint32_t)TEXTS_PER_RUN, n - first);
        id_batch b;
        s = encode(m, "text", texts + first, NULL, c, first, max_len, VKF_TRUNCATE_LONGEST_FIRST, &b);
        float *h = s == VKF_OK ? malloc((size_t)c * b.S * H * sizeof(float)) : NULL;
        if (s == VKF_OK && !h) s = base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        if (s == VKF_OK) s = run_rows(m, &b, 0, c, "last_hidden_state", h);
        for (uint32_t i = 0; i < c && s == VKF_OK; i++) {
            /* pooling in float64 over the tokens the mask keeps */
            const float *x = h + (size_t)i * b.S * H;
            const int32_t *mask = b.mask + (size_t)i * b.S;
            float *y = out + (size_t)(first + i) * H;
            double count = 0;
            for (uint32_t j = 0; j < b.S; j++) count += mask[j] != 0;
            for (uint32_t f = 0; f < H; f++) {
                double acc = pool == VKF_POOL_MAX ? -INFINITY : 0;
                if (pool == VKF_POOL_CLS) acc = x[f];
                else
                    for (uint32_t j = 0; j < b.S; j++)
                        if (mask[j]) acc = pool == VKF_POOL_MAX ? fmax(acc, x[(size_t)j * H + f]) : acc + x[(size_t)j * H + f];
                if (pool == VKF_POOL_MEAN) acc /= fmax(count, 1e-9);
                if (pool == VKF_POOL_MEAN_SQRT) acc /= sqrt(fmax(count, 1e-9));
                y[f] = (float)acc;
            }
            if (normalize) api_l2_rows(y, 1, H);
        }
        free(h);
        id_batch_free(&b);
    }
    return s;
}

vkf_status vkf_fill_mask(vkf_model *m, const char *text, uint32_t k, vkf_fill_mask_result *out, uint32_t capacity,
                         uint32_t *count)
{
    if (!m || !text || !count || (capacity && !out))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_fill_mask: NULL argument");
    *count = 0;
    vkf_status s = need_text_model(m, "vkf_fill_mask");
    if (s != VKF_OK) return s;
    base_diag *d = m->dev->diag;
    if (m->m.task != MODEL_TASK_FILL_MASK)
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "this %s model has no masked-language-model head (%s)", m->m.model_type,
                         model_task_name(m->m.task));
    vkf_tokenizer_info ti;
    vkf_tokenizer_get_info(m->tok, &ti);
    if (ti.mask_id < 0) return base_fail(d, VKF_ERROR_UNSUPPORTED, "the tokenizer has no mask token");
    id_batch b;
    s = encode(m, "text", &text, NULL, 1, 0, m->m.max_positions, VKF_TRUNCATE_LONGEST_FIRST, &b);
    if (s != VKF_OK) return s;
    uint32_t masks = 0;
    for (uint32_t j = 0; j < b.S; j++) masks += b.ids[j] == ti.mask_id;
    const char *mask_str = vkf_tokenizer_id_to_token(m->tok, ti.mask_id);
    if (!masks) s = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "the text has no mask token %s to fill", mask_str ? mask_str : "");
    uint32_t V = m->m.vocab_size;
    k = BASE_MIN(k, V);
    if (s == VKF_OK && (uint64_t)masks * k > capacity)
        s = base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%u masks x top %u need room for %u results, %u given", masks, k, masks * k,
                      capacity);
    float *logits = s == VKF_OK ? malloc((size_t)b.S * V * sizeof(float)) : NULL;
    if (s == VKF_OK && !logits) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (s == VKF_OK) s = run_rows(m, &b, 0, 1, "logits", logits);
    uint32_t at = 0, mi = 0;
    for (uint32_t j = 0; j < b.S && s == VKF_OK; j++) {
        if (b.ids[j] != ti.mask_id) continue;
        const float *x = logits + (size_t)j * V;
        double mx = base_max_f32(x, V), sum = 0;
        for (uint32_t v = 0; v < V; v++) sum += exp((double)x[v] - mx);
        for (uint32_t r = 0; r < k; r++) {
            /* the r-th best: the largest logit below the previous pick (ties by id) */
            int64_t best = -1;
            for (uint32_t v = 0; v < V; v++) {
                bool taken = false;
                for (uint32_t q = at - r; q < at && !taken; q++) taken = out[q].token == (int32_t)v;
                if (!taken && (best < 0 || x[v] > x[best])) best = v;
            }
            vkf_fill_mask_result *o = &out[at++];
            memset(o, 0, sizeof *o);
            o->mask = mi;
            o->token = (int32_t)best;
            o->score = (float)(exp((double)x[best] - mx) / sum);
            char *str = NULL;
            size_t len = 0;
            int32_t id = (int32_t)best;
            if (vkf_tokenizer_decode(m->tok, &id, 1, 0, &str, &len) == VKF_OK) {
                snprintf(o->token_str, sizeof o->token_str, "%s", str);
                vkf_free(str);
            }
        }
        mi++;
    }
    free(logits);
    id_batch_free(&b);
    if (s == VKF_OK) *count = at;
    return s;
}
