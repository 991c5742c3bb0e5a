/* vkformer.h's text-pair tasks on sequence classifiers: zero-shot text
 * classification (HF's zero-shot-classification pipeline over an NLI model)
 * and reranking (sentence-transformers' CrossEncoder.predict / .rank). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* The pairs' logits: n copies of `first` against each of seconds, in one
 * batched call (messages name pair i "<noun> i"); *logits is malloc'd n *
 * num_labels floats. */
static vkf_status pair_logits(vkf_model *m, const char *what, const char *noun, const char *first, const char *const *seconds, uint32_t n,
                              vkf_truncation strategy, float **logits)
{
    const char **firsts = malloc((size_t)(n ? n : 1) * sizeof *firsts);
    *logits = malloc(((size_t)n * m->m.num_labels + 1) * sizeof(float));
    vkf_status s = firsts && *logits ? VKF_OK : base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t i = 0; i < n && s == VKF_OK; i++) firsts[i] = first;
    if (s == VKF_OK) s = api_text_logits(m, what, noun, firsts, seconds, n, strategy, *logits);
    free(firsts);
    if (s != VKF_OK) free(*logits), *logits = NULL;
    return s;
}

/* HF's entailment_id: the first label whose lowercase starts with "entail"; -1 for none. */
static int64_t entailment_id(const model *mm)
{
    for (uint32_t i = 0; i < mm->num_labels; i++) {
        const char *l = mm->labels[i];
        size_t k = 0;
        while (k < 6 && l[k] && tolower((unsigned char)l[k]) == "entail"[k]) k++;
        if (k == 6) return i;
    }
    return -1;
}

/* Best first; equal scores: the later label first (HF reverses numpy's ascending argsort). */
static int by_score_desc(const void *a, const void *b)
{
    const vkf_class_score *x = a, *y = b;
    if (x->prob != y->prob) return x->prob < y->prob ? 1 : -1;
    return x->index < y->index ? 1 : x->index > y->index ? -1 : 0;
}

vkf_status vkf_zero_shot_text(vkf_model *m, const char *text, const char *const *labels, uint32_t n, const char *tmpl,
                              int multi_label, vkf_class_score *out)
{
    if (!m || !text || (n && (!labels || !out)))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_zero_shot_text: NULL argument");
    base_diag *d = m->dev->diag;
    const model *mm = &m->m;
    if (mm->task != MODEL_TASK_TEXT_CLASSIFICATION)
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "zero-shot text classification needs an NLI sequence classifier, not %s (%s)",
                         mm->model_type, model_task_name(mm->task));
    if (!n) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "no candidate labels (zero-shot classification needs at least one)");
    char **hyp = NULL;
    vkf_status s = api_fill_template(d, tmpl ? tmpl : VKF_ZERO_SHOT_TEXT_TEMPLATE, labels, n, &hyp);
    if (s != VKF_OK) return s;
    uint32_t L = mm->num_labels;
    int64_t ent = entailment_id(mm);
    if (ent < 0) {
        base_log(d, VKF_LOG_WARN, "no label of %s's id2label starts with \"entail\": the last logit is taken for entailment, as HF "
                 "does (name the labels in config.json for correct scores)", mm->model_type);
        ent = (int64_t)L - 1;
    }
    /* HF: logits[..., [contradiction_id, entailment_id]] with contradiction_id = -1 if entailment_id == 0 else 0 */
    uint32_t contra = ent == 0 ? L - 1 : 0;
    float *logits = NULL;
    s = pair_logits(m, "vkf_zero_shot_text", "hypothesis", text, (const char *const *)hyp, n, VKF_TRUNCATE_ONLY_FIRST, &logits);
    /* the entailment logits apart first: a strided max reduction crashed aarch64 gcc 12's vectoriser at -O3 */
    float *e = s == VKF_OK ? malloc((size_t)n * sizeof *e) : NULL;
    if (s == VKF_OK && !e) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (s == VKF_OK) {
        for (uint32_t i = 0; i < n; i++) e[i] = logits[(size_t)i * L + ent];
        double mx = base_max_f32(e, n), sum = 0;
        for (uint32_t i = 0; i < n; i++) sum += exp((double)e[i] - mx);
        for (uint32_t i = 0; i < n; i++) {
            const float *x = logits + (size_t)i * L;
            double p = multi_label || n == 1 ? 1.0 / (1.0 + exp((double)x[contra] - x[ent])) : exp(x[ent] - mx) / sum;
            out[i] = (vkf_class_score){i, labels[i], (float)p, x[ent]};
        }
        qsort(out, n, sizeof *out, by_score_desc);
    }
    free(e);
    free(logits);
    api_free_texts(hyp, n);
    return s;
}

/* CrossEncoder's activation: config.json's, else sigmoid (one label) or identity. */
static vkf_status rerank_activation(const vkf_model *m, model_score *fn, bool *tanh_fn)
{
    const char *act = m->m.rerank_act;
    *tanh_fn = false;
    *fn = m->m.num_labels == 1 ? MODEL_SCORE_SIGMOID : MODEL_SCORE_NONE;
    if (!*act) return VKF_OK;
    if (strncmp(act, "torch.", 6)) { /* sentence-transformers: untrusted code, the default instead */
        base_log(m->dev->diag, VKF_LOG_WARN, "activation_fn \"%s\" is not a torch class: the default activation is used, as "
                 "sentence-transformers does without trust_remote_code", act);
        return VKF_OK;
    }
    const char *cls = strrchr(act, '.') + 1;
    if (!strcmp(cls, "Sigmoid")) *fn = MODEL_SCORE_SIGMOID;
    else if (!strcmp(cls, "Identity")) *fn = MODEL_SCORE_NONE;
    else if (!strcmp(cls, "Softmax")) *fn = MODEL_SCORE_SOFTMAX;
    else if (!strcmp(cls, "Tanh")) *fn = MODEL_SCORE_NONE, *tanh_fn = true;
    else
        return base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "the cross-encoder's activation_fn \"%s\" is not supported (Sigmoid, "
                         "Identity, Softmax, Tanh)", act);
    return VKF_OK;
}

vkf_status vkf_rerank(vkf_model *m, const char *query, const char *const *docs, uint32_t n, float *scores)
{
    if (!m || !query || (n && (!docs || !scores)))
        return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_rerank: NULL argument");
    if (m->m.task != MODEL_TASK_TEXT_CLASSIFICATION)
        return base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "reranking needs a cross-encoder (a sequence classifier), not %s (%s)",
                         m->m.model_type, model_task_name(m->m.task));
    for (uint32_t i = 0; i < n; i++)
        if (!docs[i]) return base_fail(m->dev->diag, VKF_ERROR_INVALID_ARGUMENT, "text %u is NULL (a document)", i);
    model_score fn;
    bool tanh_fn;
    vkf_status s = rerank_activation(m, &fn, &tanh_fn);
    float *logits = NULL;
    if (s == VKF_OK) s = pair_logits(m, "vkf_rerank", "text", query, docs, n, VKF_TRUNCATE_LONGEST_FIRST, &logits);
    uint32_t L = m->m.num_labels;
    for (uint32_t i = 0; i < n && s == VKF_OK; i++) {
        const float *x = logits + (size_t)i * L;
        double mx = base_max_f32(x, L), sum = 0;
        for (uint32_t j = 0; j < L; j++) sum += exp((double)x[j] - mx);
        for (uint32_t j = 0; j < L; j++) {
            double v = fn == MODEL_SCORE_SIGMOID ? 1.0 / (1.0 + exp(-(double)x[j]))
                     : fn == MODEL_SCORE_SOFTMAX ? exp((double)x[j] - mx) / sum
                     : tanh_fn                   ? tanh((double)x[j])
                                                 : (double)x[j];
            scores[(size_t)i * L + j] = (float)v;
        }
    }
    free(logits);
    return s;
}

static int by_rank(const void *a, const void *b)
{
    const vkf_rank_result *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->corpus_id < y->corpus_id ? -1 : x->corpus_id > y->corpus_id; /* Python's stable sort */
}

vkf_status vkf_rank(vkf_model *m, const char *query, const char *const *docs, uint32_t n, uint32_t top_k, vkf_rank_result *out)
{
    if (!m || !query || (n && (!docs || !out))) return base_fail(base_thread_diag(), VKF_ERROR_INVALID_ARGUMENT, "vkf_rank: NULL argument");
    if (m->m.task == MODEL_TASK_TEXT_CLASSIFICATION && m->m.num_labels != 1)
        return base_fail(m->dev->diag, VKF_ERROR_UNSUPPORTED, "ranking needs a one-logit cross-encoder; this model has %u labels "
                         "(vkf_rerank gives them all), as sentence-transformers' CrossEncoder.rank says", m->m.num_labels);
    float *scores = malloc((size_t)(n ? n : 1) * sizeof *scores);
    vkf_rank_result *all = malloc((size_t)(n ? n : 1) * sizeof *all);
    vkf_status s = scores && all ? VKF_OK : base_fail(m->dev->diag, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    if (s == VKF_OK) s = vkf_rerank(m, query, docs, n, scores);
    if (s == VKF_OK) {
        for (uint32_t i = 0; i < n; i++) all[i] = (vkf_rank_result){i, scores[i]};
        qsort(all, n, sizeof *all, by_rank);
        memcpy(out, all, (size_t)(top_k && top_k < n ? top_k : n) * sizeof *out);
    }
    free(scores);
    free(all);
    return s;
}
