/* Text encoders end to end against HF: the golden BERT and DistilBERT
 * sequence classifiers (logits, last_hidden_state, pooler_output within 1e-4
 * in fp32, the same argmax in fp16), int64 and int32 inputs, padding to a
 * sequence bucket, and the errors a caller's tensors can cause. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN VKF_TEST_DATA "/golden"

static void *read_bin(const char *path, size_t bytes)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s missing", path);
    void *x = malloc(bytes);
    cr_assert_eq(fread(x, 1, bytes, f), bytes, "%s is short", path);
    fclose(f);
    return x;
}

static vkf_model *load(vkf_context *ctx, const char *dir, vkf_precision p)
{
    vkf_model *m = NULL;
    vkf_model_desc d = {.precision = p};
    vkf_status s = vkf_model_load(ctx, dir, &d, &m);
    cr_assert_eq(s, VKF_OK, "%s", vkf_last_error(ctx));
    return m;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]));
    return w;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* One golden case: S tokens, H hidden, L labels; token types and pooler for BERT. */
static void check_golden(const char *name, bool bert, vkf_precision p)
{
    enum { S = 13, H = 64, L = 3 };
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/%s", GOLDEN, name);
    vkf_context *ctx = tctx_create(tcaps());
    if (p == VKF_FP16 && !ctx->dev->caps.storage16) {
        tctx_destroy(ctx);
        return;
    }
    vkf_model *m = load(ctx, dir, p);
    vkf_model_info info;
    cr_assert_eq(vkf_model_get_info(m, &info), VKF_OK);
    cr_expect_str_eq(info.task, "text-classification");
    cr_expect_str_eq(info.type, name);
    cr_expect_eq(info.num_labels, L);
    cr_expect_eq(info.vocab_size, 500);
    cr_expect_eq(info.max_positions, 64);
    snprintf(path, sizeof path, "%s/input_ids.bin", dir);
    int32_t *ids = read_bin(path, S * 4);
    snprintf(path, sizeof path, "%s/attention_mask.bin", dir);
    int32_t *mask = read_bin(path, S * 4);
    int32_t *tt = NULL;
    if (bert) {
        snprintf(path, sizeof path, "%s/token_type_ids.bin", dir);
        tt = read_bin(path, S * 4);
    }
    snprintf(path, sizeof path, "%s/logits.bin", dir);
    float *want_logits = read_bin(path, L * 4);
    snprintf(path, sizeof path, "%s/last_hidden_state.bin", dir);
    float *want_last = read_bin(path, S * H * 4);
    float *want_pool = NULL;
    if (bert) {
        snprintf(path, sizeof path, "%s/pooler_output.bin", dir);
        want_pool = read_bin(path, H * 4);
    }
    /* int64 ids, as numpy and torch hand them over */
    int64_t ids64[S];
    for (int i = 0; i < S; i++) ids64[i] = ids[i];
    vkf_tensor in[3] = {
        {.name = "input_ids", .rank = 2, .shape = {1, S}, .data = ids64, .dtype = VKF_I64},
        {.name = "attention_mask", .rank = 2, .shape = {1, S}, .data = mask, .dtype = VKF_I32},
        {.name = "token_type_ids", .rank = 2, .shape = {1, S}, .data = tt, .dtype = VKF_I32},
    };
    float logits[L], last[S * H], pooled[H];
    vkf_tensor out[3] = {
        {.name = "logits", .data = logits, .capacity = sizeof logits},
        {.name = "last_hidden_state", .data = last, .capacity = sizeof last},
        {.name = "pooler_output", .data = pooled, .capacity = sizeof pooled},
    };
    vkf_status s = vkf_model_run(m, in, bert ? 3 : 2, out, bert ? 3 : 2);
    cr_assert_eq(s, VKF_OK, "%s", vkf_last_error(ctx));
    cr_expect(out[0].rank == 2 && out[0].shape[0] == 1 && out[0].shape[1] == L);
    cr_expect(out[1].rank == 3 && out[1].shape[1] == S && out[1].shape[2] == H, "last_hidden_state is [%u, %u, %u]",
              out[1].shape[0], out[1].shape[1], out[1].shape[2]);
    if (p == VKF_FP32) {
        double dl = max_diff(logits, want_logits, L), dh = max_diff(last, want_last, S * H);
        cr_expect_leq(dl, 1e-4, "%s logits differ from HF by %g", name, dl);
        cr_expect_leq(dh, 1e-4, "%s last_hidden_state differs from HF by %g", name, dh);
        if (bert) {
            double dp = max_diff(pooled, want_pool, H);
            cr_expect_leq(dp, 1e-4, "%s pooler_output differs from HF by %g", name, dp);
        }
    } else {
        cr_expect_eq(argmax(logits, L), argmax(want_logits, L), "%s fp16: another class", name);
        double dh = max_diff(last, want_last, S * H);
        cr_expect_leq(dh, 5e-2, "%s fp16 last_hidden_state differs from HF by %g", name, dh);
    }
    free(ids), free(mask), free(tt), free(want_logits), free(want_last), free(want_pool);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

Test(bert, golden_fp32, .timeout = 300) { check_golden("bert", true, VKF_FP32); }
Test(bert, golden_fp16, .timeout = 300) { check_golden("bert", true, VKF_FP16); }
Test(distilbert, golden_fp32, .timeout = 300) { check_golden("distilbert", false, VKF_FP32); }
Test(distilbert, golden_fp16, .timeout = 300) { check_golden("distilbert", false, VKF_FP16); }

/* Bad tensors: each a clear error, never a GPU read out of bounds. */
Test(bert, bad_inputs, .timeout = 300)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, GOLDEN "/bert", VKF_FP32);
    int32_t ids[4] = {101, 7, 500, 102}, mask[4] = {1, 1, 1, 1}, big[70] = {0};
    float logits[3];
    vkf_tensor out = {.name = "logits", .data = logits, .capacity = sizeof logits};
    vkf_tensor in = {.name = "input_ids", .rank = 2, .shape = {1, 4}, .data = ids, .dtype = VKF_I32};
    cr_expect_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(ctx), "input_ids[0][2] = 500 is outside [0, 500)"), "%s", vkf_last_error(ctx));
    ids[2] = 5;
    vkf_tensor two[2] = {in, {.name = "attention_mask", .rank = 2, .shape = {1, 3}, .data = mask, .dtype = VKF_I32}};
    cr_expect_eq(vkf_model_run(m, two, 2, &out, 1), VKF_ERROR_SHAPE);
    cr_expect(strstr(vkf_last_error(ctx), "attention_mask must be [1, 4]"), "%s", vkf_last_error(ctx));
    two[1].shape[1] = 4;
    two[1].dtype = VKF_F32;
    cr_expect_eq(vkf_model_run(m, two, 2, &out, 1), VKF_ERROR_SHAPE);
    cr_expect(strstr(vkf_last_error(ctx), "int32 or int64"), "%s", vkf_last_error(ctx));
    vkf_tensor longer = {.name = "input_ids", .rank = 2, .shape = {1, 70}, .data = big, .dtype = VKF_I32};
    cr_expect_eq(vkf_model_run(m, &longer, 1, &out, 1), VKF_ERROR_SHAPE);
    cr_expect(strstr(vkf_last_error(ctx), "70 tokens is more than this model's 64 positions"), "%s", vkf_last_error(ctx));
    vkf_tensor px = {.name = "pixel_values", .rank = 4, .shape = {1, 3, 8, 8}, .data = big};
    cr_expect_eq(vkf_model_run(m, &px, 1, &out, 1), VKF_ERROR_INVALID_ARGUMENT);
    cr_expect(strstr(vkf_last_error(ctx), "\"pixel_values\" is not one of input_ids"), "%s", vkf_last_error(ctx));
    vkf_tensor wrong_out = {.name = "pooled", .data = logits, .capacity = sizeof logits};
    cr_expect_eq(vkf_model_run(m, &in, 1, &wrong_out, 1), VKF_ERROR_NOT_FOUND);
    cr_expect(strstr(vkf_last_error(ctx), "no output \"pooled\" (last_hidden_state, pooler_output, logits)"), "%s", vkf_last_error(ctx));
    out.capacity = 8;
    cr_expect_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_ERROR_SHAPE);
    /* and then a good run */
    out.capacity = sizeof logits;
    cr_expect_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}
