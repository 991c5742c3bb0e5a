/* T5 (T5ForConditionalGeneration, T5Model; v1.0 with relu and a tied, scaled
 * LM head, v1.1 / Flan-T5 with gated-gelu and an untied head): pre-LN blocks
 * with RMS norms and no biases, attention without scaling whose inner size
 * heads x d_kv need not be d_model, and relative position bias: layer 0's
 * table [buckets, heads] of each side shared by all its layers, bidirectional
 * buckets in the encoder and causal ones in the decoder's self-attention (none
 * in cross-attention). The buckets of every relative position are computed at
 * load as torch computes them (a table the attention kernels index).
 *
 * Graphs from the encoder-decoder skeleton (encdec.c): TEXT (both sides over
 * decoder_input_ids), ENCODE (cross-attention K/V into "xkv.<l>"), DECODE (one
 * token through "kv.<l>"). */
#include "model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct t5_config {
    uint32_t vocab, d, d_kv, d_ff, enc_layers, dec_layers, heads, buckets, max_distance, positions;
    uint32_t pad;
    int32_t eos, dec_start;
    float eps;
    op_act act;
    bool gated;
    bool scale_output;      /* v1.0: the decoder's output times d_model^-0.5 before a tied head */
    bool tie;               /* tie_word_embeddings (v1.1: false, the head stored) */
    bool lm_head;           /* ConditionalGeneration (or no architectures) */
    bool encoder_only;      /* T5EncoderModel: the encoder alone, last_hidden_state */
    bool lm_head_stored;
} t5_config;

static vkf_status parse_config(base_diag *d, const char *path, const cJSON *root, const char *type, void *cfg)
{
    t5_config *c = cfg;
    (void)type;
    memset(c, 0, sizeof *c);
    const char *ff = NULL;
    double eps = 1e-6;
    /* omitted keys: T5Config's defaults (t5-small) */
    vkf_status s = io_json_u32(d, path, root, "vocab_size", 32128, 1, 1u << 24, &c->vocab);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "d_model", 512, 1, 65536, &c->d);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "d_kv", 64, 1, 1024, &c->d_kv);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "d_ff", 2048, 1, 1u << 20, &c->d_ff);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_layers", 6, 1, 1024, &c->enc_layers);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_decoder_layers", c->enc_layers, 1, 1024, &c->dec_layers);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_heads", 8, 1, 1024, &c->heads);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "relative_attention_num_buckets", 32, 2, 4096, &c->buckets);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "relative_attention_max_distance", 128, 1, 1u << 20, &c->max_distance);
    /* T5 has no position table: n_positions (512, the tokenizers' model_max_length) bounds a text */
    if (s == VKF_OK) s = io_json_u32(d, path, root, "n_positions", 512, 1, 1u << 16, &c->positions);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "pad_token_id", 0, 0, 1u << 24, &c->pad);
    if (s == VKF_OK) s = io_json_f64(d, path, root, "layer_norm_epsilon", 1e-6, &eps);
    if (s == VKF_OK) s = io_json_str(d, path, root, "feed_forward_proj", "relu", &ff);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "tie_word_embeddings", true, &c->tie);
    /* transformers 5 writes scale_decoder_outputs (and tie_word_embeddings true); earlier
     * configs say it with tie_word_embeddings: v1.0 true (scaled), v1.1 false */
    if (s == VKF_OK) s = io_json_bool(d, path, root, "scale_decoder_outputs", c->tie, &c->scale_output);
    c->eos = 1, c->dec_start = (int32_t)c->pad;
    if (s == VKF_OK) s = model_parse_token_id(d, path, root, "eos_token_id", c->vocab, &c->eos);
    if (s == VKF_OK) s = model_parse_token_id(d, path, root, "decoder_start_token_id", c->vocab, &c->dec_start);
    if (s != VKF_OK) return s;
    c->gated = !strncmp(ff, "gated-", 6);
    const char *act = c->gated ? ff + 6 : ff;
    if (!strcmp(act, "gelu")) act = c->gated ? "gelu_new" : "gelu"; /* HF: "gated-gelu" means gelu_new */
    s = model_parse_act(d, path, act, &c->act);
    if (s != VKF_OK) return base_fail_prefix(d, s, "feed_forward_proj \"%s\": ", ff);
    if (!(eps > 0) || eps > 1) return base_fail(d, VKF_ERROR_FORMAT, "%s: layer_norm_epsilon %g is not in (0, 1]", path, eps);
    c->eps = (float)eps;
    if (c->pad >= c->vocab) return base_fail(d, VKF_ERROR_FORMAT, "%s: pad_token_id %u is not below vocab_size %u", path, c->pad, c->vocab);
    if (c->d_kv % 4 || c->d_kv > 256)
        return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: d_kv %u is not a multiple of 4 up to 256", path, c->d_kv);
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    c->lm_head = !cJSON_IsArray(arch) || !cJSON_GetArraySize(arch);
    for (const cJSON *a = cJSON_IsArray(arch) ? arch->child : NULL; a; a = a->next) {
        if (!cJSON_IsString(a)) continue;
        if (strstr(a->valuestring, "ConditionalGeneration")) c->lm_head = true;
        else if (!strcmp(a->valuestring, "T5EncoderModel")) c->encoder_only = true;
        else if (strcmp(a->valuestring, "T5Model"))
            return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: %s is not supported (T5ForConditionalGeneration, T5Model, "
                             "T5EncoderModel)", path, a->valuestring);
    }
    return VKF_OK;
}

static void describe(model *m)
{
    const t5_config *c = m->cfg;
    m->hidden = c->d;
    m->layers = c->enc_layers + c->dec_layers;
    m->vocab_size = c->vocab;
    m->max_positions = c->positions;
    m->pad_id = c->pad;
    m->bos_id = -1;
    m->eos_id = c->eos;
    m->encoder_decoder = !c->encoder_only;
    m->max_target = c->encoder_only ? 0 : c->positions;
    m->decoder_start_id = c->encoder_only ? -1 : c->dec_start;
    m->task = c->lm_head ? MODEL_TASK_TEXT2TEXT : MODEL_TASK_FEATURES;
}

static vkf_status family_config_preset(base_diag *d, const char *preset, const model_preset_opts *o, void *cfg)
{
    (void)o;
    t5_config *c = cfg;
    *c = (t5_config){.vocab = 32128, .d_kv = 64, .buckets = 32, .max_distance = 128, .positions = 512, .eos = 1, .eps = 1e-6f,
                     .lm_head = true, .tie = true};
    if (!strcmp(preset, "t5-small")) c->d = 512, c->d_ff = 2048, c->enc_layers = c->dec_layers = 6, c->heads = 8, c->act = OP_ACT_RELU;
    else if (!strcmp(preset, "flan-t5-base"))
        c->d = 768, c->d_ff = 2048, c->enc_layers = c->dec_layers = 12, c->heads = 12, c->act = OP_ACT_GELU_TANH, c->gated = true, c->tie = false;
    else return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "unknown T5 preset \"%s\" (t5-small, flan-t5-base)", preset);
    c->scale_output = c->tie;
    return VKF_OK;
}

/* ---- weights ------------------------------------------------------------------------ */

static void linear(model_decl *t, const char *name, const char *hf, uint64_t out, uint64_t in)
{
    char w[64];
    snprintf(w, sizeof w, "%s.weight", name);
    model_decl_add(t, w, hf, MODEL_INIT_SMALL, 2, (uint64_t[]){out, in});
}

static void rms(model_decl *t, const char *name, const char *hf, uint64_t n)
{
    char w[64];
    snprintf(w, sizeof w, "%s.weight", name);
    model_decl_add(t, w, hf, MODEL_INIT_ONES, 1, (uint64_t[]){n});
}

static vkf_status family_declare(model *m, const st_checkpoint *ck, const char **prefix, model_decl *t)
{
    t5_config *c = m->cfg;
    *prefix = "";
    if (ck) {
        if (!model_ck_has(ck, "", "shared.weight"))
            return base_fail(m->diag, VKF_ERROR_NOT_FOUND, "%s: missing tensor shared.weight (not a t5 checkpoint?)", ck->files[0].path);
        c->lm_head_stored = c->lm_head && !c->tie && model_ck_has(ck, "", "lm_head.weight");
    }
    uint64_t D = c->d, I = (uint64_t)c->heads * c->d_kv, F = c->d_ff, V = c->vocab;
    model_decl_add(t, "shared", "shared.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){V, D});
    for (int side = 0; side < (c->encoder_only ? 1 : 2); side++) {
        const char *g = side ? "dec" : "enc", *hf = side ? "decoder" : "encoder";
        char n[64], h[192], hq[3][192];
        const char *pq[3] = {hq[0], hq[1], hq[2]};
        snprintf(n, sizeof n, "%s.rel_table", g), snprintf(h, sizeof h, "%s.block.0.layer.0.SelfAttention.relative_attention_bias.weight", hf);
        model_decl_add(t, n, h, MODEL_INIT_SMALL, 2, (uint64_t[]){c->buckets, c->heads});
        snprintf(n, sizeof n, "%s.rel_buckets", g), snprintf(h, sizeof h, "(computed) %s relative position buckets", hf);
        model_weight *bw = model_decl_add(t, n, h, MODEL_INIT_REL_BUCKETS, 1, (uint64_t[]){2ull * c->positions + 1});
        if (bw) {
            bw->optional = true;
            bw->init_arg[0] = c->buckets, bw->init_arg[1] = c->max_distance, bw->init_arg[2] = !side;
        }
        snprintf(n, sizeof n, "%s.ln_f", g), snprintf(h, sizeof h, "%s.final_layer_norm.weight", hf);
        rms(t, n, h, D);
        uint32_t layers = side ? c->dec_layers : c->enc_layers;
        for (uint32_t l = 0; l < layers; l++) {
            char w[16], base[96];
            snprintf(w, sizeof w, "%c%u", side ? 'd' : 'e', l), snprintf(base, sizeof base, "%s.block.%u.layer", hf, l);
            static const char *const qkv[3] = {"q", "k", "v"};
            for (int k = 0; k < 3; k++) snprintf(hq[k], sizeof hq[k], "%s.0.SelfAttention.%s.weight", base, qkv[k]);
            snprintf(n, sizeof n, "%s.qkv.weight", w);
            model_decl_fused(t, n, pq, 3, MODEL_INIT_SMALL, 2, (uint64_t[]){I, D});
            snprintf(n, sizeof n, "%s.o", w), snprintf(h, sizeof h, "%s.0.SelfAttention.o.weight", base);
            linear(t, n, h, D, I);
            snprintf(n, sizeof n, "%s.ln1", w), snprintf(h, sizeof h, "%s.0.layer_norm.weight", base);
            rms(t, n, h, D);
            uint32_t ffl = 1;
            if (side) {
                snprintf(n, sizeof n, "%s.xq", w), snprintf(h, sizeof h, "%s.1.EncDecAttention.q.weight", base);
                linear(t, n, h, I, D);
                for (int k = 0; k < 2; k++) snprintf(hq[k], sizeof hq[k], "%s.1.EncDecAttention.%s.weight", base, k ? "v" : "k");
                snprintf(n, sizeof n, "%s.xkv.weight", w);
                model_decl_fused(t, n, pq, 2, MODEL_INIT_SMALL, 2, (uint64_t[]){I, D});
                snprintf(n, sizeof n, "%s.xo", w), snprintf(h, sizeof h, "%s.1.EncDecAttention.o.weight", base);
                linear(t, n, h, D, I);
                snprintf(n, sizeof n, "%s.lnx", w), snprintf(h, sizeof h, "%s.1.layer_norm.weight", base);
                rms(t, n, h, D);
                ffl = 2;
            }
            snprintf(n, sizeof n, "%s.fc1", w), snprintf(h, sizeof h, "%s.%u.DenseReluDense.%s.weight", base, ffl, c->gated ? "wi_0" : "wi");
            linear(t, n, h, F, D);
            if (c->gated) {
                snprintf(n, sizeof n, "%s.fcg", w), snprintf(h, sizeof h, "%s.%u.DenseReluDense.wi_1.weight", base, ffl);
                linear(t, n, h, F, D);
            }
            snprintf(n, sizeof n, "%s.fc2", w), snprintf(h, sizeof h, "%s.%u.DenseReluDense.wo.weight", base, ffl);
            linear(t, n, h, D, F);
            snprintf(n, sizeof n, "%s.ln2", w), snprintf(h, sizeof h, "%s.%u.layer_norm.weight", base, ffl);
            rms(t, n, h, D);
        }
    }
    if (c->lm_head && !c->encoder_only) {
        model_weight *w = model_decl_add(t, "lm_head", "lm_head.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){V, D});
        if (w && !c->lm_head_stored) w->alias_of = "shared";
    }
    return VKF_OK;
}

/* ---- graphs (the encoder-decoder skeleton, encdec.c) ------------------------------------ */

#define W(name) model_graph_weight(g, t, name)

static model_block block(const t5_config *c, const char *w, const char *node, uint32_t B, uint32_t S, int mask, bool causal,
                         int table, int buckets)
{
    return (model_block){.w = w, .node = node, .layout = OP_W_NT, .act = c->act, .eps = c->eps, .rms = true, .no_bias = true,
                         .gated = c->gated, .mask = mask, .rel_table = table, .rel_buckets = buckets,
                         .at = {.batch = B, .q_len = S, .kv_len = S, .heads = c->heads, .head_dim = c->d_kv, .scale = 1.0f,
                                .causal = causal, .rel_bias = true, .rel_center = c->positions}};
}

static int encoder(const model_encdec_run *r, graph *g, int ids, int mask)
{
    const model *m = r->e->m;
    const t5_config *c = m->cfg;
    const model_decl *t = &m->decl;
    int h = graph_embed(g, "encoder.embeddings", ids, -1, W("shared"), -1, -1, &(op_embed_params){0});
    int table = W("enc.rel_table"), buckets = W("enc.rel_buckets");
    for (uint32_t l = 0; l < c->enc_layers; l++) {
        char w[16], node[24];
        snprintf(w, sizeof w, "e%u", l), snprintf(node, sizeof node, "encoder%u", l);
        model_block blk = block(c, w, node, r->B, r->S, mask, false, table, buckets);
        blk.at.segments = r->seg > 0, blk.at.seg_index = r->seg ? r->seg - 1 : 0; /* packed texts: the bias depends on i - j */
        h = model_block_build(g, t, &blk, h);
    }
    /* T5EncoderModel's output is its last_hidden_state */
    const char *name = r->e->decoder ? "encoder_last_hidden_state" : "last_hidden_state";
    return graph_rmsnorm(g, name, h, -1, W("enc.ln_f.weight"), c->eps, NULL);
}

static int decoder(model_encdec_run *r, graph *g, int ids, int mask)
{
    const model *m = r->e->m;
    const t5_config *c = m->cfg;
    const model_decl *t = &m->decl;
    bool decode = r->kind == MODEL_GRAPH_DECODE;
    int h = graph_embed(g, "decoder.embeddings", ids, -1, W("shared"), -1, -1, &(op_embed_params){0});
    r->rel_table = W("dec.rel_table"), r->rel_buckets = W("dec.rel_buckets");
    for (r->layer = 0; r->layer < c->dec_layers; r->layer++) {
        char w[16], node[24];
        snprintf(w, sizeof w, "d%u", r->layer), snprintf(node, sizeof node, "decoder%u", r->layer);
        model_block blk = block(c, w, node, r->B, r->T, mask, true, r->rel_table, r->rel_buckets);
        blk.attend = decode ? model_encdec_attend : NULL, blk.cross = model_encdec_cross, blk.user = r;
        h = model_block_build(g, t, &blk, h);
    }
    return graph_rmsnorm(g, "last_hidden_state", h, -1, W("dec.ln_f.weight"), c->eps, NULL);
}

static int lm_head(const model *m, graph *g, int h)
{
    const t5_config *c = m->cfg;
    const model_decl *t = &m->decl;
    if (c->scale_output) h = graph_eltwise(g, "scaled_output", OP_SCALE, OP_ACT_NONE, h, -1, 1.0f / sqrtf((float)c->d));
    return graph_matmul(g, "logits", h, W("lm_head"), -1, -1, &(graph_matmul_desc){.layout = OP_W_NT});
}

static void skeleton(const model *m, model_encdec *e)
{
    const t5_config *c = m->cfg;
    *e = (model_encdec){.m = m, .dec_layers = c->encoder_only ? 0 : c->dec_layers, .heads = c->heads, .head_dim = c->d_kv,
                        .positions = c->positions, .scale = 1.0f, .rel_bias = true, .encoder = encoder,
                        .decoder = c->encoder_only ? NULL : decoder, .lm_head = c->lm_head && !c->encoder_only ? lm_head : NULL};
}

static const char *const t5_types[] = {"t5", NULL};

const model_family t5_family = {
    .name = "t5",
    .model_types = t5_types,
    .cfg_size = sizeof(t5_config),
    .config_parse = parse_config,
    .config_preset = family_config_preset,
    .describe = describe,
    .declare = family_declare,
    .encdec = skeleton,
    .packed_text = true, /* T5EncoderModel's (the runtime packs encoders alone) */
};
