/* GPT-2 (GPT2LMHeadModel, GPT2Model; distilgpt2 and the larger sizes by
 * config): token + position embeddings, pre-LN blocks with a fused c_attn,
 * Conv1D weights stored [in, out] (the NN matmul layout), gelu_new, ln_f, and
 * an LM head tied to wte unless the checkpoint stores lm_head.weight.
 * Checkpoints with the "transformer." prefix and without it (the original
 * gpt2 files), with or without the attn.bias / attn.masked_bias buffers
 * (never read: the causal mask is the kernel's).
 *
 * Three graphs:
 *   build      input_ids, attention_mask [B, S] -> logits [B, S, vocab],
 *              last_hidden_state (after ln_f): the tensor API's forward pass
 *   prefill    a batch of prompts right-padded to a bucket S: causal
 *              attention over the prompt, K and V of every position written
 *              into the session's cache (state "kv.L" [B, n_positions, 2E],
 *              K then V per position), logits of each prompt's last token
 *              [B, vocab] and their top-k on the device
 *   decode     one token per sequence at its own position (meta): K and V
 *              appended to the cache, attention over the cache split over
 *              keys, logits and top-k
 * Meta (int32, per run, by name): prefill: "lengths" [B]; decode:
 * "positions" [B] and "counts" [B] (keys per sequence: position + 1). */
#include "model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct gpt2_config {
    uint32_t vocab, embd, layers, heads, inner, positions;
    float eps;
    op_act act;
    bool scale_weights, scale_by_layer;
    int32_t bos, eos;
    bool lm_head;          /* architectures name an LM head (or none is named) */
    bool lm_head_stored;   /* the checkpoint has lm_head.weight (untied) */
} gpt2_config;

static vkf_status parse_config(base_diag *d, const char *path, const cJSON *root, const char *type, void *cfg)
{
    gpt2_config *c = cfg;
    (void)type;
    memset(c, 0, sizeof *c);
    const char *act = NULL;
    double eps = 1e-5;
    bool reorder = false;
    /* omitted keys: GPT2Config's defaults (the 124M model) */
    vkf_status s = io_json_u32(d, path, root, "vocab_size", 50257, 1, 1u << 24, &c->vocab);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "n_embd", 768, 1, 65536, &c->embd);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "n_layer", 12, 1, 1024, &c->layers);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "n_head", 12, 1, 1024, &c->heads);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "n_positions", 1024, 1, 1u << 20, &c->positions);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "n_inner", 0, 1, 1u << 20, &c->inner);
    if (s == VKF_OK) s = io_json_f64(d, path, root, "layer_norm_epsilon", 1e-5, &eps);
    if (s == VKF_OK) s = io_json_str(d, path, root, "activation_function", "gelu_new", &act);
    if (s == VKF_OK) s = model_parse_act(d, path, act, &c->act);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "scale_attn_weights", true, &c->scale_weights);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "scale_attn_by_inverse_layer_idx", false, &c->scale_by_layer);
    /* reorder_and_upcast_attn computes Q K^T in fp32 with the scale applied
     * first: what the kernels always do (fp32 math whatever the storage). */
    if (s == VKF_OK) s = io_json_bool(d, path, root, "reorder_and_upcast_attn", false, &reorder);
    bool cross = false;
    if (s == VKF_OK) s = io_json_bool(d, path, root, "add_cross_attention", false, &cross);
    if (s == VKF_OK && cross)
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: add_cross_attention (GPT-2 as an encoder-decoder's decoder) is not supported", path);
    c->bos = c->eos = (int32_t)c->vocab - 1;
    if (s == VKF_OK) s = model_parse_token_id(d, path, root, "bos_token_id", c->vocab, &c->bos);
    if (s == VKF_OK) s = model_parse_token_id(d, path, root, "eos_token_id", c->vocab, &c->eos);
    if (s != VKF_OK) return s;
    if (!c->inner) c->inner = 4 * c->embd;
    if (!(eps > 0) || eps > 1) return base_fail(d, VKF_ERROR_FORMAT, "%s: layer_norm_epsilon %g is not in (0, 1]", path, eps);
    c->eps = (float)eps;
    if (c->embd % c->heads) return base_fail(d, VKF_ERROR_FORMAT, "%s: n_embd %u is not a multiple of %u heads", path, c->embd, c->heads);
    if ((c->embd / c->heads) % 4 || c->embd / c->heads > 256)
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: head size %u is not a multiple of 4 up to 256", path, c->embd / c->heads);
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    c->lm_head = !cJSON_IsArray(arch) || !cJSON_GetArraySize(arch);
    for (const cJSON *a = cJSON_IsArray(arch) ? arch->child : NULL; a; a = a->next)
        if (cJSON_IsString(a) && strstr(a->valuestring, "LMHead")) c->lm_head = true;
    return VKF_OK;
}

static void describe(model *m)
{
    const gpt2_config *c = m->cfg;
    m->hidden = c->embd;
    m->layers = c->layers;
    m->vocab_size = c->vocab;
    m->max_positions = c->positions;
    m->pad_id = (uint32_t)c->eos; /* any real id: padded positions are masked */
    m->bos_id = c->bos;
    m->eos_id = c->eos;
    m->task = c->lm_head ? MODEL_TASK_TEXT_GENERATION : MODEL_TASK_FEATURES;
}

static vkf_status family_config_preset(base_diag *d, const char *preset, const model_preset_opts *o, void *cfg)
{
    (void)o;
    gpt2_config *c = cfg;
    *c = (gpt2_config){.vocab = 50257, .positions = 1024, .eps = 1e-5f, .act = OP_ACT_GELU_TANH, .scale_weights = true,
                       .bos = 50256, .eos = 50256, .lm_head = true};
    if (!strcmp(preset, "gpt2")) c->embd = 768, c->layers = 12, c->heads = 12;
    else if (!strcmp(preset, "distilgpt2")) c->embd = 768, c->layers = 6, c->heads = 12;
    else if (!strcmp(preset, "gpt2-medium")) c->embd = 1024, c->layers = 24, c->heads = 16;
    else if (!strcmp(preset, "gpt2-large")) c->embd = 1280, c->layers = 36, c->heads = 20;
    else
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "unknown GPT-2 preset \"%s\" (gpt2, distilgpt2, gpt2-medium, gpt2-large)", preset);
    c->inner = 4 * c->embd;
    return VKF_OK;
}

static void param(model_decl *t, const char *name, const char *hf, model_init init, uint32_t rank, uint64_t d0, uint64_t d1)
{
    model_decl_add(t, name, hf, init, rank, (uint64_t[]){d0, d1});
}

static vkf_status family_declare(model *m, const st_checkpoint *ck, const char **prefix, model_decl *t)
{
    gpt2_config *c = m->cfg;
    static const char *const prefixes[] = {"transformer.", ""};
    *prefix = "";
    if (ck) {
        *prefix = model_find_prefix(ck, prefixes, 2, "wte.weight");
        if (!*prefix)
            return base_fail(m->diag, VKF_ERROR_NOT_FOUND, "%s: missing tensor transformer.wte.weight (not a gpt2 checkpoint?)",
                             ck->files[0].path);
        c->lm_head_stored = c->lm_head && model_ck_has(ck, "", "lm_head.weight");
    }
    uint64_t E = c->embd, I = c->inner, V = c->vocab;
    param(t, "wte", "wte.weight", MODEL_INIT_SMALL, 2, V, E);
    param(t, "wpe", "wpe.weight", MODEL_INIT_SMALL, 2, c->positions, E);
    for (uint32_t l = 0; l < c->layers; l++) {
        static const struct {
            const char *name, *hf;
            bool ln;
            int in, out; /* 0: E, 1: 3E, 2: I */
        } parts[] = {{"ln1", "ln_1", true, 0, 0},          {"qkv", "attn.c_attn", false, 0, 1},
                     {"o", "attn.c_proj", false, 0, 0},    {"ln2", "ln_2", true, 0, 0},
                     {"fc1", "mlp.c_fc", false, 0, 2},     {"fc2", "mlp.c_proj", false, 2, 0}};
        for (size_t i = 0; i < BASE_ARRAY_LEN(parts); i++) {
            uint64_t dims[3] = {E, 3 * E, I};
            char nw[64], nb[64], hw[128], hb[128];
            snprintf(nw, sizeof nw, "l%u.%s.weight", l, parts[i].name), snprintf(nb, sizeof nb, "l%u.%s.bias", l, parts[i].name);
            snprintf(hw, sizeof hw, "h.%u.%s.weight", l, parts[i].hf), snprintf(hb, sizeof hb, "h.%u.%s.bias", l, parts[i].hf);
            if (parts[i].ln) {
                param(t, nw, hw, MODEL_INIT_ONES, 1, E, 0);
                param(t, nb, hb, MODEL_INIT_SMALL, 1, E, 0);
            } else { /* Conv1D: [in, out] */
                param(t, nw, hw, MODEL_INIT_SMALL, 2, dims[parts[i].in], dims[parts[i].out]);
                param(t, nb, hb, MODEL_INIT_SMALL, 1, dims[parts[i].out], 0);
            }
        }
    }
    param(t, "ln_f.weight", "ln_f.weight", MODEL_INIT_ONES, 1, E, 0);
    param(t, "ln_f.bias", "ln_f.bias", MODEL_INIT_SMALL, 1, E, 0);
    if (c->lm_head) {
        model_weight *w = model_decl_add(t, "lm_head", "lm_head.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){V, E});
        if (w && !c->lm_head_stored) w->alias_of = "wte"; /* tied: HF saves it once */
    }
    return VKF_OK;
}

/* ---- graphs ------------------------------------------------------------------------ */

#define W(name) model_graph_weight(g, t, name)

typedef enum gpt2_graph { FORWARD = MODEL_GRAPH_TEXT, PREFILL = MODEL_GRAPH_PREFILL, DECODE = MODEL_GRAPH_DECODE } gpt2_graph;

/* Layer l's cache of a batch of B: K then V of every position, [B, n_positions, 2E]. */
static void kv_state(const gpt2_config *c, uint32_t l, uint32_t B, model_state *st)
{
    snprintf(st->name, sizeof st->name, "kv.%u", l);
    st->rank = 3, st->shape[0] = B, st->shape[1] = c->positions, st->shape[2] = 2 * c->embd;
    st->beams = true;
}

static uint32_t declare_state(const model *m, uint32_t B, model_state *out, uint32_t max)
{
    const gpt2_config *c = m->cfg;
    if (!c->lm_head) return 0;
    for (uint32_t l = 0; l < c->layers && l < max; l++) kv_state(c, l, B, &out[l]);
    return c->layers;
}

/* 1/sqrt(head size) unless scale_attn_weights is off; / (layer + 1) with
 * scale_attn_by_inverse_layer_idx. */
static float attn_scale(const gpt2_config *c, uint32_t l)
{
    float scale = c->scale_weights ? 1.0f / sqrtf((float)(c->embd / c->heads)) : 1.0f;
    return c->scale_by_layer ? scale / (float)(l + 1) : scale;
}

typedef struct gen_attend {
    const model *m;
    uint32_t B, S, layer;
    uint32_t lengths, positions, counts; /* meta slots */
    gpt2_graph kind;
} gen_attend;

static int attend_cached(void *user, graph *g, int qkv, const char *node)
{
    gen_attend *a = user;
    const gpt2_config *c = a->m->cfg;
    uint32_t l = a->layer++;
    model_state ks;
    kv_state(c, l, a->B, &ks);
    model_cache_attn ca = {.B = a->B, .S = a->S, .heads = c->heads, .head_dim = c->embd / c->heads, .state = &ks,
                           .decode = a->kind == DECODE, .positions = a->positions, .counts = a->counts, .scale = attn_scale(c, l)};
    return model_cache_attention(g, &ca, qkv, node);
}

/* The blocks and ln_f; the generation graphs attend through the cache. */
static int blocks(const model *m, graph *g, int h, uint32_t B, uint32_t S, gpt2_graph kind, int mask, const gen_attend *meta)
{
    const gpt2_config *c = m->cfg;
    const model_decl *t = &m->decl;
    gen_attend ga = meta ? *meta : (gen_attend){0};
    ga.m = m, ga.B = B, ga.S = S, ga.layer = 0, ga.kind = kind;
    for (uint32_t l = 0; l < c->layers; l++) {
        char w[32], node[32];
        snprintf(w, sizeof w, "l%u", l), snprintf(node, sizeof node, "layer%u", l);
        model_block blk = {.w = w, .node = node, .layout = OP_W_NN, .act = c->act, .eps = c->eps, .mask = mask,
                           .at = {.batch = B, .q_len = S, .kv_len = S, .heads = c->heads, .head_dim = c->embd / c->heads,
                                  .scale = attn_scale(c, l), .causal = true},
                           .attend = kind == FORWARD ? NULL : attend_cached, .user = &ga};
        h = model_block_build(g, t, &blk, h);
    }
    return graph_layernorm(g, "last_hidden_state", h, -1, W("ln_f.weight"), W("ln_f.bias"), c->eps, NULL);
}

static graph *gpt2_build_gen(const model *m, const graph_key *key);

static graph *gpt2_build(const model *m, const graph_key *key)
{
    const gpt2_config *c = m->cfg;
    const model_decl *t = &m->decl;
    if ((key->kind == PREFILL || key->kind == DECODE) && c->lm_head) return gpt2_build_gen(m, key);
    if (key->kind != FORWARD) return model_no_graph(m, key);
    uint32_t B = key->batch, S = key->seq;
    graph *g = graph_create(m->diag, m->dtype);
    if (!g) return NULL;
    uint32_t shape[2] = {B, S};
    int ids = graph_input(g, "input_ids", GRAPH_I32, 2, shape);
    int mask = graph_input(g, "attention_mask", GRAPH_I32, 2, shape);
    op_embed_params ep = {.pos = true};
    int h = graph_embed(g, "embeddings", ids, -1, W("wte"), W("wpe"), -1, &ep);
    h = blocks(m, g, h, B, S, FORWARD, mask, NULL);
    graph_output(g, h);
    if (c->lm_head) graph_output(g, graph_matmul(g, "logits", h, W("lm_head"), -1, -1, &(graph_matmul_desc){.layout = OP_W_NT}));
    return g;
}

/* A prefill of prompts padded to key->seq, or one decode step. */
static graph *gpt2_build_gen(const model *m, const graph_key *key)
{
    const gpt2_config *c = m->cfg;
    const model_decl *t = &m->decl;
    graph *g = graph_create(m->diag, m->dtype);
    if (!g) return NULL;
    gpt2_graph kind = (gpt2_graph)key->kind;
    uint32_t B = key->batch, S = kind == PREFILL ? key->seq : 1, E = c->embd, k = key->k;
    int ids = graph_input(g, "input_ids", GRAPH_I32, 2, (uint32_t[]){B, S});
    gen_attend meta = {0};
    if (kind == PREFILL) meta.lengths = graph_meta_named(g, "lengths", B);
    else meta.positions = graph_meta_named(g, "positions", B), meta.counts = graph_meta_named(g, "counts", B);
    op_embed_params ep = {.pos = true, .dyn_pos = kind == DECODE, .pos_index = meta.positions};
    int h = graph_embed(g, "embeddings", ids, -1, W("wte"), W("wpe"), -1, &ep);
    h = blocks(m, g, h, B, S, kind, -1, &meta);
    if (kind == PREFILL) {
        op_rows_params last = {.mode = OP_ROWS_GATHER, .batch = B, .seq = S, .dim = E, .use_meta = true, .meta_index = meta.lengths};
        h = graph_rows(g, "last_token", h, -1, -1, &last);
    }
    int logits = graph_matmul(g, "logits", h, W("lm_head"), -1, -1, &(graph_matmul_desc){.layout = OP_W_NT});
    model_generation_outputs(g, logits, k);
    return g;
}

static const char *const gpt2_types[] = {"gpt2", NULL};

const model_family gpt2_family = {
    .name = "gpt2",
    .model_types = gpt2_types,
    .cfg_size = sizeof(gpt2_config),
    .config_parse = parse_config,
    .config_preset = family_config_preset,
    .describe = describe,
    .declare = family_declare,
    .build = gpt2_build,
    .declare_state = declare_state,
};
