/* softmax and LayerNorm against float64, masks, fp16 storage with large magnitudes. */
#include "common.h"

#include <math.h>
#include <stdlib.h>

static void check_softmax(vkf_context *ctx, op_softmax_params p, float amp, const int32_t *lens, size_t n_lens)
{
    vk_device *dev = tctx_dev(ctx);
    size_t n = (size_t)p.rows * p.cols;
    uint64_t rng = 77 + n;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    double *ref = malloc(n * 8);
    trand_fill(&rng, x, n, -amp, amp);
    tround(x, n, p.dtype);
    double scale = p.scale != 0 ? p.scale : 1.0;
    for (uint32_t r = 0; r < p.rows; r++) {
        uint32_t valid = p.cols;
        if (p.causal) valid = BASE_MIN(valid, p.q_pos + r % p.q_len + 1);
        if (p.key_lengths) valid = BASE_MIN(valid, (uint32_t)BASE_MAX(lens[p.len_index + r / p.rows_per_batch], 0));
        double m = -INFINITY, s = 0;
        for (uint32_t j = 0; j < valid; j++) { /* not fmax: GCC 12 aarch64 crashes vectorising it (see base_max_f32) */
            double v = scale * x[(size_t)r * p.cols + j];
            if (v > m) m = v;
        }
        for (uint32_t j = 0; j < valid; j++) s += exp(scale * x[(size_t)r * p.cols + j] - m);
        for (uint32_t j = 0; j < p.cols; j++)
            ref[(size_t)r * p.cols + j] = j < valid ? exp(scale * x[(size_t)r * p.cols + j] - m) / s : 0.0;
    }
    vk_buf bx = tbuf_upload(dev, x, n, p.dtype), by = tbuf_alloc(dev, n, p.dtype);
    vk_buf bm = tbuf_upload_i32(dev, lens ? lens : (int32_t[]){0}, lens ? n_lens : 1);
    op_list l = {0};
    cr_assert_eq(op_softmax(dev, &p, op_ref_of(&bx), op_ref_of(&bm), op_ref_of(&by), &l), VKF_OK, "%s", vkf_last_error(ctx));
    trun(ctx, &l);
    tbuf_download(dev, &by, y, n, p.dtype);
    for (size_t i = 0; i < n; i++) cr_assert(isfinite(y[i]), "non-finite output at %zu", i);
    double e = nmse_f32(y, ref, n);
    cr_assert_leq(e, p.dtype == OP_F16 ? NMSE_F16 : NMSE_F32, "softmax %ux%u amp %g causal %d: nmse %g", p.rows,
                  p.cols, (double)amp, p.causal, e);
    vk_buf_free(dev, &bx);
    vk_buf_free(dev, &by);
    vk_buf_free(dev, &bm);
    free(x);
    free(y);
    free(ref);
}

static const uint32_t lens_sweep[] = {1, 3, 17, 197, 771};

Test(softmax, shapes_and_precisions)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        for (size_t i = 0; i < BASE_ARRAY_LEN(lens_sweep); i++)
            for (size_t j = 0; j < BASE_ARRAY_LEN(lens_sweep); j += 2)
                check_softmax(ctx, (op_softmax_params){.rows = lens_sweep[j], .cols = lens_sweep[i], .scale = 0.125f, .dtype = dt}, 8, NULL, 0);
        /* BERT/ViT-B attention scores: [12 x 197 x 197], magnitudes up to 1e4 */
        check_softmax(ctx, (op_softmax_params){.rows = 12 * 197, .cols = 197, .dtype = dt}, 1e4f, NULL, 0);
    }
    tctx_destroy(ctx);
}

Test(softmax, masks)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        /* causal over 2 heads x 17 queries, then decode-style queries at position 10 */
        check_softmax(ctx, (op_softmax_params){.rows = 34, .cols = 17, .causal = true, .q_len = 17, .dtype = dt}, 4, NULL, 0);
        check_softmax(ctx, (op_softmax_params){.rows = 6, .cols = 13, .causal = true, .q_len = 3, .q_pos = 10, .dtype = dt}, 4, NULL, 0);
        /* key padding: 3 sequences, 2 heads x 5 queries each; one fully masked */
        int32_t lens[] = {99, 5, 0, 2};
        check_softmax(ctx, (op_softmax_params){.rows = 30, .cols = 9, .key_lengths = true, .rows_per_batch = 10, .len_index = 1, .dtype = dt}, 4, lens, 4);
        check_softmax(ctx, (op_softmax_params){.rows = 30, .cols = 9, .key_lengths = true, .causal = true, .q_len = 5, .q_pos = 4, .rows_per_batch = 10, .len_index = 1, .dtype = dt}, 4, lens, 4);
    }
    tctx_destroy(ctx);
}

static void check_layernorm(vkf_context *ctx, op_layernorm_params p, float center, float spread)
{
    vk_device *dev = tctx_dev(ctx);
    size_t n = (size_t)p.rows * p.cols;
    uint64_t rng = 99 + n;
    float *x = malloc(n * 4), *r = malloc(n * 4), *w = malloc(p.cols * 4), *b = malloc(p.cols * 4);
    float *y = malloc(n * 4), *s = malloc(n * 4);
    double *ref = malloc(n * 8), *ref_sum = malloc(n * 8);
    trand_fill(&rng, x, n, center - spread, center + spread);
    trand_fill(&rng, r, n, -spread, spread);
    trand_fill(&rng, w, p.cols, 0.5f, 1.5f);
    trand_fill(&rng, b, p.cols, -0.5f, 0.5f);
    tround(x, n, p.dtype);
    tround(r, n, p.dtype);
    tround(w, p.cols, p.dtype);
    tround(b, p.cols, p.dtype);
    for (uint32_t i = 0; i < p.rows; i++) {
        double mean = 0, var = 0;
        for (uint32_t j = 0; j < p.cols; j++) {
            size_t k = (size_t)i * p.cols + j;
            ref_sum[k] = (double)x[k] + (p.residual ? r[k] : 0.0);
            mean += ref_sum[k];
        }
        mean /= p.cols;
        if (p.rms) mean = 0; /* T5: the mean of squares, no bias */
        for (uint32_t j = 0; j < p.cols; j++) var += (ref_sum[(size_t)i * p.cols + j] - mean) * (ref_sum[(size_t)i * p.cols + j] - mean);
        var /= p.cols;
        for (uint32_t j = 0; j < p.cols; j++) {
            size_t k = (size_t)i * p.cols + j;
            ref[k] = (ref_sum[k] - mean) / sqrt(var + p.eps) * w[j] + (p.rms ? 0.0 : b[j]);
        }
    }
    vk_buf bx = tbuf_upload(dev, x, n, p.dtype), br = tbuf_upload(dev, r, n, p.dtype), bw = tbuf_upload(dev, w, p.cols, p.dtype);
    vk_buf bb = tbuf_upload(dev, b, p.cols, p.dtype), bs = tbuf_alloc(dev, n, p.dtype), by = tbuf_alloc(dev, n, p.dtype);
    op_list l = {0};
    cr_assert_eq(op_layernorm(dev, &p, op_ref_of(&bx), op_ref_of(&br), op_ref_of(&bw), p.rms ? (op_ref){0} : op_ref_of(&bb), op_ref_of(&bs),
                              op_ref_of(&by), &l),
                 VKF_OK, "%s", vkf_last_error(ctx));
    trun(ctx, &l);
    tbuf_download(dev, &by, y, n, p.dtype);
    double bound = p.dtype == OP_F16 ? NMSE_F16 : NMSE_F32;
    double e = nmse_f32(y, ref, n);
    cr_assert_leq(e, bound, "layernorm %ux%u center %g res %d: nmse %g", p.rows, p.cols, (double)center, p.residual, e);
    if (p.write_sum) {
        tbuf_download(dev, &bs, s, n, p.dtype);
        double es = nmse_f32(s, ref_sum, n);
        cr_assert_leq(es, bound, "layernorm residual sum: nmse %g", es);
    }
    vk_buf_free(dev, &bx);
    vk_buf_free(dev, &br);
    vk_buf_free(dev, &bw);
    vk_buf_free(dev, &bb);
    vk_buf_free(dev, &bs);
    vk_buf_free(dev, &by);
    free(x);
    free(r);
    free(w);
    free(b);
    free(y);
    free(s);
    free(ref);
    free(ref_sum);
}

Test(layernorm, shapes_residual_precisions)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        for (size_t i = 0; i < BASE_ARRAY_LEN(lens_sweep); i++) {
            uint32_t cols = lens_sweep[i];
            if (cols == 1) continue; /* variance 0: output is the bias, checked below */
            check_layernorm(ctx, (op_layernorm_params){.rows = 17, .cols = cols, .eps = 1e-5f, .dtype = dt}, 0, 2);
            check_layernorm(ctx, (op_layernorm_params){.rows = 3, .cols = cols, .eps = 1e-12f, .residual = true, .write_sum = true, .dtype = dt}, 0.5f, 3);
        }
        /* ViT-B: [197 x 768], pre-LN with the residual stream written back */
        check_layernorm(ctx, (op_layernorm_params){.rows = 197, .cols = 768, .eps = 1e-6f, .residual = true, .write_sum = true, .dtype = dt}, 0, 4);
        /* magnitudes up to 1e4: a large mean that E[x^2] - E[x]^2 would cancel */
        check_layernorm(ctx, (op_layernorm_params){.rows = 64, .cols = 768, .eps = 1e-5f, .dtype = dt}, 1e4f, dt == OP_F16 ? 64 : 1);
    }
    check_layernorm(ctx, (op_layernorm_params){.rows = 5, .cols = 1, .eps = 1e-5f}, 0, 1);
    tctx_destroy(ctx);
}

/* T5's RMS norm (no mean, no bias), with and without the residual stream. */
Test(layernorm, rms)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        for (size_t i = 0; i < BASE_ARRAY_LEN(lens_sweep); i++)
            check_layernorm(ctx, (op_layernorm_params){.rows = 7, .cols = lens_sweep[i], .eps = 1e-6f, .rms = true, .dtype = dt}, 0.3f, 2);
        check_layernorm(ctx, (op_layernorm_params){.rows = 19, .cols = 512, .eps = 1e-6f, .residual = true, .write_sum = true, .rms = true,
                                                   .dtype = dt}, 0, 4);
    }
    tctx_destroy(ctx);
}

Test(layernorm, in_place_residual_stream)
{
    /* h = x + r written over x itself, as the encoder does with its stream. */
    vkf_context *ctx = tctx_create(tcaps());
    vk_device *dev = tctx_dev(ctx);
    enum { R = 9, C = 64 };
    float x[R * C], r[R * C], w[C], b[C], y[R * C], h[R * C];
    uint64_t rng = 5;
    trand_fill(&rng, x, R * C, -2, 2);
    trand_fill(&rng, r, R * C, -2, 2);
    for (int j = 0; j < C; j++) w[j] = 1, b[j] = 0;
    vk_buf bx = tbuf_upload(dev, x, R * C, OP_F32), br = tbuf_upload(dev, r, R * C, OP_F32);
    vk_buf bw = tbuf_upload(dev, w, C, OP_F32), bb = tbuf_upload(dev, b, C, OP_F32), by = tbuf_alloc(dev, R * C, OP_F32);
    op_list l = {0};
    op_layernorm_params p = {.rows = R, .cols = C, .eps = 1e-6f, .residual = true, .write_sum = true};
    cr_assert_eq(op_layernorm(dev, &p, op_ref_of(&bx), op_ref_of(&br), op_ref_of(&bw), op_ref_of(&bb), op_ref_of(&bx), op_ref_of(&by), &l), VKF_OK);
    trun(ctx, &l);
    tbuf_download(dev, &bx, h, R * C, OP_F32);
    tbuf_download(dev, &by, y, R * C, OP_F32);
    for (int i = 0; i < R * C; i++) cr_assert_float_eq(h[i], x[i] + r[i], 1e-6);
    for (int i = 0; i < R; i++) {
        double m = 0;
        for (int j = 0; j < C; j++) m += y[i * C + j];
        cr_assert_float_eq(m / C, 0.0, 1e-5);
    }
    vk_buf_free(dev, &bx);
    vk_buf_free(dev, &br);
    vk_buf_free(dev, &bw);
    vk_buf_free(dev, &bb);
    vk_buf_free(dev, &by);
    tctx_destroy(ctx);
}
