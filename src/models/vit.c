/* ViT (HF ViTForImageClassification / ViTModel, DeiT checkpoints in the ViT
 * layout): config, declared weights and graph; one entry of the family table. */
#include "model.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vit_config {
    uint32_t hidden, layers, heads, intermediate;
    uint32_t image_size, patch_size, channels;
    float eps;
    op_act act;
    bool qkv_bias;
    uint32_t num_labels;
    model_score score;
    char **labels; /* num_labels strings (owned) */
} vit_config;

static void vit_config_free(void *cfg)
{
    vit_config *c = cfg;
    model_free_labels(c->num_labels, c->labels);
    memset(c, 0, sizeof(*c));
}

static vkf_status check_config(base_diag *d, const char *file, const vit_config *c)
{
    if (c->hidden % c->heads)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: hidden_size %u is not a multiple of num_attention_heads %u", file,
                         c->hidden, c->heads);
    if ((c->hidden / c->heads) % 4)
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: head size %u is not a multiple of 4", file, c->hidden / c->heads);
    if (c->image_size % c->patch_size)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: image_size %u is not a multiple of patch_size %u", file,
                         c->image_size, c->patch_size);
    return VKF_OK;
}

static vkf_status vit_config_parse(base_diag *d, const char *path, const cJSON *root, const char *type, void *cfg)
{
    vit_config *c = cfg;
    (void)type;
    memset(c, 0, sizeof(*c));
    const char *act = NULL;
    double eps = 0;
    /* Omitted keys take ViTConfig's defaults, as HF's config classes do. */
    vkf_status s = io_json_u32(d, path, root, "hidden_size", 768, 1, 65536, &c->hidden);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_hidden_layers", 12, 1, 1024, &c->layers);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_attention_heads", 12, 1, 1024, &c->heads);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "intermediate_size", 3072, 1, 1u << 20, &c->intermediate);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "image_size", 224, 1, 8192, &c->image_size);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "patch_size", 16, 1, 1024, &c->patch_size);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_channels", 3, 3, 3, &c->channels);
    if (s == VKF_OK) s = io_json_f64(d, path, root, "layer_norm_eps", 1e-12, &eps);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "qkv_bias", true, &c->qkv_bias);
    if (s == VKF_OK) s = io_json_str(d, path, root, "hidden_act", "gelu", &act);
    if (s == VKF_OK) s = model_parse_act(d, path, act, &c->act);
    if (s == VKF_OK) s = model_parse_labels(d, path, root, &c->num_labels, &c->labels, &c->score);
    if (s == VKF_OK && (!(eps > 0) || eps > 1))
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: layer_norm_eps %g is not in (0, 1]", path, eps);
    if (s == VKF_OK) s = check_config(d, path, c);
    c->eps = (float)eps;
    if (s != VKF_OK) vit_config_free(c);
    return s;
}

static vkf_status vit_config_preset(base_diag *d, const char *name, const model_preset_opts *o, void *cfg)
{
    vit_config *c = cfg;
    memset(c, 0, sizeof(*c));
    if (strcmp(name, "tiny") == 0)
        *c = (vit_config){.hidden = 192, .layers = 12, .heads = 3, .intermediate = 768};
    else if (strcmp(name, "small") == 0)
        *c = (vit_config){.hidden = 384, .layers = 12, .heads = 6, .intermediate = 1536};
    else if (strcmp(name, "base") == 0)
        *c = (vit_config){.hidden = 768, .layers = 12, .heads = 12, .intermediate = 3072};
    else if (strcmp(name, "large") == 0)
        *c = (vit_config){.hidden = 1024, .layers = 24, .heads = 16, .intermediate = 4096};
    else
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "unknown ViT preset \"%s\" (tiny, small, base, large)", name);
    c->image_size = o->image_size ? o->image_size : 224;
    c->patch_size = o->patch_size ? o->patch_size : 16;
    c->channels = 3;
    c->eps = 1e-12f;
    c->act = OP_ACT_GELU;
    c->qkv_bias = true;
    c->num_labels = 1000;
    c->labels = calloc(c->num_labels, sizeof(char *));
    if (!c->labels) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (uint32_t i = 0; i < c->num_labels; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "LABEL_%u", i);
        c->labels[i] = base_strdup(buf);
    }
    vkf_status s = check_config(d, "preset", c);
    if (s != VKF_OK) vit_config_free(c);
    return s;
}

static io_preproc vit_default_preproc(const vit_config *cfg)
{
    return (io_preproc){
        .do_resize = true, .height = cfg->image_size, .width = cfg->image_size, .resample = IO_BILINEAR,
        .do_rescale = true, .rescale_factor = 1.0 / 255.0, .do_normalize = true,
        .mean = {0.5f, 0.5f, 0.5f}, .std = {0.5f, 0.5f, 0.5f},
    };
}

/* ---- weights ------------------------------------------------------------------- */

/* The one list of ViT's weights: checkpoint names (after "vit."/"deit."),
 * shapes, and the shapes the graph sees. */
static void vit_declare(const vit_config *c, bool classifier, model_decl *t)
{
    uint64_t H = c->hidden, I = c->intermediate, C = c->channels, P = c->patch_size;
    uint64_t S = (c->image_size / P) * (c->image_size / P) + 1;
    /* The conv weight [H, C, P, P] is the matmul weight [H, C*P*P] as is. */
    model_weight_reshape(model_decl_add(t, "patch.weight", "embeddings.patch_embeddings.projection.weight", MODEL_INIT_SMALL, 4,
                                        (uint64_t[]){H, C, P, P}),
                         2, (uint32_t[]){(uint32_t)H, (uint32_t)(C * P * P)});
    model_decl_add(t, "patch.bias", "embeddings.patch_embeddings.projection.bias", MODEL_INIT_SMALL, 1, (uint64_t[]){H});
    model_weight_reshape(model_decl_add(t, "cls", "embeddings.cls_token", MODEL_INIT_SMALL, 3, (uint64_t[]){1, 1, H}), 1,
                         (uint32_t[]){(uint32_t)H});
    model_weight_reshape(model_decl_add(t, "pos", "embeddings.position_embeddings", MODEL_INIT_SMALL, 3, (uint64_t[]){1, S, H}),
                         2, (uint32_t[]){(uint32_t)S, (uint32_t)H});
    for (uint32_t l = 0; l < c->layers; l++) {
        char name[64], hf[3][128];
        const char *parts[3] = {hf[0], hf[1], hf[2]};
        static const char *const qkv[3] = {"query", "key", "value"};
        /* Q, K and V fused into one [3H, H] weight: one matmul, and attention
         * reads the three heads' views straight from its output. */
        for (int k = 0; k < 3; k++) snprintf(hf[k], sizeof hf[k], "encoder.layer.%u.attention.attention.%s.weight", l, qkv[k]);
        snprintf(name, sizeof name, "l%u.qkv.weight", l);
        model_decl_fused(t, name, parts, 3, MODEL_INIT_SMALL, 2, (uint64_t[]){H, H});
        for (int k = 0; k < 3; k++) snprintf(hf[k], sizeof hf[k], "encoder.layer.%u.attention.attention.%s.bias", l, qkv[k]);
        snprintf(name, sizeof name, "l%u.qkv.bias", l);
        model_weight *b = model_decl_fused(t, name, parts, 3, c->qkv_bias ? MODEL_INIT_SMALL : MODEL_INIT_ZEROS, 1, (uint64_t[]){H});
        if (b) b->optional = !c->qkv_bias; /* zeros: one kernel variant for both */
        static const struct {
            const char *reg, *hf;
            int r, c;
            model_init init;
        } w[] = {
            {"ln1.weight", "layernorm_before.weight", 'H', 0, MODEL_INIT_ONES}, {"ln1.bias", "layernorm_before.bias", 'H', 0, MODEL_INIT_SMALL},
            {"o.weight", "attention.output.dense.weight", 'H', 'H', MODEL_INIT_SMALL}, {"o.bias", "attention.output.dense.bias", 'H', 0, MODEL_INIT_SMALL},
            {"ln2.weight", "layernorm_after.weight", 'H', 0, MODEL_INIT_ONES}, {"ln2.bias", "layernorm_after.bias", 'H', 0, MODEL_INIT_SMALL},
            {"fc1.weight", "intermediate.dense.weight", 'I', 'H', MODEL_INIT_SMALL}, {"fc1.bias", "intermediate.dense.bias", 'I', 0, MODEL_INIT_SMALL},
            {"fc2.weight", "output.dense.weight", 'H', 'I', MODEL_INIT_SMALL}, {"fc2.bias", "output.dense.bias", 'H', 0, MODEL_INIT_SMALL},
        };
        for (size_t i = 0; i < BASE_ARRAY_LEN(w); i++) {
            snprintf(name, sizeof name, "l%u.%s", l, w[i].reg);
            snprintf(hf[0], sizeof hf[0], "encoder.layer.%u.%s", l, w[i].hf);
            uint64_t shape[2] = {w[i].r == 'I' ? I : H, w[i].c == 'I' ? I : H};
            model_decl_add(t, name, hf[0], w[i].init, w[i].c ? 2 : 1, shape);
        }
    }
    model_decl_add(t, "ln.weight", "layernorm.weight", MODEL_INIT_ONES, 1, (uint64_t[]){H});
    model_decl_add(t, "ln.bias", "layernorm.bias", MODEL_INIT_SMALL, 1, (uint64_t[]){H});
    if (classifier) {
        uint64_t n = c->num_labels;
        model_decl_add(t, "classifier.weight", "classifier.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){n, H});
        model_decl_add(t, "classifier.bias", "classifier.bias", MODEL_INIT_SMALL, 1, (uint64_t[]){n});
    }
}

/* ---- the family ---------------------------------------------------------------- */

/* The generic fields the API reads. */
static void describe(model *m)
{
    const vit_config *c = m->cfg;
    uint32_t np = c->image_size / c->patch_size;
    m->hidden = c->hidden;
    m->layers = c->layers;
    m->seq_len = np * np + 1;
    m->image_size = c->image_size;
    m->channels = c->channels;
    m->preproc = vit_default_preproc(c);
    m->num_labels = c->num_labels;
    m->labels = c->labels;
    m->score = c->score;
}

static vkf_status family_declare(model *m, const st_checkpoint *ck, const char **prefix, model_decl *t)
{
    const vit_config *c = m->cfg;
    bool classifier = true;
    *prefix = "";
    if (ck) {
        /* HF names with or without the "vit." prefix (ViTModel saves none);
         * DeiT checkpoints in the ViT layout use "deit.". */
        static const char *const prefixes[] = {"vit.", "", "deit."};
        *prefix = model_find_prefix(ck, prefixes, BASE_ARRAY_LEN(prefixes), "embeddings.patch_embeddings.projection.weight");
        if (!*prefix)
            return base_fail(m->diag, VKF_ERROR_NOT_FOUND,
                             "%s: missing tensor vit.embeddings.patch_embeddings.projection.weight (not a ViT checkpoint?)",
                             ck->files[0].path);
        classifier = st_find(ck, "classifier.weight") != NULL;
    }
    m->task = classifier ? MODEL_TASK_IMAGE_CLASSIFICATION : MODEL_TASK_FEATURES;
    if (!classifier) m->num_labels = 0;
    vit_declare(c, classifier, t);
    return VKF_OK;
}

static graph *vit_build(const model *m, const graph_key *key);

static const char *const vit_types[] = {"vit", "deit", NULL};

const model_family vit_family = {
    .name = "vit",
    .model_types = vit_types,
    .cfg_size = sizeof(vit_config),
    .config_parse = vit_config_parse,
    .config_preset = vit_config_preset,
    .config_release = vit_config_free,
    .describe = describe,
    .declare = family_declare,
    .build = vit_build,
};

/* ---- graph ------------------------------------------------------------------------ */

static graph *vit_build(const model *m, const graph_key *key)
{
    if (key->kind != MODEL_GRAPH_VISION) return model_no_graph(m, key);
    uint32_t batch = key->batch;
    const vit_config *c = m->cfg;
    graph *g = graph_create(m->diag, m->dtype);
    if (!g) return NULL;
    uint32_t H = c->hidden, P = c->patch_size, np = (c->image_size / P) * (c->image_size / P), S = np + 1;
    uint32_t hd = H / c->heads;
    int px = graph_input(g, "pixel_values", m->dtype, 4, (uint32_t[]){batch, c->channels, c->image_size, c->image_size});
    int patches = graph_patchify(g, "patches", px, P, P);
    const model_decl *t = &m->decl;
    int pw = model_graph_weight(g, t, "patch.weight");
    int pb = model_graph_weight(g, t, "patch.bias");
    graph_matmul_desc nt = {.layout = OP_W_NT};
    int pe = graph_matmul(g, "patch_embeddings", patches, pw, pb, -1, &nt);
    int cls = model_graph_weight(g, t, "cls");
    int pos = model_graph_weight(g, t, "pos");
    op_rows_params prepend = {.mode = OP_ROWS_PREPEND, .batch = batch, .seq = S, .dim = H};
    int h = graph_rows(g, "embeddings", pe, cls, pos, &prepend);
    for (uint32_t l = 0; l < c->layers; l++) {
        char w[32], node[32];
        snprintf(w, sizeof w, "l%u", l), snprintf(node, sizeof node, "layer%u", l);
        model_block blk = {.w = w, .node = node, .layout = OP_W_NT, .act = c->act, .eps = c->eps, .mask = -1,
                           .at = {.batch = batch, .q_len = S, .kv_len = S, .heads = c->heads, .head_dim = hd}};
        h = model_block_build(g, t, &blk, h);
    }
    int lw = model_graph_weight(g, t, "ln.weight"), lb = model_graph_weight(g, t, "ln.bias");
    int last = graph_layernorm(g, "last_hidden_state", h, -1, lw, lb, c->eps, NULL);
    op_rows_params gather = {.mode = OP_ROWS_GATHER, .batch = batch, .seq = S, .dim = H, .index = 0};
    int pooled = graph_rows(g, "pooled", last, -1, -1, &gather);
    graph_output(g, last);
    graph_output(g, pooled);
    if (m->task == MODEL_TASK_IMAGE_CLASSIFICATION) {
        int cw = model_graph_weight(g, t, "classifier.weight");
        int cb = model_graph_weight(g, t, "classifier.bias");
        graph_output(g, graph_matmul(g, "logits", pooled, cw, cb, -1, &nt));
    }
    return g;
}
