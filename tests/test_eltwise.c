/* Elementwise ops against a float64 reference, fp32 and fp16 storage. */
#include "common.h"

#include <math.h>
#include <stdlib.h>

static double ref(const op_eltwise_params *p, double a, double b)
{
    switch (p->kind) {
    case OP_FILL: return p->value;
    case OP_ADD: return a + b;
    case OP_MUL: return a * b;
    case OP_ACT: return tref_act(p->act, a);
    default: return a * p->value;
    }
}

static void check(vkf_context *ctx, op_eltwise_params p, float lo, float hi)
{
    vk_device *dev = tctx_dev(ctx);
    size_t n = p.n;
    uint64_t rng = 1234 + n;
    float *a = malloc(n * 4), *b = malloc(n * 4), *y = malloc(n * 4);
    double *r = malloc(n * 8);
    trand_fill(&rng, a, n, lo, hi);
    trand_fill(&rng, b, n, lo, hi);
    tround(a, n, p.dtype);
    tround(b, n, p.dtype);
    for (size_t i = 0; i < n; i++) r[i] = ref(&p, a[i], b[i]);
    vk_buf ba = tbuf_upload(dev, a, n, p.dtype), bb = tbuf_upload(dev, b, n, p.dtype), by = tbuf_alloc(dev, n, p.dtype);
    op_list l = {0};
    cr_assert_eq(op_eltwise(dev, &p, op_ref_of(&ba), op_ref_of(&bb), op_ref_of(&by), &l), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(op_list_run(dev, &l), VKF_OK, "%s", vkf_last_error(ctx));
    tbuf_download(dev, &by, y, n, p.dtype);
    double e = nmse_f32(y, r, n);
    double bound = p.dtype == OP_F16 ? NMSE_F16 : NMSE_F32;
    if (p.kind == OP_FILL && p.dtype == OP_F32) bound = 0;
    cr_assert_leq(e, bound, "kind %d act %d n %zu dtype %d: nmse %g", p.kind, p.act, n, p.dtype, e);
    op_list_free(&l);
    vk_buf_free(dev, &ba);
    vk_buf_free(dev, &bb);
    vk_buf_free(dev, &by);
    free(a);
    free(b);
    free(y);
    free(r);
}

static const uint64_t sizes[] = {1, 3, 17, 197, 771, 4096, 100003};

Test(eltwise, all_kinds_all_sizes)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int t = 0; t < 2; t++) {
        op_dtype dt = (op_dtype)t;
        if (dt == OP_F16 && !ctx->dev->caps.storage16) continue;
        for (size_t s = 0; s < BASE_ARRAY_LEN(sizes); s++) {
            uint64_t n = sizes[s];
            check(ctx, (op_eltwise_params){.kind = OP_FILL, .value = 0.375f, .n = n, .dtype = dt}, -1, 1);
            check(ctx, (op_eltwise_params){.kind = OP_ADD, .n = n, .dtype = dt}, -3, 3);
            check(ctx, (op_eltwise_params){.kind = OP_MUL, .n = n, .dtype = dt}, -3, 3);
            check(ctx, (op_eltwise_params){.kind = OP_SCALE, .value = -1.5f, .n = n, .dtype = dt}, -3, 3);
            for (int act = OP_ACT_GELU; act <= OP_ACT_SILU; act++)
                check(ctx, (op_eltwise_params){.kind = OP_ACT, .act = (op_act)act, .n = n, .dtype = dt}, -8, 8);
        }
    }
    tctx_destroy(ctx);
}

Test(eltwise, activations_stay_finite_at_extremes)
{
    vkf_context *ctx = tctx_create(tcaps());
    for (int act = OP_ACT_GELU; act <= OP_ACT_SILU; act++)
        check(ctx, (op_eltwise_params){.kind = OP_ACT, .act = (op_act)act, .n = 1000}, -1e4f, 1e4f);
    tctx_destroy(ctx);
}

Test(eltwise, rejects_short_buffers)
{
    vkf_context *ctx = tctx_create(NULL);
    vk_device *dev = tctx_dev(ctx);
    vk_buf y = tbuf_alloc(dev, 10, OP_F32);
    op_list l = {0};
    op_eltwise_params p = {.kind = OP_FILL, .n = 11};
    cr_assert_eq(op_eltwise(dev, &p, (op_ref){0}, (op_ref){0}, op_ref_of(&y), &l), VKF_ERROR_SHAPE);
    cr_assert_eq(l.n, 0);
    vk_buf_free(dev, &y);
    tctx_destroy(ctx);
}
