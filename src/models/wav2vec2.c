/* wav2vec 2.0 (model_type "wav2vec2") and HuBERT ("hubert"): speech in as
 * raw samples (input_values [B, L] at the feature extractor's rate), a 1-D
 * convolutional feature encoder (conv_dim / conv_kernel / conv_stride; group
 * norm on the first layer and GELU, or a layer norm after every conv), the
 * feature projection (LayerNorm, Linear to hidden_size), a positional
 * convolution (kernel num_conv_pos_embeddings, padding half of it, groups
 * num_conv_pos_embedding_groups, weight norm folded at load, the last output
 * dropped for an even kernel, GELU) added to the features, then post-LN
 * encoder layers after a LayerNorm (base) or pre-LN layers and a final
 * LayerNorm (do_stable_layer_norm: large, robust). Heads: CTC (lm_head,
 * logits [B, frames, vocab]) and sequence classification (projector, mean over
 * the frames, classifier). An attention_mask (given: the feature extractor's
 * with feat_extract_norm "layer") becomes a frame mask: padded frames are
 * zeroed before the positional convolution and masked as keys.
 *
 * Every ungrouped convolution is an unfold and one matmul; the positional one
 * the direct grouped convolution. The AUDIO graph of a batch is recorded per
 * sample count (group norm over time sees padding, so lengths are not
 * bucketed). Refused: adapters, weighted layer sums, HuBERT's batch-norm
 * positional convolution, feat_extract_norm other than group or layer. */
#include "model.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W2V_MAX_CONV 16

typedef struct w2v_config {
    bool hubert;
    uint32_t vocab, hidden, layers, heads, intermediate, pad_id;
    uint32_t n_conv, conv_dim[W2V_MAX_CONV], conv_kernel[W2V_MAX_CONV], conv_stride[W2V_MAX_CONV];
    bool conv_bias, group_norm, stable, proj_ln;
    uint32_t pos_kernel, pos_groups, proj_size;
    float eps;
    op_act act, feat_act;
    model_score score;
    uint32_t num_labels;
    char **labels;
    /* what the checkpoint has */
    bool ctc, classifier, pos_parametrized;
} w2v_config;

static vkf_status int_list(base_diag *d, const char *path, const cJSON *root, const char *key, uint32_t n, const uint32_t *dflt,
                           uint32_t *out, uint32_t *count)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!a || cJSON_IsNull(a)) {
        memcpy(out, dflt, n * sizeof *out);
        if (count) *count = n;
        return VKF_OK;
    }
    int len = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || len < 1 || len > W2V_MAX_CONV || (count == NULL && (uint32_t)len != n))
        return base_fail(d, VKF_ERROR_FORMAT, "%s: %s must be a list of %s%u positive integers", path, key, count ? "1 to " : "",
                         count ? W2V_MAX_CONV : n);
    uint32_t i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 65536 || e->valuedouble != (double)(uint32_t)e->valuedouble)
            return base_fail(d, VKF_ERROR_FORMAT, "%s: %s[%u] is not an integer in [1, 65536]", path, key, i);
        out[i] = (uint32_t)e->valuedouble;
    }
    if (count) *count = (uint32_t)len;
    return VKF_OK;
}

static vkf_status parse_config(base_diag *d, const char *path, const cJSON *root, const char *type, void *cfg)
{
    w2v_config *c = cfg;
    memset(c, 0, sizeof *c);
    c->hubert = !strcmp(type, "hubert");
    static const uint32_t dim[7] = {512, 512, 512, 512, 512, 512, 512}, kern[7] = {10, 3, 3, 3, 3, 2, 2},
                          stride[7] = {5, 2, 2, 2, 2, 2, 2};
    const char *norm = NULL, *act = NULL, *fact = NULL;
    double eps = 1e-5;
    bool stable = false, weighted = false, adapter = false, bn = false;
    vkf_status s = io_json_u32(d, path, root, "vocab_size", 32, 1, 1u << 20, &c->vocab);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "hidden_size", 768, 4, 65536, &c->hidden);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_hidden_layers", 12, 1, 1024, &c->layers);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_attention_heads", 12, 1, 1024, &c->heads);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "intermediate_size", 3072, 1, 1u << 20, &c->intermediate);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "pad_token_id", 0, 0, 1u << 20, &c->pad_id);
    if (s == VKF_OK) s = io_json_f64(d, path, root, "layer_norm_eps", 1e-5, &eps);
    if (s == VKF_OK) s = io_json_str(d, path, root, "hidden_act", "gelu", &act);
    if (s == VKF_OK) s = io_json_str(d, path, root, "feat_extract_activation", "gelu", &fact);
    if (s == VKF_OK) s = io_json_str(d, path, root, "feat_extract_norm", "group", &norm);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "conv_bias", false, &c->conv_bias);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "do_stable_layer_norm", false, &stable);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "use_weighted_layer_sum", false, &weighted);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "add_adapter", false, &adapter);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "conv_pos_batch_norm", false, &bn);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "feat_proj_layer_norm", true, &c->proj_ln);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_conv_pos_embeddings", 128, 1, 4096, &c->pos_kernel);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_conv_pos_embedding_groups", 16, 1, 65536, &c->pos_groups);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "classifier_proj_size", 256, 1, 65536, &c->proj_size);
    if (s == VKF_OK) s = int_list(d, path, root, "conv_dim", 7, dim, c->conv_dim, &c->n_conv);
    if (s == VKF_OK) s = int_list(d, path, root, "conv_kernel", c->n_conv, kern, c->conv_kernel, NULL);
    if (s == VKF_OK) s = int_list(d, path, root, "conv_stride", c->n_conv, stride, c->conv_stride, NULL);
    if (s == VKF_OK) s = model_parse_act(d, path, act, &c->act);
    if (s == VKF_OK) s = model_parse_act(d, path, fact, &c->feat_act);
    if (s == VKF_OK) s = model_parse_labels(d, path, root, &c->num_labels, &c->labels, &c->score);
    if (s == VKF_OK && strcmp(norm, "group") && strcmp(norm, "layer"))
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: feat_extract_norm \"%s\" is neither group nor layer", path, norm);
    if (s == VKF_OK && (weighted || adapter || bn))
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: %s is not supported", path,
                      weighted ? "use_weighted_layer_sum" : adapter ? "add_adapter" : "conv_pos_batch_norm");
    if (s == VKF_OK && (!(eps > 0) || eps > 1)) s = base_fail(d, VKF_ERROR_FORMAT, "%s: layer_norm_eps %g is not in (0, 1]", path, eps);
    if (s == VKF_OK && (c->hidden % c->heads || (c->hidden / c->heads) % 4))
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: hidden size %u over %u heads is not a head size that is a multiple of 4", path,
                      c->hidden, c->heads);
    if (s == VKF_OK && c->hidden % c->pos_groups)
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: num_conv_pos_embedding_groups %u does not divide hidden size %u", path, c->pos_groups,
                      c->hidden);
    c->eps = (float)eps;
    c->group_norm = norm && !strcmp(norm, "group");
    c->stable = stable;
    if (!c->hubert) c->proj_ln = true;
    if (s != VKF_OK) model_free_labels(c->num_labels, c->labels), c->labels = NULL;
    return s;
}

static void describe(model *m)
{
    const w2v_config *c = m->cfg;
    m->hidden = c->hidden;
    m->layers = c->layers;
    m->num_labels = c->num_labels;
    m->labels = c->labels;
    m->score = c->score;
    m->sampling_rate = 16000;
    m->audio_mask = !c->group_norm; /* the feature extractor's return_attention_mask (HF: feat_extract_norm "layer") */
    m->audio_convs = c->n_conv;
    for (uint32_t i = 0; i < c->n_conv; i++) m->audio_kernel[i] = c->conv_kernel[i], m->audio_stride[i] = c->conv_stride[i];
    m->ctc_pad = c->pad_id;
}

static vkf_status config_preset(base_diag *d, const char *preset, const model_preset_opts *o, void *cfg)
{
    (void)o;
    w2v_config *c = cfg;
    if (strcmp(preset, "wav2vec2-base"))
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "unknown wav2vec2 preset \"%s\" (wav2vec2-base)", preset);
    *c = (w2v_config){.vocab = 32, .hidden = 768, .layers = 12, .heads = 12, .intermediate = 3072, .n_conv = 7, .group_norm = true,
                      .proj_ln = true, .pos_kernel = 128, .pos_groups = 16, .proj_size = 256, .eps = 1e-5f, .act = OP_ACT_GELU,
                      .feat_act = OP_ACT_GELU, .ctc = true};
    static const uint32_t kern[7] = {10, 3, 3, 3, 3, 2, 2}, stride[7] = {5, 2, 2, 2, 2, 2, 2};
    for (int i = 0; i < 7; i++) c->conv_dim[i] = 512, c->conv_kernel[i] = kern[i], c->conv_stride[i] = stride[i];
    return VKF_OK;
}

static void config_free(void *cfg)
{
    w2v_config *c = cfg;
    model_free_labels(c->num_labels, c->labels);
}

static void declare_all(const w2v_config *c, model_decl *t)
{
    uint64_t H = c->hidden, I = c->intermediate;
    char n[64], h[3][160];
    for (uint32_t i = 0; i < c->n_conv; i++) {
        uint64_t cin = i ? c->conv_dim[i - 1] : 1, cout = c->conv_dim[i], k = c->conv_kernel[i];
        snprintf(n, sizeof n, "conv%u.weight", i), snprintf(h[0], sizeof h[0], "feature_extractor.conv_layers.%u.conv.weight", i);
        model_weight *w = model_decl_add(t, n, h[0], MODEL_INIT_SMALL, 3, (uint64_t[]){cout, cin, k});
        if (w) model_weight_reshape(w, 2, (uint32_t[]){(uint32_t)cout, (uint32_t)(cin * k)}); /* the unfold's (c, k) order */
        if (c->conv_bias) {
            snprintf(n, sizeof n, "conv%u.bias", i), snprintf(h[0], sizeof h[0], "feature_extractor.conv_layers.%u.conv.bias", i);
            model_decl_add(t, n, h[0], MODEL_INIT_SMALL, 1, (uint64_t[]){cout});
        }
        if (!c->group_norm || i == 0) {
            snprintf(n, sizeof n, "conv%u.norm", i), snprintf(h[0], sizeof h[0], "feature_extractor.conv_layers.%u.layer_norm", i);
            model_decl_layernorm(t, n, h[0], cout);
        }
    }
    uint64_t F = c->conv_dim[c->n_conv - 1];
    if (c->proj_ln) model_decl_layernorm(t, "proj_ln", "feature_projection.layer_norm", F);
    model_decl_linear(t, "proj", "feature_projection.projection", H, F, true);
    /* the positional convolution: weight norm folded at load (parts v, g) */
    const char *v = c->pos_parametrized ? "encoder.pos_conv_embed.conv.parametrizations.weight.original1" : "encoder.pos_conv_embed.conv.weight_v";
    const char *g = c->pos_parametrized ? "encoder.pos_conv_embed.conv.parametrizations.weight.original0" : "encoder.pos_conv_embed.conv.weight_g";
    const char *parts[2] = {v, g};
    model_weight *pw = model_decl_fused(t, "pos_conv.weight", parts, 2, MODEL_INIT_SMALL, 3, (uint64_t[]){H, H / c->pos_groups, c->pos_kernel});
    if (pw) pw->weight_norm = true, pw->gshape[0] = (uint32_t)H; /* graph shape stays [H, H / groups, K] */
    model_decl_add(t, "pos_conv.bias", "encoder.pos_conv_embed.conv.bias", MODEL_INIT_SMALL, 1, (uint64_t[]){H});
    model_decl_layernorm(t, "enc_ln", "encoder.layer_norm", H);
    { /* the frame mask as rows: [0...0], [1...1] */
        model_weight *mw = model_decl_add(t, "mask_rows", "(computed) mask rows", MODEL_INIT_MASK_ROWS, 2, (uint64_t[]){2, H});
        if (mw) mw->optional = true;
    }
    for (uint32_t l = 0; l < c->layers; l++) {
#define HF(i, part) (snprintf(h[i], sizeof h[i], "encoder.layers.%u.%s", l, part), h[i])
#define NM(part) (snprintf(n, sizeof n, "l%u.%s", l, part), n)
        const char *qkv[3] = {HF(0, "attention.q_proj.weight"), HF(1, "attention.k_proj.weight"), HF(2, "attention.v_proj.weight")};
        model_decl_fused(t, NM("qkv.weight"), qkv, 3, MODEL_INIT_SMALL, 2, (uint64_t[]){H, H});
        const char *qkvb[3] = {HF(0, "attention.q_proj.bias"), HF(1, "attention.k_proj.bias"), HF(2, "attention.v_proj.bias")};
        model_decl_fused(t, NM("qkv.bias"), qkvb, 3, MODEL_INIT_SMALL, 1, (uint64_t[]){H});
        model_decl_linear(t, NM("o"), HF(0, "attention.out_proj"), H, H, true);
        model_decl_layernorm(t, NM("ln1"), HF(0, "layer_norm"), H);
        model_decl_linear(t, NM("fc1"), HF(0, "feed_forward.intermediate_dense"), I, H, true);
        model_decl_linear(t, NM("fc2"), HF(0, "feed_forward.output_dense"), H, I, true);
        model_decl_layernorm(t, NM("ln2"), HF(0, "final_layer_norm"), H);
#undef HF
#undef NM
    }
    if (c->ctc) model_decl_linear(t, "lm_head", "lm_head", c->vocab, H, true);
    if (c->classifier) {
        model_decl_linear(t, "projector", "projector", c->proj_size, H, true);
        model_decl_linear(t, "classifier", "classifier", c->num_labels, c->proj_size, true);
    }
}

static vkf_status declare(model *m, const st_checkpoint *ck, const char **prefix, model_decl *t)
{
    w2v_config *c = m->cfg;
    const char *prefixes[2] = {c->hubert ? "hubert." : "wav2vec2.", ""};
    *prefix = "";
    if (ck) {
        *prefix = model_find_prefix(ck, prefixes, 2, "feature_projection.projection.weight");
        if (!*prefix)
            return base_fail(m->diag, VKF_ERROR_NOT_FOUND, "%s: missing tensor %sfeature_projection.projection.weight (not a %s checkpoint?)",
                             ck->files[0].path, prefixes[0], m->model_type);
        c->ctc = model_ck_has(ck, *prefix, "lm_head.weight");
        c->classifier = model_ck_has(ck, *prefix, "classifier.weight");
        c->pos_parametrized = model_ck_has(ck, *prefix, "encoder.pos_conv_embed.conv.parametrizations.weight.original1");
    }
    m->task = c->ctc ? MODEL_TASK_SPEECH_RECOGNITION : c->classifier ? MODEL_TASK_AUDIO_CLASSIFICATION : MODEL_TASK_FEATURES;
    if (!c->classifier) m->num_labels = 0;
    m->ctc_vocab = c->ctc ? c->vocab : 0;
    declare_all(c, t);
    return VKF_OK;
}

/* ---- graph ---------------------------------------------------------------------- */

#define W(name) model_graph_weight(g, t, name)

/* Frames the feature encoder makes of n samples (0: too short). */
uint32_t model_audio_frames(const model *m, uint64_t n)
{
    for (uint32_t i = 0; i < m->audio_convs; i++) {
        if (n < m->audio_kernel[i]) return 0;
        n = (n - m->audio_kernel[i]) / m->audio_stride[i] + 1;
    }
    return n > UINT32_MAX ? 0 : (uint32_t)n;
}

uint32_t model_audio_hop(const model *m)
{
    uint32_t hop = 1;
    for (uint32_t i = 0; i < m->audio_convs; i++) hop *= m->audio_stride[i];
    return hop;
}

static graph *build(const model *m, const graph_key *key)
{
    const w2v_config *c = m->cfg;
    const model_decl *t = &m->decl;
    if (key->kind != MODEL_GRAPH_AUDIO) return model_no_graph(m, key);
    uint32_t B = key->batch, L = key->seq, H = c->hidden, T = model_audio_frames(m, L);
    graph *g = graph_create(m->diag, m->dtype);
    if (!g) return NULL;
    if (!T) {
        g->error = base_fail(m->diag, VKF_ERROR_SHAPE, "%u samples are too few for the feature encoder", L);
        return g;
    }
    graph_matmul_desc nt = {.layout = OP_W_NT};
    int x = graph_input(g, "input_values", m->dtype, 2, (uint32_t[]){B, L});
    /* the frames of each clip (all ones without an attention_mask) */
    int mask = graph_input(g, "frame_mask", GRAPH_I32, 2, (uint32_t[]){B, T});
    uint32_t frames = graph_meta_named(g, "frames", B); /* each clip's frame count: the classifier's mean */
    int h = graph_view(g, "samples", x, 0, 3, (uint32_t[]){B, L, 1});
    uint32_t len = L;
    char name[48], wn[48], bn[48];
    for (uint32_t i = 0; i < c->n_conv; i++) {
        snprintf(name, sizeof name, "conv%u_unfold", i);
        h = graph_unfold(g, name, h, -1, c->conv_kernel[i], c->conv_stride[i], 0);
        len = (len - c->conv_kernel[i]) / c->conv_stride[i] + 1;
        bool norm = !c->group_norm || i == 0;
        snprintf(name, sizeof name, "conv%u", i), snprintf(wn, sizeof wn, "conv%u.weight", i), snprintf(bn, sizeof bn, "conv%u.bias", i);
        graph_matmul_desc cd = {.layout = OP_W_NT, .act = norm ? OP_ACT_NONE : c->feat_act};
        h = graph_matmul(g, name, h, W(wn), c->conv_bias ? W(bn) : -1, -1, &cd);
        if (!norm) continue;
        snprintf(wn, sizeof wn, "conv%u.norm.weight", i), snprintf(bn, sizeof bn, "conv%u.norm.bias", i);
        snprintf(name, sizeof name, "conv%u_norm", i);
        if (c->group_norm) { /* GroupNorm(C, C): each channel over time, then the activation */
            h = graph_groupnorm(g, name, h, W(wn), W(bn), c->conv_dim[0], 1e-5f, c->feat_act);
        } else {
            h = graph_layernorm(g, name, h, -1, W(wn), W(bn), 1e-5f, NULL);
            snprintf(name, sizeof name, "conv%u_act", i);
            h = graph_eltwise(g, name, OP_ACT, c->feat_act, h, -1, 0);
        }
    }
    if (c->proj_ln) h = graph_layernorm(g, "feature_norm", h, -1, W("proj_ln.weight"), W("proj_ln.bias"), c->eps, NULL);
    h = graph_matmul(g, "feature_projection", h, W("proj.weight"), W("proj.bias"), -1, &nt);
    { /* padded frames are zeroed before the positional convolution (HF: with an attention_mask) */
        op_embed_params ep = {0};
        int rows = graph_embed(g, "frame_mask_rows", mask, -1, W("mask_rows"), -1, -1, &ep);
        h = graph_eltwise(g, "features_masked", OP_MUL, OP_ACT_NONE, h, rows, 0);
    }
    op_conv1d_params pc = {.kernel = c->pos_kernel, .stride = 1, .pad = c->pos_kernel / 2, .groups = c->pos_groups, .out_len = T,
                           .act = c->feat_act};
    int pos = graph_conv1d(g, "pos_conv", h, W("pos_conv.weight"), W("pos_conv.bias"), &pc);
    if (c->stable) h = graph_eltwise(g, "with_positions", OP_ADD, OP_ACT_NONE, h, pos, 0);
    else h = graph_layernorm(g, "encoder_norm", pos, h, W("enc_ln.weight"), W("enc_ln.bias"), c->eps, NULL);
    uint32_t hd = H / c->heads;
    for (uint32_t l = 0; l < c->layers; l++) {
        char w[16], node[16];
        snprintf(w, sizeof w, "l%u", l), snprintf(node, sizeof node, "layer%u", l);
        bool last = l + 1 == c->layers && !c->stable;
        model_block blk = {.w = w, .node = node, .layout = OP_W_NT, .act = c->act, .eps = c->eps, .post_ln = !c->stable, .mask = mask,
                           .out_name = last ? "last_hidden_state" : NULL,
                           .at = {.batch = B, .q_len = T, .kv_len = T, .heads = c->heads, .head_dim = hd}};
        h = model_block_build(g, t, &blk, h);
    }
    if (c->stable) h = graph_layernorm(g, "last_hidden_state", h, -1, W("enc_ln.weight"), W("enc_ln.bias"), c->eps, NULL);
    graph_output(g, h);
    if (c->ctc) graph_output(g, graph_matmul(g, "logits", h, W("lm_head.weight"), W("lm_head.bias"), -1, &nt));
    if (c->classifier) {
        int p = graph_matmul(g, "projector", h, W("projector.weight"), W("projector.bias"), -1, &nt);
        /* the mean over each clip's frames (meta "frames": all of them without a mask) */
        op_rows_params mean = {.mode = OP_ROWS_MEAN, .batch = B, .seq = T, .dim = c->proj_size, .use_meta = true, .meta_index = frames};
        int pooled = graph_rows(g, "pooled", p, -1, -1, &mean);
        graph_output(g, graph_matmul(g, "logits", pooled, W("classifier.weight"), W("classifier.bias"), -1, &nt));
    }
    return g;
}

static const char *const w2v_types[] = {"wav2vec2", "hubert", NULL};

const model_family wav2vec2_family = {
    .name = "wav2vec2",
    .model_types = w2v_types,
    .cfg_size = sizeof(w2v_config),
    .config_parse = parse_config,
    .config_preset = config_preset,
    .config_release = config_free,
    .describe = describe,
    .declare = declare,
    .build = build,
};
