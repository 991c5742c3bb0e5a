/* vkformer-classify: image classification with a Hugging Face ViT checkpoint.
 * Uses only the public API (include/vkformer.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vkformer.h"

#ifndef VKF_DEFAULT_MODEL
#define VKF_DEFAULT_MODEL "models/vit-tiny-patch16-224"
#endif
#ifndef VKF_DEFAULT_IMAGE
#define VKF_DEFAULT_IMAGE "models/images/000000039769.png"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkformer-classify [options] [IMAGE...]\n"
            "Classifies images with a Hugging Face ViT checkpoint on the Vulkan device.\n"
            "With no image, classifies the bundled cats photo with the bundled ViT-Tiny.\n"
            "\n"
            "  --model DIR            checkpoint directory (config.json, model.safetensors,\n"
            "                         preprocessor_config.json); default: the bundled ViT-Tiny\n"
            "  --top K                classes to print per image (default 5)\n"
            "  --device N             Vulkan device index (see vkformer-info)\n"
            "  --precision fp32|fp16  weight and activation storage (default: fp16 on GPUs\n"
            "                         with 16-bit storage, fp32 on CPU drivers)\n"
            "  --json                 print JSON instead of text\n"
            "  --input-tensor FILE    raw little-endian float32 N x C x H x W, already\n"
            "                         preprocessed, instead of images (N from the file size)\n"
            "  --dump-logits FILE     write the raw float32 N x labels logits\n"
            "  --profile              print per-node GPU times\n"
            "  -q, --quiet            no progress or timing lines\n"
            "Images: JPEG, PNG, BMP, GIF (first frame), TGA, PSD, PNM, HDR; up to 100\n"
            "megapixels. Many images run as batched inferences (32 per batch).\n"
            "Exit status: 0 success, 1 a file or the device failed, 2 bad usage.\n");
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void show_progress(void *user, uint64_t done, uint64_t total)
{
    (void)user;
    /* Only big models are worth a progress line. */
    if (total < (64u << 20)) return;
    fprintf(stderr, "\rloading weights: %3d%% (%llu / %llu MiB)", (int)(100.0 * done / total),
            (unsigned long long)(done >> 20), (unsigned long long)(total >> 20));
    if (done == total) fputc('\n', stderr);
}

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "vkformer-classify: %s%s%s\n", what ? what : "", what ? ": " : "", msg);
    return 1;
}

/* Reads a raw float32 file into a malloc'd buffer. */
static int read_floats(const char *path, float **data, size_t *count)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fprintf(stderr, "vkformer-classify: %s: %s\n", path, strerror(errno)), 1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return fprintf(stderr, "vkformer-classify: %s: not a regular file\n", path), 1;
    }
    size_t bytes = (size_t)st.st_size;
    if (bytes == 0 || bytes % 4) {
        fclose(f);
        return fprintf(stderr, "vkformer-classify: %s: %zu bytes is not a whole number of float32 values\n", path, bytes), 1;
    }
    *data = malloc(bytes);
    if (!*data || fread(*data, 1, bytes, f) != bytes) {
        fclose(f);
        free(*data);
        return fprintf(stderr, "vkformer-classify: %s: read failed\n", path), 1;
    }
    fclose(f);
    *count = bytes / 4;
    return 0;
}

int main(int argc, char **argv)
{
    const char *model_dir = NULL, *input_tensor = NULL, *dump = NULL;
    vkf_context_desc cdesc = {0};
    vkf_model_desc mdesc = {.progress = show_progress};
    int top_k = 5, json = 0, quiet = 0, profile = 0;
    const char **images = calloc((size_t)argc + 1, sizeof(char *));
    int n_images = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(images);
            return 0;
        } else if (!strcmp(a, "--model") && has) {
            model_dir = argv[++i];
        } else if (!strcmp(a, "--top") && has) {
            char *end;
            long k = strtol(argv[++i], &end, 10);
            if (*end || k < 1 || k > 100000) {
                fprintf(stderr, "vkformer-classify: --top takes a positive number\n");
                free(images);
                return 2;
            }
            top_k = (int)k;
        } else if (!strcmp(a, "--device") && has) {
            char *end;
            long dv = strtol(argv[++i], &end, 10);
            if (*end || dv < 0) {
                fprintf(stderr, "vkformer-classify: --device takes an index (see vkformer-info)\n");
                free(images);
                return 2;
            }
            cdesc.use_device_index = 1;
            cdesc.device_index = (uint32_t)dv;
        } else if (!strcmp(a, "--precision") && has) {
            const char *p = argv[++i];
            if (!strcmp(p, "fp32"))
                mdesc.precision = VKF_FP32;
            else if (!strcmp(p, "fp16"))
                mdesc.precision = VKF_FP16;
            else {
                fprintf(stderr, "vkformer-classify: --precision takes fp32 or fp16\n");
                free(images);
                return 2;
            }
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--input-tensor") && has) {
            input_tensor = argv[++i];
        } else if (!strcmp(a, "--dump-logits") && has) {
            dump = argv[++i];
        } else if (!strcmp(a, "--profile")) {
            profile = 1;
            mdesc.profile = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "vkformer-classify: unknown option '%s'%s\n", a, has ? "" : " (or missing value)");
            usage(stderr);
            free(images);
            return 2;
        } else {
            images[n_images++] = a;
        }
    }
    if (input_tensor && n_images) {
        fprintf(stderr, "vkformer-classify: give images or --input-tensor, not both\n");
        free(images);
        return 2;
    }
    if (!model_dir) model_dir = access(VKF_DEFAULT_MODEL, R_OK) == 0 ? VKF_DEFAULT_MODEL : "models/vit-tiny-patch16-224";
    if (!input_tensor && n_images == 0)
        images[n_images++] = access(VKF_DEFAULT_IMAGE, R_OK) == 0 ? VKF_DEFAULT_IMAGE : "models/images/000000039769.png";
    if (quiet || json) mdesc.progress = NULL;

    int rc = 0;
    vkf_context *ctx = NULL;
    vkf_model *model = NULL;
    float *pixels = NULL, *logits = NULL;
    vkf_class_score *scores = NULL;
    cJSON *out = NULL;
    double t0 = now();
    if (vkf_context_create(&cdesc, &ctx) != VKF_OK) {
        rc = fail(NULL, vkf_last_error(NULL));
        goto done;
    }
    if (vkf_model_load(ctx, model_dir, &mdesc, &model) != VKF_OK) {
        rc = fail(NULL, vkf_last_error(ctx));
        goto done;
    }
    vkf_model_info info;
    vkf_model_get_info(model, &info);
    if (info.num_labels == 0) {
        rc = fail(model_dir, "this checkpoint has no classification head (a ViTModel); nothing to classify");
        goto done;
    }
    vkf_device_info dev;
    vkf_context_device(ctx, &dev);
    size_t per = (size_t)info.channels * info.image_height * info.image_width;
    uint32_t n = (uint32_t)n_images;
    if (input_tensor) {
        size_t count;
        if (read_floats(input_tensor, &pixels, &count)) {
            rc = 1;
            goto done;
        }
        if (count % per) {
            fprintf(stderr, "vkformer-classify: %s: %zu floats is not a whole number of %ux%ux%u images\n", input_tensor,
                    count, info.channels, info.image_height, info.image_width);
            rc = 1;
            goto done;
        }
        n = (uint32_t)(count / per);
    } else {
        pixels = malloc(per * n * sizeof(float));
        if (!pixels) {
            rc = fail(NULL, "out of memory");
            goto done;
        }
        for (uint32_t i = 0; i < n; i++)
            if (vkf_image_preprocess_file(model, images[i], pixels + per * i) != VKF_OK) {
                rc = fail(NULL, vkf_last_error(ctx));
                goto done;
            }
    }
    /* Loading includes recording the command buffer for the batch size. */
    if (vkf_model_prepare(model, n < 32 ? n : 32, 0) != VKF_OK || (n > 32 && n % 32 && vkf_model_prepare(model, n % 32, 0) != VKF_OK)) {
        rc = fail(NULL, vkf_last_error(ctx));
        goto done;
    }
    double t_load = now() - t0;
    logits = malloc((size_t)n * info.num_labels * sizeof(float));
    scores = calloc((size_t)n * (size_t)top_k, sizeof(*scores));
    if (!logits || !scores) {
        rc = fail(NULL, "out of memory");
        goto done;
    }
    double t_infer = 0;
    for (uint32_t first = 0; first < n; first += 32) {
        uint32_t b = n - first < 32 ? n - first : 32;
        vkf_tensor in = {.name = "pixel_values", .rank = 4, .shape = {b, info.channels, info.image_height, info.image_width}, .data = pixels + per * first, .capacity = 0};
        vkf_tensor o = {.name = "logits", .rank = 0, .shape = {0}, .data = logits + (size_t)first * info.num_labels, .capacity = (uint64_t)b * info.num_labels * 4};
        double t1 = now();
        if (vkf_model_run(model, &in, 1, &o, 1) != VKF_OK) {
            rc = fail(NULL, vkf_last_error(ctx));
            goto done;
        }
        t_infer += now() - t1;
    }
    for (uint32_t i = 0; i < n; i++) vkf_top_k(model, logits + (size_t)i * info.num_labels, scores + (size_t)i * top_k, (uint32_t)top_k);
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(logits, sizeof(float), (size_t)n * info.num_labels, f) != (size_t)n * info.num_labels) {
            if (f) fclose(f);
            rc = fail(dump, strerror(errno));
            goto done;
        }
        if (fclose(f) != 0) {
            rc = fail(dump, strerror(errno));
            goto done;
        }
    }
    uint32_t k = (uint32_t)top_k < info.num_labels ? (uint32_t)top_k : info.num_labels;
    if (json) {
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "model", model_dir);
        cJSON_AddStringToObject(out, "device", dev.name);
        cJSON_AddStringToObject(out, "precision", info.precision == VKF_FP16 ? "fp16" : "fp32");
        cJSON_AddNumberToObject(out, "load_ms", t_load * 1e3);
        cJSON_AddNumberToObject(out, "inference_ms", t_infer * 1e3);
        cJSON *arr = cJSON_AddArrayToObject(out, "results");
        for (uint32_t i = 0; i < n; i++) {
            cJSON *r = cJSON_CreateObject();
            if (input_tensor)
                cJSON_AddNumberToObject(r, "index", i);
            else
                cJSON_AddStringToObject(r, "image", images[i]);
            cJSON *top = cJSON_AddArrayToObject(r, "top");
            for (uint32_t j = 0; j < k; j++) {
                const vkf_class_score *s = &scores[(size_t)i * top_k + j];
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "index", s->index);
                cJSON_AddStringToObject(e, "label", s->label);
                cJSON_AddNumberToObject(e, "prob", s->prob);
                cJSON_AddNumberToObject(e, "logit", s->logit);
                cJSON_AddItemToArray(top, e);
            }
            cJSON_AddItemToArray(arr, r);
        }
        char *text = cJSON_Print(out);
        if (text) puts(text);
        free(text);
    } else {
        if (!quiet)
            printf("model %s: %s, %llu parameters, %s on %s\n", model_dir, info.type, (unsigned long long)info.parameters,
                   info.precision == VKF_FP16 ? "fp16" : "fp32", dev.name);
        for (uint32_t i = 0; i < n; i++) {
            if (input_tensor)
                printf("input %u:\n", i);
            else
                printf("%s:\n", images[i]);
            for (uint32_t j = 0; j < k; j++) {
                const vkf_class_score *s = &scores[(size_t)i * top_k + j];
                printf("  %5.3f  %4u  %s\n", s->prob, s->index, s->label);
            }
        }
        if (!quiet)
            printf("load %.0f ms, inference %.0f ms for %u image%s (%.0f ms per image)\n", t_load * 1e3, t_infer * 1e3, n,
                   n == 1 ? "" : "s", t_infer * 1e3 / n);
    }
    if (profile) {
        char *table;
        if (vkf_model_profile(model, &table) == VKF_OK) {
            fputs(table, stderr);
            vkf_free(table);
        }
    }
done:
    cJSON_Delete(out);
    free(pixels);
    free(logits);
    free(scores);
    free(images);
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
    return rc;
}
