/* CLIP against HF: the golden CLIPModel (logits_per_image, text_embeds,
 * image_embeds within 1e-4; the same argmax in fp16), the cases of
 * tools/make_clip_refs.py (zero-shot probabilities from PNG photos through the
 * real tokenizer and the image processor, a legacy config with odd sizes,
 * gelu and eos_token_id 2, single-tower checkpoints), the separate embedding
 * calls, bad input and the tools. */
#include "common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CASES VKF_TEST_DATA "/clip"
#define GOLDEN VKF_TEST_DATA "/golden/clip"

static float *bin(const char *dir, const char *name, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    return tread_file(path, n * 4);
}

/* Runs a CLIP model through the tensor API on the case's .bin inputs and
 * checks the named outputs (float32 [rows, cols] .bin files) within tol. */
static void check_run(vkf_context *ctx, const char *dir, vkf_precision p, uint32_t ni, uint32_t img, uint32_t nt, uint32_t len,
                      const char *const *outs, const uint32_t (*shapes)[2], uint32_t n_outs, double tol)
{
    vkf_model *m = tload_model(ctx, dir, p);
    float *px = ni ? bin(dir, "pixel_values", (size_t)ni * 3 * img * img) : NULL;
    int32_t *ids = nt ? (int32_t *)bin(dir, "input_ids", (size_t)nt * len) : NULL;
    int32_t *mask = nt ? (int32_t *)bin(dir, "attention_mask", (size_t)nt * len) : NULL;
    vkf_tensor in[3];
    uint32_t n_in = 0;
    if (ni) in[n_in++] = (vkf_tensor){"pixel_values", 4, {ni, 3, img, img}, px, 0, VKF_F32};
    if (nt) {
        in[n_in++] = (vkf_tensor){"input_ids", 2, {nt, len}, ids, 0, VKF_I32};
        in[n_in++] = (vkf_tensor){"attention_mask", 2, {nt, len}, mask, 0, VKF_I32};
    }
    vkf_tensor out[4];
    float *got[4];
    for (uint32_t i = 0; i < n_outs; i++) {
        got[i] = calloc((size_t)shapes[i][0] * shapes[i][1], 4);
        out[i] = (vkf_tensor){.name = outs[i], .data = got[i], .capacity = (uint64_t)shapes[i][0] * shapes[i][1] * 4};
    }
    cr_assert_eq(vkf_model_run(m, in, n_in, out, n_outs), VKF_OK, "%s", vkf_last_error(ctx));
    for (uint32_t i = 0; i < n_outs; i++) {
        cr_assert_eq(out[i].rank, 2, "%s", outs[i]);
        cr_assert(out[i].shape[0] == shapes[i][0] && out[i].shape[1] == shapes[i][1], "%s: %ux%u", outs[i], out[i].shape[0], out[i].shape[1]);
        float *want = bin(dir, outs[i], (size_t)shapes[i][0] * shapes[i][1]);
        size_t n = (size_t)shapes[i][0] * shapes[i][1];
        if (tol > 0) {
            double e = max_abs_diff_f32(got[i], want, n);
            cr_assert_leq(e, tol, "%s: %s differs by %g", dir, outs[i], e);
        } else { /* fp16: the same best text per image */
            for (uint32_t r = 0; r < shapes[i][0]; r++) {
                uint32_t a = 0, b = 0, C = shapes[i][1];
                for (uint32_t k = 1; k < C; k++) {
                    if (got[i][r * C + k] > got[i][r * C + a]) a = k;
                    if (want[r * C + k] > want[r * C + b]) b = k;
                }
                cr_assert_eq(a, b, "%s: row %u argmax %u, HF %u", outs[i], r, a, b);
            }
        }
        free(want);
        free(got[i]);
    }
    free(px), free(ids), free(mask);
    vkf_model_destroy(m);
}

Test(clip, golden)
{
    vkf_context *ctx = tctx_create(tcaps());
    static const char *const outs[] = {"logits_per_image", "text_embeds", "image_embeds", "logits_per_text"};
    static const uint32_t shapes[][2] = {{2, 2}, {2, 32}, {2, 32}, {2, 2}};
    check_run(ctx, GOLDEN, VKF_FP32, 2, 32, 2, 9, outs, shapes, 3, 1e-4);
    if (ctx->dev->caps.storage16) check_run(ctx, GOLDEN, VKF_FP16, 2, 32, 2, 9, outs, shapes, 1, 0);
    /* the signature lists both towers and the logits */
    vkf_model *m = tload_model(ctx, GOLDEN, VKF_FP32);
    vkf_model_info info;
    vkf_model_get_info(m, &info);
    cr_assert_str_eq(info.task, "zero-shot-image-classification");
    cr_assert_eq(info.embedding_size, 32);
    cr_assert_eq(info.n_inputs, 3);
    bool lpi = false;
    for (uint32_t i = 0; i < info.n_outputs; i++) lpi = lpi || !strcmp(info.outputs[i].name, "logits_per_image");
    cr_assert(lpi);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

Test(clip, legacy_config_odd_sizes_gelu_eos_2)
{
    vkf_context *ctx = tctx_create(tcaps());
    static const char *const outs[] = {"logits_per_image", "text_embeds", "image_embeds"};
    static const uint32_t shapes[][2] = {{3, 3}, {3, 20}, {3, 20}};
    check_run(ctx, CASES "/legacy", VKF_FP32, 3, 30, 3, 8, outs, shapes, 3, 1e-4);
    tctx_destroy(ctx);
}

Test(clip, single_towers)
{
    vkf_context *ctx = tctx_create(tcaps());
    static const char *const vo[] = {"image_embeds"}, *const to[] = {"text_embeds"};
    check_run(ctx, CASES "/vision", VKF_FP32, 2, 24, 0, 0, vo, (const uint32_t[][2]){{2, 12}}, 1, 1e-4);
    check_run(ctx, CASES "/text", VKF_FP32, 0, 0, 2, 5, to, (const uint32_t[][2]){{2, 12}}, 1, 1e-4);
    /* a vision-only checkpoint asked for text, and the other way round */
    vkf_model *m = tload_model(ctx, CASES "/vision", VKF_FP32);
    const char *t = "a cat";
    float e[64];
    cr_assert_eq(vkf_embed(m, &t, 1, NULL, e), VKF_ERROR_UNSUPPORTED);
    cr_assert(strstr(vkf_last_error(ctx), "no text tower"), "%s", vkf_last_error(ctx));
    vkf_class_score sc[1];
    cr_assert_eq(vkf_zero_shot(m, CASES "/zero_shot/photo0.png", &t, 1, NULL, sc), VKF_ERROR_UNSUPPORTED);
    vkf_model_destroy(m);
    m = tload_model(ctx, CASES "/text", VKF_FP32);
    const char *img = CASES "/zero_shot/photo0.png";
    cr_assert_eq(vkf_embed_image_files(m, &img, 1, e), VKF_ERROR_UNSUPPORTED);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

/* Photos and labels end to end: HF's preprocessing, tokenizer and probabilities. */
Test(clip, zero_shot_against_hf)
{
    vkf_context *ctx = tctx_create(tcaps());
    const char *dir = CASES "/zero_shot";
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    static const char *const labels[6] = {"cat", "dog", "a remote control", "an admiral in uniform", "", NULL};
    char longl[600] = "";
    for (int i = 0; i < 90; i++) strcat(longl, "very ");
    strcat(longl, "long label");
    const char *lab[6];
    memcpy(lab, labels, sizeof lab);
    lab[5] = longl;
    float *probs = bin(dir, "probs", 2 * 6), *pixels = bin(dir, "pixel_values", 2 * 3 * 32 * 32);
    for (int i = 0; i < 2; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/photo%d.png", dir, i);
        /* the image processor: shortest edge, bicubic, center crop, OpenAI's mean and std */
        static float px[3 * 32 * 32];
        cr_assert_eq(vkf_image_preprocess_file(m, path, px), VKF_OK, "%s", vkf_last_error(ctx));
        double e = max_abs_diff_f32(px, pixels + i * 3 * 32 * 32, 3 * 32 * 32);
        cr_assert_leq(e, 1e-5, "photo %d: pixel_values differ from CLIPImageProcessor's by %g", i, e);
        vkf_class_score out[6];
        tlog_reset();
        cr_assert_eq(vkf_zero_shot(m, path, lab, 6, NULL, out), VKF_OK, "%s", vkf_last_error(ctx));
        cr_assert(tlog_contains("truncated to 77"), "the long label is truncated with a warning");
        double sum = 0;
        for (int j = 0; j < 6; j++) {
            if (j) cr_assert_geq(out[j - 1].prob, out[j].prob, "best first");
            cr_assert_eq(out[j].label, lab[out[j].index]);
            double e2 = fabs(out[j].prob - probs[i * 6 + out[j].index]);
            cr_assert_leq(e2, 1e-4, "photo %d label %u: %g, HF %g", i, out[j].index, out[j].prob, probs[i * 6 + out[j].index]);
            sum += out[j].prob;
        }
        cr_assert_float_eq(sum, 1.0, 1e-5);
    }
    /* the same through the separate calls: texts once, images against them */
    const char *paths[2] = {CASES "/zero_shot/photo0.png", CASES "/zero_shot/photo1.png"};
    char texts_buf[6][700];
    const char *texts[6];
    for (int j = 0; j < 6; j++) snprintf(texts_buf[j], sizeof texts_buf[j], "This is a photo of %s.", lab[j]), texts[j] = texts_buf[j];
    float ie[2 * 24], te[6 * 24], p2[12];
    cr_assert_eq(vkf_embed_image_files(m, paths, 2, ie), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(vkf_embed(m, texts, 6, NULL, te), VKF_OK, "%s", vkf_last_error(ctx));
    cr_assert_eq(vkf_zero_shot_scores(m, ie, 2, te, 6, p2), VKF_OK);
    cr_assert_leq(max_abs_diff_f32(p2, probs, 12), 1e-4);
    float *want_ie = bin(dir, "image_embeds", 2 * 24), *want_te = bin(dir, "text_embeds", 6 * 24);
    cr_assert_leq(max_abs_diff_f32(ie, want_ie, 2 * 24), 1e-4);
    cr_assert_leq(max_abs_diff_f32(te, want_te, 6 * 24), 1e-4);
    free(probs), free(pixels), free(want_ie), free(want_te);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

Test(clip, bad_input_and_many_labels)
{
    vkf_context *ctx = tctx_create(NULL);
    vkf_model *m = tload_model(ctx, CASES "/zero_shot", VKF_FP32);
    const char *img = CASES "/zero_shot/photo0.png", *one = "cat";
    vkf_class_score sc[1];
    cr_assert_eq(vkf_zero_shot(m, img, &one, 0, NULL, sc), VKF_ERROR_INVALID_ARGUMENT, "no labels");
    cr_assert_eq(vkf_zero_shot(m, img, &one, 1, "a photo", sc), VKF_ERROR_INVALID_ARGUMENT, "a template without {}");
    cr_assert_eq(vkf_zero_shot(m, img, &one, 1, "a {} of a {}", sc), VKF_ERROR_INVALID_ARGUMENT, "two {}: HF raises");
    cr_assert(strstr(vkf_last_error(ctx), "more than one {}"), "%s", vkf_last_error(ctx));
    /* an input or an output named twice: one of them was dropped */
    int32_t ids[2] = {49406, 49407}, mask[2] = {1, 1};
    float emb[512];
    vkf_tensor twice[2] = {{"input_ids", 2, {1, 2}, ids, 0, VKF_I32}, {"input_ids", 2, {1, 2}, mask, 0, VKF_I32}};
    vkf_tensor emb_out = {.name = "text_embeds", .data = emb, .capacity = sizeof emb};
    cr_assert_eq(vkf_model_run(m, twice, 2, &emb_out, 1), VKF_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(vkf_last_error(ctx), "input \"input_ids\" is given twice"), "%s", vkf_last_error(ctx));
    cr_assert_eq(vkf_zero_shot(m, CASES "/zero_shot/missing.png", &one, 1, NULL, sc), VKF_ERROR_IO);
    /* 1,000 labels: batched, probabilities summing to 1 */
    enum { N = 1000 };
    static char buf[N][16];
    static const char *many[N];
    static vkf_class_score out[N];
    for (int i = 0; i < N; i++) snprintf(buf[i], sizeof buf[i], "thing %d", i), many[i] = buf[i];
    cr_assert_eq(vkf_zero_shot(m, img, many, N, "{}", out), VKF_OK, "%s", vkf_last_error(ctx));
    double sum = 0;
    for (int i = 0; i < N; i++) sum += out[i].prob;
    cr_assert_float_eq(sum, 1.0, 1e-4);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
}

Test(clip, tools)
{
    const char *dir = CASES "/zero_shot";
    tcli_result *r = tcli_run(VKF_ZERO_SHOT_BIN,
                              "-m " CASES "/zero_shot --precision fp32 --labels 'cat,dog,a remote control,an admiral in uniform' --json "
                              CASES "/zero_shot/photo1.png",
                              NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cJSON *all = cJSON_Parse(r->out), *j = cJSON_GetArrayItem(all, 0);
    /* one element per image, even for one image: HF's list of {score, label} */
    cr_assert(cJSON_GetArraySize(all) == 1 && cJSON_IsArray(j) && cJSON_GetArraySize(j) == 4, "%s", r->out);
    /* HF's probabilities over these four labels: the six-label ones renormalised */
    float *probs = bin(dir, "probs", 12);
    double total = probs[6] + probs[7] + probs[8] + probs[9];
    const cJSON *best = cJSON_GetArrayItem(j, 0);
    cr_assert_str_eq(cJSON_GetObjectItem(best, "label")->valuestring, "an admiral in uniform");
    cr_assert_float_eq(cJSON_GetObjectItem(best, "score")->valuedouble, probs[9] / total, 1e-4);
    cJSON_Delete(all);
    free(probs);
    r = tcli_run(VKF_ZERO_SHOT_BIN, "-m " CASES "/zero_shot --labels-file - --top 1 " CASES "/zero_shot/photo0.png " CASES "/zero_shot/photo1.png",
                 "cat\ndog\nan admiral in uniform\n", 22);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(strstr(r->out, "photo0.png:\n") && strstr(r->out, "photo1.png:\n"), "%s", r->out);
    const char *bad[] = {"--labels ''", "--labels 'cat,,dog'", "", "--labels cat --template 'no hole'", "--labels cat --top 0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[512];
        snprintf(args, sizeof args, "-m %s %s %s/photo0.png", dir, bad[i], dir);
        r = tcli_run(VKF_ZERO_SHOT_BIN, args, NULL, 0);
        cr_assert_eq(r->status, 2, "%s: exit %d (%s)", bad[i], r->status, r->err);
    }
    r = tcli_run(VKF_ZERO_SHOT_BIN, "-m " CASES "/zero_shot --labels cat " CASES "/zero_shot/missing.png", NULL, 0);
    cr_assert_eq(r->status, 1);
    r = tcli_run(VKF_ZERO_SHOT_BIN, "-m " CASES "/vision --labels cat " CASES "/zero_shot/photo0.png", NULL, 0);
    cr_assert_eq(r->status, 1, "a vision-only model cannot do zero-shot: %s", r->err);
    /* vkformer-embed: images and texts of a CLIP model, normalised */
    r = tcli_run(VKF_EMBED_BIN, "-m " CASES "/zero_shot --precision fp32 --images " CASES "/zero_shot/photo0.png " CASES "/zero_shot/photo1.png",
                 NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    float *ie = bin(dir, "image_embeds", 48);
    char *p = r->out;
    for (int i = 0; i < 48; i++) {
        char *end;
        double v = strtod(p, &end);
        cr_assert(end != p, "value %d of the embeddings", i);
        cr_assert_float_eq(v, ie[i], 1e-4);
        p = end;
    }
    free(ie);
    r = tcli_run(VKF_EMBED_BIN, "-m " CASES "/zero_shot 'This is a photo of cat.'", NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    r = tcli_run(VKF_RUN_BIN, "--help", NULL, 0);
    cr_assert(strstr(r->out, "logits_per_image"), "vkformer-run --help names CLIP's outputs");
    /* vkformer-run on the golden CLIPModel's .npy inputs */
    char tmp[256], args[2048], out[400];
    ttmpdir_create(tmp, sizeof tmp, "clip-run");
    snprintf(out, sizeof out, "%s/lpi.npy", tmp);
    snprintf(args, sizeof args,
             "-m %s --precision fp32 -i pixel_values=%s/pixel_values.npy -i input_ids=%s/input_ids.npy "
             "-i attention_mask=%s/attention_mask.npy -o logits_per_image=%s -o text_embeds=%s/te.npy",
             GOLDEN, GOLDEN, GOLDEN, GOLDEN, out, tmp);
    r = tcli_run(VKF_RUN_BIN, args, NULL, 0);
    cr_assert_eq(r->status, 0, "%s", r->err);
    vkf_tensor t;
    cr_assert_eq(vkf_npy_load(out, &t), VKF_OK, "%s", vkf_last_error(NULL));
    cr_assert(t.rank == 2 && t.shape[0] == 2 && t.shape[1] == 2);
    float *want = bin(GOLDEN, "logits_per_image", 4);
    cr_assert_leq(max_abs_diff_f32(t.data, want, 4), 1e-4);
    free(want);
    vkf_free(t.data);
    ttmpdir_remove(tmp);
}

/* ---- CLIP ViT-B/32 at full size ---------------------------------------------------- */

/* The formula tools/make_clip_refs.py fills the b32 model with: the top 24
 * bits of splitmix64(tensor << 40 | element) as a value in [-1, 1). */
static float formula_u(uint64_t tensor, uint64_t i)
{
    uint64_t x = (tensor << 40) + i + 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (float)((double)(x >> 40) * 0x1p-23 - 1.0);
}

/* Writes dir/model.safetensors from the case's tensor list (names, shapes, kinds). */
static void write_formula_checkpoint(const cJSON *tensors, const char *dir)
{
    size_t cap = 1 << 16, len = 0;
    char *hdr = malloc(cap);
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (const cJSON *t = tensors->child; t; t = t->next) {
        uint64_t n = 1;
        char shape[64] = "";
        for (const cJSON *d = cJSON_GetObjectItem(t, "shape")->child; d; d = d->next) {
            n *= (uint64_t)d->valuedouble;
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%d", shape[0] ? "," : "", d->valueint);
        }
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[%llu,%llu]}",
                                cJSON_GetObjectItem(t, "name")->valuestring, shape, (unsigned long long)off,
                                (unsigned long long)(off + n * 4));
        off += n * 4;
        cr_assert_lt(len, cap - 256);
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' ';
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    uint64_t hl = len;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, len, f);
    float *buf = malloc((size_t)(1 << 20) * 4);
    uint64_t index = 0;
    for (const cJSON *t = tensors->child; t; t = t->next, index++) {
        uint64_t n = 1;
        for (const cJSON *d = cJSON_GetObjectItem(t, "shape")->child; d; d = d->next) n *= (uint64_t)d->valuedouble;
        const char *kind = cJSON_GetObjectItem(t, "kind")->valuestring;
        for (uint64_t first = 0; first < n; first += 1 << 20) {
            uint64_t c = n - first < (1u << 20) ? n - first : 1u << 20;
            for (uint64_t i = 0; i < c; i++) {
                float u = formula_u(index, first + i);
                buf[i] = !strcmp(kind, "logit") ? 2.5f : !strcmp(kind, "ln") ? 1.0f + u * 0.0625f
                       : !strcmp(kind, "bias")  ? u * 0.015625f
                                                : u * 0.03125f;
            }
            cr_assert_eq(fwrite(buf, 4, c, f), c);
        }
    }
    cr_assert_eq(fclose(f), 0);
    free(buf);
    free(hdr);
}

/* The full-size CLIP ViT-B/32 (151 M parameters) against HF: 2 images, 3 texts. */
Test(clip, vit_b32_at_full_size, .timeout = 600)
{
    const char *src = CASES "/b32";
    char path[600], dir[256];
    snprintf(path, sizeof path, "%s/case.json", src);
    size_t size = 1 << 20;
    char *text = calloc(1, size + 1);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    size = fread(text, 1, size, f);
    fclose(f);
    cJSON *c = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(c);
    ttmpdir_create(dir, sizeof dir, "clip-b32");
    write_formula_checkpoint(cJSON_GetObjectItem(c, "tensors"), dir);
    snprintf(path, sizeof path, "cp %s/config.json %s/", src, dir);
    cr_assert_eq(system(path), 0);
    vkf_context *ctx = tctx_create(tcaps());
    vkf_model *m = tload_model(ctx, dir, VKF_FP32);
    enum { NI = 2, NT = 3, L = 12, E = 512 };
    static float px[NI * 3 * 224 * 224];
    for (size_t i = 0; i < sizeof px / 4; i++) px[i] = formula_u(999, i) * 2.0f;
    int32_t *ids = (int32_t *)bin(src, "input_ids", NT * L), *mask = (int32_t *)bin(src, "attention_mask", NT * L);
    vkf_tensor in[3] = {{"pixel_values", 4, {NI, 3, 224, 224}, px, 0, VKF_F32},
                        {"input_ids", 2, {NT, L}, ids, 0, VKF_I32},
                        {"attention_mask", 2, {NT, L}, mask, 0, VKF_I32}};
    static float ie[NI * E], te[NT * E], lpi[NI * NT];
    vkf_tensor out[3] = {{.name = "image_embeds", .data = ie, .capacity = sizeof ie},
                         {.name = "text_embeds", .data = te, .capacity = sizeof te},
                         {.name = "logits_per_image", .data = lpi, .capacity = sizeof lpi}};
    cr_assert_eq(vkf_model_run(m, in, 3, out, 3), VKF_OK, "%s", vkf_last_error(ctx));
    float *wie = bin(src, "image_embeds", NI * E), *wte = bin(src, "text_embeds", NT * E), *wl = bin(src, "logits_per_image", NI * NT);
    double e1 = max_abs_diff_f32(ie, wie, NI * E), e2 = max_abs_diff_f32(te, wte, NT * E), e3 = max_abs_diff_f32(lpi, wl, NI * NT);
    cr_log_info("CLIP ViT-B/32: image_embeds %.3g, text_embeds %.3g, logits_per_image %.3g from HF", e1, e2, e3);
    cr_assert_leq(e1, 1e-4, "image_embeds differ by %g", e1);
    cr_assert_leq(e2, 1e-4, "text_embeds differ by %g", e2);
    cr_assert_leq(e3, 1e-3, "logits_per_image (x exp(2.5) = 12.2) differ by %g", e3);
    free(ids), free(mask), free(wie), free(wte), free(wl);
    cJSON_Delete(c);
    vkf_model_destroy(m);
    tctx_destroy(ctx);
    ttmpdir_remove(dir);
}
