/* GroupNorm and grouped Conv1d (channels-last, wav2vec 2.0's feature encoder
 * and positional convolution) against float64, fp32 and fp16 storage; the
 * arguments they refuse; both as graph nodes equal to the ops alone. */
#include "common.h"
#include "graph/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check_groupnorm(vkf_context *ctx, uint32_t B, uint32_t L, uint32_t C, uint32_t G, op_act act, float center,
                            op_dtype dt)
{
    vk_device *dev = tctx_dev(ctx);
    size_t n = (size_t)B * L * C;
    uint64_t rng = 11 + n + G;
    float *x = malloc(n * 4), *y = malloc(n * 4), *w = malloc(C * 4), *b = malloc(C * 4);
    double *ref = malloc(n * 8);
    trand_fill(&rng, x, n, center - 2, center + 2);
    trand_fill(&rng, w, C, 0.5f, 1.5f);
    trand_fill(&rng, b, C, -0.5f, 0.5f);
    tround(x, n, dt), tround(w, C, dt), tround(b, C, dt);
    const double eps = 1e-5;
    uint32_t cpg = C / G;
    for (uint32_t bi = 0; bi < B; bi++)
        for (uint32_t g = 0; g < G; g++) {
            double mean = 0, var = 0;
            for (uint32_t l = 0; l < L; l++)
                for (uint32_t c = g * cpg; c < (g + 1) * cpg; c++) mean += x[((size_t)bi * L + l) * C + c];
            mean /= (double)L * cpg;
            for (uint32_t l = 0; l < L; l++)
                for (uint32_t c = g * cpg; c < (g + 1) * cpg; c++) {
                    double d = x[((size_t)bi * L + l) * C + c] - mean;
                    var += d * d;
                }
            var /= (double)L * cpg;
            for (uint32_t l = 0; l < L; l++)
                for (uint32_t c = g * cpg; c < (g + 1) * cpg; c++) {
                    size_t k = ((size_t)bi * L + l) * C + c;
                    ref[k] = tref_act(act, (x[k] - mean) / sqrt(var + eps) * w[c] + b[c]);
                }
        }
    vk_buf bx = tbuf_upload(dev, x, n, dt), bw = tbuf_upload(dev, w, C, dt), bb = tbuf_upload(dev, b, C, dt);
    vk_buf by = tbuf_alloc(dev, n, dt);
    op_groupnorm_params p = {.batch = B, .len = L, .channels = C, .groups = G, .eps = (float)eps, .act = act, .dtype = dt};
    op_list l = {0};
    cr_assert_eq(op_groupnorm(dev, &p, op_ref_of(&bx), op_ref_of(&bw), op_ref_of(&bb), op_ref_of(&by), &l), VKF_OK, "%s",
                 vkf_last_error(ctx));
    trun(ctx, &l);
    tbuf_download(dev, &by, y, n, dt);
    double e = nmse_f32(y, ref, n);
    cr_assert_leq(e, dt == OP_F16 ? NMSE_F16 : NMSE_F32, "groupnorm %ux%ux%u g%u act %d %s: nmse %g", B, L, C, G, act,
                  dt == OP_F16 ? "f16" : "f32", e);
    vk_buf_free(dev, &bx), vk_buf_free(dev, &bw), vk_buf_free(dev, &bb), vk_buf_free(dev, &by);
    free(x), free(y), free(w), free(b), free(ref);
}

Test(groupnorm, shapes_and_precisions)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        static const uint32_t lens[] = {1, 17, 3199};
        for (size_t i = 0; i < BASE_ARRAY_LEN(lens); i++) {
            uint32_t L = lens[i];
            if (L > 1) check_groupnorm(ctx, 1, L, 12, 12, OP_ACT_GELU, 0, dt); /* groups = channels (wav2vec2) */
            check_groupnorm(ctx, 2, L, 12, 1, OP_ACT_NONE, 3, dt);              /* one group */
            check_groupnorm(ctx, 1, L, 12, 4, OP_ACT_GELU, -1, dt);             /* 3 channels a group */
        }
        check_groupnorm(ctx, 1, 77, 40, 40, OP_ACT_NONE, 0, dt);    /* a partial block of channels */
        check_groupnorm(ctx, 1, 33, 600, 2, OP_ACT_NONE, 0, dt);    /* 300 channels a group: the flat layout */
        /* long: one channel, a large mean (past lavapipe's 65535 loop iterations a thread, were it one thread) */
        check_groupnorm(ctx, 1, 40000, 1, 1, OP_ACT_NONE, 100, dt);
        check_groupnorm(ctx, 1, 30000, 3, 1, OP_ACT_NONE, 0, dt); /* long, flat */
        check_groupnorm(ctx, 1, 211, 512, 512, OP_ACT_GELU, 0, dt); /* wav2vec2's first layer, fewer frames */
        /* groups = channels over 100k frames (wav2vec2's first layer on 31 s of audio): too long
         * for the columns layout's threads, a workgroup down each group instead */
        check_groupnorm(ctx, 1, 100003, 64, 64, OP_ACT_GELU, 1, dt);
    }
    tctx_destroy(ctx);
}

static void check_conv(vkf_context *ctx, op_conv1d_params p, bool bias, op_dtype dt)
{
    vk_device *dev = tctx_dev(ctx);
    p.dtype = dt;
    uint32_t Lout = op_conv1d_len(&p), cig = p.in_ch / p.groups, cog = p.out_ch / p.groups;
    cr_assert_gt(Lout, 0);
    size_t nx = (size_t)p.batch * p.len * p.in_ch, ny = (size_t)p.batch * Lout * p.out_ch;
    size_t nw = (size_t)p.out_ch * cig * p.kernel;
    uint64_t rng = 5 + nx + nw;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *bs = malloc(p.out_ch * 4), *y = malloc(ny * 4);
    double *ref = malloc(ny * 8);
    trand_fill(&rng, x, nx, -1, 1);
    trand_fill(&rng, w, nw, -0.3f, 0.3f);
    trand_fill(&rng, bs, p.out_ch, -0.5f, 0.5f);
    tround(x, nx, dt), tround(w, nw, dt), tround(bs, p.out_ch, dt);
    for (uint32_t b = 0; b < p.batch; b++)
        for (uint32_t o = 0; o < Lout; o++)
            for (uint32_t co = 0; co < p.out_ch; co++) {
                uint32_t g = co / cog;
                double s = bias ? bs[co] : 0.0;
                for (uint32_t ci = 0; ci < cig; ci++)
                    for (uint32_t k = 0; k < p.kernel; k++) {
                        int64_t pos = (int64_t)o * p.stride + k - p.pad;
                        if (pos < 0 || pos >= p.len) continue;
                        s += (double)w[((size_t)co * cig + ci) * p.kernel + k] *
                             x[((size_t)b * p.len + pos) * p.in_ch + g * cig + ci];
                    }
                ref[((size_t)b * Lout + o) * p.out_ch + co] = tref_act(p.act, s);
            }
    vk_buf bx = tbuf_upload(dev, x, nx, dt), bw = tbuf_upload(dev, w, nw, dt), bb = tbuf_upload(dev, bs, p.out_ch, dt);
    vk_buf by = tbuf_alloc(dev, ny, dt);
    op_list l = {0};
    cr_assert_eq(op_conv1d(dev, &p, op_ref_of(&bx), op_ref_of(&bw), bias ? op_ref_of(&bb) : (op_ref){0}, op_ref_of(&by), &l),
                 VKF_OK, "%s", vkf_last_error(ctx));
    trun(ctx, &l);
    tbuf_download(dev, &by, y, ny, dt);
    double e = nmse_f32(y, ref, ny);
    cr_assert_leq(e, dt == OP_F16 ? NMSE_F16 : NMSE_F32, "conv1d b%u L%u %u->%u k%u s%u p%u g%u out %u %s: nmse %g", p.batch,
                  p.len, p.in_ch, p.out_ch, p.kernel, p.stride, p.pad, p.groups, Lout, dt == OP_F16 ? "f16" : "f32", e);
    vk_buf_free(dev, &bx), vk_buf_free(dev, &bw), vk_buf_free(dev, &bb), vk_buf_free(dev, &by);
    free(x), free(w), free(bs), free(y), free(ref);
}

Test(conv1d, shapes_and_precisions)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        /* wav2vec2's first layer: 1 -> 16 (512 in the model), kernel 10 stride 5, no bias */
        check_conv(ctx, (op_conv1d_params){.batch = 1, .len = 400, .in_ch = 1, .out_ch = 16, .kernel = 10, .stride = 5, .groups = 1},
                   false, dt);
        check_conv(ctx, (op_conv1d_params){.batch = 1, .len = 37, .in_ch = 16, .out_ch = 16, .kernel = 3, .stride = 2, .groups = 1,
                                           .act = OP_ACT_GELU},
                   true, dt);
        /* the positional convolution's shape, smaller: grouped, even kernel, SamePad drops the last output */
        op_conv1d_params pos = {.batch = 1, .len = 50, .in_ch = 48, .out_ch = 48, .kernel = 16, .stride = 1, .pad = 8, .groups = 4,
                                .act = OP_ACT_GELU};
        pos.out_len = op_conv1d_len(&pos) - 1;
        cr_assert_eq(pos.out_len, 50);
        check_conv(ctx, pos, true, dt);
        /* wav2vec2-base's positional convolution (768 channels, kernel 128, 16 groups), 40 frames */
        op_conv1d_params base = {.batch = 1, .len = 40, .in_ch = 768, .out_ch = 768, .kernel = 128, .stride = 1, .pad = 64,
                                 .groups = 16, .out_len = 40, .act = OP_ACT_GELU};
        check_conv(ctx, base, true, dt);
        /* a kernel longer than the sequence, padded */
        check_conv(ctx, (op_conv1d_params){.batch = 1, .len = 5, .in_ch = 3, .out_ch = 7, .kernel = 9, .stride = 1, .pad = 4, .groups = 1},
                   true, dt);
        /* batch 2, channels not a multiple of any tile, stride 3 */
        check_conv(ctx, (op_conv1d_params){.batch = 2, .len = 61, .in_ch = 10, .out_ch = 70, .kernel = 5, .stride = 3, .pad = 1, .groups = 2},
                   true, dt);
        /* taps and input channels past one staged chunk: 40 taps, 5 channels a group */
        check_conv(ctx, (op_conv1d_params){.batch = 1, .len = 90, .in_ch = 10, .out_ch = 6, .kernel = 40, .stride = 2, .pad = 20, .groups = 2},
                   false, dt);
    }
    tctx_destroy(ctx);
}

Test(conv, bad_arguments_refused)
{
    vkf_context *ctx = tctx_create(tcaps());
    vk_device *dev = tctx_dev(ctx);
    vk_buf big = tbuf_alloc(dev, 4096, OP_F32), small = tbuf_alloc(dev, 2, OP_F32);
    op_ref B = op_ref_of(&big), S = op_ref_of(&small);
    op_list l = {0};
    op_groupnorm_params gn = {.batch = 1, .len = 10, .channels = 12, .groups = 5, .eps = 1e-5f};
    cr_assert_eq(op_groupnorm(dev, &gn, B, B, B, B, &l), VKF_ERROR_SHAPE); /* 5 groups of 12 channels */
    gn.groups = 4;
    cr_assert_eq(op_groupnorm(dev, &gn, B, B, B, S, &l), VKF_ERROR_SHAPE); /* y too small */
    cr_assert_eq(op_groupnorm(dev, &gn, B, S, B, B, &l), VKF_ERROR_SHAPE); /* w too small */
    op_conv1d_params cv = {.batch = 1, .len = 10, .in_ch = 4, .out_ch = 6, .kernel = 13, .stride = 1, .pad = 1, .groups = 1};
    cr_assert_eq(op_conv1d_len(&cv), 0);
    cr_assert_eq(op_conv1d(dev, &cv, B, B, B, B, &l), VKF_ERROR_SHAPE); /* kernel past the padded sequence */
    cv.kernel = 3;
    cr_assert_eq(op_conv1d_len(&cv), 10);
    cv.groups = 4;
    cr_assert_eq(op_conv1d(dev, &cv, B, B, B, B, &l), VKF_ERROR_SHAPE); /* 4 groups of 6 outputs */
    cv.groups = 2;
    cr_assert_eq(op_conv1d(dev, &cv, B, S, B, B, &l), VKF_ERROR_SHAPE); /* w too small */
    cr_assert_eq(op_conv1d(dev, &cv, B, B, S, B, &l), VKF_ERROR_SHAPE); /* bias too small */
    cr_assert_eq(op_conv1d(dev, &cv, S, B, B, B, &l), VKF_ERROR_SHAPE); /* x too small */
    cr_assert_eq(l.n, 0);
    cv.out_len = 7; /* fewer outputs: a smaller y suffices */
    cr_assert_eq(op_conv1d_len(&cv), 7);
    cr_assert_eq(op_conv1d(dev, &cv, B, B, (op_ref){0}, op_ref_sub(B, 0, 7 * 6 * 4), &l), VKF_OK, "%s", vkf_last_error(ctx));
    op_list_free(&l);
    /* the graph builder names the mismatch */
    graph *g = graph_create(dev->diag, GRAPH_F32);
    int x = graph_input(g, "x", GRAPH_F32, 3, (uint32_t[]){1, 10, 12});
    int w = graph_weight(g, "w", 3, (uint32_t[]){6, 4, 3});
    cr_assert_lt(graph_conv1d(g, "conv", x, w, -1, &(op_conv1d_params){.kernel = 3, .stride = 1, .groups = 2}), 0);
    cr_assert(strstr(vkf_last_error(ctx), "conv") != NULL, "%s", vkf_last_error(ctx));
    graph_destroy(g);
    g = graph_create(dev->diag, GRAPH_F32);
    x = graph_input(g, "x", GRAPH_F32, 3, (uint32_t[]){1, 10, 12});
    w = graph_weight(g, "w", 1, (uint32_t[]){12});
    cr_assert_lt(graph_groupnorm(g, "gn", x, w, w, 5, 1e-5f, OP_ACT_NONE), 0);
    cr_assert(strstr(vkf_last_error(ctx), "5 groups") != NULL, "%s", vkf_last_error(ctx));
    graph_destroy(g);
    vk_buf_free(dev, &big), vk_buf_free(dev, &small);
    tctx_destroy(ctx);
}

#define UP(ws, name, rank, shape, data) \
    cr_assert_eq(graph_weights_upload(ws, name, GRAPH_F32, rank, shape, data), VKF_OK, "%s", vkf_last_error(ctx))

/* wav2vec2's feature-encoder start and positional convolution as a graph:
 * conv (k10 s5, no bias) -> GroupNorm(groups = channels) + GELU -> grouped conv
 * with SamePad, equal to the same ops run eagerly. */
Test(conv, graph_nodes_equal_ops)
{
    vkf_context *ctx = tctx_create(tcaps());
    vk_device *dev = tctx_dev(ctx);
    enum { B = 2, L = 200, C = 16, K0 = 10, S0 = 5, KP = 8, G = 4, L1 = (L - K0) / S0 + 1, L2 = L1 };
    /* L2: pad KP/2 with an even kernel gives L1 + 1 outputs, SamePad drops one */
    float x[B * L], w0[C * K0], gw[C], gb[C], wp[C * (C / G) * KP], bp[C];
    uint64_t rng = 3;
    trand_fill(&rng, x, B * L, -1, 1);
    trand_fill(&rng, w0, C * K0, -0.5f, 0.5f);
    trand_fill(&rng, gw, C, 0.5f, 1.5f);
    trand_fill(&rng, gb, C, -0.5f, 0.5f);
    trand_fill(&rng, wp, BASE_ARRAY_LEN(wp), -0.3f, 0.3f);
    trand_fill(&rng, bp, C, -0.3f, 0.3f);
    graph_weights ws;
    graph_weights_init(&ws, dev);
    UP(&ws, "conv0.weight", 3, ((uint32_t[]){C, 1, K0}), w0);
    UP(&ws, "norm.weight", 1, ((uint32_t[]){C}), gw);
    UP(&ws, "norm.bias", 1, ((uint32_t[]){C}), gb);
    UP(&ws, "pos.weight", 3, ((uint32_t[]){C, C / G, KP}), wp);
    UP(&ws, "pos.bias", 1, ((uint32_t[]){C}), bp);
    graph *g = graph_create(dev->diag, GRAPH_F32);
    int gx = graph_input(g, "x", GRAPH_F32, 3, (uint32_t[]){B, L, 1});
    int c0 = graph_conv1d(g, "conv0", gx, graph_weight(g, "conv0.weight", 3, (uint32_t[]){C, 1, K0}), -1,
                          &(op_conv1d_params){.kernel = K0, .stride = S0, .groups = 1});
    int n0 = graph_groupnorm(g, "norm", c0, graph_weight(g, "norm.weight", 1, (uint32_t[]){C}),
                             graph_weight(g, "norm.bias", 1, (uint32_t[]){C}), C, 1e-5f, OP_ACT_GELU);
    int y = graph_conv1d(g, "pos", n0, graph_weight(g, "pos.weight", 3, (uint32_t[]){C, C / G, KP}),
                         graph_weight(g, "pos.bias", 1, (uint32_t[]){C}),
                         &(op_conv1d_params){.kernel = KP, .stride = 1, .pad = KP / 2, .groups = G, .out_len = L2, .act = OP_ACT_GELU});
    cr_assert_geq(y, 0, "%s", vkf_last_error(ctx));
    cr_assert_eq(g->t[y].shape[0], B);
    cr_assert_eq(g->t[y].shape[1], L2);
    cr_assert_eq(g->t[y].shape[2], C);
    graph_output(g, y);
    graph_exec *e;
    cr_assert_eq(graph_compile(dev, g, &ws, &(graph_compile_opts){.slots = 1}, &e), VKF_OK, "%s", vkf_last_error(ctx));
    static float got[B * L2 * C], want[B * L2 * C];
    uint32_t slot;
    cr_assert_eq(graph_exec_acquire(e, &slot), VKF_OK);
    cr_assert_eq(graph_exec_write(e, slot, gx, x, sizeof x), VKF_OK);
    cr_assert_eq(graph_exec_submit(e, slot), VKF_OK);
    cr_assert_eq(graph_exec_wait(e, slot), VKF_OK);
    cr_assert_eq(graph_exec_read(e, slot, y, got, sizeof got), VKF_OK);
    graph_exec_release(e, slot);

    vk_buf bx = tbuf_upload(dev, x, B * L, OP_F32), b1 = tbuf_alloc(dev, B * L1 * C, OP_F32), b2 = tbuf_alloc(dev, B * L1 * C, OP_F32);
    vk_buf by = tbuf_alloc(dev, B * L2 * C, OP_F32);
#define WREF(name) op_ref_of(&ws.bufs[graph_weights_find(&ws, name)->buf])
    op_list l = {0};
    op_conv1d_params p0 = {.batch = B, .len = L, .in_ch = 1, .out_ch = C, .kernel = K0, .stride = S0, .groups = 1};
    op_groupnorm_params pn = {.batch = B, .len = L1, .channels = C, .groups = C, .eps = 1e-5f, .act = OP_ACT_GELU};
    op_conv1d_params pp = {.batch = B, .len = L1, .in_ch = C, .out_ch = C, .kernel = KP, .stride = 1, .pad = KP / 2, .groups = G,
                           .out_len = L2, .act = OP_ACT_GELU};
    cr_assert_eq(op_conv1d(dev, &p0, op_ref_of(&bx), WREF("conv0.weight"), (op_ref){0}, op_ref_of(&b1), &l), VKF_OK);
    cr_assert_eq(op_groupnorm(dev, &pn, op_ref_of(&b1), WREF("norm.weight"), WREF("norm.bias"), op_ref_of(&b2), &l), VKF_OK);
    cr_assert_eq(op_conv1d(dev, &pp, op_ref_of(&b2), WREF("pos.weight"), WREF("pos.bias"), op_ref_of(&by), &l), VKF_OK);
    trun(ctx, &l);
    tbuf_download(dev, &by, want, B * L2 * C, OP_F32);
    cr_assert(memcmp(got, want, sizeof got) == 0, "graph and eager wav2vec2 convolutions differ");
    float m = 0;
    for (size_t i = 0; i < BASE_ARRAY_LEN(got); i++) m = fmaxf(m, fabsf(got[i]));
    cr_assert_gt(m, 0.1f, "the output is all but zero");
    vk_buf_free(dev, &bx), vk_buf_free(dev, &b1), vk_buf_free(dev, &b2), vk_buf_free(dev, &by);
    graph_exec_destroy(e);
    graph_weights_free(&ws);
    tctx_destroy(ctx);
}
