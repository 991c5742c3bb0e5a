/* vkformer.h: zero-shot image classification with a dual encoder (CLIP). */
#include "api.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IMAGES_PER_RUN 32

vkf_status vkf_embed_image_files(vkf_model *m, const char *const *paths, uint32_t n, float *out)
{
    if (!m || (n && (!paths || !out))) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_embed_image_files: NULL argument");
    const model *mm = &m->m;
    base_diag *d = m->dev->diag;
    if (!mm->image_size) return base_fail(d, VKF_ERROR_UNSUPPORTED, "vkf_embed_image_files: %s has no vision tower", mm->model_type);
    if (!mm->embed_dim) return base_fail(d, VKF_ERROR_UNSUPPORTED, "vkf_embed_image_files: %s is not an embedding model", mm->model_type);
    bool projected = mm->embed_dim != mm->hidden || mm->task == MODEL_TASK_ZERO_SHOT_IMAGE;
    const char *name = projected ? "image_embeds" : "vision_pooled";
    size_t per = (size_t)mm->channels * mm->image_size * mm->image_size;
    uint32_t chunk = BASE_MIN(n, (uint32_t)IMAGES_PER_RUN);
    float *pixels = chunk ? malloc(per * chunk * sizeof(float)) : NULL;
    vkf_status s = !chunk || pixels ? VKF_OK : base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t first = 0; first < n && s == VKF_OK; first += chunk) {
        uint32_t b = BASE_MIN(chunk, n - first);
        for (uint32_t i = 0; i < b && s == VKF_OK; i++) s = vkf_image_preprocess_file(m, paths[first + i], pixels + per * i);
        rt_output o = {name, out + (size_t)first * mm->embed_dim};
        if (s == VKF_OK) s = rt_run_images(&m->run, b, pixels, &o, 1);
    }
    free(pixels);
    return s;
}

vkf_status vkf_zero_shot_scores(const vkf_model *m, const float *img, uint32_t ni, const float *txt, uint32_t nt, float *probs)
{
    if (!m || (ni && nt && (!img || !txt || !probs)))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_zero_shot_scores: NULL argument");
    if (!m->m.embed_dim || !m->m.logit_scale)
        return base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "%s is not a dual encoder", m->m.model_type);
    if (!nt) return base_fail(m->dev->diag, VKF_ERROR_INVALID_ARGUMENT, "no texts to score the images against");
    api_clip_logits(&m->m, img, ni, txt, nt, probs, NULL);
    for (uint32_t i = 0; i < ni; i++) { /* softmax over the texts, in float64 */
        float *row = probs + (size_t)i * nt;
        double mx = base_max_f32(row, nt), sum = 0;
        for (uint32_t j = 0; j < nt; j++) sum += exp((double)row[j] - mx);
        for (uint32_t j = 0; j < nt; j++) row[j] = (float)(exp((double)row[j] - mx) / sum);
    }
    return VKF_OK;
}

static int by_prob_desc(const void *a, const void *b)
{
    const vkf_class_score *x = a, *y = b;
    if (x->prob != y->prob) return x->prob < y->prob ? 1 : -1;
    return x->index < y->index ? -1 : x->index > y->index;
}

vkf_status api_fill_template(base_diag *d, const char *tmpl, const char *const *labels, uint32_t n, char ***out)
{
    *out = NULL;
    const char *hole = strstr(tmpl, "{}");
    if (!hole) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "the hypothesis template \"%s\" has no {} for the label", tmpl);
    /* Python's str.format, as HF calls it, fails on a second {} (one label to fill it) */
    if (strstr(hole + 2, "{}"))
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "the hypothesis template \"%s\" has more than one {} (HF's format(label) "
                         "fills one)", tmpl);
    char **texts = calloc(n ? n : 1, sizeof *texts);
    if (!texts) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    size_t pre = (size_t)(hole - tmpl), post = strlen(hole + 2);
    for (uint32_t i = 0; i < n; i++) {
        if (!labels[i]) {
            api_free_texts(texts, n);
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "label %u is NULL", i);
        }
        size_t len = strlen(labels[i]);
        texts[i] = malloc(pre + len + post + 1);
        if (!texts[i]) {
            api_free_texts(texts, n);
            return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        }
        memcpy(texts[i], tmpl, pre);
        memcpy(texts[i] + pre, labels[i], len);
        memcpy(texts[i] + pre + len, hole + 2, post + 1);
    }
    *out = texts;
    return VKF_OK;
}

void api_free_texts(char **texts, uint32_t n)
{
    for (uint32_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
}

vkf_status vkf_zero_shot(vkf_model *m, const char *image_path, const char *const *labels, uint32_t n, const char *tmpl,
                         vkf_class_score *out)
{
    if (!m || !image_path || (n && (!labels || !out)))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_zero_shot: NULL argument");
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    if (mm->task != MODEL_TASK_ZERO_SHOT_IMAGE)
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "zero-shot classification needs a CLIPModel with both towers, not %s (%s)",
                         mm->model_type, model_task_name(mm->task));
    if (!n) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "no candidate labels");
    char **texts = NULL;
    vkf_status s = api_fill_template(d, tmpl ? tmpl : VKF_ZERO_SHOT_TEMPLATE, labels, n, &texts);
    if (s != VKF_OK) return s;
    float *emb = malloc(((size_t)n + 1) * mm->embed_dim * sizeof(float)), *probs = malloc((size_t)n * sizeof(float));
    if (!emb || !probs) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (s == VKF_OK) s = vkf_embed_image_files(m, &image_path, 1, emb);
    if (s == VKF_OK) s = vkf_embed(m, (const char *const *)texts, n, NULL, emb + mm->embed_dim);
    if (s == VKF_OK) s = vkf_zero_shot_scores(m, emb, 1, emb + mm->embed_dim, n, probs);
    if (s == VKF_OK) {
        float *logits = malloc((size_t)n * sizeof(float));
        if (!logits) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        else {
            api_clip_logits(mm, emb, 1, emb + mm->embed_dim, n, logits, NULL);
            for (uint32_t i = 0; i < n; i++) out[i] = (vkf_class_score){i, labels[i], probs[i], logits[i]};
            qsort(out, n, sizeof *out, by_prob_desc);
            free(logits);
        }
    }
    api_free_texts(texts, n);
    free(emb);
    free(probs);
    return s;
}
