/* The skeleton every encoder-decoder family shares (model.h: model_encdec):
 * the TEXT graph over both sides, ENCODE (the sources, then each decoder
 * layer's cross-attention keys and values projected once into the session's
 * state), DECODE (one token through the caches), the state they declare and
 * the decoder block's cross-attention and cached self-attention hooks. The
 * family builds its own embeddings, blocks, norms and head through callbacks. */
#include "model.h"

#include <stdio.h>

#define W(name) model_graph_weight(g, &e->m->decl, name)

static void state_of(const model_encdec *e, uint32_t l, int kind, uint32_t B, model_state *st)
{
    snprintf(st->name, sizeof st->name, "%s.%u", kind ? "xkv" : "kv", l);
    st->rank = 3, st->shape[0] = B, st->shape[1] = e->positions, st->shape[2] = 2 * e->heads * e->head_dim;
    st->beams = kind == 0; /* the encoder's keys and values are the same for every beam of a source */
}

uint32_t model_encdec_declare_state(const model_encdec *e, uint32_t B, model_state *out, uint32_t max)
{
    if (!e->lm_head) return 0;
    for (uint32_t i = 0; i < 2 * e->dec_layers && i < max; i++) state_of(e, i / 2, i % 2, B, &out[i]);
    return 2 * e->dec_layers;
}

/* Decoder layer l's cross-attention keys and values from the encoder's output h. */
static int cross_kv(const model_encdec *e, graph *g, int h, uint32_t l, const char *name)
{
    char wn[64], bn[64];
    snprintf(wn, sizeof wn, "d%u.xkv.weight", l), snprintf(bn, sizeof bn, "d%u.xkv.bias", l);
    return graph_matmul(g, name, h, W(wn), e->xkv_bias ? W(bn) : -1, -1, &(graph_matmul_desc){.layout = OP_W_NT});
}

int model_encdec_cross(void *user, graph *g, int q, const char *node)
{
    model_encdec_run *r = user;
    const model_encdec *e = r->e;
    uint32_t I = e->heads * e->head_dim;
    char n[96];
    snprintf(n, sizeof n, "%s.cross_attention", node);
    if (r->kind == MODEL_GRAPH_TEXT) {
        char kn[96];
        snprintf(kn, sizeof kn, "%s.xkv", node);
        int kv = cross_kv(e, g, r->enc, r->layer, kn);
        op_attention_params ap = {.batch = r->B, .q_len = r->T, .kv_len = r->S, .heads = e->heads, .head_dim = e->head_dim,
                                  .q_rs = I, .k_rs = 2 * I, .v_rs = 2 * I, .scale = e->scale};
        return graph_attention_masked(g, n, q, 0, kv, 0, kv, I, r->enc_mask, &ap);
    }
    model_state st;
    state_of(e, r->layer, 1, r->B, &st);
    int kv = graph_state(g, st.name, st.rank, st.shape);
    uint32_t P = st.shape[1];
    op_attention_params dp = {.batch = r->B, .q_len = 1, .kv_len = P, .heads = e->heads, .head_dim = e->head_dim, .q_bs = I,
                              .k_rs = 2 * I, .v_rs = 2 * I, .k_bs = (uint64_t)P * 2 * I, .v_bs = (uint64_t)P * 2 * I,
                              .scale = e->scale, .key_lengths = true, .len_index = r->src_counts};
    return graph_attention_split(g, n, q, 0, kv, 0, kv, I, &dp);
}

int model_encdec_attend(void *user, graph *g, int qkv, const char *node)
{
    model_encdec_run *r = user;
    const model_encdec *e = r->e;
    model_state st;
    state_of(e, r->layer, 0, r->B, &st);
    model_cache_attn ca = {.B = r->B, .S = 1, .heads = e->heads, .head_dim = e->head_dim, .state = &st, .decode = true,
                           .positions = r->positions, .counts = r->counts, .scale = e->scale, .rel_bias = e->rel_bias,
                           .rel_table = r->rel_table, .rel_buckets = r->rel_buckets, .rel_center = e->positions};
    return model_cache_attention(g, &ca, qkv, node);
}

graph *model_encdec_build(const model_encdec *e, const graph_key *key)
{
    const model *m = e->m;
    bool gen = key->kind == MODEL_GRAPH_ENCODE || key->kind == MODEL_GRAPH_DECODE;
    if ((key->kind != MODEL_GRAPH_TEXT && !(gen && e->lm_head)) || (key->packed && e->decoder)) return model_no_graph(m, key);
    graph *g = graph_create(m->diag, m->dtype);
    if (!g) return NULL;
    uint32_t B = key->batch;
    model_encdec_run r = {.e = e, .kind = (model_graph_kind)key->kind, .B = B, .S = key->seq, .T = key->tgt};
    if (key->kind == MODEL_GRAPH_TEXT && !e->decoder) { /* an encoder alone (T5EncoderModel) */
        model_text_in in = model_text_inputs(g, key); /* packed: each text attending to its own */
        r.B = in.B, r.seg = in.packed ? in.seg + 1 : 0;
        graph_output(g, e->encoder(&r, g, in.ids, in.mask));
        return g;
    }
    if (key->kind == MODEL_GRAPH_TEXT) {
        int ids = graph_input(g, "input_ids", GRAPH_I32, 2, (uint32_t[]){B, r.S});
        int mask = graph_input(g, "attention_mask", GRAPH_I32, 2, (uint32_t[]){B, r.S});
        int dids = graph_input(g, "decoder_input_ids", GRAPH_I32, 2, (uint32_t[]){B, r.T});
        int dmask = graph_input(g, "decoder_attention_mask", GRAPH_I32, 2, (uint32_t[]){B, r.T});
        r.enc = e->encoder(&r, g, ids, mask);
        r.enc_mask = mask;
        graph_output(g, r.enc);
        int h = e->decoder(&r, g, dids, dmask);
        graph_output_target(g, h);
        if (e->lm_head) graph_output_target(g, e->lm_head(m, g, h));
        return g;
    }
    if (key->kind == MODEL_GRAPH_ENCODE) {
        int ids = graph_input(g, "input_ids", GRAPH_I32, 2, (uint32_t[]){B, r.S});
        int mask = graph_input(g, "attention_mask", GRAPH_I32, 2, (uint32_t[]){B, r.S});
        int h = e->encoder(&r, g, ids, mask);
        graph_output(g, h);
        for (uint32_t l = 0; l < e->dec_layers; l++) {
            char n[64];
            model_state st;
            state_of(e, l, 1, B, &st);
            snprintf(n, sizeof n, "decoder%u.xkv", l);
            int kv = cross_kv(e, g, h, l, n);
            int state = graph_state(g, st.name, st.rank, st.shape);
            uint32_t P = st.shape[1], X = st.shape[2];
            op_rows_params cp = {.mode = OP_ROWS_COPY, .batch = B, .seq = r.S, .dim = X, .x_rs = X, .y_bs = P * X, .y_rs = X, .y_len = P};
            snprintf(n, sizeof n, "decoder%u.xkv_store", l);
            graph_store(g, n, kv, 0, state, &cp);
        }
        return g;
    }
    /* DECODE: one token per sequence at meta "positions" */
    r.S = 0, r.T = 1;
    int ids = graph_input(g, "input_ids", GRAPH_I32, 2, (uint32_t[]){B, 1});
    r.positions = graph_meta_named(g, "positions", B);
    r.counts = graph_meta_named(g, "counts", B);
    r.src_counts = graph_meta_named(g, "src_counts", B);
    int h = e->decoder(&r, g, ids, -1);
    model_generation_outputs(g, e->lm_head(m, g, h), key->k);
    return g;
}
