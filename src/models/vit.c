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

typedef struct loader {
    vk_device *dev;
    base_diag *d;
    const st_checkpoint *ck;
    const char *prefix;       /* "vit.", "deit." or "" */
    graph_dtype dtype;
    uint64_t seed;
    vit_progress_fn progress;
    void *user;
    uint64_t done, total;
    void *bounce;
} loader;

#define CHUNK_ELEMS (1u << 20) /* 4 MiB of fp32 per upload */

/* Checks a checkpoint tensor against the shape the config implies. */
static vkf_status find_tensor(loader *L, const char *name, uint32_t rank, const uint64_t *shape, const st_tensor **out)
{
    const st_tensor *t = st_find(L->ck, name);
    if (!t) return base_fail(L->d, VKF_ERROR_NOT_FOUND, "%s: missing tensor %s", L->ck->files[0].path, name);
    bool same = t->rank == rank;
    for (uint32_t i = 0; same && i < rank; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char a[128] = "", b[128] = "";
        for (uint32_t i = 0; i < t->rank; i++) snprintf(a + strlen(a), sizeof a - strlen(a), "%s%llu", i ? ", " : "", (unsigned long long)t->shape[i]);
        for (uint32_t i = 0; i < rank; i++) snprintf(b + strlen(b), sizeof b - strlen(b), "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
        return base_fail(L->d, VKF_ERROR_SHAPE, "%s: tensor %s has shape [%s], the config implies [%s]",
                         L->ck->files[t->file].path, name, a, b);
    }
    *out = t;
    return VKF_OK;
}

/* Deterministic small values: LayerNorm weights near 1, the rest near 0. */
static float random_value(uint64_t *s, bool ones)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    float u = (float)(*s >> 40) / 16777216.0f - 0.5f;
    return ones ? 1.0f + 0.1f * u : 0.04f * u;
}

/* Uploads one tensor (from the checkpoint or random) into buf at byte offset. */
static vkf_status upload(loader *L, graph_weights *w, int buf, VkDeviceSize offset, const char *name, uint32_t rank,
                         const uint64_t *shape, bool ones)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < rank; i++) n *= shape[i];
    const st_tensor *t = NULL;
    if (L->ck) {
        vkf_status s = find_tensor(L, name, rank, shape, &t);
        if (s != VKF_OK) return s;
    }
    uint32_t es = graph_dtype_size(L->dtype);
    uint64_t rng = L->seed ^ base_hash64(name, strlen(name), BASE_HASH_SEED);
    for (uint64_t first = 0; first < n; first += CHUNK_ELEMS) {
        uint64_t count = BASE_MIN((uint64_t)CHUNK_ELEMS, n - first);
        if (t) {
            vkf_status s = st_convert(L->d, t, first, count, L->dtype == GRAPH_F16, L->bounce);
            if (s != VKF_OK) return base_fail_prefix(L->d, s, "%s: ", L->ck->files[t->file].path);
        } else {
            for (uint64_t i = 0; i < count; i++) {
                float v = random_value(&rng, ones);
                if (L->dtype == GRAPH_F16)
                    ((uint16_t *)L->bounce)[i] = base_f32_to_f16(v);
                else
                    ((float *)L->bounce)[i] = v;
            }
        }
        vkf_status s = vk_upload(L->dev, &w->bufs[buf], offset + first * es, L->bounce, count * es);
        if (s != VKF_OK) return s;
        L->done += count;
        if (L->progress) L->progress(L->user, L->done, L->total);
    }
    return VKF_OK;
}

/* A weight of its own buffer, registered under `reg` with the graph's shape. */
static vkf_status weight(loader *L, graph_weights *w, const char *reg, const char *hf, uint32_t rank,
                         const uint64_t *shape, uint32_t grank, const uint32_t *gshape, bool ones)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < rank; i++) n *= shape[i];
    int buf;
    vkf_status s = graph_weights_alloc(w, n * graph_dtype_size(L->dtype), reg, &buf);
    if (s == VKF_OK) s = upload(L, w, buf, 0, hf, rank, shape, ones);
    if (s == VKF_OK) s = graph_weights_add(w, reg, L->dtype, grank, gshape, buf, 0);
    return s;
}

static vkf_status load_layer(loader *L, graph_weights *w, const vit_config *c, uint32_t l)
{
    uint64_t H = c->hidden, I = c->intermediate;
    uint32_t es = graph_dtype_size(L->dtype);
    char reg[64];
    const char *p = L->prefix;
    vkf_status s = VKF_OK;
#define REG(fmt) (snprintf(reg, sizeof reg, "l%u." fmt, l), reg)
    /* Q, K and V fused into one [3H, H] weight: one matmul, and attention
     * reads the three heads' views straight from its output. */
    int wbuf, bbuf;
    static const char *const qkv[3] = {"query", "key", "value"};
    s = graph_weights_alloc(w, 3 * H * H * es, REG("qkv.weight"), &wbuf);
    if (s == VKF_OK) s = graph_weights_alloc(w, 3 * H * es, REG("qkv.bias"), &bbuf);
    for (int k = 0; k < 3 && s == VKF_OK; k++) {
        char name[256];
        snprintf(name, sizeof name, "%sencoder.layer.%u.attention.attention.%s.weight", p, l, qkv[k]);
        s = upload(L, w, wbuf, (VkDeviceSize)k * H * H * es, name, 2, (uint64_t[]){H, H}, false);
        if (s == VKF_OK && c->qkv_bias) {
            snprintf(name, sizeof name, "%sencoder.layer.%u.attention.attention.%s.bias", p, l, qkv[k]);
            s = upload(L, w, bbuf, (VkDeviceSize)k * H * es, name, 1, (uint64_t[]){H}, false);
        }
    }
    if (s == VKF_OK && !c->qkv_bias) { /* zeros: one kernel variant for both */
        void *z = calloc(3 * H, es);
        s = z ? vk_upload(L->dev, &w->bufs[bbuf], 0, z, 3 * H * es) : base_fail(L->d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
        free(z);
    }
    if (s == VKF_OK) s = graph_weights_add(w, REG("qkv.weight"), L->dtype, 2, (uint32_t[]){3 * (uint32_t)H, (uint32_t)H}, wbuf, 0);
    if (s == VKF_OK) s = graph_weights_add(w, REG("qkv.bias"), L->dtype, 1, (uint32_t[]){3 * (uint32_t)H}, bbuf, 0);
    struct {
        const char *reg, *hf;
        uint64_t r, c;
        bool ones;
    } t[] = {
        {"ln1.weight", "layernorm_before.weight", H, 0, true},  {"ln1.bias", "layernorm_before.bias", H, 0, false},
        {"o.weight", "attention.output.dense.weight", H, H, false}, {"o.bias", "attention.output.dense.bias", H, 0, false},
        {"ln2.weight", "layernorm_after.weight", H, 0, true},   {"ln2.bias", "layernorm_after.bias", H, 0, false},
        {"fc1.weight", "intermediate.dense.weight", I, H, false}, {"fc1.bias", "intermediate.dense.bias", I, 0, false},
        {"fc2.weight", "output.dense.weight", H, I, false},     {"fc2.bias", "output.dense.bias", H, 0, false},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(t) && s == VKF_OK; i++) {
        char rn[64], hn[256];
        snprintf(rn, sizeof rn, "l%u.%s", l, t[i].reg);
        snprintf(hn, sizeof hn, "%sencoder.layer.%u.%s", p, l, t[i].hf);
        uint64_t shape[2] = {t[i].r, t[i].c};
        uint32_t gshape[2] = {(uint32_t)t[i].r, (uint32_t)t[i].c};
        uint32_t rank = t[i].c ? 2 : 1;
        s = weight(L, w, rn, hn, rank, shape, rank, gshape, t[i].ones);
    }
#undef REG
    return s;
}

static uint64_t count_params(const vit_config *c, bool classifier)
{
    uint64_t H = c->hidden, I = c->intermediate, P = c->patch_size, np = (c->image_size / P) * (c->image_size / P);
    uint64_t layer = 3 * H * H + 3 * H + H * H + H + 4 * H + I * H + I + H * I + H;
    uint64_t n = H * c->channels * P * P + H + H + (np + 1) * H + c->layers * layer + 2 * H;
    if (classifier) n += (uint64_t)c->num_labels * H + c->num_labels;
    return n;
}

vkf_status vit_create(vk_device *dev, const vit_config *cfg, const st_checkpoint *ck, graph_dtype dtype, uint64_t seed,
                      vit_progress_fn progress, void *progress_user, vit_model **out)
{
    *out = NULL;
    base_diag *d = dev->diag;
    vit_model *m = calloc(1, sizeof(*m));
    void *bounce = malloc((size_t)CHUNK_ELEMS * 4);
    if (!m || !bounce) {
        free(m);
        free(bounce);
        return base_fail(d, VKF_ERROR_OUT_OF_MEMORY, "out of host memory");
    }
    m->cfg = *cfg; /* takes the labels */
    m->dtype = dtype;
    m->diag = d;
    graph_weights_init(&m->w, dev);
    loader L = {dev, d, ck, "", dtype, seed, progress, progress_user, 0, 0, bounce};
    vkf_status s = VKF_OK;
    if (ck) {
        /* HF names with or without the "vit." prefix (ViTModel saves none);
         * DeiT checkpoints in the ViT layout use "deit.". */
        static const char *const prefixes[] = {"vit.", "", "deit."};
        L.prefix = NULL;
        for (size_t i = 0; i < BASE_ARRAY_LEN(prefixes) && !L.prefix; i++) {
            char name[128];
            snprintf(name, sizeof name, "%sembeddings.patch_embeddings.projection.weight", prefixes[i]);
            if (st_find(ck, name)) L.prefix = prefixes[i];
        }
        if (!L.prefix)
            s = base_fail(d, VKF_ERROR_NOT_FOUND,
                          "%s: missing tensor vit.embeddings.patch_embeddings.projection.weight (not a ViT checkpoint?)",
                          ck->files[0].path);
        m->has_classifier = st_find(ck, "classifier.weight") != NULL;
    } else {
        m->has_classifier = true;
    }
    m->params = count_params(cfg, m->has_classifier);
    L.total = m->params;
    uint64_t H = cfg->hidden, C = cfg->channels, P = cfg->patch_size;
    uint64_t S = (cfg->image_size / P) * (cfg->image_size / P) + 1;
    char name[256];
    const char *p = L.prefix ? L.prefix : "";
    if (s == VKF_OK) {
        /* The conv weight [H, C, P, P] is the matmul weight [H, C*P*P] as is. */
        snprintf(name, sizeof name, "%sembeddings.patch_embeddings.projection.weight", p);
        s = weight(&L, &m->w, "patch.weight", name, 4, (uint64_t[]){H, C, P, P}, 2,
                   (uint32_t[]){(uint32_t)H, (uint32_t)(C * P * P)}, false);
    }
    if (s == VKF_OK) {
        snprintf(name, sizeof name, "%sembeddings.patch_embeddings.projection.bias", p);
        s = weight(&L, &m->w, "patch.bias", name, 1, (uint64_t[]){H}, 1, (uint32_t[]){(uint32_t)H}, false);
    }
    if (s == VKF_OK) {
        snprintf(name, sizeof name, "%sembeddings.cls_token", p);
        s = weight(&L, &m->w, "cls", name, 3, (uint64_t[]){1, 1, H}, 1, (uint32_t[]){(uint32_t)H}, false);
    }
    if (s == VKF_OK) {
        snprintf(name, sizeof name, "%sembeddings.position_embeddings", p);
        s = weight(&L, &m->w, "pos", name, 3, (uint64_t[]){1, S, H}, 2, (uint32_t[]){(uint32_t)S, (uint32_t)H}, false);
    }
    for (uint32_t l = 0; l < cfg->layers && s == VKF_OK; l++) s = load_layer(&L, &m->w, cfg, l);
    if (s == VKF_OK) {
        snprintf(name, sizeof name, "%slayernorm.weight", p);
        s = weight(&L, &m->w, "ln.weight", name, 1, (uint64_t[]){H}, 1, (uint32_t[]){(uint32_t)H}, true);
    }
    if (s == VKF_OK) {
        snprintf(name, sizeof name, "%slayernorm.bias", p);
        s = weight(&L, &m->w, "ln.bias", name, 1, (uint64_t[]){H}, 1, (uint32_t[]){(uint32_t)H}, false);
    }
    if (s == VKF_OK && m->has_classifier) {
        uint64_t n = cfg->num_labels;
        s = weight(&L, &m->w, "classifier.weight", "classifier.weight", 2, (uint64_t[]){n, H}, 2,
                   (uint32_t[]){(uint32_t)n, (uint32_t)H}, false);
        if (s == VKF_OK)
            s = weight(&L, &m->w, "classifier.bias", "classifier.bias", 1, (uint64_t[]){n}, 1, (uint32_t[]){(uint32_t)n}, false);
    }
    free(bounce);
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
    int pw = graph_weight(g, "patch.weight", 2, (uint32_t[]){H, c->channels * P * P});
    int pb = graph_weight(g, "patch.bias", 1, (uint32_t[]){H});
    graph_matmul_desc nt = {.layout = OP_W_NT}, act = {.layout = OP_W_NT, .act = c->act};
    int pe = graph_matmul(g, "patch_embeddings", patches, pw, pb, -1, &nt);
    int cls = graph_weight(g, "cls", 1, (uint32_t[]){H});
    int pos = graph_weight(g, "pos", 2, (uint32_t[]){S, H});
    op_rows_params prepend = {.mode = OP_ROWS_PREPEND, .batch = batch, .seq = S, .dim = H};
    int h = graph_rows(g, "embeddings", pe, cls, pos, &prepend);
    op_attention_params ap = {
        .batch = batch, .q_len = S, .kv_len = S, .heads = c->heads, .head_dim = hd,
        .q_rs = 3 * H, .k_rs = 3 * H, .v_rs = 3 * H,
    };
    for (uint32_t l = 0; l < c->layers; l++) {
        char n[16][64];
        int w[12];
        static const char *const names[] = {"ln1.weight", "ln1.bias", "qkv.weight", "qkv.bias", "o.weight", "o.bias",
                                            "ln2.weight", "ln2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
        const uint32_t shapes[12][2] = {{H, 0}, {H, 0}, {3 * H, H}, {3 * H, 0}, {H, H}, {H, 0},
                                        {H, 0}, {H, 0}, {c->intermediate, H}, {c->intermediate, 0}, {H, c->intermediate}, {H, 0}};
        for (int i = 0; i < 12; i++) {
            snprintf(n[i], sizeof n[i], "l%u.%s", l, names[i]);
            w[i] = graph_weight(g, n[i], shapes[i][1] ? 2 : 1, shapes[i]);
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
    int lw = graph_weight(g, "ln.weight", 1, (uint32_t[]){H}), lb = graph_weight(g, "ln.bias", 1, (uint32_t[]){H});
    int last = graph_layernorm(g, "last_hidden_state", h, -1, lw, lb, c->eps, NULL);
    op_rows_params gather = {.mode = OP_ROWS_GATHER, .batch = batch, .seq = S, .dim = H, .index = 0};
    int pooled = graph_rows(g, "pooled", last, -1, -1, &gather);
    graph_output(g, last);
    graph_output(g, pooled);
    if (m->has_classifier) {
        int cw = graph_weight(g, "classifier.weight", 2, (uint32_t[]){c->num_labels, H});
        int cb = graph_weight(g, "classifier.bias", 1, (uint32_t[]){c->num_labels});
        graph_output(g, graph_matmul(g, "logits", pooled, cw, cb, -1, &nt));
    }
    return g;
}
