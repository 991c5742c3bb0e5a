/* The pre-LN transformer block shared by the families that have one. */
#include "model.h"

#include <stdio.h>

int model_preln_block(graph *g, const model_decl *t, const model_block *b, int h)
{
    static const char *const wn[] = {"ln1.weight", "ln1.bias", "qkv.weight", "qkv.bias", "o.weight", "o.bias",
                                     "ln2.weight", "ln2.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    static const char *const nodes[] = {"ln1", "qkv", "attention", "attn_out", "ln2", "fc1", "fc2"};
    int w[12];
    char n[7][96];
    for (int i = 0; i < 12; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s.%s", b->w, wn[i]);
        w[i] = model_graph_weight(g, t, name);
    }
    for (int i = 0; i < 7; i++) snprintf(n[i], sizeof n[i], "%s.%s", b->node, nodes[i]);
    uint32_t H = b->at.heads * b->at.head_dim;
    graph_matmul_desc lin = {.layout = b->layout}, act = {.layout = b->layout, .act = b->act};
    int x = graph_layernorm(g, n[0], h, -1, w[0], w[1], b->eps, NULL);
    int qkv = graph_matmul(g, n[1], x, w[2], w[3], -1, &lin);
    int att;
    if (b->attend) {
        att = b->attend(b->user, g, qkv, b->node);
    } else {
        op_attention_params ap = b->at;
        ap.q_rs = ap.k_rs = ap.v_rs = 3 * H;
        att = graph_attention_masked(g, n[2], qkv, 0, qkv, H, qkv, 2 * H, b->mask, &ap);
    }
    int h1 = graph_matmul(g, n[3], att, w[4], w[5], h, &lin);
    x = graph_layernorm(g, n[4], h1, -1, w[6], w[7], b->eps, NULL);
    int f = graph_matmul(g, n[5], x, w[8], w[9], -1, &act);
    return graph_matmul(g, n[6], f, w[10], w[11], h1, &lin);
}
