/* The transformer block every family builds from (model.h: model_block). */
#include "model.h"

#include <stdio.h>

static int weight(graph *g, const model_decl *t, const model_block *b, const char *part)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", b->w, part);
    return model_graph_weight(g, t, name);
}

/* A linear layer's bias (none in T5). */
static int bias(graph *g, const model_decl *t, const model_block *b, const char *part)
{
    return b->no_bias ? -1 : weight(g, t, b, part);
}

static const char *node(char *buf, size_t size, const model_block *b, const char *part);

/* LayerNorm "<w>.<ln>" (weight and bias), or T5's RMS norm (weight only). */
static int norm(graph *g, const model_decl *t, const model_block *b, const char *name, const char *ln, int x, int res)
{
    char wn[32], bn[32];
    snprintf(wn, sizeof wn, "%s.weight", ln), snprintf(bn, sizeof bn, "%s.bias", ln);
    if (b->rms) return graph_rmsnorm(g, name, x, res, weight(g, t, b, wn), b->eps, NULL);
    return graph_layernorm(g, name, x, res, weight(g, t, b, wn), weight(g, t, b, bn), b->eps, NULL);
}

/* The feed-forward's first half: act(x fc1), times x fcg when gated. */
static int ffn_in(graph *g, const model_decl *t, const model_block *b, int x)
{
    char n[2][96];
    int f = graph_matmul(g, node(n[0], sizeof n[0], b, "fc1"), x, weight(g, t, b, "fc1.weight"), bias(g, t, b, "fc1.bias"), -1,
                         &(graph_matmul_desc){.layout = b->layout, .act = b->act});
    if (!b->gated) return f;
    int gt = graph_matmul(g, node(n[1], sizeof n[1], b, "fcg"), x, weight(g, t, b, "fcg.weight"), bias(g, t, b, "fcg.bias"), -1,
                          &(graph_matmul_desc){.layout = b->layout});
    return graph_eltwise(g, node(n[0], sizeof n[0], b, "gate"), OP_MUL, OP_ACT_NONE, f, gt, 0);
}

static const char *node(char *buf, size_t size, const model_block *b, const char *part)
{
    snprintf(buf, size, "%s.%s", b->node, part);
    return buf;
}

/* The block's self-attention over x (packed Q, K, V projected from it). */
static int self_attention(graph *g, const model_decl *t, const model_block *b, int x)
{
    char n[2][96];
    uint32_t H = b->at.heads * b->at.head_dim;
    int qkv = graph_matmul(g, node(n[0], sizeof n[0], b, "qkv"), x, weight(g, t, b, "qkv.weight"), bias(g, t, b, "qkv.bias"), -1,
                           &(graph_matmul_desc){.layout = b->layout});
    if (b->attend) return b->attend(b->user, g, qkv, b->node);
    op_attention_params ap = b->at;
    ap.q_rs = ap.k_rs = ap.v_rs = 3 * H;
    int att = graph_attention_masked(g, node(n[1], sizeof n[1], b, "attention"), qkv, 0, qkv, H, qkv, 2 * H, b->mask, &ap);
    if (ap.rel_bias || ap.dis) graph_attention_rel(g, att, b->rel_table, b->rel_buckets);
    return att;
}

static int cross_attention(graph *g, const model_decl *t, const model_block *b, int x)
{
    char n[96];
    int q = graph_matmul(g, node(n, sizeof n, b, "xq"), x, weight(g, t, b, "xq.weight"), bias(g, t, b, "xq.bias"), -1,
                         &(graph_matmul_desc){.layout = b->layout});
    return b->cross(b->user, g, q, b->node);
}

model_text_in model_text_inputs(graph *g, const graph_key *key)
{
    model_text_in in = {.B = key->packed ? 1 : key->batch, .NB = key->packed ? key->packed : key->batch, .S = key->seq,
                        .packed = key->packed > 0};
    uint32_t shape[2] = {in.B, in.S};
    in.ids = graph_input(g, "input_ids", GRAPH_I32, 2, shape);
    in.mask = in.packed ? -1 : graph_input(g, "attention_mask", GRAPH_I32, 2, shape);
    if (in.packed) in.seg = graph_meta_named(g, "segments", 2 * in.S), in.starts = graph_meta_named(g, "starts", in.NB);
    return in;
}

int model_first_tokens(graph *g, const char *name, int h, const model_text_in *in, uint32_t H)
{
    op_rows_params first = {.mode = OP_ROWS_GATHER, .batch = in->B, .seq = in->S, .dim = H, .index = 0};
    if (in->packed) /* each text's first token, at meta "starts" */
        first = (op_rows_params){.mode = OP_ROWS_GATHER, .batch = in->NB, .seq = in->S, .dim = H, .use_meta = true,
                                 .meta_index = in->starts, .x_shared = true};
    return graph_rows(g, name, h, -1, -1, &first);
}

int model_embed_tokens(graph *g, const char *name, int ids, int tt, int wte, int wpe, int wtt, int pos_ids)
{
    if (pos_ids < 0) {
        op_embed_params ep = {.pos = wpe >= 0, .token_type = tt >= 0};
        return graph_embed(g, name, ids, tt, wte, wpe, wtt, &ep);
    }
    char n[2][96];
    snprintf(n[0], sizeof n[0], "%s.tokens", name), snprintf(n[1], sizeof n[1], "%s.positions", name);
    int words = graph_embed(g, n[0], ids, tt, wte, -1, wtt, &(op_embed_params){.token_type = tt >= 0});
    int posv = graph_embed(g, n[1], pos_ids, -1, wpe, -1, -1, &(op_embed_params){0});
    return graph_eltwise(g, name, OP_ADD, OP_ACT_NONE, words, posv, 0);
}

int model_block_build(graph *g, const model_decl *t, const model_block *b, int h)
{
    char n[8][96];
    graph_matmul_desc lin = {.layout = b->layout};
    const char *last = b->out_name ? b->out_name : node(n[7], sizeof n[7], b, b->post_ln ? "ln2" : "fc2");
    if (b->post_ln) {
        int att = self_attention(g, t, b, h);
        int ao = graph_matmul(g, node(n[0], sizeof n[0], b, "attn_out"), att, weight(g, t, b, "o.weight"), bias(g, t, b, "o.bias"), -1, &lin);
        h = norm(g, t, b, node(n[1], sizeof n[1], b, "ln1"), "ln1", ao, h);
        if (b->cross) {
            int xa = cross_attention(g, t, b, h);
            int xo = graph_matmul(g, node(n[2], sizeof n[2], b, "xattn_out"), xa, weight(g, t, b, "xo.weight"), bias(g, t, b, "xo.bias"),
                                  -1, &lin);
            h = norm(g, t, b, node(n[3], sizeof n[3], b, "lnx"), "lnx", xo, h);
        }
        int f1 = ffn_in(g, t, b, h);
        int f2 = graph_matmul(g, node(n[5], sizeof n[5], b, "fc2"), f1, weight(g, t, b, "fc2.weight"), bias(g, t, b, "fc2.bias"), -1, &lin);
        return norm(g, t, b, last, "ln2", f2, h);
    }
    int x = norm(g, t, b, node(n[0], sizeof n[0], b, "ln1"), "ln1", h, -1);
    int att = self_attention(g, t, b, x);
    h = graph_matmul(g, node(n[1], sizeof n[1], b, "attn_out"), att, weight(g, t, b, "o.weight"), bias(g, t, b, "o.bias"), h, &lin);
    if (b->cross) {
        x = norm(g, t, b, node(n[2], sizeof n[2], b, "lnx"), "lnx", h, -1);
        int xa = cross_attention(g, t, b, x);
        h = graph_matmul(g, node(n[3], sizeof n[3], b, "xattn_out"), xa, weight(g, t, b, "xo.weight"), bias(g, t, b, "xo.bias"), h, &lin);
    }
    x = norm(g, t, b, node(n[4], sizeof n[4], b, "ln2"), "ln2", h, -1);
    int f = ffn_in(g, t, b, x);
    return graph_matmul(g, last, f, weight(g, t, b, "fc2.weight"), bias(g, t, b, "fc2.bias"), h, &lin);
}

int model_cache_attention(graph *g, const model_cache_attn *a, int qkv, const char *node)
{
    uint32_t H = a->heads * a->head_dim, P = a->state->shape[1];
    char sn[96], an[96];
    snprintf(sn, sizeof sn, "%s.kv_store", node), snprintf(an, sizeof an, "%s.attention", node);
    int kv = graph_state(g, a->state->name, a->state->rank, a->state->shape);
    op_rows_params st = {.mode = OP_ROWS_COPY, .batch = a->B, .seq = a->S, .dim = 2 * H, .x_rs = 3 * H, .y_bs = P * 2 * H,
                         .y_rs = 2 * H, .y_len = P, .use_meta = a->decode, .meta_index = a->positions};
    kv = graph_store(g, sn, qkv, H, kv, &st);
    if (!a->decode) {
        op_attention_params ap = {.batch = a->B, .q_len = a->S, .kv_len = a->S, .heads = a->heads, .head_dim = a->head_dim,
                                  .q_rs = 3 * H, .k_rs = 3 * H, .v_rs = 3 * H, .scale = a->scale, .causal = true,
                                  .rel_bias = a->rel_bias, .rel_center = a->rel_center};
        int att = graph_attention(g, an, qkv, 0, qkv, H, qkv, 2 * H, &ap);
        if (a->rel_bias) graph_attention_rel(g, att, a->rel_table, a->rel_buckets);
        return att;
    }
    op_attention_params dp = {.batch = a->B, .q_len = 1, .kv_len = P, .heads = a->heads, .head_dim = a->head_dim, .q_bs = 3 * H,
                              .k_rs = 2 * H, .v_rs = 2 * H, .k_bs = (uint64_t)P * 2 * H, .v_bs = (uint64_t)P * 2 * H,
                              .scale = a->scale, .key_lengths = true, .len_index = a->counts, .rel_bias = a->rel_bias,
                              .rel_center = a->rel_center};
    int att = graph_attention_split(g, an, qkv, 0, kv, 0, kv, H, &dp);
    if (a->rel_bias) graph_attention_rel(g, att, a->rel_table, a->rel_buckets);
    return att;
}

void model_generation_outputs(graph *g, int logits, uint32_t k)
{
    graph_output(g, logits);
    int values = -1;
    int top = graph_topk(g, "top_ids", logits, k ? k : 1, &values);
    graph_output(g, top);
    graph_output(g, values);
}
