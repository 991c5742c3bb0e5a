/* The transformer block every family builds from (model.h: model_block). */
#include "model.h"

#include <stdio.h>

static int weight(graph *g, const model_decl *t, const model_block *b, const char *part)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", b->w, part);
    return model_graph_weight(g, t, name);
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
    int qkv = graph_matmul(g, node(n[0], sizeof n[0], b, "qkv"), x, weight(g, t, b, "qkv.weight"), weight(g, t, b, "qkv.bias"), -1,
                           &(graph_matmul_desc){.layout = b->layout});
    if (b->attend) return b->attend(b->user, g, qkv, b->node);
    op_attention_params ap = b->at;
    ap.q_rs = ap.k_rs = ap.v_rs = 3 * H;
    return graph_attention_masked(g, node(n[1], sizeof n[1], b, "attention"), qkv, 0, qkv, H, qkv, 2 * H, b->mask, &ap);
}

static int cross_attention(graph *g, const model_decl *t, const model_block *b, int x)
{
    char n[96];
    int q = graph_matmul(g, node(n, sizeof n, b, "xq"), x, weight(g, t, b, "xq.weight"), weight(g, t, b, "xq.bias"), -1,
                         &(graph_matmul_desc){.layout = b->layout});
    return b->cross(b->user, g, q, b->node);
}

int model_block_build(graph *g, const model_decl *t, const model_block *b, int h)
{
    char n[8][96];
    graph_matmul_desc lin = {.layout = b->layout}, act = {.layout = b->layout, .act = b->act};
    int ln1w = weight(g, t, b, "ln1.weight"), ln1b = weight(g, t, b, "ln1.bias");
    int ln2w = weight(g, t, b, "ln2.weight"), ln2b = weight(g, t, b, "ln2.bias");
    const char *last = b->out_name ? b->out_name : node(n[7], sizeof n[7], b, b->post_ln ? "ln2" : "fc2");
    if (b->post_ln) {
        int att = self_attention(g, t, b, h);
        int ao = graph_matmul(g, node(n[0], sizeof n[0], b, "attn_out"), att, weight(g, t, b, "o.weight"), weight(g, t, b, "o.bias"), -1, &lin);
        h = graph_layernorm(g, node(n[1], sizeof n[1], b, "ln1"), ao, h, ln1w, ln1b, b->eps, NULL);
        if (b->cross) {
            int xa = cross_attention(g, t, b, h);
            int xo = graph_matmul(g, node(n[2], sizeof n[2], b, "xattn_out"), xa, weight(g, t, b, "xo.weight"), weight(g, t, b, "xo.bias"),
                                  -1, &lin);
            h = graph_layernorm(g, node(n[3], sizeof n[3], b, "lnx"), xo, h, weight(g, t, b, "lnx.weight"), weight(g, t, b, "lnx.bias"),
                                b->eps, NULL);
        }
        int f1 = graph_matmul(g, node(n[4], sizeof n[4], b, "fc1"), h, weight(g, t, b, "fc1.weight"), weight(g, t, b, "fc1.bias"), -1, &act);
        int f2 = graph_matmul(g, node(n[5], sizeof n[5], b, "fc2"), f1, weight(g, t, b, "fc2.weight"), weight(g, t, b, "fc2.bias"), -1, &lin);
        return graph_layernorm(g, last, f2, h, ln2w, ln2b, b->eps, NULL);
    }
    int x = graph_layernorm(g, node(n[0], sizeof n[0], b, "ln1"), h, -1, ln1w, ln1b, b->eps, NULL);
    int att = self_attention(g, t, b, x);
    h = graph_matmul(g, node(n[1], sizeof n[1], b, "attn_out"), att, weight(g, t, b, "o.weight"), weight(g, t, b, "o.bias"), h, &lin);
    if (b->cross) {
        x = graph_layernorm(g, node(n[2], sizeof n[2], b, "lnx"), h, -1, weight(g, t, b, "lnx.weight"), weight(g, t, b, "lnx.bias"), b->eps, NULL);
        int xa = cross_attention(g, t, b, x);
        h = graph_matmul(g, node(n[3], sizeof n[3], b, "xattn_out"), xa, weight(g, t, b, "xo.weight"), weight(g, t, b, "xo.bias"), h, &lin);
    }
    x = graph_layernorm(g, node(n[4], sizeof n[4], b, "ln2"), h, -1, ln2w, ln2b, b->eps, NULL);
    int f = graph_matmul(g, node(n[5], sizeof n[5], b, "fc1"), x, weight(g, t, b, "fc1.weight"), weight(g, t, b, "fc1.bias"), -1, &act);
    return graph_matmul(g, last, f, weight(g, t, b, "fc2.weight"), weight(g, t, b, "fc2.bias"), h, &lin);
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
                                  .q_rs = 3 * H, .k_rs = 3 * H, .v_rs = 3 * H, .scale = a->scale, .causal = true};
        return graph_attention(g, an, qkv, 0, qkv, H, qkv, 2 * H, &ap);
    }
    op_attention_params dp = {.batch = a->B, .q_len = 1, .kv_len = P, .heads = a->heads, .head_dim = a->head_dim, .q_bs = 3 * H,
                              .k_rs = 2 * H, .v_rs = 2 * H, .k_bs = (uint64_t)P * 2 * H, .v_bs = (uint64_t)P * 2 * H,
                              .scale = a->scale, .key_lengths = true, .len_index = a->counts};
    return graph_attention_split(g, an, qkv, 0, kv, 0, kv, H, &dp);
}

void model_generation_outputs(graph *g, int logits, uint32_t k)
{
    graph_output(g, logits);
    int values = -1;
    int top = graph_topk(g, "top_ids", logits, k ? k : 1, &values);
    graph_output(g, top);
    graph_output(g, values);
}
