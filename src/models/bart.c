/* BART (BartForConditionalGeneration, BartModel), mBART (the same with pre-LN
 * blocks and a final layer_norm on each side) and Marian (MarianMTModel, the
 * opus-mt translators): encoder-decoders of post-LN blocks. Shared token
 * embeddings (scaled by sqrt(d_model) with scale_embedding); BART has learned
 * positions from offset 2 and layernorm_embedding on both sides, Marian
 * sinusoidal positions (computed: its checkpoints leave them out) and no
 * embedding norm; decoder layers add cross-attention over the encoder's
 * output between self-attention and the feed-forward; the LM head is tied to
 * the shared embeddings (unless the checkpoint stores lm_head.weight) and adds
 * final_logits_bias. Encoder and decoder may have different head counts.
 *
 * Graphs:
 *   TEXT     input_ids, attention_mask [B, S], decoder_input_ids,
 *            decoder_attention_mask [B, T] -> logits [B, T, vocab] (with an LM
 *            head), last_hidden_state [B, T, d] (the decoder's),
 *            encoder_last_hidden_state [B, S, d]: the tensor API's forward pass
 *   ENCODE   the sources of a generation padded to S: the encoder, then each
 *            decoder layer's cross-attention K and V projected once into the
 *            session's state "xkv.<l>" [B, max_positions, 2d]
 *   DECODE   one decoder token per sequence at meta "positions": self-attention
 *            through "kv.<l>" [B, max_positions, 2d] up to "counts",
 *            cross-attention over "xkv.<l>" up to "src_counts" (each source's
 *            length), logits and their top-k */
#include "model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bart_config {
    bool marian;            /* sinusoidal positions, no layernorm_embedding */
    bool mbart;             /* pre-LN blocks and a final layer_norm on each side */
    uint32_t vocab, d, max_pos, pos_offset;
    uint32_t enc_layers, dec_layers, enc_heads, dec_heads, enc_ffn, dec_ffn;
    uint32_t pad;
    int32_t bos, eos, dec_start, forced_bos, forced_eos;
    float eps, embed_scale;
    op_act act;
    bool lm_head;           /* architectures name ConditionalGeneration (or none is named) */
    bool lm_head_stored;    /* the checkpoint has its own lm_head.weight (untied) */
    bool tie;               /* tie_word_embeddings */
} bart_config;

static vkf_status parse_config(base_diag *d, const char *path, const cJSON *root, const char *type, void *cfg)
{
    bart_config *c = cfg;
    memset(c, 0, sizeof *c);
    c->marian = !strcmp(type, "marian");
    c->mbart = !strcmp(type, "mbart");
    const char *act = NULL;
    bool scale = false, shared = true;
    /* omitted keys: BartConfig's defaults (bart-large) */
    vkf_status s = io_json_u32(d, path, root, "vocab_size", 50265, 1, 1u << 24, &c->vocab);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "d_model", 1024, 1, 65536, &c->d);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "encoder_layers", 12, 1, 1024, &c->enc_layers);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "decoder_layers", 12, 1, 1024, &c->dec_layers);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "encoder_attention_heads", 16, 1, 1024, &c->enc_heads);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "decoder_attention_heads", 16, 1, 1024, &c->dec_heads);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "encoder_ffn_dim", 4096, 1, 1u << 20, &c->enc_ffn);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "decoder_ffn_dim", 4096, 1, 1u << 20, &c->dec_ffn);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "max_position_embeddings", 1024, 1, 1u << 20, &c->max_pos);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "pad_token_id", c->marian ? 58100 : 1, 0, 1u << 24, &c->pad);
    if (s == VKF_OK) s = io_json_str(d, path, root, "activation_function", "gelu", &act);
    if (s == VKF_OK) s = model_parse_act(d, path, act, &c->act);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "scale_embedding", false, &scale);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "tie_word_embeddings", true, &c->tie);
    if (s == VKF_OK && c->marian) s = io_json_bool(d, path, root, "share_encoder_decoder_embeddings", true, &shared);
    if (s == VKF_OK && !shared)
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: share_encoder_decoder_embeddings false (separate source and target "
                      "vocabularies) is not supported", path);
    if (s == VKF_OK && c->marian) {
        uint32_t dec_vocab = c->vocab;
        s = io_json_u32(d, path, root, "decoder_vocab_size", c->vocab, 1, 1u << 24, &dec_vocab);
        if (s == VKF_OK && dec_vocab != c->vocab)
            s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: decoder_vocab_size %u differs from vocab_size %u", path, dec_vocab, c->vocab);
    }
    /* BartConfig's ids; MarianConfig's: eos 0, pad and decoder start 58100 (its pad) */
    if (c->marian) c->bos = -1, c->eos = 0, c->dec_start = (int32_t)c->pad, c->forced_bos = -1, c->forced_eos = 0;
    else c->bos = 0, c->eos = 2, c->dec_start = 2, c->forced_bos = -1, c->forced_eos = 2;
    if (s == VKF_OK) s = model_parse_token_id(d, path, root, "bos_token_id", c->vocab, &c->bos);
    if (s == VKF_OK) s = model_parse_token_id(d, path, root, "eos_token_id", c->vocab, &c->eos);
    if (s == VKF_OK) s = model_parse_token_id(d, path, root, "decoder_start_token_id", c->vocab, &c->dec_start);
    if (s == VKF_OK) s = model_parse_token_id(d, path, root, "forced_bos_token_id", c->vocab, &c->forced_bos);
    if (s == VKF_OK) s = model_parse_token_id(d, path, root, "forced_eos_token_id", c->vocab, &c->forced_eos);
    if (s != VKF_OK) return s;
    if (c->pad >= c->vocab)
        return base_fail(d, VKF_ERROR_FORMAT, "%s: pad_token_id %u is not below vocab_size %u", path, c->pad, c->vocab);
    for (int side = 0; side < 2; side++) {
        uint32_t heads = side ? c->dec_heads : c->enc_heads;
        if (c->d % heads)
            return base_fail(d, VKF_ERROR_FORMAT, "%s: d_model %u is not a multiple of %u %s heads", path, c->d, heads,
                             side ? "decoder" : "encoder");
        if ((c->d / heads) % 4 || c->d / heads > 256)
            return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: head size %u is not a multiple of 4 up to 256", path, c->d / heads);
    }
    c->pos_offset = c->marian ? 0 : 2; /* BartLearnedPositionalEmbedding: positions + 2 */
    c->eps = 1e-5f;
    c->embed_scale = scale ? sqrtf((float)c->d) : 1.0f;
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    c->lm_head = !cJSON_IsArray(arch) || !cJSON_GetArraySize(arch);
    for (const cJSON *a = cJSON_IsArray(arch) ? arch->child : NULL; a; a = a->next) {
        if (!cJSON_IsString(a)) continue;
        if (strstr(a->valuestring, "ConditionalGeneration") || !strcmp(a->valuestring, "MarianMTModel")) c->lm_head = true;
        else if (strcmp(a->valuestring, "BartModel") && strcmp(a->valuestring, "MarianModel") && strcmp(a->valuestring, "MBartModel"))
            return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: %s is not supported (BartForConditionalGeneration, BartModel, "
                             "MBartForConditionalGeneration, MBartModel, MarianMTModel, MarianModel)", path, a->valuestring);
    }
    return VKF_OK;
}

static void describe(model *m)
{
    const bart_config *c = m->cfg;
    m->hidden = c->d;
    m->layers = c->enc_layers + c->dec_layers;
    m->vocab_size = c->vocab;
    m->max_positions = c->max_pos;
    m->max_target = c->max_pos;
    m->pad_id = c->pad;
    m->bos_id = c->bos;
    m->eos_id = c->eos;
    m->encoder_decoder = true;
    m->decoder_start_id = c->dec_start;
    m->forced_bos_id = c->forced_bos;
    m->forced_eos_id = c->forced_eos;
    m->task = c->lm_head ? MODEL_TASK_TEXT2TEXT : MODEL_TASK_FEATURES;
}

static vkf_status family_config_preset(base_diag *d, const char *preset, const model_preset_opts *o, void *cfg)
{
    (void)o;
    bart_config *c = cfg;
    *c = (bart_config){.vocab = 50265, .max_pos = 1024, .pos_offset = 2, .pad = 1, .bos = 0, .eos = 2, .dec_start = 2,
                       .forced_bos = -1, .forced_eos = 2, .eps = 1e-5f, .embed_scale = 1.0f, .act = OP_ACT_GELU, .lm_head = true,
                       .tie = true};
    if (!strcmp(preset, "bart-base")) c->d = 768, c->enc_layers = c->dec_layers = 6, c->enc_heads = c->dec_heads = 12;
    else if (!strcmp(preset, "bart-large")) c->d = 1024, c->enc_layers = c->dec_layers = 12, c->enc_heads = c->dec_heads = 16;
    else if (!strcmp(preset, "opus-mt")) /* Helsinki-NLP/opus-mt-en-de's shape */
        *c = (bart_config){.marian = true, .vocab = 58101, .d = 512, .max_pos = 512, .enc_layers = 6, .dec_layers = 6, .enc_heads = 8,
                           .dec_heads = 8, .pad = 58100, .bos = -1, .eos = 0, .dec_start = 58100, .forced_bos = -1, .forced_eos = 0,
                           .eps = 1e-5f, .embed_scale = sqrtf(512.0f), .act = OP_ACT_SILU, .lm_head = true, .tie = true};
    else return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "unknown preset \"%s\" (bart-base, bart-large, opus-mt)", preset);
    c->enc_ffn = c->dec_ffn = 4 * c->d;
    return VKF_OK;
}

/* ---- weights ------------------------------------------------------------------------ */

/* One layer's attention: Q, K, V packed into "<name>.qkv", out_proj as "<name>.o". */
static void declare_attention(model_decl *t, const char *name, const char *hf, uint64_t d)
{
    char gw[64], gb[64], hw[3][160], hb[3][160], o[64], ho[160];
    const char *pw[3] = {hw[0], hw[1], hw[2]}, *pb[3] = {hb[0], hb[1], hb[2]};
    static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
    for (int k = 0; k < 3; k++) snprintf(hw[k], sizeof hw[k], "%s.%s.weight", hf, qkv[k]), snprintf(hb[k], sizeof hb[k], "%s.%s.bias", hf, qkv[k]);
    snprintf(gw, sizeof gw, "%s.qkv.weight", name), snprintf(gb, sizeof gb, "%s.qkv.bias", name);
    model_decl_fused(t, gw, pw, 3, MODEL_INIT_SMALL, 2, (uint64_t[]){d, d});
    model_decl_fused(t, gb, pb, 3, MODEL_INIT_SMALL, 1, (uint64_t[]){d});
    snprintf(o, sizeof o, "%s.o", name), snprintf(ho, sizeof ho, "%s.out_proj", hf);
    model_decl_linear(t, o, ho, d, d, true);
}

/* Cross-attention: q_proj as "<name>.xq", K and V packed as "<name>.xkv", out_proj as "<name>.xo". */
static void declare_cross(model_decl *t, const char *name, const char *hf, uint64_t d)
{
    char g[64], h[160], hw[2][160], hb[2][160];
    const char *pw[2] = {hw[0], hw[1]}, *pb[2] = {hb[0], hb[1]};
    snprintf(g, sizeof g, "%s.xq", name), snprintf(h, sizeof h, "%s.q_proj", hf);
    model_decl_linear(t, g, h, d, d, true);
    for (int k = 0; k < 2; k++) {
        snprintf(hw[k], sizeof hw[k], "%s.%s.weight", hf, k ? "v_proj" : "k_proj");
        snprintf(hb[k], sizeof hb[k], "%s.%s.bias", hf, k ? "v_proj" : "k_proj");
    }
    snprintf(g, sizeof g, "%s.xkv.weight", name);
    model_decl_fused(t, g, pw, 2, MODEL_INIT_SMALL, 2, (uint64_t[]){d, d});
    snprintf(g, sizeof g, "%s.xkv.bias", name);
    model_decl_fused(t, g, pb, 2, MODEL_INIT_SMALL, 1, (uint64_t[]){d});
    snprintf(g, sizeof g, "%s.xo", name), snprintf(h, sizeof h, "%s.out_proj", hf);
    model_decl_linear(t, g, h, d, d, true);
}

static vkf_status family_declare(model *m, const st_checkpoint *ck, const char **prefix, model_decl *t)
{
    bart_config *c = m->cfg;
    static const char *const prefixes[] = {"model.", ""};
    *prefix = "";
    if (ck) {
        *prefix = model_find_prefix(ck, prefixes, 2, "shared.weight");
        if (!*prefix)
            return base_fail(m->diag, VKF_ERROR_NOT_FOUND, "%s: missing tensor model.shared.weight (not a %s checkpoint?)",
                             ck->files[0].path, m->model_type);
        c->lm_head_stored = c->lm_head && !c->tie && model_ck_has(ck, "", "lm_head.weight");
    }
    uint64_t D = c->d, V = c->vocab;
    model_decl_add(t, "shared", "shared.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){V, D});
    for (int side = 0; side < 2; side++) {
        const char *g = side ? "dec" : "enc", *hf = side ? "decoder" : "encoder";
        char n[64], h[160];
        snprintf(n, sizeof n, "%s.pos", g), snprintf(h, sizeof h, "%s.embed_positions.weight", hf);
        model_weight *pw = model_decl_add(t, n, h, c->marian ? MODEL_INIT_SINUSOIDAL : MODEL_INIT_SMALL, 2,
                                          (uint64_t[]){(uint64_t)c->max_pos + c->pos_offset, D});
        if (pw && c->marian) pw->optional = true; /* computed, as HF does: its checkpoints leave it out */
        snprintf(n, sizeof n, "%s.ln_emb", g), snprintf(h, sizeof h, "%s.layernorm_embedding", hf);
        if (!c->marian) model_decl_layernorm(t, n, h, D);
        snprintf(n, sizeof n, "%s.ln_f", g), snprintf(h, sizeof h, "%s.layer_norm", hf);
        if (c->mbart) model_decl_layernorm(t, n, h, D);
        uint32_t layers = side ? c->dec_layers : c->enc_layers;
        uint64_t F = side ? c->dec_ffn : c->enc_ffn;
        for (uint32_t l = 0; l < layers; l++) {
            char w[32], base[96];
            snprintf(w, sizeof w, "%c%u", side ? 'd' : 'e', l), snprintf(base, sizeof base, "%s.layers.%u", hf, l);
            snprintf(h, sizeof h, "%s.self_attn", base);
            declare_attention(t, w, h, D);
            snprintf(n, sizeof n, "%s.ln1", w), snprintf(h, sizeof h, "%s.self_attn_layer_norm", base);
            model_decl_layernorm(t, n, h, D);
            if (side) {
                snprintf(h, sizeof h, "%s.encoder_attn", base);
                declare_cross(t, w, h, D);
                snprintf(n, sizeof n, "%s.lnx", w), snprintf(h, sizeof h, "%s.encoder_attn_layer_norm", base);
                model_decl_layernorm(t, n, h, D);
            }
            snprintf(n, sizeof n, "%s.fc1", w), snprintf(h, sizeof h, "%s.fc1", base);
            model_decl_linear(t, n, h, F, D, true);
            snprintf(n, sizeof n, "%s.fc2", w), snprintf(h, sizeof h, "%s.fc2", base);
            model_decl_linear(t, n, h, D, F, true);
            snprintf(n, sizeof n, "%s.ln2", w), snprintf(h, sizeof h, "%s.final_layer_norm", base);
            model_decl_layernorm(t, n, h, D);
        }
    }
    if (c->lm_head) {
        model_weight *w = model_decl_add(t, "lm_head", "lm_head.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){V, D});
        if (w && !c->lm_head_stored) w->alias_of = "shared";
        w = model_decl_add(t, "final_logits_bias", "final_logits_bias", MODEL_INIT_ZEROS, 2, (uint64_t[]){1, V});
        if (w) {
            w->optional = true; /* a buffer of zeros some exports leave out */
            model_weight_reshape(w, 1, (uint32_t[]){(uint32_t)V});
        }
    }
    return VKF_OK;
}

/* ---- graphs (the encoder-decoder skeleton, encdec.c) ------------------------------------ */

#define W(name) model_graph_weight(g, t, name)

static int embed(graph *g, const model *m, const char *side, int ids, bool dyn, uint32_t positions)
{
    const bart_config *c = m->cfg;
    const model_decl *t = &m->decl;
    char n[64], wn[64], lw[64], lb[64];
    snprintf(n, sizeof n, "%s.embeddings", side), snprintf(wn, sizeof wn, "%s.pos", side);
    op_embed_params ep = {.pos = true, .pos0 = c->pos_offset, .dyn_pos = dyn, .pos_index = positions, .scale = c->embed_scale};
    int h = graph_embed(g, n, ids, -1, W("shared"), W(wn), -1, &ep);
    if (c->marian) return h;
    snprintf(n, sizeof n, "%s.layernorm_embedding", side);
    snprintf(lw, sizeof lw, "%s.ln_emb.weight", side), snprintf(lb, sizeof lb, "%s.ln_emb.bias", side);
    return graph_layernorm(g, n, h, -1, W(lw), W(lb), c->eps, NULL);
}

/* mBART: the layer_norm after each side's last layer. */
static int final_norm(graph *g, const model *m, const char *side, const char *name, int h)
{
    const bart_config *c = m->cfg;
    const model_decl *t = &m->decl;
    char w[32], b[32];
    snprintf(w, sizeof w, "%s.ln_f.weight", side), snprintf(b, sizeof b, "%s.ln_f.bias", side);
    return graph_layernorm(g, name, h, -1, W(w), W(b), c->eps, NULL);
}

static int encoder(const model_encdec_run *r, graph *g, int ids, int mask)
{
    const model *m = r->e->m;
    const bart_config *c = m->cfg;
    int h = embed(g, m, "enc", ids, false, 0);
    for (uint32_t l = 0; l < c->enc_layers; l++) {
        char w[16], node[24];
        snprintf(w, sizeof w, "e%u", l), snprintf(node, sizeof node, "encoder%u", l);
        model_block blk = {.w = w, .node = node, .layout = OP_W_NT, .act = c->act, .eps = c->eps, .post_ln = !c->mbart, .mask = mask,
                           .out_name = l + 1 == c->enc_layers && !c->mbart ? "encoder_last_hidden_state" : NULL,
                           .at = {.batch = r->B, .q_len = r->S, .kv_len = r->S, .heads = c->enc_heads, .head_dim = c->d / c->enc_heads}};
        h = model_block_build(g, &m->decl, &blk, h);
    }
    return c->mbart ? final_norm(g, m, "enc", "encoder_last_hidden_state", h) : h;
}

static int decoder(model_encdec_run *r, graph *g, int ids, int mask)
{
    const model *m = r->e->m;
    const bart_config *c = m->cfg;
    bool decode = r->kind == MODEL_GRAPH_DECODE;
    int h = embed(g, m, "dec", ids, decode, r->positions);
    for (r->layer = 0; r->layer < c->dec_layers; r->layer++) {
        char w[16], node[24];
        snprintf(w, sizeof w, "d%u", r->layer), snprintf(node, sizeof node, "decoder%u", r->layer);
        model_block blk = {.w = w, .node = node, .layout = OP_W_NT, .act = c->act, .eps = c->eps, .post_ln = !c->mbart, .mask = mask,
                           .out_name = r->layer + 1 == c->dec_layers && !c->mbart ? "last_hidden_state" : NULL,
                           .at = {.batch = r->B, .q_len = r->T, .kv_len = r->T, .heads = c->dec_heads, .head_dim = c->d / c->dec_heads,
                                  .causal = true},
                           .attend = decode ? model_encdec_attend : NULL, .cross = model_encdec_cross, .user = r};
        h = model_block_build(g, &m->decl, &blk, h);
    }
    return c->mbart ? final_norm(g, m, "dec", "last_hidden_state", h) : h;
}

static int lm_head(const model *m, graph *g, int h)
{
    const model_decl *t = &m->decl;
    return graph_matmul(g, "logits", h, W("lm_head"), W("final_logits_bias"), -1, &(graph_matmul_desc){.layout = OP_W_NT});
}

static void skeleton(const model *m, model_encdec *e)
{
    const bart_config *c = m->cfg;
    uint32_t D = c->d / c->dec_heads;
    *e = (model_encdec){.m = m, .dec_layers = c->dec_layers, .heads = c->dec_heads, .head_dim = D, .positions = c->max_pos,
                          .scale = 1.0f / sqrtf((float)D), .xkv_bias = true, .encoder = encoder, .decoder = decoder,
                          .lm_head = c->lm_head ? lm_head : NULL};
}

static const char *const bart_types[] = {"bart", "mbart", "marian", NULL};

const model_family bart_family = {
    .name = "bart",
    .model_types = bart_types,
    .cfg_size = sizeof(bart_config),
    .config_parse = parse_config,
    .config_preset = family_config_preset,
    .describe = describe,
    .declare = family_declare,
    .encdec = skeleton,
};
