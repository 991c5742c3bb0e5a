/* DeBERTa (model_type "deberta", v1) and DeBERTa-v2/v3 ("deberta-v2"): a
 * post-LN encoder whose attention adds disentangled relative terms to each
 * score: content-to-position q_i . pk[c] and position-to-content k_j . pq[c],
 * over the projections of a table of relative embeddings (pos_att_type says
 * which terms; all of a score is divided by sqrt(head_dim x (1 + terms))).
 *   v1   in_proj [3H, H] holding Q, K, V per head (reordered at load),
 *        q_bias and v_bias; pos_proj (c2p, no bias) and pos_q_proj (p2c);
 *        relative positions i - j clamped to max_relative_positions
 *   v2   query_proj / key_proj / value_proj; pos_key_proj / pos_query_proj,
 *        or the content projections again (share_att_key); log-bucketed
 *        positions (position_buckets, max_relative_positions); the relative
 *        table layer-normed (norm_rel_ebd "layer_norm")
 * Embeddings: words at embedding_size, absolute positions when
 * position_biased_input, token types when type_vocab_size > 0, embed_proj to
 * hidden, LayerNorm. Heads: ContextPooler (the first token, dense,
 * pooler_hidden_act) + classifier; the masked LM (legacy cls.predictions, or
 * lm_predictions.lm_head), tied to the word embeddings.
 *
 * The graph projects only the relative rows a sequence of its length
 * reaches (the bucketing is monotonic), once per layer, and hands them to the
 * attention kernel's disentangled variant with the bucket table of i - j.
 * Unlike HF, padded queries keep their own rows (HF masks them entirely and
 * zeroes their embeddings): real tokens' outputs are the same. The v2
 * convolution layer (conv_kernel_size > 0: deberta-v2-xlarge and larger)
 * runs after the first layer over the embeddings, as an unfold whose padding
 * reads as zeros and one matmul with act (conv_act), then LayerNorm with the
 * layer's output. Refused: grouped convolutions, even kernels and v1's
 * talking heads. */
#include "model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct deberta_config {
    bool v2;
    uint32_t vocab, hidden, embed, layers, heads, intermediate, max_pos, type_vocab, pad_id;
    float eps;
    op_act act, pooler_act;
    bool relative;            /* relative_attention */
    uint32_t c2p, p2c;        /* pos_att_type */
    uint32_t span;            /* the relative table holds 2 x span rows */
    uint32_t buckets, max_rel; /* position_buckets (0: none), max_relative_positions */
    bool pos_input;           /* position_biased_input */
    bool share_key, norm_rel;
    bool legacy;              /* the MLM head's names */
    uint32_t conv;            /* conv_kernel_size (0: no convolution layer) */
    op_act conv_act;
    model_score score;
    uint32_t num_labels;
    char **labels;
    bool want_mlm;
    /* what the checkpoint has */
    bool classifier, mlm, mlm_decoder_stored;
} deberta_config;

/* pos_att_type as a list or a "p2c|c2p" string; terms beyond c2p and p2c are refused. */
static vkf_status parse_att_type(base_diag *d, const char *path, const cJSON *v, deberta_config *c)
{
    char buf[128] = "";
    if (cJSON_IsString(v)) snprintf(buf, sizeof buf, "%s", v->valuestring);
    else if (cJSON_IsArray(v))
        for (const cJSON *e = v->child; e; e = e->next) {
            if (!cJSON_IsString(e)) return base_fail(d, VKF_ERROR_FORMAT, "%s: pos_att_type holds a non-string", path);
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? "|" : "", e->valuestring);
        }
    else if (v && !cJSON_IsNull(v)) return base_fail(d, VKF_ERROR_FORMAT, "%s: pos_att_type is neither a list nor a string", path);
    for (char *save = NULL, *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save)) {
        while (*t == ' ') t++;
        for (char *e = t + strlen(t); e > t && e[-1] == ' ';) *--e = 0;
        for (char *x = t; *x; x++) *x = (char)(*x >= 'A' && *x <= 'Z' ? *x + 32 : *x);
        if (!strcmp(t, "c2p")) c->c2p = 1;
        else if (!strcmp(t, "p2c")) c->p2c = 1;
        else if (*t && strcmp(t, "none")) return base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: pos_att_type \"%s\" is not supported (c2p, p2c)", path, t);
    }
    return VKF_OK;
}

static vkf_status parse_config(base_diag *d, const char *path, const cJSON *root, const char *type, void *cfg)
{
    deberta_config *c = cfg;
    memset(c, 0, sizeof *c);
    c->v2 = !strcmp(type, "deberta-v2");
    double eps = 1e-7, maxrel = -1, buckets = -1;
    uint32_t groups = 1;
    const char *act = NULL, *pact = NULL, *norm = NULL, *cact = NULL;
    bool talking = false;
    /* omitted keys: the config classes' defaults */
    vkf_status s = io_json_u32(d, path, root, "vocab_size", c->v2 ? 128100 : 50265, 1, 1u << 24, &c->vocab);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "hidden_size", c->v2 ? 1536 : 768, 1, 65536, &c->hidden);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "embedding_size", c->hidden, 1, 65536, &c->embed);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_hidden_layers", c->v2 ? 24 : 12, 1, 1024, &c->layers);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "num_attention_heads", c->v2 ? 24 : 12, 1, 1024, &c->heads);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "intermediate_size", c->v2 ? 6144 : 3072, 1, 1u << 20, &c->intermediate);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "max_position_embeddings", 512, 1, 1u << 16, &c->max_pos);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "type_vocab_size", 0, 0, 1u << 16, &c->type_vocab);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "pad_token_id", 0, 0, 1u << 24, &c->pad_id);
    if (s == VKF_OK) s = io_json_f64(d, path, root, "layer_norm_eps", 1e-7, &eps);
    if (s == VKF_OK) s = io_json_str(d, path, root, "hidden_act", "gelu", &act);
    if (s == VKF_OK) s = io_json_str(d, path, root, "pooler_hidden_act", "gelu", &pact);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "relative_attention", false, &c->relative);
    if (s == VKF_OK) s = io_json_f64(d, path, root, "max_relative_positions", -1, &maxrel);
    if (s == VKF_OK) s = io_json_f64(d, path, root, "position_buckets", -1, &buckets);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "position_biased_input", true, &c->pos_input);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "share_att_key", false, &c->share_key);
    if (s == VKF_OK) s = io_json_str(d, path, root, "norm_rel_ebd", "none", &norm);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "legacy", true, &c->legacy);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "conv_kernel_size", 0, 0, 64, &c->conv);
    if (s == VKF_OK) s = io_json_u32(d, path, root, "conv_groups", 1, 1, 65536, &groups);
    if (s == VKF_OK) s = io_json_str(d, path, root, "conv_act", "tanh", &cact);
    if (s == VKF_OK) s = model_parse_act(d, path, cact, &c->conv_act);
    if (s == VKF_OK) s = io_json_bool(d, path, root, "talking_head", false, &talking);
    if (s == VKF_OK) s = parse_att_type(d, path, cJSON_GetObjectItemCaseSensitive(root, "pos_att_type"), c);
    if (s == VKF_OK) s = model_parse_act(d, path, act, &c->act);
    if (s == VKF_OK) s = model_parse_act(d, path, pact, &c->pooler_act);
    if (s == VKF_OK) s = model_parse_labels(d, path, root, &c->num_labels, &c->labels, &c->score);
    if (s == VKF_OK && c->conv && !c->v2) c->conv = 0; /* v1 has no convolution layer */
    if (s == VKF_OK && c->conv && groups != 1)
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: conv_groups %u: only ungrouped convolutions are supported", path, groups);
    if (s == VKF_OK && c->conv && c->conv % 2 == 0) /* HF's own layer cannot add an even kernel's output to the residual */
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: conv_kernel_size %u is even (an odd kernel keeps the length)", path, c->conv);
    if (s == VKF_OK && talking) s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: talking_head is not supported", path);
    if (s == VKF_OK && (!(eps > 0) || eps > 1)) s = base_fail(d, VKF_ERROR_FORMAT, "%s: layer_norm_eps %g is not in (0, 1]", path, eps);
    if (s == VKF_OK && c->hidden % c->heads)
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: hidden size %u is not a multiple of %u heads", path, c->hidden, c->heads);
    if (s == VKF_OK && (c->hidden / c->heads) % 4)
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: head size %u is not a multiple of 4", path, c->hidden / c->heads);
    if (s == VKF_OK && c->pad_id >= c->vocab)
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: pad_token_id %u is not below vocab_size %u", path, c->pad_id, c->vocab);
    if (s == VKF_OK && (maxrel > 65536 || buckets > 65536))
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: max_relative_positions %g / position_buckets %g out of range", path, maxrel, buckets);
    if (s == VKF_OK) {
        c->eps = (float)eps;
        c->max_rel = maxrel < 1 ? c->max_pos : (uint32_t)maxrel;
        c->buckets = c->v2 && buckets > 0 ? (uint32_t)buckets : 0;
        c->span = c->buckets ? c->buckets : c->max_rel;
        c->norm_rel = c->v2 && strstr(norm, "layer_norm");
        if (!c->v2) c->share_key = false;
        if (!c->c2p && !c->p2c) c->relative = false; /* HF adds no relative term then */
        /* the log buckets divide by log((max_relative_positions - 1) / (position_buckets / 2)) */
        if (c->buckets && (c->buckets < 2 || c->max_rel - 1 <= c->buckets / 2))
            s = base_fail(d, VKF_ERROR_FORMAT, "%s: position_buckets %u need max_relative_positions (%u) - 1 above half of them", path,
                          c->buckets, c->max_rel);
    }
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    for (const cJSON *a = cJSON_IsArray(arch) ? arch->child : NULL; a; a = a->next)
        if (cJSON_IsString(a) && strstr(a->valuestring, "MaskedLM")) c->want_mlm = true;
    if (s != VKF_OK) model_free_labels(c->num_labels, c->labels), c->labels = NULL;
    return s;
}

static void describe(model *m)
{
    const deberta_config *c = m->cfg;
    m->hidden = c->hidden;
    m->layers = c->layers;
    m->num_labels = c->num_labels;
    m->labels = c->labels;
    m->vocab_size = c->vocab;
    m->max_positions = c->max_pos;
    m->type_vocab = c->type_vocab;
    m->pad_id = c->pad_id;
    m->score = c->score;
}

static vkf_status config_preset(base_diag *d, const char *preset, const model_preset_opts *o, void *cfg)
{
    (void)o;
    deberta_config *c = cfg;
    if (strcmp(preset, "deberta-v3-base"))
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "unknown DeBERTa preset \"%s\" (deberta-v3-base)", preset);
    *c = (deberta_config){.v2 = true, .vocab = 128100, .hidden = 768, .embed = 768, .layers = 12, .heads = 12, .intermediate = 3072,
                          .max_pos = 512, .eps = 1e-7f, .act = OP_ACT_GELU, .pooler_act = OP_ACT_GELU, .relative = true, .c2p = 1,
                          .p2c = 1, .span = 256, .buckets = 256, .max_rel = 512, .share_key = true, .norm_rel = true, .legacy = true};
    return VKF_OK;
}

static void config_free(void *cfg)
{
    deberta_config *c = cfg;
    model_free_labels(c->num_labels, c->labels);
}

/* A weight of parts stacked along dim 0 ("" parts are zeros). */
static void fused(model_decl *t, const char *name, const char *a, const char *b, const char *cc, uint32_t n, uint32_t rank,
                  const uint64_t *shape)
{
    const char *parts[3] = {a, b, cc};
    model_decl_fused(t, name, parts, n, MODEL_INIT_SMALL, rank, shape);
}

static void declare_all(const deberta_config *c, model_decl *t)
{
    uint64_t H = c->hidden, E = c->embed, V = c->vocab, I = c->intermediate;
    model_decl_add(t, "wte", "embeddings.word_embeddings.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){V, E});
    if (c->pos_input) model_decl_add(t, "wpe", "embeddings.position_embeddings.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){c->max_pos, E});
    if (c->type_vocab)
        model_decl_add(t, "wtt", "embeddings.token_type_embeddings.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){c->type_vocab, E});
    if (E != H) model_decl_linear(t, "emb_proj", "embeddings.embed_proj", H, E, false);
    model_decl_layernorm(t, "emb_ln", "embeddings.LayerNorm", H);
    if (c->relative) {
        model_decl_add(t, "rel_emb", "encoder.rel_embeddings.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){2ull * c->span, H});
        if (c->norm_rel) model_decl_layernorm(t, "rel_ln", "encoder.LayerNorm", H);
        model_weight *bw = model_decl_add(t, "rel_buckets", "(computed) relative positions", MODEL_INIT_DEBERTA_BUCKETS, 1,
                                          (uint64_t[]){2ull * c->max_pos + 1});
        if (bw) bw->optional = true, bw->init_arg[0] = c->buckets, bw->init_arg[1] = c->max_rel;
    }
    if (c->conv) {
        model_weight *w = model_decl_add(t, "conv.weight", "encoder.conv.conv.weight", MODEL_INIT_SMALL, 3, (uint64_t[]){H, H, c->conv});
        if (w) model_weight_reshape(w, 2, (uint32_t[]){(uint32_t)H, (uint32_t)H * c->conv}); /* [H, H*K]: the unfold's (c, k) order */
        model_decl_add(t, "conv.bias", "encoder.conv.conv.bias", MODEL_INIT_SMALL, 1, (uint64_t[]){H});
        model_decl_layernorm(t, "conv_ln", "encoder.conv.LayerNorm", H);
    }
    for (uint32_t l = 0; l < c->layers; l++) {
        char n[64], h[3][160];
#define HF(i, part) (snprintf(h[i], sizeof h[i], "encoder.layer.%u.%s", l, part), h[i])
#define NM(part) (snprintf(n, sizeof n, "l%u.%s", l, part), n)
        if (c->v2) {
            fused(t, NM("qkv.weight"), HF(0, "attention.self.query_proj.weight"), HF(1, "attention.self.key_proj.weight"),
                  HF(2, "attention.self.value_proj.weight"), 3, 2, (uint64_t[]){H, H});
            fused(t, NM("qkv.bias"), HF(0, "attention.self.query_proj.bias"), HF(1, "attention.self.key_proj.bias"),
                  HF(2, "attention.self.value_proj.bias"), 3, 1, (uint64_t[]){H});
        } else {
            model_weight *w = model_decl_add(t, NM("qkv.weight"), HF(0, "attention.self.in_proj.weight"), MODEL_INIT_SMALL, 2,
                                             (uint64_t[]){3 * H, H});
            if (w) w->deinterleave = c->heads;
            fused(t, NM("qkv.bias"), HF(0, "attention.self.q_bias"), "", HF(2, "attention.self.v_bias"), 3, 1, (uint64_t[]){H});
        }
        /* pqk: the relative embeddings' query projection (p2c), then key projection (c2p) */
        if (c->relative && c->share_key) { /* the content projections' first two thirds (declare ties them) */
            model_decl_add(t, NM("pqk.weight"), "(shared) query and key projections", MODEL_INIT_SMALL, 2, (uint64_t[]){2 * H, H});
            model_decl_add(t, NM("pqk.bias"), "(shared) query and key biases", MODEL_INIT_SMALL, 1, (uint64_t[]){2 * H});
        } else if (c->relative) {
            const char *pq = c->v2 ? "attention.self.pos_query_proj" : "attention.self.pos_q_proj";
            const char *pk = c->v2 ? "attention.self.pos_key_proj" : "attention.self.pos_proj";
            char qw[160], kw[160], qb[160], kb[160];
            snprintf(qw, sizeof qw, "encoder.layer.%u.%s.weight", l, pq), snprintf(qb, sizeof qb, "encoder.layer.%u.%s.bias", l, pq);
            snprintf(kw, sizeof kw, "encoder.layer.%u.%s.weight", l, pk), snprintf(kb, sizeof kb, "encoder.layer.%u.%s.bias", l, pk);
            fused(t, NM("pqk.weight"), c->p2c ? qw : "", c->c2p ? kw : "", NULL, 2, 2, (uint64_t[]){H, H});
            fused(t, NM("pqk.bias"), c->p2c ? qb : "", c->c2p && c->v2 ? kb : "", NULL, 2, 1, (uint64_t[]){H});
        }
        model_decl_linear(t, NM("o"), HF(0, "attention.output.dense"), H, H, true);
        model_decl_layernorm(t, NM("ln1"), HF(0, "attention.output.LayerNorm"), H);
        model_decl_linear(t, NM("fc1"), HF(0, "intermediate.dense"), I, H, true);
        model_decl_linear(t, NM("fc2"), HF(0, "output.dense"), H, I, true);
        model_decl_layernorm(t, NM("ln2"), HF(0, "output.LayerNorm"), H);
#undef HF
#undef NM
    }
    if (c->classifier) {
        model_decl_linear(t, "pooler", "pooler.dense", H, H, true);
        model_decl_linear(t, "classifier", "classifier", c->num_labels, H, true);
    }
    if (c->mlm) {
        uint64_t M = c->legacy ? E : H;
        model_decl_linear(t, "mlm_dense", c->legacy ? "cls.predictions.transform.dense" : "lm_predictions.lm_head.dense", M, H, true);
        model_decl_layernorm(t, "mlm_ln", c->legacy ? "cls.predictions.transform.LayerNorm" : "lm_predictions.lm_head.LayerNorm", M);
        model_weight *w = model_decl_add(t, "mlm_decoder", "cls.predictions.decoder.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){V, M});
        if (w && (!c->legacy || !c->mlm_decoder_stored)) w->alias_of = "wte";
        model_decl_add(t, "mlm_bias", c->legacy ? "cls.predictions.bias" : "lm_predictions.lm_head.bias", MODEL_INIT_SMALL, 1,
                       (uint64_t[]){V});
    }
}

static vkf_status declare(model *m, const st_checkpoint *ck, const char **prefix, model_decl *t)
{
    deberta_config *c = m->cfg;
    static const char *const prefixes[] = {"deberta.", ""};
    *prefix = "";
    if (ck) {
        *prefix = model_find_prefix(ck, prefixes, 2, "embeddings.word_embeddings.weight");
        if (!*prefix)
            return base_fail(m->diag, VKF_ERROR_NOT_FOUND, "%s: missing tensor deberta.embeddings.word_embeddings.weight (not a %s checkpoint?)",
                             ck->files[0].path, m->model_type);
        c->classifier = model_ck_has(ck, *prefix, "classifier.weight");
        c->mlm = model_ck_has(ck, *prefix, c->legacy ? "cls.predictions.transform.dense.weight" : "lm_predictions.lm_head.dense.weight");
        c->mlm_decoder_stored = model_ck_has(ck, *prefix, "cls.predictions.decoder.weight");
    }
    if (c->classifier && c->mlm) c->mlm = c->want_mlm, c->classifier = !c->want_mlm;
    if (c->mlm && !c->legacy && c->embed != c->hidden)
        return base_fail(m->diag, VKF_ERROR_UNSUPPORTED, "%s: a non-legacy MLM head needs embedding_size = hidden_size", m->model_type);
    m->task = c->classifier ? MODEL_TASK_TEXT_CLASSIFICATION : c->mlm ? MODEL_TASK_FILL_MASK : MODEL_TASK_FEATURES;
    if (!c->classifier) m->num_labels = 0;
    declare_all(c, t);
    /* share_att_key: the relative embeddings go through the content Q and K
     * projections (names inside the finished table, which no longer moves) */
    for (uint32_t l = 0; c->relative && c->share_key && !t->failed && l < c->layers; l++)
        for (int k = 0; k < 2; k++) {
            char pn[32], qn[32];
            snprintf(pn, sizeof pn, "l%u.pqk.%s", l, k ? "bias" : "weight"), snprintf(qn, sizeof qn, "l%u.qkv.%s", l, k ? "bias" : "weight");
            model_weight *w = (model_weight *)model_decl_find(t, pn);
            const model_weight *q = model_decl_find(t, qn);
            if (w && q) w->alias_of = q->name;
        }
    return VKF_OK;
}

/* ---- graph ---------------------------------------------------------------------- */

#define W(name) model_graph_weight(g, t, name)

static graph *build(const model *m, const graph_key *key)
{
    const deberta_config *c = m->cfg;
    const model_decl *t = &m->decl;
    if (key->kind != MODEL_GRAPH_TEXT) return model_no_graph(m, key);
    graph *g = graph_create(m->diag, m->dtype);
    if (!g) return NULL;
    uint32_t H = c->hidden, hd = H / c->heads;
    /* packed: the texts in one token dimension (batch 1); relative terms depend on
       i - j within a text and hold unchanged */
    model_text_in in = model_text_inputs(g, key);
    uint32_t B = in.B, S = in.S, shape[2] = {B, S};
    int tt = c->type_vocab ? graph_input(g, "token_type_ids", GRAPH_I32, 2, shape) : -1;
    int pos = in.packed && c->pos_input ? graph_input(g, "position_ids", GRAPH_I32, 2, shape) : -1; /* restarting per text */
    int h = model_embed_tokens(g, "embeddings_sum", in.ids, tt, W("wte"), c->pos_input ? W("wpe") : -1, tt >= 0 ? W("wtt") : -1, pos);
    graph_matmul_desc nt = {.layout = OP_W_NT};
    if (c->embed != H) h = graph_matmul(g, "embed_proj", h, W("emb_proj.weight"), -1, -1, &nt);
    h = graph_layernorm(g, "embeddings", h, -1, W("emb_ln.weight"), W("emb_ln.bias"), c->eps, NULL);
    int emb = h;
    /* the relative rows this length reaches: [span + r(-(S-1)), span + r(S-1)], clamped */
    int rel = -1, buckets = -1;
    int32_t lo = 0, hi = 0;
    if (c->relative) {
        int32_t span = (int32_t)c->span, far = (int32_t)S - 1;
        lo = (int32_t)model_deberta_bucket(-far, c->buckets, c->max_rel) + span;
        hi = (int32_t)model_deberta_bucket(far, c->buckets, c->max_rel) + span;
        lo = BASE_MAX(lo, 0), hi = BASE_MIN(hi, 2 * span - 1);
        rel = graph_view(g, "rel_rows", W("rel_emb"), (uint64_t)lo * H, 2, (uint32_t[]){(uint32_t)(hi - lo + 1), H});
        if (c->norm_rel) rel = graph_layernorm(g, "rel_embeddings", rel, -1, W("rel_ln.weight"), W("rel_ln.bias"), c->eps, NULL);
        buckets = W("rel_buckets");
    }
    float scale = 1.0f / sqrtf((float)hd * (float)(1 + c->c2p + c->p2c));
    for (uint32_t l = 0; l < c->layers; l++) {
        char w[16], node[16], pn[32], pw[32], pb[32];
        snprintf(w, sizeof w, "l%u", l), snprintf(node, sizeof node, "layer%u", l);
        int pqk = -1;
        if (c->relative) { /* [rows, 2H]: each row's query, then key projection */
            snprintf(pn, sizeof pn, "layer%u.pqk", l), snprintf(pw, sizeof pw, "l%u.pqk.weight", l), snprintf(pb, sizeof pb, "l%u.pqk.bias", l);
            pqk = graph_matmul(g, pn, rel, W(pw), W(pb), -1, &nt);
        }
        model_block blk = {.w = w, .node = node, .layout = OP_W_NT, .act = c->act, .eps = c->eps, .post_ln = true, .mask = in.mask,
                           .out_name = l + 1 == c->layers && !(c->conv && l == 0) ? "last_hidden_state" : NULL,
                           .rel_table = pqk, .rel_buckets = buckets,
                           .at = {.batch = B, .q_len = S, .kv_len = S, .heads = c->heads, .head_dim = hd, .scale = scale,
                                  .dis = c->relative ? c->c2p | c->p2c << 1 : 0, .rel_center = c->max_pos,
                                  .dis_off = (int32_t)c->span - lo, .dis_rows = (uint32_t)(hi - lo + 1),
                                  .segments = in.packed, .seg_index = in.seg}};
        h = model_block_build(g, t, &blk, h);
        if (l == 0 && c->conv) { /* ConvLayer over the embeddings (padding read as zeros), added to layer 0's output */
            int x = in.packed ? graph_unfold_segments(g, "conv_unfold", emb, in.seg, c->conv) /* taps within each text */
                              : graph_unfold(g, "conv_unfold", emb, in.mask, c->conv, 1, (c->conv - 1) / 2);
            graph_matmul_desc cd = {.layout = OP_W_NT, .act = c->conv_act};
            x = graph_matmul(g, "conv", x, W("conv.weight"), W("conv.bias"), -1, &cd);
            h = graph_layernorm(g, c->layers == 1 ? "last_hidden_state" : "conv_norm", x, h, W("conv_ln.weight"), W("conv_ln.bias"),
                                c->eps, NULL);
        }
    }
    graph_output(g, h);
    if (c->classifier) {
        int cls = model_first_tokens(g, "context_token", h, &in, H);
        graph_matmul_desc pd = {.layout = OP_W_NT, .act = c->pooler_act};
        int pooled = graph_matmul(g, "pooled_output", cls, W("pooler.weight"), W("pooler.bias"), -1, &pd);
        graph_output(g, graph_matmul(g, "logits", pooled, W("classifier.weight"), W("classifier.bias"), -1, &nt));
    }
    if (c->mlm) {
        graph_matmul_desc d = {.layout = OP_W_NT, .act = c->act};
        int x = graph_matmul(g, "mlm_transform", h, W("mlm_dense.weight"), W("mlm_dense.bias"), -1, &d);
        x = graph_layernorm(g, "mlm_norm", x, -1, W("mlm_ln.weight"), W("mlm_ln.bias"), c->eps, NULL);
        graph_output(g, graph_matmul(g, "logits", x, W("mlm_decoder"), W("mlm_bias"), -1, &nt)); /* [B, S, vocab] */
    }
    return g;
}

static const char *const deberta_types[] = {"deberta", "deberta-v2", NULL};

const model_family deberta_family = {
    .name = "deberta",
    .model_types = deberta_types,
    .cfg_size = sizeof(deberta_config),
    .config_parse = parse_config,
    .config_preset = config_preset,
    .config_release = config_free,
    .describe = describe,
    .declare = declare,
    .build = build,
    .packed_text = true,
};
