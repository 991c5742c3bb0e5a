/* BERT-style text encoders: BERT (and MiniLM / sentence-transformers
 * folders, which are BERTs without prefix), DistilBERT, RoBERTa (and
 * XLM-RoBERTa, the same graph), MPNet and ELECTRA. One post-LN encoder graph;
 * the families differ in names, embeddings and heads:
 *   bert        word + position + token-type embeddings, pooler (tanh),
 *               classifier; MLM head cls.predictions (decoder tied to words)
 *   distilbert  no token types; pre_classifier + ReLU + classifier;
 *               vocab_transform / vocab_layer_norm / vocab_projector
 *   roberta     one token type, positions from padding_idx + 1 skipping
 *               padding (a position_ids input the API computes, as HF does),
 *               classifier.dense + tanh + classifier.out_proj; lm_head
 *   mpnet       RoBERTa's positions and heads without token types, plus T5's
 *               bidirectional relative position bias (32 buckets, distance
 *               128; one table for every layer) added to each score
 *   electra     BERT's embeddings at embedding_size, projected to hidden_size
 *               (embeddings_project); classifier.dense + GELU + out_proj; the
 *               generator's MLM head (generator_predictions, generator_lm_head)
 *               and the discriminator's per-token logits [B, S]
 * Inputs: input_ids, attention_mask, token_type_ids (bert, roberta),
 * position_ids (roberta), all int32 [B, S]. Outputs: last_hidden_state
 * [B, S, H], pooler_output [B, H] (bert with a pooler), logits [B, labels]
 * or [B, S, vocab] (fill-mask). */
#include "model.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum bert_kind { BERT, DISTILBERT, ROBERTA, MPNET, ELECTRA } bert_kind;

/* RoBERTa's positions (from padding_idx) and heads */
#define ROBERTA_LIKE(k) ((k) == ROBERTA || (k) == MPNET)

typedef struct bert_config {
    bert_kind kind;
    uint32_t vocab, hidden, layers, heads, intermediate, max_pos, type_vocab;
    uint32_t embed;         /* ELECTRA's embedding_size (hidden elsewhere) */
    uint32_t buckets;       /* MPNet's relative_attention_num_buckets */
    uint32_t pad_id;
    float eps;
    op_act act;
    model_score score;      /* problem_type and num_labels: softmax, sigmoid or the raw logit */
    uint32_t num_labels;
    char **labels;
    bool want_mlm;          /* architectures name a MaskedLM */
    bool want_classifier;   /* architectures name a SequenceClassification */
    /* what the checkpoint has */
    bool pooler, classifier, mlm, mlm_decoder_stored;
    bool discriminator;     /* ELECTRA: discriminator_predictions */
} bert_config;

static vkf_status parse_config(base_diag *d, const char *path, const cJSON *root, const char *type, void *cfg)
{
    bert_config *c = cfg;
    memset(c, 0, sizeof *c);
    c->kind = !strcmp(type, "distilbert")                                  ? DISTILBERT
              : !strcmp(type, "roberta") || !strcmp(type, "xlm-roberta") ? ROBERTA
              : !strcmp(type, "mpnet")                                   ? MPNET
              : !strcmp(type, "electra")                                 ? ELECTRA
                                                                         : BERT;
    const char *act = NULL, *pet = NULL;
    double eps = 1e-12;
    vkf_status s;
    /* Omitted keys take the HF config classes' defaults. */
    if (c->kind == DISTILBERT) {
        bool sinus = false;
        s = io_json_u32(d, path, root, "vocab_size", 30522, 1, 1u << 24, &c->vocab);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "dim", 768, 1, 65536, &c->hidden);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "n_layers", 6, 1, 1024, &c->layers);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "n_heads", 12, 1, 1024, &c->heads);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "hidden_dim", 3072, 1, 1u << 20, &c->intermediate);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "max_position_embeddings", 512, 1, 1u << 20, &c->max_pos);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "pad_token_id", 0, 0, 1u << 24, &c->pad_id);
        if (s == VKF_OK) s = io_json_str(d, path, root, "activation", "gelu", &act);
        if (s == VKF_OK) s = io_json_bool(d, path, root, "sinusoidal_pos_embds", false, &sinus);
        (void)sinus; /* the table is stored in the checkpoint either way */
    } else {
        bool rob = c->kind == ROBERTA, mp = c->kind == MPNET, el = c->kind == ELECTRA;
        s = io_json_u32(d, path, root, "vocab_size", rob ? 50265 : 30522 + (mp ? 5 : 0), 1, 1u << 24, &c->vocab);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "hidden_size", el ? 256 : 768, 1, 65536, &c->hidden);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "embedding_size", el ? 128 : c->hidden, 1, 65536, &c->embed);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "relative_attention_num_buckets", 32, 2, 4096, &c->buckets);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "num_hidden_layers", 12, 1, 1024, &c->layers);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "num_attention_heads", el ? 4 : 12, 1, 1024, &c->heads);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "intermediate_size", el ? 1024 : 3072, 1, 1u << 20, &c->intermediate);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "max_position_embeddings", mp ? 514 : 512, 1, 1u << 20, &c->max_pos);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "type_vocab_size", 2, 1, 1u << 16, &c->type_vocab);
        if (s == VKF_OK) s = io_json_u32(d, path, root, "pad_token_id", rob || mp ? 1 : 0, 0, 1u << 24, &c->pad_id);
        if (s == VKF_OK) s = io_json_f64(d, path, root, "layer_norm_eps", mp ? 1e-5 : 1e-12, &eps);
        if (s == VKF_OK) s = io_json_str(d, path, root, "hidden_act", "gelu", &act);
        if (s == VKF_OK) s = io_json_str(d, path, root, "position_embedding_type", "absolute", &pet);
        if (s == VKF_OK && strcmp(pet, "absolute"))
            s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: position_embedding_type \"%s\" is not supported (absolute)", path, pet);
    }
    if (s == VKF_OK) s = model_parse_act(d, path, act, &c->act);
    if (s == VKF_OK) s = model_parse_labels(d, path, root, &c->num_labels, &c->labels, &c->score);
    if (s == VKF_OK && (!(eps > 0) || eps > 1)) s = base_fail(d, VKF_ERROR_FORMAT, "%s: layer_norm_eps %g is not in (0, 1]", path, eps);
    if (s == VKF_OK && c->pad_id >= c->vocab) /* torch's nn.Embedding(padding_idx) refuses it */
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: pad_token_id %u is not below vocab_size %u (the word embedding's padding_idx)",
                      path, c->pad_id, c->vocab);
    if (s == VKF_OK && c->hidden % c->heads)
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: hidden size %u is not a multiple of %u heads", path, c->hidden, c->heads);
    if (s == VKF_OK && (c->hidden / c->heads) % 4)
        s = base_fail(d, VKF_ERROR_UNSUPPORTED, "%s: head size %u is not a multiple of 4", path, c->hidden / c->heads);
    if (s == VKF_OK && ROBERTA_LIKE(c->kind) && c->max_pos <= c->pad_id + 1)
        s = base_fail(d, VKF_ERROR_FORMAT, "%s: max_position_embeddings %u leaves no positions after padding_idx %u", path,
                      c->max_pos, c->pad_id);
    c->eps = (float)eps;
    if (c->kind != ELECTRA) c->embed = c->hidden;
    if (c->kind == MPNET) c->pad_id = 1; /* MPNetEmbeddings' padding_idx, whatever pad_token_id says */
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    for (const cJSON *a = cJSON_IsArray(arch) ? arch->child : NULL; a; a = a->next) {
        if (!cJSON_IsString(a)) continue;
        if (strstr(a->valuestring, "MaskedLM")) c->want_mlm = true;
        if (strstr(a->valuestring, "SequenceClassification")) c->want_classifier = true;
        if (strstr(a->valuestring, "ForPreTraining")) c->discriminator = true; /* ELECTRA's discriminator */
    }
    if (s != VKF_OK) model_free_labels(c->num_labels, c->labels), c->labels = NULL;
    return s;
}

/* Per kind: the checkpoint names of each part. */
typedef struct names {
    const char *prefixes[3];
    const char *probe;
    const char *layer;                       /* printf pattern with %u */
    const char *q, *k, *v, *o, *ln1, *fc1, *fc2, *ln2;
} names;

static const names NAMES[5] = {
    [BERT] = {{"bert.", "", NULL}, "embeddings.word_embeddings.weight", "encoder.layer.%u.", "attention.self.query",
              "attention.self.key", "attention.self.value", "attention.output.dense", "attention.output.LayerNorm",
              "intermediate.dense", "output.dense", "output.LayerNorm"},
    [DISTILBERT] = {{"distilbert.", "", NULL}, "embeddings.word_embeddings.weight", "transformer.layer.%u.", "attention.q_lin",
                    "attention.k_lin", "attention.v_lin", "attention.out_lin", "sa_layer_norm", "ffn.lin1", "ffn.lin2",
                    "output_layer_norm"},
    [ROBERTA] = {{"roberta.", "", NULL}, "embeddings.word_embeddings.weight", "encoder.layer.%u.", "attention.self.query",
                 "attention.self.key", "attention.self.value", "attention.output.dense", "attention.output.LayerNorm",
                 "intermediate.dense", "output.dense", "output.LayerNorm"},
    [MPNET] = {{"mpnet.", "", NULL}, "embeddings.word_embeddings.weight", "encoder.layer.%u.", "attention.attn.q", "attention.attn.k",
               "attention.attn.v", "attention.attn.o", "attention.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"},
    [ELECTRA] = {{"electra.", "", NULL}, "embeddings.word_embeddings.weight", "encoder.layer.%u.", "attention.self.query",
                 "attention.self.key", "attention.self.value", "attention.output.dense", "attention.output.LayerNorm",
                 "intermediate.dense", "output.dense", "output.LayerNorm"},
};

/* Per kind: the masked-LM head's names. */
typedef struct mlm_names {
    const char *dense, *ln, *decoder, *bias;
} mlm_names;

static const mlm_names MLM_NAMES[5] = {
    [BERT] = {"cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.decoder.weight",
              "cls.predictions.bias"},
    [DISTILBERT] = {"vocab_transform", "vocab_layer_norm", "vocab_projector.weight", "vocab_projector.bias"},
    [ROBERTA] = {"lm_head.dense", "lm_head.layer_norm", "lm_head.decoder.weight", "lm_head.bias"},
    [MPNET] = {"lm_head.dense", "lm_head.layer_norm", "lm_head.decoder.weight", "lm_head.bias"},
    [ELECTRA] = {"generator_predictions.dense", "generator_predictions.LayerNorm", "generator_lm_head.weight",
                 "generator_lm_head.bias"},
};

static void bert_declare_all(const bert_config *c, model_decl *t)
{
    const names *nm = &NAMES[c->kind];
    uint64_t H = c->hidden, I = c->intermediate, V = c->vocab, E = c->embed;
    model_decl_add(t, "wte", "embeddings.word_embeddings.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){V, E});
    model_decl_add(t, "wpe", "embeddings.position_embeddings.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){c->max_pos, E});
    if (c->kind != DISTILBERT && c->kind != MPNET)
        model_decl_add(t, "wtt", "embeddings.token_type_embeddings.weight", MODEL_INIT_SMALL, 2, (uint64_t[]){c->type_vocab, E});
    model_decl_layernorm(t, "emb_ln", "embeddings.LayerNorm", E);
    if (E != H) model_decl_linear(t, "emb_proj", "embeddings_project", H, E, true);
    if (c->kind == MPNET) {
        model_decl_add(t, "rel_table", "encoder.relative_attention_bias.weight", MODEL_INIT_SMALL, 2,
                       (uint64_t[]){c->buckets, c->heads});
        model_weight *bw = model_decl_add(t, "rel_buckets", "(computed) relative position buckets", MODEL_INIT_REL_BUCKETS, 1,
                                          (uint64_t[]){2ull * c->max_pos + 1});
        if (bw) bw->optional = true, bw->init_arg[0] = c->buckets, bw->init_arg[1] = 128, bw->init_arg[2] = 1;
    }
    for (uint32_t l = 0; l < c->layers; l++) {
        char base[64], hf[3][160], name[64];
        snprintf(base, sizeof base, nm->layer, l);
        const char *parts[3] = {hf[0], hf[1], hf[2]};
        const char *qkv[3] = {nm->q, nm->k, nm->v};
        /* Q, K and V fused into one [3H, H] matmul */
        for (int k = 0; k < 3; k++) snprintf(hf[k], sizeof hf[k], "%s%s.weight", base, qkv[k]);
        snprintf(name, sizeof name, "l%u.qkv.weight", l);
        model_decl_fused(t, name, parts, 3, MODEL_INIT_SMALL, 2, (uint64_t[]){H, H});
        for (int k = 0; k < 3; k++) snprintf(hf[k], sizeof hf[k], "%s%s.bias", base, qkv[k]);
        snprintf(name, sizeof name, "l%u.qkv.bias", l);
        model_decl_fused(t, name, parts, 3, MODEL_INIT_SMALL, 1, (uint64_t[]){H});
        struct {
            const char *n, *hf;
            uint64_t out, in;
        } lin[] = {{"o", nm->o, H, H}, {"fc1", nm->fc1, I, H}, {"fc2", nm->fc2, H, I}};
        for (size_t i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "l%u.%s", l, lin[i].n);
            snprintf(hf[0], sizeof hf[0], "%s%s", base, lin[i].hf);
            model_decl_linear(t, name, hf[0], lin[i].out, lin[i].in, true);
        }
        snprintf(name, sizeof name, "l%u.ln1", l), snprintf(hf[0], sizeof hf[0], "%s%s", base, nm->ln1);
        model_decl_layernorm(t, name, hf[0], H);
        snprintf(name, sizeof name, "l%u.ln2", l), snprintf(hf[0], sizeof hf[0], "%s%s", base, nm->ln2);
        model_decl_layernorm(t, name, hf[0], H);
    }
    if (c->pooler) model_decl_linear(t, "pooler", "pooler.dense", H, H, true);
    if (c->classifier) {
        uint64_t L = c->num_labels;
        if (c->kind == DISTILBERT) model_decl_linear(t, "pre_classifier", "pre_classifier", H, H, true);
        if (c->kind != BERT && c->kind != DISTILBERT) {
            model_decl_linear(t, "pre_classifier", "classifier.dense", H, H, true);
            model_decl_linear(t, "classifier", "classifier.out_proj", L, H, true);
        } else {
            model_decl_linear(t, "classifier", "classifier", L, H, true);
        }
    }
    if (c->discriminator) {
        model_decl_linear(t, "disc_dense", "discriminator_predictions.dense", H, H, true);
        model_decl_linear(t, "disc_out", "discriminator_predictions.dense_prediction", 1, H, true);
    }
    if (c->mlm) {
        const mlm_names *mn = &MLM_NAMES[c->kind];
        model_decl_linear(t, "mlm_dense", mn->dense, E, H, true);
        model_decl_layernorm(t, "mlm_ln", mn->ln, E);
        /* The decoder is the word embeddings (tied); HF saves it once. */
        model_weight *w = model_decl_add(t, "mlm_decoder", mn->decoder, MODEL_INIT_SMALL, 2, (uint64_t[]){V, E});
        if (w && !c->mlm_decoder_stored) w->alias_of = "wte";
        model_decl_add(t, "mlm_bias", mn->bias, MODEL_INIT_SMALL, 1, (uint64_t[]){V});
    }
}

/* ---- the family ---------------------------------------------------------------- */

static void describe(model *m)
{
    const bert_config *c = m->cfg;
    m->hidden = c->hidden;
    m->layers = c->layers;
    m->num_labels = c->num_labels;
    m->labels = c->labels;
    m->vocab_size = c->vocab;
    m->max_positions = ROBERTA_LIKE(c->kind) ? c->max_pos - c->pad_id - 1 : c->max_pos;
    m->type_vocab = c->kind == DISTILBERT || c->kind == MPNET ? 0 : c->type_vocab;
    m->pad_id = c->pad_id;
    m->position_ids = ROBERTA_LIKE(c->kind);
    m->score = c->score;
}

static vkf_status family_config_preset(base_diag *d, const char *preset, const model_preset_opts *o, void *cfg)
{
    (void)o;
    bert_config *c = cfg;
    *c = (bert_config){.kind = BERT, .vocab = 30522, .max_pos = 512, .type_vocab = 2, .eps = 1e-12f, .act = OP_ACT_GELU,
                       .pooler = true};
    if (!strcmp(preset, "bert-base")) c->hidden = 768, c->layers = 12, c->heads = 12, c->intermediate = 3072;
    else if (!strcmp(preset, "bert-large")) c->hidden = 1024, c->layers = 24, c->heads = 16, c->intermediate = 4096;
    else if (!strcmp(preset, "minilm-l6")) c->hidden = 384, c->layers = 6, c->heads = 12, c->intermediate = 1536;
    else if (!strcmp(preset, "minilm-l12")) c->hidden = 384, c->layers = 12, c->heads = 12, c->intermediate = 1536;
    else if (!strcmp(preset, "mpnet-base")) /* all-mpnet-base-v2 */
        c->kind = MPNET, c->vocab = 30527, c->max_pos = 514, c->pad_id = 1, c->eps = 1e-5f, c->buckets = 32, c->pooler = false,
        c->hidden = 768, c->layers = 12, c->heads = 12, c->intermediate = 3072;
    else
        return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "unknown BERT preset \"%s\" (bert-base, bert-large, minilm-l6, minilm-l12, mpnet-base)",
                         preset);
    c->embed = c->hidden;
    return VKF_OK;
}

static void family_config_free(void *cfg)
{
    bert_config *c = cfg;
    model_free_labels(c->num_labels, c->labels);
}

static vkf_status family_declare(model *m, const st_checkpoint *ck, const char **prefix, model_decl *t)
{
    bert_config *c = m->cfg;
    const names *nm = &NAMES[c->kind];
    *prefix = "";
    if (ck) {
        *prefix = model_find_prefix(ck, nm->prefixes, 2, nm->probe);
        if (!*prefix)
            return base_fail(m->diag, VKF_ERROR_NOT_FOUND, "%s: missing tensor %s%s (not a %s checkpoint?)", ck->files[0].path,
                             nm->prefixes[0], nm->probe, m->model_type);
        c->pooler = c->kind != DISTILBERT && c->kind != ELECTRA && model_ck_has(ck, *prefix, "pooler.dense.weight");
        const char *cls = c->kind == BERT || c->kind == DISTILBERT ? "classifier.weight" : "classifier.out_proj.weight";
        c->classifier = model_ck_has(ck, *prefix, cls);
        char mlm[96];
        snprintf(mlm, sizeof mlm, "%s.weight", MLM_NAMES[c->kind].dense);
        c->mlm = model_ck_has(ck, *prefix, mlm);
        c->mlm_decoder_stored = model_ck_has(ck, *prefix, MLM_NAMES[c->kind].decoder);
        c->discriminator = c->kind == ELECTRA && model_ck_has(ck, *prefix, "discriminator_predictions.dense.weight");
        if (c->want_classifier && !c->classifier)
            return base_fail(m->diag, VKF_ERROR_NOT_FOUND, "%s: config.json names a sequence classifier, the checkpoint has no %s",
                             ck->files[0].path, cls);
    }
    /* A checkpoint with both heads runs the one its architectures name. */
    if (c->classifier && c->mlm) c->mlm = c->want_mlm, c->classifier = !c->want_mlm;
    if (c->classifier || c->mlm) c->discriminator = false;
    m->task = c->classifier ? MODEL_TASK_TEXT_CLASSIFICATION : c->mlm ? MODEL_TASK_FILL_MASK : MODEL_TASK_FEATURES;
    if (!c->classifier) m->num_labels = 0;
    bert_declare_all(c, t);
    return VKF_OK;
}

/* ---- graph ---------------------------------------------------------------------------- */

#define W(name) model_graph_weight(g, t, name)

static graph *bert_build(const model *m, const graph_key *key)
{
    const bert_config *c = m->cfg;
    const model_decl *t = &m->decl;
    if (key->kind != MODEL_GRAPH_TEXT) return model_no_graph(m, key);
    graph *g = graph_create(m->diag, m->dtype);
    if (!g) return NULL;
    uint32_t H = c->hidden, hd = H / c->heads;
    model_text_in in = model_text_inputs(g, key); /* packed: the texts in one token dimension (batch 1) */
    uint32_t B = in.B, S = in.S, shape[2] = {B, S};
    int tt = c->kind != DISTILBERT && c->kind != MPNET ? graph_input(g, "token_type_ids", GRAPH_I32, 2, shape) : -1;
    /* positions skip padding (RoBERTa), or restart at each packed text: from position_ids */
    int pos = ROBERTA_LIKE(c->kind) || key->packed ? graph_input(g, "position_ids", GRAPH_I32, 2, shape) : -1;
    int h = model_embed_tokens(g, "embeddings_sum", in.ids, tt, W("wte"), W("wpe"), tt >= 0 ? W("wtt") : -1, pos);
    h = graph_layernorm(g, "embeddings", h, -1, W("emb_ln.weight"), W("emb_ln.bias"), c->eps, NULL);
    if (c->embed != H) /* ELECTRA: embedding_size to hidden_size */
        h = graph_matmul(g, "embeddings_project", h, W("emb_proj.weight"), W("emb_proj.bias"), -1, &(graph_matmul_desc){.layout = OP_W_NT});
    bool rel = c->kind == MPNET;
    int rel_table = rel ? W("rel_table") : -1, rel_buckets = rel ? W("rel_buckets") : -1;
    graph_matmul_desc nt = {.layout = OP_W_NT};
    for (uint32_t l = 0; l < c->layers; l++) {
        char w[16], node[16];
        snprintf(w, sizeof w, "l%u", l), snprintf(node, sizeof node, "layer%u", l);
        model_block blk = {.w = w, .node = node, .layout = OP_W_NT, .act = c->act, .eps = c->eps, .post_ln = true, .mask = in.mask,
                           .out_name = l + 1 == c->layers ? "last_hidden_state" : NULL, /* [B, S, H] under its HF name */
                           .rel_table = rel_table, .rel_buckets = rel_buckets,
                           .at = {.batch = B, .q_len = S, .kv_len = S, .heads = c->heads, .head_dim = hd, .rel_bias = rel,
                                  .rel_center = c->max_pos, .segments = in.packed, .seg_index = in.seg}};
        h = model_block_build(g, t, &blk, h);
    }
    graph_output(g, h);
    if (c->pooler || c->classifier) {
        int cls = model_first_tokens(g, "cls_token", h, &in, H);
        int pooled = -1;
        if (c->pooler) {
            graph_matmul_desc tanh_d = {.layout = OP_W_NT, .act = OP_ACT_TANH};
            pooled = graph_matmul(g, "pooler_output", cls, W("pooler.weight"), W("pooler.bias"), -1, &tanh_d);
            graph_output(g, pooled);
        }
        if (c->classifier) {
            int x = c->kind == BERT ? pooled : cls;
            if (c->kind != BERT) {
                /* DistilBERT: ReLU; RoBERTa, MPNet: tanh (classifier.dense); ELECTRA: GELU */
                op_act act = c->kind == DISTILBERT ? OP_ACT_RELU : c->kind == ELECTRA ? OP_ACT_GELU : OP_ACT_TANH;
                graph_matmul_desc pre = {.layout = OP_W_NT, .act = act};
                x = graph_matmul(g, "pre_classifier", cls, W("pre_classifier.weight"), W("pre_classifier.bias"), -1, &pre);
            }
            graph_output(g, graph_matmul(g, "logits", x, W("classifier.weight"), W("classifier.bias"), -1, &nt));
        }
    }
    if (c->discriminator) { /* ELECTRA's per-token replaced-token logits [B, S, 1] */
        graph_matmul_desc d = {.layout = OP_W_NT, .act = c->act};
        int x = graph_matmul(g, "discriminator_dense", h, W("disc_dense.weight"), W("disc_dense.bias"), -1, &d);
        graph_output(g, graph_matmul(g, "logits", x, W("disc_out.weight"), W("disc_out.bias"), -1, &nt));
    }
    if (c->mlm) {
        graph_matmul_desc d = {.layout = OP_W_NT, .act = ROBERTA_LIKE(c->kind) || c->kind == ELECTRA ? OP_ACT_GELU : c->act};
        int x = graph_matmul(g, "mlm_transform", h, W("mlm_dense.weight"), W("mlm_dense.bias"), -1, &d);
        x = graph_layernorm(g, "mlm_norm", x, -1, W("mlm_ln.weight"), W("mlm_ln.bias"), c->kind == DISTILBERT ? 1e-12f : c->eps, NULL);
        graph_output(g, graph_matmul(g, "logits", x, W("mlm_decoder"), W("mlm_bias"), -1, &nt)); /* [B, S, vocab] */
    }
    return g;
}

/* RoBERTa's create_position_ids_from_input_ids, when no position_ids are
 * given: padding_idx + 1 + the count of non-padding tokens so far, padding_idx
 * for padding (the bucket's too). */
static vkf_status prepare_text(const model *m, model_text_batch *b)
{
    if (!m->position_ids || b->positions_given) return VKF_OK;
    int32_t pad = (int32_t)m->pad_id;
    for (uint32_t i = 0; i < b->B; i++) {
        int32_t count = 0;
        for (uint32_t j = 0; j < b->Sb; j++) {
            size_t o = (size_t)i * b->Sb + j;
            bool real = j < b->S && b->ids[o] != pad;
            count += real;
            b->positions[o] = real ? pad + count : pad;
        }
    }
    return VKF_OK;
}

static const char *const bert_types[] = {"bert", "distilbert", "roberta", "xlm-roberta", "mpnet", "electra", NULL};

const model_family bert_family = {
    .name = "bert",
    .model_types = bert_types,
    .cfg_size = sizeof(bert_config),
    .config_parse = parse_config,
    .config_preset = family_config_preset,
    .config_release = family_config_free,
    .describe = describe,
    .declare = family_declare,
    .build = bert_build,
    .prepare_text = prepare_text,
    .packed_text = true,
};
