/* The family table and the steps every family shares: config.json to family,
 * checkpoint to weights, shape to graph. */
#include "model.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const model_family vit_family, bert_family, gpt2_family, clip_family, bart_family, t5_family, deberta_family, wav2vec2_family;

static const model_family *const FAMILIES[] = {&vit_family, &bert_family, &gpt2_family, &clip_family, &bart_family, &t5_family, &deberta_family, &wav2vec2_family};

const model_family *const *model_families(size_t *n)
{
    *n = BASE_ARRAY_LEN(FAMILIES);
    return FAMILIES;
}

const char *model_task_name(model_task t)
{
    static const char *const names[] = {"feature-extraction", "image-classification", "text-classification", "fill-mask", "text-generation",
                                        "zero-shot-image-classification", "text2text-generation", "automatic-speech-recognition",
                                        "audio-classification"};
    return (unsigned)t < BASE_ARRAY_LEN(names) ? names[t] : "?";
}

static const model_family *family_of(const char *type)
{
    for (size_t i = 0; i < BASE_ARRAY_LEN(FAMILIES); i++)
        for (const char *const *t = FAMILIES[i]->model_types; *t; t++)
            if (!strcmp(*t, type)) return FAMILIES[i];
    return NULL;
}

/* A filled config becomes the model's (the generic fields from it); a failed one is freed. */
static vkf_status adopt_config(model *m, void *cfg, vkf_status s)
{
    if (s != VKF_OK) {
        free(cfg);
        return s;
    }
    m->cfg = cfg;
    m->decoder_start_id = m->forced_bos_id = m->forced_eos_id = -1;
    m->gen = (model_gen_config){.num_beams = 1, .length_penalty = 1.0f};
    m->family->describe(m);
    return VKF_OK;
}

vkf_status model_open(base_diag *d, const char *dir, model *m)
{
    memset(m, 0, sizeof *m);
    m->diag = d;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *root;
    vkf_status s = base_exists(path) ? VKF_OK : io_not_a_model(d, dir, "config.json");
    if (s == VKF_OK) s = io_json_load(d, path, &root);
    if (s != VKF_OK) return s;
    const char *type = NULL;
    s = io_json_str(d, path, root, "model_type", NULL, &type);
    if (s == VKF_OK && !type) s = base_fail(d, VKF_ERROR_FORMAT, "%s: no \"model_type\"", path);
    if (s == VKF_OK) {
        m->family = family_of(type);
        if (!m->family) {
            char list[512] = "";
            for (size_t i = 0; i < BASE_ARRAY_LEN(FAMILIES); i++)
                for (const char *const *t = FAMILIES[i]->model_types; *t; t++)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "", *t);
            s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: model_type \"%s\" is not supported (supported: %s)", path, type, list);
        }
    }
    if (s == VKF_OK) {
        snprintf(m->model_type, sizeof m->model_type, "%s", type);
        void *cfg = calloc(1, m->family->cfg_size);
        s = cfg ? m->family->config_parse(d, path, root, type, cfg) : base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        s = adopt_config(m, cfg, s);
    }
    if (s == VKF_OK) s = model_sentence_load(d, dir, &m->sentence);
    if (s == VKF_OK && m->num_labels) s = model_rerank_activation(d, path, root, m);
    if (s == VKF_OK && m->vocab_size) s = model_generation_config(d, dir, root, m);
    io_json_free(root);
    if (s != VKF_OK) model_close(m); /* releases an adopted config (a failing modules.json came after it) */
    return s;
}

vkf_status model_open_preset(base_diag *d, const char *family, const char *preset, const model_preset_opts *o, model *m)
{
    memset(m, 0, sizeof *m);
    m->diag = d;
    for (size_t i = 0; i < BASE_ARRAY_LEN(FAMILIES) && !m->family; i++)
        if (!strcmp(FAMILIES[i]->name, family)) m->family = FAMILIES[i];
    if (!m->family || !m->family->config_preset)
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "no preset configurations for family \"%s\"", family);
    snprintf(m->model_type, sizeof m->model_type, "%s", family);
    void *cfg = calloc(1, m->family->cfg_size);
    vkf_status s = cfg ? m->family->config_preset(d, preset, o ? o : &(model_preset_opts){0}, cfg)
                       : base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    s = adopt_config(m, cfg, s);
    if (s != VKF_OK) m->family = NULL;
    return s;
}

/* Whether m can run one of the comma-separated task names (an unknown name is an error). */
static vkf_status check_tasks(base_diag *d, const char *dir, const model *m, const char *tasks)
{
    bool can = false;
    for (const char *p = tasks; *p;) {
        size_t n = strcspn(p, ",");
        bool known = false;
        for (model_task t = MODEL_TASK_FEATURES; t < MODEL_TASK_COUNT; t++) {
            const char *name = model_task_name(t);
            if (strlen(name) != n || strncmp(name, p, n)) continue;
            known = true;
            can = can || t == MODEL_TASK_FEATURES || t == m->task;
        }
        /* HF's pipelines of encoder-decoders: translation (also translation_xx_to_yy) and summarization */
        if (!known && ((n == 13 && !strncmp(p, "summarization", n)) || (n >= 11 && !strncmp(p, "translation", 11)))) {
            known = true;
            can = can || m->task == MODEL_TASK_TEXT2TEXT;
        }
        if (!known)
            return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "unknown task \"%.*s\" (tasks: feature-extraction, image-classification, "
                             "text-classification, fill-mask, text-generation, zero-shot-image-classification, "
                             "text2text-generation, translation, summarization)", (int)n, p);
        p += n + (p[n] == ',');
    }
    if (!can) {
        char wanted[256];
        size_t n = 0;
        for (const char *p = tasks; *p && n + 5 < sizeof wanted; p++) {
            if (*p == ',') memcpy(wanted + n, " or ", 4), n += 4;
            else wanted[n++] = *p;
        }
        wanted[n] = 0;
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: this %s checkpoint does %s, not %s", dir, m->model_type,
                         model_task_name(m->task), wanted);
    }
    return VKF_OK;
}

vkf_status model_load(vk_device *dev, model *m, const char *dir, const char *tasks, graph_dtype dtype, uint64_t seed,
                      model_progress_fn progress, void *progress_user)
{
    base_diag *d = m->diag;
    m->dtype = dtype;
    graph_weights_init(&m->w, dev);
    st_checkpoint ck;
    vkf_status s = dir ? st_open(d, dir, &ck) : VKF_OK;
    if (s != VKF_OK) return s;
    const char *prefix = "";
    s = m->family->declare(m, dir ? &ck : NULL, &prefix, &m->decl);
    /* what the checkpoint can do is known from its tensor names: refuse before reading a weight */
    if (s == VKF_OK && tasks) s = check_tasks(d, dir ? dir : m->model_type, m, tasks);
    if (s == VKF_OK) {
        m->params = model_decl_params(&m->decl);
        model_load_opts o = {dir ? &ck : NULL, prefix, dtype, seed, progress, progress_user};
        s = model_load_weights(d, &m->w, &m->decl, &o);
    }
    if (dir) st_close(&ck);
    return s;
}

void model_graph_label(const graph_key *key, char *buf, size_t size)
{
    switch ((model_graph_kind)key->kind) {
    case MODEL_GRAPH_VISION: snprintf(buf, size, "batch %u", key->batch); break;
    case MODEL_GRAPH_TEXT:
        if (key->packed) snprintf(buf, size, "%u texts packed in %u tokens", key->packed, key->seq);
        else snprintf(buf, size, "batch %u x %u tokens", key->batch, key->seq);
        break;
    case MODEL_GRAPH_PREFILL: snprintf(buf, size, "prefill %u", key->seq); break;
    case MODEL_GRAPH_DECODE: snprintf(buf, size, "decode %u", key->seq); break;
    case MODEL_GRAPH_ENCODE: snprintf(buf, size, "encode %u", key->seq); break;
    case MODEL_GRAPH_REORDER: snprintf(buf, size, "reorder beams %u", key->batch); break;
    case MODEL_GRAPH_AUDIO: snprintf(buf, size, "audio %u x %u samples", key->batch, key->seq); break;
    default: snprintf(buf, size, "graph %u, batch %u, seq %u", key->kind, key->batch, key->seq); break;
    }
}

graph *model_build(const model *m, const graph_key *key)
{
    if (!m->family->encdec) return m->family->build(m, key);
    model_encdec e;
    m->family->encdec(m, &e);
    return model_encdec_build(&e, key);
}

graph *model_no_graph(const model *m, const graph_key *key)
{
    graph *g = graph_create(m->diag, m->dtype);
    if (!g) return NULL;
    char what[64];
    model_graph_label(key, what, sizeof what);
    g->error = base_fail(m->diag, VKF_ERROR_UNSUPPORTED, "a %s model has no %s graph", m->model_type, what);
    return g;
}

vkf_status model_prepare_text(const model *m, model_text_batch *b)
{
    return m->family->prepare_text ? m->family->prepare_text(m, b) : VKF_OK;
}

uint32_t model_declare_state(const model *m, uint32_t batch, model_state *out, uint32_t max)
{
    if (m->family->encdec) {
        model_encdec e;
        m->family->encdec(m, &e);
        return model_encdec_declare_state(&e, batch, out, max);
    }
    return m->family->declare_state ? m->family->declare_state(m, batch, out, max) : 0;
}

void model_close(model *m)
{
    if (!m) return;
    model_free_task_params(m);
    graph_weights_free(&m->w);
    model_decl_free(&m->decl);
    if (m->cfg && m->family->config_release) m->family->config_release(m->cfg);
    free(m->cfg);
    memset(m, 0, sizeof *m);
}
