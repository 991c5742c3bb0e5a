/* matmul against a float64 reference: every variant, both weight layouts,
 * epilogues, batches, shape sweeps, real model shapes, windowed weights. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mm_case {
    uint32_t M, K, N, batch;
    op_w_layout layout;
    bool bias, residual, w_batched;
    op_act act;
} mm_case;

/* Runs one case with one variant; returns nmse (also asserts the bound). */
static double run_case(vkf_context *ctx, mm_case c, op_matmul_variant v, op_dtype dt)
{
    vk_device *dev = tctx_dev(ctx);
    uint32_t B = c.batch ? c.batch : 1;
    size_t nx = (size_t)B * c.M * c.K, nw = (size_t)(c.w_batched ? B : 1) * c.K * c.N, ny = (size_t)B * c.M * c.N;
    uint64_t rng = 0x1234567 + c.M * 131 + c.K * 7 + c.N;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *bias = malloc(c.N * 4), *res = malloc(ny * 4), *y = malloc(ny * 4);
    double *ref = malloc(ny * 8);
    float scale = 1.0f / sqrtf((float)c.K);
    trand_fill(&rng, x, nx, -1, 1);
    trand_fill(&rng, w, nw, -scale * 1.7f, scale * 1.7f);
    trand_fill(&rng, bias, c.N, -0.5f, 0.5f);
    trand_fill(&rng, res, ny, -1, 1);
    tround(x, nx, dt);
    tround(w, nw, dt);
    tround(bias, c.N, dt);
    tround(res, ny, dt);
    for (uint32_t b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * c.M * c.K, *wb = w + (c.w_batched ? (size_t)b * c.K * c.N : 0);
        for (uint32_t m = 0; m < c.M; m++)
            for (uint32_t n = 0; n < c.N; n++) {
                double s = 0;
                for (uint32_t k = 0; k < c.K; k++)
                    s += (double)xb[(size_t)m * c.K + k] *
                         (c.layout == OP_W_NT ? wb[(size_t)n * c.K + k] : wb[(size_t)k * c.N + n]);
                if (c.bias) s += bias[n];
                s = tref_act(c.act, s);
                size_t i = ((size_t)b * c.M + m) * c.N + n;
                if (c.residual) s += res[i];
                ref[i] = s;
            }
    }
    vk_buf bx = tbuf_upload(dev, x, nx, dt), bw = tbuf_upload(dev, w, nw, dt), bb = tbuf_upload(dev, bias, c.N, dt);
    vk_buf br = tbuf_upload(dev, res, ny, dt), by = tbuf_alloc(dev, ny, dt);
    op_matmul_params p = {
        .M = c.M, .N = c.N, .K = c.K, .batch = B, .layout = c.layout, .bias = c.bias, .residual = c.residual,
        .act = c.act, .dtype = dt, .variant = v, .sw = c.w_batched ? (uint64_t)c.K * c.N : 0,
    };
    op_list l = {0};
    vkf_status s = op_matmul(dev, &p, op_ref_of(&bx), op_ref_of(&bw), op_ref_of(&bb), op_ref_of(&br), op_ref_of(&by), &l);
    cr_assert_eq(s, VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(op_list_run(dev, &l), VKF_OK, "%s", vkf_last_error(ctx));
    tbuf_download(dev, &by, y, ny, dt);
    double e = nmse_f32(y, ref, ny);
    double bound = dt == OP_F16 ? NMSE_F16 : NMSE_F32;
    cr_assert_leq(e, bound, "%s %s %ux%ux%u b%u layout %d bias %d act %d res %d: nmse %g (%zu dispatches)",
                  op_matmul_variant_name(op_matmul_choose(dev, &p)), dt == OP_F16 ? "f16" : "f32", c.M, c.K, c.N, B,
                  c.layout, c.bias, c.act, c.residual, e, l.n);
    op_list_free(&l);
    vk_buf_free(dev, &bx);
    vk_buf_free(dev, &bw);
    vk_buf_free(dev, &bb);
    vk_buf_free(dev, &br);
    vk_buf_free(dev, &by);
    free(x);
    free(w);
    free(bias);
    free(res);
    free(y);
    free(ref);
    return e;
}

static const op_matmul_variant variants[] = {OP_MATMUL_AUTO, OP_MATMUL_CPU, OP_MATMUL_TILED, OP_MATMUL_SMALL};

static bool variant_usable(vk_device *dev, op_matmul_variant v, uint32_t M)
{
    if (v == OP_MATMUL_SMALL) return M <= 8;
    if (v == OP_MATMUL_CPU) return dev->real.subgroup_max >= 8 && dev->caps.max_texel_buffer_elements >= 65536;
    return true;
}

static void run_all(vkf_context *ctx, mm_case c, op_dtype dt)
{
    for (size_t i = 0; i < BASE_ARRAY_LEN(variants); i++)
        if (variant_usable(tctx_dev(ctx), variants[i], c.M)) run_case(ctx, c, variants[i], dt);
}

static bool have_f16(vkf_context *ctx) { return ctx->dev->caps.storage16; }

Test(matmul, sweep_odd_shapes)
{
    vkf_context *ctx = tctx_create(tcaps());
    static const uint32_t dims[] = {1, 3, 17, 197};
    int i = 0;
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 4; b++)
            for (size_t c = 0; c < 4; c++, i++) {
                mm_case mc = {.M = dims[a], .K = dims[b], .N = dims[c], .layout = (op_w_layout)(i % 2),
                              .bias = i % 3 != 0, .residual = i % 4 == 1, .act = (op_act)(i % 6)};
                run_all(ctx, mc, OP_F32);
                if (i % 3 == 0 && have_f16(ctx)) run_all(ctx, mc, OP_F16);
            }
    tctx_destroy(ctx);
}

Test(matmul, sweep_771)
{
    vkf_context *ctx = tctx_create(tcaps());
    mm_case cases[] = {
        {.M = 771, .K = 771, .N = 17, .layout = OP_W_NT, .bias = true},
        {.M = 17, .K = 771, .N = 771, .layout = OP_W_NN, .bias = true, .act = OP_ACT_GELU},
        {.M = 197, .K = 771, .N = 197, .layout = OP_W_NT, .residual = true},
        {.M = 771, .K = 17, .N = 771, .layout = OP_W_NN, .act = OP_ACT_GELU_TANH},
        {.M = 3, .K = 771, .N = 771, .layout = OP_W_NT, .bias = true, .act = OP_ACT_QUICK_GELU},
        {.M = 19, .K = 64, .N = 96, .layout = OP_W_NT, .bias = true, .act = OP_ACT_SILU},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(cases); i++) {
        run_all(ctx, cases[i], OP_F32);
        if (have_f16(ctx)) run_case(ctx, cases[i], OP_MATMUL_AUTO, OP_F16);
    }
    tctx_destroy(ctx);
}

Test(matmul, batched_and_strided)
{
    vkf_context *ctx = tctx_create(tcaps());
    mm_case shared_w = {.M = 17, .K = 64, .N = 33, .batch = 3, .layout = OP_W_NT, .bias = true, .residual = true};
    mm_case own_w = {.M = 9, .K = 20, .N = 12, .batch = 4, .layout = OP_W_NN, .w_batched = true, .act = OP_ACT_GELU};
    run_all(ctx, shared_w, OP_F32);
    run_all(ctx, own_w, OP_F32);
    if (have_f16(ctx)) run_all(ctx, own_w, OP_F16);
    tctx_destroy(ctx);
}

/* ViT-B/16, BERT-base at sequence 128, GPT-2 decode. */
Test(matmul, real_model_shapes, .timeout = 600)
{
    vkf_context *ctx = tctx_create(tcaps());
    mm_case cases[] = {
        {.M = 197, .K = 768, .N = 768, .layout = OP_W_NT, .bias = true, .residual = true},
        {.M = 197, .K = 768, .N = 3072, .layout = OP_W_NT, .bias = true, .act = OP_ACT_GELU},
        {.M = 197, .K = 3072, .N = 768, .layout = OP_W_NT, .bias = true, .residual = true},
        {.M = 128, .K = 768, .N = 3072, .layout = OP_W_NT, .bias = true, .act = OP_ACT_GELU},
        {.M = 1, .K = 768, .N = 2304, .layout = OP_W_NN, .bias = true},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(cases); i++) {
        run_case(ctx, cases[i], OP_MATMUL_AUTO, OP_F32);
        if (have_f16(ctx)) run_case(ctx, cases[i], OP_MATMUL_AUTO, OP_F16);
    }
    tctx_destroy(ctx);
}

/* GPT-2's LM head: W = wte [50257, 768] is 154 MB in fp32, beyond the 128 MiB
 * that lavapipe (and many phones) allow one storage binding. */
Test(matmul, lm_head_larger_than_binding_range, .timeout = 600)
{
    vkf_context *ctx = tctx_create(tcaps());
    mm_case c = {.M = 1, .K = 768, .N = 50257, .layout = OP_W_NT};
    for (size_t i = 0; i < BASE_ARRAY_LEN(variants); i++)
        if (variant_usable(tctx_dev(ctx), variants[i], c.M)) run_case(ctx, c, variants[i], OP_F32);
    tctx_destroy(ctx);
}

/* Tiny binding limits force M, N and K windows on small shapes. */
Test(matmul, windows_under_tiny_binding_limits)
{
    vkf_context *ctx = tctx_create("max_range=4096,max_texels=1024");
    mm_case cases[] = {
        {.M = 40, .K = 64, .N = 100, .layout = OP_W_NT, .bias = true, .residual = true, .act = OP_ACT_GELU},
        {.M = 40, .K = 100, .N = 64, .layout = OP_W_NN, .bias = true, .residual = true, .act = OP_ACT_GELU},
        {.M = 5, .K = 96, .N = 70, .layout = OP_W_NN, .bias = true, .act = OP_ACT_TANH},
        {.M = 30, .K = 16, .N = 24, .batch = 5, .layout = OP_W_NT, .bias = true},
    };
    for (size_t i = 0; i < BASE_ARRAY_LEN(cases); i++) run_all(ctx, cases[i], OP_F32);
    tctx_destroy(ctx);
}

Test(matmul, rejects_bad_shapes)
{
    vkf_context *ctx = tctx_create(NULL);
    vk_device *dev = tctx_dev(ctx);
    vk_buf small = tbuf_alloc(dev, 10, OP_F32);
    op_list l = {0};
    op_matmul_params p = {.M = 4, .N = 4, .K = 4};
    op_ref r = op_ref_of(&small);
    cr_assert_eq(op_matmul(dev, &p, r, r, (op_ref){0}, (op_ref){0}, r, &l), VKF_ERROR_SHAPE);
    cr_assert(strstr(vkf_last_error(ctx), "X holds 40 bytes, needs 64"), "%s", vkf_last_error(ctx));
    p.M = 0;
    cr_assert_eq(op_matmul(dev, &p, r, r, (op_ref){0}, (op_ref){0}, r, &l), VKF_ERROR_SHAPE);
    cr_assert_eq(l.n, 0);
    vk_buf_free(dev, &small);
    tctx_destroy(ctx);
}
