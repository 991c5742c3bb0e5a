/* ViT end to end: the HF golden case, the bundled real checkpoint on real
 * photos, fp16 storage, batching, the tensor-level API. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN VKF_TEST_DATA "/golden/vit"
#define BUNDLED VKF_REPO_DIR "/models/vit-tiny-patch16-224"
#define IMAGES VKF_TEST_DATA "/images"

static float *read_bin(const char *path, size_t expect_floats) { return tread_file(path, expect_floats * 4); }
#define load tload_model

Test(vit, golden_logits_fp32, .timeout = 300)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, GOLDEN, VKF_FP32);
    float *px = read_bin(GOLDEN "/pixel_values.bin", 3 * 64 * 64);
    float *want = read_bin(GOLDEN "/logits.bin", 10);
    float *want_last = read_bin(GOLDEN "/last_hidden_state.bin", 17 * 64);
    float logits[10], last[17 * 64];
    vkf_tensor in = {.name = "pixel_values", .rank = 4, .shape = {1, 3, 64, 64}, .data = px, .capacity = 0};
    vkf_tensor out[2] = {{.name = "logits", .rank = 0, .shape = {0}, .data = logits, .capacity = sizeof logits}, {.name = "last_hidden_state", .rank = 0, .shape = {0}, .data = last, .capacity = sizeof last}};
    cr_assert_eq(vkf_model_run(m, &in, 1, out, 2), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(out[0].rank, 2);
    cr_assert_eq(out[0].shape[1], 10);
    cr_assert_eq(out[1].shape[1], 17);
    double worst = max_abs_diff_f32(logits, want, 10), worst_last = max_abs_diff_f32(last, want_last, 17 * 64);
    cr_assert_leq(worst, 1e-4, "logits differ from HF by up to %g", worst);
    cr_assert_leq(worst_last, 1e-4, "last_hidden_state differs from HF by up to %g", worst_last);
    free(px);
    free(want);
    free(want_last);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

Test(vit, golden_argmax_fp16)
{
    vkf_context *ctx = tctx_create(tcaps());
    if (!ctx->dev->caps.storage16) {
        tctx_destroy(ctx);
        cr_skip_test("no 16-bit storage");
    }
    vkf_model *m = load(ctx, GOLDEN, VKF_FP16);
    float *px = read_bin(GOLDEN "/pixel_values.bin", 3 * 64 * 64);
    float *want = read_bin(GOLDEN "/logits.bin", 10);
    float logits[10];
    vkf_tensor in = {.name = "pixel_values", .rank = 4, .shape = {1, 3, 64, 64}, .data = px, .capacity = 0};
    vkf_tensor out = {.name = "logits", .rank = 0, .shape = {0}, .data = logits, .capacity = sizeof logits};
    cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(argmax(logits, 10), argmax(want, 10));
    double worst = max_abs_diff_f32(logits, want, 10);
    cr_assert_leq(worst, 0.05, "fp16 logits off by %g (top-2 margin 0.185)", worst);
    free(px);
    free(want);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

typedef struct photo {
    const char *path;
    uint32_t cls;
} photo;

static const photo photos[] = {
    {VKF_REPO_DIR "/models/images/000000039769.png", 281},
    {VKF_REPO_DIR "/models/images/dog.jpg", 258},
    {IMAGES "/grace_hopper.jpg", 652},
    {IMAGES "/imagenet_samples/n02125311_10473.JPEG", 286},
    {IMAGES "/imagenet_samples/n02127052_10040.JPEG", 287},
    {IMAGES "/imagenet_samples/n01847000_10087.JPEG", 97},
    {IMAGES "/imagenet_samples/n02231487_1002.JPEG", 313},
    {IMAGES "/imagenet_samples/n03240683_10240.JPEG", 540},
};

Test(vit, bundled_model_on_real_photos_fp32, .timeout = 600)
{
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = load(ctx, BUNDLED, VKF_FP32);
    enum { N = BASE_ARRAY_LEN(photos), K = 3 };
    const char *paths[N];
    for (int i = 0; i < N; i++) paths[i] = photos[i].path;
    vkf_class_score top[N * K];
    cr_assert_eq(vkf_classify_files(m, paths, N, top, K), VKF_OK, "%s", vkf_last_error(ctx));
    for (int i = 0; i < N; i++)
        cr_assert_eq(top[i * K].index, photos[i].cls, "%s: got %u %s", photos[i].path, top[i * K].index, top[i * K].label);
    /* The cats: all of the top 3 are cats, and the max logit matches the
     * PIL-preprocessed fp32 reference. */
    for (int j = 0; j < K; j++) {
        uint32_t c = top[j].index;
        cr_assert(c == 281 || c == 282 || c == 285, "cats top-%d is %u %s", j + 1, c, top[j].label);
    }
    cr_assert_float_eq(top[0].logit, 12.849f, 0.05f, "max logit %f", (double)top[0].logit);
    cr_assert_str_eq(top[0].label, "tabby, tabby cat");
    cr_assert_float_eq(top[0].prob, 0.725f, 0.005f);
    cr_assert_float_eq(top[K].logit, 13.807f, 0.05f, "dog max logit %f", (double)top[K].logit);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

Test(vit, bundled_model_fp16_same_top1, .timeout = 600)
{
    vkf_context *ctx = tctx_create(tcaps());
    if (!ctx->dev->caps.storage16) {
        tctx_destroy(ctx);
        cr_skip_test("no 16-bit storage");
    }
    vkf_model *m = load(ctx, BUNDLED, VKF_FP16);
    vkf_model_info info;
    vkf_model_get_info(m, &info);
    cr_assert_eq(info.precision, VKF_FP16);
    for (size_t i = 0; i < BASE_ARRAY_LEN(photos); i++) {
        vkf_class_score top;
        cr_assert_eq(vkf_classify_file(m, photos[i].path, &top, 1), VKF_OK, "%s", vkf_last_error(ctx));
        cr_assert_eq(top.index, photos[i].cls, "fp16 %s: got %u %s", photos[i].path, top.index, top.label);
    }
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

Test(vit, batch_equals_single_runs)
{
    vkf_context *ctx = tctx_create(NULL);
    vkf_model *m = load(ctx, GOLDEN, VKF_FP32);
    float *px = read_bin(GOLDEN "/pixel_values.bin", 3 * 64 * 64);
    enum { B = 3 };
    float batch_px[B * 3 * 64 * 64], single[B][10], batched[B * 10];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < 3 * 64 * 64; i++) batch_px[b * 3 * 64 * 64 + i] = px[i] * (1.0f - 0.3f * (float)b);
    for (int b = 0; b < B; b++) {
        vkf_tensor in = {.name = "pixel_values", .rank = 4, .shape = {1, 3, 64, 64}, .data = batch_px + b * 3 * 64 * 64, .capacity = 0};
        vkf_tensor out = {.name = "logits", .rank = 0, .shape = {0}, .data = single[b], .capacity = sizeof single[b]};
        cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
    }
    vkf_tensor in = {.name = "pixel_values", .rank = 4, .shape = {B, 3, 64, 64}, .data = batch_px, .capacity = 0};
    vkf_tensor out = {.name = "logits", .rank = 0, .shape = {0}, .data = batched, .capacity = sizeof batched};
    cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_OK, "%s", vkf_last_error(ctx));
    for (int b = 0; b < B; b++)
        for (int i = 0; i < 10; i++) cr_assert_float_eq(batched[b * 10 + i], single[b][i], 1e-5, "batch %d logit %d", b, i);
    cr_assert(fabsf(single[0][0] - single[2][0]) > 1e-3, "the test inputs must differ");
    free(px);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

Test(vit, tensor_api_rejects_bad_requests)
{
    vkf_context *ctx = tctx_create(NULL);
    vkf_model *m = load(ctx, GOLDEN, VKF_FP32);
    float px[3 * 64 * 64] = {0}, small[4];
    vkf_tensor in = {.name = "pixel_values", .rank = 4, .shape = {1, 3, 32, 64}, .data = px, .capacity = 0};
    vkf_tensor out = {.name = "logits", .rank = 0, .shape = {0}, .data = small, .capacity = sizeof small};
    cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_ERROR_SHAPE);
    cr_assert(strstr(vkf_last_error(ctx), "[N, 3, 64, 64]"), "%s", vkf_last_error(ctx));
    in.shape[2] = 64;
    cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_ERROR_SHAPE);
    cr_assert(strstr(vkf_last_error(ctx), "needs 40 bytes, 16 given"), "%s", vkf_last_error(ctx));
    out.name = "attentions";
    cr_assert_eq(vkf_model_run(m, &in, 1, &out, 1), VKF_ERROR_NOT_FOUND);
    cr_assert(strstr(vkf_last_error(ctx), "no output \"attentions\""), "%s", vkf_last_error(ctx));
    vkf_class_score top[3];
    cr_assert_eq(vkf_top_k(m, (float[10]){0, 5, 1, 2, 9, 3, 0, 0, 0, 0}, top, 3), VKF_OK);
    cr_assert_eq(top[0].index, 4);
    cr_assert_eq(top[1].index, 1);
    cr_assert_eq(top[2].index, 5);
    cr_assert_str_eq(top[0].label, "LABEL_4");
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}
