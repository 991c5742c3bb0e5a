/* vkformer-classify: image classification with a Hugging Face ViT checkpoint,
 * or text classification with a BERT-style sequence classifier.
 * Uses only the public API (include/vkformer.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"
#include "vkformer.h"

const char *tool_name = "vkformer-classify";


static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkformer-classify [options] [IMAGE... | TEXT...]   ('-': an image on standard input)\n"
            "Classifies images with a Hugging Face image classifier (ViT, DeiT), or texts with\n"
            "a text classifier (BertForSequenceClassification, DistilBERT, RoBERTa, ...).\n"
            "With no argument: the bundled cats photo with the bundled ViT-Tiny; for a text\n"
            "model, one text per line of standard input.\n"
            "\n"
            "  -k, --top K            classes to print per input (default 5)\n"
            "  -f, --file F           text models: one text per line of F ('-': standard input)\n"
            "      --pair TEXT        text models: classify each text as a pair with TEXT\n"
            "      --input-tensor FILE  image models: raw little-endian float32 N x C x H x W,\n"
            "                         already preprocessed, instead of images (N from the size)\n"
            "      --dump-logits FILE write the raw float32 N x labels logits\n"
            "      --profile          print per-node GPU times\n");
    tool_model_usage(f);
    fprintf(f, "Images: JPEG, PNG (decoded as PIL does), BMP, GIF (first frame); up to 100\n"
               "megapixels. Many inputs run as batched inferences (32 per batch).\n"
               "Exit status: 0 success, 1 a file or the device failed, 2 bad usage.\n");
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
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

/* Text classifiers: TEXT arguments, or one text per line of --file / standard input. */
static int classify_texts(vkf_context *ctx, vkf_model *model, const vkf_model_info *info, const char **args, int n_args,
                          const char *file, const char *pair, unsigned top_k, int json)
{
    tool_texts texts = {0};
    int rc = TOOL_OK;
    for (int i = 0; i < n_args && rc == TOOL_OK; i++) rc = tool_texts_add(&texts, args[i], strlen(args[i]));
    if (rc == TOOL_OK && !n_args) rc = tool_texts_from_file(&texts, file ? file : "-", 1);
    uint32_t n = (uint32_t)texts.count, k = top_k < info->num_labels ? top_k : info->num_labels;
    const char **pairs = pair ? malloc((n ? n : 1) * sizeof *pairs) : NULL;
    for (uint32_t i = 0; pairs && i < n; i++) pairs[i] = pair;
    vkf_class_score *sc = calloc((size_t)(n ? n : 1) * k, sizeof *sc);
    if (rc == TOOL_OK && !sc) rc = tool_fail("out of memory");
    if (rc == TOOL_OK && n && vkf_classify_texts(model, texts.s, pairs, n, sc, k) != VKF_OK) rc = tool_fail("%s", vkf_last_error(ctx));
    if (rc == TOOL_OK && json) {
        /* HF text-classification pipeline fields: label, score */
        cJSON *all = cJSON_CreateArray();
        for (uint32_t i = 0; i < n; i++) {
            cJSON *r = cJSON_CreateArray();
            for (uint32_t j = 0; j < k; j++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "label", sc[(size_t)i * k + j].label);
                cJSON_AddNumberToObject(o, "score", sc[(size_t)i * k + j].prob);
                cJSON_AddItemToArray(r, o);
            }
            cJSON_AddItemToArray(all, r);
        }
        char *s = cJSON_Print(all);
        if (s) puts(s);
        free(s);
        cJSON_Delete(all);
    } else if (rc == TOOL_OK) {
        for (uint32_t i = 0; i < n; i++) {
            printf("%.*s\n", (int)(texts.n[i] > 100 ? 100 : texts.n[i]), texts.s[i]);
            for (uint32_t j = 0; j < k; j++) printf("  %5.3f  %s\n", sc[(size_t)i * k + j].prob, sc[(size_t)i * k + j].label);
        }
    }
    free(sc);
    free(pairs);
    tool_texts_free(&texts);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"top", required_argument, 0, 'k'}, {"file", required_argument, 0, 'f'}, {"pair", required_argument, 0, 2000},
        {"input-tensor", required_argument, 0, 2001}, {"dump-logits", required_argument, 0, 2002},
        {"profile", no_argument, 0, 2003}, TOOL_MODEL_LONGOPTS, {0, 0, 0, 0}};
    tool_model_opts mo = {0};
    const char *input_tensor = NULL, *dump = NULL, *file = NULL, *pair = NULL;
    unsigned top_k = 5;
    int profile = 0, c, rc0 = TOOL_CONTINUE;
    while (rc0 == TOOL_CONTINUE && (c = getopt_long(argc, argv, "k:f:" TOOL_MODEL_SHORTOPTS, longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (!tool_parse_u32(optarg, 1, 100000, &top_k)) rc0 = tool_usage_error("--top takes a positive number, not '%s'", optarg);
            break;
        case 'f': file = optarg; break;
        case 2000: pair = optarg; break;
        case 2001: input_tensor = optarg; break;
        case 2002: dump = optarg; break;
        case 2003: profile = 1, mo.mdesc.profile = 1; break;
        default: rc0 = tool_model_option(c, optarg, &mo, usage);
        }
    }
    if (rc0 != TOOL_CONTINUE) return rc0;
    const char *model_dir = mo.model;
    vkf_context_desc cdesc = mo.cdesc;
    vkf_model_desc mdesc = mo.mdesc;
    mdesc.progress = tool_show_progress;
    int json = mo.json, quiet = mo.quiet;
    const char **images = calloc((size_t)argc + 1, sizeof(char *));
    int n_images = 0;
    for (int i = optind; i < argc; i++) images[n_images++] = argv[i];
    if (input_tensor && n_images) {
        fprintf(stderr, "vkformer-classify: give images or --input-tensor, not both\n");
        free(images);
        return 2;
    }
    char default_model[4096], default_image[4096];
    if (!model_dir) {
        if (!tool_bundled_path(TOOL_DEFAULT_MODEL, default_model, sizeof default_model)) {
            fprintf(stderr, "vkformer-classify: the bundled model is not at %s: give --model DIR (or set VKF_MODEL_DIR)\n",
                    default_model);
            free(images);
            return 1;
        }
        model_dir = default_model;
    }
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
        tool_progress_break();
        rc = fail(NULL, vkf_last_error(ctx));
        goto done;
    }
    vkf_model_info info;
    vkf_model_get_info(model, &info);
    if (!strcmp(info.task, "text-classification")) {
        rc = classify_texts(ctx, model, &info, images, n_images, file, pair, top_k, json);
        goto done;
    }
    if (file || pair) {
        rc = tool_usage_error("--file and --pair are for text models; %s is an image model", model_dir);
        goto done;
    }
    if (!input_tensor && n_images == 0) {
        if (!tool_bundled_path(TOOL_DEFAULT_IMAGE, default_image, sizeof default_image)) {
            rc = fail(default_image, "the bundled image is missing: give an image");
            goto done;
        }
        images[n_images++] = default_image;
    }
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
        for (uint32_t i = 0; i < n; i++) {
            vkf_status st;
            if (strcmp(images[i], "-") == 0) { /* an encoded image on standard input */
                size_t size;
                char *bytes = tool_read_all("-", &size);
                if (!bytes) {
                    rc = 1;
                    goto done;
                }
                st = vkf_image_preprocess_memory(model, bytes, size, pixels + per * i);
                free(bytes);
            } else {
                st = vkf_image_preprocess_file(model, images[i], pixels + per * i);
            }
            if (st != VKF_OK) {
                rc = fail(strcmp(images[i], "-") ? NULL : "standard input", vkf_last_error(ctx));
                goto done;
            }
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
                cJSON_AddNumberToObject(e, "score", s->prob);
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
