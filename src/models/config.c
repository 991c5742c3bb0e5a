/* Config pieces every family reads the same way: activations by HF name,
 * id2label / num_labels. */
#include "model.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

vkf_status model_parse_act(base_diag *d, const char *file, const char *name, op_act *act)
{
    static const struct {
        const char *name;
        op_act act;
    } acts[] = {{"gelu", OP_ACT_GELU},           {"gelu_new", OP_ACT_GELU_TANH},     {"gelu_pytorch_tanh", OP_ACT_GELU_TANH},
                {"gelu_fast", OP_ACT_GELU_TANH}, {"quick_gelu", OP_ACT_QUICK_GELU}, {"relu", OP_ACT_RELU},
                {"silu", OP_ACT_SILU},           {"swish", OP_ACT_SILU},             {"tanh", OP_ACT_TANH}};
    for (size_t i = 0; i < BASE_ARRAY_LEN(acts); i++)
        if (strcmp(name, acts[i].name) == 0) {
            *act = acts[i].act;
            return VKF_OK;
        }
    return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: activation \"%s\" is not supported (gelu, gelu_new, quick_gelu, relu, silu, tanh)",
                     file, name);
}

/* id2label: {"0": "tench", ...}; indices must cover 0..n-1 exactly once. */
vkf_status model_parse_labels(base_diag *d, const char *file, const cJSON *root, uint32_t *num_labels, char ***labels,
                              model_score *score)
{
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    uint32_t n = 0;
    vkf_status s = VKF_OK;
    if (map && !cJSON_IsNull(map)) {
        if (!cJSON_IsObject(map)) return base_fail(d, VKF_ERROR_FORMAT, "%s: \"id2label\" must be an object", file);
        for (const cJSON *it = map->child; it; it = it->next) n++;
    }
    uint32_t declared = 0;
    s = io_json_u32(d, file, root, "num_labels", n ? n : 2, 1, 1u << 20, &declared);
    if (s != VKF_OK) return s;
    if (n && declared != n)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: num_labels %u disagrees with %u id2label entries", file, declared, n);
    *num_labels = n ? n : declared;
    /* problem_type as transformers validates it, and the pipelines' choice */
    const char *problem = NULL;
    s = io_json_str(d, file, root, "problem_type", NULL, &problem);
    if (s != VKF_OK) return s;
    if (problem && strcmp(problem, "regression") && strcmp(problem, "single_label_classification") &&
        strcmp(problem, "multi_label_classification"))
        return base_fail(d, VKF_ERROR_FORMAT,
                         "%s: problem_type \"%s\" is not one of regression, single_label_classification, "
                         "multi_label_classification", file, problem);
    if (problem && !strcmp(problem, "single_label_classification") && *num_labels == 1)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: problem_type single_label_classification needs num_labels > 1 (transformers "
                         "refuses it: use 2 labels, or regression)", file);
    *score = problem && !strcmp(problem, "regression") ? MODEL_SCORE_NONE
           : (problem && !strcmp(problem, "multi_label_classification")) || *num_labels == 1 ? MODEL_SCORE_SIGMOID
                                                                                          : MODEL_SCORE_SOFTMAX;
    (*labels) = calloc(*num_labels, sizeof(char *));
    if (!(*labels)) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (const cJSON *it = n ? map->child : NULL; it && s == VKF_OK; it = it->next) {
        char *end;
        /* digits only: strtoul would read "" or " 1" or "-0" as an index too */
        bool digits = it->string[0] >= '0' && it->string[0] <= '9';
        unsigned long idx = digits ? strtoul(it->string, &end, 10) : ULONG_MAX;
        if (!digits || *end || idx >= *num_labels || !cJSON_IsString(it) || (*labels)[idx])
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: id2label entry \"%s\" is not a unique index below %u with a string",
                          file, it->string, *num_labels);
        else
            (*labels)[idx] = base_strdup(it->valuestring);
    }
    for (uint32_t i = 0; i < *num_labels && s == VKF_OK; i++) {
        if ((*labels)[i]) continue;
        char buf[32];
        snprintf(buf, sizeof buf, "LABEL_%u", i); /* HF's default names */
        (*labels)[i] = base_strdup(buf);
    }
    return s;
}

void model_free_labels(uint32_t n, char **labels)
{
    if (labels)
        for (uint32_t i = 0; i < n; i++) free(labels[i]);
    free(labels);
}

vkf_status model_rerank_activation(base_diag *d, const char *file, const cJSON *root, model *m)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "sentence_transformers");
    const char *act = NULL;
    vkf_status s = VKF_OK;
    if (st && !cJSON_IsNull(st) && !cJSON_IsObject(st))
        return base_fail(d, VKF_ERROR_FORMAT, "%s: \"sentence_transformers\" must be an object", file);
    if (cJSON_IsObject(st)) s = io_json_str(d, file, st, "activation_fn", NULL, &act);
    if (s == VKF_OK && !act) s = io_json_str(d, file, root, "sbert_ce_default_activation_function", NULL, &act);
    if (s == VKF_OK && act) snprintf(m->rerank_act, sizeof m->rerank_act, "%s", act);
    return s;
}

vkf_status model_sentence_load(base_diag *d, const char *dir, model_sentence *out)
{
    memset(out, 0, sizeof *out);
    char path[4096];
    snprintf(path, sizeof path, "%s/modules.json", dir);
    if (!base_exists(path)) return VKF_OK; /* not a sentence-transformers folder */
    /* modules.json is a JSON array: read it as a file of its own */
    void *text;
    size_t size;
    vkf_status s = base_read_file(d, path, &text, &size);
    if (s != VKF_OK) return s;
    const char *end = NULL;
    cJSON *mods = cJSON_ParseWithLengthOpts(text, size, &end, false);
    bool trailing = false;
    for (const char *c = end; mods && c && c < (const char *)text + size; c++) trailing |= !strchr(" \t\r\n", *c);
    free(text);
    if (!cJSON_IsArray(mods) || trailing) {
        cJSON_Delete(mods);
        return base_fail(d, VKF_ERROR_FORMAT, "%s: not a JSON array of modules%s", path, trailing ? " (data after it)" : "");
    }
    out->present = true;
    char pool_dir[256] = "";
    for (const cJSON *m = mods->child; m && s == VKF_OK; m = m->next) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(m, "type"), *p = cJSON_GetObjectItemCaseSensitive(m, "path");
        if (!cJSON_IsObject(m) || !cJSON_IsString(type)) {
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: a module is not an object with a \"type\"", path);
            break;
        }
        if (strstr(type->valuestring, "models.Pooling") && cJSON_IsString(p))
            snprintf(pool_dir, sizeof pool_dir, "%s", p->valuestring);
        else if (strstr(type->valuestring, "models.Normalize"))
            out->normalize = true;
        else if (!strstr(type->valuestring, "models.Transformer"))
            s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: module %s is not supported (Transformer, Pooling, Normalize)", path,
                          type->valuestring);
    }
    cJSON_Delete(mods);
    if (s == VKF_OK && pool_dir[0]) {
        if (strstr(pool_dir, "..")) return base_fail(d, VKF_ERROR_FORMAT, "%s: pooling path \"%s\" leaves the model directory", path, pool_dir);
        snprintf(path, sizeof path, "%s/%s/config.json", dir, pool_dir);
        cJSON *pc;
        s = io_json_load(d, path, &pc);
        if (s != VKF_OK) return s;
        bool cls = false, mean = false, max = false, sqrt_len = false, weighted = false, last = false;
        s = io_json_bool(d, path, pc, "pooling_mode_cls_token", false, &cls);
        if (s == VKF_OK) s = io_json_bool(d, path, pc, "pooling_mode_mean_tokens", false, &mean);
        if (s == VKF_OK) s = io_json_bool(d, path, pc, "pooling_mode_max_tokens", false, &max);
        if (s == VKF_OK) s = io_json_bool(d, path, pc, "pooling_mode_mean_sqrt_len_tokens", false, &sqrt_len);
        if (s == VKF_OK) s = io_json_bool(d, path, pc, "pooling_mode_weightedmean_tokens", false, &weighted);
        if (s == VKF_OK) s = io_json_bool(d, path, pc, "pooling_mode_lasttoken", false, &last);
        io_json_free(pc);
        /* sentence-transformers concatenates several modes' vectors: refused, not one of them silently */
        if (s == VKF_OK && (weighted || last || cls + mean + max + sqrt_len != 1))
            s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: exactly one pooling mode is supported (cls, mean, max or mean_sqrt_len)%s",
                          path, cls + mean + max + sqrt_len + weighted + last > 1 ? ": this one concatenates several" : "");
        out->pooling = cls ? MODEL_POOL_CLS : max ? MODEL_POOL_MAX : sqrt_len ? MODEL_POOL_MEAN_SQRT : MODEL_POOL_MEAN;
    }
    snprintf(path, sizeof path, "%s/sentence_bert_config.json", dir);
    if (s == VKF_OK && base_exists(path)) {
        cJSON *sc;
        s = io_json_load(d, path, &sc);
        if (s == VKF_OK) {
            s = io_json_u32(d, path, sc, "max_seq_length", 0, 0, 1u << 20, &out->max_seq_length);
            io_json_free(sc);
        }
    }
    return s;
}

vkf_status model_parse_token_id(base_diag *d, const char *path, const cJSON *root, const char *key, uint32_t vocab, int32_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsArray(v)) v = v->child; /* a list of ids: the first (eos: the first stops as well as any) */
    if (!v || cJSON_IsNull(v)) return VKF_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= vocab || v->valuedouble != floor(v->valuedouble))
        return base_fail(d, VKF_ERROR_FORMAT, "%s: \"%s\" must be a token id below the vocabulary size %u", path, key, vocab);
    *out = (int32_t)v->valuedouble;
    return VKF_OK;
}

/* num_beams, length_penalty, early_stopping, no_repeat_ngram_size, min_length, max_length, max_new_tokens */
static vkf_status generation_settings(base_diag *d, const char *path, const cJSON *root, model_gen_config *g)
{
    double lp = g->length_penalty;
    vkf_status s = io_json_u32(d, path, root, "num_beams", g->num_beams, 1, 256, &g->num_beams);
    if (s == VKF_OK) s = io_json_f64(d, path, root, "length_penalty", lp, &lp);
    if (s == VKF_OK && !isfinite(lp)) s = base_fail(d, VKF_ERROR_FORMAT, "%s: length_penalty must be a number", path);
    g->length_penalty = (float)lp;
    const cJSON *es = cJSON_GetObjectItemCaseSensitive(root, "early_stopping");
    if (s == VKF_OK && es && !cJSON_IsNull(es)) {
        if (cJSON_IsBool(es)) g->early_stopping = cJSON_IsTrue(es);
        else if (cJSON_IsString(es) && !strcmp(es->valuestring, "never")) g->early_stopping = 2;
        else s = base_fail(d, VKF_ERROR_FORMAT, "%s: early_stopping must be true, false or \"never\"", path);
    }
    if (s == VKF_OK) s = io_json_u32(d, path, root, "no_repeat_ngram_size", g->no_repeat_ngram, 0, 1u << 16, &g->no_repeat_ngram);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "min_length", g->min_length, 0, 1u << 24, &g->min_length);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "max_length", g->max_length, 0, 1u << 24, &g->max_length);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "max_new_tokens", g->max_new_tokens, 0, 1u << 24, &g->max_new_tokens);
    return s;
}

/* config.json's task_specific_params: each task's prefix and settings over the model's. */
static vkf_status task_params(base_diag *d, const char *path, const cJSON *config, model *m)
{
    const cJSON *tp = cJSON_GetObjectItemCaseSensitive(config, "task_specific_params");
    if (!tp || cJSON_IsNull(tp)) return VKF_OK;
    if (!cJSON_IsObject(tp)) return base_fail(d, VKF_ERROR_FORMAT, "%s: task_specific_params must be an object", path);
    uint32_t n = (uint32_t)cJSON_GetArraySize(tp);
    if (n > 256) return base_fail(d, VKF_ERROR_FORMAT, "%s: task_specific_params has %u entries (256 at most)", path, n);
    m->task_params = calloc(n ? n : 1, sizeof *m->task_params);
    if (!m->task_params) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    vkf_status s = VKF_OK;
    for (const cJSON *e = tp->child; e && s == VKF_OK; e = e->next) {
        if (!cJSON_IsObject(e)) return base_fail(d, VKF_ERROR_FORMAT, "%s: task_specific_params[\"%s\"] must be an object", path, e->string);
        model_task_params *t = &m->task_params[m->n_task_params++];
        const char *prefix = NULL;
        t->task = base_strdup(e->string);
        s = io_json_str(d, path, e, "prefix", "", &prefix);
        t->prefix = s == VKF_OK ? base_strdup(prefix) : NULL;
        if (s == VKF_OK && (!t->task || !t->prefix)) s = base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        t->gen = m->gen;
        if (s == VKF_OK) s = generation_settings(d, path, e, &t->gen);
    }
    return s;
}

bool model_is_eos(const model *m, int32_t id)
{
    for (uint32_t i = 0; i < m->n_eos; i++)
        if (m->eos_ids[i] == id) return true;
    return false;
}

/* bad_words_ids: lists of token ids, kept as [length, ids...] one after another. */
static vkf_status bad_words(base_diag *d, const char *path, const cJSON *root, model *m)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "bad_words_ids");
    if (!v || cJSON_IsNull(v)) return VKF_OK;
    if (!cJSON_IsArray(v)) return base_fail(d, VKF_ERROR_FORMAT, "%s: bad_words_ids must be a list of lists of token ids", path);
    uint32_t total = 0;
    for (const cJSON *w = v->child; w; w = w->next) {
        if (!cJSON_IsArray(w) || !cJSON_GetArraySize(w) || cJSON_GetArraySize(w) > 64)
            return base_fail(d, VKF_ERROR_FORMAT, "%s: bad_words_ids must hold non-empty lists of at most 64 ids", path);
        total += 1 + (uint32_t)cJSON_GetArraySize(w);
        if (total > 65536) return base_fail(d, VKF_ERROR_FORMAT, "%s: bad_words_ids holds more than 65,536 ids", path);
    }
    free(m->bad_words);
    m->bad_words = malloc((total ? total : 1) * sizeof *m->bad_words);
    if (!m->bad_words) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    m->n_bad_words = 0, m->bad_words_len = 0;
    for (const cJSON *w = v->child; w; w = w->next) {
        m->bad_words[m->bad_words_len++] = cJSON_GetArraySize(w);
        for (const cJSON *e = w->child; e; e = e->next) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= m->vocab_size || e->valuedouble != floor(e->valuedouble))
                return base_fail(d, VKF_ERROR_FORMAT, "%s: bad_words_ids holds a value that is not a token id below %u", path, m->vocab_size);
            m->bad_words[m->bad_words_len++] = (int32_t)e->valuedouble;
        }
        m->n_bad_words++;
    }
    return VKF_OK;
}

/* eos_token_id as a list (transformers' EosTokenCriteria stops at any of them). */
static vkf_status eos_list(base_diag *d, const char *path, const cJSON *root, model *m)
{
    m->n_eos = m->eos_id >= 0;
    m->eos_ids[0] = m->eos_id;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (!cJSON_IsArray(v)) return VKF_OK;
    m->n_eos = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= m->vocab_size || e->valuedouble != floor(e->valuedouble))
            return base_fail(d, VKF_ERROR_FORMAT, "%s: eos_token_id lists a value that is not a token id below %u", path, m->vocab_size);
        if (m->n_eos == BASE_ARRAY_LEN(m->eos_ids))
            return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: eos_token_id lists more than %zu ids", path, BASE_ARRAY_LEN(m->eos_ids));
        m->eos_ids[m->n_eos++] = (int32_t)e->valuedouble;
    }
    return VKF_OK;
}

const model_task_params *model_task_params_find(const model *m, const char *task)
{
    for (uint32_t i = 0; task && i < m->n_task_params; i++)
        if (!strcmp(m->task_params[i].task, task)) return &m->task_params[i];
    return NULL;
}

void model_free_task_params(model *m)
{
    free(m->bad_words);
    m->bad_words = NULL, m->n_bad_words = m->bad_words_len = 0;
    for (uint32_t i = 0; i < m->n_task_params; i++) free(m->task_params[i].task), free(m->task_params[i].prefix);
    free(m->task_params);
    m->task_params = NULL, m->n_task_params = 0;
}

vkf_status model_generation_config(base_diag *d, const char *dir, const cJSON *config, model *m)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    char cpath[4200];
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    if (!base_exists(path)) { /* older checkpoints: the settings in config.json */
        vkf_status s = generation_settings(d, cpath, config, &m->gen);
        if (s == VKF_OK) s = eos_list(d, cpath, config, m);
        if (s == VKF_OK) s = bad_words(d, cpath, config, m);
        return s == VKF_OK ? task_params(d, cpath, config, m) : s;
    }
    cJSON *root;
    vkf_status s = io_json_load(d, path, &root);
    if (s != VKF_OK) return s;
    s = generation_settings(d, path, root, &m->gen);
    static const char *const keys[] = {"bos_token_id", "eos_token_id", "decoder_start_token_id", "forced_bos_token_id",
                                       "forced_eos_token_id"};
    int32_t *fields[] = {&m->bos_id, &m->eos_id, &m->decoder_start_id, &m->forced_bos_id, &m->forced_eos_id};
    for (size_t i = 0; i < BASE_ARRAY_LEN(keys) && s == VKF_OK; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
        if (cJSON_IsNull(v) && i >= 2) *fields[i] = -1; /* an explicit null: no decoder start, no forcing */
        else s = model_parse_token_id(d, path, root, keys[i], m->vocab_size, fields[i]);
    }
    if (s == VKF_OK) s = eos_list(d, path, cJSON_GetObjectItemCaseSensitive(root, "eos_token_id") ? root : config, m);
    if (s == VKF_OK) s = bad_words(d, path, root, m);
    io_json_free(root);
    return s == VKF_OK ? task_params(d, cpath, config, m) : s;
}
