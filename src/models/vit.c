/* ViT: config, weights and graph. */
#include "vit.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vit_config_free(vit_config *cfg)
{
    if (cfg->labels)
        for (uint32_t i = 0; i < cfg->num_labels; i++) free(cfg->labels[i]);
    free(cfg->labels);
    memset(cfg, 0, sizeof(*cfg));
}

static vkf_status parse_act(base_diag *d, const char *file, const char *name, op_act *act)
{
    static const struct {
        const char *name;
        op_act act;
    } acts[] = {{"gelu", OP_ACT_GELU},           {"gelu_new", OP_ACT_GELU_TANH},     {"gelu_pytorch_tanh", OP_ACT_GELU_TANH},
                {"gelu_fast", OP_ACT_GELU_TANH}, {"quick_gelu", OP_ACT_QUICK_GELU}, {"relu", OP_ACT_RELU}};
    for (size_t i = 0; i < BASE_ARRAY_LEN(acts); i++)
        if (strcmp(name, acts[i].name) == 0) {
            *act = acts[i].act;
            return VKF_OK;
        }
    return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (gelu, gelu_new, quick_gelu, relu)",
                     file, name);
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

/* id2label: {"0": "tench", ...}; indices must cover 0..n-1 exactly once. */
static vkf_status parse_labels(base_diag *d, const char *file, const cJSON *root, vit_config *c)
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
    c->num_labels = n ? n : declared;
    c->labels = calloc(c->num_labels, sizeof(char *));
    if (!c->labels) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    for (const cJSON *it = n ? map->child : NULL; it && s == VKF_OK; it = it->next) {
        char *end;
        unsigned long idx = strtoul(it->string, &end, 10);
        if (*end || idx >= c->num_labels || !cJSON_IsString(it) || c->labels[idx])
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: id2label entry \"%s\" is not a unique index below %u with a string",
                          file, it->string, c->num_labels);
        else
            c->labels[idx] = base_strdup(it->valuestring);
    }
    for (uint32_t i = 0; i < c->num_labels && s == VKF_OK; i++) {
        if (c->labels[i]) continue;
        char buf[32];
        snprintf(buf, sizeof buf, "LABEL_%u", i); /* HF's default names */
        c->labels[i] = base_strdup(buf);
    }
    return s;
}

vkf_status vit_config_load(base_diag *d, const char *dir, vit_config *c)
{
    memset(c, 0, sizeof(*c));
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *root;
    vkf_status s = io_json_load(d, path, &root);
    if (s != VKF_OK) return s;
    const char *type = NULL, *act = NULL;
    double eps = 0;
    s = io_json_str(d, path, root, "model_type", "vit", &type);
    if (s == VKF_OK && strcmp(type, "vit") != 0 && strcmp(type, "deit") != 0)
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: model_type \"%s\" is not an image transformer vkformer runs (vit, deit)",
                      path, type);
    /* Omitted keys take ViTConfig's defaults, as HF's config classes do. */
    if (s == VKF_OK) s = io_json_u32(d, path, root, "hidden_size", 768, 1, 65536, &c->hidden);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_hidden_layers", 12, 1, 1024, &c->layers);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_attention_heads", 12, 1, 1024, &c->heads);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "intermediate_size", 3072, 1, 1u << 20, &c->intermediate);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "image_size", 224, 1, 8192, &c->image_size);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "patch_size", 16, 1, 1024, &c->patch_size);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_channels", 3, 3, 3, &c->channels);
    if (s == VKF_OK) s = io_json_f64(d, path, root, "layer_norm_eps", 1e-12, &eps);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "qkv_bias", true, &c->qkv_bias);
    if (s == VKF_OK) s = io_json_str(d, path, root, "hidden_act", "gelu", &act);
    if (s == VKF_OK) s = parse_act(d, path, act, &c->act);
    if (s == VKF_OK) s = parse_labels(d, path, root, c);
    if (s == VKF_OK) s = check_config(d, path, c);
    c->eps = (float)eps;
    io_json_free(root);
    if (s != VKF_OK) vit_config_free(c);
    return s;
}

vkf_status vit_config_preset(base_diag *d, const char *name, uint32_t image_size, uint32_t patch_size, vit_config *c)
{
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
    c->image_size = image_size ? image_size : 224;
    c->patch_size = patch_size ? patch_size : 16;
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

io_preproc vit_default_preproc(const vit_config *cfg)
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

vkf_status vit_create(vk_device *dev, const vit_config *cfg, const st_checkpoint *ck, graph_dtype dtype, uint64_t seed,
                      vit_progress_fn progress, void *progress_user, vit_model **out)
{
    *out = NULL;
    base_diag *d = dev->diag;
    vit_model *m = calloc(1, sizeof(*m));
    if (!m) return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    m->cfg = *cfg; /* takes the labels */
    m->dtype = dtype;
    m->diag = d;
    graph_weights_init(&m->w, dev);
    vkf_status s = VKF_OK;
    const char *prefix = "";
    if (ck) {
        /* HF names with or without the "vit." prefix (ViTModel saves none);
         * DeiT checkpoints in the ViT layout use "deit.". */
        static const char *const prefixes[] = {"vit.", "", "deit."};
        prefix = model_find_prefix(ck, prefixes, BASE_ARRAY_LEN(prefixes), "embeddings.patch_embeddings.projection.weight");
        if (!prefix)
            s = base_fail(d, VKF_ERROR_NOT_FOUND,
                          "%s: missing tensor vit.embeddings.patch_embeddings.projection.weight (not a ViT checkpoint?)",
                          ck->files[0].path);
        m->has_classifier = st_find(ck, "classifier.weight") != NULL;
    } else {
        m->has_classifier = true;
    }
    if (s == VKF_OK) {
        vit_declare(cfg, m->has_classifier, &m->decl);
        m->params = model_decl_params(&m->decl);
        model_load_opts o = {ck, prefix, dtype, seed, progress, progress_user};
        s = model_load_weights(d, &m->w, &m->decl, &o);
    }
    if (s != VKF_OK) {
        m->cfg.labels = NULL; /* the caller still owns its config on failure */
        m->cfg.num_labels = 0;
        vit_destroy(m);
        return s;
    }
    *out = m;
    return VKF_OK;
}

void vit_destroy(vit_model *m)
{
    if (!m) return;
    graph_weights_free(&m->w);
    model_decl_free(&m->decl);
    vit_config_free(&m->cfg);
    free(m);
}

/* ---- graph ------------------------------------------------------------------------ */

graph *vit_build(vit_model *m, uint32_t batch)
{
    const vit_config *c = &m->cfg;
    graph *g = graph_create(m->diag, m->dtype);
    if (!g) return NULL;
    uint32_t H = c->hidden, P = c->patch_size, np = (c->image_size / P) * (c->image_size / P), S = np + 1;
    uint32_t hd = H / c->heads;
    int px = graph_input(g, "pixel_values", m->dtype, 4, (uint32_t[]){batch, c->channels, c->image_size, c->image_size});
    int patches = graph_patchify(g, "patches", px, P, P);
    const model_decl *t = &m->decl;
    int pw = model_graph_weight(g, t, "patch.weight");
    int pb = model_graph_weight(g, t, "patch.bias");
    graph_matmul_desc nt = {.layout = OP_W_NT}, act = {.layout = OP_W_NT, .act = c->act};
    int pe = graph_matmul(g, "patch_embeddings", patches, pw, pb, -1, &nt);
    int cls = model_graph_weight(g, t, "cls");
    int pos = model_graph_weight(g, t, "pos");
    op_rows_params prepend = {.mode = OP_ROWS_PREPEND, .batch = batch, .seq = S, .dim = H};
    int h = graph_rows(g, "embeddings", pe, cls, pos, &prepend);
    op_attention_params ap = {
        .batch = batch, .q_len = S, .kv_len = S, .heads = c->heads, .head_dim = hd,
        .q_rs = 3 * H, .k_rs = 3 * H, .v_rs = 3 * H,
    };
    for (uint32_t l = 0; l < c->layers; l++) {
        char n[64];
        int w[12];
        static const char *const names[] = {"ln1.weight", "ln1.bias", "qkv.weight", "qkv.bias", "o.weight", "o.bias",
                                            "ln2.weight", "ln2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
        for (int i = 0; i < 12; i++) {
            snprintf(n, sizeof n, "l%u.%s", l, names[i]);
            w[i] = model_graph_weight(g, t, n);
        }
        char nn[8][64];
        static const char *const nodes[] = {"ln1", "qkv", "attention", "attn_out", "ln2", "fc1", "fc2"};
        for (int i = 0; i < 7; i++) snprintf(nn[i], sizeof nn[i], "layer%u.%s", l, nodes[i]);
        int ln1 = graph_layernorm(g, nn[0], h, -1, w[0], w[1], c->eps, NULL);
        int qkv = graph_matmul(g, nn[1], ln1, w[2], w[3], -1, &nt);
        int att = graph_attention(g, nn[2], qkv, 0, qkv, H, qkv, 2 * H, &ap);
        int h2 = graph_matmul(g, nn[3], att, w[4], w[5], h, &nt);
        int ln2 = graph_layernorm(g, nn[4], h2, -1, w[6], w[7], c->eps, NULL);
        int f1 = graph_matmul(g, nn[5], ln2, w[8], w[9], -1, &act);
        h = graph_matmul(g, nn[6], f1, w[10], w[11], h2, &nt);
    }
    int lw = model_graph_weight(g, t, "ln.weight"), lb = model_graph_weight(g, t, "ln.bias");
    int last = graph_layernorm(g, "last_hidden_state", h, -1, lw, lb, c->eps, NULL);
    op_rows_params gather = {.mode = OP_ROWS_GATHER, .batch = batch, .seq = S, .dim = H, .index = 0};
    int pooled = graph_rows(g, "pooled", last, -1, -1, &gather);
    graph_output(g, last);
    graph_output(g, pooled);
    if (m->has_classifier) {
        int cw = model_graph_weight(g, t, "classifier.weight");
        int cb = model_graph_weight(g, t, "classifier.bias");
        graph_output(g, graph_matmul(g, "logits", pooled, cw, cb, -1, &nt));
    }
    return g;
}
