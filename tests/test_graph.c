/* The graph executor: same results as ops called one by one, replays without
 * Vulkan object work, memory reuse, errors naming the node, profiling, two
 * inferences in flight. */
#include "common.h"
#include "graph/graph.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S = 17, H = 64, HEADS = 4, FF = 256 };

typedef struct block_w {
    float ln1_w[H], ln1_b[H], qkv_w[3 * H * H], qkv_b[3 * H], o_w[H * H], o_b[H];
    float ln2_w[H], ln2_b[H], fc1_w[FF * H], fc1_b[FF], fc2_w[H * FF], fc2_b[H];
} block_w;

static void init_block(block_w *w, uint64_t seed)
{
    uint64_t r = seed;
    trand_fill(&r, w->ln1_w, H, 0.8f, 1.2f);
    trand_fill(&r, w->ln1_b, H, -0.1f, 0.1f);
    trand_fill(&r, w->qkv_w, 3 * H * H, -0.15f, 0.15f);
    trand_fill(&r, w->qkv_b, 3 * H, -0.1f, 0.1f);
    trand_fill(&r, w->o_w, H * H, -0.15f, 0.15f);
    trand_fill(&r, w->o_b, H, -0.1f, 0.1f);
    trand_fill(&r, w->ln2_w, H, 0.8f, 1.2f);
    trand_fill(&r, w->ln2_b, H, -0.1f, 0.1f);
    trand_fill(&r, w->fc1_w, FF * H, -0.15f, 0.15f);
    trand_fill(&r, w->fc1_b, FF, -0.1f, 0.1f);
    trand_fill(&r, w->fc2_w, H * FF, -0.1f, 0.1f);
    trand_fill(&r, w->fc2_b, H, -0.1f, 0.1f);
}

#define UP(ws, name, dt, rank, shape, data) \
    cr_assert_eq(graph_weights_upload(ws, name, dt, rank, shape, data), VKF_OK, "%s", ctx->dev->diag->error)

static void upload_block(vkf_context *ctx, graph_weights *ws, const block_w *w, int layer, graph_dtype dt)
{
    char n[64];
#define W1(field, len) \
    snprintf(n, sizeof n, "l%d." #field, layer); \
    UP(ws, n, dt, 1, (uint32_t[]){len}, w->field)
#define W2(field, r, c) \
    snprintf(n, sizeof n, "l%d." #field, layer); \
    UP(ws, n, dt, 2, ((uint32_t[]){r, c}), w->field)
    W1(ln1_w, H); W1(ln1_b, H); W2(qkv_w, 3 * H, H); W1(qkv_b, 3 * H); W2(o_w, H, H); W1(o_b, H);
    W1(ln2_w, H); W1(ln2_b, H); W2(fc1_w, FF, H); W1(fc1_b, FF); W2(fc2_w, H, FF); W1(fc2_b, H);
#undef W1
#undef W2
}

static const op_attention_params block_attention = {
    .batch = 1, .q_len = S, .kv_len = S, .heads = HEADS, .head_dim = H / HEADS, .q_rs = 3 * H, .k_rs = 3 * H, .v_rs = 3 * H,
};

/* A pre-LN encoder block (ViT layout) on x; returns its output tensor. */
static int build_block(graph *g, int x, int layer)
{
    char n[32][64];
    int k = 0;
#define NAME(fmt) (snprintf(n[k], sizeof n[k], "l%d." fmt, layer), n[k++])
    int wid[12];
    static const char *fields[] = {"ln1_w", "ln1_b", "qkv_w", "qkv_b", "o_w", "o_b",
                                   "ln2_w", "ln2_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b"};
    static const uint32_t shapes[12][2] = {{H, 0}, {H, 0}, {3 * H, H}, {3 * H, 0}, {H, H}, {H, 0},
                                           {H, 0}, {H, 0}, {FF, H},    {FF, 0},    {H, FF}, {H, 0}};
    for (int i = 0; i < 12; i++) {
        char wn[64];
        snprintf(wn, sizeof wn, "l%d.%s", layer, fields[i]);
        wid[i] = graph_weight(g, wn, shapes[i][1] ? 2 : 1, shapes[i]);
    }
    graph_matmul_desc nt = {.layout = OP_W_NT}, gelu = {.layout = OP_W_NT, .act = OP_ACT_GELU};
    int ln1 = graph_layernorm(g, NAME("ln1"), x, -1, wid[0], wid[1], 1e-6f, NULL);
    int qkv = graph_matmul(g, NAME("qkv"), ln1, wid[2], wid[3], -1, &nt);
    int att = graph_attention(g, NAME("attn"), qkv, 0, qkv, H, qkv, 2 * H, &block_attention);
    int h = graph_matmul(g, NAME("proj"), att, wid[4], wid[5], x, &nt);
    int ln2 = graph_layernorm(g, NAME("ln2"), h, -1, wid[6], wid[7], 1e-6f, NULL);
    int f1 = graph_matmul(g, NAME("fc1"), ln2, wid[8], wid[9], -1, &gelu);
    return graph_matmul(g, NAME("fc2"), f1, wid[10], wid[11], h, &nt);
#undef NAME
}

static graph_exec *compile_encoder(vkf_context *ctx, graph_weights *ws, int layers, graph_dtype dt,
                                   graph_compile_opts opts, int *x_id, int *y_id)
{
    graph *g = graph_create(ctx->dev->diag, dt);
    int x = graph_input(g, "x", dt, 2, (uint32_t[]){S, H});
    int h = x;
    for (int l = 0; l < layers; l++) h = build_block(g, h, l);
    graph_output(g, h);
    *x_id = x;
    *y_id = h;
    graph_exec *e;
    vkf_status s = graph_compile(ctx->dev, g, ws, &opts, &e);
    cr_assert_eq(s, VKF_OK, "%s", vkf_last_error(ctx));
    return e;
}

static void run_once(graph_exec *e, int x, int y, const float *in, float *out)
{
    uint32_t slot;
    cr_assert_eq(graph_exec_acquire(e, &slot), VKF_OK);
    cr_assert_eq(graph_exec_write(e, slot, x, in, S * H * 4), VKF_OK);
    cr_assert_eq(graph_exec_submit(e, slot), VKF_OK);
    cr_assert_eq(graph_exec_wait(e, slot), VKF_OK);
    cr_assert_eq(graph_exec_read(e, slot, y, out, S * H * 4), VKF_OK);
    graph_exec_release(e, slot);
}

/* The same block with op_* calls one by one, each on its own buffers. */
static void eager_block(vkf_context *ctx, const block_w *w, const float *in, float *out)
{
    vk_device *dev = tctx_dev(ctx);
    vk_buf x = tbuf_upload(dev, in, S * H, OP_F32);
    vk_buf b[12];
    const float *src[12] = {w->ln1_w, w->ln1_b, w->qkv_w, w->qkv_b, w->o_w, w->o_b,
                            w->ln2_w, w->ln2_b, w->fc1_w, w->fc1_b, w->fc2_w, w->fc2_b};
    const size_t len[12] = {H, H, 3 * H * H, 3 * H, H * H, H, H, H, FF * H, FF, H * FF, H};
    for (int i = 0; i < 12; i++) b[i] = tbuf_upload(dev, src[i], len[i], OP_F32);
    vk_buf ln1 = tbuf_alloc(dev, S * H, OP_F32), qkv = tbuf_alloc(dev, S * 3 * H, OP_F32), att = tbuf_alloc(dev, S * H, OP_F32);
    vk_buf h = tbuf_alloc(dev, S * H, OP_F32), ln2 = tbuf_alloc(dev, S * H, OP_F32), f1 = tbuf_alloc(dev, S * FF, OP_F32);
    vk_buf y = tbuf_alloc(dev, S * H, OP_F32);
    op_list l = {0};
    op_layernorm_params lp = {.rows = S, .cols = H, .eps = 1e-6f};
    op_matmul_params qp = {.M = S, .N = 3 * H, .K = H, .bias = true};
    op_matmul_params pp = {.M = S, .N = H, .K = H, .bias = true, .residual = true};
    op_matmul_params f1p = {.M = S, .N = FF, .K = H, .bias = true, .act = OP_ACT_GELU};
    op_matmul_params f2p = {.M = S, .N = H, .K = FF, .bias = true, .residual = true};
    op_ref q = op_ref_of(&qkv);
    cr_assert_eq(op_layernorm(dev, &lp, op_ref_of(&x), (op_ref){0}, op_ref_of(&b[0]), op_ref_of(&b[1]), (op_ref){0}, op_ref_of(&ln1), &l), VKF_OK);
    trun(ctx, &l);
    cr_assert_eq(op_matmul(dev, &qp, op_ref_of(&ln1), op_ref_of(&b[2]), op_ref_of(&b[3]), (op_ref){0}, q, &l), VKF_OK);
    trun(ctx, &l);
    cr_assert_eq(op_attention(dev, &block_attention, q, op_ref_sub(q, H * 4, q.size - H * 4), op_ref_sub(q, 2 * H * 4, q.size - 2 * H * 4),
                              (op_ref){0}, (op_ref){0}, op_ref_of(&att), &l), VKF_OK);
    trun(ctx, &l);
    cr_assert_eq(op_matmul(dev, &pp, op_ref_of(&att), op_ref_of(&b[4]), op_ref_of(&b[5]), op_ref_of(&x), op_ref_of(&h), &l), VKF_OK);
    trun(ctx, &l);
    cr_assert_eq(op_layernorm(dev, &lp, op_ref_of(&h), (op_ref){0}, op_ref_of(&b[6]), op_ref_of(&b[7]), (op_ref){0}, op_ref_of(&ln2), &l), VKF_OK);
    trun(ctx, &l);
    cr_assert_eq(op_matmul(dev, &f1p, op_ref_of(&ln2), op_ref_of(&b[8]), op_ref_of(&b[9]), (op_ref){0}, op_ref_of(&f1), &l), VKF_OK);
    trun(ctx, &l);
    cr_assert_eq(op_matmul(dev, &f2p, op_ref_of(&f1), op_ref_of(&b[10]), op_ref_of(&b[11]), op_ref_of(&h), op_ref_of(&y), &l), VKF_OK);
    trun(ctx, &l);
    tbuf_download(dev, &y, out, S * H, OP_F32);
    vk_buf *all[] = {&x, &ln1, &qkv, &att, &h, &ln2, &f1, &y};
    for (size_t i = 0; i < BASE_ARRAY_LEN(all); i++) vk_buf_free(dev, all[i]);
    for (int i = 0; i < 12; i++) vk_buf_free(dev, &b[i]);
}

Test(graph, encoder_block_equals_ops_one_by_one)
{
    vkf_context *ctx = tctx_create(tcaps());
    static block_w w;
    init_block(&w, 42);
    float in[S * H], want[S * H], got[S * H];
    uint64_t r = 7;
    trand_fill(&r, in, S * H, -1, 1);
    eager_block(ctx, &w, in, want);

    graph_weights ws;
    graph_weights_init(&ws, ctx->dev);
    upload_block(ctx, &ws, &w, 0, GRAPH_F32);
    int x, y;
    graph_exec *e = compile_encoder(ctx, &ws, 1, GRAPH_F32, (graph_compile_opts){0}, &x, &y);
    run_once(e, x, y, in, got);
    cr_assert(memcmp(got, want, sizeof got) == 0, "graph and eager results differ");
    graph_exec_stats st;
    graph_exec_get_stats(e, &st);
    cr_assert_eq(st.nodes, 7);
    /* The block is a chain: every dispatch depends on the one before. */
    cr_assert_geq(st.barriers, st.dispatches - 1);
    graph_exec_destroy(e);
    graph_weights_free(&ws);
    tctx_destroy(ctx);
}

Test(graph, mlp_equals_ops_and_independent_dispatches_share_no_barrier)
{
    vkf_context *ctx = tctx_create(tcaps());
    vk_device *dev = tctx_dev(ctx);
    enum { M = 5, K = 24, N1 = 40, N2 = 12 };
    float x[M * K], w1[N1 * K], b1[N1], w2[N2 * N1], b2[N2], wa[N2 * K];
    uint64_t r = 3;
    trand_fill(&r, x, M * K, -1, 1);
    trand_fill(&r, w1, N1 * K, -0.3f, 0.3f);
    trand_fill(&r, b1, N1, -0.3f, 0.3f);
    trand_fill(&r, w2, N2 * N1, -0.3f, 0.3f);
    trand_fill(&r, b2, N2, -0.3f, 0.3f);
    trand_fill(&r, wa, N2 * K, -0.3f, 0.3f);
    graph_weights ws;
    graph_weights_init(&ws, dev);
    UP(&ws, "w1", GRAPH_F32, 2, ((uint32_t[]){N1, K}), w1);
    UP(&ws, "b1", GRAPH_F32, 1, ((uint32_t[]){N1}), b1);
    UP(&ws, "w2", GRAPH_F32, 2, ((uint32_t[]){N1, N2}), w2); /* NN layout: [K, N] */
    UP(&ws, "b2", GRAPH_F32, 1, ((uint32_t[]){N2}), b2);
    UP(&ws, "wa", GRAPH_F32, 2, ((uint32_t[]){N2, K}), wa);
    graph *g = graph_create(dev->diag, GRAPH_F32);
    int gx = graph_input(g, "x", GRAPH_F32, 2, (uint32_t[]){M, K});
    int gw1 = graph_weight(g, "w1", 2, (uint32_t[]){N1, K}), gb1 = graph_weight(g, "b1", 1, (uint32_t[]){N1});
    int gw2 = graph_weight(g, "w2", 2, (uint32_t[]){N1, N2}), gb2 = graph_weight(g, "b2", 1, (uint32_t[]){N2});
    int gwa = graph_weight(g, "wa", 2, (uint32_t[]){N2, K});
    int h = graph_matmul(g, "fc1", gx, gw1, gb1, -1, &(graph_matmul_desc){.layout = OP_W_NT, .act = OP_ACT_RELU});
    int side = graph_matmul(g, "side", gx, gwa, -1, -1, &(graph_matmul_desc){.layout = OP_W_NT, .act = OP_ACT_TANH});
    int y = graph_matmul(g, "fc2", h, gw2, gb2, side, &(graph_matmul_desc){.layout = OP_W_NN});
    graph_output(g, y);
    graph_exec *e;
    cr_assert_eq(graph_compile(dev, g, &ws, &(graph_compile_opts){.slots = 1}, &e), VKF_OK, "%s", vkf_last_error(ctx));
    graph_exec_stats st;
    graph_exec_get_stats(e, &st);
    /* fc1 and side are independent: one barrier, before fc2, serves both. */
    cr_assert_eq(st.dispatches, 3);
    cr_assert_eq(st.barriers, 1);

    float got[M * N2], want[M * N2];
    uint32_t slot;
    graph_exec_acquire(e, &slot);
    graph_exec_write(e, slot, gx, x, sizeof x);
    cr_assert_eq(graph_exec_submit(e, slot), VKF_OK);
    cr_assert_eq(graph_exec_wait(e, slot), VKF_OK);
    cr_assert_eq(graph_exec_read(e, slot, y, got, sizeof got), VKF_OK);
    graph_exec_release(e, slot);

    vk_buf bx = tbuf_upload(dev, x, M * K, OP_F32), bh = tbuf_alloc(dev, M * N1, OP_F32), bs = tbuf_alloc(dev, M * N2, OP_F32);
    vk_buf by = tbuf_alloc(dev, M * N2, OP_F32);
    const graph_weight_entry *e1 = graph_weights_find(&ws, "w1"), *eb1 = graph_weights_find(&ws, "b1");
    const graph_weight_entry *e2 = graph_weights_find(&ws, "w2"), *eb2 = graph_weights_find(&ws, "b2"), *ea = graph_weights_find(&ws, "wa");
    op_list l = {0};
    op_matmul_params p1 = {.M = M, .N = N1, .K = K, .bias = true, .act = OP_ACT_RELU};
    op_matmul_params pa = {.M = M, .N = N2, .K = K, .act = OP_ACT_TANH};
    op_matmul_params p2 = {.M = M, .N = N2, .K = N1, .layout = OP_W_NN, .bias = true, .residual = true};
    op_matmul(dev, &p1, op_ref_of(&bx), op_ref_of(&ws.bufs[e1->buf]), op_ref_of(&ws.bufs[eb1->buf]), (op_ref){0}, op_ref_of(&bh), &l);
    op_matmul(dev, &pa, op_ref_of(&bx), op_ref_of(&ws.bufs[ea->buf]), (op_ref){0}, (op_ref){0}, op_ref_of(&bs), &l);
    op_matmul(dev, &p2, op_ref_of(&bh), op_ref_of(&ws.bufs[e2->buf]), op_ref_of(&ws.bufs[eb2->buf]), op_ref_of(&bs), op_ref_of(&by), &l);
    trun(ctx, &l);
    tbuf_download(dev, &by, want, M * N2, OP_F32);
    cr_assert(memcmp(got, want, sizeof got) == 0, "graph and eager MLP differ");
    vk_buf *bufs[] = {&bx, &bh, &bs, &by};
    for (size_t i = 0; i < 4; i++) vk_buf_free(dev, bufs[i]);
    graph_exec_destroy(e);
    graph_weights_free(&ws);
    tctx_destroy(ctx);
}

Test(graph, thousand_replays_bit_identical_without_vulkan_object_work, .timeout = 600)
{
    vkf_context *ctx = tctx_create(tcaps());
    static block_w w;
    init_block(&w, 5);
    graph_weights ws;
    graph_weights_init(&ws, ctx->dev);
    upload_block(ctx, &ws, &w, 0, GRAPH_F32);
    int x, y;
    graph_exec *e = compile_encoder(ctx, &ws, 1, GRAPH_F32, (graph_compile_opts){0}, &x, &y);
    float in[S * H], first[S * H], out[S * H];
    uint64_t r = 11;
    trand_fill(&r, in, S * H, -1, 1);
    run_once(e, x, y, in, first);
    vk_counters *c = &ctx->dev->calls;
    unsigned create = c->create, allocate = c->allocate, update = c->update_sets, begin = c->begin_cmd;
    unsigned submit = c->submit, wait = c->wait;
    for (int i = 0; i < 1000; i++) {
        run_once(e, x, y, in, out);
        cr_assert(memcmp(out, first, sizeof out) == 0, "replay %d differs", i);
    }
    cr_assert_eq(c->create, create, "vkCreate* on the run path");
    cr_assert_eq(c->allocate, allocate, "vkAllocate* on the run path");
    cr_assert_eq(c->update_sets, update, "vkUpdateDescriptorSets on the run path");
    cr_assert_eq(c->begin_cmd, begin, "vkBeginCommandBuffer on the run path");
    cr_assert_eq(c->submit - submit, 1000);
    cr_assert_eq(c->wait - wait, 1000);
    graph_exec_destroy(e);
    graph_weights_free(&ws);
    tctx_destroy(ctx);
}

Test(graph, twelve_layer_plan_reuses_memory)
{
    vkf_context *ctx = tctx_create(tcaps());
    static block_w w;
    init_block(&w, 9);
    graph_weights ws;
    graph_weights_init(&ws, ctx->dev);
    for (int l = 0; l < 12; l++) upload_block(ctx, &ws, &w, l, GRAPH_F32);
    int x, y;
    graph_exec *e = compile_encoder(ctx, &ws, 12, GRAPH_F32, (graph_compile_opts){.slots = 1}, &x, &y);
    graph_exec_stats st;
    graph_exec_get_stats(e, &st);
    uint64_t per_layer = st.naive_bytes / 12;
    cr_assert_gt(st.arena_bytes, 0);
    cr_assert_leq(st.arena_bytes, 3 * per_layer, "arena %llu bytes vs %llu for one layer (naive %llu)",
                  (unsigned long long)st.arena_bytes, (unsigned long long)per_layer, (unsigned long long)st.naive_bytes);
    /* ...and the result still matches twelve eager blocks. */
    float in[S * H], want[S * H], got[S * H], tmp[S * H];
    uint64_t r = 13;
    trand_fill(&r, in, S * H, -1, 1);
    memcpy(tmp, in, sizeof tmp);
    for (int l = 0; l < 12; l++) {
        eager_block(ctx, &w, tmp, want);
        memcpy(tmp, want, sizeof tmp);
    }
    run_once(e, x, y, in, got);
    cr_assert(memcmp(got, want, sizeof got) == 0, "12-layer graph differs from eager blocks");
    graph_exec_destroy(e);
    graph_weights_free(&ws);
    tctx_destroy(ctx);
}

Test(graph, plan_never_overlaps_live_tensors)
{
    /* Every pair of arena tensors whose lifetimes overlap gets disjoint bytes. */
    vkf_context *ctx = tctx_create(NULL);
    graph *g = graph_create(ctx->dev->diag, GRAPH_F32);
    int x = graph_input(g, "x", GRAPH_F32, 2, (uint32_t[]){S, H});
    for (int l = 0; l < 3; l++) x = build_block(g, x, l);
    graph_output(g, x);
    graph_plan plan;
    cr_assert_eq(graph_plan_memory(g, 256, &plan), VKF_OK);
    int first[256], last[256];
    for (size_t i = 0; i < g->n_t; i++) first[i] = 1 << 30, last[i] = -1;
    for (size_t i = 0; i < g->n_nodes; i++) {
        for (uint32_t j = 0; j < g->nodes[i].n_out; j++) {
            int t = g->nodes[i].out[j];
            if ((int)i < first[t]) first[t] = (int)i;
            if ((int)i > last[t]) last[t] = (int)i;
        }
        for (uint32_t j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] >= 0 && (int)i > last[g->nodes[i].in[j]]) last[g->nodes[i].in[j]] = (int)i;
    }
    for (size_t a = 0; a < g->n_t; a++)
        for (size_t b = a + 1; b < g->n_t; b++) {
            const graph_tensor *ta = &g->t[a], *tb = &g->t[b];
            if (ta->role != GRAPH_TEMP || tb->role != GRAPH_TEMP || ta->output || tb->output) continue;
            if (last[a] < first[b] || last[b] < first[a]) continue;
            uint64_t ea = plan.offset[a] + graph_numel(ta) * 4, eb = plan.offset[b] + graph_numel(tb) * 4;
            cr_assert(ea <= plan.offset[b] || eb <= plan.offset[a], "%s and %s overlap while both live", ta->name, tb->name);
        }
    graph_plan_free(&plan);
    graph_destroy(g);
    tctx_destroy(ctx);
}

Test(graph, errors_name_the_node_and_the_mismatch)
{
    vkf_context *ctx = tctx_create(NULL);
    vk_device *dev = tctx_dev(ctx);
    graph *g = graph_create(dev->diag, GRAPH_F32);
    int x = graph_input(g, "x", GRAPH_F32, 2, (uint32_t[]){4, 10});
    int w = graph_weight(g, "w", 2, (uint32_t[]){8, 12});
    cr_assert_eq(graph_matmul(g, "layer3.fc1", x, w, -1, -1, &(graph_matmul_desc){.layout = OP_W_NT}), -1);
    cr_assert_eq(g->error, VKF_ERROR_SHAPE);
    cr_assert(strstr(vkf_last_error(ctx), "layer3.fc1") && strstr(vkf_last_error(ctx), "10 features") &&
                  strstr(vkf_last_error(ctx), "takes 12"), "%s", vkf_last_error(ctx));
    graph_exec *e = NULL;
    cr_assert_eq(graph_compile(dev, g, NULL, NULL, &e), VKF_ERROR_SHAPE);
    cr_assert_null(e);

    /* Int ids where floats are expected */
    g = graph_create(dev->diag, GRAPH_F32);
    int ids = graph_input(g, "ids", GRAPH_I32, 1, (uint32_t[]){4});
    int b = graph_weight(g, "b", 1, (uint32_t[]){4});
    cr_assert_eq(graph_eltwise(g, "sum", OP_ADD, OP_ACT_NONE, ids, b, 0), -1);
    cr_assert(strstr(vkf_last_error(ctx), "node sum") && strstr(vkf_last_error(ctx), "is i32, expected f32"), "%s", vkf_last_error(ctx));
    graph_destroy(g);

    /* A weight the set lacks, and one with another shape */
    graph_weights ws;
    graph_weights_init(&ws, dev);
    UP(&ws, "w", GRAPH_F32, 2, ((uint32_t[]){8, 11}), (float[88]){0});
    for (int k = 0; k < 2; k++) {
        g = graph_create(dev->diag, GRAPH_F32);
        x = graph_input(g, "x", GRAPH_F32, 2, (uint32_t[]){4, 10});
        w = graph_weight(g, k ? "w" : "missing", 2, (uint32_t[]){8, 10});
        graph_output(g, graph_matmul(g, "fc", x, w, -1, -1, &(graph_matmul_desc){.layout = OP_W_NT}));
        vkf_status s = graph_compile(dev, g, &ws, NULL, &e);
        cr_assert_eq(s, k ? VKF_ERROR_SHAPE : VKF_ERROR_NOT_FOUND);
        cr_assert(strstr(vkf_last_error(ctx), k ? "weight w: the graph wants 8x10 f32, the weight set has 8x11 f32"
                                                : "weight missing: not in the weight set"),
                  "%s", vkf_last_error(ctx));
    }
    graph_weights_free(&ws);
    tctx_destroy(ctx);
}

Test(graph, profile_table)
{
    vkf_context *ctx = tctx_create(NULL);
    static block_w w;
    init_block(&w, 1);
    graph_weights ws;
    graph_weights_init(&ws, ctx->dev);
    upload_block(ctx, &ws, &w, 0, GRAPH_F32);
    int x, y;
    graph_exec *e = compile_encoder(ctx, &ws, 1, GRAPH_F32, (graph_compile_opts){.profile = true, .slots = 1}, &x, &y);
    float in[S * H] = {0}, out[S * H];
    char *table = NULL;
    cr_assert_neq(graph_exec_profile_table(e, &table), VKF_OK); /* nothing run yet */
    for (int i = 0; i < 3; i++) run_once(e, x, y, in, out);
    cr_assert_eq(graph_exec_profile_table(e, &table), VKF_OK);
    cr_assert(strstr(table, "l0.attn") && strstr(table, "attention") && strstr(table, "17x192") &&
                  strstr(table, "mean of 3 runs") && strstr(table, "%"), "%s", table);
    free(table);
    graph_exec_destroy(e);
    graph_weights_free(&ws);
    tctx_destroy(ctx);
}

typedef struct worker {
    graph_exec *e;
    int x, y, id;
    const float *want;
    const float *in;
    int bad;
} worker;

static void *work(void *p)
{
    worker *wk = p;
    float out[S * H];
    for (int i = 0; i < 40; i++) {
        uint32_t slot;
        graph_exec_acquire(wk->e, &slot);
        graph_exec_write(wk->e, slot, wk->x, wk->in, sizeof out);
        graph_exec_submit(wk->e, slot);
        graph_exec_wait(wk->e, slot);
        graph_exec_read(wk->e, slot, wk->y, out, sizeof out);
        graph_exec_release(wk->e, slot);
        if (memcmp(out, wk->want, sizeof out)) wk->bad++;
    }
    return NULL;
}

Test(graph, two_inferences_in_flight)
{
    vkf_context *ctx = tctx_create(tcaps());
    static block_w w;
    init_block(&w, 3);
    graph_weights ws;
    graph_weights_init(&ws, ctx->dev);
    upload_block(ctx, &ws, &w, 0, GRAPH_F32);
    int x, y;
    graph_exec *e = compile_encoder(ctx, &ws, 1, GRAPH_F32, (graph_compile_opts){.slots = 2}, &x, &y);
    float in_a[S * H], in_b[S * H], want_a[S * H], want_b[S * H], out[S * H];
    uint64_t r = 17;
    trand_fill(&r, in_a, S * H, -1, 1);
    trand_fill(&r, in_b, S * H, -1, 1);
    run_once(e, x, y, in_a, want_a);
    run_once(e, x, y, in_b, want_b);
    cr_assert(memcmp(want_a, want_b, sizeof out) != 0);

    /* Both slots submitted before either is waited on. */
    uint32_t sa, sb;
    graph_exec_acquire(e, &sa);
    graph_exec_acquire(e, &sb);
    cr_assert_neq(sa, sb);
    graph_exec_write(e, sa, x, in_a, sizeof out);
    graph_exec_write(e, sb, x, in_b, sizeof out);
    cr_assert_eq(graph_exec_submit(e, sa), VKF_OK);
    cr_assert_eq(graph_exec_submit(e, sb), VKF_OK);
    cr_assert_eq(graph_exec_wait(e, sb), VKF_OK);
    cr_assert_eq(graph_exec_wait(e, sa), VKF_OK);
    graph_exec_read(e, sa, y, out, sizeof out);
    cr_assert(memcmp(out, want_a, sizeof out) == 0);
    graph_exec_read(e, sb, y, out, sizeof out);
    cr_assert(memcmp(out, want_b, sizeof out) == 0);
    graph_exec_release(e, sa);
    graph_exec_release(e, sb);

    /* Three threads share two slots. */
    worker wk[3] = {{e, x, y, 0, want_a, in_a, 0}, {e, x, y, 1, want_b, in_b, 0}, {e, x, y, 2, want_a, in_a, 0}};
    pthread_t th[3];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, work, &wk[i]);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) cr_assert_eq(wk[i].bad, 0, "thread %d saw wrong results", i);
    graph_exec_destroy(e);
    graph_weights_free(&ws);
    tctx_destroy(ctx);
}

Test(graph, fp16_storage_matches_fp32)
{
    vkf_context *ctx = tctx_create(tcaps());
    if (!ctx->dev->caps.storage16) {
        tctx_destroy(ctx);
        cr_skip_test("no 16-bit storage");
    }
    static block_w w;
    init_block(&w, 21);
    graph_weights w32, w16;
    graph_weights_init(&w32, ctx->dev);
    graph_weights_init(&w16, ctx->dev);
    upload_block(ctx, &w32, &w, 0, GRAPH_F32);
    upload_block(ctx, &w16, &w, 0, GRAPH_F16);
    int x, y, x16, y16;
    graph_exec *e32 = compile_encoder(ctx, &w32, 1, GRAPH_F32, (graph_compile_opts){.slots = 1}, &x, &y);
    graph_exec *e16 = compile_encoder(ctx, &w16, 1, GRAPH_F16, (graph_compile_opts){.slots = 1}, &x16, &y16);
    float in[S * H], a[S * H], b[S * H];
    double ref[S * H];
    uint64_t r = 23;
    trand_fill(&r, in, S * H, -1, 1);
    run_once(e32, x, y, in, a);
    run_once(e16, x16, y16, in, b);
    for (int i = 0; i < S * H; i++) ref[i] = a[i];
    double err = nmse_f32(b, ref, S * H);
    cr_assert_leq(err, 1e-5, "fp16 block nmse %g", err);
    graph_exec_destroy(e32);
    graph_exec_destroy(e16);
    graph_weights_free(&w32);
    graph_weights_free(&w16);
    tctx_destroy(ctx);
}

/* Key lengths change between runs through the meta buffer: one recorded
 * command buffer serves them all. */
Test(graph, run_time_values_without_rerecording)
{
    vkf_context *ctx = tctx_create(tcaps());
    vk_device *dev = tctx_dev(ctx);
    enum { B = 2, R = 3, C = 9 };
    graph *g = graph_create(dev->diag, GRAPH_F32);
    int x = graph_input(g, "scores", GRAPH_F32, 3, (uint32_t[]){B, R, C});
    uint32_t lens = graph_meta(g, B);
    op_softmax_params sp = {.key_lengths = true, .rows_per_batch = R, .len_index = lens};
    int y = graph_softmax(g, "probs", x, &sp);
    graph_output(g, y);
    graph_exec *e;
    cr_assert_eq(graph_compile(dev, g, NULL, &(graph_compile_opts){.slots = 1}, &e), VKF_OK, "%s", vkf_last_error(ctx));
    float in[B * R * C], out[B * R * C];
    uint64_t r = 1;
    trand_fill(&r, in, B * R * C, -3, 3);
    unsigned begins = dev->calls.begin_cmd;
    const int32_t cases[][B] = {{3, 5}, {9, 1}, {0, 7}};
    for (size_t k = 0; k < BASE_ARRAY_LEN(cases); k++) {
        uint32_t slot;
        graph_exec_acquire(e, &slot);
        graph_exec_write(e, slot, x, in, sizeof in);
        for (int b = 0; b < B; b++) cr_assert_eq(graph_exec_set_meta(e, slot, lens + b, cases[k][b]), VKF_OK);
        graph_exec_submit(e, slot);
        cr_assert_eq(graph_exec_wait(e, slot), VKF_OK);
        graph_exec_read(e, slot, y, out, sizeof out);
        graph_exec_release(e, slot);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < R; i++) {
                const float *row = in + (b * R + i) * C;
                const float *o = out + (b * R + i) * C;
                int n = cases[k][b];
                double m = -1e30, s = 0;
                for (int j = 0; j < n; j++) m = row[j] > m ? row[j] : m;
                for (int j = 0; j < n; j++) s += exp(row[j] - m);
                for (int j = 0; j < C; j++)
                    cr_assert_float_eq(o[j], j < n ? exp(row[j] - m) / s : 0.0, 1e-6, "case %zu b%d row %d key %d", k, b, i, j);
            }
    }
    cr_assert_eq(dev->calls.begin_cmd, begins, "a run re-recorded the command buffer");
    cr_assert_eq(graph_exec_set_meta(e, 0, lens + B, 1), VKF_ERROR_INVALID_ARGUMENT);
    graph_exec_destroy(e);
    tctx_destroy(ctx);
}

typedef struct cache_user {
    int builds;
    base_diag *diag;
} cache_user;

static graph *build_scale(void *user, const graph_key *key)
{
    uint32_t batch = key->batch, seq = key->seq;
    cache_user *u = user;
    __atomic_fetch_add(&u->builds, 1, __ATOMIC_SEQ_CST); /* builds may run on several threads at once */
    graph *g = graph_create(u->diag, GRAPH_F32);
    int x = graph_input(g, "x", GRAPH_F32, 2, (uint32_t[]){batch, seq});
    graph_output(g, graph_eltwise(g, "y", OP_SCALE, OP_ACT_NONE, x, -1, (float)(batch * 100 + seq)));
    return g;
}

Test(graph, shape_variants_in_a_bounded_cache)
{
    vkf_context *ctx = tctx_create(NULL);
    cache_user u = {0, ctx->dev->diag};
    graph_cache c;
    graph_cache_init(&c, ctx->dev, NULL, &(graph_compile_opts){.slots = 1}, 2, build_scale, &u);
    const uint32_t shapes[][2] = {{1, 8}, {2, 8}, {1, 8}, {4, 16}, {1, 8}, {2, 8}};
    const int builds_after[] = {1, 2, 2, 3, 3, 4}; /* {2,8} was least recently used when {4,16} came */
    for (size_t i = 0; i < BASE_ARRAY_LEN(shapes); i++) {
        graph_exec *e;
        cr_assert_eq(graph_cache_get(&c, &(graph_key){.batch = shapes[i][0], .seq = shapes[i][1]}, &e), VKF_OK, "%s", vkf_last_error(ctx));
        cr_assert_eq(u.builds, builds_after[i], "after get %zu", i);
        cr_assert_leq(c.n, 2);
        const graph *g = graph_exec_graph(e);
        cr_assert_eq(g->t[0].shape[0], shapes[i][0]);
        cr_assert_eq(g->t[0].shape[1], shapes[i][1]);
        uint32_t n = shapes[i][0] * shapes[i][1], slot;
        float in[64], out[64];
        for (uint32_t k = 0; k < n; k++) in[k] = (float)k;
        graph_exec_acquire(e, &slot);
        graph_exec_write(e, slot, 0, in, n * 4);
        graph_exec_submit(e, slot);
        graph_exec_wait(e, slot);
        graph_exec_read(e, slot, 1, out, n * 4);
        graph_exec_release(e, slot);
        for (uint32_t k = 0; k < n; k++) cr_assert_eq(out[k], in[k] * (float)(shapes[i][0] * 100 + shapes[i][1]));
        graph_cache_release(&c, e);
    }
    /* Variants in use are never evicted: holding both, a third shape goes past
     * the bound (never an out-of-memory error), and releases shrink it back. */
    graph_exec *a, *b, *d;
    cr_assert_eq(graph_cache_get(&c, &(graph_key){.batch = 1, .seq = 8}, &a), VKF_OK);
    cr_assert_eq(graph_cache_get(&c, &(graph_key){.batch = 2, .seq = 8}, &b), VKF_OK);
    cr_assert_eq(graph_cache_get(&c, &(graph_key){.batch = 3, .seq = 3}, &d), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(c.n, 3);
    graph_cache_release(&c, a);
    cr_assert_eq(c.n, 2);
    graph_cache_release(&c, b);
    graph_cache_release(&c, d);
    cr_assert_leq(c.n, 2);
    graph_cache_destroy(&c);
    tctx_destroy(ctx);
}

typedef struct cache_thread {
    graph_cache *c;
    int ok;
} cache_thread;

static void *hammer(void *p)
{
    cache_thread *t = p;
    t->ok = 1;
    for (int i = 0; i < 20; i++) {
        graph_exec *e;
        uint32_t b = 1 + (uint32_t)(i % 2);
        if (graph_cache_get(t->c, &(graph_key){.batch = b, .seq = 8}, &e) != VKF_OK) t->ok = 0;
        else graph_cache_release(t->c, e);
    }
    return NULL;
}

/* Threads asking for the same shapes: each compiled once, nobody fails. */
Test(graph, shape_variants_shared_by_threads)
{
    vkf_context *ctx = tctx_create(NULL);
    cache_user u = {0, ctx->dev->diag};
    graph_cache c;
    graph_cache_init(&c, ctx->dev, NULL, &(graph_compile_opts){.slots = 1}, 2, build_scale, &u);
    pthread_t th[4];
    cache_thread t[4];
    for (int i = 0; i < 4; i++) t[i] = (cache_thread){&c, 0}, pthread_create(&th[i], NULL, hammer, &t[i]);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) cr_expect(t[i].ok);
    cr_expect_eq(u.builds, 2, "%d builds for two shapes", u.builds);
    graph_cache_destroy(&c);
    tctx_destroy(ctx);
}

/* x * (b*100+s) through an intermediate the arena holds. */
static graph *build_two_steps(void *user, const graph_key *key)
{
    uint32_t batch = key->batch, seq = key->seq;
    cache_user *u = user;
    __atomic_fetch_add(&u->builds, 1, __ATOMIC_SEQ_CST);
    graph *g = graph_create(u->diag, GRAPH_F32);
    int x = graph_input(g, "x", GRAPH_F32, 2, (uint32_t[]){batch, seq});
    int t = graph_eltwise(g, "t", OP_SCALE, OP_ACT_NONE, x, -1, 2.0f);
    graph_output(g, graph_eltwise(g, "y", OP_SCALE, OP_ACT_NONE, t, -1, (float)(batch * 100 + seq) / 2.0f));
    return g;
}

/* One activation reservation per model: every cached variant runs in the
 * same arenas, sized for the largest; a larger variant replaces a smaller
 * reservation, and the variants bound to the old one go. */
Test(graph, variants_share_one_reservation)
{
    vkf_context *ctx = tctx_create(NULL);
    cache_user u = {0, ctx->dev->diag};
    graph_cache c;
    graph_cache_init(&c, ctx->dev, NULL, &(graph_compile_opts){.slots = 2}, 4, build_two_steps, &u);
    const uint32_t shapes[][2] = {{1, 8}, {4, 16}, {2, 8}, {1, 4}};
    graph_exec *e;
    for (size_t i = 0; i < BASE_ARRAY_LEN(shapes); i++) {
        cr_assert_eq(graph_cache_get(&c, &(graph_key){.batch = shapes[i][0], .seq = shapes[i][1]}, &e), VKF_OK, "%s", vkf_last_error(ctx));
        graph_cache_release(&c, e);
    }
    /* {1, 8} was compiled against a smaller reservation and went when {4, 16} grew it */
    cr_expect_eq(c.n, 3, "%u variants cached", c.n);
    uint64_t biggest = 0;
    for (uint32_t i = 0; i < c.n; i++) {
        cr_expect(graph_exec_arenas(c.e[i].exec) == c.arenas, "variant %u has arenas of its own", i);
        uint64_t need;
        cr_assert_eq(graph_arena_need(ctx->dev, graph_exec_graph(c.e[i].exec), &need), VKF_OK);
        biggest = BASE_MAX(biggest, need);
    }
    cr_expect_gt(biggest, 0);
    cr_expect_eq(graph_arenas_bytes(c.arenas), biggest);
    /* and runs in it stay right */
    cr_assert_eq(graph_cache_get(&c, &(graph_key){.batch = 1, .seq = 8}, &e), VKF_OK);
    uint32_t slot;
    float in[8], out[8];
    for (int k = 0; k < 8; k++) in[k] = (float)k;
    graph_exec_acquire(e, &slot);
    const graph *gg = graph_exec_graph(e);
    graph_exec_write(e, slot, graph_find(gg, "x"), in, sizeof in);
    graph_exec_submit(e, slot);
    graph_exec_wait(e, slot);
    graph_exec_read(e, slot, graph_find(gg, "y"), out, sizeof out);
    graph_exec_release(e, slot);
    graph_cache_release(&c, e);
    for (int k = 0; k < 8; k++) cr_expect_eq(out[k], in[k] * 108.0f);
    graph_cache_destroy(&c);
    tctx_destroy(ctx);
}

/* State: a tensor that outlives runs. Two sequences append rows at their own
 * run-time positions (meta) across three runs; each run reads the whole
 * state back through a gather. The plan keeps state out of the arena, and a
 * graph whose state set lacks the tensor does not compile. */
Test(graph, state_persists_across_runs)
{
    vkf_context *ctx = tctx_create(tcaps());
    vk_device *dev = ctx->dev;
    enum { B = 2, P = 5, D = 8 };
    graph_weights st;
    graph_weights_init(&st, dev);
    int buf;
    cr_assert_eq(graph_weights_alloc(&st, B * P * D * 4, "state", &buf), VKF_OK);
    cr_assert_eq(graph_weights_add(&st, "cache", GRAPH_F32, 3, (uint32_t[]){B, P, D}, buf, 0), VKF_OK);
    static const float zeros[B * P * D];
    cr_assert_eq(graph_weights_write(&st, buf, 0, zeros, sizeof zeros), VKF_OK);
    for (int with_state = 0; with_state < 2; with_state++) {
        graph *g = graph_create(&ctx->diag, GRAPH_F32);
        int x = graph_input(g, "x", GRAPH_F32, 3, (uint32_t[]){B, 1, D});
        uint32_t meta = graph_meta(g, B);
        int cache = graph_state(g, "cache", 3, (uint32_t[]){B, P, D});
        op_rows_params cp = {.mode = OP_ROWS_COPY, .batch = B, .seq = 1, .dim = D, .y_bs = P * D, .y_len = P, .use_meta = true,
                             .meta_index = meta};
        cache = graph_store(g, "append", x, 0, cache, &cp);
        /* read it back: x2 = 2 * cache (an eltwise over the state) */
        int y = graph_eltwise(g, "double", OP_SCALE, OP_ACT_NONE, cache, -1, 2.0f);
        graph_output(g, y);
        graph_compile_opts opts = {.slots = 1, .state = with_state ? &st : NULL};
        graph_exec *e;
        vkf_status s = graph_compile(dev, g, NULL, &opts, &e);
        if (!with_state) {
            cr_assert_eq(s, VKF_ERROR_NOT_FOUND);
            cr_assert(strstr(vkf_last_error(ctx), "state cache"), "%s", vkf_last_error(ctx));
            continue;
        }
        cr_assert_eq(s, VKF_OK, "%s", vkf_last_error(ctx));
        graph_exec_stats stats;
        graph_exec_get_stats(e, &stats);
        cr_assert_eq(stats.arena_bytes, 0, "state is not an arena tensor");
        const graph *cg = graph_exec_graph(e);
        int xi = graph_find(cg, "x"), yi = graph_find(cg, "double");
        double ref[B * P * D] = {0};
        const int pos[3][B] = {{0, 3}, {1, 4}, {2, 9}}; /* 9: past the cache, dropped */
        for (int run = 0; run < 3; run++) {
            float in[B * D], out[B * P * D];
            for (int i = 0; i < B * D; i++) in[i] = (float)(run * 100 + i);
            for (int b = 0; b < B; b++)
                if (pos[run][b] < P)
                    for (int d = 0; d < D; d++) ref[(b * P + pos[run][b]) * D + d] = in[b * D + d];
            uint32_t slot;
            graph_exec_acquire(e, &slot);
            cr_assert_eq(graph_exec_write(e, slot, xi, in, sizeof in), VKF_OK);
            for (int b = 0; b < B; b++) graph_exec_set_meta(e, slot, meta + b, pos[run][b]);
            cr_assert_eq(graph_exec_submit(e, slot), VKF_OK);
            cr_assert_eq(graph_exec_wait(e, slot), VKF_OK);
            cr_assert_eq(graph_exec_read(e, slot, yi, out, sizeof out), VKF_OK);
            graph_exec_release(e, slot);
            for (int i = 0; i < B * P * D; i++) cr_assert_eq(out[i], 2 * ref[i], "run %d element %d: %g, expected %g", run, i, out[i], 2 * ref[i]);
        }
        graph_exec_destroy(e);
    }
    graph_weights_free(&st);
    tctx_destroy(ctx);
}
